//! Row structs as SQLite returns them, and their conversion into the core's records.
//! uuids are TEXT, timestamps INTEGER unix microseconds, booleans INTEGER.

use authara_core::org::{OrgKind, OrgRole};
use authara_core::store::{
    ActiveOrganization, LiveSession, MemberRecord, MembershipRecord, MembershipWithOrganization,
    OrganizationRecord, RefreshTokenRecord, SessionRecord, SessionUser, StoreError, UserRecord,
};
use sqlx::FromRow;
use time::OffsetDateTime;
use uuid::Uuid;

/// The columns of [`UserRow`], for `SELECT {USER_COLUMNS} FROM users`.
pub(crate) const USER_COLUMNS: &str =
    "id, email, username, password_hash, is_admin, disabled, created_at";

/// The select list of [`SessionUserRow`]; `u`, `o` and `m` alias users, organizations and
/// organization_memberships.
pub(crate) const SESSION_USER_COLUMNS: &str = "\
    u.id AS id, u.email AS email, u.username AS username, u.password_hash AS password_hash, \
    u.is_admin AS is_admin, u.disabled AS disabled, u.created_at AS created_at, \
    o.id AS org_id, o.name AS org_name, m.role AS org_role";

/// The columns of [`OrganizationRow`] over `organizations o`.
pub(crate) const ORGANIZATION_COLUMNS: &str = "\
    o.id AS org_id, o.name AS org_name, o.kind AS org_kind, \
    o.created_by_user_id AS org_created_by_user_id, o.created_at AS org_created_at, \
    o.updated_at AS org_updated_at";

/// The columns of [`MembershipRow`] over `organization_memberships m`.
pub(crate) const MEMBERSHIP_COLUMNS: &str = "\
    m.organization_id AS m_organization_id, m.user_id AS m_user_id, m.role AS m_role, \
    m.created_at AS m_created_at, m.updated_at AS m_updated_at";

/// The order in which a user's memberships are tried for their default organization (over
/// `organization_memberships m` joined with `organizations o`): personal ones first, then the
/// oldest membership, ties by organization id.
pub(crate) const DEFAULT_ORGANIZATION_ORDER: &str =
    "o.kind <> 'personal', m.created_at, m.organization_id";

/// The select list of [`LiveSessionRow`], over `sessions s`: `last_used_at` is the creation of
/// the session's newest refresh token (its sign-in or latest rotation), else the session's own.
pub(crate) const LIVE_SESSION_COLUMNS: &str = "\
    s.id, s.user_id, s.user_agent, s.client_ip, s.created_at, s.expires_at, \
    COALESCE((SELECT MAX(t.created_at) FROM refresh_tokens t WHERE t.session_id = s.id), \
             s.created_at) AS last_used_at";

/// A uuid as stored: hyphenated lowercase text.
pub(crate) fn id_text(id: Uuid) -> String {
    id.hyphenated().to_string()
}

/// A timestamp as stored: whole microseconds since the epoch (sub-microsecond parts dropped).
pub(crate) fn micros(t: OffsetDateTime) -> Result<i64, StoreError> {
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000))
        .map_err(|_| StoreError::invalid("timestamp out of range"))
}

/// A count as stored (attempts, resends, limits): never negative, never beyond `u32`.
pub(crate) fn count(stored: i64) -> Result<u32, StoreError> {
    u32::try_from(stored).map_err(|_| StoreError::invalid("bad count in the database"))
}

pub(crate) fn parse_id(text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|_| StoreError::invalid("malformed uuid in the database"))
}

pub(crate) fn parse_opt_id(text: Option<String>) -> Result<Option<Uuid>, StoreError> {
    text.as_deref().map(parse_id).transpose()
}

pub(crate) fn parse_time(us: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000)
        .map_err(|_| StoreError::invalid("timestamp out of range in the database"))
}

pub(crate) fn parse_opt_time(us: Option<i64>) -> Result<Option<OffsetDateTime>, StoreError> {
    us.map(parse_time).transpose()
}

pub(crate) fn parse_kind(text: &str) -> Result<OrgKind, StoreError> {
    OrgKind::parse(text)
        .ok_or_else(|| StoreError::invalid("unknown organization kind in the database"))
}

pub(crate) fn parse_role(text: &str) -> Result<OrgRole, StoreError> {
    OrgRole::parse(text)
        .ok_or_else(|| StoreError::invalid("unknown membership role in the database"))
}

#[derive(FromRow)]
pub(crate) struct UserRow {
    id: String,
    email: String,
    username: String,
    password_hash: Option<String>,
    is_admin: bool,
    disabled: bool,
    created_at: i64,
}

impl UserRow {
    pub(crate) fn into_record(self) -> Result<UserRecord, StoreError> {
        Ok(UserRecord {
            id: parse_id(&self.id)?,
            email: self.email,
            username: self.username,
            password_hash: self.password_hash,
            is_admin: self.is_admin,
            disabled: self.disabled,
            created_at: parse_time(self.created_at)?,
        })
    }
}

/// A live session's user with its active organization and the user's role there.
#[derive(FromRow)]
pub(crate) struct SessionUserRow {
    #[sqlx(flatten)]
    user: UserRow,
    org_id: String,
    org_name: String,
    org_role: String,
}

impl SessionUserRow {
    pub(crate) fn into_record(self) -> Result<SessionUser, StoreError> {
        Ok(SessionUser {
            user: self.user.into_record()?,
            organization: ActiveOrganization {
                id: parse_id(&self.org_id)?,
                name: self.org_name,
                role: parse_role(&self.org_role)?,
            },
        })
    }
}

/// An organization as stored ([`ORGANIZATION_COLUMNS`]).
#[derive(FromRow)]
pub(crate) struct OrganizationRow {
    org_id: String,
    org_name: String,
    org_kind: String,
    org_created_by_user_id: Option<String>,
    org_created_at: i64,
    org_updated_at: i64,
}

impl OrganizationRow {
    pub(crate) fn into_record(self) -> Result<OrganizationRecord, StoreError> {
        Ok(OrganizationRecord {
            id: parse_id(&self.org_id)?,
            name: self.org_name,
            kind: parse_kind(&self.org_kind)?,
            created_by_user_id: parse_opt_id(self.org_created_by_user_id)?,
            created_at: parse_time(self.org_created_at)?,
            updated_at: parse_time(self.org_updated_at)?,
        })
    }
}

/// A membership as stored ([`MEMBERSHIP_COLUMNS`]).
#[derive(FromRow)]
pub(crate) struct MembershipRow {
    m_organization_id: String,
    m_user_id: String,
    m_role: String,
    m_created_at: i64,
    m_updated_at: i64,
}

impl MembershipRow {
    pub(crate) fn into_record(self) -> Result<MembershipRecord, StoreError> {
        Ok(MembershipRecord {
            organization_id: parse_id(&self.m_organization_id)?,
            user_id: parse_id(&self.m_user_id)?,
            role: parse_role(&self.m_role)?,
            created_at: parse_time(self.m_created_at)?,
            updated_at: parse_time(self.m_updated_at)?,
        })
    }
}

/// A membership with its organization ([`ORGANIZATION_COLUMNS`], [`MEMBERSHIP_COLUMNS`]).
#[derive(FromRow)]
pub(crate) struct MembershipWithOrganizationRow {
    #[sqlx(flatten)]
    organization: OrganizationRow,
    #[sqlx(flatten)]
    membership: MembershipRow,
}

impl MembershipWithOrganizationRow {
    pub(crate) fn into_record(self) -> Result<MembershipWithOrganization, StoreError> {
        Ok(MembershipWithOrganization {
            organization: self.organization.into_record()?,
            membership: self.membership.into_record()?,
        })
    }
}

/// A membership with the member's account ([`MEMBERSHIP_COLUMNS`] and `u`'s email, username,
/// disabled).
#[derive(FromRow)]
pub(crate) struct MemberRow {
    #[sqlx(flatten)]
    membership: MembershipRow,
    email: String,
    username: String,
    disabled: bool,
}

impl MemberRow {
    pub(crate) fn into_record(self) -> Result<MemberRecord, StoreError> {
        Ok(MemberRecord {
            membership: self.membership.into_record()?,
            email: self.email,
            username: self.username,
            disabled: self.disabled,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct LiveSessionRow {
    id: String,
    user_id: String,
    user_agent: String,
    client_ip: String,
    created_at: i64,
    expires_at: i64,
    last_used_at: i64,
}

impl LiveSessionRow {
    pub(crate) fn into_record(self) -> Result<LiveSession, StoreError> {
        Ok(LiveSession {
            id: parse_id(&self.id)?,
            user_id: parse_id(&self.user_id)?,
            user_agent: self.user_agent,
            client_ip: self.client_ip,
            created_at: parse_time(self.created_at)?,
            expires_at: parse_time(self.expires_at)?,
            last_used_at: parse_time(self.last_used_at)?,
        })
    }
}

/// The select list of [`TokenJoinRow`]; `t`, `s` and `u` alias refresh_tokens, sessions, users,
/// and `m`, `o` the session's active membership and organization, LEFT JOINed (see
/// [`TOKEN_JOIN_FROM`]).
pub(crate) const TOKEN_JOIN_COLUMNS: &str = "\
    t.id AS token_id, t.created_at AS token_created_at, t.expires_at AS token_expires_at, \
    t.consumed_at AS token_consumed_at, \
    s.id AS session_id, s.user_agent AS session_user_agent, s.client_ip AS session_client_ip, \
    s.created_at AS session_created_at, s.expires_at AS session_expires_at, \
    s.revoked_at AS session_revoked_at, \
    u.id AS user_id, u.email AS user_email, u.username AS user_username, \
    u.password_hash AS user_password_hash, u.is_admin AS user_is_admin, \
    u.disabled AS user_disabled, u.created_at AS user_created_at, \
    o.id AS org_id, o.name AS org_name, m.role AS org_role";

/// A refresh token with its session, user and (when the user is still a member there) the
/// session's active organization, for [`TOKEN_JOIN_COLUMNS`].
pub(crate) const TOKEN_JOIN_FROM: &str = "\
    FROM refresh_tokens t \
    JOIN sessions s ON s.id = t.session_id \
    JOIN users u ON u.id = s.user_id \
    LEFT JOIN organization_memberships m \
        ON m.organization_id = s.active_organization_id AND m.user_id = s.user_id \
    LEFT JOIN organizations o ON o.id = m.organization_id";

/// A refresh token joined with its session and user.
#[derive(FromRow)]
pub(crate) struct TokenJoinRow {
    token_id: String,
    token_created_at: i64,
    token_expires_at: i64,
    token_consumed_at: Option<i64>,
    session_id: String,
    session_user_agent: String,
    session_client_ip: String,
    session_created_at: i64,
    session_expires_at: i64,
    session_revoked_at: Option<i64>,
    user_id: String,
    user_email: String,
    user_username: String,
    user_password_hash: Option<String>,
    user_is_admin: bool,
    user_disabled: bool,
    user_created_at: i64,
    org_id: Option<String>,
    org_name: Option<String>,
    org_role: Option<String>,
}

impl TokenJoinRow {
    pub(crate) fn into_record(self) -> Result<RefreshTokenRecord, StoreError> {
        let session_id = parse_id(&self.session_id)?;
        let user_id = parse_id(&self.user_id)?;
        // All three or none: the organization comes with the membership.
        let organization = match (self.org_id, self.org_name, self.org_role) {
            (Some(id), Some(name), Some(role)) => Some(ActiveOrganization {
                id: parse_id(&id)?,
                name,
                role: parse_role(&role)?,
            }),
            _ => None,
        };
        Ok(RefreshTokenRecord {
            id: parse_id(&self.token_id)?,
            session_id,
            created_at: parse_time(self.token_created_at)?,
            expires_at: parse_time(self.token_expires_at)?,
            consumed_at: parse_opt_time(self.token_consumed_at)?,
            session: SessionRecord {
                id: session_id,
                user_id,
                user_agent: self.session_user_agent,
                client_ip: self.session_client_ip,
                created_at: parse_time(self.session_created_at)?,
                expires_at: parse_time(self.session_expires_at)?,
                revoked_at: parse_opt_time(self.session_revoked_at)?,
            },
            user: UserRecord {
                id: user_id,
                email: self.user_email,
                username: self.user_username,
                password_hash: self.user_password_hash,
                is_admin: self.user_is_admin,
                disabled: self.user_disabled,
                created_at: parse_time(self.user_created_at)?,
            },
            organization,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn timestamps_round_trip_at_microsecond_precision() {
        for t in [
            datetime!(2030-06-01 12:34:56.123456 UTC),
            datetime!(1969-12-31 23:59:59.999999 UTC),
            datetime!(1970-01-01 0:00 UTC),
        ] {
            assert_eq!(parse_time(micros(t).unwrap()).unwrap(), t);
        }
        // Sub-microsecond digits are dropped, towards the past.
        let t = datetime!(2030-06-01 12:34:56.123456789 UTC);
        assert_eq!(
            parse_time(micros(t).unwrap()).unwrap(),
            datetime!(2030-06-01 12:34:56.123456 UTC)
        );
    }

    #[test]
    fn ids_are_hyphenated_lowercase() {
        let id = Uuid::from_u128(0xABCD_EF01_2345_6789_ABCD_EF01_2345_6789);
        assert_eq!(id_text(id), "abcdef01-2345-6789-abcd-ef0123456789");
        assert_eq!(parse_id(&id_text(id)).unwrap(), id);
    }
}

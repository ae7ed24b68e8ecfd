//! Row structs as PostgreSQL returns them, and their conversion into the core's records.

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

/// The select list of [`LiveSessionRow`], over `sessions s`: `last_used_at` is the creation of
/// the session's newest refresh token (its sign-in or latest rotation), else the session's own.
pub(crate) const LIVE_SESSION_COLUMNS: &str = "\
    s.id, s.user_id, s.user_agent, s.client_ip, s.created_at, s.expires_at, \
    COALESCE((SELECT MAX(t.created_at) FROM refresh_tokens t WHERE t.session_id = s.id), \
             s.created_at) AS last_used_at";

/// A count as stored (attempts, resends, limits; `INTEGER`): never negative.
pub(crate) fn count(stored: i32) -> Result<u32, StoreError> {
    u32::try_from(stored).map_err(|_| StoreError::invalid("negative count in the database"))
}

/// A count to store as `INTEGER`; one beyond `i32` cannot be stored.
pub(crate) fn stored_count(count: u32) -> Result<i32, StoreError> {
    i32::try_from(count).map_err(|_| StoreError::invalid("count too large to store"))
}

/// An organization kind as stored.
pub(crate) fn parse_kind(stored: &str) -> Result<OrgKind, StoreError> {
    OrgKind::parse(stored)
        .ok_or_else(|| StoreError::invalid("unknown organization kind in the database"))
}

/// A membership role as stored.
pub(crate) fn parse_role(stored: &str) -> Result<OrgRole, StoreError> {
    OrgRole::parse(stored)
        .ok_or_else(|| StoreError::invalid("unknown membership role in the database"))
}

#[derive(FromRow)]
pub(crate) struct UserRow {
    id: Uuid,
    email: String,
    username: String,
    password_hash: Option<String>,
    is_admin: bool,
    disabled: bool,
    created_at: OffsetDateTime,
}

impl From<UserRow> for UserRecord {
    fn from(row: UserRow) -> Self {
        UserRecord {
            id: row.id,
            email: row.email,
            username: row.username,
            password_hash: row.password_hash,
            is_admin: row.is_admin,
            disabled: row.disabled,
            created_at: row.created_at,
        }
    }
}

#[derive(FromRow)]
pub(crate) struct LiveSessionRow {
    id: Uuid,
    user_id: Uuid,
    user_agent: String,
    client_ip: String,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    last_used_at: OffsetDateTime,
}

impl From<LiveSessionRow> for LiveSession {
    fn from(row: LiveSessionRow) -> Self {
        LiveSession {
            id: row.id,
            user_id: row.user_id,
            user_agent: row.user_agent,
            client_ip: row.client_ip,
            created_at: row.created_at,
            expires_at: row.expires_at,
            last_used_at: row.last_used_at,
        }
    }
}

/// The select list of [`TokenJoinRow`]; `t`, `s`, `u`, `m` and `o` alias refresh_tokens,
/// sessions, users, the user's membership in the session's active organization, and that
/// organization.
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

/// The tables behind [`TOKEN_JOIN_COLUMNS`], with those aliases. The membership and its
/// organization are outer joins: a token whose user left the session's organization (or whose
/// session has none) is still found, with no organization.
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
    token_id: Uuid,
    token_created_at: OffsetDateTime,
    token_expires_at: OffsetDateTime,
    token_consumed_at: Option<OffsetDateTime>,
    session_id: Uuid,
    session_user_agent: String,
    session_client_ip: String,
    session_created_at: OffsetDateTime,
    session_expires_at: OffsetDateTime,
    session_revoked_at: Option<OffsetDateTime>,
    user_id: Uuid,
    user_email: String,
    user_username: String,
    user_password_hash: Option<String>,
    user_is_admin: bool,
    user_disabled: bool,
    user_created_at: OffsetDateTime,
    org_id: Option<Uuid>,
    org_name: Option<String>,
    org_role: Option<String>,
}

/// [`TokenJoinRow`] as found by a rotation, with the replacement's expiry if it rotated.
#[derive(FromRow)]
pub(crate) struct RotateRow {
    #[sqlx(flatten)]
    pub(crate) token: TokenJoinRow,
    pub(crate) rotated_expires_at: Option<OffsetDateTime>,
}

impl TryFrom<TokenJoinRow> for RefreshTokenRecord {
    type Error = StoreError;

    fn try_from(row: TokenJoinRow) -> Result<Self, StoreError> {
        // All three come from the same outer join: either all are there or none is.
        let organization = match (row.org_id, row.org_name, row.org_role) {
            (Some(id), Some(name), Some(role)) => Some(ActiveOrganization {
                id,
                name,
                role: parse_role(&role)?,
            }),
            _ => None,
        };
        Ok(RefreshTokenRecord {
            id: row.token_id,
            session_id: row.session_id,
            created_at: row.token_created_at,
            expires_at: row.token_expires_at,
            consumed_at: row.token_consumed_at,
            session: SessionRecord {
                id: row.session_id,
                user_id: row.user_id,
                user_agent: row.session_user_agent,
                client_ip: row.session_client_ip,
                created_at: row.session_created_at,
                expires_at: row.session_expires_at,
                revoked_at: row.session_revoked_at,
            },
            user: UserRecord {
                id: row.user_id,
                email: row.user_email,
                username: row.user_username,
                password_hash: row.user_password_hash,
                is_admin: row.user_is_admin,
                disabled: row.user_disabled,
                created_at: row.user_created_at,
            },
            organization,
        })
    }
}

/// The select list of [`SessionUserRow`]: `u` the user, `m` their membership in the session's
/// active organization, `o` that organization.
pub(crate) const SESSION_USER_COLUMNS: &str = "\
    u.id, u.email, u.username, u.password_hash, u.is_admin, u.disabled, u.created_at, \
    o.id AS org_id, o.name AS org_name, m.role AS org_role";

/// A live session's user with the session's active organization.
#[derive(FromRow)]
pub(crate) struct SessionUserRow {
    #[sqlx(flatten)]
    user: UserRow,
    #[sqlx(flatten)]
    organization: ActiveOrganizationRow,
}

impl TryFrom<SessionUserRow> for SessionUser {
    type Error = StoreError;

    fn try_from(row: SessionUserRow) -> Result<Self, StoreError> {
        Ok(SessionUser {
            user: row.user.into(),
            organization: row.organization.try_into()?,
        })
    }
}

/// An organization with the role of the user acting in it, as `org_id, org_name, org_role`.
#[derive(FromRow)]
pub(crate) struct ActiveOrganizationRow {
    org_id: Uuid,
    org_name: String,
    org_role: String,
}

impl TryFrom<ActiveOrganizationRow> for ActiveOrganization {
    type Error = StoreError;

    fn try_from(row: ActiveOrganizationRow) -> Result<Self, StoreError> {
        Ok(ActiveOrganization {
            id: row.org_id,
            name: row.org_name,
            role: parse_role(&row.org_role)?,
        })
    }
}

/// What a switch of organizations returns: the new active organization and both expiries.
#[derive(FromRow)]
pub(crate) struct SwitchedRow {
    #[sqlx(flatten)]
    pub(crate) organization: ActiveOrganizationRow,
    pub(crate) session_expires_at: OffsetDateTime,
    pub(crate) token_expires_at: OffsetDateTime,
}

/// The columns of [`OrganizationRow`], over `organizations o`.
pub(crate) const ORGANIZATION_COLUMNS: &str =
    "o.id, o.name, o.kind, o.created_by_user_id, o.created_at, o.updated_at";

#[derive(FromRow)]
pub(crate) struct OrganizationRow {
    id: Uuid,
    name: String,
    kind: String,
    created_by_user_id: Option<Uuid>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl TryFrom<OrganizationRow> for OrganizationRecord {
    type Error = StoreError;

    fn try_from(row: OrganizationRow) -> Result<Self, StoreError> {
        Ok(OrganizationRecord {
            id: row.id,
            name: row.name,
            kind: parse_kind(&row.kind)?,
            created_by_user_id: row.created_by_user_id,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// The columns of [`MembershipRow`], over `organization_memberships m`, named apart from an
/// organization's or a user's own.
pub(crate) const MEMBERSHIP_COLUMNS: &str = "\
    m.organization_id AS membership_organization_id, m.user_id AS membership_user_id, \
    m.role AS membership_role, m.created_at AS membership_created_at, \
    m.updated_at AS membership_updated_at";

#[derive(FromRow)]
pub(crate) struct MembershipRow {
    membership_organization_id: Uuid,
    membership_user_id: Uuid,
    membership_role: String,
    membership_created_at: OffsetDateTime,
    membership_updated_at: OffsetDateTime,
}

impl TryFrom<MembershipRow> for MembershipRecord {
    type Error = StoreError;

    fn try_from(row: MembershipRow) -> Result<Self, StoreError> {
        Ok(MembershipRecord {
            organization_id: row.membership_organization_id,
            user_id: row.membership_user_id,
            role: parse_role(&row.membership_role)?,
            created_at: row.membership_created_at,
            updated_at: row.membership_updated_at,
        })
    }
}

/// A membership with its organization: [`MEMBERSHIP_COLUMNS`] and [`ORGANIZATION_COLUMNS`].
#[derive(FromRow)]
pub(crate) struct MembershipWithOrganizationRow {
    #[sqlx(flatten)]
    organization: OrganizationRow,
    #[sqlx(flatten)]
    membership: MembershipRow,
}

impl TryFrom<MembershipWithOrganizationRow> for MembershipWithOrganization {
    type Error = StoreError;

    fn try_from(row: MembershipWithOrganizationRow) -> Result<Self, StoreError> {
        Ok(MembershipWithOrganization {
            organization: row.organization.try_into()?,
            membership: row.membership.try_into()?,
        })
    }
}

/// A membership with the member's account: [`MEMBERSHIP_COLUMNS`] and `u.email, u.username,
/// u.disabled`.
#[derive(FromRow)]
pub(crate) struct MemberRow {
    #[sqlx(flatten)]
    membership: MembershipRow,
    email: String,
    username: String,
    disabled: bool,
}

impl TryFrom<MemberRow> for MemberRecord {
    type Error = StoreError;

    fn try_from(row: MemberRow) -> Result<Self, StoreError> {
        Ok(MemberRecord {
            membership: row.membership.try_into()?,
            email: row.email,
            username: row.username,
            disabled: row.disabled,
        })
    }
}

//! Row structs as SQLite returns them, and their conversion into the core's records.
//! uuids are TEXT, timestamps INTEGER unix microseconds, booleans INTEGER.

use authara_core::store::{LiveSession, RefreshTokenRecord, SessionRecord, StoreError, UserRecord};
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

/// The select list of [`TokenJoinRow`]; `t`, `s` and `u` alias refresh_tokens, sessions, users.
pub(crate) const TOKEN_JOIN_COLUMNS: &str = "\
    t.id AS token_id, t.created_at AS token_created_at, t.expires_at AS token_expires_at, \
    t.consumed_at AS token_consumed_at, \
    s.id AS session_id, s.user_agent AS session_user_agent, s.client_ip AS session_client_ip, \
    s.created_at AS session_created_at, s.expires_at AS session_expires_at, \
    s.revoked_at AS session_revoked_at, \
    u.id AS user_id, u.email AS user_email, u.username AS user_username, \
    u.password_hash AS user_password_hash, u.is_admin AS user_is_admin, \
    u.disabled AS user_disabled, u.created_at AS user_created_at";

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
}

impl TokenJoinRow {
    pub(crate) fn into_record(self) -> Result<RefreshTokenRecord, StoreError> {
        let session_id = parse_id(&self.session_id)?;
        let user_id = parse_id(&self.user_id)?;
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

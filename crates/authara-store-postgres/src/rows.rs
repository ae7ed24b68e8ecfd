//! Row structs as PostgreSQL returns them, and their conversion into the core's records.

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

/// A count as stored (attempts, resends, limits; `INTEGER`): never negative.
pub(crate) fn count(stored: i32) -> Result<u32, StoreError> {
    u32::try_from(stored).map_err(|_| StoreError::invalid("negative count in the database"))
}

/// A count to store as `INTEGER`; one beyond `i32` cannot be stored.
pub(crate) fn stored_count(count: u32) -> Result<i32, StoreError> {
    i32::try_from(count).map_err(|_| StoreError::invalid("count too large to store"))
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

/// The tables behind [`TOKEN_JOIN_COLUMNS`], with those aliases.
pub(crate) const TOKEN_JOIN_FROM: &str = "\
    FROM refresh_tokens t \
    JOIN sessions s ON s.id = t.session_id \
    JOIN users u ON u.id = s.user_id";

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
}

/// [`TokenJoinRow`] as found by a rotation, with the replacement's expiry if it rotated.
#[derive(FromRow)]
pub(crate) struct RotateRow {
    #[sqlx(flatten)]
    pub(crate) token: TokenJoinRow,
    pub(crate) rotated_expires_at: Option<OffsetDateTime>,
}

impl From<TokenJoinRow> for RefreshTokenRecord {
    fn from(row: TokenJoinRow) -> Self {
        RefreshTokenRecord {
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
        }
    }
}

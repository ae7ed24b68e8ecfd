//! The storage interface. Each method is one use case and atomic on its own; no transaction
//! handle crosses this boundary and "now" is always passed in, so backends never read a clock.

use std::collections::BTreeSet;

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

/// SHA-256 of a refresh token. The plaintext token never reaches storage.
pub type TokenHash = [u8; 32];

/// Errors every backend maps its own failures onto.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row the call was about does not exist.
    #[error("not found")]
    NotFound,
    /// A unique key would be violated; names which one.
    #[error("conflict on {0:?}")]
    Conflict(UniqueKey),
    /// The database could not be reached or failed; the source is kept for the logs only.
    #[error("storage unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Wraps any backend error as `Unavailable`.
    pub fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable(Box::new(e))
    }

    /// `Unavailable` with a fixed description of a bad configuration or of unreadable stored
    /// data; it names no values (a URL could carry a password).
    pub fn invalid(what: &'static str) -> Self {
        Self::unavailable(Invalid(what))
    }
}

/// The source of [`StoreError::invalid`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Invalid(&'static str);

/// The unique keys a caller may collide with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueKey {
    /// `users.email`
    Email,
    /// `users.username`
    Username,
    /// Any other unique key (ids, token hashes): a bug or a 2^-128 accident.
    Other,
}

/// Whether the database schema matches the migrations compiled into this binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaState {
    /// Every embedded migration is applied and nothing else.
    UpToDate,
    /// Embedded migrations are missing from the database (`authara migrate` fixes it).
    Behind { pending: usize },
    /// The database has migrations this binary does not know (an older binary).
    Ahead { unknown: usize },
}

impl SchemaState {
    /// Compares the migration versions applied to a database with those embedded in the
    /// binary. Unknown versions win over pending ones: a database touched by a newer binary
    /// must not be "fixed" by this one.
    pub fn compare(applied: &BTreeSet<i64>, embedded: &BTreeSet<i64>) -> Self {
        let unknown = applied.difference(embedded).count();
        let pending = embedded.difference(applied).count();
        if unknown > 0 {
            Self::Ahead { unknown }
        } else if pending > 0 {
            Self::Behind { pending }
        } else {
            Self::UpToDate
        }
    }
}

/// A user as stored. `Debug` leaves the password hash out.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: Uuid,
    pub email: String,
    pub username: String,
    /// PHC string, or `None` for accounts without a password (e.g. created by Google sign-in).
    pub password_hash: Option<String>,
    pub is_admin: bool,
    pub disabled: bool,
    pub created_at: OffsetDateTime,
}

/// A user to insert. `Debug` leaves the password hash out.
#[derive(Clone)]
pub struct NewUser {
    pub id: Uuid,
    pub email: String,
    pub username: String,
    pub password_hash: Option<String>,
    pub created_at: OffsetDateTime,
}

/// What `Debug` shows of a password hash: whether there is one.
fn redacted_hash(hash: &Option<String>) -> &'static str {
    match hash {
        Some(_) => "Some(<redacted>)",
        None => "None",
    }
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("username", &self.username)
            .field(
                "password_hash",
                &format_args!("{}", redacted_hash(&self.password_hash)),
            )
            .field("is_admin", &self.is_admin)
            .field("disabled", &self.disabled)
            .field("created_at", &self.created_at)
            .finish()
    }
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("username", &self.username)
            .field(
                "password_hash",
                &format_args!("{}", redacted_hash(&self.password_hash)),
            )
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub user_agent: String,
    pub client_ip: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

/// A session to insert.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: Uuid,
    pub user_id: Uuid,
    pub user_agent: String,
    pub client_ip: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// The most live sessions (unrevoked, unexpired at `created_at`) the user may hold once this
    /// one exists: beyond it, the oldest of the others (by `created_at`, then id) are revoked at
    /// `created_at`, atomically with the insert. Never the new session itself; at least 1.
    pub max_live_per_user: u32,
}

/// A refresh token to insert (hash only).
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    pub id: Uuid,
    pub session_id: Uuid,
    pub token_hash: TokenHash,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// A refresh token together with its session and user, as read in one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    pub id: Uuid,
    pub session_id: Uuid,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub consumed_at: Option<OffsetDateTime>,
    pub session: SessionRecord,
    pub user: UserRecord,
}

/// When [`Store::rotate_refresh_token`] may rotate the token it finds. Besides these, the
/// token must be unconsumed, its session unrevoked and its user enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotateIf {
    /// The instant of the refresh. The token and its session must both expire after it; it
    /// becomes the token's `consumed_at` and the replacement's `created_at`.
    pub now: OffsetDateTime,
    /// Only a token created at or before this instant (a rotation interval); `None`: any.
    pub created_at_most: Option<OffsetDateTime>,
    /// Only when the user is an admin (the `admin` audience).
    pub admin_only: bool,
}

/// The token a rotation stores in the same session as the one it consumes.
#[derive(Debug, Clone)]
pub struct Replacement {
    pub id: Uuid,
    pub token_hash: TokenHash,
    /// Latest expiry; the store caps it at the session's.
    pub expires_at: OffsetDateTime,
}

/// What [`Store::rotate_refresh_token`] found, and whether it rotated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotateOutcome {
    /// The token with its session and user as they were before the call.
    pub record: RefreshTokenRecord,
    /// The stored replacement's expiry when this call consumed the token; `None` when it
    /// changed nothing.
    pub rotated: Option<OffsetDateTime>,
}

/// Rows removed by a purge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeCounts {
    pub sessions: u64,
    pub refresh_tokens: u64,
}

/// The side effects a store write commits together with its change, in the same transaction:
/// outbox events (webhooks) and audit rows. A write that fails or rolls back leaves none of them;
/// a write that commits leaves all of them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effects {
    pub events: Vec<crate::events::NewEvent>,
    pub audit: Vec<crate::audit::NewAuditEntry>,
}

impl Effects {
    /// No side effects.
    pub fn none() -> Self {
        Self::default()
    }

    /// Adds an outbox event.
    pub fn event(mut self, event: crate::events::NewEvent) -> Self {
        self.events.push(event);
        self
    }

    /// Adds an audit row.
    pub fn audit(mut self, entry: crate::audit::NewAuditEntry) -> Self {
        self.audit.push(entry);
        self
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.audit.is_empty()
    }
}

/// A change to sessions or users that caches of them must forget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// This session was revoked.
    Session(Uuid),
    /// This user changed (disabled, deleted, renamed, roles).
    User(Uuid),
    /// The feed was interrupted: changes may be missed until `Resumed`.
    Lost,
    /// The feed works again; anything before this may have been missed.
    Resumed,
}

/// How a backend reports changes that other processes make.
#[derive(Debug)]
pub enum ChangeFeed {
    /// Changes arrive on this channel (PostgreSQL: LISTEN/NOTIFY).
    Channel(tokio::sync::mpsc::Receiver<Change>),
    /// The backend cannot report them.
    Unsupported,
}

/// The one storage interface; implemented for PostgreSQL and SQLite.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Cheap round trip, for health checks.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Applies every pending embedded migration.
    async fn migrate(&self) -> Result<(), StoreError>;
    /// Compares the database's applied migrations with the embedded ones.
    async fn schema_state(&self) -> Result<SchemaState, StoreError>;

    /// Inserts a user. `Conflict(Email | Username)` when taken.
    async fn create_user(&self, user: NewUser) -> Result<(), StoreError>;
    /// The user with this id, if any.
    async fn find_user_by_id(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError>;
    /// `email` must already be normalised (trimmed, lowercased).
    async fn find_user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError>;
    /// Replaces the password hash (re-hash on login). `NotFound` for an unknown user.
    async fn set_password_hash(
        &self,
        user_id: Uuid,
        hash: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// `NotFound` for an unknown user, `Conflict(Username)` when taken.
    async fn set_username(
        &self,
        user_id: Uuid,
        username: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Grants or revokes `authara:admin` by email. `NotFound` for an unknown email.
    async fn set_admin_by_email(
        &self,
        email: &str,
        is_admin: bool,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Disables or enables a user; disabling also revokes all their sessions, in one transaction.
    /// `NotFound` for an unknown user.
    async fn set_disabled(
        &self,
        user_id: Uuid,
        disabled: bool,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Deletes a user with their sessions and refresh tokens. `NotFound` for an unknown user.
    async fn delete_user(&self, user_id: Uuid) -> Result<(), StoreError>;

    /// Inserts a session and its first refresh token together, and revokes the user's oldest
    /// live sessions beyond [`NewSession::max_live_per_user`] in the same transaction (two
    /// concurrent inserts for one user cannot both keep the cap's last place).
    async fn create_session(
        &self,
        session: NewSession,
        token: NewRefreshToken,
    ) -> Result<(), StoreError>;
    /// The user owning `session_id`, if that session is unrevoked, unexpired at `now`, belongs
    /// to `user_id` and the user is enabled. One query: this is on every authenticated request.
    async fn find_live_session_user(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Option<UserRecord>, StoreError>;
    /// The user's unrevoked, unexpired sessions, newest first.
    async fn list_live_sessions(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError>;
    /// Revokes a session (idempotent: an already revoked one keeps its first `revoked_at`).
    /// Returns whether the session exists and belongs to `user_id` when one is given.
    async fn revoke_session(
        &self,
        session_id: Uuid,
        owner: Option<Uuid>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Looks a refresh token up by hash, with its session and user.
    async fn find_refresh_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RefreshTokenRecord>, StoreError>;
    /// A refresh in one round trip: finds the token with its session and user and, when every
    /// condition of [`RotateIf`] holds, marks it consumed and stores `replacement`, atomically.
    /// Of several concurrent calls with one hash at most one rotates. `None` for an unknown
    /// token. A replacement that cannot be stored fails the call and changes nothing.
    async fn rotate_refresh_token(
        &self,
        hash: &TokenHash,
        rotate_if: RotateIf,
        replacement: Replacement,
    ) -> Result<Option<RotateOutcome>, StoreError>;

    /// Starts reporting session revocations and user changes committed by any process,
    /// including this one, for caches to forget.
    async fn watch_changes(&self) -> Result<ChangeFeed, StoreError>;

    /// Deletes expired sessions (with their tokens) and expired refresh tokens.
    async fn purge_expired(&self, now: OffsetDateTime) -> Result<PurgeCounts, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_of_users_leaves_the_password_hash_out() {
        let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$c2VjcmV0aGFzaA".to_owned();
        let created_at = OffsetDateTime::UNIX_EPOCH;
        let new = NewUser {
            id: Uuid::nil(),
            email: "alice".to_owned(),
            username: "alice".to_owned(),
            password_hash: Some(hash.clone()),
            created_at,
        };
        let record = UserRecord {
            id: Uuid::nil(),
            email: "alice".to_owned(),
            username: "alice".to_owned(),
            password_hash: Some(hash.clone()),
            is_admin: false,
            disabled: false,
            created_at,
        };
        for shown in [
            format!("{new:?}"),
            format!("{record:?}"),
            format!("{record:#?}"),
        ] {
            assert!(!shown.contains("c2VjcmV0aGFzaA"), "{shown}");
            assert!(shown.contains("<redacted>"), "{shown}");
            assert!(shown.contains("alice"), "{shown}");
        }
    }

    fn versions(v: &[i64]) -> BTreeSet<i64> {
        v.iter().copied().collect()
    }

    #[test]
    fn schema_state_compares_applied_with_embedded_versions() {
        let embedded = versions(&[1, 2, 3]);
        let compare = |applied: &[i64]| SchemaState::compare(&versions(applied), &embedded);
        assert_eq!(compare(&[1, 2, 3]), SchemaState::UpToDate);
        assert_eq!(compare(&[]), SchemaState::Behind { pending: 3 });
        assert_eq!(compare(&[1, 3]), SchemaState::Behind { pending: 1 });
        assert_eq!(compare(&[1, 2, 3, 4, 5]), SchemaState::Ahead { unknown: 2 });
        // Unknown versions win over pending ones.
        assert_eq!(compare(&[1, 4]), SchemaState::Ahead { unknown: 1 });
        assert_eq!(
            SchemaState::compare(&versions(&[]), &versions(&[])),
            SchemaState::UpToDate
        );
    }

    #[test]
    fn invalid_is_unavailable_with_the_description_as_source() {
        let err = StoreError::invalid("bad thing");
        assert!(matches!(err, StoreError::Unavailable(_)));
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("bad thing"));
    }
}

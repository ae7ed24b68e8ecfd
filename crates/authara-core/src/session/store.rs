//! The session aggregate: sessions, their refresh tokens, the feed of changes that caches of
//! them follow, and the purge of expired ones.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::store::UserRecord;
use crate::org::store::ActiveOrganization;
use crate::store::{Effects, StoreError};

/// SHA-256 of a refresh token. The plaintext token never reaches storage.
pub type TokenHash = [u8; 32];

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

/// A live session as listed for its owner: the session and when it was last used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSession {
    pub id: Uuid,
    pub user_id: Uuid,
    pub user_agent: String,
    pub client_ip: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// When the session last obtained a refresh token: its sign-in or its latest rotation
    /// (the `created_at` of its newest refresh token; the session's own `created_at` when it has
    /// none left). A refresh that does not rotate does not move it, so it is exact to the
    /// rotation interval.
    pub last_used_at: OffsetDateTime,
}

/// Builds the [`Effects`] of a revocation once the number of sessions it revoked is known, so
/// that the count recorded (an audit row's metadata) is the one committed.
pub type EffectsFor = Box<dyn FnOnce(u64) -> Effects + Send>;

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
    /// The organization the session acts in; the user must be a member there. `None`: the
    /// user's default organization, their oldest personal one, else their oldest membership
    /// (ties by organization id).
    pub organization_id: Option<Uuid>,
}

/// What [`SessionStore::switch_session_organization`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switched {
    /// The session's new active organization.
    pub organization: ActiveOrganization,
    /// The session's expiry (unchanged).
    pub session_expires_at: OffsetDateTime,
    /// The stored token's expiry, after the cap.
    pub token_expires_at: OffsetDateTime,
}

/// The user of a live session and the organization it acts in, as read on every authenticated
/// request. `Debug` names the user by id only.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionUser {
    pub user: UserRecord,
    pub organization: ActiveOrganization,
}

impl std::fmt::Debug for SessionUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionUser")
            .field("user_id", &self.user.id)
            .field("organization", &self.organization)
            .finish()
    }
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
    /// The session's active organization with the user's role there; `None` when the user is
    /// no longer a member of it (or the session has none: made before organizations existed).
    pub organization: Option<ActiveOrganization>,
}

/// When [`SessionStore::rotate_refresh_token`] may rotate the token it finds. Besides these, the
/// token must be unconsumed, its session unrevoked, its user enabled and still a member of the
/// session's active organization.
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

/// What [`SessionStore::rotate_refresh_token`] found, and whether it rotated.
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

/// Sessions and refresh tokens: implemented for PostgreSQL and SQLite.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Inserts a session and its first refresh token together, and revokes the user's oldest
    /// live sessions beyond [`NewSession::max_live_per_user`] in the same transaction (two
    /// concurrent inserts for one user cannot both keep the cap's last place). Returns the
    /// session's active organization ([`NewSession::organization_id`]). `NotFound`, and nothing
    /// changes, for an unknown user, a user who is not a member of the organization asked for,
    /// or (for the default) a user with no membership at all.
    async fn create_session(
        &self,
        session: NewSession,
        token: NewRefreshToken,
    ) -> Result<ActiveOrganization, StoreError>;
    /// The user owning `session_id` with the session's active organization, if that session is
    /// unrevoked, unexpired at `now`, belongs to `user_id`, the user is enabled and still a
    /// member of that organization. One query: this is on every authenticated request.
    async fn find_live_session_user(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Option<SessionUser>, StoreError>;
    /// Moves a live session (unrevoked, unexpired at `now`, of `user_id`) to `organization_id`,
    /// where the user must be a member: sets its active organization, deletes every refresh
    /// token of the session and stores `token` instead (its expiry capped at the session's),
    /// in one transaction. `None` (nothing changed) when the session is not live and the
    /// user's, the user is disabled, or the user is not a member there.
    async fn switch_session_organization(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        organization_id: Uuid,
        token: NewRefreshToken,
        now: OffsetDateTime,
    ) -> Result<Option<Switched>, StoreError>;
    /// The user's unrevoked, unexpired sessions, newest first (ties broken by id).
    async fn list_live_sessions(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Vec<LiveSession>, StoreError>;
    /// Revokes a session (idempotent: an already revoked one keeps its first `revoked_at`).
    /// Returns whether the session exists and belongs to `user_id` when one is given; `effects`
    /// are committed with the revocation exactly when it returns `true`.
    async fn revoke_session(
        &self,
        session_id: Uuid,
        owner: Option<Uuid>,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<bool, StoreError>;
    /// Revokes every live session (unrevoked, unexpired at `now`) of `user_id` but `keep`, in
    /// one transaction, and returns how many it revoked; their refresh tokens refresh no more.
    /// `keep` survives whatever it is (another user's session or an unknown id protects
    /// nothing of this user's). `effects` is called with the count and what it returns is
    /// committed with the revocation, exactly when at least one session was revoked; `0` (an
    /// unknown user, nothing else live) commits nothing.
    async fn revoke_other_sessions(
        &self,
        user_id: Uuid,
        keep: Uuid,
        now: OffsetDateTime,
        effects: EffectsFor,
    ) -> Result<u64, StoreError>;

    /// Looks a refresh token up by hash, with its session and user.
    async fn find_refresh_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RefreshTokenRecord>, StoreError>;
    /// A refresh in one round trip: finds the token with its session and user and, when every
    /// condition of [`RotateIf`] holds, marks it consumed and stores `replacement`, atomically.
    /// Of several concurrent calls with one hash at most one rotates. `None` for an unknown
    /// token. A replacement that cannot be stored fails the call and changes nothing. It never
    /// revokes anything: reuse detection revokes with [`SessionStore::revoke_session`].
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

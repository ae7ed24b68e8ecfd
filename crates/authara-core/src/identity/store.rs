//! The external-identity aggregate: which provider subject belongs to which user.
//!
//! A subject belongs to at most one user, and a user has at most one identity per provider
//! (upstream's two unique keys). Writes take the [`Effects`] they cause and commit them with the
//! change; refusals commit none.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::store::{NewUser, UserRecord};
use crate::store::{Effects, StoreError};

/// An identity to insert (provider and subject already validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIdentity {
    pub id: Uuid,
    pub user_id: Uuid,
    pub provider: String,
    pub provider_user_id: String,
    /// The email the provider asserted (verified) when the identity was linked.
    pub email: Option<String>,
    pub created_at: OffsetDateTime,
}

/// An identity as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub provider: String,
    pub provider_user_id: String,
    pub email: Option<String>,
    pub created_at: OffsetDateTime,
    /// The last sign-in through it; `None` until the first after linking.
    pub last_used_at: Option<OffsetDateTime>,
}

/// What [`IdentityStore::unlink_identity`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unlinked {
    /// Removed; this is what it was.
    Removed(IdentityRecord),
    /// Refused: it is the user's last way to sign in (no password, no other identity).
    LastMethod,
}

/// A browser's sign-in through a code-flow provider, between its `/start` and its `/callback`.
/// The state and the browser binding are stored as SHA-256 (lowercase hex) only; the verifier
/// and the nonce are useless without the provider's code, and the row is deleted when used or
/// after it expires. No `Debug`: it holds the verifier.
#[derive(Clone, PartialEq, Eq)]
pub struct SignInFlow {
    /// SHA-256 of the `state` sent to the provider: the key.
    pub state_hash: String,
    pub provider: String,
    /// SHA-256 of the flow cookie's value: the browser that started the flow.
    pub browser_hash: String,
    /// The PKCE verifier.
    pub code_verifier: String,
    pub nonce: String,
    /// Where the browser goes once signed in (already validated).
    pub return_to: Option<String>,
    /// Set for linking: the signed-in user who started the flow.
    pub link_user_id: Option<Uuid>,
    /// Set when the flow proves a pending link: that link's hash.
    pub proves_link_hash: Option<String>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// An external sign-in waiting for the user to prove the existing account its verified email
/// belongs to (upstream's `pending_provider_links`, purpose `account_recovery_link`). The link
/// id and the browser binding are stored as SHA-256 (lowercase hex) only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLink {
    pub link_hash: String,
    /// The existing account.
    pub user_id: Uuid,
    pub provider: String,
    pub provider_user_id: String,
    pub provider_email: String,
    pub browser_hash: String,
    pub return_to: Option<String>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// External identities: implemented for PostgreSQL and SQLite.
#[async_trait]
pub trait IdentityStore: Send + Sync + 'static {
    /// The identity of `provider`'s `provider_user_id`, with its user.
    async fn find_identity(
        &self,
        provider: &str,
        provider_user_id: &str,
    ) -> Result<Option<(IdentityRecord, UserRecord)>, StoreError>;

    /// A user's identities, oldest first (ties by id).
    async fn list_identities(&self, user_id: Uuid) -> Result<Vec<IdentityRecord>, StoreError>;

    /// Creates `user` (with their initial organization, as `create_user`; `password_hash` may be
    /// `None`) and `identity` for them, with `effects`, in one transaction. `Conflict(Email)` or
    /// `Conflict(Username)` as `create_user`; `Conflict(Identity)` when the subject is linked
    /// already. Nothing changes then. `identity.user_id` must be `user.id`.
    async fn create_user_with_identity(
        &self,
        user: NewUser,
        identity: NewIdentity,
        effects: Effects,
    ) -> Result<UserRecord, StoreError>;

    /// Links `identity` to its user, with `effects`. `NotFound` for an unknown user;
    /// `Conflict(Identity)` when the subject belongs to anyone already; `Conflict(ProviderLinked)`
    /// when the user has an identity of that provider. Nothing changes then.
    async fn link_identity(
        &self,
        identity: NewIdentity,
        effects: Effects,
    ) -> Result<IdentityRecord, StoreError>;

    /// Removes `user_id`'s identity of `provider`, with `effects`, unless it is their last way to
    /// sign in, counted under the removal's lock so that two concurrent removals cannot take
    /// both of a user's last two methods. `NotFound` when there is no such identity.
    async fn unlink_identity(
        &self,
        user_id: Uuid,
        provider: &str,
        effects: Effects,
    ) -> Result<Unlinked, StoreError>;

    /// Stores a pending link, and deletes those that expired before it was made.
    /// `Conflict(Other)` should its hash exist already; `NotFound` for an unknown user.
    async fn create_pending_link(&self, link: PendingLink) -> Result<(), StoreError>;

    /// The pending link whose id hashes to `link_hash`, expired or not (the caller checks).
    async fn find_pending_link(&self, link_hash: &str) -> Result<Option<PendingLink>, StoreError>;

    /// Deletes and returns that pending link: of two concurrent takes, one gets it.
    async fn take_pending_link(&self, link_hash: &str) -> Result<Option<PendingLink>, StoreError>;

    /// Removes `user_id`'s password, with `effects`, unless it is their last way to sign in
    /// (counted under the same lock as [`Self::unlink_identity`], so a removal and an unlink
    /// racing cannot take both of a user's last two methods). `Ok(false)` for the last method;
    /// `NotFound` for an unknown user or one without a password.
    async fn remove_password(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<bool, StoreError>;

    /// Records a sign-in through the identity `id` (`last_used_at = now`). `NotFound` when it is
    /// gone.
    async fn touch_identity(&self, id: Uuid, now: OffsetDateTime) -> Result<(), StoreError>;

    /// Stores a started flow, and deletes the flows that expired before it started (so that
    /// abandoned flows do not pile up). `Conflict(Other)` should its state hash exist already.
    async fn begin_sign_in_flow(&self, flow: SignInFlow) -> Result<(), StoreError>;

    /// Deletes and returns the flow whose state hashes to `state_hash`, expired or not (the
    /// caller checks): of two concurrent takes, one gets it and the other `None`.
    async fn take_sign_in_flow(&self, state_hash: &str) -> Result<Option<SignInFlow>, StoreError>;
}

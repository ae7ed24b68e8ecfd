//! The invitation aggregate: invitations to join an organization, as stored, and the use cases
//! that create, revoke, resend and accept them, each atomic on both backends.
//!
//! An invitation's token is never stored: only its SHA-256 (`token_hash`, lowercase hex). Its
//! status is derived from the timestamps ([`InvitationRecord::status`]); at most one invitation
//! per organization and email is *active* (neither accepted nor revoked), which the schema
//! enforces with a partial unique index so that concurrent creations cannot both pass.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::store::NewUser;
use crate::challenge::store::NewEmailNotice;
use crate::org::store::{MembershipRecord, OrganizationRecord};
use crate::org::OrgRole;
use crate::store::{Effects, StoreError};

/// An invitation's status, derived: `accepted` once accepted, `revoked` once revoked, `expired`
/// once `expires_at` has passed, else `pending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Revoked,
    Expired,
}

impl InvitationStatus {
    /// Upstream's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }
}

/// An invitation as stored (without its token hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationRecord {
    pub id: Uuid,
    pub organization_id: Uuid,
    /// Normalised (as users' emails are).
    pub email: String,
    /// `Admin` or `Member`: owners are not invited.
    pub role: OrgRole,
    /// An opaque JSON object, `{}` by default, echoed in webhooks.
    pub metadata: serde_json::Value,
    /// `None` once the inviting user is deleted (or when the system invited).
    pub invited_by_user_id: Option<Uuid>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub accepted_at: Option<OffsetDateTime>,
    pub accepted_by_user_id: Option<Uuid>,
    pub revoked_at: Option<OffsetDateTime>,
    pub revoked_by_user_id: Option<Uuid>,
}

impl InvitationRecord {
    /// The status at `now` (an invitation expires at `expires_at` exactly).
    pub fn status(&self, now: OffsetDateTime) -> InvitationStatus {
        if self.accepted_at.is_some() {
            InvitationStatus::Accepted
        } else if self.revoked_at.is_some() {
            InvitationStatus::Revoked
        } else if now >= self.expires_at {
            InvitationStatus::Expired
        } else {
            InvitationStatus::Pending
        }
    }

    /// Neither accepted nor revoked (it may have expired): the one the active index counts.
    pub fn is_active(&self) -> bool {
        self.accepted_at.is_none() && self.revoked_at.is_none()
    }
}

/// An invitation with its organization and its token hash, as found by id or by token.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredInvitation {
    pub invitation: InvitationRecord,
    pub organization: OrganizationRecord,
    /// Lowercase hex SHA-256 of the token.
    pub token_hash: String,
}

impl std::fmt::Debug for StoredInvitation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredInvitation")
            .field("invitation", &self.invitation)
            .field("organization", &self.organization)
            .field("token_hash", &"<redacted>")
            .finish()
    }
}

/// An invitation to insert.
#[derive(Clone, PartialEq, Eq)]
pub struct NewInvitation {
    pub id: Uuid,
    pub organization_id: Uuid,
    /// Normalised.
    pub email: String,
    pub role: OrgRole,
    /// A JSON object (the service bounds its size).
    pub metadata: serde_json::Value,
    /// Lowercase hex SHA-256 of the token; unique.
    pub token_hash: String,
    pub invited_by_user_id: Option<Uuid>,
    /// Also `updated_at`.
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// The invitation email, inserted as an email job in the same transaction (due at
    /// `created_at`), unless `None`. It carries no token: the worker derives it.
    pub notice: Option<NewEmailNotice>,
}

impl std::fmt::Debug for NewInvitation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewInvitation")
            .field("id", &self.id)
            .field("organization_id", &self.organization_id)
            .field("email", &self.email)
            .field("role", &self.role)
            .field("metadata", &self.metadata)
            .field("token_hash", &"<redacted>")
            .field("invited_by_user_id", &self.invited_by_user_id)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("notice", &self.notice)
            .finish()
    }
}

/// What [`InvitationStore::create_invitation`] did.
#[allow(
    clippy::large_enum_variant,
    reason = "one per call, matched at once: a box would only add an allocation"
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invited {
    /// Inserted, with its email job and effects.
    Created(InvitationRecord),
    /// Refused: a user with that email is a member of the organization.
    AlreadyMember,
    /// Refused: an active, unexpired invitation for that email exists.
    AlreadyPending,
}

/// What [`InvitationStore::revoke_invitation`] did.
#[allow(
    clippy::large_enum_variant,
    reason = "one per call, matched at once: a box would only add an allocation"
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    /// Revoked; the record as it now is.
    Revoked(InvitationRecord),
    /// Refused: the invitation is not pending (accepted, revoked or expired).
    NotPending(InvitationStatus),
}

/// What [`InvitationStore::resend_invitation`] did.
#[allow(
    clippy::large_enum_variant,
    reason = "one per call, matched at once: a box would only add an allocation"
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resent {
    /// The old invitation was revoked and its replacement inserted.
    Resent {
        revoked: InvitationRecord,
        created: InvitationRecord,
    },
    /// Refused: the invitation was accepted or revoked (an expired one may be resent).
    NotResendable(InvitationStatus),
    /// Refused: a user with that email has become a member of the organization.
    AlreadyMember,
}

/// What [`InvitationStore::accept_invitation`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Accepted: the membership was created with the invitation's role.
    Accepted {
        invitation: InvitationRecord,
        membership: MembershipRecord,
    },
    /// This user had already accepted it: nothing changed (accepting is idempotent).
    AlreadyAccepted {
        invitation: InvitationRecord,
        membership: Option<MembershipRecord>,
    },
    /// Refused: revoked, expired, or accepted by someone else.
    NotPending(InvitationStatus),
    /// Refused: the user's email is not the invitation's.
    EmailMismatch,
    /// Refused: the user is already a member of the organization; the invitation stays pending.
    AlreadyMember,
}

/// Builds the effects of a revocation from the record as revoked (under the row's lock).
pub type RevokeEffects = Box<dyn FnOnce(&InvitationRecord) -> Effects + Send>;
/// Builds the effects of a resend from the revoked and the created records.
pub type ResendEffects = Box<dyn FnOnce(&InvitationRecord, &InvitationRecord) -> Effects + Send>;
/// Builds the effects of an acceptance from the accepted record and the new membership.
pub type AcceptEffects = Box<dyn FnOnce(&InvitationRecord, &MembershipRecord) -> Effects + Send>;

/// Invitations: implemented for PostgreSQL and SQLite.
#[async_trait]
pub trait InvitationStore: Send + Sync + 'static {
    /// Creates an invitation, in one transaction, in this order: `NotFound` for an unknown
    /// organization; `AlreadyMember` when a user whose email is `new.email` is a member; an
    /// active but expired invitation for the same organization and email is revoked
    /// (`revoked_at = now`, no revoker, no effects of its own); `AlreadyPending` when an
    /// active unexpired one remains (also when a concurrent creation won the active index);
    /// else the invitation is inserted with its email job and `effects`. Refusals change
    /// nothing.
    async fn create_invitation(
        &self,
        new: NewInvitation,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<Invited, StoreError>;

    /// One invitation by id, with its organization and token hash.
    async fn find_invitation(&self, id: Uuid) -> Result<Option<StoredInvitation>, StoreError>;

    /// The invitation whose token hashes to `token_hash`, with its organization.
    async fn find_invitation_by_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<StoredInvitation>, StoreError>;

    /// An organization's invitations, every status, newest first (`created_at`, then `id`,
    /// descending). Empty for an unknown organization.
    async fn list_invitations(
        &self,
        organization_id: Uuid,
    ) -> Result<Vec<InvitationRecord>, StoreError>;

    /// Revokes a pending invitation of `organization_id` (`revoked_at = now`, `revoked_by`),
    /// with the effects built from the revoked record, checked under the row's lock.
    /// `NotFound` for an unknown id or one of another organization.
    async fn revoke_invitation(
        &self,
        organization_id: Uuid,
        id: Uuid,
        revoked_by: Option<Uuid>,
        now: OffsetDateTime,
        effects: RevokeEffects,
    ) -> Result<Revoked, StoreError>;

    /// Resends an invitation of `organization_id`: in one transaction, under the old row's
    /// lock, refuses an accepted or revoked one (`NotResendable`) or one whose email has
    /// become a member's (`AlreadyMember`); else revokes it (`revoked_at = now`,
    /// `revoked_by`) and inserts `replacement` (the caller copies the email, role and
    /// metadata; a new id, token hash and expiry) with its email job and the effects.
    /// `NotFound` for an unknown id or one of another organization.
    async fn resend_invitation(
        &self,
        organization_id: Uuid,
        id: Uuid,
        revoked_by: Option<Uuid>,
        replacement: NewInvitation,
        now: OffsetDateTime,
        effects: ResendEffects,
    ) -> Result<Resent, StoreError>;

    /// Accepts the invitation whose token hashes to `token_hash` for `user_id`, in one
    /// transaction under the invitation's lock, in this order: `NotFound` for an unknown
    /// token or user; `AlreadyAccepted` when this user accepted it (nothing changes);
    /// `NotPending` when it is accepted by another, revoked or expired at `now`;
    /// `EmailMismatch` when the user's email is not the invitation's; `AlreadyMember` when
    /// the user is a member already; else inserts the membership (the invitation's role,
    /// `created_at = now`), sets `accepted_at = now` and `accepted_by_user_id`, and commits the
    /// effects. Refusals change nothing.
    async fn accept_invitation(
        &self,
        token_hash: &str,
        user_id: Uuid,
        now: OffsetDateTime,
        effects: AcceptEffects,
    ) -> Result<Accepted, StoreError>;

    /// Creates an account for the invitation whose token hashes to `token_hash` and accepts
    /// it, in one transaction under the invitation's lock, in this order: `NotFound` for an
    /// unknown token; `NotPending` unless pending at `now`; `EmailMismatch` unless
    /// `user.email` is the invitation's; a taken email or username is
    /// `Err(Conflict(Email | Username))` as in `create_user`. Else inserts the user (with
    /// `user.organization` as their initial organization and owner membership when
    /// `with_initial_organization`, else none: in `single` mode an invited user belongs to
    /// the inviting organization only), the membership with the invitation's role
    /// (`created_at = now`), marks the invitation accepted by them, and commits `user_effects`
    /// then the effects built from the accepted invitation and the membership. Refusals
    /// change nothing. Never `AlreadyAccepted` or `AlreadyMember` (the account is new).
    async fn signup_with_invitation(
        &self,
        token_hash: &str,
        user: NewUser,
        with_initial_organization: bool,
        now: OffsetDateTime,
        user_effects: Effects,
        effects: AcceptEffects,
    ) -> Result<Accepted, StoreError>;
}

//! The storage interface: one trait per aggregate, each next to its feature
//! ([`UserStore`] in `auth`, [`SessionStore`] in `session`, [`EventStore`] in `events`,
//! [`AuditStore`] in `audit`), [`SchemaStore`] here, and the [`Store`] supertrait over all of
//! them that a backend implements, so `Arc<dyn Store>` is the whole database and a service takes
//! only the trait it uses. Each method is one use case and atomic on its own; no transaction
//! handle crosses this boundary and "now" is always passed in, so backends never read a clock.

use std::collections::BTreeSet;

use async_trait::async_trait;

pub use crate::audit::store::{AuditFilter, AuditStore};
pub use crate::auth::store::{NewUser, SessionsToRevoke, UserRecord, UserStore};
pub use crate::challenge::store::{
    Attempt, ChallengeRecord, ChallengeStore, CodeRecord, Completed, Completion, InvitationJoin,
    NewChallenge, NewEmailNotice, NewSignupUser, PendingAction, Purpose, Resend,
};
pub use crate::events::store::{ClaimedEvent, EventRecord, EventStatus, EventStore};
pub use crate::identity::store::{
    IdentityRecord, IdentityStore, NewIdentity, PendingLink, SignInFlow, Unlinked,
};
pub use crate::invitation::store::{
    AcceptEffects, Accepted, InvitationRecord, InvitationStatus, InvitationStore, Invited,
    NewInvitation, ResendEffects, Resent, RevokeEffects, Revoked, StoredInvitation,
};
pub use crate::mail::store::{ClaimedEmail, EmailRecord, EmailStatus, EmailStore};
pub use crate::org::store::{
    ActiveOrganization, Backfilled, InitialOrganization, MemberRecord, MembershipRecord,
    MembershipWithOrganization, NewOrganization, OrganizationRecord, OrganizationStore, Removal,
    RoleEffects, UserDeletion, UserDeletionEffects,
};
pub use crate::session::store::{
    Change, ChangeFeed, EffectsFor, LiveSession, NewRefreshToken, NewSession, PurgeCounts,
    RefreshTokenRecord, Replacement, RotateIf, RotateOutcome, SessionRecord, SessionStore,
    SessionUser, Switched, TokenHash,
};

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
    /// `organization_memberships` (one membership per user and organization)
    Membership,
    /// `auth_providers (provider, provider_user_id)`: the subject belongs to a user already.
    Identity,
    /// `auth_providers (user_id, provider)`: the user has an identity of that provider.
    ProviderLinked,
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

    /// These effects, then `other`'s.
    pub fn and(mut self, other: Effects) -> Self {
        self.events.extend(other.events);
        self.audit.extend(other.audit);
        self
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.audit.is_empty()
    }
}

/// The database itself: reachability and the schema.
#[async_trait]
pub trait SchemaStore: Send + Sync + 'static {
    /// Cheap round trip, for health checks.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Applies every pending embedded migration.
    async fn migrate(&self) -> Result<(), StoreError>;
    /// Compares the database's applied migrations with the embedded ones.
    async fn schema_state(&self) -> Result<SchemaState, StoreError>;
}

/// The whole storage interface, implemented for PostgreSQL and SQLite: every aggregate's trait.
/// Implemented for any type that implements them all; `Arc<dyn Store>` upcasts to each
/// aggregate's `Arc<dyn …Store>`.
pub trait Store:
    SchemaStore
    + UserStore
    + SessionStore
    + EventStore
    + AuditStore
    + ChallengeStore
    + EmailStore
    + OrganizationStore
    + InvitationStore
    + IdentityStore
{
}

impl<T> Store for T where
    T: SchemaStore
        + UserStore
        + SessionStore
        + EventStore
        + AuditStore
        + ChallengeStore
        + EmailStore
        + OrganizationStore
        + InvitationStore
        + IdentityStore
{
}

#[cfg(test)]
mod tests {
    use super::*;

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

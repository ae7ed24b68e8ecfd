//! The user aggregate: accounts as stored, and the use cases that read and change them.
//!
//! Every write that changes a user takes the [`Effects`] it causes (outbox events, audit rows)
//! and commits them in the same transaction as the change; a write that changes nothing
//! (`NotFound`, `Conflict`) commits none of them.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::org::store::InitialOrganization;
use crate::store::{Effects, StoreError};

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
    /// Created with the user, in the same transaction, with the user as owner.
    pub organization: InitialOrganization,
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
            .field("organization", &self.organization)
            .finish()
    }
}

/// Which of a user's sessions a password change revokes along with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionsToRevoke {
    /// None (re-hashing an unchanged password).
    None,
    /// Every live session of the user but this one (the caller's own, which survives).
    AllExcept(Uuid),
    /// Every live session of the user.
    All,
}

/// Users: implemented for PostgreSQL and SQLite.
#[async_trait]
pub trait UserStore: Send + Sync + 'static {
    /// Inserts a user with their initial organization and owner membership.
    /// `Conflict(Email | Username)` when taken.
    async fn create_user(&self, user: NewUser, effects: Effects) -> Result<(), StoreError>;
    /// The user with this id, if any.
    async fn find_user_by_id(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError>;
    /// `email` must already be normalised (trimmed, lowercased).
    async fn find_user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError>;
    /// Replaces the password hash and revokes the user's live sessions that `revoke` names,
    /// in one transaction with `effects` (re-hash on login: [`SessionsToRevoke::None`]; a
    /// password change: every session but the caller's). Returns how many sessions it revoked
    /// (live ones only: unrevoked and unexpired at `now`; their refresh tokens then refresh no
    /// more). `NotFound` for an unknown user, and nothing changes.
    async fn set_password_hash(
        &self,
        user_id: Uuid,
        hash: &str,
        revoke: SessionsToRevoke,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<u64, StoreError>;
    /// `NotFound` for an unknown user, `Conflict(Username)` when taken.
    async fn set_username(
        &self,
        user_id: Uuid,
        username: &str,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<(), StoreError>;
    /// Grants or revokes `authara:admin` by email. `NotFound` for an unknown email.
    async fn set_admin_by_email(
        &self,
        email: &str,
        is_admin: bool,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<(), StoreError>;
    /// Disables or enables a user; disabling also revokes all their sessions, in one transaction.
    /// `NotFound` for an unknown user.
    async fn set_disabled(
        &self,
        user_id: Uuid,
        disabled: bool,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<(), StoreError>;
    /// Deletes a user with their sessions and refresh tokens. `NotFound` for an unknown user.
    async fn delete_user(&self, user_id: Uuid, effects: Effects) -> Result<(), StoreError>;
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
            organization: InitialOrganization {
                id: Uuid::nil(),
                name: "alice".to_owned(),
                kind: crate::org::OrgKind::Team,
            },
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
}

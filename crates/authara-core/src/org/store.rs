//! The organization aggregate: organizations, memberships and the pinned organization mode, as
//! stored, and the use cases that read and change them.
//!
//! A user's first organization is created with the user (`NewUser::organization`), in the same
//! transaction; a session's active organization is chosen when the session is created
//! (`NewSession::organization_id`). Both live in their own aggregates' methods.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{OrgKind, OrgMode, OrgRole};
use crate::store::{Effects, StoreError};

/// An organization as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationRecord {
    pub id: Uuid,
    pub name: String,
    pub kind: OrgKind,
    /// `None` once the creator is deleted.
    pub created_by_user_id: Option<Uuid>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A membership as stored: one user's role in one organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipRecord {
    pub organization_id: Uuid,
    pub user_id: Uuid,
    pub role: OrgRole,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A membership with the member's account, as the member lists show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    pub membership: MembershipRecord,
    pub email: String,
    pub username: String,
    pub disabled: bool,
}

/// A membership with its organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipWithOrganization {
    pub organization: OrganizationRecord,
    pub membership: MembershipRecord,
}

/// The organization a session acts in, with the user's role there, as read together with the
/// session: what access tokens carry (`org_id`, `org_role`) and `GET /user` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveOrganization {
    pub id: Uuid,
    pub name: String,
    pub role: OrgRole,
}

/// The organization created together with a new user, who becomes its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialOrganization {
    pub id: Uuid,
    pub name: String,
    pub kind: OrgKind,
}

/// What [`OrganizationStore::backfill_organizations`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backfilled {
    /// Users who had no membership and got their initial organization.
    pub organizations: u64,
    /// Sessions that had no active organization and got their user's default one.
    pub sessions: u64,
}

/// Organizations and memberships: implemented for PostgreSQL and SQLite.
#[async_trait]
pub trait OrganizationStore: Send + Sync + 'static {
    /// Pins `mode` as the database's organization mode if none is pinned yet, and returns the
    /// pinned one (which may differ: the caller refuses to start then). Idempotent; of several
    /// concurrent first calls one pins and all return its mode.
    async fn pin_organization_mode(
        &self,
        mode: OrgMode,
        now: OffsetDateTime,
    ) -> Result<OrgMode, StoreError>;
    /// The pinned organization mode, if any.
    async fn organization_mode(&self) -> Result<Option<OrgMode>, StoreError>;
    /// Gives every user without a membership an initial organization of `kind`, named after
    /// the username, with them as owner (created at `now`, no events); then sets the active
    /// organization of every session without one to its user's default organization (see
    /// [`crate::session::store::NewSession::organization_id`]). One transaction; a second call
    /// finds nothing to do.
    async fn backfill_organizations(
        &self,
        kind: OrgKind,
        now: OffsetDateTime,
    ) -> Result<Backfilled, StoreError>;
    /// Creates `organization` with `user_id` as owner, with `effects`, exactly when the user
    /// exists and has no membership at all; returns whether it did.
    async fn ensure_initial_organization(
        &self,
        user_id: Uuid,
        organization: InitialOrganization,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<bool, StoreError>;

    /// The organization with this id.
    async fn find_organization(&self, id: Uuid) -> Result<Option<OrganizationRecord>, StoreError>;
    /// `user_id`'s membership in `organization_id`, with the organization.
    async fn find_membership(
        &self,
        organization_id: Uuid,
        user_id: Uuid,
    ) -> Result<Option<MembershipWithOrganization>, StoreError>;
    /// Every membership of `user_id`, oldest first (ties by organization id).
    async fn list_user_memberships(
        &self,
        user_id: Uuid,
    ) -> Result<Vec<MembershipWithOrganization>, StoreError>;
    /// Every member of `organization_id`, oldest membership first (ties by user id).
    async fn list_members(&self, organization_id: Uuid) -> Result<Vec<MemberRecord>, StoreError>;
    /// Renames an organization (`updated_at = now`) with `effects`; returns it as renamed.
    /// `NotFound` for an unknown organization, and nothing changes.
    async fn rename_organization(
        &self,
        id: Uuid,
        name: &str,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<OrganizationRecord, StoreError>;

    /// Creates a team organization with `owner` as its owner, with `effects`. `NotFound` when
    /// the owner does not exist, and nothing changes.
    async fn create_team_organization(
        &self,
        organization: NewOrganization,
        owner: Uuid,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<MembershipWithOrganization, StoreError>;
    /// Adds `user_id` to `organization_id` with `role`, with `effects`. `NotFound` for an
    /// unknown organization or user, `Conflict(Membership)` when already a member; nothing
    /// changes then.
    async fn add_membership(
        &self,
        organization_id: Uuid,
        user_id: Uuid,
        role: OrgRole,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<MembershipRecord, StoreError>;
    /// Changes a member's role (`updated_at = now`), with `effects`; returns the membership as
    /// changed. `NotFound` when there is no such membership.
    async fn set_membership_role(
        &self,
        organization_id: Uuid,
        user_id: Uuid,
        role: OrgRole,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<MembershipRecord, StoreError>;
    /// Makes `new_owner` (a member) the owner and every current owner an admin, in one
    /// transaction with `effects`. `NotFound` when `new_owner` is not a member.
    async fn transfer_ownership(
        &self,
        organization_id: Uuid,
        new_owner: Uuid,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<(), StoreError>;
    /// Removes a membership, with the effects `effects` builds from the removed role, unless
    /// that would break an invariant: the rules are checked against the rows the removal locks,
    /// in its transaction, so two concurrent removals cannot both pass them (e.g. remove the
    /// last two owners). In order: `NotFound` when there is no such membership; `OwnerProtected`
    /// when the member is an owner and `owner_removable` is false; `LastOwner` when the member
    /// is the organization's only owner; `LastMembership` when it is the user's only
    /// membership. Refusals change nothing and write no effects. The user's sessions acting in
    /// that organization stop being live at once (they have no membership there any more).
    async fn remove_membership(
        &self,
        organization_id: Uuid,
        user_id: Uuid,
        owner_removable: bool,
        effects: RoleEffects,
    ) -> Result<Removal, StoreError>;
    /// Deletes an organization with its memberships, with `effects`; sessions acting in it
    /// lose their active organization (and so stop being live). `NotFound` for an unknown id.
    async fn delete_organization(&self, id: Uuid, effects: Effects) -> Result<(), StoreError>;

    /// Deletes a user unless that would break an invariant, checked against the rows the
    /// deletion locks, in its transaction (so a concurrent removal, transfer or deletion cannot
    /// slip between the check and the delete). In order: `NotFound` for an unknown user;
    /// `LastActiveAdmin` when they are an enabled admin and no other enabled admin exists;
    /// `LastOwner(org)` when they are the only owner of an organization that has other members
    /// (the lowest such id). Else the organizations of which they are the only member (their
    /// personal one, a `single`-mode team nobody joined) are deleted with them, their other
    /// memberships go with the user's row, and the effects are built from both lists. Refusals
    /// change nothing and write no effects.
    async fn delete_user_checked(
        &self,
        user_id: Uuid,
        effects: UserDeletionEffects,
    ) -> Result<UserDeletion, StoreError>;
}

/// Builds the effects of a user's deletion from the organizations deleted with them and the
/// memberships they had elsewhere, read under the deletion's locks.
pub type UserDeletionEffects =
    Box<dyn FnOnce(&[OrganizationRecord], &[MembershipRecord]) -> Effects + Send>;

/// What [`OrganizationStore::delete_user_checked`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserDeletion {
    /// Deleted, with `organizations` (of which they were the only member; by id) and leaving
    /// `memberships` (their memberships in organizations that stay; by organization id).
    Deleted {
        organizations: Vec<OrganizationRecord>,
        memberships: Vec<MembershipRecord>,
    },
    /// Refused: the only enabled admin.
    LastActiveAdmin,
    /// Refused: the only owner of this organization, which has other members.
    LastOwner(Uuid),
}

impl UserDeletion {
    /// The refusal, if any, of deleting a user who `is_last_active_admin`, given each of their
    /// memberships as `(organization, role, owners, members)` counted under the deletion's
    /// locks, in [`OrganizationStore::delete_user_checked`]'s order. `None`: it may go ahead.
    pub fn refusal(
        is_last_active_admin: bool,
        memberships: &[(Uuid, OrgRole, i64, i64)],
    ) -> Option<UserDeletion> {
        if is_last_active_admin {
            return Some(UserDeletion::LastActiveAdmin);
        }
        memberships
            .iter()
            .filter(|(_, role, owners, members)| {
                *role == OrgRole::Owner && *owners <= 1 && *members > 1
            })
            .map(|(org, ..)| *org)
            .min()
            .map(UserDeletion::LastOwner)
    }
}

/// Builds the [`Effects`] of a membership change once the role it concerned is read under the
/// change's lock, so that what is recorded (an event's `role`) is what was committed.
pub type RoleEffects = Box<dyn FnOnce(OrgRole) -> Effects + Send>;

/// What [`OrganizationStore::remove_membership`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Removed; the member had this role.
    Removed(OrgRole),
    /// Refused: the member is an owner and the caller may not remove owners.
    OwnerProtected,
    /// Refused: the member is the organization's only owner.
    LastOwner,
    /// Refused: it is the user's only membership.
    LastMembership,
}

impl Removal {
    /// The refusal, if any, of removing a member with `role` from an organization with `owners`
    /// owners when the user has `memberships` memberships (each counted under the removal's
    /// lock), in [`OrganizationStore::remove_membership`]'s order. `None`: it may go ahead.
    pub fn refusal(
        role: OrgRole,
        owners: i64,
        memberships: i64,
        owner_removable: bool,
    ) -> Option<Removal> {
        if role == OrgRole::Owner && !owner_removable {
            Some(Removal::OwnerProtected)
        } else if role == OrgRole::Owner && owners <= 1 {
            Some(Removal::LastOwner)
        } else if memberships <= 1 {
            Some(Removal::LastMembership)
        } else {
            None
        }
    }
}

/// An organization to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrganization {
    pub id: Uuid,
    pub name: String,
}

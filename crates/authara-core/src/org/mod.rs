//! Organizations (upstream's model, `UPSTREAM.md` §5.4): the product shape (`AUTHARA_ORG_MODE`),
//! every user's memberships and roles, the organization each session acts in, and what the
//! organization routes may show to whom.

pub mod store;

use std::sync::Arc;

use serde::Serialize;
use uuid::Uuid;

use self::store::{
    InitialOrganization, MemberRecord, MembershipWithOrganization, NewOrganization,
    OrganizationRecord, OrganizationStore, Removal, RoleEffects,
};
use crate::clock::Clock;
use crate::events::{EventType, Publisher};
use crate::random::{uuid_v4, Random};
use crate::session::SessionService;
use crate::store::{Effects, StoreError};

/// Name of an initial organization when the user has neither username nor email local part.
pub const DEFAULT_ORGANIZATION_NAME: &str = "Personal workspace";
/// Longest organization name, in characters (upstream bounds it by its request size only).
pub const MAX_ORGANIZATION_NAME_CHARS: usize = 255;

/// The product shape, fixed for a database at its first start (`AUTHARA_ORG_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrgMode {
    /// Every user has one personal organization and sees nothing else.
    Personal,
    /// Every direct signup creates a team organization; invitations join it (upstream default).
    Single,
    /// Personal organizations plus any number of team organizations; switching between them.
    Multi,
}

impl OrgMode {
    /// Upstream's default.
    pub const DEFAULT: Self = Self::Single;

    /// The configuration and database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Personal => "personal",
            Self::Single => "single",
            Self::Multi => "multi",
        }
    }

    /// Exact spelling only.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Personal, Self::Single, Self::Multi]
            .into_iter()
            .find(|m| m.as_str() == s)
    }

    /// The kind of the organization a direct signup creates.
    pub fn initial_kind(self) -> OrgKind {
        match self {
            Self::Single => OrgKind::Team,
            Self::Personal | Self::Multi => OrgKind::Personal,
        }
    }

    /// Whether invitations exist in this mode.
    pub fn allows_invitations(self) -> bool {
        !matches!(self, Self::Personal)
    }

    /// Whether sessions may switch organizations.
    pub fn allows_switching(self) -> bool {
        matches!(self, Self::Multi)
    }

    /// Whether members of an organization may be listed (`…/current/members`).
    pub fn has_visible_organizations(self) -> bool {
        !matches!(self, Self::Personal)
    }

    /// The capabilities document (`GET /auth/api/v1/capabilities`), upstream's values by mode.
    pub fn capabilities(self, public_management: bool) -> Capabilities {
        // Upstream's three `multi`-only flags are one rule here: team organizations, leaving
        // and switching exist together.
        let multi = self.allows_switching();
        Capabilities {
            organization_mode: self.as_str(),
            has_visible_organizations: self.has_visible_organizations(),
            allows_invitations: self.allows_invitations(),
            allows_public_organization_management: public_management,
            allows_org_switching: multi,
            allows_user_created_team_orgs: multi,
            allows_organization_leave: multi,
        }
    }
}

impl std::fmt::Display for OrgMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `GET /auth/api/v1/capabilities`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    pub organization_mode: &'static str,
    pub has_visible_organizations: bool,
    pub allows_invitations: bool,
    pub allows_public_organization_management: bool,
    pub allows_org_switching: bool,
    pub allows_user_created_team_orgs: bool,
    pub allows_organization_leave: bool,
}

/// Whether an organization is someone's own or a shared one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrgKind {
    Personal,
    Team,
}

impl OrgKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Personal => "personal",
            Self::Team => "team",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Personal, Self::Team]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A member's role in an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrgRole {
    Owner,
    Admin,
    Member,
}

impl OrgRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Owner, Self::Admin, Self::Member]
            .into_iter()
            .find(|r| r.as_str() == s)
    }

    /// Owners and admins manage an organization (rename it, see its invitations).
    pub fn is_manager(self) -> bool {
        matches!(self, Self::Owner | Self::Admin)
    }
}

impl std::fmt::Display for OrgRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name of a user's initial organization: the username, else the email's local part, else
/// [`DEFAULT_ORGANIZATION_NAME`] (upstream's rule).
pub fn initial_name(username: &str, email: &str) -> String {
    let username = username.trim();
    if !username.is_empty() {
        return username.to_owned();
    }
    let local = email.split('@').next().unwrap_or_default().trim();
    if local.is_empty() {
        DEFAULT_ORGANIZATION_NAME.to_owned()
    } else {
        local.to_owned()
    }
}

/// A new user's initial organization under `mode`, with an id from `random`.
pub fn initial_organization(
    mode: OrgMode,
    random: &dyn Random,
    username: &str,
    email: &str,
) -> InitialOrganization {
    InitialOrganization {
        id: uuid_v4(random),
        name: initial_name(username, email),
        kind: mode.initial_kind(),
    }
}

/// A valid organization name: trimmed, non-empty, at most [`MAX_ORGANIZATION_NAME_CHARS`], and
/// with no control characters.
pub fn parse_name(name: &str) -> Option<&str> {
    let name = name.trim();
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_ORGANIZATION_NAME_CHARS
        && !name.chars().any(char::is_control);
    ok.then_some(name)
}

/// The events that creating an organization with its owner publishes: `organization.created`
/// and `organization.membership.created` (initial membership: no invitation, empty metadata),
/// upstream's payloads.
pub fn creation_events(
    events: &Publisher,
    organization: &InitialOrganization,
    owner: Uuid,
    at: time::OffsetDateTime,
) -> Effects {
    let org = organization_data(
        organization.id,
        &organization.name,
        organization.kind,
        Some(owner),
    );
    let mut membership = membership_data(organization.id, owner, OrgRole::Owner);
    if let Some(fields) = membership.as_object_mut() {
        fields.insert("is_initial_membership".into(), true.into());
        fields.insert("invitation_id".into(), serde_json::Value::Null);
        fields.insert("metadata".into(), serde_json::json!({}));
    }
    events
        .effects(EventType::OrganizationCreated, org, at)
        .and(events.effects(EventType::MembershipCreated, membership, at))
}

/// Upstream's `data` of `organization.*`: `{organization_id, name, kind, created_by_user_id}`.
pub(crate) fn organization_data(
    id: Uuid,
    name: &str,
    kind: OrgKind,
    created_by: Option<Uuid>,
) -> serde_json::Value {
    serde_json::json!({
        "organization_id": id.to_string(),
        "name": name,
        "kind": kind.as_str(),
        "created_by_user_id": created_by.map(|u| u.to_string()),
    })
}

/// Upstream's `data` of `organization.membership.updated` / `.deleted` (and the start of
/// `.created`'s): `{organization_id, user_id, role}`.
pub(crate) fn membership_data(
    organization_id: Uuid,
    user_id: Uuid,
    role: OrgRole,
) -> serde_json::Value {
    serde_json::json!({
        "organization_id": organization_id.to_string(),
        "user_id": user_id.to_string(),
        "role": role.as_str(),
    })
}

/// Why an organization route refused.
#[derive(Debug, thiserror::Error)]
pub enum OrgError {
    /// The internal API's actor is not a member of the organization (`403 actor_not_member`).
    #[error("actor is not a member")]
    ActorNotMember,
    /// The internal API's actor's role does not allow it (`403 actor_not_allowed`).
    #[error("actor is not allowed")]
    ActorNotAllowed,
    /// No such user (`404 user_not_found`).
    #[error("user not found")]
    UserNotFound,
    /// Personal organizations cannot be changed this way (`409 personal_organization_immutable`).
    #[error("personal organization is immutable")]
    PersonalImmutable,
    /// Only the actor may be a member of an organization being deleted
    /// (`409 organization_has_other_members`).
    #[error("organization has other members")]
    HasOtherMembers,
    /// An organization must keep an owner (`409 last_organization_owner`).
    #[error("last organization owner")]
    LastOwner,
    /// A user must keep at least one membership (`409 last_organization_member`).
    #[error("last organization membership")]
    LastMembership,
    /// The only enabled admin cannot be deleted (`409 last_active_admin`).
    #[error("last active admin")]
    LastActiveAdmin,
    /// Not allowed for this caller or in this mode (`403 forbidden`).
    #[error("forbidden")]
    Forbidden,
    /// No such organization (`404 organization_not_found`).
    #[error("organization not found")]
    OrganizationNotFound,
    /// No such membership (`404 membership_not_found`).
    #[error("membership not found")]
    MembershipNotFound,
    /// A bad organization name (`400 invalid_request`).
    #[error("invalid organization name")]
    InvalidName,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The organization service: what the organization routes read and change.
#[derive(Clone)]
pub struct OrgService {
    store: Arc<dyn OrganizationStore>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    events: Publisher,
    sessions: SessionService,
    mode: OrgMode,
    public_management: bool,
}

impl OrgService {
    /// Wires the service.
    pub fn new(
        store: Arc<dyn OrganizationStore>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
        sessions: SessionService,
        mode: OrgMode,
        public_management: bool,
    ) -> Self {
        Self {
            store,
            events: Publisher::off(random.clone()),
            clock,
            random,
            sessions,
            mode,
            public_management,
        }
    }

    /// Publishes `organization.*` events through `events`.
    pub fn with_events(mut self, events: Publisher) -> Self {
        self.events = events;
        self
    }

    /// The mode this server runs in.
    pub fn mode(&self) -> OrgMode {
        self.mode
    }

    /// Whether `AUTHARA_PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED` is on.
    pub fn public_management(&self) -> bool {
        self.public_management
    }

    /// The capabilities document.
    pub fn capabilities(&self) -> Capabilities {
        self.mode.capabilities(self.public_management)
    }

    /// The caller's memberships, oldest first.
    pub async fn memberships(
        &self,
        user_id: Uuid,
    ) -> Result<Vec<MembershipWithOrganization>, OrgError> {
        Ok(self.store.list_user_memberships(user_id).await?)
    }

    /// The members of the caller's active organization; `Forbidden` in `personal` mode.
    pub async fn current_members(
        &self,
        organization_id: Uuid,
    ) -> Result<Vec<MemberRecord>, OrgError> {
        if !self.mode.has_visible_organizations() {
            return Err(OrgError::Forbidden);
        }
        Ok(self.store.list_members(organization_id).await?)
    }

    /// The caller's membership in `organization_id`, which must be the token's organization
    /// (upstream: any other id is `403`, and so is an organization the caller left since).
    async fn caller_membership(
        &self,
        caller: Uuid,
        token_org: Uuid,
        organization_id: Uuid,
    ) -> Result<MembershipWithOrganization, OrgError> {
        if organization_id != token_org {
            return Err(OrgError::Forbidden);
        }
        self.store
            .find_membership(organization_id, caller)
            .await?
            .ok_or(OrgError::Forbidden)
    }

    /// `GET /organizations/{id}`: the organization, for its members.
    pub async fn organization(
        &self,
        caller: Uuid,
        token_org: Uuid,
        organization_id: Uuid,
    ) -> Result<OrganizationRecord, OrgError> {
        Ok(self
            .caller_membership(caller, token_org, organization_id)
            .await?
            .organization)
    }

    /// `PATCH /organizations/{id}`: renames it; owners and admins only; `organization.updated`.
    pub async fn rename(
        &self,
        caller: Uuid,
        token_org: Uuid,
        organization_id: Uuid,
        name: &str,
    ) -> Result<OrganizationRecord, OrgError> {
        let found = self
            .caller_membership(caller, token_org, organization_id)
            .await?;
        if !found.membership.role.is_manager() {
            return Err(OrgError::Forbidden);
        }
        let name = parse_name(name).ok_or(OrgError::InvalidName)?;
        let now = self.clock.now();
        let org = &found.organization;
        let data = organization_data(org.id, name, org.kind, org.created_by_user_id);
        let effects = self
            .events
            .effects(EventType::OrganizationUpdated, data, now);
        let renamed = self
            .store
            .rename_organization(organization_id, name, now, effects)
            .await;
        // The cached sessions acting in it carry the old name.
        self.sessions.organization_changed(organization_id);
        match renamed {
            Ok(org) => Ok(org),
            Err(StoreError::NotFound) => Err(OrgError::OrganizationNotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// `GET /organizations/{id}/members`; `Forbidden` in `personal` mode.
    pub async fn members(
        &self,
        caller: Uuid,
        token_org: Uuid,
        organization_id: Uuid,
    ) -> Result<Vec<MemberRecord>, OrgError> {
        if !self.mode.has_visible_organizations() {
            return Err(OrgError::Forbidden);
        }
        self.caller_membership(caller, token_org, organization_id)
            .await?;
        Ok(self.store.list_members(organization_id).await?)
    }

    /// `GET /organizations/{id}/members/{userID}`.
    pub async fn member(
        &self,
        caller: Uuid,
        token_org: Uuid,
        organization_id: Uuid,
        user_id: Uuid,
    ) -> Result<MemberRecord, OrgError> {
        if !self.mode.has_visible_organizations() && caller != user_id {
            return Err(OrgError::Forbidden);
        }
        self.caller_membership(caller, token_org, organization_id)
            .await?;
        self.store
            .list_members(organization_id)
            .await?
            .into_iter()
            .find(|m| m.membership.user_id == user_id)
            .ok_or(OrgError::MembershipNotFound)
    }

    /// The membership of an internal API actor: `ActorNotMember` without one.
    async fn actor_membership(
        &self,
        organization_id: Uuid,
        actor: Uuid,
    ) -> Result<MembershipWithOrganization, OrgError> {
        // One query in the common case; only a missing membership asks whether the
        // organization exists at all.
        if let Some(found) = self.store.find_membership(organization_id, actor).await? {
            return Ok(found);
        }
        match self.store.find_organization(organization_id).await? {
            Some(_) => Err(OrgError::ActorNotMember),
            None => Err(OrgError::OrganizationNotFound),
        }
    }

    fn membership_event(
        &self,
        event_type: EventType,
        organization_id: Uuid,
        user_id: Uuid,
        role: OrgRole,
    ) -> Effects {
        let data = membership_data(organization_id, user_id, role);
        self.events.effects(event_type, data, self.clock.now())
    }

    /// `POST /auth/internal/v1/organizations`: a team organization owned by `created_by`;
    /// `multi` mode only (`Forbidden`). `organization.created` and
    /// `organization.membership.created`.
    pub async fn create_team(
        &self,
        name: &str,
        created_by: Uuid,
    ) -> Result<MembershipWithOrganization, OrgError> {
        if !self.mode.allows_switching() {
            return Err(OrgError::Forbidden);
        }
        let name = parse_name(name).ok_or(OrgError::InvalidName)?;
        let now = self.clock.now();
        let initial = InitialOrganization {
            id: uuid_v4(&*self.random),
            name: name.to_owned(),
            kind: OrgKind::Team,
        };
        let effects = creation_events(&self.events, &initial, created_by, now);
        let new = NewOrganization {
            id: initial.id,
            name: initial.name,
        };
        match self
            .store
            .create_team_organization(new, created_by, now, effects)
            .await
        {
            Ok(created) => Ok(created),
            Err(StoreError::NotFound) => Err(OrgError::UserNotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// `DELETE /auth/internal/v1/organizations/{id}`: the owner deletes a team organization of
    /// which they are the only member. `organization.membership.deleted` and
    /// `organization.deleted` (which upstream declares and never sends).
    pub async fn delete(&self, organization_id: Uuid, actor: Uuid) -> Result<(), OrgError> {
        let found = self.actor_membership(organization_id, actor).await?;
        if found.membership.role != OrgRole::Owner {
            return Err(OrgError::ActorNotAllowed);
        }
        let org = &found.organization;
        if org.kind == OrgKind::Personal {
            return Err(OrgError::PersonalImmutable);
        }
        let members = self.store.list_members(organization_id).await?;
        if members.iter().any(|m| m.membership.user_id != actor) {
            return Err(OrgError::HasOtherMembers);
        }
        if self.store.list_user_memberships(actor).await?.len() <= 1 {
            return Err(OrgError::LastMembership);
        }
        let effects = self
            .membership_event(
                EventType::MembershipDeleted,
                organization_id,
                actor,
                OrgRole::Owner,
            )
            .and(self.events.effects(
                EventType::OrganizationDeleted,
                organization_data(org.id, &org.name, org.kind, org.created_by_user_id),
                self.clock.now(),
            ));
        let deleted = self
            .store
            .delete_organization(organization_id, effects)
            .await;
        self.sessions.user_changed(actor);
        match deleted {
            Ok(()) => Ok(()),
            Err(StoreError::NotFound) => Err(OrgError::OrganizationNotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// `DELETE /auth/internal/v1/organizations/{id}/members/{userID}`: a manager removes a
    /// member (an admin cannot remove an owner), or a member leaves (`actor == user_id`). An
    /// organization keeps an owner and a user keeps a membership.
    /// `organization.membership.deleted` (which upstream declares and never sends).
    pub async fn remove_member(
        &self,
        organization_id: Uuid,
        user_id: Uuid,
        actor: Uuid,
    ) -> Result<(), OrgError> {
        let found = self.actor_membership(organization_id, actor).await?;
        if found.organization.kind == OrgKind::Personal {
            return Err(OrgError::PersonalImmutable);
        }
        let leaving = actor == user_id;
        if !leaving && found.membership.role == OrgRole::Member {
            // Members remove nobody but themselves; an unknown target is still `404` first.
            if self
                .store
                .find_membership(organization_id, user_id)
                .await?
                .is_none()
            {
                return Err(OrgError::MembershipNotFound);
            }
            return Err(OrgError::ActorNotAllowed);
        }
        // The role-dependent rules (an admin cannot remove an owner, an organization keeps an
        // owner, a user keeps a membership) are the store's: checked under the removal's lock.
        let owner_removable = leaving || found.membership.role == OrgRole::Owner;
        let (events, now) = (self.events.clone(), self.clock.now());
        let effects: RoleEffects = Box::new(move |role| {
            let data = membership_data(organization_id, user_id, role);
            events.effects(EventType::MembershipDeleted, data, now)
        });
        let removed = self
            .store
            .remove_membership(organization_id, user_id, owner_removable, effects)
            .await;
        self.sessions.user_changed(user_id);
        match removed {
            Ok(Removal::Removed(_)) => Ok(()),
            Ok(Removal::OwnerProtected) => Err(OrgError::ActorNotAllowed),
            Ok(Removal::LastOwner) => Err(OrgError::LastOwner),
            Ok(Removal::LastMembership) => Err(OrgError::LastMembership),
            Err(StoreError::NotFound) => Err(OrgError::MembershipNotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// `POST /auth/internal/v1/organizations/{id}/ownership-transfer`: the owner makes another
    /// member the owner and becomes an admin. `organization.membership.updated` for both (which
    /// upstream declares and never sends).
    pub async fn transfer_ownership(
        &self,
        organization_id: Uuid,
        actor: Uuid,
        new_owner: Uuid,
    ) -> Result<(), OrgError> {
        let found = self.actor_membership(organization_id, actor).await?;
        if found.membership.role != OrgRole::Owner {
            return Err(OrgError::ActorNotAllowed);
        }
        if found.organization.kind == OrgKind::Personal {
            return Err(OrgError::PersonalImmutable);
        }
        if self
            .store
            .find_membership(organization_id, new_owner)
            .await?
            .is_none()
        {
            return Err(OrgError::MembershipNotFound);
        }
        if new_owner == actor {
            return Ok(());
        }
        let effects = self
            .membership_event(
                EventType::MembershipUpdated,
                organization_id,
                new_owner,
                OrgRole::Owner,
            )
            .and(self.membership_event(
                EventType::MembershipUpdated,
                organization_id,
                actor,
                OrgRole::Admin,
            ));
        let now = self.clock.now();
        let moved = self
            .store
            .transfer_ownership(organization_id, new_owner, now, effects)
            .await;
        self.sessions.user_changed(actor);
        self.sessions.user_changed(new_owner);
        match moved {
            Ok(()) => Ok(()),
            Err(StoreError::NotFound) => Err(OrgError::MembershipNotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// `GET /users/{userID}/memberships`: only the caller's own.
    pub async fn user_memberships(
        &self,
        caller: Uuid,
        user_id: Uuid,
    ) -> Result<Vec<MembershipWithOrganization>, OrgError> {
        if caller != user_id {
            return Err(OrgError::Forbidden);
        }
        self.memberships(caller).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_exactly_and_map_to_upstreams_capabilities() {
        assert_eq!(OrgMode::parse("multi"), Some(OrgMode::Multi));
        assert_eq!(OrgMode::parse("Multi"), None);
        assert_eq!(OrgMode::parse(""), None);
        let personal = OrgMode::Personal.capabilities(false);
        assert!(
            !personal.has_visible_organizations
                && !personal.allows_invitations
                && !personal.allows_org_switching
                && !personal.allows_user_created_team_orgs
                && !personal.allows_organization_leave
        );
        let single = OrgMode::Single.capabilities(true);
        assert!(single.has_visible_organizations && single.allows_invitations);
        assert!(single.allows_public_organization_management);
        assert!(!single.allows_org_switching && !single.allows_user_created_team_orgs);
        let multi = OrgMode::Multi.capabilities(false);
        assert!(multi.allows_org_switching && multi.allows_organization_leave);
        assert!(!multi.allows_public_organization_management);
        assert_eq!(OrgMode::Single.initial_kind(), OrgKind::Team);
        assert_eq!(OrgMode::Multi.initial_kind(), OrgKind::Personal);
    }

    #[test]
    fn initial_names_follow_upstreams_fallbacks() {
        assert_eq!(initial_name("alice-12345", "a@x.test"), "alice-12345");
        assert_eq!(initial_name("", "bob@x.test"), "bob");
        assert_eq!(initial_name(" ", "@x.test"), DEFAULT_ORGANIZATION_NAME);
    }

    #[test]
    fn names_are_trimmed_bounded_and_free_of_control_characters() {
        assert_eq!(parse_name("  Acme  "), Some("Acme"));
        assert_eq!(parse_name("   "), None);
        assert_eq!(parse_name("a\u{0}b"), None);
        assert_eq!(parse_name(&"x".repeat(255)).map(str::len), Some(255));
        assert_eq!(parse_name(&"x".repeat(256)), None);
    }

    #[test]
    fn roles_serialise_lowercase_and_owners_and_admins_manage() {
        assert_eq!(serde_json::json!(OrgRole::Owner), "owner");
        assert!(OrgRole::Admin.is_manager() && !OrgRole::Member.is_manager());
        assert_eq!(OrgRole::parse("member"), Some(OrgRole::Member));
        assert_eq!(OrgRole::parse("root"), None);
    }
}

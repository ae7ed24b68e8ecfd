//! The invitation service: upstream's rules (`UPSTREAM.md` §5.5) for creating, resending,
//! listing, revoking, previewing and accepting invitations, over [`InvitationStore`].

use std::sync::Arc;

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::store::{
    Accepted, InvitationRecord, InvitationStatus, Invited, NewInvitation, Resent, Revoked,
    StoredInvitation,
};
use super::InvitationToken;
use crate::challenge::store::NewEmailNotice;
use crate::clock::Clock;
use crate::domain::Email;
use crate::events::{EventType, Publisher};
use crate::jwt::JwtKeys;
use crate::org::store::{MembershipRecord, MembershipWithOrganization, OrganizationRecord};
use crate::org::{OrgKind, OrgMode, OrgRole};
use crate::random::{uuid_v4, Random};
use crate::store::{Effects, Store, StoreError};

/// The outbox template of the invitation email (upstream's name).
pub const INVITATION_TEMPLATE: &str = "organization_invitation";
/// Upstream's bound on an invitation's metadata, marshalled.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
/// Upstream's default lifetime (`AUTHARA_ORGANIZATION_INVITATION_TTL`).
pub const DEFAULT_TTL: Duration = Duration::hours(168);

/// Why an invitation route refused.
#[derive(Debug, thiserror::Error)]
pub enum InvitationError {
    /// Bad input: email, role, metadata or token (`400 invalid_request`).
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// Not in this mode, or not for this caller (`403 forbidden`).
    #[error("forbidden")]
    Forbidden,
    /// The mode only lets invitations create accounts (`403 forbidden`, upstream's message).
    #[error("This invitation requires creating a new account.")]
    RequiresNewAccount,
    /// The internal API's actor is not a member (`403 actor_not_member`).
    #[error("actor is not a member")]
    ActorNotMember,
    /// The internal API's actor may not invite (`403 actor_not_allowed`).
    #[error("actor is not allowed")]
    ActorNotAllowed,
    /// `404 organization_not_found`.
    #[error("organization not found")]
    OrganizationNotFound,
    /// `404 invitation_not_found`.
    #[error("invitation not found")]
    InvitationNotFound,
    /// `409 already_member`.
    #[error("already a member")]
    AlreadyMember,
    /// `409 invitation_already_pending`.
    #[error("invitation already pending")]
    AlreadyPending,
    /// `409 invitation_already_accepted`.
    #[error("invitation already accepted")]
    AlreadyAccepted,
    /// `409 invitation_revoked`.
    #[error("invitation revoked")]
    Revoked,
    /// `409 invitation_expired`.
    #[error("invitation expired")]
    Expired,
    /// The signed-in user's email is not the invitation's (`403 invitation_email_mismatch`).
    #[error("invitation email mismatch")]
    EmailMismatch,
    /// The user is a member already (`409 organization_membership_conflict`).
    #[error("organization membership conflict")]
    MembershipConflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl InvitationError {
    /// The refusal for an invitation that is not pending.
    pub(crate) fn not_pending(status: InvitationStatus) -> Self {
        match status {
            InvitationStatus::Accepted => Self::AlreadyAccepted,
            InvitationStatus::Revoked => Self::Revoked,
            InvitationStatus::Expired | InvitationStatus::Pending => Self::Expired,
        }
    }
}

/// A created invitation with its link (the only time the token is shown).
#[derive(Debug, Clone)]
pub struct IssuedInvitation {
    pub invitation: InvitationRecord,
    /// `{PUBLIC_URL}/auth/invitations/accept?token=…`.
    pub invite_url: String,
}

/// An accepted invitation with the membership it made (`None` only when this user had
/// accepted it before and has since left).
#[derive(Debug, Clone)]
pub struct Acceptance {
    pub invitation: InvitationRecord,
    pub membership: Option<MembershipRecord>,
}

/// The invitation service.
#[derive(Clone)]
pub struct InvitationService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    keys: Arc<JwtKeys>,
    events: Publisher,
    mode: OrgMode,
    ttl: Duration,
    public_url: String,
}

impl InvitationService {
    /// Wires the service; `public_url` without a trailing slash.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
        keys: Arc<JwtKeys>,
        mode: OrgMode,
        ttl: Duration,
        public_url: impl Into<String>,
    ) -> Self {
        Self {
            store,
            events: Publisher::off(random.clone()),
            clock,
            random,
            keys,
            mode,
            ttl,
            public_url: public_url.into().trim_end_matches('/').to_owned(),
        }
    }

    /// Publishes `organization.invitation.*` and `organization.membership.created` events.
    pub fn with_events(mut self, events: Publisher) -> Self {
        self.events = events;
        self
    }

    /// The time now, by the service's clock (what statuses are derived at).
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// The link of an invitation's token.
    pub fn invite_url(&self, token: &InvitationToken) -> String {
        invite_url(&self.public_url, token)
    }

    fn allowed(&self) -> Result<(), InvitationError> {
        if self.mode.allows_invitations() {
            Ok(())
        } else {
            Err(InvitationError::Forbidden)
        }
    }

    /// `POST /auth/internal/v1/organizations/{id}/invitations`: an owner or admin of a team
    /// organization invites `email` as `role` (default member; never owner), with opaque
    /// `metadata` (an object of at most [`MAX_METADATA_BYTES`], `{}` by default). The email
    /// is queued with the invitation; `organization.invitation.created`.
    pub async fn create(
        &self,
        organization_id: Uuid,
        actor: Uuid,
        email: &str,
        role: Option<&str>,
        metadata: Option<Value>,
    ) -> Result<IssuedInvitation, InvitationError> {
        self.allowed()?;
        let email = Email::parse(email)
            .map_err(|_| InvitationError::InvalidRequest("email is not valid"))?;
        let role = parse_role(role)?;
        let metadata = parse_metadata(metadata)?;
        let organization = self.organization(organization_id).await?;
        let actor_role = self
            .store
            .find_membership(organization_id, actor)
            .await?
            .ok_or(InvitationError::ActorNotMember)?
            .membership
            .role;
        // A personal organization is its owner's alone: nobody is invited into it.
        if !actor_role.is_manager() || organization.kind == OrgKind::Personal {
            return Err(InvitationError::ActorNotAllowed);
        }
        let (new, token) = self.new_invitation(
            &organization,
            email.as_str().to_owned(),
            role,
            metadata,
            Some(actor),
        )?;
        let effects = self.events.effects(
            EventType::InvitationCreated,
            created_data(&new),
            new.created_at,
        );
        let now = new.created_at;
        match self.store.create_invitation(new, now, effects).await {
            Ok(Invited::Created(invitation)) => Ok(IssuedInvitation {
                invitation,
                invite_url: self.invite_url(&token),
            }),
            Ok(Invited::AlreadyMember) => Err(InvitationError::AlreadyMember),
            Ok(Invited::AlreadyPending) => Err(InvitationError::AlreadyPending),
            Err(StoreError::NotFound) => Err(InvitationError::OrganizationNotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// `POST /auth/internal/v1/organizations/{id}/invitations/{invitationID}/resend`: the
    /// invitation is revoked and replaced by a fresh one (new token and lifetime, the same
    /// email, role, metadata and inviter), whose email is queued. `organization.invitation.
    /// revoked` (old) then `.created` (new), as upstream.
    pub async fn resend(
        &self,
        organization_id: Uuid,
        invitation_id: Uuid,
    ) -> Result<IssuedInvitation, InvitationError> {
        self.allowed()?;
        let organization = self.organization(organization_id).await?;
        let old = self.invitation_of(organization_id, invitation_id).await?;
        let (new, token) = self.new_invitation(
            &organization,
            old.invitation.email.clone(),
            old.invitation.role,
            old.invitation.metadata.clone(),
            old.invitation.invited_by_user_id,
        )?;
        let now = new.created_at;
        let events = self.events.clone();
        let effects = Box::new(
            move |revoked: &InvitationRecord, created: &InvitationRecord| {
                events
                    .effects(EventType::InvitationRevoked, revoked_data(revoked), now)
                    .and(events.effects(EventType::InvitationCreated, record_data(created), now))
            },
        );
        let resent = self
            .store
            .resend_invitation(organization_id, invitation_id, None, new, now, effects)
            .await;
        match resent {
            Ok(Resent::Resent { created, .. }) => Ok(IssuedInvitation {
                invitation: created,
                invite_url: self.invite_url(&token),
            }),
            Ok(Resent::NotResendable(status)) => Err(InvitationError::not_pending(status)),
            Ok(Resent::AlreadyMember) => Err(InvitationError::AlreadyMember),
            Err(StoreError::NotFound) => Err(InvitationError::InvitationNotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// `GET /auth/api/v1/organizations/{id}/invitations`: every invitation of the caller's
    /// active organization, newest first; owners and admins only.
    pub async fn list(
        &self,
        caller: Uuid,
        token_org: Uuid,
        organization_id: Uuid,
    ) -> Result<Vec<InvitationRecord>, InvitationError> {
        self.manager(caller, token_org, organization_id).await?;
        Ok(self.store.list_invitations(organization_id).await?)
    }

    /// `GET /auth/api/v1/organizations/{id}/invitations/{invitationID}`.
    pub async fn get(
        &self,
        caller: Uuid,
        token_org: Uuid,
        organization_id: Uuid,
        invitation_id: Uuid,
    ) -> Result<InvitationRecord, InvitationError> {
        self.manager(caller, token_org, organization_id).await?;
        Ok(self
            .invitation_of(organization_id, invitation_id)
            .await?
            .invitation)
    }

    /// `POST /auth/api/v1/organizations/{id}/invitations/{invitationID}/revoke`: a pending
    /// invitation is revoked by the caller; `organization.invitation.revoked`.
    pub async fn revoke(
        &self,
        caller: Uuid,
        token_org: Uuid,
        organization_id: Uuid,
        invitation_id: Uuid,
    ) -> Result<InvitationRecord, InvitationError> {
        self.manager(caller, token_org, organization_id).await?;
        let (events, now) = (self.events.clone(), self.clock.now());
        let effects = Box::new(move |revoked: &InvitationRecord| {
            events.effects(EventType::InvitationRevoked, revoked_data(revoked), now)
        });
        let revoked = self
            .store
            .revoke_invitation(organization_id, invitation_id, Some(caller), now, effects)
            .await;
        match revoked {
            Ok(Revoked::Revoked(invitation)) => Ok(invitation),
            Ok(Revoked::NotPending(status)) => Err(InvitationError::not_pending(status)),
            Err(StoreError::NotFound) => Err(InvitationError::InvitationNotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// `GET /auth/api/v1/invitations/preview`: the invitation of a token with its
    /// organization, whatever its status (the pages word themselves by it).
    pub async fn preview(&self, token: &str) -> Result<StoredInvitation, InvitationError> {
        self.allowed()?;
        let token = InvitationToken::parse(token)
            .ok_or(InvitationError::InvalidRequest("token is not valid"))?;
        self.store
            .find_invitation_by_token(&token.hash())
            .await?
            .ok_or(InvitationError::InvitationNotFound)
    }

    /// Accepts the invitation of `token` for a signed-in user whose email is the invitation's:
    /// `multi` mode only (in `single` an invitation only ever creates an account). Accepting
    /// again is idempotent. `organization.invitation.accepted` and
    /// `organization.membership.created` (with the invitation's id and metadata).
    pub async fn accept(&self, token: &str, user_id: Uuid) -> Result<Acceptance, InvitationError> {
        match self.mode {
            OrgMode::Multi => {}
            OrgMode::Single => return Err(InvitationError::RequiresNewAccount),
            OrgMode::Personal => return Err(InvitationError::Forbidden),
        }
        let token = InvitationToken::parse(token)
            .ok_or(InvitationError::InvalidRequest("token is not valid"))?;
        let (events, now) = (self.events.clone(), self.clock.now());
        let effects = Box::new(
            move |invitation: &InvitationRecord, membership: &MembershipRecord| {
                acceptance_effects(&events, invitation, membership, now)
            },
        );
        let accepted = self
            .store
            .accept_invitation(&token.hash(), user_id, now, effects)
            .await;
        acceptance(accepted)
    }

    /// The organization, or `organization_not_found`.
    async fn organization(&self, id: Uuid) -> Result<OrganizationRecord, InvitationError> {
        self.store
            .find_organization(id)
            .await?
            .ok_or(InvitationError::OrganizationNotFound)
    }

    /// The invitation `id` of `organization_id`, or `invitation_not_found` (also for one of
    /// another organization).
    async fn invitation_of(
        &self,
        organization_id: Uuid,
        id: Uuid,
    ) -> Result<StoredInvitation, InvitationError> {
        self.store
            .find_invitation(id)
            .await?
            .filter(|found| found.invitation.organization_id == organization_id)
            .ok_or(InvitationError::InvitationNotFound)
    }

    /// The public routes' caller: a manager of the token's organization, in a mode with
    /// invitations (upstream: any other organization id is `403`).
    async fn manager(
        &self,
        caller: Uuid,
        token_org: Uuid,
        organization_id: Uuid,
    ) -> Result<MembershipWithOrganization, InvitationError> {
        self.allowed()?;
        if organization_id != token_org {
            return Err(InvitationError::Forbidden);
        }
        self.store
            .find_membership(organization_id, caller)
            .await?
            .filter(|found| found.membership.role.is_manager())
            .ok_or(InvitationError::Forbidden)
    }

    /// A new invitation to `organization` with its token, its email job and a fresh lifetime.
    fn new_invitation(
        &self,
        organization: &OrganizationRecord,
        email: String,
        role: OrgRole,
        metadata: Value,
        invited_by: Option<Uuid>,
    ) -> Result<(NewInvitation, InvitationToken), InvitationError> {
        let id = uuid_v4(&*self.random);
        let token = InvitationToken::derive(&self.keys, id).ok_or(InvitationError::Store(
            StoreError::invalid("no signing key"),
        ))?;
        let now = self.clock.now();
        let expires_at = now + self.ttl;
        let notice = NewEmailNotice {
            id: uuid_v4(&*self.random),
            to_email: email.clone(),
            template: INVITATION_TEMPLATE.to_owned(),
            template_data: json!({
                "invitation_id": id.to_string(),
                "organization_name": organization.name,
                "role": role.as_str(),
                "expires_at": rfc3339(expires_at),
            })
            .to_string(),
        };
        let new = NewInvitation {
            id,
            organization_id: organization.id,
            email,
            role,
            metadata,
            token_hash: token.hash(),
            invited_by_user_id: invited_by,
            created_at: now,
            expires_at,
            notice: Some(notice),
        };
        Ok((new, token))
    }
}

/// What an [`InvitationStore::accept_invitation`](super::store::InvitationStore) answer means
/// to a caller: accepted now or before by this user, else the refusal.
pub(crate) fn acceptance(
    accepted: Result<Accepted, StoreError>,
) -> Result<Acceptance, InvitationError> {
    match accepted {
        Ok(Accepted::Accepted {
            invitation,
            membership,
        }) => Ok(Acceptance {
            invitation,
            membership: Some(membership),
        }),
        Ok(Accepted::AlreadyAccepted {
            invitation,
            membership,
        }) => Ok(Acceptance {
            invitation,
            membership,
        }),
        Ok(Accepted::NotPending(status)) => Err(InvitationError::not_pending(status)),
        Ok(Accepted::EmailMismatch) => Err(InvitationError::EmailMismatch),
        Ok(Accepted::AlreadyMember) => Err(InvitationError::MembershipConflict),
        Err(StoreError::NotFound) => Err(InvitationError::InvitationNotFound),
        Err(e) => Err(e.into()),
    }
}

/// `{public_url}/auth/invitations/accept?token=…` (the token is base64url: nothing to escape).
pub fn invite_url(public_url: &str, token: &InvitationToken) -> String {
    format!(
        "{}/auth/invitations/accept?token={}",
        public_url.trim_end_matches('/'),
        token.expose()
    )
}

/// The role an invitation grants: `member` by default, `admin`; `owner` is reserved.
fn parse_role(role: Option<&str>) -> Result<OrgRole, InvitationError> {
    match role.map(str::trim) {
        None | Some("") | Some("member") => Ok(OrgRole::Member),
        Some("admin") => Ok(OrgRole::Admin),
        Some(_) => Err(InvitationError::InvalidRequest(
            "role must be admin or member",
        )),
    }
}

/// Metadata: a JSON object of at most [`MAX_METADATA_BYTES`] marshalled, `{}` when absent.
fn parse_metadata(metadata: Option<Value>) -> Result<Value, InvitationError> {
    let metadata = match metadata {
        None | Some(Value::Null) => return Ok(json!({})),
        Some(m) => m,
    };
    if !metadata.is_object() {
        return Err(InvitationError::InvalidRequest(
            "metadata must be an object",
        ));
    }
    if metadata.to_string().len() > MAX_METADATA_BYTES {
        return Err(InvitationError::InvalidRequest(
            "metadata must be at most 16384 bytes",
        ));
    }
    Ok(metadata)
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// Upstream's `organization.invitation.created` data.
fn created_data(new: &NewInvitation) -> Value {
    json!({
        "invitation_id": new.id.to_string(),
        "organization_id": new.organization_id.to_string(),
        "email": new.email,
        "role": new.role.as_str(),
        "metadata": new.metadata,
        "invited_by_user_id": new.invited_by_user_id.map(|u| u.to_string()),
        "expires_at": rfc3339(new.expires_at),
    })
}

/// The `.created` data of a stored record.
fn record_data(record: &InvitationRecord) -> Value {
    json!({
        "invitation_id": record.id.to_string(),
        "organization_id": record.organization_id.to_string(),
        "email": record.email,
        "role": record.role.as_str(),
        "metadata": record.metadata,
        "invited_by_user_id": record.invited_by_user_id.map(|u| u.to_string()),
        "expires_at": rfc3339(record.expires_at),
    })
}

/// `.created`'s data with `extra` fields.
fn with_fields(record: &InvitationRecord, extra: [(&str, Value); 2]) -> Value {
    let mut data = record_data(record);
    if let Some(fields) = data.as_object_mut() {
        for (key, value) in extra {
            fields.insert(key.to_owned(), value);
        }
    }
    data
}

/// Upstream's `organization.invitation.revoked` data.
fn revoked_data(record: &InvitationRecord) -> Value {
    with_fields(
        record,
        [
            (
                "revoked_by_user_id",
                json!(record.revoked_by_user_id.map(|u| u.to_string())),
            ),
            ("revoked_at", json!(record.revoked_at.map(rfc3339))),
        ],
    )
}

/// `organization.invitation.accepted` and the membership's `organization.membership.created`
/// (not initial; the invitation's id and metadata).
pub fn acceptance_effects(
    events: &Publisher,
    invitation: &InvitationRecord,
    membership: &MembershipRecord,
    at: OffsetDateTime,
) -> Effects {
    let accepted = with_fields(
        invitation,
        [
            (
                "accepted_by_user_id",
                json!(invitation.accepted_by_user_id.map(|u| u.to_string())),
            ),
            ("accepted_at", json!(invitation.accepted_at.map(rfc3339))),
        ],
    );
    let created = json!({
        "organization_id": membership.organization_id.to_string(),
        "user_id": membership.user_id.to_string(),
        "role": membership.role.as_str(),
        "is_initial_membership": false,
        "invitation_id": invitation.id.to_string(),
        "metadata": invitation.metadata,
    });
    events
        .effects(EventType::InvitationAccepted, accepted, at)
        .and(events.effects(EventType::MembershipCreated, created, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_default_to_member_and_owner_is_reserved() {
        assert_eq!(parse_role(None).ok(), Some(OrgRole::Member));
        assert_eq!(parse_role(Some("admin")).ok(), Some(OrgRole::Admin));
        for bad in ["owner", "Admin", "root"] {
            assert!(parse_role(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn metadata_is_an_object_of_bounded_size() {
        assert_eq!(parse_metadata(None).ok(), Some(json!({})));
        assert_eq!(
            parse_metadata(Some(json!({"a": 1}))).ok(),
            Some(json!({"a": 1}))
        );
        for bad in [json!([1]), json!("x"), json!(3)] {
            assert!(parse_metadata(Some(bad)).is_err());
        }
        // `{"k":"…"}` is 8 bytes plus the value.
        let fits = json!({ "k": "x".repeat(MAX_METADATA_BYTES - 8) });
        assert_eq!(fits.to_string().len(), MAX_METADATA_BYTES);
        assert!(parse_metadata(Some(fits)).is_ok());
        let over = json!({ "k": "x".repeat(MAX_METADATA_BYTES - 7) });
        assert!(parse_metadata(Some(over)).is_err());
    }
}

//! Signing up and signing in through an invitation link: the account is created (or the
//! password proven) and the invitation accepted, and the first session acts in the
//! invitation's organization.
//!
//! With challenges on (`AUTHARA_CHALLENGE_ENABLED`) the signup goes through the email code
//! first, as upstream's: [`crate::challenge::ChallengeService::start_invited_signup`], and the
//! code's verification does what [`AuthService::signup_with_invitation`] does here.

use super::password::HashError;
use super::Origin;
use super::ServiceError;
use super::{AuthService, LoginError, LoginMethod, LoginOutcome, SignupError, USERNAME_ATTEMPTS};
use crate::domain::{Email, Password, Username};
use crate::events::EventType;
use crate::invitation::service::{acceptance, acceptance_effects};
use crate::invitation::store::{Accepted, InvitationStatus, StoredInvitation};
use crate::invitation::{InvitationError, InvitationToken};
use crate::jwt::Audience;
use crate::org::{self, OrgMode};
use crate::random::uuid_v4;
use crate::session::Issued;
use crate::store::{NewUser, StoreError, UniqueKey, UserRecord};

/// Why an invitation signup or login failed.
#[derive(Debug, thiserror::Error)]
pub enum InvitedError {
    #[error(transparent)]
    Invitation(#[from] InvitationError),
    #[error(transparent)]
    Signup(#[from] SignupError),
    #[error(transparent)]
    Login(#[from] LoginError),
}

impl From<ServiceError> for InvitedError {
    fn from(e: ServiceError) -> Self {
        Self::Signup(SignupError::Failed(e))
    }
}

impl AuthService {
    /// The pending invitation of `token`, for the pages and the flows below (`personal` mode
    /// has none: `Forbidden`).
    pub async fn pending_invitation(&self, token: &str) -> Result<StoredInvitation, InvitedError> {
        if self.mode == OrgMode::Personal {
            return Err(InvitationError::Forbidden.into());
        }
        let token = InvitationToken::parse(token)
            .ok_or(InvitationError::InvalidRequest("token is not valid"))?;
        let found = self
            .store
            .find_invitation_by_token(&token.hash())
            .await
            .map_err(ServiceError::from)?
            .ok_or(InvitationError::InvitationNotFound)?;
        match found.invitation.status(self.clock.now()) {
            InvitationStatus::Pending => Ok(found),
            status => Err(InvitationError::not_pending(status).into()),
        }
    }

    /// Creates an account for the invited email with `password`, accepts the invitation and
    /// starts the first session in its organization. In `multi` mode the account also gets
    /// its personal organization; in `single` mode it belongs to the inviting one only.
    /// `user.created` (and the initial organization's events), `organization.invitation.
    /// accepted` and `organization.membership.created`.
    pub async fn signup_with_invitation(
        &self,
        token: &str,
        password: &str,
        origin: Origin<'_>,
    ) -> Result<(UserRecord, Issued), InvitedError> {
        let found = self.pending_invitation(token).await?;
        let organization_id = found.invitation.organization_id;
        let email = Email::parse(&found.invitation.email).map_err(SignupError::from)?;
        let password = Password::parse_new(password).map_err(SignupError::from)?;
        let hash = match self.hasher.hash(&password).await {
            Ok(hash) => hash,
            Err(HashError::Busy) => return Err(SignupError::Busy.into()),
            Err(e) => return Err(ServiceError::from(e).into()),
        };
        let token_hash = found.token_hash;
        let with_initial = self.mode == OrgMode::Multi;
        let now = self.clock.now();
        let id = uuid_v4(&*self.random);
        for _ in 0..USERNAME_ATTEMPTS {
            let username = Username::derive(email.local_part(), &*self.random);
            let organization = org::initial_organization(
                self.mode,
                &*self.random,
                username.as_str(),
                email.as_str(),
            );
            let mut user_effects = self.user_event(EventType::UserCreated, id);
            if with_initial {
                user_effects =
                    user_effects.and(org::creation_events(&self.events, &organization, id, now));
            }
            let events = self.events.clone();
            let effects = Box::new(move |invitation: &_, membership: &_| {
                acceptance_effects(&events, invitation, membership, now)
            });
            let new = NewUser {
                id,
                email: email.as_str().to_owned(),
                username: username.as_str().to_owned(),
                password_hash: Some(hash.clone()),
                created_at: now,
                organization,
            };
            let signed_up = self
                .store
                .signup_with_invitation(&token_hash, new, with_initial, now, user_effects, effects)
                .await;
            let user = UserRecord {
                id,
                email: email.as_str().to_owned(),
                username: username.as_str().to_owned(),
                password_hash: Some(hash.clone()),
                is_admin: false,
                disabled: false,
                created_at: now,
            };
            match signed_up {
                Ok(Accepted::Accepted { .. }) => {
                    let outcome = LoginOutcome {
                        user,
                        method: LoginMethod::Signup,
                    };
                    return Ok(self
                        .start_session_in(outcome, Audience::App, origin, Some(organization_id))
                        .await?);
                }
                Ok(Accepted::NotPending(status)) => {
                    return Err(InvitationError::not_pending(status).into())
                }
                Ok(Accepted::EmailMismatch) => return Err(InvitationError::EmailMismatch.into()),
                Ok(Accepted::AlreadyAccepted { .. } | Accepted::AlreadyMember) => {
                    return Err(InvitationError::MembershipConflict.into())
                }
                Err(StoreError::Conflict(UniqueKey::Username)) => continue,
                Err(StoreError::Conflict(UniqueKey::Email)) => {
                    return Err(SignupError::Duplicate.into())
                }
                Err(StoreError::NotFound) => return Err(InvitationError::InvitationNotFound.into()),
                Err(e) => return Err(ServiceError::from(e).into()),
            }
        }
        Err(ServiceError::Store(StoreError::Conflict(UniqueKey::Username)).into())
    }

    /// Proves the invited account's password, accepts the invitation (again: idempotent) and
    /// starts a session in its organization. `multi` mode only: in `single` mode an
    /// invitation only ever creates an account.
    pub async fn login_with_invitation(
        &self,
        token: &str,
        password: &str,
        origin: Origin<'_>,
    ) -> Result<(UserRecord, Issued), InvitedError> {
        match self.mode {
            OrgMode::Multi => {}
            OrgMode::Single => return Err(InvitationError::RequiresNewAccount.into()),
            OrgMode::Personal => return Err(InvitationError::Forbidden.into()),
        }
        let found = self.pending_invitation(token).await?;
        let outcome = self
            .verify_password(&found.invitation.email, password)
            .await?;
        let (events, now) = (self.events.clone(), self.clock.now());
        let effects = Box::new(move |invitation: &_, membership: &_| {
            acceptance_effects(&events, invitation, membership, now)
        });
        let accepted = self
            .store
            .accept_invitation(&found.token_hash, outcome.user.id, now, effects)
            .await;
        let accepted = acceptance(accepted)?;
        Ok(self
            .start_session_in(
                outcome,
                Audience::App,
                origin,
                Some(accepted.invitation.organization_id),
            )
            .await?)
    }
}

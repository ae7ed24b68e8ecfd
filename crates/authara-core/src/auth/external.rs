//! Signing in with an external identity (Google, an OpenID Connect provider): the provider has
//! proven who the user is; this decides which account that is.
//!
//! A known identity signs its user in. An unknown one whose (verified) email is an existing
//! account's is **not** linked silently: the caller must have the user prove that account first
//! (upstream's `account_link_required`); the answer is the same whether that account has a
//! password or not. Otherwise a password-less account is created with the identity, with its
//! initial organization, as a signup does.

use super::{AuthService, LoginMethod, LoginOutcome, Origin, ServiceError, USERNAME_ATTEMPTS};
use crate::domain::{Email, Username};
use crate::events::EventType;
use crate::identity::{is_provider_name, is_subject};
use crate::jwt::Audience;
use crate::org;
use crate::random::uuid_v4;
use crate::session::Issued;
use crate::store::{NewIdentity, NewUser, StoreError, UniqueKey, UserRecord};

/// What a provider proved: its name, the subject, and the email it says it verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalIdentity {
    pub provider: String,
    pub subject: String,
    /// `None` when the provider gave no verified email; such an identity can sign in to an
    /// account it is linked to, but cannot create one.
    pub verified_email: Option<String>,
}

/// Why an external sign-in started no session. Nothing was created.
#[derive(Debug, thiserror::Error)]
pub enum ExternalSignInError {
    /// The provider name or subject is unusable, or a new account has no usable verified email.
    #[error("the identity is not usable")]
    Invalid,
    /// The email belongs to an existing account, which must be proven before the identity is
    /// linked to it (`409 account_link_required`).
    #[error("an account with this email exists; sign in to it to link this identity")]
    LinkRequired,
    /// The account is disabled.
    #[error("account disabled")]
    Disabled,
    /// `admin` audience for a user who is no administrator.
    #[error("not an administrator")]
    NotAdmin,
    #[error(transparent)]
    Failed(#[from] ServiceError),
}

impl From<StoreError> for ExternalSignInError {
    fn from(e: StoreError) -> Self {
        Self::Failed(ServiceError::Store(e))
    }
}

impl AuthService {
    /// Signs in with `identity` (see the module's documentation) and starts a session with an
    /// access token for `audience`.
    pub async fn sign_in_with_identity(
        &self,
        identity: &ExternalIdentity,
        audience: Audience,
        origin: Origin<'_>,
    ) -> Result<(UserRecord, Issued), ExternalSignInError> {
        if !is_provider_name(&identity.provider) || !is_subject(&identity.subject) {
            return Err(ExternalSignInError::Invalid);
        }
        // Two first sign-ins of one identity at once: the second finds the first's account.
        for _ in 0..2 {
            if let Some((linked, user)) = self
                .store
                .find_identity(&identity.provider, &identity.subject)
                .await?
            {
                return self.sign_in_linked(linked.id, user, audience, origin).await;
            }
            // A new account is no administrator: an `admin` sign-in cannot create one.
            if audience != Audience::App {
                return Err(ExternalSignInError::NotAdmin);
            }
            match self.create_with_identity(identity).await {
                Ok(user) => {
                    let outcome = LoginOutcome {
                        user,
                        method: LoginMethod::Signup,
                    };
                    return Ok(self.start_session(outcome, audience, origin).await?);
                }
                Err(CreateError::IdentityTaken) => continue,
                Err(CreateError::Refused(e)) => return Err(e),
            }
        }
        Err(ExternalSignInError::Failed(ServiceError::Store(
            StoreError::Conflict(UniqueKey::Identity),
        )))
    }

    async fn sign_in_linked(
        &self,
        identity_id: uuid::Uuid,
        user: UserRecord,
        audience: Audience,
        origin: Origin<'_>,
    ) -> Result<(UserRecord, Issued), ExternalSignInError> {
        if user.disabled {
            return Err(ExternalSignInError::Disabled);
        }
        let outcome = LoginOutcome {
            user,
            method: LoginMethod::External,
        };
        if !outcome.may_have(audience) {
            return Err(ExternalSignInError::NotAdmin);
        }
        match self
            .store
            .touch_identity(identity_id, self.clock.now())
            .await
        {
            // Unlinked meanwhile: the proof was for a link that no longer is.
            Err(StoreError::NotFound) => return Err(ExternalSignInError::Invalid),
            other => other?,
        }
        Ok(self.start_session(outcome, audience, origin).await?)
    }

    /// A new password-less account for `identity`, with its initial organization.
    async fn create_with_identity(
        &self,
        identity: &ExternalIdentity,
    ) -> Result<UserRecord, CreateError> {
        let email = identity
            .verified_email
            .as_deref()
            .and_then(|e| Email::parse(e).ok())
            .ok_or(CreateError::Refused(ExternalSignInError::Invalid))?;
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
            let effects = self
                .user_event(EventType::UserCreated, id)
                .and(org::creation_events(&self.events, &organization, id, now));
            let user = NewUser {
                id,
                email: email.as_str().to_owned(),
                username: username.as_str().to_owned(),
                password_hash: None,
                created_at: now,
                organization,
            };
            let new_identity = NewIdentity {
                id: uuid_v4(&*self.random),
                user_id: id,
                provider: identity.provider.clone(),
                provider_user_id: identity.subject.clone(),
                email: Some(email.as_str().to_owned()),
                created_at: now,
            };
            match self
                .store
                .create_user_with_identity(user, new_identity, effects)
                .await
            {
                Ok(created) => return Ok(created),
                Err(StoreError::Conflict(UniqueKey::Username)) => continue,
                Err(StoreError::Conflict(UniqueKey::Identity)) => {
                    return Err(CreateError::IdentityTaken)
                }
                // The email is an existing account's (the insert is the check: no read before it).
                Err(StoreError::Conflict(UniqueKey::Email)) => {
                    return Err(CreateError::Refused(ExternalSignInError::LinkRequired))
                }
                Err(e) => return Err(CreateError::Refused(e.into())),
            }
        }
        Err(CreateError::Refused(
            StoreError::Conflict(UniqueKey::Username).into(),
        ))
    }
}

/// Why [`AuthService::create_with_identity`] created nothing.
enum CreateError {
    /// The identity was linked by a concurrent sign-in: look it up again.
    IdentityTaken,
    Refused(ExternalSignInError),
}

/// Why [`AuthService::link_identity`] linked nothing.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The provider's subject belongs to another account already.
    #[error("this identity is linked to another account")]
    TakenElsewhere,
    /// The user has an identity of this provider already.
    #[error("an identity of this provider is linked already")]
    ProviderLinked,
    /// The provider name or subject is unusable, or the user is gone.
    #[error("the identity is not usable")]
    Invalid,
    #[error(transparent)]
    Failed(#[from] ServiceError),
}

/// Why [`AuthService::unlink_sign_in_method`] removed nothing.
#[derive(Debug, thiserror::Error)]
pub enum UnlinkError {
    /// It is the user's last way to sign in.
    #[error("You need at least one sign-in method.")]
    LastMethod,
    /// The user has no such method.
    #[error("no such sign-in method")]
    NotFound,
    #[error(transparent)]
    Failed(#[from] ServiceError),
}

/// The name of the password among the sign-in methods (`/auth/providers/password/unlink`).
pub const PASSWORD_METHOD: &str = "password";

impl AuthService {
    /// `user_id`'s external identities, oldest first.
    pub async fn identities(
        &self,
        user_id: uuid::Uuid,
    ) -> Result<Vec<crate::store::IdentityRecord>, ServiceError> {
        Ok(self.store.list_identities(user_id).await?)
    }

    /// Links `identity` to `user_id`'s account (the user is signed in and proved the identity at
    /// the provider), with `user.updated`.
    pub async fn link_identity(
        &self,
        user_id: uuid::Uuid,
        identity: &ExternalIdentity,
    ) -> Result<crate::store::IdentityRecord, LinkError> {
        if !is_provider_name(&identity.provider) || !is_subject(&identity.subject) {
            return Err(LinkError::Invalid);
        }
        let new = NewIdentity {
            id: uuid_v4(&*self.random),
            user_id,
            provider: identity.provider.clone(),
            provider_user_id: identity.subject.clone(),
            email: identity.verified_email.clone(),
            created_at: self.clock.now(),
        };
        let effects = self.user_event(EventType::UserUpdated, user_id);
        match self.store.link_identity(new, effects).await {
            Ok(linked) => Ok(linked),
            Err(StoreError::Conflict(UniqueKey::Identity)) => Err(LinkError::TakenElsewhere),
            Err(StoreError::Conflict(UniqueKey::ProviderLinked)) => Err(LinkError::ProviderLinked),
            Err(StoreError::NotFound) => Err(LinkError::Invalid),
            Err(e) => Err(LinkError::Failed(e.into())),
        }
    }

    /// Removes `user_id`'s sign-in method `method` (a provider's name, or
    /// [`PASSWORD_METHOD`]), with `user.updated`, unless it is their last.
    pub async fn unlink_sign_in_method(
        &self,
        user_id: uuid::Uuid,
        method: &str,
    ) -> Result<(), UnlinkError> {
        let effects = self.user_event(EventType::UserUpdated, user_id);
        if method == PASSWORD_METHOD {
            return match self
                .store
                .remove_password(user_id, self.clock.now(), effects)
                .await
            {
                Ok(true) => Ok(()),
                Ok(false) => Err(UnlinkError::LastMethod),
                Err(StoreError::NotFound) => Err(UnlinkError::NotFound),
                Err(e) => Err(UnlinkError::Failed(e.into())),
            };
        }
        if !is_provider_name(method) {
            return Err(UnlinkError::NotFound);
        }
        match self.store.unlink_identity(user_id, method, effects).await {
            Ok(crate::store::Unlinked::Removed(_)) => Ok(()),
            Ok(crate::store::Unlinked::LastMethod) => Err(UnlinkError::LastMethod),
            Err(StoreError::NotFound) => Err(UnlinkError::NotFound),
            Err(e) => Err(UnlinkError::Failed(e.into())),
        }
    }
}

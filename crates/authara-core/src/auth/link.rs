//! Linking an external identity to the existing account its verified email belongs to, once
//! the user proves that account (upstream's confirm page, `account_recovery_link`).
//!
//! An external sign-in whose email is an existing account's creates nothing and links nothing
//! ([`super::ExternalSignInError::LinkRequired`]). The page flow then stores a *pending link*:
//! the identity, the account, and where to go, under the SHA-256 of a random link id (in the
//! confirm page's URL) with the SHA-256 of a browser binding (an HttpOnly cookie), for
//! [`PENDING_LINK_TTL`]. The confirm page asks for the account's password, checked exactly as a
//! login checks it, or for a sign-in through a provider already linked to the account; only then is the pending link taken (once) and the identity linked, and the
//! account signed in.

use super::{
    AuthService, ExternalIdentity, LinkError, LoginError, LoginMethod, LoginOutcome, Origin,
    ServiceError,
};
use crate::digest::{matches_stored, sha256_hex};
use crate::domain::Email;
use crate::jwt::Audience;
use crate::random::{token_256, SecretToken};
use crate::session::Issued;
use crate::store::{PendingLink, StoreError, UserRecord};

/// How long a pending link can be confirmed (upstream: 10 minutes).
pub const PENDING_LINK_TTL: time::Duration = time::Duration::minutes(10);
const MAX_LINK_VALUE: usize = 128;

/// A new pending link: the id for the confirm page's URL and the browser binding.
pub struct StartedLink {
    pub link_id: SecretToken,
    pub browser: SecretToken,
}

/// What the confirm page shows of a pending link.
#[derive(Debug, Clone)]
pub struct LinkToConfirm {
    pub provider: String,
    /// The existing account's email (the provider's verified email).
    pub email: String,
    /// Whether the account can be proven with a password.
    pub has_password: bool,
    /// The providers of the account's identities: each can prove it too.
    pub proofs: Vec<String>,
}

/// Why a pending link was not confirmed.
#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    /// No such link (forged or used), expired, or not this browser's.
    #[error("the link is unknown, used, expired or not this browser's")]
    Unknown,
    /// The proof failed: the password is not the account's (or it has none), or the identity a
    /// provider proved is not one of the account's.
    #[error("the account was not proven")]
    NotProven,
    /// The account is disabled.
    #[error("account disabled")]
    Disabled,
    /// Password hashing is saturated; nothing was checked.
    #[error("password hashing is busy")]
    Busy,
    /// Meanwhile the identity was linked elsewhere, or the account linked this provider.
    #[error(transparent)]
    Link(LinkError),
    #[error(transparent)]
    Failed(#[from] ServiceError),
}

impl From<StoreError> for ConfirmError {
    fn from(e: StoreError) -> Self {
        Self::Failed(e.into())
    }
}

/// A pending link that is this browser's and unexpired, with its account, read once and then
/// shown ([`AuthService::pending_link`]) or confirmed ([`AuthService::confirm_pending_link`]).
pub struct LivePendingLink {
    link: PendingLink,
    user: UserRecord,
}

impl LivePendingLink {
    /// The account's email (what its per-email login limit is keyed by).
    pub fn email(&self) -> &str {
        &self.user.email
    }

    /// The provider whose identity waits to be linked.
    pub fn provider(&self) -> &str {
        &self.link.provider
    }
}

impl AuthService {
    /// Stores a pending link of `identity` (whose verified email is an existing account's) to
    /// that account, returning to `return_to` once confirmed. `Ok(None)` when no account has the
    /// email any more.
    pub async fn begin_pending_link(
        &self,
        identity: &ExternalIdentity,
        return_to: Option<&str>,
    ) -> Result<Option<StartedLink>, ServiceError> {
        // Looked up as accounts store emails (normalised), as the sign-in's insert compared it.
        let Some(email) = identity.verified_email.as_deref().and_then(Email::lookup) else {
            return Ok(None);
        };
        let Some(user) = self.store.find_user_by_email(&email).await? else {
            return Ok(None);
        };
        let started = StartedLink {
            link_id: token_256(&*self.random),
            browser: token_256(&*self.random),
        };
        let now = self.clock.now();
        let created = self
            .store
            .create_pending_link(PendingLink {
                link_hash: sha256_hex(started.link_id.expose()),
                user_id: user.id,
                provider: identity.provider.clone(),
                provider_user_id: identity.subject.clone(),
                provider_email: email,
                browser_hash: sha256_hex(started.browser.expose()),
                return_to: return_to.map(str::to_owned),
                created_at: now,
                expires_at: now + PENDING_LINK_TTL,
            })
            .await;
        match created {
            Ok(()) => Ok(Some(started)),
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The pending link `link_id`, if this browser's (`browser`, its cookie) and unexpired.
    pub async fn live_pending_link(
        &self,
        link_id: &str,
        browser: Option<&str>,
    ) -> Result<LivePendingLink, ConfirmError> {
        if link_id.is_empty() || link_id.len() > MAX_LINK_VALUE {
            return Err(ConfirmError::Unknown);
        }
        let link = self
            .store
            .find_pending_link(&sha256_hex(link_id))
            .await?
            .ok_or(ConfirmError::Unknown)?;
        let browser_ok = matches_stored(browser, &link.browser_hash, MAX_LINK_VALUE);
        if !browser_ok || self.clock.now() >= link.expires_at {
            return Err(ConfirmError::Unknown);
        }
        let user = self
            .store
            .find_user_by_id(link.user_id)
            .await?
            .ok_or(ConfirmError::Unknown)?;
        Ok(LivePendingLink { link, user })
    }

    /// What the confirm page shows of `live`.
    pub async fn pending_link(
        &self,
        live: &LivePendingLink,
    ) -> Result<LinkToConfirm, ConfirmError> {
        let proofs = self
            .store
            .list_identities(live.user.id)
            .await?
            .into_iter()
            .map(|i| i.provider)
            .collect();
        Ok(LinkToConfirm {
            provider: live.link.provider.clone(),
            email: live.user.email.clone(),
            has_password: live.user.password_hash.is_some(),
            proofs,
        })
    }

    /// Starts proving `link_id` (this browser's) with the account's identity of `provider`:
    /// the hash the proving flow carries. `Unknown` when the account has no such identity.
    pub async fn begin_link_proof(
        &self,
        link_id: &str,
        browser: Option<&str>,
        provider: &str,
    ) -> Result<String, ConfirmError> {
        let LivePendingLink { link, user } = self.live_pending_link(link_id, browser).await?;
        let has = self
            .store
            .list_identities(user.id)
            .await?
            .iter()
            .any(|i| i.provider == provider);
        if !has {
            return Err(ConfirmError::Unknown);
        }
        Ok(link.link_hash)
    }

    /// Confirms the pending link `link_hash` with `proof`, an identity the provider just
    /// proved in a flow started for this link (so from this browser): it must be the
    /// account's own. Then as [`Self::confirm_pending_link`].
    pub async fn confirm_pending_link_by_identity(
        &self,
        link_hash: &str,
        proof: &ExternalIdentity,
        origin: Origin<'_>,
    ) -> Result<(UserRecord, Issued, Option<String>), ConfirmError> {
        let link = self
            .store
            .find_pending_link(link_hash)
            .await?
            .filter(|l| self.clock.now() < l.expires_at)
            .ok_or(ConfirmError::Unknown)?;
        let (_, user) = self
            .store
            .find_identity(&proof.provider, &proof.subject)
            .await?
            .ok_or(ConfirmError::NotProven)?;
        if user.id != link.user_id {
            return Err(ConfirmError::NotProven);
        }
        if user.disabled {
            return Err(ConfirmError::Disabled);
        }
        self.finish_link(link_hash, user, origin).await
    }

    /// Confirms `live` with the account's `password` (checked as a login checks it): links the
    /// identity, signs the account in, and says where to go.
    pub async fn confirm_pending_link(
        &self,
        live: LivePendingLink,
        password: &str,
        origin: Origin<'_>,
    ) -> Result<(UserRecord, Issued, Option<String>), ConfirmError> {
        let LivePendingLink { link, user } = live;
        let outcome = match self.verify_password(&user.email, password).await {
            Ok(outcome) if outcome.user.id == user.id => outcome,
            Ok(_) | Err(LoginError::Empty | LoginError::Invalid) => {
                return Err(ConfirmError::NotProven)
            }
            Err(LoginError::Disabled) => return Err(ConfirmError::Disabled),
            Err(LoginError::Busy) => return Err(ConfirmError::Busy),
            Err(LoginError::Failed(e)) => return Err(e.into()),
        };
        self.finish_link(&link.link_hash, outcome.user, origin)
            .await
    }

    /// The account is proven: the link is used now (by one request only), the identity linked
    /// and the account signed in.
    async fn finish_link(
        &self,
        link_hash: &str,
        user: UserRecord,
        origin: Origin<'_>,
    ) -> Result<(UserRecord, Issued, Option<String>), ConfirmError> {
        let link = self
            .store
            .take_pending_link(link_hash)
            .await?
            .ok_or(ConfirmError::Unknown)?;
        let identity = ExternalIdentity {
            provider: link.provider,
            subject: link.provider_user_id,
            verified_email: Some(link.provider_email),
        };
        self.link_identity(user.id, &identity)
            .await
            .map_err(|e| match e {
                LinkError::Failed(e) => ConfirmError::Failed(e),
                other => ConfirmError::Link(other),
            })?;
        let outcome = LoginOutcome {
            user,
            method: LoginMethod::External,
        };
        let (user, issued) = self.start_session(outcome, Audience::App, origin).await?;
        Ok((user, issued, link.return_to))
    }
}

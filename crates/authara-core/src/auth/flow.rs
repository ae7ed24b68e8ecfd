//! A browser's sign-in through a code-flow provider (GitHub, an OpenID Connect issuer): the
//! secrets of one authorization request, kept between `/start` and `/callback`.
//!
//! `/start` makes four random 256-bit values: the `state` sent to the provider, the PKCE code
//! verifier, the OpenID Connect `nonce`, and a browser binding set as an HttpOnly cookie. The
//! database keeps the verifier and nonce under the SHA-256 of the state, with the SHA-256 of the
//! binding. The callback takes the row (deleting it: a state works once), and it counts only for
//! the provider it was started for, from the browser that started it, within
//! [`SIGN_IN_FLOW_TTL`]. A state replayed, forged, or carried to another browser (a login CSRF)
//! therefore finds nothing or is refused, before any call to the provider.

use uuid::Uuid;

use super::{AuthService, ServiceError};
use crate::digest::{matches_stored, sha256_hex};
use crate::random::{token_256, SecretToken};
use crate::store::SignInFlow;

/// How long a started sign-in may take at the provider.
pub const SIGN_IN_FLOW_TTL: time::Duration = time::Duration::minutes(10);
/// The longest `state` or binding read; ours are 43 characters.
const MAX_FLOW_VALUE: usize = 128;

/// What `/start` hands out: the state and nonce for the provider, the verifier's challenge is
/// derived from `code_verifier`, and `browser` goes into the flow cookie.
pub struct StartedFlow {
    pub state: SecretToken,
    pub nonce: SecretToken,
    pub code_verifier: SecretToken,
    pub browser: SecretToken,
}

/// What a flow is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowPurpose {
    /// Signing in (or up).
    SignIn,
    /// Linking the provider to this signed-in user's account.
    Link { user_id: Uuid },
    /// Proving the account of the pending link whose id hashes to `link_hash` (the confirm
    /// page's "prove with another sign-in method").
    ProveLink { link_hash: String },
}

/// What the callback gets back from a flow that counts. No `Debug`: it holds the verifier.
pub struct TakenFlow {
    pub code_verifier: String,
    pub nonce: String,
    pub return_to: Option<String>,
    pub purpose: FlowPurpose,
}

/// Why a callback's state counts for nothing. Nothing is left to retry with: the flow, if it
/// existed, is deleted.
#[derive(Debug, thiserror::Error)]
pub enum FlowRefused {
    /// No such flow (forged, replayed, or already used), or it expired, or it was started for
    /// another provider or from another browser.
    #[error("the sign-in flow is unknown, used, expired or not this browser's")]
    Unknown,
    #[error(transparent)]
    Failed(#[from] ServiceError),
}

impl AuthService {
    /// Starts a flow with `provider` for `purpose` that will return to `return_to` (validated
    /// by the caller).
    pub async fn begin_sign_in_flow(
        &self,
        provider: &str,
        return_to: Option<&str>,
        purpose: FlowPurpose,
    ) -> Result<StartedFlow, ServiceError> {
        let (link_user_id, proves_link_hash) = match purpose {
            FlowPurpose::SignIn => (None, None),
            FlowPurpose::Link { user_id } => (Some(user_id), None),
            FlowPurpose::ProveLink { link_hash } => (None, Some(link_hash)),
        };
        let random = &*self.random;
        let started = StartedFlow {
            state: token_256(random),
            nonce: token_256(random),
            code_verifier: token_256(random),
            browser: token_256(random),
        };
        let now = self.clock.now();
        self.store
            .begin_sign_in_flow(SignInFlow {
                state_hash: sha256_hex(started.state.expose()),
                provider: provider.to_owned(),
                browser_hash: sha256_hex(started.browser.expose()),
                code_verifier: started.code_verifier.expose().to_owned(),
                nonce: started.nonce.expose().to_owned(),
                return_to: return_to.map(str::to_owned),
                link_user_id,
                created_at: now,
                expires_at: now + SIGN_IN_FLOW_TTL,
                proves_link_hash,
            })
            .await?;
        Ok(started)
    }

    /// Takes (once) the flow `state` names, if it was started with `provider` by the browser
    /// whose flow cookie is `browser`, and has not expired.
    pub async fn take_sign_in_flow(
        &self,
        provider: &str,
        state: &str,
        browser: Option<&str>,
    ) -> Result<TakenFlow, FlowRefused> {
        if state.is_empty() || state.len() > MAX_FLOW_VALUE {
            return Err(FlowRefused::Unknown);
        }
        let flow = self
            .store
            .take_sign_in_flow(&sha256_hex(state))
            .await
            .map_err(ServiceError::from)?
            .ok_or(FlowRefused::Unknown)?;
        let browser_ok = matches_stored(browser, &flow.browser_hash, MAX_FLOW_VALUE);
        if !browser_ok || flow.provider != provider || self.clock.now() >= flow.expires_at {
            return Err(FlowRefused::Unknown);
        }
        Ok(TakenFlow {
            code_verifier: flow.code_verifier,
            nonce: flow.nonce,
            return_to: flow.return_to,
            purpose: match (flow.link_user_id, flow.proves_link_hash) {
                (Some(user_id), _) => FlowPurpose::Link { user_id },
                (None, Some(link_hash)) => FlowPurpose::ProveLink { link_hash },
                (None, None) => FlowPurpose::SignIn,
            },
        })
    }
}

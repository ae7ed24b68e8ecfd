//! Everything a request handler may use, built once at start-up.

use crate::config::Cidr;
use crate::http::cookies::CookieWriter;
use authara_core::auth::AuthService;
use authara_core::challenge::ChallengeService;
use authara_core::invitation::InvitationService;
use authara_core::limits::RateLimiter;
use authara_core::org::OrgService;
use authara_core::random::Random;
use authara_core::session::SessionService;
use authara_core::store::Store;
use std::ops::Deref;
use std::sync::Arc;

/// Shared application state; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The contents of [`AppState`].
pub struct Inner {
    pub auth: AuthService,
    pub sessions: SessionService,
    /// Emailed-code challenges: password reset, signup verification, email change.
    pub challenges: ChallengeService,
    /// Organizations, memberships and the mode.
    pub orgs: OrgService,
    pub invitations: InvitationService,
    /// SHA-256 of `AUTHARA_INTERNAL_API_TOKEN`; `None`: the internal API refuses every request.
    pub internal_api_digest: Option<[u8; 32]>,
    pub store: Arc<dyn Store>,
    pub random: Arc<dyn Random>,
    pub limiter: Arc<dyn RateLimiter>,
    pub cookies: CookieWriter,
    pub trusted_proxies: Vec<Cidr>,
    /// The origin of `PUBLIC_URL` (`scheme://host[:port]`); state-changing requests from any
    /// other origin are refused. Empty when unknown: then every `Origin` is foreign.
    pub public_origin: String,
    pub request_ids: crate::http::layers::RequestIds,
    /// Google sign-in, when `AUTHARA_OAUTH_PROVIDERS` includes `google`.
    pub google: Option<Arc<GoogleSignIn>>,
    /// The code-flow providers (GitHub, OpenID Connect issuers), in `AUTHARA_OAUTH_PROVIDERS`
    /// order.
    pub providers: Vec<Arc<CodeFlowSignIn>>,
}

/// A provider signed in to with the authorization code flow.
pub struct CodeFlowSignIn {
    /// Its name: in its routes and in the identities it creates.
    pub name: String,
    /// "Continue with …".
    pub display_name: String,
    pub flow: authara_oidc::CodeFlow,
}

/// Google sign-in: the client id (sent to the browser) and the ID-token verifier.
pub struct GoogleSignIn {
    pub client_id: String,
    pub verifier: authara_oidc::IdTokenVerifier,
}

impl AppState {
    /// Wraps the parts.
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }

    /// The code-flow provider called `name`, if enabled.
    pub fn provider(&self, name: &str) -> Option<&Arc<CodeFlowSignIn>> {
        self.providers.iter().find(|p| p.name == name)
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

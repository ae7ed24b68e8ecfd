//! Authara's OpenID Connect adapter. This first part verifies ID tokens: RS256 or ES256 against
//! the provider's JWKS ([`jwks`]), fetched over HTTP with a deadline and a bounded body, cached
//! for as long as its `Cache-Control` says, and fetched again once when a token names a key it
//! does not hold (a rotation); then the issuer, the audience, the times (from the injected clock),
//! the nonce and the verified email ([`id_token`]). The signature work is `jsonwebtoken`'s, a
//! maintained JOSE crate; nothing here does RSA or ECDSA by hand.
//!
//! The second part is the authorization code flow with PKCE ([`code_flow`]): an OpenID Connect
//! provider found by discovery, or GitHub's plain OAuth2 and REST API ([`github`]), behind one
//! [`CodeFlow`].

pub mod code_flow;
pub mod github;
pub mod id_token;
pub mod jwks;

pub use code_flow::{
    code_challenge, AuthorizationEndpoint, Authorize, ClientSettings, FlowError, OidcProvider,
    ProviderUser,
};
pub use github::GitHubProvider;

pub use id_token::{Expected, IdTokenError, IdTokenVerifier, VerifiedIdToken, VerifierSettings};
pub use jwks::{Jwks, JwksError, JwksSettings};

/// The URL type of [`JwksSettings::url`].
pub use reqwest::Url;

/// The client for a provider's endpoints: a deadline on every request (`timeout`, a shorter one
/// on connecting) and no redirect followed (a key set or token endpoint that moved is the
/// operator's change to make, and a redirect could point anywhere).
pub fn client(timeout: std::time::Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(std::time::Duration::from_secs(3)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("authara/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())
}

/// A provider signed in to through the browser with the code flow.
#[derive(Debug)]
pub enum CodeFlow {
    Oidc(OidcProvider),
    GitHub(GitHubProvider),
}

impl CodeFlow {
    /// The authorization endpoint: for OpenID Connect, once discovered. Asked before a flow is
    /// stored, so that a provider that is down gets none.
    pub async fn authorization_endpoint(&self) -> Result<AuthorizationEndpoint<'_>, FlowError> {
        match self {
            Self::Oidc(p) => p.authorization_endpoint().await,
            Self::GitHub(p) => Ok(p.authorization_endpoint()),
        }
    }

    /// Exchanges the callback's `code` with the flow's verifier (and, for OpenID Connect,
    /// checks the ID token's nonce) and says who signed in.
    pub async fn finish(
        &self,
        code: &str,
        verifier: &str,
        nonce: &str,
    ) -> Result<ProviderUser, FlowError> {
        match self {
            Self::Oidc(p) => p.finish(code, verifier, nonce).await,
            Self::GitHub(p) => p.finish(code, verifier).await,
        }
    }
}

/// Why a request to a provider got no answer, without its URL (which may carry a query).
pub(crate) fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_redirect() {
        "redirect refused".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        "request failed".into()
    }
}

/// Reads `response`'s body, refusing one longer than `max` bytes as soon as it is.
pub(crate) async fn read_bounded(
    mut response: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
        if body.len() + chunk.len() > max {
            return Err(format!("the answer is larger than {max} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

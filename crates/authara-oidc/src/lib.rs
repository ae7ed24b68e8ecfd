//! Authara's OpenID Connect adapter. This first part verifies ID tokens: RS256 or ES256 against
//! the provider's JWKS ([`jwks`]), fetched over HTTP with a deadline and a bounded body, cached
//! for as long as its `Cache-Control` says, and fetched again once when a token names a key it
//! does not hold (a rotation); then the issuer, the audience, the times (from the injected clock),
//! the nonce and the verified email ([`id_token`]). The signature work is `jsonwebtoken`'s, a
//! maintained JOSE crate; nothing here does RSA or ECDSA by hand.

pub mod id_token;
pub mod jwks;

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

//! ID tokens: the signature against the provider's keys, then every claim a sign-in relies on.
//!
//! Checked, in this order, each failure its own [`IdTokenError`]: the size and shape; the
//! header's algorithm (RS256 or ES256 only: `none`, HMAC and anything else are refused before any
//! key is looked up, so a public key can never be used as an HMAC secret); the key by `kid`; the
//! signature; `iss` among the expected issuers; `aud` containing the client id (and, with several
//! audiences, `azp` being it); `exp`, `nbf` and `iat` against the injected clock with a small
//! leeway; the nonce, compared in constant time, when one is expected; `sub`; and, unless told
//! otherwise, an email the provider says it verified.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use authara_core::clock::Clock;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::jwks::{Jwks, JwksError};

/// The longest token read; real ID tokens are one or two kilobytes.
pub const MAX_ID_TOKEN_BYTES: usize = 16 * 1024;
/// The longest `sub` accepted (OpenID Connect: at most 255 ASCII characters).
pub const MAX_SUBJECT: usize = 255;
/// The longest email accepted (as everywhere else in Authara).
pub const MAX_EMAIL: usize = 254;

/// What a provider's tokens must say.
#[derive(Debug, Clone)]
pub struct VerifierSettings {
    /// Accepted `iss` values (Google has two spellings).
    pub issuers: Vec<String>,
    /// The client id: `aud` must contain it.
    pub client_id: String,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// Whether a token without `email` and `email_verified: true` is refused.
    pub require_verified_email: bool,
}

/// What the caller expects of one token.
#[derive(Debug, Clone, Copy, Default)]
pub struct Expected<'a> {
    /// The nonce this sign-in was started with; the token's must be the same.
    pub nonce: Option<&'a str>,
}

/// Why a token was refused. The text says which check failed and nothing of the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("the ID token is malformed")]
    Malformed,
    #[error("the ID token's algorithm is not accepted")]
    Algorithm,
    #[error("no key of the identity provider matches the ID token")]
    UnknownKey,
    #[error("the ID token's signature is invalid")]
    Signature,
    #[error("the ID token has the wrong issuer")]
    Issuer,
    #[error("the ID token is for another client")]
    Audience,
    #[error("the ID token has expired")]
    Expired,
    #[error("the ID token is not valid yet")]
    NotYetValid,
    #[error("the ID token's nonce does not match")]
    Nonce,
    #[error("the ID token has no usable subject")]
    Subject,
    #[error("the identity provider has not verified the email")]
    EmailNotVerified,
    #[error(transparent)]
    Keys(#[from] JwksError),
}

/// A token that passed every check: who the provider says signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdToken {
    pub issuer: String,
    pub subject: String,
    /// Present (and verified) unless `require_verified_email` is off.
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub expires_at: OffsetDateTime,
}

/// `aud`: one string or a list.
#[derive(Deserialize)]
#[serde(untagged)]
enum Audiences {
    One(String),
    Many(Vec<String>),
}

impl Audiences {
    fn contains(&self, client_id: &str) -> bool {
        match self {
            Self::One(a) => a == client_id,
            Self::Many(all) => all.iter().any(|a| a == client_id),
        }
    }

    fn several(&self) -> bool {
        matches!(self, Self::Many(all) if all.len() > 1)
    }
}

/// `email_verified`: a boolean, or (some providers) the string `"true"`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Flag {
    Bool(bool),
    Text(String),
}

impl Flag {
    fn is_true(&self) -> bool {
        match self {
            Self::Bool(b) => *b,
            Self::Text(t) => t == "true",
        }
    }
}

/// The claims read; anything else in the token is ignored.
#[derive(Deserialize)]
struct Claims {
    iss: String,
    sub: Option<String>,
    aud: Audiences,
    azp: Option<String>,
    exp: i64,
    nbf: Option<i64>,
    iat: Option<i64>,
    nonce: Option<String>,
    email: Option<String>,
    email_verified: Option<Flag>,
    name: Option<String>,
}

/// Verifies one provider's ID tokens.
pub struct IdTokenVerifier {
    settings: VerifierSettings,
    jwks: Arc<Jwks>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for IdTokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdTokenVerifier")
            .field("settings", &self.settings)
            .field("jwks", &self.jwks)
            .finish_non_exhaustive()
    }
}

impl IdTokenVerifier {
    /// A verifier of the tokens `settings` describes, signed by keys of `jwks`.
    pub fn new(settings: VerifierSettings, jwks: Arc<Jwks>, clock: Arc<dyn Clock>) -> Self {
        Self {
            settings,
            jwks,
            clock,
        }
    }

    /// Verifies `token` as described in the module's documentation.
    pub async fn verify(
        &self,
        token: &str,
        expected: Expected<'_>,
    ) -> Result<VerifiedIdToken, IdTokenError> {
        if token.len() > MAX_ID_TOKEN_BYTES || token.split('.').count() != 3 {
            return Err(IdTokenError::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| IdTokenError::Malformed)?;
        let algorithm = match header.alg {
            Algorithm::RS256 => Algorithm::RS256,
            Algorithm::ES256 => Algorithm::ES256,
            _ => return Err(IdTokenError::Algorithm),
        };
        let key = match self.jwks.key(header.kid.as_deref(), algorithm).await {
            Ok(key) => key,
            Err(JwksError::UnknownKey) => return Err(IdTokenError::UnknownKey),
            Err(e) => return Err(e.into()),
        };
        // The library checks the signature and the shape; the claims are checked below, with
        // the injected clock, so that tests can move time and every refusal has its own name.
        let mut validation = Validation::new(algorithm);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims = HashSet::new();
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation).map_err(
            |e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => IdTokenError::Signature,
                jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => IdTokenError::Algorithm,
                _ => IdTokenError::Malformed,
            },
        )?;
        let claims: Claims =
            serde_json::from_value(data.claims).map_err(|_| IdTokenError::Malformed)?;
        self.check(claims, expected)
    }

    fn check(&self, c: Claims, expected: Expected<'_>) -> Result<VerifiedIdToken, IdTokenError> {
        let s = &self.settings;
        if !s.issuers.contains(&c.iss) {
            return Err(IdTokenError::Issuer);
        }
        if !c.aud.contains(&s.client_id) {
            return Err(IdTokenError::Audience);
        }
        if c.aud.several() && c.azp.as_deref() != Some(s.client_id.as_str()) {
            return Err(IdTokenError::Audience);
        }
        let now = self.clock.now().unix_timestamp();
        let leeway = i64::try_from(s.leeway.as_secs()).unwrap_or(i64::MAX);
        if now >= c.exp.saturating_add(leeway) {
            return Err(IdTokenError::Expired);
        }
        let future = |t: Option<i64>| t.is_some_and(|t| t > now.saturating_add(leeway));
        if future(c.nbf) || future(c.iat) {
            return Err(IdTokenError::NotYetValid);
        }
        if let Some(want) = expected.nonce {
            // The same constant-time pair comparison as the CSRF double submit.
            if !authara_core::csrf::matches(Some(want), c.nonce.as_deref()) {
                return Err(IdTokenError::Nonce);
            }
        }
        let subject = c.sub.unwrap_or_default();
        if subject.is_empty()
            || subject.len() > MAX_SUBJECT
            || subject.chars().any(char::is_control)
        {
            return Err(IdTokenError::Subject);
        }
        let email_verified = c.email_verified.as_ref().is_some_and(Flag::is_true);
        let email = c
            .email
            .filter(|e| !e.is_empty() && e.len() <= MAX_EMAIL && !e.chars().any(char::is_control));
        if s.require_verified_email && (email.is_none() || !email_verified) {
            return Err(IdTokenError::EmailNotVerified);
        }
        let expires_at =
            OffsetDateTime::from_unix_timestamp(c.exp).map_err(|_| IdTokenError::Malformed)?;
        Ok(VerifiedIdToken {
            issuer: c.iss,
            subject,
            email,
            email_verified,
            name: c.name.filter(|n| n.len() <= 256),
            expires_at,
        })
    }
}

//! The authorization code flow (RFC 6749 §4.1) with PKCE (RFC 7636, `S256` only), for an
//! OpenID Connect provider found by discovery ([`OidcProvider`]) or for GitHub's plain OAuth2
//! ([`crate::github::GitHubProvider`]).
//!
//! The caller keeps the flow's secrets (state, nonce, code verifier) bound to the browser and
//! single-use; this module builds the authorization URL, exchanges the code at the token
//! endpoint (one POST, a deadline, a bounded body, no redirect followed) and, for OpenID
//! Connect, verifies the ID token with the nonce the flow was started with.

use std::sync::Arc;
use std::time::Duration;

use authara_core::clock::Clock;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::sync::{Mutex, RwLock};

pub(crate) use crate::describe;
use crate::id_token::{Expected, IdTokenError, IdTokenVerifier, VerifierSettings};
use crate::jwks::{Jwks, JwksError, JwksSettings};

/// How much of a discovery document or token response is read.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// A failed discovery is not tried again for this long (a provider that is down is not asked
/// once per visitor).
const DISCOVERY_RETRY: Duration = Duration::from_secs(5);
/// A discovered configuration is fetched again after this long (keys rotate through the JWKS
/// cache; endpoints rarely move).
const DISCOVERY_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// The `S256` code challenge of `verifier`: base64url(SHA-256(verifier)), no padding.
pub fn code_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Why a flow could not start or finish. The texts name no secret and no token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    /// The provider could not be reached, or answered with a server error or nonsense: our
    /// dependency failed, not the user.
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the code (expired, used, for another client) or the access token.
    #[error("the identity provider refused the sign-in: {0}")]
    Refused(String),
    /// The ID token did not verify.
    #[error(transparent)]
    IdToken(IdTokenError),
}

impl From<IdTokenError> for FlowError {
    fn from(e: IdTokenError) -> Self {
        match e {
            IdTokenError::Keys(JwksError::Unavailable(why)) => Self::Unavailable(why),
            other => Self::IdToken(other),
        }
    }
}

/// Who the provider says signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderUser {
    pub subject: String,
    /// The email, when the provider gave one.
    pub email: Option<String>,
    /// Whether the provider says it verified `email`.
    pub email_verified: bool,
    pub name: Option<String>,
}

impl ProviderUser {
    /// The email, only if verified.
    pub fn verified_email(&self) -> Option<&str> {
        self.email.as_deref().filter(|_| self.email_verified)
    }
}

/// One flow's values for the authorization request.
#[derive(Debug, Clone, Copy)]
pub struct Authorize<'a> {
    pub state: &'a str,
    pub nonce: &'a str,
    /// `code_challenge(verifier)`.
    pub code_challenge: &'a str,
}

/// Where a flow's authorization request goes, with the provider's configuration at hand: the
/// URL for one flow is then built without waiting on anything.
#[derive(Debug)]
pub struct AuthorizationEndpoint<'a> {
    pub(crate) settings: &'a ClientSettings,
    pub(crate) endpoint: Url,
    /// Whether the request carries the nonce (OpenID Connect does; GitHub has none).
    pub(crate) nonce: bool,
}

impl AuthorizationEndpoint<'_> {
    /// The URL to send the browser to for one flow.
    pub fn url(&self, a: Authorize<'_>) -> Url {
        self.settings
            .authorization_url(&self.endpoint, a, self.nonce)
    }
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_secret_basic`: HTTP Basic with the form-encoded id and secret (the default).
    Basic,
    /// `client_secret_post`: both in the form.
    Post,
    /// `none`: a public client, PKCE only.
    None,
}

/// A client registered at a provider. No `Debug` of the secret.
#[derive(Clone)]
pub struct ClientSettings {
    pub client_id: String,
    pub client_secret: Option<String>,
    /// The scopes asked for, space-joined in the request.
    pub scopes: Vec<String>,
    /// Our callback, exactly as registered at the provider.
    pub redirect_uri: Url,
}

impl std::fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSettings")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("scopes", &self.scopes)
            .field("redirect_uri", &self.redirect_uri.as_str())
            .finish()
    }
}

impl ClientSettings {
    /// The authorization URL at `endpoint` for one flow (with `nonce` when given).
    fn authorization_url(&self, endpoint: &Url, a: Authorize<'_>, nonce: bool) -> Url {
        let mut url = endpoint.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.client_id)
                .append_pair("redirect_uri", self.redirect_uri.as_str())
                .append_pair("scope", &self.scopes.join(" "))
                .append_pair("state", a.state)
                .append_pair("code_challenge", a.code_challenge)
                .append_pair("code_challenge_method", "S256");
            if nonce {
                q.append_pair("nonce", a.nonce);
            }
        }
        url
    }

    /// The token request's form and headers for `code`, authenticated as `auth` says.
    pub(crate) fn token_request(
        &self,
        client: &reqwest::Client,
        endpoint: &Url,
        code: &str,
        verifier: &str,
        auth: ClientAuth,
    ) -> reqwest::RequestBuilder {
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("code_verifier", verifier),
            ("client_id", &self.client_id),
        ];
        let mut request = client
            .post(endpoint.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        match (auth, self.client_secret.as_deref()) {
            (ClientAuth::Basic, Some(secret)) => {
                // RFC 6749 §2.3.1: each part form-encoded before the Basic encoding.
                let enc =
                    |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                let pair = format!("{}:{}", enc(&self.client_id), enc(secret));
                let value = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                );
                request = request.header(reqwest::header::AUTHORIZATION, value);
            }
            (ClientAuth::Post, Some(secret)) => form.push(("client_secret", secret)),
            _ => {}
        }
        request.body(form_body(&form)).header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
    }
}

fn form_body(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// Reads at most [`MAX_RESPONSE_BYTES`] of `response`.
pub(crate) async fn bounded_body(response: reqwest::Response) -> Result<Vec<u8>, FlowError> {
    crate::read_bounded(response, MAX_RESPONSE_BYTES)
        .await
        .map_err(FlowError::Unavailable)
}

/// A successful token response (the fields read).
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    pub access_token: Option<String>,
    pub id_token: Option<String>,
    /// GitHub answers errors with `200` and this field.
    pub error: Option<String>,
}

/// Sends a token request and reads its answer: a `4xx` (or an `error` field) is a refusal, a
/// `5xx`, a redirect or an unreadable body the provider's failure.
pub(crate) async fn exchange(request: reqwest::RequestBuilder) -> Result<TokenResponse, FlowError> {
    let response = request
        .send()
        .await
        .map_err(|e| FlowError::Unavailable(describe(&e)))?;
    let status = response.status();
    if status.is_redirection() {
        return Err(FlowError::Unavailable(format!(
            "redirect refused (HTTP {})",
            status.as_u16()
        )));
    }
    if status.is_server_error() {
        return Err(FlowError::Unavailable(format!("HTTP {}", status.as_u16())));
    }
    let body = bounded_body(response).await?;
    if status.is_client_error() {
        return Err(FlowError::Refused(error_code(&body, status)));
    }
    let token: TokenResponse = serde_json::from_slice(&body)
        .map_err(|_| FlowError::Unavailable("the token response is not JSON".into()))?;
    if token.error.is_some() {
        return Err(FlowError::Refused(error_code(&body, status)));
    }
    Ok(token)
}

/// The `error` code of an OAuth error body (RFC 6749 §5.2), kept only when it is a short
/// printable word, for the log.
fn error_code(body: &[u8], status: StatusCode) -> String {
    #[derive(Deserialize)]
    struct Error {
        error: Option<String>,
    }
    serde_json::from_slice::<Error>(body)
        .ok()
        .and_then(|e| e.error)
        .filter(|e| e.len() <= 64 && e.chars().all(|c| c.is_ascii_graphic()))
        .unwrap_or_else(|| format!("HTTP {}", status.as_u16()))
}

/// Whether `url` may be an endpoint: `https://`, or `http://` to a loopback host (a provider on
/// the same machine, or a test's).
pub fn is_allowed_endpoint(url: &Url) -> bool {
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

/// An OpenID Connect provider's configuration, as its discovery document says.
#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    code_challenge_methods_supported: Option<Vec<String>>,
}

/// What discovery found, ready for use.
struct Discovered {
    authorization_endpoint: Url,
    token_endpoint: Url,
    auth: ClientAuth,
    verifier: IdTokenVerifier,
    fetched_at: OffsetDateTime,
}

#[derive(Default)]
struct DiscoveryCache {
    discovered: Option<Arc<Discovered>>,
    failed_at: Option<OffsetDateTime>,
}

/// An OpenID Connect provider, discovered from `{issuer}/.well-known/openid-configuration` on
/// first use (not at start-up: a provider that is down does not stop Authara from starting).
pub struct OidcProvider {
    issuer: String,
    settings: ClientSettings,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    leeway: Duration,
    cache: RwLock<DiscoveryCache>,
    discovering: Mutex<()>,
}

impl std::fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcProvider")
            .field("issuer", &self.issuer)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn span(d: Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

impl OidcProvider {
    /// A provider at `issuer` (exactly as its tokens spell it), for the client `settings`,
    /// fetched with `client` (a deadline, no redirects: see [`crate::client`]).
    pub fn new(
        issuer: String,
        settings: ClientSettings,
        client: reqwest::Client,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            issuer,
            settings,
            client,
            clock,
            leeway: Duration::from_secs(60),
            cache: RwLock::new(DiscoveryCache::default()),
            discovering: Mutex::new(()),
        }
    }

    /// The authorization endpoint, once discovered (or held from before).
    pub async fn authorization_endpoint(&self) -> Result<AuthorizationEndpoint<'_>, FlowError> {
        let d = self.discovered().await?;
        Ok(AuthorizationEndpoint {
            settings: &self.settings,
            endpoint: d.authorization_endpoint.clone(),
            nonce: true,
        })
    }

    /// Exchanges `code` (with the flow's `verifier`) and verifies the ID token against the
    /// flow's `nonce`.
    pub async fn finish(
        &self,
        code: &str,
        verifier: &str,
        nonce: &str,
    ) -> Result<ProviderUser, FlowError> {
        let d = self.discovered().await?;
        let request =
            self.settings
                .token_request(&self.client, &d.token_endpoint, code, verifier, d.auth);
        let token = exchange(request).await?;
        let id_token = token
            .id_token
            .ok_or_else(|| FlowError::Refused("no id_token in the token response".into()))?;
        let v = d
            .verifier
            .verify(&id_token, Expected { nonce: Some(nonce) })
            .await?;
        Ok(ProviderUser {
            subject: v.subject,
            email: v.email,
            email_verified: v.email_verified,
            name: v.name,
        })
    }

    /// The discovered configuration: cached, fetched by one caller at a time, not asked again
    /// for [`DISCOVERY_RETRY`] after a failure.
    async fn discovered(&self) -> Result<Arc<Discovered>, FlowError> {
        let now = self.clock.now();
        if let Some(d) = self.fresh(now).await? {
            return Ok(d);
        }
        let _one = self.discovering.lock().await;
        if let Some(d) = self.fresh(now).await? {
            return Ok(d);
        }
        let result = self.discover(now).await;
        let mut cache = self.cache.write().await;
        match result {
            Ok(d) => {
                let d = Arc::new(d);
                cache.discovered = Some(Arc::clone(&d));
                cache.failed_at = None;
                Ok(d)
            }
            Err(e) => {
                tracing::warn!(issuer = %self.issuer, error = %e, "OpenID Connect discovery failed");
                cache.failed_at = Some(now);
                // A configuration held from before stays in use through an outage.
                cache.discovered.clone().ok_or(e)
            }
        }
    }

    /// A held configuration still fresh; an error while a recent failure stands and nothing
    /// is held; `None` when it is time to fetch.
    async fn fresh(&self, now: OffsetDateTime) -> Result<Option<Arc<Discovered>>, FlowError> {
        let cache = self.cache.read().await;
        if let Some(d) = &cache.discovered {
            if now < d.fetched_at + span(DISCOVERY_MAX_AGE) {
                return Ok(Some(Arc::clone(d)));
            }
        }
        if let Some(at) = cache.failed_at {
            if now < at + span(DISCOVERY_RETRY) {
                return match &cache.discovered {
                    Some(d) => Ok(Some(Arc::clone(d))),
                    None => Err(FlowError::Unavailable(
                        "discovery failed moments ago".into(),
                    )),
                };
            }
        }
        Ok(None)
    }

    async fn discover(&self, now: OffsetDateTime) -> Result<Discovered, FlowError> {
        let unavailable = FlowError::Unavailable;
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let response = self
            .client
            .get(&url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| unavailable(describe(&e)))?;
        let status = response.status();
        if status != StatusCode::OK {
            return Err(unavailable(format!(
                "discovery answered HTTP {}",
                status.as_u16()
            )));
        }
        let body = bounded_body(response).await?;
        let m: Metadata = serde_json::from_slice(&body)
            .map_err(|_| unavailable("the discovery document is not valid".into()))?;
        // OpenID Connect Discovery §4.3: the document is the issuer's own.
        if m.issuer != self.issuer {
            return Err(unavailable(
                "the discovery document names another issuer".into(),
            ));
        }
        let endpoint = |s: &str, what: &str| {
            Url::parse(s)
                .ok()
                .filter(is_allowed_endpoint)
                .ok_or_else(|| unavailable(format!("the {what} is not an https:// URL")))
        };
        let authorization_endpoint = endpoint(&m.authorization_endpoint, "authorization endpoint")?;
        let token_endpoint = endpoint(&m.token_endpoint, "token endpoint")?;
        let jwks_uri = endpoint(&m.jwks_uri, "jwks_uri")?;
        if let Some(methods) = &m.code_challenge_methods_supported {
            if !methods.iter().any(|x| x == "S256") {
                return Err(unavailable(
                    "the provider does not support PKCE S256".into(),
                ));
            }
        }
        let auth = match (
            &self.settings.client_secret,
            &m.token_endpoint_auth_methods_supported,
        ) {
            (None, _) => ClientAuth::None,
            // Absent means client_secret_basic (Discovery §3).
            (Some(_), None) => ClientAuth::Basic,
            (Some(_), Some(methods)) if methods.iter().any(|x| x == "client_secret_basic") => {
                ClientAuth::Basic
            }
            (Some(_), Some(methods)) if methods.iter().any(|x| x == "client_secret_post") => {
                ClientAuth::Post
            }
            (Some(_), Some(_)) => {
                return Err(unavailable(
                    "the provider supports neither client_secret_basic nor client_secret_post"
                        .into(),
                ))
            }
        };
        let jwks = Arc::new(Jwks::new(
            JwksSettings::new(jwks_uri),
            self.client.clone(),
            Arc::clone(&self.clock),
        ));
        let verifier = IdTokenVerifier::new(
            VerifierSettings {
                issuers: vec![self.issuer.clone()],
                client_id: self.settings.client_id.clone(),
                leeway: self.leeway,
                // An identity without a verified email can still sign in to the account it is
                // linked to; the caller decides (it never creates an account without one).
                require_verified_email: false,
            },
            jwks,
            Arc::clone(&self.clock),
        );
        Ok(Discovered {
            authorization_endpoint,
            token_endpoint,
            auth,
            verifier,
            fetched_at: now,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_s256_challenge_is_rfc_7636_appendix_b() {
        assert_eq!(
            code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn endpoints_must_be_https_or_loopback_http() {
        for ok in [
            "https://idp.example/authorize",
            "http://127.0.0.1:9000/token",
            "http://localhost/jwks",
            "http://[::1]:8/x",
        ] {
            assert!(is_allowed_endpoint(&Url::parse(ok).unwrap()), "{ok}");
        }
        for bad in [
            "http://idp.example/token",
            "ftp://idp.example/x",
            "http://10.0.0.1/x",
        ] {
            assert!(!is_allowed_endpoint(&Url::parse(bad).unwrap()), "{bad}");
        }
    }
}

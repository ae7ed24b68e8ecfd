//! A provider's signing keys (its JWKS), fetched and cached.
//!
//! The set is fetched on first use and kept until its `Cache-Control: max-age` runs out (clamped
//! to [`JwksSettings::min_max_age`]..=[`JwksSettings::max_max_age`]; without one,
//! [`JwksSettings::default_max_age`]). A token naming a key the set does not hold makes one fetch
//! more, at most once per [`JwksSettings::min_refetch_interval`]: a provider's rotation is picked
//! up at once, while a stream of tokens with made-up key ids costs the provider nothing. When a
//! fetch fails, keys already held stay in use (a provider's outage does not log everyone out of
//! new sign-ins), and the failure is reported only when no held key fits.
//!
//! Only signature keys of the two algorithms accepted are kept: RSA as RS256, P-256 as ES256. A
//! key whose `alg` or `use` says otherwise is skipped, never "converted".

use std::sync::Arc;
use std::time::Duration;

use authara_core::clock::Clock;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey};
use reqwest::header::{HeaderMap, CACHE_CONTROL};
use reqwest::{StatusCode, Url};
use time::OffsetDateTime;
use tokio::sync::{Mutex, RwLock};

use crate::{describe, read_bounded};

/// How much of a JWKS response is read; a real set is a few kilobytes.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;

/// How the set is fetched and kept.
#[derive(Debug, Clone)]
pub struct JwksSettings {
    /// Where the set is (`AUTHARA_OAUTH_GOOGLE_JWKS_URL`, or the provider's `jwks_uri`).
    pub url: Url,
    /// Kept this long when the answer has no usable `max-age`.
    pub default_max_age: Duration,
    /// A `max-age` below this is raised to it.
    pub min_max_age: Duration,
    /// A `max-age` above this is lowered to it.
    pub max_max_age: Duration,
    /// The shortest time between two fetches made because a token named an unknown key.
    pub min_refetch_interval: Duration,
}

impl JwksSettings {
    /// The defaults for a set at `url`: 1 h without `max-age`, clamped to 1 min..24 h, and at
    /// most one unknown-key fetch per 30 s.
    pub fn new(url: Url) -> Self {
        Self {
            url,
            default_max_age: Duration::from_secs(3600),
            min_max_age: Duration::from_secs(60),
            max_max_age: Duration::from_secs(24 * 3600),
            min_refetch_interval: Duration::from_secs(30),
        }
    }
}

/// Why no key could be given. The text names no key material and no token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// The set could not be fetched or read, and no held key fits.
    #[error("the identity provider's keys are unavailable: {0}")]
    Unavailable(String),
    /// The set was read (recently enough) and holds no key for this token.
    #[error("no key of the identity provider matches the token")]
    UnknownKey,
}

/// One usable key of the set.
struct Key {
    kid: Option<String>,
    algorithm: Algorithm,
    decoding: DecodingKey,
}

/// What was last fetched.
#[derive(Default)]
struct Cached {
    keys: Vec<Arc<Key>>,
    /// When the keys stop being fresh; `None` before the first successful fetch.
    fresh_until: Option<OffsetDateTime>,
    /// When a fetch was last tried (successful or not).
    last_attempt: Option<OffsetDateTime>,
}

/// A provider's key set, shared by every request.
pub struct Jwks {
    settings: JwksSettings,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    cached: RwLock<Cached>,
    /// Held while fetching, so that concurrent requests wait for one fetch instead of each
    /// making their own.
    fetching: Mutex<()>,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwks")
            .field("url", &self.settings.url.as_str())
            .finish_non_exhaustive()
    }
}

fn span(d: Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

impl Jwks {
    /// A set fetched with `client`, which should have a deadline and follow no redirect.
    pub fn new(settings: JwksSettings, client: reqwest::Client, clock: Arc<dyn Clock>) -> Self {
        Self {
            settings,
            client,
            clock,
            cached: RwLock::new(Cached::default()),
            fetching: Mutex::new(()),
        }
    }

    /// The key for a token whose header names `kid` (if any) and `algorithm`. A token without
    /// `kid` is accepted only when the set has exactly one key of its algorithm.
    pub async fn key(
        &self,
        kid: Option<&str>,
        algorithm: Algorithm,
    ) -> Result<DecodingKey, JwksError> {
        let now = self.clock.now();
        {
            let cached = self.cached.read().await;
            let fresh = cached.fresh_until.is_some_and(|until| now < until);
            if fresh {
                if let Some(key) = find(&cached.keys, kid, algorithm) {
                    return Ok(key.decoding.clone());
                }
            }
        }
        // Stale, never fetched, or no such key: fetch (once for everyone waiting), then look
        // again in whatever is held.
        let fetched = self.refresh(now).await;
        let cached = self.cached.read().await;
        if let Some(key) = find(&cached.keys, kid, algorithm) {
            return Ok(key.decoding.clone());
        }
        fetched?;
        Err(JwksError::UnknownKey)
    }

    /// Fetches the set unless another caller just did, or an unknown-key fetch is too recent
    /// for the set still fresh.
    async fn refresh(&self, now: OffsetDateTime) -> Result<(), JwksError> {
        let _one_at_a_time = self.fetching.lock().await;
        {
            let cached = self.cached.read().await;
            let fresh = cached.fresh_until.is_some_and(|until| now < until);
            let recent = cached
                .last_attempt
                .is_some_and(|at| now < at + span(self.settings.min_refetch_interval));
            if recent {
                // Fresh and just fetched: a made-up kid waits for the interval (a waiter behind
                // the fetch that just ran lands here too, and reads its result). Not fresh and
                // just tried: the provider failed; do not hammer it.
                return if fresh {
                    Ok(())
                } else {
                    Err(JwksError::Unavailable("the last fetch failed".into()))
                };
            }
        }
        let result = self.fetch().await;
        let mut cached = self.cached.write().await;
        cached.last_attempt = Some(now);
        match result {
            Ok((keys, max_age)) => {
                cached.keys = keys;
                cached.fresh_until = Some(now + span(max_age));
                Ok(())
            }
            Err(e) => {
                tracing::warn!(url = %self.settings.url, error = %e, "JWKS fetch failed");
                Err(e)
            }
        }
    }

    /// One GET of the set: its usable keys and how long to keep them.
    async fn fetch(&self) -> Result<(Vec<Arc<Key>>, Duration), JwksError> {
        let unavailable = |what: String| JwksError::Unavailable(what);
        let response = self
            .client
            .get(self.settings.url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| unavailable(describe(&e)))?;
        let status = response.status();
        if status.is_redirection() {
            // The client follows none: a key set that moved is an operator's change to make.
            return Err(unavailable(format!(
                "redirect refused (HTTP {})",
                status.as_u16()
            )));
        }
        if status != StatusCode::OK {
            return Err(unavailable(format!("HTTP {}", status.as_u16())));
        }
        let max_age = self.max_age(response.headers());
        let body = read_bounded(response, MAX_JWKS_BYTES)
            .await
            .map_err(unavailable)?;
        let set: JwkSet = serde_json::from_slice(&body)
            .map_err(|_| unavailable("the key set is not a JWKS document".into()))?;
        let keys: Vec<Arc<Key>> = set.keys.iter().filter_map(usable).map(Arc::new).collect();
        Ok((keys, max_age))
    }

    /// `max-age` of the answer, clamped; the default without one (or with `no-store`,
    /// `no-cache`, which a key set has no reason to send: the floor then).
    fn max_age(&self, headers: &HeaderMap) -> Duration {
        let s = &self.settings;
        let mut max_age = None;
        for value in headers.get_all(CACHE_CONTROL) {
            let Ok(value) = value.to_str() else { continue };
            for directive in value.split(',').map(str::trim) {
                let lower = directive.to_ascii_lowercase();
                if lower == "no-store" || lower == "no-cache" {
                    return s.min_max_age;
                }
                if let Some(seconds) = lower.strip_prefix("max-age=") {
                    if let Ok(seconds) = seconds.trim_matches('"').parse::<u64>() {
                        max_age = Some(Duration::from_secs(seconds));
                    }
                }
            }
        }
        max_age
            .unwrap_or(s.default_max_age)
            .clamp(s.min_max_age, s.max_max_age.max(s.min_max_age))
    }
}

/// A transport error, without the URL's query or anything from the body.
/// The key `kid` of `algorithm`; without a `kid`, the only key of that algorithm.
fn find<'a>(keys: &'a [Arc<Key>], kid: Option<&str>, algorithm: Algorithm) -> Option<&'a Key> {
    let mut of_algorithm = keys.iter().filter(|k| k.algorithm == algorithm);
    match kid {
        Some(kid) => of_algorithm
            .find(|k| k.kid.as_deref() == Some(kid))
            .map(|k| &**k),
        None => {
            let first = of_algorithm.next()?;
            of_algorithm.next().is_none().then_some(&**first)
        }
    }
}

/// `jwk` as a key of an accepted algorithm, or `None` to skip it.
fn usable(jwk: &Jwk) -> Option<Key> {
    if let Some(key_use) = &jwk.common.public_key_use {
        if *key_use != PublicKeyUse::Signature {
            return None;
        }
    }
    let algorithm = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            Algorithm::ES256
        }
        _ => return None,
    };
    if let Some(declared) = jwk.common.key_algorithm {
        let matches = matches!(
            (declared, algorithm),
            (KeyAlgorithm::RS256, Algorithm::RS256) | (KeyAlgorithm::ES256, Algorithm::ES256)
        );
        if !matches {
            return None;
        }
    }
    let decoding = DecodingKey::from_jwk(jwk).ok()?;
    Some(Key {
        kid: jwk.common.key_id.clone(),
        algorithm,
        decoding,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use authara_core::clock::ManualClock;
    use reqwest::header::HeaderValue;
    use time::macros::datetime;

    fn jwks() -> Jwks {
        let settings = JwksSettings::new(Url::parse("http://127.0.0.1:9/jwks").unwrap());
        Jwks::new(
            settings,
            reqwest::Client::new(),
            Arc::new(ManualClock::new(datetime!(2030-01-01 0:00 UTC))),
        )
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(CACHE_CONTROL, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn max_age_is_read_and_clamped() {
        let j = jwks();
        let secs = |values: &[&str]| j.max_age(&headers(values)).as_secs();
        assert_eq!(secs(&[]), 3600);
        assert_eq!(secs(&["public, max-age=21600, must-revalidate"]), 21600);
        assert_eq!(secs(&["Max-Age=120"]), 120);
        assert_eq!(secs(&["max-age=5"]), 60, "raised to the floor");
        assert_eq!(
            secs(&["max-age=999999999"]),
            24 * 3600,
            "lowered to the cap"
        );
        assert_eq!(secs(&["max-age=abc"]), 3600, "unreadable: the default");
        assert_eq!(secs(&["no-store"]), 60);
        assert_eq!(
            secs(&["private", "max-age=300"]),
            300,
            "across header lines"
        );
    }

    /// A JWK of the test tree's first RSA key, with `extra` members.
    fn rsa_jwk(extra: serde_json::Value) -> Jwk {
        let keys: serde_json::Value =
            serde_json::from_str(include_str!("../tests/oidc/keys/public.json")).unwrap();
        let mut v = keys["rsa-a"].clone();
        v["kid"] = "k1".into();
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn only_signature_keys_of_the_accepted_algorithms_are_kept() {
        let kept = |extra| usable(&rsa_jwk(extra)).map(|k| k.algorithm);
        assert_eq!(kept(serde_json::json!({})), Some(Algorithm::RS256));
        assert_eq!(
            kept(serde_json::json!({"use": "sig", "alg": "RS256"})),
            Some(Algorithm::RS256)
        );
        assert_eq!(kept(serde_json::json!({"use": "enc"})), None);
        assert_eq!(kept(serde_json::json!({"alg": "RS512"})), None);
        assert_eq!(kept(serde_json::json!({"alg": "PS256"})), None);
        let secret: Jwk =
            serde_json::from_value(serde_json::json!({"kty": "oct", "k": "c2VjcmV0"})).unwrap();
        assert!(
            usable(&secret).is_none(),
            "a symmetric key is never a provider's key"
        );
    }

    #[test]
    fn a_token_without_kid_needs_a_single_key_of_its_algorithm() {
        let one = usable(&rsa_jwk(serde_json::json!({"kid": "a"}))).unwrap();
        let two = usable(&rsa_jwk(serde_json::json!({"kid": "b"}))).unwrap();
        let keys = vec![Arc::new(one)];
        assert!(find(&keys, None, Algorithm::RS256).is_some());
        assert!(find(&keys, None, Algorithm::ES256).is_none());
        assert!(find(&keys, Some("a"), Algorithm::RS256).is_some());
        assert!(find(&keys, Some("b"), Algorithm::RS256).is_none());
        let keys = vec![keys[0].clone(), Arc::new(two)];
        assert!(find(&keys, None, Algorithm::RS256).is_none(), "ambiguous");
        assert!(find(&keys, Some("b"), Algorithm::RS256).is_some());
    }
}

//! A test identity provider: an axum server on a random loopback port that publishes a JWKS
//! (any subset of the test tree's keys, with the `Cache-Control` asked for), counts how often it
//! is fetched, can fail, redirect or answer too much, and signs ID tokens with those keys.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

/// The issuer the test provider's tokens carry.
pub const ISSUER: &str = "https://idp.test.example";
/// The client id the tokens are for.
pub const CLIENT_ID: &str = "authara-test-client";

/// A key of the test tree: its id in the set, algorithm, private PEM and public JWK members.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestKey {
    RsaA,
    RsaB,
    EcA,
}

impl TestKey {
    pub fn kid(self) -> &'static str {
        match self {
            Self::RsaA => "rsa-a",
            Self::RsaB => "rsa-b",
            Self::EcA => "ec-a",
        }
    }

    pub fn algorithm(self) -> Algorithm {
        match self {
            Self::RsaA | Self::RsaB => Algorithm::RS256,
            Self::EcA => Algorithm::ES256,
        }
    }

    fn encoding(self) -> EncodingKey {
        match self {
            Self::RsaA => EncodingKey::from_rsa_pem(include_bytes!("keys/rsa-a.pem")).unwrap(),
            Self::RsaB => EncodingKey::from_rsa_pem(include_bytes!("keys/rsa-b.pem")).unwrap(),
            Self::EcA => EncodingKey::from_ec_pem(include_bytes!("keys/ec-a.pem")).unwrap(),
        }
    }

    /// The public key as a JWK, with `kid`, `use` and `alg`.
    pub fn jwk(self) -> Value {
        let all: Value = serde_json::from_str(include_str!("keys/public.json")).unwrap();
        let mut jwk = all[self.kid()].clone();
        jwk["kid"] = self.kid().into();
        jwk["use"] = "sig".into();
        jwk["alg"] = match self.algorithm() {
            Algorithm::RS256 => "RS256",
            _ => "ES256",
        }
        .into();
        jwk
    }
}

/// What the provider serves at `/jwks`.
pub enum Serve {
    /// The published keys, `200`.
    Keys,
    /// `500`.
    Fail,
    /// A `302` to the keys.
    Redirect,
    /// A body larger than any key set.
    Huge,
}

struct Inner {
    published: Mutex<Vec<TestKey>>,
    cache_control: Mutex<Option<String>>,
    serve: Mutex<Serve>,
    hits: AtomicUsize,
}

/// A running test provider.
pub struct TestIdp {
    addr: SocketAddr,
    inner: Arc<Inner>,
}

async fn jwks(State(inner): State<Arc<Inner>>) -> Response {
    inner.hits.fetch_add(1, Ordering::SeqCst);
    let keys: Vec<Value> = inner
        .published
        .lock()
        .unwrap()
        .iter()
        .map(|k| k.jwk())
        .collect();
    let cache_control = inner.cache_control.lock().unwrap().clone();
    match *inner.serve.lock().unwrap() {
        Serve::Fail => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Serve::Redirect => Redirect::temporary("/jwks-elsewhere").into_response(),
        Serve::Huge => {
            let padding = "x".repeat(300 * 1024);
            axum::Json(json!({ "keys": keys, "padding": padding })).into_response()
        }
        Serve::Keys => {
            let mut res = axum::Json(json!({ "keys": keys })).into_response();
            if let Some(cc) = cache_control {
                res.headers_mut()
                    .insert(header::CACHE_CONTROL, cc.parse().unwrap());
            }
            res
        }
    }
}

impl TestIdp {
    /// Starts the provider publishing `keys`, without `Cache-Control`.
    pub async fn start(keys: &[TestKey]) -> Self {
        let inner = Arc::new(Inner {
            published: Mutex::new(keys.to_vec()),
            cache_control: Mutex::new(None),
            serve: Mutex::new(Serve::Keys),
            hits: AtomicUsize::new(0),
        });
        let app = axum::Router::new()
            .route("/jwks", get(jwks))
            .route("/jwks-elsewhere", get(jwks))
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, inner }
    }

    pub fn jwks_url(&self) -> reqwest::Url {
        reqwest::Url::parse(&format!("http://{}/jwks", self.addr)).unwrap()
    }

    /// Publishes exactly `keys` from now on (a rotation).
    pub fn publish(&self, keys: &[TestKey]) {
        *self.inner.published.lock().unwrap() = keys.to_vec();
    }

    pub fn cache_control(&self, value: Option<&str>) {
        *self.inner.cache_control.lock().unwrap() = value.map(str::to_owned);
    }

    pub fn serve(&self, serve: Serve) {
        *self.inner.serve.lock().unwrap() = serve;
    }

    /// How many times `/jwks` was asked for.
    pub fn hits(&self) -> usize {
        self.inner.hits.load(Ordering::SeqCst)
    }

    /// Signs `claims` with `key`, naming it in the header.
    pub fn sign(key: TestKey, claims: &Value) -> String {
        let mut header = Header::new(key.algorithm());
        header.kid = Some(key.kid().to_owned());
        jsonwebtoken::encode(&header, claims, &key.encoding()).unwrap()
    }

    /// Signs `claims` with `key` under a header naming `kid` instead (or none).
    pub fn sign_as(key: TestKey, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(key.algorithm());
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &key.encoding()).unwrap()
    }
}

//! A test identity provider on a random loopback port, in both shapes Authara speaks to:
//!
//! - **OpenID Connect**: discovery, a JWKS (any of the test tree's RSA and EC keys, so a
//!   rotation is a `publish`), an authorize endpoint that approves (or denies) at once and
//!   redirects back with a code, and a token endpoint that checks what a real one checks (the
//!   client's secret by HTTP Basic, the code once, the redirect URI, the PKCE verifier against
//!   the S256 challenge) and returns an ID token with the request's nonce.
//! - **GitHub**: `/login/oauth/authorize`, `/login/oauth/access_token` (secret in the form,
//!   errors as `200 {"error"}` like GitHub's), `/api/user` and `/api/user/emails`.
//!
//! Who signs in is [`TestIdp::next_user`]; the ID token's claims can be spoiled with
//! [`TestIdp::spoil`] to test the refusals.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use authara_core::clock::{Clock, SystemClock};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "authara-test-client";
pub const CLIENT_SECRET: &str = "test-secret-hunter2";

/// A key of the test tree (`crates/authara-oidc/tests/oidc/keys`).
pub use crate::oidc_idp::TestKey as Key;

/// Who the provider says signs in next.
#[derive(Clone, Debug)]
pub struct IdpUser {
    pub subject: String,
    pub email: String,
    pub email_verified: bool,
}

/// What the authorize endpoint does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Authorize {
    Approve,
    /// `error=access_denied`, as when the user clicks "Cancel".
    Deny,
}

struct Grant {
    redirect_uri: String,
    challenge: String,
    nonce: Option<String>,
    user: IdpUser,
}

struct Inner {
    issuer: Mutex<String>,
    user: Mutex<IdpUser>,
    authorize: Mutex<Authorize>,
    grants: Mutex<HashMap<String, Grant>>,
    tokens: Mutex<HashMap<String, IdpUser>>,
    published: Mutex<Vec<Key>>,
    signing: Mutex<Key>,
    spoiled: Mutex<Value>,
    token_down: Mutex<bool>,
    /// The clock the tokens' times come from: the server's, once [`TestIdp::clock`] is told.
    clock: Mutex<Arc<dyn Clock>>,
    token_requests: AtomicUsize,
    jwks_hits: AtomicUsize,
}

/// A running test provider.
pub struct TestIdp {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

fn random_code() -> String {
    let mut b = [0u8; 24];
    authara_core::random::Random::fill(&authara_core::random::OsRandom, &mut b);
    URL_SAFE_NO_PAD.encode(b)
}

async fn discovery(State(i): State<Arc<Inner>>) -> Json<Value> {
    let issuer = i.issuer.lock().unwrap().clone();
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "code_challenge_methods_supported": ["S256"],
    }))
}

async fn jwks(State(i): State<Arc<Inner>>) -> Json<Value> {
    i.jwks_hits.fetch_add(1, Ordering::SeqCst);
    let keys: Vec<Value> = i
        .published
        .lock()
        .unwrap()
        .iter()
        .map(|k| k.jwk())
        .collect();
    Json(json!({ "keys": keys }))
}

/// Both authorize endpoints: checks the request, then approves or denies at once.
async fn authorize(
    State(i): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let field = |k: &str| q.get(k).cloned().unwrap_or_default();
    if field("client_id") != CLIENT_ID
        || field("response_type") != "code"
        || field("code_challenge_method") != "S256"
        || field("code_challenge").len() != 43
        || field("state").is_empty()
    {
        return (StatusCode::BAD_REQUEST, "bad authorization request").into_response();
    }
    let redirect_uri = field("redirect_uri");
    let mut back = reqwest::Url::parse(&redirect_uri).unwrap();
    if *i.authorize.lock().unwrap() == Authorize::Deny {
        back.query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("state", &field("state"));
        return Redirect::to(back.as_str()).into_response();
    }
    let code = random_code();
    i.grants.lock().unwrap().insert(
        code.clone(),
        Grant {
            redirect_uri,
            challenge: field("code_challenge"),
            nonce: q.get("nonce").cloned(),
            user: i.user.lock().unwrap().clone(),
        },
    );
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &field("state"));
    Redirect::to(back.as_str()).into_response()
}

/// The code's grant, if the request proves it (once; the redirect URI and verifier match).
fn redeem(i: &Inner, form: &HashMap<String, String>) -> Option<Grant> {
    let code = form.get("code")?;
    let grant = i.grants.lock().unwrap().remove(code)?;
    let verifier = form.get("code_verifier")?;
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (form.get("grant_type").map(String::as_str) == Some("authorization_code")
        && form.get("redirect_uri") == Some(&grant.redirect_uri)
        && challenge == grant.challenge)
        .then_some(grant)
}

async fn token(
    State(i): State<Arc<Inner>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    i.token_requests.fetch_add(1, Ordering::SeqCst);
    if *i.token_down.lock().unwrap() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(basic.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let Some(grant) = redeem(&i, &form) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    };
    let now = i.clock.lock().unwrap().now().unix_timestamp();
    let mut claims = json!({
        "iss": *i.issuer.lock().unwrap(),
        "aud": CLIENT_ID,
        "sub": grant.user.subject,
        "email": grant.user.email,
        "email_verified": grant.user.email_verified,
        "nonce": grant.nonce,
        "iat": now,
        "exp": now + 300,
    });
    for (k, v) in i.spoiled.lock().unwrap().as_object().unwrap() {
        claims[k] = v.clone();
    }
    let key = *i.signing.lock().unwrap();
    let id_token = crate::oidc_idp::TestIdp::sign(key, &claims);
    Json(json!({
        "access_token": random_code(),
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token,
    }))
    .into_response()
}

async fn github_token(
    State(i): State<Arc<Inner>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    i.token_requests.fetch_add(1, Ordering::SeqCst);
    if *i.token_down.lock().unwrap() {
        return StatusCode::BAD_GATEWAY.into_response();
    }
    if form.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || form.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
    {
        return Json(json!({"error": "incorrect_client_credentials"})).into_response();
    }
    let Some(grant) = redeem(&i, &form) else {
        // GitHub's way: 200 with an error.
        return Json(json!({"error": "bad_verification_code"})).into_response();
    };
    let access = random_code();
    i.tokens.lock().unwrap().insert(access.clone(), grant.user);
    Json(json!({"access_token": access, "token_type": "bearer", "scope": "read:user,user:email"}))
        .into_response()
}

fn github_user(i: &Inner, headers: &HeaderMap) -> Option<IdpUser> {
    let token = headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    i.tokens.lock().unwrap().get(token).cloned()
}

async fn github_api_user(State(i): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    let Some(u) = github_user(&i, &headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    // The public profile email is the user's to type: never what Authara trusts.
    Json(
        json!({"id": u.subject.parse::<u64>().unwrap(), "login": "octo", "name": "Octo Cat",
        "email": "typed-anything@example.org"}),
    )
    .into_response()
}

async fn github_api_emails(State(i): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    let Some(u) = github_user(&i, &headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    Json(json!([
        {"email": "secondary@example.org", "primary": false, "verified": true, "visibility": null},
        {"email": u.email, "primary": true, "verified": u.email_verified, "visibility": "private"},
    ]))
    .into_response()
}

impl TestIdp {
    /// Starts the provider; it signs with `RsaA` and publishes it.
    pub async fn start() -> Self {
        let inner = Arc::new(Inner {
            issuer: Mutex::new(String::new()),
            user: Mutex::new(IdpUser {
                subject: "1001".into(),
                email: crate::helpers::email("octo"),
                email_verified: true,
            }),
            authorize: Mutex::new(Authorize::Approve),
            grants: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            published: Mutex::new(vec![Key::RsaA]),
            signing: Mutex::new(Key::RsaA),
            spoiled: Mutex::new(json!({})),
            token_down: Mutex::new(false),
            clock: Mutex::new(Arc::new(SystemClock)),
            token_requests: AtomicUsize::new(0),
            jwks_hits: AtomicUsize::new(0),
        });
        let app = axum::Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/login/oauth/authorize", get(authorize))
            .route("/login/oauth/access_token", post(github_token))
            .route("/api/user", get(github_api_user))
            .route("/api/user/emails", get(github_api_emails))
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        *inner.issuer.lock().unwrap() = format!("http://{addr}");
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, inner }
    }

    pub fn issuer(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Takes the times of its tokens from `clock` (the server's, so that tests can move it).
    pub fn clock(&self, clock: Arc<dyn Clock>) {
        *self.inner.clock.lock().unwrap() = clock;
    }

    pub fn next_user(&self, subject: &str, email: &str, email_verified: bool) {
        *self.inner.user.lock().unwrap() = IdpUser {
            subject: subject.into(),
            email: email.into(),
            email_verified,
        };
    }

    pub fn authorize(&self, a: Authorize) {
        *self.inner.authorize.lock().unwrap() = a;
    }

    /// Overrides claims of the ID tokens issued from now on (`{}` for none).
    pub fn spoil(&self, claims: Value) {
        *self.inner.spoiled.lock().unwrap() = claims;
    }

    /// Signs with `key` and publishes `published` from now on.
    pub fn keys(&self, key: Key, published: &[Key]) {
        *self.inner.signing.lock().unwrap() = key;
        *self.inner.published.lock().unwrap() = published.to_vec();
    }

    pub fn token_down(&self, down: bool) {
        *self.inner.token_down.lock().unwrap() = down;
    }

    pub fn token_requests(&self) -> usize {
        self.inner.token_requests.load(Ordering::SeqCst)
    }

    pub fn jwks_hits(&self) -> usize {
        self.inner.jwks_hits.load(Ordering::SeqCst)
    }
}

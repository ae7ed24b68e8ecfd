//! Google sign-in in JSON (issue 12, `UPSTREAM.md` §1.7, §5.8), against a JWKS served on
//! 127.0.0.1 with the test tree's keys (`crates/authara-oidc/tests/oidc/keys`): the options and
//! their nonce cookie, a new Google user, the same user again, no silent linking to an existing
//! account, and every bad token or nonce refused with `401`, creating nothing and never `5xx`.

use crate::helpers::{email, Backend, TestApp};
use crate::on_both;
use authara_core::clock::Clock as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

on_both!(
    google_is_404_until_enabled,
    google_sign_in_creates_then_signs_in_the_same_account,
    google_never_links_an_existing_account_silently,
    bad_google_tokens_and_nonces_are_refused_and_create_nothing,
    the_login_and_signup_pages_offer_google_with_its_csp,
    the_redirect_post_signs_in_without_our_javascript,
    bad_callback_posts_create_no_session_and_never_answer_5xx,
    the_script_post_needs_our_csrf_token_and_the_nonce,
    the_redirect_post_for_an_existing_email_goes_to_the_confirm_page,
);

const CLIENT_ID: &str = "authara-test.apps.googleusercontent.com";

/// A JWKS with the test tree's first RSA key, on a random loopback port.
async fn jwks_server() -> String {
    let keys: Value = serde_json::from_str(include_str!(
        "../../../authara-oidc/tests/oidc/keys/public.json"
    ))
    .unwrap();
    let mut jwk = keys["rsa-a"].clone();
    jwk["kid"] = "rsa-a".into();
    jwk["alg"] = "RS256".into();
    jwk["use"] = "sig".into();
    let body = json!({ "keys": [jwk] });
    let app = axum::Router::new().route(
        "/certs",
        axum::routing::get(move || {
            let body = body.clone();
            async move { axum::Json(body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    format!("http://{addr}/certs")
}

async fn spawn(b: Backend) -> TestApp {
    let jwks = jwks_server().await;
    TestApp::spawn_with(
        b,
        &[
            ("AUTHARA_OAUTH_PROVIDERS", "google"),
            ("AUTHARA_OAUTH_GOOGLE_CLIENT_ID", CLIENT_ID),
            ("AUTHARA_OAUTH_GOOGLE_JWKS_URL", &jwks),
        ],
    )
    .await
}

/// An ID token as Google would sign it (with the test key), for `sub` and `email`, now.
fn token(app: &TestApp, sub: &str, email: &str, nonce: &str, changes: Value) -> String {
    let now = app.clock.now().unix_timestamp();
    let mut claims = json!({
        "iss": "https://accounts.google.com",
        "aud": CLIENT_ID,
        "azp": CLIENT_ID,
        "sub": sub,
        "email": email,
        "email_verified": true,
        "nonce": nonce,
        "iat": now,
        "exp": now + 3600,
    });
    for (k, v) in changes.as_object().unwrap() {
        claims[k] = v.clone();
    }
    sign(
        "rsa-a",
        include_bytes!("../../../authara-oidc/tests/oidc/keys/rsa-a.pem"),
        &claims,
    )
}

fn sign(kid: &str, pem: &[u8], claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_pem(pem).unwrap()).unwrap()
}

/// `GET …/options`: the status, the nonce and whether the HttpOnly nonce cookie came with it.
async fn options(app: &TestApp) -> (u16, String) {
    let res = app.get("/auth/api/v1/oauth/google/options").await;
    let status = res.status().as_u16();
    if status != 200 {
        return (status, String::new());
    }
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("authara_oauth_nonce="))
        .expect("the nonce cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("Max-Age=600"), "{cookie}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["client_id"], CLIENT_ID);
    let nonce = body["nonce"].as_str().unwrap().to_owned();
    assert!(
        cookie.starts_with(&format!("authara_oauth_nonce={nonce};")),
        "{cookie}"
    );
    (status, nonce)
}

/// `POST /auth/api/v1/oauth/google` with the CSRF header: status and body.
async fn login(app: &TestApp, body: Value) -> (u16, Value) {
    let csrf = app.csrf().await;
    let res = app
        .client
        .post(app.url("/auth/api/v1/oauth/google"))
        .header("x-csrf-token", csrf)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn google_is_404_until_enabled(b: Backend) {
    let app = TestApp::spawn(b).await;
    assert_eq!(options(&app).await.0, 404);
    let (status, _) = login(&app, json!({"credential": "x", "nonce": "y"})).await;
    assert_eq!(status, 404);
}

async fn google_sign_in_creates_then_signs_in_the_same_account(b: Backend) {
    let app = spawn(b).await;
    let store = app.store().await;
    let (_, nonce) = options(&app).await;
    let id_token = token(&app, "g-ada", &email("ada"), &nonce, json!({}));
    let (status, body) = login(&app, json!({"credential": id_token, "nonce": nonce})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["email"], email("ada"));
    assert!(body["access_token"].is_string());
    let (status, me) = app.user().await;
    assert_eq!(status, 200, "the session cookies were set");
    let id: uuid::Uuid = me["id"].as_str().unwrap().parse().unwrap();
    assert!(
        me["organization"]["id"].is_string(),
        "an initial organization"
    );
    let user = store.find_user_by_id(id).await.unwrap().unwrap();
    assert_eq!(user.password_hash, None, "a Google account has no password");
    let (identity, _) = store
        .find_identity("google", "g-ada")
        .await
        .unwrap()
        .expect("the identity was stored");
    assert_eq!(identity.user_id, id);

    // An `admin` sign-in never creates an account (a new one is no administrator).
    let (_, admin_nonce) = options(&app).await;
    let admin_token = token(
        &app,
        "g-newcomer",
        &email("newcomer"),
        &admin_nonce,
        json!({}),
    );
    let csrf = app.csrf().await;
    let res = app
        .client
        .post(app.url("/auth/api/v1/oauth/google?audience=admin"))
        .header("x-csrf-token", csrf)
        .json(&json!({"credential": admin_token, "nonce": admin_nonce}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(store
        .find_user_by_email(&email("newcomer"))
        .await
        .unwrap()
        .is_none());

    // The nonce was used once: the same body again is refused.
    let (status, _) = login(&app, json!({"credential": id_token, "nonce": nonce})).await;
    assert_eq!(status, 401);

    // The same Google account later: the same user, no new one.
    app.clock.advance(time::Duration::minutes(1));
    let (_, nonce) = options(&app).await;
    let id_token = token(&app, "g-ada", &email("ada"), &nonce, json!({}));
    let (status, body) = login(&app, json!({"credential": id_token, "nonce": nonce})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["id"], id.to_string());
    let (identity, _) = store
        .find_identity("google", "g-ada")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(identity.last_used_at, Some(app.clock.now()));
}

async fn google_never_links_an_existing_account_silently(b: Backend) {
    let app = spawn(b).await;
    let store = app.store().await;
    let existing = app.signed_up("bob").await;
    let before = store.find_user_by_email(&existing).await.unwrap().unwrap();
    let (_, nonce) = options(&app).await;
    let id_token = token(&app, "g-bob", &existing, &nonce, json!({}));
    let (status, body) = login(&app, json!({"credential": id_token, "nonce": nonce})).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "account_link_required");
    assert!(store
        .find_identity("google", "g-bob")
        .await
        .unwrap()
        .is_none());
    assert!(store.list_identities(before.id).await.unwrap().is_empty());
}

async fn bad_google_tokens_and_nonces_are_refused_and_create_nothing(b: Backend) {
    let app = spawn(b).await;
    let store = app.store().await;
    let (_, nonce) = options(&app).await;
    let now = app.clock.now().unix_timestamp();
    let good = |changes: Value| token(&app, "g-eve", &email("eve"), &nonce, changes);
    let other_key = sign(
        "rsa-a",
        include_bytes!("../../../authara-oidc/tests/oidc/keys/rsa-b.pem"),
        &json!({"iss": "https://accounts.google.com", "aud": CLIENT_ID, "sub": "g-eve",
                "email": email("eve"), "email_verified": true, "nonce": nonce,
                "iat": now, "exp": now + 3600}),
    );
    let cases: Vec<(&str, Value)> = vec![
        (
            "another key's signature",
            json!({"credential": other_key, "nonce": nonce}),
        ),
        (
            "another audience",
            json!({"credential": good(json!({"aud": "someone-else"})), "nonce": nonce}),
        ),
        (
            "another issuer",
            json!({"credential": good(json!({"iss": "https://evil.example"})), "nonce": nonce}),
        ),
        (
            "expired",
            json!({"credential": good(json!({"exp": now - 120})), "nonce": nonce}),
        ),
        (
            "an unverified email",
            json!({"credential": good(json!({"email_verified": false})), "nonce": nonce}),
        ),
        (
            "the token's nonce is another",
            json!({"credential": good(json!({"nonce": "other"})), "nonce": nonce}),
        ),
        (
            "the body's nonce is not the cookie's",
            json!({"credential": good(json!({"nonce": "other"})), "nonce": "other"}),
        ),
        (
            "not a token",
            json!({"credential": "not.a.token", "nonce": nonce}),
        ),
        ("garbage", json!({"credential": "%%%", "nonce": nonce})),
    ];
    for (what, body) in cases {
        let (status, got) = login(&app, body).await;
        assert_eq!(status, 401, "{what}: {got}");
        assert_eq!(got["error"]["code"], "unauthorized", "{what}");
    }
    for (what, body) in [
        ("no nonce", json!({"credential": good(json!({}))})),
        (
            "an unknown field",
            json!({"credential": "x", "nonce": nonce, "flow": "login"}),
        ),
        ("not an object", json!("credential")),
    ] {
        let (status, _) = login(&app, body).await;
        assert_eq!(status, 400, "{what}");
    }
    // Without the nonce cookie (another browser), even a good token is refused.
    let other_browser = reqwest::Client::new();
    let res = other_browser
        .post(app.url("/auth/api/v1/oauth/google"))
        .header("x-csrf-token", "t")
        .header("cookie", "authara_csrf=t")
        .json(&json!({"credential": good(json!({})), "nonce": nonce}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(store
        .find_identity("google", "g-eve")
        .await
        .unwrap()
        .is_none());
    assert!(store
        .find_user_by_email(&email("eve"))
        .await
        .unwrap()
        .is_none());
    // And the good token still works afterwards: nothing above used the nonce up.
    let (status, body) = login(&app, json!({"credential": good(json!({})), "nonce": nonce})).await;
    assert_eq!(status, 200, "{body}");
}

/// The callback, posted as Google's page does (from Google's origin, with the `g_csrf_token`
/// pair), from a browser of its own: status, `Location`, whether a session cookie was set.
async fn redirect_post(
    app: &TestApp,
    query: &str,
    fields: &[(&str, &str)],
    cookie: Option<&str>,
) -> (u16, Option<String>, bool) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut req = client
        .post(app.url(&format!("/auth/oauth/google/callback{query}")))
        .header("origin", "https://accounts.google.com")
        .form(fields);
    if let Some(c) = cookie {
        req = req.header("cookie", format!("g_csrf_token={c}"));
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let session = res.headers().get_all("set-cookie").iter().any(|v| {
        v.to_str().unwrap().starts_with("authara_access=")
            && !v.to_str().unwrap().starts_with("authara_access=;")
    });
    (status, location, session)
}

async fn the_login_and_signup_pages_offer_google_with_its_csp(b: Backend) {
    let app = spawn(b).await;
    for page in [
        "/auth/login?return_to=/after",
        "/auth/signup?return_to=/after",
    ] {
        let res = app.get(page).await;
        assert_eq!(res.status(), 200);
        let csp = res.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.contains("script-src 'self' https://accounts.google.com/gsi/client"),
            "{csp}"
        );
        assert!(
            csp.contains("frame-src https://accounts.google.com/gsi/"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        let html = res.text().await.unwrap();
        assert!(
            html.contains(&format!("data-client_id=\"{CLIENT_ID}\"")),
            "{html}"
        );
        assert!(html.contains("data-ux_mode=\"redirect\""), "{html}");
        assert!(
            html.contains("/auth/oauth/google/callback?return_to=/after\""),
            "the login_uri keeps return_to: {html}"
        );
        assert!(html.contains("https://accounts.google.com/gsi/client"));
    }
    // Without Google: no button, and the strict policy.
    let plain = TestApp::spawn(b).await;
    let res = plain.get("/auth/login").await;
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!csp.contains("google"), "{csp}");
    assert!(!res.text().await.unwrap().contains("g_id_onload"));
    // Other pages keep the strict policy even with Google on.
    let res = app.get("/auth/password-reset").await;
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!csp.contains("google"), "{csp}");
}

async fn the_redirect_post_signs_in_without_our_javascript(b: Backend) {
    let app = spawn(b).await;
    let store = app.store().await;
    let id_token = token(
        &app,
        "g-rita",
        &email("rita"),
        "",
        serde_json::json!({"nonce": null}),
    );
    let (status, location, session) = redirect_post(
        &app,
        "?return_to=/welcome",
        &[("credential", &id_token), ("g_csrf_token", "gcsrf-1")],
        Some("gcsrf-1"),
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(location.as_deref(), Some("/welcome"));
    assert!(session, "the session cookies were set");
    let (identity, user) = store
        .find_identity("google", "g-rita")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.email, email("rita"));
    assert_eq!(identity.user_id, user.id);
    // A hostile return_to falls back to `/`.
    let (status, location, _) = redirect_post(
        &app,
        "?return_to=//evil.example",
        &[("credential", &id_token), ("g_csrf_token", "gcsrf-2")],
        Some("gcsrf-2"),
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(location.as_deref(), Some("/"));
}

async fn bad_callback_posts_create_no_session_and_never_answer_5xx(b: Backend) {
    let app = spawn(b).await;
    let store = app.store().await;
    let good = token(
        &app,
        "g-mal",
        &email("mal"),
        "",
        serde_json::json!({"nonce": null}),
    );
    let now = app.clock.now().unix_timestamp();
    let expired = token(
        &app,
        "g-mal",
        &email("mal"),
        "",
        serde_json::json!({"exp": now - 3600}),
    );
    let wrong_aud = token(
        &app,
        "g-mal",
        &email("mal"),
        "",
        serde_json::json!({"aud": "x"}),
    );
    let long = "a".repeat(20_000);
    // (what, the form, the g_csrf_token cookie, the status)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Option<&'a str>, u16);
    let cases: Vec<Case> = vec![
        (
            "no g_csrf_token cookie",
            vec![("credential", &good), ("g_csrf_token", "t")],
            None,
            400,
        ),
        (
            "another g_csrf_token",
            vec![("credential", &good), ("g_csrf_token", "t")],
            Some("u"),
            400,
        ),
        (
            "an empty pair",
            vec![("credential", &good), ("g_csrf_token", "")],
            Some(""),
            400,
        ),
        (
            "expired",
            vec![("credential", &expired), ("g_csrf_token", "t")],
            Some("t"),
            401,
        ),
        (
            "another audience",
            vec![("credential", &wrong_aud), ("g_csrf_token", "t")],
            Some("t"),
            401,
        ),
        (
            "not a token",
            vec![("credential", "a.b.c"), ("g_csrf_token", "t")],
            Some("t"),
            401,
        ),
        ("no credential", vec![("g_csrf_token", "t")], Some("t"), 401),
        (
            "a huge credential",
            vec![("credential", &long), ("g_csrf_token", "t")],
            Some("t"),
            401,
        ),
        // Not the redirect shape, not from our origin: the script shape's checks refuse it.
        ("no pair at all", vec![("credential", &good)], None, 403),
    ];
    for (what, fields, cookie, want) in cases {
        let (status, _, session) = redirect_post(&app, "", &fields, cookie).await;
        assert_eq!(status, want, "{what}");
        assert!(!session, "{what}: a session was started");
    }
    // Bodies that are not forms at all.
    for body in ["", "%%%", "credential=%ZZ&g_csrf_token=t"] {
        let res = reqwest::Client::new()
            .post(app.url("/auth/oauth/google/callback"))
            .header("origin", "https://accounts.google.com")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", "g_csrf_token=t")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_client_error(), "{body:?}: {}", res.status());
    }
    assert!(store
        .find_identity("google", "g-mal")
        .await
        .unwrap()
        .is_none());
    assert!(store
        .find_user_by_email(&email("mal"))
        .await
        .unwrap()
        .is_none());
    // Google off: 404, whatever is posted.
    let plain = TestApp::spawn(b).await;
    let (status, _, _) = redirect_post(
        &plain,
        "",
        &[("credential", &good), ("g_csrf_token", "t")],
        Some("t"),
    )
    .await;
    assert_eq!(status, 404);
}

async fn the_script_post_needs_our_csrf_token_and_the_nonce(b: Backend) {
    let app = spawn(b).await;
    let (_, nonce) = options(&app).await;
    let csrf = app.csrf().await;
    let id_token = token(&app, "g-sam", &email("sam"), &nonce, serde_json::json!({}));
    let post = |fields: Vec<(&'static str, String)>, with_csrf: bool| {
        let app = &app;
        let csrf = csrf.clone();
        async move {
            let mut req = app
                .client
                .post(app.url("/auth/oauth/google/callback?return_to=/app"))
                .form(&fields);
            if with_csrf {
                req = req.header("x-csrf-token", csrf);
            }
            req.send().await.unwrap()
        }
    };
    let fields = |nonce: &str| {
        vec![
            ("credential", id_token.clone()),
            ("nonce", nonce.to_owned()),
            ("flow", "login".to_owned()),
        ]
    };
    assert_eq!(
        post(fields(&nonce), false).await.status(),
        403,
        "no CSRF token"
    );
    assert_eq!(
        post(fields("other"), true).await.status(),
        401,
        "another nonce"
    );
    let res = post(fields(&nonce), true).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-authara-redirect"], "/app");
    assert!(res.headers().get("location").is_none());
    let (status, me) = app.user().await;
    assert_eq!(status, 200);
    assert_eq!(me["email"], email("sam"));
}

async fn the_redirect_post_for_an_existing_email_goes_to_the_confirm_page(b: Backend) {
    let app = spawn(b).await;
    let store = app.store().await;
    let existing = email("gina");
    let password = "correct horse battery";
    assert_eq!(app.signup(&existing, password).await.status(), 303);
    app.post_form("/auth/sessions/logout", &[]).await;
    let id_token = token(&app, "g-gina", &existing, "", json!({"nonce": null}));
    // Google's page posts from Google's origin, in the user's browser (whose cookies it has).
    app.set_cookie("g_csrf_token", "gcsrf-9");
    let res = app
        .client
        .post(app.url("/auth/oauth/google/callback?return_to=/welcome"))
        .header("origin", "https://accounts.google.com")
        .form(&[
            ("credential", id_token.as_str()),
            ("g_csrf_token", "gcsrf-9"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(app.user().await.0, 401, "no session before the proof");
    let confirm = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        confirm.starts_with("/auth/provider-links/confirm?link_id="),
        "{confirm}"
    );
    assert!(store
        .find_identity("google", "g-gina")
        .await
        .unwrap()
        .is_none());
    let link_id = confirm.split("link_id=").nth(1).unwrap().to_owned();
    let done = app
        .post_form(
            "/auth/provider-links/confirm",
            &[("link_id", &link_id), ("password", password)],
        )
        .await;
    assert_eq!(done.status(), 303);
    assert_eq!(done.headers()["location"], "/welcome");
    let (identity, user) = store
        .find_identity("google", "g-gina")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.email, existing);
    assert_eq!(identity.user_id, user.id);
}

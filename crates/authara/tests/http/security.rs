//! Attacks (CSRF itself: `csrf.rs`): open redirects, forged tokens, headers, request ids and what reaches the logs.

use crate::helpers::{claims, email, set_cookie, Backend, TestApp, TEST_KEY};
use crate::on_both;

on_both!(
    csrf_header_works_as_well_as_the_form_field,
    return_to_attacks_fall_back_to_root_through_login_and_signup,
    forged_access_tokens_are_refused,
    security_headers_are_on_every_response,
    request_ids_are_kept_when_sane_and_replaced_otherwise,
    prod_mode_sets_secure_cookies,
);

async fn csrf_header_works_as_well_as_the_form_field(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.signed_up("hdr").await;
    let csrf = app.csrf().await;
    let res = app
        .client
        .post(app.url("/auth/user/username"))
        .header("x-csrf-token", csrf)
        .form(&[("username", "via.header")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(app.user().await.1["username"], "via.header");
}

async fn return_to_attacks_fall_back_to_root_through_login_and_signup(b: Backend) {
    // One signup and one login per attack, all from one address.
    let app = TestApp::spawn_with(
        b,
        &[
            ("AUTHARA_RATE_LIMIT_SIGNUP_IP_LIMIT", "100"),
            ("AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT", "100"),
        ],
    )
    .await;
    let e = app.signed_up("redirect").await;
    let attacks = [
        "//evil.example",
        "/\\evil.example",
        "https://evil.example/",
        "/ok\r\nLocation: //evil.example",
        "/\t/evil.example",
        "/auth/login",
        "/auth/signup?x=1",
    ];
    for (i, attack) in attacks.into_iter().enumerate() {
        let password = ("password", "correct horse battery");
        assert_return_to_dropped(&app, "/auth/login", &[("email", &e), password], attack).await;
        let fresh = email(&format!("attack{i}"));
        assert_return_to_dropped(&app, "/auth/signup", &[("email", &fresh), password], attack)
            .await;
    }
    // A good one survives the round trip through the signup form and the signup link.
    let page = app
        .get("/auth/login?return_to=/app/inbox%3Fx%3D1")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"name="return_to" value="/app/inbox?x=1""#));
    assert!(page.contains("/auth/signup?return_to=/app/inbox%3Fx%3D1"));
    let page = app
        .get("/auth/signup?return_to=/app/inbox%3Fx%3D1")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"name="return_to" value="/app/inbox?x=1""#));
    assert!(page.contains("/auth/login?return_to=/app/inbox%3Fx%3D1"));
}

fn forge(header: serde_json::Value, claims: serde_json::Value, key: &[u8]) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use hmac::Mac as _;
    let mut t = URL_SAFE_NO_PAD.encode(header.to_string());
    t.push('.');
    t.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(t.as_bytes());
    t.push('.');
    t.push_str(&URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
    t
}

async fn forged_access_tokens_are_refused(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.signed_up("forge").await;
    let real = app.cookie("authara_access").unwrap();
    let (_, user) = app.user().await;
    let claims = claims(&real);
    assert_eq!(claims["sub"], user["id"]);
    let hs = serde_json::json!({"alg":"HS256","kid":"test"});
    // Control: re-signing the real claims with the real key works.
    app.set_cookie(
        "authara_access",
        &forge(hs.clone(), claims.clone(), &TEST_KEY),
    );
    assert_eq!(app.user().await.0, 200);
    let mut admin = claims.clone();
    admin["roles"] = serde_json::json!(["authara:admin"]);
    let mut other_sid = claims.clone();
    other_sid["sid"] = serde_json::json!(uuid::Uuid::new_v4());
    let forged = [
        forge(
            serde_json::json!({"alg":"none","kid":"test"}),
            claims.clone(),
            &TEST_KEY,
        ),
        forge(
            serde_json::json!({"alg":"HS512","kid":"test"}),
            claims.clone(),
            &TEST_KEY,
        ),
        forge(
            serde_json::json!({"alg":"HS256","kid":"other"}),
            claims.clone(),
            &TEST_KEY,
        ),
        forge(hs.clone(), claims.clone(), &[8; 32]),
        forge(hs.clone(), other_sid, &TEST_KEY),
        {
            use base64::Engine as _;
            let parts: Vec<&str> = real.split('.').collect();
            let evil = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(admin.to_string());
            format!("{}.{}.{}", parts[0], evil, parts[2])
        },
    ];
    for token in forged {
        app.set_cookie("authara_access", &token);
        assert_eq!(app.user().await.0, 401, "{token}");
    }
}

async fn security_headers_are_on_every_response(b: Backend) {
    let app = TestApp::spawn(b).await;
    for path in [
        "/auth/login",
        "/auth/api/v1/user",
        "/auth/health",
        "/auth/nope",
    ] {
        let res = app.get(path).await;
        let h = res.headers();
        assert_eq!(h["cache-control"], "no-store", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "same-origin");
        assert_eq!(h["x-frame-options"], "DENY");
        if h["content-type"].to_str().unwrap().starts_with("text/html") {
            let csp = h["content-security-policy"].to_str().unwrap();
            assert!(csp.contains("frame-ancestors 'none'"));
            assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
        }
    }
    let page = app.get("/auth/login").await.text().await.unwrap();
    assert!(!page.contains("<script"), "no inline script");
    assert!(!page.contains("style="), "no inline style");
}

async fn request_ids_are_kept_when_sane_and_replaced_otherwise(b: Backend) {
    let app = TestApp::spawn(b).await;
    let res = app
        .client
        .get(app.url("/auth/health"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123");
    let res = app
        .client
        .get(app.url("/auth/health"))
        .header("x-request-id", "bad id <script>")
        .send()
        .await
        .unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    let res = app.get("/auth/health").await;
    assert!(uuid::Uuid::parse_str(res.headers()["x-request-id"].to_str().unwrap()).is_ok());
}

async fn prod_mode_sets_secure_cookies(b: Backend) {
    let app = TestApp::spawn_with(
        b,
        &[
            ("APP_ENV", "prod"),
            ("PUBLIC_URL", "https://app.example.com"),
        ],
    )
    .await;
    let res = app.get("/auth/login").await;
    assert!(set_cookie(res.headers(), "authara_csrf")
        .unwrap()
        .ends_with("; Secure"));
    let res = app
        .signup_in_another_browser(&email("prod"), "correct horse")
        .await;
    assert_eq!(res.status(), 303);
    for name in ["authara_access", "authara_refresh"] {
        let c = set_cookie(res.headers(), name).unwrap();
        assert!(c.ends_with("; HttpOnly; SameSite=Lax; Secure"), "{c}");
    }
}

/// Signed out, posts `fields` with `return_to=attack` to the form at `path` and expects a 303
/// to `/`; then, signed out again, the page at `path` never echoes the attack into its form.
async fn assert_return_to_dropped(
    app: &TestApp,
    path: &str,
    fields: &[(&str, &str)],
    attack: &str,
) {
    app.post_api("/auth/api/v1/sessions/logout").await;
    let mut fields = fields.to_vec();
    fields.push(("return_to", attack));
    let res = app.post_form(path, &fields).await;
    assert_eq!(res.status(), 303, "{path} {attack:?}");
    assert_eq!(res.headers()["location"], "/", "{path} {attack:?}");
    app.post_api("/auth/api/v1/sessions/logout").await;
    let page = app
        .client
        .get(app.url(path))
        .query(&[("return_to", attack)])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains(r#"name="return_to""#), "{path} {attack:?}");
}

//! The JSON API for single-page and mobile apps: `POST /auth/api/v1/login`,
//! `POST /auth/api/v1/signup/direct`, `POST /auth/api/v1/tokens/refresh`, and bearer tokens.

use crate::helpers::{claims, email, set_cookie, set_cookies, Backend, TestApp};
use crate::on_both;
use authara_core::clock::Clock as _;
use authara_core::store::Effects;
use serde_json::{json, Value};
use time::Duration;

on_both!(
    json_login_answers_the_auth_session_and_sets_both_cookies,
    json_login_refuses_bad_input_with_invalid_request_and_changes_nothing,
    json_login_says_the_same_for_an_unknown_email_and_a_wrong_password,
    json_login_tells_disabled_and_forbidden_audiences_apart_only_after_the_password,
    json_login_gives_admin_tokens_to_admins,
    json_login_is_rate_limited_per_ip_and_per_email,
    json_login_needs_the_csrf_token,
    json_signup_creates_the_account_and_its_session,
    json_signup_refuses_what_the_html_signup_refuses,
    json_signup_is_rate_limited,
    mobile_refresh_rotates_through_the_body_and_touches_no_cookie,
    mobile_refresh_detects_reuse_like_the_cookie_refresh,
    mobile_refresh_refuses_bad_bodies,
    bearer_tokens_authenticate_the_json_api,
    a_bearer_request_without_cookies_needs_no_csrf_token,
    a_bearer_request_with_cookies_or_a_forged_token_keeps_the_csrf_check,
    a_mobile_client_manages_its_sessions_and_password_with_its_bearer_token,
);

const PASSWORD: &str = "correct horse battery";

/// `POST` a JSON body with the jar's cookies and the CSRF header.
async fn post_json(app: &TestApp, path: &str, body: &Value) -> reqwest::Response {
    let csrf = app.csrf().await;
    app.client
        .post(app.url(path))
        .header("x-csrf-token", csrf)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// `POST` raw bytes with the CSRF header and the given content type.
async fn post_raw(app: &TestApp, path: &str, content_type: &str, body: &[u8]) -> reqwest::Response {
    let csrf = app.csrf().await;
    app.client
        .post(app.url(path))
        .header("x-csrf-token", csrf)
        .header("content-type", content_type)
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

async fn error_of(res: reqwest::Response) -> (u16, String, String) {
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    (
        status,
        body["error"]["code"].as_str().unwrap().to_owned(),
        body["error"]["message"].as_str().unwrap().to_owned(),
    )
}

/// Signs up `local` through the HTML form, then forgets the session cookies (keeping the CSRF
/// cookie), as a SPA that has not signed in yet.
async fn account(app: &TestApp, local: &str) -> String {
    let e = app.signed_up(local).await;
    app.drop_cookie("authara_access");
    app.drop_cookie("authara_refresh");
    e
}

fn cookie_value(set_cookie: &str) -> &str {
    let first = set_cookie.split(';').next().unwrap();
    first.split_once('=').unwrap().1
}

async fn json_login_answers_the_auth_session_and_sets_both_cookies(b: Backend) {
    let app = TestApp::spawn(b).await;
    let e = account(&app, "spa").await;
    let res = post_json(
        &app,
        "/auth/api/v1/login",
        &json!({"email": e.to_uppercase(), "password": PASSWORD}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let access = set_cookie(res.headers(), "authara_access").unwrap();
    let refresh = set_cookie(res.headers(), "authara_refresh").unwrap();
    assert!(refresh.contains("HttpOnly"));
    let body: Value = res.json().await.unwrap();
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(keys, ["access_token", "refresh_token", "user"]);
    assert_eq!(body["access_token"], cookie_value(&access));
    assert_eq!(body["refresh_token"], cookie_value(&refresh));
    let user = &body["user"];
    assert_eq!(user["email"], e);
    assert_eq!(user["disabled"], false);
    assert!(user["username"].as_str().unwrap().starts_with("spa-"));
    assert!(user["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(user.get("roles").is_none(), "AuthUser has no roles");
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["aud"],
        json!(["app"])
    );
    // The cookies work as the HTML login's do.
    let (status, me) = app.user().await;
    assert_eq!(status, 200);
    assert_eq!(me["id"], user["id"]);
    // `identifier` is another name for `email` (newer clients send it).
    app.drop_cookie("authara_refresh");
    let res = post_json(
        &app,
        "/auth/api/v1/login?audience=app",
        &json!({"identifier": e, "password": PASSWORD}),
    )
    .await;
    assert_eq!(res.status(), 200);
}

async fn json_login_refuses_bad_input_with_invalid_request_and_changes_nothing(b: Backend) {
    let app = TestApp::spawn(b).await;
    let e = account(&app, "badinput").await;
    let path = "/auth/api/v1/login";
    for body in [
        json!({"email": "", "password": PASSWORD}),
        json!({"email": e, "password": ""}),
        json!({"email": e, "password": PASSWORD, "remember": true}),
        json!({"email": e}),
        json!({"email": e, "password": 12345678}),
        json!([e, PASSWORD]),
        json!(null),
    ] {
        let res = post_json(&app, path, &body).await;
        let cookies = set_cookies(res.headers());
        assert!(
            !cookies.iter().any(|c| c.starts_with("authara_access")),
            "{body} {cookies:?}"
        );
        let (status, code, _) = error_of(res).await;
        assert_eq!((status, code.as_str()), (400, "invalid_request"), "{body}");
    }
    let good = serde_json::to_vec(&json!({"email": e, "password": PASSWORD})).unwrap();
    for (ct, body) in [
        ("text/plain", &good[..]),
        ("application/x-www-form-urlencoded", b"email=a&password=b"),
        ("application/json", b"{\"email\":"),
        ("application/json", b"\xff\xfe"),
    ] {
        let (status, code, _) = error_of(post_raw(&app, path, ct, body).await).await;
        assert_eq!((status, code.as_str()), (400, "invalid_request"), "{ct}");
    }
    for q in [
        "audience=bogus",
        "audience=",
        "audience=app&audience=app",
        "audience=operator",
    ] {
        let res = post_json(
            &app,
            &format!("{path}?{q}"),
            &json!({"email": e, "password": PASSWORD}),
        )
        .await;
        let (status, code, _) = error_of(res).await;
        assert_eq!((status, code.as_str()), (400, "invalid_request"), "{q}");
    }
    // Nothing above signed anyone in.
    assert_eq!(app.user().await.0, 401);
}

async fn json_login_says_the_same_for_an_unknown_email_and_a_wrong_password(b: Backend) {
    let app = TestApp::spawn(b).await;
    let e = account(&app, "enum").await;
    let wrong = post_json(
        &app,
        "/auth/api/v1/login",
        &json!({"email": e, "password": "not the password"}),
    )
    .await;
    let wrong_headers = wrong.headers().clone();
    let wrong = error_of(wrong).await;
    let unknown = post_json(
        &app,
        "/auth/api/v1/login",
        &json!({"email": email("nobody"), "password": "not the password"}),
    )
    .await;
    let unknown_headers = unknown.headers().clone();
    let unknown = error_of(unknown).await;
    assert_eq!(wrong, unknown);
    assert_eq!(
        wrong,
        (
            401,
            "unauthorized".to_owned(),
            "Invalid email or password.".to_owned()
        )
    );
    assert_eq!(set_cookies(&wrong_headers), set_cookies(&unknown_headers));
    // A wrong password with the admin audience is still just a wrong password.
    let res = post_json(
        &app,
        "/auth/api/v1/login?audience=admin",
        &json!({"email": e, "password": "not the password"}),
    )
    .await;
    assert_eq!(error_of(res).await, wrong);
}

async fn json_login_tells_disabled_and_forbidden_audiences_apart_only_after_the_password(
    b: Backend,
) {
    let app = TestApp::spawn(b).await;
    let e = account(&app, "plain").await;
    let forbidden = (
        403,
        "forbidden".to_owned(),
        "Account cannot access requested audience.".to_owned(),
    );
    // The right password, the admin audience, no admin: 403, no cookies, no session.
    let res = post_json(
        &app,
        "/auth/api/v1/login?audience=admin",
        &json!({"email": e, "password": PASSWORD}),
    )
    .await;
    assert!(set_cookie(res.headers(), "authara_access").is_none());
    assert_eq!(error_of(res).await, forbidden);
    let store = authara::server::open_store(&app.config).await.unwrap();
    let user = store.find_user_by_email(&e).await.unwrap().unwrap();
    let now = app.clock.now();
    // The signup's session (its cookies were dropped, not revoked) is the only one.
    let live = store.list_live_sessions(user.id, now).await.unwrap();
    assert_eq!(live.len(), 1, "the refused login started no session");

    store
        .set_disabled(user.id, true, now, Effects::none())
        .await
        .unwrap();
    let res = post_json(
        &app,
        "/auth/api/v1/login",
        &json!({"email": e, "password": PASSWORD}),
    )
    .await;
    assert!(set_cookie(res.headers(), "authara_access").is_none());
    assert_eq!(error_of(res).await, forbidden);
    // Disabled, wrong password: the wrong-password answer.
    let res = post_json(
        &app,
        "/auth/api/v1/login",
        &json!({"email": e, "password": "not the password"}),
    )
    .await;
    assert_eq!(error_of(res).await.0, 401);
}

async fn json_login_gives_admin_tokens_to_admins(b: Backend) {
    let app = TestApp::spawn(b).await;
    let e = account(&app, "boss").await;
    let store = authara::server::open_store(&app.config).await.unwrap();
    store
        .set_admin_by_email(&e, true, app.clock.now(), Effects::none())
        .await
        .unwrap();
    let res = post_json(
        &app,
        "/auth/api/v1/login?audience=admin",
        &json!({"email": e, "password": PASSWORD}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["aud"], json!(["admin"]));
    assert_eq!(c["roles"], json!(["authara:admin"]));
}

async fn json_login_is_rate_limited_per_ip_and_per_email(b: Backend) {
    let app = TestApp::spawn_with(
        b,
        &[
            ("AUTHARA_RATE_LIMIT_LOGIN_EMAIL_LIMIT", "2"),
            ("AUTHARA_RATE_LIMIT_LOGIN_EMAIL_WINDOW", "1h"),
        ],
    )
    .await;
    let e = account(&app, "limited").await;
    let login = |password: &'static str| {
        let e = e.clone();
        let app = &app;
        async move {
            post_json(
                app,
                "/auth/api/v1/login",
                &json!({"email": e, "password": password}),
            )
            .await
        }
    };
    // Successful logins give their per-email attempt back.
    for _ in 0..3 {
        assert_eq!(login(PASSWORD).await.status(), 200);
    }
    for _ in 0..2 {
        assert_eq!(login("wrong password").await.status(), 401);
    }
    let res = login(PASSWORD).await;
    let after: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(after >= 1);
    assert_eq!(error_of(res).await.1, "rate_limited");

    let app = TestApp::spawn_with(
        b,
        &[
            ("AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT", "2"),
            ("AUTHARA_RATE_LIMIT_LOGIN_IP_WINDOW", "1m"),
        ],
    )
    .await;
    for n in 0..3 {
        let res = post_json(
            &app,
            "/auth/api/v1/login",
            &json!({"email": email(&format!("x{n}")), "password": "whatever it is"}),
        )
        .await;
        let want = if n < 2 { 401 } else { 429 };
        assert_eq!(res.status(), want);
    }
}

async fn json_login_needs_the_csrf_token(b: Backend) {
    let app = TestApp::spawn(b).await;
    let e = account(&app, "csrf").await;
    let res = app
        .client
        .post(app.url("/auth/api/v1/login"))
        .json(&json!({"email": e, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert!(set_cookie(res.headers(), "authara_access").is_none());
    assert_eq!(error_of(res).await.1, "csrf_invalid");
    // From another origin, even with the token.
    let res = app
        .client
        .post(app.url("/auth/api/v1/login"))
        .header("x-csrf-token", app.csrf().await)
        .header("origin", "https://evil.example")
        .json(&json!({"email": e, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "csrf_invalid");
}

async fn json_signup_creates_the_account_and_its_session(b: Backend) {
    let app = TestApp::spawn(b).await;
    let e = email("newbie");
    let res = post_json(
        &app,
        "/auth/api/v1/signup/direct?audience=app",
        &json!({"email": format!("  {}  ", e.to_uppercase()), "password": PASSWORD}),
    )
    .await;
    assert_eq!(res.status(), 201);
    let access = set_cookie(res.headers(), "authara_access").unwrap();
    assert!(set_cookie(res.headers(), "authara_refresh").is_some());
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["email"], e);
    assert_eq!(body["access_token"], cookie_value(&access));
    assert!(body["refresh_token"].as_str().unwrap().len() >= 43);
    let (status, me) = app.user().await;
    assert_eq!(status, 200);
    assert_eq!(me["email"], e);
    // And the password works at the HTML login.
    app.drop_cookie("authara_access");
    app.drop_cookie("authara_refresh");
    assert_eq!(app.login(&e, PASSWORD).await.status(), 303);
}

async fn json_signup_refuses_what_the_html_signup_refuses(b: Backend) {
    let app = TestApp::spawn(b).await;
    let taken = account(&app, "taken").await;
    let path = "/auth/api/v1/signup/direct";
    for (body, message) in [
        (
            json!({"email": taken, "password": PASSWORD}),
            Some("Could not create account. If you already have one, sign in instead."),
        ),
        (json!({"email": "not-an-email", "password": PASSWORD}), None),
        (
            json!({"email": email("short"), "password": "1234567"}),
            Some("Password must be at least 8 characters."),
        ),
        (
            json!({"email": email("long"), "password": "a".repeat(129)}),
            Some("Password must be at most 128 characters."),
        ),
        (
            json!({"email": email("ctl"), "password": "pass\u{7}word!"}),
            Some("Password must not contain control characters."),
        ),
        (
            json!({"email": email("inv"), "password": PASSWORD, "invitation_code": "abc"}),
            Some("Invalid invitation code."),
        ),
        (
            json!({"email": email("extra"), "password": PASSWORD, "username": "x"}),
            None,
        ),
        (json!({"email": email("nopw")}), None),
    ] {
        let res = post_json(&app, path, &body).await;
        assert!(set_cookie(res.headers(), "authara_access").is_none());
        let (status, code, got) = error_of(res).await;
        assert_eq!((status, code.as_str()), (400, "invalid_request"), "{body}");
        if let Some(message) = message {
            assert_eq!(got, message, "{body}");
        }
    }
    for q in ["audience=admin", "audience=", "audience=app&audience=app"] {
        let res = post_json(
            &app,
            &format!("{path}?{q}"),
            &json!({"email": email("aud"), "password": PASSWORD}),
        )
        .await;
        assert_eq!(error_of(res).await.0, 400, "{q}");
    }
    // None of these created an account.
    let store = authara::server::open_store(&app.config).await.unwrap();
    for local in ["short", "long", "ctl", "inv", "extra", "nopw", "aud"] {
        assert!(
            store
                .find_user_by_email(&email(local))
                .await
                .unwrap()
                .is_none(),
            "{local}"
        );
    }
}

async fn json_signup_is_rate_limited(b: Backend) {
    let app = TestApp::spawn_with(
        b,
        &[
            ("AUTHARA_RATE_LIMIT_SIGNUP_IP_LIMIT", "2"),
            ("AUTHARA_RATE_LIMIT_SIGNUP_IP_WINDOW", "1h"),
        ],
    )
    .await;
    for n in 0..3 {
        let res = post_json(
            &app,
            "/auth/api/v1/signup/direct",
            &json!({"email": email(&format!("s{n}")), "password": PASSWORD}),
        )
        .await;
        if n < 2 {
            assert_eq!(res.status(), 201);
        } else {
            assert!(res.headers().contains_key("retry-after"));
            assert_eq!(error_of(res).await.1, "rate_limited");
        }
    }
    let store = authara::server::open_store(&app.config).await.unwrap();
    assert!(store
        .find_user_by_email(&email("s2"))
        .await
        .unwrap()
        .is_none());
}

/// A mobile client: no cookie jar. It logs in through the JSON API (fetching a CSRF token
/// first, as upstream's login needs one) and keeps the tokens from the body.
async fn mobile_login(app: &TestApp, e: &str) -> (String, String) {
    let mobile = reqwest::Client::new();
    let res = mobile
        .get(app.url("/auth/api/v1/csrf"))
        .send()
        .await
        .unwrap();
    let csrf: Value = res.json().await.unwrap();
    let csrf = csrf["csrf_token"].as_str().unwrap().to_owned();
    let res = mobile
        .post(app.url("/auth/api/v1/login"))
        .header("x-csrf-token", &csrf)
        .header("cookie", format!("authara_csrf={csrf}"))
        .json(&json!({"email": e, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// `POST /auth/api/v1/tokens/refresh` from a cookie-less client, without a CSRF token.
async fn mobile_refresh(app: &TestApp, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/auth/api/v1/tokens/refresh"))
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn bearer_user(app: &TestApp, access: &str) -> u16 {
    reqwest::Client::new()
        .get(app.url("/auth/api/v1/user"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn mobile_refresh_rotates_through_the_body_and_touches_no_cookie(b: Backend) {
    let app = TestApp::spawn_with(b, &[("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", "30m")]).await;
    let e = account(&app, "mobile").await;
    let (access, refresh) = mobile_login(&app, &e).await;
    assert_eq!(bearer_user(&app, &access).await, 200);

    // Young token: not rotated; the same token comes back.
    let res = mobile_refresh(&app, &json!({"refresh_token": refresh})).await;
    assert_eq!(res.status(), 200);
    assert!(set_cookies(res.headers()).is_empty(), "no cookie is set");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body.as_object().unwrap().len(), 2);
    assert_eq!(body["refresh_token"], refresh.as_str());
    assert_eq!(
        bearer_user(&app, body["access_token"].as_str().unwrap()).await,
        200
    );

    // Old token: rotated.
    app.clock.advance(Duration::minutes(31));
    let res = mobile_refresh(&app, &json!({"refresh_token": refresh, "audience": "app"})).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let newer = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(newer, refresh);
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["aud"], json!(["app"]));
    // The newer one works; cookies sent along are ignored (neither read nor changed).
    let res = reqwest::Client::new()
        .post(app.url("/auth/api/v1/tokens/refresh"))
        .header("cookie", "authara_refresh=bogus; authara_access=bogus")
        .json(&json!({"refresh_token": newer}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(set_cookies(res.headers()).is_empty());
    // `admin` for a non-admin: 401, and the token still works afterwards.
    let res = mobile_refresh(&app, &json!({"refresh_token": newer, "audience": "admin"})).await;
    assert_eq!(error_of(res).await.1, "unauthorized");
    assert_eq!(
        mobile_refresh(&app, &json!({"refresh_token": newer}))
            .await
            .status(),
        200
    );
}

async fn mobile_refresh_detects_reuse_like_the_cookie_refresh(b: Backend) {
    let app = TestApp::spawn_with(
        b,
        &[
            ("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", "always"),
            ("AUTHARA_REFRESH_TOKEN_REUSE_GRACE", "10s"),
        ],
    )
    .await;
    let e = account(&app, "reuse").await;
    let (_, first) = mobile_login(&app, &e).await;
    let res = mobile_refresh(&app, &json!({"refresh_token": first})).await;
    let body: Value = res.json().await.unwrap();
    let second = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first);

    // Within the grace window the consumed token still gets an access token, and the
    // presented token back (the client keeps the newer one it already has).
    app.clock.advance(Duration::seconds(5));
    let res = mobile_refresh(&app, &json!({"refresh_token": first})).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["refresh_token"], first.as_str());

    // After it: reuse. The whole session is revoked, the newer token with it.
    app.clock.advance(Duration::seconds(10));
    let res = mobile_refresh(&app, &json!({"refresh_token": first})).await;
    assert_eq!(error_of(res).await.0, 401);
    let res = mobile_refresh(&app, &json!({"refresh_token": second})).await;
    assert_eq!(error_of(res).await.0, 401);
}

async fn mobile_refresh_refuses_bad_bodies(b: Backend) {
    let app = TestApp::spawn(b).await;
    for body in [
        json!({"refresh_token": ""}),
        json!({}),
        json!({"refresh_token": "x", "audience": "operator"}),
        json!({"refresh_token": "x", "audience": ""}),
        json!({"refresh_token": "x", "extra": 1}),
        json!({"refresh_token": 5}),
        json!("x"),
    ] {
        let (status, code, _) = error_of(mobile_refresh(&app, &body).await).await;
        assert_eq!((status, code.as_str()), (400, "invalid_request"), "{body}");
    }
    for token in ["bogus", &"a".repeat(300)] {
        let res = mobile_refresh(&app, &json!({"refresh_token": token})).await;
        assert!(set_cookies(res.headers()).is_empty());
        assert_eq!(
            error_of(res).await,
            (
                401,
                "unauthorized".into(),
                "Authentication required.".into()
            )
        );
    }
    let res = reqwest::Client::new()
        .post(app.url("/auth/api/v1/tokens/refresh"))
        .header("content-type", "text/plain")
        .body(r#"{"refresh_token":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.0, 400);
}

async fn bearer_tokens_authenticate_the_json_api(b: Backend) {
    let app = TestApp::spawn(b).await;
    let e = account(&app, "bearer").await;
    let (access, _) = mobile_login(&app, &e).await;
    let get = |auth: Option<String>, cookie: Option<String>| {
        let mut req = reqwest::Client::new().get(app.url("/auth/api/v1/user"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(get(Some(format!("Bearer {access}")), None).await, 200);
    assert_eq!(get(Some(format!("bearer {access}")), None).await, 200);
    // The header wins over the cookie, in both directions: a bad header is never "absent".
    let cookie = Some(format!("authara_access={access}"));
    assert_eq!(get(Some("Bearer bogus".into()), cookie.clone()).await, 401);
    assert_eq!(
        get(Some(format!("Basic {access}")), cookie.clone()).await,
        401
    );
    assert_eq!(get(Some("Bearer ".into()), cookie.clone()).await, 401);
    assert_eq!(get(None, cookie).await, 200);
    // A forged token: right claims, wrong key.
    let forged = {
        let mut parts: Vec<String> = access.split('.').map(str::to_owned).collect();
        parts[2] = "A".repeat(parts[2].len());
        parts.join(".")
    };
    assert_eq!(get(Some(format!("Bearer {forged}")), None).await, 401);
    // Two Authorization headers: refused.
    let res = reqwest::Client::new()
        .get(app.url("/auth/api/v1/user"))
        .header("authorization", format!("Bearer {access}"))
        .header("authorization", format!("Bearer {access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // Expired: refused.
    app.clock.advance(Duration::hours(2));
    assert_eq!(get(Some(format!("Bearer {access}")), None).await, 401);
}

async fn a_bearer_request_without_cookies_needs_no_csrf_token(b: Backend) {
    let app = TestApp::spawn(b).await;
    let e = account(&app, "nocsrf").await;
    let (access, refresh) = mobile_login(&app, &e).await;
    // Logout with the bearer token alone: no CSRF token, and the session is revoked.
    let res = reqwest::Client::new()
        .post(app.url("/auth/api/v1/sessions/logout"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(bearer_user(&app, &access).await, 401);
    assert_eq!(
        mobile_refresh(&app, &json!({"refresh_token": refresh}))
            .await
            .status(),
        401
    );
}

async fn a_bearer_request_with_cookies_or_a_forged_token_keeps_the_csrf_check(b: Backend) {
    let app = TestApp::spawn(b).await;
    let e = account(&app, "keeps").await;
    let (access, _) = mobile_login(&app, &e).await;
    let logout = |auth: String, cookie: Option<&'static str>| {
        let mut req = reqwest::Client::new()
            .post(app.url("/auth/api/v1/sessions/logout"))
            .header("authorization", auth);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        async move { req.send().await.unwrap() }
    };
    // Any cookie at all: the browser rules apply.
    let res = logout(format!("Bearer {access}"), Some("authara_csrf=abc")).await;
    assert_eq!(error_of(res).await.1, "csrf_invalid");
    // A token that does not verify is no bearer authentication.
    let res = logout("Bearer not.a.token".into(), None).await;
    assert_eq!(error_of(res).await.1, "csrf_invalid");
    // HTML routes keep their CSRF check whatever the headers.
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url("/auth/sessions/logout"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // The session is still live after all of that.
    assert_eq!(bearer_user(&app, &access).await, 200);
}

async fn a_mobile_client_manages_its_sessions_and_password_with_its_bearer_token(b: Backend) {
    let app = TestApp::spawn(b).await;
    let e = account(&app, "phone").await;
    let (phone, _) = mobile_login(&app, &e).await;
    let (tablet, _) = mobile_login(&app, &e).await;
    let (laptop, laptop_refresh) = mobile_login(&app, &e).await;
    let mobile = reqwest::Client::new();
    let sid = |t: &str| claims(t)["sid"].as_str().unwrap().to_owned();

    // No cookie, no CSRF token: the bearer token alone.
    let res = mobile
        .get(app.url("/auth/api/v1/sessions"))
        .bearer_auth(&phone)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let list: Value = res.json().await.unwrap();
    let sessions = list["sessions"].as_array().unwrap();
    // The HTML signup's session and the three logins.
    assert_eq!(sessions.len(), 4);
    let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], sid(&phone).as_str());

    let res = mobile
        .delete(app.url(&format!("/auth/api/v1/sessions/{}", sid(&tablet))))
        .bearer_auth(&phone)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(bearer_user(&app, &tablet).await, 401);

    let res = mobile
        .put(app.url("/auth/api/v1/users/password"))
        .bearer_auth(&phone)
        .json(&json!({"current_password": PASSWORD, "password": "a brand new passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    // Everything else is signed out; the phone stays in.
    assert_eq!(bearer_user(&app, &laptop).await, 401);
    assert_eq!(
        mobile_refresh(&app, &json!({"refresh_token": laptop_refresh}))
            .await
            .status(),
        401
    );
    assert_eq!(bearer_user(&app, &phone).await, 200);

    let res = mobile
        .post(app.url("/auth/api/v1/sessions/revoke-other"))
        .bearer_auth(&phone)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["revoked"], 0);

    // Without the bearer (or with a forged one) and without cookies, the CSRF check applies
    // before anything else.
    let res = mobile
        .post(app.url("/auth/api/v1/sessions/revoke-other"))
        .bearer_auth("forged.token.here")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "csrf_invalid");
    let res = mobile
        .get(app.url("/auth/api/v1/sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.1, "unauthorized");
}

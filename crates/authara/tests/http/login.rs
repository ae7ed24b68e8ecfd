//! Signup, login, logout through the HTML forms.

use crate::helpers::{email, set_cookie, Backend, TestApp};
use crate::on_both;

on_both!(
    signup_sets_session_cookies_and_redirects_to_return_to,
    signup_rejects_bad_input_with_422_naming_the_problem,
    duplicate_signup_does_not_say_the_email_exists,
    login_page_has_the_form_and_sets_csrf,
    login_with_unknown_email_gives_the_same_422_as_a_wrong_password,
    login_with_empty_fields_is_400,
    login_trims_and_lowercases_the_email,
    signed_in_visitor_is_redirected_away_from_login,
    htmx_requests_get_200_with_hx_redirect,
    logout_clears_cookies_and_revokes_the_session,
    disabled_account_gets_403_only_with_the_right_password,
    legacy_hashes_verify_and_are_rehashed_on_login,
    password_less_account_gives_the_same_422,
);

async fn signup_sets_session_cookies_and_redirects_to_return_to(b: Backend) {
    let app = TestApp::spawn(b).await;
    let e = email("ada");
    let res = app
        .post_form(
            "/auth/signup?return_to=/dashboard",
            &[("email", &e), ("password", "correct horse")],
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/dashboard");
    assert_eq!(res.headers()["hx-redirect"], "/dashboard");
    let access = set_cookie(res.headers(), "authara_access").unwrap();
    assert!(
        access.contains("Max-Age=600; Path=/; HttpOnly; SameSite=Lax"),
        "{access}"
    );
    assert!(!access.contains("Secure"));
    let refresh = set_cookie(res.headers(), "authara_refresh").unwrap();
    assert!(
        refresh.contains("Max-Age=1209600; Path=/; HttpOnly; SameSite=Lax"),
        "{refresh}"
    );
    let (status, user) = app.user().await;
    assert_eq!(status, 200);
    assert_eq!(user["email"], e.as_str());
    let username = user["username"].as_str().unwrap();
    let (base, digits) = username.rsplit_once('-').unwrap();
    assert_eq!(base, "ada");
    assert_eq!(digits.len(), 5);
}

async fn signup_rejects_bad_input_with_422_naming_the_problem(b: Backend) {
    let app = TestApp::spawn(b).await;
    let long = format!("{}{}", "a".repeat(250), email(""));
    let cases = [
        ("no-at-sign", "correct horse", "Email address is not valid."),
        (long.as_str(), "correct horse", "at most 254"),
        ("", "correct horse", "Email is required."),
        (&email("bob"), "short", "at least 8"),
        (&email("bob"), &"x".repeat(129), "at most 128"),
    ];
    for (e, p, msg) in cases {
        let res = app.signup(e, p).await;
        assert_eq!(res.status(), 422, "{e}");
        assert!(set_cookie(res.headers(), "authara_access").is_none());
        let body = res.text().await.unwrap();
        assert!(body.contains(msg), "{msg} not in {body}");
    }
    assert_eq!(app.user().await.0, 401);
}

async fn duplicate_signup_does_not_say_the_email_exists(b: Backend) {
    let app = TestApp::spawn(b).await;
    let e = app.signed_up("dup").await;
    let res = app
        .signup_in_another_browser(&e.to_uppercase(), "another password")
        .await;
    assert_eq!(res.status(), 422);
    let body = res.text().await.unwrap();
    assert!(body.contains("Could not create account"));
    assert!(!body.to_lowercase().contains("exist"));
    assert!(!body.to_lowercase().contains("already registered"));
}

async fn login_page_has_the_form_and_sets_csrf(b: Backend) {
    let app = TestApp::spawn(b).await;
    let res = app.get("/auth/login?return_to=/app/x").await;
    assert_eq!(res.status(), 200);
    let csrf = set_cookie(res.headers(), "authara_csrf").unwrap();
    assert!(
        csrf.contains("Max-Age=2592000; Path=/; SameSite=Lax"),
        "{csrf}"
    );
    assert!(!csrf.contains("HttpOnly"));
    let value = app.cookie("authara_csrf").unwrap();
    assert_eq!(value.len(), 43);
    let body = res.text().await.unwrap();
    assert!(body.contains(r#"name="email""#));
    assert!(body.contains(r#"name="password""#));
    assert!(body.contains(&format!(r#"name="csrf_token" value="{value}""#)));
    assert!(body.contains(r#"name="return_to" value="/app/x""#));
    // A second visit keeps the cookie.
    let res = app.get("/auth/login").await;
    assert!(set_cookie(res.headers(), "authara_csrf").is_none());
    assert!(!res.text().await.unwrap().contains("return_to"));
}

async fn login_with_unknown_email_gives_the_same_422_as_a_wrong_password(b: Backend) {
    let app = TestApp::spawn(b).await;
    let e = app.signed_up("known").await;
    app.post_api("/auth/api/v1/sessions/logout").await;
    let wrong = app.login(&e, "wrong password").await;
    let unknown = app.login(&email("nobody"), "wrong password").await;
    assert_eq!(wrong.status(), 422);
    assert_eq!(unknown.status(), 422);
    let strip = |s: String, e: &str| s.replace(e, "EMAIL");
    let wrong_body = strip(wrong.text().await.unwrap(), &e);
    let unknown_body = strip(unknown.text().await.unwrap(), &email("nobody"));
    assert_eq!(wrong_body, unknown_body);
    assert!(wrong_body.contains("Invalid email or password."));
    // An address longer than any account can have gets the same answer.
    let huge = format!("{}{}", "a".repeat(20_000), email(""));
    let res = app.login(&huge, "wrong password").await;
    assert_eq!(res.status(), 422);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("Invalid email or password."));
}

async fn login_with_empty_fields_is_400(b: Backend) {
    let app = TestApp::spawn(b).await;
    assert_eq!(app.login("", "x").await.status(), 400);
    assert_eq!(app.login(&email("a"), "").await.status(), 400);
    assert_eq!(app.post_form("/auth/login", &[]).await.status(), 400);
}

async fn login_trims_and_lowercases_the_email(b: Backend) {
    let app = TestApp::spawn(b).await;
    let e = app.signed_up("mixed").await;
    app.post_api("/auth/api/v1/sessions/logout").await;
    assert_eq!(app.user().await.0, 401);
    let res = app
        .login(
            &format!("  {}  ", e.to_uppercase()),
            "correct horse battery",
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/");
    assert_eq!(app.user().await.0, 200);
}

async fn signed_in_visitor_is_redirected_away_from_login(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.signed_up("again").await;
    let res = app.get("/auth/login?return_to=/home").await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/home");
}

async fn htmx_requests_get_200_with_hx_redirect(b: Backend) {
    let app = TestApp::spawn(b).await;
    let csrf = app.csrf().await;
    let res = app
        .client
        .post(app.url("/auth/signup"))
        .header("hx-request", "true")
        .form(&[
            ("email", email("hx").as_str()),
            ("password", "correct horse"),
            ("csrf_token", &csrf),
            ("return_to", "/next"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["hx-redirect"], "/next");
    assert!(res.headers().get("location").is_none());
}

async fn logout_clears_cookies_and_revokes_the_session(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.signed_up("bye").await;
    let access = app.cookie("authara_access").unwrap();
    let res = app
        .post_form("/auth/sessions/logout", &[("return_to", "/goodbye")])
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/goodbye");
    for name in ["authara_access", "authara_refresh"] {
        let c = set_cookie(res.headers(), name).unwrap();
        assert!(
            c.starts_with(&format!("{name}=;")) && c.contains("Max-Age=0") && c.contains("Path=/"),
            "{c}"
        );
    }
    assert!(app.cookie("authara_access").is_none());
    // The old access token is refused at once, although it has not expired.
    app.set_cookie("authara_access", &access);
    assert_eq!(app.user().await.0, 401);
}

async fn disabled_account_gets_403_only_with_the_right_password(b: Backend) {
    // The test disables the user behind the server's back, as another process would: without
    // the session cache, so that the refusal is immediate on every backend.
    let app = TestApp::spawn_with(b, &[("AUTHARA_SESSION_CACHE_SECONDS", "0")]).await;
    let e = app.signed_up("off").await;
    let (_, user) = app.user().await;
    let id = user["id"].as_str().unwrap().parse().unwrap();
    let store = authara::server::open_store(&app.config).await.unwrap();
    store
        .set_disabled(
            id,
            true,
            authara_core::clock::Clock::now(&*app.clock),
            authara_core::store::Effects::none(),
        )
        .await
        .unwrap();
    assert_eq!(
        app.user().await.0,
        401,
        "disabling revokes sessions at once"
    );
    assert_eq!(app.login(&e, "wrong password").await.status(), 422);
    let res = app.login(&e, "correct horse battery").await;
    assert_eq!(res.status(), 403);
    assert!(set_cookie(res.headers(), "authara_access").is_none());
}

async fn legacy_hashes_verify_and_are_rehashed_on_login(b: Backend) {
    let app = TestApp::spawn(b).await;
    let store = authara::server::open_store(&app.config).await.unwrap();
    let e = email("legacy");
    let legacy = authara_core::auth::password::encode_legacy(
        "old secret 123",
        b"saltsaltsaltsalt",
        1,
        64,
        1,
    )
    .unwrap();
    assert!(legacy.starts_with("$argon2id$v=1$t=1$m=64$p=1$"));
    let id = uuid::Uuid::new_v4();
    store
        .create_user(
            authara_core::store::NewUser {
                id,
                email: e.clone(),
                username: "legacy-user".into(),
                password_hash: Some(legacy.clone()),
                created_at: authara_core::clock::Clock::now(&*app.clock),
                organization: crate::helpers::initial_org("legacy-user"),
            },
            authara_core::store::Effects::none(),
        )
        .await
        .unwrap();
    assert_eq!(app.login(&e, "not it").await.status(), 422);
    let stored = store
        .find_user_by_id(id)
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    assert_eq!(
        stored.as_deref(),
        Some(legacy.as_str()),
        "a failed login changes nothing"
    );
    assert_eq!(app.login(&e, "old secret 123").await.status(), 303);
    let stored = store
        .find_user_by_id(id)
        .await
        .unwrap()
        .unwrap()
        .password_hash
        .unwrap();
    assert!(
        stored.starts_with("$argon2id$v=19$m=256,t=1,p=1$"),
        "{stored}"
    );
    app.post_api("/auth/api/v1/sessions/logout").await;
    assert_eq!(
        app.login(&e, "old secret 123").await.status(),
        303,
        "the new hash verifies"
    );
}

async fn password_less_account_gives_the_same_422(b: Backend) {
    let app = TestApp::spawn(b).await;
    let store = authara::server::open_store(&app.config).await.unwrap();
    let e = email("nopass");
    store
        .create_user(
            authara_core::store::NewUser {
                id: uuid::Uuid::new_v4(),
                email: e.clone(),
                username: "nopass-user".into(),
                password_hash: None,
                created_at: authara_core::clock::Clock::now(&*app.clock),
                organization: crate::helpers::initial_org("legacy-user"),
            },
            authara_core::store::Effects::none(),
        )
        .await
        .unwrap();
    let res = app.login(&e, "authara dummy password").await;
    assert_eq!(res.status(), 422);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("Invalid email or password."));
}

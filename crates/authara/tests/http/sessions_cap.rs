//! Sessions per user are capped (`AUTHARA_SESSIONS_MAX_PER_USER`), and logging in again from a
//! browser replaces that browser's previous session.

use crate::helpers::{claims, email, set_cookie, Backend, TestApp};
use crate::on_both;
use reqwest::Response;
use time::Duration;

on_both!(
    logging_in_twice_in_one_browser_revokes_the_first_session,
    a_login_with_a_bogus_refresh_cookie_still_signs_in,
    the_session_cap_revokes_the_oldest_sessions_over_http,
);

const PASSWORD: &str = "correct horse battery";

/// The session id of an access token.
pub fn sid_of(access: &str) -> String {
    claims(access)["sid"].as_str().unwrap().to_owned()
}

/// `POST /auth/api/v1/sessions/refresh` from a fresh browser holding only `refresh` (and a
/// CSRF pair of its own).
pub async fn refresh_with(app: &TestApp, refresh: &str) -> Response {
    let csrf = "r".repeat(43);
    app.fresh_client()
        .post(app.url("/auth/api/v1/sessions/refresh"))
        .header(
            "cookie",
            format!("authara_refresh={refresh}; authara_csrf={csrf}"),
        )
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap()
}

/// Logs in from a fresh browser; returns its (access, refresh) tokens.
pub async fn login_elsewhere(app: &TestApp, email: &str, password: &str) -> (String, String) {
    let res = app.login_in_another_browser(email, password).await;
    assert_eq!(res.status(), 303);
    tokens_of(&res)
}

/// The access and refresh tokens a response sets.
pub fn tokens_of(res: &Response) -> (String, String) {
    let value = |name: &str| {
        let cookie = set_cookie(res.headers(), name).unwrap_or_else(|| panic!("{name} set"));
        let pair = cookie.split(';').next().unwrap();
        pair.trim_start_matches(&format!("{name}=")).to_owned()
    };
    (value("authara_access"), value("authara_refresh"))
}

async fn account_page(app: &TestApp) -> String {
    let res = app.get("/auth/account").await;
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

async fn logging_in_twice_in_one_browser_revokes_the_first_session(b: Backend) {
    let app = TestApp::spawn_with(b, &[("AUTHARA_SESSION_CACHE_SECONDS", "60")]).await;
    let e = app.signed_up("twice").await;
    assert_eq!(app.login(&e, PASSWORD).await.status(), 303);
    let first_access = app.cookie("authara_access").unwrap();
    let first_refresh = app.cookie("authara_refresh").unwrap();
    // Cached on this instance: the revocation must evict it.
    assert_eq!(app.user_status_with(&first_access).await, 200);
    // Another browser's session of the same user is not this browser's to replace.
    let (elsewhere, _) = login_elsewhere(&app, &e, PASSWORD).await;

    app.clock.advance(Duration::seconds(1));
    assert_eq!(app.login(&e, PASSWORD).await.status(), 303);
    let second_access = app.cookie("authara_access").unwrap();
    assert_ne!(sid_of(&first_access), sid_of(&second_access));

    let page = account_page(&app).await;
    assert!(
        !page.contains(&sid_of(&first_access)),
        "the replaced session is not listed"
    );
    assert!(page.contains(&sid_of(&elsewhere)), "the other browser's is");
    assert_eq!(app.user_status_with(&first_access).await, 401);
    assert_eq!(refresh_with(&app, &first_refresh).await.status(), 401);
    assert_eq!(app.user_status_with(&second_access).await, 200);
    assert_eq!(app.user_status_with(&elsewhere).await, 200);
}

async fn a_login_with_a_bogus_refresh_cookie_still_signs_in(b: Backend) {
    let app = TestApp::spawn(b).await;
    let e = app.signed_up("bogus").await;
    for bogus in ["not-a-token", &"x".repeat(4000)] {
        app.set_cookie("authara_refresh", bogus);
        assert_eq!(
            app.login(&e, PASSWORD).await.status(),
            303,
            "{}",
            bogus.len()
        );
        assert_eq!(app.user().await.0, 200);
    }
}

async fn the_session_cap_revokes_the_oldest_sessions_over_http(b: Backend) {
    let app = TestApp::spawn_with(
        b,
        &[
            ("AUTHARA_SESSIONS_MAX_PER_USER", "2"),
            ("AUTHARA_SESSION_CACHE_SECONDS", "60"),
        ],
    )
    .await;
    let e = email("capped");
    let mut sessions = Vec::new();
    let res = app.signup_in_another_browser(&e, PASSWORD).await;
    assert_eq!(res.status(), 303);
    sessions.push(tokens_of(&res));
    for _ in 0..3 {
        app.clock.advance(Duration::seconds(1));
        sessions.push(login_elsewhere(&app, &e, PASSWORD).await);
        // Every live session ends up in this instance's cache, which the cap must evict.
        for (access, _) in &sessions[sessions.len().saturating_sub(2)..] {
            assert_eq!(app.user_status_with(access).await, 200);
        }
    }
    for (i, (access, refresh)) in sessions.iter().enumerate() {
        let (user, refreshed) = if i < 2 { (401, 401) } else { (200, 200) };
        assert_eq!(app.user_status_with(access).await, user, "session {i}");
        assert_eq!(
            refresh_with(&app, refresh).await.status(),
            refreshed,
            "session {i}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_the_cap_revokes_are_forgotten_by_the_other_instances_cache() {
    if !crate::helpers::require_postgres("session cap across instances") {
        return;
    }
    let a = TestApp::spawn_with(
        Backend::Postgres,
        &[
            ("AUTHARA_SESSIONS_MAX_PER_USER", "1"),
            ("AUTHARA_SESSION_CACHE_SECONDS", "60"),
        ],
    )
    .await;
    let b = a.spawn_sibling().await;
    let e = email("capacross");
    let res = a.signup_in_another_browser(&e, PASSWORD).await;
    assert_eq!(res.status(), 303);
    let (first, _) = tokens_of(&res);
    assert_eq!(b.user_status_with(&first).await, 200, "cached on B");
    app_clock_tick(&a, &b);
    let (second, _) = login_elsewhere(&a, &e, PASSWORD).await;
    assert_eq!(a.user_status_with(&first).await, 401);
    // B hears of the revocation through PostgreSQL's notification, within milliseconds; the
    // bound is only against a hang.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while b.user_status_with(&first).await != 401 {
        assert!(
            std::time::Instant::now() < deadline,
            "instance B kept the session the cap revoked"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(b.user_status_with(&second).await, 200);
}

/// Moves both instances' clocks on by a second, so that sessions are created in order.
fn app_clock_tick(a: &TestApp, b: &TestApp) {
    a.clock.advance(Duration::seconds(1));
    b.clock.advance(Duration::seconds(1));
}

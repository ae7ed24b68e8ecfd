//! Refresh, rotation, reuse detection and revocation (SPEC §6).

use crate::helpers::{set_cookie, Backend, TestApp};
use crate::on_both;
use time::Duration;

on_both!(
    refresh_with_rotation_always_issues_both_cookies,
    refresh_without_rotation_sets_the_same_refresh_token_with_its_remaining_max_age,
    a_failed_browser_refresh_from_a_script_is_401_not_a_redirect,
    rotation_interval_rotates_only_old_tokens,
    reuse_after_the_grace_window_revokes_the_whole_session,
    reuse_within_the_grace_window_gets_access_but_no_refresh_cookie,
    eight_concurrent_refreshes_issue_at_most_one_refresh_token,
    refresh_without_cookie_is_401_and_bad_audience_400,
    a_repeated_or_empty_audience_is_400_and_changes_nothing,
    admin_audience_for_a_non_admin_is_401_and_consumes_nothing,
    expired_refresh_token_is_refused,
    expired_session_is_refused_on_refresh,
    browser_refresh_redirects_and_failure_goes_to_login,
    api_logout_is_204_and_always_succeeds,
    logout_with_only_an_access_token_revokes_its_session,
    expired_access_token_is_401_on_the_api,
    cached_sessions_are_forgotten_at_once_on_revocation,
);

async fn refresh_with_rotation_always_issues_both_cookies(b: Backend) {
    let app =
        TestApp::spawn_with(b, &[("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", "always")]).await;
    app.signed_up("rot").await;
    let before = app.cookie("authara_refresh").unwrap();
    app.clock.advance(Duration::seconds(5));
    let res = app
        .post_api("/auth/api/v1/sessions/refresh?audience=app")
        .await;
    assert_eq!(res.status(), 200);
    assert!(set_cookie(res.headers(), "authara_access").is_some());
    let refresh = set_cookie(res.headers(), "authara_refresh").unwrap();
    assert!(refresh.contains("HttpOnly; SameSite=Lax"));
    assert_eq!(res.text().await.unwrap(), "");
    let after = app.cookie("authara_refresh").unwrap();
    assert_ne!(before, after);
    assert_eq!(app.user().await.0, 200);
}

async fn refresh_without_rotation_sets_the_same_refresh_token_with_its_remaining_max_age(
    b: Backend,
) {
    let app = TestApp::spawn_with(b, &[("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", "off")]).await;
    app.signed_up("norot").await;
    let token = app.cookie("authara_refresh").unwrap();
    // Signed up just now: the token lives the refresh TTL (within the session's).
    let policy = app.config.session;
    let first = policy.refresh_ttl.min(policy.session_ttl).whole_seconds();
    for step in 1..=3 {
        app.clock.advance(Duration::hours(1));
        let res = app.post_api("/auth/api/v1/sessions/refresh").await;
        assert_eq!(res.status(), 200);
        assert!(set_cookie(res.headers(), "authara_access").is_some());
        // Both cookies on every success: the same token, with what is left of its life.
        let refresh = set_cookie(res.headers(), "authara_refresh").unwrap();
        assert!(refresh.starts_with(&format!("authara_refresh={token};")));
        assert!(refresh.contains("HttpOnly; SameSite=Lax"), "{refresh}");
        assert_eq!(max_age(&refresh), first - step * 3600, "{refresh}");
    }
    assert_eq!(app.cookie("authara_refresh").unwrap(), token);
}

/// The `Max-Age` of a `Set-Cookie` line.
fn max_age(set_cookie: &str) -> i64 {
    set_cookie
        .split("; ")
        .find_map(|a| a.strip_prefix("Max-Age="))
        .unwrap()
        .parse()
        .unwrap()
}

async fn rotation_interval_rotates_only_old_tokens(b: Backend) {
    let app = TestApp::spawn_with(b, &[("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", "30m")]).await;
    app.signed_up("interval").await;
    let token = app.cookie("authara_refresh").unwrap();
    let res = app.post_api("/auth/api/v1/sessions/refresh").await;
    // Not rotated: the same token again.
    let kept = set_cookie(res.headers(), "authara_refresh").unwrap();
    assert!(kept.starts_with(&format!("authara_refresh={token};")));
    app.clock.advance(Duration::minutes(31));
    let res = app.post_api("/auth/api/v1/sessions/refresh").await;
    assert_eq!(res.status(), 200);
    let rotated = set_cookie(res.headers(), "authara_refresh").unwrap();
    assert!(!rotated.starts_with(&format!("authara_refresh={token};")));
}

async fn reuse_after_the_grace_window_revokes_the_whole_session(b: Backend) {
    let app = TestApp::spawn_with(
        b,
        &[
            ("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", "always"),
            ("AUTHARA_REFRESH_TOKEN_REUSE_GRACE", "10s"),
        ],
    )
    .await;
    app.signed_up("reuse").await;
    let (stolen, newer) = rotate_once(&app).await;
    app.clock.advance(Duration::seconds(11));
    // The attacker replays the consumed token.
    app.set_cookie("authara_refresh", &stolen);
    let res = app.post_api("/auth/api/v1/sessions/refresh").await;
    assert_eq!(res.status(), 401);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    // The whole session is gone: the legitimate newer token and the access token too.
    app.set_cookie("authara_refresh", &newer);
    assert_eq!(
        app.post_api("/auth/api/v1/sessions/refresh").await.status(),
        401
    );
    assert_eq!(app.user().await.0, 401);
}

async fn reuse_within_the_grace_window_gets_access_but_no_refresh_cookie(b: Backend) {
    let app = TestApp::spawn_with(
        b,
        &[
            ("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", "always"),
            ("AUTHARA_REFRESH_TOKEN_REUSE_GRACE", "10s"),
        ],
    )
    .await;
    app.signed_up("tabs").await;
    let (old, newer) = rotate_once(&app).await;
    app.clock.advance(Duration::seconds(9));
    app.set_cookie("authara_refresh", &old);
    let res = app.post_api("/auth/api/v1/sessions/refresh").await;
    assert_eq!(res.status(), 200);
    assert!(set_cookie(res.headers(), "authara_access").is_some());
    assert!(set_cookie(res.headers(), "authara_refresh").is_none());
    // The newer token still works: the session was not revoked.
    app.set_cookie("authara_refresh", &newer);
    assert_eq!(
        app.post_api("/auth/api/v1/sessions/refresh").await.status(),
        200
    );
}

/// Refreshes once through the API with rotation on; returns the refresh token before and the
/// one that replaced it.
async fn rotate_once(app: &TestApp) -> (String, String) {
    let before = app.cookie("authara_refresh").unwrap();
    assert_eq!(
        app.post_api("/auth/api/v1/sessions/refresh").await.status(),
        200
    );
    let after = app.cookie("authara_refresh").unwrap();
    assert_ne!(before, after, "the refresh token rotated");
    (before, after)
}

async fn eight_concurrent_refreshes_issue_at_most_one_refresh_token(b: Backend) {
    let app =
        TestApp::spawn_with(b, &[("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", "always")]).await;
    app.signed_up("race").await;
    let csrf = app.csrf().await;
    let token = app.cookie("authara_refresh").unwrap();
    // Eight browsers, each already connected, with its request ready: a barrier releases all
    // eight sends at once, so the refreshes really overlap.
    const N: usize = 8;
    let mut ready = Vec::with_capacity(N);
    for _ in 0..N {
        let client = app.fresh_client();
        assert_eq!(
            client
                .get(app.url("/auth/health"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        let request = client
            .post(app.url("/auth/api/v1/sessions/refresh"))
            .header(
                "cookie",
                format!("authara_refresh={token}; authara_csrf={csrf}"),
            )
            .header("x-csrf-token", &csrf)
            .build()
            .unwrap();
        ready.push((client, request));
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(N));
    let mut tasks = Vec::with_capacity(N);
    for (client, request) in ready {
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            client.execute(request).await.unwrap()
        }));
    }
    let mut new_refresh = 0;
    for t in tasks {
        let res = t.await.unwrap();
        assert_eq!(
            res.status(),
            200,
            "no request may fail inside the grace window"
        );
        if set_cookie(res.headers(), "authara_refresh").is_some() {
            new_refresh += 1;
        }
    }
    assert_eq!(new_refresh, 1);
}

/// Found by running Authara's own clients: a repeated parameter used to read as "absent", so a
/// non-admin asking twice for `admin` got `200` with an app token.
async fn a_repeated_or_empty_audience_is_400_and_changes_nothing(b: Backend) {
    let app =
        TestApp::spawn_with(b, &[("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", "always")]).await;
    app.signed_up("twice").await;
    let before = crate::dbstate::snapshot(&app).await;
    let refresh = app.cookie("authara_refresh");
    for query in [
        "?audience=admin&audience=admin",
        "?audience=bogus&audience=bogus",
        "?audience=app&audience=app",
        "?audience=app&audience=admin",
        "?audience=",
        "?audience",
        "?audience=%20",
    ] {
        let res = app
            .post_api(&format!("/auth/api/v1/sessions/refresh{query}"))
            .await;
        assert_eq!(res.status(), 400, "{query}");
        assert!(
            crate::helpers::set_cookies(res.headers()).is_empty(),
            "{query}"
        );
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_request", "{query}");
    }
    assert_eq!(app.cookie("authara_refresh"), refresh);
    assert_eq!(crate::dbstate::snapshot(&app).await, before);
    // Other parameters may repeat; only `audience` is read.
    let res = app
        .post_api("/auth/api/v1/sessions/refresh?x=1&x=2&audience=app")
        .await;
    assert_eq!(res.status(), 200);
}

async fn refresh_without_cookie_is_401_and_bad_audience_400(b: Backend) {
    let app = TestApp::spawn(b).await;
    let res = app.post_api("/auth/api/v1/sessions/refresh").await;
    assert_eq!(res.status(), 401);
    app.signed_up("aud").await;
    let res = app
        .post_api("/auth/api/v1/sessions/refresh?audience=root")
        .await;
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_request");
    app.set_cookie("authara_refresh", "not-a-real-token");
    let res = app.post_api("/auth/api/v1/sessions/refresh").await;
    assert_eq!(res.status(), 401);
    assert!(set_cookie(res.headers(), "authara_access")
        .unwrap()
        .contains("Max-Age=0"));
}

async fn admin_audience_for_a_non_admin_is_401_and_consumes_nothing(b: Backend) {
    let app =
        TestApp::spawn_with(b, &[("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", "always")]).await;
    app.signed_up("plain").await;
    let token = app.cookie("authara_refresh").unwrap();
    let res = app
        .post_api("/auth/api/v1/sessions/refresh?audience=admin")
        .await;
    assert_eq!(res.status(), 401);
    assert!(
        res.headers().get("set-cookie").is_none(),
        "cookies untouched"
    );
    assert_eq!(app.cookie("authara_refresh").unwrap(), token);
    app.clock.advance(Duration::minutes(5));
    let res = app
        .post_api("/auth/api/v1/sessions/refresh?audience=app")
        .await;
    assert_eq!(res.status(), 200, "the token was not consumed");
    assert!(set_cookie(res.headers(), "authara_refresh").is_some());
}

async fn expired_refresh_token_is_refused(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.signed_up("old").await;
    app.clock.advance(Duration::days(15));
    assert_eq!(
        app.post_api("/auth/api/v1/sessions/refresh").await.status(),
        401
    );
}

async fn expired_session_is_refused_on_refresh(b: Backend) {
    let app = TestApp::spawn_with(
        b,
        &[
            ("AUTHARA_SESSION_TTL_DAYS", "2"),
            ("AUTHARA_REFRESH_TOKEN_TTL_DAYS", "2"),
            ("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", "always"),
        ],
    )
    .await;
    app.signed_up("short").await;
    app.clock.advance(Duration::days(1));
    let res = app.post_api("/auth/api/v1/sessions/refresh").await;
    assert_eq!(res.status(), 200);
    let c = set_cookie(res.headers(), "authara_refresh").unwrap();
    assert!(
        c.contains("Max-Age=86400;"),
        "capped at the session's expiry: {c}"
    );
    app.clock.advance(Duration::days(1));
    assert_eq!(
        app.post_api("/auth/api/v1/sessions/refresh").await.status(),
        401
    );
}

async fn browser_refresh_redirects_and_failure_goes_to_login(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.signed_up("browser").await;
    let res = app
        .post_form("/auth/sessions/refresh", &[("return_to", "/after")])
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/after");
    assert!(set_cookie(res.headers(), "authara_access").is_some());
    app.set_cookie("authara_refresh", "bogus");
    let res = app
        .post_form("/auth/sessions/refresh", &[("return_to", "/after")])
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/auth/login?return_to=/after");
    assert!(set_cookie(res.headers(), "authara_refresh")
        .unwrap()
        .contains("Max-Age=0"));
    let res = app
        .client
        .post(app.url("/auth/sessions/refresh"))
        .header("hx-request", "true")
        .header("x-csrf-token", app.csrf().await)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["hx-redirect"], "/auth/login");
}

async fn a_failed_browser_refresh_from_a_script_is_401_not_a_redirect(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.signed_up("script").await;
    let csrf = app.csrf().await;
    let post = |headers: &'static [(&'static str, &'static str)]| {
        let mut req = app
            .client
            .post(app.url("/auth/sessions/refresh?return_to=/after"))
            .header("x-csrf-token", csrf.clone());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send()
    };
    // Success from a script still redirects to return_to (fetch follows it).
    let res = post(&[("sec-fetch-mode", "cors")]).await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/after");
    let good = app.cookie("authara_refresh").unwrap();

    for headers in [
        &[("sec-fetch-mode", "cors")][..],
        &[("sec-fetch-mode", "same-origin")],
        &[("accept", "application/json")],
        &[
            ("sec-fetch-mode", "navigate"),
            ("accept", "text/html, application/json;q=0.9"),
        ],
    ] {
        app.set_cookie("authara_refresh", "bogus");
        let res = post(headers).await.unwrap();
        assert_eq!(res.status(), 401, "{headers:?}");
        assert!(res.headers().get("location").is_none());
        assert!(set_cookie(res.headers(), "authara_refresh")
            .unwrap()
            .contains("Max-Age=0"));
        assert!(set_cookie(res.headers(), "authara_access")
            .unwrap()
            .contains("Max-Age=0"));
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    // A navigation (and a client that says nothing) keeps the redirect to the login page.
    for headers in [&[("sec-fetch-mode", "navigate")][..], &[]] {
        app.set_cookie("authara_refresh", "bogus");
        let res = post(headers).await.unwrap();
        assert_eq!(res.status(), 303, "{headers:?}");
        assert_eq!(res.headers()["location"], "/auth/login?return_to=/after");
    }
    // `admin` for a non-admin from a script: 401, and the session is left as it was.
    app.set_cookie("authara_refresh", &good);
    let res = app
        .client
        .post(app.url("/auth/sessions/refresh?audience=admin"))
        .header("x-csrf-token", csrf.clone())
        .header("sec-fetch-mode", "cors")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(set_cookie(res.headers(), "authara_refresh").is_none());
    assert_eq!(
        app.post_api("/auth/api/v1/sessions/refresh").await.status(),
        200
    );
}

async fn api_logout_is_204_and_always_succeeds(b: Backend) {
    let app = TestApp::spawn(b).await;
    let res = app.post_api("/auth/api/v1/sessions/logout").await;
    assert_eq!(res.status(), 204);
    app.signed_up("apilogout").await;
    let refresh = app.cookie("authara_refresh").unwrap();
    let res = app.post_api("/auth/api/v1/sessions/logout").await;
    assert_eq!(res.status(), 204);
    assert!(set_cookie(res.headers(), "authara_refresh")
        .unwrap()
        .contains("Max-Age=0"));
    app.set_cookie("authara_refresh", &refresh);
    assert_eq!(
        app.post_api("/auth/api/v1/sessions/refresh").await.status(),
        401
    );
}

async fn logout_with_only_an_access_token_revokes_its_session(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.signed_up("accessonly").await;
    let access = app.cookie("authara_access").unwrap();
    app.drop_cookie("authara_refresh");
    assert_eq!(
        app.post_api("/auth/api/v1/sessions/logout").await.status(),
        204
    );
    app.set_cookie("authara_access", &access);
    assert_eq!(app.user().await.0, 401);
}

async fn expired_access_token_is_401_on_the_api(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.signed_up("expire").await;
    app.clock.advance(Duration::minutes(10));
    assert_eq!(app.user().await.0, 401);
    assert_eq!(
        app.post_api("/auth/api/v1/sessions/refresh").await.status(),
        200
    );
    assert_eq!(app.user().await.0, 200);
}

async fn cached_sessions_are_forgotten_at_once_on_revocation(b: Backend) {
    let app = TestApp::spawn_with(b, &[("AUTHARA_SESSION_CACHE_SECONDS", "60")]).await;
    app.signed_up("cached").await;
    let access = app.cookie("authara_access").unwrap();
    // Fill the cache, then revoke through each path and look again at once.
    assert_eq!(app.user().await.0, 200);
    assert_eq!(app.user().await.0, 200);
    assert_eq!(
        app.post_api("/auth/api/v1/sessions/logout").await.status(),
        204
    );
    assert_eq!(app.user_status_with(&access).await, 401);
    // Username changes show at once too.
    app.signed_up("renamed").await;
    assert_eq!(app.user().await.0, 200);
    let res = app
        .post_form("/auth/user/username", &[("username", "fresh.name")])
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(app.user().await.1["username"], "fresh.name");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_instance_is_seen_by_the_others_cache() {
    if !crate::helpers::require_postgres("cross-instance revocation") {
        return;
    }
    let a = TestApp::spawn_with(
        Backend::Postgres,
        &[("AUTHARA_SESSION_CACHE_SECONDS", "60")],
    )
    .await;
    let b = a.spawn_sibling().await;
    a.signed_up("twoinstances").await;
    let access = a.cookie("authara_access").unwrap();
    let refresh = a.cookie("authara_refresh").unwrap();
    // Both instances have the session cached.
    assert_eq!(a.user_status_with(&access).await, 200);
    assert_eq!(b.user_status_with(&access).await, 200);
    // Log out through instance B.
    b.set_cookie("authara_refresh", &refresh);
    assert_eq!(
        b.post_api("/auth/api/v1/sessions/logout").await.status(),
        204
    );
    assert_eq!(b.user_status_with(&access).await, 401);
    // Instance A hears of it through PostgreSQL's notification, within milliseconds; the
    // bound here is only against a hang.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        if a.user_status_with(&access).await == 401 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "instance A kept the revoked session"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_sqlite_file_refuses_to_start() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let second =
        authara::server::Server::build(&app.config, authara::server::Deps::default()).await;
    let err = second
        .err()
        .expect("a second server must not start")
        .to_string();
    assert!(err.contains("another authara server is using"), "{err}");
}

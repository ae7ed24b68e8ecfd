//! The account page and its actions.

use crate::helpers::{claims, email, set_cookie, Backend, TestApp};
use crate::on_both;
use time::Duration;

on_both!(
    account_page_shows_the_user_and_their_sessions,
    account_without_a_session_redirects_to_login_with_return_to,
    account_refreshes_on_the_fly_with_an_expired_access_token,
    change_username_validates_and_refuses_taken_names,
    revoking_a_session_ends_it_at_once_and_others_are_404,
    delete_account_removes_the_user_and_all_sessions,
    admin_can_disable_and_enable_users_with_an_admin_token_only,
);

async fn account_page_shows_the_user_and_their_sessions(b: Backend) {
    let app = TestApp::spawn(b).await;
    let e = app.signed_up("page").await;
    let res = app.get("/auth/account").await;
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    assert!(body.contains(&e));
    for needle in [
        r#"action="/auth/user/username""#,
        r#"action="/auth/user/delete""#,
        r#"action="/auth/sessions/logout""#,
        "/revoke",
        "authara-tests/1.0",
        "this session",
    ] {
        assert!(body.contains(needle), "{needle} missing");
    }
}

async fn account_without_a_session_redirects_to_login_with_return_to(b: Backend) {
    let app = TestApp::spawn(b).await;
    let res = app.get("/auth/account").await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"],
        "/auth/login?return_to=/auth/account"
    );
}

async fn account_refreshes_on_the_fly_with_an_expired_access_token(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.signed_up("fly").await;
    app.clock.advance(Duration::minutes(11));
    let res = app.get("/auth/account").await;
    assert_eq!(res.status(), 200);
    assert!(set_cookie(res.headers(), "authara_access").is_some());
    // With neither token valid: back to login, cookies cleared.
    app.set_cookie("authara_refresh", "bogus");
    app.clock.advance(Duration::minutes(11));
    let res = app.get("/auth/account").await;
    assert_eq!(res.status(), 303);
    assert!(set_cookie(res.headers(), "authara_refresh")
        .unwrap()
        .contains("Max-Age=0"));
}

async fn change_username_validates_and_refuses_taken_names(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.signed_up("first").await;
    let res = app
        .post_form("/auth/user/username", &[("username", "taken.name")])
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/auth/account");
    assert_eq!(app.user().await.1["username"], "taken.name");
    for bad in ["ab", "UPPER", "has space", &"x".repeat(33)] {
        let res = app
            .post_form("/auth/user/username", &[("username", bad)])
            .await;
        assert_eq!(res.status(), 422, "{bad}");
    }
    // A second user in the same server tries to take the name.
    app.post_api("/auth/api/v1/sessions/logout").await;
    app.signed_up("second").await;
    let res = app
        .post_form("/auth/user/username", &[("username", "taken.name")])
        .await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("taken"));
}

async fn revoking_a_session_ends_it_at_once_and_others_are_404(b: Backend) {
    let app = TestApp::spawn(b).await;
    let e = app.signed_up("multi").await;
    // A second session for the same user.
    app.post_api("/auth/api/v1/sessions/logout").await;
    // Logging out revoked the first; log in twice to have two live sessions.
    assert_eq!(app.login(&e, "correct horse battery").await.status(), 303);
    let a = app.cookie("authara_access").unwrap();
    // As from another browser: a login carrying this one's refresh cookie would revoke `a`.
    app.drop_cookie("authara_refresh");
    assert_eq!(app.login(&e, "correct horse battery").await.status(), 303);
    let current = app.cookie("authara_access").unwrap();
    let a_sid = sid_of(&a);
    let res = app
        .post_form(&format!("/auth/sessions/{a_sid}/revoke"), &[])
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/auth/account");
    app.set_cookie("authara_access", &a);
    assert_eq!(app.user().await.0, 401, "revoked session refused at once");
    app.set_cookie("authara_access", &current);
    assert_eq!(app.user().await.0, 200);
    // An unknown id, or garbage: 404.
    for id in [uuid::Uuid::new_v4().to_string(), "not-a-uuid".into()] {
        let res = app
            .post_form(&format!("/auth/sessions/{id}/revoke"), &[])
            .await;
        assert_eq!(res.status(), 404, "{id}");
    }
    // Another user's live session: 404, and it stays live.
    let other_access = app.signup_elsewhere("other").await;
    let other_sid = sid_of(&other_access);
    let res = app
        .post_form(&format!("/auth/sessions/{other_sid}/revoke"), &[])
        .await;
    assert_eq!(res.status(), 404);
    assert_eq!(app.user_status_with(&other_access).await, 200);
}

fn sid_of(access: &str) -> String {
    claims(access)["sid"].as_str().unwrap().to_owned()
}

async fn delete_account_removes_the_user_and_all_sessions(b: Backend) {
    let app = TestApp::spawn_with(b, &[("AUTHARA_SESSION_CACHE_SECONDS", "60")]).await;
    let e = app.signed_up("gone").await;
    let access = app.cookie("authara_access").unwrap();
    // That first session is cached; a second one, also cached, deletes the account.
    assert_eq!(app.user().await.0, 200);
    // As from another browser: a login carrying this one's refresh cookie would revoke the first.
    app.drop_cookie("authara_refresh");
    assert_eq!(app.login(&e, "correct horse battery").await.status(), 303);
    let second = app.cookie("authara_access").unwrap();
    assert_ne!(second, access);
    assert_eq!(app.user().await.0, 200);
    assert_eq!(
        app.user_status_with(&access).await,
        200,
        "both sessions live"
    );
    let res = app.post_form("/auth/user/delete", &[]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/auth/successful-deletion");
    assert!(set_cookie(res.headers(), "authara_access")
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(app.get("/auth/successful-deletion").await.status(), 200);
    app.set_cookie("authara_access", &access);
    assert_eq!(app.user().await.0, 401);
    assert_eq!(app.user_status_with(&second).await, 401);
    assert_eq!(app.login(&e, "correct horse battery").await.status(), 422);
    // The email is free again.
    assert_eq!(app.signup(&e, "correct horse battery").await.status(), 303);
}

async fn admin_can_disable_and_enable_users_with_an_admin_token_only(b: Backend) {
    let app = TestApp::spawn(b).await;
    let store = authara::server::open_store(&app.config).await.unwrap();
    // The victim, in another browser.
    let victim_access = app.signup_elsewhere("victim").await;
    let victim_id = store
        .find_user_by_email(&email("victim"))
        .await
        .unwrap()
        .unwrap()
        .id;
    let disable = format!("/auth/admin/users/{victim_id}/disable");

    let boss = app.signed_up("boss").await;
    // Not an admin: 403.
    assert_eq!(app.post_form(&disable, &[]).await.status(), 403);
    store
        .set_admin_by_email(
            &boss,
            true,
            authara_core::clock::Clock::now(&*app.clock),
            authara_core::store::Effects::none(),
        )
        .await
        .unwrap();
    // An admin with an app token: still 403.
    assert_eq!(app.post_form(&disable, &[]).await.status(), 403);
    assert_eq!(
        app.post_api("/auth/api/v1/sessions/refresh?audience=admin")
            .await
            .status(),
        200
    );
    // No CSRF: 403, nothing changes.
    assert_eq!(app.post_form_raw(&disable, &[]).await.status(), 403);
    assert!(
        !store
            .find_user_by_id(victim_id)
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    let res = app.post_form(&disable, &[]).await;
    assert_eq!(res.status(), 303);
    assert!(
        store
            .find_user_by_id(victim_id)
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    assert_eq!(
        app.user_status_with(&victim_access).await,
        401,
        "disabling revokes every session at once"
    );
    let enable = format!("/auth/admin/users/{victim_id}/enable");
    assert_eq!(app.post_form(&enable, &[]).await.status(), 303);
    assert!(
        !store
            .find_user_by_id(victim_id)
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    let unknown = format!("/auth/admin/users/{}/disable", uuid::Uuid::new_v4());
    assert_eq!(app.post_form(&unknown, &[]).await.status(), 404);
}

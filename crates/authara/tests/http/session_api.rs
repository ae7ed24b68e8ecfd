//! The caller's sessions: `GET /auth/api/v1/sessions`, `DELETE /auth/api/v1/sessions/{id}`,
//! and signing out everywhere else (`POST /auth/api/v1/sessions/revoke-other` and the account
//! page's `POST /auth/sessions/revoke-other`).

use crate::dbstate;
use crate::helpers::{claims, email, set_cookie, Backend, TestApp};
use crate::on_both;
use crate::password::{
    assert_signed_in, assert_signed_out, error_of, login_elsewhere, Device, PASSWORD,
};
use authara_core::audit::AuditFilter;
use reqwest::Response;
use serde_json::Value;
use time::Duration;

const SESSIONS: &str = "/auth/api/v1/sessions";
const REVOKE_OTHER: &str = "/auth/api/v1/sessions/revoke-other";

on_both!(
    the_list_is_the_callers_live_sessions_newest_first,
    last_used_moves_with_each_refresh_token_rotation,
    deleting_a_session_ends_it_and_other_ids_are_404,
    deleting_the_current_session_clears_its_cookies,
    revoke_other_signs_out_everywhere_else_and_counts,
    the_account_page_signs_out_everywhere_else,
    session_routes_need_a_session_and_a_csrf_token,
);

/// `GET /auth/api/v1/sessions` as JSON.
async fn list(app: &TestApp) -> Value {
    let res = app.get(SESSIONS).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    res.json().await.unwrap()
}

/// The session id (`sid`) of an access token.
fn sid(access: &str) -> String {
    claims(access)["sid"].as_str().unwrap().to_owned()
}

/// `DELETE` with the CSRF header.
async fn delete(app: &TestApp, path: &str) -> Response {
    let csrf = app.csrf().await;
    app.client
        .delete(app.url(path))
        .header("x-csrf-token", csrf)
        .send()
        .await
        .unwrap()
}

/// Asserts `t` is RFC 3339 UTC without fractional seconds: `2026-01-01T12:00:00Z`.
fn assert_timestamp(t: &Value) {
    let t = t.as_str().expect("a string");
    assert_eq!(t.len(), 20, "{t}");
    assert!(
        t.ends_with('Z') && t.as_bytes()[10] == b'T' && !t.contains('.'),
        "{t}"
    );
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap();
}

async fn the_list_is_the_callers_live_sessions_newest_first(b: Backend) {
    let app = TestApp::spawn(b).await;
    let e = app.signed_up("lister").await;
    let mine = sid(&app.cookie("authara_access").unwrap());
    app.clock.advance(Duration::minutes(1));
    let phone = login_elsewhere(&app, &e, PASSWORD).await;
    app.clock.advance(Duration::minutes(1));
    let tablet = login_elsewhere(&app, &e, PASSWORD).await;
    app.clock.advance(Duration::minutes(1));
    let gone = login_elsewhere(&app, &e, PASSWORD).await;
    assert_eq!(
        delete(&app, &format!("{SESSIONS}/{}", sid(&gone.access)))
            .await
            .status(),
        204
    );
    // Another user's session is never listed.
    app.signup_elsewhere("stranger").await;

    let body = list(&app).await;
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    let sessions = body["sessions"].as_array().unwrap();
    let ids: Vec<&str> = sessions.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [sid(&tablet.access), sid(&phone.access), mine.clone()],
        "newest first, live only"
    );
    for s in sessions {
        let fields: Vec<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
        let mut fields = fields;
        fields.sort_unstable();
        assert_eq!(
            fields,
            [
                "created_at",
                "current",
                "expires_at",
                "id",
                "ip_address",
                "last_used_at",
                "user_agent"
            ]
        );
        for t in ["created_at", "last_used_at", "expires_at"] {
            assert_timestamp(&s[t]);
        }
        assert_eq!(s["ip_address"], "127.0.0.1");
        assert_eq!(s["user_agent"], "authara-tests/1.0");
        assert_eq!(s["current"], s["id"] == mine.as_str(), "{s}");
        // Never signed in again since: last used at sign-in.
        assert_eq!(s["last_used_at"], s["created_at"]);
    }
    // The other device sees the same list, with itself as current.
    let res = app
        .fresh_client()
        .get(app.url(SESSIONS))
        .header("cookie", format!("authara_access={}", phone.access))
        .send()
        .await
        .unwrap();
    let theirs: Value = res.json().await.unwrap();
    let current: Vec<&str> = theirs["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["current"] == true)
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(current, [sid(&phone.access)]);
}

async fn last_used_moves_with_each_refresh_token_rotation(b: Backend) {
    let app =
        TestApp::spawn_with(b, &[("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", "always")]).await;
    app.signed_up("rotating").await;
    let first = list(&app).await["sessions"][0].clone();
    app.clock.advance(Duration::minutes(7));
    assert_eq!(
        app.post_api("/auth/api/v1/sessions/refresh").await.status(),
        200
    );
    let after = list(&app).await["sessions"][0].clone();
    assert_eq!(after["created_at"], first["created_at"]);
    let parse = |v: &Value| {
        time::OffsetDateTime::parse(
            v.as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    let moved = parse(&after["last_used_at"]) - parse(&first["last_used_at"]);
    assert!(
        (Duration::minutes(7) - Duration::seconds(1)..=Duration::minutes(7) + Duration::seconds(1))
            .contains(&moved),
        "{moved}"
    );
}

async fn deleting_a_session_ends_it_and_other_ids_are_404(b: Backend) {
    let app = TestApp::spawn(b).await;
    let e = app.signed_up("deleter").await;
    let laptop = login_elsewhere(&app, &e, PASSWORD).await;
    let res = delete(&app, &format!("{SESSIONS}/{}", sid(&laptop.access))).await;
    assert_eq!(res.status(), 204);
    assert!(
        set_cookie(res.headers(), "authara_access").is_none(),
        "not ours"
    );
    assert_signed_out(&app, &laptop).await;
    assert_eq!(app.user().await.0, 200);

    // Another user's session: 404, and it is left alone.
    let other = app.signup_elsewhere("someone-else").await;
    let before = dbstate::snapshot(&app).await;
    let foreign = format!("{SESSIONS}/{}", sid(&other));
    let (status, code, _) = error_of(delete(&app, &foreign).await).await;
    assert_eq!((status, code.as_str()), (404, "not_found"));
    assert_eq!(app.user_status_with(&other).await, 200);
    // Unknown, malformed or undecodable ids: 404 too.
    for id in [
        uuid::Uuid::new_v4().to_string(),
        "not-a-uuid".to_owned(),
        "%FF".to_owned(),
        "..".to_owned(),
    ] {
        let (status, code, _) = error_of(delete(&app, &format!("{SESSIONS}/{id}")).await).await;
        assert_eq!((status, code.as_str()), (404, "not_found"), "{id}");
    }
    dbstate::assert_unchanged(&app, &before, "deletes of sessions not the caller's").await;
    // Deleting an already revoked session of one's own is still fine.
    let res = delete(&app, &format!("{SESSIONS}/{}", sid(&laptop.access))).await;
    assert_eq!(res.status(), 204);
}

async fn deleting_the_current_session_clears_its_cookies(b: Backend) {
    let app = TestApp::spawn(b).await;
    let e = app.signed_up("self-delete").await;
    let other = login_elsewhere(&app, &e, PASSWORD).await;
    let mine = sid(&app.cookie("authara_access").unwrap());
    let res = delete(&app, &format!("{SESSIONS}/{mine}")).await;
    assert_eq!(res.status(), 204);
    for name in ["authara_access", "authara_refresh"] {
        let cleared = set_cookie(res.headers(), name).unwrap_or_else(|| panic!("{name}"));
        assert!(cleared.contains("Max-Age=0"), "{cleared}");
    }
    assert_eq!(app.user().await.0, 401);
    assert_signed_in(&app, &other).await;
}

async fn revoke_other_signs_out_everywhere_else_and_counts(b: Backend) {
    let app = TestApp::spawn(b).await;
    let e = app.signed_up("everywhere").await;
    let devices: Vec<Device> = vec![
        login_elsewhere(&app, &e, PASSWORD).await,
        login_elsewhere(&app, &e, PASSWORD).await,
    ];
    let bystander = app.signup_elsewhere("bystander").await;

    let res = app.post_api(REVOKE_OTHER).await;
    assert_eq!(res.status(), 200);
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        serde_json::json!({ "revoked": 2 })
    );
    for d in &devices {
        assert_signed_out(&app, d).await;
    }
    assert_eq!(app.user().await.0, 200, "the caller stays");
    assert_eq!(
        app.post_api("/auth/api/v1/sessions/refresh").await.status(),
        200
    );
    assert_eq!(app.user_status_with(&bystander).await, 200, "other users");
    assert_eq!(list(&app).await["sessions"].as_array().unwrap().len(), 1);

    // Nothing left: 0, and no second audit row.
    let res = app.post_api(REVOKE_OTHER).await;
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        serde_json::json!({ "revoked": 0 })
    );
    let store = authara::server::open_store(&app.config).await.unwrap();
    let rows = store
        .list_audit(&AuditFilter {
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let revoked: Vec<_> = rows
        .iter()
        .filter(|r| r.action == "user.sessions_revoked")
        .collect();
    assert_eq!(revoked.len(), 1, "{rows:?}");
    let row = revoked[0];
    assert_eq!(row.metadata["count"], 2);
    assert_eq!(
        row.metadata["kept_session_id"],
        sid(&app.cookie("authara_access").unwrap())
    );
    assert_eq!(
        row.target_email.as_deref(),
        Some(email("everywhere").as_str())
    );
    assert_eq!(row.actor_user_id, row.target_user_id);
    assert_eq!(row.context.request_id.as_deref(), Some(request_id.as_str()));
}

async fn the_account_page_signs_out_everywhere_else(b: Backend) {
    let app = TestApp::spawn(b).await;
    let e = app.signed_up("page-everywhere").await;
    let button = r#"action="/auth/sessions/revoke-other""#;
    let alone = app.get("/auth/account").await.text().await.unwrap();
    assert!(!alone.contains(button), "one session: no button");
    assert!(alone.contains(r#"href="/auth/providers/password/change""#));
    assert!(alone.contains("Change password"));

    let device = login_elsewhere(&app, &e, PASSWORD).await;
    let page = app.get("/auth/account").await.text().await.unwrap();
    assert!(page.contains(button), "two sessions: the button");
    assert!(page.contains("Sign out everywhere else"));
    assert!(page.contains("last used"));

    let res = app.post_form("/auth/sessions/revoke-other", &[]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/auth/account");
    assert_signed_out(&app, &device).await;
    let page = app.get("/auth/account").await;
    assert_eq!(page.status(), 200);
    assert!(!page.text().await.unwrap().contains(button));
}

async fn session_routes_need_a_session_and_a_csrf_token(b: Backend) {
    let app = TestApp::spawn(b).await;
    let e = app.signed_up("guarded").await;
    let device = login_elsewhere(&app, &e, PASSWORD).await;
    let mine = sid(&app.cookie("authara_access").unwrap());
    let before = dbstate::snapshot(&app).await;

    // Without a CSRF token: 403 csrf_invalid, nothing revoked.
    let res = app.client.post(app.url(REVOKE_OTHER)).send().await.unwrap();
    let (status, code, _) = error_of(res).await;
    assert_eq!((status, code.as_str()), (403, "csrf_invalid"));
    let victim = format!("{SESSIONS}/{}", sid(&device.access));
    let res = app.client.delete(app.url(&victim)).send().await.unwrap();
    let (status, code, _) = error_of(res).await;
    assert_eq!((status, code.as_str()), (403, "csrf_invalid"));
    let res = app.post_form_raw("/auth/sessions/revoke-other", &[]).await;
    assert_eq!(res.status(), 403);

    // Without a session: 401 for the JSON routes, the login page for the form.
    let csrf = "s".repeat(43);
    let stranger = app.fresh_client();
    for (method, path) in [
        (reqwest::Method::GET, SESSIONS.to_owned()),
        (reqwest::Method::POST, REVOKE_OTHER.to_owned()),
        (reqwest::Method::DELETE, victim.clone()),
        (reqwest::Method::DELETE, format!("{SESSIONS}/{mine}")),
    ] {
        let res = stranger
            .request(method.clone(), app.url(&path))
            .header("cookie", format!("authara_csrf={csrf}"))
            .header("x-csrf-token", &csrf)
            .send()
            .await
            .unwrap();
        let (status, code, _) = error_of(res).await;
        assert_eq!(
            (status, code.as_str()),
            (401, "unauthorized"),
            "{method} {path}"
        );
    }
    let res = stranger
        .post(app.url("/auth/sessions/revoke-other"))
        .header("cookie", format!("authara_csrf={csrf}"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"],
        "/auth/login?return_to=/auth/account"
    );
    dbstate::assert_unchanged(&app, &before, "refused session requests").await;
    // A revoked session's access token is no session either.
    assert_eq!(app.post_api(REVOKE_OTHER).await.status(), 200);
    let res = app
        .fresh_client()
        .get(app.url(SESSIONS))
        .header("cookie", format!("authara_access={}", device.access))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // Wrong methods: 405 with the envelope.
    let res = app.client.put(app.url(SESSIONS)).send().await.unwrap();
    let (status, code, _) = error_of(res).await;
    assert_eq!((status, code.as_str()), (405, "method_not_allowed"));
}

//! The audit log: rows written in the same transaction as admin actions and security events,
//! read back through the store and through `authara audit list`.

use crate::helpers::{email, Backend, TestApp};
use crate::on_both;
use authara_core::audit::{Actor, AuditFilter, AuditRecord};
use time::Duration;

on_both!(
    admin_disable_and_enable_are_audited_with_actor_target_and_request,
    a_refused_admin_action_writes_no_audit_row,
    revoking_a_session_and_deleting_the_account_are_audited,
    refresh_token_reuse_is_audited_as_a_security_event,
    granting_admin_through_the_service_is_audited_as_the_cli,
);

async fn rows(app: &TestApp) -> Vec<AuditRecord> {
    let store = authara::server::open_store(&app.config).await.unwrap();
    store
        .list_audit(&AuditFilter {
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .unwrap()
}

async fn make_admin(app: &TestApp, local: &str) -> (String, uuid::Uuid) {
    let boss = app.signed_up(local).await;
    authara::server::cli_account_service(&app.config)
        .await
        .unwrap()
        .set_admin_by_email(&Actor::Cli, &boss, true)
        .await
        .unwrap();
    assert_eq!(
        app.post_api("/auth/api/v1/sessions/refresh?audience=admin")
            .await
            .status(),
        200
    );
    let (_, user) = app.user().await;
    (boss, user["id"].as_str().unwrap().parse().unwrap())
}

async fn admin_disable_and_enable_are_audited_with_actor_target_and_request(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.signup_elsewhere("target").await;
    let store = authara::server::open_store(&app.config).await.unwrap();
    let target = store
        .find_user_by_email(&email("target"))
        .await
        .unwrap()
        .unwrap();
    let (_, admin) = make_admin(&app, "auditor").await;
    app.clock.advance(Duration::seconds(1));
    let res = app
        .post_form(&format!("/auth/admin/users/{}/disable", target.id), &[])
        .await;
    assert_eq!(res.status(), 303);
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    app.clock.advance(Duration::seconds(1));
    let res = app
        .post_form(&format!("/auth/admin/users/{}/enable", target.id), &[])
        .await;
    assert_eq!(res.status(), 303);
    // The grant was written by the CLI's service on the system clock, the rest on the test's
    // clock: compare the order of the server's rows only.
    let all = rows(&app).await;
    let (grants, rows): (Vec<_>, Vec<_>) = all
        .into_iter()
        .partition(|r| r.action == "user.admin_granted");
    let actions: Vec<&str> = rows.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["user.enabled", "user.disabled"], "newest first");
    assert_eq!(grants.len(), 1);
    let disabled = &rows[1];
    assert_eq!(disabled.actor_user_id, Some(admin));
    assert_eq!(disabled.target_user_id, Some(target.id));
    assert_eq!(
        disabled.target_email.as_deref(),
        Some(target.email.as_str())
    );
    assert_eq!(disabled.metadata["sessions_revoked"], "all");
    assert_eq!(disabled.metadata["via"], "user");
    assert_eq!(disabled.context.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        disabled.context.user_agent.as_deref(),
        Some("authara-tests/1.0")
    );
    assert_eq!(
        disabled.context.request_id.as_deref(),
        Some(request_id.as_str())
    );
    // The CLI grant names no actor and says it was the command line.
    assert_eq!(grants[0].actor_user_id, None);
    assert_eq!(grants[0].metadata["via"], "cli");
    assert_eq!(grants[0].target_user_id, Some(admin));
}

async fn a_refused_admin_action_writes_no_audit_row(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.signup_elsewhere("victim").await;
    let store = authara::server::open_store(&app.config).await.unwrap();
    let victim = store
        .find_user_by_email(&email("victim"))
        .await
        .unwrap()
        .unwrap();
    app.signed_up("not.admin").await;
    let disable = format!("/auth/admin/users/{}/disable", victim.id);
    assert_eq!(app.post_form(&disable, &[]).await.status(), 403);
    make_admin(&app, "admin.now").await;
    // Without the CSRF token: refused, no row.
    assert_eq!(app.post_form_raw(&disable, &[]).await.status(), 403);
    // An unknown user: 404, no row.
    let unknown = format!("/auth/admin/users/{}/disable", uuid::Uuid::new_v4());
    assert_eq!(app.post_form(&unknown, &[]).await.status(), 404);
    let actions: Vec<String> = rows(&app).await.into_iter().map(|r| r.action).collect();
    assert_eq!(actions, ["user.admin_granted"]);
}

async fn revoking_a_session_and_deleting_the_account_are_audited(b: Backend) {
    let app = TestApp::spawn(b).await;
    let e = app.signed_up("leaver").await;
    let (_, user) = app.user().await;
    let id: uuid::Uuid = user["id"].as_str().unwrap().parse().unwrap();
    // A second session of the same user, from another browser, revoked from the account page.
    let other = app.fresh_client();
    let csrf = "c".repeat(43);
    let res = other
        .post(app.url("/auth/login"))
        .header("cookie", format!("authara_csrf={csrf}"))
        .form(&[
            ("email", e.as_str()),
            ("password", "correct horse battery"),
            ("csrf_token", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let store = authara::server::open_store(&app.config).await.unwrap();
    let now = authara_core::clock::Clock::now(&*app.clock);
    let sessions = store.list_live_sessions(id, now).await.unwrap();
    assert_eq!(sessions.len(), 2);
    let access = app.cookie("authara_access").unwrap();
    let mine = crate::helpers::claims(&access)["sid"]
        .as_str()
        .map(str::to_owned);
    let second = sessions
        .iter()
        .find(|s| Some(s.id.to_string()) != mine)
        .map(|s| s.id)
        .unwrap_or(sessions[0].id);
    let res = app
        .post_form(&format!("/auth/sessions/{second}/revoke"), &[])
        .await;
    assert_eq!(res.status(), 303);
    app.clock.advance(Duration::seconds(1));
    // Someone else's or an unknown session: 404 and no row.
    let res = app
        .post_form(
            &format!("/auth/sessions/{}/revoke", uuid::Uuid::new_v4()),
            &[],
        )
        .await;
    assert_eq!(res.status(), 404);
    assert_eq!(app.post_form("/auth/user/delete", &[]).await.status(), 303);
    let rows = rows(&app).await;
    let actions: Vec<&str> = rows.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["user.deleted", "user.session_revoked"]);
    assert_eq!(rows[1].metadata["session_id"], second.to_string());
    assert_eq!(rows[1].actor_user_id, Some(id));
    // The row outlives the user and still names them.
    assert!(store.find_user_by_id(id).await.unwrap().is_none());
    assert_eq!(rows[0].target_email.as_deref(), Some(e.as_str()));
    let by_email = store
        .list_audit(&AuditFilter {
            email: Some(e.clone()),
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(by_email.len(), 2);
}

async fn refresh_token_reuse_is_audited_as_a_security_event(b: Backend) {
    let app = TestApp::spawn_with(
        b,
        &[
            ("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", "always"),
            ("AUTHARA_REFRESH_TOKEN_REUSE_GRACE", "10s"),
        ],
    )
    .await;
    let e = app.signed_up("stolen").await;
    let before = app.cookie("authara_refresh").unwrap();
    assert_eq!(
        app.post_api("/auth/api/v1/sessions/refresh").await.status(),
        200
    );
    app.clock.advance(Duration::seconds(11));
    app.set_cookie("authara_refresh", &before);
    assert_eq!(
        app.post_api("/auth/api/v1/sessions/refresh").await.status(),
        401
    );
    let rows = rows(&app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].action, "session.refresh_token_reuse_detected");
    assert_eq!(rows[0].target_email.as_deref(), Some(e.as_str()));
    assert_eq!(rows[0].actor_user_id, None);
    assert_eq!(rows[0].metadata["via"], "system");
    assert!(rows[0].metadata["session_id"].is_string());
}

async fn granting_admin_through_the_service_is_audited_as_the_cli(b: Backend) {
    let app = TestApp::spawn(b).await;
    let e = app.signed_up("promoted").await;
    let service = authara::server::cli_account_service(&app.config)
        .await
        .unwrap();
    service
        .set_admin_by_email(&Actor::Cli, &e, true)
        .await
        .unwrap();
    service
        .set_admin_by_email(&Actor::Cli, &e, false)
        .await
        .unwrap();
    // An unknown email changes nothing and writes nothing.
    assert!(service
        .set_admin_by_email(&Actor::Cli, &email("nobody"), true)
        .await
        .is_err());
    let actions: Vec<String> = rows(&app).await.into_iter().map(|r| r.action).collect();
    assert_eq!(actions, ["user.admin_revoked", "user.admin_granted"]);
}

/// `authara admin grant` and `authara audit list`, run as an operator would.
#[test]
fn the_cli_grant_is_audited_and_audit_list_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("a.db").display());
    let env = [
        ("DATABASE_URL", db.as_str()),
        ("AUTHARA_AUTO_MIGRATE", "true"),
        ("AUTHARA_PASSWORD_HASH_MEMORY_KIB", "256"),
        ("AUTHARA_PASSWORD_HASH_ITERATIONS", "1"),
    ];
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Create the user through the service, as signup would.
    rt.block_on(async {
        let mut vars: std::collections::HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        vars.insert("AUTHARA_HTTP_ADDR".into(), "127.0.0.1:0".into());
        let config = authara::config::Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
        let service = authara::server::cli_account_service(&config).await.unwrap();
        service
            .create_user(
                &authara_core::domain::Email::parse(&email("op")).unwrap(),
                None,
            )
            .await
            .unwrap();
    });
    let out = crate::cli::run(dir.path(), &["admin", "grant", &email("op")], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = crate::cli::run(
        dir.path(),
        &[
            "audit",
            "list",
            "--user",
            &email("OP"),
            "--since",
            "1h",
            "--json",
        ],
        &env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
    assert_eq!(rows[0]["action"], "user.admin_granted");
    assert_eq!(rows[0]["target_email"], email("op"));
    assert_eq!(rows[0]["metadata"]["via"], "cli");
    let out = crate::cli::run(dir.path(), &["audit", "list"], &env);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("user.admin_granted") && text.contains("actor=cli"),
        "{text}"
    );
    let out = crate::cli::run(
        dir.path(),
        &["audit", "list", "--user", &email("someone.else")],
        &env,
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "no audit events"
    );
    let out = crate::cli::run(dir.path(), &["audit", "list", "--since", "soon"], &env);
    assert!(!out.status.success());
}

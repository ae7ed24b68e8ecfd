//! Changing the password: the HTML form (`/auth/providers/password/change`) and
//! `PUT /auth/api/v1/users/password`. A change signs out every other session (whoever holds a
//! stolen one is out), keeps the caller's, never trims, and guesses at the current password are
//! limited like login attempts.

use crate::dbstate;
use crate::helpers::{email, free_port, set_cookie, Backend, TestApp};
use crate::on_both;
use authara::config::DatabaseConfig;
use authara_core::audit::AuditFilter;
use reqwest::Response;
use serde_json::{json, Value};
use sqlx::Connection as _;

/// The password every test account signs up with (`TestApp::signed_up`).
pub(crate) const PASSWORD: &str = "correct horse battery";
const CHANGE: &str = "/auth/providers/password/change";
const API: &str = "/auth/api/v1/users/password";

on_both!(
    a_change_signs_out_every_other_session_and_keeps_this_one,
    the_json_change_needs_the_current_password_and_signs_out_the_others,
    refused_changes_are_422_pages_and_change_nothing,
    refused_json_changes_are_the_error_envelope_and_change_nothing,
    passwords_are_used_exactly_as_typed,
    current_password_guesses_count_like_login_attempts,
    an_account_without_a_password_sets_one_without_a_current_password,
    a_change_is_audited_and_publishes_user_updated,
);

/// Another browser's session of a user: its cookies.
pub(crate) struct Device {
    pub access: String,
    pub refresh: String,
}

/// The value a response sets for a cookie.
fn cookie_value(res: &Response, name: &str) -> String {
    let header = set_cookie(res.headers(), name).unwrap_or_else(|| panic!("{name} not set"));
    header
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches(&format!("{name}="))
        .to_owned()
}

/// Logs in from another browser (a fresh client that never loaded a page).
pub(crate) async fn login_elsewhere(app: &TestApp, email: &str, password: &str) -> Device {
    let res = app.login_in_another_browser(email, password).await;
    assert_eq!(res.status(), 303, "login elsewhere");
    Device {
        access: cookie_value(&res, "authara_access"),
        refresh: cookie_value(&res, "authara_refresh"),
    }
}

/// The status of a JSON refresh with only this refresh token (and a CSRF pair).
pub(crate) async fn refresh_status(app: &TestApp, refresh: &str) -> u16 {
    let csrf = "r".repeat(43);
    app.fresh_client()
        .post(app.url("/auth/api/v1/sessions/refresh"))
        .header(
            "cookie",
            format!("authara_refresh={refresh}; authara_csrf={csrf}"),
        )
        .header("x-csrf-token", csrf)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Asserts the device's session is over: its access token is refused at once and its refresh
/// token refreshes no more.
pub(crate) async fn assert_signed_out(app: &TestApp, device: &Device) {
    assert_eq!(app.user_status_with(&device.access).await, 401, "access");
    assert_eq!(refresh_status(app, &device.refresh).await, 401, "refresh");
}

/// Asserts the device's session is alive.
pub(crate) async fn assert_signed_in(app: &TestApp, device: &Device) {
    assert_eq!(app.user_status_with(&device.access).await, 200, "access");
}

/// The login status of `email` with `password`, from another browser.
async fn login_status(app: &TestApp, email: &str, password: &str) -> u16 {
    app.login_in_another_browser(email, password)
        .await
        .status()
        .as_u16()
}

/// Posts the HTML form.
async fn change(app: &TestApp, current: &str, new: &str, confirm: &str) -> Response {
    app.post_form(
        CHANGE,
        &[
            ("current_password", current),
            ("new_password", new),
            ("confirm_password", confirm),
        ],
    )
    .await
}

/// `PUT /auth/api/v1/users/password` with a JSON body and the CSRF header.
pub(crate) async fn put_password(app: &TestApp, body: &Value) -> Response {
    let csrf = app.csrf().await;
    app.client
        .put(app.url(API))
        .header("x-csrf-token", csrf)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The error envelope's code and message.
pub(crate) async fn error_of(res: Response) -> (u16, String, String) {
    let status = res.status().as_u16();
    assert_eq!(res.headers()["content-type"], "application/json");
    let body: Value = res.json().await.unwrap();
    (
        status,
        body["error"]["code"].as_str().unwrap().to_owned(),
        body["error"]["message"].as_str().unwrap().to_owned(),
    )
}

async fn a_change_signs_out_every_other_session_and_keeps_this_one(b: Backend) {
    let app = TestApp::spawn(b).await;
    let e = app.signed_up("stolen").await;
    // Someone else holds a session of this account (a stolen one, or a forgotten laptop).
    let thief = login_elsewhere(&app, &e, PASSWORD).await;
    let laptop = login_elsewhere(&app, &e, PASSWORD).await;
    assert_signed_in(&app, &thief).await;

    let page = app.get(CHANGE).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    for needle in [
        r#"action="/auth/providers/password/change""#,
        r#"name="current_password""#,
        r#"name="new_password""#,
        r#"name="confirm_password""#,
        r#"name="csrf_token""#,
    ] {
        assert!(html.contains(needle), "{needle} missing");
    }

    let new = "a much better passphrase";
    let res = change(&app, PASSWORD, new, new).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/auth/account");
    assert_eq!(res.headers()["hx-redirect"], "/auth/account");

    assert_signed_out(&app, &thief).await;
    assert_signed_out(&app, &laptop).await;
    // This browser stays signed in and can still refresh.
    assert_eq!(app.user().await.0, 200);
    assert_eq!(
        app.post_api("/auth/api/v1/sessions/refresh").await.status(),
        200
    );
    assert_eq!(app.get("/auth/account").await.status(), 200);
    assert_eq!(login_status(&app, &e, PASSWORD).await, 422, "old password");
    assert_eq!(login_status(&app, &e, new).await, 303, "new password");

    // htmx gets the redirect as a header.
    let csrf = app.csrf().await;
    let res = app
        .client
        .post(app.url(CHANGE))
        .header("hx-request", "true")
        .form(&[
            ("current_password", new),
            ("new_password", PASSWORD),
            ("confirm_password", PASSWORD),
            ("csrf_token", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["hx-redirect"], "/auth/account");
}

async fn the_json_change_needs_the_current_password_and_signs_out_the_others(b: Backend) {
    let app = TestApp::spawn(b).await;
    let e = app.signed_up("api-change").await;
    let other = login_elsewhere(&app, &e, PASSWORD).await;
    let new = "another fine passphrase";

    // A stolen access token alone cannot replace the password.
    let (status, code, message) =
        error_of(put_password(&app, &json!({ "password": new })).await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_request"));
    assert!(message.contains("current_password"), "{message}");
    let res = put_password(
        &app,
        &json!({ "password": new, "current_password": "not the password" }),
    )
    .await;
    let (status, code, message) = error_of(res).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"));
    assert_eq!(message, "Current password is incorrect.");
    assert_signed_in(&app, &other).await;
    assert_eq!(login_status(&app, &e, PASSWORD).await, 303, "unchanged");

    let res = put_password(
        &app,
        &json!({ "password": new, "current_password": PASSWORD }),
    )
    .await;
    assert_eq!(res.status(), 204);
    assert!(set_cookie(res.headers(), "authara_access").is_none());
    assert_eq!(res.text().await.unwrap(), "");
    assert_signed_out(&app, &other).await;
    assert_eq!(app.user().await.0, 200, "the caller's session survives");
    assert_eq!(login_status(&app, &e, new).await, 303);
    assert_eq!(login_status(&app, &e, PASSWORD).await, 422);
}

async fn refused_changes_are_422_pages_and_change_nothing(b: Backend) {
    let app = TestApp::spawn(b).await;
    let e = app.signed_up("refused").await;
    let other = login_elsewhere(&app, &e, PASSWORD).await;
    let before = dbstate::snapshot(&app).await;
    let good = "a perfectly good one";
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "not it at all",
            good,
            good,
            "Current password is incorrect.",
        ),
        ("", good, good, "Current password is required."),
        (PASSWORD, good, "a perfectly good on", "do not match"),
        (PASSWORD, "short", "short", "at least 8 characters"),
        (PASSWORD, "", "", "Password is required."),
        (
            PASSWORD,
            &"x".repeat(129),
            &"x".repeat(129),
            "at most 128 characters",
        ),
        (
            PASSWORD,
            "tab\tinside it",
            "tab\tinside it",
            "control characters",
        ),
        (
            PASSWORD,
            "null\0inside it",
            "null\0inside it",
            "control characters",
        ),
    ];
    for (current, new, confirm, says) in cases {
        let res = change(&app, current, new, confirm).await;
        assert_eq!(res.status(), 422, "{says}");
        let html = res.text().await.unwrap();
        assert!(html.contains(says), "{says}: {html}");
        assert!(!html.contains(PASSWORD), "a password was echoed");
        assert!(html.contains(r#"name="current_password""#));
    }
    // 128 characters is still fine, and a wrong current password in a form with a valid new
    // one changed nothing either.
    dbstate::assert_unchanged(&app, &before, "refused password changes").await;
    assert_signed_in(&app, &other).await;
    let longest = "y".repeat(128);
    assert_eq!(
        change(&app, PASSWORD, &longest, &longest).await.status(),
        303
    );
    assert_eq!(login_status(&app, &e, &longest).await, 303);

    // A form post without its CSRF token is the 403 page, and changes nothing.
    let before = dbstate::snapshot(&app).await;
    let res = app
        .post_form_raw(
            CHANGE,
            &[
                ("current_password", longest.as_str()),
                ("new_password", good),
                ("confirm_password", good),
            ],
        )
        .await;
    assert_eq!(res.status(), 403);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    dbstate::assert_unchanged(&app, &before, "a post without CSRF").await;

    // Signed out: the page and the form send the visitor to sign in.
    let stranger = app.fresh_client();
    let res = stranger.get(app.url(CHANGE)).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"],
        "/auth/login?return_to=/auth/providers/password/change"
    );
}

async fn refused_json_changes_are_the_error_envelope_and_change_nothing(b: Backend) {
    let app = TestApp::spawn(b).await;
    let e = app.signed_up("refused-api").await;
    let other = login_elsewhere(&app, &e, PASSWORD).await;
    let before = dbstate::snapshot(&app).await;
    let good = "a perfectly good one";
    for (body, says) in [
        (
            json!({ "password": "short", "current_password": PASSWORD }),
            "at least 8 characters",
        ),
        (
            json!({ "password": "x".repeat(129), "current_password": PASSWORD }),
            "at most 128 characters",
        ),
        (
            json!({ "password": "bell\u{7}in here", "current_password": PASSWORD }),
            "control characters",
        ),
        (
            json!({ "password": good, "current_password": PASSWORD, "confirm": good }),
            "does not match the API contract",
        ),
        (
            json!({ "current_password": PASSWORD }),
            "does not match the API contract",
        ),
        (
            json!({ "password": 12345678 }),
            "does not match the API contract",
        ),
        (json!([good]), "does not match the API contract"),
        (json!(good), "does not match the API contract"),
    ] {
        let (status, code, message) = error_of(put_password(&app, &body).await).await;
        assert_eq!((status, code.as_str()), (400, "invalid_request"), "{body}");
        assert!(message.contains(says), "{body}: {message}");
        assert!(!message.contains(PASSWORD));
    }
    // Not JSON, or not said to be.
    let csrf = app.csrf().await;
    for (content_type, body, says) in [
        (
            "application/json",
            "{\"password\":",
            "does not match the API contract",
        ),
        ("application/json", "", "does not match the API contract"),
        (
            "text/plain",
            r#"{"password":"whatever it is"}"#,
            "Content-Type",
        ),
        (
            "application/x-www-form-urlencoded",
            "password=whatever+it+is",
            "Content-Type",
        ),
    ] {
        let res = app
            .client
            .put(app.url(API))
            .header("x-csrf-token", &csrf)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, code, message) = error_of(res).await;
        assert_eq!((status, code.as_str()), (400, "invalid_request"), "{body}");
        assert!(message.contains(says), "{body}: {message}");
    }
    // No CSRF header: 403 csrf_invalid before anything is read.
    let res = app
        .client
        .put(app.url(API))
        .json(&json!({ "password": good, "current_password": PASSWORD }))
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_of(res).await;
    assert_eq!((status, code.as_str()), (403, "csrf_invalid"));
    // Not signed in: 401.
    let csrf = "n".repeat(43);
    let res = app
        .fresh_client()
        .put(app.url(API))
        .header("cookie", format!("authara_csrf={csrf}"))
        .header("x-csrf-token", &csrf)
        .json(&json!({ "password": good }))
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_of(res).await;
    assert_eq!((status, code.as_str()), (401, "unauthorized"));
    // Another method on the route: 405.
    let res = app
        .client
        .post(app.url(API))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    dbstate::assert_unchanged(&app, &before, "refused JSON password changes").await;
    assert_signed_in(&app, &other).await;
}

async fn passwords_are_used_exactly_as_typed(b: Backend) {
    let app = TestApp::spawn(b).await;
    let e = app.signed_up("spaces").await;
    let spaced = "  spaced out words  ";
    assert_eq!(change(&app, PASSWORD, spaced, spaced).await.status(), 303);
    assert_eq!(login_status(&app, &e, spaced.trim()).await, 422, "trimmed");
    assert_eq!(login_status(&app, &e, spaced).await, 303, "as typed");
    // The current password is compared as typed too.
    let next = " leading space only";
    let res = change(&app, spaced.trim(), next, next).await;
    assert_eq!(res.status(), 422);
    let res = put_password(
        &app,
        &json!({ "password": next, "current_password": spaced }),
    )
    .await;
    assert_eq!(res.status(), 204);
    assert_eq!(login_status(&app, &e, next.trim()).await, 422);
    assert_eq!(login_status(&app, &e, next).await, 303);
}

async fn current_password_guesses_count_like_login_attempts(b: Backend) {
    let app = TestApp::spawn_with(
        b,
        &[
            ("AUTHARA_RATE_LIMIT_LOGIN_EMAIL_LIMIT", "2"),
            ("AUTHARA_RATE_LIMIT_LOGIN_EMAIL_WINDOW", "1h"),
        ],
    )
    .await;
    let e = app.signed_up("guesser").await;
    // Successful changes give their count back: any number of them spend nothing.
    let other = "the second password";
    for (current, new) in [(PASSWORD, other), (other, PASSWORD), (PASSWORD, other)] {
        assert_eq!(change(&app, current, new, new).await.status(), 303);
    }
    // Wrong guesses spend the email's login budget...
    for _ in 0..2 {
        assert_eq!(
            change(&app, "a wrong guess!", PASSWORD, PASSWORD)
                .await
                .status(),
            422
        );
    }
    // ... after which even the right password is refused, here, on the JSON route and on the
    // login form, before anything is checked.
    let before = dbstate::snapshot(&app).await;
    let res = change(&app, other, PASSWORD, PASSWORD).await;
    assert_eq!(res.status(), 429);
    let after: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&after), "Retry-After {after}");
    assert!(res.text().await.unwrap().contains("Too many attempts"));
    let res = put_password(
        &app,
        &json!({ "password": PASSWORD, "current_password": other }),
    )
    .await;
    assert!(res.headers().contains_key("retry-after"));
    let (status, code, _) = error_of(res).await;
    assert_eq!((status, code.as_str()), (429, "rate_limited"));
    assert_eq!(login_status(&app, &e, other).await, 429);
    dbstate::assert_unchanged(&app, &before, "rate-limited changes").await;
    // When the window has passed, the right password works again.
    app.clock.advance(time::Duration::minutes(61));
    assert_eq!(change(&app, other, PASSWORD, PASSWORD).await.status(), 303);
}

/// Runs one statement on the test's database, behind the server's back.
async fn execute(app: &TestApp, sql: &str) {
    match &app.config.database {
        DatabaseConfig::Sqlite { url } => {
            let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::query(sql).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
        DatabaseConfig::Postgres(pg) => {
            let url = pg.url.as_ref().expect("tests use DATABASE_URL").expose();
            let schema = pg.schema.as_deref().expect("tests use a schema");
            let opts: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
            let opts = opts.options([("search_path", schema)]);
            let mut conn = sqlx::PgConnection::connect_with(&opts).await.unwrap();
            sqlx::query(sql).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
    }
}

async fn an_account_without_a_password_sets_one_without_a_current_password(b: Backend) {
    // The password is removed behind the server's back (as for an account made by Google
    // sign-in): no session cache, so the server sees it at once.
    let app = TestApp::spawn_with(b, &[("AUTHARA_SESSION_CACHE_SECONDS", "0")]).await;
    let e = app.signed_up("no-password").await;
    let other = login_elsewhere(&app, &e, PASSWORD).await;
    execute(&app, "UPDATE users SET password_hash = NULL").await;

    let account = app.get("/auth/account").await.text().await.unwrap();
    assert!(account.contains("Set a password"), "{account}");
    let page = app.get(CHANGE).await.text().await.unwrap();
    assert!(page.contains("Set a password"));
    assert!(!page.contains(r#"name="current_password""#));

    let new = "my first password";
    let res = app
        .post_form(CHANGE, &[("new_password", new), ("confirm_password", new)])
        .await;
    assert_eq!(res.status(), 303);
    assert_signed_out(&app, &other).await;
    assert_eq!(app.user().await.0, 200);
    assert_eq!(login_status(&app, &e, new).await, 303);
    let account = app.get("/auth/account").await.text().await.unwrap();
    assert!(account.contains("Change password"));

    // Once it has one, the JSON route wants it too.
    let (status, _, _) =
        error_of(put_password(&app, &json!({ "password": "yet another one" })).await).await;
    assert_eq!(status, 400);
    // And without one again, the JSON route sets one with no current password.
    execute(&app, "UPDATE users SET password_hash = NULL").await;
    let res = put_password(&app, &json!({ "password": "set through the API" })).await;
    assert_eq!(res.status(), 204);
    assert_eq!(login_status(&app, &e, "set through the API").await, 303);
}

async fn a_change_is_audited_and_publishes_user_updated(b: Backend) {
    // Webhooks on, towards a port nothing listens on: the outbox row is what counts here.
    let url = format!("http://127.0.0.1:{}/hook", free_port());
    let app = TestApp::spawn_with(
        b,
        &[
            ("AUTHARA_WEBHOOK_URL", url.as_str()),
            (
                "AUTHARA_WEBHOOK_SECRET",
                "test-webhook-secret-0123456789abcdef",
            ),
            ("AUTHARA_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true"),
        ],
    )
    .await;
    app.signed_up("audited").await;
    let (_, user) = app.user().await;
    let id: uuid::Uuid = user["id"].as_str().unwrap().parse().unwrap();
    let store = authara::server::open_store(&app.config).await.unwrap();
    let events_before = store.list_events(100).await.unwrap().len();

    let new = "an audited passphrase";
    let res = change(&app, PASSWORD, new, new).await;
    assert_eq!(res.status(), 303);
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_owned();

    let rows = store
        .list_audit(&AuditFilter {
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    let changed: Vec<_> = rows
        .iter()
        .filter(|r| r.action == "user.password_changed")
        .collect();
    assert_eq!(changed.len(), 1, "{rows:?}");
    let row = changed[0];
    assert_eq!(row.actor_user_id, Some(id));
    assert_eq!(row.target_user_id, Some(id));
    assert_eq!(row.target_email.as_deref(), Some(email("audited").as_str()));
    assert_eq!(row.context.request_id.as_deref(), Some(request_id.as_str()));
    assert_eq!(row.context.user_agent.as_deref(), Some("authara-tests/1.0"));
    assert_eq!(row.metadata["sessions_revoked"], "others");
    let text = row.metadata.to_string();
    assert!(!text.contains(new) && !text.contains("argon2"), "{text}");

    let events = store.list_events(100).await.unwrap();
    assert_eq!(events.len(), events_before + 1);
    let updated: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == "user.updated")
        .collect();
    assert_eq!(updated.len(), 1);
    let payload: Value = serde_json::from_str(&updated[0].payload).unwrap();
    assert_eq!(payload["data"]["user_id"], id.to_string(), "{payload}");
    assert!(!updated[0].payload.contains(new));

    // A refused change writes neither.
    assert_eq!(
        change(&app, "wrong wrong wrong", new, new).await.status(),
        422
    );
    assert_eq!(
        store.list_events(100).await.unwrap().len(),
        events_before + 1
    );
    let rows = store
        .list_audit(&AuditFilter {
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        rows.iter()
            .filter(|r| r.action == "user.password_changed")
            .count(),
        1
    );
}

//! CSRF and cross-origin requests, by construction: the routes are the router's own table
//! (`authara::http::route_table`), so a new state-changing route is covered the day it is added.

use crate::dbstate::{assert_unchanged, snapshot};
use crate::helpers::{claims, Backend, TestApp};
use crate::on_both;
use authara::http::{route_table, Route};
use reqwest::RequestBuilder;

on_both!(
    every_state_changing_route_refuses_a_missing_or_wrong_csrf_token,
    every_state_changing_route_refuses_another_origin_even_with_the_csrf_pair,
    our_own_origin_and_requests_without_origin_are_served,
);

/// The message of the CSRF error (`ApiError::CsrfInvalid`), on HTML pages as in JSON.
pub const CSRF_MESSAGE: &str = "Missing or invalid CSRF token.";

/// A signed-in admin holding an admin-audience token: every admin route would act for it.
pub struct Signed {
    pub app: TestApp,
    pub user_id: String,
    pub session_id: String,
    /// The organization of the token.
    pub org_id: String,
}

/// Signs up, grants admin behind the server's back, and refreshes to an admin token.
pub async fn signed_in_admin(b: Backend) -> Signed {
    let app = TestApp::spawn(b).await;
    let e = app.signed_up("chief").await;
    let store = authara::server::open_store(&app.config).await.unwrap();
    store
        .set_admin_by_email(
            &e,
            true,
            authara_core::clock::Clock::now(&*app.clock),
            authara_core::store::Effects::none(),
        )
        .await
        .unwrap();
    let res = app
        .post_api("/auth/api/v1/sessions/refresh?audience=admin")
        .await;
    assert_eq!(res.status(), 200);
    let c = claims(&app.cookie("authara_access").unwrap());
    assert_eq!(c["aud"], serde_json::json!(["admin"]));
    Signed {
        user_id: c["sub"].as_str().unwrap().to_owned(),
        session_id: c["sid"].as_str().unwrap().to_owned(),
        org_id: c["org_id"].as_str().unwrap().to_owned(),
        app,
    }
}

/// Every state-changing route of the router, with its path parameters filled in so that the
/// handler would act: `{id}` of a session route is the caller's own session, of a user route
/// the caller's own user, `{organizationID}` the organization of the caller's token (and
/// `{invitationID}` any id). A parameter
/// this does not know fails the test, to be taught here.
pub fn state_changing(s: &Signed) -> Vec<(Route, String)> {
    let routes: Vec<Route> = route_table()
        .into_iter()
        .filter(|r| r.is_state_changing() && !r.is_csrf_exempt())
        .collect();
    assert!(routes.len() >= 11, "{routes:?}");
    routes
        .into_iter()
        .map(|r| {
            let path = if r.path.starts_with("/auth/sessions/{id}/")
                || r.path == "/auth/api/v1/sessions/{id}"
            {
                r.path.replace("{id}", &s.session_id)
            } else if r.path.starts_with("/auth/admin/users/{id}/") {
                r.path.replace("{id}", &s.user_id)
            } else if r.path == "/auth/verify-challenge/{action}" {
                r.path.replace("{action}", "password-reset")
            } else if r.path.starts_with("/auth/providers/{provider}/") {
                // The account's one method: were the CSRF check missing, the unlink would still
                // be refused, but only after it; the check must answer first.
                r.path.replace("{provider}", "password")
            } else if r.path == "/auth/provider-links/confirm/{provider}" {
                r.path.replace("{provider}", "github")
            } else if r
                .path
                .starts_with("/auth/api/v1/organizations/{organizationID}")
            {
                // An invitation id the CSRF check refuses before anything looks it up.
                r.path
                    .replace("{organizationID}", &s.org_id)
                    .replace("{invitationID}", &uuid::Uuid::new_v4().to_string())
            } else {
                r.path.to_owned()
            };
            assert!(!path.contains('{'), "teach the CSRF tests {}", r.path);
            (r, path)
        })
        .collect()
}

/// Form fields every handler would act on (extra fields are ignored by the others).
pub const FIELDS: [(&str, &str); 5] = [
    ("username", "newname"),
    ("email", "other@example.com"),
    ("password", "correct horse battery"),
    ("new_password", "correct horse battery"),
    ("new_email", "other@example.com"),
];

/// Asserts the CSRF refusal: `403`, the `csrf_invalid` envelope under `/auth/api/`, an HTML
/// page naming the CSRF problem elsewhere.
pub async fn assert_csrf_refused(res: reqwest::Response, path: &str, what: &str) {
    assert_eq!(res.status(), 403, "{what}: {path}");
    let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
    let body = res.text().await.unwrap();
    if path.starts_with("/auth/api/") {
        assert!(ct.starts_with("application/json"), "{what}: {path}: {ct}");
        assert!(body.contains(r#""code":"csrf_invalid""#), "{what}: {body}");
    } else {
        assert!(ct.starts_with("text/html"), "{what}: {path}: {ct}");
        // Refused by the CSRF check itself, not by a later one.
        assert!(body.contains(CSRF_MESSAGE), "{what}: {path}: {body}");
    }
}

fn request(app: &TestApp, r: &Route, path: &str) -> RequestBuilder {
    app.client.request(r.method.clone(), app.url(path))
}

async fn every_state_changing_route_refuses_a_missing_or_wrong_csrf_token(b: Backend) {
    let s = signed_in_admin(b).await;
    let app = &s.app;
    let good = app.csrf().await;
    let wrong = "x".repeat(43);
    let before = snapshot(app).await;
    let access = app.cookie("authara_access").unwrap();
    for (r, path) in state_changing(&s) {
        let mut with_wrong: Vec<(&str, &str)> = FIELDS.to_vec();
        with_wrong.push(("csrf_token", &wrong));
        let cases = [
            ("missing", request(app, &r, &path).form(&FIELDS)),
            ("wrong field", request(app, &r, &path).form(&with_wrong)),
            (
                "wrong header",
                request(app, &r, &path)
                    .header("x-csrf-token", &wrong)
                    .form(&FIELDS),
            ),
            (
                "two headers",
                request(app, &r, &path)
                    .header("x-csrf-token", &good)
                    .header("x-csrf-token", &wrong)
                    .form(&FIELDS),
            ),
            ("no body", request(app, &r, &path)),
            (
                "no cookie",
                app.fresh_client()
                    .request(r.method.clone(), app.url(&path))
                    .header("cookie", format!("authara_access={access}"))
                    .header("x-csrf-token", &good)
                    .form(&FIELDS),
            ),
        ];
        for (what, req) in cases {
            let res = req.send().await.unwrap();
            assert_csrf_refused(res, &path, what).await;
        }
    }
    assert_unchanged(app, &before, "a request without the CSRF pair").await;
    // The session still works and nothing was renamed.
    assert_eq!(app.cookie("authara_access").unwrap(), access);
    let (status, user) = app.user().await;
    assert_eq!(status, 200);
    assert_ne!(user["username"], "newname");
}

async fn every_state_changing_route_refuses_another_origin_even_with_the_csrf_pair(b: Backend) {
    let s = signed_in_admin(b).await;
    let app = &s.app;
    let csrf = app.csrf().await;
    let ours = format!("http://{}", app.addr);
    let port = app.addr.port();
    let foreign = [
        ("origin", "https://evil.example".to_owned()),
        ("origin", "null".to_owned()),
        // Same host, other port or scheme: another origin.
        (
            "origin",
            format!("http://127.0.0.1:{}", port.wrapping_add(1)),
        ),
        ("origin", format!("https://127.0.0.1:{port}")),
        // A same-site subdomain is another origin too.
        ("origin", format!("http://app.localhost:{port}")),
        ("sec-fetch-site", "cross-site".to_owned()),
        ("sec-fetch-site", "same-site".to_owned()),
    ];
    let before = snapshot(app).await;
    for (r, path) in state_changing(&s) {
        for (name, value) in &foreign {
            let mut fields: Vec<(&str, &str)> = FIELDS.to_vec();
            fields.push(("csrf_token", &csrf));
            let res = request(app, &r, &path)
                .header(*name, value)
                .header("x-csrf-token", &csrf)
                .form(&fields)
                .send()
                .await
                .unwrap();
            assert_csrf_refused(res, &path, &format!("{name}: {value}")).await;
        }
        // Our own origin in `Origin`, but the fetch says it is cross-site: refused.
        let res = request(app, &r, &path)
            .header("origin", &ours)
            .header("sec-fetch-site", "cross-site")
            .header("x-csrf-token", &csrf)
            .send()
            .await
            .unwrap();
        assert_csrf_refused(res, &path, "cross-site fetch from our origin").await;
    }
    assert_unchanged(app, &before, "a request from another origin").await;
    assert_eq!(app.user().await.0, 200);
}

async fn our_own_origin_and_requests_without_origin_are_served(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.signed_up("own").await;
    let csrf = app.csrf().await;
    let ours = format!("http://{}", app.addr);
    assert_eq!(
        app.config.public_url, ours,
        "TestApp's PUBLIC_URL is its address"
    );
    let cases: [(&str, &[(&str, &str)]); 4] = [
        (
            "own.origin",
            &[("origin", &ours), ("sec-fetch-site", "same-origin")],
        ),
        ("own.origin.only", &[("origin", &ours)]),
        ("user.typed", &[("sec-fetch-site", "none")]),
        // curl and SDKs: no Origin, no Sec-Fetch-Site, the double-submit pair only.
        ("no.origin", &[]),
    ];
    for (name, headers) in cases {
        let mut req = app
            .client
            .post(app.url("/auth/user/username"))
            .form(&[("username", name), ("csrf_token", &csrf)]);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 303, "{name}");
        assert_eq!(app.user().await.1["username"], name);
    }
    // The JSON API likewise, with the header token.
    let res = app
        .client
        .post(app.url("/auth/api/v1/sessions/refresh"))
        .header("origin", &ours)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

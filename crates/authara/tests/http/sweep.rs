//! The malformed-request sweep: every route of the router's own table gets bad UTF-8, huge and
//! duplicate headers, duplicate cookies, JSON where a form is expected, no content type, absurd
//! lengths, NUL bodies and overlong paths, with and without a valid CSRF pair, sent whole or by
//! a client that hangs up at once. Never a 5xx, never a changed database. Raw TCP, since no HTTP client sends most of this.

use crate::dbstate::{assert_unchanged, snapshot};
use crate::helpers::{claims, Backend, TestApp};
use crate::on_both;
use crate::raw;
use authara::http::route_table;

on_both!(
    every_route_survives_malformed_requests_unchanged,
    clients_hanging_up_mid_request_never_break_later_requests,
);

/// The CSRF pair the "with CSRF" requests carry (cookie and header alike).
const TOKEN: &str = "sweepsweepsweepsweepsweepsweepsweepsweep123";

/// `AUTHARA_INTERNAL_API_TOKEN`, which every request to the internal API carries: those routes
/// are exempt from the CSRF check and answer `401` without it, before any handler reads a byte.
const INTERNAL_TOKEN: &str = "sweep-internal-sweep-internal-sweep-internal";

/// One malformed request: a name, extra header lines (each ended by CRLF), the path suffix
/// (appended to the route's path) and the body. `Content-Length` is added unless a header
/// line already sets it.
struct Case {
    name: &'static str,
    headers: Vec<u8>,
    suffix: Vec<u8>,
    body: Vec<u8>,
}

fn case(name: &'static str, headers: &[u8], suffix: &[u8], body: &[u8]) -> Case {
    Case {
        name,
        headers: headers.to_vec(),
        suffix: suffix.to_vec(),
        body: body.to_vec(),
    }
}

const FORM: &[u8] = b"Content-Type: application/x-www-form-urlencoded\r\n";

fn cases() -> Vec<Case> {
    let huge = format!("X-Filler: {}\r\n", "h".repeat(24 * 1024));
    let enormous = format!("X-Filler: {}\r\n", "h".repeat(200 * 1024));
    let many: String = (0..500).map(|i| format!("X-Many-{i}: v\r\n")).collect();
    let long_query = format!("?return_to=/{}", "q".repeat(60 * 1024));
    let long_path = format!("/{}", "p".repeat(16 * 1024));
    let form = |extra: &[u8]| [FORM, extra].concat();
    vec![
        case("plain form", FORM, b"", b"username=x&email=a&password=b"),
        // Bad UTF-8: percent-encoded and raw, in the query and the body.
        case("bad utf-8 query (escaped)", FORM, b"?return_to=%FF%FE&audience=%C0%AF", b""),
        case("bad utf-8 query (raw)", FORM, b"?return_to=/\xff\xfe", b""),
        case("bad utf-8 body (escaped)", FORM, b"", b"email=%FF&password=%C0%AF&username=%FE"),
        case("bad utf-8 body (raw)", FORM, b"", b"email=\xff\xfe&password=\xc0\xaf&username=\xfe"),
        // Bytes beyond ASCII in header values (obs-text).
        case(
            "bad utf-8 headers",
            &form(b"User-Agent: \xff\xfe\r\nHX-Request: \xff\r\nX-Request-Id: \xc0\xaf\r\nOrigin: \xff\r\n"),
            b"",
            b"username=x",
        ),
        case("bad utf-8 csrf header", &form(b"X-CSRF-Token: \xff\xfe\r\n"), b"", b""),
        case("bad utf-8 cookie", &form(b"Cookie: authara_csrf=\xff; authara_access=\xfe\r\n"), b"", b""),
        // Huge and many headers.
        case("huge header", &form(huge.as_bytes()), b"", b""),
        case("enormous header", &form(enormous.as_bytes()), b"", b""),
        case("many headers", &form(many.as_bytes()), b"", b""),
        // Duplicate headers.
        case(
            "two content types",
            &form(b"Content-Type: application/json\r\n"),
            b"",
            b"username=x",
        ),
        case("two csrf headers", &form(b"X-CSRF-Token: other\r\n"), b"", b""),
        case("two hx-request", &form(b"HX-Request: true\r\nHX-Request: false\r\n"), b"", b""),
        case("two request ids", &form(b"X-Request-Id: a\r\nX-Request-Id: b\r\n"), b"", b""),
        case(
            "two forwarded-for",
            &form(b"X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For: garbage, ::1\r\n"),
            b"",
            b"",
        ),
        case(
            "two different content lengths",
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\nContent-Length: 5\r\n",
            b"",
            b"a=b",
        ),
        // Duplicate cookies.
        case(
            "two csrf cookies",
            &form(b"Cookie: authara_csrf=aaaa; authara_csrf=bbbb\r\n"),
            b"",
            b"csrf_token=bbbb",
        ),
        case(
            "two access cookies",
            &form(b"Cookie: authara_access=garbage; authara_access=also.garbage.x\r\n"),
            b"",
            b"",
        ),
        case(
            "two refresh cookies",
            &form(b"Cookie: authara_refresh=r1\r\nCookie: authara_refresh=r2\r\n"),
            b"",
            b"",
        ),
        // JSON where a form is expected, no content type, a strange one.
        case(
            "json body",
            b"Content-Type: application/json\r\n",
            b"",
            br#"{"email":"a@b.c","password":"correct horse","username":"json","csrf_token":"x"}"#,
        ),
        case("no content type", b"", b"", b"username=x&email=a&password=b"),
        case("multipart", b"Content-Type: multipart/form-data; boundary=x\r\n", b"", b"--x--"),
        // Absurd and wrong lengths.
        case(
            "absurd content length",
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 99999999999999999999999\r\n",
            b"",
            b"a=b",
        ),
        case(
            "huge content length",
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000000000000\r\n",
            b"",
            b"a=b",
        ),
        case(
            "negative content length",
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: -1\r\n",
            b"",
            b"",
        ),
        case(
            "short body",
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n",
            b"",
            b"a=b",
        ),
        case(
            "chunked garbage",
            b"Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n",
            b"",
            b"zz\r\nnot a chunk\r\n",
        ),
        case("nul body", FORM, b"", &[0u8; 4096]),
        case("nul in the query", FORM, b"?return_to=%00&audience=%00", b""),
        case("oversized body", FORM, b"", &vec![b'a'; 70 * 1024]),
        // Over-long path and query.
        case("long query", FORM, long_query.as_bytes(), b""),
        case("long path", FORM, long_path.as_bytes(), b""),
    ]
}

async fn every_route_survives_malformed_requests_unchanged(b: Backend) {
    // `multi` mode with the management routes on and the internal API enabled: every
    // organization handler is reachable; and a code-flow provider (the test one), for the
    // sign-in routes.
    let idp = crate::idp::TestIdp::start().await;
    let app = crate::code_flow::spawn(
        b,
        &idp,
        &[
            ("AUTHARA_ORG_MODE", "multi"),
            ("AUTHARA_PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED", "true"),
            ("AUTHARA_INTERNAL_API_TOKEN", INTERNAL_TOKEN),
        ],
    )
    .await;
    // A real user, session and organization, whose ids fill the path parameters: the handlers
    // would act on them, were the requests not malformed or unauthenticated.
    let access = app.signup_elsewhere("swept").await;
    let c = claims(&access);
    let (user_id, session_id) = (c["sub"].as_str().unwrap(), c["sid"].as_str().unwrap());
    let org_id = c["org_id"].as_str().unwrap();
    // And an invitation of that organization, for the invitation routes.
    let invitation_id = sweep_invitation(&app, org_id.parse().unwrap()).await;
    // The only enabled admin: `DELETE /auth/internal/v1/users/{userID}` needs no body, so a
    // request with none is well-formed there; it must be refused (`last_active_admin`) for the
    // sweep's database to stay unchanged. No request of the sweep carries an access token, so
    // the admin routes still refuse them all.
    app.store()
        .await
        .set_admin_by_email(
            &crate::helpers::email("swept"),
            true,
            authara_core::clock::Clock::now(&*app.clock),
            authara_core::store::Effects::none(),
        )
        .await
        .unwrap();
    let before = snapshot(&app).await;
    let host = app.addr.to_string();
    let mut sent = 0;
    let mut statuses: std::collections::BTreeMap<Option<u16>, usize> = Default::default();
    for route in route_table() {
        let path = route
            .path
            .replace("/sessions/{id}", &format!("/sessions/{session_id}"))
            .replace("/users/{id}/", &format!("/users/{user_id}/"))
            .replace("{organizationID}", org_id)
            .replace("{userID}", user_id)
            .replace("{invitationID}", &invitation_id)
            .replace(
                "/verify-challenge/{action}",
                "/verify-challenge/password-reset",
            )
            .replace("/oauth/{provider}/", "/oauth/acme/")
            .replace("/providers/{provider}/", "/providers/acme/")
            .replace("/confirm/{provider}", "/confirm/acme");
        assert!(!path.contains('{'), "teach the sweep {}", route.path);
        for c in cases() {
            for with_csrf in [false, true] {
                let mut head = Vec::new();
                head.extend_from_slice(route.method.as_str().as_bytes());
                head.push(b' ');
                if c.name == "long path" {
                    // The long segment goes into the route, where a parameter may take it.
                    let at = path.rfind('/').unwrap_or(0);
                    head.extend_from_slice(&path.as_bytes()[..at]);
                    head.extend_from_slice(&c.suffix);
                    head.extend_from_slice(&path.as_bytes()[at..]);
                } else {
                    head.extend_from_slice(path.as_bytes());
                    head.extend_from_slice(&c.suffix);
                }
                head.extend_from_slice(b" HTTP/1.1\r\n");
                head.extend_from_slice(format!("Host: {host}\r\n").as_bytes());
                head.extend_from_slice(&c.headers);
                if route.path.starts_with("/auth/internal/") {
                    head.extend_from_slice(
                        format!("Authorization: Bearer {INTERNAL_TOKEN}\r\n").as_bytes(),
                    );
                }
                if with_csrf {
                    head.extend_from_slice(format!("Cookie: authara_csrf={TOKEN}\r\n").as_bytes());
                    head.extend_from_slice(format!("X-CSRF-Token: {TOKEN}\r\n").as_bytes());
                }
                let sets_length = String::from_utf8_lossy(&c.headers)
                    .to_ascii_lowercase()
                    .contains("content-length:")
                    || String::from_utf8_lossy(&c.headers)
                        .to_ascii_lowercase()
                        .contains("transfer-encoding:");
                if !sets_length {
                    head.extend_from_slice(
                        format!("Content-Length: {}\r\n", c.body.len()).as_bytes(),
                    );
                }
                let what = format!(
                    "{} {} [{}] csrf={with_csrf}",
                    route.method, route.path, c.name
                );
                // A body shorter than announced never completes: that client can only give up.
                if c.name != "short body" {
                    let r = raw::send(app.addr, &head, &c.body).await;
                    raw::assert_no_5xx(&r, &what);
                    *statuses.entry(r.status).or_default() += 1;
                    sent += 1;
                }
                // The same from a client that hangs up at once: the server drops the request
                // wherever it was, which must not break a later one.
                let r = raw::send_and_hang_up(app.addr, &head, &c.body).await;
                raw::assert_no_5xx(&r, &format!("{what} (hung up)"));
            }
        }
    }
    assert!(sent > 500, "{sent}");
    // The sweep reached the handlers: most requests were answered, and with many statuses.
    eprintln!("sweep statuses: {statuses:?}");
    let unanswered = statuses.get(&None).copied().unwrap_or(0);
    assert!(unanswered * 5 < sent, "{statuses:?}");
    for expected in [200, 303, 400, 403, 404, 413, 422] {
        assert!(
            statuses.contains_key(&Some(expected)),
            "no {expected}: {statuses:?}"
        );
    }
    assert_unchanged(&app, &before, "the malformed-request sweep").await;
    // The user's session is untouched and the server still serves.
    assert_eq!(app.user_status_with(&access).await, 200);
    assert_eq!(app.get("/auth/health").await.status(), 200);
}

async fn clients_hanging_up_mid_request_never_break_later_requests(b: Backend) {
    // Each refresh opens a write transaction; a client that hangs up used to cancel it halfway
    // (on SQLite the pooled connection was then left inside a transaction, and a later request
    // answered 500). Handlers now run to completion whoever stops listening.
    let app = TestApp::spawn(b).await;
    let host = app.addr.to_string();
    let head = format!(
        "POST /auth/api/v1/sessions/refresh HTTP/1.1\r\nHost: {host}\r\n\
         Cookie: authara_csrf={TOKEN}; authara_refresh=not-a-token\r\n\
         X-CSRF-Token: {TOKEN}\r\nContent-Length: 0\r\n"
    );
    for i in 0..300 {
        let _ = raw::send_and_hang_up(app.addr, head.as_bytes(), b"").await;
        if i % 10 == 0 {
            let r = raw::send(app.addr, head.as_bytes(), b"").await;
            assert_eq!(r.status, Some(401), "after {i} hang-ups: {}", r.text);
        }
    }
    let r = raw::send(app.addr, head.as_bytes(), b"").await;
    assert_eq!(r.status, Some(401), "{}", r.text);
}

/// A revoked invitation of `org` (through the store: the sweep's organization is personal,
/// which the service would refuse), with its id: the invitation routes look it up and refuse
/// it (a resend takes no body, so a malformed one would otherwise be a well-formed resend).
async fn sweep_invitation(app: &TestApp, org: uuid::Uuid) -> String {
    use authara_core::clock::Clock as _;
    let now = app.clock.now();
    let id = uuid::Uuid::new_v4();
    let new = authara_core::store::NewInvitation {
        id,
        organization_id: org,
        email: "invited@example.com".into(),
        role: authara_core::org::OrgRole::Member,
        metadata: serde_json::json!({}),
        token_hash: "ab".repeat(32),
        invited_by_user_id: None,
        created_at: now,
        expires_at: now + time::Duration::days(7),
        notice: None,
    };
    let store = app.store().await;
    store
        .create_invitation(new, now, authara_core::store::Effects::none())
        .await
        .unwrap();
    store
        .revoke_invitation(
            org,
            id,
            None,
            now,
            Box::new(|_| authara_core::store::Effects::none()),
        )
        .await
        .unwrap();
    id.to_string()
}

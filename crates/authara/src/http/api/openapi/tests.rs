//! The document against itself (valid, every `$ref` resolves), against the router (every API
//! route documented, nothing documented that is not served, CSRF where the router checks it),
//! against the server's own error responses, and against upstream's contract.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;
use crate::http::route_table;
use serde_json::Value;
use std::collections::BTreeSet;

fn doc() -> Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap()
}

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

/// Every `(method, path, operation)` of the document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            if let Some(op) = item.get(*m) {
                out.push((m.to_uppercase(), path.clone(), op.clone()));
            }
        }
    }
    out
}

/// Follows `$ref`s (local ones only) until a value that is not a reference.
fn resolve<'a>(doc: &'a Value, mut v: &'a Value) -> &'a Value {
    for _ in 0..16 {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let pointer = r
                    .strip_prefix('#')
                    .unwrap_or_else(|| panic!("non-local $ref {r}"));
                v = doc
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("$ref {r} resolves to nothing"));
            }
            None => return v,
        }
    }
    panic!("$ref chain too long");
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r.clone());
            }
            m.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn the_document_is_openapi_3_1_with_our_title_and_version_and_every_ref_resolves() {
    let doc = doc();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "Authara");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(refs.len() > 20, "suspiciously few $refs: {refs:?}");
    for r in &refs {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("non-local $ref {r}"));
        assert!(
            doc.pointer(pointer).is_some(),
            "$ref {r} resolves to nothing"
        );
    }
    // Every operation has an id, a summary, a tag that is declared, and at least one success.
    let tags: BTreeSet<String> = doc["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    let mut ids = BTreeSet::new();
    for (m, p, op) in operations(&doc) {
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{m} {p}: no operationId"));
        assert!(ids.insert(id.to_owned()), "operationId {id} twice");
        assert!(op["summary"].is_string(), "{m} {p}: no summary");
        for t in strings(&op["tags"]) {
            assert!(tags.contains(&t), "{m} {p}: undeclared tag {t}");
        }
        let responses = op["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{m} {p}: no success response"
        );
        // `{name}` in the path is a declared path parameter, and nothing else is.
        let in_path: BTreeSet<String> = p
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}').map(str::to_owned))
            .collect();
        let declared: BTreeSet<String> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|prm| resolve(&doc, prm))
            .filter(|prm| prm["in"] == "path")
            .map(|prm| prm["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(in_path, declared, "{m} {p}: path parameters");
    }
}

#[test]
fn a_broken_ref_is_caught() {
    // The resolver above must be able to fail, or the test before proves nothing.
    let doc = json!({"components": {"schemas": {"A": {"type": "string"}}}});
    assert!(doc.pointer("/components/schemas/A").is_some());
    assert!(doc.pointer("/components/schemas/B").is_none());
    let r = std::panic::catch_unwind(|| {
        resolve(&doc, &json!({"$ref": "#/components/schemas/B"}));
    });
    assert!(r.is_err());
}

/// The coverage test: what forces every new API route into the document.
#[test]
fn every_api_route_is_documented_with_its_method_and_nothing_unserved_is() {
    let doc = doc();
    let served: BTreeSet<(String, String)> = route_table()
        .into_iter()
        .map(|r| (r.method.to_string(), r.path.to_owned()))
        .collect();
    let documented: BTreeSet<(String, String)> = operations(&doc)
        .into_iter()
        .map(|(m, p, _)| (m, p))
        .collect();
    let missing: Vec<_> = served
        .iter()
        .filter(|(_, p)| p.starts_with("/auth/api/"))
        .filter(|r| !documented.contains(*r))
        .collect();
    assert!(
        missing.is_empty(),
        "served under /auth/api/ but not in the OpenAPI document (add #[utoipa::path] to the \
         handler and name it in ApiDoc's paths(...)): {missing:?}"
    );
    let unserved: Vec<_> = documented.iter().filter(|r| !served.contains(*r)).collect();
    assert!(
        unserved.is_empty(),
        "in the document but not served by the router: {unserved:?}"
    );
    assert!(documented.contains(&("GET".to_owned(), PATH.to_owned())));
}

/// SPEC §5 as the router applies it: each state-changing operation that is not exempt
/// demands the double submit in every way it can be authorised, except bearer-only (a request
/// that carries no cookies), answers `403 csrf_invalid`, and an exempt one does neither.
#[test]
fn state_changing_operations_demand_the_csrf_token_exactly_where_the_router_checks_it() {
    let doc = doc();
    let schemes: BTreeSet<String> = doc["components"]["securitySchemes"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    for (m, p, op) in operations(&doc) {
        let method = Method::from_bytes(m.as_bytes()).unwrap();
        let alternatives: Vec<BTreeSet<String>> = op["security"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| a.as_object().unwrap().keys().cloned().collect())
            .collect();
        for alt in &alternatives {
            for s in alt {
                assert!(schemes.contains(s), "{m} {p}: unknown security scheme {s}");
            }
        }
        let csrf_codes = strings(&op["x-authara-error-codes"]["403"]);
        if is_state_changing(&method) && !is_csrf_exempt(&method, &p) {
            assert!(
                !alternatives.is_empty(),
                "{m} {p}: no security requirement (CSRF)"
            );
            for alt in &alternatives {
                let bearer_only = alt.len() == 1 && alt.contains(scheme::ACCESS_BEARER);
                assert!(
                    bearer_only
                        || (alt.contains(scheme::CSRF_COOKIE) && alt.contains(scheme::CSRF_HEADER)),
                    "{m} {p}: {alt:?} lacks csrfCookie + csrfHeader"
                );
            }
            assert!(
                csrf_codes.contains("csrf_invalid"),
                "{m} {p}: no 403 csrf_invalid"
            );
        } else {
            for alt in &alternatives {
                assert!(
                    !alt.contains(scheme::CSRF_HEADER),
                    "{m} {p}: asks for a CSRF token the router never checks"
                );
            }
            assert!(
                !csrf_codes.contains("csrf_invalid"),
                "{m} {p}: 403 csrf_invalid"
            );
        }
    }
}

/// Every API operation lists the errors any request can meet, with `Retry-After` on 503.
#[test]
fn every_api_operation_documents_the_errors_every_request_can_meet() {
    let doc = doc();
    for (m, p, op) in operations(&doc) {
        let codes = &op["x-authara-error-codes"];
        for (status, code) in [
            ("408", "request_timeout"),
            ("413", "payload_too_large"),
            ("500", "internal_error"),
        ] {
            if p.starts_with("/auth/api/") || status == "500" {
                assert!(
                    strings(&codes[status]).contains(code),
                    "{m} {p}: no {status} {code}"
                );
            }
        }
        for status in ["408", "413", "503"] {
            let r = resolve(&doc, &op["responses"][status]);
            let content = r["content"]
                .as_object()
                .unwrap_or_else(|| panic!("{m} {p}: {status}"));
            if p.starts_with("/auth/api/") {
                assert!(
                    content.contains_key("application/json"),
                    "{m} {p}: {status}"
                );
            } else {
                assert!(content.contains_key("text/html"), "{m} {p}: {status} page");
            }
        }
        if p.starts_with("/auth/api/") {
            let unavailable = resolve(&doc, &op["responses"]["503"]);
            assert!(unavailable["headers"]["Retry-After"].is_object(), "{m} {p}");
        }
    }
}

/// The reusable error responses say what `ApiError` really sends: status, code, envelope and
/// `Retry-After`.
#[test]
fn each_error_response_matches_what_the_server_sends() {
    let doc = doc();
    for kind in ERRORS {
        let mut errors = vec![(kind.error)()];
        errors.extend(kind.or.iter().map(|e| e()));
        for e in errors {
            let (status, code, _) = e.parts();
            let res = e.into_response();
            assert_eq!(res.status().as_u16(), kind.status(), "{}", kind.name);
            assert_eq!(res.status(), status);
            assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
            assert_eq!(
                res.headers().contains_key(header::RETRY_AFTER),
                kind.retry_after,
                "{}: Retry-After",
                kind.name
            );
            let body = futures_body(res);
            let v: Value = serde_json::from_slice(&body).unwrap();
            let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["error"], "{}", kind.name);
            let mut inner: Vec<&String> = v["error"].as_object().unwrap().keys().collect();
            inner.sort();
            assert_eq!(inner, ["code", "message"], "{}", kind.name);
            assert!(kind.codes().contains(&v["error"]["code"].as_str().unwrap()));
            assert_eq!(code, v["error"]["code"]);
        }
        let r = &doc["components"]["responses"][kind.name];
        let allowed = strings(
            &r["content"]["application/json"]["schema"]["allOf"][1]["properties"]["error"]
                ["properties"]["code"]["enum"],
        );
        assert_eq!(allowed, set(&kind.codes()), "{}", kind.name);
        assert_eq!(r["headers"]["Retry-After"].is_object(), kind.retry_after);
    }
}

fn futures_body(res: Response) -> Bytes {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(axum::body::to_bytes(res.into_body(), 4096))
        .unwrap()
}

#[tokio::test]
async fn the_route_serves_the_document_as_json() {
    let res = get_openapi().await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    let served: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(served, doc());
}

/// What upstream's contract (`contract/openapi.yaml`) says of one operation. Where the stored
/// contract is newer than UPSTREAM.md's HEAD, UPSTREAM.md and SPEC.md rule (the login body is
/// `{email,password}`; `audience` is `app` or `admin`).
struct Upstream {
    method: &'static str,
    path: &'static str,
    operation_id: &'static str,
    /// Query parameters, each with its enum values.
    query: &'static [(&'static str, &'static [&'static str])],
    /// The security alternatives, each a set of scheme names; empty: public.
    security: &'static [&'static [&'static str]],
    /// The request body's schema name and required fields; `None`: no body.
    request: Option<(&'static str, &'static [&'static str])>,
    /// Enum properties of the request body.
    request_enums: &'static [(&'static str, &'static [&'static str])],
    /// The success status.
    success: u16,
    /// The success body's schema name and required fields; `None`: no body.
    response: Option<(&'static str, &'static [&'static str])>,
    /// Required fields of objects nested in the success body, by property.
    response_nested: &'static [(&'static str, &'static str, &'static [&'static str])],
    /// The error statuses upstream declares.
    errors: &'static [u16],
    /// `x-authara-set-cookies` and `x-authara-clear-cookies`.
    set_cookies: &'static [&'static str],
    clear_cookies: &'static [&'static str],
    /// Where we knowingly differ, and why; each must still be a difference.
    gaps: &'static [(Gap, &'static str)],
}

/// A known difference from upstream.
#[derive(Debug)]
enum Gap {
    /// A required field of the success body we do not send yet.
    ResponseField(&'static str),
    /// An error status upstream declares that we do not give.
    Status(u16),
}

const CSRF: &[&str] = &["csrfCookie", "csrfHeader"];
const AUDIENCE: (&str, &[&str]) = ("audience", &["app", "admin"]);
const AUTH_SESSION: Option<(&str, &[&str])> =
    Some(("AuthSession", &["user", "access_token", "refresh_token"]));
const AUTH_USER: (&str, &str, &[&str]) = (
    "user",
    "AuthUser",
    &["id", "email", "username", "disabled", "created_at"],
);
const ACCESS: &[&str] = &["accessCookie"];
const ACCESS_CSRF: &[&str] = &["accessCookie", "csrfCookie", "csrfHeader"];
const INTERNAL: &[&str] = &["internalBearer"];
const TOKENS: Option<(&str, &[&str])> = Some(("Tokens", &["access_token", "refresh_token"]));
const ORGANIZATION: (&str, &str, &[&str]) = (
    "organization",
    "Organization",
    &["id", "created_at", "updated_at", "name", "kind"],
);

/// Upstream's operations for the routes we serve or are adding (issue 9). The same facts are in
/// `briefs/upstream-operations.md` for the people adding the routes.
const UPSTREAM: &[Upstream] = &[
    Upstream {
        method: "GET",
        path: "/auth/api/v1/csrf",
        operation_id: "getCsrfToken",
        query: &[],
        security: &[],
        request: None,
        request_enums: &[],
        success: 200,
        response: Some(("CSRFToken", &["csrf_token"])),
        response_nested: &[],
        errors: &[500],
        set_cookies: &["authara_csrf"],
        clear_cookies: &[],
        gaps: &[],
    },
    Upstream {
        method: "GET",
        path: "/auth/api/v1/user",
        operation_id: "getCurrentUser",
        query: &[],
        security: &[&["accessCookie"]],
        request: None,
        request_enums: &[],
        success: 200,
        response: Some((
            "CurrentUser",
            &[
                "id",
                "email",
                "username",
                "disabled",
                "created_at",
                "roles",
                "organization",
            ],
        )),
        response_nested: &[],
        errors: &[401, 500],
        set_cookies: &[],
        clear_cookies: &[],
        gaps: &[],
    },
    Upstream {
        method: "POST",
        path: "/auth/api/v1/sessions/refresh",
        operation_id: "refreshSession",
        query: &[AUDIENCE],
        security: &[&["refreshCookie", "csrfCookie", "csrfHeader"]],
        request: None,
        request_enums: &[],
        success: 200,
        response: None,
        response_nested: &[],
        errors: &[400, 401, 500],
        set_cookies: &["authara_access", "authara_refresh"],
        clear_cookies: &[],
        gaps: &[],
    },
    Upstream {
        method: "POST",
        path: "/auth/api/v1/sessions/logout",
        operation_id: "logout",
        query: &[],
        security: &[CSRF],
        request: None,
        request_enums: &[],
        success: 204,
        response: None,
        response_nested: &[],
        errors: &[403, 500],
        set_cookies: &[],
        clear_cookies: &["authara_access", "authara_refresh"],
        gaps: &[],
    },
    Upstream {
        method: "POST",
        path: "/auth/api/v1/tokens/refresh",
        operation_id: "refreshTokens",
        query: &[],
        security: &[],
        request: Some(("TokenRefreshRequest", &["refresh_token"])),
        request_enums: &[AUDIENCE],
        success: 200,
        response: TOKENS,
        response_nested: &[],
        errors: &[400, 401, 500],
        set_cookies: &[],
        clear_cookies: &[],
        gaps: &[],
    },
    Upstream {
        method: "POST",
        path: "/auth/api/v1/login",
        operation_id: "loginWithPassword",
        query: &[AUDIENCE],
        security: &[CSRF],
        request: Some(("PasswordLoginRequest", &["email", "password"])),
        request_enums: &[],
        success: 200,
        response: AUTH_SESSION,
        response_nested: &[AUTH_USER],
        errors: &[400, 401, 403, 429, 500],
        set_cookies: &["authara_access", "authara_refresh"],
        clear_cookies: &[],
        gaps: &[],
    },
    Upstream {
        method: "POST",
        path: "/auth/api/v1/signup/direct",
        operation_id: "signupDirect",
        query: &[("audience", &["app"])],
        security: &[CSRF],
        request: Some(("SignupRequest", &["email", "password"])),
        request_enums: &[],
        success: 201,
        response: AUTH_SESSION,
        response_nested: &[AUTH_USER],
        errors: &[400, 403, 404, 429, 500],
        set_cookies: &["authara_access", "authara_refresh"],
        clear_cookies: &[],
        gaps: &[],
    },
    Upstream {
        method: "POST",
        path: "/auth/api/v1/signup/challenges",
        operation_id: "startSignupChallenge",
        query: &[("audience", &["app"])],
        security: &[CSRF],
        request: Some(("SignupRequest", &["email", "password"])),
        request_enums: &[],
        success: 202,
        response: Some(("SignupChallenge", &["challenge_id"])),
        response_nested: &[],
        errors: &[400, 403, 404, 429, 500],
        set_cookies: &[],
        clear_cookies: &[],
        gaps: &[],
    },
    Upstream {
        method: "POST",
        path: "/auth/api/v1/signup/challenges/verify",
        operation_id: "verifySignupChallenge",
        query: &[("audience", &["app"])],
        security: &[CSRF],
        request: Some(("SignupChallengeVerification", &["challenge_id", "code"])),
        request_enums: &[],
        success: 201,
        response: AUTH_SESSION,
        response_nested: &[AUTH_USER],
        errors: &[400, 403, 404, 429, 500],
        set_cookies: &["authara_access", "authara_refresh"],
        clear_cookies: &[],
        gaps: &[],
    },
    Upstream {
        method: "POST",
        path: "/auth/api/v1/password-reset/challenges",
        operation_id: "startPasswordResetChallenge",
        query: &[],
        security: &[CSRF],
        request: Some(("PasswordResetRequest", &["email", "new_password"])),
        request_enums: &[],
        success: 202,
        response: Some(("ChallengeReference", &["challenge_id"])),
        response_nested: &[],
        errors: &[400, 403, 429, 500],
        set_cookies: &[],
        clear_cookies: &[],
        gaps: &[],
    },
    Upstream {
        method: "POST",
        path: "/auth/api/v1/password-reset/challenges/verify",
        operation_id: "verifyPasswordResetChallenge",
        query: &[],
        security: &[CSRF],
        request: Some((
            "PasswordResetChallengeVerification",
            &["challenge_id", "code"],
        )),
        request_enums: &[],
        success: 204,
        response: None,
        response_nested: &[],
        errors: &[400, 403, 429, 500],
        set_cookies: &[],
        clear_cookies: &[],
        gaps: &[],
    },
    Upstream {
        method: "POST",
        path: "/auth/api/v1/challenges/resend",
        operation_id: "resendChallenge",
        query: &[],
        security: &[CSRF],
        request: Some(("ChallengeReference", &["challenge_id"])),
        request_enums: &[],
        success: 204,
        response: None,
        response_nested: &[],
        errors: &[400, 403, 429, 500],
        set_cookies: &[],
        clear_cookies: &[],
        gaps: &[],
    },
    Upstream {
        method: "PUT",
        path: "/auth/api/v1/users/password",
        operation_id: "setCurrentUserPassword",
        query: &[],
        security: &[&["accessCookie", "csrfCookie", "csrfHeader"]],
        request: Some(("SetPasswordRequest", &["password"])),
        request_enums: &[],
        success: 204,
        response: None,
        response_nested: &[],
        errors: &[400, 401, 403, 428, 500],
        set_cookies: &[],
        clear_cookies: &[],
        gaps: &[(
            Gap::Status(428),
            "recent_authentication_required: the stored contract is newer than UPSTREAM.md's \
             HEAD; no recent-authentication policy here",
        )],
    },
    // The two below are in the stored contract only (newer than UPSTREAM.md's HEAD, which has
    // the HTML `POST /auth/sessions/revoke-other` and `/auth/sessions/{id}/revoke` alone).
    Upstream {
        method: "DELETE",
        path: "/auth/api/v1/account/sessions/others",
        operation_id: "revokeCurrentUserOtherSessions",
        query: &[],
        security: &[&["accessCookie", "csrfCookie", "csrfHeader"]],
        request: None,
        request_enums: &[],
        success: 204,
        response: None,
        response_nested: &[],
        errors: &[401, 403, 500],
        set_cookies: &[],
        clear_cookies: &[],
        gaps: &[],
    },
    Upstream {
        method: "DELETE",
        path: "/auth/api/v1/account/sessions/{sessionID}",
        operation_id: "revokeCurrentUserSession",
        query: &[],
        security: &[&["accessCookie", "csrfCookie", "csrfHeader"]],
        request: None,
        request_enums: &[],
        success: 204,
        response: None,
        response_nested: &[],
        errors: &[400, 401, 403, 404, 500],
        set_cookies: &[],
        clear_cookies: &[],
        gaps: &[],
    },
    // Organizations (UPSTREAM.md §1.8) and the internal API (§1.11, and the stored contract's
    // delete, member removal and ownership transfer, newer than UPSTREAM.md's HEAD).
    Upstream {
        method: "GET",
        path: "/auth/api/v1/capabilities",
        operation_id: "getPublicCapabilities",
        query: &[],
        security: &[ACCESS],
        request: None,
        request_enums: &[],
        success: 200,
        response: Some((
            "Capabilities",
            &[
                "organization_mode",
                "has_visible_organizations",
                "allows_invitations",
                "allows_public_organization_management",
                "allows_org_switching",
                "allows_user_created_team_orgs",
                "allows_organization_leave",
            ],
        )),
        response_nested: &[],
        errors: &[401, 500],
        set_cookies: &[],
        clear_cookies: &[],
        gaps: &[],
    },
    Upstream {
        method: "GET",
        path: "/auth/api/v1/organizations",
        operation_id: "listCurrentUserOrganizations",
        query: &[],
        security: &[ACCESS],
        request: None,
        request_enums: &[],
        success: 200,
        response: Some(("OrganizationSummaries", &["organizations"])),
        response_nested: &[],
        errors: &[401, 500],
        set_cookies: &[],
        clear_cookies: &[],
        gaps: &[],
    },
    Upstream {
        method: "GET",
        path: "/auth/api/v1/organizations/current",
        operation_id: "getCurrentOrganization",
        query: &[],
        security: &[ACCESS],
        request: None,
        request_enums: &[],
        success: 200,
        response: Some(("OrganizationSummary", &["id", "name", "role"])),
        response_nested: &[],
        errors: &[401, 500],
        set_cookies: &[],
        clear_cookies: &[],
        gaps: &[],
    },
    Upstream {
        method: "GET",
        path: "/auth/api/v1/organizations/current/members",
        operation_id: "listCurrentOrganizationMembers",
        query: &[],
        security: &[ACCESS],
        request: None,
        request_enums: &[],
        success: 200,
        response: Some(("CurrentOrganizationMembers", &["members"])),
        response_nested: &[],
        errors: &[401, 403, 500],
        set_cookies: &[],
        clear_cookies: &[],
        gaps: &[],
    },
    Upstream {
        method: "POST",
        path: "/auth/api/v1/organizations/{organizationID}/switch",
        operation_id: "switchOrganization",
        query: &[AUDIENCE],
        security: &[ACCESS_CSRF],
        request: None,
        request_enums: &[],
        success: 200,
        response: TOKENS,
        response_nested: &[],
        errors: &[400, 401, 403, 500],
        set_cookies: &["authara_access", "authara_refresh"],
        clear_cookies: &[],
        gaps: &[],
    },
    Upstream {
        method: "GET",
        path: "/auth/api/v1/organizations/{organizationID}",
        operation_id: "getPublicOrganization",
        query: &[],
        security: &[ACCESS],
        request: None,
        request_enums: &[],
        success: 200,
        response: Some(("OrganizationEnvelope", &["organization"])),
        response_nested: &[ORGANIZATION],
        errors: &[400, 401, 403, 404, 500],
        set_cookies: &[],
        clear_cookies: &[],
        gaps: &[],
    },
    Upstream {
        method: "PATCH",
        path: "/auth/api/v1/organizations/{organizationID}",
        operation_id: "updatePublicOrganization",
        query: &[],
        security: &[ACCESS_CSRF],
        request: Some(("UpdateOrganizationRequest", &["name"])),
        request_enums: &[],
        success: 200,
        response: Some(("OrganizationEnvelope", &["organization"])),
        response_nested: &[ORGANIZATION],
        errors: &[400, 401, 403, 404, 428, 500],
        set_cookies: &[],
        clear_cookies: &[],
        gaps: &[(
            Gap::Status(428),
            "recent_authentication_required: upstream marks the rename x-authara-recent-auth; \
             no recent-authentication policy here",
        )],
    },
    Upstream {
        method: "GET",
        path: "/auth/api/v1/organizations/{organizationID}/members",
        operation_id: "listPublicOrganizationMembers",
        query: &[],
        security: &[ACCESS],
        request: None,
        request_enums: &[],
        success: 200,
        response: Some(("OrganizationMembers", &["members"])),
        response_nested: &[],
        errors: &[400, 401, 403, 404, 500],
        set_cookies: &[],
        clear_cookies: &[],
        gaps: &[],
    },
    Upstream {
        method: "GET",
        path: "/auth/api/v1/organizations/{organizationID}/members/{userID}",
        operation_id: "getPublicOrganizationMember",
        query: &[],
        security: &[ACCESS],
        request: None,
        request_enums: &[],
        success: 200,
        response: Some(("OrganizationMemberEnvelope", &["member"])),
        response_nested: &[(
            "member",
            "OrganizationMember",
            &[
                "organization_id",
                "user_id",
                "email",
                "username",
                "role",
                "created_at",
                "updated_at",
                "disabled",
            ],
        )],
        errors: &[400, 401, 403, 404, 500],
        set_cookies: &[],
        clear_cookies: &[],
        gaps: &[],
    },
    Upstream {
        method: "GET",
        path: "/auth/api/v1/users/{userID}/memberships",
        operation_id: "listPublicUserMemberships",
        query: &[],
        security: &[ACCESS],
        request: None,
        request_enums: &[],
        success: 200,
        response: Some(("UserMemberships", &["memberships"])),
        response_nested: &[],
        errors: &[400, 401, 403, 404, 500],
        set_cookies: &[],
        clear_cookies: &[],
        gaps: &[],
    },
    Upstream {
        method: "POST",
        path: "/auth/internal/v1/organizations",
        operation_id: "createInternalOrganization",
        query: &[],
        security: &[INTERNAL],
        request: Some((
            "InternalCreateOrganizationRequest",
            &["name", "created_by_user_id"],
        )),
        request_enums: &[],
        success: 201,
        response: Some((
            "OrganizationWithMembership",
            &["organization", "membership"],
        )),
        response_nested: &[
            ORGANIZATION,
            (
                "membership",
                "Membership",
                &[
                    "organization_id",
                    "user_id",
                    "role",
                    "created_at",
                    "updated_at",
                ],
            ),
        ],
        errors: &[400, 401, 403, 404, 500],
        set_cookies: &[],
        clear_cookies: &[],
        gaps: &[],
    },
    Upstream {
        method: "DELETE",
        path: "/auth/internal/v1/organizations/{organizationID}",
        operation_id: "deleteInternalOrganization",
        query: &[],
        security: &[INTERNAL],
        request: Some(("InternalOrganizationActorRequest", &["actor_user_id"])),
        request_enums: &[],
        success: 204,
        response: None,
        response_nested: &[],
        errors: &[400, 401, 403, 404, 409, 500],
        set_cookies: &[],
        clear_cookies: &[],
        gaps: &[],
    },
    Upstream {
        method: "DELETE",
        path: "/auth/internal/v1/organizations/{organizationID}/members/{userID}",
        operation_id: "removeInternalOrganizationMember",
        query: &[],
        security: &[INTERNAL],
        request: Some(("InternalOrganizationActorRequest", &["actor_user_id"])),
        request_enums: &[],
        success: 204,
        response: None,
        response_nested: &[],
        errors: &[400, 401, 403, 404, 409, 500],
        set_cookies: &[],
        clear_cookies: &[],
        gaps: &[],
    },
    Upstream {
        method: "POST",
        path: "/auth/internal/v1/organizations/{organizationID}/ownership-transfer",
        operation_id: "transferInternalOrganizationOwnership",
        query: &[],
        security: &[INTERNAL],
        request: Some((
            "InternalOwnershipTransferRequest",
            &["actor_user_id", "new_owner_user_id"],
        )),
        request_enums: &[],
        success: 204,
        response: None,
        response_nested: &[],
        errors: &[400, 401, 403, 404, 409, 500],
        set_cookies: &[],
        clear_cookies: &[],
        gaps: &[],
    },
    Upstream {
        method: "GET",
        path: "/auth/api/v1/oauth/google/options",
        operation_id: "getGoogleLoginOptions",
        query: &[],
        security: &[],
        request: None,
        request_enums: &[],
        success: 200,
        response: Some(("GoogleLoginOptions", &["client_id", "nonce"])),
        response_nested: &[],
        errors: &[404, 500],
        set_cookies: &["authara_oauth_nonce"],
        clear_cookies: &[],
        gaps: &[],
    },
    Upstream {
        method: "POST",
        path: "/auth/api/v1/oauth/google",
        operation_id: "loginWithGoogle",
        query: &[AUDIENCE],
        security: &[&["csrfCookie", "csrfHeader", "oauthNonceCookie"]],
        request: Some(("GoogleLoginRequest", &["credential", "nonce"])),
        request_enums: &[],
        success: 200,
        response: AUTH_SESSION,
        response_nested: &[AUTH_USER],
        errors: &[400, 401, 403, 404, 409, 500],
        set_cookies: &["authara_access", "authara_refresh"],
        clear_cookies: &["authara_oauth_nonce"],
        gaps: &[],
    },
    Upstream {
        method: "DELETE",
        path: "/auth/internal/v1/users/{userID}",
        operation_id: "deleteInternalUser",
        query: &[],
        security: &[INTERNAL],
        request: None,
        request_enums: &[],
        success: 204,
        response: None,
        response_nested: &[],
        errors: &[400, 401, 404, 409, 500],
        set_cookies: &[],
        clear_cookies: &[],
        gaps: &[],
    },
];

/// The schema name a `$ref` names, if it is one.
fn schema_name(v: &Value) -> Option<&str> {
    v.get("$ref")?
        .as_str()?
        .strip_prefix("#/components/schemas/")
}

/// The JSON body schema of a request body or response object, `None` without a JSON body.
fn json_schema<'a>(doc: &'a Value, holder: &'a Value) -> Option<&'a Value> {
    resolve(doc, holder)
        .get("content")?
        .get("application/json")?
        .get("schema")
}

/// Compares one upstream row with our operation at the same method and path; returns every
/// difference that is not a declared gap, and every declared gap that is no longer one.
fn compare(doc: &Value, up: &Upstream, ours: &Value) -> Vec<String> {
    let mut diffs = Vec::new();
    let mut gaps_seen = vec![false; up.gaps.len()];
    let gap = |g: &dyn Fn(&Gap) -> bool, seen: &mut Vec<bool>| -> bool {
        match up.gaps.iter().position(|(x, _)| g(x)) {
            Some(i) => {
                seen[i] = true;
                true
            }
            None => false,
        }
    };
    if ours["operationId"] != up.operation_id {
        diffs.push(format!(
            "operationId {} (upstream {})",
            ours["operationId"], up.operation_id
        ));
    }
    // Query parameters: the same names, each with the same enum.
    let params: Vec<&Value> = ours["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| resolve(doc, p))
        .filter(|p| p["in"] == "query")
        .collect();
    let names: BTreeSet<String> = params
        .iter()
        .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    let want: BTreeSet<String> = up.query.iter().map(|(n, _)| (*n).to_owned()).collect();
    if names != want {
        diffs.push(format!("query parameters {names:?} (upstream {want:?})"));
    }
    for (name, values) in up.query {
        if let Some(p) = params.iter().find(|p| p["name"] == *name) {
            let got = strings(&resolve(doc, &p["schema"])["enum"]);
            if got != set(values) {
                diffs.push(format!("query {name} enum {got:?} (upstream {values:?})"));
            }
            if p["required"] == true {
                diffs.push(format!("query {name} is required (upstream: optional)"));
            }
        }
    }
    // Security: every upstream alternative is one of ours; public stays public.
    let alternatives: BTreeSet<BTreeSet<String>> = ours["security"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| a.as_object().unwrap().keys().cloned().collect())
        .collect();
    for alt in up.security {
        if !alternatives.contains(&set(alt)) {
            diffs.push(format!("security lacks {alt:?} (ours {alternatives:?})"));
        }
    }
    if up.security.is_empty() && alternatives.iter().any(|a| !a.is_empty()) {
        diffs.push(format!("security {alternatives:?} (upstream: public)"));
    }
    // The request body.
    let body = ours.get("requestBody").and_then(|b| json_schema(doc, b));
    match (up.request, body) {
        (None, None) => {}
        (None, Some(_)) => diffs.push("a JSON request body (upstream: none)".to_owned()),
        (Some((name, _)), None) => diffs.push(format!("no JSON request body (upstream {name})")),
        (Some((name, required)), Some(schema)) => {
            if schema_name(schema) != Some(name) {
                diffs.push(format!(
                    "request schema {:?} (upstream {name})",
                    schema_name(schema)
                ));
            }
            let schema = resolve(doc, schema);
            let got = strings(&schema["required"]);
            if got != set(required) {
                diffs.push(format!("request required {got:?} (upstream {required:?})"));
            }
            if ours["requestBody"]["required"] != true {
                diffs.push("request body optional (upstream: required)".to_owned());
            }
            for (field, values) in up.request_enums {
                let got = strings(&resolve(doc, &schema["properties"][field])["enum"]);
                if got != set(values) {
                    diffs.push(format!(
                        "request {field} enum {got:?} (upstream {values:?})"
                    ));
                }
            }
        }
    }
    // The success response.
    let responses = ours["responses"].as_object().cloned().unwrap_or_default();
    let successes: Vec<&String> = responses.keys().filter(|s| s.starts_with('2')).collect();
    if successes != [&up.success.to_string()] {
        diffs.push(format!(
            "success statuses {successes:?} (upstream {})",
            up.success
        ));
    }
    let success = responses.get(&up.success.to_string());
    let body = success.and_then(|r| json_schema(doc, r));
    match (up.response, body) {
        (None, None) => {}
        (None, Some(_)) => diffs.push("a JSON success body (upstream: none)".to_owned()),
        (Some((name, _)), None) => diffs.push(format!("no JSON success body (upstream {name})")),
        (Some((name, required)), Some(schema)) => {
            if schema_name(schema) != Some(name) {
                diffs.push(format!(
                    "response schema {:?} (upstream {name})",
                    schema_name(schema)
                ));
            }
            let schema = resolve(doc, schema);
            let got = strings(&schema["required"]);
            for f in required {
                if !got.contains(*f)
                    && !gap(
                        &|g| matches!(g, Gap::ResponseField(x) if x == f),
                        &mut gaps_seen,
                    )
                {
                    diffs.push(format!("response lacks required {f}"));
                }
            }
            for f in &got {
                if !required.contains(&f.as_str()) {
                    diffs.push(format!("response requires {f} (upstream does not)"));
                }
            }
            for (field, nested_name, nested) in up.response_nested {
                let prop = &schema["properties"][field];
                if schema_name(prop) != Some(nested_name) {
                    diffs.push(format!(
                        "{field} schema {:?} (upstream {nested_name})",
                        schema_name(prop)
                    ));
                }
                let got = strings(&resolve(doc, prop)["required"]);
                if got != set(nested) {
                    diffs.push(format!("{field} required {got:?} (upstream {nested:?})"));
                }
            }
        }
    }
    for status in up.errors {
        if !responses.contains_key(&status.to_string())
            && !gap(
                &|g| matches!(g, Gap::Status(s) if s == status),
                &mut gaps_seen,
            )
        {
            diffs.push(format!("no {status} response (upstream declares one)"));
        }
    }
    for (key, want) in [
        ("x-authara-set-cookies", up.set_cookies),
        ("x-authara-clear-cookies", up.clear_cookies),
    ] {
        let got = strings(&ours[key]);
        // We may clear what upstream only re-sets (a failed refresh clears both), never less.
        if !set(want).is_subset(&got) {
            diffs.push(format!("{key} {got:?} (upstream {want:?})"));
        }
    }
    for ((g, why), seen) in up.gaps.iter().zip(gaps_seen) {
        if !seen {
            diffs.push(format!(
                "gap {g:?} ({why}) is no longer a gap: delete it from the table"
            ));
        }
    }
    diffs
}

/// Where an operation exists upstream, ours has upstream's path, method, operationId,
/// parameters, body and response schemas (issue 9). Rows whose route is not served yet are
/// skipped with a note; they bite once it lands.
#[test]
fn operations_that_exist_upstream_match_upstreams_contract() {
    let doc = doc();
    let served: BTreeSet<(String, String)> = route_table()
        .into_iter()
        .map(|r| (r.method.to_string(), r.path.to_owned()))
        .collect();
    let ops = operations(&doc);
    let mut failures = Vec::new();
    let mut compared = 0;
    for up in UPSTREAM {
        // An upstream operationId on another route would pass off one operation as another.
        for (m, p, op) in &ops {
            if op["operationId"] == up.operation_id
                && (m.as_str(), p.as_str()) != (up.method, up.path)
            {
                failures.push(format!(
                    "{m} {p} uses upstream's operationId {} of {} {}",
                    up.operation_id, up.method, up.path
                ));
            }
        }
        if !served.contains(&(up.method.to_owned(), up.path.to_owned())) {
            eprintln!(
                "note: {} {} ({}) is not served yet; its upstream row is skipped",
                up.method, up.path, up.operation_id
            );
            continue;
        }
        let Some(ours) = ops
            .iter()
            .find(|(m, p, _)| m == up.method && p == up.path)
            .map(|(_, _, op)| op)
        else {
            failures.push(format!(
                "{} {} is served but not documented",
                up.method, up.path
            ));
            continue;
        };
        compared += 1;
        for d in compare(&doc, up, ours) {
            failures.push(format!(
                "{} {} ({}): {d}",
                up.method, up.path, up.operation_id
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "differences from upstream:\n{}",
        failures.join("\n")
    );
    assert!(compared >= 4, "only {compared} rows compared");
}

/// The comparison must be able to fail: a document with upstream's facts bent a little.
#[test]
fn the_upstream_comparison_catches_a_wrong_operation() {
    let doc = doc();
    let up = UPSTREAM
        .iter()
        .find(|u| u.operation_id == "refreshSession")
        .unwrap();
    let ours = &doc["paths"][up.path]["post"];
    assert!(compare(&doc, up, ours).is_empty());
    let mut bent = ours.clone();
    bent["operationId"] = json!("refresh");
    bent["parameters"][0]["schema"]["enum"] = json!(["app"]);
    bent["responses"].as_object_mut().unwrap().remove("400");
    bent["x-authara-set-cookies"] = json!(["authara_access"]);
    let diffs = compare(&doc, up, &bent);
    assert_eq!(diffs.len(), 4, "{diffs:#?}");
    // A declared gap is accepted while it is one and reported once it is closed: the `/user`
    // row with the `organization` field declared a gap, against a document without it and
    // against ours, which sends it.
    let user = UPSTREAM
        .iter()
        .find(|u| u.operation_id == "getCurrentUser")
        .unwrap();
    let gapped = Upstream {
        gaps: &[(
            Gap::ResponseField("organization"),
            "a made-up gap, for this test",
        )],
        ..*user
    };
    let ours = &doc["paths"][user.path]["get"];
    let mut without = doc.clone();
    without["components"]["schemas"]["CurrentUser"]["required"]
        .as_array_mut()
        .unwrap()
        .retain(|f| f != "organization");
    assert!(compare(&without, &gapped, ours).is_empty());
    let diffs = compare(&without, user, ours);
    assert_eq!(diffs.len(), 1, "{diffs:#?}");
    assert!(
        diffs[0].contains("lacks required organization"),
        "{diffs:#?}"
    );
    let diffs = compare(&doc, &gapped, ours);
    assert_eq!(diffs.len(), 1, "{diffs:#?}");
    assert!(diffs[0].contains("no longer a gap"), "{diffs:#?}");
}

//! Compatibility with upstream's Go SDK (`authara-go`, `authara/verifier.go`): the rules its
//! verifier applies to an access token, restated here independently (HMAC, base64 and JSON by
//! hand, no JWT library), then applied to the tokens of every flow of a real server.
//!
//! The rules, and where they come from:
//! - `authara-go` `verifier.go`: the parser allows only `HS256`; the key is looked up by the
//!   header's `kid`, which must be a string naming a configured key; `iss` must equal the
//!   configured issuer and `aud` must contain the configured audience (golang-jwt v5
//!   `WithIssuer`/`WithAudience`: both required); `sub` and `sid` non-empty, `sub` a UUID; every
//!   entry of `roles` (a JSON array or `null`) starts with `authara:`.
//! - `authara-go` `constants.go`: the leeway of every time check is `clockSkew`, 2 minutes.
//! - golang-jwt v5 with a leeway: `exp` is valid while `now < exp + leeway`, `nbf` once
//!   `now + leeway >= nbf`, `iat` (only with `WithIssuedAt`) once `now + leeway >= iat`.
//! - Issue 11 and `UPSTREAM.md` §5.1 / D3 (authara-go since June 2026, and upstream's own
//!   `validateAccessClaims`): `org_id` present, a UUID and not the nil UUID; `org_role`
//!   non-empty.
//!
//! Stricter than the Go SDK where that costs our tokens nothing (so passing here implies passing
//! there): `exp` is required, `iat` is checked whenever present, and `sid` must be a UUID (as
//! upstream's server requires).

use crate::helpers::{claims, email, set_cookie, Backend, TestApp, TEST_KEY};
use crate::on_both;
use authara_core::audit::Actor;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use std::collections::HashMap;
use uuid::Uuid;

on_both!(
    a_plain_users_tokens_from_every_flow_pass_the_go_rules,
    an_admins_tokens_from_every_flow_pass_the_go_rules,
    tokens_after_an_organization_switch_pass_the_go_rules,
);

/// authara-go's `clockSkew` (`constants.go`).
const LEEWAY_SECONDS: i64 = 120;
/// The issuer and kid of the test configuration (`helpers.rs`).
const ISSUER: &str = "authara-test";
const KID: &str = "test";
const PASSWORD: &str = "correct horse battery";
/// An internal API token for the multi-mode server.
const INTERNAL_TOKEN: &str = "go-verifier-internal-token-0123456789abcdef";

/// Why the restated verifier refused a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// Not three base64url segments of JSON objects.
    Malformed,
    /// `alg` is not `HS256`.
    Algorithm,
    /// `kid` is missing, not a string, or names no configured key.
    UnknownKey,
    Signature,
    Issuer,
    Audience,
    Expired,
    NotYetValid,
    IssuedInTheFuture,
    Subject,
    Session,
    OrganizationId,
    OrganizationRole,
    /// A role outside the `authara:` namespace (the SDK's `ErrInvalidRoleNamespace`), or
    /// `roles` neither an array of strings nor `null`.
    RoleNamespace,
}

/// What the Go SDK hands the application for a valid token.
#[derive(Debug)]
struct Verified {
    user_id: Uuid,
    org_id: Uuid,
    org_role: String,
    roles: Vec<String>,
}

/// upstream's verifier, configured as an application configures authara-go.
struct GoVerifier {
    issuer: String,
    audience: String,
    keys: HashMap<String, Vec<u8>>,
}

impl GoVerifier {
    /// The verifier an application of the test server uses for `audience`.
    fn for_test_server(audience: &str) -> Self {
        Self {
            issuer: ISSUER.to_owned(),
            audience: audience.to_owned(),
            keys: HashMap::from([(KID.to_owned(), TEST_KEY.to_vec())]),
        }
    }

    /// Verifies `token` at `now` (Unix seconds).
    fn verify(&self, token: &str, now: i64) -> Result<Verified, Refusal> {
        let mut parts = token.split('.');
        let (Some(h64), Some(p64), Some(s64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Refusal::Malformed);
        };
        let header = json_object(h64)?;
        // Only HS256, exactly (the parser's valid methods).
        if header.get("alg").and_then(Value::as_str) != Some("HS256") {
            return Err(Refusal::Algorithm);
        }
        let key = header
            .get("kid")
            .and_then(Value::as_str)
            .and_then(|kid| self.keys.get(kid))
            .ok_or(Refusal::UnknownKey)?;
        let signature = URL_SAFE_NO_PAD
            .decode(s64)
            .map_err(|_| Refusal::Malformed)?;
        let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| Refusal::UnknownKey)?;
        mac.update(h64.as_bytes());
        mac.update(b".");
        mac.update(p64.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| Refusal::Signature)?;
        let claims = json_object(p64)?;

        // Registered claims, with the leeway.
        let exp = numeric_date(&claims, "exp")?.ok_or(Refusal::Expired)?;
        if now >= exp + LEEWAY_SECONDS {
            return Err(Refusal::Expired);
        }
        if let Some(nbf) = numeric_date(&claims, "nbf")? {
            if now + LEEWAY_SECONDS < nbf {
                return Err(Refusal::NotYetValid);
            }
        }
        if let Some(iat) = numeric_date(&claims, "iat")? {
            if now + LEEWAY_SECONDS < iat {
                return Err(Refusal::IssuedInTheFuture);
            }
        }
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(Refusal::Issuer);
        }
        let audience_ok = match claims.get("aud") {
            Some(Value::String(a)) => *a == self.audience,
            Some(Value::Array(all)) => all
                .iter()
                .any(|a| a.as_str() == Some(self.audience.as_str())),
            _ => false,
        };
        if !audience_ok {
            return Err(Refusal::Audience);
        }

        // Authara's claims.
        let user_id = uuid_claim(&claims, "sub").ok_or(Refusal::Subject)?;
        uuid_claim(&claims, "sid").ok_or(Refusal::Session)?;
        let org_id = uuid_claim(&claims, "org_id")
            .filter(|id| !id.is_nil())
            .ok_or(Refusal::OrganizationId)?;
        let org_role = claims
            .get("org_role")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
            .ok_or(Refusal::OrganizationRole)?
            .to_owned();
        let roles = match claims.get("roles") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(all)) => all
                .iter()
                .map(|r| r.as_str().map(str::to_owned).ok_or(Refusal::RoleNamespace))
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(Refusal::RoleNamespace),
        };
        if roles.iter().any(|r| !r.starts_with("authara:")) {
            return Err(Refusal::RoleNamespace);
        }
        Ok(Verified {
            user_id,
            org_id,
            org_role,
            roles,
        })
    }
}

/// A base64url (unpadded) segment holding a JSON object.
fn json_object(segment: &str) -> Result<Map<String, Value>, Refusal> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| Refusal::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Refusal::Malformed),
    }
}

/// A JWT NumericDate (whole seconds; golang-jwt also takes fractions, truncated here), absent
/// or present. Anything but a number is malformed, as golang-jwt refuses to decode it.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, Refusal> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .map(Some)
            .ok_or(Refusal::Malformed),
        Some(_) => Err(Refusal::Malformed),
    }
}

/// A string claim that parses as a UUID (Go's `uuid.Parse` forms).
fn uuid_claim(claims: &Map<String, Value>, name: &str) -> Option<Uuid> {
    Uuid::try_parse(claims.get(name)?.as_str()?).ok()
}

/// The application's clock: the test server's (an application's clock agrees with it).
fn app_now(app: &TestApp) -> i64 {
    authara_core::clock::Clock::now(&*app.clock).unix_timestamp()
}

/// "Now" for the hand-made tokens (any instant will do: the verifier is given its clock).
const NOW: i64 = 1_786_000_000;

/// Checks one real token against the Go rules for `audience`, and against what
/// `GET /auth/api/v1/user` says of the same session: the token's organization is the one the
/// session acts in, with the user's role there.
async fn passes(app: &TestApp, flow: &str, token: &str, audience: &str, admin: bool) -> Verified {
    let v = GoVerifier::for_test_server(audience)
        .verify(token, app_now(app))
        .unwrap_or_else(|r| panic!("{flow}: the Go rules refuse it ({r:?}): {}", claims(token)));
    let expected_roles: &[&str] = if admin { &["authara:admin"] } else { &[] };
    assert_eq!(v.roles, expected_roles, "{flow}");
    if audience == "app" {
        let res = app
            .fresh_client()
            .get(app.url("/auth/api/v1/user"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{flow}");
        let me: Value = res.json().await.unwrap();
        assert_eq!(me["id"], v.user_id.to_string(), "{flow}");
        assert_eq!(me["organization"]["id"], v.org_id.to_string(), "{flow}");
        assert_eq!(me["organization"]["role"], v.org_role, "{flow}");
    }
    // The same claims re-signed pass; without `org_id` they do not (the rule is live).
    let resigned = |c: &Value| {
        GoVerifier::for_test_server(audience)
            .verify(&forge(&good_header(), c, &TEST_KEY), app_now(app))
            .map(|_| ())
    };
    let mut c = claims(token);
    assert_eq!(resigned(&c), Ok(()), "{flow}");
    c.as_object_mut().unwrap().remove("org_id");
    assert_eq!(resigned(&c), Err(Refusal::OrganizationId), "{flow}");
    v
}

/// The access token in a response's `Set-Cookie`.
fn access_cookie(res: &reqwest::Response) -> String {
    let c = set_cookie(res.headers(), "authara_access").expect("an access cookie");
    let value = c.split(';').next().unwrap();
    value.trim_start_matches("authara_access=").to_owned()
}

/// `POST` JSON with the jar's cookies and the CSRF header.
async fn post_json(app: &TestApp, path: &str, body: &Value) -> reqwest::Response {
    let csrf = app.csrf().await;
    app.client
        .post(app.url(path))
        .header("x-csrf-token", csrf)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Makes the jar's user an admin (as `authara admin grant` does).
async fn grant_admin(app: &TestApp, e: &str) {
    authara::server::cli_account_service(&app.config)
        .await
        .unwrap()
        .set_admin_by_email(&Actor::Cli, e, true)
        .await
        .unwrap();
}

/// Runs every flow that issues an access token for one user (in the jar), checking each token:
/// HTML signup (or the JSON one), cookie refresh, HTML login, JSON login, JSON token refresh,
/// and with `admin`, the admin-audience tokens too.
async fn every_flow(app: &TestApp, local: &str, admin: bool, json_signup: bool) {
    let e = email(local);
    let signup = if json_signup {
        post_json(
            app,
            "/auth/api/v1/signup/direct",
            &json!({"email": e, "password": PASSWORD}),
        )
        .await
    } else {
        app.signup(&e, PASSWORD).await
    };
    assert!([201, 303].contains(&signup.status().as_u16()));
    let token = access_cookie(&signup);
    // An admin's signup token predates the grant: it passes as a plain user's.
    passes(app, "signup", &token, "app", false).await;
    if admin {
        grant_admin(app, &e).await;
    }

    let res = app.post_api("/auth/api/v1/sessions/refresh").await;
    assert_eq!(res.status(), 200);
    passes(app, "cookie refresh", &access_cookie(&res), "app", admin).await;

    app.drop_cookie("authara_access");
    app.drop_cookie("authara_refresh");
    let res = app.login(&e, PASSWORD).await;
    assert_eq!(res.status(), 303);
    passes(app, "HTML login", &access_cookie(&res), "app", admin).await;

    app.drop_cookie("authara_access");
    app.drop_cookie("authara_refresh");
    let res = post_json(
        app,
        "/auth/api/v1/login",
        &json!({"email": e, "password": PASSWORD}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let cookie = access_cookie(&res);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["access_token"], cookie);
    passes(app, "JSON login", &cookie, "app", admin).await;

    let res = reqwest::Client::new()
        .post(app.url("/auth/api/v1/tokens/refresh"))
        .json(&json!({"refresh_token": body["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let refreshed: Value = res.json().await.unwrap();
    let token = refreshed["access_token"].as_str().unwrap();
    passes(app, "JSON token refresh", token, "app", admin).await;

    if admin {
        let res = app
            .post_api("/auth/api/v1/sessions/refresh?audience=admin")
            .await;
        assert_eq!(res.status(), 200);
        let token = access_cookie(&res);
        passes(app, "admin cookie refresh", &token, "admin", true).await;
        // An application's verifier (audience `app`) does not take an admin token.
        assert_eq!(
            GoVerifier::for_test_server("app")
                .verify(&token, app_now(app))
                .map(|_| ()),
            Err(Refusal::Audience)
        );

        app.drop_cookie("authara_access");
        app.drop_cookie("authara_refresh");
        let res = post_json(
            app,
            "/auth/api/v1/login?audience=admin",
            &json!({"email": e, "password": PASSWORD}),
        )
        .await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        let token = body["access_token"].as_str().unwrap();
        passes(app, "admin JSON login", token, "admin", true).await;
        let res = reqwest::Client::new()
            .post(app.url("/auth/api/v1/tokens/refresh"))
            .json(&json!({"refresh_token": body["refresh_token"], "audience": "admin"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let refreshed: Value = res.json().await.unwrap();
        let token = refreshed["access_token"].as_str().unwrap();
        passes(app, "admin JSON token refresh", token, "admin", true).await;
    }
    // Leave the jar with an app session, as a browser of the application has.
    app.drop_cookie("authara_access");
    app.drop_cookie("authara_refresh");
    assert_eq!(app.login(&e, PASSWORD).await.status(), 303);
}

async fn a_plain_users_tokens_from_every_flow_pass_the_go_rules(b: Backend) {
    let app = TestApp::spawn(b).await;
    every_flow(&app, "gouser", false, false).await;
    let other = TestApp::spawn(b).await;
    every_flow(&other, "gojson", false, true).await;
}

async fn an_admins_tokens_from_every_flow_pass_the_go_rules(b: Backend) {
    let app = TestApp::spawn(b).await;
    every_flow(&app, "goadmin", true, false).await;
}

/// `multi` mode: signup's personal organization, then a team organization made through the
/// internal API and switched to; the switch's tokens and the refreshes after it name the team.
async fn tokens_after_an_organization_switch_pass_the_go_rules(b: Backend) {
    let app = TestApp::spawn_with(
        b,
        &[
            ("AUTHARA_ORG_MODE", "multi"),
            ("AUTHARA_INTERNAL_API_TOKEN", INTERNAL_TOKEN),
        ],
    )
    .await;
    for (local, admin) in [("gomulti", false), ("gomultiadmin", true)] {
        app.drop_cookie("authara_access");
        app.drop_cookie("authara_refresh");
        every_flow(&app, local, admin, false).await;
        let (_, me) = app.user().await;
        let personal = me["organization"]["id"].as_str().unwrap().to_owned();
        let res = reqwest::Client::new()
            .post(app.url("/auth/internal/v1/organizations"))
            .bearer_auth(INTERNAL_TOKEN)
            .json(&json!({"name": format!("{local} team"), "created_by_user_id": me["id"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let created: Value = res.json().await.unwrap();
        let team = created["organization"]["id"].as_str().unwrap().to_owned();
        assert_ne!(team, personal);

        let res = app
            .post_api(&format!("/auth/api/v1/organizations/{team}/switch"))
            .await;
        assert_eq!(res.status(), 200);
        let cookie = access_cookie(&res);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["access_token"], cookie);
        let v = passes(&app, "switch", &cookie, "app", admin).await;
        assert_eq!(v.org_id.to_string(), team);
        assert_eq!(v.org_role, "owner");

        let res = app.post_api("/auth/api/v1/sessions/refresh").await;
        assert_eq!(res.status(), 200);
        let v = passes(
            &app,
            "refresh after switch",
            &access_cookie(&res),
            "app",
            admin,
        )
        .await;
        assert_eq!(v.org_id.to_string(), team);

        // And back to the personal organization.
        let res = app
            .post_api(&format!("/auth/api/v1/organizations/{personal}/switch"))
            .await;
        assert_eq!(res.status(), 200);
        let v = passes(&app, "switch back", &access_cookie(&res), "app", admin).await;
        assert_eq!(v.org_id.to_string(), personal);
    }
}

// --- The restated verifier is not a rubber stamp: hand-made tokens. ---

/// Signs `claims` under `header` with `key`, as any HS256 signer would.
fn forge(header: &Value, claims: &Value, key: &[u8]) -> String {
    let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).unwrap());
    let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{h}.{p}").as_bytes());
    let s = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{h}.{p}.{s}")
}

/// The test server's header.
fn good_header() -> Value {
    json!({"alg": "HS256", "typ": "JWT", "kid": KID})
}

/// Claims shaped as our server issues them.
fn good_claims() -> Value {
    let now = NOW;
    json!({
        "iss": ISSUER,
        "sub": Uuid::new_v4(),
        "aud": ["app"],
        "iat": now,
        "exp": now + 900,
        "sid": Uuid::new_v4(),
        "org_id": Uuid::new_v4(),
        "org_role": "member",
        "roles": ["authara:admin"],
    })
}

/// `claims` signed with the test key, verified for audience `app`.
fn verify_forged(claims: &Value) -> Result<(), Refusal> {
    verify_token(&forge(&good_header(), claims, &TEST_KEY))
}

fn verify_token(token: &str) -> Result<(), Refusal> {
    GoVerifier::for_test_server("app")
        .verify(token, NOW)
        .map(|_| ())
}

/// `good_claims` with `name` set to `value` (`None`: removed).
fn with(name: &str, value: Option<Value>) -> Value {
    let mut c = good_claims();
    let map = c.as_object_mut().unwrap();
    match value {
        Some(v) => map.insert(name.to_owned(), v),
        None => map.remove(name),
    };
    c
}

#[test]
fn the_baseline_forged_token_passes_so_each_refusal_below_is_its_one_change() {
    assert_eq!(verify_forged(&good_claims()), Ok(()));
    // `roles` may be `null` (Go's nil slice), empty, or absent.
    for roles in [Some(Value::Null), Some(json!([])), None] {
        assert_eq!(verify_forged(&with("roles", roles)), Ok(()));
    }
    // `aud` as a single string is a `ClaimStrings` too.
    assert_eq!(verify_forged(&with("aud", Some(json!("app")))), Ok(()));
    assert_eq!(
        verify_forged(&with("aud", Some(json!(["other", "app"])))),
        Ok(())
    );
}

#[test]
fn organization_claims_are_required() {
    assert_eq!(
        verify_forged(&with("org_id", None)),
        Err(Refusal::OrganizationId)
    );
    for bad in [
        json!(Uuid::nil()),
        json!("not-a-uuid"),
        json!(""),
        json!(null),
        json!(42),
    ] {
        assert_eq!(
            verify_forged(&with("org_id", Some(bad.clone()))),
            Err(Refusal::OrganizationId),
            "{bad}"
        );
    }
    for bad in [Some(json!("")), Some(json!(null)), Some(json!(1)), None] {
        assert_eq!(
            verify_forged(&with("org_role", bad.clone())),
            Err(Refusal::OrganizationRole),
            "{bad:?}"
        );
    }
}

#[test]
fn every_role_needs_the_authara_prefix() {
    for bad in [
        json!(["admin"]),
        json!(["authara:admin", "admin"]),
        json!(["Authara:admin"]),
        json!([""]),
        json!([1]),
        json!("authara:admin"),
    ] {
        assert_eq!(
            verify_forged(&with("roles", Some(bad.clone()))),
            Err(Refusal::RoleNamespace),
            "{bad}"
        );
    }
}

#[test]
fn the_header_must_be_hs256_under_a_configured_kid() {
    let c = good_claims();
    for (header, refusal) in [
        (json!({"alg": "HS256", "kid": "other"}), Refusal::UnknownKey),
        (json!({"alg": "HS256"}), Refusal::UnknownKey),
        (json!({"alg": "HS256", "kid": 7}), Refusal::UnknownKey),
        (json!({"alg": "HS512", "kid": KID}), Refusal::Algorithm),
        (json!({"alg": "hs256", "kid": KID}), Refusal::Algorithm),
        (json!({"alg": "none", "kid": KID}), Refusal::Algorithm),
        (json!({"kid": KID}), Refusal::Algorithm),
    ] {
        assert_eq!(
            verify_token(&forge(&header, &c, &TEST_KEY)),
            Err(refusal),
            "{header}"
        );
    }
    // `alg: none` with no signature at all, as such tokens come.
    let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"test"}"#);
    let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap());
    assert_eq!(verify_token(&format!("{h}.{p}.")), Err(Refusal::Algorithm));
}

#[test]
fn the_signature_must_be_the_configured_keys() {
    let c = good_claims();
    assert_eq!(
        verify_token(&forge(&good_header(), &c, &[8; 32])),
        Err(Refusal::Signature)
    );
    // A claim changed after signing.
    let token = forge(&good_header(), &c, &TEST_KEY);
    let mut parts: Vec<&str> = token.split('.').collect();
    let tampered = URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&with("org_role", Some(json!("owner")))).unwrap());
    parts[1] = &tampered;
    assert_eq!(verify_token(&parts.join(".")), Err(Refusal::Signature));
    // Not a JWT.
    for bad in ["", "a.b", "a.b.c.d", "!!.!!.!!"] {
        assert_eq!(verify_token(bad), Err(Refusal::Malformed), "{bad}");
    }
}

#[test]
fn issuer_and_audience_must_match() {
    for iss in [Some(json!("authara")), Some(json!("")), None] {
        assert_eq!(
            verify_forged(&with("iss", iss.clone())),
            Err(Refusal::Issuer),
            "{iss:?}"
        );
    }
    for aud in [
        Some(json!(["admin"])),
        Some(json!("admin")),
        Some(json!([])),
        Some(json!("")),
        None,
    ] {
        assert_eq!(
            verify_forged(&with("aud", aud.clone())),
            Err(Refusal::Audience),
            "{aud:?}"
        );
    }
}

#[test]
fn times_are_checked_with_the_sdks_two_minute_leeway() {
    let now = NOW;
    // Expired, but within the leeway: the Go SDK still takes it.
    assert_eq!(verify_forged(&with("exp", Some(json!(now - 60)))), Ok(()));
    // Expired beyond the leeway.
    assert_eq!(
        verify_forged(&with("exp", Some(json!(now - LEEWAY_SECONDS - 1)))),
        Err(Refusal::Expired)
    );
    assert_eq!(verify_forged(&with("exp", None)), Err(Refusal::Expired));
    assert_eq!(
        verify_forged(&with("exp", Some(json!("soon")))),
        Err(Refusal::Malformed)
    );
    // Issued or valid only in the future, beyond the leeway; within it, taken.
    assert_eq!(verify_forged(&with("iat", Some(json!(now + 60)))), Ok(()));
    assert_eq!(
        verify_forged(&with("iat", Some(json!(now + LEEWAY_SECONDS + 60)))),
        Err(Refusal::IssuedInTheFuture)
    );
    assert_eq!(verify_forged(&with("nbf", Some(json!(now + 60)))), Ok(()));
    assert_eq!(
        verify_forged(&with("nbf", Some(json!(now + LEEWAY_SECONDS + 60)))),
        Err(Refusal::NotYetValid)
    );
}

#[test]
fn subject_and_session_must_be_uuids() {
    for bad in [Some(json!("")), Some(json!("user-1")), Some(json!(1)), None] {
        assert_eq!(
            verify_forged(&with("sub", bad.clone())),
            Err(Refusal::Subject),
            "{bad:?}"
        );
        assert_eq!(
            verify_forged(&with("sid", bad.clone())),
            Err(Refusal::Session),
            "{bad:?}"
        );
    }
}

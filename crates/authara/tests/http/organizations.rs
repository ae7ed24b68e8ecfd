//! Organizations (issue 11, `UPSTREAM.md` §1.8, §5.4, §5.6): the capabilities document, the
//! initial organization of each mode, the member-only routes, switching, role changes and
//! removals taking effect at once, the internal API, the mode pinned in the database, and the
//! backfill of a database from before organizations.

use crate::helpers::{claims, cookie_client, email, set_cookie, Backend, TestApp};
use crate::on_both;
use authara::config::DatabaseConfig;
use authara_core::clock::Clock as _;
use authara_core::org::OrgRole;
use authara_core::store::Effects;
use reqwest::cookie::CookieStore as _;
use reqwest::{Client, Method, Response, Url};
use serde_json::{json, Value};
use sqlx::Connection as _;
use std::sync::Arc;
use uuid::Uuid;

on_both!(
    capabilities_follow_the_mode_and_the_management_flag,
    signup_creates_the_initial_organization_of_the_mode,
    the_current_organization_and_its_members,
    management_routes_are_404_while_the_flag_is_off,
    management_routes_show_only_the_organization_of_the_token,
    personal_mode_hides_the_members,
    owners_and_admins_rename_members_do_not,
    switching_is_for_members_in_multi_mode_and_replaces_the_tokens,
    a_changed_role_shows_at_once,
    a_removed_member_loses_the_organization_at_once,
    the_internal_api_needs_its_token,
    internal_create_team_organization,
    internal_delete_organization_rules,
    internal_remove_member_rules,
    internal_remove_keeps_a_users_last_membership,
    internal_ownership_transfer_swaps_the_roles,
    deleting_a_user_keeps_organizations_owned,
    the_mode_is_pinned_at_the_first_start,
    an_upgrade_gives_existing_users_and_sessions_an_organization,
);

/// The internal API token the tests configure.
pub(crate) const TOKEN: &str = "internal-test-token-0123456789abcdef";
pub(crate) const PASSWORD: &str = "correct horse battery";

/// A server in `mode`, with public management on or off and the internal API token set.
pub(crate) async fn spawn(b: Backend, mode: &str, management: bool) -> TestApp {
    spawn_with(b, mode, management, &[]).await
}

pub(crate) async fn spawn_with(
    b: Backend,
    mode: &str,
    management: bool,
    extra: &[(&str, &str)],
) -> TestApp {
    let management = if management { "true" } else { "false" };
    let mut vars = vec![
        ("AUTHARA_ORG_MODE", mode),
        ("AUTHARA_PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED", management),
        ("AUTHARA_INTERNAL_API_TOKEN", TOKEN),
    ];
    vars.extend_from_slice(extra);
    TestApp::spawn_with(b, &vars).await
}

/// One user's browser: its own cookie jar.
pub(crate) struct Browser {
    pub(crate) client: Client,
    pub(crate) jar: Arc<reqwest::cookie::Jar>,
    /// The user's id, once signed up.
    pub(crate) id: Uuid,
}

impl Browser {
    /// Signs up `local` in a fresh browser (through the HTML form, as a person would).
    pub(crate) async fn signup(app: &TestApp, local: &str) -> Self {
        Self::enter(app, "/auth/signup", local).await
    }

    /// Logs `local` in from a fresh browser (the account exists).
    pub(crate) async fn login(app: &TestApp, local: &str) -> Self {
        Self::enter(app, "/auth/login", local).await
    }

    /// Posts the signup or login form (`path`) for `local` from a fresh browser; `303`.
    pub(crate) async fn enter(app: &TestApp, path: &str, local: &str) -> Self {
        let (client, jar) = cookie_client();
        let mut b = Self {
            client,
            jar,
            id: Uuid::nil(),
        };
        let csrf = b.csrf(app).await;
        let res = b
            .client
            .post(app.url(path))
            .form(&[
                ("email", email(local).as_str()),
                ("password", PASSWORD),
                ("csrf_token", csrf.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            303,
            "{}",
            res.text().await.unwrap_or_default()
        );
        let (status, user) = b.get(app, "/auth/api/v1/user").await;
        assert_eq!(status, 200);
        b.id = user["id"].as_str().unwrap().parse().unwrap();
        b
    }

    pub(crate) fn cookie(&self, app: &TestApp, name: &str) -> Option<String> {
        let url = Url::parse(&app.url("/")).unwrap();
        let header = self.jar.cookies(&url)?;
        header
            .to_str()
            .ok()?
            .split(';')
            .filter_map(|p| p.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    }

    pub(crate) fn access(&self, app: &TestApp) -> String {
        self.cookie(app, "authara_access")
            .expect("an access cookie")
    }

    fn refresh(&self, app: &TestApp) -> String {
        self.cookie(app, "authara_refresh")
            .expect("a refresh cookie")
    }

    pub(crate) async fn csrf(&self, app: &TestApp) -> String {
        if let Some(c) = self.cookie(app, "authara_csrf") {
            return c;
        }
        let res = self
            .client
            .get(app.url("/auth/api/v1/csrf"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        body["csrf_token"].as_str().unwrap().to_owned()
    }

    pub(crate) async fn get(&self, app: &TestApp, path: &str) -> (u16, Value) {
        parts(self.client.get(app.url(path)).send().await.unwrap()).await
    }

    /// A request with the CSRF header and an optional JSON body.
    pub(crate) async fn send(
        &self,
        app: &TestApp,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Response {
        let csrf = self.csrf(app).await;
        let mut req = self
            .client
            .request(method, app.url(path))
            .header("x-csrf-token", csrf);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.unwrap()
    }

    pub(crate) async fn user(&self, app: &TestApp) -> (u16, Value) {
        self.get(app, "/auth/api/v1/user").await
    }

    /// Switches this browser's session to `org`; returns the response's status and body.
    async fn switch(&self, app: &TestApp, org: Uuid) -> (u16, Value) {
        let path = format!("/auth/api/v1/organizations/{org}/switch");
        parts(self.send(app, Method::POST, &path, None).await).await
    }

    /// The cookie refresh (`POST /auth/api/v1/sessions/refresh`); returns the status.
    pub(crate) async fn refresh_status(&self, app: &TestApp) -> u16 {
        self.send(app, Method::POST, "/auth/api/v1/sessions/refresh", None)
            .await
            .status()
            .as_u16()
    }

    /// The organization id of the session's current access token.
    pub(crate) fn token_org(&self, app: &TestApp) -> Value {
        claims(&self.access(app))["org_id"].clone()
    }
}

pub(crate) async fn parts(res: Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, body)
}

/// `GET path` with only a bearer access token.
pub(crate) async fn bearer_get(app: &TestApp, access: &str, path: &str) -> (u16, Value) {
    parts(
        reqwest::Client::new()
            .get(app.url(path))
            .bearer_auth(access)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// `POST /auth/api/v1/tokens/refresh` with a refresh token in the body; returns the status.
async fn body_refresh(app: &TestApp, refresh: &str) -> u16 {
    reqwest::Client::new()
        .post(app.url("/auth/api/v1/tokens/refresh"))
        .json(&json!({ "refresh_token": refresh }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// An internal API request with `token` (`None`: no `Authorization` header).
pub(crate) async fn internal_with(
    app: &TestApp,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: &Value,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, app.url(path))
        .json(body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    parts(req.send().await.unwrap()).await
}

pub(crate) async fn internal(
    app: &TestApp,
    method: Method,
    path: &str,
    body: &Value,
) -> (u16, Value) {
    internal_with(app, Some(TOKEN), method, path, body).await
}

/// A team organization owned by `owner`, through the internal API, a second after whatever
/// came before (lists are oldest first, ties in id order).
pub(crate) async fn create_team(app: &TestApp, name: &str, owner: Uuid) -> Uuid {
    app.clock.advance(time::Duration::seconds(1));
    let (status, body) = internal(
        app,
        Method::POST,
        "/auth/internal/v1/organizations",
        &json!({ "name": name, "created_by_user_id": owner }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["organization"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Adds `user` to `org` with `role`, through the store (there is no route for it yet:
/// invitations come later).
async fn add_member(app: &TestApp, org: Uuid, user: Uuid, role: OrgRole) {
    app.store()
        .await
        .add_membership(org, user, role, app.clock.now(), Effects::none())
        .await
        .unwrap();
}

/// `DELETE /auth/internal/v1/organizations/{org}/members/{user}` by `actor`.
async fn remove(app: &TestApp, org: Uuid, user: Uuid, actor: Uuid) -> (u16, Value) {
    internal(
        app,
        Method::DELETE,
        &format!("/auth/internal/v1/organizations/{org}/members/{user}"),
        &json!({ "actor_user_id": actor }),
    )
    .await
}

/// Asserts an error body's status and code.
pub(crate) fn refused(got: (u16, Value), status: u16, code: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["error"]["code"], code, "{}", got.1);
}

/// The exact `403 forbidden` body: nothing about the organization asked for.
pub(crate) fn forbidden(got: (u16, Value)) {
    assert_eq!(got.0, 403, "{}", got.1);
    assert_eq!(
        got.1,
        json!({"error": {"code": "forbidden", "message": "Not allowed."}})
    );
}

/// The ids of a user's organizations, in order.
async fn organization_ids(app: &TestApp, b: &Browser) -> Vec<String> {
    let (status, body) = b.get(app, "/auth/api/v1/organizations").await;
    assert_eq!(status, 200, "{body}");
    body["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn capabilities_follow_the_mode_and_the_management_flag(b: Backend) {
    for (mode, visible, invitations, multi) in [
        ("personal", false, false, false),
        ("single", true, true, false),
        ("multi", true, true, true),
    ] {
        for management in [false, true] {
            let app = spawn(b, mode, management).await;
            // Signed-in callers only.
            assert_eq!(app.get("/auth/api/v1/capabilities").await.status(), 401);
            let user = Browser::signup(&app, "caps").await;
            let (status, body) = user.get(&app, "/auth/api/v1/capabilities").await;
            assert_eq!(status, 200);
            assert_eq!(
                body,
                json!({
                    "organization_mode": mode,
                    "has_visible_organizations": visible,
                    "allows_invitations": invitations,
                    "allows_public_organization_management": management,
                    "allows_org_switching": multi,
                    "allows_user_created_team_orgs": multi,
                    "allows_organization_leave": multi,
                }),
                "{mode}, management {management}"
            );
        }
    }
}

async fn signup_creates_the_initial_organization_of_the_mode(b: Backend) {
    for (mode, kind) in [
        ("personal", "personal"),
        ("single", "team"),
        ("multi", "personal"),
    ] {
        let app = spawn(b, mode, true).await;
        let alice = Browser::signup(&app, "alice").await;
        let (status, user) = alice.user(&app).await;
        assert_eq!(status, 200);
        let org = &user["organization"];
        let keys: Vec<&String> = org.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 3, "{org}");
        assert_eq!(
            org["name"], user["username"],
            "{mode}: named after the user"
        );
        assert_eq!(org["role"], "owner", "{mode}");
        let id = org["id"].as_str().unwrap();
        // The access token carries the organization and the role.
        let c = claims(&alice.access(&app));
        assert_eq!(c["org_id"], id, "{mode}");
        assert_eq!(c["org_role"], "owner", "{mode}");
        // Exactly one organization, of the mode's kind, created by the user.
        assert_eq!(organization_ids(&app, &alice).await, [id]);
        let (status, body) = alice
            .get(&app, &format!("/auth/api/v1/organizations/{id}"))
            .await;
        assert_eq!(status, 200, "{body}");
        let o = &body["organization"];
        assert_eq!(o["kind"], kind, "{mode}");
        assert_eq!(o["name"], user["username"]);
        assert_eq!(o["created_by_user_id"], user["id"]);
        assert!(o["created_at"].as_str().unwrap().ends_with('Z'));
        // A second user gets an organization of their own.
        let bob = Browser::signup(&app, "bob").await;
        let (_, bob_user) = bob.user(&app).await;
        assert_ne!(bob_user["organization"]["id"], id);
        assert_eq!(bob_user["organization"]["role"], "owner");
    }
}

async fn the_current_organization_and_its_members(b: Backend) {
    for mode in ["personal", "single", "multi"] {
        let app = spawn(b, mode, false).await;
        let alice = Browser::signup(&app, "cur").await;
        let (_, user) = alice.user(&app).await;
        let (status, current) = alice.get(&app, "/auth/api/v1/organizations/current").await;
        assert_eq!(status, 200);
        assert_eq!(current, user["organization"], "{mode}");
        let (status, list) = alice.get(&app, "/auth/api/v1/organizations").await;
        assert_eq!(status, 200);
        assert_eq!(list, json!({ "organizations": [user["organization"]] }));
        let members = alice
            .get(&app, "/auth/api/v1/organizations/current/members")
            .await;
        if mode == "personal" {
            forbidden(members);
        } else {
            assert_eq!(members.0, 200, "{}", members.1);
            let list = members.1["members"].as_array().unwrap().clone();
            assert_eq!(list.len(), 1);
            let m = &list[0];
            assert_eq!(m["user_id"], user["id"]);
            assert_eq!(m["email"], user["email"]);
            assert_eq!(m["username"], user["username"]);
            assert_eq!(m["role"], "owner");
            assert!(m["created_at"].as_str().unwrap().ends_with('Z'));
            assert_eq!(m.as_object().unwrap().len(), 5, "{m}");
        }
        // Signed-in callers only.
        for path in [
            "/auth/api/v1/organizations",
            "/auth/api/v1/organizations/current",
            "/auth/api/v1/organizations/current/members",
        ] {
            assert_eq!(app.get(path).await.status(), 401, "{path}");
        }
    }
}

async fn management_routes_are_404_while_the_flag_is_off(b: Backend) {
    let app = spawn(b, "multi", false).await;
    let alice = Browser::signup(&app, "off").await;
    let (_, user) = alice.user(&app).await;
    let org = user["organization"]["id"].as_str().unwrap();
    let me = alice.id;
    for path in [
        format!("/auth/api/v1/organizations/{org}"),
        format!("/auth/api/v1/organizations/{org}/members"),
        format!("/auth/api/v1/organizations/{org}/members/{me}"),
        format!("/auth/api/v1/users/{me}/memberships"),
        // Before the id is even looked at.
        "/auth/api/v1/organizations/not-a-uuid/members".to_owned(),
    ] {
        refused(alice.get(&app, &path).await, 404, "not_found");
    }
    let patch = alice
        .send(
            &app,
            Method::PATCH,
            &format!("/auth/api/v1/organizations/{org}"),
            Some(json!({"name": "Renamed"})),
        )
        .await;
    refused(parts(patch).await, 404, "not_found");
    assert_eq!(
        alice.user(&app).await.1["organization"],
        user["organization"]
    );
}

async fn management_routes_show_only_the_organization_of_the_token(b: Backend) {
    let app = spawn(b, "multi", true).await;
    let alice = Browser::signup(&app, "alice").await;
    let bob = Browser::signup(&app, "bob").await;
    let (_, a) = alice.user(&app).await;
    let (_, bu) = bob.user(&app).await;
    let own = a["organization"]["id"].as_str().unwrap().to_owned();
    let other = bu["organization"]["id"].as_str().unwrap().to_owned();
    let (me, them) = (alice.id, bob.id);

    // The own organization, its members, a member and the memberships.
    let (status, body) = alice
        .get(&app, &format!("/auth/api/v1/organizations/{own}"))
        .await;
    assert_eq!(status, 200);
    let o = body["organization"].as_object().unwrap();
    let mut keys: Vec<&str> = o.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "created_at",
            "created_by_user_id",
            "id",
            "kind",
            "name",
            "updated_at"
        ]
    );
    let (status, body) = alice
        .get(&app, &format!("/auth/api/v1/organizations/{own}/members"))
        .await;
    assert_eq!(status, 200);
    let members = body["members"].as_array().unwrap();
    assert_eq!(members.len(), 1);
    let m = &members[0];
    assert_eq!(m["organization_id"], own.as_str());
    assert_eq!(m["user_id"], me.to_string());
    assert_eq!(m["email"], a["email"]);
    assert_eq!(m["role"], "owner");
    assert_eq!(m["disabled"], false);
    assert_eq!(m.as_object().unwrap().len(), 8, "{m}");
    let (status, body) = alice
        .get(
            &app,
            &format!("/auth/api/v1/organizations/{own}/members/{me}"),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(&body["member"], m);
    refused(
        alice
            .get(
                &app,
                &format!("/auth/api/v1/organizations/{own}/members/{them}"),
            )
            .await,
        404,
        "membership_not_found",
    );
    let (status, body) = alice
        .get(&app, &format!("/auth/api/v1/users/{me}/memberships"))
        .await;
    assert_eq!(status, 200);
    let ms = body["memberships"].as_array().unwrap();
    assert_eq!(ms.len(), 1);
    assert_eq!(ms[0]["organization"]["id"], own.as_str());
    assert_eq!(ms[0]["membership"]["role"], "owner");
    assert_eq!(ms[0]["membership"]["user_id"], me.to_string());

    // Another organization: 403 with nothing of it in the body.
    let bob_name = bu["organization"]["name"].as_str().unwrap();
    for path in [
        format!("/auth/api/v1/organizations/{other}"),
        format!("/auth/api/v1/organizations/{other}/members"),
        format!("/auth/api/v1/organizations/{other}/members/{them}"),
        format!("/auth/api/v1/organizations/{other}/members/{me}"),
        format!("/auth/api/v1/users/{them}/memberships"),
        // Unknown ids are refused the same way (nothing tells them apart).
        format!("/auth/api/v1/organizations/{}", Uuid::new_v4()),
        format!("/auth/api/v1/users/{}/memberships", Uuid::new_v4()),
    ] {
        let got = alice.get(&app, &path).await;
        assert!(!got.1.to_string().contains(bob_name), "{path}: {}", got.1);
        forbidden(got);
    }
    let patch = alice
        .send(
            &app,
            Method::PATCH,
            &format!("/auth/api/v1/organizations/{other}"),
            Some(json!({"name": "Hijacked"})),
        )
        .await;
    forbidden(parts(patch).await);
    assert_eq!(bob.user(&app).await.1["organization"]["name"], bob_name);

    // An organization the caller is a member of, but not the one of the token: 403 too.
    let team = create_team(&app, "Team", me).await;
    forbidden(
        alice
            .get(&app, &format!("/auth/api/v1/organizations/{team}"))
            .await,
    );

    // Malformed ids: 400.
    for path in [
        "/auth/api/v1/organizations/not-a-uuid".to_owned(),
        "/auth/api/v1/organizations/not-a-uuid/members".to_owned(),
        format!("/auth/api/v1/organizations/{own}/members/not-a-uuid"),
        "/auth/api/v1/users/not-a-uuid/memberships".to_owned(),
    ] {
        refused(alice.get(&app, &path).await, 400, "invalid_request");
    }
    let patch = alice
        .send(
            &app,
            Method::PATCH,
            "/auth/api/v1/organizations/12345",
            Some(json!({"name": "x"})),
        )
        .await;
    refused(parts(patch).await, 400, "invalid_request");
    // Signed-in callers only.
    assert_eq!(
        app.get(&format!("/auth/api/v1/organizations/{own}"))
            .await
            .status(),
        401
    );
}

/// `PATCH /auth/api/v1/organizations/{org}` with `name`, from `b`'s browser.
async fn rename(app: &TestApp, b: &Browser, org: Uuid, name: &str) -> (u16, Value) {
    let path = format!("/auth/api/v1/organizations/{org}");
    parts(
        b.send(app, Method::PATCH, &path, Some(json!({ "name": name })))
            .await,
    )
    .await
}

async fn personal_mode_hides_the_members(b: Backend) {
    let app = spawn(b, "personal", true).await;
    let alice = Browser::signup(&app, "solo").await;
    let (_, user) = alice.user(&app).await;
    let org = user["organization"]["id"].as_str().unwrap();
    let me = alice.id;
    forbidden(
        alice
            .get(&app, &format!("/auth/api/v1/organizations/{org}/members"))
            .await,
    );
    let someone = Uuid::new_v4();
    forbidden(
        alice
            .get(
                &app,
                &format!("/auth/api/v1/organizations/{org}/members/{someone}"),
            )
            .await,
    );
    // The caller's own membership and organization are no secret.
    let (status, body) = alice
        .get(
            &app,
            &format!("/auth/api/v1/organizations/{org}/members/{me}"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["member"]["role"], "owner");
    let (status, body) = alice
        .get(&app, &format!("/auth/api/v1/users/{me}/memberships"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["memberships"].as_array().unwrap().len(), 1);
    assert_eq!(body["memberships"][0]["organization"]["kind"], "personal");
    // The owner may rename it.
    let (status, body) = rename(&app, &alice, org.parse().unwrap(), "Solo Inc").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(alice.user(&app).await.1["organization"]["name"], "Solo Inc");
}

async fn owners_and_admins_rename_members_do_not(b: Backend) {
    let app = spawn(b, "multi", true).await;
    let owner = Browser::signup(&app, "owner").await;
    let admin = Browser::signup(&app, "admin").await;
    let member = Browser::signup(&app, "member").await;
    let team = create_team(&app, "Acme", owner.id).await;
    add_member(&app, team, admin.id, OrgRole::Admin).await;
    add_member(&app, team, member.id, OrgRole::Member).await;
    for x in [&owner, &admin, &member] {
        assert_eq!(x.switch(&app, team).await.0, 200);
    }
    let path = format!("/auth/api/v1/organizations/{team}");
    let (status, body) = rename(&app, &owner, team, "  Acme Inc  ").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["organization"]["name"], "Acme Inc");
    assert_eq!(body["organization"]["kind"], "team");
    assert_eq!(body["organization"]["id"], team.to_string());
    let (status, body) = rename(&app, &admin, team, "Acme Admins").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["organization"]["name"], "Acme Admins");
    forbidden(rename(&app, &member, team, "Members Rule").await);
    // Every member sees the new name at once.
    for x in [&owner, &admin, &member] {
        let (_, user) = x.user(&app).await;
        assert_eq!(user["organization"]["name"], "Acme Admins");
    }
    // A bad name, a bad body, and no CSRF token.
    refused(
        rename(&app, &owner, team, "   ").await,
        400,
        "invalid_request",
    );
    refused(
        rename(&app, &owner, team, &"x".repeat(256)).await,
        400,
        "invalid_request",
    );
    let extra = owner
        .send(
            &app,
            Method::PATCH,
            &path,
            Some(json!({"name": "Acme", "kind": "personal"})),
        )
        .await;
    refused(parts(extra).await, 400, "invalid_request");
    let no_csrf = owner
        .client
        .patch(app.url(&path))
        .json(&json!({"name": "No CSRF"}))
        .send()
        .await
        .unwrap();
    refused(parts(no_csrf).await, 403, "csrf_invalid");
    let (_, user) = member.user(&app).await;
    assert_eq!(user["organization"]["name"], "Acme Admins");
    // A bearer token needs no CSRF token.
    let res = reqwest::Client::new()
        .patch(app.url(&path))
        .bearer_auth(owner.access(&app))
        .json(&json!({"name": "Bearer Co"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

async fn switching_is_for_members_in_multi_mode_and_replaces_the_tokens(b: Backend) {
    // Not in `personal` or `single` mode, not even to the caller's own organization.
    for mode in ["personal", "single"] {
        let app = spawn(b, mode, false).await;
        let alice = Browser::signup(&app, "nosw").await;
        let (_, user) = alice.user(&app).await;
        let org = user["organization"]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        forbidden(alice.switch(&app, org).await);
    }

    let app = spawn(b, "multi", false).await;
    let alice = Browser::signup(&app, "alice").await;
    let bob = Browser::signup(&app, "bob").await;
    let (_, before) = alice.user(&app).await;
    let personal = before["organization"]["id"].as_str().unwrap().to_owned();
    let team = create_team(&app, "Switchers", alice.id).await;
    // A non-member, an unknown and a malformed organization.
    forbidden(bob.switch(&app, team).await);
    forbidden(bob.switch(&app, Uuid::new_v4()).await);
    let bad = bob
        .send(
            &app,
            Method::POST,
            "/auth/api/v1/organizations/nope/switch",
            None,
        )
        .await;
    refused(parts(bad).await, 400, "invalid_request");
    assert_eq!(
        bob.user(&app).await.0,
        200,
        "a refused switch changes nothing"
    );
    // A cookie session needs the CSRF token.
    let no_csrf = alice
        .client
        .post(app.url(&format!("/auth/api/v1/organizations/{team}/switch")))
        .send()
        .await
        .unwrap();
    refused(parts(no_csrf).await, 403, "csrf_invalid");
    assert_eq!(alice.token_org(&app), personal.as_str());

    let old_access = alice.access(&app);
    let old_refresh = alice.refresh(&app);
    let res = alice
        .send(
            &app,
            Method::POST,
            &format!("/auth/api/v1/organizations/{team}/switch"),
            None,
        )
        .await;
    assert_eq!(res.status(), 200);
    let access_cookie = set_cookie(res.headers(), "authara_access").expect("access cookie");
    let refresh_cookie = set_cookie(res.headers(), "authara_refresh").expect("refresh cookie");
    let body: Value = res.json().await.unwrap();
    let mut keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    keys.sort_unstable();
    assert_eq!(keys, ["access_token", "refresh_token"]);
    let new_access = body["access_token"].as_str().unwrap();
    let new_refresh = body["refresh_token"].as_str().unwrap();
    assert!(access_cookie.starts_with(&format!("authara_access={new_access};")));
    assert!(refresh_cookie.starts_with(&format!("authara_refresh={new_refresh};")));
    assert_ne!(new_refresh, old_refresh);
    let c = claims(new_access);
    assert_eq!(c["org_id"], team.to_string());
    assert_eq!(c["org_role"], "owner");
    assert_eq!(c["sid"], claims(&old_access)["sid"], "the same session");

    // The new token shows the new organization; the old one no longer authenticates.
    let (status, user) = bearer_get(&app, new_access, "/auth/api/v1/user").await;
    assert_eq!(status, 200);
    assert_eq!(
        user["organization"],
        json!({"id": team.to_string(), "name": "Switchers", "role": "owner"})
    );
    assert_eq!(
        alice.user(&app).await.1["organization"]["id"],
        team.to_string()
    );
    assert_eq!(
        bearer_get(&app, &old_access, "/auth/api/v1/user").await.0,
        401
    );
    // The old refresh token no longer refreshes; the new one does, in the new organization.
    assert_eq!(body_refresh(&app, &old_refresh).await, 401);
    assert_eq!(alice.refresh_status(&app).await, 200);
    assert_eq!(alice.token_org(&app), team.to_string());
    // A new login acts in the personal organization, whatever another session chose.
    let other = Browser::login(&app, "alice").await;
    assert_eq!(
        other.user(&app).await.1["organization"]["id"],
        personal.as_str()
    );
    assert_eq!(alice.token_org(&app), team.to_string());
    // And back.
    let personal_id: Uuid = personal.parse().unwrap();
    assert_eq!(alice.switch(&app, personal_id).await.0, 200);
    let (_, user) = alice.user(&app).await;
    assert_eq!(user["organization"], before["organization"]);
    assert_eq!(
        organization_ids(&app, &alice).await,
        [personal.clone(), team.to_string()]
    );
}

async fn a_changed_role_shows_at_once(b: Backend) {
    // The role is changed behind the server's back: without the session cache, which only
    // hears of the server's own changes on SQLite.
    let app = spawn_with(b, "multi", true, &[("AUTHARA_SESSION_CACHE_SECONDS", "0")]).await;
    let owner = Browser::signup(&app, "owner").await;
    let bob = Browser::signup(&app, "bob").await;
    let team = create_team(&app, "Roles", owner.id).await;
    add_member(&app, team, bob.id, OrgRole::Member).await;
    assert_eq!(bob.switch(&app, team).await.0, 200);
    assert_eq!(bob.user(&app).await.1["organization"]["role"], "member");
    assert_eq!(rename(&app, &bob, team, "Bob's").await.0, 403);
    app.store()
        .await
        .set_membership_role(
            team,
            bob.id,
            OrgRole::Admin,
            app.clock.now(),
            Effects::none(),
        )
        .await
        .unwrap();
    // No new login, not even a refresh: the next request sees the new role.
    let (status, user) = bob.user(&app).await;
    assert_eq!(status, 200);
    assert_eq!(user["organization"]["role"], "admin");
    let (_, current) = bob.get(&app, "/auth/api/v1/organizations/current").await;
    assert_eq!(current["role"], "admin");
    assert_eq!(rename(&app, &bob, team, "Bob's").await.0, 200);
    app.store()
        .await
        .set_membership_role(
            team,
            bob.id,
            OrgRole::Member,
            app.clock.now(),
            Effects::none(),
        )
        .await
        .unwrap();
    assert_eq!(bob.user(&app).await.1["organization"]["role"], "member");
    assert_eq!(rename(&app, &bob, team, "Bob's").await.0, 403);
    // A refresh signs the new role into the token.
    assert_eq!(bob.refresh_status(&app).await, 200);
    assert_eq!(claims(&bob.access(&app))["org_role"], "member");
}

async fn a_removed_member_loses_the_organization_at_once(b: Backend) {
    let app = spawn(b, "multi", true).await;
    let owner = Browser::signup(&app, "owner").await;
    let bob = Browser::signup(&app, "bob").await;
    let team = create_team(&app, "Leavers", owner.id).await;
    add_member(&app, team, bob.id, OrgRole::Member).await;
    assert_eq!(bob.switch(&app, team).await.0, 200);
    assert_eq!(bob.user(&app).await.0, 200);
    // Bob's phone acts in his personal organization.
    let phone = Browser::login(&app, "bob").await;
    assert_ne!(
        phone.user(&app).await.1["organization"]["id"],
        team.to_string()
    );
    let access = bob.access(&app);
    let (status, body) = remove(&app, team, bob.id, owner.id).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(bob.user(&app).await.0, 401, "the session acting there ends");
    assert_eq!(
        bearer_get(&app, &access, "/auth/api/v1/organizations/current")
            .await
            .0,
        401
    );
    assert_eq!(bob.refresh_status(&app).await, 401, "and does not refresh");
    // His session acting elsewhere is untouched.
    assert_eq!(phone.user(&app).await.0, 200);
    assert_eq!(phone.refresh_status(&app).await, 200);
    // Bob keeps his account and his personal organization.
    let again = Browser::login(&app, "bob").await;
    let (status, user) = again.user(&app).await;
    assert_eq!(status, 200);
    assert_ne!(user["organization"]["id"], team.to_string());
    assert_eq!(organization_ids(&app, &again).await.len(), 1);
    // The owner is unaffected.
    assert_eq!(owner.user(&app).await.0, 200);
}

async fn the_internal_api_needs_its_token(b: Backend) {
    // No token configured: everything is 401, whatever is presented.
    let app = TestApp::spawn_with(b, &[("AUTHARA_ORG_MODE", "multi")]).await;
    let alice = Browser::signup(&app, "notoken").await;
    let body = json!({"name": "T", "created_by_user_id": alice.id});
    let path = "/auth/internal/v1/organizations";
    for token in [None, Some(""), Some(TOKEN)] {
        refused(
            internal_with(&app, token, Method::POST, path, &body).await,
            401,
            "unauthorized",
        );
    }
    drop(app);

    let app = spawn(b, "multi", false).await;
    let alice = Browser::signup(&app, "token").await;
    let body = json!({"name": "T", "created_by_user_id": alice.id});
    let wrong = format!("{TOKEN}x");
    for token in [None, Some("wrong"), Some(wrong.as_str()), Some(&TOKEN[1..])] {
        refused(
            internal_with(&app, token, Method::POST, path, &body).await,
            401,
            "unauthorized",
        );
    }
    // Not a session: an access token is no internal token.
    let access = alice.access(&app);
    refused(
        internal_with(&app, Some(&access), Method::POST, path, &body).await,
        401,
        "unauthorized",
    );
    // Basic auth with the token is not a bearer token.
    let res = reqwest::Client::new()
        .post(app.url(path))
        .basic_auth(TOKEN, None::<&str>)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(organization_ids(&app, &alice).await.len(), 1);
    // The right token, without CSRF or cookies.
    assert_eq!(
        internal_with(&app, Some(TOKEN), Method::POST, path, &body)
            .await
            .0,
        201
    );
    assert_eq!(organization_ids(&app, &alice).await.len(), 2);
}

async fn internal_create_team_organization(b: Backend) {
    let path = "/auth/internal/v1/organizations";
    // Not in `single` (nor `personal`) mode.
    for mode in ["single", "personal"] {
        let app = spawn(b, mode, false).await;
        let alice = Browser::signup(&app, "one").await;
        let got = internal(
            &app,
            Method::POST,
            path,
            &json!({"name": "Team", "created_by_user_id": alice.id}),
        )
        .await;
        forbidden(got);
        assert_eq!(organization_ids(&app, &alice).await.len(), 1);
    }

    let app = spawn(b, "multi", false).await;
    let alice = Browser::signup(&app, "alice").await;
    app.clock.advance(time::Duration::seconds(1));
    let (status, body) = internal(
        &app,
        Method::POST,
        path,
        &json!({"name": "  Acme  ", "created_by_user_id": alice.id}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let o = &body["organization"];
    assert_eq!(o["kind"], "team");
    assert_eq!(o["name"], "Acme");
    assert_eq!(o["created_by_user_id"], alice.id.to_string());
    let m = &body["membership"];
    assert_eq!(m["role"], "owner");
    assert_eq!(m["user_id"], alice.id.to_string());
    assert_eq!(m["organization_id"], o["id"]);
    let mut keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    keys.sort_unstable();
    assert_eq!(keys, ["membership", "organization"]);
    let (_, list) = alice.get(&app, "/auth/api/v1/organizations").await;
    let list = list["organizations"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2);
    assert_eq!(
        list[1],
        json!({"id": o["id"], "name": "Acme", "role": "owner"})
    );
    // The session still acts in the personal organization.
    assert_ne!(alice.user(&app).await.1["organization"]["id"], o["id"]);

    refused(
        internal(
            &app,
            Method::POST,
            path,
            &json!({"name": "Ghost", "created_by_user_id": Uuid::new_v4()}),
        )
        .await,
        404,
        "user_not_found",
    );
    for bad in [
        json!({"name": "Acme", "created_by_user_id": alice.id, "kind": "personal"}),
        json!({"name": "Acme"}),
        json!({"name": "   ", "created_by_user_id": alice.id}),
        json!({"name": "Acme", "created_by_user_id": "not-a-uuid"}),
        json!(["Acme"]),
    ] {
        refused(
            internal(&app, Method::POST, path, &bad).await,
            400,
            "invalid_request",
        );
    }
    let res = reqwest::Client::new()
        .post(app.url(path))
        .bearer_auth(TOKEN)
        .header("content-type", "text/plain")
        .body(json!({"name": "Acme", "created_by_user_id": alice.id}).to_string())
        .send()
        .await
        .unwrap();
    refused(parts(res).await, 400, "invalid_request");
    assert_eq!(organization_ids(&app, &alice).await.len(), 2);
}

/// `DELETE /auth/internal/v1/organizations/{org}` by `actor`.
async fn delete(app: &TestApp, org: Uuid, actor: Uuid) -> (u16, Value) {
    internal(
        app,
        Method::DELETE,
        &format!("/auth/internal/v1/organizations/{org}"),
        &json!({ "actor_user_id": actor }),
    )
    .await
}

async fn internal_delete_organization_rules(b: Backend) {
    let app = spawn(b, "multi", false).await;
    let owner = Browser::signup(&app, "owner").await;
    let admin = Browser::signup(&app, "admin").await;
    let stranger = Browser::signup(&app, "stranger").await;
    let team = create_team(&app, "Doomed", owner.id).await;
    add_member(&app, team, admin.id, OrgRole::Admin).await;
    let (_, user) = owner.user(&app).await;
    let personal: Uuid = user["organization"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    refused(
        delete(&app, Uuid::new_v4(), owner.id).await,
        404,
        "organization_not_found",
    );
    refused(
        delete(&app, team, stranger.id).await,
        403,
        "actor_not_member",
    );
    refused(delete(&app, team, admin.id).await, 403, "actor_not_allowed");
    refused(
        delete(&app, personal, owner.id).await,
        409,
        "personal_organization_immutable",
    );
    refused(
        delete(&app, team, owner.id).await,
        409,
        "organization_has_other_members",
    );
    for bad in [
        json!({"actor_user_id": owner.id, "force": true}),
        json!({}),
        json!({"actor_user_id": "nope"}),
    ] {
        let path = format!("/auth/internal/v1/organizations/{team}");
        refused(
            internal(&app, Method::DELETE, &path, &bad).await,
            400,
            "invalid_request",
        );
    }
    refused(
        internal(
            &app,
            Method::DELETE,
            "/auth/internal/v1/organizations/not-a-uuid",
            &json!({"actor_user_id": owner.id}),
        )
        .await,
        400,
        "invalid_request",
    );
    assert_eq!(organization_ids(&app, &owner).await.len(), 2);

    // Alone in it, with another organization to fall back on: deleted.
    assert_eq!(remove(&app, team, admin.id, owner.id).await.0, 204);
    assert_eq!(owner.switch(&app, team).await.0, 200);
    let (status, body) = delete(&app, team, owner.id).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(body, Value::Null);
    // The session that acted in it is no longer live; the account is.
    assert_eq!(owner.user(&app).await.0, 401);
    let again = Browser::login(&app, "owner").await;
    assert_eq!(organization_ids(&app, &again).await, [personal.to_string()]);
    refused(
        delete(&app, team, owner.id).await,
        404,
        "organization_not_found",
    );
}

/// How many members `org` has, as stored.
async fn members_of(app: &TestApp, org: Uuid) -> usize {
    app.store().await.list_members(org).await.unwrap().len()
}

async fn internal_remove_member_rules(b: Backend) {
    let app = spawn(b, "multi", false).await;
    let owner = Browser::signup(&app, "owner").await;
    let admin = Browser::signup(&app, "admin").await;
    let member = Browser::signup(&app, "member").await;
    let other = Browser::signup(&app, "other").await;
    let stranger = Browser::signup(&app, "stranger").await;
    let team = create_team(&app, "Crew", owner.id).await;
    add_member(&app, team, admin.id, OrgRole::Admin).await;
    add_member(&app, team, member.id, OrgRole::Member).await;
    add_member(&app, team, other.id, OrgRole::Member).await;

    refused(
        remove(&app, Uuid::new_v4(), member.id, owner.id).await,
        404,
        "organization_not_found",
    );
    refused(
        remove(&app, team, stranger.id, owner.id).await,
        404,
        "membership_not_found",
    );
    refused(
        remove(&app, team, member.id, stranger.id).await,
        403,
        "actor_not_member",
    );
    // An admin cannot remove the owner; a member removes nobody else.
    refused(
        remove(&app, team, owner.id, admin.id).await,
        403,
        "actor_not_allowed",
    );
    refused(
        remove(&app, team, other.id, member.id).await,
        403,
        "actor_not_allowed",
    );
    refused(
        remove(&app, team, admin.id, member.id).await,
        403,
        "actor_not_allowed",
    );
    // The last owner cannot go, not even by leaving.
    refused(
        remove(&app, team, owner.id, owner.id).await,
        409,
        "last_organization_owner",
    );
    // A personal organization's membership is not removable.
    let (_, u) = member.user(&app).await;
    let member_personal: Uuid = u["organization"]["id"].as_str().unwrap().parse().unwrap();
    refused(
        remove(&app, member_personal, member.id, member.id).await,
        409,
        "personal_organization_immutable",
    );
    for bad in [
        json!({"actor_user_id": owner.id, "reason": "spam"}),
        json!({}),
    ] {
        let path = format!(
            "/auth/internal/v1/organizations/{team}/members/{}",
            other.id
        );
        refused(
            internal(&app, Method::DELETE, &path, &bad).await,
            400,
            "invalid_request",
        );
    }
    refused(
        internal(
            &app,
            Method::DELETE,
            &format!("/auth/internal/v1/organizations/{team}/members/nope"),
            &json!({"actor_user_id": owner.id}),
        )
        .await,
        400,
        "invalid_request",
    );
    assert_eq!(members_of(&app, team).await, 4, "refusals change nothing");

    // A member leaves; an admin removes a member; the owner removes the admin.
    assert_eq!(remove(&app, team, member.id, member.id).await.0, 204);
    assert_eq!(remove(&app, team, other.id, admin.id).await.0, 204);
    assert_eq!(remove(&app, team, admin.id, owner.id).await.0, 204);
    assert_eq!(members_of(&app, team).await, 1);
    refused(
        remove(&app, team, member.id, owner.id).await,
        404,
        "membership_not_found",
    );
    // Someone who left is no actor there any more.
    refused(
        remove(&app, team, owner.id, member.id).await,
        403,
        "actor_not_member",
    );
    for x in [&member, &other, &admin] {
        assert_eq!(organization_ids(&app, x).await.len(), 1);
    }
    // With a second owner, the first may leave.
    add_member(&app, team, admin.id, OrgRole::Owner).await;
    assert_eq!(remove(&app, team, owner.id, owner.id).await.0, 204);
    assert_eq!(organization_ids(&app, &owner).await.len(), 1);
}

async fn internal_remove_keeps_a_users_last_membership(b: Backend) {
    // In `single` mode a user may have one (team) organization only: a second owner joins it,
    // and the first cannot be removed from their only organization.
    let app = spawn(b, "single", false).await;
    let dora = Browser::signup(&app, "dora").await;
    let ed = Browser::signup(&app, "ed").await;
    let (_, u) = dora.user(&app).await;
    let org: Uuid = u["organization"]["id"].as_str().unwrap().parse().unwrap();
    add_member(&app, org, ed.id, OrgRole::Owner).await;
    refused(
        remove(&app, org, dora.id, ed.id).await,
        409,
        "last_organization_member",
    );
    refused(
        remove(&app, org, dora.id, dora.id).await,
        409,
        "last_organization_member",
    );
    // Ed has his own organization too: he may leave Dora's.
    assert_eq!(remove(&app, org, ed.id, ed.id).await.0, 204);
    assert_eq!(dora.user(&app).await.0, 200);
}

/// `POST /auth/internal/v1/organizations/{org}/ownership-transfer` with `body`.
async fn transfer(app: &TestApp, org: Uuid, body: Value) -> (u16, Value) {
    let path = format!("/auth/internal/v1/organizations/{org}/ownership-transfer");
    internal(app, Method::POST, &path, &body).await
}

fn body(actor: Uuid, new_owner: Uuid) -> Value {
    json!({"actor_user_id": actor, "new_owner_user_id": new_owner})
}

async fn internal_ownership_transfer_swaps_the_roles(b: Backend) {
    let app = spawn(b, "multi", true).await;
    let owner = Browser::signup(&app, "owner").await;
    let heir = Browser::signup(&app, "heir").await;
    let stranger = Browser::signup(&app, "stranger").await;
    let team = create_team(&app, "Dynasty", owner.id).await;
    add_member(&app, team, heir.id, OrgRole::Member).await;
    refused(
        transfer(&app, Uuid::new_v4(), body(owner.id, heir.id)).await,
        404,
        "organization_not_found",
    );
    refused(
        transfer(&app, team, body(stranger.id, heir.id)).await,
        403,
        "actor_not_member",
    );
    refused(
        transfer(&app, team, body(heir.id, heir.id)).await,
        403,
        "actor_not_allowed",
    );
    refused(
        transfer(&app, team, body(owner.id, stranger.id)).await,
        404,
        "membership_not_found",
    );
    let (_, u) = owner.user(&app).await;
    let personal: Uuid = u["organization"]["id"].as_str().unwrap().parse().unwrap();
    refused(
        transfer(&app, personal, body(owner.id, owner.id)).await,
        409,
        "personal_organization_immutable",
    );
    for bad in [
        json!({"actor_user_id": owner.id}),
        json!({"actor_user_id": owner.id, "new_owner_user_id": heir.id, "keep": true}),
    ] {
        refused(transfer(&app, team, bad).await, 400, "invalid_request");
    }

    // Both act in the team, then the owner hands it over.
    assert_eq!(owner.switch(&app, team).await.0, 200);
    assert_eq!(heir.switch(&app, team).await.0, 200);
    let (status, got) = transfer(&app, team, body(owner.id, heir.id)).await;
    assert_eq!(status, 204, "{got}");
    for (x, role) in [(&owner, "admin"), (&heir, "owner")] {
        for viewer in [&owner, &heir] {
            let path = format!("/auth/api/v1/organizations/{team}/members/{}", x.id);
            let (status, got) = viewer.get(&app, &path).await;
            assert_eq!(status, 200, "{got}");
            assert_eq!(got["member"]["role"], role);
        }
    }
    // At once, for both sessions.
    assert_eq!(owner.user(&app).await.1["organization"]["role"], "admin");
    assert_eq!(heir.user(&app).await.1["organization"]["role"], "owner");
    // The new owner may remove the old one; the old one may no longer transfer.
    refused(
        transfer(&app, team, body(owner.id, owner.id)).await,
        403,
        "actor_not_allowed",
    );
    assert_eq!(remove(&app, team, owner.id, heir.id).await.0, 204);
}

async fn the_mode_is_pinned_at_the_first_start(b: Backend) {
    let mut app = spawn(b, "multi", false).await;
    Browser::signup(&app, "pin").await;
    app.stop().await;
    for (mode, pinned) in [("single", "multi"), ("personal", "multi")] {
        let err = app
            .try_restart_with(&[("AUTHARA_ORG_MODE", mode)])
            .await
            .expect_err("another mode refuses to start");
        assert_eq!(
            err.to_string(),
            format!("organization mode mismatch: database=\"{pinned}\" config=\"{mode}\"")
        );
    }
    // The pinned mode starts, and the users are still there.
    app.restart_with(&[("AUTHARA_ORG_MODE", "multi")]).await;
    assert_eq!(app.login(&email("pin"), PASSWORD).await.status(), 303);
    let (status, user) = app.user().await;
    assert_eq!(status, 200);
    assert_eq!(user["organization"]["role"], "owner");
    let res = app.get("/auth/api/v1/capabilities").await;
    let caps: Value = res.json().await.unwrap();
    assert_eq!(caps["organization_mode"], "multi");
}

/// Runs statements on the server's database, behind its back.
async fn execute(app: &TestApp, statements: &[&str]) {
    match &app.config.database {
        DatabaseConfig::Sqlite { url } => {
            let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
            for s in statements {
                sqlx::query(s).execute(&mut conn).await.unwrap();
            }
            conn.close().await.unwrap();
        }
        DatabaseConfig::Postgres(pg) => {
            let url = pg.url.as_ref().expect("tests use DATABASE_URL").expose();
            let schema = pg.schema.as_deref().expect("tests use a schema");
            let opts: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
            let opts = opts.options([("search_path", schema)]);
            let mut conn = sqlx::PgConnection::connect_with(&opts).await.unwrap();
            for s in statements {
                sqlx::query(s).execute(&mut conn).await.unwrap();
            }
            conn.close().await.unwrap();
        }
    }
}

async fn an_upgrade_gives_existing_users_and_sessions_an_organization(b: Backend) {
    let mut app = spawn(b, "single", false).await;
    // Alice signs up in the app's own browser, Bob elsewhere; both have live sessions.
    app.signed_up("alice").await;
    let bob = Browser::signup(&app, "bob").await;
    let old_access = app.cookie("authara_access").unwrap();
    app.stop().await;
    // The database as migration 0006 leaves one from before organizations: no mode pinned,
    // no organization, no membership, and no session acting in any.
    execute(
        &app,
        &[
            "UPDATE sessions SET active_organization_id = NULL",
            "DELETE FROM organization_memberships",
            "DELETE FROM organizations",
            "DELETE FROM organization_mode",
        ],
    )
    .await;
    // The upgrade's first start pins its mode, whatever an earlier start had.
    app.restart_with(&[("AUTHARA_ORG_MODE", "multi")]).await;
    // A token signed for an organization that is gone does not authenticate.
    assert_eq!(app.user_status_with(&old_access).await, 401);
    // The old session's refresh cookie still refreshes, into the user's new organization.
    app.drop_cookie("authara_access");
    let res = app.post_api("/auth/api/v1/sessions/refresh").await;
    assert_eq!(
        res.status(),
        200,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let (status, user) = app.user().await;
    assert_eq!(status, 200);
    let org = &user["organization"];
    assert_eq!(org["name"], user["username"]);
    assert_eq!(org["role"], "owner");
    let c = claims(&app.cookie("authara_access").unwrap());
    assert_eq!(c["org_id"], org["id"]);
    assert_eq!(c["org_role"], "owner");
    let caps: Value = app
        .get("/auth/api/v1/capabilities")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(caps["organization_mode"], "multi");
    // Bob's session too; and every user has exactly one organization, of the mode's kind.
    assert_eq!(bob.refresh_status(&app).await, 200);
    let (status, bob_user) = bob.user(&app).await;
    assert_eq!(status, 200);
    assert_eq!(bob_user["organization"]["name"], bob_user["username"]);
    assert_ne!(bob_user["organization"]["id"], org["id"]);
    let store = app.store().await;
    for id in [user["id"].as_str().unwrap().parse().unwrap(), bob.id] {
        let ms = store.list_user_memberships(id).await.unwrap();
        assert_eq!(ms.len(), 1);
        assert_eq!(
            ms[0].organization.kind,
            authara_core::org::OrgKind::Personal
        );
        assert_eq!(ms[0].membership.role, OrgRole::Owner);
    }
    // A second start finds nothing to do.
    app.restart_with(&[]).await;
    assert_eq!(app.user().await.0, 200);
    assert_eq!(store.list_user_memberships(bob.id).await.unwrap().len(), 1);
}

/// `DELETE /auth/internal/v1/users/{userID}`: the only owner of an organization with other
/// members is refused until they hand it over, the only enabled admin is refused; a deletion
/// takes the user's sessions at once and the organizations only they were in, and keeps the
/// others (the events: `webhooks.rs`). The account page's own deletion keeps the same rules.
async fn deleting_a_user_keeps_organizations_owned(b: Backend) {
    let app = spawn(b, "multi", false).await;
    let owner = Browser::signup(&app, "owner").await;
    let heir = Browser::signup(&app, "heir").await;
    let crew = Browser::signup(&app, "crew").await;
    let team = create_team(&app, "Dynasty", owner.id).await;
    add_member(&app, team, heir.id, OrgRole::Member).await;
    let delete = |id: Uuid, body: Value| {
        let app = &app;
        async move {
            internal(
                app,
                Method::DELETE,
                &format!("/auth/internal/v1/users/{id}"),
                &body,
            )
            .await
        }
    };

    refused(
        delete(Uuid::new_v4(), json!({})).await,
        404,
        "user_not_found",
    );
    refused(
        delete(owner.id, json!({"force": true})).await,
        400,
        "invalid_request",
    );
    refused(
        delete(owner.id, json!({})).await,
        409,
        "last_organization_owner",
    );
    assert_eq!(owner.user(&app).await.0, 200, "a refusal deleted the user");

    let (status, _) = transfer(&app, team, body(owner.id, heir.id)).await;
    assert_eq!(status, 204);
    let (_, u) = owner.user(&app).await;
    let personal: Uuid = u["organization"]["id"].as_str().unwrap().parse().unwrap();
    let store = app.store().await;
    let (status, got) = delete(owner.id, json!({})).await;
    assert_eq!(status, 204, "{got}");
    assert_eq!(
        owner.user(&app).await.0,
        401,
        "the session outlived the user"
    );
    assert!(store.find_user_by_id(owner.id).await.unwrap().is_none());
    assert!(store.find_organization(personal).await.unwrap().is_none());
    let members: Vec<(Uuid, OrgRole)> = store
        .list_members(team)
        .await
        .unwrap()
        .iter()
        .map(|m| (m.membership.user_id, m.membership.role))
        .collect();
    assert_eq!(members, [(heir.id, OrgRole::Owner)]);
    refused(delete(owner.id, json!({})).await, 404, "user_not_found");

    // The only enabled admin stays.
    store
        .set_admin_by_email(&email("crew"), true, app.clock.now(), Effects::none())
        .await
        .unwrap();
    refused(delete(crew.id, json!({})).await, 409, "last_active_admin");

    // The account page: the heir owns the team, which the crew joined.
    add_member(&app, team, crew.id, OrgRole::Member).await;
    let csrf = heir.csrf(&app).await;
    let res = heir
        .client
        .post(app.url("/auth/user/delete"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let page = res.text().await.unwrap();
    assert!(page.contains("transfer it"), "{page}");
    assert_eq!(heir.user(&app).await.0, 200);
}

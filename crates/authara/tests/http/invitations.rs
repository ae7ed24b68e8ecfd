//! Invitations (issue 11, `UPSTREAM.md` §1.9, §1.11, §5.5): the internal API creates and
//! resends them, owners and admins list and revoke them, and the link signs a new account up
//! into the organization (`single`) or lets an existing account accept (`multi`), by page and
//! by JSON. The token is never stored; a link works once.

use crate::helpers::{cookie_client, email, Backend, TestApp};
use crate::on_both;
use crate::organizations::{
    create_team, forbidden, internal, parts, refused, spawn, Browser, PASSWORD,
};
use reqwest::{Method, Response};
use serde_json::{json, Value};
use uuid::Uuid;

on_both!(
    single_mode_an_invitation_signs_a_new_account_up_into_the_organization,
    internal_create_rules,
    owners_and_admins_list_get_and_revoke,
    resend_replaces_the_link,
    multi_mode_a_signed_in_account_accepts,
    multi_mode_an_account_signs_in_through_the_invitation,
    an_expired_invitation_is_unavailable_and_can_be_replaced,
    the_token_is_stored_nowhere,
    personal_mode_has_no_invitations,
    the_invitation_email_carries_the_link_and_the_link_signs_up,
);

/// An invitation to `org` for `local` by `actor`, through the internal API: `(id, token)`.
async fn invite(app: &TestApp, org: Uuid, actor: Uuid, local: &str, role: &str) -> (Uuid, String) {
    let (status, body) = internal(
        app,
        Method::POST,
        &format!("/auth/internal/v1/organizations/{org}/invitations"),
        &json!({ "actor_user_id": actor, "email": email(local), "role": role,
                 "metadata": { "plan": "team", "seat": 2 } }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let invitation = &body["invitation"];
    assert_eq!(invitation["status"], "pending");
    assert_eq!(invitation["role"], role);
    assert_eq!(invitation["email"], email(local));
    assert_eq!(invitation["metadata"], json!({ "plan": "team", "seat": 2 }));
    let url = invitation["invite_url"].as_str().unwrap();
    let token = url
        .split_once("/auth/invitations/accept?token=")
        .unwrap()
        .1
        .to_owned();
    assert_eq!(token.len(), 43, "{url}");
    (invitation["id"].as_str().unwrap().parse().unwrap(), token)
}

/// The signup form of the invitation page, from a fresh browser; returns the response.
async fn invited_signup(app: &TestApp, token: &str, password: &str) -> (Browser, Response) {
    let (client, jar) = cookie_client();
    let b = Browser {
        client,
        jar,
        id: Uuid::nil(),
    };
    let csrf = b.csrf(app).await;
    let res = b
        .client
        .post(app.url("/auth/invitations/signup"))
        .form(&[
            ("token", token),
            ("password", password),
            ("csrf_token", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    (b, res)
}

impl Browser {
    /// `GET path` as this browser: status and page.
    async fn get_html(&self, app: &TestApp, path: &str) -> (u16, String) {
        let res = self.client.get(app.url(path)).send().await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }
}

/// `GET path` from a browser without cookies: status and page.
async fn page(app: &TestApp, path: &str) -> (u16, String) {
    let res = reqwest::Client::new()
        .get(app.url(path))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn preview(app: &TestApp, token: &str) -> (u16, Value) {
    let path = format!("/auth/api/v1/invitations/preview?token={token}");
    parts(
        reqwest::Client::new()
            .get(app.url(&path))
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn single_mode_an_invitation_signs_a_new_account_up_into_the_organization(b: Backend) {
    let app = spawn(b, "single", true).await;
    let alice = Browser::signup(&app, "alice").await;
    let team = alice.token_org(&app);
    let org: Uuid = team.as_str().unwrap().parse().unwrap();
    let (id, token) = invite(&app, org, alice.id, "bob", "admin").await;

    // The link's page names the organization and offers the signup (no login in `single`).
    let (status, html) = page(&app, &format!("/auth/invitations/accept?token={token}")).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Join alice"), "{html}");
    assert!(html.contains(&email("bob")));
    assert!(html.contains("/auth/invitations/signup?token="));
    assert!(!html.contains("/auth/invitations/login?token="));
    let (status, body) = preview(&app, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["invitation"]["id"], id.to_string());
    assert_eq!(body["organization"]["id"], org.to_string());
    assert!(body["invitation"].get("invite_url").is_none(), "{body}");

    // A weak password is refused and changes nothing.
    let (_, res) = invited_signup(&app, &token, "short").await;
    assert_eq!(res.status(), 422);
    let (status, _) = preview(&app, &token).await;
    assert_eq!(status, 200);

    let (mut bob, res) = invited_signup(&app, &token, PASSWORD).await;
    assert_eq!(
        res.status(),
        303,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let (status, user) = bob.user(&app).await;
    assert_eq!(status, 200);
    bob.id = user["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(user["email"], email("bob"));
    assert_eq!(user["organization"]["id"], org.to_string());
    assert_eq!(user["organization"]["role"], "admin");
    // In `single` mode the invited user belongs to the inviting organization only.
    let (_, orgs) = bob.get(&app, "/auth/api/v1/organizations").await;
    assert_eq!(orgs["organizations"].as_array().unwrap().len(), 1, "{orgs}");

    // The link works once.
    let (status, html) = page(&app, &format!("/auth/invitations/signup?token={token}")).await;
    assert_eq!(status, 410, "{html}");
    assert!(html.contains("Invitation unavailable"));
    let (_, res) = invited_signup(&app, &token, PASSWORD).await;
    assert_eq!(res.status(), 410);
    let (_, body) = preview(&app, &token).await;
    assert_eq!(body["invitation"]["status"], "accepted");

    // The account exists: a second invitation for it is `already_member`.
    refused(
        internal(
            &app,
            Method::POST,
            &format!("/auth/internal/v1/organizations/{org}/invitations"),
            &json!({ "actor_user_id": alice.id, "email": email("bob") }),
        )
        .await,
        409,
        "already_member",
    );
    // And an existing account cannot accept in `single` mode.
    let (_, carol_token) = invite(&app, org, alice.id, "carol", "member").await;
    let carol = Browser::signup(&app, "carol").await;
    refused(
        parts(
            carol
                .send(
                    &app,
                    Method::POST,
                    "/auth/api/v1/invitations/accept",
                    Some(json!({ "token": carol_token })),
                )
                .await,
        )
        .await,
        403,
        "forbidden",
    );
}

async fn internal_create_rules(b: Backend) {
    let app = spawn(b, "multi", true).await;
    let alice = Browser::signup(&app, "alice").await;
    let bob = Browser::signup(&app, "bob").await;
    let team = create_team(&app, "Acme", alice.id).await;
    let path = format!("/auth/internal/v1/organizations/{team}/invitations");
    let create = |actor: Uuid, body: Value| {
        let mut body = body;
        body["actor_user_id"] = json!(actor);
        let (app, path) = (&app, path.clone());
        async move { internal(app, Method::POST, &path, &body).await }
    };

    refused(
        crate::organizations::internal_with(
            &app,
            None,
            Method::POST,
            &path,
            &json!({ "actor_user_id": alice.id, "email": email("x") }),
        )
        .await,
        401,
        "unauthorized",
    );
    refused(
        create(bob.id, json!({ "email": email("x") })).await,
        403,
        "actor_not_member",
    );
    let unknown = format!(
        "/auth/internal/v1/organizations/{}/invitations",
        Uuid::new_v4()
    );
    refused(
        internal(
            &app,
            Method::POST,
            &unknown,
            &json!({ "actor_user_id": alice.id, "email": email("x") }),
        )
        .await,
        404,
        "organization_not_found",
    );
    for bad in [
        json!({ "email": "not-an-email" }),
        json!({ "email": email("x"), "role": "owner" }),
        json!({ "email": email("x"), "metadata": [1] }),
        json!({ "email": email("x"), "metadata": { "k": "x".repeat(16 * 1024) } }),
        json!({ "email": email("x"), "unknown": true }),
    ] {
        refused(create(alice.id, bad).await, 400, "invalid_request");
    }
    // Alice's personal organization takes no invitations.
    let personal = alice.token_org(&app);
    refused(
        internal(
            &app,
            Method::POST,
            &format!(
                "/auth/internal/v1/organizations/{}/invitations",
                personal.as_str().unwrap()
            ),
            &json!({ "actor_user_id": alice.id, "email": email("x") }),
        )
        .await,
        403,
        "actor_not_allowed",
    );

    let (_, _) = invite(&app, team, alice.id, "carol", "member").await;
    // One pending invitation per email, whatever its case.
    let upper = email("carol").to_uppercase();
    refused(
        create(alice.id, json!({ "email": upper })).await,
        409,
        "invitation_already_pending",
    );
    // A member (not a manager) invites nobody.
    let (_, dave_token) = invite(&app, team, alice.id, "dave", "member").await;
    let dave = Browser::signup(&app, "dave").await;
    let (status, _) = parts(
        dave.send(
            &app,
            Method::POST,
            "/auth/api/v1/invitations/accept",
            Some(json!({ "token": dave_token })),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    refused(
        create(dave.id, json!({ "email": email("eve") })).await,
        403,
        "actor_not_allowed",
    );
    refused(
        create(alice.id, json!({ "email": email("dave") })).await,
        409,
        "already_member",
    );
}

async fn owners_and_admins_list_get_and_revoke(b: Backend) {
    let app = spawn(b, "single", true).await;
    let alice = Browser::signup(&app, "alice").await;
    let org: Uuid = alice.token_org(&app).as_str().unwrap().parse().unwrap();
    let (first, _) = invite(&app, org, alice.id, "bob", "member").await;
    app.clock.advance(time::Duration::seconds(1));
    let (second, second_token) = invite(&app, org, alice.id, "carol", "member").await;

    let list = format!("/auth/api/v1/organizations/{org}/invitations");
    let (status, body) = alice.get(&app, &list).await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<&str> = body["invitations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [second.to_string(), first.to_string()], "newest first");
    assert!(body["invitations"][0].get("invite_url").is_none());

    let one = format!("{list}/{first}");
    let (status, body) = alice.get(&app, &one).await;
    assert_eq!(status, 200);
    assert_eq!(body["invitation"]["status"], "pending");
    refused(
        alice.get(&app, &format!("{list}/{}", Uuid::new_v4())).await,
        404,
        "invitation_not_found",
    );
    // Another organization's id is `403`, never its invitations.
    let bob = Browser::signup(&app, "bob2").await;
    let bobs: Uuid = bob.token_org(&app).as_str().unwrap().parse().unwrap();
    forbidden(bob.get(&app, &list).await);
    forbidden(
        alice
            .get(
                &app,
                &format!("/auth/api/v1/organizations/{bobs}/invitations"),
            )
            .await,
    );

    let revoke = format!("{list}/{second}/revoke");
    let (status, body) = parts(alice.send(&app, Method::POST, &revoke, None).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["invitation"]["status"], "revoked");
    refused(
        parts(alice.send(&app, Method::POST, &revoke, None).await).await,
        409,
        "invitation_revoked",
    );
    let (status, _) = page(
        &app,
        &format!("/auth/invitations/accept?token={second_token}"),
    )
    .await;
    assert_eq!(status, 410);
    let (_, res) = invited_signup(&app, &second_token, PASSWORD).await;
    assert_eq!(res.status(), 410);

    // A member of the organization (not a manager) sees none of it.
    let (_, bob_token) = (first, invite_again(&app, org, alice.id, "member1").await);
    let (member, res) = invited_signup(&app, &bob_token, PASSWORD).await;
    assert_eq!(res.status(), 303);
    forbidden(member.get(&app, &list).await);

    // With management off the routes are absent.
    let off = spawn(b, "single", false).await;
    let owner = Browser::signup(&off, "owner").await;
    let org = owner.token_org(&off);
    let (status, _) = owner
        .get(
            &off,
            &format!(
                "/auth/api/v1/organizations/{}/invitations",
                org.as_str().unwrap()
            ),
        )
        .await;
    assert_eq!(status, 404);
}

/// Another invitation's token (for a local part not used before).
async fn invite_again(app: &TestApp, org: Uuid, actor: Uuid, local: &str) -> String {
    invite(app, org, actor, local, "member").await.1
}

async fn resend_replaces_the_link(b: Backend) {
    let app = spawn(b, "single", true).await;
    let alice = Browser::signup(&app, "alice").await;
    let org: Uuid = alice.token_org(&app).as_str().unwrap().parse().unwrap();
    let (id, old_token) = invite(&app, org, alice.id, "bob", "admin").await;
    let resend =
        |id: Uuid| format!("/auth/internal/v1/organizations/{org}/invitations/{id}/resend");

    let (status, body) = internal(&app, Method::POST, &resend(id), &json!({})).await;
    assert_eq!(status, 201, "{body}");
    let fresh = &body["invitation"];
    assert_ne!(fresh["id"], id.to_string());
    assert_eq!(fresh["role"], "admin");
    assert_eq!(fresh["metadata"], json!({ "plan": "team", "seat": 2 }));
    let new_token = fresh["invite_url"]
        .as_str()
        .unwrap()
        .split_once("token=")
        .unwrap()
        .1
        .to_owned();
    assert_ne!(new_token, old_token);
    let (_, old) = preview(&app, &old_token).await;
    assert_eq!(old["invitation"]["status"], "revoked");
    refused(
        internal(&app, Method::POST, &resend(id), &json!({})).await,
        409,
        "invitation_revoked",
    );
    let (_, res) = invited_signup(&app, &new_token, PASSWORD).await;
    assert_eq!(res.status(), 303);
    let new_id: Uuid = fresh["id"].as_str().unwrap().parse().unwrap();
    refused(
        internal(&app, Method::POST, &resend(new_id), &json!({})).await,
        409,
        "invitation_already_accepted",
    );
    refused(
        internal(&app, Method::POST, &resend(Uuid::new_v4()), &json!({})).await,
        404,
        "invitation_not_found",
    );
}

async fn multi_mode_a_signed_in_account_accepts(b: Backend) {
    let app = spawn(b, "multi", true).await;
    let alice = Browser::signup(&app, "alice").await;
    let bob = Browser::signup(&app, "bob").await;
    let carol = Browser::signup(&app, "carol").await;
    let team = create_team(&app, "Acme", alice.id).await;
    let (_, token) = invite(&app, team, alice.id, "bob", "member").await;
    let accept_page = format!("/auth/invitations/accept?token={token}");

    // Signed in as someone else: the page says so and offers no button.
    let (status, html) = carol.get_html(&app, &accept_page).await;
    assert_eq!(status, 200);
    assert!(html.contains("another email address"), "{html}");
    assert!(!html.contains("action=\"/auth/invitations/accept\""));
    refused(
        parts(
            carol
                .send(
                    &app,
                    Method::POST,
                    "/auth/api/v1/invitations/accept",
                    Some(json!({ "token": token })),
                )
                .await,
        )
        .await,
        403,
        "invitation_email_mismatch",
    );

    // Bob's page has the button; the form without a CSRF token is refused.
    let (status, html) = bob.get_html(&app, &accept_page).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("action=\"/auth/invitations/accept\""),
        "{html}"
    );
    let res = bob
        .client
        .post(app.url("/auth/invitations/accept"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(bob.user(&app).await.1["organization"]["role"], "owner");

    let csrf = bob.csrf(&app).await;
    let res = bob
        .client
        .post(app.url("/auth/invitations/accept"))
        .form(&[("token", token.as_str()), ("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let (_, user) = bob.user(&app).await;
    assert_eq!(user["organization"]["id"], team.to_string());
    assert_eq!(user["organization"]["role"], "member");
    assert_eq!(bob.token_org(&app), json!(team.to_string()));

    // Accepting again is idempotent (JSON: new tokens for the organization).
    let (status, body) = parts(
        bob.send(
            &app,
            Method::POST,
            "/auth/api/v1/invitations/accept",
            Some(json!({ "token": token })),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].is_string() && body["refresh_token"].is_string());
    let members = app.store().await.list_members(team).await.unwrap();
    assert_eq!(members.len(), 2, "{members:?}");
    drop(alice);

    // Bad tokens are refused without a database question.
    for bad in ["", "a b", &"x".repeat(200)] {
        let (status, _) = parts(
            bob.send(
                &app,
                Method::POST,
                "/auth/api/v1/invitations/accept",
                Some(json!({ "token": bad })),
            )
            .await,
        )
        .await;
        assert_eq!(status, 400, "{bad:?}");
    }
    refused(
        parts(
            bob.send(
                &app,
                Method::POST,
                "/auth/api/v1/invitations/accept",
                Some(json!({ "token": "A".repeat(43) })),
            )
            .await,
        )
        .await,
        404,
        "invitation_not_found",
    );
}

async fn multi_mode_an_account_signs_in_through_the_invitation(b: Backend) {
    let app = spawn(b, "multi", true).await;
    let alice = Browser::signup(&app, "alice").await;
    let bob = Browser::signup(&app, "bob").await;
    let team = create_team(&app, "Acme", alice.id).await;
    let (_, token) = invite(&app, team, alice.id, "bob", "admin").await;
    drop(bob);

    let (status, html) = page(&app, &format!("/auth/invitations/login?token={token}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("Sign in and join"));
    let login = |password: &'static str| {
        let (app, token) = (&app, token.clone());
        async move {
            let (client, jar) = cookie_client();
            let b = Browser {
                client,
                jar,
                id: Uuid::nil(),
            };
            let csrf = b.csrf(app).await;
            let res = b
                .client
                .post(app.url("/auth/invitations/login"))
                .form(&[
                    ("token", token.as_str()),
                    ("password", password),
                    ("csrf_token", csrf.as_str()),
                ])
                .send()
                .await
                .unwrap();
            (b, res.status().as_u16())
        }
    };
    let (_, status) = login("wrong password here").await;
    assert_eq!(status, 422);
    let (browser, status) = login(PASSWORD).await;
    assert_eq!(status, 303);
    let (_, user) = browser.user(&app).await;
    assert_eq!(user["organization"]["id"], team.to_string());
    assert_eq!(user["organization"]["role"], "admin");

    // JSON: the same for a second invitation.
    let second = create_team(&app, "Beta", alice.id).await;
    let (_, token) = invite(&app, second, alice.id, "bob", "member").await;
    let (client, jar) = cookie_client();
    let b = Browser {
        client,
        jar,
        id: Uuid::nil(),
    };
    refused(
        parts(
            b.send(
                &app,
                Method::POST,
                "/auth/api/v1/invitations/login",
                Some(json!({ "token": token, "password": "wrong password here" })),
            )
            .await,
        )
        .await,
        401,
        "unauthorized",
    );
    let (status, body) = parts(
        b.send(
            &app,
            Method::POST,
            "/auth/api/v1/invitations/login",
            Some(json!({ "token": token, "password": PASSWORD })),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["email"], email("bob"));
    let claims = crate::helpers::claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["org_id"], second.to_string());
    assert_eq!(claims["org_role"], "member");
}

async fn an_expired_invitation_is_unavailable_and_can_be_replaced(b: Backend) {
    let app = spawn(b, "single", true).await;
    let alice = Browser::signup(&app, "alice").await;
    let org: Uuid = alice.token_org(&app).as_str().unwrap().parse().unwrap();
    let (id, token) = invite(&app, org, alice.id, "bob", "member").await;
    app.clock.advance(time::Duration::hours(168));

    let (_, body) = preview(&app, &token).await;
    assert_eq!(body["invitation"]["status"], "expired");
    let (status, html) = page(&app, &format!("/auth/invitations/accept?token={token}")).await;
    assert_eq!(status, 410);
    assert!(html.contains("expired"));
    let (_, res) = invited_signup(&app, &token, PASSWORD).await;
    assert_eq!(res.status(), 410);
    // A week later Alice's access token has expired too: her browser refreshes.
    assert_eq!(alice.refresh_status(&app).await, 200);
    let revoke = format!("/auth/api/v1/organizations/{org}/invitations/{id}/revoke");
    refused(
        parts(alice.send(&app, Method::POST, &revoke, None).await).await,
        409,
        "invitation_expired",
    );
    // A new invitation replaces the expired one.
    let (_, fresh) = invite(&app, org, alice.id, "bob", "member").await;
    let (_, old) = preview(&app, &token).await;
    assert_eq!(old["invitation"]["status"], "revoked");
    let (_, res) = invited_signup(&app, &fresh, PASSWORD).await;
    assert_eq!(res.status(), 303);
}

async fn the_token_is_stored_nowhere(b: Backend) {
    let app = spawn(b, "single", true).await;
    let alice = Browser::signup(&app, "alice").await;
    let org: Uuid = alice.token_org(&app).as_str().unwrap().parse().unwrap();
    let (id, token) = invite(&app, org, alice.id, "bob", "member").await;
    let store = app.store().await;
    let stored = store.find_invitation(id).await.unwrap().unwrap();
    assert_ne!(stored.token_hash, token);
    assert!(!stored.token_hash.contains(&token));
    assert_eq!(
        stored.invitation.metadata,
        json!({ "plan": "team", "seat": 2 })
    );
    // The queued email names the invitation, not its token.
    let jobs = store.list_emails(100).await.unwrap();
    let job = jobs
        .iter()
        .find(|j| j.template == "organization_invitation")
        .expect("an invitation email job");
    assert_eq!(job.to_email, email("bob"));
    assert!(!job.template_data.contains(&token), "{}", job.template_data);
    assert!(job.template_data.contains(&id.to_string()));
}

async fn personal_mode_has_no_invitations(b: Backend) {
    let app = spawn(b, "personal", true).await;
    let alice = Browser::signup(&app, "alice").await;
    let org = alice.token_org(&app);
    refused(
        internal(
            &app,
            Method::POST,
            &format!(
                "/auth/internal/v1/organizations/{}/invitations",
                org.as_str().unwrap()
            ),
            &json!({ "actor_user_id": alice.id, "email": email("bob") }),
        )
        .await,
        403,
        "forbidden",
    );
    let (status, _) = preview(&app, &"A".repeat(43)).await;
    assert_eq!(status, 403);
    let (status, _) = page(
        &app,
        &format!("/auth/invitations/accept?token={}", "A".repeat(43)),
    )
    .await;
    assert_eq!(status, 403);
}

async fn the_invitation_email_carries_the_link_and_the_link_signs_up(b: Backend) {
    use crate::email::{
        challenge_of, jobs_to, location, mail_to_with_subject, nth_mail_to, post_json,
    };
    let smtp = crate::email::smtp().await;
    let app = crate::email::spawn(
        b,
        &smtp,
        &[
            ("AUTHARA_ORG_MODE", "single"),
            ("AUTHARA_INTERNAL_API_TOKEN", crate::organizations::TOKEN),
            ("AUTHARA_INVITATION_EMAIL_INCLUDE_CODE", "true"),
            // Verified signup: the invitation's signup asks for the emailed code first
            // (upstream's flow), by page and by JSON.
            ("AUTHARA_CHALLENGE_ENABLED", "true"),
        ],
    )
    .await;
    let store = app.store().await;
    let now = authara_core::clock::Clock::now(&*app.clock);
    let new_user = |local: &str, team: &str| authara_core::store::NewUser {
        id: Uuid::new_v4(),
        email: email(local),
        username: local.into(),
        password_hash: None,
        created_at: now,
        organization: authara_core::store::InitialOrganization {
            id: Uuid::new_v4(),
            name: team.into(),
            kind: authara_core::org::OrgKind::Team,
        },
    };
    let alice = new_user("alice", "Alice's team");
    let org = alice.organization.id;
    store
        .create_user(alice.clone(), authara_core::store::Effects::none())
        .await
        .unwrap();
    let (bob_invitation, token) = invite(&app, org, alice.id, "bob", "member").await;
    let mail = nth_mail_to(&smtp, &email("bob"), 1).await;
    assert_eq!(mail.subject, "You're invited to Alice's team");
    let link = format!("/auth/invitations/accept?token={token}");
    assert!(mail.body.contains(&link), "{}", mail.body);
    assert!(
        mail.body.contains(&format!("invitation code: {token}")),
        "{}",
        mail.body
    );

    // By page: the signup form leads to the code page; no account until the code.
    let (bob, res) = invited_signup(&app, &token, PASSWORD).await;
    assert_eq!(res.status(), 303);
    let to = location(&res);
    assert!(
        to.starts_with("/auth/verify-challenge/signup?challenge_id="),
        "{to}"
    );
    assert!(store
        .find_user_by_email(&email("bob"))
        .await
        .unwrap()
        .is_none());
    let pending = store
        .find_invitation(bob_invitation)
        .await
        .unwrap()
        .unwrap();
    assert!(pending.invitation.accepted_at.is_none());
    let code = mail_to_with_subject(&smtp, &email("bob"), "Your verification code").await;
    let csrf = bob.csrf(&app).await;
    let res = bob
        .client
        .post(app.url("/auth/verify-challenge/signup"))
        .form(&[
            ("challenge_id", challenge_of(&to).as_str()),
            ("code", code.code().as_str()),
            ("csrf_token", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/");
    let (_, user) = bob.user(&app).await;
    assert_eq!(user["organization"]["id"], org.to_string());
    assert_eq!(user["organization"]["role"], "member");
    let bob_id: Uuid = user["id"].as_str().unwrap().parse().unwrap();
    // `single` mode: the inviting organization is the account's only one.
    let memberships = store.list_user_memberships(bob_id).await.unwrap();
    assert_eq!(memberships.len(), 1);
    let accepted = store
        .find_invitation(bob_invitation)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(accepted.invitation.accepted_by_user_id, Some(bob_id));
    // The link is spent.
    let (_, again) = invited_signup(&app, &token, PASSWORD).await;
    assert_eq!(again.status(), 410);

    // By JSON: `invitation_code` in the challenge's body.
    let (_, carol_token) = invite(&app, org, alice.id, "carol", "admin").await;
    let start = |body: Value| {
        let app = &app;
        async move { post_json(app, "/auth/api/v1/signup/challenges?audience=app", body).await }
    };
    let res = start(json!({ "email": email("mallory"), "password": PASSWORD,
                            "invitation_code": carol_token }))
    .await;
    assert_eq!(res.status(), 403);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"]["code"],
        "invitation_email_mismatch"
    );
    let res = start(json!({ "email": email("carol"), "password": PASSWORD,
                            "invitation_code": "A".repeat(43) }))
    .await;
    assert_eq!(res.status(), 400);
    let res = start(json!({ "email": email("carol"), "password": PASSWORD,
                            "invitation_code": token }))
    .await;
    assert_eq!(res.status(), 409, "a spent invitation");
    assert_eq!(
        jobs_to(&app, &email("carol")).await,
        1,
        "only the invitation"
    );
    let res = start(json!({ "email": email("carol"), "password": PASSWORD,
                            "invitation_code": carol_token }))
    .await;
    assert_eq!(res.status(), 202);
    let id = res.json::<Value>().await.unwrap()["challenge_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(store
        .find_user_by_email(&email("carol"))
        .await
        .unwrap()
        .is_none());
    let code = mail_to_with_subject(&smtp, &email("carol"), "Your verification code")
        .await
        .code();
    let res = post_json(
        &app,
        "/auth/api/v1/signup/challenges/verify",
        json!({ "challenge_id": id, "code": code }),
    )
    .await;
    assert_eq!(res.status(), 201);
    let session: Value = res.json().await.unwrap();
    let access = session["access_token"].as_str().unwrap();
    let (status, me) = crate::organizations::bearer_get(&app, access, "/auth/api/v1/user").await;
    assert_eq!(status, 200);
    assert_eq!(me["email"], email("carol"));
    assert_eq!(me["organization"]["id"], org.to_string());
    assert_eq!(me["organization"]["role"], "admin");

    // An invitation replaced (resent: the old one revoked) before the code is entered: the
    // code fails as any wrong code does, and nothing is created.
    let (erin_invitation, erin_token) = invite(&app, org, alice.id, "erin", "member").await;
    let res = start(json!({ "email": email("erin"), "password": PASSWORD,
                            "invitation_code": erin_token }))
    .await;
    assert_eq!(res.status(), 202);
    let id = res.json::<Value>().await.unwrap()["challenge_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = mail_to_with_subject(&smtp, &email("erin"), "Your verification code")
        .await
        .code();
    let (status, body) = internal(
        &app,
        Method::POST,
        &format!("/auth/internal/v1/organizations/{org}/invitations/{erin_invitation}/resend"),
        &json!({}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let res = post_json(
        &app,
        "/auth/api/v1/signup/challenges/verify",
        json!({ "challenge_id": id, "code": code }),
    )
    .await;
    assert_eq!(res.status(), 400);
    assert!(store
        .find_user_by_email(&email("erin"))
        .await
        .unwrap()
        .is_none());

    // A taken email gets the same 202 and the same code page, and no code is sent.
    let dave = new_user("dave", "Dave's team");
    store
        .create_user(dave.clone(), authara_core::store::Effects::none())
        .await
        .unwrap();
    let (_, dave_token) = invite(&app, org, alice.id, "dave", "member").await;
    let res = start(json!({ "email": email("dave"), "password": PASSWORD,
                            "invitation_code": dave_token }))
    .await;
    assert_eq!(res.status(), 202);
    let (_, res) = invited_signup(&app, &dave_token, PASSWORD).await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with("/auth/verify-challenge/signup?challenge_id="));
    nth_mail_to(&smtp, &email("dave"), 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        jobs_to(&app, &email("dave")).await,
        1,
        "only the invitation"
    );
    assert!(store.find_membership(org, dave.id).await.unwrap().is_none());
}

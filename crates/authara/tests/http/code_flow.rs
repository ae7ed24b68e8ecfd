//! Sign-in with the authorization code flow (issue 12): an OpenID Connect provider found by
//! discovery and the GitHub preset, against the test identity provider of `idp.rs` on
//! 127.0.0.1. The whole flow runs as a browser would (start, the provider's authorize page, the
//! callback), with redirects followed by hand; every refusal creates nothing and never `5xx`s
//! but the provider being down (`503`).

use crate::dbstate::{assert_unchanged, snapshot};
use crate::helpers::{cookie_client, email, set_cookie, Backend, TestApp};
use crate::idp::{Authorize, Key, TestIdp, CLIENT_ID, CLIENT_SECRET};
use crate::on_both;
use reqwest::{Client, Response, Url};
use serde_json::json;

on_both!(
    the_oidc_code_flow_signs_up_then_signs_in_and_keeps_return_to,
    github_signs_in_with_the_primary_verified_email_only,
    a_replayed_forged_or_foreign_state_gets_400_and_creates_nothing,
    bad_id_tokens_are_refused_and_create_nothing,
    a_rotated_signing_key_is_picked_up,
    the_provider_down_or_saying_no_gets_a_clear_page_and_creates_nothing,
    an_existing_email_is_never_linked_silently,
    the_callbacks_are_rate_limited,
    the_account_page_links_and_unlinks_sign_in_methods,
    a_social_account_adds_a_password,
    a_linked_provider_proves_the_account_instead_of_a_password,
    a_provider_email_in_another_case_still_finds_its_account,
);

/// The server with `acme` (OpenID Connect at `idp`) and `github` (the preset at `idp`).
pub async fn spawn(b: Backend, idp: &TestIdp, extra: &[(&str, &str)]) -> TestApp {
    let issuer = idp.issuer();
    let mut vars = vec![
        ("AUTHARA_OAUTH_PROVIDERS", "acme,github"),
        ("AUTHARA_OAUTH_ACME_ISSUER", issuer.as_str()),
        ("AUTHARA_OAUTH_ACME_CLIENT_ID", CLIENT_ID),
        ("AUTHARA_OAUTH_ACME_CLIENT_SECRET", CLIENT_SECRET),
        ("AUTHARA_OAUTH_ACME_DISPLAY_NAME", "Acme SSO"),
        ("AUTHARA_OAUTH_GITHUB_CLIENT_ID", CLIENT_ID),
        ("AUTHARA_OAUTH_GITHUB_CLIENT_SECRET", CLIENT_SECRET),
        ("AUTHARA_OAUTH_GITHUB_URL", issuer.as_str()),
    ];
    let api = format!("{issuer}/api");
    vars.push(("AUTHARA_OAUTH_GITHUB_API_URL", api.as_str()));
    vars.extend_from_slice(extra);
    let app = TestApp::spawn_with(b, &vars).await;
    idp.clock(app.clock.clone());
    app
}

fn location(res: &Response) -> String {
    res.headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location on {}", res.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

/// `start` in `app`'s browser, then the provider's authorize page: the callback URL the
/// provider sends the browser to.
async fn to_callback(app: &TestApp, provider: &str, query: &str) -> String {
    let start = app
        .get(&format!("/auth/oauth/{provider}/start{query}"))
        .await;
    assert_eq!(start.status(), 303, "{}", start.text().await.unwrap());
    let authorize = location(&start);
    let cookie = set_cookie(start.headers(), "authara_oauth_flow").expect("the flow cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(cookie.contains("Max-Age=600"), "{cookie}");
    let at_idp = app.client.get(&authorize).send().await.unwrap();
    assert_eq!(at_idp.status(), 303, "{authorize}");
    location(&at_idp)
}

async fn follow(client: &Client, url: &str) -> Response {
    client.get(url).send().await.unwrap()
}

/// A whole sign-in through `provider` in `app`'s browser: the callback's answer.
async fn sign_in(app: &TestApp, provider: &str, query: &str) -> Response {
    let callback = to_callback(app, provider, query).await;
    follow(&app.client, &callback).await
}

async fn body_of(res: Response) -> (u16, String) {
    let status = res.status().as_u16();
    (status, res.text().await.unwrap())
}

async fn the_oidc_code_flow_signs_up_then_signs_in_and_keeps_return_to(b: Backend) {
    let idp = TestIdp::start().await;
    let app = spawn(b, &idp, &[]).await;

    // The login page offers both providers, as plain links carrying return_to.
    let page = app
        .get("/auth/login?return_to=/dashboard")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"href="/auth/oauth/acme/start?return_to=/dashboard""#),
        "{page}"
    );
    assert!(page.contains("Continue with Acme SSO") && page.contains("Continue with GitHub"));
    let page = app.get("/auth/signup").await.text().await.unwrap();
    assert!(page.contains(r#"href="/auth/oauth/acme/start""#), "{page}");

    // The authorization request carries what the flow needs, and nothing of ours leaks.
    let start = app.get("/auth/oauth/acme/start?return_to=/dashboard").await;
    assert_eq!(start.status(), 303);
    assert_eq!(start.headers()["cache-control"], "no-store");
    let url = Url::parse(&location(&start)).unwrap();
    assert_eq!(
        url.as_str().split('?').next().unwrap(),
        format!("{}/authorize", idp.issuer())
    );
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["redirect_uri"], app.url("/auth/oauth/acme/callback"));
    assert_eq!(q["scope"], "openid email profile");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["state"].len(), 43);
    assert_eq!(q["nonce"].len(), 43);
    assert_ne!(q["state"], q["nonce"]);
    assert!(!url.as_str().contains("return_to"), "{url}");

    idp.next_user("acme-7", &email("sso"), true);
    let done = sign_in(&app, "acme", "?return_to=/dashboard").await;
    assert_eq!(done.status(), 303);
    assert_eq!(location(&done), "/dashboard");
    assert!(
        app.cookie("authara_oauth_flow").is_none(),
        "the binding is cleared"
    );
    let (status, user) = app.user().await;
    assert_eq!(status, 200);
    assert_eq!(user["email"], email("sso"));
    let id = user["id"].clone();

    // Signed out, the same identity signs in to the same account (no return_to: the root).
    app.post_form("/auth/sessions/logout", &[]).await;
    let again = sign_in(&app, "acme", "").await;
    assert_eq!(location(&again), "/");
    assert_eq!(app.user().await.1["id"], id);
    let store = app.store().await;
    let identities = store
        .list_identities(id.as_str().unwrap().parse().unwrap())
        .await
        .unwrap();
    assert_eq!(identities.len(), 1);
    assert_eq!(identities[0].provider, "acme");
    assert_eq!(identities[0].provider_user_id, "acme-7");

    // An unknown provider is a 404, for both routes.
    assert_eq!(app.get("/auth/oauth/nope/start").await.status(), 404);
    assert_eq!(
        app.get("/auth/oauth/nope/callback?code=x&state=y")
            .await
            .status(),
        404
    );
}

async fn github_signs_in_with_the_primary_verified_email_only(b: Backend) {
    let idp = TestIdp::start().await;
    let app = spawn(b, &idp, &[]).await;
    let start = app.get("/auth/oauth/github/start").await;
    let url = Url::parse(&location(&start)).unwrap();
    assert!(url.path().ends_with("/login/oauth/authorize"), "{url}");
    assert!(url
        .query_pairs()
        .any(|(k, v)| k == "scope" && v == "read:user user:email"));

    // An unverified primary email cannot make an account: nothing is created.
    idp.next_user("4242", &email("octo"), false);
    let before = snapshot(&app).await;
    let (status, page) = body_of(sign_in(&app, "github", "").await).await;
    assert_eq!(status, 401, "{page}");
    assert!(
        page.contains("did not share a verified email address"),
        "{page}"
    );
    assert_unchanged(&app, &before, "an unverified GitHub email").await;

    idp.next_user("4242", &email("octo"), true);
    let done = sign_in(&app, "github", "?return_to=/app").await;
    assert_eq!(location(&done), "/app");
    let (_, user) = app.user().await;
    // The primary verified address, not the profile's typed one.
    assert_eq!(user["email"], email("octo"));
    let store = app.store().await;
    let (identity, _) = store
        .find_identity("github", "4242")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(identity.email.as_deref(), Some(email("octo").as_str()));
}

async fn a_replayed_forged_or_foreign_state_gets_400_and_creates_nothing(b: Backend) {
    let idp = TestIdp::start().await;
    let app = spawn(b, &idp, &[]).await;

    // Replayed: the first use signs in, the second is refused before the provider is asked.
    let callback = to_callback(&app, "acme", "").await;
    assert_eq!(follow(&app.client, &callback).await.status(), 303);
    app.post_form("/auth/sessions/logout", &[]).await;
    let before = snapshot(&app).await;
    let exchanges = idp.token_requests();
    let (status, page) = body_of(follow(&app.client, &callback).await).await;
    assert_eq!(status, 400);
    assert!(page.contains("expired or was already used"), "{page}");
    assert_eq!(
        idp.token_requests(),
        exchanges,
        "no exchange for a used state"
    );

    // Foreign: a flow started in one browser, finished in another (a login CSRF) is refused,
    // and the flow is gone for its own browser too.
    idp.next_user("victim-forced", &email("attacker"), true);
    let callback = to_callback(&app, "acme", "").await;
    let (other, _) = cookie_client();
    assert_eq!(follow(&other, &callback).await.status(), 400);
    assert_eq!(follow(&app.client, &callback).await.status(), 400);

    // Forged, missing, repeated or for another provider.
    let callback = to_callback(&app, "acme", "").await;
    let url = Url::parse(&callback).unwrap();
    let code: String = url
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into();
    let state: String = url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into();
    for bad in [
        format!("/auth/oauth/acme/callback?code={code}&state=forged"),
        format!("/auth/oauth/acme/callback?code={code}"),
        format!("/auth/oauth/acme/callback?code={code}&state={state}&state={state}"),
        format!("/auth/oauth/github/callback?code={code}&state={state}"),
        format!("/auth/oauth/acme/callback?state={}", "s".repeat(10_000)),
    ] {
        assert_eq!(app.get(&bad).await.status(), 400, "{bad}");
    }
    // The github callback above took the acme flow: it is spent.
    assert_eq!(follow(&app.client, &callback).await.status(), 400);
    assert_eq!(app.user().await.0, 401);
    assert_unchanged(&app, &before, "bad states").await;
    assert_eq!(
        idp.token_requests(),
        exchanges,
        "no bad state reached the provider"
    );
}

async fn bad_id_tokens_are_refused_and_create_nothing(b: Backend) {
    let idp = TestIdp::start().await;
    let app = spawn(b, &idp, &[]).await;
    let before = snapshot(&app).await;
    let now = authara_core::clock::Clock::now(&*app.clock).unix_timestamp();
    for (what, claims) in [
        ("wrong audience", json!({"aud": "someone-else"})),
        ("wrong issuer", json!({"iss": "https://evil.example"})),
        ("expired", json!({"iat": now - 7200, "exp": now - 3600})),
        ("wrong nonce", json!({"nonce": "not-the-flows"})),
        ("no nonce", json!({"nonce": null})),
    ] {
        idp.spoil(claims);
        let (status, page) = body_of(sign_in(&app, "acme", "").await).await;
        assert_eq!(status, 401, "{what}: {page}");
        assert!(page.contains("could not be completed"), "{what}: {page}");
    }
    // Signed with a key the provider does not publish (a forgery).
    idp.spoil(json!({}));
    idp.keys(Key::RsaB, &[Key::RsaA]);
    assert_eq!(
        sign_in(&app, "acme", "").await.status(),
        401,
        "bad signature"
    );
    assert_eq!(app.user().await.0, 401);
    assert_unchanged(&app, &before, "bad ID tokens").await;
}

async fn a_rotated_signing_key_is_picked_up(b: Backend) {
    let idp = TestIdp::start().await;
    let app = spawn(b, &idp, &[]).await;
    assert_eq!(sign_in(&app, "acme", "").await.status(), 303);
    let fetched = idp.jwks_hits();
    // The provider rotates to an EC key: the unknown kid makes one fetch (once the minimum
    // interval between two such fetches has passed), and it verifies.
    idp.keys(Key::EcA, &[Key::EcA]);
    app.clock.advance(time::Duration::seconds(31));
    app.post_form("/auth/sessions/logout", &[]).await;
    assert_eq!(sign_in(&app, "acme", "").await.status(), 303);
    assert_eq!(idp.jwks_hits(), fetched + 1);
    assert_eq!(app.user().await.0, 200);
}

async fn the_provider_down_or_saying_no_gets_a_clear_page_and_creates_nothing(b: Backend) {
    // An issuer nobody answers at: discovery fails, the start page says so.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let idp = TestIdp::start().await;
    let app = spawn(
        b,
        &idp,
        &[
            ("AUTHARA_OAUTH_PROVIDERS", "acme,github,dead"),
            ("AUTHARA_OAUTH_DEAD_ISSUER", &dead),
            ("AUTHARA_OAUTH_DEAD_CLIENT_ID", CLIENT_ID),
        ],
    )
    .await;
    let before = snapshot(&app).await;
    let res = app.get("/auth/oauth/dead/start").await;
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    assert!(
        app.cookie("authara_oauth_flow").is_none(),
        "no flow for a provider that is down"
    );
    let page = res.text().await.unwrap();
    assert!(
        page.contains("Dead sign-in is unavailable at the moment"),
        "{page}"
    );

    // The token endpoint down after the user approved: a clear 503, nothing created.
    idp.token_down(true);
    for provider in ["acme", "github"] {
        let (status, page) = body_of(sign_in(&app, provider, "").await).await;
        assert_eq!(status, 503, "{provider}: {page}");
        assert!(
            page.contains("sign-in is unavailable at the moment"),
            "{page}"
        );
    }
    idp.token_down(false);

    // The user says no at the provider.
    idp.authorize(Authorize::Deny);
    let (status, page) = body_of(sign_in(&app, "acme", "").await).await;
    assert_eq!(status, 400);
    assert!(
        page.contains("Sign-in with Acme SSO was cancelled or refused"),
        "{page}"
    );
    assert_eq!(app.user().await.0, 401);
    assert_unchanged(&app, &before, "a provider down or saying no").await;
}

async fn an_existing_email_is_never_linked_silently(b: Backend) {
    let idp = TestIdp::start().await;
    let app = spawn(b, &idp, &[]).await;
    let existing = email("owner");
    let password = "correct horse battery";
    let signup = app.signup(&existing, password).await;
    assert_eq!(signup.status(), 303);
    let (_, owner) = app.user().await;
    app.post_form("/auth/sessions/logout", &[]).await;
    let before = snapshot(&app).await;

    // The callback links nothing and signs in nothing: it sends the browser to the confirm page.
    idp.next_user("777", &existing, true);
    let res = sign_in(&app, "github", "?return_to=/after-link").await;
    assert_eq!(res.status(), 303);
    let confirm = location(&res);
    assert!(
        confirm.starts_with("/auth/provider-links/confirm?link_id="),
        "{confirm}"
    );
    assert!(app.cookie("authara_provider_link").is_some());
    assert_eq!(app.user().await.0, 401);
    assert_unchanged(&app, &before, "a link waiting for its proof").await;
    let page = app.get(&confirm).await.text().await.unwrap();
    assert!(
        page.contains(&existing) && page.contains("Link GitHub"),
        "{page}"
    );
    let link_id = confirm.split("link_id=").nth(1).unwrap().to_owned();

    // Another browser cannot use the link, even with the right password.
    let (other, _other_jar) = cookie_client();
    let other_csrf = {
        let res = other
            .get(app.url("/auth/api/v1/csrf"))
            .send()
            .await
            .unwrap();
        res.json::<serde_json::Value>().await.unwrap()["csrf_token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let foreign = other
        .post(app.url("/auth/provider-links/confirm"))
        .form(&[
            ("csrf_token", other_csrf.as_str()),
            ("link_id", link_id.as_str()),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 400);

    // A wrong password changes nothing; a forged link id gets 400.
    let wrong = app
        .post_form(
            "/auth/provider-links/confirm",
            &[("link_id", &link_id), ("password", "not the password")],
        )
        .await;
    assert_eq!(wrong.status(), 422);
    let forged = app
        .post_form(
            "/auth/provider-links/confirm",
            &[("link_id", "forged"), ("password", password)],
        )
        .await;
    assert_eq!(forged.status(), 400);
    assert_unchanged(&app, &before, "wrong proofs").await;

    // The account's password links GitHub and signs in, to return_to; the link is used once.
    let done = app
        .post_form(
            "/auth/provider-links/confirm",
            &[("link_id", &link_id), ("password", password)],
        )
        .await;
    assert_eq!(done.status(), 303);
    assert_eq!(location(&done), "/after-link");
    let (status, user) = app.user().await;
    assert_eq!(status, 200);
    assert_eq!(user["id"], owner["id"]);
    let again = app
        .post_form(
            "/auth/provider-links/confirm",
            &[("link_id", &link_id), ("password", password)],
        )
        .await;
    assert_eq!(again.status(), 400);

    // From now on GitHub signs straight in to that account.
    app.post_form("/auth/sessions/logout", &[]).await;
    let direct = sign_in(&app, "github", "").await;
    assert_eq!(location(&direct), "/");
    assert_eq!(app.user().await.1["id"], owner["id"]);
}

async fn the_callbacks_are_rate_limited(b: Backend) {
    let idp = TestIdp::start().await;
    let app = spawn(b, &idp, &[("AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT", "3")]).await;
    // The start and the callback each count as a login attempt of the address.
    let callback = to_callback(&app, "acme", "").await;
    assert_eq!(follow(&app.client, &callback).await.status(), 303);
    assert_eq!(app.get("/auth/oauth/acme/start").await.status(), 303);
    let limited = app.get("/auth/oauth/acme/callback?code=x&state=y").await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
}

async fn the_account_page_links_and_unlinks_sign_in_methods(b: Backend) {
    let idp = TestIdp::start().await;
    let app = spawn(b, &idp, &[]).await;
    let user = email("methods");
    app.signup(&user, "correct horse battery").await;
    let page = app.get("/auth/account").await.text().await.unwrap();
    assert!(
        page.contains("Link Acme SSO") && page.contains("Link GitHub"),
        "{page}"
    );
    // The password alone: no "Remove" (and the route refuses it).
    assert!(!page.contains("/auth/providers/password/unlink"), "{page}");
    let refused = app.post_form("/auth/providers/password/unlink", &[]).await;
    assert_eq!(refused.status(), 422);
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("You need at least one sign-in method."));

    // Link GitHub: the provider, then the callback links it to this account.
    idp.next_user("5150", &email("someone-else"), true);
    let start = app
        .post_form("/auth/providers/github/link/start", &[])
        .await;
    assert_eq!(start.status(), 303);
    let at_idp = follow(&app.client, &location(&start)).await;
    let linked = follow(&app.client, &location(&at_idp)).await;
    assert_eq!(location(&linked), "/auth/account?notice=method-linked");
    let page = app
        .get("/auth/account?notice=method-linked")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("The sign-in method was linked"), "{page}");
    assert!(page.contains("/auth/providers/github/unlink"), "{page}");
    assert!(!page.contains("Link GitHub"), "{page}");

    // The same GitHub account cannot be linked to a second account.
    let (_, me) = app.user().await;
    app.post_form("/auth/sessions/logout", &[]).await;
    app.signup(&email("second"), "correct horse battery").await;
    let start = app
        .post_form("/auth/providers/github/link/start", &[])
        .await;
    let at_idp = follow(&app.client, &location(&start)).await;
    let taken = follow(&app.client, &location(&at_idp)).await;
    assert_eq!(taken.status(), 409);
    app.post_form("/auth/sessions/logout", &[]).await;

    // GitHub signs in to the first account; its password can go, then GitHub cannot.
    let signed = sign_in(&app, "github", "").await;
    assert_eq!(signed.status(), 303);
    assert_eq!(app.user().await.1["id"], me["id"]);
    let removed = app.post_form("/auth/providers/password/unlink", &[]).await;
    assert_eq!(location(&removed), "/auth/account?notice=method-removed");
    let last = app.post_form("/auth/providers/github/unlink", &[]).await;
    assert_eq!(last.status(), 422);
    assert_eq!(
        app.post_form("/auth/providers/acme/unlink", &[])
            .await
            .status(),
        404
    );
    // A link flow needs the account that started it to be the one signed in at the callback.
    let start = app.post_form("/auth/providers/acme/link/start", &[]).await;
    let at_idp = follow(&app.client, &location(&start)).await;
    app.post_form("/auth/sessions/logout", &[]).await;
    let before = snapshot(&app).await;
    assert_eq!(follow(&app.client, &location(&at_idp)).await.status(), 400);
    assert_unchanged(&app, &before, "a link callback without its account").await;
}

async fn a_social_account_adds_a_password(b: Backend) {
    let idp = TestIdp::start().await;
    let app = spawn(b, &idp, &[]).await;
    idp.next_user("acme-pw", &email("social"), true);
    assert_eq!(sign_in(&app, "acme", "").await.status(), 303);
    let page = app.get("/auth/account").await.text().await.unwrap();
    assert!(
        page.contains(r#"href="/auth/providers/password/add""#),
        "{page}"
    );
    let add = app
        .get("/auth/providers/password/add")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        add.contains(r#"action="/auth/providers/password/link""#),
        "{add}"
    );
    let mismatch = app
        .post_form(
            "/auth/providers/password/link",
            &[
                ("password", "a new password"),
                ("confirm_password", "another"),
            ],
        )
        .await;
    assert_eq!(mismatch.status(), 422);
    let set = app
        .post_form(
            "/auth/providers/password/link",
            &[
                ("password", "a new password"),
                ("confirm_password", "a new password"),
            ],
        )
        .await;
    assert_eq!(location(&set), "/auth/account");
    let twice = app
        .post_form(
            "/auth/providers/password/link",
            &[
                ("password", "another one"),
                ("confirm_password", "another one"),
            ],
        )
        .await;
    assert_eq!(twice.status(), 422);
    // The add page now sends to the change form; the password signs in.
    let add = app.get("/auth/providers/password/add").await;
    assert_eq!(location(&add), "/auth/providers/password/change");
    app.post_form("/auth/sessions/logout", &[]).await;
    assert_eq!(
        app.login(&email("social"), "a new password").await.status(),
        303
    );
}

async fn a_linked_provider_proves_the_account_instead_of_a_password(b: Backend) {
    let idp = TestIdp::start().await;
    let app = spawn(b, &idp, &[]).await;
    // An account made through Acme: no password.
    let shared = email("two-ways");
    idp.next_user("acme-owner", &shared, true);
    assert_eq!(sign_in(&app, "acme", "").await.status(), 303);
    let (_, owner) = app.user().await;
    app.post_form("/auth/sessions/logout", &[]).await;

    // GitHub with the same verified email: the confirm page offers Acme as the proof.
    idp.next_user("31337", &shared, true);
    let res = sign_in(&app, "github", "?return_to=/both").await;
    let confirm = location(&res);
    let page = app.get(&confirm).await.text().await.unwrap();
    assert!(page.contains("Prove it with Acme SSO"), "{page}");
    assert!(!page.contains(r#"name="password""#), "{page}");
    let link_id = confirm.split("link_id=").nth(1).unwrap().to_owned();

    // Proving with another Acme account (not this one's) links nothing.
    let before = snapshot(&app).await;
    idp.next_user("acme-stranger", &email("stranger"), true);
    let start = app
        .post_form(
            "/auth/provider-links/confirm/acme",
            &[("link_id", &link_id)],
        )
        .await;
    assert_eq!(start.status(), 303);
    let at_idp = follow(&app.client, &location(&start)).await;
    let wrong = follow(&app.client, &location(&at_idp)).await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(app.user().await.0, 401);
    assert_unchanged(&app, &before, "a proof by someone else").await;
    // A provider the account has no identity of cannot prove it.
    let refused = app
        .post_form(
            "/auth/provider-links/confirm/github",
            &[("link_id", &link_id)],
        )
        .await;
    assert_eq!(refused.status(), 400);

    // The account's own Acme identity proves it: GitHub is linked and the account signed in.
    idp.next_user("acme-owner", &shared, true);
    let start = app
        .post_form(
            "/auth/provider-links/confirm/acme",
            &[("link_id", &link_id)],
        )
        .await;
    let at_idp = follow(&app.client, &location(&start)).await;
    let done = follow(&app.client, &location(&at_idp)).await;
    assert_eq!(done.status(), 303);
    assert_eq!(location(&done), "/both");
    assert_eq!(app.user().await.1["id"], owner["id"]);
    let store = app.store().await;
    let (_, user) = store
        .find_identity("github", "31337")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.email, shared);
}

async fn a_provider_email_in_another_case_still_finds_its_account(b: Backend) {
    let idp = TestIdp::start().await;
    let app = spawn(b, &idp, &[]).await;
    let existing = email("casey");
    app.signup(&existing, "correct horse battery").await;
    app.post_form("/auth/sessions/logout", &[]).await;
    // The provider spells the address in capitals: it is still that account's.
    idp.next_user("case-1", &existing.to_uppercase(), true);
    let res = sign_in(&app, "acme", "").await;
    assert_eq!(res.status(), 303);
    let confirm = location(&res);
    assert!(
        confirm.starts_with("/auth/provider-links/confirm?link_id="),
        "{confirm}"
    );
    let page = app.get(&confirm).await.text().await.unwrap();
    assert!(page.contains(&existing), "{page}");
}

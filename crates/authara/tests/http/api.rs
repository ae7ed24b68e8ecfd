//! The JSON API's shapes and error envelopes (SPEC §7, §8).

use crate::helpers::{claims, set_cookie, Backend, TestApp};
use crate::on_both;

on_both!(
    user_endpoint_returns_the_documented_shape,
    user_endpoint_without_a_token_is_401_with_the_envelope,
    csrf_endpoint_returns_and_sets_the_token_once,
    unknown_api_path_is_404_and_wrong_method_405_before_csrf,
    oversized_body_is_413_with_the_envelope,
    health_and_version_answer,
    admin_grant_gives_admin_tokens_and_roles,
);

async fn user_endpoint_returns_the_documented_shape(b: Backend) {
    let app = TestApp::spawn(b).await;
    let e = app.signed_up("shape").await;
    let res = app.get("/auth/api/v1/user").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: serde_json::Value = res.json().await.unwrap();
    let obj = body.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "created_at",
            "disabled",
            "email",
            "id",
            "organization",
            "roles",
            "username"
        ]
    );
    assert!(uuid::Uuid::parse_str(body["id"].as_str().unwrap()).is_ok());
    assert_eq!(body["email"], e.as_str());
    assert_eq!(body["roles"], serde_json::json!([]));
    assert_eq!(body["disabled"], false);
    let created = body["created_at"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.len() == 20, "{created}");
    time::OffsetDateTime::parse(created, &time::format_description::well_known::Rfc3339).unwrap();
    // Upstream's `OrganizationSummary` of the token's organization: in the default `single`
    // mode the signup's team organization, named after the username, owned by the user.
    let org = body["organization"].as_object().unwrap();
    let mut keys: Vec<&str> = org.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["id", "name", "role"]);
    assert_eq!(body["organization"]["name"], body["username"]);
    assert_eq!(body["organization"]["role"], "owner");
    let access = app.cookie("authara_access").unwrap();
    assert_eq!(claims(&access)["org_id"], body["organization"]["id"]);
    assert_eq!(claims(&access)["org_role"], "owner");
}

async fn user_endpoint_without_a_token_is_401_with_the_envelope(b: Backend) {
    let app = TestApp::spawn(b).await;
    let res = app.get("/auth/api/v1/user").await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["content-type"], "application/json");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    assert!(body["error"]["message"].is_string());
    app.set_cookie("authara_access", "garbage.token.here");
    assert_eq!(app.user().await.0, 401);
}

async fn csrf_endpoint_returns_and_sets_the_token_once(b: Backend) {
    let app = TestApp::spawn(b).await;
    let res = app.get("/auth/api/v1/csrf").await;
    assert_eq!(res.status(), 200);
    assert!(set_cookie(res.headers(), "authara_csrf").is_some());
    let body: serde_json::Value = res.json().await.unwrap();
    let token = body["csrf_token"].as_str().unwrap().to_owned();
    assert_eq!(app.cookie("authara_csrf").unwrap(), token);
    let res = app.get("/auth/api/v1/csrf").await;
    assert!(set_cookie(res.headers(), "authara_csrf").is_none());
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["csrf_token"], token.as_str());
}

async fn unknown_api_path_is_404_and_wrong_method_405_before_csrf(b: Backend) {
    let app = TestApp::spawn(b).await;
    let res = app.get("/auth/api/v1/nope").await;
    assert_eq!(res.status(), 404);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    // No CSRF token at all: routing answers first.
    let res = app
        .client
        .delete(app.url("/auth/api/v1/sessions/refresh"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
    let res = app
        .client
        .post(app.url("/auth/api/v1/user"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    let res = app.get("/auth/nope").await;
    assert_eq!(res.status(), 404);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
}

async fn oversized_body_is_413_with_the_envelope(b: Backend) {
    let app = TestApp::spawn(b).await;
    let csrf = app.csrf().await;
    let big = "x".repeat(65 * 1024);
    let res = app
        .client
        .post(app.url("/auth/api/v1/sessions/logout"))
        .header("x-csrf-token", &csrf)
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");
    // Chunked, without Content-Length, over a raw connection.
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut conn = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /auth/api/v1/sessions/logout HTTP/1.1\r\nHost: {}\r\nX-CSRF-Token: {csrf}\r\n\
         Cookie: authara_csrf={csrf}\r\nTransfer-Encoding: chunked\r\n\r\n",
        app.addr
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'x'; 8192];
    for _ in 0..9 {
        let mut c = format!("{:x}\r\n", chunk.len()).into_bytes();
        c.extend_from_slice(&chunk);
        c.extend_from_slice(b"\r\n");
        if conn.write_all(&c).await.is_err() {
            break;
        }
    }
    let _ = conn.write_all(b"0\r\n\r\n").await;
    let mut response = vec![0u8; 256];
    let n = conn.read(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response[..n]).to_string();
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
}

async fn health_and_version_answer(b: Backend) {
    let app = TestApp::spawn(b).await;
    let res = app.get("/auth/health").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"status":"ok"})
    );
    let res = app.get("/auth/version").await;
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
}

async fn admin_grant_gives_admin_tokens_and_roles(b: Backend) {
    // Roles are granted behind the server's back (as `authara admin grant` does): no cache.
    let app = TestApp::spawn_with(b, &[("AUTHARA_SESSION_CACHE_SECONDS", "0")]).await;
    let e = app.signed_up("boss").await;
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
    let (_, user) = app.user().await;
    assert_eq!(user["roles"], serde_json::json!(["authara:admin"]));
    let res = app
        .post_api("/auth/api/v1/sessions/refresh?audience=admin")
        .await;
    assert_eq!(res.status(), 200);
    let access = app.cookie("authara_access").unwrap();
    let claims = claims(&access);
    assert_eq!(claims["aud"], serde_json::json!(["admin"]));
    assert_eq!(claims["roles"], serde_json::json!(["authara:admin"]));
    assert_eq!(claims["iss"], "authara-test");
}

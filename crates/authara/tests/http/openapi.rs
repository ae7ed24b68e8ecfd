//! The OpenAPI document as a real server serves it (issue 9): JSON, OpenAPI 3.1, and in step
//! with the bodies the server really sends. `.ci/schemathesis` fuzzes the server against it.

use crate::helpers::{Backend, TestApp};
use crate::on_both;
use serde_json::Value;
use std::collections::BTreeSet;

on_both!(the_served_document_is_openapi_3_1_json_and_names_exactly_the_fields_the_server_sends,);

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

async fn the_served_document_is_openapi_3_1_json_and_names_exactly_the_fields_the_server_sends(
    b: Backend,
) {
    let app = TestApp::spawn(b).await;
    let res = app.get("/auth/api/v1/openapi.json").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(doc["info"]["title"], "Authara");
    let schemas = &doc["components"]["schemas"];

    // The JSON signup's body is the AuthSession and AuthUser of the document.
    let csrf_token = app.csrf().await;
    let res = app
        .client
        .post(app.url("/auth/api/v1/signup/direct"))
        .header("X-CSRF-Token", &csrf_token)
        .json(&serde_json::json!({"email": "openapi@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let session: Value = res.json().await.unwrap();
    assert_eq!(strings(&schemas["AuthSession"]["required"]), keys(&session));
    assert_eq!(keys(&schemas["AuthSession"]["properties"]), keys(&session));
    assert_eq!(
        keys(&schemas["AuthUser"]["properties"]),
        keys(&session["user"])
    );
    assert_eq!(
        strings(&schemas["AuthUser"]["required"]),
        keys(&session["user"])
    );

    let user: Value = app.get("/auth/api/v1/user").await.json().await.unwrap();
    let current_user = &schemas["CurrentUser"];
    assert_eq!(keys(&current_user["properties"]), keys(&user));
    assert_eq!(strings(&current_user["required"]), keys(&user));

    let csrf: Value = app.get("/auth/api/v1/csrf").await.json().await.unwrap();
    assert_eq!(keys(&schemas["CSRFToken"]["properties"]), keys(&csrf));

    let error: Value = app.get("/auth/api/v1/nowhere").await.json().await.unwrap();
    let envelope = &schemas["ErrorResponse"];
    assert_eq!(keys(&envelope["properties"]), keys(&error));
    assert_eq!(
        keys(&envelope["properties"]["error"]["properties"]),
        keys(&error["error"])
    );

    // The document is one value per process: a second fetch is the same bytes.
    let a = app
        .get("/auth/api/v1/openapi.json")
        .await
        .bytes()
        .await
        .unwrap();
    let b = app
        .get("/auth/api/v1/openapi.json")
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(a, b);
}

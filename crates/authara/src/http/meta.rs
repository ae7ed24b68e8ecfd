//! `/auth/health`, `/auth/version` and the stylesheet.

use crate::http::Routes;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use serde_json::json;
use std::time::Duration;

/// The meta routes.
pub fn routes() -> Routes {
    Routes::new()
        .get("/auth/health", get_health)
        .get("/auth/version", get_version)
        .get("/auth/static/authara.css", get_css)
}

/// How long the database may take to answer a health check.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);

/// `GET /auth/health`.
#[utoipa::path(
    get,
    path = "/auth/health",
    operation_id = "getHealth",
    tag = "Meta",
    summary = "Health check",
    description = "Whether the database answers within one second.",
    responses(
        (status = 200, description = "Healthy: `{\"status\":\"ok\"}`.",
            body = crate::http::api::openapi::HealthBody),
        (status = 503, description = "The database did not answer: `{\"status\":\"unavailable\"}`.",
            body = crate::http::api::openapi::HealthBody),
    ),
)]
pub async fn get_health(State(state): State<AppState>) -> Response {
    match tokio::time::timeout(HEALTH_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => Json(json!({"status": "ok"})).into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = ?e, "health check: database unavailable");
            unavailable()
        }
        Err(_) => {
            tracing::warn!("health check: database did not answer within 1s");
            unavailable()
        }
    }
}

fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"status": "unavailable"})),
    )
        .into_response()
}

/// `GET /auth/version`.
#[utoipa::path(
    get,
    path = "/auth/version",
    operation_id = "getVersion",
    tag = "Meta",
    summary = "Server version",
    responses((status = 200, description = "The crate version.",
        body = crate::http::api::openapi::VersionBody)),
)]
pub async fn get_version() -> Json<serde_json::Value> {
    Json(json!({"version": env!("CARGO_PKG_VERSION")}))
}

/// `GET /auth/static/authara.css`.
pub async fn get_css() -> Response {
    let mut res = include_str!("../../static/authara.css").into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    res
}

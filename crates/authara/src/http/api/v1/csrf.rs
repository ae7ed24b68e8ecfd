//! `GET /auth/api/v1/csrf`: the CSRF token for JavaScript clients.

use crate::http::pages::ensure_csrf;
use crate::http::Routes;
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Json, Response};
use serde::Serialize;

/// The CSRF route.
pub fn routes() -> Routes {
    Routes::new().get("/auth/api/v1/csrf", get_csrf)
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = CSRFToken)]
struct CsrfBody {
    csrf_token: String,
}

/// `GET /auth/api/v1/csrf`.
#[utoipa::path(
    get,
    path = "/auth/api/v1/csrf",
    operation_id = "getCsrfToken",
    tag = "Authentication",
    summary = "Get a CSRF token",
    description = "The CSRF token to send in `X-CSRF-Token` with every state-changing request. \
        Sets the `authara_csrf` cookie (30 days, readable by JavaScript) when the request has none.",
    responses((status = 200, description = "The token (the cookie's value).", body = CsrfBody)),
    extensions(("x-authara-set-cookies" = json!(["authara_csrf"]))),
)]
pub async fn get_csrf(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let mut out = HeaderMap::new();
    let csrf_token = ensure_csrf(&state, &headers, &mut out);
    (out, Json(CsrfBody { csrf_token })).into_response()
}

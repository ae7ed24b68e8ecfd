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

#[derive(Serialize)]
struct CsrfBody {
    csrf_token: String,
}

/// `GET /auth/api/v1/csrf`.
pub async fn get_csrf(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let mut out = HeaderMap::new();
    let csrf_token = ensure_csrf(&state, &headers, &mut out);
    (out, Json(CsrfBody { csrf_token })).into_response()
}

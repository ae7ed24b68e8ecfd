//! `POST /auth/api/v1/sessions/refresh` and `/logout`: the JSON session actions.

use crate::http::cookies;
use crate::http::error::ApiError;
use crate::http::form;
use crate::http::pages::session::end_session;
use crate::http::pages::set_session_cookies;
use crate::http::Routes;
use crate::state::AppState;
use authara_core::jwt::Audience;
use authara_core::session::RefreshError;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// The session routes.
pub fn routes() -> Routes {
    Routes::new()
        .post("/auth/api/v1/sessions/refresh", post_refresh)
        .post("/auth/api/v1/sessions/logout", post_logout)
}

/// The `audience` query parameter of the JSON routes that issue tokens: absent means `app`;
/// repeated, empty or anything but `app`/`admin` is `400 invalid_request`, never "absent".
pub fn audience_param(query: Option<&str>) -> Result<Audience, ApiError> {
    const BAD_AUDIENCE: ApiError =
        ApiError::InvalidRequest("audience must be \"app\" or \"admin\".");
    match form::query_param(query, "audience") {
        Ok(None) => Ok(Audience::App),
        Ok(Some(a)) => Audience::parse(&a).ok_or(BAD_AUDIENCE),
        Err(_) => Err(BAD_AUDIENCE),
    }
}

/// `POST /auth/api/v1/sessions/refresh?audience=app|admin`.
pub async fn post_refresh(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let audience = audience_param(query.as_deref())?;
    let token = cookies::read(&headers, cookies::REFRESH).ok_or(ApiError::Unauthorized)?;
    let mut out = HeaderMap::new();
    match state.sessions.refresh(token, audience).await {
        Ok(issued) => {
            set_session_cookies(state.cookies, &issued, &mut out);
            Ok((StatusCode::OK, out).into_response())
        }
        Err(RefreshError::Invalid) => {
            state.cookies.clear_session(&mut out);
            Ok((out, ApiError::Unauthorized).into_response())
        }
        Err(RefreshError::NotAdmin) => Err(ApiError::Unauthorized),
        Err(RefreshError::Store(e)) => Err(e.into()),
        Err(e @ RefreshError::Signing) => Err(ApiError::internal(e)),
    }
}

/// `POST /auth/api/v1/sessions/logout`: always `204` with cleared cookies (unless storage fails).
pub async fn post_logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (out, result) = end_session(&state, &headers).await;
    match result {
        Ok(()) => (StatusCode::NO_CONTENT, out).into_response(),
        Err(e) => (out, ApiError::from(e)).into_response(),
    }
}

//! `POST /auth/api/v1/sessions/refresh` and `/logout`: the JSON session actions.

use crate::http::api::openapi;
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
#[utoipa::path(
    post,
    path = "/auth/api/v1/sessions/refresh",
    operation_id = "refreshSession",
    tag = "Sessions",
    summary = "Refresh a cookie session",
    description = "A new access token for the session of the `authara_refresh` cookie, rotating \
        the refresh token per `AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL`. Sets both cookies (a \
        refresh that did not rotate sets `authara_refresh` again with the same token and its \
        remaining lifetime), except within the reuse grace window, where the refresh cookie is left \
        alone so the browser keeps the newer one. An invalid, expired, revoked or reused token \
        clears both cookies (a reused one revokes the whole session); `admin` for a \
        non-administrator leaves the session and the cookies as they were.",
    params(openapi::AudienceQuery),
    security((
        "refreshCookie" = [],
        "csrfCookie" = [],
        "csrfHeader" = [],
    )),
    responses(
        (status = 200, description = "Refreshed: empty body, new cookies."),
        (status = 400, response = openapi::InvalidRequest),
        (status = 401, response = openapi::Unauthorized),
    ),
    extensions(
        ("x-authara-set-cookies" = json!(["authara_access", "authara_refresh"])),
        ("x-authara-clear-cookies" = json!(["authara_access", "authara_refresh"])),
    ),
)]
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
#[utoipa::path(
    post,
    path = "/auth/api/v1/sessions/logout",
    operation_id = "logout",
    tag = "Sessions",
    summary = "Log out",
    description = "Revokes the session of the `authara_refresh` cookie (or, without one, the \
        session of a valid access token, cookie or bearer) and clears both cookies. Succeeds \
        without a session too. A request with a bearer token and no cookie needs no CSRF token.",
    security(("csrfCookie" = [], "csrfHeader" = []), ("accessBearer" = [])),
    responses((status = 204, description = "Logged out; both session cookies cleared.")),
    extensions(("x-authara-clear-cookies" = json!(["authara_access", "authara_refresh"]))),
)]
pub async fn post_logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (out, result) = end_session(&state, &headers).await;
    match result {
        Ok(()) => (StatusCode::NO_CONTENT, out).into_response(),
        Err(e) => (out, ApiError::from(e)).into_response(),
    }
}

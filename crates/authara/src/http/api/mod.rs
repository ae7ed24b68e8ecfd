//! JSON API v1 under `/auth/api/v1`.

use super::cookies;
use super::error::ApiError;
use crate::state::AppState;
use authara_core::jwt::Audience;
use authara_core::session::{role_names, AuthError, RefreshError};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;

/// The `GET /auth/api/v1/user` body.
#[derive(Debug, Serialize)]
pub struct UserBody<'a> {
    pub id: uuid::Uuid,
    pub email: &'a str,
    pub username: &'a str,
    pub roles: &'static [&'static str],
    pub disabled: bool,
    pub created_at: String,
}

/// `GET /auth/api/v1/user`.
pub async fn get_user(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(access) = cookies::read(&headers, cookies::ACCESS) else {
        return ApiError::Unauthorized.into_response();
    };
    let auth = match state.sessions.authenticate(access).await {
        Ok(a) => a,
        Err(AuthError::Unauthenticated) => return ApiError::Unauthorized.into_response(),
        Err(AuthError::Store(e)) => return ApiError::from(e).into_response(),
    };
    let u = &*auth.user;
    let created_at = match u
        .created_at
        .replace_nanosecond(0)
        .unwrap_or(u.created_at)
        .format(&Rfc3339)
    {
        Ok(t) => t,
        Err(e) => return ApiError::internal(e).into_response(),
    };
    Json(UserBody {
        id: u.id,
        email: &u.email,
        username: &u.username,
        roles: role_names(u),
        disabled: u.disabled,
        created_at,
    })
    .into_response()
}

#[derive(Debug, Default, serde::Deserialize)]
struct AudienceQuery {
    audience: Option<String>,
}

/// `POST /auth/api/v1/sessions/refresh?audience=app|admin`.
pub async fn post_refresh(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let q: AudienceQuery = super::form::parse_query(query.as_deref());
    let audience = match q.audience.as_deref() {
        None => Audience::App,
        Some(a) => Audience::parse(a).ok_or(ApiError::InvalidRequest(
            "audience must be \"app\" or \"admin\".",
        ))?,
    };
    let token = cookies::read(&headers, cookies::REFRESH).ok_or(ApiError::Unauthorized)?;
    let mut out = HeaderMap::new();
    match state.sessions.refresh(token, audience).await {
        Ok(issued) => {
            super::pages::set_session_cookies(state.cookies, &issued, &mut out);
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
    let (out, result) = super::pages::session::end_session(&state, &headers).await;
    match result {
        Ok(()) => (StatusCode::NO_CONTENT, out).into_response(),
        Err(e) => (out, ApiError::from(e)).into_response(),
    }
}

#[derive(Serialize)]
struct CsrfBody {
    csrf_token: String,
}

/// `GET /auth/api/v1/csrf`.
pub async fn get_csrf(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let mut out = HeaderMap::new();
    let csrf_token = super::pages::ensure_csrf(&state, &headers, &mut out);
    (out, Json(CsrfBody { csrf_token })).into_response()
}

//! `GET /auth/api/v1/user`: the signed-in user.

use crate::http::error::ApiError;
use crate::http::extract::ApiUser;
use crate::http::Routes;
use authara_core::session::role_names;
use axum::response::{IntoResponse, Json, Response};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;

/// The user routes.
pub fn routes() -> Routes {
    Routes::new().get("/auth/api/v1/user", get_user)
}

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
pub async fn get_user(ApiUser(auth): ApiUser) -> Response {
    let u = &*auth.user;
    let created_at = match rfc3339_seconds(u.created_at) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
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

/// A time as the API shows it: RFC 3339 in UTC, whole seconds (`2026-01-01T12:00:00Z`).
pub fn rfc3339_seconds(t: time::OffsetDateTime) -> Result<String, ApiError> {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .map_err(ApiError::internal)
}

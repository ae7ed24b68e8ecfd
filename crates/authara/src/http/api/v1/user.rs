//! `GET /auth/api/v1/user`: the signed-in user.

use super::organizations::OrganizationSummary;
use crate::http::api::openapi;
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
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = CurrentUser)]
pub struct UserBody<'a> {
    pub id: uuid::Uuid,
    #[schema(format = Email)]
    pub email: &'a str,
    pub username: &'a str,
    #[schema(schema_with = openapi::roles_schema)]
    pub roles: &'static [&'static str],
    pub disabled: bool,
    /// RFC 3339, UTC, whole seconds.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The organization the session acts in, with the user's role there now.
    pub organization: OrganizationSummary,
}

/// `GET /auth/api/v1/user`.
#[utoipa::path(
    get,
    path = "/auth/api/v1/user",
    operation_id = "getCurrentUser",
    tag = "Users",
    summary = "Get the signed-in user",
    description = "The user of the access token, while its session is live: logout, refresh-token \
        reuse, disabling and deletion take effect at once; so do a changed role or a removed \
        membership in `organization`.",
    security(("accessCookie" = []), ("accessBearer" = [])),
    responses(
        (status = 200, description = "The signed-in user.", body = UserBody),
        (status = 401, response = openapi::Unauthorized),
    ),
)]
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
        organization: OrganizationSummary::from(&*auth.organization),
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

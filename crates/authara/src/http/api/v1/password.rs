//! `PUT /auth/api/v1/users/password`: set or replace the caller's password. Upstream's body is
//! `{password}`; we also want the current password whenever the account has one, so that a
//! stolen access token alone cannot take the account over, and count it like a login guess.

use crate::http::api::{json, openapi};
use crate::http::error::{envelope, ApiError};
use crate::http::extract::{ApiUser, RequestCtx};
use crate::http::pages::password::{change_password, ChangeRefusal};
use crate::http::Routes;
use crate::state::AppState;
use authara_core::auth::PasswordChangeError;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// The password routes.
pub fn routes() -> Routes {
    Routes::new().put("/auth/api/v1/users/password", put_password)
}

/// The `PUT /auth/api/v1/users/password` body. Passwords are used exactly as sent, never
/// trimmed. No `Debug`: it holds passwords.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPasswordRequest {
    /// The new password: 8 to 128 characters, no control characters.
    #[schema(
        format = Password,
        min_length = 8,
        max_length = 128,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub password: String,
    /// The account's password now; required when the account has one.
    #[serde(default)]
    #[schema(format = Password)]
    pub current_password: Option<String>,
}

/// `PUT /auth/api/v1/users/password`: `204` and every other session of the caller revoked
/// (theirs survives). A missing `current_password` on an account that has a password, or an
/// unacceptable new password, is `400 invalid_request`; a wrong current password `403
/// forbidden`; too many wrong ones `429 rate_limited`, as for the login form.
#[utoipa::path(
    put,
    path = "/auth/api/v1/users/password",
    operation_id = "setCurrentUserPassword",
    tag = "Users",
    summary = "Set or change the password",
    description = "Sets the caller's password, exactly as sent (never trimmed), and revokes every \
        other session of theirs; the caller's own survives. When the account has a password, \
        `current_password` is required (`400` without it, `403 forbidden` when wrong) and counted \
        like a login guess (`429` + `Retry-After`). An unacceptable new password is `400` naming \
        the problem; `503` + `Retry-After` while password hashing is saturated.",
    request_body = SetPasswordRequest,
    security(
        ("accessCookie" = [], "csrfCookie" = [], "csrfHeader" = []),
        ("accessBearer" = []),
    ),
    responses(
        (status = 204, description = "Password set; the other sessions are revoked."),
        (status = 400, response = openapi::InvalidRequest),
        (status = 401, response = openapi::Unauthorized),
        (status = 403, response = openapi::Forbidden),
        (status = 429, response = openapi::RateLimited),
    ),
)]
pub async fn put_password(
    State(state): State<AppState>,
    ApiUser(auth): ApiUser,
    RequestCtx(context): RequestCtx,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: SetPasswordRequest = json::parse(&headers, &body)?;
    let current = req.current_password.as_deref().filter(|c| !c.is_empty());
    let outcome = match change_password(&state, &auth, current, &req.password, &context).await {
        Err(ChangeRefusal::Limited(limited)) => return Err(limited.into()),
        Err(ChangeRefusal::Change(e)) => Err(e),
        Ok(revoked) => Ok(revoked),
    };
    match outcome {
        Ok(_) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(PasswordChangeError::Invalid(e)) => Err(ApiError::InvalidRequest(e.message())),
        Err(PasswordChangeError::CurrentRequired) => Err(ApiError::InvalidRequest(
            "current_password is required: the account has a password.",
        )),
        Err(PasswordChangeError::WrongCurrent) => Ok(envelope(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Current password is incorrect.",
        )),
        Err(PasswordChangeError::Busy) => Err(ApiError::Busy),
        Err(PasswordChangeError::Failed(e)) => Err(ApiError::internal(e)),
    }
}

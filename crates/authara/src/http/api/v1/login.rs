//! `POST /auth/api/v1/login?audience=app|admin`: the JSON login, for single-page and mobile apps.
//! The same rules as the HTML login underneath ([`password_login`]).

use super::session::audience_param;
use super::tokens::{signed_in, AuthSession};
use crate::http::api::{json, openapi};
use crate::http::error::ApiError;
use crate::http::extract::ClientInfo;
use crate::http::pages::login::{password_login, LoginRefusal};
use crate::http::Routes;
use crate::state::AppState;
use authara_core::auth::LoginError;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

/// The login route.
pub fn routes() -> Routes {
    Routes::new().post("/auth/api/v1/login", post_login)
}

/// The login body. No `Debug`: it holds the password.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordLoginRequest {
    /// The account's email address (`identifier` is accepted as another name for it, as newer
    /// Authara clients send it).
    #[serde(alias = "identifier")]
    #[schema(format = Email, pattern = r"\S")]
    pub email: String,
    #[schema(format = Password, min_length = 1)]
    pub password: String,
}

/// `POST /auth/api/v1/login`: `200` with the [`AuthSession`] and both session cookies.
#[utoipa::path(
    post,
    path = "/auth/api/v1/login",
    operation_id = "loginWithPassword",
    tag = "Authentication",
    summary = "Log in with a password",
    description = "Starts a session for the email and password, with the rules of the HTML login: \
        a wrong password, an unknown email and an account without a password get the same `401`; \
        a disabled account, or `admin` for a user who is no administrator, `403`, told only after \
        the password was verified. Rate limited per IP and per email (`429` + `Retry-After`); \
        `503` + `Retry-After` while password hashing is saturated. Sets both session cookies and \
        answers the tokens too.",
    params(openapi::AudienceQuery),
    request_body = PasswordLoginRequest,
    security(("csrfCookie" = [], "csrfHeader" = [])),
    responses(
        (status = 200, description = "Signed in; both session cookies set.", body = AuthSession),
        (status = 400, response = openapi::InvalidRequest),
        (status = 401, response = openapi::Unauthorized),
        (status = 403, response = openapi::Forbidden),
        (status = 429, response = openapi::RateLimited),
    ),
    extensions(("x-authara-set-cookies" = json!(["authara_access", "authara_refresh"]))),
)]
pub async fn post_login(
    State(state): State<AppState>,
    client: ClientInfo,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let audience = audience_param(query.as_deref())?;
    let req: PasswordLoginRequest = json::parse(&headers, &body)?;
    let refused = match password_login(
        &state,
        &client,
        &headers,
        &req.email,
        &req.password,
        audience,
    )
    .await
    {
        Ok((user, issued)) => {
            return signed_in(&state, StatusCode::OK, &user, &issued);
        }
        Err(refused) => refused,
    };
    Err(match refused {
        LoginRefusal::Limited(l) => l.into(),
        LoginRefusal::Login(LoginError::Empty) => {
            ApiError::InvalidRequest("Email and password are required.")
        }
        LoginRefusal::Login(LoginError::Invalid) => ApiError::InvalidCredentials,
        LoginRefusal::Login(LoginError::Disabled) | LoginRefusal::Audience => {
            ApiError::AudienceRefused
        }
        LoginRefusal::Login(LoginError::Busy) => ApiError::Busy,
        LoginRefusal::Login(LoginError::Failed(e)) => ApiError::internal(e),
    })
}

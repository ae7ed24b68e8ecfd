//! `POST /auth/api/v1/tokens/refresh`: refresh for clients without cookies (mobile apps). The
//! refresh token comes in the JSON body and the tokens go back in the JSON answer; no cookie is
//! read or set. Rotation, the reuse grace window and reuse detection are the cookie refresh's
//! own ([`SessionService::refresh`](authara_core::session::SessionService::refresh)).
//!
//! Also the token bodies the login and signup routes answer with.

use super::user::rfc3339_seconds;
use crate::http::api::{json, openapi};
use crate::http::error::ApiError;
use crate::http::pages::set_session_cookies;
use crate::http::Routes;
use crate::state::AppState;
use authara_core::auth::store::UserRecord;
use authara_core::jwt::Audience;
use authara_core::session::{Issued, RefreshError};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use serde::{Deserialize, Serialize};

/// The token route.
pub fn routes() -> Routes {
    Routes::new().post(REFRESH_PATH, post_tokens_refresh)
}

/// The path of the mobile refresh, which is exempt from the CSRF check: it reads no cookie, so
/// there is no ambient credential for another site to ride (see `router::CSRF_EXEMPT`).
pub const REFRESH_PATH: &str = "/auth/api/v1/tokens/refresh";

/// The user in an [`AuthSession`] (upstream's `AuthUser`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuthUser {
    pub id: uuid::Uuid,
    #[schema(format = Email)]
    pub email: String,
    pub username: String,
    pub disabled: bool,
    /// RFC 3339, UTC, whole seconds.
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// What a JSON login or signup answers: the user and both tokens (the same tokens are also set
/// as cookies, for browsers).
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuthSession {
    pub user: AuthUser,
    pub access_token: String,
    pub refresh_token: String,
}

/// The answer of the mobile refresh (upstream's `Tokens`).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Tokens {
    pub access_token: String,
    /// The refresh token to use next time: a new one when this refresh rotated, else the one
    /// presented.
    pub refresh_token: String,
}

/// The answer of a JSON login or signup: `status`, the [`AuthSession`] and both session cookies.
pub fn signed_in(
    state: &AppState,
    status: StatusCode,
    user: &UserRecord,
    issued: &Issued,
) -> Result<Response, ApiError> {
    let body = auth_session(user, issued)?;
    let mut out = HeaderMap::new();
    set_session_cookies(state.cookies, issued, &mut out);
    Ok((status, out, Json(body)).into_response())
}

/// The [`AuthSession`] for a session just started.
pub fn auth_session(user: &UserRecord, issued: &Issued) -> Result<AuthSession, ApiError> {
    let Tokens {
        access_token,
        refresh_token,
    } = new_tokens(issued)?;
    Ok(AuthSession {
        user: AuthUser {
            id: user.id,
            email: user.email.clone(),
            username: user.username.clone(),
            disabled: user.disabled,
            created_at: rfc3339_seconds(user.created_at)?,
        },
        access_token,
        refresh_token,
    })
}

/// The [`Tokens`] of a session just started or moved (a login, a signup, a switch), which
/// always comes with a new refresh token.
pub fn new_tokens(issued: &Issued) -> Result<Tokens, ApiError> {
    let refresh = issued.refresh.token().ok_or_else(|| {
        ApiError::internal(std::io::Error::other(
            "a new session without a refresh token",
        ))
    })?;
    Ok(Tokens {
        access_token: issued.access.token.clone(),
        refresh_token: refresh.token.expose().to_owned(),
    })
}

/// The audience a mobile refresh asks for.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AudienceField {
    App,
    Admin,
}

/// The mobile refresh body. No `Debug`: it holds the refresh token.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TokenRefreshRequest)]
pub struct RefreshTokenRequest {
    #[schema(min_length = 1)]
    pub refresh_token: String,
    #[serde(default)]
    #[schema(schema_with = openapi::audience_schema)]
    pub audience: Option<AudienceField>,
}

/// `POST /auth/api/v1/tokens/refresh`: `200` [`Tokens`]; an empty token is `400
/// invalid_request`; an invalid, expired, revoked or reused one (or `admin` for a user who is
/// no administrator) is `401 unauthorized`.
///
/// Within the reuse grace window (a concurrent refresh has just rotated the presented token)
/// the answer carries the presented token: the client must keep the newer one that the other
/// refresh returned. Clients that refresh one at a time never see this.
#[utoipa::path(
    post,
    path = "/auth/api/v1/tokens/refresh",
    operation_id = "refreshTokens",
    tag = "Sessions",
    summary = "Refresh tokens sent in JSON",
    description = "For clients without cookies (mobile apps): the refresh token in the body, a new \
        access token and the refresh token to use next time in the answer (a new one when this \
        refresh rotated, else the one sent), with the cookie refresh's rotation, reuse grace \
        window and reuse detection. Reads and sets no cookie and needs no CSRF token.",
    request_body = RefreshTokenRequest,
    responses(
        (status = 200, description = "The tokens.", body = Tokens),
        (status = 400, response = openapi::InvalidRequest),
        (status = 401, response = openapi::Unauthorized),
    ),
)]
pub async fn post_tokens_refresh(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: RefreshTokenRequest = json::parse(&headers, &body)?;
    if req.refresh_token.is_empty() {
        return Err(ApiError::InvalidRequest("refresh_token is required."));
    }
    let audience = match req.audience {
        None | Some(AudienceField::App) => Audience::App,
        Some(AudienceField::Admin) => Audience::Admin,
    };
    let issued = match state.sessions.refresh(&req.refresh_token, audience).await {
        Ok(issued) => issued,
        Err(RefreshError::Invalid | RefreshError::NotAdmin) => return Err(ApiError::Unauthorized),
        Err(RefreshError::Store(e)) => return Err(e.into()),
        Err(e @ RefreshError::Signing) => return Err(ApiError::internal(e)),
    };
    let refresh_token = match issued.refresh.token() {
        Some(t) => t.token.expose().to_owned(),
        None => req.refresh_token,
    };
    Ok(Json(Tokens {
        access_token: issued.access.token,
        refresh_token,
    })
    .into_response())
}

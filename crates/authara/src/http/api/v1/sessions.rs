//! The caller's sessions as JSON: `GET /auth/api/v1/sessions` (upstream lists them only in
//! HTML), `DELETE /auth/api/v1/sessions/{id}` and `POST /auth/api/v1/sessions/revoke-other`.

use super::user::rfc3339_seconds;
use crate::http::api::openapi;
use crate::http::error::ApiError;
use crate::http::extract::{ApiUser, RequestCtx};
use crate::http::Routes;
use crate::state::AppState;
use authara_core::store::LiveSession;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use serde::Serialize;
use uuid::Uuid;

/// The session list routes.
pub fn routes() -> Routes {
    Routes::new()
        .get("/auth/api/v1/sessions", get_sessions)
        .post("/auth/api/v1/sessions/revoke-other", post_revoke_other)
        .delete("/auth/api/v1/sessions/{id}", delete_session)
}

/// The `GET /auth/api/v1/sessions` body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Sessions)]
pub struct SessionsBody {
    /// The caller's live sessions, newest first.
    pub sessions: Vec<SessionBody>,
}

/// One live session. Timestamps are RFC 3339 UTC without fractional seconds.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Session)]
pub struct SessionBody {
    pub id: Uuid,
    /// When the session was signed in.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When it last got a refresh token: its sign-in or its latest refresh-token rotation
    /// (exact to `AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL`).
    #[schema(format = DateTime)]
    pub last_used_at: String,
    /// When it ends at the latest (the absolute session lifetime).
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// The user agent that signed in, as recorded (possibly empty).
    pub user_agent: String,
    /// The client address that signed in.
    pub ip_address: String,
    /// Whether this is the session of the access token that asked.
    pub current: bool,
}

/// The `POST /auth/api/v1/sessions/revoke-other` body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = RevokedSessions)]
pub struct RevokedBody {
    /// How many sessions were revoked.
    pub revoked: u64,
}

impl SessionBody {
    fn new(s: LiveSession, current: Uuid) -> Result<Self, ApiError> {
        Ok(Self {
            id: s.id,
            created_at: rfc3339_seconds(s.created_at)?,
            last_used_at: rfc3339_seconds(s.last_used_at)?,
            expires_at: rfc3339_seconds(s.expires_at)?,
            user_agent: s.user_agent,
            ip_address: s.client_ip,
            current: s.id == current,
        })
    }
}

/// `GET /auth/api/v1/sessions`.
#[utoipa::path(
    get,
    path = "/auth/api/v1/sessions",
    operation_id = "listSessions",
    tag = "Sessions",
    summary = "List the caller's sessions",
    description = "The caller's live sessions, newest first; `current` marks the one asking.",
    security(("accessCookie" = []), ("accessBearer" = [])),
    responses(
        (status = 200, description = "The live sessions.", body = SessionsBody),
        (status = 401, response = openapi::Unauthorized),
    ),
)]
pub async fn get_sessions(
    State(state): State<AppState>,
    ApiUser(auth): ApiUser,
) -> Result<Response, ApiError> {
    let sessions = state
        .sessions
        .list(auth.user.id)
        .await?
        .into_iter()
        .map(|s| SessionBody::new(s, auth.claims.sid))
        .collect::<Result<_, _>>()?;
    Ok(Json(SessionsBody { sessions }).into_response())
}

/// `POST /auth/api/v1/sessions/revoke-other`: every live session of the caller but theirs is
/// revoked; `200 {"revoked": n}`.
#[utoipa::path(
    post,
    path = "/auth/api/v1/sessions/revoke-other",
    operation_id = "revokeOtherSessions",
    tag = "Sessions",
    summary = "Sign out everywhere else",
    description = "Revokes every live session of the caller except the one asking.",
    security(
        ("accessCookie" = [], "csrfCookie" = [], "csrfHeader" = []),
        ("accessBearer" = []),
    ),
    responses(
        (status = 200, description = "How many sessions were revoked.", body = RevokedBody),
        (status = 401, response = openapi::Unauthorized),
    ),
)]
pub async fn post_revoke_other(
    State(state): State<AppState>,
    ApiUser(auth): ApiUser,
    RequestCtx(context): RequestCtx,
) -> Result<Response, ApiError> {
    let revoked = state
        .sessions
        .revoke_others(&auth.user, auth.claims.sid, &context)
        .await?;
    Ok(Json(RevokedBody { revoked }).into_response())
}

/// `DELETE /auth/api/v1/sessions/{id}`: revokes one of the caller's sessions, `204`. Another
/// user's session, an unknown or a malformed id: `404 not_found`, and nothing changes. The
/// caller's own session may go too: then its cookies are cleared.
#[utoipa::path(
    delete,
    path = "/auth/api/v1/sessions/{id}",
    operation_id = "revokeSession",
    tag = "Sessions",
    summary = "Revoke one of the caller's sessions",
    description = "Revokes the session `id` of the caller. Another user's session, an unknown or a \
        malformed id are `404` and change nothing. Revoking the caller's own session clears both \
        session cookies.",
    params(("id" = Uuid, Path, description = "The session's id.")),
    security(
        ("accessCookie" = [], "csrfCookie" = [], "csrfHeader" = []),
        ("accessBearer" = []),
    ),
    responses(
        (status = 204, description = "Revoked."),
        (status = 401, response = openapi::Unauthorized),
        (status = 404, response = openapi::NotFound),
    ),
    extensions(("x-authara-clear-cookies" = json!(["authara_access", "authara_refresh"]))),
)]
pub async fn delete_session(
    State(state): State<AppState>,
    ApiUser(auth): ApiUser,
    RequestCtx(context): RequestCtx,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    // A segment that does not even decode (`%FF`) is as unknown as a malformed id.
    let Ok(Path(id)) = id else {
        return Err(ApiError::NotFound);
    };
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound)?;
    if !state.sessions.revoke(&auth.user, id, &context).await? {
        return Err(ApiError::NotFound);
    }
    let mut out = HeaderMap::new();
    if id == auth.claims.sid {
        state.cookies.clear_session(&mut out);
    }
    Ok((StatusCode::NO_CONTENT, out).into_response())
}

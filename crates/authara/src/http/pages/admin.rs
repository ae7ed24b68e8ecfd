//! Administrator actions: disable and enable users.

use crate::http::cookies;
use crate::http::error::PageError;
use crate::http::extract::{body_return_to, Htmx};
use crate::http::respond::redirect;
use crate::state::AppState;
use authara_core::domain::ReturnTo;
use authara_core::jwt::Audience;
use authara_core::session::AuthError;
use authara_core::store::StoreError;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use uuid::Uuid;

/// `POST /auth/admin/users/{id}/disable`.
pub async fn post_disable(
    state: State<AppState>,
    htmx: Htmx,
    id: Path<String>,
    query: RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    set_disabled(state, htmx, id, query, headers, body, true).await
}

/// `POST /auth/admin/users/{id}/enable`.
pub async fn post_enable(
    state: State<AppState>,
    htmx: Htmx,
    id: Path<String>,
    query: RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    set_disabled(state, htmx, id, query, headers, body, false).await
}

async fn set_disabled(
    State(state): State<AppState>,
    Htmx(htmx): Htmx,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
    disabled: bool,
) -> Result<Response, PageError> {
    let Some(access) = cookies::read(&headers, cookies::ACCESS) else {
        return Err(PageError::new(StatusCode::UNAUTHORIZED, "Please sign in."));
    };
    // Always from the database: rights revoked elsewhere count at once here.
    let admin = match state.sessions.authenticate_fresh(access).await {
        Ok(a) => a,
        Err(AuthError::Unauthenticated) => {
            return Err(PageError::new(StatusCode::UNAUTHORIZED, "Please sign in."))
        }
        Err(AuthError::Store(e)) => return Err(e.into()),
    };
    // The token must be an admin token, and the user must still be an admin right now.
    if !(admin.claims.has_audience(Audience::Admin)
        && admin.claims.is_admin()
        && admin.user.is_admin)
    {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "This action needs an administrator session.",
        ));
    }
    let Ok(target) = Uuid::parse_str(&id) else {
        return Err(PageError::not_found());
    };
    match state.auth.set_disabled(target, disabled).await {
        Ok(()) => {}
        Err(StoreError::NotFound) => return Err(PageError::not_found()),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(admin_id = %admin.user.id, user_id = %target, disabled, "user access changed by an administrator");
    let to = body_return_to(&body, query.as_deref()).unwrap_or_else(ReturnTo::root);
    Ok(redirect(htmx, to.as_str(), HeaderMap::new()))
}

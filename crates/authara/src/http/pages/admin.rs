//! Administrator actions: disable and enable users.

use crate::http::error::PageError;
use crate::http::extract::{body_return_to, AdminUser, Htmx, RequestCtx};
use crate::http::respond::redirect;
use crate::http::Routes;
use crate::state::AppState;
use authara_core::domain::ReturnTo;
use authara_core::store::StoreError;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use uuid::Uuid;

/// The administrator routes.
pub fn routes() -> Routes {
    Routes::new()
        .post("/auth/admin/users/{id}/disable", post_disable)
        .post("/auth/admin/users/{id}/enable", post_enable)
}

/// `POST /auth/admin/users/{id}/disable`.
pub async fn post_disable(
    state: State<AppState>,
    htmx: Htmx,
    id: Path<String>,
    query: RawQuery,
    admin: AdminUser,
    context: RequestCtx,
    body: Bytes,
) -> Result<Response, PageError> {
    set_disabled(state, htmx, id, query, admin, context, body, true).await
}

/// `POST /auth/admin/users/{id}/enable`.
pub async fn post_enable(
    state: State<AppState>,
    htmx: Htmx,
    id: Path<String>,
    query: RawQuery,
    admin: AdminUser,
    context: RequestCtx,
    body: Bytes,
) -> Result<Response, PageError> {
    set_disabled(state, htmx, id, query, admin, context, body, false).await
}

async fn set_disabled(
    State(state): State<AppState>,
    Htmx(htmx): Htmx,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    AdminUser(admin): AdminUser,
    RequestCtx(context): RequestCtx,
    body: Bytes,
    disabled: bool,
) -> Result<Response, PageError> {
    let Ok(target) = Uuid::parse_str(&id) else {
        return Err(PageError::not_found());
    };
    match state
        .auth
        .set_disabled(admin.user.id, target, disabled, &context)
        .await
    {
        Ok(()) => {}
        Err(StoreError::NotFound) => return Err(PageError::not_found()),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(admin_id = %admin.user.id, user_id = %target, disabled, "user access changed by an administrator");
    let to = body_return_to(&body, query.as_deref()).unwrap_or_else(ReturnTo::root);
    Ok(redirect(htmx, to.as_str(), HeaderMap::new()))
}

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

/// What both actions read from the request.
struct Change {
    htmx: bool,
    id: String,
    query: Option<String>,
    admin: AdminUser,
    context: RequestCtx,
    body: Bytes,
}

/// `POST /auth/admin/users/{id}/disable`.
pub async fn post_disable(
    State(state): State<AppState>,
    Htmx(htmx): Htmx,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    admin: AdminUser,
    context: RequestCtx,
    body: Bytes,
) -> Result<Response, PageError> {
    let change = Change {
        htmx,
        id,
        query,
        admin,
        context,
        body,
    };
    set_disabled(&state, change, true).await
}

/// `POST /auth/admin/users/{id}/enable`.
pub async fn post_enable(
    State(state): State<AppState>,
    Htmx(htmx): Htmx,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    admin: AdminUser,
    context: RequestCtx,
    body: Bytes,
) -> Result<Response, PageError> {
    let change = Change {
        htmx,
        id,
        query,
        admin,
        context,
        body,
    };
    set_disabled(&state, change, false).await
}

async fn set_disabled(
    state: &AppState,
    change: Change,
    disabled: bool,
) -> Result<Response, PageError> {
    let AdminUser(admin) = change.admin;
    let RequestCtx(context) = change.context;
    let Ok(target) = Uuid::parse_str(&change.id) else {
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
    let to = body_return_to(&change.body, change.query.as_deref()).unwrap_or_else(ReturnTo::root);
    Ok(redirect(change.htmx, to.as_str(), HeaderMap::new()))
}

//! The account's sign-in methods: `POST /auth/providers/{provider}/link/start` (link a
//! code-flow provider: the provider's page, then back to the callback, which links) and
//! `POST /auth/providers/{provider}/unlink` (remove an identity, or `password`; never the last
//! way to sign in: "You need at least one sign-in method.").

use super::account::account_page;
use super::code_flow;
use crate::http::error::PageError;
use crate::http::extract::{Htmx, SignedIn};
use crate::http::respond::redirect;
use crate::http::Routes;
use crate::state::AppState;
use authara_core::auth::flow::FlowPurpose;
use authara_core::auth::{LinkError, UnlinkError};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

/// `POST /auth/providers/{provider}/link/start`.
pub const LINK_START: &str = "/auth/providers/{provider}/link/start";
/// `POST /auth/providers/{provider}/unlink`.
pub const UNLINK: &str = "/auth/providers/{provider}/unlink";

/// The routes.
pub fn routes() -> Routes {
    Routes::new()
        .post(LINK_START, post_link_start)
        .post(UNLINK, post_unlink)
}

/// Shown on the account page after a link.
pub const METHOD_LINKED: &str = "The sign-in method was linked: you can now sign in with it.";
/// Shown on the account page after an unlink.
pub const METHOD_REMOVED: &str = "The sign-in method was removed.";
/// The refusal of the last method's removal (upstream's words).
pub const LAST_METHOD: &str = "You need at least one sign-in method.";

/// The message of a link refused because the identity or the provider is taken (`409`), for
/// the provider shown as `provider`; `None` for the other refusals.
pub fn link_conflict(e: &LinkError, provider: &str) -> Option<String> {
    match e {
        LinkError::TakenElsewhere => Some(format!(
            "This {provider} account is already linked to another account."
        )),
        LinkError::ProviderLinked => Some(format!(
            "Your account is already linked to a {provider} account. Unlink it first."
        )),
        LinkError::Invalid | LinkError::Failed(_) => None,
    }
}

/// `POST /auth/providers/{provider}/link/start`: `303` to the provider (with htmx, `200` +
/// `HX-Redirect`), the flow bound to this browser and to the signed-in user.
pub async fn post_link_start(
    State(state): State<AppState>,
    user: SignedIn,
    Htmx(htmx): Htmx,
    Path(provider): Path<String>,
) -> Result<Response, PageError> {
    let p = state.provider(&provider).ok_or_else(PageError::not_found)?;
    let purpose = FlowPurpose::Link {
        user_id: user.auth.user.id,
    };
    code_flow::redirect_to_provider(&state, p, None, purpose, htmx, user.cookies).await
}

/// `POST /auth/providers/{provider}/unlink`: back to the account page, or the account page with
/// `422` and the reason.
pub async fn post_unlink(
    State(state): State<AppState>,
    user: SignedIn,
    Htmx(htmx): Htmx,
    Path(provider): Path<String>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    match state
        .auth
        .unlink_sign_in_method(user.auth.user.id, &provider)
        .await
    {
        Ok(()) => {
            tracing::info!(user_id = %user.auth.user.id, method = %provider, "sign-in method removed");
            Ok(redirect(
                htmx,
                "/auth/account?notice=method-removed",
                user.cookies,
            ))
        }
        Err(UnlinkError::LastMethod) => {
            account_page(
                &state,
                &headers,
                user,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(LAST_METHOD),
                None,
            )
            .await
        }
        Err(UnlinkError::NotFound) => Ok(super::render_error_page(
            StatusCode::NOT_FOUND,
            "This sign-in method is not linked.",
        )),
        Err(UnlinkError::Failed(e)) => Err(PageError::internal(e)),
    }
}

//! Upstream's confirm page: `GET /auth/provider-links/confirm?link_id=` and
//! `POST /auth/provider-links/confirm` (`link_id`, `password`). Reached from a code-flow
//! callback whose identity's verified email is an existing account's: the account's password
//! links the identity and signs in (see [`authara_core::auth::link`]). Rate limited as a login
//! (per IP and per the account's email); the pending link is this browser's (HttpOnly
//! `authara_provider_link` cookie), single-use and lives 10 minutes.

use super::{
    ask_limiter, email_limit_key, ensure_csrf, refund, refuse_busy, refuse_limited, render,
    render_error_page, signed_in_redirect, Ask,
};
use crate::http::cookies;
use crate::http::error::PageError;
use crate::http::extract::{ClientInfo, Htmx};
use crate::http::form;
use crate::http::Routes;
use crate::state::AppState;
use askama::Template;
use authara_core::auth::link::ConfirmError;
use authara_core::auth::LinkError;
use authara_core::domain::ReturnTo;
use authara_core::limits::{Family, LimitKey};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

/// `GET` and `POST /auth/provider-links/confirm`.
pub const CONFIRM: &str = "/auth/provider-links/confirm";

/// The routes.
pub fn routes() -> Routes {
    Routes::new()
        .get(CONFIRM, get_confirm)
        .post(CONFIRM, post_confirm)
}

/// The confirm page.
#[derive(Template)]
#[template(path = "provider_link_confirm.html")]
pub struct ConfirmPage<'a> {
    pub csrf_token: &'a str,
    pub link_id: &'a str,
    pub provider: &'a str,
    pub email: &'a str,
    pub has_password: bool,
    pub error: Option<&'a str>,
}

const GONE: &str = "This link has expired or was already used. Please sign in again.";

/// A provider's name as its button says it.
fn provider_label(state: &AppState, name: &str) -> String {
    state
        .provider(name)
        .map_or_else(|| name.to_owned(), |p| p.display_name.clone())
}

/// The page for `link_id`, with an error when shown back.
async fn confirm_page(
    state: &AppState,
    headers: &HeaderMap,
    link_id: &str,
    status: StatusCode,
    error: Option<&str>,
) -> Result<Response, PageError> {
    let link = match state
        .auth
        .pending_link(link_id, cookies::read(headers, cookies::PROVIDER_LINK))
        .await
    {
        Ok(link) => link,
        Err(ConfirmError::Failed(e)) => return Err(PageError::internal(e)),
        Err(_) => return Err(PageError::new(StatusCode::BAD_REQUEST, GONE)),
    };
    let mut out = HeaderMap::new();
    let csrf = ensure_csrf(state, headers, &mut out);
    let provider = provider_label(state, &link.provider);
    let page = ConfirmPage {
        csrf_token: &csrf,
        link_id,
        provider: &provider,
        email: &link.email,
        has_password: link.has_password,
        error,
    };
    Ok(render(&page, status, out))
}

/// `GET /auth/provider-links/confirm?link_id=`.
pub async fn get_confirm(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let link_id = form::query_param(query.as_deref(), "link_id")
        .ok()
        .flatten()
        .unwrap_or_default();
    confirm_page(&state, &headers, &link_id, StatusCode::OK, None).await
}

/// The form. No `Debug`: it holds a password.
#[derive(Default, serde::Deserialize)]
struct ConfirmForm {
    link_id: Option<String>,
    password: Option<String>,
}

/// `POST /auth/provider-links/confirm`: `303` to the flow's `return_to`, signed in and linked.
pub async fn post_confirm(
    State(state): State<AppState>,
    client: ClientInfo,
    Htmx(htmx): Htmx,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let f: ConfirmForm = form::parse(&body);
    let link_id = f.link_id.unwrap_or_default();
    let browser = cookies::read(&headers, cookies::PROVIDER_LINK);
    // The account's email keys the per-email limit, as a login's does.
    let link = match state.auth.pending_link(&link_id, browser).await {
        Ok(link) => link,
        Err(ConfirmError::Failed(e)) => return Err(PageError::internal(e)),
        Err(_) => return Err(PageError::new(StatusCode::BAD_REQUEST, GONE)),
    };
    let email_key = email_limit_key(&link.email);
    let per_ip = LimitKey::new(Family::LoginIp, &client.ip);
    let per_email = LimitKey::new(Family::LoginEmail, &email_key);
    if let Err(limited) = ask_limiter(&state, &[Ask::Hit(per_ip), Ask::Hit(per_email)]).await {
        return Ok(refuse_limited(render_error_page, limited));
    }
    let password = f.password.unwrap_or_default();
    let outcome = state
        .auth
        .confirm_pending_link(&link_id, browser, &password, client.origin())
        .await;
    if !matches!(outcome, Err(ConfirmError::WrongPassword)) {
        refund(&state, &[per_email]).await;
    }
    let provider = provider_label(&state, &link.provider);
    match outcome {
        Ok((_, issued, return_to)) => {
            let rt = return_to.as_deref().and_then(ReturnTo::parse);
            let mut res = signed_in_redirect(&state, htmx, &issued, rt);
            state.cookies.clear_provider_link(res.headers_mut());
            Ok(res)
        }
        Err(ConfirmError::WrongPassword) => {
            confirm_page(
                &state,
                &headers,
                &link_id,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("The password is not this account's."),
            )
            .await
        }
        Err(ConfirmError::Unknown) => Err(PageError::new(StatusCode::BAD_REQUEST, GONE)),
        Err(ConfirmError::Disabled) => Err(PageError::new(
            StatusCode::FORBIDDEN,
            "This account has been disabled.",
        )),
        Err(ConfirmError::Busy) => Ok(refuse_busy(render_error_page)),
        Err(ConfirmError::Link(LinkError::TakenElsewhere)) => Ok(render_error_page(
            StatusCode::CONFLICT,
            &format!("This {provider} account is already linked to another account."),
        )),
        Err(ConfirmError::Link(LinkError::ProviderLinked)) => Ok(render_error_page(
            StatusCode::CONFLICT,
            &format!("Your account is already linked to a {provider} account. Unlink it first."),
        )),
        Err(ConfirmError::Link(_)) => Err(PageError::new(StatusCode::BAD_REQUEST, GONE)),
        Err(ConfirmError::Failed(e)) => Err(PageError::internal(e)),
    }
}

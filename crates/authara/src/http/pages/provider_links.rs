//! Upstream's confirm page: `GET /auth/provider-links/confirm?link_id=` and
//! `POST /auth/provider-links/confirm` (`link_id`, `password`). Reached from a code-flow
//! callback whose identity's verified email is an existing account's: the account's password
//! links the identity and signs in (see [`authara_core::auth::link`]). Rate limited as a login
//! (per IP and per the account's email); the pending link is this browser's (HttpOnly
//! `authara_provider_link` cookie), single-use and lives 10 minutes. Instead of the password,
//! an account can be proven by signing in through a code-flow provider already linked to it
//! (`POST /auth/provider-links/confirm/{provider}`, then that provider's callback).

use super::code_flow;
use super::providers::link_conflict;
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
use authara_core::auth::flow::FlowPurpose;
use authara_core::auth::link::{ConfirmError, LivePendingLink};
use authara_core::auth::{ExternalIdentity, LinkError};
use authara_core::domain::ReturnTo;
use authara_core::limits::{Family, LimitKey};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

/// `GET` and `POST /auth/provider-links/confirm`.
pub const CONFIRM: &str = "/auth/provider-links/confirm";
/// `POST /auth/provider-links/confirm/{provider}`: prove the account with a provider linked to
/// it instead of its password.
pub const PROVE: &str = "/auth/provider-links/confirm/{provider}";

/// The routes.
pub fn routes() -> Routes {
    Routes::new()
        .get(CONFIRM, get_confirm)
        .post(CONFIRM, post_confirm)
        .post(PROVE, post_prove)
}

/// A provider that can prove the account: its name (the route's segment) and its button.
pub struct ProofButton {
    pub name: String,
    pub label: String,
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
    /// The enabled code-flow providers linked to the account.
    pub proofs: Vec<ProofButton>,
    pub error: Option<&'a str>,
}

const GONE: &str = "This link has expired or was already used. Please sign in again.";

/// A provider's name as its button says it.
fn provider_label(state: &AppState, name: &str) -> String {
    state
        .provider(name)
        .map_or_else(|| name.to_owned(), |p| p.display_name.clone())
}

/// After a page sign-in found `identity`'s verified email on an existing account: a pending
/// link returning to `return_to`, and where to send the browser (the confirm page) with the
/// headers that bind the link to it. `400` when the account went away meanwhile.
pub async fn pending(
    state: &AppState,
    identity: &ExternalIdentity,
    return_to: Option<&str>,
) -> Result<(String, HeaderMap), PageError> {
    let started = state
        .auth
        .begin_pending_link(identity, return_to)
        .await?
        .ok_or_else(|| PageError::new(StatusCode::BAD_REQUEST, GONE))?;
    let mut out = HeaderMap::new();
    state
        .cookies
        .set_provider_link(&mut out, started.browser.expose());
    Ok((
        format!("{CONFIRM}?link_id={}", started.link_id.expose()),
        out,
    ))
}

/// The pending link `link_id` of this browser (its `authara_provider_link` cookie), or the
/// page saying it is gone.
async fn live_link(
    state: &AppState,
    headers: &HeaderMap,
    link_id: &str,
) -> Result<LivePendingLink, PageError> {
    let browser = cookies::read(headers, cookies::PROVIDER_LINK);
    match state.auth.live_pending_link(link_id, browser).await {
        Ok(live) => Ok(live),
        Err(ConfirmError::Failed(e)) => Err(PageError::internal(e)),
        Err(_) => Err(PageError::new(StatusCode::BAD_REQUEST, GONE)),
    }
}

/// The page for `link_id`, with an error when shown back.
async fn confirm_page(
    state: &AppState,
    headers: &HeaderMap,
    link_id: &str,
    status: StatusCode,
    error: Option<&str>,
) -> Result<Response, PageError> {
    let live = live_link(state, headers, link_id).await?;
    let link = match state.auth.pending_link(&live).await {
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
        proofs: link
            .proofs
            .iter()
            .filter_map(|name| state.provider(name))
            .map(|p| ProofButton {
                name: p.name.clone(),
                label: format!("Prove it with {}", p.display_name),
            })
            .collect(),
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
    let live = live_link(&state, &headers, &link_id).await?;
    // The account's email keys the per-email limit, as a login's does.
    let email_key = email_limit_key(live.email());
    let per_ip = LimitKey::new(Family::LoginIp, &client.ip);
    let per_email = LimitKey::new(Family::LoginEmail, &email_key);
    if let Err(limited) = ask_limiter(&state, &[Ask::Hit(per_ip), Ask::Hit(per_email)]).await {
        return Ok(refuse_limited(render_error_page, limited));
    }
    let password = f.password.unwrap_or_default();
    let provider = provider_label(&state, live.provider());
    let outcome = state
        .auth
        .confirm_pending_link(live, &password, client.origin())
        .await;
    if !matches!(outcome, Err(ConfirmError::NotProven)) {
        refund(&state, &[per_email]).await;
    }
    match outcome {
        Ok((_, issued, return_to)) => {
            let rt = return_to.as_deref().and_then(ReturnTo::parse);
            let mut res = signed_in_redirect(&state, htmx, &issued, rt);
            state.cookies.clear_provider_link(res.headers_mut());
            Ok(res)
        }
        Err(ConfirmError::NotProven) => {
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
        Err(ConfirmError::Link(e)) => match link_conflict(&e, &provider) {
            Some(message) => Ok(render_error_page(StatusCode::CONFLICT, &message)),
            None => Err(PageError::new(StatusCode::BAD_REQUEST, GONE)),
        },
        Err(ConfirmError::Failed(e)) => Err(PageError::internal(e)),
    }
}

/// The form of the proof buttons. No `Debug` needed beyond the id.
#[derive(Default, serde::Deserialize)]
struct ProveForm {
    link_id: Option<String>,
}

/// `POST /auth/provider-links/confirm/{provider}` (`link_id`): `303` to the provider, whose
/// callback confirms the link when the identity it proves is the account's own.
pub async fn post_prove(
    State(state): State<AppState>,
    client: ClientInfo,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let p = state.provider(&provider).ok_or_else(PageError::not_found)?;
    let f: ProveForm = form::parse(&body);
    let link_id = f.link_id.unwrap_or_default();
    let per_ip = LimitKey::new(Family::LoginIp, &client.ip);
    if let Err(limited) = ask_limiter(&state, &[Ask::Hit(per_ip)]).await {
        return Ok(refuse_limited(render_error_page, limited));
    }
    let browser = cookies::read(&headers, cookies::PROVIDER_LINK);
    let link_hash = match state
        .auth
        .begin_link_proof(&link_id, browser, &p.name)
        .await
    {
        Ok(hash) => hash,
        Err(ConfirmError::Failed(e)) => return Err(PageError::internal(e)),
        Err(_) => return Err(PageError::new(StatusCode::BAD_REQUEST, GONE)),
    };
    let purpose = FlowPurpose::ProveLink { link_hash };
    code_flow::redirect_to_provider(&state, p, None, purpose, false, HeaderMap::new()).await
}

/// The callback of a proving flow (see [`post_prove`]): the identity `proof` the provider just
/// proved must be the pending link's account's; then linked and signed in, to its `return_to`.
pub async fn proven(
    state: &AppState,
    client: &ClientInfo,
    link_hash: &str,
    proof: &ExternalIdentity,
) -> Result<Response, PageError> {
    match state
        .auth
        .confirm_pending_link_by_identity(link_hash, proof, client.origin())
        .await
    {
        Ok((_, issued, return_to)) => {
            let rt = return_to.as_deref().and_then(ReturnTo::parse);
            let mut res = signed_in_redirect(state, false, &issued, rt);
            state.cookies.clear_provider_link(res.headers_mut());
            Ok(res)
        }
        Err(ConfirmError::NotProven) => Err(PageError::new(
            StatusCode::UNAUTHORIZED,
            "That sign-in is not the account's. Prove it with a method linked to it.",
        )),
        Err(ConfirmError::Disabled) => Err(PageError::new(
            StatusCode::FORBIDDEN,
            "This account has been disabled.",
        )),
        Err(ConfirmError::Link(LinkError::TakenElsewhere | LinkError::ProviderLinked)) => {
            Err(PageError::new(
                StatusCode::CONFLICT,
                "This sign-in method cannot be linked to the account any more.",
            ))
        }
        Err(ConfirmError::Failed(e)) => Err(PageError::internal(e)),
        Err(_) => Err(PageError::new(StatusCode::BAD_REQUEST, GONE)),
    }
}

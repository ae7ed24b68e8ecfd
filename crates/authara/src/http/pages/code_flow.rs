//! Sign-in through a code-flow provider (GitHub, any OpenID Connect issuer), from the pages:
//!
//! - `GET /auth/oauth/{provider}/start?return_to=` stores a new flow (see
//!   [`authara_core::auth::flow`]), sets its browser binding as the HttpOnly
//!   `authara_oauth_flow` cookie and sends the browser to the provider with the state, the nonce
//!   and the PKCE challenge.
//! - `GET /auth/oauth/{provider}/callback?code=&state=` takes the flow (once, this browser's,
//!   this provider's, not expired), exchanges the code, and signs the identity in (or links it,
//!   for a signed-in user who started from their account page), then goes to `return_to`.
//!
//! Both are plain links and redirects: no JavaScript. A refused callback creates nothing; the
//! provider being down is a `503` page that says so; no answer is another `5xx`.

use super::{ask_limiter, refuse_limited, render_error_page, signed_in_redirect, Ask};
use crate::http::cookies;
use crate::http::error::PageError;
use crate::http::extract::auth::signed_in;
use crate::http::extract::{ClientInfo, QueryReturnTo};
use crate::http::form;
use crate::http::Routes;
use crate::state::{AppState, CodeFlowSignIn};
use authara_core::auth::flow::{FlowPurpose, FlowRefused};
use authara_core::auth::{ExternalIdentity, ExternalSignInError, LinkError};
use authara_core::domain::ReturnTo;
use authara_core::jwt::Audience;
use authara_core::limits::{Family, LimitKey};
use authara_oidc::{code_challenge, Authorize, FlowError};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;

/// `GET /auth/oauth/{provider}/start`.
pub const START: &str = "/auth/oauth/{provider}/start";
/// `GET /auth/oauth/{provider}/callback`.
pub const CALLBACK: &str = "/auth/oauth/{provider}/callback";

/// The longest callback query read (a code and a state are far shorter).
const MAX_QUERY: usize = 8 * 1024;
/// The longest authorization code passed on to the provider.
const MAX_CODE: usize = 2048;

/// The routes.
pub fn routes() -> Routes {
    Routes::new()
        .get(START, get_start)
        .get(CALLBACK, get_callback)
}

/// `provider`'s start link (what a button points at).
pub fn start_path(provider: &str) -> String {
    START.replace("{provider}", provider)
}

/// `provider`'s callback path (what is registered at the provider, after `PUBLIC_URL`).
pub fn callback_path(provider: &str) -> String {
    CALLBACK.replace("{provider}", provider)
}

/// A "Continue with …" link of the login and signup pages.
pub struct ProviderButton {
    pub href: String,
    pub label: String,
}

/// The code-flow providers' buttons for a page whose `return_to` is `rt`.
pub fn buttons(state: &AppState, rt: Option<&str>) -> Vec<ProviderButton> {
    state
        .providers
        .iter()
        .map(|p| ProviderButton {
            href: crate::http::respond::with_return_to(&start_path(&p.name), rt),
            label: format!("Continue with {}", p.display_name),
        })
        .collect()
}

fn unavailable(p: &CodeFlowSignIn) -> Response {
    let mut res = render_error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!(
            "{} sign-in is unavailable at the moment. Please try again shortly, or sign in \
             another way.",
            p.display_name
        ),
    );
    crate::http::error::set_retry_after(&mut res, std::time::Duration::from_secs(30));
    res
}

/// `GET /auth/oauth/{provider}/start?return_to=`: `303` to the provider.
pub async fn get_start(
    State(state): State<AppState>,
    client: ClientInfo,
    Path(provider): Path<String>,
    QueryReturnTo(rt): QueryReturnTo,
) -> Result<Response, PageError> {
    let p = state.provider(&provider).ok_or_else(PageError::not_found)?;
    let limit = [Ask::Hit(LimitKey::new(Family::LoginIp, &client.ip))];
    if let Err(limited) = ask_limiter(&state, &limit).await {
        return Ok(refuse_limited(render_error_page, limited));
    }
    let rt = rt.as_ref().map(ReturnTo::as_str);
    redirect_to_provider(&state, p, rt, FlowPurpose::SignIn, false, HeaderMap::new()).await
}

/// Starts a flow with `p` for `purpose` and answers with the redirect to the provider (`303`;
/// with htmx `200` + `HX-Redirect`), carrying `out` and the flow's browser binding; or, when
/// the provider's configuration cannot be had, the page saying it is down (no flow stored).
pub async fn redirect_to_provider(
    state: &AppState,
    p: &CodeFlowSignIn,
    return_to: Option<&str>,
    purpose: FlowPurpose,
    htmx: bool,
    mut out: HeaderMap,
) -> Result<Response, PageError> {
    let endpoint = match p.flow.authorization_endpoint().await {
        Ok(endpoint) => endpoint,
        Err(e) => {
            tracing::warn!(provider = %p.name, error = %e, "sign-in start: provider unavailable");
            let mut res = unavailable(p);
            res.headers_mut().extend(out);
            return Ok(res);
        }
    };
    let started = state
        .auth
        .begin_sign_in_flow(&p.name, return_to, purpose)
        .await?;
    let url = endpoint.url(Authorize {
        state: started.state.expose(),
        nonce: started.nonce.expose(),
        code_challenge: &code_challenge(started.code_verifier.expose()),
    });
    // Nothing of this answer may be cached: the flow is one browser's, once.
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    state
        .cookies
        .set_oauth_flow(&mut out, started.browser.expose());
    Ok(crate::http::respond::redirect(htmx, url.as_str(), out))
}

/// The callback's parameters (RFC 6749 §4.1.2). No `Debug`: it holds the code.
#[derive(Default, serde::Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

const START_AGAIN: &str = "This sign-in has expired or was already used. Please start again.";

/// `GET /auth/oauth/{provider}/callback?code=&state=`: `303` to `return_to`, signed in.
pub async fn get_callback(
    State(state): State<AppState>,
    client: ClientInfo,
    Path(provider): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let Some(p) = state.provider(&provider) else {
        return Err(PageError::not_found());
    };
    let mut res = callback(&state, p, &client, query.as_deref(), &headers).await?;
    // Whatever happened, the flow is over: its binding goes.
    state.cookies.clear_oauth_flow(res.headers_mut());
    Ok(res)
}

async fn callback(
    state: &AppState,
    p: &CodeFlowSignIn,
    client: &ClientInfo,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response, PageError> {
    let limit = [Ask::Hit(LimitKey::new(Family::LoginIp, &client.ip))];
    if let Err(limited) = ask_limiter(state, &limit).await {
        return Ok(refuse_limited(render_error_page, limited));
    }
    let q: CallbackQuery = match query {
        Some(q) if q.len() <= MAX_QUERY => form::parse(q.as_bytes()),
        _ => CallbackQuery::default(),
    };
    let flow = match state
        .auth
        .take_sign_in_flow(
            &p.name,
            q.state.as_deref().unwrap_or_default(),
            cookies::read(headers, cookies::OAUTH_FLOW),
        )
        .await
    {
        Ok(flow) => flow,
        Err(FlowRefused::Unknown) => {
            tracing::info!(provider = %p.name, "sign-in callback refused: unknown, used or foreign state");
            return Err(PageError::new(StatusCode::BAD_REQUEST, START_AGAIN));
        }
        Err(FlowRefused::Failed(e)) => return Err(PageError::internal(e)),
    };
    if q.error.is_some() {
        // The user said no at the provider, or the provider refused the request.
        return Ok(render_error_page(
            StatusCode::BAD_REQUEST,
            &format!(
                "Sign-in with {} was cancelled or refused. You can try again, or sign in another way.",
                p.display_name
            ),
        ));
    }
    let code = q
        .code
        .filter(|c| !c.is_empty() && c.len() <= MAX_CODE)
        .ok_or_else(|| PageError::new(StatusCode::BAD_REQUEST, START_AGAIN))?;
    let user = match p.flow.finish(&code, &flow.code_verifier, &flow.nonce).await {
        Ok(user) => user,
        Err(FlowError::Unavailable(why)) => {
            tracing::warn!(provider = %p.name, error = %why, "sign-in callback: provider unavailable");
            return Ok(unavailable(p));
        }
        Err(e) => {
            tracing::info!(provider = %p.name, reason = %e, "sign-in callback refused");
            return Ok(render_error_page(
                StatusCode::UNAUTHORIZED,
                &format!(
                    "Sign-in with {} could not be completed. Please try again.",
                    p.display_name
                ),
            ));
        }
    };
    let identity = ExternalIdentity {
        provider: p.name.clone(),
        verified_email: user.verified_email().map(str::to_owned),
        subject: user.subject,
    };
    match &flow.purpose {
        FlowPurpose::SignIn => {}
        FlowPurpose::Link { user_id } => {
            return link(state, p, headers, *user_id, &identity).await;
        }
        FlowPurpose::ProveLink { link_hash } => {
            return super::provider_links::proven(state, client, link_hash, &identity).await;
        }
    }
    let return_to = flow.return_to.as_deref().and_then(ReturnTo::parse);
    match state
        .auth
        .sign_in_with_identity(&identity, Audience::App, client.origin())
        .await
    {
        Ok((_, issued)) => Ok(signed_in_redirect(state, false, &issued, return_to)),
        Err(ExternalSignInError::LinkRequired) => {
            // Nothing is linked yet: the confirm page asks the user to prove the account.
            let (to, out) =
                super::provider_links::pending(state, &identity, flow.return_to.as_deref()).await?;
            Ok(crate::http::respond::redirect(false, &to, out))
        }
        Err(ExternalSignInError::Disabled) | Err(ExternalSignInError::NotAdmin) => Err(
            PageError::new(StatusCode::FORBIDDEN, "This account is disabled."),
        ),
        Err(ExternalSignInError::Invalid) => Ok(render_error_page(
            StatusCode::UNAUTHORIZED,
            &format!(
                "{} did not share a verified email address, which a new account needs. Sign up \
                 with your email instead, then link {} from your account page.",
                p.display_name, p.display_name
            ),
        )),
        Err(ExternalSignInError::Failed(e)) => Err(PageError::internal(e)),
    }
}

/// The callback of a flow a signed-in user started from their account page: links the identity
/// to that same user, who must still be the one signed in in this browser.
async fn link(
    state: &AppState,
    p: &CodeFlowSignIn,
    headers: &HeaderMap,
    user_id: uuid::Uuid,
    identity: &ExternalIdentity,
) -> Result<Response, PageError> {
    let current = signed_in(state, headers, &mut HeaderMap::new()).await?;
    let Some(current) = current.filter(|c| c.auth.user.id == user_id) else {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "The account that started linking is no longer signed in here. Sign in, then link \
             again from your account page.",
        ));
    };
    match state.auth.link_identity(user_id, identity).await {
        Ok(_) => Ok(crate::http::respond::redirect(
            false,
            "/auth/account?notice=method-linked",
            current.cookies,
        )),
        Err(LinkError::Failed(e)) => Err(PageError::internal(e)),
        Err(e) => match super::providers::link_conflict(&e, &p.display_name) {
            Some(message) => {
                let mut res = render_error_page(StatusCode::CONFLICT, &message);
                res.headers_mut().extend(current.cookies);
                Ok(res)
            }
            None => Err(PageError::new(StatusCode::BAD_REQUEST, START_AGAIN)),
        },
    }
}

//! Browser session actions: logout, refresh, revoking one session or all the others.

use super::set_session_cookies;
use crate::http::cookies;
use crate::http::error::{ApiError, PageError};
use crate::http::extract::{body_return_to, presented_access, Htmx, RequestCtx, SignedIn};
use crate::http::form;
use crate::http::respond::{login_href, redirect};
use crate::http::Routes;
use crate::state::AppState;
use authara_core::domain::ReturnTo;
use authara_core::jwt::Audience;
use authara_core::session::RefreshError;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

const ACCOUNT: &str = "/auth/account";

/// The browser session routes.
pub fn routes() -> Routes {
    Routes::new()
        .post("/auth/sessions/logout", post_logout)
        .post("/auth/sessions/refresh", post_refresh)
        .post("/auth/sessions/revoke-other", post_revoke_other)
        .post("/auth/sessions/{id}/revoke", post_revoke)
}

/// `POST /auth/sessions/logout`: revoke, clear cookies, back to `return_to`.
pub async fn post_logout(
    State(state): State<AppState>,
    Htmx(htmx): Htmx,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let rt = body_return_to(&body, query.as_deref());
    let (out, result) = end_session(&state, &headers).await;
    if let Err(e) = result {
        let mut res = PageError::internal(e).into_response();
        res.headers_mut().extend(out);
        return Ok(res);
    }
    let to = rt.unwrap_or_else(ReturnTo::root);
    Ok(redirect(htmx, to.as_str(), out))
}

/// Revokes the caller's session (by refresh token, else by access token) and returns the
/// headers that clear both session cookies, whatever the outcome.
pub async fn end_session(
    state: &AppState,
    headers: &HeaderMap,
) -> (HeaderMap, Result<(), authara_core::store::StoreError>) {
    let result = state
        .sessions
        .logout(
            cookies::read(headers, cookies::REFRESH),
            // A mobile client signs out with its bearer token.
            presented_access(headers).ok().flatten(),
        )
        .await;
    let mut out = HeaderMap::new();
    state.cookies.clear_session(&mut out);
    (out, result)
}

/// `POST /auth/sessions/refresh`: the browser variant of refresh.
pub async fn post_refresh(
    State(state): State<AppState>,
    Htmx(htmx): Htmx,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let rt = body_return_to(&body, query.as_deref());
    // Absent or unknown: `app` (the JSON variant refuses an unknown one instead).
    let audience = form::query_param(query.as_deref(), "audience")
        .ok()
        .flatten()
        .as_deref()
        .and_then(Audience::parse)
        .unwrap_or(Audience::App);
    let mut out = HeaderMap::new();
    let result = match cookies::read(&headers, cookies::REFRESH) {
        Some(token) => state.sessions.refresh(token, audience).await,
        None => Err(RefreshError::Invalid),
    };
    match result {
        Ok(issued) => {
            set_session_cookies(state.cookies, &issued, &mut out);
            let to = rt.unwrap_or_else(ReturnTo::root);
            Ok(redirect(htmx, to.as_str(), out))
        }
        Err(e @ (RefreshError::Invalid | RefreshError::NotAdmin)) => {
            if matches!(e, RefreshError::Invalid) {
                state.cookies.clear_session(&mut out);
            }
            // A script's fetch follows a redirect to the login page and sees its `200`, which
            // `@authara/browser` read as a successful refresh: such a request is told `401`
            // (with the cleared cookies) instead. Navigations and htmx keep the redirect.
            if !htmx && !is_navigation(&headers) {
                return Ok((out, ApiError::Unauthorized).into_response());
            }
            let rt = rt.as_ref().map(ReturnTo::as_str);
            Ok(redirect(htmx, &login_href(rt), out))
        }
        Err(e @ (RefreshError::Store(_) | RefreshError::Signing)) => Err(PageError::internal(e)),
    }
}

/// Whether a request is a top-level navigation (a form post, a link) rather than a script's
/// `fetch`: not when the browser says otherwise (`Sec-Fetch-Mode` other than `navigate`), nor
/// when the client asks for JSON (`Accept: application/json`). Clients that send neither header
/// are navigations, as before.
fn is_navigation(headers: &HeaderMap) -> bool {
    let fetch_mode = headers
        .get("sec-fetch-mode")
        .map(|v| v.as_bytes().eq_ignore_ascii_case(b"navigate"));
    let wants_json = headers
        .get_all(axum::http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(crate::http::api::json::is_json_media);
    fetch_mode != Some(false) && !wants_json
}

/// `POST /auth/sessions/{id}/revoke`: revoke one of the caller's own sessions.
pub async fn post_revoke(
    State(state): State<AppState>,
    Htmx(htmx): Htmx,
    Path(id): Path<String>,
    user: SignedIn,
    RequestCtx(context): RequestCtx,
) -> Result<Response, PageError> {
    let Ok(id) = Uuid::parse_str(&id) else {
        return Err(PageError::not_found());
    };
    if !state.sessions.revoke(&user.auth.user, id, &context).await? {
        return Err(PageError::not_found());
    }
    let mut out = user.cookies;
    if id == user.auth.claims.sid {
        state.cookies.clear_session(&mut out);
        return Ok(redirect(htmx, &login_href(Some(ACCOUNT)), out));
    }
    Ok(redirect(htmx, ACCOUNT, out))
}

/// `POST /auth/sessions/revoke-other`: sign out everywhere else. Every other live session of
/// the caller is revoked; theirs survives. Back to the account page.
pub async fn post_revoke_other(
    State(state): State<AppState>,
    Htmx(htmx): Htmx,
    user: SignedIn,
    RequestCtx(context): RequestCtx,
) -> Result<Response, PageError> {
    let revoked = state
        .sessions
        .revoke_others(&user.auth.user, user.auth.claims.sid, &context)
        .await?;
    tracing::info!(user_id = %user.auth.user.id, revoked, "other sessions revoked");
    Ok(redirect(htmx, ACCOUNT, user.cookies))
}

//! `GET /auth/account` and the account's form actions.

use super::{ensure_csrf, render, set_session_cookies, AccountPage, SessionRow};
use crate::http::cookies;
use crate::http::error::PageError;
use crate::http::extract::Htmx;
use crate::http::form;
use crate::http::respond::{login_href, redirect};
use crate::state::AppState;
use authara_core::auth::UsernameChangeError;
use authara_core::jwt::Audience;
use authara_core::session::{AuthError, Authenticated, RefreshError};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

const ACCOUNT: &str = "/auth/account";

/// How session start times are shown.
const SINCE: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");

/// A signed-in page visitor, and any cookies that signing them in on the fly produced.
pub struct PageUser {
    pub auth: Authenticated,
    pub cookies: HeaderMap,
}

/// Not signed in: the response to send instead (a redirect to login).
pub struct SignInFirst(Response);

impl IntoResponse for SignInFirst {
    fn into_response(self) -> Response {
        self.0
    }
}

/// Authenticates a page request by its access cookie; with an expired or missing access token
/// but a valid refresh cookie, refreshes on the fly. Otherwise a redirect to the login page.
pub async fn page_user(
    state: &AppState,
    headers: &HeaderMap,
    htmx: bool,
    return_to: &str,
) -> Result<PageUser, Result<SignInFirst, PageError>> {
    if let Some(access) = cookies::read(headers, cookies::ACCESS) {
        match state.sessions.authenticate(access).await {
            Ok(auth) => {
                return Ok(PageUser {
                    auth,
                    cookies: HeaderMap::new(),
                })
            }
            Err(AuthError::Store(e)) => return Err(Err(e.into())),
            Err(AuthError::Unauthenticated) => {}
        }
    }
    let mut out = HeaderMap::new();
    if let Some(refresh) = cookies::read(headers, cookies::REFRESH) {
        match state.sessions.refresh(refresh, Audience::App).await {
            Ok(issued) => match state.sessions.authenticate(&issued.access.token).await {
                Ok(auth) => {
                    set_session_cookies(state.cookies, &issued, &mut out);
                    return Ok(PageUser { auth, cookies: out });
                }
                Err(AuthError::Store(e)) => return Err(Err(e.into())),
                Err(AuthError::Unauthenticated) => {}
            },
            Err(RefreshError::Store(e)) => return Err(Err(e.into())),
            Err(e @ RefreshError::Signing) => return Err(Err(PageError::internal(e))),
            Err(RefreshError::Invalid | RefreshError::NotAdmin) => {}
        }
        state.cookies.clear_session(&mut out);
    }
    Err(Ok(SignInFirst(redirect(
        htmx,
        &login_href(Some(return_to)),
        out,
    ))))
}

macro_rules! signed_in {
    ($state:expr, $headers:expr, $htmx:expr) => {
        match page_user(&$state, &$headers, $htmx, ACCOUNT).await {
            Ok(u) => u,
            Err(Ok(redirect)) => return Ok(redirect.into_response()),
            Err(Err(e)) => return Err(e),
        }
    };
}
pub(crate) use signed_in;

/// `GET /auth/account`.
pub async fn get_account(
    State(state): State<AppState>,
    Htmx(htmx): Htmx,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let user = signed_in!(state, headers, htmx);
    account_page(&state, &headers, user, StatusCode::OK, None).await
}

async fn account_page(
    state: &AppState,
    headers: &HeaderMap,
    user: PageUser,
    status: StatusCode,
    error: Option<&str>,
) -> Result<Response, PageError> {
    let PageUser {
        auth,
        cookies: mut out,
    } = user;
    let csrf = ensure_csrf(state, headers, &mut out);
    let sessions = state
        .sessions
        .list(auth.user.id)
        .await?
        .into_iter()
        .map(|s| SessionRow {
            id: s.id.to_string(),
            user_agent: if s.user_agent.is_empty() {
                "Unknown browser".to_owned()
            } else {
                s.user_agent
            },
            client_ip: s.client_ip,
            created_at: s.created_at.format(SINCE).unwrap_or_default(),
            current: s.id == auth.claims.sid,
        })
        .collect();
    let page = AccountPage {
        csrf_token: &csrf,
        email: &auth.user.email,
        username: &auth.user.username,
        sessions,
        error,
    };
    Ok(render(&page, status, out))
}

#[derive(Debug, Default, serde::Deserialize)]
struct UsernameForm {
    username: Option<String>,
}

/// `POST /auth/user/username`.
pub async fn post_username(
    State(state): State<AppState>,
    Htmx(htmx): Htmx,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let user = signed_in!(state, headers, htmx);
    let f: UsernameForm = form::parse(&body);
    let raw = f.username.unwrap_or_default();
    match state.auth.change_username(user.auth.user.id, &raw).await {
        Ok(_) => Ok(redirect(htmx, ACCOUNT, user.cookies)),
        Err(UsernameChangeError::Invalid(e)) => {
            let msg = e.to_string();
            account_page(
                &state,
                &headers,
                user,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(&msg),
            )
            .await
        }
        Err(UsernameChangeError::Taken) => {
            let msg = "That username is taken.";
            account_page(
                &state,
                &headers,
                user,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(msg),
            )
            .await
        }
        Err(UsernameChangeError::Failed(e)) => Err(PageError::internal(e)),
    }
}

/// `POST /auth/user/delete`.
pub async fn post_delete(
    State(state): State<AppState>,
    Htmx(htmx): Htmx,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let user = signed_in!(state, headers, htmx);
    state.auth.delete_account(user.auth.user.id).await?;
    tracing::info!(user_id = %user.auth.user.id, "account deleted");
    let mut out = HeaderMap::new();
    state.cookies.clear_session(&mut out);
    Ok(redirect(htmx, "/auth/successful-deletion", out))
}

//! A forgotten password: `GET /auth/password-reset` (the form) and `POST /auth/password-reset`
//! (start the emailed-code challenge), and [`start_reset`], shared with the JSON route. Always
//! available, whether or not `AUTHARA_CHALLENGE_ENABLED` is set (as upstream).
//!
//! An unknown email gets exactly what a known one gets: the same checks, the same hashing, the
//! same redirect to the code page, an opaque challenge; only no email is sent.

use super::challenge::verify_href;
use super::{echoed_email, ensure_csrf, hit_ip_and_email, refuse_busy, render};
use crate::http::error::PageError;
use crate::http::extract::{return_to, ClientInfo, Htmx, QueryReturnTo};
use crate::http::form;
use crate::http::respond::{login_href, redirect};
use crate::http::Routes;
use crate::state::AppState;
use askama::Template;
use authara_core::challenge::store::Purpose;
use authara_core::challenge::{StartError, Started};
use authara_core::domain::ReturnTo;
use authara_core::limits::{Family, Limited};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

/// The form's path, for `GET` and `POST`.
pub const PASSWORD_RESET: &str = "/auth/password-reset";

/// The password-reset routes.
pub fn routes() -> Routes {
    Routes::new()
        .get(PASSWORD_RESET, get_password_reset)
        .post(PASSWORD_RESET, post_password_reset)
}

/// `/auth/password-reset`.
#[derive(Template)]
#[template(path = "password_reset.html")]
pub struct PasswordResetPage<'a> {
    pub csrf_token: &'a str,
    pub return_to: Option<&'a str>,
    pub email: &'a str,
    pub error: Option<&'a str>,
    pub login_href: String,
}

/// The fields of the form. No `Debug`: it holds passwords.
#[derive(Default, serde::Deserialize)]
struct ResetForm {
    email: Option<String>,
    new_password: Option<String>,
    confirm_password: Option<String>,
    return_to: Option<String>,
}

fn reset_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    return_to: Option<&ReturnTo>,
    email: &str,
    error: Option<&str>,
) -> Response {
    let mut out = HeaderMap::new();
    let csrf = ensure_csrf(state, headers, &mut out);
    let rt = return_to.map(ReturnTo::as_str);
    let page = PasswordResetPage {
        csrf_token: &csrf,
        return_to: rt,
        email,
        error,
        login_href: login_href(rt),
    };
    render(&page, status, out)
}

/// `GET /auth/password-reset`.
pub async fn get_password_reset(
    State(state): State<AppState>,
    QueryReturnTo(rt): QueryReturnTo,
    headers: HeaderMap,
) -> Response {
    reset_page(&state, &headers, StatusCode::OK, rt.as_ref(), "", None)
}

/// Why [`start_reset`] started nothing.
#[derive(Debug)]
pub enum ResetRefusal {
    /// Over a rate limit: nothing was checked.
    Limited(Limited),
    /// What the challenge service said.
    Start(StartError),
}

/// A password reset's start, the one implementation behind `POST /auth/password-reset` and
/// `POST /auth/api/v1/password-reset/challenges`: the limits per IP and per email (every request
/// counted, whether or not the email has an account), then the challenge.
pub async fn start_reset(
    state: &AppState,
    client: &ClientInfo,
    email: &str,
    new_password: &str,
) -> Result<Started, ResetRefusal> {
    hit_ip_and_email(
        state,
        Family::PasswordResetIp,
        Family::PasswordResetEmail,
        &client.ip,
        email,
    )
    .await
    .map_err(ResetRefusal::Limited)?;
    state
        .challenges
        .start_password_reset(email, new_password)
        .await
        .map_err(ResetRefusal::Start)
}

/// `POST /auth/password-reset`: `email`, `new_password`, `confirm_password`. Success (for any
/// well-formed email): `303` to the code page.
pub async fn post_password_reset(
    State(state): State<AppState>,
    client: ClientInfo,
    Htmx(htmx): Htmx,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let f: ResetForm = form::parse(&body);
    let rt = return_to(f.return_to.as_deref(), query.as_deref());
    let email = f.email.as_deref().unwrap_or("");
    let new = f.new_password.as_deref().unwrap_or("");
    let show = |status: StatusCode, error: &str| {
        reset_page(
            &state,
            &headers,
            status,
            rt.as_ref(),
            echoed_email(email),
            Some(error),
        )
    };
    if f.confirm_password.as_deref().is_some_and(|c| c != new) {
        return Ok(show(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The new passwords do not match.",
        ));
    }
    match start_reset(&state, &client, email, new).await {
        Ok(started) => {
            let to = verify_href(
                Purpose::PasswordReset,
                started.challenge_id,
                None,
                rt.as_ref(),
            );
            Ok(redirect(htmx, &to, HeaderMap::new()))
        }
        Err(ResetRefusal::Limited(limited)) => Ok(super::refuse_limited(show, limited)),
        Err(ResetRefusal::Start(e)) => start_refused(e, show),
    }
}

/// The page for a challenge that could not start: `422` naming the problem, `503` for busy
/// hashing.
pub fn start_refused(
    e: StartError,
    show: impl Fn(StatusCode, &str) -> Response,
) -> Result<Response, PageError> {
    match e {
        StartError::Email(e) => Ok(show(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string())),
        StartError::Password(e) => Ok(show(StatusCode::UNPROCESSABLE_ENTITY, e.message())),
        StartError::SameEmail => Ok(show(
            StatusCode::UNPROCESSABLE_ENTITY,
            "That is already your email address.",
        )),
        StartError::Busy => Ok(refuse_busy(show)),
        StartError::Failed(e) => Err(PageError::internal(e)),
    }
}

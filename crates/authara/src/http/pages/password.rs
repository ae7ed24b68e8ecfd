//! The account's password: `GET /auth/providers/password/change` (the form) and
//! `POST /auth/providers/password/change` (set or replace it). Passwords are used exactly as
//! typed, never trimmed; a change signs out every other session of the account (upstream's
//! HTML form trims and leaves them signed in: we beat it).

use super::{
    ask_limiter, email_limit_key, ensure_csrf, refund, refuse_busy, refuse_limited, render, Ask,
};
use crate::http::error::PageError;
use crate::http::extract::{Htmx, RequestCtx, SignedIn};
use crate::http::form;
use crate::http::respond::redirect;
use crate::http::Routes;
use crate::state::AppState;
use askama::Template;
use authara_core::audit::RequestContext;
use authara_core::auth::PasswordChangeError;
use authara_core::limits::{Family, LimitKey};
use authara_core::session::Authenticated;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

/// The form's path, for `GET` and `POST`.
pub const CHANGE: &str = "/auth/providers/password/change";
/// Upstream's "add a password" page, for an account without one.
pub const ADD: &str = "/auth/providers/password/add";
/// Upstream's form action of that page: `password`, `confirm_password`.
pub const LINK: &str = "/auth/providers/password/link";
const ACCOUNT: &str = "/auth/account";

/// The password routes.
pub fn routes() -> Routes {
    Routes::new()
        .get(CHANGE, get_change)
        .post(CHANGE, post_change)
        .get(ADD, get_add)
        .post(LINK, post_link)
}

/// `GET /auth/providers/password/add`: the form without a current password; an account that
/// has one is sent to the change form.
pub async fn get_add(
    State(state): State<AppState>,
    user: SignedIn,
    Htmx(htmx): Htmx,
    headers: HeaderMap,
) -> Response {
    if user.auth.user.password_hash.is_some() {
        return redirect(htmx, CHANGE, user.cookies);
    }
    change_page(&state, &headers, user.cookies, false, StatusCode::OK, None)
}

/// The add form's fields. No `Debug`: it holds passwords.
#[derive(Default, serde::Deserialize)]
struct LinkForm {
    password: Option<String>,
    confirm_password: Option<String>,
}

/// `POST /auth/providers/password/link`: `password`, `confirm_password` → the account gets a
/// password (every other session signed out, as a change does). An account that has one
/// already: `422`.
pub async fn post_link(
    State(state): State<AppState>,
    user: SignedIn,
    Htmx(htmx): Htmx,
    RequestCtx(context): RequestCtx,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let f: LinkForm = form::parse(&body);
    if user.auth.user.password_hash.is_some() {
        return Ok(change_page(
            &state,
            &headers,
            user.cookies,
            false,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(ALREADY_SET),
        ));
    }
    let form = PasswordForm {
        current: None,
        new: f.password.as_deref().unwrap_or(""),
        confirm: f.confirm_password.as_deref().unwrap_or(""),
    };
    set_password(&state, user, htmx, &context, &headers, form).await
}

/// The refusal of a second password.
const ALREADY_SET: &str = "Your account already has a password. Change it instead.";

/// What either form submitted.
struct PasswordForm<'a> {
    current: Option<&'a str>,
    new: &'a str,
    confirm: &'a str,
}

/// Sets or changes `user`'s password from a submitted form, the one implementation behind
/// `POST …/password/change` and `POST …/password/link`: back to the account page, or the form
/// again naming the problem (`422`), `429` for a rate-limited guess, `503` for busy hashing.
async fn set_password(
    state: &AppState,
    user: SignedIn,
    htmx: bool,
    context: &RequestContext,
    headers: &HeaderMap,
    form: PasswordForm<'_>,
) -> Result<Response, PageError> {
    let SignedIn { auth, cookies } = user;
    let has_password = auth.user.password_hash.is_some();
    let show = |status: StatusCode, error: &str| {
        change_page(
            state,
            headers,
            cookies.clone(),
            has_password,
            status,
            Some(error),
        )
    };
    if form.confirm != form.new {
        return Ok(show(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The new passwords do not match.",
        ));
    }
    let outcome = match change_password(state, &auth, form.current, form.new, context).await {
        Err(ChangeRefusal::Limited(limited)) => return Ok(refuse_limited(show, limited)),
        Err(ChangeRefusal::Change(e)) => Err(e),
        Ok(revoked) => Ok(revoked),
    };
    match outcome {
        Ok(_) => Ok(redirect(htmx, ACCOUNT, cookies)),
        Err(PasswordChangeError::Invalid(e)) => {
            Ok(show(StatusCode::UNPROCESSABLE_ENTITY, e.message()))
        }
        // A form without the field, for an account that got a password meanwhile (another tab).
        Err(PasswordChangeError::CurrentRequired) if !has_password => {
            Ok(show(StatusCode::UNPROCESSABLE_ENTITY, ALREADY_SET))
        }
        Err(PasswordChangeError::CurrentRequired) => Ok(show(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Current password is required.",
        )),
        Err(PasswordChangeError::WrongCurrent) => Ok(show(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Current password is incorrect.",
        )),
        Err(PasswordChangeError::Busy) => Ok(refuse_busy(show)),
        Err(PasswordChangeError::Failed(e)) => Err(PageError::internal(e)),
    }
}

/// `/auth/providers/password/change`: with a current-password field only when the account has
/// a password.
#[derive(Template)]
#[template(path = "password_change.html")]
pub struct PasswordChangePage<'a> {
    pub csrf_token: &'a str,
    /// Where the form posts: the change route, or upstream's `…/password/link` for the add page.
    pub action: &'static str,
    /// The new password's field: `new_password`, or the link route's `password`.
    pub new_field: &'static str,
    pub has_password: bool,
    pub error: Option<&'a str>,
}

/// The fields of the form. No `Debug`: it holds passwords.
#[derive(Default, serde::Deserialize)]
struct ChangeForm {
    current_password: Option<String>,
    new_password: Option<String>,
    confirm_password: Option<String>,
}

/// The page, empty or shown back with an error. `cookies` are those the sign-in check set (an
/// on-the-fly refresh), which every answer must carry.
fn change_page(
    state: &AppState,
    headers: &HeaderMap,
    mut cookies: HeaderMap,
    has_password: bool,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let csrf = ensure_csrf(state, headers, &mut cookies);
    let (action, new_field) = if has_password {
        (CHANGE, "new_password")
    } else {
        (LINK, "password")
    };
    let page = PasswordChangePage {
        csrf_token: &csrf,
        action,
        new_field,
        has_password,
        error,
    };
    render(&page, status, cookies)
}

/// `GET /auth/providers/password/change`.
pub async fn get_change(
    State(state): State<AppState>,
    user: SignedIn,
    headers: HeaderMap,
) -> Response {
    let has_password = user.auth.user.password_hash.is_some();
    change_page(
        &state,
        &headers,
        user.cookies,
        has_password,
        StatusCode::OK,
        None,
    )
}

/// `POST /auth/providers/password/change`: `current_password` (when the account has one),
/// `new_password`, `confirm_password`. Success: every other session revoked, back to the
/// account page. Every refusal is `422` naming the problem, but a rate-limited guess (`429`)
/// and busy hashing (`503`).
pub async fn post_change(
    State(state): State<AppState>,
    user: SignedIn,
    Htmx(htmx): Htmx,
    RequestCtx(context): RequestCtx,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let f: ChangeForm = form::parse(&body);
    let form = PasswordForm {
        current: f.current_password.as_deref().filter(|c| !c.is_empty()),
        new: f.new_password.as_deref().unwrap_or(""),
        confirm: f.confirm_password.as_deref().unwrap_or(""),
    };
    set_password(&state, user, htmx, &context, &headers, form).await
}

/// Why [`change_password`] changed nothing.
#[derive(Debug)]
pub enum ChangeRefusal {
    /// Over the login limit of the account's email: nothing was checked.
    Limited(authara_core::limits::Limited),
    /// What the account service said.
    Change(PasswordChangeError),
}

/// A password change, the one implementation behind `POST /auth/providers/password/change` and
/// `PUT /auth/api/v1/users/password`; returns how many other sessions it revoked (the caller's
/// own survives). A current password is a guess at the account's password: it is counted like a
/// login attempt for the account's email before it is verified, and given back unless it was
/// wrong, so neither route guesses faster than the login form does.
pub async fn change_password(
    state: &AppState,
    auth: &Authenticated,
    current: Option<&str>,
    new: &str,
    context: &RequestContext,
) -> Result<u64, ChangeRefusal> {
    let email_key = email_limit_key(&auth.user.email);
    let per_email = LimitKey::new(Family::LoginEmail, &email_key);
    if current.is_some() {
        ask_limiter(state, &[Ask::Hit(per_email)])
            .await
            .map_err(ChangeRefusal::Limited)?;
    }
    let outcome = state
        .auth
        .change_password(&auth.user, current, new, auth.claims.sid, context)
        .await;
    if current.is_some() && !matches!(outcome, Err(PasswordChangeError::WrongCurrent)) {
        refund(state, &[per_email]).await;
    }
    let revoked = outcome.map_err(ChangeRefusal::Change)?;
    tracing::info!(user_id = %auth.user.id, revoked, "password changed");
    Ok(revoked)
}

//! `GET /auth/login`, `POST /auth/login`.

use super::{
    ask_limiter, echoed_email, email_limit_key, ensure_csrf, refund, refuse_busy, refuse_limited,
    render, signed_in_redirect, Ask, LoginPage,
};
use crate::http::cookies;
use crate::http::error::PageError;
use crate::http::extract::{access_user, return_to, ClientInfo, Htmx, QueryReturnTo};
use crate::http::form;
use crate::http::respond::{redirect, with_return_to};
use crate::http::Routes;
use crate::state::AppState;
use authara_core::auth::store::UserRecord;
use authara_core::auth::LoginError;
use authara_core::domain::ReturnTo;
use authara_core::jwt::Audience;
use authara_core::limits::{Family, LimitKey};
use authara_core::session::Issued;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

/// The login routes.
pub fn routes() -> Routes {
    Routes::new()
        .get("/auth/login", get_login)
        .post("/auth/login", post_login)
}

/// The fields of the login and signup forms. No `Debug`: it would print the password.
#[derive(Default, serde::Deserialize)]
pub struct CredentialsForm {
    pub email: Option<String>,
    pub password: Option<String>,
    pub return_to: Option<String>,
}

/// The login page, empty or shown back with an error; sets the CSRF cookie when needed.
fn login_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    return_to: Option<&ReturnTo>,
    email: &str,
    error: Option<&str>,
    notice: Option<&str>,
) -> Response {
    let mut out = HeaderMap::new();
    let csrf = ensure_csrf(state, headers, &mut out);
    let rt = return_to.map(ReturnTo::as_str);
    let page = LoginPage {
        csrf_token: &csrf,
        return_to: rt,
        email,
        error,
        notice,
        signup_href: with_return_to("/auth/signup", rt),
        reset_href: with_return_to(super::password_reset::PASSWORD_RESET, rt),
        google: super::google_button(state, rt, "signin_with", &mut out),
        providers: super::code_flow::buttons(state, rt),
    };
    render(&page, status, out)
}

/// `GET /auth/login`: the form, or straight to `return_to` for a visitor already signed in.
pub async fn get_login(
    State(state): State<AppState>,
    Htmx(htmx): Htmx,
    QueryReturnTo(rt): QueryReturnTo,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let notice = match form::query_param(query.as_deref(), "notice") {
        Ok(Some(n)) if n == "password-reset" => Some(super::challenge::RESET_DONE),
        _ => None,
    };
    // Only the access cookie: a visitor whose access token expired sees the form.
    if access_user(&state, &headers).await?.is_some() {
        let to = rt.unwrap_or_else(ReturnTo::root);
        return Ok(redirect(htmx, to.as_str(), HeaderMap::new()));
    }
    Ok(login_page(
        &state,
        &headers,
        StatusCode::OK,
        rt.as_ref(),
        "",
        None,
        notice,
    ))
}

/// `POST /auth/login`.
pub async fn post_login(
    State(state): State<AppState>,
    client: ClientInfo,
    Htmx(htmx): Htmx,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let f: CredentialsForm = form::parse(&body);
    let rt = return_to(f.return_to.as_deref(), query.as_deref());
    let email = f.email.as_deref().unwrap_or("");
    let password = f.password.as_deref().unwrap_or("");
    let show = |status: StatusCode, error: &str| {
        login_page(
            &state,
            &headers,
            status,
            rt.as_ref(),
            echoed_email(email),
            Some(error),
            None,
        )
    };

    match password_login(&state, &client, &headers, email, password, Audience::App).await {
        Ok((_, issued)) => Ok(signed_in_redirect(&state, htmx, &issued, rt)),
        Err(LoginRefusal::Limited(limited)) => Ok(refuse_limited(show, limited)),
        Err(LoginRefusal::Login(LoginError::Empty)) => Ok(show(
            StatusCode::BAD_REQUEST,
            "Email and password are required.",
        )),
        Err(LoginRefusal::Login(LoginError::Invalid)) => Ok(show(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid email or password.",
        )),
        // The HTML login asks for `app` only, which every enabled account may have.
        Err(LoginRefusal::Login(LoginError::Disabled) | LoginRefusal::Audience) => Ok(show(
            StatusCode::FORBIDDEN,
            "This account has been disabled.",
        )),
        Err(LoginRefusal::Login(LoginError::Busy)) => Ok(refuse_busy(show)),
        Err(LoginRefusal::Login(LoginError::Failed(e))) => Err(PageError::internal(e)),
    }
}

/// Why [`password_login`] started no session.
#[derive(Debug)]
pub enum LoginRefusal {
    /// Over a rate limit: nothing was checked.
    Limited(authara_core::limits::Limited),
    /// What the account service said.
    Login(LoginError),
    /// The password was right but the user may not have this audience (`admin` for a user
    /// who is no administrator).
    Audience,
}

/// A password login, the one implementation behind `POST /auth/login` and
/// `POST /auth/api/v1/login`: the rate limits, the password check, the audience check, the
/// session, and the browser's previous session replaced.
///
/// Per IP every attempt counts. Per email every attempt is counted too, before the password is
/// verified (a check now and a count after the answer would let parallel guesses all pass), and
/// given back unless it was a failed guess: the owner's own successful logins never spend the
/// email's budget. A disabled account, or an audience the user may not have, is told apart only
/// after the right password.
pub async fn password_login(
    state: &AppState,
    client: &ClientInfo,
    headers: &HeaderMap,
    email: &str,
    password: &str,
    audience: Audience,
) -> Result<(UserRecord, Issued), LoginRefusal> {
    let email_key = email_limit_key(email);
    let per_ip = LimitKey::new(Family::LoginIp, &client.ip);
    let per_email = LimitKey::new(Family::LoginEmail, &email_key);
    ask_limiter(state, &[Ask::Hit(per_ip), Ask::Hit(per_email)])
        .await
        .map_err(LoginRefusal::Limited)?;

    let outcome = state.auth.verify_password(email, password).await;
    match &outcome {
        // Only this is a failed guess.
        Err(LoginError::Invalid) => {}
        _ => refund(state, &[per_email]).await,
    }
    let outcome = outcome.map_err(LoginRefusal::Login)?;
    if !outcome.may_have(audience) {
        return Err(LoginRefusal::Audience);
    }
    let (user, issued) = state
        .auth
        .start_session(outcome, audience, client.origin())
        .await
        .map_err(|e| LoginRefusal::Login(LoginError::Failed(e)))?;
    replace_previous_session(state, headers, &issued).await;
    Ok((user, issued))
}

/// A login from a browser that still carries a refresh cookie replaces that browser's previous
/// session: it is revoked, so logging in again never leaves the old one alive behind the new
/// cookies. A failure to revoke is logged and does not undo the login (the old session then
/// ends by itself, by expiry or the per-user cap).
pub(super) async fn replace_previous_session(
    state: &AppState,
    headers: &HeaderMap,
    issued: &Issued,
) {
    let Some(previous) = cookies::read(headers, cookies::REFRESH) else {
        return;
    };
    if let Err(e) = state
        .sessions
        .revoke_replaced(previous, issued.session_id)
        .await
    {
        tracing::warn!(error = %e, "could not revoke the browser's previous session after a login");
    }
}

//! `GET /auth/login`, `POST /auth/login`.

use super::{
    echoed_email, email_limit_key, ensure_csrf, refund, refuse_busy, refuse_over_limit, render,
    signed_in_redirect, Ask, LoginPage,
};
use crate::http::cookies;
use crate::http::error::PageError;
use crate::http::extract::{access_user, return_to, ClientInfo, Htmx, QueryReturnTo};
use crate::http::form;
use crate::http::respond::{redirect, with_return_to};
use crate::http::Routes;
use crate::state::AppState;
use authara_core::auth::LoginError;
use authara_core::domain::ReturnTo;
use authara_core::limits::{Family, LimitKey};
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
) -> Response {
    let mut out = HeaderMap::new();
    let csrf = ensure_csrf(state, headers, &mut out);
    let rt = return_to.map(ReturnTo::as_str);
    let page = LoginPage {
        csrf_token: &csrf,
        return_to: rt,
        email,
        error,
        signup_href: with_return_to("/auth/signup", rt),
    };
    render(&page, status, out)
}

/// `GET /auth/login`: the form, or straight to `return_to` for a visitor already signed in.
pub async fn get_login(
    State(state): State<AppState>,
    Htmx(htmx): Htmx,
    QueryReturnTo(rt): QueryReturnTo,
    headers: HeaderMap,
) -> Result<Response, PageError> {
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
        )
    };

    // Per IP every attempt counts. Per email every attempt is counted too, before the password
    // is verified (a check now and a count after the answer would let parallel guesses all
    // pass), and given back below unless it was a failed guess: the owner's own successful
    // logins never spend the email's budget.
    let email_key = email_limit_key(email);
    let per_ip = LimitKey::new(Family::LoginIp, &client.ip);
    let per_email = LimitKey::new(Family::LoginEmail, &email_key);
    let asks = [Ask::Hit(per_ip), Ask::Hit(per_email)];
    if let Some(res) = refuse_over_limit(&state, &asks, show).await {
        return Ok(res);
    }

    let outcome = state.auth.login(email, password, client.origin()).await;
    match &outcome {
        // A disabled account is told apart only after the right password, so only this is a
        // failed guess.
        Err(LoginError::Invalid) => {}
        _ => refund(&state, &[per_email]).await,
    }
    match outcome {
        Ok((_, issued)) => {
            replace_previous_session(&state, &headers, &issued).await;
            Ok(signed_in_redirect(&state, htmx, &issued, rt))
        }
        Err(LoginError::Empty) => Ok(show(
            StatusCode::BAD_REQUEST,
            "Email and password are required.",
        )),
        Err(LoginError::Invalid) => Ok(show(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid email or password.",
        )),
        Err(LoginError::Disabled) => Ok(show(
            StatusCode::FORBIDDEN,
            "This account has been disabled.",
        )),
        Err(LoginError::Busy) => Ok(refuse_busy(show)),
        Err(LoginError::Failed(e)) => Err(PageError::internal(e)),
    }
}

/// A login from a browser that still carries a refresh cookie replaces that browser's previous
/// session: it is revoked, so logging in again never leaves the old one alive behind the new
/// cookies. A failure to revoke is logged and does not undo the login (the old session then
/// ends by itself, by expiry or the per-user cap).
async fn replace_previous_session(
    state: &AppState,
    headers: &HeaderMap,
    issued: &authara_core::session::Issued,
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

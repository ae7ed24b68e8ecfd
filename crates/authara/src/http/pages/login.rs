//! `GET /auth/login`, `POST /auth/login`.

use super::{
    echoed_email, email_limit_key, ensure_csrf, over_limit, render, signed_in_redirect, LoginPage,
};
use crate::http::cookies;
use crate::http::error::{set_retry_after, PageError};
use crate::http::extract::{return_to, ClientInfo, Htmx};
use crate::http::form;
use crate::http::respond::{redirect, with_return_to};

/// Shown when a login or signup is rate limited.
pub const TOO_MANY: &str = "Too many attempts. Please wait and try again.";
use crate::state::AppState;
use authara_core::auth::LoginError;
use authara_core::domain::ReturnTo;
use authara_core::limits::LimitKey;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

/// The fields of the login and signup forms. No `Debug`: it would print the password.
#[derive(Default, serde::Deserialize)]
pub struct CredentialsForm {
    pub email: Option<String>,
    pub password: Option<String>,
    pub return_to: Option<String>,
}

/// `GET /auth/login`: the form, or straight to `return_to` for a visitor already signed in.
pub async fn get_login(
    State(state): State<AppState>,
    Htmx(htmx): Htmx,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let rt = return_to(None, query.as_deref());
    if let Some(access) = cookies::read(&headers, cookies::ACCESS) {
        match state.sessions.authenticate(access).await {
            Ok(_) => {
                let to = rt.unwrap_or_else(ReturnTo::root);
                return Ok(redirect(htmx, to.as_str(), HeaderMap::new()));
            }
            Err(authara_core::session::AuthError::Store(e)) => return Err(e.into()),
            Err(_) => {}
        }
    }
    let mut out = HeaderMap::new();
    let csrf = ensure_csrf(&state, &headers, &mut out);
    let rt = rt.as_ref().map(ReturnTo::as_str);
    let page = LoginPage {
        csrf_token: &csrf,
        return_to: rt,
        email: "",
        error: None,
        signup_href: with_return_to("/auth/signup", rt),
    };
    Ok(render(&page, StatusCode::OK, out))
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

    let show = |status: StatusCode, error: &str, out: HeaderMap| {
        let mut out = out;
        let csrf = ensure_csrf(&state, &headers, &mut out);
        let rt = rt.as_ref().map(ReturnTo::as_str);
        let page = LoginPage {
            csrf_token: &csrf,
            return_to: rt,
            email: echoed_email(email),
            error: Some(error),
            signup_href: with_return_to("/auth/signup", rt),
        };
        render(&page, status, out)
    };

    let email_key = email_limit_key(email);
    let keys = [
        LimitKey::LoginIp(&client.ip),
        LimitKey::LoginEmail(&email_key),
    ];
    if let Some(l) = over_limit(&state, &keys).await {
        let mut res = show(StatusCode::TOO_MANY_REQUESTS, TOO_MANY, HeaderMap::new());
        set_retry_after(&mut res, l.retry_after);
        return Ok(res);
    }

    match state.auth.login(email, password, client.origin()).await {
        Ok((_, issued)) => Ok(signed_in_redirect(&state, htmx, &issued, rt)),
        Err(LoginError::Empty) => Ok(show(
            StatusCode::BAD_REQUEST,
            "Email and password are required.",
            HeaderMap::new(),
        )),
        Err(LoginError::Invalid) => Ok(show(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid email or password.",
            HeaderMap::new(),
        )),
        Err(LoginError::Disabled) => Ok(show(
            StatusCode::FORBIDDEN,
            "This account has been disabled.",
            HeaderMap::new(),
        )),
        Err(LoginError::Failed(e)) => Err(PageError::internal(e)),
    }
}

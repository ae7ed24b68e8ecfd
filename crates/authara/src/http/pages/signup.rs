//! `GET /auth/signup`, `POST /auth/signup`.

use super::login::CredentialsForm;
use super::{
    echoed_email, ensure_csrf, hit_ip_and_email, refuse_busy, refuse_limited, render,
    signed_in_redirect, SignupPage,
};
use crate::http::error::PageError;
use crate::http::extract::{return_to, ClientInfo, Htmx, QueryReturnTo};
use crate::http::form;
use crate::http::respond::login_href;
use crate::http::Routes;
use crate::state::AppState;
use authara_core::auth::store::UserRecord;
use authara_core::auth::SignupError;
use authara_core::domain::ReturnTo;
use authara_core::limits::Family;
use authara_core::session::Issued;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

/// The signup routes.
pub fn routes() -> Routes {
    Routes::new()
        .get("/auth/signup", get_signup)
        .post("/auth/signup", post_signup)
}

/// The signup page, empty or shown back with an error; sets the CSRF cookie when needed.
fn signup_page(
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
    let page = SignupPage {
        csrf_token: &csrf,
        return_to: rt,
        email,
        error,
        login_href: login_href(rt),
        google: super::google_button(state, rt, "signup_with", &mut out),
        providers: super::code_flow::buttons(state, rt),
    };
    render(&page, status, out)
}

/// `GET /auth/signup`.
pub async fn get_signup(
    State(state): State<AppState>,
    QueryReturnTo(rt): QueryReturnTo,
    headers: HeaderMap,
) -> Response {
    signup_page(&state, &headers, StatusCode::OK, rt.as_ref(), "", None)
}

/// `POST /auth/signup`.
pub async fn post_signup(
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
        signup_page(
            &state,
            &headers,
            status,
            rt.as_ref(),
            echoed_email(email),
            Some(error),
        )
    };

    if state.challenges.settings().enabled {
        return match start_signup_challenge(&state, &client, email, password).await {
            Ok(started) => {
                let to = super::challenge::verify_href(
                    authara_core::challenge::store::Purpose::Signup,
                    started.challenge_id,
                    None,
                    rt.as_ref(),
                );
                Ok(crate::http::respond::redirect(htmx, &to, HeaderMap::new()))
            }
            Err(ChallengeSignupRefusal::Limited(limited)) => Ok(refuse_limited(show, limited)),
            Err(ChallengeSignupRefusal::Start(e)) => super::password_reset::start_refused(e, show),
        };
    }
    match password_signup(&state, &client, email, password).await {
        Ok((_, issued)) => Ok(signed_in_redirect(&state, htmx, &issued, rt)),
        Err(SignupRefusal::Limited(limited)) => Ok(refuse_limited(show, limited)),
        Err(SignupRefusal::Signup(SignupError::Email(e))) => {
            Ok(show(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()))
        }
        Err(SignupRefusal::Signup(SignupError::Password(e))) => {
            Ok(show(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()))
        }
        Err(SignupRefusal::Signup(SignupError::Duplicate)) => {
            Ok(show(StatusCode::UNPROCESSABLE_ENTITY, COULD_NOT_CREATE))
        }
        Err(SignupRefusal::Signup(SignupError::Busy)) => Ok(refuse_busy(show)),
        Err(SignupRefusal::Signup(SignupError::Failed(e))) => Err(PageError::internal(e)),
    }
}

/// Shown for a taken email: it does not say that the email is registered.
pub const COULD_NOT_CREATE: &str =
    "Could not create account. If you already have one, sign in instead.";

/// Why [`password_signup`] created no account.
#[derive(Debug)]
pub enum SignupRefusal {
    /// Over a rate limit: nothing was checked.
    Limited(authara_core::limits::Limited),
    /// What the account service said.
    Signup(SignupError),
}

/// A signup with email and password, the one implementation behind `POST /auth/signup` and
/// `POST /auth/api/v1/signup/direct`: the rate limits (per IP and per email, every attempt
/// counted), then the account and its first session.
pub async fn password_signup(
    state: &AppState,
    client: &ClientInfo,
    email: &str,
    password: &str,
) -> Result<(UserRecord, Issued), SignupRefusal> {
    hit_ip_and_email(
        state,
        Family::SignupIp,
        Family::SignupEmail,
        &client.ip,
        email,
    )
    .await
    .map_err(SignupRefusal::Limited)?;
    state
        .auth
        .signup(email, password, client.origin())
        .await
        .map_err(SignupRefusal::Signup)
}

/// Why [`start_signup_challenge`] started nothing.
#[derive(Debug)]
pub enum ChallengeSignupRefusal {
    /// Over a rate limit: nothing was checked.
    Limited(authara_core::limits::Limited),
    /// What the challenge service said.
    Start(authara_core::challenge::StartError),
}

/// A verified signup's start (`AUTHARA_CHALLENGE_ENABLED`), the one implementation behind
/// `POST /auth/signup` and `POST /auth/api/v1/signup/challenges`: the same limits as a direct
/// signup, then a challenge; a taken email gets an opaque one, and the same answer.
pub async fn start_signup_challenge(
    state: &AppState,
    client: &ClientInfo,
    email: &str,
    password: &str,
) -> Result<authara_core::challenge::Started, ChallengeSignupRefusal> {
    hit_ip_and_email(
        state,
        Family::SignupIp,
        Family::SignupEmail,
        &client.ip,
        email,
    )
    .await
    .map_err(ChallengeSignupRefusal::Limited)?;
    state
        .challenges
        .start_signup(email, password)
        .await
        .map_err(ChallengeSignupRefusal::Start)
}

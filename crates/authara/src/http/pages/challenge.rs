//! The emailed-code pages: `GET`/`POST /auth/verify-challenge/{action}` (enter the code) and
//! `POST /auth/resend-challenge` (ask for a new one), and the implementations they share with
//! the JSON routes ([`verify_code`], [`resend_code`]).
//!
//! Every answer depends only on what the visitor typed and on the challenge's counters, which
//! opaque and real challenges keep alike: the pages never tell whether an email is registered.

use super::{
    ask_limiter, ensure_csrf, refuse_limited, render, render_error_page, signed_in_redirect, Ask,
};
use crate::http::error::PageError;
use crate::http::extract::{return_to, ClientInfo, Htmx, RequestCtx};
use crate::http::form;
use crate::http::respond::{encode_query_value, redirect};
use crate::http::Routes;
use crate::state::AppState;
use askama::Template;
use authara_core::audit::RequestContext;
use authara_core::auth::{LoginMethod, LoginOutcome};
use authara_core::challenge::store::{ChallengeRecord, Completed, Purpose, Resend};
use authara_core::challenge::VerifyError;
use authara_core::domain::ReturnTo;
use authara_core::jwt::Audience;
use authara_core::limits::{Family, LimitKey, Limited};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use uuid::Uuid;

/// `POST` target of the resend form.
pub const RESEND: &str = "/auth/resend-challenge";

/// The challenge routes.
pub fn routes() -> Routes {
    Routes::new()
        .get("/auth/verify-challenge/{action}", get_verify)
        .post("/auth/verify-challenge/{action}", post_verify)
        .post(RESEND, post_resend)
}

/// `/auth/verify-challenge/{action}`.
#[derive(Template)]
#[template(path = "verify_challenge.html")]
pub struct VerifyPage<'a> {
    pub csrf_token: &'a str,
    pub heading: &'a str,
    pub action: &'a str,
    pub challenge_id: &'a str,
    pub email: &'a str,
    pub code_minutes: u64,
    pub return_to: Option<&'a str>,
    pub restart_href: &'a str,
    pub error: Option<&'a str>,
    pub notice: Option<&'a str>,
}

/// Shown for an unknown, used or expired challenge.
pub const GONE: &str = "Invalid or expired verification code. Please start again.";

fn heading(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Signup => "Confirm your email",
        Purpose::PasswordReset => "Reset your password",
        Purpose::EmailChange => "Confirm your new email",
    }
}

/// Where a visitor starts the flow again.
fn restart_href(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Signup => "/auth/signup",
        Purpose::PasswordReset => "/auth/password-reset",
        Purpose::EmailChange => "/auth/account",
    }
}

/// The page's path for a challenge, with the notice and `return_to` when given.
pub fn verify_href(
    purpose: Purpose,
    id: Uuid,
    notice: Option<&str>,
    return_to: Option<&ReturnTo>,
) -> String {
    let mut href = format!(
        "/auth/verify-challenge/{}?challenge_id={id}",
        purpose.action()
    );
    if let Some(n) = notice {
        href.push_str("&notice=");
        href.push_str(n);
    }
    if let Some(rt) = return_to {
        href.push_str("&return_to=");
        href.push_str(&encode_query_value(rt.as_str()));
    }
    href
}

/// What a `?notice=` says after a resend (fixed texts; anything else shows nothing).
fn notice_text(notice: &str) -> Option<&'static str> {
    match notice {
        "sent" => Some("If the address can receive it, a new code is on its way."),
        "wait" => Some("Please wait a moment before asking for another code."),
        "exhausted" => Some("Too many resend attempts. Please start again."),
        _ => None,
    }
}

/// The code-entry page of a live challenge.
#[allow(clippy::too_many_arguments, reason = "one page, its fields")]
fn verify_page(
    state: &AppState,
    headers: &HeaderMap,
    challenge: &ChallengeRecord,
    return_to: Option<&ReturnTo>,
    status: StatusCode,
    error: Option<&str>,
    notice: Option<&str>,
) -> Response {
    let mut out = HeaderMap::new();
    let csrf = ensure_csrf(state, headers, &mut out);
    let id = challenge.id.to_string();
    let minutes = state.challenges.settings().code_ttl.as_secs().div_ceil(60);
    let page = VerifyPage {
        csrf_token: &csrf,
        heading: heading(challenge.purpose),
        action: challenge.purpose.action(),
        challenge_id: &id,
        email: &challenge.email,
        code_minutes: minutes,
        return_to: return_to.map(ReturnTo::as_str),
        restart_href: restart_href(challenge.purpose),
        error,
        notice,
    };
    render(&page, status, out)
}

/// The page for a challenge that cannot be answered any more (or never existed).
fn gone_page(status: StatusCode) -> Response {
    render_error_page(status, GONE)
}

/// The purpose of `{action}`; signup verification and email change exist only with
/// `AUTHARA_CHALLENGE_ENABLED`.
fn purpose_of(state: &AppState, action: &str) -> Option<Purpose> {
    let purpose = Purpose::from_action(action)?;
    (purpose == Purpose::PasswordReset || state.challenges.settings().enabled).then_some(purpose)
}

#[derive(Default, serde::Deserialize)]
struct VerifyQuery {
    challenge_id: Option<String>,
    notice: Option<String>,
}

/// `GET /auth/verify-challenge/{action}?challenge_id=`.
pub async fn get_verify(
    State(state): State<AppState>,
    Path(action): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let Some(purpose) = purpose_of(&state, &action) else {
        return Err(PageError::not_found());
    };
    let q: VerifyQuery = form::parse(query.as_deref().unwrap_or("").as_bytes());
    let rt = return_to(None, query.as_deref());
    let Some(id) = q.challenge_id.as_deref().and_then(parse_id) else {
        return Ok(gone_page(StatusCode::NOT_FOUND));
    };
    let Some(challenge) = state.challenges.find_live(id, purpose).await? else {
        return Ok(gone_page(StatusCode::NOT_FOUND));
    };
    let notice = q.notice.as_deref().and_then(notice_text);
    Ok(verify_page(
        &state,
        &headers,
        &challenge,
        rt.as_ref(),
        StatusCode::OK,
        None,
        notice,
    ))
}

/// A challenge id as sent: a UUID, else nothing.
pub fn parse_id(raw: &str) -> Option<Uuid> {
    Uuid::try_parse(raw.trim()).ok()
}

/// The fields of the code form. No `Debug`: it holds the code.
#[derive(Default, serde::Deserialize)]
struct VerifyForm {
    challenge_id: Option<String>,
    code: Option<String>,
    return_to: Option<String>,
}

/// Why [`verify_code`] completed nothing.
#[derive(Debug)]
pub enum VerifyRefusal {
    /// Over the per-IP verify limit: nothing was checked or counted.
    Limited(Limited),
    /// What the challenge service said.
    Verify(VerifyError),
}

/// A code check, the one implementation behind the verify page and the JSON verify routes:
/// the per-IP limit (`challenge_verify`), then the service (which counts the attempt).
pub async fn verify_code(
    state: &AppState,
    client: &ClientInfo,
    context: &RequestContext,
    id: Uuid,
    purpose: Purpose,
    code: &str,
) -> Result<Completed, VerifyRefusal> {
    ask_limiter(
        state,
        &[Ask::Hit(LimitKey::new(
            Family::ChallengeVerifyIp,
            &client.ip,
        ))],
    )
    .await
    .map_err(VerifyRefusal::Limited)?;
    state
        .challenges
        .verify(id, purpose, code, context)
        .await
        .map_err(VerifyRefusal::Verify)
}

/// Shown on the login page after a password reset.
pub const RESET_DONE: &str = "Your password has been reset. Please log in again.";

/// `POST /auth/verify-challenge/{action}`: `challenge_id`, `code`.
pub async fn post_verify(
    State(state): State<AppState>,
    Path(action): Path<String>,
    client: ClientInfo,
    RequestCtx(context): RequestCtx,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let Some(purpose) = purpose_of(&state, &action) else {
        return Err(PageError::not_found());
    };
    let htmx = crate::http::respond::is_htmx(&headers);
    let f: VerifyForm = form::parse(&body);
    let rt = return_to(f.return_to.as_deref(), query.as_deref());
    let Some(id) = f.challenge_id.as_deref().and_then(parse_id) else {
        return Ok(gone_page(StatusCode::UNPROCESSABLE_ENTITY));
    };
    let code = f.code.as_deref().unwrap_or("");
    let refused = match verify_code(&state, &client, &context, id, purpose, code).await {
        Ok(done) => return finish(&state, &client, htmx, done, rt).await,
        Err(refusal) => refusal,
    };
    let error = match refused {
        VerifyRefusal::Verify(VerifyError::Gone) => {
            return Ok(gone_page(StatusCode::UNPROCESSABLE_ENTITY))
        }
        VerifyRefusal::Verify(VerifyError::Failed(e)) => return Err(PageError::internal(e)),
        refused => refused,
    };
    // The page is shown again for a challenge that is still live; one that is not is gone.
    let Some(challenge) = state.challenges.find_live(id, purpose).await? else {
        return Ok(gone_page(StatusCode::UNPROCESSABLE_ENTITY));
    };
    let show = |status: StatusCode, message: &str| {
        verify_page(
            &state,
            &headers,
            &challenge,
            rt.as_ref(),
            status,
            Some(message),
            None,
        )
    };
    Ok(match error {
        VerifyRefusal::Limited(limited) => refuse_limited(show, limited),
        // Malformed, incorrect, too many attempts: the service's own words.
        VerifyRefusal::Verify(e) => show(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
    })
}

/// After a code was accepted: the new account signed in, the reset visitor signed out and sent
/// to the login page, or the account page after an email change.
async fn finish(
    state: &AppState,
    client: &ClientInfo,
    htmx: bool,
    done: Completed,
    rt: Option<ReturnTo>,
) -> Result<Response, PageError> {
    match done {
        Completed::Signup { user, joined } => {
            tracing::info!(user_id = %user.id, "account created after email verification");
            let outcome = LoginOutcome {
                user,
                method: LoginMethod::Signup,
            };
            // An invited account's first session acts in the invitation's organization.
            let (_, issued) = state
                .auth
                .start_session_in(outcome, Audience::App, client.origin(), joined)
                .await
                .map_err(PageError::internal)?;
            Ok(signed_in_redirect(state, htmx, &issued, rt))
        }
        Completed::PasswordReset { user, revoked } => {
            tracing::info!(user_id = %user.id, revoked, "password reset");
            // This browser's session (if it had one) was revoked with all the others.
            let mut out = HeaderMap::new();
            state.cookies.clear_session(&mut out);
            let mut to = String::from("/auth/login?notice=password-reset");
            if let Some(rt) = &rt {
                to.push_str("&return_to=");
                to.push_str(&encode_query_value(rt.as_str()));
            }
            Ok(redirect(htmx, &to, out))
        }
        Completed::EmailChange { user, revoked } => {
            tracing::info!(user_id = %user.id, revoked, "email changed");
            Ok(redirect(
                htmx,
                "/auth/account?notice=email-changed",
                HeaderMap::new(),
            ))
        }
    }
}

/// Why [`resend_code`] queued nothing.
#[derive(Debug)]
pub enum ResendRefusal {
    /// Over the per-IP resend limit: nothing was asked.
    Limited(Limited),
    /// The database failed.
    Failed(authara_core::store::StoreError),
}

/// A resend, the one implementation behind the resend form and the JSON route: the per-IP limit
/// (`challenge_resend`), then the service. Opaque and real challenges answer alike.
pub async fn resend_code(
    state: &AppState,
    client: &ClientInfo,
    id: Uuid,
) -> Result<Resend, ResendRefusal> {
    ask_limiter(
        state,
        &[Ask::Hit(LimitKey::new(
            Family::ChallengeResendIp,
            &client.ip,
        ))],
    )
    .await
    .map_err(ResendRefusal::Limited)?;
    state
        .challenges
        .resend(id)
        .await
        .map_err(ResendRefusal::Failed)
}

#[derive(Default, serde::Deserialize)]
struct ResendForm {
    challenge_id: Option<String>,
    return_to: Option<String>,
}

/// `POST /auth/resend-challenge`: `challenge_id`. Back to the code page with a notice.
pub async fn post_resend(
    State(state): State<AppState>,
    client: ClientInfo,
    Htmx(htmx): Htmx,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let f: ResendForm = form::parse(&body);
    let rt = return_to(f.return_to.as_deref(), query.as_deref());
    let Some(id) = f.challenge_id.as_deref().and_then(parse_id) else {
        return Ok(gone_page(StatusCode::UNPROCESSABLE_ENTITY));
    };
    let Some(challenge) = state
        .challenges
        .find_live_any(id)
        .await?
        .filter(|c| purpose_of(&state, c.purpose.action()).is_some())
    else {
        return Ok(gone_page(StatusCode::UNPROCESSABLE_ENTITY));
    };
    let notice = match resend_code(&state, &client, id).await {
        Ok(Resend::Queued) => "sent",
        Ok(Resend::TooSoon) => "wait",
        Ok(Resend::Exhausted) => "exhausted",
        Ok(Resend::Gone) => return Ok(gone_page(StatusCode::UNPROCESSABLE_ENTITY)),
        Err(ResendRefusal::Failed(e)) => return Err(PageError::internal(e)),
        Err(ResendRefusal::Limited(limited)) => {
            let show = |status: StatusCode, message: &str| {
                verify_page(
                    &state,
                    &headers,
                    &challenge,
                    rt.as_ref(),
                    status,
                    Some(message),
                    None,
                )
            };
            return Ok(refuse_limited(show, limited));
        }
    };
    let to = verify_href(challenge.purpose, id, Some(notice), rt.as_ref());
    Ok(redirect(htmx, &to, HeaderMap::new()))
}

//! `POST /auth/email-change`: a signed-in user asks to move their account to a new address.
//! The code goes to the new address; once it is entered the email changes, the old address gets
//! a notice and every other session is signed out (upstream does neither). Only with
//! `AUTHARA_CHALLENGE_ENABLED` (else `404`, as upstream).
//!
//! A new address that another account already has gets an opaque challenge: the same redirect,
//! the same code page, no email, so the form cannot be used to find out who is registered.

use super::account::account_page;
use super::challenge::verify_href;
use super::{ask_limiter, Ask};
use crate::http::error::PageError;
use crate::http::extract::{ClientInfo, Htmx, SignedIn};
use crate::http::form;
use crate::http::respond::redirect;
use crate::http::Routes;
use crate::state::AppState;
use authara_core::challenge::store::Purpose;
use authara_core::challenge::StartError;
use authara_core::limits::{Family, LimitKey};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

/// The email-change route.
pub fn routes() -> Routes {
    Routes::new().post("/auth/email-change", post_email_change)
}

#[derive(Default, serde::Deserialize)]
struct EmailChangeForm {
    new_email: Option<String>,
}

/// `POST /auth/email-change`: `new_email`. Success: `303` to the code page. Each request sends
/// an email to an address of the requester's choosing, so it counts against the per-IP resend
/// limit (`challenge_resend`).
pub async fn post_email_change(
    State(state): State<AppState>,
    user: SignedIn,
    client: ClientInfo,
    Htmx(htmx): Htmx,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    if !state.challenges.settings().enabled {
        return Err(PageError::not_found());
    }
    let f: EmailChangeForm = form::parse(&body);
    let new_email = f.new_email.as_deref().unwrap_or("");
    let limited = ask_limiter(
        &state,
        &[Ask::Hit(LimitKey::new(
            Family::ChallengeResendIp,
            &client.ip,
        ))],
    )
    .await;
    if let Err(limited) = limited {
        let mut res = account_page(
            &state,
            &headers,
            user,
            StatusCode::TOO_MANY_REQUESTS,
            Some(super::TOO_MANY),
            None,
        )
        .await?;
        crate::http::error::set_retry_after(&mut res, limited.retry_after);
        return Ok(res);
    }
    let started = state
        .challenges
        .start_email_change(&user.auth.user, Some(user.auth.claims.sid), new_email)
        .await;
    let message = match started {
        Ok(started) => {
            let to = verify_href(Purpose::EmailChange, started.challenge_id, None, None);
            return Ok(redirect(htmx, &to, user.cookies));
        }
        Err(StartError::Email(e)) => e.to_string(),
        Err(StartError::SameEmail) => "That is already your email address.".to_owned(),
        Err(StartError::Password(_) | StartError::Busy) => super::BUSY.to_owned(),
        Err(StartError::Failed(e)) => return Err(PageError::internal(e)),
    };
    account_page(
        &state,
        &headers,
        user,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some(&message),
        None,
    )
    .await
}

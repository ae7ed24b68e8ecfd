//! `POST /auth/api/v1/password-reset/challenges` and `…/challenges/verify`: the JSON password
//! reset, with the same rules as the HTML form underneath ([`start_reset`], [`verify_code`]).
//! An unknown email, or an account without a password, gets the same `202` and an opaque
//! challenge; every failed verification is the same `400`.

use super::challenges::{ChallengeReference, PasswordResetChallengeVerification, INVALID_CODE};
use crate::http::api::{json, openapi};
use crate::http::error::ApiError;
use crate::http::extract::{ClientInfo, RequestCtx};
use crate::http::pages::challenge::{parse_id, verify_code, VerifyRefusal};
use crate::http::pages::password_reset::{start_reset, ResetRefusal};
use crate::http::Routes;
use crate::state::AppState;
use authara_core::challenge::store::{Completed, Purpose};
use authara_core::challenge::{StartError, VerifyError};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// The password-reset routes.
pub fn routes() -> Routes {
    Routes::new()
        .post(
            "/auth/api/v1/password-reset/challenges",
            post_password_reset_challenge,
        )
        .post(
            "/auth/api/v1/password-reset/challenges/verify",
            post_password_reset_verify,
        )
}

/// Upstream's `PasswordResetRequest`. No `Debug`: it holds the password.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetRequest {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// The password to set once the code is verified: 8 to 128 characters, no control
    /// characters, taken exactly as sent.
    #[schema(
        format = Password,
        min_length = 8,
        max_length = 128,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub new_password: String,
}

/// The API error for a challenge that could not start.
pub fn start_error(e: StartError) -> ApiError {
    match e {
        StartError::Email(e) => ApiError::InvalidInput(e.to_string()),
        StartError::Password(e) => ApiError::InvalidInput(e.message().to_owned()),
        StartError::SameEmail => ApiError::InvalidRequest("That is already your email address."),
        StartError::Busy => ApiError::Busy,
        StartError::Failed(e) => ApiError::internal(e),
    }
}

/// The API error for a code that was not accepted: one answer for every reason.
pub fn verify_error(refusal: VerifyRefusal) -> ApiError {
    match refusal {
        VerifyRefusal::Limited(l) => l.into(),
        VerifyRefusal::Verify(VerifyError::Failed(e)) => ApiError::internal(e),
        VerifyRefusal::Verify(_) => ApiError::InvalidRequest(INVALID_CODE),
    }
}

/// `POST /auth/api/v1/password-reset/challenges`: `202 {challenge_id}`.
#[utoipa::path(
    post,
    path = "/auth/api/v1/password-reset/challenges",
    operation_id = "startPasswordResetChallenge",
    tag = "Authentication",
    summary = "Start a password reset challenge",
    description = "Checks and hashes the new password, then emails a 6-digit code to the address \
        when it belongs to an account with a password. The answer is the same `202` when it does \
        not (an opaque challenge, no email), so the route tells nobody whether an email is \
        registered. Rate limited per IP and per email (`429` + `Retry-After`); an invalid email \
        or password is `400` naming the problem; `503` + `Retry-After` while password hashing is \
        saturated. Available whether or not challenges are enabled.",
    request_body = PasswordResetRequest,
    security(("csrfCookie" = [], "csrfHeader" = [])),
    responses(
        (status = 202, description = "Challenge started (or an opaque one).",
            body = ChallengeReference),
        (status = 400, response = openapi::InvalidRequest),
        (status = 429, response = openapi::RateLimited),
    ),
)]
pub async fn post_password_reset_challenge(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: PasswordResetRequest = json::parse(&headers, &body)?;
    match start_reset(&state, &client, &req.email, &req.new_password).await {
        Ok(started) => Ok((
            StatusCode::ACCEPTED,
            Json(ChallengeReference {
                challenge_id: started.challenge_id.to_string(),
            }),
        )
            .into_response()),
        Err(ResetRefusal::Limited(l)) => Err(l.into()),
        Err(ResetRefusal::Start(e)) => Err(start_error(e)),
    }
}

/// `POST /auth/api/v1/password-reset/challenges/verify`: `204`, the password replaced and every
/// session of the account revoked.
#[utoipa::path(
    post,
    path = "/auth/api/v1/password-reset/challenges/verify",
    operation_id = "verifyPasswordResetChallenge",
    tag = "Authentication",
    summary = "Verify a password reset challenge",
    description = "Checks the emailed code; when it is right, replaces the password and revokes \
        every session of the account at once, and the challenge is used up. Every failure (wrong \
        or expired code, too many attempts, unknown or used challenge) is the same `400`. Each \
        attempt is counted: after `AUTHARA_CHALLENGE_MAX_ATTEMPTS` wrong codes even the right \
        one is refused. Rate limited per IP (`429` + `Retry-After`).",
    request_body = PasswordResetChallengeVerification,
    security(("csrfCookie" = [], "csrfHeader" = [])),
    responses(
        (status = 204, description = "Password replaced; every session of the account revoked."),
        (status = 400, response = openapi::InvalidRequest),
        (status = 429, response = openapi::RateLimited),
    ),
)]
pub async fn post_password_reset_verify(
    State(state): State<AppState>,
    client: ClientInfo,
    RequestCtx(context): RequestCtx,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: PasswordResetChallengeVerification = json::parse(&headers, &body)?;
    let id = parse_id(&req.challenge_id).ok_or(ApiError::InvalidRequest(INVALID_CODE))?;
    match verify_code(
        &state,
        &client,
        &context,
        id,
        Purpose::PasswordReset,
        &req.code,
    )
    .await
    {
        Ok(Completed::PasswordReset { user, revoked }) => {
            tracing::info!(user_id = %user.id, revoked, "password reset");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Ok(_) => Err(ApiError::InvalidRequest(INVALID_CODE)),
        Err(refusal) => Err(verify_error(refusal)),
    }
}

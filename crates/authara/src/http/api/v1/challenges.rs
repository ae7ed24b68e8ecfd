//! `POST /auth/api/v1/challenges/resend`, and the bodies every challenge route shares.

use crate::http::api::{json, openapi};
use crate::http::error::ApiError;
use crate::http::extract::ClientInfo;
use crate::http::pages::challenge::{parse_id, resend_code, ResendRefusal};
use crate::http::Routes;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

/// Every failed verification, whatever the reason (upstream's message).
pub const INVALID_CODE: &str = "Invalid or expired verification code.";

/// The resend route.
pub fn routes() -> Routes {
    Routes::new().post("/auth/api/v1/challenges/resend", post_resend_challenge)
}

/// Upstream's `ChallengeReference`: which challenge (the answer of a reset's start, and the
/// resend body). Read as text, so that a malformed id gets the same `204` as an unknown one.
#[derive(serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChallengeReference {
    #[schema(format = Uuid, max_length = 64)]
    pub challenge_id: String,
}

/// Declares a code-check body under one of upstream's names (`SignupChallengeVerification`,
/// `PasswordResetChallengeVerification`: the same fields). No `Debug`: it holds the code.
macro_rules! verification_body {
    ($name:ident) => {
        #[doc = concat!("Upstream's `", stringify!($name), "`: a challenge and its code.")]
        #[derive(serde::Deserialize, utoipa::ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            #[schema(format = Uuid, max_length = 64)]
            pub challenge_id: String,
            /// The six digits from the email.
            #[schema(pattern = "^[0-9]{6}$", min_length = 6, max_length = 6)]
            pub code: String,
        }
    };
}

verification_body!(SignupChallengeVerification);
verification_body!(PasswordResetChallengeVerification);

/// `POST /auth/api/v1/challenges/resend`: `204` whatever the challenge's state.
#[utoipa::path(
    post,
    path = "/auth/api/v1/challenges/resend",
    operation_id = "resendChallenge",
    tag = "Authentication",
    summary = "Request another challenge verification code",
    description = "Queues a new code for a live challenge when its resend allowance and the \
        minimum interval permit; the previous code stops working once the new one is sent. The \
        answer is `204` in every case (unknown, used, expired, too soon, exhausted), so it reveals \
        nothing about the challenge. Rate limited per IP (`429` + `Retry-After`).",
    request_body = ChallengeReference,
    security(("csrfCookie" = [], "csrfHeader" = [])),
    responses(
        (status = 204, description = "Accepted, whatever the challenge's state."),
        (status = 400, response = openapi::InvalidRequest),
        (status = 429, response = openapi::RateLimited),
    ),
)]
pub async fn post_resend_challenge(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: ChallengeReference = json::parse(&headers, &body)?;
    // The limit counts every request, well-formed id or not.
    let id = parse_id(&req.challenge_id).unwrap_or(Uuid::nil());
    match resend_code(&state, &client, id).await {
        Ok(_) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(ResendRefusal::Limited(limited)) => Err(limited.into()),
        Err(ResendRefusal::Failed(e)) => Err(ApiError::internal(e)),
    }
}

//! `POST /auth/api/v1/signup/direct?audience=app`: the JSON signup without an email challenge.
//! The same rules as the HTML signup underneath ([`password_signup`]).

use super::tokens::{signed_in, AuthSession};
use crate::http::api::{json, openapi};
use crate::http::error::ApiError;
use crate::http::extract::ClientInfo;
use crate::http::form;
use crate::http::pages::signup::{password_signup, SignupRefusal, COULD_NOT_CREATE};
use crate::http::Routes;
use crate::state::AppState;
use authara_core::auth::SignupError;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

/// The signup route.
pub fn routes() -> Routes {
    Routes::new().post("/auth/api/v1/signup/direct", post_signup_direct)
}

/// The signup body (upstream's `SignupRequest`). No `Debug`: it holds the password.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// 8 to 128 characters, none of them a control character, taken exactly as sent (never
    /// trimmed).
    #[schema(
        format = Password,
        min_length = 8,
        max_length = 128,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub password: String,
    /// An organization invitation's code. Invitations do not exist yet, so no code is valid:
    /// a request with one is refused rather than creating an account outside the invitation.
    #[serde(default)]
    pub invitation_code: Option<String>,
}

/// `POST /auth/api/v1/signup/direct`: `201` with the [`AuthSession`] and both session cookies.
#[utoipa::path(
    post,
    path = "/auth/api/v1/signup/direct",
    operation_id = "signupDirect",
    tag = "Authentication",
    summary = "Create an account",
    description = "Creates the account and starts a session, with the rules of the HTML signup. \
        An invalid email or password is `400` naming the problem; a taken email is `400` with a \
        message that does not say the email exists; an `invitation_code` is refused (`400`: \
        invitations do not exist yet). Rate limited per IP and per email (`429` + `Retry-After`); \
        `503` + `Retry-After` while password hashing is saturated. Sets both session cookies and \
        answers the tokens too.",
    params(openapi::AppAudienceQuery),
    request_body = SignupRequest,
    security(("csrfCookie" = [], "csrfHeader" = [])),
    responses(
        (status = 201, description = "Account created and signed in; both session cookies set.",
            body = AuthSession),
        (status = 400, response = openapi::InvalidRequest),
        (status = 429, response = openapi::RateLimited),
    ),
    extensions(("x-authara-set-cookies" = json!(["authara_access", "authara_refresh"]))),
)]
pub async fn post_signup_direct(
    State(state): State<AppState>,
    client: ClientInfo,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    // Signup gives `app` access only (upstream's `AppAudience`).
    match form::query_param(query.as_deref(), "audience") {
        Ok(None) => {}
        Ok(Some(a)) if a == "app" => {}
        _ => return Err(ApiError::InvalidRequest("audience must be \"app\".")),
    }
    let req: SignupRequest = json::parse(&headers, &body)?;
    if req.invitation_code.is_some() {
        return Err(ApiError::InvalidRequest("Invalid invitation code."));
    }
    match password_signup(&state, &client, &req.email, &req.password).await {
        Ok((user, issued)) => signed_in(&state, StatusCode::CREATED, &user, &issued),
        Err(SignupRefusal::Limited(l)) => Err(l.into()),
        Err(SignupRefusal::Signup(e)) => Err(match e {
            SignupError::Email(e) => ApiError::InvalidInput(e.to_string()),
            SignupError::Password(e) => ApiError::InvalidInput(e.to_string()),
            SignupError::Duplicate => ApiError::InvalidRequest(COULD_NOT_CREATE),
            SignupError::Busy => ApiError::Busy,
            SignupError::Failed(e) => ApiError::internal(e),
        }),
    }
}

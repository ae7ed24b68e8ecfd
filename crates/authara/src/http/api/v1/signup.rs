//! `POST /auth/api/v1/signup/direct?audience=app`: the JSON signup without an email challenge.
//! The same rules as the HTML signup underneath ([`password_signup`]).

use super::challenges::{SignupChallengeVerification, INVALID_CODE};
use super::tokens::{signed_in, AuthSession};
use crate::http::api::{json, openapi};
use crate::http::error::ApiError;
use crate::http::extract::{ClientInfo, RequestCtx};
use crate::http::form;
use crate::http::pages::challenge::{parse_id, verify_code};
use crate::http::pages::signup::{password_signup, SignupRefusal, COULD_NOT_CREATE};
use crate::http::pages::signup::{start_signup_challenge, ChallengeSignupRefusal};
use crate::http::Routes;
use crate::state::AppState;
use authara_core::auth::SignupError;
use authara_core::auth::{LoginMethod, LoginOutcome};
use authara_core::challenge::store::{Completed, Purpose};
use authara_core::jwt::Audience;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// The signup route.
pub fn routes() -> Routes {
    Routes::new()
        .post("/auth/api/v1/signup/direct", post_signup_direct)
        .post("/auth/api/v1/signup/challenges", post_signup_challenge)
        .post(
            "/auth/api/v1/signup/challenges/verify",
            post_signup_challenge_verify,
        )
}

/// Only `?audience=app` (or none) is accepted by the signup routes (upstream's `AppAudience`).
fn app_audience_only(query: Option<&str>) -> Result<(), ApiError> {
    match form::query_param(query, "audience") {
        Ok(None) => Ok(()),
        Ok(Some(a)) if a == "app" => Ok(()),
        _ => Err(ApiError::InvalidRequest("audience must be \"app\".")),
    }
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
    /// An organization invitation's code (the token of its link; in the email with
    /// `AUTHARA_INVITATION_EMAIL_INCLUDE_CODE=true`): the account is created for the
    /// invitation's email (`email` must be it) and joins its organization.
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
    description = "Creates the account and starts a session, with the rules of the HTML signup; `404` when \
        verified signup (`AUTHARA_CHALLENGE_ENABLED`) is on. \
        An invalid email or password is `400` naming the problem; a taken email is `400` with a \
        message that does not say the email exists. With an `invitation_code` the account joins \
        the invitation's organization and the session acts there (`403 \
        invitation_email_mismatch` unless `email` is the invited one; `400` for an unknown \
        code, `409` for a used one). Rate limited per IP and per email (`429` + `Retry-After`); \
        `503` + `Retry-After` while password hashing is saturated. Sets both session cookies and \
        answers the tokens too.",
    params(openapi::AppAudienceQuery),
    request_body = SignupRequest,
    security(("csrfCookie" = [], "csrfHeader" = [])),
    responses(
        (status = 201, description = "Account created and signed in; both session cookies set.",
            body = AuthSession),
        (status = 400, response = openapi::InvalidRequest),
        (status = 403, response = openapi::InvitationForbidden),
        (status = 404, response = openapi::NotFound),
        (status = 409, response = openapi::InvitationConflict),
        (status = 429, response = openapi::RateLimited),
    ),
    extensions(
        ("x-authara-set-cookies" = json!(["authara_access", "authara_refresh"])),
        ("x-authara-availability" = json!("challenges-disabled")),
    ),
)]
pub async fn post_signup_direct(
    State(state): State<AppState>,
    client: ClientInfo,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    // With verified signup on, the account exists only after its email's code (upstream: 404).
    if state.challenges.settings().enabled {
        return Err(ApiError::NotFound);
    }
    app_audience_only(query.as_deref())?;
    let req: SignupRequest = json::parse(&headers, &body)?;
    if let Some(code) = req.invitation_code.as_deref() {
        return invited_signup(&state, &client, &req, code).await;
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

/// Upstream's `SignupChallenge`: the challenge whose code was emailed.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct SignupChallenge {
    pub challenge_id: uuid::Uuid,
}

/// `POST /auth/api/v1/signup/challenges`: `202 {challenge_id}`; `404` when challenges are off.
#[utoipa::path(
    post,
    path = "/auth/api/v1/signup/challenges",
    operation_id = "startSignupChallenge",
    tag = "Authentication",
    summary = "Start challenge-based signup",
    description = "Checks the email and password, hashes the password and emails a 6-digit code; \
        the account is created only when the code is verified. A taken email gets the same `202` \
        (an opaque challenge, no email), so the route tells nobody whether an email is \
        registered. Rate limited per IP and per email (`429` + `Retry-After`); an invalid email \
        or password is `400` naming the problem; `404` when `AUTHARA_CHALLENGE_ENABLED` is off. \
        With an `invitation_code` the account the code creates joins the invitation's \
        organization and its session acts there (`403 invitation_email_mismatch` unless `email` \
        is the invited one; `400` for an unknown code; `409` for one no longer pending).",
    params(openapi::AppAudienceQuery),
    request_body = SignupRequest,
    security(("csrfCookie" = [], "csrfHeader" = [])),
    responses(
        (status = 202, description = "Challenge started (or an opaque one).",
            body = SignupChallenge),
        (status = 400, response = openapi::InvalidRequest),
        (status = 403, response = openapi::InvitationForbidden),
        (status = 404, response = openapi::NotFound),
        (status = 409, response = openapi::InvitationConflict),
        (status = 429, response = openapi::RateLimited),
    ),
    extensions(("x-authara-availability" = json!("challenges-enabled"))),
)]
pub async fn post_signup_challenge(
    State(state): State<AppState>,
    client: ClientInfo,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !state.challenges.settings().enabled {
        return Err(ApiError::NotFound);
    }
    app_audience_only(query.as_deref())?;
    let req: SignupRequest = json::parse(&headers, &body)?;
    let started = match req.invitation_code.as_deref() {
        Some(code) => {
            let found = invitation_for(&state, &client, &req, code).await?;
            state
                .challenges
                .start_invited_signup(&found, &req.password)
                .await
                .map_err(ChallengeSignupRefusal::Start)
        }
        None => start_signup_challenge(&state, &client, &req.email, &req.password).await,
    };
    match started {
        Ok(started) => Ok((
            StatusCode::ACCEPTED,
            axum::Json(SignupChallenge {
                challenge_id: started.challenge_id,
            }),
        )
            .into_response()),
        Err(ChallengeSignupRefusal::Limited(l)) => Err(l.into()),
        Err(ChallengeSignupRefusal::Start(e)) => Err(super::password_reset::start_error(e)),
    }
}

/// `POST /auth/api/v1/signup/challenges/verify`: `201` with the [`AuthSession`] and both session
/// cookies; every failed verification is the same `400`.
#[utoipa::path(
    post,
    path = "/auth/api/v1/signup/challenges/verify",
    operation_id = "verifySignupChallenge",
    tag = "Authentication",
    summary = "Verify a signup challenge and create the account",
    description = "Checks the emailed code; when it is right, creates the account and starts a \
        session. Every failure (wrong or expired code, too many attempts, unknown or used \
        challenge, an opaque challenge) is the same `400`. Rate limited per IP (`429` + \
        `Retry-After`); `404` when `AUTHARA_CHALLENGE_ENABLED` is off.",
    params(openapi::AppAudienceQuery),
    request_body = SignupChallengeVerification,
    security(("csrfCookie" = [], "csrfHeader" = [])),
    responses(
        (status = 201, description = "Account created and signed in; both session cookies set.",
            body = AuthSession),
        (status = 400, response = openapi::InvalidRequest),
        (status = 404, response = openapi::NotFound),
        (status = 429, response = openapi::RateLimited),
    ),
    extensions(
        ("x-authara-set-cookies" = json!(["authara_access", "authara_refresh"])),
        ("x-authara-availability" = json!("challenges-enabled")),
    ),
)]
pub async fn post_signup_challenge_verify(
    State(state): State<AppState>,
    client: ClientInfo,
    RequestCtx(context): RequestCtx,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !state.challenges.settings().enabled {
        return Err(ApiError::NotFound);
    }
    app_audience_only(query.as_deref())?;
    let req: SignupChallengeVerification = json::parse(&headers, &body)?;
    let id = parse_id(&req.challenge_id).ok_or(ApiError::InvalidRequest(INVALID_CODE))?;
    let done = verify_code(&state, &client, &context, id, Purpose::Signup, &req.code)
        .await
        .map_err(super::password_reset::verify_error)?;
    let Completed::Signup { user, joined } = done else {
        return Err(ApiError::InvalidRequest(INVALID_CODE));
    };
    let outcome = LoginOutcome {
        user,
        method: LoginMethod::Signup,
    };
    // An invited account's first session acts in the invitation's organization.
    let (user, issued) = state
        .auth
        .start_session_in(outcome, Audience::App, client.origin(), joined)
        .await
        .map_err(ApiError::internal)?;
    signed_in(&state, StatusCode::CREATED, &user, &issued)
}

/// `POST /auth/api/v1/signup/direct` with an `invitation_code`: the signup of the invitation
/// pages, in JSON. The signup rate limits apply.
async fn invited_signup(
    state: &AppState,
    client: &ClientInfo,
    req: &SignupRequest,
    code: &str,
) -> Result<Response, ApiError> {
    use authara_core::auth::InvitedError;
    invitation_for(state, client, req, code).await?;
    match state
        .auth
        .signup_with_invitation(code, &req.password, client.origin())
        .await
    {
        Ok((user, issued)) => signed_in(state, StatusCode::CREATED, &user, &issued),
        Err(InvitedError::Signup(SignupError::Password(e))) => {
            Err(ApiError::InvalidInput(e.to_string()))
        }
        Err(InvitedError::Signup(SignupError::Duplicate)) => {
            Err(ApiError::InvalidRequest(COULD_NOT_CREATE))
        }
        Err(e) => Err(e.into()),
    }
}

/// What both invited signups check first: the signup rate limits (per IP and per email), then
/// the invitation of `code`, pending and for `req.email`.
async fn invitation_for(
    state: &AppState,
    client: &ClientInfo,
    req: &SignupRequest,
    code: &str,
) -> Result<authara_core::store::StoredInvitation, ApiError> {
    use crate::http::pages::hit_ip_and_email;
    use authara_core::domain::Email;
    use authara_core::invitation::InvitationError;
    use authara_core::limits::Family;
    hit_ip_and_email(
        state,
        Family::SignupIp,
        Family::SignupEmail,
        &client.ip,
        &req.email,
    )
    .await?;
    let found = pending_invitation(state, code).await?;
    if Email::normalise(&req.email) != found.invitation.email {
        return Err(InvitationError::EmailMismatch.into());
    }
    Ok(found)
}

/// The pending invitation of an `invitation_code`; an unknown or malformed code is upstream's
/// `400`.
async fn pending_invitation(
    state: &AppState,
    code: &str,
) -> Result<authara_core::store::StoredInvitation, ApiError> {
    use authara_core::auth::InvitedError;
    use authara_core::invitation::InvitationError;
    match state.auth.pending_invitation(code).await {
        Ok(found) => Ok(found),
        Err(InvitedError::Invitation(
            InvitationError::InvitationNotFound | InvitationError::InvalidRequest(_),
        )) => Err(ApiError::InvalidRequest("Invalid invitation code.")),
        Err(e) => Err(e.into()),
    }
}

//! Google sign-in in JSON (upstream's routes): `GET /auth/api/v1/oauth/google/options` gives the
//! client id and a fresh nonce (also set as the `authara_oauth_nonce` cookie), and
//! `POST /auth/api/v1/oauth/google` exchanges the ID token Google Identity Services returned for
//! a session. The token's `nonce` claim, the body's `nonce` and the cookie must all be the same
//! nonce, so a token obtained for another browser's sign-in is worthless here. Both answer `404`
//! while Google is not enabled.

use super::session::audience_param;
use super::tokens::{signed_in, AuthSession};
use crate::http::api::{json, openapi};
use crate::http::cookies;
use crate::http::error::ApiError;
use crate::http::extract::ClientInfo;
use crate::http::pages::{ask_limiter, Ask};
use crate::http::Routes;
use crate::state::AppState;
use authara_core::auth::{ExternalIdentity, ExternalSignInError};
use authara_core::jwt::Audience;
use authara_core::limits::{Family, LimitKey};
use authara_core::session::Issued;
use authara_core::store::UserRecord;
use authara_oidc::{Expected, IdTokenError};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use serde::{Deserialize, Serialize};

/// `GET /auth/api/v1/oauth/google/options`.
pub const OPTIONS_PATH: &str = "/auth/api/v1/oauth/google/options";
/// `POST /auth/api/v1/oauth/google`.
pub const LOGIN_PATH: &str = "/auth/api/v1/oauth/google";
/// The provider name Google identities are stored under.
pub const GOOGLE: &str = "google";

/// The Google routes.
pub fn routes() -> Routes {
    Routes::new()
        .get(OPTIONS_PATH, get_google_options)
        .post(LOGIN_PATH, post_google_login)
}

/// Upstream's `GoogleLoginOptions`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GoogleLoginOptions {
    /// The OAuth client id, for Google Identity Services.
    pub client_id: String,
    /// A fresh nonce for this sign-in: pass it to Google Identity Services and back here.
    pub nonce: String,
}

/// Upstream's `GoogleLoginRequest`. No `Debug`: it holds a credential.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GoogleLoginRequest {
    /// The ID token Google Identity Services returned.
    #[schema(max_length = 16384)]
    pub credential: String,
    /// The nonce of [`GoogleLoginOptions`], as the token carries it.
    #[schema(max_length = 128)]
    pub nonce: String,
}

/// `GET /auth/api/v1/oauth/google/options`: `200 {client_id, nonce}` and the nonce cookie.
#[utoipa::path(
    get,
    path = "/auth/api/v1/oauth/google/options",
    operation_id = "getGoogleLoginOptions",
    tag = "Authentication",
    summary = "Get Google login options",
    description = "The Google client id and a fresh nonce (256 random bits), also set as the \
        HttpOnly `authara_oauth_nonce` cookie for ten minutes. `404` unless \
        `AUTHARA_OAUTH_PROVIDERS` includes `google`.",
    security(()),
    responses(
        (status = 200, description = "The options; the nonce cookie set.", body = GoogleLoginOptions),
        (status = 404, response = openapi::NotFound),
    ),
    extensions(
        ("x-authara-set-cookies" = json!(["authara_oauth_nonce"])),
        ("x-authara-availability" = json!("google-enabled")),
    ),
)]
pub async fn get_google_options(State(state): State<AppState>) -> Result<Response, ApiError> {
    let google = state.google.as_ref().ok_or(ApiError::NotFound)?;
    let nonce = authara_core::random::token_256(&*state.random);
    let mut out = HeaderMap::new();
    state.cookies.set_oauth_nonce(&mut out, nonce.expose());
    let body = GoogleLoginOptions {
        client_id: google.client_id.clone(),
        nonce: nonce.expose().to_owned(),
    };
    Ok((out, Json(body)).into_response())
}

/// `POST /auth/api/v1/oauth/google?audience=`: `200` with the [`AuthSession`] and both cookies.
#[utoipa::path(
    post,
    path = "/auth/api/v1/oauth/google",
    operation_id = "loginWithGoogle",
    tag = "Authentication",
    summary = "Log in with a Google ID token",
    description = "Verifies the ID token (RS256 against Google's keys, issuer, audience = the \
        client id, expiry, `email_verified`) and its nonce, which must be the body's and the \
        `authara_oauth_nonce` cookie's (used once: the cookie is cleared). A known Google \
        identity signs its account in; an unknown one creates a password-less account with its \
        initial organization, unless its email is an existing account's: then `409 \
        account_link_required` and nothing is linked (sign in to that account and link Google \
        from it). `401` for a token or nonce that does not verify; `403` for a disabled account \
        or `admin` for a user who is no administrator; `404` unless Google is enabled. Rate \
        limited per IP with the login's limit (`429` + `Retry-After`).",
    params(openapi::AudienceQuery),
    request_body = GoogleLoginRequest,
    security(("csrfCookie" = [], "csrfHeader" = [], "oauthNonceCookie" = [])),
    responses(
        (status = 200, description = "Signed in; both session cookies set.", body = AuthSession),
        (status = 400, response = openapi::InvalidRequest),
        (status = 401, response = openapi::Unauthorized),
        (status = 403, response = openapi::Forbidden),
        (status = 404, response = openapi::NotFound),
        (status = 409, response = openapi::AccountLinkRequired),
        (status = 429, response = openapi::RateLimited),
    ),
    extensions(
        ("x-authara-set-cookies" = json!(["authara_access", "authara_refresh"])),
        ("x-authara-clear-cookies" = json!(["authara_oauth_nonce"])),
        ("x-authara-availability" = json!("google-enabled")),
    ),
)]
pub async fn post_google_login(
    State(state): State<AppState>,
    client: ClientInfo,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if state.google.is_none() {
        return Err(ApiError::NotFound);
    }
    let audience = audience_param(query.as_deref())?;
    let req: GoogleLoginRequest = json::parse(&headers, &body)?;
    ask_limiter(
        &state,
        &[Ask::Hit(LimitKey::new(Family::LoginIp, &client.ip))],
    )
    .await?;
    // The nonce the browser was given, the one it sends, and the token's: one and the same.
    let sent = req.nonce.as_str();
    if !authara_core::csrf::matches(cookies::read(&headers, cookies::OAUTH_NONCE), Some(sent)) {
        return Err(ApiError::Unauthorized);
    }
    let expected = Expected { nonce: Some(sent) };
    let mut out = match sign_in(&state, &client, &req.credential, expected, audience).await {
        Ok((user, issued)) => signed_in(&state, StatusCode::OK, &user, &issued)?,
        Err(GoogleRefusal::KeysUnavailable) => return Err(ApiError::Unavailable),
        Err(GoogleRefusal::NotVerified) => return Err(ApiError::Unauthorized),
        Err(GoogleRefusal::LinkRequired(_)) => return Err(ACCOUNT_LINK_REQUIRED),
        Err(GoogleRefusal::Forbidden) => return Err(ApiError::AudienceRefused),
        Err(GoogleRefusal::Failed(e)) => return Err(ApiError::internal(e)),
    };
    state.cookies.clear_oauth_nonce(out.headers_mut());
    Ok(out)
}

/// Why a Google sign-in started no session; each surface answers it in its own shape.
#[derive(Debug)]
pub enum GoogleRefusal {
    /// Google's keys could not be fetched (our dependency failed, not the caller).
    KeysUnavailable,
    /// The token did not verify, or names no usable identity.
    NotVerified,
    /// An existing account has the email: it must be proven first (the pages then offer the
    /// confirm page for this identity).
    LinkRequired(ExternalIdentity),
    /// A disabled account, or `admin` for a user who is no administrator.
    Forbidden,
    Failed(authara_core::auth::ServiceError),
}

/// Verifies `credential` (with `expected`'s nonce) and signs its Google identity in: the one
/// implementation behind the JSON route and the page callback. The caller has checked its
/// shape's CSRF pair and the rate limit.
pub async fn sign_in(
    state: &AppState,
    client: &ClientInfo,
    credential: &str,
    expected: Expected<'_>,
    audience: Audience,
) -> Result<(UserRecord, Issued), GoogleRefusal> {
    let google = state.google.as_ref().ok_or(GoogleRefusal::NotVerified)?;
    let verified = match google.verifier.verify(credential, expected).await {
        Ok(verified) => verified,
        Err(IdTokenError::Keys(e)) => {
            tracing::warn!(error = %e, "Google sign-in: keys unavailable");
            return Err(GoogleRefusal::KeysUnavailable);
        }
        Err(e) => {
            tracing::info!(reason = %e, "Google sign-in refused");
            return Err(GoogleRefusal::NotVerified);
        }
    };
    let identity = ExternalIdentity {
        provider: GOOGLE.to_owned(),
        subject: verified.subject,
        verified_email: verified.email.filter(|_| verified.email_verified),
    };
    state
        .auth
        .sign_in_with_identity(&identity, audience, client.origin())
        .await
        .map_err(|e| match e {
            ExternalSignInError::LinkRequired => GoogleRefusal::LinkRequired(identity.clone()),
            ExternalSignInError::Disabled | ExternalSignInError::NotAdmin => {
                GoogleRefusal::Forbidden
            }
            ExternalSignInError::Invalid => GoogleRefusal::NotVerified,
            ExternalSignInError::Failed(e) => GoogleRefusal::Failed(e),
        })
}

/// Upstream's `409 account_link_required`.
pub const ACCOUNT_LINK_REQUIRED: ApiError = ApiError::Refused {
    status: StatusCode::CONFLICT,
    code: "account_link_required",
    message:
        "An account with this email exists. Sign in to it, then link Google from your account page.",
};

//! Google sign-in from the pages: `POST /auth/oauth/google/callback` in both shapes
//! (decision D2).
//!
//! - **The redirect post** of Google Identity Services (`ux_mode=redirect`, what the login and
//!   signup pages use: no JavaScript of ours). Google's page posts `credential` and
//!   `g_csrf_token` from its own origin. The token must equal the `g_csrf_token` cookie
//!   Google's script set on ours (its double submit, SPEC §9), and the answer is a `303` to
//!   `return_to`.
//! - **Upstream HEAD's JavaScript post.** It carries `credential` and `nonce` (equal to the
//!   `authara_oauth_nonce` cookie and to the token's claim) with our CSRF token from our own
//!   origin, and the answer is `200` with `X-Authara-Redirect`.
//!
//! The route is exempt from the CSRF layer, because the first shape comes from Google's origin;
//! this handler makes each shape's check itself, before anything else. A post that fails a check
//! creates nothing and never gets a `5xx`: a token that does not verify is `401`, a missing or
//! mismatched token `400` or `403`.

use super::{
    ask_limiter, refuse_limited, render_error_page, set_session_cookies, signed_in_redirect, Ask,
};
use crate::http::api::v1::oauth::{sign_in as google_sign_in, GoogleRefusal};
use crate::http::cookies;
use crate::http::error::PageError;
use crate::http::extract::{ClientInfo, Htmx, QueryReturnTo};
use crate::http::form;
use crate::http::Routes;
use crate::state::AppState;
use authara_core::domain::ReturnTo;
use authara_core::jwt::Audience;
use authara_core::limits::{Family, LimitKey};
use authara_oidc::Expected;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// `POST /auth/oauth/google/callback`.
pub const CALLBACK: &str = "/auth/oauth/google/callback";
/// The cookie Google Identity Services sets for its redirect post's double submit.
pub const G_CSRF_COOKIE: &str = "g_csrf_token";
/// Where the JavaScript post is told to go.
pub static X_AUTHARA_REDIRECT: HeaderName = HeaderName::from_static("x-authara-redirect");

/// The Content-Security-Policy of a page showing the Google button: ours, plus exactly what
/// Google Identity Services needs (its script, its style, its iframe and its XHRs).
pub const GOOGLE_CSP: &str = "default-src 'self'; \
    script-src 'self' https://accounts.google.com/gsi/client; \
    style-src 'self' https://accounts.google.com/gsi/style; \
    img-src 'self' data:; \
    frame-src https://accounts.google.com/gsi/; \
    connect-src 'self' https://accounts.google.com/gsi/; \
    form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// The callback route.
pub fn routes() -> Routes {
    Routes::new().post(CALLBACK, post_google_callback)
}

/// Both shapes' fields. No `Debug`: it holds a credential.
#[derive(Default, serde::Deserialize)]
struct CallbackForm {
    credential: Option<String>,
    g_csrf_token: Option<String>,
    nonce: Option<String>,
    csrf_token: Option<String>,
}

/// Which shape a post is, once its own check passed.
enum Shape {
    Redirect,
    Script,
}

const TRY_AGAIN: &str = "Google sign-in could not be completed. Please try again.";

/// `POST /auth/oauth/google/callback?return_to=`.
pub async fn post_google_callback(
    State(state): State<AppState>,
    client: ClientInfo,
    Htmx(htmx): Htmx,
    QueryReturnTo(rt): QueryReturnTo,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    if state.google.is_none() {
        return Err(PageError::new(StatusCode::NOT_FOUND, "Page not found."));
    }
    let f: CallbackForm = form::parse(&body);
    let shape = if let Some(g) = f.g_csrf_token.as_deref() {
        if !authara_core::csrf::matches(cookies::read(&headers, G_CSRF_COOKIE), Some(g)) {
            tracing::info!("Google callback refused: g_csrf_token missing or wrong");
            return Err(PageError::new(StatusCode::BAD_REQUEST, TRY_AGAIN));
        }
        Shape::Redirect
    } else {
        // Our own page's script: the CSRF layer's checks, made here.
        if crate::http::origin::is_cross_origin(&headers, &state.public_origin) {
            return Err(PageError::new(StatusCode::FORBIDDEN, TRY_AGAIN));
        }
        let header = headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .or(f.csrf_token.as_deref());
        if !authara_core::csrf::matches(cookies::read(&headers, cookies::CSRF), header) {
            return Err(PageError::new(StatusCode::FORBIDDEN, TRY_AGAIN));
        }
        if !authara_core::csrf::matches(
            cookies::read(&headers, cookies::OAUTH_NONCE),
            f.nonce.as_deref(),
        ) {
            return Err(PageError::new(StatusCode::UNAUTHORIZED, TRY_AGAIN));
        }
        Shape::Script
    };
    if let Err(limited) = ask_limiter(
        &state,
        &[Ask::Hit(LimitKey::new(Family::LoginIp, &client.ip))],
    )
    .await
    {
        return Ok(refuse_limited(render_error_page, limited));
    }
    let credential = f.credential.unwrap_or_default();
    let expected = match shape {
        // The redirect post's token carries no nonce of ours: the g_csrf_token pair stands in.
        Shape::Redirect => Expected::default(),
        Shape::Script => Expected {
            nonce: f.nonce.as_deref(),
        },
    };
    let signed = google_sign_in(&state, &client, &credential, expected, Audience::App).await;
    let issued = match signed {
        Ok((_, issued)) => issued,
        Err(GoogleRefusal::KeysUnavailable) => {
            return Err(PageError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Google sign-in is unavailable for a moment. Please try again shortly.",
            ))
        }
        Err(GoogleRefusal::NotVerified) => {
            return Err(PageError::new(StatusCode::UNAUTHORIZED, TRY_AGAIN))
        }
        Err(GoogleRefusal::LinkRequired(identity)) => {
            // Upstream's HTML flow: the confirm page proves the existing account, then links.
            let (to, out) = super::provider_links::pending(
                &state,
                &identity,
                rt.as_ref().map(ReturnTo::as_str),
            )
            .await?;
            let mut res = match shape {
                Shape::Redirect => crate::http::respond::redirect(htmx, &to, out),
                Shape::Script => script_redirect(&to, out),
            };
            state.cookies.clear_oauth_nonce(res.headers_mut());
            return Ok(res);
        }
        Err(GoogleRefusal::Forbidden) => {
            return Err(PageError::new(
                StatusCode::FORBIDDEN,
                "This account is disabled.",
            ))
        }
        Err(GoogleRefusal::Failed(e)) => return Err(PageError::internal(e)),
    };
    let mut res = match shape {
        Shape::Redirect => signed_in_redirect(&state, htmx, &issued, rt),
        Shape::Script => {
            let mut out = HeaderMap::new();
            set_session_cookies(state.cookies, &issued, &mut out);
            script_redirect(rt.unwrap_or_else(ReturnTo::root).as_str(), out)
        }
    };
    state.cookies.clear_oauth_nonce(res.headers_mut());
    Ok(res)
}

/// The script shape's answer: `200` with `X-Authara-Redirect: to` and `out`.
fn script_redirect(to: &str, mut out: HeaderMap) -> Response {
    if let Ok(v) = HeaderValue::from_str(to) {
        out.insert(X_AUTHARA_REDIRECT.clone(), v);
    }
    (StatusCode::OK, out).into_response()
}

//! Who is asking: the one place that decides authentication, for pages ([`SignedIn`]), the JSON
//! API ([`ApiUser`]) and administrator actions ([`AdminUser`]). Handlers take one of these as
//! an argument and never read a session cookie themselves.

use crate::http::cookies;
use crate::http::error::{ApiError, PageError};
use crate::http::pages::set_session_cookies;
use crate::http::respond::{is_htmx, login_href, redirect};
use crate::state::AppState;
use authara_core::jwt::Audience;
use authara_core::session::{AuthError, Authenticated, RefreshError};
use authara_core::store::StoreError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};

/// Where the login page sends a visitor back to when a signed-in form action found them signed
/// out: the account page, where every such action starts today.
const ACCOUNT: &str = "/auth/account";

/// Longest bearer token read from `Authorization`; real access tokens are a few hundred bytes.
const MAX_BEARER_LEN: usize = 4096;

/// What a request's `Authorization` header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bearer<'a> {
    /// No `Authorization` header.
    Absent,
    /// Exactly one `Authorization: Bearer <token>` (scheme case-insensitive, RFC 6750).
    Token(&'a str),
    /// Anything else: another scheme, an empty or oversized token, two headers. Refused as
    /// `401`, never read as "absent" (which would fall back to a cookie the client did not
    /// mean).
    Malformed,
}

/// Reads the request's bearer token (see [`Bearer`]).
pub fn bearer(headers: &HeaderMap) -> Bearer<'_> {
    let mut all = headers.get_all(axum::http::header::AUTHORIZATION).iter();
    let (Some(value), None) = (all.next(), all.next()) else {
        return if headers.contains_key(axum::http::header::AUTHORIZATION) {
            Bearer::Malformed
        } else {
            Bearer::Absent
        };
    };
    let Ok(value) = value.to_str() else {
        return Bearer::Malformed;
    };
    let Some((scheme, token)) = value.split_once(' ') else {
        return Bearer::Malformed;
    };
    let token = token.trim_matches(' ');
    let plausible = scheme.eq_ignore_ascii_case("bearer")
        && !token.is_empty()
        && token.len() <= MAX_BEARER_LEN
        && token.bytes().all(|b| b.is_ascii_graphic());
    if plausible {
        Bearer::Token(token)
    } else {
        Bearer::Malformed
    }
}

/// An `Authorization` header that is no single, plausible `Bearer` token ([`Bearer::Malformed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedAuthorization;

/// The access token a JSON request presents: `Authorization: Bearer` when the request has that
/// header, else the `authara_access` cookie.
pub fn presented_access(headers: &HeaderMap) -> Result<Option<&str>, MalformedAuthorization> {
    match bearer(headers) {
        Bearer::Token(t) => Ok(Some(t)),
        Bearer::Malformed => Err(MalformedAuthorization),
        Bearer::Absent => Ok(cookies::read(headers, cookies::ACCESS)),
    }
}

/// The user of the access cookie alone, without refreshing: `None` when there is no cookie or
/// it does not authenticate a live session. The login page asks this.
pub async fn access_user(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Authenticated>, StoreError> {
    match cookies::read(headers, cookies::ACCESS) {
        Some(access) => live_user(state, access).await,
        None => Ok(None),
    }
}

/// The user of an access token if it authenticates a live session right now.
async fn live_user(state: &AppState, access: &str) -> Result<Option<Authenticated>, StoreError> {
    match state.sessions.authenticate(access).await {
        Ok(auth) => Ok(Some(auth)),
        Err(AuthError::Unauthenticated) => Ok(None),
        Err(AuthError::Store(e)) => Err(e),
    }
}

/// A signed-in page visitor (SPEC §7), and the cookies that signing them in on the fly
/// produced, which the page must set.
///
/// Authenticated by the access cookie; with an expired or missing access token but a valid
/// refresh cookie, the session is refreshed on the fly (new cookies in [`SignedIn::cookies`]).
/// Otherwise the request is answered with a redirect to the login page, whose `return_to` is the
/// page asked for (for a `GET`) or the account page (for a form action), clearing a refresh
/// cookie that no longer works.
pub struct SignedIn {
    /// The user and the claims of their access token.
    pub auth: Authenticated,
    /// `Set-Cookie` headers of an on-the-fly refresh; empty when the access cookie was valid.
    pub cookies: HeaderMap,
}

/// Why a page request is not [`SignedIn`]: sign in first, or the check itself failed.
pub enum SignInRequired {
    /// The redirect to the login page (with any cookie-clearing headers).
    Redirect(Response),
    /// Storage or signing failed: the error page.
    Failed(PageError),
}

impl IntoResponse for SignInRequired {
    fn into_response(self) -> Response {
        match self {
            Self::Redirect(res) => res,
            Self::Failed(e) => e.into_response(),
        }
    }
}

impl From<StoreError> for SignInRequired {
    fn from(e: StoreError) -> Self {
        Self::Failed(e.into())
    }
}

/// The signed-in visitor of a request with `headers`, refreshing the session on the fly as
/// [`SignedIn`] does; `Ok(None)` (with cookie-clearing headers in `out`) when there is none.
pub async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
    out: &mut HeaderMap,
) -> Result<Option<SignedIn>, PageError> {
    if let Some(auth) = access_user(state, headers).await? {
        return Ok(Some(SignedIn {
            auth,
            cookies: HeaderMap::new(),
        }));
    }
    if let Some(refresh) = cookies::read(headers, cookies::REFRESH) {
        match state.sessions.refresh(refresh, Audience::App).await {
            Ok(issued) => match state.sessions.authenticate(&issued.access.token).await {
                Ok(auth) => {
                    let mut set = HeaderMap::new();
                    set_session_cookies(state.cookies, &issued, &mut set);
                    return Ok(Some(SignedIn { auth, cookies: set }));
                }
                Err(AuthError::Store(e)) => return Err(e.into()),
                Err(AuthError::Unauthenticated) => {}
            },
            Err(RefreshError::Store(e)) => return Err(e.into()),
            Err(e @ RefreshError::Signing) => return Err(PageError::internal(e)),
            Err(RefreshError::Invalid | RefreshError::NotAdmin) => {}
        }
        state.cookies.clear_session(out);
    }
    Ok(None)
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = SignInRequired;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, SignInRequired> {
        let mut out = HeaderMap::new();
        if let Some(user) = signed_in(state, &parts.headers, &mut out)
            .await
            .map_err(SignInRequired::Failed)?
        {
            return Ok(user);
        }
        let back = if parts.method == Method::GET {
            parts.uri.path()
        } else {
            ACCOUNT
        };
        Err(SignInRequired::Redirect(redirect(
            is_htmx(&parts.headers),
            &login_href(Some(back)),
            out,
        )))
    }
}

/// The user of a JSON API request: the access token (`Authorization: Bearer`, else the
/// `authara_access` cookie; see [`presented_access`]) must authenticate a live session (no
/// refresh on the fly: API clients refresh explicitly). Otherwise `401 unauthorized`.
pub struct ApiUser(pub Authenticated);

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Ok(Some(access)) = presented_access(&parts.headers) else {
            return Err(ApiError::Unauthorized);
        };
        match live_user(state, access).await? {
            Some(auth) => Ok(Self(auth)),
            None => Err(ApiError::Unauthorized),
        }
    }
}

/// An administrator acting through a page form: an admin access token whose user is still an
/// administrator right now, checked against the database (never the session cache), so rights
/// revoked elsewhere count at once. `401` page without a live session, `403` when it is not an
/// administrator session.
pub struct AdminUser(pub Authenticated);

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let sign_in = || PageError::new(StatusCode::UNAUTHORIZED, "Please sign in.");
        let Some(access) = cookies::read(&parts.headers, cookies::ACCESS) else {
            return Err(sign_in());
        };
        let admin = match state.sessions.authenticate_fresh(access).await {
            Ok(a) => a,
            Err(AuthError::Unauthenticated) => return Err(sign_in()),
            Err(AuthError::Store(e)) => return Err(e.into()),
        };
        // The token must be an admin token, and the user must still be an admin right now.
        if !(admin.claims.has_audience(Audience::Admin)
            && admin.claims.is_admin()
            && admin.user.is_admin)
        {
            return Err(PageError::new(
                StatusCode::FORBIDDEN,
                "This action needs an administrator session.",
            ));
        }
        Ok(Self(admin))
    }
}

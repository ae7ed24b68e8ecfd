//! Errors as responses: `ApiError` for JSON routes (SPEC §8 envelope), `PageError` for HTML.

use super::pages::render_error_page;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::time::Duration;

/// A JSON API error.
#[derive(Debug)]
pub enum ApiError {
    Unauthorized,
    /// `401 unauthorized` for a login whose email or password is wrong (or whose account has
    /// no password): one answer for all of them.
    InvalidCredentials,
    InvalidRequest(&'static str),
    /// `400 invalid_request` whose message names what is wrong with the input (a domain
    /// validation message, never a secret).
    InvalidInput(String),
    /// `403 forbidden`: the account may not have a session for the audience asked for
    /// (disabled, or `admin` for a user who is no administrator).
    AudienceRefused,
    CsrfInvalid,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    PayloadTooLarge,
    /// The request body did not arrive within `AUTHARA_HTTP_BODY_TIMEOUT`.
    RequestTimeout,
    RateLimited(Duration),
    /// An internal failure; the source is logged once here and never shown.
    Internal(Box<dyn std::error::Error + Send + Sync>),
    Unavailable,
    /// An answer with one of upstream's specific codes (`organization_not_found`, …).
    Refused {
        status: StatusCode,
        code: &'static str,
        message: &'static str,
    },
    /// Password hashing is saturated (`LoginError::Busy`, `SignupError::Busy`): `503
    /// unavailable` with `Retry-After`, for the JSON login and signup routes.
    Busy,
}

/// Whether an internal failure is the database being unreachable or failing
/// ([`StoreError::Unavailable`], possibly inside a service's error): answered `503
/// unavailable`, not `500`, since it is the dependency that failed and a retry may succeed.
///
/// [`StoreError::Unavailable`]: authara_core::store::StoreError::Unavailable
fn is_store_unavailable(e: &dyn std::any::Any) -> bool {
    use authara_core::auth::ServiceError;
    use authara_core::org::OrgError;
    use authara_core::session::{AuthError, IssueError, RefreshError, SwitchError};
    use authara_core::store::StoreError;
    let store = e
        .downcast_ref::<StoreError>()
        .or_else(|| match e.downcast_ref::<ServiceError>()? {
            ServiceError::Store(s) => Some(s),
            _ => None,
        })
        .or_else(|| match e.downcast_ref::<RefreshError>()? {
            RefreshError::Store(s) => Some(s),
            _ => None,
        })
        .or_else(|| match e.downcast_ref::<IssueError>()? {
            IssueError::Store(s) => Some(s),
            IssueError::Signing | IssueError::NoMembership => None,
        })
        .or_else(|| match e.downcast_ref::<AuthError>()? {
            AuthError::Store(s) => Some(s),
            AuthError::Unauthenticated => None,
        })
        .or_else(|| match e.downcast_ref::<OrgError>()? {
            OrgError::Store(s) => Some(s),
            _ => None,
        })
        .or_else(|| match e.downcast_ref::<SwitchError>()? {
            SwitchError::Issue(IssueError::Store(s)) => Some(s),
            _ => None,
        });
    matches!(store, Some(StoreError::Unavailable(_)))
}

impl ApiError {
    /// Wraps an internal failure; the database being unavailable is [`ApiError::Unavailable`].
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        if is_store_unavailable(&e) {
            tracing::warn!(error = ?e, "database unavailable");
            return Self::Unavailable;
        }
        Self::Internal(Box::new(e))
    }

    /// Status, code and message.
    pub fn parts(&self) -> (StatusCode, &'static str, &str) {
        match self {
            Self::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Authentication required.",
            ),
            Self::InvalidCredentials => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Invalid email or password.",
            ),
            Self::InvalidRequest(m) => (StatusCode::BAD_REQUEST, "invalid_request", m),
            Self::InvalidInput(m) => (StatusCode::BAD_REQUEST, "invalid_request", m),
            Self::AudienceRefused => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "Account cannot access requested audience.",
            ),
            Self::CsrfInvalid => (
                StatusCode::FORBIDDEN,
                "csrf_invalid",
                "Missing or invalid CSRF token.",
            ),
            Self::Forbidden => (StatusCode::FORBIDDEN, "forbidden", "Not allowed."),
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found", "Not found."),
            Self::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed.",
            ),
            Self::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Request body too large.",
            ),
            Self::RequestTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "Request body not received in time.",
            ),
            Self::RateLimited(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many requests.",
            ),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "Internal server error.",
            ),
            Self::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable.",
            ),
            Self::Refused {
                status,
                code,
                message,
            } => (*status, code, message),
            Self::Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "The server is busy. Please try again in a moment.",
            ),
        }
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
}

/// A JSON body in the error envelope.
pub fn envelope(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::to_vec(&Envelope {
        error: Body { code, message },
    })
    .unwrap_or_default();
    let mut res = (status, body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(e) = &self {
            tracing::error!(error = ?e, "internal error");
        }
        let (status, code, message) = self.parts();
        let mut res = envelope(status, code, message);
        match self {
            Self::RateLimited(after) => set_retry_after(&mut res, after),
            Self::Busy => set_retry_after(&mut res, super::pages::BUSY_RETRY_AFTER),
            Self::Unavailable => set_retry_after(&mut res, UNAVAILABLE_RETRY_AFTER),
            _ => {}
        }
        res
    }
}

/// How soon a client answered `503` because the database is unavailable may try again.
pub const UNAVAILABLE_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Sets `Retry-After` in whole seconds, at least 1.
pub fn set_retry_after(res: &mut Response, after: Duration) {
    res.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(retry_after_secs(after)),
    );
}

/// `after` rounded up to whole seconds, at least 1 (a client told 0 would retry at once).
fn retry_after_secs(after: Duration) -> u64 {
    (after.as_secs() + u64::from(after.subsec_nanos() > 0)).max(1)
}

impl From<authara_core::store::StoreError> for ApiError {
    fn from(e: authara_core::store::StoreError) -> Self {
        Self::internal(e)
    }
}

impl From<authara_core::limits::Limited> for ApiError {
    fn from(l: authara_core::limits::Limited) -> Self {
        Self::RateLimited(l.retry_after)
    }
}

/// An HTML error page.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub message: &'static str,
    /// Logged once, never shown.
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl PageError {
    /// An error page with a message for the user.
    pub fn new(status: StatusCode, message: &'static str) -> Self {
        Self {
            status,
            message,
            source: None,
        }
    }

    /// A 500 page for an internal failure; the database being unavailable is a 503 page.
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        if is_store_unavailable(&e) {
            tracing::warn!(error = ?e, "database unavailable");
            return Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is unavailable for a moment. Please try again shortly.",
            );
        }
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "Something went wrong. Please try again.",
            source: Some(Box::new(e)),
        }
    }

    /// 404.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "This page does not exist.")
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for PageError {
    fn from(e: E) -> Self {
        Self::internal(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        if let Some(e) = &self.source {
            tracing::error!(error = ?e, "internal error");
        }
        let mut res = render_error_page(self.status, self.message);
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            set_retry_after(&mut res, UNAVAILABLE_RETRY_AFTER);
        }
        res
    }
}

/// Whether a path belongs to the JSON API (errors there are JSON).
pub fn is_api_path(path: &str) -> bool {
    path.starts_with("/auth/api/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_failure_is_503_unavailable_wherever_it_is_wrapped() {
        use authara_core::auth::{LoginError, ServiceError};
        use authara_core::session::{AuthError, RefreshError};
        use authara_core::store::StoreError;
        let down = || StoreError::unavailable(std::io::Error::other("connection refused"));
        assert!(matches!(ApiError::internal(down()), ApiError::Unavailable));
        assert!(matches!(
            ApiError::internal(authara_core::org::OrgError::Store(down())),
            ApiError::Unavailable
        ));
        assert!(matches!(
            ApiError::internal(authara_core::session::SwitchError::Issue(
                authara_core::session::IssueError::Store(down())
            )),
            ApiError::Unavailable
        ));
        assert!(matches!(
            ApiError::internal(ServiceError::Store(down())),
            ApiError::Unavailable
        ));
        assert!(matches!(
            ApiError::internal(RefreshError::Store(down())),
            ApiError::Unavailable
        ));
        assert!(matches!(
            ApiError::internal(AuthError::Store(down())),
            ApiError::Unavailable
        ));
        for page in [
            PageError::internal(down()),
            PageError::internal(ServiceError::Store(down())),
            PageError::internal(RefreshError::Store(down())),
        ] {
            assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
            assert!(page.source.is_none());
        }
        // Anything else is still a 500.
        assert!(matches!(
            ApiError::internal(StoreError::NotFound),
            ApiError::Internal(_)
        ));
        assert!(matches!(
            ApiError::internal(RefreshError::Signing),
            ApiError::Internal(_)
        ));
        assert_eq!(
            PageError::internal(LoginError::Failed(ServiceError::Signing)).status,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds_and_is_at_least_one() {
        for (after, want) in [
            (Duration::ZERO, 1),
            (Duration::from_millis(500), 1),
            (Duration::from_secs(1), 1),
            (Duration::from_millis(1200), 2),
            (Duration::from_secs(60), 60),
        ] {
            assert_eq!(retry_after_secs(after), want, "{after:?}");
        }
        let mut res = StatusCode::TOO_MANY_REQUESTS.into_response();
        set_retry_after(&mut res, Duration::from_millis(500));
        assert_eq!(res.headers()[header::RETRY_AFTER], "1");
    }

    #[test]
    fn a_refusal_of_the_limiter_is_the_rate_limited_envelope_with_retry_after() {
        let limited = authara_core::limits::Limited {
            retry_after: Duration::from_millis(41_500),
        };
        let res = ApiError::from(limited).into_response();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers()[header::RETRY_AFTER], "42");
        assert_eq!(ApiError::from(limited).parts().1, "rate_limited");
    }

    #[test]
    fn busy_is_503_unavailable_with_retry_after() {
        let res = ApiError::Busy.into_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[header::RETRY_AFTER], "1");
        assert_eq!(ApiError::Busy.parts().1, "unavailable");
    }
}

//! Middleware: request ids and the request log line, security headers, the body limit,
//! CSRF, and turning panics into 500s.

use super::cookies;
use super::error::{envelope, is_api_path, ApiError};
use super::pages::render_error_page;
use crate::state::AppState;
use axum::body::{to_bytes, Body};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Instant;
use tracing::Instrument as _;

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// `X-Request-Id`: set on every request by [`request_id`] before any handler runs.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static CSRF_HEADER: HeaderName = HeaderName::from_static("x-csrf-token");

/// Content-Security-Policy for HTML: no inline script at all, no framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// Request ids for requests that brought none: UUID-shaped, a random per-process prefix and a
/// counter, so that no request pays for a call into the operating system's RNG. Request ids are
/// not secrets.
#[derive(Debug)]
pub struct RequestIds {
    prefix: [u8; 8],
    counter: std::sync::atomic::AtomicU64,
}

impl RequestIds {
    /// A generator with a fresh random prefix.
    pub fn new(random: &dyn authara_core::random::Random) -> Self {
        let mut prefix = [0u8; 8];
        random.fill(&mut prefix);
        Self {
            prefix,
            counter: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The next id.
    pub fn next(&self) -> uuid::Uuid {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut bytes = [0u8; 16];
        let (head, tail) = bytes.split_at_mut(8);
        head.copy_from_slice(&self.prefix);
        tail.copy_from_slice(&n.to_be_bytes());
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

fn sane_request_id(v: &HeaderValue) -> Option<&str> {
    let s = v.to_str().ok()?;
    let ok = (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    ok.then_some(s)
}

/// Gives every request an `X-Request-Id` (the client's, if sane), runs it inside a span that
/// carries the id, so every log line of the request shows it, and logs one line at the end.
pub async fn request_id(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let sent = req
        .headers()
        .get(&REQUEST_ID)
        .filter(|v| sane_request_id(v).is_some())
        .cloned();
    let value = sent.or_else(|| {
        let mut buf = uuid::Uuid::encode_buffer();
        HeaderValue::from_str(state.request_ids.next().hyphenated().encode_lower(&mut buf)).ok()
    });
    if let Some(v) = &value {
        // One value, cheaply cloned: the request gets exactly the id the response shows.
        req.headers_mut().insert(REQUEST_ID.clone(), v.clone());
    }
    // Both kinds are ASCII, so this is the id itself.
    let id = value
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path());
    let start = Instant::now();
    let mut res = next.run(req).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::info!(
            status = res.status().as_u16(),
            latency_us = start.elapsed().as_micros() as u64,
            "request finished"
        );
    });
    if let Some(v) = value {
        res.headers_mut().insert(REQUEST_ID.clone(), v);
    }
    res
}

/// SPEC §11 headers.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    add_security_headers(&mut res);
    res
}

fn add_security_headers(res: &mut Response) {
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    let is_html = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    // A page that shows the Google button set its own policy (ours plus Google's script).
    if is_html && !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
}

/// The answer to a request that outlived `AUTHARA_HTTP_REQUEST_TIMEOUT`: `503 unavailable`
/// (JSON under the API, a page elsewhere), with the SPEC §11 headers.
pub fn request_timed_out(path: &str) -> Response {
    let mut res = error_for(is_api_path(path), ApiError::Unavailable);
    add_security_headers(&mut res);
    res
}

/// How long a request's body may take to arrive; set per request by the server.
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeout(pub std::time::Duration);

fn error_for(is_api: bool, e: ApiError) -> Response {
    if is_api {
        e.into_response()
    } else {
        let (status, _, message) = e.parts();
        render_error_page(status, message)
    }
}

/// Buffers the request body up to 64 KiB; larger bodies get `413` before any handler runs, and
/// a body that does not arrive within the request's [`BodyTimeout`] gets `408`.
pub async fn body_limit(req: Request, next: Next) -> Response {
    let within = req.extensions().get::<BodyTimeout>().map(|t| t.0);
    let is_api = is_api_path(req.uri().path());
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return error_for(is_api, ApiError::PayloadTooLarge);
    }
    let (parts, body) = req.into_parts();
    let read = to_bytes(body, MAX_BODY);
    let read = match within {
        Some(d) => match tokio::time::timeout(d, read).await {
            Ok(r) => r,
            Err(_) => {
                tracing::info!("request refused: body not received in time");
                return error_for(is_api, ApiError::RequestTimeout);
            }
        },
        None => read.await,
    };
    let bytes = match read {
        Ok(b) => b,
        Err(_) => return error_for(is_api, ApiError::PayloadTooLarge),
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[derive(Default, serde::Deserialize)]
struct CsrfField {
    csrf_token: Option<String>,
}

/// SPEC §5: every state-changing request (any method but `GET`, `HEAD`, `OPTIONS`, `TRACE`) of
/// every route not in [`CSRF_EXEMPT`](super::CSRF_EXEMPT) must repeat the `authara_csrf` cookie in
/// the `X-CSRF-Token` header or the `csrf_token` form field, and must not come from another
/// origin than `PUBLIC_URL` (`Origin`, `Sec-Fetch-Site`: [`super::origin::is_cross_origin`]).
/// Both failures are the same `403`. Applied by the router as a route layer, after routing, so
/// unknown routes and methods get 404/405 first.
pub async fn require_csrf(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !super::is_state_changing(req.method()) {
        return next.run(req).await;
    }
    let exempt = req
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|p| super::is_csrf_exempt(req.method(), p.as_str()));
    let bearer_alone =
        is_api_path(req.uri().path()) && authenticates_by_bearer_alone(&state, req.headers());
    if exempt || bearer_alone {
        return next.run(req).await;
    }
    let is_api = is_api_path(req.uri().path());
    if super::origin::is_cross_origin(req.headers(), &state.public_origin) {
        // Names what was seen (escaped, bounded), so that a PUBLIC_URL that does not match the
        // address in the browser (localhost vs 127.0.0.1) is easy to spot.
        let seen = |name: &str| {
            req.headers().get(name).map(|v| {
                let s = String::from_utf8_lossy(v.as_bytes());
                s.chars().take(100).collect::<String>()
            })
        };
        tracing::info!(
            origin = ?seen("origin"),
            sec_fetch_site = ?seen("sec-fetch-site"),
            public_origin = %state.public_origin,
            "request refused: sent from another origin than PUBLIC_URL"
        );
        return error_for(is_api, ApiError::CsrfInvalid);
    }
    let (parts, body) = req.into_parts();
    let cookie = cookies::read(&parts.headers, cookies::CSRF);
    let mut headers = parts.headers.get_all(&CSRF_HEADER).iter();
    let (ok, body) = match (headers.next(), headers.next()) {
        (Some(h), None) => (authara_core::csrf::matches(cookie, h.to_str().ok()), body),
        // Two tokens in headers: refused, whatever they say.
        (Some(_), Some(_)) => (false, body),
        (None, _) => {
            let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
                return error_for(is_api, ApiError::PayloadTooLarge);
            };
            let field: CsrfField = super::form::parse(&bytes);
            let ok = authara_core::csrf::matches(cookie, field.csrf_token.as_deref());
            (ok, Body::from(bytes))
        }
    };
    if ok {
        next.run(Request::from_parts(parts, body)).await
    } else {
        tracing::info!("request refused: CSRF token missing or wrong");
        error_for(is_api, ApiError::CsrfInvalid)
    }
}

/// A JSON API request that carries no cookie at all and authenticates with `Authorization:
/// Bearer` and a validly signed access token (a mobile client) needs neither the CSRF token nor the origin
/// check: both protect the credentials a browser attaches by itself, and such a request has none.
/// A cross-site page cannot make a browser send an `Authorization` header without a CORS
/// preflight, which this server never grants. A request with any cookie keeps every check.
fn authenticates_by_bearer_alone(state: &AppState, headers: &axum::http::HeaderMap) -> bool {
    if headers.contains_key(header::COOKIE) {
        return false;
    }
    match super::extract::bearer(headers) {
        super::extract::Bearer::Token(t) => state.sessions.is_signed_access_token(t),
        _ => false,
    }
}

/// Runs the rest of the request (routing, checks, handler) on a task of its own, so that a
/// client that goes away mid-request never cancels a handler halfway through its work: a
/// cancelled database transaction could otherwise leave a pooled connection in a state the
/// next request trips over (the malformed-request sweep found exactly that on SQLite). The
/// response is dropped if nobody waits for it any more; a panic becomes the JSON 500.
pub async fn run_to_completion(req: Request, next: Next) -> Response {
    // The task keeps the request's span, so its log lines keep the request id.
    match tokio::spawn(next.run(req).in_current_span()).await {
        Ok(res) => res,
        Err(e) => panic_response(Box::new(e.to_string())),
    }
}

/// A panic inside a handler becomes a JSON 500; the connection is never dropped.
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    envelope(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "Internal server error.",
    )
}

/// Unknown path: JSON 404 under the API, an HTML page elsewhere.
pub async fn not_found(req: Request) -> Response {
    error_for(is_api_path(req.uri().path()), ApiError::NotFound)
}

/// Known path, wrong method: JSON 405 under the API, an HTML page elsewhere.
pub async fn method_not_allowed(req: Request) -> Response {
    error_for(is_api_path(req.uri().path()), ApiError::MethodNotAllowed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::middleware::from_fn;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt as _;
    use tower_http::catch_panic::CatchPanicLayer;

    #[tokio::test]
    async fn a_panicking_handler_becomes_a_json_500() {
        let app = Router::new()
            .route(
                "/auth/api/v1/boom",
                get(|| async {
                    panic!("boom");
                    #[allow(unreachable_code)]
                    ()
                }),
            )
            .layer(CatchPanicLayer::custom(panic_response))
            .layer(from_fn(security_headers));
        let res = app
            .oneshot(
                Request::get("/auth/api/v1/boom")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(res.headers()["content-type"], "application/json");
        assert_eq!(res.headers()["cache-control"], "no-store");
        let body = to_bytes(res.into_body(), 1024).await.unwrap();
        assert_eq!(
            &body[..],
            br#"{"error":{"code":"internal_error","message":"Internal server error."}}"#
        );
    }

    #[test]
    fn generated_request_ids_are_distinct_uuids() {
        let ids = RequestIds::new(&authara_core::random::OsRandom);
        let a = ids.next();
        let b = ids.next();
        assert_ne!(a, b);
        assert_eq!(a.get_version_num(), 4);
    }

    #[test]
    fn request_ids_must_be_short_and_plain() {
        let ok = HeaderValue::from_static("req-1.2_3:4");
        assert_eq!(sane_request_id(&ok), Some("req-1.2_3:4"));
        for bad in ["", "has space", "<script>", &"a".repeat(129)] {
            let v = HeaderValue::from_str(bad).unwrap();
            assert_eq!(sane_request_id(&v), None, "{bad}");
        }
    }
}

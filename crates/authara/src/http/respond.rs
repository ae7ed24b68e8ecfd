//! Response helpers shared by the HTML routes.

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

/// `HX-Redirect`.
pub static HX_REDIRECT: HeaderName = HeaderName::from_static("hx-redirect");

/// Whether the request came from htmx (`HX-Request: true`).
pub fn is_htmx(headers: &HeaderMap) -> bool {
    headers
        .get("hx-request")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"))
}

/// A redirect as SPEC §7 wants it: `303` with `Location`, or for htmx `200`; both carry
/// `HX-Redirect`. `extra` headers (cookies) are added.
pub fn redirect(htmx: bool, location: &str, extra: HeaderMap) -> Response {
    let Ok(loc) = HeaderValue::from_str(location) else {
        return redirect(htmx, "/", extra);
    };
    let mut res = if htmx {
        StatusCode::OK.into_response()
    } else {
        let mut r = StatusCode::SEE_OTHER.into_response();
        r.headers_mut().insert(header::LOCATION, loc.clone());
        r
    };
    res.headers_mut().insert(HX_REDIRECT.clone(), loc);
    res.headers_mut().extend(extra);
    res
}

/// An HTML body with a status and extra headers.
pub fn html(status: StatusCode, body: String, extra: HeaderMap) -> Response {
    let mut res = (status, Html(body)).into_response();
    res.headers_mut().extend(extra);
    res
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass through).
pub fn encode_query_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `/auth/login` or `/auth/login?return_to=...`.
pub fn login_href(return_to: Option<&str>) -> String {
    with_return_to("/auth/login", return_to)
}

/// `path` with `return_to` appended when given.
pub fn with_return_to(path: &str, return_to: Option<&str>) -> String {
    match return_to {
        Some(r) => format!("{path}?return_to={}", encode_query_value(r)),
        None => path.to_owned(),
    }
}

//! Reading JSON request bodies: the handler parses the buffered body itself, so that every bad
//! body is the spec's `400 invalid_request` envelope (never a framework's rejection text), and
//! the request's `Content-Type` must say JSON.

use crate::http::error::ApiError;
use axum::http::{header, HeaderMap};
use serde::de::DeserializeOwned;

/// The body as `T`: `400 invalid_request` when the `Content-Type` is not `application/json`
/// (parameters such as `charset` allowed), the body is not JSON, not a JSON object, or does
/// not match `T` (with `#[serde(deny_unknown_fields)]`, an unknown field does not either). The messages name the
/// kind of problem only, never the body.
pub fn parse<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, ApiError> {
    if !is_json(headers) {
        return Err(ApiError::InvalidRequest(
            "Content-Type must be application/json.",
        ));
    }
    const FIELDS: ApiError =
        ApiError::InvalidRequest("Request body has unknown, missing or mistyped fields.");
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| ApiError::InvalidRequest("Request body is not valid JSON."))?;
    // Every body is an object: serde would also read a struct from an array of its fields.
    if !value.is_object() {
        return Err(ApiError::InvalidRequest(
            "Request body must be a JSON object.",
        ));
    }
    serde_json::from_value(value).map_err(|_| FIELDS)
}

/// Whether the one `Content-Type` header names `application/json`.
fn is_json(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let media = value.split(';').next().unwrap_or_default().trim();
    media.eq_ignore_ascii_case("application/json")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        password: String,
        current_password: Option<String>,
    }

    fn headers(content_types: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for ct in content_types {
            h.append(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        }
        h
    }

    fn message(r: Result<Body, ApiError>) -> &'static str {
        match r {
            Err(ApiError::InvalidRequest(m)) => m,
            other => panic!("expected invalid_request, got {other:?}"),
        }
    }

    #[test]
    fn only_application_json_is_read() {
        let body = br#"{"password":"x"}"#;
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
        ] {
            let got: Body = parse(&headers(&[ok]), body).unwrap();
            assert_eq!(got.password, "x", "{ok}");
        }
        for bad in [
            &[][..],
            &["text/plain"][..],
            &["application/x-www-form-urlencoded"][..],
            &["application/jsonx"][..],
            &["application/json", "application/json"][..],
        ] {
            assert_eq!(
                message(parse(&headers(bad), body)),
                "Content-Type must be application/json.",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn bad_bodies_are_invalid_requests_that_quote_nothing() {
        let h = headers(&["application/json"]);
        for (body, want) in [
            (&b""[..], "Request body is not valid JSON."),
            (&b"{"[..], "Request body is not valid JSON."),
            (&b"password=secret"[..], "Request body is not valid JSON."),
            (
                &br#"{"password":"secret","extra":1}"#[..],
                "Request body has unknown, missing or mistyped fields.",
            ),
            (
                &br#"{"current_password":"secret"}"#[..],
                "Request body has unknown, missing or mistyped fields.",
            ),
            (
                &br#"{"password":42}"#[..],
                "Request body has unknown, missing or mistyped fields.",
            ),
            (&br#"["secret"]"#[..], "Request body must be a JSON object."),
            (&b"null"[..], "Request body must be a JSON object."),
            (&b"\"secret\""[..], "Request body must be a JSON object."),
        ] {
            let got = message(parse(&h, body));
            assert_eq!(got, want, "{body:?}");
            assert!(!got.contains("secret"));
        }
        // Spaces are kept exactly as sent.
        let got: Body = parse(&h, br#"{"password":"  padded  ","current_password":null}"#).unwrap();
        assert_eq!(
            got,
            Body {
                password: "  padded  ".into(),
                current_password: None
            }
        );
    }
}

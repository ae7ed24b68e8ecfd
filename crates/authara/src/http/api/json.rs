//! Reading JSON request bodies: one place that decides what a malformed body is. Bodies must be
//! `Content-Type: application/json` and match the request type exactly (the request types deny
//! unknown fields, as upstream's contract does with `additionalProperties: false`); anything else
//! is `400 invalid_request` with a fixed message, and serde's own text (which may quote the
//! input, a password included) is never shown or logged.

use crate::http::error::ApiError;
use axum::http::{header, HeaderMap};
use serde::de::DeserializeOwned;

/// The message of every body that does not match the request type.
pub const NOT_THE_CONTRACT: &str = "Request does not match the API contract.";

/// The message when the body is not declared as JSON.
pub const NOT_JSON: &str = "Content-Type must be application/json.";

/// Parses a JSON request body into `T`.
pub fn parse<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, ApiError> {
    if !is_json(headers) {
        return Err(ApiError::InvalidRequest(NOT_JSON));
    }
    // Every request body is a JSON object: serde would also read a struct from an array of its
    // fields in order, which no client means.
    let is_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if !is_object {
        return Err(ApiError::InvalidRequest(NOT_THE_CONTRACT));
    }
    serde_json::from_slice(body).map_err(|_| ApiError::InvalidRequest(NOT_THE_CONTRACT))
}

/// Whether the request declares exactly one `Content-Type`, `application/json` (any case, any
/// parameters such as `charset=utf-8`).
fn is_json(headers: &HeaderMap) -> bool {
    let mut all = headers.get_all(header::CONTENT_TYPE).iter();
    let (Some(v), None) = (all.next(), all.next()) else {
        return false;
    };
    v.to_str().is_ok_and(is_json_media)
}

/// Whether one media type (of `Content-Type`, or one entry of `Accept`) is `application/json`,
/// whatever its case and parameters.
pub fn is_json_media(media: &str) -> bool {
    let media = media.split(';').next().unwrap_or_default().trim();
    media.eq_ignore_ascii_case("application/json")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[allow(dead_code)]
        email: String,
    }

    fn with(ct: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in ct {
            h.append(header::CONTENT_TYPE, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_json_bodies_of_the_exact_shape_parse() {
        let ok = br#"{"email":"a"}"#;
        assert!(parse::<Body>(&with(&["application/json"]), ok).is_ok());
        assert!(parse::<Body>(&with(&["Application/JSON; charset=utf-8"]), ok).is_ok());
        for ct in [
            &[][..],
            &["text/plain"],
            &["application/json", "application/json"],
        ] {
            let e = parse::<Body>(&with(ct), ok).unwrap_err();
            assert!(matches!(e, ApiError::InvalidRequest(NOT_JSON)), "{ct:?}");
        }
        let json = with(&["application/json"]);
        for bad in [
            &br#"{"email":"a","extra":1}"#[..],
            br#"{"email":"a","email":"b"}"#,
            br#"{}"#,
            br#"[]"#,
            br#"["a"]"#,
            br#" ["a"]"#,
            b"",
            br#"{"email":1}"#,
            b"\xff",
        ] {
            let e = parse::<Body>(&json, bad).unwrap_err();
            assert!(matches!(e, ApiError::InvalidRequest(NOT_THE_CONTRACT)));
        }
    }
}

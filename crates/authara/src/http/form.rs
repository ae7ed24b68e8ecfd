//! Lenient form and query parsing: malformed input reads as empty fields, which the handlers
//! answer with the spec's error, rather than as a framework rejection.

use serde::de::DeserializeOwned;

/// Parses an `application/x-www-form-urlencoded` body or query string.
pub fn parse<T: DeserializeOwned + Default>(bytes: &[u8]) -> T {
    serde_urlencoded::from_bytes(bytes).unwrap_or_default()
}

/// Parses an optional raw query string.
pub fn parse_query<T: DeserializeOwned + Default>(raw: Option<&str>) -> T {
    raw.map(|q| parse(q.as_bytes())).unwrap_or_default()
}

/// The `return_to` query parameter.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ReturnToQuery {
    pub return_to: Option<String>,
}

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

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod props {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Default, PartialEq, serde::Deserialize, serde::Serialize)]
    struct Fields {
        email: Option<String>,
        password: Option<String>,
        csrf_token: Option<String>,
        return_to: Option<String>,
    }

    proptest! {
        #[test]
        fn what_serde_urlencoded_writes_reads_back(
            email in proptest::option::of(any::<String>()),
            password in proptest::option::of(any::<String>()),
            csrf_token in proptest::option::of("[A-Za-z0-9_-]{0,64}"),
            return_to in proptest::option::of(any::<String>()),
        ) {
            let f = Fields { email, password, csrf_token, return_to };
            let body = serde_urlencoded::to_string(&f).unwrap();
            prop_assert_eq!(parse::<Fields>(body.as_bytes()), f);
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_unknown_fields_are_ignored(
            bytes in prop::collection::vec(any::<u8>(), 0..300),
        ) {
            let f: Fields = parse(&bytes);
            // Appending an unknown field never changes what the known fields read.
            let mut more = bytes.clone();
            more.extend_from_slice(b"&zz_unknown=1");
            if f != Fields::default() {
                prop_assert_eq!(parse::<Fields>(&more), f);
            }
        }
    }
}

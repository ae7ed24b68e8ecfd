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

/// Why a query parameter could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryError {
    /// The parameter appears more than once: never read as "absent" or as either value.
    Repeated,
    /// The query string is not `application/x-www-form-urlencoded`.
    Malformed,
}

/// The one way routes read a query parameter: `Ok(None)` when absent, `Ok(Some(value))`
/// (decoded, possibly empty) when present once, an error when repeated. Other parameters may
/// repeat freely.
pub fn query_param(raw: Option<&str>, name: &str) -> Result<Option<String>, QueryError> {
    let Some(raw) = raw else { return Ok(None) };
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(raw).map_err(|_| QueryError::Malformed)?;
    let mut found = None;
    for (key, value) in pairs {
        if key == name {
            if found.is_some() {
                return Err(QueryError::Repeated);
            }
            found = Some(value);
        }
    }
    Ok(found)
}

/// The `return_to` query parameter.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ReturnToQuery {
    pub return_to: Option<String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    type Case<'a> = (Option<&'a str>, Result<Option<&'a str>, QueryError>);

    #[test]
    fn a_parameter_is_absent_once_or_repeated() {
        let cases: &[Case] = &[
            (None, Ok(None)),
            (Some(""), Ok(None)),
            (Some("other=1&other=2"), Ok(None)),
            (Some("audience=admin"), Ok(Some("admin"))),
            (Some("audience="), Ok(Some(""))),
            (Some("audience"), Ok(Some(""))),
            (Some("audience=a%64min"), Ok(Some("admin"))),
            (
                Some("audience=admin&audience=admin"),
                Err(QueryError::Repeated),
            ),
            (
                Some("audience=app&x=1&audience=admin"),
                Err(QueryError::Repeated),
            ),
            (Some("x=1&audience=app&x=2"), Ok(Some("app"))),
        ];
        for (raw, want) in cases {
            let got = query_param(*raw, "audience");
            let want = want.map(|v| v.map(str::to_owned));
            assert_eq!(got, want, "{raw:?}");
        }
    }
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

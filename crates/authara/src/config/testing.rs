//! Helpers shared by the sections' tests: load a configuration from pairs, the test keys, a
//! minimal prod setup, and the checks every error message must pass.

use super::{var, Config, ConfigError};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use std::collections::HashMap;

/// Secrets used below; `{K}` and `{K2}` in a value are replaced by them.
pub(super) fn key1() -> String {
    STANDARD.encode([7u8; 32])
}

/// The second test key (40 bytes).
pub(super) fn key2() -> String {
    STANDARD.encode([8u8; 40])
}

/// The configuration read from `pairs` alone.
pub(super) fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| {
            let v = v.replace("{K2}", &key2()).replace("{K}", &key1());
            ((*k).to_owned(), v)
        })
        .collect();
    Config::from_lookup(|k| map.get(k).cloned())
}

/// The error `pairs` cause; panics when they are accepted.
pub(super) fn load_err(pairs: &[(&str, &str)]) -> ConfigError {
    match load(pairs) {
        Ok(c) => panic!("accepted {pairs:?}: {c:?}"),
        Err(e) => e,
    }
}

/// The least a prod configuration needs.
pub(super) const PROD: [(&str, &str); 3] = [
    ("APP_ENV", "prod"),
    ("AUTHARA_JWT_ISSUER", "https://auth.example.org"),
    ("AUTHARA_JWT_KEYS", "k1:{K}"),
];

/// [`PROD`] and `extra`.
pub(super) fn prod_with(
    extra: &[(&'static str, &'static str)],
) -> Vec<(&'static str, &'static str)> {
    PROD.iter().chain(extra).copied().collect()
}

/// Each case fails with exactly its one-line message, which starts with a variable of
/// [`var::ALL`] and shows no secret; no two cases share a message.
pub(super) fn assert_messages(cases: &[(Vec<(&str, &str)>, String)]) {
    let mut seen = std::collections::HashSet::new();
    for (pairs, expected) in cases {
        let e = load_err(pairs);
        let line = e.to_string();
        assert_eq!(&line, expected, "for {pairs:?}");
        assert!(line.starts_with(&*e.var), "{line}");
        assert!(
            var::ALL.contains(&&*e.var) || super::oauth::is_provider_variable(&e.var),
            "{} is not in var::ALL",
            e.var
        );
        assert!(!line.contains('\n'), "{line}");
        assert!(!line.contains("hunter2"), "a secret leaked: {line}");
        assert!(!line.contains(&key1()) && !line.contains(&key2()), "{line}");
        assert!(seen.insert(line), "duplicate case");
    }
}

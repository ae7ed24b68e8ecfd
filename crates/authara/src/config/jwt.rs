//! Access tokens: the issuer and the signing keys (`AUTHARA_JWT_*`). Messages name a key by its
//! id or position, never by its secret.

use super::env::{err, shown, Env};
use super::{AppEnv, ConfigError, Secret};
use authara_core::jwt::MIN_KEY_BYTES;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;

/// The names of this section's variables.
pub mod var {
    /// `iss` claim.
    pub const JWT_ISSUER: &str = "AUTHARA_JWT_ISSUER";
    /// `kid:base64secret,...`.
    pub const JWT_KEYS: &str = "AUTHARA_JWT_KEYS";
    /// The kid that signs.
    pub const JWT_ACTIVE_KEY_ID: &str = "AUTHARA_JWT_ACTIVE_KEY_ID";
}

use var::*;

/// Issuer and keys of access tokens.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// The `iss` claim.
    pub issuer: String,
    /// Where the signing keys come from.
    pub keys: KeySource,
}

/// Where the signing keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// From `AUTHARA_JWT_KEYS`: `(kid, secret)` pairs in the configured order, each secret at
    /// least 32 bytes; `active` is always set to the kid that signs.
    Configured {
        /// `(kid, secret)` pairs.
        keys: Vec<(String, Secret<Vec<u8>>)>,
        /// The kid that signs.
        active: Option<String>,
    },
    /// None configured (dev only): a random key is generated at start.
    Ephemeral,
}

fn is_kid(kid: &str) -> bool {
    (1..=64).contains(&kid.len())
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn decode_secret(s: &str) -> Option<Vec<u8>> {
    [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(s).ok())
}

/// `(kid, secret)` pairs, as in [`KeySource::Configured`].
type KeyList = Vec<(String, Secret<Vec<u8>>)>;

/// Parses `kid:base64secret,...`. Messages name an entry by kid or position, never its secret.
fn parse_keys(value: &str) -> Result<KeyList, ConfigError> {
    let mut keys: KeyList = Vec::new();
    for (i, entry) in value.split(',').enumerate() {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let n = i + 1;
        let (kid, secret) = entry.split_once(':').ok_or_else(|| {
            err(
                JWT_KEYS,
                format!("entry {n} must look like kid:base64secret"),
            )
        })?;
        let (kid, secret) = (kid.trim(), secret.trim());
        if !is_kid(kid) {
            return Err(err(
                JWT_KEYS,
                format!(
                    "entry {n} has an invalid key id (1 to 64 characters of A-Z a-z 0-9 _ - .)"
                ),
            ));
        }
        if keys.iter().any(|(k, _)| k == kid) {
            return Err(err(JWT_KEYS, format!("has key id {kid:?} more than once")));
        }
        let bytes = decode_secret(secret).ok_or_else(|| {
            err(
                JWT_KEYS,
                format!("key {kid:?} has a secret that is not valid base64"),
            )
        })?;
        if bytes.len() < MIN_KEY_BYTES {
            return Err(err(
                JWT_KEYS,
                format!(
                    "key {kid:?} has a secret of {} bytes; at least {MIN_KEY_BYTES} are required (create one with `authara keys generate`)",
                    bytes.len()
                ),
            ));
        }
        keys.push((kid.to_owned(), Secret::new(bytes)));
    }
    if keys.is_empty() {
        return Err(err(JWT_KEYS, "must list at least one kid:base64secret"));
    }
    Ok(keys)
}

/// The section: issuer (required in prod) and keys (ephemeral in dev when none are set).
pub(super) fn read(e: &Env<'_>, env: AppEnv) -> Result<JwtConfig, ConfigError> {
    let issuer = match e.get(JWT_ISSUER) {
        Some(v) if v.len() > 256 || v.chars().any(char::is_control) => {
            return Err(err(
                JWT_ISSUER,
                format!(
                    "must be at most 256 bytes without control characters, got {}",
                    shown(&v)
                ),
            ))
        }
        Some(v) => v,
        None if env == AppEnv::Prod => {
            return Err(err(JWT_ISSUER, "is required when APP_ENV is prod"))
        }
        None => "authara".to_owned(),
    };
    let active = e.get(JWT_ACTIVE_KEY_ID);
    let Some(value) = e.get(JWT_KEYS) else {
        if env == AppEnv::Prod {
            return Err(err(
                JWT_KEYS,
                "is required when APP_ENV is prod (create a key with `authara keys generate`)",
            ));
        }
        if active.is_some() {
            return Err(err(JWT_ACTIVE_KEY_ID, "is set but AUTHARA_JWT_KEYS is not"));
        }
        return Ok(JwtConfig {
            issuer,
            keys: KeySource::Ephemeral,
        });
    };
    let keys = parse_keys(&value)?;
    let active = match (active, keys.as_slice()) {
        (Some(a), _) if !is_kid(&a) => {
            return Err(err(
                JWT_ACTIVE_KEY_ID,
                "is not a valid key id (1 to 64 characters of A-Z a-z 0-9 _ - .)",
            ))
        }
        (Some(a), _) if !keys.iter().any(|(k, _)| *k == a) => {
            let kids: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
            return Err(err(
                JWT_ACTIVE_KEY_ID,
                format!(
                    "names {a:?}, which is not in AUTHARA_JWT_KEYS (key ids: {})",
                    kids.join(", ")
                ),
            ));
        }
        (Some(a), _) => a,
        (None, [(only, _)]) => only.clone(),
        (None, _) => {
            return Err(err(
                JWT_ACTIVE_KEY_ID,
                "is required when AUTHARA_JWT_KEYS has more than one key",
            ))
        }
    };
    Ok(JwtConfig {
        issuer,
        keys: KeySource::Configured {
            keys,
            active: Some(active),
        },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::super::testing::{assert_messages, key1, load, load_err};
    use super::super::Config;
    use super::*;
    use authara_core::jwt::JwtKeys;

    /// The key set the server builds from `c`; proves the core accepts what config accepted.
    fn key_set(c: &Config) -> JwtKeys {
        let KeySource::Configured { keys, active } = &c.jwt.keys else {
            panic!("not configured");
        };
        let keys = keys
            .iter()
            .map(|(kid, secret)| (kid.clone(), secret.expose().to_vec()))
            .collect();
        JwtKeys::new(keys, active.as_deref(), c.jwt.issuer.clone()).unwrap()
    }

    #[test]
    fn prod_without_keys_or_issuer_fails_naming_the_variable() {
        let e = load_err(&[("APP_ENV", "prod"), ("AUTHARA_JWT_ISSUER", "x")]);
        assert_eq!(e.var, "AUTHARA_JWT_KEYS");
        assert!(e
            .to_string()
            .starts_with("AUTHARA_JWT_KEYS is required when APP_ENV is prod"));
        let e = load_err(&[("APP_ENV", "prod"), ("AUTHARA_JWT_KEYS", "k1:{K}")]);
        assert_eq!(e.var, "AUTHARA_JWT_ISSUER");
        assert_eq!(
            e.to_string(),
            "AUTHARA_JWT_ISSUER is required when APP_ENV is prod"
        );
    }

    #[test]
    fn every_invalid_jwt_setting_has_its_own_one_line_message() {
        let longer = "b".repeat(257);
        let cases: Vec<(Vec<(&str, &str)>, String)> = vec![
            (
                vec![("AUTHARA_JWT_ISSUER", &longer)],
                format!(
                    r#"AUTHARA_JWT_ISSUER must be at most 256 bytes without control characters, got "{}"..."#,
                    "b".repeat(80)
                ),
            ),
            (
                vec![("APP_ENV", "prod"), ("AUTHARA_JWT_ISSUER", "x")],
                "AUTHARA_JWT_KEYS is required when APP_ENV is prod (create a key with `authara keys generate`)".into(),
            ),
            (
                vec![("AUTHARA_JWT_ACTIVE_KEY_ID", "k1")],
                "AUTHARA_JWT_ACTIVE_KEY_ID is set but AUTHARA_JWT_KEYS is not".into(),
            ),
            (
                vec![("AUTHARA_JWT_KEYS", "{K}")],
                "AUTHARA_JWT_KEYS entry 1 must look like kid:base64secret".into(),
            ),
            (
                vec![("AUTHARA_JWT_KEYS", "k1:{K},bad kid:{K2}")],
                "AUTHARA_JWT_KEYS entry 2 has an invalid key id (1 to 64 characters of A-Z a-z 0-9 _ - .)".into(),
            ),
            (
                vec![("AUTHARA_JWT_KEYS", "k1:{K},k1:{K2}")],
                r#"AUTHARA_JWT_KEYS has key id "k1" more than once"#.into(),
            ),
            (
                vec![("AUTHARA_JWT_KEYS", "k1:not*base64")],
                r#"AUTHARA_JWT_KEYS key "k1" has a secret that is not valid base64"#.into(),
            ),
            (
                vec![("AUTHARA_JWT_KEYS", "k1:AAAAAAAAAAAAAAAAAAAAAA==")],
                r#"AUTHARA_JWT_KEYS key "k1" has a secret of 16 bytes; at least 32 are required (create one with `authara keys generate`)"#.into(),
            ),
            (
                vec![("AUTHARA_JWT_KEYS", ", ,")],
                "AUTHARA_JWT_KEYS must list at least one kid:base64secret".into(),
            ),
            (
                vec![("AUTHARA_JWT_KEYS", "k1:{K}"), ("AUTHARA_JWT_ACTIVE_KEY_ID", "k 1")],
                "AUTHARA_JWT_ACTIVE_KEY_ID is not a valid key id (1 to 64 characters of A-Z a-z 0-9 _ - .)".into(),
            ),
            (
                vec![("AUTHARA_JWT_KEYS", "k1:{K},k2:{K2}"), ("AUTHARA_JWT_ACTIVE_KEY_ID", "k3")],
                r#"AUTHARA_JWT_ACTIVE_KEY_ID names "k3", which is not in AUTHARA_JWT_KEYS (key ids: k1, k2)"#.into(),
            ),
            (
                vec![("AUTHARA_JWT_KEYS", "k1:{K},k2:{K2}")],
                "AUTHARA_JWT_ACTIVE_KEY_ID is required when AUTHARA_JWT_KEYS has more than one key".into(),
            ),
        ];
        assert_messages(&cases);
    }

    #[test]
    fn keys_accept_every_base64_flavour_and_default_the_active_key() {
        let bytes: Vec<u8> = (0u8..48).map(|i| i.wrapping_mul(37) ^ 0xfb).collect();
        for encoded in [
            STANDARD.encode(&bytes),
            STANDARD_NO_PAD.encode(&bytes[..47]),
            URL_SAFE.encode(&bytes[..47]),
            URL_SAFE_NO_PAD.encode(&bytes),
        ] {
            let value = format!(" main-key.v1 : {encoded} ,");
            let c = load(&[("AUTHARA_JWT_KEYS", &value)]).unwrap();
            let KeySource::Configured { keys, active } = &c.jwt.keys else {
                panic!("not configured");
            };
            assert_eq!(keys.len(), 1);
            assert_eq!(keys[0].0, "main-key.v1");
            let secret = keys[0].1.expose();
            assert!(bytes.starts_with(secret) && secret.len() >= 47, "{encoded}");
            assert_eq!(active.as_deref(), Some("main-key.v1"));
            key_set(&c);
        }
    }

    #[test]
    fn several_keys_need_an_active_key_id_and_build_a_key_set() {
        let c = load(&[
            ("AUTHARA_JWT_KEYS", "old:{K},new:{K2}"),
            ("AUTHARA_JWT_ACTIVE_KEY_ID", "new"),
            ("AUTHARA_JWT_ISSUER", "https://auth.example.org"),
        ])
        .unwrap();
        let KeySource::Configured { keys, active } = &c.jwt.keys else {
            panic!("not configured");
        };
        let kids: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(kids, ["old", "new"]);
        assert_eq!(keys[0].1.expose(), [7u8; 32]);
        assert_eq!(keys[1].1.expose(), [8u8; 40]);
        assert_eq!(active.as_deref(), Some("new"));
        let set = key_set(&c);
        assert_eq!(set.issuer(), "https://auth.example.org");
    }

    #[test]
    fn key_errors_never_show_the_secret() {
        let short = STANDARD.encode([9u8; 31]);
        let bad_kid = format!("{}:{}", "k".repeat(65), key1());
        let no_colon = key1();
        for value in [
            format!("k1:{short}"),
            bad_kid,
            no_colon,
            format!("k1:{}", key1()),
        ] {
            let e = load_err(&[
                ("AUTHARA_JWT_KEYS", &value),
                ("AUTHARA_JWT_ACTIVE_KEY_ID", "k2"),
            ]);
            let line = e.to_string();
            assert!(!line.contains(&short) && !line.contains(&key1()), "{line}");
        }
    }
}

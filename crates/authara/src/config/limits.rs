//! Rate limits, Redis and the client address: the `AUTHARA_RATE_LIMIT_*` variables, upstream's
//! `AUTHARA_CACHE_PROVIDER` with `AUTHARA_REDIS_*` next to our `AUTHARA_REDIS_URL`, and
//! `AUTHARA_TRUSTED_PROXIES` with upstream's `AUTHARA_TRUST_PROXY_HEADERS`.
//!
//! Decisions:
//! - A limit of 0 turns its family off in dev (with a warning at start); in prod it is an error,
//!   so the limiter cannot be switched off by accident.
//! - `AUTHARA_REDIS_URL` wins over `AUTHARA_REDIS_HOST/PORT/PASSWORD/DB` (they are then ignored,
//!   with a warning). `AUTHARA_CACHE_PROVIDER=noop` together with `AUTHARA_REDIS_URL` is a
//!   contradiction and an error. Only `redis://` is supported: `rediss://` (TLS) is an error.
//! - `AUTHARA_TRUST_PROXY_HEADERS=true` trusts every peer (`0.0.0.0/0`, `::/0`) with a warning;
//!   when `AUTHARA_TRUSTED_PROXIES` is set too, the list wins and the flag is ignored (warning).

use super::env::{err, shown, Env};
use super::{AppEnv, ConfigError, Secret};
use crate::network::Cidr;
use authara_core::limits::{Limit, RateLimits};
use std::fmt::Write as _;
use std::net::Ipv6Addr;
use std::time::Duration;

/// The names of this section's variables.
pub mod var {
    /// Login attempts per IP.
    pub const RL_LOGIN_IP_LIMIT: &str = "AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT";
    /// Window of the per-IP login limit.
    pub const RL_LOGIN_IP_WINDOW: &str = "AUTHARA_RATE_LIMIT_LOGIN_IP_WINDOW";
    /// Login attempts per email.
    pub const RL_LOGIN_EMAIL_LIMIT: &str = "AUTHARA_RATE_LIMIT_LOGIN_EMAIL_LIMIT";
    /// Window of the per-email login limit.
    pub const RL_LOGIN_EMAIL_WINDOW: &str = "AUTHARA_RATE_LIMIT_LOGIN_EMAIL_WINDOW";
    /// Signups per IP.
    pub const RL_SIGNUP_IP_LIMIT: &str = "AUTHARA_RATE_LIMIT_SIGNUP_IP_LIMIT";
    /// Window of the per-IP signup limit.
    pub const RL_SIGNUP_IP_WINDOW: &str = "AUTHARA_RATE_LIMIT_SIGNUP_IP_WINDOW";
    /// Signups per email.
    pub const RL_SIGNUP_EMAIL_LIMIT: &str = "AUTHARA_RATE_LIMIT_SIGNUP_EMAIL_LIMIT";
    /// Window of the per-email signup limit.
    pub const RL_SIGNUP_EMAIL_WINDOW: &str = "AUTHARA_RATE_LIMIT_SIGNUP_EMAIL_WINDOW";
    /// Password resets per IP.
    pub const RL_PASSWORD_RESET_IP_LIMIT: &str = "AUTHARA_RATE_LIMIT_PASSWORD_RESET_IP_LIMIT";
    /// Window of the per-IP password reset limit.
    pub const RL_PASSWORD_RESET_IP_WINDOW: &str = "AUTHARA_RATE_LIMIT_PASSWORD_RESET_IP_WINDOW";
    /// Password resets per email.
    pub const RL_PASSWORD_RESET_EMAIL_LIMIT: &str = "AUTHARA_RATE_LIMIT_PASSWORD_RESET_EMAIL_LIMIT";
    /// Window of the per-email password reset limit.
    pub const RL_PASSWORD_RESET_EMAIL_WINDOW: &str =
        "AUTHARA_RATE_LIMIT_PASSWORD_RESET_EMAIL_WINDOW";
    /// Passkey logins per IP (options and finish each).
    pub const RL_PASSKEY_LOGIN_IP_LIMIT: &str = "AUTHARA_RATE_LIMIT_PASSKEY_LOGIN_IP_LIMIT";
    /// Window of the per-IP passkey login limit.
    pub const RL_PASSKEY_LOGIN_IP_WINDOW: &str = "AUTHARA_RATE_LIMIT_PASSKEY_LOGIN_IP_WINDOW";
    /// Challenge code checks per IP.
    pub const RL_CHALLENGE_VERIFY_IP_LIMIT: &str = "AUTHARA_RATE_LIMIT_CHALLENGE_VERIFY_IP_LIMIT";
    /// Window of the per-IP challenge verify limit.
    pub const RL_CHALLENGE_VERIFY_IP_WINDOW: &str = "AUTHARA_RATE_LIMIT_CHALLENGE_VERIFY_IP_WINDOW";
    /// Challenge code resends per IP.
    pub const RL_CHALLENGE_RESEND_IP_LIMIT: &str = "AUTHARA_RATE_LIMIT_CHALLENGE_RESEND_IP_LIMIT";
    /// Window of the per-IP challenge resend limit.
    pub const RL_CHALLENGE_RESEND_IP_WINDOW: &str = "AUTHARA_RATE_LIMIT_CHALLENGE_RESEND_IP_WINDOW";
    /// The in-process limiter sweeps expired windows every this many calls.
    pub const RL_CLEANUP_EVERY: &str = "AUTHARA_RATE_LIMIT_CLEANUP_EVERY";
    /// Memory bound of the in-process limiter.
    pub const RL_MAX_ENTRIES: &str = "AUTHARA_RATE_LIMIT_MAX_ENTRIES";
    /// Shared state through Redis.
    pub const REDIS_URL: &str = "AUTHARA_REDIS_URL";
    /// Upstream's `noop` or `redis`.
    pub const CACHE_PROVIDER: &str = "AUTHARA_CACHE_PROVIDER";
    /// Redis host when the provider is redis.
    pub const REDIS_HOST: &str = "AUTHARA_REDIS_HOST";
    /// Redis port.
    pub const REDIS_PORT: &str = "AUTHARA_REDIS_PORT";
    /// Redis password.
    pub const REDIS_PASSWORD: &str = "AUTHARA_REDIS_PASSWORD";
    /// Redis database number.
    pub const REDIS_DB: &str = "AUTHARA_REDIS_DB";
    /// Proxies whose `X-Forwarded-For` is believed.
    pub const TRUSTED_PROXIES: &str = "AUTHARA_TRUSTED_PROXIES";
    /// Upstream's "believe `X-Forwarded-For` from any peer".
    pub const TRUST_PROXY_HEADERS: &str = "AUTHARA_TRUST_PROXY_HEADERS";
}

use var::*;

/// Longest accepted rate-limit window.
pub(super) const MAX_RATE_WINDOW: Duration = Duration::from_secs(30 * 86_400);

/// What this section reads.
pub(super) struct Section {
    pub rate_limits: RateLimits,
    pub redis_url: Option<Secret>,
    pub trusted_proxies: Vec<Cidr>,
    /// Said once at start (`tracing::warn!`); never contains a secret.
    pub warnings: Vec<String>,
}

/// Reads the section.
pub(super) fn read(e: &Env<'_>, env: AppEnv) -> Result<Section, ConfigError> {
    let mut warnings = Vec::new();
    let rate_limits = rate_limits(e, env, &mut warnings)?;
    let redis_url = redis(e, &mut warnings)?;
    let trusted_proxies = proxies(e, env, &mut warnings)?;
    Ok(Section {
        rate_limits,
        redis_url,
        trusted_proxies,
        warnings,
    })
}

fn limit(
    e: &Env<'_>,
    env: AppEnv,
    (limit_var, window_var): (&'static str, &'static str),
    default: Limit,
    warnings: &mut Vec<String>,
) -> Result<Limit, ConfigError> {
    let limit: u32 = e.whole(limit_var, default.limit, 0, 1_000_000, "")?;
    if limit == 0 {
        if env == AppEnv::Prod {
            return Err(err(
                limit_var,
                "must be at least 1 when APP_ENV is prod (0 would turn the limit off), got \"0\"",
            ));
        }
        warnings.push(format!(
            "{limit_var} is 0: this rate limit is off (refused when APP_ENV is prod)"
        ));
    }
    Ok(Limit {
        limit,
        window: e.duration(window_var, default.window, MAX_RATE_WINDOW, false)?,
    })
}

fn rate_limits(e: &Env<'_>, env: AppEnv, w: &mut Vec<String>) -> Result<RateLimits, ConfigError> {
    let d = RateLimits::default();
    Ok(RateLimits {
        login_ip: limit(
            e,
            env,
            (RL_LOGIN_IP_LIMIT, RL_LOGIN_IP_WINDOW),
            d.login_ip,
            w,
        )?,
        login_email: limit(
            e,
            env,
            (RL_LOGIN_EMAIL_LIMIT, RL_LOGIN_EMAIL_WINDOW),
            d.login_email,
            w,
        )?,
        signup_ip: limit(
            e,
            env,
            (RL_SIGNUP_IP_LIMIT, RL_SIGNUP_IP_WINDOW),
            d.signup_ip,
            w,
        )?,
        signup_email: limit(
            e,
            env,
            (RL_SIGNUP_EMAIL_LIMIT, RL_SIGNUP_EMAIL_WINDOW),
            d.signup_email,
            w,
        )?,
        password_reset_ip: limit(
            e,
            env,
            (RL_PASSWORD_RESET_IP_LIMIT, RL_PASSWORD_RESET_IP_WINDOW),
            d.password_reset_ip,
            w,
        )?,
        password_reset_email: limit(
            e,
            env,
            (
                RL_PASSWORD_RESET_EMAIL_LIMIT,
                RL_PASSWORD_RESET_EMAIL_WINDOW,
            ),
            d.password_reset_email,
            w,
        )?,
        passkey_login_ip: limit(
            e,
            env,
            (RL_PASSKEY_LOGIN_IP_LIMIT, RL_PASSKEY_LOGIN_IP_WINDOW),
            d.passkey_login_ip,
            w,
        )?,
        challenge_verify_ip: limit(
            e,
            env,
            (RL_CHALLENGE_VERIFY_IP_LIMIT, RL_CHALLENGE_VERIFY_IP_WINDOW),
            d.challenge_verify_ip,
            w,
        )?,
        challenge_resend_ip: limit(
            e,
            env,
            (RL_CHALLENGE_RESEND_IP_LIMIT, RL_CHALLENGE_RESEND_IP_WINDOW),
            d.challenge_resend_ip,
            w,
        )?,
        cleanup_every: e.whole(RL_CLEANUP_EVERY, d.cleanup_every, 1, 1_000_000, "")?,
        max_entries: e.whole(RL_MAX_ENTRIES, d.max_entries, 1, 10_000_000, "")?,
    })
}

/// `AUTHARA_REDIS_URL`, as given.
fn redis_url(e: &Env<'_>) -> Result<Option<Secret>, ConfigError> {
    let Some(v) = e.get(REDIS_URL) else {
        return Ok(None);
    };
    if v.get(..9)
        .is_some_and(|p| p.eq_ignore_ascii_case("rediss://"))
    {
        return Err(err(
            REDIS_URL,
            "uses rediss:// (TLS), which this build does not support: use redis:// (through a TLS tunnel if the network is not trusted)",
        ));
    }
    let ok = v
        .strip_prefix("redis://")
        .is_some_and(|rest| !rest.is_empty())
        && !v.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(Some(Secret::new(v)))
    } else {
        Err(err(
            REDIS_URL,
            "must be a redis:// URL (the value is not shown: it may contain a password)",
        ))
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn redis(e: &Env<'_>, warnings: &mut Vec<String>) -> Result<Option<Secret>, ConfigError> {
    let provider = match e.get(CACHE_PROVIDER) {
        None => None,
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "noop" => Some(false),
            "redis" => Some(true),
            _ => {
                return Err(err(
                    CACHE_PROVIDER,
                    format!("must be noop or redis, got {}", shown(&v)),
                ))
            }
        },
    };
    let url = redis_url(e)?;
    let parts: Vec<&str> = [REDIS_HOST, REDIS_PORT, REDIS_PASSWORD, REDIS_DB]
        .into_iter()
        .filter(|v| {
            if *v == REDIS_PASSWORD {
                e.raw(v).is_some()
            } else {
                e.get(v).is_some()
            }
        })
        .collect();
    match (provider, url) {
        (Some(false), Some(_)) => Err(err(
            CACHE_PROVIDER,
            "is noop but AUTHARA_REDIS_URL is set: remove one of them",
        )),
        (_, Some(url)) => {
            if !parts.is_empty() {
                warnings.push(format!(
                    "AUTHARA_REDIS_URL is set, so {} {} ignored",
                    parts.join(", "),
                    if parts.len() == 1 { "is" } else { "are" }
                ));
            }
            Ok(Some(url))
        }
        (Some(true), None) => redis_from_parts(e).map(Some),
        (_, None) => {
            if !parts.is_empty() {
                warnings.push(format!(
                    "{} {} ignored: AUTHARA_CACHE_PROVIDER is not redis",
                    parts.join(", "),
                    if parts.len() == 1 { "is" } else { "are" }
                ));
            }
            Ok(None)
        }
    }
}

/// `redis://[:password@]host:port/db` from upstream's discrete variables.
fn redis_from_parts(e: &Env<'_>) -> Result<Secret, ConfigError> {
    let host = e.get(REDIS_HOST).unwrap_or_else(|| "localhost".to_owned());
    let host_ok = host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'));
    let host = match host.parse::<Ipv6Addr>() {
        Ok(v6) if host_ok => format!("[{v6}]"),
        _ if host_ok && !host.contains(':') => host,
        _ => {
            return Err(err(
                REDIS_HOST,
                format!("must be a host name or IP address, got {}", shown(&host)),
            ))
        }
    };
    let port: u16 = e.whole(REDIS_PORT, 6379, 1, 65535, "")?;
    let db: u32 = e.whole(REDIS_DB, 0, 0, 65535, "")?;
    // Taken verbatim, like POSTGRESQL_PASSWORD: spaces may be part of it.
    let auth = match e.raw(REDIS_PASSWORD) {
        Some(p) => format!(":{}@", percent_encode(&p)),
        None => String::new(),
    };
    Ok(Secret::new(format!("redis://{auth}{host}:{port}/{db}")))
}

fn proxies(e: &Env<'_>, env: AppEnv, warnings: &mut Vec<String>) -> Result<Vec<Cidr>, ConfigError> {
    let trust_all = e.boolean(TRUST_PROXY_HEADERS, false)?;
    let list = trusted_proxies(e)?;
    if !trust_all {
        return Ok(list);
    }
    if e.get(TRUSTED_PROXIES).is_some() {
        warnings.push(
            "AUTHARA_TRUST_PROXY_HEADERS is ignored: AUTHARA_TRUSTED_PROXIES lists the trusted proxies"
                .to_owned(),
        );
        return Ok(list);
    }
    // Trusting every peer lets every client choose its own rate-limit key: in prod that would
    // switch the limiter off as surely as a limit of 0, which prod refuses too.
    if env == AppEnv::Prod {
        return Err(err(
            TRUST_PROXY_HEADERS,
            "must not be true when APP_ENV is prod (it trusts X-Forwarded-For from every peer, so \
             any client could choose its rate-limit address): list your proxies in \
             AUTHARA_TRUSTED_PROXIES instead",
        ));
    }
    warnings.push(
        "AUTHARA_TRUST_PROXY_HEADERS=true trusts X-Forwarded-For from every peer (0.0.0.0/0, ::/0): \
         any client can choose its address for the rate limits; list your proxies in \
         AUTHARA_TRUSTED_PROXIES instead"
            .to_owned(),
    );
    let every: Vec<Cidr> = ["0.0.0.0/0", "::/0"]
        .iter()
        .filter_map(|c| c.parse().ok())
        .collect();
    Ok(every)
}

fn trusted_proxies(e: &Env<'_>) -> Result<Vec<Cidr>, ConfigError> {
    let Some(v) = e.get(TRUSTED_PROXIES) else {
        return Ok(Vec::new());
    };
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<Cidr>().map_err(|why| {
                err(
                    TRUSTED_PROXIES,
                    format!("must be a comma list of IP addresses or CIDRs such as 10.0.0.0/8 or fd00::/8, but {why}"),
                )
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::super::testing::assert_messages;
    use super::super::var::ALL;
    use super::super::Config;
    use super::*;
    use std::collections::HashMap;

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    fn prod(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let key = "k1:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
        [
            ("APP_ENV", "prod"),
            ("AUTHARA_JWT_ISSUER", "https://auth.example.org"),
            ("AUTHARA_JWT_KEYS", key),
        ]
        .iter()
        .chain(extra)
        .copied()
        .collect()
    }

    const LIMIT_VARS: [&str; 9] = [
        RL_LOGIN_IP_LIMIT,
        RL_LOGIN_EMAIL_LIMIT,
        RL_SIGNUP_IP_LIMIT,
        RL_SIGNUP_EMAIL_LIMIT,
        RL_PASSWORD_RESET_IP_LIMIT,
        RL_PASSWORD_RESET_EMAIL_LIMIT,
        RL_PASSKEY_LOGIN_IP_LIMIT,
        RL_CHALLENGE_VERIFY_IP_LIMIT,
        RL_CHALLENGE_RESEND_IP_LIMIT,
    ];

    #[test]
    fn every_family_has_upstreams_default_and_its_variables() {
        let c = load(&[]).unwrap();
        assert_eq!(c.rate_limits, RateLimits::default());
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let m = |n: u64| Duration::from_secs(60 * n);
        let c = load(&[
            ("AUTHARA_RATE_LIMIT_PASSWORD_RESET_IP_LIMIT", "7"),
            ("AUTHARA_RATE_LIMIT_PASSWORD_RESET_IP_WINDOW", "2m"),
            ("AUTHARA_RATE_LIMIT_PASSWORD_RESET_EMAIL_LIMIT", "8"),
            ("AUTHARA_RATE_LIMIT_PASSWORD_RESET_EMAIL_WINDOW", "3m"),
            ("AUTHARA_RATE_LIMIT_PASSKEY_LOGIN_IP_LIMIT", "9"),
            ("AUTHARA_RATE_LIMIT_PASSKEY_LOGIN_IP_WINDOW", "4m"),
            ("AUTHARA_RATE_LIMIT_CHALLENGE_VERIFY_IP_LIMIT", "10"),
            ("AUTHARA_RATE_LIMIT_CHALLENGE_VERIFY_IP_WINDOW", "5m"),
            ("AUTHARA_RATE_LIMIT_CHALLENGE_RESEND_IP_LIMIT", "11"),
            ("AUTHARA_RATE_LIMIT_CHALLENGE_RESEND_IP_WINDOW", "6m"),
            ("AUTHARA_RATE_LIMIT_CLEANUP_EVERY", "50"),
        ])
        .unwrap();
        let r = c.rate_limits;
        assert_eq!(r.password_reset_ip, Limit::new(7, m(2)));
        assert_eq!(r.password_reset_email, Limit::new(8, m(3)));
        assert_eq!(r.passkey_login_ip, Limit::new(9, m(4)));
        assert_eq!(r.challenge_verify_ip, Limit::new(10, m(5)));
        assert_eq!(r.challenge_resend_ip, Limit::new(11, m(6)));
        assert_eq!(r.cleanup_every, 50);
        let all_rl: Vec<&&str> = ALL
            .iter()
            .filter(|v| v.starts_with("AUTHARA_RATE_LIMIT_"))
            .collect();
        assert_eq!(all_rl.len(), 20, "all 20 AUTHARA_RATE_LIMIT_* variables");
    }

    #[test]
    fn a_zero_limit_turns_the_family_off_in_dev_with_a_warning_and_fails_in_prod() {
        for var in LIMIT_VARS {
            let c = load(&[(var, "0")]).unwrap();
            assert_eq!(c.warnings.len(), 1, "{var}");
            assert!(c.warnings[0].starts_with(var), "{:?}", c.warnings);
            let e = load(&prod(&[(var, "0")])).unwrap_err();
            assert_eq!(e.var, var);
            assert_eq!(
                e.to_string(),
                format!("{var} must be at least 1 when APP_ENV is prod (0 would turn the limit off), got \"0\"")
            );
            assert!(load(&prod(&[(var, "1")])).is_ok());
        }
        let c = load(&[(RL_LOGIN_IP_LIMIT, "0")]).unwrap();
        assert_eq!(
            c.rate_limits.get(authara_core::limits::Family::LoginIp),
            None
        );
        let e = load(&[(RL_CLEANUP_EVERY, "0")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"AUTHARA_RATE_LIMIT_CLEANUP_EVERY must be a whole number from 1 to 1000000, got "0""#
        );
        let e = load(&[(RL_LOGIN_IP_LIMIT, "1000001")]).unwrap_err();
        assert_eq!(e.var, RL_LOGIN_IP_LIMIT);
    }

    fn url(c: &Config) -> Option<&str> {
        c.redis_url.as_ref().map(Secret::<String>::expose)
    }

    #[test]
    fn redis_comes_from_the_url_or_from_upstreams_variables() {
        assert_eq!(url(&load(&[]).unwrap()), None);
        assert_eq!(
            url(&load(&[("AUTHARA_CACHE_PROVIDER", "noop")]).unwrap()),
            None
        );
        let c = load(&[("AUTHARA_CACHE_PROVIDER", "redis")]).unwrap();
        assert_eq!(url(&c), Some("redis://localhost:6379/0"));
        let c = load(&[
            ("AUTHARA_CACHE_PROVIDER", "Redis"),
            ("AUTHARA_REDIS_HOST", "cache.internal"),
            ("AUTHARA_REDIS_PORT", "6380"),
            ("AUTHARA_REDIS_PASSWORD", "p@ss w/rd:%"),
            ("AUTHARA_REDIS_DB", "3"),
        ])
        .unwrap();
        assert_eq!(
            url(&c),
            Some("redis://:p%40ss%20w%2Frd%3A%25@cache.internal:6380/3")
        );
        let c = load(&[
            ("AUTHARA_CACHE_PROVIDER", "redis"),
            ("AUTHARA_REDIS_HOST", "::1"),
        ])
        .unwrap();
        assert_eq!(url(&c), Some("redis://[::1]:6379/0"));
        // The URL wins; the parts are ignored with a warning that shows no password.
        let c = load(&[
            ("AUTHARA_CACHE_PROVIDER", "redis"),
            ("AUTHARA_REDIS_URL", "redis://a:6379"),
            ("AUTHARA_REDIS_PASSWORD", "hunter2"),
        ])
        .unwrap();
        assert_eq!(url(&c), Some("redis://a:6379"));
        assert_eq!(
            c.warnings,
            ["AUTHARA_REDIS_URL is set, so AUTHARA_REDIS_PASSWORD is ignored"]
        );
        let c = load(&[("AUTHARA_REDIS_URL", "redis://a:6379")]).unwrap();
        assert_eq!(url(&c), Some("redis://a:6379"));
        let c = load(&[("AUTHARA_REDIS_HOST", "cache")]).unwrap();
        assert_eq!(url(&c), None);
        assert_eq!(c.warnings.len(), 1);
        assert!(format!("{c:?}").contains("<redacted>") || c.redis_url.is_none());
    }

    #[test]
    fn redis_mistakes_are_errors_that_show_no_password() {
        for (pairs, want) in [
            (
                vec![("AUTHARA_CACHE_PROVIDER", "memcached")],
                r#"AUTHARA_CACHE_PROVIDER must be noop or redis, got "memcached""#,
            ),
            (
                vec![
                    ("AUTHARA_CACHE_PROVIDER", "noop"),
                    ("AUTHARA_REDIS_URL", "redis://:hunter2@a"),
                ],
                "AUTHARA_CACHE_PROVIDER is noop but AUTHARA_REDIS_URL is set: remove one of them",
            ),
            (
                vec![("AUTHARA_REDIS_URL", "rediss://:hunter2@a:6380")],
                "AUTHARA_REDIS_URL uses rediss:// (TLS), which this build does not support: use redis:// (through a TLS tunnel if the network is not trusted)",
            ),
            (
                vec![("AUTHARA_REDIS_URL", "redis://:hunter2@a b")],
                "AUTHARA_REDIS_URL must be a redis:// URL (the value is not shown: it may contain a password)",
            ),
            (
                vec![
                    ("AUTHARA_CACHE_PROVIDER", "redis"),
                    ("AUTHARA_REDIS_HOST", "a@b"),
                ],
                r#"AUTHARA_REDIS_HOST must be a host name or IP address, got "a@b""#,
            ),
            (
                vec![
                    ("AUTHARA_CACHE_PROVIDER", "redis"),
                    ("AUTHARA_REDIS_PORT", "0"),
                ],
                r#"AUTHARA_REDIS_PORT must be a whole number from 1 to 65535, got "0""#,
            ),
            (
                vec![
                    ("AUTHARA_CACHE_PROVIDER", "redis"),
                    ("AUTHARA_REDIS_DB", "-1"),
                ],
                r#"AUTHARA_REDIS_DB must be a whole number from 0 to 65535, got "-1""#,
            ),
        ] {
            let e = load(&pairs).unwrap_err();
            assert_eq!(e.to_string(), want);
            assert!(ALL.contains(&&*e.var));
        }
        let c = load(&[
            ("AUTHARA_CACHE_PROVIDER", "redis"),
            ("AUTHARA_REDIS_PASSWORD", "hunter2"),
        ])
        .unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn trust_proxy_headers_trusts_every_peer_unless_a_list_is_given() {
        let shown = |c: &Config| -> Vec<String> {
            c.trusted_proxies.iter().map(ToString::to_string).collect()
        };
        let c = load(&[("AUTHARA_TRUST_PROXY_HEADERS", "true")]).unwrap();
        assert_eq!(shown(&c), ["0.0.0.0/0", "::/0"]);
        assert_eq!(c.warnings.len(), 1);
        assert!(c.warnings[0].starts_with("AUTHARA_TRUST_PROXY_HEADERS=true"));
        let c = load(&[("AUTHARA_TRUST_PROXY_HEADERS", "false")]).unwrap();
        assert!(c.trusted_proxies.is_empty() && c.warnings.is_empty());
        let c = load(&[
            ("AUTHARA_TRUST_PROXY_HEADERS", "1"),
            ("AUTHARA_TRUSTED_PROXIES", "10.0.0.0/8"),
        ])
        .unwrap();
        assert_eq!(shown(&c), ["10.0.0.0/8"]);
        assert_eq!(c.warnings.len(), 1);
        let e = load(&[("AUTHARA_TRUST_PROXY_HEADERS", "maybe")]).unwrap_err();
        assert_eq!(e.var, TRUST_PROXY_HEADERS);
    }

    #[test]
    fn trust_proxy_headers_is_refused_in_prod_unless_a_list_is_given() {
        let e = load(&prod(&[("AUTHARA_TRUST_PROXY_HEADERS", "true")])).unwrap_err();
        assert_eq!(e.var, TRUST_PROXY_HEADERS);
        assert!(e.message.contains("AUTHARA_TRUSTED_PROXIES"), "{e}");
        let c = load(&prod(&[
            ("AUTHARA_TRUST_PROXY_HEADERS", "true"),
            ("AUTHARA_TRUSTED_PROXIES", "10.0.0.0/8"),
        ]))
        .unwrap();
        assert_eq!(c.trusted_proxies.len(), 1);
        assert!(load(&prod(&[("AUTHARA_TRUST_PROXY_HEADERS", "false")])).is_ok());
    }

    #[test]
    fn every_invalid_limit_setting_has_its_own_one_line_message() {
        let cases: Vec<(Vec<(&str, &str)>, String)> = vec![
            (
                prod(&[("AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT", "0")]),
                r#"AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT must be at least 1 when APP_ENV is prod (0 would turn the limit off), got "0""#.into(),
            ),
            (
                vec![("AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT", "-1")],
                r#"AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT must be a whole number from 0 to 1000000, got "-1""#.into(),
            ),
            (
                vec![("AUTHARA_RATE_LIMIT_LOGIN_IP_WINDOW", "0s")],
                r#"AUTHARA_RATE_LIMIT_LOGIN_IP_WINDOW must be longer than 0, got "0s""#.into(),
            ),
            (
                vec![("AUTHARA_RATE_LIMIT_LOGIN_EMAIL_WINDOW", "2d")],
                r#"AUTHARA_RATE_LIMIT_LOGIN_EMAIL_WINDOW must be a duration such as 10s, 15m or 1h30m (units ms, s, m, h), got "2d": unknown unit "d" (use ms, s, m or h)"#.into(),
            ),
            (
                vec![("AUTHARA_RATE_LIMIT_SIGNUP_IP_LIMIT", "1e6")],
                r#"AUTHARA_RATE_LIMIT_SIGNUP_IP_LIMIT must be a whole number from 0 to 1000000, got "1e6""#.into(),
            ),
            (
                vec![("AUTHARA_RATE_LIMIT_SIGNUP_EMAIL_WINDOW", "721h")],
                r#"AUTHARA_RATE_LIMIT_SIGNUP_EMAIL_WINDOW must be at most 720h, got "721h""#.into(),
            ),
            (
                vec![("AUTHARA_RATE_LIMIT_MAX_ENTRIES", "0")],
                r#"AUTHARA_RATE_LIMIT_MAX_ENTRIES must be a whole number from 1 to 10000000, got "0""#.into(),
            ),
            (
                vec![("AUTHARA_REDIS_URL", "http://:hunter2@cache")],
                "AUTHARA_REDIS_URL must be a redis:// URL (the value is not shown: it may contain a password)".into(),
            ),
            (
                vec![("AUTHARA_TRUSTED_PROXIES", "10.0.0.1, 10.0.0.0/33")],
                r#"AUTHARA_TRUSTED_PROXIES must be a comma list of IP addresses or CIDRs such as 10.0.0.0/8 or fd00::/8, but "10.0.0.0/33" is not an IP address or CIDR"#.into(),
            ),
        ];
        assert_messages(&cases);
    }

    #[test]
    fn limits_redis_and_proxies_are_read() {
        let c = load(&[
            ("AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT", "20"),
            ("AUTHARA_RATE_LIMIT_LOGIN_IP_WINDOW", "90s"),
            ("AUTHARA_RATE_LIMIT_MAX_ENTRIES", "1000"),
            ("AUTHARA_REDIS_URL", "redis://:pw@cache:6380/0"),
            (
                "AUTHARA_TRUSTED_PROXIES",
                "10.0.0.0/8, fd00::/8,,192.168.1.1",
            ),
        ])
        .unwrap();
        assert_eq!(
            c.rate_limits.login_ip,
            Limit {
                limit: 20,
                window: Duration::from_secs(90)
            }
        );
        assert_eq!(c.rate_limits.max_entries, 1000);
        assert_eq!(
            c.redis_url.as_ref().map(Secret::<String>::expose),
            Some("redis://:pw@cache:6380/0")
        );
        let proxies: Vec<String> = c.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(proxies, ["10.0.0.0/8", "fd00::/8", "192.168.1.1/32"]);
    }
}

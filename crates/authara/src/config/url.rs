//! `http(s)://` URLs in the configuration, and `PUBLIC_URL` (the external origin).
//!
//! In prod, `PUBLIC_URL` must use `https://`, except for loopback hosts (`localhost`,
//! `127.0.0.0/8`, `[::1]`): browsers treat those as secure contexts, so `Secure` cookies still
//! work there and a production build can be tried out locally.

use super::env::{err, shown, Env};
use super::{AppEnv, ConfigError};
use std::net::{IpAddr, Ipv6Addr};

/// The names of this section's variables.
pub mod var {
    /// External origin.
    pub const PUBLIC_URL: &str = "PUBLIC_URL";
}

use var::PUBLIC_URL;

/// The default external origin.
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080";

/// The parts of an `http(s)://` URL that the checks below need.
pub(super) struct HttpUrl<'a> {
    pub(super) https: bool,
    /// Lowercased `host[:port]`.
    pub(super) authority: String,
    pub(super) loopback: bool,
    /// Everything after the authority (path, query, fragment).
    pub(super) rest: &'a str,
}

impl HttpUrl<'_> {
    pub(super) fn scheme(&self) -> &'static str {
        if self.https {
            "https"
        } else {
            "http"
        }
    }
}

pub(super) const URL_HAS_CREDENTIALS: &str = "must not contain a user name or password";

/// The error for a URL-valued variable. The value is not echoed when it may hold credentials
/// (any `@`: a password containing `/` would end the authority early and go unnoticed).
pub(super) fn url_err(
    var: impl Into<std::borrow::Cow<'static, str>>,
    why: &str,
    value: &str,
) -> ConfigError {
    if why == URL_HAS_CREDENTIALS || value.contains('@') {
        err(var, why)
    } else {
        err(var, format!("{why}, got {}", shown(value)))
    }
}

/// Splits an absolute `http://` or `https://` URL; the error says what is wrong.
pub(super) fn parse_http_url(s: &str) -> Result<HttpUrl<'_>, &'static str> {
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters");
    }
    let prefix_is = |p: &str| s.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p));
    let (https, after) = if prefix_is("https://") {
        (true, s.get(8..).unwrap_or(""))
    } else if prefix_is("http://") {
        (false, s.get(7..).unwrap_or(""))
    } else {
        return Err("must start with http:// or https://");
    };
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at_checked(end).unwrap_or((after, ""));
    if authority.contains('@') {
        return Err(URL_HAS_CREDENTIALS);
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (inner, tail) = v6.split_once(']').ok_or("has an invalid host")?;
        inner
            .parse::<Ipv6Addr>()
            .map_err(|_| "has an invalid host")?;
        let port = match tail {
            "" => None,
            t => Some(t.strip_prefix(':').ok_or("has an invalid host")?),
        };
        (inner, port)
    } else {
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        let name_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !name_ok {
            return Err("has an invalid host");
        }
        (host, port)
    };
    if let Some(p) = port {
        let ok = !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u16>().is_ok_and(|n| n > 0);
        if !ok {
            return Err("has an invalid port");
        }
    }
    let host = host.to_ascii_lowercase();
    let loopback = host == "localhost"
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback());
    Ok(HttpUrl {
        https,
        authority: authority.to_ascii_lowercase(),
        loopback,
        rest,
    })
}

/// `PUBLIC_URL`, normalised: lowercase scheme and host, no trailing slash.
pub(super) fn public_url(e: &Env<'_>, env: AppEnv) -> Result<String, ConfigError> {
    let Some(v) = e.get(PUBLIC_URL) else {
        return Ok(DEFAULT_PUBLIC_URL.to_owned());
    };
    let fail = |why: &str| url_err(PUBLIC_URL, why, &v);
    let url = parse_http_url(&v).map_err(fail)?;
    if url.rest.contains(['?', '#']) {
        return Err(fail("must not contain a query or fragment"));
    }
    let path = url.rest.strip_suffix('/').unwrap_or(url.rest);
    if path.ends_with('/') {
        return Err(fail("must not end with more than one /"));
    }
    let lower = path.to_ascii_lowercase();
    if lower.ends_with("/auth") {
        return Err(fail(
            "must be the external origin without /auth (Authara adds /auth itself)",
        ));
    }
    if env == AppEnv::Prod && !url.https && !url.loopback {
        return Err(fail(
            "must use https:// when APP_ENV is prod (http:// is allowed only for localhost)",
        ));
    }
    Ok(format!("{}://{}{}", url.scheme(), url.authority, path))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::testing::{assert_messages, load, load_err, prod_with};

    #[test]
    fn every_invalid_public_url_has_its_own_one_line_message() {
        let cases: Vec<(Vec<(&str, &str)>, String)> = vec![
            (
                vec![("PUBLIC_URL", "ftp://example.org")],
                r#"PUBLIC_URL must start with http:// or https://, got "ftp://example.org""#.into(),
            ),
            (
                vec![("PUBLIC_URL", "https://exa mple.org")],
                r#"PUBLIC_URL must not contain spaces or control characters, got "https://exa mple.org""#.into(),
            ),
            (
                vec![("PUBLIC_URL", "https://user:hunter2@localhost")],
                "PUBLIC_URL must not contain a user name or password".into(),
            ),
            (
                vec![("PUBLIC_URL", "https://")],
                r#"PUBLIC_URL has an invalid host, got "https://""#.into(),
            ),
            (
                vec![("PUBLIC_URL", "https://example.org:99999")],
                r#"PUBLIC_URL has an invalid port, got "https://example.org:99999""#.into(),
            ),
            (
                vec![("PUBLIC_URL", "https://example.org/?a=1")],
                r#"PUBLIC_URL must not contain a query or fragment, got "https://example.org/?a=1""#.into(),
            ),
            (
                vec![("PUBLIC_URL", "https://example.org//")],
                r#"PUBLIC_URL must not end with more than one /, got "https://example.org//""#.into(),
            ),
            (
                vec![("PUBLIC_URL", "https://example.org/auth/")],
                r#"PUBLIC_URL must be the external origin without /auth (Authara adds /auth itself), got "https://example.org/auth/""#.into(),
            ),
            (
                prod_with(&[("PUBLIC_URL", "http://example.org")]),
                r#"PUBLIC_URL must use https:// when APP_ENV is prod (http:// is allowed only for localhost), got "http://example.org""#.into(),
            ),
        ];
        assert_messages(&cases);
    }

    #[test]
    fn public_url_is_normalised() {
        for (value, expected) in [
            ("https://example.org/", "https://example.org"),
            ("HTTPS://Example.ORG", "https://example.org"),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
            ("https://example.org/app/", "https://example.org/app"),
            (
                "https://example.org/authority",
                "https://example.org/authority",
            ),
            ("http://[::1]:8080", "http://[::1]:8080"),
        ] {
            let c = load(&[("PUBLIC_URL", value)]).unwrap();
            assert_eq!(c.public_url, expected, "{value}");
        }
        for value in [
            "http://localhost:8080",
            "http://127.0.0.2",
            "http://[::1]:8080",
            "https://auth.example.org",
        ] {
            let c = load(&prod_with(&[("PUBLIC_URL", value)]));
            assert!(c.is_ok(), "{value} refused in prod: {c:?}");
        }
        for value in [
            "http://example.org:80x",
            "http://[::1",
            "http://[::1]x",
            "https://a:b:c",
        ] {
            assert_eq!(
                load_err(&[("PUBLIC_URL", value)]).var,
                "PUBLIC_URL",
                "{value}"
            );
        }
        let e = load_err(&[("PUBLIC_URL", "https://user:hun/ter2@localhost")]);
        assert_eq!(e.to_string(), "PUBLIC_URL has an invalid port");
    }
}

//! Web origins (RFC 6454) for the cross-site request check: the origin of `PUBLIC_URL`, and
//! whether a request's `Origin` and `Sec-Fetch-Site` headers show it comes from elsewhere.

use axum::http::{header, HeaderMap, HeaderName};

static SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// The serialised origin of an absolute `http`/`https` URL: lowercased scheme and host, and the
/// port only when it is not the scheme's default (as browsers send it in `Origin`). A path is
/// ignored. `None` for anything else.
pub fn of_url(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, _) = rest.split_at(end);
    serialise(scheme, authority)
}

/// An `Origin` header value, which is only ever `scheme://host[:port]` (or `null`, which is
/// `None` here like any other value that is not an origin).
fn of_header(value: &str) -> Option<String> {
    let (scheme, authority) = value.split_once("://")?;
    if authority.contains(['/', '?', '#']) {
        return None;
    }
    serialise(scheme, authority)
}

fn serialise(scheme: &str, authority: &str) -> Option<String> {
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        _ => return None,
    };
    if authority.is_empty()
        || authority.contains('@')
        || !authority.bytes().all(|b| b.is_ascii_graphic())
    {
        return None;
    }
    // A bracketed IPv6 host may contain colons; the port follows the closing bracket.
    let split_at = match authority.rfind(']') {
        Some(close) => authority
            .get(close..)
            .and_then(|after| after.find(':'))
            .map(|i| close + i),
        None => authority.rfind(':'),
    };
    let (host, port) = match split_at {
        Some(i) => {
            let (host, colon_port) = authority.split_at(i);
            (host, colon_port.get(1..).unwrap_or(""))
        }
        None => (authority, ""),
    };
    if host.is_empty() || (!port.is_empty() && port.parse::<u16>().is_err()) {
        return None;
    }
    let host = host.to_ascii_lowercase();
    // Leading zeros would make `:080` a different string for the same port.
    let port = port.trim_start_matches('0');
    if port.is_empty() || port == default_port {
        Some(format!("{scheme}://{host}"))
    } else {
        Some(format!("{scheme}://{host}:{port}"))
    }
}

/// Whether the request's headers show it was sent from another origin than `ours` (the origin
/// of `PUBLIC_URL`): an `Origin` header naming another origin (or `null`), or a
/// `Sec-Fetch-Site` other than `same-origin` or `none` (`same-site` is another origin too:
/// a sibling subdomain). A request with neither header (curl, SDKs) is not cross-origin.
pub fn is_cross_origin(headers: &HeaderMap, ours: &str) -> bool {
    let mut origins = headers.get_all(header::ORIGIN).iter();
    let foreign_origin = match (origins.next(), origins.next()) {
        (None, _) => false,
        (Some(v), None) => v
            .to_str()
            .ok()
            .and_then(of_header)
            .is_none_or(|theirs| ours.is_empty() || theirs != ours),
        // Two `Origin` headers: no browser sends that.
        (Some(_), Some(_)) => true,
    };
    let foreign_fetch = headers
        .get_all(&SEC_FETCH_SITE)
        .iter()
        .any(|v| !matches!(v.as_bytes(), b"same-origin" | b"none"));
    foreign_origin || foreign_fetch
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn origins_of_urls_drop_default_ports_paths_and_case() {
        let cases = [
            ("https://Example.ORG", Some("https://example.org")),
            ("https://example.org:443/app", Some("https://example.org")),
            ("http://example.org:80", Some("http://example.org")),
            ("http://127.0.0.1:8080", Some("http://127.0.0.1:8080")),
            ("HTTP://[::1]:8080/x", Some("http://[::1]:8080")),
            ("http://[::1]", Some("http://[::1]")),
            ("https://example.org:8443", Some("https://example.org:8443")),
            ("https://example.org:0443", Some("https://example.org")),
            ("ftp://example.org", None),
            ("https://", None),
            ("https://user@example.org", None),
            ("https://example.org:99999", None),
            ("https://example.org:x", None),
            ("example.org", None),
        ];
        for (url, want) in cases {
            assert_eq!(of_url(url).as_deref(), want, "{url}");
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_our_own_origin_and_same_origin_fetches_pass() {
        let ours = "https://auth.example.org";
        let pass: [&[(&str, &str)]; 6] = [
            &[],
            &[("origin", "https://auth.example.org")],
            &[("origin", "https://AUTH.example.org:443")],
            &[("sec-fetch-site", "same-origin")],
            &[("sec-fetch-site", "none")],
            &[
                ("origin", "https://auth.example.org"),
                ("sec-fetch-site", "same-origin"),
            ],
        ];
        for h in pass {
            assert!(!is_cross_origin(&headers(h), ours), "{h:?}");
        }
        let refuse: [&[(&str, &str)]; 12] = [
            &[("origin", "https://evil.example")],
            &[("origin", "null")],
            &[("origin", "")],
            &[("origin", "http://auth.example.org")],
            &[("origin", "https://auth.example.org:8443")],
            &[("origin", "https://app.example.org")],
            &[("origin", "https://auth.example.org.evil.example")],
            &[("origin", "https://auth.example.org/path")],
            &[
                ("origin", "https://auth.example.org"),
                ("origin", "https://auth.example.org"),
            ],
            &[("sec-fetch-site", "cross-site")],
            &[("sec-fetch-site", "same-site")],
            &[
                ("origin", "https://auth.example.org"),
                ("sec-fetch-site", "cross-site"),
            ],
        ];
        for h in refuse {
            assert!(is_cross_origin(&headers(h), ours), "{h:?}");
        }
        // Without a known origin of our own, any `Origin` is foreign.
        assert!(is_cross_origin(
            &headers(&[("origin", "https://auth.example.org")]),
            ""
        ));
    }
}

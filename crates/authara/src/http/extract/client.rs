//! The client: its address (trusting `X-Forwarded-For` only from configured proxies) and its
//! user agent, as [`ClientInfo`] for sessions and rate limits.

use crate::network::Cidr;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName};
use std::convert::Infallible;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Where a request came from, as recorded on sessions and used as a rate-limit key: only login
/// and signup need it.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub ip: String,
    /// Whole; `SessionService::start` truncates it for storage.
    pub user_agent: String,
}

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        let ip = request_client_ip(parts, &state.trusted_proxies)
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        // Bytes beyond ASCII are read, not dropped; the session service sanitises and bounds.
        let user_agent = parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        Ok(Self { ip, user_agent })
    }
}

impl ClientInfo {
    /// The session origin recorded at login and signup.
    pub fn origin(&self) -> authara_core::auth::Origin<'_> {
        authara_core::auth::Origin {
            user_agent: &self.user_agent,
            client_ip: &self.ip,
        }
    }
}

/// The client address of a request: [`client_ip`] of the connection's peer and the request's
/// headers; `None` when the server did not record the peer (tests that call the router
/// directly).
pub fn request_client_ip(parts: &Parts, trusted: &[Cidr]) -> Option<IpAddr> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    client_ip(peer, &parts.headers, trusted)
}

/// The client address: the peer, unless the peer is a trusted proxy, in which case
/// `X-Forwarded-For` is walked from the right (the last header first, each one's entries
/// right to left): trusted hops are skipped and the first untrusted address is the client.
/// Only the entries right of the first untrusted one were written by proxies we trust, so the
/// walk stops there; it also stops at the first entry that is not an address (it may have been
/// written by the client), answering the last trusted hop, as it does when every hop is trusted.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[Cidr]) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let mut last_trusted = peer;
    for value in headers.get_all(&X_FORWARDED_FOR).iter().rev() {
        let Ok(value) = value.to_str() else {
            return Some(last_trusted);
        };
        for entry in value.rsplit(',') {
            let Some(ip) = forwarded_entry(entry.trim()) else {
                return Some(last_trusted);
            };
            if !is_trusted(ip) {
                return Some(ip);
            }
            last_trusted = ip;
        }
    }
    Some(last_trusted)
}

/// One `X-Forwarded-For` entry: `ip`, `ip:port`, `[v6]` or `[v6]:port` (some proxies add the
/// client's port); anything else is not an address.
pub fn forwarded_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = entry.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    let inner = entry.strip_prefix('[')?.strip_suffix(']')?;
    inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.2.3.4, 10.0.0.7"),
        );
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let stranger: IpAddr = "9.9.9.9".parse().unwrap();
        assert_eq!(client_ip(Some(proxy), &h, &trusted), "1.2.3.4".parse().ok());
        assert_eq!(client_ip(Some(stranger), &h, &trusted), Some(stranger));
        assert_eq!(client_ip(Some(proxy), &h, &[]), Some(proxy));
        h.insert("x-forwarded-for", HeaderValue::from_static("garbage"));
        assert_eq!(client_ip(Some(proxy), &h, &trusted), Some(proxy));
    }

    fn forwarded(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn forwarded_entries_may_carry_a_port() {
        for (entry, want) in [
            ("203.0.113.5", Some("203.0.113.5")),
            ("203.0.113.5:4711", Some("203.0.113.5")),
            ("2001:db8::1", Some("2001:db8::1")),
            ("[2001:db8::1]", Some("2001:db8::1")),
            ("[2001:db8::1]:443", Some("2001:db8::1")),
            ("[203.0.113.5]", None),
            ("203.0.113.5:", None),
            ("203.0.113.5:99999", None),
            ("2001:db8::1:443x", None),
            ("[2001:db8::1", None),
            ("unknown", None),
            ("", None),
        ] {
            assert_eq!(
                forwarded_entry(entry),
                want.map(|w| w.parse::<IpAddr>().unwrap()),
                "{entry:?}"
            );
        }
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let h = forwarded(&["198.51.100.9:1234, 10.0.0.7:80"]);
        assert_eq!(
            client_ip(Some(proxy), &h, &trusted),
            "198.51.100.9".parse().ok()
        );
        let h = forwarded(&["[2001:db8::7]:1234"]);
        assert_eq!(
            client_ip(Some(proxy), &h, &trusted),
            "2001:db8::7".parse().ok()
        );
        // From an untrusted peer, a port changes nothing: the header is ignored.
        let stranger: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(client_ip(Some(stranger), &h, &trusted), Some(stranger));
    }

    #[test]
    fn a_garbage_entry_left_of_the_client_does_not_hide_the_client() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let h = forwarded(&["x, 203.0.113.5"]);
        assert_eq!(
            client_ip(Some(proxy), &h, &trusted),
            "203.0.113.5".parse().ok()
        );
    }

    #[test]
    fn the_walk_goes_right_to_left_across_headers_and_stops_at_garbage() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let cases: [(&[&'static str], &str); 6] = [
            // The last header holds the right-most entries.
            (&["1.2.3.4", "5.6.7.8, 10.0.0.2"], "5.6.7.8"),
            (&["1.2.3.4", "10.0.0.2"], "1.2.3.4"),
            // Garbage between trusted hops: the last trusted hop seen, never further left.
            (&["1.2.3.4, x, 10.0.0.7"], "10.0.0.7"),
            (&["1.2.3.4, , 10.0.0.7"], "10.0.0.7"),
            // Every hop trusted: the left-most of them.
            (&["10.0.0.9, 10.0.0.7"], "10.0.0.9"),
            // IPv6 entries parse as well.
            (&["2001:db8::1, 10.0.0.7"], "2001:db8::1"),
        ];
        for (values, want) in cases {
            let h = forwarded(values);
            assert_eq!(
                client_ip(Some(proxy), &h, &trusted),
                want.parse().ok(),
                "{values:?}"
            );
        }
        assert_eq!(
            client_ip(Some(proxy), &HeaderMap::new(), &trusted),
            Some(proxy)
        );
        assert_eq!(client_ip(None, &forwarded(&["1.2.3.4"]), &trusted), None);
    }
}

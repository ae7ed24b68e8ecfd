//! Request facts the handlers need: client IP (trusting proxies only when configured),
//! user agent, htmx, and `return_to`.

use crate::config::Cidr;
use crate::state::AppState;
use authara_core::domain::ReturnTo;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

/// Where a request came from, as recorded on sessions.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub ip: String,
    pub user_agent: String,
    pub htmx: bool,
}

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let ip = client_ip(peer, &parts.headers, &state.trusted_proxies)
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        let user_agent = parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .chars()
            .take(512)
            .collect();
        Ok(Self {
            ip,
            user_agent,
            htmx: super::respond::is_htmx(&parts.headers),
        })
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

/// The client address: the peer, unless the peer is a trusted proxy, in which case the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[Cidr]) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().parse::<IpAddr>())
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !is_trusted(*ip))
        .or(Some(peer))
}

/// The accepted `return_to`, if any (SPEC §10): a bad one is silently dropped.
pub fn return_to(candidates: &[Option<&str>]) -> Option<ReturnTo> {
    candidates.iter().flatten().find_map(|r| ReturnTo::parse(r))
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
}

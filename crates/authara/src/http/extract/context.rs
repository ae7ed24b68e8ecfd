//! [`RequestCtx`]: where a request came from, as the audit log records it.

use super::client::request_client_ip;
use crate::http::layers::REQUEST_ID;
use crate::network::Cidr;
use crate::state::AppState;
use authara_core::audit::RequestContext;
use axum::extract::FromRequestParts;
use axum::http::header::USER_AGENT;
use axum::http::request::Parts;
use std::convert::Infallible;

/// Longest user agent recorded, in characters (upstream's `admin_audit_events.user_agent`).
pub use authara_core::audit::MAX_USER_AGENT as MAX_USER_AGENT_CHARS;

/// The [`RequestContext`] of a request: the client address (the same as rate limits and
/// sessions see), the user agent (control characters removed, at most
/// [`MAX_USER_AGENT_CHARS`]) and the request id the request-id layer gave it. Fields that are
/// missing or empty are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestCtx(pub RequestContext);

impl RequestCtx {
    /// The context of `parts`, believing `X-Forwarded-For` only from `trusted` proxies.
    pub fn from_parts(parts: &Parts, trusted: &[Cidr]) -> Self {
        let ip = request_client_ip(parts, trusted).map(|ip| ip.to_string());
        let user_agent = parts
            .headers
            .get(USER_AGENT)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let request_id = parts.headers.get(&REQUEST_ID).and_then(|v| v.to_str().ok());
        // One sanitiser for every audit context: `RequestContext::new` bounds and cleans.
        Self(RequestContext::new(
            ip.as_deref(),
            user_agent.as_deref(),
            request_id,
        ))
    }

    /// The context, for a service call.
    pub fn into_inner(self) -> RequestContext {
        self.0
    }
}

impl FromRequestParts<AppState> for RequestCtx {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        Ok(Self::from_parts(parts, &state.trusted_proxies))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::ConnectInfo;
    use axum::http::{HeaderValue, Request};
    use std::net::SocketAddr;

    fn parts(headers: &[(&str, &[u8])], peer: Option<&str>) -> Parts {
        let mut req = Request::post("/auth/admin/users/x/disable");
        for (name, value) in headers {
            req = req.header(*name, HeaderValue::from_bytes(value).unwrap());
        }
        let (mut parts, ()) = req.body(()).unwrap().into_parts();
        if let Some(peer) = peer {
            let addr: SocketAddr = peer.parse().unwrap();
            parts.extensions.insert(ConnectInfo(addr));
        }
        parts
    }

    #[test]
    fn the_context_has_the_client_address_user_agent_and_request_id() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap()];
        let p = parts(
            &[
                ("user-agent", b"Mozilla/5.0 (X11)"),
                ("x-request-id", b"req-42"),
                ("x-forwarded-for", b"203.0.113.9"),
            ],
            Some("10.0.0.1:4000"),
        );
        let RequestCtx(ctx) = RequestCtx::from_parts(&p, &trusted);
        assert_eq!(ctx.ip.as_deref(), Some("203.0.113.9"));
        assert_eq!(ctx.user_agent.as_deref(), Some("Mozilla/5.0 (X11)"));
        assert_eq!(ctx.request_id.as_deref(), Some("req-42"));
        // From an untrusted peer the header is not believed.
        let RequestCtx(ctx) = RequestCtx::from_parts(&p, &[]);
        assert_eq!(ctx.ip.as_deref(), Some("10.0.0.1"));
    }

    #[test]
    fn missing_facts_are_none() {
        let RequestCtx(ctx) = RequestCtx::from_parts(&parts(&[("user-agent", b" \t ")], None), &[]);
        assert_eq!(ctx, RequestContext::default());
    }

    #[test]
    fn the_user_agent_loses_control_characters_and_is_cut_to_512_characters() {
        // A tab and a C1 control (U+0085, which arrives as UTF-8 obs-text) are stripped.
        let p = parts(&[("user-agent", "Evil\tBot\u{85}/1.0".as_bytes())], None);
        let RequestCtx(ctx) = RequestCtx::from_parts(&p, &[]);
        assert_eq!(ctx.user_agent.as_deref(), Some("EvilBot/1.0"));
        let long = "é".repeat(600);
        let p = parts(&[("user-agent", long.as_bytes())], None);
        let ua = RequestCtx::from_parts(&p, &[])
            .into_inner()
            .user_agent
            .unwrap();
        assert_eq!(ua.chars().count(), MAX_USER_AGENT_CHARS);
        assert!(long.starts_with(&ua));
        // Bytes that are not UTF-8 become replacement characters, never an error.
        let p = parts(&[("user-agent", b"a\xffb")], None);
        let ua = RequestCtx::from_parts(&p, &[])
            .into_inner()
            .user_agent
            .unwrap();
        assert_eq!(ua, "a\u{fffd}b");
    }
}

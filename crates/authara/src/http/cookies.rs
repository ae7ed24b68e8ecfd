//! The only place cookie attributes are set (SPEC §3), and the one cookie reader.

use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use time::Duration;

/// Access token cookie.
pub const ACCESS: &str = "authara_access";
/// Refresh token cookie.
pub const REFRESH: &str = "authara_refresh";
/// CSRF double-submit cookie (readable by JavaScript on purpose).
pub const CSRF: &str = "authara_csrf";
/// The nonce of a Google sign-in in progress (upstream's name): the ID token's `nonce` must be it.
pub const OAUTH_NONCE: &str = "authara_oauth_nonce";
/// Lifetime of the nonce cookie: a sign-in started longer ago starts again.
pub const OAUTH_NONCE_MAX_AGE: Duration = Duration::minutes(10);
/// The browser binding of a code-flow sign-in (GitHub, OpenID Connect), between its start and
/// its callback.
pub const OAUTH_FLOW: &str = "authara_oauth_flow";
/// The browser binding of a pending provider link (the confirm page).
pub const PROVIDER_LINK: &str = "authara_provider_link";
/// Lifetime of the CSRF cookie.
pub const CSRF_MAX_AGE: Duration = Duration::days(30);

/// Longest cookie value we read; larger values are treated as absent.
const MAX_VALUE_LEN: usize = 4096;

/// Writes `Set-Cookie` headers with the deployment's attributes.
#[derive(Debug, Clone, Copy)]
pub struct CookieWriter {
    /// `Secure` attribute (prod).
    pub secure: bool,
}

impl CookieWriter {
    fn header(self, name: &str, value: &str, max_age: i64, http_only: bool) -> Option<HeaderValue> {
        let mut s = format!("{name}={value}; Max-Age={}; Path=/", max_age.max(0));
        if http_only {
            s.push_str("; HttpOnly");
        }
        s.push_str("; SameSite=Lax");
        if self.secure {
            s.push_str("; Secure");
        }
        HeaderValue::from_str(&s).ok()
    }

    fn append(self, headers: &mut HeaderMap, v: Option<HeaderValue>) {
        if let Some(v) = v {
            headers.append(SET_COOKIE, v);
        }
    }

    /// Sets the access cookie.
    pub fn set_access(self, headers: &mut HeaderMap, token: &str, max_age: Duration) {
        self.append(
            headers,
            self.header(ACCESS, token, max_age.whole_seconds(), true),
        );
    }

    /// Sets the refresh cookie to live exactly until the token expires.
    pub fn set_refresh(self, headers: &mut HeaderMap, token: &str, max_age: Duration) {
        self.append(
            headers,
            self.header(REFRESH, token, max_age.whole_seconds(), true),
        );
    }

    /// Sets the CSRF cookie.
    pub fn set_csrf(self, headers: &mut HeaderMap, token: &str) {
        let max_age = CSRF_MAX_AGE.whole_seconds();
        self.append(headers, self.header(CSRF, token, max_age, false));
    }

    /// Sets the nonce of a Google sign-in (HttpOnly: the page gets the nonce in the options'
    /// body, the cookie is for the server's comparison).
    pub fn set_oauth_nonce(self, headers: &mut HeaderMap, nonce: &str) {
        let max_age = OAUTH_NONCE_MAX_AGE.whole_seconds();
        self.append(headers, self.header(OAUTH_NONCE, nonce, max_age, true));
    }

    /// Clears the nonce cookie (used once).
    pub fn clear_oauth_nonce(self, headers: &mut HeaderMap) {
        self.append(headers, self.header(OAUTH_NONCE, "", 0, true));
    }

    /// Sets the browser binding of a code-flow sign-in, for as long as the flow lives.
    pub fn set_oauth_flow(self, headers: &mut HeaderMap, binding: &str) {
        let max_age = authara_core::auth::flow::SIGN_IN_FLOW_TTL.whole_seconds();
        self.append(headers, self.header(OAUTH_FLOW, binding, max_age, true));
    }

    /// Clears the binding (the flow is over).
    pub fn clear_oauth_flow(self, headers: &mut HeaderMap) {
        self.append(headers, self.header(OAUTH_FLOW, "", 0, true));
    }

    /// Sets the browser binding of a pending provider link, for as long as the link lives.
    pub fn set_provider_link(self, headers: &mut HeaderMap, binding: &str) {
        let max_age = authara_core::auth::link::PENDING_LINK_TTL.whole_seconds();
        self.append(headers, self.header(PROVIDER_LINK, binding, max_age, true));
    }

    /// Clears that binding (the link is used).
    pub fn clear_provider_link(self, headers: &mut HeaderMap) {
        self.append(headers, self.header(PROVIDER_LINK, "", 0, true));
    }

    /// Clears both session cookies.
    pub fn clear_session(self, headers: &mut HeaderMap) {
        self.append(headers, self.header(ACCESS, "", 0, true));
        self.append(headers, self.header(REFRESH, "", 0, true));
    }
}

/// The first value of cookie `name` in the request, if present, non-empty and of sane size.
pub fn read<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().trim_matches('"'))
        .filter(|v| !v.is_empty() && v.len() <= MAX_VALUE_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_match_the_spec() {
        let mut h = HeaderMap::new();
        CookieWriter { secure: true }.set_access(&mut h, "t", Duration::minutes(10));
        CookieWriter { secure: false }.set_csrf(&mut h, "c");
        CookieWriter { secure: false }.clear_session(&mut h);
        let v: Vec<&str> = h
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(
            v,
            [
                "authara_access=t; Max-Age=600; Path=/; HttpOnly; SameSite=Lax; Secure",
                "authara_csrf=c; Max-Age=2592000; Path=/; SameSite=Lax",
                "authara_access=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax",
                "authara_refresh=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax",
            ]
        );
    }

    #[test]
    fn reads_the_named_cookie_only() {
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_static("a=1; authara_access=xyz; b="),
        );
        assert_eq!(read(&h, ACCESS), Some("xyz"));
        assert_eq!(read(&h, "b"), None);
        assert_eq!(read(&h, REFRESH), None);
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

    fn name() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            CSRF,
            ACCESS,
            REFRESH,
            "authara_csrfx",
            "xauthara_csrf",
            "a",
        ])
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            "[A-Za-z0-9_-]{0,50}",
            Just(String::new()),
            Just("\"quoted\"".to_owned()),
            Just(" padded ".to_owned()),
            Just("a=b".to_owned()),
            Just("x".repeat(MAX_VALUE_LEN + 1)),
        ]
    }

    /// What [`read`] promises: the first pair named `name`, across headers in order, its value
    /// trimmed of spaces and quotes; `None` when that first value is empty or oversized.
    fn model(pairs: &[(&'static str, String)], name: &str) -> Option<String> {
        let (_, v) = pairs.iter().find(|(k, _)| *k == name)?;
        let v = v.trim().trim_matches('"');
        (!v.is_empty() && v.len() <= MAX_VALUE_LEN).then(|| v.to_owned())
    }

    proptest! {
        #[test]
        fn read_finds_the_first_pair_of_the_name(
            pairs in prop::collection::vec((name(), value()), 0..8),
            split in any::<prop::sample::Index>(),
            target in name(),
        ) {
            // The pairs in one or two `Cookie` headers, split anywhere.
            let at = split.index(pairs.len() + 1);
            let (a, b) = pairs.split_at(at);
            let mut h = HeaderMap::new();
            for part in [a, b] {
                if part.is_empty() {
                    continue;
                }
                let joined = part
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                h.append(COOKIE, HeaderValue::from_str(&joined).unwrap());
            }
            prop_assert_eq!(read(&h, target).map(str::to_owned), model(&pairs, target));
        }

        #[test]
        fn arbitrary_header_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_bytes(&bytes) {
                h.append(COOKIE, v);
            }
            if let Some(v) = read(&h, CSRF) {
                prop_assert!(!v.is_empty() && v.len() <= MAX_VALUE_LEN);
            }
        }
    }
}

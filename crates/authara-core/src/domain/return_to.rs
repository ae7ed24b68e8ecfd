/// Longest `return_to` accepted, in bytes.
pub const MAX_RETURN_TO: usize = 2048;

/// A local path that is safe to redirect to after login (SPEC §10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnTo(String);

impl ReturnTo {
    /// Accepts only a local path: one leading `/`, not followed by `/` or `\`, no backslash, no
    /// control character (ASCII or C1) and no bidi control, at most 2048 bytes, no `.` or `..` segment (even percent-encoded:
    /// a browser resolves them, so `/x/../auth/login` is `/auth/login`), and not leading back
    /// into login or signup. Anything else is `None` (the caller falls back to `/`), never an
    /// error.
    pub fn parse(raw: &str) -> Option<Self> {
        let bytes = raw.as_bytes();
        if raw.len() > MAX_RETURN_TO || bytes.first() != Some(&b'/') {
            return None;
        }
        if matches!(bytes.get(1), Some(b'/' | b'\\')) {
            return None;
        }
        if bytes.contains(&b'\\') || super::has_forbidden_char(raw) {
            return None;
        }
        let path = decoded_path(raw);
        if has_dot_segment(&path) || leads_to_login_or_signup(&path) {
            return None;
        }
        Some(Self(raw.to_owned()))
    }

    /// Like `parse`, with `/` as the fallback.
    pub fn or_root(raw: Option<&str>) -> Self {
        raw.and_then(Self::parse).unwrap_or_else(Self::root)
    }

    /// `/`.
    pub fn root() -> Self {
        Self("/".to_owned())
    }

    /// The path.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The path part (before any `?` or `#`) with its percent-escapes decoded.
fn decoded_path(raw: &str) -> String {
    percent_decode_lossy(raw.split(['?', '#']).next().unwrap_or(""))
}

/// Whether a decoded path has a `.` or `..` segment.
fn has_dot_segment(path: &str) -> bool {
    path.split('/')
        .any(|segment| segment == "." || segment == "..")
}

/// Whether a decoded path, compared case-insensitively, is `/auth/login` or `/auth/signup` (or
/// below them).
fn leads_to_login_or_signup(path: &str) -> bool {
    let squeezed = squeeze_slashes(&path.to_ascii_lowercase());
    ["/auth/login", "/auth/signup"].iter().any(|p| {
        squeezed == *p
            || squeezed
                .strip_prefix(p)
                .is_some_and(|rest| rest.starts_with('/') || rest.starts_with(';'))
    })
}

fn squeeze_slashes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_slash = false;
    for c in s.chars() {
        if c == '/' && prev_slash {
            continue;
        }
        prev_slash = c == '/';
        out.push(c);
    }
    out
}

fn percent_decode_lossy(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            // Two hex digits exactly (`from_str_radix` alone would take a sign: `%+1`).
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_are_kept() {
        for ok in [
            "/",
            "/app",
            "/app/x?y=1#z",
            "/a/b/c",
            "/auth/account",
            "/login",
            "/auth/loginx",
            "/app/.well-known",
            "/app/..x/y",
            "/app/v1.2/x",
            "/app?next=/x/../y",
            "/app#/./x",
        ] {
            assert_eq!(
                ReturnTo::parse(ok).map(|r| r.0),
                Some(ok.to_owned()),
                "{ok}"
            );
        }
        let max = format!("/{}", "a".repeat(MAX_RETURN_TO - 1));
        assert!(ReturnTo::parse(&max).is_some());
    }

    #[test]
    fn every_attack_falls_back_to_root() {
        let long = format!("/{}", "a".repeat(MAX_RETURN_TO));
        let attacks = [
            "",
            "app",
            "//evil.com",
            "/\\evil.com",
            "/\\/evil.com",
            "\\\\evil.com",
            "/app\\..\\x",
            "https://evil.com",
            "javascript:alert(1)",
            " /app",
            "/app\tx",
            "/\t/evil.com",
            "/app\r\nSet-Cookie: x=1",
            "/app\nx",
            "/app\u{0}",
            "/app\u{7f}",
            "/app\u{85}",
            "/app\u{202E}gnp.exe",
            long.as_str(),
            "/auth/login",
            "/auth/login?return_to=/auth/login",
            "/auth/signup",
            "/auth/signup/",
            "/AUTH/Login",
            "//auth/login",
            "/auth//login",
            "/%61uth/login",
            "/auth/login#x",
            "/auth/./login",
            "/auth/%2e/login",
            "/x/../auth/login",
            "/x/%2E%2e/auth/login",
            "/app/..",
            "/app/.",
        ];
        for a in attacks {
            assert_eq!(ReturnTo::parse(a), None, "{a:?}");
            assert_eq!(ReturnTo::or_root(Some(a)).as_str(), "/", "{a:?}");
        }
        assert_eq!(ReturnTo::or_root(None).as_str(), "/");
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

    /// Pieces that make the tricky cases likely: slashes, backslashes, dots and their encodings,
    /// the forbidden targets in any case, controls, bidi and other text.
    const PIECES: &[&str] = &[
        "/", "/", "\\", ".", "..", "%2e", "%2E", "%2f", "%5c", "%", "%zz", "auth", "AUTH", "login",
        "Login", "signup", "app", "?", "#", ";", "=", "a", "é", "\t", "\n", "\0", "\u{7f}",
        "\u{85}", "\u{202E}", " ", "%00", "%+", "+2", "%-",
    ];

    fn candidate() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(PIECES), 0..12).prop_map(|v| v.concat())
    }

    /// SPEC §10, written out rule by rule.
    fn model(raw: &str) -> bool {
        let starts_right =
            raw.starts_with('/') && !raw.starts_with("//") && !raw.starts_with("/\\");
        let clean = !raw.contains('\\')
            && !raw.chars().any(|c| {
                c.is_control()
                    || ('\u{202A}'..='\u{202E}').contains(&c)
                    || ('\u{2066}'..='\u{2069}').contains(&c)
                    || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}')
            });
        if !(starts_right && clean && raw.len() <= MAX_RETURN_TO) {
            return false;
        }
        let path = raw.split(['?', '#']).next().unwrap_or("");
        // Decode %XX escapes one at a time.
        let mut bytes = Vec::new();
        let mut rest = path.as_bytes();
        while let Some((&b, tail)) = rest.split_first() {
            let hex = tail.get(..2).and_then(|h| std::str::from_utf8(h).ok());
            match (b, hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
                (b'%', Some(v))
                    if hex.is_some_and(|h| h.bytes().all(|c| c.is_ascii_hexdigit())) =>
                {
                    bytes.push(v);
                    rest = tail.get(2..).unwrap_or_default();
                }
                _ => {
                    bytes.push(b);
                    rest = tail;
                }
            }
        }
        let decoded = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
        if decoded.split('/').any(|s| s == "." || s == "..") {
            return false;
        }
        let segments: Vec<&str> = decoded.split('/').filter(|s| !s.is_empty()).collect();
        let first_two = segments.first().copied() == Some("auth")
            && segments.get(1).is_some_and(|s| {
                let name = s.split(';').next().unwrap_or("");
                (name == "login" || name == "signup")
                    && (s.len() == name.len() || s.as_bytes().get(name.len()) == Some(&b';'))
            });
        !first_two
    }

    proptest! {
        #[test]
        fn parse_agrees_with_the_spec_model(raw in candidate()) {
            let got = ReturnTo::parse(&raw);
            prop_assert_eq!(got.is_some(), model(&raw), "{:?}", raw);
            if let Some(r) = got {
                // Accepted values are kept verbatim and accepted again.
                prop_assert_eq!(r.as_str(), raw.as_str());
                prop_assert_eq!(ReturnTo::parse(r.as_str()), Some(r.clone()));
                prop_assert!(r.as_str().len() <= MAX_RETURN_TO);
            }
        }

        #[test]
        fn arbitrary_text_never_panics_and_only_local_paths_pass(raw in any::<String>()) {
            if let Some(r) = ReturnTo::parse(&raw) {
                prop_assert!(r.as_str().starts_with('/'));
                prop_assert!(!r.as_str().starts_with("//"));
                prop_assert!(!r.as_str().chars().any(char::is_control));
            }
        }
    }
}

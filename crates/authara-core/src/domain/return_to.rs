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
            let hex = bytes
                .get(i + 1..i + 3)
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

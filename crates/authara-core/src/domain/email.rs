use std::fmt;

/// Longest email address accepted (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;

/// A normalised (trimmed, lowercased) email address that passed the signup checks.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

/// Why an email address was refused; `Display` is shown to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("Email is required.")]
    Empty,
    #[error("Email must be at most 254 characters.")]
    TooLong,
    #[error("Email address is not valid.")]
    Invalid,
}

impl Email {
    /// Trims and lowercases, as login does; no other check. Used to look users up.
    pub fn normalise(raw: &str) -> String {
        raw.trim().to_lowercase()
    }

    /// The normalised address to look a user up by at login, or `None` when no account can
    /// have it: longer than [`MAX_EMAIL_LEN`], or holding a control or bidi character (which
    /// [`Email::parse`] refuses at signup, and PostgreSQL could not even compare: NUL). Such
    /// input never reaches the database.
    pub fn lookup(raw: &str) -> Option<String> {
        let s = Self::normalise(raw);
        (s.len() <= MAX_EMAIL_LEN && !super::has_forbidden_char(&s)).then_some(s)
    }

    /// Validates an address for signup: at most [`MAX_EMAIL_LEN`] bytes, an `@` with something
    /// on both sides, no whitespace, control or bidi character.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let s = Self::normalise(raw);
        if s.is_empty() {
            return Err(EmailError::Empty);
        }
        if s.len() > MAX_EMAIL_LEN {
            return Err(EmailError::TooLong);
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err(EmailError::Invalid);
        };
        let bad_char = |c: char| super::is_forbidden_char(c) || c.is_whitespace();
        if local.is_empty() || domain.is_empty() || s.chars().any(bad_char) {
            return Err(EmailError::Invalid);
        }
        Ok(Self(s))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the last `@`.
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(l, _)| l)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_trimmed_and_lowercased() {
        let e = Email::parse("  Ada@Example.COM ").unwrap();
        assert_eq!(e.as_str(), format!("ada{}example.com", '@'));
        assert_eq!(e.local_part(), "ada");
    }

    #[test]
    fn refuses_malformed_addresses() {
        assert_eq!(Email::parse("  "), Err(EmailError::Empty));
        assert_eq!(Email::parse("no-at-sign"), Err(EmailError::Invalid));
        assert_eq!(Email::parse("@example.com"), Err(EmailError::Invalid));
        assert_eq!(Email::parse("ada@"), Err(EmailError::Invalid));
        assert_eq!(Email::parse("a da@x.y"), Err(EmailError::Invalid));
        assert_eq!(Email::parse("ada\n@x.y"), Err(EmailError::Invalid));
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&long), Err(EmailError::TooLong));
        let max = format!("{}@example.com", "a".repeat(MAX_EMAIL_LEN - 12));
        assert!(Email::parse(&max).is_ok());
        for c in ['\0', '\u{7f}', '\u{85}', '\u{202E}', '\u{2066}'] {
            let e = format!("ad{c}a@x.y");
            assert_eq!(Email::parse(&e), Err(EmailError::Invalid), "{c:?}");
            assert_eq!(Email::lookup(&e), None, "{c:?}");
        }
    }

    #[test]
    fn lookup_normalises_and_bounds() {
        assert_eq!(Email::lookup(" Ada@X.Y ").as_deref(), Some("ada@x.y"));
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::lookup(&long), None);
    }
}

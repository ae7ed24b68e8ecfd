use std::fmt;

/// Fewest characters in a new password.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Most characters in a new password; also the bound for login attempts.
pub const MAX_PASSWORD_CHARS: usize = 128;

/// A plaintext password. `Debug` never shows it.
#[derive(Clone)]
pub struct Password(String);

/// Why a new password was refused; `Display` is shown to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub enum PasswordError {
    Empty,
    TooShort,
    TooLong,
    Control,
}

impl PasswordError {
    /// What is wrong, for the user (a page or a JSON error message).
    pub fn message(self) -> &'static str {
        match self {
            Self::Empty => "Password is required.",
            Self::TooShort => "Password must be at least 8 characters.",
            Self::TooLong => "Password must be at most 128 characters.",
            Self::Control => "Password must not contain control characters.",
        }
    }
}

impl Password {
    /// Validates a new password (signup): 8 to 128 characters, none of them a control character
    /// (NUL, tab, CR, LF, DEL, C1), which no keyboard types and some other implementations
    /// would cut the password at.
    pub fn parse_new(raw: &str) -> Result<Self, PasswordError> {
        let n = raw.chars().count();
        if n == 0 {
            Err(PasswordError::Empty)
        } else if n < MIN_PASSWORD_CHARS {
            Err(PasswordError::TooShort)
        } else if n > MAX_PASSWORD_CHARS {
            Err(PasswordError::TooLong)
        } else if raw.chars().any(char::is_control) {
            Err(PasswordError::Control)
        } else {
            Ok(Self(raw.to_owned()))
        }
    }

    /// Wraps a password presented at login, unchecked but for its size bound: an oversized one
    /// is `None` and can never verify.
    pub fn attempt(raw: &str) -> Option<Self> {
        (raw.chars().count() <= MAX_PASSWORD_CHARS).then(|| Self(raw.to_owned()))
    }

    /// The plaintext, for the hasher only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_bounds_count_characters() {
        assert_eq!(Password::parse_new("").err(), Some(PasswordError::Empty));
        assert_eq!(
            Password::parse_new("1234567").err(),
            Some(PasswordError::TooShort)
        );
        assert!(Password::parse_new("12345678").is_ok());
        assert!(Password::parse_new(&"é".repeat(128)).is_ok());
        assert_eq!(
            Password::parse_new(&"a".repeat(129)).err(),
            Some(PasswordError::TooLong)
        );
        assert!(Password::attempt(&"a".repeat(129)).is_none());
        for c in ['\0', '\t', '\n', '\r', '\u{7f}', '\u{85}'] {
            let p = format!("correct{c}horse");
            assert_eq!(
                Password::parse_new(&p).err(),
                Some(PasswordError::Control),
                "{c:?}"
            );
        }
        // Not a control character: any other text is fine.
        assert!(Password::parse_new("correct \u{202E}horse ☃").is_ok());
    }

    #[test]
    fn debug_is_redacted() {
        let p = Password::parse_new("correct horse").unwrap();
        assert!(!format!("{p:?}").contains("horse"));
    }
}

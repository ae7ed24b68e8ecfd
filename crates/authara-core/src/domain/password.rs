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
pub enum PasswordError {
    #[error("Password is required.")]
    Empty,
    #[error("Password must be at least 8 characters.")]
    TooShort,
    #[error("Password must be at most 128 characters.")]
    TooLong,
}

impl Password {
    /// Validates a new password (signup): 8 to 128 characters.
    pub fn parse_new(raw: &str) -> Result<Self, PasswordError> {
        let n = raw.chars().count();
        if n == 0 {
            Err(PasswordError::Empty)
        } else if n < MIN_PASSWORD_CHARS {
            Err(PasswordError::TooShort)
        } else if n > MAX_PASSWORD_CHARS {
            Err(PasswordError::TooLong)
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
    }

    #[test]
    fn debug_is_redacted() {
        let p = Password::parse_new("correct horse").unwrap();
        assert!(!format!("{p:?}").contains("horse"));
    }
}

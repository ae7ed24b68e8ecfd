use crate::random::{below, Random};

/// A username: 3 to 32 characters of `a-z 0-9 _ - .`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

/// Why a username was refused; `Display` is shown to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("Username must be 3 to 32 characters long.")]
    Length,
    #[error("Username may contain only a-z, 0-9, '_', '-' and '.'.")]
    Characters,
}

/// Fewest characters in a username.
pub const MIN_USERNAME_CHARS: usize = 3;
/// Most characters in a username.
pub const MAX_USERNAME_CHARS: usize = 32;
const MIN: usize = MIN_USERNAME_CHARS;
const MAX: usize = MAX_USERNAME_CHARS;
const SUFFIX_DIGITS: usize = 5;

fn allowed(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.')
}

impl Username {
    /// Validates a username chosen by the user (input is trimmed, not lowercased).
    pub fn parse(raw: &str) -> Result<Self, UsernameError> {
        let s = raw.trim();
        let n = s.chars().count();
        if !(MIN..=MAX).contains(&n) {
            return Err(UsernameError::Length);
        }
        if !s.chars().all(allowed) {
            return Err(UsernameError::Characters);
        }
        Ok(Self(s.to_owned()))
    }

    /// A username derived from an email's local part: sanitised, lowercased, plus `-` and five
    /// random digits. Always valid.
    pub fn derive(local_part: &str, random: &dyn Random) -> Self {
        let mut base: String = local_part
            .to_lowercase()
            .chars()
            .filter(|c| allowed(*c))
            .take(MAX - SUFFIX_DIGITS - 1)
            .collect();
        if base.is_empty() {
            base.push_str("user");
        }
        let n = below(random, 100_000);
        Self(format!("{base}-{n:05}"))
    }

    /// The username.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::OsRandom;

    #[test]
    fn parse_enforces_length_and_alphabet() {
        assert!(Username::parse("ada").is_ok());
        assert!(Username::parse("a.d-a_9").is_ok());
        assert_eq!(Username::parse("ab"), Err(UsernameError::Length));
        assert_eq!(Username::parse(&"a".repeat(33)), Err(UsernameError::Length));
        assert_eq!(Username::parse("Ada"), Err(UsernameError::Characters));
        assert_eq!(Username::parse("a da"), Err(UsernameError::Characters));
        assert_eq!(Username::parse("adé"), Err(UsernameError::Characters));
    }

    #[test]
    fn derived_usernames_are_sanitised_and_valid() {
        let u = Username::derive("Ada.Lovelace+Test", &OsRandom);
        let (base, digits) = u.as_str().rsplit_once('-').unwrap();
        assert_eq!(base, "ada.lovelacetest");
        assert_eq!(digits.len(), 5);
        assert!(digits.bytes().all(|b| b.is_ascii_digit()));
        assert!(Username::parse(u.as_str()).is_ok());

        let u = Username::derive("ü+ß", &OsRandom);
        assert!(u.as_str().starts_with("user-"));
        let u = Username::derive(&"x".repeat(100), &OsRandom);
        assert!(Username::parse(u.as_str()).is_ok());
    }
}

//! Randomness, injected. Production uses the operating system's CSPRNG only.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use std::fmt;
use subtle::ConstantTimeEq as _;

/// A source of cryptographically secure random bytes.
pub trait Random: Send + Sync + 'static {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);
}

/// The operating system's CSPRNG (`getrandom`).
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&self, buf: &mut [u8]) {
        rand::rngs::OsRng.fill_bytes(buf);
    }
}

/// 256 random bits, base64url without padding (43 characters).
pub fn token_256(random: &dyn Random) -> SecretToken {
    let mut bytes = [0u8; 32];
    random.fill(&mut bytes);
    SecretToken(URL_SAFE_NO_PAD.encode(bytes))
}

/// A uniformly random number below `bound` (rejection sampling, no modulo bias).
pub fn below(random: &dyn Random, bound: u32) -> u32 {
    if bound <= 1 {
        return 0;
    }
    let zone = u32::MAX - (u32::MAX % bound);
    loop {
        let mut b = [0u8; 4];
        random.fill(&mut b);
        let v = u32::from_le_bytes(b);
        if v < zone {
            return v % bound;
        }
    }
}

/// A random version-4 UUID from the injected source.
pub fn uuid_v4(random: &dyn Random) -> uuid::Uuid {
    let mut b = [0u8; 16];
    random.fill(&mut b);
    uuid::Builder::from_random_bytes(b).into_uuid()
}

/// A secret string (refresh token, CSRF token) whose `Debug` shows only that it is redacted and
/// whose equality is decided in constant time.
#[derive(Clone)]
pub struct SecretToken(String);

impl SecretToken {
    /// Wraps a token a client presented (a refresh token handed back unchanged).
    pub(crate) fn presented(token: &str) -> Self {
        Self(token.to_owned())
    }

    /// The plaintext, for a cookie or a response body only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl PartialEq for SecretToken {
    /// Constant time in the contents (only the lengths may show).
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for SecretToken {}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_43_url_safe_characters_and_differ() {
        let a = token_256(&OsRandom);
        let b = token_256(&OsRandom);
        assert_eq!(a.expose().len(), 43);
        assert!(a
            .expose()
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_ne!(a, b);
    }

    #[test]
    fn equality_compares_the_whole_token() {
        let a = token_256(&OsRandom);
        assert_eq!(a, a.clone());
        let mut last = a.expose().to_owned();
        let flipped = if last.pop() == Some('A') { 'B' } else { 'A' };
        last.push(flipped);
        assert_ne!(a, SecretToken(last));
        assert_ne!(a, SecretToken(a.expose()[..42].to_owned()));
        assert_ne!(a, SecretToken(String::new()));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let t = token_256(&OsRandom);
        assert!(!format!("{t:?}").contains(t.expose()));
    }

    #[test]
    fn below_stays_in_range() {
        for _ in 0..1000 {
            assert!(below(&OsRandom, 100_000) < 100_000);
        }
    }
}

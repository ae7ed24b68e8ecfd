//! Double-submit CSRF tokens (SPEC §5).

use crate::random::{token_256, Random, SecretToken};
use subtle::ConstantTimeEq as _;

/// Longest CSRF value we look at; anything longer is refused without comparing.
const MAX_LEN: usize = 256;

/// A fresh CSRF token: 256 random bits, base64url.
pub fn generate(random: &dyn Random) -> SecretToken {
    token_256(random)
}

/// Whether the value presented in the header or form field matches the cookie, in constant time
/// (for values of equal length). Missing, empty or oversized values never match.
pub fn matches(cookie: Option<&str>, presented: Option<&str>) -> bool {
    match (cookie, presented) {
        (Some(c), Some(p)) if !c.is_empty() && c.len() <= MAX_LEN && p.len() <= MAX_LEN => {
            c.as_bytes().ct_eq(p.as_bytes()).into()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::OsRandom;

    #[test]
    fn equal_values_match() {
        let t = generate(&OsRandom);
        assert!(matches(Some(t.expose()), Some(t.expose())));
    }

    #[test]
    fn anything_else_does_not_match() {
        let t = generate(&OsRandom);
        let other = generate(&OsRandom);
        let long = "a".repeat(MAX_LEN + 1);
        let cases: [(Option<&str>, Option<&str>); 7] = [
            (None, None),
            (Some(t.expose()), None),
            (None, Some(t.expose())),
            (Some(""), Some("")),
            (Some(t.expose()), Some(other.expose())),
            (Some(t.expose()), Some(&t.expose()[1..])),
            (Some(&long), Some(&long)),
        ];
        for (c, p) in cases {
            assert!(!matches(c, p), "{c:?} / {p:?}");
        }
    }
}

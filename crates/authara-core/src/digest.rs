//! Stored digests of secrets: a token, a state or a browser binding is kept only as its
//! SHA-256 in lowercase hex, and what a client presents is compared to it in constant time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

/// Lower-case hex of `bytes`.
pub fn hex_lower(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// SHA-256 of `value`, lowercase hex (64 characters).
pub fn sha256_hex(value: &str) -> String {
    hex_lower(&Sha256::digest(value.as_bytes()))
}

/// Whether `presented` (absent, empty or longer than `max` bytes: no) hashes to `stored`,
/// compared in constant time.
pub fn matches_stored(presented: Option<&str>, stored: &str, max: usize) -> bool {
    presented
        .filter(|p| !p.is_empty() && p.len() <= max)
        .is_some_and(|p| bool::from(sha256_hex(p).as_bytes().ct_eq(stored.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_lowercase_sha256_hex_and_compare_only_the_right_value() {
        let d = sha256_hex("abc");
        assert_eq!(
            d,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(matches_stored(Some("abc"), &d, 128));
        assert!(!matches_stored(Some("abd"), &d, 128));
        assert!(!matches_stored(None, &d, 128));
        assert!(!matches_stored(Some(""), &sha256_hex(""), 128));
        assert!(!matches_stored(Some("abc"), &d, 2));
    }
}

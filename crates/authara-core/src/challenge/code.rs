//! Challenge codes: six digits from the OS RNG, stored only as an HMAC keyed with the JWT keys
//! and bound to their challenge, compared in constant time under every key.

use std::fmt;

use uuid::Uuid;

use crate::jwt::JwtKeys;
use crate::random::{below, Random};

/// How many digits a code has.
pub const CODE_DIGITS: usize = 6;

/// A code as emailed. `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct Code(String);

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Code(<redacted>)")
    }
}

impl Code {
    /// A fresh code, uniform in `000000..=999999`.
    pub fn mint(random: &dyn Random) -> Self {
        Self(format!("{:06}", below(random, 1_000_000)))
    }

    /// A code as typed: surrounding whitespace is ignored, then exactly six ASCII digits.
    pub fn parse(typed: &str) -> Option<Self> {
        let typed = typed.trim();
        (typed.len() == CODE_DIGITS && typed.bytes().all(|b| b.is_ascii_digit()))
            .then(|| Self(typed.to_owned()))
    }

    /// The digits, for the email only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// What is MACed: a fixed label (never the start of a JWT's signing input, which is `eyJ`),
/// the challenge id and the code, so a stored MAC is worthless for any other challenge.
fn mac_input(challenge_id: Uuid, code: &Code) -> Vec<u8> {
    let mut input = Vec::with_capacity(64);
    input.extend_from_slice(b"authara challenge code v1\0");
    input.extend_from_slice(challenge_id.as_bytes());
    input.extend_from_slice(code.0.as_bytes());
    input
}

/// The stored form of `code` for `challenge_id`, under the active key.
pub fn code_mac(keys: &JwtKeys, challenge_id: Uuid, code: &Code) -> Option<String> {
    keys.mac_hex(&mac_input(challenge_id, code))
}

/// Whether `code` is the one stored as `mac` for `challenge_id`, under any configured key.
pub fn code_matches(keys: &JwtKeys, challenge_id: Uuid, code: &Code, mac: &str) -> bool {
    keys.any_mac_matches(&mac_input(challenge_id, code), mac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::OsRandom;

    fn keys(kids: &[(&str, u8)], active: &str) -> JwtKeys {
        let keys = kids
            .iter()
            .map(|(kid, byte)| ((*kid).to_owned(), vec![*byte; 32]))
            .collect();
        JwtKeys::new(keys, Some(active), "authara").unwrap()
    }

    #[test]
    fn minted_codes_are_six_digits_and_parse_back() {
        for _ in 0..200 {
            let code = Code::mint(&OsRandom);
            assert_eq!(code.expose().len(), 6);
            assert_eq!(Code::parse(code.expose()), Some(code.clone()));
        }
    }

    #[test]
    fn only_six_ascii_digits_parse() {
        assert!(Code::parse(" 012345 ").is_some());
        for bad in [
            "",
            "12345",
            "1234567",
            "12a456",
            "١٢٣٤٥٦",
            "12 456",
            "+12345",
        ] {
            assert_eq!(Code::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_code_matches_its_challenge_under_a_rotated_key_set_and_nothing_else() {
        let old = keys(&[("a", 1)], "a");
        let rotated = keys(&[("a", 1), ("b", 2)], "b");
        let id = Uuid::from_u128(7);
        let code = Code::parse("123456").unwrap();
        let mac = code_mac(&old, id, &code).unwrap();
        assert!(code_matches(&old, id, &code, &mac));
        assert!(code_matches(&rotated, id, &code, &mac));
        assert!(code_matches(&rotated, id, &code, &mac.to_uppercase()));
        assert!(!code_matches(&rotated, Uuid::from_u128(8), &code, &mac));
        assert!(!code_matches(
            &rotated,
            id,
            &Code::parse("123457").unwrap(),
            &mac
        ));
        assert!(!code_matches(&keys(&[("b", 2)], "b"), id, &code, &mac));
        assert!(!code_matches(&old, id, &code, "not hex"));
        assert!(!code_matches(&old, id, &code, &mac[..62]));
    }

    #[test]
    fn debug_hides_the_code() {
        let code = Code::parse("987654").unwrap();
        assert!(!format!("{code:?}").contains("987654"));
    }
}

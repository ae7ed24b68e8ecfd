//! Invitations to join an organization: their tokens, and (in [`store`]) the aggregate.
//!
//! A token is 32 bytes, base64url without padding, like upstream's, but it is not random
//! bytes kept somewhere: it is the HMAC-SHA256 of the invitation's id under the active JWT key,
//! so that neither the invitation row (which keeps only the token's SHA-256) nor the queued
//! email job (which keeps only the invitation id) holds it. The email worker derives it again
//! right before sending, and checks it against the stored hash under every configured key (a
//! key rotation in between does not break the link). Reading the database is not enough to
//! accept an invitation; holding the JWT keys already means holding every account.

pub mod service;
pub mod store;

pub use service::{InvitationError, InvitationService};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use subtle::ConstantTimeEq as _;
use uuid::Uuid;

use crate::jwt::JwtKeys;

/// The longest token accepted from a request (a real one is 43 characters).
pub const MAX_TOKEN_LEN: usize = 128;

/// Domain separation from JWT signing input and from challenge codes.
fn token_input(invitation_id: Uuid) -> Vec<u8> {
    let mut input = b"authara:invitation-token:v1:".to_vec();
    input.extend_from_slice(invitation_id.as_bytes());
    input
}

/// An invitation's token (a secret: not `Debug`-printed, not logged).
#[derive(Clone, PartialEq, Eq)]
pub struct InvitationToken(String);

impl std::fmt::Debug for InvitationToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InvitationToken(<redacted>)")
    }
}

impl InvitationToken {
    /// The token of `invitation_id` under the active key; `None` without keys.
    pub fn derive(keys: &JwtKeys, invitation_id: Uuid) -> Option<Self> {
        keys.macs(&token_input(invitation_id))
            .first()
            .map(|mac| Self(URL_SAFE_NO_PAD.encode(mac)))
    }

    /// The token of `invitation_id` whose hash is `token_hash`, under whichever configured key
    /// gives it (the email worker, after a possible rotation); `None` when none does.
    pub fn recover(keys: &JwtKeys, invitation_id: Uuid, token_hash: &str) -> Option<Self> {
        keys.macs(&token_input(invitation_id))
            .into_iter()
            .map(|mac| Self(URL_SAFE_NO_PAD.encode(mac)))
            .find(|token| bool::from(token.hash().as_bytes().ct_eq(token_hash.as_bytes())))
    }

    /// A token as given in a request, bounded in size; `None` when it cannot be one.
    pub fn parse(given: &str) -> Option<Self> {
        let given = given.trim();
        let plausible = !given.is_empty()
            && given.len() <= MAX_TOKEN_LEN
            && given
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        plausible.then(|| Self(given.to_owned()))
    }

    /// What is stored and looked up: lowercase hex SHA-256.
    pub fn hash(&self) -> String {
        crate::digest::sha256_hex(&self.0)
    }

    /// The token itself, for the link and the email.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(list: &[(&str, &[u8])], active: &str) -> JwtKeys {
        JwtKeys::new(
            list.iter()
                .map(|(k, s)| ((*k).to_owned(), s.to_vec()))
                .collect(),
            Some(active),
            "authara",
        )
        .expect("keys")
    }

    #[test]
    fn a_token_is_32_bytes_bound_to_its_invitation_and_key() {
        let ks = keys(&[("a", &[7u8; 32])], "a");
        let (one, two) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let t1 = InvitationToken::derive(&ks, one).expect("token");
        assert_eq!(t1.expose().len(), 43);
        assert_eq!(URL_SAFE_NO_PAD.decode(t1.expose()).map(|b| b.len()), Ok(32));
        assert_ne!(Some(&t1), InvitationToken::derive(&ks, two).as_ref());
        let other_key = keys(&[("a", &[8u8; 32])], "a");
        assert_ne!(Some(&t1), InvitationToken::derive(&other_key, one).as_ref());
        assert_eq!(t1.hash().len(), 64);
        assert!(!format!("{t1:?}").contains(t1.expose()));
    }

    #[test]
    fn a_token_is_recovered_after_a_rotation_and_not_for_another_hash() {
        let before = keys(&[("a", &[7u8; 32])], "a");
        let id = Uuid::from_u128(9);
        let token = InvitationToken::derive(&before, id).expect("token");
        let after = keys(&[("a", &[7u8; 32]), ("b", &[9u8; 32])], "b");
        assert_eq!(
            InvitationToken::recover(&after, id, &token.hash()),
            Some(token.clone())
        );
        assert_eq!(InvitationToken::recover(&after, id, &"0".repeat(64)), None);
        let dropped = keys(&[("b", &[9u8; 32])], "b");
        assert_eq!(InvitationToken::recover(&dropped, id, &token.hash()), None);
    }

    #[test]
    fn parse_bounds_the_token() {
        assert!(InvitationToken::parse("abc-_XYZ019").is_some());
        for bad in ["", " ", "a b", "a/b", "a=", &"a".repeat(MAX_TOKEN_LEN + 1)] {
            assert!(InvitationToken::parse(bad).is_none(), "{bad:?}");
        }
    }
}

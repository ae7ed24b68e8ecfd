//! Webhook signatures.
//!
//! Upstream's header `X-Authara-Signature: sha256=<hex HMAC-SHA256(secret, body)>` proves who sent
//! a body but not when, so a captured request can be replayed forever. We send it unchanged (an
//! upstream receiver keeps working) and add `X-Authara-Timestamp: <unix seconds>` with
//! `X-Authara-Signature-V2: v2=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`, which lets a
//! receiver refuse anything outside a replay window. The `verify_*` functions are what a receiver
//! (and our tests) use.

use std::fmt;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Upstream's signature header: `sha256=<hex HMAC-SHA256(secret, raw body)>`.
pub const SIGNATURE_HEADER: &str = "X-Authara-Signature";
/// When the request was signed, in unix seconds; part of the v2 signature.
pub const TIMESTAMP_HEADER: &str = "X-Authara-Timestamp";
/// Ours: `v2=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`.
pub const SIGNATURE_V2_HEADER: &str = "X-Authara-Signature-V2";

const V1_PREFIX: &str = "sha256=";
const V2_PREFIX: &str = "v2=";

/// The shared HMAC key (`AUTHARA_WEBHOOK_SECRET`). Only the keyed MAC state is kept; `Debug`
/// shows nothing of it.
#[derive(Clone)]
pub struct WebhookSecret {
    mac: HmacSha256,
}

/// An empty webhook secret was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the webhook secret is empty")]
pub struct EmptySecret;

impl WebhookSecret {
    /// A key from the secret's bytes; an empty secret is refused (it would sign nothing).
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Self, EmptySecret> {
        let secret = secret.as_ref();
        if secret.is_empty() {
            return Err(EmptySecret);
        }
        let mac = HmacSha256::new_from_slice(secret).map_err(|_| EmptySecret)?;
        Ok(Self { mac })
    }

    /// The three signature headers' values for `body` signed at `timestamp` (unix seconds).
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> Signatures {
        let timestamp = timestamp.to_string();
        let mut v1 = self.mac.clone();
        v1.update(body);
        let mut v2 = self.mac.clone();
        v2.update(timestamp.as_bytes());
        v2.update(b".");
        v2.update(body);
        Signatures {
            signature: format!("{V1_PREFIX}{}", hex(&v1.finalize().into_bytes())),
            signature_v2: format!("{V2_PREFIX}{}", hex(&v2.finalize().into_bytes())),
            timestamp,
        }
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// Header values for one signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signatures {
    /// `X-Authara-Timestamp`.
    pub timestamp: String,
    /// `X-Authara-Signature` (upstream's).
    pub signature: String,
    /// `X-Authara-Signature-V2` (ours).
    pub signature_v2: String,
}

/// Why a signature was refused. Deliberately coarse: a receiver answers all of them the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A header is missing its prefix, is not hex, or the timestamp is not a number.
    #[error("malformed signature header")]
    Malformed,
    /// The signature does not match the body (or the timestamp) under this secret.
    #[error("signature mismatch")]
    Mismatch,
    /// The signature is authentic but its timestamp is outside the replay window.
    #[error("timestamp outside the replay window")]
    OutsideWindow,
}

/// Checks upstream's `X-Authara-Signature` value against the raw body, in constant time.
/// It has no timestamp, so it cannot tell a replay from a first delivery; prefer
/// [`verify_signature_v2`].
pub fn verify_signature(secret: &[u8], body: &[u8], header: &str) -> Result<(), VerifyError> {
    let expected = header
        .strip_prefix(V1_PREFIX)
        .and_then(unhex)
        .ok_or(VerifyError::Malformed)?;
    let mut mac = HmacSha256::new_from_slice(secret).map_err(|_| VerifyError::Mismatch)?;
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| VerifyError::Mismatch)
}

/// Checks `X-Authara-Timestamp` and `X-Authara-Signature-V2` against the raw body (constant-time
/// comparison), then that the timestamp is within `window` of `now` (unix seconds) either way.
/// The timestamp must be plain ASCII digits, exactly as sent.
pub fn verify_signature_v2(
    secret: &[u8],
    body: &[u8],
    timestamp: &str,
    header: &str,
    now: i64,
    window: Duration,
) -> Result<(), VerifyError> {
    if timestamp.is_empty()
        || timestamp.len() > 19
        || !timestamp.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(VerifyError::Malformed);
    }
    let sent: i64 = timestamp.parse().map_err(|_| VerifyError::Malformed)?;
    let expected = header
        .strip_prefix(V2_PREFIX)
        .and_then(unhex)
        .ok_or(VerifyError::Malformed)?;
    let mut mac = HmacSha256::new_from_slice(secret).map_err(|_| VerifyError::Mismatch)?;
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| VerifyError::Mismatch)?;
    let window = i64::try_from(window.as_secs()).unwrap_or(i64::MAX);
    if now.abs_diff(sent) > window.unsigned_abs() {
        return Err(VerifyError::OutsideWindow);
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            s.push(char::from(
                DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0'),
            ));
        }
    }
    s
}

/// Lower- or upper-case hex to bytes; `None` for an odd length or a non-hex character.
fn unhex(s: &str) -> Option<Vec<u8>> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let pairs = s.as_bytes().chunks_exact(2);
    if s.is_empty() || !pairs.remainder().is_empty() {
        return None;
    }
    pairs
        .map(|pair| match pair {
            [hi, lo] => Some((digit(*hi)? << 4) | digit(*lo)?),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_0123456789abcdef0123456789abcdef";
    const BODY: &str = r#"{"id":"00000000-0000-0000-0000-000000000007","type":"user.created","created_at":"2023-11-14T22:13:20.123456Z","data":{"user_id":"00000000-0000-0000-0000-000000000009"}}"#;
    // Computed independently with Python's hmac module:
    // hmac.new(SECRET, BODY, hashlib.sha256).hexdigest()
    const V1: &str = "sha256=9104d505134f2fbf4eb677ee1831284cb44fd646e2c5b450825086a93d2b9c56";
    // hmac.new(SECRET, b"1700000000." + BODY, hashlib.sha256).hexdigest()
    const V2: &str = "v2=40c65a80312ec4e394b56e682bc6a20afe90bba9727cd694061c3539d0139490";
    const WINDOW: Duration = Duration::from_secs(300);

    fn secret() -> WebhookSecret {
        WebhookSecret::new(SECRET).unwrap()
    }

    #[test]
    fn signatures_match_independently_computed_vectors() {
        let s = secret().sign(1_700_000_000, BODY.as_bytes());
        assert_eq!(s.timestamp, "1700000000");
        assert_eq!(s.signature, V1);
        assert_eq!(s.signature_v2, V2);
    }

    #[test]
    fn the_rfc_4231_style_fox_vector_matches() {
        // hmac.new(b"key", b"The quick brown fox jumps over the lazy dog", sha256)
        let s = WebhookSecret::new("key")
            .unwrap()
            .sign(1, b"The quick brown fox jumps over the lazy dog");
        assert_eq!(
            s.signature,
            "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
        // hmac.new(b"key", b"1.", sha256): the v2 input for an empty body
        let empty = WebhookSecret::new("key").unwrap().sign(1, b"");
        assert_eq!(
            empty.signature_v2,
            "v2=53123bc365c2fe4bee48bc5cc6cd6c19699147d43513154ed34277c7c063e80f"
        );
    }

    #[test]
    fn an_empty_secret_is_refused_and_debug_shows_no_secret() {
        assert_eq!(WebhookSecret::new("").unwrap_err(), EmptySecret);
        let shown = format!("{:?}", secret());
        assert_eq!(shown, "WebhookSecret(<redacted>)");
        assert!(!shown.contains("whsec"));
    }

    #[test]
    fn verify_accepts_what_sign_produces() {
        let s = secret().sign(1_700_000_000, BODY.as_bytes());
        let key = SECRET.as_bytes();
        assert_eq!(verify_signature(key, BODY.as_bytes(), &s.signature), Ok(()));
        assert_eq!(
            verify_signature_v2(
                key,
                BODY.as_bytes(),
                &s.timestamp,
                &s.signature_v2,
                1_700_000_000,
                WINDOW
            ),
            Ok(())
        );
    }

    #[test]
    fn verify_accepts_upper_case_hex() {
        let upper = format!("sha256={}", V1.trim_start_matches("sha256=").to_uppercase());
        assert_eq!(
            verify_signature(SECRET.as_bytes(), BODY.as_bytes(), &upper),
            Ok(())
        );
    }

    #[test]
    fn verify_v1_refuses_tampering_and_malformed_headers() {
        let key = SECRET.as_bytes();
        let body = BODY.as_bytes();
        let cases: &[(&[u8], &[u8], &str, VerifyError)] = &[
            (key, b"{}", V1, VerifyError::Mismatch),
            (b"another secret", body, V1, VerifyError::Mismatch),
            (key, body, V2, VerifyError::Malformed),
            (key, body, "sha256=", VerifyError::Malformed),
            (key, body, "sha256=abc", VerifyError::Malformed),
            (key, body, "sha256=zz", VerifyError::Malformed),
            (
                key,
                body,
                "SHA256=9104d505134f2fbf4eb677ee1831284cb44fd646e2c5b450825086a93d2b9c56",
                VerifyError::Malformed,
            ),
            (
                key,
                body,
                "sha256=9104d505134f2fbf4eb677ee1831284cb44fd646e2c5b450825086a93d2b9c",
                VerifyError::Mismatch,
            ),
            (
                key,
                body,
                "sha256=0104d505134f2fbf4eb677ee1831284cb44fd646e2c5b450825086a93d2b9c56",
                VerifyError::Mismatch,
            ),
            (key, body, "", VerifyError::Malformed),
        ];
        for (key, body, header, want) in cases {
            assert_eq!(verify_signature(key, body, header), Err(*want), "{header}");
        }
    }

    #[test]
    fn verify_v2_refuses_replays_outside_the_window_and_tampered_timestamps() {
        let key = SECRET.as_bytes();
        let body = BODY.as_bytes();
        let at = 1_700_000_000;
        let cases: &[(&str, &str, i64, Result<(), VerifyError>)] = &[
            ("1700000000", V2, at, Ok(())),
            ("1700000000", V2, at + 300, Ok(())),
            ("1700000000", V2, at - 300, Ok(())),
            ("1700000000", V2, at + 301, Err(VerifyError::OutsideWindow)),
            ("1700000000", V2, at - 301, Err(VerifyError::OutsideWindow)),
            ("1700000001", V2, at, Err(VerifyError::Mismatch)),
            ("+1700000000", V2, at, Err(VerifyError::Malformed)),
            (" 1700000000", V2, at, Err(VerifyError::Malformed)),
            ("", V2, at, Err(VerifyError::Malformed)),
            ("99999999999999999999", V2, at, Err(VerifyError::Malformed)),
            ("1700000000", V1, at, Err(VerifyError::Malformed)),
            ("1700000000", "v2=", at, Err(VerifyError::Malformed)),
        ];
        for (ts, header, now, want) in cases {
            assert_eq!(
                verify_signature_v2(key, body, ts, header, *now, WINDOW),
                *want,
                "{ts} {header} {now}"
            );
        }
        assert_eq!(
            verify_signature_v2(key, b"{}", "1700000000", V2, at, WINDOW),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn hex_round_trips() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(unhex(&hex(&bytes)), Some(bytes));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("g0"), None);
    }
}

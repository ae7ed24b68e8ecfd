//! HS256 access tokens (SPEC §4), implemented directly on HMAC-SHA256 so that exactly one
//! algorithm can ever be accepted and verification never allocates more than the claims.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::fmt;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::org::OrgRole;

type HmacSha256 = Hmac<Sha256>;

/// Longest token we try to parse.
const MAX_TOKEN_LEN: usize = 4096;

/// How far in the future a token's `iat` may lie: the clock skew tolerated between the
/// instances that sign and verify (NTP keeps real clocks well within it). A token issued later
/// than that was not issued by a correct instance, and would outlive its stated lifetime.
pub const MAX_IAT_SKEW_SECS: i64 = 60;
/// Shortest accepted key, in bytes after decoding.
pub const MIN_KEY_BYTES: usize = 32;
/// The role that makes a user an administrator.
pub const ADMIN_ROLE: &str = "authara:admin";

/// The audience a token is issued for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Ordinary application access.
    App,
    /// Administrative access; only for users holding `authara:admin`.
    Admin,
}

impl Audience {
    /// The claim value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::App => "app",
            Self::Admin => "admin",
        }
    }

    /// Parses `app` or `admin`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "app" => Some(Self::App),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// One signing key.
#[derive(Clone)]
struct Key {
    kid: String,
    mac: HmacSha256,
}

/// The configured key set: every key verifies, the active one signs.
#[derive(Clone)]
pub struct JwtKeys {
    keys: Vec<Key>,
    active: usize,
    issuer: String,
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("JwtKeys")
            .field("kids", &kids)
            .field(
                "active",
                &self.keys.get(self.active).map(|k| k.kid.as_str()),
            )
            .field("issuer", &self.issuer)
            .finish()
    }
}

/// Why a key set could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeySetError {
    #[error("no keys")]
    Empty,
    #[error("key {0:?} is shorter than 32 bytes")]
    TooShort(String),
    #[error("key id {0:?} appears twice")]
    DuplicateKid(String),
    #[error("key id {0:?} is not valid (1 to 64 characters of A-Z a-z 0-9 _ - .)")]
    BadKid(String),
    #[error("active key id {0:?} is not in the key set")]
    UnknownActive(String),
}

/// Decodes exactly `out.len()` bytes of hex (either case) into `out`.
fn decode_hex(hex: &str, out: &mut [u8]) -> bool {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    if hex.len() != out.len() * 2 {
        return false;
    }
    for (slot, pair) in out.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        let (Some(&hi), Some(&lo)) = (pair.first(), pair.get(1)) else {
            return false;
        };
        let (Some(hi), Some(lo)) = (digit(hi), digit(lo)) else {
            return false;
        };
        *slot = (hi << 4) | lo;
    }
    true
}

fn valid_kid(kid: &str) -> bool {
    (1..=64).contains(&kid.len())
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

impl JwtKeys {
    /// Builds a key set from `(kid, secret)` pairs; `active` defaults to the only key.
    pub fn new(
        keys: Vec<(String, Vec<u8>)>,
        active: Option<&str>,
        issuer: impl Into<String>,
    ) -> Result<Self, KeySetError> {
        let mut out: Vec<Key> = Vec::with_capacity(keys.len());
        for (kid, secret) in keys {
            if !valid_kid(&kid) {
                return Err(KeySetError::BadKid(kid));
            }
            if secret.len() < MIN_KEY_BYTES {
                return Err(KeySetError::TooShort(kid));
            }
            if out.iter().any(|k| k.kid == kid) {
                return Err(KeySetError::DuplicateKid(kid));
            }
            let mac = HmacSha256::new_from_slice(&secret).map_err(|_| KeySetError::Empty)?;
            out.push(Key { kid, mac });
        }
        let active = match active {
            Some(a) => out
                .iter()
                .position(|k| k.kid == a)
                .ok_or_else(|| KeySetError::UnknownActive(a.to_owned()))?,
            None if out.len() == 1 => 0,
            None if out.is_empty() => return Err(KeySetError::Empty),
            None => return Err(KeySetError::UnknownActive(String::new())),
        };
        Ok(Self {
            keys: out,
            active,
            issuer: issuer.into(),
        })
    }

    /// The issuer (`iss`) this server signs and expects.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    fn active_key(&self) -> Option<&Key> {
        self.keys.get(self.active)
    }

    /// HMAC-SHA256 of `data` under the active key, lower-case hex: how challenge codes are
    /// stored (upstream keys them with the JWT keys, so that a rotation keeps them valid).
    /// `data` must be domain-separated from JWT signing input (which starts with `eyJ`).
    pub fn mac_hex(&self, data: &[u8]) -> Option<String> {
        let key = self.active_key()?;
        let mut mac = key.mac.clone();
        mac.update(data);
        Some(crate::digest::hex_lower(&mac.finalize().into_bytes()))
    }

    /// HMAC-SHA256 of `data` under every configured key, the active key first: what a value
    /// derived with [`JwtKeys::mac_hex`]'s key may be after a rotation. `data` must be
    /// domain-separated from JWT signing input.
    pub fn macs(&self, data: &[u8]) -> Vec<[u8; 32]> {
        let active = self.active_key().into_iter();
        let others = self
            .keys
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != self.active)
            .map(|(_, k)| k);
        active
            .chain(others)
            .map(|key| {
                let mut mac = key.mac.clone();
                mac.update(data);
                mac.finalize().into_bytes().into()
            })
            .collect()
    }

    /// Whether `mac_hex` is the HMAC-SHA256 of `data` under any configured key; every key is
    /// tried and each comparison takes constant time.
    pub fn any_mac_matches(&self, data: &[u8], mac_hex: &str) -> bool {
        let mut expected = [0u8; 32];
        if !decode_hex(mac_hex, &mut expected) {
            return false;
        }
        let mut found = false;
        for key in &self.keys {
            let mut mac = key.mac.clone();
            mac.update(data);
            found |= mac.verify_slice(&expected).is_ok();
        }
        found
    }

    /// Signs claims with the active key.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, JwtError> {
        let key = self.active_key().ok_or(JwtError::Invalid)?;
        let header = Header {
            alg: "HS256",
            typ: "JWT",
            kid: &key.kid,
        };
        let header = serde_json::to_vec(&header).map_err(|_| JwtError::Invalid)?;
        let payload = serde_json::to_vec(claims).map_err(|_| JwtError::Invalid)?;
        let mut token = URL_SAFE_NO_PAD.encode(header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut token);
        let mut mac = key.mac.clone();
        mac.update(token.as_bytes());
        let sig = mac.finalize().into_bytes();
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(sig, &mut token);
        Ok(token)
    }

    /// Verifies signature, algorithm, key id, issuer, audience, expiry, issue time (present, not
    /// more than [`MAX_IAT_SKEW_SECS`] in the future, not after `exp`) and claim shapes.
    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Result<AccessClaims, JwtError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(JwtError::Invalid);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Invalid);
        };
        let header_bytes = URL_SAFE_NO_PAD.decode(h).map_err(|_| JwtError::Invalid)?;
        let header: InHeader<'_> =
            serde_json::from_slice(&header_bytes).map_err(|_| JwtError::Invalid)?;
        if header.alg != "HS256" {
            return Err(JwtError::Invalid);
        }
        let kid = header.kid.ok_or(JwtError::Invalid)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(JwtError::Invalid)?;
        let mut sig = [0u8; 32];
        match URL_SAFE_NO_PAD.decode_slice(s, &mut sig) {
            Ok(32) => {}
            _ => return Err(JwtError::Invalid),
        }
        let mut mac = key.mac.clone();
        let signed_len = h.len() + 1 + p.len();
        mac.update(
            token
                .as_bytes()
                .get(..signed_len)
                .ok_or(JwtError::Invalid)?,
        );
        mac.verify_slice(&sig).map_err(|_| JwtError::Invalid)?;

        let payload = URL_SAFE_NO_PAD.decode(p).map_err(|_| JwtError::Invalid)?;
        let raw: RawClaims = serde_json::from_slice(&payload).map_err(|_| JwtError::Invalid)?;
        if raw.iss.as_deref() != Some(self.issuer.as_str()) {
            return Err(JwtError::Invalid);
        }
        let aud = match raw.aud {
            Some(OneOrMany::One(a)) => vec![a],
            Some(OneOrMany::Many(a)) => a,
            None => return Err(JwtError::Invalid),
        };
        if aud.is_empty() || aud.iter().any(|a| Audience::parse(a).is_none()) {
            return Err(JwtError::Invalid);
        }
        let exp = raw.exp.ok_or(JwtError::Invalid)?;
        if exp <= now.unix_timestamp() {
            return Err(JwtError::Invalid);
        }
        // Issued in the future (beyond the clock skew allowed between instances), or after it
        // expires: not a token this server or a sibling signed.
        let iat = raw.iat.ok_or(JwtError::Invalid)?;
        if iat > now.unix_timestamp().saturating_add(MAX_IAT_SKEW_SECS) || iat > exp {
            return Err(JwtError::Invalid);
        }
        let sub = raw
            .sub
            .as_deref()
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or(JwtError::Invalid)?;
        let sid = raw
            .sid
            .as_deref()
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or(JwtError::Invalid)?;
        // Upstream's verifiers (the server's and authara-go's) refuse a token without a
        // non-nil organization and a role; so do we, which also retires tokens signed before
        // organizations existed.
        let org_id = raw
            .org_id
            .as_deref()
            .and_then(|s| Uuid::parse_str(s).ok())
            .filter(|id| !id.is_nil())
            .ok_or(JwtError::Invalid)?;
        let org_role = raw
            .org_role
            .as_deref()
            .and_then(OrgRole::parse)
            .ok_or(JwtError::Invalid)?;
        Ok(AccessClaims {
            iss: self.issuer.clone(),
            sub,
            aud,
            iat,
            exp,
            sid,
            org_id,
            org_role,
            roles: raw.roles.unwrap_or_default(),
        })
    }
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: Uuid,
    pub aud: Vec<String>,
    pub iat: i64,
    pub exp: i64,
    pub sid: Uuid,
    /// The organization the session acts in (upstream HEAD's claim).
    pub org_id: Uuid,
    /// The user's role there.
    pub org_role: OrgRole,
    pub roles: Vec<String>,
}

impl AccessClaims {
    /// Whether the token was issued for `audience`.
    pub fn has_audience(&self, audience: Audience) -> bool {
        self.aud.iter().any(|a| a == audience.as_str())
    }

    /// Whether the token carries `authara:admin`.
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == ADMIN_ROLE)
    }
}

/// Why a token was refused. Deliberately coarse, expiry included: callers answer 401 either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("invalid token")]
    Invalid,
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'a str,
    typ: &'a str,
    kid: &'a str,
}

#[derive(Deserialize)]
struct InHeader<'a> {
    #[serde(borrow)]
    alg: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    kid: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct RawClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<OneOrMany>,
    iat: Option<i64>,
    exp: Option<i64>,
    sid: Option<String>,
    org_id: Option<String>,
    org_role: Option<String>,
    roles: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-01-01 12:00 UTC);

    fn keys() -> JwtKeys {
        JwtKeys::new(
            vec![("k1".into(), vec![1; 32]), ("k2".into(), vec![2; 32])],
            Some("k2"),
            "authara",
        )
        .unwrap()
    }

    fn claims() -> AccessClaims {
        AccessClaims {
            iss: "authara".into(),
            sub: Uuid::new_v4(),
            aud: vec!["app".into()],
            iat: NOW.unix_timestamp(),
            exp: NOW.unix_timestamp() + 600,
            sid: Uuid::new_v4(),
            org_id: Uuid::new_v4(),
            org_role: OrgRole::Owner,
            roles: vec![],
        }
    }

    /// Builds a token from raw JSON parts, signed with `secret` via HMAC-SHA256.
    fn forge(header: serde_json::Value, payload: serde_json::Value, secret: &[u8]) -> String {
        let mut t = URL_SAFE_NO_PAD.encode(header.to_string());
        t.push('.');
        t.push_str(&URL_SAFE_NO_PAD.encode(payload.to_string()));
        let mut mac = HmacSha256::new_from_slice(secret).unwrap();
        mac.update(t.as_bytes());
        t.push('.');
        t.push_str(&URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
        t
    }

    fn good_payload() -> serde_json::Value {
        let c = claims();
        json!({"iss":"authara","sub":c.sub,"aud":["app"],"iat":c.iat,"exp":c.exp,"sid":c.sid,
            "org_id":c.org_id,"org_role":"owner","roles":[]})
    }

    #[test]
    fn round_trip_and_header_carries_kid() {
        let k = keys();
        let c = claims();
        let t = k.sign(&c).unwrap();
        assert_eq!(k.verify(&t, NOW).unwrap(), c);
        let header = URL_SAFE_NO_PAD
            .decode(t.split('.').next().unwrap())
            .unwrap();
        let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
        assert_eq!(header, json!({"alg":"HS256","typ":"JWT","kid":"k2"}));
    }

    #[test]
    fn a_forged_hand_built_token_with_the_right_key_verifies() {
        // Guards the forgery matrix below: it must fail for the stated reason only.
        let t = forge(json!({"alg":"HS256","kid":"k1"}), good_payload(), &[1; 32]);
        assert!(keys().verify(&t, NOW).is_ok());
    }

    #[test]
    fn iat_within_the_skew_verifies() {
        // Guards the iat cases of the forgery matrix: the boundary itself is accepted.
        let mut p = good_payload();
        p["iat"] = json!(NOW.unix_timestamp() + MAX_IAT_SKEW_SECS);
        let t = forge(json!({"alg":"HS256","kid":"k1"}), p, &[1; 32]);
        assert!(keys().verify(&t, NOW).is_ok());
    }

    #[test]
    fn token_signed_with_a_non_active_key_in_the_set_verifies() {
        let old = JwtKeys::new(vec![("k1".into(), vec![1; 32])], None, "authara").unwrap();
        let t = old.sign(&claims()).unwrap();
        assert!(keys().verify(&t, NOW).is_ok());
    }

    #[test]
    fn forged_and_foreign_tokens_are_refused() {
        let p = good_payload();
        let with = |key: &str, v: serde_json::Value| {
            let mut p = good_payload();
            p[key] = v;
            p
        };
        let without = |key: &str| {
            let mut p = good_payload();
            p.as_object_mut().unwrap().remove(key);
            p
        };
        let hs = json!({"alg":"HS256","kid":"k1"});
        let k1 = [1u8; 32];
        let mut cases: Vec<(&str, String)> = vec![
            ("alg none", {
                let t = forge(json!({"alg":"none","kid":"k1"}), p.clone(), &k1);
                let (hp, _) = t.rsplit_once('.').unwrap();
                format!("{hp}.")
            }),
            (
                "alg none signed",
                forge(json!({"alg":"none","kid":"k1"}), p.clone(), &k1),
            ),
            (
                "HS512",
                forge(json!({"alg":"HS512","kid":"k1"}), p.clone(), &k1),
            ),
            (
                "hs256 lowercase",
                forge(json!({"alg":"hs256","kid":"k1"}), p.clone(), &k1),
            ),
            (
                "RS256",
                forge(json!({"alg":"RS256","kid":"k1"}), p.clone(), &k1),
            ),
            ("missing kid", forge(json!({"alg":"HS256"}), p.clone(), &k1)),
            (
                "unknown kid",
                forge(json!({"alg":"HS256","kid":"k9"}), p.clone(), &k1),
            ),
            ("wrong key", forge(hs.clone(), p.clone(), &[9; 32])),
            (
                "kid/key mismatch",
                forge(json!({"alg":"HS256","kid":"k2"}), p.clone(), &k1),
            ),
            (
                "wrong iss",
                forge(hs.clone(), with("iss", json!("evil")), &k1),
            ),
            ("missing iss", forge(hs.clone(), without("iss"), &k1)),
            (
                "foreign aud",
                forge(hs.clone(), with("aud", json!(["other"])), &k1),
            ),
            (
                "mixed aud",
                forge(hs.clone(), with("aud", json!(["app", "x"])), &k1),
            ),
            ("empty aud", forge(hs.clone(), with("aud", json!([])), &k1)),
            ("missing aud", forge(hs.clone(), without("aud"), &k1)),
            (
                "expired",
                forge(hs.clone(), with("exp", json!(NOW.unix_timestamp())), &k1),
            ),
            ("missing exp", forge(hs.clone(), without("exp"), &k1)),
            (
                "iat beyond the skew",
                forge(
                    hs.clone(),
                    with("iat", json!(NOW.unix_timestamp() + MAX_IAT_SKEW_SECS + 1)),
                    &k1,
                ),
            ),
            (
                "iat far in the future",
                forge(hs.clone(), with("iat", json!(i64::MAX)), &k1),
            ),
            (
                "iat after exp",
                forge(
                    hs.clone(),
                    {
                        let mut p = with("iat", json!(NOW.unix_timestamp() + 30));
                        p["exp"] = json!(NOW.unix_timestamp() + 20);
                        p
                    },
                    &k1,
                ),
            ),
            ("missing iat", forge(hs.clone(), without("iat"), &k1)),
            (
                "non-integer iat",
                forge(hs.clone(), with("iat", json!("now")), &k1),
            ),
            ("missing sid", forge(hs.clone(), without("sid"), &k1)),
            ("missing org_id", forge(hs.clone(), without("org_id"), &k1)),
            (
                "nil org_id",
                forge(hs.clone(), with("org_id", json!(Uuid::nil())), &k1),
            ),
            (
                "org_id not a uuid",
                forge(hs.clone(), with("org_id", json!("acme")), &k1),
            ),
            (
                "missing org_role",
                forge(hs.clone(), without("org_role"), &k1),
            ),
            (
                "empty org_role",
                forge(hs.clone(), with("org_role", json!("")), &k1),
            ),
            (
                "unknown org_role",
                forge(hs.clone(), with("org_role", json!("root")), &k1),
            ),
            (
                "non-uuid sid",
                forge(hs.clone(), with("sid", json!("abc")), &k1),
            ),
            ("missing sub", forge(hs.clone(), without("sub"), &k1)),
            (
                "non-uuid sub",
                forge(hs.clone(), with("sub", json!("1' OR 1=1")), &k1),
            ),
            ("numeric sub", forge(hs.clone(), with("sub", json!(7)), &k1)),
            ("two parts", "a.b".into()),
            (
                "four parts",
                format!("{}.x", forge(hs.clone(), p.clone(), &k1)),
            ),
            ("empty", String::new()),
            ("huge", "a".repeat(MAX_TOKEN_LEN + 1)),
        ];
        // Tampered payload: a valid token whose payload is swapped for an admin one.
        let t = forge(hs.clone(), p.clone(), &k1);
        let parts: Vec<&str> = t.split('.').collect();
        let evil = URL_SAFE_NO_PAD.encode(with("roles", json!([ADMIN_ROLE])).to_string());
        cases.push((
            "tampered payload",
            format!("{}.{}.{}", parts[0], evil, parts[2]),
        ));
        // Truncated and padded signatures.
        cases.push(("short sig", t[..t.len() - 2].to_owned()));
        cases.push(("padded sig", format!("{t}=")));

        let k = keys();
        for (name, token) in cases {
            assert!(k.verify(&token, NOW).is_err(), "{name} was accepted");
        }
    }

    #[test]
    fn key_set_validation() {
        assert_eq!(
            JwtKeys::new(vec![], None, "i").unwrap_err(),
            KeySetError::Empty
        );
        assert!(matches!(
            JwtKeys::new(vec![("a".into(), vec![0; 31])], None, "i"),
            Err(KeySetError::TooShort(_))
        ));
        assert!(matches!(
            JwtKeys::new(
                vec![("a".into(), vec![0; 32]), ("a".into(), vec![1; 32])],
                None,
                "i"
            ),
            Err(KeySetError::DuplicateKid(_))
        ));
        assert!(matches!(
            JwtKeys::new(vec![("a".into(), vec![0; 32])], Some("b"), "i"),
            Err(KeySetError::UnknownActive(_))
        ));
        assert!(matches!(
            JwtKeys::new(vec![("a b".into(), vec![0; 32])], None, "i"),
            Err(KeySetError::BadKid(_))
        ));
    }

    #[test]
    fn debug_shows_no_secret_material() {
        let s = format!("{:?}", keys());
        assert!(s.contains("k1") && !s.contains("[1, 1"));
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod props {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-01-01 12:00 UTC);

    fn keys() -> JwtKeys {
        JwtKeys::new(vec![("k1".into(), vec![1; 32])], None, "authara").unwrap()
    }

    fn claims() -> impl Strategy<Value = AccessClaims> {
        let now = NOW.unix_timestamp();
        (
            any::<u128>(),
            any::<u128>(),
            prop::sample::select(vec!["app", "admin"]),
            prop::collection::vec(prop::sample::select(vec![ADMIN_ROLE, "x", "é\"\\"]), 0..3),
            // Issued up to a day ago or up to the allowed skew ahead; valid for 1 s to a day.
            -86_400i64..=MAX_IAT_SKEW_SECS,
            1i64..=86_400,
        )
            .prop_map(move |(sub, sid, aud, roles, iat_off, ttl)| {
                let iat = now + iat_off;
                AccessClaims {
                    iss: "authara".into(),
                    sub: Uuid::from_u128(sub),
                    aud: vec![aud.to_owned()],
                    iat,
                    exp: iat.max(now) + ttl,
                    sid: Uuid::from_u128(sid),
                    org_id: Uuid::from_u128(sid ^ 1 | 1),
                    org_role: OrgRole::Member,
                    roles: roles.into_iter().map(str::to_owned).collect(),
                }
            })
    }

    proptest! {
        #[test]
        fn what_is_signed_verifies_to_the_same_claims(c in claims()) {
            let k = keys();
            let t = k.sign(&c).unwrap();
            prop_assert_eq!(k.verify(&t, NOW).unwrap(), c);
        }

        #[test]
        fn any_single_byte_change_of_a_signed_token_is_invalid(
            c in claims(),
            at in any::<prop::sample::Index>(),
            to in any::<u8>(),
        ) {
            let k = keys();
            let t = k.sign(&c).unwrap();
            let mut bytes = t.into_bytes();
            let i = at.index(bytes.len());
            prop_assume!(bytes[i] != to);
            bytes[i] = to;
            // Not UTF-8 any more: no token at all, which is just as invalid.
            if let Ok(changed) = String::from_utf8(bytes) {
                prop_assert!(k.verify(&changed, NOW).is_err(), "{}", changed);
            }
        }

        #[test]
        fn a_token_issued_beyond_the_skew_is_invalid(c in claims(), ahead in 1i64..1_000_000) {
            let k = keys();
            let mut c = c;
            c.iat = NOW.unix_timestamp() + MAX_IAT_SKEW_SECS + ahead;
            c.exp = c.iat + 600;
            let t = k.sign(&c).unwrap();
            prop_assert!(k.verify(&t, NOW).is_err());
        }

        #[test]
        fn arbitrary_strings_never_panic_and_never_verify(s in any::<String>()) {
            prop_assert!(keys().verify(&s, NOW).is_err());
        }

        #[test]
        fn three_arbitrary_parts_never_verify(
            parts in prop::collection::vec("[A-Za-z0-9_=-]{0,60}", 3),
        ) {
            let t = parts.join(".");
            prop_assert!(keys().verify(&t, NOW).is_err());
        }
    }
}

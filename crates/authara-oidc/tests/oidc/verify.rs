//! `IdTokenVerifier` against the test provider: good RS256 and ES256 tokens pass; every forged
//! or wrong token is refused for its own reason; the key set is cached as `Cache-Control` says,
//! a rotation is picked up on the first token of the new key, made-up key ids cost one fetch
//! per interval, and a provider that is down, redirects or answers too much is reported.

use std::sync::Arc;
use std::time::Duration;

use authara_core::clock::{Clock, ManualClock};
use authara_oidc::{
    Expected, IdTokenError, IdTokenVerifier, Jwks, JwksError, JwksSettings, VerifierSettings,
};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use time::macros::datetime;

use crate::idp::{Serve, TestIdp, TestKey, CLIENT_ID, ISSUER};

/// Base64url without padding, for hand-built tokens.
fn url_safe(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

const NONCE: &str = "n-0S6_WzA2Mj";

struct Setup {
    idp: TestIdp,
    clock: Arc<ManualClock>,
    verifier: IdTokenVerifier,
}

fn start() -> time::OffsetDateTime {
    datetime!(2030-06-01 12:00 UTC)
}

async fn setup(keys: &[TestKey]) -> Setup {
    let idp = TestIdp::start(keys).await;
    let clock = Arc::new(ManualClock::new(start()));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let jwks = Arc::new(Jwks::new(
        JwksSettings::new(idp.jwks_url()),
        client,
        Arc::clone(&clock) as Arc<dyn Clock>,
    ));
    let verifier = IdTokenVerifier::new(
        VerifierSettings {
            issuers: vec![ISSUER.to_owned(), "idp.test.example".to_owned()],
            client_id: CLIENT_ID.to_owned(),
            leeway: Duration::from_secs(60),
            require_verified_email: true,
        },
        jwks,
        Arc::clone(&clock) as Arc<dyn Clock>,
    );
    Setup {
        idp,
        clock,
        verifier,
    }
}

/// Good claims: issued now, valid an hour, for our client, with the nonce and a verified email.
fn claims() -> Value {
    let now = start().unix_timestamp();
    json!({
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "sub": "110169484474386276334",
        "iat": now,
        "exp": now + 3600,
        "nonce": NONCE,
        "email": "ada@example.com",
        "email_verified": true,
        "name": "Ada Lovelace",
    })
}

fn with(changes: Value) -> Value {
    let mut c = claims();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

fn nonce() -> Expected<'static> {
    Expected { nonce: Some(NONCE) }
}

async fn verify(s: &Setup, token: &str) -> Result<authara_oidc::VerifiedIdToken, IdTokenError> {
    s.verifier.verify(token, nonce()).await
}

#[tokio::test]
async fn good_rs256_and_es256_tokens_pass_with_their_claims() {
    let s = setup(&[TestKey::RsaA, TestKey::EcA]).await;
    for key in [TestKey::RsaA, TestKey::EcA] {
        let got = verify(&s, &TestIdp::sign(key, &claims())).await.unwrap();
        assert_eq!(got.issuer, ISSUER);
        assert_eq!(got.subject, "110169484474386276334");
        assert_eq!(got.email.as_deref(), Some("ada@example.com"));
        assert!(got.email_verified);
        assert_eq!(got.name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(
            got.expires_at.unix_timestamp(),
            start().unix_timestamp() + 3600
        );
    }
    // Google's other issuer spelling, an audience list with `azp`, and "true" as a string.
    let token = TestIdp::sign(
        TestKey::RsaA,
        &with(json!({
            "iss": "idp.test.example",
            "aud": [CLIENT_ID, "another"],
            "azp": CLIENT_ID,
            "email_verified": "true",
        })),
    );
    assert!(verify(&s, &token).await.is_ok());
    assert_eq!(s.idp.hits(), 1, "one fetch served every token");
}

#[tokio::test]
async fn forged_and_wrong_tokens_are_refused_each_for_its_reason() {
    let s = setup(&[TestKey::RsaA, TestKey::EcA]).await;
    let now = start().unix_timestamp();
    let cases: Vec<(&str, String, IdTokenError)> = vec![
        (
            "signed by another key under a published kid",
            TestIdp::sign_as(TestKey::RsaB, Some("rsa-a"), &claims()),
            IdTokenError::Signature,
        ),
        (
            "the payload changed after signing",
            {
                let token = TestIdp::sign(TestKey::RsaA, &claims());
                let parts: Vec<&str> = token.split('.').collect();
                let forged = url_safe(
                    serde_json::to_vec(&with(json!({"sub": "someone-else"})))
                        .unwrap()
                        .as_slice(),
                );
                format!("{}.{}.{}", parts[0], forged, parts[2])
            },
            IdTokenError::Signature,
        ),
        (
            "wrong audience",
            TestIdp::sign(TestKey::RsaA, &with(json!({"aud": "someone-else"}))),
            IdTokenError::Audience,
        ),
        (
            "several audiences without our azp",
            TestIdp::sign(
                TestKey::RsaA,
                &with(json!({"aud": [CLIENT_ID, "other"], "azp": "other"})),
            ),
            IdTokenError::Audience,
        ),
        (
            "wrong issuer",
            TestIdp::sign(TestKey::EcA, &with(json!({"iss": "https://evil.example"}))),
            IdTokenError::Issuer,
        ),
        (
            "expired beyond the leeway",
            TestIdp::sign(TestKey::RsaA, &with(json!({"exp": now - 61}))),
            IdTokenError::Expired,
        ),
        (
            "issued in the future",
            TestIdp::sign(TestKey::RsaA, &with(json!({"iat": now + 3600}))),
            IdTokenError::NotYetValid,
        ),
        (
            "not valid before later",
            TestIdp::sign(TestKey::RsaA, &with(json!({"nbf": now + 600}))),
            IdTokenError::NotYetValid,
        ),
        (
            "another nonce",
            TestIdp::sign(TestKey::RsaA, &with(json!({"nonce": "n-0S6_WzA2Mk"}))),
            IdTokenError::Nonce,
        ),
        (
            "no nonce",
            TestIdp::sign(TestKey::RsaA, &with(json!({"nonce": null}))),
            IdTokenError::Nonce,
        ),
        (
            "email not verified",
            TestIdp::sign(TestKey::RsaA, &with(json!({"email_verified": false}))),
            IdTokenError::EmailNotVerified,
        ),
        (
            "no email_verified",
            TestIdp::sign(TestKey::RsaA, &with(json!({"email_verified": null}))),
            IdTokenError::EmailNotVerified,
        ),
        (
            "no email",
            TestIdp::sign(TestKey::RsaA, &with(json!({"email": null}))),
            IdTokenError::EmailNotVerified,
        ),
        (
            "no subject",
            TestIdp::sign(TestKey::RsaA, &with(json!({"sub": null}))),
            IdTokenError::Subject,
        ),
        (
            "an empty subject",
            TestIdp::sign(TestKey::RsaA, &with(json!({"sub": ""}))),
            IdTokenError::Subject,
        ),
        (
            "a kid the provider never published",
            TestIdp::sign_as(TestKey::RsaA, Some("nobody"), &claims()),
            IdTokenError::UnknownKey,
        ),
        ("not a token", "abc".to_owned(), IdTokenError::Malformed),
        (
            "too long",
            format!("{}.{}.{}", "a".repeat(9000), "b".repeat(9000), "c"),
            IdTokenError::Malformed,
        ),
    ];
    for (what, token, want) in cases {
        assert_eq!(verify(&s, &token).await.unwrap_err(), want, "{what}");
    }
    // Inside the leeway is still fine.
    let token = TestIdp::sign(TestKey::RsaA, &with(json!({"exp": now - 30})));
    assert!(verify(&s, &token).await.is_ok());
    // Without an expected nonce, the token's is not looked at.
    let token = TestIdp::sign(TestKey::RsaA, &with(json!({"nonce": null})));
    assert!(s.verifier.verify(&token, Expected::default()).await.is_ok());
}

#[tokio::test]
async fn none_and_hmac_tokens_are_refused_before_any_key_is_used() {
    let s = setup(&[TestKey::RsaA]).await;
    let payload = url_safe(&serde_json::to_vec(&claims()).unwrap());
    // `alg: none`, unsigned.
    let none_header = url_safe(br#"{"alg":"none","typ":"JWT","kid":"rsa-a"}"#);
    let unsigned = format!("{none_header}.{payload}.");
    let refused = verify(&s, &unsigned).await.unwrap_err();
    assert!(
        matches!(refused, IdTokenError::Malformed | IdTokenError::Algorithm),
        "{refused:?}"
    );
    // HS256 keyed with the provider's public key: the classic algorithm confusion.
    let public = TestKey::RsaA.jwk().to_string();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rsa-a".to_owned());
    let hmac = jsonwebtoken::encode(
        &header,
        &claims(),
        &EncodingKey::from_secret(public.as_bytes()),
    )
    .unwrap();
    assert_eq!(
        verify(&s, &hmac).await.unwrap_err(),
        IdTokenError::Algorithm
    );
    // An ES256 header on a token the RSA key signed.
    let token = TestIdp::sign(TestKey::RsaA, &claims());
    let parts: Vec<&str> = token.split('.').collect();
    let es_header = url_safe(br#"{"alg":"ES256","typ":"JWT","kid":"rsa-a"}"#);
    let swapped = format!("{es_header}.{}.{}", parts[1], parts[2]);
    assert_eq!(
        verify(&s, &swapped).await.unwrap_err(),
        IdTokenError::UnknownKey
    );
    assert_eq!(s.idp.hits(), 1, "refused headers fetched nothing more");
}

#[tokio::test]
async fn a_rotation_is_picked_up_on_the_first_token_of_the_new_key() {
    let s = setup(&[TestKey::RsaA]).await;
    s.idp.cache_control(Some("public, max-age=21600"));
    assert!(verify(&s, &TestIdp::sign(TestKey::RsaA, &claims()))
        .await
        .is_ok());
    assert_eq!(s.idp.hits(), 1);
    // The provider rotates to a new key, well within the cache's lifetime.
    s.idp.publish(&[TestKey::RsaA, TestKey::RsaB]);
    s.clock.advance(time::Duration::minutes(5));
    let fresh = TestIdp::sign(
        TestKey::RsaB,
        &with(json!({
            "iat": s.clock.now().unix_timestamp(),
            "exp": s.clock.now().unix_timestamp() + 3600,
        })),
    );
    assert!(verify(&s, &fresh).await.is_ok(), "the new kid was fetched");
    assert_eq!(s.idp.hits(), 2);
    // Both keys are now held: no more fetches while the set is fresh.
    for key in [TestKey::RsaA, TestKey::RsaB] {
        let token = TestIdp::sign(
            key,
            &with(json!({
                "iat": s.clock.now().unix_timestamp(),
                "exp": s.clock.now().unix_timestamp() + 3600,
            })),
        );
        assert!(verify(&s, &token).await.is_ok());
    }
    assert_eq!(s.idp.hits(), 2);
    // The old key retired: once the cache expires, its tokens stop verifying.
    s.idp.publish(&[TestKey::RsaB]);
    s.clock.advance(time::Duration::hours(6));
    let now = s.clock.now().unix_timestamp();
    let old = TestIdp::sign(TestKey::RsaA, &with(json!({"iat": now, "exp": now + 3600})));
    assert_eq!(
        verify(&s, &old).await.unwrap_err(),
        IdTokenError::UnknownKey
    );
    assert_eq!(s.idp.hits(), 3, "stale set fetched again");
}

#[tokio::test]
async fn made_up_key_ids_cost_one_fetch_per_interval() {
    let s = setup(&[TestKey::RsaA]).await;
    assert!(verify(&s, &TestIdp::sign(TestKey::RsaA, &claims()))
        .await
        .is_ok());
    assert_eq!(s.idp.hits(), 1);
    // Right after a fetch, unknown kids wait for the interval: nothing new to learn yet.
    let made_up =
        |i: usize| TestIdp::sign_as(TestKey::RsaA, Some(&format!("made-up-{i}")), &claims());
    for i in 0..20 {
        assert_eq!(
            verify(&s, &made_up(i)).await.unwrap_err(),
            IdTokenError::UnknownKey
        );
    }
    assert_eq!(s.idp.hits(), 1, "no fetch for twenty made-up kids");
    // After it, the first unknown kid fetches once (it could be a rotation); the rest wait.
    s.clock.advance(time::Duration::seconds(31));
    for i in 20..40 {
        assert_eq!(
            verify(&s, &made_up(i)).await.unwrap_err(),
            IdTokenError::UnknownKey
        );
    }
    assert_eq!(s.idp.hits(), 2, "one fetch per interval");
    s.clock.advance(time::Duration::seconds(31));
    assert_eq!(
        verify(&s, &made_up(40)).await.unwrap_err(),
        IdTokenError::UnknownKey
    );
    assert_eq!(s.idp.hits(), 3);
}

#[tokio::test]
async fn cache_control_decides_how_long_the_set_is_kept() {
    let s = setup(&[TestKey::EcA]).await;
    s.idp.cache_control(Some("max-age=600"));
    let token = |s: &Setup| {
        let now = s.clock.now().unix_timestamp();
        TestIdp::sign(TestKey::EcA, &with(json!({"iat": now, "exp": now + 3600})))
    };
    assert!(verify(&s, &token(&s)).await.is_ok());
    s.clock.advance(time::Duration::seconds(599));
    assert!(verify(&s, &token(&s)).await.is_ok());
    assert_eq!(s.idp.hits(), 1, "still fresh");
    s.clock.advance(time::Duration::seconds(2));
    assert!(verify(&s, &token(&s)).await.is_ok());
    assert_eq!(s.idp.hits(), 2, "expired after max-age");
    // Without Cache-Control: an hour.
    s.idp.cache_control(None);
    s.clock.advance(time::Duration::seconds(601));
    assert!(verify(&s, &token(&s)).await.is_ok());
    assert_eq!(s.idp.hits(), 3);
    s.clock.advance(time::Duration::minutes(59));
    assert!(verify(&s, &token(&s)).await.is_ok());
    assert_eq!(s.idp.hits(), 3);
    s.clock.advance(time::Duration::minutes(2));
    assert!(verify(&s, &token(&s)).await.is_ok());
    assert_eq!(s.idp.hits(), 4);
}

#[tokio::test]
async fn a_provider_that_fails_redirects_or_floods_is_reported_and_held_keys_keep_working() {
    for (serve, what) in [
        (Serve::Fail, "HTTP 500"),
        (Serve::Redirect, "redirect refused"),
        (Serve::Huge, "larger than"),
    ] {
        let s = setup(&[TestKey::RsaA]).await;
        s.idp.serve(serve);
        let refused = verify(&s, &TestIdp::sign(TestKey::RsaA, &claims()))
            .await
            .unwrap_err();
        let IdTokenError::Keys(JwksError::Unavailable(why)) = &refused else {
            panic!("{what}: {refused:?}");
        };
        assert!(why.contains(what), "{what}: {why}");
        // Tried again only after the interval: a provider that is down is not hammered.
        let again = verify(&s, &TestIdp::sign(TestKey::RsaA, &claims())).await;
        assert!(again.is_err());
        assert_eq!(s.idp.hits(), 1, "{what}");
    }

    // Keys fetched before an outage keep verifying while the provider is down, even stale.
    let s = setup(&[TestKey::RsaA]).await;
    assert!(verify(&s, &TestIdp::sign(TestKey::RsaA, &claims()))
        .await
        .is_ok());
    s.idp.serve(Serve::Fail);
    s.clock.advance(time::Duration::hours(2));
    let now = s.clock.now().unix_timestamp();
    let token = TestIdp::sign(TestKey::RsaA, &with(json!({"iat": now, "exp": now + 3600})));
    assert!(
        verify(&s, &token).await.is_ok(),
        "a stale held key still serves"
    );
    assert_eq!(s.idp.hits(), 2, "the refetch was tried");
    // Back up: the next fetch (after the interval) refreshes the set.
    s.idp.serve(Serve::Keys);
    s.idp.publish(&[TestKey::RsaB]);
    s.clock.advance(time::Duration::seconds(31));
    let now = s.clock.now().unix_timestamp();
    let token = TestIdp::sign(TestKey::RsaB, &with(json!({"iat": now, "exp": now + 3600})));
    assert!(verify(&s, &token).await.is_ok());
    assert_eq!(s.idp.hits(), 3);
}

#[tokio::test]
async fn a_provider_that_is_not_there_is_unavailable() {
    let clock = Arc::new(ManualClock::new(start()));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url =
        reqwest::Url::parse(&format!("http://{}/jwks", listener.local_addr().unwrap())).unwrap();
    drop(listener);
    let jwks = Arc::new(Jwks::new(
        JwksSettings::new(url),
        reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap(),
        Arc::clone(&clock) as Arc<dyn Clock>,
    ));
    let verifier = IdTokenVerifier::new(
        VerifierSettings {
            issuers: vec![ISSUER.to_owned()],
            client_id: CLIENT_ID.to_owned(),
            leeway: Duration::from_secs(60),
            require_verified_email: true,
        },
        jwks,
        clock,
    );
    let refused = verifier
        .verify(&TestIdp::sign(TestKey::RsaA, &claims()), nonce())
        .await
        .unwrap_err();
    assert_eq!(
        refused,
        IdTokenError::Keys(JwksError::Unavailable("could not connect".into()))
    );
}

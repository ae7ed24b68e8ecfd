//! Seeding users, sessions and tokens straight through the store (no HTTP, no per-user Argon2).

use anyhow::Context as _;
use authara_core::clock::{Clock as _, SystemClock};
use authara_core::jwt::{AccessClaims, Audience, JwtKeys};
use authara_core::org::{initial_organization, OrgMode};
use authara_core::random::{token_256, uuid_v4, OsRandom};
use authara_core::session::hash_refresh_token;
use authara_core::store::{
    ActiveOrganization, Effects, NewRefreshToken, NewSession, NewUser, Store,
};
use std::sync::Arc;
use time::Duration;

/// The password every seeded user has.
pub const PASSWORD: &str = "bench-password-1";
/// Key id and secret the server and the bench share.
pub const KEY_ID: &str = "bench";
/// 32 fixed bytes: the HMAC key for access tokens.
pub const KEY: &[u8; 32] = b"authara-bench-fixed-signing-key!";
/// The issuer the server is configured with.
pub const ISSUER: &str = "authara-bench";
/// Access token lifetime (the server gets the same, in minutes).
pub const ACCESS_TTL_MINUTES: i64 = 60;

/// An address at example.com with local part `local`.
pub fn email(local: &str) -> String {
    format!("{}{}example.com", local, '@')
}

/// Eight random hex digits, to keep one run's signups apart from another's.
pub fn random_tag() -> String {
    let id = uuid_v4(&OsRandom).simple().to_string();
    id.get(..8).unwrap_or(&id).to_owned()
}

/// The seeded users' email local part.
fn local_part(i: usize) -> String {
    format!("bench-user-{i}")
}

/// What the load generator needs about one seeded user.
#[derive(Debug, Clone, Default)]
pub struct SeededUser {
    pub email: String,
    /// Signed access token (JWT) of the user's session.
    pub access: String,
    /// Plaintext refresh token of the user's session.
    pub refresh: String,
}

/// The access-token key set, as the server has it.
pub fn keys() -> anyhow::Result<JwtKeys> {
    JwtKeys::new(vec![(KEY_ID.to_owned(), KEY.to_vec())], None, ISSUER)
        .context("building the bench's JWT key set")
}

/// Creates `n` users sharing `password_hash`, each with one session, one refresh token and one
/// access token, using `tasks` concurrent tasks. Returns them in index order.
pub async fn seed(
    store: Arc<dyn Store>,
    keys: Arc<JwtKeys>,
    password_hash: Arc<str>,
    n: usize,
    tasks: usize,
) -> anyhow::Result<Vec<SeededUser>> {
    let tasks = tasks.clamp(1, n.max(1));
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let store = store.clone();
        let keys = keys.clone();
        let hash = password_hash.clone();
        set.spawn(async move {
            let mut out = Vec::with_capacity(n / tasks + 1);
            for i in (t..n).step_by(tasks) {
                out.push((i, seed_one(&*store, &keys, &hash, i).await?));
            }
            Ok::<_, anyhow::Error>(out)
        });
    }
    let mut all = Vec::with_capacity(n);
    while let Some(joined) = set.join_next().await {
        all.extend(joined.context("a seeding task failed")??);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, u)| u).collect())
}

async fn seed_one(
    store: &dyn Store,
    keys: &JwtKeys,
    password_hash: &str,
    i: usize,
) -> anyhow::Result<SeededUser> {
    let now = SystemClock.now();
    let local = local_part(i);
    let email = email(&local);
    let user_id = uuid_v4(&OsRandom);
    store
        .create_user(
            NewUser {
                id: user_id,
                email: email.clone(),
                username: local.clone(),
                password_hash: Some(password_hash.to_owned()),
                created_at: now,
                organization: initial_organization(OrgMode::DEFAULT, &OsRandom, &local, &email),
            },
            Effects::none(),
        )
        .await
        .with_context(|| format!("creating seeded user {i}"))?;
    let session = NewSession {
        id: uuid_v4(&OsRandom),
        user_id,
        user_agent: "authara-bench".to_owned(),
        client_ip: "127.0.0.1".to_owned(),
        created_at: now,
        expires_at: now + Duration::days(60),
        max_live_per_user: 1000,
        organization_id: None,
    };
    let refresh = token_256(&OsRandom);
    let token = NewRefreshToken {
        id: uuid_v4(&OsRandom),
        session_id: session.id,
        token_hash: hash_refresh_token(refresh.expose()),
        created_at: now,
        expires_at: now + Duration::days(14),
    };
    let session_id = session.id;
    let organization = store
        .create_session(session, token)
        .await
        .with_context(|| format!("creating the session of seeded user {i}"))?;
    let access = keys
        .sign(&access_claims(
            keys,
            user_id,
            session_id,
            &organization,
            now,
        ))
        .context("signing an access token")?;
    Ok(SeededUser {
        email,
        access,
        refresh: refresh.expose().to_owned(),
    })
}

/// The claims of a seeded user's access token: the app audience, no roles.
fn access_claims(
    keys: &JwtKeys,
    user_id: uuid::Uuid,
    session_id: uuid::Uuid,
    organization: &ActiveOrganization,
    now: time::OffsetDateTime,
) -> AccessClaims {
    AccessClaims {
        iss: keys.issuer().to_owned(),
        sub: user_id,
        aud: vec![Audience::App.as_str().to_owned()],
        iat: now.unix_timestamp(),
        exp: (now + Duration::minutes(ACCESS_TTL_MINUTES)).unix_timestamp(),
        sid: session_id,
        org_id: organization.id,
        org_role: organization.role,
        roles: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_built_not_written() {
        let e = email(&local_part(7));
        assert!(e.starts_with("bench-user-7"));
        assert!(e.ends_with("example.com"));
        assert_eq!(e.matches('@').count(), 1);
    }

    #[test]
    fn the_key_is_long_enough_and_signs() {
        let k = keys().unwrap();
        assert_eq!(k.issuer(), ISSUER);
        // A seeded user's token, signed and verified as the server verifies it.
        let now = SystemClock.now();
        let org = ActiveOrganization {
            id: uuid_v4(&OsRandom),
            name: "bench".into(),
            role: authara_core::org::OrgRole::Owner,
        };
        let claims = access_claims(&k, uuid_v4(&OsRandom), uuid_v4(&OsRandom), &org, now);
        let token = k.sign(&claims).unwrap();
        assert_eq!(k.verify(&token, now).unwrap(), claims);
        // Another secret under the same key id refuses it.
        let other = JwtKeys::new(vec![(KEY_ID.to_owned(), vec![0; 32])], None, ISSUER).unwrap();
        assert!(other.verify(&token, now).is_err());
    }
}

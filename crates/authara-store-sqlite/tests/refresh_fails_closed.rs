//! The session service asks the store to rotate a refresh token in the same round trip as the
//! lookup, and then applies its own rules to what the store found. These tests put a real
//! SQLite store behind a wrapper that disagrees with those rules, in both directions, and check
//! that the refresh then fails (401) instead of trusting the store.

#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "test setup: a broken fixture must fail the test"
)]

use std::sync::Arc;

use async_trait::async_trait;
use authara_core::clock::{Clock as _, ManualClock};
use authara_core::jwt::{Audience, JwtKeys};
use authara_core::org::OrgKind;
use authara_core::random::OsRandom;
use authara_core::session::cache::SessionCache;
use authara_core::session::{
    hash_refresh_token, IssuedRefresh, RefreshError, Rotation, SessionPolicy, SessionService,
};
use authara_core::store::{
    ActiveOrganization, ChangeFeed, Effects, EffectsFor, InitialOrganization, LiveSession,
    NewRefreshToken, NewSession, NewUser, PurgeCounts, RefreshTokenRecord, Replacement, RotateIf,
    RotateOutcome, SchemaStore as _, SessionStore, SessionUser, StoreError, Switched, TokenHash,
    UserStore as _,
};
use authara_store_sqlite::SqliteStore;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// How the wrapper departs from the store contract in `rotate_refresh_token`.
#[derive(Clone, Copy)]
enum Lie {
    /// Rotates whatever its age, ignoring `created_at_most`.
    RotatesTooEarly,
    /// Never rotates; only looks the token up.
    NeverRotates,
}

struct Disagreeing {
    inner: SqliteStore,
    lie: Lie,
}

#[async_trait]
impl SessionStore for Disagreeing {
    async fn rotate_refresh_token(
        &self,
        hash: &TokenHash,
        rotate_if: RotateIf,
        replacement: Replacement,
    ) -> Result<Option<RotateOutcome>, StoreError> {
        match self.lie {
            Lie::RotatesTooEarly => {
                let loose = RotateIf {
                    created_at_most: None,
                    ..rotate_if
                };
                self.inner
                    .rotate_refresh_token(hash, loose, replacement)
                    .await
            }
            Lie::NeverRotates => {
                Ok(self
                    .inner
                    .find_refresh_token(hash)
                    .await?
                    .map(|record| RotateOutcome {
                        record,
                        rotated: None,
                    }))
            }
        }
    }

    async fn create_session(
        &self,
        session: NewSession,
        token: NewRefreshToken,
    ) -> Result<ActiveOrganization, StoreError> {
        self.inner.create_session(session, token).await
    }
    async fn find_live_session_user(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Option<SessionUser>, StoreError> {
        self.inner
            .find_live_session_user(session_id, user_id, now)
            .await
    }
    async fn switch_session_organization(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        organization_id: Uuid,
        token: NewRefreshToken,
        now: OffsetDateTime,
    ) -> Result<Option<Switched>, StoreError> {
        self.inner
            .switch_session_organization(session_id, user_id, organization_id, token, now)
            .await
    }
    async fn list_live_sessions(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Vec<LiveSession>, StoreError> {
        self.inner.list_live_sessions(user_id, now).await
    }
    async fn revoke_other_sessions(
        &self,
        user_id: Uuid,
        keep: Uuid,
        now: OffsetDateTime,
        effects: EffectsFor,
    ) -> Result<u64, StoreError> {
        self.inner
            .revoke_other_sessions(user_id, keep, now, effects)
            .await
    }
    async fn revoke_session(
        &self,
        session_id: Uuid,
        owner: Option<Uuid>,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<bool, StoreError> {
        self.inner
            .revoke_session(session_id, owner, now, effects)
            .await
    }
    async fn find_refresh_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RefreshTokenRecord>, StoreError> {
        self.inner.find_refresh_token(hash).await
    }
    async fn watch_changes(&self) -> Result<ChangeFeed, StoreError> {
        self.inner.watch_changes().await
    }
    async fn purge_expired(&self, now: OffsetDateTime) -> Result<PurgeCounts, StoreError> {
        self.inner.purge_expired(now).await
    }
}

struct Fixture {
    service: SessionService,
    /// The refresh token of a session the service just started.
    token: String,
    /// The store without the wrapper.
    inner: SqliteStore,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

/// A session service on a fresh SQLite database behind `lie`, rotating refresh tokens older
/// than an hour, with a session it just started.
async fn service_with_session(lie: Lie) -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("authara.db").display());
    let inner = SqliteStore::connect(&url).await.expect("open sqlite");
    inner.migrate().await.expect("migrate");
    let store = Arc::new(Disagreeing {
        inner: inner.clone(),
        lie,
    });
    let clock = Arc::new(ManualClock::starting_now());
    let user = NewUser {
        id: Uuid::new_v4(),
        email: format!("alice{}example.com", '@'),
        username: "alice".to_owned(),
        password_hash: None,
        created_at: clock.now(),
        organization: InitialOrganization {
            id: Uuid::new_v4(),
            name: "alice".to_owned(),
            kind: OrgKind::Personal,
        },
    };
    // Users are not the wrapper's business (a `SessionStore`): they go to the real store.
    inner
        .create_user(user.clone(), Effects::none())
        .await
        .expect("create user");
    let user = inner
        .find_user_by_id(user.id)
        .await
        .expect("find user")
        .expect("user exists");
    let keys = JwtKeys::new(vec![("k1".to_owned(), vec![7; 32])], None, "test").expect("jwt keys");
    let policy = SessionPolicy {
        access_ttl: Duration::minutes(10),
        session_ttl: Duration::days(30),
        refresh_ttl: Duration::days(14),
        rotation: Rotation::After(Duration::hours(1)),
        reuse_grace: Duration::seconds(10),
        max_sessions_per_user: 50,
    };
    let service = SessionService::new(
        store,
        Arc::clone(&clock) as _,
        Arc::new(OsRandom),
        Arc::new(keys),
        policy,
        Arc::new(SessionCache::new(Duration::seconds(5), 100)),
    );
    let issued = service
        .start(&user, Audience::App, None, "test agent", "192.0.2.1")
        .await
        .expect("start session");
    let IssuedRefresh::New(refresh) = issued.refresh else {
        panic!("a first refresh token");
    };
    Fixture {
        service,
        token: refresh.token.expose().to_owned(),
        inner,
        clock,
        _dir: dir,
    }
}

async fn stored(store: &SqliteStore, token: &str) -> RefreshTokenRecord {
    store
        .find_refresh_token(&hash_refresh_token(token))
        .await
        .expect("find")
        .expect("exists")
}

#[tokio::test]
async fn a_rotation_the_rules_refuse_is_not_handed_out() {
    // The token is new and the policy rotates after an hour: the store rotates anyway.
    let f = service_with_session(Lie::RotatesTooEarly).await;
    match f.service.refresh(&f.token, Audience::App).await {
        Err(RefreshError::Invalid) => {}
        other => panic!("expected Invalid, got {other:?}"),
    }
    // The store did consume the token; the service handed out neither the replacement nor an
    // access token.
    assert!(stored(&f.inner, &f.token).await.consumed_at.is_some());
}

#[tokio::test]
async fn a_rotation_the_store_refuses_against_the_rules_fails() {
    let f = service_with_session(Lie::NeverRotates).await;
    // Within the interval nothing rotates and the store agrees: a plain refresh.
    let issued = f
        .service
        .refresh(&f.token, Audience::App)
        .await
        .expect("refresh within the interval");
    // Not rotated: the presented token, with its true remaining lifetime.
    let IssuedRefresh::Kept(kept) = issued.refresh else {
        panic!(
            "expected the presented token back, got {:?}",
            issued.refresh
        );
    };
    assert_eq!(kept.token.expose(), f.token);
    assert_eq!(kept.expires_at, stored(&f.inner, &f.token).await.expires_at);

    // Past the interval the rules rotate and the store does not.
    f.clock.advance(Duration::hours(2));
    match f.service.refresh(&f.token, Audience::App).await {
        Err(RefreshError::Invalid) => {}
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert_eq!(stored(&f.inner, &f.token).await.consumed_at, None);
}

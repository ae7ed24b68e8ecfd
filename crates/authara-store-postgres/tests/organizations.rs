//! Organization states the storage interface cannot build (the conformance suite says which):
//! users and sessions from before organizations existed, several memberships per user, and a
//! membership removed under a live session. They are made here with plain SQL, the way the
//! 0006 migration leaves an existing database and the way later features will change
//! memberships. Needs `AUTHARA_TEST_POSTGRES_URL` (else skipped, said on stderr; fails under
//! `CI=true`); each test's schema is dropped afterwards.

#![allow(
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test: a broken fixture or a wrong answer must fail the test"
)]

mod common;

use std::sync::Arc;

use authara_core::org::{OrgKind, OrgRole};
use authara_core::store::{
    ActiveOrganization, Backfilled, Effects, InitialOrganization, NewRefreshToken, NewSession,
    NewUser, OrganizationStore as _, Replacement, RotateIf, SchemaStore as _, SessionStore as _,
    StoreError, UserStore as _,
};
use authara_store_postgres::PgStore;
use sqlx::{Connection, Executor, PgConnection};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use common::{drop_schema, new_schema_name, postgres_url};

/// A migrated store on a schema of its own, and a plain connection into that schema.
struct Fixture {
    store: PgStore,
    sql: PgConnection,
    url: String,
    schema: String,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        drop_schema(self.url.clone(), self.schema.clone());
    }
}

async fn fixture() -> Option<Fixture> {
    let url = postgres_url("PostgreSQL organizations")?;
    let schema = new_schema_name();
    let store = PgStore::connect_url(&url, Some(&schema), 10)
        .await
        .expect("connect to AUTHARA_TEST_POSTGRES_URL");
    store.migrate().await.expect("migrate");
    let mut sql = PgConnection::connect(&url).await.expect("connect");
    sql.execute(format!("SET search_path TO \"{schema}\"").as_str())
        .await
        .expect("search_path");
    Some(Fixture {
        store,
        sql,
        url,
        schema,
    })
}

fn now() -> OffsetDateTime {
    datetime!(2030-03-04 05:06:07.123456 UTC)
}

/// A user as an older version stored it: no organization.
async fn insert_bare_user(f: &mut Fixture, email: &str, username: &str) -> Uuid {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO users \
             (id, email, username, password_hash, is_admin, disabled, created_at, updated_at) \
         VALUES ($1, $2, $3, NULL, FALSE, FALSE, $4, $4)",
    )
    .bind(id)
    .bind(email)
    .bind(username)
    .bind(now() - Duration::days(30))
    .execute(&mut f.sql)
    .await
    .expect("insert user");
    id
}

/// A session as an older version stored it (no active organization), with one token.
async fn insert_bare_session(f: &mut Fixture, user_id: Uuid, token_hash: [u8; 32]) -> Uuid {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO sessions (id, user_id, user_agent, client_ip, created_at, expires_at) \
         VALUES ($1, $2, 'old', '192.0.2.1', $3, $4)",
    )
    .bind(id)
    .bind(user_id)
    .bind(now() - Duration::hours(1))
    .bind(now() + Duration::days(1))
    .execute(&mut f.sql)
    .await
    .expect("insert session");
    sqlx::query(
        "INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::new_v4())
    .bind(id)
    .bind(token_hash.as_slice())
    .bind(now() - Duration::hours(1))
    .bind(now() + Duration::days(1))
    .execute(&mut f.sql)
    .await
    .expect("insert token");
    id
}

/// Another organization, `user_id` a member there with `role` since `at`.
async fn insert_membership(
    f: &mut Fixture,
    user_id: Uuid,
    kind: OrgKind,
    role: OrgRole,
    at: OffsetDateTime,
) -> Uuid {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO organizations (id, name, kind, created_by_user_id, created_at, updated_at) \
         VALUES ($1, $2, $3, NULL, $4, $4)",
    )
    .bind(id)
    .bind(format!("org {id}"))
    .bind(kind.as_str())
    .bind(at)
    .execute(&mut f.sql)
    .await
    .expect("insert organization");
    sqlx::query(
        "INSERT INTO organization_memberships \
             (organization_id, user_id, role, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(id)
    .bind(user_id)
    .bind(role.as_str())
    .bind(at)
    .execute(&mut f.sql)
    .await
    .expect("insert membership");
    id
}

async fn create_user(f: &Fixture, name: &str, kind: OrgKind) -> NewUser {
    let user = NewUser {
        id: Uuid::new_v4(),
        email: format!("{name}@example.com"),
        username: name.into(),
        password_hash: None,
        created_at: now() - Duration::days(10),
        organization: InitialOrganization {
            id: Uuid::new_v4(),
            name: name.into(),
            kind,
        },
    };
    f.store
        .create_user(user.clone(), Effects::none())
        .await
        .expect("create user");
    user
}

/// Signs `user_id` in (into `organization_id`, else the default); returns the session and its
/// token's hash.
async fn login(
    f: &Fixture,
    user_id: Uuid,
    organization_id: Option<Uuid>,
) -> Result<(Uuid, [u8; 32], ActiveOrganization), StoreError> {
    let session = NewSession {
        id: Uuid::new_v4(),
        user_id,
        user_agent: "test".into(),
        client_ip: "192.0.2.1".into(),
        created_at: now(),
        expires_at: now() + Duration::days(1),
        max_live_per_user: 10,
        organization_id,
    };
    let hash = *Uuid::new_v4().as_bytes();
    let mut token_hash = [0; 32];
    token_hash[..16].copy_from_slice(&hash);
    let token = NewRefreshToken {
        id: Uuid::new_v4(),
        session_id: session.id,
        token_hash,
        created_at: now(),
        expires_at: now() + Duration::hours(12),
    };
    let org = f.store.create_session(session.clone(), token).await?;
    Ok((session.id, token_hash, org))
}

async fn count(f: &mut Fixture, query: &str) -> i64 {
    sqlx::query_scalar(query)
        .fetch_one(&mut f.sql)
        .await
        .expect("count")
}

fn rotate_at_now() -> RotateIf {
    RotateIf {
        now: now(),
        created_at_most: None,
        admin_only: false,
    }
}

fn replacement() -> Replacement {
    Replacement {
        id: Uuid::new_v4(),
        token_hash: [0xee; 32],
        expires_at: now() + Duration::hours(12),
    }
}

/// The backfill gives every user without a membership a personal organization named after
/// them (username, else the email's local part, else the default name) with them as owner,
/// leaves members alone, gives every session without an organization its user's default one,
/// and finds nothing to do the second time.
#[tokio::test]
async fn backfill_provides_for_old_users_and_sessions_once() {
    let Some(mut f) = fixture().await else {
        return;
    };
    let old = insert_bare_user(&mut f, "old@example.com", "old").await;
    let blank = insert_bare_user(&mut f, "local@example.com", " ").await;
    let nameless = insert_bare_user(&mut f, " @example.com", "").await;
    let member = create_user(&f, "member", OrgKind::Team).await;
    let old_session = insert_bare_session(&mut f, old, [1; 32]).await;
    let member_session = insert_bare_session(&mut f, member.id, [2; 32]).await;

    // Not live and no refresh before the backfill: no organization.
    assert!(f
        .store
        .find_live_session_user(old_session, old, now())
        .await
        .expect("find")
        .is_none());
    let before = f
        .store
        .rotate_refresh_token(&[1; 32], rotate_at_now(), replacement())
        .await
        .expect("rotate")
        .expect("token exists");
    assert_eq!(before.record.organization, None);
    assert_eq!(before.rotated, None);

    let done = f
        .store
        .backfill_organizations(OrgKind::Personal, now())
        .await
        .expect("backfill");
    assert_eq!(
        done,
        Backfilled {
            organizations: 3,
            sessions: 2
        }
    );

    for (user, name) in [
        (old, "old"),
        (blank, "local"),
        (nameless, "Personal workspace"),
    ] {
        let memberships = f
            .store
            .list_user_memberships(user)
            .await
            .expect("memberships");
        assert_eq!(memberships.len(), 1, "{name}");
        let m = &memberships[0];
        assert_eq!(m.organization.name, name);
        assert_eq!(m.organization.kind, OrgKind::Personal);
        assert_eq!(m.organization.created_by_user_id, Some(user));
        assert_eq!(m.organization.created_at, now());
        assert_eq!(m.organization.id.get_version_num(), 4, "{name}");
        assert_eq!(m.membership.role, OrgRole::Owner);
        assert_eq!(m.membership.created_at, now());
    }
    let member_orgs = f
        .store
        .list_user_memberships(member.id)
        .await
        .expect("memberships");
    assert_eq!(member_orgs.len(), 1);
    assert_eq!(member_orgs[0].organization.id, member.organization.id);

    let live = f
        .store
        .find_live_session_user(old_session, old, now())
        .await
        .expect("find")
        .expect("live once backfilled");
    assert_eq!(live.organization.name, "old");
    let live = f
        .store
        .find_live_session_user(member_session, member.id, now())
        .await
        .expect("find")
        .expect("live once backfilled");
    assert_eq!(live.organization.id, member.organization.id);
    let after = f
        .store
        .rotate_refresh_token(&[1; 32], rotate_at_now(), replacement())
        .await
        .expect("rotate")
        .expect("token exists");
    assert!(after.rotated.is_some(), "{after:?}");

    let again = f
        .store
        .backfill_organizations(OrgKind::Personal, now())
        .await
        .expect("backfill again");
    assert_eq!(again, Backfilled::default());
    assert_eq!(count(&mut f, "SELECT COUNT(*) FROM organizations").await, 4);
}

/// Concurrent backfills (instances starting together) create one organization per user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_backfills_create_one_organization_per_user() {
    let Some(mut f) = fixture().await else {
        return;
    };
    for i in 0..20 {
        insert_bare_user(&mut f, &format!("u{i}@example.com"), &format!("u{i}")).await;
    }
    let store = Arc::new(f.store.clone());
    let racers: Vec<_> = (0..4)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.backfill_organizations(OrgKind::Team, now()).await })
        })
        .collect();
    let mut created = 0;
    for racer in racers {
        created += racer.await.expect("join").expect("backfill").organizations;
    }
    assert_eq!(created, 20);
    assert_eq!(
        count(&mut f, "SELECT COUNT(*) FROM organizations").await,
        20
    );
    assert_eq!(
        count(
            &mut f,
            "SELECT COUNT(DISTINCT user_id) FROM organization_memberships"
        )
        .await,
        20
    );
}

/// `ensure_initial_organization` creates the organization of a user without a membership,
/// with its effects, exactly once among concurrent calls, and not alongside a backfill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_initial_organization_creates_once() {
    let Some(mut f) = fixture().await else {
        return;
    };
    let user = insert_bare_user(&mut f, "late@example.com", "late").await;
    let store = Arc::new(f.store.clone());
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                if i == 0 {
                    return store
                        .backfill_organizations(OrgKind::Team, now())
                        .await
                        .map(|b| b.organizations == 1);
                }
                let org = InitialOrganization {
                    id: Uuid::new_v4(),
                    name: "late".into(),
                    kind: OrgKind::Team,
                };
                store
                    .ensure_initial_organization(user, org, now(), Effects::none())
                    .await
            })
        })
        .collect();
    let mut winners = 0;
    for racer in racers {
        winners += u32::from(racer.await.expect("join").expect("ensure"));
    }
    assert_eq!(winners, 1);
    assert_eq!(
        count(&mut f, "SELECT COUNT(*) FROM organization_memberships").await,
        1
    );
    let unknown = InitialOrganization {
        id: Uuid::new_v4(),
        name: "ghost".into(),
        kind: OrgKind::Team,
    };
    assert!(!f
        .store
        .ensure_initial_organization(Uuid::new_v4(), unknown, now(), Effects::none())
        .await
        .expect("ensure for an unknown user"));
}

/// The default organization is the oldest personal membership, else the oldest membership
/// (ties by organization id); asking for one is honoured only where the user is a member.
#[tokio::test]
async fn create_session_default_prefers_the_oldest_personal_membership() {
    let Some(mut f) = fixture().await else {
        return;
    };
    let alice = create_user(&f, "alice", OrgKind::Team).await;
    let older_team = insert_membership(
        &mut f,
        alice.id,
        OrgKind::Team,
        OrgRole::Member,
        now() - Duration::days(20),
    )
    .await;
    let (_, _, org) = login(&f, alice.id, None).await.expect("login");
    assert_eq!(
        org.id, older_team,
        "oldest membership without a personal one"
    );
    assert_eq!(org.role, OrgRole::Member);

    let personal = insert_membership(
        &mut f,
        alice.id,
        OrgKind::Personal,
        OrgRole::Admin,
        now() - Duration::days(1),
    )
    .await;
    let (session, _, org) = login(&f, alice.id, None).await.expect("login");
    assert_eq!(org.id, personal, "a personal membership wins, however new");
    assert_eq!(org.role, OrgRole::Admin);
    let stored: Option<Uuid> =
        sqlx::query_scalar("SELECT active_organization_id FROM sessions WHERE id = $1")
            .bind(session)
            .fetch_one(&mut f.sql)
            .await
            .expect("read session");
    assert_eq!(stored, Some(personal));

    let (_, _, org) = login(&f, alice.id, Some(alice.organization.id))
        .await
        .expect("login into the given organization");
    assert_eq!(org.id, alice.organization.id);
    assert_eq!(org.role, OrgRole::Owner);

    // Ties: same creation time, the smaller organization id.
    let bob = insert_bare_user(&mut f, "bob@example.com", "bob").await;
    let at = now() - Duration::days(5);
    let a = insert_membership(&mut f, bob, OrgKind::Team, OrgRole::Member, at).await;
    let b = insert_membership(&mut f, bob, OrgKind::Team, OrgRole::Member, at).await;
    let (_, _, org) = login(&f, bob, None).await.expect("login");
    assert_eq!(org.id, a.min(b));
}

/// Once the membership of a session's organization is gone, the session is not live, its
/// token reads without an organization and does not rotate (nothing consumed, nothing
/// inserted), and it can still be switched to an organization where the user is a member.
#[tokio::test]
async fn a_removed_membership_stops_the_session_until_it_switches() {
    let Some(mut f) = fixture().await else {
        return;
    };
    let alice = create_user(&f, "alice", OrgKind::Personal).await;
    let team = insert_membership(
        &mut f,
        alice.id,
        OrgKind::Team,
        OrgRole::Member,
        now() - Duration::days(1),
    )
    .await;
    let (session, hash, org) = login(&f, alice.id, Some(team)).await.expect("login");
    assert_eq!(org.id, team);
    sqlx::query("DELETE FROM organization_memberships WHERE organization_id = $1")
        .bind(team)
        .execute(&mut f.sql)
        .await
        .expect("remove membership");

    assert!(f
        .store
        .find_live_session_user(session, alice.id, now())
        .await
        .expect("find")
        .is_none());
    let found = f
        .store
        .find_refresh_token(&hash)
        .await
        .expect("find token")
        .expect("token exists");
    assert_eq!(found.organization, None);
    let outcome = f
        .store
        .rotate_refresh_token(&hash, rotate_at_now(), replacement())
        .await
        .expect("rotate")
        .expect("token exists");
    assert_eq!(outcome.rotated, None);
    assert_eq!(
        count(
            &mut f,
            "SELECT COUNT(*) FROM refresh_tokens WHERE consumed_at IS NOT NULL"
        )
        .await,
        0
    );
    assert_eq!(
        count(&mut f, "SELECT COUNT(*) FROM refresh_tokens").await,
        1
    );

    let token = NewRefreshToken {
        id: Uuid::new_v4(),
        session_id: session,
        token_hash: [0x55; 32],
        created_at: now(),
        expires_at: now() + Duration::days(30),
    };
    assert!(f
        .store
        .switch_session_organization(session, alice.id, team, token.clone(), now())
        .await
        .expect("switch")
        .is_none());
    let switched = f
        .store
        .switch_session_organization(session, alice.id, alice.organization.id, token, now())
        .await
        .expect("switch")
        .expect("a member there");
    assert_eq!(switched.organization.id, alice.organization.id);
    assert_eq!(switched.token_expires_at, now() + Duration::days(1));
    let live = f
        .store
        .find_live_session_user(session, alice.id, now())
        .await
        .expect("find")
        .expect("live again");
    assert_eq!(live.organization.role, OrgRole::Owner);
}

/// An unknown stored role is unreadable data, not a membership, and a sign-in that meets it
/// leaves no session behind.
#[tokio::test]
async fn an_unknown_role_is_an_error() {
    let Some(mut f) = fixture().await else {
        return;
    };
    let alice = create_user(&f, "alice", OrgKind::Personal).await;
    sqlx::query(
        "ALTER TABLE organization_memberships DROP CONSTRAINT organization_memberships_role_check",
    )
    .execute(&mut f.sql)
    .await
    .expect("drop check");
    sqlx::query("UPDATE organization_memberships SET role = 'emperor'")
        .execute(&mut f.sql)
        .await
        .expect("set role");
    let err = f
        .store
        .find_membership(alice.organization.id, alice.id)
        .await
        .expect_err("unknown role");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let err = login(&f, alice.id, None)
        .await
        .expect_err("unknown role at sign-in");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert_eq!(count(&mut f, "SELECT COUNT(*) FROM sessions").await, 0);
}

//! Users: creating, finding, renaming, roles, disabling and deleting.

use authara_core::store::{Effects, SessionsToRevoke, Store, UniqueKey};
use time::Duration;
use uuid::Uuid;

use super::fixtures::*;

/// A created user is found by id and by email, field for field; unknown keys find nothing.
pub async fn create_and_find_user(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let _bob = create_user(store, "bob").await;
    let expected = record_of(&alice);

    assert_eq!(user_record(store, alice.id).await, expected);
    assert_eq!(
        store
            .find_user_by_email("alice@example.com")
            .await
            .expect("find by email"),
        Some(expected)
    );
    assert_eq!(
        store.find_user_by_id(Uuid::new_v4()).await.expect("find"),
        None
    );
    assert_eq!(
        store
            .find_user_by_email("nobody@example.com")
            .await
            .expect("find"),
        None
    );
}

/// A user without a password (e.g. from Google sign-in) reads back with `None`.
pub async fn user_without_password(store: &dyn Store) {
    let mut carol = new_user("carol");
    carol.password_hash = None;
    store
        .create_user(carol.clone(), Effects::none())
        .await
        .expect("create");
    let found = user_record(store, carol.id).await;
    assert_eq!(found.password_hash, None);
    assert_eq!(found, record_of(&carol));
}

/// A taken email is `Conflict(Email)` and nothing is inserted.
pub async fn create_user_email_conflict(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let mut other = new_user("someone-else");
    other.email = alice.email.clone();
    assert_conflict(
        store.create_user(other.clone(), Effects::none()).await,
        UniqueKey::Email,
    );
    assert_eq!(store.find_user_by_id(other.id).await.expect("find"), None);
    assert_eq!(user_record(store, alice.id).await, record_of(&alice));
}

/// A taken username is `Conflict(Username)` and nothing is inserted.
pub async fn create_user_username_conflict(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let mut other = new_user("someone-else");
    other.username = alice.username.clone();
    assert_conflict(
        store.create_user(other.clone(), Effects::none()).await,
        UniqueKey::Username,
    );
    assert_eq!(store.find_user_by_id(other.id).await.expect("find"), None);
}

/// The store compares emails and usernames byte for byte: normalising case is the caller's
/// job, so values differing in case are different keys.
pub async fn email_is_compared_exactly(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    assert_eq!(
        store
            .find_user_by_email("Alice@Example.com")
            .await
            .expect("find"),
        None
    );

    let mut shouty = new_user("ALICE");
    shouty.email = "Alice@Example.com".to_owned();
    store
        .create_user(shouty.clone(), Effects::none())
        .await
        .expect("a differently cased email and username are not a conflict");

    assert_eq!(
        store
            .find_user_by_email("Alice@Example.com")
            .await
            .expect("find"),
        Some(record_of(&shouty))
    );
    assert_eq!(
        store
            .find_user_by_email("alice@example.com")
            .await
            .expect("find"),
        Some(record_of(&alice))
    );
}

/// `set_password_hash` replaces the hash and touches nothing else.
pub async fn set_password_hash_replaces_hash(store: &dyn Store) {
    let mut carol = new_user("carol");
    carol.password_hash = None;
    store
        .create_user(carol.clone(), Effects::none())
        .await
        .expect("create");
    let bob = create_user(store, "bob").await;

    let hash = "$argon2id$v=19$m=19456,t=2,p=1$bmV3$new-hash";
    store
        .set_password_hash(
            carol.id,
            hash,
            SessionsToRevoke::None,
            now(),
            Effects::none(),
        )
        .await
        .expect("set");
    let mut expected = record_of(&carol);
    expected.password_hash = Some(hash.to_owned());
    assert_eq!(user_record(store, carol.id).await, expected);

    store
        .set_password_hash(
            carol.id,
            "$argon2id$again",
            SessionsToRevoke::None,
            now(),
            Effects::none(),
        )
        .await
        .expect("set again");
    assert_eq!(
        user_record(store, carol.id).await.password_hash.as_deref(),
        Some("$argon2id$again")
    );
    assert_eq!(user_record(store, bob.id).await, record_of(&bob));
}

/// `set_password_hash` on an unknown user is `NotFound`, whatever it was to revoke.
pub async fn set_password_hash_unknown_user(store: &dyn Store) {
    for revoke in [
        SessionsToRevoke::None,
        SessionsToRevoke::AllExcept(Uuid::new_v4()),
        SessionsToRevoke::All,
    ] {
        assert_not_found(
            store
                .set_password_hash(
                    Uuid::new_v4(),
                    "$argon2id$x",
                    revoke,
                    now(),
                    Effects::none(),
                )
                .await,
        );
    }
}

/// `set_username` renames; renaming to one's own name is fine.
pub async fn set_username_renames(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    store
        .set_username(alice.id, "alice2", now(), Effects::none())
        .await
        .expect("rename");
    let mut expected = record_of(&alice);
    expected.username = "alice2".to_owned();
    assert_eq!(user_record(store, alice.id).await, expected);

    store
        .set_username(alice.id, "alice2", now(), Effects::none())
        .await
        .expect("keeping one's own username is not a conflict");

    // The old name is free again.
    let mut other = new_user("other");
    other.username = "alice".to_owned();
    store
        .create_user(other, Effects::none())
        .await
        .expect("reuse freed username");
}

/// Renaming to a taken username is `Conflict(Username)` and changes nothing.
pub async fn set_username_conflict(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let bob = create_user(store, "bob").await;
    assert_conflict(
        store
            .set_username(bob.id, "alice", now(), Effects::none())
            .await,
        UniqueKey::Username,
    );
    assert_eq!(user_record(store, bob.id).await, record_of(&bob));
    assert_eq!(user_record(store, alice.id).await, record_of(&alice));
}

/// `set_username` on an unknown user is `NotFound`.
pub async fn set_username_unknown_user(store: &dyn Store) {
    assert_not_found(
        store
            .set_username(Uuid::new_v4(), "ghost", now(), Effects::none())
            .await,
    );
}

/// `set_admin_by_email` grants and revokes, idempotently, for that user only; an unknown
/// email is `NotFound`.
pub async fn set_admin_by_email_grants_and_revokes(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let bob = create_user(store, "bob").await;
    assert!(!user_record(store, alice.id).await.is_admin);

    store
        .set_admin_by_email(&alice.email, true, now(), Effects::none())
        .await
        .expect("grant");
    assert!(user_record(store, alice.id).await.is_admin);
    store
        .set_admin_by_email(&alice.email, true, now(), Effects::none())
        .await
        .expect("grant again");
    assert!(user_record(store, alice.id).await.is_admin);
    assert!(!user_record(store, bob.id).await.is_admin);

    store
        .set_admin_by_email(&alice.email, false, now(), Effects::none())
        .await
        .expect("revoke");
    assert_eq!(user_record(store, alice.id).await, record_of(&alice));

    assert_not_found(
        store
            .set_admin_by_email("nobody@example.com", true, now(), Effects::none())
            .await,
    );
}

/// Disabling a user revokes every unrevoked session of theirs at `now` (an earlier revocation
/// keeps its time), hides them from `find_live_session_user` and `list_live_sessions`, and
/// leaves other users alone.
pub async fn set_disabled_revokes_sessions(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let bob = create_user(store, "bob").await;
    let (s1, t1) = login(store, alice.id).await;
    let (s2, t2) = login(store, alice.id).await;
    let (s3, t3) = login(store, bob.id).await;
    let earlier = now() - Duration::minutes(5);
    assert!(store
        .revoke_session(s2.id, None, earlier, Effects::none())
        .await
        .expect("revoke"));
    assert!(is_live(store, &s1, now()).await);

    store
        .set_disabled(alice.id, true, now(), Effects::none())
        .await
        .expect("disable");

    let found = user_record(store, alice.id).await;
    assert!(found.disabled);
    assert!(!is_live(store, &s1, now()).await);
    assert!(store
        .list_live_sessions(alice.id, now())
        .await
        .expect("list")
        .is_empty());
    let r1 = token_record(store, &t1.token_hash).await;
    assert_eq!(r1.session.revoked_at, Some(now()));
    assert!(r1.user.disabled);
    assert_eq!(
        token_record(store, &t2.token_hash).await.session.revoked_at,
        Some(earlier)
    );

    assert!(is_live(store, &s3, now()).await);
    assert_eq!(
        token_record(store, &t3.token_hash).await.session.revoked_at,
        None
    );
    assert!(!user_record(store, bob.id).await.disabled);

    // Disabling twice is fine.
    store
        .set_disabled(alice.id, true, now() + us(1), Effects::none())
        .await
        .expect("disable again");
    assert_eq!(
        token_record(store, &t1.token_hash).await.session.revoked_at,
        Some(now())
    );
}

/// Enabling a user again does not resurrect their revoked sessions; new ones are live.
pub async fn enable_again_keeps_old_sessions_revoked(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let (s1, _) = login(store, alice.id).await;
    store
        .set_disabled(alice.id, true, now(), Effects::none())
        .await
        .expect("disable");
    store
        .set_disabled(
            alice.id,
            false,
            now() + Duration::seconds(1),
            Effects::none(),
        )
        .await
        .expect("enable");

    assert_eq!(user_record(store, alice.id).await, record_of(&alice));
    assert!(!is_live(store, &s1, now() + Duration::seconds(2)).await);
    let (s2, _) = login(store, alice.id).await;
    assert!(is_live(store, &s2, now() + Duration::seconds(2)).await);
    let live = store
        .list_live_sessions(alice.id, now() + Duration::seconds(2))
        .await
        .expect("list");
    assert_eq!(live.iter().map(|s| s.id).collect::<Vec<_>>(), vec![s2.id]);
}

/// `set_disabled` on an unknown user is `NotFound`, either way.
pub async fn set_disabled_unknown_user(store: &dyn Store) {
    assert_not_found(
        store
            .set_disabled(Uuid::new_v4(), true, now(), Effects::none())
            .await,
    );
    assert_not_found(
        store
            .set_disabled(Uuid::new_v4(), false, now(), Effects::none())
            .await,
    );
}

/// Deleting a user removes their sessions and refresh tokens (consumed or not), frees their
/// email, and leaves other users alone; deleting again is `NotFound`.
pub async fn delete_user_cascades(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let bob = create_user(store, "bob").await;
    let (s1, t1) = login(store, alice.id).await;
    let (s2, t2) = login(store, alice.id).await;
    let t2b = rotate_ok(store, &t2.token_hash, now()).await;
    let (s3, t3) = login(store, bob.id).await;

    store
        .delete_user(alice.id, Effects::none())
        .await
        .expect("delete");

    assert_eq!(store.find_user_by_id(alice.id).await.expect("find"), None);
    assert_eq!(
        store.find_user_by_email(&alice.email).await.expect("find"),
        None
    );
    for hash in [&t1.token_hash, &t2.token_hash, &t2b] {
        assert_eq!(store.find_refresh_token(hash).await.expect("find"), None);
    }
    assert!(!is_live(store, &s1, now()).await);
    assert!(store
        .list_live_sessions(alice.id, now())
        .await
        .expect("list")
        .is_empty());
    // The sessions are gone, not merely hidden: revoking them finds nothing.
    assert!(!store
        .revoke_session(s1.id, None, now(), Effects::none())
        .await
        .expect("revoke"));
    assert!(!store
        .revoke_session(s2.id, None, now(), Effects::none())
        .await
        .expect("revoke"));

    assert_not_found(store.delete_user(alice.id, Effects::none()).await);

    assert!(is_live(store, &s3, now()).await);
    assert_eq!(
        token_record(store, &t3.token_hash).await.user,
        record_of(&bob)
    );

    let mut again = new_user("alice-again");
    again.email = alice.email.clone();
    store
        .create_user(again, Effects::none())
        .await
        .expect("email is free again");
}

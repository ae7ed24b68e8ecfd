//! Revoking many of a user's sessions at once: with a password change
//! (`set_password_hash` with [`SessionsToRevoke`]) and "sign out everywhere else"
//! (`revoke_other_sessions`). Only the user's live sessions are revoked, the kept one survives,
//! the revoked ones' refresh tokens refresh no more, and the effects are committed exactly once.

use std::sync::{Arc, Mutex};

use authara_core::audit::AuditAction;
use authara_core::store::{
    Change, ChangeFeed, Effects, EffectsFor, NewRefreshToken, NewSession, SessionsToRevoke, Store,
};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::fixtures::*;

/// A user with every kind of session: three live ones, one revoked earlier, one expired; and
/// another user with a live session.
struct Sessions {
    alice: Uuid,
    live: [(NewSession, NewRefreshToken); 3],
    revoked: (NewSession, NewRefreshToken),
    revoked_at: OffsetDateTime,
    expired: (NewSession, NewRefreshToken),
    bobs: (NewSession, NewRefreshToken),
}

async fn sessions(store: &dyn Store) -> Sessions {
    let alice = create_user(store, "alice").await.id;
    let bob = create_user(store, "bob").await.id;
    let live = [
        login(store, alice).await,
        login(store, alice).await,
        login(store, alice).await,
    ];
    let revoked = login(store, alice).await;
    let revoked_at = now() - Duration::minutes(5);
    assert!(store
        .revoke_session(revoked.0.id, None, revoked_at, Effects::none())
        .await
        .expect("revoke"));
    let expired = login_at(store, alice, now() - Duration::days(2), now()).await;
    let bobs = login(store, bob).await;
    Sessions {
        alice,
        live,
        revoked,
        revoked_at,
        expired,
        bobs,
    }
}

/// The sessions no revocation of alice's may touch: the earlier revocation keeps its time, the
/// expired session stays unrevoked, bob's stays live.
async fn assert_bystanders_untouched(store: &dyn Store, s: &Sessions) {
    assert_eq!(revoked_at(store, &s.revoked).await, Some(s.revoked_at));
    assert_eq!(
        revoked_at(store, &s.expired).await,
        None,
        "expired: untouched"
    );
    assert_eq!(
        revoked_at(store, &s.bobs).await,
        None,
        "another user's session"
    );
    assert!(is_live(store, &s.bobs.0, now()).await);
}

/// Records each count an [`EffectsFor`] is called with, and builds one audit row per call.
fn counting(calls: &Arc<Mutex<Vec<u64>>>, user: Uuid) -> EffectsFor {
    let calls = Arc::clone(calls);
    Box::new(move |count| {
        calls.lock().expect("lock").push(count);
        let entry = audit_at(
            AuditAction::SessionsRevoked,
            Some(user),
            Some(user),
            Some("alice@example.com"),
            now(),
        );
        Effects::none().audit(entry)
    })
}

/// A password change that keeps one session revokes the user's other live sessions at `now`,
/// returns how many, and replaces the hash; the kept session and its token work on, the revoked
/// ones' tokens no longer rotate. Sessions revoked before keep their time, expired ones and
/// other users' are not touched.
pub async fn set_password_hash_revokes_all_sessions_but_the_kept_one(store: &dyn Store) {
    let s = sessions(store).await;
    let [kept, other1, other2] = &s.live;
    let revoked = store
        .set_password_hash(
            s.alice,
            "$argon2id$changed",
            SessionsToRevoke::AllExcept(kept.0.id),
            now(),
            Effects::none(),
        )
        .await
        .expect("set");
    assert_eq!(revoked, 2);
    assert_eq!(
        user_record(store, s.alice).await.password_hash.as_deref(),
        Some("$argon2id$changed")
    );
    assert!(is_live(store, &kept.0, now()).await);
    assert_eq!(revoked_at(store, kept).await, None);
    for other in [other1, other2] {
        assert!(!is_live(store, &other.0, now()).await);
        assert_eq!(revoked_at(store, other).await, Some(now()));
        assert!(!refreshes(store, other).await, "a revoked session's token");
    }
    assert_bystanders_untouched(store, &s).await;
    let listed = store
        .list_live_sessions(s.alice, now())
        .await
        .expect("list");
    assert_eq!(listed.iter().map(|l| l.id).collect::<Vec<_>>(), [kept.0.id]);
    assert!(refreshes(store, kept).await, "the kept session's token");
}

/// `All` revokes every live session; `None` revokes nothing and still replaces the hash.
pub async fn set_password_hash_revokes_all_or_none(store: &dyn Store) {
    let s = sessions(store).await;
    let none = store
        .set_password_hash(
            s.alice,
            "$argon2id$rehashed",
            SessionsToRevoke::None,
            now(),
            Effects::none(),
        )
        .await
        .expect("set");
    assert_eq!(none, 0);
    assert_eq!(
        user_record(store, s.alice).await.password_hash.as_deref(),
        Some("$argon2id$rehashed")
    );
    for live in &s.live {
        assert!(is_live(store, &live.0, now()).await);
    }

    let all = store
        .set_password_hash(
            s.alice,
            "$argon2id$reset",
            SessionsToRevoke::All,
            now(),
            Effects::none(),
        )
        .await
        .expect("set");
    assert_eq!(all, 3);
    for live in &s.live {
        assert_eq!(revoked_at(store, live).await, Some(now()));
    }
    assert_bystanders_untouched(store, &s).await;
    // Nothing is left to revoke.
    let again = store
        .set_password_hash(
            s.alice,
            "$argon2id$again",
            SessionsToRevoke::All,
            now() + us(1),
            Effects::none(),
        )
        .await
        .expect("set");
    assert_eq!(again, 0);
    for live in &s.live {
        assert_eq!(
            revoked_at(store, live).await,
            Some(now()),
            "first time kept"
        );
    }
}

/// A password change with a revocation commits its effects once per change, also when it
/// revoked nothing (the password did change); for an unknown user it is `NotFound` and
/// commits none and revokes nothing.
pub async fn set_password_hash_with_revocation_commits_effects_once(store: &dyn Store) {
    let s = sessions(store).await;
    let ghost = Uuid::new_v4();
    let effects = || {
        Effects::none()
            .event(event_at(s.alice, now()))
            .audit(audit_at(
                AuditAction::PasswordChanged,
                Some(s.alice),
                Some(s.alice),
                Some("alice@example.com"),
                now(),
            ))
    };
    assert_not_found(
        store
            .set_password_hash(
                ghost,
                "$argon2id$x",
                SessionsToRevoke::AllExcept(s.live[0].0.id),
                now(),
                effects(),
            )
            .await,
    );
    assert!(all_events(store).await.is_empty());
    assert!(all_audit(store).await.is_empty());
    for live in &s.live {
        assert!(is_live(store, &live.0, now()).await);
    }

    let keep = SessionsToRevoke::AllExcept(s.live[0].0.id);
    let first = effects();
    let revoked = store
        .set_password_hash(s.alice, "$argon2id$1", keep, now(), first.clone())
        .await
        .expect("set");
    assert_eq!(revoked, 2);
    assert_eq!(all_events(store).await.len(), 1);
    let audit = all_audit(store).await;
    assert_eq!(audit, vec![audit_record_of(&first.audit[0])]);

    let revoked = store
        .set_password_hash(s.alice, "$argon2id$2", keep, now() + us(1), effects())
        .await
        .expect("set again");
    assert_eq!(revoked, 0);
    assert_eq!(all_events(store).await.len(), 2);
    assert_eq!(all_audit(store).await.len(), 2);
}

/// `revoke_other_sessions` revokes every live session of the user but the kept one at `now`,
/// returns how many, and commits the effects built from that count once; a second call finds
/// nothing to revoke and commits nothing.
pub async fn revoke_other_sessions_keeps_only_the_kept_one(store: &dyn Store) {
    let s = sessions(store).await;
    let [other1, kept, other2] = &s.live;
    let calls = Arc::new(Mutex::new(Vec::new()));
    let revoked = store
        .revoke_other_sessions(s.alice, kept.0.id, now(), counting(&calls, s.alice))
        .await
        .expect("revoke");
    assert_eq!(revoked, 2);
    assert_eq!(*calls.lock().unwrap(), [2]);
    assert_eq!(all_audit(store).await.len(), 1);
    assert!(is_live(store, &kept.0, now()).await);
    for other in [other1, other2] {
        assert_eq!(revoked_at(store, other).await, Some(now()));
        assert!(!refreshes(store, other).await, "a revoked session's token");
    }
    assert_bystanders_untouched(store, &s).await;
    // The user's own row is not changed.
    assert_eq!(
        user_record(store, s.alice).await.password_hash,
        new_user("alice").password_hash
    );

    let again = store
        .revoke_other_sessions(s.alice, kept.0.id, now() + us(1), counting(&calls, s.alice))
        .await
        .expect("revoke again");
    assert_eq!(again, 0);
    assert_eq!(all_audit(store).await.len(), 1, "nothing revoked, no row");
    assert!(refreshes(store, kept).await, "the kept session's token");
}

/// An unknown user has nothing to revoke (`0`, no effects). A kept id that is not one of the
/// user's sessions protects none of them, and the session it names is left alone.
pub async fn revoke_other_sessions_unknown_user_and_foreign_keep(store: &dyn Store) {
    let s = sessions(store).await;
    let calls = Arc::new(Mutex::new(Vec::new()));
    let none = store
        .revoke_other_sessions(
            Uuid::new_v4(),
            s.live[0].0.id,
            now(),
            counting(&calls, s.alice),
        )
        .await
        .expect("revoke");
    assert_eq!(none, 0);
    assert!(calls.lock().unwrap().is_empty());
    assert!(all_audit(store).await.is_empty());
    for live in &s.live {
        assert!(is_live(store, &live.0, now()).await);
    }

    let all = store
        .revoke_other_sessions(s.alice, s.bobs.0.id, now(), counting(&calls, s.alice))
        .await
        .expect("revoke");
    assert_eq!(all, 3);
    assert_eq!(*calls.lock().unwrap(), [3]);
    for live in &s.live {
        assert_eq!(revoked_at(store, live).await, Some(now()));
    }
    assert_bystanders_untouched(store, &s).await;
}

/// With a change feed, both revocations announce each session they revoke (and the password
/// change the user), so other instances' caches forget them.
pub async fn watch_changes_reports_what_mass_revocations_revoke(store: &dyn Store) {
    let mut rx = match store.watch_changes().await.expect("watch") {
        ChangeFeed::Unsupported => return,
        ChangeFeed::Channel(rx) => rx,
    };
    assert_eq!(next(&mut rx).await, Change::Resumed);
    let alice = create_user(store, "alice").await.id;
    let (s1, _) = login(store, alice).await;
    let (s2, _) = login(store, alice).await;
    let (s3, _) = login(store, alice).await;

    let revoked = store
        .revoke_other_sessions(alice, s1.id, now(), Box::new(|_| Effects::none()))
        .await
        .expect("revoke");
    assert_eq!(revoked, 2);
    let mut got = vec![next(&mut rx).await, next(&mut rx).await];
    got.sort_by_key(|c| format!("{c:?}"));
    let mut want = vec![Change::Session(s2.id), Change::Session(s3.id)];
    want.sort_by_key(|c| format!("{c:?}"));
    assert_eq!(got, want);

    let (s4, _) = login(store, alice).await;
    let revoked = store
        .set_password_hash(
            alice,
            "$argon2id$new",
            SessionsToRevoke::AllExcept(s1.id),
            now() + us(1),
            Effects::none(),
        )
        .await
        .expect("set");
    assert_eq!(revoked, 1);
    let mut got = vec![next(&mut rx).await, next(&mut rx).await];
    got.sort_by_key(|c| format!("{c:?}"));
    let mut want = vec![Change::Session(s4.id), Change::User(alice)];
    want.sort_by_key(|c| format!("{c:?}"));
    assert_eq!(got, want);
}

//! Sessions and refresh tokens: creating, finding, revoking, rotating (with the races), the
//! per-user cap, purging, and the change feed.

use std::collections::BTreeSet;
use std::sync::Arc;

use authara_core::store::{
    Change, ChangeFeed, Effects, LiveSession, NewRefreshToken, PurgeCounts, RefreshTokenRecord,
    Replacement, RotateIf, RotateOutcome, SessionRecord, SessionUser, Store, StoreError, TokenHash,
    UniqueKey,
};
use time::Duration;
use uuid::Uuid;

use super::fixtures::*;
use super::RACERS;

/// `find_refresh_token` returns the token joined with its session and user, every timestamp
/// exact to the microsecond; an unknown hash finds nothing.
pub async fn create_session_and_find_refresh_token(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let created = now() + us(654_321);
    let (session, token) = new_login(alice.id, created, created + Duration::days(30) + us(7));
    let token = NewRefreshToken {
        expires_at: created + Duration::days(14) + us(3),
        ..token
    };
    store
        .create_session(session.clone(), token.clone())
        .await
        .expect("create session");

    let expected = RefreshTokenRecord {
        id: token.id,
        session_id: session.id,
        created_at: token.created_at,
        expires_at: token.expires_at,
        consumed_at: None,
        session: SessionRecord {
            id: session.id,
            user_id: alice.id,
            user_agent: session.user_agent.clone(),
            client_ip: session.client_ip.clone(),
            created_at: session.created_at,
            expires_at: session.expires_at,
            revoked_at: None,
        },
        user: record_of(&alice),
        organization: Some(initial_org_of(&alice)),
    };
    assert_eq!(token_record(store, &token.token_hash).await, expected);
    assert_eq!(
        store
            .find_refresh_token(&random_hash())
            .await
            .expect("find"),
        None
    );
}

/// A session for an unknown user is `NotFound`, and its token is not stored.
pub async fn create_session_unknown_user(store: &dyn Store) {
    let (session, token) = new_login(Uuid::new_v4(), now(), now() + Duration::days(1));
    assert_not_found(store.create_session(session, token.clone()).await);
    assert_eq!(
        store
            .find_refresh_token(&token.token_hash)
            .await
            .expect("find"),
        None
    );
}

/// A session whose first token's hash is taken is `Conflict(Other)`, and the session is not
/// stored either (one transaction).
pub async fn create_session_duplicate_token_hash(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let (s1, t1) = login(store, alice.id).await;
    let (s2, mut t2) = new_login(alice.id, now(), now() + Duration::days(1));
    t2.token_hash = t1.token_hash;
    assert_conflict(store.create_session(s2, t2).await, UniqueKey::Other);
    let live = store
        .list_live_sessions(alice.id, now())
        .await
        .expect("list");
    assert_eq!(live.iter().map(|s| s.id).collect::<Vec<_>>(), vec![s1.id]);
}

/// `find_live_session_user` finds the user only for an unrevoked session that expires after
/// `now`, belongs to the given user, whose user is enabled.
pub async fn find_live_session_user_filters(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let bob = create_user(store, "bob").await;
    let (live, _) = login(store, alice.id).await;
    let (revoked, _) = login(store, alice.id).await;
    let (expiring, _) = login_at(store, alice.id, now() - Duration::hours(1), now()).await;
    let (bobs, _) = login(store, bob.id).await;
    assert!(store
        .revoke_session(
            revoked.id,
            Some(alice.id),
            now() - Duration::seconds(1),
            Effects::none()
        )
        .await
        .expect("revoke"));

    assert_eq!(
        store
            .find_live_session_user(live.id, alice.id, now())
            .await
            .expect("find"),
        Some(SessionUser {
            user: record_of(&alice),
            organization: initial_org_of(&alice),
        })
    );
    // Wrong user, either way round.
    assert!(store
        .find_live_session_user(live.id, bob.id, now())
        .await
        .expect("find")
        .is_none());
    assert!(store
        .find_live_session_user(bobs.id, alice.id, now())
        .await
        .expect("find")
        .is_none());
    // Revoked.
    assert!(!is_live(store, &revoked, now()).await);
    // Expiry is exclusive: live until the microsecond before `expires_at`.
    assert!(is_live(store, &expiring, now() - us(1)).await);
    assert!(!is_live(store, &expiring, now()).await);
    assert!(!is_live(store, &live, live.expires_at).await);
    // Unknown session.
    assert!(store
        .find_live_session_user(Uuid::new_v4(), alice.id, now())
        .await
        .expect("find")
        .is_none());
    // Disabled user (and bob's session unaffected).
    store
        .set_disabled(alice.id, true, now(), Effects::none())
        .await
        .expect("disable");
    assert!(!is_live(store, &live, now()).await);
    assert!(is_live(store, &bobs, now()).await);
}

/// `list_live_sessions` lists only the user's unrevoked, unexpired sessions, newest first,
/// ties broken by id.
pub async fn list_live_sessions_order_and_filter(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let bob = create_user(store, "bob").await;
    let base = now() - Duration::hours(2);
    let expires = now() + Duration::days(1);
    let (a, _) = login_at(store, alice.id, base + Duration::seconds(1), expires).await;
    let (b, _) = login_at(store, alice.id, base + Duration::seconds(3), expires).await;
    let (c, _) = login_at(store, alice.id, base + us(2_000_001), expires).await;
    let (d, _) = login_at(store, alice.id, base + Duration::seconds(4), expires).await;
    let (e, _) = login_at(store, alice.id, base + Duration::seconds(4), expires).await;
    let (_expired, _) = login_at(store, alice.id, base + Duration::seconds(5), now()).await;
    let (revoked, _) = login_at(store, alice.id, base + Duration::seconds(6), expires).await;
    let (_bobs, _) = login_at(store, bob.id, base + Duration::seconds(7), expires).await;
    assert!(store
        .revoke_session(revoked.id, None, now(), Effects::none())
        .await
        .expect("revoke"));

    let (first, second) = if d.id < e.id { (&d, &e) } else { (&e, &d) };
    let expected_ids = vec![first.id, second.id, b.id, c.id, a.id];
    let listed = store
        .list_live_sessions(alice.id, now())
        .await
        .expect("list");
    assert_eq!(
        listed.iter().map(|s| s.id).collect::<Vec<_>>(),
        expected_ids
    );

    // Never rotated: last used when it was created.
    let expected_c = LiveSession {
        id: c.id,
        user_id: alice.id,
        user_agent: c.user_agent.clone(),
        client_ip: c.client_ip.clone(),
        created_at: c.created_at,
        expires_at: c.expires_at,
        last_used_at: c.created_at,
    };
    assert!(listed.contains(&expected_c));

    assert!(store
        .list_live_sessions(Uuid::new_v4(), now())
        .await
        .expect("list")
        .is_empty());
    // At `expires` everything has expired.
    assert!(store
        .list_live_sessions(alice.id, expires)
        .await
        .expect("list")
        .is_empty());
}

/// A listed session was last used when it got its newest refresh token: at sign-in, then at
/// each rotation; a rotation of another session does not move it.
pub async fn list_live_sessions_reports_the_last_rotation(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let (s1, t1) = login(store, alice.id).await;
    let (s2, _) = login(store, alice.id).await;
    let last_used = |listed: &[LiveSession], id: Uuid| {
        listed
            .iter()
            .find(|l| l.id == id)
            .map(|l| l.last_used_at)
            .expect("listed")
    };
    let listed = store
        .list_live_sessions(alice.id, now())
        .await
        .expect("list");
    assert_eq!(last_used(&listed, s1.id), s1.created_at);
    assert_eq!(last_used(&listed, s2.id), s2.created_at);

    let at = now() + us(42);
    let t1b = rotate_ok(store, &t1.token_hash, at).await;
    let later = at + Duration::minutes(3);
    rotate_ok(store, &t1b, later).await;
    let listed = store
        .list_live_sessions(alice.id, now())
        .await
        .expect("list");
    assert_eq!(last_used(&listed, s1.id), later);
    assert_eq!(last_used(&listed, s2.id), s2.created_at);
}

/// `revoke_session` with an owner revokes only that owner's session; a mismatch or an unknown
/// session returns `false` and changes nothing.
pub async fn revoke_session_owner_check(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let bob = create_user(store, "bob").await;
    let (s1, t1) = login(store, alice.id).await;
    let (s2, t2) = login(store, alice.id).await;

    assert!(!store
        .revoke_session(s1.id, Some(bob.id), now(), Effects::none())
        .await
        .expect("revoke"));
    assert!(is_live(store, &s1, now()).await);
    assert_eq!(
        token_record(store, &t1.token_hash).await.session.revoked_at,
        None
    );

    assert!(store
        .revoke_session(s1.id, Some(alice.id), now(), Effects::none())
        .await
        .expect("revoke"));
    assert!(!is_live(store, &s1, now()).await);
    assert_eq!(
        token_record(store, &t1.token_hash).await.session.revoked_at,
        Some(now())
    );

    // Without an owner (admin), any existing session.
    assert!(store
        .revoke_session(s2.id, None, now(), Effects::none())
        .await
        .expect("revoke"));
    assert_eq!(
        token_record(store, &t2.token_hash).await.session.revoked_at,
        Some(now())
    );

    assert!(!store
        .revoke_session(Uuid::new_v4(), None, now(), Effects::none())
        .await
        .expect("revoke"));
    assert!(!store
        .revoke_session(Uuid::new_v4(), Some(alice.id), now(), Effects::none())
        .await
        .expect("revoke"));
}

/// Revoking again still returns `true` but keeps the first `revoked_at`; a wrong owner still
/// gets `false`.
pub async fn revoke_session_keeps_first_revocation(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let bob = create_user(store, "bob").await;
    let (s1, t1) = login(store, alice.id).await;
    let first = now();
    let later = now() + Duration::minutes(1);

    assert!(store
        .revoke_session(s1.id, Some(alice.id), first, Effects::none())
        .await
        .expect("revoke"));
    assert!(store
        .revoke_session(s1.id, Some(alice.id), later, Effects::none())
        .await
        .expect("revoke"));
    assert!(store
        .revoke_session(s1.id, None, later, Effects::none())
        .await
        .expect("revoke"));
    assert!(!store
        .revoke_session(s1.id, Some(bob.id), later, Effects::none())
        .await
        .expect("revoke"));
    assert_eq!(
        token_record(store, &t1.token_hash).await.session.revoked_at,
        Some(first)
    );
}

/// `rotate_refresh_token` on a rotatable token returns the record as it was, marks the token
/// consumed at `now` and stores the replacement in the same session, created at `now`, expiring
/// at the earlier of its own expiry and the session's. The same token again: the consumed
/// record, and nothing changes. An unknown token: `None`, and nothing is stored.
pub async fn rotate_refresh_token_outcomes(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let (session, t1) = login(store, alice.id).await;
    let before = token_record(store, &t1.token_hash).await;
    let at = now() + us(17);

    let r1 = replacement(at + Duration::hours(1));
    assert_eq!(
        rotate(store, &t1.token_hash, always(at), &r1).await,
        Some(RotateOutcome {
            record: before.clone(),
            rotated: Some(r1.expires_at),
        })
    );
    let consumed = token_record(store, &t1.token_hash).await;
    assert_eq!(
        consumed,
        RefreshTokenRecord {
            consumed_at: Some(at),
            ..before.clone()
        }
    );
    assert_eq!(
        token_record(store, &r1.token_hash).await,
        RefreshTokenRecord {
            id: r1.id,
            session_id: session.id,
            created_at: at,
            expires_at: r1.expires_at,
            consumed_at: None,
            session: before.session.clone(),
            user: record_of(&alice),
            organization: Some(initial_org_of(&alice)),
        }
    );

    // The same token again: nothing changes, the second replacement is not stored.
    let r2 = replacement(at + Duration::hours(1));
    assert_eq!(
        rotate(
            store,
            &t1.token_hash,
            always(at + Duration::seconds(1)),
            &r2
        )
        .await,
        Some(RotateOutcome {
            record: consumed.clone(),
            rotated: None,
        })
    );
    assert!(!is_stored(store, &r2.token_hash).await);
    assert_eq!(token_record(store, &t1.token_hash).await, consumed);

    // The replacement rotates in turn; a replacement that would outlive the session expires
    // with it.
    let r3 = replacement(session.expires_at + Duration::days(13));
    let third = rotate(
        store,
        &r1.token_hash,
        always(at + Duration::seconds(2)),
        &r3,
    )
    .await
    .expect("found");
    assert_eq!(third.rotated, Some(session.expires_at));
    assert_eq!(
        token_record(store, &r3.token_hash).await.expires_at,
        session.expires_at
    );

    // An unknown token.
    let r4 = replacement(at + Duration::hours(1));
    assert_eq!(rotate(store, &random_hash(), always(at), &r4).await, None);
    assert!(!is_stored(store, &r4.token_hash).await);
}

/// A replacement expiry finer than a microsecond is stored in whole microseconds (towards the
/// past), and `rotated` reports the stored value, not the one passed in.
pub async fn rotate_refresh_token_reports_the_stored_expiry(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let (_, t1) = login(store, alice.id).await;
    let at = now() + us(3);
    let stored = at + Duration::hours(1);
    let fine = replacement(stored + Duration::nanoseconds(999));
    let outcome = rotate(store, &t1.token_hash, always(at), &fine)
        .await
        .expect("found");
    assert_eq!(outcome.rotated, Some(stored));
    assert_eq!(
        token_record(store, &fine.token_hash).await.expires_at,
        stored
    );
}

/// Rotates `token` under `rotate_if` and expects a refusal that changed nothing: the record as
/// it was, no rotation, the token as it was, no replacement stored.
async fn assert_refused(store: &dyn Store, token: &TokenHash, rotate_if: RotateIf, why: &str) {
    let before = token_record(store, token).await;
    let next = replacement(rotate_if.now + Duration::hours(1));
    assert_eq!(
        rotate(store, token, rotate_if, &next).await,
        Some(RotateOutcome {
            record: before.clone(),
            rotated: None,
        }),
        "{why}"
    );
    assert_eq!(token_record(store, token).await, before, "{why}");
    assert!(!is_stored(store, &next.token_hash).await, "{why}");
}

/// Each condition of a rotation alone stops it and changes nothing: the token expired (at
/// exactly `now` too), the session expired (likewise) or revoked, the user disabled, the
/// `admin` audience for a non-admin, a token younger than `created_at_most`. At the
/// boundaries that still allow it (an admin for `admin_only`, `created_at_most` equal to the
/// token's creation) it rotates.
pub async fn rotate_refresh_token_conditions(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let at = now();
    let hour = Duration::hours(1);
    let day = Duration::days(1);

    let (s, mut t) = new_login(alice.id, at - hour, at + day);
    t.expires_at = at;
    store.create_session(s, t.clone()).await.expect("create");
    assert_refused(store, &t.token_hash, always(at), "token expires now").await;

    let (s, mut t) = new_login(alice.id, at - day, at - hour);
    t.expires_at = at + day;
    store.create_session(s, t.clone()).await.expect("create");
    assert_refused(store, &t.token_hash, always(at), "session expired").await;

    let (s, mut t) = new_login(alice.id, at - day, at);
    t.expires_at = at + day;
    store.create_session(s, t.clone()).await.expect("create");
    assert_refused(store, &t.token_hash, always(at), "session expires now").await;

    let (s, t) = login(store, alice.id).await;
    assert!(store
        .revoke_session(s.id, None, at, Effects::none())
        .await
        .expect("revoke"));
    assert_refused(store, &t.token_hash, always(at), "session revoked").await;

    // Disabling revokes sessions; this one starts after, so only the user is disabled.
    let bob = create_user(store, "bob").await;
    store
        .set_disabled(bob.id, true, at, Effects::none())
        .await
        .expect("disable");
    let (_, t) = login(store, bob.id).await;
    assert_refused(store, &t.token_hash, always(at), "user disabled").await;

    let admin_only = RotateIf {
        admin_only: true,
        ..always(at)
    };
    let (_, t) = login(store, alice.id).await;
    assert_refused(store, &t.token_hash, admin_only, "admin audience, no admin").await;
    store
        .set_admin_by_email(&alice.email, true, at, Effects::none())
        .await
        .expect("grant");
    let next = replacement(at + hour);
    let outcome = rotate(store, &t.token_hash, admin_only, &next).await;
    assert!(
        outcome.is_some_and(|o| o.rotated.is_some()),
        "admin rotates"
    );

    let (_, t) = login(store, alice.id).await;
    let too_young = RotateIf {
        created_at_most: Some(t.created_at - us(1)),
        ..always(at)
    };
    assert_refused(store, &t.token_hash, too_young, "token too young").await;
    let old_enough = RotateIf {
        created_at_most: Some(t.created_at),
        ..always(at)
    };
    let outcome = rotate(store, &t.token_hash, old_enough, &replacement(at + hour)).await;
    assert!(outcome.is_some_and(|o| o.rotated.is_some()), "old enough");
}

/// A replacement that cannot be stored (its hash is taken) fails the whole call: the old token
/// stays unconsumed and rotates afterwards.
pub async fn rotate_refresh_token_replacement_conflict(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let (_, t1) = login(store, alice.id).await;
    let (_, other) = login(store, alice.id).await;

    let mut clash = replacement(now() + Duration::days(1));
    clash.token_hash = other.token_hash;
    match store
        .rotate_refresh_token(&t1.token_hash, always(now()), clash)
        .await
    {
        Err(StoreError::Conflict(UniqueKey::Other)) => {}
        other => panic!("expected Conflict(Other), got {other:?}"),
    }
    assert_eq!(token_record(store, &t1.token_hash).await.consumed_at, None);

    let good = rotate_ok(store, &t1.token_hash, now()).await;
    assert!(is_stored(store, &good).await);
}

/// `create_session` with a cap of 3, five times: the two oldest live sessions are revoked (at
/// the newest session's `created_at`) and their refresh tokens refused; sessions that were
/// already revoked or expired do not count, and other users are untouched.
pub async fn create_session_caps_live_sessions_per_user(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let bob = create_user(store, "bob").await;
    let expires = now() + Duration::days(1);
    let (bobs, _) = login_at(store, bob.id, now() - Duration::hours(9), expires).await;
    // Dead already: neither counts towards the cap nor changes.
    let (_, expired_token) = login_at(
        store,
        alice.id,
        now() - Duration::hours(8),
        now() - Duration::hours(6),
    )
    .await;
    let (revoked, revoked_token) =
        login_at(store, alice.id, now() - Duration::hours(7), expires).await;
    assert!(store
        .revoke_session(
            revoked.id,
            None,
            now() - Duration::hours(7),
            Effects::none()
        )
        .await
        .expect("revoke"));
    let mut made = Vec::new();
    for i in 0..5i64 {
        let at = now() - Duration::hours(5 - i) + us(i);
        let (mut session, token) = new_login(alice.id, at, expires);
        session.max_live_per_user = 3;
        store
            .create_session(session.clone(), token.clone())
            .await
            .expect("create session");
        made.push((session, token));
    }
    let live: Vec<Uuid> = store
        .list_live_sessions(alice.id, now())
        .await
        .expect("list")
        .iter()
        .map(|s| s.id)
        .collect();
    let newest_three: Vec<Uuid> = made.iter().rev().take(3).map(|(s, _)| s.id).collect();
    assert_eq!(live, newest_three, "the three newest stay live");
    for (i, (session, token)) in made.iter().enumerate() {
        let record = token_record(store, &token.token_hash).await;
        if i < 2 {
            // Revoked by the insert that pushed it past the cap: the third and fourth.
            let by = &made[i + 3].0;
            assert_eq!(
                record.session.revoked_at,
                Some(by.created_at),
                "session {i}"
            );
            let refused = store
                .rotate_refresh_token(&token.token_hash, always(now()), replacement(expires))
                .await
                .expect("rotate")
                .expect("the token is still known");
            assert_eq!(
                refused.rotated, None,
                "a revoked session's token is refused"
            );
        } else {
            assert_eq!(
                record.session.revoked_at, None,
                "session {i} ({})",
                session.id
            );
        }
    }
    assert_eq!(
        token_record(store, &revoked_token.token_hash)
            .await
            .session
            .revoked_at,
        Some(now() - Duration::hours(7)),
        "the session that was already revoked keeps its first revocation"
    );
    assert_eq!(
        token_record(store, &expired_token.token_hash)
            .await
            .session
            .revoked_at,
        None,
        "an expired session is not revoked"
    );
    assert_eq!(
        store
            .list_live_sessions(bob.id, now())
            .await
            .expect("list")
            .iter()
            .map(|s| s.id)
            .collect::<Vec<_>>(),
        vec![bobs.id],
        "another user's session is untouched"
    );
}

/// Eight concurrent `create_session`s for one user with a cap of 3 leave exactly three live.
pub async fn create_session_cap_holds_under_concurrency(store: Arc<dyn Store>) {
    let alice = create_user(&*store, "alice").await;
    let expires = now() + Duration::days(1);
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            let at = now() - Duration::hours(1) + us(i64::try_from(i).unwrap_or(0));
            tokio::spawn(async move {
                let (mut session, token) = new_login(alice.id, at, expires);
                session.max_live_per_user = 3;
                barrier.wait().await;
                store.create_session(session, token).await
            })
        })
        .collect();
    for task in tasks {
        task.await
            .expect("task did not panic")
            .expect("create session");
    }
    let live = store
        .list_live_sessions(alice.id, now())
        .await
        .expect("list");
    assert_eq!(live.len(), 3, "{live:?}");
}

/// [`RACERS`] concurrent rotations of one token, over several rounds: in each exactly one
/// rotates, the rest find the token unconsumed or consumed but rotate nothing, none errors,
/// and only the winner's replacement is stored.
pub async fn rotate_refresh_token_race(store: Arc<dyn Store>) {
    let alice = create_user(&*store, "alice").await;
    let (_, first) = login(&*store, alice.id).await;
    let mut hash = first.token_hash;

    for round in 0..3i64 {
        let at = now() + Duration::seconds(round);
        let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
        let replacements: Vec<Replacement> = (0..RACERS)
            .map(|_| replacement(at + Duration::days(1)))
            .collect();
        let tasks: Vec<_> = replacements
            .iter()
            .cloned()
            .map(|replacement| {
                let store = Arc::clone(&store);
                let barrier = Arc::clone(&barrier);
                tokio::spawn(async move {
                    barrier.wait().await;
                    store
                        .rotate_refresh_token(&hash, always(at), replacement)
                        .await
                })
            })
            .collect();

        let mut rotated = Vec::with_capacity(RACERS);
        for task in tasks {
            let outcome = task
                .await
                .expect("task did not panic")
                .unwrap_or_else(|e| panic!("round {round}: a racer failed: {e:?}"))
                .unwrap_or_else(|| panic!("round {round}: the token was not found"));
            rotated.push(outcome.rotated.is_some());
        }
        let winners: Vec<usize> = (0..RACERS).filter(|&i| rotated[i]).collect();
        assert_eq!(winners.len(), 1, "round {round}: rotated {rotated:?}");

        let mut stored = BTreeSet::new();
        for (i, replacement) in replacements.iter().enumerate() {
            if is_stored(&*store, &replacement.token_hash).await {
                stored.insert(i);
            }
        }
        assert_eq!(stored, winners.iter().copied().collect::<BTreeSet<_>>());
        assert_eq!(
            token_record(&*store, &hash).await.consumed_at,
            Some(at),
            "round {round}"
        );
        hash = replacements[winners[0]].token_hash;
    }
}

/// `purge_expired` deletes sessions and refresh tokens whose `expires_at <= now`, counting
/// each: `refresh_tokens` counts expired tokens (an expired session's unexpired tokens go by
/// cascade, uncounted). Revoked but unexpired sessions stay. Purging again deletes nothing.
pub async fn purge_expired_counts(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let hour = Duration::hours(1);
    let day = Duration::days(1);
    let start = now() - day;

    // Expired session with an expired token: one session, one token.
    let (_s1, t1) = login_at(store, alice.id, start, now() - hour).await;
    // Session expiring exactly now, whose token would outlive it: one session, token by cascade.
    let (s2, mut t2) = new_login(alice.id, start, now());
    t2.expires_at = now() + hour;
    store.create_session(s2, t2.clone()).await.expect("create");
    // Live session: its first token expired exactly now (and was consumed), its replacement is
    // live: one token.
    let (s3, t3a) = new_login(alice.id, start, now() + day);
    let t3a = NewRefreshToken {
        expires_at: now(),
        ..t3a
    };
    store
        .create_session(s3.clone(), t3a.clone())
        .await
        .expect("create");
    let t3b = rotate_ok(store, &t3a.token_hash, start + hour).await;
    // Live session with a live token: untouched.
    let (_s4, t4) = login(store, alice.id).await;
    // Revoked but unexpired: untouched.
    let (s5, t5) = login(store, alice.id).await;
    assert!(store
        .revoke_session(s5.id, None, now(), Effects::none())
        .await
        .expect("revoke"));

    assert_eq!(
        store.purge_expired(now()).await.expect("purge"),
        PurgeCounts {
            sessions: 2,
            refresh_tokens: 2,
        }
    );
    for gone in [&t1.token_hash, &t2.token_hash, &t3a.token_hash] {
        assert_eq!(store.find_refresh_token(gone).await.expect("find"), None);
    }
    for kept in [&t3b, &t4.token_hash, &t5.token_hash] {
        assert!(store
            .find_refresh_token(kept)
            .await
            .expect("find")
            .is_some());
    }
    assert_eq!(
        store.purge_expired(now()).await.expect("purge"),
        PurgeCounts::default()
    );
}

/// A backend with a change feed reports, after `Resumed`, every session revocation and user
/// change, whoever made it; one without says `Unsupported`.
pub async fn watch_changes_reports_revocations_and_user_changes(store: &dyn Store) {
    let mut rx = match store.watch_changes().await.expect("watch") {
        ChangeFeed::Unsupported => return,
        ChangeFeed::Channel(rx) => rx,
    };
    assert_eq!(next_change(&mut rx).await, Change::Resumed);
    let alice = create_user(store, "alice").await;
    let (session, _) = login(store, alice.id).await;
    assert!(store
        .revoke_session(session.id, None, now(), Effects::none())
        .await
        .expect("revoke"));
    assert_eq!(next_change(&mut rx).await, Change::Session(session.id));
    store
        .set_disabled(alice.id, true, now(), Effects::none())
        .await
        .expect("disable");
    assert_eq!(next_change(&mut rx).await, Change::User(alice.id));
    store
        .set_username(alice.id, "alice-renamed", now(), Effects::none())
        .await
        .expect("rename");
    assert_eq!(next_change(&mut rx).await, Change::User(alice.id));
    store
        .delete_user(alice.id, Effects::none())
        .await
        .expect("delete");
    assert_eq!(next_change(&mut rx).await, Change::User(alice.id));
}

/// Disabling a user reports the user and each session it revokes (in any order), and nothing
/// for a session that was already revoked.
pub async fn watch_changes_reports_what_disabling_revokes(store: &dyn Store) {
    let mut rx = match store.watch_changes().await.expect("watch") {
        ChangeFeed::Unsupported => return,
        ChangeFeed::Channel(rx) => rx,
    };
    assert_eq!(next_change(&mut rx).await, Change::Resumed);
    let alice = create_user(store, "alice").await;
    let (s1, _) = login(store, alice.id).await;
    let (s2, _) = login(store, alice.id).await;
    let (s3, _) = login(store, alice.id).await;
    assert!(store
        .revoke_session(s3.id, None, now(), Effects::none())
        .await
        .expect("revoke"));
    assert_eq!(next_change(&mut rx).await, Change::Session(s3.id));
    store
        .set_disabled(alice.id, true, now() + us(1), Effects::none())
        .await
        .expect("disable");
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(next_change(&mut rx).await);
    }
    got.sort_by_key(|c| format!("{c:?}"));
    let mut want = vec![
        Change::Session(s1.id),
        Change::Session(s2.id),
        Change::User(alice.id),
    ];
    want.sort_by_key(|c| format!("{c:?}"));
    assert_eq!(got, want);
    // Nothing else follows: a marker change arrives next.
    store
        .delete_user(alice.id, Effects::none())
        .await
        .expect("delete");
    assert_eq!(next_change(&mut rx).await, Change::User(alice.id));
}

async fn next_change(rx: &mut tokio::sync::mpsc::Receiver<Change>) -> Change {
    tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
        .await
        .expect("a change within 5 s")
        .expect("feed open")
}

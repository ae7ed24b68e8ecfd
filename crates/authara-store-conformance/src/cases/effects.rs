//! Effects: the outbox events and audit rows a write carries are committed in the same
//! transaction as its change, and not at all when the change does not happen.

use authara_core::audit::AuditAction;
use authara_core::events::{EventStatus, EventType, NewEvent};
use authara_core::store::{
    Effects, EventRecord, NewRefreshToken, NewSession, SessionsToRevoke, Store, StoreError,
    UniqueKey,
};
use time::Duration;
use uuid::Uuid;

use super::fixtures::{
    all_audit, all_events, audit_at, audit_record_of, event_at, new_user, now, us,
};

/// One event and one audit row about `user_id`.
fn one_of_each(user_id: Uuid) -> (NewEvent, Effects) {
    let event = event_at(user_id, now());
    let audit = audit_at(
        AuditAction::UserDisabled,
        None,
        Some(user_id),
        Some("x@example.com"),
        now(),
    );
    let effects = Effects::none().event(event.clone()).audit(audit);
    (event, effects)
}

/// Asserts the outbox and the audit log hold exactly `events` and `audit` rows.
async fn assert_counts(store: &dyn Store, events: usize, audit: usize, after: &str) {
    assert_eq!(
        all_events(store).await.len(),
        events,
        "outbox rows after {after}"
    );
    assert_eq!(
        all_audit(store).await.len(),
        audit,
        "audit rows after {after}"
    );
}

/// A session live at `now()` for `user_id`.
async fn login(store: &dyn Store, user_id: Uuid) -> Uuid {
    let created_at = now() - Duration::hours(1);
    let session = NewSession {
        id: Uuid::new_v4(),
        user_id,
        user_agent: "conformance".to_owned(),
        client_ip: "192.0.2.7".to_owned(),
        created_at,
        expires_at: now() + Duration::days(1),
        max_live_per_user: 1000,
        organization_id: None,
    };
    let mut token_hash = [0u8; 32];
    token_hash[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    token_hash[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    let token = NewRefreshToken {
        id: Uuid::new_v4(),
        session_id: session.id,
        token_hash,
        created_at,
        expires_at: now() + Duration::days(1),
    };
    let id = session.id;
    store
        .create_session(session, token)
        .await
        .expect("create session");
    id
}

/// `create_user` with effects inserts them: the event pending, never attempted, due at its
/// creation, with the envelope stored byte for byte; the audit row as given.
pub async fn effects_commit_with_create_user(store: &dyn Store) {
    let user = new_user("alice");
    let event = NewEvent::user(
        Uuid::new_v4(),
        EventType::UserCreated,
        user.id,
        now() + us(5),
    );
    let audit = audit_at(
        AuditAction::PasswordChanged,
        Some(user.id),
        Some(user.id),
        Some(&user.email),
        now() + us(6),
    );
    store
        .create_user(
            user.clone(),
            Effects::none().event(event.clone()).audit(audit.clone()),
        )
        .await
        .expect("create user");
    assert!(store.find_user_by_id(user.id).await.unwrap().is_some());
    assert_eq!(
        all_events(store).await,
        vec![EventRecord {
            id: event.id,
            event_type: "user.created".to_owned(),
            payload: event.payload.clone(),
            status: EventStatus::Pending,
            attempt_count: 0,
            next_attempt_at: event.created_at,
            processing_started_at: None,
            last_error: None,
            delivered_at: None,
            created_at: event.created_at,
        }]
    );
    assert_eq!(all_audit(store).await, vec![audit_record_of(&audit)]);
}

/// Several events and audit rows in one write are all inserted.
pub async fn effects_commit_several_at_once(store: &dyn Store) {
    let user = new_user("alice");
    let events: Vec<NewEvent> = (0..3).map(|i| event_at(user.id, now() + us(i))).collect();
    let audit: Vec<_> = (0..2)
        .map(|i| {
            audit_at(
                AuditAction::UserEnabled,
                None,
                Some(user.id),
                None,
                now() + us(i),
            )
        })
        .collect();
    let effects = Effects {
        events: events.clone(),
        audit: audit.clone(),
    };
    store.create_user(user, effects).await.expect("create user");
    let stored: Vec<Uuid> = all_events(store).await.iter().map(|e| e.id).collect();
    assert_eq!(stored, events.iter().map(|e| e.id).collect::<Vec<_>>());
    let mut stored: Vec<Uuid> = all_audit(store).await.iter().map(|a| a.id).collect();
    stored.sort();
    let mut expected: Vec<Uuid> = audit.iter().map(|a| a.id).collect();
    expected.sort();
    assert_eq!(stored, expected);
}

/// A write that fails on a unique key (`create_user`, `set_username`) inserts none of its
/// effects.
pub async fn effects_absent_when_the_write_conflicts(store: &dyn Store) {
    let alice = new_user("alice");
    store
        .create_user(alice.clone(), Effects::none())
        .await
        .unwrap();
    let bob = new_user("bob");
    store
        .create_user(bob.clone(), Effects::none())
        .await
        .unwrap();

    let mut same_email = new_user("alice2");
    same_email.email = alice.email.clone();
    let result = store.create_user(same_email, one_of_each(alice.id).1).await;
    assert!(
        matches!(result, Err(StoreError::Conflict(UniqueKey::Email))),
        "{result:?}"
    );
    let result = store
        .set_username(bob.id, &alice.username, now(), one_of_each(bob.id).1)
        .await;
    assert!(
        matches!(result, Err(StoreError::Conflict(UniqueKey::Username))),
        "{result:?}"
    );
    assert_counts(store, 0, 0, "conflicting writes").await;
}

/// Every user write aimed at an unknown user fails `NotFound` and inserts none of its effects.
pub async fn effects_absent_when_the_user_is_not_found(store: &dyn Store) {
    let ghost = Uuid::new_v4();
    let not_found = |what: &str, result: Result<(), StoreError>| {
        assert!(
            matches!(result, Err(StoreError::NotFound)),
            "{what}: {result:?}"
        );
    };
    not_found(
        "set_password_hash",
        store
            .set_password_hash(
                ghost,
                "$argon2id$x",
                SessionsToRevoke::All,
                now(),
                one_of_each(ghost).1,
            )
            .await
            .map(|_| ()),
    );
    not_found(
        "set_username",
        store
            .set_username(ghost, "ghost", now(), one_of_each(ghost).1)
            .await,
    );
    not_found(
        "set_admin_by_email",
        store
            .set_admin_by_email("ghost@example.com", true, now(), one_of_each(ghost).1)
            .await,
    );
    not_found(
        "set_disabled(true)",
        store
            .set_disabled(ghost, true, now(), one_of_each(ghost).1)
            .await,
    );
    not_found(
        "set_disabled(false)",
        store
            .set_disabled(ghost, false, now(), one_of_each(ghost).1)
            .await,
    );
    not_found(
        "delete_user",
        store.delete_user(ghost, one_of_each(ghost).1).await,
    );
    assert_counts(store, 0, 0, "writes to an unknown user").await;
}

/// Asserts `result` succeeded and that the outbox and the audit log now also hold `event` and
/// one more audit row.
async fn checked(
    store: &dyn Store,
    expected: &mut Vec<Uuid>,
    name: &str,
    result: Result<(), StoreError>,
    event: NewEvent,
) {
    result.unwrap_or_else(|e| panic!("{name}: {e:?}"));
    expected.push(event.id);
    let mut stored: Vec<Uuid> = all_events(store).await.iter().map(|e| e.id).collect();
    stored.sort();
    let mut sorted = expected.clone();
    sorted.sort();
    assert_eq!(stored, sorted, "outbox after {name}");
    assert_eq!(
        all_audit(store).await.len(),
        expected.len(),
        "audit after {name}"
    );
}

/// Every user write that changes a user inserts its effects, one write at a time.
pub async fn effects_commit_with_every_user_write(store: &dyn Store) {
    let alice = new_user("alice");
    store
        .create_user(alice.clone(), Effects::none())
        .await
        .unwrap();
    let id = alice.id;
    let mut expected = Vec::new();
    let (event, effects) = one_of_each(id);
    let result = store
        .set_password_hash(id, "$argon2id$new", SessionsToRevoke::None, now(), effects)
        .await
        .map(|_| ());
    checked(store, &mut expected, "set_password_hash", result, event).await;
    let (event, effects) = one_of_each(id);
    let result = store
        .set_username(id, "alice_renamed", now(), effects)
        .await;
    checked(store, &mut expected, "set_username", result, event).await;
    let (event, effects) = one_of_each(id);
    let result = store
        .set_admin_by_email(&alice.email, true, now(), effects)
        .await;
    checked(store, &mut expected, "set_admin_by_email", result, event).await;
    let (event, effects) = one_of_each(id);
    let result = store.set_disabled(id, true, now(), effects).await;
    checked(store, &mut expected, "set_disabled(true)", result, event).await;
    let (event, effects) = one_of_each(id);
    let result = store.set_disabled(id, false, now(), effects).await;
    checked(store, &mut expected, "set_disabled(false)", result, event).await;
    let (event, effects) = one_of_each(id);
    let result = store.delete_user(id, effects).await;
    checked(store, &mut expected, "delete_user", result, event).await;

    // The rows outlive the user they name.
    assert!(store.find_user_by_id(id).await.unwrap().is_none());
    assert_eq!(all_events(store).await.len(), 6);
    assert_eq!(all_audit(store).await.len(), 6);
}

/// `revoke_session` inserts its effects exactly when it returns `true` (also for a session
/// already revoked, which it reports as `true`), and none when it returns `false` (unknown
/// session, another owner).
pub async fn effects_follow_revoke_session_result(store: &dyn Store) {
    let alice = new_user("alice");
    store
        .create_user(alice.clone(), Effects::none())
        .await
        .unwrap();
    let session = login(store, alice.id).await;

    let (_, effects) = one_of_each(alice.id);
    assert!(!store
        .revoke_session(Uuid::new_v4(), None, now(), effects)
        .await
        .unwrap());
    let (_, effects) = one_of_each(alice.id);
    assert!(!store
        .revoke_session(session, Some(Uuid::new_v4()), now(), effects)
        .await
        .unwrap());
    assert_counts(store, 0, 0, "revocations that returned false").await;

    let (event, effects) = one_of_each(alice.id);
    assert!(store
        .revoke_session(session, Some(alice.id), now(), effects)
        .await
        .unwrap());
    let events = all_events(store).await;
    assert_eq!(
        events.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![event.id]
    );
    assert_counts(store, 1, 1, "a revocation").await;
}

/// A write whose effects cannot be stored (here: two events with one id) fails and changes
/// nothing: the change and its effects are one transaction.
pub async fn effects_that_fail_roll_the_change_back(store: &dyn Store) {
    let alice = new_user("alice");
    let event = event_at(alice.id, now());
    let twice = Effects::none().event(event.clone()).event(event.clone());
    assert!(store
        .create_user(alice.clone(), twice.clone())
        .await
        .is_err());
    assert!(store.find_user_by_id(alice.id).await.unwrap().is_none());
    assert_counts(store, 0, 0, "a failed create_user").await;

    store
        .create_user(alice.clone(), Effects::none())
        .await
        .unwrap();
    let session = login(store, alice.id).await;
    assert!(store
        .set_disabled(alice.id, true, now(), twice.clone())
        .await
        .is_err());
    let user = store.find_user_by_id(alice.id).await.unwrap().unwrap();
    assert!(!user.disabled, "the user must stay enabled");
    assert!(store
        .find_live_session_user(session, alice.id, now())
        .await
        .unwrap()
        .is_some());
    assert!(store
        .revoke_session(session, None, now(), twice.clone())
        .await
        .is_err());
    assert!(
        store
            .find_live_session_user(session, alice.id, now())
            .await
            .unwrap()
            .is_some(),
        "the session must stay live"
    );
    assert!(store.delete_user(alice.id, twice).await.is_err());
    assert!(store.find_user_by_id(alice.id).await.unwrap().is_some());
    assert_counts(store, 0, 0, "failed writes").await;
}

//! Helpers of the outbox, audit and effects cases: events and audit rows are appended only
//! through the writes that cause them, so these build [`Effects`] and make writes carry them.

use authara_core::audit::{AuditAction, AuditRecord, NewAuditEntry, RequestContext};
use authara_core::events::{EventType, NewEvent};
use authara_core::store::{AuditFilter, Effects, EventRecord, NewUser, Store};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// The tests' "now": a fixed instant with a non-zero microsecond part.
pub(super) fn now() -> OffsetDateTime {
    datetime!(2030-03-04 05:06:07.123456 UTC)
}

/// `n` microseconds.
pub(super) fn us(n: i64) -> Duration {
    Duration::microseconds(n)
}

/// A user to insert, with a unique email and username.
pub(super) fn new_user(name: &str) -> NewUser {
    NewUser {
        id: Uuid::new_v4(),
        email: format!("{name}@example.com"),
        username: name.to_owned(),
        password_hash: Some(format!(
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$hash-of-{name}"
        )),
        created_at: now() - Duration::days(10) + us(1),
    }
}

/// A `user.updated` event about `user_id`, created at `at`.
pub(super) fn event_at(user_id: Uuid, at: OffsetDateTime) -> NewEvent {
    NewEvent::user(Uuid::new_v4(), EventType::UserUpdated, user_id, at)
}

/// An audit row: `action` by `actor` on `target` (with `email`), at `at`, with metadata and
/// request context that must round-trip.
pub(super) fn audit_at(
    action: AuditAction,
    actor: Option<Uuid>,
    target: Option<Uuid>,
    email: Option<&str>,
    at: OffsetDateTime,
) -> NewAuditEntry {
    NewAuditEntry {
        id: Uuid::new_v4(),
        created_at: at,
        action,
        actor_user_id: actor,
        target_user_id: target,
        target_email: email.map(str::to_owned),
        metadata: serde_json::json!({ "reason": "conformance", "count": 2, "nested": { "ok": true } }),
        context: RequestContext {
            ip: Some("192.0.2.9".to_owned()),
            user_agent: Some("conformance/1.0".to_owned()),
            request_id: Some(Uuid::new_v4().to_string()),
        },
    }
}

/// The record `entry` should read back as.
pub(super) fn audit_record_of(entry: &NewAuditEntry) -> AuditRecord {
    AuditRecord {
        id: entry.id,
        created_at: entry.created_at,
        action: entry.action.as_str().to_owned(),
        actor_user_id: entry.actor_user_id,
        target_user_id: entry.target_user_id,
        target_email: entry.target_email.clone(),
        metadata: entry.metadata.clone(),
        context: entry.context.clone(),
    }
}

/// Commits `effects` with a write that always succeeds: creating a fresh user.
pub(super) async fn commit(store: &dyn Store, effects: Effects) {
    let user = new_user(&format!("u{}", Uuid::new_v4().simple()));
    store
        .create_user(user, effects)
        .await
        .expect("create a user carrying effects");
}

/// Appends one pending event per instant in `at`, each with a write of its own; returns them
/// in the order given.
pub(super) async fn append_events(store: &dyn Store, at: &[OffsetDateTime]) -> Vec<NewEvent> {
    let mut events = Vec::with_capacity(at.len());
    for &at in at {
        let event = event_at(Uuid::new_v4(), at);
        commit(store, Effects::none().event(event.clone())).await;
        events.push(event);
    }
    events
}

/// Every outbox row, oldest first.
pub(super) async fn all_events(store: &dyn Store) -> Vec<EventRecord> {
    store.list_events(10_000).await.expect("list events")
}

/// The outbox row with this id.
pub(super) async fn event_row(store: &dyn Store, id: Uuid) -> EventRecord {
    all_events(store)
        .await
        .into_iter()
        .find(|e| e.id == id)
        .unwrap_or_else(|| panic!("outbox row {id} exists"))
}

/// Every audit row, newest first.
pub(super) async fn all_audit(store: &dyn Store) -> Vec<AuditRecord> {
    store
        .list_audit(&AuditFilter {
            limit: 10_000,
            ..AuditFilter::default()
        })
        .await
        .expect("list audit")
}

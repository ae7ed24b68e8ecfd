//! The schema: migrations and reachability.

use authara_core::store::{SchemaState, Store};

use super::fixtures::{create_user, record_of, user_record};

/// A fresh database is `Behind` every embedded migration; after `migrate` it is `UpToDate`.
pub async fn schema_state_behind_then_up_to_date(store: &dyn Store) {
    match store.schema_state().await.expect("schema state") {
        SchemaState::Behind { pending } => assert!(pending >= 1),
        other => panic!("a fresh database should be Behind, got {other:?}"),
    }
    store.migrate().await.expect("migrate");
    assert_eq!(
        store.schema_state().await.expect("schema state"),
        SchemaState::UpToDate
    );
}

/// Migrating an up-to-date database changes nothing and loses no data.
pub async fn migrate_twice_is_idempotent(store: &dyn Store) {
    store.migrate().await.expect("first migrate");
    let alice = create_user(store, "alice").await;
    store.migrate().await.expect("second migrate");
    assert_eq!(
        store.schema_state().await.expect("schema state"),
        SchemaState::UpToDate
    );
    assert_eq!(user_record(store, alice.id).await, record_of(&alice));
}

/// `ping` succeeds on a working database.
pub async fn ping_answers(store: &dyn Store) {
    store.ping().await.expect("ping");
}

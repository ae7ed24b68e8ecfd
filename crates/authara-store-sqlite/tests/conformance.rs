//! The shared Store conformance suite against SQLite: a fresh WAL database file in a temp
//! directory per test (never `:memory:`, so the writer/reader pool split is exercised).

#![allow(
    clippy::expect_used,
    reason = "test setup: a broken fixture must fail the test"
)]

use std::sync::Arc;

use authara_store_conformance::{conformance_tests, TestStore};
use authara_store_sqlite::SqliteStore;

async fn fresh_sqlite() -> TestStore {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("authara.db").display());
    let store = SqliteStore::connect(&url).await.expect("open sqlite");
    let closer = store.clone();
    TestStore::new(Arc::new(store))
        .with_close(move || async move { closer.close().await })
        // The directory (database, -wal, -shm) goes last, after the pools are closed.
        .with_teardown(move || drop(dir))
}

conformance_tests!(fresh_sqlite);

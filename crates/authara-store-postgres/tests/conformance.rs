//! The shared Store conformance suite against PostgreSQL, when `AUTHARA_TEST_POSTGRES_URL`
//! names a server (e.g. `postgres://postgres@127.0.0.1:5432/postgres`); otherwise every test
//! says so on stderr and passes. Each test gets a schema of its own, `t_<random hex>`,
//! dropped afterwards (also when the test fails).

#![allow(
    clippy::expect_used,
    reason = "test setup: a broken fixture must fail the test"
)]

use std::sync::Arc;

use authara_store_conformance::{conformance_tests, TestStore};
use authara_store_postgres::PgStore;
use sqlx::{Connection, Executor, PgConnection};

const URL_VAR: &str = "AUTHARA_TEST_POSTGRES_URL";

async fn fresh_postgres() -> Option<TestStore> {
    let url = match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => {
            eprintln!("skipped: {URL_VAR} not set (PostgreSQL conformance)");
            return None;
        }
    };
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let store = PgStore::connect_url(&url, Some(&schema), 10)
        .await
        .expect("connect to AUTHARA_TEST_POSTGRES_URL");
    let closer = store.clone();
    Some(
        TestStore::new(Arc::new(store))
            .with_close(move || async move { closer.close().await })
            .with_teardown(move || drop_schema(url, schema)),
    )
}

/// Drops the test's schema over a connection of its own, on a thread with a runtime of its
/// own: this runs in `Drop`, inside the test's runtime, possibly while a panic unwinds.
fn drop_schema(url: String, schema: String) {
    let dropped = std::thread::spawn(move || -> Result<(), String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let mut conn = PgConnection::connect(&url)
                .await
                .map_err(|e| e.to_string())?;
            conn.execute(format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE").as_str())
                .await
                .map_err(|e| format!("dropping schema {schema}: {e}"))?;
            conn.close().await.map_err(|e| e.to_string())
        })
    })
    .join();
    match dropped {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("warning: test schema cleanup failed: {e}"),
        Err(_) => eprintln!("warning: test schema cleanup panicked"),
    }
}

conformance_tests!(fresh_postgres);

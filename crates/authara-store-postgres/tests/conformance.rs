//! The shared Store conformance suite against PostgreSQL, when `AUTHARA_TEST_POSTGRES_URL`
//! names a server (e.g. `postgres://postgres@127.0.0.1:5432/postgres`); otherwise every test
//! says so on stderr and passes. Each test gets a schema of its own, `t_<random hex>`,
//! dropped afterwards (also when the test fails).

#![allow(
    clippy::expect_used,
    reason = "test setup: a broken fixture must fail the test"
)]

mod common;

use std::sync::Arc;

use authara_store_conformance::{conformance_tests, TestStore};
use authara_store_postgres::PgStore;

use common::{drop_schema, new_schema_name, postgres_url};

async fn fresh_postgres() -> Option<TestStore> {
    let url = postgres_url("PostgreSQL conformance")?;
    let schema = new_schema_name();
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

conformance_tests!(fresh_postgres);

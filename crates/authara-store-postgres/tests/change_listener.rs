//! The change listener's connection is not one of the store's: a store with a pool of one
//! connection still answers queries while it watches changes, and closing the store ends the
//! feed. Needs `AUTHARA_TEST_POSTGRES_URL` (else skipped, said on stderr); the test's schema is
//! dropped afterwards.

#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "test: a broken fixture or a wrong answer must fail the test"
)]

mod common;

use std::time::Duration;

use authara_core::store::{Change, ChangeFeed, NewUser, Store};
use authara_store_postgres::PgStore;
use time::macros::datetime;
use tokio::time::timeout;
use uuid::Uuid;

use common::{drop_schema, new_schema_name, postgres_url};

/// Drops the schema when the test ends, also when it fails.
struct DropSchema {
    url: String,
    schema: String,
}

impl Drop for DropSchema {
    fn drop(&mut self) {
        drop_schema(self.url.clone(), self.schema.clone());
    }
}

/// Well under the store's 10 s acquire timeout: a query waiting for a connection the
/// listener holds would time out here first.
const PROMPTLY: Duration = Duration::from_secs(5);

async fn next_change(rx: &mut tokio::sync::mpsc::Receiver<Change>) -> Option<Change> {
    timeout(PROMPTLY, rx.recv())
        .await
        .expect("the feed answers within 5 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_of_one_answers_queries_while_watching_changes() {
    let Some(url) = postgres_url("PostgreSQL change listener") else {
        return;
    };
    let schema = new_schema_name();
    let _cleanup = DropSchema {
        url: url.clone(),
        schema: schema.clone(),
    };
    let store = PgStore::connect_url(&url, Some(&schema), 1)
        .await
        .expect("connect to AUTHARA_TEST_POSTGRES_URL");
    store.migrate().await.expect("migrate");
    let mut rx = match store.watch_changes().await.expect("watch") {
        ChangeFeed::Channel(rx) => rx,
        ChangeFeed::Unsupported => panic!("PostgreSQL has a change feed"),
    };
    assert_eq!(next_change(&mut rx).await, Some(Change::Resumed));

    timeout(PROMPTLY, store.ping())
        .await
        .expect("a query while watching gets the pool's one connection")
        .expect("ping");

    let now = datetime!(2030-03-04 05:06:07.123456 UTC);
    let user = NewUser {
        id: Uuid::new_v4(),
        email: "listener@example.com".into(),
        username: "listener".into(),
        password_hash: None,
        created_at: now,
    };
    store.create_user(user.clone()).await.expect("create user");
    store
        .set_username(user.id, "renamed", now)
        .await
        .expect("rename");
    assert_eq!(next_change(&mut rx).await, Some(Change::User(user.id)));

    timeout(PROMPTLY, store.close())
        .await
        .expect("the store closes within 5 s");
    assert_eq!(next_change(&mut rx).await, None, "closing ends the feed");
}

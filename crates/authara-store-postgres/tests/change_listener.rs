//! The change listener's connection is not one of the store's: a store with a pool of one
//! connection still answers queries while it watches changes, and closing the store ends the
//! feed. A listening connection that breaks is reported (`Lost`, `Resumed`) and the feed goes
//! on. Needs `AUTHARA_TEST_POSTGRES_URL` (else skipped, said on stderr); the test's schema is
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
use sqlx::{Connection, PgConnection};
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

fn new_user(name: &str) -> NewUser {
    NewUser {
        id: Uuid::new_v4(),
        email: format!("{name}@example.com"),
        username: name.into(),
        password_hash: None,
        created_at: datetime!(2030-03-04 05:06:07.123456 UTC),
    }
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

    let user = new_user("listener");
    store.create_user(user.clone()).await.expect("create user");
    store
        .set_username(user.id, "renamed", user.created_at)
        .await
        .expect("rename");
    assert_eq!(next_change(&mut rx).await, Some(Change::User(user.id)));

    timeout(PROMPTLY, store.close())
        .await
        .expect("the store closes within 5 s");
    assert_eq!(next_change(&mut rx).await, None, "closing ends the feed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_listening_connection_is_reported_and_replaced() {
    let Some(url) = postgres_url("PostgreSQL change listener") else {
        return;
    };
    let schema = new_schema_name();
    let _cleanup = DropSchema {
        url: url.clone(),
        schema: schema.clone(),
    };
    // The store's connections, the listener's included, carry the schema's name, so that
    // this test finds its own listener among any others on the server.
    let separator = if url.contains('?') { '&' } else { '?' };
    let named = format!("{url}{separator}application_name={schema}");
    let store = PgStore::connect_url(&named, Some(&schema), 1)
        .await
        .expect("connect to AUTHARA_TEST_POSTGRES_URL");
    store.migrate().await.expect("migrate");
    let mut rx = match store.watch_changes().await.expect("watch") {
        ChangeFeed::Channel(rx) => rx,
        ChangeFeed::Unsupported => panic!("PostgreSQL has a change feed"),
    };
    assert_eq!(next_change(&mut rx).await, Some(Change::Resumed));

    let mut admin = PgConnection::connect(&url).await.expect("connect");
    let terminated: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = $1 AND query LIKE 'LISTEN%'",
    )
    .bind(&schema)
    .fetch_all(&mut admin)
    .await
    .expect("terminate the listening connection");
    assert_eq!(terminated, vec![true], "one listening connection");
    admin.close().await.expect("close");

    assert_eq!(next_change(&mut rx).await, Some(Change::Lost));
    assert_eq!(next_change(&mut rx).await, Some(Change::Resumed));
    let user = new_user("relistened");
    store.create_user(user.clone()).await.expect("create user");
    store.delete_user(user.id).await.expect("delete user");
    assert_eq!(next_change(&mut rx).await, Some(Change::User(user.id)));
    store.close().await;
}

//! The change listener's connection is not one of the store's: a store with a pool of one
//! connection still answers queries while it watches changes, and closing the store ends the
//! feed. A listening connection that breaks is reported (`Lost`, `Resumed`) and the feed goes
//! on, and so is one that goes silent (half-open: simulated by a proxy that stops forwarding
//! without closing), found by the feed's heartbeat. Sessions deleted by plain SQL are announced.
//! Needs `AUTHARA_TEST_POSTGRES_URL` (else skipped, said on stderr; fails under `CI=true`); the
//! test's schema is dropped afterwards.

#![allow(
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test: a broken fixture or a wrong answer must fail the test"
)]

mod common;

use std::time::Duration;

use std::str::FromStr as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use authara_core::org::OrgKind;
use authara_core::store::{
    Change, ChangeFeed, Effects, InitialOrganization, NewRefreshToken, NewSession, NewUser,
    SchemaStore as _, SessionStore as _, UserStore as _,
};
use authara_store_postgres::{Heartbeat, PgConnectOptions, PgStore};
use sqlx::{Connection, PgConnection};
use time::macros::datetime;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
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
        organization: InitialOrganization {
            id: Uuid::new_v4(),
            name: name.into(),
            kind: OrgKind::Personal,
        },
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
    store
        .create_user(user.clone(), Effects::none())
        .await
        .expect("create user");
    store
        .set_username(user.id, "renamed", user.created_at, Effects::none())
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
    store
        .create_user(user.clone(), Effects::none())
        .await
        .expect("create user");
    store
        .delete_user(user.id, Effects::none())
        .await
        .expect("delete user");
    assert_eq!(next_change(&mut rx).await, Some(Change::User(user.id)));
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_deleted_by_plain_sql_is_announced() {
    let Some(url) = postgres_url("PostgreSQL change listener") else {
        return;
    };
    let schema = new_schema_name();
    let _cleanup = DropSchema {
        url: url.clone(),
        schema: schema.clone(),
    };
    let store = PgStore::connect_url(&url, Some(&schema), 2)
        .await
        .expect("connect to AUTHARA_TEST_POSTGRES_URL");
    store.migrate().await.expect("migrate");
    let mut rx = match store.watch_changes().await.expect("watch") {
        ChangeFeed::Channel(rx) => rx,
        ChangeFeed::Unsupported => panic!("PostgreSQL has a change feed"),
    };
    assert_eq!(next_change(&mut rx).await, Some(Change::Resumed));
    let user = new_user("deleted");
    store
        .create_user(user.clone(), Effects::none())
        .await
        .expect("create user");
    let session = NewSession {
        id: Uuid::new_v4(),
        user_id: user.id,
        user_agent: "test".into(),
        client_ip: "192.0.2.1".into(),
        created_at: user.created_at,
        expires_at: user.created_at + time::Duration::days(1),
        max_live_per_user: 10,
        organization_id: None,
    };
    let token = NewRefreshToken {
        id: Uuid::new_v4(),
        session_id: session.id,
        token_hash: [9; 32],
        created_at: session.created_at,
        expires_at: session.expires_at,
    };
    store
        .create_session(session.clone(), token)
        .await
        .expect("create session");

    let mut admin = PgConnection::connect(&url).await.expect("connect");
    let deleted = sqlx::query(&format!("DELETE FROM \"{schema}\".sessions WHERE id = $1"))
        .bind(session.id)
        .execute(&mut admin)
        .await
        .expect("delete by SQL");
    assert_eq!(deleted.rows_affected(), 1);
    admin.close().await.expect("close");
    assert_eq!(
        next_change(&mut rx).await,
        Some(Change::Session(session.id))
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_listening_connection_is_found_by_the_heartbeat_and_replaced() {
    let Some(url) = postgres_url("PostgreSQL change listener") else {
        return;
    };
    let schema = new_schema_name();
    let _cleanup = DropSchema {
        url: url.clone(),
        schema: schema.clone(),
    };
    let direct = PgConnectOptions::from_str(&url).expect("a PostgreSQL URL");
    let proxy = Proxy::start((direct.get_host().to_owned(), direct.get_port())).await;
    // In clear text, so that the proxy can tell the listening connection by its `LISTEN`.
    let options = direct
        .clone()
        .host("127.0.0.1")
        .port(proxy.port)
        .ssl_mode(sqlx::postgres::PgSslMode::Disable);
    let heartbeat = Heartbeat {
        every: Duration::from_millis(100),
        // Generous: a loaded machine must not miss a heartbeat of a healthy connection.
        deadline: Duration::from_secs(3),
    };
    let store = PgStore::from_options(options, Some(&schema), 2)
        .await
        .expect("connect through the proxy")
        .with_heartbeat(heartbeat);
    store.migrate().await.expect("migrate");
    let mut rx = match store.watch_changes().await.expect("watch") {
        ChangeFeed::Channel(rx) => rx,
        ChangeFeed::Unsupported => panic!("PostgreSQL has a change feed"),
    };
    assert_eq!(next_change(&mut rx).await, Some(Change::Resumed));

    // Several heartbeats come and go on a healthy connection without a word.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let user = new_user("heartbeat");
    store
        .create_user(user.clone(), Effects::none())
        .await
        .expect("create user");
    store
        .set_username(user.id, "before", user.created_at, Effects::none())
        .await
        .expect("rename");
    assert_eq!(next_change(&mut rx).await, Some(Change::User(user.id)));

    // The listening connection goes silent: nothing forwarded either way, nothing closed.
    assert_eq!(proxy.freeze_listeners(), 1, "one listening connection");
    assert_eq!(next_change(&mut rx).await, Some(Change::Lost));
    assert_eq!(next_change(&mut rx).await, Some(Change::Resumed));
    store
        .set_username(user.id, "after", user.created_at, Effects::none())
        .await
        .expect("rename");
    assert_eq!(next_change(&mut rx).await, Some(Change::User(user.id)));
    timeout(PROMPTLY, store.close())
        .await
        .expect("the store closes within 5 s");
}

/// A TCP proxy in front of PostgreSQL that can make the connections that sent `LISTEN` go
/// silent: from then on it forwards nothing on them, either way, and closes nothing (a
/// half-open connection, as after a network partition).
struct Proxy {
    port: u16,
    conns: Arc<Mutex<Vec<Arc<Conn>>>>,
    accept: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Conn {
    listens: AtomicBool,
    silent: AtomicBool,
}

impl Proxy {
    async fn start(upstream: (String, u16)) -> Self {
        let socket = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = socket.local_addr().expect("addr").port();
        let conns: Arc<Mutex<Vec<Arc<Conn>>>> = Arc::default();
        let registry = Arc::clone(&conns);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = socket.accept().await {
                let Ok(server) = TcpStream::connect((upstream.0.as_str(), upstream.1)).await else {
                    continue;
                };
                let conn = Arc::new(Conn::default());
                registry.lock().expect("registry").push(Arc::clone(&conn));
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(pump(client_read, server_write, Arc::clone(&conn), true));
                tokio::spawn(pump(server_read, client_write, conn, false));
            }
        });
        Self {
            port,
            conns,
            accept,
        }
    }

    /// Silences every connection that has sent `LISTEN` so far; returns how many.
    fn freeze_listeners(&self) -> usize {
        let conns = self.conns.lock().expect("registry");
        let mut frozen = 0;
        for conn in conns.iter().filter(|c| c.listens.load(Ordering::SeqCst)) {
            conn.silent.store(true, Ordering::SeqCst);
            frozen += 1;
        }
        frozen
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    conn: Arc<Conn>,
    from_client: bool,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if from_client && buf[..n].windows(6).any(|w| w == b"LISTEN") {
            conn.listens.store(true, Ordering::SeqCst);
        }
        if conn.silent.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

//! SQLite implementation of Authara's [`Store`]: one module per aggregate (`schema`, `user`,
//! `session`, `events`, `audit`, `challenge`, `mail`, `org`, `invitation`), `outbox` for the
//! life cycle `events` and `mail` share, and `effects` for the side effects a write commits
//! with its change.
//!
//! One file, WAL journal, two pools: a single writer connection that takes every write and
//! transaction (so writers never meet `SQLITE_BUSY` among themselves), and a small pool of
//! read-only connections for plain reads, which WAL lets run beside the writer.
//!
//! Storage formats: uuids are TEXT (hyphenated lowercase), timestamps INTEGER unix microseconds
//! in UTC, booleans INTEGER, refresh-token hashes 32-byte BLOBs, JSON as TEXT.
//!
//! [`Store`]: authara_core::store::Store

#![warn(missing_docs)]

mod audit;
mod challenge;
mod effects;
mod error;
mod events;
mod identity;
mod invitation;
mod mail;
mod org;
mod outbox;
mod rows;
mod schema;
mod session;
mod user;

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use authara_core::store::StoreError;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::error::map;

/// How long a connection waits for a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Size of the read-only pool.
const READER_CONNECTIONS: u32 = 4;

/// Authara's store on a SQLite database file (or, for tests and demos, in memory).
///
/// Cloning is cheap and shares the pools.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Exactly one connection: all writes and transactions.
    pub(crate) writer: SqlitePool,
    /// Read-only connections for single-statement reads (the writer's pool when in memory).
    pub(crate) reader: SqlitePool,
}

/// Whether a `sqlite:` URL names an in-memory database: `:memory:` or a literal `mode=memory`
/// parameter, split off the way sqlx splits it.
fn is_memory(url: &str) -> bool {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
    database == ":memory:" || params.split('&').any(|p| p == "mode=memory")
}

/// Parses a `sqlite:` URL, the one way this crate reads them: the options sqlx opens, and
/// whether the database is in memory. A file database must name a file.
fn parse_url(url: &str) -> Result<(SqliteConnectOptions, bool), StoreError> {
    if !url.starts_with("sqlite:") {
        return Err(StoreError::invalid(
            "a SQLite database URL must start with `sqlite:`",
        ));
    }
    // The parse error is not kept: it would quote the URL.
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|_| StoreError::invalid("malformed SQLite database URL"))?;
    let memory = is_memory(url);
    if !memory && options.get_filename().as_os_str().is_empty() {
        return Err(StoreError::invalid("the SQLite database URL names no file"));
    }
    Ok((options, memory))
}

/// The file a `sqlite:` URL names, exactly as [`SqliteStore::connect`] opens it (the path
/// percent-decoded, parameters removed); `None` for an in-memory database. Fails for a URL
/// `connect` would refuse. For anything that must agree with the store about which file it
/// uses, such as a lock file beside it.
pub fn database_file(url: &str) -> Result<Option<PathBuf>, StoreError> {
    let (options, memory) = parse_url(url)?;
    Ok((!memory).then(|| options.get_filename().to_path_buf()))
}

impl SqliteStore {
    /// Opens the database named by `url`: `sqlite://PATH` or `sqlite:PATH` (the file is created
    /// when missing, its directory is not), or `sqlite::memory:` for a private in-memory
    /// database held by one shared connection. Does not migrate; see
    /// [`SchemaStore::migrate`](authara_core::store::SchemaStore::migrate).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let (options, memory) = parse_url(url)?;
        let base = options
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .synchronous(SqliteSynchronous::Normal);

        if memory {
            // One connection that never closes: the database lives exactly as long as it.
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(base)
                .await
                .map_err(map)?;
            return Ok(Self {
                writer: pool.clone(),
                reader: pool,
            });
        }

        // The writer connects first: it creates the file and switches it to WAL (persistent),
        // so the read-only connections find a WAL database.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .connect_with(
                base.clone()
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal),
            )
            .await
            .map_err(map)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READER_CONNECTIONS)
            .connect_with(base.read_only(true))
            .await
            .map_err(map)?;
        Ok(Self { writer, reader })
    }

    /// Closes both pools, waiting for connections in use to be returned. For a clean shutdown;
    /// later calls on this store (or its clones) fail with `Unavailable`.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    /// Starts a write transaction on the writer. `BEGIN IMMEDIATE` takes the write lock up
    /// front, so another process writing the same file makes us wait (busy timeout) instead
    /// of failing a deferred transaction half-way.
    pub(crate) async fn begin(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(map)
    }
}

/// `Ok` when an update or delete touched a row, `NotFound` otherwise.
pub(crate) fn found(rows_affected: u64) -> Result<(), StoreError> {
    if rows_affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use authara_core::org::OrgKind;
    use authara_core::store::{
        Effects, InitialOrganization, NewUser, SchemaState, SchemaStore as _, UserStore as _,
    };
    use uuid::Uuid;

    #[test]
    fn memory_urls_are_recognised() {
        assert!(is_memory("sqlite::memory:"));
        assert!(is_memory("sqlite://:memory:"));
        assert!(is_memory("sqlite://?mode=memory"));
        assert!(!is_memory("sqlite://data/authara.db"));
        assert!(!is_memory("sqlite:authara.db?mode=rwc"));
    }

    #[test]
    fn database_file_is_the_file_sqlite_opens() {
        let file = |url: &str| database_file(url).unwrap();
        assert_eq!(file("sqlite://my%20db.db"), Some(PathBuf::from("my db.db")));
        assert_eq!(
            file("sqlite:///var/lib/a%3Fb.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/a?b.db"))
        );
        assert_eq!(file("sqlite:data/a.db"), Some(PathBuf::from("data/a.db")));
        assert_eq!(file("sqlite://data.db?mode=memory"), None);
        assert_eq!(file("sqlite://?mode=memory"), None);
        assert_eq!(file("sqlite::memory:"), None);
        assert_eq!(file("sqlite://:memory:"), None);
        for refused in ["postgres://x/y", "a.db", "sqlite://", "sqlite:a.db?nope=1"] {
            assert!(database_file(refused).is_err(), "{refused}");
        }
    }

    #[tokio::test]
    async fn a_percent_encoded_url_opens_the_decoded_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("my db.db");
        let url = format!("sqlite://{}/my%20db.db", dir.path().display());
        assert_eq!(database_file(&url).unwrap(), Some(path.clone()));
        let store = SqliteStore::connect(&url).await.unwrap();
        assert!(path.exists());
        store.close().await;
    }

    #[tokio::test]
    async fn rejects_other_schemes() {
        assert!(SqliteStore::connect("postgres://localhost/x")
            .await
            .is_err());
        assert!(SqliteStore::connect("authara.db").await.is_err());
    }

    #[tokio::test]
    async fn memory_database_is_shared_by_all_queries() {
        let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
        assert!(matches!(
            store.schema_state().await.unwrap(),
            SchemaState::Behind { .. }
        ));
        store.migrate().await.unwrap();
        assert_eq!(store.schema_state().await.unwrap(), SchemaState::UpToDate);
        let user = NewUser {
            id: Uuid::new_v4(),
            email: "mem@example.com".into(),
            username: "mem".into(),
            password_hash: None,
            created_at: time::macros::datetime!(2030-01-01 0:00 UTC),
            organization: InitialOrganization {
                id: Uuid::new_v4(),
                name: "mem".into(),
                kind: OrgKind::Personal,
            },
        };
        store
            .create_user(user.clone(), Effects::none())
            .await
            .unwrap();
        let found = store.find_user_by_id(user.id).await.unwrap().unwrap();
        assert_eq!(found.email, user.email);
        store.close().await;
    }

    #[tokio::test]
    async fn creates_a_missing_file_in_wal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        let url = format!("sqlite://{}", path.display());
        let store = SqliteStore::connect(&url).await.unwrap();
        assert!(path.exists());
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&store.reader)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&store.writer)
            .await
            .unwrap();
        assert_eq!(fk, 1);
        // The reader really is read-only.
        assert!(sqlx::query("CREATE TABLE nope (x INTEGER)")
            .execute(&store.reader)
            .await
            .is_err());
        store.close().await;

        // `sqlite:PATH` opens the same file.
        let again = SqliteStore::connect(&format!("sqlite:{}", path.display()))
            .await
            .unwrap();
        again.ping().await.unwrap();
        again.close().await;
    }
}

//! PostgreSQL implementation of Authara's [`Store`]: one module per aggregate (`schema`, `user`,
//! `session`, `events`, `audit`, `challenge`, `mail`, `org`, `invitation`), `outbox` for the
//! life cycle `events` and `mail` share, `effects` for the side effects a write commits with
//! its change, `feed` for the change feed (LISTEN/NOTIFY).
//!
//! One pool; optionally every connection confined to one schema through its `search_path`
//! (so several deployments, or test runs, can share a database). Types: UUID, TIMESTAMPTZ,
//! BYTEA, BOOLEAN, TEXT. Refresh-token rotation relies on READ COMMITTED row locking: of
//! concurrent consumes of one token, the losers wait for the winner's commit, re-check
//! `consumed_at IS NULL` and update nothing.
//!
//! [`Store`]: authara_core::store::Store

#![warn(missing_docs)]

mod audit;
mod challenge;
mod effects;
mod error;
mod events;
mod feed;
mod identity;
mod invitation;
mod mail;
mod org;
mod outbox;
mod rows;
mod schema;
mod session;
mod user;

use std::str::FromStr;
use std::time::Duration;

use authara_core::store::StoreError;
use sqlx::postgres::{PgPool, PgPoolOptions};

/// Connection settings (host, credentials, TLS, …), re-exported so callers need no sqlx.
pub use sqlx::postgres::PgConnectOptions;
/// The trait behind [`PgConnectOptions`]' logging settings, re-exported so callers need no sqlx.
pub use sqlx::ConnectOptions;

use crate::error::map;
pub use crate::feed::Heartbeat;

/// How long a call waits for a free pooled connection before failing `Unavailable`.
pub(crate) const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Authara's store on a PostgreSQL database.
///
/// Cloning is cheap and shares the pool.
#[derive(Debug, Clone)]
pub struct PgStore {
    pub(crate) pool: PgPool,
    /// The schema every connection's `search_path` names, if one was given.
    pub(crate) schema: Option<String>,
    /// How the change feed proves its connection alive.
    pub(crate) heartbeat: Heartbeat,
}

/// Whether `name` is an acceptable schema name: `[a-z_][a-z0-9_]{0,62}`, and not `pg_…`
/// (reserved by PostgreSQL). Such a name needs no quoting anywhere.
pub fn is_valid_schema_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    let first_ok = matches!(bytes.next(), Some(b) if b.is_ascii_lowercase() || b == b'_');
    first_ok
        && name.len() <= 63
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.starts_with("pg_")
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:pass@host:port/db?sslmode=…`).
    /// See [`PgStore::from_options`] for `schema` and `max_connections`.
    pub async fn connect_url(
        url: &str,
        schema: Option<&str>,
        max_connections: u32,
    ) -> Result<Self, StoreError> {
        // The parse error is not kept: it could quote the URL, password included.
        let options = PgConnectOptions::from_str(url)
            .map_err(|_| StoreError::invalid("malformed PostgreSQL database URL"))?;
        Self::from_options(options, schema, max_connections).await
    }

    /// Connects with `options` and a pool of at most `max_connections` (at least 1).
    ///
    /// With `schema`, every connection gets `search_path=<schema>`: the tables and sqlx's
    /// `_sqlx_migrations` live there, and [`SchemaStore::migrate`](authara_core::store::SchemaStore::migrate) creates the schema if needed.
    /// The name must match `[a-z_][a-z0-9_]{0,62}` (and not start with `pg_`), else this fails
    /// with `Unavailable`. Opens one connection right away, so a wrong address fails here.
    /// Does not migrate.
    pub async fn from_options(
        options: PgConnectOptions,
        schema: Option<&str>,
        max_connections: u32,
    ) -> Result<Self, StoreError> {
        let options = match schema {
            Some(name) if !is_valid_schema_name(name) => {
                return Err(StoreError::invalid(
                    "invalid PostgreSQL schema name: use [a-z_][a-z0-9_]{0,62}, not pg_*",
                ))
            }
            Some(name) => options.options([("search_path", name)]),
            None => options,
        };
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // No ping before every checkout (a round trip per query). Connections are instead
            // recycled when idle for a minute and after half an hour; a connection that broke
            // meanwhile fails its one query and is discarded.
            .test_before_acquire(false)
            .idle_timeout(std::time::Duration::from_secs(60))
            .max_lifetime(std::time::Duration::from_secs(1800))
            .connect_with(options)
            .await
            .map_err(map)?;
        Ok(Self {
            pool,
            schema: schema.map(str::to_owned),
            heartbeat: Heartbeat::default(),
        })
    }

    /// The same store with another change-feed [`Heartbeat`] (tests use a short one).
    pub fn with_heartbeat(mut self, heartbeat: Heartbeat) -> Self {
        self.heartbeat = heartbeat;
        self
    }

    /// Closes the pool, waiting for connections in use to be returned. For a clean shutdown;
    /// later calls on this store (or its clones) fail with `Unavailable`.
    pub async fn close(&self) {
        self.pool.close().await;
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

    #[test]
    fn schema_names() {
        for ok in ["authara", "_x", "t_0123abcd", "a", &"a".repeat(63)] {
            assert!(is_valid_schema_name(ok), "{ok}");
        }
        for bad in [
            "",
            "Authara",
            "1abc",
            "a-b",
            "a b",
            "a\"b",
            "pg_temp",
            "ümlaut",
            &"a".repeat(64),
        ] {
            assert!(!is_valid_schema_name(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn rejects_a_bad_schema_before_connecting() {
        // Port 1 is never a PostgreSQL server: the error must come from validation.
        let err = PgStore::connect_url("postgres://nobody@127.0.0.1:1/x", Some("Bad"), 1)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("unavailable"), "{err}");
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.contains("schema name"), "{source}");
    }

    #[tokio::test]
    async fn malformed_url_does_not_echo_it() {
        let err = PgStore::connect_url("postgres://user:s3cret@host:notaport/db", None, 1)
            .await
            .unwrap_err();
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(!source.contains("s3cret"), "{source}");
    }
}

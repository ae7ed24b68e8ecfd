//! PostgreSQL implementation of Authara's [`Store`].
//!
//! One pool; optionally every connection confined to one schema through its `search_path`
//! (so several deployments, or test runs, can share a database). Types: UUID, TIMESTAMPTZ,
//! BYTEA, BOOLEAN, TEXT. Refresh-token rotation relies on READ COMMITTED row locking: of
//! concurrent consumes of one token, the losers wait for the winner's commit, re-check
//! `consumed_at IS NULL` and update nothing.

#![warn(missing_docs)]

mod error;
mod rows;

use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use authara_core::store::{
    Change, ChangeFeed, NewRefreshToken, NewSession, NewUser, PurgeCounts, RefreshTokenRecord,
    Replacement, RotateIf, RotateOutcome, SchemaState, SessionRecord, Store, StoreError, TokenHash,
    UserRecord,
};
use sqlx::error::ErrorKind;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};
use time::OffsetDateTime;
use uuid::Uuid;

/// Connection settings (host, credentials, TLS, …), re-exported so callers need no sqlx.
pub use sqlx::postgres::PgConnectOptions;
/// The trait behind [`PgConnectOptions`]' logging settings, re-exported so callers need no sqlx.
pub use sqlx::ConnectOptions;

use crate::error::{map, map_migrate};
use crate::rows::{
    RotateRow, SessionRow, TokenJoinRow, UserRow, SESSION_COLUMNS, TOKEN_JOIN_COLUMNS,
    TOKEN_JOIN_FROM, USER_COLUMNS,
};

/// The migrations in `migrations/`, compiled in.
static MIGRATOR: Migrator = sqlx::migrate!();

/// How long a call waits for a free pooled connection before failing `Unavailable`.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Authara's store on a PostgreSQL database.
///
/// Cloning is cheap and shares the pool.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The schema every connection's `search_path` names, if one was given.
    schema: Option<String>,
    /// How the change feed proves its connection alive.
    heartbeat: Heartbeat,
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
    /// `_sqlx_migrations` live there, and [`Store::migrate`] creates the schema if needed.
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
fn found(rows_affected: u64) -> Result<(), StoreError> {
    if rows_affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(())
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        if let Some(schema) = &self.schema {
            // The name was validated in `from_options`: nothing in it needs escaping.
            let created = sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                .execute(&self.pool)
                .await;
            match created {
                Ok(_) => {}
                // Another process created it at the same moment: that is what we wanted.
                Err(sqlx::Error::Database(db)) if db.kind() == ErrorKind::UniqueViolation => {}
                Err(e) => return Err(map(e)),
            }
        }
        MIGRATOR.run(&self.pool).await.map_err(map_migrate)
    }

    async fn schema_state(&self) -> Result<SchemaState, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(map)?;
        // Resolved through the search_path, like sqlx's own unqualified table name.
        let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
            .fetch_one(&mut *conn)
            .await
            .map_err(map)?;
        let applied: BTreeSet<i64> = if exists {
            sqlx::query_scalar::<_, i64>("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&mut *conn)
                .await
                .map_err(map)?
                .into_iter()
                .collect()
        } else {
            BTreeSet::new()
        };
        let embedded: BTreeSet<i64> = MIGRATOR
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .map(|m| m.version)
            .collect();
        Ok(SchemaState::compare(&applied, &embedded))
    }

    async fn create_user(&self, user: NewUser) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO users \
                 (id, email, username, password_hash, is_admin, disabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, FALSE, FALSE, $5, $5)",
        )
        .bind(user.id)
        .bind(&user.email)
        .bind(&user.username)
        .bind(user.password_hash.as_deref())
        .bind(user.created_at)
        .execute(&self.pool)
        .await
        .map_err(map)?;
        Ok(())
    }

    async fn find_user_by_id(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query_as::<_, UserRow>(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        Ok(row.map(UserRecord::from))
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query_as::<_, UserRow>(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE email = $1"
        ))
        .bind(email)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        Ok(row.map(UserRecord::from))
    }

    async fn set_password_hash(
        &self,
        user_id: Uuid,
        hash: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let done =
            sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
                .bind(user_id)
                .bind(hash)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(map)?;
        found(done.rows_affected())
    }

    async fn set_username(
        &self,
        user_id: Uuid,
        username: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE users SET username = $2, updated_at = $3 WHERE id = $1")
            .bind(user_id)
            .bind(username)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        found(done.rows_affected())
    }

    async fn set_admin_by_email(
        &self,
        email: &str,
        is_admin: bool,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE users SET is_admin = $2, updated_at = $3 WHERE email = $1")
            .bind(email)
            .bind(is_admin)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        found(done.rows_affected())
    }

    async fn set_disabled(
        &self,
        user_id: Uuid,
        disabled: bool,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        // One statement (one round trip, its own transaction). The sessions' update reads the
        // users' output, so it revokes nothing for an unknown user.
        let found_user: bool = sqlx::query_scalar(
            "WITH u AS ( \
                 UPDATE users SET disabled = $2, updated_at = $3 WHERE id = $1 \
                 RETURNING id), \
             s AS ( \
                 UPDATE sessions SET revoked_at = $3 \
                 WHERE $2 AND revoked_at IS NULL AND user_id IN (SELECT id FROM u)) \
             SELECT EXISTS (SELECT 1 FROM u)",
        )
        .bind(user_id)
        .bind(disabled)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(map)?;
        if found_user {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    async fn delete_user(&self, user_id: Uuid) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        found(done.rows_affected())
    }

    async fn create_session(
        &self,
        session: NewSession,
        token: NewRefreshToken,
    ) -> Result<(), StoreError> {
        // One transaction. First the user's row is locked, so that concurrent inserts for one
        // user take turns; then one statement inserts the session and its token (the token's
        // foreign key is checked at the end of the statement, when the session row exists) and
        // revokes the user's live sessions beyond the cap. The lock must come first, in its own
        // statement: a statement's snapshot is taken when it starts, so only a statement that
        // starts after the lock is granted sees what the previous holder committed. The new
        // session is not in that snapshot: keeping `cap - 1` of the others leaves `cap` in all.
        // An unknown user locks nothing and the insert fails on the foreign key (`NotFound`).
        let mut tx = self.pool.begin().await.map_err(map)?;
        sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE")
            .bind(session.user_id)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        sqlx::query(
            "WITH s AS ( \
                 INSERT INTO sessions \
                     (id, user_id, user_agent, client_ip, created_at, expires_at, revoked_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, NULL) \
                 RETURNING id), \
             t AS ( \
                 INSERT INTO refresh_tokens \
                     (id, session_id, token_hash, created_at, expires_at, consumed_at) \
                 SELECT $7, s.id, $8, $9, $10, NULL FROM s), \
             beyond AS ( \
                 SELECT id FROM sessions \
                 WHERE user_id = $2 AND revoked_at IS NULL AND expires_at > $5 \
                 ORDER BY created_at DESC, id DESC \
                 OFFSET $11 - 1) \
             UPDATE sessions SET revoked_at = $5 \
             WHERE id IN (SELECT id FROM beyond) AND revoked_at IS NULL",
        )
        .bind(session.id)
        .bind(session.user_id)
        .bind(&session.user_agent)
        .bind(&session.client_ip)
        .bind(session.created_at)
        .bind(session.expires_at)
        .bind(token.id)
        .bind(token.token_hash.as_slice())
        .bind(token.created_at)
        .bind(token.expires_at)
        .bind(i64::from(session.max_live_per_user.max(1)))
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        tx.commit().await.map_err(map)
    }

    async fn find_live_session_user(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query_as::<_, UserRow>(&format!(
            "SELECT {USER_COLUMNS} FROM users \
             WHERE id = $2 AND NOT disabled \
               AND EXISTS (SELECT 1 FROM sessions \
                   WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > $3)"
        ))
        .bind(session_id)
        .bind(user_id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        Ok(row.map(UserRecord::from))
    }

    async fn list_live_sessions(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let rows = sqlx::query_as::<_, SessionRow>(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions \
             WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
             ORDER BY created_at DESC, id"
        ))
        .bind(user_id)
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        Ok(rows.into_iter().map(SessionRecord::from).collect())
    }

    async fn revoke_session(
        &self,
        session_id: Uuid,
        owner: Option<Uuid>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = COALESCE(revoked_at, $2) \
             WHERE id = $1 AND ($3::uuid IS NULL OR user_id = $3)",
        )
        .bind(session_id)
        .bind(now)
        .bind(owner)
        .execute(&self.pool)
        .await
        .map_err(map)?;
        Ok(done.rows_affected() > 0)
    }

    async fn find_refresh_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RefreshTokenRecord>, StoreError> {
        let row = sqlx::query_as::<_, TokenJoinRow>(&format!(
            "SELECT {TOKEN_JOIN_COLUMNS} {TOKEN_JOIN_FROM} WHERE t.token_hash = $1"
        ))
        .bind(hash.as_slice())
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        Ok(row.map(RefreshTokenRecord::from))
    }

    async fn rotate_refresh_token(
        &self,
        hash: &TokenHash,
        rotate_if: RotateIf,
        replacement: Replacement,
    ) -> Result<Option<RotateOutcome>, StoreError> {
        // One statement, so one round trip and its own transaction. `found` is the state
        // before the call (the statement's snapshot). The update re-checks `consumed_at IS
        // NULL` against the row it locks: a concurrent rotation of the same token makes it
        // wait for that commit, then consume nothing, so nothing is inserted either. A failing
        // insert (a duplicate hash) fails the statement and the token stays unconsumed.
        // `found` takes the session row `FOR SHARE`: a concurrent revocation of the session
        // either commits first (and `found`, re-read after the wait, sees it revoked, so nothing
        // rotates) or waits until this rotation has committed; it can never slip in between
        // the check and the rotation.
        let row = sqlx::query_as::<_, RotateRow>(&format!(
            "WITH found AS ( \
                 SELECT {TOKEN_JOIN_COLUMNS} {TOKEN_JOIN_FROM} WHERE t.token_hash = $1 \
                 FOR SHARE OF s), \
             consumed AS ( \
                 UPDATE refresh_tokens SET consumed_at = $2 \
                 WHERE token_hash = $1 AND consumed_at IS NULL AND expires_at > $2 \
                   AND ($3::timestamptz IS NULL OR created_at <= $3) \
                   AND EXISTS (SELECT 1 FROM found f \
                       WHERE f.session_revoked_at IS NULL AND f.session_expires_at > $2 \
                         AND NOT f.user_disabled AND (NOT $4::boolean OR f.user_is_admin)) \
                 RETURNING session_id), \
             inserted AS ( \
                 INSERT INTO refresh_tokens \
                     (id, session_id, token_hash, created_at, expires_at, consumed_at) \
                 SELECT $5, c.session_id, $6, $2, LEAST($7, f.session_expires_at), NULL \
                 FROM consumed c CROSS JOIN found f \
                 RETURNING expires_at) \
             SELECT found.*, (SELECT expires_at FROM inserted) AS rotated_expires_at \
             FROM found"
        ))
        .bind(hash.as_slice())
        .bind(rotate_if.now)
        .bind(rotate_if.created_at_most)
        .bind(rotate_if.admin_only)
        .bind(replacement.id)
        .bind(replacement.token_hash.as_slice())
        .bind(replacement.expires_at)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        Ok(row.map(|row| RotateOutcome {
            record: row.token.into(),
            rotated: row.rotated_expires_at,
        }))
    }

    async fn watch_changes(&self) -> Result<ChangeFeed, StoreError> {
        let prefix = self.change_prefix().await?;
        let options = self.pool.connect_options().as_ref().clone();
        let listen_pool = listen_pool(&options);
        let listener = listen(&listen_pool).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let feed = Feed {
            options,
            store_pool: self.pool.clone(),
            prefix,
            heartbeat: self.heartbeat,
            tx,
        };
        tokio::spawn(feed.run(listener, listen_pool));
        Ok(ChangeFeed::Channel(rx))
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<PurgeCounts, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map)?;
        // Tokens first, so `refresh_tokens` counts every expired token, including those of
        // expired sessions; unexpired tokens of expired sessions go by cascade, uncounted.
        let tokens = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        let sessions = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        tx.commit().await.map_err(map)?;
        Ok(PurgeCounts {
            sessions: sessions.rows_affected(),
            refresh_tokens: tokens.rows_affected(),
        })
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

/// The NOTIFY channel on which the triggers of migration 0002 announce session revocations and
/// user changes. Channels are per database, so payloads start with the schema (`<schema>:`) and
/// listeners ignore other schemas'.
const CHANGES_CHANNEL: &str = "authara_changes";

/// How long to wait before listening again after the listening connection failed.
const RELISTEN_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

impl PgStore {
    /// The payload prefix that names this store's schema (the triggers' `TG_TABLE_SCHEMA`).
    async fn change_prefix(&self) -> Result<String, StoreError> {
        let schema = match &self.schema {
            Some(s) => s.clone(),
            None => sqlx::query_scalar::<_, String>("SELECT current_schema()")
                .fetch_one(&self.pool)
                .await
                .map_err(map)?,
        };
        Ok(format!("{schema}:"))
    }
}

/// The listener's connection is not one of the store's pool: it is kept for good, from a pool
/// of its own, so that the store's pool keeps all of its connections for queries. The pool's
/// second connection sends the heartbeats, so that a store pool saturated by a flood does not
/// pass for a dead feed. A listening connection found half-open is given up with its pool (its
/// drop may wait on the dead socket), so every listening connection after that comes from a
/// new pool.
fn listen_pool(options: &PgConnectOptions) -> PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_lazy_with(options.clone())
}

async fn listen(pool: &PgPool) -> Result<sqlx::postgres::PgListener, StoreError> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool)
        .await
        .map_err(map)?;
    listener.listen(CHANGES_CHANNEL).await.map_err(map)?;
    Ok(listener)
}

/// Parses `<schema>:s:<uuid>` or `<schema>:u:<uuid>` for this store's schema.
fn parse_change(payload: &str, prefix: &str) -> Option<Change> {
    let rest = payload.strip_prefix(prefix)?;
    let (kind, id) = rest.split_once(':')?;
    let id = Uuid::parse_str(id).ok()?;
    match kind {
        "s" => Some(Change::Session(id)),
        "u" => Some(Change::User(id)),
        _ => None,
    }
}

/// How the change feed proves its listening connection alive: every `every`, a NOTIFY on a
/// channel of the listener's own, sent over another connection, must come back on the listening
/// connection within `deadline`. If it does not (a silent or half-open connection, or the
/// database unreachable), the feed reports [`Change::Lost`], gives the connection up and listens
/// anew on a fresh one, then reports [`Change::Resumed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// Time between two heartbeats.
    pub every: Duration,
    /// How long a heartbeat may take to come back.
    pub deadline: Duration,
}

impl Default for Heartbeat {
    /// Every 5 s, back within 5 s: a dead feed is noticed within 10 s.
    fn default() -> Self {
        Self {
            every: Duration::from_secs(5),
            deadline: Duration::from_secs(5),
        }
    }
}

/// What the task that owns a listener reports. `PgListener::try_recv` is not documented to be
/// cancel-safe, so it runs alone in a task of its own, never raced against timers.
enum Heard {
    Note {
        channel: String,
        payload: String,
    },
    /// The connection broke and sqlx has already connected and listened again.
    Reconnected,
    Failed(String),
}

/// Why one listening connection's watch ended.
enum Ended {
    /// The store closed or the receiver is gone: the feed ends.
    Stop,
    /// The connection failed or went silent: listen anew.
    Lost,
}

/// The change feed's task.
struct Feed {
    options: PgConnectOptions,
    store_pool: PgPool,
    prefix: String,
    heartbeat: Heartbeat,
    tx: tokio::sync::mpsc::Sender<Change>,
}

impl Feed {
    /// Forwards notifications until the receiver goes away or the store is closed.
    /// Notifications that may have been missed are framed by `Lost` and `Resumed`.
    async fn run(self, mut listener: sqlx::postgres::PgListener, mut pool: PgPool) {
        loop {
            if self.tx.send(Change::Resumed).await.is_err() {
                break;
            }
            match self.watch(listener, &pool).await {
                Ended::Stop => break,
                Ended::Lost => {}
            }
            if self.tx.send(Change::Lost).await.is_err() {
                break;
            }
            // The old pool's one connection may be stuck on a dead socket: leave it behind.
            match self.relisten().await {
                Some((again, fresh)) => (listener, pool) = (again, fresh),
                None => return,
            }
        }
        pool.close().await;
    }

    /// Watches one listener, with heartbeats, until it is lost or the feed stops.
    async fn watch(&self, mut listener: sqlx::postgres::PgListener, pool: &PgPool) -> Ended {
        let channel = format!("authara_heartbeat_{}", Uuid::new_v4().simple());
        if let Err(e) = listener.listen(&channel).await {
            tracing::warn!(error = %e, "the PostgreSQL change listener could not listen");
            return Ended::Lost;
        }
        let (heard_tx, mut heard) = tokio::sync::mpsc::channel(256);
        let receiving = tokio::spawn(async move {
            loop {
                let item = match listener.try_recv().await {
                    Ok(Some(n)) => Heard::Note {
                        channel: n.channel().to_owned(),
                        payload: n.payload().to_owned(),
                    },
                    Ok(None) => Heard::Reconnected,
                    Err(e) => Heard::Failed(e.to_string()),
                };
                let failed = matches!(item, Heard::Failed(_));
                if heard_tx.send(item).await.is_err() || failed {
                    return;
                }
            }
        });
        let ended = self.pump(&channel, &mut heard, pool).await;
        receiving.abort();
        ended
    }

    async fn pump(
        &self,
        channel: &str,
        heard: &mut tokio::sync::mpsc::Receiver<Heard>,
        pool: &PgPool,
    ) -> Ended {
        let mut beat: u64 = 0;
        // The heartbeat awaited, and until when.
        let mut awaited: Option<(String, tokio::time::Instant)> = None;
        let mut next_beat = tokio::time::Instant::now() + self.heartbeat.every;
        loop {
            let wake = awaited.as_ref().map_or(next_beat, |(_, until)| *until);
            let item = tokio::select! {
                item = heard.recv() => item,
                () = tokio::time::sleep_until(wake) => {
                    if awaited.is_some() {
                        tracing::warn!(
                            "the PostgreSQL change listener missed its heartbeat; caches are off until it is back"
                        );
                        return Ended::Lost;
                    }
                    beat = beat.wrapping_add(1);
                    let payload = beat.to_string();
                    let sent = tokio::time::timeout(
                        self.heartbeat.deadline,
                        sqlx::query("SELECT pg_notify($1, $2)")
                            .bind(channel)
                            .bind(&payload)
                            .execute(pool),
                    )
                    .await;
                    if !matches!(sent, Ok(Ok(_))) {
                        tracing::warn!(
                            "could not send the PostgreSQL change listener's heartbeat; caches are off until it is back"
                        );
                        return Ended::Lost;
                    }
                    awaited = Some((payload, tokio::time::Instant::now() + self.heartbeat.deadline));
                    continue;
                }
                () = self.store_pool.close_event() => return Ended::Stop,
                () = self.tx.closed() => return Ended::Stop,
            };
            let sent = match item {
                Some(Heard::Note {
                    channel: on,
                    payload,
                }) if on == channel => {
                    if awaited.as_ref().is_some_and(|(p, _)| *p == payload) {
                        awaited = None;
                        next_beat = tokio::time::Instant::now() + self.heartbeat.every;
                    }
                    Ok(())
                }
                Some(Heard::Note { payload, .. }) => match parse_change(&payload, &self.prefix) {
                    Some(change) => self.tx.send(change).await,
                    None => Ok(()),
                },
                // What was notified in between is lost; the listener goes on.
                Some(Heard::Reconnected) => {
                    tracing::warn!("the PostgreSQL change listener reconnected; caches start over");
                    awaited = None;
                    next_beat = tokio::time::Instant::now() + self.heartbeat.every;
                    match self.tx.send(Change::Lost).await {
                        Ok(()) => self.tx.send(Change::Resumed).await,
                        Err(e) => Err(e),
                    }
                }
                Some(Heard::Failed(e)) => {
                    tracing::warn!(
                        error = %e,
                        "lost the PostgreSQL change listener; caches are off until it is back"
                    );
                    return Ended::Lost;
                }
                None => return Ended::Lost,
            };
            if sent.is_err() {
                return Ended::Stop;
            }
        }
    }

    /// Listens again on a pool of its own, trying once a second (each try with a new pool, in
    /// case the last one's connection is stuck); `None` once the receiver is gone or the store
    /// closed.
    async fn relisten(&self) -> Option<(sqlx::postgres::PgListener, PgPool)> {
        loop {
            tokio::time::sleep(RELISTEN_AFTER).await;
            if self.tx.is_closed() || self.store_pool.is_closed() {
                return None;
            }
            let pool = listen_pool(&self.options);
            let attempt = tokio::time::timeout(ACQUIRE_TIMEOUT, listen(&pool)).await;
            if let Ok(Ok(listener)) = attempt {
                return Some((listener, pool));
            }
        }
    }
}

#[cfg(test)]
mod change_tests {
    use super::*;

    #[test]
    fn payloads_of_other_schemas_and_garbage_are_ignored() {
        let id = Uuid::new_v4();
        assert_eq!(
            parse_change(&format!("a:s:{id}"), "a:"),
            Some(Change::Session(id))
        );
        assert_eq!(
            parse_change(&format!("a:u:{id}"), "a:"),
            Some(Change::User(id))
        );
        assert_eq!(
            parse_change(&format!(":u:{id}"), ":"),
            Some(Change::User(id))
        );
        assert_eq!(parse_change(&format!("b:s:{id}"), "a:"), None);
        assert_eq!(parse_change(&format!("a:x:{id}"), "a:"), None);
        assert_eq!(parse_change("a:s:nope", "a:"), None);
    }
}

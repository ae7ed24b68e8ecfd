//! SQLite implementation of Authara's [`Store`].
//!
//! One file, WAL journal, two pools: a single writer connection that takes every write and
//! transaction (so writers never meet `SQLITE_BUSY` among themselves), and a small pool of
//! read-only connections for plain reads, which WAL lets run beside the writer.
//!
//! Storage formats: uuids are TEXT (hyphenated lowercase), timestamps INTEGER unix microseconds
//! in UTC, booleans INTEGER, refresh-token hashes 32-byte BLOBs.

#![warn(missing_docs)]

mod error;
mod rows;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use authara_core::store::{
    ChangeFeed, NewRefreshToken, NewSession, NewUser, PurgeCounts, RefreshTokenRecord, Replacement,
    RotateIf, RotateOutcome, SchemaState, SessionRecord, Store, StoreError, TokenHash, UserRecord,
};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{map, map_migrate};
use crate::rows::{
    id_text, micros, parse_time, SessionRow, TokenJoinRow, UserRow, SESSION_COLUMNS,
    TOKEN_JOIN_COLUMNS, USER_COLUMNS,
};

/// The migrations in `migrations/`, compiled in.
static MIGRATOR: Migrator = sqlx::migrate!();

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
    writer: SqlitePool,
    /// Read-only connections for single-statement reads (the writer's pool when in memory).
    reader: SqlitePool,
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
    /// database held by one shared connection. Does not migrate; see [`Store::migrate`].
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
    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(map)
    }
}

/// Whether `_sqlx_migrations` exists, on any connection.
async fn migrations_table_exists(conn: &mut SqliteConnection) -> Result<bool, StoreError> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(map)?;
    Ok(found.is_some())
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(map)?;
        Ok(())
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.writer).await.map_err(map_migrate)
    }

    async fn schema_state(&self) -> Result<SchemaState, StoreError> {
        let mut conn = self.reader.acquire().await.map_err(map)?;
        let applied: BTreeSet<i64> = if migrations_table_exists(&mut conn).await? {
            sqlx::query_scalar::<_, i64>("SELECT version FROM _sqlx_migrations WHERE success = 1")
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
             VALUES (?1, ?2, ?3, ?4, 0, 0, ?5, ?5)",
        )
        .bind(id_text(user.id))
        .bind(&user.email)
        .bind(&user.username)
        .bind(user.password_hash.as_deref())
        .bind(micros(user.created_at)?)
        .execute(&self.writer)
        .await
        .map_err(map)?;
        Ok(())
    }

    async fn find_user_by_id(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError> {
        sqlx::query_as::<_, UserRow>(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))
            .bind(id_text(id))
            .fetch_optional(&self.reader)
            .await
            .map_err(map)?
            .map(UserRow::into_record)
            .transpose()
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        sqlx::query_as::<_, UserRow>(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE email = ?1"
        ))
        .bind(email)
        .fetch_optional(&self.reader)
        .await
        .map_err(map)?
        .map(UserRow::into_record)
        .transpose()
    }

    async fn set_password_hash(
        &self,
        user_id: Uuid,
        hash: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let done =
            sqlx::query("UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1")
                .bind(id_text(user_id))
                .bind(hash)
                .bind(micros(now)?)
                .execute(&self.writer)
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
        let done = sqlx::query("UPDATE users SET username = ?2, updated_at = ?3 WHERE id = ?1")
            .bind(id_text(user_id))
            .bind(username)
            .bind(micros(now)?)
            .execute(&self.writer)
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
        let done = sqlx::query("UPDATE users SET is_admin = ?2, updated_at = ?3 WHERE email = ?1")
            .bind(email)
            .bind(is_admin)
            .bind(micros(now)?)
            .execute(&self.writer)
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
        let id = id_text(user_id);
        let now = micros(now)?;
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE users SET disabled = ?2, updated_at = ?3 WHERE id = ?1")
            .bind(&id)
            .bind(disabled)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        if disabled {
            sqlx::query(
                "UPDATE sessions SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
            )
            .bind(&id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        }
        tx.commit().await.map_err(map)
    }

    async fn delete_user(&self, user_id: Uuid) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM users WHERE id = ?1")
            .bind(id_text(user_id))
            .execute(&self.writer)
            .await
            .map_err(map)?;
        found(done.rows_affected())
    }

    async fn create_session(
        &self,
        session: NewSession,
        token: NewRefreshToken,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO sessions \
                 (id, user_id, user_agent, client_ip, created_at, expires_at, revoked_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL)",
        )
        .bind(id_text(session.id))
        .bind(id_text(session.user_id))
        .bind(&session.user_agent)
        .bind(&session.client_ip)
        .bind(micros(session.created_at)?)
        .bind(micros(session.expires_at)?)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        insert_token(&mut tx, &token).await?;
        // The cap, in the same immediate transaction (so no other writer in between): the
        // user's live sessions but the new one, newest first; those past `cap - 1` are revoked.
        sqlx::query(
            "UPDATE sessions SET revoked_at = ?3 \
             WHERE id IN ( \
                 SELECT id FROM sessions \
                 WHERE user_id = ?1 AND id <> ?2 AND revoked_at IS NULL AND expires_at > ?3 \
                 ORDER BY created_at DESC, id DESC \
                 LIMIT -1 OFFSET ?4 - 1)",
        )
        .bind(id_text(session.user_id))
        .bind(id_text(session.id))
        .bind(micros(session.created_at)?)
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
        sqlx::query_as::<_, UserRow>(&format!(
            "SELECT {USER_COLUMNS} FROM users \
             WHERE id = ?2 AND disabled = 0 \
               AND EXISTS (SELECT 1 FROM sessions \
                   WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL AND expires_at > ?3)"
        ))
        .bind(id_text(session_id))
        .bind(id_text(user_id))
        .bind(micros(now)?)
        .fetch_optional(&self.reader)
        .await
        .map_err(map)?
        .map(UserRow::into_record)
        .transpose()
    }

    async fn list_live_sessions(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        sqlx::query_as::<_, SessionRow>(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions \
             WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2 \
             ORDER BY created_at DESC, id"
        ))
        .bind(id_text(user_id))
        .bind(micros(now)?)
        .fetch_all(&self.reader)
        .await
        .map_err(map)?
        .into_iter()
        .map(SessionRow::into_record)
        .collect()
    }

    async fn revoke_session(
        &self,
        session_id: Uuid,
        owner: Option<Uuid>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = COALESCE(revoked_at, ?2) \
             WHERE id = ?1 AND (?3 IS NULL OR user_id = ?3)",
        )
        .bind(id_text(session_id))
        .bind(micros(now)?)
        .bind(owner.map(id_text))
        .execute(&self.writer)
        .await
        .map_err(map)?;
        Ok(done.rows_affected() > 0)
    }

    async fn find_refresh_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RefreshTokenRecord>, StoreError> {
        find_token(&self.reader, hash).await
    }

    async fn rotate_refresh_token(
        &self,
        hash: &TokenHash,
        rotate_if: RotateIf,
        replacement: Replacement,
    ) -> Result<Option<RotateOutcome>, StoreError> {
        // On the writer, in one immediate transaction: the record read is the state the
        // conditional update sees, and no other writer comes between them.
        let now = micros(rotate_if.now)?;
        let created_at_most = rotate_if.created_at_most.map(micros).transpose()?;
        let mut tx = self.begin().await?;
        let Some(record) = find_token(&mut *tx, hash).await? else {
            tx.rollback().await.map_err(map)?;
            return Ok(None);
        };
        let consumed = sqlx::query(
            "UPDATE refresh_tokens SET consumed_at = ?2 \
             WHERE token_hash = ?1 AND consumed_at IS NULL AND expires_at > ?2 \
               AND (?3 IS NULL OR created_at <= ?3) \
               AND EXISTS (SELECT 1 FROM sessions s JOIN users u ON u.id = s.user_id \
                   WHERE s.id = refresh_tokens.session_id \
                     AND s.revoked_at IS NULL AND s.expires_at > ?2 \
                     AND u.disabled = 0 AND (?4 = 0 OR u.is_admin = 1))",
        )
        .bind(hash.as_slice())
        .bind(now)
        .bind(created_at_most)
        .bind(rotate_if.admin_only)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        if consumed.rows_affected() == 0 {
            tx.rollback().await.map_err(map)?;
            return Ok(Some(RotateOutcome {
                record,
                rotated: None,
            }));
        }
        let token = NewRefreshToken {
            id: replacement.id,
            session_id: record.session_id,
            token_hash: replacement.token_hash,
            created_at: rotate_if.now,
            expires_at: replacement.expires_at.min(record.session.expires_at),
        };
        insert_token(&mut tx, &token).await?;
        tx.commit().await.map_err(map)?;
        Ok(Some(RotateOutcome {
            record,
            // As stored: whole microseconds.
            rotated: Some(parse_time(micros(token.expires_at)?)?),
        }))
    }

    /// SQLite has no notifications; the server instead holds a lock that keeps every other
    /// server off the file, so the only writer besides it is the `authara admin` CLI.
    async fn watch_changes(&self) -> Result<ChangeFeed, StoreError> {
        Ok(ChangeFeed::Unsupported)
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<PurgeCounts, StoreError> {
        let now = micros(now)?;
        let mut tx = self.begin().await?;
        // Tokens first, so `refresh_tokens` counts every expired token, including those of
        // expired sessions; unexpired tokens of expired sessions go by cascade, uncounted.
        let tokens = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at <= ?1")
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        let sessions = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?1")
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

/// `Ok` when an update or delete touched a row, `NotFound` otherwise.
fn found(rows_affected: u64) -> Result<(), StoreError> {
    if rows_affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// The refresh token with this hash, joined with its session and user, on `conn`.
async fn find_token<'c, E>(
    conn: E,
    hash: &TokenHash,
) -> Result<Option<RefreshTokenRecord>, StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Sqlite>,
{
    sqlx::query_as::<_, TokenJoinRow>(&format!(
        "SELECT {TOKEN_JOIN_COLUMNS} \
         FROM refresh_tokens t \
         JOIN sessions s ON s.id = t.session_id \
         JOIN users u ON u.id = s.user_id \
         WHERE t.token_hash = ?1"
    ))
    .bind(hash.as_slice())
    .fetch_optional(conn)
    .await
    .map_err(map)?
    .map(TokenJoinRow::into_record)
    .transpose()
}

/// Inserts one unconsumed refresh token inside `tx`.
async fn insert_token(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    token: &NewRefreshToken,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO refresh_tokens \
             (id, session_id, token_hash, created_at, expires_at, consumed_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, NULL)",
    )
    .bind(id_text(token.id))
    .bind(id_text(token.session_id))
    .bind(token.token_hash.as_slice())
    .bind(micros(token.created_at)?)
    .bind(micros(token.expires_at)?)
    .execute(&mut **tx)
    .await
    .map_err(map)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        };
        store.create_user(user.clone()).await.unwrap();
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

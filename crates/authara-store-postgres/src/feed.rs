//! The change feed: session revocations and user changes announced by the triggers of migration
//! 0002 (NOTIFY), forwarded to caches, with heartbeats that notice a dead connection.

use std::time::Duration;

use authara_core::store::{Change, ChangeFeed, StoreError};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use uuid::Uuid;

use crate::error::map;
use crate::{PgStore, ACQUIRE_TIMEOUT};

/// Starts the feed of `store` ([`authara_core::store::SessionStore::watch_changes`]).
pub(crate) async fn watch(store: &PgStore) -> Result<ChangeFeed, StoreError> {
    let prefix = store.change_prefix().await?;
    let options = store.pool.connect_options().as_ref().clone();
    let listen_pool = listen_pool(&options);
    let listener = listen(&listen_pool).await?;
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    let feed = Feed {
        options,
        store_pool: store.pool.clone(),
        prefix,
        heartbeat: store.heartbeat,
        tx,
    };
    tokio::spawn(feed.run(listener, listen_pool));
    Ok(ChangeFeed::Channel(rx))
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

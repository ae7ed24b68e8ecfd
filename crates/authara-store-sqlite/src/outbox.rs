//! The life cycle both outbox tables share, written once: `webhook_events` (`events`) and
//! `email_jobs` (`mail`) are claimed, settled, re-queued, purged and listed by the statements
//! here, for the [`Outbox`] that names the table. Every statement but the listing runs on the one
//! writer connection, so claims are serialised: two claimers never get the same row.

use authara_core::store::StoreError;
use sqlx::sqlite::SqliteRow;
use sqlx::FromRow;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::map;
use crate::rows::{count, id_text, micros, parse_id, parse_opt_time, parse_time};
use crate::SqliteStore;

/// An outbox table, as its statements name it. The names are formatted into SQL, so an
/// `Outbox` is only ever a `const`: [`Outbox::new`] refuses, at compile time, anything but
/// lowercase names.
pub(crate) struct Outbox {
    table: &'static str,
    done: &'static str,
    done_at: &'static str,
    columns: &'static str,
}

/// A table's own columns (those besides the life cycle's), as a claim and a listing read them.
pub(crate) trait Columns: for<'r> FromRow<'r, SqliteRow> + Send + Unpin {}

impl<T: for<'r> FromRow<'r, SqliteRow> + Send + Unpin> Columns for T {}

/// A claimed row: what every outbox's claim returns, and the table's own columns.
pub(crate) struct Claimed<T> {
    pub(crate) id: Uuid,
    /// Attempts made before this claim.
    pub(crate) attempt_count: u32,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) own: T,
}

/// A row as stored: the life cycle's columns (`done_at` is the table's own name for it), with
/// the status as the table's status type `S`, and the table's own columns.
pub(crate) struct Listed<S, T> {
    pub(crate) id: Uuid,
    pub(crate) status: S,
    pub(crate) attempt_count: u32,
    pub(crate) next_attempt_at: OffsetDateTime,
    pub(crate) processing_started_at: Option<OffsetDateTime>,
    pub(crate) last_error: Option<String>,
    pub(crate) done_at: Option<OffsetDateTime>,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) own: T,
}

/// A claimed row as SQLite returns it, with what it is ordered by.
#[derive(FromRow)]
struct ClaimRow<T> {
    id: String,
    attempt_count: i64,
    next_attempt_at: i64,
    created_at: i64,
    #[sqlx(flatten)]
    own: T,
}

/// A listed row as SQLite returns it.
#[derive(FromRow)]
struct ListRow<T> {
    id: String,
    status: String,
    attempt_count: i64,
    next_attempt_at: i64,
    processing_started_at: Option<i64>,
    last_error: Option<String>,
    done_at: Option<i64>,
    created_at: i64,
    #[sqlx(flatten)]
    own: T,
}

impl Outbox {
    /// The outbox in `table`, whose rows end in status `done`, stamped in column `done_at`, when
    /// an attempt succeeds; `columns` lists the table's own columns (`a, b, c`).
    pub(crate) const fn new(
        table: &'static str,
        done: &'static str,
        done_at: &'static str,
        columns: &'static str,
    ) -> Self {
        assert!(
            is_names(table) && is_names(done) && is_names(done_at) && is_names(columns),
            "outbox names are lowercase SQL names"
        );
        Self {
            table,
            done,
            done_at,
            columns,
        }
    }

    /// Claims up to `limit` pending rows due at `now`, ordered by due time, creation, id.
    pub(crate) async fn claim_due<T: Columns>(
        &self,
        store: &SqliteStore,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Claimed<T>>, StoreError> {
        let Self { table, columns, .. } = self;
        let mut rows = sqlx::query_as::<_, ClaimRow<T>>(&format!(
            "UPDATE {table} \
             SET status = 'processing', processing_started_at = ?1, updated_at = ?1 \
             WHERE id IN ( \
                 SELECT id FROM {table} \
                 WHERE status = 'pending' AND next_attempt_at <= ?1 \
                 ORDER BY next_attempt_at, created_at, id \
                 LIMIT ?2) \
             RETURNING id, attempt_count, next_attempt_at, created_at, {columns}"
        ))
        .bind(micros(now)?)
        .bind(i64::from(limit))
        .fetch_all(&store.writer)
        .await
        .map_err(map)?;
        // RETURNING keeps no order. Ids are hyphenated lowercase text, which sorts as the uuids.
        rows.sort_by(|a, b| {
            (a.next_attempt_at, a.created_at, &a.id).cmp(&(b.next_attempt_at, b.created_at, &b.id))
        });
        rows.into_iter()
            .map(|row| {
                Ok(Claimed {
                    id: parse_id(&row.id)?,
                    attempt_count: count(row.attempt_count)?,
                    created_at: parse_time(row.created_at)?,
                    own: row.own,
                })
            })
            .collect()
    }

    /// A processing row's attempt succeeded: `done`, stamped, the attempt counted. False when
    /// the row is not (or no longer) processing.
    pub(crate) async fn mark_done(
        &self,
        store: &SqliteStore,
        id: Uuid,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let Self {
            table,
            done,
            done_at,
            ..
        } = self;
        let changed = sqlx::query(&format!(
            "UPDATE {table} \
             SET status = '{done}', {done_at} = ?2, attempt_count = attempt_count + 1, \
                 processing_started_at = NULL, updated_at = ?2 \
             WHERE id = ?1 AND status = 'processing'"
        ))
        .bind(id_text(id))
        .bind(micros(now)?)
        .execute(&store.writer)
        .await
        .map_err(map)?;
        Ok(changed.rows_affected() > 0)
    }

    /// A processing row's attempt failed: back to `pending`, due `retry_at`, or `failed` for good
    /// without one; the attempt counted, `error` kept. False when the row is not processing.
    pub(crate) async fn mark_attempt_failed(
        &self,
        store: &SqliteStore,
        id: Uuid,
        error: &str,
        retry_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let table = self.table;
        let changed = sqlx::query(&format!(
            "UPDATE {table} \
             SET status = CASE WHEN ?3 IS NULL THEN 'failed' ELSE 'pending' END, \
                 next_attempt_at = COALESCE(?3, next_attempt_at), \
                 attempt_count = attempt_count + 1, last_error = ?2, \
                 processing_started_at = NULL, updated_at = ?4 \
             WHERE id = ?1 AND status = 'processing'"
        ))
        .bind(id_text(id))
        .bind(error)
        .bind(retry_at.map(micros).transpose()?)
        .bind(micros(now)?)
        .execute(&store.writer)
        .await
        .map_err(map)?;
        Ok(changed.rows_affected() > 0)
    }

    /// Re-queues up to `limit` rows processing since before `stale_before`: pending, due `now`,
    /// the attempt not counted. Returns how many.
    pub(crate) async fn requeue_stale(
        &self,
        store: &SqliteStore,
        stale_before: OffsetDateTime,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let table = self.table;
        let changed = sqlx::query(&format!(
            "UPDATE {table} \
             SET status = 'pending', next_attempt_at = ?2, processing_started_at = NULL, \
                 updated_at = ?2 \
             WHERE id IN ( \
                 SELECT id FROM {table} \
                 WHERE status = 'processing' AND processing_started_at < ?1 \
                 ORDER BY processing_started_at, id \
                 LIMIT ?3)"
        ))
        .bind(micros(stale_before)?)
        .bind(micros(now)?)
        .bind(i64::from(limit))
        .execute(&store.writer)
        .await
        .map_err(map)?;
        Ok(changed.rows_affected())
    }

    /// Deletes up to `limit` rows done before `done_before` or failed before `failed_before`
    /// (by `updated_at`). Returns how many.
    pub(crate) async fn purge(
        &self,
        store: &SqliteStore,
        done_before: OffsetDateTime,
        failed_before: OffsetDateTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let Self { table, done, .. } = self;
        let changed = sqlx::query(&format!(
            "DELETE FROM {table} WHERE id IN ( \
                 SELECT id FROM {table} \
                 WHERE (status = '{done}' AND updated_at < ?1) \
                    OR (status = 'failed' AND updated_at < ?2) \
                 ORDER BY updated_at, id \
                 LIMIT ?3)"
        ))
        .bind(micros(done_before)?)
        .bind(micros(failed_before)?)
        .bind(i64::from(limit))
        .execute(&store.writer)
        .await
        .map_err(map)?;
        Ok(changed.rows_affected())
    }

    /// Up to `limit` rows, oldest first (on a reader connection), their status read by
    /// `parse_status`.
    pub(crate) async fn list<S, T: Columns>(
        &self,
        store: &SqliteStore,
        limit: u32,
        parse_status: fn(&str) -> Option<S>,
    ) -> Result<Vec<Listed<S, T>>, StoreError> {
        let Self {
            table,
            done_at,
            columns,
            ..
        } = self;
        sqlx::query_as::<_, ListRow<T>>(&format!(
            "SELECT id, status, attempt_count, next_attempt_at, processing_started_at, \
                 last_error, {done_at} AS done_at, created_at, {columns} \
             FROM {table} ORDER BY created_at, id LIMIT ?1"
        ))
        .bind(i64::from(limit))
        .fetch_all(&store.reader)
        .await
        .map_err(map)?
        .into_iter()
        .map(|row| {
            Ok(Listed {
                id: parse_id(&row.id)?,
                status: parse_status(&row.status)
                    .ok_or_else(|| StoreError::invalid("unknown outbox status in the database"))?,
                attempt_count: count(row.attempt_count)?,
                next_attempt_at: parse_time(row.next_attempt_at)?,
                processing_started_at: parse_opt_time(row.processing_started_at)?,
                last_error: row.last_error,
                done_at: parse_opt_time(row.done_at)?,
                created_at: parse_time(row.created_at)?,
                own: row.own,
            })
        })
        .collect()
    }
}

/// Whether `s` is lowercase SQL names separated by `, `: nothing that could quote, comment out or
/// end a statement.
const fn is_names(s: &str) -> bool {
    let mut rest = s.as_bytes();
    let mut any = false;
    while let [b, tail @ ..] = rest {
        if !matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b',' | b' ') {
            return false;
        }
        any = true;
        rest = tail;
    }
    any
}

/// Implements one of the core's outbox traits for [`SqliteStore`] through an [`Outbox`]:
/// `EventStore` and `EmailStore` are one life cycle under two sets of names. Given the trait,
/// the `Outbox` const, then its methods in the trait's order: the claim (with the claimed type
/// and its conversion from [`Claimed`]), the success, the failed attempt, the re-queue, the
/// purge and the listing (with the record type and its conversion from [`Listed`]).
macro_rules! impl_outbox_store {
    ($store_trait:path, $outbox:ident, $claim:ident -> $claimed:ty = $to_claimed:path,
     $done:ident, $failed:ident, $requeue:ident, $purge:ident,
     $list:ident -> $record:ty = $to_record:path, $status:ty $(,)?) => {
        #[::async_trait::async_trait]
        impl $store_trait for $crate::SqliteStore {
            async fn $claim(
                &self,
                now: ::time::OffsetDateTime,
                limit: u32,
            ) -> Result<Vec<$claimed>, ::authara_core::store::StoreError> {
                $outbox
                    .claim_due(self, now, limit)
                    .await?
                    .into_iter()
                    .map($to_claimed)
                    .collect()
            }

            async fn $done(
                &self,
                id: ::uuid::Uuid,
                now: ::time::OffsetDateTime,
            ) -> Result<bool, ::authara_core::store::StoreError> {
                $outbox.mark_done(self, id, now).await
            }

            async fn $failed(
                &self,
                id: ::uuid::Uuid,
                error: &str,
                retry_at: Option<::time::OffsetDateTime>,
                now: ::time::OffsetDateTime,
            ) -> Result<bool, ::authara_core::store::StoreError> {
                $outbox
                    .mark_attempt_failed(self, id, error, retry_at, now)
                    .await
            }

            async fn $requeue(
                &self,
                stale_before: ::time::OffsetDateTime,
                now: ::time::OffsetDateTime,
                limit: u32,
            ) -> Result<u64, ::authara_core::store::StoreError> {
                $outbox.requeue_stale(self, stale_before, now, limit).await
            }

            async fn $purge(
                &self,
                done_before: ::time::OffsetDateTime,
                failed_before: ::time::OffsetDateTime,
                limit: u32,
            ) -> Result<u64, ::authara_core::store::StoreError> {
                $outbox.purge(self, done_before, failed_before, limit).await
            }

            async fn $list(
                &self,
                limit: u32,
            ) -> Result<Vec<$record>, ::authara_core::store::StoreError> {
                $outbox
                    .list(self, limit, <$status>::parse)
                    .await?
                    .into_iter()
                    .map($to_record)
                    .collect()
            }
        }
    };
}

/// The core's claimed entry `$claimed` from the [`Claimed`] `$claim`, with the table's own
/// columns named last, each as read or through a conversion (`column = parse`, fallible).
macro_rules! outbox_claimed {
    ($claimed:ident from $claim:ident; $($own:ident $(= $parse:path)?),* $(,)?) => {
        $claimed {
            id: $claim.id,
            attempt_count: $claim.attempt_count,
            created_at: $claim.created_at,
            $($own: $crate::outbox::own_column!($claim.own.$own $(, $parse)?),)*
        }
    };
}

/// The core's record `$record` from the [`Listed`] `$row`, whose `done_at` the record calls
/// `$done_at`, with the table's own columns named last as in [`outbox_claimed`].
macro_rules! outbox_record {
    ($record:ident from $row:ident, $done_at:ident; $($own:ident $(= $parse:path)?),* $(,)?) => {
        $record {
            id: $row.id,
            status: $row.status,
            attempt_count: $row.attempt_count,
            next_attempt_at: $row.next_attempt_at,
            processing_started_at: $row.processing_started_at,
            last_error: $row.last_error,
            $done_at: $row.done_at,
            created_at: $row.created_at,
            $($own: $crate::outbox::own_column!($row.own.$own $(, $parse)?),)*
        }
    };
}

/// One of a table's own columns for [`outbox_claimed`] and [`outbox_record`]: as read, or parsed.
macro_rules! own_column {
    ($value:expr) => {
        $value
    };
    ($value:expr, $parse:path) => {
        $parse($value)?
    };
}

pub(crate) use {impl_outbox_store, outbox_claimed, outbox_record, own_column};

#[cfg(test)]
mod tests {
    use super::is_names;

    #[test]
    fn only_lowercase_names_may_be_formatted_into_sql() {
        for ok in ["email_jobs", "sent_at", "event_type, payload", "a1"] {
            assert!(is_names(ok), "{ok}");
        }
        for bad in [
            "", "Jobs", "jobs;", "jobs --", "it's", "a\"b", "x = 1", "a/*b*/",
        ] {
            assert!(!is_names(bad), "{bad}");
        }
    }
}

//! The outbox (`webhook_events`). Rows are appended by the writes that cause them (`effects`);
//! here they are claimed, settled, re-queued and purged. Every statement runs on the one
//! writer connection, so claims are serialised: two claimers never get the same row.

use async_trait::async_trait;
use authara_core::store::{ClaimedEvent, EventRecord, EventStatus, EventStore, StoreError};
use sqlx::FromRow;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::map;
use crate::rows::{count, id_text, micros, parse_id, parse_opt_time, parse_time};
use crate::SqliteStore;

/// The columns of [`EventRow`].
const EVENT_COLUMNS: &str = "id, event_type, payload, status, attempt_count, next_attempt_at, \
     processing_started_at, last_error, delivered_at, created_at";

/// An outbox row as SQLite returns it.
#[derive(FromRow)]
struct EventRow {
    id: String,
    event_type: String,
    payload: String,
    status: String,
    attempt_count: i64,
    next_attempt_at: i64,
    processing_started_at: Option<i64>,
    last_error: Option<String>,
    delivered_at: Option<i64>,
    created_at: i64,
}

impl EventRow {
    fn into_record(self) -> Result<EventRecord, StoreError> {
        Ok(EventRecord {
            id: parse_id(&self.id)?,
            event_type: self.event_type,
            payload: self.payload,
            status: EventStatus::parse(&self.status)
                .ok_or_else(|| StoreError::invalid("unknown outbox status in the database"))?,
            attempt_count: count(self.attempt_count)?,
            next_attempt_at: parse_time(self.next_attempt_at)?,
            processing_started_at: parse_opt_time(self.processing_started_at)?,
            last_error: self.last_error,
            delivered_at: parse_opt_time(self.delivered_at)?,
            created_at: parse_time(self.created_at)?,
        })
    }
}

/// A claimed row, with what it is ordered by.
#[derive(FromRow)]
struct ClaimRow {
    id: String,
    event_type: String,
    payload: String,
    attempt_count: i64,
    next_attempt_at: i64,
    created_at: i64,
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn claim_due_events(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<ClaimedEvent>, StoreError> {
        let mut rows = sqlx::query_as::<_, ClaimRow>(
            "UPDATE webhook_events \
             SET status = 'processing', processing_started_at = ?1, updated_at = ?1 \
             WHERE id IN ( \
                 SELECT id FROM webhook_events \
                 WHERE status = 'pending' AND next_attempt_at <= ?1 \
                 ORDER BY next_attempt_at, created_at, id \
                 LIMIT ?2) \
             RETURNING id, event_type, payload, attempt_count, next_attempt_at, created_at",
        )
        .bind(micros(now)?)
        .bind(i64::from(limit))
        .fetch_all(&self.writer)
        .await
        .map_err(map)?;
        // RETURNING keeps no order. Ids are hyphenated lowercase text, which sorts as the uuids.
        rows.sort_by(|a, b| {
            (a.next_attempt_at, a.created_at, &a.id).cmp(&(b.next_attempt_at, b.created_at, &b.id))
        });
        rows.into_iter()
            .map(|row| {
                Ok(ClaimedEvent {
                    id: parse_id(&row.id)?,
                    event_type: row.event_type,
                    payload: row.payload,
                    attempt_count: count(row.attempt_count)?,
                    created_at: parse_time(row.created_at)?,
                })
            })
            .collect()
    }

    async fn mark_event_delivered(
        &self,
        id: Uuid,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE webhook_events \
             SET status = 'delivered', delivered_at = ?2, attempt_count = attempt_count + 1, \
                 processing_started_at = NULL, updated_at = ?2 \
             WHERE id = ?1 AND status = 'processing'",
        )
        .bind(id_text(id))
        .bind(micros(now)?)
        .execute(&self.writer)
        .await
        .map_err(map)?;
        Ok(done.rows_affected() > 0)
    }

    async fn mark_event_attempt_failed(
        &self,
        id: Uuid,
        error: &str,
        retry_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE webhook_events \
             SET status = CASE WHEN ?3 IS NULL THEN 'failed' ELSE 'pending' END, \
                 next_attempt_at = COALESCE(?3, next_attempt_at), \
                 attempt_count = attempt_count + 1, last_error = ?2, \
                 processing_started_at = NULL, updated_at = ?4 \
             WHERE id = ?1 AND status = 'processing'",
        )
        .bind(id_text(id))
        .bind(error)
        .bind(retry_at.map(micros).transpose()?)
        .bind(micros(now)?)
        .execute(&self.writer)
        .await
        .map_err(map)?;
        Ok(done.rows_affected() > 0)
    }

    async fn requeue_stale_events(
        &self,
        stale_before: OffsetDateTime,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE webhook_events \
             SET status = 'pending', next_attempt_at = ?2, processing_started_at = NULL, \
                 updated_at = ?2 \
             WHERE id IN ( \
                 SELECT id FROM webhook_events \
                 WHERE status = 'processing' AND processing_started_at < ?1 \
                 ORDER BY processing_started_at, id \
                 LIMIT ?3)",
        )
        .bind(micros(stale_before)?)
        .bind(micros(now)?)
        .bind(i64::from(limit))
        .execute(&self.writer)
        .await
        .map_err(map)?;
        Ok(done.rows_affected())
    }

    async fn purge_events(
        &self,
        delivered_before: OffsetDateTime,
        failed_before: OffsetDateTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM webhook_events WHERE id IN ( \
                 SELECT id FROM webhook_events \
                 WHERE (status = 'delivered' AND updated_at < ?1) \
                    OR (status = 'failed' AND updated_at < ?2) \
                 ORDER BY updated_at, id \
                 LIMIT ?3)",
        )
        .bind(micros(delivered_before)?)
        .bind(micros(failed_before)?)
        .bind(i64::from(limit))
        .execute(&self.writer)
        .await
        .map_err(map)?;
        Ok(done.rows_affected())
    }

    async fn list_events(&self, limit: u32) -> Result<Vec<EventRecord>, StoreError> {
        sqlx::query_as::<_, EventRow>(&format!(
            "SELECT {EVENT_COLUMNS} FROM webhook_events ORDER BY created_at, id LIMIT ?1"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(map)?
        .into_iter()
        .map(EventRow::into_record)
        .collect()
    }
}

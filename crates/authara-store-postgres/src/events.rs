//! The outbox (`webhook_events`). Rows are appended by the writes that cause them (`effects`);
//! here they are claimed, settled, re-queued and purged. Claims lock with `FOR UPDATE SKIP
//! LOCKED`, so instances polling at once never claim the same row.

use async_trait::async_trait;
use authara_core::store::{ClaimedEvent, EventRecord, EventStatus, EventStore, StoreError};
use sqlx::FromRow;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::map;
use crate::rows::count;
use crate::PgStore;

/// The columns of [`EventRow`].
const EVENT_COLUMNS: &str = "id, event_type, payload, status, attempt_count, next_attempt_at, \
     processing_started_at, last_error, delivered_at, created_at";

/// An outbox row as PostgreSQL returns it.
#[derive(FromRow)]
struct EventRow {
    id: Uuid,
    event_type: String,
    payload: String,
    status: String,
    attempt_count: i32,
    next_attempt_at: OffsetDateTime,
    processing_started_at: Option<OffsetDateTime>,
    last_error: Option<String>,
    delivered_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
}

impl EventRow {
    fn into_record(self) -> Result<EventRecord, StoreError> {
        Ok(EventRecord {
            id: self.id,
            event_type: self.event_type,
            payload: self.payload,
            status: EventStatus::parse(&self.status)
                .ok_or_else(|| StoreError::invalid("unknown outbox status in the database"))?,
            attempt_count: count(self.attempt_count)?,
            next_attempt_at: self.next_attempt_at,
            processing_started_at: self.processing_started_at,
            last_error: self.last_error,
            delivered_at: self.delivered_at,
            created_at: self.created_at,
        })
    }
}

/// A claimed row, with what it is ordered by.
#[derive(FromRow)]
struct ClaimRow {
    id: Uuid,
    event_type: String,
    payload: String,
    attempt_count: i32,
    next_attempt_at: OffsetDateTime,
    created_at: OffsetDateTime,
}

#[async_trait]
impl EventStore for PgStore {
    async fn claim_due_events(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<ClaimedEvent>, StoreError> {
        // One statement. The subquery locks the rows it picks and skips those another claimer
        // holds; a row another claimer changed and committed since this statement's snapshot is
        // re-checked against the newest version when locked, and no longer pending, dropped.
        let mut rows = sqlx::query_as::<_, ClaimRow>(
            "UPDATE webhook_events \
             SET status = 'processing', processing_started_at = $1, updated_at = $1 \
             WHERE status = 'pending' AND id IN ( \
                 SELECT id FROM webhook_events \
                 WHERE status = 'pending' AND next_attempt_at <= $1 \
                 ORDER BY next_attempt_at, created_at, id \
                 LIMIT $2 \
                 FOR UPDATE SKIP LOCKED) \
             RETURNING id, event_type, payload, attempt_count, next_attempt_at, created_at",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        // RETURNING keeps no order.
        rows.sort_by(|a, b| {
            (a.next_attempt_at, a.created_at, a.id).cmp(&(b.next_attempt_at, b.created_at, b.id))
        });
        rows.into_iter()
            .map(|row| {
                Ok(ClaimedEvent {
                    id: row.id,
                    event_type: row.event_type,
                    payload: row.payload,
                    attempt_count: count(row.attempt_count)?,
                    created_at: row.created_at,
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
             SET status = 'delivered', delivered_at = $2, attempt_count = attempt_count + 1, \
                 processing_started_at = NULL, updated_at = $2 \
             WHERE id = $1 AND status = 'processing'",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
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
             SET status = CASE WHEN $3::timestamptz IS NULL THEN 'failed' ELSE 'pending' END, \
                 next_attempt_at = COALESCE($3, next_attempt_at), \
                 attempt_count = attempt_count + 1, last_error = $2, \
                 processing_started_at = NULL, updated_at = $4 \
             WHERE id = $1 AND status = 'processing'",
        )
        .bind(id)
        .bind(error)
        .bind(retry_at)
        .bind(now)
        .execute(&self.pool)
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
             SET status = 'pending', next_attempt_at = $2, processing_started_at = NULL, \
                 updated_at = $2 \
             WHERE status = 'processing' AND id IN ( \
                 SELECT id FROM webhook_events \
                 WHERE status = 'processing' AND processing_started_at < $1 \
                 ORDER BY processing_started_at, id \
                 LIMIT $3 \
                 FOR UPDATE SKIP LOCKED)",
        )
        .bind(stale_before)
        .bind(now)
        .bind(i64::from(limit))
        .execute(&self.pool)
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
                 WHERE (status = 'delivered' AND updated_at < $1) \
                    OR (status = 'failed' AND updated_at < $2) \
                 ORDER BY updated_at, id \
                 LIMIT $3 \
                 FOR UPDATE SKIP LOCKED)",
        )
        .bind(delivered_before)
        .bind(failed_before)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await
        .map_err(map)?;
        Ok(done.rows_affected())
    }

    async fn list_events(&self, limit: u32) -> Result<Vec<EventRecord>, StoreError> {
        sqlx::query_as::<_, EventRow>(&format!(
            "SELECT {EVENT_COLUMNS} FROM webhook_events ORDER BY created_at, id LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map)?
        .into_iter()
        .map(EventRow::into_record)
        .collect()
    }
}

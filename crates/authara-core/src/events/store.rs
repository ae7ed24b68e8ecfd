//! The outbox aggregate: events appended by the store writes that cause them (through
//! [`crate::store::Effects`]), then claimed, delivered and cleaned up by the webhook workers.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::store::StoreError;

/// An outbox row a worker has claimed (`status = 'processing'`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedEvent {
    /// The envelope id, also `X-Authara-Delivery`.
    pub id: Uuid,
    /// The stored wire name (`X-Authara-Event`).
    pub event_type: String,
    /// The serialised envelope: the exact body sent and signed on every attempt.
    pub payload: String,
    /// Attempts made before this claim (0 on the first).
    pub attempt_count: u32,
    pub created_at: OffsetDateTime,
}

/// Where an outbox row stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventStatus {
    Pending,
    Processing,
    Delivered,
    Failed,
}

impl EventStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    /// The status with this stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Processing,
            Self::Delivered,
            Self::Failed,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// An outbox row as stored, for tests and the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    pub id: Uuid,
    pub event_type: String,
    pub payload: String,
    pub status: EventStatus,
    pub attempt_count: u32,
    pub next_attempt_at: OffsetDateTime,
    pub processing_started_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    pub delivered_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

/// The outbox. Appending happens only through the write methods of the other aggregates
/// (their `Effects`), so that an event exists iff its change committed.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Claims up to `limit` pending rows due at `now` (`next_attempt_at <= now`), ordered by
    /// `next_attempt_at, created_at, id`, setting them `processing` with
    /// `processing_started_at = now` (set only while a row is processing: every way out of
    /// `processing` clears it). On PostgreSQL `FOR UPDATE SKIP LOCKED`: concurrent
    /// claimers (other instances) never get the same row.
    async fn claim_due_events(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<ClaimedEvent>, StoreError>;

    /// A processing row was delivered: `delivered`, `delivered_at = now`, attempt counted.
    /// False when the row is not (or no longer) processing.
    async fn mark_event_delivered(&self, id: Uuid, now: OffsetDateTime)
        -> Result<bool, StoreError>;

    /// A processing row failed this attempt. With `retry_at` it goes back to `pending` due then;
    /// without, it is final (`failed`). The attempt is counted and `error` (bounded by the
    /// caller, never a secret) kept as `last_error`. False when the row is not processing.
    async fn mark_event_attempt_failed(
        &self,
        id: Uuid,
        error: &str,
        retry_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Re-queues up to `limit` rows `processing` since before `stale_before` (a worker died
    /// holding them): back to `pending`, due `now`, the attempt not counted (its outcome is
    /// unknown). Returns how many.
    async fn requeue_stale_events(
        &self,
        stale_before: OffsetDateTime,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<u64, StoreError>;

    /// Deletes up to `limit` rows delivered before `delivered_before` or failed before
    /// `failed_before` (by `updated_at`). One batch per call; returns how many.
    async fn purge_events(
        &self,
        delivered_before: OffsetDateTime,
        failed_before: OffsetDateTime,
        limit: u32,
    ) -> Result<u64, StoreError>;

    /// Every outbox row, oldest first (tests, diagnostics).
    async fn list_events(&self, limit: u32) -> Result<Vec<EventRecord>, StoreError>;
}

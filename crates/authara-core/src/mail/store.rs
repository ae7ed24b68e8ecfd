//! The email outbox: jobs queued by the store writes that cause them (a challenge's code, a
//! notice), then claimed, sent and cleaned up by the email workers. Same life cycle as the
//! webhook outbox ([`crate::events::store`]).

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::store::StoreError;

/// A job a worker has claimed (`status = 'processing'`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedEmail {
    pub id: Uuid,
    /// The challenge whose code this job carries (the worker mints the code when it sends).
    pub challenge_id: Option<Uuid>,
    pub to_email: String,
    /// Upstream's template name (`signup_code`, `password_reset_code`, ...).
    pub template: String,
    /// A JSON object.
    pub template_data: String,
    /// Attempts made before this claim (0 on the first).
    pub attempt_count: u32,
    pub created_at: OffsetDateTime,
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailStatus {
    Pending,
    Processing,
    Sent,
    Failed,
}

impl EmailStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }

    /// The status with this stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Processing, Self::Sent, Self::Failed]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// A job as stored, for tests and diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailRecord {
    pub id: Uuid,
    pub challenge_id: Option<Uuid>,
    pub to_email: String,
    pub template: String,
    pub template_data: String,
    pub status: EmailStatus,
    pub attempt_count: u32,
    pub next_attempt_at: OffsetDateTime,
    pub processing_started_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    pub sent_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
}

/// The email outbox. Jobs are appended only by the writes that cause them
/// ([`crate::challenge::store::ChallengeStore`]), so a job exists iff its change committed.
#[async_trait]
pub trait EmailStore: Send + Sync + 'static {
    /// Claims up to `limit` pending jobs due at `now`, ordered by `next_attempt_at, created_at,
    /// id`, setting them `processing` with `processing_started_at = now`. On PostgreSQL
    /// `FOR UPDATE SKIP LOCKED`: concurrent claimers never get the same job.
    async fn claim_due_emails(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<ClaimedEmail>, StoreError>;

    /// A processing job was sent: `sent`, `sent_at = now`, attempt counted. False when the job
    /// is not (or no longer) processing.
    async fn mark_email_sent(&self, id: Uuid, now: OffsetDateTime) -> Result<bool, StoreError>;

    /// A processing job failed this attempt. With `retry_at` it goes back to `pending` due then;
    /// without, it is final (`failed`). The attempt is counted and `error` (bounded, never a
    /// secret) kept as `last_error`. False when the job is not processing.
    async fn mark_email_attempt_failed(
        &self,
        id: Uuid,
        error: &str,
        retry_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Re-queues up to `limit` jobs `processing` since before `stale_before` (a worker died
    /// holding them): back to `pending`, due `now`, the attempt not counted. Returns how many.
    async fn requeue_stale_emails(
        &self,
        stale_before: OffsetDateTime,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<u64, StoreError>;

    /// Deletes up to `limit` jobs sent before `sent_before` or failed before `failed_before`
    /// (by `updated_at`). Returns how many.
    async fn purge_emails(
        &self,
        sent_before: OffsetDateTime,
        failed_before: OffsetDateTime,
        limit: u32,
    ) -> Result<u64, StoreError>;

    /// Every job, oldest first (tests, diagnostics).
    async fn list_emails(&self, limit: u32) -> Result<Vec<EmailRecord>, StoreError>;
}

//! The email outbox (`email_jobs`). Jobs are appended by the challenge writes that cause them
//! ([`insert_email_job`], on the write's own transaction); here they are claimed, settled,
//! re-queued and purged, as the webhook outbox is (`events`). Claims lock with `FOR UPDATE SKIP
//! LOCKED`, so instances polling at once never claim the same job.

use async_trait::async_trait;
use authara_core::store::{ClaimedEmail, EmailRecord, EmailStatus, EmailStore, StoreError};
use sqlx::postgres::PgConnection;
use sqlx::FromRow;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::map;
use crate::rows::count;
use crate::PgStore;

/// The columns of [`EmailRow`].
const EMAIL_COLUMNS: &str = "id, challenge_id, to_email, template, template_data, status, \
     attempt_count, next_attempt_at, processing_started_at, last_error, sent_at, created_at";

/// A job to append, pending and due at `at`.
pub(crate) struct NewEmailJob<'a> {
    pub(crate) id: Uuid,
    pub(crate) challenge_id: Option<Uuid>,
    pub(crate) to_email: &'a str,
    pub(crate) template: &'a str,
    pub(crate) template_data: &'a str,
    pub(crate) at: OffsetDateTime,
}

/// Appends `job` on `conn`, inside the transaction of the write that causes it.
pub(crate) async fn insert_email_job(
    conn: &mut PgConnection,
    job: &NewEmailJob<'_>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO email_jobs \
             (id, challenge_id, to_email, template, template_data, status, attempt_count, \
              next_attempt_at, processing_started_at, last_error, sent_at, created_at, \
              updated_at) \
         VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, NULL, NULL, NULL, $6, $6)",
    )
    .bind(job.id)
    .bind(job.challenge_id)
    .bind(job.to_email)
    .bind(job.template)
    .bind(job.template_data)
    .bind(job.at)
    .execute(conn)
    .await
    .map_err(map)?;
    Ok(())
}

/// A job as PostgreSQL returns it.
#[derive(FromRow)]
struct EmailRow {
    id: Uuid,
    challenge_id: Option<Uuid>,
    to_email: String,
    template: String,
    template_data: String,
    status: String,
    attempt_count: i32,
    next_attempt_at: OffsetDateTime,
    processing_started_at: Option<OffsetDateTime>,
    last_error: Option<String>,
    sent_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
}

impl EmailRow {
    fn into_record(self) -> Result<EmailRecord, StoreError> {
        Ok(EmailRecord {
            id: self.id,
            challenge_id: self.challenge_id,
            to_email: self.to_email,
            template: self.template,
            template_data: self.template_data,
            status: EmailStatus::parse(&self.status)
                .ok_or_else(|| StoreError::invalid("unknown email job status in the database"))?,
            attempt_count: count(self.attempt_count)?,
            next_attempt_at: self.next_attempt_at,
            processing_started_at: self.processing_started_at,
            last_error: self.last_error,
            sent_at: self.sent_at,
            created_at: self.created_at,
        })
    }
}

/// A claimed job, with what it is ordered by.
#[derive(FromRow)]
struct ClaimRow {
    id: Uuid,
    challenge_id: Option<Uuid>,
    to_email: String,
    template: String,
    template_data: String,
    attempt_count: i32,
    next_attempt_at: OffsetDateTime,
    created_at: OffsetDateTime,
}

#[async_trait]
impl EmailStore for PgStore {
    async fn claim_due_emails(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<ClaimedEmail>, StoreError> {
        // One statement. The subquery locks the jobs it picks and skips those another claimer
        // holds; a job another claimer changed and committed since this statement's snapshot is
        // re-checked against the newest version when locked, and no longer pending, dropped.
        let mut rows = sqlx::query_as::<_, ClaimRow>(
            "UPDATE email_jobs \
             SET status = 'processing', processing_started_at = $1, updated_at = $1 \
             WHERE status = 'pending' AND id IN ( \
                 SELECT id FROM email_jobs \
                 WHERE status = 'pending' AND next_attempt_at <= $1 \
                 ORDER BY next_attempt_at, created_at, id \
                 LIMIT $2 \
                 FOR UPDATE SKIP LOCKED) \
             RETURNING id, challenge_id, to_email, template, template_data, attempt_count, \
                 next_attempt_at, created_at",
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
                Ok(ClaimedEmail {
                    id: row.id,
                    challenge_id: row.challenge_id,
                    to_email: row.to_email,
                    template: row.template,
                    template_data: row.template_data,
                    attempt_count: count(row.attempt_count)?,
                    created_at: row.created_at,
                })
            })
            .collect()
    }

    async fn mark_email_sent(&self, id: Uuid, now: OffsetDateTime) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE email_jobs \
             SET status = 'sent', sent_at = $2, attempt_count = attempt_count + 1, \
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

    async fn mark_email_attempt_failed(
        &self,
        id: Uuid,
        error: &str,
        retry_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE email_jobs \
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

    async fn requeue_stale_emails(
        &self,
        stale_before: OffsetDateTime,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE email_jobs \
             SET status = 'pending', next_attempt_at = $2, processing_started_at = NULL, \
                 updated_at = $2 \
             WHERE status = 'processing' AND id IN ( \
                 SELECT id FROM email_jobs \
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

    async fn purge_emails(
        &self,
        sent_before: OffsetDateTime,
        failed_before: OffsetDateTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM email_jobs WHERE id IN ( \
                 SELECT id FROM email_jobs \
                 WHERE (status = 'sent' AND updated_at < $1) \
                    OR (status = 'failed' AND updated_at < $2) \
                 ORDER BY updated_at, id \
                 LIMIT $3 \
                 FOR UPDATE SKIP LOCKED)",
        )
        .bind(sent_before)
        .bind(failed_before)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await
        .map_err(map)?;
        Ok(done.rows_affected())
    }

    async fn list_emails(&self, limit: u32) -> Result<Vec<EmailRecord>, StoreError> {
        sqlx::query_as::<_, EmailRow>(&format!(
            "SELECT {EMAIL_COLUMNS} FROM email_jobs ORDER BY created_at, id LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map)?
        .into_iter()
        .map(EmailRow::into_record)
        .collect()
    }
}

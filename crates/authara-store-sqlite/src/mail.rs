//! The email outbox (`email_jobs`). Jobs are appended by the challenge writes that cause them
//! ([`insert_email_job`], on the write's own transaction); here they are claimed, settled,
//! re-queued and purged, as the webhook outbox is (`events`). Every statement runs on the one
//! writer connection, so claims are serialised: two claimers never get the same job.

use async_trait::async_trait;
use authara_core::store::{ClaimedEmail, EmailRecord, EmailStatus, EmailStore, StoreError};
use sqlx::sqlite::SqliteConnection;
use sqlx::FromRow;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::map;
use crate::rows::{count, id_text, micros, parse_id, parse_opt_time, parse_time};
use crate::SqliteStore;

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
    conn: &mut SqliteConnection,
    job: &NewEmailJob<'_>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO email_jobs \
             (id, challenge_id, to_email, template, template_data, status, attempt_count, \
              next_attempt_at, processing_started_at, last_error, sent_at, created_at, \
              updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6, NULL, NULL, NULL, ?6, ?6)",
    )
    .bind(id_text(job.id))
    .bind(job.challenge_id.map(id_text))
    .bind(job.to_email)
    .bind(job.template)
    .bind(job.template_data)
    .bind(micros(job.at)?)
    .execute(conn)
    .await
    .map_err(map)?;
    Ok(())
}

/// A job as SQLite returns it.
#[derive(FromRow)]
struct EmailRow {
    id: String,
    challenge_id: Option<String>,
    to_email: String,
    template: String,
    template_data: String,
    status: String,
    attempt_count: i64,
    next_attempt_at: i64,
    processing_started_at: Option<i64>,
    last_error: Option<String>,
    sent_at: Option<i64>,
    created_at: i64,
}

impl EmailRow {
    fn into_record(self) -> Result<EmailRecord, StoreError> {
        Ok(EmailRecord {
            id: parse_id(&self.id)?,
            challenge_id: self.challenge_id.as_deref().map(parse_id).transpose()?,
            to_email: self.to_email,
            template: self.template,
            template_data: self.template_data,
            status: EmailStatus::parse(&self.status)
                .ok_or_else(|| StoreError::invalid("unknown email job status in the database"))?,
            attempt_count: count(self.attempt_count)?,
            next_attempt_at: parse_time(self.next_attempt_at)?,
            processing_started_at: parse_opt_time(self.processing_started_at)?,
            last_error: self.last_error,
            sent_at: parse_opt_time(self.sent_at)?,
            created_at: parse_time(self.created_at)?,
        })
    }
}

/// A claimed job, with what it is ordered by.
#[derive(FromRow)]
struct ClaimRow {
    id: String,
    challenge_id: Option<String>,
    to_email: String,
    template: String,
    template_data: String,
    attempt_count: i64,
    next_attempt_at: i64,
    created_at: i64,
}

#[async_trait]
impl EmailStore for SqliteStore {
    async fn claim_due_emails(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<ClaimedEmail>, StoreError> {
        let mut rows = sqlx::query_as::<_, ClaimRow>(
            "UPDATE email_jobs \
             SET status = 'processing', processing_started_at = ?1, updated_at = ?1 \
             WHERE id IN ( \
                 SELECT id FROM email_jobs \
                 WHERE status = 'pending' AND next_attempt_at <= ?1 \
                 ORDER BY next_attempt_at, created_at, id \
                 LIMIT ?2) \
             RETURNING id, challenge_id, to_email, template, template_data, attempt_count, \
                 next_attempt_at, created_at",
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
                Ok(ClaimedEmail {
                    id: parse_id(&row.id)?,
                    challenge_id: row.challenge_id.as_deref().map(parse_id).transpose()?,
                    to_email: row.to_email,
                    template: row.template,
                    template_data: row.template_data,
                    attempt_count: count(row.attempt_count)?,
                    created_at: parse_time(row.created_at)?,
                })
            })
            .collect()
    }

    async fn mark_email_sent(&self, id: Uuid, now: OffsetDateTime) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE email_jobs \
             SET status = 'sent', sent_at = ?2, attempt_count = attempt_count + 1, \
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

    async fn mark_email_attempt_failed(
        &self,
        id: Uuid,
        error: &str,
        retry_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE email_jobs \
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

    async fn requeue_stale_emails(
        &self,
        stale_before: OffsetDateTime,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE email_jobs \
             SET status = 'pending', next_attempt_at = ?2, processing_started_at = NULL, \
                 updated_at = ?2 \
             WHERE id IN ( \
                 SELECT id FROM email_jobs \
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

    async fn purge_emails(
        &self,
        sent_before: OffsetDateTime,
        failed_before: OffsetDateTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM email_jobs WHERE id IN ( \
                 SELECT id FROM email_jobs \
                 WHERE (status = 'sent' AND updated_at < ?1) \
                    OR (status = 'failed' AND updated_at < ?2) \
                 ORDER BY updated_at, id \
                 LIMIT ?3)",
        )
        .bind(micros(sent_before)?)
        .bind(micros(failed_before)?)
        .bind(i64::from(limit))
        .execute(&self.writer)
        .await
        .map_err(map)?;
        Ok(done.rows_affected())
    }

    async fn list_emails(&self, limit: u32) -> Result<Vec<EmailRecord>, StoreError> {
        sqlx::query_as::<_, EmailRow>(&format!(
            "SELECT {EMAIL_COLUMNS} FROM email_jobs ORDER BY created_at, id LIMIT ?1"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(map)?
        .into_iter()
        .map(EmailRow::into_record)
        .collect()
    }
}

//! The email outbox (`email_jobs`). Jobs are appended by the challenge writes that cause them
//! ([`insert_email_job`], on the write's own transaction); they are claimed, settled, re-queued
//! and purged by the life cycle of `outbox`, as the webhook outbox is.

use authara_core::store::{ClaimedEmail, EmailRecord, EmailStatus, EmailStore, StoreError};
use sqlx::postgres::PgConnection;
use sqlx::FromRow;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::map;
use crate::outbox::{impl_outbox_store, outbox_claimed, outbox_record, Claimed, Listed, Outbox};

/// A sent job ends `sent`, stamped `sent_at`.
const EMAILS: Outbox = Outbox::new(
    "email_jobs",
    "sent",
    "sent_at",
    "challenge_id, to_email, template, template_data",
);

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

/// The columns of `email_jobs` besides the life cycle's: the message to send.
#[derive(FromRow)]
struct Message {
    challenge_id: Option<Uuid>,
    to_email: String,
    template: String,
    template_data: String,
}

fn claimed_email(claim: Claimed<Message>) -> Result<ClaimedEmail, StoreError> {
    Ok(outbox_claimed!(ClaimedEmail from claim; challenge_id, to_email, template, template_data))
}

fn email_record(row: Listed<EmailStatus, Message>) -> Result<EmailRecord, StoreError> {
    Ok(outbox_record!(EmailRecord from row, sent_at;
        challenge_id, to_email, template, template_data))
}

impl_outbox_store!(
    EmailStore, EMAILS, claim_due_emails -> ClaimedEmail = claimed_email,
    mark_email_sent, mark_email_attempt_failed, requeue_stale_emails, purge_emails,
    list_emails -> EmailRecord = email_record, EmailStatus,
);

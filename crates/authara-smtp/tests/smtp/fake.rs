//! An in-memory outbox and challenge table with the traits' semantics for what the email
//! workers call (`claim_due_emails` … `purge_emails`, `set_challenge_code`, `purge_challenges`),
//! every call atomic under one lock. The real backends are covered by the conformance suite;
//! the challenge methods the workers never call answer `Unavailable`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use authara_core::challenge::store::{
    Attempt, ChallengeRecord, ChallengeStore, CodeRecord, Completed, Completion, NewChallenge,
    PendingAction, Purpose, Resend,
};
use authara_core::mail::{ClaimedEmail, EmailRecord, EmailStatus, EmailStore};
use authara_core::store::StoreError;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone)]
struct Row {
    record: EmailRecord,
    updated_at: OffsetDateTime,
}

#[derive(Debug, Default)]
struct Tables {
    emails: Vec<Row>,
    challenges: HashMap<Uuid, ChallengeRecord>,
    codes: HashMap<Uuid, CodeRecord>,
}

/// The fake.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
    /// How many times `purge_emails` was called.
    pub purge_email_calls: AtomicU64,
    /// How many times `purge_challenges` was called, and the last `before`.
    pub purge_challenge_calls: AtomicU64,
    pub purged_challenges_before: Mutex<Option<OffsetDateTime>>,
}

impl MemoryStore {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A live (unless `expires_at` is past) challenge of `purpose` to `email`; opaque when
    /// `opaque`. Returns its id.
    pub fn add_challenge(
        &self,
        purpose: Purpose,
        email: &str,
        created_at: OffsetDateTime,
        expires_at: OffsetDateTime,
        opaque: bool,
    ) -> Uuid {
        let id = Uuid::new_v4();
        let action = if opaque {
            PendingAction::Opaque
        } else {
            PendingAction::Signup {
                email: email.to_owned(),
                password_hash: "$argon2id$fake".to_owned(),
            }
        };
        let record = ChallengeRecord {
            id,
            purpose,
            email: email.to_owned(),
            action,
            attempt_count: 0,
            max_attempts: 5,
            resend_count: 0,
            max_resends: 3,
            last_sent_at: created_at,
            created_at,
            expires_at,
            consumed_at: None,
        };
        self.tables.lock().unwrap().challenges.insert(id, record);
        id
    }

    /// Queues a pending job due at `at`; returns its id.
    pub fn queue(
        &self,
        challenge_id: Option<Uuid>,
        to: &str,
        template: &str,
        data: &str,
        at: OffsetDateTime,
    ) -> Uuid {
        let id = Uuid::new_v4();
        let record = EmailRecord {
            id,
            challenge_id,
            to_email: to.to_owned(),
            template: template.to_owned(),
            template_data: data.to_owned(),
            status: EmailStatus::Pending,
            attempt_count: 0,
            next_attempt_at: at,
            processing_started_at: None,
            last_error: None,
            sent_at: None,
            created_at: at,
        };
        self.insert(record, at);
        id
    }

    /// A live challenge of `purpose` and its code job, as `create_challenge` stores them.
    pub fn challenge_with_job(
        &self,
        purpose: Purpose,
        email: &str,
        now: OffsetDateTime,
        ttl: time::Duration,
    ) -> (Uuid, Uuid) {
        let challenge = self.add_challenge(purpose, email, now, now + ttl, false);
        let job = self.queue(Some(challenge), email, purpose.template(), "{}", now);
        (challenge, job)
    }

    /// Inserts a job as it is, last changed at `updated_at`.
    pub fn insert(&self, record: EmailRecord, updated_at: OffsetDateTime) {
        self.tables
            .lock()
            .unwrap()
            .emails
            .push(Row { record, updated_at });
    }

    pub fn job(&self, id: Uuid) -> EmailRecord {
        self.tables
            .lock()
            .unwrap()
            .emails
            .iter()
            .find(|r| r.record.id == id)
            .map(|r| r.record.clone())
            .unwrap()
    }

    pub fn jobs(&self) -> Vec<EmailRecord> {
        let t = self.tables.lock().unwrap();
        t.emails.iter().map(|r| r.record.clone()).collect()
    }

    pub fn code(&self, challenge: Uuid) -> Option<CodeRecord> {
        self.tables.lock().unwrap().codes.get(&challenge).cloned()
    }

    pub fn has_challenge(&self, id: Uuid) -> bool {
        self.tables.lock().unwrap().challenges.contains_key(&id)
    }
}

fn absent() -> StoreError {
    StoreError::invalid("not part of the test fake")
}

#[async_trait]
impl ChallengeStore for MemoryStore {
    async fn create_challenge(&self, _: NewChallenge) -> Result<(), StoreError> {
        Err(absent())
    }

    async fn find_challenge(&self, id: Uuid) -> Result<Option<ChallengeRecord>, StoreError> {
        Ok(self.tables.lock().unwrap().challenges.get(&id).cloned())
    }

    async fn begin_challenge_attempt(
        &self,
        _: Uuid,
        _: OffsetDateTime,
    ) -> Result<Attempt, StoreError> {
        Err(absent())
    }

    async fn complete_challenge(
        &self,
        _: Uuid,
        _: OffsetDateTime,
        _: Completion,
    ) -> Result<Completed, StoreError> {
        Err(absent())
    }

    async fn resend_challenge(
        &self,
        _: Uuid,
        _: OffsetDateTime,
        _: time::Duration,
        _: Uuid,
    ) -> Result<Resend, StoreError> {
        Err(absent())
    }

    async fn set_challenge_code(
        &self,
        id: Uuid,
        code_mac: &str,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Option<ChallengeRecord>, StoreError> {
        let mut t = self.tables.lock().unwrap();
        let Some(c) = t.challenges.get(&id).cloned() else {
            return Ok(None);
        };
        if !c.is_live(now) || c.action == PendingAction::Opaque {
            return Ok(None);
        }
        t.codes.insert(
            id,
            CodeRecord {
                code_mac: code_mac.to_owned(),
                expires_at: expires_at.min(c.expires_at),
            },
        );
        Ok(Some(c))
    }

    async fn purge_challenges(
        &self,
        before: OffsetDateTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.purge_challenge_calls.fetch_add(1, Ordering::SeqCst);
        *self.purged_challenges_before.lock().unwrap() = Some(before);
        let mut t = self.tables.lock().unwrap();
        let old: Vec<Uuid> = t
            .challenges
            .values()
            .filter(|c| c.expires_at < before || c.consumed_at.is_some_and(|at| at < before))
            .map(|c| c.id)
            .take(limit as usize)
            .collect();
        for id in &old {
            t.challenges.remove(id);
            t.codes.remove(id);
        }
        Ok(old.len() as u64)
    }
}

#[async_trait]
impl EmailStore for MemoryStore {
    async fn claim_due_emails(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<ClaimedEmail>, StoreError> {
        let mut t = self.tables.lock().unwrap();
        let mut due: Vec<&mut Row> = t
            .emails
            .iter_mut()
            .filter(|r| r.record.status == EmailStatus::Pending && r.record.next_attempt_at <= now)
            .collect();
        due.sort_by_key(|r| (r.record.next_attempt_at, r.record.created_at, r.record.id));
        Ok(due
            .into_iter()
            .take(limit as usize)
            .map(|r| {
                r.record.status = EmailStatus::Processing;
                r.record.processing_started_at = Some(now);
                r.updated_at = now;
                ClaimedEmail {
                    id: r.record.id,
                    challenge_id: r.record.challenge_id,
                    to_email: r.record.to_email.clone(),
                    template: r.record.template.clone(),
                    template_data: r.record.template_data.clone(),
                    attempt_count: r.record.attempt_count,
                    created_at: r.record.created_at,
                }
            })
            .collect())
    }

    async fn mark_email_sent(&self, id: Uuid, now: OffsetDateTime) -> Result<bool, StoreError> {
        let mut t = self.tables.lock().unwrap();
        let Some(r) = t
            .emails
            .iter_mut()
            .find(|r| r.record.id == id && r.record.status == EmailStatus::Processing)
        else {
            return Ok(false);
        };
        r.record.status = EmailStatus::Sent;
        r.record.attempt_count += 1;
        r.record.sent_at = Some(now);
        r.record.processing_started_at = None;
        r.updated_at = now;
        Ok(true)
    }

    async fn mark_email_attempt_failed(
        &self,
        id: Uuid,
        error: &str,
        retry_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut t = self.tables.lock().unwrap();
        let Some(r) = t
            .emails
            .iter_mut()
            .find(|r| r.record.id == id && r.record.status == EmailStatus::Processing)
        else {
            return Ok(false);
        };
        r.record.attempt_count += 1;
        r.record.last_error = Some(error.to_owned());
        r.record.processing_started_at = None;
        match retry_at {
            Some(at) => {
                r.record.status = EmailStatus::Pending;
                r.record.next_attempt_at = at;
            }
            None => r.record.status = EmailStatus::Failed,
        }
        r.updated_at = now;
        Ok(true)
    }

    async fn requeue_stale_emails(
        &self,
        stale_before: OffsetDateTime,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        let mut t = self.tables.lock().unwrap();
        let mut n = 0;
        for r in t.emails.iter_mut() {
            if n == u64::from(limit) {
                break;
            }
            if r.record.status == EmailStatus::Processing
                && r.record
                    .processing_started_at
                    .is_some_and(|at| at < stale_before)
            {
                r.record.status = EmailStatus::Pending;
                r.record.next_attempt_at = now;
                r.record.processing_started_at = None;
                r.updated_at = now;
                n += 1;
            }
        }
        Ok(n)
    }

    async fn purge_emails(
        &self,
        sent_before: OffsetDateTime,
        failed_before: OffsetDateTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.purge_email_calls.fetch_add(1, Ordering::SeqCst);
        let mut t = self.tables.lock().unwrap();
        let mut n = 0;
        t.emails.retain(|r| {
            let old = match r.record.status {
                EmailStatus::Sent => r.updated_at < sent_before,
                EmailStatus::Failed => r.updated_at < failed_before,
                _ => false,
            };
            if old && n < u64::from(limit) {
                n += 1;
                false
            } else {
                true
            }
        });
        Ok(n)
    }

    async fn list_emails(&self, limit: u32) -> Result<Vec<EmailRecord>, StoreError> {
        let mut all = self.jobs();
        all.sort_by_key(|r| (r.created_at, r.id));
        all.truncate(limit as usize);
        Ok(all)
    }
}

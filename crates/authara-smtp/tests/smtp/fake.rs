//! The email workers' store: the shared in-memory outbox (`authara-webhook`'s
//! `tests/webhook/outbox.rs`) for the jobs, and a challenge table with the trait's semantics for
//! what the workers call (`set_challenge_code`, `purge_challenges`), every call atomic under one
//! lock. The real backends are covered by the conformance suite; the challenge methods the
//! workers never call answer `Unavailable`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use authara_core::challenge::store::{
    Attempt, ChallengeRecord, ChallengeStore, CodeRecord, Completed, Completion, NewChallenge,
    PendingAction, Purpose, Resend,
};
use authara_core::mail::{EmailRecord, EmailStatus};
use authara_core::store::{
    AcceptEffects, Accepted, Effects, InvitationRecord, InvitationStore, Invited, NewInvitation,
    NewUser, ResendEffects, Resent, RevokeEffects, Revoked, StoreError, StoredInvitation,
};
use authara_smtp::MailStore;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::outbox::MemoryOutbox;

#[derive(Debug, Default)]
struct Challenges {
    challenges: HashMap<Uuid, ChallengeRecord>,
    codes: HashMap<Uuid, CodeRecord>,
    invitations: HashMap<Uuid, StoredInvitation>,
}

/// The fake.
#[derive(Debug)]
pub struct MemoryStore {
    /// The email jobs.
    pub emails: Arc<MemoryOutbox<EmailRecord>>,
    tables: Mutex<Challenges>,
    /// How many times `purge_challenges` was called, and the last `before`.
    pub purge_challenge_calls: AtomicU64,
    pub purged_challenges_before: Mutex<Option<OffsetDateTime>>,
}

impl MemoryStore {
    /// Stores (or replaces) an invitation, as the worker reads it.
    pub fn put_invitation(&self, invitation: StoredInvitation) {
        let mut t = self.tables.lock().unwrap();
        t.invitations.insert(invitation.invitation.id, invitation);
    }

    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            emails: MemoryOutbox::new(),
            tables: Mutex::default(),
            purge_challenge_calls: AtomicU64::new(0),
            purged_challenges_before: Mutex::new(None),
        })
    }

    /// Both aggregates, as the workers take them.
    pub fn mail_store(self: &Arc<Self>) -> MailStore {
        MailStore {
            challenges: self.clone(),
            outbox: self.emails.clone(),
            invitations: self.clone(),
        }
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
                invitation_id: None,
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
        self.emails.insert(record, at);
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

    pub fn job(&self, id: Uuid) -> EmailRecord {
        self.emails.get(id)
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

/// The worker only reads invitations: the other methods are the server's, and refuse here.
#[async_trait]
impl InvitationStore for MemoryStore {
    async fn create_invitation(
        &self,
        _: NewInvitation,
        _: OffsetDateTime,
        _: Effects,
    ) -> Result<Invited, StoreError> {
        Err(StoreError::invalid("the mail worker creates no invitation"))
    }
    async fn find_invitation(&self, id: Uuid) -> Result<Option<StoredInvitation>, StoreError> {
        Ok(self.tables.lock().unwrap().invitations.get(&id).cloned())
    }
    async fn find_invitation_by_token(
        &self,
        _: &str,
    ) -> Result<Option<StoredInvitation>, StoreError> {
        Err(StoreError::invalid("the mail worker looks no token up"))
    }
    async fn list_invitations(&self, _: Uuid) -> Result<Vec<InvitationRecord>, StoreError> {
        Err(StoreError::invalid("the mail worker lists no invitation"))
    }
    async fn revoke_invitation(
        &self,
        _: Uuid,
        _: Uuid,
        _: Option<Uuid>,
        _: OffsetDateTime,
        _: RevokeEffects,
    ) -> Result<Revoked, StoreError> {
        Err(StoreError::invalid("the mail worker revokes no invitation"))
    }
    async fn resend_invitation(
        &self,
        _: Uuid,
        _: Uuid,
        _: Option<Uuid>,
        _: NewInvitation,
        _: OffsetDateTime,
        _: ResendEffects,
    ) -> Result<Resent, StoreError> {
        Err(StoreError::invalid("the mail worker resends no invitation"))
    }
    async fn accept_invitation(
        &self,
        _: &str,
        _: Uuid,
        _: OffsetDateTime,
        _: AcceptEffects,
    ) -> Result<Accepted, StoreError> {
        Err(StoreError::invalid("the mail worker accepts no invitation"))
    }
    async fn signup_with_invitation(
        &self,
        _: &str,
        _: NewUser,
        _: bool,
        _: OffsetDateTime,
        _: Effects,
        _: AcceptEffects,
    ) -> Result<Accepted, StoreError> {
        Err(StoreError::invalid("the mail worker signs nobody up"))
    }
}

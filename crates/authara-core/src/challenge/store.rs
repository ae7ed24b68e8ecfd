//! The challenge aggregate: emailed-code challenges (signup verification, password reset, email
//! change), the pending action each one finishes, and the code hash the email worker sets when it
//! sends the code.
//!
//! A challenge is created together with its pending action and, unless it is *opaque*, the email
//! job that will carry its code, in one transaction. An opaque challenge (an unknown email at
//! reset, a taken email at signup or email change) is stored and counted exactly like a real one
//! (attempts, resends, `last_sent_at`) but has no pending action, never gets an email job and
//! never gets a code, so it can never complete: only this aggregate knows the difference.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::store::UserRecord;
use crate::store::{Effects, StoreError};

/// What a challenge verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// A new account, created only once the code is verified.
    Signup,
    /// A forgotten password, replaced once the code is verified.
    PasswordReset,
    /// A new email address for a signed-in user, set once the code sent to it is verified.
    EmailChange,
}

impl Purpose {
    /// Every purpose.
    pub const ALL: [Purpose; 3] = [Self::Signup, Self::PasswordReset, Self::EmailChange];

    /// The stored name (upstream's `purpose`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signup => "signup",
            Self::PasswordReset => "password_reset",
            Self::EmailChange => "email_change",
        }
    }

    /// The purpose with this stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// The `{action}` of `/auth/verify-challenge/{action}`.
    pub fn action(self) -> &'static str {
        match self {
            Self::Signup => "signup",
            Self::PasswordReset => "password-reset",
            Self::EmailChange => "email-change",
        }
    }

    /// The purpose with this `{action}`.
    pub fn from_action(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.action() == s)
    }

    /// The email template that carries this purpose's code (upstream's names).
    pub fn template(self) -> &'static str {
        match self {
            Self::Signup => "signup_code",
            Self::PasswordReset => "password_reset_code",
            Self::EmailChange => "email_change_code",
        }
    }
}

/// What completing a challenge does. `Debug` leaves password hashes out.
#[derive(Clone, PartialEq, Eq)]
pub enum PendingAction {
    /// Create the account `email` with this password hash; with an `invitation_id`, the
    /// account is made for that invitation and accepts it (upstream's
    /// `pending_signup_actions.invitation_id`).
    Signup {
        email: String,
        password_hash: String,
        invitation_id: Option<Uuid>,
    },
    /// Replace `user_id`'s password with this hash and revoke all their sessions.
    PasswordReset {
        user_id: Uuid,
        password_hash: String,
    },
    /// Move `user_id` from `old_email` to `new_email` and revoke their sessions but
    /// `session_id` (the one that asked, when it is still live).
    EmailChange {
        user_id: Uuid,
        session_id: Option<Uuid>,
        old_email: String,
        new_email: String,
    },
    /// An opaque challenge: nothing to complete, and it cannot be completed.
    Opaque,
}

impl std::fmt::Debug for PendingAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Signup {
                email,
                invitation_id,
                ..
            } => f
                .debug_struct("Signup")
                .field("email", email)
                .field("password_hash", &"<redacted>")
                .field("invitation_id", invitation_id)
                .finish(),
            Self::PasswordReset { user_id, .. } => f
                .debug_struct("PasswordReset")
                .field("user_id", user_id)
                .field("password_hash", &"<redacted>")
                .finish(),
            Self::EmailChange {
                user_id,
                session_id,
                old_email,
                new_email,
            } => f
                .debug_struct("EmailChange")
                .field("user_id", user_id)
                .field("session_id", session_id)
                .field("old_email", old_email)
                .field("new_email", new_email)
                .finish(),
            Self::Opaque => f.write_str("Opaque"),
        }
    }
}

/// A challenge to insert, with its pending action.
#[derive(Debug, Clone)]
pub struct NewChallenge {
    pub id: Uuid,
    pub purpose: Purpose,
    /// Where the code goes (normalised): the account's email, or the new one at email change.
    pub email: String,
    pub action: PendingAction,
    pub max_attempts: u32,
    pub max_resends: u32,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// The id of the email job that carries the code, inserted in the same transaction
    /// (`to_email = email`, `template = purpose.template()`, `template_data = "{}"`, due at
    /// `created_at`). Not inserted for an opaque challenge.
    pub email_job_id: Uuid,
}

/// A challenge as stored, with its pending action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeRecord {
    pub id: Uuid,
    pub purpose: Purpose,
    pub email: String,
    pub action: PendingAction,
    pub attempt_count: u32,
    pub max_attempts: u32,
    pub resend_count: u32,
    pub max_resends: u32,
    /// When a code was last asked for: at creation and at every accepted resend, for opaque
    /// challenges too (so the resend interval behaves the same for both kinds).
    pub last_sent_at: OffsetDateTime,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub consumed_at: Option<OffsetDateTime>,
}

impl ChallengeRecord {
    /// Unconsumed and unexpired at `now`.
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        self.consumed_at.is_none() && now < self.expires_at
    }
}

/// The current code of a challenge: its MAC (hex) and when it stops being accepted.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeRecord {
    pub code_mac: String,
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for CodeRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeRecord")
            .field("code_mac", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The answer to [`ChallengeStore::begin_challenge_attempt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// One attempt was counted (`attempt_count` in the record already includes it); compare the
    /// code given with `code` (absent for an opaque challenge or before the first send).
    Counted {
        challenge: Box<ChallengeRecord>,
        code: Option<CodeRecord>,
    },
    /// The challenge is live but `attempt_count` had reached `max_attempts`; nothing changed.
    TooManyAttempts,
    /// Unknown, consumed or expired; nothing changed.
    Gone,
}

/// The answer to [`ChallengeStore::resend_challenge`]. Opaque and real challenges get the same
/// answers and the same changes; only a real one gets an email job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resend {
    /// `resend_count` + 1, `last_sent_at = now`, and (real challenges) a new email job.
    Queued,
    /// `last_sent_at + min_interval` is still in the future; nothing changed.
    TooSoon,
    /// `resend_count` had reached `max_resends`; nothing changed.
    Exhausted,
    /// Unknown, consumed or expired; nothing changed.
    Gone,
}

/// What completing a challenge needs beyond what is stored.
pub struct Completion {
    /// For a signup: the new user's id and username (`Conflict(Username)` lets the caller try
    /// another one) and their initial organization. Ignored for other purposes.
    pub new_user: Option<NewSignupUser>,
    /// For an email change: the notice to the old address, inserted as an email job
    /// (`template = "email_changed_notice"`, `template_data` a JSON object), unless `None`.
    pub notice: Option<NewEmailNotice>,
    /// The events and audit rows, built once the number of sessions revoked is known.
    pub effects: Box<dyn FnOnce(u64) -> Effects + Send>,
    /// For a signup made for an invitation: how the account joins it. Required then, ignored
    /// otherwise.
    pub invitation: Option<InvitationJoin>,
}

/// How an invited signup's completion joins the invitation.
pub struct InvitationJoin {
    /// Whether the account also gets its initial organization (`multi` mode); else it
    /// belongs to the inviting organization only (`single`).
    pub with_initial_organization: bool,
    /// The events of the acceptance, built from the accepted invitation and the membership,
    /// committed after the completion's own.
    pub effects: crate::invitation::store::AcceptEffects,
}

/// The account a signup completion creates from its pending action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSignupUser {
    pub id: Uuid,
    pub username: String,
    pub organization: crate::org::store::InitialOrganization,
}

/// An email that is not a code (a notice), queued by a store write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEmailNotice {
    pub id: Uuid,
    pub to_email: String,
    pub template: String,
    /// A JSON object, rendered into the template by the worker.
    pub template_data: String,
}

/// The answer to [`ChallengeStore::complete_challenge`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completed {
    /// The account was created (`password_hash` set, not admin, enabled). `joined`: the
    /// organization of the invitation it accepted, where its first session acts.
    Signup {
        user: UserRecord,
        joined: Option<Uuid>,
    },
    /// The password was replaced and `revoked` live sessions were revoked.
    PasswordReset { user: UserRecord, revoked: u64 },
    /// The email was changed and `revoked` live sessions were revoked.
    EmailChange { user: UserRecord, revoked: u64 },
}

/// Challenges: implemented for PostgreSQL and SQLite.
#[async_trait]
pub trait ChallengeStore: Send + Sync + 'static {
    /// Inserts a challenge with its pending action and, unless opaque, its email job, in one
    /// transaction. `last_sent_at = created_at`, counts 0.
    async fn create_challenge(&self, challenge: NewChallenge) -> Result<(), StoreError>;

    /// The challenge with this id, whatever its state.
    async fn find_challenge(&self, id: Uuid) -> Result<Option<ChallengeRecord>, StoreError>;

    /// Counts one attempt at the code, atomically and only while the challenge is live and
    /// `attempt_count < max_attempts`, and returns it with its current code: concurrent
    /// attempts can never make more than `max_attempts` comparisons.
    async fn begin_challenge_attempt(
        &self,
        id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Attempt, StoreError>;

    /// Consumes a live challenge and performs its pending action, in one transaction with
    /// the effects: signup inserts the user; password reset sets the hash and revokes all the
    /// user's live sessions; email change sets the email, revokes the live sessions but the
    /// asking one, and queues the notice. The pending row is deleted.
    /// An invited signup (`invitation_id`) locks the invitation and does what
    /// [`InvitationStore::signup_with_invitation`](crate::invitation::store::InvitationStore)
    /// does: `NotFound` (nothing changes, the challenge stays live) unless the invitation is
    /// pending at `now` and its email is the challenge's.
    /// `NotFound` when the challenge is not live or opaque (nothing changes), `Conflict(Email)`
    /// when the email was taken meanwhile, `Conflict(Username)` for a taken username, and
    /// `NotFound` when the user of a reset or change is gone, or when an email change's
    /// `old_email` is no longer the account's (another change completed first).
    async fn complete_challenge(
        &self,
        id: Uuid,
        now: OffsetDateTime,
        completion: Completion,
    ) -> Result<Completed, StoreError>;

    /// Accepts a resend when the challenge is live, `resend_count < max_resends` and
    /// `last_sent_at + min_interval <= now`: counts it, sets `last_sent_at = now` and, for a
    /// real challenge, queues a new email job with id `email_job_id`.
    async fn resend_challenge(
        &self,
        id: Uuid,
        now: OffsetDateTime,
        min_interval: time::Duration,
        email_job_id: Uuid,
    ) -> Result<Resend, StoreError>;

    /// Sets (replacing any previous one) the code of a live, real challenge, as the email
    /// worker does right before sending it; the stored expiry is the earlier of `expires_at`
    /// and the challenge's. Returns the challenge, or `None` (nothing changed) when it is not
    /// live or is opaque.
    async fn set_challenge_code(
        &self,
        id: Uuid,
        code_mac: &str,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Option<ChallengeRecord>, StoreError>;

    /// Deletes up to `limit` challenges (with their codes and pending rows) that expired or were
    /// consumed before `before`. Returns how many.
    async fn purge_challenges(&self, before: OffsetDateTime, limit: u32)
        -> Result<u64, StoreError>;
}

//! Emailed-code challenges: signup verification, password reset and email change.
//!
//! Starting a challenge stores it with its pending action and the email job that will carry
//! its code, in one transaction; the email worker mints the code when it sends
//! ([`code`]), so no plaintext code is ever stored. Where a real challenge would reveal whether
//! an email is registered (an unknown email at reset, a taken one at signup or email change), an
//! *opaque* challenge is stored instead: same answers, same counters, same messages, no email.

pub mod code;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use uuid::Uuid;

use self::code::{code_matches, Code};
use self::store::{
    Attempt, ChallengeRecord, Completed, Completion, InvitationJoin, NewChallenge, NewEmailNotice,
    NewSignupUser, PendingAction, Purpose, Resend,
};
use crate::audit::{Actor, AuditAction, NewAuditEntry, RequestContext};
use crate::auth::password::{HashError, PasswordHasher};
use crate::auth::store::UserRecord;
use crate::auth::ServiceError;
use crate::clock::Clock;
use crate::domain::{Email, EmailError, Password, PasswordError, Username};
use crate::events::{EventType, Publisher};
use crate::invitation::service::acceptance_effects;
use crate::invitation::store::StoredInvitation;
use crate::jwt::JwtKeys;
use crate::mail::EMAIL_CHANGED_NOTICE;
use crate::org::{self, OrgMode};
use crate::random::{uuid_v4, Random};
use crate::session::SessionService;
use crate::store::{Effects, Store, StoreError, UniqueKey};

/// How many derived usernames a signup completion tries before giving up.
const USERNAME_ATTEMPTS: usize = 8;

/// Upstream's challenge settings (`AUTHARA_CHALLENGE_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeSettings {
    /// Signup verification and email change are on (`AUTHARA_CHALLENGE_ENABLED`). Password
    /// reset is always available.
    pub enabled: bool,
    pub ttl: Duration,
    pub code_ttl: Duration,
    pub max_attempts: u32,
    pub max_resends: u32,
    pub min_resend_interval: Duration,
}

impl Default for ChallengeSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            ttl: Duration::from_secs(30 * 60),
            code_ttl: Duration::from_secs(10 * 60),
            max_attempts: 5,
            max_resends: 3,
            min_resend_interval: Duration::from_secs(30),
        }
    }
}

/// A challenge that was started (real or opaque: the caller cannot tell).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub challenge_id: Uuid,
    /// Where the code was (or would have been) sent.
    pub email: String,
}

/// Why a challenge could not be started; nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Email(#[from] EmailError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// An email change to the address the account already has.
    #[error("That is already your email address.")]
    SameEmail,
    /// Password hashing is saturated: answer `503` with `Retry-After`.
    #[error("password hashing is busy")]
    Busy,
    #[error(transparent)]
    Failed(#[from] ServiceError),
}

impl From<StoreError> for StartError {
    fn from(e: StoreError) -> Self {
        Self::Failed(ServiceError::Store(e))
    }
}

/// Why a code was not accepted; nothing but the attempt count changed. An opaque challenge
/// fails exactly as a real one with a wrong code.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Not six digits; no attempt was counted.
    #[error("Enter the 6-digit code from the email.")]
    Malformed,
    /// Wrong or expired code (one message: an opaque challenge has none).
    #[error("The verification code is incorrect or has expired.")]
    Incorrect,
    /// The attempts are used up; even the right code is refused now.
    #[error("Too many incorrect attempts. Please start again.")]
    TooManyAttempts,
    /// Unknown, used, expired, or for another purpose.
    #[error("Invalid or expired verification code.")]
    Gone,
    #[error(transparent)]
    Failed(#[from] ServiceError),
}

impl From<StoreError> for VerifyError {
    fn from(e: StoreError) -> Self {
        Self::Failed(ServiceError::Store(e))
    }
}

/// The challenge service.
#[derive(Clone)]
pub struct ChallengeService {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    hasher: Arc<PasswordHasher>,
    keys: Arc<JwtKeys>,
    sessions: SessionService,
    events: Publisher,
    settings: ChallengeSettings,
    mode: OrgMode,
}

fn span(d: Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

impl ChallengeService {
    /// Wires the service.
    #[allow(clippy::too_many_arguments, reason = "plain wiring, called once")]
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
        hasher: Arc<PasswordHasher>,
        keys: Arc<JwtKeys>,
        sessions: SessionService,
        events: Publisher,
        settings: ChallengeSettings,
        mode: OrgMode,
    ) -> Self {
        Self {
            store,
            clock,
            random,
            hasher,
            keys,
            sessions,
            events,
            settings,
            mode,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &ChallengeSettings {
        &self.settings
    }

    /// The key set codes are MACed with (the email worker mints codes with it).
    pub fn keys(&self) -> &Arc<JwtKeys> {
        &self.keys
    }

    async fn hash(&self, password: &Password) -> Result<String, StartError> {
        match self.hasher.hash(password).await {
            Ok(hash) => Ok(hash),
            Err(HashError::Busy) => Err(StartError::Busy),
            Err(e) => Err(ServiceError::from(e).into()),
        }
    }

    async fn create(
        &self,
        purpose: Purpose,
        email: &str,
        action: PendingAction,
    ) -> Result<Started, StartError> {
        let now = self.clock.now();
        let id = uuid_v4(&*self.random);
        self.store
            .create_challenge(NewChallenge {
                id,
                purpose,
                email: email.to_owned(),
                action,
                max_attempts: self.settings.max_attempts.max(1),
                max_resends: self.settings.max_resends,
                created_at: now,
                expires_at: now.saturating_add(span(self.settings.ttl)),
                email_job_id: uuid_v4(&*self.random),
            })
            .await?;
        Ok(Started {
            challenge_id: id,
            email: email.to_owned(),
        })
    }

    /// Starts a password reset. The new password is checked and hashed first, whether or not
    /// the email has an account; an unknown or disabled account gets an opaque challenge.
    pub async fn start_password_reset(
        &self,
        email: &str,
        new_password: &str,
    ) -> Result<Started, StartError> {
        let email = Email::parse(email)?;
        let password = Password::parse_new(new_password)?;
        let hash = self.hash(&password).await?;
        let user = self.store.find_user_by_email(email.as_str()).await?;
        let action = match user {
            // A reset replaces a password; it never gives a passwordless account one (as
            // upstream now), so such an account gets an opaque challenge too.
            Some(user) if !user.disabled && user.password_hash.is_some() => {
                PendingAction::PasswordReset {
                    user_id: user.id,
                    password_hash: hash,
                }
            }
            _ => PendingAction::Opaque,
        };
        self.create(Purpose::PasswordReset, email.as_str(), action)
            .await
    }

    /// Starts a verified signup: the account is created only when the code is verified. A taken
    /// email gets an opaque challenge (after the same hashing).
    pub async fn start_signup(&self, email: &str, password: &str) -> Result<Started, StartError> {
        let email = Email::parse(email)?;
        let password = Password::parse_new(password)?;
        let hash = self.hash(&password).await?;
        let taken = self.store.find_user_by_email(email.as_str()).await?;
        let action = match taken {
            None => PendingAction::Signup {
                email: email.as_str().to_owned(),
                password_hash: hash,
                invitation_id: None,
            },
            Some(_) => PendingAction::Opaque,
        };
        self.create(Purpose::Signup, email.as_str(), action).await
    }

    /// Starts the verified signup of an invitation's email (the caller found the invitation
    /// pending): verifying the code creates the account, accepts the invitation and starts the
    /// session there, as [`crate::auth::AuthService::signup_with_invitation`] does without a
    /// challenge. A taken email gets an opaque challenge, as at [`Self::start_signup`].
    pub async fn start_invited_signup(
        &self,
        invitation: &StoredInvitation,
        password: &str,
    ) -> Result<Started, StartError> {
        let email = Email::parse(&invitation.invitation.email)?;
        let password = Password::parse_new(password)?;
        let hash = self.hash(&password).await?;
        let taken = self.store.find_user_by_email(email.as_str()).await?;
        let action = match taken {
            None => PendingAction::Signup {
                email: email.as_str().to_owned(),
                password_hash: hash,
                invitation_id: Some(invitation.invitation.id),
            },
            Some(_) => PendingAction::Opaque,
        };
        self.create(Purpose::Signup, email.as_str(), action).await
    }

    /// Starts an email change for a signed-in user; the code goes to the new address. A taken
    /// address gets an opaque challenge.
    pub async fn start_email_change(
        &self,
        user: &UserRecord,
        session_id: Option<Uuid>,
        new_email: &str,
    ) -> Result<Started, StartError> {
        let new_email = Email::parse(new_email)?;
        if new_email.as_str() == user.email {
            return Err(StartError::SameEmail);
        }
        let taken = self.store.find_user_by_email(new_email.as_str()).await?;
        let action = match taken {
            None => PendingAction::EmailChange {
                user_id: user.id,
                session_id,
                old_email: user.email.clone(),
                new_email: new_email.as_str().to_owned(),
            },
            Some(_) => PendingAction::Opaque,
        };
        self.create(Purpose::EmailChange, new_email.as_str(), action)
            .await
    }

    /// The challenge, when it is live and for `purpose` (the verify page shows its address).
    pub async fn find_live(
        &self,
        id: Uuid,
        purpose: Purpose,
    ) -> Result<Option<ChallengeRecord>, StoreError> {
        let now = self.clock.now();
        Ok(self
            .store
            .find_challenge(id)
            .await?
            .filter(|c| c.purpose == purpose && c.is_live(now)))
    }

    /// The challenge, when it is live, whatever its purpose.
    pub async fn find_live_any(&self, id: Uuid) -> Result<Option<ChallengeRecord>, StoreError> {
        let now = self.clock.now();
        Ok(self
            .store
            .find_challenge(id)
            .await?
            .filter(|c| c.is_live(now)))
    }

    /// Asks for a new code. Opaque and real challenges answer alike.
    pub async fn resend(&self, id: Uuid) -> Result<Resend, StoreError> {
        self.store
            .resend_challenge(
                id,
                self.clock.now(),
                span(self.settings.min_resend_interval),
                uuid_v4(&*self.random),
            )
            .await
    }

    /// Checks a code and, when it is right, completes the challenge's action. Each call with six
    /// digits counts one attempt, before the comparison.
    pub async fn verify(
        &self,
        id: Uuid,
        purpose: Purpose,
        typed: &str,
        context: &RequestContext,
    ) -> Result<Completed, VerifyError> {
        let code = Code::parse(typed).ok_or(VerifyError::Malformed)?;
        let now = self.clock.now();
        let (challenge, stored) = match self.store.begin_challenge_attempt(id, now).await? {
            Attempt::Counted { challenge, code } => (challenge, code),
            Attempt::TooManyAttempts => return Err(VerifyError::TooManyAttempts),
            Attempt::Gone => return Err(VerifyError::Gone),
        };
        // A challenge of another purpose answers as gone (its attempt counted all the same: one
        // statement per guess, and a guess through the wrong page is still a guess).
        if challenge.purpose != purpose {
            return Err(VerifyError::Gone);
        }
        // An opaque challenge has no code: it is compared against a MAC that matches nothing,
        // for the same work as a real comparison.
        let (mac, fresh) = match &stored {
            Some(c) => (c.code_mac.as_str(), now < c.expires_at),
            None => (NO_MAC, false),
        };
        let matches = code_matches(&self.keys, id, &code, mac);
        if !(matches && fresh) {
            return Err(VerifyError::Incorrect);
        }
        self.complete(&challenge, context).await
    }

    async fn complete(
        &self,
        challenge: &ChallengeRecord,
        context: &RequestContext,
    ) -> Result<Completed, VerifyError> {
        let now = self.clock.now();
        match &challenge.action {
            PendingAction::Opaque => Err(VerifyError::Incorrect),
            PendingAction::Signup {
                email,
                invitation_id,
                ..
            } => {
                let email = Email::parse(email).map_err(|_| VerifyError::Gone)?;
                // An invited account joins the inviting organization; in `multi` mode it also
                // gets its own (upstream's plan), in `single` mode only the inviting one.
                let with_initial = invitation_id.is_none() || self.mode == OrgMode::Multi;
                let user_id = uuid_v4(&*self.random);
                for _ in 0..USERNAME_ATTEMPTS {
                    let username = Username::derive(email.local_part(), &*self.random);
                    let organization = org::initial_organization(
                        self.mode,
                        &*self.random,
                        username.as_str(),
                        email.as_str(),
                    );
                    let mut effects = self.user_event(EventType::UserCreated, user_id, now);
                    if with_initial {
                        effects = effects.and(org::creation_events(
                            &self.events,
                            &organization,
                            user_id,
                            now,
                        ));
                    }
                    let invitation = invitation_id.map(|_| {
                        let events = self.events.clone();
                        InvitationJoin {
                            with_initial_organization: with_initial,
                            effects: Box::new(move |invitation: &_, membership: &_| {
                                acceptance_effects(&events, invitation, membership, now)
                            }),
                        }
                    });
                    let completion = Completion {
                        new_user: Some(NewSignupUser {
                            id: user_id,
                            username: username.as_str().to_owned(),
                            organization,
                        }),
                        notice: None,
                        effects: Box::new(move |_| effects),
                        invitation,
                    };
                    match self
                        .store
                        .complete_challenge(challenge.id, now, completion)
                        .await
                    {
                        Ok(done) => return Ok(done),
                        Err(StoreError::Conflict(UniqueKey::Username)) => continue,
                        Err(StoreError::Conflict(UniqueKey::Email) | StoreError::NotFound) => {
                            return Err(VerifyError::Gone)
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(StoreError::Conflict(UniqueKey::Username).into())
            }
            PendingAction::PasswordReset { user_id, .. } => {
                let audit = NewAuditEntry::new(
                    uuid_v4(&*self.random),
                    now,
                    AuditAction::PasswordReset,
                    Actor::User(*user_id),
                )
                .about(*user_id, &challenge.email)
                .from_request(context);
                let event = self.user_event(EventType::UserUpdated, *user_id, now);
                let completion = Completion {
                    new_user: None,
                    notice: None,
                    invitation: None,
                    effects: Box::new(move |revoked| {
                        event.audit(audit.with("sessions_revoked", revoked))
                    }),
                };
                let done = self.finish(challenge.id, now, completion).await?;
                self.sessions.user_changed(*user_id);
                Ok(done)
            }
            PendingAction::EmailChange {
                user_id,
                old_email,
                new_email,
                ..
            } => {
                let audit = NewAuditEntry::new(
                    uuid_v4(&*self.random),
                    now,
                    AuditAction::EmailChanged,
                    Actor::User(*user_id),
                )
                .about(*user_id, old_email)
                .with("new_email", new_email.as_str())
                .from_request(context);
                let event = self.user_event(EventType::UserUpdated, *user_id, now);
                let notice = NewEmailNotice {
                    id: uuid_v4(&*self.random),
                    to_email: old_email.clone(),
                    template: EMAIL_CHANGED_NOTICE.to_owned(),
                    template_data: serde_json::json!({
                        "old_email": old_email,
                        "new_email": new_email,
                        "changed_at": now
                            .format(&time::format_description::well_known::Rfc3339)
                            .unwrap_or_default(),
                    })
                    .to_string(),
                };
                let completion = Completion {
                    new_user: None,
                    notice: Some(notice),
                    invitation: None,
                    effects: Box::new(move |revoked| {
                        event.audit(audit.with("sessions_revoked", revoked))
                    }),
                };
                let done = self.finish(challenge.id, now, completion).await?;
                self.sessions.user_changed(*user_id);
                Ok(done)
            }
        }
    }

    async fn finish(
        &self,
        id: Uuid,
        now: OffsetDateTime,
        completion: Completion,
    ) -> Result<Completed, VerifyError> {
        match self.store.complete_challenge(id, now, completion).await {
            Ok(done) => Ok(done),
            Err(StoreError::NotFound | StoreError::Conflict(UniqueKey::Email)) => {
                Err(VerifyError::Gone)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn user_event(&self, event_type: EventType, user_id: Uuid, now: OffsetDateTime) -> Effects {
        match self.events.user(event_type, user_id, now) {
            Some(event) => Effects::none().event(event),
            None => Effects::none(),
        }
    }
}

/// A well-formed MAC no code has (all zeros), compared against for opaque challenges.
const NO_MAC: &str = "0000000000000000000000000000000000000000000000000000000000000000";

//! The background tasks: delivery workers that claim due email jobs and send them, a reaper
//! that re-queues claims a dead worker left behind, and the hourly cleanup of old jobs and
//! expired challenges. The loops are [`authara_core::outbox`]'s, shared with the webhook
//! workers; what is the email's own is here: the attempt (render, mint the code, send), the
//! retry schedule, the settings and the log fields.
//!
//! A job that carries a challenge's code gets its code here, right before it is sent: a fresh
//! [`Code`] is minted, and its MAC stored with [`ChallengeStore::set_challenge_code`] *before*
//! the message leaves, so a code that reaches an inbox always verifies (the store replaces the
//! previous code: a resend, or a retry after a failed send, invalidates the earlier one). A
//! challenge that is no longer live gets no code and no email. No plaintext code is stored,
//! logged (except by [`Transport::Log`], in development) or kept in an error.
//!
//! Workers claim one job at a time ([`CLAIM_BATCH_SIZE`]): a stop or a crash leaves at most the
//! one job in flight `processing`, for the reaper to re-queue.

use std::sync::Arc;
use std::time::Duration;

use authara_core::challenge::code::{code_mac, Code};
use authara_core::challenge::store::ChallengeStore;
use authara_core::clock::Clock;
use authara_core::invitation::service::invite_url;
use authara_core::invitation::store::{InvitationStatus, InvitationStore};
use authara_core::invitation::InvitationToken;
use authara_core::jwt::JwtKeys;
use authara_core::mail::{ClaimedEmail, EmailStore};
use authara_core::outbox::{describe, Batches, Failure, Outbox, Outcome, Plan, Stale, Workers};
use authara_core::random::Random;
use authara_core::store::{Store, StoreError};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::render::{invitation_data, notice_data, render, Content, Rendered, Template};
use crate::sender::Email;
use crate::settings::MailSettings;
use crate::transport::Transport;

/// Jobs claimed per statement (see [`authara_core::outbox`]).
pub use authara_core::outbox::CLAIM_BATCH_SIZE;
/// Upstream's fixed delay before a failed, retryable job is tried again.
pub const RETRY_DELAY: Duration = Duration::from_secs(30);
/// Longest `last_error` kept, in characters.
pub const MAX_ERROR_CHARS: usize = 500;

/// When a failed, retryable attempt is tried again: 30 s later, until `attempts_made` reaches
/// `max_attempts` (at least 1); then `None` (final).
pub fn retry_at(
    attempts_made: u32,
    max_attempts: u32,
    now: OffsetDateTime,
) -> Option<OffsetDateTime> {
    (attempts_made < max_attempts.max(1)).then(|| now.saturating_add(span(RETRY_DELAY)))
}

fn span(d: Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

/// The aggregates the workers use: the outbox, the challenges whose codes it carries, and the
/// invitations whose links it carries.
/// `From<Arc<dyn Store>>` for the server; [`MailStore::new`] for anything that implements both
/// (a test's fake).
#[derive(Clone)]
pub struct MailStore {
    pub challenges: Arc<dyn ChallengeStore>,
    pub outbox: Arc<dyn EmailStore>,
    pub invitations: Arc<dyn InvitationStore>,
}

impl MailStore {
    /// The aggregates from one store.
    pub fn new<S: ChallengeStore + EmailStore + InvitationStore>(store: Arc<S>) -> Self {
        Self {
            challenges: store.clone(),
            invitations: store.clone(),
            outbox: store,
        }
    }
}

impl From<Arc<dyn Store>> for MailStore {
    fn from(store: Arc<dyn Store>) -> Self {
        Self {
            challenges: store.clone(),
            invitations: store.clone(),
            outbox: store,
        }
    }
}

/// The running email tasks. [`MailWorkers::shutdown`] stops them between jobs and waits;
/// dropping the handle stops them too, without waiting.
#[derive(Debug)]
pub struct MailWorkers(Workers);

impl MailWorkers {
    /// Spawns `worker_count` delivery workers (at least one), the stale reaper and the cleanup
    /// on the current tokio runtime. The reaper and the cleanup run once at once, then every
    /// interval. `keys` must be the key set the challenge service verifies codes with.
    pub fn start(
        store: impl Into<MailStore>,
        transport: Transport,
        settings: MailSettings,
        keys: Arc<JwtKeys>,
        random: Arc<dyn Random>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let workers = settings.worker_count.max(1);
        let plan = Plan {
            workers,
            poll_interval: settings.poll_interval,
            stale_after: settings.processing_stale_after(),
            reaper_interval: settings.stale_reaper_interval,
            cleanup_interval: settings.cleanup_interval,
            batch_size: settings.maintenance_batch_size,
        };
        let provider = transport.name();
        let mail = Mail {
            store: store.into(),
            transport,
            settings,
            keys,
            random,
            clock: clock.clone(),
        };
        let running = Workers::start(Arc::new(mail), clock, plan);
        tracing::info!(provider, workers, "email delivery started");
        Self(running)
    }

    /// Asks every task to stop: a worker finishes the job in flight (bounded by the send
    /// timeout), records it, and stops before the next one.
    pub fn stop(&self) {
        self.0.stop();
    }

    /// Stops the tasks and waits for them.
    pub async fn shutdown(self) {
        self.0.shutdown().await;
    }
}

/// The email outbox, as its workers see it.
struct Mail {
    store: MailStore,
    transport: Transport,
    settings: MailSettings,
    keys: Arc<JwtKeys>,
    random: Arc<dyn Random>,
    clock: Arc<dyn Clock>,
}

impl Outbox for Mail {
    type Job = ClaimedEmail;
    type Done = ();
    const NAME: &'static str = "email";
    const JOB: &'static str = "job";

    async fn claim(&self, now: OffsetDateTime, limit: u32) -> Result<Vec<Self::Job>, StoreError> {
        self.store.outbox.claim_due_emails(now, limit).await
    }

    /// Prepares the job's message (minting and storing its code first) and sends it within
    /// the send timeout.
    async fn attempt(&self, job: &ClaimedEmail) -> Outcome {
        let prepared = match self.prepare(job).await {
            Ok(p) => p,
            Err(outcome) => return outcome,
        };
        let timeout = self.settings.send_timeout;
        let result = tokio::time::timeout(timeout, self.transport.send(&prepared.email)).await;
        let secret = prepared.secret();
        match result {
            Ok(Ok(())) => Outcome::Done(()),
            Err(_) => Outcome::Retry(format!("no answer within {} ms", timeout.as_millis())),
            Ok(Err(e)) if e.is_retryable() => Outcome::Retry(bounded(&e.to_string(), secret)),
            Ok(Err(e)) => Outcome::Final(bounded(&e.to_string(), secret)),
        }
    }

    fn retry_at(&self, attempt: u32, now: OffsetDateTime) -> Option<OffsetDateTime> {
        retry_at(attempt, self.settings.max_attempts, now)
    }

    async fn mark_done(&self, id: Uuid, now: OffsetDateTime) -> Result<bool, StoreError> {
        self.store.outbox.mark_email_sent(id, now).await
    }

    async fn mark_failed(&self, f: &Failure<'_>) -> Result<bool, StoreError> {
        self.store
            .outbox
            .mark_email_attempt_failed(f.id, f.error, f.retry_at, f.now)
            .await
    }

    async fn requeue_stale(&self, s: Stale) -> Result<u64, StoreError> {
        self.store
            .outbox
            .requeue_stale_emails(s.before, s.now, s.limit)
            .await
    }

    /// Old jobs, then challenges past their expiry (and their codes and pending actions).
    async fn clean_up(&self, now: OffsetDateTime, batches: &Batches<'_>) {
        let sent_before = now.saturating_sub(span(self.settings.sent_retention));
        let failed_before = now.saturating_sub(span(self.settings.failed_retention));
        let emails = batches
            .run("email cleanup failed", |limit| {
                self.store
                    .outbox
                    .purge_emails(sent_before, failed_before, limit)
            })
            .await;
        let challenges = batches
            .run("challenge cleanup failed", |limit| {
                self.store.challenges.purge_challenges(now, limit)
            })
            .await;
        if emails.saturating_add(challenges) > 0 {
            tracing::info!(emails, challenges, "purged old email jobs and challenges");
        }
    }

    fn log_done(&self, worker: u32, job: &ClaimedEmail, attempt: u32, _: ()) {
        let provider = self.transport.name();
        let template = job.template.as_str();
        tracing::info!(worker, id = %job.id, template, attempt, provider, "email sent");
    }

    fn log_failed(&self, worker: u32, job: &ClaimedEmail, attempt: u32, f: &Failure<'_>) {
        tracing::warn!(
            worker, id = %job.id, template = job.template.as_str(), attempt,
            error = %f.error, retry_at = f.retry_at.map(tracing::field::display),
            "email attempt failed; {}", f.next
        );
    }
}

/// A message ready to go, and the code it carries (to keep it out of any error text).
struct Prepared {
    email: Email,
    code: Option<Code>,
    /// An invitation's token, which its link carries.
    token: Option<InvitationToken>,
}

impl Prepared {
    /// The secret the message carries, to keep out of any error text.
    fn secret(&self) -> Option<&str> {
        match (&self.code, &self.token) {
            (Some(code), _) => Some(code.expose()),
            (None, Some(token)) => Some(token.expose()),
            (None, None) => None,
        }
    }
}

impl Mail {
    async fn prepare(&self, job: &ClaimedEmail) -> Result<Prepared, Outcome> {
        let Some(template) = Template::parse(&job.template) else {
            let name: String = job.template.chars().take(64).collect();
            return Err(Outcome::Final(bounded(
                &format!("unknown template {name:?}"),
                None,
            )));
        };
        let public_url = self.settings.public_url.as_str();
        let (rendered, code) = match template {
            Template::Code(purpose) => {
                let Some(challenge_id) = job.challenge_id else {
                    return Err(Outcome::Final(
                        "a code template without a challenge".to_owned(),
                    ));
                };
                let now = self.clock.now();
                let code = Code::mint(&*self.random);
                let Some(mac) = code_mac(&self.keys, challenge_id, &code) else {
                    return Err(Outcome::Final(
                        "no active signing key to protect the code with".to_owned(),
                    ));
                };
                let expires_at = now.saturating_add(span(self.settings.code_ttl));
                let challenge = match self
                    .store
                    .challenges
                    .set_challenge_code(challenge_id, &mac, expires_at, now)
                    .await
                {
                    Ok(Some(c)) => c,
                    Ok(None) => {
                        return Err(Outcome::Final("challenge no longer active".to_owned()))
                    }
                    Err(e) => {
                        return Err(Outcome::Retry(bounded(
                            &format!("could not store the code: {}", describe(&e)),
                            Some(code.expose()),
                        )))
                    }
                };
                // The store writes both together; a mismatch is a bug, and a code goes
                // nowhere but to its challenge's address.
                if challenge.purpose != purpose {
                    return Err(Outcome::Final(
                        "the template does not match the challenge's purpose".to_owned(),
                    ));
                }
                if !challenge.email.eq_ignore_ascii_case(&job.to_email) {
                    return Err(Outcome::Final(
                        "the recipient is not the challenge's address".to_owned(),
                    ));
                }
                let valid = expires_at.min(challenge.expires_at) - now;
                let valid_minutes = u64::try_from(valid.whole_minutes()).unwrap_or(0);
                let rendered = render(&Content::Code {
                    purpose,
                    challenge_id,
                    code: &code,
                    valid_minutes,
                    public_url,
                });
                (rendered, Some(code))
            }
            Template::Invitation => {
                let prepared = self.prepare_invitation(job, public_url).await?;
                return Ok(prepared);
            }
            Template::EmailChangedNotice => {
                let rendered = notice_data(&job.template_data).and_then(
                    |(old_email, new_email, changed_at)| {
                        render(&Content::EmailChanged {
                            old_email: &old_email,
                            new_email: &new_email,
                            changed_at,
                            public_url,
                        })
                    },
                );
                (rendered, None)
            }
        };
        let Rendered {
            subject,
            text,
            html,
        } = rendered.map_err(|e| {
            Outcome::Final(bounded(&e.to_string(), code.as_ref().map(Code::expose)))
        })?;
        Ok(Prepared {
            email: Email {
                to: job.to_email.clone(),
                subject: subject.into_owned(),
                text,
                html,
            },
            code,
            token: None,
        })
    }

    /// An invitation's email: its link is derived again from the invitation (its token is
    /// stored nowhere) under the configured keys, and checked against the stored hash. An
    /// invitation that is gone or no longer pending gets no email.
    async fn prepare_invitation(
        &self,
        job: &ClaimedEmail,
        public_url: &str,
    ) -> Result<Prepared, Outcome> {
        let id = invitation_data(&job.template_data)
            .map_err(|e| Outcome::Final(bounded(&e.to_string(), None)))?;
        let found = match self.store.invitations.find_invitation(id).await {
            Ok(Some(found)) => found,
            Ok(None) => return Err(Outcome::Final("invitation no longer exists".to_owned())),
            Err(e) => {
                return Err(Outcome::Retry(bounded(
                    &format!("could not read the invitation: {}", describe(&e)),
                    None,
                )))
            }
        };
        let invitation = &found.invitation;
        if invitation.status(self.clock.now()) != InvitationStatus::Pending {
            return Err(Outcome::Final("invitation no longer pending".to_owned()));
        }
        if !invitation.email.eq_ignore_ascii_case(&job.to_email) {
            return Err(Outcome::Final(
                "the recipient is not the invitation's address".to_owned(),
            ));
        }
        let Some(token) = InvitationToken::recover(&self.keys, id, &found.token_hash) else {
            return Err(Outcome::Final(
                "no configured key derives the invitation token".to_owned(),
            ));
        };
        let link = invite_url(public_url, &token);
        let code = self
            .settings
            .include_invitation_code
            .then(|| token.expose());
        let rendered = render(&Content::Invitation {
            organization_name: &found.organization.name,
            invite_url: &link,
            role: invitation.role.as_str(),
            expires_at: invitation.expires_at,
            invitation_code: code,
        });
        let Rendered {
            subject,
            text,
            html,
        } = rendered.map_err(|e| Outcome::Final(bounded(&e.to_string(), Some(token.expose()))))?;
        Ok(Prepared {
            email: Email {
                to: job.to_email.clone(),
                subject: subject.into_owned(),
                text,
                html,
            },
            code: None,
            token: Some(token),
        })
    }
}

/// What is kept as `last_error`: the secret (a code or a token, should anything ever repeat
/// it) replaced, control characters replaced, at most [`MAX_ERROR_CHARS`] characters.
fn bounded(text: &str, secret: Option<&str>) -> String {
    let text = match secret {
        Some(secret) if !secret.is_empty() => text.replace(secret, "<secret>"),
        _ => text.to_owned(),
    };
    text.chars()
        .take(MAX_ERROR_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_30_seconds_apart_until_the_attempts_are_used_up() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let later = Some(now + time::Duration::seconds(30));
        for made in 1..10 {
            assert_eq!(retry_at(made, 10, now), later, "after attempt {made}");
        }
        for made in [10, 11] {
            assert_eq!(retry_at(made, 10, now), None, "after attempt {made}");
        }
        assert_eq!(retry_at(1, 1, now), None);
        // Zero attempts configured still allows the one that was made, and no more.
        assert_eq!(retry_at(1, 0, now), None);
    }

    #[test]
    fn last_errors_are_bounded_one_line_and_never_hold_the_code() {
        let code = Code::parse("314159").unwrap();
        let e = bounded("server said 550 314159\r\nrejected", Some(code.expose()));
        assert_eq!(e, "server said 550 <secret>  rejected");
        let token = "dG9rZW4tb2YtYW4taW52aXRhdGlvbg";
        let e = bounded(&format!("rejected {token}"), Some(token));
        assert_eq!(e, "rejected <secret>");
        let long = "x".repeat(2 * MAX_ERROR_CHARS);
        assert_eq!(bounded(&long, None).chars().count(), MAX_ERROR_CHARS);
        let wide = "é".repeat(2 * MAX_ERROR_CHARS);
        assert_eq!(bounded(&wide, None).chars().count(), MAX_ERROR_CHARS);
    }
}

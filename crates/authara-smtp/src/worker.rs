//! The background tasks: delivery workers that claim due email jobs and send them, a reaper
//! that re-queues claims a dead worker left behind, and the hourly cleanup of old jobs and
//! expired challenges. Same shape as the webhook workers (`authara-webhook`).
//!
//! A job that carries a challenge's code gets its code here, right before it is sent: a fresh
//! [`Code`] is minted, and its MAC stored with [`ChallengeStore::set_challenge_code`] *before*
//! the message leaves, so a code that reaches an inbox always verifies (the store replaces the
//! previous code: a resend, or a retry after a failed send, invalidates the earlier one). A
//! challenge that is no longer live gets no code and no email. No plaintext code is stored,
//! logged (except by [`Transport::Log`], in development) or kept in an error.
//!
//! Workers claim one job at a time, as the webhook workers do: a stop or a crash leaves at most
//! the one job in flight `processing`, for the reaper to re-queue.

use std::sync::Arc;
use std::time::Duration;

use authara_core::challenge::code::{code_mac, Code};
use authara_core::challenge::store::ChallengeStore;
use authara_core::clock::Clock;
use authara_core::jwt::JwtKeys;
use authara_core::mail::{ClaimedEmail, EmailStore};
use authara_core::random::Random;
use authara_core::store::{Store, StoreError};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::render::{notice_data, render, Content, Rendered, Template};
use crate::sender::Email;
use crate::transport::Transport;

/// Jobs claimed per statement (see the module documentation).
pub const CLAIM_BATCH_SIZE: u32 = 1;
/// Upstream's fixed delay before a failed, retryable job is tried again.
pub const RETRY_DELAY: Duration = Duration::from_secs(30);
/// Longest `last_error` kept, in characters.
pub const MAX_ERROR_CHARS: usize = 500;
/// A claim older than twice the send timeout plus this is re-queued by the reaper.
const STALE_MARGIN: Duration = Duration::from_secs(30);
/// The shortest pause between two runs of a loop, whatever the settings say: a zero interval
/// must not spin.
const MIN_PAUSE: Duration = Duration::from_millis(10);

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

/// What the workers are configured with (`AUTHARA_EMAIL_*`, `AUTHARA_CHALLENGE_VERIFICATION_CODE_TTL`,
/// `PUBLIC_URL`). Build with [`MailSettings::new`] (upstream's defaults) and override fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailSettings {
    /// `PUBLIC_URL`: the code emails link to `{public_url}/auth/verify-challenge/...`.
    pub public_url: String,
    /// Delivery workers (default 2).
    pub worker_count: u32,
    /// Pause of an idle worker between two claims (default 2 s).
    pub poll_interval: Duration,
    /// Attempts before a job is marked failed (default 10).
    pub max_attempts: u32,
    /// Bound on one send, connection and dialogue included (default 10 s, the SMTP timeout).
    pub send_timeout: Duration,
    /// How long a code is accepted after it was sent (default 10 min; never beyond the
    /// challenge's own expiry).
    pub code_ttl: Duration,
    /// How long sent jobs are kept (default 720 h).
    pub sent_retention: Duration,
    /// How long failed jobs are kept (default 2160 h).
    pub failed_retention: Duration,
    /// How often the reaper runs (default 1 min).
    pub stale_reaper_interval: Duration,
    /// How often the cleanup runs (default 1 h).
    pub cleanup_interval: Duration,
    /// Rows per reaper or cleanup statement (default 1000).
    pub maintenance_batch_size: u32,
}

impl MailSettings {
    /// Upstream's defaults, linking to `public_url`.
    pub fn new(public_url: impl Into<String>) -> Self {
        Self {
            public_url: public_url.into().trim_end_matches('/').to_owned(),
            worker_count: 2,
            poll_interval: Duration::from_secs(2),
            max_attempts: 10,
            send_timeout: Duration::from_secs(10),
            code_ttl: Duration::from_secs(600),
            sent_retention: Duration::from_secs(720 * 3600),
            failed_retention: Duration::from_secs(2160 * 3600),
            stale_reaper_interval: Duration::from_secs(60),
            cleanup_interval: Duration::from_secs(3600),
            maintenance_batch_size: 1000,
        }
    }

    /// A claim older than this is taken to belong to a worker that died: twice the send
    /// timeout plus 30 s, so that a send still in flight is never re-queued.
    pub fn processing_stale_after(&self) -> Duration {
        self.send_timeout
            .saturating_mul(2)
            .saturating_add(STALE_MARGIN)
    }
}

/// The two aggregates the workers use: the outbox and the challenges whose codes it carries.
/// `From<Arc<dyn Store>>` for the server; [`MailStore::new`] for anything that implements both
/// (a test's fake).
#[derive(Clone)]
pub struct MailStore {
    pub challenges: Arc<dyn ChallengeStore>,
    pub outbox: Arc<dyn EmailStore>,
}

impl MailStore {
    /// Both aggregates from one store.
    pub fn new<S: ChallengeStore + EmailStore>(store: Arc<S>) -> Self {
        Self {
            challenges: store.clone(),
            outbox: store,
        }
    }
}

impl From<Arc<dyn Store>> for MailStore {
    fn from(store: Arc<dyn Store>) -> Self {
        Self {
            challenges: store.clone(),
            outbox: store,
        }
    }
}

/// The running email tasks. [`MailWorkers::shutdown`] stops them between jobs and waits;
/// dropping the handle stops them too, without waiting.
#[derive(Debug)]
pub struct MailWorkers {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

struct Shared {
    store: MailStore,
    transport: Transport,
    settings: MailSettings,
    keys: Arc<JwtKeys>,
    random: Arc<dyn Random>,
    clock: Arc<dyn Clock>,
}

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
        let poll = settings.poll_interval.max(MIN_PAUSE);
        let batch = settings.maintenance_batch_size.max(1);
        let stale_after = settings.processing_stale_after();
        let reaper_every = settings.stale_reaper_interval.max(MIN_PAUSE);
        let cleanup_every = settings.cleanup_interval.max(MIN_PAUSE);
        let provider = transport.name();
        let shared = Arc::new(Shared {
            store: store.into(),
            transport,
            settings,
            keys,
            random,
            clock,
        });
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        for worker in 0..workers {
            tasks.push(tokio::spawn(delivery_worker(
                worker,
                shared.clone(),
                poll,
                stopped.clone(),
            )));
        }
        tasks.push(tokio::spawn(reaper(
            shared.clone(),
            stale_after,
            reaper_every,
            batch,
            stopped.clone(),
        )));
        tasks.push(tokio::spawn(cleanup(shared, cleanup_every, batch, stopped)));
        tracing::info!(provider, workers, "email delivery started");
        Self { stop, tasks }
    }

    /// Asks every task to stop: a worker finishes the job in flight (bounded by the send
    /// timeout), records it, and stops before the next one.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Stops the tasks and waits for them.
    pub async fn shutdown(self) {
        self.stop();
        for task in self.tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "an email task ended abnormally");
            }
        }
    }
}

fn stopped(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}

/// Sleeps for `pause` unless told to stop first; true to go on.
async fn pause_or_stop(stop: &mut watch::Receiver<bool>, pause: Duration) -> bool {
    if stopped(stop) {
        return false;
    }
    tokio::select! {
        () = tokio::time::sleep(pause) => !stopped(stop),
        changed = stop.changed() => changed.is_ok() && !*stop.borrow(),
    }
}

async fn delivery_worker(
    worker: u32,
    shared: Arc<Shared>,
    poll: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if stopped(&stop) {
            break;
        }
        let claimed = shared
            .store
            .outbox
            .claim_due_emails(shared.clock.now(), CLAIM_BATCH_SIZE)
            .await;
        let busy = match claimed {
            Ok(jobs) => {
                let busy = !jobs.is_empty();
                for job in jobs {
                    shared.attempt(worker, job).await;
                }
                busy
            }
            Err(e) => {
                tracing::warn!(worker, error = %describe(&e), "email claim failed");
                false
            }
        };
        // Drain while there is work; wait only when there was none (or the store failed).
        if !busy && !pause_or_stop(&mut stop, poll).await {
            break;
        }
    }
    tracing::debug!(worker, "email worker stopped");
}

/// How one attempt ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Sent,
    /// May pass: tried again later, until the attempts are used up.
    Retry(String),
    /// Cannot pass: failed at once.
    Final(String),
}

/// A message ready to go, and the code it carries (to keep it out of any error text).
struct Prepared {
    email: Email,
    code: Option<Code>,
}

impl Shared {
    async fn attempt(&self, worker: u32, job: ClaimedEmail) {
        let outcome = self.run(&job).await;
        let now = self.clock.now();
        let attempt = job.attempt_count.saturating_add(1);
        let id = job.id;
        let template = job.template.as_str();
        let recorded = match &outcome {
            Outcome::Sent => {
                tracing::info!(
                    worker, %id, template, attempt, provider = self.transport.name(),
                    "email sent"
                );
                self.store.outbox.mark_email_sent(id, now).await
            }
            Outcome::Retry(error) => {
                let retry = retry_at(attempt, self.settings.max_attempts, now);
                match retry {
                    Some(at) => tracing::warn!(
                        worker, %id, template, attempt, error = %error, retry_at = %at,
                        "email attempt failed; will retry"
                    ),
                    None => tracing::warn!(
                        worker, %id, template, attempt, error = %error,
                        "email attempt failed; attempts exhausted"
                    ),
                }
                self.store
                    .outbox
                    .mark_email_attempt_failed(id, error, retry, now)
                    .await
            }
            Outcome::Final(error) => {
                tracing::warn!(
                    worker, %id, template, attempt, error = %error,
                    "email attempt failed; not retried"
                );
                self.store
                    .outbox
                    .mark_email_attempt_failed(id, error, None, now)
                    .await
            }
        };
        match recorded {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                worker, %id,
                "email job was no longer processing when its attempt was recorded \
                 (re-queued as stale?)"
            ),
            Err(e) => tracing::warn!(
                worker, %id, error = %describe(&e),
                "could not record an email attempt; the reaper will re-queue the job"
            ),
        }
    }

    /// Prepares the job's message (minting and storing its code first) and sends it within
    /// the send timeout.
    async fn run(&self, job: &ClaimedEmail) -> Outcome {
        let prepared = match self.prepare(job).await {
            Ok(p) => p,
            Err(outcome) => return outcome,
        };
        let timeout = self.settings.send_timeout;
        let result = tokio::time::timeout(timeout, self.transport.send(&prepared.email)).await;
        let code = prepared.code.as_ref();
        match result {
            Ok(Ok(())) => Outcome::Sent,
            Err(_) => Outcome::Retry(format!("no answer within {} ms", timeout.as_millis())),
            Ok(Err(e)) if e.is_retryable() => Outcome::Retry(bounded(&e.to_string(), code)),
            Ok(Err(e)) => Outcome::Final(bounded(&e.to_string(), code)),
        }
    }

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
                            Some(&code),
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
        } = rendered.map_err(|e| Outcome::Final(bounded(&e.to_string(), code.as_ref())))?;
        Ok(Prepared {
            email: Email {
                to: job.to_email.clone(),
                subject: subject.to_owned(),
                text,
                html,
            },
            code,
        })
    }
}

/// An error and its sources, joined with `: `.
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(error);
    while let Some(e) = current {
        let text = e.to_string();
        if !text.is_empty() && parts.last() != Some(&text) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

/// What is kept as `last_error`: the code (should anything ever repeat it) replaced, control
/// characters replaced, at most [`MAX_ERROR_CHARS`] characters.
fn bounded(text: &str, code: Option<&Code>) -> String {
    let text = match code {
        Some(code) => text.replace(code.expose(), "<code>"),
        None => text.to_owned(),
    };
    text.chars()
        .take(MAX_ERROR_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Runs `step` (one maintenance statement of at most `batch` rows) until a batch comes back
/// short, an error (logged as `failed`) or a stop; returns the rows it touched.
async fn in_batches<F>(
    batch: u32,
    stop: &watch::Receiver<bool>,
    failed: &'static str,
    mut step: impl FnMut() -> F,
) -> u64
where
    F: std::future::Future<Output = Result<u64, StoreError>>,
{
    let mut total = 0u64;
    loop {
        match step().await {
            Ok(n) => {
                total = total.saturating_add(n);
                if n < u64::from(batch) || stopped(stop) {
                    return total;
                }
            }
            Err(e) => {
                tracing::warn!(error = %describe(&e), "{failed}");
                return total;
            }
        }
    }
}

async fn reaper(
    shared: Arc<Shared>,
    stale_after: Duration,
    interval: Duration,
    batch: u32,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let now = shared.clock.now();
        let stale_before = now.saturating_sub(span(stale_after));
        let total = in_batches(batch, &stop, "email stale reaper failed", || {
            shared
                .store
                .outbox
                .requeue_stale_emails(stale_before, now, batch)
        })
        .await;
        if total > 0 {
            tracing::info!(requeued = total, "re-queued stale email claims");
        }
        if !pause_or_stop(&mut stop, interval).await {
            break;
        }
    }
}

async fn cleanup(
    shared: Arc<Shared>,
    interval: Duration,
    batch: u32,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let now = shared.clock.now();
        let sent_before = now.saturating_sub(span(shared.settings.sent_retention));
        let failed_before = now.saturating_sub(span(shared.settings.failed_retention));
        let emails = in_batches(batch, &stop, "email cleanup failed", || {
            shared
                .store
                .outbox
                .purge_emails(sent_before, failed_before, batch)
        })
        .await;
        let challenges = in_batches(batch, &stop, "challenge cleanup failed", || {
            shared.store.challenges.purge_challenges(now, batch)
        })
        .await;
        if emails.saturating_add(challenges) > 0 {
            tracing::info!(emails, challenges, "purged old email jobs and challenges");
        }
        if !pause_or_stop(&mut stop, interval).await {
            break;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_30_seconds_apart_until_the_attempts_are_used_up() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let later = Some(now + time::Duration::seconds(30));
        assert_eq!(retry_at(1, 10, now), later);
        assert_eq!(retry_at(2, 10, now), later);
        assert_eq!(retry_at(9, 10, now), later);
        assert_eq!(retry_at(10, 10, now), None);
        assert_eq!(retry_at(11, 10, now), None);
        assert_eq!(retry_at(1, 1, now), None);
        // Zero attempts configured still allows the one that was made, and no more.
        assert_eq!(retry_at(1, 0, now), None);
    }

    #[test]
    fn a_claim_is_stale_after_twice_the_send_timeout_and_30_seconds() {
        let mut s = MailSettings::new("https://auth.example.org/");
        assert_eq!(s.public_url, "https://auth.example.org");
        assert_eq!(s.processing_stale_after(), Duration::from_secs(50));
        s.send_timeout = Duration::from_millis(1500);
        assert_eq!(s.processing_stale_after(), Duration::from_secs(33));
        s.send_timeout = Duration::MAX;
        assert_eq!(s.processing_stale_after(), Duration::MAX);
    }

    #[test]
    fn last_errors_are_bounded_one_line_and_never_hold_the_code() {
        let code = Code::parse("314159").unwrap();
        let e = bounded("server said 550 314159\r\nrejected", Some(&code));
        assert_eq!(e, "server said 550 <code>  rejected");
        let long = "x".repeat(2 * MAX_ERROR_CHARS);
        assert_eq!(bounded(&long, None).chars().count(), MAX_ERROR_CHARS);
        let wide = "é".repeat(2 * MAX_ERROR_CHARS);
        assert_eq!(bounded(&wide, None).chars().count(), MAX_ERROR_CHARS);
    }

    #[test]
    fn describe_joins_the_source_chain() {
        let e = StoreError::unavailable(std::io::Error::other("connection reset"));
        assert_eq!(describe(&e), "storage unavailable: connection reset");
    }
}

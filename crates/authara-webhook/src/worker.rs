//! The webhook outbox's workers: delivery tasks that claim due events and attempt them, a
//! reaper that re-queues claims a dead worker left behind, and the retention cleanup. The loops
//! are [`authara_core::outbox`]'s; what is the webhooks' own is here: the attempt (the
//! [`Deliverer`]), upstream's retry schedule, the settings and the log fields.

use std::sync::Arc;
use std::time::Duration;

use authara_core::clock::Clock;
use authara_core::events::{ClaimedEvent, EventStore};
use authara_core::outbox::{Batches, Failure, Outbox, Outcome as Attempted, Plan, Stale, Workers};
use authara_core::store::StoreError;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::deliver::{Deliverer, Outcome};
use crate::settings::Settings;

/// Events claimed per statement (see [`authara_core::outbox`]).
pub use authara_core::outbox::CLAIM_BATCH_SIZE;
/// Upstream's fixed retry delay after the first failed attempt.
pub const FIRST_RETRY_DELAY: Duration = Duration::from_secs(30);
/// Upstream's fixed retry delay after every later failed attempt.
pub const LATER_RETRY_DELAY: Duration = Duration::from_secs(120);

/// When a failed, retryable attempt is tried again: 30 s after the first attempt, 2 min after
/// later ones; `None` (final) once `attempts_made` reaches `max_attempts` (at least 1).
pub fn retry_at(
    attempts_made: u32,
    max_attempts: u32,
    now: OffsetDateTime,
) -> Option<OffsetDateTime> {
    if attempts_made >= max_attempts.max(1) {
        return None;
    }
    let delay = if attempts_made <= 1 {
        FIRST_RETRY_DELAY
    } else {
        LATER_RETRY_DELAY
    };
    Some(now.saturating_add(span(delay)))
}

fn span(d: Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

/// The workers could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The HTTP client (TLS set-up) could not be built.
    #[error("could not build the webhook HTTP client")]
    Client(#[source] reqwest::Error),
}

/// The running webhook tasks. [`WebhookWorkers::shutdown`] stops them between attempts and waits;
/// dropping the handle stops them too, without waiting.
#[derive(Debug)]
pub struct WebhookWorkers(Workers);

impl WebhookWorkers {
    /// Spawns `worker_count` delivery workers, the stale reaper and the cleanup on the current
    /// tokio runtime. The reaper and the cleanup run once at once, then every interval.
    pub fn start(
        store: Arc<dyn EventStore>,
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        let deliverer = Deliverer::new(&settings, clock.clone()).map_err(StartError::Client)?;
        if settings.timeout >= settings.processing_stale_after {
            tracing::warn!(
                "AUTHARA_WEBHOOK_TIMEOUT is not shorter than AUTHARA_WEBHOOK_PROCESSING_STALE_AFTER: \
                 an attempt still in flight may be re-queued and sent twice"
            );
        }
        let plan = Plan {
            workers: settings.worker_count,
            poll_interval: settings.poll_interval,
            stale_after: settings.processing_stale_after,
            reaper_interval: settings.stale_reaper_interval,
            cleanup_interval: settings.cleanup_interval,
            batch_size: settings.maintenance_batch_size,
        };
        let webhooks = Webhooks {
            store,
            deliverer,
            max_attempts: settings.max_delivery_attempts,
            delivered_retention: settings.delivered_retention,
            failed_retention: settings.failed_retention,
        };
        let workers = Workers::start(Arc::new(webhooks), clock, plan);
        tracing::info!(
            endpoint = %settings.url,
            workers = settings.worker_count,
            "webhook delivery started"
        );
        Ok(Self(workers))
    }

    /// Asks every task to stop: a worker finishes the attempt in flight (bounded by the timeout),
    /// records it, and stops before the next one.
    pub fn stop(&self) {
        self.0.stop();
    }

    /// Stops the tasks and waits for them.
    pub async fn shutdown(self) {
        self.0.shutdown().await;
    }
}

/// The webhook outbox, as its workers see it.
struct Webhooks {
    store: Arc<dyn EventStore>,
    deliverer: Deliverer,
    max_attempts: u32,
    delivered_retention: Duration,
    failed_retention: Duration,
}

impl Outbox for Webhooks {
    type Job = ClaimedEvent;
    /// The receiver's status.
    type Done = u16;
    const NAME: &'static str = "webhook";
    const JOB: &'static str = "event";

    async fn claim(&self, now: OffsetDateTime, limit: u32) -> Result<Vec<Self::Job>, StoreError> {
        self.store.claim_due_events(now, limit).await
    }

    async fn attempt(&self, event: &ClaimedEvent) -> Attempted<u16> {
        match self.deliverer.deliver(event).await {
            Outcome::Delivered { status } => Attempted::Done(status),
            Outcome::Retry(error) => Attempted::Retry(error),
            Outcome::Final(error) => Attempted::Final(error),
        }
    }

    fn retry_at(&self, attempt: u32, now: OffsetDateTime) -> Option<OffsetDateTime> {
        retry_at(attempt, self.max_attempts, now)
    }

    async fn mark_done(&self, id: Uuid, now: OffsetDateTime) -> Result<bool, StoreError> {
        self.store.mark_event_delivered(id, now).await
    }

    async fn mark_failed(&self, f: &Failure<'_>) -> Result<bool, StoreError> {
        self.store
            .mark_event_attempt_failed(f.id, f.error, f.retry_at, f.now)
            .await
    }

    async fn requeue_stale(&self, s: Stale) -> Result<u64, StoreError> {
        self.store
            .requeue_stale_events(s.before, s.now, s.limit)
            .await
    }

    async fn clean_up(&self, now: OffsetDateTime, batches: &Batches<'_>) {
        let delivered_before = now.saturating_sub(span(self.delivered_retention));
        let failed_before = now.saturating_sub(span(self.failed_retention));
        let purged = batches
            .run("webhook cleanup failed", |limit| {
                self.store
                    .purge_events(delivered_before, failed_before, limit)
            })
            .await;
        if purged > 0 {
            tracing::info!(purged, "purged old webhook events");
        }
    }

    fn log_done(&self, worker: u32, event: &ClaimedEvent, attempt: u32, status: u16) {
        let (id, event_type) = (event.id, event.event_type.as_str());
        tracing::info!(worker, %id, event_type, attempt, status, "webhook delivered");
    }

    fn log_failed(&self, worker: u32, event: &ClaimedEvent, attempt: u32, f: &Failure<'_>) {
        let (id, event_type) = (event.id, event.event_type.as_str());
        tracing::warn!(
            worker, %id, event_type, attempt, error = %f.error,
            retry_at = f.retry_at.map(tracing::field::display),
            "webhook attempt failed; {}", f.next
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_follow_upstreams_fixed_schedule() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let s = time::Duration::seconds;
        assert_eq!(retry_at(1, 3, now), Some(now + s(30)));
        assert_eq!(retry_at(2, 3, now), Some(now + s(120)));
        assert_eq!(retry_at(3, 3, now), None);
        assert_eq!(retry_at(2, 5, now), Some(now + s(120)));
        assert_eq!(retry_at(4, 5, now), Some(now + s(120)));
        assert_eq!(retry_at(5, 5, now), None);
        assert_eq!(retry_at(6, 5, now), None);
        assert_eq!(retry_at(1, 1, now), None);
        // Zero attempts configured still allows the one that was made, and no more.
        assert_eq!(retry_at(1, 0, now), None);
    }

    #[test]
    fn huge_durations_saturate() {
        assert_eq!(span(Duration::MAX), time::Duration::MAX);
        let now = OffsetDateTime::UNIX_EPOCH;
        let _ = now.saturating_sub(span(Duration::MAX));
    }
}

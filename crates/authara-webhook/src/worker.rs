//! The background tasks: delivery workers that claim due events and attempt them, a reaper that
//! re-queues claims a dead worker left behind, and the retention cleanup.
//!
//! Workers claim one event at a time. A batch would save a statement per event but leave the
//! rest of the batch `processing` (invisible to every other worker and instance until the reaper
//! finds it, two minutes later) whenever the worker stops or dies mid-batch; at webhook volumes
//! the extra claim costs nothing, and a stop "between attempts" then loses no time at all.

use std::sync::Arc;
use std::time::Duration;

use authara_core::clock::Clock;
use authara_core::events::{ClaimedEvent, EventStore};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::deliver::{describe, Deliverer, Outcome};
use crate::settings::Settings;

/// Events claimed per statement (see the module documentation).
pub const CLAIM_BATCH_SIZE: u32 = 1;
/// Upstream's fixed retry delay after the first failed attempt.
pub const FIRST_RETRY_DELAY: Duration = Duration::from_secs(30);
/// Upstream's fixed retry delay after every later failed attempt.
pub const LATER_RETRY_DELAY: Duration = Duration::from_secs(120);
/// The shortest pause between two runs of a loop, whatever the settings say: a zero interval
/// must not spin.
const MIN_PAUSE: Duration = Duration::from_millis(10);

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
pub struct WebhookWorkers {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

struct Shared {
    store: Arc<dyn EventStore>,
    deliverer: Deliverer,
    clock: Arc<dyn Clock>,
    max_attempts: u32,
}

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
        let shared = Arc::new(Shared {
            store,
            deliverer,
            clock,
            max_attempts: settings.max_delivery_attempts,
        });
        let (stop, stopped) = watch::channel(false);
        let batch = settings.maintenance_batch_size.max(1);
        let poll = settings.poll_interval.max(MIN_PAUSE);
        let mut tasks = Vec::new();
        for worker in 0..settings.worker_count {
            tasks.push(tokio::spawn(delivery_worker(
                worker,
                shared.clone(),
                poll,
                stopped.clone(),
            )));
        }
        tasks.push(tokio::spawn(reaper(
            shared.clone(),
            settings.processing_stale_after,
            settings.stale_reaper_interval.max(MIN_PAUSE),
            batch,
            stopped.clone(),
        )));
        tasks.push(tokio::spawn(cleanup(
            shared,
            settings.delivered_retention,
            settings.failed_retention,
            settings.cleanup_interval.max(MIN_PAUSE),
            batch,
            stopped,
        )));
        tracing::info!(
            endpoint = %settings.url,
            workers = settings.worker_count,
            "webhook delivery started"
        );
        Ok(Self { stop, tasks })
    }

    /// Asks every task to stop: a worker finishes the attempt in flight (bounded by the timeout),
    /// records it, and stops before the next one.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Stops the tasks and waits for them.
    pub async fn shutdown(self) {
        self.stop();
        for task in self.tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "a webhook task ended abnormally");
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
            .claim_due_events(shared.clock.now(), CLAIM_BATCH_SIZE)
            .await;
        let busy = match claimed {
            Ok(events) => {
                let busy = !events.is_empty();
                for event in events {
                    shared.attempt(worker, event).await;
                }
                busy
            }
            Err(e) => {
                tracing::warn!(worker, error = %describe(&e), "webhook claim failed");
                false
            }
        };
        // Drain while there is work; wait only when there was none (or the store failed).
        if !busy && !pause_or_stop(&mut stop, poll).await {
            break;
        }
    }
    tracing::debug!(worker, "webhook worker stopped");
}

impl Shared {
    async fn attempt(&self, worker: u32, event: ClaimedEvent) {
        let outcome = self.deliverer.deliver(&event).await;
        let now = self.clock.now();
        let attempt = event.attempt_count.saturating_add(1);
        let id = event.id;
        let event_type = event.event_type.as_str();
        let recorded = match &outcome {
            Outcome::Delivered { status } => {
                tracing::info!(worker, %id, event_type, attempt, status, "webhook delivered");
                self.store.mark_event_delivered(id, now).await
            }
            Outcome::Retry(error) => {
                let retry = retry_at(attempt, self.max_attempts, now);
                match retry {
                    Some(at) => tracing::warn!(
                        worker, %id, event_type, attempt, error = %error, retry_at = %at,
                        "webhook attempt failed; will retry"
                    ),
                    None => tracing::warn!(
                        worker, %id, event_type, attempt, error = %error,
                        "webhook attempt failed; attempts exhausted"
                    ),
                }
                self.store
                    .mark_event_attempt_failed(id, error, retry, now)
                    .await
            }
            Outcome::Final(error) => {
                tracing::warn!(
                    worker, %id, event_type, attempt, error = %error,
                    "webhook attempt failed; not retried"
                );
                self.store
                    .mark_event_attempt_failed(id, error, None, now)
                    .await
            }
        };
        match recorded {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                worker, %id,
                "webhook event was no longer processing when its attempt was recorded \
                 (re-queued as stale?)"
            ),
            Err(e) => tracing::warn!(
                worker, %id, error = %describe(&e),
                "could not record a webhook attempt; the reaper will re-queue the event"
            ),
        }
    }
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
    F: std::future::Future<Output = Result<u64, authara_core::store::StoreError>>,
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
        let total = in_batches(batch, &stop, "webhook stale reaper failed", || {
            shared.store.requeue_stale_events(stale_before, now, batch)
        })
        .await;
        if total > 0 {
            tracing::info!(requeued = total, "re-queued stale webhook claims");
        }
        if !pause_or_stop(&mut stop, interval).await {
            break;
        }
    }
}

async fn cleanup(
    shared: Arc<Shared>,
    delivered_retention: Duration,
    failed_retention: Duration,
    interval: Duration,
    batch: u32,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let now = shared.clock.now();
        let delivered_before = now.saturating_sub(span(delivered_retention));
        let failed_before = now.saturating_sub(span(failed_retention));
        let total = in_batches(batch, &stop, "webhook cleanup failed", || {
            shared
                .store
                .purge_events(delivered_before, failed_before, batch)
        })
        .await;
        if total > 0 {
            tracing::info!(purged = total, "purged old webhook events");
        }
        if !pause_or_stop(&mut stop, interval).await {
            break;
        }
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

//! The outbox workers, written once for every outbox (the webhook events of `authara-webhook`,
//! the email jobs of `authara-smtp`): delivery tasks that claim due jobs and attempt them, a
//! reaper that re-queues claims a dead worker left behind, the retention cleanup, and the handle
//! that stops them between attempts. What a job is, how it is attempted, its retry schedule, its
//! settings and its log fields are each outbox's own: its [`Outbox`] implementation.
//!
//! Workers claim one job at a time ([`CLAIM_BATCH_SIZE`]). A batch would save a statement per
//! job but leave the rest of the batch `processing` (invisible to every other worker and instance
//! until the reaper finds it, minutes later) whenever the worker stops or dies mid-batch; at
//! outbox volumes the extra claim costs nothing, and a stop "between attempts" then loses no time
//! at all.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::clock::Clock;
use crate::store::StoreError;

/// Jobs claimed per statement (see the module documentation).
pub const CLAIM_BATCH_SIZE: u32 = 1;
/// The shortest pause between two runs of a loop, whatever the settings say: a zero interval
/// must not spin.
const MIN_PAUSE: Duration = Duration::from_millis(10);

/// One outbox, as its workers see it. Each method answers for what differs between outboxes;
/// the loops around them are [`Workers`]'.
pub trait Outbox: Send + Sync + 'static {
    /// A claimed job.
    type Job: Claimed;
    /// What a successful attempt tells its log line (the receiver's status, or nothing).
    type Done: Send;
    /// The outbox in log lines: `webhook`, `email`.
    const NAME: &'static str;
    /// One of its jobs in log lines: `event`, `job`.
    const JOB: &'static str;

    /// Claims up to `limit` jobs due at `now` (the store's claim).
    fn claim(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Self::Job>, StoreError>> + Send;

    /// Makes one attempt. Never fails: every failure is an [`Outcome`].
    fn attempt(&self, job: &Self::Job) -> impl Future<Output = Outcome<Self::Done>> + Send;

    /// When a retryable failure of attempt number `attempt` (1 for the first) is tried again;
    /// `None` once the attempts are used up.
    fn retry_at(&self, attempt: u32, now: OffsetDateTime) -> Option<OffsetDateTime>;

    /// Records a successful attempt; false when the job was no longer processing.
    fn mark_done(
        &self,
        id: Uuid,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records a failed attempt; false when the job was no longer processing.
    fn mark_failed(
        &self,
        failure: &Failure<'_>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Re-queues the stale claims of one reaper statement; returns how many.
    fn requeue_stale(&self, stale: Stale) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// One run of the retention cleanup at `now`, its statements run through `batches`.
    fn clean_up(
        &self,
        now: OffsetDateTime,
        batches: &Batches<'_>,
    ) -> impl Future<Output = ()> + Send;

    /// Logs a successful attempt (number `attempt`) of `worker`.
    fn log_done(&self, worker: u32, job: &Self::Job, attempt: u32, done: Self::Done);

    /// Logs a failed attempt (number `attempt`) of `worker`.
    fn log_failed(&self, worker: u32, job: &Self::Job, attempt: u32, failure: &Failure<'_>);
}

/// A claimed job, as the workers see it.
pub trait Claimed: Send + Sync {
    /// The job's id and the attempts made before this claim.
    fn key(&self) -> (Uuid, u32);
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<D = ()> {
    /// Delivered or sent, with what its log line says about it.
    Done(D),
    /// May pass later: tried again on the outbox's schedule until the attempts are used up. The
    /// text is bounded.
    Retry(String),
    /// Cannot pass: failed at once. The text is bounded.
    Final(String),
}

/// A failed attempt, as the outbox records and logs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure<'a> {
    /// The job.
    pub id: Uuid,
    /// Kept as its `last_error`.
    pub error: &'a str,
    /// When it is due again; `None`: it is failed for good.
    pub retry_at: Option<OffsetDateTime>,
    /// What happens next, for the log line: `will retry`, `attempts exhausted` or `not retried`.
    pub next: &'static str,
    /// When the attempt ended.
    pub now: OffsetDateTime,
}

/// One reaper statement: re-queue up to `limit` jobs claimed before `before`, due `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stale {
    /// Claims older than this belong to a worker that died.
    pub before: OffsetDateTime,
    /// When the re-queued jobs are due, and the time of the change.
    pub now: OffsetDateTime,
    /// Jobs re-queued at most.
    pub limit: u32,
}

/// How many delivery tasks run and how often each loop runs. Every interval is at least 10 ms,
/// whatever is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Delivery tasks (none: only the reaper and the cleanup run).
    pub workers: u32,
    /// Pause of an idle delivery task between two claims.
    pub poll_interval: Duration,
    /// A claim older than this belongs to a worker that died: the reaper re-queues it.
    pub stale_after: Duration,
    /// How often the reaper runs.
    pub reaper_interval: Duration,
    /// How often the cleanup runs.
    pub cleanup_interval: Duration,
    /// Rows per reaper or cleanup statement (at least 1).
    pub batch_size: u32,
}

/// The running tasks of one outbox. [`Workers::shutdown`] stops them between attempts and
/// waits; dropping the handle stops them too, without waiting.
#[derive(Debug)]
pub struct Workers {
    name: &'static str,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Spawns the plan's delivery tasks, the stale reaper and the cleanup on the current tokio
    /// runtime. The reaper and the cleanup run once at once, then every interval.
    pub fn start<O: Outbox>(outbox: Arc<O>, clock: Arc<dyn Clock>, plan: Plan) -> Self {
        let (stop, stopped) = watch::channel(false);
        let stopped = Stop(stopped);
        let poll = plan.poll_interval.max(MIN_PAUSE);
        let mut tasks = Vec::new();
        for worker in 0..plan.workers {
            let task = deliver(worker, outbox.clone(), clock.clone(), poll, stopped.clone());
            tasks.push(tokio::spawn(task));
        }
        let batch = plan.batch_size.max(1);
        let reaper = Maintenance::Reaper {
            stale_after: plan.stale_after,
        };
        let maintenance = [
            (reaper, plan.reaper_interval),
            (Maintenance::Cleanup, plan.cleanup_interval),
        ];
        for (task, interval) in maintenance {
            let interval = interval.max(MIN_PAUSE);
            let task = every(
                task,
                interval,
                batch,
                outbox.clone(),
                clock.clone(),
                stopped.clone(),
            );
            tasks.push(tokio::spawn(task));
        }
        Self {
            name: O::NAME,
            stop,
            tasks,
        }
    }

    /// Asks every task to stop: a delivery task finishes the attempt in flight (bounded by the
    /// outbox's own timeout), records it, and stops before the next one.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Stops the tasks and waits for them.
    pub async fn shutdown(self) {
        self.stop();
        for task in self.tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "a task of the {} workers ended abnormally", self.name);
            }
        }
    }
}

/// The tasks' side of the stop signal. The handle's being dropped counts as a stop.
#[derive(Debug, Clone)]
struct Stop(watch::Receiver<bool>);

impl Stop {
    fn requested(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }

    /// Sleeps for `pause` unless told to stop first; true to go on.
    async fn pause(&mut self, pause: Duration) -> bool {
        if self.requested() {
            return false;
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => !self.requested(),
            changed = self.0.changed() => changed.is_ok() && !*self.0.borrow(),
        }
    }
}

/// The maintenance statements of one run: their batch size, and the stop they heed between
/// two batches.
pub struct Batches<'a> {
    size: u32,
    stop: &'a Stop,
}

impl Batches<'_> {
    /// Runs `step` (one statement of at most the `limit` it is given) until a batch comes back
    /// short, an error (logged as `failed`) or a stop; returns the rows it touched.
    pub async fn run<F, Fut>(&self, failed: &str, mut step: F) -> u64
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<u64, StoreError>>,
    {
        let mut total = 0u64;
        loop {
            match step(self.size).await {
                Ok(n) => {
                    total = total.saturating_add(n);
                    if n < u64::from(self.size) || self.stop.requested() {
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
}

/// One delivery task: claims, attempts, drains while there is work and polls when there is none.
async fn deliver<O: Outbox>(
    worker: u32,
    outbox: Arc<O>,
    clock: Arc<dyn Clock>,
    poll: Duration,
    mut stop: Stop,
) {
    loop {
        if stop.requested() {
            break;
        }
        let busy = match outbox.claim(clock.now(), CLAIM_BATCH_SIZE).await {
            Ok(jobs) => {
                let busy = !jobs.is_empty();
                for job in jobs {
                    attempt(&*outbox, &*clock, worker, job).await;
                }
                busy
            }
            Err(e) => {
                tracing::warn!(worker, error = %describe(&e), "{} claim failed", O::NAME);
                false
            }
        };
        // Drain while there is work; wait only when there was none (or the store failed).
        if !busy && !stop.pause(poll).await {
            break;
        }
    }
    tracing::debug!(worker, "{} worker stopped", O::NAME);
}

/// Attempts a claimed job, logs the outcome and records it. A record that fails is only logged:
/// the job stays `processing` until the reaper re-queues it.
async fn attempt<O: Outbox>(outbox: &O, clock: &dyn Clock, worker: u32, job: O::Job) {
    let outcome = outbox.attempt(&job).await;
    let now = clock.now();
    let (id, made) = job.key();
    let attempt = made.saturating_add(1);
    let (error, retry_at, next) = match outcome {
        Outcome::Done(done) => {
            outbox.log_done(worker, &job, attempt, done);
            let recorded = outbox.mark_done(id, now).await;
            log_recorded::<O>(worker, id, recorded);
            return;
        }
        Outcome::Retry(error) => match outbox.retry_at(attempt, now) {
            Some(at) => (error, Some(at), "will retry"),
            None => (error, None, "attempts exhausted"),
        },
        Outcome::Final(error) => (error, None, "not retried"),
    };
    let failure = Failure {
        id,
        error: &error,
        retry_at,
        next,
        now,
    };
    outbox.log_failed(worker, &job, attempt, &failure);
    let recorded = outbox.mark_failed(&failure).await;
    log_recorded::<O>(worker, id, recorded);
}

/// Logs a record that did not go through: the job was no longer processing (re-queued as stale
/// while its attempt ran: the attempt may be repeated), or the store failed.
fn log_recorded<O: Outbox>(worker: u32, id: Uuid, recorded: Result<bool, StoreError>) {
    match recorded {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            worker, %id,
            "{} {} was no longer processing when its attempt was recorded (re-queued as stale?)",
            O::NAME, O::JOB
        ),
        Err(e) => tracing::warn!(
            worker, %id, error = %describe(&e),
            "could not record the attempt; the reaper will re-queue the {} {}",
            O::NAME, O::JOB
        ),
    }
}

/// What a periodic task does on each run.
#[derive(Debug, Clone, Copy)]
enum Maintenance {
    /// Re-queues claims older than `stale_after`.
    Reaper { stale_after: Duration },
    /// The outbox's [`Outbox::clean_up`].
    Cleanup,
}

/// Runs `task` at once, then every `interval`, until told to stop.
async fn every<O: Outbox>(
    task: Maintenance,
    interval: Duration,
    batch: u32,
    outbox: Arc<O>,
    clock: Arc<dyn Clock>,
    mut stop: Stop,
) {
    loop {
        let now = clock.now();
        let batches = Batches {
            size: batch,
            stop: &stop,
        };
        match task {
            Maintenance::Reaper { stale_after } => {
                reap(&*outbox, now, stale_after, &batches).await;
            }
            Maintenance::Cleanup => outbox.clean_up(now, &batches).await,
        }
        if !stop.pause(interval).await {
            break;
        }
    }
}

async fn reap<O: Outbox>(
    outbox: &O,
    now: OffsetDateTime,
    stale_after: Duration,
    batches: &Batches<'_>,
) {
    let before = now.saturating_sub(span(stale_after));
    let failed = format!("{} stale reaper failed", O::NAME);
    let requeued = batches
        .run(&failed, |limit| {
            outbox.requeue_stale(Stale { before, now, limit })
        })
        .await;
    if requeued > 0 {
        tracing::info!(requeued, "re-queued stale {} claims", O::NAME);
    }
}

fn span(d: Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

/// An error and its sources on one line, joined with `: `, repeated messages skipped.
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    use tokio::time::{sleep, Instant};

    use super::*;
    use crate::clock::ManualClock;

    /// A due job, the attempts made before, and how its attempt will end.
    #[derive(Debug, Clone)]
    struct Job {
        id: Uuid,
        made: u32,
        outcome: Outcome<u16>,
    }

    fn job(made: u32, outcome: Outcome<u16>) -> Job {
        Job {
            id: Uuid::new_v4(),
            made,
            outcome,
        }
    }

    /// What the workers wrote back.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Recorded {
        Done(Uuid),
        Failed {
            id: Uuid,
            error: String,
            retry_at: Option<OffsetDateTime>,
            next: &'static str,
        },
    }

    /// An outbox whose jobs are scripted, counting every call.
    #[derive(Debug, Default)]
    struct Fake {
        due: Mutex<VecDeque<Job>>,
        attempt_takes: Duration,
        failing_claims: AtomicU32,
        claims: AtomicU32,
        attempts: Mutex<Vec<(Uuid, u32)>>,
        recorded: Mutex<Vec<Recorded>>,
        stale: Mutex<u64>,
        requeues: Mutex<Vec<Stale>>,
        cleanups: AtomicU32,
    }

    impl Fake {
        fn with(jobs: impl IntoIterator<Item = Job>) -> Self {
            Self {
                due: Mutex::new(jobs.into_iter().collect()),
                ..Self::default()
            }
        }

        fn claims(&self) -> u32 {
            self.claims.load(Ordering::SeqCst)
        }

        fn recorded(&self) -> Vec<Recorded> {
            self.recorded.lock().unwrap().clone()
        }
    }

    impl Claimed for Job {
        fn key(&self) -> (Uuid, u32) {
            (self.id, self.made)
        }
    }

    impl Outbox for Fake {
        type Job = Job;
        type Done = u16;
        const NAME: &'static str = "test";
        const JOB: &'static str = "job";

        async fn claim(&self, _: OffsetDateTime, limit: u32) -> Result<Vec<Job>, StoreError> {
            self.claims.fetch_add(1, Ordering::SeqCst);
            let failing = self.failing_claims.load(Ordering::SeqCst);
            if failing > 0 {
                self.failing_claims.store(failing - 1, Ordering::SeqCst);
                return Err(StoreError::unavailable(std::io::Error::other("down")));
            }
            let mut due = self.due.lock().unwrap();
            let n = due.len().min(limit as usize);
            Ok(due.drain(..n).collect())
        }

        async fn attempt(&self, job: &Job) -> Outcome<u16> {
            sleep(self.attempt_takes).await;
            job.outcome.clone()
        }

        fn retry_at(&self, attempt: u32, now: OffsetDateTime) -> Option<OffsetDateTime> {
            (attempt < 3).then(|| now + time::Duration::seconds(30))
        }

        async fn mark_done(&self, id: Uuid, _: OffsetDateTime) -> Result<bool, StoreError> {
            self.recorded.lock().unwrap().push(Recorded::Done(id));
            Ok(true)
        }

        async fn mark_failed(&self, f: &Failure<'_>) -> Result<bool, StoreError> {
            self.recorded.lock().unwrap().push(Recorded::Failed {
                id: f.id,
                error: f.error.to_owned(),
                retry_at: f.retry_at,
                next: f.next,
            });
            Ok(true)
        }

        async fn requeue_stale(&self, stale: Stale) -> Result<u64, StoreError> {
            self.requeues.lock().unwrap().push(stale);
            let mut left = self.stale.lock().unwrap();
            let n = (*left).min(u64::from(stale.limit));
            *left -= n;
            Ok(n)
        }

        async fn clean_up(&self, _: OffsetDateTime, _: &Batches<'_>) {
            self.cleanups.fetch_add(1, Ordering::SeqCst);
        }

        fn log_done(&self, _: u32, job: &Job, attempt: u32, _: u16) {
            self.attempts.lock().unwrap().push((job.id, attempt));
        }

        fn log_failed(&self, _: u32, job: &Job, attempt: u32, _: &Failure<'_>) {
            self.attempts.lock().unwrap().push((job.id, attempt));
        }
    }

    fn start_time() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap()
    }

    /// One worker polling hourly, maintenance hourly, batches of 2.
    fn plan() -> Plan {
        Plan {
            workers: 1,
            poll_interval: Duration::from_secs(3600),
            stale_after: Duration::from_secs(120),
            reaper_interval: Duration::from_secs(3600),
            cleanup_interval: Duration::from_secs(3600),
            batch_size: 2,
        }
    }

    fn start(fake: &Arc<Fake>, plan: Plan) -> Workers {
        let clock = Arc::new(ManualClock::new(start_time()));
        Workers::start(fake.clone(), clock, plan)
    }

    /// Lets the tasks run until they wait (the runtime's time is paused: this is instant).
    async fn settle() {
        sleep(Duration::from_millis(1)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_worker_drains_the_due_jobs_then_waits_a_poll_interval() {
        let done = || job(0, Outcome::Done(200));
        let fake = Arc::new(Fake::with([done(), done(), done()]));
        let workers = start(&fake, plan());
        settle().await;
        assert_eq!(fake.recorded().len(), 3);
        // One claim a job, and one that found none.
        assert_eq!(fake.claims(), 4);
        sleep(Duration::from_secs(3599)).await;
        assert_eq!(fake.claims(), 4);
        sleep(Duration::from_secs(2)).await;
        assert_eq!(fake.claims(), 5);
        workers.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_retried_on_the_schedule_until_used_up_and_final_ones_never() {
        let first = job(0, Outcome::Retry("busy".into()));
        let last = job(2, Outcome::Retry("busy again".into()));
        let refused = job(0, Outcome::Final("refused".into()));
        let sent = job(4, Outcome::Done(204));
        let ids = [first.id, last.id, refused.id, sent.id];
        let fake = Arc::new(Fake::with([first, last, refused, sent]));
        let workers = start(&fake, plan());
        settle().await;
        workers.shutdown().await;
        let failed = |id, error: &str, retry_at, next| Recorded::Failed {
            id,
            error: error.into(),
            retry_at,
            next,
        };
        let later = start_time() + time::Duration::seconds(30);
        assert_eq!(
            fake.recorded(),
            [
                failed(ids[0], "busy", Some(later), "will retry"),
                failed(ids[1], "busy again", None, "attempts exhausted"),
                failed(ids[2], "refused", None, "not retried"),
                Recorded::Done(ids[3]),
            ]
        );
        // Attempts are numbered from the ones made before the claim.
        let numbers: Vec<u32> = fake.attempts.lock().unwrap().iter().map(|a| a.1).collect();
        assert_eq!(numbers, [1, 3, 1, 5]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_claim_waits_a_poll_interval_and_is_tried_again() {
        let fake = Arc::new(Fake::with([job(0, Outcome::Done(200))]));
        fake.failing_claims.store(1, Ordering::SeqCst);
        let mut plan = plan();
        plan.poll_interval = Duration::from_secs(1);
        let workers = start(&fake, plan);
        settle().await;
        assert!(fake.recorded().is_empty());
        sleep(Duration::from_secs(1)).await;
        assert_eq!(fake.recorded().len(), 1);
        workers.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_lets_the_attempt_in_flight_finish_and_starts_no_other() {
        let mut fake = Fake::with([job(0, Outcome::Done(200)), job(0, Outcome::Done(200))]);
        fake.attempt_takes = Duration::from_millis(500);
        let fake = Arc::new(fake);
        let workers = start(&fake, plan());
        sleep(Duration::from_millis(100)).await;
        assert_eq!(fake.claims(), 1);
        workers.shutdown().await;
        assert_eq!(fake.recorded().len(), 1);
        assert_eq!(fake.due.lock().unwrap().len(), 1);
        assert_eq!(fake.claims(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_workers_stop_at_once_and_a_dropped_handle_stops_them_too() {
        let fake = Arc::new(Fake::default());
        let workers = start(&fake, plan());
        settle().await;
        let asked = Instant::now();
        workers.shutdown().await;
        assert!(asked.elapsed() < Duration::from_millis(10));

        let fake = Arc::new(Fake::default());
        let workers = start(&fake, plan());
        settle().await;
        assert_eq!(fake.claims(), 1);
        drop(workers);
        fake.due
            .lock()
            .unwrap()
            .push_back(job(0, Outcome::Done(200)));
        sleep(Duration::from_secs(7200)).await;
        assert_eq!(fake.claims(), 1, "a dropped handle stops the workers");
        assert_eq!(fake.cleanups.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_interval_pauses_10_ms_rather_than_spin() {
        let fake = Arc::new(Fake::default());
        let spinning = Plan {
            poll_interval: Duration::ZERO,
            reaper_interval: Duration::ZERO,
            cleanup_interval: Duration::ZERO,
            ..plan()
        };
        let workers = start(&fake, spinning);
        sleep(Duration::from_millis(105)).await;
        workers.shutdown().await;
        let runs = [
            fake.claims(),
            fake.cleanups.load(Ordering::SeqCst),
            u32::try_from(fake.requeues.lock().unwrap().len()).unwrap(),
        ];
        for n in runs {
            assert!((10..=12).contains(&n), "{runs:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_reaper_runs_at_once_in_batches_until_a_short_one_even_without_workers() {
        let fake = Arc::new(Fake::default());
        *fake.stale.lock().unwrap() = 5;
        let no_workers = Plan {
            workers: 0,
            ..plan()
        };
        let workers = start(&fake, no_workers);
        settle().await;
        workers.shutdown().await;
        let now = start_time();
        let stale = Stale {
            before: now - time::Duration::minutes(2),
            now,
            limit: 2,
        };
        // 2 + 2 + 1: the short batch ends the run.
        assert_eq!(*fake.requeues.lock().unwrap(), [stale; 3]);
        assert_eq!(fake.claims(), 0);
        assert_eq!(fake.cleanups.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn batches_end_at_an_error_or_after_a_stop() {
        let (stop_tx, stop_rx) = watch::channel(false);
        let stop = Stop(stop_rx);
        let batches = Batches {
            size: 3,
            stop: &stop,
        };
        let mut calls = 0;
        let total = batches
            .run("failed", |limit| {
                calls += 1;
                let answer = if calls < 3 {
                    Ok(u64::from(limit))
                } else {
                    Err(StoreError::invalid("no"))
                };
                async move { answer }
            })
            .await;
        assert_eq!((total, calls), (6, 3));
        stop_tx.send_replace(true);
        let mut calls = 0;
        let total = batches
            .run("failed", |limit| {
                calls += 1;
                async move { Ok(u64::from(limit)) }
            })
            .await;
        assert_eq!(
            (total, calls),
            (3, 1),
            "a stop ends the run after the batch"
        );
    }

    #[test]
    fn describe_joins_the_source_chain_and_skips_repeats() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(describe(&e), "outer: inner");
        let e = StoreError::unavailable(std::io::Error::other("connection reset"));
        assert_eq!(describe(&e), "storage unavailable: connection reset");
    }

    #[test]
    fn huge_durations_saturate() {
        assert_eq!(span(Duration::MAX), time::Duration::MAX);
        let _ = start_time().saturating_sub(span(Duration::MAX));
    }
}

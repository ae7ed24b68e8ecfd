//! An in-memory outbox with the store traits' semantics, every call atomic under one lock: the
//! webhook events (`EventStore`) and, included by `authara-smtp`'s tests, the email jobs
//! (`EmailStore`). The two traits describe one life cycle (claim, mark done or failed, re-queue
//! stale claims, purge, list) under different names, so one body serves both: [`memory_outbox!`]
//! stamps it out for each. The real backends are covered by the conformance suite.
//!
//! Also the waiting helpers both suites' worker tests use.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use authara_core::events::{ClaimedEvent, EventRecord, EventStatus, EventStore};
use authara_core::mail::{ClaimedEmail, EmailRecord, EmailStatus, EmailStore};
use authara_core::store::StoreError;
use time::OffsetDateTime;
use uuid::Uuid;

/// 2026-01-01T00:00:00Z: a fixed start for the manual clock.
pub fn start_time() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap()
}

/// Polls `check` every 10 ms for up to 10 s (real time); panics with `what` on timeout.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Lets a few poll intervals pass, to show that nothing happens.
pub async fn a_few_polls() {
    tokio::time::sleep(Duration::from_millis(200)).await;
}

#[derive(Debug, Clone)]
struct Row<R> {
    record: R,
    updated_at: OffsetDateTime,
}

/// The outbox of `R` records (`EventRecord`, `EmailRecord`).
#[derive(Debug)]
pub struct MemoryOutbox<R> {
    rows: Mutex<Vec<Row<R>>>,
    /// How many times the purge was called.
    pub purge_calls: AtomicU64,
    /// How many times the stale re-queue was called.
    pub requeue_calls: AtomicU64,
}

impl<R: Clone> MemoryOutbox<R> {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            rows: Mutex::new(Vec::new()),
            purge_calls: AtomicU64::new(0),
            requeue_calls: AtomicU64::new(0),
        })
    }

    /// Inserts a record as it is, last changed at `updated_at`.
    pub fn insert(&self, record: R, updated_at: OffsetDateTime) {
        self.rows.lock().unwrap().push(Row { record, updated_at });
    }

    /// Every record, in insertion order.
    pub fn records(&self) -> Vec<R> {
        let rows = self.rows.lock().unwrap();
        rows.iter().map(|r| r.record.clone()).collect()
    }
}

/// Implements `$store` for `MemoryOutbox<$record>`: `$status` is the record's status type,
/// `$done` its done status and `$done_at` that status's timestamp, `$claimed` the claim's type
/// with the fields it copies besides `id`, `attempt_count` and `created_at`; then the trait's
/// method names, in its order.
macro_rules! memory_outbox {
    (
        $store:ident for $record:ident ($status:ident, $done:ident, $done_at:ident),
        $claimed:ident { $($field:ident),* },
        $claim:ident, $mark_done:ident, $mark_failed:ident, $requeue:ident, $purge:ident,
        $list:ident
    ) => {
        impl MemoryOutbox<$record> {
            /// The record with this id.
            pub fn get(&self, id: Uuid) -> $record {
                self.records().into_iter().find(|r| r.id == id).unwrap()
            }

            /// Every id, in insertion order.
            pub fn ids(&self) -> Vec<Uuid> {
                self.records().iter().map(|r| r.id).collect()
            }

            /// Ends the attempt on job `id` with `change` if the job is processing: the attempt
            /// is counted, the claim cleared. False when it is not processing.
            fn finish(
                &self,
                id: Uuid,
                now: OffsetDateTime,
                change: impl FnOnce(&mut $record),
            ) -> bool {
                let mut rows = self.rows.lock().unwrap();
                let Some(r) = rows
                    .iter_mut()
                    .find(|r| r.record.id == id && r.record.status == $status::Processing)
                else {
                    return false;
                };
                r.record.attempt_count += 1;
                r.record.processing_started_at = None;
                change(&mut r.record);
                r.updated_at = now;
                true
            }
        }

        #[async_trait]
        impl $store for MemoryOutbox<$record> {
            async fn $claim(
                &self,
                now: OffsetDateTime,
                limit: u32,
            ) -> Result<Vec<$claimed>, StoreError> {
                let mut rows = self.rows.lock().unwrap();
                let mut due: Vec<&mut Row<$record>> = rows
                    .iter_mut()
                    .filter(|r| {
                        r.record.status == $status::Pending && r.record.next_attempt_at <= now
                    })
                    .collect();
                due.sort_by_key(|r| (r.record.next_attempt_at, r.record.created_at, r.record.id));
                Ok(due
                    .into_iter()
                    .take(limit as usize)
                    .map(|r| {
                        r.record.status = $status::Processing;
                        r.record.processing_started_at = Some(now);
                        r.updated_at = now;
                        $claimed {
                            id: r.record.id,
                            $($field: r.record.$field.clone(),)*
                            attempt_count: r.record.attempt_count,
                            created_at: r.record.created_at,
                        }
                    })
                    .collect())
            }

            async fn $mark_done(&self, id: Uuid, now: OffsetDateTime) -> Result<bool, StoreError> {
                Ok(self.finish(id, now, |r| {
                    r.status = $status::$done;
                    r.$done_at = Some(now);
                }))
            }

            async fn $mark_failed(
                &self,
                id: Uuid,
                error: &str,
                retry_at: Option<OffsetDateTime>,
                now: OffsetDateTime,
            ) -> Result<bool, StoreError> {
                Ok(self.finish(id, now, |r| {
                    r.last_error = Some(error.to_owned());
                    match retry_at {
                        Some(at) => {
                            r.status = $status::Pending;
                            r.next_attempt_at = at;
                        }
                        None => r.status = $status::Failed,
                    }
                }))
            }

            async fn $requeue(
                &self,
                stale_before: OffsetDateTime,
                now: OffsetDateTime,
                limit: u32,
            ) -> Result<u64, StoreError> {
                self.requeue_calls.fetch_add(1, Ordering::SeqCst);
                let mut rows = self.rows.lock().unwrap();
                let mut n = 0;
                for r in rows.iter_mut() {
                    if n == u64::from(limit) {
                        break;
                    }
                    if r.record.status == $status::Processing
                        && r.record
                            .processing_started_at
                            .is_some_and(|at| at < stale_before)
                    {
                        r.record.status = $status::Pending;
                        r.record.next_attempt_at = now;
                        r.record.processing_started_at = None;
                        r.updated_at = now;
                        n += 1;
                    }
                }
                Ok(n)
            }

            async fn $purge(
                &self,
                done_before: OffsetDateTime,
                failed_before: OffsetDateTime,
                limit: u32,
            ) -> Result<u64, StoreError> {
                self.purge_calls.fetch_add(1, Ordering::SeqCst);
                let mut rows = self.rows.lock().unwrap();
                let mut n = 0;
                rows.retain(|r| {
                    let old = match r.record.status {
                        $status::$done => r.updated_at < done_before,
                        $status::Failed => r.updated_at < failed_before,
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

            async fn $list(&self, limit: u32) -> Result<Vec<$record>, StoreError> {
                let mut all = self.records();
                all.sort_by_key(|r| (r.created_at, r.id));
                all.truncate(limit as usize);
                Ok(all)
            }
        }
    };
}

memory_outbox!(
    EventStore for EventRecord (EventStatus, Delivered, delivered_at),
    ClaimedEvent { event_type, payload },
    claim_due_events, mark_event_delivered, mark_event_attempt_failed, requeue_stale_events,
    purge_events, list_events
);

memory_outbox!(
    EmailStore for EmailRecord (EmailStatus, Sent, sent_at),
    ClaimedEmail { challenge_id, to_email, template, template_data },
    claim_due_emails, mark_email_sent, mark_email_attempt_failed, requeue_stale_emails,
    purge_emails, list_emails
);

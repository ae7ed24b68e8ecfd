//! The outboxes' life cycle, written once and run on each [`Outbox`]: claiming due entries (in
//! order, once, never by two claimers), settling them (done, retry, final failure), re-queuing
//! stale claims and purging in batches. Webhook events are appended by the writes that cause
//! them, email jobs by creating challenges.

use std::collections::BTreeSet;
use std::sync::Arc;

use authara_core::store::Store;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::fixtures::{all_emails, all_events, append_events, now, queue_emails, us};

/// Claimers racing in [`claim_race`].
pub const CLAIMERS: usize = 8;

/// One of a store's two outboxes; every case here runs on either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outbox {
    /// The webhook outbox (`EventStore`), whose entries are delivered.
    Webhook,
    /// The email outbox (`EmailStore`), whose entries are sent.
    Email,
}

/// Where an entry stands, whichever the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending,
    Processing,
    /// Delivered, or sent.
    Done,
    Failed,
}

impl Status {
    /// The status stored as `name`.
    fn of(name: &str) -> Self {
        match name {
            "pending" => Self::Pending,
            "processing" => Self::Processing,
            "delivered" | "sent" => Self::Done,
            "failed" => Self::Failed,
            other => panic!("unknown outbox status {other:?}"),
        }
    }
}

/// What an entry holds for its worker, besides its id and attempts: compared between what was
/// appended, what a claim returns and what is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Carried {
    Event {
        event_type: String,
        payload: String,
    },
    Email {
        challenge_id: Option<Uuid>,
        to_email: String,
        template: String,
        template_data: String,
    },
}

/// An appended entry, as the write that appended it describes it.
struct Appended {
    id: Uuid,
    created_at: OffsetDateTime,
    carried: Carried,
}

/// A claimed entry, as the claim returns it.
struct Claim {
    id: Uuid,
    attempt_count: u32,
    created_at: OffsetDateTime,
    carried: Carried,
}

/// An entry as stored (`done_at`: `delivered_at`, or `sent_at`).
struct Entry {
    id: Uuid,
    status: Status,
    done_at: Option<OffsetDateTime>,
    attempt_count: u32,
    last_error: Option<String>,
    next_attempt_at: OffsetDateTime,
    processing_started_at: Option<OffsetDateTime>,
    carried: Carried,
}

impl Outbox {
    /// What an entry is called in failure messages.
    fn noun(self) -> &'static str {
        match self {
            Self::Webhook => "outbox row",
            Self::Email => "email job",
        }
    }

    /// Appends one pending entry per instant in `at`, created and due then, each with a write of
    /// its own (an event with a new user, a job with a signup challenge); returns them in that
    /// order.
    async fn append(self, store: &dyn Store, at: &[OffsetDateTime]) -> Vec<Appended> {
        match self {
            Self::Webhook => append_events(store, at)
                .await
                .into_iter()
                .map(|e| Appended {
                    id: e.id,
                    created_at: e.created_at,
                    carried: Carried::Event {
                        event_type: e.event_type.as_str().to_owned(),
                        payload: e.payload,
                    },
                })
                .collect(),
            Self::Email => queue_emails(store, at)
                .await
                .into_iter()
                .map(|c| Appended {
                    id: c.email_job_id,
                    created_at: c.created_at,
                    carried: Carried::Email {
                        challenge_id: Some(c.id),
                        to_email: c.email,
                        template: c.purpose.template().to_owned(),
                        template_data: "{}".to_owned(),
                    },
                })
                .collect(),
        }
    }

    async fn claim(self, store: &dyn Store, now: OffsetDateTime, limit: u32) -> Vec<Claim> {
        match self {
            Self::Webhook => store
                .claim_due_events(now, limit)
                .await
                .expect("claim events")
                .into_iter()
                .map(|c| Claim {
                    id: c.id,
                    attempt_count: c.attempt_count,
                    created_at: c.created_at,
                    carried: Carried::Event {
                        event_type: c.event_type,
                        payload: c.payload,
                    },
                })
                .collect(),
            Self::Email => store
                .claim_due_emails(now, limit)
                .await
                .expect("claim emails")
                .into_iter()
                .map(|c| Claim {
                    id: c.id,
                    attempt_count: c.attempt_count,
                    created_at: c.created_at,
                    carried: Carried::Email {
                        challenge_id: c.challenge_id,
                        to_email: c.to_email,
                        template: c.template,
                        template_data: c.template_data,
                    },
                })
                .collect(),
        }
    }

    /// Settles a processing entry as delivered or sent.
    async fn mark_done(self, store: &dyn Store, id: Uuid, now: OffsetDateTime) -> bool {
        match self {
            Self::Webhook => store.mark_event_delivered(id, now).await,
            Self::Email => store.mark_email_sent(id, now).await,
        }
        .expect("mark done")
    }

    async fn mark_attempt_failed(
        self,
        store: &dyn Store,
        id: Uuid,
        error: &str,
        retry_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> bool {
        match self {
            Self::Webhook => {
                store
                    .mark_event_attempt_failed(id, error, retry_at, now)
                    .await
            }
            Self::Email => {
                store
                    .mark_email_attempt_failed(id, error, retry_at, now)
                    .await
            }
        }
        .expect("mark attempt failed")
    }

    async fn requeue_stale(
        self,
        store: &dyn Store,
        stale_before: OffsetDateTime,
        now: OffsetDateTime,
        limit: u32,
    ) -> u64 {
        match self {
            Self::Webhook => store.requeue_stale_events(stale_before, now, limit).await,
            Self::Email => store.requeue_stale_emails(stale_before, now, limit).await,
        }
        .expect("requeue stale")
    }

    /// Purges entries done before `done_before` or failed before `failed_before`.
    async fn purge(
        self,
        store: &dyn Store,
        done_before: OffsetDateTime,
        failed_before: OffsetDateTime,
        limit: u32,
    ) -> u64 {
        match self {
            Self::Webhook => store.purge_events(done_before, failed_before, limit).await,
            Self::Email => store.purge_emails(done_before, failed_before, limit).await,
        }
        .expect("purge")
    }

    /// Every entry, oldest first.
    async fn entries(self, store: &dyn Store) -> Vec<Entry> {
        match self {
            Self::Webhook => all_events(store)
                .await
                .into_iter()
                .map(|r| Entry {
                    id: r.id,
                    status: Status::of(r.status.as_str()),
                    done_at: r.delivered_at,
                    attempt_count: r.attempt_count,
                    last_error: r.last_error,
                    next_attempt_at: r.next_attempt_at,
                    processing_started_at: r.processing_started_at,
                    carried: Carried::Event {
                        event_type: r.event_type,
                        payload: r.payload,
                    },
                })
                .collect(),
            Self::Email => all_emails(store)
                .await
                .into_iter()
                .map(|r| Entry {
                    id: r.id,
                    status: Status::of(r.status.as_str()),
                    done_at: r.sent_at,
                    attempt_count: r.attempt_count,
                    last_error: r.last_error,
                    next_attempt_at: r.next_attempt_at,
                    processing_started_at: r.processing_started_at,
                    carried: Carried::Email {
                        challenge_id: r.challenge_id,
                        to_email: r.to_email,
                        template: r.template,
                        template_data: r.template_data,
                    },
                })
                .collect(),
        }
    }

    /// The entry with this id.
    async fn entry(self, store: &dyn Store, id: Uuid) -> Entry {
        self.entries(store)
            .await
            .into_iter()
            .find(|e| e.id == id)
            .unwrap_or_else(|| panic!("{} {id} exists", self.noun()))
    }

    /// The ids of the entries stored, in any order.
    async fn ids_stored(self, store: &dyn Store) -> BTreeSet<Uuid> {
        self.entries(store).await.iter().map(|e| e.id).collect()
    }
}

fn ids(claimed: &[Claim]) -> Vec<Uuid> {
    claimed.iter().map(|c| c.id).collect()
}

/// Claims only entries due at `now` (`next_attempt_at <= now`), ordered by due time, then
/// creation, then id, at most `limit`; sets them processing since `now` and returns them with
/// what their worker needs (the stored envelope; the challenge, address, template and data) and
/// their attempt count.
pub async fn claim_order_and_due_time(store: &dyn Store, outbox: Outbox) {
    let t = now();
    // Appended out of order; two share one instant (tie broken by id).
    let instants = [
        t - us(3),
        t + us(1),
        t - us(10),
        t,
        t - us(3),
        t + Duration::hours(1),
    ];
    let appended = outbox.append(store, &instants).await;
    let mut due: Vec<_> = appended
        .iter()
        .filter(|a| a.created_at <= t)
        .map(|a| (a.created_at, a.id))
        .collect();
    due.sort();
    let due: Vec<Uuid> = due.into_iter().map(|(_, id)| id).collect();
    assert_eq!(due.len(), 4);

    let first = outbox.claim(store, t, 3).await;
    assert_eq!(ids(&first), due[..3].to_vec());
    for claimed in &first {
        let appended = appended.iter().find(|a| a.id == claimed.id).unwrap();
        assert_eq!(claimed.carried, appended.carried);
        assert_eq!(claimed.attempt_count, 0);
        assert_eq!(claimed.created_at, appended.created_at);
        let entry = outbox.entry(store, claimed.id).await;
        assert_eq!(entry.carried, appended.carried);
        assert_eq!(entry.status, Status::Processing);
        assert_eq!(entry.processing_started_at, Some(t));
    }
    let rest = outbox.claim(store, t, 3).await;
    assert_eq!(ids(&rest), due[3..].to_vec());

    // The entries not yet due stay pending until they are.
    for a in appended.iter().filter(|a| a.created_at > t) {
        assert_eq!(outbox.entry(store, a.id).await.status, Status::Pending);
    }
    let later = outbox.claim(store, t + us(1), 10).await;
    assert_eq!(ids(&later), vec![appended[1].id]);
    assert!(outbox.claim(store, t + us(1), 10).await.is_empty());
    let last = outbox.claim(store, t + Duration::hours(1), 10).await;
    assert_eq!(ids(&last), vec![appended[5].id]);
}

/// A claimed entry is not claimed again, however late the second claim; a limit of 0 claims
/// nothing.
pub async fn claim_twice_gives_nothing_the_second_time(store: &dyn Store, outbox: Outbox) {
    let t = now();
    let appended = outbox.append(store, &[t - us(2), t - us(1)]).await;
    assert!(outbox.claim(store, t, 0).await.is_empty());
    let first = outbox.claim(store, t, 10).await;
    assert_eq!(
        ids(&first),
        appended.iter().map(|a| a.id).collect::<Vec<_>>()
    );
    assert!(outbox.claim(store, t, 10).await.is_empty());
    assert!(outbox
        .claim(store, t + Duration::days(1), 10)
        .await
        .is_empty());
}

/// [`CLAIMERS`] tasks claiming at once, in small batches until nothing is left, never get the
/// same entry, and between them get every entry.
pub async fn claim_race(store: Arc<dyn Store>, outbox: Outbox) {
    let t = now();
    let instants: Vec<_> = (0..40).map(|i| t - us(i)).collect();
    let appended = outbox.append(&*store, &instants).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(CLAIMERS));
    let tasks: Vec<_> = (0..CLAIMERS)
        .map(|_| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                let mut mine = Vec::new();
                loop {
                    let batch = outbox.claim(&*store, t, 3).await;
                    if batch.is_empty() {
                        return mine;
                    }
                    mine.extend(ids(&batch));
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    let mut seen = BTreeSet::new();
    let mut total = 0;
    for task in tasks {
        let mine = task.await.expect("claimer did not panic");
        total += mine.len();
        for id in mine {
            assert!(seen.insert(id), "{} {id} was claimed twice", outbox.noun());
        }
    }
    assert_eq!(total, appended.len());
    assert_eq!(seen, appended.iter().map(|a| a.id).collect::<BTreeSet<_>>());
    assert!(outbox
        .entries(&*store)
        .await
        .iter()
        .all(|e| e.status == Status::Processing));
}

/// Done (delivered, sent): counted, stamped and final; a second settle of the entry is refused.
/// A failed attempt with a retry time goes back to pending, due then, with the error kept; the
/// next claim reports the attempts made; without a retry time the failure is final.
pub async fn mark_done_retry_and_final_failure(store: &dyn Store, outbox: Outbox) {
    let t = now();
    let appended = outbox.append(store, &[t - us(2), t - us(1)]).await;
    let (ok, flaky) = (appended[0].id, appended[1].id);

    // Only processing entries can be settled.
    assert!(!outbox.mark_done(store, ok, t).await);
    assert!(!outbox.mark_attempt_failed(store, ok, "nope", None, t).await);
    assert!(!outbox.mark_done(store, Uuid::new_v4(), t).await);
    assert_eq!(outbox.claim(store, t, 10).await.len(), 2);

    let settled = t + us(7);
    assert!(outbox.mark_done(store, ok, settled).await);
    let entry = outbox.entry(store, ok).await;
    assert_eq!(entry.status, Status::Done);
    assert_eq!(entry.done_at, Some(settled));
    assert_eq!(entry.attempt_count, 1);
    assert_eq!(entry.last_error, None);
    assert_eq!(
        entry.processing_started_at, None,
        "set only while processing"
    );
    assert!(!outbox.mark_done(store, ok, settled).await);
    assert!(
        !outbox
            .mark_attempt_failed(store, ok, "late", None, settled)
            .await
    );

    let retry_at = t + Duration::minutes(1);
    assert!(
        outbox
            .mark_attempt_failed(store, flaky, "busy, try later", Some(retry_at), settled)
            .await
    );
    let entry = outbox.entry(store, flaky).await;
    assert_eq!(entry.status, Status::Pending);
    assert_eq!(entry.next_attempt_at, retry_at);
    assert_eq!(entry.attempt_count, 1);
    assert_eq!(entry.last_error.as_deref(), Some("busy, try later"));
    assert_eq!(entry.done_at, None);
    assert_eq!(entry.processing_started_at, None);
    assert!(!outbox.mark_done(store, flaky, settled).await);

    assert!(outbox.claim(store, retry_at - us(1), 10).await.is_empty());
    let again = outbox.claim(store, retry_at, 10).await;
    assert_eq!(ids(&again), vec![flaky]);
    assert_eq!(again[0].attempt_count, 1);

    assert!(
        outbox
            .mark_attempt_failed(store, flaky, "rejected", None, retry_at)
            .await
    );
    let entry = outbox.entry(store, flaky).await;
    assert_eq!(entry.status, Status::Failed);
    assert_eq!(entry.attempt_count, 2);
    assert_eq!(entry.last_error.as_deref(), Some("rejected"));
    assert_eq!(entry.processing_started_at, None);
    assert!(outbox
        .claim(store, t + Duration::days(30), 10)
        .await
        .is_empty());
}

/// Entries processing since before `stale_before` go back to pending, due `now`, at most `limit`
/// per call, the attempt not counted; entries claimed later stay claimed, and a re-queued entry
/// can be claimed again.
pub async fn requeue_stale_batches(store: &dyn Store, outbox: Outbox) {
    let t = now();
    let appended = outbox
        .append(store, &[t - us(5), t - us(4), t - us(3), t - us(2)])
        .await;
    assert_eq!(outbox.claim(store, t, 3).await.len(), 3);
    let fresh_claim = t + Duration::minutes(10);
    let fresh = outbox.claim(store, fresh_claim, 10).await;
    assert_eq!(ids(&fresh), vec![appended[3].id]);

    let later = t + Duration::minutes(20);
    let stale_before = t + us(1);
    for want in [2, 1, 0] {
        assert_eq!(
            outbox.requeue_stale(store, stale_before, later, 2).await,
            want
        );
    }
    for a in &appended[..3] {
        let entry = outbox.entry(store, a.id).await;
        assert_eq!(entry.status, Status::Pending, "{}", a.id);
        assert_eq!(entry.next_attempt_at, later);
        assert_eq!(entry.processing_started_at, None);
        assert_eq!(entry.attempt_count, 0);
    }
    let entry = outbox.entry(store, appended[3].id).await;
    assert_eq!(entry.status, Status::Processing);
    assert_eq!(entry.processing_started_at, Some(fresh_claim));

    let mut got = ids(&outbox.claim(store, later, 10).await);
    got.sort();
    let mut want: Vec<Uuid> = appended[..3].iter().map(|a| a.id).collect();
    want.sort();
    assert_eq!(got, want);
}

/// Purging deletes entries done before `done_before` and failed before `failed_before`, at most
/// `limit` per call; pending, processing and recent entries stay, and the two cut-offs are
/// independent.
pub async fn purge_batches(store: &dyn Store, outbox: Outbox) {
    let t = now();
    let instants: Vec<_> = (0..8).map(|i| t - us(10 - i)).collect();
    let appended: Vec<Uuid> = outbox
        .append(store, &instants)
        .await
        .iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(outbox.claim(store, t, 7).await.len(), 7);
    let old = t + us(1);
    let recent = t + Duration::days(2);
    // 0..3 done long ago, 3 done recently, 4..6 failed long ago, 6 failed recently,
    // 7 processing; one more entry pending (not yet due) below.
    for &id in &appended[..3] {
        assert!(outbox.mark_done(store, id, old).await);
    }
    assert!(outbox.mark_done(store, appended[3], recent).await);
    for &id in &appended[4..6] {
        assert!(
            outbox
                .mark_attempt_failed(store, id, "gone", None, old)
                .await
        );
    }
    assert!(
        outbox
            .mark_attempt_failed(store, appended[6], "gone", None, recent)
            .await
    );
    let pending = outbox.append(store, &[t + Duration::hours(1)]).await;
    assert_eq!(ids(&outbox.claim(store, t, 10).await), vec![appended[7]]);

    let cutoff = t + Duration::days(1);
    for want in [2, 2, 1, 0] {
        assert_eq!(outbox.purge(store, cutoff, cutoff, 2).await, want);
    }
    let expected: BTreeSet<Uuid> = [appended[3], appended[6], appended[7], pending[0].id]
        .into_iter()
        .collect();
    assert_eq!(outbox.ids_stored(store).await, expected);

    // The two cut-offs are independent.
    assert_eq!(outbox.purge(store, t + Duration::days(3), t, 10).await, 1);
    assert_eq!(
        outbox.entry(store, appended[6]).await.status,
        Status::Failed
    );
    assert_eq!(outbox.purge(store, t, t + Duration::days(3), 10).await, 1);
    assert_eq!(
        outbox.ids_stored(store).await,
        [appended[7], pending[0].id].into_iter().collect()
    );
}

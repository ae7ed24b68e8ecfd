//! The email outbox: claiming due jobs (in order, once, never by two claimers), settling them
//! (sent, retry, final failure), re-queuing stale claims and purging in batches. The same life
//! cycle as the webhook outbox (`events`); jobs are queued by creating challenges.

use std::collections::BTreeSet;
use std::sync::Arc;

use authara_core::store::{ClaimedEmail, EmailStatus, Purpose, Store};
use time::Duration;
use uuid::Uuid;

use super::fixtures::{all_emails, email_row, now, queue_emails, us};

/// Claimers racing in [`claim_due_emails_race`].
pub const EMAIL_CLAIMERS: usize = 8;

fn ids(claimed: &[ClaimedEmail]) -> Vec<Uuid> {
    claimed.iter().map(|e| e.id).collect()
}

/// Claims only jobs due at `now`, ordered by due time, then creation, then id, at most
/// `limit`; sets them processing since `now` and returns them with what the worker needs
/// (challenge, address, template, data, attempts so far).
pub async fn claim_due_emails_order_and_due_time(store: &dyn Store) {
    let t = now();
    // Queued out of order; two share one instant (tie broken by id).
    let instants = [
        t - us(3),
        t + us(1),
        t - us(10),
        t,
        t - us(3),
        t + Duration::hours(1),
    ];
    let jobs = queue_emails(store, &instants).await;
    let mut due: Vec<_> = instants
        .iter()
        .zip(&jobs)
        .filter(|(at, _)| **at <= t)
        .map(|(at, id)| (*at, *id))
        .collect();
    due.sort();
    let due: Vec<Uuid> = due.into_iter().map(|(_, id)| id).collect();
    assert_eq!(due.len(), 4);

    let first = store.claim_due_emails(t, 3).await.expect("claim");
    assert_eq!(ids(&first), due[..3].to_vec());
    for claimed in &first {
        let row = email_row(store, claimed.id).await;
        assert_eq!(claimed.challenge_id, row.challenge_id);
        assert!(claimed.challenge_id.is_some());
        assert_eq!(claimed.to_email, row.to_email);
        assert_eq!(claimed.template, Purpose::Signup.template());
        assert_eq!(claimed.template_data, "{}");
        assert_eq!(claimed.attempt_count, 0);
        assert_eq!(claimed.created_at, row.created_at);
        assert_eq!(row.status, EmailStatus::Processing);
        assert_eq!(row.processing_started_at, Some(t));
    }
    let rest = store.claim_due_emails(t, 3).await.expect("claim");
    assert_eq!(ids(&rest), due[3..].to_vec());

    assert_eq!(email_row(store, jobs[1]).await.status, EmailStatus::Pending);
    assert_eq!(email_row(store, jobs[5]).await.status, EmailStatus::Pending);
    let later = store.claim_due_emails(t + us(1), 10).await.expect("claim");
    assert_eq!(ids(&later), vec![jobs[1]]);
    assert!(store
        .claim_due_emails(t + us(1), 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store.claim_due_emails(t, 0).await.unwrap().is_empty());
    let last = store
        .claim_due_emails(t + Duration::hours(1), 10)
        .await
        .expect("claim");
    assert_eq!(ids(&last), vec![jobs[5]]);
    assert!(store
        .claim_due_emails(t + Duration::days(1), 10)
        .await
        .unwrap()
        .is_empty());
}

/// [`EMAIL_CLAIMERS`] tasks claiming at once, in small batches until nothing is left, never
/// get the same job, and between them get every job.
pub async fn claim_due_emails_race(store: Arc<dyn Store>) {
    let t = now();
    let instants: Vec<_> = (0..40).map(|i| t - us(i)).collect();
    let jobs = queue_emails(&*store, &instants).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(EMAIL_CLAIMERS));
    let tasks: Vec<_> = (0..EMAIL_CLAIMERS)
        .map(|_| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                let mut mine = Vec::new();
                loop {
                    let batch = store.claim_due_emails(t, 3).await.expect("claim");
                    if batch.is_empty() {
                        return mine;
                    }
                    mine.extend(batch.into_iter().map(|e| e.id));
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
            assert!(seen.insert(id), "job {id} was claimed twice");
        }
    }
    assert_eq!(total, jobs.len());
    assert_eq!(seen, jobs.iter().copied().collect::<BTreeSet<_>>());
    assert!(all_emails(&*store)
        .await
        .iter()
        .all(|e| e.status == EmailStatus::Processing));
}

/// Sent: counted, stamped and final; a second settle is refused. A failed attempt with a retry
/// time goes back to pending, due then, with the error kept; the next claim reports the
/// attempts made; without a retry time the failure is final.
pub async fn mark_email_sent_retry_and_final_failure(store: &dyn Store) {
    let t = now();
    let jobs = queue_emails(store, &[t - us(2), t - us(1)]).await;
    let (ok, flaky) = (jobs[0], jobs[1]);

    // Only processing jobs can be settled.
    assert!(!store.mark_email_sent(ok, t).await.unwrap());
    assert!(!store
        .mark_email_attempt_failed(ok, "nope", None, t)
        .await
        .unwrap());
    assert!(!store.mark_email_sent(Uuid::new_v4(), t).await.unwrap());
    assert_eq!(store.claim_due_emails(t, 10).await.unwrap().len(), 2);

    let settled = t + us(7);
    assert!(store.mark_email_sent(ok, settled).await.unwrap());
    let row = email_row(store, ok).await;
    assert_eq!(row.status, EmailStatus::Sent);
    assert_eq!(row.sent_at, Some(settled));
    assert_eq!(row.attempt_count, 1);
    assert_eq!(row.last_error, None);
    assert_eq!(row.processing_started_at, None, "set only while processing");
    assert!(!store.mark_email_sent(ok, settled).await.unwrap());
    assert!(!store
        .mark_email_attempt_failed(ok, "late", None, settled)
        .await
        .unwrap());

    let retry_at = t + Duration::seconds(30);
    assert!(store
        .mark_email_attempt_failed(flaky, "SMTP 451", Some(retry_at), settled)
        .await
        .unwrap());
    let row = email_row(store, flaky).await;
    assert_eq!(row.status, EmailStatus::Pending);
    assert_eq!(row.next_attempt_at, retry_at);
    assert_eq!(row.attempt_count, 1);
    assert_eq!(row.last_error.as_deref(), Some("SMTP 451"));
    assert_eq!(row.sent_at, None);
    assert_eq!(row.processing_started_at, None);
    assert!(!store.mark_email_sent(flaky, settled).await.unwrap());

    assert!(store
        .claim_due_emails(retry_at - us(1), 10)
        .await
        .unwrap()
        .is_empty());
    let again = store.claim_due_emails(retry_at, 10).await.unwrap();
    assert_eq!(ids(&again), vec![flaky]);
    assert_eq!(again[0].attempt_count, 1);

    assert!(store
        .mark_email_attempt_failed(flaky, "SMTP 550", None, retry_at)
        .await
        .unwrap());
    let row = email_row(store, flaky).await;
    assert_eq!(row.status, EmailStatus::Failed);
    assert_eq!(row.attempt_count, 2);
    assert_eq!(row.last_error.as_deref(), Some("SMTP 550"));
    assert_eq!(row.processing_started_at, None);
    assert!(store
        .claim_due_emails(t + Duration::days(30), 10)
        .await
        .unwrap()
        .is_empty());
}

/// Jobs processing since before `stale_before` go back to pending, due `now`, at most `limit`
/// per call, the attempt not counted; jobs claimed later stay claimed, and a re-queued job
/// can be claimed again.
pub async fn requeue_stale_emails_batches(store: &dyn Store) {
    let t = now();
    let jobs = queue_emails(store, &[t - us(5), t - us(4), t - us(3), t - us(2)]).await;
    assert_eq!(store.claim_due_emails(t, 3).await.unwrap().len(), 3);
    let fresh_claim = t + Duration::minutes(10);
    let fresh = store.claim_due_emails(fresh_claim, 10).await.unwrap();
    assert_eq!(ids(&fresh), vec![jobs[3]]);

    let later = t + Duration::minutes(20);
    let stale_before = t + us(1);
    for want in [2, 1, 0] {
        assert_eq!(
            store
                .requeue_stale_emails(stale_before, later, 2)
                .await
                .unwrap(),
            want
        );
    }
    for &id in &jobs[..3] {
        let row = email_row(store, id).await;
        assert_eq!(row.status, EmailStatus::Pending, "{id}");
        assert_eq!(row.next_attempt_at, later);
        assert_eq!(row.processing_started_at, None);
        assert_eq!(row.attempt_count, 0);
    }
    let row = email_row(store, jobs[3]).await;
    assert_eq!(row.status, EmailStatus::Processing);
    assert_eq!(row.processing_started_at, Some(fresh_claim));

    let mut got = ids(&store.claim_due_emails(later, 10).await.unwrap());
    got.sort();
    let mut want = jobs[..3].to_vec();
    want.sort();
    assert_eq!(got, want);
}

/// Purging deletes jobs sent before `sent_before` and failed before `failed_before`, at most
/// `limit` per call; pending, processing and recent jobs stay, and the two cut-offs are
/// independent.
pub async fn purge_emails_batches(store: &dyn Store) {
    let t = now();
    let instants: Vec<_> = (0..8).map(|i| t - us(10 - i)).collect();
    let jobs = queue_emails(store, &instants).await;
    assert_eq!(store.claim_due_emails(t, 7).await.unwrap().len(), 7);
    let old = t + us(1);
    let recent = t + Duration::days(2);
    // 0..3 sent long ago, 3 sent recently, 4..6 failed long ago, 6 failed recently,
    // 7 processing; one more job pending (not yet due) below.
    for &id in &jobs[..3] {
        assert!(store.mark_email_sent(id, old).await.unwrap());
    }
    assert!(store.mark_email_sent(jobs[3], recent).await.unwrap());
    for &id in &jobs[4..6] {
        assert!(store
            .mark_email_attempt_failed(id, "gone", None, old)
            .await
            .unwrap());
    }
    assert!(store
        .mark_email_attempt_failed(jobs[6], "gone", None, recent)
        .await
        .unwrap());
    let pending = queue_emails(store, &[t + Duration::hours(1)]).await;
    assert_eq!(
        ids(&store.claim_due_emails(t, 10).await.unwrap()),
        vec![jobs[7]]
    );

    let cutoff = t + Duration::days(1);
    for want in [2, 2, 1, 0] {
        assert_eq!(store.purge_emails(cutoff, cutoff, 2).await.unwrap(), want);
    }
    let left: BTreeSet<Uuid> = all_emails(store).await.iter().map(|e| e.id).collect();
    let expected: BTreeSet<Uuid> = [jobs[3], jobs[6], jobs[7], pending[0]]
        .into_iter()
        .collect();
    assert_eq!(left, expected);

    assert_eq!(
        store
            .purge_emails(t + Duration::days(3), t, 10)
            .await
            .unwrap(),
        1
    );
    assert_eq!(email_row(store, jobs[6]).await.status, EmailStatus::Failed);
    assert_eq!(
        store
            .purge_emails(t, t + Duration::days(3), 10)
            .await
            .unwrap(),
        1
    );
    let left: BTreeSet<Uuid> = all_emails(store).await.iter().map(|e| e.id).collect();
    assert_eq!(left, [jobs[7], pending[0]].into_iter().collect());
}

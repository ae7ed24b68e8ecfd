//! The outbox: claiming due events (in order, once, never by two claimers), settling them
//! (delivered, retry, final failure), re-queuing stale claims and purging in batches.

use std::collections::BTreeSet;
use std::sync::Arc;

use authara_core::store::{ClaimedEvent, EventStatus, Store};
use time::Duration;
use uuid::Uuid;

use super::fixtures::{all_events, append_events, event_row, now, us};

/// Claimers racing in [`claim_due_events_race`].
pub const CLAIMERS: usize = 8;

fn ids(claimed: &[ClaimedEvent]) -> Vec<Uuid> {
    claimed.iter().map(|e| e.id).collect()
}

/// Claims only rows due at `now` (`next_attempt_at <= now`), ordered by due time, then
/// creation, then id, at most `limit`; sets them processing since `now` and returns them with
/// their stored envelope and attempt count.
pub async fn claim_due_events_order_and_due_time(store: &dyn Store) {
    let t = now();
    // Appended out of order; two share one instant (tie broken by id).
    let events = append_events(
        store,
        &[
            t - us(3),
            t + us(1),
            t - us(10),
            t,
            t - us(3),
            t + Duration::hours(1),
        ],
    )
    .await;
    let mut due: Vec<_> = events
        .iter()
        .filter(|e| e.created_at <= t)
        .map(|e| (e.created_at, e.id))
        .collect();
    due.sort();
    let due: Vec<Uuid> = due.into_iter().map(|(_, id)| id).collect();
    assert_eq!(due.len(), 4);

    let first = store.claim_due_events(t, 3).await.expect("claim");
    assert_eq!(ids(&first), due[..3].to_vec());
    for claimed in &first {
        let event = events.iter().find(|e| e.id == claimed.id).unwrap();
        assert_eq!(claimed.event_type, event.event_type.as_str());
        assert_eq!(claimed.payload, event.payload);
        assert_eq!(claimed.attempt_count, 0);
        assert_eq!(claimed.created_at, event.created_at);
        let row = event_row(store, claimed.id).await;
        assert_eq!(row.status, EventStatus::Processing);
        assert_eq!(row.processing_started_at, Some(t));
    }
    let rest = store.claim_due_events(t, 3).await.expect("claim");
    assert_eq!(ids(&rest), due[3..].to_vec());

    // The rows not yet due stay pending until they are.
    for e in events.iter().filter(|e| e.created_at > t) {
        assert_eq!(event_row(store, e.id).await.status, EventStatus::Pending);
    }
    let later = store.claim_due_events(t + us(1), 10).await.expect("claim");
    assert_eq!(ids(&later), vec![events[1].id]);
    assert!(store
        .claim_due_events(t + us(1), 10)
        .await
        .unwrap()
        .is_empty());
    let last = store
        .claim_due_events(t + Duration::hours(1), 10)
        .await
        .expect("claim");
    assert_eq!(ids(&last), vec![events[5].id]);
}

/// A claimed row is not claimed again, however late the second claim; a limit of 0 claims
/// nothing.
pub async fn claim_twice_gives_nothing_the_second_time(store: &dyn Store) {
    let t = now();
    let events = append_events(store, &[t - us(2), t - us(1)]).await;
    assert!(store.claim_due_events(t, 0).await.unwrap().is_empty());
    let first = store.claim_due_events(t, 10).await.expect("claim");
    assert_eq!(ids(&first), events.iter().map(|e| e.id).collect::<Vec<_>>());
    assert!(store.claim_due_events(t, 10).await.unwrap().is_empty());
    assert!(store
        .claim_due_events(t + Duration::days(1), 10)
        .await
        .unwrap()
        .is_empty());
}

/// [`CLAIMERS`] tasks claiming at once, in small batches until nothing is left, never get the
/// same row, and between them get every row.
pub async fn claim_due_events_race(store: Arc<dyn Store>) {
    let t = now();
    let instants: Vec<_> = (0..40).map(|i| t - us(i)).collect();
    let events = append_events(&*store, &instants).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(CLAIMERS));
    let tasks: Vec<_> = (0..CLAIMERS)
        .map(|_| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                let mut mine = Vec::new();
                loop {
                    let batch = store.claim_due_events(t, 3).await.expect("claim");
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
            assert!(seen.insert(id), "row {id} was claimed twice");
        }
    }
    assert_eq!(total, events.len());
    assert_eq!(seen, events.iter().map(|e| e.id).collect::<BTreeSet<_>>());
    assert!(all_events(&*store)
        .await
        .iter()
        .all(|e| e.status == EventStatus::Processing));
}

/// Delivered: counted, stamped and final; a second settle of the row is refused. A failed
/// attempt with a retry time goes back to pending, due then, with the error kept; the next
/// claim reports the attempts made; without a retry time the failure is final.
pub async fn mark_event_delivered_retry_and_final_failure(store: &dyn Store) {
    let t = now();
    let events = append_events(store, &[t - us(2), t - us(1)]).await;
    let (ok, flaky) = (events[0].id, events[1].id);

    // Only processing rows can be settled.
    assert!(!store.mark_event_delivered(ok, t).await.unwrap());
    assert!(!store
        .mark_event_attempt_failed(ok, "nope", None, t)
        .await
        .unwrap());
    assert!(!store.mark_event_delivered(Uuid::new_v4(), t).await.unwrap());
    assert_eq!(store.claim_due_events(t, 10).await.unwrap().len(), 2);

    let settled = t + us(7);
    assert!(store.mark_event_delivered(ok, settled).await.unwrap());
    let row = event_row(store, ok).await;
    assert_eq!(row.status, EventStatus::Delivered);
    assert_eq!(row.delivered_at, Some(settled));
    assert_eq!(row.attempt_count, 1);
    assert_eq!(row.last_error, None);
    assert_eq!(row.processing_started_at, None, "set only while processing");
    assert!(!store.mark_event_delivered(ok, settled).await.unwrap());
    assert!(!store
        .mark_event_attempt_failed(ok, "late", None, settled)
        .await
        .unwrap());

    let retry_at = t + Duration::minutes(1);
    assert!(store
        .mark_event_attempt_failed(flaky, "HTTP 503", Some(retry_at), settled)
        .await
        .unwrap());
    let row = event_row(store, flaky).await;
    assert_eq!(row.status, EventStatus::Pending);
    assert_eq!(row.next_attempt_at, retry_at);
    assert_eq!(row.attempt_count, 1);
    assert_eq!(row.last_error.as_deref(), Some("HTTP 503"));
    assert_eq!(row.delivered_at, None);
    assert_eq!(row.processing_started_at, None);
    assert!(!store.mark_event_delivered(flaky, settled).await.unwrap());

    assert!(store
        .claim_due_events(retry_at - us(1), 10)
        .await
        .unwrap()
        .is_empty());
    let again = store.claim_due_events(retry_at, 10).await.unwrap();
    assert_eq!(ids(&again), vec![flaky]);
    assert_eq!(again[0].attempt_count, 1);

    assert!(store
        .mark_event_attempt_failed(flaky, "timeout", None, retry_at)
        .await
        .unwrap());
    let row = event_row(store, flaky).await;
    assert_eq!(row.status, EventStatus::Failed);
    assert_eq!(row.attempt_count, 2);
    assert_eq!(row.last_error.as_deref(), Some("timeout"));
    assert_eq!(row.processing_started_at, None);
    assert!(store
        .claim_due_events(t + Duration::days(30), 10)
        .await
        .unwrap()
        .is_empty());
}

/// Rows processing since before `stale_before` go back to pending, due `now`, at most `limit`
/// per call; rows claimed later stay claimed, and a re-queued row can be claimed again.
pub async fn requeue_stale_events_batches(store: &dyn Store) {
    let t = now();
    let events = append_events(store, &[t - us(5), t - us(4), t - us(3), t - us(2)]).await;
    assert_eq!(store.claim_due_events(t, 3).await.unwrap().len(), 3);
    let fresh_claim = t + Duration::minutes(10);
    let fresh = store.claim_due_events(fresh_claim, 10).await.unwrap();
    assert_eq!(ids(&fresh), vec![events[3].id]);

    let later = t + Duration::minutes(20);
    let stale_before = t + us(1);
    assert_eq!(
        store
            .requeue_stale_events(stale_before, later, 2)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .requeue_stale_events(stale_before, later, 2)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .requeue_stale_events(stale_before, later, 2)
            .await
            .unwrap(),
        0
    );
    for e in &events[..3] {
        let row = event_row(store, e.id).await;
        assert_eq!(row.status, EventStatus::Pending, "{}", e.id);
        assert_eq!(row.next_attempt_at, later);
        assert_eq!(row.processing_started_at, None);
        assert_eq!(row.attempt_count, 0);
    }
    let row = event_row(store, events[3].id).await;
    assert_eq!(row.status, EventStatus::Processing);
    assert_eq!(row.processing_started_at, Some(fresh_claim));

    let reclaimed = store.claim_due_events(later, 10).await.unwrap();
    let mut got = ids(&reclaimed);
    got.sort();
    let mut want: Vec<Uuid> = events[..3].iter().map(|e| e.id).collect();
    want.sort();
    assert_eq!(got, want);
}

/// Purging deletes delivered rows settled before `delivered_before` and failed rows settled
/// before `failed_before`, at most `limit` per call; pending, processing and recent rows stay.
pub async fn purge_events_batches(store: &dyn Store) {
    let t = now();
    let instants: Vec<_> = (0..8).map(|i| t - us(10 - i)).collect();
    let events = append_events(store, &instants).await;
    assert_eq!(store.claim_due_events(t, 7).await.unwrap().len(), 7);
    let old = t + us(1);
    let recent = t + Duration::days(2);
    // 0..3 delivered long ago, 3 delivered recently, 4..6 failed long ago, 6 failed recently,
    // 7 processing; one more row pending (not yet due) below.
    for e in &events[..3] {
        assert!(store.mark_event_delivered(e.id, old).await.unwrap());
    }
    assert!(store
        .mark_event_delivered(events[3].id, recent)
        .await
        .unwrap());
    for e in &events[4..6] {
        assert!(store
            .mark_event_attempt_failed(e.id, "gone", None, old)
            .await
            .unwrap());
    }
    assert!(store
        .mark_event_attempt_failed(events[6].id, "gone", None, recent)
        .await
        .unwrap());
    let pending = append_events(store, &[t + Duration::hours(1)]).await;
    assert_eq!(
        ids(&store.claim_due_events(t, 10).await.unwrap()),
        vec![events[7].id]
    );

    let cutoff = t + Duration::days(1);
    assert_eq!(store.purge_events(cutoff, cutoff, 2).await.unwrap(), 2);
    assert_eq!(store.purge_events(cutoff, cutoff, 2).await.unwrap(), 2);
    assert_eq!(store.purge_events(cutoff, cutoff, 2).await.unwrap(), 1);
    assert_eq!(store.purge_events(cutoff, cutoff, 2).await.unwrap(), 0);
    let left: BTreeSet<Uuid> = all_events(store).await.iter().map(|e| e.id).collect();
    let expected: BTreeSet<Uuid> = [events[3].id, events[6].id, events[7].id, pending[0].id]
        .into_iter()
        .collect();
    assert_eq!(left, expected);

    // The two cut-offs are independent.
    assert_eq!(
        store
            .purge_events(t + Duration::days(3), t, 10)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        event_row(store, events[6].id).await.status,
        EventStatus::Failed
    );
    assert_eq!(
        store
            .purge_events(t, t + Duration::days(3), 10)
            .await
            .unwrap(),
        1
    );
    let left: BTreeSet<Uuid> = all_events(store).await.iter().map(|e| e.id).collect();
    assert_eq!(left, [events[7].id, pending[0].id].into_iter().collect());
}

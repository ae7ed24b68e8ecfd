//! The reaper, the cleanup, shutdown, and a receiver that answers with an endless body.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use authara_core::clock::Clock;
use authara_core::events::{ClaimedEvent, EventRecord, EventStatus, EventStore};
use authara_webhook::{Deliverer, Outcome, WebhookWorkers};
use time::Duration as Span;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use crate::support::{a_few_polls, clock, eventually, settings, MemoryStore, Receiver, Reply};

#[tokio::test]
async fn the_reaper_requeues_a_stale_claim_and_leaves_a_fresh_one() {
    let receiver = Receiver::spawn([]).await;
    let store = MemoryStore::new();
    let clock = clock();
    // Two claims a dead worker left behind: one 3 minutes old, one just made.
    let stale = store.append_user_created(clock.now());
    let claimed = store.claim_due_events(clock.now(), 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    clock.advance(Span::minutes(3));
    let fresh = store.append_user_created(clock.now());
    assert_eq!(
        store.claim_due_events(clock.now(), 10).await.unwrap().len(),
        1
    );

    let mut s = settings(&receiver.url());
    s.stale_reaper_interval = Duration::from_millis(20);
    let workers = WebhookWorkers::start(store.clone(), s, clock.clone()).unwrap();
    eventually("the stale claim is re-queued and delivered", || {
        store.get(stale.id).status == EventStatus::Delivered
    })
    .await;
    a_few_polls().await;
    workers.shutdown().await;

    assert_eq!(store.get(stale.id).attempt_count, 1);
    assert_eq!(store.get(fresh.id).status, EventStatus::Processing);
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].header(authara_webhook::DELIVERY_HEADER),
        stale.id.to_string()
    );
}

#[tokio::test]
async fn the_reaper_works_in_batches_until_a_short_batch() {
    let store = MemoryStore::new();
    let clock = clock();
    for _ in 0..5 {
        store.append_user_created(clock.now());
    }
    assert_eq!(
        store.claim_due_events(clock.now(), 10).await.unwrap().len(),
        5
    );
    clock.advance(Span::minutes(10));

    // Nothing listens there, and no worker runs: only the reaper acts.
    let mut s = settings("http://127.0.0.1:9/hook");
    s.worker_count = 0;
    s.maintenance_batch_size = 2;
    let workers = WebhookWorkers::start(store.clone(), s, clock.clone()).unwrap();
    eventually("every stale claim is re-queued", || {
        store
            .ids()
            .iter()
            .all(|id| store.get(*id).status == EventStatus::Pending)
    })
    .await;
    workers.shutdown().await;
    // 2 + 2 + 1: the short batch ends the run.
    assert_eq!(store.requeue_calls.load(Ordering::SeqCst), 3);
    for id in store.ids() {
        assert_eq!(store.get(id).next_attempt_at, clock.now());
        assert_eq!(store.get(id).attempt_count, 0);
    }
}

fn row(status: EventStatus, at: time::OffsetDateTime) -> EventRecord {
    EventRecord {
        id: Uuid::new_v4(),
        event_type: "user.updated".into(),
        payload: "{}".into(),
        status,
        attempt_count: 1,
        next_attempt_at: at,
        processing_started_at: None,
        last_error: None,
        delivered_at: (status == EventStatus::Delivered).then_some(at),
        created_at: at,
    }
}

#[tokio::test]
async fn cleanup_purges_by_retention_in_batches_until_a_short_batch() {
    let store = MemoryStore::new();
    let clock = clock();
    let now = clock.now();
    let mut old_delivered = Vec::new();
    for _ in 0..5 {
        let r = row(EventStatus::Delivered, now - Span::hours(25));
        old_delivered.push(r.id);
        store.insert(r, now - Span::hours(25));
    }
    let recent_delivered = row(EventStatus::Delivered, now - Span::hours(23));
    let old_failed = row(EventStatus::Failed, now - Span::hours(721));
    let recent_failed = row(EventStatus::Failed, now - Span::hours(700));
    let old_pending = row(EventStatus::Pending, now - Span::hours(1000));
    let keep = [recent_delivered.id, recent_failed.id, old_pending.id];
    store.insert(recent_delivered, now - Span::hours(23));
    let old_failed_id = old_failed.id;
    store.insert(old_failed, now - Span::hours(721));
    store.insert(recent_failed, now - Span::hours(700));
    // Pending rows are never purged, and no worker runs to deliver this one.
    store.insert(old_pending, now - Span::hours(1000));

    let mut s = settings("http://127.0.0.1:9/hook");
    s.worker_count = 0;
    s.maintenance_batch_size = 2;
    let workers = WebhookWorkers::start(store.clone(), s, clock.clone()).unwrap();
    eventually("the old rows are purged", || {
        store.ids().len() == 3 && store.purge_calls.load(Ordering::SeqCst) == 4
    })
    .await;
    workers.shutdown().await;

    let mut left = store.ids();
    left.sort();
    let mut want = keep.to_vec();
    want.sort();
    assert_eq!(left, want);
    assert!(!left.contains(&old_failed_id));
    // 6 old rows in batches of 2: 2 + 2 + 2, then an empty (short) batch ends the run.
    assert_eq!(store.purge_calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn shutdown_lets_the_attempt_in_flight_finish_and_starts_no_other() {
    let receiver = Receiver::spawn([Reply::Slow(Duration::from_millis(500))]).await;
    let store = MemoryStore::new();
    let clock = clock();
    let first = store.append_user_created(clock.now());
    clock.advance(Span::seconds(1));
    let second = store.append_user_created(clock.now());
    let workers =
        WebhookWorkers::start(store.clone(), settings(&receiver.url()), clock.clone()).unwrap();

    eventually("the first attempt reaches the receiver", || {
        !receiver.received().is_empty()
    })
    .await;
    workers.shutdown().await;

    assert_eq!(store.get(first.id).status, EventStatus::Delivered);
    assert_eq!(store.get(second.id).status, EventStatus::Pending);
    assert_eq!(store.get(second.id).attempt_count, 0);
    a_few_polls().await;
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn shutdown_of_idle_workers_is_prompt_even_with_long_intervals() {
    let store = MemoryStore::new();
    let clock = clock();
    let mut s = settings("http://127.0.0.1:9/hook");
    s.poll_interval = Duration::from_secs(3600);
    let workers = WebhookWorkers::start(store, s, clock).unwrap();
    a_few_polls().await;
    let started = Instant::now();
    workers.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// A receiver that answers 200 with an endless body, counting the bytes it managed to write.
async fn endless_body_receiver() -> (String, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let written = Arc::new(AtomicU64::new(0));
    let count = written.clone();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = vec![0u8; 16 * 1024];
        let _ = socket.read(&mut request).await;
        let head =
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 1000000000000\r\n\r\n";
        if socket.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let chunk = vec![b'x'; 64 * 1024];
        while socket.write_all(&chunk).await.is_ok() {
            count.fetch_add(chunk.len() as u64, Ordering::SeqCst);
        }
    });
    (format!("http://{addr}/hook"), written)
}

#[tokio::test]
async fn an_endless_response_body_is_read_only_up_to_the_bound() {
    let (url, written) = endless_body_receiver().await;
    let clock = clock();
    let mut s = settings(&url);
    s.timeout = Duration::from_secs(20);
    let deliverer = Deliverer::new(&s, clock.clone()).unwrap();
    let event = ClaimedEvent {
        id: Uuid::new_v4(),
        event_type: "user.created".into(),
        payload: "{}".into(),
        attempt_count: 0,
        created_at: clock.now(),
    };
    let started = Instant::now();
    let outcome = deliverer.deliver(&event).await;
    let took = started.elapsed();
    assert_eq!(outcome, Outcome::Delivered { status: 200 });
    assert!(
        took < Duration::from_secs(10),
        "took {took:?}: the body was not bounded"
    );
    // Give the receiver a moment to notice the closed connection.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = written.load(Ordering::SeqCst);
    // What was written is the bound plus what the two sockets' buffers held, far below the
    // advertised terabyte.
    assert!(sent < 64 * 1024 * 1024, "the receiver wrote {sent} bytes");
}

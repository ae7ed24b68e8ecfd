//! Delivery through the workers to a real receiver: headers, signatures, envelope bytes, and how
//! each kind of answer is recorded.

use std::sync::Arc;
use std::time::Duration;

use authara_core::clock::Clock;
use authara_core::events::{EventStatus, EventStore};
use authara_webhook::{
    verify_signature, verify_signature_v2, WebhookWorkers, DELIVERY_HEADER, EVENT_HEADER,
    SIGNATURE_HEADER, SIGNATURE_V2_HEADER, TIMESTAMP_HEADER, USER_AGENT,
};
use time::Duration as Span;

use crate::support::{
    a_few_polls, clock, eventually, now_secs, settings, MemoryStore, Receiver, Reply, SECRET,
};

const WINDOW: Duration = Duration::from_secs(300);

#[tokio::test]
async fn a_delivered_event_carries_the_stored_envelope_signed_both_ways() {
    let receiver = Receiver::spawn([]).await;
    let store = MemoryStore::new();
    let clock = clock();
    let event = store.append_user_created(clock.now());
    let workers =
        WebhookWorkers::start(store.clone(), settings(&receiver.url()), clock.clone()).unwrap();

    eventually("the event is delivered", || {
        store.get(event.id).status == EventStatus::Delivered
    })
    .await;
    workers.shutdown().await;

    let got = receiver.received();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(
        r.body.as_ref(),
        event.payload.as_bytes(),
        "the body is the stored payload"
    );
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(r.header(EVENT_HEADER), "user.created");
    assert_eq!(r.header(DELIVERY_HEADER), event.id.to_string());
    assert_eq!(r.header("user-agent"), USER_AGENT);
    assert_eq!(r.header(TIMESTAMP_HEADER), now_secs(&clock).to_string());
    assert_eq!(
        verify_signature(SECRET.as_bytes(), &r.body, r.header(SIGNATURE_HEADER)),
        Ok(())
    );
    assert_eq!(
        verify_signature_v2(
            SECRET.as_bytes(),
            &r.body,
            r.header(TIMESTAMP_HEADER),
            r.header(SIGNATURE_V2_HEADER),
            now_secs(&clock),
            WINDOW,
        ),
        Ok(())
    );
    assert!(r.header(SIGNATURE_HEADER).starts_with("sha256="));
    assert!(r.header(SIGNATURE_V2_HEADER).starts_with("v2="));

    let envelope: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let fields: Vec<&str> = envelope
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(fields.len(), 4, "{fields:?}");
    assert_eq!(envelope["id"], event.id.to_string());
    assert_eq!(envelope["type"], "user.created");
    assert!(envelope["data"]["user_id"].is_string());

    let row = store.get(event.id);
    assert_eq!(row.attempt_count, 1);
    assert_eq!(row.delivered_at, Some(clock.now()));
    assert_eq!(row.last_error, None);
}

#[tokio::test]
async fn a_receiver_answering_500_then_200_gets_the_same_delivery_after_the_30_second_retry() {
    let receiver = Receiver::spawn([Reply::Status(500)]).await;
    let store = MemoryStore::new();
    let clock = clock();
    let event = store.append_user_created(clock.now());
    let first_at = clock.now();
    let workers =
        WebhookWorkers::start(store.clone(), settings(&receiver.url()), clock.clone()).unwrap();

    eventually("the first attempt is recorded", || {
        store.get(event.id).attempt_count == 1
    })
    .await;
    let row = store.get(event.id);
    assert_eq!(row.status, EventStatus::Pending);
    assert_eq!(row.next_attempt_at, first_at + Span::seconds(30));
    assert_eq!(
        row.last_error.as_deref(),
        Some("HTTP 500 Internal Server Error")
    );

    // Not due yet: nothing is sent until the clock reaches the retry time.
    clock.advance(Span::seconds(29));
    a_few_polls().await;
    assert_eq!(receiver.received().len(), 1);

    clock.advance(Span::seconds(1));
    eventually("the retry is delivered", || {
        store.get(event.id).status == EventStatus::Delivered
    })
    .await;
    workers.shutdown().await;

    let got = receiver.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].header(DELIVERY_HEADER), event.id.to_string());
    assert_eq!(got[1].header(DELIVERY_HEADER), event.id.to_string());
    assert_eq!(got[0].body, got[1].body);
    assert_eq!(
        got[1].header(TIMESTAMP_HEADER),
        (first_at.unix_timestamp() + 30).to_string(),
        "each attempt is signed at its own time"
    );
    assert_eq!(
        verify_signature_v2(
            SECRET.as_bytes(),
            &got[1].body,
            got[1].header(TIMESTAMP_HEADER),
            got[1].header(SIGNATURE_V2_HEADER),
            now_secs(&clock),
            WINDOW,
        ),
        Ok(())
    );
    assert_eq!(store.get(event.id).attempt_count, 2);
}

#[tokio::test]
async fn a_400_is_final_after_one_attempt() {
    let receiver = Receiver::spawn([Reply::Status(400)]).await;
    let store = MemoryStore::new();
    let clock = clock();
    let event = store.append_user_created(clock.now());
    let workers =
        WebhookWorkers::start(store.clone(), settings(&receiver.url()), clock.clone()).unwrap();

    eventually("the event fails", || {
        store.get(event.id).status == EventStatus::Failed
    })
    .await;
    clock.advance(Span::hours(1));
    a_few_polls().await;
    workers.shutdown().await;

    let row = store.get(event.id);
    assert_eq!(row.attempt_count, 1);
    assert_eq!(row.last_error.as_deref(), Some("HTTP 400 Bad Request"));
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn a_429_is_retried() {
    let receiver = Receiver::spawn([Reply::Status(429)]).await;
    let store = MemoryStore::new();
    let clock = clock();
    let event = store.append_user_created(clock.now());
    let workers =
        WebhookWorkers::start(store.clone(), settings(&receiver.url()), clock.clone()).unwrap();

    eventually("the first attempt is recorded", || {
        store.get(event.id).attempt_count == 1
    })
    .await;
    let row = store.get(event.id);
    assert_eq!(row.status, EventStatus::Pending);
    assert_eq!(
        row.last_error.as_deref(),
        Some("HTTP 429 Too Many Requests")
    );

    clock.advance(Span::seconds(30));
    eventually("the retry is delivered", || {
        store.get(event.id).status == EventStatus::Delivered
    })
    .await;
    workers.shutdown().await;
    assert_eq!(receiver.received().len(), 2);
}

#[tokio::test]
async fn retries_follow_30_seconds_then_2_minutes_and_stop_at_the_attempt_limit() {
    let receiver = Receiver::spawn([
        Reply::Status(503),
        Reply::Status(502),
        Reply::Status(500),
        Reply::Status(500),
    ])
    .await;
    let store = MemoryStore::new();
    let clock = clock();
    let event = store.append_user_created(clock.now());
    let mut s = settings(&receiver.url());
    s.max_delivery_attempts = 4;
    let workers = WebhookWorkers::start(store.clone(), s, clock.clone()).unwrap();

    eventually("attempt 1", || store.get(event.id).attempt_count == 1).await;
    let t1 = clock.now();
    assert_eq!(store.get(event.id).next_attempt_at, t1 + Span::seconds(30));

    clock.advance(Span::seconds(30));
    eventually("attempt 2", || store.get(event.id).attempt_count == 2).await;
    let t2 = clock.now();
    assert_eq!(store.get(event.id).next_attempt_at, t2 + Span::minutes(2));
    assert_eq!(
        store.get(event.id).last_error.as_deref(),
        Some("HTTP 502 Bad Gateway")
    );

    clock.advance(Span::seconds(119));
    a_few_polls().await;
    assert_eq!(receiver.received().len(), 2, "not due before 2 minutes");
    clock.advance(Span::seconds(1));
    eventually("attempt 3", || store.get(event.id).attempt_count == 3).await;
    let t3 = clock.now();
    assert_eq!(store.get(event.id).next_attempt_at, t3 + Span::minutes(2));
    assert_eq!(store.get(event.id).status, EventStatus::Pending);

    clock.advance(Span::minutes(2));
    eventually("attempt 4 is the last", || {
        store.get(event.id).status == EventStatus::Failed
    })
    .await;
    clock.advance(Span::hours(1));
    a_few_polls().await;
    workers.shutdown().await;

    let row = store.get(event.id);
    assert_eq!(row.attempt_count, 4);
    assert_eq!(
        row.last_error.as_deref(),
        Some("HTTP 500 Internal Server Error")
    );
    let got = receiver.received();
    assert_eq!(got.len(), 4);
    assert!(got
        .iter()
        .all(|r| r.header(DELIVERY_HEADER) == event.id.to_string()));
}

#[tokio::test]
async fn a_timeout_is_retried() {
    let receiver = Receiver::spawn([Reply::Slow(Duration::from_secs(3))]).await;
    let store = MemoryStore::new();
    let clock = clock();
    let event = store.append_user_created(clock.now());
    let mut s = settings(&receiver.url());
    s.timeout = Duration::from_millis(300);
    let workers = WebhookWorkers::start(store.clone(), s, clock.clone()).unwrap();

    eventually("the timed-out attempt is recorded", || {
        store.get(event.id).attempt_count == 1
    })
    .await;
    let row = store.get(event.id);
    assert_eq!(row.status, EventStatus::Pending);
    assert_eq!(row.last_error.as_deref(), Some("timed out after 0.3s"));

    clock.advance(Span::seconds(30));
    eventually("the retry is delivered", || {
        store.get(event.id).status == EventStatus::Delivered
    })
    .await;
    workers.shutdown().await;
    assert_eq!(store.get(event.id).attempt_count, 2);
}

#[tokio::test]
async fn a_receiver_that_is_down_is_retried_until_it_is_up() {
    // Take a free port, then close it: the first attempt finds nothing listening.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let store = MemoryStore::new();
    let clock = clock();
    let event = store.append_user_created(clock.now());
    let workers = WebhookWorkers::start(
        store.clone(),
        settings(&format!("http://{addr}/hook")),
        clock.clone(),
    )
    .unwrap();

    eventually("the refused connection is recorded", || {
        store.get(event.id).attempt_count == 1
    })
    .await;
    let row = store.get(event.id);
    assert_eq!(row.status, EventStatus::Pending);
    let error = row.last_error.unwrap();
    assert!(error.contains("onnect"), "{error}");
    assert!(!error.contains("/hook"), "no URL in the error: {error}");
    assert!(error.chars().count() <= 500);

    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let received = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let seen = seen.clone();
            async move {
                let id = headers
                    .get(DELIVERY_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                seen.lock().unwrap().push(id);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    clock.advance(Span::seconds(30));
    eventually("the retry is delivered", || {
        store.get(event.id).status == EventStatus::Delivered
    })
    .await;
    workers.shutdown().await;
    assert_eq!(*received.lock().unwrap(), vec![event.id.to_string()]);
}

#[tokio::test]
async fn a_redirect_is_refused_and_not_followed() {
    let receiver = Receiver::spawn([Reply::Redirect]).await;
    let store = MemoryStore::new();
    let clock = clock();
    let event = store.append_user_created(clock.now());
    let workers =
        WebhookWorkers::start(store.clone(), settings(&receiver.url()), clock.clone()).unwrap();

    eventually("the event fails", || {
        store.get(event.id).status == EventStatus::Failed
    })
    .await;
    workers.shutdown().await;

    let row = store.get(event.id);
    assert_eq!(row.attempt_count, 1);
    assert_eq!(
        row.last_error.as_deref(),
        Some("redirect refused (HTTP 307 Temporary Redirect)")
    );
    assert_eq!(receiver.received().len(), 1);
    assert!(
        receiver.received_elsewhere().is_empty(),
        "followed a redirect"
    );
}

#[tokio::test]
async fn a_loopback_receiver_is_refused_unless_private_networks_are_allowed() {
    let receiver = Receiver::spawn([]).await;
    let port = receiver.addr.port();
    for url in [
        format!("http://127.0.0.1:{port}/hook"),
        format!("http://[::ffff:127.0.0.1]:{port}/hook"),
        // A name goes through the guarded resolver.
        format!("http://localhost:{port}/hook"),
    ] {
        let store = MemoryStore::new();
        let clock = clock();
        let event = store.append_user_created(clock.now());
        let mut s = settings(&url);
        s.allow_private_networks = false;
        let workers = WebhookWorkers::start(store.clone(), s, clock.clone()).unwrap();
        eventually("the event fails", || {
            store.get(event.id).status == EventStatus::Failed
        })
        .await;
        workers.shutdown().await;
        let row = store.get(event.id);
        assert_eq!(row.attempt_count, 1, "{url}");
        let error = row.last_error.unwrap();
        assert!(
            error.contains("refused: loopback address"),
            "{url}: {error}"
        );
        assert!(!error.contains(SECRET));
    }
    assert!(
        receiver.received().is_empty(),
        "a refused address was contacted"
    );
}

#[tokio::test]
async fn a_private_network_receiver_is_refused_without_connecting() {
    // 10.255.255.1 is never contacted: the policy refuses it before any connection.
    let store = MemoryStore::new();
    let clock = clock();
    let event = store.append_user_created(clock.now());
    let mut s = settings("http://10.255.255.1:9/hook");
    s.allow_private_networks = false;
    let workers = WebhookWorkers::start(store.clone(), s, clock.clone()).unwrap();
    eventually("the event fails", || {
        store.get(event.id).status == EventStatus::Failed
    })
    .await;
    workers.shutdown().await;
    let error = store.get(event.id).last_error.unwrap();
    assert_eq!(
        error,
        "address 10.255.255.1 refused: private network (set AUTHARA_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true to allow)"
    );
}

#[tokio::test]
async fn several_workers_deliver_each_event_exactly_once() {
    let receiver = Receiver::spawn([]).await;
    let store = MemoryStore::new();
    let clock = clock();
    let events: Vec<_> = (0..20)
        .map(|_| store.append_user_created(clock.now()))
        .collect();
    let mut s = settings(&receiver.url());
    s.worker_count = 4;
    let workers = WebhookWorkers::start(store.clone(), s, clock.clone()).unwrap();

    eventually("every event is delivered", || {
        events
            .iter()
            .all(|e| store.get(e.id).status == EventStatus::Delivered)
    })
    .await;
    workers.shutdown().await;

    let mut ids: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| r.header(DELIVERY_HEADER).to_owned())
        .collect();
    ids.sort();
    let mut want: Vec<String> = events.iter().map(|e| e.id.to_string()).collect();
    want.sort();
    assert_eq!(ids, want);
    let listed = store.list_events(100).await.unwrap();
    assert!(listed.iter().all(|r| r.attempt_count == 1));
}

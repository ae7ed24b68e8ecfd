//! Test doubles: an `EventStore` over a `Mutex<Vec<..>>` (the real backends are covered by the
//! conformance suite) and a real HTTP receiver (axum on 127.0.0.1, port 0) whose answers are
//! scripted.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use authara_core::clock::{Clock, ManualClock};
use authara_core::events::NewEvent;
use authara_core::events::{ClaimedEvent, EventRecord, EventStatus, EventStore, EventType};
use authara_core::store::StoreError;
use authara_webhook::{Endpoint, Settings, WebhookSecret};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use time::OffsetDateTime;
use uuid::Uuid;

pub const SECRET: &str = "test-webhook-secret-0123456789abcdef-XYZ";

/// 2026-01-01T00:00:00Z: a fixed start for the manual clock.
pub fn start_time() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap()
}

pub fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(start_time()))
}

/// Settings for a receiver on loopback: private networks allowed, fast polling.
pub fn settings(url: &str) -> Settings {
    let mut s = Settings::new(
        Endpoint::parse(url).unwrap(),
        WebhookSecret::new(SECRET).unwrap(),
    );
    s.allow_private_networks = true;
    s.poll_interval = Duration::from_millis(20);
    s.worker_count = 1;
    s.timeout = Duration::from_secs(5);
    s
}

#[derive(Debug, Clone)]
struct Row {
    record: EventRecord,
    updated_at: OffsetDateTime,
}

/// An in-memory outbox with the trait's semantics, every call atomic under one lock.
#[derive(Debug, Default)]
pub struct MemoryStore {
    rows: Mutex<Vec<Row>>,
    /// How many times `purge_events` was called.
    pub purge_calls: AtomicU64,
    /// How many times `requeue_stale_events` was called.
    pub requeue_calls: AtomicU64,
}

impl MemoryStore {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Appends a pending event due at its creation time.
    pub fn append(&self, event: &NewEvent) {
        let record = EventRecord {
            id: event.id,
            event_type: event.event_type.as_str().to_owned(),
            payload: event.payload.clone(),
            status: EventStatus::Pending,
            attempt_count: 0,
            next_attempt_at: event.created_at,
            processing_started_at: None,
            last_error: None,
            delivered_at: None,
            created_at: event.created_at,
        };
        self.insert(record, event.created_at);
    }

    /// Inserts a row as it is, last changed at `updated_at`.
    pub fn insert(&self, record: EventRecord, updated_at: OffsetDateTime) {
        self.rows.lock().unwrap().push(Row { record, updated_at });
    }

    /// Appends a `user.created` event at `at` and returns it.
    pub fn append_user_created(&self, at: OffsetDateTime) -> NewEvent {
        let event = NewEvent::user(Uuid::new_v4(), EventType::UserCreated, Uuid::new_v4(), at);
        self.append(&event);
        event
    }

    pub fn get(&self, id: Uuid) -> EventRecord {
        self.rows
            .lock()
            .unwrap()
            .iter()
            .find(|r| r.record.id == id)
            .map(|r| r.record.clone())
            .unwrap()
    }

    pub fn ids(&self) -> Vec<Uuid> {
        self.rows
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.record.id)
            .collect()
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn claim_due_events(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<ClaimedEvent>, StoreError> {
        let mut rows = self.rows.lock().unwrap();
        let mut due: Vec<&mut Row> = rows
            .iter_mut()
            .filter(|r| r.record.status == EventStatus::Pending && r.record.next_attempt_at <= now)
            .collect();
        due.sort_by_key(|r| (r.record.next_attempt_at, r.record.created_at, r.record.id));
        Ok(due
            .into_iter()
            .take(limit as usize)
            .map(|r| {
                r.record.status = EventStatus::Processing;
                r.record.processing_started_at = Some(now);
                r.updated_at = now;
                ClaimedEvent {
                    id: r.record.id,
                    event_type: r.record.event_type.clone(),
                    payload: r.record.payload.clone(),
                    attempt_count: r.record.attempt_count,
                    created_at: r.record.created_at,
                }
            })
            .collect())
    }

    async fn mark_event_delivered(
        &self,
        id: Uuid,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut rows = self.rows.lock().unwrap();
        let Some(r) = rows
            .iter_mut()
            .find(|r| r.record.id == id && r.record.status == EventStatus::Processing)
        else {
            return Ok(false);
        };
        r.record.status = EventStatus::Delivered;
        r.record.attempt_count += 1;
        r.record.delivered_at = Some(now);
        r.record.processing_started_at = None;
        r.updated_at = now;
        Ok(true)
    }

    async fn mark_event_attempt_failed(
        &self,
        id: Uuid,
        error: &str,
        retry_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut rows = self.rows.lock().unwrap();
        let Some(r) = rows
            .iter_mut()
            .find(|r| r.record.id == id && r.record.status == EventStatus::Processing)
        else {
            return Ok(false);
        };
        r.record.attempt_count += 1;
        r.record.last_error = Some(error.to_owned());
        r.record.processing_started_at = None;
        match retry_at {
            Some(at) => {
                r.record.status = EventStatus::Pending;
                r.record.next_attempt_at = at;
            }
            None => r.record.status = EventStatus::Failed,
        }
        r.updated_at = now;
        Ok(true)
    }

    async fn requeue_stale_events(
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
            if r.record.status == EventStatus::Processing
                && r.record
                    .processing_started_at
                    .is_some_and(|at| at < stale_before)
            {
                r.record.status = EventStatus::Pending;
                r.record.next_attempt_at = now;
                r.record.processing_started_at = None;
                r.updated_at = now;
                n += 1;
            }
        }
        Ok(n)
    }

    async fn purge_events(
        &self,
        delivered_before: OffsetDateTime,
        failed_before: OffsetDateTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        self.purge_calls.fetch_add(1, Ordering::SeqCst);
        let mut rows = self.rows.lock().unwrap();
        let mut n = 0;
        rows.retain(|r| {
            let old = match r.record.status {
                EventStatus::Delivered => r.updated_at < delivered_before,
                EventStatus::Failed => r.updated_at < failed_before,
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

    async fn list_events(&self, limit: u32) -> Result<Vec<EventRecord>, StoreError> {
        let mut all: Vec<EventRecord> = self
            .rows
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.record.clone())
            .collect();
        all.sort_by_key(|r| (r.created_at, r.id));
        all.truncate(limit as usize);
        Ok(all)
    }
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16),
    /// Waits, then answers 200.
    Slow(Duration),
    /// `307` to the receiver's `/elsewhere`.
    Redirect,
}

/// A request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

#[derive(Debug, Default)]
struct ReceiverState {
    script: Mutex<VecDeque<Reply>>,
    hook: Mutex<Vec<Received>>,
    elsewhere: Mutex<Vec<Received>>,
}

/// A real receiver. Answers from the script in order, then 200.
#[derive(Debug, Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<ReceiverState>,
}

impl Receiver {
    pub async fn spawn(script: impl IntoIterator<Item = Reply>) -> Self {
        let state = Arc::new(ReceiverState {
            script: Mutex::new(script.into_iter().collect()),
            ..ReceiverState::default()
        });
        let app = Router::new()
            .route("/hook", post(hook))
            .route("/elsewhere", post(elsewhere))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, state }
    }

    /// `http://127.0.0.1:<port>/hook`.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.hook.lock().unwrap().clone()
    }

    pub fn received_elsewhere(&self) -> Vec<Received> {
        self.state.elsewhere.lock().unwrap().clone()
    }
}

async fn hook(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.hook.lock().unwrap().push(Received { headers, body });
    let reply = state.script.lock().unwrap().pop_front();
    match reply {
        None => StatusCode::OK.into_response(),
        Some(Reply::Status(code)) => StatusCode::from_u16(code).unwrap().into_response(),
        Some(Reply::Slow(d)) => {
            tokio::time::sleep(d).await;
            StatusCode::OK.into_response()
        }
        Some(Reply::Redirect) => {
            (StatusCode::TEMPORARY_REDIRECT, [("location", "/elsewhere")]).into_response()
        }
    }
}

async fn elsewhere(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    state
        .elsewhere
        .lock()
        .unwrap()
        .push(Received { headers, body });
    StatusCode::OK
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

/// The clock's current unix second.
pub fn now_secs(clock: &ManualClock) -> i64 {
    clock.now().unix_timestamp()
}

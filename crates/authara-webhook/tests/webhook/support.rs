//! Test doubles: the in-memory outbox (`outbox.rs`) with helpers that append events, and a real
//! HTTP receiver (axum on 127.0.0.1, port 0) whose answers are scripted.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use authara_core::clock::{Clock, ManualClock};
use authara_core::events::{EventRecord, EventStatus, EventType, NewEvent};
use authara_webhook::{Endpoint, Settings, WebhookSecret};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::outbox::MemoryOutbox;
pub use crate::outbox::{a_few_polls, eventually, start_time};

pub const SECRET: &str = "test-webhook-secret-0123456789abcdef-XYZ";

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

/// The webhook outbox.
pub type MemoryStore = MemoryOutbox<EventRecord>;

impl MemoryOutbox<EventRecord> {
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

    /// Appends a `user.created` event at `at` and returns it.
    pub fn append_user_created(&self, at: OffsetDateTime) -> NewEvent {
        let event = NewEvent::user(Uuid::new_v4(), EventType::UserCreated, Uuid::new_v4(), at);
        self.append(&event);
        event
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

/// The clock's current unix second.
pub fn now_secs(clock: &ManualClock) -> i64 {
    clock.now().unix_timestamp()
}

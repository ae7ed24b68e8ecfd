//! A real webhook receiver: an axum app on 127.0.0.1 that records every delivery and answers
//! with scripted status codes. It can be stopped and started again on the same port, so a test
//! can take the receiver down and bring it back.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, Notify};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Hit {
    pub event: String,
    pub delivery: String,
    pub signature: String,
    pub timestamp: String,
    pub signature_v2: String,
    pub content_type: String,
    pub body: Vec<u8>,
    /// The status the receiver answered.
    pub answered: u16,
}

impl Hit {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Default)]
struct Shared {
    hits: Mutex<Vec<Hit>>,
    script: Mutex<VecDeque<u16>>,
    arrived: Notify,
}

/// The receiver; dropped, it stops.
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
}

fn header(h: &HeaderMap, name: &str) -> String {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn receive(State(shared): State<Arc<Shared>>, h: HeaderMap, body: Bytes) -> StatusCode {
    let answered = shared.script.lock().unwrap().pop_front().unwrap_or(200);
    shared.hits.lock().unwrap().push(Hit {
        event: header(&h, "x-authara-event"),
        delivery: header(&h, "x-authara-delivery"),
        signature: header(&h, "x-authara-signature"),
        timestamp: header(&h, "x-authara-timestamp"),
        signature_v2: header(&h, "x-authara-signature-v2"),
        content_type: header(&h, "content-type"),
        body: body.to_vec(),
        answered,
    });
    shared.arrived.notify_waiters();
    StatusCode::from_u16(answered).unwrap()
}

impl Receiver {
    /// Starts on a free port.
    pub async fn start() -> Self {
        Self::serve(0, Arc::default()).await
    }

    async fn serve(port: u16, shared: Arc<Shared>) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/hooks", post(receive))
            .with_state(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .ok();
        });
        Self {
            addr,
            shared,
            stop: Some(stop),
        }
    }

    /// The URL to configure as `AUTHARA_WEBHOOK_URL`.
    pub fn url(&self) -> String {
        format!("http://{}/hooks", self.addr)
    }

    /// The next requests are answered with these statuses (then 200 again).
    pub fn answer_next(&self, statuses: &[u16]) {
        self.shared.script.lock().unwrap().extend(statuses);
    }

    /// Everything received so far.
    pub fn hits(&self) -> Vec<Hit> {
        self.shared.hits.lock().unwrap().clone()
    }

    /// Stops listening (connections are refused) and returns what is needed to come back.
    pub fn go_down(mut self) -> (u16, Vec<Hit>, DownReceiver) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let hits = self.hits();
        (
            self.addr.port(),
            hits,
            DownReceiver {
                port: self.addr.port(),
                shared: self.shared.clone(),
            },
        )
    }

    /// Waits until at least `n` requests arrived (at most `within`), and returns them all.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Hit> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.shared.arrived.notified();
            let hits = self.hits();
            if hits.len() >= n {
                return hits;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let hits = self.hits();
                assert!(
                    hits.len() >= n,
                    "expected {n} webhook deliveries, got {}: {:?}",
                    hits.len(),
                    hits.iter().map(|h| &h.event).collect::<Vec<_>>()
                );
                return hits;
            }
        }
    }

    /// Asserts that nothing more than `n` requests arrives within `during`.
    pub async fn assert_stays_at(&self, n: usize, during: Duration) {
        tokio::time::sleep(during).await;
        assert_eq!(self.hits().len(), n, "unexpected extra deliveries");
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A receiver that is down; `come_back` listens on the same port with the same records.
pub struct DownReceiver {
    port: u16,
    shared: Arc<Shared>,
}

impl DownReceiver {
    /// Listens again on the old port.
    pub async fn come_back(self) -> Receiver {
        // The old listener closes asynchronously; retry the bind briefly.
        for _ in 0..50 {
            if std::net::TcpListener::bind(("127.0.0.1", self.port)).is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Receiver::serve(self.port, self.shared).await
    }
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`, computed independently of the server's code.
pub fn signature_v1(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex(&mac.finalize().into_bytes()))
}

/// `v2=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn signature_v2(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v2={}", hex(&mac.finalize().into_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

//! The accept loop: HTTP/1.1 on hyper with the limits of [`HttpLimits`].
//!
//! - At most `max_connections` connections are open; at the cap the loop stops accepting until
//!   one closes, so a burst waits in the kernel's backlog instead of in our memory.
//! - Each connection has a watchdog: from accept, and from the first byte of each keep-alive
//!   request, the headers must be complete within `header_read_timeout`; a connection waiting
//!   for its next request is closed after `idle_timeout`. hyper's own header timer (which counts
//!   the idle wait too) is kept as a backstop at the sum of both.
//! - Each request gets `request_timeout` as a whole (then `503 unavailable`), and its body
//!   `body_timeout` (enforced where the body is buffered, `layers::body_limit`: `408`).
//! - Request line and headers are bounded by `max_header_bytes` and [`MAX_HEADERS`]: `431`.
//! - Shutdown: stop accepting, let in-flight requests finish (keep-alive is turned off), and
//!   after `shutdown_timeout` close whatever is left.
//!
//! HTTP/2 is not served: Authara runs behind a reverse proxy that terminates TLS and HTTP/2.

use crate::config::HttpLimits;
use crate::http::layers::{request_timed_out, BodyTimeout};
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::Instant;
use tower::ServiceExt as _;

/// Most header fields in one request (hyper's default).
pub const MAX_HEADERS: usize = 100;

/// What the connections are told to do.
const RUN: u8 = 0;
const GRACEFUL: u8 = 1;
const FORCE: u8 = 2;

/// Serves `router` on `listener` until `shutdown` resolves, then drains.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let max = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let slots = Arc::new(Semaphore::new(max as usize));
    let (stop_tx, stop_rx) = watch::channel(RUN);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout + limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(MAX_HEADERS);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let conn = Connection {
            builder: builder.clone(),
            router: router.clone(),
            limits,
            peer,
        };
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            conn.run(stream, stop).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_tx.send(GRACEFUL);
    let open = max as usize - slots.available_permits();
    if open > 0 {
        tracing::info!(open, "stopping: waiting for in-flight requests");
    }
    let drained = tokio::time::timeout(limits.shutdown_timeout, slots.acquire_many(max)).await;
    if drained.is_err() {
        let open = max as usize - slots.available_permits();
        tracing::warn!(
            open,
            timeout = ?limits.shutdown_timeout,
            "stopping: closing the connections still open after the shutdown timeout"
        );
        let _ = stop_tx.send(FORCE);
        let _ = tokio::time::timeout(Duration::from_secs(1), slots.acquire_many(max)).await;
    }
    Ok(())
}

/// One accepted connection.
struct Connection {
    builder: http1::Builder,
    router: axum::Router,
    limits: HttpLimits,
    peer: SocketAddr,
}

impl Connection {
    async fn run(self, stream: TcpStream, mut stop: watch::Receiver<u8>) {
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Tracked {
            inner: stream,
            activity: activity.clone(),
        });
        let (router, peer, limits) = (self.router, self.peer, self.limits);
        let on_request = activity.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            on_request.set(Phase::Busy);
            req.extensions_mut().insert(ConnectInfo(peer));
            req.extensions_mut()
                .insert(BodyTimeout(limits.body_timeout));
            let router = router.clone();
            let activity = on_request.clone();
            async move {
                let path = req.uri().path().to_owned();
                let res = match tokio::time::timeout(limits.request_timeout, router.oneshot(req))
                    .await
                {
                    Ok(Ok(res)) => res,
                    Ok(Err(never)) => match never {},
                    Err(_) => {
                        tracing::warn!(path = %path, timeout = ?limits.request_timeout, "request timed out");
                        request_timed_out(&path)
                    }
                };
                activity.set(Phase::Idle);
                Ok::<_, Infallible>(res)
            }
        });
        let conn = self.builder.serve_connection(io, service);
        tokio::pin!(conn);
        let mut graceful = *stop.borrow_and_update() != RUN;
        if graceful {
            conn.as_mut().graceful_shutdown();
        }
        loop {
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    return;
                }
                () = activity.expired(limits) => {
                    tracing::debug!("connection closed: header or idle timeout");
                    return;
                }
                r = stop.changed() => {
                    let level = match r {
                        Ok(()) => *stop.borrow_and_update(),
                        Err(_) => FORCE,
                    };
                    if level >= FORCE {
                        return;
                    }
                    if !graceful {
                        graceful = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
}

/// Where a connection is in its request cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading a request line and headers (from accept, or from the first byte after `Idle`).
    Headers,
    /// A request is being served; its own timeouts apply.
    Busy,
    /// Waiting for the next request on a keep-alive connection.
    Idle,
}

/// The phase of a connection and since when, shared by its IO, its service and its watchdog.
struct Activity {
    phase: Mutex<(Phase, Instant)>,
    changed: Notify,
}

impl Activity {
    fn new() -> Self {
        Self {
            phase: Mutex::new((Phase::Headers, Instant::now())),
            changed: Notify::new(),
        }
    }

    fn set(&self, phase: Phase) {
        let mut p = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        *p = (phase, Instant::now());
        drop(p);
        self.changed.notify_one();
    }

    /// Bytes arrived: an idle connection starts reading a request.
    fn bytes_read(&self) {
        let mut p = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        if p.0 == Phase::Idle {
            *p = (Phase::Headers, Instant::now());
            drop(p);
            self.changed.notify_one();
        }
    }

    fn deadline(&self, limits: HttpLimits) -> Option<Instant> {
        let (phase, since) = *self.phase.lock().unwrap_or_else(|e| e.into_inner());
        match phase {
            Phase::Headers => Some(since + limits.header_read_timeout),
            Phase::Idle => Some(since + limits.idle_timeout),
            Phase::Busy => None,
        }
    }

    /// Resolves when the connection has spent too long reading headers or idle.
    async fn expired(&self, limits: HttpLimits) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.deadline(limits) {
                Some(at) if at <= Instant::now() => return,
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = notified => {}
                    }
                }
                None => notified.await,
            }
        }
    }
}

/// The TCP stream, telling [`Activity`] when bytes arrive.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

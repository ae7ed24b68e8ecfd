//! The load generator: N keep-alive HTTP/1.1 connections (hyper), each a task looping requests
//! for warm-up + duration; per-task HDR histograms merged at the end.

use anyhow::Context as _;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, CONTENT_TYPE, COOKIE, HOST, SET_COOKIE};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Longest a single request may take before it counts as an I/O error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause after a failed connect, so a dead server does not turn into a busy loop.
const RECONNECT_PAUSE: Duration = Duration::from_millis(10);
/// Histogram range, microseconds: 1 µs to 60 s, 3 significant digits.
const HIST_MAX_US: u64 = 60_000_000;

/// A request body.
pub type Body = Full<Bytes>;

/// What one connection sends, and how it judges the answers.
pub trait Workload: Send + 'static {
    /// The next request.
    fn request(&mut self) -> Request<Body>;
    /// Whether the response is the expected one (may update state from its headers).
    fn accept(&mut self, status: StatusCode, headers: &HeaderMap) -> bool;
}

/// Timing of one load run.
#[derive(Debug, Clone, Copy)]
pub struct LoadSpec {
    pub addr: SocketAddr,
    pub warmup: Duration,
    pub duration: Duration,
}

/// What a load run measured.
#[derive(Debug, Clone)]
pub struct LoadResult {
    /// Connections used.
    pub connections: usize,
    /// Expected answers that started and finished inside the measured window.
    pub ok: u64,
    /// Unexpected statuses, by status code, over warm-up and window.
    pub bad_status: BTreeMap<u16, u64>,
    /// Connection failures, broken connections and timeouts, over warm-up and window.
    pub io_errors: u64,
    /// Latency of the counted requests, microseconds.
    pub latency_us: Histogram<u64>,
    /// Length of the measured window.
    pub window: Duration,
}

impl LoadResult {
    /// Successful requests per second in the measured window.
    pub fn rps(&self) -> f64 {
        let secs = self.window.as_secs_f64();
        if secs > 0.0 {
            self.ok as f64 / secs
        } else {
            0.0
        }
    }

    /// Every error: unexpected statuses plus I/O errors.
    pub fn errors(&self) -> u64 {
        self.io_errors + self.bad_status.values().sum::<u64>()
    }

    /// The latency at quantile `q` (0..=1), in milliseconds; `None` without samples.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        (!self.latency_us.is_empty()).then(|| self.latency_us.value_at_quantile(q) as f64 / 1000.0)
    }
}

struct TaskResult {
    ok: u64,
    bad_status: BTreeMap<u16, u64>,
    io_errors: u64,
    latency_us: Histogram<u64>,
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).context("creating a latency histogram")
}

/// Runs one task per workload (one connection each) for `warmup + duration`.
/// The tasks live in a `JoinSet`: dropping this future (an interrupted run) aborts them.
pub async fn run<W: Workload>(spec: LoadSpec, workloads: Vec<W>) -> anyhow::Result<LoadResult> {
    let connections = workloads.len();
    let start = Instant::now();
    let measure_from = start + spec.warmup;
    let end = measure_from + spec.duration;
    let mut set = JoinSet::new();
    for w in workloads {
        let hist = histogram()?;
        set.spawn(drive(spec.addr, w, hist, measure_from, end));
    }
    let mut total = LoadResult {
        connections,
        ok: 0,
        bad_status: BTreeMap::new(),
        io_errors: 0,
        latency_us: histogram()?,
        window: spec.duration,
    };
    while let Some(joined) = set.join_next().await {
        let r = joined.context("a load task failed")?;
        total.ok += r.ok;
        total.io_errors += r.io_errors;
        for (status, n) in r.bad_status {
            *total.bad_status.entry(status).or_default() += n;
        }
        total
            .latency_us
            .add(&r.latency_us)
            .context("merging latency histograms")?;
    }
    Ok(total)
}

async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Body>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // Drives the connection; ends when the sender is dropped or the server closes it.
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

async fn drive<W: Workload>(
    addr: SocketAddr,
    mut w: W,
    latency_us: Histogram<u64>,
    measure_from: Instant,
    end: Instant,
) -> TaskResult {
    let mut r = TaskResult {
        ok: 0,
        bad_status: BTreeMap::new(),
        io_errors: 0,
        latency_us,
    };
    let mut sender: Option<SendRequest<Body>> = None;
    while Instant::now() < end {
        if sender.as_ref().is_none_or(SendRequest::is_closed) {
            match connect(addr).await {
                Ok(s) => sender = Some(s),
                Err(_) => {
                    r.io_errors += 1;
                    sender = None;
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    continue;
                }
            }
        }
        let Some(s) = sender.as_mut() else {
            continue;
        };
        if s.ready().await.is_err() {
            r.io_errors += 1;
            sender = None;
            continue;
        }
        let req = w.request();
        let t0 = Instant::now();
        let outcome = tokio::time::timeout(REQUEST_TIMEOUT, async {
            let res = s.send_request(req).await?;
            let (parts, body) = res.into_parts();
            body.collect().await?;
            Ok::<_, hyper::Error>((parts.status, parts.headers))
        })
        .await;
        let t1 = Instant::now();
        match outcome {
            Ok(Ok((status, headers))) => {
                if w.accept(status, &headers) {
                    if t0 >= measure_from && t1 <= end {
                        r.ok += 1;
                        let us = u64::try_from((t1 - t0).as_micros()).unwrap_or(u64::MAX);
                        r.latency_us.saturating_record(us.clamp(1, HIST_MAX_US));
                    }
                } else {
                    *r.bad_status.entry(status.as_u16()).or_default() += 1;
                }
            }
            Ok(Err(_)) | Err(_) => {
                r.io_errors += 1;
                sender = None;
            }
        }
    }
    r
}

/// Builds a request with the `Host` header set.
fn request(method: Method, host: &HeaderValue, path: &str) -> hyper::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, host.clone())
}

/// A request that cannot be built is a bug in this file; send something the server rejects
/// (and the run counts as an error) rather than panic.
fn or_empty(r: Result<Request<Body>, hyper::http::Error>) -> Request<Body> {
    r.unwrap_or_else(|_| Request::new(Body::default()))
}

/// `Host` value for `addr`.
pub fn host_header(addr: SocketAddr) -> HeaderValue {
    HeaderValue::from_str(&addr.to_string()).unwrap_or(HeaderValue::from_static("127.0.0.1"))
}

/// `GET path` with fixed headers; expects `expect`.
pub struct Get {
    pub host: HeaderValue,
    pub path: &'static str,
    pub expect: StatusCode,
}

impl Workload for Get {
    fn request(&mut self) -> Request<Body> {
        or_empty(request(Method::GET, &self.host, self.path).body(Body::default()))
    }
    fn accept(&mut self, status: StatusCode, _: &HeaderMap) -> bool {
        status == self.expect
    }
}

/// `GET /auth/api/v1/user`, cycling through shared credentials (a `Cookie` or an
/// `Authorization` header, as `header` says): connection `c` of `n` sends values
/// `c, c+n, c+2n, ...`, so together the connections go round-robin over all users.
pub struct User {
    pub host: HeaderValue,
    pub header: hyper::http::HeaderName,
    pub cookies: Arc<[HeaderValue]>,
    pub next: usize,
    pub step: usize,
}

impl Workload for User {
    fn request(&mut self) -> Request<Body> {
        let len = self.cookies.len().max(1);
        let i = self.next % len;
        self.next = (i + self.step) % len;
        let mut b = request(Method::GET, &self.host, "/auth/api/v1/user");
        if let Some(c) = self.cookies.get(i) {
            b = b.header(self.header.clone(), c.clone());
        }
        or_empty(b.body(Body::default()))
    }
    fn accept(&mut self, status: StatusCode, _: &HeaderMap) -> bool {
        status == StatusCode::OK
    }
}

/// `POST /auth/api/v1/sessions/refresh?audience=app` over this connection's own sessions, each
/// request presenting the newest refresh token of its session.
pub struct Refresh {
    pub host: HeaderValue,
    pub csrf: HeaderValue,
    pub csrf_value: String,
    /// Current refresh token per session.
    pub tokens: Vec<String>,
    pub next: usize,
    /// Index of the request in flight.
    pub last: usize,
}

impl Workload for Refresh {
    fn request(&mut self) -> Request<Body> {
        let len = self.tokens.len().max(1);
        let i = self.next % len;
        self.last = i;
        self.next = (i + 1) % len;
        let token = self.tokens.get(i).map(String::as_str).unwrap_or("");
        let cookie = format!("authara_refresh={token}; authara_csrf={}", self.csrf_value);
        let mut b = request(
            Method::POST,
            &self.host,
            "/auth/api/v1/sessions/refresh?audience=app",
        )
        .header("x-csrf-token", self.csrf.clone());
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            b = b.header(COOKIE, v);
        }
        or_empty(b.body(Body::default()))
    }
    fn accept(&mut self, status: StatusCode, headers: &HeaderMap) -> bool {
        if status != StatusCode::OK {
            return false;
        }
        match set_cookie_value(headers, "authara_refresh") {
            Some(new) => {
                if let Some(slot) = self.tokens.get_mut(self.last) {
                    *slot = new;
                }
                true
            }
            None => false,
        }
    }
}

/// A form `POST` (login or signup) with the CSRF cookie; expects `303`.
pub struct FormPost {
    pub host: HeaderValue,
    pub path: &'static str,
    pub csrf_cookie: HeaderValue,
    pub body: FormBodies,
}

/// Where the form bodies come from.
pub enum FormBodies {
    /// Precomputed bodies, cycled like [`User`]'s cookies.
    Cycle {
        bodies: Arc<[Bytes]>,
        next: usize,
        step: usize,
    },
    /// Fresh, unique emails: `<prefix>-<n>@example.com` with the same password.
    Fresh {
        prefix: String,
        n: u64,
        password: String,
        csrf: String,
    },
}

impl FormBodies {
    fn next(&mut self) -> Bytes {
        match self {
            Self::Cycle { bodies, next, step } => {
                let len = bodies.len().max(1);
                let i = *next % len;
                *next = (i + *step) % len;
                bodies.get(i).cloned().unwrap_or_default()
            }
            Self::Fresh {
                prefix,
                n,
                password,
                csrf,
            } => {
                *n += 1;
                let email = crate::seed::email(&format!("{prefix}-{n}"));
                Bytes::from(credentials_form(&email, password, csrf))
            }
        }
    }
}

impl Workload for FormPost {
    fn request(&mut self) -> Request<Body> {
        let body = self.body.next();
        or_empty(
            request(Method::POST, &self.host, self.path)
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(COOKIE, self.csrf_cookie.clone())
                .body(Full::new(body)),
        )
    }
    fn accept(&mut self, status: StatusCode, _: &HeaderMap) -> bool {
        status == StatusCode::SEE_OTHER
    }
}

/// `email=..&password=..&csrf_token=..`, form-encoded.
pub fn credentials_form(email: &str, password: &str, csrf: &str) -> String {
    format!(
        "email={}&password={}&csrf_token={}",
        form_encode(email),
        form_encode(password),
        form_encode(csrf)
    )
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The value of cookie `name` in the response's `Set-Cookie` headers, if set to a non-empty
/// value (a cleared cookie, `name=; Max-Age=0`, does not count).
pub fn set_cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let pair = v.split(';').next()?.trim();
            let (k, val) = pair.split_once('=')?;
            (k.trim() == name && !val.trim().is_empty()).then(|| val.trim().to_owned())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(set_cookies: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for c in set_cookies {
            h.append(SET_COOKIE, HeaderValue::from_str(c).unwrap());
        }
        h
    }

    #[test]
    fn the_refresh_cookie_is_found_among_others() {
        let h = headers(&[
            "authara_access=eyJ.x.y; Max-Age=3600; Path=/; HttpOnly; SameSite=Lax",
            "authara_refresh=abc_DEF-123; Max-Age=1209600; Path=/; HttpOnly; SameSite=Lax",
        ]);
        assert_eq!(
            set_cookie_value(&h, "authara_refresh").as_deref(),
            Some("abc_DEF-123")
        );
        assert_eq!(
            set_cookie_value(&h, "authara_access").as_deref(),
            Some("eyJ.x.y")
        );
    }

    #[test]
    fn cleared_or_missing_cookies_are_none() {
        let h = headers(&["authara_refresh=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"]);
        assert_eq!(set_cookie_value(&h, "authara_refresh"), None);
        let h = headers(&["authara_access=t; Path=/"]);
        assert_eq!(set_cookie_value(&h, "authara_refresh"), None);
        let h = headers(&["authara_refresh_x=t; Path=/"]);
        assert_eq!(set_cookie_value(&h, "authara_refresh"), None);
    }

    #[test]
    fn forms_are_encoded() {
        let email = crate::seed::email("a.b+c");
        assert_eq!(
            credentials_form(&email, "p w&=", "x_y-z"),
            "email=a.b%2Bc%40example.com&password=p+w%26%3D&csrf_token=x_y-z"
        );
    }

    #[test]
    fn user_cycles_round_robin_per_connection() {
        let cookies: Arc<[HeaderValue]> = (0..5)
            .map(|i| HeaderValue::from_str(&format!("authara_access={i}")).unwrap())
            .collect();
        let mut u = User {
            host: HeaderValue::from_static("h"),
            header: COOKIE,
            cookies,
            next: 1,
            step: 2,
        };
        let seen: Vec<String> = (0..4)
            .map(|_| {
                let r = u.request();
                r.headers()[COOKIE].to_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(
            seen,
            [
                "authara_access=1",
                "authara_access=3",
                "authara_access=0",
                "authara_access=2"
            ]
        );
    }

    #[test]
    fn refresh_keeps_the_newest_token_per_session() {
        let mut r = Refresh {
            host: HeaderValue::from_static("h"),
            csrf: HeaderValue::from_static("c"),
            csrf_value: "c".into(),
            tokens: vec!["t0".into(), "t1".into()],
            next: 0,
            last: 0,
        };
        let req = r.request();
        assert_eq!(req.headers()[COOKIE], "authara_refresh=t0; authara_csrf=c");
        assert!(r.accept(StatusCode::OK, &headers(&["authara_refresh=n0; Path=/"])));
        assert_eq!(r.tokens, ["n0", "t1"]);
        r.request();
        assert!(!r.accept(StatusCode::OK, &headers(&["authara_access=a; Path=/"])));
        assert_eq!(r.tokens, ["n0", "t1"]);
        let req = r.request();
        assert_eq!(req.headers()[COOKIE], "authara_refresh=n0; authara_csrf=c");
        assert!(!r.accept(StatusCode::UNAUTHORIZED, &HeaderMap::new()));
    }
}

//! The flood scenario (issue 7): 300 concurrent logins, right and wrong passwords, from many
//! client addresses, against a server whose rate limits are at their defaults, while a prober
//! measures `GET /auth/health`. The server must stay small (peak RSS < 512 MiB), keep health
//! fast (p99 < 1 s) and answer only what a flood may get: `303` (right password), `422` (wrong
//! one), `429` (rate limited), `503` (hashing saturated) or another `2xx`.
//!
//! The flood runs on a server of its own, started on the same (seeded) database after the other
//! scenarios: the others raise the rate limits out of the way, this one must not. The bench's
//! connections come from 127.0.0.1, declared a trusted proxy, and each request names a fresh
//! client address in `X-Forwarded-For`, so the per-IP limit (5/min by default) does not turn
//! every answer into a `429` and the flood reaches the hashing queue. It works the same whether
//! the server enforces the limits or not.

use crate::load::{self, LoadSpec};
use crate::procs::{self, ChildGuard};
use crate::report::Row;
use crate::seed::{self, SeededUser};
use crate::target::{self, Db};
use crate::Ctx;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE, COOKIE};
use hyper::{HeaderMap, Method, Request, StatusCode};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Row names in the report.
pub const FLOOD_ROW: &str = "flood";
pub const HEALTH_ROW: &str = "flood-health";

/// Whether a flood's login may get this answer.
pub fn allowed(status: StatusCode) -> bool {
    status.is_success()
        || status == StatusCode::SEE_OTHER
        || status == StatusCode::UNPROCESSABLE_ENTITY
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::SERVICE_UNAVAILABLE
}

/// The `n`-th client address: `10.x.y.z`, distinct for 2^24 requests.
pub fn client_ip(n: u32) -> String {
    let [_, a, b, c] = n.to_be_bytes();
    format!("10.{a}.{b}.{c}")
}

/// One flood connection: logins cycling over the seeded users, every other one with a wrong
/// password, each from a fresh `X-Forwarded-For` address.
pub struct Flood {
    pub host: HeaderValue,
    pub csrf_cookie: HeaderValue,
    pub bodies: Arc<[Bytes]>,
    pub next: usize,
    pub step: usize,
    pub ips: Arc<AtomicU32>,
    /// Every answer, by status.
    pub statuses: Arc<Mutex<BTreeMap<u16, u64>>>,
}

impl load::Workload for Flood {
    fn request(&mut self) -> Request<load::Body> {
        let len = self.bodies.len().max(1);
        let i = self.next % len;
        self.next = (i + self.step) % len;
        let body = self.bodies.get(i).cloned().unwrap_or_default();
        let ip = client_ip(self.ips.fetch_add(1, Ordering::Relaxed));
        let mut b = Request::builder()
            .method(Method::POST)
            .uri("/auth/login")
            .header(hyper::header::HOST, self.host.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(COOKIE, self.csrf_cookie.clone());
        if let Ok(v) = HeaderValue::from_str(&ip) {
            b = b.header("x-forwarded-for", v);
        }
        b.body(load::Body::new(body))
            .unwrap_or_else(|_| Request::new(load::Body::default()))
    }

    fn accept(&mut self, status: StatusCode, _: &HeaderMap) -> bool {
        let mut s = self.statuses.lock().unwrap_or_else(|p| p.into_inner());
        *s.entry(status.as_u16()).or_default() += 1;
        allowed(status)
    }
}

/// Login bodies: user `i` with the right password when `i` is even, a wrong one when odd.
pub fn bodies(users: &[SeededUser], csrf: &str) -> Arc<[Bytes]> {
    users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let password = if i % 2 == 0 {
                seed::PASSWORD
            } else {
                "not the password at all"
            };
            Bytes::from(load::credentials_form(&u.email, password, csrf))
        })
        .collect()
}

/// Starts a server with default rate limits and 127.0.0.1 trusted, floods it, probes health.
pub async fn run(
    ctx: &Ctx,
    name: &str,
    db: &Db,
    dir: &Path,
    users: &[SeededUser],
) -> anyhow::Result<Vec<Row>> {
    let port = procs::free_port()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let env = target::flood_env(addr, db);
    ctx.progress(&format!(
        "[{name}] flood: authara serve on {addr} (default rate limits, 127.0.0.1 trusted)"
    ));
    let log = dir.join("authara-flood.log");
    let started = Instant::now();
    let mut server = ChildGuard::spawn(
        "authara serve (flood)",
        target::authara_command(&ctx.authara, &ctx.wrapper, dir, &env).arg("serve"),
        Some(&log),
    )?;
    if !ctx.wrapper.is_empty() {
        server = server.stop_gracefully();
    }
    target::wait_ready(addr, "/auth/health", &mut server, started).await?;

    let conns = ctx.flood_connections;
    ctx.progress(&format!(
        "[{name}] flood: {conns} concurrent logins + 1 health prober"
    ));
    let host = load::host_header(addr);
    let csrf_cookie = HeaderValue::from_str(&format!("authara_csrf={}", target::CSRF))?;
    let bodies = bodies(users, target::CSRF);
    let ips = Arc::new(AtomicU32::new(1));
    let statuses = Arc::new(Mutex::new(BTreeMap::new()));
    let flood: Vec<Flood> = (0..conns)
        .map(|c| Flood {
            host: host.clone(),
            csrf_cookie: csrf_cookie.clone(),
            bodies: bodies.clone(),
            next: c,
            step: conns,
            ips: ips.clone(),
            statuses: statuses.clone(),
        })
        .collect();
    let health = vec![load::Get {
        host: host.clone(),
        path: "/auth/health",
        expect: StatusCode::OK,
    }];
    let spec = LoadSpec {
        addr,
        warmup: ctx.warmup,
        duration: ctx.duration,
    };
    let peak_reset = procs::reset_peak(server.pid());
    let (flooded, probed) = tokio::join!(load::run(spec, flood), load::run(spec, health));
    let (flooded, probed) = (flooded?, probed?);
    server.ensure_running()?;
    let peak = procs::memory(server.pid())
        .ok()
        .filter(|_| peak_reset)
        .map(|m| procs::mib(m.hwm_kib));
    drop(server);

    let seen: Vec<String> = statuses
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(s, n)| format!("{s}×{n}"))
        .collect();
    let flood_row = Row::new(FLOOD_ROW, &flooded, peak);
    let health_row = Row::new(HEALTH_ROW, &probed, None);
    ctx.progress(&format!(
        "[{name}] flood: {:.0} answers/s ({}), {} io errors, peak RSS {} MiB; health p99 {} ms, {} errors",
        flood_row.requests_per_s,
        seen.join(", "),
        flooded.io_errors,
        peak.map_or_else(|| "-".to_owned(), |p| format!("{p:.1}")),
        crate::report::fmt_ms(health_row.p99_ms),
        health_row.errors
    ));
    Ok(vec![flood_row, health_row])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::Workload as _;

    #[test]
    fn a_flood_may_get_success_wrong_password_rate_limited_or_busy_and_nothing_else() {
        for ok in [200, 204, 303, 422, 429, 503] {
            assert!(allowed(StatusCode::from_u16(ok).unwrap()), "{ok}");
        }
        for bad in [400, 403, 404, 408, 413, 431, 500, 502, 504] {
            assert!(!allowed(StatusCode::from_u16(bad).unwrap()), "{bad}");
        }
    }

    #[test]
    fn every_request_comes_from_a_fresh_address_and_every_answer_is_counted() {
        assert_eq!(client_ip(1), "10.0.0.1");
        assert_eq!(client_ip(256), "10.0.1.0");
        assert_eq!(client_ip((1 << 24) - 1), "10.255.255.255");
        let statuses = Arc::new(Mutex::new(BTreeMap::new()));
        let ips = Arc::new(AtomicU32::new(7));
        let bodies: Arc<[Bytes]> = vec![Bytes::from("a"), Bytes::from("b")].into();
        let mut f = Flood {
            host: HeaderValue::from_static("h"),
            csrf_cookie: HeaderValue::from_static("authara_csrf=c"),
            bodies,
            next: 0,
            step: 1,
            ips,
            statuses: statuses.clone(),
        };
        let r1 = f.request();
        let r2 = f.request();
        assert_eq!(r1.headers()["x-forwarded-for"], "10.0.0.7");
        assert_eq!(r2.headers()["x-forwarded-for"], "10.0.0.8");
        assert_eq!(r1.uri(), "/auth/login");
        assert!(f.accept(StatusCode::SERVICE_UNAVAILABLE, &HeaderMap::new()));
        assert!(f.accept(StatusCode::SERVICE_UNAVAILABLE, &HeaderMap::new()));
        assert!(!f.accept(StatusCode::INTERNAL_SERVER_ERROR, &HeaderMap::new()));
        let s = statuses.lock().unwrap();
        assert_eq!(s.get(&503), Some(&2));
        assert_eq!(s.get(&500), Some(&1));
    }

    #[test]
    fn half_the_logins_use_a_wrong_password() {
        let users: Vec<SeededUser> = (0..4)
            .map(|i| SeededUser {
                email: seed::email(&format!("u{i}")),
                ..SeededUser::default()
            })
            .collect();
        let b = bodies(&users, "c");
        let right = load::form_encode(seed::PASSWORD);
        let with_right = b
            .iter()
            .filter(|x| String::from_utf8_lossy(x).contains(&format!("password={right}&")))
            .count();
        assert_eq!(with_right, 2);
    }
}

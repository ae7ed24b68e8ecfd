//! One backend: fresh database, `authara migrate`, `authara serve`, seeding, the scenarios and
//! (PostgreSQL) the pgbench reference.

use crate::cli::{Backend, Scenario};
use crate::load::{self, FormBodies, FormPost, LoadSpec, Refresh, User};
use crate::procs::{self, ChildGuard};
use crate::report::{Row, TargetReport};
use crate::{pg, seed, Cancel, Ctx};
use anyhow::{bail, Context as _};
use authara_core::store::Store;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, AUTHORIZATION, COOKIE};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the server may take to answer its first health check.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause after the first healthy answer before reading the idle RSS.
const SETTLE: Duration = Duration::from_millis(500);
/// Concurrent seeding tasks.
const SEED_TASKS: usize = 16;
/// A fixed CSRF value (43 base64url characters), sent as cookie and header/field alike.
pub(crate) const CSRF: &str = "YmVuY2gtY3NyZi10b2tlbi1mb3ItYXV0aGFyYS1iZW5";

/// The database of one run.
pub(crate) enum Db {
    Sqlite { url: String },
    Postgres { url: String, schema: String },
}

impl Db {
    fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::Sqlite { url } => vec![("DATABASE_URL", url.clone())],
            Self::Postgres { url, schema } => vec![
                ("DATABASE_URL", url.clone()),
                ("POSTGRESQL_SCHEMA", schema.clone()),
            ],
        }
    }

    async fn open(&self, pool: u32) -> anyhow::Result<Opened> {
        Ok(match self {
            Self::Sqlite { url } => Opened::Sqlite(
                authara_store_sqlite::SqliteStore::connect(url)
                    .await
                    .context("opening the SQLite database for seeding")?,
            ),
            Self::Postgres { url, schema } => Opened::Postgres(
                authara_store_postgres::PgStore::connect_url(url, Some(schema), pool)
                    .await
                    .context("opening PostgreSQL for seeding")?,
            ),
        })
    }
}

/// The bench's own connection to the database, for seeding.
enum Opened {
    Sqlite(authara_store_sqlite::SqliteStore),
    Postgres(authara_store_postgres::PgStore),
}

impl Opened {
    fn store(&self) -> Arc<dyn Store> {
        match self {
            Self::Sqlite(s) => Arc::new(s.clone()),
            Self::Postgres(s) => Arc::new(s.clone()),
        }
    }

    /// Closes the pools, so no bench connection is open while load runs.
    async fn close(self) {
        match self {
            Self::Sqlite(s) => s.close().await,
            Self::Postgres(s) => s.close().await,
        }
    }
}

/// The server's environment: everything set explicitly, nothing inherited but `PATH`.
fn server_env(addr: SocketAddr, db: &Db) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("AUTHARA_HTTP_ADDR", addr.to_string()),
        (
            "AUTHARA_JWT_KEYS",
            format!("{}:{}", seed::KEY_ID, STANDARD.encode(seed::KEY)),
        ),
        ("AUTHARA_JWT_ISSUER", seed::ISSUER.to_owned()),
        ("LOG_LEVEL", "warn".to_owned()),
        (
            "AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL",
            "always".to_owned(),
        ),
        ("AUTHARA_REFRESH_TOKEN_REUSE_GRACE", "10s".to_owned()),
        (
            "AUTHARA_ACCESS_TOKEN_TTL_MINUTES",
            seed::ACCESS_TTL_MINUTES.to_string(),
        ),
        ("PUBLIC_URL", format!("http://{addr}")),
        // PostgreSQL commits in groups: a write-heavy load wants more connections in flight
        // than the default 10 (pgbench, the reference, uses one per client). A deployment
        // knob, documented in bench/README.md.
        ("AUTHARA_DATABASE_MAX_CONNECTIONS", "32".to_owned()),
    ];
    // Limits raised to the largest accepted value (1 000 000 per 1 s): no 429s.
    for kind in ["LOGIN_IP", "LOGIN_EMAIL", "SIGNUP_IP", "SIGNUP_EMAIL"] {
        env.push((limit_var(kind, "LIMIT"), "1000000".to_owned()));
        env.push((limit_var(kind, "WINDOW"), "1s".to_owned()));
    }
    env.extend(db.env());
    env
}

fn limit_var(kind: &str, what: &str) -> &'static str {
    match (kind, what) {
        ("LOGIN_IP", "LIMIT") => "AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT",
        ("LOGIN_IP", _) => "AUTHARA_RATE_LIMIT_LOGIN_IP_WINDOW",
        ("LOGIN_EMAIL", "LIMIT") => "AUTHARA_RATE_LIMIT_LOGIN_EMAIL_LIMIT",
        ("LOGIN_EMAIL", _) => "AUTHARA_RATE_LIMIT_LOGIN_EMAIL_WINDOW",
        ("SIGNUP_IP", "LIMIT") => "AUTHARA_RATE_LIMIT_SIGNUP_IP_LIMIT",
        ("SIGNUP_IP", _) => "AUTHARA_RATE_LIMIT_SIGNUP_IP_WINDOW",
        ("SIGNUP_EMAIL", "LIMIT") => "AUTHARA_RATE_LIMIT_SIGNUP_EMAIL_LIMIT",
        _ => "AUTHARA_RATE_LIMIT_SIGNUP_EMAIL_WINDOW",
    }
}

/// The flood's server: like [`server_env`] but with the rate limits at their defaults and
/// 127.0.0.1 trusted as a proxy, so the bench can name many clients in `X-Forwarded-For`.
pub(crate) fn flood_env(addr: SocketAddr, db: &Db) -> Vec<(&'static str, String)> {
    let mut env: Vec<_> = server_env(addr, db)
        .into_iter()
        .filter(|(k, _)| !k.starts_with("AUTHARA_RATE_LIMIT_"))
        .collect();
    env.push(("AUTHARA_TRUSTED_PROXIES", "127.0.0.1/32".to_owned()));
    env
}

pub(crate) fn authara_command(
    bin: &Path,
    wrapper: &[String],
    dir: &Path,
    env: &[(&'static str, String)],
) -> Command {
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    cmd.env_clear().current_dir(dir);
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs one backend end to end. PostgreSQL's schema is dropped afterwards whatever happened.
pub async fn run(ctx: &Ctx, backend: Backend, cancel: &Cancel) -> anyhow::Result<TargetReport> {
    let dir = tempfile::Builder::new()
        .prefix("authara-bench-")
        .tempdir()
        .context("creating a temporary directory")?;
    match backend {
        Backend::Sqlite => {
            let db = Db::Sqlite {
                url: format!("sqlite://{}", dir.path().join("bench.db").display()),
            };
            cancel.guard(run_db(ctx, backend, &db, dir.path())).await
        }
        Backend::Postgres => {
            let url = ctx.postgres_url.clone();
            let schema = pg::fresh_schema();
            let db = Db::Postgres {
                url: url.clone(),
                schema: schema.clone(),
            };
            let result = cancel.guard(run_db(ctx, backend, &db, dir.path())).await;
            // The server (and the seeding pool) are gone by now: the guard and the store were
            // dropped with the future above.
            if let Err(e) = pg::drop_schema(&url, &schema).await {
                eprintln!("warning: could not drop schema {schema}: {e:#}");
            }
            result
        }
    }
}

async fn run_db(ctx: &Ctx, backend: Backend, db: &Db, dir: &Path) -> anyhow::Result<TargetReport> {
    let name = backend.name();
    let port = procs::free_port()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let env = server_env(addr, db);

    ctx.progress(&format!("[{name}] authara migrate"));
    let out = authara_command(&ctx.authara, &[], dir, &env)
        .arg("migrate")
        .output()
        .context("running authara migrate")?;
    if !out.status.success() {
        bail!(
            "authara migrate failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }

    ctx.progress(&format!("[{name}] authara serve on {addr}"));
    let log = dir.join("authara.log");
    let started = Instant::now();
    let mut server = ChildGuard::spawn(
        "authara serve",
        authara_command(&ctx.authara, &ctx.wrapper, dir, &env).arg("serve"),
        Some(&log),
    )?;
    if !ctx.wrapper.is_empty() {
        server = server.stop_gracefully();
    }
    let cold_start = wait_ready(addr, "/auth/health", &mut server, started).await?;
    tokio::time::sleep(SETTLE).await;
    let idle = procs::memory(server.pid())?;
    ctx.progress(&format!(
        "[{name}] healthy after {:.1} ms; idle RSS {:.1} MiB",
        cold_start.as_secs_f64() * 1000.0,
        procs::mib(idle.rss_kib)
    ));

    ctx.progress(&format!("[{name}] seeding {} users", ctx.users));
    let seed_start = Instant::now();
    let opened = db.open(SEED_TASKS as u32).await?;
    let users = seed::seed(
        opened.store(),
        ctx.keys.clone(),
        ctx.password_hash.clone(),
        ctx.users,
        SEED_TASKS,
    )
    .await?;
    opened.close().await;
    let seed_s = seed_start.elapsed().as_secs_f64();
    ctx.progress(&format!("[{name}] seeded in {seed_s:.1} s"));
    server.ensure_running()?;

    let spec = LoadSpec {
        addr,
        warmup: ctx.warmup,
        duration: ctx.duration,
    };
    let host = load::host_header(addr);
    let csrf_cookie = HeaderValue::from_str(&format!("authara_csrf={CSRF}"))?;
    let mut rows = Vec::new();
    for scenario in [
        Scenario::User,
        Scenario::UserBearer,
        Scenario::Refresh,
        Scenario::Login,
        Scenario::Signup,
    ] {
        if !ctx.scenarios.contains(&scenario) {
            continue;
        }
        let s = scenario.name();
        let conns = match scenario {
            Scenario::Login | Scenario::Signup => ctx.hash_connections,
            _ => ctx.connections,
        };
        ctx.progress(&format!("[{name}] {s}: {conns} connections"));
        let peak_reset = procs::reset_peak(server.pid());
        let result = match scenario {
            Scenario::User | Scenario::UserBearer => {
                let (header, form) = if scenario == Scenario::User {
                    (COOKIE, "authara_access=")
                } else {
                    (AUTHORIZATION, "Bearer ")
                };
                let cookies: Arc<[HeaderValue]> = users
                    .iter()
                    .map(|u| HeaderValue::from_str(&format!("{form}{}", u.access)))
                    .collect::<Result<_, _>>()?;
                let w = (0..conns)
                    .map(|c| User {
                        host: host.clone(),
                        header: header.clone(),
                        cookies: cookies.clone(),
                        next: c,
                        step: conns,
                    })
                    .collect();
                load::run(spec, w).await?
            }
            Scenario::Refresh => {
                let mut slices: Vec<Vec<String>> = vec![Vec::new(); conns];
                for (i, u) in users.iter().enumerate() {
                    if let Some(s) = slices.get_mut(i % conns) {
                        s.push(u.refresh.clone());
                    }
                }
                let w = slices
                    .into_iter()
                    .map(|tokens| Refresh {
                        host: host.clone(),
                        csrf: HeaderValue::from_static(CSRF),
                        csrf_value: CSRF.to_owned(),
                        tokens,
                        next: 0,
                        last: 0,
                    })
                    .collect();
                load::run(spec, w).await?
            }
            Scenario::Login => {
                let bodies: Arc<[Bytes]> = users
                    .iter()
                    .map(|u| Bytes::from(load::credentials_form(&u.email, seed::PASSWORD, CSRF)))
                    .collect();
                let w = (0..conns)
                    .map(|c| FormPost {
                        host: host.clone(),
                        path: "/auth/login",
                        csrf_cookie: csrf_cookie.clone(),
                        body: FormBodies::Cycle {
                            bodies: bodies.clone(),
                            next: c,
                            step: conns,
                        },
                    })
                    .collect();
                load::run(spec, w).await?
            }
            Scenario::Signup => {
                let tag = seed::random_tag();
                let w = (0..conns)
                    .map(|c| FormPost {
                        host: host.clone(),
                        path: "/auth/signup",
                        csrf_cookie: csrf_cookie.clone(),
                        body: FormBodies::Fresh {
                            prefix: format!("signup-{tag}-{c}"),
                            n: 0,
                            password: seed::PASSWORD.to_owned(),
                            csrf: CSRF.to_owned(),
                        },
                    })
                    .collect();
                load::run(spec, w).await?
            }
            Scenario::Hello | Scenario::Flood => continue,
        };
        server.ensure_running()?;
        let peak = procs::memory(server.pid())
            .ok()
            .filter(|_| peak_reset)
            .map(|m| procs::mib(m.hwm_kib));
        let row = Row::new(s, &result, peak);
        ctx.progress(&format!(
            "[{name}] {s}: {:.0} req/s, p99 {} ms, {} errors",
            row.requests_per_s,
            crate::report::fmt_ms(row.p99_ms),
            row.errors
        ));
        rows.push(row);
    }

    // The server goes first: its pool's connections would count against PostgreSQL's
    // max_connections while pgbench opens one per client.
    server.ensure_running()?;
    drop(server);

    if ctx.scenarios.contains(&Scenario::Flood) {
        rows.extend(crate::flood::run(ctx, name, db, dir, &users).await?);
    }

    let pgbench = match db {
        Db::Postgres { url, schema } if ctx.scenarios.contains(&Scenario::Refresh) => {
            ctx.progress(&format!(
                "[{name}] pgbench reference: {} clients, {:.0} s",
                ctx.connections,
                ctx.duration.as_secs_f64().ceil()
            ));
            let p = pg::pgbench(url, schema, ctx.connections, ctx.duration, dir).await?;
            ctx.progress(&format!("[{name}] pgbench: {:.1} tps", p.tps));
            Some(p)
        }
        _ => None,
    };

    Ok(TargetReport {
        backend: name.to_owned(),
        cold_start_ms: cold_start.as_secs_f64() * 1000.0,
        idle_rss_mib: procs::mib(idle.rss_kib),
        seed_s,
        users: users.len(),
        rows,
        pgbench,
        // Ratios are set by `RunReport::fill_ratios`, spreads when several runs are combined.
        ..TargetReport::default()
    })
}

/// Polls `GET path` until it answers 200; returns the time since `started`.
pub async fn wait_ready(
    addr: SocketAddr,
    path: &'static str,
    child: &mut ChildGuard,
    started: Instant,
) -> anyhow::Result<Duration> {
    loop {
        child.ensure_running()?;
        if probe(addr, path).await {
            return Ok(started.elapsed());
        }
        if started.elapsed() > START_TIMEOUT {
            bail!(
                "no 200 from {path} within {} s{}",
                START_TIMEOUT.as_secs(),
                child.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// One `GET` on a fresh connection; true on `200`.
async fn probe(addr: SocketAddr, path: &'static str) -> bool {
    let host = load::host_header(addr);
    let attempt = async {
        let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .ok()?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = hyper::Request::get(path)
            .header(hyper::header::HOST, host)
            .body(load::Body::default())
            .ok()?;
        let res = sender.send_request(req).await.ok()?;
        Some(res.status() == hyper::StatusCode::OK)
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csrf_value_is_43_base64url_characters() {
        assert_eq!(CSRF.len(), 43);
        assert!(CSRF
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }

    #[test]
    fn every_limit_is_raised_and_the_server_gets_the_bench_key() {
        let db = Db::Sqlite {
            url: "sqlite:///tmp/x.db".into(),
        };
        let env = server_env("127.0.0.1:1234".parse().unwrap(), &db);
        let get = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        let limits: Vec<_> = env
            .iter()
            .filter(|(k, _)| k.starts_with("AUTHARA_RATE_LIMIT_"))
            .collect();
        assert_eq!(limits.len(), 8);
        let names: std::collections::BTreeSet<_> = limits.iter().map(|(k, _)| *k).collect();
        assert_eq!(names.len(), 8);
        assert_eq!(get("AUTHARA_RATE_LIMIT_SIGNUP_EMAIL_WINDOW"), Some("1s"));
        assert_eq!(
            get("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL"),
            Some("always")
        );
        assert_eq!(get("DATABASE_URL"), Some("sqlite:///tmp/x.db"));
        let keys = get("AUTHARA_JWT_KEYS").unwrap();
        let (kid, secret) = keys.split_once(':').unwrap();
        assert_eq!(kid, seed::KEY_ID);
        assert_eq!(STANDARD.decode(secret).unwrap(), seed::KEY);
    }

    #[test]
    fn the_flood_server_keeps_default_limits_and_trusts_the_bench() {
        let db = Db::Sqlite {
            url: "sqlite:///tmp/x.db".into(),
        };
        let env = flood_env("127.0.0.1:1234".parse().unwrap(), &db);
        assert!(!env
            .iter()
            .any(|(k, _)| k.starts_with("AUTHARA_RATE_LIMIT_")));
        let get = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("AUTHARA_TRUSTED_PROXIES"), Some("127.0.0.1/32"));
        assert_eq!(get("DATABASE_URL"), Some("sqlite:///tmp/x.db"));
    }
}

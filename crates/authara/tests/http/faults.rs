//! Faults survived: PostgreSQL stopped while requests are in flight (on a throwaway cluster of
//! the test's own, never the shared server), and two instances on one PostgreSQL under a
//! refresh storm.

use crate::helpers::{free_port, require_service, Backend, TestApp};
use crate::sessions_cap::{login_elsewhere, refresh_with};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery";

/// The PostgreSQL server binaries (`initdb`, `pg_ctl`), newest version first.
fn postgres_bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .collect();
    dirs.sort();
    dirs.pop()
}

/// A throwaway PostgreSQL cluster in a temp dir, on a free loopback port, run by the
/// `postgres` user when the tests run as root (initdb refuses root). Stopped (immediately)
/// and removed on drop, also when the test panicked.
struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
}

impl Cluster {
    /// `None` when the binaries are missing (or, as root, there is no `postgres` user).
    fn create() -> Option<Self> {
        let bin = postgres_bin_dir()?;
        let as_postgres = is_root();
        if as_postgres && !user_exists("postgres") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path())
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown the cluster's temp dir to postgres");
        }
        let cluster = Self {
            bin,
            dir,
            port: free_port(),
            as_postgres,
        };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "--no-instructions",
            ],
        );
        Some(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs one of the server binaries (as `postgres` when needed); panics unless it succeeds.
    fn run(&self, tool: &str, args: &[&str]) {
        let out = self.command(tool, args).output().unwrap();
        assert!(
            out.status.success(),
            "{tool} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn command(&self, tool: &str, args: &[&str]) -> Command {
        let program = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        cmd.args(args).stdin(Stdio::null());
        cmd
    }

    /// Starts the server and waits until it accepts connections.
    fn start(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    /// Stops the server at once (`-m immediate`: no checkpoint, connections cut).
    fn stop(&self) {
        self.run(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .command(
                "pg_ctl",
                &[
                    "-D",
                    self.data().to_str().unwrap_or_default(),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn user_exists(name: &str) -> bool {
    Command::new("id")
        .arg(name)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Polls `/auth/health` until it answers `want` (status code), for up to 90 s.
async fn wait_for_health(app: &TestApp, want: u16) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let res = app.get("/auth/health").await;
        let status = res.status().as_u16();
        let body: serde_json::Value = res.json().await.unwrap_or_default();
        if status == want {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "health never answered {want} (last {status} {body})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What one in-flight request answered.
#[derive(Debug)]
struct Answer {
    what: &'static str,
    status: u16,
    retry_after: Option<String>,
    body: String,
    took: Duration,
}

/// One request of the in-flight mix, from a fresh client with `access` (a live session) or a
/// login; with a client-side timeout well above the pool's 10 s acquire timeout.
async fn one_request(app: &TestApp, i: usize, access: &str, user: &str) -> Answer {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(45))
        .build()
        .unwrap();
    let started = Instant::now();
    let (what, sent) = match i % 3 {
        0 => (
            "GET /auth/api/v1/user",
            client
                .get(app.url("/auth/api/v1/user"))
                .header("cookie", format!("authara_access={access}"))
                .send()
                .await,
        ),
        1 => (
            "GET /auth/account",
            client
                .get(app.url("/auth/account"))
                .header("cookie", format!("authara_access={access}"))
                .send()
                .await,
        ),
        _ => {
            let csrf = "f".repeat(43);
            (
                "POST /auth/login",
                client
                    .post(app.url("/auth/login"))
                    .header("cookie", format!("authara_csrf={csrf}"))
                    .form(&[
                        ("email", user),
                        ("password", PASSWORD),
                        ("csrf_token", csrf.as_str()),
                    ])
                    .send()
                    .await,
            )
        }
    };
    let res = sent.unwrap_or_else(|e| panic!("{what}: no answer within 45 s: {e}"));
    let status = res.status().as_u16();
    let retry_after = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = res.text().await.unwrap_or_default();
    Answer {
        what,
        status,
        retry_after,
        body,
        took: started.elapsed(),
    }
}

/// A 503 as the server must answer while the database is down: the JSON envelope on the API,
/// the HTML page elsewhere; nothing about the database's internals.
fn assert_unavailable(a: &Answer) {
    assert_eq!(a.status, 503, "{a:?}");
    assert_eq!(a.retry_after.as_deref(), Some("5"), "{a:?}");
    if a.what.contains("/api/") {
        let body: serde_json::Value = serde_json::from_str(&a.body).unwrap();
        assert_eq!(body["error"]["code"], "unavailable", "{a:?}");
    } else {
        assert!(a.body.contains("<html"), "{a:?}");
    }
    for leak in [
        "postgres",
        "sqlx",
        "connection refused",
        "SQLSTATE",
        "127.0.0.1",
    ] {
        assert!(
            !a.body
                .to_ascii_lowercase()
                .contains(&leak.to_ascii_lowercase()),
            "{leak} in {a:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stopped_under_load_answers_503_and_recovers_without_a_restart() {
    let cluster = Cluster::create();
    if !require_service(
        "initdb/pg_ctl not installed (PostgreSQL stopped under load)",
        cluster.is_some(),
    ) {
        return;
    }
    let Some(cluster) = cluster else { return };
    cluster.start();
    let url = cluster.url();
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("DATABASE_URL", url.as_str()),
            ("AUTHARA_DATABASE_MAX_CONNECTIONS", "8"),
            // Every request asks the database: what is checked is the database's absence.
            ("AUTHARA_SESSION_CACHE_SECONDS", "0"),
            // The load logs in over and over: the per-user cap must not end the session used.
            ("AUTHARA_SESSIONS_MAX_PER_USER", "1000"),
            // Nor may a busy hashing queue answer 503 for another reason.
            ("AUTHARA_PASSWORD_HASH_QUEUE", "1000"),
        ],
    )
    .await;
    let user = app.signed_up("outage").await;
    let access = app.cookie("authara_access").unwrap();
    let refresh = app.cookie("authara_refresh").unwrap();
    assert_eq!(app.user().await.0, 200);

    // Requests keep flowing from several clients while PostgreSQL stops.
    let stop = Arc::new(AtomicBool::new(false));
    let app = Arc::new(app);
    let mut load = Vec::new();
    for worker in 0..6 {
        let (app, stop, access, user) = (app.clone(), stop.clone(), access.clone(), user.clone());
        load.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            let mut i = worker;
            while !stop.load(Ordering::SeqCst) {
                answers.push(one_request(&app, i, &access, &user).await);
                i += 1;
            }
            answers
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.stop();
    let health = wait_for_health(&app, 503).await;
    assert_eq!(health, serde_json::json!({"status": "unavailable"}));
    // Each kind of request, sent now that the database is gone, is a 503.
    let (a, b, c) = tokio::join!(
        one_request(&app, 0, &access, &user),
        one_request(&app, 1, &access, &user),
        one_request(&app, 2, &access, &user),
    );
    for answer in [a, b, c] {
        assert_unavailable(&answer);
    }
    stop.store(true, Ordering::SeqCst);
    for task in load {
        for a in task.await.unwrap() {
            assert!(
                matches!(a.status, 200 | 303 | 503),
                "only success or 503 while the database goes away: {a:?}"
            );
            if a.status == 503 {
                assert_unavailable(&a);
            }
            // The pool gives up acquiring after 10 s; the rest is slack for a loaded machine.
            assert!(a.took < Duration::from_secs(40), "{a:?}");
        }
    }

    // PostgreSQL comes back on the same port and data: Authara recovers by itself.
    cluster.start();
    let health = wait_for_health(&app, 200).await;
    assert_eq!(health, serde_json::json!({"status": "ok"}));
    // Connections broken by the outage may fail once each before the pool drops them.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = app.user_status_with(&access).await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 503);
        assert!(
            Instant::now() < deadline,
            "the old session never worked again"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (new_access, _) = login_elsewhere(&app, &user, PASSWORD).await;
    assert_eq!(app.user_status_with(&new_access).await, 200);
    assert_eq!(refresh_with(&app, &refresh).await.status(), 200);
}

/// The refresh token a response sets, if any.
fn new_refresh(res: &reqwest::Response) -> Option<String> {
    let cookie = crate::helpers::set_cookie(res.headers(), "authara_refresh")?;
    let pair = cookie.split(';').next()?;
    let value = pair.trim_start_matches("authara_refresh=");
    (!value.is_empty()).then(|| value.to_owned())
}

/// The access token a response sets.
fn new_access(res: &reqwest::Response) -> String {
    let cookie = crate::helpers::set_cookie(res.headers(), "authara_access").unwrap();
    let pair = cookie.split(';').next().unwrap();
    pair.trim_start_matches("authara_access=").to_owned()
}

const SESSIONS: usize = 40;
const STEPS: usize = 8;

/// One session of the storm: its tokens as handed out, oldest first, and its latest access
/// token.
struct Stormed {
    sid: String,
    refresh: Vec<String>,
    access: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refresh_storm_across_two_instances_leaves_every_session_consistent() {
    if !crate::helpers::require_postgres("refresh storm across two instances") {
        return;
    }
    let a = Arc::new(
        TestApp::spawn_with(
            Backend::Postgres,
            &[
                ("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", "always"),
                ("AUTHARA_REFRESH_TOKEN_REUSE_GRACE", "2s"),
                ("AUTHARA_SESSION_CACHE_SECONDS", "60"),
            ],
        )
        .await,
    );
    let b = Arc::new(a.spawn_sibling().await);

    let mut sessions = Vec::with_capacity(SESSIONS);
    for i in 0..SESSIONS {
        let res = a
            .signup_in_another_browser(&crate::helpers::email(&format!("storm{i}")), PASSWORD)
            .await;
        assert_eq!(res.status(), 303);
        let access = new_access(&res);
        let refresh = new_refresh(&res).unwrap();
        sessions.push(Stormed {
            sid: crate::sessions_cap::sid_of(&access),
            refresh: vec![refresh],
            access,
        });
    }

    // Every session at once; at each step its current token goes to both instances at the
    // same moment: exactly one of the two rotates it, the other is inside the grace window.
    let mut tasks = Vec::with_capacity(SESSIONS);
    for mut s in sessions {
        let (a, b) = (a.clone(), b.clone());
        tasks.push(tokio::spawn(async move {
            for step in 0..STEPS {
                let current = s.refresh.last().unwrap().clone();
                let (first, second) = if step % 2 == 0 { (&a, &b) } else { (&b, &a) };
                let (x, y) = tokio::join!(
                    refresh_with(first, &current),
                    refresh_with(second, &current)
                );
                let mut rotated = Vec::new();
                for res in [x, y] {
                    assert_eq!(res.status(), 200, "session {} step {step}", s.sid);
                    let access = new_access(&res);
                    assert_eq!(crate::sessions_cap::sid_of(&access), s.sid);
                    s.access = access;
                    rotated.extend(new_refresh(&res));
                }
                assert_eq!(
                    rotated.len(),
                    1,
                    "a token is accepted (rotated) exactly once: session {} step {step}",
                    s.sid
                );
                s.refresh.extend(rotated);
            }
            s
        }));
    }
    let mut stormed = Vec::with_capacity(SESSIONS);
    for task in tasks {
        stormed.push(task.await.unwrap());
    }

    // No token was handed out twice, across all sessions and both instances.
    let mut seen = std::collections::HashSet::new();
    for s in &stormed {
        assert_eq!(s.refresh.len(), STEPS + 1);
        for token in &s.refresh {
            assert!(
                seen.insert(token.clone()),
                "a refresh token handed out twice"
            );
        }
    }
    // No session lost: each one's latest token still refreshes, on either instance, and the
    // access token works on both.
    for (i, s) in stormed.iter_mut().enumerate() {
        let on = if i % 2 == 0 { &a } else { &b };
        let res = refresh_with(on, s.refresh.last().unwrap()).await;
        assert_eq!(res.status(), 200, "session {}", s.sid);
        s.access = new_access(&res);
        s.refresh.push(new_refresh(&res).unwrap());
        assert_eq!(a.user_status_with(&s.access).await, 200);
        assert_eq!(b.user_status_with(&s.access).await, 200);
    }

    // Reuse after the grace window, detected on A, is honoured by B despite B's cache.
    let victim = &stormed[0];
    assert_eq!(b.user_status_with(&victim.access).await, 200, "cached on B");
    a.clock.advance(time::Duration::seconds(3));
    b.clock.advance(time::Duration::seconds(3));
    let replayed = refresh_with(&a, &victim.refresh[0]).await;
    assert_eq!(replayed.status(), 401, "reuse detected");
    assert_eq!(a.user_status_with(&victim.access).await, 401);
    // B hears of the revocation through PostgreSQL's notification, within milliseconds; the
    // bound is only against a hang.
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.user_status_with(&victim.access).await != 401 {
        assert!(
            Instant::now() < deadline,
            "instance B kept the revoked session"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        refresh_with(&b, victim.refresh.last().unwrap())
            .await
            .status(),
        401,
        "the session's newest token is dead on B too"
    );
    // The other sessions are untouched.
    for s in &stormed[1..] {
        assert_eq!(b.user_status_with(&s.access).await, 200);
    }
}

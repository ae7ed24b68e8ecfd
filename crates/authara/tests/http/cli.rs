//! The binary's subcommands, run as a user would run them.

use crate::helpers::{email, free_port, postgres_url};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// How long a spawned `serve` may take to answer: generous, for a loaded machine.
const READY_WITHIN: Duration = Duration::from_secs(30);

fn authara(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_authara"));
    cmd.args(args).current_dir(dir).env_clear();
    if let Ok(path) = std::env::var("PATH") {
        cmd.env("PATH", path);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Runs the binary with exactly `env` (and `PATH`), in `dir`.
pub(crate) fn run(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    authara(dir, args, env)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn version_and_keys_generate_print_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = authara(dir.path(), &["version"], &[]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("authara {}\n", env!("CARGO_PKG_VERSION"))
    );
    let out = authara(dir.path(), &["keys", "generate"], &[]);
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).unwrap();
    let (kid, secret) = line.trim_end().split_once(':').unwrap();
    assert!(!kid.is_empty());
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(secret)
        .unwrap();
    assert_eq!(bytes.len(), 32);
    let again = authara(dir.path(), &["keys", "generate"], &[]);
    assert_ne!(String::from_utf8(again.stdout).unwrap(), line);
}

#[test]
fn configuration_errors_are_one_line_naming_the_variable_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[("AUTHARA_REFRESH_TOKEN_TTL_DAYS", "90")],
            "AUTHARA_REFRESH_TOKEN_TTL_DAYS (90) must not exceed AUTHARA_SESSION_TTL_DAYS (60)",
        ),
        (&[("APP_ENV", "prod")], "AUTHARA_JWT"),
        (
            &[("AUTHARA_ACCESS_TOKEN_TTL_MINUTES", "abc")],
            "AUTHARA_ACCESS_TOKEN_TTL_MINUTES",
        ),
        (&[("AUTHARA_HTTP_ADDR", "nowhere")], "AUTHARA_HTTP_ADDR"),
    ];
    for (env, needle) in cases {
        let out = authara(dir.path(), &["serve"], env);
        assert_eq!(out.status.code(), Some(2), "{env:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{err}");
    }
}

#[test]
fn serve_refuses_an_unmigrated_database_until_migrate_runs() {
    let dir = tempfile::tempdir().unwrap();
    // No fixed port until the server starts: these runs never listen.
    let env = [
        ("DATABASE_URL", "sqlite://authara.db"),
        ("AUTHARA_AUTO_MIGRATE", "false"),
        ("AUTHARA_HTTP_ADDR", "127.0.0.1:0"),
    ];
    refuses_to_serve_until_migrated(dir.path(), &env);

    // Grant and revoke for a real user (emails are normalised as login does).
    let url = format!("sqlite://{}", dir.path().join("authara.db").display());
    let config =
        authara::config::Config::from_lookup(|k| (k == "DATABASE_URL").then(|| url.clone()))
            .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt.block_on(authara::server::open_store(&config)).unwrap();
    let id = uuid::Uuid::new_v4();
    rt.block_on(store.create_user(
        authara_core::store::NewUser {
            id,
            email: email("chief"),
            username: "chief".into(),
            password_hash: None,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            organization: crate::helpers::initial_org("chief"),
        },
        authara_core::store::Effects::none(),
    ))
    .unwrap();
    let is_admin = || {
        rt.block_on(store.find_user_by_id(id))
            .unwrap()
            .unwrap()
            .is_admin
    };
    let out = authara(dir.path(), &["admin", "grant", &email("CHIEF")], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("granted"));
    assert!(is_admin());
    let out = authara(dir.path(), &["admin", "revoke", &email("chief")], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!is_admin());

    // Healthcheck: 1 with no server, 0 with one. The port is picked right before the server
    // binds it.
    let addr = format!("127.0.0.1:{}", free_port());
    let env = [
        ("DATABASE_URL", "sqlite://authara.db"),
        ("AUTHARA_AUTO_MIGRATE", "false"),
        ("AUTHARA_HTTP_ADDR", addr.as_str()),
    ];
    let out = authara(dir.path(), &["healthcheck"], &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "healthcheck is silent"
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_authara"))
        .current_dir(dir.path())
        .env_clear()
        .envs(env)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let healthy = wait_until_ready(&mut child, || {
        authara(dir.path(), &["healthcheck"], &env).status.success()
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(healthy, "the server never became healthy");
}

#[test]
fn zero_config_serve_starts_on_sqlite_with_an_ephemeral_key() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_authara"))
        .current_dir(dir.path())
        .env_clear()
        .env("AUTHARA_HTTP_ADDR", &addr)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let ok = wait_until_ready(&mut child, || {
        let Ok(mut s) = std::net::TcpStream::connect(&addr) else {
            return false;
        };
        use std::io::{Read as _, Write as _};
        let _ = write!(
            s,
            "GET /auth/login HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        );
        let mut buf = String::new();
        let _ = s.read_to_string(&mut buf);
        buf.starts_with("HTTP/1.1 200") && buf.contains(r#"name="password""#)
    });
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(ok, "login page not served");
    assert!(dir.path().join("authara.db").exists());
    assert!(
        stderr(&out).contains("ephemeral signing key"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn postgres_serve_refuses_an_unmigrated_schema() {
    if !crate::helpers::require_postgres("the CLI") {
        return;
    }
    let Some(url) = postgres_url() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let schema = format!("cli_{}", std::process::id());
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("POSTGRESQL_SCHEMA", schema.as_str()),
    ];
    let _cleanup = crate::helpers::SchemaGuard::new(&url, &schema);
    refuses_to_serve_until_migrated(dir.path(), &env);
}

/// `serve` exits 1 naming the fix; `migrate` fixes it; `admin` on an unknown email exits 1.
fn refuses_to_serve_until_migrated(dir: &std::path::Path, env: &[(&str, &str)]) {
    let out = authara(dir, &["serve"], env);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("run `authara migrate`"),
        "{}",
        stderr(&out)
    );
    let out = authara(dir, &["migrate"], env);
    assert!(out.status.success(), "{}", stderr(&out));
    for verb in ["grant", "revoke"] {
        let out = authara(dir, &["admin", verb, &email("nobody")], env);
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("no user with email"));
    }
}

/// Polls `ready` until it holds, the server exits, or `READY_WITHIN` passes.
fn wait_until_ready(child: &mut std::process::Child, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + READY_WITHIN;
    while Instant::now() < deadline {
        if ready() {
            return true;
        }
        if matches!(child.try_wait(), Ok(Some(_))) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Starts `authara serve` on a free port with `env`; waits until it is healthy.
pub(crate) fn serve_binary(
    dir: &std::path::Path,
    env: &[(&str, &str)],
) -> (std::process::Child, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_authara"))
        .current_dir(dir)
        .env_clear()
        .env("AUTHARA_HTTP_ADDR", &addr)
        .env("LOG_LEVEL", "warn")
        .envs(env.iter().copied())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ready = wait_until_ready(&mut child, || {
        authara(dir, &["healthcheck"], &[("AUTHARA_HTTP_ADDR", &addr)])
            .status
            .success()
    });
    assert!(ready, "the server never became healthy");
    (child, addr)
}

/// Opens a login whose body the server is waiting for: it has answered `100 Continue`.
fn request_in_flight(addr: &str, body: &str) -> std::net::TcpStream {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(READY_WITHIN)).unwrap();
    write!(
        s,
        "POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    let mut head = [0u8; 25];
    s.read_exact(&mut head).unwrap();
    assert!(
        head.starts_with(b"HTTP/1.1 100 Continue"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s
}

fn sigterm(child: &std::process::Child) {
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
}

/// Waits (generously) for the server to exit; its exit code.
fn exit_code(child: &mut std::process::Child) -> Option<i32> {
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        assert!(Instant::now() < deadline, "the server did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_lets_the_request_in_flight_finish_refuses_new_ones_and_exits_0() {
    use std::io::{Read as _, Write as _};
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = serve_binary(dir.path(), &[]);
    let body = "email=a&password=b";
    let mut s = request_in_flight(&addr, body);
    sigterm(&child);
    // New connections are refused once the signal is handled.
    let deadline = Instant::now() + READY_WITHIN;
    while std::net::TcpStream::connect(&addr).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The request in flight still gets its whole answer (403: no CSRF token was sent).
    s.write_all(body.as_bytes()).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    let text = String::from_utf8_lossy(&rest);
    let text = text.trim_start_matches(['\r', '\n']);
    assert!(text.starts_with("HTTP/1.1 403"), "{text}");
    assert_eq!(exit_code(&mut child), Some(0));
}

#[test]
fn a_request_stalled_past_the_shutdown_timeout_is_closed_and_the_server_exits_0() {
    use std::io::Read as _;
    let dir = tempfile::tempdir().unwrap();
    // Only the shutdown timeout can end this request: the body timeout is far away.
    let (mut child, addr) = serve_binary(
        dir.path(),
        &[
            ("AUTHARA_SHUTDOWN_TIMEOUT", "1s"),
            ("AUTHARA_HTTP_BODY_TIMEOUT", "5m"),
            ("AUTHARA_HTTP_REQUEST_TIMEOUT", "10m"),
        ],
    );
    let mut s = request_in_flight(&addr, "email=a&password=b");
    sigterm(&child);
    assert_eq!(exit_code(&mut child), Some(0));
    // Closed without an answer.
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
}

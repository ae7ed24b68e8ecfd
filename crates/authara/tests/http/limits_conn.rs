//! Bounded work under floods: the hashing queue, and the connection limits and timeouts.
//! Raw TCP where a client must misbehave; every wait is a poll with a generous bound, and no
//! assertion depends on how fast the machine is.

use crate::helpers::{email, Backend, TestApp};
use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Longest wait for anything the server must do: generous, for a loaded machine.
const GENEROUS: Duration = Duration::from_secs(30);

/// Rate limits far above anything these tests send, so only the behaviour under test answers.
const NO_LIMITS: [(&str, &str); 4] = [
    ("AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT", "1000000"),
    ("AUTHARA_RATE_LIMIT_LOGIN_EMAIL_LIMIT", "1000000"),
    ("AUTHARA_RATE_LIMIT_SIGNUP_IP_LIMIT", "1000000"),
    ("AUTHARA_RATE_LIMIT_SIGNUP_EMAIL_LIMIT", "1000000"),
];

async fn spawn(extra: &[(&str, &str)]) -> TestApp {
    let mut vars: Vec<(&str, &str)> = NO_LIMITS.to_vec();
    vars.extend_from_slice(extra);
    TestApp::spawn_with(Backend::Sqlite, &vars).await
}

/// Reads until the server closes the connection (or `GENEROUS` passes); what was read, and
/// whether it was closed.
fn read_until_closed(s: &mut TcpStream) -> (Vec<u8>, bool) {
    s.set_read_timeout(Some(GENEROUS)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return (out, false)
            }
            // Reset by the server: closed too.
            Err(_) => return (out, true),
        }
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, GENEROUS).unwrap();
    s.set_write_timeout(Some(GENEROUS)).unwrap();
    s
}

/// The status code of a raw HTTP/1.1 response, if it starts with one.
fn status(raw: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(raw.get(..12)?).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.parse().ok()
}

/// A server with one hashing thread and one queue slot, at costly parameters.
async fn saturable() -> TestApp {
    spawn(&[
        ("AUTHARA_PASSWORD_HASH_CONCURRENCY", "1"),
        ("AUTHARA_PASSWORD_HASH_QUEUE", "1"),
        ("AUTHARA_PASSWORD_HASH_MEMORY_KIB", "65536"),
        ("AUTHARA_PASSWORD_HASH_ITERATIONS", "3"),
    ])
    .await
}

/// Twelve concurrent wrong-password logins posted to `url`, each body added by `body` for a
/// fresh email and the CSRF token (also sent as the cookie and the header); their statuses,
/// `Retry-After` headers and bodies.
fn flood_logins(
    client: &reqwest::Client,
    url: &str,
    body: fn(reqwest::RequestBuilder, &str, &str) -> reqwest::RequestBuilder,
) -> Vec<tokio::task::JoinHandle<(u16, Option<String>, String)>> {
    let csrf = "e".repeat(43);
    (0..12)
        .map(|i| {
            let req = client
                .post(url)
                .header("cookie", format!("authara_csrf={csrf}"))
                .header("x-csrf-token", &csrf);
            let req = body(req, &email(&format!("flood{i}")), &csrf);
            tokio::spawn(async move {
                let res = req.send().await.unwrap();
                let status = res.status().as_u16();
                let retry_after = res
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned());
                (status, retry_after, res.text().await.unwrap())
            })
        })
        .collect()
}

fn patient_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_hashing_queue_answers_503_at_once_and_health_still_answers() {
    let app = saturable().await;
    let client = patient_client();
    let logins = flood_logins(&client, &app.url("/auth/login"), |req, email, csrf| {
        req.form(&[
            ("email", email),
            ("password", "wrong horse battery"),
            ("csrf_token", csrf),
        ])
    });
    // Health answers while the logins are queued, refused or hashing.
    let mut healthy = 0;
    while !logins.iter().all(|t| t.is_finished()) || healthy == 0 {
        let res = client.get(app.url("/auth/health")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        healthy += 1;
    }
    let mut busy = 0;
    for t in logins {
        let (status, retry_after, body) = t.await.unwrap();
        match status {
            422 => assert!(body.contains("Invalid email or password.")),
            503 => {
                busy += 1;
                assert_eq!(retry_after.as_deref(), Some("1"));
                assert!(body.contains("The server is busy."), "{body}");
            }
            other => panic!("unexpected status {other}: {body}"),
        }
    }
    // One hashing thread and one queue slot cannot take twelve logins at once.
    assert!(busy > 0, "no login was refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_hashing_queue_answers_the_json_login_503_unavailable() {
    let app = saturable().await;
    let logins = flood_logins(
        &patient_client(),
        &app.url("/auth/api/v1/login"),
        |req, email, _| {
            req.json(&serde_json::json!({"email": email, "password": "wrong horse battery"}))
        },
    );
    let mut busy = 0;
    for t in logins {
        let (status, retry_after, body) = t.await.unwrap();
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        match status {
            401 => assert_eq!(body["error"]["code"], "unauthorized"),
            503 => {
                busy += 1;
                assert_eq!(retry_after.as_deref(), Some("1"));
                assert_eq!(body["error"]["code"], "unavailable", "{body}");
            }
            other => panic!("unexpected status {other}: {body}"),
        }
    }
    assert!(busy > 0, "no login was refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_client_is_disconnected_after_the_header_timeout() {
    let app = spawn(&[("AUTHARA_HTTP_HEADER_READ_TIMEOUT", "1s")]).await;
    let mut s = connect(app.addr);
    s.write_all(b"GET /auth/hea").unwrap();
    let (got, closed) = read_until_closed(&mut s);
    assert!(closed, "the connection is still open");
    assert!(got.is_empty() || status(&got).is_some_and(|c| c < 500));

    // A client that connects and sends nothing is closed too.
    let mut quiet = connect(app.addr);
    let (_, closed) = read_until_closed(&mut quiet);
    assert!(closed, "the silent connection is still open");

    // Well-behaved clients are served.
    assert_eq!(app.get("/auth/health").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let app = spawn(&[
        ("AUTHARA_HTTP_HEADER_READ_TIMEOUT", "1s"),
        ("AUTHARA_HTTP_IDLE_TIMEOUT", "2s"),
    ])
    .await;
    let mut s = connect(app.addr);
    s.write_all(b"GET /auth/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (got, closed) = read_until_closed(&mut s);
    assert_eq!(status(&got), Some(200), "{}", String::from_utf8_lossy(&got));
    assert!(closed, "the idle connection is still open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_body_is_cut_off_with_408() {
    let app = spawn(&[("AUTHARA_HTTP_BODY_TIMEOUT", "1s")]).await;
    for path in ["/auth/login", "/auth/api/v1/sessions/logout"] {
        let mut s = connect(app.addr);
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nemail=a"
        )
        .unwrap();
        let (got, _) = read_until_closed(&mut s);
        let text = String::from_utf8_lossy(&got);
        assert_eq!(status(&got), Some(408), "{path}: {text}");
        if path.starts_with("/auth/api/") {
            assert!(text.contains(r#""code":"request_timeout""#), "{text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_header_block_gets_431_or_a_closed_connection_never_a_5xx() {
    let app = spawn(&[]).await;
    for (name, request) in [
        (
            "one huge cookie",
            format!(
                "GET /auth/login HTTP/1.1\r\nHost: x\r\nCookie: a={}\r\n\r\n",
                "v".repeat(40 * 1024)
            ),
        ),
        (
            "too many headers",
            format!(
                "GET /auth/login HTTP/1.1\r\nHost: x\r\n{}\r\n",
                (0..150)
                    .map(|i| format!("X-H{i}: v\r\n"))
                    .collect::<String>()
            ),
        ),
        (
            "a megabyte of headers",
            format!(
                "GET /auth/login HTTP/1.1\r\nHost: x\r\n{}\r\n",
                (0..64)
                    .map(|i| format!("X-H{i}: {}\r\n", "v".repeat(16 * 1024)))
                    .collect::<String>()
            ),
        ),
    ] {
        let mut s = connect(app.addr);
        // The server may close before everything is written: that is an answer too.
        let _ = s.write_all(request.as_bytes());
        let (got, closed) = read_until_closed(&mut s);
        let code = status(&got);
        assert!(
            code == Some(431) || (got.is_empty() && closed),
            "{name}: {code:?} {}",
            String::from_utf8_lossy(&got)
        );
    }
    // A normal request with a generous cookie still works.
    let res = app
        .fresh_client()
        .get(app.url("/auth/login"))
        .header("cookie", format!("app_session={}", "v".repeat(8 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_a_new_connection_waits_until_one_closes() {
    let app = spawn(&[
        ("AUTHARA_HTTP_MAX_CONNECTIONS", "2"),
        ("AUTHARA_HTTP_HEADER_READ_TIMEOUT", "5m"),
    ])
    .await;
    // Two connections take both slots (they never send a request).
    let first = connect(app.addr);
    let _second = connect(app.addr);
    let mut third = connect(app.addr);
    third
        .write_all(b"GET /auth/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    // While both are open the third is not served. (A slow machine can only make this hold
    // longer, never fail it.)
    third
        .set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let mut buf = [0u8; 64];
    match third.read(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("the third connection was served at the cap: {other:?}"),
    }
    drop(first);
    let (got, _) = read_until_closed(&mut third);
    assert_eq!(status(&got), Some(200), "{}", String::from_utf8_lossy(&got));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_outliving_the_request_timeout_gets_503_unavailable() {
    // A costly hash cannot finish within a millisecond.
    let app = spawn(&[
        ("AUTHARA_HTTP_REQUEST_TIMEOUT", "1ms"),
        ("AUTHARA_PASSWORD_HASH_MEMORY_KIB", "65536"),
        ("AUTHARA_PASSWORD_HASH_ITERATIONS", "3"),
    ])
    .await;
    let csrf = "e".repeat(43);
    let res = app
        .fresh_client()
        .post(app.url("/auth/login"))
        .header("cookie", format!("authara_csrf={csrf}"))
        .form(&[
            ("email", email("slow").as_str()),
            ("password", "wrong horse battery"),
            ("csrf_token", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    assert!(res.text().await.unwrap().contains("Service unavailable."));
}

//! Rate limits over HTTP: per IP and per email, for login and signup; the client address behind
//! proxies; counters shared through Redis, and Redis going away and coming back.

use crate::helpers::{email, free_port, set_cookie, Backend, TestApp};
use crate::on_both;
use authara_core::clock::Clock as _;
use reqwest::Response;
use std::time::Duration;

const PASSWORD: &str = "correct horse battery";

/// The `Retry-After` of a response, in seconds.
fn retry_after(res: &Response) -> u64 {
    res.headers()
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Checks that `res` is the rate-limited login or signup page and nothing else happened: no
/// session cookie. Returns `Retry-After`.
async fn assert_limited(res: Response) -> u64 {
    assert_eq!(res.status(), 429);
    let after = retry_after(&res);
    for name in ["authara_access", "authara_refresh"] {
        assert!(set_cookie(res.headers(), name).is_none(), "{name} was set");
    }
    let body = res.text().await.unwrap();
    assert!(body.contains("Too many attempts"), "{body}");
    after
}

/// A login from a fresh browser (no cookies of `app.client`), optionally through a proxy that
/// says the client is `forwarded_for`.
async fn login_as(
    app: &TestApp,
    email: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> Response {
    let csrf = "c".repeat(43);
    let mut req = app
        .fresh_client()
        .post(app.url("/auth/login"))
        .header("cookie", format!("authara_csrf={csrf}"))
        .form(&[
            ("email", email),
            ("password", password),
            ("csrf_token", csrf.as_str()),
        ]);
    if let Some(xff) = forwarded_for {
        req = req.header("x-forwarded-for", xff);
    }
    req.send().await.unwrap()
}

/// How many live sessions the user with `email` has.
async fn live_sessions(app: &TestApp, email: &str) -> usize {
    let store = authara::server::open_store(&app.config).await.unwrap();
    let user = store.find_user_by_email(email).await.unwrap().unwrap();
    store
        .list_live_sessions(user.id, app.clock.now())
        .await
        .unwrap()
        .len()
}

async fn the_ip_limit_refuses_the_next_login_with_429_until_the_window_ends(b: Backend) {
    let app = TestApp::spawn_with(
        b,
        &[
            ("AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT", "3"),
            ("AUTHARA_RATE_LIMIT_LOGIN_IP_WINDOW", "1m"),
        ],
    )
    .await;
    let e = app.signed_up("ip-limit").await;
    assert_eq!(live_sessions(&app, &e).await, 1);
    // Three attempts per minute, whatever their outcome and email.
    assert_eq!(
        login_as(&app, &e, "wrong password", None).await.status(),
        422
    );
    assert_eq!(
        login_as(&app, &email("nobody"), PASSWORD, None)
            .await
            .status(),
        422
    );
    assert_eq!(login_as(&app, &e, PASSWORD, None).await.status(), 303);
    assert_eq!(live_sessions(&app, &e).await, 2);
    // The fourth, with the right password, is refused before anything happens.
    app.clock.advance(time::Duration::seconds(20));
    let after = assert_limited(login_as(&app, &e, PASSWORD, None).await).await;
    assert!((1..=60).contains(&after), "Retry-After {after}");
    assert_eq!(live_sessions(&app, &e).await, 2, "no session was created");
    // htmx gets the same answer.
    let csrf = "c".repeat(43);
    let res = app
        .fresh_client()
        .post(app.url("/auth/login"))
        .header("cookie", format!("authara_csrf={csrf}"))
        .header("hx-request", "true")
        .form(&[
            ("email", e.as_str()),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_limited(res).await;
    // When the window is over, logins work again.
    app.clock.advance(time::Duration::seconds(41));
    assert_eq!(login_as(&app, &e, PASSWORD, None).await.status(), 303);
    assert_eq!(live_sessions(&app, &e).await, 3);
}

async fn failures_spend_the_email_budget_and_successful_logins_do_not(b: Backend) {
    let app = TestApp::spawn_with(
        b,
        &[
            ("AUTHARA_RATE_LIMIT_LOGIN_EMAIL_LIMIT", "3"),
            ("AUTHARA_RATE_LIMIT_LOGIN_EMAIL_WINDOW", "1h"),
        ],
    )
    .await;
    let e = app.signed_up("email-limit").await;
    let other = app.signed_up("email-limit-other").await;
    for _ in 0..6 {
        assert_eq!(login_as(&app, &e, PASSWORD, None).await.status(), 303);
    }
    for _ in 0..3 {
        assert_eq!(
            login_as(&app, &e, "wrong password", None).await.status(),
            422
        );
    }
    // The budget is spent: even the right password is refused, in any spelling of the address.
    let after = assert_limited(login_as(&app, &e, PASSWORD, None).await).await;
    assert!((3500..=3600).contains(&after), "Retry-After {after}");
    let shouted = e.to_uppercase();
    assert_limited(login_as(&app, &format!("  {shouted} "), PASSWORD, None).await).await;
    let sessions = live_sessions(&app, &e).await;
    assert_eq!(sessions, 7, "signup and six logins");
    // Another address is not affected.
    assert_eq!(login_as(&app, &other, PASSWORD, None).await.status(), 303);
    app.clock.advance(time::Duration::hours(1));
    assert_eq!(login_as(&app, &e, PASSWORD, None).await.status(), 303);
}

async fn signup_is_limited_per_ip_and_per_email(b: Backend) {
    let app = TestApp::spawn_with(
        b,
        &[
            ("AUTHARA_RATE_LIMIT_SIGNUP_IP_LIMIT", "2"),
            ("AUTHARA_RATE_LIMIT_SIGNUP_IP_WINDOW", "1h"),
        ],
    )
    .await;
    app.signed_up("signup-a").await;
    app.signed_up("signup-b").await;
    let c = email("signup-c");
    let after = assert_limited(app.signup(&c, PASSWORD).await).await;
    assert!((3500..=3600).contains(&after), "Retry-After {after}");
    // Nothing was created: the account does not exist.
    assert_eq!(login_as(&app, &c, PASSWORD, None).await.status(), 422);
    app.clock.advance(time::Duration::hours(1));
    assert_eq!(app.signup(&c, PASSWORD).await.status(), 303);

    // Per email, every attempt counts (a taken address included).
    let app = TestApp::spawn_with(
        b,
        &[
            ("AUTHARA_RATE_LIMIT_SIGNUP_EMAIL_LIMIT", "2"),
            ("AUTHARA_RATE_LIMIT_SIGNUP_EMAIL_WINDOW", "24h"),
        ],
    )
    .await;
    let d = email("signup-d");
    assert_eq!(app.signup(&d, "short").await.status(), 422);
    assert_eq!(app.signup(&d, PASSWORD).await.status(), 303);
    let after = assert_limited(app.signup(&d.to_uppercase(), PASSWORD).await).await;
    assert!(after > 23 * 3600, "Retry-After {after}");
    assert_eq!(app.signup(&email("signup-e"), PASSWORD).await.status(), 303);
}

on_both!(
    the_ip_limit_refuses_the_next_login_with_429_until_the_window_ends,
    failures_spend_the_email_budget_and_successful_logins_do_not,
    signup_is_limited_per_ip_and_per_email,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoofed_forwarded_for_from_an_untrusted_peer_does_not_escape_the_ip_limit() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[("AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT", "2")],
    )
    .await;
    let e = email("spoof");
    for xff in ["203.0.113.1", "203.0.113.2"] {
        assert_eq!(login_as(&app, &e, PASSWORD, Some(xff)).await.status(), 422);
    }
    for xff in [
        "203.0.113.3",
        "198.51.100.1:80",
        "[2001:db8::1]:443",
        "garbage",
    ] {
        assert_limited(login_as(&app, &e, PASSWORD, Some(xff)).await).await;
    }
    assert_limited(login_as(&app, &e, PASSWORD, None).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_bucket() {
    for trust in [
        ("AUTHARA_TRUSTED_PROXIES", "127.0.0.1/32"),
        ("AUTHARA_TRUST_PROXY_HEADERS", "true"),
    ] {
        let app = TestApp::spawn_with(
            Backend::Sqlite,
            &[("AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT", "2"), trust],
        )
        .await;
        let e = email("proxied");
        let a = "203.0.113.10";
        for _ in 0..2 {
            assert_eq!(login_as(&app, &e, PASSWORD, Some(a)).await.status(), 422);
        }
        assert_limited(login_as(&app, &e, PASSWORD, Some(a)).await).await;
        // The same client with a port; and, with a list, as the right-most untrusted entry
        // (when every peer is trusted the walk goes on to the left-most entry instead).
        assert_limited(login_as(&app, &e, PASSWORD, Some("203.0.113.10:5555")).await).await;
        let xff = if trust.0 == "AUTHARA_TRUSTED_PROXIES" {
            "192.0.2.99, 203.0.113.10"
        } else {
            "203.0.113.10, 192.0.2.99"
        };
        assert_limited(login_as(&app, &e, PASSWORD, Some(xff)).await).await;
        // Another client behind the proxy is not affected, also written as [v6]:port.
        assert_eq!(
            login_as(&app, &e, PASSWORD, Some("203.0.113.11"))
                .await
                .status(),
            422,
            "{trust:?}"
        );
        let v6 = "[2001:db8::11]:443";
        for _ in 0..2 {
            assert_eq!(login_as(&app, &e, PASSWORD, Some(v6)).await.status(), 422);
        }
        assert_limited(login_as(&app, &e, PASSWORD, Some("2001:db8::11")).await).await;
    }
}

/// Whether a test whose service may be missing runs: the shared check (skipped on a laptop,
/// a failure under `CI=true`).
fn service_present(present: bool, missing: &str, test: &str) -> bool {
    crate::helpers::require_service(&format!("{missing} ({test})"), present)
}

fn test_redis_url() -> Option<String> {
    std::env::var("AUTHARA_TEST_REDIS_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// A random address from 2001:db8::/32 (documentation), so parallel runs never share counters.
fn random_client_ip() -> String {
    let mut b = [0u8; 12];
    authara_core::random::Random::fill(&authara_core::random::OsRandom, &mut b);
    let g: Vec<String> = b
        .chunks(2)
        .map(|c| format!("{:x}", u16::from_be_bytes([c[0], c[1]])))
        .collect();
    format!("2001:db8:{}", g.join(":"))
}

async fn redis_conn(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn redis_get(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> Option<u64> {
    redis::cmd("GET").arg(key).query_async(conn).await.unwrap()
}

fn login_ip_key(ip: &str) -> String {
    format!("authara:ratelimit:login:ip:{ip}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_their_counters_through_redis() {
    let url = test_redis_url();
    let test = "two_instances_share_their_counters_through_redis";
    if !service_present(url.is_some(), "AUTHARA_TEST_REDIS_URL not set", test) {
        return;
    }
    let url = url.unwrap();
    let vars = [
        ("AUTHARA_REDIS_URL", url.as_str()),
        ("AUTHARA_TRUSTED_PROXIES", "127.0.0.1/32"),
        ("AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT", "4"),
        ("AUTHARA_RATE_LIMIT_LOGIN_EMAIL_LIMIT", "3"),
    ];
    // Two instances, each on a database of its own (one server per SQLite file): only Redis
    // joins them.
    let app = TestApp::spawn_with(Backend::Sqlite, &vars).await;
    let sibling = TestApp::spawn_with(Backend::Sqlite, &vars).await;
    let ip = random_client_ip();
    let mut b = [0u8; 8];
    authara_core::random::Random::fill(&authara_core::random::OsRandom, &mut b);
    let who = email(&format!("shared-{:x}", u64::from_be_bytes(b)));
    let email_key = format!("authara:ratelimit:login:email:{who}");
    let mut conn = redis_conn(&url).await;

    for (i, instance) in [&app, &sibling, &app].into_iter().enumerate() {
        let res = login_as(instance, &who, "wrong password", Some(&ip)).await;
        assert_eq!(res.status(), 422, "attempt {i}");
    }
    assert_eq!(redis_get(&mut conn, &login_ip_key(&ip)).await, Some(3));
    assert_eq!(redis_get(&mut conn, &email_key).await, Some(3));
    let ttl: i64 = redis::cmd("PTTL")
        .arg(login_ip_key(&ip))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((1..=60_000).contains(&ttl), "a fixed window of 1m: {ttl}");
    // The email budget (3 failures) is spent, counted across both instances.
    assert_limited(login_as(&sibling, &who, PASSWORD, Some(&ip)).await).await;
    // That was the 4th attempt from this address: the 5th is over the IP limit on either.
    let other = email(&format!("shared-other-{:x}", u64::from_be_bytes(b)));
    assert_limited(login_as(&app, &other, PASSWORD, Some(&ip)).await).await;
    assert_limited(login_as(&sibling, &other, PASSWORD, Some(&ip)).await).await;
    // Another client is unaffected.
    let ip2 = random_client_ip();
    assert_eq!(
        login_as(&sibling, &other, PASSWORD, Some(&ip2))
            .await
            .status(),
        422
    );

    let _: () = redis::cmd("DEL")
        .arg(login_ip_key(&ip))
        .arg(login_ip_key(&ip2))
        .arg(&email_key)
        .arg(format!("authara:ratelimit:login:email:{other}"))
        .query_async(&mut conn)
        .await
        .unwrap();
}

/// A throwaway `redis-server` on `port`, stopped when dropped.
struct OwnRedis {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl OwnRedis {
    fn start(port: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        Self { child, _dir: dir }
    }

    /// Waits until it answers PING (generously: the machine may be loaded).
    async fn ready(url: &str) {
        for _ in 0..200 {
            if let Ok(client) = redis::Client::open(url) {
                if let Ok(mut c) = client.get_multiplexed_async_connection().await {
                    let pong: Result<String, _> = redis::cmd("PING").query_async(&mut c).await;
                    if pong.is_ok() {
                        return;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not start");
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn redis_server_installed() -> bool {
    std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_redis_stops_logins_are_limited_in_process_and_redis_is_used_again_when_it_returns() {
    let test =
        "when_redis_stops_logins_are_limited_in_process_and_redis_is_used_again_when_it_returns";
    if !service_present(redis_server_installed(), "redis-server not installed", test) {
        return;
    }
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let mut redis_server = OwnRedis::start(port);
    OwnRedis::ready(&url).await;
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("AUTHARA_REDIS_URL", &url),
            ("AUTHARA_TRUSTED_PROXIES", "127.0.0.1/32"),
            ("AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT", "3"),
        ],
    )
    .await;
    let e = email("redis-fault");
    let first = random_client_ip();
    assert_eq!(
        login_as(&app, &e, PASSWORD, Some(&first)).await.status(),
        422
    );
    let mut conn = redis_conn(&url).await;
    assert_eq!(redis_get(&mut conn, &login_ip_key(&first)).await, Some(1));
    drop(conn);

    redis_server.stop();
    // Still answered, and still limited: in this process now.
    let during = random_client_ip();
    for i in 0..3 {
        let res = login_as(&app, &e, PASSWORD, Some(&during)).await;
        assert_eq!(res.status(), 422, "attempt {i} while Redis is down");
    }
    assert_limited(login_as(&app, &e, PASSWORD, Some(&during)).await).await;
    assert_eq!(app.get("/auth/health").await.status(), 200);

    let _restarted = OwnRedis::start(port);
    OwnRedis::ready(&url).await;
    let mut conn = redis_conn(&url).await;
    // The limiter reconnects by itself: poll until a login's counter shows up in Redis.
    let mut back = None;
    for _ in 0..120 {
        let ip = random_client_ip();
        let res = login_as(&app, &e, PASSWORD, Some(&ip)).await;
        assert!(res.status().as_u16() < 500, "{}", res.status());
        if redis_get(&mut conn, &login_ip_key(&ip)).await == Some(1) {
            back = Some(ip);
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let ip = back.expect("the limiter went back to Redis");
    for _ in 0..2 {
        assert_eq!(login_as(&app, &e, PASSWORD, Some(&ip)).await.status(), 422);
    }
    assert_eq!(redis_get(&mut conn, &login_ip_key(&ip)).await, Some(3));
    assert_limited(login_as(&app, &e, PASSWORD, Some(&ip)).await).await;
}

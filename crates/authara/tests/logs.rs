//! What reaches the logs: every line of a request carries its id, and no secret ever does.
//! A binary of its own, because it installs a global tracing subscriber.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "http/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use helpers::{Backend, TestApp};
use std::sync::{Arc, Mutex};

/// Captures every log line the server writes during a test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_carry_the_request_id_and_never_a_secret() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .finish();
    // Global, in a test binary of its own: a thread-local default would miss events whose
    // call sites another test thread registered first with no subscriber.
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", "always"),
            ("AUTHARA_REFRESH_TOKEN_REUSE_GRACE", "10s"),
        ],
    )
    .await;
    let e = app.signed_up("logs").await;
    let csrf = app.csrf().await;
    let refresh = app.cookie("authara_refresh").unwrap();
    app.post_api("/auth/api/v1/sessions/refresh").await;
    let newer = app.cookie("authara_refresh").unwrap();
    let access = app.cookie("authara_access").unwrap();
    app.login(&e, "a wrong password").await;
    // Reuse after the grace window logs a warning about the session, not the token.
    app.clock.advance(time::Duration::seconds(30));
    app.set_cookie("authara_refresh", &refresh);
    let res = app.post_api("/auth/api/v1/sessions/refresh").await;
    let reuse_id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    drop(app);

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("refresh token reuse detected"), "{logs}");
    let finished: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("request finished"))
        .collect();
    assert!(finished.len() >= 5, "{logs}");
    for line in logs.lines().filter(|l| l.contains("request{")) {
        assert!(line.contains("request_id="), "{line}");
    }
    // Lines the request path emits carry the id of their request: the warning of the reuse
    // and every "request finished".
    let reuse: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("refresh token reuse detected"))
        .collect();
    assert_eq!(reuse.len(), 1, "{logs}");
    assert!(
        reuse[0].contains(&format!("request_id={reuse_id}")),
        "{}",
        reuse[0]
    );
    for line in &finished {
        assert!(line.contains("request_id="), "{line}");
    }
    for secret in [
        "correct horse battery",
        "a wrong password",
        &csrf,
        &refresh,
        &newer,
        &access,
    ] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
}

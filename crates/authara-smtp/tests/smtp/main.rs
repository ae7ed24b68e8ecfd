//! The SMTP sender against a real SMTP server on 127.0.0.1 (`server.rs`): plaintext, STARTTLS
//! with a certificate the test trusts, AUTH, and every way sending can fail; and the email
//! workers (`worker.rs`) against an in-memory store (`fake.rs`, over `authara-webhook`'s
//! in-memory outbox) and the same server.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod fake;
/// The in-memory outbox and waiting helpers of `authara-webhook`'s tests, shared rather than
/// copied.
#[path = "../../../authara-webhook/tests/webhook/outbox.rs"]
#[allow(dead_code)]
mod outbox;
mod server;
mod worker;

use authara_smtp::{Email, SendError, SmtpSender, SmtpSettings, TlsMode};
use server::{Behaviour, SmtpServer};
use std::time::{Duration, Instant};

fn settings(port: u16, tls: TlsMode) -> SmtpSettings {
    SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        tls,
        tls_server_name: Some("localhost".into()),
        extra_root_pem: None,
        username: None,
        password: None,
        from: "noreply@example.com".into(),
        timeout: Duration::from_secs(5),
    }
}

fn email() -> Email {
    Email {
        to: "ada@example.com".into(),
        subject: "Your verification code".into(),
        text: "Your code is 123456.".into(),
        html: "<p>Your code is <b>123456</b>.</p>".into(),
    }
}

fn starttls_with_login() -> Behaviour {
    Behaviour {
        starttls: true,
        login: Some(("mailer".into(), "s3cret pass".into())),
        data_reply: None,
    }
}

#[tokio::test]
async fn a_message_is_delivered_in_plaintext_with_both_parts() {
    let server = SmtpServer::start(Behaviour::default()).await;
    let sender = SmtpSender::new(&settings(server.port, TlsMode::Off)).unwrap();
    sender.send(&email()).await.unwrap();
    let got = server.received();
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.mail_from, "noreply@example.com");
    assert_eq!(m.rcpt_to, ["ada@example.com"]);
    assert!(!m.over_tls);
    assert!(
        m.data.contains("Subject: Your verification code"),
        "{}",
        m.data
    );
    assert!(m.data.contains("To: ada@example.com"));
    assert!(m.data.contains("From: noreply@example.com"));
    assert!(m.data.contains("text/plain") && m.data.contains("text/html"));
    assert!(m.data.contains("123456"));
}

#[tokio::test]
async fn starttls_and_auth_deliver_over_tls() {
    let server = SmtpServer::start(starttls_with_login()).await;
    let mut s = settings(server.port, TlsMode::StartTls);
    s.extra_root_pem = Some(server.cert_pem.clone().into_bytes());
    s.username = Some("mailer".into());
    s.password = Some("s3cret pass".into());
    SmtpSender::new(&s).unwrap().send(&email()).await.unwrap();
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert!(got[0].over_tls, "the message came in plaintext");
    assert_eq!(got[0].user.as_deref(), Some("mailer"));
}

#[tokio::test]
async fn starttls_required_but_not_offered_sends_nothing() {
    let server = SmtpServer::start(Behaviour::default()).await;
    let mut s = settings(server.port, TlsMode::StartTls);
    s.extra_root_pem = Some(server.cert_pem.clone().into_bytes());
    let e = SmtpSender::new(&s)
        .unwrap()
        .send(&email())
        .await
        .unwrap_err();
    assert!(matches!(e, SendError::Transient(_)), "{e:?}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn an_untrusted_or_misnamed_certificate_sends_nothing() {
    let server = SmtpServer::start(starttls_with_login()).await;
    let mut untrusted = settings(server.port, TlsMode::StartTls);
    untrusted.username = Some("mailer".into());
    untrusted.password = Some("s3cret pass".into());
    let mut misnamed = untrusted.clone();
    misnamed.extra_root_pem = Some(server.cert_pem.clone().into_bytes());
    misnamed.tls_server_name = Some("mail.example.com".into());
    for s in [untrusted, misnamed] {
        let e = SmtpSender::new(&s)
            .unwrap()
            .send(&email())
            .await
            .unwrap_err();
        assert!(e.is_retryable(), "{e:?}");
        // The password is in no error.
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn wrong_credentials_are_refused_and_not_shown() {
    let server = SmtpServer::start(starttls_with_login()).await;
    let mut s = settings(server.port, TlsMode::StartTls);
    s.extra_root_pem = Some(server.cert_pem.clone().into_bytes());
    s.username = Some("mailer".into());
    s.password = Some("wrong password here".into());
    let e = SmtpSender::new(&s)
        .unwrap()
        .send(&email())
        .await
        .unwrap_err();
    assert!(!e.to_string().contains("wrong password"), "{e}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn a_permanent_refusal_is_not_retryable_and_a_temporary_one_is() {
    for (code, retryable) in [(554, false), (451, true)] {
        let server = SmtpServer::start(Behaviour {
            data_reply: Some(code),
            ..Behaviour::default()
        })
        .await;
        let sender = SmtpSender::new(&settings(server.port, TlsMode::Off)).unwrap();
        let e = sender.send(&email()).await.unwrap_err();
        assert_eq!(e.is_retryable(), retryable, "{code}: {e:?}");
    }
}

#[tokio::test]
async fn a_server_that_is_down_or_silent_is_a_retryable_failure_within_the_timeout() {
    // Down: a port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let sender = SmtpSender::new(&settings(port, TlsMode::Off)).unwrap();
    assert!(sender.send(&email()).await.unwrap_err().is_retryable());

    // Silent: accepts and never greets.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut kept = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            kept.push(s);
        }
    });
    let mut s = settings(port, TlsMode::Off);
    s.timeout = Duration::from_millis(500);
    let start = Instant::now();
    let e = SmtpSender::new(&s)
        .unwrap()
        .send(&email())
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    hold.abort();
}

#[tokio::test]
async fn a_hostile_recipient_or_subject_sends_nothing() {
    let server = SmtpServer::start(Behaviour::default()).await;
    let sender = SmtpSender::new(&settings(server.port, TlsMode::Off)).unwrap();
    let mut bad_to = email();
    bad_to.to = "ada@example.com\r\nRCPT TO:<evil@example.com>".into();
    assert!(matches!(
        sender.send(&bad_to).await,
        Err(SendError::Recipient)
    ));
    let mut bad_subject = email();
    bad_subject.subject = "Hi\r\nBcc: evil@example.com".into();
    assert!(matches!(
        sender.send(&bad_subject).await,
        Err(SendError::Subject)
    ));
    assert!(server.received().is_empty());
}

//! The email workers against the in-memory store (`fake.rs`) and the real SMTP server
//! (`server.rs`): a code is stored before it is sent and the one sent verifies, failures are
//! retried 30 s apart and then given up, a challenge that is gone gets no email, and the log
//! and noop providers.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use authara_core::challenge::code::{code_matches, Code};
use authara_core::challenge::store::Purpose;
use authara_core::clock::{Clock, ManualClock};
use authara_core::jwt::JwtKeys;
use authara_core::mail::{EmailStatus, EmailStore, EMAIL_CHANGED_NOTICE};
use authara_core::random::OsRandom;
use authara_smtp::{MailSettings, MailWorkers, SmtpSender, TlsMode, Transport};
use uuid::Uuid;

use crate::fake::MemoryStore;
use crate::outbox::{a_few_polls, eventually, start_time};
use crate::server::{Behaviour, SmtpServer};

const TTL: time::Duration = time::Duration::minutes(30);
const PUBLIC_URL: &str = "https://auth.example.org";

fn keys() -> Arc<JwtKeys> {
    Arc::new(JwtKeys::new(vec![("k1".into(), vec![7u8; 32])], Some("k1"), "authara").unwrap())
}

fn mail_settings() -> MailSettings {
    let mut s = MailSettings::new(PUBLIC_URL);
    s.worker_count = 1;
    s.poll_interval = Duration::from_millis(20);
    s.max_attempts = 3;
    s.send_timeout = Duration::from_secs(5);
    s
}

fn smtp(server: &SmtpServer) -> Transport {
    Transport::Smtp(SmtpSender::new(&super::settings(server.port, TlsMode::Off)).unwrap())
}

struct Running {
    store: Arc<MemoryStore>,
    keys: Arc<JwtKeys>,
    workers: MailWorkers,
}

fn start(
    store: &Arc<MemoryStore>,
    clock: &Arc<ManualClock>,
    transport: Transport,
    settings: MailSettings,
) -> Running {
    let keys = keys();
    let workers = MailWorkers::start(
        store.mail_store(),
        transport,
        settings,
        keys.clone(),
        Arc::new(OsRandom),
        clock.clone(),
    );
    Running {
        store: store.clone(),
        keys,
        workers,
    }
}

/// Undoes quoted-printable (soft line breaks and `=XX`), which lettre uses for long lines.
fn unquote(data: &str) -> String {
    let joined = data.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// Every run of exactly six digits in `text`.
fn six_digit_runs(text: &str) -> Vec<String> {
    let mut runs = Vec::new();
    let mut current = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() {
            current.push(c);
        } else {
            if current.len() == 6 {
                runs.push(current.clone());
            }
            current.clear();
        }
    }
    runs
}

/// The code in a message: the one six-digit run that matches the stored MAC.
fn code_in(data: &str, keys: &JwtKeys, challenge: Uuid, mac: &str) -> String {
    let mut matching: Vec<String> = six_digit_runs(data)
        .into_iter()
        .filter(|run| code_matches(keys, challenge, &Code::parse(run).unwrap(), mac))
        .collect();
    matching.dedup();
    assert_eq!(matching.len(), 1, "{matching:?} in {data}");
    matching.pop().unwrap()
}

#[tokio::test]
async fn a_code_is_stored_before_it_is_sent_and_the_code_sent_verifies() {
    let server = SmtpServer::start(Behaviour::default()).await;
    let store = MemoryStore::new();
    let clock = Arc::new(ManualClock::new(start_time()));
    let now = clock.now();
    let (challenge, job) = store.challenge_with_job(Purpose::Signup, "ada@example.com", now, TTL);
    let r = start(&store, &clock, smtp(&server), mail_settings());

    eventually("the job is sent", || {
        r.store.job(job).status == EmailStatus::Sent
    })
    .await;
    r.workers.shutdown().await;

    let row = r.store.job(job);
    assert_eq!(row.attempt_count, 1);
    assert_eq!(row.sent_at, Some(now));
    assert_eq!(row.last_error, None);
    let stored = r.store.code(challenge).expect("a code was stored");
    assert_eq!(stored.expires_at, now + time::Duration::minutes(10));

    let got = server.received();
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.rcpt_to, ["ada@example.com"]);
    let data = unquote(&m.data);
    assert!(data.contains("Subject: Your verification code"), "{data}");
    assert!(data.contains("valid for 10 minutes"), "{data}");
    let link = format!("{PUBLIC_URL}/auth/verify-challenge/signup?challenge_id={challenge}");
    assert!(data.contains(&link), "{data}");
    let code = code_in(&data, &r.keys, challenge, &stored.code_mac);
    assert!(!link.contains(&code));
    // The code is in neither the job nor the MAC.
    assert!(!stored.code_mac.contains(&code));
    assert!(!format!("{row:?}").contains(&code));
}

#[tokio::test]
async fn each_purpose_links_to_its_own_verify_page_and_the_validity_never_exceeds_the_challenge() {
    let server = SmtpServer::start(Behaviour::default()).await;
    let store = MemoryStore::new();
    let clock = Arc::new(ManualClock::new(start_time()));
    let now = clock.now();
    let (reset, _) = store.challenge_with_job(Purpose::PasswordReset, "ada@example.com", now, TTL);
    // Four and a half minutes left: the code lives as long as its challenge, and says 4.
    let (change, _) = store.challenge_with_job(
        Purpose::EmailChange,
        "new@example.com",
        now,
        time::Duration::seconds(270),
    );
    let r = start(&store, &clock, smtp(&server), mail_settings());
    eventually("both are sent", || server.received().len() == 2).await;
    r.workers.shutdown().await;

    assert_eq!(
        r.store.code(change).unwrap().expires_at,
        now + time::Duration::seconds(270)
    );
    let mut datas: Vec<String> = server.received().iter().map(|m| unquote(&m.data)).collect();
    datas.sort_by_key(|d| d.contains("Verify your new email address"));
    let (reset_mail, change_mail) = (&datas[0], &datas[1]);
    assert!(reset_mail.contains("Subject: Your password reset code"));
    assert!(reset_mail.contains(&format!(
        "{PUBLIC_URL}/auth/verify-challenge/password-reset?challenge_id={reset}"
    )));
    assert!(change_mail.contains("Subject: Verify your new email address"));
    assert!(change_mail.contains(&format!(
        "{PUBLIC_URL}/auth/verify-challenge/email-change?challenge_id={change}"
    )));
    assert!(change_mail.contains("valid for 4 minutes"), "{change_mail}");
}

#[tokio::test]
async fn a_temporary_refusal_is_retried_30_seconds_later_until_the_attempts_are_used_up() {
    let server = SmtpServer::start(Behaviour {
        data_reply: Some(451),
        ..Behaviour::default()
    })
    .await;
    let store = MemoryStore::new();
    let clock = Arc::new(ManualClock::new(start_time()));
    let now = clock.now();
    let (challenge, job) =
        store.challenge_with_job(Purpose::PasswordReset, "ada@example.com", now, TTL);
    let r = start(&store, &clock, smtp(&server), mail_settings());

    eventually("the first attempt failed", || {
        r.store.job(job).attempt_count == 1
    })
    .await;
    let row = r.store.job(job);
    assert_eq!(row.status, EmailStatus::Pending);
    assert_eq!(row.next_attempt_at, now + time::Duration::seconds(30));
    let error = row.last_error.unwrap();
    assert!(error.contains("451"), "{error}");
    assert!(error.chars().count() <= 500);
    // The code was stored before the send was tried.
    assert!(r.store.code(challenge).is_some());

    // Not due yet: nothing happens.
    clock.advance(time::Duration::seconds(29));
    a_few_polls().await;
    assert_eq!(r.store.job(job).attempt_count, 1);

    clock.advance(time::Duration::seconds(1));
    eventually("the second attempt failed", || {
        r.store.job(job).attempt_count == 2
    })
    .await;
    let row = r.store.job(job);
    assert_eq!(row.status, EmailStatus::Pending);
    assert_eq!(row.next_attempt_at, now + time::Duration::seconds(60));

    clock.advance(time::Duration::seconds(30));
    eventually("the job failed for good", || {
        r.store.job(job).status == EmailStatus::Failed
    })
    .await;
    assert_eq!(r.store.job(job).attempt_count, 3, "max_attempts is 3");
    clock.advance(time::Duration::seconds(300));
    a_few_polls().await;
    r.workers.shutdown().await;
    assert_eq!(r.store.job(job).attempt_count, 3);
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn a_permanent_refusal_or_an_unknown_template_fails_at_once() {
    let server = SmtpServer::start(Behaviour {
        data_reply: Some(554),
        ..Behaviour::default()
    })
    .await;
    let store = MemoryStore::new();
    let clock = Arc::new(ManualClock::new(start_time()));
    let now = clock.now();
    let (_, refused) = store.challenge_with_job(Purpose::Signup, "ada@example.com", now, TTL);
    let unknown = store.queue(None, "ada@example.com", "organization_welcome", "{}", now);
    let r = start(&store, &clock, smtp(&server), mail_settings());
    eventually("both failed", || {
        [refused, unknown]
            .iter()
            .all(|id| r.store.job(*id).status == EmailStatus::Failed)
    })
    .await;
    r.workers.shutdown().await;
    let row = r.store.job(refused);
    assert_eq!(row.attempt_count, 1);
    assert!(row.last_error.unwrap().contains("554"));
    let row = r.store.job(unknown);
    assert_eq!(row.attempt_count, 1);
    assert_eq!(
        row.last_error.as_deref(),
        Some(r#"unknown template "organization_welcome""#)
    );
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn a_challenge_that_is_gone_or_opaque_gets_no_code_and_no_email() {
    let server = SmtpServer::start(Behaviour::default()).await;
    let store = MemoryStore::new();
    let clock = Arc::new(ManualClock::new(start_time()));
    let now = clock.now();
    let expired = store.add_challenge(
        Purpose::Signup,
        "ada@example.com",
        now - TTL,
        now - time::Duration::seconds(1),
        false,
    );
    let opaque = store.add_challenge(Purpose::Signup, "bob@example.com", now, now + TTL, true);
    let missing = Uuid::new_v4();
    let jobs: Vec<Uuid> = [expired, opaque, missing]
        .into_iter()
        .map(|c| store.queue(Some(c), "ada@example.com", "signup_code", "{}", now))
        .collect();
    // A code template must come with its challenge, and go to its address only.
    let orphan = store.queue(None, "ada@example.com", "signup_code", "{}", now);
    let live = store.add_challenge(Purpose::Signup, "ada@example.com", now, now + TTL, false);
    let elsewhere = store.queue(Some(live), "mallory@example.com", "signup_code", "{}", now);
    let mismatched = store.queue(
        Some(live),
        "ada@example.com",
        "password_reset_code",
        "{}",
        now,
    );
    let r = start(&store, &clock, smtp(&server), mail_settings());
    eventually("all failed", || {
        jobs.iter()
            .chain([&orphan, &elsewhere, &mismatched])
            .all(|id| r.store.job(*id).status == EmailStatus::Failed)
    })
    .await;
    r.workers.shutdown().await;
    for id in &jobs {
        let row = r.store.job(*id);
        assert_eq!(row.attempt_count, 1);
        assert_eq!(
            row.last_error.as_deref(),
            Some("challenge no longer active")
        );
    }
    assert_eq!(
        r.store.job(orphan).last_error.as_deref(),
        Some("a code template without a challenge")
    );
    assert_eq!(
        r.store.job(elsewhere).last_error.as_deref(),
        Some("the recipient is not the challenge's address")
    );
    assert_eq!(
        r.store.job(mismatched).last_error.as_deref(),
        Some("the template does not match the challenge's purpose")
    );
    assert!(r.store.code(expired).is_none() && r.store.code(opaque).is_none());
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn the_old_address_is_told_about_an_email_change() {
    let server = SmtpServer::start(Behaviour::default()).await;
    let store = MemoryStore::new();
    let clock = Arc::new(ManualClock::new(start_time()));
    let now = clock.now();
    let data = serde_json::json!({
        "old_email": "ada@example.com",
        "new_email": "ada@new.example",
        "changed_at": "2026-01-01T00:00:00Z",
    })
    .to_string();
    let job = store.queue(None, "ada@example.com", EMAIL_CHANGED_NOTICE, &data, now);
    let broken = store.queue(None, "ada@example.com", EMAIL_CHANGED_NOTICE, "{}", now);
    let r = start(&store, &clock, smtp(&server), mail_settings());
    eventually("sent and failed", || {
        r.store.job(job).status == EmailStatus::Sent
            && r.store.job(broken).status == EmailStatus::Failed
    })
    .await;
    r.workers.shutdown().await;
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].rcpt_to, ["ada@example.com"]);
    let data = unquote(&got[0].data);
    assert!(
        data.contains("Subject: Your email address was changed"),
        "{data}"
    );
    assert!(data.contains("ada@new.example"), "{data}");
    assert!(data.contains("2026-01-01 00:00 UTC"), "{data}");
    assert!(r
        .store
        .job(broken)
        .last_error
        .unwrap()
        .starts_with("the template data is invalid"));
}

#[tokio::test]
async fn a_server_that_is_down_is_retried() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let store = MemoryStore::new();
    let clock = Arc::new(ManualClock::new(start_time()));
    let (_, job) = store.challenge_with_job(Purpose::Signup, "ada@example.com", clock.now(), TTL);
    let transport = Transport::Smtp(SmtpSender::new(&super::settings(port, TlsMode::Off)).unwrap());
    let r = start(&store, &clock, transport, mail_settings());
    eventually("the attempt failed", || r.store.job(job).attempt_count == 1).await;
    r.workers.shutdown().await;
    let row = r.store.job(job);
    assert_eq!(row.status, EmailStatus::Pending);
    assert!(row.last_error.is_some());
}

#[tokio::test]
async fn a_claim_left_behind_by_a_dead_worker_is_sent_after_the_stale_threshold() {
    let server = SmtpServer::start(Behaviour::default()).await;
    let store = MemoryStore::new();
    let clock = Arc::new(ManualClock::new(start_time()));
    let now = clock.now();
    let (_, job) = store.challenge_with_job(Purpose::Signup, "ada@example.com", now, TTL);
    // Claimed by a worker that died.
    assert_eq!(
        store.emails.claim_due_emails(now, 1).await.unwrap().len(),
        1
    );
    let mut settings = mail_settings();
    settings.stale_reaper_interval = Duration::from_millis(20);
    let r = start(&store, &clock, smtp(&server), settings);
    // 2 × 5 s + 30 s = 40 s.
    clock.advance(time::Duration::seconds(40));
    a_few_polls().await;
    assert_eq!(r.store.job(job).status, EmailStatus::Processing);
    clock.advance(time::Duration::seconds(1));
    eventually("the job is sent", || {
        r.store.job(job).status == EmailStatus::Sent
    })
    .await;
    r.workers.shutdown().await;
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn the_cleanup_purges_old_jobs_and_expired_challenges() {
    let store = MemoryStore::new();
    let clock = Arc::new(ManualClock::new(start_time()));
    let now = clock.now();
    let old = now - time::Duration::days(200);
    let expired = store.add_challenge(Purpose::Signup, "a@example.com", old, old + TTL, false);
    let live = store.add_challenge(Purpose::Signup, "b@example.com", now, now + TTL, false);
    let r = start(&store, &clock, Transport::Noop, mail_settings());
    eventually("the cleanup ran", || {
        r.store.emails.purge_calls.load(Ordering::SeqCst) > 0
            && r.store.purge_challenge_calls.load(Ordering::SeqCst) > 0
    })
    .await;
    r.workers.shutdown().await;
    assert_eq!(*r.store.purged_challenges_before.lock().unwrap(), Some(now));
    assert!(!r.store.has_challenge(expired));
    assert!(r.store.has_challenge(live));
}

/// Log output of the current thread (the workers run on the test's single-threaded runtime).
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

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}

#[tokio::test]
async fn the_log_provider_writes_the_message_with_its_code_to_the_log() {
    let (logs, _guard) = capture();
    let store = MemoryStore::new();
    let clock = Arc::new(ManualClock::new(start_time()));
    let (challenge, job) =
        store.challenge_with_job(Purpose::Signup, "ada@example.com", clock.now(), TTL);
    let bad = store.queue(None, "not an address", EMAIL_CHANGED_NOTICE,
        r#"{"old_email":"a@example.com","new_email":"b@example.com","changed_at":"2026-01-01T00:00:00Z"}"#,
        clock.now());
    let r = start(&store, &clock, Transport::Log, mail_settings());
    eventually("logged", || {
        r.store.job(job).status == EmailStatus::Sent
            && r.store.job(bad).status == EmailStatus::Failed
    })
    .await;
    r.workers.shutdown().await;
    let text = logs.text();
    let mac = r.store.code(challenge).unwrap().code_mac;
    let code = code_in(&text, &r.keys, challenge, &mac);
    assert!(text.contains("to=ada@example.com"), "{text}");
    assert!(text.contains("subject=Your verification code"), "{text}");
    assert!(text.contains(&code));
    assert!(text.contains("AUTHARA_EMAIL_PROVIDER=log"), "{text}");
    // Log refuses what SMTP would.
    assert_eq!(
        r.store.job(bad).last_error.as_deref(),
        Some("the recipient is not a valid email address")
    );
}

#[tokio::test]
async fn the_noop_provider_marks_jobs_sent_and_sends_nothing() {
    let (logs, _guard) = capture();
    let store = MemoryStore::new();
    let clock = Arc::new(ManualClock::new(start_time()));
    let (challenge, job) =
        store.challenge_with_job(Purpose::PasswordReset, "ada@example.com", clock.now(), TTL);
    let r = start(&store, &clock, Transport::Noop, mail_settings());
    eventually("discarded", || r.store.job(job).status == EmailStatus::Sent).await;
    r.workers.shutdown().await;
    let text = logs.text();
    assert!(text.contains("email discarded"), "{text}");
    let mac = r.store.code(challenge).unwrap().code_mac;
    assert!(
        six_digit_runs(&text).iter().all(|run| !code_matches(
            &r.keys,
            challenge,
            &Code::parse(run).unwrap(),
            &mac
        )),
        "the code is not logged: {text}"
    );
}

/// An invitation for `email` to "Acme <&> Co", pending until `expires_at`, whose token is
/// derived with `keys`; returns it with its token.
fn invitation(
    keys: &JwtKeys,
    email: &str,
    expires_at: time::OffsetDateTime,
) -> (authara_core::store::StoredInvitation, String) {
    use authara_core::invitation::InvitationToken;
    use authara_core::org::{OrgKind, OrgRole};
    use authara_core::store::{InvitationRecord, OrganizationRecord, StoredInvitation};
    let id = Uuid::new_v4();
    let token = InvitationToken::derive(keys, id).unwrap();
    let at = expires_at - time::Duration::days(7);
    let stored = StoredInvitation {
        invitation: InvitationRecord {
            id,
            organization_id: Uuid::new_v4(),
            email: email.to_owned(),
            role: OrgRole::Admin,
            metadata: serde_json::json!({}),
            invited_by_user_id: None,
            created_at: at,
            updated_at: at,
            expires_at,
            accepted_at: None,
            accepted_by_user_id: None,
            revoked_at: None,
            revoked_by_user_id: None,
        },
        organization: OrganizationRecord {
            id: Uuid::new_v4(),
            name: "Acme <&> Co".into(),
            kind: OrgKind::Team,
            created_by_user_id: None,
            created_at: at,
            updated_at: at,
        },
        token_hash: token.hash(),
    };
    (stored, token.expose().to_owned())
}

#[tokio::test]
async fn an_invitation_is_sent_with_its_link_derived_again_and_only_while_pending() {
    use authara_core::invitation::service::INVITATION_TEMPLATE;
    let server = SmtpServer::start(Behaviour::default()).await;
    let store = MemoryStore::new();
    let clock = Arc::new(ManualClock::new(start_time()));
    let now = clock.now();
    let keys = keys();
    let data = |id: Uuid| serde_json::json!({ "invitation_id": id.to_string() }).to_string();

    let (pending, token) = invitation(&keys, "bob@example.com", now + time::Duration::days(7));
    store.put_invitation(pending.clone());
    let sent = store.queue(
        None,
        "bob@example.com",
        INVITATION_TEMPLATE,
        &data(pending.invitation.id),
        now,
    );
    // Revoked, expired, unknown, or to another address: no email.
    let (mut revoked, _) = invitation(&keys, "carol@example.com", now + time::Duration::days(7));
    revoked.invitation.revoked_at = Some(now);
    store.put_invitation(revoked.clone());
    let (expired, _) = invitation(&keys, "dave@example.com", now);
    store.put_invitation(expired.clone());
    let refused = [
        store.queue(
            None,
            "carol@example.com",
            INVITATION_TEMPLATE,
            &data(revoked.invitation.id),
            now,
        ),
        store.queue(
            None,
            "dave@example.com",
            INVITATION_TEMPLATE,
            &data(expired.invitation.id),
            now,
        ),
        store.queue(
            None,
            "erin@example.com",
            INVITATION_TEMPLATE,
            &data(Uuid::new_v4()),
            now,
        ),
        store.queue(
            None,
            "eve@example.com",
            INVITATION_TEMPLATE,
            &data(pending.invitation.id),
            now,
        ),
    ];
    let r = start(&store, &clock, smtp(&server), mail_settings());
    eventually("sent and refused", || {
        r.store.job(sent).status == EmailStatus::Sent
            && refused
                .iter()
                .all(|j| r.store.job(*j).status == EmailStatus::Failed)
    })
    .await;
    r.workers.shutdown().await;
    let got = server.received();
    assert_eq!(got.len(), 1, "only the pending invitation is sent");
    assert_eq!(got[0].rcpt_to, ["bob@example.com"]);
    let data = unquote(&got[0].data);
    assert!(
        data.contains("Subject: You're invited to Acme <&> Co"),
        "{data}"
    );
    let link = format!("{PUBLIC_URL}/auth/invitations/accept?token={token}");
    assert!(data.contains(&link), "{data}");
    assert!(
        data.contains("Acme &#60;&#38;&#62; Co"),
        "the HTML part escapes the name: {data}"
    );
    assert!(
        !data.contains("invitation code"),
        "no code unless configured: {data}"
    );
    for job in refused {
        let error = r.store.job(job).last_error.unwrap();
        assert!(!error.contains(&token), "{error}");
    }
}

#[tokio::test]
async fn an_invitation_link_survives_a_key_rotation_and_the_code_is_shown_when_configured() {
    use authara_core::invitation::service::INVITATION_TEMPLATE;
    let server = SmtpServer::start(Behaviour::default()).await;
    let store = MemoryStore::new();
    let clock = Arc::new(ManualClock::new(start_time()));
    let now = clock.now();
    // Derived under an old key the workers still hold, not their active one.
    let old = JwtKeys::new(vec![("k0".into(), vec![9u8; 32])], Some("k0"), "authara").unwrap();
    let (pending, token) = invitation(&old, "bob@example.com", now + time::Duration::days(7));
    store.put_invitation(pending.clone());
    let data =
        serde_json::json!({ "invitation_id": pending.invitation.id.to_string() }).to_string();
    let job = store.queue(None, "bob@example.com", INVITATION_TEMPLATE, &data, now);
    // And one whose key is gone.
    let (lost, lost_token) = invitation(
        &JwtKeys::new(
            vec![("gone".into(), vec![5u8; 32])],
            Some("gone"),
            "authara",
        )
        .unwrap(),
        "carol@example.com",
        now + time::Duration::days(7),
    );
    store.put_invitation(lost.clone());
    let lost_data =
        serde_json::json!({ "invitation_id": lost.invitation.id.to_string() }).to_string();
    let lost_job = store.queue(
        None,
        "carol@example.com",
        INVITATION_TEMPLATE,
        &lost_data,
        now,
    );
    let rotated = Arc::new(
        JwtKeys::new(
            vec![("k1".into(), vec![7u8; 32]), ("k0".into(), vec![9u8; 32])],
            Some("k1"),
            "authara",
        )
        .unwrap(),
    );
    let mut settings = mail_settings();
    settings.include_invitation_code = true;
    let workers = MailWorkers::start(
        store.mail_store(),
        smtp(&server),
        settings,
        rotated,
        Arc::new(OsRandom),
        clock.clone(),
    );
    eventually("sent and failed", || {
        store.job(job).status == EmailStatus::Sent
            && store.job(lost_job).status == EmailStatus::Failed
    })
    .await;
    workers.shutdown().await;
    let got = server.received();
    assert_eq!(got.len(), 1);
    let data = unquote(&got[0].data);
    assert!(data.contains(&format!("token={token}")), "{data}");
    assert!(
        data.contains(&format!("invitation code: {token}")),
        "{data}"
    );
    let error = store.job(lost_job).last_error.unwrap();
    assert!(error.contains("no configured key"), "{error}");
    assert!(!error.contains(&lost_token));
}

//! Emailed codes end to end: the real server, its email workers, and a real SMTP server on
//! 127.0.0.1 (`smtp_server`), on both backends. Every code a test types is read from a message
//! the SMTP server received.

use crate::helpers::{email, set_cookie, Backend, TestApp};
use crate::on_both;
use crate::smtp_server::{Behaviour, Received, SmtpServer};
use authara_core::mail::EmailStatus;
use serde_json::{json, Value};
use std::time::Duration;

const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "a brand new password";
/// How long a message may take to arrive on a loaded machine.
const ARRIVES_WITHIN: Duration = Duration::from_secs(20);

on_both!(
    a_password_reset_by_form_emails_a_code_that_sets_the_password_and_signs_out_everywhere,
    a_password_reset_by_json_emails_a_code_and_verify_answers_204,
    a_reset_for_an_unknown_email_answers_like_a_known_one_and_sends_nothing,
    wrong_codes_count_until_the_attempt_limit_then_even_the_right_code_is_refused,
    an_expired_code_is_refused_and_a_resent_one_works,
    resends_wait_for_the_interval_stop_at_the_limit_and_the_json_resend_is_always_204,
    a_verified_signup_creates_the_account_only_after_the_code_by_form_and_by_json,
    a_signup_with_a_taken_email_answers_like_a_new_one_and_sends_nothing,
    an_email_change_sends_the_code_to_the_new_address_notifies_the_old_and_signs_out_others,
    an_email_change_to_a_taken_address_answers_like_a_free_one_and_sends_nothing,
    mail_queued_while_the_smtp_server_is_down_is_delivered_when_it_is_back,
    mail_queued_before_a_restart_is_delivered_by_the_next_instance,
    mail_goes_over_starttls_with_auth_when_tls_is_on,
    without_challenges_signup_is_direct_and_the_challenge_routes_are_404,
);

/// The test server with mail to `smtp` (plaintext) and fast polling; challenges (verified
/// signup, email change) off unless `extra` turns them on (password reset is always on).
pub async fn spawn(b: Backend, smtp: &SmtpServer, extra: &[(&str, &str)]) -> TestApp {
    let port = smtp.port.to_string();
    let from = format!("Authara <auth{}example.com>", '@');
    let mut vars = vec![
        ("AUTHARA_EMAIL_PROVIDER", "smtp"),
        ("AUTHARA_EMAIL_FROM", from.as_str()),
        ("AUTHARA_EMAIL_SMTP_HOST", "127.0.0.1"),
        ("AUTHARA_EMAIL_SMTP_PORT", port.as_str()),
        ("AUTHARA_EMAIL_SMTP_TLS", "false"),
        ("AUTHARA_EMAIL_SMTP_TIMEOUT", "3s"),
        ("AUTHARA_EMAIL_WORKER_POLL_INTERVAL", "50ms"),
        ("AUTHARA_RATE_LIMIT_PASSWORD_RESET_IP_LIMIT", "10000"),
        ("AUTHARA_RATE_LIMIT_PASSWORD_RESET_EMAIL_LIMIT", "10000"),
        ("AUTHARA_RATE_LIMIT_CHALLENGE_VERIFY_IP_LIMIT", "10000"),
        ("AUTHARA_RATE_LIMIT_CHALLENGE_RESEND_IP_LIMIT", "10000"),
    ];
    for (k, v) in extra {
        vars.retain(|(name, _)| name != k);
        vars.push((k, v));
    }
    TestApp::spawn_with(b, &vars).await
}

/// Challenges on.
const CHALLENGES: (&str, &str) = ("AUTHARA_CHALLENGE_ENABLED", "true");

pub async fn smtp() -> SmtpServer {
    SmtpServer::start(Behaviour::default()).await
}

/// One received message, parsed just enough.
#[derive(Debug, Clone)]
pub struct Mail {
    pub subject: String,
    /// Everything after the headers (all MIME parts).
    pub body: String,
}

impl Mail {
    fn parse(r: &Received) -> Mail {
        let data = r.data.replace("\r\n", "\n");
        let (head, body) = data.split_once("\n\n").unwrap_or((&data, ""));
        let subject = head
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap_or_default()
            .to_owned();
        Mail {
            subject,
            body: quoted_printable(body),
        }
    }

    /// The six-digit code: the first run of exactly six digits on a body line that is no MIME
    /// boundary or part header.
    pub fn code(&self) -> String {
        for line in self.body.lines() {
            if line.starts_with("--") || line.starts_with("Content-") {
                continue;
            }
            let bytes = line.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i].is_ascii_digit() {
                    let start = i;
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                    if i - start == 6 {
                        return line[start..i].to_owned();
                    }
                } else {
                    i += 1;
                }
            }
        }
        panic!("no code in {self:?}");
    }
}

/// The body with quoted-printable undone (soft line breaks joined, `=XX` decoded); the parts'
/// headers and boundaries pass through unchanged.
fn quoted_printable(body: &str) -> String {
    let joined = body.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'=', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap() * 16 + hex(l).unwrap()) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every message to `to` so far.
fn mails_to(smtp: &SmtpServer, to: &str) -> Vec<Mail> {
    smtp.received()
        .iter()
        .filter(|r| r.rcpt_to.iter().any(|t| t == to))
        .map(Mail::parse)
        .collect()
}

/// Waits for the `n`th message (1-based) to `to`.
pub async fn nth_mail_to(smtp: &SmtpServer, to: &str, n: usize) -> Mail {
    let deadline = tokio::time::Instant::now() + ARRIVES_WITHIN;
    loop {
        let mails = mails_to(smtp, to);
        if let Some(m) = mails.get(n - 1) {
            return m.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "message {n} to {to} never arrived; got {:?}",
            smtp.received()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits for a message to `to` whose subject is `subject` (whatever else arrived, in any
/// order).
pub async fn mail_to_with_subject(smtp: &SmtpServer, to: &str, subject: &str) -> Mail {
    let deadline = tokio::time::Instant::now() + ARRIVES_WITHIN;
    loop {
        if let Some(m) = mails_to(smtp, to)
            .into_iter()
            .find(|m| m.subject == subject)
        {
            return m;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {subject:?} to {to} arrived; got {:?}",
            smtp.received()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until the outbox has no job left pending or processing.
async fn outbox_drained(app: &TestApp) {
    let store = authara::server::open_store(&app.config).await.unwrap();
    let deadline = tokio::time::Instant::now() + ARRIVES_WITHIN;
    loop {
        let jobs = store.list_emails(1000).await.unwrap();
        if jobs
            .iter()
            .all(|j| matches!(j.status, EmailStatus::Sent | EmailStatus::Failed))
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "outbox never drained: {jobs:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// How many jobs the outbox holds for `to`.
pub(crate) async fn jobs_to(app: &TestApp, to: &str) -> usize {
    let store = authara::server::open_store(&app.config).await.unwrap();
    let jobs = store.list_emails(1000).await.unwrap();
    jobs.iter().filter(|j| j.to_email == to).count()
}

/// The `Location` of a redirect.
pub(crate) fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location on {}", res.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

/// The `challenge_id` in a code page's URL.
pub(crate) fn challenge_of(location: &str) -> String {
    let q = location.split_once("challenge_id=").unwrap().1;
    q.split('&').next().unwrap().to_owned()
}

/// A location with its challenge id replaced, to compare two answers.
fn without_id(location: &str) -> String {
    location.replace(&challenge_of(location), "<id>")
}

/// A page with its ids and CSRF token replaced, to compare two answers.
fn normalised_page(page: &str, id: &str, email: &str, csrf: &str) -> String {
    page.replace(id, "<id>")
        .replace(email, "<email>")
        .replace(csrf, "<csrf>")
}

/// Starts a reset by form; returns the code page's location.
async fn reset_by_form(app: &TestApp, email: &str) -> String {
    let res = app
        .post_form(
            "/auth/password-reset",
            &[
                ("email", email),
                ("new_password", NEW_PASSWORD),
                ("confirm_password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let to = location(&res);
    assert!(
        to.starts_with("/auth/verify-challenge/password-reset?challenge_id="),
        "{to}"
    );
    to
}

/// Types a code on the page of `action`.
async fn verify_by_form(app: &TestApp, action: &str, id: &str, code: &str) -> reqwest::Response {
    app.post_form(
        &format!("/auth/verify-challenge/{action}"),
        &[("challenge_id", id), ("code", code)],
    )
    .await
}

/// POSTs JSON with the CSRF header.
pub(crate) async fn post_json(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    let csrf = app.csrf().await;
    app.client
        .post(app.url(path))
        .header("x-csrf-token", csrf)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The audit actions recorded about `email`, oldest first.
async fn audit_actions(app: &TestApp, email: &str) -> Vec<String> {
    let store = authara::server::open_store(&app.config).await.unwrap();
    let filter = authara_core::store::AuditFilter {
        email: Some(email.to_owned()),
        limit: 100,
        ..Default::default()
    };
    let mut rows = store.list_audit(&filter).await.unwrap();
    rows.sort_by_key(|r| r.created_at);
    rows.into_iter().map(|r| r.action).collect()
}

/// Asserts a response's status and that its body says `text`.
async fn says(res: reqwest::Response, status: u16, text: &str) {
    assert_eq!(res.status(), status);
    let body = res.text().await.unwrap();
    assert!(body.contains(text), "{text:?} not in {body}");
}

/// A code that is not `code`.
fn other_than(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

async fn a_password_reset_by_form_emails_a_code_that_sets_the_password_and_signs_out_everywhere(
    b: Backend,
) {
    let smtp = smtp().await;
    let app = spawn(b, &smtp, &[]).await;
    let user = app.signed_up("reset-form").await;
    let elsewhere = app.signup_elsewhere("reset-form-other").await;
    assert_eq!(app.user_status_with(&elsewhere).await, 200);
    let res = app.login_in_another_browser(&user, PASSWORD).await;
    let other = set_cookie(res.headers(), "authara_access").unwrap();
    let other = other
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("authara_access=");
    assert_eq!(app.user_status_with(other).await, 200);

    // A visitor who is not signed in finds the reset on the login page.
    let page = app
        .fresh_client()
        .get(app.url("/auth/login"))
        .send()
        .await
        .unwrap();
    let page = page.text().await.unwrap();
    assert!(page.contains("href=\"/auth/password-reset\""), "{page}");
    assert_eq!(app.get("/auth/password-reset").await.status(), 200);
    let to = reset_by_form(&app, &user).await;
    let id = challenge_of(&to);
    let page = app.get(&to).await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains(&user), "{page}");

    let mail = nth_mail_to(&smtp, &user, 1).await;
    assert_eq!(mail.subject, "Your password reset code");
    assert!(
        mail.body.contains(&format!(
            "/auth/verify-challenge/password-reset?challenge_id={id}"
        )),
        "{mail:?}"
    );
    let code = mail.code();
    assert!(
        !mail.body.contains(&format!("code={code}")),
        "the link carries no code"
    );

    let res = verify_by_form(&app, "password-reset", &id, &code).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/auth/login?notice=password-reset");
    for name in ["authara_access", "authara_refresh"] {
        let c = set_cookie(res.headers(), name).unwrap();
        assert!(c.contains("Max-Age=0"), "{c}");
    }
    let login = app.get("/auth/login?notice=password-reset").await;
    assert!(login
        .text()
        .await
        .unwrap()
        .contains("Your password has been reset. Please log in again."));

    // Every session of the account is gone at once; another account's is not.
    assert_eq!(app.user_status_with(other).await, 401);
    assert_eq!(app.user_status_with(&elsewhere).await, 200);
    assert!(
        audit_actions(&app, &user)
            .await
            .contains(&"user.password_reset".to_owned()),
        "the reset is in the audit log"
    );
    // The old password no longer works; the new one does; the code is used up.
    assert_eq!(app.login(&user, PASSWORD).await.status(), 422);
    assert_eq!(app.login(&user, NEW_PASSWORD).await.status(), 303);
    let again = verify_by_form(&app, "password-reset", &id, &code).await;
    says(again, 422, "Invalid or expired verification code").await;
}

async fn a_password_reset_by_json_emails_a_code_and_verify_answers_204(b: Backend) {
    let smtp = smtp().await;
    let app = spawn(b, &smtp, &[]).await;
    let user = app.signed_up("reset-json").await;
    let res = post_json(
        &app,
        "/auth/api/v1/password-reset/challenges",
        json!({"email": user, "new_password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(res.status(), 202);
    let body: Value = res.json().await.unwrap();
    let id = body["challenge_id"].as_str().unwrap().to_owned();
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    let code = nth_mail_to(&smtp, &user, 1).await.code();

    let verify = "/auth/api/v1/password-reset/challenges/verify";
    let wrong = post_json(
        &app,
        verify,
        json!({"challenge_id": id, "code": other_than(&code)}),
    )
    .await;
    assert_eq!(wrong.status(), 400);
    let wrong: Value = wrong.json().await.unwrap();
    assert_eq!(wrong["error"]["code"], "invalid_request");
    assert_eq!(
        wrong["error"]["message"],
        "Invalid or expired verification code."
    );
    let res = post_json(&app, verify, json!({"challenge_id": id, "code": code})).await;
    assert_eq!(res.status(), 204);
    assert_eq!(
        app.user().await.0,
        401,
        "this browser's session was revoked too"
    );
    let again = post_json(&app, verify, json!({"challenge_id": id, "code": code})).await;
    assert_eq!(again.status(), 400);
    assert_eq!(app.login(&user, NEW_PASSWORD).await.status(), 303);

    // Bad bodies change nothing and say so the same way.
    for bad in [
        json!({"challenge_id": id}),
        json!({"challenge_id": "not-a-uuid", "code": "123456"}),
        json!({"challenge_id": id, "code": "12345", "extra": 1}),
    ] {
        let res = post_json(&app, verify, bad).await;
        assert_eq!(res.status(), 400);
    }
}

async fn a_reset_for_an_unknown_email_answers_like_a_known_one_and_sends_nothing(b: Backend) {
    let smtp = smtp().await;
    let app = spawn(b, &smtp, &[("AUTHARA_CHALLENGE_MAX_ATTEMPTS", "2")]).await;
    let known = app.signed_up("known").await;
    let unknown = email("nobody-here");

    // The form: the same redirect (but for the id), the same page (but for id and address).
    let known_to = reset_by_form(&app, &known).await;
    let unknown_to = reset_by_form(&app, &unknown).await;
    assert_eq!(without_id(&known_to), without_id(&unknown_to));
    let csrf = app.csrf().await;
    let mut pages = Vec::new();
    for (to, address) in [(&known_to, &known), (&unknown_to, &unknown)] {
        let res = app.get(to).await;
        assert_eq!(res.status(), 200);
        pages.push(normalised_page(
            &res.text().await.unwrap(),
            &challenge_of(to),
            address,
            &csrf,
        ));
    }
    assert_eq!(pages[0], pages[1]);

    // Wrong codes, then the attempt limit, then resends: the same answers for both.
    for (to, address) in [(&known_to, &known), (&unknown_to, &unknown)] {
        let id = challenge_of(to);
        let mut answers = Vec::new();
        for _ in 0..3 {
            let res = verify_by_form(&app, "password-reset", &id, "000000").await;
            let status = res.status().as_u16();
            let page = normalised_page(&res.text().await.unwrap(), &id, address, &csrf);
            answers.push((status, page));
        }
        let res = app
            .post_form("/auth/resend-challenge", &[("challenge_id", &id)])
            .await;
        answers.push((res.status().as_u16(), without_id(&location(&res))));
        pages.push(format!("{answers:?}"));
    }
    assert_eq!(pages[2], pages[3]);
    assert!(
        pages[2].contains("Too many incorrect attempts"),
        "{}",
        pages[2]
    );

    // The JSON start: the same status and the same shape.
    let mut bodies = Vec::new();
    for address in [&known, &unknown] {
        let res = post_json(
            &app,
            "/auth/api/v1/password-reset/challenges",
            json!({"email": address, "new_password": NEW_PASSWORD}),
        )
        .await;
        assert_eq!(res.status(), 202);
        let body: Value = res.json().await.unwrap();
        assert!(uuid::Uuid::try_parse(body["challenge_id"].as_str().unwrap()).is_ok());
        bodies.push(
            body.as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(bodies[0], bodies[1]);

    // Two messages for the known address; none queued or sent for the unknown one.
    nth_mail_to(&smtp, &known, 2).await;
    outbox_drained(&app).await;
    assert_eq!(jobs_to(&app, &unknown).await, 0);
    assert!(mails_to(&smtp, &unknown).is_empty());
}

async fn wrong_codes_count_until_the_attempt_limit_then_even_the_right_code_is_refused(b: Backend) {
    let smtp = smtp().await;
    let app = spawn(b, &smtp, &[("AUTHARA_CHALLENGE_MAX_ATTEMPTS", "3")]).await;
    let user = app.signed_up("attempts").await;
    let id = challenge_of(&reset_by_form(&app, &user).await);
    let code = nth_mail_to(&smtp, &user, 1).await.code();
    let wrong = other_than(&code);

    // Not six digits: said, and not counted.
    for malformed in ["", "12345", "abcdef", "1234567"] {
        let res = verify_by_form(&app, "password-reset", &id, malformed).await;
        says(res, 422, "Enter the 6-digit code").await;
    }
    for _ in 0..3 {
        let res = verify_by_form(&app, "password-reset", &id, &wrong).await;
        says(
            res,
            422,
            "The verification code is incorrect or has expired.",
        )
        .await;
    }
    let res = verify_by_form(&app, "password-reset", &id, &code).await;
    says(res, 422, "Too many incorrect attempts").await;
    assert_eq!(app.login(&user, NEW_PASSWORD).await.status(), 422);
    assert_eq!(app.login(&user, PASSWORD).await.status(), 303);
}

async fn an_expired_code_is_refused_and_a_resent_one_works(b: Backend) {
    let smtp = smtp().await;
    let app = spawn(b, &smtp, &[]).await;
    let user = app.signed_up("expiry").await;
    let id = challenge_of(&reset_by_form(&app, &user).await);
    let first = nth_mail_to(&smtp, &user, 1).await.code();
    // The code lives 10 minutes; the challenge 30.
    app.clock.advance(time::Duration::minutes(11));
    let res = verify_by_form(&app, "password-reset", &id, &first).await;
    says(res, 422, "incorrect or has expired").await;

    let res = app
        .post_form("/auth/resend-challenge", &[("challenge_id", &id)])
        .await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).contains("notice=sent"));
    let second = nth_mail_to(&smtp, &user, 2).await.code();
    let res = verify_by_form(&app, "password-reset", &id, &second).await;
    assert_eq!(res.status(), 303);

    // A challenge past its 30 minutes is gone, code or not.
    let id = challenge_of(&reset_by_form(&app, &user).await);
    let code = nth_mail_to(&smtp, &user, 3).await.code();
    app.clock.advance(time::Duration::minutes(31));
    let res = verify_by_form(&app, "password-reset", &id, &code).await;
    says(res, 422, "Invalid or expired verification code").await;
    let page = app
        .get(&format!(
            "/auth/verify-challenge/password-reset?challenge_id={id}"
        ))
        .await;
    assert_eq!(page.status(), 404);
}

async fn resends_wait_for_the_interval_stop_at_the_limit_and_the_json_resend_is_always_204(
    b: Backend,
) {
    let smtp = smtp().await;
    let app = spawn(b, &smtp, &[("AUTHARA_CHALLENGE_MAX_RESENDS", "2")]).await;
    let user = app.signed_up("resends").await;
    let id = challenge_of(&reset_by_form(&app, &user).await);
    nth_mail_to(&smtp, &user, 1).await;
    let fields = [("challenge_id", id.as_str())];
    let resend = || app.post_form("/auth/resend-challenge", &fields);

    let res = resend().await;
    assert!(
        location(&res).contains("notice=wait"),
        "30 s have not passed"
    );
    let page = app.get(&location(&res)).await.text().await.unwrap();
    assert!(page.contains("Please wait a moment"), "{page}");
    for n in 2..=3 {
        app.clock.advance(time::Duration::seconds(31));
        let res = resend().await;
        assert!(location(&res).contains("notice=sent"));
        nth_mail_to(&smtp, &user, n).await;
    }
    app.clock.advance(time::Duration::seconds(31));
    let res = resend().await;
    assert!(location(&res).contains("notice=exhausted"));
    outbox_drained(&app).await;
    let mails = mails_to(&smtp, &user);
    assert_eq!(mails.len(), 3);
    // Each new code replaced the one before.
    let (first, last) = (mails[0].code(), mails[2].code());
    if first != last {
        let res = verify_by_form(&app, "password-reset", &id, &first).await;
        says(res, 422, "incorrect or has expired").await;
    }
    let res = verify_by_form(&app, "password-reset", &id, &last).await;
    assert_eq!(res.status(), 303);

    // The JSON resend says 204 whatever happened.
    for body in [
        json!({"challenge_id": id}),
        json!({"challenge_id": uuid::Uuid::new_v4().to_string()}),
        json!({"challenge_id": "nonsense"}),
    ] {
        let res = post_json(&app, "/auth/api/v1/challenges/resend", body).await;
        assert_eq!(res.status(), 204);
    }
    let res = post_json(&app, "/auth/api/v1/challenges/resend", json!({"id": id})).await;
    assert_eq!(res.status(), 400);
}

async fn a_verified_signup_creates_the_account_only_after_the_code_by_form_and_by_json(b: Backend) {
    let smtp = smtp().await;
    let app = spawn(b, &smtp, &[CHALLENGES]).await;
    let user = email("verified");
    let res = app
        .post_form(
            "/auth/signup?return_to=/after",
            &[("email", user.as_str()), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), 303);
    let to = location(&res);
    assert!(
        to.starts_with("/auth/verify-challenge/signup?challenge_id="),
        "{to}"
    );
    assert!(to.ends_with("&return_to=/after"), "{to}");
    assert!(set_cookie(res.headers(), "authara_access").is_none());
    // No account yet.
    assert_eq!(app.login(&user, PASSWORD).await.status(), 422);
    let mail = nth_mail_to(&smtp, &user, 1).await;
    assert_eq!(mail.subject, "Your verification code");
    let res = app
        .post_form(
            "/auth/verify-challenge/signup",
            &[
                ("challenge_id", challenge_of(&to).as_str()),
                ("code", mail.code().as_str()),
                ("return_to", "/after"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/after");
    assert!(set_cookie(res.headers(), "authara_access").is_some());
    let (status, me) = app.user().await;
    assert_eq!(status, 200);
    assert_eq!(me["email"], user.as_str());

    // JSON: 202, then 201 with the session; signup/direct is 404 while challenges are on.
    let other = email("verified-json");
    let direct = post_json(
        &app,
        "/auth/api/v1/signup/direct",
        json!({"email": other, "password": PASSWORD}),
    )
    .await;
    assert_eq!(direct.status(), 404);
    let res = post_json(
        &app,
        "/auth/api/v1/signup/challenges?audience=app",
        json!({"email": other, "password": PASSWORD}),
    )
    .await;
    assert_eq!(res.status(), 202);
    let id = res.json::<Value>().await.unwrap()["challenge_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = nth_mail_to(&smtp, &other, 1).await.code();
    let res = post_json(
        &app,
        "/auth/api/v1/signup/challenges/verify",
        json!({"challenge_id": id, "code": code}),
    )
    .await;
    assert_eq!(res.status(), 201);
    assert!(set_cookie(res.headers(), "authara_refresh").is_some());
    let session: Value = res.json().await.unwrap();
    assert_eq!(session["user"]["email"], other.as_str());
    assert!(session["access_token"].is_string(), "{session}");
}

async fn a_signup_with_a_taken_email_answers_like_a_new_one_and_sends_nothing(b: Backend) {
    let smtp = smtp().await;
    let app = spawn(b, &smtp, &[CHALLENGES]).await;
    let taken = verified_signup(&app, &smtp, "taken").await;
    let fresh = email("fresh");
    let csrf = app.csrf().await;
    let mut answers = Vec::new();
    for address in [&taken, &fresh] {
        let other = app.fresh_client();
        let res = other
            .post(app.url("/auth/signup"))
            .header("cookie", format!("authara_csrf={csrf}"))
            .form(&[
                ("email", address.as_str()),
                ("password", PASSWORD),
                ("csrf_token", csrf.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        let to = location(&res);
        let page = other
            .get(app.url(&to))
            .header("cookie", format!("authara_csrf={csrf}"))
            .send()
            .await
            .unwrap();
        let page = normalised_page(
            &page.text().await.unwrap(),
            &challenge_of(&to),
            address,
            &csrf,
        );
        answers.push((without_id(&to), page));
    }
    assert_eq!(answers[0], answers[1]);
    nth_mail_to(&smtp, &fresh, 1).await;
    outbox_drained(&app).await;
    assert_eq!(
        mails_to(&smtp, &taken).len(),
        1,
        "nothing more for the taken address"
    );

    let mut bodies = Vec::new();
    for address in [&taken, &fresh] {
        let res = post_json(
            &app,
            "/auth/api/v1/signup/challenges",
            json!({"email": address, "password": PASSWORD}),
        )
        .await;
        assert_eq!(res.status(), 202);
        let body: Value = res.json().await.unwrap();
        let id = body["challenge_id"].as_str().unwrap().to_owned();
        let res = post_json(
            &app,
            "/auth/api/v1/signup/challenges/verify",
            json!({"challenge_id": id, "code": "000000"}),
        )
        .await;
        bodies.push((res.status().as_u16(), res.text().await.unwrap()));
    }
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bodies[0].0, 400);
}

/// Signs up `local` through the emailed code (challenges on), in the app's own browser, which
/// is then signed in; returns the address. Its code is the first message to it.
async fn verified_signup(app: &TestApp, smtp: &SmtpServer, local: &str) -> String {
    let address = email(local);
    let res = app
        .post_form(
            "/auth/signup",
            &[("email", address.as_str()), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), 303);
    let id = challenge_of(&location(&res));
    let code = nth_mail_to(smtp, &address, 1).await.code();
    assert_eq!(
        verify_by_form(app, "signup", &id, &code).await.status(),
        303
    );
    address
}

async fn an_email_change_sends_the_code_to_the_new_address_notifies_the_old_and_signs_out_others(
    b: Backend,
) {
    let smtp = smtp().await;
    let app = spawn(b, &smtp, &[CHALLENGES]).await;
    let old = verified_signup(&app, &smtp, "mover").await;
    let res = app.login_in_another_browser(&old, PASSWORD).await;
    let other = set_cookie(res.headers(), "authara_access").unwrap();
    let other = other
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("authara_access=");
    assert_eq!(app.user_status_with(other).await, 200);

    let account = app.get("/auth/account").await.text().await.unwrap();
    assert!(
        account.contains("action=\"/auth/email-change\""),
        "{account}"
    );
    let new = email("moved");
    let res = app
        .post_form("/auth/email-change", &[("new_email", new.as_str())])
        .await;
    assert_eq!(res.status(), 303);
    let to = location(&res);
    assert!(
        to.starts_with("/auth/verify-challenge/email-change?challenge_id="),
        "{to}"
    );
    let mail = nth_mail_to(&smtp, &new, 1).await;
    assert_eq!(mail.subject, "Verify your new email address");
    let res = verify_by_form(&app, "email-change", &challenge_of(&to), &mail.code()).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/auth/account?notice=email-changed");
    let page = app.get("/auth/account?notice=email-changed").await;
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("Your email address was changed."));

    let (status, me) = app.user().await;
    assert_eq!(status, 200, "the asking session survives");
    assert_eq!(me["email"], new.as_str());
    assert_eq!(
        app.user_status_with(other).await,
        401,
        "the others are signed out"
    );
    assert!(
        audit_actions(&app, &old)
            .await
            .contains(&"user.email_changed".to_owned()),
        "the change is in the audit log, under the old address"
    );
    let notice = nth_mail_to(&smtp, &old, 2).await;
    assert!(notice.body.contains(&new), "{notice:?}");
    assert_eq!(app.login(&old, PASSWORD).await.status(), 422);
    assert_eq!(app.login(&new, PASSWORD).await.status(), 303);
    // The same address again is refused, naming why.
    let res = app
        .post_form("/auth/email-change", &[("new_email", new.as_str())])
        .await;
    says(res, 422, "already your email").await;
}

async fn an_email_change_to_a_taken_address_answers_like_a_free_one_and_sends_nothing(b: Backend) {
    let smtp = smtp().await;
    let app = spawn(b, &smtp, &[CHALLENGES]).await;
    let taken = verified_signup(&app, &smtp, "occupied").await;
    // The app's browser is now signed in as the second account.
    verified_signup(&app, &smtp, "changer").await;
    let free = email("free-address");
    let csrf = app.csrf().await;
    let mut answers = Vec::new();
    for address in [&taken, &free] {
        let res = app
            .post_form("/auth/email-change", &[("new_email", address.as_str())])
            .await;
        assert_eq!(res.status(), 303);
        let to = location(&res);
        let page = app.get(&to).await.text().await.unwrap();
        answers.push((
            without_id(&to),
            normalised_page(&page, &challenge_of(&to), address, &csrf),
        ));
    }
    assert_eq!(answers[0], answers[1]);
    nth_mail_to(&smtp, &free, 1).await;
    outbox_drained(&app).await;
    assert_eq!(
        mails_to(&smtp, &taken).len(),
        1,
        "no code to a taken address"
    );
    assert_eq!(jobs_to(&app, &taken).await, 1);
}

async fn mail_queued_while_the_smtp_server_is_down_is_delivered_when_it_is_back(b: Backend) {
    let port = crate::helpers::free_port();
    let app = spawn_on_port(b, port).await;
    let user = app.signed_up("patient").await;
    let id = challenge_of(&reset_by_form(&app, &user).await);
    // The first attempt fails (nothing listens); the job waits 30 s for its retry.
    let store = authara::server::open_store(&app.config).await.unwrap();
    let deadline = tokio::time::Instant::now() + ARRIVES_WITHIN;
    loop {
        let jobs = store.list_emails(10).await.unwrap();
        if jobs
            .iter()
            .any(|j| j.attempt_count >= 1 && j.status == EmailStatus::Pending)
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{jobs:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let back = SmtpServer::start_on(port, Behaviour::default()).await;
    app.clock.advance(time::Duration::seconds(31));
    let code = nth_mail_to(&back, &user, 1).await.code();
    assert_eq!(
        verify_by_form(&app, "password-reset", &id, &code)
            .await
            .status(),
        303
    );
}

/// The test server with mail to a port where nothing may listen yet.
async fn spawn_on_port(b: Backend, port: u16) -> TestApp {
    let port = port.to_string();
    let from = format!("Authara <auth{}example.com>", '@');
    TestApp::spawn_with(
        b,
        &[
            ("AUTHARA_EMAIL_PROVIDER", "smtp"),
            ("AUTHARA_EMAIL_FROM", from.as_str()),
            ("AUTHARA_EMAIL_SMTP_HOST", "127.0.0.1"),
            ("AUTHARA_EMAIL_SMTP_PORT", port.as_str()),
            ("AUTHARA_EMAIL_SMTP_TLS", "false"),
            ("AUTHARA_EMAIL_SMTP_TIMEOUT", "2s"),
            ("AUTHARA_EMAIL_WORKER_POLL_INTERVAL", "50ms"),
            ("AUTHARA_RATE_LIMIT_PASSWORD_RESET_IP_LIMIT", "10000"),
            ("AUTHARA_RATE_LIMIT_PASSWORD_RESET_EMAIL_LIMIT", "10000"),
        ],
    )
    .await
}

async fn mail_queued_before_a_restart_is_delivered_by_the_next_instance(b: Backend) {
    // The first instance sends to a port where nothing listens; it stops with the job queued.
    let nothing = crate::helpers::free_port();
    let mut app = spawn_on_port(b, nothing).await;
    let user = app.signed_up("restart").await;
    let id = challenge_of(&reset_by_form(&app, &user).await);
    app.stop().await;
    let store = authara::server::open_store(&app.config).await.unwrap();
    let jobs = store.list_emails(10).await.unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_ne!(jobs[0].status, EmailStatus::Sent);
    drop(store);

    // The next instance, with a mail server, sends it (after the retry delay if the first one
    // got to try).
    let smtp = smtp().await;
    let port = smtp.port.to_string();
    app.restart_with(&[("AUTHARA_EMAIL_SMTP_PORT", port.as_str())])
        .await;
    app.clock.advance(time::Duration::seconds(31));
    let code = nth_mail_to(&smtp, &user, 1).await.code();
    assert_eq!(
        verify_by_form(&app, "password-reset", &id, &code)
            .await
            .status(),
        303
    );
}

async fn mail_goes_over_starttls_with_auth_when_tls_is_on(b: Backend) {
    let smtp = SmtpServer::start(Behaviour {
        starttls: true,
        login: Some(("mailer".into(), "mail-secret".into())),
        data_reply: None,
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &smtp.cert_pem).unwrap();
    let ca = ca.display().to_string();
    let app = spawn(
        b,
        &smtp,
        &[
            ("AUTHARA_EMAIL_SMTP_HOST", "localhost"),
            ("AUTHARA_EMAIL_SMTP_TLS", "true"),
            ("AUTHARA_EMAIL_SMTP_TLS_CA_FILE", ca.as_str()),
            ("AUTHARA_EMAIL_SMTP_USERNAME", "mailer"),
            ("AUTHARA_EMAIL_SMTP_PASSWORD", "mail-secret"),
        ],
    )
    .await;
    let user = app.signed_up("tls").await;
    reset_by_form(&app, &user).await;
    nth_mail_to(&smtp, &user, 1).await;
    let received = smtp.received();
    assert!(received[0].over_tls);
    assert_eq!(received[0].user.as_deref(), Some("mailer"));
}

async fn without_challenges_signup_is_direct_and_the_challenge_routes_are_404(b: Backend) {
    let smtp = smtp().await;
    let app = spawn(b, &smtp, &[]).await;
    app.signed_up("direct").await;
    for path in [
        "/auth/api/v1/signup/challenges",
        "/auth/api/v1/signup/challenges/verify",
    ] {
        let res = post_json(&app, path, json!({})).await;
        assert_eq!(res.status(), 404, "{path}");
    }
    let res = app
        .post_form("/auth/email-change", &[("new_email", email("x").as_str())])
        .await;
    assert_eq!(res.status(), 404);
    let id = uuid::Uuid::new_v4().to_string();
    for action in ["signup", "email-change"] {
        let res = app
            .get(&format!(
                "/auth/verify-challenge/{action}?challenge_id={id}"
            ))
            .await;
        assert_eq!(res.status(), 404);
    }
    let account = app.get("/auth/account").await.text().await.unwrap();
    assert!(!account.contains("/auth/email-change"));
    assert!(smtp.received().is_empty());
}

//! Hostile input in every field: NUL, CR, LF, DEL, C1, bidi controls and overlong values never
//! reach the database and never cause a 5xx, on both backends.

use crate::dbstate::{assert_unchanged, snapshot};
use crate::helpers::{email, Backend, TestApp};
use crate::on_both;
use crate::raw;

on_both!(
    login_with_a_hostile_email_or_password_is_the_unknown_user_422,
    signup_refuses_hostile_emails_and_passwords_with_the_422_page,
    username_change_refuses_hostile_usernames,
    hostile_return_to_is_dropped_never_echoed,
    user_agent_is_stored_sanitised_and_bounded,
    hostile_header_bytes_are_refused_before_any_handler,
    overlong_csrf_tokens_and_cookies_are_refused,
);

/// Every hostile character the tests insert.
const HOSTILE: [&str; 9] = [
    "\0", "\r", "\n", "\r\n", "\t", "\u{7f}", "\u{85}", "\u{202E}", "\u{2066}",
];

/// Limits high enough that many attempts from one address are never rate limited.
const NO_LIMITS: [(&str, &str); 4] = [
    ("AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT", "100000"),
    ("AUTHARA_RATE_LIMIT_LOGIN_EMAIL_LIMIT", "100000"),
    ("AUTHARA_RATE_LIMIT_SIGNUP_IP_LIMIT", "100000"),
    ("AUTHARA_RATE_LIMIT_SIGNUP_EMAIL_LIMIT", "100000"),
];

const PASSWORD: &str = "correct horse battery";

async fn login_with_a_hostile_email_or_password_is_the_unknown_user_422(b: Backend) {
    let app = TestApp::spawn_with(b, &NO_LIMITS).await;
    let e = app.signed_up("victim").await;
    let other = app.fresh_client();
    let before = snapshot(&app).await;
    let mut emails: Vec<String> = Vec::new();
    for h in HOSTILE {
        // The hostile character inside, before and after a real address.
        emails.push(format!("vic{h}tim@example.com"));
        emails.push(format!("{e}{h}x"));
        emails.push(format!("{h}{e}"));
    }
    emails.push(format!("{}{e}", "a".repeat(255)));
    emails.push("a".repeat(60_000));
    for bad in &emails {
        let res = other
            .post(app.url("/auth/login"))
            .header("cookie", format!("authara_csrf={}", "c".repeat(43)))
            .form(&[
                ("email", bad.as_str()),
                ("password", PASSWORD),
                ("csrf_token", &"c".repeat(43)),
            ])
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body = res.text().await.unwrap();
        // Trailing CR/LF/tab around a real address are whitespace the login trims: those log in
        // (and would change the database); everything else is the unknown-user answer.
        let trimmed = bad.trim();
        if trimmed == e {
            assert_eq!(status, 303, "{bad:?}");
            continue;
        }
        assert_eq!(status, 422, "{bad:?}: {body}");
        assert!(body.contains("Invalid email or password."), "{bad:?}");
        // Never echoed with its control characters.
        assert!(!body.contains('\0'));
    }
    let mut passwords: Vec<String> = HOSTILE
        .iter()
        .map(|h| format!("correct{h}horse battery"))
        .collect();
    passwords.push(format!("{PASSWORD}{}", "x".repeat(200)));
    passwords.push("p".repeat(60_000));
    for bad in &passwords {
        let res = other
            .post(app.url("/auth/login"))
            .header("cookie", format!("authara_csrf={}", "c".repeat(43)))
            .form(&[
                ("email", e.as_str()),
                ("password", bad.as_str()),
                ("csrf_token", &"c".repeat(43)),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422, "{bad:?}");
    }
    // Only the trimmed-whitespace logins above added sessions; drop them from the comparison
    // by comparing users and the victim's first session only.
    let after = snapshot(&app).await;
    for row in &before {
        assert!(after.contains(row), "row changed: {row}");
    }
    assert!(after
        .iter()
        .filter(|r| r.starts_with("user"))
        .eq(before.iter().filter(|r| r.starts_with("user"))));
    assert_eq!(app.user().await.0, 200);
}

async fn signup_refuses_hostile_emails_and_passwords_with_the_422_page(b: Backend) {
    let app = TestApp::spawn_with(b, &NO_LIMITS).await;
    app.signed_up("first").await;
    let before = snapshot(&app).await;
    let mut cases: Vec<(String, String, &str)> = Vec::new();
    for (i, h) in HOSTILE.iter().enumerate() {
        let e = format!("new{h}comer@example.com");
        // Whitespace around an address is trimmed like at login: only inside is hostile.
        cases.push((e, PASSWORD.to_owned(), "Email address is not valid."));
        cases.push((email(&format!("pw{i}")), format!("correct{h}horse"), ""));
    }
    cases.push((
        format!("{}@example.com", "a".repeat(250)),
        PASSWORD.to_owned(),
        "Email must be at most 254 characters.",
    ));
    cases.push((
        email("long.pw"),
        "p".repeat(129),
        "Password must be at most 128 characters.",
    ));
    cases.push((email("huge.pw"), "p".repeat(60_000), "at most 128"));
    cases.push((email("huge"), "p".repeat(70_000), "too large"));
    for (e, p, message) in &cases {
        let res = app
            .fresh_client()
            .post(app.url("/auth/signup"))
            .header("cookie", format!("authara_csrf={}", "c".repeat(43)))
            .form(&[
                ("email", e.as_str()),
                ("password", p.as_str()),
                ("csrf_token", &"c".repeat(43)),
            ])
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body = res.text().await.unwrap();
        if *message == "too large" {
            assert_eq!(status, 413, "{e:?}");
            continue;
        }
        // Bidi controls are not control characters: a password may hold them.
        if message.is_empty() && !p.contains(['\u{202E}', '\u{2066}']) {
            assert_eq!(status, 422, "{p:?}: {body}");
            assert!(
                body.contains("Password must not contain control characters."),
                "{p:?}: {body}"
            );
            continue;
        }
        if message.is_empty() {
            continue;
        }
        assert_eq!(status, 422, "{e:?}: {body}");
        assert!(body.contains(message), "{e:?}: {body}");
    }
    // Nothing but the bidi passwords' accounts was created.
    let after = snapshot(&app).await;
    for row in &before {
        assert!(after.contains(row), "row changed: {row}");
    }
    let new_users = after.iter().filter(|r| r.starts_with("user")).count()
        - before.iter().filter(|r| r.starts_with("user")).count();
    assert_eq!(new_users, 2, "only the two passwords with bidi characters");
    for row in after.iter().filter(|r| !before.contains(r)) {
        assert!(
            !row.contains(['\0', '\r', '\n', '\u{7f}', '\u{85}']),
            "{row:?}"
        );
    }
}

async fn username_change_refuses_hostile_usernames(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.signed_up("named").await;
    let before = snapshot(&app).await;
    let mut names: Vec<String> = HOSTILE.iter().map(|h| format!("na{h}me")).collect();
    names.push("n".repeat(33));
    names.push("n".repeat(60_000));
    names.push("ab".to_owned());
    for bad in &names {
        let res = app
            .post_form("/auth/user/username", &[("username", bad)])
            .await;
        let status = res.status();
        let body = res.text().await.unwrap();
        assert_eq!(status, 422, "{bad:?}: {body}");
        assert!(body.contains("Username"), "{bad:?}");
    }
    assert_unchanged(&app, &before, "a hostile username").await;
    assert_eq!(app.user().await.0, 200);
}

async fn hostile_return_to_is_dropped_never_echoed(b: Backend) {
    let app = TestApp::spawn(b).await;
    let before = snapshot(&app).await;
    let mut values: Vec<String> = HOSTILE.iter().map(|h| format!("/app{h}x")).collect();
    values.push(format!("/{}", "a".repeat(2048)));
    values.push(format!("/{}", "a".repeat(30_000)));
    for v in &values {
        for page in ["/auth/login", "/auth/signup"] {
            let res = app
                .client
                .get(app.url(page))
                .query(&[("return_to", v.as_str())])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200, "{page} {v:?}");
            let body = res.text().await.unwrap();
            assert!(!body.contains(r#"name="return_to""#), "{page} {v:?}");
        }
        let res = app
            .client
            .post(app.url("/auth/sessions/logout"))
            .query(&[("return_to", v.as_str())])
            .form(&[("return_to", v.as_str()), ("csrf_token", &app.csrf().await)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303, "{v:?}");
        assert_eq!(res.headers()["location"], "/", "{v:?}");
    }
    assert_unchanged(&app, &before, "a hostile return_to").await;
}

async fn user_agent_is_stored_sanitised_and_bounded(b: Backend) {
    let app = TestApp::spawn(b).await;
    let agents = [
        "Mozilla/5.0\tTabbed".to_owned(),
        format!("Long/{}", "x".repeat(8000)),
    ];
    for (i, ua) in agents.iter().enumerate() {
        let res = app
            .fresh_client()
            .post(app.url("/auth/signup"))
            .header("user-agent", ua.as_str())
            .header("cookie", format!("authara_csrf={}", "c".repeat(43)))
            .form(&[
                ("email", email(&format!("ua{i}")).as_str()),
                ("password", PASSWORD),
                ("csrf_token", &"c".repeat(43)),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303, "{i}");
    }
    // Bytes beyond ASCII in a header (obs-text): accepted by HTTP, never stored as such.
    let res = app
        .fresh_client()
        .post(app.url("/auth/signup"))
        .header(
            "user-agent",
            reqwest::header::HeaderValue::from_bytes("Evil\u{202E}gpj.exe\u{85}".as_bytes())
                .unwrap(),
        )
        .header("cookie", format!("authara_csrf={}", "c".repeat(43)))
        .form(&[
            ("email", email("ua.bidi").as_str()),
            ("password", PASSWORD),
            ("csrf_token", &"c".repeat(43)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let sessions: Vec<String> = snapshot(&app)
        .await
        .into_iter()
        .filter(|r| r.starts_with("session"))
        .collect();
    assert_eq!(sessions.len(), 3);
    assert!(
        sessions
            .iter()
            .any(|r| r.contains("Evil\u{FFFD}gpj.exe\u{FFFD}")),
        "{sessions:?}"
    );
    let agents: Vec<&str> = sessions
        .iter()
        .map(|r| r.split(" | ").nth(3).unwrap())
        .collect();
    assert!(agents.contains(&"Mozilla/5.0\u{FFFD}Tabbed"), "{agents:?}");
    for a in &agents {
        assert!(a.len() <= 512, "{}", a.len());
        assert!(!a.contains(['\t', '\u{202E}', '\u{85}']), "{a:?}");
    }
}

async fn hostile_header_bytes_are_refused_before_any_handler(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.signed_up("hdr").await;
    let before = snapshot(&app).await;
    let body = format!("email={}&password=x&csrf_token=c", email("hdr"));
    for h in ["\0", "\r", "\u{7f}", "\u{1b}"] {
        for header in [
            "User-Agent",
            "X-Request-Id",
            "Cookie",
            "X-CSRF-Token",
            "Origin",
        ] {
            let head = format!(
                "POST /auth/login HTTP/1.1\r\nHost: {}\r\n{header}: a{h}b\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                app.addr,
                body.len()
            );
            let r = raw::send(app.addr, head.as_bytes(), body.as_bytes()).await;
            raw::assert_no_5xx(&r, &format!("{header} with {h:?}"));
            assert_ne!(r.status, Some(303), "{header} with {h:?}: {}", r.text);
        }
    }
    assert_unchanged(&app, &before, "hostile header bytes").await;
}

async fn overlong_csrf_tokens_and_cookies_are_refused(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.signed_up("bounds").await;
    let before = snapshot(&app).await;
    // A CSRF pair longer than the 256-byte bound never matches, even when equal.
    let long = "t".repeat(257);
    let res = app
        .fresh_client()
        .post(app.url("/auth/user/username"))
        .header(
            "cookie",
            format!(
                "authara_csrf={long}; authara_access={}",
                app.cookie("authara_access").unwrap()
            ),
        )
        .header("x-csrf-token", &long)
        .form(&[("username", "renamed")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // A cookie value beyond 4096 bytes reads as absent: no session.
    let huge = "a".repeat(5000);
    let res = app
        .fresh_client()
        .get(app.url("/auth/api/v1/user"))
        .header("cookie", format!("authara_access={huge}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // A request id beyond 128 bytes is replaced, never echoed.
    let res = app
        .client
        .get(app.url("/auth/health"))
        .header("x-request-id", "r".repeat(129))
        .send()
        .await
        .unwrap();
    assert_ne!(res.headers()["x-request-id"], "r".repeat(129).as_str());
    assert_unchanged(&app, &before, "overlong tokens").await;
}

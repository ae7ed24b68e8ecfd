//! Webhooks end to end: the real server, a real receiver on 127.0.0.1, the outbox on both
//! backends.

use crate::helpers::{email, Backend, TestApp};
use crate::on_both;
use crate::receiver::{signature_v1, signature_v2, Hit, Receiver};
use authara_core::events::EventStatus;
use std::time::Duration;

/// The shared secret of every test here (≥ 32 characters, as prod requires).
const SECRET: &str = "test-webhook-secret-0123456789abcdef";
/// How long a delivery may take to arrive on a loaded machine.
const ARRIVES_WITHIN: Duration = Duration::from_secs(20);

on_both!(
    signup_delivers_user_created_signed_with_both_signatures,
    username_change_disable_enable_and_deletion_deliver_their_events,
    a_failing_receiver_gets_the_same_delivery_again_after_the_retry_delay,
    a_receiver_that_is_down_gets_the_event_when_it_is_back,
    a_4xx_answer_is_final_and_the_attempt_limit_ends_retries,
    without_a_webhook_url_no_event_is_written,
    only_the_enabled_event_types_are_written,
);

async fn spawn(b: Backend, receiver_url: &str, extra: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![
        ("AUTHARA_WEBHOOK_URL", receiver_url),
        ("AUTHARA_WEBHOOK_SECRET", SECRET),
        ("AUTHARA_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true"),
        ("AUTHARA_WEBHOOK_TIMEOUT", "2s"),
    ];
    vars.extend_from_slice(extra);
    TestApp::spawn_with(b, &vars).await
}

/// Waits until the outbox has recorded `attempts` attempts in all and none is in flight: the
/// receiver sees a request before the worker records its outcome, and a test that moves the
/// clock in between would move the retry too.
async fn settled(app: &TestApp, attempts: u32) {
    let store = authara::server::open_store(&app.config).await.unwrap();
    let deadline = tokio::time::Instant::now() + ARRIVES_WITHIN;
    loop {
        let rows = store.list_events(100).await.unwrap();
        let made: u32 = rows.iter().map(|r| r.attempt_count).sum();
        if made >= attempts && rows.iter().all(|r| r.status != EventStatus::Processing) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "attempts never recorded: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The three events of one signup, in any order (they share their instant, and events due at
/// the same instant go out in id order): `user.created`, then, as upstream, the initial
/// organization's `organization.created` and `organization.membership.created`.
const SIGNUP_EVENTS: [&str; 3] = [
    "user.created",
    "organization.created",
    "organization.membership.created",
];

/// Only `user.created`: for the tests of the delivery mechanics, which follow one event.
const USER_CREATED_ONLY: (&str, &str) = ("AUTHARA_WEBHOOK_ENABLED_EVENTS", "user.created");

/// Asserts that `hits` are one signup's three events for the signed-in user of `app` (signed,
/// with upstream's payloads, UPSTREAM.md §4), and returns the user's id.
async fn assert_signup_events(app: &TestApp, hits: &[Hit]) -> String {
    let (status, user) = app.user().await;
    assert_eq!(status, 200);
    let id = user["id"].as_str().unwrap().to_owned();
    let org = &user["organization"];
    let mut types: Vec<&str> = hits.iter().map(|h| h.event.as_str()).collect();
    types.sort_unstable();
    let mut want = SIGNUP_EVENTS;
    want.sort_unstable();
    assert_eq!(types, want, "{hits:?}");
    for hit in hits {
        check_signed(hit);
        let data = &hit.json()["data"];
        match hit.event.as_str() {
            "user.created" => assert_eq!(*data, serde_json::json!({ "user_id": id })),
            // The default mode is `single`: the initial organization is a team one, named
            // after the username.
            "organization.created" => assert_eq!(
                *data,
                serde_json::json!({
                    "organization_id": org["id"],
                    "name": user["username"],
                    "kind": "team",
                    "created_by_user_id": id,
                })
            ),
            _ => assert_eq!(
                *data,
                serde_json::json!({
                    "organization_id": org["id"],
                    "user_id": id,
                    "role": "owner",
                    "is_initial_membership": true,
                    "invitation_id": null,
                    "metadata": {},
                })
            ),
        }
    }
    assert_eq!(org["name"], user["username"]);
    assert_eq!(org["role"], "owner");
    id
}

/// The receiver checks what a real one would: signatures over the raw body, headers, envelope.
fn check_signed(hit: &Hit) {
    assert_eq!(hit.content_type, "application/json");
    assert_eq!(hit.signature, signature_v1(SECRET, &hit.body));
    assert!(!hit.timestamp.is_empty(), "X-Authara-Timestamp missing");
    let ts: i64 = hit.timestamp.parse().unwrap();
    let now = authara_core::clock::Clock::now(&authara_core::clock::SystemClock).unix_timestamp();
    assert!(
        (now - ts).abs() < 600,
        "timestamp {ts} is not the send time"
    );
    assert_eq!(
        hit.signature_v2,
        signature_v2(SECRET, &hit.timestamp, &hit.body)
    );
    let v = hit.json();
    assert_eq!(v["id"], hit.delivery.as_str());
    assert_eq!(v["type"], hit.event.as_str());
    assert_eq!(v.as_object().unwrap().len(), 4, "{v}");
    let at = v["created_at"].as_str().unwrap();
    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).unwrap();
    assert!(at.ends_with('Z'), "created_at in UTC: {at}");
}

async fn signup_delivers_user_created_signed_with_both_signatures(b: Backend) {
    let receiver = Receiver::start().await;
    let app = spawn(b, &receiver.url(), &[]).await;
    app.signed_up("hooked").await;
    let hits = receiver.wait_for(3, ARRIVES_WITHIN).await;
    assert_signup_events(&app, &hits).await;
    // Logging in and reading the user change nothing: no further event.
    receiver
        .assert_stays_at(3, Duration::from_millis(1500))
        .await;
    let store = authara::server::open_store(&app.config).await.unwrap();
    let rows = store.list_events(10).await.unwrap();
    assert_eq!(rows.len(), 3);
    let mut deliveries: Vec<String> = hits.iter().map(|h| h.delivery.clone()).collect();
    deliveries.sort();
    let mut ids: Vec<String> = rows.iter().map(|r| r.id.to_string()).collect();
    ids.sort();
    assert_eq!(
        ids, deliveries,
        "one delivery per event, with the event's id"
    );
    for row in &rows {
        assert_eq!(row.status, EventStatus::Delivered);
        assert_eq!(row.attempt_count, 1);
    }
}

async fn username_change_disable_enable_and_deletion_deliver_their_events(b: Backend) {
    let receiver = Receiver::start().await;
    let app = spawn(b, &receiver.url(), &[]).await;
    let store = authara::server::open_store(&app.config).await.unwrap();
    app.signed_up("events").await;
    let hits = receiver.wait_for(3, ARRIVES_WITHIN).await;
    let id = assert_signup_events(&app, &hits).await;
    // One second between changes: events due at the same instant go out in id order.
    app.clock.advance(time::Duration::seconds(1));
    let res = app
        .post_form("/auth/user/username", &[("username", "renamed.one")])
        .await;
    assert_eq!(res.status(), 303);
    // A refused change (invalid name) emits nothing.
    let res = app
        .post_form("/auth/user/username", &[("username", "x")])
        .await;
    assert_eq!(res.status(), 422);
    let hits = receiver.wait_for(4, ARRIVES_WITHIN).await;
    assert_eq!(hits[3].event, "user.updated");
    assert_eq!(hits[3].json()["data"]["user_id"], id.as_str());

    // An administrator (signing up in this browser, which replaces the user's cookies)
    // disables and enables the user: user.updated twice.
    app.clock.advance(time::Duration::seconds(1));
    let boss = app.signed_up("boss").await;
    authara::server::cli_account_service(&app.config)
        .await
        .unwrap()
        .set_admin_by_email(&authara_core::audit::Actor::Cli, &boss, true)
        .await
        .unwrap();
    assert_eq!(
        app.post_api("/auth/api/v1/sessions/refresh?audience=admin")
            .await
            .status(),
        200
    );
    // The admin's own signup.
    let hits = receiver.wait_for(7, ARRIVES_WITHIN).await;
    assert_signup_events(&app, &hits[4..7]).await;
    let disable = format!("/auth/admin/users/{id}/disable");
    app.clock.advance(time::Duration::seconds(1));
    assert_eq!(app.post_form(&disable, &[]).await.status(), 303);
    app.clock.advance(time::Duration::seconds(1));
    let enable = format!("/auth/admin/users/{id}/enable");
    assert_eq!(app.post_form(&enable, &[]).await.status(), 303);
    let hits = receiver.wait_for(9, ARRIVES_WITHIN).await;
    for hit in &hits[7..9] {
        assert_eq!(hit.event, "user.updated");
        assert_eq!(hit.json()["data"]["user_id"], id.as_str());
        check_signed(hit);
    }

    // The user signs in again and deletes the account: user.deleted, and their initial
    // organization (they were its only member) goes with them: its membership's and its own
    // deletion (due at the same instant: in no particular order).
    app.clock.advance(time::Duration::seconds(1));
    let res = app.login(&email("events"), "correct horse battery").await;
    assert_eq!(res.status(), 303);
    assert_eq!(app.post_form("/auth/user/delete", &[]).await.status(), 303);
    let hits = receiver.wait_for(12, ARRIVES_WITHIN).await;
    let mut last: Vec<&str> = hits[9..12].iter().map(|h| h.event.as_str()).collect();
    last.sort();
    assert_eq!(
        last,
        [
            "organization.deleted",
            "organization.membership.deleted",
            "user.deleted"
        ]
    );
    let organization_id = hits[..3]
        .iter()
        .find(|h| h.event == "organization.created")
        .map(|h| h.json()["data"]["organization_id"].clone())
        .unwrap();
    for hit in &hits[9..12] {
        let data = &hit.json()["data"];
        match hit.event.as_str() {
            "user.deleted" => assert_eq!(data["user_id"], id.as_str()),
            "organization.membership.deleted" => {
                assert_eq!(data["user_id"], id.as_str());
                assert_eq!(data["organization_id"], organization_id);
                assert_eq!(data["role"], "owner");
            }
            _ => assert_eq!(data["organization_id"], organization_id),
        }
        check_signed(hit);
    }
    // Every delivery has its own id.
    let mut ids: Vec<_> = hits.iter().map(|h| h.delivery.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 12);
    receiver
        .assert_stays_at(12, Duration::from_millis(1500))
        .await;
    assert!(store
        .list_events(100)
        .await
        .unwrap()
        .iter()
        .all(|e| e.status == EventStatus::Delivered));
}

async fn a_failing_receiver_gets_the_same_delivery_again_after_the_retry_delay(b: Backend) {
    let receiver = Receiver::start().await;
    receiver.answer_next(&[503, 429]);
    let app = spawn(b, &receiver.url(), &[USER_CREATED_ONLY]).await;
    app.signed_up("retried").await;
    let first = receiver.wait_for(1, ARRIVES_WITHIN).await;
    assert_eq!(first[0].answered, 503);
    settled(&app, 1).await;
    // Upstream's schedule: 30 s after the first attempt. Nothing before that.
    receiver
        .assert_stays_at(1, Duration::from_millis(2500))
        .await;
    app.clock.advance(time::Duration::seconds(31));
    let second = receiver.wait_for(2, ARRIVES_WITHIN).await;
    assert_eq!(second[1].answered, 429);
    settled(&app, 2).await;
    // Then 2 minutes.
    app.clock.advance(time::Duration::seconds(31));
    receiver
        .assert_stays_at(2, Duration::from_millis(2500))
        .await;
    app.clock.advance(time::Duration::seconds(90));
    let third = receiver.wait_for(3, ARRIVES_WITHIN).await;
    assert_eq!(third[2].answered, 200);
    assert_eq!(third[0].delivery, third[1].delivery);
    assert_eq!(third[1].delivery, third[2].delivery);
    assert_eq!(
        third[0].body, third[2].body,
        "the same bytes on every attempt"
    );
    check_signed(&third[2]);
    let store = authara::server::open_store(&app.config).await.unwrap();
    let rows = store.list_events(10).await.unwrap();
    assert_eq!(rows[0].status, EventStatus::Delivered);
    assert_eq!(rows[0].attempt_count, 3);
}

async fn a_receiver_that_is_down_gets_the_event_when_it_is_back(b: Backend) {
    let receiver = Receiver::start().await;
    let url = receiver.url();
    let (_, before, down) = receiver.go_down();
    assert!(before.is_empty());
    let app = spawn(b, &url, &[USER_CREATED_ONLY]).await;
    app.signed_up("while.down").await;
    let store = authara::server::open_store(&app.config).await.unwrap();
    // The first attempt meets a closed port and is scheduled again.
    let deadline = tokio::time::Instant::now() + ARRIVES_WITHIN;
    loop {
        let rows = store.list_events(10).await.unwrap();
        if rows.first().is_some_and(|r| r.attempt_count == 1) {
            assert_eq!(rows[0].status, EventStatus::Pending);
            assert!(rows[0].last_error.is_some());
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no attempt made");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let receiver = down.come_back().await;
    app.clock.advance(time::Duration::seconds(31));
    let hits = receiver.wait_for(1, ARRIVES_WITHIN).await;
    assert_eq!(hits[0].event, "user.created");
    assert_eq!(
        hits[0].delivery,
        store.list_events(1).await.unwrap()[0].id.to_string()
    );
    receiver
        .assert_stays_at(1, Duration::from_millis(1500))
        .await;
}

async fn a_4xx_answer_is_final_and_the_attempt_limit_ends_retries(b: Backend) {
    let receiver = Receiver::start().await;
    receiver.answer_next(&[400, 500, 500]);
    let app = spawn(
        b,
        &receiver.url(),
        &[
            ("AUTHARA_WEBHOOK_MAX_DELIVERY_ATTEMPTS", "2"),
            USER_CREATED_ONLY,
        ],
    )
    .await;
    let store = authara::server::open_store(&app.config).await.unwrap();
    app.signed_up("refused").await;
    receiver.wait_for(1, ARRIVES_WITHIN).await;
    settled(&app, 1).await;
    app.clock.advance(time::Duration::minutes(10));
    receiver
        .assert_stays_at(1, Duration::from_millis(2500))
        .await;
    let rows = store.list_events(10).await.unwrap();
    assert_eq!(rows[0].status, EventStatus::Failed);
    assert_eq!(rows[0].attempt_count, 1);

    // 500 twice with a limit of 2: failed after the second attempt.
    app.signup_elsewhere("limited").await;
    receiver.wait_for(2, ARRIVES_WITHIN).await;
    settled(&app, 2).await;
    app.clock.advance(time::Duration::seconds(31));
    receiver.wait_for(3, ARRIVES_WITHIN).await;
    settled(&app, 3).await;
    app.clock.advance(time::Duration::minutes(10));
    receiver
        .assert_stays_at(3, Duration::from_millis(2500))
        .await;
    let rows = store.list_events(10).await.unwrap();
    let limited = rows.iter().find(|r| r.attempt_count == 2).unwrap();
    assert_eq!(limited.status, EventStatus::Failed);
}

async fn without_a_webhook_url_no_event_is_written(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.signed_up("quiet").await;
    let res = app
        .post_form("/auth/user/username", &[("username", "quiet.one")])
        .await;
    assert_eq!(res.status(), 303);
    let store = authara::server::open_store(&app.config).await.unwrap();
    assert!(store.list_events(10).await.unwrap().is_empty());
}

async fn only_the_enabled_event_types_are_written(b: Backend) {
    let receiver = Receiver::start().await;
    let app = spawn(
        b,
        &receiver.url(),
        &[("AUTHARA_WEBHOOK_ENABLED_EVENTS", "user.updated")],
    )
    .await;
    app.signed_up("filtered").await;
    let res = app
        .post_form("/auth/user/username", &[("username", "filtered.one")])
        .await;
    assert_eq!(res.status(), 303);
    let hits = receiver.wait_for(1, ARRIVES_WITHIN).await;
    assert_eq!(hits[0].event, "user.updated");
    receiver
        .assert_stays_at(1, Duration::from_millis(1500))
        .await;
    let store = authara::server::open_store(&app.config).await.unwrap();
    assert_eq!(store.list_events(10).await.unwrap().len(), 1);
}

/// Two instances on one PostgreSQL database, two workers each: every event is delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_postgres_instances_deliver_each_event_exactly_once() {
    if !crate::helpers::require_postgres("two_postgres_instances_deliver_each_event_exactly_once") {
        return;
    }
    let receiver = Receiver::start().await;
    let one = spawn(Backend::Postgres, &receiver.url(), &[]).await;
    let two = one.spawn_sibling().await;
    let n = 24;
    for i in 0..n {
        let app = if i % 2 == 0 { &one } else { &two };
        let res = app
            .signup_in_another_browser(&email(&format!("pair{i}")), "correct horse battery")
            .await;
        assert_eq!(res.status(), 303);
    }
    // Three events per signup (user.created and the initial organization's two).
    let events = n * SIGNUP_EVENTS.len();
    let hits = receiver.wait_for(events, ARRIVES_WITHIN * 2).await;
    receiver
        .assert_stays_at(events, Duration::from_secs(3))
        .await;
    let mut ids: Vec<_> = hits.iter().map(|h| h.delivery.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), events, "every event delivered exactly once");
    for t in SIGNUP_EVENTS {
        assert_eq!(hits.iter().filter(|h| h.event == t).count(), n, "{t}");
    }
    let store = authara::server::open_store(&one.config).await.unwrap();
    let rows = store.list_events(100).await.unwrap();
    assert_eq!(rows.len(), events);
    assert!(rows
        .iter()
        .all(|r| r.status == EventStatus::Delivered && r.attempt_count == 1));
}

/// The server killed with SIGKILL right after a signup, then started again on the same
/// database: the event (committed with the user) is delivered once.
#[test]
fn an_event_survives_sigkill_right_after_the_signup() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let receiver = rt.block_on(Receiver::start());
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("authara.db").display());
    let key = format!(
        "test:{}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            crate::helpers::TEST_KEY
        )
    );
    let url = receiver.url();
    let env = [
        ("DATABASE_URL", db.as_str()),
        ("AUTHARA_JWT_KEYS", key.as_str()),
        ("AUTHARA_PASSWORD_HASH_MEMORY_KIB", "256"),
        ("AUTHARA_PASSWORD_HASH_ITERATIONS", "1"),
        ("AUTHARA_WEBHOOK_URL", url.as_str()),
        ("AUTHARA_WEBHOOK_SECRET", SECRET),
        ("AUTHARA_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true"),
        ("AUTHARA_WEBHOOK_TIMEOUT", "1s"),
        ("AUTHARA_WEBHOOK_PROCESSING_STALE_AFTER", "3s"),
        ("AUTHARA_WEBHOOK_STALE_REAPER_INTERVAL", "1s"),
    ];
    let (mut child, addr) = crate::cli::serve_binary(dir.path(), &env);
    let signup = rt.block_on(async {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let csrf = "k".repeat(43);
        client
            .post(format!("http://{addr}/auth/signup"))
            .header("cookie", format!("authara_csrf={csrf}"))
            .form(&[
                ("email", email("killed").as_str()),
                ("password", "correct horse battery"),
                ("csrf_token", csrf.as_str()),
            ])
            .send()
            .await
            .unwrap()
            .status()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(signup, 303);
    let delivered_before = receiver.hits().len();
    assert!(delivered_before <= SIGNUP_EVENTS.len());
    let (mut again, _) = crate::cli::serve_binary(dir.path(), &env);
    // The server is killed whatever the receiver saw, or a failed assertion would leave it
    // running.
    let hits = rt.block_on(async {
        let deadline = tokio::time::Instant::now() + ARRIVES_WITHIN;
        while receiver.hits().len() < SIGNUP_EVENTS.len() && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Nothing more arrives: no event delivered twice.
        tokio::time::sleep(Duration::from_secs(5)).await;
        receiver.hits()
    });
    again.kill().unwrap();
    again.wait().unwrap();
    // The signup's three events (user.created and the initial organization's two), each
    // delivered once.
    let mut types: Vec<&str> = hits.iter().map(|h| h.event.as_str()).collect();
    types.sort_unstable();
    let mut want = SIGNUP_EVENTS;
    want.sort_unstable();
    assert_eq!(types, want, "each delivered once");
    for hit in &hits {
        check_signed(hit);
    }
}

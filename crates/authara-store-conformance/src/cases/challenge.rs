//! Challenges: created with their pending action and (real ones only) their code's email job;
//! attempts counted up to the maximum, also under a race; completion performing the pending
//! action with its effects exactly once, never for an opaque challenge, and not at all when
//! the action conflicts; resends; the code the worker sets; the purge.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use authara_core::audit::AuditAction;
use authara_core::store::{
    Attempt, ChallengeRecord, Change, ChangeFeed, CodeRecord, Completed, Completion, Effects,
    EmailRecord, EmailStatus, NewChallenge, NewEmailNotice, NewRefreshToken, NewSession,
    PendingAction, Purpose, Resend, Store, StoreError, UniqueKey,
};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::fixtures::*;
use super::RACERS;

/// The attempts a test challenge allows.
const MAX_ATTEMPTS: u32 = 5;
/// The resends a test challenge allows.
const MAX_RESENDS: u32 = 3;

/// When test challenges are created: a minute before [`now`].
fn created() -> OffsetDateTime {
    now() - Duration::minutes(1)
}

/// When test challenges expire: half an hour after [`now`].
fn expires() -> OffsetDateTime {
    now() + Duration::minutes(30)
}

fn challenge(purpose: Purpose, email: &str, action: PendingAction) -> NewChallenge {
    NewChallenge {
        id: Uuid::new_v4(),
        purpose,
        email: email.to_owned(),
        action,
        max_attempts: MAX_ATTEMPTS,
        max_resends: MAX_RESENDS,
        created_at: created(),
        expires_at: expires(),
        email_job_id: Uuid::new_v4(),
    }
}

/// A signup of `email` with a hash of its own.
fn signup(email: &str) -> NewChallenge {
    challenge(
        Purpose::Signup,
        email,
        PendingAction::Signup {
            email: email.to_owned(),
            password_hash: format!("$argon2id$signup-of-{email}"),
            invitation_id: None,
        },
    )
}

fn reset(user_id: Uuid, email: &str) -> NewChallenge {
    challenge(
        Purpose::PasswordReset,
        email,
        PendingAction::PasswordReset {
            user_id,
            password_hash: "$argon2id$reset".to_owned(),
        },
    )
}

fn email_change(
    user_id: Uuid,
    session_id: Option<Uuid>,
    old_email: &str,
    new_email: &str,
) -> NewChallenge {
    challenge(
        Purpose::EmailChange,
        new_email,
        PendingAction::EmailChange {
            user_id,
            session_id,
            old_email: old_email.to_owned(),
            new_email: new_email.to_owned(),
        },
    )
}

fn opaque(purpose: Purpose, email: &str) -> NewChallenge {
    challenge(purpose, email, PendingAction::Opaque)
}

async fn create(store: &dyn Store, challenge: NewChallenge) -> NewChallenge {
    store
        .create_challenge(challenge.clone())
        .await
        .expect("create challenge");
    challenge
}

/// The record a freshly created `challenge` should read back as.
fn record_of_challenge(challenge: &NewChallenge) -> ChallengeRecord {
    ChallengeRecord {
        id: challenge.id,
        purpose: challenge.purpose,
        email: challenge.email.clone(),
        action: challenge.action.clone(),
        attempt_count: 0,
        max_attempts: challenge.max_attempts,
        resend_count: 0,
        max_resends: challenge.max_resends,
        last_sent_at: challenge.created_at,
        created_at: challenge.created_at,
        expires_at: challenge.expires_at,
        consumed_at: None,
    }
}

async fn stored(store: &dyn Store, id: Uuid) -> ChallengeRecord {
    store
        .find_challenge(id)
        .await
        .expect("find challenge")
        .unwrap_or_else(|| panic!("challenge {id} exists"))
}

/// The email jobs that carry `challenge_id`'s code.
async fn code_jobs(store: &dyn Store, challenge_id: Uuid) -> Vec<EmailRecord> {
    all_emails(store)
        .await
        .into_iter()
        .filter(|e| e.challenge_id == Some(challenge_id))
        .collect()
}

/// The job a real challenge's code goes out with: pending, due at `at`, no attempt yet.
fn code_job_of(challenge: &NewChallenge, id: Uuid, at: OffsetDateTime) -> EmailRecord {
    EmailRecord {
        id,
        challenge_id: Some(challenge.id),
        to_email: challenge.email.clone(),
        template: challenge.purpose.template().to_owned(),
        template_data: "{}".to_owned(),
        status: EmailStatus::Pending,
        attempt_count: 0,
        next_attempt_at: at,
        processing_started_at: None,
        last_error: None,
        sent_at: None,
        created_at: at,
    }
}

/// The counts each [`Completion::effects`] was called with.
type Calls = Arc<Mutex<Vec<u64>>>;

fn calls() -> Calls {
    Arc::new(Mutex::new(Vec::new()))
}

/// A completion that commits one event and one audit row about `user_id` and records the count
/// of revoked sessions it is built with in `calls`.
fn completion(
    user_id: Uuid,
    new_user: Option<(Uuid, String)>,
    notice: Option<NewEmailNotice>,
    calls: &Calls,
) -> Completion {
    let calls = Arc::clone(calls);
    let effects = Effects::none()
        .event(event_at(user_id, now()))
        .audit(audit_at(
            AuditAction::PasswordReset,
            Some(user_id),
            Some(user_id),
            None,
            now(),
        ));
    Completion {
        new_user: new_user.map(|(id, username)| signup_user(id, &username)),
        notice,
        effects: Box::new(move |revoked| {
            calls.lock().expect("lock").push(revoked);
            effects
        }),
        invitation: None,
    }
}

fn notice(to: &str) -> NewEmailNotice {
    NewEmailNotice {
        id: Uuid::new_v4(),
        to_email: to.to_owned(),
        template: "email_changed_notice".to_owned(),
        template_data: r#"{"new_email":"new@example.com"}"#.to_owned(),
    }
}

async fn attempt(store: &dyn Store, id: Uuid, at: OffsetDateTime) -> Attempt {
    store
        .begin_challenge_attempt(id, at)
        .await
        .expect("begin attempt")
}

/// Asserts an attempt was counted and returns the challenge and code it came with.
fn counted(attempt: Attempt) -> (ChallengeRecord, Option<CodeRecord>) {
    match attempt {
        Attempt::Counted { challenge, code } => (*challenge, code),
        other => panic!("expected a counted attempt, got {other:?}"),
    }
}

async fn resend(store: &dyn Store, id: Uuid, at: OffsetDateTime, job: Uuid) -> Resend {
    store
        .resend_challenge(id, at, Duration::seconds(30), job)
        .await
        .expect("resend")
}

/// Consumes a real challenge by completing it (a password reset of a throwaway user).
async fn consumed_reset(store: &dyn Store, name: &str) -> NewChallenge {
    let user = create_user(store, name).await;
    let c = create(store, reset(user.id, &user.email)).await;
    store
        .complete_challenge(c.id, now(), completion(user.id, None, None, &calls()))
        .await
        .expect("complete");
    c
}

/// Every pending action round-trips, opaque ones included; a real challenge gets exactly one
/// email job (its code's, with the purpose's template, due at creation), an opaque one none.
pub async fn create_and_find_challenge_round_trips_every_pending_action(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let (session, _) = login(store, alice.id).await;
    let real = [
        signup("new@example.com"),
        reset(alice.id, &alice.email),
        email_change(
            alice.id,
            Some(session.id),
            &alice.email,
            "alice2@example.com",
        ),
        email_change(alice.id, None, &alice.email, "alice3@example.com"),
    ];
    let opaques = Purpose::ALL.map(|p| opaque(p, "someone@example.com"));
    for c in real.iter().chain(&opaques) {
        create(store, c.clone()).await;
        assert_eq!(stored(store, c.id).await, record_of_challenge(c), "{c:?}");
    }
    for c in &real {
        assert_eq!(
            code_jobs(store, c.id).await,
            vec![code_job_of(c, c.email_job_id, c.created_at)],
            "{:?}",
            c.purpose
        );
    }
    for c in &opaques {
        assert!(code_jobs(store, c.id).await.is_empty(), "{:?}", c.purpose);
    }
    assert_eq!(all_emails(store).await.len(), real.len());
    assert_eq!(store.find_challenge(Uuid::new_v4()).await.unwrap(), None);
}

/// A pending action of another purpose, or an id already taken, is refused and stores nothing.
pub async fn create_challenge_refuses_a_mismatched_action_or_a_taken_id(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let mut wrong = reset(alice.id, &alice.email);
    wrong.purpose = Purpose::Signup;
    assert!(store.create_challenge(wrong.clone()).await.is_err());
    assert_eq!(store.find_challenge(wrong.id).await.unwrap(), None);

    let first = create(store, signup("new@example.com")).await;
    let mut again = signup("other@example.com");
    again.id = first.id;
    match store.create_challenge(again).await {
        Err(StoreError::Conflict(UniqueKey::Other)) => {}
        other => panic!("expected Conflict(Other), got {other:?}"),
    }
    assert_eq!(stored(store, first.id).await, record_of_challenge(&first));
    assert_eq!(all_emails(store).await.len(), 1, "only the first one's job");
}

/// Each attempt is counted and comes with the current code, up to `max_attempts`; then
/// `TooManyAttempts`, and nothing changes. An opaque challenge counts alike, with no code.
pub async fn begin_challenge_attempt_counts_up_to_the_maximum(store: &dyn Store) {
    let real = create(store, signup("new@example.com")).await;
    let fake = create(store, opaque(Purpose::Signup, "taken@example.com")).await;
    let code_expiry = now() + Duration::minutes(10);
    store
        .set_challenge_code(real.id, "ab12", code_expiry, now())
        .await
        .unwrap()
        .expect("live");
    for n in 1..=MAX_ATTEMPTS {
        let at = now() + us(i64::from(n));
        let (challenge, code) = counted(attempt(store, real.id, at).await);
        let mut want = record_of_challenge(&real);
        want.attempt_count = n;
        assert_eq!(challenge, want);
        assert_eq!(
            code,
            Some(CodeRecord {
                code_mac: "ab12".to_owned(),
                expires_at: code_expiry,
            })
        );
        let (challenge, code) = counted(attempt(store, fake.id, at).await);
        assert_eq!(challenge.attempt_count, n);
        assert_eq!(challenge.action, PendingAction::Opaque);
        assert_eq!(code, None);
    }
    for c in [&real, &fake] {
        assert_eq!(
            attempt(store, c.id, now() + us(10)).await,
            Attempt::TooManyAttempts
        );
        assert_eq!(stored(store, c.id).await.attempt_count, MAX_ATTEMPTS);
    }
}

/// Unknown, consumed and expired challenges are `Gone` (an expired one also when its attempts
/// are used up), and the attempt is not counted.
pub async fn begin_challenge_attempt_is_gone_for_expired_consumed_or_unknown(store: &dyn Store) {
    assert_eq!(attempt(store, Uuid::new_v4(), now()).await, Attempt::Gone);
    let used = consumed_reset(store, "alice").await;
    assert_eq!(attempt(store, used.id, now()).await, Attempt::Gone);
    assert_eq!(stored(store, used.id).await.attempt_count, 0);

    let c = create(store, signup("new@example.com")).await;
    assert_eq!(attempt(store, c.id, c.expires_at).await, Attempt::Gone);
    assert_eq!(stored(store, c.id).await.attempt_count, 0);
    counted(attempt(store, c.id, c.expires_at - us(1)).await);

    let spent = create(store, signup("spent@example.com")).await;
    for _ in 0..MAX_ATTEMPTS {
        counted(attempt(store, spent.id, now()).await);
    }
    assert_eq!(
        attempt(store, spent.id, now()).await,
        Attempt::TooManyAttempts
    );
    assert_eq!(
        attempt(store, spent.id, spent.expires_at).await,
        Attempt::Gone
    );
}

/// [`RACERS`] attempts at once on a challenge allowing [`MAX_ATTEMPTS`] count exactly that
/// many, each seeing a count of its own; the rest are told `TooManyAttempts`.
pub async fn begin_challenge_attempt_race_counts_exactly_the_maximum(store: Arc<dyn Store>) {
    let c = create(&*store, signup("new@example.com")).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                store.begin_challenge_attempt(c.id, now()).await
            })
        })
        .collect();
    let mut seen = BTreeSet::new();
    let mut refused = 0;
    for task in tasks {
        match task.await.expect("task did not panic").expect("attempt") {
            Attempt::Counted { challenge, .. } => {
                assert!(seen.insert(challenge.attempt_count), "count seen twice");
            }
            Attempt::TooManyAttempts => refused += 1,
            Attempt::Gone => panic!("the challenge is live"),
        }
    }
    assert_eq!(seen, (1..=MAX_ATTEMPTS).collect::<BTreeSet<_>>());
    assert_eq!(refused, RACERS - MAX_ATTEMPTS as usize);
    assert_eq!(stored(&*store, c.id).await.attempt_count, MAX_ATTEMPTS);
}

/// Completing a signup creates the user with the pending hash, the given id and username,
/// created now; the challenge is consumed, its pending row gone (it reads back with nothing
/// to complete), the effects committed once (built for 0 revoked sessions). A second
/// completion is `NotFound` and commits nothing.
pub async fn complete_signup_creates_the_user_with_the_pending_hash(store: &dyn Store) {
    let c = create(store, signup("new@example.com")).await;
    let user_id = Uuid::new_v4();
    let calls = calls();
    let done = store
        .complete_challenge(
            c.id,
            now(),
            completion(user_id, Some((user_id, "newbie".to_owned())), None, &calls),
        )
        .await
        .expect("complete");
    let Completed::Signup { user, .. } = done else {
        panic!("expected a signup, got {done:?}");
    };
    assert_eq!(user.id, user_id);
    assert_eq!(user.email, "new@example.com");
    assert_eq!(user.username, "newbie");
    assert_eq!(
        user.password_hash.as_deref(),
        Some("$argon2id$signup-of-new@example.com")
    );
    assert!(!user.is_admin && !user.disabled);
    assert_eq!(user.created_at, now());
    assert_eq!(user_record(store, user_id).await, user);
    assert_eq!(*calls.lock().unwrap(), [0]);
    assert_eq!(all_events(store).await.len(), 1);
    assert_eq!(all_audit(store).await.len(), 1);

    let after = stored(store, c.id).await;
    assert_eq!(after.consumed_at, Some(now()));
    assert_eq!(
        after.action,
        PendingAction::Opaque,
        "the pending row is gone"
    );

    let again = store
        .complete_challenge(
            c.id,
            now() + us(1),
            completion(
                user_id,
                Some((Uuid::new_v4(), "other".to_owned())),
                None,
                &calls,
            ),
        )
        .await;
    assert_not_found(again);
    assert_eq!(*calls.lock().unwrap(), [0], "no effects built");
    assert_eq!(all_events(store).await.len(), 1);
    assert_eq!(all_audit(store).await.len(), 1);
    assert_eq!(stored(store, c.id).await.consumed_at, Some(now()));
}

/// A user with two live sessions, an expired one and a revoked one; and another user's session.
struct Sessions {
    live: [(NewSession, NewRefreshToken); 2],
    expired: (NewSession, NewRefreshToken),
    revoked: (NewSession, NewRefreshToken),
    bobs: (NewSession, NewRefreshToken),
}

async fn sessions(store: &dyn Store, user_id: Uuid) -> Sessions {
    let bob = create_user(store, "bob").await;
    let live = [login(store, user_id).await, login(store, user_id).await];
    let expired = login_at(store, user_id, now() - Duration::days(2), now()).await;
    let revoked = login(store, user_id).await;
    assert!(store
        .revoke_session(revoked.0.id, None, now() - us(5), Effects::none())
        .await
        .unwrap());
    let bobs = login(store, bob.id).await;
    Sessions {
        live,
        expired,
        revoked,
        bobs,
    }
}

/// The sessions a completion for the user may not touch keep their state.
async fn assert_bystanders_untouched(store: &dyn Store, s: &Sessions) {
    assert_eq!(revoked_at(store, &s.expired).await, None);
    assert_eq!(revoked_at(store, &s.revoked).await, Some(now() - us(5)));
    assert!(is_live(store, &s.bobs.0, now()).await);
}

/// Completing a password reset sets the pending hash and revokes every live session of the
/// user (their tokens refresh no more), returns how many with the user as changed, and builds
/// the effects with that count; other sessions are left alone.
pub async fn complete_password_reset_sets_the_hash_and_revokes_every_live_session(
    store: &dyn Store,
) {
    let alice = create_user(store, "alice").await;
    let s = sessions(store, alice.id).await;
    let c = create(store, reset(alice.id, &alice.email)).await;
    let calls = calls();
    let done = store
        .complete_challenge(c.id, now(), completion(alice.id, None, None, &calls))
        .await
        .expect("complete");
    let mut want = record_of(&alice);
    want.password_hash = Some("$argon2id$reset".to_owned());
    assert_eq!(
        done,
        Completed::PasswordReset {
            user: want.clone(),
            revoked: 2
        }
    );
    assert_eq!(user_record(store, alice.id).await, want);
    for live in &s.live {
        assert!(!is_live(store, &live.0, now()).await);
        assert_eq!(revoked_at(store, live).await, Some(now()));
        assert!(!refreshes(store, live).await, "a revoked session's token");
    }
    assert_bystanders_untouched(store, &s).await;
    assert_eq!(*calls.lock().unwrap(), [2]);
    assert_eq!(all_events(store).await.len(), 1);
    assert_eq!(all_audit(store).await.len(), 1);
    let after = stored(store, c.id).await;
    assert_eq!(after.consumed_at, Some(now()));
    assert_eq!(
        after.action,
        PendingAction::Opaque,
        "the pending row is gone"
    );
    assert_not_found(
        store
            .complete_challenge(c.id, now(), completion(alice.id, None, None, &calls))
            .await,
    );
    assert_eq!(all_events(store).await.len(), 1);
}

/// Completing an email change sets the new email, revokes the user's live sessions but the
/// one that asked, and queues the notice (no challenge: it carries no code), with the effects.
pub async fn complete_email_change_sets_the_email_and_keeps_the_asking_session(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let s = sessions(store, alice.id).await;
    let [asking, other] = &s.live;
    let c = create(
        store,
        email_change(alice.id, Some(asking.0.id), &alice.email, "new@example.com"),
    )
    .await;
    let notice = notice(&alice.email);
    let calls = calls();
    let done = store
        .complete_challenge(
            c.id,
            now(),
            completion(alice.id, None, Some(notice.clone()), &calls),
        )
        .await
        .expect("complete");
    let mut want = record_of(&alice);
    want.email = "new@example.com".to_owned();
    assert_eq!(
        done,
        Completed::EmailChange {
            user: want.clone(),
            revoked: 1
        }
    );
    assert_eq!(
        store.find_user_by_email("new@example.com").await.unwrap(),
        Some(want)
    );
    assert_eq!(store.find_user_by_email(&alice.email).await.unwrap(), None);
    assert!(is_live(store, &asking.0, now()).await);
    assert!(refreshes(store, asking).await, "the asking session's token");
    assert_eq!(revoked_at(store, other).await, Some(now()));
    assert!(!refreshes(store, other).await);
    assert_bystanders_untouched(store, &s).await;
    assert_eq!(*calls.lock().unwrap(), [1]);
    assert_eq!(all_events(store).await.len(), 1);
    assert_eq!(all_audit(store).await.len(), 1);

    let sent: Vec<_> = all_emails(store)
        .await
        .into_iter()
        .filter(|e| e.id == notice.id)
        .collect();
    assert_eq!(
        sent,
        vec![EmailRecord {
            id: notice.id,
            challenge_id: None,
            to_email: alice.email.clone(),
            template: notice.template.clone(),
            template_data: notice.template_data.clone(),
            status: EmailStatus::Pending,
            attempt_count: 0,
            next_attempt_at: now(),
            processing_started_at: None,
            last_error: None,
            sent_at: None,
            created_at: now(),
        }]
    );
    assert_eq!(
        all_emails(store).await.len(),
        2,
        "the code's job and the notice"
    );
    assert_eq!(stored(store, c.id).await.action, PendingAction::Opaque);
}

/// Without an asking session every live session is revoked; without a notice none is queued.
pub async fn complete_email_change_without_an_asking_session_revokes_them_all(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let s = sessions(store, alice.id).await;
    let c = create(
        store,
        email_change(alice.id, None, &alice.email, "new@example.com"),
    )
    .await;
    let done = store
        .complete_challenge(c.id, now(), completion(alice.id, None, None, &calls()))
        .await
        .expect("complete");
    assert!(
        matches!(done, Completed::EmailChange { revoked: 2, .. }),
        "{done:?}"
    );
    for live in &s.live {
        assert_eq!(revoked_at(store, live).await, Some(now()));
    }
    assert_bystanders_untouched(store, &s).await;
    assert_eq!(all_emails(store).await.len(), 1, "the code's job only");
}

/// [`RACERS`] completions of one signup at once: one creates the user, the others are
/// `NotFound`; the effects are committed once.
pub async fn complete_challenge_race_has_one_winner(store: Arc<dyn Store>) {
    let c = create(&*store, signup("new@example.com")).await;
    let calls = calls();
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            let user_id = Uuid::new_v4();
            let completion =
                completion(user_id, Some((user_id, format!("racer{i}"))), None, &calls);
            tokio::spawn(async move {
                barrier.wait().await;
                store.complete_challenge(c.id, now(), completion).await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.expect("task did not panic") {
            Ok(Completed::Signup { user, .. }) => winners.push(user),
            Err(StoreError::NotFound) => {}
            other => panic!("expected a signup or NotFound, got {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(
        store.find_user_by_email("new@example.com").await.unwrap(),
        Some(winners[0].clone())
    );
    assert_eq!(*calls.lock().unwrap(), [0]);
    assert_eq!(all_events(&*store).await.len(), 1);
    assert_eq!(all_audit(&*store).await.len(), 1);
}

/// An opaque challenge cannot be completed, whatever its purpose: `NotFound`, and it stays
/// unconsumed with its counts; no user, no effects, no email.
pub async fn complete_opaque_challenge_is_not_found_and_changes_nothing(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let (session, _) = login(store, alice.id).await;
    let calls = calls();
    let ghost = Uuid::new_v4();
    for purpose in Purpose::ALL {
        let c = create(store, opaque(purpose, &alice.email)).await;
        counted(attempt(store, c.id, now()).await);
        let result = store
            .complete_challenge(
                c.id,
                now(),
                completion(
                    alice.id,
                    Some((ghost, "ghost".to_owned())),
                    Some(notice(&alice.email)),
                    &calls,
                ),
            )
            .await;
        assert_not_found(result);
        let mut want = record_of_challenge(&c);
        want.attempt_count = 1;
        assert_eq!(stored(store, c.id).await, want, "{purpose:?}");
    }
    assert!(calls.lock().unwrap().is_empty());
    assert_eq!(user_record(store, alice.id).await, record_of(&alice));
    assert!(is_live(store, &session, now()).await);
    assert_eq!(store.find_user_by_id(ghost).await.unwrap(), None);
    assert!(all_events(store).await.is_empty());
    assert!(all_audit(store).await.is_empty());
    assert!(all_emails(store).await.is_empty());
}

/// A signup whose email was taken meanwhile is `Conflict(Email)`, a taken username
/// `Conflict(Username)`; either way the challenge stays live with its pending row and nothing
/// is committed, so a retry with another username can still complete it.
pub async fn complete_signup_with_a_taken_email_or_username_conflicts_and_keeps_the_challenge(
    store: &dyn Store,
) {
    let c = create(store, signup("new@example.com")).await;
    let taken = create_user(store, "taken").await;
    let calls = calls();
    let id = Uuid::new_v4();
    let result = store
        .complete_challenge(
            c.id,
            now(),
            completion(id, Some((id, "taken".to_owned())), None, &calls),
        )
        .await;
    assert_conflict(result.map(|_| ()), UniqueKey::Username);
    assert_eq!(stored(store, c.id).await, record_of_challenge(&c));

    // The email taken meanwhile, by an account created directly.
    let mut squatter = new_user("squatter");
    squatter.email = "new@example.com".to_owned();
    store
        .create_user(squatter.clone(), Effects::none())
        .await
        .expect("create");
    let result = store
        .complete_challenge(
            c.id,
            now(),
            completion(id, Some((id, "fresh".to_owned())), None, &calls),
        )
        .await;
    assert_conflict(result.map(|_| ()), UniqueKey::Email);
    assert_eq!(stored(store, c.id).await, record_of_challenge(&c));
    assert!(calls.lock().unwrap().is_empty());
    assert!(all_events(store).await.is_empty());
    assert!(all_audit(store).await.is_empty());
    assert_eq!(store.find_user_by_id(id).await.unwrap(), None);
    assert_eq!(user_record(store, taken.id).await, record_of(&taken));

    store
        .delete_user(squatter.id, Effects::none())
        .await
        .unwrap();
    let done = store
        .complete_challenge(
            c.id,
            now(),
            completion(id, Some((id, "fresh".to_owned())), None, &calls),
        )
        .await
        .expect("complete after the conflicts");
    assert!(matches!(done, Completed::Signup { .. }));
    assert_eq!(*calls.lock().unwrap(), [0]);
}

/// An email change to an address taken meanwhile is `Conflict(Email)`: the email, the
/// sessions and the challenge stay as they were, and no notice is queued.
pub async fn complete_email_change_to_a_taken_email_conflicts_and_changes_nothing(
    store: &dyn Store,
) {
    let alice = create_user(store, "alice").await;
    let (session, _) = login(store, alice.id).await;
    let c = create(
        store,
        email_change(alice.id, None, &alice.email, "bob@example.com"),
    )
    .await;
    create_user(store, "bob").await;
    let calls = calls();
    let result = store
        .complete_challenge(
            c.id,
            now(),
            completion(alice.id, None, Some(notice(&alice.email)), &calls),
        )
        .await;
    assert_conflict(result.map(|_| ()), UniqueKey::Email);
    assert_eq!(user_record(store, alice.id).await, record_of(&alice));
    assert!(is_live(store, &session, now()).await);
    assert_eq!(stored(store, c.id).await, record_of_challenge(&c));
    assert!(calls.lock().unwrap().is_empty());
    assert!(all_events(store).await.is_empty());
    assert_eq!(all_emails(store).await.len(), 1, "the code's job only");
}

/// An email change started from an address the account no longer has (another change completed
/// first) is void: `NotFound`, and neither the email nor the challenge changes, so its notice
/// can never go to an address that is no longer the account's.
pub async fn complete_email_change_after_the_email_moved_is_not_found(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let first = create(
        store,
        email_change(alice.id, None, &alice.email, "first@example.com"),
    )
    .await;
    let second = create(
        store,
        email_change(alice.id, None, &alice.email, "second@example.com"),
    )
    .await;
    let first_calls = calls();
    let late = calls();
    store
        .complete_challenge(
            second.id,
            now(),
            completion(alice.id, None, None, &first_calls),
        )
        .await
        .expect("the second change completes");
    let result = store
        .complete_challenge(first.id, now(), completion(alice.id, None, None, &late))
        .await;
    assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
    assert_eq!(
        user_record(store, alice.id).await.email,
        "second@example.com"
    );
    assert_eq!(stored(store, first.id).await, record_of_challenge(&first));
    assert!(late.lock().unwrap().is_empty());
}

/// A reset or email change whose user was deleted meanwhile is `NotFound` and leaves the
/// challenge unconsumed; so is completing an expired or unknown challenge.
pub async fn complete_challenge_for_a_gone_user_or_an_expired_challenge_is_not_found(
    store: &dyn Store,
) {
    let alice = create_user(store, "alice").await;
    let resets = create(store, reset(alice.id, &alice.email)).await;
    let changes = create(
        store,
        email_change(alice.id, None, &alice.email, "new@example.com"),
    )
    .await;
    store.delete_user(alice.id, Effects::none()).await.unwrap();
    let calls = calls();
    for c in [&resets, &changes] {
        let result = store
            .complete_challenge(
                c.id,
                now(),
                completion(alice.id, None, Some(notice(&alice.email)), &calls),
            )
            .await;
        assert_not_found(result);
        assert_eq!(stored(store, c.id).await, record_of_challenge(c));
    }

    let c = create(store, signup("new@example.com")).await;
    let id = Uuid::new_v4();
    for (challenge, at) in [(c.id, c.expires_at), (Uuid::new_v4(), now())] {
        let result = store
            .complete_challenge(
                challenge,
                at,
                completion(id, Some((id, "newbie".to_owned())), None, &calls),
            )
            .await;
        assert_not_found(result);
    }
    assert_eq!(stored(store, c.id).await, record_of_challenge(&c));
    assert!(calls.lock().unwrap().is_empty());
    assert!(all_events(store).await.is_empty());
    assert_eq!(
        all_emails(store).await.len(),
        3,
        "the three codes' jobs only"
    );
}

/// A resend is `TooSoon` until `last_sent_at + min_interval`, then `Queued`: counted,
/// `last_sent_at` moved, and a new job for the code; after `max_resends` it is `Exhausted`
/// (before `TooSoon`: waiting will not help). Expired, consumed and unknown challenges are
/// `Gone`. Refused resends change nothing.
pub async fn resend_challenge_follows_the_interval_and_the_maximum(store: &dyn Store) {
    let c = create(store, signup("new@example.com")).await;
    let job = Uuid::new_v4();
    assert_eq!(
        resend(
            store,
            c.id,
            c.created_at + Duration::seconds(30) - us(1),
            job
        )
        .await,
        Resend::TooSoon
    );
    assert_eq!(stored(store, c.id).await, record_of_challenge(&c));

    let mut want = record_of_challenge(&c);
    let mut jobs = vec![code_job_of(&c, c.email_job_id, c.created_at)];
    let mut at = c.created_at;
    for n in 1..=MAX_RESENDS {
        at += Duration::seconds(30);
        let job = Uuid::new_v4();
        assert_eq!(
            resend(store, c.id, at, job).await,
            Resend::Queued,
            "resend {n}"
        );
        want.resend_count = n;
        want.last_sent_at = at;
        assert_eq!(stored(store, c.id).await, want);
        jobs.push(code_job_of(&c, job, at));
        if n < MAX_RESENDS {
            assert_eq!(resend(store, c.id, at + us(1), job).await, Resend::TooSoon);
        }
    }
    let mut got = code_jobs(store, c.id).await;
    got.sort_by_key(|j| (j.created_at, j.id));
    assert_eq!(got, jobs);
    assert_eq!(
        resend(store, c.id, at, Uuid::new_v4()).await,
        Resend::Exhausted
    );
    assert_eq!(
        resend(store, c.id, at + Duration::minutes(5), Uuid::new_v4()).await,
        Resend::Exhausted
    );
    assert_eq!(stored(store, c.id).await, want);
    assert_eq!(code_jobs(store, c.id).await.len(), jobs.len());

    let fresh = create(store, signup("fresh@example.com")).await;
    assert_eq!(
        resend(store, fresh.id, fresh.expires_at, Uuid::new_v4()).await,
        Resend::Gone
    );
    let used = consumed_reset(store, "alice").await;
    assert_eq!(
        resend(store, used.id, now() + Duration::minutes(5), Uuid::new_v4()).await,
        Resend::Gone
    );
    assert_eq!(
        resend(store, Uuid::new_v4(), now(), Uuid::new_v4()).await,
        Resend::Gone
    );
    assert_eq!(stored(store, fresh.id).await, record_of_challenge(&fresh));
    assert_eq!(code_jobs(store, fresh.id).await.len(), 1);
    assert_eq!(code_jobs(store, used.id).await.len(), 1);
}

/// An opaque challenge answers resends exactly as a real one and its counters move alike,
/// but it never gets an email job.
pub async fn resend_of_an_opaque_challenge_counts_alike_and_queues_no_email(store: &dyn Store) {
    let real = create(store, signup("new@example.com")).await;
    let fake = create(store, opaque(Purpose::Signup, "taken@example.com")).await;
    let steps = [10, 30, 31, 61, 100, 200, 400];
    for secs in steps {
        let at = created() + Duration::seconds(secs);
        let a = resend(store, real.id, at, Uuid::new_v4()).await;
        let b = resend(store, fake.id, at, Uuid::new_v4()).await;
        assert_eq!(a, b, "at +{secs} s");
        let (r, f) = (stored(store, real.id).await, stored(store, fake.id).await);
        assert_eq!(
            (r.resend_count, r.last_sent_at),
            (f.resend_count, f.last_sent_at),
            "at +{secs} s"
        );
    }
    let r = stored(store, real.id).await;
    assert_eq!(r.resend_count, MAX_RESENDS);
    assert_eq!(
        code_jobs(store, real.id).await.len(),
        1 + MAX_RESENDS as usize
    );
    assert!(code_jobs(store, fake.id).await.is_empty());
}

/// Setting the code of a live real challenge returns the challenge; setting it again replaces
/// it; the stored expiry is capped at the challenge's. Opaque, consumed, expired and unknown
/// challenges get no code (`None`).
pub async fn set_challenge_code_replaces_the_code_and_caps_its_expiry(store: &dyn Store) {
    let c = create(store, signup("new@example.com")).await;
    let first = now() + Duration::minutes(10);
    let set = store
        .set_challenge_code(c.id, "aaaa", first, now())
        .await
        .expect("set");
    assert_eq!(set, Some(record_of_challenge(&c)));
    let (_, code) = counted(attempt(store, c.id, now()).await);
    assert_eq!(
        code,
        Some(CodeRecord {
            code_mac: "aaaa".to_owned(),
            expires_at: first,
        })
    );
    store
        .set_challenge_code(
            c.id,
            "bbbb",
            c.expires_at + Duration::hours(1),
            now() + us(1),
        )
        .await
        .expect("set")
        .expect("live");
    let (_, code) = counted(attempt(store, c.id, now() + us(2)).await);
    assert_eq!(
        code,
        Some(CodeRecord {
            code_mac: "bbbb".to_owned(),
            expires_at: c.expires_at,
        })
    );

    let fake = create(store, opaque(Purpose::PasswordReset, "nobody@example.com")).await;
    let used = consumed_reset(store, "alice").await;
    let later = create(store, signup("later@example.com")).await;
    for (id, at) in [
        (fake.id, now()),
        (used.id, now()),
        (later.id, later.expires_at),
        (Uuid::new_v4(), now()),
    ] {
        assert_eq!(
            store
                .set_challenge_code(id, "cccc", first, at)
                .await
                .unwrap(),
            None
        );
    }
    let (_, code) = counted(attempt(store, fake.id, now()).await);
    assert_eq!(code, None);
    let (_, code) = counted(attempt(store, later.id, now()).await);
    assert_eq!(code, None);
}

/// The purge deletes challenges that expired or were consumed before the cut-off, at most
/// `limit` per call, with their codes and pending rows (the same ids and actions can be
/// stored again); live ones stay, and so do the email jobs.
pub async fn purge_challenges_deletes_expired_and_consumed_ones_in_batches(store: &dyn Store) {
    let cutoff = now() + Duration::hours(1);
    let mut expired_early = signup("early@example.com");
    expired_early.expires_at = now() + Duration::minutes(2);
    let mut expired_at_cutoff = signup("edge@example.com");
    expired_at_cutoff.expires_at = cutoff;
    let mut live_after = signup("late@example.com");
    live_after.expires_at = cutoff + Duration::hours(1);
    let mut opaque_early = opaque(Purpose::Signup, "taken@example.com");
    opaque_early.expires_at = now() + Duration::minutes(3);
    for c in [
        &expired_early,
        &expired_at_cutoff,
        &live_after,
        &opaque_early,
    ] {
        create(store, c.clone()).await;
    }
    store
        .set_challenge_code(expired_early.id, "aaaa", expires(), now())
        .await
        .unwrap()
        .expect("live");
    // Consumed before the cut-off, though it expires after it.
    let alice = create_user(store, "alice").await;
    let mut consumed = reset(alice.id, &alice.email);
    consumed.expires_at = cutoff + Duration::hours(1);
    create(store, consumed.clone()).await;
    store
        .complete_challenge(
            consumed.id,
            now(),
            completion(alice.id, None, None, &calls()),
        )
        .await
        .expect("complete");
    let jobs = all_emails(store).await.len();

    assert_eq!(store.purge_challenges(cutoff, 2).await.unwrap(), 2);
    assert_eq!(store.purge_challenges(cutoff, 2).await.unwrap(), 1);
    assert_eq!(store.purge_challenges(cutoff, 2).await.unwrap(), 0);
    for gone in [&expired_early, &opaque_early, &consumed] {
        assert_eq!(store.find_challenge(gone.id).await.unwrap(), None);
    }
    for kept in [&expired_at_cutoff, &live_after] {
        assert!(store.find_challenge(kept.id).await.unwrap().is_some());
    }
    assert_eq!(all_emails(store).await.len(), jobs, "email jobs stay");

    // Nothing of the purged ones is left behind under their ids.
    let mut again = expired_early.clone();
    again.email_job_id = Uuid::new_v4();
    create(store, again.clone()).await;
    assert_eq!(stored(store, again.id).await, record_of_challenge(&again));
    let (_, code) = counted(attempt(store, again.id, now()).await);
    assert_eq!(code, None, "the code went with its challenge");
}

/// With a change feed, a completed reset announces every session it revokes and the user, and
/// an email change the sessions but the asking one and the user, so other instances' caches
/// forget them at once.
pub async fn watch_changes_reports_what_challenge_completions_revoke(store: &dyn Store) {
    let mut rx = match store.watch_changes().await.expect("watch") {
        ChangeFeed::Unsupported => return,
        ChangeFeed::Channel(rx) => rx,
    };
    assert_eq!(next(&mut rx).await, Change::Resumed);
    let alice = create_user(store, "alice").await;
    let (s1, _) = login(store, alice.id).await;
    let (s2, _) = login(store, alice.id).await;
    let c = create(store, reset(alice.id, &alice.email)).await;
    store
        .complete_challenge(c.id, now(), completion(alice.id, None, None, &calls()))
        .await
        .expect("complete");
    let mut got = vec![
        next(&mut rx).await,
        next(&mut rx).await,
        next(&mut rx).await,
    ];
    got.sort_by_key(|c| format!("{c:?}"));
    let mut want = vec![
        Change::Session(s1.id),
        Change::Session(s2.id),
        Change::User(alice.id),
    ];
    want.sort_by_key(|c| format!("{c:?}"));
    assert_eq!(got, want);

    let (s3, _) = login(store, alice.id).await;
    let (s4, _) = login(store, alice.id).await;
    let c = create(
        store,
        email_change(alice.id, Some(s3.id), &alice.email, "new@example.com"),
    )
    .await;
    store
        .complete_challenge(
            c.id,
            now() + us(1),
            completion(alice.id, None, None, &calls()),
        )
        .await
        .expect("complete");
    let mut got = vec![next(&mut rx).await, next(&mut rx).await];
    got.sort_by_key(|c| format!("{c:?}"));
    let mut want = vec![Change::Session(s4.id), Change::User(alice.id)];
    want.sort_by_key(|c| format!("{c:?}"));
    assert_eq!(got, want);
    assert!(is_live(store, &s3, now()).await);
}

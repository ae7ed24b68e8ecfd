//! Helpers shared by the cases: fixed times, users, sessions and tokens to insert, and
//! assertions. Events and audit rows are appended only through the writes that cause them, so
//! the outbox and audit helpers build [`Effects`] and make writes carry them.

use authara_core::audit::{AuditAction, AuditRecord, NewAuditEntry, RequestContext};
use authara_core::events::{EventType, NewEvent};
use authara_core::org::{OrgKind, OrgRole};
use authara_core::store::{
    ActiveOrganization, AuditFilter, Change, Effects, EmailRecord, EventRecord,
    InitialOrganization, MembershipRecord, MembershipWithOrganization, NewChallenge,
    NewOrganization, NewRefreshToken, NewSession, NewSignupUser, NewUser, PendingAction, Purpose,
    RefreshTokenRecord, Replacement, RotateIf, RotateOutcome, Store, StoreError, TokenHash,
    UniqueKey, UserRecord,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// The tests' "now": a fixed instant with a non-zero microsecond part.
pub(super) fn now() -> OffsetDateTime {
    datetime!(2030-03-04 05:06:07.123456 UTC)
}

/// `n` microseconds.
pub(super) fn us(n: i64) -> Duration {
    Duration::microseconds(n)
}

/// A user to insert, with a unique email and username.
pub(super) fn new_user(name: &str) -> NewUser {
    NewUser {
        id: Uuid::new_v4(),
        email: format!("{name}@example.com"),
        username: name.to_owned(),
        password_hash: Some(format!(
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$hash-of-{name}"
        )),
        created_at: now() - Duration::days(10) + us(1),
        organization: InitialOrganization {
            id: Uuid::new_v4(),
            name: name.to_owned(),
            kind: OrgKind::Team,
        },
    }
}

/// A signup completion's new account `id` named `username`, with a team organization named
/// after it.
pub(super) fn signup_user(id: Uuid, username: &str) -> NewSignupUser {
    NewSignupUser {
        id,
        username: username.to_owned(),
        organization: InitialOrganization {
            id: Uuid::new_v4(),
            name: username.to_owned(),
            kind: OrgKind::Team,
        },
    }
}

/// The organization a session of a freshly created `user` acts in by default: their initial
/// one, as owner.
pub(super) fn initial_org_of(user: &NewUser) -> ActiveOrganization {
    ActiveOrganization {
        id: user.organization.id,
        name: user.organization.name.clone(),
        role: OrgRole::Owner,
    }
}

/// The record a freshly created `user` should read back as.
pub(super) fn record_of(user: &NewUser) -> UserRecord {
    UserRecord {
        id: user.id,
        email: user.email.clone(),
        username: user.username.clone(),
        password_hash: user.password_hash.clone(),
        is_admin: false,
        disabled: false,
        created_at: user.created_at,
    }
}

pub(super) fn random_hash() -> TokenHash {
    let mut hash = [0u8; 32];
    hash[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    hash[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    hash
}

pub(super) fn new_token(
    session_id: Uuid,
    created_at: OffsetDateTime,
    ttl: Duration,
) -> NewRefreshToken {
    NewRefreshToken {
        id: Uuid::new_v4(),
        session_id,
        token_hash: random_hash(),
        created_at,
        expires_at: created_at + ttl,
    }
}

/// A session created at `created_at` that expires at `expires_at`, with a first token that
/// expires with it.
pub(super) fn new_login(
    user_id: Uuid,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> (NewSession, NewRefreshToken) {
    let session = NewSession {
        id: Uuid::new_v4(),
        user_id,
        user_agent: "Mozilla/5.0 (conformance)".to_owned(),
        client_ip: "192.0.2.7".to_owned(),
        created_at,
        expires_at,
        max_live_per_user: 1000,
        organization_id: None,
    };
    let token = new_token(session.id, created_at, expires_at - created_at);
    (session, token)
}

pub(super) async fn create_user(store: &dyn Store, name: &str) -> NewUser {
    let user = new_user(name);
    store
        .create_user(user.clone(), Effects::none())
        .await
        .expect("create user");
    user
}

/// Creates a session that is live at [`now`] (created an hour before, expires in a day).
pub(super) async fn login(store: &dyn Store, user_id: Uuid) -> (NewSession, NewRefreshToken) {
    login_at(
        store,
        user_id,
        now() - Duration::hours(1),
        now() + Duration::days(1),
    )
    .await
}

pub(super) async fn login_at(
    store: &dyn Store,
    user_id: Uuid,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> (NewSession, NewRefreshToken) {
    let (session, token) = new_login(user_id, created_at, expires_at);
    store
        .create_session(session.clone(), token.clone())
        .await
        .expect("create session");
    (session, token)
}

pub(super) async fn token_record(store: &dyn Store, hash: &TokenHash) -> RefreshTokenRecord {
    store
        .find_refresh_token(hash)
        .await
        .expect("find refresh token")
        .expect("refresh token exists")
}

pub(super) fn replacement(expires_at: OffsetDateTime) -> Replacement {
    Replacement {
        id: Uuid::new_v4(),
        token_hash: random_hash(),
        expires_at,
    }
}

/// Rotation on any condition a refresh with rotation `always` and the `app` audience sets.
pub(super) fn always(at: OffsetDateTime) -> RotateIf {
    RotateIf {
        now: at,
        created_at_most: None,
        admin_only: false,
    }
}

pub(super) async fn rotate(
    store: &dyn Store,
    hash: &TokenHash,
    rotate_if: RotateIf,
    replacement: &Replacement,
) -> Option<RotateOutcome> {
    store
        .rotate_refresh_token(hash, rotate_if, replacement.clone())
        .await
        .expect("rotate")
}

/// Rotates `hash`, which must succeed; returns the replacement's hash.
pub(super) async fn rotate_ok(
    store: &dyn Store,
    hash: &TokenHash,
    at: OffsetDateTime,
) -> TokenHash {
    let next = replacement(at + Duration::days(1));
    let outcome = rotate(store, hash, always(at), &next)
        .await
        .expect("token exists");
    assert!(outcome.rotated.is_some(), "not rotated: {outcome:?}");
    next.token_hash
}

pub(super) async fn is_stored(store: &dyn Store, hash: &TokenHash) -> bool {
    store
        .find_refresh_token(hash)
        .await
        .expect("find refresh token")
        .is_some()
}

pub(super) async fn user_record(store: &dyn Store, id: Uuid) -> UserRecord {
    store
        .find_user_by_id(id)
        .await
        .expect("find user")
        .expect("user exists")
}

pub(super) async fn is_live(store: &dyn Store, session: &NewSession, at: OffsetDateTime) -> bool {
    store
        .find_live_session_user(session.id, session.user_id, at)
        .await
        .expect("find live session user")
        .is_some()
}

pub(super) fn assert_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>, key: UniqueKey) {
    match result {
        Err(StoreError::Conflict(got)) => assert_eq!(got, key, "conflict on the wrong key"),
        other => panic!("expected Conflict({key:?}), got {other:?}"),
    }
}

pub(super) fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    match result {
        Err(StoreError::NotFound) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

/// A `user.updated` event about `user_id`, created at `at`.
pub(super) fn event_at(user_id: Uuid, at: OffsetDateTime) -> NewEvent {
    NewEvent::user(Uuid::new_v4(), EventType::UserUpdated, user_id, at)
}

/// An audit row: `action` by `actor` on `target` (with `email`), at `at`, with metadata and
/// request context that must round-trip.
pub(super) fn audit_at(
    action: AuditAction,
    actor: Option<Uuid>,
    target: Option<Uuid>,
    email: Option<&str>,
    at: OffsetDateTime,
) -> NewAuditEntry {
    NewAuditEntry {
        id: Uuid::new_v4(),
        created_at: at,
        action,
        actor_user_id: actor,
        target_user_id: target,
        target_email: email.map(str::to_owned),
        metadata: serde_json::json!({ "reason": "conformance", "count": 2, "nested": { "ok": true } }),
        context: RequestContext {
            ip: Some("192.0.2.9".to_owned()),
            user_agent: Some("conformance/1.0".to_owned()),
            request_id: Some(Uuid::new_v4().to_string()),
        },
    }
}

/// The record `entry` should read back as.
pub(super) fn audit_record_of(entry: &NewAuditEntry) -> AuditRecord {
    AuditRecord {
        id: entry.id,
        created_at: entry.created_at,
        action: entry.action.as_str().to_owned(),
        actor_user_id: entry.actor_user_id,
        target_user_id: entry.target_user_id,
        target_email: entry.target_email.clone(),
        metadata: entry.metadata.clone(),
        context: entry.context.clone(),
    }
}

/// Commits `effects` with a write that always succeeds: creating a fresh user.
pub(super) async fn commit(store: &dyn Store, effects: Effects) {
    let user = new_user(&format!("u{}", Uuid::new_v4().simple()));
    store
        .create_user(user, effects)
        .await
        .expect("create a user carrying effects");
}

/// Appends one pending event per instant in `at`, each with a write of its own; returns them
/// in the order given.
pub(super) async fn append_events(store: &dyn Store, at: &[OffsetDateTime]) -> Vec<NewEvent> {
    let mut events = Vec::with_capacity(at.len());
    for &at in at {
        let event = event_at(Uuid::new_v4(), at);
        commit(store, Effects::none().event(event.clone())).await;
        events.push(event);
    }
    events
}

/// Every outbox row, oldest first.
pub(super) async fn all_events(store: &dyn Store) -> Vec<EventRecord> {
    store.list_events(10_000).await.expect("list events")
}

/// Queues one pending email job per instant in `at`, due then, each with a signup challenge of
/// its own (jobs are appended only by the writes that cause them); returns the challenges (whose
/// `email_job_id` names the job) in the order given.
pub(super) async fn queue_emails(store: &dyn Store, at: &[OffsetDateTime]) -> Vec<NewChallenge> {
    let mut challenges = Vec::with_capacity(at.len());
    for &at in at {
        let email = format!("u{}@example.com", Uuid::new_v4().simple());
        let challenge = NewChallenge {
            id: Uuid::new_v4(),
            purpose: Purpose::Signup,
            email: email.clone(),
            action: PendingAction::Signup {
                email,
                password_hash: "$argon2id$queued".to_owned(),
                invitation_id: None,
            },
            max_attempts: 5,
            max_resends: 3,
            created_at: at,
            expires_at: at + Duration::minutes(30),
            email_job_id: Uuid::new_v4(),
        };
        store
            .create_challenge(challenge.clone())
            .await
            .expect("create a challenge with its email job");
        challenges.push(challenge);
    }
    challenges
}

/// Every email job, oldest first.
pub(super) async fn all_emails(store: &dyn Store) -> Vec<EmailRecord> {
    store.list_emails(10_000).await.expect("list emails")
}

/// Every audit row, newest first.
pub(super) async fn all_audit(store: &dyn Store) -> Vec<AuditRecord> {
    store
        .list_audit(&AuditFilter {
            limit: 10_000,
            ..AuditFilter::default()
        })
        .await
        .expect("list audit")
}

/// The session's `revoked_at` as stored.
pub(super) async fn revoked_at(
    store: &dyn Store,
    (_, token): &(NewSession, NewRefreshToken),
) -> Option<OffsetDateTime> {
    token_record(store, &token.token_hash)
        .await
        .session
        .revoked_at
}

/// Whether the session's refresh token still rotates at `now()` (a refresh would succeed).
pub(super) async fn refreshes(
    store: &dyn Store,
    (_, token): &(NewSession, NewRefreshToken),
) -> bool {
    let next = replacement(now() + Duration::days(1));
    rotate(store, &token.token_hash, always(now() + us(1)), &next)
        .await
        .expect("token exists")
        .rotated
        .is_some()
}

/// The next change on a feed, within 5 s.
pub(super) async fn next(rx: &mut tokio::sync::mpsc::Receiver<Change>) -> Change {
    tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
        .await
        .expect("a change within 5 s")
        .expect("feed open")
}

/// Asserts the outbox and the audit log hold exactly `events` and `audit` rows.
pub(super) async fn assert_effects(store: &dyn Store, events: usize, audit: usize, after: &str) {
    assert_eq!(
        all_events(store).await.len(),
        events,
        "outbox rows after {after}"
    );
    assert_eq!(
        all_audit(store).await.len(),
        audit,
        "audit rows after {after}"
    );
}

/// A team organization to create.
pub(super) fn team(name: &str) -> NewOrganization {
    NewOrganization {
        id: Uuid::new_v4(),
        name: name.to_owned(),
    }
}

/// A membership as it should read back, created and last changed at `at`.
pub(super) fn membership(
    organization_id: Uuid,
    user_id: Uuid,
    role: OrgRole,
    at: OffsetDateTime,
) -> MembershipRecord {
    MembershipRecord {
        organization_id,
        user_id,
        role,
        created_at: at,
        updated_at: at,
    }
}

/// Creates `organization` with `owner` at `at`, no effects.
pub(super) async fn create_team(
    store: &dyn Store,
    organization: &NewOrganization,
    owner: Uuid,
    at: OffsetDateTime,
) -> MembershipWithOrganization {
    store
        .create_team_organization(organization.clone(), owner, at, Effects::none())
        .await
        .expect("create team organization")
}

/// Adds `user_id` to `organization_id` as `role` at `at`, no effects.
pub(super) async fn join(
    store: &dyn Store,
    organization_id: Uuid,
    user_id: Uuid,
    role: OrgRole,
    at: OffsetDateTime,
) -> MembershipRecord {
    store
        .add_membership(organization_id, user_id, role, at, Effects::none())
        .await
        .expect("add membership")
}

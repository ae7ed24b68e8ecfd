//! Invitations: created with their email job and effects, or refused in the contract's order
//! (unknown organization, a member's email, an active unexpired invitation) with nothing
//! changed; an active but expired one revoked on the way; found by id and by token hash, listed
//! newest first; revoked, resent and accepted only from the states that allow it, each
//! refusal changing nothing and building no effects; what deleting an organization or a user
//! does to them; and the races the locks decide.
//!
//! Emails are compared as the active index compares them (ignoring case), although users'
//! own emails are compared exactly elsewhere.

use std::sync::{Arc, Mutex};

use authara_core::audit::AuditAction;
use authara_core::events::{EventType, NewEvent};
use authara_core::org::OrgRole;
use authara_core::store::{
    AcceptEffects, Accepted, Completed, Completion, Effects, EmailRecord, EmailStatus,
    InvitationJoin, InvitationRecord, InvitationStatus, Invited, MemberRecord, MembershipRecord,
    NewChallenge, NewEmailNotice, NewInvitation, NewSignupUser, NewUser, PendingAction, Purpose,
    ResendEffects, Resent, RevokeEffects, Revoked, Store, StoreError, StoredInvitation, UniqueKey,
};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::fixtures::*;
use super::RACERS;

/// How long the invitations here are valid.
const TTL: Duration = Duration::days(7);

/// The template the notices name (any name: the store does not read it).
const TEMPLATE: &str = "organization_invitation";

/// A token hash: 64 lowercase hex digits, like a real one.
fn token_hash() -> String {
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

/// Metadata that must round-trip as JSON: nested, with an array, a float and non-ASCII text.
fn metadata() -> serde_json::Value {
    serde_json::json!({
        "source": "conformance",
        "seats": 3,
        "ratio": 1.5,
        "tags": ["a", "ü"],
        "nested": { "ok": true, "none": null }
    })
}

/// The email that announces invitation `id` to `email`.
fn notice(id: Uuid, email: &str) -> NewEmailNotice {
    NewEmailNotice {
        id: Uuid::new_v4(),
        to_email: email.to_owned(),
        template: TEMPLATE.to_owned(),
        template_data: serde_json::json!({ "invitation_id": id.to_string() }).to_string(),
    }
}

/// A member invitation of `organization_id` for `email`, created at `at`, valid for [`TTL`],
/// with its notice.
fn invitation(organization_id: Uuid, email: &str, at: OffsetDateTime) -> NewInvitation {
    let id = Uuid::new_v4();
    NewInvitation {
        id,
        organization_id,
        email: email.to_owned(),
        role: OrgRole::Member,
        metadata: metadata(),
        token_hash: token_hash(),
        invited_by_user_id: None,
        created_at: at,
        expires_at: at + TTL,
        notice: Some(notice(id, email)),
    }
}

/// The replacement a resend of `old` at `at` inserts: the same email, role, metadata and
/// inviter; a new id, token hash, expiry and notice.
fn replacement_of(old: &NewInvitation, at: OffsetDateTime) -> NewInvitation {
    let id = Uuid::new_v4();
    NewInvitation {
        id,
        token_hash: token_hash(),
        created_at: at,
        expires_at: at + TTL,
        notice: Some(notice(id, &old.email)),
        ..old.clone()
    }
}

/// The record `new` should read back as once created.
fn record_of(new: &NewInvitation) -> InvitationRecord {
    InvitationRecord {
        id: new.id,
        organization_id: new.organization_id,
        email: new.email.clone(),
        role: new.role,
        metadata: new.metadata.clone(),
        invited_by_user_id: new.invited_by_user_id,
        created_at: new.created_at,
        updated_at: new.created_at,
        expires_at: new.expires_at,
        accepted_at: None,
        accepted_by_user_id: None,
        revoked_at: None,
        revoked_by_user_id: None,
    }
}

/// `record` as revoked at `at` by `by`.
fn revoked(record: &InvitationRecord, by: Option<Uuid>, at: OffsetDateTime) -> InvitationRecord {
    InvitationRecord {
        revoked_at: Some(at),
        revoked_by_user_id: by,
        updated_at: at,
        ..record.clone()
    }
}

/// `record` as accepted at `at` by `by`.
fn accepted(record: &InvitationRecord, by: Uuid, at: OffsetDateTime) -> InvitationRecord {
    InvitationRecord {
        accepted_at: Some(at),
        accepted_by_user_id: Some(by),
        updated_at: at,
        ..record.clone()
    }
}

/// The job `new`'s notice should be queued as: pending, due at the invitation's creation.
fn job_of(new: &NewInvitation) -> EmailRecord {
    let notice = new.notice.as_ref().expect("the invitation has a notice");
    EmailRecord {
        id: notice.id,
        challenge_id: None,
        to_email: notice.to_email.clone(),
        template: notice.template.clone(),
        template_data: notice.template_data.clone(),
        status: EmailStatus::Pending,
        attempt_count: 0,
        next_attempt_at: new.created_at,
        processing_started_at: None,
        last_error: None,
        sent_at: None,
        created_at: new.created_at,
    }
}

/// An invitation event about `id` and an audit row: what a write's effects could be.
fn effects_about(kind: EventType, id: Uuid) -> Effects {
    Effects::none()
        .event(NewEvent::new(
            Uuid::new_v4(),
            kind,
            now(),
            serde_json::json!({ "invitation_id": id.to_string() }),
        ))
        .audit(audit_at(
            AuditAction::UserEnabled,
            None,
            None,
            Some("invitation@example.com"),
            now(),
        ))
}

/// Creates a user named `name` whose email is `email`.
async fn create_user_with_email(store: &dyn Store, name: &str, email: &str) -> NewUser {
    let mut user = new_user(name);
    user.email = email.to_owned();
    store
        .create_user(user.clone(), Effects::none())
        .await
        .expect("create user");
    user
}

/// Creates `new` at its creation time with `effects`.
async fn create(store: &dyn Store, new: &NewInvitation, effects: Effects) -> Invited {
    store
        .create_invitation(new.clone(), new.created_at, effects)
        .await
        .expect("create invitation")
}

/// Creates `new` at its creation time, without effects, which must succeed.
async fn invite(store: &dyn Store, new: &NewInvitation) -> InvitationRecord {
    match create(store, new, Effects::none()).await {
        Invited::Created(record) => record,
        other => panic!("expected Created, got {other:?}"),
    }
}

async fn stored(store: &dyn Store, id: Uuid) -> StoredInvitation {
    store
        .find_invitation(id)
        .await
        .expect("find invitation")
        .expect("invitation exists")
}

async fn record(store: &dyn Store, id: Uuid) -> InvitationRecord {
    stored(store, id).await.invitation
}

async fn invitations(store: &dyn Store, organization_id: Uuid) -> Vec<InvitationRecord> {
    store
        .list_invitations(organization_id)
        .await
        .expect("list invitations")
}

/// What the invitation writes may change, for checking that a refusal changed nothing.
#[derive(Debug, PartialEq)]
struct Snapshot {
    invitations: Vec<Vec<InvitationRecord>>,
    members: Vec<Vec<MemberRecord>>,
    emails: Vec<EmailRecord>,
    events: usize,
    audit: usize,
}

async fn snapshot(store: &dyn Store, organizations: &[Uuid]) -> Snapshot {
    let mut snapshot = Snapshot {
        invitations: Vec::new(),
        members: Vec::new(),
        emails: all_emails(store).await,
        events: all_events(store).await.len(),
        audit: all_audit(store).await.len(),
    };
    for &id in organizations {
        snapshot.invitations.push(invitations(store, id).await);
        snapshot
            .members
            .push(store.list_members(id).await.expect("list members"));
    }
    snapshot
}

/// What effects closures were called with.
type Seen<T> = Arc<Mutex<Vec<T>>>;

fn seen<T>() -> Seen<T> {
    Arc::new(Mutex::new(Vec::new()))
}

fn calls<T: Clone>(seen: &Seen<T>) -> Vec<T> {
    seen.lock().expect("lock").clone()
}

/// [`RevokeEffects`] of one event that record the revoked record in `seen`.
fn revoke_recording(seen: &Seen<InvitationRecord>) -> RevokeEffects {
    let seen = Arc::clone(seen);
    Box::new(move |record| {
        seen.lock().expect("lock").push(record.clone());
        effects_about(EventType::InvitationRevoked, record.id)
    })
}

/// [`ResendEffects`] of one event that record the revoked and created records in `seen`.
fn resend_recording(seen: &Seen<(InvitationRecord, InvitationRecord)>) -> ResendEffects {
    let seen = Arc::clone(seen);
    Box::new(move |revoked, created| {
        seen.lock()
            .expect("lock")
            .push((revoked.clone(), created.clone()));
        effects_about(EventType::InvitationCreated, created.id)
    })
}

/// [`AcceptEffects`] of one event that record the accepted invitation and membership.
fn accept_recording(seen: &Seen<(InvitationRecord, MembershipRecord)>) -> AcceptEffects {
    let seen = Arc::clone(seen);
    Box::new(move |invitation, membership| {
        seen.lock()
            .expect("lock")
            .push((invitation.clone(), membership.clone()));
        effects_about(EventType::InvitationAccepted, invitation.id)
    })
}

async fn accept(
    store: &dyn Store,
    token_hash: &str,
    user_id: Uuid,
    at: OffsetDateTime,
    seen: &Seen<(InvitationRecord, MembershipRecord)>,
) -> Accepted {
    store
        .accept_invitation(token_hash, user_id, at, accept_recording(seen))
        .await
        .expect("accept invitation")
}

/// Accepts without effects (a case's setup).
async fn accept_quietly(
    store: &dyn Store,
    token_hash: &str,
    user_id: Uuid,
    at: OffsetDateTime,
) -> Accepted {
    store
        .accept_invitation(token_hash, user_id, at, Box::new(|_, _| Effects::none()))
        .await
        .expect("accept invitation")
}

/// `create_invitation` inserts the invitation as given (pending, its metadata object intact),
/// queues its notice as an email job due at its creation and commits its effects; it is found
/// by id and by token hash, with its organization and token hash, and listed newest first
/// (ties by id, descending). Without a notice no email is queued.
pub async fn create_invitation_round_trips_and_queues_its_email(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let org = alice.organization.id;
    let mut first = invitation(org, "new@example.com", now() - Duration::hours(1));
    first.role = OrgRole::Admin;
    first.invited_by_user_id = Some(alice.id);

    let got = create(
        store,
        &first,
        effects_about(EventType::InvitationCreated, first.id),
    )
    .await;
    let created = record_of(&first);
    assert_eq!(got, Invited::Created(created.clone()));
    assert_eq!(created.status(now()), InvitationStatus::Pending);
    assert!(created.is_active());
    assert_eq!(created.metadata, metadata());
    assert!(created.metadata.is_object());

    let organization = store
        .find_organization(org)
        .await
        .expect("find organization")
        .expect("organization exists");
    let expected = StoredInvitation {
        invitation: created.clone(),
        organization,
        token_hash: first.token_hash.clone(),
    };
    assert_eq!(stored(store, first.id).await, expected);
    assert_eq!(
        store
            .find_invitation_by_token(&first.token_hash)
            .await
            .expect("find by token"),
        Some(expected)
    );
    assert_eq!(store.find_invitation(Uuid::new_v4()).await.unwrap(), None);
    assert_eq!(
        store.find_invitation_by_token(&token_hash()).await.unwrap(),
        None
    );
    assert_eq!(
        invitations(store, org).await,
        std::slice::from_ref(&created)
    );
    assert_eq!(invitations(store, Uuid::new_v4()).await, []);
    assert_eq!(all_emails(store).await, [job_of(&first)]);
    assert_effects(store, 1, 1, "an invitation created").await;

    // Without a notice or effects: nothing queued, nothing committed but the invitation. Two
    // created at the same instant list by id, descending, before the older one.
    let at = now() + us(1);
    let mut quiet = [
        invitation(org, "quiet1@example.com", at),
        invitation(org, "quiet2@example.com", at),
    ];
    for new in &mut quiet {
        new.notice = None;
        new.metadata = serde_json::json!({});
        invite(store, new).await;
    }
    quiet.sort_by_key(|new| std::cmp::Reverse(new.id));
    let mut expected: Vec<_> = quiet.iter().map(record_of).collect();
    expected.push(created);
    assert_eq!(invitations(store, org).await, expected);
    assert_eq!(
        record(store, quiet[0].id).await.metadata,
        serde_json::json!({})
    );
    assert_eq!(all_emails(store).await.len(), 1, "no job without a notice");
    assert_effects(store, 1, 1, "invitations without effects").await;
}

/// `create_invitation`'s refusals, in order: an unknown organization is `NotFound`; a
/// member's email (in any case) is `AlreadyMember`, also when an active invitation for it
/// exists; a live active invitation for the email (in any case) is `AlreadyPending`. None
/// changes anything: no invitation, no email, no effects.
pub async fn create_invitation_refusals_come_in_order_and_change_nothing(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let bob = create_user(store, "bob").await;
    let carol = create_user(store, "carol").await;
    let org = alice.organization.id;
    let day = now() - Duration::days(1);
    join(store, org, bob.id, OrgRole::Member, day).await;
    // Carol was invited, then added directly: her invitation is still active.
    invite(store, &invitation(org, &carol.email, day)).await;
    join(store, org, carol.id, OrgRole::Member, day).await;
    invite(store, &invitation(org, "dave@example.com", day)).await;
    let orgs = [org, bob.organization.id];
    let before = snapshot(store, &orgs).await;

    let unknown = invitation(Uuid::new_v4(), "dave@example.com", now());
    assert_not_found(
        store
            .create_invitation(
                unknown.clone(),
                now(),
                effects_about(EventType::InvitationCreated, unknown.id),
            )
            .await,
    );
    let refusals = [
        ("BOB@Example.com", Invited::AlreadyMember),
        ("alice@example.com", Invited::AlreadyMember),
        (carol.email.as_str(), Invited::AlreadyMember),
        ("dave@example.com", Invited::AlreadyPending),
        ("Dave@EXAMPLE.com", Invited::AlreadyPending),
    ];
    for (email, refused) in refusals {
        let new = invitation(org, email, now());
        let got = create(
            store,
            &new,
            effects_about(EventType::InvitationCreated, new.id),
        )
        .await;
        assert_eq!(got, refused, "inviting {email}");
        assert_eq!(store.find_invitation(new.id).await.unwrap(), None);
        assert_eq!(
            store
                .find_invitation_by_token(&new.token_hash)
                .await
                .unwrap(),
            None
        );
    }
    assert_eq!(snapshot(store, &orgs).await, before);

    // Another organization is not blocked by this one's invitation or members.
    for email in ["dave@example.com", "bob2@example.com"] {
        invite(store, &invitation(bob.organization.id, email, now())).await;
    }
}

/// An active invitation that has expired (at `expires_at` exactly) does not block a new one:
/// `create_invitation` revokes it (`revoked_at = now`, no revoker) and creates the new one; one
/// still valid a microsecond longer does block. Accepted and revoked invitations never block.
pub async fn create_invitation_revokes_an_expired_one_and_ignores_closed_ones(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let gina = create_user(store, "gina").await;
    let org = alice.organization.id;

    let expired = invitation(org, "erin@example.com", now() - TTL);
    let expired = invite(store, &expired).await;
    assert_eq!(expired.status(now()), InvitationStatus::Expired);
    let still = invitation(org, "frank@example.com", now() - TTL + us(1));
    let still = invite(store, &still).await;
    let before = snapshot(store, &[org]).await;
    assert_eq!(
        create(
            store,
            &invitation(org, "frank@example.com", now()),
            Effects::none()
        )
        .await,
        Invited::AlreadyPending
    );
    assert_eq!(snapshot(store, &[org]).await, before);

    let again = invitation(org, "Erin@Example.com", now());
    let created = create(
        store,
        &again,
        effects_about(EventType::InvitationCreated, again.id),
    )
    .await;
    assert_eq!(created, Invited::Created(record_of(&again)));
    let auto = revoked(&expired, None, now());
    assert_eq!(record(store, expired.id).await, auto);
    assert_eq!(auto.status(now()), InvitationStatus::Revoked);
    assert_eq!(
        invitations(store, org).await,
        [record_of(&again), still.clone(), auto]
    );
    assert_effects(store, 1, 1, "the new invitation (the revocation has none)").await;

    // Accepted (the member since removed) and revoked invitations do not block.
    let day = now() - Duration::days(1);
    let to_gina = invitation(org, &gina.email, day);
    invite(store, &to_gina).await;
    let got = accept_quietly(store, &to_gina.token_hash, gina.id, day).await;
    assert!(matches!(got, Accepted::Accepted { .. }), "{got:?}");
    store
        .remove_membership(org, gina.id, true, Box::new(|_| Effects::none()))
        .await
        .expect("remove gina");
    let to_hank = invitation(org, "hank@example.com", day);
    invite(store, &to_hank).await;
    let got = store
        .revoke_invitation(org, to_hank.id, None, day, Box::new(|_| Effects::none()))
        .await
        .expect("revoke");
    assert!(matches!(got, Revoked::Revoked(_)), "{got:?}");
    for email in [gina.email.as_str(), "hank@example.com"] {
        let new = invitation(org, email, now());
        assert_eq!(
            create(store, &new, Effects::none()).await,
            Invited::Created(record_of(&new)),
            "inviting {email} again"
        );
    }
}

/// `revoke_invitation` revokes a pending invitation (`revoked_at = now`, the revoker, or none)
/// and commits the effects built from the revoked record. An accepted, revoked or expired one
/// (at `expires_at` exactly) is `NotPending` with its status; an unknown id, or one of another
/// organization, is `NotFound`. Refusals change nothing and build no effects.
pub async fn revoke_invitation_revokes_a_pending_one_only(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let bob = create_user(store, "bob").await;
    let org = alice.organization.id;
    let day = now() - Duration::days(1);
    let pending = invite(store, &invitation(org, "new@example.com", day)).await;
    let last = invite(
        store,
        &invitation(org, "last@example.com", now() - TTL + us(1)),
    )
    .await;
    let expired = invite(store, &invitation(org, "old@example.com", now() - TTL)).await;
    let to_bob = invitation(org, &bob.email, day);
    invite(store, &to_bob).await;
    let got = accept_quietly(store, &to_bob.token_hash, bob.id, day).await;
    assert!(matches!(got, Accepted::Accepted { .. }), "{got:?}");
    let revocations = seen();

    let got = store
        .revoke_invitation(
            org,
            pending.id,
            Some(alice.id),
            now(),
            revoke_recording(&revocations),
        )
        .await
        .expect("revoke");
    let expected = revoked(&pending, Some(alice.id), now());
    assert_eq!(got, Revoked::Revoked(expected.clone()));
    assert_eq!(calls(&revocations), std::slice::from_ref(&expected));
    assert_eq!(record(store, pending.id).await, expected);
    assert_effects(store, 1, 1, "a revocation").await;

    // Valid for one more microsecond: still pending, revoked by nobody in particular.
    let got = store
        .revoke_invitation(org, last.id, None, now(), revoke_recording(&revocations))
        .await
        .expect("revoke");
    assert_eq!(got, Revoked::Revoked(revoked(&last, None, now())));
    assert_eq!(calls(&revocations).len(), 2);
    assert_effects(store, 2, 2, "two revocations").await;

    let orgs = [org, bob.organization.id];
    let before = snapshot(store, &orgs).await;
    let refusals = [
        (pending.id, InvitationStatus::Revoked),
        (expired.id, InvitationStatus::Expired),
        (to_bob.id, InvitationStatus::Accepted),
    ];
    for (id, status) in refusals {
        let got = store
            .revoke_invitation(
                org,
                id,
                Some(alice.id),
                now(),
                revoke_recording(&revocations),
            )
            .await
            .expect("revoke");
        assert_eq!(got, Revoked::NotPending(status));
    }
    assert_eq!(snapshot(store, &orgs).await, before);
    let other = invite(store, &invitation(org, "other@example.com", day)).await;
    let before_other = snapshot(store, &orgs).await;
    for (organization, id) in [
        (bob.organization.id, other.id),
        (Uuid::new_v4(), other.id),
        (org, Uuid::new_v4()),
    ] {
        assert_not_found(
            store
                .revoke_invitation(
                    organization,
                    id,
                    None,
                    now(),
                    revoke_recording(&revocations),
                )
                .await,
        );
    }
    assert_eq!(snapshot(store, &orgs).await, before_other);
    assert_eq!(record(store, other.id).await, other);
    assert_eq!(calls(&revocations).len(), 2, "refusals build no effects");
}

/// `resend_invitation` revokes the invitation (`revoked_at = now`, the revoker) and inserts
/// the replacement with its email job, committing the effects built from both; an expired
/// one may be resent. An accepted or revoked one is `NotResendable` (before a member's email
/// is considered), one whose email has become a member's is `AlreadyMember`, an unknown id or
/// one of another organization `NotFound`. Refusals change nothing and build no effects.
pub async fn resend_invitation_replaces_the_invitation(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let bob = create_user(store, "bob").await;
    let kim = create_user(store, "kim").await;
    let org = alice.organization.id;
    let day = now() - Duration::days(1);
    let mut first = invitation(org, "new@example.com", day);
    first.role = OrgRole::Admin;
    first.invited_by_user_id = Some(alice.id);
    let old = invite(store, &first).await;
    let resends = seen();

    let second = replacement_of(&first, now());
    let got = store
        .resend_invitation(
            org,
            first.id,
            Some(bob.id),
            second.clone(),
            now(),
            resend_recording(&resends),
        )
        .await
        .expect("resend");
    let expected_revoked = revoked(&old, Some(bob.id), now());
    let expected_created = record_of(&second);
    assert_eq!(
        got,
        Resent::Resent {
            revoked: expected_revoked.clone(),
            created: expected_created.clone(),
        }
    );
    assert_eq!(
        calls(&resends),
        [(expected_revoked.clone(), expected_created.clone())]
    );
    assert_eq!(
        invitations(store, org).await,
        [expected_created.clone(), expected_revoked.clone()]
    );
    assert_eq!(
        store
            .find_invitation_by_token(&second.token_hash)
            .await
            .unwrap()
            .map(|s| s.invitation),
        Some(expected_created)
    );
    assert_eq!(
        store
            .find_invitation_by_token(&first.token_hash)
            .await
            .unwrap()
            .map(|s| s.invitation),
        Some(expected_revoked)
    );
    assert_eq!(all_emails(store).await, [job_of(&first), job_of(&second)]);
    assert_effects(store, 1, 1, "a resend").await;

    // An expired invitation may be resent.
    let stale = invitation(org, "stale@example.com", now() - TTL);
    invite(store, &stale).await;
    let fresh = replacement_of(&stale, now());
    let got = store
        .resend_invitation(
            org,
            stale.id,
            None,
            fresh.clone(),
            now(),
            resend_recording(&resends),
        )
        .await
        .expect("resend an expired one");
    assert_eq!(
        got,
        Resent::Resent {
            revoked: revoked(&record_of(&stale), None, now()),
            created: record_of(&fresh),
        }
    );
    assert_effects(store, 2, 2, "two resends").await;

    // Accepted by Bob, who is therefore a member: not resendable comes first.
    let to_bob = invitation(org, &bob.email, day);
    invite(store, &to_bob).await;
    let got = accept_quietly(store, &to_bob.token_hash, bob.id, day).await;
    assert!(matches!(got, Accepted::Accepted { .. }), "{got:?}");
    // Kim was invited, then added directly.
    let to_kim = invitation(org, &kim.email, day);
    invite(store, &to_kim).await;
    join(store, org, kim.id, OrgRole::Member, day).await;
    let orgs = [org, bob.organization.id];
    let before = snapshot(store, &orgs).await;
    let refusals = [
        (&first, Resent::NotResendable(InvitationStatus::Revoked)),
        (&to_bob, Resent::NotResendable(InvitationStatus::Accepted)),
        (&to_kim, Resent::AlreadyMember),
    ];
    for (old, refused) in refusals {
        let got = store
            .resend_invitation(
                org,
                old.id,
                Some(alice.id),
                replacement_of(old, now()),
                now(),
                resend_recording(&resends),
            )
            .await
            .expect("resend");
        assert_eq!(got, refused, "resending to {}", old.email);
    }
    assert_eq!(snapshot(store, &orgs).await, before);
    let pending = invitation(org, "pending@example.com", day);
    invite(store, &pending).await;
    let before_pending = snapshot(store, &orgs).await;
    for (organization, id) in [(bob.organization.id, pending.id), (org, Uuid::new_v4())] {
        let mut replacement = replacement_of(&pending, now());
        replacement.organization_id = organization;
        assert_not_found(
            store
                .resend_invitation(
                    organization,
                    id,
                    None,
                    replacement,
                    now(),
                    resend_recording(&resends),
                )
                .await,
        );
    }
    assert_eq!(snapshot(store, &orgs).await, before_pending);
    assert_eq!(calls(&resends).len(), 2, "refusals build no effects");
}

/// `accept_invitation` adds the user as a member with the invitation's role (`created_at =
/// now`) and marks the invitation accepted by them, committing the effects built from both;
/// the emails compare ignoring case. Accepting again is `AlreadyAccepted` with the membership
/// (or none, once removed), even after the expiry, and changes nothing.
pub async fn accept_invitation_adds_the_membership_with_the_invitations_role(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let bob = create_user_with_email(store, "bob", "Bob@Example.com").await;
    let org = alice.organization.id;
    let mut to_bob = invitation(org, "bob@example.com", now() - Duration::days(1));
    to_bob.role = OrgRole::Admin;
    to_bob.invited_by_user_id = Some(alice.id);
    let pending = invite(store, &to_bob).await;
    let acceptances = seen();

    let got = accept(store, &to_bob.token_hash, bob.id, now(), &acceptances).await;
    let invitation = accepted(&pending, bob.id, now());
    let member = membership(org, bob.id, OrgRole::Admin, now());
    assert_eq!(
        got,
        Accepted::Accepted {
            invitation: invitation.clone(),
            membership: member.clone(),
        }
    );
    assert_eq!(calls(&acceptances), [(invitation.clone(), member.clone())]);
    assert_eq!(record(store, to_bob.id).await, invitation);
    assert_eq!(invitation.status(now()), InvitationStatus::Accepted);
    assert_eq!(
        store
            .find_membership(org, bob.id)
            .await
            .expect("find membership")
            .map(|m| m.membership),
        Some(member.clone())
    );
    assert_effects(store, 1, 1, "an acceptance").await;

    // Again, and again after the expiry: already accepted, nothing changes.
    let before = snapshot(store, &[org]).await;
    for at in [now() + us(1), now() + TTL * 2] {
        let got = accept(store, &to_bob.token_hash, bob.id, at, &acceptances).await;
        assert_eq!(
            got,
            Accepted::AlreadyAccepted {
                invitation: invitation.clone(),
                membership: Some(member.clone()),
            }
        );
    }
    assert_eq!(snapshot(store, &[org]).await, before);
    // Bob left: still already accepted, and not a member again.
    store
        .remove_membership(org, bob.id, true, Box::new(|_| Effects::none()))
        .await
        .expect("remove bob");
    let got = accept(store, &to_bob.token_hash, bob.id, now(), &acceptances).await;
    assert_eq!(
        got,
        Accepted::AlreadyAccepted {
            invitation,
            membership: None,
        }
    );
    assert_eq!(
        store.find_membership(org, bob.id).await.expect("find"),
        None
    );
    assert_eq!(calls(&acceptances).len(), 1, "no effects built again");
    assert_effects(store, 1, 1, "acceptances of an accepted invitation").await;
}

/// `accept_invitation`'s refusals, in order: an unknown token or user is `NotFound`; accepted
/// by someone else, revoked or expired (at `expires_at` exactly) is `NotPending`, before the
/// email is compared; another email is `EmailMismatch`, before membership is considered; a
/// member already is `AlreadyMember` and the invitation stays pending. None changes anything
/// or builds effects.
pub async fn accept_invitation_refusals_come_in_order_and_change_nothing(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let erin = create_user(store, "erin").await;
    let frank = create_user(store, "frank").await;
    let carol = create_user(store, "carol").await;
    let org = alice.organization.id;
    let day = now() - Duration::days(1);
    let to_erin = invitation(org, &erin.email, day);
    invite(store, &to_erin).await;
    let got = accept_quietly(store, &to_erin.token_hash, erin.id, day).await;
    assert!(matches!(got, Accepted::Accepted { .. }), "{got:?}");
    let revoked_one = invitation(org, &carol.email, day);
    invite(store, &revoked_one).await;
    store
        .revoke_invitation(
            org,
            revoked_one.id,
            None,
            day,
            Box::new(|_| Effects::none()),
        )
        .await
        .expect("revoke");
    let expired = invitation(org, "CAROL@example.com", now() - TTL);
    store
        .create_invitation(expired.clone(), now() - TTL, Effects::none())
        .await
        .expect("create");
    // Frank was invited, then added directly.
    let to_frank = invitation(org, &frank.email, day);
    let pending_frank = invite(store, &to_frank).await;
    join(store, org, frank.id, OrgRole::Member, day).await;
    let acceptances = seen();
    let orgs = [org, carol.organization.id];
    let before = snapshot(store, &orgs).await;

    let not_found = [
        (token_hash(), carol.id),
        (to_frank.token_hash.clone(), Uuid::new_v4()),
        (to_erin.token_hash.clone(), Uuid::new_v4()),
    ];
    for (token, user) in not_found {
        assert_not_found(
            store
                .accept_invitation(&token, user, now(), accept_recording(&acceptances))
                .await,
        );
    }
    let refusals = [
        // Accepted by Erin; Carol's email does not match either.
        (
            &to_erin,
            carol.id,
            Accepted::NotPending(InvitationStatus::Accepted),
        ),
        (
            &revoked_one,
            carol.id,
            Accepted::NotPending(InvitationStatus::Revoked),
        ),
        (
            &expired,
            carol.id,
            Accepted::NotPending(InvitationStatus::Expired),
        ),
        // Alice is a member too, but not Frank.
        (&to_frank, alice.id, Accepted::EmailMismatch),
        (&to_frank, carol.id, Accepted::EmailMismatch),
        (&to_frank, frank.id, Accepted::AlreadyMember),
    ];
    for (new, user, refused) in refusals {
        let got = accept(store, &new.token_hash, user, now(), &acceptances).await;
        assert_eq!(
            got, refused,
            "{user} accepting the invitation to {}",
            new.email
        );
    }
    assert_eq!(snapshot(store, &orgs).await, before);
    assert_eq!(record(store, to_frank.id).await, pending_frank);
    assert_eq!(pending_frank.status(now()), InvitationStatus::Pending);
    assert_eq!(calls(&acceptances), [], "refusals build no effects");
}

/// Deleting an organization deletes its invitations (other organizations' stay); deleting a
/// user leaves the invitations they sent, accepted or revoked, without them.
pub async fn deleting_an_organization_or_a_user_keeps_invitations_consistent(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let bob = create_user(store, "bob").await;
    let carol = create_user(store, "carol").await;
    let dave = create_user(store, "dave").await;
    let org = alice.organization.id;
    let day = now() - Duration::days(1);

    let acme = team("Acme");
    create_team(store, &acme, alice.id, day).await;
    let in_acme = invitation(acme.id, "new@example.com", day);
    invite(store, &in_acme).await;
    let kept = invitation(org, "new@example.com", day);
    let kept = invite(store, &kept).await;
    store
        .delete_organization(acme.id, Effects::none())
        .await
        .expect("delete organization");
    assert_eq!(store.find_invitation(in_acme.id).await.unwrap(), None);
    assert_eq!(
        store
            .find_invitation_by_token(&in_acme.token_hash)
            .await
            .unwrap(),
        None
    );
    assert_eq!(invitations(store, acme.id).await, []);
    assert_eq!(invitations(store, org).await, std::slice::from_ref(&kept));

    // Bob sent one that Carol accepted, and one that Dave revoked.
    let mut to_carol = invitation(org, &carol.email, day);
    to_carol.invited_by_user_id = Some(bob.id);
    invite(store, &to_carol).await;
    let got = accept_quietly(store, &to_carol.token_hash, carol.id, day).await;
    let Accepted::Accepted {
        invitation: by_carol,
        ..
    } = got
    else {
        panic!("expected Accepted, got {got:?}");
    };
    let mut revoked_one = invitation(org, "gone@example.com", day);
    revoked_one.invited_by_user_id = Some(bob.id);
    invite(store, &revoked_one).await;
    let got = store
        .revoke_invitation(
            org,
            revoked_one.id,
            Some(dave.id),
            day,
            Box::new(|_| Effects::none()),
        )
        .await
        .expect("revoke");
    let Revoked::Revoked(by_dave) = got else {
        panic!("expected Revoked, got {got:?}");
    };

    for user in [&bob, &carol, &dave] {
        store
            .delete_user(user.id, Effects::none())
            .await
            .expect("delete user");
    }
    assert_eq!(
        record(store, to_carol.id).await,
        InvitationRecord {
            invited_by_user_id: None,
            accepted_by_user_id: None,
            ..by_carol
        }
    );
    assert_eq!(
        record(store, revoked_one.id).await,
        InvitationRecord {
            invited_by_user_id: None,
            revoked_by_user_id: None,
            ..by_dave
        }
    );
    assert_eq!(record(store, kept.id).await, kept);
}

/// [`RACERS`] concurrent creations for one organization and email (in several cases), over
/// several rounds: exactly one is created, the others are `AlreadyPending`, and one email is
/// queued.
pub async fn create_invitation_race_has_one_winner(store: Arc<dyn Store>) {
    for round in 0..3 {
        let owner = create_user(&*store, &format!("owner{round}")).await;
        let org = owner.organization.id;
        let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
        let tasks: Vec<_> = (0..RACERS)
            .map(|i| {
                let store = Arc::clone(&store);
                let barrier = Arc::clone(&barrier);
                let email = if i % 2 == 0 {
                    "racer@example.com"
                } else {
                    "Racer@Example.com"
                };
                let new = invitation(org, email, now());
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.create_invitation(new, now(), Effects::none()).await
                })
            })
            .collect();
        let mut created = 0;
        for task in tasks {
            match task.await.expect("task did not panic").expect("create") {
                Invited::Created(_) => created += 1,
                Invited::AlreadyPending => {}
                other => panic!("round {round}: {other:?}"),
            }
        }
        assert_eq!(created, 1, "round {round}: created");
        let listed = invitations(&*store, org).await;
        assert_eq!(listed.len(), 1, "round {round}: {listed:?}");
        assert_eq!(
            all_emails(&*store).await.len(),
            round + 1,
            "round {round}: emails"
        );
    }
}

/// Two concurrent acceptances of one invitation by its user, over several rounds: one accepts,
/// the other finds it already accepted with the one membership; effects are built once.
pub async fn accept_invitation_race_accepts_once(store: Arc<dyn Store>) {
    let owner = create_user(&*store, "owner").await;
    let org = owner.organization.id;
    for round in 0..5 {
        let user = create_user(&*store, &format!("invitee{round}")).await;
        let user_id = user.id;
        let new = invitation(org, &user.email, now() - Duration::hours(1));
        invite(&*store, &new).await;
        let acceptances = seen();
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let store = Arc::clone(&store);
                let barrier = Arc::clone(&barrier);
                let token = new.token_hash.clone();
                let effects = accept_recording(&acceptances);
                tokio::spawn(async move {
                    barrier.wait().await;
                    store
                        .accept_invitation(&token, user_id, now(), effects)
                        .await
                })
            })
            .collect();
        let mut got = Vec::new();
        for task in tasks {
            got.push(task.await.expect("task did not panic").expect("accept"));
        }
        got.sort_by_key(|a| !matches!(a, Accepted::Accepted { .. }));
        let [Accepted::Accepted {
            invitation,
            membership,
        }, Accepted::AlreadyAccepted {
            invitation: again,
            membership: found,
        }] = &got[..]
        else {
            panic!("round {round}: {got:?}");
        };
        assert_eq!(invitation, again, "round {round}");
        assert_eq!(found.as_ref(), Some(membership), "round {round}");
        assert_eq!(calls(&acceptances).len(), 1, "round {round}: effects");
        let memberships = store
            .list_user_memberships(user.id)
            .await
            .expect("memberships");
        assert_eq!(
            memberships.len(),
            2,
            "round {round}: own and the invited one"
        );
    }
}

/// A revocation and an acceptance of one invitation at once, over several rounds: exactly one
/// wins, the other is `NotPending` with the winner's status, and the membership exists
/// exactly when the acceptance won.
pub async fn revoke_and_accept_race_has_one_winner(store: Arc<dyn Store>) {
    let owner = create_user(&*store, "owner").await;
    let org = owner.organization.id;
    for round in 0..5 {
        let user = create_user(&*store, &format!("invitee{round}")).await;
        let (user_id, owner_id) = (user.id, owner.id);
        let new = invitation(org, &user.email, now() - Duration::hours(1));
        let id = new.id;
        invite(&*store, &new).await;
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let revoking = {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .revoke_invitation(
                        org,
                        id,
                        Some(owner_id),
                        now(),
                        Box::new(|_| Effects::none()),
                    )
                    .await
            })
        };
        let accepting = {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            let token = new.token_hash.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .accept_invitation(&token, user_id, now(), Box::new(|_, _| Effects::none()))
                    .await
            })
        };
        let revocation = revoking.await.expect("task did not panic").expect("revoke");
        let acceptance = accepting
            .await
            .expect("task did not panic")
            .expect("accept");
        let member = store
            .find_membership(org, user.id)
            .await
            .expect("find membership")
            .is_some();
        let status = record(&*store, id).await.status(now());
        match (&revocation, &acceptance) {
            (Revoked::Revoked(_), Accepted::NotPending(InvitationStatus::Revoked)) => {
                assert!(!member, "round {round}: a member after the revocation won");
                assert_eq!(status, InvitationStatus::Revoked);
            }
            (Revoked::NotPending(InvitationStatus::Accepted), Accepted::Accepted { .. }) => {
                assert!(member, "round {round}: no member after the acceptance won");
                assert_eq!(status, InvitationStatus::Accepted);
            }
            other => panic!("round {round}: {other:?}"),
        }
    }
}

/// `signup_with_invitation` creates the account and accepts the invitation for it in one
/// write: with no initial organization the user's only membership is the invitation's (with
/// its role); with one, the user owns it too. The user's effects and the acceptance's are
/// committed, the latter built from what was written.
pub async fn signup_with_invitation_creates_the_account_and_accepts(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let org = alice.organization.id;
    for (name, with_initial) in [("bob", false), ("carol", true)] {
        let mut new = invitation(
            org,
            &format!("{name}@example.com"),
            now() - Duration::days(1),
        );
        new.role = OrgRole::Admin;
        let pending = invite(store, &new).await;
        let acceptances = seen();
        let user = new_user(name);
        assert_eq!(user.email, new.email);
        let got = store
            .signup_with_invitation(
                &new.token_hash,
                user.clone(),
                with_initial,
                now(),
                effects_about(EventType::UserCreated, user.id),
                accept_recording(&acceptances),
            )
            .await
            .expect("signup with invitation");
        let invitation = accepted(&pending, user.id, now());
        let member = membership(org, user.id, OrgRole::Admin, now());
        assert_eq!(
            got,
            Accepted::Accepted {
                invitation: invitation.clone(),
                membership: member.clone(),
            }
        );
        assert_eq!(calls(&acceptances), [(invitation.clone(), member)]);
        assert_eq!(record(store, new.id).await, invitation);
        let found = store
            .find_user_by_email(&user.email)
            .await
            .expect("find user")
            .expect("the user exists");
        assert_eq!(found.id, user.id);
        let orgs: Vec<(Uuid, OrgRole)> = store
            .list_user_memberships(user.id)
            .await
            .expect("memberships")
            .iter()
            .map(|m| (m.organization.id, m.membership.role))
            .collect();
        if with_initial {
            assert_eq!(orgs.len(), 2, "{orgs:?}");
            assert!(orgs.contains(&(user.organization.id, OrgRole::Owner)));
            assert!(orgs.contains(&(org, OrgRole::Admin)));
        } else {
            assert_eq!(orgs, [(org, OrgRole::Admin)]);
            assert_eq!(
                store
                    .find_organization(user.organization.id)
                    .await
                    .expect("find"),
                None
            );
        }
    }
    assert_effects(store, 4, 4, "two signups with their acceptances").await;
}

/// `signup_with_invitation`'s refusals, in order, change nothing: an unknown token is
/// `NotFound`; an invitation that is not pending (revoked, expired at `expires_at` exactly,
/// accepted) is `NotPending`; another email is `EmailMismatch`; a taken email is
/// `Conflict(Email)` and the invitation stays pending.
pub async fn signup_with_invitation_refusals_change_nothing(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let org = alice.organization.id;
    let taken = create_user_with_email(store, "taken", "taken@example.com").await;
    let start = now() - Duration::days(1);
    let pending = invitation(org, "dave@example.com", start);
    invite(store, &pending).await;
    let revoked_one = invitation(org, "erin@example.com", start);
    invite(store, &revoked_one).await;
    store
        .revoke_invitation(
            org,
            revoked_one.id,
            None,
            start,
            Box::new(|_| Effects::none()),
        )
        .await
        .expect("revoke");
    let for_taken = invitation(org, "taken@example.com", start);
    invite(store, &for_taken).await;
    let before = snapshot(store, &[org]).await;
    let signup = |token: String, user: NewUser, at: OffsetDateTime| async move {
        store
            .signup_with_invitation(
                &token,
                user,
                true,
                at,
                effects_about(EventType::UserCreated, Uuid::new_v4()),
                Box::new(|_, _| effects_about(EventType::InvitationAccepted, Uuid::new_v4())),
            )
            .await
    };
    let dave = || {
        let mut u = new_user("dave");
        u.email = "dave@example.com".into();
        u
    };
    assert!(matches!(
        signup(token_hash(), dave(), now()).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        signup(revoked_one.token_hash.clone(), new_user("erin"), now())
            .await
            .ok(),
        Some(Accepted::NotPending(InvitationStatus::Revoked))
    );
    assert_eq!(
        signup(pending.token_hash.clone(), dave(), pending.expires_at)
            .await
            .ok(),
        Some(Accepted::NotPending(InvitationStatus::Expired))
    );
    assert_eq!(
        signup(pending.token_hash.clone(), new_user("mallory"), now())
            .await
            .ok(),
        Some(Accepted::EmailMismatch)
    );
    let mut again = new_user("taken2");
    again.email = taken.email.clone();
    assert!(matches!(
        signup(for_taken.token_hash.clone(), again, now()).await,
        Err(StoreError::Conflict(UniqueKey::Email))
    ));
    assert_eq!(snapshot(store, &[org]).await, before);
    assert_eq!(
        record(store, for_taken.id).await.status(now()),
        InvitationStatus::Pending
    );
    assert_eq!(
        store
            .find_user_by_email("dave@example.com")
            .await
            .expect("find"),
        None
    );
}

/// The types of the outbox's events, sorted.
async fn event_kinds(store: &dyn Store) -> Vec<String> {
    let mut kinds: Vec<String> = all_events(store)
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    kinds.sort();
    kinds
}

/// A verified signup made for `invitation` (its email, its id), created at `at`.
fn invited_signup(new: &NewInvitation, at: OffsetDateTime) -> NewChallenge {
    NewChallenge {
        id: Uuid::new_v4(),
        purpose: Purpose::Signup,
        email: new.email.clone(),
        action: PendingAction::Signup {
            email: new.email.clone(),
            password_hash: "$argon2id$invited".to_owned(),
            invitation_id: Some(new.id),
        },
        max_attempts: 5,
        max_resends: 3,
        created_at: at,
        expires_at: at + Duration::minutes(30),
        email_job_id: Uuid::new_v4(),
    }
}

/// The completion of an invited signup for `user`: `user.created` first, then the acceptance's
/// effects (recorded in `seen`).
fn invited_completion(
    user: &NewSignupUser,
    with_initial_organization: bool,
    seen: &Seen<(InvitationRecord, MembershipRecord)>,
) -> Completion {
    let created = effects_about(EventType::UserCreated, user.id);
    Completion {
        new_user: Some(user.clone()),
        notice: None,
        effects: Box::new(move |_| created),
        invitation: Some(InvitationJoin {
            with_initial_organization,
            effects: accept_recording(seen),
        }),
    }
}

/// A signup challenge made for an invitation stores the invitation's id, and completing it
/// does what `signup_with_invitation` does, in the challenge's transaction: the account (with
/// an initial organization only when asked), the membership with the invitation's role, the
/// invitation accepted by the new user, the challenge consumed and its pending row gone;
/// `joined` is the invitation's organization; both the completion's effects and the
/// acceptance's are committed.
pub async fn an_invited_signup_challenge_creates_the_account_and_accepts(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let org = alice.organization.id;
    for (name, with_initial) in [("bob", false), ("carol", true)] {
        let mut new = invitation(
            org,
            &format!("{name}@example.com"),
            now() - Duration::days(1),
        );
        new.role = OrgRole::Admin;
        let pending = invite(store, &new).await;
        let challenge = invited_signup(&new, now() - Duration::minutes(1));
        store
            .create_challenge(challenge.clone())
            .await
            .expect("create challenge");
        let found = store
            .find_challenge(challenge.id)
            .await
            .expect("find challenge")
            .expect("the challenge exists");
        assert_eq!(found.action, challenge.action);
        let events_before = event_kinds(store).await;
        let user = signup_user(Uuid::new_v4(), name);
        let acceptances = seen();
        let done = store
            .complete_challenge(
                challenge.id,
                now(),
                invited_completion(&user, with_initial, &acceptances),
            )
            .await
            .expect("complete");
        let Completed::Signup {
            user: created,
            joined,
        } = done
        else {
            panic!("expected a signup, got {done:?}");
        };
        assert_eq!(
            (created.id, created.email.as_str()),
            (user.id, new.email.as_str())
        );
        assert_eq!(created.password_hash.as_deref(), Some("$argon2id$invited"));
        assert_eq!(joined, Some(org));
        let invitation = accepted(&pending, user.id, now());
        let member = membership(org, user.id, OrgRole::Admin, now());
        assert_eq!(calls(&acceptances), [(invitation.clone(), member)]);
        assert_eq!(record(store, new.id).await, invitation);
        let orgs: Vec<(Uuid, OrgRole)> = store
            .list_user_memberships(user.id)
            .await
            .expect("memberships")
            .iter()
            .map(|m| (m.organization.id, m.membership.role))
            .collect();
        if with_initial {
            assert_eq!(orgs.len(), 2, "{orgs:?}");
            assert!(orgs.contains(&(user.organization.id, OrgRole::Owner)));
            assert!(orgs.contains(&(org, OrgRole::Admin)));
        } else {
            assert_eq!(orgs, [(org, OrgRole::Admin)]);
            assert_eq!(
                store
                    .find_organization(user.organization.id)
                    .await
                    .expect("find"),
                None
            );
        }
        let consumed = store
            .find_challenge(challenge.id)
            .await
            .expect("find challenge")
            .expect("the challenge is kept");
        assert_eq!(consumed.consumed_at, Some(now()));
        assert_eq!(
            consumed.action,
            PendingAction::Opaque,
            "the pending row is gone"
        );
        // The outbox lists ties of `created_at` in no particular order: compare counts.
        let mut kinds = event_kinds(store).await;
        for kind in &events_before {
            let at = kinds
                .iter()
                .position(|k| k == kind)
                .expect("no event vanished");
            kinds.remove(at);
        }
        assert_eq!(
            kinds,
            [
                EventType::InvitationAccepted.as_str(),
                EventType::UserCreated.as_str(),
            ]
        );
    }
}

/// An invited signup's completion is refused with `NotFound`, changing nothing (the challenge
/// stays live, no account, the invitation as it was), unless the invitation is pending at the
/// completion: revoked or expired meanwhile; or accepted meanwhile by an account made for the
/// same email through the link (then `Conflict(Email)`). Deleting the organization deletes
/// the invitation and the pending row with it: the challenge can no longer complete.
pub async fn an_invited_signup_challenge_needs_a_pending_invitation(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let org = alice.organization.id;
    let start = now() - Duration::days(1);
    let complete = |id: Uuid, at: OffsetDateTime, name: &'static str| async move {
        let user = signup_user(Uuid::new_v4(), name);
        store
            .complete_challenge(id, at, invited_completion(&user, true, &seen()))
            .await
    };
    let assert_unchanged = |id: Uuid, before: Snapshot, email: &'static str| async move {
        assert_eq!(snapshot(store, &[org]).await, before);
        let challenge = store
            .find_challenge(id)
            .await
            .expect("find")
            .expect("exists");
        assert_eq!(
            challenge.consumed_at, None,
            "{email}: the challenge was consumed"
        );
        assert_eq!(
            store.find_user_by_email(email).await.expect("find user"),
            None,
            "{email}: an account was created"
        );
    };

    // Revoked after the challenge started.
    let revoked = invitation(org, "rita@example.com", start);
    invite(store, &revoked).await;
    let c = invited_signup(&revoked, now() - Duration::minutes(1));
    store.create_challenge(c.clone()).await.expect("create");
    store
        .revoke_invitation(
            org,
            revoked.id,
            None,
            now() - us(1),
            Box::new(|_| Effects::none()),
        )
        .await
        .expect("revoke");
    let before = snapshot(store, &[org]).await;
    assert!(matches!(
        complete(c.id, now(), "rita").await,
        Err(StoreError::NotFound)
    ));
    assert_unchanged(c.id, before, "rita@example.com").await;

    // Expired while the challenge is live.
    let mut expiring = invitation(org, "eve@example.com", start);
    expiring.expires_at = now();
    invite(store, &expiring).await;
    let c = invited_signup(&expiring, now() - Duration::minutes(1));
    store.create_challenge(c.clone()).await.expect("create");
    let before = snapshot(store, &[org]).await;
    assert!(matches!(
        complete(c.id, now(), "eve").await,
        Err(StoreError::NotFound)
    ));
    assert_unchanged(c.id, before, "eve@example.com").await;

    // Accepted meanwhile through the link, by an account for the same email.
    let raced = invitation(org, "max@example.com", start);
    invite(store, &raced).await;
    let c = invited_signup(&raced, now() - Duration::minutes(1));
    store.create_challenge(c.clone()).await.expect("create");
    let mut max = new_user("max");
    max.email = raced.email.clone();
    store
        .signup_with_invitation(
            &raced.token_hash,
            max.clone(),
            true,
            now() - us(1),
            Effects::none(),
            Box::new(|_, _| Effects::none()),
        )
        .await
        .expect("signup through the link");
    let before = snapshot(store, &[org]).await;
    assert!(matches!(
        complete(c.id, now(), "max2").await,
        Err(StoreError::NotFound | StoreError::Conflict(UniqueKey::Email))
    ));
    assert_eq!(snapshot(store, &[org]).await, before);
    assert_eq!(
        store
            .find_challenge(c.id)
            .await
            .expect("find")
            .expect("exists")
            .consumed_at,
        None
    );

    // The organization deleted: the invitation and the pending row go with it.
    let bob = create_user(store, "bob").await;
    let doomed = invitation(bob.organization.id, "dora@example.com", start);
    invite(store, &doomed).await;
    let c = invited_signup(&doomed, now() - Duration::minutes(1));
    store.create_challenge(c.clone()).await.expect("create");
    store
        .delete_organization(bob.organization.id, Effects::none())
        .await
        .expect("delete organization");
    let found = store
        .find_challenge(c.id)
        .await
        .expect("find")
        .expect("exists");
    assert_eq!(found.action, PendingAction::Opaque);
    assert!(matches!(
        complete(c.id, now(), "dora").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store
            .find_user_by_email("dora@example.com")
            .await
            .expect("find user"),
        None
    );
}

/// An invited signup's completion racing the invitation's revocation: exactly one wins. Either
/// the invitation is revoked and no account exists (the challenge stays live), or the account
/// exists as the invitation's member and the revocation finds it accepted.
pub async fn invited_signup_completion_and_revocation_race_has_one_winner(store: Arc<dyn Store>) {
    let owner = create_user(&*store, "owner").await;
    let org = owner.organization.id;
    for round in 0..5 {
        let new = invitation(
            org,
            &format!("racer{round}@example.com"),
            now() - Duration::hours(1),
        );
        invite(&*store, &new).await;
        let challenge = invited_signup(&new, now() - Duration::minutes(1));
        store
            .create_challenge(challenge.clone())
            .await
            .expect("create challenge");
        let user = signup_user(Uuid::new_v4(), &format!("racer{round}"));
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let revoking = {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            let id = new.id;
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .revoke_invitation(org, id, None, now(), Box::new(|_| Effects::none()))
                    .await
            })
        };
        let completing = {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            let user = user.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .complete_challenge(
                        challenge.id,
                        now(),
                        invited_completion(&user, false, &seen()),
                    )
                    .await
            })
        };
        let revocation = revoking.await.expect("task did not panic").expect("revoke");
        let completion = completing.await.expect("task did not panic");
        let member = store
            .find_membership(org, user.id)
            .await
            .expect("find membership")
            .is_some();
        let status = record(&*store, new.id).await.status(now());
        match (&revocation, &completion) {
            (Revoked::Revoked(_), Err(StoreError::NotFound)) => {
                assert!(!member, "round {round}: a member after the revocation won");
                assert_eq!(status, InvitationStatus::Revoked);
                assert_eq!(
                    store
                        .find_user_by_email(&new.email)
                        .await
                        .expect("find user"),
                    None
                );
            }
            (Revoked::NotPending(InvitationStatus::Accepted), Ok(Completed::Signup { .. })) => {
                assert!(member, "round {round}: no member after the completion won");
                assert_eq!(status, InvitationStatus::Accepted);
            }
            other => panic!("round {round}: {other:?}"),
        }
    }
}

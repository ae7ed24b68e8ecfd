//! Organizations: every user's initial organization and owner membership, created with the
//! account (directly or by a signup completion) and never without it; the organization a
//! session acts in, chosen at its creation, read on every authenticated request and refresh,
//! and switched; the pinned mode, the start-up backfill, the reads, renaming, and what deleting
//! a user leaves; team organizations, memberships added, re-roled and removed, ownership
//! transferred, organizations deleted, and what that does to the sessions acting in them.
//!
//! Several memberships per user (so the default-organization order and the list orders), and
//! sessions whose membership or organization is gone, are built with the membership writes.
//! So is a user without any membership (their only organization deleted), for the backfill's
//! and `ensure_initial_organization`'s work. Not built: a user without a membership who created
//! a personal organization (which the backfill may skip).

use std::sync::Arc;

use authara_core::org::{OrgKind, OrgMode, OrgRole};
use authara_core::store::{
    ActiveOrganization, Backfilled, Change, ChangeFeed, Completed, Completion, Effects,
    InitialOrganization, MemberRecord, MembershipRecord, MembershipWithOrganization, NewChallenge,
    NewOrganization, NewRefreshToken, NewSession, NewSignupUser, NewUser, OrganizationRecord,
    PendingAction, Purpose, Removal, RoleEffects, SessionUser, Store, Switched, UniqueKey,
    UserDeletion, UserDeletionEffects,
};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::fixtures::*;
use super::RACERS;

/// The initial organization `user` should read back as.
fn organization_of(user: &NewUser) -> OrganizationRecord {
    OrganizationRecord {
        id: user.organization.id,
        name: user.organization.name.clone(),
        kind: user.organization.kind,
        created_by_user_id: Some(user.id),
        created_at: user.created_at,
        updated_at: user.created_at,
    }
}

/// `user`'s owner membership of their initial organization, as it should read back.
fn membership_of(user: &NewUser) -> MembershipRecord {
    MembershipRecord {
        organization_id: user.organization.id,
        user_id: user.id,
        role: OrgRole::Owner,
        created_at: user.created_at,
        updated_at: user.created_at,
    }
}

fn with_organization(user: &NewUser) -> MembershipWithOrganization {
    MembershipWithOrganization {
        organization: organization_of(user),
        membership: membership_of(user),
    }
}

/// Creates a user whose initial organization is of `kind`.
async fn create_user_of_kind(store: &dyn Store, name: &str, kind: OrgKind) -> NewUser {
    let mut user = new_user(name);
    user.organization.kind = kind;
    store
        .create_user(user.clone(), Effects::none())
        .await
        .expect("create user");
    user
}

/// One event and one audit row about `user_id`.
fn one_of_each(user_id: Uuid) -> Effects {
    Effects::none()
        .event(event_at(user_id, now()))
        .audit(audit_at(
            authara_core::audit::AuditAction::UserEnabled,
            Some(user_id),
            Some(user_id),
            None,
            now(),
        ))
}

async fn organization(store: &dyn Store, id: Uuid) -> Option<OrganizationRecord> {
    store
        .find_organization(id)
        .await
        .expect("find organization")
}

async fn memberships(store: &dyn Store, user_id: Uuid) -> Vec<MembershipWithOrganization> {
    store
        .list_user_memberships(user_id)
        .await
        .expect("list user memberships")
}

async fn members(store: &dyn Store, organization_id: Uuid) -> Vec<MemberRecord> {
    store
        .list_members(organization_id)
        .await
        .expect("list members")
}

async fn session_user(store: &dyn Store, session_id: Uuid, user_id: Uuid) -> Option<SessionUser> {
    store
        .find_live_session_user(session_id, user_id, now())
        .await
        .expect("find live session user")
}

/// `create_user` creates the initial organization as given (either kind), created by the user
/// at the user's creation time, and the user's owner membership at the same time; each user's
/// organization is their own.
pub async fn create_user_creates_the_initial_organization_and_owner_membership(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let bob = create_user_of_kind(store, "bob", OrgKind::Personal).await;

    for user in [&alice, &bob] {
        assert_eq!(
            organization(store, user.organization.id).await,
            Some(organization_of(user))
        );
        assert_eq!(
            store
                .find_membership(user.organization.id, user.id)
                .await
                .expect("find membership"),
            Some(with_organization(user))
        );
        assert_eq!(memberships(store, user.id).await, [with_organization(user)]);
    }
    assert_eq!(
        organization(store, bob.organization.id)
            .await
            .map(|o| o.kind),
        Some(OrgKind::Personal)
    );
    assert_eq!(
        store
            .find_membership(alice.organization.id, bob.id)
            .await
            .expect("find membership"),
        None,
        "bob is no member of alice's organization"
    );
    assert_eq!(
        organization(store, Uuid::new_v4()).await,
        None,
        "unknown organization"
    );
}

/// A `create_user` that conflicts (email, username, or an organization id that is taken)
/// creates nothing: no user, no organization, no membership, no effects; the organization
/// already there is untouched.
pub async fn create_user_conflict_leaves_no_organization(store: &dyn Store) {
    let alice = create_user(store, "alice").await;

    let mut same_email = new_user("alice2");
    same_email.email = alice.email.clone();
    assert_conflict(
        store
            .create_user(same_email.clone(), one_of_each(same_email.id))
            .await,
        UniqueKey::Email,
    );
    let mut same_name = new_user("alice");
    same_name.email = "alice3@example.com".to_owned();
    assert_conflict(
        store
            .create_user(same_name.clone(), one_of_each(same_name.id))
            .await,
        UniqueKey::Username,
    );
    for user in [&same_email, &same_name] {
        assert_eq!(organization(store, user.organization.id).await, None);
        assert_eq!(memberships(store, user.id).await, []);
        assert!(store.find_user_by_id(user.id).await.unwrap().is_none());
    }

    let mut same_org = new_user("carol");
    same_org.organization.id = alice.organization.id;
    same_org.organization.name = "carol's".to_owned();
    assert!(
        store
            .create_user(same_org.clone(), one_of_each(same_org.id))
            .await
            .is_err(),
        "an organization id that is taken fails the user's creation"
    );
    assert!(
        store.find_user_by_id(same_org.id).await.unwrap().is_none(),
        "the user is created with their organization or not at all"
    );
    assert_eq!(memberships(store, same_org.id).await, []);
    assert_eq!(
        organization(store, alice.organization.id).await,
        Some(organization_of(&alice))
    );
    assert_eq!(
        members(store, alice.organization.id)
            .await
            .iter()
            .map(|m| m.membership.user_id)
            .collect::<Vec<_>>(),
        [alice.id]
    );
    assert_effects(store, 0, 0, "conflicting create_users").await;
}

/// A signup challenge of `email`.
fn signup(email: &str) -> NewChallenge {
    NewChallenge {
        id: Uuid::new_v4(),
        purpose: Purpose::Signup,
        email: email.to_owned(),
        action: PendingAction::Signup {
            email: email.to_owned(),
            password_hash: "$argon2id$signup".to_owned(),
            invitation_id: None,
        },
        max_attempts: 5,
        max_resends: 3,
        created_at: now() - Duration::minutes(1),
        expires_at: now() + Duration::minutes(30),
        email_job_id: Uuid::new_v4(),
    }
}

fn signup_completion(new_user: NewSignupUser) -> Completion {
    Completion {
        new_user: Some(new_user),
        notice: None,
        effects: Box::new(|_| Effects::none()),
        invitation: None,
    }
}

/// Completing a signup creates the user's initial organization as given, created by them at
/// the completion's `now`, with their owner membership then; a completion whose username is
/// taken creates no organization.
pub async fn complete_signup_creates_the_initial_organization(store: &dyn Store) {
    let c = signup("new@example.com");
    store.create_challenge(c.clone()).await.expect("create");
    let mut newbie = signup_user(Uuid::new_v4(), "newbie");
    newbie.organization.kind = OrgKind::Personal;
    newbie.organization.name = "Newbie's workspace".to_owned();
    let done = store
        .complete_challenge(c.id, now(), signup_completion(newbie.clone()))
        .await
        .expect("complete");
    assert!(
        matches!(done, Completed::Signup { ref user, .. } if user.id == newbie.id),
        "{done:?}"
    );
    let organization_record = OrganizationRecord {
        id: newbie.organization.id,
        name: "Newbie's workspace".to_owned(),
        kind: OrgKind::Personal,
        created_by_user_id: Some(newbie.id),
        created_at: now(),
        updated_at: now(),
    };
    let membership = MembershipRecord {
        organization_id: newbie.organization.id,
        user_id: newbie.id,
        role: OrgRole::Owner,
        created_at: now(),
        updated_at: now(),
    };
    assert_eq!(
        memberships(store, newbie.id).await,
        [MembershipWithOrganization {
            organization: organization_record,
            membership,
        }]
    );

    // A session of the new user acts in it.
    let (session, token) = new_login(newbie.id, now(), now() + Duration::days(1));
    assert_eq!(
        store.create_session(session, token).await.expect("login"),
        ActiveOrganization {
            id: newbie.organization.id,
            name: "Newbie's workspace".to_owned(),
            role: OrgRole::Owner,
        }
    );

    let taken = signup("other@example.com");
    store.create_challenge(taken.clone()).await.expect("create");
    let again = signup_user(Uuid::new_v4(), "newbie");
    assert_conflict(
        store
            .complete_challenge(taken.id, now(), signup_completion(again.clone()))
            .await,
        UniqueKey::Username,
    );
    assert_eq!(organization(store, again.organization.id).await, None);
    assert_eq!(memberships(store, again.id).await, []);
}

/// `create_session` without an organization acts in the user's default organization (their
/// only one here, of either kind) and returns it with the role; with `organization_id` set to
/// the user's own organization, that one.
pub async fn create_session_acts_in_the_default_or_the_given_organization(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let bob = create_user_of_kind(store, "bob", OrgKind::Personal).await;

    for user in [&alice, &bob] {
        let (session, token) = new_login(user.id, now(), now() + Duration::days(1));
        assert_eq!(
            store
                .create_session(session.clone(), token)
                .await
                .expect("create session"),
            initial_org_of(user)
        );
        assert_eq!(
            session_user(store, session.id, user.id)
                .await
                .map(|u| u.organization),
            Some(initial_org_of(user))
        );

        let (mut session, token) = new_login(user.id, now(), now() + Duration::days(1));
        session.organization_id = Some(user.organization.id);
        assert_eq!(
            store
                .create_session(session.clone(), token.clone())
                .await
                .expect("create session in the given organization"),
            initial_org_of(user)
        );
        assert_eq!(
            token_record(store, &token.token_hash).await.organization,
            Some(initial_org_of(user))
        );
    }
}

/// `create_session` in an organization the user is no member of (another user's, or an
/// unknown one) is `NotFound` and writes nothing: no session, no token, and the cap revokes
/// nothing.
pub async fn create_session_outside_the_users_organizations_is_not_found(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let bob = create_user(store, "bob").await;
    let (kept, kept_token) = login(store, alice.id).await;

    for org in [bob.organization.id, Uuid::new_v4()] {
        let (mut session, token) = new_login(alice.id, now(), now() + Duration::days(1));
        session.organization_id = Some(org);
        // A cap of 1 would revoke `kept` if anything were written.
        session.max_live_per_user = 1;
        assert_not_found(store.create_session(session.clone(), token.clone()).await);
        assert!(!is_stored(store, &token.token_hash).await, "token stored");
        assert!(session_user(store, session.id, alice.id).await.is_none());
    }
    let live: Vec<Uuid> = store
        .list_live_sessions(alice.id, now())
        .await
        .expect("list")
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(live, [kept.id], "no session written, none revoked");
    assert!(is_stored(store, &kept_token.token_hash).await);
    assert_eq!(
        members(store, bob.organization.id)
            .await
            .iter()
            .map(|m| m.membership.user_id)
            .collect::<Vec<_>>(),
        [bob.id],
        "alice did not join bob's organization"
    );
}

/// `find_live_session_user` returns the session's organization as it is now (a rename shows)
/// with the user's role there; the other filters (user, revocation) still apply.
pub async fn find_live_session_user_reads_the_organization(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let bob = create_user(store, "bob").await;
    let (session, _) = login(store, alice.id).await;

    assert_eq!(
        session_user(store, session.id, alice.id).await,
        Some(SessionUser {
            user: record_of(&alice),
            organization: initial_org_of(&alice),
        })
    );
    store
        .rename_organization(alice.organization.id, "Alice & Co", now(), Effects::none())
        .await
        .expect("rename");
    assert_eq!(
        session_user(store, session.id, alice.id)
            .await
            .map(|u| u.organization),
        Some(ActiveOrganization {
            id: alice.organization.id,
            name: "Alice & Co".to_owned(),
            role: OrgRole::Owner,
        })
    );
    assert!(session_user(store, session.id, bob.id).await.is_none());
}

/// The refresh token record carries the session's organization (as it is now), found or
/// rotated; the replacement's record too.
pub async fn refresh_token_record_carries_the_organization(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let (_, token) = login(store, alice.id).await;
    assert_eq!(
        token_record(store, &token.token_hash).await.organization,
        Some(initial_org_of(&alice))
    );

    let renamed = store
        .rename_organization(alice.organization.id, "Renamed", now(), Effects::none())
        .await
        .expect("rename");
    let expected = ActiveOrganization {
        id: alice.organization.id,
        name: renamed.name,
        role: OrgRole::Owner,
    };
    let next = replacement(now() + Duration::hours(1));
    let outcome = rotate(store, &token.token_hash, always(now()), &next)
        .await
        .expect("token exists");
    assert!(outcome.rotated.is_some(), "{outcome:?}");
    assert_eq!(outcome.record.organization, Some(expected.clone()));
    assert_eq!(
        token_record(store, &next.token_hash).await.organization,
        Some(expected)
    );
}

/// A token for `session_id` created at [`now`] that expires after `ttl`.
fn switch_token(session_id: Uuid, ttl: Duration) -> NewRefreshToken {
    new_token(session_id, now(), ttl)
}

/// Switching a live session to an organization of its user (here the one it is in, which is
/// allowed) deletes every refresh token of the session, consumed or not, stores the new one
/// with its expiry capped at the session's, and returns the organization and both expiries;
/// the user's other sessions keep their tokens.
pub async fn switch_session_organization_replaces_every_token(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let (session, first) = login(store, alice.id).await;
    let (_, other) = login(store, alice.id).await;
    let second = rotate_ok(store, &first.token_hash, now() - Duration::minutes(30)).await;

    // Outliving the session: capped.
    let long = switch_token(session.id, Duration::days(30));
    let switched = store
        .switch_session_organization(
            session.id,
            alice.id,
            alice.organization.id,
            long.clone(),
            now(),
        )
        .await
        .expect("switch");
    assert_eq!(
        switched,
        Some(Switched {
            organization: initial_org_of(&alice),
            session_expires_at: session.expires_at,
            token_expires_at: session.expires_at,
        })
    );
    assert!(
        !is_stored(store, &first.token_hash).await,
        "consumed token kept"
    );
    assert!(!is_stored(store, &second).await, "live token kept");
    let stored = token_record(store, &long.token_hash).await;
    assert_eq!(stored.id, long.id);
    assert_eq!(stored.session_id, session.id);
    assert_eq!(stored.created_at, long.created_at);
    assert_eq!(stored.expires_at, session.expires_at);
    assert_eq!(stored.consumed_at, None);
    assert_eq!(stored.session.revoked_at, None);
    assert_eq!(stored.organization, Some(initial_org_of(&alice)));
    assert!(
        is_stored(store, &other.token_hash).await,
        "another session's token"
    );
    assert_eq!(
        session_user(store, session.id, alice.id)
            .await
            .map(|u| u.organization),
        Some(initial_org_of(&alice))
    );

    // Within the session: kept as given.
    let short = switch_token(session.id, Duration::hours(1) + us(3));
    let switched = store
        .switch_session_organization(
            session.id,
            alice.id,
            alice.organization.id,
            short.clone(),
            now() + us(1),
        )
        .await
        .expect("switch")
        .expect("switched");
    assert_eq!(switched.token_expires_at, short.expires_at);
    assert_eq!(switched.session_expires_at, session.expires_at);
    assert!(!is_stored(store, &long.token_hash).await);
    assert_eq!(
        token_record(store, &short.token_hash).await.expires_at,
        short.expires_at
    );
    // The new token refreshes.
    let next = rotate_ok(store, &short.token_hash, now() + us(2)).await;
    assert!(is_stored(store, &next).await);
}

/// `switch_session_organization` refuses (`None`, nothing changed: the old token stays, the new
/// one is not stored, the session stays where it was) for an organization the user is no
/// member of or an unknown one, another user's session (either way round), an unknown, revoked
/// or expired session, and a disabled user.
pub async fn switch_session_organization_refusals_change_nothing(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let bob = create_user(store, "bob").await;
    let (live, live_token) = login(store, alice.id).await;
    let (bobs, bobs_token) = login(store, bob.id).await;
    let (revoked, revoked_token) = login(store, alice.id).await;
    assert!(store
        .revoke_session(revoked.id, None, now() - us(1), Effects::none())
        .await
        .expect("revoke"));
    let (expired, expired_token) =
        login_at(store, alice.id, now() - Duration::hours(1), now()).await;

    let refused = move |what: &'static str, session: Uuid, user: Uuid, org: Uuid| async move {
        let token = switch_token(session, Duration::hours(1));
        let got = store
            .switch_session_organization(session, user, org, token.clone(), now())
            .await
            .expect("switch");
        assert_eq!(got, None, "{what}");
        assert!(!is_stored(store, &token.token_hash).await, "{what}: stored");
    };
    refused("bob's organization", live.id, alice.id, bob.organization.id).await;
    refused("unknown organization", live.id, alice.id, Uuid::new_v4()).await;
    refused("bob's session", bobs.id, alice.id, alice.organization.id).await;
    refused("alice's session", live.id, bob.id, bob.organization.id).await;
    refused(
        "alice's session, her org",
        live.id,
        bob.id,
        alice.organization.id,
    )
    .await;
    refused(
        "unknown session",
        Uuid::new_v4(),
        alice.id,
        alice.organization.id,
    )
    .await;
    refused(
        "revoked session",
        revoked.id,
        alice.id,
        alice.organization.id,
    )
    .await;
    refused(
        "expired session",
        expired.id,
        alice.id,
        alice.organization.id,
    )
    .await;

    for (what, token) in [
        ("live", &live_token),
        ("bob's", &bobs_token),
        ("revoked", &revoked_token),
        ("expired", &expired_token),
    ] {
        let record = token_record(store, &token.token_hash).await;
        assert_eq!(record.consumed_at, None, "{what} token consumed");
        assert_eq!(record.expires_at, token.expires_at, "{what} token changed");
    }
    assert_eq!(
        token_record(store, &live_token.token_hash)
            .await
            .organization,
        Some(initial_org_of(&alice))
    );
    assert_eq!(
        session_user(store, bobs.id, bob.id)
            .await
            .map(|u| u.organization),
        Some(initial_org_of(&bob))
    );

    // Disabled (which also revokes the session).
    store
        .set_disabled(alice.id, true, now() - us(1), Effects::none())
        .await
        .expect("disable");
    refused("disabled user", live.id, alice.id, alice.organization.id).await;
    assert!(is_stored(store, &live_token.token_hash).await);
}

/// `pin_organization_mode` pins the first mode asked for and returns it; a later call with
/// another mode returns the first one and changes nothing; `organization_mode` reads it.
pub async fn pin_organization_mode_keeps_the_first(store: &dyn Store) {
    assert_eq!(store.organization_mode().await.expect("mode"), None);
    assert_eq!(
        store
            .pin_organization_mode(OrgMode::Multi, now())
            .await
            .expect("pin"),
        OrgMode::Multi
    );
    for mode in [OrgMode::Single, OrgMode::Personal, OrgMode::Multi] {
        assert_eq!(
            store
                .pin_organization_mode(mode, now() + us(1))
                .await
                .expect("pin again"),
            OrgMode::Multi,
            "asked for {mode}"
        );
    }
    assert_eq!(
        store.organization_mode().await.expect("mode"),
        Some(OrgMode::Multi)
    );
}

/// `personal` pins and reads back as itself too (`multi` in the case before).
pub async fn pin_organization_mode_personal_reads_back(store: &dyn Store) {
    assert_eq!(
        store
            .pin_organization_mode(OrgMode::Personal, now())
            .await
            .expect("pin"),
        OrgMode::Personal
    );
    assert_eq!(
        store.organization_mode().await.expect("mode"),
        Some(OrgMode::Personal)
    );
    assert_eq!(
        store
            .pin_organization_mode(OrgMode::Single, now())
            .await
            .expect("pin"),
        OrgMode::Personal
    );
}

/// `backfill_organizations` finds nothing to do on an empty database, nor where every user has
/// an organization and every session one (as every user and session made through the
/// interface does): it creates nothing, moves no session, commits no effects; again, the same.
pub async fn backfill_organizations_finds_nothing_to_do(store: &dyn Store) {
    assert_eq!(
        store
            .backfill_organizations(OrgKind::Personal, now())
            .await
            .expect("backfill"),
        Backfilled::default()
    );
    let alice = create_user(store, "alice").await;
    let bob = create_user_of_kind(store, "bob", OrgKind::Personal).await;
    let (a, _) = login(store, alice.id).await;
    let (b, _) = login(store, bob.id).await;
    for kind in [OrgKind::Personal, OrgKind::Team] {
        assert_eq!(
            store
                .backfill_organizations(kind, now())
                .await
                .expect("backfill"),
            Backfilled {
                organizations: 0,
                sessions: 0
            },
            "{kind:?}"
        );
    }
    for (user, session) in [(&alice, &a), (&bob, &b)] {
        assert_eq!(memberships(store, user.id).await, [with_organization(user)]);
        assert_eq!(
            session_user(store, session.id, user.id)
                .await
                .map(|u| u.organization),
            Some(initial_org_of(user))
        );
    }
    assert_effects(store, 0, 0, "backfills").await;
}

/// `ensure_initial_organization` for a user who has a membership, or an unknown user, returns
/// `false` and writes nothing: no organization, no membership, no effects.
pub async fn ensure_initial_organization_writes_nothing_for_a_member(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let deleted = create_user(store, "deleted").await;
    store
        .delete_user(deleted.id, Effects::none())
        .await
        .expect("delete");

    for (what, user_id) in [
        ("a member", alice.id),
        ("an unknown user", Uuid::new_v4()),
        ("a deleted user", deleted.id),
    ] {
        let org = InitialOrganization {
            id: Uuid::new_v4(),
            name: "Another".to_owned(),
            kind: OrgKind::Personal,
        };
        assert!(
            !store
                .ensure_initial_organization(user_id, org.clone(), now(), one_of_each(user_id))
                .await
                .expect("ensure"),
            "{what}"
        );
        assert_eq!(organization(store, org.id).await, None, "{what}");
    }
    assert_eq!(
        memberships(store, alice.id).await,
        [with_organization(&alice)]
    );
    assert_effects(store, 0, 0, "ensure_initial_organization refused").await;
}

/// The reads: `find_membership`, `list_user_memberships` and `list_members` join what is
/// current (a renamed user, a disabled one); unknown ids find nothing.
pub async fn organization_reads_join_memberships_and_members(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let bob = create_user(store, "bob").await;

    assert_eq!(
        members(store, alice.organization.id).await,
        [MemberRecord {
            membership: membership_of(&alice),
            email: alice.email.clone(),
            username: alice.username.clone(),
            disabled: false,
        }]
    );
    store
        .set_username(alice.id, "alice-renamed", now(), Effects::none())
        .await
        .expect("rename user");
    store
        .set_disabled(alice.id, true, now(), Effects::none())
        .await
        .expect("disable");
    assert_eq!(
        members(store, alice.organization.id).await,
        [MemberRecord {
            membership: membership_of(&alice),
            email: alice.email.clone(),
            username: "alice-renamed".to_owned(),
            disabled: true,
        }]
    );
    // Renaming the user does not rename the organization.
    assert_eq!(
        organization(store, alice.organization.id).await,
        Some(organization_of(&alice))
    );
    assert_eq!(memberships(store, bob.id).await, [with_organization(&bob)]);
    assert_eq!(members(store, Uuid::new_v4()).await, []);
    assert_eq!(memberships(store, Uuid::new_v4()).await, []);
    assert_eq!(
        store
            .find_membership(Uuid::new_v4(), alice.id)
            .await
            .expect("find membership"),
        None
    );
    assert_eq!(
        store
            .find_membership(bob.organization.id, alice.id)
            .await
            .expect("find membership"),
        None
    );
}

/// `rename_organization` sets the name and `updated_at` (nothing else: not the creation time,
/// not the memberships), commits its effects, and returns the organization as renamed; an
/// unknown organization is `NotFound` with no effects; a blank name fails and changes nothing.
pub async fn rename_organization_updates_and_commits_effects(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let bob = create_user(store, "bob").await;
    let at: OffsetDateTime = now() + us(42);

    let renamed = store
        .rename_organization(alice.organization.id, "Acme", at, one_of_each(alice.id))
        .await
        .expect("rename");
    let expected = OrganizationRecord {
        name: "Acme".to_owned(),
        updated_at: at,
        ..organization_of(&alice)
    };
    assert_eq!(renamed, expected);
    assert_eq!(
        organization(store, alice.organization.id).await,
        Some(expected.clone())
    );
    assert_eq!(
        store
            .find_membership(alice.organization.id, alice.id)
            .await
            .expect("find membership"),
        Some(MembershipWithOrganization {
            organization: expected.clone(),
            membership: membership_of(&alice),
        })
    );
    assert_eq!(
        organization(store, bob.organization.id).await,
        Some(organization_of(&bob)),
        "another organization renamed"
    );
    assert_effects(store, 1, 1, "a rename").await;

    assert_not_found(
        store
            .rename_organization(Uuid::new_v4(), "Ghost", at, one_of_each(alice.id))
            .await,
    );
    assert_effects(store, 1, 1, "renaming an unknown organization").await;

    assert!(
        store
            .rename_organization(
                alice.organization.id,
                "   ",
                at + us(1),
                one_of_each(alice.id)
            )
            .await
            .is_err(),
        "a blank name is refused"
    );
    assert_eq!(
        organization(store, alice.organization.id).await,
        Some(expected)
    );
    assert_effects(store, 1, 1, "a blank rename").await;
}

/// `delete_user` removes the user's memberships; the organizations they created stay, with no
/// creator, otherwise as they were; other users' keep theirs.
pub async fn delete_user_keeps_created_organizations_without_creator(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let bob = create_user_of_kind(store, "bob", OrgKind::Personal).await;
    let (bobs, _) = login(store, bob.id).await;

    store
        .delete_user(alice.id, Effects::none())
        .await
        .expect("delete");
    assert_eq!(
        organization(store, alice.organization.id).await,
        Some(OrganizationRecord {
            created_by_user_id: None,
            ..organization_of(&alice)
        })
    );
    assert_eq!(members(store, alice.organization.id).await, []);
    assert_eq!(memberships(store, alice.id).await, []);
    assert_eq!(
        store
            .find_membership(alice.organization.id, alice.id)
            .await
            .expect("find membership"),
        None
    );
    assert_eq!(memberships(store, bob.id).await, [with_organization(&bob)]);
    assert!(session_user(store, bobs.id, bob.id).await.is_some());

    // The organization is still renamable.
    store
        .rename_organization(alice.organization.id, "Orphan", now(), Effects::none())
        .await
        .expect("rename an organization without members");
    // Personal organizations left without a creator coexist (one personal organization per
    // creator holds for creators only).
    let carol = create_user_of_kind(store, "carol", OrgKind::Personal).await;
    for user in [&bob, &carol] {
        store
            .delete_user(user.id, Effects::none())
            .await
            .expect("delete a personal organization's creator");
        assert_eq!(
            organization(store, user.organization.id).await,
            Some(OrganizationRecord {
                created_by_user_id: None,
                ..organization_of(user)
            })
        );
    }
}

/// On a backend with a change feed, renaming an organization reports each member as changed
/// (the live-session cache keeps the organization's name), and a later revocation arrives after
/// it.
pub async fn watch_changes_reports_organization_renames(store: &dyn Store) {
    let mut rx = match store.watch_changes().await.expect("watch") {
        ChangeFeed::Unsupported => return,
        ChangeFeed::Channel(rx) => rx,
    };
    assert_eq!(next(&mut rx).await, Change::Resumed);
    let alice = create_user(store, "alice").await;
    let (session, _) = login(store, alice.id).await;
    store
        .rename_organization(alice.organization.id, "Acme", now(), Effects::none())
        .await
        .expect("rename");
    assert_eq!(next(&mut rx).await, Change::User(alice.id));
    assert!(store
        .revoke_session(session.id, None, now(), Effects::none())
        .await
        .expect("revoke"));
    assert_eq!(next(&mut rx).await, Change::Session(session.id));
}

/// [`RACERS`] concurrent first `pin_organization_mode`s with different modes: one pins, and
/// every call returns its mode.
pub async fn pin_organization_mode_race_has_one_winner(store: Arc<dyn Store>) {
    let modes = [OrgMode::Personal, OrgMode::Single, OrgMode::Multi];
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            let mode = modes[i % modes.len()];
            tokio::spawn(async move {
                barrier.wait().await;
                store.pin_organization_mode(mode, now()).await
            })
        })
        .collect();
    let mut got = Vec::new();
    for task in tasks {
        got.push(task.await.expect("task did not panic").expect("pin"));
    }
    let pinned = store
        .organization_mode()
        .await
        .expect("mode")
        .expect("pinned");
    assert!(got.iter().all(|&m| m == pinned), "{got:?}, pinned {pinned}");
}

// --- Team organizations and membership changes -------------------------------------------------

/// The team organization `organization` created by `owner` at `at`, as it should read back.
fn team_record(
    organization: &NewOrganization,
    owner: Uuid,
    at: OffsetDateTime,
) -> OrganizationRecord {
    OrganizationRecord {
        id: organization.id,
        name: organization.name.clone(),
        kind: OrgKind::Team,
        created_by_user_id: Some(owner),
        created_at: at,
        updated_at: at,
    }
}

/// A session of `user_id`, live at [`now`], acting in `organization_id`.
async fn login_in(
    store: &dyn Store,
    user_id: Uuid,
    organization_id: Uuid,
) -> (NewSession, NewRefreshToken, ActiveOrganization) {
    let (mut session, token) = new_login(
        user_id,
        now() - Duration::hours(1),
        now() + Duration::days(1),
    );
    session.organization_id = Some(organization_id);
    let active = store
        .create_session(session.clone(), token.clone())
        .await
        .expect("create session in an organization");
    (session, token, active)
}

/// The roles of `organization_id`'s members, by user, in the list's order.
async fn roles(store: &dyn Store, organization_id: Uuid) -> Vec<(Uuid, OrgRole)> {
    members(store, organization_id)
        .await
        .iter()
        .map(|m| (m.membership.user_id, m.membership.role))
        .collect()
}

/// A refresh of `token` at [`now`] refuses (rotates nothing, consumes nothing) and reports no
/// organization; the token is still stored, unconsumed.
async fn assert_refresh_refused(store: &dyn Store, token: &NewRefreshToken, what: &str) {
    let next = replacement(now() + Duration::days(1));
    let outcome = rotate(store, &token.token_hash, always(now()), &next)
        .await
        .expect("the token is still stored");
    assert_eq!(outcome.rotated, None, "{what}: rotated");
    assert_eq!(outcome.record.organization, None, "{what}: organization");
    assert!(
        !is_stored(store, &next.token_hash).await,
        "{what}: replacement stored"
    );
    let record = token_record(store, &token.token_hash).await;
    assert_eq!(record.consumed_at, None, "{what}: consumed");
    assert_eq!(record.organization, None, "{what}: organization read");
}

/// `create_team_organization` creates a team organization created by the owner at `now`, with
/// their owner membership then, commits its effects, and returns both; the owner's memberships
/// list it after their older initial one. An unknown owner is `NotFound`, an organization id
/// that is taken fails; neither writes anything.
pub async fn create_team_organization_creates_it_with_its_owner(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let acme = team("Acme");
    let created = store
        .create_team_organization(acme.clone(), alice.id, now(), one_of_each(alice.id))
        .await
        .expect("create team organization");
    let expected = MembershipWithOrganization {
        organization: team_record(&acme, alice.id, now()),
        membership: membership(acme.id, alice.id, OrgRole::Owner, now()),
    };
    assert_eq!(created, expected);
    assert_eq!(
        organization(store, acme.id).await,
        Some(expected.organization.clone())
    );
    assert_eq!(
        store
            .find_membership(acme.id, alice.id)
            .await
            .expect("find membership"),
        Some(expected.clone())
    );
    assert_eq!(
        memberships(store, alice.id).await,
        [with_organization(&alice), expected.clone()],
        "oldest membership first"
    );
    assert_eq!(roles(store, acme.id).await, [(alice.id, OrgRole::Owner)]);
    assert_effects(store, 1, 1, "a team organization").await;

    let ghost = team("Ghost");
    let nobody = Uuid::new_v4();
    assert_not_found(
        store
            .create_team_organization(ghost.clone(), nobody, now(), one_of_each(nobody))
            .await,
    );
    assert_eq!(organization(store, ghost.id).await, None);
    assert_eq!(members(store, ghost.id).await, []);

    let taken = NewOrganization {
        id: acme.id,
        name: "Taken".to_owned(),
    };
    assert!(
        store
            .create_team_organization(taken, alice.id, now() + us(1), one_of_each(alice.id))
            .await
            .is_err(),
        "an organization id that is taken"
    );
    assert_eq!(
        organization(store, acme.id).await,
        Some(expected.organization.clone())
    );
    assert_eq!(
        memberships(store, alice.id).await,
        [with_organization(&alice), expected]
    );
    assert_effects(store, 1, 1, "refused team organizations").await;
}

/// `add_membership` adds the user with the role at `now`, commits its effects and returns the
/// membership; members list oldest membership first. A second membership of the same user is
/// `Conflict(Membership)` and keeps the first as it was; an unknown organization or user is
/// `NotFound`; none of these writes anything.
pub async fn add_membership_adds_once_and_refuses_unknowns(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let bob = create_user(store, "bob").await;
    let at = now() + us(7);

    let added = store
        .add_membership(
            alice.organization.id,
            bob.id,
            OrgRole::Member,
            at,
            one_of_each(bob.id),
        )
        .await
        .expect("add membership");
    assert_eq!(
        added,
        membership(alice.organization.id, bob.id, OrgRole::Member, at)
    );
    assert_eq!(
        store
            .find_membership(alice.organization.id, bob.id)
            .await
            .expect("find membership"),
        Some(MembershipWithOrganization {
            organization: organization_of(&alice),
            membership: added.clone(),
        })
    );
    assert_eq!(
        members(store, alice.organization.id).await,
        [
            MemberRecord {
                membership: membership_of(&alice),
                email: alice.email.clone(),
                username: alice.username.clone(),
                disabled: false,
            },
            MemberRecord {
                membership: added.clone(),
                email: bob.email.clone(),
                username: bob.username.clone(),
                disabled: false,
            },
        ]
    );
    assert_eq!(
        memberships(store, bob.id).await,
        [
            with_organization(&bob),
            MembershipWithOrganization {
                organization: organization_of(&alice),
                membership: added.clone(),
            },
        ]
    );
    assert_effects(store, 1, 1, "a membership added").await;

    // Again, with another role: the first stays.
    assert_conflict(
        store
            .add_membership(
                alice.organization.id,
                bob.id,
                OrgRole::Admin,
                at + us(1),
                one_of_each(bob.id),
            )
            .await,
        UniqueKey::Membership,
    );
    assert_conflict(
        store
            .add_membership(
                alice.organization.id,
                alice.id,
                OrgRole::Member,
                at,
                one_of_each(alice.id),
            )
            .await,
        UniqueKey::Membership,
    );
    assert_eq!(
        roles(store, alice.organization.id).await,
        [(alice.id, OrgRole::Owner), (bob.id, OrgRole::Member)]
    );
    assert_eq!(
        store
            .find_membership(alice.organization.id, bob.id)
            .await
            .expect("find membership")
            .map(|m| m.membership),
        Some(added)
    );

    let nobody = Uuid::new_v4();
    assert_not_found(
        store
            .add_membership(
                alice.organization.id,
                nobody,
                OrgRole::Member,
                at,
                one_of_each(nobody),
            )
            .await,
    );
    let nowhere = Uuid::new_v4();
    assert_not_found(
        store
            .add_membership(nowhere, bob.id, OrgRole::Member, at, one_of_each(bob.id))
            .await,
    );
    assert_eq!(members(store, nowhere).await, []);
    assert_eq!(memberships(store, nobody).await, []);
    assert_eq!(memberships(store, bob.id).await.len(), 2);
    assert_effects(store, 1, 1, "refused memberships").await;
}

/// `set_membership_role` changes the role and `updated_at` (not `created_at`), commits its
/// effects and returns the membership; a session acting there reads the new role at once. No
/// such membership (a user of another organization, an unknown organization or user) is
/// `NotFound` and changes nothing.
pub async fn set_membership_role_changes_the_role_read_by_sessions(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let bob = create_user(store, "bob").await;
    let carol = create_user(store, "carol").await;
    let joined = now() - Duration::days(1);
    join(
        store,
        alice.organization.id,
        bob.id,
        OrgRole::Member,
        joined,
    )
    .await;
    let (session, token, active) = login_in(store, bob.id, alice.organization.id).await;
    assert_eq!(active.role, OrgRole::Member);

    let at = now() + us(5);
    let changed = store
        .set_membership_role(
            alice.organization.id,
            bob.id,
            OrgRole::Admin,
            at,
            one_of_each(bob.id),
        )
        .await
        .expect("set role");
    assert_eq!(
        changed,
        MembershipRecord {
            updated_at: at,
            ..membership(alice.organization.id, bob.id, OrgRole::Admin, joined)
        }
    );
    assert_eq!(
        store
            .find_membership(alice.organization.id, bob.id)
            .await
            .expect("find membership")
            .map(|m| m.membership),
        Some(changed)
    );
    assert_eq!(
        session_user(store, session.id, bob.id)
            .await
            .map(|u| u.organization.role),
        Some(OrgRole::Admin)
    );
    assert_eq!(
        token_record(store, &token.token_hash)
            .await
            .organization
            .map(|o| o.role),
        Some(OrgRole::Admin)
    );
    assert_eq!(
        roles(store, alice.organization.id).await,
        [(alice.id, OrgRole::Owner), (bob.id, OrgRole::Admin)],
        "the owner is untouched"
    );
    assert_effects(store, 1, 1, "a role changed").await;

    // A non-member, an unknown user, an unknown organization.
    for (org, user) in [
        (alice.organization.id, carol.id),
        (alice.organization.id, Uuid::new_v4()),
        (Uuid::new_v4(), bob.id),
    ] {
        assert_not_found(
            store
                .set_membership_role(org, user, OrgRole::Owner, at, one_of_each(user))
                .await,
        );
    }
    assert_eq!(
        memberships(store, carol.id).await,
        [with_organization(&carol)]
    );
    assert_eq!(
        roles(store, alice.organization.id).await,
        [(alice.id, OrgRole::Owner), (bob.id, OrgRole::Admin)]
    );
    assert_effects(store, 1, 1, "refused role changes").await;
}

/// `transfer_ownership` makes the new owner the owner and every other owner an admin (both at
/// `now`), leaves admins and members as they were, and commits its effects; to a non-member, or
/// in an unknown organization, it is `NotFound` and changes nothing.
pub async fn transfer_ownership_demotes_every_other_owner(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let bob = create_user(store, "bob").await;
    let carol = create_user(store, "carol").await;
    let dave = create_user(store, "dave").await;
    let erin = create_user(store, "erin").await;
    let acme = team("Acme");
    let t0 = now() - Duration::days(3);
    create_team(store, &acme, alice.id, t0).await;
    let bobs = join(store, acme.id, bob.id, OrgRole::Admin, t0 + us(1)).await;
    join(store, acme.id, carol.id, OrgRole::Member, t0 + us(2)).await;
    join(store, acme.id, dave.id, OrgRole::Owner, t0 + us(3)).await;

    let at = now() + us(9);
    store
        .transfer_ownership(acme.id, carol.id, at, one_of_each(carol.id))
        .await
        .expect("transfer");
    let after: Vec<MembershipRecord> = members(store, acme.id)
        .await
        .into_iter()
        .map(|m| m.membership)
        .collect();
    assert_eq!(
        after,
        [
            MembershipRecord {
                updated_at: at,
                ..membership(acme.id, alice.id, OrgRole::Admin, t0)
            },
            bobs.clone(),
            MembershipRecord {
                updated_at: at,
                ..membership(acme.id, carol.id, OrgRole::Owner, t0 + us(2))
            },
            MembershipRecord {
                updated_at: at,
                ..membership(acme.id, dave.id, OrgRole::Admin, t0 + us(3))
            },
        ]
    );
    // Alice's own organization is untouched.
    assert_eq!(
        memberships(store, alice.id).await[0],
        with_organization(&alice)
    );
    assert_effects(store, 1, 1, "a transfer").await;

    // To the owner herself: she stays owner, nobody else is one.
    store
        .transfer_ownership(acme.id, carol.id, at + us(1), Effects::none())
        .await
        .expect("transfer to the owner");
    assert_eq!(
        roles(store, acme.id).await,
        [
            (alice.id, OrgRole::Admin),
            (bob.id, OrgRole::Admin),
            (carol.id, OrgRole::Owner),
            (dave.id, OrgRole::Admin),
        ]
    );

    let before = members(store, acme.id).await;
    for (org, user) in [
        (acme.id, erin.id),
        (acme.id, Uuid::new_v4()),
        (Uuid::new_v4(), carol.id),
        (erin.organization.id, alice.id),
    ] {
        assert_not_found(
            store
                .transfer_ownership(org, user, at + us(2), one_of_each(user))
                .await,
        );
    }
    assert_eq!(members(store, acme.id).await, before);
    assert_eq!(
        memberships(store, erin.id).await,
        [with_organization(&erin)]
    );
    assert_effects(store, 1, 1, "refused transfers").await;
}

/// [`RoleEffects`] that are `effects` whatever the role.
fn effects_of(effects: Effects) -> RoleEffects {
    Box::new(move |_| effects)
}

/// [`RoleEffects`] of one event that record the role they were built from in `seen`.
fn recording(seen: &Arc<std::sync::Mutex<Vec<OrgRole>>>, user_id: Uuid) -> RoleEffects {
    let seen = Arc::clone(seen);
    Box::new(move |role| {
        seen.lock().map(|mut s| s.push(role)).unwrap_or(());
        Effects::none().event(event_at(user_id, now()))
    })
}

/// `remove_membership` removes the membership and commits its effects; the user's sessions
/// acting in that organization stop being live and their tokens no longer refresh (nothing
/// consumed, no organization read), while their sessions elsewhere and the other members' stay
/// live. Removing it again, or a membership that never was, is `NotFound` with no effects.
pub async fn remove_membership_ends_the_sessions_acting_there(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let bob = create_user(store, "bob").await;
    join(
        store,
        alice.organization.id,
        bob.id,
        OrgRole::Admin,
        now() - Duration::days(1),
    )
    .await;
    let (there, there_token, _) = login_in(store, bob.id, alice.organization.id).await;
    let (home, home_token) = login(store, bob.id).await;
    let (alices, _) = login(store, alice.id).await;
    assert!(is_live(store, &there, now()).await);

    store
        .remove_membership(
            alice.organization.id,
            bob.id,
            true,
            effects_of(one_of_each(bob.id)),
        )
        .await
        .expect("remove membership");
    assert_eq!(
        store
            .find_membership(alice.organization.id, bob.id)
            .await
            .expect("find membership"),
        None
    );
    assert_eq!(memberships(store, bob.id).await, [with_organization(&bob)]);
    assert_eq!(
        roles(store, alice.organization.id).await,
        [(alice.id, OrgRole::Owner)]
    );
    assert!(
        session_user(store, there.id, bob.id).await.is_none(),
        "session still live"
    );
    assert_refresh_refused(store, &there_token, "a session in a left organization").await;
    assert_eq!(
        session_user(store, home.id, bob.id)
            .await
            .map(|u| u.organization),
        Some(initial_org_of(&bob))
    );
    assert!(is_live(store, &alices, now()).await);
    rotate_ok(store, &home_token.token_hash, now()).await;
    assert_effects(store, 1, 1, "a membership removed").await;

    for (org, user) in [
        (alice.organization.id, bob.id),
        (bob.organization.id, alice.id),
        (Uuid::new_v4(), bob.id),
        (alice.organization.id, Uuid::new_v4()),
    ] {
        assert_not_found(
            store
                .remove_membership(org, user, true, effects_of(one_of_each(user)))
                .await,
        );
    }
    assert_eq!(
        roles(store, bob.organization.id).await,
        [(bob.id, OrgRole::Owner)]
    );
    assert_effects(store, 1, 1, "refused removals").await;

    // Neither can a new session act there any more.
    let (mut session, token) = new_login(bob.id, now(), now() + Duration::days(1));
    session.organization_id = Some(alice.organization.id);
    assert_not_found(store.create_session(session, token).await);
}

/// `remove_membership`'s rules, in order, against what is stored: an owner is protected unless
/// owners may be removed (before being the last owner), an organization keeps an owner (before
/// the user keeping a membership), a user keeps a membership. Each refusal changes nothing and
/// does not build effects; a removal builds them from the removed member's role.
pub async fn remove_membership_refusals_keep_an_owner_and_a_membership(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let bob = create_user(store, "bob").await;
    let carol = create_user(store, "carol").await;
    let acme = team("Acme");
    let day = now() - Duration::days(1);
    create_team(store, &acme, alice.id, day).await;
    join(store, acme.id, bob.id, OrgRole::Owner, day + us(1)).await;
    join(store, acme.id, carol.id, OrgRole::Admin, day + us(2)).await;
    // Bob co-owns Carol's organization, which is all Carol would have left.
    join(store, carol.organization.id, bob.id, OrgRole::Owner, day).await;
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let before = (
        roles(store, acme.id).await,
        roles(store, alice.organization.id).await,
        roles(store, carol.organization.id).await,
    );

    let refusals = [
        // Two owners, but owners may not be removed by this caller.
        (acme.id, bob.id, false, Removal::OwnerProtected),
        // Alice is her organization's only owner: protected first, last owner when removable.
        (
            alice.organization.id,
            alice.id,
            false,
            Removal::OwnerProtected,
        ),
        (alice.organization.id, alice.id, true, Removal::LastOwner),
    ];
    for (org, user, owner_removable, refused) in refusals {
        let got = store
            .remove_membership(org, user, owner_removable, recording(&seen, user))
            .await
            .expect("remove membership");
        assert_eq!(got, refused, "removing {user} from {org}");
    }
    // Carol leaves Acme: she still has her own organization.
    let removed = store
        .remove_membership(acme.id, carol.id, true, recording(&seen, carol.id))
        .await
        .expect("remove carol");
    assert_eq!(removed, Removal::Removed(OrgRole::Admin));
    // Her own organization keeps Bob as an owner, but it is her last membership.
    let got = store
        .remove_membership(
            carol.organization.id,
            carol.id,
            true,
            recording(&seen, carol.id),
        )
        .await
        .expect("remove carol again");
    assert_eq!(got, Removal::LastMembership);

    assert_eq!(
        seen.lock().map(|s| s.clone()).unwrap_or_default(),
        [OrgRole::Admin]
    );
    assert_eq!(
        roles(store, acme.id).await,
        [(alice.id, OrgRole::Owner), (bob.id, OrgRole::Owner)]
    );
    assert_eq!(roles(store, alice.organization.id).await, before.1);
    assert_eq!(roles(store, carol.organization.id).await, before.2);
    assert_eq!(memberships(store, carol.id).await.len(), 1);
    assert_effects(store, 1, 0, "one removal among refusals").await;
}

/// Concurrent removals cannot break the invariants together, over several rounds: of an
/// organization's two owners removed at once, one goes and the other is its last owner; of a
/// user's two memberships removed at once, one goes and the other is the last.
pub async fn remove_membership_races_keep_an_owner_and_a_membership(store: Arc<dyn Store>) {
    let day = now() - Duration::days(1);
    for round in 0..3 {
        let alice = create_user(&*store, &format!("alice{round}")).await;
        let bob = create_user(&*store, &format!("bob{round}")).await;
        let acme = team("Acme");
        create_team(&*store, &acme, alice.id, day).await;
        join(&*store, acme.id, bob.id, OrgRole::Owner, day).await;
        let owners = race_removals(&store, [(acme.id, alice.id), (acme.id, bob.id)]).await;
        assert_eq!(
            sorted(owners),
            [Removal::Removed(OrgRole::Owner), Removal::LastOwner],
            "round {round}: owners"
        );
        assert_eq!(roles(&*store, acme.id).await.len(), 1);

        // Carol: a member of Acme, and of her own organization co-owned by Alice.
        let carol = create_user(&*store, &format!("carol{round}")).await;
        join(&*store, acme.id, carol.id, OrgRole::Member, day).await;
        join(
            &*store,
            carol.organization.id,
            alice.id,
            OrgRole::Owner,
            day,
        )
        .await;
        let memberships_of_carol = race_removals(
            &store,
            [(acme.id, carol.id), (carol.organization.id, carol.id)],
        )
        .await;
        let got = sorted(memberships_of_carol);
        assert_eq!(got.len(), 2);
        assert!(
            matches!(got[0], Removal::Removed(_)) && got[1] == Removal::LastMembership,
            "round {round}: memberships {got:?}"
        );
        assert_eq!(memberships(&*store, carol.id).await.len(), 1);
    }
}

/// The removals `targets` (organization, user), at once.
async fn race_removals(store: &Arc<dyn Store>, targets: [(Uuid, Uuid); 2]) -> Vec<Removal> {
    let barrier = Arc::new(tokio::sync::Barrier::new(targets.len()));
    let tasks: Vec<_> = targets
        .into_iter()
        .map(|(org, user)| {
            let store = Arc::clone(store);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .remove_membership(org, user, true, effects_of(Effects::none()))
                    .await
            })
        })
        .collect();
    let mut got = Vec::new();
    for task in tasks {
        got.push(
            task.await
                .expect("task did not panic")
                .expect("remove membership"),
        );
    }
    got
}

/// Removals with the removed ones first.
fn sorted(mut removals: Vec<Removal>) -> Vec<Removal> {
    removals.sort_by_key(|r| !matches!(r, Removal::Removed(_)));
    removals
}

/// `delete_organization` deletes the organization and its memberships and commits its effects;
/// every session acting in it stops being live and no longer refreshes; the members' other
/// organizations and sessions stay; a new session of a member acts in their default
/// organization. An unknown (or already deleted) organization is `NotFound` with no effects.
pub async fn delete_organization_ends_the_sessions_acting_in_it(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let bob = create_user(store, "bob").await;
    let acme = team("Acme");
    create_team(store, &acme, alice.id, now() - Duration::days(2)).await;
    join(
        store,
        acme.id,
        bob.id,
        OrgRole::Member,
        now() - Duration::days(1),
    )
    .await;
    let (alices, alices_token, _) = login_in(store, alice.id, acme.id).await;
    let (bobs, bobs_token, active) = login_in(store, bob.id, acme.id).await;
    assert_eq!(
        active,
        ActiveOrganization {
            id: acme.id,
            name: "Acme".to_owned(),
            role: OrgRole::Member,
        }
    );
    let (alices_home, _) = login(store, alice.id).await;

    store
        .delete_organization(acme.id, one_of_each(alice.id))
        .await
        .expect("delete organization");
    assert_eq!(organization(store, acme.id).await, None);
    assert_eq!(members(store, acme.id).await, []);
    assert_eq!(
        memberships(store, alice.id).await,
        [with_organization(&alice)]
    );
    assert_eq!(memberships(store, bob.id).await, [with_organization(&bob)]);
    for (what, session, token) in [
        ("alice's", &alices, &alices_token),
        ("bob's", &bobs, &bobs_token),
    ] {
        assert!(
            session_user(store, session.id, session.user_id)
                .await
                .is_none(),
            "{what} session still live"
        );
        assert_refresh_refused(store, token, what).await;
    }
    assert_eq!(
        session_user(store, alices_home.id, alice.id)
            .await
            .map(|u| u.organization),
        Some(initial_org_of(&alice))
    );
    assert_eq!(
        organization(store, alice.organization.id).await,
        Some(organization_of(&alice))
    );
    let (session, token) = new_login(bob.id, now(), now() + Duration::days(1));
    assert_eq!(
        store.create_session(session, token).await.expect("login"),
        initial_org_of(&bob)
    );
    assert_effects(store, 1, 1, "an organization deleted").await;

    assert_not_found(
        store
            .delete_organization(acme.id, one_of_each(alice.id))
            .await,
    );
    assert_not_found(
        store
            .delete_organization(Uuid::new_v4(), one_of_each(alice.id))
            .await,
    );
    assert_effects(store, 1, 1, "refused deletes").await;
}

/// `create_session` with `organization_id` set to a team organization the user joined acts
/// there, with the user's role there, for the session, its token and its rotations; without
/// one, the user's default organization.
pub async fn create_session_in_a_team_organization_acts_there(store: &dyn Store) {
    let alice = create_user_of_kind(store, "alice", OrgKind::Personal).await;
    let bob = create_user(store, "bob").await;
    let acme = team("Acme");
    create_team(store, &acme, bob.id, now() - Duration::days(30)).await;
    join(
        store,
        acme.id,
        alice.id,
        OrgRole::Admin,
        now() - Duration::days(20),
    )
    .await;
    let expected = ActiveOrganization {
        id: acme.id,
        name: "Acme".to_owned(),
        role: OrgRole::Admin,
    };

    let (session, token, active) = login_in(store, alice.id, acme.id).await;
    assert_eq!(active, expected);
    assert_eq!(
        session_user(store, session.id, alice.id).await,
        Some(SessionUser {
            user: record_of(&alice),
            organization: expected.clone(),
        })
    );
    assert_eq!(
        token_record(store, &token.token_hash).await.organization,
        Some(expected.clone())
    );
    let next = rotate_ok(store, &token.token_hash, now()).await;
    assert_eq!(
        token_record(store, &next).await.organization,
        Some(expected)
    );

    // Without one: her personal organization, though the team membership is older.
    let (session, _) = login(store, alice.id).await;
    assert_eq!(
        session_user(store, session.id, alice.id)
            .await
            .map(|u| u.organization),
        Some(initial_org_of(&alice))
    );
}

/// The default organization of a session created without one: the oldest membership in a
/// personal organization, however old the others are; without a personal one, the oldest
/// membership, ties by organization id.
pub async fn create_session_default_organization_with_several_memberships(store: &dyn Store) {
    let owner = create_user(store, "owner").await;
    let mut teams = Vec::new();
    for name in ["Older", "Same-a", "Same-b"] {
        let t = team(name);
        create_team(store, &t, owner.id, now() - Duration::days(60)).await;
        teams.push(t);
    }
    let default_of = |user_id: Uuid| async move {
        let (session, token) = new_login(user_id, now(), now() + Duration::days(1));
        store
            .create_session(session, token)
            .await
            .expect("create session")
    };

    // Personal beats an older team membership.
    let pat = create_user_of_kind(store, "pat", OrgKind::Personal).await;
    join(
        store,
        teams[0].id,
        pat.id,
        OrgRole::Owner,
        now() - Duration::days(50),
    )
    .await;
    assert_eq!(default_of(pat.id).await, initial_org_of(&pat));

    // No personal one: the oldest membership, here older than the initial organization.
    let tim = create_user(store, "tim").await;
    join(
        store,
        teams[0].id,
        tim.id,
        OrgRole::Member,
        now() - Duration::days(50),
    )
    .await;
    assert_eq!(
        default_of(tim.id).await,
        ActiveOrganization {
            id: teams[0].id,
            name: "Older".to_owned(),
            role: OrgRole::Member,
        }
    );
    // A newer one changes nothing.
    let tom = create_user(store, "tom").await;
    join(store, teams[0].id, tom.id, OrgRole::Member, now()).await;
    assert_eq!(default_of(tom.id).await, initial_org_of(&tom));

    // Two memberships as old as each other: the lower organization id.
    let tia = create_user(store, "tia").await;
    let tied = now() - Duration::days(40);
    join(store, teams[1].id, tia.id, OrgRole::Member, tied).await;
    join(store, teams[2].id, tia.id, OrgRole::Admin, tied).await;
    let first = teams[1..].iter().min_by_key(|t| t.id).expect("two teams");
    let got = default_of(tia.id).await;
    assert_eq!(got.id, first.id);
    assert_eq!(got.name, first.name);
}

/// `list_user_memberships` lists oldest membership first, ties by organization id, and
/// `list_members` oldest membership first, ties by user id, whatever the order of creation.
pub async fn organization_lists_order_several_rows(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let acme = team("Acme");
    create_team(store, &acme, alice.id, now()).await;
    let mut users = Vec::new();
    for name in ["u1", "u2", "u3", "u4"] {
        users.push(create_user(store, name).await);
    }
    // Joined in an order unlike the membership times: u3 oldest, then u1/u2/u4 at one instant.
    let tied = now() - Duration::days(20);
    join(store, acme.id, users[1].id, OrgRole::Member, tied).await;
    join(store, acme.id, users[3].id, OrgRole::Admin, tied).await;
    join(store, acme.id, users[2].id, OrgRole::Member, tied - us(1)).await;
    join(store, acme.id, users[0].id, OrgRole::Member, tied).await;
    let mut same_time = vec![users[0].id, users[1].id, users[3].id];
    same_time.sort();
    // Alice (`now`) is the newest; her team membership is newer than her initial one.
    let mut expected = vec![users[2].id];
    expected.extend(same_time);
    expected.push(alice.id);
    let listed: Vec<Uuid> = members(store, acme.id)
        .await
        .iter()
        .map(|m| m.membership.user_id)
        .collect();
    assert_eq!(listed, expected);

    // A user in several organizations: two at one instant, one older.
    let bob = &users[0];
    let mut orgs = Vec::new();
    for name in ["Beta", "Gamma", "Delta"] {
        let t = team(name);
        create_team(store, &t, alice.id, now()).await;
        orgs.push(t.id);
    }
    join(store, orgs[0], bob.id, OrgRole::Member, tied + us(5)).await;
    join(store, orgs[1], bob.id, OrgRole::Member, tied + us(5)).await;
    join(
        store,
        orgs[2],
        bob.id,
        OrgRole::Member,
        tied - Duration::days(1),
    )
    .await;
    let mut same_time = vec![orgs[0], orgs[1]];
    same_time.sort();
    // bob's initial organization was created with him (`now() - 10 days`).
    let mut expected = vec![orgs[2], acme.id];
    expected.extend(same_time);
    expected.push(bob.organization.id);
    let listed: Vec<Uuid> = memberships(store, bob.id)
        .await
        .iter()
        .map(|m| m.organization.id)
        .collect();
    assert_eq!(listed, expected);
}

/// The organization writes commit their change with their effects or not at all: effects that
/// cannot be stored (two events with one id) fail the write, which changes nothing.
pub async fn organization_writes_whose_effects_fail_change_nothing(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let bob = create_user(store, "bob").await;
    let acme = team("Acme");
    create_team(store, &acme, alice.id, now() - Duration::days(1)).await;
    join(
        store,
        acme.id,
        bob.id,
        OrgRole::Member,
        now() - Duration::days(1),
    )
    .await;
    let event = event_at(alice.id, now());
    let twice = || Effects::none().event(event.clone()).event(event.clone());
    let before_alice = memberships(store, alice.id).await;
    let before_bob = memberships(store, bob.id).await;

    let other = team("Other");
    assert!(store
        .create_team_organization(other.clone(), alice.id, now(), twice())
        .await
        .is_err());
    assert_eq!(organization(store, other.id).await, None);
    assert!(store
        .add_membership(
            alice.organization.id,
            bob.id,
            OrgRole::Member,
            now(),
            twice()
        )
        .await
        .is_err());
    assert!(store
        .set_membership_role(acme.id, bob.id, OrgRole::Admin, now(), twice())
        .await
        .is_err());
    assert!(store
        .transfer_ownership(acme.id, bob.id, now(), twice())
        .await
        .is_err());
    assert!(store
        .remove_membership(acme.id, bob.id, true, effects_of(twice()))
        .await
        .is_err());
    assert!(store.delete_organization(acme.id, twice()).await.is_err());

    assert_eq!(memberships(store, alice.id).await, before_alice);
    assert_eq!(memberships(store, bob.id).await, before_bob);
    assert_effects(store, 0, 0, "failed organization writes").await;
}

/// On a backend with a change feed, a role change and a removal report the member as changed,
/// and deleting an organization reports each member and each session acting in it (in any
/// order); nothing else arrives before a later revocation.
pub async fn watch_changes_reports_membership_changes_and_organization_deletes(store: &dyn Store) {
    let mut rx = match store.watch_changes().await.expect("watch") {
        ChangeFeed::Unsupported => return,
        ChangeFeed::Channel(rx) => rx,
    };
    assert_eq!(next(&mut rx).await, Change::Resumed);
    let alice = create_user(store, "alice").await;
    let bob = create_user(store, "bob").await;
    let acme = team("Acme");
    create_team(store, &acme, alice.id, now() - Duration::days(1)).await;
    join(
        store,
        acme.id,
        bob.id,
        OrgRole::Member,
        now() - Duration::days(1),
    )
    .await;
    let (marker, _) = login(store, alice.id).await;

    store
        .set_membership_role(acme.id, bob.id, OrgRole::Admin, now(), Effects::none())
        .await
        .expect("set role");
    assert_eq!(next(&mut rx).await, Change::User(bob.id));
    store
        .remove_membership(acme.id, bob.id, false, effects_of(Effects::none()))
        .await
        .expect("remove");
    assert_eq!(next(&mut rx).await, Change::User(bob.id));

    join(store, acme.id, bob.id, OrgRole::Member, now()).await;
    let (alices, _, _) = login_in(store, alice.id, acme.id).await;
    let (bobs, _, _) = login_in(store, bob.id, acme.id).await;
    store
        .delete_organization(acme.id, Effects::none())
        .await
        .expect("delete organization");
    let expected = [
        Change::User(alice.id),
        Change::User(bob.id),
        Change::Session(alices.id),
        Change::Session(bobs.id),
    ];
    let mut got = Vec::new();
    while got.len() < expected.len() {
        let change = next(&mut rx).await;
        assert!(
            expected.contains(&change),
            "unexpected {change:?} (got {got:?})"
        );
        if !got.contains(&change) {
            got.push(change);
        }
    }
    assert!(store
        .revoke_session(marker.id, None, now(), Effects::none())
        .await
        .expect("revoke"));
    assert_eq!(next(&mut rx).await, Change::Session(marker.id));
}

/// A user whose only organization was deleted has no membership (and their sessions no active
/// organization): `ensure_initial_organization` gives them one (with its effects), once; the
/// backfill gives the others one of the kind asked for, named after the username, and moves
/// every session without an active organization to its user's default one; a second backfill
/// finds nothing to do.
pub async fn users_left_without_membership_get_an_initial_organization_again(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let bob = create_user(store, "bob").await;
    let (alices, _) = login(store, alice.id).await;
    let (bobs, _) = login(store, bob.id).await;
    for user in [&alice, &bob] {
        store
            .delete_organization(user.organization.id, Effects::none())
            .await
            .expect("delete organization");
        assert_eq!(memberships(store, user.id).await, []);
    }

    let fresh = InitialOrganization {
        id: Uuid::new_v4(),
        name: "Alice's".to_owned(),
        kind: OrgKind::Personal,
    };
    let at = now() + us(3);
    assert!(store
        .ensure_initial_organization(alice.id, fresh.clone(), at, one_of_each(alice.id))
        .await
        .expect("ensure"));
    let alices_org = MembershipWithOrganization {
        organization: OrganizationRecord {
            id: fresh.id,
            name: fresh.name.clone(),
            kind: OrgKind::Personal,
            created_by_user_id: Some(alice.id),
            created_at: at,
            updated_at: at,
        },
        membership: membership(fresh.id, alice.id, OrgRole::Owner, at),
    };
    assert_eq!(
        memberships(store, alice.id).await,
        std::slice::from_ref(&alices_org)
    );
    assert_effects(store, 1, 1, "an initial organization ensured").await;
    let again = InitialOrganization {
        id: Uuid::new_v4(),
        ..fresh.clone()
    };
    assert!(!store
        .ensure_initial_organization(alice.id, again.clone(), at, one_of_each(alice.id))
        .await
        .expect("ensure again"));
    assert_eq!(organization(store, again.id).await, None);
    assert_effects(store, 1, 1, "an initial organization ensured twice").await;
    // Not live yet: the session still has no active organization.
    assert!(session_user(store, alices.id, alice.id).await.is_none());

    let backfilled_at = now() + us(4);
    assert_eq!(
        store
            .backfill_organizations(OrgKind::Team, backfilled_at)
            .await
            .expect("backfill"),
        Backfilled {
            organizations: 1,
            sessions: 2,
        }
    );
    let bobs_orgs = memberships(store, bob.id).await;
    let [bobs_org] = &bobs_orgs[..] else {
        panic!("bob has one membership: {bobs_orgs:?}");
    };
    assert_eq!(
        bobs_org.organization,
        OrganizationRecord {
            id: bobs_org.organization.id,
            name: "bob".to_owned(),
            kind: OrgKind::Team,
            created_by_user_id: Some(bob.id),
            created_at: backfilled_at,
            updated_at: backfilled_at,
        }
    );
    assert_eq!(
        bobs_org.membership,
        membership(
            bobs_org.organization.id,
            bob.id,
            OrgRole::Owner,
            backfilled_at
        )
    );
    assert_ne!(bobs_org.organization.id, bob.organization.id, "a new id");
    assert_eq!(
        session_user(store, alices.id, alice.id)
            .await
            .map(|u| u.organization),
        Some(ActiveOrganization {
            id: fresh.id,
            name: fresh.name.clone(),
            role: OrgRole::Owner,
        })
    );
    assert_eq!(
        session_user(store, bobs.id, bob.id)
            .await
            .map(|u| u.organization),
        Some(ActiveOrganization {
            id: bobs_org.organization.id,
            name: "bob".to_owned(),
            role: OrgRole::Owner,
        })
    );
    assert_eq!(memberships(store, alice.id).await, [alices_org]);
    assert_eq!(
        store
            .backfill_organizations(OrgKind::Team, backfilled_at)
            .await
            .expect("backfill again"),
        Backfilled::default()
    );
    assert_effects(store, 1, 1, "backfills").await;
}

/// What [`UserDeletionEffects`] were built from, each time.
type DeletionsSeen = Arc<std::sync::Mutex<Vec<(Vec<OrganizationRecord>, Vec<MembershipRecord>)>>>;

/// A [`UserDeletionEffects`] of one event that records what it was built from.
fn deletion_recording(seen: &DeletionsSeen, user_id: Uuid) -> UserDeletionEffects {
    let seen = Arc::clone(seen);
    Box::new(move |organizations, memberships| {
        seen.lock()
            .expect("lock")
            .push((organizations.to_vec(), memberships.to_vec()));
        one_of_each(user_id)
    })
}

/// `delete_user_checked` refuses, changing nothing, to delete the only owner of an
/// organization that has other members (`LastOwner` naming it); once ownership is transferred
/// it deletes the user with the organizations of which they were the only member (their
/// initial one, a team nobody joined), leaves the others with their other members, and builds
/// the effects from both lists. An unknown user is `NotFound`.
pub async fn delete_user_checked_keeps_every_organization_owned(store: &dyn Store) {
    let alice = create_user(store, "alice").await;
    let bob = create_user(store, "bob").await;
    let shared = team("Shared");
    create_team(store, &shared, alice.id, now()).await;
    join(store, shared.id, bob.id, OrgRole::Member, now()).await;
    let lonely = team("Lonely");
    create_team(store, &lonely, alice.id, now()).await;
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));

    assert!(matches!(
        store
            .delete_user_checked(Uuid::new_v4(), deletion_recording(&seen, alice.id))
            .await,
        Err(authara_core::store::StoreError::NotFound)
    ));
    assert_eq!(
        store
            .delete_user_checked(alice.id, deletion_recording(&seen, alice.id))
            .await
            .expect("delete"),
        UserDeletion::LastOwner(shared.id)
    );
    assert!(
        seen.lock().expect("lock").is_empty(),
        "a refusal built effects"
    );
    assert_effects(store, 0, 0, "refused deletions").await;
    assert!(store
        .find_user_by_id(alice.id)
        .await
        .expect("find")
        .is_some());

    store
        .transfer_ownership(shared.id, bob.id, now() + us(1), Effects::none())
        .await
        .expect("transfer");
    let done = store
        .delete_user_checked(alice.id, deletion_recording(&seen, alice.id))
        .await
        .expect("delete");
    let mut alone = vec![
        organization_of(&alice),
        team_record(&lonely, alice.id, now()),
    ];
    alone.sort_by_key(|o| o.id);
    let left = vec![MembershipRecord {
        updated_at: now() + us(1),
        ..membership(shared.id, alice.id, OrgRole::Admin, now())
    }];
    assert_eq!(
        done,
        UserDeletion::Deleted {
            organizations: alone.clone(),
            memberships: left.clone(),
        }
    );
    assert_eq!(*seen.lock().expect("lock"), [(alone, left)]);
    assert_effects(store, 1, 1, "the deletion").await;
    assert_eq!(store.find_user_by_id(alice.id).await.expect("find"), None);
    assert_eq!(organization(store, alice.organization.id).await, None);
    assert_eq!(organization(store, lonely.id).await, None);
    assert!(organization(store, shared.id).await.is_some());
    let members: Vec<(Uuid, OrgRole)> = store
        .list_members(shared.id)
        .await
        .expect("members")
        .iter()
        .map(|m| (m.membership.user_id, m.membership.role))
        .collect();
    assert_eq!(members, [(bob.id, OrgRole::Owner)]);
}

/// `delete_user_checked` refuses to delete the only enabled admin (`LastActiveAdmin`), whom a
/// disabled admin does not replace; with another enabled admin it deletes them. A user who is
/// not an admin is never refused for it.
pub async fn delete_user_checked_keeps_an_active_admin(store: &dyn Store) {
    let root = create_user(store, "root").await;
    let spare = create_user(store, "spare").await;
    let plain = create_user(store, "plain").await;
    for (email, admin) in [(&root.email, true), (&spare.email, true)] {
        store
            .set_admin_by_email(email, admin, now(), Effects::none())
            .await
            .expect("grant admin");
    }
    store
        .set_disabled(spare.id, true, now(), Effects::none())
        .await
        .expect("disable");
    let refuse = || Box::new(|_: &[OrganizationRecord], _: &[MembershipRecord]| Effects::none());
    assert_eq!(
        store
            .delete_user_checked(root.id, refuse())
            .await
            .expect("delete"),
        UserDeletion::LastActiveAdmin
    );
    assert!(store
        .find_user_by_id(root.id)
        .await
        .expect("find")
        .is_some());
    assert!(matches!(
        store.delete_user_checked(plain.id, refuse()).await,
        Ok(UserDeletion::Deleted { .. })
    ));
    store
        .set_disabled(spare.id, false, now(), Effects::none())
        .await
        .expect("enable");
    assert!(matches!(
        store.delete_user_checked(root.id, refuse()).await,
        Ok(UserDeletion::Deleted { .. })
    ));
    assert_eq!(
        store
            .delete_user_checked(spare.id, refuse())
            .await
            .expect("delete"),
        UserDeletion::LastActiveAdmin
    );
}

/// Two enabled admins, the only two, deleted at once: exactly one goes, the other is refused as
/// the last; and an owner deleted while their only co-member is removed: the organization is
/// either deleted with the owner or kept with the owner refused, never left without an owner.
pub async fn delete_user_checked_races_keep_the_invariants(store: Arc<dyn Store>) {
    for round in 0..5 {
        let a = create_user(&*store, &format!("admin-a{round}")).await;
        let b = create_user(&*store, &format!("admin-b{round}")).await;
        for email in [&a.email, &b.email] {
            store
                .set_admin_by_email(email, true, now(), Effects::none())
                .await
                .expect("grant admin");
        }
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let tasks: Vec<_> = [a.id, b.id]
            .into_iter()
            .map(|id| {
                let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    store
                        .delete_user_checked(id, Box::new(|_, _| Effects::none()))
                        .await
                })
            })
            .collect();
        let mut deleted = 0;
        for task in tasks {
            match task.await.expect("task did not panic").expect("delete") {
                UserDeletion::Deleted { .. } => deleted += 1,
                UserDeletion::LastActiveAdmin => {}
                other => panic!("round {round}: {other:?}"),
            }
        }
        assert_eq!(deleted, 1, "round {round}: both admins or none deleted");
        // Leave one enabled admin fewer for the next round: revoke the survivor's.
        for user in [&a, &b] {
            if store
                .find_user_by_id(user.id)
                .await
                .expect("find")
                .is_some()
            {
                store
                    .set_admin_by_email(&user.email, false, now(), Effects::none())
                    .await
                    .expect("revoke admin");
            }
        }

        let owner = create_user(&*store, &format!("owner{round}")).await;
        let member = create_user(&*store, &format!("member{round}")).await;
        let shared = team(&format!("Shared {round}"));
        create_team(&*store, &shared, owner.id, now()).await;
        join(&*store, shared.id, member.id, OrgRole::Member, now()).await;
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let deleting = {
            let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .delete_user_checked(owner.id, Box::new(|_, _| Effects::none()))
                    .await
            })
        };
        let removing = {
            let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
            let org = shared.id;
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .remove_membership(org, member.id, true, Box::new(|_| Effects::none()))
                    .await
            })
        };
        let deletion = deleting.await.expect("task did not panic").expect("delete");
        let removal = removing.await.expect("task did not panic").expect("remove");
        let kept = organization(&*store, shared.id).await.is_some();
        match (&deletion, removal) {
            // The member left first: the owner was alone, and the organization went with them.
            (UserDeletion::Deleted { .. }, Removal::Removed(_)) => {
                assert!(!kept, "round {round}: an organization left without members")
            }
            // The deletion counted the member: refused, both stay.
            (UserDeletion::LastOwner(org), _) => {
                assert_eq!(*org, shared.id);
                assert!(kept);
            }
            other => panic!("round {round}: {other:?}"),
        }
        if kept {
            let owners = store
                .list_members(shared.id)
                .await
                .expect("members")
                .iter()
                .filter(|m| m.membership.role == OrgRole::Owner)
                .count();
            assert_eq!(owners, 1, "round {round}");
        }
    }
}

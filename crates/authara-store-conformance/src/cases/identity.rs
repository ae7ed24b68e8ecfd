//! External sign-in identities: created with a new (possibly password-less) account or linked to
//! an existing one, found by provider and subject with their user, listed oldest first; a subject
//! belongs to one user and a user has one identity per provider, each refusal changing nothing;
//! unlinking never takes a user's last way to sign in, even when two unlinks race; deleting the
//! user takes their identities. A code-flow sign-in's flow is taken back once, even by two
//! callbacks at once.

use std::sync::Arc;

use authara_core::store::{
    Effects, IdentityRecord, NewIdentity, NewUser, PendingLink, SignInFlow, Store, StoreError,
    UniqueKey, Unlinked,
};
use time::Duration;
use uuid::Uuid;

use super::fixtures::*;

fn identity(user_id: Uuid, provider: &str, subject: &str) -> NewIdentity {
    NewIdentity {
        id: Uuid::new_v4(),
        user_id,
        provider: provider.to_owned(),
        provider_user_id: subject.to_owned(),
        email: Some(format!("{subject}@{provider}.example")),
        created_at: now(),
    }
}

fn record_of(new: &NewIdentity) -> IdentityRecord {
    IdentityRecord {
        id: new.id,
        user_id: new.user_id,
        provider: new.provider.clone(),
        provider_user_id: new.provider_user_id.clone(),
        email: new.email.clone(),
        created_at: new.created_at,
        last_used_at: None,
    }
}

/// A user without a password.
fn social_user(name: &str) -> NewUser {
    NewUser {
        password_hash: None,
        ..new_user(name)
    }
}

fn one_event(user_id: Uuid) -> Effects {
    Effects::none().event(event_at(user_id, now()))
}

/// `create_user_with_identity` creates a password-less account with its initial organization
/// and the identity, with the effects; `find_identity` returns both, `list_identities` the
/// identity, and `touch_identity` records a sign-in.
pub async fn create_user_with_identity_round_trips(store: &dyn Store) {
    let ada = social_user("ada");
    let google = identity(ada.id, "google", "110169484474386276334");
    let created = store
        .create_user_with_identity(ada.clone(), google.clone(), one_event(ada.id))
        .await
        .expect("create");
    assert_eq!(created.id, ada.id);
    assert_eq!(created.password_hash, None);
    assert_effects(store, 1, 0, "create_user_with_identity").await;
    let (found, user) = store
        .find_identity("google", "110169484474386276334")
        .await
        .expect("find")
        .expect("the identity exists");
    assert_eq!(found, record_of(&google));
    assert_eq!(user, created);
    assert_eq!(
        store.list_identities(ada.id).await.expect("list"),
        [record_of(&google)]
    );
    assert_eq!(
        store
            .list_user_memberships(ada.id)
            .await
            .expect("memberships")
            .len(),
        1,
        "the initial organization came with the account"
    );
    // Same subject at another provider, or another subject: not found.
    assert!(store
        .find_identity("github", "110169484474386276334")
        .await
        .expect("find")
        .is_none());
    assert!(store
        .find_identity("google", "110169484474386276335")
        .await
        .expect("find")
        .is_none());
    store
        .touch_identity(google.id, now() + Duration::minutes(5))
        .await
        .expect("touch");
    let (touched, _) = store
        .find_identity("google", "110169484474386276334")
        .await
        .expect("find")
        .expect("exists");
    assert_eq!(touched.last_used_at, Some(now() + Duration::minutes(5)));
    assert!(matches!(
        store.touch_identity(Uuid::new_v4(), now()).await,
        Err(StoreError::NotFound)
    ));
}

/// The refusals change nothing and commit no effects: a linked subject is `Conflict(Identity)`
/// (for a new account too, which is then not created), a second identity of one provider
/// `Conflict(ProviderLinked)`, a taken email `Conflict(Email)` (the identity is not created), an
/// unknown user `NotFound`.
pub async fn identity_conflicts_change_nothing(store: &dyn Store) {
    let ada = create_user(store, "ada").await;
    let google = identity(ada.id, "google", "sub-ada");
    store
        .link_identity(google.clone(), Effects::none())
        .await
        .expect("link");

    let bob = social_user("bob");
    let stolen = identity(bob.id, "google", "sub-ada");
    assert!(matches!(
        store
            .create_user_with_identity(bob.clone(), stolen, one_event(bob.id))
            .await,
        Err(StoreError::Conflict(UniqueKey::Identity))
    ));
    assert_eq!(store.find_user_by_id(bob.id).await.expect("find"), None);

    let again = identity(ada.id, "google", "another-sub");
    assert!(matches!(
        store.link_identity(again, one_event(ada.id)).await,
        Err(StoreError::Conflict(UniqueKey::ProviderLinked))
    ));

    let carol = create_user(store, "carol").await;
    assert!(matches!(
        store
            .link_identity(identity(carol.id, "google", "sub-ada"), one_event(carol.id))
            .await,
        Err(StoreError::Conflict(UniqueKey::Identity))
    ));

    let mut twin = social_user("twin");
    twin.email = ada.email.clone();
    assert!(matches!(
        store
            .create_user_with_identity(
                twin.clone(),
                identity(twin.id, "github", "sub-twin"),
                one_event(twin.id)
            )
            .await,
        Err(StoreError::Conflict(UniqueKey::Email))
    ));
    assert!(store
        .find_identity("github", "sub-twin")
        .await
        .expect("find")
        .is_none());

    assert!(matches!(
        store
            .link_identity(
                identity(Uuid::new_v4(), "github", "ghost"),
                one_event(ada.id)
            )
            .await,
        Err(StoreError::NotFound)
    ));
    assert_effects(store, 0, 0, "refused identity writes").await;
    assert_eq!(
        store.list_identities(ada.id).await.expect("list"),
        [record_of(&google)]
    );
    assert!(store
        .list_identities(carol.id)
        .await
        .expect("list")
        .is_empty());
}

/// Unlinking removes an identity (with the effects) while another way to sign in remains: a
/// password, or another identity; the last one is `LastMethod` and stays. An identity the user
/// does not have is `NotFound`. Identities are listed oldest first; deleting the user takes them.
pub async fn unlink_identity_keeps_a_way_to_sign_in(store: &dyn Store) {
    // With a password: every identity can go.
    let ada = create_user(store, "ada").await;
    let github = identity(ada.id, "github", "gh-ada");
    store
        .link_identity(github.clone(), Effects::none())
        .await
        .expect("link");
    assert_eq!(
        store
            .unlink_identity(ada.id, "github", one_event(ada.id))
            .await
            .expect("unlink"),
        Unlinked::Removed(record_of(&github))
    );
    assert_effects(store, 1, 0, "the unlink").await;
    assert!(matches!(
        store
            .unlink_identity(ada.id, "github", one_event(ada.id))
            .await,
        Err(StoreError::NotFound)
    ));

    // Without one: the last identity stays.
    let bob = social_user("bob");
    let google = identity(bob.id, "google", "g-bob");
    store
        .create_user_with_identity(bob.clone(), google.clone(), Effects::none())
        .await
        .expect("create");
    let mut later = identity(bob.id, "acme", "acme-bob");
    later.created_at = now() + Duration::seconds(1);
    store
        .link_identity(later.clone(), Effects::none())
        .await
        .expect("link");
    assert_eq!(
        store.list_identities(bob.id).await.expect("list"),
        [record_of(&google), record_of(&later)]
    );
    assert!(matches!(
        store
            .unlink_identity(bob.id, "google", one_event(bob.id))
            .await
            .expect("unlink"),
        Unlinked::Removed(_)
    ));
    assert_eq!(
        store
            .unlink_identity(bob.id, "acme", one_event(bob.id))
            .await
            .expect("unlink"),
        Unlinked::LastMethod
    );
    assert_effects(store, 2, 0, "one more unlink, one refusal").await;
    assert_eq!(
        store.list_identities(bob.id).await.expect("list"),
        [record_of(&later)]
    );

    store
        .delete_user(bob.id, Effects::none())
        .await
        .expect("delete");
    assert!(store
        .find_identity("acme", "acme-bob")
        .await
        .expect("find")
        .is_none());
    assert!(store
        .list_identities(bob.id)
        .await
        .expect("list")
        .is_empty());
}

/// Races: two accounts linking one subject at once, one wins; two unlinks of a password-less
/// user's last two identities at once, exactly one goes.
pub async fn identity_races_keep_the_rules(store: Arc<dyn Store>) {
    for round in 0..5 {
        let a = create_user(&*store, &format!("link-a{round}")).await;
        let b = create_user(&*store, &format!("link-b{round}")).await;
        let subject = format!("contested-{round}");
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let tasks: Vec<_> = [a.id, b.id]
            .into_iter()
            .map(|user| {
                let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
                let new = identity(user, "google", &subject);
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.link_identity(new, Effects::none()).await
                })
            })
            .collect();
        let mut won = 0;
        for task in tasks {
            match task.await.expect("task did not panic") {
                Ok(_) => won += 1,
                Err(StoreError::Conflict(UniqueKey::Identity)) => {}
                Err(e) => panic!("round {round}: {e:?}"),
            }
        }
        assert_eq!(won, 1, "round {round}");

        let user = social_user(&format!("unlink{round}"));
        store
            .create_user_with_identity(
                user.clone(),
                identity(user.id, "google", &format!("g-{round}")),
                Effects::none(),
            )
            .await
            .expect("create");
        store
            .link_identity(
                identity(user.id, "github", &format!("gh-{round}")),
                Effects::none(),
            )
            .await
            .expect("link");
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let tasks: Vec<_> = ["google", "github"]
            .into_iter()
            .map(|provider| {
                let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
                let id = user.id;
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.unlink_identity(id, provider, Effects::none()).await
                })
            })
            .collect();
        let mut removed = 0;
        for task in tasks {
            match task.await.expect("task did not panic").expect("unlink") {
                Unlinked::Removed(_) => removed += 1,
                Unlinked::LastMethod => {}
            }
        }
        assert_eq!(removed, 1, "round {round}: both or neither unlinked");
        assert_eq!(
            store.list_identities(user.id).await.expect("list").len(),
            1,
            "round {round}"
        );
    }
}

fn flow(
    state: char,
    provider: &str,
    link_user_id: Option<Uuid>,
    expires_in: Duration,
) -> SignInFlow {
    SignInFlow {
        state_hash: state.to_string().repeat(64),
        provider: provider.to_owned(),
        browser_hash: "b".repeat(64),
        code_verifier: format!("verifier-{state}"),
        nonce: format!("nonce-{state}"),
        return_to: Some("/app".into()),
        link_user_id,
        created_at: now(),
        expires_at: now() + expires_in,
        proves_link_hash: (state == 'd').then(|| "p".repeat(64)),
    }
}

/// A sign-in flow is taken back exactly once, as stored; an unknown state finds nothing; a
/// duplicate state is a conflict; starting a flow deletes those expired before it; deleting a
/// linking user takes their flows.
pub async fn sign_in_flows_are_taken_once(store: &dyn Store) {
    let ada = create_user(store, "flow-ada").await;
    let a = flow('a', "acme", None, Duration::minutes(10));
    store.begin_sign_in_flow(a.clone()).await.unwrap();
    assert!(matches!(
        store.begin_sign_in_flow(a.clone()).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(store
        .take_sign_in_flow(&"f".repeat(64))
        .await
        .unwrap()
        .is_none());
    assert!(store.take_sign_in_flow(&a.state_hash).await.unwrap() == Some(a.clone()));
    assert!(store
        .take_sign_in_flow(&a.state_hash)
        .await
        .unwrap()
        .is_none());

    // An expired flow is still returned (the caller refuses it) until a later start purges it.
    let old = SignInFlow {
        created_at: now() - Duration::minutes(20),
        ..flow('c', "github", None, Duration::minutes(-10))
    };
    store.begin_sign_in_flow(old.clone()).await.unwrap();
    let linking = flow('d', "github", Some(ada.id), Duration::minutes(10));
    store.begin_sign_in_flow(linking.clone()).await.unwrap();
    assert!(store
        .take_sign_in_flow(&old.state_hash)
        .await
        .unwrap()
        .is_none());
    assert!(store.take_sign_in_flow(&linking.state_hash).await.unwrap() == Some(linking.clone()));

    let e = flow('e', "github", Some(ada.id), Duration::minutes(10));
    store.begin_sign_in_flow(e.clone()).await.unwrap();
    store.delete_user(ada.id, Effects::none()).await.unwrap();
    assert!(store
        .take_sign_in_flow(&e.state_hash)
        .await
        .unwrap()
        .is_none());
}

/// Two callbacks with one state at once: exactly one gets the flow.
pub async fn sign_in_flow_take_race_has_one_winner(store: Arc<dyn Store>) {
    for round in 0..5u8 {
        let state = char::from(b'0' + round);
        let f = flow(state, "acme", None, Duration::minutes(10));
        store.begin_sign_in_flow(f.clone()).await.unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let (store, barrier, hash) = (
                    Arc::clone(&store),
                    Arc::clone(&barrier),
                    f.state_hash.clone(),
                );
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.take_sign_in_flow(&hash).await
                })
            })
            .collect();
        let mut won = 0;
        for task in tasks {
            if task.await.expect("task did not panic").unwrap().is_some() {
                won += 1;
            }
        }
        assert_eq!(won, 1, "round {round}");
    }
}

/// `remove_password` takes a password only from a user with another way to sign in, and it and
/// `unlink_identity` racing for a user's last two methods leave one.
pub async fn remove_password_keeps_a_way_to_sign_in(store: Arc<dyn Store>) {
    let only_password = create_user(&*store, "pw-only").await;
    assert!(!store
        .remove_password(only_password.id, now(), Effects::none())
        .await
        .unwrap());
    let social = social_user("pw-none");
    store
        .create_user_with_identity(
            social.clone(),
            identity(social.id, "github", "pw-none-1"),
            Effects::none(),
        )
        .await
        .unwrap();
    assert!(matches!(
        store
            .remove_password(social.id, now(), Effects::none())
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .remove_password(Uuid::new_v4(), now(), Effects::none())
            .await,
        Err(StoreError::NotFound)
    ));

    let both = create_user(&*store, "pw-both").await;
    store
        .link_identity(identity(both.id, "github", "pw-both-1"), Effects::none())
        .await
        .unwrap();
    assert!(store
        .remove_password(both.id, now(), one_event(both.id))
        .await
        .unwrap());
    let user = store.find_user_by_id(both.id).await.unwrap().unwrap();
    assert!(user.password_hash.is_none());
    assert_eq!(
        store
            .unlink_identity(both.id, "github", Effects::none())
            .await
            .unwrap(),
        Unlinked::LastMethod
    );

    for round in 0..5 {
        let user = create_user(&*store, &format!("pw-race{round}")).await;
        store
            .link_identity(
                identity(user.id, "github", &format!("pw-race-{round}")),
                Effects::none(),
            )
            .await
            .unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let (s1, b1) = (Arc::clone(&store), Arc::clone(&barrier));
        let removal = tokio::spawn(async move {
            b1.wait().await;
            s1.remove_password(user.id, now(), Effects::none()).await
        });
        let (s2, b2) = (Arc::clone(&store), Arc::clone(&barrier));
        let unlink = tokio::spawn(async move {
            b2.wait().await;
            s2.unlink_identity(user.id, "github", Effects::none()).await
        });
        let removed = removal.await.expect("no panic").unwrap();
        let unlinked = matches!(
            unlink.await.expect("no panic").unwrap(),
            Unlinked::Removed(_)
        );
        assert!(removed != unlinked, "round {round}: exactly one of the two");
    }
}

fn pending(c: char, user_id: Uuid, created_ago: Duration, lives: Duration) -> PendingLink {
    PendingLink {
        link_hash: c.to_string().repeat(64),
        user_id,
        provider: "github".into(),
        provider_user_id: format!("subject-{c}"),
        provider_email: format!("{c}@example.org"),
        browser_hash: "b".repeat(64),
        return_to: Some("/app".into()),
        created_at: now() - created_ago,
        expires_at: now() - created_ago + lives,
    }
}

/// A pending link reads back as stored, is taken once, needs a known user, goes with its user,
/// and expired ones are deleted as new ones are made.
pub async fn pending_links_are_found_and_taken_once(store: &dyn Store) {
    let ada = create_user(store, "link-ada").await;
    let a = pending('a', ada.id, Duration::ZERO, Duration::minutes(10));
    store.create_pending_link(a.clone()).await.unwrap();
    assert!(matches!(
        store.create_pending_link(a.clone()).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .create_pending_link(pending(
                'c',
                Uuid::new_v4(),
                Duration::ZERO,
                Duration::minutes(10)
            ))
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store.find_pending_link(&a.link_hash).await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(
        store.find_pending_link(&a.link_hash).await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(
        store.take_pending_link(&a.link_hash).await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(store.take_pending_link(&a.link_hash).await.unwrap(), None);
    assert_eq!(store.find_pending_link(&a.link_hash).await.unwrap(), None);

    let old = pending('d', ada.id, Duration::minutes(30), Duration::minutes(10));
    store.create_pending_link(old.clone()).await.unwrap();
    let e = pending('e', ada.id, Duration::ZERO, Duration::minutes(10));
    store.create_pending_link(e.clone()).await.unwrap();
    assert_eq!(store.find_pending_link(&old.link_hash).await.unwrap(), None);
    store.delete_user(ada.id, Effects::none()).await.unwrap();
    assert_eq!(store.find_pending_link(&e.link_hash).await.unwrap(), None);
}

//! The audit log: listing with a filter (user, email, since, limit), newest first, and purging
//! in batches.

use authara_core::audit::{AuditAction, NewAuditEntry};
use authara_core::store::{AuditFilter, Effects, Store};
use time::Duration;
use uuid::Uuid;

use super::fixtures::{all_audit, audit_at, audit_record_of, commit, now, us};

fn listed(rows: &[authara_core::audit::AuditRecord]) -> Vec<Uuid> {
    rows.iter().map(|r| r.id).collect()
}

/// The ids of `entries`, newest first (by creation, then id).
fn newest_first(entries: &[&NewAuditEntry]) -> Vec<Uuid> {
    let mut keyed: Vec<_> = entries.iter().map(|e| (e.created_at, e.id)).collect();
    keyed.sort();
    keyed.reverse();
    keyed.into_iter().map(|(_, id)| id).collect()
}

async fn list(store: &dyn Store, filter: AuditFilter) -> Vec<Uuid> {
    listed(&store.list_audit(&filter).await.expect("list audit"))
}

/// Rows read back as written (metadata JSON, request context, unknown-to-the-row fields
/// `None`); the filter matches a user as target or actor, an email as target email, either
/// of the two when both are given; `since` is inclusive; `limit` keeps the newest.
pub async fn list_audit_filters_newest_first(store: &dyn Store) {
    let t = now();
    let (alice, bob, admin) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let alice_email = "alice@example.com";
    // Alice disabled by an admin, then enabled; Bob's password change; the admin granted by
    // the system; Alice's deletion (her rows keep her email); a row about a deleted user known
    // by email only.
    let a1 = audit_at(
        AuditAction::UserDisabled,
        Some(admin),
        Some(alice),
        Some(alice_email),
        t - us(50),
    );
    let a2 = audit_at(
        AuditAction::UserEnabled,
        Some(admin),
        Some(alice),
        Some(alice_email),
        t - us(40),
    );
    let b1 = audit_at(
        AuditAction::PasswordChanged,
        Some(bob),
        Some(bob),
        Some("bob@example.com"),
        t - us(30),
    );
    let g1 = audit_at(
        AuditAction::AdminGranted,
        None,
        Some(admin),
        Some("admin@example.com"),
        t - us(20),
    );
    let a3 = audit_at(
        AuditAction::AccountDeleted,
        Some(alice),
        Some(alice),
        Some(alice_email),
        t - us(10),
    );
    let e1 = audit_at(
        AuditAction::SessionRevoked,
        None,
        None,
        Some(alice_email),
        t,
    );
    let mut bare = audit_at(AuditAction::RefreshTokenReuse, None, Some(bob), None, t);
    bare.context = Default::default();
    bare.metadata = serde_json::json!({});
    // Written in several transactions, not in time order.
    commit(store, Effects::none().audit(a3.clone()).audit(a1.clone())).await;
    commit(store, Effects::none().audit(b1.clone())).await;
    commit(
        store,
        Effects::none()
            .audit(e1.clone())
            .audit(g1.clone())
            .audit(a2.clone()),
    )
    .await;
    commit(store, Effects::none().audit(bare.clone())).await;

    let all = all_audit(store).await;
    assert_eq!(
        listed(&all),
        newest_first(&[&a1, &a2, &b1, &g1, &a3, &e1, &bare])
    );
    for entry in [&a1, &a2, &b1, &g1, &a3, &e1, &bare] {
        let row = all.iter().find(|r| r.id == entry.id).unwrap();
        assert_eq!(row, &audit_record_of(entry));
    }

    let by = |user_id: Option<Uuid>, email: Option<&str>| AuditFilter {
        user_id,
        email: email.map(str::to_owned),
        since: None,
        limit: 100,
    };
    assert_eq!(
        list(store, by(Some(alice), None)).await,
        newest_first(&[&a1, &a2, &a3])
    );
    // The admin as actor (on Alice) and as target (granted).
    assert_eq!(
        list(store, by(Some(admin), None)).await,
        newest_first(&[&a1, &a2, &g1])
    );
    assert_eq!(
        list(store, by(Some(bob), None)).await,
        newest_first(&[&b1, &bare])
    );
    assert_eq!(
        list(store, by(None, Some(alice_email))).await,
        newest_first(&[&a1, &a2, &a3, &e1])
    );
    assert_eq!(
        list(store, by(Some(bob), Some(alice_email))).await,
        newest_first(&[&a1, &a2, &b1, &a3, &e1, &bare])
    );
    assert!(list(store, by(Some(Uuid::new_v4()), None)).await.is_empty());
    assert!(list(store, by(None, Some("nobody@example.com")))
        .await
        .is_empty());

    let since = |since, limit| AuditFilter {
        since: Some(since),
        limit,
        ..by(Some(alice), Some(alice_email))
    };
    assert_eq!(
        list(store, since(t - us(40), 100)).await,
        newest_first(&[&a2, &a3, &e1])
    );
    assert_eq!(
        list(store, since(t - us(39), 100)).await,
        newest_first(&[&a3, &e1])
    );
    assert_eq!(
        list(store, since(t - us(60), 2)).await,
        newest_first(&[&a3, &e1])
    );
    assert!(list(store, since(t + us(1), 100)).await.is_empty());
    let limited = AuditFilter {
        limit: 3,
        ..AuditFilter::default()
    };
    assert_eq!(list(store, limited).await, listed(&all)[..3].to_vec());
    let none = AuditFilter {
        limit: 0,
        ..AuditFilter::default()
    };
    assert!(list(store, none).await.is_empty());
}

/// Purging deletes rows created before the cut-off, oldest first, at most `limit` per call.
pub async fn purge_audit_batches(store: &dyn Store) {
    let t = now();
    let entries: Vec<NewAuditEntry> = (0..6)
        .map(|i| {
            audit_at(
                AuditAction::SessionsRevoked,
                None,
                Some(Uuid::new_v4()),
                None,
                t - Duration::days(10) + Duration::days(i),
            )
        })
        .collect();
    let mut effects = Effects::none();
    for entry in &entries {
        effects = effects.audit(entry.clone());
    }
    commit(store, effects).await;

    // Rows 0..4 are older than the cut-off; row 4 is created exactly at it and stays.
    let cutoff = t - Duration::days(6);
    assert_eq!(store.purge_audit(cutoff, 3).await.unwrap(), 3);
    assert_eq!(store.purge_audit(cutoff, 3).await.unwrap(), 1);
    assert_eq!(store.purge_audit(cutoff, 3).await.unwrap(), 0);
    let left = listed(&all_audit(store).await);
    assert_eq!(left, vec![entries[5].id, entries[4].id]);
}

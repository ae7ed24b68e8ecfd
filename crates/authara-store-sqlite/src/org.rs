//! Organizations, memberships and the pinned organization mode. A user's first organization is
//! inserted with the user ([`crate::user::insert_user`]) or, for users from before
//! organizations, by the start-up backfill; both go through [`insert_owned_organization`] or
//! its set-based equivalent.

use async_trait::async_trait;
use authara_core::org::{OrgKind, OrgMode, OrgRole, DEFAULT_ORGANIZATION_NAME};
use authara_core::store::{
    Backfilled, Effects, InitialOrganization, MemberRecord, MembershipRecord,
    MembershipWithOrganization, NewOrganization, OrganizationRecord, OrganizationStore, Removal,
    RoleEffects, StoreError, UserDeletion, UserDeletionEffects,
};
use sqlx::sqlite::SqliteConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::effects::{insert_effects, Write};
use crate::error::map;
use crate::rows::{
    id_text, micros, parse_role, MemberRow, MembershipRow, MembershipWithOrganizationRow,
    OrganizationRow, DEFAULT_ORGANIZATION_ORDER, MEMBERSHIP_COLUMNS, ORGANIZATION_COLUMNS,
};
use crate::{found, SqliteStore};

/// [`ORGANIZATION_COLUMNS`] for a `RETURNING` clause, which cannot name the table's alias.
const ORGANIZATION_RETURNING: &str = "\
    id AS org_id, name AS org_name, kind AS org_kind, \
    created_by_user_id AS org_created_by_user_id, created_at AS org_created_at, \
    updated_at AS org_updated_at";

/// [`MEMBERSHIP_COLUMNS`] for a `RETURNING` clause.
pub(crate) const MEMBERSHIP_RETURNING: &str = "\
    organization_id AS m_organization_id, user_id AS m_user_id, role AS m_role, \
    created_at AS m_created_at, updated_at AS m_updated_at";

/// A memberships-with-organizations query up to its `WHERE`.
const MEMBERSHIP_WITH_ORGANIZATION_FROM: &str = "\
    FROM organization_memberships m JOIN organizations o ON o.id = m.organization_id";

/// A random uuid v4 as stored (hyphenated lowercase) from `h`, 32 random lowercase hex digits:
/// the version digit replaced by `4`, the variant digit mapped onto `8`–`b`.
const UUID_V4_FROM_H: &str = "\
    substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-4' || substr(h, 14, 3) || '-' || \
    substr('89ab', (instr('0123456789abcdef', substr(h, 17, 1)) - 1) % 4 + 1, 1) || \
    substr(h, 18, 3) || '-' || substr(h, 21, 12)";

/// The initial organization name of user `u` (the core's `initial_name`): the username, else
/// the email's local part, else `?3`, the default name.
const INITIAL_NAME_OF_U: &str = "\
    COALESCE(NULLIF(trim(u.username), ''), \
             NULLIF(trim(CASE WHEN instr(u.email, '@') > 0 \
                              THEN substr(u.email, 1, instr(u.email, '@') - 1) \
                              ELSE u.email END), ''), \
             ?3)";

/// Inserts `organization`, created by `owner` at `at` (unix microseconds), and `owner`'s
/// membership as its owner, on `conn`, which must be inside the caller's transaction.
pub(crate) async fn insert_owned_organization(
    conn: &mut SqliteConnection,
    organization: &InitialOrganization,
    owner: Uuid,
    at: i64,
) -> Result<(), StoreError> {
    let id = id_text(organization.id);
    let owner = id_text(owner);
    sqlx::query(
        "INSERT INTO organizations (id, name, kind, created_by_user_id, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )
    .bind(&id)
    .bind(&organization.name)
    .bind(organization.kind.as_str())
    .bind(&owner)
    .bind(at)
    .execute(&mut *conn)
    .await
    .map_err(map)?;
    sqlx::query(
        "INSERT INTO organization_memberships \
             (organization_id, user_id, role, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?4)",
    )
    .bind(&id)
    .bind(&owner)
    .bind(OrgRole::Owner.as_str())
    .bind(at)
    .execute(&mut *conn)
    .await
    .map_err(map)?;
    Ok(())
}

/// A stored organization mode.
fn parse_mode(text: &str) -> Result<OrgMode, StoreError> {
    OrgMode::parse(text)
        .ok_or_else(|| StoreError::invalid("unknown organization mode in the database"))
}

#[async_trait]
impl OrganizationStore for SqliteStore {
    async fn pin_organization_mode(
        &self,
        mode: OrgMode,
        now: OffsetDateTime,
    ) -> Result<OrgMode, StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT OR IGNORE INTO organization_mode (id, mode, created_at) VALUES (1, ?1, ?2)",
        )
        .bind(mode.as_str())
        .bind(micros(now)?)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        let pinned: String = sqlx::query_scalar("SELECT mode FROM organization_mode WHERE id = 1")
            .fetch_one(&mut *tx)
            .await
            .map_err(map)?;
        tx.commit().await.map_err(map)?;
        parse_mode(&pinned)
    }

    async fn organization_mode(&self) -> Result<Option<OrgMode>, StoreError> {
        let pinned: Option<String> =
            sqlx::query_scalar("SELECT mode FROM organization_mode WHERE id = 1")
                .fetch_optional(&self.reader)
                .await
                .map_err(map)?;
        pinned.as_deref().map(parse_mode).transpose()
    }

    async fn backfill_organizations(
        &self,
        kind: OrgKind,
        now: OffsetDateTime,
    ) -> Result<Backfilled, StoreError> {
        let now = micros(now)?;
        // One immediate transaction: a second server (or the CLI) starting at the same time
        // waits, then finds nothing left to do.
        let mut tx = self.begin().await?;
        // The memberships go in first, each with a fresh organization id, and the organizations
        // are then made from them: that pairs every new organization with its user without a
        // round trip per user. The foreign keys are checked at commit instead (the pragma ends
        // with the transaction).
        sqlx::query("PRAGMA defer_foreign_keys = ON")
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        // Users without a membership; with `personal`, not those who already created a personal
        // organization (one per creator; unreachable today), whom the unique index would refuse.
        // Materialized, so each user's random digits are drawn once.
        let members = sqlx::query(&format!(
            "WITH fresh AS MATERIALIZED ( \
                 SELECT u.id AS user_id, lower(hex(randomblob(16))) AS h FROM users u \
                 WHERE NOT EXISTS (SELECT 1 FROM organization_memberships m \
                                   WHERE m.user_id = u.id) \
                   AND NOT (?1 = 'personal' AND EXISTS ( \
                       SELECT 1 FROM organizations o \
                       WHERE o.created_by_user_id = u.id AND o.kind = 'personal'))) \
             INSERT INTO organization_memberships \
                 (organization_id, user_id, role, created_at, updated_at) \
             SELECT {UUID_V4_FROM_H}, user_id, ?3, ?2, ?2 FROM fresh"
        ))
        .bind(kind.as_str())
        .bind(now)
        .bind(OrgRole::Owner.as_str())
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        let mut organizations = 0;
        if members.rows_affected() > 0 {
            // The memberships without an organization are exactly the ones just inserted.
            organizations = sqlx::query(&format!(
                "INSERT INTO organizations \
                     (id, name, kind, created_by_user_id, created_at, updated_at) \
                 SELECT m.organization_id, {INITIAL_NAME_OF_U}, ?1, u.id, ?2, ?2 \
                 FROM organization_memberships m JOIN users u ON u.id = m.user_id \
                 WHERE NOT EXISTS (SELECT 1 FROM organizations o WHERE o.id = m.organization_id)"
            ))
            .bind(kind.as_str())
            .bind(now)
            .bind(DEFAULT_ORGANIZATION_NAME)
            .execute(&mut *tx)
            .await
            .map_err(map)?
            .rows_affected();
        }
        // Sessions from before organizations; a user still without a membership (skipped
        // above) keeps sessions that are not live.
        let sessions = sqlx::query(&format!(
            "UPDATE sessions SET active_organization_id = ( \
                 SELECT m.organization_id {MEMBERSHIP_WITH_ORGANIZATION_FROM} \
                 WHERE m.user_id = sessions.user_id \
                 ORDER BY {DEFAULT_ORGANIZATION_ORDER} LIMIT 1) \
             WHERE active_organization_id IS NULL \
               AND EXISTS (SELECT 1 FROM organization_memberships m \
                           WHERE m.user_id = sessions.user_id)"
        ))
        .execute(&mut *tx)
        .await
        .map_err(map)?
        .rows_affected();
        tx.commit().await.map_err(map)?;
        Ok(Backfilled {
            organizations,
            sessions,
        })
    }

    async fn ensure_initial_organization(
        &self,
        user_id: Uuid,
        organization: InitialOrganization,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<bool, StoreError> {
        let id = id_text(user_id);
        // Dropping the write without committing rolls it back, effects and all.
        let mut write = Write::transaction(self, effects).await?;
        let needed: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM users WHERE id = ?1) \
                AND NOT EXISTS (SELECT 1 FROM organization_memberships WHERE user_id = ?1)",
        )
        .bind(&id)
        .fetch_one(write.conn())
        .await
        .map_err(map)?;
        if !needed {
            return Ok(false);
        }
        insert_owned_organization(write.conn(), &organization, user_id, micros(now)?).await?;
        write.commit().await?;
        Ok(true)
    }

    async fn find_organization(&self, id: Uuid) -> Result<Option<OrganizationRecord>, StoreError> {
        sqlx::query_as::<_, OrganizationRow>(&format!(
            "SELECT {ORGANIZATION_COLUMNS} FROM organizations o WHERE o.id = ?1"
        ))
        .bind(id_text(id))
        .fetch_optional(&self.reader)
        .await
        .map_err(map)?
        .map(OrganizationRow::into_record)
        .transpose()
    }

    async fn find_membership(
        &self,
        organization_id: Uuid,
        user_id: Uuid,
    ) -> Result<Option<MembershipWithOrganization>, StoreError> {
        sqlx::query_as::<_, MembershipWithOrganizationRow>(&format!(
            "SELECT {ORGANIZATION_COLUMNS}, {MEMBERSHIP_COLUMNS} \
             {MEMBERSHIP_WITH_ORGANIZATION_FROM} \
             WHERE m.organization_id = ?1 AND m.user_id = ?2"
        ))
        .bind(id_text(organization_id))
        .bind(id_text(user_id))
        .fetch_optional(&self.reader)
        .await
        .map_err(map)?
        .map(MembershipWithOrganizationRow::into_record)
        .transpose()
    }

    async fn list_user_memberships(
        &self,
        user_id: Uuid,
    ) -> Result<Vec<MembershipWithOrganization>, StoreError> {
        sqlx::query_as::<_, MembershipWithOrganizationRow>(&format!(
            "SELECT {ORGANIZATION_COLUMNS}, {MEMBERSHIP_COLUMNS} \
             {MEMBERSHIP_WITH_ORGANIZATION_FROM} \
             WHERE m.user_id = ?1 \
             ORDER BY m.created_at, m.organization_id"
        ))
        .bind(id_text(user_id))
        .fetch_all(&self.reader)
        .await
        .map_err(map)?
        .into_iter()
        .map(MembershipWithOrganizationRow::into_record)
        .collect()
    }

    async fn list_members(&self, organization_id: Uuid) -> Result<Vec<MemberRecord>, StoreError> {
        sqlx::query_as::<_, MemberRow>(&format!(
            "SELECT {MEMBERSHIP_COLUMNS}, u.email AS email, u.username AS username, \
                    u.disabled AS disabled \
             FROM organization_memberships m JOIN users u ON u.id = m.user_id \
             WHERE m.organization_id = ?1 \
             ORDER BY m.created_at, m.user_id"
        ))
        .bind(id_text(organization_id))
        .fetch_all(&self.reader)
        .await
        .map_err(map)?
        .into_iter()
        .map(MemberRow::into_record)
        .collect()
    }

    async fn rename_organization(
        &self,
        id: Uuid,
        name: &str,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<OrganizationRecord, StoreError> {
        // `NotFound` drops the write, which rolls the effects back.
        let mut write = Write::begin(self, effects).await?;
        let renamed = sqlx::query_as::<_, OrganizationRow>(&format!(
            "UPDATE organizations SET name = ?2, updated_at = ?3 WHERE id = ?1 \
             RETURNING {ORGANIZATION_RETURNING}"
        ))
        .bind(id_text(id))
        .bind(name)
        .bind(micros(now)?)
        .fetch_optional(write.conn())
        .await
        .map_err(map)?
        .ok_or(StoreError::NotFound)?
        .into_record()?;
        write.commit().await?;
        Ok(renamed)
    }

    async fn create_team_organization(
        &self,
        organization: NewOrganization,
        owner: Uuid,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<MembershipWithOrganization, StoreError> {
        let at = micros(now)?;
        let owner = id_text(owner);
        // An unknown owner fails the organization's foreign key (`NotFound`); dropping the
        // write then rolls it back, effects and all.
        let mut write = Write::transaction(self, effects).await?;
        let organization = sqlx::query_as::<_, OrganizationRow>(&format!(
            "INSERT INTO organizations \
                 (id, name, kind, created_by_user_id, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?5) \
             RETURNING {ORGANIZATION_RETURNING}"
        ))
        .bind(id_text(organization.id))
        .bind(&organization.name)
        .bind(OrgKind::Team.as_str())
        .bind(&owner)
        .bind(at)
        .fetch_one(write.conn())
        .await
        .map_err(map)?
        .into_record()?;
        let membership = sqlx::query_as::<_, MembershipRow>(&format!(
            "INSERT INTO organization_memberships \
                 (organization_id, user_id, role, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?4) \
             RETURNING {MEMBERSHIP_RETURNING}"
        ))
        .bind(id_text(organization.id))
        .bind(&owner)
        .bind(OrgRole::Owner.as_str())
        .bind(at)
        .fetch_one(write.conn())
        .await
        .map_err(map)?
        .into_record()?;
        write.commit().await?;
        Ok(MembershipWithOrganization {
            organization,
            membership,
        })
    }

    async fn add_membership(
        &self,
        organization_id: Uuid,
        user_id: Uuid,
        role: OrgRole,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<MembershipRecord, StoreError> {
        // An unknown organization or user fails a foreign key (`NotFound`), an existing
        // membership the primary key (`Conflict(Membership)`).
        let mut write = Write::begin(self, effects).await?;
        let added = sqlx::query_as::<_, MembershipRow>(&format!(
            "INSERT INTO organization_memberships \
                 (organization_id, user_id, role, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?4) \
             RETURNING {MEMBERSHIP_RETURNING}"
        ))
        .bind(id_text(organization_id))
        .bind(id_text(user_id))
        .bind(role.as_str())
        .bind(micros(now)?)
        .fetch_one(write.conn())
        .await
        .map_err(map)?
        .into_record()?;
        write.commit().await?;
        Ok(added)
    }

    async fn set_membership_role(
        &self,
        organization_id: Uuid,
        user_id: Uuid,
        role: OrgRole,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<MembershipRecord, StoreError> {
        let mut write = Write::begin(self, effects).await?;
        let changed = sqlx::query_as::<_, MembershipRow>(&format!(
            "UPDATE organization_memberships SET role = ?3, updated_at = ?4 \
             WHERE organization_id = ?1 AND user_id = ?2 \
             RETURNING {MEMBERSHIP_RETURNING}"
        ))
        .bind(id_text(organization_id))
        .bind(id_text(user_id))
        .bind(role.as_str())
        .bind(micros(now)?)
        .fetch_optional(write.conn())
        .await
        .map_err(map)?
        .ok_or(StoreError::NotFound)?
        .into_record()?;
        write.commit().await?;
        Ok(changed)
    }

    async fn transfer_ownership(
        &self,
        organization_id: Uuid,
        new_owner: Uuid,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<(), StoreError> {
        let org = id_text(organization_id);
        let new_owner = id_text(new_owner);
        let at = micros(now)?;
        // An immediate transaction: concurrent transfers take turns and cannot leave two owners.
        let mut write = Write::transaction(self, effects).await?;
        let promoted = sqlx::query(
            "UPDATE organization_memberships SET role = ?3, updated_at = ?4 \
             WHERE organization_id = ?1 AND user_id = ?2",
        )
        .bind(&org)
        .bind(&new_owner)
        .bind(OrgRole::Owner.as_str())
        .bind(at)
        .execute(write.conn())
        .await
        .map_err(map)?;
        // Not a member: returning drops the write, which rolls it back.
        found(promoted.rows_affected())?;
        sqlx::query(
            "UPDATE organization_memberships SET role = ?4, updated_at = ?5 \
             WHERE organization_id = ?1 AND user_id <> ?2 AND role = ?3",
        )
        .bind(&org)
        .bind(&new_owner)
        .bind(OrgRole::Owner.as_str())
        .bind(OrgRole::Admin.as_str())
        .bind(at)
        .execute(write.conn())
        .await
        .map_err(map)?;
        write.commit().await
    }

    async fn remove_membership(
        &self,
        organization_id: Uuid,
        user_id: Uuid,
        owner_removable: bool,
        effects: RoleEffects,
    ) -> Result<Removal, StoreError> {
        let (org, user) = (id_text(organization_id), id_text(user_id));
        // An immediate transaction: the counts are those the delete commits against, so two
        // removals cannot both pass the rules (e.g. remove an organization's last two owners).
        let mut tx = self.begin().await?;
        let counted: Option<(String, i64, i64)> = sqlx::query_as(
            "SELECT m.role, \
                 (SELECT count(*) FROM organization_memberships o \
                  WHERE o.organization_id = ?1 AND o.role = ?3), \
                 (SELECT count(*) FROM organization_memberships u WHERE u.user_id = ?2) \
             FROM organization_memberships m \
             WHERE m.organization_id = ?1 AND m.user_id = ?2",
        )
        .bind(&org)
        .bind(&user)
        .bind(OrgRole::Owner.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(map)?;
        // Returning early drops the transaction, which rolls it back.
        let (role, owners, memberships) = counted.ok_or(StoreError::NotFound)?;
        let role = parse_role(&role)?;
        if let Some(refused) = Removal::refusal(role, owners, memberships, owner_removable) {
            return Ok(refused);
        }
        sqlx::query(
            "DELETE FROM organization_memberships WHERE organization_id = ?1 AND user_id = ?2",
        )
        .bind(&org)
        .bind(&user)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        insert_effects(&mut tx, &effects(role)).await?;
        tx.commit().await.map_err(map)?;
        Ok(Removal::Removed(role))
    }

    async fn delete_organization(&self, id: Uuid, effects: Effects) -> Result<(), StoreError> {
        // The foreign keys do the rest: the memberships go, and the sessions acting in it lose
        // their active organization.
        let mut write = Write::begin(self, effects).await?;
        let deleted = sqlx::query("DELETE FROM organizations WHERE id = ?1")
            .bind(id_text(id))
            .execute(write.conn())
            .await
            .map_err(map)?;
        found(deleted.rows_affected())?;
        write.commit().await
    }

    async fn delete_user_checked(
        &self,
        user_id: Uuid,
        effects: UserDeletionEffects,
    ) -> Result<UserDeletion, StoreError> {
        let user = id_text(user_id);
        // An immediate transaction: what is counted is what the deletes commit against.
        // Returning early drops it, which rolls it back.
        let mut tx = self.begin().await?;
        let found: Option<(bool, bool)> =
            sqlx::query_as("SELECT is_admin, disabled FROM users WHERE id = ?1")
                .bind(&user)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map)?;
        let (is_admin, disabled) = found.ok_or(StoreError::NotFound)?;
        let last_admin = is_admin
            && !disabled
            && sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM users WHERE is_admin AND NOT disabled AND id <> ?1",
            )
            .bind(&user)
            .fetch_one(&mut *tx)
            .await
            .map_err(map)?
                == 0;
        let held = sqlx::query_as::<_, HeldRow>(&format!(
            "SELECT {ORGANIZATION_COLUMNS}, {MEMBERSHIP_COLUMNS}, \
                 (SELECT count(*) FROM organization_memberships x \
                  WHERE x.organization_id = m.organization_id AND x.role = ?2) AS owners, \
                 (SELECT count(*) FROM organization_memberships x \
                  WHERE x.organization_id = m.organization_id) AS members \
             {MEMBERSHIP_WITH_ORGANIZATION_FROM} \
             WHERE m.user_id = ?1 ORDER BY m.organization_id"
        ))
        .bind(&user)
        .bind(OrgRole::Owner.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(map)?
        .into_iter()
        .map(HeldRow::into_parts)
        .collect::<Result<Vec<_>, _>>()?;
        let counts: Vec<_> = held
            .iter()
            .map(|(h, owners, members)| (h.organization.id, h.membership.role, *owners, *members))
            .collect();
        if let Some(refused) = UserDeletion::refusal(last_admin, &counts) {
            return Ok(refused);
        }
        let (mut organizations, mut memberships) = (Vec::new(), Vec::new());
        for (h, _, members) in held {
            if members <= 1 {
                organizations.push(h.organization);
            } else {
                memberships.push(h.membership);
            }
        }
        for organization in &organizations {
            sqlx::query("DELETE FROM organizations WHERE id = ?1")
                .bind(id_text(organization.id))
                .execute(&mut *tx)
                .await
                .map_err(map)?;
        }
        // The foreign keys take the rest: memberships, sessions, refresh tokens.
        sqlx::query("DELETE FROM users WHERE id = ?1")
            .bind(&user)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        insert_effects(&mut tx, &effects(&organizations, &memberships)).await?;
        tx.commit().await.map_err(map)?;
        Ok(UserDeletion::Deleted {
            organizations,
            memberships,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use authara_core::store::{SchemaStore as _, SessionStore as _};
    use time::macros::datetime;

    /// Users and a session as they were before organizations: no membership, no active
    /// organization.
    async fn legacy_rows(store: &SqliteStore, users: &[(&str, &str)]) -> Vec<Uuid> {
        let mut ids = Vec::new();
        for (email, username) in users {
            let id = Uuid::new_v4();
            sqlx::query(
                "INSERT INTO users (id, email, username, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, 0, 0)",
            )
            .bind(id_text(id))
            .bind(email)
            .bind(username)
            .execute(&store.writer)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO sessions (id, user_id, user_agent, client_ip, created_at, expires_at) \
                 VALUES (?1, ?2, 'agent', '192.0.2.1', 0, 9000000000000000)",
            )
            .bind(id_text(Uuid::new_v4()))
            .bind(id_text(id))
            .execute(&store.writer)
            .await
            .unwrap();
            ids.push(id);
        }
        ids
    }

    #[tokio::test]
    async fn backfill_gives_legacy_users_v4_ids_and_names_after_upstreams_fallbacks() {
        let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        let users = [
            ("alice@x.test", "alice"),
            ("bob@x.test", ""),
            ("@x.test", " "),
            ("no-at-sign", "  "),
        ];
        let ids = legacy_rows(&store, &users).await;
        let now = datetime!(2030-01-01 0:00 UTC);
        let done = store
            .backfill_organizations(OrgKind::Personal, now)
            .await
            .unwrap();
        assert_eq!(
            done,
            Backfilled {
                organizations: 4,
                sessions: 4
            }
        );
        let mut seen = std::collections::HashSet::new();
        for (id, name) in ids
            .iter()
            .zip(["alice", "bob", DEFAULT_ORGANIZATION_NAME, "no-at-sign"])
        {
            let memberships = store.list_user_memberships(*id).await.unwrap();
            let [found] = &memberships[..] else {
                panic!("one membership");
            };
            let org = &found.organization;
            assert_eq!(org.id.get_version(), Some(uuid::Version::Random));
            assert_eq!(org.id.get_variant(), uuid::Variant::RFC4122);
            assert!(seen.insert(org.id));
            assert_eq!(org.name, name);
            assert_eq!(org.kind, OrgKind::Personal);
            assert_eq!(org.created_by_user_id, Some(*id));
            assert_eq!((org.created_at, org.updated_at), (now, now));
            assert_eq!(found.membership.role, OrgRole::Owner);
            assert_eq!(found.membership.created_at, now);
            let stored: String = sqlx::query_scalar("SELECT id FROM organizations WHERE id = ?1")
                .bind(id_text(org.id))
                .fetch_one(&store.reader)
                .await
                .unwrap();
            assert_eq!(stored, id_text(org.id));
            let sessions = store.list_live_sessions(*id, now).await.unwrap();
            let [session] = &sessions[..] else {
                panic!("one session");
            };
            let live = store
                .find_live_session_user(session.id, *id, now)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(live.organization.id, org.id);
        }
        assert_eq!(
            store
                .backfill_organizations(OrgKind::Personal, now)
                .await
                .unwrap(),
            Backfilled::default()
        );
        store.close().await;
    }
}

/// A membership of the user being deleted, with its organization's owner and member counts.
#[derive(sqlx::FromRow)]
struct HeldRow {
    #[sqlx(flatten)]
    held: MembershipWithOrganizationRow,
    owners: i64,
    members: i64,
}

impl HeldRow {
    fn into_parts(self) -> Result<(MembershipWithOrganization, i64, i64), StoreError> {
        Ok((self.held.into_record()?, self.owners, self.members))
    }
}

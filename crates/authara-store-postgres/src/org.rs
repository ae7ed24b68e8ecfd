//! Organizations, memberships and the pinned organization mode. A user's first organization is
//! inserted with the user (`user::insert_user`) and a session's active one with the session
//! (`session`); what is here reads them, renames them, and fills them in for users and
//! sessions from before organizations existed.

use async_trait::async_trait;
use authara_core::org::{OrgKind, OrgMode, OrgRole};
use authara_core::store::{
    Backfilled, Effects, InitialOrganization, MemberRecord, MembershipRecord,
    MembershipWithOrganization, NewOrganization, OrganizationRecord, OrganizationStore, Removal,
    RoleEffects, StoreError, UniqueKey, UserDeletion, UserDeletionEffects,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::effects::{insert_effects, Write};
use crate::error::map;
use crate::rows::{
    parse_role, MemberRow, MembershipRow, MembershipWithOrganizationRow, OrganizationRow,
    MEMBERSHIP_COLUMNS, ORGANIZATION_COLUMNS,
};
use crate::session::lock_user;
use crate::{found, PgStore};

/// The stored mode, if any.
fn parse_mode(stored: Option<String>) -> Result<Option<OrgMode>, StoreError> {
    stored
        .map(|mode| {
            OrgMode::parse(&mode)
                .ok_or_else(|| StoreError::invalid("unknown organization mode in the database"))
        })
        .transpose()
}

#[async_trait]
impl OrganizationStore for PgStore {
    async fn pin_organization_mode(
        &self,
        mode: OrgMode,
        now: OffsetDateTime,
    ) -> Result<OrgMode, StoreError> {
        // Two statements: of concurrent first calls, the losers' inserts wait for the winner's
        // commit and do nothing, and only a statement that starts after that (not one sharing
        // the insert's snapshot) sees the winner's row.
        sqlx::query(
            "INSERT INTO organization_mode (id, mode, created_at) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(mode.as_str())
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(map)?;
        self.organization_mode()
            .await?
            .ok_or_else(|| StoreError::invalid("the organization mode vanished once pinned"))
    }

    async fn organization_mode(&self) -> Result<Option<OrgMode>, StoreError> {
        let stored: Option<String> =
            sqlx::query_scalar("SELECT mode FROM organization_mode WHERE id = 1")
                .fetch_optional(&self.pool)
                .await
                .map_err(map)?;
        parse_mode(stored)
    }

    async fn backfill_organizations(
        &self,
        kind: OrgKind,
        now: OffsetDateTime,
    ) -> Result<Backfilled, StoreError> {
        // The table lock makes concurrent backfills (instances starting together) and
        // `ensure_initial_organization` take turns: whoever comes second starts its statements
        // after the first committed, finds those users provided for, and creates nothing.
        let mut tx = self.pool.begin().await.map_err(map)?;
        sqlx::query("LOCK TABLE organization_mode IN EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        // Set-based: every user without a membership at once. The name follows
        // `org::initial_name` (username, else the email's local part, else the default) as far
        // as SQL trims alike. A user who already created a personal organization yet has no
        // membership is skipped for a personal one: the one-per-creator index would fail the
        // whole backfill.
        let organizations: i64 = sqlx::query_scalar(
            "WITH lonely AS ( \
                 SELECT u.id AS user_id, gen_random_uuid() AS organization_id, \
                     COALESCE(NULLIF(btrim(u.username), ''), \
                              NULLIF(btrim(split_part(u.email, '@', 1)), ''), \
                              $3) AS name \
                 FROM users u \
                 WHERE NOT EXISTS ( \
                         SELECT 1 FROM organization_memberships m WHERE m.user_id = u.id) \
                   AND NOT ($1 = 'personal' AND EXISTS ( \
                         SELECT 1 FROM organizations o \
                         WHERE o.created_by_user_id = u.id AND o.kind = 'personal'))), \
             o AS ( \
                 INSERT INTO organizations \
                     (id, name, kind, created_by_user_id, created_at, updated_at) \
                 SELECT organization_id, name, $1, user_id, $2, $2 FROM lonely \
                 RETURNING id, created_by_user_id), \
             m AS ( \
                 INSERT INTO organization_memberships \
                     (organization_id, user_id, role, created_at, updated_at) \
                 SELECT id, created_by_user_id, $4, $2, $2 FROM o \
                 RETURNING 1) \
             SELECT COUNT(*) FROM m",
        )
        .bind(kind.as_str())
        .bind(now)
        .bind(authara_core::org::DEFAULT_ORGANIZATION_NAME)
        .bind(OrgRole::Owner.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(map)?;
        // A statement of its own, so it sees the memberships just inserted. The default
        // organization is `create_session`'s: the oldest personal membership, else the oldest.
        let sessions = sqlx::query(
            "UPDATE sessions s SET active_organization_id = d.organization_id \
             FROM ( \
                 SELECT DISTINCT ON (m.user_id) m.user_id, m.organization_id \
                 FROM organization_memberships m \
                 JOIN organizations o ON o.id = m.organization_id \
                 WHERE m.user_id IN ( \
                     SELECT user_id FROM sessions WHERE active_organization_id IS NULL) \
                 ORDER BY m.user_id, o.kind <> 'personal', m.created_at, m.organization_id \
             ) d \
             WHERE s.active_organization_id IS NULL AND s.user_id = d.user_id",
        )
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        tx.commit().await.map_err(map)?;
        Ok(Backfilled {
            organizations: u64::try_from(organizations)
                .map_err(|_| StoreError::invalid("negative count from the database"))?,
            sessions: sessions.rows_affected(),
        })
    }

    async fn ensure_initial_organization(
        &self,
        user_id: Uuid,
        organization: InitialOrganization,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<bool, StoreError> {
        // Two locks, each a statement of its own so that the insert's snapshot sees what their
        // previous holders committed: the mode table in a mode that only a backfill's conflicts
        // with (concurrent calls do not wait for each other here), then the user's row, which
        // makes concurrent calls for one user take turns. The second of two finds the first's
        // membership and inserts nothing; an unknown user makes `u` empty.
        let mut tx = self.pool.begin().await.map_err(map)?;
        sqlx::query("LOCK TABLE organization_mode IN ROW SHARE MODE")
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        lock_user(&mut tx, user_id).await?;
        let created: bool = sqlx::query_scalar(
            "WITH u AS ( \
                 SELECT id FROM users \
                 WHERE id = $1 \
                   AND NOT EXISTS (SELECT 1 FROM organization_memberships WHERE user_id = $1)), \
             o AS ( \
                 INSERT INTO organizations \
                     (id, name, kind, created_by_user_id, created_at, updated_at) \
                 SELECT $2, $3, $4, u.id, $5, $5 FROM u \
                 RETURNING id), \
             m AS ( \
                 INSERT INTO organization_memberships \
                     (organization_id, user_id, role, created_at, updated_at) \
                 SELECT o.id, $1, $6, $5, $5 FROM o \
                 RETURNING 1) \
             SELECT EXISTS (SELECT 1 FROM m)",
        )
        .bind(user_id)
        .bind(organization.id)
        .bind(&organization.name)
        .bind(organization.kind.as_str())
        .bind(now)
        .bind(OrgRole::Owner.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(map)?;
        if !created {
            tx.rollback().await.map_err(map)?;
            return Ok(false);
        }
        insert_effects(&mut tx, &effects).await?;
        tx.commit().await.map_err(map)?;
        Ok(true)
    }

    async fn find_organization(&self, id: Uuid) -> Result<Option<OrganizationRecord>, StoreError> {
        let row = sqlx::query_as::<_, OrganizationRow>(&format!(
            "SELECT {ORGANIZATION_COLUMNS} FROM organizations o WHERE o.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        row.map(OrganizationRecord::try_from).transpose()
    }

    async fn find_membership(
        &self,
        organization_id: Uuid,
        user_id: Uuid,
    ) -> Result<Option<MembershipWithOrganization>, StoreError> {
        let row = sqlx::query_as::<_, MembershipWithOrganizationRow>(&format!(
            "SELECT {ORGANIZATION_COLUMNS}, {MEMBERSHIP_COLUMNS} \
             FROM organization_memberships m \
             JOIN organizations o ON o.id = m.organization_id \
             WHERE m.organization_id = $1 AND m.user_id = $2"
        ))
        .bind(organization_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        row.map(MembershipWithOrganization::try_from).transpose()
    }

    async fn list_user_memberships(
        &self,
        user_id: Uuid,
    ) -> Result<Vec<MembershipWithOrganization>, StoreError> {
        let rows = sqlx::query_as::<_, MembershipWithOrganizationRow>(&format!(
            "SELECT {ORGANIZATION_COLUMNS}, {MEMBERSHIP_COLUMNS} \
             FROM organization_memberships m \
             JOIN organizations o ON o.id = m.organization_id \
             WHERE m.user_id = $1 \
             ORDER BY m.created_at, m.organization_id"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        rows.into_iter()
            .map(MembershipWithOrganization::try_from)
            .collect()
    }

    async fn list_members(&self, organization_id: Uuid) -> Result<Vec<MemberRecord>, StoreError> {
        let rows = sqlx::query_as::<_, MemberRow>(&format!(
            "SELECT {MEMBERSHIP_COLUMNS}, u.email, u.username, u.disabled \
             FROM organization_memberships m \
             JOIN users u ON u.id = m.user_id \
             WHERE m.organization_id = $1 \
             ORDER BY m.created_at, m.user_id"
        ))
        .bind(organization_id)
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        rows.into_iter().map(MemberRecord::try_from).collect()
    }

    async fn rename_organization(
        &self,
        id: Uuid,
        name: &str,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<OrganizationRecord, StoreError> {
        // An unknown id returns before the commit: the write, effects included, rolls back.
        let mut write = Write::begin(&self.pool, effects).await?;
        let row = sqlx::query_as::<_, OrganizationRow>(&format!(
            "UPDATE organizations o SET name = $2, updated_at = $3 WHERE o.id = $1 \
             RETURNING {ORGANIZATION_COLUMNS}"
        ))
        .bind(id)
        .bind(name)
        .bind(now)
        .fetch_optional(write.conn())
        .await
        .map_err(map)?
        .ok_or(StoreError::NotFound)?;
        let renamed = OrganizationRecord::try_from(row)?;
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
        // One statement: the foreign keys are checked at its end, so the membership may name the
        // organization inserted with it, and an unknown owner fails both (`NotFound`).
        let mut write = Write::begin(&self.pool, effects).await?;
        let row = sqlx::query_as::<_, MembershipWithOrganizationRow>(&format!(
            "WITH o AS ( \
                 INSERT INTO organizations \
                     (id, name, kind, created_by_user_id, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $5) \
                 RETURNING *), \
             m AS ( \
                 INSERT INTO organization_memberships \
                     (organization_id, user_id, role, created_at, updated_at) \
                 SELECT o.id, $4, $6, $5, $5 FROM o \
                 RETURNING *) \
             SELECT {ORGANIZATION_COLUMNS}, {MEMBERSHIP_COLUMNS} FROM o CROSS JOIN m"
        ))
        .bind(organization.id)
        .bind(&organization.name)
        .bind(OrgKind::Team.as_str())
        .bind(owner)
        .bind(now)
        .bind(OrgRole::Owner.as_str())
        .fetch_one(write.conn())
        .await
        .map_err(map)?;
        let created = MembershipWithOrganization::try_from(row)?;
        write.commit().await?;
        Ok(created)
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
        let mut write = Write::begin(&self.pool, effects).await?;
        let row = sqlx::query_as::<_, MembershipRow>(&format!(
            "INSERT INTO organization_memberships AS m \
                 (organization_id, user_id, role, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) \
             RETURNING {MEMBERSHIP_COLUMNS}"
        ))
        .bind(organization_id)
        .bind(user_id)
        .bind(role.as_str())
        .bind(now)
        .fetch_one(write.conn())
        .await
        .map_err(map)?;
        let added = MembershipRecord::try_from(row)?;
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
        let mut write = Write::begin(&self.pool, effects).await?;
        let row = sqlx::query_as::<_, MembershipRow>(&format!(
            "UPDATE organization_memberships m SET role = $3, updated_at = $4 \
             WHERE m.organization_id = $1 AND m.user_id = $2 \
             RETURNING {MEMBERSHIP_COLUMNS}"
        ))
        .bind(organization_id)
        .bind(user_id)
        .bind(role.as_str())
        .bind(now)
        .fetch_optional(write.conn())
        .await
        .map_err(map)?
        .ok_or(StoreError::NotFound)?;
        let changed = MembershipRecord::try_from(row)?;
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
        // The organization's row, locked first, makes concurrent transfers take turns (each
        // statement after it sees what the previous holder committed), so they cannot leave
        // two owners. `NO KEY UPDATE` does not block memberships being added meanwhile.
        let mut tx = self.pool.begin().await.map_err(map)?;
        sqlx::query("SELECT 1 FROM organizations WHERE id = $1 FOR NO KEY UPDATE")
            .bind(organization_id)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        let promoted = sqlx::query(
            "UPDATE organization_memberships SET role = $3, updated_at = $4 \
             WHERE organization_id = $1 AND user_id = $2",
        )
        .bind(organization_id)
        .bind(new_owner)
        .bind(OrgRole::Owner.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        // Not a member: returning drops the transaction, which rolls it back.
        found(promoted.rows_affected())?;
        sqlx::query(
            "UPDATE organization_memberships SET role = $4, updated_at = $5 \
             WHERE organization_id = $1 AND user_id <> $2 AND role = $3",
        )
        .bind(organization_id)
        .bind(new_owner)
        .bind(OrgRole::Owner.as_str())
        .bind(OrgRole::Admin.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        insert_effects(&mut tx, &effects).await?;
        tx.commit().await.map_err(map)
    }

    async fn remove_membership(
        &self,
        organization_id: Uuid,
        user_id: Uuid,
        owner_removable: bool,
        effects: RoleEffects,
    ) -> Result<Removal, StoreError> {
        // The organization's row, then the user's, locked in that order by every removal:
        // removals in one organization take turns (two cannot remove its last two owners), as
        // do removals of one user (two cannot remove their last two memberships), and each
        // counts what the one before it committed. `NO KEY UPDATE` leaves inserts alone.
        let mut tx = self.pool.begin().await.map_err(map)?;
        sqlx::query("SELECT 1 FROM organizations WHERE id = $1 FOR NO KEY UPDATE")
            .bind(organization_id)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        lock_user(&mut tx, user_id).await?;
        let counted: Option<(String, i64, i64)> = sqlx::query_as(
            "SELECT m.role, \
                 (SELECT count(*) FROM organization_memberships o \
                  WHERE o.organization_id = $1 AND o.role = $3), \
                 (SELECT count(*) FROM organization_memberships u WHERE u.user_id = $2) \
             FROM organization_memberships m \
             WHERE m.organization_id = $1 AND m.user_id = $2",
        )
        .bind(organization_id)
        .bind(user_id)
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
        // The delete trigger reports the user on the change feed: their cached sessions go.
        sqlx::query(
            "DELETE FROM organization_memberships WHERE organization_id = $1 AND user_id = $2",
        )
        .bind(organization_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        insert_effects(&mut tx, &effects(role)).await?;
        tx.commit().await.map_err(map)?;
        Ok(Removal::Removed(role))
    }

    async fn delete_organization(&self, id: Uuid, effects: Effects) -> Result<(), StoreError> {
        // The foreign keys do the rest: the memberships go (their delete trigger reports each
        // member), and the sessions acting in it lose their active organization (the
        // referential action is an UPDATE of the column, so its trigger reports each session).
        let mut write = Write::begin(&self.pool, effects).await?;
        let deleted = sqlx::query("DELETE FROM organizations WHERE id = $1")
            .bind(id)
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
        // Which organizations to lock is read before the locks; a membership added in between
        // shows when they are read again under the locks, and the attempt starts over.
        let mut effects = Some(effects);
        for _ in 0..DELETE_USER_ATTEMPTS {
            let Some(effects_now) = effects.take() else {
                break;
            };
            match self.try_delete_user(user_id, effects_now).await? {
                Attempted::Done(done) => return Ok(done),
                Attempted::Moved(back) => effects = Some(back),
            }
        }
        Err(StoreError::Conflict(UniqueKey::Other))
    }
}

/// How many times [`OrganizationStore::delete_user_checked`] reads the user's memberships
/// again when they changed between the read and the locks.
const DELETE_USER_ATTEMPTS: usize = 5;

/// One attempt at a user's deletion: done (deleted or refused), or the memberships moved
/// under it (nothing changed; the effects come back for the next attempt).
enum Attempted {
    Done(UserDeletion),
    Moved(UserDeletionEffects),
}

/// A membership of the user being deleted, with its organization's owner and member counts.
#[derive(sqlx::FromRow)]
struct HeldRow {
    #[sqlx(flatten)]
    held: MembershipWithOrganizationRow,
    owners: i64,
    members: i64,
}

impl PgStore {
    async fn try_delete_user(
        &self,
        user_id: Uuid,
        effects: UserDeletionEffects,
    ) -> Result<Attempted, StoreError> {
        let seen: Vec<Uuid> = sqlx::query_scalar(
            "SELECT organization_id FROM organization_memberships WHERE user_id = $1 \
             ORDER BY organization_id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        // Returning early drops the transaction, which rolls it back.
        let mut tx = self.pool.begin().await.map_err(map)?;
        // The organizations first, then users, as every removal locks them. `FOR UPDATE` (not
        // `NO KEY UPDATE`) also holds off a membership being inserted into them meanwhile (its
        // foreign key check waits), so an organization counted as the user's alone is still
        // theirs alone when it is deleted.
        sqlx::query("SELECT 1 FROM organizations WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind(&seen)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        let found: Option<(bool, bool)> =
            sqlx::query_as("SELECT is_admin, disabled FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map)?;
        let Some((is_admin, disabled)) = found else {
            return Err(StoreError::NotFound);
        };
        // An enabled admin: every enabled admin's row, in id order, so that two admins deleted
        // at once count each other under the same locks (one of them goes, the other is last).
        let last_admin = if is_admin && !disabled {
            let admins: Vec<Uuid> = sqlx::query_scalar(
                "SELECT id FROM users WHERE is_admin AND NOT disabled ORDER BY id FOR UPDATE",
            )
            .fetch_all(&mut *tx)
            .await
            .map_err(map)?;
            admins.iter().all(|id| *id == user_id)
        } else {
            false
        };
        sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE")
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        let held: Vec<(MembershipWithOrganization, i64, i64)> =
            sqlx::query_as::<_, HeldRow>(&format!(
                "SELECT {ORGANIZATION_COLUMNS}, {MEMBERSHIP_COLUMNS}, \
                     (SELECT count(*) FROM organization_memberships x \
                      WHERE x.organization_id = m.organization_id AND x.role = $2) AS owners, \
                     (SELECT count(*) FROM organization_memberships x \
                      WHERE x.organization_id = m.organization_id) AS members \
                 FROM organization_memberships m JOIN organizations o ON o.id = m.organization_id \
                 WHERE m.user_id = $1 ORDER BY m.organization_id"
            ))
            .bind(user_id)
            .bind(OrgRole::Owner.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(map)?
            .into_iter()
            .map(|row| Ok((row.held.try_into()?, row.owners, row.members)))
            .collect::<Result<_, StoreError>>()?;
        if held
            .iter()
            .map(|(h, ..)| h.organization.id)
            .ne(seen.iter().copied())
        {
            return Ok(Attempted::Moved(effects));
        }
        let counts: Vec<_> = held
            .iter()
            .map(|(h, owners, members)| (h.organization.id, h.membership.role, *owners, *members))
            .collect();
        if let Some(refused) = UserDeletion::refusal(last_admin, &counts) {
            return Ok(Attempted::Done(refused));
        }
        let (mut organizations, mut memberships) = (Vec::new(), Vec::new());
        for (h, _, members) in held {
            if members <= 1 {
                organizations.push(h.organization);
            } else {
                memberships.push(h.membership);
            }
        }
        let alone: Vec<Uuid> = organizations.iter().map(|o| o.id).collect();
        sqlx::query("DELETE FROM organizations WHERE id = ANY($1)")
            .bind(&alone)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        // The foreign keys take the rest: memberships, sessions, refresh tokens.
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        insert_effects(&mut tx, &effects(&organizations, &memberships)).await?;
        tx.commit().await.map_err(map)?;
        Ok(Attempted::Done(UserDeletion::Deleted {
            organizations,
            memberships,
        }))
    }
}

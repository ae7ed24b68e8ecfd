//! Users. Each write commits its [`Effects`] with its change (see [`Write`]).

use async_trait::async_trait;
use authara_core::org::OrgRole;
use authara_core::store::{
    Effects, InitialOrganization, NewUser, SessionsToRevoke, StoreError, UserRecord, UserStore,
};
use sqlx::postgres::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::effects::{insert_effects, Write};
use crate::error::map;
use crate::rows::{UserRow, USER_COLUMNS};
use crate::session::revoke_live_sessions;
use crate::{found, PgStore};

/// A new account and its initial organization, as both ways of creating one insert it.
pub(crate) struct UserToInsert<'a> {
    pub(crate) id: Uuid,
    pub(crate) email: &'a str,
    pub(crate) username: &'a str,
    pub(crate) password_hash: Option<&'a str>,
    /// `None`: the user alone (an invited user who joins the inviting organization only).
    pub(crate) organization: Option<&'a InitialOrganization>,
    /// The creation time of the user, the organization and the membership alike.
    pub(crate) at: OffsetDateTime,
}

/// Inserts a user (enabled, not admin), their initial organization and their owner
/// membership there, and returns the user. One statement, so all three exist or none does
/// even outside a transaction: the foreign keys between them are checked at its end, when
/// every row is there. A taken email or username fails it with `Conflict`.
pub(crate) async fn insert_user(
    conn: &mut PgConnection,
    user: UserToInsert<'_>,
) -> Result<UserRecord, StoreError> {
    let Some(organization) = user.organization else {
        let row = sqlx::query_as::<_, UserRow>(&format!(
            "INSERT INTO users \
                 (id, email, username, password_hash, is_admin, disabled, created_at, \
                  updated_at) \
             VALUES ($1, $2, $3, $4, FALSE, FALSE, $5, $5) \
             RETURNING {USER_COLUMNS}"
        ))
        .bind(user.id)
        .bind(user.email)
        .bind(user.username)
        .bind(user.password_hash)
        .bind(user.at)
        .fetch_one(conn)
        .await
        .map_err(map)?;
        return Ok(row.into());
    };
    let row = sqlx::query_as::<_, UserRow>(&format!(
        "WITH u AS ( \
             INSERT INTO users \
                 (id, email, username, password_hash, is_admin, disabled, created_at, \
                  updated_at) \
             VALUES ($1, $2, $3, $4, FALSE, FALSE, $5, $5) \
             RETURNING {USER_COLUMNS}), \
         o AS ( \
             INSERT INTO organizations \
                 (id, name, kind, created_by_user_id, created_at, updated_at) \
             SELECT $6, $7, $8, u.id, $5, $5 FROM u \
             RETURNING id), \
         m AS ( \
             INSERT INTO organization_memberships \
                 (organization_id, user_id, role, created_at, updated_at) \
             SELECT o.id, $1, $9, $5, $5 FROM o) \
         SELECT * FROM u"
    ))
    .bind(user.id)
    .bind(user.email)
    .bind(user.username)
    .bind(user.password_hash)
    .bind(user.at)
    .bind(organization.id)
    .bind(&organization.name)
    .bind(organization.kind.as_str())
    .bind(OrgRole::Owner.as_str())
    .fetch_one(conn)
    .await
    .map_err(map)?;
    Ok(row.into())
}

#[async_trait]
impl UserStore for PgStore {
    async fn create_user(&self, user: NewUser, effects: Effects) -> Result<(), StoreError> {
        let mut write = Write::begin(&self.pool, effects).await?;
        insert_user(
            write.conn(),
            UserToInsert {
                id: user.id,
                email: &user.email,
                username: &user.username,
                password_hash: user.password_hash.as_deref(),
                organization: Some(&user.organization),
                at: user.created_at,
            },
        )
        .await?;
        write.commit().await
    }

    async fn find_user_by_id(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query_as::<_, UserRow>(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        Ok(row.map(UserRecord::from))
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query_as::<_, UserRow>(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE email = $1"
        ))
        .bind(email)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        Ok(row.map(UserRecord::from))
    }

    async fn set_password_hash(
        &self,
        user_id: Uuid,
        hash: &str,
        revoke: SessionsToRevoke,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<u64, StoreError> {
        let keep = match revoke {
            SessionsToRevoke::None => {
                let mut write = Write::begin(&self.pool, effects).await?;
                let done = sqlx::query(
                    "UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1",
                )
                .bind(user_id)
                .bind(hash)
                .bind(now)
                .execute(write.conn())
                .await
                .map_err(map)?;
                found(done.rows_affected())?;
                write.commit().await?;
                return Ok(0);
            }
            SessionsToRevoke::AllExcept(keep) => Some(keep),
            SessionsToRevoke::All => None,
        };
        // The user's row is locked by the update, before the sessions are read by a statement
        // of their own: a session created for this user meanwhile (its insert takes the same
        // lock first) is either committed before, and revoked, or created after the change.
        let mut tx = self.pool.begin().await.map_err(map)?;
        let done =
            sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
                .bind(user_id)
                .bind(hash)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(map)?;
        found(done.rows_affected())?;
        let revoked = revoke_live_sessions(&mut tx, user_id, keep, now).await?;
        insert_effects(&mut tx, &effects).await?;
        tx.commit().await.map_err(map)?;
        Ok(revoked)
    }

    async fn set_username(
        &self,
        user_id: Uuid,
        username: &str,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<(), StoreError> {
        let mut write = Write::begin(&self.pool, effects).await?;
        let done = sqlx::query("UPDATE users SET username = $2, updated_at = $3 WHERE id = $1")
            .bind(user_id)
            .bind(username)
            .bind(now)
            .execute(write.conn())
            .await
            .map_err(map)?;
        found(done.rows_affected())?;
        write.commit().await
    }

    async fn set_admin_by_email(
        &self,
        email: &str,
        is_admin: bool,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<(), StoreError> {
        let mut write = Write::begin(&self.pool, effects).await?;
        let done = sqlx::query("UPDATE users SET is_admin = $2, updated_at = $3 WHERE email = $1")
            .bind(email)
            .bind(is_admin)
            .bind(now)
            .execute(write.conn())
            .await
            .map_err(map)?;
        found(done.rows_affected())?;
        write.commit().await
    }

    async fn set_disabled(
        &self,
        user_id: Uuid,
        disabled: bool,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<(), StoreError> {
        let mut write = Write::begin(&self.pool, effects).await?;
        // One statement (one round trip, its own transaction unless there are effects). The
        // sessions' update reads the users' output, so it revokes nothing for an unknown user.
        let found_user: bool = sqlx::query_scalar(
            "WITH u AS ( \
                 UPDATE users SET disabled = $2, updated_at = $3 WHERE id = $1 \
                 RETURNING id), \
             s AS ( \
                 UPDATE sessions SET revoked_at = $3 \
                 WHERE $2 AND revoked_at IS NULL AND user_id IN (SELECT id FROM u)) \
             SELECT EXISTS (SELECT 1 FROM u)",
        )
        .bind(user_id)
        .bind(disabled)
        .bind(now)
        .fetch_one(write.conn())
        .await
        .map_err(map)?;
        if !found_user {
            return Err(StoreError::NotFound);
        }
        write.commit().await
    }

    async fn delete_user(&self, user_id: Uuid, effects: Effects) -> Result<(), StoreError> {
        let mut write = Write::begin(&self.pool, effects).await?;
        let done = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user_id)
            .execute(write.conn())
            .await
            .map_err(map)?;
        found(done.rows_affected())?;
        write.commit().await
    }
}

//! Users. Each write commits its [`Effects`] with its change (see [`Write`]).

use async_trait::async_trait;
use authara_core::store::{Effects, NewUser, SessionsToRevoke, StoreError, UserRecord, UserStore};
use time::OffsetDateTime;
use uuid::Uuid;

use sqlx::sqlite::SqliteConnection;

use crate::effects::Write;
use crate::error::map;
use crate::org::insert_owned_organization;
use crate::rows::{id_text, micros, UserRow, USER_COLUMNS};
use crate::session::revoke_live_sessions;
use crate::{found, SqliteStore};

/// Inserts `user` (not admin, enabled) with their initial organization and owner membership,
/// all created at `user.created_at`, on `conn`, which must be inside the caller's transaction;
/// returns the user as stored. Shared by `create_user` and signup completion.
pub(crate) async fn insert_user(
    conn: &mut SqliteConnection,
    user: &NewUser,
) -> Result<UserRecord, StoreError> {
    let record = insert_account(conn, user).await?;
    insert_owned_organization(conn, &user.organization, user.id, micros(user.created_at)?).await?;
    Ok(record)
}

/// Inserts `user` (not admin, enabled) alone, without `user.organization`: an invited user
/// who joins the inviting organization only. Inside the caller's transaction.
pub(crate) async fn insert_account(
    conn: &mut SqliteConnection,
    user: &NewUser,
) -> Result<UserRecord, StoreError> {
    let created_at = micros(user.created_at)?;
    let record = sqlx::query_as::<_, UserRow>(&format!(
        "INSERT INTO users \
             (id, email, username, password_hash, is_admin, disabled, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, 0, 0, ?5, ?5) \
         RETURNING {USER_COLUMNS}"
    ))
    .bind(id_text(user.id))
    .bind(&user.email)
    .bind(&user.username)
    .bind(user.password_hash.as_deref())
    .bind(created_at)
    .fetch_one(&mut *conn)
    .await
    .map_err(map)?
    .into_record()?;
    Ok(record)
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, user: NewUser, effects: Effects) -> Result<(), StoreError> {
        let mut write = Write::transaction(self, effects).await?;
        insert_user(write.conn(), &user).await?;
        write.commit().await
    }

    async fn find_user_by_id(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError> {
        sqlx::query_as::<_, UserRow>(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))
            .bind(id_text(id))
            .fetch_optional(&self.reader)
            .await
            .map_err(map)?
            .map(UserRow::into_record)
            .transpose()
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        sqlx::query_as::<_, UserRow>(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE email = ?1"
        ))
        .bind(email)
        .fetch_optional(&self.reader)
        .await
        .map_err(map)?
        .map(UserRow::into_record)
        .transpose()
    }

    async fn set_password_hash(
        &self,
        user_id: Uuid,
        hash: &str,
        revoke: SessionsToRevoke,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<u64, StoreError> {
        let id = id_text(user_id);
        let now = micros(now)?;
        let mut write = match revoke {
            SessionsToRevoke::None => Write::begin(self, effects).await?,
            _ => Write::transaction(self, effects).await?,
        };
        let done =
            sqlx::query("UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1")
                .bind(&id)
                .bind(hash)
                .bind(now)
                .execute(write.conn())
                .await
                .map_err(map)?;
        found(done.rows_affected())?;
        let keep = match revoke {
            SessionsToRevoke::None => {
                write.commit().await?;
                return Ok(0);
            }
            SessionsToRevoke::AllExcept(keep) => Some(id_text(keep)),
            SessionsToRevoke::All => None,
        };
        let revoked = revoke_live_sessions(write.conn(), &id, keep.as_deref(), now).await?;
        write.commit().await?;
        Ok(revoked)
    }

    async fn set_username(
        &self,
        user_id: Uuid,
        username: &str,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<(), StoreError> {
        let mut write = Write::begin(self, effects).await?;
        let done = sqlx::query("UPDATE users SET username = ?2, updated_at = ?3 WHERE id = ?1")
            .bind(id_text(user_id))
            .bind(username)
            .bind(micros(now)?)
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
        let mut write = Write::begin(self, effects).await?;
        let done = sqlx::query("UPDATE users SET is_admin = ?2, updated_at = ?3 WHERE email = ?1")
            .bind(email)
            .bind(is_admin)
            .bind(micros(now)?)
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
        let id = id_text(user_id);
        let now = micros(now)?;
        let mut write = Write::transaction(self, effects).await?;
        let done = sqlx::query("UPDATE users SET disabled = ?2, updated_at = ?3 WHERE id = ?1")
            .bind(&id)
            .bind(disabled)
            .bind(now)
            .execute(write.conn())
            .await
            .map_err(map)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        if disabled {
            sqlx::query(
                "UPDATE sessions SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
            )
            .bind(&id)
            .bind(now)
            .execute(write.conn())
            .await
            .map_err(map)?;
        }
        write.commit().await
    }

    async fn delete_user(&self, user_id: Uuid, effects: Effects) -> Result<(), StoreError> {
        let mut write = Write::begin(self, effects).await?;
        let done = sqlx::query("DELETE FROM users WHERE id = ?1")
            .bind(id_text(user_id))
            .execute(write.conn())
            .await
            .map_err(map)?;
        found(done.rows_affected())?;
        write.commit().await
    }
}

//! External sign-in identities (`auth_providers`). The unique keys decide links; an unlink
//! counts the user's other ways to sign in inside its immediate transaction, so two unlinks
//! of one user take turns and the second sees the first's outcome.

use async_trait::async_trait;
use authara_core::store::{
    Effects, IdentityRecord, IdentityStore, NewIdentity, NewUser, StoreError, Unlinked, UserRecord,
};
use sqlx::sqlite::SqliteConnection;
use sqlx::FromRow;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::effects::{insert_effects, Write};
use crate::error::map;
use crate::rows::{id_text, micros, parse_id, parse_opt_time, parse_time, UserRow, USER_COLUMNS};
use crate::user::insert_user;
use crate::{found, SqliteStore};

const IDENTITY_COLUMNS: &str =
    "id, user_id, provider, provider_user_id, email, created_at, last_used_at";

#[derive(FromRow)]
struct IdentityRow {
    id: String,
    user_id: String,
    provider: String,
    provider_user_id: String,
    email: Option<String>,
    created_at: i64,
    last_used_at: Option<i64>,
}

impl IdentityRow {
    fn into_record(self) -> Result<IdentityRecord, StoreError> {
        Ok(IdentityRecord {
            id: parse_id(&self.id)?,
            user_id: parse_id(&self.user_id)?,
            provider: self.provider,
            provider_user_id: self.provider_user_id,
            email: self.email,
            created_at: parse_time(self.created_at)?,
            last_used_at: parse_opt_time(self.last_used_at)?,
        })
    }
}

/// Inserts `identity` on `conn`.
async fn insert_identity(
    conn: &mut SqliteConnection,
    identity: &NewIdentity,
) -> Result<IdentityRecord, StoreError> {
    sqlx::query_as::<_, IdentityRow>(&format!(
        "INSERT INTO auth_providers \
             (id, user_id, provider, provider_user_id, email, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING {IDENTITY_COLUMNS}"
    ))
    .bind(id_text(identity.id))
    .bind(id_text(identity.user_id))
    .bind(&identity.provider)
    .bind(&identity.provider_user_id)
    .bind(&identity.email)
    .bind(micros(identity.created_at)?)
    .fetch_one(conn)
    .await
    .map_err(map)?
    .into_record()
}

#[async_trait]
impl IdentityStore for SqliteStore {
    async fn find_identity(
        &self,
        provider: &str,
        provider_user_id: &str,
    ) -> Result<Option<(IdentityRecord, UserRecord)>, StoreError> {
        let identity = sqlx::query_as::<_, IdentityRow>(&format!(
            "SELECT {IDENTITY_COLUMNS} FROM auth_providers \
             WHERE provider = ?1 AND provider_user_id = ?2"
        ))
        .bind(provider)
        .bind(provider_user_id)
        .fetch_optional(&self.reader)
        .await
        .map_err(map)?
        .map(IdentityRow::into_record)
        .transpose()?;
        let Some(identity) = identity else {
            return Ok(None);
        };
        let user = sqlx::query_as::<_, UserRow>(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id = ?1"
        ))
        .bind(id_text(identity.user_id))
        .fetch_optional(&self.reader)
        .await
        .map_err(map)?
        .map(UserRow::into_record)
        .transpose()?;
        // A user deleted between the two reads took the identity with them.
        Ok(user.map(|user| (identity, user)))
    }

    async fn list_identities(&self, user_id: Uuid) -> Result<Vec<IdentityRecord>, StoreError> {
        sqlx::query_as::<_, IdentityRow>(&format!(
            "SELECT {IDENTITY_COLUMNS} FROM auth_providers WHERE user_id = ?1 \
             ORDER BY created_at, id"
        ))
        .bind(id_text(user_id))
        .fetch_all(&self.reader)
        .await
        .map_err(map)?
        .into_iter()
        .map(IdentityRow::into_record)
        .collect()
    }

    async fn create_user_with_identity(
        &self,
        user: NewUser,
        identity: NewIdentity,
        effects: Effects,
    ) -> Result<UserRecord, StoreError> {
        if identity.user_id != user.id {
            return Err(StoreError::invalid("the identity must be the new user's"));
        }
        let mut write = Write::transaction(self, effects).await?;
        let created = insert_user(write.conn(), &user).await?;
        insert_identity(write.conn(), &identity).await?;
        write.commit().await?;
        Ok(created)
    }

    async fn link_identity(
        &self,
        identity: NewIdentity,
        effects: Effects,
    ) -> Result<IdentityRecord, StoreError> {
        let mut write = Write::transaction(self, effects).await?;
        // An unknown user fails the foreign key: `NotFound`.
        let linked = insert_identity(write.conn(), &identity).await?;
        write.commit().await?;
        Ok(linked)
    }

    async fn unlink_identity(
        &self,
        user_id: Uuid,
        provider: &str,
        effects: Effects,
    ) -> Result<Unlinked, StoreError> {
        let user = id_text(user_id);
        // Returning early drops the transaction, which rolls it back.
        let mut tx = self.begin().await?;
        let identity = sqlx::query_as::<_, IdentityRow>(&format!(
            "SELECT {IDENTITY_COLUMNS} FROM auth_providers WHERE user_id = ?1 AND provider = ?2"
        ))
        .bind(&user)
        .bind(provider)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map)?
        .map(IdentityRow::into_record)
        .transpose()?
        .ok_or(StoreError::NotFound)?;
        let (has_password, others): (bool, i64) = sqlx::query_as(
            "SELECT u.password_hash IS NOT NULL, \
                 (SELECT count(*) FROM auth_providers a WHERE a.user_id = u.id AND a.id <> ?2) \
             FROM users u WHERE u.id = ?1",
        )
        .bind(&user)
        .bind(id_text(identity.id))
        .fetch_one(&mut *tx)
        .await
        .map_err(map)?;
        if !has_password && others == 0 {
            return Ok(Unlinked::LastMethod);
        }
        sqlx::query("DELETE FROM auth_providers WHERE id = ?1")
            .bind(id_text(identity.id))
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        insert_effects(&mut tx, &effects).await?;
        tx.commit().await.map_err(map)?;
        Ok(Unlinked::Removed(identity))
    }

    async fn touch_identity(&self, id: Uuid, now: OffsetDateTime) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE auth_providers SET last_used_at = ?2 WHERE id = ?1")
            .bind(id_text(id))
            .bind(micros(now)?)
            .execute(&self.writer)
            .await
            .map_err(map)?;
        found(done.rows_affected())
    }
}

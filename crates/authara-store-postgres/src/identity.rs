//! External sign-in identities (`auth_providers`). The unique keys decide links; an unlink locks
//! the user's row before counting their other ways to sign in, so two unlinks of one user take
//! turns (READ COMMITTED: the second counts in a statement that starts after the first commits).

use async_trait::async_trait;
use authara_core::store::{
    Effects, IdentityRecord, IdentityStore, NewIdentity, NewUser, PendingLink, SignInFlow,
    StoreError, Unlinked, UserRecord,
};
use sqlx::postgres::PgConnection;
use sqlx::FromRow;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::effects::{insert_effects, Write};
use crate::error::map;
use crate::rows::{UserRow, USER_COLUMNS};
use crate::session::lock_user;
use crate::user::{insert_user, UserToInsert};
use crate::{found, PgStore};

const IDENTITY_COLUMNS: &str =
    "id, user_id, provider, provider_user_id, email, created_at, last_used_at";

#[derive(FromRow)]
struct IdentityRow {
    id: Uuid,
    user_id: Uuid,
    provider: String,
    provider_user_id: String,
    email: Option<String>,
    created_at: OffsetDateTime,
    last_used_at: Option<OffsetDateTime>,
}

impl From<IdentityRow> for IdentityRecord {
    fn from(row: IdentityRow) -> Self {
        IdentityRecord {
            id: row.id,
            user_id: row.user_id,
            provider: row.provider,
            provider_user_id: row.provider_user_id,
            email: row.email,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
        }
    }
}

/// Inserts `identity` on `conn`.
async fn insert_identity(
    conn: &mut PgConnection,
    identity: &NewIdentity,
) -> Result<IdentityRecord, StoreError> {
    let row = sqlx::query_as::<_, IdentityRow>(&format!(
        "INSERT INTO auth_providers \
             (id, user_id, provider, provider_user_id, email, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {IDENTITY_COLUMNS}"
    ))
    .bind(identity.id)
    .bind(identity.user_id)
    .bind(&identity.provider)
    .bind(&identity.provider_user_id)
    .bind(&identity.email)
    .bind(identity.created_at)
    .fetch_one(conn)
    .await
    .map_err(map)?;
    Ok(row.into())
}

#[async_trait]
impl IdentityStore for PgStore {
    async fn find_identity(
        &self,
        provider: &str,
        provider_user_id: &str,
    ) -> Result<Option<(IdentityRecord, UserRecord)>, StoreError> {
        let identity = sqlx::query_as::<_, IdentityRow>(&format!(
            "SELECT {IDENTITY_COLUMNS} FROM auth_providers \
             WHERE provider = $1 AND provider_user_id = $2"
        ))
        .bind(provider)
        .bind(provider_user_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        let Some(identity) = identity.map(IdentityRecord::from) else {
            return Ok(None);
        };
        let user = sqlx::query_as::<_, UserRow>(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id = $1"
        ))
        .bind(identity.user_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        // A user deleted between the two reads took the identity with them.
        Ok(user.map(|user| (identity, UserRecord::from(user))))
    }

    async fn list_identities(&self, user_id: Uuid) -> Result<Vec<IdentityRecord>, StoreError> {
        let rows = sqlx::query_as::<_, IdentityRow>(&format!(
            "SELECT {IDENTITY_COLUMNS} FROM auth_providers WHERE user_id = $1 \
             ORDER BY created_at, id"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        Ok(rows.into_iter().map(IdentityRecord::from).collect())
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
        let mut write = Write::begin(&self.pool, effects).await?;
        let created = insert_user(
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
        insert_identity(write.conn(), &identity).await?;
        write.commit().await?;
        Ok(created)
    }

    async fn link_identity(
        &self,
        identity: NewIdentity,
        effects: Effects,
    ) -> Result<IdentityRecord, StoreError> {
        let mut write = Write::begin(&self.pool, effects).await?;
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
        // Returning early drops the transaction, which rolls it back.
        let mut tx = self.pool.begin().await.map_err(map)?;
        lock_user(&mut tx, user_id).await?;
        let identity = sqlx::query_as::<_, IdentityRow>(&format!(
            "SELECT {IDENTITY_COLUMNS} FROM auth_providers WHERE user_id = $1 AND provider = $2"
        ))
        .bind(user_id)
        .bind(provider)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map)?
        .map(IdentityRecord::from)
        .ok_or(StoreError::NotFound)?;
        let (has_password, others): (bool, i64) = sqlx::query_as(
            "SELECT u.password_hash IS NOT NULL, \
                 (SELECT count(*) FROM auth_providers a WHERE a.user_id = u.id AND a.id <> $2) \
             FROM users u WHERE u.id = $1",
        )
        .bind(user_id)
        .bind(identity.id)
        .fetch_one(&mut *tx)
        .await
        .map_err(map)?;
        if !has_password && others == 0 {
            return Ok(Unlinked::LastMethod);
        }
        sqlx::query("DELETE FROM auth_providers WHERE id = $1")
            .bind(identity.id)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        insert_effects(&mut tx, &effects).await?;
        tx.commit().await.map_err(map)?;
        Ok(Unlinked::Removed(identity))
    }

    async fn create_pending_link(&self, link: PendingLink) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM pending_provider_links WHERE expires_at < $1")
            .bind(link.created_at)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        let done = sqlx::query(
            "INSERT INTO pending_provider_links (link_hash, user_id, provider, provider_user_id, provider_email, browser_hash, return_to, created_at, expires_at) \
             SELECT $1, id, $3, $4, $5, $6, $7, $8, $9 FROM users WHERE id = $2",
        )
        .bind(&link.link_hash)
        .bind(link.user_id)
        .bind(&link.provider)
        .bind(&link.provider_user_id)
        .bind(&link.provider_email)
        .bind(&link.browser_hash)
        .bind(&link.return_to)
        .bind(link.created_at)
        .bind(link.expires_at)
        .execute(&self.pool)
        .await
        .map_err(map)?;
        found(done.rows_affected())
    }

    async fn find_pending_link(&self, link_hash: &str) -> Result<Option<PendingLink>, StoreError> {
        let row = sqlx::query_as::<_, LinkRow>(
            "SELECT link_hash, user_id, provider, provider_user_id, provider_email, browser_hash, return_to, created_at, expires_at FROM pending_provider_links WHERE link_hash = $1",
        )
        .bind(link_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        Ok(row.map(LinkRow::into_link))
    }

    async fn take_pending_link(&self, link_hash: &str) -> Result<Option<PendingLink>, StoreError> {
        let row = sqlx::query_as::<_, LinkRow>(
            "DELETE FROM pending_provider_links WHERE link_hash = $1 RETURNING link_hash, user_id, provider, provider_user_id, provider_email, browser_hash, return_to, created_at, expires_at",
        )
        .bind(link_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        Ok(row.map(LinkRow::into_link))
    }

    async fn remove_password(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map)?;
        lock_user(&mut tx, user_id).await?;
        let (has_password, identities): (bool, i64) = sqlx::query_as(
            "SELECT u.password_hash IS NOT NULL, \
                 (SELECT count(*) FROM auth_providers a WHERE a.user_id = u.id) \
             FROM users u WHERE u.id = $1",
        )
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map)?
        .ok_or(StoreError::NotFound)?;
        if !has_password {
            return Err(StoreError::NotFound);
        }
        if identities == 0 {
            return Ok(false);
        }
        sqlx::query("UPDATE users SET password_hash = NULL, updated_at = $2 WHERE id = $1")
            .bind(user_id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        insert_effects(&mut tx, &effects).await?;
        tx.commit().await.map_err(map)?;
        Ok(true)
    }

    async fn touch_identity(&self, id: Uuid, now: OffsetDateTime) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE auth_providers SET last_used_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        found(done.rows_affected())
    }

    async fn begin_sign_in_flow(&self, flow: SignInFlow) -> Result<(), StoreError> {
        // Housekeeping first, apart from the insert: abandoned flows go as new ones start.
        sqlx::query("DELETE FROM sign_in_flows WHERE expires_at < $1")
            .bind(flow.created_at)
            .execute(&self.pool)
            .await
            .map_err(map)?;
        sqlx::query(
            "INSERT INTO sign_in_flows (state_hash, provider, browser_hash, code_verifier, \
                 nonce, return_to, link_user_id, created_at, expires_at, proves_link_hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&flow.state_hash)
        .bind(&flow.provider)
        .bind(&flow.browser_hash)
        .bind(&flow.code_verifier)
        .bind(&flow.nonce)
        .bind(&flow.return_to)
        .bind(flow.link_user_id)
        .bind(flow.created_at)
        .bind(flow.expires_at)
        .bind(&flow.proves_link_hash)
        .execute(&self.pool)
        .await
        .map_err(map)?;
        Ok(())
    }

    async fn take_sign_in_flow(&self, state_hash: &str) -> Result<Option<SignInFlow>, StoreError> {
        let row = sqlx::query_as::<_, FlowRow>(
            "DELETE FROM sign_in_flows WHERE state_hash = $1 \
             RETURNING state_hash, provider, browser_hash, code_verifier, nonce, return_to, \
                 link_user_id, created_at, expires_at, proves_link_hash",
        )
        .bind(state_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        Ok(row.map(|r| SignInFlow {
            state_hash: r.state_hash,
            provider: r.provider,
            browser_hash: r.browser_hash,
            code_verifier: r.code_verifier,
            nonce: r.nonce,
            return_to: r.return_to,
            link_user_id: r.link_user_id,
            created_at: r.created_at,
            expires_at: r.expires_at,
            proves_link_hash: r.proves_link_hash,
        }))
    }
}

#[derive(FromRow)]
struct FlowRow {
    state_hash: String,
    provider: String,
    browser_hash: String,
    code_verifier: String,
    nonce: String,
    return_to: Option<String>,
    link_user_id: Option<Uuid>,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    proves_link_hash: Option<String>,
}

#[derive(FromRow)]
struct LinkRow {
    link_hash: String,
    user_id: Uuid,
    provider: String,
    provider_user_id: String,
    provider_email: String,
    browser_hash: String,
    return_to: Option<String>,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
}

impl LinkRow {
    fn into_link(self) -> PendingLink {
        PendingLink {
            link_hash: self.link_hash,
            user_id: self.user_id,
            provider: self.provider,
            provider_user_id: self.provider_user_id,
            provider_email: self.provider_email,
            browser_hash: self.browser_hash,
            return_to: self.return_to,
            created_at: self.created_at,
            expires_at: self.expires_at,
        }
    }
}

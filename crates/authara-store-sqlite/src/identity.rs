//! External sign-in identities (`auth_providers`). The unique keys decide links; an unlink
//! counts the user's other ways to sign in inside its immediate transaction, so two unlinks
//! of one user take turns and the second sees the first's outcome.

use async_trait::async_trait;
use authara_core::store::{
    Effects, IdentityRecord, IdentityStore, NewIdentity, NewUser, PendingLink, SignInFlow,
    StoreError, Unlinked, UserRecord,
};
use sqlx::sqlite::SqliteConnection;
use sqlx::FromRow;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::effects::{insert_effects, Write};
use crate::error::map;
use crate::rows::{
    id_text, micros, parse_id, parse_opt_id, parse_opt_time, parse_time, UserRow, USER_COLUMNS,
};
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

    async fn create_pending_link(&self, link: PendingLink) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM pending_provider_links WHERE expires_at < ?1")
            .bind(micros(link.created_at)?)
            .execute(&self.writer)
            .await
            .map_err(map)?;
        let done = sqlx::query(
            "INSERT INTO pending_provider_links (link_hash, user_id, provider, provider_user_id, provider_email, browser_hash, return_to, created_at, expires_at) \
             SELECT ?1, id, ?3, ?4, ?5, ?6, ?7, ?8, ?9 FROM users WHERE id = ?2",
        )
        .bind(&link.link_hash)
        .bind(id_text(link.user_id))
        .bind(&link.provider)
        .bind(&link.provider_user_id)
        .bind(&link.provider_email)
        .bind(&link.browser_hash)
        .bind(&link.return_to)
        .bind(micros(link.created_at)?)
        .bind(micros(link.expires_at)?)
        .execute(&self.writer)
        .await
        .map_err(map)?;
        found(done.rows_affected())
    }

    async fn find_pending_link(&self, link_hash: &str) -> Result<Option<PendingLink>, StoreError> {
        sqlx::query_as::<_, LinkRow>(
            "SELECT link_hash, user_id, provider, provider_user_id, provider_email, browser_hash, return_to, created_at, expires_at FROM pending_provider_links WHERE link_hash = ?1",
        )
        .bind(link_hash)
        .fetch_optional(&self.reader)
        .await
        .map_err(map)?
        .map(LinkRow::into_link)
        .transpose()
    }

    async fn take_pending_link(&self, link_hash: &str) -> Result<Option<PendingLink>, StoreError> {
        sqlx::query_as::<_, LinkRow>(
            "DELETE FROM pending_provider_links WHERE link_hash = ?1 RETURNING link_hash, user_id, provider, provider_user_id, provider_email, browser_hash, return_to, created_at, expires_at",
        )
        .bind(link_hash)
        .fetch_optional(&self.writer)
        .await
        .map_err(map)?
        .map(LinkRow::into_link)
        .transpose()
    }

    async fn remove_password(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<bool, StoreError> {
        let user = id_text(user_id);
        let mut tx = self.begin().await?;
        let (has_password, identities): (bool, i64) = sqlx::query_as(
            "SELECT u.password_hash IS NOT NULL, \
                 (SELECT count(*) FROM auth_providers a WHERE a.user_id = u.id) \
             FROM users u WHERE u.id = ?1",
        )
        .bind(&user)
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
        sqlx::query("UPDATE users SET password_hash = NULL, updated_at = ?2 WHERE id = ?1")
            .bind(&user)
            .bind(micros(now)?)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        insert_effects(&mut tx, &effects).await?;
        tx.commit().await.map_err(map)?;
        Ok(true)
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

    async fn begin_sign_in_flow(&self, flow: SignInFlow) -> Result<(), StoreError> {
        // Housekeeping first, apart from the insert: abandoned flows go as new ones start.
        sqlx::query("DELETE FROM sign_in_flows WHERE expires_at < ?1")
            .bind(micros(flow.created_at)?)
            .execute(&self.writer)
            .await
            .map_err(map)?;
        sqlx::query(
            "INSERT INTO sign_in_flows (state_hash, provider, browser_hash, code_verifier, \
                 nonce, return_to, link_user_id, created_at, expires_at, proves_link_hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .bind(&flow.state_hash)
        .bind(&flow.provider)
        .bind(&flow.browser_hash)
        .bind(&flow.code_verifier)
        .bind(&flow.nonce)
        .bind(&flow.return_to)
        .bind(flow.link_user_id.map(id_text))
        .bind(micros(flow.created_at)?)
        .bind(micros(flow.expires_at)?)
        .bind(&flow.proves_link_hash)
        .execute(&self.writer)
        .await
        .map_err(map)?;
        Ok(())
    }

    async fn take_sign_in_flow(&self, state_hash: &str) -> Result<Option<SignInFlow>, StoreError> {
        let row = sqlx::query_as::<_, FlowRow>(
            "DELETE FROM sign_in_flows WHERE state_hash = ?1 \
             RETURNING state_hash, provider, browser_hash, code_verifier, nonce, return_to, \
                 link_user_id, created_at, expires_at, proves_link_hash",
        )
        .bind(state_hash)
        .fetch_optional(&self.writer)
        .await
        .map_err(map)?;
        row.map(|r| {
            Ok(SignInFlow {
                state_hash: r.state_hash,
                provider: r.provider,
                browser_hash: r.browser_hash,
                code_verifier: r.code_verifier,
                nonce: r.nonce,
                return_to: r.return_to,
                link_user_id: parse_opt_id(r.link_user_id)?,
                created_at: parse_time(r.created_at)?,
                expires_at: parse_time(r.expires_at)?,
                proves_link_hash: r.proves_link_hash,
            })
        })
        .transpose()
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
    link_user_id: Option<String>,
    created_at: i64,
    expires_at: i64,
    proves_link_hash: Option<String>,
}

#[derive(FromRow)]
struct LinkRow {
    link_hash: String,
    user_id: String,
    provider: String,
    provider_user_id: String,
    provider_email: String,
    browser_hash: String,
    return_to: Option<String>,
    created_at: i64,
    expires_at: i64,
}

impl LinkRow {
    fn into_link(self) -> Result<PendingLink, StoreError> {
        Ok(PendingLink {
            link_hash: self.link_hash,
            user_id: parse_id(&self.user_id)?,
            provider: self.provider,
            provider_user_id: self.provider_user_id,
            provider_email: self.provider_email,
            browser_hash: self.browser_hash,
            return_to: self.return_to,
            created_at: parse_time(self.created_at)?,
            expires_at: parse_time(self.expires_at)?,
        })
    }
}

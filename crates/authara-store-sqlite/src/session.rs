//! Sessions and refresh tokens. SQLite has no change feed.

use async_trait::async_trait;
use authara_core::store::{
    ActiveOrganization, ChangeFeed, Effects, EffectsFor, LiveSession, NewRefreshToken, NewSession,
    PurgeCounts, RefreshTokenRecord, Replacement, RotateIf, RotateOutcome, SessionStore,
    SessionUser, StoreError, Switched, TokenHash,
};
use sqlx::sqlite::SqliteConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::effects::{insert_effects, Write};
use crate::error::map;
use crate::rows::{
    id_text, micros, parse_id, parse_role, parse_time, LiveSessionRow, SessionUserRow,
    TokenJoinRow, DEFAULT_ORGANIZATION_ORDER, LIVE_SESSION_COLUMNS, SESSION_USER_COLUMNS,
    TOKEN_JOIN_COLUMNS, TOKEN_JOIN_FROM,
};
use crate::SqliteStore;

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(
        &self,
        session: NewSession,
        token: NewRefreshToken,
    ) -> Result<ActiveOrganization, StoreError> {
        let mut tx = self.begin().await?;
        // The organization asked for, or the default one; an unknown user has no membership.
        // Dropping the transaction on `NotFound` rolls back: nothing is written.
        let organization: (String, String, String) = sqlx::query_as(&format!(
            "SELECT o.id, o.name, m.role \
             FROM organization_memberships m JOIN organizations o ON o.id = m.organization_id \
             WHERE m.user_id = ?1 AND (?2 IS NULL OR m.organization_id = ?2) \
             ORDER BY {DEFAULT_ORGANIZATION_ORDER} LIMIT 1"
        ))
        .bind(id_text(session.user_id))
        .bind(session.organization_id.map(id_text))
        .fetch_optional(&mut *tx)
        .await
        .map_err(map)?
        .ok_or(StoreError::NotFound)?;
        let (organization_id, name, role) = organization;
        sqlx::query(
            "INSERT INTO sessions \
                 (id, user_id, user_agent, client_ip, created_at, expires_at, revoked_at, \
                  active_organization_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7)",
        )
        .bind(id_text(session.id))
        .bind(id_text(session.user_id))
        .bind(&session.user_agent)
        .bind(&session.client_ip)
        .bind(micros(session.created_at)?)
        .bind(micros(session.expires_at)?)
        .bind(&organization_id)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        insert_token(&mut tx, &token).await?;
        // The cap, in the same immediate transaction (so no other writer in between): the
        // user's live sessions but the new one, newest first; those past `cap - 1` are revoked.
        sqlx::query(
            "UPDATE sessions SET revoked_at = ?3 \
             WHERE id IN ( \
                 SELECT id FROM sessions \
                 WHERE user_id = ?1 AND id <> ?2 AND revoked_at IS NULL AND expires_at > ?3 \
                 ORDER BY created_at DESC, id DESC \
                 LIMIT -1 OFFSET ?4 - 1)",
        )
        .bind(id_text(session.user_id))
        .bind(id_text(session.id))
        .bind(micros(session.created_at)?)
        .bind(i64::from(session.max_live_per_user.max(1)))
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        tx.commit().await.map_err(map)?;
        Ok(ActiveOrganization {
            id: parse_id(&organization_id)?,
            name,
            role: parse_role(&role)?,
        })
    }

    async fn find_live_session_user(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Option<SessionUser>, StoreError> {
        // Primary-key lookups only; a session without an active organization, or whose user
        // left it, joins nothing.
        sqlx::query_as::<_, SessionUserRow>(&format!(
            "SELECT {SESSION_USER_COLUMNS} \
             FROM sessions s \
             JOIN users u ON u.id = s.user_id \
             JOIN organization_memberships m \
                 ON m.organization_id = s.active_organization_id AND m.user_id = s.user_id \
             JOIN organizations o ON o.id = m.organization_id \
             WHERE s.id = ?1 AND s.user_id = ?2 AND s.revoked_at IS NULL AND s.expires_at > ?3 \
               AND u.disabled = 0"
        ))
        .bind(id_text(session_id))
        .bind(id_text(user_id))
        .bind(micros(now)?)
        .fetch_optional(&self.reader)
        .await
        .map_err(map)?
        .map(SessionUserRow::into_record)
        .transpose()
    }

    async fn switch_session_organization(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        organization_id: Uuid,
        token: NewRefreshToken,
        now: OffsetDateTime,
    ) -> Result<Option<Switched>, StoreError> {
        let session = id_text(session_id);
        let organization = id_text(organization_id);
        let mut tx = self.begin().await?;
        // In the immediate transaction nothing changes between this check and the writes.
        let found: Option<(String, String, i64)> = sqlx::query_as(
            "SELECT o.name, m.role, s.expires_at \
             FROM sessions s \
             JOIN users u ON u.id = s.user_id \
             JOIN organization_memberships m \
                 ON m.organization_id = ?3 AND m.user_id = s.user_id \
             JOIN organizations o ON o.id = m.organization_id \
             WHERE s.id = ?1 AND s.user_id = ?2 AND s.revoked_at IS NULL AND s.expires_at > ?4 \
               AND u.disabled = 0",
        )
        .bind(&session)
        .bind(id_text(user_id))
        .bind(&organization)
        .bind(micros(now)?)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map)?;
        let Some((name, role, session_expires_at)) = found else {
            tx.rollback().await.map_err(map)?;
            return Ok(None);
        };
        let session_expires_at = parse_time(session_expires_at)?;
        sqlx::query("UPDATE sessions SET active_organization_id = ?2 WHERE id = ?1")
            .bind(&session)
            .bind(&organization)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        // The old tokens would refresh into the old organization.
        sqlx::query("DELETE FROM refresh_tokens WHERE session_id = ?1")
            .bind(&session)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        let token = NewRefreshToken {
            expires_at: token.expires_at.min(session_expires_at),
            ..token
        };
        insert_token(&mut tx, &token).await?;
        tx.commit().await.map_err(map)?;
        Ok(Some(Switched {
            organization: ActiveOrganization {
                id: organization_id,
                name,
                role: parse_role(&role)?,
            },
            session_expires_at,
            // As stored: whole microseconds.
            token_expires_at: parse_time(micros(token.expires_at)?)?,
        }))
    }

    async fn list_live_sessions(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Vec<LiveSession>, StoreError> {
        sqlx::query_as::<_, LiveSessionRow>(&format!(
            "SELECT {LIVE_SESSION_COLUMNS} FROM sessions s \
             WHERE s.user_id = ?1 AND s.revoked_at IS NULL AND s.expires_at > ?2 \
             ORDER BY s.created_at DESC, s.id"
        ))
        .bind(id_text(user_id))
        .bind(micros(now)?)
        .fetch_all(&self.reader)
        .await
        .map_err(map)?
        .into_iter()
        .map(LiveSessionRow::into_record)
        .collect()
    }

    async fn revoke_session(
        &self,
        session_id: Uuid,
        owner: Option<Uuid>,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<bool, StoreError> {
        let mut write = Write::begin(self, effects).await?;
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = COALESCE(revoked_at, ?2) \
             WHERE id = ?1 AND (?3 IS NULL OR user_id = ?3)",
        )
        .bind(id_text(session_id))
        .bind(micros(now)?)
        .bind(owner.map(id_text))
        .execute(write.conn())
        .await
        .map_err(map)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        write.commit().await?;
        Ok(true)
    }

    async fn revoke_other_sessions(
        &self,
        user_id: Uuid,
        keep: Uuid,
        now: OffsetDateTime,
        effects: EffectsFor,
    ) -> Result<u64, StoreError> {
        let keep = id_text(keep);
        let mut tx = self.begin().await?;
        let revoked =
            revoke_live_sessions(&mut tx, &id_text(user_id), Some(&keep), micros(now)?).await?;
        if revoked == 0 {
            tx.rollback().await.map_err(map)?;
            return Ok(0);
        }
        insert_effects(&mut tx, &effects(revoked)).await?;
        tx.commit().await.map_err(map)?;
        Ok(revoked)
    }

    async fn find_refresh_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RefreshTokenRecord>, StoreError> {
        find_token(&self.reader, hash).await
    }

    async fn rotate_refresh_token(
        &self,
        hash: &TokenHash,
        rotate_if: RotateIf,
        replacement: Replacement,
    ) -> Result<Option<RotateOutcome>, StoreError> {
        // On the writer, in one immediate transaction: the record read is the state the
        // conditional update sees, and no other writer comes between them.
        let now = micros(rotate_if.now)?;
        let created_at_most = rotate_if.created_at_most.map(micros).transpose()?;
        let mut tx = self.begin().await?;
        let Some(record) = find_token(&mut *tx, hash).await? else {
            tx.rollback().await.map_err(map)?;
            return Ok(None);
        };
        let consumed = sqlx::query(
            "UPDATE refresh_tokens SET consumed_at = ?2 \
             WHERE token_hash = ?1 AND consumed_at IS NULL AND expires_at > ?2 \
               AND (?3 IS NULL OR created_at <= ?3) \
               AND EXISTS (SELECT 1 FROM sessions s JOIN users u ON u.id = s.user_id \
                   JOIN organization_memberships m \
                       ON m.organization_id = s.active_organization_id AND m.user_id = s.user_id \
                   WHERE s.id = refresh_tokens.session_id \
                     AND s.revoked_at IS NULL AND s.expires_at > ?2 \
                     AND u.disabled = 0 AND (?4 = 0 OR u.is_admin = 1))",
        )
        .bind(hash.as_slice())
        .bind(now)
        .bind(created_at_most)
        .bind(rotate_if.admin_only)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        if consumed.rows_affected() == 0 {
            tx.rollback().await.map_err(map)?;
            return Ok(Some(RotateOutcome {
                record,
                rotated: None,
            }));
        }
        let token = NewRefreshToken {
            id: replacement.id,
            session_id: record.session_id,
            token_hash: replacement.token_hash,
            created_at: rotate_if.now,
            expires_at: replacement.expires_at.min(record.session.expires_at),
        };
        insert_token(&mut tx, &token).await?;
        tx.commit().await.map_err(map)?;
        Ok(Some(RotateOutcome {
            record,
            // As stored: whole microseconds.
            rotated: Some(parse_time(micros(token.expires_at)?)?),
        }))
    }

    /// SQLite has no notifications; the server instead holds a lock that keeps every other
    /// server off the file, so the only writer besides it is the `authara admin` CLI.
    async fn watch_changes(&self) -> Result<ChangeFeed, StoreError> {
        Ok(ChangeFeed::Unsupported)
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<PurgeCounts, StoreError> {
        let now = micros(now)?;
        let mut tx = self.begin().await?;
        // Tokens first, so `refresh_tokens` counts every expired token, including those of
        // expired sessions; unexpired tokens of expired sessions go by cascade, uncounted.
        let tokens = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at <= ?1")
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        let sessions = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?1")
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        tx.commit().await.map_err(map)?;
        Ok(PurgeCounts {
            sessions: sessions.rows_affected(),
            refresh_tokens: tokens.rows_affected(),
        })
    }
}

/// Revokes the live sessions (unrevoked, unexpired at `now`) of the user with id text `user_id`,
/// but `keep` when given, on `conn` (inside the caller's transaction); returns how many.
pub(crate) async fn revoke_live_sessions(
    conn: &mut SqliteConnection,
    user_id: &str,
    keep: Option<&str>,
    now: i64,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE sessions SET revoked_at = ?2 \
         WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2 \
           AND (?3 IS NULL OR id <> ?3)",
    )
    .bind(user_id)
    .bind(now)
    .bind(keep)
    .execute(conn)
    .await
    .map_err(map)?;
    Ok(done.rows_affected())
}

/// The refresh token with this hash, joined with its session, user and active organization, on
/// `conn`.
async fn find_token<'c, E>(
    conn: E,
    hash: &TokenHash,
) -> Result<Option<RefreshTokenRecord>, StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Sqlite>,
{
    sqlx::query_as::<_, TokenJoinRow>(&format!(
        "SELECT {TOKEN_JOIN_COLUMNS} {TOKEN_JOIN_FROM} WHERE t.token_hash = ?1"
    ))
    .bind(hash.as_slice())
    .fetch_optional(conn)
    .await
    .map_err(map)?
    .map(TokenJoinRow::into_record)
    .transpose()
}

/// Inserts one unconsumed refresh token inside `tx`.
async fn insert_token(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    token: &NewRefreshToken,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO refresh_tokens \
             (id, session_id, token_hash, created_at, expires_at, consumed_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, NULL)",
    )
    .bind(id_text(token.id))
    .bind(id_text(token.session_id))
    .bind(token.token_hash.as_slice())
    .bind(micros(token.created_at)?)
    .bind(micros(token.expires_at)?)
    .execute(&mut **tx)
    .await
    .map_err(map)?;
    Ok(())
}

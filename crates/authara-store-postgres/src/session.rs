//! Sessions and refresh tokens. The change feed they report on lives in `feed`.

use async_trait::async_trait;
use authara_core::store::{
    ActiveOrganization, ChangeFeed, Effects, EffectsFor, LiveSession, NewRefreshToken, NewSession,
    PurgeCounts, RefreshTokenRecord, Replacement, RotateIf, RotateOutcome, SessionStore,
    SessionUser, StoreError, Switched, TokenHash,
};
use sqlx::postgres::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::effects::{insert_effects, Write};
use crate::error::map;
use crate::rows::{
    ActiveOrganizationRow, LiveSessionRow, RotateRow, SessionUserRow, SwitchedRow, TokenJoinRow,
    LIVE_SESSION_COLUMNS, SESSION_USER_COLUMNS, TOKEN_JOIN_COLUMNS, TOKEN_JOIN_FROM,
};
use crate::PgStore;

#[async_trait]
impl SessionStore for PgStore {
    async fn create_session(
        &self,
        session: NewSession,
        token: NewRefreshToken,
    ) -> Result<ActiveOrganization, StoreError> {
        // One transaction. First the user's row is locked, so that concurrent inserts for one
        // user take turns; then one statement picks the session's organization among the
        // user's memberships, inserts the session and its token (the token's foreign key is
        // checked at the end of the statement, when the session row exists) and revokes the
        // user's live sessions beyond the cap. The lock must come first, in its own statement:
        // a statement's snapshot is taken when it starts, so only a statement that starts after
        // the lock is granted sees what the previous holder committed. The new session is not
        // in that snapshot: keeping `cap - 1` of the others leaves `cap` in all.
        // Without a membership to pick (not a member there, no membership at all, an unknown
        // user) `chosen` is empty, so nothing is inserted or revoked and the statement returns
        // no row (`NotFound`). The membership is not locked: one removed meanwhile leaves a
        // session that is not live and does not refresh, since both re-check it.
        let mut tx = self.pool.begin().await.map_err(map)?;
        lock_user(&mut tx, session.user_id).await?;
        let chosen = sqlx::query_as::<_, ActiveOrganizationRow>(
            "WITH chosen AS ( \
                 SELECT o.id AS org_id, o.name AS org_name, m.role AS org_role \
                 FROM organization_memberships m \
                 JOIN organizations o ON o.id = m.organization_id \
                 WHERE m.user_id = $2 AND ($12::uuid IS NULL OR m.organization_id = $12) \
                 ORDER BY o.kind <> 'personal', m.created_at, m.organization_id \
                 LIMIT 1), \
             s AS ( \
                 INSERT INTO sessions \
                     (id, user_id, user_agent, client_ip, created_at, expires_at, revoked_at, \
                      active_organization_id) \
                 SELECT $1, $2, $3, $4, $5, $6, NULL, c.org_id FROM chosen c \
                 RETURNING id), \
             t AS ( \
                 INSERT INTO refresh_tokens \
                     (id, session_id, token_hash, created_at, expires_at, consumed_at) \
                 SELECT $7, s.id, $8, $9, $10, NULL FROM s), \
             beyond AS ( \
                 SELECT id FROM sessions \
                 WHERE user_id = $2 AND revoked_at IS NULL AND expires_at > $5 \
                 ORDER BY created_at DESC, id DESC \
                 OFFSET $11 - 1), \
             capped AS ( \
                 UPDATE sessions SET revoked_at = $5 \
                 WHERE id IN (SELECT id FROM beyond) AND revoked_at IS NULL \
                   AND EXISTS (SELECT 1 FROM s)) \
             SELECT org_id, org_name, org_role FROM chosen",
        )
        .bind(session.id)
        .bind(session.user_id)
        .bind(&session.user_agent)
        .bind(&session.client_ip)
        .bind(session.created_at)
        .bind(session.expires_at)
        .bind(token.id)
        .bind(token.token_hash.as_slice())
        .bind(token.created_at)
        .bind(token.expires_at)
        .bind(i64::from(session.max_live_per_user.max(1)))
        .bind(session.organization_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map)?
        .ok_or(StoreError::NotFound)?;
        // Read before the commit: an unreadable role leaves no session behind.
        let chosen = ActiveOrganization::try_from(chosen)?;
        tx.commit().await.map_err(map)?;
        Ok(chosen)
    }

    async fn find_live_session_user(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Option<SessionUser>, StoreError> {
        // Inner joins by primary key: a session without an active organization, or whose user
        // is no member there any more, is not live.
        let row = sqlx::query_as::<_, SessionUserRow>(&format!(
            "SELECT {SESSION_USER_COLUMNS} FROM sessions s \
             JOIN users u ON u.id = s.user_id \
             JOIN organization_memberships m \
                 ON m.organization_id = s.active_organization_id AND m.user_id = s.user_id \
             JOIN organizations o ON o.id = m.organization_id \
             WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL AND s.expires_at > $3 \
               AND NOT u.disabled"
        ))
        .bind(session_id)
        .bind(user_id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        row.map(SessionUser::try_from).transpose()
    }

    async fn switch_session_organization(
        &self,
        session_id: Uuid,
        user_id: Uuid,
        organization_id: Uuid,
        token: NewRefreshToken,
        now: OffsetDateTime,
    ) -> Result<Option<Switched>, StoreError> {
        // The user's row is locked first, as `create_session` does, so that the statement that
        // follows sees what concurrent writes to this user committed (disabled, deleted). It
        // takes the membership `FOR SHARE` (its removal waits for this commit) and then the
        // session's row (the update): users, memberships, sessions, tokens, the order the
        // other writes take them in. The tokens' delete and insert share a snapshot, so the
        // delete removes exactly the session's previous tokens, consumed ones too. Any of the
        // conditions failing leaves `s` empty: nothing changes and no row comes back.
        let mut tx = self.pool.begin().await.map_err(map)?;
        lock_user(&mut tx, user_id).await?;
        let row = sqlx::query_as::<_, SwitchedRow>(
            "WITH m AS ( \
                 SELECT o.id AS org_id, o.name AS org_name, m.role AS org_role \
                 FROM organization_memberships m \
                 JOIN organizations o ON o.id = m.organization_id \
                 WHERE m.organization_id = $3 AND m.user_id = $2 \
                 FOR SHARE OF m), \
             s AS ( \
                 UPDATE sessions SET active_organization_id = $3 \
                 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > $4 \
                   AND EXISTS (SELECT 1 FROM users WHERE id = $2 AND NOT disabled) \
                   AND EXISTS (SELECT 1 FROM m) \
                 RETURNING id, expires_at), \
             gone AS ( \
                 DELETE FROM refresh_tokens WHERE session_id IN (SELECT id FROM s)), \
             t AS ( \
                 INSERT INTO refresh_tokens \
                     (id, session_id, token_hash, created_at, expires_at, consumed_at) \
                 SELECT $5, s.id, $6, $7, LEAST($8, s.expires_at), NULL FROM s \
                 RETURNING expires_at) \
             SELECT m.org_id, m.org_name, m.org_role, s.expires_at AS session_expires_at, \
                 t.expires_at AS token_expires_at \
             FROM m CROSS JOIN s CROSS JOIN t",
        )
        .bind(session_id)
        .bind(user_id)
        .bind(organization_id)
        .bind(now)
        .bind(token.id)
        .bind(token.token_hash.as_slice())
        .bind(token.created_at)
        .bind(token.expires_at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map)?;
        let Some(row) = row else {
            tx.rollback().await.map_err(map)?;
            return Ok(None);
        };
        // Read before the commit, as in `create_session`.
        let switched = Switched {
            organization: row.organization.try_into()?,
            session_expires_at: row.session_expires_at,
            token_expires_at: row.token_expires_at,
        };
        tx.commit().await.map_err(map)?;
        Ok(Some(switched))
    }

    async fn list_live_sessions(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Vec<LiveSession>, StoreError> {
        let rows = sqlx::query_as::<_, LiveSessionRow>(&format!(
            "SELECT {LIVE_SESSION_COLUMNS} FROM sessions s \
             WHERE s.user_id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 \
             ORDER BY s.created_at DESC, s.id"
        ))
        .bind(user_id)
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(map)?;
        Ok(rows.into_iter().map(LiveSession::from).collect())
    }

    async fn revoke_session(
        &self,
        session_id: Uuid,
        owner: Option<Uuid>,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<bool, StoreError> {
        let mut write = Write::begin(&self.pool, effects).await?;
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = COALESCE(revoked_at, $2) \
             WHERE id = $1 AND ($3::uuid IS NULL OR user_id = $3)",
        )
        .bind(session_id)
        .bind(now)
        .bind(owner)
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
        // The user's row is locked first, as `create_session` does, so that a session being
        // created for this user right now is either committed before the revocation reads the
        // sessions (and revoked) or created after it: none slips through in between.
        let mut tx = self.pool.begin().await.map_err(map)?;
        lock_user(&mut tx, user_id).await?;
        let revoked = revoke_live_sessions(&mut tx, user_id, Some(keep), now).await?;
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
        let row = sqlx::query_as::<_, TokenJoinRow>(&format!(
            "SELECT {TOKEN_JOIN_COLUMNS} {TOKEN_JOIN_FROM} WHERE t.token_hash = $1"
        ))
        .bind(hash.as_slice())
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        row.map(RefreshTokenRecord::try_from).transpose()
    }

    async fn rotate_refresh_token(
        &self,
        hash: &TokenHash,
        rotate_if: RotateIf,
        replacement: Replacement,
    ) -> Result<Option<RotateOutcome>, StoreError> {
        // One statement, so one round trip and its own transaction. `found` is the state
        // before the call (the statement's snapshot). The update re-checks `consumed_at IS
        // NULL` against the row it locks: a concurrent rotation of the same token makes it
        // wait for that commit, then consume nothing, so nothing is inserted either. A failing
        // insert (a duplicate hash) fails the statement and the token stays unconsumed.
        // `found` takes the session row `FOR SHARE`: a concurrent revocation of the session
        // either commits first (and `found`, re-read after the wait, sees it revoked, so nothing
        // rotates) or waits until this rotation has committed; it can never slip in between
        // the check and the rotation. The membership is read, not locked (the outer join
        // cannot lock it): a rotation that races its removal is one that came just before it,
        // and the next refresh finds no membership and rotates nothing.
        let row = sqlx::query_as::<_, RotateRow>(&format!(
            "WITH found AS ( \
                 SELECT {TOKEN_JOIN_COLUMNS} {TOKEN_JOIN_FROM} WHERE t.token_hash = $1 \
                 FOR SHARE OF s), \
             consumed AS ( \
                 UPDATE refresh_tokens SET consumed_at = $2 \
                 WHERE token_hash = $1 AND consumed_at IS NULL AND expires_at > $2 \
                   AND ($3::timestamptz IS NULL OR created_at <= $3) \
                   AND EXISTS (SELECT 1 FROM found f \
                       WHERE f.session_revoked_at IS NULL AND f.session_expires_at > $2 \
                         AND NOT f.user_disabled AND f.org_id IS NOT NULL \
                         AND (NOT $4::boolean OR f.user_is_admin)) \
                 RETURNING session_id), \
             inserted AS ( \
                 INSERT INTO refresh_tokens \
                     (id, session_id, token_hash, created_at, expires_at, consumed_at) \
                 SELECT $5, c.session_id, $6, $2, LEAST($7, f.session_expires_at), NULL \
                 FROM consumed c CROSS JOIN found f \
                 RETURNING expires_at) \
             SELECT found.*, (SELECT expires_at FROM inserted) AS rotated_expires_at \
             FROM found"
        ))
        .bind(hash.as_slice())
        .bind(rotate_if.now)
        .bind(rotate_if.created_at_most)
        .bind(rotate_if.admin_only)
        .bind(replacement.id)
        .bind(replacement.token_hash.as_slice())
        .bind(replacement.expires_at)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        row.map(|row| {
            Ok(RotateOutcome {
                record: row.token.try_into()?,
                rotated: row.rotated_expires_at,
            })
        })
        .transpose()
    }

    async fn watch_changes(&self) -> Result<ChangeFeed, StoreError> {
        crate::feed::watch(self).await
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<PurgeCounts, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map)?;
        // Tokens first, so `refresh_tokens` counts every expired token, including those of
        // expired sessions; unexpired tokens of expired sessions go by cascade, uncounted.
        let tokens = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(map)?;
        let sessions = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
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

/// Locks the user's row (`FOR NO KEY UPDATE`) inside `conn`'s transaction, so that writes
/// to one user's sessions take turns; an unknown user locks nothing. It must be a statement of
/// its own: only a statement that starts after the lock is granted sees what the previous
/// holder committed.
pub(crate) async fn lock_user(conn: &mut PgConnection, user_id: Uuid) -> Result<(), StoreError> {
    sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE")
        .bind(user_id)
        .execute(conn)
        .await
        .map_err(map)?;
    Ok(())
}

/// Revokes the live sessions (unrevoked, unexpired at `now`) of `user_id` but `keep` when
/// given, on `conn`; returns how many.
pub(crate) async fn revoke_live_sessions(
    conn: &mut PgConnection,
    user_id: Uuid,
    keep: Option<Uuid>,
    now: OffsetDateTime,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE sessions SET revoked_at = $2 \
         WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
           AND ($3::uuid IS NULL OR id <> $3)",
    )
    .bind(user_id)
    .bind(now)
    .bind(keep)
    .execute(conn)
    .await
    .map_err(map)?;
    Ok(done.rows_affected())
}

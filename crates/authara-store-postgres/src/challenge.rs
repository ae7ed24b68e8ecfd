//! Challenges: the challenge row, its pending action (one table per purpose; none for an
//! opaque challenge), its current code, and the email jobs that carry the code. Each write's
//! conditional update locks the challenge row first, so concurrent writes to one challenge take
//! turns (READ COMMITTED: a loser waits for the winner's commit, re-checks its condition against
//! the new row and updates nothing); what follows runs in statements of their own, which see
//! what the previous holder committed.
//!
//! A completed challenge's pending row is deleted (it holds a password hash), so a consumed
//! challenge reads back with [`PendingAction::Opaque`]: nothing is left to complete.

use async_trait::async_trait;
use authara_core::store::{
    Accepted, Attempt, ChallengeRecord, ChallengeStore, CodeRecord, Completed, Completion,
    NewChallenge, NewUser, PendingAction, Purpose, Resend, StoreError, UserRecord,
};
use sqlx::postgres::PgConnection;
use sqlx::FromRow;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::effects::insert_effects;
use crate::error::map;
use crate::invitation::{lock_invitation, signup_into};
use crate::mail::{insert_email_job, NewEmailJob};
use crate::rows::{count, stored_count, UserRow, USER_COLUMNS};
use crate::session::revoke_live_sessions;
use crate::user::{insert_user, UserToInsert};
use crate::PgStore;

/// The select list of [`ChallengeRow`]: `c` is the challenge, joined by [`CHALLENGE_JOINS`].
const CHALLENGE_COLUMNS: &str = "\
    c.id, c.purpose, c.email, c.opaque, c.attempt_count, c.max_attempts, c.resend_count, \
    c.max_resends, c.last_sent_at, c.created_at, c.expires_at, c.consumed_at, \
    ps.email AS signup_email, ps.password_hash AS signup_password_hash, \
    ps.invitation_id AS signup_invitation_id, \
    pr.user_id AS reset_user_id, pr.password_hash AS reset_password_hash, \
    pe.user_id AS change_user_id, pe.session_id AS change_session_id, \
    pe.old_email AS change_old_email, pe.new_email AS change_new_email, \
    v.code_hash AS code_hash, v.expires_at AS code_expires_at";

/// Whichever pending row and code the challenge `c` has (`c` a table or a CTE).
const CHALLENGE_JOINS: &str = "\
    LEFT JOIN pending_signup_actions ps ON ps.challenge_id = c.id \
    LEFT JOIN pending_password_resets pr ON pr.challenge_id = c.id \
    LEFT JOIN pending_email_changes pe ON pe.challenge_id = c.id \
    LEFT JOIN verification_codes v ON v.challenge_id = c.id";

/// A challenge joined with its pending row (if any) and its code (if any).
#[derive(FromRow)]
struct ChallengeRow {
    id: Uuid,
    purpose: String,
    email: String,
    opaque: bool,
    attempt_count: i32,
    max_attempts: i32,
    resend_count: i32,
    max_resends: i32,
    last_sent_at: OffsetDateTime,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    consumed_at: Option<OffsetDateTime>,
    signup_email: Option<String>,
    signup_password_hash: Option<String>,
    signup_invitation_id: Option<Uuid>,
    reset_user_id: Option<Uuid>,
    reset_password_hash: Option<String>,
    change_user_id: Option<Uuid>,
    change_session_id: Option<Uuid>,
    change_old_email: Option<String>,
    change_new_email: Option<String>,
    code_hash: Option<String>,
    code_expires_at: Option<OffsetDateTime>,
}

impl ChallengeRow {
    /// The record and the current code.
    fn into_parts(self) -> Result<(ChallengeRecord, Option<CodeRecord>), StoreError> {
        let purpose = parse_purpose(&self.purpose)?;
        // The pending row of the challenge's purpose; none for an opaque or consumed one.
        let action = match (self.opaque, purpose) {
            (true, _) => PendingAction::Opaque,
            (false, Purpose::Signup) => match (self.signup_email, self.signup_password_hash) {
                (Some(email), Some(password_hash)) => PendingAction::Signup {
                    email,
                    password_hash,
                    invitation_id: self.signup_invitation_id,
                },
                _ => PendingAction::Opaque,
            },
            (false, Purpose::PasswordReset) => {
                match (self.reset_user_id, self.reset_password_hash) {
                    (Some(user_id), Some(password_hash)) => PendingAction::PasswordReset {
                        user_id,
                        password_hash,
                    },
                    _ => PendingAction::Opaque,
                }
            }
            (false, Purpose::EmailChange) => match (
                self.change_user_id,
                self.change_old_email,
                self.change_new_email,
            ) {
                (Some(user_id), Some(old_email), Some(new_email)) => PendingAction::EmailChange {
                    user_id,
                    session_id: self.change_session_id,
                    old_email,
                    new_email,
                },
                _ => PendingAction::Opaque,
            },
        };
        let code = match (self.code_hash, self.code_expires_at) {
            (Some(code_mac), Some(expires_at)) => Some(CodeRecord {
                code_mac,
                expires_at,
            }),
            _ => None,
        };
        let record = ChallengeRecord {
            id: self.id,
            purpose,
            email: self.email,
            action,
            attempt_count: count(self.attempt_count)?,
            max_attempts: count(self.max_attempts)?,
            resend_count: count(self.resend_count)?,
            max_resends: count(self.max_resends)?,
            last_sent_at: self.last_sent_at,
            created_at: self.created_at,
            expires_at: self.expires_at,
            consumed_at: self.consumed_at,
        };
        Ok((record, code))
    }
}

fn parse_purpose(stored: &str) -> Result<Purpose, StoreError> {
    Purpose::parse(stored)
        .ok_or_else(|| StoreError::invalid("unknown challenge purpose in the database"))
}

/// The challenge with this id and its code, on `conn`.
async fn find<'c, E>(
    conn: E,
    id: Uuid,
) -> Result<Option<(ChallengeRecord, Option<CodeRecord>)>, StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Postgres>,
{
    sqlx::query_as::<_, ChallengeRow>(&format!(
        "SELECT {CHALLENGE_COLUMNS} FROM challenges c {CHALLENGE_JOINS} WHERE c.id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
    .map_err(map)?
    .map(ChallengeRow::into_parts)
    .transpose()
}

/// Whether `action` is one a challenge of `purpose` can carry.
fn fits(purpose: Purpose, action: &PendingAction) -> bool {
    matches!(
        (purpose, action),
        (_, PendingAction::Opaque)
            | (Purpose::Signup, PendingAction::Signup { .. })
            | (Purpose::PasswordReset, PendingAction::PasswordReset { .. })
            | (Purpose::EmailChange, PendingAction::EmailChange { .. })
    )
}

/// The table of a purpose's pending rows.
fn pending_table(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Signup => "pending_signup_actions",
        Purpose::PasswordReset => "pending_password_resets",
        Purpose::EmailChange => "pending_email_changes",
    }
}

/// Inserts the pending row of `action` for challenge `id` (nothing for an opaque one).
async fn insert_pending(
    conn: &mut PgConnection,
    id: Uuid,
    action: &PendingAction,
) -> Result<(), StoreError> {
    let query = match action {
        PendingAction::Signup {
            email,
            password_hash,
            invitation_id,
        } => sqlx::query(
            "INSERT INTO pending_signup_actions \
                 (challenge_id, email, password_hash, invitation_id) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(email)
        .bind(password_hash)
        .bind(invitation_id),
        PendingAction::PasswordReset {
            user_id,
            password_hash,
        } => sqlx::query(
            "INSERT INTO pending_password_resets (challenge_id, user_id, password_hash) \
             VALUES ($1, $2, $3)",
        )
        .bind(id)
        .bind(user_id)
        .bind(password_hash),
        PendingAction::EmailChange {
            user_id,
            session_id,
            old_email,
            new_email,
        } => sqlx::query(
            "INSERT INTO pending_email_changes \
                 (challenge_id, user_id, session_id, old_email, new_email) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(user_id)
        .bind(session_id)
        .bind(old_email)
        .bind(new_email),
        PendingAction::Opaque => return Ok(()),
    };
    query.execute(conn).await.map_err(map)?;
    Ok(())
}

/// The job that carries a real challenge's code to `email`, due at `at`.
fn code_job(
    job_id: Uuid,
    challenge_id: Uuid,
    purpose: Purpose,
    email: &str,
    at: OffsetDateTime,
) -> NewEmailJob<'_> {
    NewEmailJob {
        id: job_id,
        challenge_id: Some(challenge_id),
        to_email: email,
        template: purpose.template(),
        template_data: "{}",
        at,
    }
}

/// The latest `last_sent_at` a resend at `now` accepts (`now - min_interval`), clamped to a
/// time both the clock and the database can hold: a huge interval then accepts nothing, as it
/// should, and a negative one counts as none.
fn resend_cutoff(now: OffsetDateTime, min_interval: time::Duration) -> OffsetDateTime {
    let floor = time::macros::datetime!(0001-01-01 0:00 UTC);
    now.checked_sub(min_interval.max(time::Duration::ZERO))
        .unwrap_or(floor)
        .max(floor)
}

/// Sets `users.<column>` of `user_id` and returns the user as it now is; `NotFound` for an
/// unknown user. The update locks the user's row before the sessions are revoked by a statement
/// of their own, as `set_password_hash` does: a session created meanwhile is either committed
/// before (and revoked) or created after the change.
async fn update_user(
    conn: &mut PgConnection,
    user_id: Uuid,
    column: UserColumn,
    value: &str,
    only_if_email: Option<&str>,
    now: OffsetDateTime,
) -> Result<UserRecord, StoreError> {
    let column = match column {
        UserColumn::PasswordHash => "password_hash",
        UserColumn::Email => "email",
    };
    let row = sqlx::query_as::<_, UserRow>(&format!(
        "UPDATE users SET {column} = $2, updated_at = $3 \
         WHERE id = $1 AND ($4::text IS NULL OR email = $4) RETURNING {USER_COLUMNS}"
    ))
    .bind(user_id)
    .bind(value)
    .bind(now)
    .bind(only_if_email)
    .fetch_optional(conn)
    .await
    .map_err(map)?
    .ok_or(StoreError::NotFound)?;
    Ok(row.into())
}

/// The user columns a completion sets.
#[derive(Clone, Copy)]
enum UserColumn {
    PasswordHash,
    Email,
}

#[async_trait]
impl ChallengeStore for PgStore {
    async fn create_challenge(&self, challenge: NewChallenge) -> Result<(), StoreError> {
        if !fits(challenge.purpose, &challenge.action) {
            return Err(StoreError::invalid(
                "a challenge's pending action must match its purpose",
            ));
        }
        let opaque = challenge.action == PendingAction::Opaque;
        let mut tx = self.pool.begin().await.map_err(map)?;
        sqlx::query(
            "INSERT INTO challenges \
                 (id, purpose, email, opaque, attempt_count, max_attempts, resend_count, \
                  max_resends, last_sent_at, created_at, expires_at, consumed_at) \
             VALUES ($1, $2, $3, $4, 0, $5, 0, $6, $7, $7, $8, NULL)",
        )
        .bind(challenge.id)
        .bind(challenge.purpose.as_str())
        .bind(&challenge.email)
        .bind(opaque)
        .bind(stored_count(challenge.max_attempts)?)
        .bind(stored_count(challenge.max_resends)?)
        .bind(challenge.created_at)
        .bind(challenge.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        insert_pending(&mut tx, challenge.id, &challenge.action).await?;
        if !opaque {
            let job = code_job(
                challenge.email_job_id,
                challenge.id,
                challenge.purpose,
                &challenge.email,
                challenge.created_at,
            );
            insert_email_job(&mut tx, &job).await?;
        }
        tx.commit().await.map_err(map)
    }

    async fn find_challenge(&self, id: Uuid) -> Result<Option<ChallengeRecord>, StoreError> {
        Ok(find(&self.pool, id).await?.map(|(record, _)| record))
    }

    async fn begin_challenge_attempt(
        &self,
        id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Attempt, StoreError> {
        // One statement: the conditional update counts (concurrent attempts take turns on the
        // row and re-check the count, so no more than `max_attempts` are ever counted) and the
        // query around it reads the pending row and code beside the updated challenge.
        let row = sqlx::query_as::<_, ChallengeRow>(&format!(
            "WITH c AS ( \
                 UPDATE challenges SET attempt_count = attempt_count + 1 \
                 WHERE id = $1 AND consumed_at IS NULL AND expires_at > $2 \
                   AND attempt_count < max_attempts \
                 RETURNING *) \
             SELECT {CHALLENGE_COLUMNS} FROM c {CHALLENGE_JOINS}"
        ))
        .bind(id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        if let Some(row) = row {
            let (challenge, code) = row.into_parts()?;
            return Ok(Attempt::Counted {
                challenge: Box::new(challenge),
                code,
            });
        }
        let live: Option<bool> = sqlx::query_scalar(
            "SELECT consumed_at IS NULL AND expires_at > $2 FROM challenges WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?;
        Ok(match live {
            Some(true) => Attempt::TooManyAttempts,
            _ => Attempt::Gone,
        })
    }

    async fn complete_challenge(
        &self,
        id: Uuid,
        now: OffsetDateTime,
        completion: Completion,
    ) -> Result<Completed, StoreError> {
        // Any early return drops the transaction, which rolls the consumption back. The consume
        // locks the challenge: a concurrent completion waits for this one's commit, then finds
        // it consumed and completes nothing.
        let mut tx = self.pool.begin().await.map_err(map)?;
        let consumed = sqlx::query(
            "UPDATE challenges SET consumed_at = $2 \
             WHERE id = $1 AND consumed_at IS NULL AND expires_at > $2 AND NOT opaque",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        if consumed.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let (challenge, _) = find(&mut *tx, id).await?.ok_or(StoreError::NotFound)?;
        let mut effects = Some(completion.effects);
        let (done, revoked) = match challenge.action {
            PendingAction::Signup {
                email,
                password_hash,
                invitation_id: None,
            } => {
                let new_user = completion.new_user.as_ref().ok_or_else(|| {
                    StoreError::invalid("a signup completion needs the new user's id and name")
                })?;
                let user = insert_user(
                    &mut tx,
                    UserToInsert {
                        id: new_user.id,
                        email: &email,
                        username: &new_user.username,
                        password_hash: Some(&password_hash),
                        organization: Some(&new_user.organization),
                        at: now,
                    },
                )
                .await?;
                (Completed::Signup { user, joined: None }, 0)
            }
            PendingAction::Signup {
                email,
                password_hash,
                invitation_id: Some(invitation_id),
            } => {
                let (Some(new_user), Some(join)) = (completion.new_user, completion.invitation)
                else {
                    return Err(StoreError::invalid(
                        "an invited signup's completion needs the new user and the join",
                    ));
                };
                // Locked after the challenge, like every path that locks both.
                let invitation = lock_invitation(&mut tx, invitation_id)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                let user = NewUser {
                    id: new_user.id,
                    email,
                    username: new_user.username,
                    password_hash: Some(password_hash),
                    created_at: now,
                    organization: new_user.organization,
                };
                // The completion's own effects (`user.created`…) come before the acceptance's,
                // as at an invitation signup without a challenge.
                let user_effects = effects.take().map(|f| f(0)).unwrap_or_default();
                let (accepted, record) = signup_into(
                    &mut tx,
                    &invitation,
                    &user,
                    join.with_initial_organization,
                    now,
                    &user_effects,
                    join.effects,
                )
                .await?;
                // Refused (the invitation is no longer pending, or not this email's): roll
                // back, the challenge included.
                let (Accepted::Accepted { invitation, .. }, Some(user)) = (accepted, record) else {
                    return Err(StoreError::NotFound);
                };
                let done = Completed::Signup {
                    user,
                    joined: Some(invitation.organization_id),
                };
                (done, 0)
            }
            PendingAction::PasswordReset {
                user_id,
                password_hash,
            } => {
                let user = update_user(
                    &mut tx,
                    user_id,
                    UserColumn::PasswordHash,
                    &password_hash,
                    None,
                    now,
                )
                .await?;
                let revoked = revoke_live_sessions(&mut tx, user_id, None, now).await?;
                (Completed::PasswordReset { user, revoked }, revoked)
            }
            PendingAction::EmailChange {
                user_id,
                session_id,
                old_email,
                new_email,
            } => {
                let user = update_user(
                    &mut tx,
                    user_id,
                    UserColumn::Email,
                    &new_email,
                    Some(&old_email),
                    now,
                )
                .await?;
                let revoked = revoke_live_sessions(&mut tx, user_id, session_id, now).await?;
                if let Some(notice) = &completion.notice {
                    // A notice carries no code: no challenge for the worker to mint one for.
                    let job = NewEmailJob {
                        id: notice.id,
                        challenge_id: None,
                        to_email: &notice.to_email,
                        template: &notice.template,
                        template_data: &notice.template_data,
                        at: now,
                    };
                    insert_email_job(&mut tx, &job).await?;
                }
                (Completed::EmailChange { user, revoked }, revoked)
            }
            // A real challenge whose pending row is missing: nothing to complete.
            PendingAction::Opaque => return Err(StoreError::NotFound),
        };
        sqlx::query(&format!(
            "DELETE FROM {} WHERE challenge_id = $1",
            pending_table(challenge.purpose)
        ))
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        if let Some(effects) = effects {
            insert_effects(&mut tx, &effects(revoked)).await?;
        }
        tx.commit().await.map_err(map)?;
        Ok(done)
    }

    async fn resend_challenge(
        &self,
        id: Uuid,
        now: OffsetDateTime,
        min_interval: time::Duration,
        email_job_id: Uuid,
    ) -> Result<Resend, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map)?;
        let accepted: Option<(bool, String, String)> = sqlx::query_as(
            "UPDATE challenges SET resend_count = resend_count + 1, last_sent_at = $2 \
             WHERE id = $1 AND consumed_at IS NULL AND expires_at > $2 \
               AND resend_count < max_resends AND last_sent_at <= $3 \
             RETURNING opaque, purpose, email",
        )
        .bind(id)
        .bind(now)
        .bind(resend_cutoff(now, min_interval))
        .fetch_optional(&mut *tx)
        .await
        .map_err(map)?;
        match accepted {
            // Opaque: counted like a real one, and no email.
            Some((true, _, _)) => {}
            Some((false, purpose, email)) => {
                let job = code_job(email_job_id, id, parse_purpose(&purpose)?, &email, now);
                insert_email_job(&mut tx, &job).await?;
            }
            None => {
                // Refused: say why. Used up wins over too soon, since waiting will not help.
                let state: Option<(bool, bool)> = sqlx::query_as(
                    "SELECT consumed_at IS NULL AND expires_at > $2, resend_count >= max_resends \
                     FROM challenges WHERE id = $1",
                )
                .bind(id)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map)?;
                tx.rollback().await.map_err(map)?;
                return Ok(match state {
                    Some((true, true)) => Resend::Exhausted,
                    Some((true, false)) => Resend::TooSoon,
                    _ => Resend::Gone,
                });
            }
        }
        tx.commit().await.map_err(map)?;
        Ok(Resend::Queued)
    }

    async fn set_challenge_code(
        &self,
        id: Uuid,
        code_mac: &str,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Option<ChallengeRecord>, StoreError> {
        // The challenge is locked `FOR SHARE`: a completion committed meanwhile is seen (the
        // condition is re-checked on the newest row) and no code is set on a consumed challenge.
        let mut tx = self.pool.begin().await.map_err(map)?;
        let set = sqlx::query(
            "INSERT INTO verification_codes \
                 (challenge_id, code_hash, expires_at, created_at, updated_at) \
             SELECT c.id, $2, LEAST($3, c.expires_at), $4, $4 FROM challenges c \
             WHERE c.id = $1 AND c.consumed_at IS NULL AND c.expires_at > $4 AND NOT c.opaque \
             FOR SHARE \
             ON CONFLICT (challenge_id) DO UPDATE SET \
                 code_hash = EXCLUDED.code_hash, expires_at = EXCLUDED.expires_at, \
                 updated_at = EXCLUDED.updated_at",
        )
        .bind(id)
        .bind(code_mac)
        .bind(expires_at)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        if set.rows_affected() == 0 {
            tx.rollback().await.map_err(map)?;
            return Ok(None);
        }
        let found = find(&mut *tx, id).await?;
        tx.commit().await.map_err(map)?;
        Ok(found.map(|(record, _)| record))
    }

    async fn purge_challenges(
        &self,
        before: OffsetDateTime,
        limit: u32,
    ) -> Result<u64, StoreError> {
        // Codes and pending rows go by cascade; email jobs stay (their worker finds no challenge).
        let done = sqlx::query(
            "DELETE FROM challenges WHERE id IN ( \
                 SELECT id FROM challenges \
                 WHERE expires_at < $1 OR consumed_at < $1 \
                 ORDER BY expires_at, id \
                 LIMIT $2 \
                 FOR UPDATE SKIP LOCKED)",
        )
        .bind(before)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await
        .map_err(map)?;
        Ok(done.rows_affected())
    }
}

//! Challenges: the challenge row, its pending action (one table per purpose; none for an
//! opaque challenge), its current code, and the email jobs that carry the code. Every write of
//! more than one statement is one immediate transaction on the writer, so its conditional update
//! and what follows from it see no other writer in between.
//!
//! A completed challenge's pending row is deleted (it holds a password hash), so a consumed
//! challenge reads back with [`PendingAction::Opaque`]: nothing is left to complete.

use async_trait::async_trait;
use authara_core::store::{
    Accepted, Attempt, ChallengeRecord, ChallengeStore, CodeRecord, Completed, Completion,
    NewChallenge, NewUser, PendingAction, Purpose, Resend, StoreError, UserRecord,
};
use sqlx::sqlite::SqliteConnection;
use sqlx::FromRow;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::effects::insert_effects;
use crate::error::map;
use crate::invitation::{find_invitation_in, signup_into};
use crate::mail::{insert_email_job, NewEmailJob};
use crate::rows::{
    count, id_text, micros, parse_id, parse_opt_id, parse_opt_time, parse_time, UserRow,
    USER_COLUMNS,
};
use crate::session::revoke_live_sessions;
use crate::user::insert_user;
use crate::SqliteStore;

/// The select list of [`ChallengeRow`], over [`CHALLENGE_FROM`].
const CHALLENGE_COLUMNS: &str = "\
    c.id, c.purpose, c.email, c.opaque, c.attempt_count, c.max_attempts, c.resend_count, \
    c.max_resends, c.last_sent_at, c.created_at, c.expires_at, c.consumed_at, \
    ps.email AS signup_email, ps.password_hash AS signup_password_hash, \
    ps.invitation_id AS signup_invitation_id, \
    pr.user_id AS reset_user_id, pr.password_hash AS reset_password_hash, \
    pe.user_id AS change_user_id, pe.session_id AS change_session_id, \
    pe.old_email AS change_old_email, pe.new_email AS change_new_email, \
    v.code_hash AS code_hash, v.expires_at AS code_expires_at";

/// A challenge with whichever pending row and code it has.
const CHALLENGE_FROM: &str = "\
    FROM challenges c \
    LEFT JOIN pending_signup_actions ps ON ps.challenge_id = c.id \
    LEFT JOIN pending_password_resets pr ON pr.challenge_id = c.id \
    LEFT JOIN pending_email_changes pe ON pe.challenge_id = c.id \
    LEFT JOIN verification_codes v ON v.challenge_id = c.id";

/// A challenge joined with its pending row (if any) and its code (if any).
#[derive(FromRow)]
struct ChallengeRow {
    id: String,
    purpose: String,
    email: String,
    opaque: bool,
    attempt_count: i64,
    max_attempts: i64,
    resend_count: i64,
    max_resends: i64,
    last_sent_at: i64,
    created_at: i64,
    expires_at: i64,
    consumed_at: Option<i64>,
    signup_email: Option<String>,
    signup_password_hash: Option<String>,
    signup_invitation_id: Option<String>,
    reset_user_id: Option<String>,
    reset_password_hash: Option<String>,
    change_user_id: Option<String>,
    change_session_id: Option<String>,
    change_old_email: Option<String>,
    change_new_email: Option<String>,
    code_hash: Option<String>,
    code_expires_at: Option<i64>,
}

impl ChallengeRow {
    /// The record and the current code.
    fn into_parts(self) -> Result<(ChallengeRecord, Option<CodeRecord>), StoreError> {
        let purpose = Purpose::parse(&self.purpose)
            .ok_or_else(|| StoreError::invalid("unknown challenge purpose in the database"))?;
        // The pending row of the challenge's purpose; none for an opaque or consumed one.
        let action = match (self.opaque, purpose) {
            (true, _) => PendingAction::Opaque,
            (false, Purpose::Signup) => match (self.signup_email, self.signup_password_hash) {
                (Some(email), Some(password_hash)) => PendingAction::Signup {
                    email,
                    password_hash,
                    invitation_id: parse_opt_id(self.signup_invitation_id)?,
                },
                _ => PendingAction::Opaque,
            },
            (false, Purpose::PasswordReset) => {
                match (self.reset_user_id, self.reset_password_hash) {
                    (Some(user_id), Some(password_hash)) => PendingAction::PasswordReset {
                        user_id: parse_id(&user_id)?,
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
                    user_id: parse_id(&user_id)?,
                    session_id: self
                        .change_session_id
                        .as_deref()
                        .map(parse_id)
                        .transpose()?,
                    old_email,
                    new_email,
                },
                _ => PendingAction::Opaque,
            },
        };
        let code = match (self.code_hash, self.code_expires_at) {
            (Some(code_mac), Some(expires_at)) => Some(CodeRecord {
                code_mac,
                expires_at: parse_time(expires_at)?,
            }),
            _ => None,
        };
        let record = ChallengeRecord {
            id: parse_id(&self.id)?,
            purpose,
            email: self.email,
            action,
            attempt_count: count(self.attempt_count)?,
            max_attempts: count(self.max_attempts)?,
            resend_count: count(self.resend_count)?,
            max_resends: count(self.max_resends)?,
            last_sent_at: parse_time(self.last_sent_at)?,
            created_at: parse_time(self.created_at)?,
            expires_at: parse_time(self.expires_at)?,
            consumed_at: parse_opt_time(self.consumed_at)?,
        };
        Ok((record, code))
    }
}

/// The challenge with id text `id` and its code, on `conn`.
async fn find<'c, E>(
    conn: E,
    id: &str,
) -> Result<Option<(ChallengeRecord, Option<CodeRecord>)>, StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Sqlite>,
{
    sqlx::query_as::<_, ChallengeRow>(&format!(
        "SELECT {CHALLENGE_COLUMNS} {CHALLENGE_FROM} WHERE c.id = ?1"
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
    conn: &mut SqliteConnection,
    id: &str,
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
             VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(id)
        .bind(email)
        .bind(password_hash)
        .bind(invitation_id.map(id_text)),
        PendingAction::PasswordReset {
            user_id,
            password_hash,
        } => sqlx::query(
            "INSERT INTO pending_password_resets (challenge_id, user_id, password_hash) \
             VALUES (?1, ?2, ?3)",
        )
        .bind(id)
        .bind(id_text(*user_id))
        .bind(password_hash),
        PendingAction::EmailChange {
            user_id,
            session_id,
            old_email,
            new_email,
        } => sqlx::query(
            "INSERT INTO pending_email_changes \
                 (challenge_id, user_id, session_id, old_email, new_email) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(id)
        .bind(id_text(*user_id))
        .bind(session_id.map(id_text))
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
/// time the clock can hold: a huge interval then accepts nothing, as it should, and a negative
/// one counts as none.
fn resend_cutoff(now: OffsetDateTime, min_interval: time::Duration) -> OffsetDateTime {
    let floor = time::macros::datetime!(0001-01-01 0:00 UTC);
    now.checked_sub(min_interval.max(time::Duration::ZERO))
        .unwrap_or(floor)
        .max(floor)
}

/// The user columns a completion sets.
#[derive(Clone, Copy)]
enum UserColumn {
    PasswordHash,
    Email,
}

/// Sets `users.<column>` of the user with id text `user_id` and returns the user as it now is;
/// `NotFound` for an unknown user.
async fn update_user(
    conn: &mut SqliteConnection,
    user_id: &str,
    column: UserColumn,
    value: &str,
    only_if_email: Option<&str>,
    now: i64,
) -> Result<UserRecord, StoreError> {
    let column = match column {
        UserColumn::PasswordHash => "password_hash",
        UserColumn::Email => "email",
    };
    sqlx::query_as::<_, UserRow>(&format!(
        "UPDATE users SET {column} = ?2, updated_at = ?3 \
         WHERE id = ?1 AND (?4 IS NULL OR email = ?4) RETURNING {USER_COLUMNS}"
    ))
    .bind(user_id)
    .bind(value)
    .bind(now)
    .bind(only_if_email)
    .fetch_optional(conn)
    .await
    .map_err(map)?
    .ok_or(StoreError::NotFound)?
    .into_record()
}

#[async_trait]
impl ChallengeStore for SqliteStore {
    async fn create_challenge(&self, challenge: NewChallenge) -> Result<(), StoreError> {
        if !fits(challenge.purpose, &challenge.action) {
            return Err(StoreError::invalid(
                "a challenge's pending action must match its purpose",
            ));
        }
        let id = id_text(challenge.id);
        let opaque = challenge.action == PendingAction::Opaque;
        let created_at = micros(challenge.created_at)?;
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO challenges \
                 (id, purpose, email, opaque, attempt_count, max_attempts, resend_count, \
                  max_resends, last_sent_at, created_at, expires_at, consumed_at) \
             VALUES (?1, ?2, ?3, ?4, 0, ?5, 0, ?6, ?7, ?7, ?8, NULL)",
        )
        .bind(&id)
        .bind(challenge.purpose.as_str())
        .bind(&challenge.email)
        .bind(opaque)
        .bind(i64::from(challenge.max_attempts))
        .bind(i64::from(challenge.max_resends))
        .bind(created_at)
        .bind(micros(challenge.expires_at)?)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        insert_pending(&mut tx, &id, &challenge.action).await?;
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
        Ok(find(&self.reader, &id_text(id))
            .await?
            .map(|(record, _)| record))
    }

    async fn begin_challenge_attempt(
        &self,
        id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Attempt, StoreError> {
        let id = id_text(id);
        let now = micros(now)?;
        let mut tx = self.begin().await?;
        // The one conditional update that counts: an attempt past the maximum changes nothing.
        let counted: Option<String> = sqlx::query_scalar(
            "UPDATE challenges SET attempt_count = attempt_count + 1 \
             WHERE id = ?1 AND consumed_at IS NULL AND expires_at > ?2 \
               AND attempt_count < max_attempts \
             RETURNING id",
        )
        .bind(&id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map)?;
        if counted.is_none() {
            let live: Option<bool> = sqlx::query_scalar(
                "SELECT consumed_at IS NULL AND expires_at > ?2 FROM challenges WHERE id = ?1",
            )
            .bind(&id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map)?;
            tx.rollback().await.map_err(map)?;
            return Ok(match live {
                Some(true) => Attempt::TooManyAttempts,
                _ => Attempt::Gone,
            });
        }
        let (challenge, code) = find(&mut *tx, &id).await?.ok_or(StoreError::NotFound)?;
        tx.commit().await.map_err(map)?;
        Ok(Attempt::Counted {
            challenge: Box::new(challenge),
            code,
        })
    }

    async fn complete_challenge(
        &self,
        id: Uuid,
        now: OffsetDateTime,
        completion: Completion,
    ) -> Result<Completed, StoreError> {
        let id_str = id_text(id);
        let at = micros(now)?;
        // Any early return drops the transaction, which rolls the consumption back.
        let mut tx = self.begin().await?;
        let consumed = sqlx::query(
            "UPDATE challenges SET consumed_at = ?2 \
             WHERE id = ?1 AND consumed_at IS NULL AND expires_at > ?2 AND opaque = 0",
        )
        .bind(&id_str)
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        if consumed.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let (challenge, _) = find(&mut *tx, &id_str).await?.ok_or(StoreError::NotFound)?;
        let mut effects = Some(completion.effects);
        let (done, revoked) = match challenge.action {
            PendingAction::Signup {
                email,
                password_hash,
                invitation_id,
            } => {
                let new_user = completion.new_user.ok_or_else(|| {
                    StoreError::invalid(
                        "a signup completion needs the new user and their organization",
                    )
                })?;
                let user = NewUser {
                    id: new_user.id,
                    email,
                    username: new_user.username,
                    password_hash: Some(password_hash),
                    created_at: now,
                    organization: new_user.organization,
                };
                match invitation_id {
                    None => {
                        let user = insert_user(&mut tx, &user).await?;
                        let done = Completed::Signup { user, joined: None };
                        (done, 0)
                    }
                    Some(invitation_id) => {
                        let join = completion.invitation.ok_or_else(|| {
                            StoreError::invalid("an invited signup's completion needs the join")
                        })?;
                        let invitation = find_invitation_in(&mut tx, invitation_id)
                            .await?
                            .ok_or(StoreError::NotFound)?;
                        // The completion's own effects (`user.created`…) come before the
                        // acceptance's, as at an invitation signup without a challenge.
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
                        // Refused (the invitation is no longer pending, or not this email's):
                        // roll back, the challenge included.
                        let (Accepted::Accepted { invitation, .. }, Some(user)) =
                            (accepted, record)
                        else {
                            return Err(StoreError::NotFound);
                        };
                        let done = Completed::Signup {
                            user,
                            joined: Some(invitation.organization_id),
                        };
                        (done, 0)
                    }
                }
            }
            PendingAction::PasswordReset {
                user_id,
                password_hash,
            } => {
                let user_id = id_text(user_id);
                let user = update_user(
                    &mut tx,
                    &user_id,
                    UserColumn::PasswordHash,
                    &password_hash,
                    None,
                    at,
                )
                .await?;
                let revoked = revoke_live_sessions(&mut tx, &user_id, None, at).await?;
                (Completed::PasswordReset { user, revoked }, revoked)
            }
            PendingAction::EmailChange {
                user_id,
                session_id,
                old_email,
                new_email,
            } => {
                let user_id = id_text(user_id);
                let user = update_user(
                    &mut tx,
                    &user_id,
                    UserColumn::Email,
                    &new_email,
                    Some(&old_email),
                    at,
                )
                .await?;
                let keep = session_id.map(id_text);
                let revoked = revoke_live_sessions(&mut tx, &user_id, keep.as_deref(), at).await?;
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
            "DELETE FROM {} WHERE challenge_id = ?1",
            pending_table(challenge.purpose)
        ))
        .bind(&id_str)
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
        let id_str = id_text(id);
        let at = micros(now)?;
        let mut tx = self.begin().await?;
        let accepted: Option<(bool, String, String)> = sqlx::query_as(
            "UPDATE challenges SET resend_count = resend_count + 1, last_sent_at = ?2 \
             WHERE id = ?1 AND consumed_at IS NULL AND expires_at > ?2 \
               AND resend_count < max_resends AND last_sent_at <= ?3 \
             RETURNING opaque, purpose, email",
        )
        .bind(&id_str)
        .bind(at)
        .bind(micros(resend_cutoff(now, min_interval))?)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map)?;
        match accepted {
            // Opaque: counted like a real one, and no email.
            Some((true, _, _)) => {}
            Some((false, purpose, email)) => {
                let purpose = Purpose::parse(&purpose).ok_or_else(|| {
                    StoreError::invalid("unknown challenge purpose in the database")
                })?;
                let job = code_job(email_job_id, id, purpose, &email, now);
                insert_email_job(&mut tx, &job).await?;
            }
            None => {
                // Refused: say why. Used up wins over too soon, since waiting will not help.
                let state: Option<(bool, bool)> = sqlx::query_as(
                    "SELECT consumed_at IS NULL AND expires_at > ?2, resend_count >= max_resends \
                     FROM challenges WHERE id = ?1",
                )
                .bind(&id_str)
                .bind(at)
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
        let id = id_text(id);
        let mut tx = self.begin().await?;
        // SQLite reads `ON CONFLICT` after `INSERT ... SELECT` only when the SELECT has a
        // WHERE clause, as this one has.
        let set = sqlx::query(
            "INSERT INTO verification_codes \
                 (challenge_id, code_hash, expires_at, created_at, updated_at) \
             SELECT c.id, ?2, MIN(?3, c.expires_at), ?4, ?4 FROM challenges c \
             WHERE c.id = ?1 AND c.consumed_at IS NULL AND c.expires_at > ?4 AND c.opaque = 0 \
             ON CONFLICT (challenge_id) DO UPDATE SET \
                 code_hash = excluded.code_hash, expires_at = excluded.expires_at, \
                 updated_at = excluded.updated_at",
        )
        .bind(&id)
        .bind(code_mac)
        .bind(micros(expires_at)?)
        .bind(micros(now)?)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        if set.rows_affected() == 0 {
            tx.rollback().await.map_err(map)?;
            return Ok(None);
        }
        let found = find(&mut *tx, &id).await?;
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
                 WHERE expires_at < ?1 OR consumed_at < ?1 \
                 ORDER BY expires_at, id \
                 LIMIT ?2)",
        )
        .bind(micros(before)?)
        .bind(i64::from(limit))
        .execute(&self.writer)
        .await
        .map_err(map)?;
        Ok(done.rows_affected())
    }
}

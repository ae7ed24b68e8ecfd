//! Invitations to join an organization. Every write locks the row its decision depends on
//! before reading it, each lock in a statement of its own (READ COMMITTED: only a statement
//! that starts after the lock is granted sees what the previous holder committed): creations
//! lock the organization's row, so that creations in one organization take turns and the
//! active index is a backstop rather than the rule; revocations, resends and acceptances lock
//! the invitation's row, so that of two of them on one invitation the second sees the first's
//! outcome. An acceptance also locks the user's row, so that their email cannot change between
//! the check and the commit.
//!
//! The token hash is selected only where it is returned (the finds), and never appears in an
//! error: the unique violations name their constraint only.

use async_trait::async_trait;
use authara_core::store::{
    AcceptEffects, Accepted, Effects, InvitationRecord, InvitationStatus, InvitationStore, Invited,
    MembershipRecord, NewInvitation, NewUser, ResendEffects, Resent, RevokeEffects, Revoked,
    StoreError, StoredInvitation, UniqueKey, UserRecord,
};
use sqlx::error::ErrorKind;
use sqlx::postgres::PgConnection;
use sqlx::FromRow;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::effects::insert_effects;
use crate::error::map;
use crate::mail::{insert_email_job, NewEmailJob};
use crate::rows::{
    parse_role, MembershipRow, OrganizationRow, MEMBERSHIP_COLUMNS, ORGANIZATION_COLUMNS,
};
use crate::session::lock_user;
use crate::user::{insert_user, UserToInsert};
use crate::PgStore;

/// The partial unique index on active invitations (see migration 0007).
const ACTIVE_KEY: &str = "organization_invitations_active_key";

/// The columns of [`InvitationRow`], over `organization_invitations i`, named apart from an
/// organization's own; the metadata as JSON text.
const INVITATION_COLUMNS: &str = "\
    i.id AS invitation_id, i.organization_id AS invitation_organization_id, \
    i.email AS invitation_email, i.role AS invitation_role, \
    i.metadata::text AS invitation_metadata, \
    i.invited_by_user_id AS invitation_invited_by_user_id, \
    i.created_at AS invitation_created_at, i.updated_at AS invitation_updated_at, \
    i.expires_at AS invitation_expires_at, i.accepted_at AS invitation_accepted_at, \
    i.accepted_by_user_id AS invitation_accepted_by_user_id, \
    i.revoked_at AS invitation_revoked_at, i.revoked_by_user_id AS invitation_revoked_by_user_id";

/// What the finds select: an invitation, its token hash and its organization, up to `WHERE`.
const STORED_FROM: &str = "\
    FROM organization_invitations i JOIN organizations o ON o.id = i.organization_id";

#[derive(FromRow)]
struct InvitationRow {
    invitation_id: Uuid,
    invitation_organization_id: Uuid,
    invitation_email: String,
    invitation_role: String,
    invitation_metadata: String,
    invitation_invited_by_user_id: Option<Uuid>,
    invitation_created_at: OffsetDateTime,
    invitation_updated_at: OffsetDateTime,
    invitation_expires_at: OffsetDateTime,
    invitation_accepted_at: Option<OffsetDateTime>,
    invitation_accepted_by_user_id: Option<Uuid>,
    invitation_revoked_at: Option<OffsetDateTime>,
    invitation_revoked_by_user_id: Option<Uuid>,
}

impl TryFrom<InvitationRow> for InvitationRecord {
    type Error = StoreError;

    fn try_from(row: InvitationRow) -> Result<Self, StoreError> {
        let metadata = serde_json::from_str(&row.invitation_metadata)
            .map_err(|_| StoreError::invalid("malformed invitation metadata in the database"))?;
        Ok(InvitationRecord {
            id: row.invitation_id,
            organization_id: row.invitation_organization_id,
            email: row.invitation_email,
            role: parse_role(&row.invitation_role)?,
            metadata,
            invited_by_user_id: row.invitation_invited_by_user_id,
            created_at: row.invitation_created_at,
            updated_at: row.invitation_updated_at,
            expires_at: row.invitation_expires_at,
            accepted_at: row.invitation_accepted_at,
            accepted_by_user_id: row.invitation_accepted_by_user_id,
            revoked_at: row.invitation_revoked_at,
            revoked_by_user_id: row.invitation_revoked_by_user_id,
        })
    }
}

/// An invitation with its token hash and organization: [`INVITATION_COLUMNS`],
/// `i.token_hash` and [`ORGANIZATION_COLUMNS`].
#[derive(FromRow)]
struct StoredInvitationRow {
    #[sqlx(flatten)]
    invitation: InvitationRow,
    token_hash: String,
    #[sqlx(flatten)]
    organization: OrganizationRow,
}

impl TryFrom<StoredInvitationRow> for StoredInvitation {
    type Error = StoreError;

    fn try_from(row: StoredInvitationRow) -> Result<Self, StoreError> {
        Ok(StoredInvitation {
            invitation: row.invitation.try_into()?,
            organization: row.organization.try_into()?,
            token_hash: row.token_hash,
        })
    }
}

/// The invitation `id`, its row locked `FOR UPDATE` until the transaction ends.
async fn lock_by_id(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<InvitationRecord>, StoreError> {
    sqlx::query_as::<_, InvitationRow>(&format!(
        "SELECT {INVITATION_COLUMNS} FROM organization_invitations i WHERE i.id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
    .map_err(map)?
    .map(InvitationRecord::try_from)
    .transpose()
}

/// The invitation whose token hashes to `token_hash`, its row locked `FOR UPDATE`.
async fn lock_by_token(
    conn: &mut PgConnection,
    token_hash: &str,
) -> Result<Option<InvitationRecord>, StoreError> {
    sqlx::query_as::<_, InvitationRow>(&format!(
        "SELECT {INVITATION_COLUMNS} FROM organization_invitations i \
         WHERE i.token_hash = $1 FOR UPDATE"
    ))
    .bind(token_hash)
    .fetch_optional(conn)
    .await
    .map_err(map)?
    .map(InvitationRecord::try_from)
    .transpose()
}

/// Whether a user whose email is `email` (compared as the active index compares) is a member
/// of `organization_id`.
async fn is_member_email(
    conn: &mut PgConnection,
    organization_id: Uuid,
    email: &str,
) -> Result<bool, StoreError> {
    sqlx::query_scalar(
        "SELECT EXISTS ( \
             SELECT 1 FROM organization_memberships m JOIN users u ON u.id = m.user_id \
             WHERE m.organization_id = $1 AND lower(u.email) = lower($2))",
    )
    .bind(organization_id)
    .bind(email)
    .fetch_one(conn)
    .await
    .map_err(map)
}

/// Inserts `new` and its email job (if any) on `conn`, inside the caller's transaction; `None`
/// when another active invitation holds the organization and email (the transaction is then
/// aborted: the caller must return).
async fn insert_invitation(
    conn: &mut PgConnection,
    new: &NewInvitation,
) -> Result<Option<InvitationRecord>, StoreError> {
    let inserted = sqlx::query_as::<_, InvitationRow>(&format!(
        "INSERT INTO organization_invitations AS i \
             (id, organization_id, email, role, token_hash, metadata, invited_by_user_id, \
              created_at, updated_at, expires_at, accepted_at, accepted_by_user_id, \
              revoked_at, revoked_by_user_id) \
         VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $8, $9, NULL, NULL, NULL, NULL) \
         RETURNING {INVITATION_COLUMNS}"
    ))
    .bind(new.id)
    .bind(new.organization_id)
    .bind(&new.email)
    .bind(new.role.as_str())
    .bind(&new.token_hash)
    .bind(new.metadata.to_string())
    .bind(new.invited_by_user_id)
    .bind(new.created_at)
    .bind(new.expires_at)
    .fetch_one(&mut *conn)
    .await;
    let row = match inserted {
        Ok(row) => row,
        Err(sqlx::Error::Database(db))
            if db.kind() == ErrorKind::UniqueViolation && db.constraint() == Some(ACTIVE_KEY) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(map(e)),
    };
    if let Some(notice) = &new.notice {
        // The job carries no token: the worker derives it from the invitation id.
        let job = NewEmailJob {
            id: notice.id,
            challenge_id: None,
            to_email: &notice.to_email,
            template: &notice.template,
            template_data: &notice.template_data,
            at: new.created_at,
        };
        insert_email_job(conn, &job).await?;
    }
    InvitationRecord::try_from(row).map(Some)
}

/// Revokes the invitation `id` at `now` by `revoked_by`; the record as it now is.
async fn revoke(
    conn: &mut PgConnection,
    id: Uuid,
    revoked_by: Option<Uuid>,
    now: OffsetDateTime,
) -> Result<InvitationRecord, StoreError> {
    sqlx::query_as::<_, InvitationRow>(&format!(
        "UPDATE organization_invitations i \
         SET revoked_at = $2, revoked_by_user_id = $3, updated_at = $2 \
         WHERE i.id = $1 RETURNING {INVITATION_COLUMNS}"
    ))
    .bind(id)
    .bind(now)
    .bind(revoked_by)
    .fetch_optional(conn)
    .await
    .map_err(map)?
    .ok_or(StoreError::NotFound)?
    .try_into()
}

/// `user_id`'s membership of `organization_id`, if any.
async fn membership(
    conn: &mut PgConnection,
    organization_id: Uuid,
    user_id: Uuid,
) -> Result<Option<MembershipRecord>, StoreError> {
    sqlx::query_as::<_, MembershipRow>(&format!(
        "SELECT {MEMBERSHIP_COLUMNS} FROM organization_memberships m \
         WHERE m.organization_id = $1 AND m.user_id = $2"
    ))
    .bind(organization_id)
    .bind(user_id)
    .fetch_optional(conn)
    .await
    .map_err(map)?
    .map(MembershipRecord::try_from)
    .transpose()
}

#[async_trait]
impl InvitationStore for PgStore {
    async fn create_invitation(
        &self,
        new: NewInvitation,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<Invited, StoreError> {
        // Every early return drops the transaction, which rolls it back (the expired
        // invitation's revocation included). `NO KEY UPDATE` leaves the foreign-key checks of
        // memberships and invitations inserted meanwhile alone.
        let mut tx = self.pool.begin().await.map_err(map)?;
        let organization: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM organizations WHERE id = $1 FOR NO KEY UPDATE")
                .bind(new.organization_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map)?;
        if organization.is_none() {
            return Err(StoreError::NotFound);
        }
        if is_member_email(&mut tx, new.organization_id, &new.email).await? {
            return Ok(Invited::AlreadyMember);
        }
        // An expired invitation is still active (it holds the index) until revoked.
        sqlx::query(
            "UPDATE organization_invitations SET revoked_at = $3, updated_at = $3 \
             WHERE organization_id = $1 AND lower(email) = lower($2) \
               AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at <= $3",
        )
        .bind(new.organization_id)
        .bind(&new.email)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
        let pending: bool = sqlx::query_scalar(
            "SELECT EXISTS ( \
                 SELECT 1 FROM organization_invitations \
                 WHERE organization_id = $1 AND lower(email) = lower($2) \
                   AND accepted_at IS NULL AND revoked_at IS NULL)",
        )
        .bind(new.organization_id)
        .bind(&new.email)
        .fetch_one(&mut *tx)
        .await
        .map_err(map)?;
        if pending {
            return Ok(Invited::AlreadyPending);
        }
        let Some(created) = insert_invitation(&mut tx, &new).await? else {
            return Ok(Invited::AlreadyPending);
        };
        insert_effects(&mut tx, &effects).await?;
        tx.commit().await.map_err(map)?;
        Ok(Invited::Created(created))
    }

    async fn find_invitation(&self, id: Uuid) -> Result<Option<StoredInvitation>, StoreError> {
        sqlx::query_as::<_, StoredInvitationRow>(&format!(
            "SELECT {INVITATION_COLUMNS}, i.token_hash, {ORGANIZATION_COLUMNS} {STORED_FROM} \
             WHERE i.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?
        .map(StoredInvitation::try_from)
        .transpose()
    }

    async fn find_invitation_by_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<StoredInvitation>, StoreError> {
        sqlx::query_as::<_, StoredInvitationRow>(&format!(
            "SELECT {INVITATION_COLUMNS}, i.token_hash, {ORGANIZATION_COLUMNS} {STORED_FROM} \
             WHERE i.token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(map)?
        .map(StoredInvitation::try_from)
        .transpose()
    }

    async fn list_invitations(
        &self,
        organization_id: Uuid,
    ) -> Result<Vec<InvitationRecord>, StoreError> {
        sqlx::query_as::<_, InvitationRow>(&format!(
            "SELECT {INVITATION_COLUMNS} FROM organization_invitations i \
             WHERE i.organization_id = $1 \
             ORDER BY i.created_at DESC, i.id DESC"
        ))
        .bind(organization_id)
        .fetch_all(&self.pool)
        .await
        .map_err(map)?
        .into_iter()
        .map(InvitationRecord::try_from)
        .collect()
    }

    async fn revoke_invitation(
        &self,
        organization_id: Uuid,
        id: Uuid,
        revoked_by: Option<Uuid>,
        now: OffsetDateTime,
        effects: RevokeEffects,
    ) -> Result<Revoked, StoreError> {
        // Returning early drops the transaction, which rolls it back and releases the lock.
        let mut tx = self.pool.begin().await.map_err(map)?;
        let found = lock_by_id(&mut tx, id)
            .await?
            .filter(|i| i.organization_id == organization_id)
            .ok_or(StoreError::NotFound)?;
        let status = found.status(now);
        if status != InvitationStatus::Pending {
            return Ok(Revoked::NotPending(status));
        }
        let revoked = revoke(&mut tx, id, revoked_by, now).await?;
        insert_effects(&mut tx, &effects(&revoked)).await?;
        tx.commit().await.map_err(map)?;
        Ok(Revoked::Revoked(revoked))
    }

    async fn resend_invitation(
        &self,
        organization_id: Uuid,
        id: Uuid,
        revoked_by: Option<Uuid>,
        replacement: NewInvitation,
        now: OffsetDateTime,
        effects: ResendEffects,
    ) -> Result<Resent, StoreError> {
        if replacement.organization_id != organization_id {
            return Err(StoreError::invalid(
                "a replacement invitation must be of the same organization",
            ));
        }
        // Returning early drops the transaction, which rolls it back and releases the lock.
        let mut tx = self.pool.begin().await.map_err(map)?;
        let found = lock_by_id(&mut tx, id)
            .await?
            .filter(|i| i.organization_id == organization_id)
            .ok_or(StoreError::NotFound)?;
        if found.email != replacement.email {
            return Err(StoreError::invalid(
                "a replacement invitation must be for the same email",
            ));
        }
        let status = found.status(now);
        if matches!(
            status,
            InvitationStatus::Accepted | InvitationStatus::Revoked
        ) {
            return Ok(Resent::NotResendable(status));
        }
        if is_member_email(&mut tx, organization_id, &found.email).await? {
            return Ok(Resent::AlreadyMember);
        }
        let revoked = revoke(&mut tx, id, revoked_by, now).await?;
        // The old invitation was the active one, and its row is locked: nothing else can hold
        // the index but a bug.
        let created = insert_invitation(&mut tx, &replacement)
            .await?
            .ok_or(StoreError::Conflict(UniqueKey::Other))?;
        insert_effects(&mut tx, &effects(&revoked, &created)).await?;
        tx.commit().await.map_err(map)?;
        Ok(Resent::Resent { revoked, created })
    }

    async fn accept_invitation(
        &self,
        token_hash: &str,
        user_id: Uuid,
        now: OffsetDateTime,
        effects: AcceptEffects,
    ) -> Result<Accepted, StoreError> {
        // The invitation's row, then the user's: returning early drops the transaction, which
        // rolls it back and releases both.
        let mut tx = self.pool.begin().await.map_err(map)?;
        let invitation = lock_by_token(&mut tx, token_hash)
            .await?
            .ok_or(StoreError::NotFound)?;
        lock_user(&mut tx, user_id).await?;
        let email_matches: bool =
            sqlx::query_scalar("SELECT lower(email) = lower($2) FROM users WHERE id = $1")
                .bind(user_id)
                .bind(&invitation.email)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map)?
                .ok_or(StoreError::NotFound)?;
        let existing = membership(&mut tx, invitation.organization_id, user_id).await?;
        if invitation.accepted_at.is_some() && invitation.accepted_by_user_id == Some(user_id) {
            return Ok(Accepted::AlreadyAccepted {
                invitation,
                membership: existing,
            });
        }
        let status = invitation.status(now);
        if status != InvitationStatus::Pending {
            return Ok(Accepted::NotPending(status));
        }
        if !email_matches {
            return Ok(Accepted::EmailMismatch);
        }
        if existing.is_some() {
            return Ok(Accepted::AlreadyMember);
        }
        finish_acceptance(tx, &invitation, user_id, now, effects).await
    }

    async fn signup_with_invitation(
        &self,
        token_hash: &str,
        user: NewUser,
        with_initial_organization: bool,
        now: OffsetDateTime,
        user_effects: Effects,
        effects: AcceptEffects,
    ) -> Result<Accepted, StoreError> {
        // Returning early drops the transaction, which rolls it back.
        let mut tx = self.pool.begin().await.map_err(map)?;
        let invitation = lock_by_token(&mut tx, token_hash)
            .await?
            .ok_or(StoreError::NotFound)?;
        let (done, _) = signup_into(
            &mut tx,
            &invitation,
            &user,
            with_initial_organization,
            now,
            &user_effects,
            effects,
        )
        .await?;
        if matches!(done, Accepted::Accepted { .. }) {
            tx.commit().await.map_err(map)?;
        }
        Ok(done)
    }
}

/// The invitation `id`, its row locked `FOR UPDATE` until the caller's transaction ends.
pub(crate) async fn lock_invitation(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<InvitationRecord>, StoreError> {
    lock_by_id(conn, id).await
}

/// An invited signup's writes, inside the caller's transaction (with `invitation` locked),
/// which commits only on `Accepted::Accepted` (then with the new user) and rolls back
/// otherwise: `NotPending` unless `invitation` is pending at `now`, `EmailMismatch` unless
/// `user.email` is its email; else the user (with their initial organization when
/// `with_initial_organization`), `user_effects`, and the acceptance.
pub(crate) async fn signup_into(
    conn: &mut PgConnection,
    invitation: &InvitationRecord,
    user: &NewUser,
    with_initial_organization: bool,
    now: OffsetDateTime,
    user_effects: &Effects,
    effects: AcceptEffects,
) -> Result<(Accepted, Option<UserRecord>), StoreError> {
    let status = invitation.status(now);
    if status != InvitationStatus::Pending {
        return Ok((Accepted::NotPending(status), None));
    }
    if user.email.to_lowercase() != invitation.email.to_lowercase() {
        return Ok((Accepted::EmailMismatch, None));
    }
    let record = insert_user(
        conn,
        UserToInsert {
            id: user.id,
            email: &user.email,
            username: &user.username,
            password_hash: user.password_hash.as_deref(),
            organization: with_initial_organization.then_some(&user.organization),
            at: user.created_at,
        },
    )
    .await?;
    insert_effects(conn, user_effects).await?;
    let done = accept_into(conn, invitation, user.id, now, effects).await?;
    Ok((done, Some(record)))
}

/// The end of an acceptance whose rules passed, in `tx`: [`accept_into`], then the commit when
/// it accepted.
async fn finish_acceptance(
    mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
    invitation: &InvitationRecord,
    user_id: Uuid,
    now: OffsetDateTime,
    effects: AcceptEffects,
) -> Result<Accepted, StoreError> {
    let done = accept_into(&mut tx, invitation, user_id, now, effects).await?;
    if matches!(done, Accepted::Accepted { .. }) {
        tx.commit().await.map_err(map)?;
    }
    Ok(done)
}

/// The membership with the invitation's role, the invitation marked accepted by `user_id`,
/// and the effects, on `conn` (not committed). `AlreadyMember` (roll back) when the membership
/// exists after all.
async fn accept_into(
    conn: &mut PgConnection,
    invitation: &InvitationRecord,
    user_id: Uuid,
    now: OffsetDateTime,
    effects: AcceptEffects,
) -> Result<Accepted, StoreError> {
    // A membership added meanwhile by `add_membership` (which takes neither lock) fails the
    // primary key: the user is a member after all.
    let inserted = sqlx::query_as::<_, MembershipRow>(&format!(
        "INSERT INTO organization_memberships AS m \
             (organization_id, user_id, role, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $4) \
         RETURNING {MEMBERSHIP_COLUMNS}"
    ))
    .bind(invitation.organization_id)
    .bind(user_id)
    .bind(invitation.role.as_str())
    .bind(now)
    .fetch_one(&mut *conn)
    .await
    .map_err(map);
    let membership = match inserted {
        Ok(row) => MembershipRecord::try_from(row)?,
        Err(StoreError::Conflict(UniqueKey::Membership)) => return Ok(Accepted::AlreadyMember),
        Err(e) => return Err(e),
    };
    let accepted: InvitationRecord = sqlx::query_as::<_, InvitationRow>(&format!(
        "UPDATE organization_invitations i \
         SET accepted_at = $2, accepted_by_user_id = $3, updated_at = $2 \
         WHERE i.id = $1 RETURNING {INVITATION_COLUMNS}"
    ))
    .bind(invitation.id)
    .bind(now)
    .bind(user_id)
    .fetch_one(&mut *conn)
    .await
    .map_err(map)?
    .try_into()?;
    insert_effects(conn, &effects(&accepted, &membership)).await?;
    Ok(Accepted::Accepted {
        invitation: accepted,
        membership,
    })
}

//! Invitations to join an organization. Every write is one immediate transaction on the single
//! writer: its checks read what it commits against, so concurrent creations for one
//! organization and email, or two writes to one invitation, take turns, and the second sees
//! the first's outcome. The active index is a backstop rather than the rule.
//!
//! The token hash is selected only where it is returned (the finds), and never appears in an
//! error: SQLite's messages name columns and indexes, never values.

use async_trait::async_trait;
use authara_core::store::{
    AcceptEffects, Accepted, Effects, InvitationRecord, InvitationStatus, InvitationStore, Invited,
    MembershipRecord, NewInvitation, NewUser, ResendEffects, Resent, RevokeEffects, Revoked,
    StoreError, StoredInvitation, UniqueKey, UserRecord,
};
use sqlx::error::ErrorKind;
use sqlx::sqlite::SqliteConnection;
use sqlx::FromRow;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::effects::{insert_effects, Write};
use crate::error::map;
use crate::mail::{insert_email_job, NewEmailJob};
use crate::org::MEMBERSHIP_RETURNING;
use crate::rows::{
    id_text, micros, parse_id, parse_opt_id, parse_opt_time, parse_role, parse_time, MembershipRow,
    OrganizationRow, MEMBERSHIP_COLUMNS, ORGANIZATION_COLUMNS,
};
use crate::user::{insert_account, insert_user};
use crate::SqliteStore;

/// The partial unique index on active invitations (see migration 0007); SQLite names it in
/// the violation's message, since it is on an expression.
const ACTIVE_KEY: &str = "organization_invitations_active_key";

/// The columns of [`InvitationRow`] over `organization_invitations i`.
const INVITATION_COLUMNS: &str = "\
    i.id AS i_id, i.organization_id AS i_organization_id, i.email AS i_email, \
    i.role AS i_role, i.metadata AS i_metadata, i.invited_by_user_id AS i_invited_by_user_id, \
    i.created_at AS i_created_at, i.updated_at AS i_updated_at, i.expires_at AS i_expires_at, \
    i.accepted_at AS i_accepted_at, i.accepted_by_user_id AS i_accepted_by_user_id, \
    i.revoked_at AS i_revoked_at, i.revoked_by_user_id AS i_revoked_by_user_id";

/// [`INVITATION_COLUMNS`] for a `RETURNING` clause, which cannot name the table's alias.
const INVITATION_RETURNING: &str = "\
    id AS i_id, organization_id AS i_organization_id, email AS i_email, role AS i_role, \
    metadata AS i_metadata, invited_by_user_id AS i_invited_by_user_id, \
    created_at AS i_created_at, updated_at AS i_updated_at, expires_at AS i_expires_at, \
    accepted_at AS i_accepted_at, accepted_by_user_id AS i_accepted_by_user_id, \
    revoked_at AS i_revoked_at, revoked_by_user_id AS i_revoked_by_user_id";

/// What the finds select: an invitation, its token hash and its organization, up to `WHERE`.
const STORED_FROM: &str = "\
    FROM organization_invitations i JOIN organizations o ON o.id = i.organization_id";

/// An invitation as stored ([`INVITATION_COLUMNS`]).
#[derive(FromRow)]
struct InvitationRow {
    i_id: String,
    i_organization_id: String,
    i_email: String,
    i_role: String,
    i_metadata: String,
    i_invited_by_user_id: Option<String>,
    i_created_at: i64,
    i_updated_at: i64,
    i_expires_at: i64,
    i_accepted_at: Option<i64>,
    i_accepted_by_user_id: Option<String>,
    i_revoked_at: Option<i64>,
    i_revoked_by_user_id: Option<String>,
}

impl InvitationRow {
    fn into_record(self) -> Result<InvitationRecord, StoreError> {
        let metadata = serde_json::from_str(&self.i_metadata)
            .map_err(|_| StoreError::invalid("malformed invitation metadata in the database"))?;
        Ok(InvitationRecord {
            id: parse_id(&self.i_id)?,
            organization_id: parse_id(&self.i_organization_id)?,
            email: self.i_email,
            role: parse_role(&self.i_role)?,
            metadata,
            invited_by_user_id: parse_opt_id(self.i_invited_by_user_id)?,
            created_at: parse_time(self.i_created_at)?,
            updated_at: parse_time(self.i_updated_at)?,
            expires_at: parse_time(self.i_expires_at)?,
            accepted_at: parse_opt_time(self.i_accepted_at)?,
            accepted_by_user_id: parse_opt_id(self.i_accepted_by_user_id)?,
            revoked_at: parse_opt_time(self.i_revoked_at)?,
            revoked_by_user_id: parse_opt_id(self.i_revoked_by_user_id)?,
        })
    }
}

/// An invitation with its token hash and organization ([`INVITATION_COLUMNS`],
/// `i.token_hash`, [`ORGANIZATION_COLUMNS`]).
#[derive(FromRow)]
struct StoredInvitationRow {
    #[sqlx(flatten)]
    invitation: InvitationRow,
    token_hash: String,
    #[sqlx(flatten)]
    organization: OrganizationRow,
}

impl StoredInvitationRow {
    fn into_record(self) -> Result<StoredInvitation, StoreError> {
        Ok(StoredInvitation {
            invitation: self.invitation.into_record()?,
            organization: self.organization.into_record()?,
            token_hash: self.token_hash,
        })
    }
}

/// The invitation whose `column` (`id` or `token_hash`) is `value`, on `conn`.
async fn find_by(
    conn: &mut SqliteConnection,
    column: &'static str,
    value: &str,
) -> Result<Option<InvitationRecord>, StoreError> {
    sqlx::query_as::<_, InvitationRow>(&format!(
        "SELECT {INVITATION_COLUMNS} FROM organization_invitations i WHERE i.{column} = ?1"
    ))
    .bind(value)
    .fetch_optional(conn)
    .await
    .map_err(map)?
    .map(InvitationRow::into_record)
    .transpose()
}

/// Whether a user whose email is `email` (compared as the active index compares) is a member
/// of `organization_id`.
async fn is_member_email(
    conn: &mut SqliteConnection,
    organization_id: &str,
    email: &str,
) -> Result<bool, StoreError> {
    sqlx::query_scalar(
        "SELECT EXISTS ( \
             SELECT 1 FROM organization_memberships m JOIN users u ON u.id = m.user_id \
             WHERE m.organization_id = ?1 AND lower(u.email) = lower(?2))",
    )
    .bind(organization_id)
    .bind(email)
    .fetch_one(conn)
    .await
    .map_err(map)
}

/// Inserts `new` and its email job (if any) on `conn`, inside the caller's transaction; `None`
/// when another active invitation holds the organization and email.
async fn insert_invitation(
    conn: &mut SqliteConnection,
    new: &NewInvitation,
) -> Result<Option<InvitationRecord>, StoreError> {
    let at = micros(new.created_at)?;
    let inserted = sqlx::query_as::<_, InvitationRow>(&format!(
        "INSERT INTO organization_invitations \
             (id, organization_id, email, role, token_hash, metadata, invited_by_user_id, \
              created_at, updated_at, expires_at, accepted_at, accepted_by_user_id, \
              revoked_at, revoked_by_user_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, NULL, NULL, NULL, NULL) \
         RETURNING {INVITATION_RETURNING}"
    ))
    .bind(id_text(new.id))
    .bind(id_text(new.organization_id))
    .bind(&new.email)
    .bind(new.role.as_str())
    .bind(&new.token_hash)
    .bind(new.metadata.to_string())
    .bind(new.invited_by_user_id.map(id_text))
    .bind(at)
    .bind(micros(new.expires_at)?)
    .fetch_one(&mut *conn)
    .await;
    let row = match inserted {
        Ok(row) => row,
        Err(sqlx::Error::Database(db))
            if db.kind() == ErrorKind::UniqueViolation && db.message().contains(ACTIVE_KEY) =>
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
    row.into_record().map(Some)
}

/// Revokes the invitation `id` at `now` by `revoked_by`; the record as it now is.
async fn revoke(
    conn: &mut SqliteConnection,
    id: Uuid,
    revoked_by: Option<Uuid>,
    now: OffsetDateTime,
) -> Result<InvitationRecord, StoreError> {
    sqlx::query_as::<_, InvitationRow>(&format!(
        "UPDATE organization_invitations \
         SET revoked_at = ?2, revoked_by_user_id = ?3, updated_at = ?2 \
         WHERE id = ?1 RETURNING {INVITATION_RETURNING}"
    ))
    .bind(id_text(id))
    .bind(micros(now)?)
    .bind(revoked_by.map(id_text))
    .fetch_optional(conn)
    .await
    .map_err(map)?
    .ok_or(StoreError::NotFound)?
    .into_record()
}

/// `user_id`'s membership of `organization_id`, if any.
async fn membership(
    conn: &mut SqliteConnection,
    organization_id: &str,
    user_id: &str,
) -> Result<Option<MembershipRecord>, StoreError> {
    sqlx::query_as::<_, MembershipRow>(&format!(
        "SELECT {MEMBERSHIP_COLUMNS} FROM organization_memberships m \
         WHERE m.organization_id = ?1 AND m.user_id = ?2"
    ))
    .bind(organization_id)
    .bind(user_id)
    .fetch_optional(conn)
    .await
    .map_err(map)?
    .map(MembershipRow::into_record)
    .transpose()
}

#[async_trait]
impl InvitationStore for SqliteStore {
    async fn create_invitation(
        &self,
        new: NewInvitation,
        now: OffsetDateTime,
        effects: Effects,
    ) -> Result<Invited, StoreError> {
        let org = id_text(new.organization_id);
        let at = micros(now)?;
        // Every early return drops the write, which rolls it back (the expired invitation's
        // revocation included).
        let mut write = Write::transaction(self, effects).await?;
        let organization: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM organizations WHERE id = ?1")
                .bind(&org)
                .fetch_optional(write.conn())
                .await
                .map_err(map)?;
        if organization.is_none() {
            return Err(StoreError::NotFound);
        }
        if is_member_email(write.conn(), &org, &new.email).await? {
            return Ok(Invited::AlreadyMember);
        }
        // An expired invitation is still active (it holds the index) until revoked.
        sqlx::query(
            "UPDATE organization_invitations SET revoked_at = ?3, updated_at = ?3 \
             WHERE organization_id = ?1 AND lower(email) = lower(?2) \
               AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at <= ?3",
        )
        .bind(&org)
        .bind(&new.email)
        .bind(at)
        .execute(write.conn())
        .await
        .map_err(map)?;
        let pending: bool = sqlx::query_scalar(
            "SELECT EXISTS ( \
                 SELECT 1 FROM organization_invitations \
                 WHERE organization_id = ?1 AND lower(email) = lower(?2) \
                   AND accepted_at IS NULL AND revoked_at IS NULL)",
        )
        .bind(&org)
        .bind(&new.email)
        .fetch_one(write.conn())
        .await
        .map_err(map)?;
        if pending {
            return Ok(Invited::AlreadyPending);
        }
        let Some(created) = insert_invitation(write.conn(), &new).await? else {
            return Ok(Invited::AlreadyPending);
        };
        write.commit().await?;
        Ok(Invited::Created(created))
    }

    async fn find_invitation(&self, id: Uuid) -> Result<Option<StoredInvitation>, StoreError> {
        sqlx::query_as::<_, StoredInvitationRow>(&format!(
            "SELECT {INVITATION_COLUMNS}, i.token_hash AS token_hash, {ORGANIZATION_COLUMNS} \
             {STORED_FROM} WHERE i.id = ?1"
        ))
        .bind(id_text(id))
        .fetch_optional(&self.reader)
        .await
        .map_err(map)?
        .map(StoredInvitationRow::into_record)
        .transpose()
    }

    async fn find_invitation_by_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<StoredInvitation>, StoreError> {
        sqlx::query_as::<_, StoredInvitationRow>(&format!(
            "SELECT {INVITATION_COLUMNS}, i.token_hash AS token_hash, {ORGANIZATION_COLUMNS} \
             {STORED_FROM} WHERE i.token_hash = ?1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.reader)
        .await
        .map_err(map)?
        .map(StoredInvitationRow::into_record)
        .transpose()
    }

    async fn list_invitations(
        &self,
        organization_id: Uuid,
    ) -> Result<Vec<InvitationRecord>, StoreError> {
        sqlx::query_as::<_, InvitationRow>(&format!(
            "SELECT {INVITATION_COLUMNS} FROM organization_invitations i \
             WHERE i.organization_id = ?1 \
             ORDER BY i.created_at DESC, i.id DESC"
        ))
        .bind(id_text(organization_id))
        .fetch_all(&self.reader)
        .await
        .map_err(map)?
        .into_iter()
        .map(InvitationRow::into_record)
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
        // Returning early drops the transaction, which rolls it back.
        let mut tx = self.begin().await?;
        let found = find_by(&mut tx, "id", &id_text(id))
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
        // Returning early drops the transaction, which rolls it back.
        let mut tx = self.begin().await?;
        let found = find_by(&mut tx, "id", &id_text(id))
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
        if is_member_email(&mut tx, &id_text(organization_id), &found.email).await? {
            return Ok(Resent::AlreadyMember);
        }
        let revoked = revoke(&mut tx, id, revoked_by, now).await?;
        // The old invitation was the active one: nothing else can hold the index but a bug.
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
        let user = id_text(user_id);
        let at = micros(now)?;
        // Returning early drops the transaction, which rolls it back.
        let mut tx = self.begin().await?;
        let invitation = find_by(&mut tx, "token_hash", token_hash)
            .await?
            .ok_or(StoreError::NotFound)?;
        let org = id_text(invitation.organization_id);
        let email_matches: bool =
            sqlx::query_scalar("SELECT lower(email) = lower(?2) FROM users WHERE id = ?1")
                .bind(&user)
                .bind(&invitation.email)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map)?
                .ok_or(StoreError::NotFound)?;
        let existing = membership(&mut tx, &org, &user).await?;
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
        finish_acceptance(tx, &invitation, &user, at, effects).await
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
        let mut tx = self.begin().await?;
        let invitation = find_by(&mut tx, "token_hash", token_hash)
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

/// The invitation `id`, on `conn` (inside the caller's immediate transaction, which is the
/// lock).
pub(crate) async fn find_invitation_in(
    conn: &mut SqliteConnection,
    id: Uuid,
) -> Result<Option<InvitationRecord>, StoreError> {
    find_by(conn, "id", &id_text(id)).await
}

/// An invited signup's writes, inside the caller's transaction, which commits only on
/// `Accepted::Accepted` (then with the new user) and rolls back otherwise: `NotPending`
/// unless `invitation` is pending at `now`, `EmailMismatch` unless `user.email` is its email;
/// else the user (with their initial organization when `with_initial_organization`),
/// `user_effects`, and the acceptance.
pub(crate) async fn signup_into(
    conn: &mut SqliteConnection,
    invitation: &InvitationRecord,
    user: &NewUser,
    with_initial_organization: bool,
    now: OffsetDateTime,
    user_effects: &Effects,
    effects: AcceptEffects,
) -> Result<(Accepted, Option<UserRecord>), StoreError> {
    let at = micros(now)?;
    let status = invitation.status(now);
    if status != InvitationStatus::Pending {
        return Ok((Accepted::NotPending(status), None));
    }
    if user.email.to_lowercase() != invitation.email.to_lowercase() {
        return Ok((Accepted::EmailMismatch, None));
    }
    let record = if with_initial_organization {
        insert_user(conn, user).await?
    } else {
        insert_account(conn, user).await?
    };
    insert_effects(conn, user_effects).await?;
    let done = accept_into(conn, invitation, &id_text(user.id), at, effects).await?;
    Ok((done, Some(record)))
}

/// The end of an acceptance whose rules passed, in `tx`: the membership with the invitation's
/// role, the invitation marked accepted by `user`, the effects, the commit.
async fn finish_acceptance(
    mut tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    invitation: &InvitationRecord,
    user: &str,
    at: i64,
    effects: AcceptEffects,
) -> Result<Accepted, StoreError> {
    let done = accept_into(&mut tx, invitation, user, at, effects).await?;
    tx.commit().await.map_err(map)?;
    Ok(done)
}

/// The membership with the invitation's role, the invitation marked accepted by `user`, and
/// the effects, on `conn` (not committed).
async fn accept_into(
    conn: &mut SqliteConnection,
    invitation: &InvitationRecord,
    user: &str,
    at: i64,
    effects: AcceptEffects,
) -> Result<Accepted, StoreError> {
    let membership = sqlx::query_as::<_, MembershipRow>(&format!(
        "INSERT INTO organization_memberships \
             (organization_id, user_id, role, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?4) \
         RETURNING {MEMBERSHIP_RETURNING}"
    ))
    .bind(id_text(invitation.organization_id))
    .bind(user)
    .bind(invitation.role.as_str())
    .bind(at)
    .fetch_one(&mut *conn)
    .await
    .map_err(map)?
    .into_record()?;
    let accepted = sqlx::query_as::<_, InvitationRow>(&format!(
        "UPDATE organization_invitations \
         SET accepted_at = ?2, accepted_by_user_id = ?3, updated_at = ?2 \
         WHERE id = ?1 RETURNING {INVITATION_RETURNING}"
    ))
    .bind(id_text(invitation.id))
    .bind(at)
    .bind(user)
    .fetch_one(&mut *conn)
    .await
    .map_err(map)?
    .into_record()?;
    insert_effects(conn, &effects(&accepted, &membership)).await?;
    Ok(Accepted::Accepted {
        invitation: accepted,
        membership,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use authara_core::org::{OrgKind, OrgRole};
    use authara_core::store::{InitialOrganization, NewUser, SchemaStore as _, UserStore as _};
    use time::macros::datetime;

    /// The active index is a backstop: an insert that gets past the checks (here, none are
    /// made) while another active invitation holds the organization and email is refused as
    /// such, whatever the email's case, not as a conflict.
    #[tokio::test]
    async fn the_active_index_refuses_a_second_active_invitation() {
        let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        let at = datetime!(2030-01-01 0:00 UTC);
        let owner = NewUser {
            id: Uuid::new_v4(),
            email: "owner@example.com".into(),
            username: "owner".into(),
            password_hash: None,
            created_at: at,
            organization: InitialOrganization {
                id: Uuid::new_v4(),
                name: "Acme".into(),
                kind: OrgKind::Team,
            },
        };
        store
            .create_user(owner.clone(), Effects::none())
            .await
            .unwrap();
        let invitation = |email: &str| NewInvitation {
            id: Uuid::new_v4(),
            organization_id: owner.organization.id,
            email: email.into(),
            role: OrgRole::Member,
            metadata: serde_json::json!({}),
            token_hash: Uuid::new_v4().simple().to_string(),
            invited_by_user_id: None,
            created_at: at,
            expires_at: at + time::Duration::days(7),
            notice: None,
        };
        let mut tx = store.begin().await.unwrap();
        let first = invitation("new@example.com");
        let inserted = insert_invitation(&mut tx, &first).await;
        assert!(matches!(inserted, Ok(Some(_))), "{inserted:?}");
        let second = insert_invitation(&mut tx, &invitation("NEW@example.com")).await;
        assert!(matches!(second, Ok(None)), "{second:?}");
        // Another key, the token hash, stays a conflict.
        let same_token = NewInvitation {
            token_hash: first.token_hash.clone(),
            ..invitation("other@example.com")
        };
        let third = insert_invitation(&mut tx, &same_token).await;
        assert!(
            matches!(third, Err(StoreError::Conflict(UniqueKey::Other))),
            "{third:?}"
        );
        drop(tx);
        store.close().await;
    }
}

//! The audit log (`audit_events`). Rows are inserted by the writes that cause them (`effects`);
//! here they are listed and expired.

use async_trait::async_trait;
use authara_core::audit::{AuditRecord, RequestContext};
use authara_core::store::{AuditFilter, AuditStore, StoreError};
use sqlx::FromRow;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::map;
use crate::PgStore;

/// An audit row as PostgreSQL returns it; `metadata` is JSON text.
#[derive(FromRow)]
struct AuditRow {
    id: Uuid,
    created_at: OffsetDateTime,
    action: String,
    actor_user_id: Option<Uuid>,
    target_user_id: Option<Uuid>,
    target_email: Option<String>,
    metadata: String,
    ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
}

impl AuditRow {
    fn into_record(self) -> Result<AuditRecord, StoreError> {
        let metadata = serde_json::from_str(&self.metadata)
            .map_err(|_| StoreError::invalid("unreadable audit metadata in the database"))?;
        Ok(AuditRecord {
            id: self.id,
            created_at: self.created_at,
            action: self.action,
            actor_user_id: self.actor_user_id,
            target_user_id: self.target_user_id,
            target_email: self.target_email,
            metadata,
            context: RequestContext {
                ip: self.ip,
                user_agent: self.user_agent,
                request_id: self.request_id,
            },
        })
    }
}

#[async_trait]
impl AuditStore for PgStore {
    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        // With both a user and an email, a row matches either (a deleted user's rows keep the
        // email only).
        sqlx::query_as::<_, AuditRow>(
            "SELECT id, created_at, action, actor_user_id, target_user_id, target_email, \
                    metadata, ip, user_agent, request_id \
             FROM audit_events \
             WHERE ($1::uuid IS NULL AND $2::text IS NULL \
                    OR target_user_id = $1 OR actor_user_id = $1 OR target_email = $2) \
               AND ($3::timestamptz IS NULL OR created_at >= $3) \
             ORDER BY created_at DESC, id DESC \
             LIMIT $4",
        )
        .bind(filter.user_id)
        .bind(filter.email.as_deref())
        .bind(filter.since)
        .bind(i64::from(filter.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map)?
        .into_iter()
        .map(AuditRow::into_record)
        .collect()
    }

    async fn purge_audit(&self, before: OffsetDateTime, limit: u32) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM audit_events WHERE id IN ( \
                 SELECT id FROM audit_events WHERE created_at < $1 \
                 ORDER BY created_at, id \
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

//! The audit log (`audit_events`). Rows are inserted by the writes that cause them (`effects`);
//! here they are listed and expired. Metadata is stored as JSON text.

use async_trait::async_trait;
use authara_core::audit::{AuditRecord, RequestContext};
use authara_core::store::{AuditFilter, AuditStore, StoreError};
use sqlx::FromRow;
use time::OffsetDateTime;

use crate::error::map;
use crate::rows::{id_text, micros, parse_id, parse_time};
use crate::SqliteStore;

/// An audit row as SQLite returns it.
#[derive(FromRow)]
struct AuditRow {
    id: String,
    created_at: i64,
    action: String,
    actor_user_id: Option<String>,
    target_user_id: Option<String>,
    target_email: Option<String>,
    metadata: String,
    ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
}

impl AuditRow {
    fn into_record(self) -> Result<AuditRecord, StoreError> {
        Ok(AuditRecord {
            id: parse_id(&self.id)?,
            created_at: parse_time(self.created_at)?,
            action: self.action,
            actor_user_id: self.actor_user_id.as_deref().map(parse_id).transpose()?,
            target_user_id: self.target_user_id.as_deref().map(parse_id).transpose()?,
            target_email: self.target_email,
            metadata: serde_json::from_str(&self.metadata)
                .map_err(|_| StoreError::invalid("malformed audit metadata in the database"))?,
            context: RequestContext {
                ip: self.ip,
                user_agent: self.user_agent,
                request_id: self.request_id,
            },
        })
    }
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        sqlx::query_as::<_, AuditRow>(
            "SELECT id, created_at, action, actor_user_id, target_user_id, target_email, \
                    metadata, ip, user_agent, request_id \
             FROM audit_events \
             WHERE ((?1 IS NULL AND ?2 IS NULL) \
                    OR target_user_id = ?1 OR actor_user_id = ?1 OR target_email = ?2) \
               AND (?3 IS NULL OR created_at >= ?3) \
             ORDER BY created_at DESC, id DESC \
             LIMIT ?4",
        )
        .bind(filter.user_id.map(id_text))
        .bind(filter.email.as_deref())
        .bind(filter.since.map(micros).transpose()?)
        .bind(i64::from(filter.limit))
        .fetch_all(&self.reader)
        .await
        .map_err(map)?
        .into_iter()
        .map(AuditRow::into_record)
        .collect()
    }

    async fn purge_audit(&self, before: OffsetDateTime, limit: u32) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM audit_events WHERE id IN ( \
                 SELECT id FROM audit_events WHERE created_at < ?1 \
                 ORDER BY created_at, id \
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

//! The audit aggregate: rows are inserted only through the write methods that cause them
//! (their `Effects`); this trait reads and expires them.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use super::AuditRecord;
use crate::store::StoreError;

/// Which rows to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Rows whose target or actor is this user.
    pub user_id: Option<Uuid>,
    /// Rows whose `target_email` is this (normalised) address; kept after a deletion.
    pub email: Option<String>,
    /// Rows created at or after this time.
    pub since: Option<OffsetDateTime>,
    /// At most this many rows (the caller bounds it).
    pub limit: u32,
}

/// The audit log.
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    /// Rows matching `filter` (user id OR email when both are set), newest first.
    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError>;

    /// Deletes up to `limit` rows created before `before`. One batch per call; returns how many.
    async fn purge_audit(&self, before: OffsetDateTime, limit: u32) -> Result<u64, StoreError>;
}

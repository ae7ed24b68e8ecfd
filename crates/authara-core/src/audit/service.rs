//! Reading and expiring the audit log. Rows are written by the store methods of the actions
//! they describe, never from here.

use std::sync::Arc;

use time::OffsetDateTime;

use super::{AuditFilter, AuditRecord, AuditStore};
use crate::clock::Clock;
use crate::store::StoreError;

/// Rows deleted per statement by the retention cleanup.
pub const PURGE_BATCH: u32 = 1_000;
/// Most rows one listing returns.
pub const MAX_LIST: u32 = 1_000;

/// The audit log's reader and janitor.
#[derive(Clone)]
pub struct AuditService {
    store: Arc<dyn AuditStore>,
    clock: Arc<dyn Clock>,
}

impl AuditService {
    /// Wires the service.
    pub fn new(store: Arc<dyn AuditStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Rows matching `filter`, newest first, at most [`MAX_LIST`].
    pub async fn list(&self, mut filter: AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        filter.limit = filter.limit.clamp(1, MAX_LIST);
        self.store.list_audit(&filter).await
    }

    /// Deletes every row older than `retention`, in batches; returns how many.
    pub async fn purge_older_than(&self, retention: time::Duration) -> Result<u64, StoreError> {
        let before: OffsetDateTime = self.clock.now() - retention;
        let mut total = 0;
        loop {
            let n = self.store.purge_audit(before, PURGE_BATCH).await?;
            total += n;
            if n < u64::from(PURGE_BATCH) {
                return Ok(total);
            }
            tokio::task::yield_now().await;
        }
    }
}

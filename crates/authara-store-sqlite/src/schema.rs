//! The schema: reachability, migrations and whether they match this binary.

use std::collections::BTreeSet;

use async_trait::async_trait;
use authara_core::store::{SchemaState, SchemaStore, StoreError};
use sqlx::migrate::Migrator;
use sqlx::sqlite::SqliteConnection;

use crate::error::{map, map_migrate};
use crate::SqliteStore;

/// The migrations in `migrations/`, compiled in.
static MIGRATOR: Migrator = sqlx::migrate!();

/// Whether `_sqlx_migrations` exists, on any connection.
async fn migrations_table_exists(conn: &mut SqliteConnection) -> Result<bool, StoreError> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(map)?;
    Ok(found.is_some())
}

#[async_trait]
impl SchemaStore for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(map)?;
        Ok(())
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.writer).await.map_err(map_migrate)
    }

    async fn schema_state(&self) -> Result<SchemaState, StoreError> {
        let mut conn = self.reader.acquire().await.map_err(map)?;
        let applied: BTreeSet<i64> = if migrations_table_exists(&mut conn).await? {
            sqlx::query_scalar::<_, i64>("SELECT version FROM _sqlx_migrations WHERE success = 1")
                .fetch_all(&mut *conn)
                .await
                .map_err(map)?
                .into_iter()
                .collect()
        } else {
            BTreeSet::new()
        };
        let embedded: BTreeSet<i64> = MIGRATOR
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .map(|m| m.version)
            .collect();
        Ok(SchemaState::compare(&applied, &embedded))
    }
}

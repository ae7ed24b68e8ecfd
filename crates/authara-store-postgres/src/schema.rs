//! The schema: reachability, migrations and whether they match this binary.

use std::collections::BTreeSet;

use async_trait::async_trait;
use authara_core::store::{SchemaState, SchemaStore, StoreError};
use sqlx::error::ErrorKind;
use sqlx::migrate::Migrator;

use crate::error::{map, map_migrate};
use crate::PgStore;

/// The migrations in `migrations/`, compiled in.
static MIGRATOR: Migrator = sqlx::migrate!();

#[async_trait]
impl SchemaStore for PgStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(map)?;
        Ok(())
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        if let Some(schema) = &self.schema {
            // The name was validated in `from_options`: nothing in it needs escaping.
            let created = sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                .execute(&self.pool)
                .await;
            match created {
                Ok(_) => {}
                // Another process created it at the same moment: that is what we wanted.
                Err(sqlx::Error::Database(db)) if db.kind() == ErrorKind::UniqueViolation => {}
                Err(e) => return Err(map(e)),
            }
        }
        MIGRATOR.run(&self.pool).await.map_err(map_migrate)
    }

    async fn schema_state(&self) -> Result<SchemaState, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(map)?;
        // Resolved through the search_path, like sqlx's own unqualified table name.
        let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
            .fetch_one(&mut *conn)
            .await
            .map_err(map)?;
        let applied: BTreeSet<i64> = if exists {
            sqlx::query_scalar::<_, i64>("SELECT version FROM _sqlx_migrations WHERE success")
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

//! The side effects a write commits together with its change: outbox events and audit rows,
//! inserted on the change's own transaction, so that they exist exactly when the change does.

use authara_core::audit::NewAuditEntry;
use authara_core::events::NewEvent;
use authara_core::store::{Effects, StoreError};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::{Postgres, Transaction};

use crate::error::map;

/// Where a write runs. Without effects the change runs as it always did, its one statement
/// being its own transaction (no `BEGIN`/`COMMIT` round trips); with effects it runs in a
/// transaction that inserts them before committing. Dropping a `Write` without
/// [`Write::commit`] (an error, `NotFound`) rolls the transaction back: nothing is inserted.
pub(crate) enum Write {
    /// No effects: statements commit one by one.
    Alone(PoolConnection<Postgres>),
    /// The change and its effects, in one transaction.
    WithEffects(Transaction<'static, Postgres>, Effects),
}

impl Write {
    /// Starts a write on `pool` that commits `effects` with it.
    pub(crate) async fn begin(pool: &PgPool, effects: Effects) -> Result<Self, StoreError> {
        if effects.is_empty() {
            Ok(Self::Alone(pool.acquire().await.map_err(map)?))
        } else {
            Ok(Self::WithEffects(pool.begin().await.map_err(map)?, effects))
        }
    }

    /// The connection the change's statements run on.
    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        match self {
            Self::Alone(conn) => conn,
            Self::WithEffects(tx, _) => tx,
        }
    }

    /// The change happened: inserts the effects and commits.
    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        match self {
            Self::Alone(_) => Ok(()),
            Self::WithEffects(mut tx, effects) => {
                insert_effects(&mut tx, &effects).await?;
                tx.commit().await.map_err(map)
            }
        }
    }
}

/// Inserts `effects` on `conn`, which must be inside the change's transaction.
pub(crate) async fn insert_effects(
    conn: &mut PgConnection,
    effects: &Effects,
) -> Result<(), StoreError> {
    for event in &effects.events {
        insert_event(conn, event).await?;
    }
    for entry in &effects.audit {
        insert_audit(conn, entry).await?;
    }
    Ok(())
}

/// A pending outbox row, due at once.
async fn insert_event(conn: &mut PgConnection, event: &NewEvent) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO webhook_events \
             (id, event_type, payload, status, attempt_count, next_attempt_at, \
              processing_started_at, last_error, delivered_at, created_at, updated_at) \
         VALUES ($1, $2, $3, 'pending', 0, $4, NULL, NULL, NULL, $4, $4)",
    )
    .bind(event.id)
    .bind(event.event_type.as_str())
    .bind(&event.payload)
    .bind(event.created_at)
    .execute(conn)
    .await
    .map_err(map)?;
    Ok(())
}

/// An audit row; its metadata as JSON text.
async fn insert_audit(conn: &mut PgConnection, entry: &NewAuditEntry) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_events \
             (id, created_at, action, actor_user_id, target_user_id, target_email, metadata, \
              ip, user_agent, request_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(entry.id)
    .bind(entry.created_at)
    .bind(entry.action.as_str())
    .bind(entry.actor_user_id)
    .bind(entry.target_user_id)
    .bind(entry.target_email.as_deref())
    .bind(entry.metadata.to_string())
    .bind(entry.context.ip.as_deref())
    .bind(entry.context.user_agent.as_deref())
    .bind(entry.context.request_id.as_deref())
    .execute(conn)
    .await
    .map_err(map)?;
    Ok(())
}

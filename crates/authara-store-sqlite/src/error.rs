//! Maps sqlx errors onto [`StoreError`] without leaking SQL parameter values.

use std::fmt;

use authara_core::store::{StoreError, UniqueKey};
use sqlx::error::ErrorKind;

/// A database error reduced to what is safe to log: the code and the primary message.
/// SQLite's messages name columns and constraints, never bound values.
#[derive(Debug)]
pub(crate) struct DbError {
    code: Option<String>,
    message: String,
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(f, "sqlite error {code}: {}", self.message),
            None => write!(f, "sqlite error: {}", self.message),
        }
    }
}

impl std::error::Error for DbError {}

/// Which unique key a SQLite "UNIQUE constraint failed: table.column" message is about. SQLite
/// names the columns, never the constraint (`users_email_key` etc. only in PostgreSQL).
pub(crate) fn unique_key(message: &str) -> UniqueKey {
    if message.contains("users.email") {
        UniqueKey::Email
    } else if message.contains("users.username") {
        UniqueKey::Username
    } else if message.contains("organization_memberships.organization_id") {
        // The primary key (organization_id, user_id): one membership per user and organization.
        UniqueKey::Membership
    } else if message.contains("auth_providers.provider, auth_providers.provider_user_id") {
        // `UNIQUE (provider, provider_user_id)`: the subject belongs to a user already.
        UniqueKey::Identity
    } else if message.contains("auth_providers.user_id, auth_providers.provider") {
        UniqueKey::ProviderLinked
    } else {
        UniqueKey::Other
    }
}

/// The one mapping from sqlx to the store's errors.
/// Unique violations become `Conflict`, foreign-key violations `NotFound` (the referenced row is
/// missing), everything else `Unavailable`.
pub(crate) fn map(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Database(db) => match db.kind() {
            ErrorKind::UniqueViolation => StoreError::Conflict(unique_key(db.message())),
            ErrorKind::ForeignKeyViolation => StoreError::NotFound,
            _ => StoreError::unavailable(DbError {
                code: db.code().map(|c| c.into_owned()),
                message: db.message().to_owned(),
            }),
        },
        other => StoreError::unavailable(other),
    }
}

/// Maps a migration failure; a database error inside it goes through [`map`].
pub(crate) fn map_migrate(e: sqlx::migrate::MigrateError) -> StoreError {
    match e {
        sqlx::migrate::MigrateError::Execute(inner)
        | sqlx::migrate::MigrateError::ExecuteMigration(inner, _) => map(inner),
        other => StoreError::unavailable(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_messages_name_the_key() {
        assert_eq!(
            unique_key("UNIQUE constraint failed: users.email"),
            UniqueKey::Email
        );
        assert_eq!(
            unique_key("UNIQUE constraint failed: users.username"),
            UniqueKey::Username
        );
        assert_eq!(
            unique_key("UNIQUE constraint failed: refresh_tokens.token_hash"),
            UniqueKey::Other
        );
        assert_eq!(
            unique_key(
                "UNIQUE constraint failed: organization_memberships.organization_id, \
                 organization_memberships.user_id"
            ),
            UniqueKey::Membership
        );
        assert_eq!(
            unique_key("UNIQUE constraint failed: users.id"),
            UniqueKey::Other
        );
    }
}

//! Maps sqlx errors onto [`StoreError`] without leaking SQL parameter values.

use std::fmt;

use authara_core::store::{StoreError, UniqueKey};
use sqlx::error::ErrorKind;

/// A database error reduced to what is safe to log: SQLSTATE, constraint and the primary
/// message. PostgreSQL's DETAIL (e.g. "Key (email)=(…) already exists", "Failing row
/// contains (…)") carries row values, so it is dropped.
#[derive(Debug)]
pub(crate) struct DbError {
    code: Option<String>,
    constraint: Option<String>,
    message: String,
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("postgres error")?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(constraint) = &self.constraint {
            write!(f, " (constraint {constraint})")?;
        }
        Ok(())
    }
}

impl std::error::Error for DbError {}

/// Which unique key a violated constraint is; the message is a fallback for a constraint
/// name the server did not report.
pub(crate) fn unique_key(constraint: Option<&str>, message: &str) -> UniqueKey {
    let names = |name: &str| constraint == Some(name) || message.contains(name);
    if names("users_email_key") {
        UniqueKey::Email
    } else if names("users_username_key") {
        UniqueKey::Username
    } else if names("organization_memberships_pkey") {
        UniqueKey::Membership
    } else if names("auth_providers_provider_user_id_key") {
        UniqueKey::Identity
    } else if names("auth_providers_user_id_provider_key") {
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
            ErrorKind::UniqueViolation => {
                StoreError::Conflict(unique_key(db.constraint(), db.message()))
            }
            ErrorKind::ForeignKeyViolation => StoreError::NotFound,
            _ => StoreError::unavailable(DbError {
                code: db.code().map(|c| c.into_owned()),
                constraint: db.constraint().map(str::to_owned),
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
    fn constraint_names_pick_the_key() {
        assert_eq!(unique_key(Some("users_email_key"), ""), UniqueKey::Email);
        assert_eq!(
            unique_key(Some("users_username_key"), ""),
            UniqueKey::Username
        );
        assert_eq!(
            unique_key(Some("organization_memberships_pkey"), ""),
            UniqueKey::Membership
        );
        assert_eq!(
            unique_key(Some("refresh_tokens_token_hash_key"), ""),
            UniqueKey::Other
        );
        assert_eq!(
            unique_key(
                None,
                "duplicate key value violates unique constraint \"users_email_key\""
            ),
            UniqueKey::Email
        );
        assert_eq!(unique_key(None, "something else"), UniqueKey::Other);
    }

    #[test]
    fn sanitised_errors_show_no_detail() {
        let e = DbError {
            code: Some("23514".into()),
            constraint: Some("refresh_tokens_token_hash_check".into()),
            message: "new row violates check constraint".into(),
        };
        assert_eq!(
            e.to_string(),
            "postgres error 23514: new row violates check constraint \
             (constraint refresh_tokens_token_hash_check)"
        );
    }
}

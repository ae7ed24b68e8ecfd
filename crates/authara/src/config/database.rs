//! The database: `DATABASE_URL` (SQLite or PostgreSQL), upstream's discrete `POSTGRESQL_*`
//! variables, the pool size, and whether migrations run at start.
//!
//! Decisions:
//! - The PostgreSQL password is taken verbatim (not trimmed).
//! - In prod, an in-memory SQLite database is refused ("no ephemeral anything").
//! - `POSTGRESQL_SCHEMA`, `_TIMEZONE` and `_LOG_SQL` also apply when PostgreSQL is configured
//!   through `DATABASE_URL` (the schema then has no default).

use super::env::{err, shown, Env};
use super::{AppEnv, ConfigError, Secret};

/// The names of this section's variables.
pub mod var {
    /// `sqlite:...` or `postgres://...`.
    pub const DATABASE_URL: &str = "DATABASE_URL";
    /// PostgreSQL host; selects the `POSTGRESQL_*` variables.
    pub const PG_HOST: &str = "POSTGRESQL_HOST";
    /// PostgreSQL port.
    pub const PG_PORT: &str = "POSTGRESQL_PORT";
    /// PostgreSQL database name.
    pub const PG_DATABASE: &str = "POSTGRESQL_DATABASE";
    /// PostgreSQL user.
    pub const PG_USERNAME: &str = "POSTGRESQL_USERNAME";
    /// PostgreSQL password.
    pub const PG_PASSWORD: &str = "POSTGRESQL_PASSWORD";
    /// PostgreSQL schema holding Authara's tables.
    pub const PG_SCHEMA: &str = "POSTGRESQL_SCHEMA";
    /// PostgreSQL session time zone.
    pub const PG_TIMEZONE: &str = "POSTGRESQL_TIMEZONE";
    /// Whether SQL statements are logged.
    pub const PG_LOG_SQL: &str = "POSTGRESQL_LOG_SQL";
    /// Connection pool size.
    pub const DB_MAX_CONNECTIONS: &str = "AUTHARA_DATABASE_MAX_CONNECTIONS";
    /// Apply pending migrations at start.
    pub const AUTO_MIGRATE: &str = "AUTHARA_AUTO_MIGRATE";
}

use var::*;

/// The default SQLite database.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://authara.db";

/// The database backend.
#[derive(Debug, Clone)]
pub enum DatabaseConfig {
    /// An SQLite database: `sqlite://PATH`, `sqlite:PATH` or `sqlite::memory:`.
    Sqlite {
        /// The URL as configured.
        url: String,
    },
    /// A PostgreSQL database.
    Postgres(PostgresConfig),
}

/// How to reach PostgreSQL: either `url`, or the discrete `POSTGRESQL_*` fields.
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// `DATABASE_URL` when it is a `postgres://` URL; then `host`, `database` and `username`
    /// are empty and `password` is `None`. May contain a password.
    pub url: Option<Secret>,
    /// `POSTGRESQL_HOST`.
    pub host: String,
    /// `POSTGRESQL_PORT`.
    pub port: u16,
    /// `POSTGRESQL_DATABASE`.
    pub database: String,
    /// `POSTGRESQL_USERNAME`.
    pub username: String,
    /// `POSTGRESQL_PASSWORD`.
    pub password: Option<Secret>,
    /// Schema holding Authara's tables; `authara` by default in `POSTGRESQL_*` mode.
    pub schema: Option<String>,
    /// Session time zone.
    pub timezone: String,
    /// Whether SQL statements are logged.
    pub log_sql: bool,
    /// Connection pool size, `AUTHARA_DATABASE_MAX_CONNECTIONS`.
    pub max_connections: u32,
}

fn is_schema_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && s.len() <= 63
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn pg_schema(e: &Env<'_>, default: Option<&str>) -> Result<Option<String>, ConfigError> {
    let Some(v) = e.get(PG_SCHEMA) else {
        return Ok(default.map(str::to_owned));
    };
    if !is_schema_name(&v) {
        return Err(err(
            PG_SCHEMA,
            format!(
                "must match [a-z_][a-z0-9_]{{0,62}} (a lowercase identifier), got {}",
                shown(&v)
            ),
        ));
    }
    if v.starts_with("pg_") {
        return Err(err(
            PG_SCHEMA,
            format!(
                "must not start with pg_ (reserved by PostgreSQL), got {}",
                shown(&v)
            ),
        ));
    }
    Ok(Some(v))
}

fn pg_timezone(e: &Env<'_>) -> Result<String, ConfigError> {
    let Some(v) = e.get(PG_TIMEZONE) else {
        return Ok("UTC".to_owned());
    };
    let ok = v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'/' | b':'));
    if ok {
        Ok(v)
    } else {
        Err(err(
            PG_TIMEZONE,
            format!(
                "must be a time zone name such as UTC or Europe/Berlin, got {}",
                shown(&v)
            ),
        ))
    }
}

/// A PostgreSQL database or user name: required, at most 63 bytes, printable.
fn pg_name(e: &Env<'_>, name: &'static str) -> Result<String, ConfigError> {
    let v = e
        .get(name)
        .ok_or_else(|| err(name, "is required when POSTGRESQL_HOST is set"))?;
    if v.len() > 63 || v.chars().any(char::is_control) {
        return Err(err(
            name,
            format!(
                "must be at most 63 bytes without control characters, got {}",
                shown(&v)
            ),
        ));
    }
    Ok(v)
}

/// The database section: `DATABASE_URL`, else `POSTGRESQL_HOST` and its companions, else SQLite.
pub(super) fn read(e: &Env<'_>, env: AppEnv) -> Result<DatabaseConfig, ConfigError> {
    // Validated even for SQLite, so that a typo is not silently ignored.
    let max_connections = e.whole(DB_MAX_CONNECTIONS, 10, 1, 1000, "")?;
    if let Some(url) = e.get(DATABASE_URL) {
        if let Some(rest) = url.strip_prefix("sqlite:") {
            if rest.strip_prefix("//").unwrap_or(rest).is_empty() {
                return Err(err(
                    DATABASE_URL,
                    "must name a database file after sqlite:, e.g. sqlite://authara.db",
                ));
            }
            // Asked of the store, so that "in memory" means what it opens.
            if env == AppEnv::Prod && matches!(authara_store_sqlite::database_file(&url), Ok(None))
            {
                return Err(err(
                    DATABASE_URL,
                    "must not be an in-memory SQLite database when APP_ENV is prod",
                ));
            }
            return Ok(DatabaseConfig::Sqlite { url });
        }
        for scheme in ["postgres://", "postgresql://"] {
            if let Some(rest) = url.strip_prefix(scheme) {
                if rest.is_empty() {
                    return Err(err(
                        DATABASE_URL,
                        format!("must name a server after {scheme}"),
                    ));
                }
                return Ok(DatabaseConfig::Postgres(PostgresConfig {
                    url: Some(Secret::new(url)),
                    host: String::new(),
                    port: 5432,
                    database: String::new(),
                    username: String::new(),
                    password: None,
                    schema: pg_schema(e, None)?,
                    timezone: pg_timezone(e)?,
                    log_sql: e.boolean(PG_LOG_SQL, false)?,
                    max_connections,
                }));
            }
        }
        return Err(err(
            DATABASE_URL,
            "must start with sqlite:, postgres:// or postgresql:// (the value is not shown: it may contain a password)",
        ));
    }
    if let Some(host) = e.get(PG_HOST) {
        if host.len() > 255 || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(err(
                PG_HOST,
                format!(
                    "must be a host name, address or socket directory without spaces, got {}",
                    shown(&host)
                ),
            ));
        }
        return Ok(DatabaseConfig::Postgres(PostgresConfig {
            url: None,
            host,
            port: e.whole(PG_PORT, 5432, 1, 65535, "")?,
            database: pg_name(e, PG_DATABASE)?,
            username: pg_name(e, PG_USERNAME)?,
            password: e.raw(PG_PASSWORD).map(Secret::new),
            max_connections,
            schema: pg_schema(e, Some("authara"))?,
            timezone: pg_timezone(e)?,
            log_sql: e.boolean(PG_LOG_SQL, false)?,
        }));
    }
    // Without this, a forgotten POSTGRESQL_HOST would silently fall back to SQLite.
    for other in [PG_PORT, PG_DATABASE, PG_USERNAME, PG_PASSWORD] {
        if e.get(other).is_some() {
            return Err(err(
                PG_HOST,
                format!("must be set when {other} is set (or set DATABASE_URL)"),
            ));
        }
    }
    Ok(DatabaseConfig::Sqlite {
        url: DEFAULT_DATABASE_URL.to_owned(),
    })
}

/// `AUTHARA_AUTO_MIGRATE`; by default only a dev SQLite database migrates at start.
pub(super) fn auto_migrate(
    e: &Env<'_>,
    database: &DatabaseConfig,
    env: AppEnv,
) -> Result<bool, ConfigError> {
    let sqlite = matches!(database, DatabaseConfig::Sqlite { .. });
    e.boolean(AUTO_MIGRATE, sqlite && env == AppEnv::Dev)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::super::testing::{assert_messages, load, prod_with};
    use super::*;

    #[test]
    fn every_invalid_database_setting_has_its_own_one_line_message() {
        let long = "a".repeat(64);
        let cases: Vec<(Vec<(&str, &str)>, String)> = vec![
            (
                vec![("DATABASE_URL", "sqlite://")],
                "DATABASE_URL must name a database file after sqlite:, e.g. sqlite://authara.db".into(),
            ),
            (
                prod_with(&[("DATABASE_URL", "sqlite::memory:")]),
                "DATABASE_URL must not be an in-memory SQLite database when APP_ENV is prod".into(),
            ),
            (
                vec![("DATABASE_URL", "postgres://")],
                "DATABASE_URL must name a server after postgres://".into(),
            ),
            (
                vec![("DATABASE_URL", "mysql://u:hunter2@db/x")],
                "DATABASE_URL must start with sqlite:, postgres:// or postgresql:// (the value is not shown: it may contain a password)".into(),
            ),
            (
                vec![("POSTGRESQL_HOST", "db host")],
                r#"POSTGRESQL_HOST must be a host name, address or socket directory without spaces, got "db host""#.into(),
            ),
            (
                vec![("POSTGRESQL_HOST", "db"), ("POSTGRESQL_PORT", "0")],
                r#"POSTGRESQL_PORT must be a whole number from 1 to 65535, got "0""#.into(),
            ),
            (
                vec![("POSTGRESQL_HOST", "db"), ("POSTGRESQL_USERNAME", "u")],
                "POSTGRESQL_DATABASE is required when POSTGRESQL_HOST is set".into(),
            ),
            (
                vec![("POSTGRESQL_HOST", "db"), ("POSTGRESQL_DATABASE", "d")],
                "POSTGRESQL_USERNAME is required when POSTGRESQL_HOST is set".into(),
            ),
            (
                vec![("POSTGRESQL_HOST", "db"), ("POSTGRESQL_DATABASE", &long)],
                format!(r#"POSTGRESQL_DATABASE must be at most 63 bytes without control characters, got "{long}""#),
            ),
            (
                vec![("DATABASE_URL", "postgres://db/x"), ("POSTGRESQL_SCHEMA", "Authara")],
                r#"POSTGRESQL_SCHEMA must match [a-z_][a-z0-9_]{0,62} (a lowercase identifier), got "Authara""#.into(),
            ),
            (
                vec![("DATABASE_URL", "postgres://db/x"), ("POSTGRESQL_SCHEMA", "pg_auth")],
                r#"POSTGRESQL_SCHEMA must not start with pg_ (reserved by PostgreSQL), got "pg_auth""#.into(),
            ),
            (
                vec![("DATABASE_URL", "postgres://db/x"), ("POSTGRESQL_TIMEZONE", "UTC; DROP")],
                r#"POSTGRESQL_TIMEZONE must be a time zone name such as UTC or Europe/Berlin, got "UTC; DROP""#.into(),
            ),
            (
                vec![("DATABASE_URL", "postgres://db/x"), ("POSTGRESQL_LOG_SQL", "maybe")],
                r#"POSTGRESQL_LOG_SQL must be true or false (or 1/0, yes/no, on/off), got "maybe""#.into(),
            ),
            (
                vec![("POSTGRESQL_DATABASE", "authara")],
                "POSTGRESQL_HOST must be set when POSTGRESQL_DATABASE is set (or set DATABASE_URL)".into(),
            ),
            (
                vec![("AUTHARA_DATABASE_MAX_CONNECTIONS", "0")],
                r#"AUTHARA_DATABASE_MAX_CONNECTIONS must be a whole number from 1 to 1000, got "0""#.into(),
            ),
            (
                vec![("AUTHARA_AUTO_MIGRATE", "sure")],
                r#"AUTHARA_AUTO_MIGRATE must be true or false (or 1/0, yes/no, on/off), got "sure""#.into(),
            ),
        ];
        assert_messages(&cases);
    }

    #[test]
    fn postgresql_variables_configure_postgres_with_the_authara_schema() {
        let c = load(&[
            ("POSTGRESQL_HOST", "db.internal"),
            ("POSTGRESQL_DATABASE", "auth"),
            ("POSTGRESQL_USERNAME", "authara"),
            ("POSTGRESQL_PASSWORD", " pass word "),
            ("AUTHARA_DATABASE_MAX_CONNECTIONS", "25"),
        ])
        .unwrap();
        let DatabaseConfig::Postgres(pg) = &c.database else {
            panic!("not postgres: {c:?}");
        };
        assert_eq!(pg.url.as_ref().map(Secret::<String>::expose), None);
        assert_eq!(pg.host, "db.internal");
        assert_eq!(pg.port, 5432);
        assert_eq!(pg.database, "auth");
        assert_eq!(pg.username, "authara");
        assert_eq!(
            pg.password.as_ref().map(|p| p.expose()),
            Some(" pass word "),
            "passwords are taken verbatim"
        );
        assert_eq!(pg.schema.as_deref(), Some("authara"));
        assert_eq!(pg.timezone, "UTC");
        assert!(!pg.log_sql);
        assert_eq!(pg.max_connections, 25);
        assert!(!c.auto_migrate);

        let c = load(&[
            ("POSTGRESQL_HOST", "db"),
            ("POSTGRESQL_PORT", "6543"),
            ("POSTGRESQL_DATABASE", "auth"),
            ("POSTGRESQL_USERNAME", "authara"),
            ("POSTGRESQL_SCHEMA", "_auth_2"),
            ("POSTGRESQL_TIMEZONE", "Europe/Berlin"),
            ("POSTGRESQL_LOG_SQL", "yes"),
            ("AUTHARA_AUTO_MIGRATE", "on"),
        ])
        .unwrap();
        let DatabaseConfig::Postgres(pg) = &c.database else {
            panic!("not postgres");
        };
        assert_eq!(pg.port, 6543);
        assert!(pg.password.is_none());
        assert_eq!(pg.schema.as_deref(), Some("_auth_2"));
        assert_eq!(pg.timezone, "Europe/Berlin");
        assert!(pg.log_sql);
        assert!(c.auto_migrate);
    }

    #[test]
    fn a_postgres_database_url_wins_and_disables_auto_migrate() {
        for url in [
            "postgres://u:p@db/auth",
            "postgresql://db/auth?sslmode=require",
        ] {
            let c = load(&[("DATABASE_URL", url), ("POSTGRESQL_HOST", "ignored")]).unwrap();
            let DatabaseConfig::Postgres(pg) = &c.database else {
                panic!("not postgres");
            };
            assert_eq!(pg.url.as_ref().map(Secret::<String>::expose), Some(url));
            assert_eq!(pg.schema, None);
            assert_eq!(pg.timezone, "UTC");
            assert_eq!(pg.max_connections, 10);
            assert!(!c.auto_migrate);
        }
        let c = load(&[
            ("DATABASE_URL", "postgres://db/auth"),
            ("POSTGRESQL_SCHEMA", "tenant_a"),
        ])
        .unwrap();
        let DatabaseConfig::Postgres(pg) = &c.database else {
            panic!("not postgres");
        };
        assert_eq!(pg.schema.as_deref(), Some("tenant_a"));
    }

    #[test]
    fn sqlite_urls_are_accepted_in_all_their_forms() {
        for url in ["sqlite://data/a.db", "sqlite:a.db", "sqlite::memory:"] {
            let c = load(&[("DATABASE_URL", url)]).unwrap();
            assert!(matches!(&c.database, DatabaseConfig::Sqlite { url: u } if u == url));
            assert!(c.auto_migrate);
        }
        let c = load(&prod_with(&[(
            "DATABASE_URL",
            "sqlite:///var/lib/authara/a.db",
        )]))
        .unwrap();
        assert!(!c.auto_migrate, "prod never migrates unless asked");
        let c = load(&[
            ("DATABASE_URL", "sqlite:a.db"),
            ("AUTHARA_AUTO_MIGRATE", "0"),
        ])
        .unwrap();
        assert!(!c.auto_migrate);
    }
}

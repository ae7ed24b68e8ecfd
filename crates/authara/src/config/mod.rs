//! Server configuration (SPEC §2), read once from environment variables at start-up.
//!
//! Every problem is reported as a [`ConfigError`] whose one-line message names the variable and
//! says what is wrong. Messages never echo a secret: for `AUTHARA_JWT_KEYS` they name the key id,
//! and database, Redis or webhook URLs (which may carry a password or a token) are not shown at
//! all. Secrets are kept in types whose `Debug` prints `<redacted>`, so `{:?}` of a [`Config`] is
//! safe to log.
//!
//! One file per section, each with its own tests and its variables in its own `var` module
//! (re-exported by [`var`]): `database`, `url` (`PUBLIC_URL`), `jwt`, `session`, `limits` (rate
//! limits, Redis, trusted proxies), `oauth`, `password`, `http`, `webhooks`, `audit`, `challenge`
//! (emailed codes), `email` (the provider, SMTP and the outbox workers), `org` (organizations). `env` reads
//! and words values, `duration` parses Go-style durations, `secret` holds [`Secret`].
//!
//! Decisions worth knowing:
//! - An empty (or, except for the passwords, whitespace-only) variable counts as unset, and
//!   values are trimmed; `POSTGRESQL_PASSWORD` and `AUTHARA_REDIS_PASSWORD` are taken verbatim.
//! - Each section documents its own decisions at the top of its file.

mod audit;
mod challenge;
mod database;
mod duration;
mod email;
mod env;
mod http;
mod jwt;
mod limits;
mod oauth;
mod org;
mod password;
mod secret;
mod session;
mod url;
mod webhooks;

pub use audit::AuditConfig;
pub use authara_core::limits::{Limit, RateLimits};
pub use database::{DatabaseConfig, PostgresConfig, DEFAULT_DATABASE_URL};
pub use duration::parse_duration;
pub use email::{EmailConfig, EmailProvider, SmtpConfig};
pub use http::HttpLimits;
pub use jwt::{JwtConfig, KeySource};
pub use oauth::{CodeFlowConfig, CodeFlowKind, GoogleConfig, OAuthConfig, DEFAULT_GOOGLE_JWKS_URL};
pub use org::OrgConfig;
pub use secret::Secret;
pub use url::DEFAULT_PUBLIC_URL;
pub use webhooks::WebhookConfig;

/// Kept here so that `config::Cidr` still names it; it lives in [`crate::network`].
pub use crate::network::Cidr;

use authara_core::auth::password::HashParams;
use authara_core::session::SessionPolicy;
use env::{err, shown, Env};
use std::fmt;
use std::net::SocketAddr;

/// The names of every variable read here, section by section.
pub mod var {
    pub use super::audit::var::*;
    pub use super::challenge::var::*;
    pub use super::database::var::*;
    pub use super::email::var::*;
    pub use super::http::var::*;
    pub use super::jwt::var::*;
    pub use super::limits::var::*;
    pub use super::oauth::var::*;
    pub use super::org::var::*;
    pub use super::password::var::*;
    pub use super::session::var::*;
    pub use super::url::var::*;
    pub use super::webhooks::var::*;

    /// `dev` or `prod`.
    pub const APP_ENV: &str = "APP_ENV";
    /// Log verbosity.
    pub const LOG_LEVEL: &str = "LOG_LEVEL";
    /// Listen address.
    pub const HTTP_ADDR: &str = "AUTHARA_HTTP_ADDR";

    /// Every variable above.
    pub const ALL: &[&str] = &[
        APP_ENV,
        LOG_LEVEL,
        HTTP_ADDR,
        DATABASE_URL,
        PG_HOST,
        PG_PORT,
        PG_DATABASE,
        PG_USERNAME,
        PG_PASSWORD,
        PG_SCHEMA,
        PG_TIMEZONE,
        PG_LOG_SQL,
        DB_MAX_CONNECTIONS,
        PUBLIC_URL,
        JWT_ISSUER,
        JWT_KEYS,
        JWT_ACTIVE_KEY_ID,
        ACCESS_TTL,
        SESSION_TTL,
        REFRESH_TTL,
        ROTATION,
        REUSE_GRACE,
        RL_LOGIN_IP_LIMIT,
        RL_LOGIN_IP_WINDOW,
        RL_LOGIN_EMAIL_LIMIT,
        RL_LOGIN_EMAIL_WINDOW,
        RL_SIGNUP_IP_LIMIT,
        RL_SIGNUP_IP_WINDOW,
        RL_SIGNUP_EMAIL_LIMIT,
        RL_SIGNUP_EMAIL_WINDOW,
        RL_PASSWORD_RESET_IP_LIMIT,
        RL_PASSWORD_RESET_IP_WINDOW,
        RL_PASSWORD_RESET_EMAIL_LIMIT,
        RL_PASSWORD_RESET_EMAIL_WINDOW,
        RL_PASSKEY_LOGIN_IP_LIMIT,
        RL_PASSKEY_LOGIN_IP_WINDOW,
        RL_CHALLENGE_VERIFY_IP_LIMIT,
        RL_CHALLENGE_VERIFY_IP_WINDOW,
        RL_CHALLENGE_RESEND_IP_LIMIT,
        RL_CHALLENGE_RESEND_IP_WINDOW,
        RL_CLEANUP_EVERY,
        RL_MAX_ENTRIES,
        REDIS_URL,
        CACHE_PROVIDER,
        REDIS_HOST,
        REDIS_PORT,
        REDIS_PASSWORD,
        REDIS_DB,
        TRUSTED_PROXIES,
        TRUST_PROXY_HEADERS,
        OAUTH_PROVIDERS,
        GOOGLE_CLIENT_ID,
        GOOGLE_JWKS_URL,
        AUTO_MIGRATE,
        HASH_MEMORY_KIB,
        HASH_ITERATIONS,
        HASH_PARALLELISM,
        HASH_CONCURRENCY,
        HASH_QUEUE,
        SESSION_CACHE_SECONDS,
        HTTP_HEADER_READ_TIMEOUT,
        HTTP_REQUEST_TIMEOUT,
        HTTP_BODY_TIMEOUT,
        HTTP_IDLE_TIMEOUT,
        HTTP_MAX_CONNECTIONS,
        HTTP_MAX_HEADER_BYTES,
        SHUTDOWN_TIMEOUT,
        SESSIONS_MAX_PER_USER,
        WEBHOOK_URL,
        WEBHOOK_SECRET,
        WEBHOOK_ENABLED_EVENTS,
        WEBHOOK_TIMEOUT,
        WEBHOOK_WORKER_COUNT,
        WEBHOOK_MAX_DELIVERY_ATTEMPTS,
        WEBHOOK_PROCESSING_STALE_AFTER,
        WEBHOOK_STALE_REAPER_INTERVAL,
        WEBHOOK_DELIVERED_RETENTION,
        WEBHOOK_FAILED_RETENTION,
        WEBHOOK_CLEANUP_INTERVAL,
        WEBHOOK_MAINTENANCE_BATCH_SIZE,
        WEBHOOK_ALLOW_PRIVATE_NETWORKS,
        ADMIN_AUDIT_RETENTION_DAYS,
        CHALLENGE_ENABLED,
        CHALLENGE_TTL,
        CHALLENGE_CODE_TTL,
        CHALLENGE_MAX_ATTEMPTS,
        CHALLENGE_MAX_RESENDS,
        CHALLENGE_MIN_RESEND_INTERVAL,
        EMAIL_PROVIDER,
        EMAIL_FROM,
        EMAIL_SMTP_HOST,
        EMAIL_SMTP_PORT,
        EMAIL_SMTP_USERNAME,
        EMAIL_SMTP_PASSWORD,
        EMAIL_SMTP_TLS,
        EMAIL_SMTP_TLS_CA_FILE,
        EMAIL_SMTP_TIMEOUT,
        EMAIL_WORKER_COUNT,
        EMAIL_WORKER_POLL_INTERVAL,
        EMAIL_JOB_MAX_ATTEMPTS,
        EMAIL_CLEANUP_SENT_AFTER,
        EMAIL_CLEANUP_FAILED_AFTER,
        INVITATION_EMAIL_INCLUDE_CODE,
        ORG_MODE,
        PUBLIC_ORGANIZATION_MANAGEMENT_ENABLED,
        INTERNAL_API_TOKEN,
        ORGANIZATION_INVITATION_TTL,
    ];
}

use var::*;

/// The complete server configuration. `Debug` shows no secret: every field that may hold one
/// is a [`Secret`].
#[derive(Debug, Clone)]
pub struct Config {
    /// `dev` or `prod`.
    pub env: AppEnv,
    /// One of `trace`, `debug`, `info`, `warn`, `error`.
    pub log_level: String,
    /// Where the HTTP server listens.
    pub http_addr: SocketAddr,
    /// Which database, and how to reach it.
    pub database: DatabaseConfig,
    /// External origin without `/auth` and without a trailing slash.
    pub public_url: String,
    /// Issuer and signing keys of access tokens.
    pub jwt: JwtConfig,
    /// Token lifetimes and the rotation policy.
    pub session: SessionPolicy,
    /// Every rate limit, and the memory bound of the in-process limiter.
    pub rate_limits: RateLimits,
    /// Redis for state shared between instances; may contain a password.
    pub redis_url: Option<Secret>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<Cidr>,
    /// Enabled third-party sign-in.
    pub oauth: OAuthConfig,
    /// Whether pending migrations are applied at start.
    pub auto_migrate: bool,
    /// Argon2id cost of new password hashes.
    pub password_hash: HashParams,
    /// How many password hashes run at once.
    pub hash_concurrency: usize,
    /// How many password hashes may wait for a thread.
    pub hash_queue: usize,
    /// How long a live session may be answered from memory (zero: never).
    pub session_cache_max_age: std::time::Duration,
    /// Connection limits and timeouts of the HTTP server.
    pub http: HttpLimits,
    /// Webhook delivery; `None` when `AUTHARA_WEBHOOK_URL` is unset (webhooks off).
    pub webhooks: Option<WebhookConfig>,
    /// The audit log's retention.
    pub audit: AuditConfig,
    /// Emailed-code challenges (`AUTHARA_CHALLENGE_*`).
    pub challenge: authara_core::challenge::ChallengeSettings,
    /// The email provider and the outbox workers (`AUTHARA_EMAIL_*`).
    pub email: EmailConfig,
    /// The organization mode and the public management routes.
    pub org: OrgConfig,
    /// Said once at start (e.g. a rate limit turned off in dev); never contains a secret.
    pub warnings: Vec<String>,
}

/// The deployment mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    /// Development: insecure cookies, ephemeral key allowed.
    Dev,
    /// Production: `Secure` cookies, keys and issuer required.
    Prod,
}

/// An invalid setting: which variable, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The variable at fault.
    /// (A provider's variables are named after it: `AUTHARA_OAUTH_<NAME>_ISSUER`.)
    pub var: std::borrow::Cow<'static, str>,
    /// What is wrong, without the variable name; never contains a secret.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.var, self.message)
    }
}

impl std::error::Error for ConfigError {}

fn app_env(e: &Env<'_>) -> Result<AppEnv, ConfigError> {
    let Some(v) = e.get(APP_ENV) else {
        return Ok(AppEnv::Dev);
    };
    match v.to_ascii_lowercase().as_str() {
        "dev" | "development" => Ok(AppEnv::Dev),
        "prod" | "production" => Ok(AppEnv::Prod),
        _ => Err(err(
            APP_ENV,
            format!("must be dev or prod, got {}", shown(&v)),
        )),
    }
}

fn log_level(e: &Env<'_>, env: AppEnv) -> Result<String, ConfigError> {
    let Some(v) = e.get(LOG_LEVEL) else {
        return Ok(match env {
            AppEnv::Dev => "debug",
            AppEnv::Prod => "info",
        }
        .to_owned());
    };
    let lower = v.to_ascii_lowercase();
    if ["trace", "debug", "info", "warn", "error"].contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(err(
            LOG_LEVEL,
            format!(
                "must be one of trace, debug, info, warn, error, got {}",
                shown(&v)
            ),
        ))
    }
}

fn http_addr(e: &Env<'_>) -> Result<SocketAddr, ConfigError> {
    let Some(v) = e.get(HTTP_ADDR) else {
        return Ok(SocketAddr::from(([127, 0, 0, 1], 8080)));
    };
    v.parse().map_err(|_| {
        err(
            HTTP_ADDR,
            format!(
                "must be IP:PORT such as 127.0.0.1:8080 or [::]:8080, got {}",
                shown(&v)
            ),
        )
    })
}

impl Config {
    /// Reads the process environment (the binary loads `.env` first). A variable that is not
    /// valid UTF-8 is an error rather than silently unset.
    pub fn from_env() -> Result<Config, ConfigError> {
        for name in ALL {
            if let Err(std::env::VarError::NotUnicode(_)) = std::env::var(name) {
                return Err(err(*name, "is not valid UTF-8"));
            }
        }
        // A provider's variables are named after it (`AUTHARA_OAUTH_<NAME>_ISSUER`).
        for (name, value) in std::env::vars_os() {
            if let Some(name) = name.to_str().filter(|n| oauth::is_provider_variable(n)) {
                if value.to_str().is_none() {
                    return Err(err(name.to_owned(), "is not valid UTF-8"));
                }
            }
        }
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `get` (which returns a variable's value, if set).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let e = Env { get: &get };
        let env = app_env(&e)?;
        let log_level = log_level(&e, env)?;
        let http_addr = http_addr(&e)?;
        let database = database::read(&e, env)?;
        let public_url = url::public_url(&e, env)?;
        let jwt = jwt::read(&e, env)?;
        let session = session::read(&e)?;
        let limits::Section {
            rate_limits,
            redis_url,
            trusted_proxies,
            mut warnings,
        } = limits::read(&e, env)?;
        let oauth = oauth::read(&e)?;
        let auto_migrate = database::auto_migrate(&e, &database, env)?;
        let password::Section {
            password_hash,
            hash_concurrency,
            hash_queue,
        } = password::read(&e)?;
        let session_cache_max_age = session::cache_max_age(&e)?;
        let http = http::http_limits(&e)?;
        let webhooks = webhooks::read(&e, env, &mut warnings)?;
        let audit = audit::read(&e)?;
        let challenge = challenge::read(&e)?;
        let email = email::read(&e, env, &challenge, &mut warnings)?;
        let org = org::read(&e, env)?;
        Ok(Config {
            env,
            log_level,
            http_addr,
            database,
            public_url,
            jwt,
            session,
            rate_limits,
            redis_url,
            trusted_proxies,
            oauth,
            auto_migrate,
            password_hash,
            hash_concurrency,
            hash_queue,
            session_cache_max_age,
            http,
            webhooks,
            audit,
            challenge,
            email,
            org,
            warnings,
        })
    }

    /// Whether `APP_ENV` is prod.
    pub fn is_prod(&self) -> bool {
        self.env == AppEnv::Prod
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod props;

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod testing;

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::testing::{assert_messages, key1, key2, load, PROD};
    use super::*;
    use authara_core::session::Rotation;
    use std::time::Duration;

    #[test]
    fn with_nothing_set_it_runs_in_dev_on_sqlite_with_an_ephemeral_key() {
        let c = load(&[]).unwrap();
        assert_eq!(c.env, AppEnv::Dev);
        assert!(!c.is_prod());
        assert_eq!(c.log_level, "debug");
        assert_eq!(c.http_addr, "127.0.0.1:8080".parse().unwrap());
        assert!(
            matches!(&c.database, DatabaseConfig::Sqlite { url } if url == "sqlite://authara.db")
        );
        assert_eq!(c.public_url, "http://127.0.0.1:8080");
        assert_eq!(c.jwt.issuer, "authara");
        assert!(matches!(c.jwt.keys, KeySource::Ephemeral));
        assert_eq!(c.session.access_ttl, time::Duration::minutes(10));
        assert_eq!(c.session.session_ttl, time::Duration::days(60));
        assert_eq!(c.session.refresh_ttl, time::Duration::days(14));
        assert_eq!(
            c.session.rotation,
            Rotation::After(time::Duration::hours(24))
        );
        assert_eq!(c.session.reuse_grace, time::Duration::seconds(10));
        let l = |limit, secs| Limit {
            limit,
            window: Duration::from_secs(secs),
        };
        assert_eq!(
            c.rate_limits,
            RateLimits {
                login_ip: l(5, 60),
                login_email: l(10, 3600),
                signup_ip: l(3, 3600),
                signup_email: l(3, 86_400),
                password_reset_ip: l(5, 3600),
                password_reset_email: l(3, 86_400),
                passkey_login_ip: l(30, 600),
                challenge_verify_ip: l(30, 600),
                challenge_resend_ip: l(10, 3600),
                cleanup_every: 200,
                max_entries: 50_000,
            }
        );
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(c.redis_url.as_ref().map(Secret::<String>::expose), None);
        assert!(c.trusted_proxies.is_empty());
        assert!(c.oauth.google.is_none());
        assert!(c.auto_migrate);
        assert_eq!(c.password_hash, HashParams::default());
        assert!((1..=256).contains(&c.hash_concurrency));
    }

    #[test]
    fn empty_and_blank_values_count_as_unset() {
        let blank: Vec<(&str, &str)> = var::ALL
            .iter()
            .enumerate()
            .map(|(i, v)| (*v, if i % 2 == 0 { "" } else { "  " }))
            .collect();
        let unique: std::collections::HashSet<&&str> = var::ALL.iter().collect();
        assert_eq!(unique.len(), var::ALL.len(), "var::ALL has a duplicate");
        let c = load(&blank).unwrap();
        assert_eq!(c.env, AppEnv::Dev);
        assert!(matches!(c.database, DatabaseConfig::Sqlite { .. }));
    }

    #[test]
    fn prod_defaults_and_aliases() {
        let c = load(&PROD).unwrap();
        assert!(c.is_prod());
        assert_eq!(c.log_level, "info");
        assert!(!c.auto_migrate, "no automatic migrations in prod");
        for (value, env) in [
            ("production", AppEnv::Prod),
            ("PROD", AppEnv::Prod),
            ("development", AppEnv::Dev),
            ("Dev", AppEnv::Dev),
        ] {
            let mut pairs = PROD.to_vec();
            pairs[0].1 = value;
            assert_eq!(load(&pairs).unwrap().env, env, "{value}");
        }
        let c = load(&[("LOG_LEVEL", " WARN ")]).unwrap();
        assert_eq!(c.log_level, "warn");
    }
    #[test]
    fn every_invalid_general_setting_has_its_own_one_line_message() {
        let cases: Vec<(Vec<(&str, &str)>, String)> = vec![
            (vec![("APP_ENV", "staging")], r#"APP_ENV must be dev or prod, got "staging""#.into()),
            (
                vec![("LOG_LEVEL", "verbose")],
                r#"LOG_LEVEL must be one of trace, debug, info, warn, error, got "verbose""#.into(),
            ),
            (
                vec![("AUTHARA_HTTP_ADDR", "localhost:8080")],
                r#"AUTHARA_HTTP_ADDR must be IP:PORT such as 127.0.0.1:8080 or [::]:8080, got "localhost:8080""#.into(),
            ),
        ];
        assert_messages(&cases);
    }

    #[test]
    fn the_listen_address_is_read() {
        let c = load(&[("AUTHARA_HTTP_ADDR", "[::]:9000")]).unwrap();
        assert_eq!(c.http_addr, "[::]:9000".parse().unwrap());
    }

    #[test]
    fn debug_output_never_contains_a_secret() {
        let c = load(&[
            ("POSTGRESQL_HOST", "db"),
            ("POSTGRESQL_DATABASE", "auth"),
            ("POSTGRESQL_USERNAME", "authara"),
            ("POSTGRESQL_PASSWORD", "pg-password-Z9"),
            ("AUTHARA_JWT_KEYS", "k1:{K},k2:{K2}"),
            ("AUTHARA_JWT_ACTIVE_KEY_ID", "k2"),
            ("AUTHARA_REDIS_URL", "redis://:redis-password-Q7@cache:6379"),
        ])
        .unwrap();
        let debug = format!("{c:?} {c:#?}");
        for secret in ["pg-password-Z9", "redis-password-Q7", &key1(), &key2()] {
            assert!(!debug.contains(secret), "{secret} leaked: {debug}");
        }
        // The raw bytes must not show either (Debug of a Vec<u8> prints numbers).
        assert!(
            !debug.contains("7, 7, 7") && !debug.contains("8, 8, 8"),
            "{debug}"
        );
        assert!(debug.contains("<redacted>"));
        assert!(
            debug.contains("\"k1\"") && debug.contains("\"k2\""),
            "kids are shown"
        );
        assert!(debug.contains("db") && debug.contains("authara"));

        let c = load(&[("DATABASE_URL", "postgres://authara:url-password-X3@db/auth")]).unwrap();
        let debug = format!("{c:?}");
        assert!(!debug.contains("url-password-X3"), "{debug}");
        assert_eq!(format!("{:?}", Secret::new("s3cret")), "<redacted>");
    }
}

//! Server configuration (SPEC §2), read once from environment variables at start-up.
//!
//! Every problem is reported as a [`ConfigError`] whose one-line message names the variable and
//! says what is wrong. Messages never echo a secret: for `AUTHARA_JWT_KEYS` they name the key id,
//! and database or Redis URLs (which may carry a password) are not shown at all. Secrets are kept
//! in types whose `Debug` prints `<redacted>`, so `{:?}` of a [`Config`] is safe to log.
//!
//! Decisions worth knowing:
//! - An empty (or, except for `POSTGRESQL_PASSWORD`, whitespace-only) variable counts as unset,
//!   and values are trimmed; the PostgreSQL password is taken verbatim.
//! - In prod, `PUBLIC_URL` must use `https://`, except for loopback hosts (`localhost`,
//!   `127.0.0.0/8`, `[::1]`): browsers treat those as secure contexts, so `Secure` cookies still
//!   work there and a production build can be tried out locally.
//! - In prod, an in-memory SQLite database is refused ("no ephemeral anything").
//! - `POSTGRESQL_SCHEMA`, `_TIMEZONE` and `_LOG_SQL` also apply when PostgreSQL is configured
//!   through `DATABASE_URL` (the schema then has no default).
//! - A rotation interval that is zero (`0`, `0s`, ...) means [`Rotation::Off`], like `off`.

mod http;

pub use http::HttpLimits;

use authara_core::auth::password::HashParams;
use authara_core::jwt::MIN_KEY_BYTES;
use authara_core::session::{Rotation, SessionPolicy};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

mod limits;
mod sessions;

pub use authara_core::limits::{Limit, RateLimits};

/// The names of every variable read here.
pub mod var {
    pub use super::sessions::SESSIONS_MAX_PER_USER;
    /// `dev` or `prod`.
    pub const APP_ENV: &str = "APP_ENV";
    /// Log verbosity.
    pub const LOG_LEVEL: &str = "LOG_LEVEL";
    /// Listen address.
    pub const HTTP_ADDR: &str = "AUTHARA_HTTP_ADDR";
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
    /// External origin.
    pub const PUBLIC_URL: &str = "PUBLIC_URL";
    /// `iss` claim.
    pub const JWT_ISSUER: &str = "AUTHARA_JWT_ISSUER";
    /// `kid:base64secret,...`.
    pub const JWT_KEYS: &str = "AUTHARA_JWT_KEYS";
    /// The kid that signs.
    pub const JWT_ACTIVE_KEY_ID: &str = "AUTHARA_JWT_ACTIVE_KEY_ID";
    /// Access token lifetime.
    pub const ACCESS_TTL: &str = "AUTHARA_ACCESS_TOKEN_TTL_MINUTES";
    /// Absolute session lifetime.
    pub const SESSION_TTL: &str = "AUTHARA_SESSION_TTL_DAYS";
    /// Refresh token lifetime.
    pub const REFRESH_TTL: &str = "AUTHARA_REFRESH_TOKEN_TTL_DAYS";
    /// Refresh token rotation.
    pub const ROTATION: &str = "AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL";
    /// Reuse grace window.
    pub const REUSE_GRACE: &str = "AUTHARA_REFRESH_TOKEN_REUSE_GRACE";
    /// Login attempts per IP.
    pub const RL_LOGIN_IP_LIMIT: &str = "AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT";
    /// Window of the per-IP login limit.
    pub const RL_LOGIN_IP_WINDOW: &str = "AUTHARA_RATE_LIMIT_LOGIN_IP_WINDOW";
    /// Login attempts per email.
    pub const RL_LOGIN_EMAIL_LIMIT: &str = "AUTHARA_RATE_LIMIT_LOGIN_EMAIL_LIMIT";
    /// Window of the per-email login limit.
    pub const RL_LOGIN_EMAIL_WINDOW: &str = "AUTHARA_RATE_LIMIT_LOGIN_EMAIL_WINDOW";
    /// Signups per IP.
    pub const RL_SIGNUP_IP_LIMIT: &str = "AUTHARA_RATE_LIMIT_SIGNUP_IP_LIMIT";
    /// Window of the per-IP signup limit.
    pub const RL_SIGNUP_IP_WINDOW: &str = "AUTHARA_RATE_LIMIT_SIGNUP_IP_WINDOW";
    /// Signups per email.
    pub const RL_SIGNUP_EMAIL_LIMIT: &str = "AUTHARA_RATE_LIMIT_SIGNUP_EMAIL_LIMIT";
    /// Window of the per-email signup limit.
    pub const RL_SIGNUP_EMAIL_WINDOW: &str = "AUTHARA_RATE_LIMIT_SIGNUP_EMAIL_WINDOW";
    /// Password resets per IP.
    pub const RL_PASSWORD_RESET_IP_LIMIT: &str = "AUTHARA_RATE_LIMIT_PASSWORD_RESET_IP_LIMIT";
    /// Window of the per-IP password reset limit.
    pub const RL_PASSWORD_RESET_IP_WINDOW: &str = "AUTHARA_RATE_LIMIT_PASSWORD_RESET_IP_WINDOW";
    /// Password resets per email.
    pub const RL_PASSWORD_RESET_EMAIL_LIMIT: &str = "AUTHARA_RATE_LIMIT_PASSWORD_RESET_EMAIL_LIMIT";
    /// Window of the per-email password reset limit.
    pub const RL_PASSWORD_RESET_EMAIL_WINDOW: &str =
        "AUTHARA_RATE_LIMIT_PASSWORD_RESET_EMAIL_WINDOW";
    /// Passkey logins per IP (options and finish each).
    pub const RL_PASSKEY_LOGIN_IP_LIMIT: &str = "AUTHARA_RATE_LIMIT_PASSKEY_LOGIN_IP_LIMIT";
    /// Window of the per-IP passkey login limit.
    pub const RL_PASSKEY_LOGIN_IP_WINDOW: &str = "AUTHARA_RATE_LIMIT_PASSKEY_LOGIN_IP_WINDOW";
    /// Challenge code checks per IP.
    pub const RL_CHALLENGE_VERIFY_IP_LIMIT: &str = "AUTHARA_RATE_LIMIT_CHALLENGE_VERIFY_IP_LIMIT";
    /// Window of the per-IP challenge verify limit.
    pub const RL_CHALLENGE_VERIFY_IP_WINDOW: &str = "AUTHARA_RATE_LIMIT_CHALLENGE_VERIFY_IP_WINDOW";
    /// Challenge code resends per IP.
    pub const RL_CHALLENGE_RESEND_IP_LIMIT: &str = "AUTHARA_RATE_LIMIT_CHALLENGE_RESEND_IP_LIMIT";
    /// Window of the per-IP challenge resend limit.
    pub const RL_CHALLENGE_RESEND_IP_WINDOW: &str = "AUTHARA_RATE_LIMIT_CHALLENGE_RESEND_IP_WINDOW";
    /// The in-process limiter sweeps expired windows every this many calls.
    pub const RL_CLEANUP_EVERY: &str = "AUTHARA_RATE_LIMIT_CLEANUP_EVERY";
    /// Memory bound of the in-process limiter.
    pub const RL_MAX_ENTRIES: &str = "AUTHARA_RATE_LIMIT_MAX_ENTRIES";
    /// Shared state through Redis.
    pub const REDIS_URL: &str = "AUTHARA_REDIS_URL";
    /// Upstream's `noop` or `redis`.
    pub const CACHE_PROVIDER: &str = "AUTHARA_CACHE_PROVIDER";
    /// Redis host when the provider is redis.
    pub const REDIS_HOST: &str = "AUTHARA_REDIS_HOST";
    /// Redis port.
    pub const REDIS_PORT: &str = "AUTHARA_REDIS_PORT";
    /// Redis password.
    pub const REDIS_PASSWORD: &str = "AUTHARA_REDIS_PASSWORD";
    /// Redis database number.
    pub const REDIS_DB: &str = "AUTHARA_REDIS_DB";
    /// Proxies whose `X-Forwarded-For` is believed.
    pub const TRUSTED_PROXIES: &str = "AUTHARA_TRUSTED_PROXIES";
    /// Upstream's "believe `X-Forwarded-For` from any peer".
    pub const TRUST_PROXY_HEADERS: &str = "AUTHARA_TRUST_PROXY_HEADERS";
    /// Enabled sign-in providers.
    pub const OAUTH_PROVIDERS: &str = "AUTHARA_OAUTH_PROVIDERS";
    /// Google OAuth client ID.
    pub const GOOGLE_CLIENT_ID: &str = "AUTHARA_OAUTH_GOOGLE_CLIENT_ID";
    /// Where Google's signing keys are fetched.
    pub const GOOGLE_JWKS_URL: &str = "AUTHARA_OAUTH_GOOGLE_JWKS_URL";
    /// Apply pending migrations at start.
    pub const AUTO_MIGRATE: &str = "AUTHARA_AUTO_MIGRATE";
    /// Argon2id memory.
    pub const HASH_MEMORY_KIB: &str = "AUTHARA_PASSWORD_HASH_MEMORY_KIB";
    /// Argon2id iterations.
    pub const HASH_ITERATIONS: &str = "AUTHARA_PASSWORD_HASH_ITERATIONS";
    /// Argon2id lanes.
    pub const HASH_PARALLELISM: &str = "AUTHARA_PASSWORD_HASH_PARALLELISM";
    /// Password hashes computed at once.
    pub const HASH_CONCURRENCY: &str = "AUTHARA_PASSWORD_HASH_CONCURRENCY";
    /// Password hashes that may wait for a hashing thread; beyond that, `503` at once.
    pub const HASH_QUEUE: &str = "AUTHARA_PASSWORD_HASH_QUEUE";
    /// Time from accept (or a keep-alive request's first byte) to the end of the headers.
    pub const HTTP_HEADER_READ_TIMEOUT: &str = "AUTHARA_HTTP_HEADER_READ_TIMEOUT";
    /// Time for a whole request, handler included.
    pub const HTTP_REQUEST_TIMEOUT: &str = "AUTHARA_HTTP_REQUEST_TIMEOUT";
    /// Time to read a request body.
    pub const HTTP_BODY_TIMEOUT: &str = "AUTHARA_HTTP_BODY_TIMEOUT";
    /// Time a keep-alive connection may wait for its next request.
    pub const HTTP_IDLE_TIMEOUT: &str = "AUTHARA_HTTP_IDLE_TIMEOUT";
    /// Open connections at most.
    pub const HTTP_MAX_CONNECTIONS: &str = "AUTHARA_HTTP_MAX_CONNECTIONS";
    /// Request line plus headers, in bytes, at most.
    pub const HTTP_MAX_HEADER_BYTES: &str = "AUTHARA_HTTP_MAX_HEADER_BYTES";
    /// Time in-flight requests get after SIGTERM.
    pub const SHUTDOWN_TIMEOUT: &str = "AUTHARA_SHUTDOWN_TIMEOUT";
    /// Seconds a live session may be answered from memory; 0 turns the cache off.
    pub const SESSION_CACHE_SECONDS: &str = "AUTHARA_SESSION_CACHE_SECONDS";

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
    ];
}

use var::*;

/// The default SQLite database.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://authara.db";
/// The default external origin.
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080";
/// Google's published JWKS.
pub const DEFAULT_GOOGLE_JWKS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";

const HOUR: Duration = Duration::from_secs(3600);
/// Longest accepted refresh rotation interval.
const MAX_ROTATION: Duration = Duration::from_secs(3650 * 86_400);
/// Longest accepted reuse grace: a long window would let a stolen token be replayed unnoticed.
const MAX_REUSE_GRACE: Duration = Duration::from_secs(300);
/// Longest accepted rate-limit window.
const MAX_RATE_WINDOW: Duration = Duration::from_secs(30 * 86_400);
/// Longest part of a value echoed in a message.
const MAX_SHOWN: usize = 80;

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

/// Issuer and keys of access tokens.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// The `iss` claim.
    pub issuer: String,
    /// Where the signing keys come from.
    pub keys: KeySource,
}

/// Where the signing keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// From `AUTHARA_JWT_KEYS`: `(kid, secret)` pairs in the configured order, each secret at
    /// least 32 bytes; `active` is always set to the kid that signs.
    Configured {
        /// `(kid, secret)` pairs.
        keys: Vec<(String, Secret<Vec<u8>>)>,
        /// The kid that signs.
        active: Option<String>,
    },
    /// None configured (dev only): a random key is generated at start.
    Ephemeral,
}

/// Third-party sign-in.
#[derive(Debug, Clone, Default)]
pub struct OAuthConfig {
    /// Google sign-in, when enabled.
    pub google: Option<GoogleConfig>,
}

/// Google sign-in settings.
#[derive(Debug, Clone)]
pub struct GoogleConfig {
    /// The OAuth client ID (the expected `aud` of Google's ID tokens).
    pub client_id: String,
    /// Where Google's signing keys are fetched.
    pub jwks_url: String,
}

/// A secret (a password as `Secret<String>`, key material as `Secret<Vec<u8>>`) whose `Debug`
/// prints `<redacted>`.
#[derive(Clone)]
pub struct Secret<T = String>(T);

impl<T> Secret<T> {
    /// Wraps a secret.
    pub fn new(value: T) -> Self {
        Self(value)
    }
}

impl Secret<String> {
    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Secret<Vec<u8>> {
    /// The secret bytes, for the one place that needs them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// An invalid setting: which variable, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The variable at fault.
    pub var: &'static str,
    /// What is wrong, without the variable name; never contains a secret.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.var, self.message)
    }
}

impl std::error::Error for ConfigError {}

fn err(var: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        message: message.into(),
    }
}

/// A value quoted for a message: escaped (so the message stays one line) and shortened.
fn shown(value: &str) -> String {
    let mut chars = value.chars();
    let head: String = chars.by_ref().take(MAX_SHOWN).collect();
    if chars.next().is_some() {
        format!("{head:?}...")
    } else {
        format!("{head:?}")
    }
}

/// Reads variables through a lookup function, treating empty values as unset.
struct Env<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
}

impl Env<'_> {
    /// The value as given, `None` when unset or empty.
    fn raw(&self, name: &str) -> Option<String> {
        (self.get)(name).filter(|v| !v.is_empty())
    }

    /// The trimmed value, `None` when unset or blank.
    fn get(&self, name: &str) -> Option<String> {
        self.raw(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// A whole number in `min..=max`; `unit` is worded into the message (e.g. " of days").
    fn whole<T: TryFrom<u64>>(
        &self,
        name: &'static str,
        default: T,
        min: u64,
        max: u64,
        unit: &str,
    ) -> Result<T, ConfigError> {
        let Some(v) = self.get(name) else {
            return Ok(default);
        };
        let n = if v.bytes().all(|b| b.is_ascii_digit()) {
            v.parse::<u64>().ok()
        } else {
            None
        };
        n.filter(|n| (min..=max).contains(n))
            .and_then(|n| T::try_from(n).ok())
            .ok_or_else(|| {
                err(
                    name,
                    format!(
                        "must be a whole number{unit} from {min} to {max}, got {}",
                        shown(&v)
                    ),
                )
            })
    }

    fn boolean(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        let Some(v) = self.get(name) else {
            return Ok(default);
        };
        match v.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(err(
                name,
                format!(
                    "must be true or false (or 1/0, yes/no, on/off), got {}",
                    shown(&v)
                ),
            )),
        }
    }

    /// A duration in `0..=max` (`1ms..=max` unless `allow_zero`).
    fn duration(
        &self,
        name: &'static str,
        default: Duration,
        max: Duration,
        allow_zero: bool,
    ) -> Result<Duration, ConfigError> {
        let Some(v) = self.get(name) else {
            return Ok(default);
        };
        let d = parse_duration(&v).map_err(|why| {
            err(
                name,
                format!(
                    "must be a duration such as 10s, 15m or 1h30m (units ms, s, m, h), got {}: {why}",
                    shown(&v)
                ),
            )
        })?;
        if d.is_zero() && !allow_zero {
            return Err(err(
                name,
                format!("must be longer than 0, got {}", shown(&v)),
            ));
        }
        if d > max {
            return Err(err(
                name,
                format!("must be at most {}, got {}", human(max), shown(&v)),
            ));
        }
        Ok(d)
    }
}

/// A duration in the units [`parse_duration`] reads, e.g. `720h` or `5m`.
fn human(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s, ms) = (secs / 3600, secs % 3600 / 60, secs % 60, d.subsec_millis());
    let mut out = String::new();
    for (n, unit) in [(h, "h"), (m, "m"), (s, "s"), (u64::from(ms), "ms")] {
        if n > 0 {
            out.push_str(&n.to_string());
            out.push_str(unit);
        }
    }
    if out.is_empty() {
        out.push('0');
    }
    out
}

/// Parses a Go-style duration: one or more `<number><unit>` parts with units `ms`, `s`, `m`
/// and `h`, e.g. `250ms`, `90s`, `1h30m`, `1.5h`; a plain `0` is zero. Negative values, a
/// missing or unknown unit, and values beyond `u64::MAX` seconds are refused.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    if s.is_empty() {
        return Err("the value is empty".into());
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.starts_with('-') {
        return Err("negative durations are not allowed".into());
    }
    let too_large = || "the duration is too large".to_owned();
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int, after) = rest.split_at_checked(int_len).ok_or_else(too_large)?;
        let (frac, after) = match after.strip_prefix('.') {
            Some(f) => {
                let len = f.bytes().take_while(u8::is_ascii_digit).count();
                f.split_at_checked(len).ok_or_else(too_large)?
            }
            None => ("", after),
        };
        if int.is_empty() && frac.is_empty() {
            return Err(format!("expected a number at {}", shown(rest)));
        }
        let unit_len = after
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(after.len(), |(i, _)| i);
        let (unit, after) = after.split_at_checked(unit_len).ok_or_else(too_large)?;
        let per_unit: u128 = match unit {
            "ms" => 1_000_000,
            "s" => NANOS_PER_SEC,
            "m" => 60 * NANOS_PER_SEC,
            "h" => 3600 * NANOS_PER_SEC,
            "" => {
                return Err(format!(
                    "missing unit after {} (use ms, s, m or h)",
                    shown(s.strip_suffix(after).unwrap_or(s))
                ))
            }
            other => return Err(format!("unknown unit {} (use ms, s, m or h)", shown(other))),
        };
        let int: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| too_large())?
        };
        let mut part = int.checked_mul(per_unit).ok_or_else(too_large)?;
        // Digits beyond nanosecond precision cannot matter; 18 keeps the arithmetic in range.
        let frac = frac.get(..frac.len().min(18)).unwrap_or("");
        if !frac.is_empty() {
            let digits: u128 = frac.parse().map_err(|_| too_large())?;
            let scale = 10u128.pow(u32::try_from(frac.len()).map_err(|_| too_large())?);
            part = part
                .checked_add(digits * per_unit / scale)
                .ok_or_else(too_large)?;
        }
        total = total.checked_add(part).ok_or_else(too_large)?;
        rest = after;
    }
    let secs = u64::try_from(total / NANOS_PER_SEC).map_err(|_| too_large())?;
    let nanos = u32::try_from(total % NANOS_PER_SEC).map_err(|_| too_large())?;
    Ok(Duration::new(secs, nanos))
}

/// An IPv4 or IPv6 network, e.g. `10.0.0.0/8` or `fd00::/8`; a bare address is a single host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

fn mask_v4(addr: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    Ipv4Addr::from(u32::from(addr) & mask)
}

fn mask_v6(addr: Ipv6Addr, prefix: u8) -> Ipv6Addr {
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    Ipv6Addr::from(u128::from(addr) & mask)
}

impl Cidr {
    /// The network of `addr` with `prefix` bits (host bits are cleared); `None` when the prefix
    /// is longer than the address. An IPv4-mapped IPv6 network (`::ffff:a.b.c.d/96+n`) becomes
    /// the IPv4 network `a.b.c.d/n`.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Self> {
        match addr {
            IpAddr::V4(a) if prefix <= 32 => Some(Self {
                network: IpAddr::V4(mask_v4(a, prefix)),
                prefix,
            }),
            IpAddr::V6(a) if prefix <= 128 => match a.to_ipv4_mapped() {
                Some(v4) if prefix >= 96 => Self::new(IpAddr::V4(v4), prefix - 96),
                _ => Some(Self {
                    network: IpAddr::V6(mask_v6(a, prefix)),
                    prefix,
                }),
            },
            _ => None,
        }
    }

    /// The network address.
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length in bits.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is in this network. An IPv4-mapped IPv6 address (as a dual-stack socket
    /// reports an IPv4 peer) is treated as the IPv4 address it carries, so `10.0.0.0/8`
    /// contains `::ffff:10.1.2.3`, and an IPv6 network contains the IPv4 addresses whose mapped
    /// form it covers.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(a)) => mask_v4(a, self.prefix) == net,
            (IpAddr::V6(net), IpAddr::V6(a)) => mask_v6(a, self.prefix) == net,
            (IpAddr::V6(net), IpAddr::V4(a)) => mask_v6(a.to_ipv6_mapped(), self.prefix) == net,
            (IpAddr::V4(_), IpAddr::V6(_)) => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    /// Parses `ADDR/PREFIX` or a bare `ADDR`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{} is not an IP address or CIDR", shown(s));
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let prefix = match prefix {
            None if addr.is_ipv4() => 32,
            None => 128,
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().map_err(|_| bad())?
            }
            Some(_) => return Err(bad()),
        };
        Self::new(addr, prefix).ok_or_else(bad)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The parts of an `http(s)://` URL that the checks below need.
struct HttpUrl<'a> {
    https: bool,
    /// Lowercased `host[:port]`.
    authority: String,
    loopback: bool,
    /// Everything after the authority (path, query, fragment).
    rest: &'a str,
}

impl HttpUrl<'_> {
    fn scheme(&self) -> &'static str {
        if self.https {
            "https"
        } else {
            "http"
        }
    }
}

const URL_HAS_CREDENTIALS: &str = "must not contain a user name or password";

/// The error for a URL-valued variable. The value is not echoed when it may hold credentials
/// (any `@`: a password containing `/` would end the authority early and go unnoticed).
fn url_err(var: &'static str, why: &str, value: &str) -> ConfigError {
    if why == URL_HAS_CREDENTIALS || value.contains('@') {
        err(var, why)
    } else {
        err(var, format!("{why}, got {}", shown(value)))
    }
}

/// Splits an absolute `http://` or `https://` URL; the error says what is wrong.
fn parse_http_url(s: &str) -> Result<HttpUrl<'_>, &'static str> {
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters");
    }
    let prefix_is = |p: &str| s.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p));
    let (https, after) = if prefix_is("https://") {
        (true, s.get(8..).unwrap_or(""))
    } else if prefix_is("http://") {
        (false, s.get(7..).unwrap_or(""))
    } else {
        return Err("must start with http:// or https://");
    };
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at_checked(end).unwrap_or((after, ""));
    if authority.contains('@') {
        return Err(URL_HAS_CREDENTIALS);
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (inner, tail) = v6.split_once(']').ok_or("has an invalid host")?;
        inner
            .parse::<Ipv6Addr>()
            .map_err(|_| "has an invalid host")?;
        let port = match tail {
            "" => None,
            t => Some(t.strip_prefix(':').ok_or("has an invalid host")?),
        };
        (inner, port)
    } else {
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        let name_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !name_ok {
            return Err("has an invalid host");
        }
        (host, port)
    };
    if let Some(p) = port {
        let ok = !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u16>().is_ok_and(|n| n > 0);
        if !ok {
            return Err("has an invalid port");
        }
    }
    let host = host.to_ascii_lowercase();
    let loopback = host == "localhost"
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback());
    Ok(HttpUrl {
        https,
        authority: authority.to_ascii_lowercase(),
        loopback,
        rest,
    })
}

fn public_url(e: &Env<'_>, env: AppEnv) -> Result<String, ConfigError> {
    let Some(v) = e.get(PUBLIC_URL) else {
        return Ok(DEFAULT_PUBLIC_URL.to_owned());
    };
    let fail = |why: &str| url_err(PUBLIC_URL, why, &v);
    let url = parse_http_url(&v).map_err(fail)?;
    if url.rest.contains(['?', '#']) {
        return Err(fail("must not contain a query or fragment"));
    }
    let path = url.rest.strip_suffix('/').unwrap_or(url.rest);
    if path.ends_with('/') {
        return Err(fail("must not end with more than one /"));
    }
    let lower = path.to_ascii_lowercase();
    if lower.ends_with("/auth") {
        return Err(fail(
            "must be the external origin without /auth (Authara adds /auth itself)",
        ));
    }
    if env == AppEnv::Prod && !url.https && !url.loopback {
        return Err(fail(
            "must use https:// when APP_ENV is prod (http:// is allowed only for localhost)",
        ));
    }
    Ok(format!("{}://{}{}", url.scheme(), url.authority, path))
}

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

fn database(e: &Env<'_>, env: AppEnv) -> Result<DatabaseConfig, ConfigError> {
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
                    url: Some(Secret(url)),
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
            password: e.raw(PG_PASSWORD).map(Secret),
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

fn is_kid(kid: &str) -> bool {
    (1..=64).contains(&kid.len())
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn decode_secret(s: &str) -> Option<Vec<u8>> {
    [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(s).ok())
}

/// `(kid, secret)` pairs, as in [`KeySource::Configured`].
type KeyList = Vec<(String, Secret<Vec<u8>>)>;

/// Parses `kid:base64secret,...`. Messages name an entry by kid or position, never its secret.
fn parse_keys(value: &str) -> Result<KeyList, ConfigError> {
    let mut keys: KeyList = Vec::new();
    for (i, entry) in value.split(',').enumerate() {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let n = i + 1;
        let (kid, secret) = entry.split_once(':').ok_or_else(|| {
            err(
                JWT_KEYS,
                format!("entry {n} must look like kid:base64secret"),
            )
        })?;
        let (kid, secret) = (kid.trim(), secret.trim());
        if !is_kid(kid) {
            return Err(err(
                JWT_KEYS,
                format!(
                    "entry {n} has an invalid key id (1 to 64 characters of A-Z a-z 0-9 _ - .)"
                ),
            ));
        }
        if keys.iter().any(|(k, _)| k == kid) {
            return Err(err(JWT_KEYS, format!("has key id {kid:?} more than once")));
        }
        let bytes = decode_secret(secret).ok_or_else(|| {
            err(
                JWT_KEYS,
                format!("key {kid:?} has a secret that is not valid base64"),
            )
        })?;
        if bytes.len() < MIN_KEY_BYTES {
            return Err(err(
                JWT_KEYS,
                format!(
                    "key {kid:?} has a secret of {} bytes; at least {MIN_KEY_BYTES} are required (create one with `authara keys generate`)",
                    bytes.len()
                ),
            ));
        }
        keys.push((kid.to_owned(), Secret(bytes)));
    }
    if keys.is_empty() {
        return Err(err(JWT_KEYS, "must list at least one kid:base64secret"));
    }
    Ok(keys)
}

fn jwt(e: &Env<'_>, env: AppEnv) -> Result<JwtConfig, ConfigError> {
    let issuer = match e.get(JWT_ISSUER) {
        Some(v) if v.len() > 256 || v.chars().any(char::is_control) => {
            return Err(err(
                JWT_ISSUER,
                format!(
                    "must be at most 256 bytes without control characters, got {}",
                    shown(&v)
                ),
            ))
        }
        Some(v) => v,
        None if env == AppEnv::Prod => {
            return Err(err(JWT_ISSUER, "is required when APP_ENV is prod"))
        }
        None => "authara".to_owned(),
    };
    let active = e.get(JWT_ACTIVE_KEY_ID);
    let Some(value) = e.get(JWT_KEYS) else {
        if env == AppEnv::Prod {
            return Err(err(
                JWT_KEYS,
                "is required when APP_ENV is prod (create a key with `authara keys generate`)",
            ));
        }
        if active.is_some() {
            return Err(err(JWT_ACTIVE_KEY_ID, "is set but AUTHARA_JWT_KEYS is not"));
        }
        return Ok(JwtConfig {
            issuer,
            keys: KeySource::Ephemeral,
        });
    };
    let keys = parse_keys(&value)?;
    let active = match (active, keys.as_slice()) {
        (Some(a), _) if !is_kid(&a) => {
            return Err(err(
                JWT_ACTIVE_KEY_ID,
                "is not a valid key id (1 to 64 characters of A-Z a-z 0-9 _ - .)",
            ))
        }
        (Some(a), _) if !keys.iter().any(|(k, _)| *k == a) => {
            let kids: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
            return Err(err(
                JWT_ACTIVE_KEY_ID,
                format!(
                    "names {a:?}, which is not in AUTHARA_JWT_KEYS (key ids: {})",
                    kids.join(", ")
                ),
            ));
        }
        (Some(a), _) => a,
        (None, [(only, _)]) => only.clone(),
        (None, _) => {
            return Err(err(
                JWT_ACTIVE_KEY_ID,
                "is required when AUTHARA_JWT_KEYS has more than one key",
            ))
        }
    };
    Ok(JwtConfig {
        issuer,
        keys: KeySource::Configured {
            keys,
            active: Some(active),
        },
    })
}

fn to_time(d: Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

fn session(e: &Env<'_>) -> Result<SessionPolicy, ConfigError> {
    let access: u32 = e.whole(ACCESS_TTL, 10, 1, 1440, " of minutes")?;
    let session_days: u32 = e.whole(SESSION_TTL, 60, 1, 3650, " of days")?;
    let refresh_days: u32 = e.whole(REFRESH_TTL, 14, 1, 3650, " of days")?;
    if refresh_days > session_days {
        return Err(err(
            REFRESH_TTL,
            format!("({refresh_days}) must not exceed {SESSION_TTL} ({session_days})"),
        ));
    }
    let refresh_minutes = refresh_days.saturating_mul(1440);
    if access >= refresh_minutes {
        return Err(err(
            ACCESS_TTL,
            format!(
                "({access}) must be shorter than {REFRESH_TTL} ({refresh_days} = {refresh_minutes} minutes)"
            ),
        ));
    }
    let rotation = match e.get(ROTATION) {
        None => Rotation::After(to_time(24 * HOUR)),
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "always" => Rotation::Always,
            "off" | "disabled" => Rotation::Off,
            _ => {
                let d = parse_duration(&v).map_err(|why| {
                    err(
                        ROTATION,
                        format!(
                            "must be \"always\", \"off\" or a duration such as 30m or 24h, got {}: {why}",
                            shown(&v)
                        ),
                    )
                })?;
                if d > MAX_ROTATION {
                    return Err(err(
                        ROTATION,
                        format!("must be at most {}, got {}", human(MAX_ROTATION), shown(&v)),
                    ));
                }
                if d.is_zero() {
                    Rotation::Off
                } else {
                    Rotation::After(to_time(d))
                }
            }
        },
    };
    let grace = e.duration(REUSE_GRACE, Duration::from_secs(10), MAX_REUSE_GRACE, true)?;
    Ok(SessionPolicy {
        access_ttl: time::Duration::minutes(i64::from(access)),
        session_ttl: time::Duration::days(i64::from(session_days)),
        refresh_ttl: time::Duration::days(i64::from(refresh_days)),
        rotation,
        reuse_grace: to_time(grace),
        max_sessions_per_user: sessions::max_per_user(e)?,
    })
}

fn oauth(e: &Env<'_>) -> Result<OAuthConfig, ConfigError> {
    let mut google = false;
    if let Some(v) = e.get(OAUTH_PROVIDERS) {
        for p in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if p.eq_ignore_ascii_case("google") {
                google = true;
            } else {
                return Err(err(
                    OAUTH_PROVIDERS,
                    format!("names unknown provider {} (known: google)", shown(p)),
                ));
            }
        }
    }
    if !google {
        return Ok(OAuthConfig::default());
    }
    let client_id = e.get(GOOGLE_CLIENT_ID).ok_or_else(|| {
        err(
            GOOGLE_CLIENT_ID,
            "is required when AUTHARA_OAUTH_PROVIDERS includes google",
        )
    })?;
    if client_id.len() > 512
        || client_id
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(err(
            GOOGLE_CLIENT_ID,
            format!(
                "must be a client ID of at most 512 characters without spaces, got {}",
                shown(&client_id)
            ),
        ));
    }
    let jwks_url = match e.get(GOOGLE_JWKS_URL) {
        None => DEFAULT_GOOGLE_JWKS_URL.to_owned(),
        Some(v) => {
            let fail = |why: &str| url_err(GOOGLE_JWKS_URL, why, &v);
            let url = parse_http_url(&v).map_err(fail)?;
            if !url.https && !url.loopback {
                return Err(fail(
                    "must use https:// (http:// is allowed only for localhost)",
                ));
            }
            v
        }
    };
    Ok(OAuthConfig {
        google: Some(GoogleConfig {
            client_id,
            jwks_url,
        }),
    })
}

fn password_hash(e: &Env<'_>) -> Result<HashParams, ConfigError> {
    let d = HashParams::default();
    let parallelism: u32 = e.whole(HASH_PARALLELISM, d.parallelism, 1, 64, "")?;
    Ok(HashParams {
        memory_kib: e.whole(
            HASH_MEMORY_KIB,
            d.memory_kib,
            8 * u64::from(parallelism),
            1 << 20,
            " of KiB",
        )?,
        iterations: e.whole(HASH_ITERATIONS, d.iterations, 1, 64, "")?,
        parallelism,
    })
}

impl Config {
    /// Reads the process environment (the binary loads `.env` first). A variable that is not
    /// valid UTF-8 is an error rather than silently unset.
    pub fn from_env() -> Result<Config, ConfigError> {
        for name in ALL {
            if let Err(std::env::VarError::NotUnicode(_)) = std::env::var(name) {
                return Err(err(name, "is not valid UTF-8"));
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
        let database = database(&e, env)?;
        let public_url = public_url(&e, env)?;
        let jwt = jwt(&e, env)?;
        let session = session(&e)?;
        let limits::Section {
            rate_limits,
            redis_url,
            trusted_proxies,
            warnings,
        } = limits::read(&e, env)?;
        let oauth = oauth(&e)?;
        let sqlite = matches!(database, DatabaseConfig::Sqlite { .. });
        let auto_migrate = e.boolean(AUTO_MIGRATE, sqlite && env == AppEnv::Dev)?;
        let password_hash = password_hash(&e)?;
        let default_concurrency = std::thread::available_parallelism()
            .map_or(2, std::num::NonZeroUsize::get)
            .clamp(1, 256);
        let hash_concurrency = e.whole(HASH_CONCURRENCY, default_concurrency, 1, 256, "")?;
        let default_queue =
            hash_concurrency * authara_core::auth::password::DEFAULT_QUEUE_PER_THREAD;
        let hash_queue = e.whole(HASH_QUEUE, default_queue, 1, 65_536, "")?;
        let cache_seconds: u64 = e.whole(SESSION_CACHE_SECONDS, 5, 0, 60, "")?;
        let session_cache_max_age = std::time::Duration::from_secs(cache_seconds);
        let http = http::http_limits(&e)?;
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
mod tests {
    use super::*;
    use authara_core::jwt::JwtKeys;
    use std::collections::HashMap;

    /// Secrets used below; `{K}` and `{K2}` in a value are replaced by them.
    fn key1() -> String {
        STANDARD.encode([7u8; 32])
    }
    fn key2() -> String {
        STANDARD.encode([8u8; 40])
    }

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| {
                let v = v.replace("{K2}", &key2()).replace("{K}", &key1());
                ((*k).to_owned(), v)
            })
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    /// The key set the server builds from `c`; proves the core accepts what config accepted.
    fn key_set(c: &Config) -> JwtKeys {
        let KeySource::Configured { keys, active } = &c.jwt.keys else {
            panic!("not configured");
        };
        let keys = keys
            .iter()
            .map(|(kid, secret)| (kid.clone(), secret.expose().to_vec()))
            .collect();
        JwtKeys::new(keys, active.as_deref(), c.jwt.issuer.clone()).unwrap()
    }

    fn load_err(pairs: &[(&str, &str)]) -> ConfigError {
        match load(pairs) {
            Ok(c) => panic!("accepted {pairs:?}: {c:?}"),
            Err(e) => e,
        }
    }

    const PROD: [(&str, &str); 3] = [
        ("APP_ENV", "prod"),
        ("AUTHARA_JWT_ISSUER", "https://auth.example.org"),
        ("AUTHARA_JWT_KEYS", "k1:{K}"),
    ];

    fn prod_with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        PROD.iter().chain(extra).copied().collect()
    }

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
    fn prod_without_keys_or_issuer_fails_naming_the_variable() {
        let e = load_err(&[("APP_ENV", "prod"), ("AUTHARA_JWT_ISSUER", "x")]);
        assert_eq!(e.var, "AUTHARA_JWT_KEYS");
        assert!(e
            .to_string()
            .starts_with("AUTHARA_JWT_KEYS is required when APP_ENV is prod"));
        let e = load_err(&[("APP_ENV", "prod"), ("AUTHARA_JWT_KEYS", "k1:{K}")]);
        assert_eq!(e.var, "AUTHARA_JWT_ISSUER");
        assert_eq!(
            e.to_string(),
            "AUTHARA_JWT_ISSUER is required when APP_ENV is prod"
        );
    }

    #[test]
    fn every_invalid_setting_has_its_own_one_line_message() {
        let long = "a".repeat(64);
        let longer = "b".repeat(257);
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
                vec![("PUBLIC_URL", "ftp://example.org")],
                r#"PUBLIC_URL must start with http:// or https://, got "ftp://example.org""#.into(),
            ),
            (
                vec![("PUBLIC_URL", "https://exa mple.org")],
                r#"PUBLIC_URL must not contain spaces or control characters, got "https://exa mple.org""#.into(),
            ),
            (
                vec![("PUBLIC_URL", "https://user:hunter2@localhost")],
                "PUBLIC_URL must not contain a user name or password".into(),
            ),
            (
                vec![("PUBLIC_URL", "https://")],
                r#"PUBLIC_URL has an invalid host, got "https://""#.into(),
            ),
            (
                vec![("PUBLIC_URL", "https://example.org:99999")],
                r#"PUBLIC_URL has an invalid port, got "https://example.org:99999""#.into(),
            ),
            (
                vec![("PUBLIC_URL", "https://example.org/?a=1")],
                r#"PUBLIC_URL must not contain a query or fragment, got "https://example.org/?a=1""#.into(),
            ),
            (
                vec![("PUBLIC_URL", "https://example.org//")],
                r#"PUBLIC_URL must not end with more than one /, got "https://example.org//""#.into(),
            ),
            (
                vec![("PUBLIC_URL", "https://example.org/auth/")],
                r#"PUBLIC_URL must be the external origin without /auth (Authara adds /auth itself), got "https://example.org/auth/""#.into(),
            ),
            (
                prod_with(&[("PUBLIC_URL", "http://example.org")]),
                r#"PUBLIC_URL must use https:// when APP_ENV is prod (http:// is allowed only for localhost), got "http://example.org""#.into(),
            ),
            (
                vec![("AUTHARA_JWT_ISSUER", &longer)],
                format!(
                    r#"AUTHARA_JWT_ISSUER must be at most 256 bytes without control characters, got "{}"..."#,
                    "b".repeat(80)
                ),
            ),
            (
                vec![("APP_ENV", "prod"), ("AUTHARA_JWT_ISSUER", "x")],
                "AUTHARA_JWT_KEYS is required when APP_ENV is prod (create a key with `authara keys generate`)".into(),
            ),
            (
                vec![("AUTHARA_JWT_ACTIVE_KEY_ID", "k1")],
                "AUTHARA_JWT_ACTIVE_KEY_ID is set but AUTHARA_JWT_KEYS is not".into(),
            ),
            (
                vec![("AUTHARA_JWT_KEYS", "{K}")],
                "AUTHARA_JWT_KEYS entry 1 must look like kid:base64secret".into(),
            ),
            (
                vec![("AUTHARA_JWT_KEYS", "k1:{K},bad kid:{K2}")],
                "AUTHARA_JWT_KEYS entry 2 has an invalid key id (1 to 64 characters of A-Z a-z 0-9 _ - .)".into(),
            ),
            (
                vec![("AUTHARA_JWT_KEYS", "k1:{K},k1:{K2}")],
                r#"AUTHARA_JWT_KEYS has key id "k1" more than once"#.into(),
            ),
            (
                vec![("AUTHARA_JWT_KEYS", "k1:not*base64")],
                r#"AUTHARA_JWT_KEYS key "k1" has a secret that is not valid base64"#.into(),
            ),
            (
                vec![("AUTHARA_JWT_KEYS", "k1:AAAAAAAAAAAAAAAAAAAAAA==")],
                r#"AUTHARA_JWT_KEYS key "k1" has a secret of 16 bytes; at least 32 are required (create one with `authara keys generate`)"#.into(),
            ),
            (
                vec![("AUTHARA_JWT_KEYS", ", ,")],
                "AUTHARA_JWT_KEYS must list at least one kid:base64secret".into(),
            ),
            (
                vec![("AUTHARA_JWT_KEYS", "k1:{K}"), ("AUTHARA_JWT_ACTIVE_KEY_ID", "k 1")],
                "AUTHARA_JWT_ACTIVE_KEY_ID is not a valid key id (1 to 64 characters of A-Z a-z 0-9 _ - .)".into(),
            ),
            (
                vec![("AUTHARA_JWT_KEYS", "k1:{K},k2:{K2}"), ("AUTHARA_JWT_ACTIVE_KEY_ID", "k3")],
                r#"AUTHARA_JWT_ACTIVE_KEY_ID names "k3", which is not in AUTHARA_JWT_KEYS (key ids: k1, k2)"#.into(),
            ),
            (
                vec![("AUTHARA_JWT_KEYS", "k1:{K},k2:{K2}")],
                "AUTHARA_JWT_ACTIVE_KEY_ID is required when AUTHARA_JWT_KEYS has more than one key".into(),
            ),
            (
                vec![("AUTHARA_ACCESS_TOKEN_TTL_MINUTES", "abc")],
                r#"AUTHARA_ACCESS_TOKEN_TTL_MINUTES must be a whole number of minutes from 1 to 1440, got "abc""#.into(),
            ),
            (
                vec![("AUTHARA_SESSION_TTL_DAYS", "0")],
                r#"AUTHARA_SESSION_TTL_DAYS must be a whole number of days from 1 to 3650, got "0""#.into(),
            ),
            (
                vec![("AUTHARA_REFRESH_TOKEN_TTL_DAYS", "-1")],
                r#"AUTHARA_REFRESH_TOKEN_TTL_DAYS must be a whole number of days from 1 to 3650, got "-1""#.into(),
            ),
            (
                vec![("AUTHARA_REFRESH_TOKEN_TTL_DAYS", "90")],
                "AUTHARA_REFRESH_TOKEN_TTL_DAYS (90) must not exceed AUTHARA_SESSION_TTL_DAYS (60)".into(),
            ),
            (
                vec![
                    ("AUTHARA_ACCESS_TOKEN_TTL_MINUTES", "1440"),
                    ("AUTHARA_REFRESH_TOKEN_TTL_DAYS", "1"),
                ],
                "AUTHARA_ACCESS_TOKEN_TTL_MINUTES (1440) must be shorter than AUTHARA_REFRESH_TOKEN_TTL_DAYS (1 = 1440 minutes)".into(),
            ),
            (
                vec![("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", "sometimes")],
                r#"AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL must be "always", "off" or a duration such as 30m or 24h, got "sometimes": expected a number at "sometimes""#.into(),
            ),
            (
                vec![("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", "87601h")],
                r#"AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL must be at most 87600h, got "87601h""#.into(),
            ),
            (
                vec![("AUTHARA_REFRESH_TOKEN_REUSE_GRACE", "10")],
                r#"AUTHARA_REFRESH_TOKEN_REUSE_GRACE must be a duration such as 10s, 15m or 1h30m (units ms, s, m, h), got "10": missing unit after "10" (use ms, s, m or h)"#.into(),
            ),
            (
                vec![("AUTHARA_REFRESH_TOKEN_REUSE_GRACE", "6m")],
                r#"AUTHARA_REFRESH_TOKEN_REUSE_GRACE must be at most 5m, got "6m""#.into(),
            ),
            (
                prod_with(&[("AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT", "0")]),
                r#"AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT must be at least 1 when APP_ENV is prod (0 would turn the limit off), got "0""#.into(),
            ),
            (
                vec![("AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT", "-1")],
                r#"AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT must be a whole number from 0 to 1000000, got "-1""#.into(),
            ),
            (
                vec![("AUTHARA_RATE_LIMIT_LOGIN_IP_WINDOW", "0s")],
                r#"AUTHARA_RATE_LIMIT_LOGIN_IP_WINDOW must be longer than 0, got "0s""#.into(),
            ),
            (
                vec![("AUTHARA_RATE_LIMIT_LOGIN_EMAIL_WINDOW", "2d")],
                r#"AUTHARA_RATE_LIMIT_LOGIN_EMAIL_WINDOW must be a duration such as 10s, 15m or 1h30m (units ms, s, m, h), got "2d": unknown unit "d" (use ms, s, m or h)"#.into(),
            ),
            (
                vec![("AUTHARA_RATE_LIMIT_SIGNUP_IP_LIMIT", "1e6")],
                r#"AUTHARA_RATE_LIMIT_SIGNUP_IP_LIMIT must be a whole number from 0 to 1000000, got "1e6""#.into(),
            ),
            (
                vec![("AUTHARA_RATE_LIMIT_SIGNUP_EMAIL_WINDOW", "721h")],
                r#"AUTHARA_RATE_LIMIT_SIGNUP_EMAIL_WINDOW must be at most 720h, got "721h""#.into(),
            ),
            (
                vec![("AUTHARA_RATE_LIMIT_MAX_ENTRIES", "0")],
                r#"AUTHARA_RATE_LIMIT_MAX_ENTRIES must be a whole number from 1 to 10000000, got "0""#.into(),
            ),
            (
                vec![("AUTHARA_REDIS_URL", "http://:hunter2@cache")],
                "AUTHARA_REDIS_URL must be a redis:// URL (the value is not shown: it may contain a password)".into(),
            ),
            (
                vec![("AUTHARA_TRUSTED_PROXIES", "10.0.0.1, 10.0.0.0/33")],
                r#"AUTHARA_TRUSTED_PROXIES must be a comma list of IP addresses or CIDRs such as 10.0.0.0/8 or fd00::/8, but "10.0.0.0/33" is not an IP address or CIDR"#.into(),
            ),
            (
                vec![("AUTHARA_OAUTH_PROVIDERS", "google,github")],
                r#"AUTHARA_OAUTH_PROVIDERS names unknown provider "github" (known: google)"#.into(),
            ),
            (
                vec![("AUTHARA_OAUTH_PROVIDERS", "google")],
                "AUTHARA_OAUTH_GOOGLE_CLIENT_ID is required when AUTHARA_OAUTH_PROVIDERS includes google".into(),
            ),
            (
                vec![("AUTHARA_OAUTH_PROVIDERS", "google"), ("AUTHARA_OAUTH_GOOGLE_CLIENT_ID", "a b")],
                r#"AUTHARA_OAUTH_GOOGLE_CLIENT_ID must be a client ID of at most 512 characters without spaces, got "a b""#.into(),
            ),
            (
                vec![
                    ("AUTHARA_OAUTH_PROVIDERS", "google"),
                    ("AUTHARA_OAUTH_GOOGLE_CLIENT_ID", "cid"),
                    ("AUTHARA_OAUTH_GOOGLE_JWKS_URL", "http://example.org/certs"),
                ],
                r#"AUTHARA_OAUTH_GOOGLE_JWKS_URL must use https:// (http:// is allowed only for localhost), got "http://example.org/certs""#.into(),
            ),
            (
                vec![
                    ("AUTHARA_OAUTH_PROVIDERS", "google"),
                    ("AUTHARA_OAUTH_GOOGLE_CLIENT_ID", "cid"),
                    ("AUTHARA_OAUTH_GOOGLE_JWKS_URL", "certs.json"),
                ],
                r#"AUTHARA_OAUTH_GOOGLE_JWKS_URL must start with http:// or https://, got "certs.json""#.into(),
            ),
            (
                vec![("AUTHARA_AUTO_MIGRATE", "sure")],
                r#"AUTHARA_AUTO_MIGRATE must be true or false (or 1/0, yes/no, on/off), got "sure""#.into(),
            ),
            (
                vec![("AUTHARA_PASSWORD_HASH_PARALLELISM", "65")],
                r#"AUTHARA_PASSWORD_HASH_PARALLELISM must be a whole number from 1 to 64, got "65""#.into(),
            ),
            (
                vec![
                    ("AUTHARA_PASSWORD_HASH_PARALLELISM", "4"),
                    ("AUTHARA_PASSWORD_HASH_MEMORY_KIB", "16"),
                ],
                r#"AUTHARA_PASSWORD_HASH_MEMORY_KIB must be a whole number of KiB from 32 to 1048576, got "16""#.into(),
            ),
            (
                vec![("AUTHARA_PASSWORD_HASH_ITERATIONS", "0")],
                r#"AUTHARA_PASSWORD_HASH_ITERATIONS must be a whole number from 1 to 64, got "0""#.into(),
            ),
            (
                vec![("AUTHARA_PASSWORD_HASH_CONCURRENCY", "257")],
                r#"AUTHARA_PASSWORD_HASH_CONCURRENCY must be a whole number from 1 to 256, got "257""#.into(),
            ),
            (
                vec![("AUTHARA_PASSWORD_HASH_QUEUE", "0")],
                r#"AUTHARA_PASSWORD_HASH_QUEUE must be a whole number from 1 to 65536, got "0""#.into(),
            ),
        ];
        let mut seen = std::collections::HashSet::new();
        for (pairs, expected) in &cases {
            let e = load_err(pairs);
            let line = e.to_string();
            assert_eq!(&line, expected, "for {pairs:?}");
            assert!(line.starts_with(e.var), "{line}");
            assert!(var::ALL.contains(&e.var), "{} is not in var::ALL", e.var);
            assert!(!line.contains('\n'), "{line}");
            assert!(!line.contains("hunter2"), "a secret leaked: {line}");
            assert!(!line.contains(&key1()) && !line.contains(&key2()), "{line}");
            assert!(seen.insert(line), "duplicate case");
        }
    }

    #[test]
    fn a_value_with_a_newline_is_escaped_so_the_message_stays_one_line() {
        let e = load_err(&[("LOG_LEVEL", "info\nroot logged in")]);
        assert!(!e.to_string().contains('\n'));
        assert!(e.to_string().contains(r#""info\nroot logged in""#));
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

    #[test]
    fn keys_accept_every_base64_flavour_and_default_the_active_key() {
        let bytes: Vec<u8> = (0u8..48).map(|i| i.wrapping_mul(37) ^ 0xfb).collect();
        for encoded in [
            STANDARD.encode(&bytes),
            STANDARD_NO_PAD.encode(&bytes[..47]),
            URL_SAFE.encode(&bytes[..47]),
            URL_SAFE_NO_PAD.encode(&bytes),
        ] {
            let value = format!(" main-key.v1 : {encoded} ,");
            let c = load(&[("AUTHARA_JWT_KEYS", &value)]).unwrap();
            let KeySource::Configured { keys, active } = &c.jwt.keys else {
                panic!("not configured");
            };
            assert_eq!(keys.len(), 1);
            assert_eq!(keys[0].0, "main-key.v1");
            let secret = keys[0].1.expose();
            assert!(bytes.starts_with(secret) && secret.len() >= 47, "{encoded}");
            assert_eq!(active.as_deref(), Some("main-key.v1"));
            key_set(&c);
        }
    }

    #[test]
    fn several_keys_need_an_active_key_id_and_build_a_key_set() {
        let c = load(&[
            ("AUTHARA_JWT_KEYS", "old:{K},new:{K2}"),
            ("AUTHARA_JWT_ACTIVE_KEY_ID", "new"),
            ("AUTHARA_JWT_ISSUER", "https://auth.example.org"),
        ])
        .unwrap();
        let KeySource::Configured { keys, active } = &c.jwt.keys else {
            panic!("not configured");
        };
        let kids: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(kids, ["old", "new"]);
        assert_eq!(keys[0].1.expose(), [7u8; 32]);
        assert_eq!(keys[1].1.expose(), [8u8; 40]);
        assert_eq!(active.as_deref(), Some("new"));
        let set = key_set(&c);
        assert_eq!(set.issuer(), "https://auth.example.org");
    }

    #[test]
    fn key_errors_never_show_the_secret() {
        let short = STANDARD.encode([9u8; 31]);
        let bad_kid = format!("{}:{}", "k".repeat(65), key1());
        let no_colon = key1();
        for value in [
            format!("k1:{short}"),
            bad_kid,
            no_colon,
            format!("k1:{}", key1()),
        ] {
            let e = load_err(&[
                ("AUTHARA_JWT_KEYS", &value),
                ("AUTHARA_JWT_ACTIVE_KEY_ID", "k2"),
            ]);
            let line = e.to_string();
            assert!(!line.contains(&short) && !line.contains(&key1()), "{line}");
        }
    }

    #[test]
    fn public_url_is_normalised() {
        for (value, expected) in [
            ("https://example.org/", "https://example.org"),
            ("HTTPS://Example.ORG", "https://example.org"),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
            ("https://example.org/app/", "https://example.org/app"),
            (
                "https://example.org/authority",
                "https://example.org/authority",
            ),
            ("http://[::1]:8080", "http://[::1]:8080"),
        ] {
            let c = load(&[("PUBLIC_URL", value)]).unwrap();
            assert_eq!(c.public_url, expected, "{value}");
        }
        for value in [
            "http://localhost:8080",
            "http://127.0.0.2",
            "http://[::1]:8080",
            "https://auth.example.org",
        ] {
            let c = load(&prod_with(&[("PUBLIC_URL", value)]));
            assert!(c.is_ok(), "{value} refused in prod: {c:?}");
        }
        for value in [
            "http://example.org:80x",
            "http://[::1",
            "http://[::1]x",
            "https://a:b:c",
        ] {
            assert_eq!(
                load_err(&[("PUBLIC_URL", value)]).var,
                "PUBLIC_URL",
                "{value}"
            );
        }
        let e = load_err(&[("PUBLIC_URL", "https://user:hun/ter2@localhost")]);
        assert_eq!(e.to_string(), "PUBLIC_URL has an invalid port");
    }

    #[test]
    fn rotation_interval_forms() {
        for (value, expected) in [
            ("always", Rotation::Always),
            ("ALWAYS", Rotation::Always),
            ("off", Rotation::Off),
            ("disabled", Rotation::Off),
            ("0", Rotation::Off),
            ("0s", Rotation::Off),
            ("30m", Rotation::After(time::Duration::minutes(30))),
            ("1h30m", Rotation::After(time::Duration::minutes(90))),
        ] {
            let c = load(&[("AUTHARA_REFRESH_TOKEN_ROTATION_INTERVAL", value)]).unwrap();
            assert_eq!(c.session.rotation, expected, "{value}");
        }
        let c = load(&[("AUTHARA_REFRESH_TOKEN_REUSE_GRACE", "0")]).unwrap();
        assert_eq!(c.session.reuse_grace, time::Duration::ZERO);
    }

    #[test]
    fn lifetimes_limits_and_the_rest_are_read() {
        let c = load(&[
            ("AUTHARA_ACCESS_TOKEN_TTL_MINUTES", "15"),
            ("AUTHARA_SESSION_TTL_DAYS", "30"),
            ("AUTHARA_REFRESH_TOKEN_TTL_DAYS", "30"),
            ("AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT", "20"),
            ("AUTHARA_RATE_LIMIT_LOGIN_IP_WINDOW", "90s"),
            ("AUTHARA_RATE_LIMIT_MAX_ENTRIES", "1000"),
            ("AUTHARA_REDIS_URL", "redis://:pw@cache:6380/0"),
            (
                "AUTHARA_TRUSTED_PROXIES",
                "10.0.0.0/8, fd00::/8,,192.168.1.1",
            ),
            ("AUTHARA_OAUTH_PROVIDERS", " Google "),
            (
                "AUTHARA_OAUTH_GOOGLE_CLIENT_ID",
                "123-abc.apps.googleusercontent.com",
            ),
            ("AUTHARA_HTTP_ADDR", "[::]:9000"),
            ("AUTHARA_PASSWORD_HASH_MEMORY_KIB", "65536"),
            ("AUTHARA_PASSWORD_HASH_ITERATIONS", "3"),
            ("AUTHARA_PASSWORD_HASH_PARALLELISM", "4"),
            ("AUTHARA_PASSWORD_HASH_CONCURRENCY", "3"),
        ])
        .unwrap();
        assert_eq!(c.session.access_ttl, time::Duration::minutes(15));
        assert_eq!(c.session.refresh_ttl, c.session.session_ttl);
        assert_eq!(
            c.rate_limits.login_ip,
            Limit {
                limit: 20,
                window: Duration::from_secs(90)
            }
        );
        assert_eq!(c.rate_limits.max_entries, 1000);
        assert_eq!(
            c.redis_url.as_ref().map(Secret::<String>::expose),
            Some("redis://:pw@cache:6380/0")
        );
        let proxies: Vec<String> = c.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(proxies, ["10.0.0.0/8", "fd00::/8", "192.168.1.1/32"]);
        let google = c.oauth.google.unwrap();
        assert_eq!(google.client_id, "123-abc.apps.googleusercontent.com");
        assert_eq!(google.jwks_url, DEFAULT_GOOGLE_JWKS_URL);
        assert_eq!(c.http_addr, "[::]:9000".parse().unwrap());
        assert_eq!(
            c.password_hash,
            HashParams {
                memory_kib: 65536,
                iterations: 3,
                parallelism: 4
            }
        );
        assert_eq!(c.hash_concurrency, 3);
        // The queue defaults to 32 waiting hashes per hashing thread.
        assert_eq!(c.hash_queue, 96);

        let c = load(&[
            ("AUTHARA_OAUTH_PROVIDERS", "google"),
            ("AUTHARA_OAUTH_GOOGLE_CLIENT_ID", "cid"),
            (
                "AUTHARA_OAUTH_GOOGLE_JWKS_URL",
                "http://127.0.0.1:4555/certs",
            ),
        ])
        .unwrap();
        assert_eq!(
            c.oauth.google.unwrap().jwks_url,
            "http://127.0.0.1:4555/certs"
        );
    }

    #[test]
    fn booleans_accept_the_usual_spellings() {
        for (value, expected) in [
            ("true", true),
            ("TRUE", true),
            ("1", true),
            ("yes", true),
            ("On", true),
            ("false", false),
            ("0", false),
            ("no", false),
            ("OFF", false),
        ] {
            let c = load(&[("AUTHARA_AUTO_MIGRATE", value)]).unwrap();
            assert_eq!(c.auto_migrate, expected, "{value}");
        }
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

    #[test]
    fn cidr_parsing() {
        for (input, display) in [
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("10.1.2.3/8", "10.0.0.0/8"),
            ("192.168.1.7", "192.168.1.7/32"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("fd00::/8", "fd00::/8"),
            ("2001:db8::1", "2001:db8::1/128"),
            ("2001:db8:abcd::/32", "2001:db8::/32"),
            ("::/0", "::/0"),
            ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
            ("::ffff:0:0/96", "0.0.0.0/0"),
            ("::ffff:1.2.3.4", "1.2.3.4/32"),
            ("::ffff:0:0/80", "::/80"),
        ] {
            let c: Cidr = input.parse().unwrap();
            assert_eq!(c.to_string(), display, "{input}");
        }
        for bad in [
            "",
            "10.0.0.0/",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/+8",
            "10.0.0.0/-1",
            "10.0.0.0/0008",
            "10.0.0/8",
            "10.0.0.0/8/8",
            "host.example",
            "fe80::1%eth0",
            " 10.0.0.0/8",
            "10.0.0.0 /8",
            "[::1]",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?} was accepted");
        }
        assert_eq!(Cidr::new("10.0.0.0".parse().unwrap(), 33), None);
        let c = Cidr::new("10.9.8.7".parse().unwrap(), 16).unwrap();
        assert_eq!((c.network(), c.prefix()), ("10.9.0.0".parse().unwrap(), 16));
    }

    #[test]
    fn cidr_contains() {
        for (cidr, ip, expected) in [
            ("10.0.0.0/8", "10.255.1.2", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("10.0.0.0/8", "::ffff:10.1.2.3", true),
            ("10.0.0.0/8", "::ffff:11.1.2.3", false),
            ("10.0.0.0/8", "::a01:203", false),
            ("10.0.0.0/8", "fd00::1", false),
            ("192.168.1.7", "192.168.1.7", true),
            ("192.168.1.7", "192.168.1.8", false),
            ("172.16.0.0/12", "172.31.255.255", true),
            ("172.16.0.0/12", "172.32.0.0", false),
            ("0.0.0.0/0", "1.2.3.4", true),
            ("0.0.0.0/0", "::1", false),
            ("fd00::/8", "fd12:3456::1", true),
            ("fd00::/8", "fe80::1", false),
            ("fd00::/8", "10.0.0.1", false),
            ("::1", "::1", true),
            ("::1", "::2", false),
            ("::1", "127.0.0.1", false),
            ("2001:db8::/32", "2001:db8:ffff::1", true),
            ("2001:db8::/32", "2001:db9::", false),
            ("::/0", "2001:db8::1", true),
            ("::/0", "1.2.3.4", true),
            ("::ffff:10.0.0.0/104", "10.9.9.9", true),
            ("::ffff:10.0.0.0/104", "::ffff:10.9.9.9", true),
            ("::ffff:10.0.0.0/104", "11.0.0.0", false),
            ("::ffff:0:0/80", "8.8.8.8", true),
        ] {
            let c: Cidr = cidr.parse().unwrap();
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(c.contains(ip), expected, "{cidr} contains {ip}");
        }
    }

    #[test]
    fn durations() {
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        let ok: &[(&str, Duration)] = &[
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("0h0m", Duration::ZERO),
            ("1ms", ms(1)),
            ("1500ms", ms(1500)),
            ("10s", s(10)),
            ("1m", s(60)),
            ("24h", s(86_400)),
            ("1h30m", s(5400)),
            ("90m", s(5400)),
            ("1h30m15s500ms", ms(5_415_500)),
            ("2m0s", s(120)),
            ("1s1s", s(2)),
            ("1.5h", s(5400)),
            ("0.25s", ms(250)),
            (".5s", ms(500)),
            ("1.s", s(1)),
            ("1.0000000000000000001s", s(1)),
            ("0.000000001s", Duration::from_nanos(1)),
            ("0010s", s(10)),
            ("18446744073709551615s", s(u64::MAX)),
            ("5124095576030431h", s(5_124_095_576_030_431 * 3600)),
        ];
        for (input, expected) in ok {
            assert_eq!(parse_duration(input), Ok(*expected), "{input}");
        }
        let bad: &[(&str, &str)] = &[
            ("", "the value is empty"),
            ("-1s", "negative durations are not allowed"),
            ("-0", "negative durations are not allowed"),
            ("+1s", "expected a number at \"+1s\""),
            ("10", "missing unit after \"10\" (use ms, s, m or h)"),
            ("1h30", "missing unit after \"1h30\" (use ms, s, m or h)"),
            ("0.0", "missing unit after \"0.0\" (use ms, s, m or h)"),
            ("1..5s", "missing unit after \"1.\" (use ms, s, m or h)"),
            ("5d", "unknown unit \"d\" (use ms, s, m or h)"),
            ("1us", "unknown unit \"us\" (use ms, s, m or h)"),
            ("1µs", "unknown unit \"µs\" (use ms, s, m or h)"),
            ("1ns", "unknown unit \"ns\" (use ms, s, m or h)"),
            ("1H", "unknown unit \"H\" (use ms, s, m or h)"),
            ("1e3s", "unknown unit \"e\" (use ms, s, m or h)"),
            ("1h 30m", "unknown unit \"h \" (use ms, s, m or h)"),
            (" 1s", "expected a number at \" 1s\""),
            ("s", "expected a number at \"s\""),
            ("h1", "expected a number at \"h1\""),
            ("18446744073709551616s", "the duration is too large"),
            ("5124095576030432h", "the duration is too large"),
            (
                "99999999999999999999999999999999999999999h",
                "the duration is too large",
            ),
        ];
        for (input, expected) in bad {
            assert_eq!(
                parse_duration(input),
                Err((*expected).to_owned()),
                "{input}"
            );
        }
    }

    #[test]
    fn human_durations_read_back() {
        for d in [
            Duration::ZERO,
            Duration::from_millis(1),
            Duration::from_secs(300),
            Duration::from_millis(5_415_500),
            MAX_RATE_WINDOW,
            MAX_ROTATION,
        ] {
            assert_eq!(parse_duration(&human(d)), Ok(d), "{}", human(d));
        }
    }
}

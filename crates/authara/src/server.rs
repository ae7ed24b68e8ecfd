//! Building the server from a `Config` (store, keys, services, router, listener) and running it.
//! `build` binds its own listener, so port 0 works and tests get a real server.

mod conn;

use crate::config::{Config, DatabaseConfig, EmailProvider, KeySource, PostgresConfig};
use crate::http::cookies::CookieWriter;
use crate::state::{AppState, Inner};
use authara_core::audit::AuditService;
use authara_core::auth::password::{HashError, PasswordHasher};
use authara_core::auth::AuthService;
use authara_core::challenge::ChallengeService;
use authara_core::clock::{Clock, SystemClock};
use authara_core::events::{EventPolicy, Publisher};
use authara_core::invitation::InvitationService;
use authara_core::jwt::{JwtKeys, KeySetError};
use authara_core::limits::{MemoryLimiter, RateLimiter};
use authara_core::org::{OrgMode, OrgService};
use authara_core::random::{OsRandom, Random};
use authara_core::session::cache::SessionCache;
use authara_core::session::SessionService;
use authara_core::store::{Change, ChangeFeed};
use authara_core::store::{SchemaState, Store, StoreError};
use authara_store_postgres::ConnectOptions as _;
use authara_store_postgres::{PgConnectOptions, PgStore};
use authara_store_sqlite::SqliteStore;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Most live sessions kept in memory.
const SESSION_CACHE_CAPACITY: usize = 50_000;

/// When the first audit retention cleanup runs, and how often after that.
const AUDIT_CLEANUP_FIRST: Duration = Duration::from_secs(300);
const AUDIT_CLEANUP_EVERY: Duration = Duration::from_secs(86_400);

/// How often expired sessions and tokens are purged.
const PURGE_EVERY: Duration = Duration::from_secs(600);

/// What can stop the server from starting; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the database: {0}")]
    Database(#[source] StoreError),
    #[error("the database schema is behind this binary ({pending} pending migration(s)): run `authara migrate`")]
    SchemaBehind { pending: usize },
    #[error("the database schema is newer than this binary ({unknown} unknown migration(s)): run a newer authara, or restore the database")]
    SchemaAhead { unknown: usize },
    #[error("migrating the database failed: {0}")]
    Migrate(#[source] StoreError),
    #[error("signing keys: {0}")]
    Keys(#[from] KeySetError),
    #[error("password hashing: {0}")]
    Hash(#[from] HashError),
    #[error("another authara server is using {0}: one server per SQLite file (use PostgreSQL to run several)")]
    SqliteInUse(String),
    #[error("cannot create the lock file {path}: {source}")]
    SqliteLock {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("organization mode mismatch: database=\"{database}\" config=\"{config}\"")]
    OrgModeMismatch { database: OrgMode, config: OrgMode },
    #[error("webhooks: {0}")]
    Webhooks(String),
    #[error("email: {0}")]
    Email(String),
    #[error("Google sign-in: {0}")]
    Oidc(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Injected dependencies; tests replace the clock (and could replace the rest). The rate
/// limiter is built from the configuration and told time by `clock`.
pub struct Deps {
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
}

impl Default for Deps {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            random: Arc::new(OsRandom),
        }
    }
}

/// The rate limiter of the configuration: shared through Redis when one is configured (with
/// the in-process limiter as its fallback while Redis is away), else in-process.
pub async fn build_limiter(config: &Config, clock: Arc<dyn Clock>) -> Arc<dyn RateLimiter> {
    let Some(url) = &config.redis_url else {
        return Arc::new(MemoryLimiter::new(config.rate_limits, clock));
    };
    match authara_redis::RedisLimiter::connect(url.expose(), config.rate_limits, clock.clone())
        .await
    {
        Ok(l) => Arc::new(l),
        Err(e) => {
            // The configuration accepted the URL: still count, in this process.
            tracing::error!(error = %e, "rate limits are counted in this process only");
            Arc::new(MemoryLimiter::new(config.rate_limits, clock))
        }
    }
}

/// A built server with its bound listener.
pub struct Server {
    listener: TcpListener,
    router: axum::Router,
    state: AppState,
    http: crate::config::HttpLimits,
    /// The webhook workers' settings and store; they start with `run_until_stopped`.
    webhooks: Option<(authara_webhook::Settings, Arc<dyn Store>)>,
    /// The email workers' transport and settings; they start with `run_until_stopped`.
    mail: (authara_smtp::Transport, authara_smtp::MailSettings),
    audit_retention: time::Duration,
    clock: Arc<dyn Clock>,
    /// Held while serving: no second server may use the same SQLite file.
    _sqlite_lock: Option<std::fs::File>,
}

/// Which domain events this configuration writes to the outbox: none without a webhook
/// receiver (nothing would consume them), else the enabled types.
pub fn event_publisher(config: &Config, random: Arc<dyn Random>) -> Publisher {
    let policy = match &config.webhooks {
        None => EventPolicy::off(),
        Some(w) => EventPolicy::only(w.enabled_events.iter().copied()),
    };
    Publisher::new(policy, random)
}

/// The delivery workers' settings from the configuration; one worker on SQLite (one writer).
fn webhook_settings(config: &Config) -> Result<Option<authara_webhook::Settings>, StartError> {
    let Some(w) = &config.webhooks else {
        return Ok(None);
    };
    let url = authara_webhook::Endpoint::parse(&w.url)
        .map_err(|e| StartError::Webhooks(format!("AUTHARA_WEBHOOK_URL: {e}")))?;
    let secret = authara_webhook::WebhookSecret::new(w.secret.expose().as_bytes())
        .map_err(|_| StartError::Webhooks("AUTHARA_WEBHOOK_SECRET is empty".into()))?;
    let mut s = authara_webhook::Settings::new(url, secret);
    s.timeout = w.timeout;
    s.worker_count = u32::try_from(w.worker_count).unwrap_or(u32::MAX);
    if matches!(config.database, DatabaseConfig::Sqlite { .. }) {
        s.worker_count = s.worker_count.min(1);
    }
    s.max_delivery_attempts = w.max_delivery_attempts;
    s.processing_stale_after = w.processing_stale_after;
    s.stale_reaper_interval = w.stale_reaper_interval;
    s.delivered_retention = w.delivered_retention;
    s.failed_retention = w.failed_retention;
    s.cleanup_interval = w.cleanup_interval;
    s.maintenance_batch_size = w.maintenance_batch_size;
    s.allow_private_networks = w.allow_private_networks;
    Ok(Some(s))
}

/// The email workers' transport and settings from the configuration; one worker on SQLite
/// (one writer). They run whatever the provider: with noop the queue still drains.
fn mail_setup(
    config: &Config,
) -> Result<(authara_smtp::Transport, authara_smtp::MailSettings), StartError> {
    let e = &config.email;
    let transport = match e.provider {
        EmailProvider::Smtp => {
            let settings = e
                .smtp_settings()
                .ok_or_else(|| StartError::Email("AUTHARA_EMAIL_SMTP_HOST is not set".into()))?;
            let sender = authara_smtp::SmtpSender::new(&settings)
                .map_err(|e| StartError::Email(e.to_string()))?;
            authara_smtp::Transport::Smtp(sender)
        }
        EmailProvider::Log => authara_smtp::Transport::Log,
        EmailProvider::Noop => authara_smtp::Transport::Noop,
    };
    let mut s = authara_smtp::MailSettings::new(&config.public_url);
    s.worker_count = e.worker_count;
    if matches!(config.database, DatabaseConfig::Sqlite { .. }) {
        s.worker_count = s.worker_count.min(1);
    }
    s.poll_interval = e.poll_interval;
    s.max_attempts = e.job_max_attempts;
    s.send_timeout = e.timeout;
    s.code_ttl = config.challenge.code_ttl;
    s.sent_retention = e.cleanup_sent_after;
    s.failed_retention = e.cleanup_failed_after;
    s.include_invitation_code = e.invitation_include_code;
    Ok((transport, s))
}

/// The account service for the command line (`authara admin`): the configured store, keys
/// and hashing, no session cache. What it changes is audited with [`Actor::Cli`]
/// (`authara_core::audit::Actor`).
pub async fn cli_account_service(config: &Config) -> Result<AuthService, StartError> {
    let store = prepare_store(config).await?;
    let deps = Deps::default();
    let cache = Arc::new(SessionCache::new(time::Duration::ZERO, 1));
    cache.set_enabled(false);
    let (_, auth, _) = account_services(config, &deps, store, cache, 1)?;
    Ok(auth)
}

/// The session and account services over `store`, as `serve` and the CLI wire them: the
/// configured keys, hashing (`hash_threads` Argon2 threads) and event publisher.
fn account_services(
    config: &Config,
    deps: &Deps,
    store: Arc<dyn Store>,
    cache: Arc<SessionCache>,
    hash_threads: usize,
) -> Result<(SessionService, AuthService, ChallengeService), StartError> {
    let keys = Arc::new(jwt_keys(config, &*deps.random)?);
    let sessions = SessionService::new(
        store.clone(),
        deps.clock.clone(),
        deps.random.clone(),
        keys.clone(),
        config.session,
        cache,
    );
    let hasher = Arc::new(PasswordHasher::with_queue(
        config.password_hash,
        hash_threads,
        config.hash_queue,
        deps.random.clone(),
    )?);
    let events = event_publisher(config, deps.random.clone());
    let challenges = ChallengeService::new(
        store.clone(),
        deps.clock.clone(),
        deps.random.clone(),
        hasher.clone(),
        keys,
        sessions.clone(),
        events.clone(),
        config.challenge.clone(),
        config.org.mode,
    );
    let auth = AuthService::new(
        store,
        deps.clock.clone(),
        deps.random.clone(),
        hasher,
        sessions.clone(),
        config.org.mode,
    )
    .with_events(events);
    Ok((sessions, auth, challenges))
}

/// Opens the configured database (no migration, no schema check).
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    match &config.database {
        DatabaseConfig::Sqlite { url } => Ok(Arc::new(SqliteStore::connect(url).await?)),
        DatabaseConfig::Postgres(pg) => Ok(Arc::new(open_postgres(pg).await?)),
    }
}

async fn open_postgres(pg: &PostgresConfig) -> Result<PgStore, StoreError> {
    let schema = pg.schema.as_deref();
    if let Some(url) = &pg.url {
        return PgStore::connect_url(url.expose(), schema, pg.max_connections).await;
    }
    let mut opts = PgConnectOptions::new()
        .host(&pg.host)
        .port(pg.port)
        .database(&pg.database)
        .username(&pg.username)
        .options([("timezone", pg.timezone.as_str())]);
    if let Some(p) = &pg.password {
        opts = opts.password(p.expose());
    }
    if !pg.log_sql {
        opts = opts.disable_statement_logging();
    }
    PgStore::from_options(opts, schema, pg.max_connections).await
}

/// Opens the store and makes sure its schema matches this binary, migrating first when
/// `AUTHARA_AUTO_MIGRATE` says so.
pub async fn prepare_store(config: &Config) -> Result<Arc<dyn Store>, StartError> {
    let store = open_store(config).await.map_err(StartError::Database)?;
    if config.auto_migrate {
        store.migrate().await.map_err(StartError::Migrate)?;
    }
    match store.schema_state().await.map_err(StartError::Database)? {
        SchemaState::UpToDate => Ok(store),
        SchemaState::Behind { pending } => Err(StartError::SchemaBehind { pending }),
        SchemaState::Ahead { unknown } => Err(StartError::SchemaAhead { unknown }),
    }
}

/// Pins the configured organization mode in the database at its first start and refuses
/// another one later; then gives every user and session from before organizations existed
/// their initial organization (a no-op once done).
pub async fn prepare_organizations(
    config: &Config,
    store: &dyn Store,
    clock: &dyn Clock,
) -> Result<(), StartError> {
    let mode = config.org.mode;
    let now = clock.now();
    let pinned = store
        .pin_organization_mode(mode, now)
        .await
        .map_err(StartError::Database)?;
    if pinned != mode {
        return Err(StartError::OrgModeMismatch {
            database: pinned,
            config: mode,
        });
    }
    tracing::info!(
        mode = %mode,
        "AUTHARA_ORG_MODE is a boot-time product shape: it was pinned in this database at its first start and cannot change"
    );
    let done = store
        .backfill_organizations(mode.initial_kind(), now)
        .await
        .map_err(StartError::Database)?;
    if done != Default::default() {
        tracing::info!(
            organizations = done.organizations,
            sessions = done.sessions,
            "gave existing users their initial organization and sessions their active one"
        );
    }
    Ok(())
}

/// The key set from the configuration, or an ephemeral one (dev only; config enforces that).
fn jwt_keys(config: &Config, random: &dyn Random) -> Result<JwtKeys, KeySetError> {
    match &config.jwt.keys {
        KeySource::Configured { keys, active } => {
            let keys = keys
                .iter()
                .map(|(kid, secret)| (kid.clone(), secret.expose().to_vec()))
                .collect();
            JwtKeys::new(keys, active.as_deref(), config.jwt.issuer.clone())
        }
        KeySource::Ephemeral => {
            tracing::warn!(
                "AUTHARA_JWT_KEYS is not set: using an ephemeral signing key; every session ends \
                 when the server restarts (generate keys with `authara keys generate`)"
            );
            let mut secret = vec![0u8; 32];
            random.fill(&mut secret);
            JwtKeys::new(
                vec![("ephemeral".into(), secret)],
                None,
                config.jwt.issuer.clone(),
            )
        }
    }
}

impl Server {
    /// Builds everything and binds `config.http_addr`.
    pub async fn build(config: &Config, deps: Deps) -> Result<Self, StartError> {
        let store = prepare_store(config).await?;
        Self::build_with_store(config, deps, store).await
    }

    /// Like `build`, with a store that is already open and checked.
    pub async fn build_with_store(
        config: &Config,
        deps: Deps,
        store: Arc<dyn Store>,
    ) -> Result<Self, StartError> {
        for warning in &config.warnings {
            tracing::warn!("{warning}");
        }
        let limiter = build_limiter(config, deps.clock.clone()).await;
        let sqlite_lock = lock_sqlite_file(config)?;
        prepare_organizations(config, &*store, &*deps.clock).await?;
        let cache = Arc::new(SessionCache::new(
            time::Duration::try_from(config.session_cache_max_age).unwrap_or(time::Duration::ZERO),
            SESSION_CACHE_CAPACITY,
        ));
        if !config.session_cache_max_age.is_zero() {
            connect_cache(&*store, &cache, sqlite_lock.is_some() || is_memory(config)).await?;
        }
        let (sessions, auth, challenges) =
            account_services(config, &deps, store.clone(), cache, config.hash_concurrency)?;
        let orgs = OrgService::new(
            store.clone(),
            deps.clock.clone(),
            deps.random.clone(),
            sessions.clone(),
            config.org.mode,
            config.org.public_management,
        )
        .with_events(event_publisher(config, deps.random.clone()));
        let invitations = InvitationService::new(
            store.clone(),
            deps.clock.clone(),
            deps.random.clone(),
            challenges.keys().clone(),
            config.org.mode,
            time::Duration::try_from(config.org.invitation_ttl)
                .unwrap_or(authara_core::invitation::service::DEFAULT_TTL),
            config.public_url.clone(),
        )
        .with_events(event_publisher(config, deps.random.clone()));
        let webhooks = webhook_settings(config)?.map(|s| (s, store.clone()));
        let mail = mail_setup(config)?;
        let clock = deps.clock.clone();
        let request_ids = crate::http::layers::RequestIds::new(&*deps.random);
        let state = AppState::new(Inner {
            auth,
            sessions,
            challenges,
            orgs,
            invitations,
            internal_api_digest: config
                .org
                .internal_api_token
                .as_ref()
                .map(|t| crate::http::api::internal::token_digest(t.expose())),
            store,
            random: deps.random,
            limiter,
            cookies: CookieWriter {
                secure: config.is_prod(),
            },
            trusted_proxies: config.trusted_proxies.clone(),
            // `PUBLIC_URL` was validated by the configuration, so it has an origin.
            public_origin: crate::http::origin::of_url(&config.public_url).unwrap_or_default(),
            request_ids,
            google: google_sign_in(config, deps.clock.clone())?,
            providers: code_flow_providers(config, deps.clock.clone())?,
        });
        let listener = TcpListener::bind(config.http_addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.http_addr,
                source,
            })?;
        let router = crate::http::router(state.clone());
        Ok(Self {
            listener,
            router,
            state,
            http: config.http,
            webhooks,
            mail,
            audit_retention: config.audit.retention(),
            clock,
            _sqlite_lock: sqlite_lock,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish for at most
    /// `AUTHARA_SHUTDOWN_TIMEOUT` and closes what is left.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let purge = tokio::spawn(purge_loop(self.state.clone()));
        let audit = tokio::spawn(audit_cleanup_loop(
            AuditService::new(self.state.store.clone(), self.clock.clone()),
            self.audit_retention,
        ));
        let workers = match self.webhooks {
            None => None,
            Some((settings, store)) => {
                match authara_webhook::WebhookWorkers::start(store, settings, self.clock.clone()) {
                    Ok(w) => Some(w),
                    Err(e) => {
                        purge.abort();
                        audit.abort();
                        return Err(std::io::Error::other(e));
                    }
                }
            }
        };
        let (transport, settings) = self.mail;
        let mail = authara_smtp::MailWorkers::start(
            self.state.store.clone(),
            transport,
            settings,
            self.state.challenges.keys().clone(),
            self.state.random.clone(),
            self.clock.clone(),
        );
        let result = conn::serve(self.listener, self.router, self.http, shutdown).await;
        purge.abort();
        audit.abort();
        if let Some(workers) = workers {
            // Lets the attempt in flight finish (bounded by the webhook timeout).
            workers.shutdown().await;
        }
        // Likewise for the email in flight (bounded by the SMTP timeout).
        mail.shutdown().await;
        result
    }
}

/// Deletes audit rows older than `AUTHARA_ADMIN_AUDIT_RETENTION_DAYS`: first 5 minutes after
/// start (start-up stays fast), then every 24 hours, as upstream.
async fn audit_cleanup_loop(audit: AuditService, retention: time::Duration) {
    let start = tokio::time::Instant::now() + AUDIT_CLEANUP_FIRST;
    let mut every = tokio::time::interval_at(start, AUDIT_CLEANUP_EVERY);
    loop {
        every.tick().await;
        match audit.purge_older_than(retention).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "purged expired audit events"),
            Err(e) => tracing::warn!(error = ?e, "purging expired audit events failed"),
        }
    }
}

async fn purge_loop(state: AppState) {
    // The first purge waits one period: start-up stays fast and short-lived processes never purge.
    let start = tokio::time::Instant::now() + PURGE_EVERY;
    let mut every = tokio::time::interval_at(start, PURGE_EVERY);
    loop {
        every.tick().await;
        match state.sessions.purge().await {
            Ok(c) if c.sessions + c.refresh_tokens > 0 => tracing::info!(
                sessions = c.sessions,
                refresh_tokens = c.refresh_tokens,
                "purged expired sessions and refresh tokens"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = ?e, "purging expired sessions failed"),
        }
    }
}

/// The SQLite database file of the configuration, as the store opens it; `None` for
/// PostgreSQL and in-memory SQLite.
fn sqlite_path(config: &Config) -> Result<Option<std::path::PathBuf>, StartError> {
    let DatabaseConfig::Sqlite { url } = &config.database else {
        return Ok(None);
    };
    authara_store_sqlite::database_file(url).map_err(StartError::Database)
}

fn is_memory(config: &Config) -> bool {
    matches!(&config.database, DatabaseConfig::Sqlite { url }
        if matches!(authara_store_sqlite::database_file(url), Ok(None)))
}

/// Takes an exclusive lock next to a SQLite file, so that this server is the only one using it
/// (the session cache relies on that). `None` for PostgreSQL and in-memory SQLite.
fn lock_sqlite_file(config: &Config) -> Result<Option<std::fs::File>, StartError> {
    let Some(db) = sqlite_path(config)? else {
        return Ok(None);
    };
    let mut name = db.clone().into_os_string();
    name.push(".lock");
    let path = std::path::PathBuf::from(name);
    let shown = path.display().to_string();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| StartError::SqliteLock {
            path: shown.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(StartError::SqliteInUse(db.display().to_string()))
        }
        Err(std::fs::TryLockError::Error(source)) => Err(StartError::SqliteLock {
            path: shown,
            source,
        }),
    }
}

/// Turns the session cache on when it can be kept exact: with a change feed (PostgreSQL),
/// following it; without one only when this process is the only server (`sole_writer`).
async fn connect_cache(
    store: &dyn Store,
    cache: &Arc<SessionCache>,
    sole_writer: bool,
) -> Result<(), StartError> {
    match store.watch_changes().await.map_err(StartError::Database)? {
        ChangeFeed::Channel(mut changes) => {
            let cache = cache.clone();
            tokio::spawn(async move {
                while let Some(change) = changes.recv().await {
                    match change {
                        Change::Session(id) => cache.evict_session(id),
                        Change::User(id) => cache.evict_user(id),
                        Change::Lost => cache.set_enabled(false),
                        Change::Resumed => {
                            cache.clear();
                            cache.set_enabled(true);
                        }
                    }
                }
                cache.set_enabled(false);
            });
        }
        ChangeFeed::Unsupported => cache.set_enabled(sole_writer),
    }
    Ok(())
}

/// The code-flow providers from the configuration. Nothing is fetched here: an OpenID Connect
/// provider is discovered on its first sign-in, so one that is down does not stop a start.
fn code_flow_providers(
    config: &Config,
    clock: Arc<dyn authara_core::clock::Clock>,
) -> Result<Vec<Arc<crate::state::CodeFlowSignIn>>, StartError> {
    use crate::config::CodeFlowKind;
    use authara_oidc::{ClientSettings, CodeFlow, GitHubProvider, OidcProvider, Url};
    let parse = |s: &str| Url::parse(s).map_err(|e| StartError::Oidc(e.to_string()));
    let mut out = Vec::new();
    for p in &config.oauth.code_flow {
        let client =
            authara_oidc::client(std::time::Duration::from_secs(5)).map_err(StartError::Oidc)?;
        let settings = ClientSettings {
            client_id: p.client_id.clone(),
            client_secret: p
                .client_secret
                .as_ref()
                .map(|s| crate::config::Secret::<String>::expose(s).to_owned()),
            scopes: p.scopes.clone(),
            redirect_uri: parse(&format!(
                "{}{}",
                config.public_url,
                crate::http::pages::code_flow::callback_path(&p.name)
            ))?,
        };
        let flow = match &p.kind {
            CodeFlowKind::Oidc { issuer } => CodeFlow::Oidc(OidcProvider::new(
                issuer.clone(),
                settings,
                client,
                clock.clone(),
            )),
            CodeFlowKind::GitHub { web_url, api_url } => CodeFlow::GitHub(GitHubProvider::new(
                settings,
                &parse(web_url)?,
                &parse(api_url)?,
                client,
            )),
        };
        out.push(Arc::new(crate::state::CodeFlowSignIn {
            name: p.name.clone(),
            display_name: p.display_name.clone(),
            flow,
        }));
    }
    Ok(out)
}

/// Google's two spellings of its issuer (SPEC §9).
const GOOGLE_ISSUERS: [&str; 2] = ["https://accounts.google.com", "accounts.google.com"];

/// Google sign-in from the configuration: its keys fetched with a deadline, no redirect
/// followed, and cached by `Cache-Control` (authara-oidc).
fn google_sign_in(
    config: &Config,
    clock: Arc<dyn authara_core::clock::Clock>,
) -> Result<Option<Arc<crate::state::GoogleSignIn>>, StartError> {
    let Some(google) = &config.oauth.google else {
        return Ok(None);
    };
    let url =
        authara_oidc::Url::parse(&google.jwks_url).map_err(|e| StartError::Oidc(e.to_string()))?;
    let client =
        authara_oidc::client(std::time::Duration::from_secs(5)).map_err(StartError::Oidc)?;
    let jwks = Arc::new(authara_oidc::Jwks::new(
        authara_oidc::JwksSettings::new(url),
        client,
        clock.clone(),
    ));
    let verifier = authara_oidc::IdTokenVerifier::new(
        authara_oidc::VerifierSettings {
            issuers: GOOGLE_ISSUERS.iter().map(|s| (*s).to_owned()).collect(),
            client_id: google.client_id.clone(),
            leeway: std::time::Duration::from_secs(60),
            require_verified_email: true,
        },
        jwks,
        clock,
    );
    Ok(Some(Arc::new(crate::state::GoogleSignIn {
        client_id: google.client_id.clone(),
        verifier,
    })))
}

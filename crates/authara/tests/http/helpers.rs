//! `TestApp`: the real server on a random port, on a fresh database, driven by a real HTTP
//! client with a cookie jar and redirects off.

use authara::config::Config;
use authara::server::{Deps, Server, StartError};
use authara_core::clock::ManualClock;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use reqwest::cookie::CookieStore as _;
use reqwest::header::HeaderMap;
use reqwest::{Client, Response, Url};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;

/// The backend a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub use authara_store_conformance::require_service;

/// Whether a PostgreSQL test should run: `AUTHARA_TEST_POSTGRES_URL` is set; otherwise it is
/// skipped (said on stderr), or fails under `CI=true` (see [`require_service`]).
pub fn require_postgres(test: &str) -> bool {
    require_service(
        &format!("AUTHARA_TEST_POSTGRES_URL not set ({test} on PostgreSQL)"),
        postgres_url().is_some(),
    )
}

/// The PostgreSQL URL for tests, when configured.
pub fn postgres_url() -> Option<String> {
    std::env::var("AUTHARA_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// A test signing key (kid `test`), as configured.
pub const TEST_KEY: [u8; 32] = [7; 32];

/// Builds an email address without writing one literally.
/// An initial organization for a user inserted straight into the store (`single` mode's kind).
pub fn initial_org(name: &str) -> authara_core::store::InitialOrganization {
    authara_core::store::InitialOrganization {
        id: uuid::Uuid::new_v4(),
        name: name.to_owned(),
        kind: authara_core::org::OrgKind::Team,
    }
}

pub fn email(local: &str) -> String {
    format!("{local}{}example.com", '@')
}

/// A running server plus a client.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: Client,
    pub jar: Arc<reqwest::cookie::Jar>,
    pub clock: Arc<ManualClock>,
    pub config: Config,
    shutdown: Option<oneshot::Sender<()>>,
    /// The server's task: done once it has stopped.
    task: Option<tokio::task::JoinHandle<()>>,
    /// The environment it was configured from (for [`Self::restart_with`]).
    vars: HashMap<String, String>,
    _dir: tempfile::TempDir,
    pg: Option<SchemaGuard>,
}

impl TestApp {
    /// Starts the server with the default test configuration.
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, &[]).await
    }

    /// Starts the server with extra environment variables on top of the test defaults.
    pub async fn spawn_with(backend: Backend, extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut vars: HashMap<String, String> = HashMap::new();
        let key = format!("test:{}", STANDARD.encode(TEST_KEY));
        for (k, v) in [
            ("AUTHARA_JWT_KEYS", key.as_str()),
            ("AUTHARA_JWT_ISSUER", "authara-test"),
            ("AUTHARA_PASSWORD_HASH_MEMORY_KIB", "256"),
            ("AUTHARA_PASSWORD_HASH_ITERATIONS", "1"),
            ("AUTHARA_AUTO_MIGRATE", "true"),
            // Tests sign up and log in many times from 127.0.0.1; the rate-limit tests set
            // their own limits.
            ("AUTHARA_RATE_LIMIT_LOGIN_IP_LIMIT", "10000"),
            ("AUTHARA_RATE_LIMIT_LOGIN_EMAIL_LIMIT", "10000"),
            ("AUTHARA_RATE_LIMIT_SIGNUP_IP_LIMIT", "10000"),
            ("AUTHARA_RATE_LIMIT_SIGNUP_EMAIL_LIMIT", "10000"),
        ] {
            vars.insert(k.into(), v.into());
        }
        let mut pg = None;
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("authara.db").display());
                vars.insert("DATABASE_URL".into(), url);
            }
            Backend::Postgres => {
                let url = postgres_url().expect("AUTHARA_TEST_POSTGRES_URL");
                let mut suffix = [0u8; 6];
                authara_core::random::Random::fill(&authara_core::random::OsRandom, &mut suffix);
                let schema: String = std::iter::once("t_".to_owned())
                    .chain(suffix.iter().map(|b| format!("{b:02x}")))
                    .collect();
                vars.insert("DATABASE_URL".into(), url.clone());
                vars.insert("POSTGRESQL_SCHEMA".into(), schema.clone());
                vars.insert("AUTHARA_DATABASE_MAX_CONNECTIONS".into(), "8".into());
                pg = Some(SchemaGuard::new(&url, &schema));
            }
        }
        for (k, v) in extra {
            vars.insert((*k).into(), (*v).into());
        }
        // The server checks `Origin` against `PUBLIC_URL`, so the test server's public URL is
        // the address it really listens on (as a browser sees it): pick a free port first, and
        // pick again in the unlikely case that another process took it in between.
        let clock = Arc::new(ManualClock::starting_now());
        let mut attempt = 0;
        let (config, addr, shutdown, task, vars) = loop {
            attempt += 1;
            let mut vars = vars.clone();
            if !extra.iter().any(|(k, _)| *k == "AUTHARA_HTTP_ADDR") {
                let port = free_port();
                vars.insert("AUTHARA_HTTP_ADDR".into(), format!("127.0.0.1:{port}"));
                if !extra.iter().any(|(k, _)| *k == "PUBLIC_URL") {
                    vars.insert("PUBLIC_URL".into(), format!("http://127.0.0.1:{port}"));
                }
            }
            let config = Config::from_lookup(|k| vars.get(k).cloned()).expect("test config");
            match try_start_server(&config, clock.clone()).await {
                Ok((addr, shutdown, task)) => break (config, addr, shutdown, task, vars),
                Err(StartError::Bind { .. }) if attempt < 5 => continue,
                Err(e) => panic!("server does not build: {e}"),
            }
        };
        let (client, jar) = cookie_client();
        Self {
            addr,
            client,
            jar,
            clock,
            config,
            shutdown: Some(shutdown),
            task: Some(task),
            vars,
            _dir: dir,
            pg,
        }
    }

    /// Stops the server and waits until it has (its database stays).
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(30), task).await;
        }
    }

    /// Stops the server and starts it again on the same database, address and clock, with
    /// `overrides` on top of its environment (the next deployment of the same site).
    pub async fn restart_with(&mut self, overrides: &[(&str, &str)]) {
        self.try_restart_with(overrides)
            .await
            .unwrap_or_else(|e| panic!("restart does not build: {e}"));
    }

    /// [`Self::restart_with`], returning the error when the server refuses to start (it stays
    /// stopped then, and a later restart may try again).
    pub async fn try_restart_with(&mut self, overrides: &[(&str, &str)]) -> Result<(), StartError> {
        self.stop().await;
        for (k, v) in overrides {
            self.vars.insert((*k).into(), (*v).into());
        }
        let vars = self.vars.clone();
        let config = Config::from_lookup(|k| vars.get(k).cloned()).expect("test config");
        let (addr, shutdown, task) = try_start_server(&config, self.clock.clone()).await?;
        self.addr = addr;
        self.config = config;
        self.shutdown = Some(shutdown);
        self.task = Some(task);
        Ok(())
    }

    /// A store handle on the server's database, for setting up what no route does yet (and
    /// for changes made behind the server's back).
    pub async fn store(&self) -> Arc<dyn authara_core::store::Store> {
        authara::server::open_store(&self.config).await.unwrap()
    }

    /// A second server on the same database (another instance behind the load balancer),
    /// with its own client and cookie jar. The database is cleaned up by `self`.
    pub async fn spawn_sibling(&self) -> TestApp {
        let clock = Arc::new(ManualClock::new(authara_core::clock::Clock::now(
            &*self.clock,
        )));
        // Same `PUBLIC_URL` (one site behind a load balancer), a port of its own.
        let mut config = self.config.clone();
        config.http_addr = SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0));
        let (addr, shutdown, task) = start_server(&config, clock.clone(), "sibling").await;
        let (client, jar) = cookie_client();
        TestApp {
            addr,
            client,
            jar,
            clock,
            config,
            shutdown: Some(shutdown),
            task: Some(task),
            vars: self.vars.clone(),
            _dir: tempfile::tempdir().unwrap(),
            pg: None,
        }
    }

    /// `http://addr` + path.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A cookie's value from the jar.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let url = Url::parse(&self.url("/")).unwrap();
        let header = self.jar.cookies(&url)?;
        let header = header.to_str().ok()?.to_owned();
        header
            .split(';')
            .filter_map(|p| p.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    }

    /// Puts a cookie into the jar.
    pub fn set_cookie(&self, name: &str, value: &str) {
        let url = Url::parse(&self.url("/")).unwrap();
        self.jar
            .add_cookie_str(&format!("{name}={value}; Path=/"), &url);
    }

    /// Removes a cookie from the jar.
    pub fn drop_cookie(&self, name: &str) {
        let url = Url::parse(&self.url("/")).unwrap();
        self.jar
            .add_cookie_str(&format!("{name}=; Max-Age=0; Path=/"), &url);
    }

    /// GET.
    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// The CSRF token (fetched once from `/auth/api/v1/csrf`, which also sets the cookie).
    pub async fn csrf(&self) -> String {
        if let Some(c) = self.cookie("authara_csrf") {
            return c;
        }
        let res = self.get("/auth/api/v1/csrf").await;
        assert_eq!(res.status(), 200);
        let body: serde_json::Value = res.json().await.unwrap();
        body["csrf_token"].as_str().unwrap().to_owned()
    }

    /// POST a form with the right `csrf_token` added.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let csrf = self.csrf().await;
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        all.push(("csrf_token", &csrf));
        self.client
            .post(self.url(path))
            .form(&all)
            .send()
            .await
            .unwrap()
    }

    /// POST a form exactly as given (no CSRF field added).
    pub async fn post_form_raw(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.client
            .post(self.url(path))
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    /// POST with the `X-CSRF-Token` header and no body.
    pub async fn post_api(&self, path: &str) -> Response {
        let csrf = self.csrf().await;
        self.client
            .post(self.url(path))
            .header("x-csrf-token", csrf)
            .send()
            .await
            .unwrap()
    }

    /// Signs up and returns the response (a 303 on success).
    pub async fn signup(&self, email: &str, password: &str) -> Response {
        self.post_form("/auth/signup", &[("email", email), ("password", password)])
            .await
    }

    /// Logs in and returns the response.
    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post_form("/auth/login", &[("email", email), ("password", password)])
            .await
    }

    /// Signs up a fresh user and checks it worked; returns the email.
    pub async fn signed_up(&self, local: &str) -> String {
        let e = email(local);
        let res = self.signup(&e, "correct horse battery").await;
        assert_eq!(
            res.status(),
            303,
            "{}",
            res.text().await.unwrap_or_default()
        );
        e
    }

    /// `GET /auth/api/v1/user` as JSON, with its status.
    pub async fn user(&self) -> (u16, serde_json::Value) {
        let res = self.get("/auth/api/v1/user").await;
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Signs up from another browser that never loaded a page: a fresh client sending a
    /// made-up CSRF token as both the cookie and the form field. Returns the response.
    pub async fn signup_in_another_browser(&self, email: &str, password: &str) -> Response {
        self.post_in_another_browser("/auth/signup", email, password)
            .await
    }

    /// Logs in from another browser, as [`Self::signup_in_another_browser`] signs up.
    pub async fn login_in_another_browser(&self, email: &str, password: &str) -> Response {
        self.post_in_another_browser("/auth/login", email, password)
            .await
    }

    async fn post_in_another_browser(&self, path: &str, email: &str, password: &str) -> Response {
        let csrf = "e".repeat(43);
        self.fresh_client()
            .post(self.url(path))
            .header("cookie", format!("authara_csrf={csrf}"))
            .form(&[
                ("email", email),
                ("password", password),
                ("csrf_token", csrf.as_str()),
            ])
            .send()
            .await
            .unwrap()
    }

    /// Signs up another user from another browser; returns that user's access token.
    pub async fn signup_elsewhere(&self, local: &str) -> String {
        let res = self
            .signup_in_another_browser(&email(local), "correct horse")
            .await;
        assert_eq!(res.status(), 303);
        let cookie = set_cookie(res.headers(), "authara_access").unwrap();
        let value = cookie.split(';').next().unwrap();
        value.trim_start_matches("authara_access=").to_owned()
    }

    /// The status of `GET /auth/api/v1/user` with only the given access token.
    pub async fn user_status_with(&self, access: &str) -> u16 {
        self.fresh_client()
            .get(self.url("/auth/api/v1/user"))
            .header("cookie", format!("authara_access={access}"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// A second browser: a client with its own, empty cookie jar.
    pub fn fresh_client(&self) -> Client {
        cookie_client().0
    }
}

/// Starts a server on `config` with `clock` on a task of its own; returns its address and the
/// sender that stops it. `what` names the server in the panic when it does not build.
async fn start_server(config: &Config, clock: Arc<ManualClock>, what: &str) -> Started {
    try_start_server(config, clock)
        .await
        .unwrap_or_else(|e| panic!("{what} does not build: {e}"))
}

/// [`start_server`], returning the error.
async fn try_start_server(config: &Config, clock: Arc<ManualClock>) -> Result<Started, StartError> {
    let deps = Deps {
        clock,
        ..Deps::default()
    };
    let server = Server::build(config, deps).await?;
    let addr = server.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = server
            .run_until_stopped(async {
                let _ = rx.await;
            })
            .await;
    });
    Ok((addr, tx, task))
}

/// A started server: its address, the sender that stops it, and its task.
type Started = (SocketAddr, oneshot::Sender<()>, tokio::task::JoinHandle<()>);

/// A browser: a client with its own, empty cookie jar, redirects off and the tests' user agent.
pub fn cookie_client() -> (Client, Arc<reqwest::cookie::Jar>) {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let client = Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("authara-tests/1.0")
        .build()
        .unwrap();
    (client, jar)
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Tests run on a multi-thread runtime, so the server's tasks (which may hold a
        // transaction the DROP waits for) keep running while the guard blocks this thread.
        drop(self.pg.take());
    }
}

/// Drops a PostgreSQL schema when it goes out of scope, also when the test failed.
pub struct SchemaGuard {
    url: String,
    schema: String,
}

impl SchemaGuard {
    /// Guards `schema` in the database at `url`.
    pub fn new(url: &str, schema: &str) -> Self {
        Self {
            url: url.to_owned(),
            schema: schema.to_owned(),
        }
    }
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        // Async drop does not exist: clean up on a runtime of our own, in its own thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(drop_schema(&url, &schema));
        })
        .join();
    }
}

async fn drop_schema(url: &str, schema: &str) {
    use sqlx::Connection as _;
    if let Ok(mut conn) = sqlx::PgConnection::connect(url).await {
        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .execute(&mut conn)
            .await;
        let _ = conn.close().await;
    }
}

/// A loopback port nothing listens on right now. Another process may take it before the caller
/// binds it: pick it right before starting what binds it.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The claims of a JWT, decoded without checking its signature.
pub fn claims(token: &str) -> serde_json::Value {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// All `Set-Cookie` headers of a response.
pub fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The `Set-Cookie` header for one cookie, if any.
pub fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    set_cookies(headers)
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
}

/// Runs each named `async fn(Backend)` test on SQLite and, when configured, on PostgreSQL.
#[macro_export]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::helpers::Backend::Sqlite).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if !$crate::helpers::require_postgres(stringify!($name)) {
                        return;
                    }
                    super::$name($crate::helpers::Backend::Postgres).await;
                }
            }
        )*
    };
}

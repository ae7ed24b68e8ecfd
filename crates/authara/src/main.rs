//! The `authara` binary: `serve` (default), `migrate`, `healthcheck`, `keys generate`,
//! `admin grant|revoke EMAIL`, `audit list`, `version`.

use authara::config::Config;
use authara::server::{open_store, prepare_store, Deps, Server};
use authara_core::random::{OsRandom, Random as _};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use clap::{Parser, Subcommand};
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

/// mimalloc instead of glibc's allocator: the request path allocates small, short-lived
/// buffers on every worker thread, where glibc's arena locks and consolidation showed up as
/// ~12 % of the server's samples (bench/README.md, profiling notes). See [`no_huge_pages`].
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "authara", version, about = "Self-hosted authentication server")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Exit 0 when the server on AUTHARA_HTTP_ADDR answers /auth/health with 200, else 1.
    Healthcheck,
    /// Signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// User administration.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Print the version.
    Version,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Print audit events, newest first.
    List {
        /// Only events about (or by) the user with this email; kept after the user is deleted.
        #[arg(long, value_name = "EMAIL")]
        user: Option<String>,
        /// Only events younger than this (`90m`, `24h`, `7d`).
        #[arg(long, value_name = "DURATION", value_parser = parse_since)]
        since: Option<Duration>,
        /// At most this many events (1-1000, default 100).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: Option<u32>,
        /// One JSON array instead of text lines.
        #[arg(long)]
        json: bool,
    },
}

fn parse_since(s: &str) -> Result<Duration, String> {
    authara::config::parse_duration(s)
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print a fresh key as `kid:base64secret` (32 random bytes), for AUTHARA_JWT_KEYS.
    Generate,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Grant the authara:admin role.
    Grant { email: String },
    /// Revoke the authara:admin role.
    Revoke { email: String },
}

/// Opts this process out of transparent huge pages. mimalloc's 2 MiB-aligned regions would
/// otherwise be backed by huge pages on machines with THP `always`, and every thread that
/// touches its region would pin 2 MiB: idle RSS was 19.5 MiB with them, 9.5 MiB without.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        // Not fatal: the server only uses more memory.
        eprintln!("authara: could not opt out of transparent huge pages: {e}");
    }
}

fn main() -> ExitCode {
    no_huge_pages();
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    match command {
        Command::Version => {
            println!("authara {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Command::Keys {
            command: KeysCommand::Generate,
        } => {
            println!("{}", generate_key());
            return ExitCode::SUCCESS;
        }
        Command::Healthcheck => return healthcheck(),
        _ => {}
    }
    // A missing .env is normal; a broken one is a configuration error.
    if let Err(e) = dotenvy::dotenv() {
        if !e.not_found() {
            eprintln!(".env: {e}");
            return ExitCode::from(2);
        }
    }
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match command {
            Command::Migrate => migrate(&config).await,
            Command::Admin { command } => admin(&config, command).await,
            Command::Audit {
                command:
                    AuditCommand::List {
                        user,
                        since,
                        limit,
                        json,
                    },
            } => {
                let store = prepare_store(&config).await?;
                let query = authara::cli::AuditQuery {
                    user,
                    since,
                    limit,
                    json,
                };
                println!("{}", authara::cli::audit_list(store, &query).await?);
                Ok(())
            }
            _ => serve(&config).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Once, on stderr where the logs go too, and whatever the log level: the reason
            // the process stops must be seen.
            eprintln!("authara: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(format!(
        "{level},sqlx=warn,tower_http=info,hyper=info",
        level = config.log_level
    ))
    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if config.is_prod() {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init();
    } else {
        builder.compact().init();
    }
}

async fn serve(config: &Config) -> anyhow::Result<()> {
    let server = Server::build(config, Deps::default()).await?;
    let addr = server.local_addr()?;
    tracing::info!(%addr, env = ?config.env, "authara listening; login page at http://{addr}/auth/login");
    server.run_until_stopped(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    store.migrate().await?;
    println!("database schema is up to date");
    Ok(())
}

async fn admin(config: &Config, command: AdminCommand) -> anyhow::Result<()> {
    let (email, grant) = match &command {
        AdminCommand::Grant { email } => (email, true),
        AdminCommand::Revoke { email } => (email, false),
    };
    println!("{}", authara::cli::admin(config, email, grant).await?);
    Ok(())
}

fn generate_key() -> String {
    let mut secret = [0u8; 32];
    OsRandom.fill(&mut secret);
    let mut kid = [0u8; 4];
    OsRandom.fill(&mut kid);
    let kid: String = kid.iter().map(|b| format!("{b:02x}")).collect();
    format!("k{kid}:{}", STANDARD.encode(secret))
}

/// GET /auth/health over plain HTTP/1.1; silent.
fn healthcheck() -> ExitCode {
    let _ = dotenvy::dotenv();
    let raw = std::env::var("AUTHARA_HTTP_ADDR")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let Ok(mut addr) = raw.parse::<SocketAddr>() else {
        return ExitCode::FAILURE;
    };
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let ok = (|| -> std::io::Result<bool> {
        let timeout = Duration::from_secs(3);
        let mut s = TcpStream::connect_timeout(&addr, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        write!(
            s,
            "GET /auth/health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        let mut buf = Vec::with_capacity(512);
        s.take(4096).read_to_end(&mut buf)?;
        Ok(buf.starts_with(b"HTTP/1.1 200 ") || buf.starts_with(b"HTTP/1.0 200 "))
    })()
    .unwrap_or(false);
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

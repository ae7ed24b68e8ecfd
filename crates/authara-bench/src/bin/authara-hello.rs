//! `authara-hello`: the machine's ceiling for the benchmark suite.
//!
//! A trivial axum server (the same HTTP stack, runtime, allocator and release profile as
//! `authara`) that answers `GET /hello` with a short text body and does nothing else. Whatever
//! the suite measures against Authara is divided by what it measures here, in the same run, on
//! the same machine.
//!
//! Usage: `authara-hello [PORT | ADDR]`, or `AUTHARA_HELLO_ADDR=127.0.0.1:PORT authara-hello`.
//! A bare port listens on 127.0.0.1. Stops on Ctrl-C or SIGTERM.

use axum::routing::get;
use axum::Router;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

/// The same allocator as `authara`, so the ceiling differs from it only in the work done.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Where to listen: the first argument, else `AUTHARA_HELLO_ADDR`, else 127.0.0.1:8081.
fn listen_addr(arg: Option<String>, env: Option<String>) -> Result<SocketAddr, String> {
    let raw = arg
        .or(env)
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "8081".to_owned());
    let raw = raw.trim();
    if let Ok(port) = raw.parse::<u16>() {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    raw.parse::<SocketAddr>()
        .map_err(|_| format!("expected a port or an address like 127.0.0.1:8081, got {raw:?}"))
}

async fn hello() -> &'static str {
    "hello, world\n"
}

async fn stopped() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

fn main() -> ExitCode {
    // Like `authara`: no transparent huge pages for the allocator's regions.
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        eprintln!("authara-hello: could not opt out of transparent huge pages: {e}");
    }
    let addr = match listen_addr(
        std::env::args().nth(1),
        std::env::var("AUTHARA_HELLO_ADDR").ok(),
    ) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("authara-hello: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("authara-hello: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: std::io::Result<()> = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let app = Router::new().route("/hello", get(hello));
        axum::serve(listener, app)
            .with_graceful_shutdown(stopped())
            .await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("authara-hello: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_port_listens_on_loopback() {
        let a = listen_addr(Some("9000".into()), None).unwrap();
        assert_eq!(a, "127.0.0.1:9000".parse().unwrap());
    }

    #[test]
    fn the_argument_wins_over_the_environment() {
        let a = listen_addr(Some("127.0.0.1:9001".into()), Some("9002".into())).unwrap();
        assert_eq!(a.port(), 9001);
        let a = listen_addr(None, Some("9002".into())).unwrap();
        assert_eq!(a.port(), 9002);
        assert_eq!(listen_addr(None, None).unwrap().port(), 8081);
        assert!(listen_addr(Some("nope".into()), None).is_err());
    }
}

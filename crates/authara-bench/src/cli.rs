//! Command-line options and the small parsers behind them.

use clap::{Parser, ValueEnum};
use std::time::Duration;

/// Authara's benchmark suite. Builds the server in release mode, starts it on a fresh database,
/// seeds users directly through the store, drives HTTP/1.1 load over loopback and prints
/// requests/s, latency percentiles, errors and the server's memory, each also as a ratio to a
/// trivial "hello" server measured in the same run.
#[derive(Debug, Parser)]
#[command(name = "authara-bench", version)]
pub struct Args {
    /// Which backend(s) to benchmark.
    #[arg(long, value_enum, default_value_t = TargetArg::Sqlite)]
    pub target: TargetArg,
    /// Measured time per scenario (`10s`, `1m`, `500ms`).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Warm-up per scenario, before the measured window (same load, not counted).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Concurrent keep-alive connections for `user`, `refresh` and `hello` (and pgbench clients).
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Concurrent connections for the Argon2-bound scenarios, `login` and `signup`.
    #[arg(long, default_value_t = 16)]
    pub hash_connections: usize,
    /// Concurrent logins in the `flood` scenario.
    #[arg(long, default_value_t = 300)]
    pub flood_connections: usize,
    /// Users seeded (each with one session, one refresh token and one access token).
    #[arg(long, default_value_t = 10_000)]
    pub users: usize,
    /// How long the bench alone hashes with Argon2 (before and after the servers run).
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub hash_duration: Duration,
    /// Repeat the whole measurement (Argon2 and hello references, every backend on a fresh
    /// database and server, pgbench) this many times, 1 to 9, and report medians with their
    /// min–max; the checks use the medians.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=9))]
    pub runs: u8,
    /// Comma-separated scenarios to run.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "user,user-bearer,refresh,login,signup,flood,hello"
    )]
    pub scenarios: Vec<Scenario>,
    /// Print one JSON document instead of the tables.
    #[arg(long)]
    pub json: bool,
    /// Use the binaries already in the target directory instead of running `cargo build`.
    #[arg(long)]
    pub no_build: bool,
    /// Exit 1 when any target of the issue fails (by default only a broken run exits non-zero).
    #[arg(long)]
    pub strict: bool,
    /// Run `authara serve` under this command, e.g. "valgrind --tool=callgrind"
    /// (split on spaces; the server is stopped with SIGTERM so the tool can write its output).
    /// Figures measured this way describe the tool, not the server.
    #[arg(long, value_name = "COMMAND")]
    pub server_wrapper: Option<String>,
    /// PostgreSQL server for `--target postgres|both`; a fresh schema is created and dropped.
    #[arg(
        long,
        env = "AUTHARA_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres",
        hide_env_values = true
    )]
    pub postgres_url: String,
}

/// `--target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TargetArg {
    Sqlite,
    Postgres,
    Both,
}

impl TargetArg {
    /// The backends to run, in order.
    pub fn backends(self) -> Vec<Backend> {
        match self {
            Self::Sqlite => vec![Backend::Sqlite],
            Self::Postgres => vec![Backend::Postgres],
            Self::Both => vec![Backend::Sqlite, Backend::Postgres],
        }
    }
}

/// A storage backend under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Lower-case name, as printed.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// One scenario of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Scenario {
    /// `GET /auth/api/v1/user` with an access cookie.
    User,
    /// `GET /auth/api/v1/user` with `Authorization: Bearer` (a mobile client), no cookie.
    UserBearer,
    /// `POST /auth/api/v1/sessions/refresh` with rotation on every request.
    Refresh,
    /// `POST /auth/login` (Argon2-bound).
    Login,
    /// `POST /auth/signup` with fresh emails (Argon2-bound).
    Signup,
    /// 300 concurrent logins (right and wrong passwords, many client addresses, default rate
    /// limits) while `GET /auth/health` is probed.
    Flood,
    /// `GET /hello` on `authara-hello`: the ceiling.
    Hello,
}

impl Scenario {
    /// Lower-case name, as printed.
    pub fn name(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::UserBearer => "user-bearer",
            Self::Refresh => "refresh",
            Self::Login => "login",
            Self::Signup => "signup",
            Self::Flood => "flood",
            Self::Hello => "hello",
        }
    }
}

/// Parses Go-style durations: a sequence of `<number><unit>` with units `ms`, `s`, `m`, `h`
/// (`10s`, `1m30s`, `1.5s`, `250ms`), or a bare `0`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_len);
        if num.is_empty() {
            return Err(format!("{s:?}: expected a number at {rest:?}"));
        }
        let value: f64 = num
            .parse()
            .map_err(|_| format!("{s:?}: {num:?} is not a number"))?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, tail) = after.split_at(unit_len);
        let seconds = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("{s:?}: a unit is required (ms, s, m, h)")),
            other => return Err(format!("{s:?}: unknown unit {other:?} (use ms, s, m, h)")),
        };
        total += value * seconds;
        rest = tail;
    }
    if !total.is_finite() || total > 86_400.0 {
        return Err(format!("{s:?}: too long (at most 24h)"));
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        let d = |s| parse_duration(s).unwrap();
        assert_eq!(d("10s"), Duration::from_secs(10));
        assert_eq!(d("250ms"), Duration::from_millis(250));
        assert_eq!(d("1m30s"), Duration::from_secs(90));
        assert_eq!(d("1h"), Duration::from_secs(3600));
        assert_eq!(d("1.5s"), Duration::from_millis(1500));
        assert_eq!(d(" 2s "), Duration::from_secs(2));
        assert_eq!(d("0"), Duration::ZERO);
    }

    #[test]
    fn bad_durations_are_refused() {
        for s in ["", "10", "s", "10x", "1m30", "ten s", "25h", "1..2s"] {
            assert!(parse_duration(s).is_err(), "{s:?}");
        }
    }

    #[test]
    fn scenario_list_and_defaults_parse() {
        let a = Args::try_parse_from(["authara-bench", "--scenarios", "user,hello"]).unwrap();
        assert_eq!(a.scenarios, vec![Scenario::User, Scenario::Hello]);
        assert_eq!(a.target, TargetArg::Sqlite);
        assert_eq!(a.duration, Duration::from_secs(10));
        assert_eq!(a.connections, 64);
        let a = Args::try_parse_from(["authara-bench", "--target", "both", "--duration", "3s"])
            .unwrap();
        assert_eq!(
            a.target.backends(),
            vec![Backend::Sqlite, Backend::Postgres]
        );
        assert_eq!(a.scenarios.len(), 7);
        assert!(a.scenarios.contains(&Scenario::UserBearer));
        assert!(a.scenarios.contains(&Scenario::Flood));
        assert_eq!(a.flood_connections, 300);
        assert!(Args::try_parse_from(["authara-bench", "--scenarios", "nope"]).is_err());
    }

    #[test]
    fn runs_default_to_one_and_stay_within_one_to_nine() {
        let runs = |v: &str| Args::try_parse_from(["authara-bench", "--runs", v]).map(|a| a.runs);
        assert_eq!(Args::try_parse_from(["authara-bench"]).unwrap().runs, 1);
        assert_eq!(runs("3").unwrap(), 3);
        assert_eq!(runs("9").unwrap(), 9);
        for bad in ["0", "10", "-1", "x"] {
            assert!(runs(bad).is_err(), "{bad}");
        }
    }
}

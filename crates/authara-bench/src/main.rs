//! `authara-bench`: Authara's benchmark suite (issue 3). See `bench/README.md`.
//!
//! One run: build `authara` and `authara-hello` in release mode; measure Argon2 hashes/s in this
//! process alone; measure the hello ceiling; then per backend start the server on a fresh
//! database, seed users through the store, and drive the scenarios with a hyper load generator
//! over loopback; measure Argon2 again; print the tables, the ratios and PASS/FAIL per target.
//! With `--runs N` everything after the build is repeated N times; the report gives the medians
//! of the runs' figures and of their ratios (each computed against its own run's references).
//!
//! Exit status: 0 when the run completed (whether or not targets pass), 1 when something broke
//! (a build, the server, the database, or a scenario in which not one request succeeded), or with
//! `--strict` when a target fails; 2 for bad arguments.

mod aggregate;
mod argon;
mod cli;
mod flood;
mod load;
mod pg;
mod procs;
mod report;
mod seed;
mod stats;
mod target;

use anyhow::{bail, Context as _};
use authara_core::jwt::JwtKeys;
use clap::Parser as _;
use cli::{Args, Backend, Scenario};
use hyper::StatusCode;
use report::{Argon2Report, Machine, Report, Row, RunReport, Settings};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// What every phase needs.
#[derive(Clone)]
pub struct Ctx {
    pub authara: PathBuf,
    pub hello: PathBuf,
    pub postgres_url: String,
    pub keys: Arc<JwtKeys>,
    pub password_hash: Arc<str>,
    pub users: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub connections: usize,
    pub hash_connections: usize,
    pub flood_connections: usize,
    pub scenarios: Vec<Scenario>,
    /// Program and arguments `authara serve` runs under (empty: none).
    pub wrapper: Vec<String>,
    /// How long the bench alone hashes with Argon2, before and after the servers.
    pub hash_duration: Duration,
    /// Prefix of this run's progress lines: `run 2/3: ` with `--runs` > 1, else nothing.
    pub label: String,
}

impl Ctx {
    /// A progress line of this run.
    pub fn progress(&self, msg: &str) {
        progress(&format!("{}{msg}", self.label));
    }

    /// Whether `login` or `signup` runs (then the Argon2 reference is measured).
    fn hashing(&self) -> bool {
        self.scenarios.contains(&Scenario::Login) || self.scenarios.contains(&Scenario::Signup)
    }
}

/// `run 2/3: `, or nothing for a single run.
fn run_label(run: usize, runs: usize) -> String {
    if runs > 1 {
        format!("run {run}/{runs}: ")
    } else {
        String::new()
    }
}

/// Ctrl-C, seen by every phase: async ones through `guard`, threads through `flag`.
#[derive(Clone)]
pub struct Cancel {
    rx: watch::Receiver<bool>,
    flag: Arc<AtomicBool>,
}

impl Cancel {
    /// Listens for Ctrl-C (which, once listened for, no longer kills the process by itself).
    fn install() -> Self {
        let (tx, rx) = watch::channel(false);
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                f.store(true, Ordering::Relaxed);
                let _ = tx.send(true);
            }
        });
        Self { rx, flag }
    }

    fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// Runs `fut` unless Ctrl-C comes first; then `fut` is dropped (its child processes are
    /// killed by their guards) and this fails with "interrupted".
    pub async fn guard<T>(
        &self,
        fut: impl Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        let mut rx = self.rx.clone();
        tokio::select! {
            r = fut => r,
            _ = rx.wait_for(|c| *c) => bail!("interrupted"),
        }
    }
}

/// A progress line on stderr (stdout is for the report).
pub fn progress(msg: &str) {
    eprintln!("authara-bench: {msg}");
}

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "model name").then(|| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| format!("Linux {}", s.trim()))
        .unwrap_or_default();
    Machine {
        nproc: cores(),
        cpu_model,
        kernel,
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

async fn argon_rate(ctx: &Ctx, duration: Duration, cancel: &Cancel) -> anyhow::Result<f64> {
    let hash = ctx.password_hash.clone();
    let flag = cancel.flag.clone();
    let threads = cores();
    tokio::task::spawn_blocking(move || {
        argon::hashes_per_second(&hash, seed::PASSWORD, threads, duration, &flag)
    })
    .await
    .context("the Argon2 measurement failed")?
}

/// The ceiling: `authara-hello` under the same load settings as `user`.
async fn hello(ctx: &Ctx) -> anyhow::Result<Row> {
    let port = procs::free_port()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let dir = tempfile::Builder::new()
        .prefix("authara-bench-hello-")
        .tempdir()?;
    let log = dir.path().join("hello.log");
    let started = Instant::now();
    let mut child = procs::ChildGuard::spawn(
        "authara-hello",
        Command::new(&ctx.hello).arg(port.to_string()),
        Some(&log),
    )?;
    target::wait_ready(addr, "/hello", &mut child, started).await?;
    ctx.progress(&format!("[hello] {} connections", ctx.connections));
    let reset = procs::reset_peak(child.pid());
    let host = load::host_header(addr);
    let w = (0..ctx.connections)
        .map(|_| load::Get {
            host: host.clone(),
            path: "/hello",
            expect: StatusCode::OK,
        })
        .collect();
    let spec = load::LoadSpec {
        addr,
        warmup: ctx.warmup,
        duration: ctx.duration,
    };
    let result = load::run(spec, w).await?;
    child.ensure_running()?;
    let peak = procs::memory(child.pid())
        .ok()
        .filter(|_| reset)
        .map(|m| procs::mib(m.hwm_kib));
    let row = Row::new("hello", &result, peak);
    ctx.progress(&format!(
        "[hello] {:.0} req/s, p99 {} ms, {} errors",
        row.requests_per_s,
        report::fmt_ms(row.p99_ms),
        row.errors
    ));
    Ok(row)
}

/// The backends and the (sorted, deduplicated) scenarios, once the arguments make sense and
/// PostgreSQL answers if it is needed.
async fn check_args(args: &Args) -> anyhow::Result<(Vec<Backend>, Vec<Scenario>)> {
    let backends = args.target.backends();
    let mut scenarios = args.scenarios.clone();
    scenarios.sort();
    scenarios.dedup();
    if args.connections == 0
        || args.hash_connections == 0
        || args.flood_connections == 0
        || args.users == 0
    {
        bail!(
            "--connections, --hash-connections, --flood-connections and --users must be at least 1"
        );
    }
    if args.users < args.connections {
        bail!("--users must be at least --connections (each refresh connection owns sessions)");
    }
    if args.duration.is_zero() {
        bail!("--duration must be more than 0");
    }
    if backends.contains(&Backend::Postgres) {
        pg::check_loopback(&args.postgres_url)?;
        pg::ping(&args.postgres_url).await?;
    }
    Ok((backends, scenarios))
}

/// Builds (unless `no_build`) and finds `authara` and `authara-hello`.
fn binaries(no_build: bool) -> anyhow::Result<(PathBuf, PathBuf)> {
    let root = procs::workspace_root();
    let target_dir = procs::target_dir(&root).join("release");
    if !no_build {
        progress("cargo build --release -p authara --bin authara");
        procs::cargo_build(&root, "authara", "authara")?;
        progress("cargo build --release -p authara-bench --bin authara-hello");
        procs::cargo_build(&root, "authara-bench", "authara-hello")?;
    }
    let authara = target_dir.join("authara");
    let hello_bin = target_dir.join("authara-hello");
    for b in [&authara, &hello_bin] {
        if !b.is_file() {
            bail!("{} is missing (run without --no-build)", b.display());
        }
    }
    Ok((authara, hello_bin))
}

/// Argon2 hashes/s in the bench alone, or 0 when no scenario hashes.
async fn argon_reference(ctx: &Ctx, msg: &str, cancel: &Cancel) -> anyhow::Result<f64> {
    if !ctx.hashing() {
        return Ok(0.0);
    }
    ctx.progress(msg);
    let rate = argon_rate(ctx, ctx.hash_duration, cancel).await?;
    if cancel.is_cancelled() {
        bail!("interrupted");
    }
    Ok(rate)
}

/// One run: Argon2, hello, every backend (fresh database, fresh server, pgbench), Argon2 again,
/// so that its ratios are computed against references measured close in time. Ratios filled.
async fn measure(ctx: &Ctx, backends: &[Backend], cancel: &Cancel) -> anyhow::Result<RunReport> {
    let before = argon_reference(
        ctx,
        &format!(
            "Argon2 hashes/s in the bench alone ({} threads, {:.1} s)",
            cores(),
            ctx.hash_duration.as_secs_f64()
        ),
        cancel,
    )
    .await?;
    if cancel.is_cancelled() {
        bail!("interrupted");
    }
    let hello = if ctx.scenarios.contains(&Scenario::Hello) {
        Some(cancel.guard(hello(ctx)).await?)
    } else {
        None
    };
    let mut targets = Vec::new();
    for b in backends {
        targets.push(target::run(ctx, *b, cancel).await?);
    }
    let after = if ctx.hashing() {
        let msg = "Argon2 hashes/s again, after the servers are gone";
        Some(argon_reference(ctx, msg, cancel).await?)
    } else {
        None
    };
    let mut run = RunReport {
        hello,
        argon2: Argon2Report {
            params: "argon2id m=19456,t=2,p=1".into(),
            threads: cores(),
            before_hashes_per_s: before,
            after_hashes_per_s: after,
            hashes_per_s: after.map_or(before, |a| before.max(a)),
            spread: None,
        },
        targets,
    };
    run.fill_ratios();
    Ok(run)
}

fn notes(ctx: &Ctx, runs: usize) -> Vec<String> {
    let mut notes = Vec::new();
    if !ctx.wrapper.is_empty() {
        notes.push(format!(
            "the server ran under `{}`: these figures describe that tool, not the server",
            ctx.wrapper.join(" ")
        ));
    }
    notes.extend([
        "load generator and server share the machine's cores; hello is measured the same way, so ratios compare like with like".to_owned(),
        "errors count unexpected statuses and I/O errors over warm-up and measured window; latency and req/s count the measured window only".to_owned(),
    ]);
    if runs > 1 {
        notes.push(format!(
            "{runs} runs: each figure is the median of the runs' figures, each ratio the median of the runs' own ratios (not a ratio of medians); errors are totals over the runs"
        ));
    }
    if !procs::reset_peak(std::process::id()) {
        notes.push(
            "cannot write /proc/<pid>/clear_refs: peak RSS per scenario not available".into(),
        );
    }
    notes
}

fn settings(args: &Args, scenarios: &[Scenario]) -> Settings {
    Settings {
        duration_s: args.duration.as_secs_f64(),
        warmup_s: args.warmup.as_secs_f64(),
        connections: args.connections,
        hash_connections: args.hash_connections,
        users: args.users,
        scenarios: scenarios.iter().map(|s| s.name().to_owned()).collect(),
        runs: usize::from(args.runs),
    }
}

async fn run(args: Args) -> anyhow::Result<Report> {
    let cancel = Cancel::install();
    let (backends, scenarios) = check_args(&args).await?;
    let (authara, hello_bin) = binaries(args.no_build)?;

    progress("hashing the seed password (Argon2id, default parameters)");
    let password_hash: Arc<str> = argon::default_hash(seed::PASSWORD).await?.into();
    let ctx = Ctx {
        authara,
        hello: hello_bin,
        postgres_url: args.postgres_url.clone(),
        keys: Arc::new(seed::keys()?),
        password_hash,
        users: args.users,
        warmup: args.warmup,
        duration: args.duration,
        connections: args.connections,
        hash_connections: args.hash_connections,
        flood_connections: args.flood_connections,
        scenarios: scenarios.clone(),
        wrapper: args
            .server_wrapper
            .as_deref()
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        hash_duration: args.hash_duration,
        label: String::new(),
    };

    let total = usize::from(args.runs);
    let mut runs = Vec::with_capacity(total);
    for i in 1..=total {
        let run_ctx = Ctx {
            label: run_label(i, total),
            ..ctx.clone()
        };
        runs.push(measure(&run_ctx, &backends, &cancel).await?);
    }
    Report::from_runs(
        machine(),
        settings(&args, &scenarios),
        notes(&ctx, total),
        runs,
    )
}

/// A scenario in which nothing succeeded, in any run, means the setup is wrong, not that the
/// server is slow.
fn broken(report: &Report) -> Vec<String> {
    let total = report.runs.len();
    report
        .runs
        .iter()
        .enumerate()
        .flat_map(|(i, run)| {
            let label = run_label(i + 1, total);
            broken_rows(run)
                .into_iter()
                .map(move |msg| format!("{label}{msg}"))
        })
        .collect()
}

fn broken_rows(run: &RunReport) -> Vec<String> {
    let mut out = Vec::new();
    let rows = run.hello.iter().map(|r| ("hello", r)).chain(
        run.targets
            .iter()
            .flat_map(|t| t.rows.iter().map(move |r| (t.backend.as_str(), r))),
    );
    for (backend, r) in rows {
        if r.requests == 0 {
            out.push(format!(
                "{backend} {}: no request succeeded ({} errors)",
                r.scenario, r.errors
            ));
        }
    }
    out
}

fn main() -> ExitCode {
    let args = Args::parse();
    let json = args.json;
    let strict = args.strict;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("authara-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = match runtime.block_on(run(args)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("authara-bench: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("authara-bench: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", report::text(&report));
    }
    let broken = broken(&report);
    for b in &broken {
        eprintln!("authara-bench: broken: {b}");
    }
    if !broken.is_empty() || (strict && !report.all_pass()) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

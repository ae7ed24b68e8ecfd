//! The figures, the targets, and how both are printed (tables or one JSON document).

use crate::load::LoadResult;
use crate::pg::PgbenchResult;
use crate::stats::Spread;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One table row.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub scenario: String,
    pub connections: usize,
    pub requests_per_s: f64,
    /// Successful requests counted in the measured window.
    pub requests: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    /// Unexpected statuses plus I/O errors, warm-up included.
    pub errors: u64,
    /// `"401": 3`, `"io": 1`: what the errors were.
    pub error_detail: BTreeMap<String, u64>,
    /// Peak RSS of the server during the scenario (VmHWM after a reset), MiB.
    pub peak_rss_mib: Option<f64>,
    /// requests/s ÷ hello requests/s, same run.
    pub ratio_to_hello: Option<f64>,
    /// Min and max across runs (`--runs` > 1 only; the figures above are then medians).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spread: Option<RowSpread>,
}

/// A row's figures, min and max across runs.
#[derive(Debug, Clone, Serialize)]
pub struct RowSpread {
    pub requests_per_s: Option<Spread>,
    pub p50_ms: Option<Spread>,
    pub p99_ms: Option<Spread>,
    pub p999_ms: Option<Spread>,
    /// Errors of a single run (the row's `errors` is the total over all runs).
    pub errors: Option<Spread>,
    pub peak_rss_mib: Option<Spread>,
    pub ratio_to_hello: Option<Spread>,
}

impl Row {
    /// A row from a load result.
    pub fn new(scenario: &str, r: &LoadResult, peak_rss_mib: Option<f64>) -> Self {
        let mut error_detail: BTreeMap<String, u64> = r
            .bad_status
            .iter()
            .map(|(s, n)| (s.to_string(), *n))
            .collect();
        if r.io_errors > 0 {
            error_detail.insert("io".into(), r.io_errors);
        }
        Self {
            scenario: scenario.to_owned(),
            connections: r.connections,
            requests_per_s: r.rps(),
            requests: r.ok,
            p50_ms: r.quantile_ms(0.5),
            p99_ms: r.quantile_ms(0.99),
            p999_ms: r.quantile_ms(0.999),
            errors: r.errors(),
            error_detail,
            peak_rss_mib,
            ratio_to_hello: None,
            spread: None,
        }
    }
}

/// Everything measured for one backend.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TargetReport {
    pub backend: String,
    /// Spawn of `authara serve` to the first `200` from `/auth/health`.
    pub cold_start_ms: f64,
    /// VmRSS shortly after start, before any load.
    pub idle_rss_mib: f64,
    /// Time to seed the users.
    pub seed_s: f64,
    pub users: usize,
    pub rows: Vec<Row>,
    /// login/s ÷ Argon2 hashes/s.
    pub login_to_hashes: Option<f64>,
    /// signup/s ÷ Argon2 hashes/s (informative; signup hashes once per request too).
    pub signup_to_hashes: Option<f64>,
    /// The pgbench reference (PostgreSQL only).
    pub pgbench: Option<PgbenchResult>,
    /// refresh/s ÷ pgbench tps.
    pub refresh_to_pgbench: Option<f64>,
    /// Min and max across runs (`--runs` > 1 only; the figures above are then medians).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spread: Option<TargetSpread>,
}

/// A backend's figures, min and max across runs.
#[derive(Debug, Clone, Serialize)]
pub struct TargetSpread {
    pub cold_start_ms: Option<Spread>,
    pub idle_rss_mib: Option<Spread>,
    pub seed_s: Option<Spread>,
    pub login_to_hashes: Option<Spread>,
    pub signup_to_hashes: Option<Spread>,
    pub pgbench_tps: Option<Spread>,
    pub refresh_to_pgbench: Option<Spread>,
}

impl TargetReport {
    /// The row of `scenario`, if it ran.
    pub fn row(&self, scenario: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.scenario == scenario)
    }
}

/// The Argon2 limit measured by the bench alone.
#[derive(Debug, Clone, Serialize)]
pub struct Argon2Report {
    pub params: String,
    pub threads: usize,
    pub before_hashes_per_s: f64,
    pub after_hashes_per_s: Option<f64>,
    /// The larger of before and after: the figure ratios use. Interference from other work on
    /// the machine only slows hashing down, so the larger one is the better estimate of the limit.
    /// With `--runs` > 1, all three figures are medians of the per-run figures.
    pub hashes_per_s: f64,
    /// Min and max across runs (`--runs` > 1 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spread: Option<Argon2Spread>,
}

/// The Argon2 figures, min and max across runs.
#[derive(Debug, Clone, Serialize)]
pub struct Argon2Spread {
    pub before_hashes_per_s: Option<Spread>,
    pub after_hashes_per_s: Option<Spread>,
    pub hashes_per_s: Option<Spread>,
}

/// Which machine ran it.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu_model: String,
    pub kernel: String,
}

/// The run's settings.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub duration_s: f64,
    pub warmup_s: f64,
    pub connections: usize,
    pub hash_connections: usize,
    pub users: usize,
    pub scenarios: Vec<String>,
    /// `--runs` (omitted when 1): how many times everything was measured.
    #[serde(skip_serializing_if = "is_one")]
    pub runs: usize,
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

/// One of the targets, checked.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub backend: String,
    pub target: String,
    /// The value (a median with `--runs` > 1); `range`: its min–max across runs, same unit.
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<String>,
    pub pass: bool,
}

/// What one run measured: its references (hello, Argon2) and its backends.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub hello: Option<Row>,
    pub argon2: Argon2Report,
    pub targets: Vec<TargetReport>,
}

impl RunReport {
    /// Fills the ratios, against this run's own references.
    pub fn fill_ratios(&mut self) {
        let hello = self.hello.as_ref().map(|h| h.requests_per_s);
        let hashes = self.argon2.hashes_per_s;
        for t in &mut self.targets {
            for r in &mut t.rows {
                r.ratio_to_hello = hello.filter(|h| *h > 0.0).map(|h| r.requests_per_s / h);
            }
            let per_hash = |t: &TargetReport, s: &str| {
                t.row(s)
                    .filter(|_| hashes > 0.0)
                    .map(|r| r.requests_per_s / hashes)
            };
            t.login_to_hashes = per_hash(t, "login");
            t.signup_to_hashes = per_hash(t, "signup");
            t.refresh_to_pgbench = match (t.row("refresh"), &t.pgbench) {
                (Some(r), Some(p)) if p.tps > 0.0 => Some(r.requests_per_s / p.tps),
                _ => None,
            };
        }
        if let Some(h) = &mut self.hello {
            h.ratio_to_hello = Some(1.0);
        }
    }
}

/// The whole run: with `--runs` > 1, medians (and spreads) of the runs' figures and ratios.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub settings: Settings,
    pub hello: Option<Row>,
    pub argon2: Argon2Report,
    pub targets: Vec<TargetReport>,
    pub checks: Vec<Check>,
    pub notes: Vec<String>,
    /// Every run's own figures and ratios (`--runs` > 1 only).
    #[serde(skip_serializing_if = "single")]
    pub runs: Vec<RunReport>,
}

fn single(runs: &[RunReport]) -> bool {
    runs.len() <= 1
}

impl Report {
    /// The report of `runs` (ratios filled): medians across them, and the targets checked
    /// against the medians.
    pub fn from_runs(
        machine: Machine,
        settings: Settings,
        notes: Vec<String>,
        runs: Vec<RunReport>,
    ) -> anyhow::Result<Self> {
        let combined = crate::aggregate::combine(&runs)?;
        let checks = checks(&combined.targets);
        Ok(Self {
            machine,
            settings,
            hello: combined.hello,
            argon2: combined.argon2,
            targets: combined.targets,
            checks,
            notes,
            runs,
        })
    }

    /// Whether every target passed.
    pub fn all_pass(&self) -> bool {
        self.checks.iter().all(|c| c.pass)
    }
}

fn check(backend: &str, target: &str, value: String, pass: bool) -> Check {
    Check {
        backend: backend.to_owned(),
        target: target.to_owned(),
        value,
        range: None,
        pass,
    }
}

impl Check {
    /// Adds the min–max across runs, with the value's decimals (without its unit).
    fn ranged(mut self, spread: Option<Spread>, decimals: usize) -> Self {
        self.range = spread.map(|s| fmt_range(s, decimals));
        self
    }
}

/// The targets, for the figures that were measured.
fn checks(targets: &[TargetReport]) -> Vec<Check> {
    let mut out = Vec::new();
    for t in targets {
        let b = t.backend.as_str();
        let pg = b == "postgres";
        if let Some(u) = t.row("user") {
            out.extend(user_checks(b, u));
        }
        let ts = t.spread.as_ref();
        if let Some(r) = t.refresh_to_pgbench {
            out.push(
                check(
                    b,
                    "refresh ≥ 0.6 × pgbench tps",
                    format!("{r:.3}"),
                    r >= 0.6,
                )
                .ranged(ts.and_then(|s| s.refresh_to_pgbench), 3),
            );
        }
        if let Some(r) = t.login_to_hashes {
            out.push(
                check(
                    b,
                    "login ≥ 0.9 × Argon2 hashes/s",
                    format!("{r:.3}"),
                    r >= 0.9,
                )
                .ranged(ts.and_then(|s| s.login_to_hashes), 3),
            );
        }
        out.push(
            check(
                b,
                "idle RSS < 30 MiB",
                format!("{:.1} MiB", t.idle_rss_mib),
                t.idle_rss_mib < 30.0,
            )
            .ranged(ts.and_then(|s| s.idle_rss_mib), 1),
        );
        if !pg {
            out.push(
                check(
                    b,
                    "cold start < 200 ms (SQLite)",
                    format!("{:.1} ms", t.cold_start_ms),
                    t.cold_start_ms < 200.0,
                )
                .ranged(ts.and_then(|s| s.cold_start_ms), 1),
            );
        }
        out.extend(flood_checks(t));
        let errors: u64 = t.rows.iter().map(|r| r.errors).sum();
        out.push(check(b, "no errors", errors.to_string(), errors == 0));
    }
    out
}

/// The flood's targets (issue 7): peak RSS, health p99, only allowed statuses.
fn flood_checks(t: &TargetReport) -> Vec<Check> {
    let b = t.backend.as_str();
    let mut out = Vec::new();
    if let Some(f) = t.row(crate::flood::FLOOD_ROW) {
        let fs = f.spread.as_ref();
        if let Some(rss) = f.peak_rss_mib {
            out.push(
                check(
                    b,
                    "flood: peak RSS < 512 MiB",
                    format!("{rss:.1} MiB"),
                    rss < 512.0,
                )
                .ranged(fs.and_then(|s| s.peak_rss_mib), 1),
            );
        }
        out.push(check(
            b,
            &format!(
                "flood: only 2xx/303/422/429/503 at {} logins",
                f.connections
            ),
            fmt_errors(f),
            f.errors == 0,
        ));
    }
    if let Some(h) = t.row(crate::flood::HEALTH_ROW) {
        let hs = h.spread.as_ref();
        let p99 = h.p99_ms;
        out.push(
            check(
                b,
                "flood: /auth/health p99 < 1 s",
                p99.map_or_else(|| "no answer".to_owned(), |v| format!("{v:.3} ms")),
                p99.is_some_and(|v| v < 1000.0) && h.errors == 0,
            )
            .ranged(hs.and_then(|s| s.p99_ms), 3),
        );
    }
    out
}

/// The targets on the `user` row of backend `b`.
fn user_checks(b: &str, u: &Row) -> Vec<Check> {
    let mut out = Vec::new();
    let us = u.spread.as_ref();
    if let Some(ratio) = u.ratio_to_hello {
        let (min, label) = if b == "postgres" {
            (0.25, "user ≥ 0.25 × hello")
        } else {
            (0.5, "user ≥ 0.5 × hello")
        };
        out.push(
            check(b, label, format!("{ratio:.3}"), ratio >= min)
                .ranged(us.and_then(|s| s.ratio_to_hello), 3),
        );
    }
    if let Some(p99) = u.p99_ms {
        out.push(
            check(
                b,
                &format!("user p99 < 10 ms at {} connections", u.connections),
                format!("{p99:.3} ms"),
                p99 < 10.0,
            )
            .ranged(us.and_then(|s| s.p99_ms), 3),
        );
    }
    if let Some(rss) = u.peak_rss_mib {
        out.push(
            check(
                b,
                "RSS under /user load < 100 MiB",
                format!("{rss:.1} MiB"),
                rss < 100.0,
            )
            .ranged(us.and_then(|s| s.peak_rss_mib), 1),
        );
    }
    out
}

/// `0.830–1.040`.
fn fmt_range(s: Spread, decimals: usize) -> String {
    format!("{:.decimals$}–{:.decimals$}", s.min, s.max)
}

/// `value`, followed by ` (min–max)` when there is a spread.
fn with_spread(value: String, spread: Option<Spread>, decimals: usize) -> String {
    match spread {
        Some(s) => format!("{value} ({})", fmt_range(s, decimals)),
        None => value,
    }
}

/// `1.234`, or `-` when absent.
pub fn fmt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"))
}

fn fmt_opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.decimals$}"))
}

/// Error count with what they were: `3 (401×2, io×1)`.
fn fmt_errors(r: &Row) -> String {
    if r.errors == 0 {
        return "0".into();
    }
    let detail: Vec<String> = r
        .error_detail
        .iter()
        .map(|(k, n)| format!("{k}×{n}"))
        .collect();
    format!("{} ({})", r.errors, detail.join(", "))
}

const HEADERS: [&str; 9] = [
    "scenario",
    "conns",
    "req/s",
    "p50 ms",
    "p99 ms",
    "p99.9 ms",
    "errors",
    "peak RSS MiB",
    "÷ hello",
];

/// A row's cells; with a spread, figures get a ` (min–max)` suffix (errors are totals).
fn cells(r: &Row) -> [String; 9] {
    let sp = r.spread.as_ref();
    let ms = |v: Option<f64>, s: Option<Spread>| with_spread(fmt_ms(v), s, 3);
    [
        r.scenario.clone(),
        r.connections.to_string(),
        with_spread(
            format!("{:.0}", r.requests_per_s),
            sp.and_then(|s| s.requests_per_s),
            0,
        ),
        ms(r.p50_ms, sp.and_then(|s| s.p50_ms)),
        ms(r.p99_ms, sp.and_then(|s| s.p99_ms)),
        ms(r.p999_ms, sp.and_then(|s| s.p999_ms)),
        fmt_errors(r),
        with_spread(
            fmt_opt(r.peak_rss_mib, 1),
            sp.and_then(|s| s.peak_rss_mib),
            1,
        ),
        with_spread(
            fmt_opt(r.ratio_to_hello, 3),
            sp.and_then(|s| s.ratio_to_hello),
            3,
        ),
    ]
}

/// A plain-text table with right-aligned numbers.
fn table(rows: &[&Row]) -> String {
    let all: Vec<[String; 9]> = rows.iter().map(|r| cells(r)).collect();
    let mut widths = HEADERS.map(|h| h.chars().count());
    for row in &all {
        for (w, c) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cols: &[String]| {
        let mut s = String::new();
        for (i, (c, w)) in cols.iter().zip(widths.iter()).enumerate() {
            let pad = w.saturating_sub(c.chars().count());
            if i == 0 {
                s.push_str(c);
                s.push_str(&" ".repeat(pad));
            } else {
                s.push_str("  ");
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = line(&HEADERS.map(str::to_owned));
    let total: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
    out.push_str(&"-".repeat(total));
    out.push('\n');
    for row in &all {
        out.push_str(&line(row));
    }
    out
}

/// The human-readable report.
pub fn text(r: &Report) -> String {
    let mut s = String::new();
    let m = &r.machine;
    let _ = writeln!(
        s,
        "machine: {} cores (nproc), {}, {}",
        m.nproc, m.cpu_model, m.kernel
    );
    let st = &r.settings;
    let _ = writeln!(
        s,
        "settings: {:.1}s measured after {:.1}s warm-up per scenario; {} connections ({} for login/signup); {} seeded users",
        st.duration_s, st.warmup_s, st.connections, st.hash_connections, st.users
    );
    if st.runs > 1 {
        let _ = writeln!(
            s,
            "runs: {}, each with its own hello and Argon2 references, fresh database and server; figures are medians (min–max across runs), ratios medians of the per-run ratios, errors totals over all runs",
            st.runs
        );
    }
    s.push_str(&argon2_text(&r.argon2));
    if let Some(h) = &r.hello {
        let _ = writeln!(s, "\nceiling: authara-hello GET /hello");
        s.push_str(&table(&[h]));
    }
    for t in &r.targets {
        s.push_str(&target_text(t));
    }
    if !r.checks.is_empty() {
        let _ = writeln!(s, "\ntargets (issue 3)");
        for c in &r.checks {
            let value = match &c.range {
                Some(range) => format!("{} ({range})", c.value),
                None => c.value.clone(),
            };
            let _ = writeln!(
                s,
                "  {}  {:<9} {:<40} {}",
                if c.pass { "PASS" } else { "FAIL" },
                c.backend,
                c.target,
                value
            );
        }
    }
    for n in &r.notes {
        let _ = writeln!(s, "note: {n}");
    }
    s
}

/// The Argon2 line (nothing when no scenario hashes).
fn argon2_text(a: &Argon2Report) -> String {
    if a.hashes_per_s <= 0.0 {
        return String::new();
    }
    let sp = a.spread.as_ref();
    format!(
        "{} in the bench alone, {} threads: {} (before {}, after {})\n",
        a.params,
        a.threads,
        with_spread(
            format!("{:.1} hashes/s", a.hashes_per_s),
            sp.and_then(|s| s.hashes_per_s),
            1
        ),
        with_spread(
            format!("{:.1}", a.before_hashes_per_s),
            sp.and_then(|s| s.before_hashes_per_s),
            1
        ),
        with_spread(
            fmt_opt(a.after_hashes_per_s, 1),
            sp.and_then(|s| s.after_hashes_per_s),
            1
        ),
    )
}

/// One backend: its table and the lines below it.
fn target_text(t: &TargetReport) -> String {
    let mut s = String::new();
    let sp = t.spread.as_ref();
    let _ = writeln!(s, "\n{}", t.backend);
    let rows: Vec<&Row> = t.rows.iter().collect();
    s.push_str(&table(&rows));
    let _ = writeln!(
        s,
        "cold start (spawn → first 200 from /auth/health): {}",
        with_spread(
            format!("{:.1} ms", t.cold_start_ms),
            sp.and_then(|s| s.cold_start_ms),
            1
        )
    );
    let _ = writeln!(
        s,
        "idle RSS: {}",
        with_spread(
            format!("{:.1} MiB", t.idle_rss_mib),
            sp.and_then(|s| s.idle_rss_mib),
            1
        )
    );
    let _ = writeln!(
        s,
        "seeded {} users in {}",
        t.users,
        with_spread(format!("{:.1} s", t.seed_s), sp.and_then(|s| s.seed_s), 1)
    );
    if let Some(l) = t.login_to_hashes {
        let _ = writeln!(
            s,
            "login/s ÷ Argon2 hashes/s: {}{}",
            with_spread(format!("{l:.3}"), sp.and_then(|s| s.login_to_hashes), 3),
            t.signup_to_hashes
                .map(|v| format!(
                    "   (signup/s ÷ hashes/s: {})",
                    with_spread(format!("{v:.3}"), sp.and_then(|s| s.signup_to_hashes), 3)
                ))
                .unwrap_or_default()
        );
    }
    if let Some(p) = &t.pgbench {
        let _ = writeln!(
            s,
            "pgbench (refresh-like 2-statement write transaction, {} clients, -j 2, {} s): {} tps; refresh/s ÷ pgbench tps: {}",
            p.clients,
            p.seconds,
            with_spread(format!("{:.1}", p.tps), sp.and_then(|s| s.pgbench_tps), 1),
            with_spread(
                fmt_opt(t.refresh_to_pgbench, 3),
                sp.and_then(|s| s.refresh_to_pgbench),
                3
            )
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(scenario: &str, rps: f64, errors: u64) -> Row {
        Row {
            scenario: scenario.into(),
            connections: 64,
            requests_per_s: rps,
            requests: 1,
            p50_ms: Some(0.5),
            p99_ms: Some(2.0),
            p999_ms: Some(4.0),
            errors,
            error_detail: BTreeMap::new(),
            peak_rss_mib: Some(20.0),
            ratio_to_hello: None,
            spread: None,
        }
    }

    /// One SQLite run against hello at 1000 req/s and 100 hashes/s, ratios filled.
    fn run(user_rps: f64, login_rps: f64, login_errors: u64) -> RunReport {
        let mut r = RunReport {
            hello: Some(row("hello", 1000.0, 0)),
            argon2: Argon2Report {
                params: "m=19456,t=2,p=1".into(),
                threads: 2,
                before_hashes_per_s: 100.0,
                after_hashes_per_s: None,
                hashes_per_s: 100.0,
                spread: None,
            },
            targets: vec![TargetReport {
                backend: "sqlite".into(),
                cold_start_ms: 50.0,
                idle_rss_mib: 10.0,
                seed_s: 1.0,
                users: 1,
                rows: vec![
                    row("user", user_rps, 0),
                    row("login", login_rps, login_errors),
                ],
                ..TargetReport::default()
            }],
        };
        r.fill_ratios();
        r
    }

    fn report(runs: Vec<RunReport>) -> Report {
        let settings = Settings {
            duration_s: 1.0,
            warmup_s: 0.0,
            connections: 64,
            hash_connections: 16,
            users: 1,
            scenarios: vec![],
            runs: runs.len(),
        };
        let machine = Machine {
            nproc: 2,
            cpu_model: "x".into(),
            kernel: "k".into(),
        };
        Report::from_runs(machine, settings, vec![], runs).unwrap()
    }

    fn get<'a>(r: &'a Report, name: &str) -> &'a Check {
        r.checks
            .iter()
            .find(|c| c.target.starts_with(name))
            .unwrap()
    }

    #[test]
    fn latencies_print_with_three_decimals() {
        assert_eq!(fmt_ms(Some(1.23456)), "1.235");
        assert_eq!(fmt_ms(Some(0.0)), "0.000");
        assert_eq!(fmt_ms(None), "-");
    }

    #[test]
    fn ratios_and_targets_are_computed() {
        let r = report(vec![run(600.0, 95.0, 2)]);
        let t = &r.targets[0];
        assert_eq!(t.rows[0].ratio_to_hello, Some(0.6));
        assert_eq!(t.login_to_hashes, Some(0.95));
        assert!(get(&r, "user ≥ 0.5").pass);
        assert!(get(&r, "login").pass);
        assert!(!get(&r, "no errors").pass);
        assert!(!r.all_pass());
        let text = text(&r);
        assert!(text.contains("FAIL  sqlite"), "{text}");
        assert!(text.contains("0.600"), "{text}");
    }

    #[test]
    fn a_single_run_adds_no_spread_anywhere() {
        let r = report(vec![run(600.0, 95.0, 0)]);
        let json = serde_json::to_value(&r).unwrap();
        let s = json.to_string();
        assert!(!s.contains("spread") && !s.contains("range"), "{s}");
        assert!(json.get("runs").is_none());
        assert!(json["settings"].get("runs").is_none());
        let text = text(&r);
        assert!(!text.contains("runs:") && !text.contains('–'), "{text}");
    }

    #[test]
    fn checks_use_the_medians_and_show_the_spread() {
        // user ÷ hello per run: 0.45 (would fail), 0.55, 0.60: median 0.55 passes.
        // login ÷ hashes per run: 0.95, 0.85, 0.80: median 0.85 fails.
        let r = report(vec![
            run(450.0, 95.0, 0),
            run(550.0, 85.0, 1),
            run(600.0, 80.0, 0),
        ]);
        let user = get(&r, "user ≥ 0.5");
        assert!(user.pass);
        assert_eq!(user.value, "0.550");
        assert_eq!(user.range.as_deref(), Some("0.450–0.600"));
        let login = get(&r, "login");
        assert!(!login.pass);
        assert_eq!(login.value, "0.850");
        assert_eq!(get(&r, "no errors").value, "1");
        let text = text(&r);
        assert!(text.contains("runs: 3"), "{text}");
        assert!(text.contains("0.550 (0.450–0.600)"), "{text}");
        assert!(text.contains("550 (450–600)"), "{text}");
        assert!(
            text.contains("login/s ÷ Argon2 hashes/s: 0.850 (0.800–0.950)"),
            "{text}"
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["settings"]["runs"], 3);
        assert_eq!(json["runs"].as_array().map(Vec::len), Some(3));
        let spread = &json["targets"][0]["rows"][0]["spread"]["ratio_to_hello"];
        assert_eq!(spread["min"], 0.45);
        assert_eq!(spread["max"], 0.6);
        assert_eq!(json["targets"][0]["spread"]["login_to_hashes"]["max"], 0.95);
    }

    #[test]
    fn the_flood_passes_only_small_fast_and_with_allowed_statuses() {
        let flood_run = |rss: f64, health_p99: f64, bad: u64| {
            let mut r = run(600.0, 95.0, 0);
            let mut f = row(crate::flood::FLOOD_ROW, 150.0, bad);
            f.connections = 300;
            f.peak_rss_mib = Some(rss);
            if bad > 0 {
                f.error_detail.insert("500".into(), bad);
            }
            let mut h = row(crate::flood::HEALTH_ROW, 50.0, 0);
            h.p99_ms = Some(health_p99);
            h.peak_rss_mib = None;
            r.targets[0].rows.extend([f, h]);
            r
        };
        let ok = report(vec![flood_run(120.0, 40.0, 0)]);
        assert!(get(&ok, "flood: peak RSS").pass);
        assert!(get(&ok, "flood: only").pass);
        assert_eq!(
            get(&ok, "flood: only").target,
            "flood: only 2xx/303/422/429/503 at 300 logins"
        );
        assert!(get(&ok, "flood: /auth/health p99").pass);
        assert!(ok.all_pass());

        let bad = report(vec![flood_run(600.0, 1500.0, 3)]);
        assert!(!get(&bad, "flood: peak RSS").pass);
        assert!(!get(&bad, "flood: only").pass);
        assert_eq!(get(&bad, "flood: only").value, "3 (500×3)");
        assert!(!get(&bad, "flood: /auth/health p99").pass);
        assert!(!get(&bad, "no errors").pass);
    }
}

//! The figures, the targets, and how both are printed (tables or one JSON document).

use crate::load::LoadResult;
use crate::pg::PgbenchResult;
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
        }
    }
}

/// Everything measured for one backend.
#[derive(Debug, Clone, Serialize)]
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
    pub hashes_per_s: f64,
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
}

/// One of the targets, checked.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub backend: String,
    pub target: String,
    pub value: String,
    pub pass: bool,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub settings: Settings,
    pub hello: Option<Row>,
    pub argon2: Argon2Report,
    pub targets: Vec<TargetReport>,
    pub checks: Vec<Check>,
    pub notes: Vec<String>,
}

impl Report {
    /// Fills the ratios and evaluates the targets.
    pub fn finish(&mut self) {
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
        self.checks = checks(&self.targets);
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
        pass,
    }
}

/// The targets, for the figures that were measured.
fn checks(targets: &[TargetReport]) -> Vec<Check> {
    let mut out = Vec::new();
    for t in targets {
        let b = t.backend.as_str();
        let pg = b == "postgres";
        if let Some(u) = t.row("user") {
            if let Some(ratio) = u.ratio_to_hello {
                let (min, label) = if pg {
                    (0.25, "user ≥ 0.25 × hello")
                } else {
                    (0.5, "user ≥ 0.5 × hello")
                };
                out.push(check(b, label, format!("{ratio:.3}"), ratio >= min));
            }
            if let Some(p99) = u.p99_ms {
                out.push(check(
                    b,
                    &format!("user p99 < 10 ms at {} connections", u.connections),
                    format!("{p99:.3} ms"),
                    p99 < 10.0,
                ));
            }
            if let Some(rss) = u.peak_rss_mib {
                out.push(check(
                    b,
                    "RSS under /user load < 100 MiB",
                    format!("{rss:.1} MiB"),
                    rss < 100.0,
                ));
            }
        }
        if let Some(r) = t.refresh_to_pgbench {
            out.push(check(
                b,
                "refresh ≥ 0.6 × pgbench tps",
                format!("{r:.3}"),
                r >= 0.6,
            ));
        }
        if let Some(r) = t.login_to_hashes {
            out.push(check(
                b,
                "login ≥ 0.9 × Argon2 hashes/s",
                format!("{r:.3}"),
                r >= 0.9,
            ));
        }
        out.push(check(
            b,
            "idle RSS < 30 MiB",
            format!("{:.1} MiB", t.idle_rss_mib),
            t.idle_rss_mib < 30.0,
        ));
        if !pg {
            out.push(check(
                b,
                "cold start < 200 ms (SQLite)",
                format!("{:.1} ms", t.cold_start_ms),
                t.cold_start_ms < 200.0,
            ));
        }
        let errors: u64 = t.rows.iter().map(|r| r.errors).sum();
        out.push(check(b, "no errors", errors.to_string(), errors == 0));
    }
    out
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

fn cells(r: &Row) -> [String; 9] {
    [
        r.scenario.clone(),
        r.connections.to_string(),
        format!("{:.0}", r.requests_per_s),
        fmt_ms(r.p50_ms),
        fmt_ms(r.p99_ms),
        fmt_ms(r.p999_ms),
        fmt_errors(r),
        fmt_opt(r.peak_rss_mib, 1),
        fmt_opt(r.ratio_to_hello, 3),
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
    let a = &r.argon2;
    if a.hashes_per_s > 0.0 {
        let _ = writeln!(
            s,
            "{} in the bench alone, {} threads: {:.1} hashes/s (before {:.1}, after {})",
            a.params,
            a.threads,
            a.hashes_per_s,
            a.before_hashes_per_s,
            fmt_opt(a.after_hashes_per_s, 1)
        );
    }
    if let Some(h) = &r.hello {
        let _ = writeln!(s, "\nceiling: authara-hello GET /hello");
        s.push_str(&table(&[h]));
    }
    for t in &r.targets {
        let _ = writeln!(s, "\n{}", t.backend);
        let rows: Vec<&Row> = t.rows.iter().collect();
        s.push_str(&table(&rows));
        let _ = writeln!(
            s,
            "cold start (spawn → first 200 from /auth/health): {:.1} ms",
            t.cold_start_ms
        );
        let _ = writeln!(s, "idle RSS: {:.1} MiB", t.idle_rss_mib);
        let _ = writeln!(s, "seeded {} users in {:.1} s", t.users, t.seed_s);
        if let Some(l) = t.login_to_hashes {
            let _ = writeln!(
                s,
                "login/s ÷ Argon2 hashes/s: {l:.3}{}",
                t.signup_to_hashes
                    .map(|v| format!("   (signup/s ÷ hashes/s: {v:.3})"))
                    .unwrap_or_default()
            );
        }
        if let Some(p) = &t.pgbench {
            let _ = writeln!(
                s,
                "pgbench (refresh-like 2-statement write transaction, {} clients, -j 2, {} s): {:.1} tps; refresh/s ÷ pgbench tps: {}",
                p.clients,
                p.seconds,
                p.tps,
                fmt_opt(t.refresh_to_pgbench, 3)
            );
        }
    }
    if !r.checks.is_empty() {
        let _ = writeln!(s, "\ntargets (issue 3)");
        for c in &r.checks {
            let _ = writeln!(
                s,
                "  {}  {:<9} {:<40} {}",
                if c.pass { "PASS" } else { "FAIL" },
                c.backend,
                c.target,
                c.value
            );
        }
    }
    for n in &r.notes {
        let _ = writeln!(s, "note: {n}");
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
        }
    }

    #[test]
    fn latencies_print_with_three_decimals() {
        assert_eq!(fmt_ms(Some(1.23456)), "1.235");
        assert_eq!(fmt_ms(Some(0.0)), "0.000");
        assert_eq!(fmt_ms(None), "-");
    }

    #[test]
    fn ratios_and_targets_are_computed() {
        let mut r = Report {
            machine: Machine {
                nproc: 2,
                cpu_model: "x".into(),
                kernel: "k".into(),
            },
            settings: Settings {
                duration_s: 1.0,
                warmup_s: 0.0,
                connections: 64,
                hash_connections: 16,
                users: 1,
                scenarios: vec![],
            },
            hello: Some(row("hello", 1000.0, 0)),
            argon2: Argon2Report {
                params: "m=19456,t=2,p=1".into(),
                threads: 2,
                before_hashes_per_s: 100.0,
                after_hashes_per_s: None,
                hashes_per_s: 100.0,
            },
            targets: vec![TargetReport {
                backend: "sqlite".into(),
                cold_start_ms: 50.0,
                idle_rss_mib: 10.0,
                seed_s: 1.0,
                users: 1,
                rows: vec![row("user", 600.0, 0), row("login", 95.0, 2)],
                login_to_hashes: None,
                signup_to_hashes: None,
                pgbench: None,
                refresh_to_pgbench: None,
            }],
            checks: vec![],
            notes: vec![],
        };
        r.finish();
        let t = &r.targets[0];
        assert_eq!(t.rows[0].ratio_to_hello, Some(0.6));
        assert_eq!(t.login_to_hashes, Some(0.95));
        let get = |name: &str| {
            r.checks
                .iter()
                .find(|c| c.target.starts_with(name))
                .unwrap()
        };
        assert!(get("user ≥ 0.5").pass);
        assert!(get("login").pass);
        assert!(!get("no errors").pass);
        assert!(!r.all_pass());
        let text = text(&r);
        assert!(text.contains("FAIL  sqlite"), "{text}");
        assert!(text.contains("0.600"), "{text}");
    }
}

//! `--runs N`: one report from N runs. Every figure and every ratio is the median of the runs'
//! own values (a ratio is computed inside each run, against that run's references, and only then
//! summarised: the median of the ratios, not the ratio of the medians); errors are totals. With
//! more than one run, each figure also gets its min and max (`spread`).

use crate::pg::PgbenchResult;
use crate::report::{
    Argon2Report, Argon2Spread, Row, RowSpread, RunReport, TargetReport, TargetSpread,
};
use crate::stats::{summarize_by, Spread, Summary};
use anyhow::Context as _;
use std::collections::BTreeMap;

/// The runs' figures, summarised.
#[derive(Debug)]
pub struct Combined {
    pub hello: Option<Row>,
    pub argon2: Argon2Report,
    pub targets: Vec<TargetReport>,
}

/// Summarises `runs` (their ratios already filled). Backends and scenarios are those of the
/// first run; every run measures the same ones.
pub fn combine(runs: &[RunReport]) -> anyhow::Result<Combined> {
    let first = runs.first().context("no run to report")?;
    let hellos: Vec<&Row> = runs.iter().filter_map(|r| r.hello.as_ref()).collect();
    let argons: Vec<&Argon2Report> = runs.iter().map(|r| &r.argon2).collect();
    let targets = first
        .targets
        .iter()
        .filter_map(|t| {
            let same: Vec<&TargetReport> = runs
                .iter()
                .filter_map(|r| r.targets.iter().find(|o| o.backend == t.backend))
                .collect();
            merge_target(&same)
        })
        .collect();
    Ok(Combined {
        hello: merge_row(&hellos),
        argon2: merge_argon2(&argons).context("no Argon2 figures")?,
        targets,
    })
}

fn median(s: Option<Summary>) -> Option<f64> {
    s.map(|s| s.median)
}

fn spread(s: Option<Summary>) -> Option<Spread> {
    s.map(Summary::spread)
}

/// One scenario's rows, one per run.
fn merge_row(rows: &[&Row]) -> Option<Row> {
    let first = *rows.first()?;
    let rps = summarize_by(rows, |r| Some(r.requests_per_s));
    let requests = summarize_by(rows, |r| Some(r.requests as f64));
    let p50 = summarize_by(rows, |r| r.p50_ms);
    let p99 = summarize_by(rows, |r| r.p99_ms);
    let p999 = summarize_by(rows, |r| r.p999_ms);
    let errors = summarize_by(rows, |r| Some(r.errors as f64));
    let peak = summarize_by(rows, |r| r.peak_rss_mib);
    let ratio = summarize_by(rows, |r| r.ratio_to_hello);
    Some(Row {
        scenario: first.scenario.clone(),
        connections: first.connections,
        requests_per_s: median(rps).unwrap_or(0.0),
        requests: median(requests).map_or(0, |m| m.round() as u64),
        p50_ms: median(p50),
        p99_ms: median(p99),
        p999_ms: median(p999),
        errors: rows.iter().map(|r| r.errors).sum(),
        error_detail: total_errors(rows),
        peak_rss_mib: median(peak),
        ratio_to_hello: median(ratio),
        spread: (rows.len() > 1).then(|| RowSpread {
            requests_per_s: spread(rps),
            p50_ms: spread(p50),
            p99_ms: spread(p99),
            p999_ms: spread(p999),
            errors: spread(errors),
            peak_rss_mib: spread(peak),
            ratio_to_hello: spread(ratio),
        }),
    })
}

/// What the errors were, summed over the runs.
fn total_errors(rows: &[&Row]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (k, n) in rows.iter().flat_map(|r| &r.error_detail) {
        *out.entry(k.clone()).or_default() += n;
    }
    out
}

/// One backend's reports, one per run.
fn merge_target(ts: &[&TargetReport]) -> Option<TargetReport> {
    let first = *ts.first()?;
    let cold = summarize_by(ts, |t| Some(t.cold_start_ms));
    let idle = summarize_by(ts, |t| Some(t.idle_rss_mib));
    let seed = summarize_by(ts, |t| Some(t.seed_s));
    let login = summarize_by(ts, |t| t.login_to_hashes);
    let signup = summarize_by(ts, |t| t.signup_to_hashes);
    let tps = summarize_by(ts, |t| t.pgbench.as_ref().map(|p| p.tps));
    let refresh = summarize_by(ts, |t| t.refresh_to_pgbench);
    let rows = first
        .rows
        .iter()
        .filter_map(|r| {
            let same: Vec<&Row> = ts.iter().filter_map(|t| t.row(&r.scenario)).collect();
            merge_row(&same)
        })
        .collect();
    Some(TargetReport {
        backend: first.backend.clone(),
        cold_start_ms: median(cold).unwrap_or(0.0),
        idle_rss_mib: median(idle).unwrap_or(0.0),
        seed_s: median(seed).unwrap_or(0.0),
        users: first.users,
        rows,
        login_to_hashes: median(login),
        signup_to_hashes: median(signup),
        pgbench: first.pgbench.clone().map(|p| PgbenchResult {
            tps: median(tps).unwrap_or(p.tps),
            ..p
        }),
        refresh_to_pgbench: median(refresh),
        spread: (ts.len() > 1).then(|| TargetSpread {
            cold_start_ms: spread(cold),
            idle_rss_mib: spread(idle),
            seed_s: spread(seed),
            login_to_hashes: spread(login),
            signup_to_hashes: spread(signup),
            pgbench_tps: spread(tps),
            refresh_to_pgbench: spread(refresh),
        }),
    })
}

/// The Argon2 references, one per run.
fn merge_argon2(argons: &[&Argon2Report]) -> Option<Argon2Report> {
    let first = *argons.first()?;
    let before = summarize_by(argons, |a| Some(a.before_hashes_per_s));
    let after = summarize_by(argons, |a| a.after_hashes_per_s);
    let hashes = summarize_by(argons, |a| Some(a.hashes_per_s));
    Some(Argon2Report {
        params: first.params.clone(),
        threads: first.threads,
        before_hashes_per_s: median(before).unwrap_or(0.0),
        after_hashes_per_s: median(after),
        hashes_per_s: median(hashes).unwrap_or(0.0),
        spread: (argons.len() > 1).then(|| Argon2Spread {
            before_hashes_per_s: spread(before),
            after_hashes_per_s: spread(after),
            hashes_per_s: spread(hashes),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(scenario: &str, rps: f64, errors: u64) -> Row {
        let mut error_detail = BTreeMap::new();
        if errors > 0 {
            error_detail.insert("io".to_owned(), errors);
        }
        Row {
            scenario: scenario.into(),
            connections: 16,
            requests_per_s: rps,
            requests: rps as u64,
            p50_ms: Some(rps / 100.0),
            p99_ms: Some(rps / 10.0),
            p999_ms: None,
            errors,
            error_detail,
            peak_rss_mib: Some(50.0),
            ratio_to_hello: None,
            spread: None,
        }
    }

    /// One run: hello at `hello` req/s, Argon2 at `hashes`/s, login at `login`/s.
    fn run(hello: f64, hashes: f64, login: f64, errors: u64) -> RunReport {
        let mut r = RunReport {
            hello: Some(row("hello", hello, 0)),
            argon2: Argon2Report {
                params: "p".into(),
                threads: 2,
                before_hashes_per_s: hashes,
                after_hashes_per_s: Some(hashes - 1.0),
                hashes_per_s: hashes,
                spread: None,
            },
            targets: vec![TargetReport {
                backend: "sqlite".into(),
                cold_start_ms: login / 10.0,
                idle_rss_mib: 9.0,
                seed_s: 1.0,
                users: 10,
                rows: vec![row("login", login, errors)],
                ..TargetReport::default()
            }],
        };
        r.fill_ratios();
        r
    }

    #[test]
    fn one_run_is_reported_as_it_is() {
        let c = combine(&[run(1000.0, 100.0, 90.0, 2)]).unwrap();
        let t = &c.targets[0];
        assert_eq!(t.login_to_hashes, Some(0.9));
        assert!(t.spread.is_none() && t.rows[0].spread.is_none());
        assert!(c.argon2.spread.is_none());
        assert_eq!(c.argon2.after_hashes_per_s, Some(99.0));
        assert_eq!(t.rows[0].requests, 90);
        assert_eq!(t.rows[0].errors, 2);
        assert_eq!(c.hello.unwrap().ratio_to_hello, Some(1.0));
    }

    #[test]
    fn ratios_are_medians_of_per_run_ratios_not_ratios_of_medians() {
        // Per run: 80/100 = 0.8, 100/125 = 0.8, 120/80 = 1.5; median 0.8. The ratio of the
        // medians (100 / 100) would be 1.0.
        let runs = [
            run(1000.0, 100.0, 80.0, 0),
            run(1000.0, 125.0, 100.0, 0),
            run(1000.0, 80.0, 120.0, 0),
        ];
        let c = combine(&runs).unwrap();
        let t = &c.targets[0];
        assert_eq!(t.login_to_hashes, Some(0.8));
        let s = t.spread.as_ref().unwrap();
        assert_eq!(s.login_to_hashes, Some(Spread { min: 0.8, max: 1.5 }));
        assert_eq!(c.argon2.hashes_per_s, 100.0);
        assert_eq!(
            c.argon2.spread.as_ref().unwrap().hashes_per_s,
            Some(Spread {
                min: 80.0,
                max: 125.0
            })
        );
        let login = &t.rows[0];
        assert_eq!(login.requests_per_s, 100.0);
        assert_eq!(
            login.spread.as_ref().unwrap().requests_per_s,
            Some(Spread {
                min: 80.0,
                max: 120.0
            })
        );
        assert_eq!(t.cold_start_ms, 10.0);
    }

    #[test]
    fn errors_are_totals_and_their_spread_is_per_run() {
        let runs = [run(1000.0, 100.0, 90.0, 0), run(1000.0, 100.0, 90.0, 3)];
        let c = combine(&runs).unwrap();
        let login = &c.targets[0].rows[0];
        assert_eq!(login.errors, 3);
        assert_eq!(login.error_detail.get("io"), Some(&3));
        assert_eq!(
            login.spread.as_ref().unwrap().errors,
            Some(Spread { min: 0.0, max: 3.0 })
        );
    }

    #[test]
    fn missing_figures_stay_missing() {
        let runs = [run(1000.0, 100.0, 90.0, 0), run(1000.0, 100.0, 90.0, 0)];
        let c = combine(&runs).unwrap();
        let t = &c.targets[0];
        assert_eq!(t.rows[0].p999_ms, None);
        assert_eq!(t.rows[0].spread.as_ref().unwrap().p999_ms, None);
        assert!(t.pgbench.is_none() && t.refresh_to_pgbench.is_none());
    }

    #[test]
    fn no_runs_is_an_error() {
        assert!(combine(&[]).is_err());
    }
}

//! PostgreSQL helpers: the bench schema's lifetime and the `pgbench` reference.

use anyhow::{bail, Context as _};
use authara_store_postgres::PgConnectOptions;
use serde::Serialize;
use sqlx::{ConnectOptions as _, Connection as _, Executor as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::str::FromStr as _;
use std::time::Duration;

/// Rows in the pgbench scratch table (and the range of ids the script updates).
const SCRATCH_ROWS: u32 = 10_000;

/// A fresh schema name: `bench_` and 16 random hex digits.
pub fn fresh_schema() -> String {
    let id = authara_core::random::uuid_v4(&authara_core::random::OsRandom).simple();
    let hex = id.to_string();
    format!("bench_{}", hex.get(..16).unwrap_or(&hex))
}

/// Refuses anything but a loopback (or Unix-socket) PostgreSQL: all load stays on this machine.
pub fn check_loopback(url: &str) -> anyhow::Result<()> {
    let opts = PgConnectOptions::from_str(url)
        .map_err(|_| anyhow::anyhow!("AUTHARA_BENCH_POSTGRES_URL is not a valid URL"))?;
    let host = opts.get_host();
    if host.starts_with('/') || matches!(host, "127.0.0.1" | "localhost" | "::1" | "[::1]") {
        Ok(())
    } else {
        bail!("AUTHARA_BENCH_POSTGRES_URL must point at this machine (127.0.0.1, localhost or a Unix socket), not {host:?}")
    }
}

async fn connect(url: &str) -> anyhow::Result<sqlx::PgConnection> {
    PgConnectOptions::from_str(url)
        .map_err(|_| anyhow::anyhow!("AUTHARA_BENCH_POSTGRES_URL is not a valid URL"))?
        .disable_statement_logging()
        .connect()
        .await
        .context("connecting to PostgreSQL (AUTHARA_BENCH_POSTGRES_URL)")
}

/// Checks that the server answers, before anything is built or started for it.
pub async fn ping(url: &str) -> anyhow::Result<()> {
    let mut c = connect(url).await?;
    c.execute("SELECT 1").await.context("PostgreSQL ping")?;
    c.close().await.ok();
    Ok(())
}

/// `DROP SCHEMA <schema> CASCADE`, if it exists.
pub async fn drop_schema(url: &str, schema: &str) -> anyhow::Result<()> {
    if !authara_store_postgres::is_valid_schema_name(schema) {
        bail!("refusing to drop {schema:?}: not a plain schema name");
    }
    let mut c = connect(url).await?;
    c.execute(format!("DROP SCHEMA IF EXISTS {schema} CASCADE").as_str())
        .await
        .with_context(|| format!("dropping schema {schema}"))?;
    c.close().await.ok();
    Ok(())
}

/// What pgbench measured.
#[derive(Debug, Clone, Serialize)]
pub struct PgbenchResult {
    /// Transactions per second, as pgbench reports it (without initial connection time).
    pub tps: f64,
    /// Client connections.
    pub clients: usize,
    /// Seconds run.
    pub seconds: u64,
    /// The transaction script.
    pub script: String,
}

/// The script: one refresh-like write transaction (mark a token consumed, insert its
/// replacement), like `rotate_refresh_token` in the PostgreSQL store.
fn script(schema: &str) -> String {
    format!(
        "\\set id random(1, {SCRATCH_ROWS})\n\
         BEGIN;\n\
         UPDATE {schema}.pgbench_tokens SET consumed_at = now() WHERE id = :id;\n\
         INSERT INTO {schema}.pgbench_tokens (session_id, token_hash, created_at, expires_at) \
         VALUES (:id, sha256(gen_random_uuid()::text::bytea), now(), now() + interval '14 days');\n\
         END;\n"
    )
}

/// Creates the scratch table in `schema` (shaped like `refresh_tokens`: primary key, unique
/// hash, session index) with `SCRATCH_ROWS` rows, then runs `pgbench -n -M prepared -c
/// <clients> -j 2 -T <secs>` with the script against the same server.
pub async fn pgbench(
    url: &str,
    schema: &str,
    clients: usize,
    duration: Duration,
    dir: &Path,
) -> anyhow::Result<PgbenchResult> {
    if !authara_store_postgres::is_valid_schema_name(schema) {
        bail!("not a plain schema name: {schema:?}");
    }
    let mut c = connect(url).await?;
    c.execute(
        format!(
            "CREATE TABLE {schema}.pgbench_tokens (\
               id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
               session_id INTEGER NOT NULL, \
               token_hash BYTEA NOT NULL UNIQUE, \
               created_at TIMESTAMPTZ NOT NULL, \
               expires_at TIMESTAMPTZ NOT NULL, \
               consumed_at TIMESTAMPTZ); \
             CREATE INDEX ON {schema}.pgbench_tokens (session_id); \
             INSERT INTO {schema}.pgbench_tokens (session_id, token_hash, created_at, expires_at) \
               SELECT g, sha256(g::text::bytea), now(), now() + interval '14 days' \
               FROM generate_series(1, {SCRATCH_ROWS}) g; \
             ANALYZE {schema}.pgbench_tokens;"
        )
        .as_str(),
    )
    .await
    .context("creating the pgbench scratch table")?;
    c.close().await.ok();

    let script = script(schema);
    let path = dir.join("refresh-like.sql");
    std::fs::write(&path, &script).context("writing the pgbench script")?;
    let seconds = duration.as_secs_f64().ceil().max(1.0) as u64;
    let clients = clients.max(1);
    let url = url.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("pgbench")
            .args(["-n", "-M", "prepared", "-j", "2"])
            .arg("-c")
            .arg(clients.to_string())
            .arg("-T")
            .arg(seconds.to_string())
            .arg("-f")
            .arg(&path)
            .arg(&url)
            .stdin(Stdio::null())
            .output()
    })
    .await
    .context("waiting for pgbench")?
    .context("running pgbench (is it installed? Debian: postgresql-client)")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "pgbench failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let tps = parse_tps(&stdout).context("pgbench printed no `tps = ...` line")?;
    Ok(PgbenchResult {
        tps,
        clients,
        seconds,
        script,
    })
}

/// The first `tps = N` in pgbench's output.
pub fn parse_tps(out: &str) -> Option<f64> {
    out.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("tps = ")?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tps_is_parsed() {
        let out = "transaction type: refresh-like.sql\nscaling factor: 1\n\
                   number of clients: 64\nlatency average = 22.1 ms\n\
                   initial connection time = 55.2 ms\n\
                   tps = 2891.123456 (without initial connection time)\n";
        assert_eq!(parse_tps(out), Some(2891.123456));
        assert_eq!(parse_tps("nothing"), None);
    }

    #[test]
    fn schemas_are_fresh_and_plain() {
        let a = fresh_schema();
        assert!(authara_store_postgres::is_valid_schema_name(&a), "{a}");
        assert_eq!(a.len(), "bench_".len() + 16);
        assert_ne!(a, fresh_schema());
    }

    #[test]
    fn only_loopback_postgres_is_accepted() {
        assert!(check_loopback("postgres://postgres@127.0.0.1:5432/postgres").is_ok());
        assert!(check_loopback("postgres://u@localhost/db").is_ok());
        assert!(check_loopback("postgres://u@10.0.0.5/db").is_err());
        assert!(check_loopback("postgres://u@db.internal/db").is_err());
    }

    #[test]
    fn the_script_writes_twice_in_one_transaction() {
        let s = script("bench_x");
        assert!(s.contains("BEGIN;") && s.contains("END;"));
        assert_eq!(s.matches("bench_x.pgbench_tokens").count(), 2);
    }
}

//! Shared by the PostgreSQL test crates: the server to test against and per-test schemas.

use sqlx::{Connection, Executor, PgConnection};

const URL_VAR: &str = "AUTHARA_TEST_POSTGRES_URL";

/// The server named by `AUTHARA_TEST_POSTGRES_URL` (e.g.
/// `postgres://postgres@127.0.0.1:5432/postgres`); `None`, said on stderr, when it is unset.
/// Under `CI=true` an unset variable fails the test instead (`require_service`).
pub fn postgres_url(what: &str) -> Option<String> {
    let url = std::env::var(URL_VAR)
        .ok()
        .filter(|url| !url.trim().is_empty());
    authara_store_conformance::require_service(
        &format!("{URL_VAR} not set ({what})"),
        url.is_some(),
    )
    .then_some(url)
    .flatten()
}

/// A schema name of its own for one test, `t_<random hex>`.
pub fn new_schema_name() -> String {
    format!("t_{}", uuid::Uuid::new_v4().simple())
}

/// Drops the test's schema over a connection of its own, on a thread with a runtime of its
/// own: this runs in `Drop`, inside the test's runtime, possibly while a panic unwinds.
pub fn drop_schema(url: String, schema: String) {
    let dropped = std::thread::spawn(move || -> Result<(), String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let mut conn = PgConnection::connect(&url)
                .await
                .map_err(|e| e.to_string())?;
            conn.execute(format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE").as_str())
                .await
                .map_err(|e| format!("dropping schema {schema}: {e}"))?;
            conn.close().await.map_err(|e| e.to_string())
        })
    })
    .join();
    match dropped {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("warning: test schema cleanup failed: {e}"),
        Err(_) => eprintln!("warning: test schema cleanup panicked"),
    }
}

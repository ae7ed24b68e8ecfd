//! What the database holds, read behind the server's back, to prove that a refused request
//! changed nothing.

use crate::helpers::TestApp;
use authara::config::DatabaseConfig;
use sqlx::{Connection as _, Row as _};

/// Every row of users, sessions, refresh tokens, challenges, email jobs, organizations,
/// memberships, invitations and external identities (the columns a request could change), as text, in a stable order.
const QUERIES: [&str; 9] = [
    "SELECT 'user', CAST(id AS TEXT), email, username, password_hash, CAST(is_admin AS TEXT), \
     CAST(disabled AS TEXT), CAST(updated_at AS TEXT) FROM users ORDER BY id",
    "SELECT 'session', CAST(id AS TEXT), CAST(user_id AS TEXT), user_agent, client_ip, \
     CAST(expires_at AS TEXT), CAST(revoked_at AS TEXT), CAST(active_organization_id AS TEXT) \
     FROM sessions ORDER BY id",
    "SELECT 'refresh', CAST(id AS TEXT), CAST(session_id AS TEXT), CAST(expires_at AS TEXT), \
     CAST(consumed_at AS TEXT), '', '', '' FROM refresh_tokens ORDER BY id",
    "SELECT 'challenge', CAST(id AS TEXT), purpose, email, CAST(attempt_count AS TEXT), \
     CAST(resend_count AS TEXT), CAST(last_sent_at AS TEXT), CAST(consumed_at AS TEXT) \
     FROM challenges ORDER BY id",
    "SELECT 'email', CAST(id AS TEXT), to_email, template, '', '', '', '' \
     FROM email_jobs ORDER BY id",
    "SELECT 'organization', CAST(id AS TEXT), name, kind, CAST(created_by_user_id AS TEXT), \
     CAST(updated_at AS TEXT), '', '' FROM organizations ORDER BY id",
    "SELECT 'membership', CAST(organization_id AS TEXT), CAST(user_id AS TEXT), role, \
     CAST(updated_at AS TEXT), '', '', '' FROM organization_memberships \
     ORDER BY organization_id, user_id",
    "SELECT 'invitation', CAST(id AS TEXT), email, role, CAST(updated_at AS TEXT), \
     CAST(accepted_at AS TEXT), CAST(revoked_at AS TEXT), token_hash \
     FROM organization_invitations ORDER BY id",
    "SELECT 'identity', CAST(id AS TEXT), CAST(user_id AS TEXT), provider, provider_user_id, \
     email, CAST(last_used_at AS TEXT), '' FROM auth_providers ORDER BY id",
];

/// One line per row of every table a request can change.
pub async fn snapshot(app: &TestApp) -> Vec<String> {
    let mut out = Vec::new();
    match &app.config.database {
        DatabaseConfig::Sqlite { url } => {
            let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
            for q in QUERIES {
                for row in sqlx::query(q).fetch_all(&mut conn).await.unwrap() {
                    out.push(line(
                        (0..8).map(|i| row.try_get::<Option<String>, _>(i).unwrap()),
                    ));
                }
            }
            conn.close().await.unwrap();
        }
        DatabaseConfig::Postgres(pg) => {
            let url = pg.url.as_ref().expect("tests use DATABASE_URL").expose();
            let schema = pg.schema.as_deref().expect("tests use a schema");
            let opts: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
            let opts = opts.options([("search_path", schema)]);
            let mut conn = sqlx::PgConnection::connect_with(&opts).await.unwrap();
            for q in QUERIES {
                for row in sqlx::query(q).fetch_all(&mut conn).await.unwrap() {
                    out.push(line(
                        (0..8).map(|i| row.try_get::<Option<String>, _>(i).unwrap()),
                    ));
                }
            }
            conn.close().await.unwrap();
        }
    }
    out
}

fn line(cells: impl Iterator<Item = Option<String>>) -> String {
    cells
        .map(|c| c.unwrap_or_else(|| "NULL".to_owned()))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The rows present in `after` but not in `before` and vice versa, for a readable failure.
pub fn diff(before: &[String], after: &[String]) -> String {
    let gone: Vec<&String> = before.iter().filter(|r| !after.contains(r)).collect();
    let new: Vec<&String> = after.iter().filter(|r| !before.contains(r)).collect();
    format!("gone: {gone:#?}\nnew: {new:#?}")
}

/// Asserts that the database is exactly as `before`.
pub async fn assert_unchanged(app: &TestApp, before: &[String], what: &str) {
    let after = snapshot(app).await;
    assert!(
        after == before,
        "{what} changed the database:\n{}",
        diff(before, &after)
    );
}

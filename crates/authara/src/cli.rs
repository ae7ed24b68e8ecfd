//! The operator's subcommands that read or change accounts: `authara admin grant|revoke` and
//! `authara audit list`. They go through the services, like the HTTP handlers, so the audit log
//! records what the command line does.

use crate::config::Config;
use crate::server::cli_account_service;
use authara_core::audit::{Actor, AuditFilter, AuditRecord, AuditService};
use authara_core::auth::AdminChangeError;
use authara_core::clock::{Clock, SystemClock};
use authara_core::domain::Email;
use authara_core::store::Store;
use std::sync::Arc;
use time::format_description::well_known::Rfc3339;

/// Rows `audit list` shows unless `--limit` says otherwise.
pub const DEFAULT_AUDIT_LIMIT: u32 = 100;

/// `authara admin grant|revoke EMAIL`: returns the line to print.
pub async fn admin(config: &Config, email: &str, grant: bool) -> anyhow::Result<String> {
    let service = cli_account_service(config).await?;
    let email = Email::normalise(email);
    match service.set_admin_by_email(&Actor::Cli, &email, grant).await {
        Ok(()) => {
            let verb = if grant { "granted to" } else { "revoked from" };
            Ok(format!("authara:admin {verb} {email}"))
        }
        Err(AdminChangeError::NotFound) => anyhow::bail!("no user with email {email}"),
        Err(e) => Err(e.into()),
    }
}

/// What `authara audit list` was asked for.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Rows about (or by) the user with this email; rows of deleted users still match.
    pub user: Option<String>,
    /// Rows younger than this.
    pub since: Option<std::time::Duration>,
    pub limit: Option<u32>,
    pub json: bool,
}

/// `authara audit list`: the rows, newest first, as text lines or one JSON array.
pub async fn audit_list(store: Arc<dyn Store>, query: &AuditQuery) -> anyhow::Result<String> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut filter = AuditFilter {
        limit: query.limit.unwrap_or(DEFAULT_AUDIT_LIMIT),
        ..AuditFilter::default()
    };
    if let Some(user) = &query.user {
        let email = Email::normalise(user);
        filter.user_id = store.find_user_by_email(&email).await?.map(|u| u.id);
        filter.email = Some(email);
    }
    if let Some(since) = query.since {
        let since =
            time::Duration::try_from(since).map_err(|_| anyhow::anyhow!("--since is too long"))?;
        filter.since = Some(clock.now() - since);
    }
    let rows = AuditService::new(store, clock).list(filter).await?;
    if query.json {
        let rows: Vec<_> = rows.iter().map(json_row).collect();
        return Ok(serde_json::to_string_pretty(&rows)?);
    }
    if rows.is_empty() {
        return Ok("no audit events".to_owned());
    }
    Ok(rows.iter().map(text_row).collect::<Vec<_>>().join("\n"))
}

fn stamp(at: time::OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default()
}

fn json_row(r: &AuditRecord) -> serde_json::Value {
    serde_json::json!({
        "id": r.id.to_string(),
        "created_at": stamp(r.created_at),
        "action": r.action,
        "actor_user_id": r.actor_user_id.map(|id| id.to_string()),
        "target_user_id": r.target_user_id.map(|id| id.to_string()),
        "target_email": r.target_email,
        "metadata": r.metadata,
        "ip": r.context.ip,
        "user_agent": r.context.user_agent,
        "request_id": r.context.request_id,
    })
}

/// One line per row. Every stored text was stripped of control characters when written, and
/// is printed through `{:?}` here as well, so no row can move the terminal's cursor.
fn text_row(r: &AuditRecord) -> String {
    let actor = r.actor_user_id.map(|id| id.to_string()).unwrap_or_else(|| {
        r.metadata
            .get("via")
            .and_then(|v| v.as_str())
            .unwrap_or("system")
            .to_owned()
    });
    let target = match (&r.target_email, r.target_user_id) {
        (Some(e), Some(id)) => format!("{e:?} ({id})"),
        (Some(e), None) => format!("{e:?}"),
        (None, Some(id)) => id.to_string(),
        (None, None) => "-".to_owned(),
    };
    format!(
        "{}  {:<38} actor={actor} target={target} ip={:?} ua={:?} request={:?} {}",
        stamp(r.created_at),
        r.action,
        r.context.ip.as_deref().unwrap_or("-"),
        r.context.user_agent.as_deref().unwrap_or("-"),
        r.context.request_id.as_deref().unwrap_or("-"),
        r.metadata
    )
}

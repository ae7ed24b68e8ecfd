//! The audit log: how long its rows are kept (upstream's `AUTHARA_ADMIN_AUDIT_RETENTION_DAYS`).

use super::env::Env;
use super::ConfigError;

/// The names of this section's variables.
pub mod var {
    /// Days an audit row is kept.
    pub const ADMIN_AUDIT_RETENTION_DAYS: &str = "AUTHARA_ADMIN_AUDIT_RETENTION_DAYS";
}

use var::*;

/// Upstream's default retention.
pub const DEFAULT_RETENTION_DAYS: u32 = 180;

/// Settings of the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditConfig {
    /// Rows older than this many days are deleted by the retention cleanup (`1..=36500`).
    pub retention_days: u32,
}

impl AuditConfig {
    /// The retention as a duration.
    pub fn retention(&self) -> time::Duration {
        time::Duration::days(i64::from(self.retention_days))
    }
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            retention_days: DEFAULT_RETENTION_DAYS,
        }
    }
}

/// Reads the section.
pub(super) fn read(e: &Env<'_>) -> Result<AuditConfig, ConfigError> {
    Ok(AuditConfig {
        retention_days: e.whole(
            ADMIN_AUDIT_RETENTION_DAYS,
            DEFAULT_RETENTION_DAYS,
            1,
            36_500,
            " of days",
        )?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::testing::{assert_messages, load};
    use super::*;

    #[test]
    fn retention_defaults_to_upstreams_180_days() {
        let c = load(&[]).unwrap();
        assert_eq!(c.audit, AuditConfig::default());
        assert_eq!(c.audit.retention_days, 180);
        assert_eq!(c.audit.retention(), time::Duration::days(180));
    }

    #[test]
    fn retention_takes_1_to_36500_days() {
        for (value, days) in [("1", 1), (" 30 ", 30), ("36500", 36_500)] {
            let c = load(&[(ADMIN_AUDIT_RETENTION_DAYS, value)]).unwrap();
            assert_eq!(c.audit.retention_days, days, "{value}");
        }
        let cases: Vec<(Vec<(&str, &str)>, String)> = ["0", "36501", "-1", "1.5", "a year"]
            .into_iter()
            .map(|v| {
                (
                    vec![(ADMIN_AUDIT_RETENTION_DAYS, v)],
                    format!(
                        "AUTHARA_ADMIN_AUDIT_RETENTION_DAYS must be a whole number of days from 1 to 36500, got {v:?}"
                    ),
                )
            })
            .collect();
        assert_messages(&cases);
    }
}

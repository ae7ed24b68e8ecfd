//! The audit log: who did what to whom, written in the same transaction as the action.

pub mod store;

pub use store::{AuditFilter, AuditStore};

use time::OffsetDateTime;
use uuid::Uuid;

/// What an audit row records. Upstream's admin actions keep upstream's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// `user.disabled` (upstream)
    UserDisabled,
    /// `user.enabled` (upstream)
    UserEnabled,
    /// `user.admin_granted` (upstream)
    AdminGranted,
    /// `user.admin_revoked` (upstream)
    AdminRevoked,
    /// `user.session_revoked` (upstream): one session revoked by its owner or an admin.
    SessionRevoked,
    /// `user.sessions_revoked` (upstream): several sessions at once.
    SessionsRevoked,
    /// `user.password_changed`
    PasswordChanged,
    /// `user.deleted`
    AccountDeleted,
    /// `session.refresh_token_reuse_detected`: a consumed refresh token came back after the
    /// grace window; its session was revoked.
    RefreshTokenReuse,
}

impl AuditAction {
    /// Every action.
    pub const ALL: [AuditAction; 9] = [
        Self::UserDisabled,
        Self::UserEnabled,
        Self::AdminGranted,
        Self::AdminRevoked,
        Self::SessionRevoked,
        Self::SessionsRevoked,
        Self::PasswordChanged,
        Self::AccountDeleted,
        Self::RefreshTokenReuse,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserDisabled => "user.disabled",
            Self::UserEnabled => "user.enabled",
            Self::AdminGranted => "user.admin_granted",
            Self::AdminRevoked => "user.admin_revoked",
            Self::SessionRevoked => "user.session_revoked",
            Self::SessionsRevoked => "user.sessions_revoked",
            Self::PasswordChanged => "user.password_changed",
            Self::AccountDeleted => "user.deleted",
            Self::RefreshTokenReuse => "session.refresh_token_reuse_detected",
        }
    }

    /// The action with this stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

/// Where a request came from, for the audit row. Bounded by the caller (the HTTP layer): the
/// user agent to 512 characters as upstream's column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

/// An audit row to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    pub id: Uuid,
    pub created_at: OffsetDateTime,
    pub action: AuditAction,
    /// The user who acted; `None` for the system (the CLI acts as no user).
    pub actor_user_id: Option<Uuid>,
    /// The user acted on.
    pub target_user_id: Option<Uuid>,
    /// The target's email at the time (kept after the user is deleted).
    pub target_email: Option<String>,
    /// A JSON object with details (`{}` when none); never secrets.
    pub metadata: serde_json::Value,
    pub context: RequestContext,
}

/// An audit row as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub id: Uuid,
    pub created_at: OffsetDateTime,
    /// The stored name; rows written by a newer binary may carry names this one does not know.
    pub action: String,
    pub actor_user_id: Option<Uuid>,
    pub target_user_id: Option<Uuid>,
    pub target_email: Option<String>,
    pub metadata: serde_json::Value,
    pub context: RequestContext,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_round_trips_and_keeps_upstreams_names() {
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(a));
        }
        assert_eq!(AuditAction::UserDisabled.as_str(), "user.disabled");
        assert_eq!(AuditAction::AdminGranted.as_str(), "user.admin_granted");
        assert_eq!(
            AuditAction::SessionsRevoked.as_str(),
            "user.sessions_revoked"
        );
        assert_eq!(AuditAction::parse("nope"), None);
    }
}

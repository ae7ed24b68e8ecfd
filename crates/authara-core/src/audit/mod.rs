//! The audit log: who did what to whom, written in the same transaction as the action.

pub mod service;
pub mod store;

pub use service::AuditService;
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
    /// `user.password_reset` (ours): a password replaced through an emailed code.
    PasswordReset,
    /// `user.email_changed` (ours): an email changed through a code sent to the new address.
    EmailChanged,
    /// `session.refresh_token_reuse_detected`: a consumed refresh token came back after the
    /// grace window; its session was revoked.
    RefreshTokenReuse,
}

impl AuditAction {
    /// Every action.
    pub const ALL: [AuditAction; 11] = [
        Self::UserDisabled,
        Self::UserEnabled,
        Self::AdminGranted,
        Self::AdminRevoked,
        Self::SessionRevoked,
        Self::SessionsRevoked,
        Self::PasswordChanged,
        Self::AccountDeleted,
        Self::PasswordReset,
        Self::EmailChanged,
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
            Self::PasswordReset => "user.password_reset",
            Self::EmailChanged => "user.email_changed",
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

/// Longest user agent kept (upstream's column is `varchar(512)`).
pub const MAX_USER_AGENT: usize = 512;
/// Longest IP or request id kept.
const MAX_SHORT_FIELD: usize = 128;

/// Keeps at most `max` characters and drops control characters, so a row never carries
/// terminal escapes or line breaks into `authara audit list`.
fn bounded(value: Option<&str>, max: usize) -> Option<String> {
    let cleaned: String = value?.chars().filter(|c| !c.is_control()).collect();
    let cleaned: String = cleaned.trim().chars().take(max).collect();
    (!cleaned.is_empty()).then_some(cleaned)
}

impl RequestContext {
    /// A context from raw request values, bounded and stripped of control characters.
    pub fn new(ip: Option<&str>, user_agent: Option<&str>, request_id: Option<&str>) -> Self {
        Self {
            ip: bounded(ip, MAX_SHORT_FIELD),
            user_agent: bounded(user_agent, MAX_USER_AGENT),
            request_id: bounded(request_id, MAX_SHORT_FIELD),
        }
    }
}

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in user (an admin, or the owner of the account).
    User(Uuid),
    /// The `authara` command line (an operator with access to the database).
    Cli,
    /// The server itself (reuse detection, expiry).
    System,
}

impl Actor {
    fn user_id(self) -> Option<Uuid> {
        match self {
            Self::User(id) => Some(id),
            Self::Cli | Self::System => None,
        }
    }

    fn via(self) -> &'static str {
        match self {
            Self::User(_) => "user",
            Self::Cli => "cli",
            Self::System => "system",
        }
    }
}

impl NewAuditEntry {
    /// A row for `action` at `at` by `actor`; `metadata.via` says whether a user, the CLI or
    /// the server acted.
    pub fn new(id: Uuid, at: OffsetDateTime, action: AuditAction, actor: Actor) -> Self {
        Self {
            id,
            created_at: at,
            action,
            actor_user_id: actor.user_id(),
            target_user_id: None,
            target_email: None,
            metadata: serde_json::json!({ "via": actor.via() }),
            context: RequestContext::default(),
        }
    }

    /// The user acted on; the email is kept so the row still names them after a deletion.
    pub fn about(mut self, user_id: Uuid, email: &str) -> Self {
        self.target_user_id = Some(user_id);
        self.target_email = Some(email.to_owned());
        self
    }

    /// Adds one detail to `metadata` (never a secret).
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        if let Some(map) = self.metadata.as_object_mut() {
            map.insert(key.to_owned(), value.into());
        }
        self
    }

    /// Where the request came from.
    pub fn from_request(mut self, context: &RequestContext) -> Self {
        self.context = context.clone();
        self
    }
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

    #[test]
    fn request_context_is_bounded_and_loses_control_characters() {
        let long = "a".repeat(2_000);
        let ctx = RequestContext::new(Some("203.0.113.9"), Some(&long), Some("  "));
        assert_eq!(ctx.ip.as_deref(), Some("203.0.113.9"));
        assert_eq!(ctx.user_agent.map(|u| u.len()), Some(MAX_USER_AGENT));
        assert_eq!(ctx.request_id, None);
        let ctx = RequestContext::new(None, Some("evil\r\n\u{1b}[31mUA"), None);
        assert_eq!(ctx.user_agent.as_deref(), Some("evil[31mUA"));
    }

    #[test]
    fn entries_name_actor_target_and_details() {
        let admin = Uuid::from_u128(1);
        let user = Uuid::from_u128(2);
        let at = OffsetDateTime::UNIX_EPOCH;
        let e = NewAuditEntry::new(
            Uuid::from_u128(3),
            at,
            AuditAction::UserDisabled,
            Actor::User(admin),
        )
        .about(user, "u@example.com")
        .with("sessions_revoked", "all");
        assert_eq!(e.actor_user_id, Some(admin));
        assert_eq!(e.target_user_id, Some(user));
        assert_eq!(e.target_email.as_deref(), Some("u@example.com"));
        assert_eq!(
            e.metadata,
            serde_json::json!({"via": "user", "sessions_revoked": "all"})
        );
        let cli = NewAuditEntry::new(
            Uuid::from_u128(4),
            at,
            AuditAction::AdminGranted,
            Actor::Cli,
        );
        assert_eq!(cli.actor_user_id, None);
        assert_eq!(cli.metadata["via"], "cli");
    }
}

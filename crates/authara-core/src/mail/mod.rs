//! Outgoing email: the outbox of jobs ([`store`]) that the email workers send.

pub mod store;

pub use store::{ClaimedEmail, EmailRecord, EmailStatus, EmailStore};

/// The template of the notice sent to the old address after an email change (ours; upstream
/// sends none).
pub const EMAIL_CHANGED_NOTICE: &str = "email_changed_notice";

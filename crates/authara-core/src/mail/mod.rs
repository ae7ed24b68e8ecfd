//! Outgoing email: the outbox of jobs ([`store`]) that the email workers send.

pub mod store;

pub use store::{ClaimedEmail, EmailRecord, EmailStatus, EmailStore};

use uuid::Uuid;

/// The template of the notice sent to the old address after an email change (ours; upstream
/// sends none).
pub const EMAIL_CHANGED_NOTICE: &str = "email_changed_notice";

impl crate::outbox::Claimed for ClaimedEmail {
    fn key(&self) -> (Uuid, u32) {
        (self.id, self.attempt_count)
    }
}

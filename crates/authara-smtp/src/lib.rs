//! Authara's email (issue 10, emailed codes).
//!
//! - [`sender`]: one message over SMTP ([`SmtpSender::send`]): STARTTLS required when TLS is on,
//!   AUTH, a deadline on the whole send, no header injection.

pub mod sender;

pub use sender::{
    check, parse_mailbox, Email, SendError, SettingsError, SmtpSender, SmtpSettings, TlsMode,
};

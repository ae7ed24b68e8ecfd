//! Authara's email: the outbox worker and SMTP (issue 10, emailed codes).
//!
//! - [`sender`]: one message over SMTP ([`SmtpSender::send`]): STARTTLS required when TLS is on,
//!   AUTH, a deadline on the whole send, no header injection.
//! - [`transport`]: where the worker's messages go ([`Transport`]): SMTP, the log (development)
//!   or nowhere.
//! - [`render`]: the askama templates (text and HTML) of each outbox template name.
//! - [`settings`]: what the workers are configured with ([`MailSettings`]).
//! - [`worker`]: the background tasks ([`MailWorkers`]) that claim due jobs from the outbox
//!   (`authara_core::mail`), mint a challenge's code right before sending it, send, and record
//!   the outcome; a stale reaper and the retention cleanup.
//!
//! The store decides which emails exist (a job is appended by the write that causes it); this
//! crate only claims, renders, sends and records.

pub mod render;
pub mod sender;
pub mod settings;
pub mod transport;
pub mod worker;

pub use render::{render, Content, RenderError, Rendered, Template};
pub use sender::{
    check, parse_mailbox, Email, SendError, SettingsError, SmtpSender, SmtpSettings, TlsMode,
};
pub use settings::MailSettings;
pub use transport::Transport;
pub use worker::{MailStore, MailWorkers};

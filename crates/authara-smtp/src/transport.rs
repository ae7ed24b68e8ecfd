//! Where the worker's messages go (`AUTHARA_EMAIL_PROVIDER`).

use crate::sender::{check, Email, SendError, SmtpSender};

/// The configured way out.
#[derive(Debug, Clone)]
#[allow(
    clippy::large_enum_variant,
    reason = "one value per process, built once at start"
)]
pub enum Transport {
    /// A real SMTP relay.
    Smtp(SmtpSender),
    /// Development: the message is written to the log at `info`, codes and all, and not sent.
    /// The configuration refuses it in production for exactly that reason.
    Log,
    /// Nothing is sent: the job is marked sent and the message is gone (logged at `debug`).
    Noop,
}

impl Transport {
    /// The provider's name, as configured.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Smtp(_) => "smtp",
            Self::Log => "log",
            Self::Noop => "noop",
        }
    }

    /// Sends (or logs, or drops) one message. [`Transport::Log`] refuses what SMTP would
    /// ([`check`]), so that development finds a bad recipient or subject too.
    pub async fn send(&self, email: &Email) -> Result<(), SendError> {
        match self {
            Self::Smtp(sender) => sender.send(email).await,
            Self::Log => {
                check(email)?;
                tracing::info!(
                    to = %email.to,
                    subject = %email.subject,
                    text = %email.text,
                    "email written to the log, not sent (AUTHARA_EMAIL_PROVIDER=log)"
                );
                Ok(())
            }
            Self::Noop => {
                tracing::debug!(
                    to = %email.to,
                    subject = %email.subject,
                    "email discarded (AUTHARA_EMAIL_PROVIDER=noop)"
                );
                Ok(())
            }
        }
    }
}

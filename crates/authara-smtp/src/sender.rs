//! Sending one email over SMTP ([`SmtpSender::send`]).
//!
//! - **TLS**: with [`TlsMode::StartTls`] the server must offer `STARTTLS` and the session is
//!   upgraded before anything else is said (TLS 1.2 or newer, certificates checked against the
//!   web PKI roots plus any configured extra root); a server that does not offer it is an error,
//!   never a silent plaintext session. Implicit TLS (port 465) is not supported, as upstream.
//! - **AUTH** when a username is set; the password never appears in `Debug` or an error (an
//!   error text that would repeat it has it replaced).
//! - **A deadline** on the whole send ([`SmtpSettings::timeout`]): lettre's own timeout does not
//!   cover every read (a server that accepts the connection and never greets would hold a send
//!   for ever; the test `a_server_that_is_down_or_silent…` found it), so the send is bounded here.
//! - **No header injection**: addresses are parsed as addresses (no CR/LF can survive), and a
//!   subject with a control character is refused before anything is sent ([`check`]).

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use std::fmt;
use std::time::Duration;

/// Whether the session is upgraded with `STARTTLS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// `STARTTLS` is required (the production default).
    StartTls,
    /// Plaintext (development against a local catcher only; refused in production by the
    /// configuration).
    Off,
}

/// Where and how to send. `Debug` leaves the password out.
#[derive(Clone)]
pub struct SmtpSettings {
    /// Host to connect to (a name or an address).
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    /// The name the server's certificate must carry; `host` when `None`.
    pub tls_server_name: Option<String>,
    /// One more trusted root certificate (PEM), for a private relay.
    pub extra_root_pem: Option<Vec<u8>>,
    /// `AUTH` with these when set.
    pub username: Option<String>,
    pub password: Option<String>,
    /// The `From` mailbox: an address, or `Display Name <address>` ([`parse_mailbox`]).
    pub from: String,
    /// Bound on the whole send: connecting, TLS, the dialogue.
    pub timeout: Duration,
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("tls_server_name", &self.tls_server_name)
            .field(
                "extra_root_pem",
                &self.extra_root_pem.as_ref().map(|_| "<set>"),
            )
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why the settings cannot make a sender.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("the From address is not a valid email address")]
    From,
    #[error("the extra root certificate is not a valid PEM certificate")]
    RootCertificate,
    #[error("the TLS settings are invalid")]
    Tls,
    #[error("a password is set without a username")]
    PasswordWithoutUser,
}

/// One message: plain text and HTML alternatives.
#[derive(Debug, Clone)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Why a message was not sent. `Display` never shows a secret or the message body.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The recipient is no valid address (nothing was sent; retrying cannot help).
    #[error("the recipient is not a valid email address")]
    Recipient,
    /// The subject holds a control character (nothing was sent; retrying cannot help).
    #[error("the subject contains a control character")]
    Subject,
    /// The message could not be built (nothing was sent).
    #[error("the message could not be built")]
    Build,
    /// The server refused the message for good (a `5xx` answer): retrying cannot help.
    #[error("the SMTP server refused the message permanently: {0}")]
    Permanent(String),
    /// Anything that may pass: the server unreachable, a timeout, a `4xx`, TLS failing.
    #[error("sending failed, may be retried: {0}")]
    Transient(String),
}

impl SendError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

/// Parses a `From` mailbox as RFC 5322 allows it: `address` or `Display Name <address>`. A
/// control character (CR, LF, ...) anywhere is refused, whatever the parser would make of it.
pub fn parse_mailbox(s: &str) -> Option<Mailbox> {
    if s.chars().any(char::is_control) {
        return None;
    }
    s.parse::<Mailbox>().ok()
}

/// Checks what [`SmtpSender::send`] checks before it sends anything: the recipient is one valid
/// address and the subject holds no control character. The other transports check the same, so
/// that development refuses what production would.
pub fn check(email: &Email) -> Result<lettre::Address, SendError> {
    let to = email
        .to
        .parse::<lettre::Address>()
        .map_err(|_| SendError::Recipient)?;
    if email.subject.chars().any(char::is_control) {
        return Err(SendError::Subject);
    }
    Ok(to)
}

/// Sends messages through one SMTP relay. Cheap to clone; each send opens its own connection.
#[derive(Clone)]
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    deadline: Duration,
    /// Replaced in error texts (never shown).
    password: Option<String>,
}

impl fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSender")
            .field("from", &self.from.email.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpSender {
    /// A sender for `settings`; nothing is contacted yet.
    pub fn new(settings: &SmtpSettings) -> Result<Self, SettingsError> {
        let from = parse_mailbox(&settings.from).ok_or(SettingsError::From)?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
            .port(settings.port)
            .timeout(Some(settings.timeout));
        if settings.tls == TlsMode::StartTls {
            let name = settings
                .tls_server_name
                .clone()
                .unwrap_or_else(|| settings.host.clone());
            let mut params = TlsParameters::builder(name);
            if let Some(pem) = &settings.extra_root_pem {
                let cert =
                    Certificate::from_pem(pem).map_err(|_| SettingsError::RootCertificate)?;
                params = params.add_root_certificate(cert);
            }
            let params = params.build_rustls().map_err(|_| SettingsError::Tls)?;
            builder = builder.tls(Tls::Required(params));
        } else {
            builder = builder.tls(Tls::None);
        }
        match (&settings.username, &settings.password) {
            (Some(user), password) => {
                builder = builder.credentials(Credentials::new(
                    user.clone(),
                    password.clone().unwrap_or_default(),
                ));
            }
            (None, Some(_)) => return Err(SettingsError::PasswordWithoutUser),
            (None, None) => {}
        }
        Ok(Self {
            transport: builder.build(),
            from,
            deadline: settings.timeout,
            password: settings.password.clone().filter(|p| !p.is_empty()),
        })
    }

    /// Sends one message.
    pub async fn send(&self, email: &Email) -> Result<(), SendError> {
        let message = self.message(email)?;
        match tokio::time::timeout(self.deadline, self.transport.send(message)).await {
            Err(_) => Err(SendError::Transient(format!(
                "no answer within {} ms",
                self.deadline.as_millis()
            ))),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) if e.is_permanent() => Err(SendError::Permanent(self.describe(&e))),
            Ok(Err(e)) => Err(SendError::Transient(self.describe(&e))),
        }
    }

    fn message(&self, email: &Email) -> Result<Message, SendError> {
        let to = check(email)?;
        Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to))
            .subject(email.subject.as_str())
            .multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                email.html.clone(),
            ))
            .map_err(|_| SendError::Build)
    }

    /// What went wrong, for the log: lettre's own description (the server's reply code and
    /// text, or the I/O or TLS failure), shortened. The message body is never part of it, and
    /// the password is replaced should a server ever echo it.
    fn describe(&self, e: &lettre::transport::smtp::Error) -> String {
        let mut s = e.to_string();
        if let Some(password) = &self.password {
            s = s.replace(password.as_str(), "<redacted>");
        }
        s.chars().take(300).collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn settings() -> SmtpSettings {
        SmtpSettings {
            host: "127.0.0.1".into(),
            port: 2525,
            tls: TlsMode::Off,
            tls_server_name: None,
            extra_root_pem: None,
            username: Some("mailer".into()),
            password: Some("hunter2-secret".into()),
            from: "noreply@example.com".into(),
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn debug_never_shows_the_password() {
        let s = format!("{:?}", settings());
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("<redacted>"));
    }

    #[test]
    fn bad_settings_are_refused() {
        let mut s = settings();
        s.from = "not an address".into();
        assert_eq!(SmtpSender::new(&s).err(), Some(SettingsError::From));
        let mut s = settings();
        s.username = None;
        assert_eq!(
            SmtpSender::new(&s).err(),
            Some(SettingsError::PasswordWithoutUser)
        );
        let mut s = settings();
        s.tls = TlsMode::StartTls;
        s.extra_root_pem = Some(b"-----BEGIN CERTIFICATE-----\nnope\n".to_vec());
        assert_eq!(
            SmtpSender::new(&s).err(),
            Some(SettingsError::RootCertificate)
        );
    }

    #[test]
    fn the_from_mailbox_may_have_a_display_name_but_no_line_break() {
        for ok in [
            "noreply@example.com",
            "Authara <no-reply@localhost>",
            "\"Example, Inc.\" <noreply@example.com>",
        ] {
            assert!(parse_mailbox(ok).is_some(), "{ok:?}");
            let mut s = settings();
            s.from = ok.into();
            assert!(SmtpSender::new(&s).is_ok(), "{ok:?}");
        }
        for bad in [
            "",
            "Authara",
            "Authara <no-reply>",
            "a@example.com\r\nBcc: evil@example.com",
            "Authara\n <a@example.com>",
            "a@example.com, b@example.com",
        ] {
            assert!(parse_mailbox(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn headers_cannot_be_injected() {
        let sender = SmtpSender::new(&settings()).unwrap();
        let email = |to: &str, subject: &str| Email {
            to: to.into(),
            subject: subject.into(),
            text: "t".into(),
            html: "<p>h</p>".into(),
        };
        for to in [
            "a@example.com\r\nBcc: evil@example.com",
            "a@example.com\nBcc: evil@example.com",
            "a@example.com, b@example.com",
            "",
        ] {
            assert!(
                matches!(sender.message(&email(to, "Hi")), Err(SendError::Recipient)),
                "{to:?}"
            );
        }
        for subject in ["Hi\r\nBcc: evil@example.com", "Hi\nX: y", "Hi\0"] {
            assert!(
                matches!(
                    sender.message(&email("a@example.com", subject)),
                    Err(SendError::Subject)
                ),
                "{subject:?}"
            );
        }
        assert!(sender.message(&email("a@example.com", "Your code")).is_ok());
    }
}

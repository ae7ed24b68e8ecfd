//! Email: upstream's thirteen `AUTHARA_EMAIL_*` variables and our
//! `AUTHARA_EMAIL_SMTP_TLS_CA_FILE`, read into [`EmailConfig`].
//!
//! Decisions:
//! - `AUTHARA_EMAIL_PROVIDER` is `smtp`, `noop` or `log`. The default is `log` in dev (codes
//!   show up in the server's log, so signup and reset work without a mail server) and `noop` in
//!   prod, as upstream. `log` is refused in prod: it writes every code to the log.
//! - Prod refuses `AUTHARA_CHALLENGE_ENABLED=true` with `noop` (upstream's check: nobody could
//!   ever complete a signup); dev only warns.
//! - `AUTHARA_EMAIL_FROM` is an RFC 5322 mailbox (`no-reply@example.org` or
//!   `Authara <no-reply@example.org>`), parsed as lettre parses it, without control characters;
//!   required for smtp, `Authara <no-reply@localhost>` otherwise.
//! - For smtp the host is required; the username and the password go together (one without
//!   the other is an error). The password is taken verbatim, kept in a [`Secret`] and never
//!   shown. `AUTHARA_EMAIL_SMTP_TLS=false` (plaintext) is refused in prod. STARTTLS is the only
//!   TLS (implicit TLS on 465 is not supported, as upstream): port 465 with TLS on is warned
//!   about. The SMTP settings are checked by building the sender (nothing is contacted).
//! - `AUTHARA_EMAIL_SMTP_TLS_CA_FILE` (ours): an extra CA to trust, for private mail servers (a
//!   PEM file, read at start).
//! - `AUTHARA_EMAIL_SMTP_TIMEOUT` bounds every send whatever the provider. The SMTP variables
//!   set with another provider are warned about as ignored.

use super::env::{err, shown, Env};
use super::{AppEnv, ConfigError, Secret};
use authara_core::challenge::ChallengeSettings;
use std::fmt;
use std::time::Duration;

/// The names of this section's variables.
pub mod var {
    /// `smtp`, `noop` or `log`.
    pub const EMAIL_PROVIDER: &str = "AUTHARA_EMAIL_PROVIDER";
    /// The `From` mailbox.
    pub const EMAIL_FROM: &str = "AUTHARA_EMAIL_FROM";
    /// The SMTP relay's host.
    pub const EMAIL_SMTP_HOST: &str = "AUTHARA_EMAIL_SMTP_HOST";
    /// The SMTP relay's port.
    pub const EMAIL_SMTP_PORT: &str = "AUTHARA_EMAIL_SMTP_PORT";
    /// `AUTH` user.
    pub const EMAIL_SMTP_USERNAME: &str = "AUTHARA_EMAIL_SMTP_USERNAME";
    /// `AUTH` password.
    pub const EMAIL_SMTP_PASSWORD: &str = "AUTHARA_EMAIL_SMTP_PASSWORD";
    /// STARTTLS required.
    pub const EMAIL_SMTP_TLS: &str = "AUTHARA_EMAIL_SMTP_TLS";
    /// Ours: an extra CA (PEM file) to trust, for private mail servers.
    pub const EMAIL_SMTP_TLS_CA_FILE: &str = "AUTHARA_EMAIL_SMTP_TLS_CA_FILE";
    /// Bound on one send.
    pub const EMAIL_SMTP_TIMEOUT: &str = "AUTHARA_EMAIL_SMTP_TIMEOUT";
    /// Email workers per instance.
    pub const EMAIL_WORKER_COUNT: &str = "AUTHARA_EMAIL_WORKER_COUNT";
    /// Pause of an idle worker.
    pub const EMAIL_WORKER_POLL_INTERVAL: &str = "AUTHARA_EMAIL_WORKER_POLL_INTERVAL";
    /// Attempts before a job is marked failed.
    pub const EMAIL_JOB_MAX_ATTEMPTS: &str = "AUTHARA_EMAIL_JOB_MAX_ATTEMPTS";
    /// How long sent jobs are kept.
    pub const EMAIL_CLEANUP_SENT_AFTER: &str = "AUTHARA_EMAIL_CLEANUP_SENT_AFTER";
    /// How long failed jobs are kept.
    pub const EMAIL_CLEANUP_FAILED_AFTER: &str = "AUTHARA_EMAIL_CLEANUP_FAILED_AFTER";
    /// Whether invitation emails show the token as a code to type.
    pub const INVITATION_EMAIL_INCLUDE_CODE: &str = "AUTHARA_INVITATION_EMAIL_INCLUDE_CODE";
}

use super::var::CHALLENGE_ENABLED;
use var::*;

/// The variables that only matter with `smtp`.
const SMTP_ONLY: [&str; 6] = [
    EMAIL_SMTP_HOST,
    EMAIL_SMTP_PORT,
    EMAIL_SMTP_USERNAME,
    EMAIL_SMTP_PASSWORD,
    EMAIL_SMTP_TLS,
    EMAIL_SMTP_TLS_CA_FILE,
];

/// The `From` of the log and noop providers when none is set.
pub const DEFAULT_FROM: &str = "Authara <no-reply@localhost>";
/// Longest accepted host name, in bytes.
const MAX_HOST_BYTES: usize = 253;
/// Longest accepted CA file, in bytes.
const MAX_CA_FILE_BYTES: u64 = 1024 * 1024;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
/// Longest accepted retention (ten years, as elsewhere).
const MAX_RETENTION: Duration = Duration::from_secs(3650 * 86_400);

/// Where emails go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailProvider {
    /// An SMTP relay ([`SmtpConfig`]).
    Smtp,
    /// Nothing is sent; jobs are marked sent.
    Noop,
    /// Development: messages (codes included) are written to the log.
    Log,
}

impl EmailProvider {
    /// The configured name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Smtp => "smtp",
            Self::Noop => "noop",
            Self::Log => "log",
        }
    }
}

/// The SMTP relay.
#[derive(Clone)]
pub struct SmtpConfig {
    pub host: String,
    /// Default 587.
    pub port: u16,
    /// `AUTH` with these when set (both or neither).
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// STARTTLS required (default true; must be true in prod).
    pub tls: bool,
    /// The extra CA to trust: the file's path and its PEM.
    pub ca_file: Option<(String, Vec<u8>)>,
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("tls", &self.tls)
            .field("ca_file", &self.ca_file.as_ref().map(|(path, _)| path))
            .finish()
    }
}

/// How emails are sent and how the outbox is worked.
#[derive(Debug, Clone)]
pub struct EmailConfig {
    pub provider: EmailProvider,
    /// The `From` mailbox, as configured (trimmed).
    pub from: String,
    /// The relay; set exactly when the provider is smtp.
    pub smtp: Option<SmtpConfig>,
    /// Bound on one send, whatever the provider (default 10 s).
    pub timeout: Duration,
    /// Email workers per instance (default 2).
    pub worker_count: u32,
    /// Pause of an idle worker between two claims (default 2 s).
    pub poll_interval: Duration,
    /// Attempts before a job is marked failed (default 10; retries 30 s apart).
    pub job_max_attempts: u32,
    /// How long sent jobs are kept (default 720 h).
    pub cleanup_sent_after: Duration,
    /// How long failed jobs are kept (default 2160 h).
    pub cleanup_failed_after: Duration,
    /// `AUTHARA_INVITATION_EMAIL_INCLUDE_CODE` (default off, upstream's).
    pub invitation_include_code: bool,
}

impl EmailConfig {
    /// The sender's settings when the provider is smtp.
    pub fn smtp_settings(&self) -> Option<authara_smtp::SmtpSettings> {
        let smtp = self.smtp.as_ref()?;
        Some(authara_smtp::SmtpSettings {
            host: smtp.host.clone(),
            port: smtp.port,
            tls: if smtp.tls {
                authara_smtp::TlsMode::StartTls
            } else {
                authara_smtp::TlsMode::Off
            },
            tls_server_name: None,
            extra_root_pem: smtp.ca_file.as_ref().map(|(_, pem)| pem.clone()),
            username: smtp.username.clone(),
            password: smtp.password.as_ref().map(|p| p.expose().to_owned()),
            from: self.from.clone(),
            timeout: self.timeout,
        })
    }
}

/// Reads the section; `challenge` is the section read before it (for upstream's cross-check).
pub(super) fn read(
    e: &Env<'_>,
    env: AppEnv,
    challenge: &ChallengeSettings,
    warnings: &mut Vec<String>,
) -> Result<EmailConfig, ConfigError> {
    let provider = provider(e, env)?;
    if challenge.enabled && provider == EmailProvider::Noop {
        if env == AppEnv::Prod {
            return Err(err(
                EMAIL_PROVIDER,
                format!(
                    "must not be noop when {CHALLENGE_ENABLED}=true and APP_ENV is prod: \
                     nobody would ever get a verification code (use smtp)"
                ),
            ));
        }
        warnings.push(format!(
            "{CHALLENGE_ENABLED}=true with {EMAIL_PROVIDER}=noop: verification codes are never sent, \
             so nobody can complete a signup (refused when APP_ENV is prod)"
        ));
    }
    let from = from(e, provider)?;
    let timeout = e.duration(
        EMAIL_SMTP_TIMEOUT,
        Duration::from_secs(10),
        5 * MINUTE,
        false,
    )?;
    let worker_count = e.whole(EMAIL_WORKER_COUNT, 2, 1, 64, "")?;
    let poll_interval = e.duration(
        EMAIL_WORKER_POLL_INTERVAL,
        Duration::from_secs(2),
        HOUR,
        false,
    )?;
    let job_max_attempts = e.whole(EMAIL_JOB_MAX_ATTEMPTS, 10, 1, 100, "")?;
    let cleanup_sent_after =
        e.duration(EMAIL_CLEANUP_SENT_AFTER, 720 * HOUR, MAX_RETENTION, false)?;
    let cleanup_failed_after = e.duration(
        EMAIL_CLEANUP_FAILED_AFTER,
        2160 * HOUR,
        MAX_RETENTION,
        false,
    )?;
    let mut config = EmailConfig {
        provider,
        from,
        smtp: None,
        timeout,
        worker_count,
        poll_interval,
        job_max_attempts,
        cleanup_sent_after,
        cleanup_failed_after,
        invitation_include_code: e.boolean(INVITATION_EMAIL_INCLUDE_CODE, false)?,
    };
    if provider == EmailProvider::Smtp {
        config.smtp = Some(smtp(e, env, warnings)?);
        check_sender(&config)?;
    } else {
        let set: Vec<&str> = SMTP_ONLY
            .into_iter()
            .filter(|v| e.raw(v).is_some())
            .collect();
        if !set.is_empty() {
            warnings.push(format!(
                "{} {} ignored: {EMAIL_PROVIDER} is {}",
                set.join(", "),
                if set.len() == 1 { "is" } else { "are" },
                provider.as_str()
            ));
        }
    }
    Ok(config)
}

fn provider(e: &Env<'_>, env: AppEnv) -> Result<EmailProvider, ConfigError> {
    let Some(v) = e.get(EMAIL_PROVIDER) else {
        return Ok(match env {
            AppEnv::Dev => EmailProvider::Log,
            AppEnv::Prod => EmailProvider::Noop,
        });
    };
    let provider = match v.to_ascii_lowercase().as_str() {
        "smtp" => EmailProvider::Smtp,
        "noop" => EmailProvider::Noop,
        "log" => EmailProvider::Log,
        _ => {
            return Err(err(
                EMAIL_PROVIDER,
                format!("must be smtp, noop or log, got {}", shown(&v)),
            ))
        }
    };
    if provider == EmailProvider::Log && env == AppEnv::Prod {
        return Err(err(
            EMAIL_PROVIDER,
            "must not be log when APP_ENV is prod: it writes every verification code to the log \
             (use smtp, or noop to send nothing)",
        ));
    }
    Ok(provider)
}

fn from(e: &Env<'_>, provider: EmailProvider) -> Result<String, ConfigError> {
    let Some(v) = e.get(EMAIL_FROM) else {
        if provider == EmailProvider::Smtp {
            return Err(err(
                EMAIL_FROM,
                "is required when AUTHARA_EMAIL_PROVIDER is smtp",
            ));
        }
        return Ok(DEFAULT_FROM.to_owned());
    };
    if authara_smtp::parse_mailbox(&v).is_none() {
        return Err(err(
            EMAIL_FROM,
            format!(
                "must be an email address such as no-reply@example.org or \
                 \"Authara <no-reply@example.org>\", got {}",
                shown(&v)
            ),
        ));
    }
    Ok(v)
}

fn smtp(e: &Env<'_>, env: AppEnv, warnings: &mut Vec<String>) -> Result<SmtpConfig, ConfigError> {
    let host = e.get(EMAIL_SMTP_HOST).ok_or_else(|| {
        err(
            EMAIL_SMTP_HOST,
            "is required when AUTHARA_EMAIL_PROVIDER is smtp",
        )
    })?;
    if host.contains("://") {
        return Err(err(
            EMAIL_SMTP_HOST,
            format!(
                "must be a host name or an IP address, not a URL, got {}",
                shown(&host)
            ),
        ));
    }
    if !is_host(&host) {
        return Err(err(
            EMAIL_SMTP_HOST,
            format!("must be a host name or an IP address, got {}", shown(&host)),
        ));
    }
    let port = e.whole(EMAIL_SMTP_PORT, 587u16, 1, 65_535, "")?;
    let username = e.get(EMAIL_SMTP_USERNAME);
    if username
        .as_deref()
        .is_some_and(|u| u.chars().any(char::is_control))
    {
        return Err(err(
            EMAIL_SMTP_USERNAME,
            "must not contain control characters",
        ));
    }
    let password = e.raw(EMAIL_SMTP_PASSWORD);
    match (&username, &password) {
        (Some(_), None) => {
            return Err(err(
                EMAIL_SMTP_PASSWORD,
                "is required when AUTHARA_EMAIL_SMTP_USERNAME is set",
            ))
        }
        (None, Some(_)) => {
            return Err(err(
                EMAIL_SMTP_USERNAME,
                "is required when AUTHARA_EMAIL_SMTP_PASSWORD is set",
            ))
        }
        _ => {}
    }
    let tls = e.boolean(EMAIL_SMTP_TLS, true)?;
    if !tls && env == AppEnv::Prod {
        return Err(err(
            EMAIL_SMTP_TLS,
            "must be true when APP_ENV is prod: codes and the SMTP password would cross the \
             network in plaintext",
        ));
    }
    if tls && port == 465 {
        warnings.push(format!(
            "{EMAIL_SMTP_PORT} is 465 (implicit TLS), which is not supported: Authara speaks \
             STARTTLS, usually on port 587"
        ));
    }
    let ca_file = match e.get(EMAIL_SMTP_TLS_CA_FILE) {
        None => None,
        Some(path) => {
            if !tls {
                warnings.push(format!(
                    "{EMAIL_SMTP_TLS_CA_FILE} is ignored: {EMAIL_SMTP_TLS} is false"
                ));
            }
            Some(read_ca_file(&path)?)
        }
    };
    Ok(SmtpConfig {
        host,
        port,
        username,
        password: password.map(Secret::new),
        tls,
        ca_file,
    })
}

/// An IP address, or a DNS name: dot-separated labels of ASCII letters, digits, `-` and `_`.
fn is_host(host: &str) -> bool {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    !name.is_empty()
        && host.len() <= MAX_HOST_BYTES
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// `AUTHARA_EMAIL_SMTP_TLS_CA_FILE`: the file's contents (checked as a certificate when the
/// sender is built).
fn read_ca_file(path: &str) -> Result<(String, Vec<u8>), ConfigError> {
    let fail = |why: String| err(EMAIL_SMTP_TLS_CA_FILE, format!("{why}: {}", shown(path)));
    let too_large = || fail(format!("is larger than {MAX_CA_FILE_BYTES} bytes"));
    match std::fs::metadata(path) {
        Ok(m) if m.len() > MAX_CA_FILE_BYTES => return Err(too_large()),
        Ok(_) => {}
        Err(e) => return Err(fail(format!("cannot be read ({})", e.kind()))),
    }
    let pem = std::fs::read(path).map_err(|e| fail(format!("cannot be read ({})", e.kind())))?;
    if u64::try_from(pem.len()).unwrap_or(u64::MAX) > MAX_CA_FILE_BYTES {
        return Err(too_large());
    }
    Ok((path.to_owned(), pem))
}

/// Builds the sender once (nothing is contacted), so that what it refuses is a configuration
/// error naming its variable rather than a failure at start.
fn check_sender(config: &EmailConfig) -> Result<(), ConfigError> {
    let Some(settings) = config.smtp_settings() else {
        return Ok(());
    };
    match authara_smtp::SmtpSender::new(&settings) {
        Ok(_) => Ok(()),
        Err(authara_smtp::SettingsError::From) => Err(err(
            EMAIL_FROM,
            format!("is not a valid email address, got {}", shown(&config.from)),
        )),
        Err(authara_smtp::SettingsError::RootCertificate) => {
            let path = config
                .smtp
                .as_ref()
                .and_then(|s| s.ca_file.as_ref())
                .map_or("", |(path, _)| path.as_str());
            Err(err(
                EMAIL_SMTP_TLS_CA_FILE,
                format!("does not hold a PEM certificate: {}", shown(path)),
            ))
        }
        Err(authara_smtp::SettingsError::Tls) => Err(err(
            EMAIL_SMTP_HOST,
            format!(
                "is not a name a TLS certificate can carry, got {}",
                shown(&settings.host)
            ),
        )),
        Err(authara_smtp::SettingsError::PasswordWithoutUser) => Err(err(
            EMAIL_SMTP_USERNAME,
            "is required when AUTHARA_EMAIL_SMTP_PASSWORD is set",
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::super::testing::{assert_messages, load, prod_with};
    use super::super::Config;
    use super::*;

    /// A self-signed certificate for `mail.test` (ECDSA P-256, valid until 2126).
    const CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBljCCATugAwIBAgIUIqLexOa2YqucUNJPEMC6uy9aIR8wCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbWFpbC50ZXN0MCAXDTI2MTIwMzEzNDA1MFoYDzIxMjYxMTA5
MTM0MDUwWjAUMRIwEAYDVQQDDAltYWlsLnRlc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAQUlU3A0GaRBZCZZEBWsGiirEKeeQ7qRR6Fk4NF/X+9imRE+oEwIsDX
Y1Du5BXuOuNly5ps6aVMCDaLWwyyZxE2o2kwZzAdBgNVHQ4EFgQUolvPrBLhzBzj
EHLN6e+wqXUX7B8wHwYDVR0jBBgwFoAUolvPrBLhzBzjEHLN6e+wqXUX7B8wDwYD
VR0TAQH/BAUwAwEB/zAUBgNVHREEDTALggltYWlsLnRlc3QwCgYIKoZIzj0EAwID
SQAwRgIhAIXNRF5DdXGlHcZEgKpjdt4DlzesZXdzGmLBMFTMEb3MAiEAscGE0vcl
oopHsPEerLLXiXsw9hIQkWXEkoIeg/iTnmA=
-----END CERTIFICATE-----
";

    fn smtp_with<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        [
            (EMAIL_PROVIDER, "smtp"),
            (EMAIL_FROM, "Authara <no-reply@example.org>"),
            (EMAIL_SMTP_HOST, "smtp.example.org"),
        ]
        .iter()
        .chain(extra)
        .copied()
        .collect()
    }

    fn relay(c: &Config) -> &SmtpConfig {
        match &c.email.smtp {
            Some(s) => s,
            None => panic!("no SMTP relay: {c:?}"),
        }
    }

    fn temp_file(contents: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, contents).unwrap();
        f
    }

    #[test]
    fn dev_logs_emails_and_prod_discards_them_by_default() {
        let c = load(&[]).unwrap();
        let e = &c.email;
        assert_eq!(e.provider, EmailProvider::Log);
        assert_eq!(e.from, "Authara <no-reply@localhost>");
        assert!(e.smtp.is_none());
        assert!(e.smtp_settings().is_none());
        assert_eq!(e.timeout, Duration::from_secs(10));
        assert_eq!(e.worker_count, 2);
        assert_eq!(e.poll_interval, Duration::from_secs(2));
        assert_eq!(e.job_max_attempts, 10);
        assert_eq!(e.cleanup_sent_after, Duration::from_secs(720 * 3600));
        assert_eq!(e.cleanup_failed_after, Duration::from_secs(2160 * 3600));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);

        let c = load(&prod_with(&[])).unwrap();
        assert_eq!(c.email.provider, EmailProvider::Noop);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let c = load(&[(EMAIL_PROVIDER, " NOOP ")]).unwrap();
        assert_eq!(c.email.provider, EmailProvider::Noop);
    }

    #[test]
    fn smtp_defaults_and_every_value() {
        let c = load(&smtp_with(&[])).unwrap();
        let s = relay(&c);
        assert_eq!(c.email.provider, EmailProvider::Smtp);
        assert_eq!(c.email.from, "Authara <no-reply@example.org>");
        assert_eq!(s.host, "smtp.example.org");
        assert_eq!(s.port, 587);
        assert!(s.tls);
        assert!(s.username.is_none() && s.password.is_none() && s.ca_file.is_none());
        assert!(load(&prod_with(&smtp_with(&[]))).is_ok());
        for host in [
            "127.0.0.1",
            "::1",
            "localhost",
            "mail_relay.internal.",
            "MX-1.example.org",
        ] {
            let c = load(&smtp_with(&[(EMAIL_SMTP_HOST, host)])).unwrap();
            assert_eq!(relay(&c).host, host);
        }

        let ca = temp_file(CA_PEM.as_bytes());
        let ca_path = ca.path().to_str().unwrap().to_owned();
        let c = load(&smtp_with(&[
            (EMAIL_FROM, "no-reply@example.org"),
            (EMAIL_SMTP_PORT, "2525"),
            (EMAIL_SMTP_USERNAME, " mailer "),
            (EMAIL_SMTP_PASSWORD, " s3cret pass "),
            (EMAIL_SMTP_TLS_CA_FILE, &ca_path),
            (EMAIL_SMTP_TIMEOUT, "1500ms"),
            (EMAIL_WORKER_COUNT, "8"),
            (EMAIL_WORKER_POLL_INTERVAL, "250ms"),
            (EMAIL_JOB_MAX_ATTEMPTS, "1"),
            (EMAIL_CLEANUP_SENT_AFTER, "1h"),
            (EMAIL_CLEANUP_FAILED_AFTER, "48h"),
        ]))
        .unwrap();
        let s = relay(&c);
        assert_eq!(s.port, 2525);
        assert_eq!(s.username.as_deref(), Some("mailer"));
        assert_eq!(
            s.password.as_ref().map(Secret::<String>::expose),
            Some(" s3cret pass "),
            "passwords are taken verbatim"
        );
        assert_eq!(s.ca_file.as_ref().unwrap().1, CA_PEM.as_bytes());
        let e = &c.email;
        assert_eq!(e.timeout, Duration::from_millis(1500));
        assert_eq!(e.worker_count, 8);
        assert_eq!(e.poll_interval, Duration::from_millis(250));
        assert_eq!(e.job_max_attempts, 1);
        assert_eq!(e.cleanup_sent_after, Duration::from_secs(3600));
        assert_eq!(e.cleanup_failed_after, Duration::from_secs(48 * 3600));
        let settings = e.smtp_settings().unwrap();
        assert_eq!(settings.tls, authara_smtp::TlsMode::StartTls);
        assert_eq!(settings.password.as_deref(), Some(" s3cret pass "));
        assert_eq!(settings.extra_root_pem.as_deref(), Some(CA_PEM.as_bytes()));
        assert_eq!(settings.timeout, Duration::from_millis(1500));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);

        let c = load(&smtp_with(&[(EMAIL_SMTP_TLS, "false")])).unwrap();
        assert!(!relay(&c).tls, "plaintext is fine in dev");
        assert_eq!(
            c.email.smtp_settings().unwrap().tls,
            authara_smtp::TlsMode::Off
        );
    }

    #[test]
    fn every_invalid_email_setting_has_its_own_one_line_message() {
        let not_pem = temp_file(b"-----BEGIN CERTIFICATE-----\nnope\n");
        let not_pem = not_pem.path().to_str().unwrap().to_owned();
        let missing = "/nonexistent/authara-test-ca.pem";
        let cases: Vec<(Vec<(&str, &str)>, String)> = vec![
            (
                vec![(EMAIL_PROVIDER, "sendgrid")],
                r#"AUTHARA_EMAIL_PROVIDER must be smtp, noop or log, got "sendgrid""#.into(),
            ),
            (
                prod_with(&[(EMAIL_PROVIDER, "log")]),
                "AUTHARA_EMAIL_PROVIDER must not be log when APP_ENV is prod: it writes every verification code to the log (use smtp, or noop to send nothing)".into(),
            ),
            (
                prod_with(&[("AUTHARA_CHALLENGE_ENABLED", "true")]),
                "AUTHARA_EMAIL_PROVIDER must not be noop when AUTHARA_CHALLENGE_ENABLED=true and APP_ENV is prod: nobody would ever get a verification code (use smtp)".into(),
            ),
            (
                vec![(EMAIL_PROVIDER, "smtp"), (EMAIL_SMTP_HOST, "smtp.example.org")],
                "AUTHARA_EMAIL_FROM is required when AUTHARA_EMAIL_PROVIDER is smtp".into(),
            ),
            (
                vec![(EMAIL_FROM, "Authara")],
                r#"AUTHARA_EMAIL_FROM must be an email address such as no-reply@example.org or "Authara <no-reply@example.org>", got "Authara""#.into(),
            ),
            (
                smtp_with(&[(EMAIL_FROM, "a@example.org\r\nBcc: evil@example.org")]),
                r#"AUTHARA_EMAIL_FROM must be an email address such as no-reply@example.org or "Authara <no-reply@example.org>", got "a@example.org\r\nBcc: evil@example.org""#.into(),
            ),
            (
                vec![(EMAIL_PROVIDER, "smtp"), (EMAIL_FROM, "a@example.org")],
                "AUTHARA_EMAIL_SMTP_HOST is required when AUTHARA_EMAIL_PROVIDER is smtp".into(),
            ),
            (
                smtp_with(&[(EMAIL_SMTP_HOST, "smtp://smtp.example.org")]),
                r#"AUTHARA_EMAIL_SMTP_HOST must be a host name or an IP address, not a URL, got "smtp://smtp.example.org""#.into(),
            ),
            (
                smtp_with(&[(EMAIL_SMTP_HOST, "smtp.example.org/relay")]),
                r#"AUTHARA_EMAIL_SMTP_HOST must be a host name or an IP address, got "smtp.example.org/relay""#.into(),
            ),
            (
                smtp_with(&[(EMAIL_SMTP_HOST, "bad host!")]),
                r#"AUTHARA_EMAIL_SMTP_HOST must be a host name or an IP address, got "bad host!""#.into(),
            ),
            (
                smtp_with(&[(EMAIL_SMTP_HOST, "smtp..example.org")]),
                r#"AUTHARA_EMAIL_SMTP_HOST must be a host name or an IP address, got "smtp..example.org""#.into(),
            ),
            (
                smtp_with(&[(EMAIL_SMTP_PORT, "0")]),
                r#"AUTHARA_EMAIL_SMTP_PORT must be a whole number from 1 to 65535, got "0""#.into(),
            ),
            (
                smtp_with(&[(EMAIL_SMTP_USERNAME, "mailer")]),
                "AUTHARA_EMAIL_SMTP_PASSWORD is required when AUTHARA_EMAIL_SMTP_USERNAME is set".into(),
            ),
            (
                smtp_with(&[(EMAIL_SMTP_PASSWORD, "hunter2")]),
                "AUTHARA_EMAIL_SMTP_USERNAME is required when AUTHARA_EMAIL_SMTP_PASSWORD is set".into(),
            ),
            (
                smtp_with(&[(EMAIL_SMTP_USERNAME, "mail\u{7}er"), (EMAIL_SMTP_PASSWORD, "hunter2")]),
                "AUTHARA_EMAIL_SMTP_USERNAME must not contain control characters".into(),
            ),
            (
                smtp_with(&[(EMAIL_SMTP_TLS, "perhaps")]),
                r#"AUTHARA_EMAIL_SMTP_TLS must be true or false (or 1/0, yes/no, on/off), got "perhaps""#.into(),
            ),
            (
                prod_with(&smtp_with(&[(EMAIL_SMTP_TLS, "false")])),
                "AUTHARA_EMAIL_SMTP_TLS must be true when APP_ENV is prod: codes and the SMTP password would cross the network in plaintext".into(),
            ),
            (
                smtp_with(&[(EMAIL_SMTP_TLS_CA_FILE, missing)]),
                format!("AUTHARA_EMAIL_SMTP_TLS_CA_FILE cannot be read (entity not found): {missing:?}"),
            ),
            (
                smtp_with(&[(EMAIL_SMTP_TLS_CA_FILE, &not_pem)]),
                format!("AUTHARA_EMAIL_SMTP_TLS_CA_FILE does not hold a PEM certificate: {not_pem:?}"),
            ),
            (
                vec![(EMAIL_SMTP_TIMEOUT, "0s")],
                r#"AUTHARA_EMAIL_SMTP_TIMEOUT must be longer than 0, got "0s""#.into(),
            ),
            (
                vec![(EMAIL_SMTP_TIMEOUT, "6m")],
                r#"AUTHARA_EMAIL_SMTP_TIMEOUT must be at most 5m, got "6m""#.into(),
            ),
            (
                vec![(EMAIL_WORKER_COUNT, "0")],
                r#"AUTHARA_EMAIL_WORKER_COUNT must be a whole number from 1 to 64, got "0""#.into(),
            ),
            (
                vec![(EMAIL_WORKER_POLL_INTERVAL, "0")],
                r#"AUTHARA_EMAIL_WORKER_POLL_INTERVAL must be longer than 0, got "0""#.into(),
            ),
            (
                vec![(EMAIL_JOB_MAX_ATTEMPTS, "0")],
                r#"AUTHARA_EMAIL_JOB_MAX_ATTEMPTS must be a whole number from 1 to 100, got "0""#.into(),
            ),
            (
                vec![(EMAIL_CLEANUP_SENT_AFTER, "30d")],
                r#"AUTHARA_EMAIL_CLEANUP_SENT_AFTER must be a duration such as 10s, 15m or 1h30m (units ms, s, m, h), got "30d": unknown unit "d" (use ms, s, m or h)"#.into(),
            ),
            (
                vec![(EMAIL_CLEANUP_FAILED_AFTER, "87601h")],
                r#"AUTHARA_EMAIL_CLEANUP_FAILED_AFTER must be at most 87600h, got "87601h""#.into(),
            ),
        ];
        assert_messages(&cases);
    }

    #[test]
    fn warnings_say_what_is_ignored_or_will_not_work() {
        let c = load(&[
            (EMAIL_SMTP_HOST, "smtp.example.org"),
            (EMAIL_SMTP_PASSWORD, "hunter2"),
        ])
        .unwrap();
        assert_eq!(
            c.warnings,
            ["AUTHARA_EMAIL_SMTP_HOST, AUTHARA_EMAIL_SMTP_PASSWORD are ignored: AUTHARA_EMAIL_PROVIDER is log"]
        );
        let c = load(&[
            ("AUTHARA_CHALLENGE_ENABLED", "true"),
            (EMAIL_PROVIDER, "noop"),
        ])
        .unwrap();
        assert_eq!(
            c.warnings,
            ["AUTHARA_CHALLENGE_ENABLED=true with AUTHARA_EMAIL_PROVIDER=noop: verification codes are never sent, so nobody can complete a signup (refused when APP_ENV is prod)"]
        );
        let c = load(&smtp_with(&[(EMAIL_SMTP_PORT, "465")])).unwrap();
        assert_eq!(
            c.warnings,
            ["AUTHARA_EMAIL_SMTP_PORT is 465 (implicit TLS), which is not supported: Authara speaks STARTTLS, usually on port 587"]
        );
        let ca = temp_file(CA_PEM.as_bytes());
        let c = load(&smtp_with(&[
            (EMAIL_SMTP_TLS, "false"),
            (EMAIL_SMTP_TLS_CA_FILE, ca.path().to_str().unwrap()),
        ]))
        .unwrap();
        assert_eq!(
            c.warnings,
            ["AUTHARA_EMAIL_SMTP_TLS_CA_FILE is ignored: AUTHARA_EMAIL_SMTP_TLS is false"]
        );
        // Challenges with a real provider are fine in prod.
        let c = load(&prod_with(&smtp_with(&[(
            "AUTHARA_CHALLENGE_ENABLED",
            "true",
        )])))
        .unwrap();
        assert!(c.challenge.enabled);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn debug_never_shows_the_smtp_password() {
        let c = load(&smtp_with(&[
            (EMAIL_SMTP_USERNAME, "mailer"),
            (EMAIL_SMTP_PASSWORD, "smtp-password-W4"),
        ]))
        .unwrap();
        let debug = format!("{c:?} {c:#?} {:?}", c.email.smtp_settings());
        assert!(!debug.contains("smtp-password-W4"), "{debug}");
        assert!(debug.contains("mailer") && debug.contains("smtp.example.org"));
    }
}

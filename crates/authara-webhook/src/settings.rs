//! What the workers are configured with: the `AUTHARA_WEBHOOK_*` variables, already parsed
//! (the binary's `config/webhooks.rs` reads them from the environment).

use std::fmt;
use std::time::Duration;

use reqwest::Url;

use crate::sign::WebhookSecret;

/// The receiver's URL (`AUTHARA_WEBHOOK_URL`): `http` or `https` with a host. `Debug` and
/// `Display` show scheme, host, port and path only: user info and the query may carry
/// credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint(Url);

/// Why a webhook URL was refused. The text never repeats the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// Not a URL.
    #[error("not a valid URL")]
    Invalid,
    /// Not `http` or `https`.
    #[error("the scheme must be http or https")]
    Scheme,
    /// No host.
    #[error("the URL has no host")]
    NoHost,
    /// A `#fragment` is never sent, so it is a mistake.
    #[error("the URL must not have a fragment")]
    Fragment,
}

impl Endpoint {
    /// Parses and checks a webhook URL.
    pub fn parse(s: &str) -> Result<Self, EndpointError> {
        let url = Url::parse(s.trim()).map_err(|_| EndpointError::Invalid)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(EndpointError::Scheme);
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(EndpointError::NoHost);
        }
        if url.fragment().is_some() {
            return Err(EndpointError::Fragment);
        }
        Ok(Self(url))
    }

    /// The full URL, for the request only.
    pub fn url(&self) -> &Url {
        &self.0
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = &self.0;
        write!(
            f,
            "{}://{}",
            url.scheme(),
            url.host_str().unwrap_or_default()
        )?;
        if let Some(port) = url.port() {
            write!(f, ":{port}")?;
        }
        f.write_str(url.path())
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Endpoint({self})")
    }
}

/// The webhook workers' settings. Build with [`Settings::new`] (upstream's defaults) and
/// override fields as configured.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `AUTHARA_WEBHOOK_URL`.
    pub url: Endpoint,
    /// `AUTHARA_WEBHOOK_SECRET`.
    pub secret: WebhookSecret,
    /// `AUTHARA_WEBHOOK_TIMEOUT` (5 s): one whole attempt, connect to last body byte read.
    pub timeout: Duration,
    /// `AUTHARA_WEBHOOK_WORKER_COUNT` (2). Zero starts no delivery worker (the reaper and the
    /// cleanup still run).
    pub worker_count: u32,
    /// `AUTHARA_WEBHOOK_MAX_DELIVERY_ATTEMPTS` (3); at least one attempt is always made.
    pub max_delivery_attempts: u32,
    /// `AUTHARA_WEBHOOK_PROCESSING_STALE_AFTER` (2 min): a claim older than this is re-queued.
    pub processing_stale_after: Duration,
    /// `AUTHARA_WEBHOOK_STALE_REAPER_INTERVAL` (1 min).
    pub stale_reaper_interval: Duration,
    /// `AUTHARA_WEBHOOK_DELIVERED_RETENTION` (24 h).
    pub delivered_retention: Duration,
    /// `AUTHARA_WEBHOOK_FAILED_RETENTION` (720 h).
    pub failed_retention: Duration,
    /// `AUTHARA_WEBHOOK_CLEANUP_INTERVAL` (1 h).
    pub cleanup_interval: Duration,
    /// `AUTHARA_WEBHOOK_MAINTENANCE_BATCH_SIZE` (1000): rows per reaper or cleanup statement.
    pub maintenance_batch_size: u32,
    /// `AUTHARA_WEBHOOK_ALLOW_PRIVATE_NETWORKS` (false): see [`crate::guard`].
    pub allow_private_networks: bool,
    /// How long an idle worker waits before looking for due events again (1 s, upstream's;
    /// not a variable, tests shorten it).
    pub poll_interval: Duration,
}

impl Settings {
    /// Upstream's defaults for everything but the URL and the secret.
    pub fn new(url: Endpoint, secret: WebhookSecret) -> Self {
        Self {
            url,
            secret,
            timeout: Duration::from_secs(5),
            worker_count: 2,
            max_delivery_attempts: 3,
            processing_stale_after: Duration::from_secs(120),
            stale_reaper_interval: Duration::from_secs(60),
            delivered_retention: Duration::from_secs(24 * 3600),
            failed_retention: Duration::from_secs(720 * 3600),
            cleanup_interval: Duration::from_secs(3600),
            maintenance_batch_size: 1000,
            allow_private_networks: false,
            poll_interval: Duration::from_secs(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_http_or_https_with_a_host() {
        let cases: &[(&str, Result<(), EndpointError>)] = &[
            ("https://hooks.example.com/authara", Ok(())),
            ("http://127.0.0.1:9000/hook?x=1", Ok(())),
            (" https://example.com ", Ok(())),
            ("ftp://example.com/", Err(EndpointError::Scheme)),
            ("file:///etc/passwd", Err(EndpointError::Scheme)),
            ("example.com/hook", Err(EndpointError::Invalid)),
            ("", Err(EndpointError::Invalid)),
            ("http://", Err(EndpointError::Invalid)),
            ("https://example.com/#top", Err(EndpointError::Fragment)),
        ];
        for (s, want) in cases {
            assert_eq!(Endpoint::parse(s).map(|_| ()), *want, "{s}");
        }
    }

    #[test]
    fn an_endpoint_shows_neither_user_info_nor_query() {
        let e = Endpoint::parse("https://user:hunter2@example.com:8443/hook?token=abc").unwrap();
        assert_eq!(e.to_string(), "https://example.com:8443/hook");
        let shown = format!("{e:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("abc"),
            "{shown}"
        );
        assert_eq!(e.url().query(), Some("token=abc"));
    }

    #[test]
    fn defaults_are_upstreams() {
        let s = Settings::new(
            Endpoint::parse("https://example.com/").unwrap(),
            WebhookSecret::new("0123456789abcdef0123456789abcdef").unwrap(),
        );
        assert_eq!(s.timeout, Duration::from_secs(5));
        assert_eq!(s.worker_count, 2);
        assert_eq!(s.max_delivery_attempts, 3);
        assert_eq!(s.processing_stale_after, Duration::from_secs(120));
        assert_eq!(s.stale_reaper_interval, Duration::from_secs(60));
        assert_eq!(s.delivered_retention, Duration::from_secs(86_400));
        assert_eq!(s.failed_retention, Duration::from_secs(2_592_000));
        assert_eq!(s.cleanup_interval, Duration::from_secs(3600));
        assert_eq!(s.maintenance_batch_size, 1000);
        assert!(!s.allow_private_networks);
        assert_eq!(s.poll_interval, Duration::from_secs(1));
        assert!(!format!("{s:?}").contains("0123456789abcdef"));
    }
}

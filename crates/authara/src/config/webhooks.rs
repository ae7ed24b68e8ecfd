//! Webhooks: upstream's twelve `AUTHARA_WEBHOOK_*` variables with upstream's defaults, and our
//! `AUTHARA_WEBHOOK_ALLOW_PRIVATE_NETWORKS`.
//!
//! Decisions:
//! - Webhooks are on when `AUTHARA_WEBHOOK_URL` is set; the URL and the secret go together (one
//!   without the other is an error). The other variables are validated even when webhooks are
//!   off, so that a typo is not silently ignored, and setting them without a URL is warned about.
//! - The URL must be `http(s)://` with a host, no credentials and no fragment; in prod it must
//!   use `https://` except for loopback hosts, as `PUBLIC_URL`. Its value is never shown in a
//!   message, and `Debug` shows only its origin: the path or query of a webhook URL often
//!   carries a token.
//! - The secret (the HMAC key) must be at least 32 characters in prod, as upstream; shorter is
//!   accepted in dev with a warning. It is never shown, and its `Debug` is `<redacted>`.
//! - `AUTHARA_WEBHOOK_ENABLED_EVENTS` is a comma list of the twelve types (exact names);
//!   unknown and repeated names are refused. Unset means every type.
//! - The per-request timeout must be shorter than the processing-stale threshold: otherwise the
//!   reaper could re-queue a delivery that is still in flight.

use super::duration::human;
use super::env::{err, shown, Env};
use super::url::parse_http_url;
use super::{AppEnv, ConfigError, Secret};
use authara_core::events::EventType;
use std::fmt;
use std::time::Duration;

/// The names of this section's variables.
pub mod var {
    /// The endpoint deliveries are posted to.
    pub const WEBHOOK_URL: &str = "AUTHARA_WEBHOOK_URL";
    /// The HMAC-SHA256 key of the signatures.
    pub const WEBHOOK_SECRET: &str = "AUTHARA_WEBHOOK_SECRET";
    /// The event types delivered (comma list; all when unset).
    pub const WEBHOOK_ENABLED_EVENTS: &str = "AUTHARA_WEBHOOK_ENABLED_EVENTS";
    /// Time one delivery request may take.
    pub const WEBHOOK_TIMEOUT: &str = "AUTHARA_WEBHOOK_TIMEOUT";
    /// Delivery workers per instance.
    pub const WEBHOOK_WORKER_COUNT: &str = "AUTHARA_WEBHOOK_WORKER_COUNT";
    /// Attempts before an event is marked failed.
    pub const WEBHOOK_MAX_DELIVERY_ATTEMPTS: &str = "AUTHARA_WEBHOOK_MAX_DELIVERY_ATTEMPTS";
    /// Age at which a claimed (processing) event is re-queued by the reaper.
    pub const WEBHOOK_PROCESSING_STALE_AFTER: &str = "AUTHARA_WEBHOOK_PROCESSING_STALE_AFTER";
    /// How often the reaper runs.
    pub const WEBHOOK_STALE_REAPER_INTERVAL: &str = "AUTHARA_WEBHOOK_STALE_REAPER_INTERVAL";
    /// How long delivered events are kept.
    pub const WEBHOOK_DELIVERED_RETENTION: &str = "AUTHARA_WEBHOOK_DELIVERED_RETENTION";
    /// How long failed events are kept.
    pub const WEBHOOK_FAILED_RETENTION: &str = "AUTHARA_WEBHOOK_FAILED_RETENTION";
    /// How often the retention cleanup runs.
    pub const WEBHOOK_CLEANUP_INTERVAL: &str = "AUTHARA_WEBHOOK_CLEANUP_INTERVAL";
    /// Rows the reaper and the cleanup handle per statement.
    pub const WEBHOOK_MAINTENANCE_BATCH_SIZE: &str = "AUTHARA_WEBHOOK_MAINTENANCE_BATCH_SIZE";
    /// Ours: whether deliveries may go to loopback and private addresses.
    pub const WEBHOOK_ALLOW_PRIVATE_NETWORKS: &str = "AUTHARA_WEBHOOK_ALLOW_PRIVATE_NETWORKS";
}

use var::*;

/// Every variable of the section.
const SECTION: [&str; 13] = [
    WEBHOOK_URL,
    WEBHOOK_SECRET,
    WEBHOOK_ENABLED_EVENTS,
    WEBHOOK_TIMEOUT,
    WEBHOOK_WORKER_COUNT,
    WEBHOOK_MAX_DELIVERY_ATTEMPTS,
    WEBHOOK_PROCESSING_STALE_AFTER,
    WEBHOOK_STALE_REAPER_INTERVAL,
    WEBHOOK_DELIVERED_RETENTION,
    WEBHOOK_FAILED_RETENTION,
    WEBHOOK_CLEANUP_INTERVAL,
    WEBHOOK_MAINTENANCE_BATCH_SIZE,
    WEBHOOK_ALLOW_PRIVATE_NETWORKS,
];

/// Upstream's shortest secret in prod, in characters.
pub const MIN_SECRET_CHARS: usize = 32;
/// Longest accepted secret, in bytes.
const MAX_SECRET_BYTES: usize = 4096;
/// Longest accepted URL, in bytes.
const MAX_URL_BYTES: usize = 2048;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);
/// Longest accepted retention (ten years, as the longest rotation interval).
const MAX_RETENTION: Duration = Duration::from_secs(3650 * 86_400);

/// How events are delivered to the webhook receiver.
#[derive(Clone)]
pub struct WebhookConfig {
    /// The endpoint, as configured (trimmed). May carry a token: `Debug` shows its origin only.
    pub url: String,
    /// The HMAC-SHA256 key.
    pub secret: Secret,
    /// The types delivered, in the configured order; every type by default.
    pub enabled_events: Vec<EventType>,
    /// Time one delivery request may take (default 5 s).
    pub timeout: Duration,
    /// Delivery workers per instance (default 2).
    pub worker_count: usize,
    /// Attempts before an event is marked failed (default 3).
    pub max_delivery_attempts: u32,
    /// A claimed event older than this is re-queued (default 2 min).
    pub processing_stale_after: Duration,
    /// How often the reaper runs (default 1 min).
    pub stale_reaper_interval: Duration,
    /// How long delivered events are kept (default 24 h).
    pub delivered_retention: Duration,
    /// How long failed events are kept (default 720 h).
    pub failed_retention: Duration,
    /// How often the retention cleanup runs (default 1 h).
    pub cleanup_interval: Duration,
    /// Rows per reaper or cleanup statement (default 1000).
    pub maintenance_batch_size: u32,
    /// Whether deliveries may go to loopback and private addresses (default false).
    pub allow_private_networks: bool,
}

impl WebhookConfig {
    /// Whether events of type `t` are delivered.
    pub fn enables(&self, t: EventType) -> bool {
        self.enabled_events.contains(&t)
    }
}

/// `scheme://authority` of `url`, followed by `/…` when the URL has more.
fn origin_only(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url
        .get(after_scheme..)
        .and_then(|rest| rest.find(['/', '?', '#']))
        .map_or(url.len(), |i| after_scheme + i);
    match url.get(..end) {
        Some(origin) if end < url.len() => format!("{origin}/…"),
        Some(origin) => origin.to_owned(),
        None => "<redacted>".to_owned(),
    }
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &origin_only(&self.url))
            .field("secret", &self.secret)
            .field("enabled_events", &self.enabled_events)
            .field("timeout", &self.timeout)
            .field("worker_count", &self.worker_count)
            .field("max_delivery_attempts", &self.max_delivery_attempts)
            .field("processing_stale_after", &self.processing_stale_after)
            .field("stale_reaper_interval", &self.stale_reaper_interval)
            .field("delivered_retention", &self.delivered_retention)
            .field("failed_retention", &self.failed_retention)
            .field("cleanup_interval", &self.cleanup_interval)
            .field("maintenance_batch_size", &self.maintenance_batch_size)
            .field("allow_private_networks", &self.allow_private_networks)
            .finish()
    }
}

/// The section: `None` when no URL is set (webhooks off).
pub(super) fn read(
    e: &Env<'_>,
    env: AppEnv,
    warnings: &mut Vec<String>,
) -> Result<Option<WebhookConfig>, ConfigError> {
    let endpoint = match (e.get(WEBHOOK_URL), e.get(WEBHOOK_SECRET)) {
        (Some(url), Some(secret)) => Some((url, secret)),
        (Some(_), None) => {
            return Err(err(
                WEBHOOK_SECRET,
                "is required when AUTHARA_WEBHOOK_URL is set",
            ))
        }
        (None, Some(_)) => {
            return Err(err(
                WEBHOOK_URL,
                "is required when AUTHARA_WEBHOOK_SECRET is set",
            ))
        }
        (None, None) => None,
    };
    let allow_private_networks = e.boolean(WEBHOOK_ALLOW_PRIVATE_NETWORKS, false)?;
    let url = match &endpoint {
        Some((url, _)) => Some(endpoint_url(url, env, allow_private_networks, warnings)?),
        None => None,
    };
    let secret = match &endpoint {
        Some((_, secret)) => Some(secret_key(secret, env, warnings)?),
        None => None,
    };
    let enabled_events = enabled_events(e)?;
    let timeout = e.duration(WEBHOOK_TIMEOUT, Duration::from_secs(5), 5 * MINUTE, false)?;
    let worker_count = e.whole(WEBHOOK_WORKER_COUNT, 2, 1, 64, "")?;
    let max_delivery_attempts = e.whole(WEBHOOK_MAX_DELIVERY_ATTEMPTS, 3, 1, 100, "")?;
    let processing_stale_after =
        e.duration(WEBHOOK_PROCESSING_STALE_AFTER, 2 * MINUTE, DAY, false)?;
    if timeout >= processing_stale_after {
        return Err(err(
            WEBHOOK_TIMEOUT,
            format!(
                "({}) must be shorter than {WEBHOOK_PROCESSING_STALE_AFTER} ({}): the reaper would re-queue deliveries still in flight",
                human(timeout),
                human(processing_stale_after)
            ),
        ));
    }
    let stale_reaper_interval = e.duration(WEBHOOK_STALE_REAPER_INTERVAL, MINUTE, DAY, false)?;
    let delivered_retention = e.duration(WEBHOOK_DELIVERED_RETENTION, DAY, MAX_RETENTION, false)?;
    let failed_retention = e.duration(WEBHOOK_FAILED_RETENTION, 30 * DAY, MAX_RETENTION, false)?;
    let cleanup_interval = e.duration(WEBHOOK_CLEANUP_INTERVAL, HOUR, DAY, false)?;
    let maintenance_batch_size = e.whole(WEBHOOK_MAINTENANCE_BATCH_SIZE, 1000, 1, 100_000, "")?;
    let (Some(url), Some(secret)) = (url, secret) else {
        let set: Vec<&str> = SECTION.into_iter().filter(|v| e.get(v).is_some()).collect();
        if !set.is_empty() {
            warnings.push(format!(
                "{} {} ignored: AUTHARA_WEBHOOK_URL is not set, so webhooks are off",
                set.join(", "),
                if set.len() == 1 { "is" } else { "are" }
            ));
        }
        return Ok(None);
    };
    Ok(Some(WebhookConfig {
        url,
        secret,
        enabled_events,
        timeout,
        worker_count,
        max_delivery_attempts,
        processing_stale_after,
        stale_reaper_interval,
        delivered_retention,
        failed_retention,
        cleanup_interval,
        maintenance_batch_size,
        allow_private_networks,
    }))
}

/// `AUTHARA_WEBHOOK_URL`, checked; the value is never part of a message.
fn endpoint_url(
    v: &str,
    env: AppEnv,
    allow_private_networks: bool,
    warnings: &mut Vec<String>,
) -> Result<String, ConfigError> {
    let fail = |why: &str| {
        err(
            WEBHOOK_URL,
            format!("{why} (the value is not shown: it may contain a token)"),
        )
    };
    if v.len() > MAX_URL_BYTES {
        return Err(fail(&format!("must be at most {MAX_URL_BYTES} bytes")));
    }
    let url = parse_http_url(v).map_err(fail)?;
    if url.rest.contains('#') {
        return Err(fail("must not contain a fragment"));
    }
    if env == AppEnv::Prod && !url.https && !url.loopback {
        return Err(fail(
            "must use https:// when APP_ENV is prod (http:// is allowed only for localhost)",
        ));
    }
    if url.loopback && !allow_private_networks {
        warnings.push(
            "AUTHARA_WEBHOOK_URL names a loopback host, which deliveries refuse unless \
             AUTHARA_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true"
                .to_owned(),
        );
    }
    Ok(v.to_owned())
}

/// `AUTHARA_WEBHOOK_SECRET`, checked; the value is never part of a message.
fn secret_key(v: &str, env: AppEnv, warnings: &mut Vec<String>) -> Result<Secret, ConfigError> {
    if v.len() > MAX_SECRET_BYTES || v.chars().any(char::is_control) {
        return Err(err(
            WEBHOOK_SECRET,
            format!("must be at most {MAX_SECRET_BYTES} bytes without control characters"),
        ));
    }
    let chars = v.chars().count();
    if chars < MIN_SECRET_CHARS {
        if env == AppEnv::Prod {
            return Err(err(
                WEBHOOK_SECRET,
                format!(
                    "must be at least {MIN_SECRET_CHARS} characters when APP_ENV is prod, got {chars}"
                ),
            ));
        }
        warnings.push(format!(
            "AUTHARA_WEBHOOK_SECRET has {chars} characters: at least {MIN_SECRET_CHARS} are required when APP_ENV is prod"
        ));
    }
    Ok(Secret::new(v.to_owned()))
}

/// `AUTHARA_WEBHOOK_ENABLED_EVENTS`: every type when unset.
fn enabled_events(e: &Env<'_>) -> Result<Vec<EventType>, ConfigError> {
    let Some(v) = e.get(WEBHOOK_ENABLED_EVENTS) else {
        return Ok(EventType::ALL.to_vec());
    };
    let mut types: Vec<EventType> = Vec::new();
    for name in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let t = EventType::parse(name).ok_or_else(|| {
            let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
            err(
                WEBHOOK_ENABLED_EVENTS,
                format!(
                    "names unknown event type {} (known: {})",
                    shown(name),
                    known.join(", ")
                ),
            )
        })?;
        if types.contains(&t) {
            return Err(err(
                WEBHOOK_ENABLED_EVENTS,
                format!("lists {} more than once", shown(name)),
            ));
        }
        types.push(t);
    }
    if types.is_empty() {
        return Err(err(
            WEBHOOK_ENABLED_EVENTS,
            "must list at least one event type (leave it unset for all of them)",
        ));
    }
    Ok(types)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::super::testing::{assert_messages, load, prod_with};
    use super::super::Config;
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn on<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        [
            (WEBHOOK_URL, "https://hooks.example.org/authara"),
            (WEBHOOK_SECRET, SECRET),
        ]
        .iter()
        .chain(extra)
        .copied()
        .collect()
    }

    fn webhooks(c: &Config) -> &WebhookConfig {
        match &c.webhooks {
            Some(w) => w,
            None => panic!("webhooks are off: {c:?}"),
        }
    }

    #[test]
    fn without_a_url_webhooks_are_off() {
        let c = load(&[]).unwrap();
        assert!(c.webhooks.is_none());
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn defaults_are_upstreams() {
        let c = load(&on(&[])).unwrap();
        let w = webhooks(&c);
        assert_eq!(w.url, "https://hooks.example.org/authara");
        assert_eq!(w.secret.expose(), SECRET);
        assert_eq!(w.enabled_events, EventType::ALL.to_vec());
        assert!(EventType::ALL.into_iter().all(|t| w.enables(t)));
        assert_eq!(w.timeout, Duration::from_secs(5));
        assert_eq!(w.worker_count, 2);
        assert_eq!(w.max_delivery_attempts, 3);
        assert_eq!(w.processing_stale_after, Duration::from_secs(120));
        assert_eq!(w.stale_reaper_interval, Duration::from_secs(60));
        assert_eq!(w.delivered_retention, Duration::from_secs(24 * 3600));
        assert_eq!(w.failed_retention, Duration::from_secs(720 * 3600));
        assert_eq!(w.cleanup_interval, Duration::from_secs(3600));
        assert_eq!(w.maintenance_batch_size, 1000);
        assert!(!w.allow_private_networks);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert!(load(&prod_with(&on(&[]))).unwrap().webhooks.is_some());
    }

    #[test]
    fn every_value_can_be_set() {
        let c = load(&on(&[
            (WEBHOOK_ENABLED_EVENTS, " user.deleted , user.created,"),
            (WEBHOOK_TIMEOUT, "1500ms"),
            (WEBHOOK_WORKER_COUNT, "8"),
            (WEBHOOK_MAX_DELIVERY_ATTEMPTS, "10"),
            (WEBHOOK_PROCESSING_STALE_AFTER, "10m"),
            (WEBHOOK_STALE_REAPER_INTERVAL, "30s"),
            (WEBHOOK_DELIVERED_RETENTION, "1h"),
            (WEBHOOK_FAILED_RETENTION, "2160h"),
            (WEBHOOK_CLEANUP_INTERVAL, "15m"),
            (WEBHOOK_MAINTENANCE_BATCH_SIZE, "50"),
            (WEBHOOK_ALLOW_PRIVATE_NETWORKS, "true"),
        ]))
        .unwrap();
        let w = webhooks(&c);
        assert_eq!(
            w.enabled_events,
            [EventType::UserDeleted, EventType::UserCreated]
        );
        assert!(w.enables(EventType::UserCreated));
        assert!(!w.enables(EventType::UserUpdated));
        assert_eq!(w.timeout, Duration::from_millis(1500));
        assert_eq!(w.worker_count, 8);
        assert_eq!(w.max_delivery_attempts, 10);
        assert_eq!(w.processing_stale_after, Duration::from_secs(600));
        assert_eq!(w.stale_reaper_interval, Duration::from_secs(30));
        assert_eq!(w.delivered_retention, Duration::from_secs(3600));
        assert_eq!(w.failed_retention, Duration::from_secs(2160 * 3600));
        assert_eq!(w.cleanup_interval, Duration::from_secs(900));
        assert_eq!(w.maintenance_batch_size, 50);
        assert!(w.allow_private_networks);
    }

    #[test]
    fn every_invalid_webhook_setting_has_its_own_one_line_message() {
        let hidden = "(the value is not shown: it may contain a token)";
        let long_url = format!("https://example.org/{}", "a".repeat(2048));
        let cases: Vec<(Vec<(&str, &str)>, String)> = vec![
            (
                vec![(WEBHOOK_URL, "https://hooks.example.org")],
                "AUTHARA_WEBHOOK_SECRET is required when AUTHARA_WEBHOOK_URL is set".into(),
            ),
            (
                vec![(WEBHOOK_SECRET, "hunter2-hunter2-hunter2-hunter2-hunter2")],
                "AUTHARA_WEBHOOK_URL is required when AUTHARA_WEBHOOK_SECRET is set".into(),
            ),
            (
                on(&[(WEBHOOK_URL, "ftp://hooks.example.org/hunter2")]),
                format!("AUTHARA_WEBHOOK_URL must start with http:// or https:// {hidden}"),
            ),
            (
                on(&[(WEBHOOK_URL, "https:///hunter2")]),
                format!("AUTHARA_WEBHOOK_URL has an invalid host {hidden}"),
            ),
            (
                on(&[(WEBHOOK_URL, "https://user:hunter2@hooks.example.org")]),
                format!("AUTHARA_WEBHOOK_URL must not contain a user name or password {hidden}"),
            ),
            (
                on(&[(WEBHOOK_URL, "https://hooks.example.org/x#hunter2")]),
                format!("AUTHARA_WEBHOOK_URL must not contain a fragment {hidden}"),
            ),
            (
                on(&[(WEBHOOK_URL, "https://hooks.example.org/hun ter2")]),
                format!("AUTHARA_WEBHOOK_URL must not contain spaces or control characters {hidden}"),
            ),
            (
                on(&[(WEBHOOK_URL, &long_url)]),
                format!("AUTHARA_WEBHOOK_URL must be at most 2048 bytes {hidden}"),
            ),
            (
                prod_with(&on(&[(WEBHOOK_URL, "http://hooks.example.org/hunter2")])),
                format!("AUTHARA_WEBHOOK_URL must use https:// when APP_ENV is prod (http:// is allowed only for localhost) {hidden}"),
            ),
            (
                prod_with(&on(&[(WEBHOOK_SECRET, "hunter2-hunter2")])),
                "AUTHARA_WEBHOOK_SECRET must be at least 32 characters when APP_ENV is prod, got 15".into(),
            ),
            (
                on(&[(WEBHOOK_SECRET, "hunter2\u{7}hunter2")]),
                "AUTHARA_WEBHOOK_SECRET must be at most 4096 bytes without control characters".into(),
            ),
            (
                on(&[(WEBHOOK_ENABLED_EVENTS, "user.created,user.renamed")]),
                r#"AUTHARA_WEBHOOK_ENABLED_EVENTS names unknown event type "user.renamed" (known: user.created, user.updated, user.deleted, organization.created, organization.updated, organization.deleted, organization.membership.created, organization.membership.updated, organization.membership.deleted, organization.invitation.created, organization.invitation.accepted, organization.invitation.revoked)"#.into(),
            ),
            (
                on(&[(WEBHOOK_ENABLED_EVENTS, "user.created, user.created")]),
                r#"AUTHARA_WEBHOOK_ENABLED_EVENTS lists "user.created" more than once"#.into(),
            ),
            (
                on(&[(WEBHOOK_ENABLED_EVENTS, " , ")]),
                "AUTHARA_WEBHOOK_ENABLED_EVENTS must list at least one event type (leave it unset for all of them)".into(),
            ),
            (
                on(&[(WEBHOOK_TIMEOUT, "2m")]),
                "AUTHARA_WEBHOOK_TIMEOUT (2m) must be shorter than AUTHARA_WEBHOOK_PROCESSING_STALE_AFTER (2m): the reaper would re-queue deliveries still in flight".into(),
            ),
            (
                vec![(WEBHOOK_TIMEOUT, "0s")],
                r#"AUTHARA_WEBHOOK_TIMEOUT must be longer than 0, got "0s""#.into(),
            ),
            (
                vec![(WEBHOOK_TIMEOUT, "6m")],
                r#"AUTHARA_WEBHOOK_TIMEOUT must be at most 5m, got "6m""#.into(),
            ),
            (
                vec![(WEBHOOK_WORKER_COUNT, "0")],
                r#"AUTHARA_WEBHOOK_WORKER_COUNT must be a whole number from 1 to 64, got "0""#.into(),
            ),
            (
                vec![(WEBHOOK_MAX_DELIVERY_ATTEMPTS, "0")],
                r#"AUTHARA_WEBHOOK_MAX_DELIVERY_ATTEMPTS must be a whole number from 1 to 100, got "0""#.into(),
            ),
            (
                vec![(WEBHOOK_PROCESSING_STALE_AFTER, "25h")],
                r#"AUTHARA_WEBHOOK_PROCESSING_STALE_AFTER must be at most 24h, got "25h""#.into(),
            ),
            (
                vec![(WEBHOOK_STALE_REAPER_INTERVAL, "0")],
                r#"AUTHARA_WEBHOOK_STALE_REAPER_INTERVAL must be longer than 0, got "0""#.into(),
            ),
            (
                vec![(WEBHOOK_DELIVERED_RETENTION, "1d")],
                r#"AUTHARA_WEBHOOK_DELIVERED_RETENTION must be a duration such as 10s, 15m or 1h30m (units ms, s, m, h), got "1d": unknown unit "d" (use ms, s, m or h)"#.into(),
            ),
            (
                vec![(WEBHOOK_FAILED_RETENTION, "87601h")],
                r#"AUTHARA_WEBHOOK_FAILED_RETENTION must be at most 87600h, got "87601h""#.into(),
            ),
            (
                vec![(WEBHOOK_CLEANUP_INTERVAL, "-1h")],
                r#"AUTHARA_WEBHOOK_CLEANUP_INTERVAL must be a duration such as 10s, 15m or 1h30m (units ms, s, m, h), got "-1h": negative durations are not allowed"#.into(),
            ),
            (
                vec![(WEBHOOK_MAINTENANCE_BATCH_SIZE, "0")],
                r#"AUTHARA_WEBHOOK_MAINTENANCE_BATCH_SIZE must be a whole number from 1 to 100000, got "0""#.into(),
            ),
            (
                vec![(WEBHOOK_ALLOW_PRIVATE_NETWORKS, "sometimes")],
                r#"AUTHARA_WEBHOOK_ALLOW_PRIVATE_NETWORKS must be true or false (or 1/0, yes/no, on/off), got "sometimes""#.into(),
            ),
        ];
        assert_messages(&cases);
    }

    #[test]
    fn the_url_may_use_http_on_loopback_in_prod_and_take_a_path_and_query() {
        for url in [
            "http://127.0.0.1:4000/hook",
            "http://localhost/hook",
            "http://[::1]:9/hook",
        ] {
            let c = load(&prod_with(&on(&[
                (WEBHOOK_URL, url),
                (WEBHOOK_ALLOW_PRIVATE_NETWORKS, "true"),
            ])))
            .unwrap();
            assert_eq!(webhooks(&c).url, url);
            assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        }
        let url = "https://hooks.example.org/services/T0/B1?token=abc";
        let c = load(&on(&[(WEBHOOK_URL, url)])).unwrap();
        assert_eq!(webhooks(&c).url, url);
        let c = load(&on(&[(WEBHOOK_URL, "http://hooks.example.org")])).unwrap();
        assert!(c.webhooks.is_some(), "http is fine in dev");
    }

    #[test]
    fn warnings_say_what_will_not_work_without_showing_secrets() {
        let c = load(&on(&[(WEBHOOK_URL, "http://127.0.0.1:4000/hook")])).unwrap();
        assert_eq!(c.warnings.len(), 1);
        assert!(c.warnings[0].contains("AUTHARA_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true"));
        let c = load(&on(&[(WEBHOOK_SECRET, "hunter2")])).unwrap();
        assert_eq!(
            c.warnings,
            ["AUTHARA_WEBHOOK_SECRET has 7 characters: at least 32 are required when APP_ENV is prod"]
        );
        assert!(c.webhooks.is_some());
        let c = load(&[(WEBHOOK_WORKER_COUNT, "4"), (WEBHOOK_TIMEOUT, "1s")]).unwrap();
        assert!(c.webhooks.is_none());
        assert_eq!(
            c.warnings,
            ["AUTHARA_WEBHOOK_TIMEOUT, AUTHARA_WEBHOOK_WORKER_COUNT are ignored: AUTHARA_WEBHOOK_URL is not set, so webhooks are off"]
        );
    }

    #[test]
    fn debug_shows_neither_the_secret_nor_the_path_of_the_url() {
        let c = load(&on(&[(
            WEBHOOK_URL,
            "https://hooks.example.org/services/T0/tok3n?key=k3y",
        )]))
        .unwrap();
        let debug = format!("{c:?} {c:#?}");
        for hidden in [SECRET, "tok3n", "k3y"] {
            assert!(!debug.contains(hidden), "{hidden} leaked: {debug}");
        }
        assert!(debug.contains("https://hooks.example.org/…"), "{debug}");
        assert_eq!(
            origin_only("https://hooks.example.org"),
            "https://hooks.example.org"
        );
        assert_eq!(origin_only("http://h:1?q=1"), "http://h:1/…");
    }
}

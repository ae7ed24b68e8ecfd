//! One delivery attempt: the stored envelope POSTed unchanged, signed, and the receiver's answer
//! classified as delivered, worth retrying, or final.

use std::sync::Arc;

use authara_core::clock::Clock;
use authara_core::events::ClaimedEvent;
use authara_core::outbox::describe;
use reqwest::header::CONTENT_TYPE;
use reqwest::StatusCode;

use crate::guard::{self, AddressPolicy};
use crate::settings::{Endpoint, Settings};
use crate::sign::{WebhookSecret, SIGNATURE_HEADER, SIGNATURE_V2_HEADER, TIMESTAMP_HEADER};

/// The event's wire name, e.g. `user.created`.
pub const EVENT_HEADER: &str = "X-Authara-Event";
/// The envelope id, the same on every attempt, so receivers can deduplicate.
pub const DELIVERY_HEADER: &str = "X-Authara-Delivery";
/// `User-Agent` of every attempt.
pub const USER_AGENT: &str = concat!("authara-webhook/", env!("CARGO_PKG_VERSION"));
/// The longest error text kept as an event's `last_error`, in characters.
pub const MAX_ERROR_CHARS: usize = 500;

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver answered 2xx.
    Delivered {
        /// The status it answered.
        status: u16,
    },
    /// A network error, a timeout, 429 or 5xx: worth another attempt. The text is bounded.
    Retry(String),
    /// Any other answer (3xx, other 4xx) or a refused address: no further attempt. The text is
    /// bounded.
    Final(String),
}

/// Sends attempts to the configured receiver.
pub struct Deliverer {
    client: reqwest::Client,
    url: Endpoint,
    secret: WebhookSecret,
    policy: AddressPolicy,
    timeout_secs: f64,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer")
            .field("url", &self.url)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Deliverer {
    /// A deliverer for `settings`' receiver; the signing time comes from `clock`.
    pub fn new(settings: &Settings, clock: Arc<dyn Clock>) -> Result<Self, reqwest::Error> {
        let policy = AddressPolicy {
            allow_private_networks: settings.allow_private_networks,
        };
        Ok(Self {
            client: guard::build_client(policy, settings.timeout, USER_AGENT)?,
            url: settings.url.clone(),
            secret: settings.secret.clone(),
            policy,
            timeout_secs: settings.timeout.as_secs_f64(),
            clock,
        })
    }

    /// Makes one attempt for a claimed event. Never fails: every failure is an [`Outcome`].
    pub async fn deliver(&self, event: &ClaimedEvent) -> Outcome {
        if let Err(refused) = self.policy.check_host(self.url.url()) {
            return Outcome::Final(bounded(refused.to_string()));
        }
        let signed = self
            .secret
            .sign(self.clock.now().unix_timestamp(), event.payload.as_bytes());
        let sent = self
            .client
            .post(self.url.url().clone())
            .header(CONTENT_TYPE, "application/json")
            .header(EVENT_HEADER, event.event_type.as_str())
            .header(DELIVERY_HEADER, event.id.to_string())
            .header(TIMESTAMP_HEADER, signed.timestamp)
            .header(SIGNATURE_HEADER, signed.signature)
            .header(SIGNATURE_V2_HEADER, signed.signature_v2)
            .body(event.payload.clone())
            .send()
            .await;
        match sent {
            Ok(response) => {
                let status = response.status();
                // The status decides; the body is read (bounded) only so the connection can be
                // reused, and a failure reading it changes nothing.
                let _ = guard::drain_bounded(response).await;
                classify_status(status)
            }
            Err(e) => self.classify_error(e),
        }
    }

    fn classify_error(&self, e: reqwest::Error) -> Outcome {
        if let Some(refused) = guard::refused_in(&e) {
            return Outcome::Final(bounded(refused.to_string()));
        }
        if e.is_timeout() {
            return Outcome::Retry(format!("timed out after {}s", self.timeout_secs));
        }
        let builder = e.is_builder();
        // Without the URL: its query or user info may carry credentials.
        let text = describe(&e.without_url());
        if builder {
            Outcome::Final(bounded(format!("invalid request: {text}")))
        } else {
            Outcome::Retry(bounded(text))
        }
    }
}

/// 2xx delivered; 429 and 5xx retried; 3xx refused (no redirect is followed); the rest final.
pub fn classify_status(status: StatusCode) -> Outcome {
    let text = || match status.canonical_reason() {
        Some(reason) => format!("HTTP {} {reason}", status.as_u16()),
        None => format!("HTTP {}", status.as_u16()),
    };
    if status.is_success() {
        Outcome::Delivered {
            status: status.as_u16(),
        }
    } else if status.is_redirection() {
        Outcome::Final(bounded(format!("redirect refused ({})", text())))
    } else if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        Outcome::Retry(bounded(text()))
    } else {
        Outcome::Final(bounded(text()))
    }
}

/// At most [`MAX_ERROR_CHARS`] characters, control characters replaced.
pub(crate) fn bounded(text: String) -> String {
    if text.chars().count() <= MAX_ERROR_CHARS && !text.chars().any(char::is_control) {
        return text;
    }
    text.chars()
        .take(MAX_ERROR_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_as_upstream_does_with_redirects_refused() {
        let cases: &[(u16, &str)] = &[
            (200, "delivered"),
            (201, "delivered"),
            (202, "delivered"),
            (204, "delivered"),
            (299, "delivered"),
            (301, "final"),
            (302, "final"),
            (307, "final"),
            (308, "final"),
            (400, "final"),
            (401, "final"),
            (403, "final"),
            (404, "final"),
            (410, "final"),
            (422, "final"),
            (429, "retry"),
            (500, "retry"),
            (502, "retry"),
            (503, "retry"),
            (504, "retry"),
            (599, "retry"),
        ];
        for (code, want) in cases {
            let status = StatusCode::from_u16(*code).unwrap();
            let got = match classify_status(status) {
                Outcome::Delivered { status } => {
                    assert_eq!(status, *code);
                    "delivered"
                }
                Outcome::Retry(_) => "retry",
                Outcome::Final(_) => "final",
            };
            assert_eq!(got, *want, "{code}");
        }
    }

    #[test]
    fn failure_texts_name_the_status() {
        assert_eq!(
            classify_status(StatusCode::FOUND),
            Outcome::Final("redirect refused (HTTP 302 Found)".into())
        );
        assert_eq!(
            classify_status(StatusCode::SERVICE_UNAVAILABLE),
            Outcome::Retry("HTTP 503 Service Unavailable".into())
        );
        assert_eq!(
            classify_status(StatusCode::from_u16(599).unwrap()),
            Outcome::Retry("HTTP 599".into())
        );
    }

    #[test]
    fn error_texts_are_bounded_and_on_one_line() {
        let long = "é".repeat(2000);
        let b = bounded(long);
        assert_eq!(b.chars().count(), MAX_ERROR_CHARS);
        assert_eq!(bounded("a\nb\tc".into()), "a b c");
        assert_eq!(bounded("short".into()), "short");
    }

    #[test]
    fn the_user_agent_names_the_crate_and_version() {
        assert_eq!(
            USER_AGENT,
            format!("authara-webhook/{}", env!("CARGO_PKG_VERSION"))
        );
    }
}

//! What the email workers are configured with.

use std::time::Duration;

/// A claim older than twice the send timeout plus this is re-queued by the reaper.
const STALE_MARGIN: Duration = Duration::from_secs(30);

/// What the workers are configured with (`AUTHARA_EMAIL_*`, `AUTHARA_CHALLENGE_VERIFICATION_CODE_TTL`,
/// `PUBLIC_URL`). Build with [`MailSettings::new`] (upstream's defaults) and override fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailSettings {
    /// `PUBLIC_URL`: the code emails link to `{public_url}/auth/verify-challenge/...`.
    pub public_url: String,
    /// Delivery workers (default 2).
    pub worker_count: u32,
    /// Pause of an idle worker between two claims (default 2 s).
    pub poll_interval: Duration,
    /// Attempts before a job is marked failed (default 10).
    pub max_attempts: u32,
    /// Bound on one send, connection and dialogue included (default 10 s, the SMTP timeout).
    pub send_timeout: Duration,
    /// How long a code is accepted after it was sent (default 10 min; never beyond the
    /// challenge's own expiry).
    pub code_ttl: Duration,
    /// How long sent jobs are kept (default 720 h).
    pub sent_retention: Duration,
    /// How long failed jobs are kept (default 2160 h).
    pub failed_retention: Duration,
    /// How often the reaper runs (default 1 min).
    pub stale_reaper_interval: Duration,
    /// How often the cleanup runs (default 1 h).
    pub cleanup_interval: Duration,
    /// Rows per reaper or cleanup statement (default 1000).
    pub maintenance_batch_size: u32,
    /// Whether an invitation email also shows its token as a code to type
    /// (`AUTHARA_INVITATION_EMAIL_INCLUDE_CODE`, default off).
    pub include_invitation_code: bool,
}

impl MailSettings {
    /// Upstream's defaults, linking to `public_url`.
    pub fn new(public_url: impl Into<String>) -> Self {
        Self {
            public_url: public_url.into().trim_end_matches('/').to_owned(),
            worker_count: 2,
            poll_interval: Duration::from_secs(2),
            max_attempts: 10,
            send_timeout: Duration::from_secs(10),
            code_ttl: Duration::from_secs(600),
            sent_retention: Duration::from_secs(720 * 3600),
            failed_retention: Duration::from_secs(2160 * 3600),
            stale_reaper_interval: Duration::from_secs(60),
            cleanup_interval: Duration::from_secs(3600),
            maintenance_batch_size: 1000,
            include_invitation_code: false,
        }
    }

    /// A claim older than this is taken to belong to a worker that died: twice the send
    /// timeout plus 30 s, so that a send still in flight is never re-queued.
    pub fn processing_stale_after(&self) -> Duration {
        self.send_timeout
            .saturating_mul(2)
            .saturating_add(STALE_MARGIN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_stale_after_twice_the_send_timeout_and_30_seconds() {
        let mut s = MailSettings::new("https://auth.example.org/");
        assert_eq!(s.public_url, "https://auth.example.org");
        assert_eq!(s.processing_stale_after(), Duration::from_secs(50));
        s.send_timeout = Duration::from_millis(1500);
        assert_eq!(s.processing_stale_after(), Duration::from_secs(33));
        s.send_timeout = Duration::MAX;
        assert_eq!(s.processing_stale_after(), Duration::MAX);
    }
}

//! Emailed-code challenges: upstream's six `AUTHARA_CHALLENGE_*` variables with upstream's
//! defaults, read into [`ChallengeSettings`].
//!
//! Decisions:
//! - `AUTHARA_CHALLENGE_ENABLED` turns on verified signup and email change; password reset is
//!   always available, and the email workers always run (upstream starts them only with this
//!   flag, so its password-reset emails are never sent by default: §5.10 item 1).
//! - The verification code cannot outlive its challenge, so its TTL must not be longer than the
//!   challenge's; both are bounded by a day (a code is a short-lived secret).
//! - `AUTHARA_CHALLENGE_MAX_RESENDS` and `_MIN_RESEND_INTERVAL` may be 0 (no resends, no wait).
//!   The cross-check with `AUTHARA_EMAIL_PROVIDER` lives in `email.rs`.

use super::duration::human;
use super::env::{err, Env};
use super::ConfigError;
use authara_core::challenge::ChallengeSettings;
use std::time::Duration;

/// The names of this section's variables.
pub mod var {
    /// Verified signup and email change on.
    pub const CHALLENGE_ENABLED: &str = "AUTHARA_CHALLENGE_ENABLED";
    /// How long a challenge can be completed.
    pub const CHALLENGE_TTL: &str = "AUTHARA_CHALLENGE_TTL";
    /// How long an emailed code is accepted.
    pub const CHALLENGE_CODE_TTL: &str = "AUTHARA_CHALLENGE_VERIFICATION_CODE_TTL";
    /// Wrong codes before a challenge is locked.
    pub const CHALLENGE_MAX_ATTEMPTS: &str = "AUTHARA_CHALLENGE_MAX_ATTEMPTS";
    /// New codes a challenge may ask for.
    pub const CHALLENGE_MAX_RESENDS: &str = "AUTHARA_CHALLENGE_MAX_RESENDS";
    /// Shortest wait between two codes of one challenge.
    pub const CHALLENGE_MIN_RESEND_INTERVAL: &str = "AUTHARA_CHALLENGE_MIN_RESEND_INTERVAL";
}

use var::*;

const DAY: Duration = Duration::from_secs(86_400);
const HOUR: Duration = Duration::from_secs(3600);

/// Reads the section.
pub(super) fn read(e: &Env<'_>) -> Result<ChallengeSettings, ConfigError> {
    let d = ChallengeSettings::default();
    let enabled = e.boolean(CHALLENGE_ENABLED, d.enabled)?;
    let ttl = e.duration(CHALLENGE_TTL, d.ttl, DAY, false)?;
    let code_ttl = e.duration(CHALLENGE_CODE_TTL, d.code_ttl, DAY, false)?;
    if code_ttl > ttl {
        return Err(err(
            CHALLENGE_CODE_TTL,
            format!(
                "({}) must not be longer than {CHALLENGE_TTL} ({}): a code cannot outlive its challenge",
                human(code_ttl),
                human(ttl)
            ),
        ));
    }
    Ok(ChallengeSettings {
        enabled,
        ttl,
        code_ttl,
        max_attempts: e.whole(CHALLENGE_MAX_ATTEMPTS, d.max_attempts, 1, 100, "")?,
        max_resends: e.whole(CHALLENGE_MAX_RESENDS, d.max_resends, 0, 100, "")?,
        min_resend_interval: e.duration(
            CHALLENGE_MIN_RESEND_INTERVAL,
            d.min_resend_interval,
            HOUR,
            true,
        )?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::testing::{assert_messages, load};
    use super::*;

    #[test]
    fn defaults_are_upstreams() {
        let c = load(&[]).unwrap();
        assert_eq!(c.challenge, ChallengeSettings::default());
        assert!(!c.challenge.enabled);
        assert_eq!(c.challenge.ttl, Duration::from_secs(30 * 60));
        assert_eq!(c.challenge.code_ttl, Duration::from_secs(10 * 60));
        assert_eq!(c.challenge.max_attempts, 5);
        assert_eq!(c.challenge.max_resends, 3);
        assert_eq!(c.challenge.min_resend_interval, Duration::from_secs(30));
    }

    #[test]
    fn every_value_can_be_set() {
        let c = load(&[
            (CHALLENGE_ENABLED, "true"),
            (CHALLENGE_TTL, "1h"),
            (CHALLENGE_CODE_TTL, "1h"),
            (CHALLENGE_MAX_ATTEMPTS, "1"),
            (CHALLENGE_MAX_RESENDS, "0"),
            (CHALLENGE_MIN_RESEND_INTERVAL, "0"),
        ])
        .unwrap();
        assert_eq!(
            c.challenge,
            ChallengeSettings {
                enabled: true,
                ttl: HOUR,
                code_ttl: HOUR,
                max_attempts: 1,
                max_resends: 0,
                min_resend_interval: Duration::ZERO,
            }
        );
        let c = load(&[(CHALLENGE_MIN_RESEND_INTERVAL, "1m30s")]).unwrap();
        assert_eq!(c.challenge.min_resend_interval, Duration::from_secs(90));
    }

    #[test]
    fn every_invalid_challenge_setting_has_its_own_one_line_message() {
        let cases: Vec<(Vec<(&str, &str)>, String)> = vec![
            (
                vec![(CHALLENGE_ENABLED, "maybe")],
                r#"AUTHARA_CHALLENGE_ENABLED must be true or false (or 1/0, yes/no, on/off), got "maybe""#.into(),
            ),
            (
                vec![(CHALLENGE_TTL, "0")],
                r#"AUTHARA_CHALLENGE_TTL must be longer than 0, got "0""#.into(),
            ),
            (
                vec![(CHALLENGE_TTL, "25h")],
                r#"AUTHARA_CHALLENGE_TTL must be at most 24h, got "25h""#.into(),
            ),
            (
                vec![(CHALLENGE_TTL, "5m")],
                "AUTHARA_CHALLENGE_VERIFICATION_CODE_TTL (10m) must not be longer than AUTHARA_CHALLENGE_TTL (5m): a code cannot outlive its challenge".into(),
            ),
            (
                vec![(CHALLENGE_CODE_TTL, "31m")],
                "AUTHARA_CHALLENGE_VERIFICATION_CODE_TTL (31m) must not be longer than AUTHARA_CHALLENGE_TTL (30m): a code cannot outlive its challenge".into(),
            ),
            (
                vec![(CHALLENGE_CODE_TTL, "0s")],
                r#"AUTHARA_CHALLENGE_VERIFICATION_CODE_TTL must be longer than 0, got "0s""#.into(),
            ),
            (
                vec![(CHALLENGE_CODE_TTL, "10")],
                r#"AUTHARA_CHALLENGE_VERIFICATION_CODE_TTL must be a duration such as 10s, 15m or 1h30m (units ms, s, m, h), got "10": missing unit after "10" (use ms, s, m or h)"#.into(),
            ),
            (
                vec![(CHALLENGE_MAX_ATTEMPTS, "0")],
                r#"AUTHARA_CHALLENGE_MAX_ATTEMPTS must be a whole number from 1 to 100, got "0""#.into(),
            ),
            (
                vec![(CHALLENGE_MAX_RESENDS, "-1")],
                r#"AUTHARA_CHALLENGE_MAX_RESENDS must be a whole number from 0 to 100, got "-1""#.into(),
            ),
            (
                vec![(CHALLENGE_MIN_RESEND_INTERVAL, "2h")],
                r#"AUTHARA_CHALLENGE_MIN_RESEND_INTERVAL must be at most 1h, got "2h""#.into(),
            ),
        ];
        assert_messages(&cases);
    }
}

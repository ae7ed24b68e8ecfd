//! Rate limits: which families exist, their limits, and the limiter interface handlers ask
//! before any password is hashed. Windows are fixed (a counter with a reset time), as upstream.
//!
//! Two ways to count:
//! - [`RateLimiter::hit`] counts an attempt and refuses it when the window is full (per IP:
//!   every attempt counts);
//! - [`RateLimiter::refund`] gives back an attempt counted by `hit` whose outcome should not
//!   spend the budget: per email, a login is counted before the password is verified (so that
//!   parallel guesses cannot all pass a check made before any is counted) and refunded when it
//!   was not a failed guess, so a successful login does not spend the budget;
//! - [`RateLimiter::check`] refuses without counting, and [`RateLimiter::record`] counts without
//!   refusing.
//!
//! [`MemoryLimiter`] counts in this process; the `authara-redis` crate shares the counts between
//! instances under the same keys as upstream (`authara:ratelimit:<kind>:<scope>:<value>`).

mod memory;

pub use memory::MemoryLimiter;

use async_trait::async_trait;
use std::fmt;
use std::time::Duration;

/// The prefix of every key, as upstream.
pub const KEY_PREFIX: &str = "authara:ratelimit";

/// What is limited, with upstream's spelling (`<kind>` in the key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Login,
    Signup,
    PasswordReset,
    PasskeyLogin,
    PasskeyLoginFinish,
    ChallengeVerify,
    ChallengeResend,
}

impl Kind {
    /// The kind as spelled in keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Signup => "signup",
            Self::PasswordReset => "password_reset",
            Self::PasskeyLogin => "passkey_login",
            Self::PasskeyLoginFinish => "passkey_login_finish",
            Self::ChallengeVerify => "challenge_verify",
            Self::ChallengeResend => "challenge_resend",
        }
    }
}

/// By what a kind is counted (`<scope>` in the key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Ip,
    Email,
}

impl Scope {
    /// The scope as spelled in keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ip => "ip",
            Self::Email => "email",
        }
    }
}

/// One counted family: a kind with a scope. Each has its own limit (passkey options and
/// finish share one configured limit but count in separate buckets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    LoginIp,
    LoginEmail,
    SignupIp,
    SignupEmail,
    PasswordResetIp,
    PasswordResetEmail,
    PasskeyLoginIp,
    PasskeyLoginFinishIp,
    ChallengeVerifyIp,
    ChallengeResendIp,
}

impl Family {
    /// Every family.
    pub const ALL: [Family; 10] = [
        Self::LoginIp,
        Self::LoginEmail,
        Self::SignupIp,
        Self::SignupEmail,
        Self::PasswordResetIp,
        Self::PasswordResetEmail,
        Self::PasskeyLoginIp,
        Self::PasskeyLoginFinishIp,
        Self::ChallengeVerifyIp,
        Self::ChallengeResendIp,
    ];

    /// The kind counted.
    pub fn kind(self) -> Kind {
        match self {
            Self::LoginIp | Self::LoginEmail => Kind::Login,
            Self::SignupIp | Self::SignupEmail => Kind::Signup,
            Self::PasswordResetIp | Self::PasswordResetEmail => Kind::PasswordReset,
            Self::PasskeyLoginIp => Kind::PasskeyLogin,
            Self::PasskeyLoginFinishIp => Kind::PasskeyLoginFinish,
            Self::ChallengeVerifyIp => Kind::ChallengeVerify,
            Self::ChallengeResendIp => Kind::ChallengeResend,
        }
    }

    /// What it is counted by.
    pub fn scope(self) -> Scope {
        match self {
            Self::LoginEmail | Self::SignupEmail | Self::PasswordResetEmail => Scope::Email,
            _ => Scope::Ip,
        }
    }
}

/// One counter: a family and the value counted (a client IP, a normalised email).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitKey<'a> {
    pub family: Family,
    pub value: &'a str,
}

impl<'a> LimitKey<'a> {
    /// The counter of `value` in `family`.
    pub fn new(family: Family, value: &'a str) -> Self {
        Self { family, value }
    }
}

impl fmt::Display for LimitKey<'_> {
    /// `authara:ratelimit:<kind>:<scope>:<value>`, the key upstream uses in Redis.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{KEY_PREFIX}:{}:{}:{}",
            self.family.kind().as_str(),
            self.family.scope().as_str(),
            self.value
        )
    }
}

/// At most `limit` events per `window`; a limit of 0 turns the family off (dev only: the
/// configuration refuses 0 in prod).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Events allowed per window; 0: not limited.
    pub limit: u32,
    /// The window, longer than zero.
    pub window: Duration,
}

impl Limit {
    /// `limit` per `window`.
    pub const fn new(limit: u32, window: Duration) -> Self {
        Self { limit, window }
    }
}

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// Every limit, and how the in-process limiter keeps its memory bounded. The defaults are
/// upstream's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub login_ip: Limit,
    pub login_email: Limit,
    pub signup_ip: Limit,
    pub signup_email: Limit,
    pub password_reset_ip: Limit,
    pub password_reset_email: Limit,
    /// Passkey login options and finish, each in its own bucket.
    pub passkey_login_ip: Limit,
    pub challenge_verify_ip: Limit,
    pub challenge_resend_ip: Limit,
    /// The in-process limiter removes expired windows every this many calls (at least 1).
    pub cleanup_every: u32,
    /// Most counters the in-process limiter keeps (at least 1); the oldest go first.
    pub max_entries: usize,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            login_ip: Limit::new(5, MINUTE),
            login_email: Limit::new(10, HOUR),
            signup_ip: Limit::new(3, HOUR),
            signup_email: Limit::new(3, DAY),
            password_reset_ip: Limit::new(5, HOUR),
            password_reset_email: Limit::new(3, DAY),
            passkey_login_ip: Limit::new(30, 10 * MINUTE),
            challenge_verify_ip: Limit::new(30, 10 * MINUTE),
            challenge_resend_ip: Limit::new(10, HOUR),
            cleanup_every: 200,
            max_entries: 50_000,
        }
    }
}

impl RateLimits {
    /// The limit of `family`, `None` when it is off (a limit of 0).
    pub fn get(&self, family: Family) -> Option<Limit> {
        let l = match family {
            Family::LoginIp => self.login_ip,
            Family::LoginEmail => self.login_email,
            Family::SignupIp => self.signup_ip,
            Family::SignupEmail => self.signup_email,
            Family::PasswordResetIp => self.password_reset_ip,
            Family::PasswordResetEmail => self.password_reset_email,
            Family::PasskeyLoginIp | Family::PasskeyLoginFinishIp => self.passkey_login_ip,
            Family::ChallengeVerifyIp => self.challenge_verify_ip,
            Family::ChallengeResendIp => self.challenge_resend_ip,
        };
        (l.limit > 0 && !l.window.is_zero()).then_some(l)
    }
}

/// A request over its limit, with how long until it may retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: Duration,
}

/// What a counter says after being read or incremented: the count in the current window and
/// the time left until the window resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    pub count: u64,
    pub resets_in: Duration,
}

impl Count {
    /// The verdict of a counted attempt: refused when the count went beyond the limit.
    pub fn after_hit(self, limit: Limit) -> Result<(), Limited> {
        if self.count > u64::from(limit.limit) {
            Err(self.limited())
        } else {
            Ok(())
        }
    }

    /// The verdict before an attempt that is not counted: refused when the window is full.
    pub fn before_attempt(self, limit: Limit) -> Result<(), Limited> {
        if self.count >= u64::from(limit.limit) {
            Err(self.limited())
        } else {
            Ok(())
        }
    }

    fn limited(self) -> Limited {
        Limited {
            retry_after: self.resets_in.max(Duration::from_secs(1)),
        }
    }
}

/// Counts events per key in fixed windows and says whether one more is allowed. Families
/// that are off (see [`RateLimits::get`]) always pass and are never stored.
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Counts an attempt under `key`; `Err` when it is over the limit.
    async fn hit(&self, key: LimitKey<'_>) -> Result<(), Limited>;

    /// Whether one more event under `key` is allowed, without counting it.
    async fn check(&self, key: LimitKey<'_>) -> Result<(), Limited>;

    /// Counts an event under `key` without refusing it.
    async fn record(&self, key: LimitKey<'_>);

    /// Gives back one attempt counted under `key` by [`RateLimiter::hit`] (a successful login, a
    /// refusal for busy hashing): the count goes down by one if the window it was counted in is
    /// still current, never below zero.
    async fn refund(&self, key: LimitKey<'_>);
}

/// Allows everything: a stand-in where no limiter matters (e.g. a service's unit tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct Unlimited;

#[async_trait]
impl RateLimiter for Unlimited {
    async fn hit(&self, _key: LimitKey<'_>) -> Result<(), Limited> {
        Ok(())
    }
    async fn check(&self, _key: LimitKey<'_>) -> Result<(), Limited> {
        Ok(())
    }
    async fn record(&self, _key: LimitKey<'_>) {}
    async fn refund(&self, _key: LimitKey<'_>) {}
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_spelled_as_upstream() {
        let cases = [
            (Family::LoginIp, "authara:ratelimit:login:ip:203.0.113.7"),
            (
                Family::LoginEmail,
                "authara:ratelimit:login:email:203.0.113.7",
            ),
            (Family::SignupIp, "authara:ratelimit:signup:ip:203.0.113.7"),
            (
                Family::SignupEmail,
                "authara:ratelimit:signup:email:203.0.113.7",
            ),
            (
                Family::PasswordResetIp,
                "authara:ratelimit:password_reset:ip:203.0.113.7",
            ),
            (
                Family::PasswordResetEmail,
                "authara:ratelimit:password_reset:email:203.0.113.7",
            ),
            (
                Family::PasskeyLoginIp,
                "authara:ratelimit:passkey_login:ip:203.0.113.7",
            ),
            (
                Family::PasskeyLoginFinishIp,
                "authara:ratelimit:passkey_login_finish:ip:203.0.113.7",
            ),
            (
                Family::ChallengeVerifyIp,
                "authara:ratelimit:challenge_verify:ip:203.0.113.7",
            ),
            (
                Family::ChallengeResendIp,
                "authara:ratelimit:challenge_resend:ip:203.0.113.7",
            ),
        ];
        assert_eq!(cases.len(), Family::ALL.len());
        for (family, want) in cases {
            assert_eq!(LimitKey::new(family, "203.0.113.7").to_string(), want);
        }
    }

    #[test]
    fn the_defaults_are_upstreams_and_zero_turns_a_family_off() {
        let l = RateLimits::default();
        assert_eq!(l.get(Family::LoginIp), Some(Limit::new(5, MINUTE)));
        assert_eq!(l.get(Family::LoginEmail), Some(Limit::new(10, HOUR)));
        assert_eq!(l.get(Family::SignupIp), Some(Limit::new(3, HOUR)));
        assert_eq!(l.get(Family::SignupEmail), Some(Limit::new(3, DAY)));
        assert_eq!(l.get(Family::PasswordResetIp), Some(Limit::new(5, HOUR)));
        assert_eq!(l.get(Family::PasswordResetEmail), Some(Limit::new(3, DAY)));
        for f in [Family::PasskeyLoginIp, Family::PasskeyLoginFinishIp] {
            assert_eq!(l.get(f), Some(Limit::new(30, 10 * MINUTE)));
        }
        assert_eq!(
            l.get(Family::ChallengeVerifyIp),
            Some(Limit::new(30, 10 * MINUTE))
        );
        assert_eq!(l.get(Family::ChallengeResendIp), Some(Limit::new(10, HOUR)));
        assert_eq!((l.cleanup_every, l.max_entries), (200, 50_000));
        let off = RateLimits {
            login_ip: Limit::new(0, MINUTE),
            ..l
        };
        assert_eq!(off.get(Family::LoginIp), None);
        assert!(off.get(Family::LoginEmail).is_some());
    }

    #[test]
    fn verdicts_count_the_attempt_or_not() {
        let limit = Limit::new(2, MINUTE);
        let c = |count| Count {
            count,
            resets_in: Duration::from_millis(1500),
        };
        assert!(c(2).after_hit(limit).is_ok());
        assert_eq!(
            c(3).after_hit(limit),
            Err(Limited {
                retry_after: Duration::from_millis(1500)
            })
        );
        assert!(c(1).before_attempt(limit).is_ok());
        assert!(c(2).before_attempt(limit).is_err());
        let soon = Count {
            count: 9,
            resets_in: Duration::ZERO,
        };
        assert_eq!(
            soon.after_hit(limit).unwrap_err().retry_after,
            Duration::from_secs(1)
        );
    }
}

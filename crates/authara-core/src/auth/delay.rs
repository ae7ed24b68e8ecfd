//! The login delay: failed logins are held back to the time a real verification takes, so
//! that the time of a failure tells nothing about the account (unknown email, wrong password
//! against a current hash, or against a slower legacy one).
//!
//! It remembers how long the Argon2 work over stored hashes took for the last
//! [`WINDOW`] verifications (only hashes within the cost cap get that far) and answers, for a
//! failure that took `elapsed`, how much longer it must wait to reach the slowest of them. The
//! wait is an async sleep taken by the caller: it costs no CPU and holds no hashing thread.
//! Time is passed in, never read here, so the behaviour is tested with made-up durations.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

/// How many recent verifications the delay remembers. A window rather than an all-time
/// maximum: an outlier (a stall of the machine) stops counting after this many logins, and a
/// legacy hash that was re-hashed at its owner's login stops setting the pace.
pub const WINDOW: usize = 64;

/// The longest hold-back ever asked for: a bound against a clock jump or a stalled machine
/// turning every failure into a long wait.
pub const MAX_HOLD_BACK: Duration = Duration::from_secs(5);

/// The slowest recent verification, and how long a failure must still wait.
#[derive(Debug, Default)]
pub struct LoginDelay {
    recent: Mutex<VecDeque<Duration>>,
}

impl LoginDelay {
    /// An empty delay: until a stored hash has been verified, failures are not held back.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records how long the verification of a stored hash took.
    pub fn observe(&self, took: Duration) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() >= WINDOW {
            recent.pop_front();
        }
        recent.push_back(took.min(MAX_HOLD_BACK));
    }

    /// The slowest verification in the window (zero when none was seen).
    pub fn slowest(&self) -> Duration {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.iter().copied().max().unwrap_or(Duration::ZERO)
    }

    /// How much longer a failure that has taken `elapsed` so far must wait.
    pub fn hold_back(&self, elapsed: Duration) -> Duration {
        self.slowest().saturating_sub(elapsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn nothing_observed_holds_nothing_back() {
        let d = LoginDelay::new();
        assert_eq!(d.hold_back(Duration::ZERO), Duration::ZERO);
        assert_eq!(d.hold_back(40 * MS), Duration::ZERO);
    }

    #[test]
    fn a_fast_failure_is_held_back_to_the_slowest_verification() {
        let d = LoginDelay::new();
        // A current hash (40 ms) and a legacy one (200 ms) were verified.
        d.observe(40 * MS);
        d.observe(200 * MS);
        d.observe(45 * MS);
        // An unknown email (decoy, 42 ms) waits for the rest of the 200 ms.
        assert_eq!(d.hold_back(42 * MS), 158 * MS);
        // A wrong password against the legacy hash itself needs no wait.
        assert_eq!(d.hold_back(200 * MS), Duration::ZERO);
        assert_eq!(d.hold_back(260 * MS), Duration::ZERO);
    }

    #[test]
    fn the_slowest_counts_only_within_the_window() {
        let d = LoginDelay::new();
        d.observe(900 * MS);
        for _ in 0..WINDOW - 1 {
            d.observe(40 * MS);
        }
        assert_eq!(d.slowest(), 900 * MS);
        d.observe(40 * MS);
        assert_eq!(d.slowest(), 40 * MS);
        assert_eq!(d.hold_back(10 * MS), 30 * MS);
    }

    #[test]
    fn an_absurd_observation_is_bounded() {
        let d = LoginDelay::new();
        d.observe(Duration::from_secs(3600));
        assert_eq!(d.hold_back(Duration::ZERO), MAX_HOLD_BACK);
    }
}

//! The login delay: failed logins are held back to a fixed target, so that the time of a
//! failure tells nothing about the account (unknown email, wrong password against a current
//! hash, or against a slower legacy one).
//!
//! The target is the time of one verification at the costliest parameters a stored hash we
//! accept is expected to have: the component-wise maximum of the configured parameters and of
//! the legacy format (`m=65536, t=3, p=4`) — see [`target_params`]. It is measured ONCE, at
//! start-up, on a hashing thread (by `PasswordHasher`), and never changes afterwards: logins
//! (an attacker's own included) cannot lower it, it is not zero right after start, and CPU
//! contention later on cannot raise it (a failure that already took longer than the target waits
//! nothing more). The wait is an async sleep taken by the caller: it costs no CPU and holds no
//! hashing thread. Time is passed in, never read here, so the behaviour is tested with made-up
//! durations.
//!
//! Not covered: a stored hash with parameters above the target but within the cost cap (a
//! database whose hashes were written with higher parameters than are now configured) is
//! slower than the target until it is rehashed at its owner's next login.

use super::password::HashParams;
use std::time::Duration;

/// The longest target ever used: a bound against a start-up measurement taken while the
/// machine was stalled turning every failure into a long wait.
pub const MAX_TARGET: Duration = Duration::from_secs(2);

/// Parameters of Authara's older hash format (`$argon2id$v=1$t=3$m=65536$p=4$...`).
pub const LEGACY_PARAMS: HashParams = HashParams {
    memory_kib: 65_536,
    iterations: 3,
    parallelism: 4,
};

/// The parameters the target is measured at: each of memory, iterations and lanes is the larger
/// of the configured one and the legacy format's, so the verification measured costs at least
/// as much as either.
pub fn target_params(configured: HashParams) -> HashParams {
    HashParams {
        memory_kib: configured.memory_kib.max(LEGACY_PARAMS.memory_kib),
        iterations: configured.iterations.max(LEGACY_PARAMS.iterations),
        parallelism: configured.parallelism.max(LEGACY_PARAMS.parallelism),
    }
}

/// The fixed time every failed login is held back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginDelay {
    target: Duration,
}

impl LoginDelay {
    /// The delay for a verification at [`target_params`] measured to take `measured`, bounded by
    /// [`MAX_TARGET`].
    pub fn from_measured(measured: Duration) -> Self {
        Self {
            target: measured.min(MAX_TARGET),
        }
    }

    /// The target.
    pub fn target(&self) -> Duration {
        self.target
    }

    /// How much longer a failure that has taken `elapsed` so far must wait.
    pub fn hold_back(&self, elapsed: Duration) -> Duration {
        self.target.saturating_sub(elapsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_failure_is_held_back_to_the_fixed_target() {
        let d = LoginDelay::from_measured(200 * MS);
        // An unknown email (decoy at the configured parameters, 42 ms) waits for the rest.
        assert_eq!(d.hold_back(42 * MS), 158 * MS);
        // A wrong password against a legacy hash itself needs no wait.
        assert_eq!(d.hold_back(200 * MS), Duration::ZERO);
    }

    #[test]
    fn contention_never_makes_a_failure_wait_longer_than_the_target() {
        let d = LoginDelay::from_measured(200 * MS);
        // Under load the verification itself took longer: nothing more is added.
        assert_eq!(d.hold_back(900 * MS), Duration::ZERO);
        assert_eq!(d.hold_back(Duration::from_secs(60)), Duration::ZERO);
        for elapsed in [0, 1, 50, 199, 200, 5000] {
            assert!(d.hold_back(elapsed * MS) <= d.target());
        }
    }

    #[test]
    fn an_absurd_measurement_is_bounded() {
        let d = LoginDelay::from_measured(Duration::from_secs(3600));
        assert_eq!(d.target(), MAX_TARGET);
        assert_eq!(d.hold_back(Duration::ZERO), MAX_TARGET);
    }

    #[test]
    fn the_target_is_measured_at_least_at_the_legacy_cost() {
        // Tiny (test) and default parameters: the legacy format is the costliest accepted.
        let tiny = HashParams {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        };
        assert_eq!(target_params(tiny), LEGACY_PARAMS);
        assert_eq!(target_params(HashParams::default()), LEGACY_PARAMS);
        // Configured above the legacy cost in some dimensions: those win.
        let big = HashParams {
            memory_kib: 262_144,
            iterations: 2,
            parallelism: 8,
        };
        assert_eq!(
            target_params(big),
            HashParams {
                memory_kib: 262_144,
                iterations: 3,
                parallelism: 8,
            }
        );
    }
}

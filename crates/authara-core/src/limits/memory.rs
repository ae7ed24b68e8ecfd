//! The in-process limiter: fixed windows in a map with a bound on its size.

use super::{Count, LimitKey, Limited, RateLimiter, RateLimits};
use crate::clock::Clock;
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use time::OffsetDateTime;

/// Counts in this process. At most `max_entries` counters are kept: when a new one would go
/// beyond that, the counters whose windows started first are forgotten first. Expired windows
/// are swept every `cleanup_every` calls. The lock is never held across an `.await` (nothing
/// here awaits).
pub struct MemoryLimiter {
    limits: RateLimits,
    clock: Arc<dyn Clock>,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    entries: HashMap<String, Entry>,
    /// Window start order: sequence number → key, the oldest first.
    order: BTreeMap<u64, String>,
    next_seq: u64,
    calls: u32,
}

struct Entry {
    count: u64,
    resets_at: OffsetDateTime,
    seq: u64,
}

/// What one call does to its counter.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    /// Count, and refuse beyond the limit.
    Hit,
    /// Refuse a full window, count nothing.
    Check,
    /// Count, refuse nothing.
    Record,
    /// Give one back in the current window, refuse nothing.
    Refund,
}

impl MemoryLimiter {
    /// A limiter with `limits`, telling time by `clock`.
    pub fn new(limits: RateLimits, clock: Arc<dyn Clock>) -> Self {
        Self {
            limits,
            clock,
            table: Mutex::new(Table::default()),
        }
    }

    /// How many counters are kept right now.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no counter is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // A panic while holding the lock cannot leave the table inconsistent in a way that
        // matters more than losing a few counts.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts an attempt (see [`RateLimiter::hit`]), synchronously.
    pub fn hit_now(&self, key: LimitKey<'_>) -> Result<(), Limited> {
        self.apply(key, Op::Hit)
    }

    /// See [`RateLimiter::check`], synchronously.
    pub fn check_now(&self, key: LimitKey<'_>) -> Result<(), Limited> {
        self.apply(key, Op::Check)
    }

    /// See [`RateLimiter::record`], synchronously.
    pub fn record_now(&self, key: LimitKey<'_>) {
        let _ = self.apply(key, Op::Record);
    }

    /// See [`RateLimiter::refund`], synchronously.
    pub fn refund_now(&self, key: LimitKey<'_>) {
        let _ = self.apply(key, Op::Refund);
    }

    fn apply(&self, key: LimitKey<'_>, op: Op) -> Result<(), Limited> {
        let Some(limit) = self.limits.get(key.family) else {
            return Ok(());
        };
        let now = self.clock.now();
        let window = time::Duration::try_from(limit.window).unwrap_or(time::Duration::MAX);
        let name = key.to_string();
        let mut t = self.lock();
        t.calls = t.calls.wrapping_add(1);
        if t.calls >= self.limits.cleanup_every.max(1) {
            t.calls = 0;
            t.sweep(now);
        }
        let count = match op {
            Op::Check => t.peek(&name, now, limit.window),
            Op::Refund => {
                t.decrement(&name, now);
                return Ok(());
            }
            Op::Hit | Op::Record => t.increment(name, now, window, self.limits.max_entries),
        };
        drop(t);
        match op {
            Op::Hit => count.after_hit(limit),
            Op::Check => count.before_attempt(limit),
            Op::Record | Op::Refund => Ok(()),
        }
    }
}

fn left(resets_at: OffsetDateTime, now: OffsetDateTime) -> Duration {
    Duration::try_from(resets_at - now).unwrap_or(Duration::ZERO)
}

impl Table {
    fn peek(&self, name: &str, now: OffsetDateTime, window: Duration) -> Count {
        match self.entries.get(name) {
            Some(e) if e.resets_at > now => Count {
                count: e.count,
                resets_in: left(e.resets_at, now),
            },
            _ => Count {
                count: 0,
                resets_in: window,
            },
        }
    }

    /// One less in the current window of `name`; nothing when it has none or it is over.
    fn decrement(&mut self, name: &str, now: OffsetDateTime) {
        if let Some(e) = self.entries.get_mut(name) {
            if e.resets_at > now {
                e.count = e.count.saturating_sub(1);
            }
        }
    }

    fn increment(
        &mut self,
        name: String,
        now: OffsetDateTime,
        window: time::Duration,
        max_entries: usize,
    ) -> Count {
        let seq = self.next_seq;
        if let Some(e) = self.entries.get_mut(&name) {
            if e.resets_at > now {
                e.count = e.count.saturating_add(1);
                return Count {
                    count: e.count,
                    resets_in: left(e.resets_at, now),
                };
            }
            // A new window: it now starts last in the order.
            self.order.remove(&e.seq);
            e.count = 1;
            e.resets_at = now.saturating_add(window);
            e.seq = seq;
            let resets_in = left(e.resets_at, now);
            self.next_seq += 1;
            self.order.insert(seq, name);
            return Count {
                count: 1,
                resets_in,
            };
        }
        while self.entries.len() >= max_entries.max(1) {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
        }
        let resets_at = now.saturating_add(window);
        self.next_seq += 1;
        self.order.insert(seq, name.clone());
        self.entries.insert(
            name,
            Entry {
                count: 1,
                resets_at,
                seq,
            },
        );
        Count {
            count: 1,
            resets_in: left(resets_at, now),
        }
    }

    fn sweep(&mut self, now: OffsetDateTime) {
        let order = &mut self.order;
        self.entries.retain(|_, e| {
            let live = e.resets_at > now;
            if !live {
                order.remove(&e.seq);
            }
            live
        });
    }
}

#[async_trait]
impl RateLimiter for MemoryLimiter {
    async fn hit(&self, key: LimitKey<'_>) -> Result<(), Limited> {
        self.hit_now(key)
    }

    async fn check(&self, key: LimitKey<'_>) -> Result<(), Limited> {
        self.check_now(key)
    }

    async fn record(&self, key: LimitKey<'_>) {
        self.record_now(key);
    }

    async fn refund(&self, key: LimitKey<'_>) {
        self.refund_now(key);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::limits::{Family, Limit};

    const MIN: Duration = Duration::from_secs(60);

    fn limiter(limits: RateLimits) -> (MemoryLimiter, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::starting_now());
        (MemoryLimiter::new(limits, clock.clone()), clock)
    }

    fn ip(v: &str) -> LimitKey<'_> {
        LimitKey::new(Family::LoginIp, v)
    }

    #[test]
    fn a_fixed_window_refuses_beyond_the_limit_and_opens_again_when_it_resets() {
        let (l, clock) = limiter(RateLimits {
            login_ip: Limit::new(3, MIN),
            ..RateLimits::default()
        });
        for _ in 0..3 {
            assert!(l.hit_now(ip("a")).is_ok());
        }
        clock.advance(time::Duration::seconds(20));
        let refused = l.hit_now(ip("a")).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(40));
        assert!(l.hit_now(ip("b")).is_ok(), "another key has its own count");
        clock.advance(time::Duration::seconds(40));
        assert!(l.hit_now(ip("a")).is_ok(), "a new window");
        assert!(l.hit_now(ip("a")).is_ok());
        assert!(l.hit_now(ip("a")).is_ok());
        assert!(l.hit_now(ip("a")).is_err());
    }

    #[test]
    fn check_does_not_spend_and_record_does_not_refuse() {
        let (l, _) = limiter(RateLimits {
            login_email: Limit::new(2, MIN),
            ..RateLimits::default()
        });
        let k = LimitKey::new(Family::LoginEmail, "ada@example.com");
        for _ in 0..10 {
            assert!(l.check_now(k).is_ok());
        }
        assert!(l.is_empty(), "a check stores nothing");
        l.record_now(k);
        assert!(l.check_now(k).is_ok());
        l.record_now(k);
        assert_eq!(l.check_now(k).unwrap_err().retry_after, MIN);
        l.record_now(k);
        assert!(l.check_now(k).is_err());
    }

    #[test]
    fn a_refund_gives_back_one_hit_in_the_same_window_only_and_never_goes_below_zero() {
        let (l, clock) = limiter(RateLimits {
            login_email: Limit::new(2, MIN),
            ..RateLimits::default()
        });
        let k = LimitKey::new(Family::LoginEmail, "ada@example.com");
        l.refund_now(k);
        assert!(l.is_empty(), "a refund of nothing stores nothing");
        for _ in 0..10 {
            assert!(l.hit_now(k).is_ok());
            l.refund_now(k);
        }
        assert!(l.hit_now(k).is_ok());
        assert!(l.hit_now(k).is_ok());
        assert!(l.hit_now(k).is_err());
        // Refunds floor at zero: many refunds do not buy more than the limit.
        for _ in 0..10 {
            l.refund_now(k);
        }
        assert!(l.hit_now(k).is_ok());
        assert!(l.hit_now(k).is_ok());
        assert!(l.hit_now(k).is_err());
        // A refund after the window ended gives nothing to the next window.
        let other = LimitKey::new(Family::LoginEmail, "bob@example.com");
        assert!(l.hit_now(other).is_ok());
        clock.advance(time::Duration::seconds(61));
        assert!(l.hit_now(other).is_ok());
        clock.advance(time::Duration::seconds(61));
        l.refund_now(other);
        assert!(l.hit_now(other).is_ok());
        assert!(l.hit_now(other).is_ok());
        assert!(l.hit_now(other).is_err());
    }

    #[test]
    fn families_count_apart_and_a_family_that_is_off_is_never_stored() {
        let (l, _) = limiter(RateLimits {
            login_ip: Limit::new(1, MIN),
            signup_ip: Limit::new(0, MIN),
            passkey_login_ip: Limit::new(1, MIN),
            ..RateLimits::default()
        });
        assert!(l.hit_now(ip("x")).is_ok());
        assert!(l
            .hit_now(LimitKey::new(Family::PasskeyLoginIp, "x"))
            .is_ok());
        assert!(l
            .hit_now(LimitKey::new(Family::PasskeyLoginFinishIp, "x"))
            .is_ok());
        assert!(l
            .hit_now(LimitKey::new(Family::PasskeyLoginIp, "x"))
            .is_err());
        assert!(l.hit_now(ip("x")).is_err());
        for _ in 0..100 {
            assert!(l.hit_now(LimitKey::new(Family::SignupIp, "x")).is_ok());
        }
        assert_eq!(l.len(), 3);
    }

    #[test]
    fn a_flood_of_distinct_keys_keeps_the_bound_and_forgets_the_oldest_first() {
        let max = 100;
        let (l, clock) = limiter(RateLimits {
            login_ip: Limit::new(1, MIN),
            max_entries: max,
            cleanup_every: 1_000_000,
            ..RateLimits::default()
        });
        // Spent counters, one per address, in order.
        for i in 0..max {
            assert!(l.hit_now(ip(&format!("k{i}"))).is_ok());
            clock.advance(time::Duration::milliseconds(1));
        }
        assert_eq!(l.len(), max);
        // 30 newcomers push out the 30 oldest.
        for i in 0..30 {
            assert!(l.hit_now(ip(&format!("new{i}"))).is_ok());
            assert_eq!(l.len(), max, "the bound holds");
        }
        for i in 0..30 {
            assert!(
                l.hit_now(ip(&format!("k{i}"))).is_ok(),
                "k{i} was forgotten"
            );
            // ...and coming back, each pushed out one more of the oldest.
        }
        for i in 60..max {
            assert!(l.hit_now(ip(&format!("k{i}"))).is_err(), "k{i} was kept");
        }
        // A huge flood still holds the bound.
        for i in 0..10_000 {
            let _ = l.hit_now(ip(&format!("flood{i}")));
        }
        assert_eq!(l.len(), max);
        // The newest flood entries are the ones kept.
        assert!(l.hit_now(ip("flood9999")).is_err());
        assert!(l.hit_now(ip("flood0")).is_ok());
    }

    #[test]
    fn a_renewed_window_counts_as_new_in_the_eviction_order() {
        let (l, clock) = limiter(RateLimits {
            login_ip: Limit::new(1, MIN),
            max_entries: 2,
            cleanup_every: 1_000_000,
            ..RateLimits::default()
        });
        assert!(l.hit_now(ip("a")).is_ok());
        assert!(l.hit_now(ip("b")).is_ok());
        clock.advance(time::Duration::seconds(61));
        assert!(
            l.hit_now(ip("a")).is_ok(),
            "a's window renewed, now the newest"
        );
        assert!(l.hit_now(ip("c")).is_ok(), "pushes out b, the oldest");
        assert!(l.hit_now(ip("a")).is_err(), "a kept");
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn expired_windows_are_swept_every_n_calls() {
        let (l, clock) = limiter(RateLimits {
            login_ip: Limit::new(5, MIN),
            login_email: Limit::new(5, 10 * MIN),
            cleanup_every: 10,
            ..RateLimits::default()
        });
        for i in 0..5 {
            assert!(l.hit_now(ip(&format!("{i}"))).is_ok());
        }
        l.record_now(LimitKey::new(Family::LoginEmail, "long"));
        assert_eq!(l.len(), 6);
        clock.advance(time::Duration::seconds(61));
        // Calls 7, 8, 9 do not sweep; the 10th does.
        for _ in 0..3 {
            assert!(l.check_now(ip("0")).is_ok());
        }
        assert_eq!(l.len(), 6);
        assert!(l.check_now(ip("0")).is_ok());
        assert_eq!(l.len(), 1, "only the 10-minute window is left");
    }

    #[tokio::test]
    async fn the_trait_is_the_same_limiter() {
        let (l, _) = limiter(RateLimits {
            signup_email: Limit::new(1, MIN),
            ..RateLimits::default()
        });
        let l: Arc<dyn RateLimiter> = Arc::new(l);
        let k = LimitKey::new(Family::SignupEmail, "e");
        assert!(l.hit(k).await.is_ok());
        assert!(l.check(k).await.is_err());
        assert!(l.hit(k).await.is_err());
    }
}

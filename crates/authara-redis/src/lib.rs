//! Rate-limit counters in Redis, shared by every instance, under upstream's keys
//! (`authara:ratelimit:<kind>:<scope>:<value>`).
//!
//! Each count is one Lua script, so that incrementing and starting the window are atomic:
//! `INCR`, and `PEXPIRE` on the first hit (a fixed window), returning the count and `PTTL`.
//! Every call has a short timeout. When Redis does not answer, the in-process limiter counts
//! instead (a warning at most once a minute), requests keep being served, and a background
//! task reconnects once a second; the first successful connection puts Redis back in use.
//!
//! Only `redis://` is supported: the TLS features of the `redis` crate would bring a rustls
//! set-up of their own next to the one reqwest uses, so the configuration refuses `rediss://`.

use async_trait::async_trait;
use authara_core::clock::Clock;
use authara_core::limits::{Count, LimitKey, Limited, MemoryLimiter, RateLimiter, RateLimits};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Script};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// Longest wait for one Redis call.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(500);
/// Longest wait for a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause between reconnection attempts while Redis is away.
pub const RETRY_EVERY: Duration = Duration::from_secs(1);
/// Least time between two "Redis is unreachable" warnings.
pub const WARN_EVERY: Duration = Duration::from_secs(60);

/// Counts one event: starts the window on the first, heals a key left without expiry.
/// `KEYS[1]`: the counter; `ARGV[1]`: the window in milliseconds. Returns `{count, pttl}`.
const INCREMENT: &str = r"
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
";

/// Reads a counter without counting. Returns `{count, pttl}`, `{0, -2}` when there is none.
const PEEK: &str = r"
local count = redis.call('GET', KEYS[1])
if not count then
  return {0, -2}
end
return {tonumber(count), redis.call('PTTL', KEYS[1])}
";

/// Gives back one counted event: `DECR` only while the key exists (its window is current) and
/// above zero, so a refund never creates a key, never lasts beyond its window (DECR keeps the
/// expiry) and never goes below zero. Returns the count left (0 when there was none).
const REFUND: &str = r"
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count and count > 0 then
  return redis.call('DECR', KEYS[1])
end
return 0
";

/// Why the limiter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// The URL is not one the client understands (it is not shown: it may hold a password).
    #[error("the Redis URL is not valid (it is not shown: it may contain a password)")]
    InvalidUrl,
}

/// The Redis key of a counter: upstream's `authara:ratelimit:<kind>:<scope>:<value>`.
pub fn redis_key(key: LimitKey<'_>) -> String {
    key.to_string()
}

/// A rate limiter whose counts live in Redis, with the in-process limiter as its fallback.
pub struct RedisLimiter {
    shared: Arc<Shared>,
}

struct Shared {
    client: redis::Client,
    limits: RateLimits,
    fallback: MemoryLimiter,
    /// The live connection; `None` while Redis is away. Cloned out, never held across `.await`.
    conn: Mutex<Option<MultiplexedConnection>>,
    reconnecting: AtomicBool,
    last_warning: Mutex<Option<Instant>>,
    increment: Script,
    peek: Script,
    refund: Script,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl RedisLimiter {
    /// Connects to `url`. An unreachable Redis is not an error: the limiter starts on its
    /// in-process fallback and keeps trying to connect. `clock` tells the fallback's time.
    pub async fn connect(
        url: &str,
        limits: RateLimits,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, RedisError> {
        let client = redis::Client::open(url).map_err(|_| RedisError::InvalidUrl)?;
        let shared = Arc::new(Shared {
            client,
            limits,
            fallback: MemoryLimiter::new(limits, clock),
            conn: Mutex::new(None),
            reconnecting: AtomicBool::new(false),
            last_warning: Mutex::new(None),
            increment: Script::new(INCREMENT),
            peek: Script::new(PEEK),
            refund: Script::new(REFUND),
        });
        match shared.open().await {
            Ok(conn) => *lock(&shared.conn) = Some(conn),
            Err(why) => {
                shared.warn(&why);
                Shared::reconnect_later(&shared);
            }
        }
        Ok(Self { shared })
    }

    /// Whether counts go to Redis right now (rather than to the fallback).
    pub fn is_connected(&self) -> bool {
        lock(&self.shared.conn).is_some()
    }
}

impl Shared {
    async fn open(&self) -> Result<MultiplexedConnection, String> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(CONNECT_TIMEOUT)
            .set_response_timeout(CALL_TIMEOUT);
        let connecting = self
            .client
            .get_multiplexed_async_connection_with_config(&config);
        match tokio::time::timeout(CONNECT_TIMEOUT + CALL_TIMEOUT, connecting).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("connecting timed out".to_owned()),
        }
    }

    /// Says that Redis is away, at most once per [`WARN_EVERY`].
    fn warn(&self, why: &str) {
        let mut last = lock(&self.last_warning);
        if last.is_some_and(|t| t.elapsed() < WARN_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        drop(last);
        tracing::warn!(
            error = why,
            "Redis is unreachable: rate limits are counted in this process until it answers again"
        );
    }

    /// Starts the reconnection task unless it runs already. It holds the limiter weakly, so
    /// it ends with it.
    fn reconnect_later(this: &Arc<Self>) {
        if this.reconnecting.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak: Weak<Self> = Arc::downgrade(this);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(RETRY_EVERY).await;
                let Some(shared) = weak.upgrade() else { return };
                match shared.open().await {
                    Ok(conn) => {
                        *lock(&shared.conn) = Some(conn);
                        shared.reconnecting.store(false, Ordering::SeqCst);
                        tracing::info!("Redis answers again: rate limits are shared again");
                        return;
                    }
                    Err(why) => shared.warn(&why),
                }
            }
        });
    }

    /// Gives one back under `key`; `false` when Redis is away or fails (as [`Self::count`]).
    async fn refund(this: &Arc<Self>, key: LimitKey<'_>) -> bool {
        let conn = lock(&this.conn).clone();
        let Some(mut conn) = conn else {
            Self::reconnect_later(this);
            return false;
        };
        let name = redis_key(key);
        let mut call = this.refund.prepare_invoke();
        call.key(&name);
        let answer = tokio::time::timeout(CALL_TIMEOUT, call.invoke_async::<i64>(&mut conn)).await;
        let why = match answer {
            Ok(Ok(_)) => return true,
            Ok(Err(e)) => e.to_string(),
            Err(_) => "the call timed out".to_owned(),
        };
        *lock(&this.conn) = None;
        this.warn(&why);
        Self::reconnect_later(this);
        false
    }

    /// Runs one script on the current connection; `None` when Redis is away or fails (the
    /// connection is then dropped and the reconnection task started).
    async fn count(
        this: &Arc<Self>,
        key: LimitKey<'_>,
        window: Duration,
        increment: bool,
    ) -> Option<Count> {
        let conn = lock(&this.conn).clone();
        let Some(mut conn) = conn else {
            Self::reconnect_later(this);
            return None;
        };
        let name = redis_key(key);
        let mut call = if increment {
            let mut inv = this.increment.prepare_invoke();
            let ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
            inv.key(&name).arg(ms);
            inv
        } else {
            let mut inv = this.peek.prepare_invoke();
            inv.key(&name);
            inv
        };
        let answer = tokio::time::timeout(CALL_TIMEOUT, call_script(&mut call, &mut conn)).await;
        let why = match answer {
            Ok(Ok((count, ttl))) => {
                let resets_in = u64::try_from(ttl).map_or(window, Duration::from_millis);
                return Some(Count {
                    count: u64::try_from(count).unwrap_or(0),
                    resets_in,
                });
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => "the call timed out".to_owned(),
        };
        *lock(&this.conn) = None;
        this.warn(&why);
        Self::reconnect_later(this);
        None
    }
}

async fn call_script(
    call: &mut redis::ScriptInvocation<'_>,
    conn: &mut MultiplexedConnection,
) -> redis::RedisResult<(i64, i64)> {
    call.invoke_async(conn).await
}

#[async_trait]
impl RateLimiter for RedisLimiter {
    async fn hit(&self, key: LimitKey<'_>) -> Result<(), Limited> {
        let Some(limit) = self.shared.limits.get(key.family) else {
            return Ok(());
        };
        match Shared::count(&self.shared, key, limit.window, true).await {
            Some(count) => count.after_hit(limit),
            None => self.shared.fallback.hit_now(key),
        }
    }

    async fn check(&self, key: LimitKey<'_>) -> Result<(), Limited> {
        let Some(limit) = self.shared.limits.get(key.family) else {
            return Ok(());
        };
        match Shared::count(&self.shared, key, limit.window, false).await {
            Some(count) => count.before_attempt(limit),
            None => self.shared.fallback.check_now(key),
        }
    }

    async fn record(&self, key: LimitKey<'_>) {
        let Some(limit) = self.shared.limits.get(key.family) else {
            return;
        };
        if Shared::count(&self.shared, key, limit.window, true)
            .await
            .is_none()
        {
            self.shared.fallback.record_now(key);
        }
    }

    async fn refund(&self, key: LimitKey<'_>) {
        if self.shared.limits.get(key.family).is_none() {
            return;
        }
        // Without Redis the hit was most likely counted by the fallback: refund it there.
        if !Shared::refund(&self.shared, key).await {
            self.shared.fallback.refund_now(key);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use authara_core::clock::ManualClock;
    use authara_core::limits::{Family, Limit};

    #[test]
    fn keys_are_upstreams() {
        assert_eq!(
            redis_key(LimitKey::new(Family::LoginIp, "198.51.100.4")),
            "authara:ratelimit:login:ip:198.51.100.4"
        );
        assert_eq!(
            redis_key(LimitKey::new(Family::SignupEmail, "ada@example.com")),
            "authara:ratelimit:signup:email:ada@example.com"
        );
        assert_eq!(
            redis_key(LimitKey::new(Family::PasskeyLoginFinishIp, "2001:db8::1")),
            "authara:ratelimit:passkey_login_finish:ip:2001:db8::1"
        );
    }

    #[test]
    fn the_scripts_start_the_window_only_on_the_first_hit() {
        assert!(INCREMENT.contains("INCR") && INCREMENT.contains("if count == 1"));
        assert!(!PEEK.contains("INCR") && !PEEK.contains("EXPIRE"));
    }

    #[tokio::test]
    async fn a_bad_url_is_refused_without_showing_it() {
        let e = RedisLimiter::connect(
            "redis://:hunter2@[::1",
            RateLimits::default(),
            Arc::new(ManualClock::starting_now()),
        )
        .await
        .err()
        .expect("refused");
        assert!(!e.to_string().contains("hunter2"));
    }

    #[tokio::test]
    async fn without_redis_the_fallback_counts() {
        // Port 1 on loopback: nothing listens, the connection is refused at once.
        let limits = RateLimits {
            login_ip: Limit::new(2, Duration::from_secs(60)),
            ..RateLimits::default()
        };
        let l = RedisLimiter::connect(
            "redis://127.0.0.1:1",
            limits,
            Arc::new(ManualClock::starting_now()),
        )
        .await
        .unwrap();
        assert!(!l.is_connected());
        let k = LimitKey::new(Family::LoginIp, "192.0.2.1");
        assert!(l.hit(k).await.is_ok());
        assert!(l.hit(k).await.is_ok());
        assert!(l.hit(k).await.is_err());
        assert!(l.check(k).await.is_err());
    }

    #[tokio::test]
    async fn redis_being_away_is_said_at_most_once_a_minute() {
        let l = RedisLimiter::connect(
            "redis://127.0.0.1:1",
            RateLimits::default(),
            Arc::new(ManualClock::starting_now()),
        )
        .await
        .unwrap();
        let first = lock(&l.shared.last_warning).expect("warned at start");
        for _ in 0..20 {
            let _ = l.hit(LimitKey::new(Family::LoginIp, "192.0.2.2")).await;
            l.shared.warn("still away");
        }
        assert_eq!(*lock(&l.shared.last_warning), Some(first));
    }
}

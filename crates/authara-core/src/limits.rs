//! The rate-limit seam. The limiter itself (in-process with a memory bound, or shared through
//! Redis) is its own piece of work; handlers already ask this interface before every login and
//! signup, so plugging it in changes no handler.

use async_trait::async_trait;
use std::time::Duration;

/// What is being limited, and by which key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKey<'a> {
    LoginIp(&'a str),
    LoginEmail(&'a str),
    SignupIp(&'a str),
    SignupEmail(&'a str),
}

/// A request over its limit, with how long until it may retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: Duration,
}

/// Counts attempts and says whether one more is allowed.
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Records an attempt under `key`; `Err` when it is over the limit.
    async fn hit(&self, key: LimitKey<'_>) -> Result<(), Limited>;
}

/// Allows everything. Used until the limiter lands, and by benchmarks that raise limits.
#[derive(Debug, Default, Clone, Copy)]
pub struct Unlimited;

#[async_trait]
impl RateLimiter for Unlimited {
    async fn hit(&self, _key: LimitKey<'_>) -> Result<(), Limited> {
        Ok(())
    }
}

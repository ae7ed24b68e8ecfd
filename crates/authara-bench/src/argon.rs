//! The Argon2 limit: how many verifications per second this machine does, in this process alone.

use anyhow::Context as _;
use argon2::password_hash::{PasswordHash, PasswordVerifier as _};
use argon2::Argon2;
use authara_core::auth::password::{HashParams, PasswordHasher};
use authara_core::domain::Password;
use authara_core::random::OsRandom;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One PHC hash of `password` at the default parameters (m=19456, t=2, p=1), made by the
/// server's own hasher.
pub async fn default_hash(password: &str) -> anyhow::Result<String> {
    let hasher = PasswordHasher::new(HashParams::default(), 1, Arc::new(OsRandom))
        .context("building the password hasher")?;
    let pw = Password::attempt(password).context("the bench password is too long")?;
    hasher.hash(&pw).await.context("hashing the bench password")
}

/// Verifies `password` against `phc` on `threads` threads for about `duration` (each thread
/// finishes the hash it is in) and returns verifications per second, summed over threads.
/// This is exactly the work `POST /auth/login` does per request. Stops early when `stop` is set.
pub fn hashes_per_second(
    phc: &str,
    password: &str,
    threads: usize,
    duration: Duration,
    stop: &AtomicBool,
) -> anyhow::Result<f64> {
    let parsed = PasswordHash::new(phc).map_err(|e| anyhow::anyhow!("bad PHC string: {e}"))?;
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .map_err(|e| anyhow::anyhow!("the bench hash does not verify: {e}"))?;
    let rates: Vec<f64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads.max(1))
            .map(|_| {
                let parsed = &parsed;
                s.spawn(move || {
                    let argon = Argon2::default();
                    let start = Instant::now();
                    let mut n = 0u64;
                    while start.elapsed() < duration && !stop.load(Ordering::Relaxed) {
                        if argon.verify_password(password.as_bytes(), parsed).is_ok() {
                            n += 1;
                        }
                    }
                    let secs = start.elapsed().as_secs_f64();
                    if secs > 0.0 {
                        n as f64 / secs
                    } else {
                        0.0
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(0.0))
            .collect()
    });
    Ok(rates.iter().sum())
}

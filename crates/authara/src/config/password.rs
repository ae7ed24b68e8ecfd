//! Password hashing: the Argon2id cost of new hashes and how many are computed or may wait at
//! once (`AUTHARA_PASSWORD_HASH_*`).

use super::env::Env;
use super::ConfigError;
use authara_core::auth::password::{HashParams, DEFAULT_QUEUE_PER_THREAD};

/// The names of this section's variables.
pub mod var {
    /// Argon2id memory.
    pub const HASH_MEMORY_KIB: &str = "AUTHARA_PASSWORD_HASH_MEMORY_KIB";
    /// Argon2id iterations.
    pub const HASH_ITERATIONS: &str = "AUTHARA_PASSWORD_HASH_ITERATIONS";
    /// Argon2id lanes.
    pub const HASH_PARALLELISM: &str = "AUTHARA_PASSWORD_HASH_PARALLELISM";
    /// Password hashes computed at once.
    pub const HASH_CONCURRENCY: &str = "AUTHARA_PASSWORD_HASH_CONCURRENCY";
    /// Password hashes that may wait for a hashing thread; beyond that, `503` at once.
    pub const HASH_QUEUE: &str = "AUTHARA_PASSWORD_HASH_QUEUE";
}

use var::*;

/// What this section reads.
pub(super) struct Section {
    /// Argon2id cost of new password hashes.
    pub password_hash: HashParams,
    /// How many password hashes run at once.
    pub hash_concurrency: usize,
    /// How many password hashes may wait for a thread.
    pub hash_queue: usize,
}

/// Reads the section; concurrency defaults to the number of cores, the queue to 32 per thread.
pub(super) fn read(e: &Env<'_>) -> Result<Section, ConfigError> {
    let password_hash = params(e)?;
    let default_concurrency = std::thread::available_parallelism()
        .map_or(2, std::num::NonZeroUsize::get)
        .clamp(1, 256);
    let hash_concurrency = e.whole(HASH_CONCURRENCY, default_concurrency, 1, 256, "")?;
    let default_queue = hash_concurrency * DEFAULT_QUEUE_PER_THREAD;
    let hash_queue = e.whole(HASH_QUEUE, default_queue, 1, 65_536, "")?;
    Ok(Section {
        password_hash,
        hash_concurrency,
        hash_queue,
    })
}

fn params(e: &Env<'_>) -> Result<HashParams, ConfigError> {
    let d = HashParams::default();
    let parallelism: u32 = e.whole(HASH_PARALLELISM, d.parallelism, 1, 64, "")?;
    Ok(HashParams {
        memory_kib: e.whole(
            HASH_MEMORY_KIB,
            d.memory_kib,
            8 * u64::from(parallelism),
            1 << 20,
            " of KiB",
        )?,
        iterations: e.whole(HASH_ITERATIONS, d.iterations, 1, 64, "")?,
        parallelism,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::testing::{assert_messages, load};
    use super::*;

    #[test]
    fn every_invalid_hash_setting_has_its_own_one_line_message() {
        let cases: Vec<(Vec<(&str, &str)>, String)> = vec![
            (
                vec![("AUTHARA_PASSWORD_HASH_PARALLELISM", "65")],
                r#"AUTHARA_PASSWORD_HASH_PARALLELISM must be a whole number from 1 to 64, got "65""#.into(),
            ),
            (
                vec![
                    ("AUTHARA_PASSWORD_HASH_PARALLELISM", "4"),
                    ("AUTHARA_PASSWORD_HASH_MEMORY_KIB", "16"),
                ],
                r#"AUTHARA_PASSWORD_HASH_MEMORY_KIB must be a whole number of KiB from 32 to 1048576, got "16""#.into(),
            ),
            (
                vec![("AUTHARA_PASSWORD_HASH_ITERATIONS", "0")],
                r#"AUTHARA_PASSWORD_HASH_ITERATIONS must be a whole number from 1 to 64, got "0""#.into(),
            ),
            (
                vec![("AUTHARA_PASSWORD_HASH_CONCURRENCY", "257")],
                r#"AUTHARA_PASSWORD_HASH_CONCURRENCY must be a whole number from 1 to 256, got "257""#.into(),
            ),
            (
                vec![("AUTHARA_PASSWORD_HASH_QUEUE", "0")],
                r#"AUTHARA_PASSWORD_HASH_QUEUE must be a whole number from 1 to 65536, got "0""#.into(),
            ),
        ];
        assert_messages(&cases);
    }

    #[test]
    fn hash_cost_and_concurrency_are_read() {
        let c = load(&[
            ("AUTHARA_PASSWORD_HASH_MEMORY_KIB", "65536"),
            ("AUTHARA_PASSWORD_HASH_ITERATIONS", "3"),
            ("AUTHARA_PASSWORD_HASH_PARALLELISM", "4"),
            ("AUTHARA_PASSWORD_HASH_CONCURRENCY", "3"),
        ])
        .unwrap();
        assert_eq!(
            c.password_hash,
            HashParams {
                memory_kib: 65536,
                iterations: 3,
                parallelism: 4
            }
        );
        assert_eq!(c.hash_concurrency, 3);
        // The queue defaults to 32 waiting hashes per hashing thread.
        assert_eq!(c.hash_queue, 96);
    }
}

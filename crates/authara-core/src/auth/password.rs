//! Argon2id password hashing on a fixed set of threads of its own, off the async executor: a
//! login flood queues instead of exhausting memory or starving other requests. Each thread keeps
//! its Argon2 working memory between hashes, so memory stays at threads × `m` and no hash pays
//! for fresh pages. The queue in front of the threads is bounded: when it is full, a hash is
//! refused at once with [`HashError::Busy`] rather than waiting, so a flood costs neither memory
//! nor unbounded latency, and the caller answers `503` with `Retry-After`.

use super::delay::{self, LoginDelay};
use crate::domain::Password;
use crate::random::Random;
use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq as _;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Iterations.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for HashParams {
    /// OWASP's recommended minimum: m=19456 KiB, t=2, p=1.
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// Upper bounds for parameters read from stored hashes, so a corrupt row cannot make one
/// verification allocate gigabytes.
const MAX_MEMORY_KIB: u32 = 1 << 20;
const MAX_ITERATIONS: u32 = 64;
const MAX_PARALLELISM: u32 = 64;

/// A stored hash may demand at most this many times the configured memory and iterations
/// (the cost cap); beyond it, it is treated as unusable and the decoy runs instead.
pub const COST_CAP_FACTOR: u32 = 4;
/// The cap never goes below the parameters of Authara's older format
/// (`$argon2id$v=1$t=3$m=65536$p=4$...`), so a database migrated from it keeps verifying
/// whatever parameters are configured.
const LEGACY_MEMORY_KIB: u32 = 65_536;
const LEGACY_ITERATIONS: u32 = 3;

/// Default length of the queue in front of the hashing threads, per hashing thread: a burst of
/// this many logins per core waits (a few hundred milliseconds at the defaults) and the rest
/// are refused at once.
pub const DEFAULT_QUEUE_PER_THREAD: usize = 32;

/// What a verification found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// The password is right; `rehash` when the stored hash is in an old format or has other
    /// parameters than the configured ones.
    Valid { rehash: bool },
    /// Wrong password, no password on the account, or an unreadable hash.
    Invalid,
}

/// Salt of the decoy hash run when there is nothing to verify against: fixed, since its output is
/// thrown away; 16 bytes, like the salt of every hash we write.
const DECOY_SALT: [u8; 16] = *b"authara-decoy-01";

/// Why hashing did not happen.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The queue in front of the hashing threads is full: try again shortly.
    #[error("password hashing is busy: the queue is full")]
    Busy,
    /// Bad parameters, or the hashing threads went away.
    #[error("password hashing failed: {0}")]
    Failed(String),
}

impl HashError {
    fn failed(e: impl std::fmt::Display) -> Self {
        Self::Failed(e.to_string())
    }
}

/// What [`PasswordHasher::verify`] found, and how long the Argon2 work over a stored hash took
/// (`None` when the decoy ran), for the login delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    pub verification: Verification,
    pub stored_took: Option<Duration>,
}

/// The password hasher: Argon2id PHC, legacy-format verification, a decoy hash for unknown users.
pub struct PasswordHasher {
    params: HashParams,
    argon: Argon2<'static>,
    jobs: mpsc::SyncSender<Job>,
    random: Arc<dyn Random>,
    cap: Cap,
    /// Whether a hash above the cost cap was already reported (once per process is enough).
    warned_over_cap: Arc<AtomicBool>,
    /// The failed-login delay, measured once by the first job of the hashing threads.
    delay: tokio::sync::watch::Receiver<Option<LoginDelay>>,
}

/// The most a stored hash may demand.
#[derive(Debug, Clone, Copy)]
struct Cap {
    memory_kib: u32,
    iterations: u32,
}

impl Cap {
    fn for_params(p: HashParams) -> Self {
        Self {
            memory_kib: p
                .memory_kib
                .saturating_mul(COST_CAP_FACTOR)
                .clamp(LEGACY_MEMORY_KIB, MAX_MEMORY_KIB),
            iterations: p
                .iterations
                .saturating_mul(COST_CAP_FACTOR)
                .clamp(LEGACY_ITERATIONS, MAX_ITERATIONS),
        }
    }

    fn admits(&self, m: u32, t: u32, p: u32) -> bool {
        m <= self.memory_kib && t <= self.iterations && p <= MAX_PARALLELISM
    }
}

/// Work for a hashing thread.
type Job = Box<dyn FnOnce(&mut Scratch) + Send>;

/// Argon2 working memory one hashing thread keeps between hashes.
struct Scratch {
    blocks: Vec<Block>,
    /// The most blocks kept; hashes with larger parameters get memory of their own.
    keep: usize,
}

impl Scratch {
    fn hash_into(
        &mut self,
        argon: &Argon2<'_>,
        password: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> Result<(), argon2::Error> {
        let need = argon.params().block_count();
        if need > self.keep {
            let mut own = vec![Block::default(); need];
            return argon.hash_password_into_with_memory(password, salt, out, &mut own);
        }
        if self.blocks.len() < need {
            self.blocks.resize(need, Block::default());
        }
        argon.hash_password_into_with_memory(password, salt, out, &mut self.blocks)
    }
}

/// One hashing thread: takes jobs until the hasher is dropped. A panicking job loses only itself.
fn hashing_thread(jobs: Arc<Mutex<mpsc::Receiver<Job>>>, keep: usize) {
    let mut scratch = Scratch {
        blocks: Vec::new(),
        keep,
    };
    loop {
        let job = {
            let receiver = jobs.lock().unwrap_or_else(|p| p.into_inner());
            match receiver.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let run = std::panic::AssertUnwindSafe(|| job(&mut scratch));
        if std::panic::catch_unwind(run).is_err() {
            tracing::error!("a password hashing job panicked");
        }
    }
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// A hasher with `params`, running at most `concurrency` hashes at once, with
    /// [`DEFAULT_QUEUE_PER_THREAD`] per thread waiting.
    pub fn new(
        params: HashParams,
        concurrency: usize,
        random: Arc<dyn Random>,
    ) -> Result<Self, HashError> {
        let queue = concurrency.max(1).saturating_mul(DEFAULT_QUEUE_PER_THREAD);
        Self::with_queue(params, concurrency, queue, random)
    }

    /// A hasher with `params`, running at most `concurrency` hashes at once, with at most
    /// `queue` more waiting; beyond that, [`HashError::Busy`] at once.
    pub fn with_queue(
        params: HashParams,
        concurrency: usize,
        queue: usize,
        random: Arc<dyn Random>,
    ) -> Result<Self, HashError> {
        let p = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(HashError::failed)?;
        let keep = p.block_count();
        let (jobs, receiver) = mpsc::sync_channel::<Job>(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..concurrency.max(1) {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("authara-hash-{i}"))
                .spawn(move || hashing_thread(receiver, keep))
                .map_err(HashError::failed)?;
        }
        // The first job, ahead of any login: measure the failed-login target (see
        // [`super::delay`]) on a hashing thread, as a real verification would run.
        let (delay_tx, delay) = tokio::sync::watch::channel(None);
        let at = delay::target_params(params);
        let calibrate: Job = Box::new(move |scratch| {
            let measured = measure(scratch, at);
            let _ = delay_tx.send(Some(LoginDelay::from_measured(measured)));
        });
        jobs.send(calibrate).map_err(HashError::failed)?;
        Ok(Self {
            params,
            argon: Argon2::new(Algorithm::Argon2id, Version::V0x13, p),
            jobs,
            random,
            cap: Cap::for_params(params),
            warned_over_cap: Arc::new(AtomicBool::new(false)),
            delay,
        })
    }

    /// The fixed delay failed logins are held back to, once it is measured (the first job of
    /// the hashing threads, so at most one verification's time after start-up). Should the
    /// measurement have been lost, the longest target [`delay::MAX_TARGET`].
    pub async fn login_delay(&self) -> LoginDelay {
        let mut delay = self.delay.clone();
        let measured = match delay.wait_for(Option::is_some).await {
            Ok(measured) => *measured,
            Err(_) => None,
        };
        measured.unwrap_or_else(|| {
            tracing::error!("the failed-login delay was not measured; using the longest");
            LoginDelay::from_measured(delay::MAX_TARGET)
        })
    }

    /// Hashes a new password into a PHC string.
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let mut salt = [0u8; 16];
        self.random.fill(&mut salt);
        let argon = self.argon.clone();
        let pw = password.clone();
        let p = self.params;
        self.run(move |scratch| {
            let mut out = [0u8; 32];
            scratch
                .hash_into(&argon, pw.expose().as_bytes(), &salt, &mut out)
                .map_err(HashError::failed)?;
            Ok(format!(
                "$argon2id$v=19$m={},t={},p={}${}${}",
                p.memory_kib,
                p.iterations,
                p.parallelism,
                STANDARD_NO_PAD.encode(salt),
                STANDARD_NO_PAD.encode(out)
            ))
        })
        .await?
    }

    /// Verifies `password` against `stored`. Whenever there is nothing to verify against (unknown
    /// user, password-less account, an oversized attempt, an unreadable stored hash) it runs a
    /// decoy: the configured Argon2 over the attempt, as a verification of a hash written with
    /// the configured parameters would. A stored hash that demands more than the cost cap
    /// counts as unreadable (logged once, without the hash). [`HashError::Busy`] when the queue
    /// is full.
    pub async fn verify(
        &self,
        password: Option<&Password>,
        stored: Option<&str>,
    ) -> Result<Checked, HashError> {
        let password = password.cloned();
        let stored = stored.map(str::to_owned);
        let argon = self.argon.clone();
        let current = self.params;
        let cap = self.cap;
        let warned = self.warned_over_cap.clone();
        self.run(move |scratch| {
            let attempt = password.as_ref().map_or("", Password::expose);
            let start = Instant::now();
            let found = match (&password, &stored) {
                (Some(_), Some(stored)) => {
                    match verify_stored(scratch, attempt, stored, current, cap) {
                        Stored::Checked(v) => Some(v),
                        Stored::OverCap => {
                            if !warned.swap(true, Ordering::Relaxed) {
                                tracing::warn!(
                                    cap_memory_kib = cap.memory_kib,
                                    cap_iterations = cap.iterations,
                                    "a stored password hash demands more than the cost cap; it is \
                                 treated as unusable (the user must reset the password)"
                                );
                            }
                            None
                        }
                        Stored::Unusable => None,
                    }
                }
                _ => None,
            };
            match found {
                Some(verification) => Checked {
                    verification,
                    stored_took: Some(start.elapsed()),
                },
                None => {
                    decoy(scratch, &argon, attempt);
                    Checked {
                        verification: Verification::Invalid,
                        stored_took: None,
                    }
                }
            }
        })
        .await
    }

    /// Runs `f` on a hashing thread, inside the caller's tracing span, and waits for it. A job
    /// whose caller has gone (its future dropped: client disconnect, timeout) is skipped, so a
    /// flood of abandoned logins costs no Argon2 work.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Scratch) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let span = tracing::Span::current();
        let job: Job = Box::new(move |scratch| {
            if tx.is_closed() {
                return;
            }
            let _ = tx.send(span.in_scope(|| f(scratch)));
        });
        self.jobs.try_send(job).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => HashError::Busy,
            mpsc::TrySendError::Disconnected(_) => {
                HashError::failed("the hashing threads have stopped")
            }
        })?;
        rx.await
            .map_err(|_| HashError::failed("the hashing job did not finish"))
    }
}

/// What a stored hash said.
enum Stored {
    Checked(Verification),
    /// Readable, but it demands more than the cost cap.
    OverCap,
    /// Unreadable.
    Unusable,
}

impl From<Option<Verification>> for Stored {
    fn from(v: Option<Verification>) -> Self {
        v.map_or(Self::Unusable, Self::Checked)
    }
}

/// What `stored` says of `password`. Unusable (unreadable) or over the cap: the caller runs
/// the decoy instead.
fn verify_stored(
    scratch: &mut Scratch,
    password: &str,
    stored: &str,
    current: HashParams,
    cap: Cap,
) -> Stored {
    if stored.starts_with("$argon2id$v=1$") {
        return match verify_legacy(scratch, password, stored, cap) {
            Legacy::Checked(true) => Stored::Checked(Verification::Valid { rehash: true }),
            Legacy::Checked(false) => Stored::Checked(Verification::Invalid),
            Legacy::OverCap => Stored::OverCap,
            Legacy::Unusable => Stored::Unusable,
        };
    }
    let Some(parsed) = PasswordHash::new(stored).ok() else {
        return Stored::Unusable;
    };
    let Some(params) = Params::try_from(&parsed).ok() else {
        return Stored::Unusable;
    };
    if !cap.admits(params.m_cost(), params.t_cost(), params.p_cost()) {
        return Stored::OverCap;
    }
    verify_phc(scratch, password, &parsed, params, current).into()
}

fn verify_phc(
    scratch: &mut Scratch,
    password: &str,
    parsed: &PasswordHash<'_>,
    params: Params,
    current: HashParams,
) -> Option<Verification> {
    if !recompute(scratch, password, parsed, params.clone())? {
        return Some(Verification::Invalid);
    }
    let rehash = parsed.algorithm.as_str() != "argon2id"
        || parsed.version != Some(0x13)
        || params.m_cost() != current.memory_kib
        || params.t_cost() != current.iterations
        || params.p_cost() != current.parallelism;
    Some(Verification::Valid { rehash })
}

/// The work of one verification with nothing to verify against: `argon` (the configured
/// parameters) over the attempt with a fixed salt and a 32-byte output, on the thread's scratch
/// memory, through the same [`hash_matches`] as [`recompute`] for a hash we wrote. The answer
/// is discarded.
fn decoy(scratch: &mut Scratch, argon: &Argon2<'_>, password: &str) {
    let answer = hash_matches(scratch, argon, password, &DECOY_SALT, &[0u8; 32]);
    if answer.is_none() {
        // The configured parameters were validated at start-up, so this cannot happen; were it
        // to, real hashes would fail alike and the timing would reveal nothing.
        tracing::error!("decoy password hash failed");
    }
    std::hint::black_box(answer);
}

/// How long one verification at `at` takes on this thread (a decoy over the empty attempt).
/// Parameters Argon2 refuses (cannot happen: they are no smaller than validated ones) measure
/// as the longest target.
fn measure(scratch: &mut Scratch, at: HashParams) -> Duration {
    let Ok(params) = Params::new(at.memory_kib, at.iterations, at.parallelism, Some(32)) else {
        tracing::error!("the failed-login delay parameters are invalid");
        return delay::MAX_TARGET;
    };
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let start = Instant::now();
    let answer = hash_matches(scratch, &argon, "", &DECOY_SALT, &[0u8; 32]);
    let took = start.elapsed();
    std::hint::black_box(answer);
    took
}

/// Hashes `password` with the algorithm, version, parameters and salt of `parsed` and compares
/// with its hash in constant time. `None` when the hash string is unusable.
fn recompute(
    scratch: &mut Scratch,
    password: &str,
    parsed: &PasswordHash<'_>,
    params: Params,
) -> Option<bool> {
    let expected = parsed.hash?;
    let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
    let version = Version::try_from(parsed.version.unwrap_or(0x13)).ok()?;
    let mut salt_buf = [0u8; 64];
    let salt = parsed.salt?.decode_b64(&mut salt_buf).ok()?;
    let argon = Argon2::new(algorithm, version, params);
    hash_matches(scratch, &argon, password, salt, expected.as_bytes())
}

/// What a legacy-format hash said.
enum Legacy {
    Checked(bool),
    OverCap,
    Unusable,
}

/// Authara's older format: `$argon2id$v=1$t=3$m=65536$p=4$<salt>$<hash>` (base64, with or
/// without padding).
fn verify_legacy(scratch: &mut Scratch, password: &str, stored: &str, cap: Cap) -> Legacy {
    let Some((m, t, p, salt, hash)) = parse_legacy(stored) else {
        return Legacy::Unusable;
    };
    if !cap.admits(m, t, p) {
        return Legacy::OverCap;
    }
    let Some(params) = Params::new(m, t, p, Some(hash.len())).ok() else {
        return Legacy::Unusable;
    };
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    match hash_matches(scratch, &argon, password, &salt, &hash) {
        Some(ok) => Legacy::Checked(ok),
        None => Legacy::Unusable,
    }
}

/// `(m, t, p, salt, hash)` of a legacy-format string; `None` when it is not in that format or
/// beyond the absolute bounds.
#[allow(clippy::type_complexity)]
fn parse_legacy(stored: &str) -> Option<(u32, u32, u32, Vec<u8>, Vec<u8>)> {
    let mut it = stored.split('$');
    let (Some(""), Some("argon2id"), Some("v=1")) = (it.next(), it.next(), it.next()) else {
        return None;
    };
    let num = |s: Option<&str>, k: &str| -> Option<u32> { s?.strip_prefix(k)?.parse().ok() };
    let t = num(it.next(), "t=")?;
    let m = num(it.next(), "m=")?;
    let p = num(it.next(), "p=")?;
    let salt = decode_b64(it.next()?)?;
    let hash = decode_b64(it.next()?)?;
    if it.next().is_some()
        || m > MAX_MEMORY_KIB
        || t > MAX_ITERATIONS
        || p > MAX_PARALLELISM
        || !(4..=1024).contains(&hash.len())
    {
        return None;
    }
    Some((m, t, p, salt, hash))
}

/// Hashes `password` with `argon` and `salt` into as many bytes as `expected` has and compares
/// them in constant time. `None` when hashing fails.
fn hash_matches(
    scratch: &mut Scratch,
    argon: &Argon2<'_>,
    password: &str,
    salt: &[u8],
    expected: &[u8],
) -> Option<bool> {
    let mut out = vec![0u8; expected.len()];
    scratch
        .hash_into(argon, password.as_bytes(), salt, &mut out)
        .ok()?;
    Some(out.ct_eq(expected).into())
}

fn decode_b64(s: &str) -> Option<Vec<u8>> {
    [&STANDARD_NO_PAD, &STANDARD, &URL_SAFE_NO_PAD, &URL_SAFE]
        .iter()
        .find_map(|e| e.decode(s).ok())
}

/// Encodes a hash in the legacy format; for tests of the upgrade path.
pub fn encode_legacy(password: &str, salt: &[u8], t: u32, m: u32, p: u32) -> Option<String> {
    let params = Params::new(m, t, p, Some(32)).ok()?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let mut out = [0u8; 32];
    argon
        .hash_password_into(password.as_bytes(), salt, &mut out)
        .ok()?;
    Some(format!(
        "$argon2id$v=1$t={t}$m={m}$p={p}${}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::OsRandom;

    fn cheap() -> PasswordHasher {
        let params = HashParams {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        };
        PasswordHasher::new(params, 2, Arc::new(OsRandom)).unwrap()
    }

    fn pw(s: &str) -> Password {
        Password::attempt(s).unwrap()
    }

    #[tokio::test]
    async fn hashes_are_argon2id_phc_and_verify() {
        let h = cheap();
        let hash = h.hash(&pw("correct horse")).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=256,t=1,p=1$"), "{hash}");
        let ok = h
            .verify(Some(&pw("correct horse")), Some(&hash))
            .await
            .unwrap()
            .verification;
        assert_eq!(ok, Verification::Valid { rehash: false });
        let bad = h
            .verify(Some(&pw("wrong horse")), Some(&hash))
            .await
            .unwrap()
            .verification;
        assert_eq!(bad, Verification::Invalid);
    }

    #[tokio::test]
    async fn hashes_interoperate_with_the_reference_phc_implementation() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _, SaltString};
        let h = cheap();
        let ours = h.hash(&pw("correct horse")).await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok());
        let params = Params::new(256, 1, 1, None).unwrap();
        let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(
                b"correct horse",
                &SaltString::encode_b64(b"0123456789abcdef").unwrap(),
            )
            .unwrap()
            .to_string();
        let v = h
            .verify(Some(&pw("correct horse")), Some(&reference))
            .await
            .unwrap()
            .verification;
        assert_eq!(v, Verification::Valid { rehash: false });
        let v = h
            .verify(Some(&pw("wrong horse")), Some(&reference))
            .await
            .unwrap()
            .verification;
        assert_eq!(v, Verification::Invalid);
    }

    #[tokio::test]
    async fn many_concurrent_hashes_all_complete_on_the_fixed_threads() {
        let h = Arc::new(cheap());
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let h = h.clone();
                tokio::spawn(async move { h.hash(&pw(&format!("password {i}"))).await })
            })
            .collect();
        for t in tasks {
            assert!(t.await.unwrap().is_ok());
        }
    }

    #[tokio::test]
    async fn default_parameters_match_the_spec() {
        let h = PasswordHasher::new(HashParams::default(), 1, Arc::new(OsRandom)).unwrap();
        let hash = h.hash(&pw("correct horse")).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
    }

    #[tokio::test]
    async fn other_parameters_verify_and_ask_for_a_rehash() {
        let other = PasswordHasher::new(
            HashParams {
                memory_kib: 512,
                iterations: 1,
                parallelism: 1,
            },
            1,
            Arc::new(OsRandom),
        )
        .unwrap();
        let hash = other.hash(&pw("correct horse")).await.unwrap();
        let v = cheap()
            .verify(Some(&pw("correct horse")), Some(&hash))
            .await
            .unwrap()
            .verification;
        assert_eq!(v, Verification::Valid { rehash: true });
    }

    #[tokio::test]
    async fn legacy_format_verifies_and_asks_for_a_rehash() {
        let legacy = encode_legacy("correct horse", b"0123456789abcdef", 1, 64, 1).unwrap();
        assert!(legacy.starts_with("$argon2id$v=1$t=1$m=64$p=1$"));
        let h = cheap();
        let v = h
            .verify(Some(&pw("correct horse")), Some(&legacy))
            .await
            .unwrap()
            .verification;
        assert_eq!(v, Verification::Valid { rehash: true });
        let v = h
            .verify(Some(&pw("wrong")), Some(&legacy))
            .await
            .unwrap()
            .verification;
        assert_eq!(v, Verification::Invalid);
        // Padded base64, as some writers produced it.
        let padded = legacy.replace("$MDEyMzQ1Njc4OWFiY2RlZg$", "$MDEyMzQ1Njc4OWFiY2RlZg==$");
        assert_ne!(padded, legacy);
        let v = h
            .verify(Some(&pw("correct horse")), Some(&padded))
            .await
            .unwrap()
            .verification;
        assert_eq!(v, Verification::Valid { rehash: true });
    }

    #[tokio::test]
    async fn garbage_and_absurd_hashes_never_verify() {
        let h = cheap();
        for stored in [
            "",
            "plaintext",
            "$argon2id$v=1$t=1$m=64$p=1$!!$!!",
            "$argon2id$v=1$t=1$m=99999999$p=1$MDEyMzQ1Njc4OWFiY2RlZg$MDEyMzQ1Njc4OWFiY2RlZg",
            "$argon2id$v=19$m=99999999,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$MDEyMzQ1Njc4OWFiY2RlZg",
        ] {
            let v = h
                .verify(Some(&pw("x")), Some(stored))
                .await
                .unwrap()
                .verification;
            assert_eq!(v, Verification::Invalid, "{stored}");
        }
    }

    #[tokio::test]
    async fn no_stored_hash_is_invalid_even_for_the_dummy_password() {
        let h = cheap();
        let v = h
            .verify(Some(&pw("authara dummy password")), None)
            .await
            .unwrap()
            .verification;
        assert_eq!(v, Verification::Invalid);
        let v = h.verify(None, None).await.unwrap().verification;
        assert_eq!(v, Verification::Invalid);
    }

    #[tokio::test]
    async fn a_job_whose_caller_has_gone_is_skipped() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let h = PasswordHasher::new(HashParams::default(), 1, Arc::new(OsRandom)).unwrap();
        // Hold the only hashing thread until the abandoned job is queued behind it.
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (release, gate) = mpsc::channel::<()>();
        let blocker = h.run(move |_| {
            let _ = started_tx.send(());
            let _ = gate.recv();
        });
        tokio::pin!(blocker);
        tokio::select! {
            biased;
            _ = &mut blocker => panic!("the blocker cannot finish before it is released"),
            _ = started_rx => {}
        }
        let ran = Arc::new(AtomicBool::new(false));
        {
            let flag = ran.clone();
            let abandoned = h.run(move |_| flag.store(true, Ordering::SeqCst));
            tokio::pin!(abandoned);
            // Polled once, which queues the job; then dropped like a disconnected request.
            tokio::select! {
                biased;
                _ = &mut abandoned => panic!("the thread is busy"),
                () = std::future::ready(()) => {}
            }
        }
        release.send(()).unwrap();
        blocker.await.unwrap();
        // One thread takes jobs in order: once this one ran, the abandoned one was dequeued.
        h.run(|_| ()).await.unwrap();
        assert!(!ran.load(Ordering::SeqCst));
    }

    /// How many Argon2 blocks the single hashing thread of `h` holds.
    async fn scratch_blocks(h: &PasswordHasher) -> usize {
        h.run(|scratch| scratch.blocks.len()).await.unwrap()
    }

    #[tokio::test]
    async fn nothing_to_verify_against_still_runs_the_configured_argon2_on_the_hashing_thread() {
        let params = HashParams {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        };
        let cases: [(Option<Password>, Option<&str>); 4] = [
            (Some(pw("correct horse")), None),
            (None, None),
            (
                None,
                Some("$argon2id$v=19$m=256,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"),
            ),
            (Some(pw("correct horse")), Some("plaintext")),
        ];
        for (attempt, stored) in cases {
            let h = PasswordHasher::new(params, 1, Arc::new(OsRandom)).unwrap();
            assert_eq!(scratch_blocks(&h).await, 0);
            let v = h
                .verify(attempt.as_ref(), stored)
                .await
                .unwrap()
                .verification;
            assert_eq!(v, Verification::Invalid, "{stored:?}");
            // The decoy filled the thread's memory to the configured size: it ran Argon2 with
            // the configured parameters, where a real verification of such a hash runs.
            assert_eq!(scratch_blocks(&h).await, 256, "{stored:?}");
        }
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_with_busy() {
        let params = HashParams {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        };
        let h = PasswordHasher::with_queue(params, 1, 1, Arc::new(OsRandom)).unwrap();
        // The start-up measurement of the login delay is the first job: let it finish.
        h.login_delay().await;
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (release, gate) = mpsc::channel::<()>();
        let blocker = h.run(move |_| {
            let _ = started_tx.send(());
            let _ = gate.recv();
        });
        tokio::pin!(blocker);
        tokio::select! {
            biased;
            _ = &mut blocker => panic!("the blocker cannot finish before it is released"),
            _ = started_rx => {}
        }
        // The thread is busy; one job fits in the queue.
        let horse = pw("correct horse");
        let queued = h.hash(&horse);
        tokio::pin!(queued);
        tokio::select! {
            biased;
            _ = &mut queued => panic!("the thread is busy"),
            () = std::future::ready(()) => {}
        }
        // The next ones are refused without waiting for the thread.
        assert!(matches!(h.hash(&pw("x")).await, Err(HashError::Busy)));
        let v = h.verify(Some(&pw("x")), None).await;
        assert!(matches!(v, Err(HashError::Busy)), "{v:?}");
        release.send(()).unwrap();
        blocker.await.unwrap();
        assert!(queued.await.is_ok());
        // Drained: hashing works again.
        assert!(h.hash(&pw("x")).await.is_ok());
    }

    #[test]
    fn the_cost_cap_is_four_times_the_configured_cost_but_admits_the_legacy_format() {
        let cap = Cap::for_params(HashParams::default());
        assert_eq!((cap.memory_kib, cap.iterations), (4 * 19_456, 8));
        // Upstream's legacy parameters pass with the defaults...
        assert!(cap.admits(65_536, 3, 4));
        assert!(!cap.admits(4 * 19_456 + 1, 2, 1));
        assert!(!cap.admits(19_456, 9, 1));
        // ...and with parameters so cheap that 4x would be below them.
        let tiny = Cap::for_params(HashParams {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        });
        assert!(tiny.admits(65_536, 3, 4));
        assert!(!tiny.admits(65_537, 3, 4));
        assert!(tiny.admits(65_536, 4, 4));
        assert!(!tiny.admits(65_536, 5, 4));
    }

    #[tokio::test]
    async fn a_stored_hash_above_the_cap_is_treated_as_unusable_and_runs_the_decoy() {
        // 256 KiB configured: the cap is 64 MiB (the legacy floor); this hash asks for 128 MiB,
        // within the absolute bound. It is never computed: the decoy runs instead.
        let h = cheap();
        let over = "$argon2id$v=19$m=131072,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY";
        let legacy_over =
            "$argon2id$v=1$t=1$m=131072$p=1$MDEyMzQ1Njc4OWFiY2RlZg$MDEyMzQ1Njc4OWFiY2RlZg";
        for stored in [over, legacy_over] {
            let c = h
                .verify(Some(&pw("correct horse")), Some(stored))
                .await
                .unwrap();
            assert_eq!(c.verification, Verification::Invalid, "{stored}");
            assert_eq!(c.stored_took, None, "{stored}");
        }
        // A usable stored hash reports how long its verification took.
        let hash = h.hash(&pw("correct horse")).await.unwrap();
        let c = h
            .verify(Some(&pw("wrong horse")), Some(&hash))
            .await
            .unwrap();
        assert_eq!(c.verification, Verification::Invalid);
        assert!(c.stored_took.is_some());
    }

    #[tokio::test]
    async fn the_login_delay_is_measured_at_start_and_no_login_moves_it() {
        // Before any login the target is already there (a failure right after start is held
        // back like any other), and a flood of the caller's own logins against cheap current
        // hashes cannot flush it down to their cost: it is fixed.
        let h = cheap();
        let delay = h.login_delay().await;
        assert!(delay.target() > Duration::ZERO);
        let hash = h.hash(&pw("correct horse")).await.unwrap();
        for _ in 0..80 {
            let c = h
                .verify(Some(&pw("correct horse")), Some(&hash))
                .await
                .unwrap();
            assert_eq!(c.verification, Verification::Valid { rehash: false });
        }
        assert_eq!(h.login_delay().await, delay);
    }
}

//! Password hashing for tgvisor user accounts.
//!
//! Owns argon2id hashing and verification with a server-side pepper (passed
//! to argon2 as its `secret` input, so it never appears in the stored PHC
//! string), the cost parameters, the decision to rehash after they change,
//! and the dummy computation that makes "unknown user" cost as much as
//! "wrong password". All argon2 work runs on tokio's blocking pool.

use std::fmt;
use std::sync::{Arc, OnceLock};

use argon2::password_hash::phc::PasswordHash;
use argon2::{
    ARGON2ID_IDENT, Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version,
};
use secrecy::{ExposeSecret, SecretBox, SecretString};

/// Minimum pepper length in bytes.
pub const MIN_PEPPER_LEN: usize = 16;

/// Password hashing failed for a reason other than a wrong password.
///
/// Messages never contain passwords, peppers or hashes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// The configured cost parameters are not accepted by argon2.
    #[error("invalid argon2 parameters")]
    InvalidParams,
    /// The configured pepper is shorter than [`MIN_PEPPER_LEN`] bytes.
    #[error("password pepper must be at least 16 bytes")]
    PepperTooShort,
    /// A stored hash is not a PHC string this module can verify.
    #[error("stored password hash is malformed")]
    MalformedHash,
    /// argon2 (or the salt generator) failed.
    #[error("password hashing failed")]
    Hashing,
    /// The blocking task running argon2 panicked or was cancelled.
    #[error("password hashing task failed")]
    TaskFailed,
    /// Every argon2 slot is taken and the queue behind them is full, or
    /// the wait for a slot ran out.
    #[error("too many password checks at once")]
    Busy,
}

/// argon2id cost parameters.
///
/// `Default` gives the OWASP minimum for argon2id: 19 MiB, 2 iterations,
/// 1 lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory cost in KiB (argon2 `m`).
    pub memory_kib: u32,
    /// Number of passes (argon2 `t`).
    pub iterations: u32,
    /// Number of lanes (argon2 `p`).
    pub parallelism: u32,
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// Hashes and verifies passwords with argon2id and a pepper.
///
/// Cheap to clone (shared state behind an `Arc`). `Debug` shows the
/// parameters only.
#[derive(Clone)]
pub struct PasswordHasher {
    /// State shared with the blocking tasks.
    inner: Arc<Inner>,
    /// Bounds concurrent argon2 runs (each holds `memory_kib` of RAM) to
    /// the number of CPUs; more callers queue instead of growing memory.
    running: Arc<tokio::sync::Semaphore>,
    /// How many callers may wait for a slot, and for how long: past
    /// either, [`PasswordError::Busy`] at once instead of a queue (and
    /// open connections) that grows with a spray.
    queue: Arc<Queue>,
}

/// The wait for an argon2 slot.
#[derive(Debug)]
struct Queue {
    waiting: std::sync::atomic::AtomicUsize,
    max_waiting: usize,
    max_wait: std::time::Duration,
}

/// A place in [`Queue`], given back when dropped.
struct Waiting<'a>(&'a Queue);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0
            .waiting
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// What each blocking task needs.
struct Inner {
    /// argon2 `secret` input; never stored with the hash.
    pepper: SecretBox<[u8]>,
    /// Validated argon2 parameters for new hashes.
    params: Params,
    /// Same parameters as configured, for `needs_rehash` and `Debug`.
    config: Argon2Params,
    /// PHC string of a random password under the current parameters, used to
    /// spend the same time on unknown users as on real ones.
    dummy_hash: OnceLock<String>,
    /// Count of argon2 computations, so tests can check the unknown-user path.
    #[cfg(test)]
    computations: std::sync::atomic::AtomicUsize,
}

impl Inner {
    /// An argon2id context borrowing the pepper.
    fn argon2(&self) -> Result<Argon2<'_>, PasswordError> {
        Argon2::new_with_secret(
            self.pepper.expose_secret(),
            Algorithm::Argon2id,
            Version::V0x13,
            self.params.clone(),
        )
        .map_err(|_| PasswordError::InvalidParams)
    }

    /// Hashes `password` with a fresh random salt into a PHC string.
    fn hash_blocking(&self, password: &[u8]) -> Result<String, PasswordError> {
        self.count_computation();
        let hash = self
            .argon2()?
            .hash_password(password)
            .map_err(|_| PasswordError::Hashing)?;
        Ok(hash.to_string())
    }

    /// Checks `password` against a stored PHC string (using the parameters
    /// recorded in it).
    fn verify_blocking(&self, password: &[u8], phc: &str) -> Result<bool, PasswordError> {
        let parsed = PasswordHash::new(phc).map_err(|_| PasswordError::MalformedHash)?;
        self.count_computation();
        match self.argon2()?.verify_password(password, &parsed) {
            Ok(()) => Ok(true),
            Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
            Err(_) => Err(PasswordError::MalformedHash),
        }
    }

    /// One full argon2 computation whose outcome is always "no match".
    fn verify_unknown_user_blocking(&self, password: &[u8]) -> Result<bool, PasswordError> {
        if let Some(dummy) = self.dummy_hash.get() {
            // The result is ignored: an unknown user never authenticates.
            let _ = self.verify_blocking(password, dummy)?;
        } else {
            // First unknown user: creating the dummy hash is itself the one
            // computation of this call, so timing matches from the start.
            let mut random = zeroize::Zeroizing::new([0u8; 32]);
            getrandom::fill(random.as_mut_slice()).map_err(|_| PasswordError::Hashing)?;
            let dummy = self.hash_blocking(random.as_slice())?;
            // A concurrent call may have set it first; either value works.
            let _ = self.dummy_hash.set(dummy);
        }
        Ok(false)
    }

    #[cfg(test)]
    fn count_computation(&self) {
        self.computations
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    #[cfg(not(test))]
    fn count_computation(&self) {}
}

impl PasswordHasher {
    /// Creates a hasher. The pepper is used as raw UTF-8 bytes and must be
    /// at least [`MIN_PEPPER_LEN`] bytes; the parameters are validated now
    /// so that hashing cannot fail on configuration later.
    pub fn new(pepper: SecretString, params: Argon2Params) -> Result<Self, PasswordError> {
        if pepper.expose_secret().len() < MIN_PEPPER_LEN {
            return Err(PasswordError::PepperTooShort);
        }
        let argon2_params = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(|_| PasswordError::InvalidParams)?;
        let pepper: SecretBox<[u8]> =
            SecretBox::from(Box::<[u8]>::from(pepper.expose_secret().as_bytes()));
        Ok(Self {
            inner: Arc::new(Inner {
                pepper,
                params: argon2_params,
                config: params,
                dummy_hash: OnceLock::new(),
                #[cfg(test)]
                computations: std::sync::atomic::AtomicUsize::new(0),
            }),
            running: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, usize::from),
            )),
            queue: Arc::new(Queue {
                waiting: std::sync::atomic::AtomicUsize::new(0),
                max_waiting: usize::MAX,
                max_wait: std::time::Duration::MAX,
            }),
        })
    }

    /// Bounds the queue for an argon2 slot: at most `max_waiting` callers
    /// wait, each at most `max_wait`.
    pub fn with_queue(mut self, max_waiting: u32, max_wait: std::time::Duration) -> Self {
        self.queue = Arc::new(Queue {
            waiting: std::sync::atomic::AtomicUsize::new(0),
            max_waiting: usize::try_from(max_waiting).unwrap_or(usize::MAX),
            max_wait,
        });
        self
    }

    /// A slot for one argon2 run, or [`PasswordError::Busy`].
    async fn slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>, PasswordError> {
        if let Ok(permit) = self.running.try_acquire() {
            return Ok(permit);
        }
        let q = &self.queue;
        let before = q.waiting.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _place = Waiting(q);
        if before >= q.max_waiting {
            return Err(PasswordError::Busy);
        }
        match tokio::time::timeout(q.max_wait, self.running.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(PasswordError::TaskFailed),
            Err(_) => Err(PasswordError::Busy),
        }
    }

    /// Hashes a password with a random salt, returning a PHC string
    /// (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) to store.
    pub async fn hash(&self, password: SecretString) -> Result<String, PasswordError> {
        let _running = self.slot().await?;
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            inner.hash_blocking(password.expose_secret().as_bytes())
        })
        .await
        .map_err(|_| PasswordError::TaskFailed)?
    }

    /// Checks a password against the stored PHC string of the user.
    ///
    /// Pass `None` when the user does not exist: one full argon2 computation
    /// still runs (against a dummy hash with the current parameters) and the
    /// answer is `false`, so unknown users and wrong passwords cost the same.
    /// A wrong password is `Ok(false)`; errors mean a broken stored hash or
    /// a failed task.
    pub async fn verify(
        &self,
        password: SecretString,
        phc: Option<String>,
    ) -> Result<bool, PasswordError> {
        let _running = self.slot().await?;
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let password = password.expose_secret().as_bytes();
            match phc {
                Some(phc) => inner.verify_blocking(password, &phc),
                None => inner.verify_unknown_user_blocking(password),
            }
        })
        .await
        .map_err(|_| PasswordError::TaskFailed)?
    }

    /// True when a stored hash should be replaced on the user's next
    /// successful login: another algorithm or version, other cost
    /// parameters or output length, or a string that cannot be parsed.
    pub fn needs_rehash(&self, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return true;
        };
        if parsed.algorithm != ARGON2ID_IDENT || parsed.version != Some(Version::V0x13.into()) {
            return true;
        }
        let Ok(stored) = Params::try_from(&parsed) else {
            return true;
        };
        let output_len = parsed.hash.as_ref().map(|h| h.len());
        stored.m_cost() != self.inner.params.m_cost()
            || stored.t_cost() != self.inner.params.t_cost()
            || stored.p_cost() != self.inner.params.p_cost()
            || output_len != Some(Params::DEFAULT_OUTPUT_LEN)
    }

    /// The cost parameters used for new hashes.
    pub fn params(&self) -> Argon2Params {
        self.inner.config
    }
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.inner.config)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
#[path = "password_tests.rs"]
mod tests;

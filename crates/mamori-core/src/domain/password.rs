//! Password policy (NIST SP 800-63B-4 section 3.1.1.2: a minimum length, a blocklist of common
//! breached passwords, no context-specific words such as the user name) and Argon2id hashing
//! as PHC strings.
//!
//! Hashing is deliberately slow (~50 ms and 19 MiB at the defaults), so it runs on tokio's
//! blocking pool, never on the threads that serve requests, and at most
//! `limits.password_hash_concurrency` computations run at once ([`argon2_blocking`]): without
//! the bound, a burst of sign-ins would run one Argon2id per request and its memory with it
//! (150 concurrent sign-ins took 4.5 GiB).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use std::sync::{Arc, OnceLock};

use argon2::{Algorithm, Argon2, Params, Version};
use rand::{CryptoRng, RngCore};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::config::PasswordConfig;
use crate::error::{Error, Result};

/// Longest accepted password in characters (bounds the hashing input).
pub const MAX_LEN: usize = 256;

const COMMON: &str = include_str!("../../data/common-passwords.txt");

fn is_common(password: &str) -> bool {
    let lower = password.to_lowercase();
    COMMON
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .any(|l| l == lower)
}

/// The user name must be at least this long for "contains the user name" to refuse a
/// password: a one- or two-letter name occurs by chance in most good passphrases.
const MIN_NAME_IN_PASSWORD: usize = 3;

/// Why a new password is refused; each has its own message in the API and the console.
///
/// Not `non_exhaustive`: the console and the API match it exhaustively, so a new problem
/// cannot be added without its own message at every edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordProblem {
    /// Fewer characters than `password.min_length`.
    TooShort {
        /// The minimum.
        min: usize,
    },
    /// More than [`MAX_LEN`] characters.
    TooLong {
        /// The maximum.
        max: usize,
    },
    /// On the list of the most common breached passwords (NIST SP 800-63B-4 section
    /// 3.1.1.2: compare against a blocklist).
    Common,
    /// Contains the account's user name (a context-specific word, same section).
    ContainsUserName,
}

impl PasswordProblem {
    /// The English explanation (the API's message; the console has its own catalogs).
    pub fn message(self) -> String {
        match self {
            PasswordProblem::TooShort { min } => {
                format!("the password must have at least {min} characters")
            }
            PasswordProblem::TooLong { max } => {
                format!("the password must have at most {max} characters")
            }
            PasswordProblem::Common => {
                "this password is among the most common breached passwords: choose another".into()
            }
            PasswordProblem::ContainsUserName => {
                "the password must not contain the user name: choose one without it".into()
            }
        }
    }
}

impl std::fmt::Display for PasswordProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

/// Checks a new password against the policy; the error says what to change.
pub fn check_policy(cfg: &PasswordConfig, user: &str, password: &str) -> Result<()> {
    problem(cfg, user, password).map_or(Ok(()), |p| Err(Error::WeakPassword(p)))
}

/// The first problem of a new password, if any.
pub fn problem(cfg: &PasswordConfig, user: &str, password: &str) -> Option<PasswordProblem> {
    let len = password.chars().count();
    if len < cfg.min_length {
        return Some(PasswordProblem::TooShort {
            min: cfg.min_length,
        });
    }
    if len > MAX_LEN {
        return Some(PasswordProblem::TooLong { max: MAX_LEN });
    }
    if is_common(password) {
        return Some(PasswordProblem::Common);
    }
    if user.chars().count() >= MIN_NAME_IN_PASSWORD
        && password.to_lowercase().contains(&user.to_lowercase())
    {
        return Some(PasswordProblem::ContainsUserName);
    }
    None
}

fn argon2(cfg: &PasswordConfig) -> Result<Argon2<'static>> {
    let params = Params::new(cfg.argon2_m_kib, cfg.argon2_t, cfg.argon2_p, None)
        .map_err(|e| Error::Config(format!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a password into an Argon2id PHC string (parameters and salt inside it).
pub fn hash<R: RngCore + CryptoRng>(
    password: &str,
    cfg: &PasswordConfig,
    rng: &mut R,
) -> Result<String> {
    let mut salt = [0u8; 16];
    rng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::Internal(e.to_string()))?;
    argon2(cfg)?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("hashing failed: {e}")))
}

/// Verifies a password against a PHC string, with the parameters stored in it.
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Bounds how many slow hash computations run at once: each takes a permit before it is
/// handed to the blocking pool and keeps it until it has finished, so waiting callers hold
/// neither a thread nor the hash's memory. A caller that gives up (the request timed out)
/// stops waiting; a computation already started runs to its end with its permit.
#[derive(Debug, Clone)]
pub struct HashLimiter {
    permits: Arc<Semaphore>,
}

impl HashLimiter {
    /// At most `concurrency` (at least 1) computations at once.
    pub fn new(concurrency: usize) -> HashLimiter {
        HashLimiter {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    /// Runs `f` on the blocking pool once a permit is free.
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| Error::Internal(format!("hashing limiter: {e}")))?;
        tokio::task::spawn_blocking(move || {
            let out = f();
            drop(permit);
            out
        })
        .await
        .map_err(|e| Error::Internal(format!("hashing task: {e}")))
    }
}

static LIMITER: OnceLock<HashLimiter> = OnceLock::new();

/// Sets the process-wide bound of [`argon2_blocking`] (`limits.password_hash_concurrency`).
/// Takes effect only before the first hash; returns whether it did.
pub fn set_concurrency(concurrency: usize) -> bool {
    LIMITER.set(HashLimiter::new(concurrency)).is_ok()
}

fn limiter() -> &'static HashLimiter {
    LIMITER.get_or_init(|| HashLimiter::new(crate::config::default_password_hash_concurrency()))
}

/// Runs an Argon2id computation (`f`) on the blocking pool under the process-wide bound. Every
/// Argon2id of the server goes through here: passwords and recovery codes.
pub async fn argon2_blocking<T, F>(f: F) -> Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    limiter().run(f).await
}

/// [`hash`] on the blocking pool. The salt is drawn from `rng` before leaving the caller.
pub async fn hash_blocking<R: RngCore + CryptoRng>(
    password: Zeroizing<String>,
    cfg: PasswordConfig,
    rng: &mut R,
) -> Result<String> {
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    argon2_blocking(move || {
        let mut salt_rng = <rand::rngs::StdRng as rand::SeedableRng>::from_seed(seed);
        hash(&password, &cfg, &mut salt_rng)
    })
    .await?
}

/// [`verify`] on the blocking pool.
pub async fn verify_blocking(password: Zeroizing<String>, phc: String) -> Result<bool> {
    argon2_blocking(move || verify(&password, &phc)).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn policy_refuses_short_common_and_name_containing_passwords() {
        let cfg = PasswordConfig::default();
        assert_eq!(
            problem(&cfg, "alice", "short"),
            Some(PasswordProblem::TooShort { min: 15 })
        );
        assert_eq!(
            problem(&cfg, "alice", "fourteen-chars"),
            Some(PasswordProblem::TooShort { min: 15 })
        );
        assert_eq!(problem(&cfg, "alice", "fifteen-chars-x"), None);
        let e = check_policy(&cfg, "alice", "Password1234").unwrap_err();
        assert!(e.to_string().contains("at least 15"), "{e}");
        let long_common = PasswordConfig {
            min_length: 8,
            ..PasswordConfig::default()
        };
        let e = check_policy(&long_common, "alice", "Password1234").unwrap_err();
        assert!(e.to_string().contains("common"), "{e}");
        assert!(matches!(
            check_policy(&cfg, "alice", "my-name-is-ALICE-really").unwrap_err(),
            Error::WeakPassword(PasswordProblem::ContainsUserName)
        ));
        assert!(check_policy(&cfg, "alice", "alice-is-my-name")
            .unwrap_err()
            .to_string()
            .contains("user name"));
        // A name of one or two letters is no reason to refuse a passphrase.
        assert_eq!(problem(&cfg, "al", "correct horse staple"), None);
        assert!(check_policy(&cfg, "alice", &"x".repeat(MAX_LEN + 1)).is_err());
        assert!(check_policy(&cfg, "alice", "correct horse staple").is_ok());
        // Length counts characters, not bytes.
        let cfg8 = PasswordConfig {
            min_length: 8,
            ..PasswordConfig::default()
        };
        assert!(check_policy(&cfg8, "bob", "ééééééé").is_err());
        assert!(check_policy(&cfg8, "bob", "éééééééé").is_ok());
        assert!(check_policy(&cfg8, "bob", "PASSWORD").is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_limiter_never_runs_more_than_its_bound_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let limiter = HashLimiter::new(3);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..24)
            .map(|i| {
                let (limiter, running, most) = (limiter.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    limiter
                        .run(move || {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(20));
                            running.fetch_sub(1, Ordering::SeqCst);
                            i
                        })
                        .await
                })
            })
            .collect();
        let mut done = Vec::new();
        for t in tasks {
            done.push(t.await.unwrap().unwrap());
        }
        done.sort_unstable();
        assert_eq!(done, (0..24).collect::<Vec<_>>(), "every computation ran");
        let most = most.load(Ordering::SeqCst);
        assert!(most <= 3, "{most} ran at once");
        assert!(most >= 2, "the computations did run concurrently ({most})");
    }

    #[tokio::test]
    async fn a_waiting_caller_that_gives_up_leaves_the_permits_intact() {
        let limiter = HashLimiter::new(1);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let busy = tokio::spawn({
            let limiter = limiter.clone();
            async move { limiter.run(move || rx.recv().is_ok()).await }
        });
        while limiter.permits.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        // A second caller times out while the first holds the only permit...
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(50), limiter.run(|| ())).await;
        assert!(waited.is_err());
        // ... and the permit comes back when the first finishes.
        tx.send(()).unwrap();
        assert!(busy.await.unwrap().unwrap());
        assert_eq!(limiter.run(|| 7).await.unwrap(), 7);
    }

    #[test]
    fn default_hash_is_argon2id_with_the_owasp_parameters() {
        let phc = hash(
            "a long enough password",
            &PasswordConfig::default(),
            &mut OsRng,
        )
        .unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify("a long enough password", &phc));
        assert!(!verify("a long enough passworD", &phc));
        assert!(!verify("x", "not a phc string"));
    }
}

//! Password policy (NIST SP 800-63B section 5.1.1.2) and Argon2id hashing as PHC strings.
//!
//! Hashing is deliberately slow (~50 ms at the defaults), so it runs on tokio's blocking pool,
//! never on the threads that serve requests.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::{CryptoRng, RngCore};
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

/// Checks a new password against the policy; the error says what to change.
pub fn check_policy(cfg: &PasswordConfig, user: &str, password: &str) -> Result<()> {
    let len = password.chars().count();
    if len < cfg.min_length {
        return Err(Error::WeakPassword(format!(
            "the password must have at least {} characters",
            cfg.min_length
        )));
    }
    if len > MAX_LEN {
        return Err(Error::WeakPassword(format!(
            "the password must have at most {MAX_LEN} characters"
        )));
    }
    if is_common(password) {
        return Err(Error::WeakPassword(
            "this password is among the most common breached passwords: choose another".into(),
        ));
    }
    if password.to_lowercase().contains(&user.to_lowercase()) && !user.is_empty() {
        return Err(Error::WeakPassword(
            "the password must not contain the user name".into(),
        ));
    }
    Ok(())
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

/// [`hash`] on the blocking pool. The salt is drawn from `rng` before leaving the caller.
pub async fn hash_blocking<R: RngCore + CryptoRng>(
    password: Zeroizing<String>,
    cfg: PasswordConfig,
    rng: &mut R,
) -> Result<String> {
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    tokio::task::spawn_blocking(move || {
        let mut salt_rng = <rand::rngs::StdRng as rand::SeedableRng>::from_seed(seed);
        hash(&password, &cfg, &mut salt_rng)
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?
}

/// [`verify`] on the blocking pool.
pub async fn verify_blocking(password: Zeroizing<String>, phc: String) -> Result<bool> {
    tokio::task::spawn_blocking(move || verify(&password, &phc))
        .await
        .map_err(|e| Error::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn policy_refuses_short_common_and_name_containing_passwords() {
        let cfg = PasswordConfig::default();
        assert!(check_policy(&cfg, "alice", "short").is_err());
        let e = check_policy(&cfg, "alice", "Password1234").unwrap_err();
        assert!(e.to_string().contains("common"), "{e}");
        assert!(check_policy(&cfg, "alice", "alice-is-my-name").is_err());
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

//! Session credentials kept between runs, sealed under the vault's key.
//!
//! The file sits next to the vault (`VAULT.aws`, mode 0600) and holds one JSON map from a
//! session's identity (profile, device, role, duration) to its credentials, sealed with
//! XChaCha20-Poly1305 under a key derived from the vault's data key (HMAC-SHA-256 with a fixed
//! label, so the cache never uses the vault's key itself). Whoever can open the vault can read
//! it (the unlock agent's key does, without a password prompt); nobody else can.
//!
//! A cache is only a cache: a file that cannot be opened (another vault's, damaged, from a newer
//! mamori) is treated as empty and replaced at the next write; the worst case is one more MFA
//! code.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand_core::{CryptoRng, RngCore};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::sts::SessionCredentials;
use crate::AwsError;

/// Credentials are used until this many seconds before they expire, then renewed: a command
/// started with them should not see them expire under it.
pub const RENEW_BEFORE_SECS: i64 = 300;

const MAGIC: &[u8; 10] = b"MAMORIAWS1";
const NONCE_LEN: usize = 24;
const KEY_LABEL: &[u8] = b"mamori aws session cache v1";
/// A cache larger than this is not read (a handful of sessions is a few kilobytes).
pub const MAX_CACHE_BYTES: u64 = 1024 * 1024;

/// The cache file of one vault.
pub struct Cache {
    path: PathBuf,
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The cache's file for `vault`: `VAULT.aws`.
pub fn path_for(vault: &Path) -> PathBuf {
    let mut p = vault.as_os_str().to_owned();
    p.push(".aws");
    PathBuf::from(p)
}

/// The identity of a session: a different profile, device, role or duration is another entry.
pub fn session_key(profile: &str, serial: &str, role_arn: Option<&str>, duration: u32) -> String {
    format!(
        "{profile}\n{serial}\n{}\n{duration}",
        role_arn.unwrap_or("")
    )
}

type Entries = BTreeMap<String, SessionCredentials>;

impl Cache {
    /// The cache next to `vault`, sealed under a key derived from the vault's `data_key`.
    pub fn new(vault: &Path, data_key: &[u8; 32]) -> Cache {
        // HMAC accepts keys of any length; a 32-byte key cannot fail.
        let mut key = Zeroizing::new([0u8; 32]);
        if let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(data_key) {
            mac.update(KEY_LABEL);
            key.copy_from_slice(&mac.finalize().into_bytes());
        }
        Cache {
            path: path_for(vault),
            key,
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cached credentials for `session`, if they are good for more than
    /// [`RENEW_BEFORE_SECS`] after `now`.
    pub fn get(&self, session: &str, now: i64) -> Option<SessionCredentials> {
        self.read()
            .remove(session)
            .filter(|c| c.expiration - RENEW_BEFORE_SECS > now)
    }

    /// Stores `creds` for `session`, dropping entries that have expired by `now`.
    pub fn put<R: RngCore + CryptoRng>(
        &self,
        session: &str,
        creds: &SessionCredentials,
        now: i64,
        rng: &mut R,
    ) -> Result<(), AwsError> {
        let mut entries = self.read();
        entries.retain(|_, c| c.expiration > now);
        entries.insert(session.to_string(), creds.clone());
        let plain = Zeroizing::new(serde_json::to_vec(&entries).map_err(|e| self.err(e))?);
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let cipher = XChaCha20Poly1305::new(self.key.as_ref().into());
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: MAGIC,
                },
            )
            .map_err(|_| self.err("encryption failed"))?;
        let mut bytes = Vec::with_capacity(MAGIC.len() + NONCE_LEN + sealed.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        mamori_vault::atomic_write(&self.path, &bytes, 0o600).map_err(|e| self.err(e))
    }

    /// Removes the cache file (nothing to do when there is none).
    pub fn clear(&self) -> Result<(), AwsError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.err(e)),
        }
    }

    fn err(&self, e: impl std::fmt::Display) -> AwsError {
        AwsError::Cache {
            path: self.path.display().to_string(),
            detail: e.to_string(),
        }
    }

    /// Everything the file holds, or nothing if it cannot be read or opened (see the module
    /// documentation for why that is not an error).
    fn read(&self) -> Entries {
        let mut bytes = Vec::new();
        let read = std::fs::File::open(&self.path)
            .and_then(|f| f.take(MAX_CACHE_BYTES + 1).read_to_end(&mut bytes));
        if read.is_err() || bytes.len() as u64 > MAX_CACHE_BYTES {
            return Entries::new();
        }
        let Some(rest) = bytes.strip_prefix(MAGIC.as_slice()) else {
            return Entries::new();
        };
        if rest.len() < NONCE_LEN {
            return Entries::new();
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let cipher = XChaCha20Poly1305::new(self.key.as_ref().into());
        let Ok(plain) = cipher.decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: MAGIC,
            },
        ) else {
            return Entries::new();
        };
        let plain = Zeroizing::new(plain);
        serde_json::from_slice(&plain).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(exp: i64) -> SessionCredentials {
        SessionCredentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: Zeroizing::new("very secret key".into()),
            session_token: Zeroizing::new("session token".into()),
            expiration: exp,
        }
    }

    #[test]
    fn used_until_five_minutes_before_expiry() -> Result<(), AwsError> {
        let dir = tempfile::tempdir().map_err(|e| AwsError::Runtime(e.to_string()))?;
        let vault = dir.path().join("v.mamori");
        let cache = Cache::new(&vault, &[7; 32]);
        assert_eq!(cache.path(), dir.path().join("v.mamori.aws"));
        let k = session_key("work", "arn:aws:iam::1:mfa/a", None, 3600);
        assert!(cache.get(&k, 1000).is_none());
        cache.put(&k, &creds(10_000), 1000, &mut rand_core::OsRng)?;
        assert_eq!(
            cache.get(&k, 1000).map(|c| c.access_key_id),
            Some("ASIAEXAMPLE".into())
        );
        assert!(cache.get(&k, 10_000 - 301).is_some());
        assert!(cache.get(&k, 10_000 - 300).is_none());
        // Another identity is another entry.
        assert!(cache
            .get(
                &session_key("work", "arn:aws:iam::1:mfa/a", None, 7200),
                1000
            )
            .is_none());
        Ok(())
    }

    #[test]
    fn sealed_under_the_vault_key_and_private() -> Result<(), AwsError> {
        let dir = tempfile::tempdir().map_err(|e| AwsError::Runtime(e.to_string()))?;
        let vault = dir.path().join("v.mamori");
        let cache = Cache::new(&vault, &[7; 32]);
        cache.put("s", &creds(10_000), 0, &mut rand_core::OsRng)?;
        let bytes = std::fs::read(cache.path()).map_err(|e| AwsError::Runtime(e.to_string()))?;
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("very secret key") && !text.contains("ASIAEXAMPLE"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(cache.path())
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0);
        assert_eq!(mode, 0o600);
        // Another vault's key opens nothing; a damaged file is an empty cache, replaced on write.
        assert!(Cache::new(&vault, &[8; 32]).get("s", 0).is_none());
        let mut damaged = bytes.clone();
        if let Some(b) = damaged.last_mut() {
            *b ^= 1;
        }
        std::fs::write(cache.path(), &damaged).map_err(|e| AwsError::Runtime(e.to_string()))?;
        assert!(cache.get("s", 0).is_none());
        cache.put("t", &creds(10_000), 0, &mut rand_core::OsRng)?;
        assert!(cache.get("t", 0).is_some());
        Ok(())
    }

    #[test]
    fn expired_entries_are_dropped_on_write() -> Result<(), AwsError> {
        let dir = tempfile::tempdir().map_err(|e| AwsError::Runtime(e.to_string()))?;
        let cache = Cache::new(&dir.path().join("v"), &[1; 32]);
        cache.put("old", &creds(100), 0, &mut rand_core::OsRng)?;
        cache.put("new", &creds(10_000), 200, &mut rand_core::OsRng)?;
        assert_eq!(cache.read().len(), 1);
        cache.clear()?;
        assert!(!cache.path().exists());
        cache.clear()
    }
}

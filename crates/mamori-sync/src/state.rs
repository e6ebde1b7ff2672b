//! The local sync state: `VAULT.sync` next to the vault file, mode 0600, encrypted with a key
//! derived from the vault's data key (so it opens exactly when the vault does).
//!
//! Layout: `"MSYS" ‖ version u8 ‖ nonce [24] ‖ XChaCha20-Poly1305(JSON)` with the first five
//! bytes as associated data. Written atomically (temporary file, fsync, rename, directory fsync).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use data_encoding::HEXLOWER;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::crypto::{self, SyncKey};
use crate::merge::Stamp;
use crate::SyncError;

const MAGIC: &[u8; 4] = b"MSYS";
const VERSION: u8 = 1;

/// What this device knows about one item as the server last had it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Known {
    /// Server revision.
    pub revision: i64,
    /// SHA-256 of that revision's ciphertext, hex.
    pub ciphertext: String,
    /// Stamp of its content.
    pub time: u64,
    /// Device of its stamp.
    pub device: Uuid,
    /// Its HOTP counter.
    pub counter: u64,
    /// [`crate::merge::content_digest`] of its entry, hex (empty for a tombstone).
    pub content: String,
    /// Whether it is a tombstone.
    pub deleted: bool,
}

impl Known {
    /// The stamp.
    pub fn stamp(&self) -> Stamp {
        Stamp {
            time: self.time,
            device: self.device,
        }
    }
}

/// The state of sync for one vault on this device.
#[derive(Clone, Serialize, Deserialize)]
pub struct State {
    /// Server base URL (`https://host[:port]` or `http://host:port`).
    pub server: String,
    /// User name on the server.
    pub user: String,
    /// Account id on the server (bound into items' associated data).
    pub account_id: String,
    /// This device's id.
    pub device_id: Uuid,
    /// This device's name.
    pub device_name: String,
    /// The device token (bearer).
    pub token: Zeroizing<String>,
    /// The sync key, hex.
    sync_key: Zeroizing<String>,
    /// Version of the key wraps last seen.
    pub keys_version: i64,
    /// Pull cursor.
    pub cursor: i64,
    /// Sync after every change of the vault.
    pub auto_sync: bool,
    /// Unix time of the last successful sync.
    pub last_sync: Option<u64>,
    /// Items as last synced.
    pub known: BTreeMap<Uuid, Known>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("server", &self.server)
            .field("user", &self.user)
            .field("device_id", &self.device_id)
            .field("cursor", &self.cursor)
            .field("items", &self.known.len())
            .finish_non_exhaustive()
    }
}

/// Who this device is on which server: what registering a device gave.
pub struct Registered {
    /// Server base URL.
    pub server: String,
    /// The user name.
    pub user: String,
    /// Account id on the server.
    pub account_id: String,
    /// This device's id.
    pub device_id: Uuid,
    /// This device's name.
    pub device_name: String,
    /// The device token (bearer).
    pub token: Zeroizing<String>,
}

impl State {
    /// A fresh state after registering a device: nothing synced yet, `key` at wrap version
    /// `keys_version`.
    pub fn new(device: Registered, key: &SyncKey, keys_version: i64) -> State {
        let Registered {
            server,
            user,
            account_id,
            device_id,
            device_name,
            token,
        } = device;
        State {
            server,
            user,
            account_id,
            device_id,
            device_name,
            token,
            sync_key: Zeroizing::new(HEXLOWER.encode(key.as_bytes())),
            keys_version,
            cursor: 0,
            auto_sync: true,
            last_sync: None,
            known: BTreeMap::new(),
        }
    }

    /// The sync key.
    pub fn sync_key(&self) -> Result<SyncKey, SyncError> {
        let bytes = Zeroizing::new(
            HEXLOWER
                .decode(self.sync_key.as_bytes())
                .map_err(|_| SyncError::Protocol("stored sync key is not hex".into()))?,
        );
        let mut k = [0u8; 32];
        if bytes.len() != 32 {
            return Err(SyncError::Protocol(
                "stored sync key has the wrong length".into(),
            ));
        }
        k.copy_from_slice(&bytes);
        let key = SyncKey::from_bytes(k);
        zeroize::Zeroize::zeroize(&mut k);
        Ok(key)
    }
}

/// `VAULT.sync` for a vault path.
pub fn state_path(vault: &Path) -> PathBuf {
    let mut s = vault.as_os_str().to_os_string();
    s.push(".sync");
    PathBuf::from(s)
}

/// Reads the state; `Ok(None)` when sync was never set up for this vault.
pub fn load(path: &Path, vault_key: &[u8; 32]) -> Result<Option<State>, SyncError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(SyncError::State {
                path: path.display().to_string(),
                reason: e.to_string(),
            })
        }
    };
    let err = |reason: &str| SyncError::State {
        path: path.display().to_string(),
        reason: reason.into(),
    };
    let head = bytes.get(..5).ok_or_else(|| err("truncated"))?;
    if head.get(..4) != Some(MAGIC.as_slice()) || head.get(4) != Some(&VERSION) {
        return Err(err("not a mamori sync state file (or an unknown version)"));
    }
    let key = crypto::local_state_key(vault_key);
    let pt = crypto::open_raw(&key, head, bytes.get(5..).unwrap_or_default())
        .ok_or_else(|| err("authentication failed (damaged, or made for another vault)"))?;
    serde_json::from_slice(&pt)
        .map(Some)
        .map_err(|_| err("malformed contents"))
}

/// Writes the state atomically with mode 0600 ([`mamori_vault::atomic_write`], as the vault
/// file): a failure, including one to make the rename durable, is an error, so a sync round
/// reports success only once its state would survive a crash.
pub fn save<R: RngCore + CryptoRng>(
    path: &Path,
    vault_key: &[u8; 32],
    state: &State,
    rng: &mut R,
) -> Result<(), SyncError> {
    let json =
        Zeroizing::new(serde_json::to_vec(state).map_err(|e| SyncError::Protocol(e.to_string()))?);
    let mut file = MAGIC.to_vec();
    file.push(VERSION);
    let key = crypto::local_state_key(vault_key);
    let ct = crypto::seal_raw(&key, &file, &json, rng)?;
    file.extend_from_slice(&ct);
    mamori_vault::atomic_write(path, &file, 0o600)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn registered(device: &str) -> Registered {
        Registered {
            server: "http://x".into(),
            user: "alice".into(),
            account_id: "acct".into(),
            device_id: Uuid::from_u128(5),
            device_name: device.into(),
            token: Zeroizing::new("tok".into()),
        }
    }

    #[test]
    fn save_load_round_trip_mode_and_wrong_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.mamori.sync");
        let mut rng = rand::thread_rng();
        let key = SyncKey::generate(&mut rng);
        let s = State::new(registered("laptop"), &key, 1);
        let vk = [7u8; 32];
        assert!(load(&path, &vk).unwrap().is_none());
        save(&path, &vk, &s, &mut rng).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back = load(&path, &vk).unwrap().unwrap();
        assert_eq!(back.sync_key().unwrap(), key);
        assert_eq!(back.device_id, s.device_id);
        assert!(matches!(
            load(&path, &[8u8; 32]),
            Err(SyncError::State { .. })
        ));
        let raw = fs::read(&path).unwrap();
        assert!(!raw.windows(3).any(|w| w == b"tok"));
    }

    #[test]
    fn a_failed_save_is_an_error_and_keeps_the_old_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.mamori.sync");
        let mut rng = rand::thread_rng();
        let key = SyncKey::generate(&mut rng);
        let state = |device: &str| State::new(registered(device), &key, 1);
        let vk = [7u8; 32];
        save(&path, &vk, &state("old"), &mut rng).unwrap();
        // The temporary file's name taken by a directory: creating it fails even for root.
        let mut tmp = path.as_os_str().to_os_string();
        tmp.push(format!(".tmp.{}", std::process::id()));
        fs::create_dir(&tmp).unwrap();
        let err = save(&path, &vk, &state("new"), &mut rng).unwrap_err();
        assert!(matches!(err, SyncError::Vault(_)), "{err}");
        assert_eq!(load(&path, &vk).unwrap().unwrap().device_name, "old");

        // A parent that is a file is reported, not swallowed.
        let err = save(&path.join("x.sync"), &vk, &state("new"), &mut rng).unwrap_err();
        assert!(err.to_string().contains("v.mamori.sync"), "{err}");
    }
}

//! The server key: a 256-bit key kept in a file outside the database (mode 0600), created on
//! first start, that encrypts OTP secrets at rest with XChaCha20-Poly1305.
//!
//! Each ciphertext is bound to the row it belongs to through the associated data (the device's
//! id), so a secret copied into another row does not decrypt. A stolen database without the key
//! file reveals no secret.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::{CryptoRng, RngCore};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

/// Name of the key file inside the data directory.
pub const KEY_FILE: &str = "server.key";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
/// Format version byte in front of every ciphertext, so the scheme can change later.
const VERSION: u8 = 1;

/// The server key. Not `Clone`, not printable.
pub struct ServerKey {
    key: Zeroizing<[u8; KEY_LEN]>,
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKey([redacted])")
    }
}

impl ServerKey {
    /// A key from raw bytes (tests).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        ServerKey {
            key: Zeroizing::new(bytes),
        }
    }

    /// A fresh random key.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut k = [0u8; KEY_LEN];
        rng.fill_bytes(&mut k);
        let key = ServerKey::from_bytes(k);
        k.zeroize();
        key
    }

    /// Loads `DIR/server.key`, creating it (mode 0600, exclusively) if it does not exist.
    /// Returns the key and whether it was created.
    pub fn load_or_create<R: RngCore + CryptoRng>(dir: &Path, rng: &mut R) -> Result<(Self, bool)> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Key(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join(KEY_FILE);
        let key = ServerKey::generate(rng);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(mut f) => {
                f.write_all(key.key.as_slice())
                    .and_then(|_| f.sync_all())
                    .map_err(|e| Error::Key(format!("cannot write {}: {e}", path.display())))?;
                Ok((key, true))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Ok((ServerKey::load(&path)?, false))
            }
            Err(e) => Err(Error::Key(format!("cannot create {}: {e}", path.display()))),
        }
    }

    /// Loads an existing key file, refusing one that others can read.
    pub fn load(path: &Path) -> Result<Self> {
        let mut f = std::fs::File::open(path)
            .map_err(|e| Error::Key(format!("cannot open {}: {e}", path.display())))?;
        let meta = f
            .metadata()
            .map_err(|e| Error::Key(format!("cannot stat {}: {e}", path.display())))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(Error::Key(format!(
                "{} is readable by others: chmod 600 it",
                path.display()
            )));
        }
        let mut buf = Zeroizing::new(Vec::with_capacity(KEY_LEN));
        f.read_to_end(&mut buf)
            .map_err(|e| Error::Key(format!("cannot read {}: {e}", path.display())))?;
        let bytes: [u8; KEY_LEN] = buf.as_slice().try_into().map_err(|_| {
            Error::Key(format!(
                "{} must hold exactly {KEY_LEN} bytes",
                path.display()
            ))
        })?;
        Ok(ServerKey::from_bytes(bytes))
    }

    /// Writes the key to a new file `path` (mode 0600, exclusively: an existing file is never
    /// overwritten), for a backup of the key next to a backup of the database.
    pub fn write_new(&self, path: &Path) -> Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => Error::Conflict(format!(
                    "{} already exists: choose a new file name",
                    path.display()
                )),
                _ => Error::Key(format!("cannot create {}: {e}", path.display())),
            })?;
        f.write_all(self.key.as_slice())
            .and_then(|_| f.sync_all())
            .map_err(|e| Error::Key(format!("cannot write {}: {e}", path.display())))
    }

    /// Whether two keys are the same (compared in constant time: they are secrets).
    pub fn same_as(&self, other: &ServerKey) -> bool {
        let mut diff = 0u8;
        for (a, b) in self.key.iter().zip(other.key.iter()) {
            diff |= a ^ b;
        }
        diff == 0
    }

    /// The key file path for a data directory.
    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join(KEY_FILE)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.key.as_slice().into())
    }

    /// Encrypts `plaintext` bound to `identity` (the associated data). Output:
    /// `version(1) || nonce(24) || ciphertext+tag`.
    pub fn seal<R: RngCore + CryptoRng>(
        &self,
        rng: &mut R,
        identity: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let ct = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad(identity),
                },
            )
            .map_err(|_| Error::Internal("encryption failed".into()))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// A 256-bit key derived for one purpose (`label`), HMAC-SHA256 keyed with the server key
    /// (RFC 2104 as a PRF): the server key itself is only ever an XChaCha20-Poly1305 key, and
    /// keys derived for different labels are independent. Used for the OpenID provider's
    /// opaque subject identifiers (#17).
    pub fn derive(&self, label: &[u8]) -> Zeroizing<[u8; 32]> {
        use hmac::{Hmac, Mac};
        let mut out = Zeroizing::new([0u8; 32]);
        // HMAC accepts a key of any length, so new_from_slice cannot fail on 32 bytes.
        if let Ok(mut mac) = <Hmac<sha2::Sha256> as Mac>::new_from_slice(self.key.as_slice()) {
            mac.update(b"mamori/derive/v1/");
            mac.update(label);
            out.copy_from_slice(&mac.finalize().into_bytes());
        }
        out
    }

    /// Decrypts what [`ServerKey::seal`] produced for the same `identity`.
    pub fn open(&self, identity: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let (version, rest) = sealed
            .split_first()
            .ok_or_else(|| Error::Key("empty ciphertext".into()))?;
        if *version != VERSION || rest.len() < NONCE_LEN {
            return Err(Error::Key("unknown ciphertext format".into()));
        }
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        self.cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: &aad(identity),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| {
                Error::Key(
                    "a stored secret does not decrypt: wrong server key file, or the row was tampered with"
                        .into(),
                )
            })
    }
}

/// Domain-separated associated data.
fn aad(identity: &[u8]) -> Vec<u8> {
    let mut v = b"mamori/secret/v1/".to_vec();
    v.extend_from_slice(identity);
    v
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn seal_open_round_trip_bound_to_identity() {
        let k = ServerKey::generate(&mut OsRng);
        let sealed = k.seal(&mut OsRng, b"device-1", b"secret bytes").unwrap();
        assert_eq!(
            k.open(b"device-1", &sealed).unwrap().as_slice(),
            b"secret bytes"
        );
        assert!(k.open(b"device-2", &sealed).is_err());
        let other = ServerKey::generate(&mut OsRng);
        assert!(other.open(b"device-1", &sealed).is_err());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(k.open(b"device-1", &tampered).is_err());
        assert!(!sealed.windows(12).any(|w| w == b"secret bytes"));
    }

    #[test]
    fn key_file_is_created_0600_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let (k1, created) = ServerKey::load_or_create(dir.path(), &mut OsRng).unwrap();
        assert!(created);
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (k2, created) = ServerKey::load_or_create(dir.path(), &mut OsRng).unwrap();
        assert!(!created);
        let sealed = k1.seal(&mut OsRng, b"x", b"y").unwrap();
        assert_eq!(k2.open(b"x", &sealed).unwrap().as_slice(), b"y");
        assert_eq!(format!("{k2:?}"), "ServerKey([redacted])");
    }

    #[test]
    fn world_readable_or_short_key_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(KEY_FILE);
        std::fs::write(&p, [0u8; 32]).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(ServerKey::load(&p)
            .unwrap_err()
            .to_string()
            .contains("chmod"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(ServerKey::load(&p).is_ok());
        std::fs::write(&p, [0u8; 31]).unwrap();
        assert!(ServerKey::load(&p).is_err());
    }
}

//! The vault on disk: reading, atomic replacement with a backup, and the write lock.
//!
//! Every change is a read-modify-write under an exclusive lock on `FILE.lock`, so two processes
//! adding at once both keep their entry. The file itself is never written in place but by
//! [`crate::atomic_write`]'s steps: a temporary file in the same directory (mode 0600) is written
//! and fsynced, the current file is hard-linked to `FILE.bak`, the temporary file is renamed over
//! `FILE`, and the directory is fsynced. At every instant `FILE` is a complete old or new vault.
//! Opening only reads.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::atomic::{atomic_write_with, parent_dir, sibling};
use crate::format::{self, DataKey, Header, KdfParams};
use crate::{Vault, VaultError};

/// How to unlock a vault: its password, or a data key held by the unlock agent.
pub enum Unlock {
    /// The password (runs Argon2id).
    Password(Zeroizing<String>),
    /// The data key itself.
    Key(DataKey),
}

impl std::fmt::Debug for Unlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unlock::Password(_) => f.write_str("Unlock::Password([redacted])"),
            Unlock::Key(_) => f.write_str("Unlock::Key([redacted])"),
        }
    }
}

/// A vault that was read and decrypted.
#[derive(Debug)]
pub struct Opened {
    /// The entries.
    pub vault: Vault,
    /// The header as read (KDF parameters, vault id).
    pub header: Header,
    /// The data key (to give to the unlock agent).
    pub key: DataKey,
}

/// Where a vault lives, and how long a writer waits for another's lock.
#[derive(Debug, Clone)]
pub struct VaultFile {
    path: PathBuf,
    lock_timeout: Duration,
}

/// Largest file read (header + [`format::MAX_PAYLOAD_LEN`]).
const MAX_FILE_LEN: u64 = format::HEADER_LEN as u64 + format::MAX_PAYLOAD_LEN;

impl VaultFile {
    /// A vault at `path`; writers wait up to 10 s for the lock.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        VaultFile {
            path: path.into(),
            lock_timeout: Duration::from_secs(10),
        }
    }

    /// Changes how long a writer waits for another process's lock.
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// The vault file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `FILE.bak`: the previous version, kept on every write.
    pub fn backup_path(&self) -> PathBuf {
        sibling(&self.path, ".bak")
    }

    /// `FILE.lock`: the write lock (holds the writer's pid).
    pub fn lock_path(&self) -> PathBuf {
        sibling(&self.path, ".lock")
    }

    /// Whether a file exists at the path.
    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    /// Creates a new vault protected by `password`. Fails if a file is already there.
    pub fn create<R: RngCore + CryptoRng>(
        &self,
        password: &[u8],
        kdf: KdfParams,
        rng: &mut R,
    ) -> Result<Opened, VaultError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| VaultError::io(dir, e))?;
        }
        let _lock = self.lock()?;
        if self.path.exists() {
            return Err(VaultError::AlreadyExists(self.path.clone()));
        }
        let key = DataKey::generate(rng);
        let header = format::wrap_key(&key, password, kdf, None, rng)?;
        let vault = Vault::new();
        let bytes = format::seal(&vault, &header, &key, rng)?;
        self.replace(&bytes)?;
        let header = Header::parse(&bytes, &self.path)?;
        Ok(Opened { vault, header, key })
    }

    /// Reads the file's bytes (bounded), mapping "not found" to its own error.
    pub fn read_bytes(&self) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let file = File::open(&self.path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => VaultError::NotFound(self.path.clone()),
            _ => VaultError::io(&self.path, e),
        })?;
        let mut buf = Zeroizing::new(Vec::new());
        file.take(MAX_FILE_LEN + 1)
            .read_to_end(&mut buf)
            .map_err(|e| VaultError::io(&self.path, e))?;
        if buf.len() as u64 > MAX_FILE_LEN {
            return Err(VaultError::Limit(format!(
                "{} is larger than {MAX_FILE_LEN} bytes",
                self.path.display()
            )));
        }
        Ok(buf)
    }

    /// Reads and checks only the header (cheap: no key derivation).
    pub fn header(&self) -> Result<Header, VaultError> {
        Header::parse(&self.read_bytes()?, &self.path)
    }

    /// Reads and decrypts the vault. Never writes anything.
    pub fn open(&self, unlock: &Unlock) -> Result<Opened, VaultError> {
        let bytes = self.read_bytes()?;
        self.decrypt(&bytes, unlock)
    }

    fn decrypt(&self, bytes: &[u8], unlock: &Unlock) -> Result<Opened, VaultError> {
        let header = Header::parse(bytes, &self.path)?;
        let key = match unlock {
            Unlock::Password(pw) => header.unwrap_key(pw.as_bytes(), &self.path)?,
            Unlock::Key(k) => k.clone(),
        };
        let vault = format::open(bytes, &header, &key, &self.path)?;
        Ok(Opened { vault, header, key })
    }

    /// Read-modify-write under the lock: opens the current file, lets `change` edit the vault,
    /// and writes the result atomically. If `change` fails nothing is written. The returned
    /// value is `change`'s, available only once the new file is durable.
    pub fn update<T, R: RngCore + CryptoRng>(
        &self,
        unlock: &Unlock,
        rng: &mut R,
        change: impl FnOnce(&mut Vault) -> Result<T, VaultError>,
    ) -> Result<(T, Opened), VaultError> {
        let _lock = self.lock()?;
        let mut opened = self.open(unlock)?;
        let out = change(&mut opened.vault)?;
        opened.vault.bump_revision();
        let bytes = format::seal(&opened.vault, &opened.header, &opened.key, rng)?;
        self.replace(&bytes)?;
        opened.header = Header::parse(&bytes, &self.path)?;
        Ok((out, opened))
    }

    /// Re-protects the vault with a new password (and optionally new KDF parameters). The data
    /// key, the vault id and the entries stay; the salt and key wrap are new.
    pub fn change_password<R: RngCore + CryptoRng>(
        &self,
        unlock: &Unlock,
        new_password: &[u8],
        kdf: Option<KdfParams>,
        rng: &mut R,
    ) -> Result<Opened, VaultError> {
        let _lock = self.lock()?;
        let mut opened = self.open(unlock)?;
        let kdf = kdf.unwrap_or(opened.header.kdf);
        let header = format::wrap_key(
            &opened.key,
            new_password,
            kdf,
            Some(opened.header.vault_id),
            rng,
        )?;
        opened.vault.bump_revision();
        let bytes = format::seal(&opened.vault, &header, &opened.key, rng)?;
        self.replace(&bytes)?;
        opened.header = Header::parse(&bytes, &self.path)?;
        Ok(opened)
    }

    /// Takes the write lock, waiting up to the timeout.
    pub fn lock(&self) -> Result<WriteLock, VaultError> {
        let path = self.lock_path();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| VaultError::io(&path, e))?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {
                    if start.elapsed() >= self.lock_timeout {
                        let mut s = String::new();
                        let holder = File::open(&path)
                            .and_then(|mut f| f.read_to_string(&mut s))
                            .ok()
                            .and_then(|_| s.trim().parse().ok());
                        return Err(VaultError::Locked { path, holder });
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(TryLockError::Error(e)) => return Err(VaultError::io(&path, e)),
            }
        }
        // Record who holds it, for the "locked by pid N" message of a waiting process.
        file.set_len(0).map_err(|e| VaultError::io(&path, e))?;
        file.write_all(std::process::id().to_string().as_bytes())
            .map_err(|e| VaultError::io(&path, e))?;
        Ok(WriteLock { _file: file })
    }

    /// Replaces the file atomically, keeping the previous one as `FILE.bak`. Caller holds the lock.
    fn replace(&self, bytes: &[u8]) -> Result<(), VaultError> {
        self.remove_stale_temporaries(&parent_dir(&self.path));
        // The backup is taken only once the new file is complete, so a write that fails
        // before leaves `FILE.bak` as it was.
        atomic_write_with(&self.path, bytes, 0o600, || {
            if self.path.exists() {
                self.keep_backup()?;
            }
            Ok(())
        })
    }

    /// Removes `FILE.tmp.*` and `FILE.bak.tmp.*` left by a writer that died mid-write. Only
    /// called under the write lock, so no live writer owns them. Best effort.
    fn remove_stale_temporaries(&self, dir: &Path) {
        let Some(name) = self.path.file_name().and_then(|n| n.to_str()) else {
            return;
        };
        let (tmp, bak_tmp) = (format!("{name}.tmp."), format!("{name}.bak.tmp."));
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let file = entry.file_name();
            let Some(file) = file.to_str() else { continue };
            if file.starts_with(&tmp) || file.starts_with(&bak_tmp) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// Points `FILE.bak` at the current file: a hard link (no copy, and atomic via a rename), or
    /// a copy where the file system has no hard links.
    fn keep_backup(&self) -> Result<(), VaultError> {
        let bak = self.backup_path();
        let bak_tmp = sibling(&self.path, &format!(".bak.tmp.{}", std::process::id()));
        let _ = fs::remove_file(&bak_tmp);
        if fs::hard_link(&self.path, &bak_tmp).is_err() {
            fs::copy(&self.path, &bak_tmp).map_err(|e| VaultError::io(&bak_tmp, e))?;
            File::open(&bak_tmp)
                .and_then(|f| f.sync_all())
                .map_err(|e| VaultError::io(&bak_tmp, e))?;
        }
        fs::rename(&bak_tmp, &bak).map_err(|e| VaultError::io(&bak, e))
    }
}

/// Held while writing; the lock is released when dropped (and by the OS if the process dies).
#[derive(Debug)]
pub struct WriteLock {
    _file: File,
}

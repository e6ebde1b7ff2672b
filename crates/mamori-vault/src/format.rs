//! The vault file format, version 1 (docs/vault-format.md is the specification; keep them in
//! step). Pure functions from bytes to bytes: no files, no clock; randomness comes from the caller.
//!
//! ```text
//! offset size field
//!      0    8 magic "MAMORIVF"
//!      8    2 format version, u16 little-endian (1)
//!     10    1 KDF id (1 = Argon2id, version 0x13)
//!     11    4 Argon2 memory in KiB, u32 LE
//!     15    4 Argon2 passes (t), u32 LE
//!     19    4 Argon2 lanes (p), u32 LE
//!     23   16 salt
//!     39   16 vault id
//!     55   24 key-wrap nonce
//!     79   48 wrapped data key: XChaCha20-Poly1305(KEK, nonce, data key, AD = bytes 0..55)
//!    127   24 payload nonce
//!    151    8 payload ciphertext length N, u64 LE (includes the 16-byte tag)
//!    159   32 header checksum: SHA-256(bytes 0..159)
//!    191    N payload: XChaCha20-Poly1305(data key, payload nonce, JSON, AD = bytes 0..191)
//! ```

use std::fmt;
use std::path::Path;

use argon2::{Argon2, Params as ArgonParams, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::{Vault, VaultError};

/// The first eight bytes of every vault file.
pub const MAGIC: &[u8; 8] = b"MAMORIVF";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// KDF id 1: Argon2id, version 0x13 (RFC 9106).
pub const KDF_ARGON2ID: u8 = 1;
/// Length of the fixed header, including the checksum.
pub const HEADER_LEN: usize = 191;
/// Bytes covered by the header checksum.
const CHECKED_LEN: usize = 159;
/// Bytes that the key wrap authenticates.
const WRAP_AD_LEN: usize = 55;
const TAG_LEN: usize = 16;
/// Largest payload ciphertext accepted (a limit against hand-made files).
pub const MAX_PAYLOAD_LEN: u64 = 64 * 1024 * 1024;

/// Argon2id cost parameters, stored in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory (t).
    pub iterations: u32,
    /// Lanes (p).
    pub parallelism: u32,
}

impl Default for KdfParams {
    /// m = 64 MiB, t = 3, p = 1: the design's vault default (RFC 9106 section 4's second
    /// recommended option with t raised from 3 to match; about 0.3 s on a 2020s server core).
    fn default() -> Self {
        KdfParams {
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 1,
        }
    }
}

impl KdfParams {
    /// Smallest memory accepted for real use is Argon2's own minimum (8 KiB per lane); anything
    /// lower than the default is for tests and must be asked for explicitly.
    pub const INSECURE_TEST: KdfParams = KdfParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
    /// Upper limits: a hand-made header must not make opening take hours or all memory.
    pub const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
    /// Most passes accepted.
    pub const MAX_ITERATIONS: u32 = 64;
    /// Most lanes accepted.
    pub const MAX_PARALLELISM: u32 = 16;

    /// Checks the ranges.
    pub fn validated(self) -> Result<Self, VaultError> {
        let KdfParams {
            memory_kib: m,
            iterations: t,
            parallelism: p,
        } = self;
        if !(1..=Self::MAX_PARALLELISM).contains(&p) {
            return Err(VaultError::KdfParams(format!(
                "parallelism {p} is outside 1..={}",
                Self::MAX_PARALLELISM
            )));
        }
        if !(1..=Self::MAX_ITERATIONS).contains(&t) {
            return Err(VaultError::KdfParams(format!(
                "iterations {t} is outside 1..={}",
                Self::MAX_ITERATIONS
            )));
        }
        if m < 8 * p || m > Self::MAX_MEMORY_KIB {
            return Err(VaultError::KdfParams(format!(
                "memory {m} KiB is outside {}..={} KiB",
                8 * p,
                Self::MAX_MEMORY_KIB
            )));
        }
        Ok(self)
    }

    /// Derives the 32-byte key-encryption key from the password and salt.
    pub fn derive(
        &self,
        password: &[u8],
        salt: &[u8; 16],
    ) -> Result<Zeroizing<[u8; 32]>, VaultError> {
        let params = ArgonParams::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
            .map_err(|e| VaultError::KdfParams(e.to_string()))?;
        let argon = Argon2::new(argon2::Algorithm::Argon2id, Version::V0x13, params);
        let mut out = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(password, salt, out.as_mut())
            .map_err(|e| VaultError::KdfParams(e.to_string()))?;
        Ok(out)
    }
}

/// The random 256-bit key that encrypts the entries. Wiped on drop; never in `Debug`.
#[derive(Clone)]
pub struct DataKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey([redacted])")
    }
}

impl DataKey {
    /// A fresh key from the caller's CSPRNG.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(k.as_mut());
        DataKey(k)
    }

    /// Wraps raw key bytes (from the unlock agent).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        DataKey(Zeroizing::new(bytes))
    }

    /// The raw key (for handing to the unlock agent only).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for DataKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(other.0.as_ref()).into()
    }
}
impl Eq for DataKey {}

/// The parsed header of a vault file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Argon2id parameters.
    pub kdf: KdfParams,
    /// Argon2 salt.
    pub salt: [u8; 16],
    /// Random identity of the vault, kept across password changes (the agent and sync use it).
    pub vault_id: [u8; 16],
    wrap_nonce: [u8; 24],
    wrapped_key: [u8; 48],
    payload_nonce: [u8; 24],
    payload_len: u64,
}

impl Header {
    /// The vault id as 32 lower-case hex digits.
    pub fn vault_id_hex(&self) -> String {
        data_encoding::HEXLOWER.encode(&self.vault_id)
    }

    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let mut w = Writer {
            buf: &mut out,
            pos: 0,
        };
        w.put(MAGIC);
        w.put(&FORMAT_VERSION.to_le_bytes());
        w.put(&[KDF_ARGON2ID]);
        w.put(&self.kdf.memory_kib.to_le_bytes());
        w.put(&self.kdf.iterations.to_le_bytes());
        w.put(&self.kdf.parallelism.to_le_bytes());
        w.put(&self.salt);
        w.put(&self.vault_id);
        w.put(&self.wrap_nonce);
        w.put(&self.wrapped_key);
        w.put(&self.payload_nonce);
        w.put(&self.payload_len.to_le_bytes());
        let sum = Sha256::digest(w.buf.get(..CHECKED_LEN).unwrap_or_default());
        w.put(&sum);
        out
    }

    /// Parses the header at the start of `file`, checking magic, version, length and checksum,
    /// in that order, so each failure gets its own error.
    pub fn parse(file: &[u8], path: &Path) -> Result<Header, VaultError> {
        let mut r = Reader { buf: file, pos: 0 };
        let truncated = || VaultError::Truncated(path.to_path_buf());
        let magic: [u8; 8] = r.take().ok_or_else(|| {
            if MAGIC.starts_with(file) {
                truncated()
            } else {
                VaultError::NotAVault(path.to_path_buf())
            }
        })?;
        if &magic != MAGIC {
            return Err(VaultError::NotAVault(path.to_path_buf()));
        }
        let version = u16::from_le_bytes(r.take().ok_or_else(truncated)?);
        if version != FORMAT_VERSION {
            return Err(VaultError::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let head = file.get(..HEADER_LEN).ok_or_else(truncated)?;
        let (checked, sum) = head.split_at(CHECKED_LEN);
        if !bool::from(Sha256::digest(checked).as_slice().ct_eq(sum)) {
            return Err(VaultError::Tampered(path.to_path_buf()));
        }
        let [kdf_id]: [u8; 1] = r.take().ok_or_else(truncated)?;
        if kdf_id != KDF_ARGON2ID {
            return Err(VaultError::KdfParams(format!("unknown KDF id {kdf_id}")));
        }
        let kdf = KdfParams {
            memory_kib: u32::from_le_bytes(r.take().ok_or_else(truncated)?),
            iterations: u32::from_le_bytes(r.take().ok_or_else(truncated)?),
            parallelism: u32::from_le_bytes(r.take().ok_or_else(truncated)?),
        }
        .validated()?;
        let header = Header {
            kdf,
            salt: r.take().ok_or_else(truncated)?,
            vault_id: r.take().ok_or_else(truncated)?,
            wrap_nonce: r.take().ok_or_else(truncated)?,
            wrapped_key: r.take().ok_or_else(truncated)?,
            payload_nonce: r.take().ok_or_else(truncated)?,
            payload_len: u64::from_le_bytes(r.take().ok_or_else(truncated)?),
        };
        if header.payload_len > MAX_PAYLOAD_LEN || header.payload_len < TAG_LEN as u64 {
            return Err(VaultError::Tampered(path.to_path_buf()));
        }
        let total = HEADER_LEN as u64 + header.payload_len;
        match (file.len() as u64).cmp(&total) {
            std::cmp::Ordering::Less => Err(truncated()),
            std::cmp::Ordering::Greater => Err(VaultError::Tampered(path.to_path_buf())),
            std::cmp::Ordering::Equal => Ok(header),
        }
    }

    /// Recovers the data key with the password (runs Argon2id).
    pub fn unwrap_key(&self, password: &[u8], path: &Path) -> Result<DataKey, VaultError> {
        let kek = self.kdf.derive(password, &self.salt)?;
        let encoded = self.encode();
        let ad = encoded.get(..WRAP_AD_LEN).unwrap_or_default();
        let cipher = XChaCha20Poly1305::new(kek.as_ref().into());
        let plain = Zeroizing::new(
            cipher
                .decrypt(
                    XNonce::from_slice(&self.wrap_nonce),
                    Payload {
                        msg: &self.wrapped_key,
                        aad: ad,
                    },
                )
                .map_err(|_| VaultError::WrongPassword(path.to_path_buf()))?,
        );
        let bytes: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| VaultError::Tampered(path.to_path_buf()))?;
        Ok(DataKey::from_bytes(bytes))
    }
}

/// A fresh header for `key` protected by `password`: new salt and wrap nonce. The vault id is
/// kept when given (password change), else drawn from `rng`.
pub fn wrap_key<R: RngCore + CryptoRng>(
    key: &DataKey,
    password: &[u8],
    kdf: KdfParams,
    vault_id: Option<[u8; 16]>,
    rng: &mut R,
) -> Result<Header, VaultError> {
    let kdf = kdf.validated()?;
    let mut salt = [0u8; 16];
    rng.fill_bytes(&mut salt);
    let vault_id = vault_id.unwrap_or_else(|| {
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        id
    });
    let mut wrap_nonce = [0u8; 24];
    rng.fill_bytes(&mut wrap_nonce);
    let mut header = Header {
        kdf,
        salt,
        vault_id,
        wrap_nonce,
        wrapped_key: [0u8; 48],
        payload_nonce: [0u8; 24],
        payload_len: 0,
    };
    let kek = kdf.derive(password, &salt)?;
    let encoded = header.encode();
    let ad = encoded.get(..WRAP_AD_LEN).unwrap_or_default();
    let cipher = XChaCha20Poly1305::new(kek.as_ref().into());
    let wrapped = cipher
        .encrypt(
            XNonce::from_slice(&wrap_nonce),
            Payload {
                msg: key.as_bytes(),
                aad: ad,
            },
        )
        .map_err(|_| VaultError::Limit("key wrap failed".into()))?;
    header.wrapped_key = wrapped
        .as_slice()
        .try_into()
        .map_err(|_| VaultError::Limit("key wrap has the wrong length".into()))?;
    Ok(header)
}

/// Encrypts the vault under `key` with the (unchanged) key wrap of `header` and a fresh payload
/// nonce; returns the complete file.
pub fn seal<R: RngCore + CryptoRng>(
    vault: &Vault,
    header: &Header,
    key: &DataKey,
    rng: &mut R,
) -> Result<Vec<u8>, VaultError> {
    let plain = vault
        .to_payload()
        .map_err(|e| VaultError::Limit(format!("cannot serialize the vault: {e}")))?;
    let ct_len = plain.len() as u64 + TAG_LEN as u64;
    if ct_len > MAX_PAYLOAD_LEN {
        return Err(VaultError::Limit(format!(
            "the vault would exceed {MAX_PAYLOAD_LEN} bytes"
        )));
    }
    let mut header = header.clone();
    rng.fill_bytes(&mut header.payload_nonce);
    header.payload_len = ct_len;
    let head = header.encode();
    let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
    let ct = cipher
        .encrypt(
            XNonce::from_slice(&header.payload_nonce),
            Payload {
                msg: &plain,
                aad: &head,
            },
        )
        .map_err(|_| VaultError::Limit("encryption failed".into()))?;
    let mut out = Vec::with_capacity(HEADER_LEN + ct.len());
    out.extend_from_slice(&head);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Decrypts a whole vault file with its data key. `header` must come from [`Header::parse`] on
/// the same bytes.
pub fn open(file: &[u8], header: &Header, key: &DataKey, path: &Path) -> Result<Vault, VaultError> {
    let (head, ct) = file
        .split_at_checked(HEADER_LEN)
        .ok_or_else(|| VaultError::Truncated(path.to_path_buf()))?;
    let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
    let plain = Zeroizing::new(
        cipher
            .decrypt(
                XNonce::from_slice(&header.payload_nonce),
                Payload { msg: ct, aad: head },
            )
            .map_err(|_| VaultError::Tampered(path.to_path_buf()))?,
    );
    Vault::from_payload(&plain).map_err(|reason| VaultError::Payload {
        path: path.to_path_buf(),
        reason,
    })
}

struct Writer<'a> {
    buf: &'a mut [u8; HEADER_LEN],
    pos: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.pos + bytes.len();
        if let Some(dst) = self.buf.get_mut(self.pos..end) {
            dst.copy_from_slice(bytes);
        }
        self.pos = end;
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let bytes = self.buf.get(self.pos..self.pos + N)?;
        self.pos += N;
        bytes.try_into().ok()
    }
}

//! The key hierarchy and the byte layouts of docs/sync-protocol.md.
//!
//! ```text
//! passphrase ──Argon2id(salt, m, t, p)──▶ KEK_p ─┐
//! recovery key ──SHA-256(label‖salt‖key)──▶ KEK_r ─┼─ XChaCha20-Poly1305 wraps ─▶ sync key (256 bit, random)
//!                                                  │
//! sync key ──XChaCha20-Poly1305, AD = (account, item, revision, deleted)──▶ each item
//! ```
//!
//! Changing the passphrase rewraps only the sync key: items are not re-encrypted.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use data_encoding::{BASE32_NOPAD, BASE64URL_NOPAD};
use mamori_vault::KdfParams;
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::SyncError;

/// Magic bytes of a key wrap.
pub const WRAP_MAGIC: &[u8; 4] = b"MSYK";
/// Version of the key-wrap and item layouts.
pub const FORMAT_VERSION: u8 = 1;
/// Key-wrap kind: Argon2id of the passphrase.
pub const WRAP_PASSPHRASE: u8 = 1;
/// Key-wrap kind: the recovery key.
pub const WRAP_RECOVERY: u8 = 2;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Bytes before the nonce in a key wrap: magic, version, kind, m, t, p, salt.
const WRAP_HEADER_LEN: usize = 4 + 1 + 1 + 4 + 4 + 4 + 16;
/// Total length of a key wrap.
pub const WRAP_LEN: usize = WRAP_HEADER_LEN + NONCE_LEN + 32 + TAG_LEN;
/// Shortest passphrase accepted (it protects every secret against an offline attack on a
/// stolen server database; Argon2id slows that attack but cannot save a short passphrase).
pub const MIN_PASSPHRASE_LEN: usize = 12;
/// Random bytes in a recovery key (160 bits: far beyond guessing, short enough to write down).
pub const RECOVERY_KEY_BYTES: usize = 20;
const ITEM_AD_LABEL: &[u8] = b"mamori-sync item v1";
const RECOVERY_KEK_LABEL: &[u8] = b"mamori-sync recovery kek v1";
const RECOVERY_CHECK_LABEL: &[u8] = b"mamori-sync recovery check v1";

/// The random 256-bit key that encrypts every item. Wiped on drop; never in `Debug`.
#[derive(Clone)]
pub struct SyncKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for SyncKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SyncKey([redacted])")
    }
}

impl PartialEq for SyncKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(other.0.as_ref()).into()
    }
}
impl Eq for SyncKey {}

impl SyncKey {
    /// A fresh key from the caller's CSPRNG.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(k.as_mut());
        SyncKey(k)
    }

    /// From raw bytes (the local state file).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        SyncKey(Zeroizing::new(bytes))
    }

    /// The raw key (for the encrypted local state file only).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// The recovery key: 160 random bits shown once at setup as nine groups of four Base32
/// characters, the last group a checksum that catches typos.
#[derive(Clone)]
pub struct RecoveryKey(Zeroizing<[u8; RECOVERY_KEY_BYTES]>);

impl fmt::Debug for RecoveryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryKey([redacted])")
    }
}

impl RecoveryKey {
    /// A fresh recovery key.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut k = Zeroizing::new([0u8; RECOVERY_KEY_BYTES]);
        rng.fill_bytes(k.as_mut());
        RecoveryKey(k)
    }

    fn checksum(bytes: &[u8]) -> String {
        let d = Sha256::new()
            .chain_update(RECOVERY_CHECK_LABEL)
            .chain_update(bytes)
            .finalize();
        // 20 bits of the hash = four Base32 characters.
        let enc = BASE32_NOPAD.encode(d.get(..3).unwrap_or_default());
        enc.chars().take(4).collect()
    }

    /// `XXXX-XXXX-…` (8 groups of key, 1 group of checksum).
    pub fn display(&self) -> Zeroizing<String> {
        let mut s = Zeroizing::new(BASE32_NOPAD.encode(self.0.as_ref()));
        s.push_str(&Self::checksum(self.0.as_ref()));
        let mut out = Zeroizing::new(String::with_capacity(45));
        for (i, c) in s.chars().enumerate() {
            if i > 0 && i % 4 == 0 {
                out.push('-');
            }
            out.push(c);
        }
        out
    }

    /// Parses what a person typed: case, spaces and dashes do not matter; `0`/`1`/`8` are read
    /// as `O`/`I`/`B` (not in the Base32 alphabet, easily confused). A typo fails the checksum.
    pub fn parse(text: &str) -> Result<Self, SyncError> {
        let clean: Zeroizing<String> = Zeroizing::new(
            text.chars()
                .filter(|c| !c.is_whitespace() && *c != '-')
                .map(|c| match c.to_ascii_uppercase() {
                    '0' => 'O',
                    '1' => 'I',
                    '8' => 'B',
                    c => c,
                })
                .collect(),
        );
        if clean.len() != 36 {
            return Err(SyncError::RecoveryKey(format!(
                "a recovery key has 36 characters (9 groups of 4), this one has {}",
                clean.len()
            )));
        }
        let (key, check) = clean.split_at(32);
        let bytes = Zeroizing::new(BASE32_NOPAD.decode(key.as_bytes()).map_err(|_| {
            SyncError::RecoveryKey("the recovery key has characters outside A-Z and 2-7".into())
        })?);
        if Self::checksum(&bytes) != check {
            return Err(SyncError::RecoveryKey(
                "the recovery key has a typo (its last group does not match); check each group"
                    .into(),
            ));
        }
        let mut k = Zeroizing::new([0u8; RECOVERY_KEY_BYTES]);
        if bytes.len() != RECOVERY_KEY_BYTES {
            return Err(SyncError::RecoveryKey(
                "the recovery key has the wrong length".into(),
            ));
        }
        k.copy_from_slice(&bytes);
        Ok(RecoveryKey(k))
    }
}

fn aead(key: &[u8; 32]) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(key.into())
}

fn wrap_header(kind: u8, kdf: KdfParams, salt: &[u8; 16]) -> Vec<u8> {
    let mut h = Vec::with_capacity(WRAP_HEADER_LEN);
    h.extend_from_slice(WRAP_MAGIC);
    h.push(FORMAT_VERSION);
    h.push(kind);
    h.extend_from_slice(&kdf.memory_kib.to_be_bytes());
    h.extend_from_slice(&kdf.iterations.to_be_bytes());
    h.extend_from_slice(&kdf.parallelism.to_be_bytes());
    h.extend_from_slice(salt);
    h
}

fn wrap_ad(header: &[u8], account_id: &str) -> Vec<u8> {
    let mut ad = header.to_vec();
    ad.extend_from_slice(account_id.as_bytes());
    ad
}

fn recovery_kek(key: &RecoveryKey, salt: &[u8; 16]) -> Zeroizing<[u8; 32]> {
    let d = Sha256::new()
        .chain_update(RECOVERY_KEK_LABEL)
        .chain_update(salt)
        .chain_update(key.0.as_ref())
        .finalize();
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&d);
    out
}

fn seal_wrap<R: RngCore + CryptoRng>(
    sync_key: &SyncKey,
    kek: &[u8; 32],
    header: Vec<u8>,
    account_id: &str,
    rng: &mut R,
) -> Result<String, SyncError> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let ad = wrap_ad(&header, account_id);
    let ct = aead(kek)
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: sync_key.as_bytes(),
                aad: &ad,
            },
        )
        .map_err(|_| SyncError::Protocol("key wrap failed".into()))?;
    let mut out = header;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(BASE64URL_NOPAD.encode(&out))
}

/// Wraps the sync key under Argon2id(passphrase) with fresh salt and the given parameters.
pub fn wrap_with_passphrase<R: RngCore + CryptoRng>(
    sync_key: &SyncKey,
    passphrase: &str,
    kdf: KdfParams,
    account_id: &str,
    rng: &mut R,
) -> Result<String, SyncError> {
    let kdf = kdf.validated()?;
    let mut salt = [0u8; 16];
    rng.fill_bytes(&mut salt);
    let kek = kdf.derive(passphrase.as_bytes(), &salt)?;
    seal_wrap(
        sync_key,
        &kek,
        wrap_header(WRAP_PASSPHRASE, kdf, &salt),
        account_id,
        rng,
    )
}

/// Wraps the sync key under the recovery key.
pub fn wrap_with_recovery<R: RngCore + CryptoRng>(
    sync_key: &SyncKey,
    recovery: &RecoveryKey,
    account_id: &str,
    rng: &mut R,
) -> Result<String, SyncError> {
    let mut salt = [0u8; 16];
    rng.fill_bytes(&mut salt);
    let kek = recovery_kek(recovery, &salt);
    let none = KdfParams {
        memory_kib: 0,
        iterations: 0,
        parallelism: 0,
    };
    seal_wrap(
        sync_key,
        &kek,
        wrap_header(WRAP_RECOVERY, none, &salt),
        account_id,
        rng,
    )
}

struct ParsedWrap {
    bytes: Vec<u8>,
    kind: u8,
    kdf: KdfParams,
    salt: [u8; 16],
}

fn parse_wrap(text: &str) -> Result<ParsedWrap, SyncError> {
    let bytes = BASE64URL_NOPAD
        .decode(text.as_bytes())
        .map_err(|_| SyncError::Protocol("the key wrap is not Base64url".into()))?;
    if bytes.len() != WRAP_LEN || bytes.get(..4) != Some(WRAP_MAGIC.as_slice()) {
        return Err(SyncError::Protocol(
            "the key wrap has the wrong layout".into(),
        ));
    }
    if bytes.get(4) != Some(&FORMAT_VERSION) {
        return Err(SyncError::Protocol(
            "the key wrap has an unknown version; upgrade mamori".into(),
        ));
    }
    let kind = bytes.get(5).copied().unwrap_or(0);
    let u32_at = |i: usize| -> u32 {
        let mut b = [0u8; 4];
        if let Some(s) = bytes.get(i..i + 4) {
            b.copy_from_slice(s);
        }
        u32::from_be_bytes(b)
    };
    let kdf = KdfParams {
        memory_kib: u32_at(6),
        iterations: u32_at(10),
        parallelism: u32_at(14),
    };
    let mut salt = [0u8; 16];
    salt.copy_from_slice(bytes.get(18..34).unwrap_or(&[0u8; 16]));
    Ok(ParsedWrap {
        bytes,
        kind,
        kdf,
        salt,
    })
}

fn open_wrap(w: &ParsedWrap, kek: &[u8; 32], account_id: &str) -> Option<SyncKey> {
    let header = w.bytes.get(..WRAP_HEADER_LEN)?;
    let nonce = w.bytes.get(WRAP_HEADER_LEN..WRAP_HEADER_LEN + NONCE_LEN)?;
    let ct = w.bytes.get(WRAP_HEADER_LEN + NONCE_LEN..)?;
    let ad = wrap_ad(header, account_id);
    let pt = Zeroizing::new(
        aead(kek)
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: &ad })
            .ok()?,
    );
    let mut k = [0u8; 32];
    if pt.len() != 32 {
        return None;
    }
    k.copy_from_slice(&pt);
    let key = SyncKey::from_bytes(k);
    zeroize::Zeroize::zeroize(&mut k);
    Some(key)
}

/// The Argon2id parameters a passphrase wrap was made with (to check them before deriving).
pub fn wrap_kdf(text: &str) -> Result<KdfParams, SyncError> {
    Ok(parse_wrap(text)?.kdf)
}

/// Unwraps the sync key with the passphrase.
pub fn unwrap_with_passphrase(
    text: &str,
    passphrase: &str,
    account_id: &str,
) -> Result<SyncKey, SyncError> {
    let w = parse_wrap(text)?;
    if w.kind != WRAP_PASSPHRASE {
        return Err(SyncError::Protocol("not a passphrase wrap".into()));
    }
    let kek = w.kdf.validated()?.derive(passphrase.as_bytes(), &w.salt)?;
    open_wrap(&w, &kek, account_id).ok_or(SyncError::WrongPassphrase)
}

/// Unwraps the sync key with the recovery key.
pub fn unwrap_with_recovery(
    text: &str,
    recovery: &RecoveryKey,
    account_id: &str,
) -> Result<SyncKey, SyncError> {
    let w = parse_wrap(text)?;
    if w.kind != WRAP_RECOVERY {
        return Err(SyncError::Protocol("not a recovery wrap".into()));
    }
    let kek = recovery_kek(recovery, &w.salt);
    open_wrap(&w, &kek, account_id).ok_or_else(|| {
        SyncError::RecoveryKey(
            "this recovery key does not open the sync key of this account".into(),
        )
    })
}

/// Checks a new passphrase.
pub fn check_passphrase(p: &str) -> Result<(), SyncError> {
    if p.chars().count() < MIN_PASSPHRASE_LEN {
        return Err(SyncError::InvalidInput(format!(
            "the sync passphrase must have at least {MIN_PASSPHRASE_LEN} characters"
        )));
    }
    Ok(())
}

/// The associated data of an item: label, account id, item id, revision, deleted flag. A
/// ciphertext moved to another account, item or revision, or flipped between live and deleted,
/// fails authentication.
pub fn item_ad(account_id: &str, item: Uuid, revision: i64, deleted: bool) -> Vec<u8> {
    let mut ad = Vec::with_capacity(ITEM_AD_LABEL.len() + 1 + account_id.len() + 16 + 8 + 1);
    ad.extend_from_slice(ITEM_AD_LABEL);
    ad.push(u8::try_from(account_id.len()).unwrap_or(u8::MAX));
    ad.extend_from_slice(account_id.as_bytes());
    ad.extend_from_slice(item.as_bytes());
    ad.extend_from_slice(&revision.to_be_bytes());
    ad.push(u8::from(deleted));
    ad
}

/// Encrypts an item's plaintext: `version ‖ nonce ‖ ciphertext‖tag`, Base64url.
pub fn seal_item<R: RngCore + CryptoRng>(
    key: &SyncKey,
    ad: &[u8],
    plaintext: &[u8],
    rng: &mut R,
) -> Result<String, SyncError> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let ct = aead(key.as_bytes())
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: ad,
            },
        )
        .map_err(|_| SyncError::Protocol("item encryption failed".into()))?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(BASE64URL_NOPAD.encode(&out))
}

/// Decrypts an item; `None` if it fails authentication or is malformed.
pub fn open_item(key: &SyncKey, ad: &[u8], text: &str) -> Option<Zeroizing<Vec<u8>>> {
    let bytes = BASE64URL_NOPAD.decode(text.as_bytes()).ok()?;
    if bytes.first() != Some(&FORMAT_VERSION) {
        return None;
    }
    let nonce = bytes.get(1..1 + NONCE_LEN)?;
    let ct = bytes.get(1 + NONCE_LEN..)?;
    aead(key.as_bytes())
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: ad })
        .ok()
        .map(Zeroizing::new)
}

/// SHA-256 of a ciphertext as the server sent it (to notice a different ciphertext served
/// under a revision already seen).
pub fn ciphertext_digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// A key for the local state file, derived from the vault's data key (so the state opens
/// exactly when the vault does, by password or through the unlock agent).
pub fn local_state_key(vault_key: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let d = Sha256::new()
        .chain_update(b"mamori-sync local state v1")
        .chain_update(vault_key)
        .finalize();
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&d);
    out
}

/// Encrypts with a raw key (local state file).
pub(crate) fn seal_raw<R: RngCore + CryptoRng>(
    key: &[u8; 32],
    ad: &[u8],
    plaintext: &[u8],
    rng: &mut R,
) -> Result<Vec<u8>, SyncError> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let ct = aead(key)
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: ad,
            },
        )
        .map_err(|_| SyncError::Protocol("encryption failed".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Decrypts [`seal_raw`]'s output.
pub(crate) fn open_raw(key: &[u8; 32], ad: &[u8], bytes: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let nonce = bytes.get(..NONCE_LEN)?;
    let ct = bytes.get(NONCE_LEN..)?;
    aead(key)
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: ad })
        .ok()
        .map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;

    const FAST: KdfParams = KdfParams::INSECURE_TEST;

    #[test]
    fn passphrase_wrap_round_trip_and_wrong_passphrase() {
        let mut rng = rand::thread_rng();
        let k = SyncKey::generate(&mut rng);
        let w = wrap_with_passphrase(&k, "correct horse battery", FAST, "acct", &mut rng).unwrap();
        assert_eq!(
            unwrap_with_passphrase(&w, "correct horse battery", "acct").unwrap(),
            k
        );
        assert!(matches!(
            unwrap_with_passphrase(&w, "wrong horse battery", "acct"),
            Err(SyncError::WrongPassphrase)
        ));
        // Bound to the account: another account's id fails.
        assert!(unwrap_with_passphrase(&w, "correct horse battery", "other").is_err());
        assert_eq!(wrap_kdf(&w).unwrap(), FAST);
    }

    #[test]
    fn wrap_header_changes_are_detected() {
        let mut rng = rand::thread_rng();
        let k = SyncKey::generate(&mut rng);
        let w = wrap_with_passphrase(&k, "correct horse battery", FAST, "a", &mut rng).unwrap();
        let mut bytes = BASE64URL_NOPAD.decode(w.as_bytes()).unwrap();
        // Raise the iterations: header is authenticated, so the unwrap fails.
        bytes[13] ^= 2;
        let t = BASE64URL_NOPAD.encode(&bytes);
        assert!(unwrap_with_passphrase(&t, "correct horse battery", "a").is_err());
    }

    #[test]
    fn recovery_key_display_parse_and_typos() {
        let mut rng = rand::thread_rng();
        let r = RecoveryKey::generate(&mut rng);
        let shown = r.display();
        assert_eq!(shown.len(), 36 + 8);
        assert_eq!(shown.split('-').count(), 9);
        let back = RecoveryKey::parse(&shown.to_lowercase().replace('-', " ")).unwrap();
        assert_eq!(back.0.as_ref(), r.0.as_ref());
        // Change one character of the key part: the checksum catches it.
        let mut typo: Vec<char> = shown.chars().collect();
        typo[0] = if typo[0] == 'A' { 'B' } else { 'A' };
        let typo: String = typo.into_iter().collect();
        assert!(matches!(
            RecoveryKey::parse(&typo),
            Err(SyncError::RecoveryKey(_))
        ));
        assert!(RecoveryKey::parse("ABCD").is_err());

        let k = SyncKey::generate(&mut rng);
        let w = wrap_with_recovery(&k, &r, "acct", &mut rng).unwrap();
        assert_eq!(unwrap_with_recovery(&w, &back, "acct").unwrap(), k);
        let other = RecoveryKey::generate(&mut rng);
        assert!(unwrap_with_recovery(&w, &other, "acct").is_err());
        assert!(unwrap_with_passphrase(&w, "anything at all", "acct").is_err());
    }

    #[test]
    fn items_are_bound_to_account_id_revision_and_deleted_flag() {
        let mut rng = rand::thread_rng();
        let k = SyncKey::generate(&mut rng);
        let id = Uuid::from_u128(7);
        let ad = item_ad("acct", id, 3, false);
        let ct = seal_item(&k, &ad, b"hello", &mut rng).unwrap();
        assert_eq!(&open_item(&k, &ad, &ct).unwrap()[..], b"hello");
        for other in [
            item_ad("acct2", id, 3, false),
            item_ad("acct", Uuid::from_u128(8), 3, false),
            item_ad("acct", id, 2, false),
            item_ad("acct", id, 3, true),
        ] {
            assert!(open_item(&k, &other, &ct).is_none());
        }
        let mut bytes = BASE64URL_NOPAD.decode(ct.as_bytes()).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(open_item(&k, &ad, &BASE64URL_NOPAD.encode(&bytes)).is_none());
        assert!(open_item(&SyncKey::generate(&mut rng), &ad, &ct).is_none());
    }
}

//! The primitives other apps use, behind small functions that check lengths and limits before
//! doing any work. Keys and plaintexts are returned in wiped-on-drop containers.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use data_encoding::{BASE64, BASE64_NOPAD, HEXLOWER_PERMISSIVE};
use sha1::Sha1;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::FormatError;

/// Highest scrypt N accepted from a file (2^20: 1 GiB of memory at r = 8).
pub const MAX_SCRYPT_LOG_N: u8 = 20;
/// Highest scrypt r·p accepted from a file.
pub const MAX_SCRYPT_RP: u64 = 64;
/// Most PBKDF2 iterations accepted from a file (andOTP uses 140,000 to 160,000).
pub const MAX_PBKDF2_ITERATIONS: u32 = 1_000_000;
/// Most Argon2 memory accepted from a file: 1 GiB, libsodium's "sensitive" level, which Ente uses.
pub const MAX_ARGON2_MEMORY_BYTES: u64 = 1 << 30;
/// Most Argon2 work (memory in bytes × passes) accepted from a file: the "sensitive" level's
/// 1 GiB × 4, which also covers Ente's fall-backs (half the memory, twice the passes).
pub const MAX_ARGON2_WORK: u64 = 4 << 30;

/// AES-256-GCM decryption of `ciphertext ‖ tag` (16-byte tag). `None` when authentication fails.
pub fn aes_gcm_open(
    key: &[u8; 32],
    nonce: &[u8],
    ciphertext_and_tag: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    if nonce.len() != 12 || ciphertext_and_tag.len() < 16 {
        return None;
    }
    let cipher = Aes256Gcm::new(key.into());
    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext_and_tag,
                aad: &[],
            },
        )
        .ok()
        .map(Zeroizing::new)
}

/// AES-256-GCM encryption; returns `ciphertext ‖ tag`.
pub fn aes_gcm_seal(
    key: &[u8; 32],
    nonce: &[u8; 12],
    plaintext: &[u8],
) -> Result<Vec<u8>, FormatError> {
    let cipher = Aes256Gcm::new(key.into());
    cipher
        .encrypt(Nonce::from_slice(nonce), plaintext)
        .map_err(|_| FormatError::Export("AES-GCM encryption failed".into()))
}

/// PBKDF2-HMAC-SHA256 to a 32-byte key.
pub fn pbkdf2_sha256(
    password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> Result<Zeroizing<[u8; 32]>, FormatError> {
    check_iterations(iterations)?;
    let mut key = Zeroizing::new([0u8; 32]);
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, key.as_mut());
    Ok(key)
}

/// PBKDF2-HMAC-SHA1 to a 32-byte key.
pub fn pbkdf2_sha1(
    password: &[u8],
    salt: &[u8],
    iterations: u32,
) -> Result<Zeroizing<[u8; 32]>, FormatError> {
    check_iterations(iterations)?;
    let mut key = Zeroizing::new([0u8; 32]);
    pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, iterations, key.as_mut());
    Ok(key)
}

fn check_iterations(iterations: u32) -> Result<(), FormatError> {
    if iterations == 0 || iterations > MAX_PBKDF2_ITERATIONS {
        return Err(FormatError::KdfParameters(format!(
            "PBKDF2 iterations {iterations} not in 1..={MAX_PBKDF2_ITERATIONS}"
        )));
    }
    Ok(())
}

/// scrypt to a 32-byte key. `n` must be a power of two.
pub fn scrypt_key(
    password: &[u8],
    salt: &[u8],
    n: u64,
    r: u32,
    p: u32,
) -> Result<Zeroizing<[u8; 32]>, FormatError> {
    let bad = |why: &str| FormatError::KdfParameters(format!("scrypt N={n} r={r} p={p}: {why}"));
    if n < 2 || !n.is_power_of_two() {
        return Err(bad("N must be a power of two, at least 2"));
    }
    let log_n = u8::try_from(n.trailing_zeros()).map_err(|_| bad("N too large"))?;
    if log_n > MAX_SCRYPT_LOG_N {
        return Err(bad("N above 2^20"));
    }
    if r == 0 || p == 0 || u64::from(r) * u64::from(p) > MAX_SCRYPT_RP {
        return Err(bad("r and p must be at least 1 with r·p at most 64"));
    }
    // Memory is 128·N·r bytes; keep it within 1 GiB.
    if 128u64 * n * u64::from(r) > 1 << 30 {
        return Err(bad("needs more than 1 GiB of memory"));
    }
    let params = scrypt::Params::new(log_n, r, p, 32).map_err(|_| bad("rejected by scrypt"))?;
    let mut key = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(password, salt, &params, key.as_mut()).map_err(|_| bad("scrypt failed"))?;
    Ok(key)
}

/// libsodium's `crypto_pwhash` with Argon2id v1.3, as Ente calls it: `mem_limit` in bytes
/// becomes `m_cost = mem_limit / 1024` KiB, `ops_limit` is `t_cost`, one lane, 32-byte output.
pub fn argon2id_sodium(
    password: &[u8],
    salt: &[u8],
    mem_limit: u64,
    ops_limit: u64,
) -> Result<Zeroizing<[u8; 32]>, FormatError> {
    let bad = |why: &str| {
        FormatError::KdfParameters(format!(
            "Argon2id memLimit={mem_limit} opsLimit={ops_limit}: {why}"
        ))
    };
    if mem_limit > MAX_ARGON2_MEMORY_BYTES {
        return Err(bad("more than 1 GiB of memory"));
    }
    if ops_limit == 0 || mem_limit.saturating_mul(ops_limit) > MAX_ARGON2_WORK {
        return Err(bad("too much work"));
    }
    // libsodium refuses less than 8 KiB (crypto_pwhash_argon2id_MEMLIMIT_MIN = 8192).
    if mem_limit < 8192 {
        return Err(bad("less than libsodium's minimum of 8192 bytes"));
    }
    let m_cost = u32::try_from(mem_limit / 1024).map_err(|_| bad("too much memory"))?;
    let t_cost = u32::try_from(ops_limit).map_err(|_| bad("too many passes"))?;
    let params =
        argon2::Params::new(m_cost, t_cost, 1, Some(32)).map_err(|_| bad("rejected by Argon2"))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(password, salt, key.as_mut())
        .map_err(|e| bad(&format!("Argon2 failed: {e}")))?;
    Ok(key)
}

/// Standard Base64, padded or not (whitespace ignored).
pub fn base64(part: &str, text: &str) -> Result<Zeroizing<Vec<u8>>, FormatError> {
    let cleaned: Zeroizing<String> =
        Zeroizing::new(text.chars().filter(|c| !c.is_whitespace()).collect());
    BASE64
        .decode(cleaned.as_bytes())
        .or_else(|_| BASE64_NOPAD.decode(cleaned.trim_end_matches('=').as_bytes()))
        .map(Zeroizing::new)
        .map_err(|e| {
            FormatError::damaged(format!(
                "{part} is not valid Base64 (at position {})",
                e.position
            ))
        })
}

/// Hexadecimal of an exact length.
pub fn hex_exact(part: &str, text: &str, len: usize) -> Result<Zeroizing<Vec<u8>>, FormatError> {
    let bytes = HEXLOWER_PERMISSIVE
        .decode(text.trim().as_bytes())
        .map_err(|_| FormatError::damaged(format!("{part} is not valid hexadecimal")))?;
    if bytes.len() != len {
        return Err(FormatError::damaged(format!(
            "{part} has {} bytes instead of {len}",
            bytes.len()
        )));
    }
    Ok(Zeroizing::new(bytes))
}

/// Copies a slice of exactly 32 bytes into a key array.
pub fn key32(bytes: &[u8]) -> Option<Zeroizing<[u8; 32]>> {
    let arr: [u8; 32] = bytes.try_into().ok()?;
    Some(Zeroizing::new(arr))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn hex(b: &[u8]) -> String {
        data_encoding::HEXLOWER.encode(b)
    }

    #[test]
    fn scrypt_rfc7914_vector() {
        // RFC 7914 section 12, third vector (N = 16384, r = 8, p = 1); the first 32 of its 64
        // bytes, as PBKDF2's output blocks are independent.
        let key = scrypt_key(b"pleaseletmein", b"SodiumChloride", 16384, 8, 1).unwrap();
        assert_eq!(
            hex(key.as_ref()),
            "7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2"
        );
    }

    #[test]
    fn pbkdf2_published_vectors() {
        // RFC 7914 section 11: PBKDF2-HMAC-SHA256("passwd", "salt", 1), first 32 bytes.
        assert_eq!(
            hex(pbkdf2_sha256(b"passwd", b"salt", 1).unwrap().as_ref()),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        );
        // RFC 6070: PBKDF2-HMAC-SHA1("password", "salt", 2), 20 bytes (a prefix of ours).
        let k = pbkdf2_sha1(b"password", b"salt", 2).unwrap();
        assert_eq!(hex(&k[..20]), "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957");
    }

    #[test]
    fn argon2id_with_libsodium_memory_units() {
        // Argon2id v1.3, t = 5, m = 1024 KiB, p = 1, from the reference `argon2` tool, as
        // published in iov-core's packages/iov-crypto/src/libsodium.spec.ts. libsodium's
        // memlimit is in bytes: 1 MiB here.
        let key = argon2id_sodium(b"123", b"ABCDEFGHIJKLMNOP", 1 << 20, 5).unwrap();
        assert_eq!(
            hex(key.as_ref()),
            "3c5d010180ba0cf5b6b858cba23b318e42d33088983c404598599c3b029ecac6"
        );
    }

    #[test]
    fn kdf_limits_are_enforced() {
        assert!(matches!(
            scrypt_key(b"", b"", 3, 8, 1),
            Err(FormatError::KdfParameters(_))
        ));
        assert!(matches!(
            scrypt_key(b"", b"", 1 << 21, 1, 1),
            Err(FormatError::KdfParameters(_))
        ));
        assert!(matches!(
            scrypt_key(b"", b"", 16, 8, 9),
            Err(FormatError::KdfParameters(_))
        ));
        assert!(matches!(
            pbkdf2_sha1(b"", b"", 0),
            Err(FormatError::KdfParameters(_))
        ));
        assert!(matches!(
            pbkdf2_sha256(b"", b"", MAX_PBKDF2_ITERATIONS + 1),
            Err(FormatError::KdfParameters(_))
        ));
        assert!(matches!(
            argon2id_sodium(b"", b"0123456789abcdef", (1 << 30) + 1024, 1),
            Err(FormatError::KdfParameters(_))
        ));
        assert!(matches!(
            argon2id_sodium(b"", b"0123456789abcdef", 1 << 30, 5),
            Err(FormatError::KdfParameters(_))
        ));
        assert!(matches!(
            argon2id_sodium(b"", b"0123456789abcdef", 4096, 1),
            Err(FormatError::KdfParameters(_))
        ));
    }
}

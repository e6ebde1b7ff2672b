//! andOTP backups, after andOTP's backup code (<https://github.com/andOTP/andOTP>,
//! `EncryptionHelper` and `BackupHelper`), whose constants (12-byte salt and nonce, 140,000 to
//! 160,000 PBKDF2 iterations) OTPClient's andOTP importer documents as well:
//!
//! * plain: a JSON array of entries `{ "secret" (Base32), "issuer", "label", "digits", "type":
//!   "TOTP" | "HOTP" | "STEAM", "algorithm", "period", "counter", "tags": [ … ] }`;
//! * encrypted (andOTP ≥ 0.6.3): `iterations` (4 bytes, big-endian) ‖ `salt` (12 bytes) ‖
//!   `nonce` (12 bytes) ‖ AES-256-GCM(ciphertext ‖ 16-byte tag), with
//!   key = PBKDF2-HMAC-SHA1(password, salt, iterations, 256 bits);
//! * old encrypted: `nonce` (12 bytes) ‖ AES-256-GCM(ciphertext ‖ tag), key = SHA-256(password).
//!
//! Neither encrypted form checks the password separately, so a failed decryption is reported
//! as "wrong password or damaged file". The new form is tried first; when its iteration count
//! is out of range (an old-form file's random nonce read as a count) only the old form is tried.

use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::account::{build, describe, params};
use crate::crypto::{aes_gcm_open, key32, pbkdf2_sha1, MAX_PBKDF2_ITERATIONS};
use crate::error::json_error;
use crate::{
    check_count, password_bytes, strip_bom, Account, FormatError, ImportReport, SecretString,
};

#[derive(Deserialize)]
struct Entry {
    secret: Zeroizing<String>,
    issuer: Option<String>,
    #[serde(default)]
    label: String,
    digits: Option<u32>,
    #[serde(rename = "type")]
    kind: Option<String>,
    algorithm: Option<String>,
    period: Option<u64>,
    counter: Option<u64>,
    #[serde(default)]
    tags: Vec<String>,
}

const NEW_HEADER: usize = 4 + 12 + 12;
const TAG: usize = 16;

pub(crate) fn import(
    input: &[u8],
    password: Option<&SecretString>,
) -> Result<ImportReport, FormatError> {
    let trimmed = strip_bom(input);
    let first = trimmed.iter().find(|b| !b.is_ascii_whitespace());
    // A plain backup is JSON text. An encrypted one is binary, but its first byte (an old-form
    // file's random nonce) can happen to be '[': only text that is not valid JSON is an error.
    if first == Some(&b'[') && (password.is_none() || std::str::from_utf8(trimmed).is_ok()) {
        return read_entries(trimmed);
    }
    let password = password.ok_or(FormatError::PasswordRequired)?;
    if input.len() < 12 + TAG {
        return Err(FormatError::damaged(format!(
            "{} bytes is too short for an andOTP encrypted backup",
            input.len()
        )));
    }
    if let Some(plain) = decrypt_new(input, password)? {
        return read_entries(&plain);
    }
    if let Some(plain) = decrypt_old(input, password) {
        return read_entries(&plain);
    }
    Err(FormatError::WrongPasswordOrDamaged)
}

fn decrypt_new(
    input: &[u8],
    password: &SecretString,
) -> Result<Option<Zeroizing<Vec<u8>>>, FormatError> {
    let Some((header, sealed)) = input.split_at_checked(NEW_HEADER) else {
        return Ok(None);
    };
    if sealed.len() < TAG {
        return Ok(None);
    }
    let (iter_bytes, rest) = header.split_at(4);
    let (salt, nonce) = rest.split_at(12);
    let iterations = u32::from_be_bytes(iter_bytes.try_into().unwrap_or([0; 4]));
    if iterations == 0 || iterations > MAX_PBKDF2_ITERATIONS {
        return Ok(None);
    }
    let key = pbkdf2_sha1(password_bytes(password), salt, iterations)?;
    Ok(aes_gcm_open(&key, nonce, sealed))
}

fn decrypt_old(input: &[u8], password: &SecretString) -> Option<Zeroizing<Vec<u8>>> {
    let digest = Sha256::digest(password_bytes(password));
    let key = key32(&digest)?;
    let (nonce, sealed) = input.split_at_checked(12)?;
    aes_gcm_open(&key, nonce, sealed)
}

fn read_entries(json: &[u8]) -> Result<ImportReport, FormatError> {
    let entries: Vec<&RawValue> =
        serde_json::from_slice(json).map_err(|e| json_error("the backup", &e))?;
    check_count(entries.len())?;
    let mut report = ImportReport::default();
    for (i, raw) in entries.iter().enumerate() {
        let entry: Entry = match serde_json::from_str(raw.get()) {
            Ok(e) => e,
            Err(e) => {
                let reason = match json_error("the entry", &e) {
                    FormatError::Damaged { what } => what,
                    other => other.to_string(),
                };
                report.push_unusable(format!("entry {}", i + 1), reason);
                continue;
            }
        };
        let name = describe(entry.issuer.as_deref(), &entry.label, || {
            format!("entry {}", i + 1)
        });
        let result = params(
            entry.kind.as_deref().unwrap_or("TOTP"),
            entry.algorithm.as_deref(),
            entry.digits,
            entry.period,
            entry.counter,
        )
        .and_then(|p| {
            mamori_otp::Secret::from_base32(&entry.secret)
                .map(|s| (s, p))
                .map_err(|e| e.to_string())
        });
        match result {
            Ok((secret, p)) => report.accounts.push(Account {
                uri: build(entry.issuer.as_deref(), &entry.label, secret, p),
                note: None,
                tags: entry
                    .tags
                    .into_iter()
                    .filter(|t| !t.trim().is_empty())
                    .collect(),
                favorite: false,
            }),
            Err(reason) => report.push_unusable(name, reason),
        }
    }
    Ok(report)
}

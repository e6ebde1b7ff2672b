//! 2FAS Authenticator backups (`.2fas`), schema versions 1 to 4. The layout below is that of
//! `BackupContent.kt` and `BackupService.kt` in the 2FAS Android app
//! (<https://github.com/twofas/2fas-android>, package `com.twofasapp.data.services.domain`) and of
//! the sample backups for schemas 1, 2, 3 and 4 in Aegis's importer tests
//! (`app/src/test/resources/com/beemdevelopment/aegis/importers/2fas_authenticator*`):
//!
//! ```text
//! { "schemaVersion": 4, "services": [ service… ], "groups": [ { "id", "name" }… ],
//!   "servicesEncrypted": "B64(ciphertext‖tag):B64(salt):B64(iv)",    (encrypted files only)
//!   "reference":         "B64(ciphertext‖tag):B64(salt):B64(iv)" }   (encrypted files only)
//! service = { "name", "secret" (Base32), "groupId"?,
//!             "otp": { "account", "issuer", "label", "digits", "period", "algorithm",
//!                      "counter", "tokenType": "TOTP" | "HOTP" | "STEAM" } }
//! ```
//!
//! Encryption: key = PBKDF2-HMAC-SHA256(password, salt, 10,000 iterations, 256 bits);
//! AES-256-GCM with the 12-byte IV, the 16-byte tag appended to the ciphertext. The plaintext
//! of `servicesEncrypted` is the JSON array of services. `reference` decrypts to a fixed
//! public string, which tells a wrong password apart from a damaged file. In schema 1 an entry
//! carries only its secret and labels (so: TOTP, SHA-1, 6 digits, 30 s); schema 2 adds digits,
//! period and algorithm and the `groups` list; schema 4 adds `tokenType` with HOTP and Steam.
//! A missing field takes the Key Uri Format default.

use serde::Deserialize;
use serde_json::value::RawValue;
use zeroize::Zeroizing;

use crate::account::{build, describe, params};
use crate::crypto::{aes_gcm_open, base64, pbkdf2_sha256};
use crate::error::json_error;
use crate::{
    check_count, password_bytes, strip_bom, Account, FormatError, ImportReport, SecretString,
};

/// The plaintext of `reference` in every encrypted 2FAS backup (a public format marker,
/// `BackupContent.Reference` in the 2FAS Android app).
pub(crate) const REFERENCE: &str = "tRViSsLKzd86Hprh4ceC2OP7xazn4rrt4xhfEUbOjxLX8Rc3mkISXE0lWbmnWfggogbBJhtYgpK6fMl1D6mtsy92R3HkdGfwuXbzLebqVFJsR7IZ2w58t938iymwG4824igYy1wi6n2WDpO1Q1P69zwJGs2F5a1qP4MyIiDSD7NCV2OvidXQCBnDlGfmz0f1BQySRkkt4ryiJeCjD2o4QsveJ9uDBUn8ELyOrESv5R5DMDkD4iAF8TXU7KyoJujd";

/// PBKDF2 iterations fixed by the format.
pub(crate) const ITERATIONS: u32 = 10_000;

const MAX_SCHEMA: u64 = 4;

#[derive(Deserialize)]
struct Backup<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: Option<u64>,
    #[serde(borrow, default)]
    services: Option<Vec<&'a RawValue>>,
    #[serde(default)]
    groups: Option<Vec<Group>>,
    #[serde(rename = "servicesEncrypted")]
    services_encrypted: Option<String>,
    reference: Option<String>,
}

#[derive(Deserialize)]
struct Group {
    id: String,
    name: Option<String>,
}

#[derive(Deserialize)]
struct Service {
    #[serde(default)]
    name: String,
    secret: Zeroizing<String>,
    otp: Option<Otp>,
    #[serde(rename = "groupId")]
    group_id: Option<String>,
}

#[derive(Deserialize)]
struct Otp {
    account: Option<String>,
    issuer: Option<String>,
    label: Option<String>,
    digits: Option<u32>,
    period: Option<u64>,
    algorithm: Option<String>,
    counter: Option<u64>,
    #[serde(rename = "tokenType")]
    token_type: Option<String>,
}

/// One `B64(ciphertext‖tag):B64(salt):B64(iv)` field.
struct Sealed {
    ciphertext: Zeroizing<Vec<u8>>,
    salt: Zeroizing<Vec<u8>>,
    iv: Zeroizing<Vec<u8>>,
}

fn split_sealed(part: &str, text: &str) -> Result<Sealed, FormatError> {
    let pieces: Vec<&str> = text.trim().split(':').collect();
    let [ct, salt, iv] = pieces.as_slice() else {
        return Err(FormatError::damaged(format!(
            "{part} should have three parts separated by ':', not {}",
            pieces.len()
        )));
    };
    let sealed = Sealed {
        ciphertext: base64(&format!("{part} (ciphertext)"), ct)?,
        salt: base64(&format!("{part} (salt)"), salt)?,
        iv: base64(&format!("{part} (IV)"), iv)?,
    };
    if sealed.iv.len() != 12 {
        return Err(FormatError::damaged(format!(
            "{part}: the IV is not 12 bytes"
        )));
    }
    if sealed.ciphertext.len() < 16 {
        return Err(FormatError::damaged(format!(
            "{part}: the ciphertext is truncated"
        )));
    }
    if sealed.salt.is_empty() || sealed.salt.len() > 1024 {
        return Err(FormatError::damaged(format!(
            "{part}: the salt is empty or too long"
        )));
    }
    Ok(sealed)
}

pub(crate) fn import(
    input: &[u8],
    password: Option<&SecretString>,
) -> Result<ImportReport, FormatError> {
    let backup: Backup<'_> =
        serde_json::from_slice(strip_bom(input)).map_err(|e| json_error("the backup", &e))?;
    let schema = backup.schema_version.unwrap_or(1);
    if !(1..=MAX_SCHEMA).contains(&schema) {
        return Err(FormatError::UnsupportedVersion {
            what: "2FAS backup schema",
            version: schema.to_string(),
        });
    }
    let groups = backup.groups.unwrap_or_default();
    match backup
        .services_encrypted
        .as_deref()
        .filter(|s| !s.trim().is_empty())
    {
        None => {
            let services = backup.services.ok_or_else(|| {
                FormatError::damaged("the backup has neither services nor servicesEncrypted")
            })?;
            read_services(&services, &groups)
        }
        Some(enc) => {
            let password = password.ok_or(FormatError::PasswordRequired)?;
            let services = split_sealed("servicesEncrypted", enc)?;
            let key = pbkdf2_sha256(password_bytes(password), &services.salt, ITERATIONS)?;
            let mut checked = false;
            if let Some(reference) = backup.reference.as_deref().filter(|s| !s.trim().is_empty()) {
                let reference = split_sealed("reference", reference)?;
                let ref_key = if reference.salt == services.salt {
                    key.clone()
                } else {
                    pbkdf2_sha256(password_bytes(password), &reference.salt, ITERATIONS)?
                };
                match aes_gcm_open(&ref_key, &reference.iv, &reference.ciphertext) {
                    Some(plain) if plain.as_slice() == REFERENCE.as_bytes() => checked = true,
                    _ => return Err(FormatError::WrongPassword),
                }
            }
            let plain = match aes_gcm_open(&key, &services.iv, &services.ciphertext) {
                Some(p) => p,
                None if checked => {
                    return Err(FormatError::damaged(
                        "servicesEncrypted fails authentication although the password is right",
                    ))
                }
                None => return Err(FormatError::WrongPasswordOrDamaged),
            };
            let services: Vec<&RawValue> = serde_json::from_slice(&plain)
                .map_err(|e| json_error("the decrypted services", &e))?;
            read_services(&services, &groups)
        }
    }
}

fn read_services(services: &[&RawValue], groups: &[Group]) -> Result<ImportReport, FormatError> {
    check_count(services.len())?;
    let mut report = ImportReport::default();
    for (i, raw) in services.iter().enumerate() {
        let service: Service = match serde_json::from_str(raw.get()) {
            Ok(s) => s,
            Err(e) => {
                let reason = match json_error("the service", &e) {
                    FormatError::Damaged { what } => what,
                    other => other.to_string(),
                };
                report.push_unusable(format!("service {}", i + 1), reason);
                continue;
            }
        };
        let otp = service.otp.as_ref();
        // The service name is what 2FAS shows (and lets the user edit); the issuer from the
        // original URI is the fall-back.
        let issuer = Some(service.name.as_str())
            .filter(|n| !n.trim().is_empty())
            .or_else(|| otp.and_then(|o| o.issuer.as_deref()));
        let account = otp
            .and_then(|o| o.account.as_deref().filter(|a| !a.trim().is_empty()))
            .map(str::to_string)
            .or_else(|| {
                // An old label is "Issuer:account".
                otp.and_then(|o| o.label.as_deref())
                    .map(|l| l.split_once(':').map_or(l, |(_, acct)| acct).to_string())
            })
            .unwrap_or_default();
        let name = describe(issuer, &account, || format!("service {}", i + 1));
        let kind = otp.and_then(|o| o.token_type.as_deref()).unwrap_or("TOTP");
        let result = params(
            kind,
            otp.and_then(|o| o.algorithm.as_deref()),
            otp.and_then(|o| o.digits),
            otp.and_then(|o| o.period),
            otp.and_then(|o| o.counter),
        )
        .and_then(|p| {
            mamori_otp::Secret::from_base32(&service.secret)
                .map(|s| (s, p))
                .map_err(|e| e.to_string())
        });
        match result {
            Ok((secret, p)) => {
                let tags = service
                    .group_id
                    .as_ref()
                    .and_then(|id| groups.iter().find(|g| &g.id == id))
                    .and_then(|g| g.name.clone())
                    .filter(|n| !n.trim().is_empty())
                    .into_iter()
                    .collect();
                report.accounts.push(Account {
                    uri: build(issuer, &account, secret, p),
                    note: None,
                    tags,
                    favorite: false,
                });
            }
            Err(reason) => report.push_unusable(name, reason),
        }
    }
    Ok(report)
}

//! Ente Auth exports, after Ente's migration guide "encrypted_export.md"
//! (<https://github.com/ente-io/auth/blob/main/migration-guides/encrypted_export.md>):
//!
//! * plain: `otpauth://` URIs, one per line; Ente adds a `codeDisplay` parameter (display
//!   state such as pinning), which is ignored like any unknown parameter;
//! * encrypted: `{ "version": 1, "kdfParams": { "memLimit", "opsLimit", "salt" },
//!   "encryptedData", "encryptionNonce" }` (Base64 fields). The key is libsodium's
//!   `crypto_pwhash` (Argon2id v1.3; `memLimit` bytes, `opsLimit` passes, one lane) of the
//!   password, 32 bytes; `encryptedData` is one message of a libsodium
//!   `crypto_secretstream_xchacha20poly1305` stream whose header is `encryptionNonce`; its
//!   plaintext is the plain export.

use serde::Deserialize;

use crate::crypto::{argon2id_sodium, base64};
use crate::error::json_error;
use crate::secretstream::{State, HEADER_BYTES};
use crate::{otpauth, password_bytes, strip_bom, text, FormatError, ImportReport, SecretString};

#[derive(Deserialize)]
struct Encrypted {
    version: Option<u64>,
    #[serde(rename = "kdfParams")]
    kdf_params: KdfParams,
    #[serde(rename = "encryptedData")]
    encrypted_data: String,
    #[serde(rename = "encryptionNonce")]
    encryption_nonce: String,
}

#[derive(Deserialize)]
struct KdfParams {
    #[serde(rename = "memLimit")]
    mem_limit: u64,
    #[serde(rename = "opsLimit")]
    ops_limit: u64,
    salt: String,
}

pub(crate) fn import(
    input: &[u8],
    password: Option<&SecretString>,
) -> Result<ImportReport, FormatError> {
    let trimmed = strip_bom(input);
    if trimmed.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return otpauth::import(trimmed);
    }
    let file: Encrypted =
        serde_json::from_slice(trimmed).map_err(|e| json_error("the encrypted export", &e))?;
    match file.version {
        Some(1) | None => {}
        Some(v) => {
            return Err(FormatError::UnsupportedVersion {
                what: "Ente encrypted export",
                version: v.to_string(),
            })
        }
    }
    let password = password.ok_or(FormatError::PasswordRequired)?;
    let salt = base64("kdfParams.salt", &file.kdf_params.salt)?;
    // crypto_pwhash_SALTBYTES is 16.
    if salt.len() != 16 {
        return Err(FormatError::damaged("kdfParams.salt is not 16 bytes"));
    }
    let header_bytes = base64("encryptionNonce", &file.encryption_nonce)?;
    let header: [u8; HEADER_BYTES] = header_bytes
        .as_slice()
        .try_into()
        .map_err(|_| FormatError::damaged("encryptionNonce is not 24 bytes"))?;
    let sealed = base64("encryptedData", &file.encrypted_data)?;
    if sealed.len() < crate::secretstream::A_BYTES {
        return Err(FormatError::damaged("encryptedData is truncated"));
    }
    let key = argon2id_sodium(
        password_bytes(password),
        &salt,
        file.kdf_params.mem_limit,
        file.kdf_params.ops_limit,
    )?;
    let mut stream = State::new(&key, &header);
    let (plain, _tag) = stream
        .pull(&sealed, &[])
        .map_err(|_| FormatError::WrongPasswordOrDamaged)?;
    let mut report = ImportReport::default();
    otpauth::read_lines(text("the decrypted export", &plain)?, &mut report)?;
    Ok(report)
}

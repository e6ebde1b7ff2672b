//! Hardware OTP token seed files for mamori's token inventory.
//!
//! Token vendors ship the secrets ("seeds") of their HOTP and TOTP tokens as a **PSKC** file
//! ([RFC 6030]): plaintext, encrypted with a pre-shared AES key (section 6.1, with an HMAC
//! `ValueMAC` per value), or encrypted with a key derived from a password by PBKDF2
//! (section 6.2). Some also ship, or administrators write, a simple CSV:
//! `serial,secret_hex,type,digits,period_or_counter`. [`parse_pskc`] and [`parse_csv`] turn
//! either into a list of [`Token`]s.
//!
//! **A file is taken whole or not at all.** Any problem anywhere in it (a wrong key or
//! password, a MAC mismatch, malformed XML, an unsupported algorithm, a duplicate serial, a
//! missing secret, digits out of range, a bad CSV row) returns one [`PskcError`] naming the key
//! package or line and the field at fault, and no tokens at all.
//!
//! **This crate is pure.** It takes bytes and returns values: no files, no network, no clock.
//! Secrets stay in [`mamori_otp::Secret`] (wiped on drop, redacted in `Debug`) and never appear
//! in error messages. Hostile input is bounded: at most [`MAX_INPUT_BYTES`] of input and
//! [`MAX_TOKENS`] tokens, no `DOCTYPE` (so no entity expansion of any kind), bounded nesting,
//! and a ceiling on the PBKDF2 work a file may ask for ([`MAX_PBKDF2_ITERATIONS`]).
//!
//! See `docs/pskc.md` for the supported subset of the format.
//!
//! [RFC 6030]: https://www.rfc-editor.org/rfc/rfc6030
#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![warn(missing_docs)]

use std::fmt;

use mamori_otp::{OtpParams, Secret};
use zeroize::Zeroizing;

mod crypto;
mod csv;
mod error;
mod pskc;
mod xml;

pub use crate::csv::parse_csv;
pub use crate::error::{Location, PskcError};
pub use crate::pskc::{parse_pskc, MAX_PBKDF2_ITERATIONS};
pub use crate::xml::{MAX_DEPTH, MAX_ELEMENTS_PER_CHILD};

/// Largest input accepted, in bytes (16 MiB: about 40,000 RFC-style key packages).
pub const MAX_INPUT_BYTES: usize = 16 * 1024 * 1024;

/// Most tokens accepted from one file.
pub const MAX_TOKENS: usize = 100_000;

/// Longest secret accepted, in bytes (HMAC-SHA-512's block is 128; real seeds are 16 to 64).
pub const MAX_SECRET_BYTES: usize = 256;

/// Longest serial number accepted, in characters.
pub const MAX_SERIAL_CHARS: usize = 128;

/// One hardware token read from a seed file.
///
/// `Debug` shows everything except the secret.
#[derive(Clone)]
#[non_exhaustive]
pub struct Token {
    /// The serial number printed on the device (PSKC `DeviceInfo/SerialNo`, or the `Key`'s
    /// `Id` when the file gives no serial). Unique within one file.
    pub serial: String,
    /// PSKC `DeviceInfo/Manufacturer`.
    pub manufacturer: Option<String>,
    /// PSKC `DeviceInfo/Model`.
    pub model: Option<String>,
    /// PSKC `Key/Issuer`.
    pub issuer: Option<String>,
    /// PSKC `Key/@Id`.
    pub key_id: Option<String>,
    /// The seed.
    pub secret: Secret,
    /// HOTP or TOTP, the hash, the digits, and the period (TOTP) or the next counter (HOTP).
    pub params: OtpParams,
    /// PSKC `Data/TimeDrift`: how many time steps the vendor found the device's clock to be
    /// off, if the file says (RFC 6030's `<TimeDrift>`: a server that established 8 intervals
    /// where the device said 9 records -1).
    pub time_drift: Option<i64>,
    /// PSKC `Data/Time` as written. RFC 6030 leaves its meaning to the algorithm; mamori's
    /// TOTP counts from the Unix epoch (RFC 6238 T0 = 0), so a caller should treat a nonzero
    /// value as something to show an administrator, not as a new T0.
    pub time: Option<i64>,
}

impl Token {
    /// A token with only the essentials; the descriptive fields are `None`. For callers that
    /// build tokens themselves (tests, other import paths).
    pub fn new(serial: impl Into<String>, secret: Secret, params: OtpParams) -> Self {
        Token {
            serial: serial.into(),
            manufacturer: None,
            model: None,
            issuer: None,
            key_id: None,
            secret,
            params,
            time_drift: None,
            time: None,
        }
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("serial", &self.serial)
            .field("manufacturer", &self.manufacturer)
            .field("model", &self.model)
            .field("issuer", &self.issuer)
            .field("key_id", &self.key_id)
            .field(
                "secret",
                &format_args!("[redacted; {} bytes]", self.secret.len()),
            )
            .field("params", &self.params)
            .field("time_drift", &self.time_drift)
            .field("time", &self.time)
            .finish()
    }
}

/// How to decrypt the encrypted values of a PSKC file.
#[derive(Clone, Copy)]
pub enum Decryption<'a> {
    /// The file is expected to be plaintext; an encrypted value is an error.
    None,
    /// RFC 6030 section 6.1: the pre-shared AES key (16 bytes for `aes128-cbc`, 24 or 32 for
    /// `aes192-cbc`/`aes256-cbc`), raw bytes (decode the administrator's hex first).
    PreSharedKey(&'a [u8]),
    /// RFC 6030 section 6.2: the password from which PBKDF2 derives the key, as bytes (UTF-8).
    Password(&'a [u8]),
}

impl fmt::Debug for Decryption<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decryption::None => f.write_str("None"),
            Decryption::PreSharedKey(k) => write!(f, "PreSharedKey([redacted; {} bytes])", k.len()),
            Decryption::Password(_) => f.write_str("Password([redacted])"),
        }
    }
}

/// Decodes a pre-shared AES key typed as hexadecimal (`--psk HEX`): any case, optional `0x`,
/// spaces, colons or dashes between digits; 16, 24 or 32 bytes. The result is wiped on drop.
pub fn decode_psk_hex(text: &str) -> Result<Zeroizing<Vec<u8>>, PskcError> {
    let trimmed = text.trim();
    let body = trimmed
        .strip_prefix("0x")
        .or_else(|| trimmed.strip_prefix("0X"))
        .unwrap_or(trimmed);
    let digits: Zeroizing<Vec<u8>> = Zeroizing::new(
        body.bytes()
            .filter(|b| !b.is_ascii_whitespace() && *b != b':' && *b != b'-')
            .collect(),
    );
    if digits.is_empty() {
        return Err(PskcError::BadPreSharedKey { reason: "is empty" });
    }
    if !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(PskcError::BadPreSharedKey {
            reason: "contains a character that is not a hexadecimal digit",
        });
    }
    let key = data_encoding::HEXLOWER_PERMISSIVE
        .decode(&digits)
        .map_err(|_| PskcError::BadPreSharedKey {
            reason: "has an odd number of hexadecimal digits",
        })?;
    let key = Zeroizing::new(key);
    if !matches!(key.len(), 16 | 24 | 32) {
        return Err(PskcError::BadPreSharedKey {
            reason: "is not 16, 24 or 32 bytes long",
        });
    }
    Ok(key)
}

/// A serial number must be printable and short: it is shown in lists and typed by people.
pub(crate) fn check_serial(serial: &str) -> Result<(), String> {
    if serial.is_empty() {
        return Err("is empty".into());
    }
    if serial.chars().count() > MAX_SERIAL_CHARS {
        return Err(format!("is longer than {MAX_SERIAL_CHARS} characters"));
    }
    if serial.chars().any(char::is_control) {
        return Err("contains control characters".into());
    }
    Ok(())
}

//! Google Authenticator's "Transfer accounts" QR codes: `otpauth-migration://offline?data=BASE64`,
//! where `data` is a protobuf `MigrationPayload`:
//!
//! ```text
//! message MigrationPayload {
//!   repeated OtpParameters otp_parameters = 1;
//!   int32 version = 2; int32 batch_size = 3; int32 batch_index = 4; int32 batch_id = 5;
//! }
//! message OtpParameters {
//!   bytes secret = 1; string name = 2; string issuer = 3;
//!   Algorithm algorithm = 4;  // 0 unspecified, 1 SHA1, 2 SHA256, 3 SHA512, 4 MD5
//!   DigitCount digits = 5;    // 0 unspecified, 1 six, 2 eight
//!   OtpType type = 6;         // 0 unspecified, 1 HOTP, 2 TOTP
//!   int64 counter = 7;
//! }
//! ```
//!
//! Enums are declared as `int32` fields here: the wire encoding is the same varint, and unknown
//! values then reach our code (to be reported per entry) instead of being dropped by a decoder.
//! `batch_id` is often negative, which protobuf writes as a 10-byte varint. The format has no
//! period: every entry is a 30-second TOTP or an HOTP.

use std::fmt;

use data_encoding::{BASE64, BASE64URL_NOPAD, BASE64_NOPAD};
use percent_encoding::{percent_decode_str, utf8_percent_encode, NON_ALPHANUMERIC};
use prost::Message;
use zeroize::Zeroizing;

use crate::{Algorithm, KeyUri, OtpKind, OtpParams, Secret, UriError};

#[derive(Clone, PartialEq, Message)]
struct MigrationPayload {
    #[prost(message, repeated, tag = "1")]
    otp_parameters: Vec<OtpParameters>,
    #[prost(int32, tag = "2")]
    version: i32,
    #[prost(int32, tag = "3")]
    batch_size: i32,
    #[prost(int32, tag = "4")]
    batch_index: i32,
    #[prost(int32, tag = "5")]
    batch_id: i32,
}

#[derive(Clone, PartialEq, Message)]
struct OtpParameters {
    #[prost(bytes = "vec", tag = "1")]
    secret: Vec<u8>,
    #[prost(string, tag = "2")]
    name: String,
    #[prost(string, tag = "3")]
    issuer: String,
    #[prost(int32, tag = "4")]
    algorithm: i32,
    #[prost(int32, tag = "5")]
    digits: i32,
    #[prost(int32, tag = "6")]
    otp_type: i32,
    #[prost(int64, tag = "7")]
    counter: i64,
}

impl Drop for OtpParameters {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.secret);
    }
}

/// An entry of a migration payload that cannot be represented as an mamori account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedEntry {
    /// Position of the entry within its batch, from 0.
    pub index: usize,
    /// "issuer (name)" as far as the payload says.
    pub name: String,
    /// Why it cannot be used.
    pub reason: String,
}

impl fmt::Display for SkippedEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "entry {} ({}): {}",
            self.index + 1,
            self.name,
            self.reason
        )
    }
}

/// One decoded `otpauth-migration://` URI: one batch of an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationBatch {
    /// The accounts that could be decoded, in payload order.
    pub accounts: Vec<KeyUri>,
    /// The entries that could not (MD5, unknown type, empty secret, …), each with its reason.
    pub skipped: Vec<SkippedEntry>,
    /// Payload version (1 in current exports).
    pub version: i32,
    /// How many batches the export has (0 or 1 mean a single batch).
    pub batch_size: i32,
    /// Which batch this is, from 0.
    pub batch_index: i32,
    /// Identifies the export: every batch of one export carries the same id.
    pub batch_id: i32,
}

/// Decodes an `otpauth-migration://offline?data=…` URI.
pub fn decode_uri(input: &str) -> Result<MigrationBatch, UriError> {
    let input = input.trim();
    let (scheme, rest) = input
        .split_once("://")
        .ok_or_else(|| UriError::Syntax("expected otpauth-migration://offline?data=…".into()))?;
    if !scheme.eq_ignore_ascii_case("otpauth-migration") {
        return Err(UriError::Scheme {
            found: scheme.to_string(),
            expected: "otpauth-migration",
        });
    }
    let query = rest.split_once('?').map(|(_, q)| q).unwrap_or("");
    let raw = query
        .split('&')
        .find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.eq_ignore_ascii_case("data").then_some(v)
        })
        .ok_or(UriError::MissingData)?;
    // The Base64 is percent-encoded in the URI ("+" → %2B, "/" → %2F, "=" → %3D). A literal "+"
    // must stay "+" here (it is Base64, not a form-encoded space).
    let b64: Zeroizing<String> = Zeroizing::new(
        percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| UriError::MigrationPayload("data is not valid UTF-8".into()))?
            .chars()
            .map(|c| if c == ' ' { '+' } else { c })
            .collect(),
    );
    let bytes = Zeroizing::new(
        BASE64
            .decode(b64.as_bytes())
            .or_else(|_| BASE64_NOPAD.decode(b64.trim_end_matches('=').as_bytes()))
            .or_else(|_| BASE64URL_NOPAD.decode(b64.trim_end_matches('=').as_bytes()))
            .map_err(|e| {
                UriError::MigrationPayload(format!(
                    "data is not Base64 (at position {})",
                    e.position
                ))
            })?,
    );
    decode_payload(&bytes)
}

/// Most batches one export may declare. The app puts about ten accounts in a batch; this is far
/// above any real export, and stops a hand-made `batch_size` near `i32::MAX` from making
/// [`missing_batches`] list two billion missing batches (found by mamori-fuzz, issue #21).
pub const MAX_BATCH_SIZE: i32 = 1_000;

/// Decodes the protobuf bytes of a migration payload.
pub fn decode_payload(bytes: &[u8]) -> Result<MigrationBatch, UriError> {
    let payload = MigrationPayload::decode(bytes)
        .map_err(|e| UriError::MigrationPayload(format!("not a migration payload: {e}")))?;
    if payload.batch_size > MAX_BATCH_SIZE {
        return Err(UriError::MigrationPayload(format!(
            "batch size {} is more than {MAX_BATCH_SIZE}",
            payload.batch_size
        )));
    }
    let mut accounts = Vec::new();
    let mut skipped = Vec::new();
    for (index, p) in payload.otp_parameters.iter().enumerate() {
        match convert(p) {
            Ok(a) => accounts.push(a),
            Err(reason) => skipped.push(SkippedEntry {
                index,
                name: describe(&p.issuer, &p.name),
                reason,
            }),
        }
    }
    Ok(MigrationBatch {
        accounts,
        skipped,
        version: payload.version,
        batch_size: payload.batch_size,
        batch_index: payload.batch_index,
        batch_id: payload.batch_id,
    })
}

fn describe(issuer: &str, name: &str) -> String {
    match (issuer.is_empty(), name.is_empty()) {
        (false, false) => format!("{issuer} ({name})"),
        (false, true) => issuer.to_string(),
        (true, false) => name.to_string(),
        (true, true) => "unnamed".to_string(),
    }
}

fn convert(p: &OtpParameters) -> Result<KeyUri, String> {
    let algorithm = match p.algorithm {
        0 | 1 => Algorithm::Sha1,
        2 => Algorithm::Sha256,
        3 => Algorithm::Sha512,
        4 => return Err("uses MD5, which mamori does not support".into()),
        n => return Err(format!("unknown algorithm {n}")),
    };
    let digits = match p.digits {
        0 | 1 => 6,
        2 => 8,
        n => return Err(format!("unknown digit count {n}")),
    };
    let kind = match p.otp_type {
        0 | 2 => OtpKind::Totp,
        1 => OtpKind::Hotp,
        n => return Err(format!("unknown OTP type {n}")),
    };
    let counter = if kind == OtpKind::Hotp {
        u64::try_from(p.counter).map_err(|_| format!("negative HOTP counter {}", p.counter))?
    } else {
        0
    };
    let secret = Secret::from_bytes(p.secret.clone()).map_err(|e| e.to_string())?;
    // Google writes the label into `name`, often as "Issuer:account".
    let issuer = (!p.issuer.trim().is_empty()).then(|| p.issuer.trim().to_string());
    let account = match (p.name.split_once(':'), &issuer) {
        (Some((prefix, rest)), Some(i)) if prefix.trim() == i => rest.trim().to_string(),
        (Some((prefix, rest)), None) if !prefix.trim().is_empty() => {
            return Ok(KeyUri {
                issuer: Some(prefix.trim().to_string()),
                account: rest.trim().to_string(),
                secret,
                params: OtpParams {
                    kind,
                    algorithm,
                    digits,
                    period: 30,
                    counter,
                },
            })
        }
        _ => p.name.trim().to_string(),
    };
    Ok(KeyUri {
        issuer,
        account,
        secret,
        params: OtpParams {
            kind,
            algorithm,
            digits,
            period: 30,
            counter,
        },
    })
}

/// Why an account cannot be written into a migration payload, or `None` if it can.
pub fn unrepresentable(account: &KeyUri) -> Option<&'static str> {
    let p = &account.params;
    match p.kind {
        OtpKind::Steam => Some("Steam accounts cannot be carried by Google Authenticator exports"),
        OtpKind::Totp if p.period != 30 => {
            Some("only 30-second periods can be carried by Google Authenticator exports")
        }
        _ if !(p.digits == 6 || p.digits == 8) => {
            Some("only 6 or 8 digits can be carried by Google Authenticator exports")
        }
        OtpKind::Hotp if i64::try_from(p.counter).is_err() => {
            Some("the HOTP counter is too large for a Google Authenticator export")
        }
        _ => None,
    }
}

/// The result of [`encode`]: the URIs to show as QR codes, and what was left out.
#[derive(Debug)]
pub struct Encoded {
    /// One `otpauth-migration://` URI per batch (each wiped on drop: they contain secrets).
    pub uris: Vec<Zeroizing<String>>,
    /// Accounts that cannot be represented, by index into the input, with the reason.
    pub skipped: Vec<(usize, &'static str)>,
}

/// Largest URI put into one batch. A version-25 QR code at error-correction level L holds
/// about 1,800 bytes; keeping each code near 1,000 characters keeps the modules large enough
/// to scan from a laptop screen with an average phone camera.
pub const MAX_BATCH_URI_LEN: usize = 1000;

/// Most accounts in one batch (Google Authenticator itself puts 10 in a code).
pub const MAX_BATCH_ACCOUNTS: usize = 10;

/// Encodes accounts into as many batches as needed, each small enough to scan from a screen.
/// `batch_id` identifies the export (callers pass a random value).
pub fn encode(accounts: &[KeyUri], batch_id: i32) -> Encoded {
    let mut skipped = Vec::new();
    let mut params = Vec::new();
    for (i, a) in accounts.iter().enumerate() {
        if let Some(reason) = unrepresentable(a) {
            skipped.push((i, reason));
            continue;
        }
        let p = &a.params;
        params.push(OtpParameters {
            secret: a.secret.as_bytes().to_vec(),
            name: a.account.clone(),
            issuer: a.issuer.clone().unwrap_or_default(),
            algorithm: match p.algorithm {
                Algorithm::Sha1 => 1,
                Algorithm::Sha256 => 2,
                Algorithm::Sha512 => 3,
            },
            digits: if p.digits == 8 { 2 } else { 1 },
            otp_type: if p.kind == OtpKind::Hotp { 1 } else { 2 },
            counter: i64::try_from(p.counter).unwrap_or(0),
        });
    }

    // Greedy packing by encoded size; then write the batch count into every batch.
    let mut batches: Vec<Vec<OtpParameters>> = Vec::new();
    let mut current: Vec<OtpParameters> = Vec::new();
    for p in params {
        let mut trial = current.clone();
        trial.push(p.clone());
        let fits =
            trial.len() <= MAX_BATCH_ACCOUNTS && uri_len(&trial, batch_id) <= MAX_BATCH_URI_LEN;
        if fits || current.is_empty() {
            current = trial;
        } else {
            batches.push(std::mem::take(&mut current));
            current.push(p);
        }
    }
    if !current.is_empty() || batches.is_empty() {
        batches.push(current);
    }
    let total = i32::try_from(batches.len()).unwrap_or(i32::MAX);
    let uris = batches
        .into_iter()
        .enumerate()
        .map(|(i, otp_parameters)| {
            to_uri(&MigrationPayload {
                otp_parameters,
                version: 1,
                batch_size: total,
                batch_index: i32::try_from(i).unwrap_or(i32::MAX),
                batch_id,
            })
        })
        .collect();
    Encoded { uris, skipped }
}

fn uri_len(params: &[OtpParameters], batch_id: i32) -> usize {
    to_uri(&MigrationPayload {
        otp_parameters: params.to_vec(),
        version: 1,
        batch_size: 99,
        batch_index: 99,
        batch_id,
    })
    .len()
}

fn to_uri(payload: &MigrationPayload) -> Zeroizing<String> {
    let bytes = Zeroizing::new(payload.encode_to_vec());
    let b64 = Zeroizing::new(BASE64.encode(&bytes));
    Zeroizing::new(format!(
        "otpauth-migration://offline?data={}",
        utf8_percent_encode(&b64, NON_ALPHANUMERIC)
    ))
}

/// Checks a set of batches for completeness: returns the missing batch indexes (from 0) of each
/// export id seen, as `(batch_id, batch_size, missing)`, for exports with at least one missing.
pub fn missing_batches(batches: &[MigrationBatch]) -> Vec<(i32, i32, Vec<i32>)> {
    let mut ids: Vec<i32> = batches.iter().map(|b| b.batch_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut out = Vec::new();
    for id in ids {
        let of_id: Vec<&MigrationBatch> = batches.iter().filter(|b| b.batch_id == id).collect();
        // Clamped as well: a caller may build batches by hand, past decode_payload's check.
        let size = of_id
            .iter()
            .map(|b| b.batch_size)
            .max()
            .unwrap_or(1)
            .clamp(1, MAX_BATCH_SIZE);
        let missing: Vec<i32> = (0..size)
            .filter(|i| !of_id.iter().any(|b| b.batch_index == *i))
            .collect();
        if !missing.is_empty() {
            out.push((id, size, missing));
        }
    }
    out
}

/// Builds raw payload bytes from parts, for tests and fixtures that need entries this crate
/// would refuse to encode (MD5, unknown enums). Each tuple is
/// `(secret, name, issuer, algorithm, digits, type, counter)` with the protobuf enum numbers.
#[doc(hidden)]
#[allow(clippy::type_complexity)]
pub fn raw_payload(
    entries: &[(&[u8], &str, &str, i32, i32, i32, i64)],
    batch_size: i32,
    batch_index: i32,
    batch_id: i32,
) -> Vec<u8> {
    MigrationPayload {
        otp_parameters: entries
            .iter()
            .map(|(s, n, i, a, d, t, c)| OtpParameters {
                secret: s.to_vec(),
                name: n.to_string(),
                issuer: i.to_string(),
                algorithm: *a,
                digits: *d,
                otp_type: *t,
                counter: *c,
            })
            .collect(),
        version: 1,
        batch_size,
        batch_index,
        batch_id,
    }
    .encode_to_vec()
}

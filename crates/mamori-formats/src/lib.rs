//! Moving accounts in and out of mamori: readers for other authenticators' export files and
//! writers for the formats phones and backups can read back.
//!
//! | format | import | export |
//! |---|---|---|
//! | `otpauth` (one URI per line) | yes | [`export_otpauth`] |
//! | `google-migration` (Google Authenticator "Transfer accounts" QR codes) | text or PNG/JPEG, several inputs, missing batches reported | [`export_google_migration`] (PNG QR codes) |
//! | `aegis` (vault JSON, plain or encrypted, content versions 1–3) | yes | [`export_aegis`] |
//! | `2fas` (`.2fas`, schema 1–4, plain or encrypted) | yes | — |
//! | `andotp` (plain JSON, encrypted, old encrypted) | yes | — |
//! | `bitwarden` (JSON or CSV) | yes | — |
//! | `ente` (plain text or encrypted JSON) | yes | — |
//! | `freeotp-plus` (JSON) | yes | — |
//! | `html` (printable paper backup) | — | [`export_html`] |
//!
//! Each reader follows the format's published description (cited in its module and in
//! `docs/formats.md`). A wrong password or a damaged file is an error and yields nothing; an
//! entry that cannot be used (MD5, an unknown type, an empty secret, bad digits…) is listed in
//! [`ImportReport::unusable`] with its reason while the other entries import.
//!
//! The crate does no file I/O and reads no clock; randomness (for encrypted exports) is a
//! parameter. Secrets never appear in error messages or `Debug` output.
#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![warn(missing_docs)]

use std::fmt;
use std::str::FromStr;

pub use secrecy::SecretString;

mod account;
mod aegis;
mod andotp;
mod bitwarden;
mod crypto;
mod ente;
mod error;
mod freeotp;
mod google;
mod html;
mod otpauth;
pub mod secretstream;
mod twofas;

pub use account::{is_duplicate, split_duplicates, Account};
pub use aegis::{export_aegis, export_aegis_with, AegisKdf};
pub use error::FormatError;
pub use google::{export_google_migration, import_google_migration, GoogleExport};
pub use html::export_html;
pub use otpauth::export_otpauth;

/// Largest input accepted by any reader, in bytes (an Aegis vault with icons for a thousand
/// accounts stays well below it).
pub const MAX_INPUT_BYTES: usize = 64 * 1024 * 1024;

/// Most entries accepted from one import.
pub const MAX_ENTRIES: usize = 10_000;

/// A format that can be imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `otpauth://` URIs, one per line.
    Otpauth,
    /// Google Authenticator's `otpauth-migration://` export, as text or QR images.
    GoogleMigration,
    /// Aegis vault JSON, plain or encrypted.
    Aegis,
    /// 2FAS `.2fas` backup, plain or encrypted.
    TwoFas,
    /// andOTP JSON backup, plain or encrypted.
    AndOtp,
    /// Bitwarden unencrypted JSON or CSV export.
    Bitwarden,
    /// Ente Auth plain text or encrypted export.
    Ente,
    /// FreeOTP+ JSON export.
    FreeOtpPlus,
}

const FORMAT_NAMES: &str =
    "otpauth, google-migration, aegis, 2fas, andotp, bitwarden, ente, freeotp-plus";

impl Format {
    /// Every importable format.
    pub const ALL: [Format; 8] = [
        Format::Otpauth,
        Format::GoogleMigration,
        Format::Aegis,
        Format::TwoFas,
        Format::AndOtp,
        Format::Bitwarden,
        Format::Ente,
        Format::FreeOtpPlus,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::Otpauth => "otpauth",
            Format::GoogleMigration => "google-migration",
            Format::Aegis => "aegis",
            Format::TwoFas => "2fas",
            Format::AndOtp => "andotp",
            Format::Bitwarden => "bitwarden",
            Format::Ente => "ente",
            Format::FreeOtpPlus => "freeotp-plus",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = FormatError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        Format::ALL
            .into_iter()
            .find(|f| f.name() == wanted)
            .ok_or_else(|| FormatError::UnknownFormat(s.to_string(), FORMAT_NAMES))
    }
}

/// A format that can be exported by this crate. (The `mamori` encrypted backup is the vault
/// file format and lives in `mamori-vault`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportFormat {
    /// `otpauth://` URIs, one per line ([`export_otpauth`]).
    Otpauth,
    /// Google Authenticator migration QR codes ([`export_google_migration`]).
    GoogleMigration,
    /// Aegis vault JSON ([`export_aegis`]).
    Aegis,
    /// A printable HTML page ([`export_html`]).
    Html,
}

const EXPORT_NAMES: &str = "otpauth, google-migration, aegis, html";

impl ExportFormat {
    /// Every export format of this crate.
    pub const ALL: [ExportFormat; 4] = [
        ExportFormat::Otpauth,
        ExportFormat::GoogleMigration,
        ExportFormat::Aegis,
        ExportFormat::Html,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::Otpauth => "otpauth",
            ExportFormat::GoogleMigration => "google-migration",
            ExportFormat::Aegis => "aegis",
            ExportFormat::Html => "html",
        }
    }

    /// Whether the output can contain secrets in plaintext (everything except an encrypted
    /// Aegis export): the CLI asks for `--plaintext` and writes such files with mode 0600.
    pub fn is_plaintext(self, encrypted: bool) -> bool {
        !(self == ExportFormat::Aegis && encrypted)
    }
}

impl fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ExportFormat {
    type Err = FormatError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        ExportFormat::ALL
            .into_iter()
            .find(|f| f.name() == wanted)
            .ok_or_else(|| FormatError::UnknownFormat(s.to_string(), EXPORT_NAMES))
    }
}

/// An entry that could not be imported, and why. Never contains the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unusable {
    /// How the entry is named in the file ("Issuer (account)", or "line 3" when unreadable).
    pub name: String,
    /// Why it cannot be used.
    pub reason: String,
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.reason)
    }
}

/// What an import found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// The usable accounts, in file order. Duplicates are not removed here (see
    /// [`is_duplicate`]): the caller decides against its own vault.
    pub accounts: Vec<Account>,
    /// Entries that cannot be used, each with its reason.
    pub unusable: Vec<Unusable>,
    /// Remarks about the input as a whole, e.g. "batch 2 of 3 of export 1234 is missing".
    pub notes: Vec<String>,
}

impl ImportReport {
    pub(crate) fn push_unusable(&mut self, name: impl Into<String>, reason: impl Into<String>) {
        self.unusable.push(Unusable {
            name: name.into(),
            reason: reason.into(),
        });
    }

    pub(crate) fn check_count(&self) -> Result<(), FormatError> {
        check_count(self.accounts.len() + self.unusable.len())
    }
}

pub(crate) fn check_count(n: usize) -> Result<(), FormatError> {
    if n > MAX_ENTRIES {
        return Err(FormatError::TooLarge {
            what: "number of entries",
            limit: MAX_ENTRIES as u64,
        });
    }
    Ok(())
}

/// Reads one export file of `format`. `password` is used only by encrypted files; an
/// encrypted file without one gives [`FormatError::PasswordRequired`], so a caller can try
/// without first and prompt only when needed.
///
/// For Google Authenticator exports spread over several files use
/// [`import_google_migration`].
pub fn import(
    format: Format,
    input: &[u8],
    password: Option<&SecretString>,
) -> Result<ImportReport, FormatError> {
    check_size(input)?;
    let report = match format {
        Format::Otpauth => otpauth::import(input)?,
        Format::GoogleMigration => google::import_google_migration(&[input])?,
        Format::Aegis => aegis::import(input, password)?,
        Format::TwoFas => twofas::import(input, password)?,
        Format::AndOtp => andotp::import(input, password)?,
        Format::Bitwarden => bitwarden::import(input)?,
        Format::Ente => ente::import(input, password)?,
        Format::FreeOtpPlus => freeotp::import(input)?,
    };
    report.check_count()?;
    Ok(report)
}

pub(crate) fn check_size(input: &[u8]) -> Result<(), FormatError> {
    if input.len() > MAX_INPUT_BYTES {
        return Err(FormatError::TooLarge {
            what: "input size in bytes",
            limit: MAX_INPUT_BYTES as u64,
        });
    }
    Ok(())
}

/// Decodes text input: UTF-8, with a byte-order mark tolerated.
pub(crate) fn text<'a>(part: &str, input: &'a [u8]) -> Result<&'a str, FormatError> {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    std::str::from_utf8(input).map_err(|e| {
        FormatError::damaged(format!(
            "{part} is not UTF-8 text (at byte {})",
            e.valid_up_to()
        ))
    })
}

/// Strips a UTF-8 byte-order mark (some Windows tools write one before JSON).
pub(crate) fn strip_bom(input: &[u8]) -> &[u8] {
    input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input)
}

/// The password as bytes (UTF-8, as every supported app derives keys from it).
pub(crate) fn password_bytes(password: &SecretString) -> &[u8] {
    use secrecy::ExposeSecret;
    password.expose_secret().as_bytes()
}

/// ASCII-case-insensitive prefix test that never splits a character.
pub(crate) fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

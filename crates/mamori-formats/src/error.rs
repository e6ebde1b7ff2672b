use thiserror::Error;

/// Why an import or export failed as a whole. When an import returns one of these, nothing was
/// imported. Messages never contain secrets, passwords or file contents.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormatError {
    /// The file is encrypted and no password was given.
    #[error("the file is encrypted: give its password (--password-file)")]
    PasswordRequired,
    /// The format checks the password separately (Aegis key slots, the 2FAS `reference`
    /// field) and the password given does not open it.
    #[error("wrong password: nothing was imported")]
    WrongPassword,
    /// The format has no separate password check (andOTP, Ente): authenticated decryption
    /// failed, which means either a wrong password or altered ciphertext.
    #[error("could not decrypt the file: the password is wrong or the file is damaged; nothing was imported")]
    WrongPasswordOrDamaged,
    /// The file is truncated or malformed; `what` names the part at fault.
    #[error("the file is damaged: {what}; nothing was imported")]
    Damaged {
        /// Which part of the file is wrong, e.g. "db: not valid Base64".
        what: String,
    },
    /// A version number this reader does not know.
    #[error("unsupported {what} version {version}")]
    UnsupportedVersion {
        /// Which version field, e.g. "Aegis vault content".
        what: &'static str,
        /// The version found in the file.
        version: String,
    },
    /// A well-formed file of a kind this reader cannot use (e.g. a Bitwarden export
    /// encrypted with the account key); the message says what to do instead.
    #[error("{0}")]
    Unsupported(String),
    /// An input, a count or a field exceeds a limit of this crate.
    #[error("{what} exceeds the limit of {limit}")]
    TooLarge {
        /// What is too large, e.g. "input size in bytes".
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// Key-derivation parameters stored in the file are outside the range this crate accepts
    /// (a hostile file could otherwise demand gigabytes of memory or hours of work).
    #[error("the file's key-derivation parameters are out of range: {0}")]
    KdfParameters(String),
    /// A format name that is not one of the supported ones.
    #[error("unknown format {0:?}: use one of {1}")]
    UnknownFormat(String, &'static str),
    /// An export could not be produced (e.g. an account too long for a QR code).
    #[error("cannot export: {0}")]
    Export(String),
}

impl FormatError {
    pub(crate) fn damaged(what: impl Into<String>) -> Self {
        FormatError::Damaged { what: what.into() }
    }
}

/// Describes a JSON error by its category and position only: serde's own messages can quote
/// the offending value, which may be a secret.
pub(crate) fn json_error(part: &str, e: &serde_json::Error) -> FormatError {
    use serde_json::error::Category;
    let kind = match e.classify() {
        Category::Io => "could not be read",
        Category::Syntax => "is not valid JSON",
        Category::Data => "does not have the expected structure",
        Category::Eof => "ends early (truncated)",
    };
    // "missing field `x`" names a field, never a value: safe and useful to show.
    let msg = e.to_string();
    let detail = match msg.split_once(" at line") {
        Some((m, _)) if m.starts_with("missing field") => format!(": {m}"),
        _ => String::new(),
    };
    FormatError::damaged(format!(
        "{part} {kind}{detail} (line {}, column {})",
        e.line(),
        e.column()
    ))
}

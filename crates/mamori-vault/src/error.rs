use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong with a vault. Messages name the file and say what to do; they
/// never contain a secret, a password or key material.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The file does not start with the vault magic bytes.
    #[error("{0} is not a mamori vault (wrong magic bytes)")]
    NotAVault(PathBuf),
    /// The file was written by a newer (or unknown) format version.
    #[error("{path} uses vault format version {found}, which this mamori does not know (it reads version {supported}); upgrade mamori")]
    UnsupportedVersion {
        /// The vault file.
        path: PathBuf,
        /// The version in the file.
        found: u16,
        /// The version this build reads.
        supported: u16,
    },
    /// The file ends before its header or its ciphertext does.
    #[error(
        "{0} is truncated (shorter than its header says); restore it from {0}.bak or a backup"
    )]
    Truncated(PathBuf),
    /// The header checksum or the ciphertext's authentication tag does not match: the file was
    /// corrupted or modified.
    #[error("{0} is damaged or was tampered with (authentication failed); restore it from {0}.bak or a backup")]
    Tampered(PathBuf),
    /// The key-encryption key derived from the password does not unwrap the data key.
    #[error("wrong password for {0}")]
    WrongPassword(PathBuf),
    /// A data key (e.g. from the unlock agent) that does not belong to this vault.
    #[error("the unlocked key does not open {0}; run `mamori lock` and try again")]
    WrongKey(PathBuf),
    /// The vault file does not exist.
    #[error("no vault at {0}; create one with `mamori init`")]
    NotFound(PathBuf),
    /// `create` found a file already there.
    #[error("a vault already exists at {0}; use it, or choose another path with --vault")]
    AlreadyExists(PathBuf),
    /// Key-derivation parameters outside the accepted range.
    #[error("unsupported key-derivation parameters: {0}")]
    KdfParams(String),
    /// The decrypted payload is not valid (a bug or a hand-made file).
    #[error("{path}: the decrypted contents are invalid: {reason}")]
    Payload {
        /// The vault file.
        path: PathBuf,
        /// What is wrong (never secret material).
        reason: String,
    },
    /// A size or count limit was exceeded.
    #[error("limit exceeded: {0}")]
    Limit(String),
    /// Another process holds the write lock and did not release it in time.
    #[error("{path} is locked by another mamori process{}; wait for it to finish or stop it", holder.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// The pid recorded by the holder, if readable.
        holder: Option<u32>,
    },
    /// No entry matched the query.
    #[error("no account matches {query:?}{}", suggest(nearest))]
    NoMatch {
        /// The query as given.
        query: String,
        /// The nearest account names, best first.
        nearest: Vec<String>,
    },
    /// Several entries matched the query.
    #[error("{query:?} matches {} accounts: {}; be more precise", candidates.len(), candidates.join(", "))]
    Ambiguous {
        /// The query as given.
        query: String,
        /// The names of the matching accounts.
        candidates: Vec<String>,
    },
    /// Adding an entry that is already in the vault (same secret, issuer and account).
    #[error("{0} is already in the vault")]
    Duplicate(String),
    /// An entry field that is not acceptable (empty name, bad parameters, too long).
    #[error("invalid entry: {0}")]
    InvalidEntry(String),
    /// An error from the OTP core (bad parameters, counter overflow).
    #[error(transparent)]
    Otp(#[from] mamori_otp::OtpError),
    /// The unlock agent misbehaved or could not be reached.
    #[error("unlock agent: {0}")]
    Agent(String),
    /// An operating-system error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

fn suggest(nearest: &[String]) -> String {
    if nearest.is_empty() {
        "; see `mamori list`".to_string()
    } else {
        format!("; did you mean {}?", nearest.join(", "))
    }
}

impl VaultError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        VaultError::Io {
            path: path.into(),
            source,
        }
    }
}

//! The module's errors. None of them carries the code, the password or the application key.

use thiserror::Error;

/// The configuration file or the module's arguments are wrong.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {0}: {1}")]
    Read(String, #[source] std::io::Error),
    #[error("{0} must be owned by root")]
    NotOwnedByRoot(String),
    #[error("{0} is readable by others (mode {1:04o}); it holds the application key: chmod 600")]
    TooOpen(String, u32),
    #[error("{0} is larger than 64 KiB")]
    TooLarge(String),
    #[error("line {0}: expected `key = value`")]
    Syntax(usize),
    #[error("line {0}: {1} is set twice")]
    Duplicate(usize, String),
    #[error("line {0}: unknown setting {1}")]
    UnknownKey(usize, String),
    #[error("line {0}: {1} must be {2}")]
    Value(usize, String, String),
    #[error("the setting {0} is missing")]
    Missing(&'static str),
    #[error("unknown module argument {0} (known: config=PATH, code_in_password)")]
    UnknownArgument(String),
}

/// Asking the server failed (as opposed to the server answering "reject").
#[derive(Debug, Error)]
pub enum ClientError {
    /// No answer: connection refused, name not resolved, TLS failure, timeout. The stack may
    /// treat this as `authinfo_unavail`.
    #[error("server unreachable: {0}")]
    Unreachable(String),
    /// The server refused the request itself (401 invalid_app_key, 429 rate_limited, 5xx...).
    #[error("server answered {status} {code}")]
    Refused { status: u16, code: String },
    /// A 200 whose body is not a validate answer.
    #[error("server answered something that is not a validate answer")]
    BadAnswer,
    #[error("cannot read the CA file {0}: {1}")]
    CaFile(String, String),
}

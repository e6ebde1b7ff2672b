//! The crate's one error type. Messages never contain a secret, a key or a token.

use thiserror::Error;

/// Everything that can go wrong while syncing. Each message is one line saying what happened
/// and, where there is something to do, what.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The server could not be reached or the connection failed.
    #[error("cannot reach the sync server {url}: {reason}")]
    Network {
        /// Server URL.
        url: String,
        /// What failed (no secrets).
        reason: String,
    },
    /// The server answered with an error.
    #[error("the sync server refused: {message} ({code}, HTTP {status})")]
    Server {
        /// HTTP status.
        status: u16,
        /// The API's error code.
        code: String,
        /// The API's message.
        message: String,
    },
    /// The server answered something that is not the protocol.
    #[error("the sync server sent an invalid answer: {0}")]
    Protocol(String),
    /// An item failed authentication: the server (or something between) modified it.
    #[error("item {id} from the server failed authentication (modified or misplaced ciphertext); refusing to sync, nothing was changed locally")]
    Tampered {
        /// Item id.
        id: String,
    },
    /// The server served an older revision of an item than this device has already seen.
    #[error("the server sent revision {got} of item {id} but this device already saw revision {seen} (replayed or rolled back); refusing to sync, nothing was changed locally")]
    Replayed {
        /// Item id.
        id: String,
        /// Revision already seen.
        seen: i64,
        /// Revision served.
        got: i64,
    },
    /// The passphrase does not unwrap the sync key.
    #[error("wrong sync passphrase (or the stored key wrap was modified)")]
    WrongPassphrase,
    /// The recovery key is mistyped or does not unwrap the sync key.
    #[error("{0}")]
    RecoveryKey(String),
    /// This vault has no sync set up.
    #[error("sync is not set up for this vault: run `mamori sync setup` or `mamori sync join`")]
    NotSetUp,
    /// Sync is already set up (locally, or on the server for `setup`).
    #[error("{0}")]
    AlreadySetUp(String),
    /// Invalid input (a name, a URL, a passphrase).
    #[error("{0}")]
    InvalidInput(String),
    /// The local sync state file is damaged or does not belong to this vault.
    #[error("the sync state file {path} is unreadable: {reason}")]
    State {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The vault changed while syncing.
    #[error(
        "the vault changed during the sync; nothing was merged locally, run `mamori sync` again"
    )]
    VaultChanged,
    /// Pushes kept conflicting with other devices' pushes.
    #[error("other devices kept changing the same accounts; run `mamori sync` again")]
    TooManyConflicts,
    /// A vault error.
    #[error(transparent)]
    Vault(#[from] mamori_vault::VaultError),
}

impl SyncError {
    /// Whether the error means the device token is no longer valid (revoked device).
    pub fn is_unauthenticated(&self) -> bool {
        matches!(self, SyncError::Server { status: 401, .. })
    }
}

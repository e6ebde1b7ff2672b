//! End-to-end-encrypted multi-device sync for the mamori authenticator (docs/sync-protocol.md).
//!
//! - [`crypto`]: the key hierarchy (random sync key; its wraps under Argon2id of the passphrase
//!   and under the recovery key) and item encryption with XChaCha20-Poly1305, the associated
//!   data binding account, item, revision and deleted flag.
//! - [`merge`]: the merge rules as pure functions (last writer wins by stamp, tombstones, HOTP
//!   counters by maximum).
//! - [`state`]: this device's sync state, encrypted next to the vault.
//! - [`client`]: the blocking HTTP client of the server's sign-in and sync API.
//! - [`engine`]: setup, join, a sync round and passphrase change.
//!
//! The server sees only ciphertext, sizes and times. The library never reads the clock and
//! never picks its own randomness: callers pass `now` (Unix seconds) and a CSPRNG.
#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![warn(missing_docs)]

pub mod client;
pub mod crypto;
pub mod engine;
mod error;
pub mod merge;
pub mod state;

pub use engine::{JoinSecret, Report, SignInDetails};
pub use error::SyncError;

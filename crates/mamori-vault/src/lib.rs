//! The authenticator's data for mamori: entries, the encrypted vault file, and the unlock agent.
//!
//! - [`Vault`] is the decrypted list of [`Entry`]s and the rules for changing it (no I/O).
//! - [`format`] turns a vault into file bytes and back: Argon2id derives a key-encryption key that
//!   wraps a random data key; XChaCha20-Poly1305 encrypts the entries with the header as
//!   associated data (docs/vault-format.md).
//! - [`VaultFile`] reads and atomically replaces the file under a write lock.
//! - [`agent`] is the unlock agent's protocol, server and client.
//!
//! The library never reads the clock and never picks its own randomness: callers pass `now`
//! (Unix seconds) and a CSPRNG.
#![deny(unsafe_code)] // `forbid` except in `sys`, whose two calls carry their safety proofs.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![warn(missing_docs)]

mod atomic;
mod entry;
mod error;
pub mod format;
mod query;
mod store;
mod sync;
mod vault;

pub use atomic::atomic_write;
pub use entry::{Entry, NewEntry, MAX_FIELD_LEN, MAX_SECRET_LEN, MAX_TAGS};
pub use error::VaultError;
pub use format::{DataKey, Header, KdfParams};
pub use store::{Opened, Unlock, VaultFile, WriteLock};
pub use vault::{new_id, AddReport, EntryEdit, Vault, MAX_ENTRIES};
pub mod agent;
mod sys;

//! IAM and STS for the `mamori` command line (#20), on the official AWS SDK for Rust.
//!
//! - [`credentials`]: the profile (`~/.aws/config` and `credentials`, `AWS_PROFILE`, …) with its
//!   `mfa_serial`, `role_arn` and `source_profile`, read by the SDK's own profile parser.
//! - [`Aws`]: one connection (clients for IAM and STS over hyper + rustls on ring, a private
//!   single-threaded runtime, so callers stay synchronous).
//! - [`sts`]: `GetSessionToken` and `AssumeRole` with the device serial and a code.
//! - [`iam`]: the MFA device calls, the user, the account alias, the credential report and the
//!   account summary.
//! - [`cache`]: session credentials sealed under a key derived from the vault's data key, in a file
//!   next to the vault, used until five minutes before they expire.
//! - [`enroll`]: create → keep the seed in the vault → two consecutive codes → enable, removing
//!   the device again if anything fails after it was created.
//! - [`vault`]: which vault entry holds a device's seed, and how a new one is named.
//!
//! No error message of this crate contains a secret: codes, seeds and secret keys are never
//! formatted into one.
#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
// Unit tests state their expectations with panicking assertions and JSON indexing.
#![cfg_attr(test, allow(clippy::indexing_slicing))]

pub mod cache;
mod client;
pub mod credentials;
pub mod enroll;
mod error;
pub mod iam;
pub mod sts;
pub mod vault;

pub use client::Aws;
pub use error::AwsError;

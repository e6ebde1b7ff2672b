//! Security review for mamori: the shape of a finding (shared by the server's deployment checks and
//! the credential-report analysis), and the analysis of a cloud provider's IAM credential report.
//!
//! Pure: functions take bytes and the current time, and return findings. Reading files, printing
//! and exit codes belong to the binaries.
#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![warn(missing_docs)]

pub mod account;
pub mod credential_report;
pub mod deployment;
mod finding;

pub use finding::{Finding, Outcome, Review, Severity};

//! One-time passwords for mamori: HOTP ([RFC 4226]), TOTP ([RFC 6238]) and Steam Guard codes,
//! verification windows that say *which* step matched, the two-consecutive-codes search used to
//! enroll and resync a device, `otpauth://` key URIs, Google Authenticator migration payloads,
//! and QR codes.
//!
//! **This crate is pure.** It does no file or network I/O and never reads the clock: every function
//! that depends on time takes the Unix time as an argument, and secret generation takes a random
//! number generator (with an OS-backed convenience wrapper). Callers own state such as the last
//! accepted time step; this crate only answers questions about codes.
//!
//! [RFC 4226]: https://www.rfc-editor.org/rfc/rfc4226
//! [RFC 6238]: https://www.rfc-editor.org/rfc/rfc6238
#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![warn(missing_docs)]

mod algorithm;
mod error;
pub mod migration;
mod otp;
pub mod qr;
mod secret;
mod uri;
mod verify;

pub use algorithm::Algorithm;
pub use error::{OtpError, UriError};
pub use otp::{Code, Generator, OtpKind, OtpParams, STEAM_ALPHABET};
pub use secret::{Secret, DEFAULT_SECRET_LEN};
pub use uri::KeyUri;
pub use verify::{ConsecutiveMatch, Verification};

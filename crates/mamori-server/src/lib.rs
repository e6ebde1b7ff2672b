//! The mamori account service: accounts that sign in with a password and then a second factor,
//! virtual MFA devices, the validate API for other applications, security alerts and an audit
//! log, stored in SQLite or PostgreSQL.
//!
//! Layers, from the outside in: [`http`] (axum routes that translate and delegate) and [`admin`]
//! (the admin command line) call [`domain`] (the rules: no HTTP, no SQL, no clock, no global
//! randomness), which keeps its state through the [`store::Store`] trait and encrypts OTP secrets
//! with [`keys::ServerKey`].
#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod admin;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod domain;
pub mod error;
pub mod http;
pub mod keys;
pub mod server;
pub mod store;
#[doc(hidden)]
pub mod testing;

pub use error::{Error, Result};

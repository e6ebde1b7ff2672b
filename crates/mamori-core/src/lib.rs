//! The core of the mamori account service: every rule (`domain::Service`), the store behind
//! its trait (`store::Store`, SQLite and PostgreSQL), the server key, the clock seam and the
//! configuration the rules read.
//!
//! This crate knows no HTTP server, no template engine and no command line: those are the
//! edges in `mamori-server` (JSON API, web console, admin CLI), and every edge calls
//! [`domain::Service`]. That the domain does not know HTTP is a fact of this crate's
//! `Cargo.toml` (no axum, askama or clap), checked by the compiler; docs/ARCHITECTURE.md says
//! which invariants are still held by tests.

#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod backup;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod keys;
pub mod redacted;
pub mod store;
#[doc(hidden)]
pub mod testing;

pub use error::{Error, Result};

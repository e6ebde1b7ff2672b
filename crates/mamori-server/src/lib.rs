//! The mamori account service: accounts that sign in with a password and then a second factor,
//! virtual MFA devices, the validate API for other applications, security alerts and an audit
//! log, stored in SQLite or PostgreSQL.
//!
//! This crate holds the edges: [`http`] (axum routes that translate and delegate), [`console`]
//! (the web console) and [`admin`] (the admin command line), and the binary's start-up
//! ([`server`], [`cli`]). They call [`domain`] (the rules: no HTTP, no SQL, no clock, no global
//! randomness), which lives in the `mamori-core` crate with the [`store::Store`] trait and
//! [`keys::ServerKey`]; the core's modules are re-exported here under their old paths.
#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod admin;
pub mod cli;
pub mod console;
pub mod delivery;
pub mod http;
pub mod radius;
pub mod seed_file;
pub mod server;
pub mod web;

#[doc(hidden)]
pub use mamori_core::testing;
pub use mamori_core::{backup, clock, config, domain, error, keys, store};
pub use mamori_core::{Error, Result};

//! Sync tests: real `mamori` devices against a real `mamori-server` process.

#[path = "../support/mod.rs"]
mod support;
mod sync_common;

mod sync_bench;
mod sync_devices;
mod sync_kill;
mod sync_recovery;
mod sync_tls;

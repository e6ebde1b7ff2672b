//! mamori-vault's integration tests in one binary (#16), except crash.rs, which re-runs its own
//! executable and kills it mid-write.

mod common;

mod agent;
mod example_vault;
mod properties;
mod vault_file;

//! mamori-review's integration tests in one binary (#16).

mod account;
mod credential_report;
mod deployment;

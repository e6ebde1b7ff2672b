//! mamori-review's integration tests in one binary (#16).

mod credential_report;
mod deployment;

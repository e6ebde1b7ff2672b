//! The PAM module's integration tests, in one binary: `pamtester` (the module through the real
//! libpam) and `sshd` (a real OpenSSH server asking for the code with keyboard-interactive).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod pamtester;
mod sshd;

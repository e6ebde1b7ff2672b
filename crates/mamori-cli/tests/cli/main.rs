//! The `mamori` binary's tests: each drives the real binary in a sandbox (own vault, HOME, runtime directory; environment cleared).

#[path = "../support/mod.rs"]
mod support;

#[cfg(feature = "aws")]
mod aws_cli;
mod clipboard_x11;
mod otp_cli;
mod otp_oathtool;
mod review_cli;
mod transfer_cli;
mod tui_pty;
mod vault_cli;

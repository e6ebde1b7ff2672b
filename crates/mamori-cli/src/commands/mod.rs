//! One module per command. Each takes its parsed arguments, calls the libraries and prints.

mod otp;

use crate::cli::{Cli, Command};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Otp(args) => otp::run(args),
    }
}

/// Exit codes: 1 for every runtime error. (clap uses 2 for usage errors itself.)
pub fn exit_code(_err: &anyhow::Error) -> u8 {
    1
}

/// Unix time now, for commands that were not given `--at`.
pub fn now_unix() -> anyhow::Result<u64> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| anyhow::anyhow!("the system clock is before 1970; fix the clock"))
}

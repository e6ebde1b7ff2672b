//! One module per command. Each takes its parsed arguments, calls the libraries and prints.

mod agent;
#[cfg(feature = "aws")]
mod aws;
pub mod clipboard;
mod manage;
mod otp;
mod review;
pub mod session;
mod show;
pub mod sync;
mod transfer;

use crate::cli::{Cli, Command};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let g = cli.global;
    match cli.command {
        Command::Otp(args) => otp::run(args),
        Command::Init(args) => manage::init(&g, args),
        Command::Add(args) => manage::add(&g, args),
        Command::List(args) => show::list(&g, args),
        Command::Code(args) => show::code(&g, args),
        Command::ShowQr(args) => show::show_qr(&g, args),
        Command::Remove(args) => manage::remove(&g, args),
        Command::Rename(args) => manage::rename(&g, args),
        Command::Edit(args) => manage::edit(&g, args),
        Command::Passwd(args) => manage::passwd(&g, args),
        Command::Import(args) => transfer::import(&g, args),
        Command::Export(args) => transfer::export(&g, args),
        Command::Review(cmd) => review::run(&g, cmd),
        #[cfg(feature = "aws")]
        Command::Aws(cmd) => aws::run(&g, cmd),
        Command::Sync(args) => sync::run(&g, args),
        Command::Unlock(args) => agent::unlock(&g, args),
        Command::Lock => agent::lock(),
        Command::Tui(args) => crate::tui::run(&g, args),
        Command::Completions(args) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(args.shell, &mut cmd, "mamori", &mut std::io::stdout());
            Ok(())
        }
        Command::Agent(args) => agent::serve(args),
        Command::ClipboardHold(args) => clipboard::hold(args),
    }
}

/// Exit codes (docs/cli.md): 1 for every runtime error and for a review whose high-severity
/// check failed; 4 for a review that could not decide a high-severity check. (clap uses 2 for
/// usage errors itself.)
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.is::<review::HighSeverityUndecidable>() {
        review::EXIT_UNDECIDABLE
    } else {
        1
    }
}

/// Unix time now, for commands that were not given `--at`.
pub fn now_unix() -> anyhow::Result<u64> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| anyhow::anyhow!("the system clock is before 1970; fix the clock"))
}

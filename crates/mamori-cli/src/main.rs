//! `mamori`: the terminal authenticator. This file only parses arguments, dispatches to one
//! command module and turns errors into one line on stderr and an exit code.
#![forbid(unsafe_code)]

mod cli;
mod commands;
mod tui;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line: what is wrong (and, where the error says so, what to do).
            let msg = format!("{err:#}").replace('\n', " ");
            eprintln!("mamori: {msg}");
            ExitCode::from(commands::exit_code(&err))
        }
    }
}

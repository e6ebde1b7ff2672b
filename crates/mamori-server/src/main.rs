//! `mamori-server`: parses the command line and runs the library. Nothing else lives here.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = mamori_server::cli::Cli::parse();
    match mamori_server::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let e = anyhow::Error::from(e);
            eprintln!("mamori-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

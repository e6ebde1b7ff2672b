//! The `mamori-server` command line: flags are parsed here into the library's own types, then
//! [`run`] dispatches to [`crate::server::serve`] or [`crate::admin`].

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::admin::AdminCommand;
use crate::config::{Config, LogFormat, Overrides};
use crate::error::{Error, Result};

/// The mamori account service.
#[derive(Debug, Parser)]
#[command(name = "mamori-server", version, about)]
pub struct Cli {
    /// Options shared by every command.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every command.
#[derive(Debug, Args)]
pub struct Global {
    /// TOML configuration file (also MAMORI_CONFIG).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory: server key and SQLite database (also MAMORI_DATA_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB (also MAMORI_DATABASE).
    #[arg(long, global = true, value_name = "URL")]
    pub database: Option<String>,
    /// Log format: text or json (also MAMORI_LOG_FORMAT).
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<String>,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free one).
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
        /// Public URL used in setup links.
        #[arg(long, value_name = "URL")]
        public_url: Option<String>,
    },
    /// Administration on the database directly.
    #[command(subcommand)]
    Admin(AdminCommand),
}

impl Cli {
    /// The configuration these flags select.
    pub fn config(&self) -> Result<Config> {
        let (listen, public_url) = match &self.command {
            Command::Serve { listen, public_url } => (*listen, public_url.clone()),
            Command::Admin(_) => (None, None),
        };
        let log_format = match &self.global.log_format {
            Some(f) => Some(f.parse::<LogFormat>()?),
            None => None,
        };
        Config::load(&Overrides {
            config_file: self.global.config.clone(),
            listen,
            data_dir: self.global.data_dir.clone(),
            database: self.global.database.clone(),
            public_url,
            log_format,
        })
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MAMORI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Runs a parsed command line to completion.
pub fn run(cli: Cli) -> Result<()> {
    let config = cli.config()?;
    init_logging(config.log_format);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the runtime: {e}")))?;
    rt.block_on(async move {
        match cli.command {
            Command::Serve { .. } => crate::server::serve(config).await,
            Command::Admin(cmd) => {
                let mut out = std::io::stdout();
                crate::admin::run(&config, cmd, &mut out).await
            }
        }
    })
}

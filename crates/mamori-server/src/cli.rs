//! The `mamori-server` command line: flags are parsed here into the library's own types, then
//! [`run`] dispatches to [`crate::server::serve`] or [`crate::admin`].

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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

/// Admin commands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a user and print its one-time setup link.
    CreateUser {
        /// User name.
        name: String,
        /// admin or user.
        #[arg(long, default_value = "user")]
        role: String,
        /// Contact email.
        #[arg(long)]
        email: Option<String>,
        /// Contact phone.
        #[arg(long)]
        phone: Option<String>,
    },
    /// List users with their MFA status.
    ListUsers {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove all MFA devices of a user, unlock the account and end its sessions.
    ResetMfa {
        /// User name.
        user: String,
    },
    /// Create an application key for the validate API (printed once).
    CreateAppKey {
        /// Application name.
        name: String,
        /// Let the key validate root's codes too (by default it answers for root as for an
        /// unknown user, so the application cannot lock root out).
        #[arg(long)]
        allow_root: bool,
    },
    /// List application keys (never the keys themselves).
    ListAppKeys {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an application key: it answers invalid_app_key from then on (on a running
    /// server within 5 seconds).
    RevokeAppKey {
        /// The key's id, or its name when one unrevoked key has it.
        key: String,
    },
    /// Run the security review of this deployment; exits 1 when a high-severity check fails.
    Review {
        /// Print the findings as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print audit events as JSON lines.
    Audit {
        /// Keep printing new events as they happen.
        #[arg(long)]
        follow: bool,
        /// Only events about this user.
        #[arg(long)]
        user: Option<String>,
        /// Only this kind (or kinds starting with it when it ends in '.').
        #[arg(long)]
        kind: Option<String>,
        /// Only events after this id.
        #[arg(long)]
        after: Option<i64>,
    },
    /// Print a new one-time setup link for the root account.
    SetupRoot,
    /// The last resort when root lost every factor: removes root's MFA devices and recovery
    /// codes, ends its sessions, requires enrollment at the next sign-in and prints a one-time
    /// link to choose a password (loudly audited and notified).
    RecoverRoot,
    /// Import hardware OTP tokens from a vendor's seed file (RFC 6030 PSKC or CSV
    /// `serial,secret_hex,type,digits,period_or_counter`): the whole file or nothing.
    ImportTokens {
        /// The seed file.
        file: PathBuf,
        /// Pre-shared AES key of an encrypted PSKC file, in hexadecimal (RFC 6030 section 6.1).
        #[arg(long, value_name = "HEX", conflicts_with = "password_file")]
        psk: Option<String>,
        /// File whose first line is the password of a PBKDF2-protected PSKC file (RFC 6030
        /// section 6.2).
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// pskc or csv (default: guessed from the content).
        #[arg(long, value_name = "FORMAT")]
        format: Option<String>,
    },
    /// List the hardware token inventory and who each token is assigned to.
    ListTokens {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    // #15 delivery
    /// Send a test email through the configured SMTP server and print the outcome in one line;
    /// exits 1 with the reason class (transport, tls, rejected, timeout, not_configured, …)
    /// when it could not be sent. Needs no database.
    TestEmail {
        /// The address to send to.
        address: String,
    },
    /// Send a test text message (or, with --voice, a call) through the configured phone
    /// gateway and print the outcome in one line; exits 1 with the reason class when it could
    /// not be sent. Needs no database.
    TestPhone {
        /// Phone number: +81 90 1234 5678, or as dialled in phone.default_region
        /// (090-1234-5678).
        number: String,
        /// Call the number and read the message out instead of texting it.
        #[arg(long)]
        voice: bool,
    },
    // #15 contacts
    /// Set a user's contact details (root included: usually before anyone else exists), used
    /// to recover the account with alternative factors when its MFA device is lost. Without
    /// --verified the user proves them with a code in the console.
    SetContacts {
        /// User name.
        user: String,
        /// Email address.
        #[arg(long, value_name = "ADDRESS")]
        email: Option<String>,
        /// Phone number: +81 90 1234 5678, or as dialled in phone.default_region
        /// (090-1234-5678); stored in E.164.
        #[arg(long, value_name = "NUMBER")]
        phone: Option<String>,
        /// Mark the values as proven (the operator on the server host vouches for them).
        #[arg(long)]
        verified: bool,
    },
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

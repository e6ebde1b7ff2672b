//! The command-line contract (see docs/cli.md and ../shared/design.md). Scripts depend on it:
//! change it only compatibly.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// mamori: a terminal authenticator (TOTP/HOTP/Steam) with an encrypted vault.
#[derive(Debug, Parser)]
#[command(name = "mamori", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print one code without a vault, like oathtool (stateless).
    ///
    /// Either give an otpauth:// URI, or --secret with the parameters. Prints the code and
    /// nothing else on stdout.
    Otp(OtpArgs),
}

/// How `--secret` is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SecretEncoding {
    /// RFC 4648 Base32 (case, spaces, dashes and padding do not matter).
    Base32,
    /// Hexadecimal, as oathtool takes it by default.
    Hex,
    /// Base64 (Steam's shared_secret).
    Base64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TypeArg {
    Totp,
    Hotp,
    Steam,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["uri", "secret"])))]
pub struct OtpArgs {
    /// An otpauth:// key URI (use "-" to read it from standard input, which keeps it out of
    /// the process list).
    #[arg(value_name = "URI", conflicts_with_all = ["secret", "otp_type", "algorithm", "digits", "period", "encoding"])]
    pub uri: Option<String>,

    /// The shared secret (use "-" to read it from standard input).
    #[arg(long, value_name = "SECRET")]
    pub secret: Option<String>,

    /// How the secret is written.
    #[arg(long, value_enum, default_value = "base32", requires = "secret")]
    pub encoding: SecretEncoding,

    /// Code type.
    #[arg(long = "type", value_enum, value_name = "TYPE", requires = "secret")]
    pub otp_type: Option<TypeArg>,

    /// HMAC algorithm: SHA1, SHA256 or SHA512.
    #[arg(long, value_name = "ALG", requires = "secret")]
    pub algorithm: Option<String>,

    /// Number of digits, 6 to 10.
    #[arg(long, value_name = "N", requires = "secret")]
    pub digits: Option<u32>,

    /// TOTP time step in seconds.
    #[arg(long, value_name = "SECONDS", requires = "secret")]
    pub period: Option<u64>,

    /// HOTP counter (overrides the URI's counter).
    #[arg(long, value_name = "N")]
    pub counter: Option<u64>,

    /// Compute the time-based code at this Unix time instead of now.
    #[arg(long, value_name = "UNIX_SECONDS", allow_negative_numbers = true)]
    pub at: Option<i64>,
}

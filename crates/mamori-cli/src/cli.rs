//! The command-line contract (see docs/cli.md and ../shared/design.md). Scripts depend on it:
//! change it only compatibly.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// mamori: a terminal authenticator (TOTP/HOTP/Steam) with an encrypted vault.
#[derive(Debug, Parser)]
#[command(
    name = "mamori",
    version,
    about = "mamori: a terminal authenticator (TOTP, HOTP, Steam) with an encrypted vault",
    long_about = None,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Options every vault command takes.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The vault file (default: mamori/vault.mamori in the platform data directory).
    #[arg(long, global = true, env = "MAMORI_VAULT", value_name = "PATH")]
    pub vault: Option<PathBuf>,

    /// Read the vault password from the first line of this file instead of asking.
    #[arg(long, global = true, env = "MAMORI_PASSWORD_FILE", value_name = "FILE")]
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print one code without a vault, like oathtool (stateless).
    ///
    /// Either give an otpauth:// URI, or --secret with the parameters. Prints the code and
    /// nothing else on stdout.
    Otp(OtpArgs),

    /// Create a new, empty vault protected by a new password.
    Init(NewPasswordArgs),

    /// Add an account: from an otpauth:// URI, a QR code image, or a setup key.
    Add(AddArgs),

    /// List the accounts (no secrets, no codes).
    List(ListArgs),

    /// Show the current code of one account, or of every time-based account.
    Code(CodeArgs),

    /// Show an account as a QR code, to scan it into a phone (the QR code contains the secret).
    ShowQr(ShowQrArgs),

    /// Remove an account (asks first unless --yes).
    Remove(RemoveArgs),

    /// Rename an account: NEW is "Issuer:account", or one name that replaces the issuer (or
    /// the account name when there is no issuer).
    Rename(RenameArgs),

    /// Change an account's issuer, account name, note, tags or favorite flag.
    Edit(EditArgs),

    /// Change the vault password (the entries are not re-keyed; the data key is rewrapped).
    Passwd(NewPasswordArgs),

    /// Import accounts exported by another authenticator (or a mamori backup).
    ///
    /// FORMAT: otpauth, google-migration, aegis, 2fas, andotp, bitwarden, ente, freeotp-plus,
    /// mamori. Duplicates (same secret, issuer and account) are skipped; entries that cannot be
    /// used are reported and the rest imported; a wrong password or a damaged file imports
    /// nothing.
    Import(ImportArgs),

    /// Export accounts: to a phone (google-migration QR codes), another app (aegis, otpauth), an
    /// encrypted mamori backup, or a printable paper backup (html).
    Export(ExportArgs),

    /// Security reviews that need no vault (e.g. a cloud provider's credential report).
    #[command(subcommand)]
    Review(ReviewCommand),

    /// AWS IAM MFA with the vault's seeds: enrol a virtual device, MFA sessions for the AWS CLI
    /// and SDKs (credential_process, export, exec). See docs/aws.md.
    #[cfg(feature = "aws")]
    #[command(subcommand)]
    Aws(AwsCommand),

    /// Multi-device, end-to-end-encrypted sync through a mamori-server (docs/sync-protocol.md).
    ///
    /// Without a subcommand: one round now (pull, merge, push). Codes never need the network.
    Sync(SyncArgs),

    /// Keep the vault unlocked in a background agent for later commands.
    Unlock(UnlockArgs),

    /// Stop the unlock agent now; later commands ask for the password again.
    Lock,

    /// Full-screen view: live codes, countdown, type to filter, Enter copies.
    Tui(TuiArgs),

    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),

    /// (internal) The unlock agent process started by `mamori unlock`.
    #[command(hide = true, name = "__agent")]
    Agent(AgentArgs),

    /// (internal) Holds a copied code on the clipboard and clears it later.
    #[command(hide = true, name = "__clipboard-hold")]
    ClipboardHold(ClipboardHoldArgs),
}

#[derive(Debug, Args)]
pub struct NewPasswordArgs {
    /// Read the new password from the first line of this file instead of asking twice.
    #[arg(long, value_name = "FILE")]
    pub new_password_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["uri", "qr", "secret"])))]
#[command(group(clap::ArgGroup::new("names").multiple(true).args(["issuer", "account"])))]
pub struct AddArgs {
    /// An otpauth:// key URI ("-" reads it from standard input).
    #[arg(long, value_name = "URI", conflicts_with_all = ["qr", "secret", "issuer", "account", "otp_type", "algorithm", "digits", "period", "counter"])]
    pub uri: Option<String>,

    /// A PNG or JPEG image of a QR code (every otpauth:// code in it is added).
    #[arg(long, value_name = "IMAGE", conflicts_with_all = ["secret", "issuer", "account", "otp_type", "algorithm", "digits", "period", "counter"])]
    pub qr: Option<PathBuf>,

    /// The setup key, Base32 ("-" reads it from standard input).
    #[arg(long, value_name = "BASE32", requires = "names")]
    pub secret: Option<String>,

    /// The service, e.g. "GitHub".
    #[arg(long, value_name = "NAME")]
    pub issuer: Option<String>,

    /// The account at that service, e.g. "alice@example.com".
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,

    /// Code type.
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub otp_type: Option<TypeArg>,

    /// HMAC algorithm: SHA1, SHA256 or SHA512.
    #[arg(long, value_name = "ALG")]
    pub algorithm: Option<String>,

    /// Number of digits, 6 to 10.
    #[arg(long, value_name = "N")]
    pub digits: Option<u32>,

    /// TOTP time step in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub period: Option<u64>,

    /// HOTP counter of the next code.
    #[arg(long, value_name = "N")]
    pub counter: Option<u64>,

    /// A note stored with the account.
    #[arg(long)]
    pub note: Option<String>,

    /// A tag (repeat for several).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,

    /// Mark as favorite (listed first).
    #[arg(long)]
    pub favorite: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only accounts whose issuer or account contains this (case-insensitive).
    pub query: Option<String>,

    /// Machine-readable output (documented in docs/cli.md).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CodeArgs {
    /// Part of the issuer or account name; without it, every time-based account.
    pub query: Option<String>,

    /// Machine-readable output (documented in docs/cli.md).
    #[arg(long)]
    pub json: bool,

    /// Also put the code on the clipboard (cleared after 20 seconds if unchanged).
    #[arg(long)]
    pub copy: bool,

    /// Compute time-based codes at this Unix time instead of now.
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub at: Option<i64>,
}

#[derive(Debug, Args)]
pub struct ShowQrArgs {
    /// Which account.
    pub query: String,

    /// Write a PNG image to this file (mode 0600) instead of drawing in the terminal.
    #[arg(long, value_name = "FILE")]
    pub png: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Which account.
    pub query: String,

    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct RenameArgs {
    /// Which account.
    pub query: String,

    /// "Issuer:account", or a single new name.
    pub new: String,
}

#[derive(Debug, Args)]
pub struct EditArgs {
    /// Which account.
    pub query: String,

    /// New issuer.
    #[arg(long)]
    pub issuer: Option<String>,

    /// New account name.
    #[arg(long)]
    pub account: Option<String>,

    /// New note ("" clears it).
    #[arg(long)]
    pub note: Option<String>,

    /// Replace the tags (repeat for several).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,

    /// Remove all tags.
    #[arg(long, conflicts_with = "tags")]
    pub clear_tags: bool,

    /// Mark as favorite.
    #[arg(long, conflicts_with = "unfavorite")]
    pub favorite: bool,

    /// Unmark as favorite.
    #[arg(long)]
    pub unfavorite: bool,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Forget the key after this long without use: "300", "90s", "5m", "1h".
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct TuiArgs {
    /// Lock (quit) after this long without a key press: "90s", "5m".
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub idle: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    #[arg(long, value_parser = parse_duration)]
    pub timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct ClipboardHoldArgs {
    #[arg(long, value_parser = parse_duration, default_value = "20s")]
    pub clear_after: std::time::Duration,
}

/// "300", "300s", "5m", "1h" -> a duration of at least one second.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 's')) => (&s[..i], 1),
        Some((i, 'm')) => (&s[..i], 60),
        Some((i, 'h')) => (&s[..i], 3600),
        _ => (s, 1),
    };
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration; write e.g. 90s, 5m or 1h"))?;
    let secs = n
        .checked_mul(mult)
        .filter(|v| (1..=7 * 24 * 3600).contains(v))
        .ok_or_else(|| format!("{s:?} must be between 1 second and 7 days"))?;
    Ok(std::time::Duration::from_secs(secs))
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

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The exporting app's format.
    #[arg(long, value_name = "FORMAT")]
    pub format: String,

    /// The export file(s). Several files only for google-migration (one QR image per file, or
    /// text files of otpauth-migration:// lines).
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,

    /// The export's password, from the first line of this file (for encrypted exports). The
    /// vault's own password is --password-file / MAMORI_PASSWORD_FILE.
    #[arg(long, value_name = "FILE")]
    pub input_password_file: Option<PathBuf>,

    /// List what would be imported; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// otpauth, google-migration, aegis, mamori or html.
    #[arg(long, value_name = "FORMAT")]
    pub format: String,

    /// The file to write (google-migration: OUT-1.png, OUT-2.png, …). Not needed with
    /// --terminal.
    #[arg(value_name = "OUT", required_unless_present = "terminal")]
    pub out: Option<PathBuf>,

    /// Allow an export that contains the secrets in plaintext (otpauth, google-migration,
    /// html, unencrypted aegis).
    #[arg(long)]
    pub plaintext: bool,

    /// The new password for an encrypted export (aegis without --plaintext, mamori), from the
    /// first line of this file; otherwise asked twice on the terminal.
    #[arg(long, value_name = "FILE")]
    pub output_password_file: Option<PathBuf>,

    /// google-migration: show the QR codes in the terminal one after another instead of
    /// writing PNG files.
    #[arg(long)]
    pub terminal: bool,

    /// Only accounts matching QUERY (issuer or account name, case-insensitive).
    #[arg(long, value_name = "QUERY")]
    pub only: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// Review a cloud provider's IAM credential report (the 22-column CSV).
    ///
    /// Exits 1 when a high-severity check fails, so scripts can stop on it.
    CredentialReport(CredentialReportArgs),

    /// Review an AWS account through its API: the credential report's checks, the account
    /// summary and unassigned virtual MFA devices (docs/review.md).
    ///
    /// Exits 1 when a high-severity check fails, 4 when one cannot be decided.
    #[cfg(feature = "aws")]
    Aws(ReviewAwsArgs),
}

#[cfg(feature = "aws")]
#[derive(Debug, Args)]
pub struct ReviewAwsArgs {
    /// The AWS profile (default: AWS_PROFILE, else the environment's credentials and `default`).
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,

    /// Print the findings as JSON (the shape of `review credential-report --json`).
    #[arg(long)]
    pub json: bool,

    /// CR-ROOT-USE (CIS 1.7) fails when root's password or an access key was used less than
    /// this many days ago (1 to 3650).
    #[arg(
        long,
        value_name = "DAYS",
        default_value_t = mamori_review::credential_report::ROOT_USE_DAYS,
        value_parser = clap::value_parser!(u32).range(1..=3650)
    )]
    pub root_use_days: u32,
}

#[cfg(feature = "aws")]
#[derive(Debug, Subcommand)]
pub enum AwsCommand {
    /// The IAM user's virtual MFA devices.
    #[command(subcommand)]
    Mfa(AwsMfaCommand),

    /// Temporary credentials with MFA (GetSessionToken, or AssumeRole for a profile with
    /// role_arn), the code taken from the vault; cached, sealed under the vault key, until 5
    /// minutes before they expire.
    ///
    /// Without --credential-process or --export, prints when the session ends (no secrets).
    Session(AwsSessionArgs),

    /// Run a command with MFA session credentials in its environment
    /// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN); exits with its status.
    Exec(AwsExecArgs),
}

#[cfg(feature = "aws")]
#[derive(Debug, Subcommand)]
pub enum AwsMfaCommand {
    /// Create a virtual MFA device, keep its seed in the vault and enable it with two
    /// consecutive codes (waits for the next 30-second window). If anything fails after the
    /// device is created, it is removed again.
    Enroll(AwsEnrollArgs),

    /// List the IAM user's MFA devices and the vault entry that holds each seed.
    List(AwsListArgs),
}

#[cfg(feature = "aws")]
#[derive(Debug, Args)]
pub struct AwsEnrollArgs {
    /// The AWS profile whose credentials create the device.
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,

    /// The IAM user to enable the device for (default: the profile's own user).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,

    /// The device's name in IAM (default: the user name).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

#[cfg(feature = "aws")]
#[derive(Debug, Args)]
pub struct AwsListArgs {
    /// The AWS profile.
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,

    /// The IAM user (default: the profile's own user).
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
}

#[cfg(feature = "aws")]
#[derive(Debug, Args)]
pub struct AwsSessionArgs {
    /// The AWS profile (its mfa_serial, role_arn, source_profile, duration_seconds).
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,

    /// How long the session lasts: seconds, or e.g. 90m, 12h, 1h30m (GetSessionToken: 15m to
    /// 36h, default 12h; AssumeRole: 15m to 12h, default 1h).
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,

    /// Print the AWS CLI's credential_process JSON (for `credential_process = mamori aws
    /// session --profile P --credential-process` in ~/.aws/config).
    #[arg(long, conflicts_with = "export")]
    pub credential_process: bool,

    /// Print `export AWS_…=…` lines for a POSIX shell (`eval "$(mamori aws session --export)"`).
    #[arg(long)]
    pub export: bool,
}

#[cfg(feature = "aws")]
#[derive(Debug, Args)]
pub struct AwsExecArgs {
    /// The AWS profile.
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,

    /// How long the session lasts (as for `aws session`).
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,

    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct CredentialReportArgs {
    /// The credential report CSV file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Print the findings as JSON (see docs/cli.md).
    #[arg(long)]
    pub json: bool,

    /// Review as of this Unix time instead of now (for reproducible reports).
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub at: Option<i64>,

    /// CR-ROOT-USE (CIS 1.7) fails when root's password or an access key was used less than
    /// this many days ago (1 to 3650; CIS names no period, see docs/review.md).
    #[arg(
        long,
        value_name = "DAYS",
        default_value_t = mamori_review::credential_report::ROOT_USE_DAYS,
        value_parser = clap::value_parser!(u32).range(1..=3650)
    )]
    pub root_use_days: u32,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SyncArgs {
    #[command(subcommand)]
    pub command: Option<SyncCommand>,
}

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Sync now: pull, merge, push (the same as `mamori sync` alone).
    Now,
    /// Set sync up for this account: sign in (password + MFA code or recovery code), register
    /// this device, create the sync key and show the recovery key once.
    Setup(SyncSetupArgs),
    /// Add this device to an account that already syncs (with the passphrase or the recovery key).
    Join(SyncJoinArgs),
    /// Show the sync state of this vault (no network).
    Status(SyncJsonArgs),
    /// List the account's sync devices.
    Devices(SyncJsonArgs),
    /// Revoke a sync device (by name or id): it can no longer pull or push.
    Revoke(SyncRevokeArgs),
    /// Change the sync passphrase (only the sync key is rewrapped).
    Passphrase(SyncPassphraseArgs),
    /// Turn syncing after every change on or off.
    Auto(SyncAutoArgs),
    // #15 recovery
    /// Cancel a pending recovery of your account by email and phone codes (someone proved your
    /// email address and phone number; `mamori sync` warns while one is pending).
    CancelRecovery,
}

#[derive(Debug, Args)]
pub struct SyncSignInArgs {
    /// The server, e.g. https://mfa.example.com (MAMORI_SYNC_CA_FILE: PEM file of a private CA to
    /// trust) or http://127.0.0.1:8080.
    #[arg(long, value_name = "URL")]
    pub server: String,

    /// Your user name on the server.
    #[arg(long, value_name = "NAME")]
    pub account: String,

    /// A name for this device (default: the host name).
    #[arg(long, value_name = "NAME")]
    pub device_name: Option<String>,

    /// The second factor: an MFA code from another device, or a recovery code (asked if absent).
    #[arg(long, value_name = "CODE")]
    pub code: Option<String>,

    /// Read the server password from the first line of this file instead of asking.
    #[arg(long, env = "MAMORI_SERVER_PASSWORD_FILE", value_name = "FILE")]
    pub server_password_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SyncSetupArgs {
    #[command(flatten)]
    pub sign_in: SyncSignInArgs,

    /// Read the new sync passphrase from the first line of this file instead of asking twice.
    #[arg(long, env = "MAMORI_SYNC_PASSPHRASE_FILE", value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,

    /// Do not sync automatically after every change.
    #[arg(long)]
    pub no_auto_sync: bool,
}

#[derive(Debug, Args)]
pub struct SyncJoinArgs {
    #[command(flatten)]
    pub sign_in: SyncSignInArgs,

    /// Read the sync passphrase from the first line of this file instead of asking.
    #[arg(long, env = "MAMORI_SYNC_PASSPHRASE_FILE", value_name = "FILE", conflicts_with_all = ["recovery_key", "recovery_key_file"])]
    pub passphrase_file: Option<PathBuf>,

    /// Join with the recovery key shown at setup instead of the passphrase.
    #[arg(long, value_name = "KEY", conflicts_with = "recovery_key_file")]
    pub recovery_key: Option<String>,

    /// Read the recovery key from the first line of this file.
    #[arg(long, value_name = "FILE")]
    pub recovery_key_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SyncJsonArgs {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SyncRevokeArgs {
    /// Device name or id (see `mamori sync devices`).
    pub device: String,
}

#[derive(Debug, Args)]
pub struct SyncPassphraseArgs {
    /// Read the new passphrase from the first line of this file instead of asking twice.
    #[arg(long, value_name = "FILE")]
    pub new_passphrase_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SyncAutoArgs {
    /// on or off.
    #[arg(value_enum)]
    pub state: OnOff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

//! The `mamori-server admin` subcommands, as the command line parses them (defined with the
//! commands they run, so that [`crate::cli`] depends on this module and not the other way).

use std::path::PathBuf;

use clap::Subcommand;

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
    /// Put a user in a group (#18: forward-auth rules and the Remote-Groups header).
    AddGroup {
        /// User name.
        user: String,
        /// Group name (a-z, 0-9, '-', '_', '.'; at most 32 groups per user).
        group: String,
    },
    /// Take a user out of a group.
    RemoveGroup {
        /// User name.
        user: String,
        /// Group name.
        group: String,
    },
    /// List a user's groups, one per line.
    ListGroups {
        /// User name.
        user: String,
    },
    /// Register an OpenID Connect client (#17, docs/oidc.md); prints its id and, for a
    /// confidential client, its secret (shown once).
    CreateClient {
        /// Client name (letters, digits and +=,.@_-).
        name: String,
        /// An exact redirect URI (repeat for several; https, or http on loopback).
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        /// An exact post-logout redirect URI (repeat for several).
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// A public client (no secret; PKCE required), e.g. a command-line or native app.
        #[arg(long)]
        public: bool,
        /// A first-party client: no consent page.
        #[arg(long)]
        trusted: bool,
        /// What the sign-in must have used: two_factor (default), phishing_resistant or
        /// one_factor.
        #[arg(long, default_value = "two_factor")]
        require: String,
        /// Only this account may use the client (repeat; with --allow-group).
        #[arg(long = "allow-user")]
        allow_users: Vec<String>,
        /// Only accounts in this group may use the client (repeat; with --allow-user).
        #[arg(long = "allow-group")]
        allow_groups: Vec<String>,
        /// ID-token signing algorithm: ES256 (default) or RS256 (for relying parties that
        /// accept only RSA).
        #[arg(long, default_value = "ES256")]
        alg: String,
    },
    /// List OpenID Connect clients (never their secrets).
    ListClients {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Replace a confidential client's secret (the new one is printed once; the old one
    /// stops working at once).
    RotateClientSecret {
        /// Client name.
        name: String,
    },
    /// Delete a client with its tokens and consents.
    DeleteClient {
        /// Client name.
        name: String,
    },
    /// Replace the OpenID provider's signing keys now (they are also replaced every
    /// `oidc_key_rotation_days`); the old public keys stay in the JWKS until the ID tokens
    /// they signed have expired.
    RotateOidcKeys,
    /// Create an application key for the validate API (printed once).
    CreateAppKey {
        /// Application name.
        name: String,
        /// Let the key validate root's codes too (by default it answers for root as for an
        /// unknown user, so the application cannot lock root out).
        #[arg(long)]
        allow_root: bool,
        /// Let the key ask whether an account has no MFA device (POST /api/v1/validate/status,
        /// the PAM module's `no_device = allow`); by default the key learns nothing about
        /// accounts and is refused there.
        #[arg(long)]
        allow_no_device: bool,
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
    /// Copy the SQLite database to FILE while the server may be running (a consistent
    /// snapshot, mode 0600) and the server key to FILE.key (mode 0600): the key is needed to
    /// restore the OTP seeds. Refuses existing files. PostgreSQL: use pg_dump (docs/server.md).
    Backup {
        /// The new database copy.
        file: PathBuf,
        /// Leave the server key out (back up `server.key` separately, e.g. offline): without
        /// it the copy cannot restore the OTP seeds.
        #[arg(long)]
        no_key: bool,
    },
    /// Restore a database copied by `admin backup` into this data directory, which must not
    /// have a database yet (or --force); the key (FILE.key, --key, or the data directory's
    /// server.key) is checked against the copy before anything is put in place. Stop the
    /// server first.
    Restore {
        /// The database copy written by `admin backup`.
        file: PathBuf,
        /// The server key file of the backup (default: FILE.key, else the data directory's).
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        /// Replace an existing database (and a different server key).
        #[arg(long)]
        force: bool,
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

//! Configuration: defaults, then a TOML file, then `MAMORI_*` environment variables, then
//! command-line flags (each later source wins). Every limit the server enforces is here.

pub mod radius;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;

use crate::error::{Error, Result};

/// Which accounts must enroll MFA right after the password step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequireMfa {
    /// Only the root account.
    Root,
    /// Every account (the default, which the security review expects).
    All,
    /// No account (accounts without MFA still get the security alert).
    None,
}

impl FromStr for RequireMfa {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "root" => Ok(RequireMfa::Root),
            "all" => Ok(RequireMfa::All),
            "none" => Ok(RequireMfa::None),
            other => Err(Error::Config(format!(
                "require_mfa must be root, all or none, not {other:?}"
            ))),
        }
    }
}

/// Who may sign in with alternative factors (email, then phone) when an MFA device is lost
/// (`[recovery] alternative_factors`, docs/recovery.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlternativeFactors {
    /// Every account whose email address and phone number are both verified (the default).
    VerifiedContacts,
    /// Nobody: a lost device needs a recovery code or an administrator.
    Off,
}

impl FromStr for AlternativeFactors {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "verified_contacts" => Ok(AlternativeFactors::VerifiedContacts),
            "off" => Ok(AlternativeFactors::Off),
            other => Err(Error::Config(format!(
                "recovery.alternative_factors must be verified_contacts or off, not {other:?}"
            ))),
        }
    }
}

/// Language of emails and phone texts: an account's own choice (domain::preferences), else the
/// server's `[recovery] default_language`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailLanguage {
    /// English (the default).
    En,
    /// Japanese.
    Ja,
}

impl FromStr for MailLanguage {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "en" => Ok(MailLanguage::En),
            "ja" => Ok(MailLanguage::Ja),
            other => Err(Error::Config(format!(
                "recovery.default_language must be en or ja, not {other:?}"
            ))),
        }
    }
}

/// Account recovery settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecoveryConfig {
    /// Who may sign in with alternative factors.
    pub alternative_factors: AlternativeFactors,
    /// Language of notification and code emails.
    pub default_language: MailLanguage,
    // #15 recovery
    /// Hours an alternative-factor recovery waits before it may complete, when the account still
    /// has other working factors (docs/recovery.md, "Waiting period"); 0 = at once.
    pub waiting_period_hours: u32,
    /// For tests only: the waiting period in seconds, overriding `waiting_period_hours`.
    pub waiting_period_secs: Option<u32>,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            alternative_factors: AlternativeFactors::VerifiedContacts,
            default_language: MailLanguage::En,
            waiting_period_hours: 24,
            waiting_period_secs: None,
        }
    }
}

impl RecoveryConfig {
    /// The waiting period in seconds.
    pub fn waiting_period(&self) -> i64 {
        match self.waiting_period_secs {
            Some(s) => i64::from(s),
            None => i64::from(self.waiting_period_hours).saturating_mul(3600),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl FromStr for LogFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(Error::Config(format!(
                "log_format must be text or json, not {other:?}"
            ))),
        }
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain SMTP (only for a relay on the same host or a test sink).
    None,
    /// STARTTLS, required (the default, port 587).
    Starttls,
    /// Implicit TLS (port 465).
    Tls,
}

impl FromStr for SmtpSecurity {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(SmtpSecurity::None),
            "starttls" => Ok(SmtpSecurity::Starttls),
            "tls" => Ok(SmtpSecurity::Tls),
            other => Err(Error::Config(format!(
                "smtp.security must be none, starttls or tls, not {other:?}"
            ))),
        }
    }
}

/// Outgoing email (security notifications, recovery codes). Email is off while `host` is unset.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    /// SMTP server host name.
    pub host: Option<String>,
    /// Port.
    pub port: u16,
    /// `none`, `starttls` or `tls`.
    pub security: SmtpSecurity,
    /// User name for SMTP authentication.
    pub username: Option<String>,
    /// File holding the SMTP password (never in the configuration itself).
    pub password_file: Option<PathBuf>,
    /// Sender address, e.g. `mamori <mfa@example.com>`.
    pub from: String,
    /// Connection and command timeout in seconds.
    pub timeout_secs: u64,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: None,
            port: 587,
            security: SmtpSecurity::Starttls,
            username: None,
            password_file: None,
            from: "mamori <mamori@localhost>".into(),
            timeout_secs: 10,
        }
    }
}

/// The phone gateway that sends verification codes to phones.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PhoneConfig {
    /// `none` (the default), `webhook` or `log` (development: codes in the server log).
    pub provider: String,
    /// Webhook URL (`webhook`).
    pub url: Option<String>,
    /// File holding the webhook's HMAC secret (at least 16 bytes).
    pub secret_file: Option<PathBuf>,
    // #15 contacts
    /// Region (ISO 3166-1 alpha-2) in which a phone number entered without `+` country code is
    /// read; numbers are stored and sent in E.164.
    pub default_region: String,
}

impl Default for PhoneConfig {
    fn default() -> Self {
        PhoneConfig {
            provider: "none".into(),
            url: None,
            secret_file: None,
            default_region: crate::domain::phone::DEFAULT_REGION.into(),
        }
    }
}

/// Size, count and rate limits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// MFA devices per user (any mix of kinds).
    pub max_devices: u32,
    /// Largest accepted request body in bytes.
    pub body_bytes: usize,
    /// Requests taking longer are answered 408.
    pub request_timeout_secs: u64,
    /// Sign-in requests (password, MFA, setup) per client address per minute.
    pub sign_in_per_minute: u32,
    /// Burst allowance for sign-in requests per client address.
    pub sign_in_burst: u32,
    /// A connection must send a request's whole header within this many seconds (from the
    /// connection's start, or from the end of its previous response); otherwise it is closed.
    pub header_read_timeout_secs: u64,
    /// A connection on which no byte moved in either direction for this long is closed
    /// (stalled uploads, clients that stop reading); must exceed `request_timeout_secs`.
    pub idle_timeout_secs: u64,
    /// Connections served at once; further ones wait in the listen queue until one closes.
    pub max_connections: usize,
    /// Argon2id computations (password and recovery-code hashing) running at once; further
    /// ones wait, within the request timeout.
    pub password_hash_concurrency: usize,
    /// Validate API requests per client address per minute.
    pub validate_per_minute: u32,
    /// Burst allowance for validate API requests per client address.
    pub validate_burst: u32,
    /// #17: failed client authentications (a wrong secret) at the OpenID token, revocation
    /// and introspection endpoints allowed per client address within
    /// `oidc_client_failure_window_secs`; beyond, the address is refused (429) until its window
    /// ends. A client id reaching the same count is audited, not refused.
    pub oidc_client_failures: u32,
    /// #17: the window of `oidc_client_failures`, in seconds.
    pub oidc_client_failure_window_secs: u64,
}

/// The default number of concurrent Argon2id computations: the number of CPU cores, at
/// least 2 (each takes about 19 MiB and one core for ~50 ms at the default cost).
pub fn default_password_hash_concurrency() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(2)
        .max(2)
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_devices: 8,
            body_bytes: 64 * 1024,
            request_timeout_secs: 10,
            sign_in_per_minute: 60,
            sign_in_burst: 20,
            header_read_timeout_secs: 10,
            idle_timeout_secs: 60,
            max_connections: 512,
            password_hash_concurrency: default_password_hash_concurrency(),
            validate_per_minute: 600,
            validate_burst: 100,
            oidc_client_failures: 10,
            oidc_client_failure_window_secs: 60,
        }
    }
}

/// Second-factor guessing protection (NIST SP 800-63B section 5.2.2).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Lockout {
    /// Consecutive failures allowed before delays start.
    pub delay_after: u32,
    /// First delay in seconds; it doubles with each further failure.
    pub delay_base_secs: u64,
    /// Longest delay in seconds.
    pub delay_max_secs: u64,
    /// Consecutive failures that lock the account (NIST: at most 100).
    pub lock_after: u32,
}

impl Default for Lockout {
    fn default() -> Self {
        Lockout {
            delay_after: 5,
            delay_base_secs: 1,
            delay_max_secs: 60,
            lock_after: 100,
        }
    }
}

/// Password policy and hashing cost.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordConfig {
    /// Minimum length in characters.
    pub min_length: usize,
    /// Argon2id memory in KiB.
    pub argon2_m_kib: u32,
    /// Argon2id passes.
    pub argon2_t: u32,
    /// Argon2id lanes.
    pub argon2_p: u32,
}

impl Default for PasswordConfig {
    fn default() -> Self {
        // OWASP Password Storage Cheat Sheet's Argon2id baseline: m=19 MiB, t=2, p=1.
        PasswordConfig {
            // One number with the security review's expectation (NIST SP 800-63B-4: 15 for
            // a password that is the only factor, which every account's is at first).
            min_length: mamori_review::deployment::MIN_PASSWORD_LENGTH as usize,
            argon2_m_kib: 19 * 1024,
            argon2_t: 2,
            argon2_p: 1,
        }
    }
}

/// Built-in HTTPS from certificate files (`[tls]`, docs/server.md "HTTPS"). Off while both
/// files are unset; then a TLS-terminating proxy is expected in front.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the server certificate first, then its intermediate certificates.
    pub cert_file: Option<PathBuf>,
    /// PEM file with the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// `max-age` of the `Strict-Transport-Security` header sent with TLS on; 0 sends none.
    pub hsts_max_age_secs: u64,
    /// How often, in seconds, the files' modification times are checked for a renewed
    /// certificate (SIGHUP reloads at once).
    pub reload_secs: u64,
    /// A plain-HTTP listener (usually `[::]:80` or `0.0.0.0:80`) that only answers 308 to the
    /// same path on `public_url`, and the ACME HTTP-01 challenges when `acme` is on.
    pub redirect_listen: Option<SocketAddr>,
    /// Certificates from an ACME CA (RFC 8555) for `public_url`'s host instead of files.
    pub acme: bool,
    /// The ACME directory URL (Let's Encrypt's by default).
    pub acme_directory: String,
    /// The contact email given to the CA for expiry and policy notices.
    pub acme_contact: Option<String>,
    /// A PEM file of CA certificates trusted for the ACME directory besides the system roots
    /// (a private or test CA).
    pub acme_ca_file: Option<PathBuf>,
    /// How often, in seconds, the certificate's remaining lifetime is checked (a renewal
    /// starts when less than a third of it remains).
    pub acme_check_secs: u64,
}

/// Let's Encrypt's production ACME directory, `tls.acme_directory`'s default.
pub const LETS_ENCRYPT_DIRECTORY: &str = "https://acme-v02.api.letsencrypt.org/directory";

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert_file: None,
            key_file: None,
            // One year: what HSTS preload lists ask for.
            hsts_max_age_secs: 31_536_000,
            reload_secs: 10,
            redirect_listen: None,
            acme: false,
            acme_directory: LETS_ENCRYPT_DIRECTORY.to_string(),
            acme_contact: None,
            acme_ca_file: None,
            // Twice a day, as certbot's timer: a 90-day certificate is renewed within
            // half a day of its 60th day.
            acme_check_secs: 43_200,
        }
    }
}

impl TlsConfig {
    /// The certificate and key files, when TLS is configured (validation makes sure both or
    /// neither are set).
    pub fn files(&self) -> Option<(&Path, &Path)> {
        match (&self.cert_file, &self.key_file) {
            (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
            _ => None,
        }
    }

    /// Whether the server itself speaks HTTPS (certificate files or ACME).
    pub fn enabled(&self) -> bool {
        self.files().is_some() || self.acme
    }
}

/// What a forward-auth rule asks of a request's session (`policy = "..."`,
/// docs/forward-auth.md "Rules").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessPolicy {
    /// Anyone, signed in or not.
    Bypass,
    /// A full session (password; the second factor if the account has one).
    OneFactor,
    /// A full session whose second factor was given (within `max_age` when set).
    TwoFactor,
    /// Like `two_factor`, with a security key or passkey as the second factor.
    PhishingResistant,
    /// Nobody.
    Deny,
}

impl AccessPolicy {
    /// The configuration's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessPolicy::Bypass => "bypass",
            AccessPolicy::OneFactor => "one_factor",
            AccessPolicy::TwoFactor => "two_factor",
            AccessPolicy::PhishingResistant => "phishing_resistant",
            AccessPolicy::Deny => "deny",
        }
    }
}

/// One `[[forward_auth.rules]]` entry as written; `domain::forward_auth::Rules::compile`
/// checks it and turns it into the matcher (at start, so a bad rule stops the server with a
/// message naming it).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRuleConfig {
    /// `app.example.com` or `*.example.com` (any subdomain, not the domain itself).
    pub host: String,
    /// A path prefix (`/admin` matches `/admin` and `/admin/…`, not `/administrator`).
    pub path: Option<String>,
    /// A regular expression the whole path (without the query) is searched with.
    pub path_regex: Option<String>,
    /// HTTP methods (empty: every method).
    #[serde(default)]
    pub methods: Vec<String>,
    /// What the rule asks for.
    pub policy: AccessPolicy,
    /// Accounts the rule is about (with `groups`: either matches; both empty: everyone).
    #[serde(default)]
    pub users: Vec<String>,
    /// Groups the rule is about.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Seconds: the second factor must be at most this old, else the browser is sent to give
    /// it again (`two_factor` and `phishing_resistant` only).
    pub max_age: Option<u64>,
}

/// `[forward_auth]` (#18, docs/forward-auth.md): protecting other applications behind a
/// reverse proxy. Off while there are no rules.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForwardAuthConfig {
    /// The parent domain the single-sign-on cookie is scoped to (`example.com`); unset: the
    /// console's own host only.
    pub cookie_domain: Option<String>,
    /// Hosts a sign-in may return to (`app.example.com`, `*.example.com`); the rules' hosts
    /// are always included.
    pub protected_domains: Vec<String>,
    /// The access rules, first match wins, default deny.
    pub rules: Vec<AccessRuleConfig>,
    /// Seconds a forward-auth check's reading of a session is reused by the next checks of the
    /// same cookie (0: read every time; at most 60). A sign-out or any other change made
    /// through another node reaches this node's answers within this bound.
    pub cache_secs: u32,
}

impl Default for ForwardAuthConfig {
    fn default() -> Self {
        ForwardAuthConfig {
            cookie_domain: None,
            protected_domains: Vec::new(),
            rules: Vec::new(),
            cache_secs: 2,
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port (the chosen address is printed).
    pub listen: SocketAddr,
    /// The URL people reach the server at (setup links, the security keys' relying party);
    /// defaults to `http://localhost:PORT` on a loopback address, else `http://LISTEN`.
    pub public_url: Option<String>,
    /// Issuer shown in authenticator apps.
    pub service_name: String,
    /// Data directory (server key, SQLite database).
    pub data_dir: Option<PathBuf>,
    /// `sqlite://PATH` or `postgres://...`; default: `mamori.db` in the data directory.
    pub database: Option<String>,
    /// Which accounts must enroll MFA before anything else.
    pub require_mfa: RequireMfa,
    /// Log format.
    pub log_format: LogFormat,
    /// Limits.
    pub limits: Limits,
    /// Guessing protection.
    pub lockout: Lockout,
    /// Password policy.
    pub password: PasswordConfig,
    /// Outgoing email.
    pub smtp: SmtpConfig,
    /// Phone gateway.
    pub phone: PhoneConfig,
    /// How many days audit events must be kept (the security review checks that they are).
    pub audit_retention_days: u32,
    /// Audit events older than this many days are deleted by the server's housekeeping, which
    /// keeps the database bounded (every validation and sign-in is an event); 0 keeps them
    /// forever. At least `audit_retention_days` (#21).
    pub audit_prune_after_days: u32,
    /// The OpenID provider's signing keys are replaced after this many days by the server's
    /// housekeeping (the old public key stays in the JWKS until the ID tokens it signed have
    /// expired); 0: only by `mamori-server admin rotate-oidc-keys` (#17).
    pub oidc_key_rotation_days: u32,
    /// Account recovery.
    pub recovery: RecoveryConfig,
    /// Built-in HTTPS.
    pub tls: TlsConfig,
    /// The RADIUS server (#19).
    pub radius: radius::RadiusConfig,
    /// Forward authentication for reverse proxies (#18, docs/forward-auth.md).
    pub forward_auth: ForwardAuthConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            service_name: "mamori".into(),
            data_dir: None,
            database: None,
            require_mfa: RequireMfa::All,
            log_format: LogFormat::Text,
            limits: Limits::default(),
            lockout: Lockout::default(),
            password: PasswordConfig::default(),
            smtp: SmtpConfig::default(),
            phone: PhoneConfig::default(),
            audit_retention_days: 365,
            audit_prune_after_days: 400,
            oidc_key_rotation_days: 90,
            recovery: RecoveryConfig::default(),
            tls: TlsConfig::default(),
            radius: radius::RadiusConfig::default(),
            forward_auth: ForwardAuthConfig::default(),
        }
    }
}

/// Values given on the command line (each overrides everything else).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--config`.
    pub config_file: Option<PathBuf>,
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--database`.
    pub database: Option<String>,
    /// `--public-url`.
    pub public_url: Option<String>,
    /// `--log-format`.
    pub log_format: Option<LogFormat>,
}

fn parse_env<T: FromStr>(env: &dyn Fn(&str) -> Option<String>, name: &str) -> Result<Option<T>> {
    match env(name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| Error::Config(format!("{name}={v:?} is not a valid value"))),
    }
}

macro_rules! env_set {
    ($env:expr, $field:expr, $name:literal) => {
        if let Some(v) = parse_env($env, $name)? {
            $field = v;
        }
    };
}

impl Config {
    /// Loads the configuration from the process environment and `overrides`.
    pub fn load(overrides: &Overrides) -> Result<Config> {
        Self::load_with(overrides, &|k| std::env::var(k).ok())
    }

    /// Loads with an explicit environment lookup (tests).
    pub fn load_with(
        overrides: &Overrides,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config> {
        let file = overrides
            .config_file
            .clone()
            .or_else(|| env("MAMORI_CONFIG").map(PathBuf::from));
        let mut c = match file {
            Some(path) => Self::from_file(&path)?,
            None => Config::default(),
        };
        env_set!(env, c.listen, "MAMORI_LISTEN");
        if let Some(v) = env("MAMORI_PUBLIC_URL") {
            c.public_url = Some(v);
        }
        env_set!(env, c.service_name, "MAMORI_SERVICE_NAME");
        if let Some(v) = env("MAMORI_DATA_DIR") {
            c.data_dir = Some(PathBuf::from(v));
        }
        if let Some(v) = env("MAMORI_DATABASE") {
            c.database = Some(v);
        }
        env_set!(env, c.require_mfa, "MAMORI_REQUIRE_MFA");
        env_set!(env, c.log_format, "MAMORI_LOG_FORMAT");
        env_set!(env, c.limits.max_devices, "MAMORI_LIMITS_MAX_DEVICES");
        env_set!(env, c.limits.body_bytes, "MAMORI_LIMITS_BODY_BYTES");
        env_set!(
            env,
            c.limits.request_timeout_secs,
            "MAMORI_LIMITS_REQUEST_TIMEOUT_SECS"
        );
        env_set!(
            env,
            c.limits.sign_in_per_minute,
            "MAMORI_LIMITS_SIGN_IN_PER_MINUTE"
        );
        env_set!(env, c.limits.sign_in_burst, "MAMORI_LIMITS_SIGN_IN_BURST");
        env_set!(
            env,
            c.limits.header_read_timeout_secs,
            "MAMORI_LIMITS_HEADER_READ_TIMEOUT_SECS"
        );
        env_set!(
            env,
            c.limits.idle_timeout_secs,
            "MAMORI_LIMITS_IDLE_TIMEOUT_SECS"
        );
        env_set!(
            env,
            c.limits.max_connections,
            "MAMORI_LIMITS_MAX_CONNECTIONS"
        );
        env_set!(
            env,
            c.limits.password_hash_concurrency,
            "MAMORI_LIMITS_PASSWORD_HASH_CONCURRENCY"
        );
        env_set!(
            env,
            c.limits.validate_per_minute,
            "MAMORI_LIMITS_VALIDATE_PER_MINUTE"
        );
        env_set!(env, c.limits.validate_burst, "MAMORI_LIMITS_VALIDATE_BURST");
        env_set!(
            env,
            c.limits.oidc_client_failures,
            "MAMORI_LIMITS_OIDC_CLIENT_FAILURES"
        );
        env_set!(
            env,
            c.limits.oidc_client_failure_window_secs,
            "MAMORI_LIMITS_OIDC_CLIENT_FAILURE_WINDOW_SECS"
        );
        env_set!(env, c.lockout.delay_after, "MAMORI_LOCKOUT_DELAY_AFTER");
        env_set!(
            env,
            c.lockout.delay_base_secs,
            "MAMORI_LOCKOUT_DELAY_BASE_SECS"
        );
        env_set!(
            env,
            c.lockout.delay_max_secs,
            "MAMORI_LOCKOUT_DELAY_MAX_SECS"
        );
        env_set!(env, c.lockout.lock_after, "MAMORI_LOCKOUT_LOCK_AFTER");
        env_set!(env, c.password.min_length, "MAMORI_PASSWORD_MIN_LENGTH");
        env_set!(env, c.password.argon2_m_kib, "MAMORI_PASSWORD_ARGON2_M_KIB");
        env_set!(env, c.password.argon2_t, "MAMORI_PASSWORD_ARGON2_T");
        env_set!(env, c.password.argon2_p, "MAMORI_PASSWORD_ARGON2_P");
        if let Some(v) = env("MAMORI_SMTP_HOST") {
            c.smtp.host = Some(v).filter(|h| !h.is_empty());
        }
        env_set!(env, c.smtp.port, "MAMORI_SMTP_PORT");
        env_set!(env, c.smtp.security, "MAMORI_SMTP_SECURITY");
        if let Some(v) = env("MAMORI_SMTP_USERNAME") {
            c.smtp.username = Some(v);
        }
        if let Some(v) = env("MAMORI_SMTP_PASSWORD_FILE") {
            c.smtp.password_file = Some(PathBuf::from(v));
        }
        env_set!(env, c.smtp.from, "MAMORI_SMTP_FROM");
        env_set!(env, c.audit_retention_days, "MAMORI_AUDIT_RETENTION_DAYS");
        env_set!(
            env,
            c.audit_prune_after_days,
            "MAMORI_AUDIT_PRUNE_AFTER_DAYS"
        );
        env_set!(
            env,
            c.oidc_key_rotation_days,
            "MAMORI_OIDC_KEY_ROTATION_DAYS"
        );
        env_set!(env, c.smtp.timeout_secs, "MAMORI_SMTP_TIMEOUT_SECS");
        if let Some(v) = env("MAMORI_PHONE_PROVIDER") {
            c.phone.provider = v;
        }
        if let Some(v) = env("MAMORI_PHONE_URL") {
            c.phone.url = Some(v);
        }
        if let Some(v) = env("MAMORI_PHONE_SECRET_FILE") {
            c.phone.secret_file = Some(PathBuf::from(v));
        }
        // #15 contacts
        if let Some(v) = env("MAMORI_PHONE_DEFAULT_REGION") {
            c.phone.default_region = v;
        }
        env_set!(
            env,
            c.recovery.alternative_factors,
            "MAMORI_RECOVERY_ALTERNATIVE_FACTORS"
        );
        env_set!(
            env,
            c.recovery.default_language,
            "MAMORI_RECOVERY_DEFAULT_LANGUAGE"
        );
        // #15 recovery
        env_set!(
            env,
            c.recovery.waiting_period_hours,
            "MAMORI_RECOVERY_WAITING_PERIOD_HOURS"
        );
        if let Some(v) = parse_env(env, "MAMORI_RECOVERY_WAITING_PERIOD_SECS")? {
            c.recovery.waiting_period_secs = Some(v);
        }
        // Empty unsets, so an environment can turn off TLS configured in the file.
        if let Some(v) = env("MAMORI_TLS_CERT_FILE") {
            c.tls.cert_file = Some(PathBuf::from(v)).filter(|p| !p.as_os_str().is_empty());
        }
        if let Some(v) = env("MAMORI_TLS_KEY_FILE") {
            c.tls.key_file = Some(PathBuf::from(v)).filter(|p| !p.as_os_str().is_empty());
        }
        env_set!(env, c.tls.hsts_max_age_secs, "MAMORI_TLS_HSTS_MAX_AGE_SECS");
        env_set!(env, c.tls.reload_secs, "MAMORI_TLS_RELOAD_SECS");
        // #22 redirect listener and ACME; empty unsets as for the files.
        if let Some(v) = env("MAMORI_TLS_REDIRECT_LISTEN") {
            c.tls.redirect_listen = if v.trim().is_empty() {
                None
            } else {
                Some(v.trim().parse().map_err(|_| {
                    Error::Config(format!(
                        "MAMORI_TLS_REDIRECT_LISTEN must be an address like 0.0.0.0:80, not {v:?}"
                    ))
                })?)
            };
        }
        env_set!(env, c.tls.acme, "MAMORI_TLS_ACME");
        env_set!(env, c.tls.acme_directory, "MAMORI_TLS_ACME_DIRECTORY");
        if let Some(v) = env("MAMORI_TLS_ACME_CONTACT") {
            c.tls.acme_contact = Some(v).filter(|v| !v.trim().is_empty());
        }
        if let Some(v) = env("MAMORI_TLS_ACME_CA_FILE") {
            c.tls.acme_ca_file = Some(PathBuf::from(v)).filter(|p| !p.as_os_str().is_empty());
        }
        env_set!(env, c.tls.acme_check_secs, "MAMORI_TLS_ACME_CHECK_SECS");
        if let Some(v) = overrides.listen {
            c.listen = v;
        }
        if let Some(v) = &overrides.data_dir {
            c.data_dir = Some(v.clone());
        }
        if let Some(v) = &overrides.database {
            c.database = Some(v.clone());
        }
        if let Some(v) = &overrides.public_url {
            c.public_url = Some(v.clone());
        }
        if let Some(v) = overrides.log_format {
            c.log_format = v;
        }
        c.validate()?;
        Ok(c)
    }

    /// Parses a TOML file.
    pub fn from_file(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Config(m.to_string()));
        // #15 contacts
        crate::domain::phone::parse_region(&self.phone.default_region)?;
        if self.audit_prune_after_days != 0
            && self.audit_prune_after_days < self.audit_retention_days
        {
            return bad(
                "audit_prune_after_days must be 0 (keep forever) or at least audit_retention_days",
            );
        }
        if self.oidc_key_rotation_days > 3650 {
            return bad("oidc_key_rotation_days must be between 0 (never) and 3650");
        }
        if self.limits.max_devices == 0 || self.limits.max_devices > 64 {
            return bad("limits.max_devices must be between 1 and 64");
        }
        if self.limits.body_bytes < 1024 {
            return bad("limits.body_bytes must be at least 1024");
        }
        if self.limits.sign_in_per_minute == 0 || self.limits.sign_in_burst == 0 {
            return bad("limits.sign_in_per_minute and sign_in_burst must be at least 1");
        }
        if !(1..=600).contains(&self.limits.header_read_timeout_secs) {
            return bad("limits.header_read_timeout_secs must be between 1 and 600");
        }
        if self.limits.idle_timeout_secs <= self.limits.request_timeout_secs {
            return bad(
                "limits.idle_timeout_secs must be greater than limits.request_timeout_secs",
            );
        }
        if self.limits.max_connections == 0 {
            return bad("limits.max_connections must be at least 1");
        }
        if !(1..=1024).contains(&self.limits.password_hash_concurrency) {
            return bad("limits.password_hash_concurrency must be between 1 and 1024");
        }
        if self.limits.validate_per_minute == 0 || self.limits.validate_burst == 0 {
            return bad("limits.validate_per_minute and validate_burst must be at least 1");
        }
        if self.limits.oidc_client_failures == 0
            || !(1..=86_400).contains(&self.limits.oidc_client_failure_window_secs)
        {
            return bad("limits.oidc_client_failures must be at least 1 and \
                 limits.oidc_client_failure_window_secs between 1 and 86400");
        }
        if self.lockout.lock_after == 0 || self.lockout.lock_after > 100 {
            // NIST SP 800-63B section 5.2.2: no more than 100 consecutive failed attempts.
            return bad("lockout.lock_after must be between 1 and 100");
        }
        if self.password.min_length < 8 {
            // NIST SP 800-63B-4 section 3.1.1.2: at least 8 characters even with a second
            // factor (15 when the password is the only one: the default).
            return bad("password.min_length must be at least 8");
        }
        if self.password.argon2_t == 0 || self.password.argon2_p == 0 {
            return bad("password.argon2_t and argon2_p must be at least 1");
        }
        if self.service_name.trim().is_empty() || self.service_name.contains(':') {
            return bad("service_name must be non-empty and contain no ':'");
        }
        match (&self.tls.cert_file, &self.tls.key_file) {
            (Some(_), None) => {
                return bad("tls.cert_file is set but tls.key_file is not: set both or neither")
            }
            (None, Some(_)) => {
                return bad("tls.key_file is set but tls.cert_file is not: set both or neither")
            }
            _ => {}
        }
        self.radius.validate()?;
        // #18: every rule compiled once here, so a mistake stops the start with its position.
        crate::domain::forward_auth::Rules::compile(&self.forward_auth)?;
        if !(1..=86_400).contains(&self.tls.reload_secs) {
            return bad("tls.reload_secs must be between 1 and 86400");
        }
        if self.tls.acme {
            if self.tls.files().is_some() {
                return bad("tls.acme and tls.cert_file/key_file are both set: choose one");
            }
            if !(1..=86_400).contains(&self.tls.acme_check_secs) {
                return bad("tls.acme_check_secs must be between 1 and 86400");
            }
            let dir = self.tls.acme_directory.trim().to_ascii_lowercase();
            if !dir.starts_with("https://") {
                return bad("tls.acme_directory must be an https:// URL");
            }
            if let Some(c) = &self.tls.acme_contact {
                if !c.contains('@') || c.contains(char::is_whitespace) || c.contains(',') {
                    return Err(Error::Config(format!(
                        "tls.acme_contact must be one email address, not {c:?}"
                    )));
                }
            }
            match &self.public_url {
                None => {
                    return bad(
                        "tls.acme needs public_url (https://NAME): the certificate is for its host name",
                    )
                }
                Some(u) => {
                    if acme_domain(u).is_none() {
                        return Err(Error::Config(format!(
                            "tls.acme needs public_url to be https:// with a DNS name (not an IP address), not {u:?}"
                        )));
                    }
                }
            }
        }
        if self.tls.redirect_listen.is_some() && !self.tls.enabled() {
            return bad("tls.redirect_listen needs HTTPS (tls.cert_file/key_file or tls.acme)");
        }
        // Refused rather than warned about: with an http:// public URL, security keys would be
        // bound to an origin nobody reaches, cookies would lose `Secure` and every link printed
        // would point at a port that only speaks TLS.
        if let Some(u) = &self.public_url {
            if self.tls.enabled() && !u.trim().to_ascii_lowercase().starts_with("https://") {
                return Err(Error::Config(format!(
                    "public_url must start with https:// when [tls] cert_file and key_file (or acme) are set, not {u:?}"
                )));
            }
        }
        Ok(())
    }

    /// The data directory: configured, else the platform data directory, else `./mamori-data`.
    pub fn data_dir(&self) -> PathBuf {
        if let Some(d) = &self.data_dir {
            return d.clone();
        }
        directories::ProjectDirs::from("", "", "mamori-server")
            .map(|p| p.data_dir().to_path_buf())
            .unwrap_or_else(|| PathBuf::from("./mamori-data"))
    }

    /// The database URL: configured, else an SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database {
            Some(d) => d.clone(),
            None => format!("sqlite://{}", self.data_dir().join("mamori.db").display()),
        }
    }

    /// Where a running server records its public URL in the data directory
    /// ([`SERVER_URL_FILE`]).
    pub fn server_url_file(&self) -> PathBuf {
        self.data_dir().join(SERVER_URL_FILE)
    }

    /// The public URL of links the admin command line prints: the configured one; else the
    /// one the server last started on this data directory recorded (it knows the port it
    /// really listens on, `--listen 127.0.0.1:0` included); else derived from `listen`.
    pub fn admin_public_url(&self) -> String {
        if self.public_url.is_some() {
            return self.public_url_for(self.listen);
        }
        read_server_url(&self.server_url_file()).unwrap_or_else(|| self.public_url_for(self.listen))
    }

    /// The public URL with no trailing slash, given the address actually bound. Unset, it is
    /// `http://localhost:PORT` on a loopback address — a browser treats `localhost` as a
    /// secure context and accepts it as a WebAuthn relying-party id, which an IP address can
    /// never be, so security keys work with the README's command — and `http://ADDR:PORT`
    /// otherwise (docs/server.md); `https://` instead when the server speaks TLS (`[tls]`).
    pub fn public_url_for(&self, bound: SocketAddr) -> String {
        let scheme = if self.tls.enabled() { "https" } else { "http" };
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None if bound.ip().is_loopback() => format!("{scheme}://localhost:{}", bound.port()),
            None => format!("{scheme}://{bound}"),
        }
    }
}

/// The host name ACME certificates are ordered for: `public_url`'s host when it is https://
/// and a DNS name (lower case, without port); `None` otherwise.
pub fn acme_domain(public_url: &str) -> Option<String> {
    let rest = public_url.trim().strip_prefix("https://").or_else(|| {
        let t = public_url.trim();
        t.get(..8)
            .filter(|p| p.eq_ignore_ascii_case("https://"))
            .map(|_| &t[8..])
    })?;
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.contains('@') || authority.starts_with('[') {
        return None;
    }
    let host = authority.split(':').next()?.trim_end_matches('.');
    let host = host.to_ascii_lowercase();
    let ok_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if host.len() > 253
        || !host.split('.').all(ok_label)
        || host.parse::<std::net::IpAddr>().is_ok()
    {
        return None;
    }
    // An all-numeric last label is an IP address written some other way.
    if host.rsplit('.').next()?.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(host)
}

/// The file name, in the data directory, of the running server's public URL.
pub const SERVER_URL_FILE: &str = "server-url";

/// A URL recorded in [`SERVER_URL_FILE`], if the file holds one: a short `http(s)://` line
/// without control characters (anything else is ignored, as if the file were missing).
pub fn read_server_url(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(2048)
        .read_to_string(&mut text)
        .ok()?;
    let url = text.trim();
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && url.len() < 2048
        && !url.contains(char::is_control)
        && !url.contains(char::is_whitespace);
    ok.then(|| url.trim_end_matches('/').to_string())
}

/// Records the server's public URL in [`SERVER_URL_FILE`] (written to a temporary file and
/// renamed, so a reader never sees half of it).
pub fn write_server_url(path: &Path, url: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{url}\n"))?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn defaults_listen_on_localhost_8080_and_pass_the_review() {
        let c = Config::load_with(&Overrides::default(), &env_of(&[])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        // What the security review expects (DR-REQUIRE-MFA-ALL, DR-PASSWORD-LENGTH).
        assert_eq!(c.require_mfa, RequireMfa::All);
        assert_eq!(c.password.min_length, 15);
        assert_eq!(
            c.password.min_length,
            mamori_review::deployment::MIN_PASSWORD_LENGTH as usize
        );
        assert_eq!(c.limits.max_devices, 8);
        assert_eq!(c.lockout.lock_after, 100);
        assert_eq!(c.password.argon2_m_kib, 19456);
    }

    #[test]
    fn the_public_url_defaults_to_localhost_on_loopback() {
        let c = Config::load_with(&Overrides::default(), &env_of(&[])).unwrap();
        let at = |a: &str| c.public_url_for(a.parse().unwrap());
        assert_eq!(at("127.0.0.1:43210"), "http://localhost:43210");
        assert_eq!(at("[::1]:8080"), "http://localhost:8080");
        // Not loopback: as before, the address itself.
        assert_eq!(at("0.0.0.0:8080"), "http://0.0.0.0:8080");
        assert_eq!(at("192.0.2.7:8080"), "http://192.0.2.7:8080");
        let c = Config::load_with(
            &Overrides::default(),
            &env_of(&[("MAMORI_PUBLIC_URL", "https://mfa.example.com/")]),
        )
        .unwrap();
        assert_eq!(
            c.public_url_for("127.0.0.1:1".parse().unwrap()),
            "https://mfa.example.com"
        );
    }

    #[test]
    fn admin_links_use_the_url_the_server_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let c =
            Config::load_with(&Overrides::default(), &env_of(&[("MAMORI_DATA_DIR", d)])).unwrap();
        // No server started yet: the configured listen address.
        assert_eq!(c.admin_public_url(), "http://localhost:8080");
        write_server_url(&c.server_url_file(), "http://localhost:40123").unwrap();
        assert_eq!(c.admin_public_url(), "http://localhost:40123");
        // A damaged file is ignored.
        std::fs::write(c.server_url_file(), "javascript:alert(1)").unwrap();
        assert_eq!(c.admin_public_url(), "http://localhost:8080");
        std::fs::write(c.server_url_file(), "http://a\u{7}b").unwrap();
        assert_eq!(c.admin_public_url(), "http://localhost:8080");
        // A configured public URL wins.
        write_server_url(&c.server_url_file(), "http://localhost:40123").unwrap();
        let c = Config::load_with(
            &Overrides::default(),
            &env_of(&[
                ("MAMORI_DATA_DIR", d),
                ("MAMORI_PUBLIC_URL", "https://mfa.example.com"),
            ]),
        )
        .unwrap();
        assert_eq!(c.admin_public_url(), "https://mfa.example.com");
    }

    #[test]
    fn file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "service_name = \"ACME\"\nlisten = \"127.0.0.1:9000\"\n[limits]\nmax_devices = 3\n",
        )
        .unwrap();
        let o = Overrides {
            config_file: Some(f),
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            ..Default::default()
        };
        let c = Config::load_with(
            &o,
            &env_of(&[
                ("MAMORI_LIMITS_MAX_DEVICES", "4"),
                ("MAMORI_REQUIRE_MFA", "all"),
            ]),
        )
        .unwrap();
        assert_eq!(c.service_name, "ACME");
        assert_eq!(c.limits.max_devices, 4);
        assert_eq!(c.require_mfa, RequireMfa::All);
        assert_eq!(c.listen.port(), 9100);
    }

    #[test]
    fn invalid_values_are_refused_with_their_name() {
        let e = Config::load_with(
            &Overrides::default(),
            &env_of(&[("MAMORI_LOCKOUT_LOCK_AFTER", "500")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("lock_after"), "{e}");
        let e = Config::load_with(
            &Overrides::default(),
            &env_of(&[("MAMORI_LIMITS_MAX_DEVICES", "many")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("MAMORI_LIMITS_MAX_DEVICES"), "{e}");
        // #21: pruning sooner than the events must be kept contradicts the policy.
        let e = Config::load_with(
            &Overrides::default(),
            &env_of(&[("MAMORI_AUDIT_PRUNE_AFTER_DAYS", "30")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("audit_prune_after_days"), "{e}");
        let c = Config::load_with(
            &Overrides::default(),
            &env_of(&[("MAMORI_AUDIT_PRUNE_AFTER_DAYS", "0")]),
        )
        .unwrap();
        assert_eq!(c.audit_prune_after_days, 0);
        // #17: the signing keys' schedule, 0 (off) to ten years.
        let e = Config::load_with(
            &Overrides::default(),
            &env_of(&[("MAMORI_OIDC_KEY_ROTATION_DAYS", "3651")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("oidc_key_rotation_days"), "{e}");
        let c = Config::load_with(
            &Overrides::default(),
            &env_of(&[("MAMORI_OIDC_KEY_ROTATION_DAYS", "0")]),
        )
        .unwrap();
        assert_eq!(c.oidc_key_rotation_days, 0);
        assert_eq!(Config::default().oidc_key_rotation_days, 90);
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "no_such_key = 1\n").unwrap();
        let o = Overrides {
            config_file: Some(f),
            ..Default::default()
        };
        assert!(Config::load_with(&o, &env_of(&[])).is_err());
    }

    #[test]
    fn connection_and_hashing_limits() {
        let c = Config::load_with(&Overrides::default(), &env_of(&[])).unwrap();
        assert_eq!(c.limits.header_read_timeout_secs, 10);
        assert_eq!(c.limits.idle_timeout_secs, 60);
        assert_eq!(c.limits.max_connections, 512);
        assert!(c.limits.password_hash_concurrency >= 2);
        let c = Config::load_with(
            &Overrides::default(),
            &env_of(&[
                ("MAMORI_LIMITS_HEADER_READ_TIMEOUT_SECS", "2"),
                ("MAMORI_LIMITS_IDLE_TIMEOUT_SECS", "30"),
                ("MAMORI_LIMITS_MAX_CONNECTIONS", "100"),
                ("MAMORI_LIMITS_PASSWORD_HASH_CONCURRENCY", "3"),
            ]),
        )
        .unwrap();
        assert_eq!(c.limits.header_read_timeout_secs, 2);
        assert_eq!(c.limits.idle_timeout_secs, 30);
        assert_eq!(c.limits.max_connections, 100);
        assert_eq!(c.limits.password_hash_concurrency, 3);
        for (k, v, field) in [
            (
                "MAMORI_LIMITS_HEADER_READ_TIMEOUT_SECS",
                "0",
                "header_read_timeout",
            ),
            ("MAMORI_LIMITS_IDLE_TIMEOUT_SECS", "10", "idle_timeout"),
            ("MAMORI_LIMITS_MAX_CONNECTIONS", "0", "max_connections"),
            (
                "MAMORI_LIMITS_PASSWORD_HASH_CONCURRENCY",
                "0",
                "password_hash",
            ),
        ] {
            let e = Config::load_with(&Overrides::default(), &env_of(&[(k, v)])).unwrap_err();
            assert!(e.to_string().contains(field), "{e}");
        }
    }

    #[test]
    fn recovery_keys_from_file_and_environment() {
        let c = Config::load_with(&Overrides::default(), &env_of(&[])).unwrap();
        assert_eq!(
            c.recovery.alternative_factors,
            AlternativeFactors::VerifiedContacts
        );
        assert_eq!(c.recovery.default_language, MailLanguage::En);
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "[recovery]\nalternative_factors = \"off\"\ndefault_language = \"ja\"\n",
        )
        .unwrap();
        let o = Overrides {
            config_file: Some(f),
            ..Default::default()
        };
        let c = Config::load_with(&o, &env_of(&[])).unwrap();
        assert_eq!(c.recovery.alternative_factors, AlternativeFactors::Off);
        assert_eq!(c.recovery.default_language, MailLanguage::Ja);
        let c = Config::load_with(
            &o,
            &env_of(&[
                ("MAMORI_RECOVERY_ALTERNATIVE_FACTORS", "verified_contacts"),
                ("MAMORI_RECOVERY_DEFAULT_LANGUAGE", "en"),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.recovery.alternative_factors,
            AlternativeFactors::VerifiedContacts
        );
        assert_eq!(c.recovery.default_language, MailLanguage::En);
        let e = Config::load_with(
            &Overrides::default(),
            &env_of(&[("MAMORI_RECOVERY_ALTERNATIVE_FACTORS", "always")]),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("MAMORI_RECOVERY_ALTERNATIVE_FACTORS"),
            "{e}"
        );
    }

    #[test]
    fn acme_needs_an_https_public_url_with_a_dns_name_and_no_files() {
        assert_eq!(
            acme_domain("https://MFA.Example.com:8443/x").as_deref(),
            Some("mfa.example.com")
        );
        assert_eq!(
            acme_domain("https://a.localhost").as_deref(),
            Some("a.localhost")
        );
        for bad in [
            "http://mfa.example.com",
            "https://10.0.0.1",
            "https://[::1]:443",
            "https://user@mfa.example.com",
            "https://mfa..example.com",
            "https://-a.example.com",
            "https://1.2.3",
            "https://",
        ] {
            assert_eq!(acme_domain(bad), None, "{bad}");
        }
        let ok = [
            ("MAMORI_TLS_ACME", "true"),
            ("MAMORI_PUBLIC_URL", "https://mfa.example.com"),
            ("MAMORI_TLS_ACME_CONTACT", "ops@example.com"),
            ("MAMORI_TLS_REDIRECT_LISTEN", "0.0.0.0:80"),
        ];
        let c = Config::load_with(&Overrides::default(), &env_of(&ok)).unwrap();
        assert!(c.tls.enabled() && c.tls.acme);
        assert_eq!(c.tls.acme_directory, LETS_ENCRYPT_DIRECTORY);
        assert_eq!(c.tls.redirect_listen, Some("0.0.0.0:80".parse().unwrap()));
        assert_eq!(
            c.public_url_for("127.0.0.1:1".parse().unwrap()),
            "https://mfa.example.com"
        );
        for (change, why) in [
            (("MAMORI_PUBLIC_URL", "https://10.1.2.3"), "DNS name"),
            (("MAMORI_PUBLIC_URL", "http://mfa.example.com"), "https://"),
            (("MAMORI_TLS_ACME_CONTACT", "a@b.c, d@e.f"), "one email"),
            (
                ("MAMORI_TLS_ACME_DIRECTORY", "http://ca.test/dir"),
                "https:// URL",
            ),
            (("MAMORI_TLS_CERT_FILE", "/c.pem"), "choose one"),
            (("MAMORI_TLS_ACME_CHECK_SECS", "0"), "acme_check_secs"),
            (
                ("MAMORI_TLS_REDIRECT_LISTEN", "port 80"),
                "MAMORI_TLS_REDIRECT_LISTEN",
            ),
        ] {
            let mut env = ok.to_vec();
            env.retain(|(k, _)| *k != change.0);
            env.push(change);
            if change.0 == "MAMORI_TLS_CERT_FILE" {
                env.push(("MAMORI_TLS_KEY_FILE", "/k.pem"));
            }
            let e = Config::load_with(&Overrides::default(), &env_of(&env)).unwrap_err();
            assert!(e.to_string().contains(why), "{change:?}: {e}");
        }
        let e = Config::load_with(
            &Overrides::default(),
            &env_of(&[("MAMORI_TLS_REDIRECT_LISTEN", "0.0.0.0:80")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("needs HTTPS"), "{e}");
    }

    #[test]
    fn tls_needs_both_files_and_an_https_public_url() {
        let c = Config::load_with(&Overrides::default(), &env_of(&[])).unwrap();
        assert!(!c.tls.enabled());
        assert_eq!(c.tls.hsts_max_age_secs, 31_536_000);
        assert_eq!(c.tls.reload_secs, 10);
        let both = [
            ("MAMORI_TLS_CERT_FILE", "/etc/mamori/cert.pem"),
            ("MAMORI_TLS_KEY_FILE", "/etc/mamori/key.pem"),
            ("MAMORI_TLS_HSTS_MAX_AGE_SECS", "0"),
            ("MAMORI_TLS_RELOAD_SECS", "2"),
        ];
        let c = Config::load_with(&Overrides::default(), &env_of(&both)).unwrap();
        assert!(c.tls.enabled());
        assert_eq!(c.tls.hsts_max_age_secs, 0);
        assert_eq!(c.tls.reload_secs, 2);
        // The default public URL follows the scheme the server speaks.
        assert_eq!(
            c.public_url_for("127.0.0.1:8443".parse().unwrap()),
            "https://localhost:8443"
        );
        assert_eq!(
            c.public_url_for("192.0.2.7:8443".parse().unwrap()),
            "https://192.0.2.7:8443"
        );
        for (pair, missing) in [(&both[..1], "tls.key_file"), (&both[1..2], "tls.cert_file")] {
            let e = Config::load_with(&Overrides::default(), &env_of(pair)).unwrap_err();
            assert!(e.to_string().contains(missing), "{e}");
        }
        let mut with_http = both.to_vec();
        with_http.push(("MAMORI_PUBLIC_URL", "http://mfa.example.com"));
        let e = Config::load_with(&Overrides::default(), &env_of(&with_http)).unwrap_err();
        assert!(e.to_string().contains("https://"), "{e}");
        let mut zero = both.to_vec();
        zero.push(("MAMORI_TLS_RELOAD_SECS", "0"));
        zero.remove(3);
        let e = Config::load_with(&Overrides::default(), &env_of(&zero)).unwrap_err();
        assert!(e.to_string().contains("reload_secs"), "{e}");
        // An empty variable turns TLS from the file off again.
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "[tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n").unwrap();
        let o = Overrides {
            config_file: Some(f),
            ..Default::default()
        };
        assert!(Config::load_with(&o, &env_of(&[])).unwrap().tls.enabled());
        let c = Config::load_with(
            &o,
            &env_of(&[("MAMORI_TLS_CERT_FILE", ""), ("MAMORI_TLS_KEY_FILE", "")]),
        )
        .unwrap();
        assert!(!c.tls.enabled());
    }
}

//! Storage: one trait, [`Store`], with an SQLite and a PostgreSQL implementation.
//!
//! Both implementations run the same portable SQL (positional `$n` parameters, `RETURNING`,
//! `ON CONFLICT`), written once in `sql_common.rs` and included into each backend module, so
//! they cannot drift apart; each backend has its own migration set under `migrations/`.
//! Every rule that must hold across server nodes is one atomic statement here: accepting a
//! time step (replay), counting second-factor failures (guessing), the device limit, and
//! consuming one-time tokens.
//!
//! Records are the database's types, separate from the wire types of `mamori-api`; times are Unix
//! seconds; ids are UUID strings.

use async_trait::async_trait;

use crate::clock::UnixTime;
use crate::error::{Error, Result, StoreError};
pub use crate::redacted::Redacted;

pub mod forward_auth;
pub mod groups;
pub mod oidc;
pub mod postgres;
pub mod preferences;
pub mod recovery;
// #15 recovery
pub mod recovery_pending;
pub mod review;
pub mod sqlite;
pub mod sync;
// #22 built-in HTTPS
pub mod tls;
pub mod tokens;
pub mod webauthn;

pub use forward_auth::ForwardAuthStore;
pub use groups::GroupStore;
pub use oidc::OidcStore;
pub use preferences::PreferencesStore;
pub use recovery::RecoveryStore;
pub use review::ReviewStore;
pub use sync::SyncStore;
pub use tls::TlsStore;
pub use tokens::TokenStore;
pub use webauthn::WebauthnStore;

/// Account role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// May manage users, keys and read the audit log.
    Admin,
    /// Manages only their own devices and sessions.
    User,
}

impl Role {
    /// Stored and wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Result<Role> {
        match s {
            "admin" => Ok(Role::Admin),
            "user" => Ok(Role::User),
            other => Err(Error::InvalidInput(format!(
                "role must be admin or user, not {other:?}"
            ))),
        }
    }
}

/// An account row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    /// UUID.
    pub id: String,
    /// Unique user name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Contact email.
    pub email: Option<String>,
    /// Contact phone.
    pub phone: Option<String>,
    /// Argon2id PHC string; `None` until the user chose a password through a setup link.
    pub password_hash: Option<Redacted<String>>,
    /// When the password was last set.
    pub password_changed_at: Option<UnixTime>,
    /// Creation time.
    pub created_at: UnixTime,
    /// Consecutive failed second-factor attempts (all nodes share this count).
    pub mfa_failures: i64,
    /// Time of the last failed second-factor attempt.
    pub mfa_last_failure_at: Option<UnixTime>,
    /// Set when the account was locked by failed attempts.
    pub locked_at: Option<UnixTime>,
}

/// Kind of an MFA device. Later kinds keep their own data in [`DeviceRecord::credential`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// A TOTP authenticator app ("virtual MFA device").
    Virtual,
    /// A FIDO/WebAuthn security key (its credential in `credential`).
    SecurityKey,
    /// A vendor's hardware OTP token with a serial number (TOTP or HOTP secret in `secret`).
    HardwareOtp,
}

impl DeviceKind {
    /// Stored and wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Virtual => "virtual",
            DeviceKind::SecurityKey => "security_key",
            DeviceKind::HardwareOtp => "hardware_otp",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Result<DeviceKind> {
        match s {
            "virtual" => Ok(DeviceKind::Virtual),
            "security_key" => Ok(DeviceKind::SecurityKey),
            "hardware_otp" => Ok(DeviceKind::HardwareOtp),
            other => Err(StoreError::Corrupt(format!("unknown device kind {other:?}")).into()),
        }
    }

    /// Whether the device answers with one-time codes from a stored secret.
    pub fn is_otp(self) -> bool {
        matches!(self, DeviceKind::Virtual | DeviceKind::HardwareOtp)
    }
}

/// A device row. The secret is stored only encrypted with the server key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// UUID; also the associated data of the encrypted secret.
    pub id: String,
    /// Owner.
    pub account_id: String,
    /// Kind.
    pub kind: DeviceKind,
    /// Name, unique per account.
    pub name: String,
    /// Serial: `mamori:mfa/USER/NAME` for virtual devices, the vendor's serial for tokens.
    pub serial: String,
    /// Creation time.
    pub created_at: UnixTime,
    /// When enabled (two consecutive codes given); `None` while pending.
    pub enabled_at: Option<UnixTime>,
    /// Last successful use.
    pub last_used_at: Option<UnixTime>,
    /// OTP secret sealed with the server key (OTP kinds only).
    pub secret_sealed: Option<Redacted<Vec<u8>>>,
    /// `totp` or `hotp`.
    pub otp_type: String,
    /// `SHA1`, `SHA256` or `SHA512`.
    pub algorithm: String,
    /// Code length.
    pub digits: i64,
    /// TOTP period in seconds.
    pub period: i64,
    /// Remembered clock drift in steps (TOTP) or counter look-ahead used (HOTP).
    pub drift: i64,
    /// Last accepted time step or HOTP counter; only a later one is ever accepted.
    pub last_step: Option<i64>,
    /// Opaque credential for security keys (serialized by the WebAuthn layer).
    pub credential: Option<Vec<u8>>,
}

/// What a session may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// A sign-in challenge: the password was right, a second factor is awaited.
    MfaPending,
    /// Signed in, but the policy allows only enrolling an MFA device.
    EnrollmentRequired,
    /// Fully signed in.
    Full,
    /// Signed in with alternative factors (email, then phone): may only manage MFA devices
    /// until a new device is enabled (docs/recovery.md).
    Recovery,
}

impl SessionState {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::MfaPending => "mfa_pending",
            SessionState::EnrollmentRequired => "enrollment_required",
            SessionState::Full => "full",
            SessionState::Recovery => "recovery",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Result<SessionState> {
        match s {
            "mfa_pending" => Ok(SessionState::MfaPending),
            "enrollment_required" => Ok(SessionState::EnrollmentRequired),
            "full" => Ok(SessionState::Full),
            "recovery" => Ok(SessionState::Recovery),
            other => Err(StoreError::Corrupt(format!("unknown session state {other:?}")).into()),
        }
    }
}

/// A session (or sign-in challenge) row. Only the SHA-256 of the token is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Public id (UUID), used to list and revoke.
    pub id: String,
    /// SHA-256 of the bearer token.
    pub token_hash: Vec<u8>,
    /// Owner.
    pub account_id: String,
    /// State.
    pub state: SessionState,
    /// Creation time.
    pub created_at: UnixTime,
    /// Last activity (idle timeout).
    pub last_seen_at: UnixTime,
    /// Absolute expiry.
    pub expires_at: UnixTime,
    /// When a second factor was last verified in this session.
    pub second_factor_at: Option<UnixTime>,
    /// Client address at creation.
    pub client_addr: Option<String>,
    /// User agent at creation.
    pub user_agent: Option<String>,
}

/// An application key row (for the validate API). Only the SHA-256 of the key is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppKeyRecord {
    /// UUID.
    pub id: String,
    /// Name of the application.
    pub name: String,
    /// SHA-256 of the key.
    pub key_hash: Vec<u8>,
    /// Creation time.
    pub created_at: UnixTime,
    /// Who created it.
    pub created_by: Option<String>,
    /// Revocation time.
    pub revoked_at: Option<UnixTime>,
    /// Whether the key may validate codes of root (false by default: a key without it answers
    /// for root like for an unknown user, so an application cannot lock root out).
    pub allow_root: bool,
    /// Whether the key may ask if an account has no MFA device (`POST /api/v1/validate/status`,
    /// the PAM module's `no_device = allow`; false by default: without it the validate API never
    /// tells an application whether an account exists or has devices). Migration 0014.
    pub allow_no_device: bool,
}

/// The failure history of a user name no account has, as the validate API sees it: counted
/// like an account's second-factor failures, so that an unknown name is throttled and locked
/// exactly when an account with the same history would be. Keyed by the SHA-256 of the name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhantomRecord {
    /// Consecutive failed validations of this name.
    pub failures: i64,
    /// Time of the last of them.
    pub last_failure_at: Option<UnixTime>,
    /// When the count reached the lock threshold.
    pub locked_at: Option<UnixTime>,
}

/// Who a validate request names, read in one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValidateSubject {
    /// An account with its devices (oldest first).
    Account(AccountRecord, Vec<DeviceRecord>),
    /// No account has the name: its phantom failure history (zero when it has none).
    Unknown(PhantomRecord),
}

/// An audit event to record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewAuditEvent {
    /// Time.
    pub at: UnixTime,
    /// The account concerned (user name).
    pub account: Option<String>,
    /// Who acted.
    pub actor: Option<String>,
    /// Client address.
    pub client_addr: Option<String>,
    /// User agent.
    pub user_agent: Option<String>,
    /// Event kind.
    pub kind: String,
    /// Result.
    pub result: String,
    /// Non-secret detail.
    pub detail: Option<String>,
}

/// Longest stored audit detail, in characters.
pub const AUDIT_DETAIL_MAX: usize = 512;
/// Longest stored audit user agent, in characters.
pub const AUDIT_USER_AGENT_MAX: usize = 256;
/// Longest stored audit account, actor, client address, kind or result, in characters.
pub const AUDIT_NAME_MAX: usize = 128;

/// `text` as it may be stored in the audit log: control characters replaced with U+FFFD, at
/// most `max` characters (the last one `…` when cut).
pub fn audit_text(text: &str, max: usize) -> String {
    let clean = |c: char| if c.is_control() { '\u{FFFD}' } else { c };
    if text.chars().count() <= max {
        return text.chars().map(clean).collect();
    }
    let mut out: String = text
        .chars()
        .take(max.saturating_sub(1))
        .map(clean)
        .collect();
    out.push('…');
    out
}

impl NewAuditEvent {
    /// The event as it is stored: every text field through [`audit_text`] (details up to
    /// [`AUDIT_DETAIL_MAX`], user agents [`AUDIT_USER_AGENT_MAX`], the rest
    /// [`AUDIT_NAME_MAX`] characters).
    pub fn bounded(&self) -> NewAuditEvent {
        let name = |s: &String| audit_text(s, AUDIT_NAME_MAX);
        NewAuditEvent {
            at: self.at,
            account: self.account.as_ref().map(name),
            actor: self.actor.as_ref().map(name),
            client_addr: self.client_addr.as_ref().map(name),
            user_agent: self
                .user_agent
                .as_ref()
                .map(|s| audit_text(s, AUDIT_USER_AGENT_MAX)),
            kind: name(&self.kind),
            result: name(&self.result),
            detail: self
                .detail
                .as_ref()
                .map(|s| audit_text(s, AUDIT_DETAIL_MAX)),
        }
    }
}

/// A stored audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Increasing sequence number.
    pub id: i64,
    /// The event.
    pub event: NewAuditEvent,
}

/// Audit query.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this account.
    pub account: Option<String>,
    /// Only this kind (exact) or kind prefix ending in `.`.
    pub kind: Option<String>,
    /// Only events with id greater than this.
    pub after: Option<i64>,
    /// At most this many (clamped to 1..=1000).
    pub limit: i64,
}

/// Result of settling a failed second-factor attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureCount {
    /// Consecutive failures including this one.
    pub failures: i64,
    /// Whether the account is now locked.
    pub locked: bool,
    /// Whether this call is the one that locked it.
    pub locked_now: bool,
}

/// Storage for the account service. Implementations must make each method atomic.
#[async_trait]
pub trait Store:
    SyncStore
    + RecoveryStore
    + TokenStore
    + ReviewStore
    + WebauthnStore
    + recovery_pending::PendingRecoveryStore
    + PreferencesStore
    + GroupStore
    + ForwardAuthStore
    + TlsStore
    + OidcStore
    + Send
    + Sync
    + 'static
{
    /// Which backend (`sqlite` or `postgres`).
    fn backend(&self) -> &'static str;

    /// Closes every connection (on shutdown; SQLite then checkpoints its write-ahead log).
    async fn close(&self);

    /// Writes a consistent copy of the whole database to `path`, a new file (mode 0600: it
    /// holds password hashes and sealed OTP seeds) that must not exist yet, while other
    /// connections go on reading and writing (SQLite: `VACUUM INTO`, one read transaction).
    /// PostgreSQL answers `InvalidInput` pointing to `pg_dump`: a server cannot write a file
    /// on the database's host, and `pg_dump` is the consistent online copy there.
    async fn backup_into(&self, path: &std::path::Path) -> Result<()>;

    /// Reads a value from the metadata table.
    async fn meta_get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Sets a value in the metadata table only if it is not set yet; returns whether it was set.
    async fn meta_init(&self, key: &str, value: &[u8]) -> Result<bool>;

    /// Inserts an account; `Conflict` if the name is taken.
    async fn create_account(&self, a: &AccountRecord) -> Result<()>;
    /// Looks an account up by name.
    async fn account_by_name(&self, name: &str) -> Result<Option<AccountRecord>>;
    /// Looks an account up by name together with its devices (oldest first), in one query:
    /// the validate API's hot path, where every statement costs a round trip (a thread hop on
    /// SQLite, a network round trip on PostgreSQL).
    async fn account_with_devices(
        &self,
        name: &str,
    ) -> Result<Option<(AccountRecord, Vec<DeviceRecord>)>>;
    /// The validate API's one read: the account of `name` with its devices, or, when no
    /// account has the name, the phantom failure history stored under `phantom_key` (the
    /// SHA-256 of the name). One statement either way, so that an unknown name costs the same
    /// round trips as a known one.
    async fn validate_subject(&self, name: &str, phantom_key: &[u8]) -> Result<ValidateSubject>;
    /// The phantom failure history under `key` (zero when there is none).
    async fn phantom_failures(&self, key: &[u8]) -> Result<PhantomRecord>;
    /// Counts one phantom failure under `key` in one conditional statement, only if the stored
    /// count is still `seen` (the count the caller decided on): returns the new count and
    /// whether it reached `lock_after` (which sets the lock time), or `None` when another
    /// request changed the count first.
    async fn record_phantom_failure(
        &self,
        key: &[u8],
        seen: i64,
        now: UnixTime,
        lock_after: i64,
    ) -> Result<Option<FailureCount>>;
    /// Looks an account up by id.
    async fn account_by_id(&self, id: &str) -> Result<Option<AccountRecord>>;
    /// All accounts by name.
    async fn list_accounts(&self) -> Result<Vec<AccountRecord>>;
    /// Number of accounts.
    async fn count_accounts(&self) -> Result<i64>;
    /// Sets the password hash.
    async fn set_password(&self, account_id: &str, hash: &str, now: UnixTime) -> Result<()>;

    /// Reserves one second-factor attempt *before* it is evaluated, counting it as a failure
    /// (and as the last failure time) in one conditional update: only if the account is
    /// unlocked, its count is still `seen_failures` with last failure `seen_last` (the state the
    /// caller's throttle decision was made on) and below `lock_after`. `false` when another
    /// attempt, on any node, changed the row first: re-read and decide again. So N parallel
    /// guesses can never be evaluated more often than the policy allows.
    async fn reserve_mfa_attempt(
        &self,
        account_id: &str,
        seen_failures: i64,
        seen_last: Option<UnixTime>,
        now: UnixTime,
        lock_after: i64,
    ) -> Result<bool>;
    /// A right answer claims its place in the same order as reservations: one conditional
    /// update that clears the count (and last failure time) only if the account is unlocked
    /// and its count is still `seen_failures` with last failure `seen_last`, below
    /// `lock_after`. `false` when another attempt changed the row first: re-read and decide
    /// again. (Reserving and then clearing would do the same in two statements.)
    async fn claim_mfa_success(
        &self,
        account_id: &str,
        seen_failures: i64,
        seen_last: Option<UnixTime>,
        lock_after: i64,
    ) -> Result<bool>;
    /// A reserved attempt failed: locks the account when the count has reached `lock_after`.
    /// [`FailureCount::locked_now`] is true for exactly one caller, the one whose statement set
    /// the lock.
    async fn settle_mfa_failure(
        &self,
        account_id: &str,
        now: UnixTime,
        lock_after: i64,
    ) -> Result<FailureCount>;
    /// Gives back a reserved attempt that was not a failure (nothing live to check it against,
    /// or a right answer that is no second factor): one less failure, never below zero, never
    /// on a locked account; the last failure time goes back to `before` when it is still the
    /// reservation's `reserved_at` (no other attempt came since), so the attempt does not
    /// delay the next one.
    async fn release_mfa_attempt(
        &self,
        account_id: &str,
        reserved_at: UnixTime,
        before: Option<UnixTime>,
    ) -> Result<()>;
    /// Resets the consecutive-failure count after a success (no write when already zero).
    async fn reset_mfa_failures(&self, account_id: &str) -> Result<()>;
    /// Removes every device, unlocks the account and resets its failures (administrator reset).
    async fn reset_mfa(&self, account_id: &str) -> Result<u64>;

    /// Inserts a device unless the account already has `max_devices`
    /// (`DeviceLimitReached`) or the name is taken (`Conflict`); atomic across nodes.
    async fn create_device(&self, d: &DeviceRecord, max_devices: i64) -> Result<()>;
    /// Virtual devices created before `cutoff` and never enabled (for the sweeper).
    async fn pending_devices_created_before(&self, cutoff: UnixTime) -> Result<Vec<DeviceRecord>>;
    /// The account's devices, oldest first.
    async fn devices_for_account(&self, account_id: &str) -> Result<Vec<DeviceRecord>>;
    /// One of the account's devices.
    async fn device(&self, account_id: &str, device_id: &str) -> Result<Option<DeviceRecord>>;
    /// Enables a pending device, remembering drift and the last used step; false if it was not
    /// pending.
    async fn enable_device(
        &self,
        device_id: &str,
        now: UnixTime,
        drift: i64,
        last_step: i64,
    ) -> Result<bool>;
    /// Records a resync: new drift and last step, only if `last_step` is later than the stored
    /// one; false otherwise.
    async fn resync_device(&self, device_id: &str, drift: i64, last_step: i64) -> Result<bool>;
    /// The replay rule: accepts `step` for an enabled device only if it is later than the last
    /// accepted step, in one conditional update. Returns false if another request (on any node)
    /// already accepted this or a later step.
    async fn accept_step(
        &self,
        device_id: &str,
        step: i64,
        drift: i64,
        now: UnixTime,
    ) -> Result<bool>;
    /// Renames a device; `Conflict` if the name is taken; false if no such device.
    async fn rename_device(
        &self,
        account_id: &str,
        device_id: &str,
        name: &str,
        serial: &str,
    ) -> Result<bool>;
    /// Deletes a device; false if no such device.
    async fn delete_device(&self, account_id: &str, device_id: &str) -> Result<bool>;

    /// Inserts a session.
    async fn create_session(&self, s: &SessionRecord) -> Result<()>;
    /// Looks a session up by token hash.
    async fn session_by_token_hash(&self, hash: &[u8]) -> Result<Option<SessionRecord>>;
    /// Updates the last activity time.
    async fn touch_session(&self, id: &str, now: UnixTime) -> Result<()>;
    /// Records a verified second factor in a session.
    async fn set_session_second_factor(&self, id: &str, now: UnixTime) -> Result<()>;
    /// The account's sessions (not challenges), newest first.
    async fn sessions_for_account(&self, account_id: &str) -> Result<Vec<SessionRecord>>;
    /// Deletes one of the account's sessions (or challenges); false if none. Deleting a
    /// challenge is how a sign-in consumes it: only one concurrent request sees `true`.
    async fn delete_session(&self, account_id: &str, id: &str) -> Result<bool>;
    /// Deletes all of the account's sessions; returns how many.
    async fn delete_sessions_for_account(&self, account_id: &str) -> Result<u64>;
    /// Deletes the account's sessions and challenges except `keep` (a password change ends
    /// every other session); returns how many.
    async fn delete_other_sessions(&self, account_id: &str, keep: &str) -> Result<u64>;
    /// Deletes expired sessions and challenges.
    async fn purge_expired_sessions(&self, now: UnixTime, idle_secs: i64) -> Result<u64>;

    /// Stores a one-time setup token (hash) for an account.
    async fn create_setup_token(
        &self,
        hash: &[u8],
        account_id: &str,
        expires_at: UnixTime,
    ) -> Result<()>;
    /// The account of an unused, unexpired setup token, without consuming it.
    async fn setup_token_account(&self, hash: &[u8], now: UnixTime) -> Result<Option<String>>;
    /// Consumes a setup token atomically; returns its account id if it was unused and unexpired.
    async fn consume_setup_token(&self, hash: &[u8], now: UnixTime) -> Result<Option<String>>;

    /// Inserts an application key.
    async fn create_app_key(&self, k: &AppKeyRecord) -> Result<()>;
    /// Looks an unrevoked application key up by hash.
    async fn app_key_by_hash(&self, hash: &[u8]) -> Result<Option<AppKeyRecord>>;
    /// All application keys.
    async fn list_app_keys(&self) -> Result<Vec<AppKeyRecord>>;
    /// Revokes an unrevoked application key (sets `revoked_at`) and forgets it in this node's
    /// key cache; false if there is no such unrevoked key.
    async fn revoke_app_key(&self, id: &str, now: UnixTime) -> Result<bool>;

    /// Appends an audit event; returns its id.
    async fn insert_audit(&self, e: &NewAuditEvent) -> Result<i64>;
    /// Reads audit events, oldest first.
    async fn list_audit(&self, f: &AuditFilter) -> Result<Vec<AuditRecord>>;
    /// Deletes at most `limit` of the oldest events recorded before `before`; returns how many.
    /// Bounded, so that pruning a long backlog never holds the writer for long.
    async fn prune_audit_before(&self, before: UnixTime, limit: i64) -> Result<u64>;
    /// How many events of `kind` with `result` the account `account` (its name) has at or after
    /// `since`, and the time of the oldest of them: per-account limits that need the history,
    /// such as recovery sign-in starts per hour.
    async fn count_audit_since(
        &self,
        account: &str,
        kind: &str,
        result: &str,
        since: UnixTime,
    ) -> Result<(i64, Option<UnixTime>)>;
    /// [`Store::count_audit_since`] for the events whose detail is exactly `detail` (per-channel
    /// limits: contact codes sent per channel per hour).
    async fn count_audit_detail_since(
        &self,
        account: &str,
        kind: &str,
        result: &str,
        detail: &str,
        since: UnixTime,
    ) -> Result<(i64, Option<UnixTime>)>;
}

/// Opens the store for a database URL (`sqlite://PATH` or `postgres://...`) and runs its
/// migrations.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(std::sync::Arc::new(postgres::PgStore::connect(url).await?))
    } else if let Some(path) = url.strip_prefix("sqlite://") {
        Ok(std::sync::Arc::new(
            sqlite::SqliteStore::open(std::path::Path::new(path)).await?,
        ))
    } else {
        Err(Error::Config(format!(
            "database must be sqlite://PATH or postgres://..., not {url:?}"
        )))
    }
}

/// Removes a copy written by [`Store::backup_into`] when a later step of the backup failed, so
/// that no backup is left that looks complete but is not (errors ignored: the failed step's
/// error is the one to report).
pub fn discard_backup(path: &std::path::Path) {
    let _ = std::fs::remove_file(path);
}

fn clamp_limit(limit: i64) -> i64 {
    limit.clamp(1, 1000)
}

/// Maps a unique-constraint violation to `Conflict`.
fn map_unique(e: sqlx::Error, what: &str) -> Error {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            Error::Conflict(format!("{what} already exists"))
        }
        _ => Error::from(e),
    }
}

#[cfg(test)]
pub(crate) mod suite;

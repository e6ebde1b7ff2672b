//! The rules of the account service. This layer knows neither HTTP nor SQL: it keeps state
//! through the [`Store`] trait, is given the time (`now`, Unix seconds) and a random number
//! generator by its caller, and returns domain results that the edges translate.
//!
//! - [`password`]: password policy and Argon2id hashing.
//! - [`accounts`]: root bootstrap, users, setup links, password change, security alerts.
//! - [`factors`]: second-factor verification with the replay, throttling and lock rules; the
//!   [`SecondFactorVerified`] proof.
//! - [`factor_changes`]: who may change whose factors, and when: the one rule every edge
//!   calls before a device, token, key, recovery-code set or MFA reset changes anything.
//! - [`devices`]: virtual MFA devices (create, enable with two consecutive codes, resync, list,
//!   rename, delete).
//! - [`session`]: what a session is granted on and what an authenticated request carries
//!   (shared by sign-in, recovery sign-in and every module acting for a user).
//! - [`signin`]: the sign-in state machine and sessions.
//! - [`appkeys`]: application keys and the validate API.
//! - [`audit`]: audit events.
//! - [`recovery`]: recovery codes (single use, salted Argon2id hashes).
//! - [`recovery_signin`]: signing in with alternative factors (email, then phone) into a
//!   recovery session that may only manage MFA devices.
//! - [`notify`]: security notifications (what to say, to whom, in which language).
//! - [`transport`]: the [`transport::Notifier`] and [`transport::PhoneGateway`] seams the
//!   edges implement, and the messages they carry.
//! - [`sync`]: end-to-end-encrypted authenticator sync (devices, wrapped keys, items).
//! - [`tokens`]: hardware OTP tokens: the inventory imported from seed files, assignment by
//!   serial number and two consecutive codes.
//! - [`webauthn`]: security keys (WebAuthn/FIDO2): registration and the second-factor step,
//!   ceremonies kept in the database, the signature-counter rule.

use std::sync::Arc;

use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::clock::UnixTime;
use crate::config::{
    AlternativeFactors, Config, Lockout, MailLanguage, PasswordConfig, RequireMfa,
};
use crate::error::{Error, Result, StoreError};
use crate::keys::ServerKey;
use crate::store::Store;

pub mod accounts;
pub mod appkeys;
pub mod audit;
pub mod backup;
pub mod console_support;
pub mod contacts;
pub mod delivery;
pub mod devices;
pub mod factor_changes;
pub mod factors;
pub mod forward_auth;
pub mod forward_cache;
pub mod groups;
pub mod notify;
// #17 the OpenID provider
pub mod oidc;
pub mod oidc_jwt;
pub mod password;
// #15 contacts
pub mod phone;
pub mod preferences;
pub mod radius;
pub mod recovery;
pub mod recovery_signin;
// #15 recovery
pub mod recovery_wait;
pub mod review;
pub mod session;
pub mod signin;
pub mod sync;
// #15 polish
pub mod sync_devices;
// #22 built-in HTTPS
pub mod tls_state;
pub mod tokens;
pub mod transport;
pub mod webauthn;

pub use factors::SecondFactorVerified;

/// The name of the account created on first start.
pub const ROOT: &str = "root";
/// Sessions end after this much inactivity (30 minutes).
pub const SESSION_IDLE_SECS: i64 = 30 * 60;
/// Sessions end this long after sign-in whatever the activity (12 hours).
pub const SESSION_ABSOLUTE_SECS: i64 = 12 * 60 * 60;
/// A sign-in challenge (password given, code awaited) lasts 5 minutes.
pub const CHALLENGE_SECS: i64 = 5 * 60;
/// Sensitive changes need a second factor given within the last 5 minutes.
pub const RECENT_FACTOR_SECS: i64 = 5 * 60;
/// Setup links are valid for 1 hour.
pub const SETUP_LINK_SECS: i64 = 60 * 60;
/// Enrollment and resync search ±10 time steps for the two consecutive codes.
pub const ENROLL_WINDOW: u64 = 10;
/// How many HOTP counter values past the last known one assignment and resync search for two
/// consecutive codes (buttons pressed while the token lay in a drawer).
pub const TOKEN_LOOK_AHEAD: u64 = 50;

/// Sign-in and validation accept the expected step ±1 (RFC 6238 section 5.2 recommends at
/// most one step of network delay).
pub const VERIFY_WINDOW: u64 = 1;
/// HOTP look-ahead for hardware tokens (RFC 4226 section 7.4).
pub const HOTP_LOOK_AHEAD: u64 = 10;

/// The policy the domain applies, taken from the configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Issuer shown in authenticator apps.
    pub service_name: String,
    /// Base URL for setup links.
    pub public_url: String,
    /// Which accounts must enroll MFA first.
    pub require_mfa: RequireMfa,
    /// Devices per user.
    pub max_devices: u32,
    /// Guessing protection.
    pub lockout: Lockout,
    /// Password policy.
    pub password: PasswordConfig,
    /// The phone gateway provider (`webhook`, `log`), if one is configured.
    pub phone_gateway: Option<String>,
    /// How many days audit events must be kept.
    pub audit_retention_days: u32,
    /// Audit events older than this many days are pruned (0: never).
    pub audit_prune_after_days: u32,
    /// Days after which the OpenID provider's signing keys are replaced (0: never by itself).
    pub oidc_key_rotation_days: u32,
    /// Who may sign in with alternative factors.
    pub alternative_factors: AlternativeFactors,
    /// Language of emails.
    pub mail_language: MailLanguage,
    // #15 recovery
    /// Seconds an alternative-factor recovery waits when the account has other factors.
    pub recovery_wait_secs: i64,

    // #15 contacts
    /// Region in which phone numbers without `+` country code are read.
    pub phone_region: phonenumber::country::Id,

    /// The compiled forward-auth rules (#18).
    pub forward_auth: forward_auth::Rules,
}

impl Policy {
    /// The policy of a configuration, with the public URL decided by the caller.
    pub fn from_config(c: &Config, public_url: String) -> Policy {
        Policy {
            service_name: c.service_name.clone(),
            public_url,
            require_mfa: c.require_mfa,
            max_devices: c.limits.max_devices,
            lockout: c.lockout.clone(),
            password: c.password.clone(),
            phone_gateway: match c.phone.provider.trim() {
                "" | "none" => None,
                other => Some(other.to_string()),
            },
            audit_retention_days: c.audit_retention_days,
            audit_prune_after_days: c.audit_prune_after_days,
            oidc_key_rotation_days: c.oidc_key_rotation_days,
            alternative_factors: c.recovery.alternative_factors,
            mail_language: c.recovery.default_language,
            recovery_wait_secs: c.recovery.waiting_period(),

            // Config::validate refuses an unknown region; the fallback only serves
            // configurations built in code without validation.
            phone_region: phone::parse_region(&c.phone.default_region)
                .unwrap_or(phonenumber::country::Id::JP),
            // Config::validate refuses a bad rule at start; a configuration built in code
            // without validation gets no rules, which denies every forward-auth request.
            forward_auth: forward_auth::Rules::compile(&c.forward_auth).unwrap_or_default(),
        }
    }
}

/// Who is asking, for the audit log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestMeta {
    /// Client address.
    pub client_addr: Option<String>,
    /// User agent (truncated).
    pub user_agent: Option<String>,
}

impl RequestMeta {
    /// Metadata for the admin command line.
    pub fn cli() -> RequestMeta {
        RequestMeta {
            client_addr: None,
            user_agent: Some("mamori-server admin".into()),
        }
    }
}

/// One request as the rules see it: the time it is decided at (`now`, Unix seconds) and who is
/// asking ([`RequestMeta`], for the audit log). The edges build it once per request and hand
/// it to every rule the request runs; it is `Copy`, so a rule passes it on as it is.
///
/// The random number generator stays a separate `&mut` argument: a shared request can be
/// handed to several steps while the generator is lent to one at a time.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// When the request is decided (Unix seconds).
    pub now: UnixTime,
    /// Who is asking.
    pub meta: &'a RequestMeta,
}

impl<'a> Request<'a> {
    /// The request made at `now` by `meta`.
    pub fn new(now: UnixTime, meta: &'a RequestMeta) -> Request<'a> {
        Request { now, meta }
    }
}

/// The account service. Cheap to share behind an `Arc`.
pub struct Service {
    store: Arc<dyn Store>,
    key: ServerKey,
    policy: Policy,
    /// A hash of a random password, verified when the user does not exist so that a wrong user
    /// name costs the same time as a wrong password.
    dummy_hash: String,
    /// Delivers security notifications ([`notify::NotConfigured`] until set).
    notifier: Arc<dyn transport::Notifier>,
    /// Sends codes to phones ([`notify::NoPhoneGateway`] until set).
    phone: Arc<dyn notify::PhoneGateway>,
    // #15 delivery
    /// Bound of one synchronous send of a code ([`delivery`]).
    delivery_bound: std::time::Duration,
    /// #22: the Unix time the certificate served with built-in TLS expires, kept current by
    /// the server across reloads and renewals; `None` when TLS is terminated elsewhere.
    served_certificate: Option<Arc<std::sync::atomic::AtomicI64>>,
    /// #18: hosts of protected applications the proxies asked about over `http://` since
    /// start (at most [`forward_auth::MAX_PLAIN_HTTP_HOSTS`]), for the security review.
    plain_http_hosts: std::sync::Mutex<std::collections::BTreeSet<String>>,
    /// #18: what forward-auth checks read about sessions, for `[forward_auth] cache_secs`.
    forward_cache: forward_cache::ForwardCache,
    /// #17: the OpenID signing keys this node has unsealed and parsed, by `kid` (a key is
    /// looked up as active in the database for every token; only its parsing is kept).
    oidc_signers: std::sync::Mutex<
        std::collections::HashMap<String, std::sync::Arc<oidc_jwt::SigningKeyPair>>,
    >,
    /// #21: the notices being sent in the background ([`Service::send_in_background`]), which
    /// [`Service::close`] waits for: a notice is often the last thing a request leaves behind
    /// (the cancel link of a recovery that just began), and a runtime dropped at shutdown
    /// would cancel it unsent.
    background: tokio_util::task::TaskTracker,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("backend", &self.store.backend())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

const KEY_CHECK: &str = "server_key_check";

/// Checks that `key` is the key this database's secrets were sealed with, by opening the
/// marker sealed on the database's first use; reads only (a restore checks a copy with it
/// before putting the copy in place).
pub async fn check_key(store: &dyn Store, key: &ServerKey) -> Result<()> {
    let stored = store
        .meta_get(KEY_CHECK)
        .await?
        .ok_or_else(|| StoreError::Corrupt("key check marker missing".into()))?;
    if key.open(KEY_CHECK.as_bytes(), &stored).is_err() {
        return Err(Error::Key(
            "this server key file is not the one this database was created with".into(),
        ));
    }
    Ok(())
}

impl Service {
    /// Builds the service and checks that `key` is the key this database's secrets were sealed
    /// with (a marker sealed on first use is stored in the database).
    pub async fn new<R: RngCore + CryptoRng + Send>(
        store: Arc<dyn Store>,
        key: ServerKey,
        policy: Policy,
        rng: &mut R,
    ) -> Result<Service> {
        let policy_cache_secs = policy.forward_auth.cache_secs();
        let marker = key.seal(rng, KEY_CHECK.as_bytes(), b"mamori")?;
        store.meta_init(KEY_CHECK, &marker).await?;
        check_key(store.as_ref(), &key).await?;
        let mut pw = [0u8; 32];
        rng.fill_bytes(&mut pw);
        let dummy_hash =
            password::hash_blocking(Zeroizing::new(hex(&pw)), policy.password.clone(), rng).await?;
        Ok(Service {
            store,
            key,
            policy,
            dummy_hash,
            notifier: Arc::new(notify::NotConfigured),
            phone: Arc::new(notify::NoPhoneGateway),
            delivery_bound: delivery::DEFAULT_BOUND,
            served_certificate: None,
            plain_http_hosts: std::sync::Mutex::default(),
            forward_cache: forward_cache::ForwardCache::new(policy_cache_secs),
            oidc_signers: Default::default(),
            background: tokio_util::task::TaskTracker::new(),
        })
    }

    /// Sends security notifications through `notifier`.
    pub fn with_notifier(mut self, notifier: Arc<dyn transport::Notifier>) -> Service {
        self.notifier = notifier;
        self
    }

    /// #22: the review reads the served certificate's expiry (Unix seconds) from `expiry`,
    /// which the server updates whenever it serves another certificate (0: none yet).
    pub fn with_served_certificate(mut self, expiry: Arc<std::sync::atomic::AtomicI64>) -> Service {
        self.served_certificate = Some(expiry);
        self
    }

    /// Sends phone codes through `phone`.
    pub fn with_phone_gateway(mut self, phone: Arc<dyn notify::PhoneGateway>) -> Service {
        self.phone = phone;
        self
    }

    /// The store. For tests and the domain's own modules: the edges (HTTP, console, admin
    /// command line) go through the methods below, never the store itself (enforced by the
    /// server crate's tidy test).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The store's backend (`sqlite`, `postgres`), for the start-up log line.
    pub fn backend_name(&self) -> &'static str {
        self.store.backend()
    }

    /// Whether the database answers (`/healthz`).
    pub async fn health_check(&self) -> Result<()> {
        self.store.count_accounts().await.map(|_| ())
    }

    /// Deletes sessions that ended (idle for [`SESSION_IDLE_SECS`] or past their end): the
    /// server's housekeeping, on every node.
    pub async fn purge_expired_sessions(&self, now: UnixTime) -> Result<u64> {
        self.store
            .purge_expired_sessions(now, SESSION_IDLE_SECS)
            .await
    }

    /// Graceful shutdown, once no request is in flight: waits for the notices still being
    /// sent (at most [`Service::delivery_bound`], as long as a code's send may take), so that
    /// a request answered just before the stop does not lose the notice it started, then
    /// closes the store (which a failed send audits into).
    pub async fn close(&self) {
        self.background.close();
        if tokio::time::timeout(self.delivery_bound, self.background.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                unsent = self.background.len(),
                "notices still being sent at shutdown were abandoned"
            );
        }
        self.store.close().await;
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

/// A random 256-bit token, Base64url without padding, and its SHA-256 (what is stored).
pub(crate) fn new_token<R: RngCore + CryptoRng>(rng: &mut R) -> (Zeroizing<String>, Vec<u8>) {
    let mut raw = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(raw.as_mut_slice());
    let token = Zeroizing::new(data_encoding::BASE64URL_NOPAD.encode(raw.as_slice()));
    let hash = token_hash(&token);
    (token, hash)
}

/// SHA-256 of a token. Tokens carry 256 bits of entropy, so a fast hash suffices: a leaked
/// table cannot be turned back into tokens.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// A random UUID (v4) from `rng`.
pub fn new_id<R: RngCore + CryptoRng>(rng: &mut R) -> String {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    uuid::Builder::from_random_bytes(b)
        .into_uuid()
        .hyphenated()
        .to_string()
}

fn hex(b: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(b)
}

/// Checks a user or device name: 1–64 characters from letters, digits and `+=,.@_-` (the
/// cloud provider's user-name alphabet).
pub(crate) fn check_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.chars().count() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "{what} must be 1-64 characters: letters, digits and +=,.@_-"
        )))
    }
}

/// Time as `u64` for the OTP functions (times before 1970 are clamped).
pub(crate) fn unix_u64(now: UnixTime) -> u64 {
    u64::try_from(now).unwrap_or(0)
}

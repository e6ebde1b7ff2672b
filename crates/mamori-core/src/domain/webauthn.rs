//! Security keys (WebAuthn/FIDO2, docs/security-keys.md) as MFA devices: registration from a
//! session, and the second-factor step with a key, through `webauthn-rs` (no OpenSSL).
//!
//! - The relying party is the configured public URL: its host is the RP id, its origin the only
//!   accepted origin. Keys are asked for user presence (a touch), not user verification: the key
//!   is the second factor after the password.
//! - Each ceremony's state (challenge, allowed credentials) is stored in the database between
//!   the begin and the finish request ([`crate::store::WebauthnStore`]), bound to the session
//!   (registration, step-up) or to the sign-in challenge (sign-in) that began it, valid
//!   [`CEREMONY_SECS`], consumed by the finish whatever its outcome: any node can finish what
//!   another began, and a finished ceremony cannot be replayed.
//! - A key is a device of kind `security_key` within the device limit; its serialized credential
//!   is in `devices.credential`, its signature counter in `devices.last_step`.
//! - The counter rule (W3C WebAuthn Level 2, section 7.2, step 21): an assertion whose nonzero
//!   counter is not greater than the stored one may come from a cloned key; it is refused,
//!   audited as [`kind::CLONE_SUSPECTED`] and counted as a failed attempt. The store decides it
//!   with one conditional update, so two nodes cannot both accept one counter value.
//! - A successful assertion yields the same [`SecondFactorVerified`] as a code, through the same
//!   lock, throttle and failure-count rules ([`super::factors`]).

use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use webauthn_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, SecurityKey, SecurityKeyAuthentication, SecurityKeyRegistration, Url,
    Uuid, Webauthn, WebauthnBuilder, WebauthnError,
};

use crate::clock::UnixTime;
use crate::error::{Error, Result};
use crate::redacted::Redacted;
use crate::store::webauthn::{CeremonyKind, CeremonyRecord};
use crate::store::{AccountRecord, DeviceKind, DeviceRecord, SessionRecord};

use super::audit::{kind as audit_kind, Event};
use super::factor_changes::FactorChange;
use super::factors::Attempt;
use super::session::{NewSession, SessionGrant};
use super::{check_name, new_id, Request, RequestMeta, SecondFactorVerified, Service};

/// A ceremony must be finished within 5 minutes of its beginning.
pub const CEREMONY_SECS: i64 = 5 * 60;
/// At most this many unfinished, unexpired ceremonies per account: enough for several browser
/// tabs and retries, and a bound on what one account can make the server store.
pub const MAX_OPEN_CEREMONIES: i64 = 16;

/// Audit kinds of this module (defined with every other kind in [`super::audit::kind`], so
/// that modules which refer to another's kinds need not import each other).
pub use super::audit::kind::webauthn as kind;

/// A ceremony begun: the id the client sends back and the options for the authenticator.
#[derive(Debug)]
pub struct Begun<T> {
    /// Ceremony id.
    pub ceremony: String,
    /// Options for `navigator.credentials.create()`/`get()`.
    pub options: T,
    /// Expiry.
    pub expires_at: UnixTime,
}

/// What a new ceremony is: the session it is bound to, its kind, the name the key will get
/// (registration only) and the library's state to resume it with.
struct NewCeremony<'a, T> {
    session_id: &'a str,
    kind: CeremonyKind,
    device_name: Option<&'a str>,
    state: &'a T,
}

/// The relying party of a public URL: RP id = its host, origin = its origin.
pub fn relying_party(public_url: &str, service_name: &str) -> Result<Webauthn> {
    let url = Url::parse(public_url)
        .map_err(|e| Error::Config(format!("public_url {public_url:?}: {e}")))?;
    // WebAuthn relying-party ids are domain names; browsers refuse IP addresses.
    let host = url
        .domain()
        .ok_or_else(|| {
            Error::Forbidden(
                "security keys need the server's public URL (public_url) to use a domain name \
                 such as localhost, not an IP address"
                    .into(),
            )
        })?
        .to_string();
    let origin = Url::parse(&url.origin().ascii_serialization())
        .map_err(|e| Error::Config(format!("public_url {public_url:?}: {e}")))?;
    // User presence only: the key is the second factor after the password, so a touch is what
    // the MFA step asks for. (Asking for user verification as webauthn-rs does by default also
    // requests credProtect "userVerificationRequired", which Chromium refuses unless user
    // verification is required, and which U2F keys cannot do.)
    WebauthnBuilder::new(&host, &origin)
        .and_then(|b| {
            b.rp_name(service_name)
                .danger_set_user_presence_only_security_keys(true)
                .build()
        })
        .map_err(|e| {
            Error::Config(format!(
                "public_url {public_url:?} cannot be a WebAuthn relying party: {e}"
            ))
        })
}

/// What the server says at start about security keys for a public URL: the line naming the
/// origin and relying-party id keys are bound to, and a warning when browsers will refuse to
/// register keys there (an IP address is never a relying-party id, and outside `localhost`
/// browsers offer WebAuthn only to `https://` pages).
pub fn key_origin_notice(public_url: &str, service_name: &str) -> (String, Option<String>) {
    let fix = "set --public-url (public_url) to the https:// address people use, or to \
               http://localhost:PORT when the browser runs on this host";
    let origin = Url::parse(public_url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| public_url.to_string());
    let host = Url::parse(public_url)
        .ok()
        .and_then(|u| u.domain().map(str::to_ascii_lowercase));
    match (relying_party(public_url, service_name), host) {
        (Ok(_), Some(host)) => {
            let line = format!("security keys are bound to {origin} (relying party id {host})");
            let secure_context = origin.starts_with("https://")
                || host == "localhost"
                || host.ends_with(".localhost");
            let warning = (!secure_context).then(|| {
                format!(
                    "browsers offer security keys only to https:// pages and to \
                     http://localhost, so none can be registered at {origin}: {fix}"
                )
            });
            (line, warning)
        }
        (rp, _) => {
            let why = rp
                .err()
                .map_or_else(|| "no domain name".to_string(), |e| e.to_string());
            (
                format!("security keys cannot be bound to {origin}"),
                Some(format!(
                    "security keys cannot be registered at {origin} ({why}): {fix}"
                )),
            )
        }
    }
}

/// The WebAuthn user handle of an account: its UUID (or one derived from its id).
fn user_handle(account: &AccountRecord) -> Uuid {
    Uuid::parse_str(&account.id).unwrap_or_else(|_| {
        let h = Sha256::digest(account.id.as_bytes());
        let mut b = [0u8; 16];
        b.copy_from_slice(h.get(..16).unwrap_or(&[0u8; 16]));
        uuid::Builder::from_random_bytes(b).into_uuid()
    })
}

fn stored_key(d: &DeviceRecord) -> Result<SecurityKey> {
    let bytes = d
        .credential
        .as_deref()
        .ok_or_else(|| Error::Internal("security key without credential".into()))?;
    serde_json::from_slice(bytes).map_err(|e| Error::Internal(format!("stored credential: {e}")))
}

fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| Error::Internal(format!("serialize: {e}")))
}

fn decode<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T> {
    serde_json::from_slice(b).map_err(|e| Error::Internal(format!("stored ceremony: {e}")))
}

/// A short, non-secret label of a credential for the device list: `webauthn:` and the first
/// 16 hex digits of the SHA-256 of its id.
fn key_serial(credential_id: &[u8]) -> String {
    let h = Sha256::digest(credential_id);
    format!(
        "webauthn:{}",
        data_encoding::HEXLOWER.encode(h.get(..8).unwrap_or_default())
    )
}

/// The credential's signature counter, from its serialized form (webauthn-rs keeps it private
/// to the credential; the stored JSON has it as `cred.counter`).
fn counter_of(key: &SecurityKey) -> Result<i64> {
    let v = serde_json::to_value(key).map_err(|e| Error::Internal(format!("serialize: {e}")))?;
    Ok(v.get("cred")
        .and_then(|c| c.get("counter"))
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(0))
}

impl Service {
    fn relying_party(&self) -> Result<Webauthn> {
        relying_party(&self.policy.public_url, &self.policy.service_name)
    }

    /// The account's enabled security keys and passkeys.
    pub(super) async fn security_keys(&self, account: &AccountRecord) -> Result<Vec<DeviceRecord>> {
        Ok(self
            .store
            .devices_for_account(&account.id)
            .await?
            .into_iter()
            .filter(|d| d.kind == DeviceKind::SecurityKey && d.enabled_at.is_some())
            .collect())
    }

    /// Stores a new ceremony of the account (at most [`MAX_OPEN_CEREMONIES`] open at once);
    /// its id and when it expires.
    async fn new_ceremony<R: RngCore + CryptoRng + Send, T: serde::Serialize>(
        &self,
        account: &AccountRecord,
        ceremony: NewCeremony<'_, T>,
        now: UnixTime,
        rng: &mut R,
    ) -> Result<(String, UnixTime)> {
        let NewCeremony {
            session_id,
            kind,
            device_name,
            state,
        } = ceremony;
        let id = new_id(rng);
        let expires_at = now.saturating_add(CEREMONY_SECS);
        let stored = self
            .store
            .webauthn_ceremony_create(
                &CeremonyRecord {
                    id: id.clone(),
                    account_id: account.id.clone(),
                    session_id: session_id.to_string(),
                    kind,
                    device_name: device_name.map(str::to_string),
                    state: Redacted::new(encode(state)?),
                    created_at: now,
                    expires_at,
                },
                MAX_OPEN_CEREMONIES,
            )
            .await?;
        if !stored {
            // The oldest open ceremony expires within 5 minutes at the latest.
            return Err(Error::RateLimited {
                retry_after: u64::try_from(CEREMONY_SECS).unwrap_or(300),
            });
        }
        Ok((id, expires_at))
    }

    /// Begins registering a security key named `name` for the session's account. Needs a
    /// second factor from the last 5 minutes when the account already has MFA; refuses a taken
    /// name or a full device list before the key is asked.
    pub async fn webauthn_register_begin<R: RngCore + CryptoRng + Send>(
        &self,
        account: &AccountRecord,
        session: &SessionRecord,
        name: &str,
        req: Request<'_>,
        rng: &mut R,
    ) -> Result<Begun<CreationChallengeResponse>> {
        let Request { now, meta } = req;
        let refuse = |result: &'static str| {
            Event::own(kind::REGISTER_BEGIN, result, &account.name).detail(name)
        };
        if let Err(e) = check_name("the device name", name) {
            self.audit(now, meta, refuse("invalid_input")).await?;
            return Err(e);
        }
        self.authorize_factor_change(
            account,
            session,
            account,
            FactorChange::RegisterSecurityKey,
            now,
            meta,
        )
        .await?;
        let devices = self.store.devices_for_account(&account.id).await?;
        if devices.iter().any(|d| d.name == name) {
            self.audit(now, meta, refuse("conflict")).await?;
            return Err(Error::Conflict(
                "a device with this name already exists".into(),
            ));
        }
        if devices.len() >= self.policy.max_devices as usize {
            self.audit(now, meta, refuse("device_limit")).await?;
            return Err(Error::DeviceLimitReached(self.policy.max_devices));
        }
        // Keys already registered are excluded, so the browser says so instead of creating a
        // second credential on the same key.
        let exclude: Vec<_> = devices
            .iter()
            .filter(|d| d.kind == DeviceKind::SecurityKey)
            .filter_map(|d| stored_key(d).ok())
            .map(|k| k.cred_id().clone())
            .collect();
        let rp = self.relying_party()?;
        let (options, state): (CreationChallengeResponse, SecurityKeyRegistration) = rp
            .start_securitykey_registration(
                user_handle(account),
                &account.name,
                &account.name,
                Some(exclude),
                None,
                None,
            )
            .map_err(|e| Error::Internal(format!("webauthn: {e}")))?;
        let (ceremony, expires_at) = self
            .new_ceremony(
                account,
                NewCeremony {
                    session_id: &session.id,
                    kind: CeremonyKind::Register,
                    device_name: Some(name),
                    state: &state,
                },
                now,
                rng,
            )
            .await?;
        self.audit(
            now,
            meta,
            Event::own(kind::REGISTER_BEGIN, "success", &account.name).detail(name),
        )
        .await?;
        Ok(Begun {
            ceremony,
            options,
            expires_at,
        })
    }

    /// Finishes a registration with the authenticator's answer: the key becomes an enabled
    /// device. Registering proves possession, so it yields a [`SecondFactorVerified`] (an
    /// enrollment-restricted session may then be upgraded).
    pub async fn webauthn_register_finish<R: RngCore + CryptoRng + Send>(
        &self,
        account: &AccountRecord,
        session: &SessionRecord,
        ceremony: &str,
        credential: &RegisterPublicKeyCredential,
        req: Request<'_>,
        rng: &mut R,
    ) -> Result<(DeviceRecord, SecondFactorVerified)> {
        let Request { now, meta } = req;
        let failed = |result: &'static str| Event::own(kind::REGISTER, result, &account.name);
        let Some(c) = self
            .store
            .webauthn_ceremony_take(ceremony, &session.id, CeremonyKind::Register, now)
            .await?
            .filter(|c| c.account_id == account.id)
        else {
            self.audit(now, meta, failed("invalid_ceremony")).await?;
            return Err(Error::InvalidCeremony);
        };
        let name = c.device_name.clone().unwrap_or_default();
        // The rule of begin holds at the end too: a session whose second factor grew stale
        // while the key was being asked does not add a factor.
        self.authorize_factor_change(
            account,
            session,
            account,
            FactorChange::RegisterSecurityKey,
            now,
            meta,
        )
        .await?;
        let state: SecurityKeyRegistration = decode(c.state.expose())?;
        let key = match self
            .relying_party()?
            .finish_securitykey_registration(credential, &state)
        {
            Ok(k) => k,
            Err(e) => {
                let reason = format!("{name}: {e}");
                self.audit(now, meta, failed("failure").detail(&reason))
                    .await?;
                return Err(Error::SecurityKeyRejected);
            }
        };
        let cred_id: &[u8] = key.cred_id().as_ref();
        let device = DeviceRecord {
            id: new_id(rng),
            account_id: account.id.clone(),
            kind: DeviceKind::SecurityKey,
            name: name.clone(),
            serial: key_serial(cred_id),
            created_at: now,
            enabled_at: Some(now),
            last_used_at: None,
            secret_sealed: None,
            otp_type: "totp".into(),
            algorithm: "SHA1".into(),
            digits: 6,
            period: 30,
            drift: 0,
            last_step: Some(counter_of(&key)?),
            credential: Some(encode(&key)?),
        };
        if let Err(e) = self
            .store
            .webauthn_register(&device, cred_id, i64::from(self.policy.max_devices))
            .await
        {
            let result = match &e {
                Error::DeviceLimitReached(_) => "device_limit",
                Error::Conflict(_) => "conflict",
                _ => "error",
            };
            self.audit(now, meta, failed(result).detail(&name)).await?;
            return Err(e);
        }
        self.audit(
            now,
            meta,
            Event::own(kind::REGISTER, "success", &account.name).detail(&name),
        )
        .await?;
        // The event every kind of device records when it starts to count (and that notifies
        // the user by email).
        self.audit(
            now,
            meta,
            Event::own(audit_kind::MFA_ENABLE, "success", &account.name).detail(&name),
        )
        .await?;
        Ok((device, SecondFactorVerified::security_key(&account.id)))
    }

    /// Begins an assertion with the account's security keys, bound to `session_id`.
    async fn authenticate_begin<R: RngCore + CryptoRng + Send>(
        &self,
        account: &AccountRecord,
        session_id: &str,
        now: UnixTime,
        rng: &mut R,
    ) -> Result<Begun<RequestChallengeResponse>> {
        let keys: Vec<SecurityKey> = self
            .security_keys(account)
            .await?
            .iter()
            .map(stored_key)
            .collect::<Result<_>>()?;
        if keys.is_empty() {
            return Err(Error::NotFound("security key"));
        }
        let (options, state): (RequestChallengeResponse, SecurityKeyAuthentication) = self
            .relying_party()?
            .start_securitykey_authentication(&keys)
            .map_err(|e| Error::Internal(format!("webauthn: {e}")))?;
        let (ceremony, expires_at) = self
            .new_ceremony(
                account,
                NewCeremony {
                    session_id,
                    kind: CeremonyKind::Authenticate,
                    device_name: None,
                    state: &state,
                },
                now,
                rng,
            )
            .await?;
        Ok(Begun {
            ceremony,
            options,
            expires_at,
        })
    }

    /// Begins the second-factor step of a sign-in with a security key.
    pub async fn webauthn_sign_in_begin<R: RngCore + CryptoRng + Send>(
        &self,
        challenge: &str,
        now: UnixTime,
        rng: &mut R,
    ) -> Result<Begun<RequestChallengeResponse>> {
        let (pending, account) = self.pending_challenge(challenge, now).await?;
        self.authenticate_begin(&account, &pending.id, now, rng)
            .await
    }

    /// Finishes the second-factor step with the key's assertion: a full session.
    pub async fn webauthn_sign_in_finish<R: RngCore + CryptoRng + Send>(
        &self,
        challenge: &str,
        ceremony: &str,
        credential: &PublicKeyCredential,
        req: Request<'_>,
        rng: &mut R,
    ) -> Result<(NewSession, AccountRecord)> {
        let Request { now, meta } = req;
        let (pending, account) = self.pending_challenge(challenge, now).await?;
        let proof = self
            .verify_security_key(
                &account,
                &pending.id,
                ceremony,
                credential,
                req,
                audit_kind::SIGN_IN_MFA,
            )
            .await?;
        // Consume the challenge; of two concurrent answers only one deletes it.
        if !self.store.delete_session(&account.id, &pending.id).await? {
            return Err(Error::InvalidChallenge);
        }
        let s = self
            .create_session(&account, SessionGrant::SecondFactor(proof), now, rng, meta)
            .await?;
        Ok((s, account))
    }

    /// Begins giving a security key again within a session (before a sensitive change).
    pub async fn webauthn_verify_begin<R: RngCore + CryptoRng + Send>(
        &self,
        account: &AccountRecord,
        session: &SessionRecord,
        now: UnixTime,
        rng: &mut R,
    ) -> Result<Begun<RequestChallengeResponse>> {
        self.authenticate_begin(account, &session.id, now, rng)
            .await
    }

    /// Finishes giving a security key within a session: records a fresh second factor.
    pub async fn webauthn_verify_finish(
        &self,
        account: &AccountRecord,
        session: &SessionRecord,
        ceremony: &str,
        credential: &PublicKeyCredential,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<()> {
        self.verify_security_key(
            account,
            &session.id,
            ceremony,
            credential,
            Request::new(now, meta),
            audit_kind::SESSION_VERIFY,
        )
        .await?;
        self.store
            .set_session_second_factor(&session.id, now)
            .await?;
        self.store
            .set_second_factor_kind(&session.id, super::factors::SECOND_FACTOR_SECURITY_KEY)
            .await
    }

    /// Verifies an assertion against the ceremony `ceremony` of `session_id`, with the lock,
    /// throttle, failure-count and counter rules; audits the outcome under `event`.
    async fn verify_security_key(
        &self,
        account: &AccountRecord,
        session_id: &str,
        ceremony: &str,
        credential: &PublicKeyCredential,
        req: Request<'_>,
        event: &str,
    ) -> Result<SecondFactorVerified> {
        let Request { now, meta } = req;
        let name = account.name.as_str();
        let attempt = self.second_factor_guard(account, event, now, meta).await?;
        // The ceremony is spent here whatever follows: an assertion is tried once.
        let Some(c) = self
            .store
            .webauthn_ceremony_take(ceremony, session_id, CeremonyKind::Authenticate, now)
            .await?
            .filter(|c| c.account_id == account.id)
        else {
            // No live ceremony: nothing was evaluated, so the attempt is given back.
            self.second_factor_void(attempt).await?;
            self.audit(
                now,
                meta,
                Event::own(event, "invalid_ceremony", name).detail("security key"),
            )
            .await?;
            return Err(Error::InvalidCeremony);
        };
        let state: SecurityKeyAuthentication = decode(c.state.expose())?;
        let result = match self
            .relying_party()?
            .finish_securitykey_authentication(credential, &state)
        {
            Ok(r) => r,
            Err(WebauthnError::CredentialPossibleCompromise) => {
                let device = self
                    .device_of_credential(account, credential.raw_id.as_ref())
                    .await?;
                let label = device.as_ref().map_or("security key", |d| d.name.as_str());
                return Err(self
                    .clone_suspected(attempt, account, label, event, now, meta)
                    .await);
            }
            Err(e) => {
                let detail = format!("security key: {e}");
                let failure = Event::own(event, "failure", name).detail(&detail);
                return Err(self
                    .security_key_failure(attempt, account, failure, req)
                    .await);
            }
        };
        let cred_id: &[u8] = result.cred_id().as_ref();
        let Some(device) = self.device_of_credential(account, cred_id).await? else {
            // Deleted between begin and finish.
            let failure = Event::own(event, "failure", name).detail("security key: not registered");
            return Err(self
                .security_key_failure(attempt, account, failure, req)
                .await);
        };
        let mut key = stored_key(&device)?;
        key.update_credential(&result);
        let counter = i64::from(result.counter());
        if !self
            .store
            .webauthn_accept_use(&device.id, counter, &encode(&key)?, now)
            .await?
        {
            return Err(self
                .clone_suspected(attempt, account, &device.name, event, now, meta)
                .await);
        }
        self.second_factor_succeeded(attempt).await?;
        self.audit(
            now,
            meta,
            Event::own(event, "success", name).detail(&device.name),
        )
        .await?;
        Ok(SecondFactorVerified::security_key(&account.id))
    }

    /// The account's enabled security key holding `credential_id`.
    async fn device_of_credential(
        &self,
        account: &AccountRecord,
        credential_id: &[u8],
    ) -> Result<Option<DeviceRecord>> {
        let Some(id) = self.store.webauthn_device_of(credential_id).await? else {
            return Ok(None);
        };
        Ok(self
            .store
            .device(&account.id, &id)
            .await?
            .filter(|d| d.kind == DeviceKind::SecurityKey && d.enabled_at.is_some()))
    }

    /// A counter that did not move forward: refused, audited, counted as a failure.
    async fn clone_suspected(
        &self,
        attempt: Attempt,
        account: &AccountRecord,
        device_name: &str,
        event: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Error {
        if let Err(e) = self
            .audit(
                now,
                meta,
                Event::own(kind::CLONE_SUSPECTED, "refused", &account.name).detail(device_name),
            )
            .await
        {
            return e;
        }
        let failure = Event::own(event, "clone_suspected", &account.name).detail(device_name);
        self.security_key_failure(attempt, account, failure, Request::new(now, meta))
            .await
    }

    /// A refused security key: counted and audited like every failed second factor
    /// ([`Service::second_factor_failed`]); the answer is `security_key_rejected` until locked.
    async fn security_key_failure(
        &self,
        attempt: Attempt,
        account: &AccountRecord,
        failure: Event<'_>,
        req: Request<'_>,
    ) -> Error {
        self.second_factor_failed(attempt, account, failure, Error::SecurityKeyRejected, req)
            .await
    }
}

//! Application keys and the validate API: another application (a VPN, an SSH gateway) asks
//! whether a user's one-time code is right, under the same replay, throttle and lock rules as
//! sign-in. Keys are 256-bit random values shown once; only their SHA-256 is stored.
//!
//! - **Unknown names answer like accounts** (docs/security.md, item 3b): a name no
//!   account has keeps a phantom failure count (table `validate_phantoms`, keyed by the SHA-256
//!   of the name), throttled with [`throttle_wait`] and locked at the [`Lockout`] threshold
//!   exactly as an account with the same history would be, so the answers (`invalid_code`,
//!   `throttled`, `account_locked`) do not tell which names exist. The unknown path reads the
//!   phantom in the same statement that looks the account up and writes once, like a wrong
//!   code for a real account.
//! - **Root is out of reach of ordinary keys**: a key made without `allow_root` answers a
//!   validation for root exactly like one for an unknown name, never touches root's failure
//!   counter (so an application cannot lock root out), and the refusal is audited.
//! - **Only a key made for it learns that an account has no device** (#19, the PAM module's
//!   `no_device = allow`): [`Service::validate_status`] answers `no_device` only to a key
//!   created with `allow_no_device`, only for an existing, unlocked account without an enabled
//!   device (root only with `allow_root` too), and audits each such answer; every other name,
//!   unknown ones included, is `code_required`. Keys without the permission are refused.
//! - **Keys can be revoked**: `revoked_at` is set and the key answers `invalid_app_key` from
//!   then on (at once on the node that revoked it, within [`APP_KEY_TTL_SECS`] on others).
//!
//! [`Lockout`]: crate::config::Lockout

use rand::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::clock::UnixTime;
use crate::error::{Error, Result};
use crate::store::{AppKeyRecord, PhantomRecord, ValidateSubject};

use super::audit::{kind as audit_kind, Event};
use super::factors::throttle_wait;
use super::session::Authenticated;
use super::{
    check_name, new_id, new_token, token_hash, RequestMeta, Service, RECENT_FACTOR_SECS, ROOT,
};

/// Prefix of application keys, so that a leaked key is recognisable (e.g. by secret scanners).
pub const APP_KEY_PREFIX: &str = "mamori_ak_";

/// How long another node may still accept a revoked key (its read cache of keys).
pub const APP_KEY_TTL_SECS: u64 = 5;

/// A phantom count that another request changed first is read again at most this often.
const PHANTOM_TRIES: usize = 3;

/// Audit kinds of this module (defined with every other kind in [`super::audit::kind`], so
/// that modules which refer to another's kinds need not import each other).
pub use super::audit::kind::appkeys as kind;

/// The validate API's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validation {
    /// The code is right and was not used before.
    Accept,
    /// Wrong or replayed code, unknown user, or a user without an OTP device.
    RejectInvalidCode,
    /// The account is locked.
    RejectLocked,
    /// Too many recent failures: retry after this many seconds.
    RejectThrottled(u64),
}

/// What [`Service::validate_status`] tells an application about a user before it asks for a
/// code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidateStatus {
    /// The account exists, is not locked and has no enabled MFA device: an application that
    /// chose to (the PAM module's `no_device = allow`) may let the user in without a code.
    NoDevice,
    /// Everything else (a device, a locked account, an unknown name, root for a key without
    /// `allow_root`): ask for a code and validate it.
    CodeRequired,
}

/// What an application key may do beyond validating codes, chosen when it is created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppKeyPermissions {
    /// May validate root's codes.
    pub allow_root: bool,
    /// May ask whether an account has no MFA device ([`Service::validate_status`]).
    pub allow_no_device: bool,
}

/// Which key to revoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppKeyRef<'a> {
    /// Exactly this id (the API and the console).
    Id(&'a str),
    /// An id, else the one unrevoked key of this name (the admin command line).
    IdOrName(&'a str),
}

/// How a phantom validation is recorded in the audit log.
struct PhantomAudit<'a> {
    /// `unknown_user` or `refused_root`.
    result: &'a str,
    /// The account named (root for a refused root validation; none for unknown names).
    account: Option<&'a str>,
    /// `app:NAME`.
    actor: &'a str,
}

impl Service {
    /// Creates an application key that may not validate root's codes; the key text is returned
    /// once.
    pub async fn create_app_key<R: RngCore + CryptoRng + Send>(
        &self,
        actor: &str,
        name: &str,
        now: UnixTime,
        rng: &mut R,
        meta: &RequestMeta,
    ) -> Result<(AppKeyRecord, Zeroizing<String>)> {
        self.new_app_key(actor, name, AppKeyPermissions::default(), now, rng, meta)
            .await
    }

    /// Creates an application key with `permissions` (validating root's codes, telling that an
    /// account has no device); the key text is returned once. Audited (`app_key.create`, detail
    /// the name and the permissions given).
    pub async fn new_app_key<R: RngCore + CryptoRng + Send>(
        &self,
        actor: &str,
        name: &str,
        permissions: AppKeyPermissions,
        now: UnixTime,
        rng: &mut R,
        meta: &RequestMeta,
    ) -> Result<(AppKeyRecord, Zeroizing<String>)> {
        check_name("the application name", name)?;
        let (raw, _) = new_token(rng);
        let key = Zeroizing::new(format!("{APP_KEY_PREFIX}{}", raw.as_str()));
        let record = AppKeyRecord {
            id: new_id(rng),
            name: name.into(),
            key_hash: token_hash(&key),
            created_at: now,
            created_by: Some(actor.into()),
            revoked_at: None,
            allow_root: permissions.allow_root,
            allow_no_device: permissions.allow_no_device,
        };
        self.store.create_app_key(&record).await?;
        let given: Vec<&str> = [
            (permissions.allow_root, "allow_root"),
            (permissions.allow_no_device, "allow_no_device"),
        ]
        .into_iter()
        .filter_map(|(on, label)| on.then_some(label))
        .collect();
        let detail = if given.is_empty() {
            name.to_string()
        } else {
            format!("{name} ({})", given.join(", "))
        };
        self.audit(
            now,
            meta,
            Event {
                kind: audit_kind::APP_KEY_CREATE,
                result: "success",
                account: None,
                actor: Some(actor),
                detail: Some(&detail),
            },
        )
        .await?;
        Ok((record, key))
    }

    /// Every application key, revoked ones included, oldest first (administrators). Only ids,
    /// names and times: the keys themselves exist only as hashes.
    pub async fn app_keys(
        &self,
        admin: &Authenticated,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<Vec<AppKeyRecord>> {
        self.require_admin(admin, "list application keys", now, meta)
            .await?;
        self.store.list_app_keys().await
    }

    /// An administrator revokes an application key (API and console): needs a full
    /// administrator session (with MFA, [`Authenticated::require_admin`]) and a second factor
    /// from the last 5 minutes (otherwise refused and audited as `recent_factor_required`).
    pub async fn admin_revoke_app_key(
        &self,
        admin: &Authenticated,
        id: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<AppKeyRecord> {
        self.require_admin(admin, "revoke an application key", now, meta)
            .await?;
        let actor = admin.account.name.as_str();
        let recent = admin
            .session
            .second_factor_at
            .is_some_and(|t| now.saturating_sub(t) <= RECENT_FACTOR_SECS);
        if !recent {
            self.audit(
                now,
                meta,
                Event {
                    kind: kind::APP_KEY_REVOKE,
                    result: "recent_factor_required",
                    account: None,
                    actor: Some(actor),
                    detail: Some(id),
                },
            )
            .await?;
            return Err(Error::RecentSecondFactorRequired);
        }
        self.revoke_app_key(actor, AppKeyRef::Id(id), now, meta)
            .await
    }

    /// Revokes an application key: from then on it answers `invalid_app_key` (on this node at
    /// once, on other nodes within [`APP_KEY_TTL_SECS`]). Audited as `app_key.revoke` by
    /// `actor`. Unknown or already revoked keys are `NotFound`; a name shared by several
    /// unrevoked keys must be given as an id.
    pub async fn revoke_app_key(
        &self,
        actor: &str,
        which: AppKeyRef<'_>,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<AppKeyRecord> {
        let keys = self.store.list_app_keys().await?;
        let wanted = match which {
            AppKeyRef::Id(s) | AppKeyRef::IdOrName(s) => s,
        };
        let mut found = keys.iter().find(|k| k.id == wanted);
        if found.is_none() && matches!(which, AppKeyRef::IdOrName(_)) {
            let named: Vec<&AppKeyRecord> = keys
                .iter()
                .filter(|k| k.name == wanted && k.revoked_at.is_none())
                .collect();
            if named.len() > 1 {
                return Err(Error::InvalidInput(format!(
                    "{} unrevoked application keys are named {wanted:?}: give the id (see \
                     `admin list-app-keys`)",
                    named.len()
                )));
            }
            found = named.first().copied();
        }
        let key = found
            .filter(|k| k.revoked_at.is_none())
            .ok_or(Error::NotFound("unrevoked application key"))?;
        if !self.store.revoke_app_key(&key.id, now).await? {
            // Revoked by another request meanwhile.
            return Err(Error::NotFound("unrevoked application key"));
        }
        let detail = format!("{} ({})", key.name, key.id);
        self.audit(
            now,
            meta,
            Event {
                kind: kind::APP_KEY_REVOKE,
                result: "success",
                account: None,
                actor: Some(actor),
                detail: Some(&detail),
            },
        )
        .await?;
        Ok(AppKeyRecord {
            revoked_at: Some(now),
            ..key.clone()
        })
    }

    /// The application a key belongs to (unrevoked keys only).
    pub async fn app_for_key(&self, key: &str) -> Result<AppKeyRecord> {
        if !key.starts_with(APP_KEY_PREFIX) || key.len() > 128 {
            return Err(Error::InvalidAppKey);
        }
        self.store
            .app_key_by_hash(&token_hash(key))
            .await?
            .ok_or(Error::InvalidAppKey)
    }

    /// Validates `user`'s `code` for the application `app`.
    pub async fn validate(
        &self,
        app: &AppKeyRecord,
        user: &str,
        code: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<Validation> {
        self.validate_as(
            &format!("app:{}", app.name),
            app.allow_root,
            user,
            code,
            now,
            meta,
        )
        .await
    }

    /// Validates `user`'s `code` for the caller `actor` (`app:NAME` for an application key,
    /// `radius:NAME` for a RADIUS client), which may validate root's codes when `allow_root`:
    /// one rule for every entry point that checks a code without a password.
    pub async fn validate_as(
        &self,
        actor: &str,
        allow_root: bool,
        user: &str,
        code: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<Validation> {
        let actor = actor.to_string();
        // Every validate event names the caller as its user agent.
        let meta = RequestMeta {
            client_addr: meta.client_addr.clone(),
            user_agent: Some(actor.clone()),
        };
        let meta = &meta;
        if check_name("the user name", user).is_err() {
            // No account can have this name (a public rule), so there is nothing to hide and
            // nothing to count.
            self.audit(
                now,
                meta,
                Event {
                    kind: audit_kind::VALIDATE,
                    result: "unknown_user",
                    account: None,
                    actor: Some(&actor),
                    detail: Some("not a valid user name"),
                },
            )
            .await?;
            return Ok(Validation::RejectInvalidCode);
        }
        let phantom_key = token_hash(user);
        if user == ROOT && !allow_root {
            // Root exists on every installation, so reading its phantom (not its account)
            // reveals nothing; its own failure counter is never touched.
            let state = self.store.phantom_failures(&phantom_key).await?;
            let audit = PhantomAudit {
                result: "refused_root",
                account: Some(ROOT),
                actor: &actor,
            };
            return self
                .validate_phantom(&phantom_key, state, &audit, now, meta)
                .await;
        }
        let (account, devices) = match self.store.validate_subject(user, &phantom_key).await? {
            ValidateSubject::Account(a, d) => (a, d),
            ValidateSubject::Unknown(state) => {
                let audit = PhantomAudit {
                    result: "unknown_user",
                    account: None,
                    actor: &actor,
                };
                return self
                    .validate_phantom(&phantom_key, state, &audit, now, meta)
                    .await;
            }
        };
        match self
            .verify_second_factor_with(
                &account,
                &devices,
                code,
                None,
                super::Request::new(now, meta),
                audit_kind::VALIDATE,
            )
            .await
        {
            Ok(_) => Ok(Validation::Accept),
            Err(Error::InvalidCode) | Err(Error::InvalidInput(_)) => {
                Ok(Validation::RejectInvalidCode)
            }
            Err(Error::AccountLocked) => Ok(Validation::RejectLocked),
            Err(Error::RateLimited { retry_after }) => Ok(Validation::RejectThrottled(retry_after)),
            Err(e) => Err(e),
        }
    }

    /// Whether `user` must give a code to the application `app` (`POST
    /// /api/v1/validate/status`, the PAM module's `no_device = allow`). Only a key created with
    /// `allow_no_device` may ask (otherwise [`Error::Forbidden`], audited as
    /// `refused_permission`). [`ValidateStatus::NoDevice`] only for an existing account that is
    /// not locked and has no enabled device — root only when the key also has `allow_root` —
    /// audited as `validate.no_device` with the application as actor; everything else, unknown
    /// and invalid names included, is [`ValidateStatus::CodeRequired`], so the answer never
    /// tells a name no account has from an account with a device. Reads only: no failure is
    /// counted, so asking cannot throttle or lock anyone.
    pub async fn validate_status(
        &self,
        app: &AppKeyRecord,
        user: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<ValidateStatus> {
        let actor = format!("app:{}", app.name);
        let meta = RequestMeta {
            client_addr: meta.client_addr.clone(),
            user_agent: Some(actor.clone()),
        };
        if !app.allow_no_device {
            self.audit(
                now,
                &meta,
                Event {
                    kind: kind::VALIDATE_NO_DEVICE,
                    result: "refused_permission",
                    account: None,
                    actor: Some(&actor),
                    detail: None,
                },
            )
            .await?;
            return Err(Error::Forbidden(format!(
                "the application key {:?} was not created with allow_no_device, so it may not \
                 ask whether an account has an MFA device: create a key with it (`mamori-server \
                 admin create-app-key NAME --allow-no-device`) or ask for a code",
                app.name
            )));
        }
        if check_name("the user name", user).is_err() || (user == ROOT && !app.allow_root) {
            return Ok(ValidateStatus::CodeRequired);
        }
        // The same lookup as a validation, so that a name no account has costs the same.
        let (account, devices) = match self.store.validate_subject(user, &token_hash(user)).await? {
            ValidateSubject::Account(a, d) => (a, d),
            ValidateSubject::Unknown(_) => return Ok(ValidateStatus::CodeRequired),
        };
        if account.locked_at.is_some() || devices.iter().any(|d| d.enabled_at.is_some()) {
            return Ok(ValidateStatus::CodeRequired);
        }
        self.audit(
            now,
            &meta,
            Event {
                kind: kind::VALIDATE_NO_DEVICE,
                result: "success",
                account: Some(&account.name),
                actor: Some(&actor),
                detail: Some("the account has no enabled MFA device"),
            },
        )
        .await?;
        Ok(ValidateStatus::NoDevice)
    }

    /// The state machine of an account's second factor, run on a phantom failure history:
    /// locked, then throttled ([`throttle_wait`]), else one failure counted whatever the code
    /// looks like, as for an account (locking at the threshold). The count is one
    /// conditional statement on the count this decision was made on; when another request
    /// changed it first, the decision is made again on the new count. One audit event.
    async fn validate_phantom(
        &self,
        key: &[u8],
        mut state: PhantomRecord,
        audit: &PhantomAudit<'_>,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<Validation> {
        let lockout = &self.policy.lockout;
        let lock_after = i64::from(lockout.lock_after);
        let mut outcome = (Validation::RejectThrottled(1), String::from("throttled"));
        for _ in 0..PHANTOM_TRIES {
            if state.locked_at.is_some() {
                outcome = (Validation::RejectLocked, "locked".into());
                break;
            }
            if let Some(wait) = throttle_wait(lockout, state.failures, state.last_failure_at, now) {
                outcome = (Validation::RejectThrottled(wait), "throttled".into());
                break;
            }
            if let Some(count) = self
                .store
                .record_phantom_failure(key, state.failures, now, lock_after)
                .await?
            {
                outcome = if count.locked {
                    (
                        Validation::RejectLocked,
                        format!("failure {}: locked", count.failures),
                    )
                } else {
                    (
                        Validation::RejectInvalidCode,
                        format!("failure {}", count.failures),
                    )
                };
                break;
            }
            state = self.store.phantom_failures(key).await?;
        }
        self.audit(
            now,
            meta,
            Event {
                kind: audit_kind::VALIDATE,
                result: audit.result,
                account: audit.account,
                actor: Some(audit.actor),
                detail: Some(&outcome.1),
            },
        )
        .await?;
        Ok(outcome.0)
    }
}

#[cfg(test)]
mod tests {
    use super::APP_KEY_TTL_SECS;

    #[test]
    fn the_documented_cache_time_is_the_stores() {
        assert_eq!(
            crate::store::sqlite::APP_KEY_TTL.as_secs(),
            APP_KEY_TTL_SECS
        );
        assert_eq!(
            crate::store::postgres::APP_KEY_TTL.as_secs(),
            APP_KEY_TTL_SECS
        );
    }
}

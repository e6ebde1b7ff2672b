//! Application keys and the validate API: another application (a VPN, an SSH gateway) asks
//! whether a user's one-time code is right, under the same replay, throttle and lock rules as
//! sign-in. Keys are 256-bit random values shown once; only their SHA-256 is stored.

use rand::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::clock::UnixTime;
use crate::error::{Error, Result};
use crate::store::AppKeyRecord;

use super::audit::{kind, Event};
use super::{check_name, new_id, new_token, token_hash, RequestMeta, Service};

/// Prefix of application keys, so that a leaked key is recognisable (e.g. by secret scanners).
pub const APP_KEY_PREFIX: &str = "mamori_ak_";

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

impl Service {
    /// Creates an application key; the key text is returned once.
    pub async fn create_app_key<R: RngCore + CryptoRng + Send>(
        &self,
        actor: &str,
        name: &str,
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
        };
        self.store.create_app_key(&record).await?;
        self.audit(
            now,
            meta,
            Event {
                kind: kind::APP_KEY_CREATE,
                result: "success",
                account: None,
                actor: Some(actor),
                detail: Some(name),
            },
        )
        .await?;
        Ok((record, key))
    }

    /// The application a key belongs to.
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
        let actor = format!("app:{}", app.name);
        let found = if user.len() <= 64 {
            self.store.account_with_devices(user).await?
        } else {
            None
        };
        let Some((account, devices)) = found else {
            self.audit(
                now,
                meta,
                Event {
                    kind: kind::VALIDATE,
                    result: "unknown_user",
                    account: None,
                    actor: Some(&actor),
                    detail: None,
                },
            )
            .await?;
            return Ok(Validation::RejectInvalidCode);
        };
        let meta = RequestMeta {
            client_addr: meta.client_addr.clone(),
            user_agent: Some(actor),
        };
        match self
            .verify_second_factor_with(&account, &devices, code, None, now, &meta, kind::VALIDATE)
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
}

//! End-to-end-encrypted authenticator sync (docs/sync-protocol.md): device registration after a
//! full sign-in with a second factor, device tokens, the wrapped sync keys, and encrypted items
//! with optimistic concurrency. The server never decrypts anything here: it checks sizes,
//! counts, ids and revisions, stores bytes, and audits every change.

use rand::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::clock::UnixTime;
use crate::error::{Error, Result};
use crate::store::sync::{
    SyncDeviceRecord, SyncItemRecord, SyncKeysRecord, SyncPush, SyncPushOutcome,
};
use crate::store::AccountRecord;

use super::audit::Event;
use super::session::Authenticated;
use super::{check_name, new_id, new_token, token_hash, RequestMeta, Service, RECENT_FACTOR_SECS};

/// Audit kinds of this module (defined with every other kind in [`super::audit::kind`], so
/// that modules which refer to another's kinds need not import each other).
pub use super::audit::kind::sync as kind;

/// Limits of the sync API (each enforced and tested).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncLimits {
    /// Largest item ciphertext in bytes.
    pub max_item_bytes: usize,
    /// Most items (tombstones included) per account.
    pub max_items: i64,
    /// Most items per push request.
    pub max_push_items: usize,
    /// Most unrevoked sync devices per account.
    pub max_devices: i64,
    /// Largest request body on the sync routes.
    pub body_bytes: usize,
    /// Requests per device per minute.
    pub requests_per_minute: u32,
    /// Burst allowance per device.
    pub burst: u32,
}

impl Default for SyncLimits {
    fn default() -> Self {
        SyncLimits {
            max_item_bytes: 64 * 1024,
            max_items: 20_000,
            max_push_items: 500,
            max_devices: 32,
            body_bytes: 2 * 1024 * 1024,
            requests_per_minute: 600,
            burst: 120,
        }
    }
}

impl SyncLimits {
    /// Defaults overridden by `MAMORI_SYNC_MAX_ITEM_BYTES`, `MAMORI_SYNC_MAX_ITEMS`,
    /// `MAMORI_SYNC_MAX_PUSH_ITEMS`, `MAMORI_SYNC_MAX_DEVICES`, `MAMORI_SYNC_BODY_BYTES`,
    /// `MAMORI_SYNC_REQUESTS_PER_MINUTE` and `MAMORI_SYNC_BURST`, read through `get`.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<SyncLimits> {
        fn set<T: std::str::FromStr>(
            get: &impl Fn(&str) -> Option<String>,
            name: &str,
            slot: &mut T,
        ) -> Result<()> {
            if let Some(v) = get(name) {
                *slot = v
                    .trim()
                    .parse()
                    .map_err(|_| Error::Config(format!("{name}={v:?} is not a number")))?;
            }
            Ok(())
        }
        let mut l = SyncLimits::default();
        set(&get, "MAMORI_SYNC_MAX_ITEM_BYTES", &mut l.max_item_bytes)?;
        set(&get, "MAMORI_SYNC_MAX_ITEMS", &mut l.max_items)?;
        set(&get, "MAMORI_SYNC_MAX_PUSH_ITEMS", &mut l.max_push_items)?;
        set(&get, "MAMORI_SYNC_MAX_DEVICES", &mut l.max_devices)?;
        set(&get, "MAMORI_SYNC_BODY_BYTES", &mut l.body_bytes)?;
        set(
            &get,
            "MAMORI_SYNC_REQUESTS_PER_MINUTE",
            &mut l.requests_per_minute,
        )?;
        set(&get, "MAMORI_SYNC_BURST", &mut l.burst)?;
        Ok(l)
    }
}

/// A request authenticated by a device token.
#[derive(Debug, Clone)]
pub struct SyncAuth {
    /// The device.
    pub device: SyncDeviceRecord,
    /// Its account.
    pub account: AccountRecord,
}

/// Largest key wrap accepted (the real ones are about 150 characters).
const MAX_WRAP_LEN: usize = 1024;
/// Pull page size bounds.
const MAX_PULL: i64 = 1000;

/// A pull page.
#[derive(Debug, Clone)]
pub struct PullPage {
    /// Items in sequence order.
    pub items: Vec<SyncItemRecord>,
    /// Cursor for the next call.
    pub cursor: i64,
    /// Whether more items wait.
    pub more: bool,
}

fn check_b64ish(what: &str, s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= MAX_WRAP_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "{what} must be 1-{MAX_WRAP_LEN} characters of Base64url"
        )))
    }
}

impl Service {
    /// Registers a sync device for a full session whose second factor was given within the
    /// last 5 minutes (a fresh sign-in with password and code). Returns the device token (shown
    /// once; stored hashed).
    pub async fn sync_register_device<R: RngCore + CryptoRng + Send>(
        &self,
        auth: &Authenticated,
        name: &str,
        limits: &SyncLimits,
        now: UnixTime,
        rng: &mut R,
        meta: &RequestMeta,
    ) -> Result<(Zeroizing<String>, SyncDeviceRecord)> {
        auth.require_full()?;
        let fresh = auth
            .session
            .second_factor_at
            .is_some_and(|t| now - t <= RECENT_FACTOR_SECS);
        let user = auth.account.name.as_str();
        if !fresh {
            self.audit(
                now,
                meta,
                Event::own(kind::DEVICE_REGISTER, "refused", user)
                    .detail("no recent second factor"),
            )
            .await?;
            return Err(Error::RecentSecondFactorRequired);
        }
        check_name("device name", name)?;
        let (token, hash) = new_token(rng);
        let d = SyncDeviceRecord {
            id: new_id(rng),
            account_id: auth.account.id.clone(),
            name: name.to_string(),
            token_hash: hash,
            created_at: now,
            last_seen_at: Some(now),
            revoked_at: None,
        };
        self.store()
            .sync_create_device(&d, limits.max_devices)
            .await?;
        self.audit(
            now,
            meta,
            Event::own(kind::DEVICE_REGISTER, "success", user).detail(&d.name),
        )
        .await?;
        Ok((token, d))
    }

    /// The device and account of a device token; revoked or unknown tokens are refused.
    pub async fn sync_authenticate(&self, token: &str, now: UnixTime) -> Result<SyncAuth> {
        let device = self
            .store()
            .sync_device_by_token_hash(&token_hash(token))
            .await?
            .ok_or(Error::Unauthenticated)?;
        let account = self
            .store()
            .account_by_id(&device.account_id)
            .await?
            .ok_or(Error::Unauthenticated)?;
        if account.locked_at.is_some() {
            return Err(Error::AccountLocked);
        }
        // Record activity at most once a minute, not on every request.
        if device.last_seen_at.is_none_or(|t| now - t >= 60) {
            self.store().sync_touch_device(&device.id, now).await?;
        }
        Ok(SyncAuth { device, account })
    }

    /// Revokes every sync device token of `account` because its trust was reset (`reason`: an
    /// MFA reset, a password change, the end of a recovery session): a device registered by
    /// whoever held the account before must not keep pulling and pushing. Audited as
    /// `sync.device_revoke` when any token was live; returns how many were.
    pub(super) async fn sync_revoke_all(
        &self,
        account: &AccountRecord,
        actor: &str,
        reason: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<u64> {
        let n = self
            .store()
            .sync_revoke_all_devices(&account.id, now)
            .await?;
        if n > 0 {
            let detail = format!("all {n} sync devices: {reason}");
            self.audit(
                now,
                meta,
                Event::own(kind::DEVICE_REVOKE, "success", &account.name)
                    .by(actor)
                    .detail(&detail),
            )
            .await?;
        }
        Ok(n)
    }

    /// The account's sync devices.
    pub async fn sync_devices(&self, auth: &SyncAuth) -> Result<Vec<SyncDeviceRecord>> {
        self.store().sync_devices(&auth.account.id).await
    }

    /// Revokes one of the account's devices (possibly the caller itself).
    pub async fn sync_revoke_device(
        &self,
        auth: &SyncAuth,
        device_id: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<()> {
        let user = auth.account.name.as_str();
        let name = self
            .store()
            .sync_devices(&auth.account.id)
            .await?
            .into_iter()
            .find(|d| d.id == device_id)
            .map(|d| d.name);
        let done = self
            .store()
            .sync_revoke_device(&auth.account.id, device_id, now)
            .await?;
        let Some(name) = name.filter(|_| done) else {
            return Err(Error::NotFound("sync device"));
        };
        self.audit(
            now,
            meta,
            Event::own(kind::DEVICE_REVOKE, "success", user)
                .detail(&format!("{name} (by {})", auth.device.name)),
        )
        .await?;
        Ok(())
    }

    /// The wrapped sync key.
    pub async fn sync_get_keys(&self, auth: &SyncAuth) -> Result<SyncKeysRecord> {
        self.store()
            .sync_keys(&auth.account.id)
            .await?
            .ok_or(Error::NotFound("sync keys"))
    }

    /// Stores the wrapped sync key (first upload with both wraps, or a passphrase rewrap).
    pub async fn sync_put_keys(
        &self,
        auth: &SyncAuth,
        expected_version: i64,
        passphrase_wrap: &str,
        recovery_wrap: Option<&str>,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<i64> {
        check_b64ish("passphrase_wrap", passphrase_wrap)?;
        if let Some(r) = recovery_wrap {
            check_b64ish("recovery_wrap", r)?;
        }
        let user = auth.account.name.as_str();
        let v = self
            .store()
            .sync_put_keys(
                &auth.account.id,
                expected_version,
                passphrase_wrap,
                recovery_wrap,
                now,
            )
            .await?;
        let detail = format!("by {}", auth.device.name);
        match v {
            Some(v) => {
                self.audit(
                    now,
                    meta,
                    Event::own(kind::KEYS_PUT, "success", user).detail(&detail),
                )
                .await?;
                Ok(v)
            }
            None => {
                self.audit(
                    now,
                    meta,
                    Event::own(kind::KEYS_PUT, "conflict", user).detail(&detail),
                )
                .await?;
                Err(Error::Conflict(if expected_version == 0 {
                    "sync keys already exist for this account (or the first upload lacks the recovery wrap): join instead".into()
                } else {
                    "the sync keys changed since you read them: read them again".into()
                }))
            }
        }
    }

    /// Items changed after `since`, at most `limit` (1..=1000).
    pub async fn sync_pull(&self, auth: &SyncAuth, since: i64, limit: i64) -> Result<PullPage> {
        if since < 0 {
            return Err(Error::InvalidInput("since must be 0 or more".into()));
        }
        let limit = limit.clamp(1, MAX_PULL);
        let mut items = self
            .store()
            .sync_pull(&auth.account.id, since, limit + 1)
            .await?;
        let more = items.len() as i64 > limit;
        items.truncate(usize::try_from(limit).unwrap_or(0));
        let cursor = items.last().map(|i| i.seq).unwrap_or(since);
        Ok(PullPage {
            items,
            cursor,
            more,
        })
    }

    /// Stores pushed items (each with its expected revision). The whole request is checked
    /// first — ids, sizes, count — so bad input stores nothing.
    pub async fn sync_push(
        &self,
        auth: &SyncAuth,
        items: Vec<SyncPush>,
        limits: &SyncLimits,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<Vec<SyncPushOutcome>> {
        let user = auth.account.name.as_str();
        if items.is_empty() {
            return Ok(Vec::new());
        }
        if items.len() > limits.max_push_items {
            return Err(Error::InvalidInput(format!(
                "at most {} items per push",
                limits.max_push_items
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for it in &items {
            if uuid::Uuid::parse_str(&it.id).is_err() || it.id.len() != 36 {
                return Err(Error::InvalidInput("item ids must be UUIDs".into()));
            }
            if !seen.insert(it.id.as_str()) {
                return Err(Error::InvalidInput(format!("item {} appears twice", it.id)));
            }
            if it.expected_revision < 0 {
                return Err(Error::InvalidInput(
                    "expected_revision must be 0 or more".into(),
                ));
            }
            if it.ciphertext.is_empty() || it.ciphertext.len() > limits.max_item_bytes {
                self.audit(
                    now,
                    meta,
                    Event::own(kind::PUSH, "refused", user).detail("item too large"),
                )
                .await?;
                return Err(Error::InvalidInput(format!(
                    "item {} has {} bytes of ciphertext; the limit is {} bytes",
                    it.id,
                    it.ciphertext.len(),
                    limits.max_item_bytes
                )));
            }
        }
        let result = self
            .store()
            .sync_push(&auth.account.id, &items, limits.max_items, now)
            .await;
        let out = match result {
            Ok(o) => o,
            Err(e) => {
                self.audit(
                    now,
                    meta,
                    Event::own(kind::PUSH, "refused", user).detail("item limit"),
                )
                .await?;
                return Err(e);
            }
        };
        let stored = out
            .iter()
            .filter(|o| matches!(o, SyncPushOutcome::Stored { .. }))
            .count();
        let detail = format!(
            "{stored} stored, {} conflicts, by {}",
            out.len() - stored,
            auth.device.name
        );
        self.audit(
            now,
            meta,
            Event::own(kind::PUSH, "success", user).detail(&detail),
        )
        .await?;
        Ok(out)
    }
}

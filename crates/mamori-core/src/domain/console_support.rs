//! What the web console needs beyond the JSON API's operations: the devices that may answer a
//! pending sign-in challenge, showing a pending device's QR code again while its owner enrolls
//! it, an administrator deactivating one device of another user, the application keys, and
//! audit events filtered by time.

use mamori_otp::KeyUri;
use zeroize::Zeroizing;

use crate::clock::UnixTime;
use crate::error::{Error, Result};
use crate::store::{
    AccountRecord, AppKeyRecord, AuditFilter, AuditRecord, DeviceRecord, SessionState,
};

use super::session::Authenticated;
use super::{token_hash, RequestMeta, Service};

/// A pending device's enrollment material, shown again to its owner until it is enabled.
pub struct PendingEnrollment {
    /// The device.
    pub device: DeviceRecord,
    /// Base32 seed (for manual entry).
    pub secret_base32: Zeroizing<String>,
    /// QR code of the `otpauth://` URI, PNG.
    pub qr_png: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for PendingEnrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingEnrollment")
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// The audit viewer looks at most at this many of the latest events; older ones are for the
/// exported log (`mamori-server admin audit`).
pub const AUDIT_SCAN_LIMIT: i64 = 100_000;

/// Audit query with a time range (inclusive `from`, exclusive `until`).
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only this account.
    pub account: Option<String>,
    /// Only this kind, or kinds starting with it when it ends in `.`.
    pub kind: Option<String>,
    /// Events at or after this time.
    pub from: Option<UnixTime>,
    /// Events before this time.
    pub until: Option<UnixTime>,
    /// At most this many, the newest.
    pub limit: usize,
}

impl Service {
    /// The account and enabled devices of a pending sign-in challenge.
    pub async fn challenge_devices(
        &self,
        challenge: &str,
        now: UnixTime,
    ) -> Result<(AccountRecord, Vec<DeviceRecord>)> {
        let pending = self
            .store
            .session_by_token_hash(&token_hash(challenge))
            .await?
            .filter(|s| s.state == SessionState::MfaPending && s.expires_at > now)
            .ok_or(Error::InvalidChallenge)?;
        let account = self
            .store
            .account_by_id(&pending.account_id)
            .await?
            .ok_or(Error::InvalidChallenge)?;
        let devices = self.enabled_devices(&account).await?;
        Ok((account, devices))
    }

    /// The QR code and seed of one of the account's devices that is still pending (created, not
    /// yet enabled), so that the enrollment page can be shown again after a wrong code. An
    /// enabled device's secret is never shown again.
    /// Showing the secret again is finishing the enrollment, under the same rule as enabling
    /// (a stale session may not read an abandoned device's secret).
    pub async fn pending_enrollment(
        &self,
        auth: &Authenticated,
        device_id: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<PendingEnrollment> {
        let account = &auth.account;
        let d = self.pending_device(auth, device_id, now, meta).await?;
        let g = self.generator(&d)?;
        let sealed = d
            .secret_sealed
            .as_ref()
            .map(|s| s.expose())
            .ok_or_else(|| Error::Internal("device has no secret".into()))?;
        let bytes = self.key.open(d.id.as_bytes(), sealed)?;
        let secret = mamori_otp::Secret::from_bytes(bytes.to_vec())
            .map_err(|e| Error::Internal(format!("stored secret: {e}")))?;
        let uri = KeyUri {
            issuer: Some(self.policy.service_name.clone()),
            account: account.name.clone(),
            secret,
            params: *g.params(),
        };
        let text = uri.to_uri();
        let qr_png = Zeroizing::new(
            mamori_otp::qr::to_png(&text, 6).map_err(|e| Error::Internal(e.to_string()))?,
        );
        Ok(PendingEnrollment {
            device: d,
            secret_base32: uri.secret.to_base32(),
            qr_png,
        })
    }

    /// The account a setup link is for, without using the link up (the setup page shows the
    /// name; unknown, used or expired links are refused).
    pub async fn setup_link_account(&self, token: &str, now: UnixTime) -> Result<AccountRecord> {
        if token.is_empty() || token.len() > 128 {
            return Err(Error::InvalidSetupToken);
        }
        let id = self
            .store
            .setup_token_account(&token_hash(token), now)
            .await?
            .ok_or(Error::InvalidSetupToken)?;
        self.store
            .account_by_id(&id)
            .await?
            .ok_or(Error::InvalidSetupToken)
    }

    /// Every application key.
    pub async fn list_app_keys(&self) -> Result<Vec<AppKeyRecord>> {
        self.store.list_app_keys().await
    }

    /// The newest `limit` audit events matching `q`, newest first, looking at most at the
    /// latest [`AUDIT_SCAN_LIMIT`] events. The store lists events in id order only, so this
    /// finds the newest id and reads backwards in id ranges of 1,000 (each one indexed query
    /// with the account and kind filters), stopping at `limit` matches, at events older than
    /// `from`, or at the scan limit. Returns the events and whether the scan limit cut the
    /// search short.
    pub async fn audit_query(&self, q: &AuditQuery) -> Result<(Vec<AuditRecord>, bool)> {
        self.audit_query_within(q, AUDIT_SCAN_LIMIT).await
    }

    /// [`Service::audit_query`] looking at most at the latest `scan_limit` events.
    pub async fn audit_query_within(
        &self,
        q: &AuditQuery,
        scan_limit: i64,
    ) -> Result<(Vec<AuditRecord>, bool)> {
        const CHUNK: i64 = 1000;
        let limit = q.limit.clamp(1, 1000);
        let newest = self.audit_newest_id().await?;
        let oldest_allowed = newest.saturating_sub(scan_limit);
        let mut out = Vec::with_capacity(limit);
        let mut upper = newest;
        while upper > 0 && out.len() < limit {
            if upper <= oldest_allowed {
                return Ok((out, true));
            }
            let after = upper.saturating_sub(CHUNK).max(0);
            let page = self
                .store
                .list_audit(&AuditFilter {
                    account: q.account.clone(),
                    kind: q.kind.clone(),
                    after: Some(after),
                    limit: CHUNK,
                })
                .await?;
            let mut older_than_from = false;
            for r in page.into_iter().filter(|r| r.id <= upper).rev() {
                let at = r.event.at;
                if q.from.is_some_and(|f| at < f) {
                    older_than_from = true;
                    continue;
                }
                if q.until.is_some_and(|u| at >= u) {
                    continue;
                }
                if out.len() < limit {
                    out.push(r);
                }
            }
            // Ids grow with time (up to clock skew between nodes), so once a range holds
            // events before `from`, older ranges hold nothing newer.
            if older_than_from {
                break;
            }
            upper = after;
        }
        Ok((out, false))
    }

    /// The id of the newest audit event (0 when there is none), by exponential then binary
    /// search over `list_audit(after = x, limit = 1)`: about 2·log2(n) indexed lookups.
    async fn audit_newest_id(&self) -> Result<i64> {
        let first_after = |after: i64| async move {
            Ok::<_, Error>(
                self.store
                    .list_audit(&AuditFilter {
                        account: None,
                        kind: None,
                        after: Some(after),
                        limit: 1,
                    })
                    .await?
                    .first()
                    .map(|r| r.id),
            )
        };
        // Invariant: an event with id `lo` exists; none has an id above `hi` once found.
        let Some(mut lo) = first_after(0).await? else {
            return Ok(0);
        };
        let mut step: i64 = 1;
        let mut hi = lo.saturating_add(step);
        while let Some(id) = first_after(hi).await? {
            lo = id;
            step = step.saturating_mul(2);
            hi = lo.saturating_add(step);
        }
        while lo < hi {
            let mid = lo + (hi - lo + 1) / 2;
            match first_after(mid - 1).await? {
                Some(id) => lo = id,
                None => hi = mid - 1,
            }
        }
        Ok(lo)
    }
}

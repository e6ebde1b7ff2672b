//! The account's sync devices as the console shows them (issue #15): listed with their
//! last-seen time, and revoked from a browser session, so a stolen laptop can be cut off
//! without the laptop's own device token. Revocation is a change to how the account can be
//! reached, so it goes through [`Service::authorize_factor_change`] like every factor change
//! (a second factor from the last 5 minutes when the account has MFA; the account's own
//! full session only).

use crate::clock::UnixTime;
use crate::error::{Error, Result};
use crate::store::sync::SyncDeviceRecord;

use super::audit::Event;
use super::factor_changes::FactorChange;
use super::session::Authenticated;
use super::sync::kind;
use super::{RequestMeta, Service};

impl Service {
    /// The signed-in account's sync devices, revoked ones included (oldest first).
    pub async fn session_sync_devices(
        &self,
        auth: &Authenticated,
    ) -> Result<Vec<SyncDeviceRecord>> {
        auth.require_full()?;
        self.store().sync_devices(&auth.account.id).await
    }

    /// Revokes one of the signed-in account's sync devices: its token stops working at once
    /// (the next sync is refused as unauthenticated). Audited as `sync.device_revoke`.
    pub async fn revoke_sync_device_in_session(
        &self,
        auth: &Authenticated,
        device_id: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<()> {
        self.authorize_factor_change(
            &auth.account,
            &auth.session,
            &auth.account,
            FactorChange::RevokeSyncDevice,
            now,
            meta,
        )
        .await?;
        let user = auth.account.name.as_str();
        let name = self
            .store()
            .sync_devices(&auth.account.id)
            .await?
            .into_iter()
            .find(|d| d.id == device_id && d.revoked_at.is_none())
            .map(|d| d.name);
        let Some(name) = name else {
            return Err(Error::NotFound("sync device"));
        };
        if !self
            .store()
            .sync_revoke_device(&auth.account.id, device_id, now)
            .await?
        {
            // Revoked by a concurrent request in between.
            return Err(Error::NotFound("sync device"));
        }
        self.audit(
            now,
            meta,
            Event::own(kind::DEVICE_REVOKE, "success", user)
                .detail(&format!("{name} (from a browser session)")),
        )
        .await?;
        Ok(())
    }
}

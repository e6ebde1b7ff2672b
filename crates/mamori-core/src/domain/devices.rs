//! Virtual MFA devices, modelled on the cloud provider's API: create (serial, Base32 seed,
//! `otpauth://` URI, QR code), enable with two consecutive codes, resync, list, rename, delete.
//! Every kind of device (virtual, security key, hardware OTP token) shares one table and the
//! per-user limit.

use mamori_otp::{KeyUri, OtpParams, Secret, DEFAULT_SECRET_LEN};
use rand::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::clock::UnixTime;
use crate::error::{Error, Result};
use crate::store::{AccountRecord, DeviceKind, DeviceRecord, Redacted};

use super::audit::{kind, Event};
use super::factor_changes::{FactorChange, FactorChangeAllowed};
use super::factors::{find_consecutive, map_consecutive};
use super::session::Authenticated;
use super::{
    check_name, new_id, unix_u64, RequestMeta, SecondFactorVerified, Service, ENROLL_WINDOW,
};

/// A created virtual device must be enabled within an hour; afterwards it is swept.
pub const PENDING_DEVICE_SECS: i64 = 60 * 60;

/// A created, not yet enabled virtual device. Holds the secret: shown once, then dropped.
pub struct NewVirtualDevice {
    /// The device row.
    pub device: DeviceRecord,
    /// Base32 seed.
    pub secret_base32: Zeroizing<String>,
    /// `otpauth://` URI.
    pub uri: Zeroizing<String>,
    /// QR code of the URI, SVG.
    pub qr_svg: Zeroizing<String>,
    /// QR code of the URI, PNG.
    pub qr_png: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for NewVirtualDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewVirtualDevice")
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// The serial of a virtual device: `mamori:mfa/USER/NAME`, like the provider's ARN.
pub fn virtual_serial(user: &str, name: &str) -> String {
    format!("mamori:mfa/{user}/{name}")
}

impl Service {
    /// Seals an OTP secret for the device `device_id` with the server key (the device id is the
    /// associated data). For device kinds whose secrets arrive from elsewhere (hardware tokens
    /// imported from a vendor's seed file, benchmark seeding).
    pub fn seal_secret<R: RngCore + CryptoRng>(
        &self,
        device_id: &str,
        secret: &Secret,
        rng: &mut R,
    ) -> Result<Vec<u8>> {
        self.key.seal(rng, device_id.as_bytes(), secret.as_bytes())
    }

    /// A pending device that is too old to enable: its secret was shown long ago, maybe to
    /// someone else, so it must be created again (and the sweeper deletes it).
    pub(crate) fn pending_expired(d: &DeviceRecord, now: UnixTime) -> bool {
        d.enabled_at.is_none() && now.saturating_sub(d.created_at) >= PENDING_DEVICE_SECS
    }

    /// Deletes virtual devices left pending for [`PENDING_DEVICE_SECS`] (run by the server's
    /// housekeeping on every node; each deletion is audited by the node that made it).
    pub async fn sweep_pending_devices(&self, now: UnixTime) -> Result<u64> {
        let cutoff = now.saturating_sub(PENDING_DEVICE_SECS);
        let mut swept = 0;
        for d in self.store.pending_devices_created_before(cutoff).await? {
            if !self.store.delete_device(&d.account_id, &d.id).await? {
                continue; // another node swept it, or the user deleted it
            }
            swept += 1;
            let name = match self.store.account_by_id(&d.account_id).await? {
                Some(a) => a.name,
                None => continue,
            };
            self.audit(
                now,
                &RequestMeta::default(),
                Event::own(kind::MFA_DELETE, "expired", &name)
                    .by("system")
                    .detail(&d.name),
            )
            .await?;
        }
        Ok(swept)
    }

    /// Creates a pending virtual device named `name` for the session's account.
    pub async fn create_virtual_device<R: RngCore + CryptoRng + Send>(
        &self,
        auth: &Authenticated,
        name: &str,
        now: UnixTime,
        rng: &mut R,
        meta: &RequestMeta,
    ) -> Result<NewVirtualDevice> {
        check_name("the device name", name)?;
        let account = &auth.account;
        self.authorize_own(auth, FactorChange::CreateDevice, now, meta)
            .await?;
        let secret = Secret::generate_with(rng, DEFAULT_SECRET_LEN);
        let id = new_id(rng);
        let params = OtpParams::totp();
        let device = DeviceRecord {
            id: id.clone(),
            account_id: account.id.clone(),
            kind: DeviceKind::Virtual,
            name: name.to_string(),
            serial: virtual_serial(&account.name, name),
            created_at: now,
            enabled_at: None,
            last_used_at: None,
            secret_sealed: Some(Redacted::new(self.key.seal(
                rng,
                id.as_bytes(),
                secret.as_bytes(),
            )?)),
            otp_type: "totp".into(),
            algorithm: params.algorithm.as_str().to_string(),
            digits: i64::from(params.digits),
            period: i64::try_from(params.period).unwrap_or(30),
            drift: 0,
            last_step: None,
            credential: None,
        };
        let uri = KeyUri {
            issuer: Some(self.policy.service_name.clone()),
            account: account.name.clone(),
            secret,
            params,
        };
        let text = uri.to_uri();
        let qr_svg = Zeroizing::new(
            mamori_otp::qr::to_svg(&text).map_err(|e| Error::Internal(e.to_string()))?,
        );
        let qr_png = Zeroizing::new(
            mamori_otp::qr::to_png(&text, 6).map_err(|e| Error::Internal(e.to_string()))?,
        );
        let max = self.policy.max_devices;
        match self.store.create_device(&device, i64::from(max)).await {
            Ok(()) => {}
            Err(e) => {
                let result = match &e {
                    Error::DeviceLimitReached(_) => "device_limit",
                    Error::Conflict(_) => "name_taken",
                    _ => "error",
                };
                self.audit(
                    now,
                    meta,
                    Event::own(kind::MFA_CREATE, result, &account.name).detail(name),
                )
                .await?;
                return Err(e);
            }
        }
        self.audit(
            now,
            meta,
            Event::own(kind::MFA_CREATE, "success", &account.name).detail(name),
        )
        .await?;
        Ok(NewVirtualDevice {
            device,
            secret_base32: uri.secret.to_base32(),
            uri: text,
            qr_svg,
            qr_png,
        })
    }

    async fn owned_device(&self, account: &AccountRecord, device_id: &str) -> Result<DeviceRecord> {
        self.store
            .device(&account.id, device_id)
            .await?
            .ok_or(Error::NotFound("device"))
    }

    /// Enables a pending OTP device with two consecutive codes (searched within ±10 steps),
    /// remembering the drift. Enabling proves possession of the device, so it yields a
    /// [`SecondFactorVerified`]. The same rule as creating applies (a stale session cannot
    /// finish an abandoned enrollment to gain a fresh factor), and a device pending for an
    /// hour can no longer be enabled.
    pub async fn enable_device(
        &self,
        auth: &Authenticated,
        device_id: &str,
        code1: &str,
        code2: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<(DeviceRecord, SecondFactorVerified)> {
        let account = &auth.account;
        let d = self.pending_device(auth, device_id, now, meta).await?;
        let g = self.generator(&d)?;
        let found = g.find_consecutive_time(code1, code2, unix_u64(now), ENROLL_WINDOW);
        let m = match found {
            Ok(m) => m,
            Err(e) => {
                let e = map_consecutive(e);
                let result = match e {
                    Error::CodesNotConsecutive => "not_consecutive",
                    _ => "failure",
                };
                self.audit(
                    now,
                    meta,
                    Event::own(kind::MFA_ENABLE, result, &account.name).detail(&d.name),
                )
                .await?;
                return Err(e);
            }
        };
        let last = i64::try_from(m.last_step).unwrap_or(i64::MAX);
        if !self.store.enable_device(&d.id, now, m.drift, last).await? {
            return Err(Error::InvalidDeviceState(
                "the device is already enabled".into(),
            ));
        }
        self.audit(
            now,
            meta,
            Event::own(kind::MFA_ENABLE, "success", &account.name).detail(&d.name),
        )
        .await?;
        let d = self.owned_device(account, device_id).await?;
        Ok((d, SecondFactorVerified::new(&account.id)))
    }

    /// Resynchronises an enabled device with two consecutive codes.
    pub async fn resync_device(
        &self,
        auth: &Authenticated,
        device_id: &str,
        code1: &str,
        code2: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<DeviceRecord> {
        let account = &auth.account;
        let d = self.owned_device(account, device_id).await?;
        self.authorize_own(auth, FactorChange::ResyncDevice, now, meta)
            .await?;
        if !d.kind.is_otp() || d.enabled_at.is_none() {
            return Err(Error::InvalidDeviceState(
                "only an enabled OTP device can be resynchronised".into(),
            ));
        }
        let g = self.generator(&d)?;
        // HOTP tokens search counters ahead of the last one, TOTP devices a window of steps.
        let result = match find_consecutive(&g, d.last_step, code1, code2, now) {
            Ok(m) => {
                let last = i64::try_from(m.last_step).unwrap_or(i64::MAX);
                if self.store.resync_device(&d.id, m.drift, last).await? {
                    Ok(())
                } else {
                    // The codes were for steps already used: a replay.
                    Err(Error::InvalidCode)
                }
            }
            Err(e) => Err(map_consecutive(e)),
        };
        let label = match &result {
            Ok(()) => "success",
            Err(Error::CodesNotConsecutive) => "not_consecutive",
            Err(_) => "failure",
        };
        self.audit(
            now,
            meta,
            Event::own(kind::MFA_RESYNC, label, &account.name).detail(&d.name),
        )
        .await?;
        result?;
        self.owned_device(account, device_id).await
    }

    /// The account's devices.
    pub async fn list_devices(&self, account: &AccountRecord) -> Result<Vec<DeviceRecord>> {
        self.store.devices_for_account(&account.id).await
    }

    /// Renames a device (its serial follows the name).
    pub async fn rename_device(
        &self,
        auth: &Authenticated,
        device_id: &str,
        name: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<DeviceRecord> {
        check_name("the device name", name)?;
        let account = &auth.account;
        let d = self.owned_device(account, device_id).await?;
        self.authorize_own(auth, FactorChange::RenameDevice, now, meta)
            .await?;
        let serial = if d.kind == DeviceKind::Virtual {
            virtual_serial(&account.name, name)
        } else {
            d.serial.clone()
        };
        if !self
            .store
            .rename_device(&account.id, device_id, name, &serial)
            .await?
        {
            return Err(Error::NotFound("device"));
        }
        let detail = format!("{} -> {}", d.name, name);
        self.audit(
            now,
            meta,
            Event::own(kind::MFA_RENAME, "success", &account.name).detail(&detail),
        )
        .await?;
        self.owned_device(account, device_id).await
    }

    /// Deletes (deactivates) a device of `user` (the session's own account when `None`),
    /// under the one rule for factor changes ([`Service::authorize_factor_change`]): the
    /// account itself with a recent second factor, or an administrator with a recent second
    /// factor of their own for anyone but root. When an administrator removes it, the user's
    /// sessions and sync device tokens end, so the next sign-in asks again (and, with no device left where the policy
    /// requires MFA, asks to enroll). Audited and notified either way.
    pub async fn delete_device(
        &self,
        auth: &Authenticated,
        user: Option<&str>,
        device_id: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<DeviceRecord> {
        let target = self.factor_target(auth, user, now, meta).await?;
        let d = self.owned_device(&target, device_id).await?;
        let allowed = self
            .authorize_factor_change(
                &auth.account,
                &auth.session,
                &target,
                FactorChange::DeleteDevice,
                now,
                meta,
            )
            .await?;
        if !self.store.delete_device(&target.id, device_id).await? {
            return Err(Error::NotFound("device"));
        }
        if let Some(admin) = allowed.admin() {
            // The device is gone because the user lost it or lost trust in it: whatever was
            // signed in or syncing with the account's old trust ends too (the lost phone may
            // hold a sync token).
            self.store.delete_sessions_for_account(&target.id).await?;
            self.forget_forward_sessions(&target.id);
            self.sync_revoke_all(
                &target,
                admin,
                "device deactivated by an administrator",
                now,
                meta,
            )
            .await?;
        }
        let mut event = Event::own(kind::MFA_DELETE, "success", &target.name).detail(&d.name);
        if let Some(admin) = allowed.admin() {
            event = event.by(admin);
        }
        self.audit(now, meta, event).await?;
        Ok(d)
    }

    /// The session's own factor change, under the one rule.
    pub(super) async fn authorize_own(
        &self,
        auth: &Authenticated,
        change: FactorChange,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<FactorChangeAllowed> {
        self.authorize_factor_change(
            &auth.account,
            &auth.session,
            &auth.account,
            change,
            now,
            meta,
        )
        .await
    }

    /// A pending (created, not enabled, not expired) OTP device of the session's account that
    /// the session may finish enrolling: shown again or enabled.
    pub(super) async fn pending_device(
        &self,
        auth: &Authenticated,
        device_id: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<DeviceRecord> {
        let d = self.owned_device(&auth.account, device_id).await?;
        if !d.kind.is_otp() || d.enabled_at.is_some() {
            return Err(Error::InvalidDeviceState(
                "the device is already enabled".into(),
            ));
        }
        self.authorize_own(auth, FactorChange::EnableDevice, now, meta)
            .await?;
        if Self::pending_expired(&d, now) {
            self.audit(
                now,
                meta,
                Event::own(kind::MFA_ENABLE, "expired", &auth.account.name).detail(&d.name),
            )
            .await?;
            return Err(Error::InvalidDeviceState(
                "this device was created more than an hour ago and was never enabled: delete \
                 it and create it again"
                    .into(),
            ));
        }
        Ok(d)
    }
}

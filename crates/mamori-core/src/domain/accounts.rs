//! Accounts: the root account created on first start, users created by administrators,
//! one-time setup links to choose a password, password change, administrator MFA reset, and
//! the security alerts about accounts without (enough) MFA.

use rand::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::clock::UnixTime;
use crate::error::{Error, Result};
use crate::store::{AccountRecord, DeviceRecord, Role};

use super::audit::{kind, Event};
use super::password;
use super::session::Authenticated;
use super::{
    check_name, new_id, new_token, token_hash, Request, RequestMeta, Service, ROOT, SETUP_LINK_SECS,
};

/// A security alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// `root_without_mfa`, `user_without_mfa` or `single_mfa_device`.
    pub kind: &'static str,
    /// The account.
    pub user: String,
    /// For people.
    pub message: String,
}

/// The alerts for one account given its enabled devices and unused recovery codes (with
/// recovery codes, one device is not a lockout risk: the review's rule,
/// [`mamori_review::deployment::single_device_lockout`]).
pub fn alerts_for(
    account: &AccountRecord,
    enabled_devices: usize,
    unused_recovery_codes: u32,
) -> Vec<Alert> {
    match enabled_devices {
        0 if account.name == ROOT => vec![Alert {
            kind: "root_without_mfa",
            user: account.name.clone(),
            message: "MFA is not enabled for the root user: enable an MFA device now".into(),
        }],
        0 => vec![Alert {
            kind: "user_without_mfa",
            user: account.name.clone(),
            message: format!("MFA is not enabled for user {}", account.name),
        }],
        n if mamori_review::deployment::single_device_lockout(n, unused_recovery_codes) => {
            vec![Alert {
                kind: "single_mfa_device",
                user: account.name.clone(),
                message: format!(
                "user {} has only one MFA device: losing it locks the account out; add a second",
                account.name
            ),
            }]
        }
        _ => vec![],
    }
}

/// A user an administrator creates: the name, the role and the contacts known already (the
/// phone number in any form [`super::phone::normalize`] reads).
#[derive(Debug, Clone, Copy)]
pub struct NewUser<'a> {
    /// The user name.
    pub name: &'a str,
    /// The role.
    pub role: Role,
    /// The email address, if known.
    pub email: Option<&'a str>,
    /// The phone number, if known.
    pub phone: Option<&'a str>,
}

/// An account with its MFA summary (for lists).
#[derive(Debug, Clone)]
pub struct AccountSummary {
    /// The account.
    pub account: AccountRecord,
    /// Enabled devices.
    pub enabled_devices: u32,
}

/// Checks an email address's form (#15 contacts: shared by account creation and contact
/// changes). A phone number is checked and normalised by [`super::phone::normalize`].
pub fn check_contact(email: Option<&str>) -> Result<()> {
    if let Some(e) = email {
        let ok = e.len() <= 254
            && e.split_once('@').is_some_and(|(l, d)| {
                !l.is_empty()
                    && d.contains('.')
                    && !e.contains(|c: char| c.is_whitespace() || c.is_control())
            });
        if !ok {
            return Err(Error::InvalidInput(format!(
                "{e:?} is not an email address"
            )));
        }
    }
    Ok(())
}

impl Service {
    fn setup_link(&self, token: &str) -> String {
        format!("{}/setup?token={token}", self.policy.public_url)
    }

    /// Issues a one-time setup link (valid 1 hour) for an account.
    pub async fn issue_setup_link<R: RngCore + CryptoRng + Send>(
        &self,
        account: &AccountRecord,
        actor: &str,
        now: UnixTime,
        rng: &mut R,
        meta: &RequestMeta,
    ) -> Result<Zeroizing<String>> {
        let (token, hash) = new_token(rng);
        self.store
            .create_setup_token(&hash, &account.id, now.saturating_add(SETUP_LINK_SECS))
            .await?;
        self.audit(
            now,
            meta,
            Event::own(kind::SETUP_LINK, "success", &account.name).by(actor),
        )
        .await?;
        Ok(Zeroizing::new(self.setup_link(&token)))
    }

    /// On first start with an empty database: creates the root account and returns its setup
    /// link. Returns `None` when accounts exist (also when another node created root first).
    pub async fn ensure_root<R: RngCore + CryptoRng + Send>(
        &self,
        now: UnixTime,
        rng: &mut R,
    ) -> Result<Option<Zeroizing<String>>> {
        if self.store.count_accounts().await? > 0 {
            return Ok(None);
        }
        let root = AccountRecord {
            id: new_id(rng),
            name: ROOT.into(),
            role: Role::Admin,
            email: None,
            phone: None,
            password_hash: None,
            password_changed_at: None,
            created_at: now,
            mfa_failures: 0,
            mfa_last_failure_at: None,
            locked_at: None,
        };
        match self.store.create_account(&root).await {
            Ok(()) => {}
            Err(Error::Conflict(_)) => return Ok(None),
            Err(e) => return Err(e),
        }
        let meta = RequestMeta::default();
        self.audit(
            now,
            &meta,
            Event::own(kind::ACCOUNT_CREATE, "success", ROOT).by("system"),
        )
        .await?;
        self.issue_setup_link(&root, "system", now, rng, &meta)
            .await
            .map(Some)
    }

    /// A new setup link for root (`mamori-server admin setup-root`).
    pub async fn root_setup_link<R: RngCore + CryptoRng + Send>(
        &self,
        now: UnixTime,
        rng: &mut R,
    ) -> Result<Zeroizing<String>> {
        if let Some(link) = self.ensure_root(now, rng).await? {
            return Ok(link);
        }
        let root = self
            .store
            .account_by_name(ROOT)
            .await?
            .ok_or(Error::NotFound("root account"))?;
        self.issue_setup_link(&root, "admin-cli", now, rng, &RequestMeta::cli())
            .await
    }

    /// Consumes a setup token and sets the password. The password is checked and hashed first,
    /// so a refused password leaves the link usable. All the account's sessions and sync device
    /// tokens end.
    pub async fn complete_setup<R: RngCore + CryptoRng + Send>(
        &self,
        token: &str,
        new_password: Zeroizing<String>,
        now: UnixTime,
        rng: &mut R,
        meta: &RequestMeta,
    ) -> Result<AccountRecord> {
        let hash_key = token_hash(token);
        let invalid = |s: &'static str| async move {
            self.audit(
                now,
                meta,
                Event {
                    kind: kind::SETUP,
                    result: s,
                    account: None,
                    actor: None,
                    detail: None,
                },
            )
            .await?;
            Err::<AccountRecord, Error>(Error::InvalidSetupToken)
        };
        let Some(account_id) = self.store.setup_token_account(&hash_key, now).await? else {
            return invalid("invalid_token").await;
        };
        let Some(account) = self.store.account_by_id(&account_id).await? else {
            return invalid("invalid_token").await;
        };
        password::check_policy(&self.policy.password, &account.name, &new_password)?;
        let phc = password::hash_blocking(new_password, self.policy.password.clone(), rng).await?;
        // Consuming is the atomic step: of two concurrent uses only one gets here.
        if self
            .store
            .consume_setup_token(&hash_key, now)
            .await?
            .as_deref()
            != Some(&account.id)
        {
            return invalid("invalid_token").await;
        }
        self.store.set_password(&account.id, &phc, now).await?;
        self.store.delete_sessions_for_account(&account.id).await?;
        self.forget_forward_sessions(&account.id);
        self.audit(now, meta, Event::own(kind::SETUP, "success", &account.name))
            .await?;
        // A link for an account that had a password (`admin setup-root`) replaces it: like a
        // password change, that ends the sync devices too.
        self.sync_revoke_all(
            &account,
            &account.name,
            "password set with a setup link",
            now,
            meta,
        )
        .await?;
        Ok(account)
    }

    /// Changes the signed-in user's password. The current one is required, and a wrong one is
    /// treated like a wrong second factor: refused while the account is locked or throttled,
    /// counted in the account's failure counter, audited. A change ends every other session of
    /// the account and revokes every sync device token (whoever learnt the old password may
    /// have signed in or registered a device with it); the session that made the change stays.
    pub async fn change_password<R: RngCore + CryptoRng + Send>(
        &self,
        auth: &Authenticated,
        current: Zeroizing<String>,
        new_password: Zeroizing<String>,
        now: UnixTime,
        rng: &mut R,
        meta: &RequestMeta,
    ) -> Result<()> {
        let account = &auth.account;
        let name = account.name.as_str();
        let phc = account
            .password_hash
            .as_ref()
            .map(|h| h.expose().clone())
            .ok_or(Error::InvalidCredentials)?;
        let attempt = self
            .second_factor_guard(account, kind::PASSWORD_CHANGE, now, meta)
            .await?;
        if !password::verify_blocking(current, phc).await? {
            return Err(self
                .second_factor_failed(
                    attempt,
                    account,
                    Event::own(kind::PASSWORD_CHANGE, "failure", &account.name)
                        .detail("wrong current password"),
                    Error::InvalidCredentials,
                    Request::new(now, meta),
                )
                .await);
        }
        // The right password is no second factor: its attempt is given back rather than
        // clearing the count (else a session could reset it between rounds of code guesses).
        self.second_factor_void(attempt).await?;
        password::check_policy(&self.policy.password, name, &new_password)?;
        let phc = password::hash_blocking(new_password, self.policy.password.clone(), rng).await?;
        self.store.set_password(&account.id, &phc, now).await?;
        let ended = self
            .store
            .delete_other_sessions(&account.id, &auth.session.id)
            .await?;
        self.forget_forward_sessions(&account.id);
        let detail = format!("{ended} other sessions ended");
        self.audit(
            now,
            meta,
            Event::own(kind::PASSWORD_CHANGE, "success", name).detail(&detail),
        )
        .await?;
        self.sync_revoke_all(account, name, "password changed", now, meta)
            .await?;
        Ok(())
    }

    /// Creates a user (administrators) and returns it with its setup link.
    pub async fn create_user<R: RngCore + CryptoRng + Send>(
        &self,
        actor: &str,
        user: NewUser<'_>,
        req: Request<'_>,
        rng: &mut R,
    ) -> Result<(AccountRecord, Zeroizing<String>)> {
        let NewUser {
            name,
            role,
            email,
            phone,
        } = user;
        let Request { now, meta } = req;
        check_name("the user name", name)?;
        check_contact(email)?;
        // #15 contacts: stored in E.164 whatever form it was typed in.
        let phone = phone
            .map(|p| super::phone::normalize(p, self.policy.phone_region))
            .transpose()?;
        let account = AccountRecord {
            id: new_id(rng),
            name: name.into(),
            role,
            email: email.map(str::to_string),
            phone,
            password_hash: None,
            password_changed_at: None,
            created_at: now,
            mfa_failures: 0,
            mfa_last_failure_at: None,
            locked_at: None,
        };
        self.store.create_account(&account).await?;
        self.audit(
            now,
            meta,
            Event::own(kind::ACCOUNT_CREATE, "success", name)
                .by(actor)
                .detail(role.as_str()),
        )
        .await?;
        let link = self
            .issue_setup_link(&account, actor, now, rng, meta)
            .await?;
        Ok((account, link))
    }

    /// Every account with its enabled-device count.
    pub async fn list_users(&self) -> Result<Vec<AccountSummary>> {
        let mut out = Vec::new();
        for account in self.store.list_accounts().await? {
            let n = self
                .store
                .devices_for_account(&account.id)
                .await?
                .iter()
                .filter(|d| d.enabled_at.is_some())
                .count();
            out.push(AccountSummary {
                account,
                enabled_devices: u32::try_from(n).unwrap_or(u32::MAX),
            });
        }
        Ok(out)
    }

    /// Looks an account up by name.
    pub async fn account(&self, name: &str) -> Result<AccountRecord> {
        self.store
            .account_by_name(name)
            .await?
            .ok_or(Error::NotFound("user"))
    }

    /// Removes all of a user's MFA devices, unlocks the account, ends its sessions and revokes
    /// its sync device tokens (administrators; for a user who lost every device). Every reset
    /// path goes through here: the API's administrator reset, `admin reset-mfa` and
    /// `admin recover-root`.
    pub async fn reset_mfa(
        &self,
        actor: &str,
        user: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<u64> {
        let account = self.account(user).await?;
        let removed = self.store.reset_mfa(&account.id).await?;
        self.store.delete_sessions_for_account(&account.id).await?;
        self.forget_forward_sessions(&account.id);
        self.sync_revoke_all(&account, actor, "MFA reset", now, meta)
            .await?;
        let detail = format!("{removed} devices removed");
        self.audit(
            now,
            meta,
            Event::own(kind::MFA_RESET, "success", user)
                .by(actor)
                .detail(&detail),
        )
        .await?;
        Ok(removed)
    }

    /// The alerts of the whole installation.
    pub async fn all_alerts(&self) -> Result<Vec<Alert>> {
        let mut out = Vec::new();
        for s in self.list_users().await? {
            let codes = self.unused_recovery_codes(&s.account).await?;
            out.extend(alerts_for(&s.account, s.enabled_devices as usize, codes));
        }
        // #15 contacts
        out.extend(self.root_contacts_alert().await?);
        Ok(out)
    }

    /// #15 contacts: `root_without_verified_contacts` while root lacks a verified email
    /// address or phone number (alternative-factor recovery needs both), as AWS's console
    /// asks root for contact details.
    pub async fn root_contacts_alert(&self) -> Result<Option<Alert>> {
        let Some(root) = self.store.account_by_name(ROOT).await? else {
            return Ok(None);
        };
        if self.contacts(&root).await?.both_verified() {
            return Ok(None);
        }
        Ok(Some(Alert {
            kind: "root_without_verified_contacts",
            user: root.name,
            message: "the root user has no verified email address and phone number, so it cannot \
                      recover with alternative factors if its MFA device is lost: add them in the \
                      console (My security credentials, contact details) or with \
                      `mamori-server admin set-contacts root --email ADDRESS --phone NUMBER`"
                .into(),
        }))
    }

    /// The alerts of one account.
    pub async fn account_alerts(&self, auth: &Authenticated) -> Result<Vec<Alert>> {
        let codes = self.unused_recovery_codes(&auth.account).await?;
        Ok(alerts_for(
            &auth.account,
            auth.enabled_devices as usize,
            codes,
        ))
    }

    /// How many of the account's recovery codes are unused.
    pub async fn unused_recovery_codes(&self, account: &AccountRecord) -> Result<u32> {
        let n = self
            .store
            .recovery_codes(&account.id)
            .await?
            .iter()
            .filter(|c| c.used_at.is_none())
            .count();
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Enabled devices of an account.
    pub async fn enabled_devices(&self, account: &AccountRecord) -> Result<Vec<DeviceRecord>> {
        Ok(self
            .store
            .devices_for_account(&account.id)
            .await?
            .into_iter()
            .filter(|d| d.enabled_at.is_some())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_single_device_alert_follows_the_reviews_lockout_rule() {
        let account = AccountRecord {
            id: "a".into(),
            name: "alice".into(),
            role: crate::store::Role::User,
            email: None,
            phone: None,
            password_hash: None,
            password_changed_at: None,
            created_at: 0,
            mfa_failures: 0,
            mfa_last_failure_at: None,
            locked_at: None,
        };
        for devices in 0..3 {
            for codes in [0, 1, 10] {
                let alerted = alerts_for(&account, devices, codes)
                    .iter()
                    .any(|a| a.kind == "single_mfa_device");
                assert_eq!(
                    alerted,
                    mamori_review::deployment::single_device_lockout(devices, codes),
                    "{devices} devices, {codes} codes"
                );
            }
        }
        assert!(alerts_for(&account, 1, 0)
            .iter()
            .any(|a| a.kind == "single_mfa_device"));
        assert!(alerts_for(&account, 1, 3).is_empty());
    }

    #[test]
    fn contacts_are_checked() {
        assert!(check_contact(Some("a@example.com")).is_ok());
        assert!(check_contact(Some("nope")).is_err());
        assert!(check_contact(Some("a\u{0}b@example.com")).is_err());
        assert!(check_contact(None).is_ok());
    }
}

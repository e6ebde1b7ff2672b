//! The security review of this deployment: gathers plain facts from the store and the policy
//! and hands them to `mamori_review::deployment`, where every check lives and is tested.

use mamori_review::deployment::{
    self, AccountFacts, AppKeyFacts, Contact, DeploymentFacts, DeviceKind as ReviewKind,
    OidcClientFacts, SettingsFacts,
};
use mamori_review::Review;

use crate::clock::UnixTime;
use crate::config::RequireMfa;
use crate::error::Result;
use crate::store::DeviceKind;

use super::audit::kind;
use super::{Service, ROOT};

/// A contact detail's state for the review: missing, given, or proven with a code.
fn contact(value: Option<&String>, verified: bool) -> Contact {
    match value.filter(|v| !v.trim().is_empty()) {
        None => Contact::Missing,
        Some(_) if verified => Contact::Verified,
        Some(_) => Contact::Unverified,
    }
}

impl Service {
    /// Runs every deployment check as of `now`.
    pub async fn security_review(&self, now: UnixTime) -> Result<Review> {
        let accounts = self.store.list_accounts().await?;
        let signed_in = self
            .store
            .latest_success_by_account(kind::SIGN_IN_PASSWORD)
            .await?;
        let validations = self.store.latest_by_actor(kind::VALIDATE).await?;
        let mut account_facts = Vec::with_capacity(accounts.len());
        for a in &accounts {
            let devices = self
                .store
                .devices_for_account(&a.id)
                .await?
                .iter()
                .filter(|d| d.enabled_at.is_some())
                .map(|d| match d.kind {
                    DeviceKind::Virtual => ReviewKind::Virtual,
                    DeviceKind::SecurityKey => ReviewKind::SecurityKey,
                    DeviceKind::HardwareOtp => ReviewKind::HardwareToken,
                })
                .collect();
            let recovery_codes = self
                .store
                .recovery_codes(&a.id)
                .await?
                .iter()
                .filter(|c| c.used_at.is_none())
                .count();
            let contacts = self.contacts(a).await?;
            let (email_verified, phone_verified) =
                (contacts.email.verified, contacts.phone.verified);
            account_facts.push(AccountFacts {
                name: a.name.clone(),
                is_root: a.name == ROOT,
                has_password: a.password_hash.is_some(),
                devices,
                recovery_codes: u32::try_from(recovery_codes).unwrap_or(u32::MAX),
                email: contact(a.email.as_ref(), email_verified),
                phone: contact(a.phone.as_ref(), phone_verified),
                created_at: a.created_at,
                last_sign_in: signed_in.get(&a.name).copied(),
            });
        }
        let app_keys = self
            .store
            .list_app_keys()
            .await?
            .into_iter()
            .map(|k| AppKeyFacts {
                last_used: validations.get(&format!("app:{}", k.name)).copied(),
                name: k.name,
                created_at: k.created_at,
                revoked: k.revoked_at.is_some(),
            })
            .collect();
        // The root account is created on the first start of an empty database.
        let first_start = accounts.iter().map(|a| a.created_at).min().unwrap_or(now);
        let p = &self.policy;
        let settings = SettingsFacts {
            password_min_length: u32::try_from(p.password.min_length).unwrap_or(u32::MAX),
            require_mfa: match p.require_mfa {
                RequireMfa::Root => deployment::RequireMfa::Root,
                RequireMfa::All => deployment::RequireMfa::All,
                RequireMfa::None => deployment::RequireMfa::None,
            },
            public_url: p.public_url.clone(),
            // Cookies get `Secure` exactly when the public URL is https (see `http::AppState`).
            secure_cookies: p.public_url.starts_with("https://"),
            phone_gateway: p.phone_gateway.clone(),
            // What is actually wired, not what the configuration hoped for.
            email_delivery: self.notifier.enabled(),
            alternative_factor_recovery: p.alternative_factors
                != crate::config::AlternativeFactors::Off,
            audit_retention_days: p.audit_retention_days,
            first_start,
            oldest_audit_event: self.store.oldest_audit_event().await?,
            tls_certificate_expiry: self
                .served_certificate
                .as_ref()
                .map(|e| e.load(std::sync::atomic::Ordering::Relaxed))
                // 0: no certificate served yet (ACME before its first), or unreadable.
                .filter(|t| *t != 0),
            forward_auth: self.forward_review_facts(),
        };
        // #17: the clients as stored (not as registration would have accepted them today).
        let oidc_clients = self
            .store
            .list_oidc_clients()
            .await?
            .into_iter()
            .map(|c| OidcClientFacts {
                one_factor: c.require_factor == super::oidc::RequireFactor::OneFactor.as_str(),
                name: c.name,
                redirect_uris: c.redirect_uris,
                post_logout_redirect_uris: c.post_logout_redirect_uris,
            })
            .collect();
        Ok(deployment::review(
            &DeploymentFacts {
                accounts: account_facts,
                app_keys,
                settings,
                oidc_clients,
            },
            now,
        ))
    }
}

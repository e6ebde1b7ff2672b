//! The waiting period of alternative-factor recovery (docs/recovery.md, "Waiting period";
//! issue #15, "Recovery an attacker cannot rush").
//!
//! Email + phone is what the user has after losing a device, and also what a SIM-swapper with a
//! phished mailbox has. So when the account still has other working factors, proving them does
//! not grant the recovery session at once: it starts a **pending recovery** that becomes ready
//! after `[recovery] waiting_period_hours`, and notices with a one-click cancel go to every
//! channel (email, phone, the authenticator's sync devices). The owner, who still has one of the
//! other factors, cancels it by the link, by `mamori sync cancel-recovery`, or simply by signing
//! in with a remaining factor.
//!
//! ```text
//!  email + phone codes right
//!     │ no other working factor, or waiting period 0 ──────────────▶ recovery session now
//!     │ other factors, no pending recovery ──▶ pending (ready_at), notices with cancel
//!     │ pending, before ready_at ────────────▶ "not ready yet"
//!     │ pending, after ready_at ─────────────▶ completed (one conditional update) → session
//!  cancel link / sync device / sign-in with an existing factor ──▶ cancelled (same kind of
//!  update, so a cancel and a completion cannot both win)
//! ```
//!
//! The state is in the database (`recovery_pending`, migration 0009), so every node agrees.

use rand::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::clock::UnixTime;
use crate::config::MailLanguage;
use crate::error::Result;
use crate::redacted::Redacted;
use crate::store::recovery_pending::PendingRecoveryRecord;
use crate::store::{AccountRecord, AuditFilter};

use super::audit::Event;
use super::notify::utc;
use super::transport::{Email, PhoneMessage};
use super::{new_id, new_token, token_hash, RequestMeta, Service};

/// Audit kinds of this module (defined with every other kind in [`super::audit::kind`], so
/// that modules which refer to another's kinds need not import each other).
pub use super::audit::kind::recovery_wait as kind;

/// Why the waiting period applies to an account: the other working factors it still has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OtherFactors {
    /// Enabled MFA devices and security keys (one of them is presumably the lost one).
    pub enabled_devices: usize,
    /// Unused recovery codes.
    pub unused_recovery_codes: usize,
    /// Unrevoked sync devices of the authenticator.
    pub sync_devices: usize,
}

impl OtherFactors {
    /// The definition (docs/recovery.md): more than one enabled device, or any unused recovery
    /// code, or any active sync device. An account whose single device is lost and that has
    /// nothing else recovers at once.
    pub fn any(&self) -> bool {
        self.enabled_devices > 1 || self.unused_recovery_codes > 0 || self.sync_devices > 0
    }
}

/// What a verified alternative-factor proof leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Grant the recovery session now.
    Grant,
    /// A pending recovery was started now; ready at this time.
    Started {
        /// From when a second proof completes it.
        ready_at: UnixTime,
    },
    /// A pending recovery exists and is not ready yet.
    NotReady {
        /// From when a second proof completes it.
        ready_at: UnixTime,
    },
}

/// What a cancel token refers to (for the confirmation page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelView {
    /// A pending recovery of this account, ready at this time.
    Pending {
        /// The account's name.
        account: String,
        /// Ready time.
        ready_at: UnixTime,
    },
    /// Unknown, used, completed or already cancelled: the link does nothing any more.
    Invalid,
}

/// The notices of this module, to email and phone.
enum Notice<'a> {
    Started {
        ready_at: UnixTime,
        cancel_url: &'a str,
    },
    Granted,
    Completed {
        added: &'a str,
        removed: &'a [String],
    },
}

impl Notice<'_> {
    fn subject(&self, lang: MailLanguage, service: &str) -> String {
        match (self, lang) {
            (Notice::Started { .. }, MailLanguage::En) => {
                format!("[{service}] Security notice: account recovery started (cancel it if this was not you)")
            }
            (Notice::Started { .. }, MailLanguage::Ja) => {
                format!("[{service}] セキュリティのお知らせ: アカウントの回復が開始されました (心当たりがなければ取り消してください)")
            }
            (Notice::Granted, MailLanguage::En) => {
                format!("[{service}] Security notice: a recovery session was granted")
            }
            (Notice::Granted, MailLanguage::Ja) => {
                format!("[{service}] セキュリティのお知らせ: 回復セッションが許可されました")
            }
            // The subjects of the notice this one replaced (`NoticeKind::RecoverySignInCompleted`).
            (Notice::Completed { .. }, MailLanguage::En) => format!(
                "[{service}] Security notice: a sign-in with alternative factors was completed"
            ),
            (Notice::Completed { .. }, MailLanguage::Ja) => {
                format!(
                    "[{service}] セキュリティのお知らせ: 代替要素によるサインインが完了しました"
                )
            }
        }
    }

    /// The sentence of the email and of the phone text.
    fn sentence(&self, lang: MailLanguage) -> String {
        match (self, lang) {
            (Notice::Started { ready_at, cancel_url }, MailLanguage::En) => format!(
                "Someone proved your email address and phone number to recover your account \
                 without your MFA device. Because your account still has other sign-in factors, \
                 the recovery waits until {}. If this was NOT you, cancel it now: {cancel_url} \
                 (or sign in with your MFA device, a security key or a recovery code, which also \
                 cancels it).",
                utc(*ready_at)
            ),
            (Notice::Started { ready_at, cancel_url }, MailLanguage::Ja) => format!(
                "誰かがあなたのメールアドレスと電話番号を確認し、MFA デバイスなしでアカウントを回復しようと\
                 しています。アカウントにはまだ他のサインイン要素があるため、回復は {} まで待機します。\
                 心当たりがない場合は、今すぐ取り消してください: {cancel_url} (MFA デバイス、セキュリティ\
                 キー、リカバリーコードでサインインしても取り消されます)。",
                utc(*ready_at)
            ),
            (Notice::Granted, MailLanguage::En) => {
                "A recovery session (sign-in with email and phone codes, without an MFA device) \
                 was granted on your account. Every other session and every sync device of your \
                 account was signed out. Review your remaining sign-in factors."
                    .into()
            }
            (Notice::Granted, MailLanguage::Ja) => {
                "アカウントで回復セッション (MFA デバイスなしでメールと電話のコードによるサインイン) が\
                 許可されました。アカウントの他のセッションと同期デバイスはすべてサインアウトされました。\
                 残りのサインイン要素を確認してください。"
                    .into()
            }
            (Notice::Completed { added, removed }, MailLanguage::En) => {
                let removed = if removed.is_empty() {
                    "none".to_string()
                } else {
                    removed.join(", ")
                };
                format!(
                    "A sign-in with alternative factors was completed: the MFA device \"{added}\" \
                     was added, and every other session of your account was signed out. MFA \
                     devices removed in the recovery session: {removed}. Review your remaining \
                     sign-in factors (My security credentials)."
                )
            }
            (Notice::Completed { added, removed }, MailLanguage::Ja) => {
                let removed = if removed.is_empty() {
                    "なし".to_string()
                } else {
                    removed.join("、")
                };
                format!(
                    "代替要素によるサインインが完了しました。MFA デバイス「{added}」が追加され、\
                     アカウントの他のセッションはすべてサインアウトされました。回復セッションで削除\
                     された MFA デバイス: {removed}。残りのサインイン要素を確認してください \
                     (セキュリティ認証情報)。"
                )
            }
        }
    }
}

fn body(
    lang: MailLanguage,
    account: &str,
    service: &str,
    sentence: &str,
    at: UnixTime,
    client_addr: Option<&str>,
) -> String {
    match lang {
        MailLanguage::En => format!(
            "Hello {account},\n\n{sentence}\n\nTime: {}\nClient address: {}\nAccount: \
             {account}\nService: {service}\n\nIf this was NOT you, tell your administrator at \
             once.\n",
            utc(at),
            client_addr.unwrap_or("(server host)"),
        ),
        MailLanguage::Ja => format!(
            "{account} さん\n\n{sentence}\n\n日時: {}\nクライアントのアドレス: {}\nアカウント: \
             {account}\nサービス: {service}\n\nご自身の操作でない場合は、すぐに管理者に知らせてください。\n",
            utc(at),
            client_addr.unwrap_or("(サーバーホスト)"),
        ),
    }
}

impl Service {
    /// The other working factors the account still has (see [`OtherFactors::any`]).
    pub async fn other_factors(&self, account: &AccountRecord) -> Result<OtherFactors> {
        let enabled_devices = self
            .store
            .devices_for_account(&account.id)
            .await?
            .iter()
            .filter(|d| d.enabled_at.is_some())
            .count();
        let unused_recovery_codes = self
            .store
            .recovery_codes(&account.id)
            .await?
            .iter()
            .filter(|c| c.used_at.is_none())
            .count();
        let sync_devices = self
            .store
            .sync_devices(&account.id)
            .await?
            .iter()
            .filter(|d| d.revoked_at.is_none())
            .count();
        Ok(OtherFactors {
            enabled_devices,
            unused_recovery_codes,
            sync_devices,
        })
    }

    /// Decides what a verified alternative-factor proof leads to, starting a pending recovery
    /// (with its notices) when the waiting period applies and none is pending.
    pub(super) async fn recovery_gate<R: RngCore + CryptoRng + Send>(
        &self,
        account: &AccountRecord,
        now: UnixTime,
        rng: &mut R,
        meta: &RequestMeta,
    ) -> Result<Gate> {
        let name = account.name.as_str();
        if let Some(p) = self.store.pending_recovery(&account.id).await? {
            if now < p.ready_at {
                let detail = format!("ready at {}", p.ready_at);
                self.audit(
                    now,
                    meta,
                    Event::own(kind::PENDING, "not_ready", name).detail(&detail),
                )
                .await?;
                return Ok(Gate::NotReady {
                    ready_at: p.ready_at,
                });
            }
            // Of a completion and a cancel racing on two nodes, one conditional update wins.
            if self.store.complete_pending_recovery(&p.id, now).await? {
                return Ok(Gate::Grant);
            }
            return Err(crate::Error::InvalidChallenge);
        }
        let wait = self.policy.recovery_wait_secs;
        if wait <= 0 || !self.other_factors(account).await?.any() {
            return Ok(Gate::Grant);
        }
        let ready_at = now.saturating_add(wait);
        let (token, hash) = new_token(rng);
        let record = PendingRecoveryRecord {
            id: new_id(rng),
            account_id: account.id.clone(),
            created_at: now,
            ready_at,
            cancel_hash: Redacted::new(hash),
            state: "pending".into(),
            ended_at: None,
        };
        if !self.store.create_pending_recovery(&record).await? {
            // Another node started one a moment ago: that one's notices went out.
            let ready_at = self
                .store
                .pending_recovery(&account.id)
                .await?
                .map_or(ready_at, |p| p.ready_at);
            return Ok(Gate::NotReady { ready_at });
        }
        let detail = format!("ready at {ready_at}");
        self.audit(
            now,
            meta,
            Event::own(kind::PENDING, "success", name).detail(&detail),
        )
        .await?;
        let cancel_url = format!(
            "{}/recovery/cancel?token={}",
            self.policy.public_url.trim_end_matches('/'),
            token.as_str()
        );
        let lang = self.language_for(account).await;
        self.recovery_notice(
            account,
            lang,
            &Notice::Started {
                ready_at,
                cancel_url: &cancel_url,
            },
            now,
            rng,
            meta,
        );
        Ok(Gate::Started { ready_at })
    }

    /// The recovery session is about to be granted: every session and every sync device token
    /// of the account is revoked (audited), and every channel is told.
    pub(super) async fn recovery_granted<R: RngCore + CryptoRng + Send>(
        &self,
        account: &AccountRecord,
        now: UnixTime,
        rng: &mut R,
        meta: &RequestMeta,
    ) -> Result<()> {
        let sessions = self.store.delete_sessions_for_account(&account.id).await?;
        self.forget_forward_sessions(&account.id);
        let syncs = self
            .sync_revoke_all(
                account,
                &account.name,
                "recovery session granted",
                now,
                meta,
            )
            .await?;
        let detail = format!("sessions revoked: {sessions}, sync devices revoked: {syncs}");
        self.audit(
            now,
            meta,
            Event::own(kind::GRANTED, "success", &account.name).detail(&detail),
        )
        .await?;
        let lang = self.language_for(account).await;
        self.recovery_notice(account, lang, &Notice::Granted, now, rng, meta);
        Ok(())
    }

    /// Tells every channel that the recovery completed, with the device added and the devices
    /// removed during the recovery session (which began at `since`).
    pub(super) async fn recovery_completed_notice<R: RngCore + CryptoRng + Send>(
        &self,
        account: &AccountRecord,
        added: &str,
        since: UnixTime,
        now: UnixTime,
        rng: &mut R,
        meta: &RequestMeta,
    ) -> Result<()> {
        let removed: Vec<String> = self
            .store
            .list_audit(&AuditFilter {
                account: Some(account.name.clone()),
                kind: Some(super::audit::kind::MFA_DELETE.into()),
                after: None,
                limit: 1000,
            })
            .await?
            .into_iter()
            .filter(|e| e.event.at >= since && e.event.result == "success")
            .filter_map(|e| e.event.detail)
            .collect();
        let lang = self.language_for(account).await;
        self.recovery_notice(
            account,
            lang,
            &Notice::Completed {
                added,
                removed: &removed,
            },
            now,
            rng,
            meta,
        );
        Ok(())
    }

    /// Sends a notice of this module by email and by phone (whichever the account has and the
    /// server can send), in the background.
    fn recovery_notice<R: RngCore + CryptoRng + Send>(
        &self,
        account: &AccountRecord,
        lang: MailLanguage,
        notice: &Notice<'_>,
        now: UnixTime,
        rng: &mut R,
        meta: &RequestMeta,
    ) {
        let service = self.policy.service_name.clone();
        let sentence = notice.sentence(lang);
        if let (Some(to), true) = (account.email.clone(), self.notifier.enabled()) {
            let email = Email {
                to,
                subject: notice.subject(lang, &service),
                body: Zeroizing::new(body(
                    lang,
                    &account.name,
                    &service,
                    &sentence,
                    now,
                    meta.client_addr.as_deref(),
                )),
            };
            self.send_in_background(&account.name, email, now, meta);
        }
        if let (Some(to), true) = (account.phone.clone(), self.phone.enabled()) {
            let msg = PhoneMessage {
                id: new_id(rng),
                to,
                purpose: "recovery_notice",
                code: Zeroizing::new(String::new()),
                text: Zeroizing::new(format!("{service}: {sentence}")),
                service,
                timestamp: now,
                channel: super::delivery::PhoneChannel::Sms,
            };
            self.send_phone_notice_in_background(&account.name, msg, now, meta);
        }
    }

    /// What a cancel token refers to; changes nothing (the confirmation page's GET).
    pub async fn recovery_cancel_view(&self, token: &str) -> Result<CancelView> {
        let Some(p) = self.pending_by_token(token).await? else {
            return Ok(CancelView::Invalid);
        };
        if p.state != "pending" {
            return Ok(CancelView::Invalid);
        }
        let account = self
            .store
            .account_by_id(&p.account_id)
            .await?
            .map(|a| a.name)
            .unwrap_or_default();
        Ok(CancelView::Pending {
            account,
            ready_at: p.ready_at,
        })
    }

    async fn pending_by_token(&self, token: &str) -> Result<Option<PendingRecoveryRecord>> {
        let hash = token_hash(token);
        let found = self.store.recovery_by_cancel_hash(&hash).await?;
        // The lookup is by hash; the comparison is repeated in constant time all the same.
        Ok(found.filter(|p| bool::from(p.cancel_hash.expose().ct_eq(&hash))))
    }

    /// Cancels the pending recovery of a cancel link's token (single use). False when the
    /// token is unknown, used, or its recovery is no longer pending.
    pub async fn cancel_recovery_by_token(
        &self,
        token: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<bool> {
        if self.pending_by_token(token).await?.is_none() {
            self.audit(
                now,
                meta,
                Event {
                    kind: kind::CANCEL,
                    result: "refused_token",
                    account: None,
                    actor: None,
                    detail: None,
                },
            )
            .await?;
            return Ok(false);
        }
        let Some(p) = self
            .store
            .cancel_recovery_by_hash(&token_hash(token), now)
            .await?
        else {
            return Ok(false);
        };
        if let Some(a) = self.store.account_by_id(&p.account_id).await? {
            self.audit(
                now,
                meta,
                Event::own(kind::CANCEL, "success", &a.name).detail("cancel link"),
            )
            .await?;
        }
        Ok(true)
    }

    /// Cancels the account's pending recovery, if any (a sync device's command, or a sign-in
    /// with an existing factor); audited with `why`. True when there was one.
    pub async fn cancel_pending_recovery(
        &self,
        account: &AccountRecord,
        why: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<bool> {
        if !self.store.cancel_pending_recovery(&account.id, now).await? {
            return Ok(false);
        }
        self.audit(
            now,
            meta,
            Event::own(kind::CANCEL, "success", &account.name).detail(why),
        )
        .await?;
        Ok(true)
    }

    /// The ready time of the account's pending recovery, if one is pending (the sync API's
    /// warning flag).
    pub async fn pending_recovery_ready_at(&self, account_id: &str) -> Result<Option<UnixTime>> {
        Ok(self
            .store
            .pending_recovery(account_id)
            .await?
            .map(|p| p.ready_at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_definition_of_other_factors() {
        let none = OtherFactors::default();
        assert!(!none.any());
        let one_device = OtherFactors {
            enabled_devices: 1,
            ..none
        };
        assert!(
            !one_device.any(),
            "the single lost device is not another factor"
        );
        assert!(OtherFactors {
            enabled_devices: 2,
            ..none
        }
        .any());
        assert!(OtherFactors {
            unused_recovery_codes: 1,
            ..one_device
        }
        .any());
        assert!(OtherFactors {
            sync_devices: 1,
            ..one_device
        }
        .any());
    }

    #[test]
    fn notices_carry_the_cancel_link_and_the_removed_devices() {
        let n = Notice::Started {
            ready_at: 1_700_000_000,
            cancel_url: "https://m.example/recovery/cancel?token=abc",
        };
        for lang in [MailLanguage::En, MailLanguage::Ja] {
            let s = n.sentence(lang);
            assert!(s.contains("token=abc"), "{s}");
            assert!(s.contains("2023-11-14 22:13:20 UTC"), "{s}");
        }
        let removed = vec!["old-phone".to_string()];
        let c = Notice::Completed {
            added: "new-phone",
            removed: &removed,
        };
        assert!(c.sentence(MailLanguage::En).contains("old-phone"));
        assert!(c.sentence(MailLanguage::Ja).contains("old-phone"));
    }
}

//! Verified contact details (docs/recovery.md): an email address or phone number counts for
//! recovery only after the user proved it with a code sent to it.
//!
//! Codes are 6 random digits, valid [`CODE_SECS`] (10 minutes), single use (spent by one
//! conditional update), at most [`MAX_ATTEMPTS`] attempts each (counted by one conditional
//! update, so parallel guesses cannot exceed it), and stored only as SHA-256 of the row id and
//! the code. The proof is bound to the value: changing the address or number makes it
//! unverified again.
//!
//! Limits (each code costs an email or an SMS, and each guess is a guess at a code):
//!
//! - at most [`MAX_SENDS`] codes per channel per account in [`WINDOW_SECS`] (an hour); beyond,
//!   nothing is sent and the answer is `RateLimited` with the time until the oldest send leaves
//!   the window (counted from the audit log, like recovery sign-in starts);
//! - a new code replaces the previous one but keeps its attempts while the budget that began
//!   with the first of them lasts ([`WINDOW_SECS`]): asking again gives no fresh guesses, and
//!   once the budget is used up no code is sent until it ends;
//! - a wrong code counts in the account's second-factor failure counter (the same delays and
//!   lock as a wrong MFA code), and a throttled or locked account may not try at all.

use rand::{CryptoRng, Rng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::clock::UnixTime;
use crate::error::{Error, Result};
use crate::redacted::Redacted;
use crate::store::recovery::VerificationCodeRecord;
use crate::store::AccountRecord;

use super::audit::Event;
use super::delivery::CodeMessage;
use super::factor_changes::FactorChange;
use super::notify::NoticeKind;
use super::session::Authenticated;
use super::transport::{Email, PhoneMessage};
use super::{new_id, Request, RequestMeta, Service};

/// Codes expire after 10 minutes.
pub const CODE_SECS: i64 = 10 * 60;
/// Attempts per code, and per run of codes that replace each other within [`WINDOW_SECS`].
pub const MAX_ATTEMPTS: i64 = 5;
/// Codes sent per channel per account within [`WINDOW_SECS`].
pub const MAX_SENDS: i64 = 5;
/// The window of [`MAX_SENDS`] and of the attempt budget: one hour.
pub const WINDOW_SECS: i64 = 60 * 60;

/// Audit kinds of this module (defined with every other kind in [`super::audit::kind`], so
/// that modules which refer to another's kinds need not import each other).
pub use super::audit::kind::contacts as kind;

/// A contact channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Email address.
    Email,
    /// Phone number.
    Phone,
}

impl Channel {
    /// Stored and wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Phone => "phone",
        }
    }

    /// Parses the wire form.
    pub fn parse(s: &str) -> Result<Channel> {
        match s {
            "email" => Ok(Channel::Email),
            "phone" => Ok(Channel::Phone),
            _ => Err(Error::NotFound("contact channel")),
        }
    }

    fn purpose(self) -> &'static str {
        match self {
            Channel::Email => "contact.email",
            Channel::Phone => "contact.phone",
        }
    }

    /// #15 contacts: the purpose of a code sent to a pending new value.
    fn change_purpose(self) -> &'static str {
        match self {
            Channel::Email => "contact.email.change",
            Channel::Phone => "contact.phone.change",
        }
    }

    fn value(self, a: &AccountRecord) -> Option<&str> {
        match self {
            Channel::Email => a.email.as_deref(),
            Channel::Phone => a.phone.as_deref(),
        }
    }
}

/// One contact detail and whether it is proven.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// The value on the account.
    pub value: Option<String>,
    /// Whether exactly this value was proven.
    pub verified: bool,
    /// #15 contacts: a new value waiting for its code (replaces `value` once confirmed).
    pub pending: Option<String>,
}

/// The account's contact details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contacts {
    /// Email.
    pub email: Contact,
    /// Phone.
    pub phone: Contact,
}

impl Contacts {
    /// Both proven: the default recovery policy's condition.
    pub fn both_verified(&self) -> bool {
        self.email.verified && self.phone.verified
    }
}

/// #15 contacts: what [`Service::start_contact_change`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactChangeOutcome {
    /// The account's own change: a code was sent to the new value, which is pending.
    CodeSent,
    /// An administrator's change: the new value is on the account, unverified.
    SetUnverified,
}

/// Seconds from `now` until `until`, at least 1 (a `Retry-After`).
fn wait_until(until: UnixTime, now: UnixTime) -> u64 {
    u64::try_from(until.saturating_sub(now)).unwrap_or(1).max(1)
}

fn code_hash(id: &str, code: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(id.as_bytes());
    h.update(b":");
    h.update(code.as_bytes());
    h.finalize().to_vec()
}

impl Service {
    /// The account's contact details and which are proven.
    pub async fn contacts(&self, account: &AccountRecord) -> Result<Contacts> {
        self.contacts_with_pending(account, None).await
    }

    /// #15 contacts: the account's contact details with the changes pending at `now`.
    pub async fn contacts_at(&self, account: &AccountRecord, now: UnixTime) -> Result<Contacts> {
        self.contacts_with_pending(account, Some(now)).await
    }

    async fn contacts_with_pending(
        &self,
        account: &AccountRecord,
        now: Option<UnixTime>,
    ) -> Result<Contacts> {
        let proven = self.store.verified_contacts(&account.id).await?;
        let mut out = Vec::new();
        for c in [Channel::Email, Channel::Phone] {
            let value = c.value(account).map(str::to_string);
            let verified = value
                .as_deref()
                .is_some_and(|v| proven.iter().any(|(ch, pv)| ch == c.as_str() && pv == v));
            let pending = match now {
                Some(now) => self
                    .store
                    .live_verification_code(&account.id, c.change_purpose(), now)
                    .await?
                    .map(|r| r.target),
                None => None,
            };
            out.push(Contact {
                value,
                verified,
                pending,
            });
        }
        let phone = out
            .pop()
            .ok_or_else(|| Error::Internal("contacts".into()))?;
        let email = out
            .pop()
            .ok_or_else(|| Error::Internal("contacts".into()))?;
        Ok(Contacts { email, phone })
    }

    /// #15 contacts: `input` checked and in stored form for `channel` (an email address as
    /// typed, a phone number in E.164), or one clear error.
    pub fn normalize_contact(&self, channel: Channel, input: &str) -> Result<String> {
        let input = input.trim();
        match channel {
            Channel::Email => {
                super::accounts::check_contact(Some(input))?;
                Ok(input.to_string())
            }
            Channel::Phone => super::phone::normalize(input, self.policy.phone_region),
        }
    }

    /// #15 contacts: sets `channel` of the session's own account (`user` `None`) or, for an
    /// administrator, of the named account, through the factor-change rule
    /// ([`FactorChange::SetContact`]).
    ///
    /// For the account itself the new value is held pending and a code is sent to it (the
    /// limits of [`Service::start_contact_verification`]); [`Service::confirm_contact`] with
    /// the right code replaces the old value. An administrator's value replaces the old one at
    /// once but unverified: only the user's proof makes it count for recovery. Either way the
    /// old address is told once the value changed.
    pub async fn start_contact_change<R: RngCore + CryptoRng + Send>(
        &self,
        auth: &Authenticated,
        user: Option<&str>,
        channel: Channel,
        input: &str,
        req: Request<'_>,
        rng: &mut R,
    ) -> Result<ContactChangeOutcome> {
        let Request { now, meta } = req;
        let target = self.factor_target(auth, user, now, meta).await?;
        let value = self.normalize_contact(channel, input)?;
        let allowed = self
            .authorize_factor_change(
                &auth.account,
                &auth.session,
                &target,
                FactorChange::SetContact,
                now,
                meta,
            )
            .await?;
        if let Some(admin) = allowed.admin() {
            let old = channel.value(&target).map(str::to_string);
            self.store
                .replace_contact(&target.id, channel.as_str(), Some(&value), None)
                .await?;
            self.audit(
                now,
                meta,
                Event::own(kind::CHANGE, "success", &target.name)
                    .by(admin)
                    .detail(channel.as_str()),
            )
            .await?;
            self.notify_contact_changed(&target, channel, old, false, now, meta)
                .await;
            return Ok(ContactChangeOutcome::SetUnverified);
        }
        self.send_contact_code(&target, channel, channel.change_purpose(), value, req, rng)
            .await?;
        self.audit(
            now,
            meta,
            Event::own(kind::CHANGE, "code_sent", &target.name).detail(channel.as_str()),
        )
        .await?;
        Ok(ContactChangeOutcome::CodeSent)
    }

    /// #15 contacts: removes `channel` from the session's own account or (administrators) the
    /// named one, through the factor-change rule ([`FactorChange::RemoveContact`]); audited,
    /// and the removed address is told.
    pub async fn remove_contact(
        &self,
        auth: &Authenticated,
        user: Option<&str>,
        channel: Channel,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<()> {
        let target = self.factor_target(auth, user, now, meta).await?;
        let allowed = self
            .authorize_factor_change(
                &auth.account,
                &auth.session,
                &target,
                FactorChange::RemoveContact,
                now,
                meta,
            )
            .await?;
        let Some(old) = channel.value(&target).map(str::to_string) else {
            return Err(Error::NotFound(match channel {
                Channel::Email => "email address",
                Channel::Phone => "phone number",
            }));
        };
        self.store
            .replace_contact(&target.id, channel.as_str(), None, None)
            .await?;
        let mut event = Event::own(kind::REMOVE, "success", &target.name).detail(channel.as_str());
        if let Some(admin) = allowed.admin() {
            event = event.by(admin);
        }
        self.audit(now, meta, event).await?;
        self.notify_contact_changed(&target, channel, Some(old), true, now, meta)
            .await;
        Ok(())
    }

    /// #15 contacts: the admin command line (trusted: it runs on the server host with the
    /// database and key file) sets contacts of any account, root included, without the
    /// factor-change rule; `verified` marks them proven. Audited with `admin-cli` as actor.
    pub async fn admin_set_contacts(
        &self,
        actor: &str,
        name: &str,
        email: Option<&str>,
        phone: Option<&str>,
        verified: bool,
        req: Request<'_>,
    ) -> Result<AccountRecord> {
        let Request { now, meta } = req;
        let account = self
            .store
            .account_by_name(name)
            .await?
            .ok_or(Error::NotFound("user"))?;
        if email.is_none() && phone.is_none() {
            return Err(Error::InvalidInput(
                "give --email ADDRESS and/or --phone NUMBER".into(),
            ));
        }
        // Both are checked before either is stored: a bad value changes nothing.
        let email = email
            .map(|e| self.normalize_contact(Channel::Email, e))
            .transpose()?;
        let phone = phone
            .map(|p| self.normalize_contact(Channel::Phone, p))
            .transpose()?;
        for (channel, value) in [(Channel::Email, email), (Channel::Phone, phone)] {
            let Some(value) = value else { continue };
            let old = channel.value(&account).map(str::to_string);
            self.store
                .replace_contact(
                    &account.id,
                    channel.as_str(),
                    Some(&value),
                    verified.then_some(now),
                )
                .await?;
            let detail = format!(
                "{}{}",
                channel.as_str(),
                if verified { " (verified)" } else { "" }
            );
            self.audit(
                now,
                meta,
                Event::own(kind::CHANGE, "success", &account.name)
                    .by(actor)
                    .detail(&detail),
            )
            .await?;
            if old.as_deref() != Some(value.as_str()) {
                self.notify_contact_changed(&account, channel, old, false, now, meta)
                    .await;
            }
        }
        self.store
            .account_by_name(name)
            .await?
            .ok_or(Error::NotFound("user"))
    }

    /// Tells the *old* address (email) or number (SMS) that `channel` changed or was removed:
    /// the one who controls it is the one who can react if it was not them. Never fails.
    async fn notify_contact_changed(
        &self,
        account: &AccountRecord,
        channel: Channel,
        old: Option<String>,
        removed: bool,
        now: UnixTime,
        meta: &RequestMeta,
    ) {
        let Some(old) = old else { return };
        let notice = NoticeKind::ContactChanged {
            channel: channel.as_str().to_string(),
            removed,
        };
        match channel {
            Channel::Email => {
                let mut to_old = account.clone();
                to_old.email = Some(old);
                self.notify_event(&to_old, notice, now, meta).await;
                return;
            }
            Channel::Phone => {
                // The email (if any) hears of it too, below the SMS.
                self.notify_event(account, notice.clone(), now, meta).await;
            }
        }
        if !self.phone.enabled() {
            return;
        }
        let lang = self.language_for(account).await;
        let service = self.policy.service_name.clone();
        let text = Zeroizing::new(format!(
            "{}: {}",
            service,
            notice.subject_in(lang, &service)
        ));
        let msg = PhoneMessage {
            id: new_id(&mut rand::rngs::OsRng),
            to: old,
            purpose: "contact_changed",
            code: Zeroizing::new(String::new()),
            text,
            service,
            timestamp: now,
            channel: super::delivery::PhoneChannel::Sms,
        };
        self.send_phone_notice_in_background(&account.name, msg, now, meta);
    }

    /// Sends a 6-digit code to the account's email address or phone number. Needs a full
    /// session; at most [`MAX_SENDS`] per channel per hour, and none while the attempt budget is
    /// used up (`RateLimited`, audited, nothing sent). The code is sent before this returns;
    /// `DeliveryFailed` when it could not be (the code is then spent and the send not counted).
    pub async fn start_contact_verification<R: RngCore + CryptoRng + Send>(
        &self,
        auth: &Authenticated,
        channel: Channel,
        now: UnixTime,
        rng: &mut R,
        meta: &RequestMeta,
    ) -> Result<()> {
        auth.require_full()?;
        let account = &auth.account;
        let to = channel
            .value(account)
            .ok_or_else(|| {
                Error::InvalidInput(format!(
                    "the account has no {} to verify",
                    if channel == Channel::Email {
                        "email address"
                    } else {
                        "phone number"
                    }
                ))
            })?
            .to_string();
        let req = Request::new(now, meta);
        self.send_contact_code(account, channel, channel.purpose(), to, req, rng)
            .await
    }

    /// Sends a code for `purpose` to `to` under the channel's limits (shared by proving the
    /// current value and by a change to a new one, so asking in turns gives no extra sends).
    async fn send_contact_code<R: RngCore + CryptoRng + Send>(
        &self,
        account: &AccountRecord,
        channel: Channel,
        purpose: &str,
        to: String,
        req: Request<'_>,
        rng: &mut R,
    ) -> Result<()> {
        let Request { now, meta } = req;
        let enabled = match channel {
            Channel::Email => self.notifier.enabled(),
            Channel::Phone => self.phone.enabled(),
        };
        if !enabled {
            return Err(Error::Forbidden(format!(
                "sending to a {} is not configured on this server",
                channel.as_str()
            )));
        }
        let name = account.name.as_str();
        let window_began = now.saturating_sub(WINDOW_SECS);
        let (sent, oldest) = self
            .store
            .count_audit_detail_since(
                name,
                kind::VERIFY_START,
                "success",
                channel.as_str(),
                window_began,
            )
            .await?;
        if sent >= MAX_SENDS {
            self.audit(
                now,
                meta,
                Event::own(kind::VERIFY_START, "refused_limit", name).detail(channel.as_str()),
            )
            .await?;
            return Err(Error::RateLimited {
                retry_after: wait_until(oldest.unwrap_or(now).saturating_add(WINDOW_SECS), now),
            });
        }
        let code = Zeroizing::new(format!("{:06}", rng.gen_range(0..1_000_000u32)));
        let id = new_id(rng);
        let stored = self
            .store
            .create_verification_code(
                &VerificationCodeRecord {
                    id: id.clone(),
                    account_id: account.id.clone(),
                    purpose: purpose.into(),
                    target: to.clone(),
                    code_hash: Redacted::new(code_hash(&id, &code)),
                    created_at: now,
                    expires_at: now.saturating_add(CODE_SECS),
                    attempts: 0,
                    used_at: None,
                    window_start: now,
                },
                window_began,
            )
            .await?;
        if stored.attempts >= MAX_ATTEMPTS {
            // The new row cannot be tried either, so the code is not sent.
            self.audit(
                now,
                meta,
                Event::own(kind::VERIFY_START, "refused_attempts", name).detail(channel.as_str()),
            )
            .await?;
            return Err(Error::RateLimited {
                retry_after: wait_until(stored.window_start.saturating_add(WINDOW_SECS), now),
            });
        }
        let service = self.policy.service_name.clone();
        let ja = self.language_for(account).await == crate::config::MailLanguage::Ja;
        let text = Zeroizing::new(if ja {
            format!(
                "{service}: 確認コードは {} です (10 分間有効)。{service} の担当者がこのコードを\
                 尋ねることはありません。",
                code.as_str()
            )
        } else {
            format!(
                "{service}: your verification code is {} (valid 10 minutes). Nobody from \
                 {service} will ask you for it.",
                code.as_str()
            )
        });
        let message = match channel {
            Channel::Email => {
                let email = if ja {
                    Email {
                        to: to.clone(),
                        subject: format!("[{service}] 確認コード"),
                        body: Zeroizing::new(format!(
                            "{} さん\n\n{}\n\n心当たりがない場合、誰かがあなたのパスワードを\
                             知っている可能性があります。パスワードを変更して管理者に知らせて\
                             ください。\n",
                            account.name,
                            text.as_str()
                        )),
                    }
                } else {
                    Email {
                        to: to.clone(),
                        subject: format!("[{service}] Your verification code"),
                        body: Zeroizing::new(format!(
                            "Hello {},\n\n{}\n\nIf you did not ask for it, someone may know \
                             your password: change it and tell your administrator.\n",
                            account.name,
                            text.as_str()
                        )),
                    }
                };
                CodeMessage::Email(email)
            }
            Channel::Phone => {
                let msg = PhoneMessage {
                    id: id.clone(),
                    to: to.clone(),
                    purpose: "contact_verification",
                    code: code.clone(),
                    text,
                    service,
                    timestamp: now,
                    channel: super::delivery::PhoneChannel::Sms,
                };
                CodeMessage::Phone(msg)
            }
        };
        // #15 delivery: a code that was not delivered is spent at once (nobody can use it) and
        // the send is not counted as one of the account's sends.
        self.deliver_code(
            &account.name,
            message,
            self.store.use_verification_code(&id, now),
            Some(
                Event::own(kind::VERIFY_START, "delivery_failed", &account.name)
                    .detail(channel.as_str()),
            ),
            req,
        )
        .await?;
        self.audit(
            now,
            meta,
            Event::own(kind::VERIFY_START, "success", &account.name).detail(channel.as_str()),
        )
        .await?;
        Ok(())
    }

    /// Checks a code sent by [`Service::start_contact_verification`]; on success the value it
    /// was sent to is proven. Wrong, expired, spent or exhausted codes give `InvalidCode`; a
    /// wrong code also counts in the account's failure counter, and a locked or throttled
    /// account is refused before any code is looked at.
    ///
    /// #15 contacts: when a change is pending ([`Service::start_contact_change`]), the code is
    /// checked against the change instead, and a right one replaces the old value with the new
    /// (proven), notifies the old address and is audited as [`kind::CHANGE`]. One endpoint
    /// confirms both, so a client needs to know only "a code was sent to this channel".
    pub async fn confirm_contact(
        &self,
        auth: &Authenticated,
        channel: Channel,
        code: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<()> {
        auth.require_full()?;
        let name = auth.account.name.as_str();
        let attempt = self
            .second_factor_guard(&auth.account, kind::VERIFY, now, meta)
            .await?;
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        let change = self
            .store
            .live_verification_code(&auth.account.id, channel.change_purpose(), now)
            .await?
            .is_some();
        let purpose = if change {
            channel.change_purpose()
        } else {
            channel.purpose()
        };
        let Some(c) = self
            .store
            .verification_attempt(&auth.account.id, purpose, now, MAX_ATTEMPTS)
            .await?
        else {
            // Nothing to check the code against: not a guess.
            self.second_factor_void(attempt).await?;
            self.audit(
                now,
                meta,
                Event::own(kind::VERIFY, "no_code", name).detail(channel.as_str()),
            )
            .await?;
            return Err(Error::InvalidCode);
        };
        let matches = bool::from(code_hash(&c.id, &code).ct_eq(c.code_hash.expose()));
        // The value must still be the one the code was sent to (a change's code was sent to
        // the pending value, which is in the row).
        let same_target = change || channel.value(&auth.account) == Some(c.target.as_str());
        if !matches || !same_target {
            let detail = format!(
                "{}: attempt {} of {MAX_ATTEMPTS}",
                channel.as_str(),
                c.attempts
            );
            return Err(self
                .second_factor_failed(
                    attempt,
                    &auth.account,
                    Event::own(kind::VERIFY, "failure", &auth.account.name).detail(&detail),
                    Error::InvalidCode,
                    Request::new(now, meta),
                )
                .await);
        }
        // A right contact code proves the contact, not a second factor: the attempt is given
        // back, the account's count of failures stays.
        self.second_factor_void(attempt).await?;
        if !self.store.use_verification_code(&c.id, now).await? {
            self.audit(
                now,
                meta,
                Event::own(kind::VERIFY, "reused", name).detail(channel.as_str()),
            )
            .await?;
            return Err(Error::InvalidCode);
        }
        if change {
            let old = channel.value(&auth.account).map(str::to_string);
            self.store
                .replace_contact(
                    &auth.account.id,
                    channel.as_str(),
                    Some(&c.target),
                    Some(now),
                )
                .await?;
            self.audit(
                now,
                meta,
                Event::own(kind::CHANGE, "success", name).detail(channel.as_str()),
            )
            .await?;
            self.notify_contact_changed(&auth.account, channel, old, false, now, meta)
                .await;
            return Ok(());
        }
        self.store
            .set_verified_contact(&auth.account.id, channel.as_str(), &c.target, now)
            .await?;
        self.audit(
            now,
            meta,
            Event::own(kind::VERIFY, "success", name).detail(channel.as_str()),
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;
    use crate::domain::notify::Notifier;
    use crate::store::{Role, SessionRecord, SessionState};
    use std::sync::{Arc, Mutex};

    /// Keeps the messages in memory (the SMTP path itself is tested against a real SMTP
    /// conversation in tests/recovery_contacts.rs; this test needs a fixed clock).
    #[derive(Default)]
    struct Keep(Mutex<Vec<Email>>);

    #[async_trait::async_trait]
    impl Notifier for Keep {
        fn enabled(&self) -> bool {
            true
        }
        async fn send(&self, email: &Email) -> Result<()> {
            self.0.lock().unwrap().push(email.clone());
            Ok(())
        }
    }

    #[tokio::test]
    async fn codes_expire_after_ten_minutes_and_are_bound_to_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = crate::store::open(&url).await.unwrap();
        let mut rng = rand::rngs::OsRng;
        let mut config = crate::config::Config::default();
        config.password.argon2_m_kib = 64;
        config.password.argon2_t = 1;
        let keep = Arc::new(Keep::default());
        let svc = Service::new(
            store.clone(),
            crate::keys::ServerKey::generate(&mut rng),
            crate::domain::Policy::from_config(&config, "http://127.0.0.1".into()),
            &mut rng,
        )
        .await
        .unwrap()
        .with_notifier(keep.clone());
        let mut account = AccountRecord {
            id: "a1".into(),
            name: "dora".into(),
            role: Role::User,
            email: Some("dora@example.test".into()),
            phone: None,
            password_hash: None,
            password_changed_at: None,
            created_at: 1,
            mfa_failures: 0,
            mfa_last_failure_at: None,
            locked_at: None,
        };
        store.create_account(&account).await.unwrap();
        let mut auth = Authenticated {
            session: SessionRecord {
                id: "s1".into(),
                token_hash: vec![0; 32],
                account_id: "a1".into(),
                state: SessionState::Full,
                created_at: 1,
                last_seen_at: 1,
                expires_at: 100_000,
                second_factor_at: None,
                client_addr: None,
                user_agent: None,
            },
            account: account.clone(),
            enabled_devices: 0,
        };
        let meta = RequestMeta::default();
        let code_sent = || async {
            for _ in 0..200 {
                if let Some(m) = keep.0.lock().unwrap().pop() {
                    return m
                        .body
                        .split(|c: char| !c.is_ascii_digit())
                        .find(|w| w.len() == 6)
                        .unwrap()
                        .to_string();
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            panic!("no email")
        };
        // The phone channel is not configured on this service.
        assert!(matches!(
            svc.start_contact_verification(&auth, Channel::Phone, 1000, &mut rng, &meta)
                .await,
            Err(Error::InvalidInput(_)) | Err(Error::Forbidden(_))
        ));
        svc.start_contact_verification(&auth, Channel::Email, 1000, &mut rng, &meta)
            .await
            .unwrap();
        let code = code_sent().await;
        // At 10 minutes the code has expired.
        assert!(matches!(
            svc.confirm_contact(&auth, Channel::Email, &code, 1000 + CODE_SECS, &meta)
                .await,
            Err(Error::InvalidCode)
        ));
        // Just before, it works (the expired try did not spend it).
        svc.confirm_contact(&auth, Channel::Email, &code, 1000 + CODE_SECS - 1, &meta)
            .await
            .unwrap();
        assert!(svc.contacts(&account).await.unwrap().email.verified);
        // A changed address is not verified any more.
        account.email = Some("other@example.test".into());
        assert!(!svc.contacts(&account).await.unwrap().email.verified);
        // A code sent to the old address does not prove a new one.
        svc.start_contact_verification(&auth, Channel::Email, 2000, &mut rng, &meta)
            .await
            .unwrap();
        let code = code_sent().await;
        auth.account.email = Some("other@example.test".into());
        assert!(matches!(
            svc.confirm_contact(&auth, Channel::Email, &code, 2001, &meta)
                .await,
            Err(Error::InvalidCode)
        ));
    }

    #[test]
    fn the_hash_binds_the_code_to_its_row() {
        assert_ne!(code_hash("a", "123456"), code_hash("b", "123456"));
        assert_ne!(code_hash("a", "123456"), code_hash("a", "123457"));
        assert_eq!(code_hash("a", "123456").len(), 32);
    }
}

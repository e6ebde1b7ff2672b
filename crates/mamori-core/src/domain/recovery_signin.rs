//! Signing in with alternative factors (docs/recovery.md): for a user whose MFA device is lost,
//! a code sent to the verified email address, then a code sent to the verified phone number,
//! make a **recovery session** that may only manage MFA devices.
//!
//! ```text
//!  sign-in challenge (password right, MFA pending)
//!     │ start ──policy off / contacts not both verified / not configured──▶ Forbidden
//!     ▼
//!  step "email": 6-digit code by email ──wrong (≤5 per code)──▶ InvalidCode (+ MFA failure)
//!     │ right code
//!     ▼
//!  step "phone": 6-digit code through the phone gateway ──wrong──▶ InvalidCode (+ MFA failure)
//!     │ right code: the challenge is consumed
//!     ▼
//!  Recovery session (30 minutes, MFA devices only)
//!     │ a new device is enabled
//!     ▼
//!  Full session (new token); every other session of the account is revoked
//! ```
//!
//! The flow is bound to the sign-in challenge, so nobody can start it without the password.
//! Codes are random, valid [`CODE_SECS`], single use, stored only as SHA-256 of the row id, the
//! step and the code, compared in constant time, and at most [`MAX_ATTEMPTS`] attempts each.
//! Each step change, attempt and use is one conditional update in the store (parallel requests
//! cannot skip the email step or exceed a limit); every wrong code also counts in the account's
//! second-factor failure counter, so the throttle and the lock of device codes apply.

use rand::{CryptoRng, Rng, RngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::clock::UnixTime;
use crate::config::{AlternativeFactors, MailLanguage};
use crate::error::{Error, Result};
use crate::redacted::Redacted;
use crate::store::recovery::RecoverySigninRecord;
use crate::store::{AccountRecord, SessionRecord};

use super::audit::Event;
use super::delivery::{mask_contact, spoken_digits, CodeMessage, PhoneChannel};
use super::factors::Attempt;
use super::recovery_wait::Gate;
/// Re-exported: how long the recovery session this module grants lasts.
pub use super::session::RECOVERY_SESSION_SECS;
use super::session::{AlternativeFactorsVerified, Authenticated, NewSession, SessionGrant};
use super::transport::{Email, PhoneMessage};
use super::{new_id, Request, RequestMeta, SecondFactorVerified, Service};

/// Codes expire after 10 minutes.
pub const CODE_SECS: i64 = 10 * 60;
/// Attempts per code.
pub const MAX_ATTEMPTS: i64 = 5;
/// At most this many recovery sign-ins (each sends an email) start per account in
/// [`START_WINDOW_SECS`]: whoever knows the password cannot flood the owner's mailbox from many
/// addresses, which the per-address rate limit alone would allow.
pub const MAX_STARTS: i64 = 5;
/// The window of [`MAX_STARTS`].
pub const START_WINDOW_SECS: i64 = 60 * 60;

/// Audit kinds of this module (defined with every other kind in [`super::audit::kind`], so
/// that modules which refer to another's kinds need not import each other).
pub use super::audit::kind::recovery_signin as kind;

// #15 delivery
/// At most this many "send again" / "call me instead" per account in [`START_WINDOW_SECS`]
/// (successful sends; a failed send is not counted as one).
pub const MAX_RESENDS: i64 = 3;

/// What a right phone code leads to (#15 recovery: the waiting period).
#[derive(Debug)]
pub enum RecoveryOutcome {
    /// The recovery session (MFA devices only).
    Session(NewSession, Box<AccountRecord>),
    /// The account still has other working factors: the recovery waits until `ready_at`.
    Pending {
        /// From when proving email and phone again completes it.
        ready_at: UnixTime,
        /// Whether this proof started it (false: it was pending already, not ready yet).
        started: bool,
    },
}

/// What the client does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Enter the code sent by email.
    EmailCode,
    /// Enter the code sent to the phone.
    PhoneCode,
}

impl NextStep {
    /// Wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            NextStep::EmailCode => "email_code",
            NextStep::PhoneCode => "phone_code",
        }
    }
}

/// A phone code to send: the row it is stored in, the number it goes to, the code, how it is
/// delivered and until when it is valid (kept if the send fails and the code is replaced).
struct PhoneCode<'a> {
    row_id: &'a str,
    to: &'a str,
    code: Zeroizing<String>,
    channel: PhoneChannel,
    expires_at: UnixTime,
}

/// A step passed: what comes next and until when its code is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepStarted {
    /// The next step.
    pub next: NextStep,
    /// When its code expires.
    pub expires_at: UnixTime,
    // #15 delivery
    /// Where the code went, masked ([`super::delivery::mask_contact`]).
    pub sent_to: String,
    /// How it went: `email`, `sms` or `voice`.
    pub channel: &'static str,
}

fn code_hash(id: &str, step: &str, code: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(id.as_bytes());
    h.update(b":");
    h.update(step.as_bytes());
    h.update(b":");
    h.update(code.as_bytes());
    h.finalize().to_vec()
}

fn new_code<R: RngCore + CryptoRng>(rng: &mut R) -> Zeroizing<String> {
    Zeroizing::new(format!("{:06}", rng.gen_range(0..1_000_000u32)))
}

fn masked_email(addr: &str) -> String {
    match addr.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

// #15 delivery
/// A hash no code can match: installed when a code could not be delivered, so a code nobody
/// received is never usable (the row keeps its step, so the user can ask to send again).
fn unusable_hash<R: RngCore + CryptoRng>(rng: &mut R) -> Vec<u8> {
    let mut h = vec![0u8; 32];
    rng.fill_bytes(&mut h);
    h
}

/// The phone text of a recovery sign-in code; for a call the digits are spaced (read one by
/// one) and said twice.
fn phone_text(lang: MailLanguage, service: &str, code: &str, channel: PhoneChannel) -> String {
    match (lang, channel) {
        (MailLanguage::En, PhoneChannel::Sms) => format!(
            "{service}: your sign-in code is {code} (valid 10 minutes). Nobody from {service} \
             will ask you for it."
        ),
        (MailLanguage::Ja, PhoneChannel::Sms) => format!(
            "{service}: サインイン用コードは {code} です (10 分間有効)。{service} の担当者が\
             このコードを尋ねることはありません。"
        ),
        (MailLanguage::En, PhoneChannel::Voice) => {
            let d = spoken_digits(code);
            format!(
                "This is {service}. Your sign-in code is: {d}. Again: {d}. Nobody from \
                 {service} will ask you for it."
            )
        }
        (MailLanguage::Ja, PhoneChannel::Voice) => {
            let d = spoken_digits(code);
            format!(
                "{service} です。サインイン用コードは、{d}、です。もう一度言います。{d}。\
                 {service} の担当者がこのコードを尋ねることはありません。"
            )
        }
    }
}

/// #15 contacts: why root cannot sign in with alternative factors, and what to do.
pub const ROOT_WITHOUT_CONTACTS: &str = "root has no verified email address and phone number, so \
     it cannot sign in with alternative factors: use a recovery code, or on the server host run \
     `mamori-server admin set-contacts root --email ADDRESS --phone NUMBER --verified` (or, as a \
     last resort, `mamori-server admin recover-root`)";

impl Service {
    /// Whether this account may sign in with alternative factors now: the policy, both contacts
    /// verified, email and the phone gateway configured. The refusal reason is audited.
    pub async fn alternative_factors_available(&self, account: &AccountRecord) -> Result<bool> {
        Ok(self.alternative_factors_refusal(account).await?.is_none())
    }

    async fn alternative_factors_refusal(
        &self,
        account: &AccountRecord,
    ) -> Result<Option<&'static str>> {
        if self.policy.alternative_factors == AlternativeFactors::Off {
            return Ok(Some("refused_policy"));
        }
        if !self.notifier.enabled() || !self.phone.enabled() {
            return Ok(Some("refused_not_configured"));
        }
        if !self.contacts(account).await?.both_verified() {
            return Ok(Some("refused_contacts"));
        }
        Ok(None)
    }

    /// Step 1: sends a code to the account's verified email address, bound to the challenge.
    /// Starting again replaces the code (and goes back to the email step).
    pub async fn start_recovery_sign_in<R: RngCore + CryptoRng + Send>(
        &self,
        challenge: &str,
        now: UnixTime,
        rng: &mut R,
        meta: &RequestMeta,
    ) -> Result<StepStarted> {
        let (pending, account) = self.pending_challenge(challenge, now).await?;
        let name = account.name.as_str();
        self.second_factor_check(&account, kind::START, now, meta)
            .await?;
        if let Some(reason) = self.alternative_factors_refusal(&account).await? {
            self.audit(now, meta, Event::own(kind::START, reason, name))
                .await?;
            // #15 contacts: nobody administers root, so root is told the command instead.
            if name == super::ROOT && reason == "refused_contacts" {
                return Err(Error::Forbidden(ROOT_WITHOUT_CONTACTS.into()));
            }
            return Err(Error::Forbidden(
                "signing in with alternative factors is not available for this account: it \
                 needs a verified email address and phone number, and the server's policy must \
                 allow it; use a recovery code or ask your administrator"
                    .into(),
            ));
        }
        let (started, oldest) = self
            .store
            .count_audit_since(
                name,
                kind::START,
                "success",
                now.saturating_sub(START_WINDOW_SECS),
            )
            .await?;
        if started >= MAX_STARTS {
            self.audit(now, meta, Event::own(kind::START, "refused_limit", name))
                .await?;
            let until = oldest.unwrap_or(now).saturating_add(START_WINDOW_SECS);
            return Err(Error::RateLimited {
                retry_after: u64::try_from(until.saturating_sub(now)).unwrap_or(1).max(1),
            });
        }
        let to = account
            .email
            .clone()
            .ok_or_else(|| Error::Internal("verified email vanished".into()))?;
        let id = new_id(rng);
        let code = new_code(rng);
        let expires_at = now.saturating_add(CODE_SECS);
        self.store
            .start_recovery_signin(&RecoverySigninRecord {
                id: id.clone(),
                challenge_id: pending.id.clone(),
                account_id: account.id.clone(),
                step: "email".into(),
                code_hash: Redacted::new(code_hash(&id, "email", &code)),
                created_at: now,
                expires_at,
                attempts: 0,
                used_at: None,
            })
            .await?;
        // The challenge lives as long as the code it waits for.
        self.store.extend_challenge(&pending.id, expires_at).await?;
        let service = self.policy.service_name.clone();
        let url = self.policy.public_url.trim_end_matches('/').to_string();
        let email = match self.language_for(&account).await {
            MailLanguage::En => Email {
                to: to.clone(),
                subject: format!("[{service}] Your sign-in code (alternative factors)"),
                body: Zeroizing::new(format!(
                    "Hello {name},\n\nYour code to sign in with alternative factors is {} \
                     (valid 10 minutes). Enter it at {url}/sign-in/alternative/email. A second \
                     code will then be sent to your phone.\n\nNobody from {service} will ask you \
                     for it. If you did not ask for it, someone knows your password: do not \
                     share the code, change your password and tell your administrator.\n",
                    code.as_str()
                )),
            },
            MailLanguage::Ja => Email {
                to: to.clone(),
                subject: format!("[{service}] サインイン用コード (代替要素)"),
                body: Zeroizing::new(format!(
                    "{name} さん\n\n代替要素でサインインするためのコードは {} です (10 分間有効)。\
                     {url}/sign-in/alternative/email で入力してください。次に、電話に 2 つ目の\
                     コードが送られます。\n\n{service} の担当者がこのコードを尋ねることはありません。\
                     心当たりがない場合、誰かがあなたのパスワードを知っています。コードを誰にも\
                     教えず、パスワードを変更して管理者に知らせてください。\n",
                    code.as_str()
                )),
            },
        };
        // #15 delivery: sent before answering; a failure leaves no usable code and is not
        // counted as a start (the start budget counts successes).
        self.deliver_code(
            name,
            CodeMessage::Email(email),
            // Lazy: the unusable hash is drawn only when the send failed.
            async {
                let unusable = unusable_hash(rng);
                self.store
                    .replace_recovery_signin_code(&id, "email", &unusable, now, expires_at)
                    .await
            },
            Some(Event::own(kind::START, "delivery_failed", name).detail("email")),
            Request::new(now, meta),
        )
        .await?;
        self.audit(
            now,
            meta,
            Event::own(kind::START, "success", name).detail(&masked_email(&to)),
        )
        .await?;
        Ok(StepStarted {
            next: NextStep::EmailCode,
            expires_at,
            sent_to: mask_contact(&to),
            channel: "email",
        })
    }

    /// Checks one attempt at the code of `step`; on a wrong code the failure is counted (per
    /// code and in the account's counter) and audited. Returns the row and the still
    /// unsettled attempt when the code matched.
    async fn recovery_attempt(
        &self,
        pending: &SessionRecord,
        account: &AccountRecord,
        step: &str,
        code: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<(RecoverySigninRecord, Attempt)> {
        let name = account.name.as_str();
        let audit = if step == "email" {
            kind::EMAIL
        } else {
            kind::PHONE
        };
        let attempt = self.second_factor_guard(account, audit, now, meta).await?;
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        let Some(row) = self
            .store
            .recovery_signin_attempt(&pending.id, step, now, MAX_ATTEMPTS)
            .await?
        else {
            // No live code for this step: never started, the earlier step not passed yet,
            // expired, spent or used up. Not a guess at a code, so not counted.
            self.second_factor_void(attempt).await?;
            self.audit(now, meta, Event::own(audit, "no_code", name))
                .await?;
            return Err(Error::InvalidCode);
        };
        if !bool::from(code_hash(&row.id, step, &code).ct_eq(row.code_hash.expose())) {
            let detail = format!("attempt {} of {MAX_ATTEMPTS}", row.attempts);
            return Err(self
                .second_factor_failed(
                    attempt,
                    account,
                    Event::own(audit, "failure", &account.name).detail(&detail),
                    Error::InvalidCode,
                    Request::new(now, meta),
                )
                .await);
        }
        Ok((row, attempt))
    }

    /// Step 2a: the email code. When it is right, a code goes to the verified phone number.
    pub async fn recovery_email_code<R: RngCore + CryptoRng + Send>(
        &self,
        challenge: &str,
        code: &str,
        now: UnixTime,
        rng: &mut R,
        meta: &RequestMeta,
    ) -> Result<StepStarted> {
        let (pending, account) = self.pending_challenge(challenge, now).await?;
        let name = account.name.as_str();
        let (row, attempt) = self
            .recovery_attempt(&pending, &account, "email", code, now, meta)
            .await?;
        // The email code is only half of the proof: its attempt is given back rather than
        // clearing the account's failures (only the phone code does that).
        self.second_factor_void(attempt).await?;
        // The phone number must still be the verified one.
        let contacts = self.contacts(&account).await?;
        let to = match (contacts.phone.verified, contacts.phone.value) {
            (true, Some(v)) if self.phone.enabled() => v,
            _ => {
                self.audit(now, meta, Event::own(kind::EMAIL, "refused_contacts", name))
                    .await?;
                return Err(Error::Forbidden(
                    "the account has no verified phone number any more".into(),
                ));
            }
        };
        let phone_code = new_code(rng);
        let expires_at = now.saturating_add(CODE_SECS);
        // Spends the email code and installs the phone code in one conditional update.
        if !self
            .store
            .advance_recovery_signin(
                &row.id,
                &code_hash(&row.id, "phone", &phone_code),
                now,
                expires_at,
            )
            .await?
        {
            self.audit(now, meta, Event::own(kind::EMAIL, "reused", name))
                .await?;
            return Err(Error::InvalidCode);
        }
        self.store.extend_challenge(&pending.id, expires_at).await?;
        // The email step is passed whatever happens to the phone message: on a failed send
        // the user stays at the phone step and may send again or ask for a call.
        self.audit(now, meta, Event::own(kind::EMAIL, "success", name))
            .await?;
        // No event of its own when this send fails: the email step above succeeded.
        let phone = PhoneCode {
            row_id: &row.id,
            to: &to,
            code: phone_code,
            channel: PhoneChannel::Sms,
            expires_at,
        };
        self.send_recovery_phone_code(&account, phone, None, Request::new(now, meta), rng)
            .await?;
        Ok(StepStarted {
            next: NextStep::PhoneCode,
            expires_at,
            sent_to: mask_contact(&to),
            channel: PhoneChannel::Sms.as_str(),
        })
    }

    /// Step 2b: the phone code. When it is right, the challenge is consumed and a recovery
    /// session begins.
    pub async fn recovery_phone_code<R: RngCore + CryptoRng + Send>(
        &self,
        challenge: &str,
        code: &str,
        now: UnixTime,
        rng: &mut R,
        meta: &RequestMeta,
    ) -> Result<RecoveryOutcome> {
        let (pending, account) = self.pending_challenge(challenge, now).await?;
        let name = account.name.as_str();
        let (row, attempt) = self
            .recovery_attempt(&pending, &account, "phone", code, now, meta)
            .await?;
        if !self.store.finish_recovery_signin(&row.id, now).await? {
            self.second_factor_void(attempt).await?;
            self.audit(now, meta, Event::own(kind::PHONE, "reused", name))
                .await?;
            return Err(Error::InvalidCode);
        }
        // Consume the challenge; of two concurrent answers only one deletes it.
        if !self.store.delete_session(&account.id, &pending.id).await? {
            self.second_factor_void(attempt).await?;
            return Err(Error::InvalidChallenge);
        }
        self.second_factor_succeeded(attempt).await?;
        // #15 recovery: the waiting period, when the account still has other working factors.
        match self.recovery_gate(&account, now, rng, meta).await? {
            Gate::Grant => {}
            Gate::Started { ready_at } => {
                self.audit(now, meta, Event::own(kind::PHONE, "pending", name))
                    .await?;
                return Ok(RecoveryOutcome::Pending {
                    ready_at,
                    started: true,
                });
            }
            Gate::NotReady { ready_at } => {
                self.audit(now, meta, Event::own(kind::PHONE, "pending", name))
                    .await?;
                return Ok(RecoveryOutcome::Pending {
                    ready_at,
                    started: false,
                });
            }
        }
        self.recovery_granted(&account, now, rng, meta).await?;
        let proof = AlternativeFactorsVerified::new(&account.id);
        let s = self
            .create_session(&account, SessionGrant::Recovery(proof), now, rng, meta)
            .await?;
        self.audit(now, meta, Event::own(kind::PHONE, "success", name))
            .await?;
        Ok(RecoveryOutcome::Session(s, Box::new(account)))
    }

    /// Ends a recovery session after a new device was enabled in it: every session of the
    /// account (this one included) and every sync device token is revoked, and a full session
    /// with a new token replaces it.
    pub(super) async fn complete_recovery<R: RngCore + CryptoRng + Send>(
        &self,
        auth: &Authenticated,
        proof: SecondFactorVerified,
        now: UnixTime,
        rng: &mut R,
        meta: &RequestMeta,
    ) -> Result<NewSession> {
        let revoked = self
            .store
            .delete_sessions_for_account(&auth.account.id)
            .await?;
        self.forget_forward_sessions(&auth.account.id);
        // Sync devices registered before the loss end too: whoever has the lost device (or the
        // password) may have registered one.
        self.sync_revoke_all(
            &auth.account,
            &auth.account.name,
            "recovery session ended",
            now,
            meta,
        )
        .await?;
        let s = self
            .create_session(
                &auth.account,
                SessionGrant::SecondFactor(proof),
                now,
                rng,
                meta,
            )
            .await?;
        // The newest enabled device is the one just enrolled.
        let device = self
            .store
            .devices_for_account(&auth.account.id)
            .await?
            .into_iter()
            .filter(|d| d.enabled_at.is_some())
            .max_by_key(|d| d.enabled_at)
            .map(|d| d.name)
            .unwrap_or_default();
        self.audit(
            now,
            meta,
            Event::own(kind::COMPLETE, "success", &auth.account.name).detail(&device),
        )
        .await?;
        // #15 recovery: every channel hears of it, with the devices removed in the session.
        self.recovery_completed_notice(
            &auth.account,
            &device,
            auth.session.created_at,
            now,
            rng,
            meta,
        )
        .await?;
        // `revoked` counts this recovery session too.
        tracing::info!(
            account = %auth.account.name,
            other_sessions_revoked = revoked.saturating_sub(1),
            "recovery session completed"
        );
        Ok(s)
    }

    // #15 delivery
    /// Sends `phone`'s code and waits for the outcome; on failure the code is replaced by an
    /// unusable one, `failed` is audited (when given) and `DeliveryFailed` is returned
    /// ([`Service::deliver_code`]).
    async fn send_recovery_phone_code<R: RngCore + CryptoRng + Send>(
        &self,
        account: &AccountRecord,
        phone: PhoneCode<'_>,
        failed: Option<Event<'_>>,
        req: Request<'_>,
        rng: &mut R,
    ) -> Result<()> {
        let PhoneCode {
            row_id,
            to,
            code,
            channel,
            expires_at,
        } = phone;
        let now = req.now;
        let service = self.policy.service_name.clone();
        let name = account.name.as_str();
        // The account's own language (#15 per-account language), not the server's default.
        let text = Zeroizing::new(phone_text(
            self.language_for(account).await,
            &service,
            &code,
            channel,
        ));
        let msg = PhoneMessage {
            id: new_id(rng),
            to: to.to_string(),
            purpose: "recovery_sign_in",
            code,
            text,
            service,
            timestamp: now,
            channel,
        };
        self.deliver_code(
            name,
            CodeMessage::Phone(msg),
            async {
                let unusable = unusable_hash(rng);
                self.store
                    .replace_recovery_signin_code(row_id, "phone", &unusable, now, expires_at)
                    .await
            },
            failed,
            req,
        )
        .await
    }

    /// The masked email address and phone number of the challenge's account, for the recovery
    /// steps' pages (whoever holds the challenge already knows the password).
    pub async fn recovery_sign_in_targets(
        &self,
        challenge: &str,
        now: UnixTime,
    ) -> Result<(Option<String>, Option<String>)> {
        let (_, account) = self.pending_challenge(challenge, now).await?;
        let c = self.contacts(&account).await?;
        Ok((
            c.email.value.as_deref().map(mask_contact),
            c.phone.value.as_deref().map(mask_contact),
        ))
    }

    /// "Send again" and "call me instead" on the phone step: a new phone code (the old one
    /// stops working) by `channel`. At most [`MAX_RESENDS`] successful sends per account per
    /// hour; attempts at the code are not reset.
    pub async fn resend_recovery_phone_code<R: RngCore + CryptoRng + Send>(
        &self,
        challenge: &str,
        channel: PhoneChannel,
        now: UnixTime,
        rng: &mut R,
        meta: &RequestMeta,
    ) -> Result<StepStarted> {
        let (pending, account) = self.pending_challenge(challenge, now).await?;
        let name = account.name.as_str();
        self.second_factor_check(&account, kind::RESEND, now, meta)
            .await?;
        let row = match self
            .store
            .recovery_signin_for_challenge(&pending.id)
            .await?
        {
            Some(r) if r.step == "phone" && r.used_at.is_none() => r,
            _ => {
                self.audit(now, meta, Event::own(kind::RESEND, "no_code", name))
                    .await?;
                return Err(Error::InvalidInput(
                    "there is no phone code to send again: enter the email code first".into(),
                ));
            }
        };
        let (sent, oldest) = self
            .store
            .count_audit_since(
                name,
                kind::RESEND,
                "success",
                now.saturating_sub(START_WINDOW_SECS),
            )
            .await?;
        if sent >= MAX_RESENDS {
            self.audit(now, meta, Event::own(kind::RESEND, "refused_limit", name))
                .await?;
            let until = oldest.unwrap_or(now).saturating_add(START_WINDOW_SECS);
            return Err(Error::RateLimited {
                retry_after: u64::try_from(until.saturating_sub(now)).unwrap_or(1).max(1),
            });
        }
        let contacts = self.contacts(&account).await?;
        let to = match (contacts.phone.verified, contacts.phone.value) {
            (true, Some(v)) if self.phone.enabled() => v,
            _ => {
                self.audit(
                    now,
                    meta,
                    Event::own(kind::RESEND, "refused_contacts", name),
                )
                .await?;
                return Err(Error::Forbidden(
                    "the account has no verified phone number any more".into(),
                ));
            }
        };
        let code = new_code(rng);
        let expires_at = now.saturating_add(CODE_SECS);
        if !self
            .store
            .replace_recovery_signin_code(
                &row.id,
                "phone",
                &code_hash(&row.id, "phone", &code),
                now,
                expires_at,
            )
            .await?
        {
            self.audit(now, meta, Event::own(kind::RESEND, "no_code", name))
                .await?;
            return Err(Error::InvalidCode);
        }
        self.store.extend_challenge(&pending.id, expires_at).await?;
        let phone = PhoneCode {
            row_id: &row.id,
            to: &to,
            code,
            channel,
            expires_at,
        };
        let failed = Event::own(kind::RESEND, "delivery_failed", name).detail(channel.as_str());
        self.send_recovery_phone_code(&account, phone, Some(failed), Request::new(now, meta), rng)
            .await?;
        self.audit(
            now,
            meta,
            Event::own(kind::RESEND, "success", name).detail(channel.as_str()),
        )
        .await?;
        Ok(StepStarted {
            next: NextStep::PhoneCode,
            expires_at,
            sent_to: mask_contact(&to),
            channel: channel.as_str(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_binds_the_code_to_its_row_and_step() {
        assert_ne!(
            code_hash("a", "email", "123456"),
            code_hash("a", "phone", "123456")
        );
        assert_ne!(
            code_hash("a", "email", "123456"),
            code_hash("b", "email", "123456")
        );
        assert_eq!(code_hash("a", "email", "123456").len(), 32);
    }

    #[test]
    fn codes_are_six_digits_and_addresses_are_masked() {
        let mut rng = rand::rngs::OsRng;
        for _ in 0..50 {
            let c = new_code(&mut rng);
            assert!(c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()));
        }
        assert_eq!(masked_email("carol@example.test"), "c***@example.test");
        assert_eq!(masked_email("nope"), "***");
    }
}

//! The sign-in state machine and sessions.
//!
//! ```text
//!  password ──wrong──▶ InvalidCredentials (same answer and cost for an unknown user)
//!     │
//!     ├─ account has enabled OTP devices ──▶ MfaRequired{challenge, devices}
//!     │        challenge + code ──▶ SecondFactorVerified ──▶ Full session
//!     ├─ no device, policy requires MFA ──▶ EnrollmentRequired session (may only enroll)
//!     │        enable device ──▶ SecondFactorVerified ──▶ Full session (new token)
//!     └─ no device, policy allows ──▶ Full session + security alert
//! ```
//!
//! Session tokens are 256-bit random values; only their SHA-256 is stored. Sessions end after 30
//! minutes idle or 12 hours. Every state change issues a new token (no session fixation).

use rand::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::clock::UnixTime;
use crate::config::RequireMfa;
use crate::error::{Error, Result};
use crate::store::{AccountRecord, DeviceRecord, SessionRecord, SessionState};

use super::audit::{kind, Event};
use super::password;
use super::session::RECOVERY_SESSION_SECS;
/// The session types this module hands out (defined in [`super::session`], which recovery
/// sign-in shares).
pub use super::session::{Authenticated, NewSession, PasswordOnlyAllowed, SessionGrant};
use super::{
    new_id, new_token, token_hash, RequestMeta, SecondFactorVerified, Service, CHALLENGE_SECS,
    ROOT, SESSION_ABSOLUTE_SECS, SESSION_IDLE_SECS,
};

/// Result of the password step.
#[derive(Debug)]
pub enum PasswordOutcome {
    /// A second factor is needed: the challenge token and the devices that can answer.
    MfaRequired {
        /// Challenge token.
        challenge: Zeroizing<String>,
        /// Enabled devices.
        devices: Vec<DeviceRecord>,
    },
    /// A session (full, or enrollment-only).
    Session(Box<(NewSession, AccountRecord)>),
}

impl Service {
    /// [`Authenticated::require_admin`] at an edge: an administrator refused for want of MFA
    /// is audited (`admin.without_mfa`, with the function asked for as detail).
    pub async fn require_admin(
        &self,
        auth: &Authenticated,
        function: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<()> {
        let r = auth.require_admin();
        if matches!(r, Err(Error::AdminWithoutMfa)) {
            self.audit(
                now,
                meta,
                Event::own(kind::ADMIN_WITHOUT_MFA, "refused", &auth.account.name).detail(function),
            )
            .await?;
        }
        r
    }
}

/// Whether the policy requires `account` to enroll MFA before anything else.
pub fn mfa_required_for(policy: RequireMfa, account: &AccountRecord) -> bool {
    match policy {
        RequireMfa::All => true,
        RequireMfa::Root => account.name == ROOT,
        RequireMfa::None => false,
    }
}

impl Service {
    /// Creates a session of the kind `grant` allows.
    pub async fn create_session<R: RngCore + CryptoRng + Send>(
        &self,
        account: &AccountRecord,
        grant: SessionGrant,
        now: UnixTime,
        rng: &mut R,
        meta: &RequestMeta,
    ) -> Result<NewSession> {
        let factor_kind = match &grant {
            SessionGrant::SecondFactor(proof) => Some(proof.kind()),
            _ => None,
        };
        let (state, second_factor_at) = match grant {
            SessionGrant::SecondFactor(proof) => {
                if proof.account_id() != account.id {
                    return Err(Error::Internal("proof for another account".into()));
                }
                // #15 recovery: a sign-in with an existing factor (device code, security key,
                // recovery code) shows the owner still has one: a pending recovery ends.
                self.cancel_pending_recovery(account, "sign-in with an existing factor", now, meta)
                    .await?;
                (SessionState::Full, Some(now))
            }
            SessionGrant::PasswordOnly(_) => (SessionState::Full, None),
            SessionGrant::EnrollmentOnly => (SessionState::EnrollmentRequired, None),
            SessionGrant::Recovery(proof) => {
                if proof.account_id() != account.id {
                    return Err(Error::Internal("proof for another account".into()));
                }
                // The email and phone codes just given count as a fresh second factor, so the
                // lost device's removal does not ask for a code from it.
                (SessionState::Recovery, Some(now))
            }
        };
        let lifetime = if state == SessionState::Recovery {
            RECOVERY_SESSION_SECS
        } else {
            SESSION_ABSOLUTE_SECS
        };
        let (token, hash) = new_token(rng);
        let record = SessionRecord {
            id: new_id(rng),
            token_hash: hash,
            account_id: account.id.clone(),
            state,
            created_at: now,
            last_seen_at: now,
            expires_at: now.saturating_add(lifetime),
            second_factor_at,
            client_addr: meta.client_addr.clone(),
            user_agent: meta.user_agent.clone(),
        };
        self.store.create_session(&record).await?;
        if let Some(kind) = factor_kind {
            self.store.set_second_factor_kind(&record.id, kind).await?;
        }
        Ok(NewSession { token, record })
    }

    /// The password step.
    pub async fn sign_in_password<R: RngCore + CryptoRng + Send>(
        &self,
        user: &str,
        password: Zeroizing<String>,
        now: UnixTime,
        rng: &mut R,
        meta: &RequestMeta,
    ) -> Result<PasswordOutcome> {
        // No account name is longer or holds a control character (check_name): such a name is
        // an unknown user without asking the store (PostgreSQL refuses NUL in text).
        let account = if user.len() <= 64 && !user.contains(char::is_control) {
            self.store.account_by_name(user).await?
        } else {
            None
        };
        // Verify against a dummy hash when there is no account or no password yet, so that both
        // cases cost one Argon2id verification like a real wrong password.
        let phc = account
            .as_ref()
            .and_then(|a| a.password_hash.as_ref().map(|h| h.expose().clone()))
            .unwrap_or_else(|| self.dummy_hash.clone());
        let ok = password::verify_blocking(password, phc).await?;
        let account = match account {
            Some(a) if ok && a.password_hash.is_some() => a,
            other => {
                let known = other.as_ref().map(|a| a.name.as_str());
                let detail = if known.is_some() {
                    "wrong password"
                } else {
                    "unknown user"
                };
                self.audit(
                    now,
                    meta,
                    Event {
                        kind: kind::SIGN_IN_PASSWORD,
                        result: "failure",
                        account: known,
                        actor: None,
                        detail: Some(detail),
                    },
                )
                .await?;
                return Err(Error::InvalidCredentials);
            }
        };
        self.password_accepted(account, None, now, rng, meta).await
    }

    /// Signs in the person who has just chosen the account's password with a setup link
    /// ([`Service::complete_setup`]): the link proved the account is theirs and the password
    /// is the one they typed, so what follows is the password step's own outcome (a second
    /// factor if the account has devices; else an enrollment-only or password-only session
    /// per `require_mfa`), audited as a successful password step after setup.
    pub async fn sign_in_after_setup<R: RngCore + CryptoRng + Send>(
        &self,
        account: AccountRecord,
        now: UnixTime,
        rng: &mut R,
        meta: &RequestMeta,
    ) -> Result<PasswordOutcome> {
        self.password_accepted(
            account,
            Some("password set with a setup link"),
            now,
            rng,
            meta,
        )
        .await
    }

    /// What follows a right password: a challenge for the second factor, or a session of the
    /// kind the policy allows.
    async fn password_accepted<R: RngCore + CryptoRng + Send>(
        &self,
        account: AccountRecord,
        detail: Option<&str>,
        now: UnixTime,
        rng: &mut R,
        meta: &RequestMeta,
    ) -> Result<PasswordOutcome> {
        let devices: Vec<DeviceRecord> = self
            .store
            .devices_for_account(&account.id)
            .await?
            .into_iter()
            .filter(|d| d.enabled_at.is_some())
            .collect();
        let mut event = Event::own(kind::SIGN_IN_PASSWORD, "success", &account.name);
        if let Some(d) = detail {
            event = event.detail(d);
        }
        self.audit(now, meta, event).await?;
        if !devices.is_empty() {
            let (challenge, hash) = new_token(rng);
            let record = SessionRecord {
                id: new_id(rng),
                token_hash: hash,
                account_id: account.id.clone(),
                state: SessionState::MfaPending,
                created_at: now,
                last_seen_at: now,
                expires_at: now.saturating_add(CHALLENGE_SECS),
                second_factor_at: None,
                client_addr: meta.client_addr.clone(),
                user_agent: meta.user_agent.clone(),
            };
            self.store.create_session(&record).await?;
            return Ok(PasswordOutcome::MfaRequired { challenge, devices });
        }
        // After an MFA reset the next sign-in may only enroll, whatever the policy.
        let grant = if mfa_required_for(self.policy.require_mfa, &account)
            || self.store.enroll_required(&account.id).await?
        {
            SessionGrant::EnrollmentOnly
        } else {
            SessionGrant::PasswordOnly(PasswordOnlyAllowed::new())
        };
        let s = self.create_session(&account, grant, now, rng, meta).await?;
        Ok(PasswordOutcome::Session(Box::new((s, account))))
    }

    /// The live sign-in challenge of a challenge token (password given, second factor awaited)
    /// and its account; every way of answering the MFA step starts here.
    pub(super) async fn pending_challenge(
        &self,
        challenge: &str,
        now: UnixTime,
    ) -> Result<(SessionRecord, AccountRecord)> {
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
        Ok((pending, account))
    }

    /// The code step: answers a challenge with a one-time code.
    pub async fn sign_in_mfa<R: RngCore + CryptoRng + Send>(
        &self,
        challenge: &str,
        code: &str,
        device_id: Option<&str>,
        now: UnixTime,
        rng: &mut R,
        meta: &RequestMeta,
    ) -> Result<(NewSession, AccountRecord)> {
        let (pending, account) = self.pending_challenge(challenge, now).await?;
        // A recovery code answers like a device (docs/recovery.md); device codes are digits only,
        // so the two cannot be confused.
        let proof = match super::recovery::RecoveryCode::parse(code).filter(|_| device_id.is_none())
        {
            Some(rc) => self.verify_recovery_code(&account, &rc, now, meta).await?,
            None => {
                self.verify_second_factor(&account, code, device_id, now, meta, kind::SIGN_IN_MFA)
                    .await?
            }
        };
        // Consume the challenge; of two concurrent answers only one deletes it.
        if !self.store.delete_session(&account.id, &pending.id).await? {
            return Err(Error::InvalidChallenge);
        }
        let s = self
            .create_session(&account, SessionGrant::SecondFactor(proof), now, rng, meta)
            .await?;
        Ok((s, account))
    }

    /// Finds the session of a bearer token or cookie, enforcing the idle and absolute limits.
    pub async fn authenticate(&self, token: &str, now: UnixTime) -> Result<Authenticated> {
        let session = self
            .store
            .session_by_token_hash(&token_hash(token))
            .await?
            .filter(|s| s.state != SessionState::MfaPending)
            .ok_or(Error::Unauthenticated)?;
        self.authenticate_session(session, now).await
    }

    /// The one session check behind every credential (the session token of the API and the
    /// console, the forward-auth cookie's token): the absolute end and the idle time (an ended
    /// session is deleted), the account, the activity time (written at most once a minute)
    /// and the enabled devices.
    pub(super) async fn authenticate_session(
        &self,
        session: SessionRecord,
        now: UnixTime,
    ) -> Result<Authenticated> {
        if session.state == SessionState::MfaPending {
            return Err(Error::Unauthenticated);
        }
        if session.expires_at <= now || session.last_seen_at + SESSION_IDLE_SECS <= now {
            self.store
                .delete_session(&session.account_id, &session.id)
                .await?;
            return Err(Error::Unauthenticated);
        }
        let account = self
            .store
            .account_by_id(&session.account_id)
            .await?
            .ok_or(Error::Unauthenticated)?;
        // Write the activity time at most once a minute, not on every request.
        if now - session.last_seen_at >= 60 {
            self.store.touch_session(&session.id, now).await?;
        }
        let enabled_devices = self
            .store
            .devices_for_account(&account.id)
            .await?
            .iter()
            .filter(|d| d.enabled_at.is_some())
            .count();
        Ok(Authenticated {
            session,
            account,
            enabled_devices: u32::try_from(enabled_devices).unwrap_or(u32::MAX),
        })
    }

    /// The state of the live session with this token, by the same expiry rule as
    /// [`Service::authenticate`] (absolute end and idle time), without touching or ending it:
    /// the console's layer uses it to confine a recovery session to its pages before any
    /// handler runs. `None` for no such session, or one that has ended.
    pub async fn session_state(&self, token: &str, now: UnixTime) -> Result<Option<SessionState>> {
        Ok(self
            .store
            .session_by_token_hash(&token_hash(token))
            .await?
            .filter(|s| s.expires_at > now && s.last_seen_at + SESSION_IDLE_SECS > now)
            .map(|s| s.state))
    }

    /// Gives a second factor again within a session (needed before sensitive changes).
    pub async fn verify_in_session(
        &self,
        auth: &Authenticated,
        code: &str,
        device_id: Option<&str>,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<()> {
        self.verify_second_factor(
            &auth.account,
            code,
            device_id,
            now,
            meta,
            kind::SESSION_VERIFY,
        )
        .await?;
        self.store
            .set_session_second_factor(&auth.session.id, now)
            .await?;
        self.store
            .set_second_factor_kind(&auth.session.id, super::factors::SECOND_FACTOR_OTP)
            .await
    }

    /// After a device was enabled in this session: an enrollment-only session is replaced by a
    /// full one (new token); a full session records the verified factor.
    pub async fn upgrade_after_enrollment<R: RngCore + CryptoRng + Send>(
        &self,
        auth: &Authenticated,
        proof: SecondFactorVerified,
        now: UnixTime,
        rng: &mut R,
        meta: &RequestMeta,
    ) -> Result<Option<NewSession>> {
        self.store.clear_enroll_required(&auth.account.id).await?;
        if auth.session.state == SessionState::Recovery {
            return self
                .complete_recovery(auth, proof, now, rng, meta)
                .await
                .map(Some);
        }
        if auth.session.state == SessionState::Full {
            self.store
                .set_session_second_factor(&auth.session.id, now)
                .await?;
            // Registering a security key does not make this session phishing-resistant: the
            // session was proven with whatever factor it had (a code, perhaps typed into a
            // phishing proxy), and whoever holds it may register a key of their own. Only a
            // sign-in or step-up *with* a key records one (`forward_auth`'s
            // `phishing_resistant` rules read this).
            if proof.kind() != super::factors::SECOND_FACTOR_SECURITY_KEY {
                self.store
                    .set_second_factor_kind(&auth.session.id, proof.kind())
                    .await?;
            }
            return Ok(None);
        }
        self.store
            .delete_session(&auth.account.id, &auth.session.id)
            .await?;
        self.forget_forward_sessions(&auth.account.id);
        let s = self
            .create_session(
                &auth.account,
                SessionGrant::SecondFactor(proof),
                now,
                rng,
                meta,
            )
            .await?;
        Ok(Some(s))
    }

    /// Signs out (deletes this session).
    pub async fn sign_out(
        &self,
        auth: &Authenticated,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<()> {
        self.store
            .delete_session(&auth.account.id, &auth.session.id)
            .await?;
        self.forget_forward_sessions(&auth.account.id);
        self.audit(
            now,
            meta,
            Event::own(kind::SIGN_OUT, "success", &auth.account.name),
        )
        .await?;
        Ok(())
    }

    /// The account's sessions.
    pub async fn list_sessions(&self, auth: &Authenticated) -> Result<Vec<SessionRecord>> {
        self.store.sessions_for_account(&auth.account.id).await
    }

    /// Revokes one of the account's own sessions.
    pub async fn revoke_session(
        &self,
        auth: &Authenticated,
        session_id: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<()> {
        if !self
            .store
            .delete_session(&auth.account.id, session_id)
            .await?
        {
            return Err(Error::NotFound("session"));
        }
        self.forget_forward_sessions(&auth.account.id);
        self.audit(
            now,
            meta,
            Event::own(kind::SESSION_REVOKE, "success", &auth.account.name).detail(session_id),
        )
        .await?;
        Ok(())
    }
}

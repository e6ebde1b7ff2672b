//! Second-factor verification and the rules around it:
//!
//! - **replay**: a device accepts only a time step (or HOTP counter) later than its last
//!   accepted one, decided by the store's one conditional update (RFC 6238 section 5.2, NIST SP
//!   800-63B section 5.1.4.2: "accept a given time-based OTP only once");
//! - **guessing**: failed attempts count per account in the database, so every node sees them;
//!   after [`Lockout::delay_after`] consecutive failures each further attempt must wait a
//!   doubling delay, and [`Lockout::lock_after`] consecutive failures lock the account (NIST SP
//!   800-63B section 5.2.2: at most 100). Every attempt is *reserved* (counted as a failure) by
//!   one conditional update before the factor is looked at ([`Service::second_factor_guard`]),
//!   so parallel guesses on any number of nodes are never evaluated more often than the policy
//!   allows; a success then clears the count. A code that fits no device (wrong length, letters)
//!   is a failed attempt like any other, and a code is compared with every device;
//! - the proof: [`SecondFactorVerified`] can only be made here (and by enrollment, which proves
//!   possession the same way), and a full session requires one.

use mamori_otp::{Algorithm, Generator, OtpError, OtpKind, OtpParams, Secret};

use crate::clock::UnixTime;
use crate::config::Lockout;
use crate::error::{Error, Result};
use crate::store::{AccountRecord, DeviceRecord};

use super::audit::{kind, Event};
use super::{
    unix_u64, Request, RequestMeta, Service, ENROLL_WINDOW, HOTP_LOOK_AHEAD, TOKEN_LOOK_AHEAD,
    VERIFY_WINDOW,
};

/// Proof that a second factor was just verified for an account. Zero-cost; it cannot be built
/// outside the domain's verification code, so whoever holds one has checked a code.
#[derive(Debug)]
pub struct SecondFactorVerified {
    account_id: String,
    /// A security key or passkey (#18: the forward-auth policy `phishing_resistant`).
    phishing_resistant: bool,
    _private: (),
}

impl SecondFactorVerified {
    pub(super) fn new(account_id: &str) -> Self {
        SecondFactorVerified {
            account_id: account_id.to_string(),
            phishing_resistant: false,
            _private: (),
        }
    }

    /// The proof of a security key's or passkey's answer (WebAuthn binds it to the origin).
    pub(super) fn security_key(account_id: &str) -> Self {
        SecondFactorVerified {
            phishing_resistant: true,
            ..SecondFactorVerified::new(account_id)
        }
    }

    /// The kind recorded with the session (`sessions.second_factor_kind`).
    pub fn kind(&self) -> &'static str {
        if self.phishing_resistant {
            SECOND_FACTOR_SECURITY_KEY
        } else {
            SECOND_FACTOR_OTP
        }
    }

    /// The account whose factor was verified.
    pub fn account_id(&self) -> &str {
        &self.account_id
    }
}

/// `sessions.second_factor_kind` of a security key or passkey.
pub const SECOND_FACTOR_SECURITY_KEY: &str = "security_key";
/// `sessions.second_factor_kind` of a one-time code of any kind.
pub const SECOND_FACTOR_OTP: &str = "otp";

/// How long the account must wait before the next attempt, if at all: nothing for the first
/// `delay_after` failures, then `base`, `2·base`, `4·base`, … up to `max` seconds after the last
/// failure.
pub fn throttle_wait(
    l: &Lockout,
    failures: i64,
    last_failure_at: Option<UnixTime>,
    now: UnixTime,
) -> Option<u64> {
    let over = failures.checked_sub(i64::from(l.delay_after))?;
    if over < 0 || l.delay_base_secs == 0 {
        return None;
    }
    let shift = u32::try_from(over.min(32)).unwrap_or(32);
    let delay = l
        .delay_base_secs
        .saturating_mul(1u64 << shift)
        .min(l.delay_max_secs);
    let until = last_failure_at?.saturating_add(i64::try_from(delay).unwrap_or(i64::MAX));
    (now < until).then(|| u64::try_from(until - now).unwrap_or(0).max(1))
}

/// Outcome of checking one code against one device.
enum Check {
    Accepted { step: i64, drift: i64 },
    Replayed,
    NoMatch,
}

/// How many times [`Service::second_factor_guard`] re-reads the account when other attempts
/// keep winning the reservation, before answering "try again" (a flood, by definition).
const RESERVE_TRIES: usize = 16;

/// A reservation whose attempt is still unsettled this long after it was made belongs to a
/// request that died (a node crashed mid-evaluation): it is then settled as a failure. Longer
/// than any request may take (the request timeout is at most a minute by default).
const STALE_RESERVATION_SECS: i64 = 120;

/// One reserved second-factor attempt, already counted as a failure in the account's counter.
/// It must be settled exactly once: [`Service::second_factor_succeeded`],
/// [`Service::second_factor_failed`] or [`Service::second_factor_void`].
#[must_use = "a reserved attempt must be settled"]
#[derive(Debug)]
pub(crate) struct Attempt {
    account_id: String,
    /// The last failure time before this reservation, and the time of the reservation: giving
    /// the attempt back restores the former if no other attempt came since.
    before: Option<UnixTime>,
    at: UnixTime,
    /// The account's failure count with this attempt in it.
    count: i64,
}

/// What a claimed place in the order of attempts does to the account's count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    /// Count the attempt as a failure until it is settled ([`Service::second_factor_guard`]).
    Reserve,
    /// The answer is right: clear the count ([`Service::second_factor_claim_success`]).
    Success,
}

impl Service {
    /// The OTP generator of a device, from its sealed secret.
    pub(super) fn generator(&self, d: &DeviceRecord) -> Result<Generator> {
        let sealed = d
            .secret_sealed
            .as_ref()
            .map(|s| s.expose())
            .ok_or_else(|| Error::Internal("device has no secret".into()))?;
        let bytes = self.key.open(d.id.as_bytes(), sealed)?;
        let secret = Secret::from_bytes(bytes.to_vec())
            .map_err(|e| Error::Internal(format!("stored secret: {e}")))?;
        let algorithm: Algorithm = d
            .algorithm
            .parse()
            .map_err(|_| Error::Internal("stored algorithm".into()))?;
        let params = OtpParams {
            kind: if d.otp_type == "hotp" {
                OtpKind::Hotp
            } else {
                OtpKind::Totp
            },
            algorithm,
            digits: u32::try_from(d.digits).unwrap_or(6),
            period: u64::try_from(d.period).unwrap_or(30),
            counter: 0,
        };
        Generator::new(&secret, params).map_err(|e| Error::Internal(format!("stored params: {e}")))
    }

    fn check_code(&self, d: &DeviceRecord, code: &str, now: UnixTime) -> Result<Check> {
        let g = self.generator(d)?;
        let last = d.last_step.and_then(|s| u64::try_from(s).ok());
        let found = if g.params().kind == OtpKind::Hotp {
            let next = last.map_or(0, |s| s.saturating_add(1));
            g.verify_counter(code, next, HOTP_LOOK_AHEAD)
        } else {
            g.verify_time(code, unix_u64(now), d.drift, VERIFY_WINDOW, last)
        };
        match found {
            Ok(v) => Ok(Check::Accepted {
                step: i64::try_from(v.step).unwrap_or(i64::MAX),
                // Remember the observed clock offset, bounded by the enrollment window so that
                // drift cannot be walked arbitrarily far from the server's clock.
                drift: if g.params().kind == OtpKind::Hotp {
                    d.drift
                } else {
                    v.offset
                        .clamp(-(ENROLL_WINDOW as i64), ENROLL_WINDOW as i64)
                },
            }),
            // A code that cannot be this device's (another length, letters) is a wrong
            // answer like any other: with devices of different lengths, refusing it as
            // malformed before counting it would let guesses go uncounted.
            Err(OtpError::MalformedCode { .. }) => Ok(Check::NoMatch),
            Err(_) => {
                // Was it a valid code for a step already used? Then it is a replay, which
                // OWASP ASVS V2 asks to log as such.
                let replay = g.params().kind != OtpKind::Hotp
                    && last.is_some()
                    && g.verify_time(code, unix_u64(now), d.drift, VERIFY_WINDOW, None)
                        .is_ok();
                Ok(if replay {
                    Check::Replayed
                } else {
                    Check::NoMatch
                })
            }
        }
    }

    /// Verifies a one-time code for `account` against its enabled OTP devices (or just
    /// `device_id`), applying the lock, throttle and replay rules and recording the outcome in
    /// the audit log under `audit_kind`.
    pub async fn verify_second_factor(
        &self,
        account: &AccountRecord,
        code: &str,
        device_id: Option<&str>,
        now: UnixTime,
        meta: &RequestMeta,
        audit_kind: &str,
    ) -> Result<SecondFactorVerified> {
        let devices = self.store.devices_for_account(&account.id).await?;
        let req = Request::new(now, meta);
        self.verify_second_factor_with(account, &devices, code, device_id, req, audit_kind)
            .await
    }

    /// [`Service::verify_second_factor`] with the account's devices already loaded (the
    /// validate API reads the account and its devices in one query).
    pub(super) async fn verify_second_factor_with(
        &self,
        account: &AccountRecord,
        devices: &[DeviceRecord],
        code: &str,
        device_id: Option<&str>,
        req: Request<'_>,
        audit_kind: &str,
    ) -> Result<SecondFactorVerified> {
        let Request { now, meta } = req;
        let name = account.name.as_str();
        // Refuse a locked or throttled account before looking at the code.
        self.second_factor_check(account, audit_kind, now, meta)
            .await?;
        // Compare the code with every enabled OTP device, without stopping at a match or at a
        // device whose format it does not fit (pure computation: nothing is decided yet).
        let mut checks = Vec::new();
        for d in devices.iter().filter(|d| {
            d.kind.is_otp() && d.enabled_at.is_some() && device_id.is_none_or(|want| want == d.id)
        }) {
            checks.push((d, self.check_code(d, code, now)?));
        }
        let accepted = checks.iter().find_map(|(d, c)| match c {
            Check::Accepted { step, drift } => Some((*d, *step, *drift)),
            _ => None,
        });
        let mut replayed = checks.iter().any(|(_, c)| matches!(c, Check::Replayed));
        // The verdict counts only through a place claimed in the one order of attempts (a
        // compare-and-swap on the state a throttle decision was made on): a right code clears
        // the count, a wrong one is reserved as a failure. A code computed right while the
        // account went over its limit is refused like a wrong one (the answer is the limit's).
        if let Some((d, step, drift)) = accepted {
            self.second_factor_claim_success(account, audit_kind, now, meta)
                .await?;
            if self.store.accept_step(&d.id, step, drift, now).await? {
                self.audit(
                    now,
                    meta,
                    Event::own(audit_kind, "success", name).detail(&d.name),
                )
                .await?;
                return Ok(SecondFactorVerified::new(&account.id));
            }
            // Another request (on this node or another) accepted this step first.
            replayed = true;
        }
        let attempt = self
            .second_factor_guard(account, audit_kind, now, meta)
            .await?;
        let result = if replayed { "replay" } else { "failure" };
        let failure = Event::own(audit_kind, result, name);
        Err(self
            .second_factor_failed(attempt, account, failure, Error::InvalidCode, req)
            .await)
    }

    /// The rules checked before any second factor (code, recovery code, security key, recovery
    /// sign-in code) is looked at, without reserving an attempt (for steps that start
    /// something rather than answer it): a locked account is refused, and after
    /// [`Lockout::delay_after`] failures the account must wait; each refusal is audited as
    /// `audit_kind`.
    pub(super) async fn second_factor_check(
        &self,
        account: &AccountRecord,
        audit_kind: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<()> {
        self.refuse_locked_or_throttled(
            account,
            account.mfa_failures,
            account.mfa_last_failure_at,
            account.locked_at.is_some(),
            audit_kind,
            Request::new(now, meta),
        )
        .await
    }

    /// Refuses (and audits as `audit_kind`) an account that is `locked`, or that must still
    /// wait after `failures` failures, the last at `last_failure_at`.
    async fn refuse_locked_or_throttled(
        &self,
        account: &AccountRecord,
        failures: i64,
        last_failure_at: Option<UnixTime>,
        locked: bool,
        audit_kind: &str,
        req: Request<'_>,
    ) -> Result<()> {
        let Request { now, meta } = req;
        let name = account.name.as_str();
        if locked {
            self.audit(now, meta, Event::own(audit_kind, "locked", name))
                .await?;
            return Err(Error::AccountLocked);
        }
        if let Some(retry_after) =
            throttle_wait(&self.policy.lockout, failures, last_failure_at, now)
        {
            self.audit(now, meta, Event::own(audit_kind, "throttled", name))
                .await?;
            return Err(Error::RateLimited { retry_after });
        }
        Ok(())
    }

    /// The one guard in front of every second factor (code, recovery code, security key,
    /// recovery sign-in code, contact code, current password): refuses a locked or throttled
    /// account (audited as `audit_kind`), then reserves the attempt with one conditional
    /// update on the state that decision was made on. Between the reservation and its
    /// settlement the attempt counts as a failure, so concurrent guesses see it.
    pub(crate) async fn second_factor_guard(
        &self,
        account: &AccountRecord,
        audit_kind: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<Attempt> {
        self.claim(account, Claim::Reserve, audit_kind, now, meta)
            .await
    }

    /// For a factor checked before its place is claimed (an OTP code, pure computation): a
    /// right answer takes its place in the same order as reservations and clears the count in
    /// one conditional update, refused (and audited) like any attempt when the account is
    /// locked or throttled by then.
    pub(crate) async fn second_factor_claim_success(
        &self,
        account: &AccountRecord,
        audit_kind: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<()> {
        self.claim(account, Claim::Success, audit_kind, now, meta)
            .await
            .map(|_| ())
    }

    /// Claims a place in the account's one order of attempts: refuses a locked or throttled
    /// account (audited as `audit_kind`), then makes `claim`'s change with one
    /// compare-and-swap on the state that decision was made on, reading the account again
    /// when another attempt changed it first.
    async fn claim(
        &self,
        account: &AccountRecord,
        claim: Claim,
        audit_kind: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<Attempt> {
        let lock_after = i64::from(self.policy.lockout.lock_after);
        let (mut failures, mut last, mut locked) = (
            account.mfa_failures,
            account.mfa_last_failure_at,
            account.locked_at.is_some(),
        );
        let req = Request::new(now, meta);
        for _ in 0..RESERVE_TRIES {
            self.refuse_locked_or_throttled(account, failures, last, locked, audit_kind, req)
                .await?;
            if failures >= lock_after {
                // The last allowed attempt is being evaluated by another request; if that
                // request died long ago, its attempt failed.
                if last.is_some_and(|t| now.saturating_sub(t) >= STALE_RESERVATION_SECS) {
                    let stale = Attempt {
                        account_id: account.id.clone(),
                        before: last,
                        at: now,
                        count: failures,
                    };
                    let failure = Event::own(audit_kind, "locked", &account.name)
                        .detail("an unsettled attempt");
                    return Err(self
                        .second_factor_failed(stale, account, failure, Error::AccountLocked, req)
                        .await);
                }
                break;
            }
            let claimed = match claim {
                Claim::Reserve => {
                    self.store
                        .reserve_mfa_attempt(&account.id, failures, last, now, lock_after)
                        .await?
                }
                Claim::Success => {
                    self.store
                        .claim_mfa_success(&account.id, failures, last, lock_after)
                        .await?
                }
            };
            if claimed {
                return Ok(Attempt {
                    account_id: account.id.clone(),
                    before: last,
                    at: now,
                    count: failures.saturating_add(1),
                });
            }
            let fresh = self
                .store
                .account_by_id(&account.id)
                .await?
                .ok_or(Error::NotFound("account"))?;
            (failures, last, locked) = (
                fresh.mfa_failures,
                fresh.mfa_last_failure_at,
                fresh.locked_at.is_some(),
            );
        }
        self.audit(
            now,
            meta,
            Event::own(audit_kind, "throttled", &account.name),
        )
        .await?;
        Err(Error::RateLimited { retry_after: 1 })
    }

    /// The reserved attempt succeeded: the consecutive-failure count starts again at zero
    /// (a locked account stays locked).
    pub(crate) async fn second_factor_succeeded(&self, attempt: Attempt) -> Result<()> {
        self.store.reset_mfa_failures(&attempt.account_id).await
    }

    /// The reserved attempt was not evaluated (nothing live to check it against: an expired
    /// challenge, a spent ceremony, a store error): it is given back.
    pub(crate) async fn second_factor_void(&self, attempt: Attempt) -> Result<()> {
        self.store
            .release_mfa_attempt(&attempt.account_id, attempt.at, attempt.before)
            .await
    }

    /// A failed second factor of any kind. The attempt was counted when it was reserved; here
    /// the lock is decided (one conditional update, so exactly one failure locks), the failure
    /// is audited as `failure` (the step's own event: kind, result, detail), and the lock by
    /// the failure that caused it. Returns the error to answer: `AccountLocked` once locked,
    /// else `otherwise` (or the store's error).
    pub(crate) async fn second_factor_failed(
        &self,
        attempt: Attempt,
        account: &AccountRecord,
        failure: Event<'_>,
        otherwise: Error,
        req: Request<'_>,
    ) -> Error {
        let Request { now, meta } = req;
        let run = async {
            let lock_after = i64::from(self.policy.lockout.lock_after);
            // Only the attempt that brought the count to the limit can lock (each reservation
            // is one distinct increment); the others need no further statement.
            let count = if attempt.count >= lock_after {
                self.store
                    .settle_mfa_failure(&attempt.account_id, now, lock_after)
                    .await?
            } else {
                crate::store::FailureCount {
                    failures: attempt.count,
                    locked: false,
                    locked_now: false,
                }
            };
            self.audit(now, meta, failure).await?;
            if !count.locked {
                return Ok(otherwise);
            }
            if count.locked_now {
                let why = format!("{} consecutive failed attempts", count.failures);
                self.audit(
                    now,
                    meta,
                    Event::own(kind::ACCOUNT_LOCK, "success", &account.name)
                        .by("system")
                        .detail(&why),
                )
                .await?;
            }
            Ok::<Error, Error>(Error::AccountLocked)
        };
        match run.await {
            Ok(e) | Err(e) => e,
        }
    }
}

// Two consecutive codes: enrollment, assignment and resync of every OTP device kind (shared by
// `devices` and `tokens`).

/// Searches two consecutive codes for an OTP device: counters from `last_step + 1` (HOTP, up to
/// [`TOKEN_LOOK_AHEAD`] ahead), or ±[`ENROLL_WINDOW`] steps of `now` (TOTP). Used by assignment
/// and by resync of every OTP device kind.
pub(crate) fn find_consecutive(
    g: &Generator,
    last_step: Option<i64>,
    code1: &str,
    code2: &str,
    now: UnixTime,
) -> std::result::Result<mamori_otp::ConsecutiveMatch, mamori_otp::OtpError> {
    if g.params().kind == OtpKind::Hotp {
        let next = last_step
            .and_then(|s| u64::try_from(s).ok())
            .map_or(0, |s| s.saturating_add(1));
        g.find_consecutive_counter(code1, code2, next, TOKEN_LOOK_AHEAD)
    } else {
        g.find_consecutive_time(code1, code2, unix_u64(now), ENROLL_WINDOW)
    }
}

pub(crate) fn map_consecutive(e: OtpError) -> Error {
    match e {
        OtpError::NotConsecutive => Error::CodesNotConsecutive,
        OtpError::MalformedCode { expected } => Error::InvalidInput(format!(
            "the codes have the wrong format: expected {expected}"
        )),
        _ => Error::InvalidCode,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn no_delay_for_the_first_five_failures_then_doubling_up_to_the_maximum() {
        let l = Lockout::default();
        for f in 0..5 {
            assert_eq!(throttle_wait(&l, f, Some(100), 100), None, "{f}");
        }
        assert_eq!(throttle_wait(&l, 5, Some(100), 100), Some(1));
        assert_eq!(throttle_wait(&l, 5, Some(100), 101), None);
        assert_eq!(throttle_wait(&l, 6, Some(100), 100), Some(2));
        assert_eq!(throttle_wait(&l, 8, Some(100), 100), Some(8));
        assert_eq!(throttle_wait(&l, 8, Some(100), 105), Some(3));
        assert_eq!(throttle_wait(&l, 99, Some(100), 100), Some(60));
        assert_eq!(throttle_wait(&l, 99, Some(100), 160), None);
        let off = Lockout {
            delay_base_secs: 0,
            ..Lockout::default()
        };
        assert_eq!(throttle_wait(&off, 50, Some(100), 100), None);
    }

    #[test]
    fn the_default_lock_is_at_one_hundred_consecutive_failures() {
        // NIST SP 800-63B section 5.2.2.
        assert_eq!(Lockout::default().lock_after, 100);
        assert_eq!(Lockout::default().delay_after, 5);
    }
}

//! Recovery codes: a set of [`CODE_COUNT`] single-use codes that answer the sign-in's MFA step
//! like a device when the device is lost (docs/recovery.md).
//!
//! - **Format**: [`CODE_LEN`] characters from a 32-letter alphabet without the look-alikes
//!   `0 O 1 I`, shown as two groups of five (`7KQ2M-XW9RD`): 50 bits of entropy each. Input is
//!   read leniently (lower case, spaces and dashes ignored).
//! - **Storage**: Argon2id of the code under a random 16-byte salt per set (all codes of a set
//!   share it), with the parameters stored beside each hash. Modest parameters
//!   ([`HASH_M_KIB`] KiB, [`HASH_T`] passes) suffice because the codes are random: an offline
//!   attacker with the table must search 2^50 codes at an Argon2id evaluation each. One shared
//!   salt per set makes a sign-in attempt cost one evaluation (compared with every unused code
//!   in constant time) instead of ten; it lets a guess be tested against the ten codes of one
//!   account at once, a factor of 10 (3.3 bits) that the 50 bits absorb.
//! - **Single use**: a matching code is spent by one conditional update in the store; of two
//!   concurrent uses on any nodes exactly one succeeds.
//! - **Guessing**: failures count in the account's second-factor failure counter, with the same
//!   delays and lock as device codes.
//! - Regenerating replaces the set in one transaction; the old codes stop working at once.

use argon2::{Algorithm, Argon2, Params, Version};
use rand::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::clock::UnixTime;
use crate::error::{Error, Result, StoreError};
use crate::redacted::Redacted;
use crate::store::recovery::RecoveryCodeRecord;
use crate::store::AccountRecord;

use super::audit::{kind as audit_kind, Event};

use super::factor_changes::FactorChange;
use super::session::Authenticated;
use super::{new_id, RequestMeta, SecondFactorVerified, Service, ROOT};

/// Codes per set.
pub const CODE_COUNT: usize = 10;
/// Characters per code.
pub const CODE_LEN: usize = 10;
/// The console raises an alert when this many or fewer codes remain.
pub const LOW_CODES: usize = 2;
/// The alphabet: digits and capital letters without `0`, `1`, `I` and `O` (32 symbols, 5 bits).
pub const ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
/// Argon2id memory in KiB for new sets.
pub const HASH_M_KIB: u32 = 8 * 1024;
/// Argon2id passes for new sets.
pub const HASH_T: u32 = 2;
/// Argon2id lanes for new sets.
pub const HASH_P: u32 = 1;

/// Audit kinds of this module (defined with every other kind in [`super::audit::kind`], so
/// that modules which refer to another's kinds need not import each other).
pub use super::audit::kind::recovery as kind;

/// A normalized recovery code (the [`CODE_LEN`] symbols, no separators). Wiped on drop.
pub struct RecoveryCode(Zeroizing<String>);

impl std::fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryCode([redacted])")
    }
}

impl RecoveryCode {
    /// Reads user input leniently: case, spaces and dashes are ignored. `None` if what remains
    /// is not [`CODE_LEN`] symbols of the alphabet (a device code is never one: it has no
    /// letters and only 6–8 digits).
    pub fn parse(input: &str) -> Option<RecoveryCode> {
        let s: Zeroizing<String> = Zeroizing::new(
            input
                .chars()
                .filter(|c| !c.is_whitespace() && *c != '-')
                .map(|c| c.to_ascii_uppercase())
                .collect(),
        );
        let ok = s.len() == CODE_LEN && s.bytes().all(|b| ALPHABET.contains(&b));
        ok.then_some(RecoveryCode(s))
    }

    /// A random code.
    fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> RecoveryCode {
        let mut raw = Zeroizing::new([0u8; CODE_LEN]);
        rng.fill_bytes(raw.as_mut_slice());
        // 32 divides 256, so the low five bits of a uniform byte are uniform.
        let s: String = raw
            .iter()
            .map(|b| char::from(ALPHABET.get(usize::from(b & 31)).copied().unwrap_or(b'2')))
            .collect();
        RecoveryCode(Zeroizing::new(s))
    }

    /// The display form, two groups of five joined by a dash.
    pub fn display(&self) -> Zeroizing<String> {
        let (a, b) = self.0.split_at(CODE_LEN / 2);
        Zeroizing::new(format!("{a}-{b}"))
    }
}

/// A set just made: the codes are shown to the user once and never stored in the clear.
pub struct NewRecoveryCodes {
    /// The codes in display form.
    pub codes: Vec<Zeroizing<String>>,
    /// When they were made.
    pub created_at: UnixTime,
}

impl std::fmt::Debug for NewRecoveryCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewRecoveryCodes")
            .field("codes", &"[redacted]")
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// How many codes an account has left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryStatus {
    /// Codes in the set (0: none made yet).
    pub total: usize,
    /// Unused codes.
    pub remaining: usize,
    /// When the set was made.
    pub created_at: Option<UnixTime>,
}

impl RecoveryStatus {
    /// Whether the console should raise the alert (a set exists and [`LOW_CODES`] or fewer
    /// remain).
    pub fn low(&self) -> bool {
        self.total > 0 && self.remaining <= LOW_CODES
    }
}

/// The stored parameter string.
fn params_string(m: u32, t: u32, p: u32) -> String {
    format!("argon2id;m={m};t={t};p={p}")
}

/// Parses a stored parameter string.
fn parse_params(s: &str) -> Result<Params> {
    let bad = || {
        Error::from(StoreError::Corrupt(format!(
            "recovery code parameters {s:?}"
        )))
    };
    let mut parts = s.split(';');
    if parts.next() != Some("argon2id") {
        return Err(bad());
    }
    let mut get = |name: &str| -> Result<u32> {
        parts
            .next()
            .and_then(|kv| kv.strip_prefix(name))
            .and_then(|v| v.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .ok_or_else(bad)
    };
    let (m, t, p) = (get("m")?, get("t")?, get("p")?);
    Params::new(m, t, p, Some(32)).map_err(|_| bad())
}

/// Argon2id of a code (32 bytes).
fn hash_code(code: &RecoveryCode, salt: &[u8], params: Params) -> Result<Vec<u8>> {
    let mut out = vec![0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(code.0.as_bytes(), salt, &mut out)
        .map_err(|e| Error::Internal(format!("recovery code hash: {e}")))?;
    Ok(out)
}

/// The status of a stored set.
pub fn status_of(codes: &[RecoveryCodeRecord]) -> RecoveryStatus {
    RecoveryStatus {
        total: codes.len(),
        remaining: codes.iter().filter(|c| c.used_at.is_none()).count(),
        created_at: codes.first().map(|c| c.created_at),
    }
}

impl Service {
    /// An administrator's MFA reset for a user who cannot recover alone: needs a full
    /// administrator session that gave a second factor in the last 5 minutes; refuses root
    /// (only `mamori-server admin recover-root` on the host resets root). Removes the user's
    /// devices and recovery codes, ends the user's sessions, and marks the account so that its
    /// next sign-in may only enroll a device. Audited (`mfa.reset`) and notified.
    pub async fn admin_reset_mfa(
        &self,
        admin: &Authenticated,
        user: &str,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<u64> {
        self.require_admin(admin, "reset MFA", now, meta).await?;
        let account = self.account(user).await?;
        let allowed = self
            .authorize_factor_change(
                &admin.account,
                &admin.session,
                &account,
                FactorChange::ResetMfa,
                now,
                meta,
            )
            .await?;
        let actor = allowed.admin().unwrap_or(&admin.account.name);
        self.store.delete_recovery_codes(&account.id).await?;
        self.store.set_enroll_required(&account.id, now).await?;
        self.reset_mfa(actor, user, now, meta).await
    }

    /// The last resort for root, run on the server host: removes root's devices and recovery
    /// codes, ends its sessions, requires enrollment at the next sign-in, and returns a new
    /// one-time setup link (valid 1 hour) to choose a password. Loudly audited (a warning in
    /// the server log and `account.recover_root`) and notified.
    pub async fn recover_root<R: RngCore + CryptoRng + Send>(
        &self,
        now: UnixTime,
        rng: &mut R,
    ) -> Result<Zeroizing<String>> {
        let meta = RequestMeta::cli();
        let root = self.account(ROOT).await?;
        self.store.delete_recovery_codes(&root.id).await?;
        self.store.set_enroll_required(&root.id, now).await?;
        let removed = self
            .reset_mfa("mamori-server admin recover-root", ROOT, now, &meta)
            .await?;
        let link = self.root_setup_link(now, rng).await?;
        let detail = format!("{removed} devices removed; a new setup link was issued");
        tracing::warn!(removed, "ROOT RECOVERY: root's MFA devices and recovery codes were removed on the server host and a one-time setup link was issued");
        self.audit(
            now,
            &meta,
            Event::own(kind::RECOVER_ROOT, "success", ROOT)
                .by("admin-cli")
                .detail(&detail),
        )
        .await?;
        self.notify_event(&root, super::notify::NoticeKind::RootRecovery, now, &meta)
            .await;
        Ok(link)
    }

    /// How many recovery codes the account has left.
    pub async fn recovery_status(&self, account: &AccountRecord) -> Result<RecoveryStatus> {
        Ok(status_of(&self.store.recovery_codes(&account.id).await?))
    }

    /// Makes a new set of recovery codes, replacing (and so invalidating) the old set. Needs a
    /// full session that gave a second factor in the last 5 minutes, and an enabled MFA device
    /// (the codes answer the MFA step, which only accounts with a device have).
    pub async fn generate_recovery_codes<R: RngCore + CryptoRng + Send>(
        &self,
        auth: &Authenticated,
        now: UnixTime,
        rng: &mut R,
        meta: &RequestMeta,
    ) -> Result<NewRecoveryCodes> {
        let name = auth.account.name.as_str();
        self.authorize_own(auth, FactorChange::RegenerateRecoveryCodes, now, meta)
            .await?;
        if auth.enabled_devices == 0 {
            return Err(Error::InvalidDeviceState(
                "assign an MFA device before making recovery codes".into(),
            ));
        }
        let codes: Vec<RecoveryCode> = (0..CODE_COUNT)
            .map(|_| RecoveryCode::generate(rng))
            .collect();
        let mut salt = vec![0u8; 16];
        rng.fill_bytes(&mut salt);
        let set_id = new_id(rng);
        let params = Params::new(HASH_M_KIB, HASH_T, HASH_P, Some(32))
            .map_err(|e| Error::Internal(format!("argon2 parameters: {e}")))?;
        let (hashes, codes) = {
            let salt = salt.clone();
            super::password::argon2_blocking(move || {
                let hashes: Result<Vec<Vec<u8>>> = codes
                    .iter()
                    .map(|c| hash_code(c, &salt, params.clone()))
                    .collect();
                hashes.map(|h| (h, codes))
            })
            .await??
        };
        let records: Vec<RecoveryCodeRecord> = hashes
            .into_iter()
            .enumerate()
            .map(|(i, hash)| RecoveryCodeRecord {
                account_id: auth.account.id.clone(),
                idx: i64::try_from(i).unwrap_or(i64::MAX),
                set_id: set_id.clone(),
                params: params_string(HASH_M_KIB, HASH_T, HASH_P),
                salt: Redacted::new(salt.clone()),
                hash: Redacted::new(hash),
                created_at: now,
                used_at: None,
            })
            .collect();
        self.store
            .replace_recovery_codes(&auth.account.id, &records)
            .await?;
        self.audit(now, meta, Event::own(kind::CODES_GENERATE, "success", name))
            .await?;
        self.notify_event(
            &auth.account,
            super::notify::NoticeKind::RecoveryCodesGenerated,
            now,
            meta,
        )
        .await;
        Ok(NewRecoveryCodes {
            codes: codes.iter().map(RecoveryCode::display).collect(),
            created_at: now,
        })
    }

    /// Answers the MFA step with a recovery code: the lock and throttle rules of device codes
    /// apply and a failure counts in the same counter; a matching unused code is spent
    /// atomically. `audit_as` is the audit kind of the step (`sign_in.mfa`).
    pub async fn verify_recovery_code(
        &self,
        account: &AccountRecord,
        code: &RecoveryCode,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<SecondFactorVerified> {
        let name = account.name.as_str();
        let attempt = self
            .second_factor_guard(account, kind::CODE_USE, now, meta)
            .await?;
        let stored = self.store.recovery_codes(&account.id).await?;
        let mut matched: Option<(String, i64)> = None;
        let mut spent_match = false;
        if let Some(first) = stored.first() {
            let params = parse_params(&first.params)?;
            let salt = first.salt.expose().clone();
            let code = RecoveryCode(code.0.clone());
            let candidate =
                super::password::argon2_blocking(move || hash_code(&code, &salt, params)).await??;
            // Compare with every code of the set without stopping at the first match.
            for c in &stored {
                if c.set_id == first.set_id && bool::from(c.hash.expose().ct_eq(&candidate)) {
                    if c.used_at.is_none() {
                        matched = Some((c.set_id.clone(), c.idx));
                    } else {
                        spent_match = true;
                    }
                }
            }
        }
        if let Some((set_id, idx)) = matched {
            if self
                .store
                .use_recovery_code(&account.id, &set_id, idx, now)
                .await?
            {
                self.second_factor_succeeded(attempt).await?;
                let remaining = status_of(&self.store.recovery_codes(&account.id).await?).remaining;
                let detail = format!("{remaining} codes remain");
                self.audit(
                    now,
                    meta,
                    Event::own(kind::CODE_USE, "success", name).detail(&detail),
                )
                .await?;
                self.audit(
                    now,
                    meta,
                    Event::own(audit_kind::SIGN_IN_MFA, "success", name).detail("recovery code"),
                )
                .await?;
                self.notify_event(
                    account,
                    super::notify::NoticeKind::RecoveryCodeUsed { remaining },
                    now,
                    meta,
                )
                .await;
                return Ok(SecondFactorVerified::new(&account.id));
            }
            // Another request spent it first.
            spent_match = true;
        }
        let result = if spent_match { "reused" } else { "failure" };
        Err(self
            .second_factor_failed(
                attempt,
                account,
                Event::own(kind::CODE_USE, result, &account.name),
                Error::InvalidCode,
                super::Request::new(now, meta),
            )
            .await)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn input_is_read_leniently_and_device_codes_are_not_recovery_codes() {
        let c = RecoveryCode::parse(" 7kq2m-xw9rd ").unwrap();
        assert_eq!(c.display().as_str(), "7KQ2M-XW9RD");
        assert!(RecoveryCode::parse("7KQ2MXW9RD").is_some());
        assert!(RecoveryCode::parse("123456").is_none());
        assert!(RecoveryCode::parse("12345678").is_none());
        // Look-alikes are not in the alphabet.
        assert!(RecoveryCode::parse("0KQ2M-XW9RD").is_none());
        assert!(RecoveryCode::parse("IKQ2M-XW9RD").is_none());
        assert!(RecoveryCode::parse("7KQ2M-XW9R").is_none());
        assert!(RecoveryCode::parse("7KQ2M-XW9RDD").is_none());
        assert_eq!(format!("{c:?}"), "RecoveryCode([redacted])");
    }

    #[test]
    fn generated_codes_use_the_whole_alphabet_and_differ() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut seen = std::collections::HashSet::new();
        let mut symbols = std::collections::HashSet::new();
        for _ in 0..500 {
            let c = RecoveryCode::generate(&mut rng);
            let shown = c.display();
            assert_eq!(shown.len(), CODE_LEN + 1);
            assert!(RecoveryCode::parse(&shown).is_some());
            symbols.extend(c.0.bytes());
            assert!(seen.insert(c.0.to_string()));
        }
        assert_eq!(symbols.len(), 32);
    }

    #[test]
    fn params_round_trip_and_bad_ones_are_refused() {
        let p = parse_params(&params_string(HASH_M_KIB, HASH_T, HASH_P)).unwrap();
        assert_eq!(
            (p.m_cost(), p.t_cost(), p.p_cost()),
            (HASH_M_KIB, HASH_T, HASH_P)
        );
        assert!(parse_params("argon2i;m=8;t=1;p=1").is_err());
        assert!(parse_params("argon2id;m=8;t=1").is_err());
        assert!(parse_params("argon2id;t=8;m=1;p=1").is_err());
    }

    #[test]
    fn the_hash_depends_on_code_and_salt() {
        let p = Params::new(64, 1, 1, Some(32)).unwrap();
        let a = RecoveryCode::parse("AAAAA-BBBBB").unwrap();
        let b = RecoveryCode::parse("AAAAA-BBBBC").unwrap();
        let h = hash_code(&a, &[1; 16], p.clone()).unwrap();
        assert_eq!(h, hash_code(&a, &[1; 16], p.clone()).unwrap());
        assert_ne!(h, hash_code(&b, &[1; 16], p.clone()).unwrap());
        assert_ne!(h, hash_code(&a, &[2; 16], p).unwrap());
    }

    #[test]
    fn low_alert_at_two_or_fewer() {
        let s = |total, remaining| RecoveryStatus {
            total,
            remaining,
            created_at: Some(1),
        };
        assert!(!s(0, 0).low());
        assert!(!s(10, 3).low());
        assert!(s(10, 2).low());
        assert!(s(10, 0).low());
    }
}

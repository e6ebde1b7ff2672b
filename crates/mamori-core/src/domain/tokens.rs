//! Hardware OTP tokens: the inventory an administrator fills from a vendor's seed file (RFC 6030
//! PSKC or the simple CSV, read by `mamori-pskc`), and the assignment of one token to a user by
//! its serial number plus two consecutive codes, after which it is an MFA device of kind
//! `hardware_otp` like any other (same device limit, replay rule, lockout and audit).
//!
//! - Import takes a file whole or not at all: the parser refuses the whole file on any problem,
//!   and the store inserts every token in one transaction, refusing it all if one serial is
//!   already in the inventory.
//! - Secrets are sealed with the server key as soon as they are read: with `hw_token:ID` as the
//!   associated data in the inventory, then resealed for the device row (its id as associated
//!   data, like a virtual device) when assigned.
//! - HOTP tokens (RFC 4226): assignment and resync search [`TOKEN_LOOK_AHEAD`] counter values
//!   ahead of the last known one for the two consecutive codes (section 7.4's resynchronisation:
//!   "the server asks for another (or several) OTP values"); TOTP tokens (RFC 6238) are searched
//!   ±[`ENROLL_WINDOW`](super::ENROLL_WINDOW) steps like virtual devices.

use mamori_otp::{OtpKind, Secret};
use mamori_pskc::{Decryption, PskcError, Token};
use rand::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::clock::UnixTime;
use crate::error::{Error, Result};
use crate::store::tokens::{TokenListing, TokenRecord};
use crate::store::{AccountRecord, DeviceKind, DeviceRecord, Redacted};

use super::audit::{kind as audit_kind, Event};
use super::factor_changes::FactorChange;
use super::factors::{find_consecutive, map_consecutive};
use super::session::Authenticated;
/// Re-exported: the HOTP look-ahead of assignment and resync (defined with the other windows).
pub use super::TOKEN_LOOK_AHEAD;
use super::{check_name, new_id, Request, SecondFactorVerified, Service};

/// Audit kinds of this module (defined with every other kind in [`super::audit::kind`], so
/// that modules which refer to another's kinds need not import each other).
pub use super::audit::kind::tokens as kind;

/// The format of a seed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFileFormat {
    /// RFC 6030 PSKC XML.
    Pskc,
    /// `serial,secret_hex,type,digits,period_or_counter` lines.
    Csv,
}

impl TokenFileFormat {
    /// Parses `pskc` or `csv`.
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "pskc" | "xml" => Ok(TokenFileFormat::Pskc),
            "csv" => Ok(TokenFileFormat::Csv),
            other => Err(Error::InvalidInput(format!(
                "the token file format must be pskc or csv, not {other:?}"
            ))),
        }
    }

    /// Guesses the format from the content: XML starts with `<` (after a byte-order mark and
    /// white space).
    pub fn sniff(bytes: &[u8]) -> Self {
        let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        match body.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'<') => TokenFileFormat::Pskc,
            _ => TokenFileFormat::Csv,
        }
    }

    /// Stored and wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenFileFormat::Pskc => "pskc",
            TokenFileFormat::Csv => "csv",
        }
    }
}

/// How to decrypt an encrypted PSKC file. Wiped on drop.
pub enum TokenFileKey {
    /// Plaintext file.
    None,
    /// RFC 6030 section 6.1 pre-shared AES key (raw bytes).
    PreSharedKey(Zeroizing<Vec<u8>>),
    /// RFC 6030 section 6.2 password (PBKDF2).
    Password(Zeroizing<Vec<u8>>),
}

impl std::fmt::Debug for TokenFileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TokenFileKey::None => "None",
            TokenFileKey::PreSharedKey(_) => "PreSharedKey([redacted])",
            TokenFileKey::Password(_) => "Password([redacted])",
        })
    }
}

impl TokenFileKey {
    /// From the administrator's `--psk HEX` (any case, `0x`, spaces or colons allowed).
    pub fn psk_hex(hex: &str) -> Result<Self> {
        mamori_pskc::decode_psk_hex(hex)
            .map(TokenFileKey::PreSharedKey)
            .map_err(|e| Error::InvalidInput(format!("the pre-shared key {e}")))
    }

    fn decryption(&self) -> Decryption<'_> {
        match self {
            TokenFileKey::None => Decryption::None,
            TokenFileKey::PreSharedKey(k) => Decryption::PreSharedKey(k),
            TokenFileKey::Password(p) => Decryption::Password(p),
        }
    }
}

/// A token to assign: its serial number, the name the device gets, and two consecutive codes
/// it showed (the proof of holding it).
#[derive(Debug, Clone, Copy)]
pub struct TokenAssignment<'a> {
    /// The serial number printed on the token.
    pub serial: &'a str,
    /// The name of the new device.
    pub name: &'a str,
    /// A code the token showed.
    pub code1: &'a str,
    /// The code it showed next.
    pub code2: &'a str,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    /// Tokens imported.
    pub imported: usize,
    /// Of which HOTP.
    pub hotp: usize,
    /// Of which TOTP.
    pub totp: usize,
}

/// Why a seed file was refused; the message comes from the parser and never holds a secret.
pub fn refused(e: &PskcError) -> Error {
    Error::InvalidInput(format!(
        "the token file was refused and nothing was imported: {e}"
    ))
}

fn token_ad(id: &str) -> Vec<u8> {
    format!("hw_token:{id}").into_bytes()
}

fn record_for(
    svc: &Service,
    t: &Token,
    actor: &str,
    now: UnixTime,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<TokenRecord> {
    let id = new_id(rng);
    let hotp = t.params.kind == OtpKind::Hotp;
    if !matches!(t.params.kind, OtpKind::Hotp | OtpKind::Totp) {
        return Err(Error::InvalidInput(format!(
            "token {:?}: only HOTP and TOTP tokens are supported",
            t.serial
        )));
    }
    Ok(TokenRecord {
        secret_sealed: Redacted::new(svc.key.seal(rng, &token_ad(&id), t.secret.as_bytes())?),
        id,
        serial: t.serial.clone(),
        manufacturer: t.manufacturer.clone(),
        model: t.model.clone(),
        otp_type: if hotp { "hotp" } else { "totp" }.into(),
        algorithm: t.params.algorithm.as_str().to_string(),
        digits: i64::from(t.params.digits),
        period: if hotp {
            30
        } else {
            i64::try_from(t.params.period).unwrap_or(30)
        },
        counter: if hotp {
            i64::try_from(t.params.counter).unwrap_or(i64::MAX)
        } else {
            0
        },
        time_drift: t.time_drift.unwrap_or(0),
        imported_at: now,
        imported_by: Some(actor.to_string()),
        device_id: None,
    })
}

impl Service {
    /// Imports a seed file into the token inventory, whole or not at all. Audited as
    /// `token.import` with the count or the reason for refusal.
    pub async fn import_tokens<R: RngCore + CryptoRng + Send>(
        &self,
        actor: &str,
        bytes: &[u8],
        format: TokenFileFormat,
        key: &TokenFileKey,
        req: Request<'_>,
        rng: &mut R,
    ) -> Result<ImportSummary> {
        let Request { now, meta } = req;
        let result = self.import_inner(actor, bytes, format, key, now, rng).await;
        let detail = match &result {
            Ok(s) => format!(
                "{} tokens from a {} file ({} HOTP, {} TOTP)",
                s.imported,
                format.as_str(),
                s.hotp,
                s.totp
            ),
            Err(e) => format!("{} file refused: {e}", format.as_str()),
        };
        let label = if result.is_ok() { "success" } else { "failure" };
        let event = super::audit::Event {
            kind: kind::TOKEN_IMPORT,
            result: label,
            account: None,
            actor: Some(actor),
            detail: Some(&detail),
        };
        self.audit(now, meta, event).await?;
        result
    }

    async fn import_inner<R: RngCore + CryptoRng + Send>(
        &self,
        actor: &str,
        bytes: &[u8],
        format: TokenFileFormat,
        key: &TokenFileKey,
        now: UnixTime,
        rng: &mut R,
    ) -> Result<ImportSummary> {
        let tokens = match format {
            TokenFileFormat::Pskc => {
                let parsed = {
                    let bytes = bytes.to_vec();
                    let key = match key {
                        TokenFileKey::None => TokenFileKey::None,
                        TokenFileKey::PreSharedKey(k) => TokenFileKey::PreSharedKey(k.clone()),
                        TokenFileKey::Password(p) => TokenFileKey::Password(p.clone()),
                    };
                    // PBKDF2 may be slow: keep it off the async workers.
                    tokio::task::spawn_blocking(move || {
                        mamori_pskc::parse_pskc(&bytes, key.decryption())
                    })
                    .await
                    .map_err(|e| Error::Internal(e.to_string()))?
                };
                parsed.map_err(|e| refused(&e))?
            }
            TokenFileFormat::Csv => {
                if !matches!(key, TokenFileKey::None) {
                    return Err(Error::InvalidInput(
                        "a CSV token file is not encrypted: leave out --psk and --password-file"
                            .into(),
                    ));
                }
                mamori_pskc::parse_csv(bytes).map_err(|e| refused(&e))?
            }
        };
        if tokens.is_empty() {
            return Err(Error::InvalidInput(
                "the token file holds no tokens; nothing was imported".into(),
            ));
        }
        let records = tokens
            .iter()
            .map(|t| record_for(self, t, actor, now, rng))
            .collect::<Result<Vec<_>>>()?;
        self.store
            .tokens_import(&records)
            .await
            .map_err(|e| match e {
                Error::Conflict(m) => Error::Conflict(format!("{m}; nothing was imported")),
                other => other,
            })?;
        let hotp = records.iter().filter(|r| r.otp_type == "hotp").count();
        Ok(ImportSummary {
            imported: records.len(),
            hotp,
            totp: records.len() - hotp,
        })
    }

    /// A page of the inventory, by serial.
    pub async fn list_tokens(&self, after: Option<&str>, limit: i64) -> Result<Vec<TokenListing>> {
        self.store.tokens_list(after, limit).await
    }

    /// Assigns the token with `serial` to `user` (the session's own account when `None`),
    /// proven by two consecutive codes, under the one rule for factor changes
    /// ([`Service::authorize_factor_change`]): the account itself (with a second factor from
    /// the last 5 minutes when it already has MFA), or an administrator with a recent second
    /// factor of their own, for anyone but root. Audited as a token assignment and as an MFA
    /// device enable, which notifies the user. Assigning proves possession, so the account's
    /// own assignment yields a [`SecondFactorVerified`] (an enrollment-restricted session may
    /// then be upgraded); an administrator's does not.
    pub async fn assign_token<R: RngCore + CryptoRng + Send>(
        &self,
        auth: &Authenticated,
        user: Option<&str>,
        token: TokenAssignment<'_>,
        req: Request<'_>,
        rng: &mut R,
    ) -> Result<(DeviceRecord, Option<SecondFactorVerified>)> {
        let Request { now, meta } = req;
        let TokenAssignment { serial, name, .. } = token;
        let target = self.factor_target(auth, user, now, meta).await?;
        let allowed = self
            .authorize_factor_change(
                &auth.account,
                &auth.session,
                &target,
                FactorChange::AssignToken,
                now,
                meta,
            )
            .await?;
        let result = self.assign_checked(&target, token, now, rng).await;
        let label = match &result {
            Ok(_) => "success",
            Err(Error::CodesNotConsecutive) => "not_consecutive",
            Err(Error::InvalidCode) => "failure",
            Err(Error::NotFound(_)) => "unknown_serial",
            Err(Error::DeviceLimitReached(_)) => "device_limit",
            Err(Error::Conflict(_)) => "conflict",
            Err(_) => "error",
        };
        let detail = format!("serial {serial} as {name}");
        let actor = allowed.admin().unwrap_or(&target.name);
        self.audit(
            now,
            meta,
            Event::own(kind::TOKEN_ASSIGN, label, &target.name)
                .by(actor)
                .detail(&detail),
        )
        .await?;
        let device = result?;
        // The device change every other kind of device records (and the user is told of).
        self.audit(
            now,
            meta,
            Event::own(audit_kind::MFA_ENABLE, "success", &target.name)
                .by(actor)
                .detail(name),
        )
        .await?;
        let proof = allowed
            .admin()
            .is_none()
            .then(|| SecondFactorVerified::new(&target.id));
        Ok((device, proof))
    }

    /// Checks `token` (known, not assigned yet, two consecutive codes) and makes it a device
    /// of `account`.
    async fn assign_checked<R: RngCore + CryptoRng + Send>(
        &self,
        account: &AccountRecord,
        token: TokenAssignment<'_>,
        now: UnixTime,
        rng: &mut R,
    ) -> Result<DeviceRecord> {
        let TokenAssignment {
            serial,
            name,
            code1,
            code2,
        } = token;
        check_name("the device name", name)?;
        let listing = self
            .store
            .token_by_serial(serial.trim())
            .await?
            .ok_or(Error::NotFound("token serial"))?;
        let t = listing.token;
        if t.device_id.is_some() {
            return Err(Error::Conflict(
                "this token is already assigned to a user".into(),
            ));
        }
        let secret = self.key.open(&token_ad(&t.id), t.secret_sealed.expose())?;
        let id = new_id(rng);
        let mut device = DeviceRecord {
            id: id.clone(),
            account_id: account.id.clone(),
            kind: DeviceKind::HardwareOtp,
            name: name.to_string(),
            serial: t.serial.clone(),
            created_at: now,
            enabled_at: Some(now),
            last_used_at: None,
            secret_sealed: Some(Redacted::new(self.key.seal(rng, id.as_bytes(), &secret)?)),
            otp_type: t.otp_type.clone(),
            algorithm: t.algorithm.clone(),
            digits: t.digits,
            period: t.period,
            drift: 0,
            last_step: None,
            credential: None,
        };
        let g = self.generator(&device)?;
        // The vendor's counter is the next value the token will show; start the search there.
        let before = (t.otp_type == "hotp").then(|| t.counter.saturating_sub(1));
        let m = find_consecutive(&g, before, code1, code2, now).map_err(map_consecutive)?;
        device.drift = m.drift;
        device.last_step = Some(i64::try_from(m.last_step).unwrap_or(i64::MAX));
        device.last_used_at = Some(now);
        self.store
            .token_assign(&t.id, &device, i64::from(self.policy.max_devices))
            .await?;
        Ok(device)
    }
}

/// The secret of an inventory token, for tests that check what was sealed.
#[doc(hidden)]
pub fn open_token_secret(svc: &Service, t: &TokenRecord) -> Result<Secret> {
    let bytes = svc.key.open(&token_ad(&t.id), t.secret_sealed.expose())?;
    Secret::from_bytes(bytes.to_vec()).map_err(|e| Error::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_is_guessed_from_the_first_character() {
        assert_eq!(
            TokenFileFormat::sniff(b"\xEF\xBB\xBF  \n<?xml version='1.0'?>"),
            TokenFileFormat::Pskc
        );
        assert_eq!(
            TokenFileFormat::sniff(b"# serial,secret\nA1,3132,hotp,6,0\n"),
            TokenFileFormat::Csv
        );
        assert!(TokenFileFormat::parse("PSKC").is_ok());
        assert!(TokenFileFormat::parse("json").is_err());
    }

    #[test]
    fn keys_are_redacted_and_a_bad_psk_names_the_problem_not_the_key() {
        let k = TokenFileKey::Password(Zeroizing::new(b"qwerty".to_vec()));
        assert_eq!(format!("{k:?}"), "Password([redacted])");
        let e = TokenFileKey::psk_hex("12345g").map(|_| ()).err();
        let msg = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("hexadecimal"), "{msg}");
        assert!(!msg.contains("12345g"), "{msg}");
    }
}

//! Code generation: RFC 4226 HOTP with dynamic truncation, RFC 6238 TOTP on top of it, and Steam
//! Guard's five-character variant.

use std::fmt;

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha512};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{Algorithm, OtpError, Secret};

/// The characters of a Steam Guard code, indexed by `value % 26`, least significant first.
pub const STEAM_ALPHABET: &[u8; 26] = b"23456789BCDFGHJKMNPQRTVWXY";

/// Steam Guard codes are five characters long.
const STEAM_CODE_LEN: u32 = 5;

/// Which kind of one-time password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OtpKind {
    /// Time-based (RFC 6238).
    Totp,
    /// Counter-based (RFC 4226).
    Hotp,
    /// Steam Guard: TOTP, SHA-1, 30 s, five characters from [`STEAM_ALPHABET`].
    Steam,
}

impl OtpKind {
    /// Lower-case name as used in key URIs and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            OtpKind::Totp => "totp",
            OtpKind::Hotp => "hotp",
            OtpKind::Steam => "steam",
        }
    }

    /// Whether codes depend on the time (TOTP and Steam) rather than a counter.
    pub fn is_time_based(self) -> bool {
        !matches!(self, OtpKind::Hotp)
    }
}

impl fmt::Display for OtpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for OtpKind {
    type Err = OtpError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "totp" => Ok(OtpKind::Totp),
            "hotp" => Ok(OtpKind::Hotp),
            "steam" => Ok(OtpKind::Steam),
            _ => Err(OtpError::UnsupportedType(s.to_string())),
        }
    }
}

/// Everything about an OTP account except its secret and labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OtpParams {
    /// TOTP, HOTP or Steam.
    pub kind: OtpKind,
    /// HMAC hash function. Steam is always SHA-1.
    pub algorithm: Algorithm,
    /// Code length, 6 to 10. Steam is always 5.
    pub digits: u32,
    /// TOTP time step in seconds (RFC 6238 "X"), at least 1. Steam is always 30.
    pub period: u64,
    /// HOTP moving factor: the counter of the *next* code. Ignored for time-based kinds.
    pub counter: u64,
}

impl Default for OtpParams {
    /// The defaults of the Key URI format and of every phone app: TOTP, SHA-1, 6 digits, 30 s.
    fn default() -> Self {
        OtpParams {
            kind: OtpKind::Totp,
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: 30,
            counter: 0,
        }
    }
}

impl OtpParams {
    /// Default TOTP parameters.
    pub fn totp() -> Self {
        Self::default()
    }

    /// Default HOTP parameters starting at `counter`.
    pub fn hotp(counter: u64) -> Self {
        OtpParams {
            kind: OtpKind::Hotp,
            counter,
            ..Self::default()
        }
    }

    /// Steam Guard parameters (fixed by Steam).
    pub fn steam() -> Self {
        OtpParams {
            kind: OtpKind::Steam,
            algorithm: Algorithm::Sha1,
            digits: STEAM_CODE_LEN,
            period: 30,
            counter: 0,
        }
    }

    /// Checks the ranges and returns the parameters with Steam's fixed values applied.
    pub fn validated(self) -> Result<Self, OtpError> {
        if self.kind == OtpKind::Steam {
            return Ok(OtpParams::steam());
        }
        if !(6..=10).contains(&self.digits) {
            return Err(OtpError::InvalidDigits(self.digits));
        }
        if self.kind == OtpKind::Totp && self.period == 0 {
            return Err(OtpError::InvalidPeriod(self.period));
        }
        Ok(self)
    }
}

/// Longest code: 10 digits (Steam codes have 5 characters).
const MAX_CODE_LEN: usize = 10;

/// A one-time code, stored inline (no allocation on the hot path of window verification). Its
/// characters are wiped on drop; `Display` shows it (it is meant to be shown), `Debug` does not.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Code {
    buf: [u8; MAX_CODE_LEN],
    len: u8,
}

impl Code {
    /// Builds a code from ASCII characters, most significant first.
    fn from_ascii(chars: impl Iterator<Item = u8>) -> Self {
        let mut buf = [0u8; MAX_CODE_LEN];
        let mut len = 0u8;
        for (slot, c) in buf.iter_mut().zip(chars) {
            *slot = c;
            len += 1;
        }
        Code { buf, len }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and Steam letters are ever stored, so this is always valid UTF-8.
        self.buf
            .get(..usize::from(self.len))
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Code([redacted])")
    }
}

/// HMAC with the key already absorbed: RFC 2104's inner and outer pads are hashed once, and each
/// code clones that state instead of re-keying. This is what makes window verification cheap.
#[derive(Clone)]
enum KeyedMac {
    Sha1(Hmac<Sha1>),
    Sha256(Hmac<Sha256>),
    Sha512(Hmac<Sha512>),
}

/// Generates and verifies codes for one secret and one set of parameters.
///
/// Construct once per secret and reuse; it holds the keyed HMAC state, which is derived from the
/// secret and therefore secret itself (it is not printed by `Debug`).
#[derive(Clone)]
pub struct Generator {
    mac: KeyedMac,
    params: OtpParams,
}

impl fmt::Debug for Generator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generator")
            .field("params", &self.params)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// 10^n for n in 0..=10, for the modulo in RFC 4226 section 5.3 step 3.
const POW10: [u64; 11] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
];

impl Generator {
    /// Prepares a generator. Fails only on invalid parameters.
    pub fn new(secret: &Secret, params: OtpParams) -> Result<Self, OtpError> {
        let params = params.validated()?;
        // HMAC accepts keys of any length (RFC 2104 section 2), so `new_from_slice` cannot fail;
        // the error arm only keeps the types honest.
        let key = secret.as_bytes();
        let invalid = |_| OtpError::EmptySecret;
        let mac = match params.algorithm {
            Algorithm::Sha1 => KeyedMac::Sha1(Hmac::new_from_slice(key).map_err(invalid)?),
            Algorithm::Sha256 => KeyedMac::Sha256(Hmac::new_from_slice(key).map_err(invalid)?),
            Algorithm::Sha512 => KeyedMac::Sha512(Hmac::new_from_slice(key).map_err(invalid)?),
        };
        Ok(Generator { mac, params })
    }

    /// The (validated) parameters.
    pub fn params(&self) -> &OtpParams {
        &self.params
    }

    /// Length of the codes this generator produces.
    pub fn code_len(&self) -> usize {
        self.params.digits as usize
    }

    /// RFC 4226 section 5.3: HMAC the 8-byte big-endian counter, then dynamic truncation to a
    /// 31-bit integer.
    pub(crate) fn truncated(&self, counter: u64) -> u32 {
        let msg = counter.to_be_bytes();
        match &self.mac {
            KeyedMac::Sha1(m) => dynamic_truncation(&finish(m.clone(), &msg)),
            KeyedMac::Sha256(m) => dynamic_truncation(&finish(m.clone(), &msg)),
            KeyedMac::Sha512(m) => dynamic_truncation(&finish(m.clone(), &msg)),
        }
    }

    /// The code for HOTP counter (or TOTP time step) `counter`.
    pub fn at_counter(&self, counter: u64) -> Code {
        let value = self.truncated(counter);
        match self.params.kind {
            OtpKind::Steam => Code::from_ascii(steam_chars(value)),
            OtpKind::Totp | OtpKind::Hotp => {
                let digits = self.params.digits as usize;
                let n = u64::from(value) % POW10.get(digits).copied().unwrap_or(POW10[10]);
                // Most significant digit first, zero-padded to `digits`.
                Code::from_ascii(
                    POW10
                        .iter()
                        .take(digits)
                        .rev()
                        .map(|p| b'0' + ((n / p) % 10) as u8),
                )
            }
        }
    }

    /// RFC 6238 section 4.2: T = floor((time - T0) / X) with T0 = 0.
    pub fn step_at(&self, unix_time: u64) -> u64 {
        unix_time / self.params.period.max(1)
    }

    /// Seconds left until the code for `unix_time` changes.
    pub fn seconds_left(&self, unix_time: u64) -> u64 {
        let period = self.params.period.max(1);
        period - unix_time % period
    }

    /// The time-based code at `unix_time` (for HOTP, use [`Generator::at_counter`]).
    pub fn at_time(&self, unix_time: u64) -> Code {
        self.at_counter(self.step_at(unix_time))
    }

    /// Normalises a code typed by a person (spaces removed, Steam letters upper-cased) and checks
    /// its shape. Returns `None` if it cannot be a code of this generator.
    pub(crate) fn normalise_input(&self, input: &str) -> Option<Code> {
        let mut chars = input
            .bytes()
            .filter(|c| !c.is_ascii_whitespace() && *c != b'-')
            .map(|c| c.to_ascii_uppercase());
        let mut buf = [0u8; MAX_CODE_LEN];
        let mut len = 0usize;
        for c in chars.by_ref() {
            let ok = match self.params.kind {
                OtpKind::Steam => STEAM_ALPHABET.contains(&c),
                _ => c.is_ascii_digit(),
            };
            if !ok || len >= self.code_len() {
                return None;
            }
            *buf.get_mut(len)? = c;
            len += 1;
        }
        (len == self.code_len()).then(|| Code::from_ascii(buf.into_iter().take(len)))
    }

    /// A description of a valid code, for error messages.
    pub(crate) fn code_shape(&self) -> String {
        match self.params.kind {
            OtpKind::Steam => "5 Steam characters".to_string(),
            _ => format!("{} digits", self.params.digits),
        }
    }
}

fn finish<M: Mac>(mut mac: M, msg: &[u8]) -> hmac::digest::Output<M> {
    mac.update(msg);
    mac.finalize().into_bytes()
}

/// RFC 4226 section 5.4: the low 4 bits of the last byte pick an offset; the 4 bytes there,
/// with the top bit masked, form the value.
fn dynamic_truncation(hs: &[u8]) -> u32 {
    let last = hs.last().copied().unwrap_or(0);
    let offset = usize::from(last & 0x0f);
    // HMAC-SHA-1 gives 20 bytes, so offset + 3 <= 18 always holds; `get` keeps it panic-free.
    match hs.get(offset..offset + 4) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a & 0x7f, b, c, d]),
        _ => 0,
    }
}

/// Steam's five characters: repeated division by 26, least significant first.
fn steam_chars(mut value: u32) -> impl Iterator<Item = u8> {
    (0..STEAM_CODE_LEN).map(move |_| {
        let c = STEAM_ALPHABET
            .get((value % 26) as usize)
            .copied()
            .unwrap_or(b'2');
        value /= 26;
        c
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4226_intermediate_truncation_values() {
        // RFC 4226 Appendix D, "Truncated" decimal column, secret "12345678901234567890".
        let secret = Secret::from_bytes(b"12345678901234567890".to_vec()).ok();
        let g = secret.and_then(|s| Generator::new(&s, OtpParams::hotp(0)).ok());
        let want = [
            1284755224u32,
            1094287082,
            137359152,
            1726969429,
            1640338314,
            868254676,
            1918287922,
            82162583,
            673399871,
            645520489,
        ];
        let g = g.into_iter().next();
        for (c, w) in want.iter().enumerate() {
            assert_eq!(
                g.as_ref().map(|g| g.truncated(c as u64)),
                Some(*w),
                "counter {c}"
            );
        }
    }

    #[test]
    fn params_validation() {
        let mut p = OtpParams::totp();
        p.digits = 5;
        assert_eq!(p.validated(), Err(OtpError::InvalidDigits(5)));
        p.digits = 11;
        assert_eq!(p.validated(), Err(OtpError::InvalidDigits(11)));
        p.digits = 10;
        p.period = 0;
        assert_eq!(p.validated(), Err(OtpError::InvalidPeriod(0)));
        let mut s = OtpParams::steam();
        s.digits = 99;
        assert_eq!(s.validated(), Ok(OtpParams::steam()));
    }

    #[test]
    fn ten_digit_codes_keep_leading_zeros() {
        let secret = Secret::from_bytes(b"12345678901234567890".to_vec()).ok();
        let mut p = OtpParams::hotp(0);
        p.digits = 10;
        let g = secret.and_then(|s| Generator::new(&s, p).ok());
        // counter 7 truncates to 82162583, which needs two leading zeros at 10 digits.
        assert_eq!(
            g.map(|g| g.at_counter(7).to_string()),
            Some("0082162583".into())
        );
    }
}

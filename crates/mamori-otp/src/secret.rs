use std::fmt;

use data_encoding::{BASE32_NOPAD, BASE64, BASE64URL_NOPAD, BASE64_NOPAD, HEXLOWER_PERMISSIVE};
use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::OtpError;

/// Length of a newly generated secret: 20 bytes (160 bits), the HMAC-SHA-1 output size that
/// RFC 4226 section 4 recommends (R6) and what every phone app reads.
pub const DEFAULT_SECRET_LEN: usize = 20;

/// A shared OTP secret. The bytes are wiped when the value is dropped and never appear in
/// `Debug` output; the only ways to see them are [`Secret::as_bytes`] and [`Secret::to_base32`].
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Secret(Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret([redacted; {} bytes])", self.0.len())
    }
}

impl Secret {
    /// Wraps raw bytes. An empty secret is refused: HMAC would accept it, but nobody means it.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, OtpError> {
        if bytes.is_empty() {
            return Err(OtpError::EmptySecret);
        }
        Ok(Secret(bytes))
    }

    /// Generates `len` random bytes from `rng` (which must be a CSPRNG).
    pub fn generate_with<R: RngCore + CryptoRng>(rng: &mut R, len: usize) -> Self {
        let mut bytes = vec![0u8; len.max(1)];
        rng.fill_bytes(&mut bytes);
        Secret(bytes)
    }

    /// Generates a [`DEFAULT_SECRET_LEN`]-byte secret from the operating system's generator.
    pub fn generate() -> Self {
        Self::generate_with(&mut rand_core::OsRng, DEFAULT_SECRET_LEN)
    }

    /// Decodes Base32 as people and apps actually write it: any case, with spaces, dashes or
    /// underscores between groups, with or without `=` padding (RFC 4648 section 6 alphabet).
    pub fn from_base32(input: &str) -> Result<Self, OtpError> {
        let cleaned: Zeroizing<String> = Zeroizing::new(
            input
                .chars()
                .filter(|c| !c.is_whitespace() && *c != '-' && *c != '_')
                .map(|c| c.to_ascii_uppercase())
                .collect(),
        );
        let trimmed = cleaned.trim_end_matches('=');
        if trimmed.is_empty() {
            return Err(OtpError::EmptySecret);
        }
        if let Some(bad) = trimmed
            .chars()
            .find(|c| !matches!(c, 'A'..='Z' | '2'..='7'))
        {
            return Err(OtpError::InvalidBase32(describe_char(bad)));
        }
        // Unpadded Base32 has lengths 2,4,5,7 (mod 8) for partial groups; 1, 3 and 6 never occur.
        // Some generators emit such lengths anyway; drop the dangling bits rather than refuse,
        // exactly as Google Authenticator does, but only when they carry no data.
        let decoded = match BASE32_NOPAD.decode(trimmed.as_bytes()) {
            Ok(b) => b,
            Err(_) => {
                let usable = match trimmed.len() % 8 {
                    1 | 3 | 6 => trimmed.len() - 1,
                    _ => trimmed.len(),
                };
                let mut spec = BASE32_NOPAD.specification();
                spec.check_trailing_bits = false;
                let lenient = spec
                    .encoding()
                    .map_err(|e| OtpError::InvalidBase32(e.to_string()))?;
                lenient
                    .decode(trimmed.get(..usable).unwrap_or_default().as_bytes())
                    .map_err(|e| OtpError::InvalidBase32(format!("at position {}", e.position)))?
            }
        };
        Self::from_bytes(decoded)
    }

    /// Decodes hexadecimal (any case; spaces and colons between bytes allowed; optional `0x`).
    pub fn from_hex(input: &str) -> Result<Self, OtpError> {
        let cleaned: Zeroizing<String> = Zeroizing::new(
            input
                .trim()
                .trim_start_matches("0x")
                .trim_start_matches("0X")
                .chars()
                .filter(|c| !c.is_whitespace() && *c != ':' && *c != '-')
                .collect(),
        );
        if cleaned.is_empty() {
            return Err(OtpError::EmptySecret);
        }
        if let Some(bad) = cleaned.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(OtpError::InvalidHex(describe_char(bad)));
        }
        if cleaned.len() % 2 == 1 {
            return Err(OtpError::InvalidHex("odd number of hex digits".into()));
        }
        let bytes = HEXLOWER_PERMISSIVE
            .decode(cleaned.as_bytes())
            .map_err(|e| OtpError::InvalidHex(format!("at position {}", e.position)))?;
        Self::from_bytes(bytes)
    }

    /// Decodes Base64, standard or URL-safe, padded or not (Steam's `shared_secret` is standard
    /// Base64 with padding).
    pub fn from_base64(input: &str) -> Result<Self, OtpError> {
        let cleaned: Zeroizing<String> =
            Zeroizing::new(input.chars().filter(|c| !c.is_whitespace()).collect());
        if cleaned.trim_end_matches('=').is_empty() {
            return Err(OtpError::EmptySecret);
        }
        let bytes = BASE64
            .decode(cleaned.as_bytes())
            .or_else(|_| BASE64_NOPAD.decode(cleaned.trim_end_matches('=').as_bytes()))
            .or_else(|_| BASE64URL_NOPAD.decode(cleaned.trim_end_matches('=').as_bytes()))
            .map_err(|e| OtpError::InvalidBase64(format!("at position {}", e.position)))?;
        Self::from_bytes(bytes)
    }

    /// The raw secret bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Number of secret bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: an empty secret cannot be constructed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Strict output: upper-case RFC 4648 Base32 without padding, as the Key URI format asks.
    /// The returned string is wiped when dropped.
    pub fn to_base32(&self) -> Zeroizing<String> {
        Zeroizing::new(BASE32_NOPAD.encode(&self.0))
    }

    /// Lower-case hexadecimal, wiped when dropped.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(data_encoding::HEXLOWER.encode(&self.0))
    }
}

/// Names a bad input character without echoing the rest of the (secret) input.
fn describe_char(c: char) -> String {
    if c.is_ascii_graphic() {
        format!("unexpected character '{c}'")
    } else {
        format!("unexpected character U+{:04X}", c as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b32(s: &str) -> Vec<u8> {
        Secret::from_base32(s)
            .map(|s| s.as_bytes().to_vec())
            .unwrap_or_default()
    }

    #[test]
    fn base32_is_lenient_on_input() {
        let want = b"12345678901234567890".to_vec();
        assert_eq!(b32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"), want);
        assert_eq!(b32("gezdgnbvgy3tqojqgezdgnbvgy3tqojq"), want);
        assert_eq!(b32("gezd gnbv gy3t qojq gezd gnbv gy3t qojq"), want);
        assert_eq!(b32("GEZD-GNBV-GY3T-QOJQ-GEZD-GNBV-GY3T-QOJQ"), want);
        // "f" = MY====== (RFC 4648 section 10 vectors), with and without padding
        assert_eq!(b32("MY======"), b"f".to_vec());
        assert_eq!(b32("MY"), b"f".to_vec());
        assert_eq!(b32("mzxw6ytboi======"), b"foobar".to_vec());
    }

    #[test]
    fn base32_errors_do_not_echo_the_input() {
        let err = Secret::from_base32("ABCDEFGH1XYZ").err();
        assert_eq!(
            err,
            Some(OtpError::InvalidBase32("unexpected character '1'".into()))
        );
        assert_eq!(Secret::from_base32("").err(), Some(OtpError::EmptySecret));
        assert_eq!(
            Secret::from_base32("  ==").err(),
            Some(OtpError::EmptySecret)
        );
    }

    #[test]
    fn base32_output_is_strict() {
        let s = Secret::from_bytes(b"foobar".to_vec()).ok();
        assert_eq!(
            s.map(|s| s.to_base32().to_string()),
            Some("MZXW6YTBOI".into())
        );
    }

    #[test]
    fn hex_and_base64() {
        assert_eq!(
            Secret::from_hex("0x31:32 33")
                .ok()
                .map(|s| s.as_bytes().to_vec()),
            Some(b"123".to_vec())
        );
        assert!(Secret::from_hex("123").is_err());
        assert!(Secret::from_hex("zz").is_err());
        assert_eq!(
            Secret::from_base64("MTIz")
                .ok()
                .map(|s| s.as_bytes().to_vec()),
            Some(b"123".to_vec())
        );
        assert_eq!(
            Secret::from_base64("MTIzNA==")
                .ok()
                .map(|s| s.as_bytes().to_vec()),
            Some(b"1234".to_vec())
        );
        assert_eq!(
            Secret::from_base64("MTIzNA")
                .ok()
                .map(|s| s.as_bytes().to_vec()),
            Some(b"1234".to_vec())
        );
    }

    #[test]
    fn debug_is_redacted() {
        let s = Secret::from_bytes(b"supersecret".to_vec()).ok();
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("supersecret"), "{dbg}");
        assert!(dbg.contains("redacted"));
    }

    #[test]
    fn generated_secrets_are_distinct_and_default_length() {
        let a = Secret::generate();
        let b = Secret::generate();
        assert_eq!(a.len(), DEFAULT_SECRET_LEN);
        assert_ne!(a, b);
    }
}

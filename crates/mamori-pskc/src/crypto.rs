//! The cryptography of RFC 6030 section 6: AES-CBC with the IV prepended to the ciphertext
//! (XML Encryption's `aes128-cbc`, `aes192-cbc`, `aes256-cbc`), HMAC `ValueMAC`s over
//! IV || ciphertext, and PBKDF2 (PKCS #5 v2.0) for password-based keys.

use aes::{Aes128, Aes192, Aes256};
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Sha224, Sha256, Sha384, Sha512};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// AES block (and CBC IV) size.
pub const BLOCK: usize = 16;

/// A block cipher mode named by an XML Encryption algorithm URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cipher {
    Aes128,
    Aes192,
    Aes256,
}

impl Cipher {
    /// XML Encryption 1.0 section 5.2.2 identifiers (`http://www.w3.org/2001/04/xmlenc#aes128-cbc`
    /// and friends), matched on the fragment so that vendors' `xenc11` spellings also pass.
    pub fn from_uri(uri: &str) -> Option<Self> {
        match fragment(uri).as_str() {
            "aes128-cbc" => Some(Cipher::Aes128),
            "aes192-cbc" => Some(Cipher::Aes192),
            "aes256-cbc" => Some(Cipher::Aes256),
            _ => None,
        }
    }

    pub fn key_len(self) -> usize {
        match self {
            Cipher::Aes128 => 16,
            Cipher::Aes192 => 24,
            Cipher::Aes256 => 32,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Cipher::Aes128 => "aes128-cbc",
            Cipher::Aes192 => "aes192-cbc",
            Cipher::Aes256 => "aes256-cbc",
        }
    }

    /// Decrypts `iv || ciphertext` (RFC 6030 section 6.1: "the IV MUST be prepended to the
    /// encrypted value") and removes the PKCS #7 padding XML Encryption uses. `None` when the
    /// key has the wrong length, the data is not whole blocks, or the padding is wrong.
    pub fn decrypt(self, key: &[u8], data: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if data.len() < 2 * BLOCK || data.len() % BLOCK != 0 || key.len() != self.key_len() {
            return None;
        }
        let (iv, ct) = data.split_at(BLOCK);
        let plain = match self {
            Cipher::Aes128 => cbc::Decryptor::<Aes128>::new_from_slices(key, iv)
                .ok()?
                .decrypt_padded_vec_mut::<Pkcs7>(ct)
                .ok()?,
            Cipher::Aes192 => cbc::Decryptor::<Aes192>::new_from_slices(key, iv)
                .ok()?
                .decrypt_padded_vec_mut::<Pkcs7>(ct)
                .ok()?,
            Cipher::Aes256 => cbc::Decryptor::<Aes256>::new_from_slices(key, iv)
                .ok()?
                .decrypt_padded_vec_mut::<Pkcs7>(ct)
                .ok()?,
        };
        Some(Zeroizing::new(plain))
    }
}

/// An HMAC hash named by an XML Signature / RFC 6931 URI (`…xmldsig#hmac-sha1`,
/// `…xmldsig-more#hmac-sha256`, …), used both for `MACMethod` and for the PBKDF2 `PRF`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HmacHash {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl HmacHash {
    pub fn from_uri(uri: &str) -> Option<Self> {
        match fragment(uri).as_str() {
            "hmac-sha1" => Some(HmacHash::Sha1),
            "hmac-sha224" => Some(HmacHash::Sha224),
            "hmac-sha256" => Some(HmacHash::Sha256),
            "hmac-sha384" => Some(HmacHash::Sha384),
            "hmac-sha512" => Some(HmacHash::Sha512),
            _ => None,
        }
    }

    /// Checks `tag == HMAC(key, message)` in constant time. A truncated or over-long tag
    /// never matches.
    pub fn verify(self, key: &[u8], message: &[u8], tag: &[u8]) -> bool {
        fn check<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8], tag: &[u8]) -> bool {
            let Ok(mut mac) = <M as hmac::digest::KeyInit>::new_from_slice(key) else {
                return false;
            };
            mac.update(message);
            let computed = mac.finalize().into_bytes();
            bool::from(computed.as_slice().ct_eq(tag))
        }
        match self {
            HmacHash::Sha1 => check::<Hmac<Sha1>>(key, message, tag),
            HmacHash::Sha224 => check::<Hmac<Sha224>>(key, message, tag),
            HmacHash::Sha256 => check::<Hmac<Sha256>>(key, message, tag),
            HmacHash::Sha384 => check::<Hmac<Sha384>>(key, message, tag),
            HmacHash::Sha512 => check::<Hmac<Sha512>>(key, message, tag),
        }
    }

    /// PBKDF2 (RFC 8018 section 5.2, formerly PKCS #5 v2.0) with HMAC over this hash.
    pub fn pbkdf2(
        self,
        password: &[u8],
        salt: &[u8],
        rounds: u32,
        len: usize,
    ) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(vec![0u8; len]);
        match self {
            HmacHash::Sha1 => pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, rounds, &mut out),
            HmacHash::Sha224 => pbkdf2::pbkdf2_hmac::<Sha224>(password, salt, rounds, &mut out),
            HmacHash::Sha256 => pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, rounds, &mut out),
            HmacHash::Sha384 => pbkdf2::pbkdf2_hmac::<Sha384>(password, salt, rounds, &mut out),
            HmacHash::Sha512 => pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, rounds, &mut out),
        }
        out
    }
}

/// The part of an algorithm URI after `#` (or the whole URI), lower-cased and trimmed.
pub fn fragment(uri: &str) -> String {
    let uri = uri.trim();
    uri.rsplit_once('#')
        .map_or(uri, |(_, f)| f)
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pbkdf2_hmac_sha1_rfc6070_vector() {
        // RFC 6070 section 2, second vector: P = "password", S = "salt", c = 2, dkLen = 20.
        let dk = HmacHash::Sha1.pbkdf2(b"password", b"salt", 2, 20);
        assert_eq!(
            data_encoding::HEXLOWER.encode(&dk),
            "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"
        );
    }

    #[test]
    fn uris_match_on_fragment() {
        assert_eq!(
            Cipher::from_uri("http://www.w3.org/2001/04/xmlenc#aes128-cbc"),
            Some(Cipher::Aes128)
        );
        assert_eq!(
            Cipher::from_uri("http://www.w3.org/2001/04/xmlenc#kw-aes128"),
            None
        );
        assert_eq!(
            HmacHash::from_uri("http://www.w3.org/2000/09/xmldsig#hmac-sha1"),
            Some(HmacHash::Sha1)
        );
        assert_eq!(
            HmacHash::from_uri("http://www.w3.org/2000/09/xmldsig#hmac-md5"),
            None
        );
    }

    #[test]
    fn decrypt_refuses_partial_blocks_and_wrong_key_lengths() {
        assert!(Cipher::Aes128.decrypt(&[0; 16], &[0; 31]).is_none());
        assert!(Cipher::Aes128.decrypt(&[0; 16], &[0; 16]).is_none());
        assert!(Cipher::Aes128.decrypt(&[0; 32], &[0; 32]).is_none());
    }

    #[test]
    fn mac_of_wrong_length_never_matches() {
        let key = b"k";
        assert!(!HmacHash::Sha1.verify(key, b"m", &[]));
        assert!(!HmacHash::Sha1.verify(key, b"m", &[0; 20]));
    }
}

//! A PSKC writer for tests: plaintext, pre-shared-key (AES-CBC + HMAC-SHA1 ValueMAC, RFC 6030
//! section 6.1) and password-based (PBKDF2, section 6.2) files, written independently of the
//! parser from the RFC's description. Its output (PSK with encrypted counters, and PBKDF2) was
//! read back once by hand with Debian's python3-pskc 1.2, which checked the MACs and recovered
//! the same secrets, counters, periods and drifts.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use aes::{Aes128, Aes256};
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockEncryptMut, KeyIvInit};
use data_encoding::BASE64;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;

pub const NS_PSKC: &str = "urn:ietf:params:xml:ns:keyprov:pskc";

/// RFC 4226 Appendix D: HOTP values before the modulo ("Truncated", decimal) for the secret
/// "12345678901234567890" and counters 0..=9.
pub const RFC4226_TRUNCATED: [u32; 10] = [
    1284755224, 1094287082, 137359152, 1726969429, 1640338314, 868254676, 1918287922, 82162583,
    673399871, 645520489,
];

/// RFC 4226 Appendix D: the 6-digit HOTP values for counters 0..=9.
pub const RFC4226_HOTP: [&str; 10] = [
    "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871",
    "520489",
];

#[derive(Clone, Debug)]
pub enum Kind {
    Hotp { counter: u64 },
    Totp { period: u64 },
}

#[derive(Clone, Debug)]
pub struct GenToken {
    pub serial: String,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub secret: Vec<u8>,
    pub kind: Kind,
    pub digits: u32,
    pub drift: Option<i64>,
    /// `AlgorithmParameters/Suite`, e.g. "HMAC-SHA256".
    pub suite: Option<String>,
    /// Overrides the Key Algorithm URI.
    pub algorithm_uri: Option<String>,
}

impl GenToken {
    pub fn hotp(serial: &str, secret: &[u8], counter: u64, digits: u32) -> Self {
        GenToken {
            serial: serial.into(),
            manufacturer: Some("Acme Tokens".into()),
            model: Some("OTP-c100".into()),
            secret: secret.to_vec(),
            kind: Kind::Hotp { counter },
            digits,
            drift: None,
            suite: None,
            algorithm_uri: None,
        }
    }

    pub fn totp(serial: &str, secret: &[u8], period: u64, digits: u32) -> Self {
        GenToken {
            serial: serial.into(),
            manufacturer: Some("Acme Tokens".into()),
            model: Some("OTP-t60".into()),
            secret: secret.to_vec(),
            kind: Kind::Totp { period },
            digits,
            drift: Some(-1),
            suite: None,
            algorithm_uri: None,
        }
    }
}

#[derive(Clone, Debug)]
pub enum Protection {
    Plain,
    /// Pre-shared key: 16 bytes (aes128-cbc) or 32 bytes (aes256-cbc).
    Psk {
        key: Vec<u8>,
        mac_key: Vec<u8>,
    },
    /// PBKDF2-HMAC-SHA1 → aes128-cbc.
    Password {
        password: Vec<u8>,
        salt: Vec<u8>,
        iterations: u32,
        mac_key: Vec<u8>,
    },
}

impl Protection {
    fn key(&self) -> Option<Vec<u8>> {
        match self {
            Protection::Plain => None,
            Protection::Psk { key, .. } => Some(key.clone()),
            Protection::Password {
                password,
                salt,
                iterations,
                ..
            } => {
                let mut out = vec![0u8; 16];
                pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, *iterations, &mut out);
                Some(out)
            }
        }
    }

    fn mac_key(&self) -> Option<&[u8]> {
        match self {
            Protection::Plain => None,
            Protection::Psk { mac_key, .. } | Protection::Password { mac_key, .. } => Some(mac_key),
        }
    }
}

fn cipher_uri(key: &[u8]) -> &'static str {
    if key.len() == 32 {
        "http://www.w3.org/2001/04/xmlenc#aes256-cbc"
    } else {
        "http://www.w3.org/2001/04/xmlenc#aes128-cbc"
    }
}

/// IV || AES-CBC-PKCS#7(plaintext).
pub fn encrypt(key: &[u8], plaintext: &[u8], rng: &mut impl RngCore) -> Vec<u8> {
    let mut iv = [0u8; 16];
    rng.fill_bytes(&mut iv);
    let ct = if key.len() == 32 {
        cbc::Encryptor::<Aes256>::new_from_slices(key, &iv)
            .unwrap()
            .encrypt_padded_vec_mut::<Pkcs7>(plaintext)
    } else {
        cbc::Encryptor::<Aes128>::new_from_slices(key, &iv)
            .unwrap()
            .encrypt_padded_vec_mut::<Pkcs7>(plaintext)
    };
    let mut out = iv.to_vec();
    out.extend_from_slice(&ct);
    out
}

pub fn hmac_sha1(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key).unwrap();
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// Writes a PSKC document. `prefix` is the namespace prefix used for PSKC elements ("" for the
/// default namespace), so tests cover vendors' different spellings. With `encrypt_counter`,
/// HOTP counters are written as encrypted 8-byte big-endian integers.
pub fn write_pskc(
    tokens: &[GenToken],
    protection: &Protection,
    prefix: &str,
    encrypt_counter: bool,
    rng: &mut impl RngCore,
) -> String {
    let p = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}:")
    };
    let xmlns = if prefix.is_empty() {
        format!("xmlns=\"{NS_PSKC}\"")
    } else {
        format!("xmlns:{prefix}=\"{NS_PSKC}\"")
    };
    let mut s = String::new();
    s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    s.push_str(&format!(
        "<{p}KeyContainer Version=\"1.0\" {xmlns}\n  xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"\n  xmlns:xenc=\"http://www.w3.org/2001/04/xmlenc#\"\n  xmlns:xenc11=\"http://www.w3.org/2009/xmlenc11#\"\n  xmlns:pkcs5=\"http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#\">\n"
    ));
    let key = protection.key();
    match protection {
        Protection::Plain => {}
        Protection::Psk { .. } => {
            s.push_str(&format!(
                "  <{p}EncryptionKey><ds:KeyName>Pre-shared-key</ds:KeyName></{p}EncryptionKey>\n"
            ));
        }
        Protection::Password {
            salt, iterations, ..
        } => {
            s.push_str(&format!(
                "  <{p}EncryptionKey>\n    <xenc11:DerivedKey>\n      <xenc11:KeyDerivationMethod Algorithm=\"http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#pbkdf2\">\n        <pkcs5:PBKDF2-params>\n          <Salt><Specified>{}</Specified></Salt>\n          <IterationCount>{iterations}</IterationCount>\n          <KeyLength>16</KeyLength>\n          <PRF/>\n        </pkcs5:PBKDF2-params>\n      </xenc11:KeyDerivationMethod>\n      <xenc11:MasterKeyName>test password</xenc11:MasterKeyName>\n    </xenc11:DerivedKey>\n  </{p}EncryptionKey>\n",
                BASE64.encode(salt)
            ));
        }
    }
    if let (Some(key), Some(mac_key)) = (&key, protection.mac_key()) {
        let enc = encrypt(key, mac_key, rng);
        s.push_str(&format!(
            "  <{p}MACMethod Algorithm=\"http://www.w3.org/2000/09/xmldsig#hmac-sha1\">\n    <{p}MACKey>\n      <xenc:EncryptionMethod Algorithm=\"{}\"/>\n      <xenc:CipherData><xenc:CipherValue>{}</xenc:CipherValue></xenc:CipherData>\n    </{p}MACKey>\n  </{p}MACMethod>\n",
            cipher_uri(key),
            BASE64.encode(&enc)
        ));
    }
    let value = |plain: &[u8], as_text: String, rng: &mut dyn RngCore| -> String {
        match (&key, protection.mac_key()) {
            (Some(key), Some(mac_key)) => {
                let mut r = RngWrap(rng);
                let enc = encrypt(key, plain, &mut r);
                let mac = hmac_sha1(mac_key, &enc);
                format!(
                    "<{p}EncryptedValue><xenc:EncryptionMethod Algorithm=\"{}\"/><xenc:CipherData><xenc:CipherValue>{}</xenc:CipherValue></xenc:CipherData></{p}EncryptedValue>\n          <{p}ValueMAC>{}</{p}ValueMAC>",
                    cipher_uri(key),
                    BASE64.encode(&enc),
                    BASE64.encode(&mac)
                )
            }
            _ => format!("<{p}PlainValue>{as_text}</{p}PlainValue>"),
        }
    };
    for t in tokens {
        let uri = t.algorithm_uri.clone().unwrap_or_else(|| match t.kind {
            Kind::Hotp { .. } => format!("{NS_PSKC}:hotp"),
            Kind::Totp { .. } => format!("{NS_PSKC}#totp"),
        });
        s.push_str(&format!("  <{p}KeyPackage>\n    <{p}DeviceInfo>\n"));
        if let Some(m) = &t.manufacturer {
            s.push_str(&format!("      <{p}Manufacturer>{m}</{p}Manufacturer>\n"));
        }
        s.push_str(&format!("      <{p}SerialNo>{}</{p}SerialNo>\n", t.serial));
        if let Some(m) = &t.model {
            s.push_str(&format!("      <{p}Model>{m}</{p}Model>\n"));
        }
        s.push_str(&format!("    </{p}DeviceInfo>\n    <{p}Key Id=\"{}\" Algorithm=\"{uri}\">\n      <{p}Issuer>Test Issuer</{p}Issuer>\n      <{p}AlgorithmParameters>\n", t.serial));
        if let Some(suite) = &t.suite {
            s.push_str(&format!("        <{p}Suite>{suite}</{p}Suite>\n"));
        }
        s.push_str(&format!(
            "        <{p}ResponseFormat Length=\"{}\" Encoding=\"DECIMAL\"/>\n      </{p}AlgorithmParameters>\n      <{p}Data>\n        <{p}Secret>\n          ",
            t.digits
        ));
        s.push_str(&value(&t.secret, BASE64.encode(&t.secret), &mut *rng));
        s.push_str(&format!("\n        </{p}Secret>\n"));
        match t.kind {
            Kind::Hotp { counter } => {
                let v = if encrypt_counter {
                    value(&counter.to_be_bytes(), counter.to_string(), &mut *rng)
                } else {
                    format!("<{p}PlainValue>{counter}</{p}PlainValue>")
                };
                s.push_str(&format!("        <{p}Counter>{v}</{p}Counter>\n"));
            }
            Kind::Totp { period } => {
                s.push_str(&format!(
                    "        <{p}Time><{p}PlainValue>0</{p}PlainValue></{p}Time>\n        <{p}TimeInterval><{p}PlainValue>{period}</{p}PlainValue></{p}TimeInterval>\n"
                ));
                if let Some(d) = t.drift {
                    s.push_str(&format!(
                        "        <{p}TimeDrift><{p}PlainValue>{d}</{p}PlainValue></{p}TimeDrift>\n"
                    ));
                }
            }
        }
        s.push_str(&format!(
            "      </{p}Data>\n    </{p}Key>\n  </{p}KeyPackage>\n"
        ));
    }
    s.push_str(&format!("</{p}KeyContainer>\n"));
    s
}

/// Lets a `&mut dyn RngCore` be passed where `impl RngCore` is expected.
struct RngWrap<'a>(&'a mut dyn RngCore);

impl RngCore for RngWrap<'_> {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.0.try_fill_bytes(dest)
    }
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn hex(s: &str) -> Vec<u8> {
    data_encoding::HEXLOWER_PERMISSIVE
        .decode(s.as_bytes())
        .unwrap()
}

//! RFC 6030 Portable Symmetric Key Container: the `KeyContainer`, its `EncryptionKey` and
//! `MACMethod`, and one `KeyPackage` per token.

use std::collections::HashMap;

use data_encoding::BASE64;
use mamori_otp::{Algorithm, OtpKind, OtpParams, Secret};
use zeroize::Zeroizing;

use crate::crypto::{fragment, Cipher, HmacHash};
use crate::error::{Location, PskcError};
use crate::xml::{Document, Element};
use crate::{check_serial, Decryption, Token, MAX_INPUT_BYTES, MAX_SECRET_BYTES, MAX_TOKENS};

/// Highest PBKDF2 iteration count accepted from a file. A file names its own cost, so without a
/// ceiling a hostile file could keep an import busy for hours; vendors use 1,000 to 100,000.
pub const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;

/// Longest PBKDF2 salt accepted, in bytes.
const MAX_SALT_BYTES: usize = 1024;

/// Parses a PSKC file (RFC 6030) and returns every token in it, or an error and no tokens.
///
/// `decryption` supplies the pre-shared key or the password when the file has encrypted
/// values; it is ignored for a plaintext file.
pub fn parse_pskc(xml: &[u8], decryption: Decryption<'_>) -> Result<Vec<Token>, PskcError> {
    if xml.len() > MAX_INPUT_BYTES {
        return Err(PskcError::TooLarge {
            size: xml.len(),
            limit: MAX_INPUT_BYTES,
        });
    }
    let bytes = xml.strip_prefix(b"\xEF\xBB\xBF".as_slice()).unwrap_or(xml);
    let text = std::str::from_utf8(bytes).map_err(|e| PskcError::NotUtf8 {
        location: Location::Line(
            1 + bytes
                .get(..e.valid_up_to())
                .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count()),
        ),
    })?;

    let (mut doc, root) = Document::open(text)?;
    if root.name != "KeyContainer" {
        return Err(PskcError::NotPskc {
            found: root.name.clone(),
        });
    }
    // RFC 6030 section 4: "Version ... MUST be included"; this specification defines "1.0".
    // A missing attribute is tolerated (some generators drop it); another value is refused.
    if let Some(v) = root.attr("Version") {
        if v.trim() != "1.0" {
            return Err(PskcError::UnsupportedVersion {
                version: v.to_string(),
            });
        }
    }

    let mut state = Container::new(decryption);
    let mut tokens: Vec<Token> = Vec::new();
    let mut serials: HashMap<String, usize> = HashMap::new();
    let mut package = 0usize;
    while let Some(child) = doc.next_child()? {
        match child.name.as_str() {
            "EncryptionKey" => state.set_encryption_key(&child)?,
            "MACMethod" => state.set_mac_method(&child)?,
            "KeyPackage" => {
                package += 1;
                if package > MAX_TOKENS {
                    return Err(PskcError::TooManyTokens { limit: MAX_TOKENS });
                }
                let loc = Location::KeyPackage(package);
                let token = state.key_package(&child, loc)?;
                if let Some(&first) = serials.get(&token.serial) {
                    return Err(PskcError::DuplicateSerial {
                        serial: token.serial.clone(),
                        first: Location::KeyPackage(first),
                        second: loc,
                    });
                }
                serials.insert(token.serial.clone(), package);
                tokens.push(token);
            }
            // Signature (RFC 6030 section 7) is not verified, and Extensions carry nothing we
            // use; both are skipped, as are unknown elements.
            _ => {}
        }
    }
    if tokens.is_empty() {
        return Err(PskcError::NoTokens);
    }
    Ok(tokens)
}

/// How the file says its encryption key is obtained (RFC 6030 section 6).
enum KeySource {
    /// No `EncryptionKey` element.
    Unspecified,
    /// Section 6.1: `ds:KeyName` of a pre-shared key.
    PreShared,
    /// Section 6.2: `xenc11:DerivedKey` with PBKDF2 parameters.
    Derived(Pbkdf2Params),
    /// Anything else, e.g. section 6.3's `ds:X509Data` (asymmetric key transport).
    Unsupported(String),
}

struct Pbkdf2Params {
    salt: Vec<u8>,
    iterations: u32,
    key_len: usize,
    prf: HmacHash,
}

/// `MACMethod` (RFC 6030 section 6.1.1): the algorithm and the encrypted MAC key.
struct MacMethod {
    hash: HmacHash,
    cipher: Cipher,
    encrypted_key: Vec<u8>,
}

/// What the container level contributes to every key package.
struct Container<'d> {
    decryption: Decryption<'d>,
    source: KeySource,
    mac: Option<MacMethod>,
    key: Option<Zeroizing<Vec<u8>>>,
    mac_key: Option<Zeroizing<Vec<u8>>>,
}

impl<'d> Container<'d> {
    fn new(decryption: Decryption<'d>) -> Self {
        Container {
            decryption,
            source: KeySource::Unspecified,
            mac: None,
            key: None,
            mac_key: None,
        }
    }

    fn set_encryption_key(&mut self, el: &Element) -> Result<(), PskcError> {
        self.source = if let Some(derived) = el.child("DerivedKey") {
            KeySource::Derived(pbkdf2_params(derived)?)
        } else if el.child("KeyName").is_some() || el.children.is_empty() {
            KeySource::PreShared
        } else if el.child("X509Data").is_some() {
            KeySource::Unsupported(
                "encryption with an asymmetric key (RFC 6030 section 6.3, ds:X509Data)".into(),
            )
        } else {
            let names: Vec<&str> = el.children.iter().map(|c| c.name.as_str()).collect();
            KeySource::Unsupported(format!("EncryptionKey holding {}", names.join(", ")))
        };
        Ok(())
    }

    fn set_mac_method(&mut self, el: &Element) -> Result<(), PskcError> {
        let loc = Location::Container;
        let uri = el
            .attr("Algorithm")
            .ok_or_else(|| PskcError::MissingElement {
                location: loc,
                element: "MACMethod/@Algorithm".into(),
            })?;
        let hash = HmacHash::from_uri(uri).ok_or_else(|| PskcError::UnsupportedAlgorithm {
            location: loc,
            field: "MACMethod".into(),
            uri: uri.to_string(),
        })?;
        let Some(mac_key) = el.child("MACKey") else {
            if el.child("MACKeyReference").is_some() {
                return Err(PskcError::Unsupported {
                    location: loc,
                    what: "MACMethod/MACKeyReference (a MAC key agreed out of band)".into(),
                });
            }
            return Err(PskcError::MissingElement {
                location: loc,
                element: "MACMethod/MACKey".into(),
            });
        };
        let (cipher, encrypted_key) = encrypted_data(mac_key, loc, "MACMethod/MACKey")?;
        self.mac = Some(MacMethod {
            hash,
            cipher,
            encrypted_key,
        });
        Ok(())
    }

    /// The container's encryption key, derived or taken from the caller on first use.
    fn encryption_key(&mut self, loc: Location) -> Result<&[u8], PskcError> {
        if self.key.is_none() {
            let key = match (&self.source, &self.decryption) {
                (KeySource::Unsupported(what), _) => {
                    return Err(PskcError::Unsupported {
                        location: Location::Container,
                        what: what.clone(),
                    })
                }
                (_, Decryption::None) => {
                    return Err(PskcError::EncryptionRequired { location: loc })
                }
                (KeySource::Derived(_), Decryption::PreSharedKey(_)) => {
                    return Err(PskcError::WrongKeyKind {
                        expected: "a password (PBKDF2)",
                        given: "a pre-shared key",
                    })
                }
                (KeySource::PreShared | KeySource::Unspecified, Decryption::Password(_)) => {
                    return Err(PskcError::WrongKeyKind {
                        expected: "a pre-shared key",
                        given: "a password",
                    })
                }
                (KeySource::Derived(p), Decryption::Password(pw)) => {
                    p.prf.pbkdf2(pw, &p.salt, p.iterations, p.key_len)
                }
                (KeySource::PreShared | KeySource::Unspecified, Decryption::PreSharedKey(k)) => {
                    Zeroizing::new(k.to_vec())
                }
            };
            self.key = Some(key);
        }
        Ok(self.key.as_deref().map(Vec::as_slice).unwrap_or_default())
    }

    /// The MAC key: `MACMethod/MACKey` decrypted with the encryption key (section 6.1.1).
    fn mac_key(
        &mut self,
        loc: Location,
        field: &str,
    ) -> Result<(HmacHash, Zeroizing<Vec<u8>>), PskcError> {
        let Some(mac) = self.mac.as_ref() else {
            return Err(PskcError::MissingMac {
                location: loc,
                field: field.to_string(),
                missing: "MACMethod",
            });
        };
        let (hash, cipher, encrypted) = (mac.hash, mac.cipher, mac.encrypted_key.clone());
        if self.mac_key.is_none() {
            let key = self.encryption_key(loc)?;
            check_key_len(cipher, key, Location::Container)?;
            let plain = cipher
                .decrypt(key, &encrypted)
                .ok_or(PskcError::Decryption {
                    location: Location::Container,
                    field: "MACMethod/MACKey".into(),
                })?;
            self.mac_key = Some(plain);
        }
        let key = self.mac_key.clone().unwrap_or_default();
        Ok((hash, key))
    }

    /// The plaintext of a `Data` child's `EncryptedValue` (with its `ValueMAC` checked), or
    /// `None` when the element has no `EncryptedValue`. Callers look at `PlainValue` first.
    fn encrypted_value(
        &mut self,
        el: &Element,
        loc: Location,
        field: &str,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, PskcError> {
        let Some(ev) = el.child("EncryptedValue") else {
            return Ok(None);
        };
        let (cipher, data) = encrypted_data(ev, loc, field)?;
        // RFC 6030 section 6.1.1: the MAC is computed over the CipherValue (IV || ciphertext)
        // with the key from MACMethod. It is checked before anything is decrypted, so a
        // tampered file never reaches the padding check (no padding oracle).
        let Some(tag_el) = el.child("ValueMAC") else {
            return Err(PskcError::MissingMac {
                location: loc,
                field: field.to_string(),
                missing: "ValueMAC",
            });
        };
        let tag = decode_base64(tag_el.text()).ok_or_else(|| PskcError::InvalidValue {
            location: loc,
            field: format!("{field}/ValueMAC"),
            reason: "is not valid Base64".into(),
        })?;
        let (hash, mac_key) = self.mac_key(loc, field)?;
        if !hash.verify(&mac_key, &data, &tag) {
            return Err(PskcError::Decryption {
                location: loc,
                field: field.to_string(),
            });
        }
        let key = self.encryption_key(loc)?;
        check_key_len(cipher, key, loc)?;
        cipher
            .decrypt(key, &data)
            .map(Some)
            .ok_or_else(|| PskcError::Decryption {
                location: loc,
                field: field.to_string(),
            })
    }

    /// `Data/Secret`: Base64 in `PlainValue`, or an `EncryptedValue`.
    fn secret(&mut self, data: &Element, loc: Location) -> Result<Secret, PskcError> {
        let el = data
            .child("Secret")
            .ok_or(PskcError::MissingSecret { location: loc })?;
        let bytes = match el.child("PlainValue") {
            Some(pv) => decode_base64(pv.text()).ok_or_else(|| PskcError::InvalidValue {
                location: loc,
                field: "Data/Secret/PlainValue".into(),
                reason: "is not valid Base64".into(),
            })?,
            None => self
                .encrypted_value(el, loc, "Data/Secret")?
                .ok_or(PskcError::MissingSecret { location: loc })?,
        };
        if bytes.len() > MAX_SECRET_BYTES {
            return Err(PskcError::Limit {
                location: loc,
                what: "the secret length in bytes",
                limit: MAX_SECRET_BYTES as u64,
            });
        }
        Secret::from_bytes(bytes.to_vec()).map_err(|_| PskcError::InvalidValue {
            location: loc,
            field: "Data/Secret".into(),
            reason: "is empty".into(),
        })
    }

    /// An integer `Data` element (`Counter`, `Time`, `TimeInterval`, `TimeDrift`): decimal text
    /// in `PlainValue`, or a big-endian binary integer of 1 to 8 bytes when encrypted.
    fn int_value(
        &mut self,
        data: &Element,
        name: &str,
        loc: Location,
    ) -> Result<Option<i128>, PskcError> {
        let Some(el) = data.child(name) else {
            return Ok(None);
        };
        let field = format!("Data/{name}");
        let invalid = |reason: &str| PskcError::InvalidValue {
            location: loc,
            field: field.clone(),
            reason: reason.to_string(),
        };
        if let Some(pv) = el.child("PlainValue") {
            return pv
                .text()
                .parse::<i128>()
                .map(Some)
                .map_err(|_| invalid("is not an integer"));
        }
        match self.encrypted_value(el, loc, &field)? {
            None => Err(PskcError::MissingElement {
                location: loc,
                element: format!("{field}/PlainValue"),
            }),
            Some(b) if b.is_empty() || b.len() > 8 => {
                Err(invalid("does not decrypt to a 1 to 8 byte integer"))
            }
            Some(b) => Ok(Some(
                b.iter().fold(0i128, |acc, &x| (acc << 8) | i128::from(x)),
            )),
        }
    }

    fn key_package(&mut self, pkg: &Element, loc: Location) -> Result<Token, PskcError> {
        // RFC 6030 Figure 3: DeviceInfo identifies the device; SerialNo is what
        // is printed on the token, so it is what people assign tokens by.
        let device = pkg.child("DeviceInfo");
        let dev_text = |name: &str| device.and_then(|d| d.child_text(name)).map(str::to_string);

        let mut keys = pkg.children_named("Key");
        let key = keys.next().ok_or_else(|| PskcError::MissingElement {
            location: loc,
            element: "Key".into(),
        })?;
        if keys.next().is_some() {
            return Err(PskcError::InvalidValue {
                location: loc,
                field: "Key".into(),
                reason: "appears more than once (RFC 6030 allows one key per key package)".into(),
            });
        }

        let uri = key
            .attr("Algorithm")
            .ok_or_else(|| PskcError::MissingElement {
                location: loc,
                element: "Key/@Algorithm".into(),
            })?;
        let kind = otp_kind(uri).ok_or_else(|| PskcError::UnsupportedAlgorithm {
            location: loc,
            field: "Key/@Algorithm".into(),
            uri: uri.to_string(),
        })?;
        let key_id = key
            .attr("Id")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string);

        // Serial: DeviceInfo/SerialNo, else the Key's Id (Figure 2 has no DeviceInfo at all).
        let serial = dev_text("SerialNo")
            .or_else(|| key_id.clone())
            .ok_or_else(|| PskcError::MissingElement {
                location: loc,
                element: "DeviceInfo/SerialNo".into(),
            })?;
        check_serial(&serial).map_err(|reason| PskcError::InvalidValue {
            location: loc,
            field: "DeviceInfo/SerialNo".into(),
            reason,
        })?;

        let (algorithm, digits) = algorithm_parameters(key.child("AlgorithmParameters"), loc)?;

        let data = key
            .child("Data")
            .ok_or(PskcError::MissingSecret { location: loc })?;
        let secret = self.secret(data, loc)?;

        let counter = self.int_value(data, "Counter", loc)?;
        let time = self.int_value(data, "Time", loc)?;
        let interval = self.int_value(data, "TimeInterval", loc)?;
        let drift = self.int_value(data, "TimeDrift", loc)?;

        let range = |v: i128, field: &str, lo: i128, hi: i128| {
            if (lo..=hi).contains(&v) {
                Ok(v)
            } else {
                Err(PskcError::InvalidValue {
                    location: loc,
                    field: format!("Data/{field}"),
                    reason: format!("is out of range ({lo} to {hi})"),
                })
            }
        };
        let counter = counter
            .map(|c| range(c, "Counter", 0, i128::from(u64::MAX)))
            .transpose()?
            .and_then(|c| u64::try_from(c).ok())
            .unwrap_or(0);
        let period = match interval {
            None => 30,
            Some(p) => range(p, "TimeInterval", 1, 86_400).and_then(|p| {
                u64::try_from(p).map_err(|_| PskcError::InvalidValue {
                    location: loc,
                    field: "Data/TimeInterval".into(),
                    reason: "is out of range".into(),
                })
            })?,
        };
        let time = time
            .map(|t| range(t, "Time", i128::from(i64::MIN), i128::from(i64::MAX)))
            .transpose()?
            .and_then(|t| i64::try_from(t).ok());
        let time_drift = drift
            .map(|d| range(d, "TimeDrift", i128::from(i32::MIN), i128::from(i32::MAX)))
            .transpose()?
            .and_then(|d| i64::try_from(d).ok());

        let params = OtpParams {
            kind,
            algorithm,
            digits,
            period,
            counter,
        };
        let params = params.validated().map_err(|_| PskcError::InvalidDigits {
            location: loc,
            digits: u64::from(digits),
        })?;

        Ok(Token {
            serial,
            manufacturer: dev_text("Manufacturer"),
            model: dev_text("Model"),
            issuer: key.child_text("Issuer").map(str::to_string),
            key_id,
            secret,
            params,
            time_drift,
            time,
        })
    }
}

/// RFC 6030 section 10.1 names HOTP `urn:ietf:params:xml:ns:keyprov:pskc:hotp`; TOTP has no
/// URI in the RFC and vendors write `…:pskc#totp` (draft-hoyer-keyprov-pskc-algorithm-profiles)
/// or `…:pskc:totp`; older drafts used `http://www.ietf.org/keyprov/pskc#hotp`. All are
/// accepted; OCRA, PIN, SecurID and everything else are not.
fn otp_kind(uri: &str) -> Option<OtpKind> {
    let lower = uri.trim().to_ascii_lowercase();
    [
        "urn:ietf:params:xml:ns:keyprov:pskc",
        "http://www.ietf.org/keyprov/pskc",
    ]
    .iter()
    .find_map(|prefix| lower.strip_prefix(prefix))
    .and_then(|rest| match rest {
        ":hotp" | "#hotp" => Some(OtpKind::Hotp),
        ":totp" | "#totp" => Some(OtpKind::Totp),
        _ => None,
    })
}

/// `AlgorithmParameters`: `Suite` (the hash, for TOTP variants) and `ResponseFormat`
/// (`Length`, `Encoding`, `CheckDigits`; RFC 6030 Figure 3). Missing parameters mean
/// SHA-1 and 6 digits, the RFC 4226 defaults.
fn algorithm_parameters(
    ap: Option<&Element>,
    loc: Location,
) -> Result<(Algorithm, u32), PskcError> {
    let Some(ap) = ap else {
        return Ok((Algorithm::Sha1, 6));
    };
    let algorithm = match ap.child_text("Suite") {
        None => Algorithm::Sha1,
        Some(s) => s
            .parse::<Algorithm>()
            .map_err(|_| PskcError::UnsupportedAlgorithm {
                location: loc,
                field: "AlgorithmParameters/Suite".into(),
                uri: s.to_string(),
            })?,
    };
    let Some(rf) = ap.child("ResponseFormat") else {
        return Ok((algorithm, 6));
    };
    let encoding = rf.attr("Encoding").map(str::trim).unwrap_or("DECIMAL");
    if !encoding.eq_ignore_ascii_case("DECIMAL") {
        return Err(PskcError::Unsupported {
            location: loc,
            what: format!("ResponseFormat Encoding={encoding:?} (only DECIMAL codes)"),
        });
    }
    if rf
        .attr("CheckDigits")
        .is_some_and(|v| matches!(v.trim(), "true" | "1"))
    {
        return Err(PskcError::Unsupported {
            location: loc,
            what: "ResponseFormat CheckDigits (Luhn check digit)".into(),
        });
    }
    let length = rf.attr("Length").ok_or_else(|| PskcError::MissingElement {
        location: loc,
        element: "ResponseFormat/@Length".into(),
    })?;
    let digits = length
        .trim()
        .parse::<u64>()
        .map_err(|_| PskcError::InvalidValue {
            location: loc,
            field: "ResponseFormat/@Length".into(),
            reason: "is not a number".into(),
        })?;
    match u32::try_from(digits) {
        Ok(d) if (6..=10).contains(&d) => Ok((algorithm, d)),
        _ => Err(PskcError::InvalidDigits {
            location: loc,
            digits,
        }),
    }
}

/// `EncryptionKey/DerivedKey` (RFC 6030 section 6.2, Figure 7): XML Encryption 1.1
/// `KeyDerivationMethod` with PKCS #5 v2.0 `PBKDF2-params` (`Salt/Specified`,
/// `IterationCount`, `KeyLength`, optional `PRF`, HMAC-SHA1 by default).
fn pbkdf2_params(derived: &Element) -> Result<Pbkdf2Params, PskcError> {
    let loc = Location::Container;
    let missing = |element: &str| PskcError::MissingElement {
        location: loc,
        element: element.to_string(),
    };
    let invalid = |field: &str, reason: &str| PskcError::InvalidValue {
        location: loc,
        field: field.to_string(),
        reason: reason.to_string(),
    };
    let method = derived
        .child("KeyDerivationMethod")
        .ok_or_else(|| missing("EncryptionKey/DerivedKey/KeyDerivationMethod"))?;
    let uri = method
        .attr("Algorithm")
        .ok_or_else(|| missing("KeyDerivationMethod/@Algorithm"))?;
    if fragment(uri) != "pbkdf2" {
        return Err(PskcError::UnsupportedAlgorithm {
            location: loc,
            field: "KeyDerivationMethod".into(),
            uri: uri.to_string(),
        });
    }
    let params = method
        .child("PBKDF2-params")
        .ok_or_else(|| missing("KeyDerivationMethod/PBKDF2-params"))?;
    let salt_el = params
        .child("Salt")
        .ok_or_else(|| missing("PBKDF2-params/Salt"))?;
    let salt_text = match salt_el.child("Specified") {
        Some(s) => s.text(),
        None if salt_el.child("OtherSource").is_some() => {
            return Err(PskcError::Unsupported {
                location: loc,
                what: "PBKDF2 Salt/OtherSource".into(),
            })
        }
        None => return Err(missing("PBKDF2-params/Salt/Specified")),
    };
    let salt = decode_base64(salt_text)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("PBKDF2-params/Salt/Specified", "is not non-empty Base64"))?;
    if salt.len() > MAX_SALT_BYTES {
        return Err(PskcError::Limit {
            location: loc,
            what: "the PBKDF2 salt length in bytes",
            limit: MAX_SALT_BYTES as u64,
        });
    }
    let iterations_text = params
        .child_text("IterationCount")
        .ok_or_else(|| missing("PBKDF2-params/IterationCount"))?;
    let iterations: u64 = iterations_text
        .parse()
        .map_err(|_| invalid("PBKDF2-params/IterationCount", "is not a number"))?;
    if iterations == 0 {
        return Err(invalid(
            "PBKDF2-params/IterationCount",
            "must be at least 1",
        ));
    }
    let iterations = u32::try_from(iterations)
        .ok()
        .filter(|&i| i <= MAX_PBKDF2_ITERATIONS)
        .ok_or(PskcError::Limit {
            location: loc,
            what: "the PBKDF2 iteration count",
            limit: u64::from(MAX_PBKDF2_ITERATIONS),
        })?;
    let key_len = match params.child_text("KeyLength") {
        None => 16,
        Some(t) => match t.parse::<usize>() {
            Ok(n @ (16 | 24 | 32)) => n,
            _ => {
                return Err(invalid(
                    "PBKDF2-params/KeyLength",
                    "must be 16, 24 or 32 (an AES key)",
                ))
            }
        },
    };
    let prf = match params.child("PRF").and_then(|p| p.attr("Algorithm")) {
        None => HmacHash::Sha1,
        Some(uri) => HmacHash::from_uri(uri).ok_or_else(|| PskcError::UnsupportedAlgorithm {
            location: loc,
            field: "PBKDF2-params/PRF".into(),
            uri: uri.to_string(),
        })?,
    };
    Ok(Pbkdf2Params {
        salt: salt.to_vec(),
        iterations,
        key_len,
        prf,
    })
}

/// `EncryptionMethod` + `CipherData/CipherValue` of an `EncryptedValue` or `MACKey`.
fn encrypted_data(
    el: &Element,
    loc: Location,
    field: &str,
) -> Result<(Cipher, Vec<u8>), PskcError> {
    let uri = el
        .child("EncryptionMethod")
        .and_then(|m| m.attr("Algorithm"))
        .ok_or_else(|| PskcError::MissingElement {
            location: loc,
            element: format!("{field}/EncryptionMethod/@Algorithm"),
        })?;
    let cipher = Cipher::from_uri(uri).ok_or_else(|| PskcError::UnsupportedAlgorithm {
        location: loc,
        field: format!("{field}/EncryptionMethod"),
        uri: uri.to_string(),
    })?;
    let cipher_data = el
        .child("CipherData")
        .ok_or_else(|| PskcError::MissingElement {
            location: loc,
            element: format!("{field}/CipherData"),
        })?;
    let Some(value) = cipher_data.child("CipherValue") else {
        if cipher_data.child("CipherReference").is_some() {
            return Err(PskcError::Unsupported {
                location: loc,
                what: "CipherReference (ciphertext stored outside the file)".into(),
            });
        }
        return Err(PskcError::MissingElement {
            location: loc,
            element: format!("{field}/CipherData/CipherValue"),
        });
    };
    let data = decode_base64(value.text()).ok_or_else(|| PskcError::InvalidValue {
        location: loc,
        field: format!("{field}/CipherData/CipherValue"),
        reason: "is not valid Base64".into(),
    })?;
    // RFC 6030 section 6.1: the IV is prepended, so at least one IV and one block.
    if data.len() < 32 || data.len() % 16 != 0 {
        return Err(PskcError::InvalidValue {
            location: loc,
            field: format!("{field}/CipherData/CipherValue"),
            reason: "is not an IV followed by whole AES blocks".into(),
        });
    }
    Ok((cipher, data.to_vec()))
}

fn check_key_len(cipher: Cipher, key: &[u8], loc: Location) -> Result<(), PskcError> {
    if key.len() == cipher.key_len() {
        Ok(())
    } else {
        Err(PskcError::WrongKeyLength {
            location: loc,
            cipher: cipher.name(),
            expected: cipher.key_len(),
            got: key.len(),
        })
    }
}

/// Base64 as XML Schema's `base64Binary`: whitespace (line breaks) anywhere is ignored.
fn decode_base64(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    let compact: Zeroizing<Vec<u8>> =
        Zeroizing::new(text.bytes().filter(|b| !b.is_ascii_whitespace()).collect());
    BASE64.decode(&compact).ok().map(Zeroizing::new)
}

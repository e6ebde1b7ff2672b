//! The example documents of RFC 6030, typed in from the RFC text (tests/data/rfc6030-figureN.xml),
//! checked against the values the RFC states, and the recovered secrets checked once more by
//! computing RFC 4226 Appendix D codes with mamori-otp.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::common::{fixture, hex, RFC4226_HOTP, RFC4226_TRUNCATED};
use mamori_otp::{Algorithm, Generator, OtpKind, OtpParams};
use mamori_pskc::{parse_pskc, Decryption, Location, PskcError, Token};

/// The pre-shared key of RFC 6030 Figure 6 (section 6.1).
const FIGURE6_PSK: &str = "12345678901234567890123456789012";
/// The plaintext secret of Figures 3, 5, 6, 7 and 10: ASCII "12345678901234567890".
const RFC_SECRET: &[u8] = b"12345678901234567890";

fn only(tokens: Vec<Token>) -> Token {
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    tokens.into_iter().next().unwrap()
}

/// The secret yields the RFC 4226 Appendix D values at `digits` digits from counter 0.
fn assert_rfc4226_codes(token: &Token) {
    let g = Generator::new(&token.secret, token.params).unwrap();
    let modulus = 10u64.pow(token.params.digits);
    for (counter, truncated) in RFC4226_TRUNCATED.iter().enumerate() {
        let want = format!(
            "{:0width$}",
            u64::from(*truncated) % modulus,
            width = token.params.digits as usize
        );
        assert_eq!(
            g.at_counter(counter as u64).as_str(),
            want,
            "counter {counter}"
        );
    }
    // and, at 6 digits, the published HOTP column itself
    let mut six = token.params;
    six.digits = 6;
    let g6 = Generator::new(&token.secret, six).unwrap();
    for (counter, code) in RFC4226_HOTP.iter().enumerate() {
        assert_eq!(g6.at_counter(counter as u64).as_str(), *code);
    }
}

#[test]
fn figure2_basic_container() {
    let t = only(parse_pskc(&fixture("rfc6030-figure2.xml"), Decryption::None).unwrap());
    // No DeviceInfo: the Key Id stands in for the serial.
    assert_eq!(t.serial, "12345678");
    assert_eq!(t.key_id.as_deref(), Some("12345678"));
    assert_eq!(t.issuer.as_deref(), Some("Issuer-A"));
    assert_eq!(t.manufacturer, None);
    // "MTIzNA==" is Base64 for "1234".
    assert_eq!(t.secret.as_bytes(), b"1234");
    assert_eq!(t.params, OtpParams::hotp(0));
}

#[test]
fn figure3_plaintext_hotp_with_supplementary_data() {
    let t = only(parse_pskc(&fixture("rfc6030-figure3.xml"), Decryption::None).unwrap());
    assert_eq!(t.serial, "987654321");
    assert_eq!(t.manufacturer.as_deref(), Some("Manufacturer"));
    assert_eq!(t.issuer.as_deref(), Some("Issuer"));
    assert_eq!(t.secret.as_bytes(), RFC_SECRET);
    assert_eq!(t.params.kind, OtpKind::Hotp);
    assert_eq!(t.params.algorithm, Algorithm::Sha1);
    assert_eq!(t.params.digits, 8);
    assert_eq!(t.params.counter, 0);
    assert_rfc4226_codes(&t);
}

#[test]
fn figure3_needs_no_key_but_tolerates_one() {
    // A key given for a plaintext file is simply not needed.
    let psk = hex(FIGURE6_PSK);
    let t = only(
        parse_pskc(
            &fixture("rfc6030-figure3.xml"),
            Decryption::PreSharedKey(&psk),
        )
        .unwrap(),
    );
    assert_eq!(t.secret.as_bytes(), RFC_SECRET);
}

#[test]
fn figure4_key_derivation_values_have_no_secret() {
    let err = parse_pskc(&fixture("rfc6030-figure4.xml"), Decryption::None).unwrap_err();
    assert_eq!(
        err,
        PskcError::MissingSecret {
            location: Location::KeyPackage(1)
        }
    );
}

#[test]
fn figure5_pin_key_is_an_unsupported_algorithm() {
    let err = parse_pskc(&fixture("rfc6030-figure5.xml"), Decryption::None).unwrap_err();
    assert_eq!(
        err,
        PskcError::UnsupportedAlgorithm {
            location: Location::KeyPackage(2),
            field: "Key/@Algorithm".into(),
            uri: "urn:ietf:params:xml:ns:keyprov:pskc:pin".into(),
        }
    );
    assert!(err
        .to_string()
        .contains("urn:ietf:params:xml:ns:keyprov:pskc:pin"));
}

#[test]
fn figure6_pre_shared_key_aes128_cbc_with_value_mac() {
    let psk = hex(FIGURE6_PSK);
    let t = only(
        parse_pskc(
            &fixture("rfc6030-figure6.xml"),
            Decryption::PreSharedKey(&psk),
        )
        .unwrap(),
    );
    assert_eq!(t.serial, "987654321");
    assert_eq!(t.key_id.as_deref(), Some("12345678"));
    // RFC 6030 section 6.1: the secret is 3132333435363738393031323334353637383930 (hex).
    assert_eq!(
        t.secret.as_bytes(),
        hex("3132333435363738393031323334353637383930")
    );
    assert_eq!(t.params.digits, 8);
    assert_eq!(t.params.counter, 0);
    assert_rfc4226_codes(&t);
}

#[test]
fn figure6_wrong_key_is_refused() {
    let mut psk = hex(FIGURE6_PSK);
    psk[15] ^= 1;
    let err = parse_pskc(
        &fixture("rfc6030-figure6.xml"),
        Decryption::PreSharedKey(&psk),
    )
    .unwrap_err();
    assert!(matches!(err, PskcError::Decryption { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("wrong key or password, or the file was altered"),
        "{err}"
    );
}

#[test]
fn figure6_without_key_asks_for_one() {
    let err = parse_pskc(&fixture("rfc6030-figure6.xml"), Decryption::None).unwrap_err();
    assert_eq!(
        err,
        PskcError::EncryptionRequired {
            location: Location::KeyPackage(1)
        }
    );
}

#[test]
fn figure7_password_qwerty_pbkdf2() {
    let t = only(
        parse_pskc(
            &fixture("rfc6030-figure7.xml"),
            Decryption::Password(b"qwerty"),
        )
        .unwrap(),
    );
    assert_eq!(t.serial, "987654321");
    assert_eq!(t.manufacturer.as_deref(), Some("TokenVendorAcme"));
    assert_eq!(t.issuer.as_deref(), Some("Example-Issuer"));
    assert_eq!(t.key_id.as_deref(), Some("123456"));
    assert_eq!(t.secret.as_bytes(), RFC_SECRET);
    assert_eq!(t.params.digits, 8);
    // Figure 7 carries no Counter: HOTP starts at 0.
    assert_eq!(t.params.counter, 0);
    assert_rfc4226_codes(&t);
}

#[test]
fn figure7_derived_key_is_the_one_the_rfc_states() {
    // RFC 6030 section 6.2 gives the PBKDF2 result for "qwerty" as
    // 651e63cd57008476af1ff6422cd02e41; using it as a pre-shared key must fail only because
    // the file asks for a password, which shows the two paths stay apart...
    let dk = hex("651e63cd57008476af1ff6422cd02e41");
    let err = parse_pskc(
        &fixture("rfc6030-figure7.xml"),
        Decryption::PreSharedKey(&dk),
    )
    .unwrap_err();
    assert!(matches!(err, PskcError::WrongKeyKind { .. }), "{err:?}");
    // ...and the same derivation computed here equals the RFC's value.
    let mut out = [0u8; 16];
    pbkdf2::pbkdf2_hmac::<sha1::Sha1>(
        b"qwerty",
        &data_encoding::BASE64.decode(b"Ej7/PEpyEpw=").unwrap(),
        1000,
        &mut out,
    );
    assert_eq!(out.to_vec(), dk);
}

#[test]
fn figure7_wrong_password_is_refused() {
    for wrong in [&b"QWERTY"[..], b"qwerty ", b"", b"password"] {
        let err =
            parse_pskc(&fixture("rfc6030-figure7.xml"), Decryption::Password(wrong)).unwrap_err();
        assert!(matches!(err, PskcError::Decryption { .. }), "{err:?}");
        assert!(err.to_string().contains("wrong key or password"), "{err}");
    }
}

#[test]
fn figure8_asymmetric_key_transport_is_unsupported() {
    let err = parse_pskc(&fixture("rfc6030-figure8.xml"), Decryption::None).unwrap_err();
    // The rsa_1_5 EncryptionMethod is named before any key is looked for.
    assert_eq!(
        err,
        PskcError::UnsupportedAlgorithm {
            location: Location::KeyPackage(1),
            field: "Data/Secret/EncryptionMethod".into(),
            uri: "http://www.w3.org/2001/04/xmlenc#rsa_1_5".into(),
        }
    );
}

#[test]
fn figure10_bulk_provisioning_has_a_duplicate_serial() {
    let err = parse_pskc(&fixture("rfc6030-figure10.xml"), Decryption::None).unwrap_err();
    assert_eq!(
        err,
        PskcError::DuplicateSerial {
            serial: "9999999".into(),
            first: Location::KeyPackage(3),
            second: Location::KeyPackage(4),
        }
    );
}

#[test]
fn figure10_without_the_duplicate_imports_all_packages() {
    // Drop the fourth package (the second key for device 9999999): the other three import.
    let text = String::from_utf8(fixture("rfc6030-figure10.xml")).unwrap();
    let start = text.match_indices("<KeyPackage>").nth(3).unwrap().0;
    let end = text.rfind("</KeyPackage>").unwrap() + "</KeyPackage>".len();
    let trimmed = format!("{}{}", &text[..start], &text[end..]);
    let tokens = parse_pskc(trimmed.as_bytes(), Decryption::None).unwrap();
    let serials: Vec<&str> = tokens.iter().map(|t| t.serial.as_str()).collect();
    assert_eq!(serials, ["654321", "123456", "9999999"]);
    for t in &tokens {
        assert_eq!(t.manufacturer.as_deref(), Some("TokenVendorAcme"));
        assert_eq!(t.secret.as_bytes(), RFC_SECRET);
        assert_eq!(t.params.digits, 8);
    }
}

#[test]
fn debug_output_never_shows_the_secret() {
    let t = only(parse_pskc(&fixture("rfc6030-figure3.xml"), Decryption::None).unwrap());
    let dbg = format!("{t:?}");
    assert!(dbg.contains("987654321"), "{dbg}");
    assert!(!dbg.contains("1234567890"), "{dbg}");
    assert!(!dbg.contains("MTIz"), "{dbg}");
    assert!(dbg.contains("redacted"), "{dbg}");
    let psk = hex(FIGURE6_PSK);
    let d = format!("{:?}", Decryption::PreSharedKey(&psk));
    assert!(!d.contains("18") && d.contains("redacted"), "{d}");
    let d = format!("{:?}", Decryption::Password(b"qwerty"));
    assert!(!d.contains("qwerty"), "{d}");
}

#[test]
fn pre_shared_key_from_hex_text() {
    let key = mamori_pskc::decode_psk_hex(" 0x1234 5678:9012-3456 7890 1234 5678 9012\n").unwrap();
    assert_eq!(key.as_slice(), hex(FIGURE6_PSK).as_slice());
    let t = only(
        parse_pskc(
            &fixture("rfc6030-figure6.xml"),
            Decryption::PreSharedKey(&key),
        )
        .unwrap(),
    );
    assert_eq!(t.secret.as_bytes(), RFC_SECRET);
    for (bad, reason) in [
        ("", "is empty"),
        (
            "12345678901234567890123456789g12",
            "contains a character that is not a hexadecimal digit",
        ),
        (
            "123456789012345678901234567890123",
            "has an odd number of hexadecimal digits",
        ),
        (
            "1234567890123456789012345678901234",
            "is not 16, 24 or 32 bytes long",
        ),
    ] {
        let err = mamori_pskc::decode_psk_hex(bad).unwrap_err();
        assert_eq!(err, PskcError::BadPreSharedKey { reason }, "{bad}");
        assert!(!err.to_string().contains("1234567890"), "{err}");
    }
}

#[test]
fn token_new_fills_the_essentials() {
    let secret = mamori_otp::Secret::from_bytes(RFC_SECRET.to_vec()).unwrap();
    let t = Token::new("SN-1", secret, OtpParams::hotp(3));
    assert_eq!(t.serial, "SN-1");
    assert_eq!(t.params.counter, 3);
    assert_eq!((t.manufacturer, t.time_drift), (None, None));
}

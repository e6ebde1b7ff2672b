//! Every way a PSKC file is refused, each with its one error (naming the key package and the
//! field) and no tokens; and the limits that bound hostile input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::common::{write_pskc, GenToken, Protection};
use data_encoding::BASE64;
use mamori_pskc::{
    parse_pskc, Decryption, Location, PskcError, MAX_DEPTH, MAX_ELEMENTS_PER_CHILD,
    MAX_INPUT_BYTES, MAX_PBKDF2_ITERATIONS, MAX_TOKENS,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

const PSK: [u8; 16] = *b"0123456789abcdef";
const MAC_KEY: [u8; 20] = *b"mac-key-for-testing!";
/// The secret of every generated token, so messages can be searched for it.
const SECRET: &[u8] = b"very-secret-seed-1234";

fn tokens() -> Vec<GenToken> {
    vec![
        GenToken::hotp("S-1", SECRET, 0, 6),
        GenToken::totp("S-2", SECRET, 30, 6),
        GenToken::hotp("S-3", SECRET, 5, 8),
    ]
}

fn plain() -> String {
    write_pskc(
        &tokens(),
        &Protection::Plain,
        "",
        false,
        &mut StdRng::seed_from_u64(1),
    )
}

fn psk_file() -> String {
    let protection = Protection::Psk {
        key: PSK.to_vec(),
        mac_key: MAC_KEY.to_vec(),
    };
    write_pskc(
        &tokens(),
        &protection,
        "pskc",
        false,
        &mut StdRng::seed_from_u64(2),
    )
}

fn password_file() -> String {
    let protection = Protection::Password {
        password: b"hunter2".to_vec(),
        salt: b"saltsalt".to_vec(),
        iterations: 16,
        mac_key: MAC_KEY.to_vec(),
    };
    write_pskc(
        &tokens(),
        &protection,
        "",
        false,
        &mut StdRng::seed_from_u64(3),
    )
}

/// Parses, expects an error, and checks that its message carries no secret material.
fn refuse(xml: &str, d: Decryption<'_>) -> PskcError {
    let err = match parse_pskc(xml.as_bytes(), d) {
        Ok(tokens) => panic!("expected an error, got {} tokens", tokens.len()),
        Err(e) => e,
    };
    let msg = err.to_string();
    for needle in [
        String::from_utf8_lossy(SECRET).to_string(),
        BASE64.encode(SECRET),
        String::from_utf8_lossy(&PSK).to_string(),
        "hunter2".to_string(),
    ] {
        assert!(!msg.contains(&needle), "message leaks a secret: {msg}");
    }
    err
}

/// Replaces the `n`-th (0-based) CipherValue's decoded bytes with `f(bytes)`.
fn tamper_cipher_value(xml: &str, n: usize, f: impl FnOnce(&mut Vec<u8>)) -> String {
    let open = "<xenc:CipherValue>";
    let start = xml.match_indices(open).nth(n).unwrap().0 + open.len();
    let end = start + xml[start..].find("</xenc:CipherValue>").unwrap();
    let mut bytes = BASE64.decode(xml[start..end].trim().as_bytes()).unwrap();
    f(&mut bytes);
    format!("{}{}{}", &xml[..start], BASE64.encode(&bytes), &xml[end..])
}

#[test]
fn the_fixtures_themselves_import() {
    assert_eq!(
        parse_pskc(plain().as_bytes(), Decryption::None)
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        parse_pskc(psk_file().as_bytes(), Decryption::PreSharedKey(&PSK))
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        parse_pskc(password_file().as_bytes(), Decryption::Password(b"hunter2"))
            .unwrap()
            .len(),
        3
    );
}

// ---- keys, passwords, MACs ----

#[test]
fn wrong_pre_shared_key() {
    let mut wrong = PSK;
    wrong[0] ^= 0x80;
    let err = refuse(&psk_file(), Decryption::PreSharedKey(&wrong));
    assert!(matches!(err, PskcError::Decryption { .. }), "{err:?}");
    assert!(err
        .to_string()
        .contains("wrong key or password, or the file was altered"));
}

#[test]
fn wrong_password() {
    let err = refuse(&password_file(), Decryption::Password(b"hunter3"));
    assert!(matches!(err, PskcError::Decryption { .. }), "{err:?}");
}

#[test]
fn flipped_ciphertext_byte_is_a_mac_error() {
    // CipherValue 0 is the MAC key; 1, 2, 3 are the secrets of packages 1, 2, 3.
    for (n, package) in [(1, 1), (2, 2), (3, 3)] {
        let xml = tamper_cipher_value(&psk_file(), n, |b| b[20] ^= 0x01);
        let err = refuse(&xml, Decryption::PreSharedKey(&PSK));
        assert_eq!(
            err,
            PskcError::Decryption {
                location: Location::KeyPackage(package),
                field: "Data/Secret".into()
            }
        );
    }
}

#[test]
fn flipped_iv_byte_is_a_mac_error() {
    let xml = tamper_cipher_value(&psk_file(), 2, |b| b[0] ^= 0x01);
    let err = refuse(&xml, Decryption::PreSharedKey(&PSK));
    assert_eq!(
        err,
        PskcError::Decryption {
            location: Location::KeyPackage(2),
            field: "Data/Secret".into()
        }
    );
}

#[test]
fn altered_value_mac_is_refused() {
    let xml = psk_file();
    let open = "<pskc:ValueMAC>";
    let start = xml.find(open).unwrap() + open.len();
    let end = start + xml[start..].find('<').unwrap();
    let mut mac = BASE64.decode(&xml.as_bytes()[start..end]).unwrap();
    mac[19] ^= 0x40;
    let xml = format!("{}{}{}", &xml[..start], BASE64.encode(&mac), &xml[end..]);
    let err = refuse(&xml, Decryption::PreSharedKey(&PSK));
    assert_eq!(
        err,
        PskcError::Decryption {
            location: Location::KeyPackage(1),
            field: "Data/Secret".into()
        }
    );
}

#[test]
fn truncated_value_mac_is_refused() {
    let xml = psk_file();
    let open = "<pskc:ValueMAC>";
    let start = xml.find(open).unwrap() + open.len();
    let end = start + xml[start..].find('<').unwrap();
    let mac = BASE64.decode(&xml.as_bytes()[start..end]).unwrap();
    let xml = format!(
        "{}{}{}",
        &xml[..start],
        BASE64.encode(&mac[..10]),
        &xml[end..]
    );
    assert!(matches!(
        refuse(&xml, Decryption::PreSharedKey(&PSK)),
        PskcError::Decryption { .. }
    ));
}

#[test]
fn altered_mac_key_is_refused() {
    let xml = tamper_cipher_value(&psk_file(), 0, |b| b[17] ^= 0x01);
    let err = refuse(&xml, Decryption::PreSharedKey(&PSK));
    assert!(matches!(err, PskcError::Decryption { .. }), "{err:?}");
}

#[test]
fn encrypted_file_without_a_key() {
    for xml in [psk_file(), password_file()] {
        let err = refuse(&xml, Decryption::None);
        assert_eq!(
            err,
            PskcError::EncryptionRequired {
                location: Location::KeyPackage(1)
            }
        );
        assert!(err.to_string().contains("--psk"), "{err}");
    }
}

#[test]
fn password_for_a_pre_shared_key_file_and_the_reverse() {
    let err = refuse(&psk_file(), Decryption::Password(b"hunter2"));
    assert!(
        matches!(
            err,
            PskcError::WrongKeyKind {
                expected: "a pre-shared key",
                ..
            }
        ),
        "{err:?}"
    );
    let err = refuse(&password_file(), Decryption::PreSharedKey(&PSK));
    assert!(
        matches!(
            err,
            PskcError::WrongKeyKind {
                given: "a pre-shared key",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn pre_shared_key_of_the_wrong_length() {
    for len in [0, 15, 17, 32] {
        let key = vec![7u8; len];
        let err = refuse(&psk_file(), Decryption::PreSharedKey(&key));
        assert_eq!(
            err,
            PskcError::WrongKeyLength {
                location: Location::Container,
                cipher: "aes128-cbc",
                expected: 16,
                got: len
            }
        );
    }
}

#[test]
fn encrypted_value_without_value_mac() {
    let xml = psk_file();
    let start = xml.find("<pskc:ValueMAC>").unwrap();
    let end = xml.find("</pskc:ValueMAC>").unwrap() + "</pskc:ValueMAC>".len();
    let xml = format!("{}{}", &xml[..start], &xml[end..]);
    let err = refuse(&xml, Decryption::PreSharedKey(&PSK));
    assert_eq!(
        err,
        PskcError::MissingMac {
            location: Location::KeyPackage(1),
            field: "Data/Secret".into(),
            missing: "ValueMAC"
        }
    );
}

#[test]
fn encrypted_values_without_mac_method() {
    let xml = psk_file();
    let start = xml.find("<pskc:MACMethod").unwrap();
    let end = xml.find("</pskc:MACMethod>").unwrap() + "</pskc:MACMethod>".len();
    let xml = format!("{}{}", &xml[..start], &xml[end..]);
    let err = refuse(&xml, Decryption::PreSharedKey(&PSK));
    assert!(
        matches!(
            err,
            PskcError::MissingMac {
                missing: "MACMethod",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn unsupported_crypto_algorithms_are_named() {
    let cases = [
        (
            psk_file().replacen("xmldsig#hmac-sha1", "xmldsig#hmac-md5", 1),
            Decryption::PreSharedKey(&PSK),
            "http://www.w3.org/2000/09/xmldsig#hmac-md5",
        ),
        (
            psk_file().replace("xmlenc#aes128-cbc", "xmlenc#kw-aes128"),
            Decryption::PreSharedKey(&PSK),
            "http://www.w3.org/2001/04/xmlenc#kw-aes128",
        ),
        (
            password_file().replace(
                "<PRF/>",
                "<PRF Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#hmac-md5\"/>",
            ),
            Decryption::Password(b"hunter2"),
            "http://www.w3.org/2001/04/xmldsig-more#hmac-md5",
        ),
        (
            password_file().replace("pkcs-5v2-0#pbkdf2", "pkcs-5v2-0#scrypt"),
            Decryption::Password(b"hunter2"),
            "http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#scrypt",
        ),
    ];
    for (xml, d, uri) in cases {
        let err = refuse(&xml, d);
        assert!(
            matches!(&err, PskcError::UnsupportedAlgorithm { uri: u, .. } if u == uri),
            "{err:?}"
        );
        assert!(err.to_string().contains(uri), "{err}");
    }
}

#[test]
fn pbkdf2_parameters_are_checked() {
    let file = password_file();
    let cases = [
        (
            file.replace("<IterationCount>16<", "<IterationCount>0<"),
            "IterationCount",
        ),
        (
            file.replace("<IterationCount>16<", "<IterationCount>many<"),
            "IterationCount",
        ),
        (
            file.replace("<KeyLength>16<", "<KeyLength>20<"),
            "KeyLength",
        ),
    ];
    for (xml, field) in cases {
        let err = refuse(&xml, Decryption::Password(b"hunter2"));
        assert!(
            matches!(&err, PskcError::InvalidValue { field: f, .. } if f.contains(field)),
            "{err:?}"
        );
    }
}

#[test]
fn pbkdf2_iteration_ceiling() {
    let xml = password_file().replace(
        "<IterationCount>16<",
        &format!("<IterationCount>{}<", u64::from(MAX_PBKDF2_ITERATIONS) + 1),
    );
    let err = refuse(&xml, Decryption::Password(b"hunter2"));
    assert!(
        matches!(
            err,
            PskcError::Limit {
                what: "the PBKDF2 iteration count",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn asymmetric_encryption_key_is_unsupported() {
    let xml = psk_file().replace(
        "<ds:KeyName>Pre-shared-key</ds:KeyName>",
        "<ds:X509Data><ds:X509Certificate>MIIB</ds:X509Certificate></ds:X509Data>",
    );
    let err = refuse(&xml, Decryption::PreSharedKey(&PSK));
    assert!(matches!(err, PskcError::Unsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("asymmetric"), "{err}");
}

// ---- structure ----

#[test]
fn malformed_xml_names_the_line() {
    let xml = plain();
    let cases = [
        xml[..xml.len() / 2].to_string(),                 // truncated
        xml.replacen("</DeviceInfo>", "</Device>", 2),    // mismatched end tag
        xml.replacen("<Issuer>", "<Issuer attr=\"x>", 1), // unclosed attribute
        xml.replacen("Test Issuer", "Test & Issuer", 1),  // bare ampersand
        format!("{xml}<KeyContainer/>"),                  // second root
        "this is not XML at all".to_string(),
        String::new(),
    ];
    for bad in cases {
        let err = refuse(&bad, Decryption::None);
        match err {
            PskcError::XmlSyntax { line, .. } => assert!(line >= 1),
            other => panic!("{other:?} for {bad:.60}"),
        }
    }
    // the line of a mismatched end tag is where it is
    let bad = xml.replacen("</Issuer>", "</Isuer>", 1);
    let want = 1 + bad[..bad.find("</Isuer>").unwrap()].matches('\n').count();
    match refuse(&bad, Decryption::None) {
        PskcError::XmlSyntax { line, .. } => assert_eq!(line, want),
        other => panic!("{other:?}"),
    }
}

#[test]
fn not_utf8() {
    let mut bytes = plain().into_bytes();
    let at = bytes.len() - 40;
    bytes[at] = 0xFF;
    let err = parse_pskc(&bytes, Decryption::None).unwrap_err();
    assert!(
        matches!(
            err,
            PskcError::NotUtf8 {
                location: Location::Line(_)
            }
        ),
        "{err:?}"
    );
}

#[test]
fn not_a_key_container() {
    let err = refuse(
        "<?xml version=\"1.0\"?><html><body/></html>",
        Decryption::None,
    );
    assert_eq!(
        err,
        PskcError::NotPskc {
            found: "html".into()
        }
    );
}

#[test]
fn unsupported_version() {
    let err = refuse(
        &plain().replacen("Version=\"1.0\"", "Version=\"2.0\"", 1),
        Decryption::None,
    );
    assert_eq!(
        err,
        PskcError::UnsupportedVersion {
            version: "2.0".into()
        }
    );
}

#[test]
fn empty_container_has_no_tokens() {
    let err = refuse(
        "<KeyContainer Version=\"1.0\" xmlns=\"urn:ietf:params:xml:ns:keyprov:pskc\"/>",
        Decryption::None,
    );
    assert_eq!(err, PskcError::NoTokens);
    let err = refuse(
        "<KeyContainer Version=\"1.0\"><!-- nothing --></KeyContainer>",
        Decryption::None,
    );
    assert_eq!(err, PskcError::NoTokens);
}

#[test]
fn doctype_is_refused_before_anything_expands() {
    let laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<KeyContainer Version="1.0"><KeyPackage><Key Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:hotp"><Issuer>&lol3;</Issuer></Key></KeyPackage></KeyContainer>"#;
    assert_eq!(
        refuse(laughs, Decryption::None),
        PskcError::Doctype { line: 2 }
    );

    let external = plain().replacen(
        "<KeyContainer",
        "<!DOCTYPE KeyContainer [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n<KeyContainer",
        1,
    );
    assert!(matches!(
        refuse(&external, Decryption::None),
        PskcError::Doctype { .. }
    ));

    // an undeclared entity reference is simply malformed
    let undeclared = plain().replacen("Test Issuer", "&xxe;", 1);
    assert!(matches!(
        refuse(&undeclared, Decryption::None),
        PskcError::XmlSyntax { .. }
    ));
}

#[test]
fn unsupported_otp_algorithm_is_named() {
    let ocra = "urn:ietf:params:xml:ns:keyprov:pskc#OCRA-1:HOTP-SHA512-8:C-QN08";
    let xml = plain().replacen("urn:ietf:params:xml:ns:keyprov:pskc#totp", ocra, 1);
    let err = refuse(&xml, Decryption::None);
    assert_eq!(
        err,
        PskcError::UnsupportedAlgorithm {
            location: Location::KeyPackage(2),
            field: "Key/@Algorithm".into(),
            uri: ocra.into()
        }
    );
    assert!(err.to_string().contains(ocra));
}

#[test]
fn duplicate_serial() {
    let xml = plain().replace(">S-3<", ">S-1<");
    let err = refuse(&xml, Decryption::None);
    assert_eq!(
        err,
        PskcError::DuplicateSerial {
            serial: "S-1".into(),
            first: Location::KeyPackage(1),
            second: Location::KeyPackage(3)
        }
    );
}

#[test]
fn missing_secret() {
    let xml = plain();
    let start = xml.match_indices("<Secret>").nth(1).unwrap().0;
    let end = xml.match_indices("</Secret>").nth(1).unwrap().0 + "</Secret>".len();
    let xml = format!("{}{}", &xml[..start], &xml[end..]);
    assert_eq!(
        refuse(&xml, Decryption::None),
        PskcError::MissingSecret {
            location: Location::KeyPackage(2)
        }
    );
    // a Secret with neither PlainValue nor EncryptedValue is no secret either
    let empty = plain().replacen(
        &format!("<PlainValue>{}</PlainValue>", BASE64.encode(SECRET)),
        "",
        1,
    );
    assert_eq!(
        refuse(&empty, Decryption::None),
        PskcError::MissingSecret {
            location: Location::KeyPackage(1)
        }
    );
}

#[test]
fn missing_algorithm_key_and_serial() {
    let xml = plain().replacen(
        " Algorithm=\"urn:ietf:params:xml:ns:keyprov:pskc:hotp\"",
        "",
        1,
    );
    assert!(matches!(
        refuse(&xml, Decryption::None),
        PskcError::MissingElement { location: Location::KeyPackage(1), ref element } if element == "Key/@Algorithm"
    ));

    let xml = plain();
    let start = xml.find("<Key ").unwrap();
    let end = xml.find("</Key>").unwrap() + "</Key>".len();
    let no_key = format!("{}{}", &xml[..start], &xml[end..]);
    assert!(matches!(
        refuse(&no_key, Decryption::None),
        PskcError::MissingElement { location: Location::KeyPackage(1), ref element } if element == "Key"
    ));

    let no_serial =
        xml.replacen("<SerialNo>S-1</SerialNo>", "", 1)
            .replacen("<Key Id=\"S-1\" ", "<Key ", 1);
    assert!(matches!(
        refuse(&no_serial, Decryption::None),
        PskcError::MissingElement { location: Location::KeyPackage(1), ref element } if element == "DeviceInfo/SerialNo"
    ));
}

#[test]
fn two_keys_in_one_package() {
    let xml = plain();
    let start = xml.find("<Key ").unwrap();
    let end = xml.find("</Key>").unwrap() + "</Key>".len();
    let doubled = format!("{}{}{}", &xml[..end], &xml[start..end], &xml[end..]);
    assert!(matches!(
        refuse(&doubled, Decryption::None),
        PskcError::InvalidValue { location: Location::KeyPackage(1), ref field, .. } if field == "Key"
    ));
}

#[test]
fn digits_out_of_range() {
    for (len, digits) in [
        ("5", 5),
        ("11", 11),
        ("4", 4),
        ("99999999999", 99_999_999_999),
    ] {
        let xml = plain().replacen("Length=\"6\"", &format!("Length=\"{len}\""), 1);
        assert_eq!(
            refuse(&xml, Decryption::None),
            PskcError::InvalidDigits {
                location: Location::KeyPackage(1),
                digits
            }
        );
    }
    let xml = plain().replacen("Length=\"6\"", "Length=\"six\"", 1);
    assert!(matches!(
        refuse(&xml, Decryption::None),
        PskcError::InvalidValue { .. }
    ));
}

#[test]
fn response_formats_other_than_plain_decimal() {
    let hex = plain().replacen("Encoding=\"DECIMAL\"", "Encoding=\"HEXADECIMAL\"", 1);
    assert!(matches!(
        refuse(&hex, Decryption::None),
        PskcError::Unsupported { .. }
    ));
    let luhn = plain().replacen(
        "Encoding=\"DECIMAL\"",
        "Encoding=\"DECIMAL\" CheckDigits=\"true\"",
        1,
    );
    let err = refuse(&luhn, Decryption::None);
    assert!(err.to_string().contains("CheckDigits"), "{err}");
    let suite = plain().replacen(
        "<AlgorithmParameters>",
        "<AlgorithmParameters><Suite>MD5</Suite>",
        1,
    );
    assert!(matches!(
        refuse(&suite, Decryption::None),
        PskcError::UnsupportedAlgorithm { .. }
    ));
}

#[test]
fn bad_data_values() {
    let cases = [
        (
            plain().replacen("<Counter><PlainValue>0<", "<Counter><PlainValue>zero<", 1),
            "Data/Counter",
        ),
        (
            plain().replacen("<Counter><PlainValue>0<", "<Counter><PlainValue>-1<", 1),
            "Data/Counter",
        ),
        (
            plain().replacen(
                "<TimeInterval><PlainValue>30<",
                "<TimeInterval><PlainValue>0<",
                1,
            ),
            "Data/TimeInterval",
        ),
        (
            plain().replacen(
                "<TimeDrift><PlainValue>-1<",
                "<TimeDrift><PlainValue>1e3<",
                1,
            ),
            "Data/TimeDrift",
        ),
        (
            plain().replacen(&BASE64.encode(SECRET), "!!not base64!!", 1),
            "Data/Secret/PlainValue",
        ),
    ];
    for (xml, field) in cases {
        let err = refuse(&xml, Decryption::None);
        assert!(
            matches!(&err, PskcError::InvalidValue { field: f, .. } if f == field),
            "{field}: {err:?}"
        );
    }
}

#[test]
fn serial_must_be_printable_and_short() {
    let long = "X".repeat(129);
    let xml = plain().replacen(">S-1<", &format!(">{long}<"), 1);
    assert!(matches!(
        refuse(&xml, Decryption::None),
        PskcError::InvalidValue { .. }
    ));
    let xml = plain().replacen(">S-1<", ">S&#7;1<", 1);
    assert!(matches!(
        refuse(&xml, Decryption::None),
        PskcError::InvalidValue { .. }
    ));
}

// ---- limits ----

#[test]
fn input_size_limit() {
    let mut xml = plain().into_bytes();
    xml.resize(MAX_INPUT_BYTES + 1, b' ');
    assert_eq!(
        parse_pskc(&xml, Decryption::None).unwrap_err(),
        PskcError::TooLarge {
            size: MAX_INPUT_BYTES + 1,
            limit: MAX_INPUT_BYTES
        }
    );
    // exactly at the limit is fine (trailing whitespace after the root)
    xml.truncate(MAX_INPUT_BYTES);
    assert_eq!(parse_pskc(&xml, Decryption::None).unwrap().len(), 3);
}

#[test]
fn token_count_limit() {
    // The smallest package that imports is about 150 bytes, so MAX_TOKENS + 1 of them still
    // fit under the input size limit.
    let mut xml = String::with_capacity(MAX_INPUT_BYTES);
    xml.push_str("<KeyContainer Version=\"1.0\">");
    for i in 0..=MAX_TOKENS {
        xml.push_str(&format!(
            "<KeyPackage><Key Id=\"{i}\" Algorithm=\"urn:ietf:params:xml:ns:keyprov:pskc:hotp\"><Data><Secret><PlainValue>MTIzNA==</PlainValue></Secret></Data></Key></KeyPackage>"
        ));
    }
    xml.push_str("</KeyContainer>");
    assert!(xml.len() <= MAX_INPUT_BYTES, "{}", xml.len());
    assert_eq!(
        parse_pskc(xml.as_bytes(), Decryption::None).unwrap_err(),
        PskcError::TooManyTokens { limit: MAX_TOKENS }
    );
}

#[test]
fn nesting_depth_limit() {
    let deep = format!("{}{}", "<x>".repeat(MAX_DEPTH), "</x>".repeat(MAX_DEPTH));
    let xml = plain().replacen("<Issuer>", &format!("{deep}<Issuer>"), 1);
    let err = refuse(&xml, Decryption::None);
    assert!(
        matches!(
            err,
            PskcError::Limit {
                what: "XML nesting depth",
                ..
            }
        ),
        "{err:?}"
    );
    // just below the limit is fine
    let ok_depth = MAX_DEPTH - 4;
    let shallow = format!("{}{}", "<x>".repeat(ok_depth), "</x>".repeat(ok_depth));
    let xml = plain().replacen("<Issuer>", &format!("{shallow}<Issuer>"), 1);
    assert_eq!(
        parse_pskc(xml.as_bytes(), Decryption::None).unwrap().len(),
        3
    );
}

#[test]
fn elements_per_package_limit() {
    let many = "<x/>".repeat(MAX_ELEMENTS_PER_CHILD);
    let xml = plain().replacen("<Issuer>", &format!("{many}<Issuer>"), 1);
    let err = refuse(&xml, Decryption::None);
    assert!(matches!(err, PskcError::Limit { .. }), "{err:?}");
}

#[test]
fn secret_length_limit() {
    let big = BASE64.encode(&[7u8; 257]);
    let xml = plain().replacen(&BASE64.encode(SECRET), &big, 1);
    let err = refuse(&xml, Decryption::None);
    assert!(
        matches!(
            err,
            PskcError::Limit {
                location: Location::KeyPackage(1),
                ..
            }
        ),
        "{err:?}"
    );
    let ok = BASE64.encode(&[7u8; 256]);
    let xml = plain().replacen(&BASE64.encode(SECRET), &ok, 1);
    assert_eq!(
        parse_pskc(xml.as_bytes(), Decryption::None).unwrap()[0]
            .secret
            .len(),
        256
    );
}

//! Files made by this suite's own PSKC writer (tests/pskc/common.rs): plaintext, pre-shared key
//! (AES-128 and AES-256), password-based, HOTP and TOTP, several key packages, different
//! namespace prefixes. Each imports exactly the tokens that were written.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::common::{write_pskc, GenToken, Kind, Protection};
use mamori_otp::{Algorithm, Generator, OtpKind};
use mamori_pskc::{parse_pskc, Decryption, Token};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn sample_tokens() -> Vec<GenToken> {
    let mut sha256 = GenToken::totp("TOTP-0002", b"12345678901234567890123456789012", 30, 8);
    sha256.suite = Some("HMAC-SHA256".into());
    let mut colon_totp = GenToken::totp("TOTP-0003", &[0xA5; 20], 60, 6);
    colon_totp.algorithm_uri = Some("urn:ietf:params:xml:ns:keyprov:pskc:totp".into());
    colon_totp.drift = Some(3);
    vec![
        GenToken::hotp("HOTP-0001", b"12345678901234567890", 0, 6),
        GenToken::hotp("HOTP-0002", &[0x42; 32], 17, 8),
        GenToken::totp("TOTP-0001", b"12345678901234567890", 30, 8),
        sha256,
        colon_totp,
    ]
}

/// Every field written comes back.
fn assert_same(written: &[GenToken], read: &[Token]) {
    assert_eq!(written.len(), read.len());
    for (w, r) in written.iter().zip(read) {
        assert_eq!(r.serial, w.serial);
        assert_eq!(r.key_id.as_deref(), Some(w.serial.as_str()));
        assert_eq!(r.manufacturer, w.manufacturer);
        assert_eq!(r.model, w.model);
        assert_eq!(r.issuer.as_deref(), Some("Test Issuer"));
        assert_eq!(r.secret.as_bytes(), w.secret.as_slice(), "{}", w.serial);
        assert_eq!(r.params.digits, w.digits);
        let want_alg = match w.suite.as_deref() {
            Some("HMAC-SHA256") => Algorithm::Sha256,
            _ => Algorithm::Sha1,
        };
        assert_eq!(r.params.algorithm, want_alg);
        match w.kind {
            Kind::Hotp { counter } => {
                assert_eq!(r.params.kind, OtpKind::Hotp);
                assert_eq!(r.params.counter, counter);
                assert_eq!(r.time_drift, None);
            }
            Kind::Totp { period } => {
                assert_eq!(r.params.kind, OtpKind::Totp);
                assert_eq!(r.params.period, period);
                assert_eq!(r.time_drift, w.drift);
                assert_eq!(r.time, Some(0));
            }
        }
    }
}

#[test]
fn plaintext_hotp_and_totp_several_packages() {
    let tokens = sample_tokens();
    let mut rng = StdRng::seed_from_u64(1);
    let xml = write_pskc(&tokens, &Protection::Plain, "", false, &mut rng);
    let read = parse_pskc(xml.as_bytes(), Decryption::None).unwrap();
    assert_same(&tokens, &read);
}

#[test]
fn plaintext_rfc6238_codes_from_imported_totp_tokens() {
    // RFC 6238 Appendix B: T = 59 gives 94287082 (SHA-1) and 46119246 (SHA-256) at 8 digits.
    let tokens = sample_tokens();
    let mut rng = StdRng::seed_from_u64(2);
    let xml = write_pskc(&tokens, &Protection::Plain, "pskc", false, &mut rng);
    let read = parse_pskc(xml.as_bytes(), Decryption::None).unwrap();
    let code = |serial: &str| {
        let t = read.iter().find(|t| t.serial == serial).unwrap();
        Generator::new(&t.secret, t.params)
            .unwrap()
            .at_time(59)
            .to_string()
    };
    assert_eq!(code("TOTP-0001"), "94287082");
    assert_eq!(code("TOTP-0002"), "46119246");
    // and RFC 4226 Appendix D for the HOTP token at counter 0
    let t = &read[0];
    assert_eq!(
        Generator::new(&t.secret, t.params)
            .unwrap()
            .at_counter(0)
            .as_str(),
        "755224"
    );
}

#[test]
fn pre_shared_key_aes128_with_mac() {
    let tokens = sample_tokens();
    let mut rng = StdRng::seed_from_u64(3);
    let key: Vec<u8> = (0..16).map(|_| rng.gen()).collect();
    let mac_key: Vec<u8> = (0..20).map(|_| rng.gen()).collect();
    let protection = Protection::Psk {
        key: key.clone(),
        mac_key,
    };
    let xml = write_pskc(&tokens, &protection, "pskc", false, &mut rng);
    assert!(
        !xml.contains("PlainValue>MTIz"),
        "secrets must be encrypted"
    );
    let read = parse_pskc(xml.as_bytes(), Decryption::PreSharedKey(&key)).unwrap();
    assert_same(&tokens, &read);
}

#[test]
fn pre_shared_key_aes256_with_encrypted_counters() {
    let tokens = sample_tokens();
    let mut rng = StdRng::seed_from_u64(4);
    let key: Vec<u8> = (0..32).map(|_| rng.gen()).collect();
    let mac_key: Vec<u8> = (0..32).map(|_| rng.gen()).collect();
    let protection = Protection::Psk {
        key: key.clone(),
        mac_key,
    };
    let xml = write_pskc(&tokens, &protection, "ns7", true, &mut rng);
    assert!(xml.contains("aes256-cbc"));
    assert!(!xml.contains("<ns7:Counter><ns7:PlainValue>"));
    let read = parse_pskc(xml.as_bytes(), Decryption::PreSharedKey(&key)).unwrap();
    assert_same(&tokens, &read);
}

#[test]
fn password_based_pbkdf2() {
    let tokens = sample_tokens();
    let mut rng = StdRng::seed_from_u64(5);
    let protection = Protection::Password {
        password: "correct horse battery staple".into(),
        salt: (0..16).map(|_| rng.gen()).collect(),
        iterations: 64, // cheap: the RFC figure covers the real count
        mac_key: (0..20).map(|_| rng.gen()).collect(),
    };
    let xml = write_pskc(&tokens, &protection, "", true, &mut rng);
    let read = parse_pskc(
        xml.as_bytes(),
        Decryption::Password(b"correct horse battery staple"),
    )
    .unwrap();
    assert_same(&tokens, &read);
}

#[test]
fn many_random_packages_round_trip() {
    let mut rng = StdRng::seed_from_u64(6);
    for round in 0..6 {
        let count = rng.gen_range(1..=60);
        let tokens: Vec<GenToken> = (0..count)
            .map(|i| {
                let len = rng.gen_range(10..=64);
                let secret: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
                let digits = rng.gen_range(6..=10);
                let serial = format!("R{round}-{i:05}-{}", rng.gen::<u32>());
                if rng.gen_bool(0.5) {
                    GenToken::hotp(&serial, &secret, rng.gen_range(0..1_000_000), digits)
                } else {
                    GenToken::totp(&serial, &secret, [30, 60][rng.gen_range(0..2)], digits)
                }
            })
            .collect();
        let protection = match round % 3 {
            0 => Protection::Plain,
            1 => Protection::Psk {
                key: (0..16).map(|_| rng.gen()).collect(),
                mac_key: (0..20).map(|_| rng.gen()).collect(),
            },
            _ => Protection::Password {
                password: b"pw".to_vec(),
                salt: (0..8).map(|_| rng.gen()).collect(),
                iterations: 8,
                mac_key: (0..20).map(|_| rng.gen()).collect(),
            },
        };
        let xml = write_pskc(
            &tokens,
            &protection,
            ["", "pskc", "p"][round % 3],
            round % 2 == 0,
            &mut rng,
        );
        let decryption = match &protection {
            Protection::Plain => Decryption::None,
            Protection::Psk { key, .. } => Decryption::PreSharedKey(key),
            Protection::Password { password, .. } => Decryption::Password(password),
        };
        let read = parse_pskc(xml.as_bytes(), decryption).unwrap();
        assert_same(&tokens, &read);
    }
}

#[test]
fn byte_order_mark_crlf_and_comments_are_fine() {
    let tokens = sample_tokens();
    let mut rng = StdRng::seed_from_u64(7);
    let xml = write_pskc(&tokens, &Protection::Plain, "", false, &mut rng);
    let mut variant = String::from("\u{feff}");
    variant.push_str(
        &xml.replace('\n', "\r\n")
            .replace("<KeyPackage>", "<!-- a vendor comment --><KeyPackage>"),
    );
    let read = parse_pskc(variant.as_bytes(), Decryption::None).unwrap();
    assert_same(&tokens, &read);
}

#[test]
fn vendors_algorithm_uri_spellings_are_accepted() {
    let mut rng = StdRng::seed_from_u64(8);
    for (uri, kind) in [
        ("urn:ietf:params:xml:ns:keyprov:pskc:hotp", OtpKind::Hotp),
        ("urn:ietf:params:xml:ns:keyprov:pskc#hotp", OtpKind::Hotp),
        ("http://www.ietf.org/keyprov/pskc#hotp", OtpKind::Hotp),
        ("urn:ietf:params:xml:ns:keyprov:pskc#totp", OtpKind::Totp),
        ("urn:ietf:params:xml:ns:keyprov:pskc:totp", OtpKind::Totp),
        ("urn:ietf:params:xml:ns:keyprov:pskc:TOTP", OtpKind::Totp),
        (" http://www.ietf.org/keyprov/pskc#totp ", OtpKind::Totp),
    ] {
        let mut t = match kind {
            OtpKind::Hotp => GenToken::hotp("V-1", &[1; 20], 4, 6),
            _ => GenToken::totp("V-1", &[1; 20], 60, 6),
        };
        t.algorithm_uri = Some(uri.into());
        let xml = write_pskc(&[t], &Protection::Plain, "x", false, &mut rng);
        let read = parse_pskc(xml.as_bytes(), Decryption::None).unwrap();
        assert_eq!(read[0].params.kind, kind, "{uri}");
    }
}

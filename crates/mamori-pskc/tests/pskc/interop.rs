//! Files written by an independent implementation, Debian's python3-pskc 1.2
//! (tests/data/make-python-pskc-fixtures.py made them): plaintext, pre-shared AES-128 with
//! encrypted Counter/Time/TimeInterval, pre-shared AES-256, and PBKDF2.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::common::{fixture, hex};
use mamori_otp::{Algorithm, Generator, OtpKind};
use mamori_pskc::{parse_pskc, Decryption, PskcError, Token};

fn check(tokens: &[Token]) {
    let serials: Vec<&str> = tokens.iter().map(|t| t.serial.as_str()).collect();
    assert_eq!(serials, ["PY-H-0001", "PY-T-0002", "PY-T-0003"]);

    let h = &tokens[0];
    assert_eq!(h.manufacturer.as_deref(), Some("Interop Vendor"));
    assert_eq!(h.model.as_deref(), Some("H1"));
    assert_eq!(h.issuer.as_deref(), Some("Interop"));
    assert_eq!(h.key_id.as_deref(), Some("k1"));
    assert_eq!(h.params.kind, OtpKind::Hotp);
    assert_eq!((h.params.digits, h.params.counter), (6, 7));
    // RFC 4226 Appendix D, counter 7
    assert_eq!(
        Generator::new(&h.secret, h.params)
            .unwrap()
            .at_counter(7)
            .as_str(),
        "162583"
    );

    let t = &tokens[1];
    assert_eq!(t.params.kind, OtpKind::Totp);
    assert_eq!((t.params.digits, t.params.period), (8, 60));
    assert_eq!(t.time_drift, Some(-2));
    assert_eq!(t.time, Some(0));
    assert_eq!(t.secret.as_bytes(), b"12345678901234567890");

    // RFC 6238 Appendix B, SHA-256 at T = 59
    let s = &tokens[2];
    assert_eq!(s.params.algorithm, Algorithm::Sha256);
    assert_eq!((s.params.digits, s.params.period), (8, 30));
    assert_eq!(
        Generator::new(&s.secret, s.params)
            .unwrap()
            .at_time(59)
            .as_str(),
        "46119246"
    );
}

#[test]
fn plaintext() {
    check(&parse_pskc(&fixture("python-pskc-plain.xml"), Decryption::None).unwrap());
}

#[test]
fn pre_shared_key_aes128_with_encrypted_integers() {
    let key = hex("000102030405060708090a0b0c0d0e0f");
    check(
        &parse_pskc(
            &fixture("python-pskc-psk-aes128.xml"),
            Decryption::PreSharedKey(&key),
        )
        .unwrap(),
    );
}

#[test]
fn pre_shared_key_aes256() {
    let key = hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    check(
        &parse_pskc(
            &fixture("python-pskc-psk-aes256.xml"),
            Decryption::PreSharedKey(&key),
        )
        .unwrap(),
    );
    // the 16-byte key of the other file is the wrong length here
    let short = hex("000102030405060708090a0b0c0d0e0f");
    let err = parse_pskc(
        &fixture("python-pskc-psk-aes256.xml"),
        Decryption::PreSharedKey(&short),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            PskcError::WrongKeyLength {
                expected: 32,
                got: 16,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn password_pbkdf2() {
    check(
        &parse_pskc(
            &fixture("python-pskc-pbkdf2.xml"),
            Decryption::Password(b"interop password"),
        )
        .unwrap(),
    );
    let err = parse_pskc(
        &fixture("python-pskc-pbkdf2.xml"),
        Decryption::Password(b"interop passw0rd"),
    )
    .unwrap_err();
    assert!(matches!(err, PskcError::Decryption { .. }), "{err:?}");
}

//! The token CSV: `serial,secret_hex,type,digits,period_or_counter[,algorithm]`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use mamori_otp::{Algorithm, Generator, OtpKind};
use mamori_pskc::{parse_csv, Location, PskcError, MAX_INPUT_BYTES, MAX_TOKENS};

/// RFC 6238 Appendix B seeds, as hex: "12345678901234567890" repeated to 20, 32 and 64 bytes.
const SEED20: &str = "3132333435363738393031323334353637383930";
const SEED32: &str = "3132333435363738393031323334353637383930313233343536373839303132";
const SEED64: &str = "31323334353637383930313233343536373839303132333435363738393031323334353637383930313233343536373839303132333435363738393031323334";

#[test]
fn a_well_formed_file_with_header_comments_and_blank_lines() {
    let text = format!(
        "\u{feff}# tokens delivered 2026-11-01\r\n\
         serial,secret_hex,type,digits,period_or_counter\r\n\
         \r\n\
         H-001,{SEED20},hotp,6,0\r\n\
         H-002, {SEED20} ,HOTP,8,5\r\n\
         \x20  # a comment with leading spaces\n\
         T-001,{SEED20},totp,8,30\n\
         T-256,{SEED32},totp,8,30,SHA256\n\
         T-512,{SEED64},totp,8,30,sha512\n\
         T-060,31:32:33:34:35:36:37:38:39:30:31:32:33:34:35:36,totp,6,60\n\
         D-001,{SEED20},totp,,\n\
         D-002,{SEED20},hotp,,\n"
    );
    let tokens = parse_csv(text.as_bytes()).unwrap();
    let serials: Vec<&str> = tokens.iter().map(|t| t.serial.as_str()).collect();
    assert_eq!(
        serials,
        ["H-001", "H-002", "T-001", "T-256", "T-512", "T-060", "D-001", "D-002"]
    );
    let by = |s: &str| tokens.iter().find(|t| t.serial == s).unwrap();

    // RFC 4226 Appendix D
    let h1 = by("H-001");
    assert_eq!(h1.params.kind, OtpKind::Hotp);
    assert_eq!(h1.params.counter, 0);
    assert_eq!(
        Generator::new(&h1.secret, h1.params)
            .unwrap()
            .at_counter(0)
            .as_str(),
        "755224"
    );
    let h2 = by("H-002");
    assert_eq!((h2.params.digits, h2.params.counter), (8, 5));

    // RFC 6238 Appendix B at T = 59
    for (serial, alg, code) in [
        ("T-001", Algorithm::Sha1, "94287082"),
        ("T-256", Algorithm::Sha256, "46119246"),
        ("T-512", Algorithm::Sha512, "90693936"),
    ] {
        let t = by(serial);
        assert_eq!(t.params.kind, OtpKind::Totp);
        assert_eq!(t.params.algorithm, alg);
        assert_eq!(t.params.period, 30);
        assert_eq!(
            Generator::new(&t.secret, t.params)
                .unwrap()
                .at_time(59)
                .as_str(),
            code,
            "{serial}"
        );
    }
    assert_eq!(by("T-060").params.period, 60);
    assert_eq!(by("T-060").secret.as_bytes(), b"1234567890123456");
    // empty digits and period/counter take the defaults
    assert_eq!(
        (by("D-001").params.digits, by("D-001").params.period),
        (6, 30)
    );
    assert_eq!(
        (by("D-002").params.digits, by("D-002").params.counter),
        (6, 0)
    );
}

#[test]
fn header_is_optional() {
    let tokens = parse_csv(format!("A,{SEED20},totp,6,30\n").as_bytes()).unwrap();
    assert_eq!(tokens.len(), 1);
}

fn csv_error(text: &str) -> PskcError {
    let err = parse_csv(text.as_bytes()).unwrap_err();
    let msg = err.to_string();
    assert!(!msg.contains(SEED20), "message leaks the secret: {msg}");
    assert!(!msg.contains("zz"), "message leaks the secret: {msg}");
    err
}

/// Line 1 is a header, line 2 a comment, line 3 a good row; the bad row is line 4.
fn check_bad_row(row: &str, field: &str) {
    let text = format!(
        "serial,secret_hex,type,digits,period_or_counter\n# comment\nOK-1,{SEED20},totp,6,30\n{row}\nOK-2,{SEED20},totp,6,30\n"
    );
    match csv_error(&text) {
        PskcError::CsvLine {
            line,
            field: f,
            reason,
        } => {
            assert_eq!(line, 4, "{row}");
            assert_eq!(f, field, "{row}: {reason}");
            let shown = PskcError::CsvLine {
                line,
                field: f,
                reason,
            }
            .to_string();
            assert!(shown.starts_with(&format!("line 4: {field} ")), "{shown}");
        }
        other => panic!("{row}: {other:?}"),
    }
}

#[test]
fn each_kind_of_bad_row_names_line_and_field() {
    let s = SEED20;
    let cases: Vec<(String, &str)> = vec![
        (format!("X,{s},totp"), "row"),
        (format!("X,{s},totp,6,30,SHA1,extra"), "row"),
        ("just-one-field".to_string(), "row"),
        (format!(",{s},totp,6,30"), "serial"),
        (format!("{},{s},totp,6,30", "S".repeat(129)), "serial"),
        (format!("A\u{7}B,{s},totp,6,30"), "serial"),
        ("X,,totp,6,30".to_string(), "secret_hex"),
        (format!("X,{s}zz,totp,6,30"), "secret_hex"),
        (format!("X,{s}3,totp,6,30"), "secret_hex"),
        (format!("X,{},totp,6,30", "ab".repeat(257)), "secret_hex"),
        (format!("X,{s},motp,6,30"), "type"),
        (format!("X,{s},,6,30"), "type"),
        (format!("X,{s},totp,six,30"), "digits"),
        (format!("X,{s},totp,5,30"), "digits"),
        (format!("X,{s},totp,11,30"), "digits"),
        (format!("X,{s},totp,-6,30"), "digits"),
        (format!("X,{s},totp,6,0"), "period_or_counter"),
        (format!("X,{s},totp,6,86401"), "period_or_counter"),
        (format!("X,{s},totp,6,thirty"), "period_or_counter"),
        (format!("X,{s},hotp,6,-1"), "period_or_counter"),
        (
            format!("X,{s},hotp,6,18446744073709551616"),
            "period_or_counter",
        ),
        (format!("X,{s},totp,6,30,MD5"), "algorithm"),
    ];
    for (row, field) in cases {
        check_bad_row(&row, field);
    }
}

#[test]
fn duplicate_serial_names_both_lines() {
    let text = format!("A,{SEED20},totp,6,30\n# x\nB,{SEED20},totp,6,30\nA,{SEED20},hotp,6,0\n");
    assert_eq!(
        csv_error(&text),
        PskcError::DuplicateSerial {
            serial: "A".into(),
            first: Location::Line(1),
            second: Location::Line(4)
        }
    );
}

#[test]
fn empty_or_header_only_files_have_no_tokens() {
    for text in [
        "",
        "\n\n",
        "# only a comment\n",
        "serial,secret_hex,type,digits,period_or_counter\n",
    ] {
        assert_eq!(csv_error(text), PskcError::NoTokens, "{text:?}");
    }
}

#[test]
fn not_utf8_names_the_line() {
    let mut bytes = format!("A,{SEED20},totp,6,30\nB,").into_bytes();
    bytes.push(0xC3);
    bytes.extend_from_slice(b",totp,6,30\n");
    assert_eq!(
        parse_csv(&bytes).unwrap_err(),
        PskcError::NotUtf8 {
            location: Location::Line(2)
        }
    );
}

#[test]
fn size_and_count_limits() {
    let big = vec![b'#'; MAX_INPUT_BYTES + 1];
    assert!(matches!(
        parse_csv(&big).unwrap_err(),
        PskcError::TooLarge { .. }
    ));

    let mut text = String::new();
    for i in 0..=MAX_TOKENS {
        text.push_str(&format!("{i},3132333435363738,totp,6,30\n"));
    }
    assert!(text.len() <= MAX_INPUT_BYTES);
    assert_eq!(
        parse_csv(text.as_bytes()).unwrap_err(),
        PskcError::TooManyTokens { limit: MAX_TOKENS }
    );
    // exactly MAX_TOKENS is accepted
    let cut = text.trim_end().rfind('\n').unwrap();
    assert_eq!(
        parse_csv(&text.as_bytes()[..cut]).unwrap().len(),
        MAX_TOKENS
    );
}

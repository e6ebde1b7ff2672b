//! Property tests: round trips for every writer/parser pair, window behaviour, and parsers that
//! never panic on arbitrary input.

use mamori_otp::migration::{decode_payload, decode_uri, encode};
use mamori_otp::{qr, Algorithm, Generator, KeyUri, OtpKind, OtpParams, Secret};
use proptest::prelude::*;

fn algorithm() -> impl Strategy<Value = Algorithm> {
    prop_oneof![
        Just(Algorithm::Sha1),
        Just(Algorithm::Sha256),
        Just(Algorithm::Sha512)
    ]
}

fn params() -> impl Strategy<Value = OtpParams> {
    prop_oneof![
        (algorithm(), 6u32..=10, 1u64..=600).prop_map(|(algorithm, digits, period)| OtpParams {
            kind: OtpKind::Totp,
            algorithm,
            digits,
            period,
            counter: 0,
        }),
        (algorithm(), 6u32..=10, any::<u64>()).prop_map(|(algorithm, digits, counter)| OtpParams {
            kind: OtpKind::Hotp,
            algorithm,
            digits,
            period: 30,
            counter,
        }),
        Just(OtpParams::steam()),
    ]
}

fn secret() -> impl Strategy<Value = Secret> {
    prop::collection::vec(any::<u8>(), 1..64)
        .prop_map(|b| Secret::from_bytes(b).expect("non-empty"))
}

/// Names as people write them: letters, digits, punctuation that needs escaping, some Unicode.
/// No leading or trailing whitespace (the parser trims it, by design).
fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 @._~+%&=#?/:守りé-]{1,24}".prop_filter("trimmed", |s| s.trim() == s)
}

fn key_uri() -> impl Strategy<Value = KeyUri> {
    (prop::option::of(name()), name(), secret(), params()).prop_filter_map(
        "an account without issuer cannot contain the label separator",
        |(issuer, account, secret, params)| {
            if issuer.is_none() && account.contains(':') {
                return None;
            }
            Some(KeyUri {
                issuer,
                account,
                secret,
                params,
            })
        },
    )
}

/// What a Google Authenticator export can carry: 30 s TOTP or HOTP, 6 or 8 digits.
fn migratable() -> impl Strategy<Value = KeyUri> {
    let simple = "[a-zA-Z0-9 @._-]{1,24}".prop_filter("trimmed", |s| s.trim() == s);
    (
        prop::option::of(simple.clone()),
        simple,
        secret(),
        algorithm(),
        prop_oneof![Just(6u32), Just(8u32)],
        any::<bool>(),
        0u64..=i64::MAX as u64,
    )
        .prop_map(
            |(issuer, account, secret, algorithm, digits, hotp, counter)| KeyUri {
                issuer,
                account,
                secret,
                params: OtpParams {
                    kind: if hotp { OtpKind::Hotp } else { OtpKind::Totp },
                    algorithm,
                    digits,
                    period: 30,
                    counter: if hotp { counter } else { 0 },
                },
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn uri_round_trip(k in key_uri()) {
        let written = k.to_uri();
        let back = KeyUri::parse(&written).map_err(|e| TestCaseError::fail(format!("{written:?}: {e}")))?;
        prop_assert_eq!(back, k);
    }

    #[test]
    fn migration_round_trip(accounts in prop::collection::vec(migratable(), 0..30), id in any::<i32>()) {
        let encoded = encode(&accounts, id);
        prop_assert!(encoded.skipped.is_empty());
        let mut back = Vec::new();
        for (i, uri) in encoded.uris.iter().enumerate() {
            let batch = decode_uri(uri).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(batch.batch_id, id);
            prop_assert_eq!(batch.batch_index, i as i32);
            prop_assert_eq!(batch.batch_size, encoded.uris.len() as i32);
            back.extend(batch.accounts);
        }
        prop_assert_eq!(back, accounts);
    }

    /// A code verifies at every time inside its window, and (8+ digits, so that a chance
    /// collision is 1 in 10^8) not one step beyond it.
    #[test]
    fn codes_verify_inside_the_window_only(
        secret in secret(),
        algorithm in algorithm(),
        digits in 8u32..=10,
        period in 1u64..=120,
        time in 0u64..=4_000_000_000,
        window in 0u64..=3,
        delta in -3i64..=3,
    ) {
        let p = OtpParams { kind: OtpKind::Totp, algorithm, digits, period, counter: 0 };
        let g = Generator::new(&secret, p).expect("valid");
        let now = g.step_at(time);
        prop_assume!(now > 10);
        let step = now.checked_add_signed(delta).expect("in range");
        let code = g.at_counter(step);
        let result = g.verify_time(code.as_str(), time, 0, window, None);
        if delta.unsigned_abs() <= window {
            prop_assert_eq!(result.map(|v| (v.step, v.offset)), Ok((step, delta)));
        } else {
            prop_assert!(result.is_err());
        }
    }

    #[test]
    fn consecutive_search_finds_any_pair_in_the_window(
        secret in secret(),
        time in 1_000_000u64..=4_000_000_000,
        first in -10i64..=10,
    ) {
        let g = Generator::new(&secret, OtpParams { digits: 8, ..OtpParams::totp() }).expect("valid");
        let now = g.step_at(time);
        let s = now.checked_add_signed(first).expect("in range");
        let (c1, c2) = (g.at_counter(s), g.at_counter(s + 1));
        let m = g.find_consecutive_time(c1.as_str(), c2.as_str(), time, 10);
        prop_assert_eq!(m.map(|m| (m.last_step, m.drift)), Ok((s + 1, first + 1)));
    }

    #[test]
    fn uri_parser_never_panics(s in "\\PC*") {
        let _ = KeyUri::parse(&s);
        let _ = KeyUri::parse(&format!("otpauth://totp/{s}"));
        let _ = KeyUri::parse(&format!("otpauth://hotp/a?{s}"));
    }

    #[test]
    fn migration_parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512), s in "\\PC*") {
        let _ = decode_payload(&bytes);
        let _ = decode_uri(&format!("otpauth-migration://offline?data={s}"));
    }

    #[test]
    fn secret_decoders_never_panic(s in "\\PC*") {
        let _ = Secret::from_base32(&s);
        let _ = Secret::from_hex(&s);
        let _ = Secret::from_base64(&s);
    }
}

proptest! {
    // Image decoding is slower; fewer cases.
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn qr_decoder_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = qr::decode(&bytes);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend_from_slice(&bytes);
        let _ = qr::decode(&png);
    }

    #[test]
    fn qr_decoder_never_panics_on_damaged_images(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16)) {
        let mut png = qr::to_png("otpauth://totp/x?secret=JBSWY3DPEHPK3PXP", 3).expect("png");
        for (i, b) in flips {
            let at = i.index(png.len());
            png[at] ^= b;
        }
        let _ = qr::decode(&png);
    }

    #[test]
    fn qr_decoder_never_panics_on_noise(w in 1u32..200, h in 1u32..200, seed in any::<u64>()) {
        let mut x = seed | 1;
        let img = image::GrayImage::from_fn(w, h, |_, _| {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            image::Luma([if x & 1 == 0 { 0 } else { 255 }])
        });
        let mut png = std::io::Cursor::new(Vec::new());
        img.write_to(&mut png, image::ImageFormat::Png).expect("png");
        let _ = qr::decode(png.get_ref());
    }
}

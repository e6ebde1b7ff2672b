//! Property tests: random account sets survive every lossless round trip, and no reader panics
//! on arbitrary or mutated input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::common::*;
use mamori_formats::{
    export_aegis_with, export_google_migration, export_otpauth, import, import_google_migration,
    Account, AegisKdf, Format,
};
use mamori_otp::{Algorithm, KeyUri, OtpKind, OtpParams, Secret};
use proptest::prelude::*;

/// Labels as people write them: letters (some non-ASCII), digits, inner spaces and
/// punctuation; no colon (the label separator) and no surrounding whitespace, which every
/// format trims.
fn label() -> impl Strategy<Value = String> {
    "[A-Za-z0-9éü][A-Za-z0-9éü ._@+-]{0,20}[A-Za-z0-9]|[A-Za-z]"
}

fn params() -> impl Strategy<Value = OtpParams> {
    let algorithm = prop_oneof![
        Just(Algorithm::Sha1),
        Just(Algorithm::Sha256),
        Just(Algorithm::Sha512)
    ];
    prop_oneof![
        (algorithm.clone(), 6u32..=10, 1u64..=600).prop_map(|(algorithm, digits, period)| {
            OtpParams {
                kind: OtpKind::Totp,
                algorithm,
                digits,
                period,
                counter: 0,
            }
        }),
        (algorithm, 6u32..=10, any::<u64>()).prop_map(|(algorithm, digits, counter)| OtpParams {
            kind: OtpKind::Hotp,
            algorithm,
            digits,
            period: 30,
            counter,
        }),
        Just(OtpParams::steam()),
    ]
}

fn account_strategy(params: BoxedStrategy<OtpParams>) -> impl Strategy<Value = Account> {
    (
        proptest::option::of(label()),
        label(),
        proptest::collection::vec(any::<u8>(), 1..64),
        params,
        proptest::option::of("[a-z][a-z0-9 ,.!]{0,40}"),
        proptest::collection::btree_set("[a-z][a-z0-9-]{0,10}", 0..3),
        any::<bool>(),
    )
        .prop_map(
            |(issuer, account, secret, params, note, tags, favorite)| Account {
                uri: KeyUri {
                    issuer,
                    account,
                    secret: Secret::from_bytes(secret).unwrap(),
                    params,
                },
                note,
                tags: tags.into_iter().collect(),
                favorite,
            },
        )
}

fn accounts() -> impl Strategy<Value = Vec<Account>> {
    proptest::collection::vec(account_strategy(params().boxed()), 0..12)
}

/// What Google Authenticator exports can carry: 30-second TOTP or HOTP, 6 or 8 digits.
fn google_accounts() -> impl Strategy<Value = Vec<Account>> {
    let algorithm = prop_oneof![
        Just(Algorithm::Sha1),
        Just(Algorithm::Sha256),
        Just(Algorithm::Sha512)
    ];
    let p = (
        algorithm,
        prop_oneof![Just(6u32), Just(8)],
        any::<bool>(),
        0u64..=i64::MAX as u64,
    )
        .prop_map(|(algorithm, digits, hotp, counter)| OtpParams {
            kind: if hotp { OtpKind::Hotp } else { OtpKind::Totp },
            algorithm,
            digits,
            period: 30,
            counter: if hotp { counter } else { 0 },
        })
        .boxed();
    proptest::collection::vec(account_strategy(p), 0..30)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn aegis_round_trip_is_lossless(accounts in accounts(), encrypted in any::<bool>(), seed in any::<u64>()) {
        let password = pw("prop");
        let kdf = AegisKdf { n: 1 << 4, r: 1, p: 1 };
        let file = export_aegis_with(&accounts, encrypted.then_some(&password), kdf, &mut rng(seed)).unwrap();
        let r = import(Format::Aegis, &file, Some(&password)).unwrap();
        assert_accounts(&r.accounts, &accounts, EVERYTHING);
        prop_assert!(r.unusable.is_empty());
    }

    #[test]
    fn otpauth_round_trip_keeps_every_key(accounts in accounts()) {
        let r = import(Format::Otpauth, export_otpauth(&accounts).as_bytes(), None).unwrap();
        assert_accounts(&r.accounts, &accounts, URI_ONLY);
        prop_assert!(r.unusable.is_empty());
    }

    #[test]
    fn google_migration_round_trip_keeps_what_it_can_carry(accounts in google_accounts(), id in any::<i32>()) {
        let export = export_google_migration(&accounts, id, 1).unwrap();
        prop_assert!(export.skipped.is_empty());
        let text: String = export.uris.iter().map(|u| format!("{}\n", u.as_str())).collect();
        let r = import_google_migration(&[text.as_bytes()]).unwrap();
        assert_accounts(&r.accounts, &accounts, URI_ONLY);
        prop_assert!(r.notes.is_empty());
    }

    #[test]
    fn readers_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        for format in Format::ALL {
            let _ = import(format, &bytes, None);
        }
    }

    #[test]
    fn image_reader_never_panics_on_broken_images(
        jpeg in any::<bool>(),
        tail in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut bytes: Vec<u8> = if jpeg { vec![0xFF, 0xD8, 0xFF, 0xE0] } else { b"\x89PNG\r\n\x1a\n".to_vec() };
        bytes.extend_from_slice(&tail);
        prop_assert!(import(Format::GoogleMigration, &bytes, None).is_err());
    }

    #[test]
    fn readers_never_panic_on_arbitrary_text(text in "\\PC{0,400}") {
        for format in Format::ALL {
            let _ = import(format, text.as_bytes(), None);
        }
    }
}

/// Valid files of every format (cheap parameters), to be mutated.
fn fixtures() -> Vec<(Format, Vec<u8>, Option<&'static str>)> {
    let s = sample();
    let mut r = rng(99);
    let content = aegis_content(&s, 3);
    vec![
        (
            Format::Otpauth,
            export_otpauth(&s).as_bytes().to_vec(),
            None,
        ),
        (Format::Aegis, aegis_plain(&content), None),
        (
            Format::Aegis,
            aegis_encrypted(&content, &["pw"], 1 << 4, 1, 1, &mut r),
            Some("pw"),
        ),
        (Format::TwoFas, twofas(&s, 4, None, &mut r), None),
        (
            Format::TwoFas,
            twofas(&s, 4, Some("pw"), &mut r),
            Some("pw"),
        ),
        (Format::AndOtp, andotp_json(&s), None),
        (
            Format::AndOtp,
            andotp_encrypt(&andotp_json(&s), "pw", 16, &mut r),
            Some("pw"),
        ),
        (
            Format::AndOtp,
            andotp_encrypt_old(&andotp_json(&s), "pw", &mut r),
            Some("pw"),
        ),
        (Format::Bitwarden, bitwarden_json(&s, TotpStyle::Uri), None),
        (Format::Bitwarden, bitwarden_csv(&s, TotpStyle::Bare), None),
        (Format::Ente, ente_plain(&s).into_bytes(), None),
        (
            Format::Ente,
            ente_encrypted(&ente_plain(&s), "pw", 8192, 1, &mut r),
            Some("pw"),
        ),
        (Format::FreeOtpPlus, freeotp_plus(&s), None),
        (
            Format::GoogleMigration,
            export_google_migration(&s, 5, 2).unwrap().images[0].to_vec(),
            None,
        ),
    ]
}

#[test]
fn every_fixture_imports_before_mutation() {
    for (format, file, password) in fixtures() {
        let password = password.map(pw);
        let r =
            import(format, &file, password.as_ref()).unwrap_or_else(|e| panic!("{format}: {e}"));
        assert!(!r.accounts.is_empty(), "{format}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// Truncations and byte changes anywhere in valid files: an error or a report, never a
    /// panic. (Changed KDF parameters stay small: a changed digit cannot leave the limits by
    /// much, and the limits are enforced before any work.)
    #[test]
    fn readers_never_panic_on_mutated_files(
        which in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        truncate in any::<bool>(),
    ) {
        let all = fixtures();
        let (format, mut file, password) = all[which.index(all.len())].clone();
        for (at, byte) in flips {
            let i = at.index(file.len());
            file[i] = byte;
        }
        if truncate {
            file.truncate(cut.index(file.len() + 1));
        }
        let password = password.map(pw);
        let _ = import(format, &file, password.as_ref());
    }
}

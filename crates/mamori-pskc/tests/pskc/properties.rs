//! Properties: the parsers never panic, whatever the bytes; a mutated valid file is either
//! refused or yields unique serials; any change to authenticated ciphertext is caught; and
//! random token sets survive a write/read round trip under every protection.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::common::{write_pskc, GenToken, Protection};
use data_encoding::BASE64;
use mamori_pskc::{parse_csv, parse_pskc, Decryption, PskcError, Token};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::HashSet;

const PSK: [u8; 16] = [9; 16];

fn valid_files() -> Vec<(String, Protection)> {
    let tokens = vec![
        GenToken::hotp("P-1", b"12345678901234567890", 3, 6),
        GenToken::totp("P-2", &[1; 20], 30, 8),
        GenToken::hotp("P-3", &[2; 32], 0, 7),
    ];
    let mut rng = StdRng::seed_from_u64(99);
    let plain = Protection::Plain;
    let psk = Protection::Psk {
        key: PSK.to_vec(),
        mac_key: vec![3; 20],
    };
    let pw = Protection::Password {
        password: b"pw".to_vec(),
        salt: b"12345678".to_vec(),
        iterations: 2,
        mac_key: vec![4; 20],
    };
    vec![
        (write_pskc(&tokens, &plain, "", false, &mut rng), plain),
        (write_pskc(&tokens, &psk, "pskc", true, &mut rng), psk),
        (write_pskc(&tokens, &pw, "", false, &mut rng), pw),
    ]
}

fn decryption(p: &Protection) -> Decryption<'_> {
    match p {
        Protection::Plain => Decryption::None,
        Protection::Psk { key, .. } => Decryption::PreSharedKey(key),
        Protection::Password { password, .. } => Decryption::Password(password),
    }
}

fn unique_serials(tokens: &[Token]) -> bool {
    let set: HashSet<&str> = tokens.iter().map(|t| t.serial.as_str()).collect();
    set.len() == tokens.len() && !tokens.is_empty()
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Duplicate(usize, usize),
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    match *m {
        Mutation::Flip(i, bit) => {
            let i = i % bytes.len();
            bytes[i] ^= 1 << (bit % 8);
        }
        Mutation::Insert(i, b) => {
            let i = i % (bytes.len() + 1);
            bytes.insert(i, b);
        }
        Mutation::Delete(i) => {
            let i = i % bytes.len();
            bytes.remove(i);
        }
        Mutation::Duplicate(i, len) => {
            let i = i % bytes.len();
            let end = (i + len % 400).min(bytes.len());
            let chunk = bytes[i..end].to_vec();
            bytes.splice(i..i, chunk);
        }
    }
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (
            any::<usize>(),
            prop::sample::select(b"<>/=\"'&;#x0 \nA".to_vec())
        )
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        (any::<usize>(), any::<usize>()).prop_map(|(i, l)| Mutation::Duplicate(i, l)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_pskc(&bytes, Decryption::None);
        let _ = parse_pskc(&bytes, Decryption::PreSharedKey(&PSK));
        let _ = parse_pskc(&bytes, Decryption::Password(b"pw"));
        let _ = parse_csv(&bytes);
    }

    #[test]
    fn xml_shaped_text_never_panics(text in "(<[/?!]?[A-Za-z:]{0,12}( [a-zA-Z]{1,8}=\"[^\"<]{0,12}\")?/?>|[^<]{0,20}|&[a-z#0-9]{0,5};?){0,60}") {
        let _ = parse_pskc(text.as_bytes(), Decryption::None);
        let _ = parse_pskc(text.as_bytes(), Decryption::Password(b"pw"));
    }

    #[test]
    fn csv_shaped_text_never_panics(text in "([A-Za-z0-9#:, \\-]{0,40}\r?\n){0,20}") {
        if let Ok(tokens) = parse_csv(text.as_bytes()) {
            prop_assert!(unique_serials(&tokens));
        }
    }

    #[test]
    fn mutated_valid_files_never_panic(which in 0usize..3, muts in prop::collection::vec(mutation(), 1..6)) {
        let files = valid_files();
        let (xml, protection) = &files[which];
        let mut bytes = xml.clone().into_bytes();
        for m in &muts {
            apply(&mut bytes, m);
        }
        if let Ok(tokens) = parse_pskc(&bytes, decryption(protection)) {
            prop_assert!(unique_serials(&tokens));
        }
        let _ = parse_pskc(&bytes, Decryption::None);
    }

    #[test]
    fn any_change_to_authenticated_ciphertext_is_caught(n in 0usize..6, byte in any::<usize>(), bit in 0u8..8) {
        // CipherValue 0 is the MAC key; then each package's secret and (HOTP) encrypted counter.
        let (xml, _) = &valid_files()[1];
        let open = "<xenc:CipherValue>";
        let start = xml.match_indices(open).nth(n).unwrap().0 + open.len();
        let end = start + xml[start..].find("</xenc:CipherValue>").unwrap();
        let mut data = BASE64.decode(&xml.as_bytes()[start..end]).unwrap();
        let i = byte % data.len();
        data[i] ^= 1 << bit;
        let tampered = format!("{}{}{}", &xml[..start], BASE64.encode(&data), &xml[end..]);
        let result = parse_pskc(tampered.as_bytes(), Decryption::PreSharedKey(&PSK));
        prop_assert!(matches!(result, Err(PskcError::Decryption { .. })), "{:?}", result.err());
    }
}

fn gen_token() -> impl Strategy<Value = GenToken> {
    (
        prop::collection::vec(any::<u8>(), 1..65),
        any::<bool>(),
        6u32..=10,
        0u64..u64::MAX,
        prop::sample::select(vec![15u64, 30, 60, 3600]),
    )
        .prop_map(|(secret, hotp, digits, counter, period)| {
            if hotp {
                GenToken::hotp("", &secret, counter, digits)
            } else {
                GenToken::totp("", &secret, period, digits)
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_token_sets_round_trip(mut tokens in prop::collection::vec(gen_token(), 1..12), which in 0usize..3, seed in any::<u64>()) {
        for (i, t) in tokens.iter_mut().enumerate() {
            t.serial = format!("SN{seed:x}-{i}");
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let protection = match which {
            0 => Protection::Plain,
            1 => Protection::Psk { key: PSK.to_vec(), mac_key: vec![5; 20] },
            _ => Protection::Password {
                password: b"pw".to_vec(),
                salt: seed.to_be_bytes().to_vec(),
                iterations: 3,
                mac_key: vec![6; 20],
            },
        };
        let xml = write_pskc(&tokens, &protection, "pskc", seed % 2 == 0, &mut rng);
        let read = parse_pskc(xml.as_bytes(), decryption(&protection)).unwrap();
        prop_assert_eq!(read.len(), tokens.len());
        for (w, r) in tokens.iter().zip(&read) {
            prop_assert_eq!(&r.serial, &w.serial);
            prop_assert_eq!(r.secret.as_bytes(), w.secret.as_slice());
            prop_assert_eq!(r.params.digits, w.digits);
            match w.kind {
                crate::common::Kind::Hotp { counter } => prop_assert_eq!(r.params.counter, counter),
                crate::common::Kind::Totp { period } => prop_assert_eq!(r.params.period, period),
            }
        }
    }
}

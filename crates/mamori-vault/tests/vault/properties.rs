//! Property tests: any vault survives seal/open unchanged; any damaged file is refused with an
//! error (never a panic, never a different vault).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;

use mamori_otp::{Algorithm, OtpKind, OtpParams, Secret};
use mamori_vault::{format, DataKey, Header, KdfParams, NewEntry, Vault};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn arb_entry() -> impl Strategy<Value = NewEntry> {
    (
        "[\\PC]{0,20}",
        "[a-z@.]{1,20}",
        proptest::collection::vec(any::<u8>(), 1..64),
        0usize..3,
        0usize..3,
        6u32..=10,
        1u64..=300,
        any::<u64>(),
        (
            "[\\PC]{0,30}",
            proptest::collection::vec("[a-z]{1,8}", 0..4),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(issuer, account, secret, k, a, digits, period, counter, (note, tags, fav))| {
                let kind = [OtpKind::Totp, OtpKind::Hotp, OtpKind::Steam][k];
                let params = OtpParams {
                    kind,
                    algorithm: Algorithm::ALL[a],
                    digits,
                    period,
                    counter,
                };
                let mut e =
                    NewEntry::new(issuer, account, Secret::from_bytes(secret).unwrap(), params);
                e.note = note;
                e.tags = tags;
                e.favorite = fav;
                e
            },
        )
}

fn sealed(entries: Vec<NewEntry>, seed: u64) -> (Vault, DataKey, Vec<u8>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let key = DataKey::generate(&mut rng);
    let header = format::wrap_key(&key, b"pw", KdfParams::INSECURE_TEST, None, &mut rng).unwrap();
    let mut v = Vault::new();
    v.add_many(entries, &mut rng, 1_700_000_000).unwrap();
    let bytes = format::seal(&v, &header, &key, &mut rng).unwrap();
    (v, key, bytes)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn seal_open_round_trip(entries in proptest::collection::vec(arb_entry(), 0..8), seed: u64) {
        let (v, key, bytes) = sealed(entries, seed);
        let path = Path::new("p");
        let h = Header::parse(&bytes, path).unwrap();
        prop_assert_eq!(format::open(&bytes, &h, &key, path).unwrap(), v.clone());
        // And through the password.
        let k2 = h.unwrap_key(b"pw", path).unwrap();
        prop_assert_eq!(k2, key);
    }

    #[test]
    fn damaged_files_are_refused(
        entries in proptest::collection::vec(arb_entry(), 1..4),
        seed: u64,
        cut in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..4),
        truncate: bool,
    ) {
        let (_, key, bytes) = sealed(entries, seed);
        let mut bad = bytes.clone();
        for (i, x) in &flips {
            let i = i.index(bad.len());
            bad[i] ^= x;
        }
        if truncate {
            bad.truncate(cut.index(bad.len()));
        }
        prop_assume!(bad != bytes);
        let path = Path::new("p");
        let result = Header::parse(&bad, path).and_then(|h| {
            // A header that still unwraps can only give the true key.
            let k = h.unwrap_key(b"pw", path)?;
            assert_eq!(k, key);
            format::open(&bad, &h, &k, path)
        });
        prop_assert!(result.is_err());
    }
}

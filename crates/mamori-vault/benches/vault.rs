//! Vault benchmarks (results and how to rerun: docs/performance.md, "Authenticator vault").
//!
//! - `unlock/argon2id-default`: deriving the key-encryption key with the default parameters
//!   (m = 64 MiB, t = 3, p = 1) and unwrapping the data key: the cost of one password unlock.
//! - `open+list/10000`: after unlock, parsing, decrypting and listing a 10,000-entry vault.
//! - `seal/10000`: serializing and encrypting it (every write does this).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use mamori_otp::{OtpParams, Secret};
use mamori_vault::{format, DataKey, Header, KdfParams, NewEntry, Vault};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn big_vault(n: usize, rng: &mut StdRng) -> Vault {
    let mut v = Vault::new();
    let items = (0..n).map(|i| {
        NewEntry::new(
            format!("Issuer {i}"),
            format!("user{i}@example.com"),
            Secret::generate_with(rng, 20),
            OtpParams::totp(),
        )
    });
    let items: Vec<NewEntry> = items.collect();
    v.add_many(items, rng, 1_767_225_600).unwrap();
    v
}

fn benches(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(1);
    let path = Path::new("bench.mamori");

    let key = DataKey::generate(&mut rng);
    let header = format::wrap_key(&key, b"password", KdfParams::default(), None, &mut rng).unwrap();
    let mut g = c.benchmark_group("unlock");
    g.sample_size(10);
    g.bench_function("argon2id-default", |b| {
        b.iter(|| black_box(header.unwrap_key(b"password", path).unwrap()))
    });
    g.finish();

    let fast =
        format::wrap_key(&key, b"password", KdfParams::INSECURE_TEST, None, &mut rng).unwrap();
    let vault = big_vault(10_000, &mut rng);
    let bytes = format::seal(&vault, &fast, &key, &mut rng).unwrap();
    let mut g = c.benchmark_group("vault-10000");
    g.sample_size(20);
    g.bench_function("open+list", |b| {
        b.iter(|| {
            let h = Header::parse(&bytes, path).unwrap();
            let v = format::open(&bytes, &h, &key, path).unwrap();
            let names: Vec<String> = v.entries().iter().map(|e| e.display_name()).collect();
            black_box(names.len())
        })
    });
    g.bench_function("seal", |b| {
        b.iter(|| black_box(format::seal(&vault, &fast, &key, &mut rng).unwrap().len()))
    });
    g.finish();
}

criterion_group!(vault, benches);
criterion_main!(vault);

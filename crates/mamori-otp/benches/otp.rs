//! Code generation and verification cost, next to the raw HMAC it is built on, measured in the
//! same run. Results and the machine are recorded in docs/performance.md.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hmac::{Hmac, Mac};
use mamori_otp::{Algorithm, Generator, OtpParams, Secret};
use sha1::Sha1;

fn secret() -> Secret {
    Secret::from_bytes(b"12345678901234567890".to_vec()).expect("secret")
}

fn raw_hmac(c: &mut Criterion) {
    let mut g = c.benchmark_group("raw_hmac_sha1");
    g.throughput(Throughput::Elements(1));
    let key = secret();
    // Keyed once, cloned per message: the floor for any HOTP implementation.
    let keyed = Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("key");
    let mut counter = 0u64;
    g.bench_function("precomputed_key", |b| {
        b.iter(|| {
            counter = counter.wrapping_add(1);
            let mut m = keyed.clone();
            m.update(&counter.to_be_bytes());
            black_box(m.finalize().into_bytes())
        })
    });
    // Re-keyed per message: what a naive implementation pays.
    g.bench_function("rekey_each_time", |b| {
        b.iter(|| {
            counter = counter.wrapping_add(1);
            let mut m = Hmac::<Sha1>::new_from_slice(black_box(key.as_bytes())).expect("key");
            m.update(&counter.to_be_bytes());
            black_box(m.finalize().into_bytes())
        })
    });
    g.finish();
}

fn generation(c: &mut Criterion) {
    let mut g = c.benchmark_group("totp_generate");
    g.throughput(Throughput::Elements(1));
    for algorithm in Algorithm::ALL {
        let len = match algorithm {
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        };
        let s = Secret::from_bytes(vec![7u8; len]).expect("secret");
        let gen = Generator::new(
            &s,
            OtpParams {
                algorithm,
                ..OtpParams::totp()
            },
        )
        .expect("gen");
        let mut t = 1_700_000_000u64;
        g.bench_function(BenchmarkId::from_parameter(algorithm), |b| {
            b.iter(|| {
                t += 30;
                black_box(gen.at_time(black_box(t)))
            })
        });
    }
    g.finish();
}

fn verification(c: &mut Criterion) {
    // ±1 window: three candidate codes computed and compared in constant time.
    let mut g = c.benchmark_group("totp_verify_window1");
    g.throughput(Throughput::Elements(1));
    for algorithm in Algorithm::ALL {
        let gen = Generator::new(
            &secret(),
            OtpParams {
                algorithm,
                ..OtpParams::totp()
            },
        )
        .expect("gen");
        let t = 1_700_000_000u64;
        let good = gen.at_time(t);
        g.bench_function(BenchmarkId::new("accept", algorithm), |b| {
            b.iter(|| black_box(gen.verify_time(black_box(good.as_str()), t, 0, 1, None)))
        });
        g.bench_function(BenchmarkId::new("reject", algorithm), |b| {
            b.iter(|| black_box(gen.verify_time(black_box("000000"), t, 0, 1, None)))
        });
    }
    g.finish();
    // Cost growth with the window: enrollment searches ±10 for a consecutive pair.
    let mut g = c.benchmark_group("consecutive_search");
    let gen = Generator::new(&secret(), OtpParams::totp()).expect("gen");
    let t = 1_700_000_000u64;
    for window in [1u64, 10, 100] {
        let s = gen.step_at(t);
        let (a, b2) = (gen.at_counter(s - 1), gen.at_counter(s));
        g.bench_function(BenchmarkId::from_parameter(window), |b| {
            b.iter(|| black_box(gen.find_consecutive_time(a.as_str(), b2.as_str(), t, window)))
        });
    }
    g.finish();
}

criterion_group!(benches, raw_hmac, generation, verification);
criterion_main!(benches);

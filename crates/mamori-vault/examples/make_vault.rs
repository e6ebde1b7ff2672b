//! Writes a vault with N generated TOTP accounts, for the whole-process benchmarks
//! (benches/whole-process.sh).
//!
//! `cargo run --release -p mamori-vault --example make_vault -- PATH PASSWORD N [fast]`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mamori_otp::{OtpParams, Secret};
use mamori_vault::{KdfParams, NewEntry, Unlock, VaultFile};
use zeroize::Zeroizing;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, password, n, rest @ ..] = args.as_slice() else {
        eprintln!("usage: make_vault PATH PASSWORD N [fast]");
        std::process::exit(2);
    };
    let n: usize = n.parse().expect("N is a number");
    let kdf = if rest.first().map(String::as_str) == Some("fast") {
        KdfParams::INSECURE_TEST
    } else {
        KdfParams::default()
    };
    let vf = VaultFile::new(path);
    let mut rng = rand::rngs::OsRng;
    vf.create(password.as_bytes(), kdf, &mut rng)
        .expect("create");
    let unlock = Unlock::Password(Zeroizing::new(password.clone()));
    vf.update(&unlock, &mut rng, |v| {
        let items: Vec<NewEntry> = (0..n)
            .map(|i| {
                NewEntry::new(
                    format!("Issuer {i}"),
                    format!("user{i}@example.com"),
                    Secret::generate(),
                    OtpParams::totp(),
                )
            })
            .collect();
        v.add_many(items, &mut rand::rngs::OsRng, 1_767_225_600)
            .map(|_| ())
    })
    .expect("add");
}

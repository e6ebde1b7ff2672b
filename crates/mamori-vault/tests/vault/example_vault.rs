//! The example vault shipped in tests/data/ (documented in docs/vault-format.md, "Test vector"):
//! another implementation can check itself against it. It is built deterministically from a
//! seeded generator, so this test also pins the encoder byte for byte.
//!
//! Regenerate (only when the format version changes):
//! `MAMORI_REGENERATE_EXAMPLE=1 cargo test -p mamori-vault --test vault example_vault::`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

use mamori_otp::{Algorithm, Generator, OtpKind, OtpParams, Secret};
use mamori_vault::{format, DataKey, KdfParams, NewEntry, Unlock, Vault, VaultFile};
use rand::rngs::StdRng;
use rand::SeedableRng;
use zeroize::Zeroizing;

const PASSWORD: &str = "correct horse battery staple";
const KDF: KdfParams = KdfParams {
    memory_kib: 256,
    iterations: 2,
    parallelism: 1,
};
const NOW: u64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn build() -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(2026);
    let key = DataKey::generate(&mut rng);
    let header = format::wrap_key(&key, PASSWORD.as_bytes(), KDF, None, &mut rng).unwrap();
    let mut vault = Vault::new();
    // RFC 6238 appendix B secrets.
    let sha1 = Secret::from_bytes(b"12345678901234567890".to_vec()).unwrap();
    let sha256 = Secret::from_bytes(b"12345678901234567890123456789012".to_vec()).unwrap();
    let mut totp8 = OtpParams::totp();
    totp8.digits = 8;
    let mut e = NewEntry::new("RFC 6238", "sha1@example.com", sha1.clone(), totp8);
    e.note = "appendix B".into();
    e.tags = vec!["rfc".into()];
    e.favorite = true;
    let entries = vec![
        e,
        NewEntry::new(
            "RFC 6238",
            "sha256@example.com",
            sha256,
            OtpParams {
                algorithm: Algorithm::Sha256,
                ..totp8
            },
        ),
        NewEntry::new(
            "RFC 4226",
            "hotp@example.com",
            sha1.clone(),
            OtpParams::hotp(0),
        ),
        NewEntry::new("Steam", "gamer", sha1, OtpParams::steam()),
    ];
    vault.add_many(entries, &mut rng, NOW).unwrap();
    format::seal(&vault, &header, &key, &mut rng).unwrap()
}

#[test]
fn example_vault_is_reproducible() {
    let built = build();
    if std::env::var_os("MAMORI_REGENERATE_EXAMPLE").is_some() {
        std::fs::write(data("example.mamori"), &built).unwrap();
        std::fs::write(data("example.password"), PASSWORD).unwrap();
    }
    assert_eq!(std::fs::read(data("example.mamori")).unwrap(), built);
}

#[test]
fn example_vault_opens_with_its_password() {
    let password = std::fs::read_to_string(data("example.password")).unwrap();
    let vf = VaultFile::new(data("example.mamori"));
    let opened = vf
        .open(&Unlock::Password(Zeroizing::new(
            password.trim_end().to_string(),
        )))
        .unwrap();
    assert_eq!(opened.header.kdf, KDF);
    let v = &opened.vault;
    let names: Vec<String> = v.entries().iter().map(|e| e.display_name()).collect();
    assert_eq!(
        names,
        [
            "RFC 6238 (sha1@example.com)",
            "RFC 6238 (sha256@example.com)",
            "RFC 4226 (hotp@example.com)",
            "Steam (gamer)"
        ]
    );
    let code = |i: usize, t: u64| {
        let e = &v.entries()[i];
        let g = Generator::new(e.secret(), e.params).unwrap();
        if e.params.kind == OtpKind::Hotp {
            g.at_counter(e.params.counter).to_string()
        } else {
            g.at_time(t).to_string()
        }
    };
    // RFC 6238 appendix B, T = 59 and 1111111109; RFC 4226 appendix D, count 0.
    assert_eq!(code(0, 59), "94287082");
    assert_eq!(code(0, 1_111_111_109), "07081804");
    assert_eq!(code(1, 59), "46119246");
    assert_eq!(code(2, 0), "755224");
    assert_eq!(code(3, 59).len(), 5);
    let first = &v.entries()[0];
    assert_eq!(
        (first.note.as_str(), first.favorite, first.created),
        ("appendix B", true, NOW)
    );
    assert!(matches!(
        vf.open(&Unlock::Password(Zeroizing::new("wrong".into()))),
        Err(mamori_vault::VaultError::WrongPassword(_))
    ));
}

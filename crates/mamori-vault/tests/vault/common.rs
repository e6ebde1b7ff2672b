// Shared by the integration tests (included with `mod common;`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use mamori_otp::{OtpParams, Secret};
use mamori_vault::{KdfParams, NewEntry, Unlock, VaultFile};
use rand::rngs::StdRng;
use rand::SeedableRng;
use zeroize::Zeroizing;

/// Cheap Argon2 so tests run fast; only the default-parameter test pays the real cost.
pub const FAST: KdfParams = KdfParams::INSECURE_TEST;

pub fn rng() -> StdRng {
    StdRng::from_entropy()
}

pub fn pw(s: &str) -> Unlock {
    Unlock::Password(Zeroizing::new(s.to_string()))
}

pub fn entry(issuer: &str, account: &str, secret_b32: &str) -> NewEntry {
    NewEntry::new(
        issuer,
        account,
        Secret::from_base32(secret_b32).unwrap(),
        OtpParams::totp(),
    )
}

pub fn new_vault(dir: &std::path::Path, password: &str) -> VaultFile {
    let vf = VaultFile::new(dir.join("vault.mamori"));
    vf.create(password.as_bytes(), FAST, &mut rng()).unwrap();
    vf
}

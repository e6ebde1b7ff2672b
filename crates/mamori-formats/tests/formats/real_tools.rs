//! Import fixtures written by tools that are not mamori, and mamori's exports read back by them
//! (issue #16: the other tests read files our own generator wrote, so they check our reading of
//! each format against itself).
//!
//! `tests/real_tools/generate.py` writes the fixtures with independent implementations: pyotp
//! (otpauth URIs), protoc + the protobuf runtime (Google migration payloads), the `cryptography`
//! package (Aegis scrypt/AES-GCM, andOTP and 2FAS PBKDF2/AES-GCM) and libsodium through PyNaCl
//! (Ente's Argon2id and secretstream). `tests/real_tools/fixtures/` holds one committed run of it
//! (tool versions in its `manifest.json`), so `committed_fixtures_import_exactly` needs nothing
//! installed. The other tests run the tools now and fail, naming the Debian packages, when they
//! are missing; `.ci/run` installs them. Set `MAMORI_TEST_PYTHON` to use another interpreter than
//! `/usr/bin/python3` (the one Debian's `python3-*` packages install into).
//!
//! Which formats this covers and which remain checked only against our own reading is listed
//! in `docs/import-formats.md`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use mamori_formats::{
    export_aegis_with, export_google_migration, export_otpauth, import, Account, AegisKdf, Format,
    SecretString,
};
use mamori_otp::{Algorithm, KeyUri, OtpKind, OtpParams, Secret};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::Value;

const PACKAGES: &str =
    "python3-cryptography python3-nacl python3-pyotp python3-protobuf protobuf-compiler";

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/real_tools")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The generator's input: accounts in one JSON shape shared with generate.py.
fn accounts_json() -> Vec<Value> {
    read_json(&dir().join("accounts.json"))
        .as_array()
        .unwrap()
        .clone()
}

fn account(v: &Value) -> Account {
    let s = |k: &str| v[k].as_str().unwrap();
    let n = |k: &str| v[k].as_u64().unwrap();
    let algorithm = match s("algorithm") {
        "SHA1" => Algorithm::Sha1,
        "SHA256" => Algorithm::Sha256,
        "SHA512" => Algorithm::Sha512,
        other => panic!("algorithm {other}"),
    };
    let params = match s("type") {
        "steam" => OtpParams::steam(),
        kind => OtpParams {
            kind: if kind == "hotp" {
                OtpKind::Hotp
            } else {
                OtpKind::Totp
            },
            algorithm,
            digits: n("digits") as u32,
            period: if kind == "hotp" { 30 } else { n("period") },
            counter: if kind == "hotp" { n("counter") } else { 0 },
        },
    };
    Account {
        uri: KeyUri {
            issuer: Some(s("issuer").to_string()).filter(|i| !i.is_empty()),
            account: s("name").to_string(),
            secret: Secret::from_base32(s("secret")).unwrap(),
            params,
        },
        note: None,
        tags: Vec::new(),
        favorite: false,
    }
}

fn assert_same_keys(what: &str, got: &[Account], want: &[Account]) {
    let names = |l: &[Account]| l.iter().map(|a| a.display_name()).collect::<Vec<_>>();
    assert_eq!(got.len(), want.len(), "{what}: got {:?}", names(got));
    for (g, w) in got.iter().zip(want) {
        let name = format!("{what}: {}", w.display_name());
        assert_eq!(g.uri.issuer, w.uri.issuer, "{name}: issuer");
        assert_eq!(g.uri.account, w.uri.account, "{name}: account name");
        assert!(
            g.uri.secret.as_bytes() == w.uri.secret.as_bytes(),
            "{name}: secret differs"
        );
        assert_eq!(g.uri.params, w.uri.params, "{name}: parameters");
    }
}

/// Imports every fixture listed in `fixtures_dir/manifest.json` and compares it with the
/// accounts the generator was given.
fn check_fixtures(fixtures_dir: &Path) {
    let all = accounts_json();
    let manifest = read_json(&fixtures_dir.join("manifest.json"));
    let fixtures = manifest["fixtures"].as_array().unwrap();
    assert!(
        fixtures.len() >= 6,
        "manifest lists {} fixtures",
        fixtures.len()
    );
    for f in fixtures {
        let file = f["file"].as_str().unwrap();
        let format: Format = f["format"].as_str().unwrap().parse().unwrap();
        let password = f["password"]
            .as_str()
            .map(|p| SecretString::from(p.to_string()));
        let input = std::fs::read(fixtures_dir.join(file)).unwrap();
        let report = import(format, &input, password.as_ref())
            .unwrap_or_else(|e| panic!("{file}: import failed: {e}"));
        assert!(report.unusable.is_empty(), "{file}: {:?}", report.unusable);
        assert!(report.notes.is_empty(), "{file}: {:?}", report.notes);
        let want: Vec<Account> = f["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| account(&all[i.as_u64().unwrap() as usize]))
            .collect();
        assert_same_keys(file, &report.accounts, &want);
    }
}

fn python() -> String {
    std::env::var("MAMORI_TEST_PYTHON").unwrap_or_else(|_| {
        if Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3".into()
        } else {
            "python3".into()
        }
    })
}

/// Runs generate.py; panics (never skips) when the tools are missing.
fn generator(args: &[&str]) -> String {
    let script = dir().join("generate.py");
    let out = Command::new(python())
        .arg(&script)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}); install {PACKAGES} (.ci/run does)",
                python()
            )
        });
    assert!(
        out.status.success(),
        "generate.py {:?} failed (are {PACKAGES} installed? .ci/run installs them):\n{}",
        args.first(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mamori-real-tools-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn committed_fixtures_import_exactly() {
    let fixtures = dir().join("fixtures");
    check_fixtures(&fixtures);
    // The tool versions that wrote them are on record next to them.
    let versions = &read_json(&fixtures.join("manifest.json"))["versions"];
    for tool in ["cryptography", "PyNaCl", "pyotp", "protobuf", "protoc"] {
        assert!(
            versions[tool].is_string(),
            "manifest.json: no {tool} version"
        );
    }
}

#[test]
fn fixtures_written_now_by_the_tools_import_exactly() {
    // Fresh salts, nonces and keys on every run: not only the committed bytes are readable.
    let out = temp_dir("fixtures");
    generator(&["write", out.to_str().unwrap()]);
    check_fixtures(&out);
    std::fs::remove_dir_all(&out).unwrap();
}

/// The exported entries as generate.py's readers print them, in accounts.json's shape.
fn read_back(mode: &str, file: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec![mode, file.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = generator(&args);
    serde_json::from_str::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn encrypted_aegis_export_opens_with_an_independent_scrypt_and_aes_gcm() {
    let all = accounts_json();
    let accounts: Vec<Account> = all.iter().map(account).collect();
    let password = "export password ✓";
    let file = export_aegis_with(
        &accounts,
        Some(&SecretString::from(password.to_string())),
        AegisKdf::default(),
        &mut StdRng::seed_from_u64(16),
    )
    .unwrap();
    let dir = temp_dir("aegis");
    let path = dir.join("aegis.json");
    std::fs::write(&path, &*file).unwrap();
    assert_eq!(read_back("read-aegis", &path, &[password]), all);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn google_migration_export_decodes_with_protoc_generated_code() {
    let all = accounts_json();
    // The payload carries no period and only 6 or 8 digits; Steam is left out by the exporter.
    let fits: Vec<Value> = all
        .iter()
        .filter(|a| {
            a["type"] == "hotp" || (a["type"] == "totp" && a["period"] == 30 && a["digits"] != 7)
        })
        .cloned()
        .collect();
    assert!(fits.len() >= 4);
    let accounts: Vec<Account> = fits.iter().map(account).collect();
    let export = export_google_migration(&accounts, -77, 2).unwrap();
    assert!(export.skipped.is_empty(), "{:?}", export.skipped);
    let dir = temp_dir("google");
    let path = dir.join("uris.txt");
    let text: String = export.uris.iter().map(|u| format!("{}\n", &**u)).collect();
    std::fs::write(&path, text).unwrap();
    assert_eq!(read_back("read-google", &path, &[]), fits);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn otpauth_export_parses_with_pyotp() {
    let all = accounts_json();
    // pyotp has no Steam type, and pyotp 2.6's parse_uri percent-decodes the whole URI before
    // splitting the query, so it misreads an issuer containing "&" (its own provisioning_uri
    // output included): those accounts are left out of this direction.
    let fits: Vec<Value> = all
        .iter()
        .filter(|a| a["type"] != "steam" && !a["issuer"].as_str().unwrap().contains('&'))
        .cloned()
        .collect();
    assert!(fits.len() >= 4);
    let accounts: Vec<Account> = fits.iter().map(account).collect();
    let dir = temp_dir("otpauth");
    let path = dir.join("uris.txt");
    std::fs::write(&path, export_otpauth(&accounts).as_bytes()).unwrap();
    assert_eq!(read_back("read-otpauth", &path, &[]), fits);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// What a sample file is compared on.
#[derive(Clone, Copy, PartialEq)]
enum Check {
    /// Labels, secret and parameters.
    Full,
    /// Labels and secret (the app version wrote no parameters, or no HOTP).
    Labels,
    /// Secret and parameters (the app wrote its own labels).
    Params,
}

/// Files written by the real apps, kept in Aegis's importer tests (GPL-3.0, so not copied here):
/// point `MAMORI_AEGIS_SAMPLES` at a checkout's
/// `app/src/test/resources/com/beemdevelopment/aegis/importers` and run with `--ignored`.
/// Expected accounts are the vectors Aegis's `DatabaseImporterTest` checks them against.
#[test]
#[ignore = "needs MAMORI_AEGIS_SAMPLES (Aegis's importer test resources; see docs/import-formats.md)"]
fn files_written_by_the_apps_import_as_aegis_expects() {
    let dir = PathBuf::from(
        std::env::var("MAMORI_AEGIS_SAMPLES").expect("set MAMORI_AEGIS_SAMPLES to the directory"),
    );
    let totp = |algorithm, digits, period| OtpParams {
        kind: OtpKind::Totp,
        algorithm,
        digits,
        period,
        counter: 0,
    };
    let hotp = |algorithm, digits, counter| OtpParams {
        kind: OtpKind::Hotp,
        algorithm,
        digits,
        period: 30,
        counter,
    };
    let vectors = [
        (
            "Deno",
            "Mason",
            "4SJHB4GSD43FZBAI7C2HLRJGPQ",
            totp(Algorithm::Sha1, 6, 30),
        ),
        (
            "SPDX",
            "James",
            "5OM4WOOGPLQEF6UGN3CPEOOLWU",
            totp(Algorithm::Sha256, 7, 20),
        ),
        (
            "Airbnb",
            "Elijah",
            "7ELGJSGXNCCTV3O6LKJWYFV2RA",
            totp(Algorithm::Sha512, 8, 50),
        ),
        (
            "Issuu",
            "James",
            "YOOMIXWS5GN6RTBPUFFWKTW5M4",
            hotp(Algorithm::Sha1, 6, 1),
        ),
        (
            "Air Canada",
            "Benjamin",
            "KUVJJOM753IHTNDSZVCNKL7GII",
            hotp(Algorithm::Sha256, 7, 50),
        ),
        (
            "WWE",
            "Mason",
            "5VAML3X35THCEBVRLV24CGBKOY",
            hotp(Algorithm::Sha512, 8, 10300),
        ),
        (
            "Boeing",
            "Sophia",
            "JRZCL47CMXVOQMNPZR2F7J4RGI",
            OtpParams::steam(),
        ),
    ];
    let all: &[usize] = &[0, 1, 2, 3, 4, 5, 6];
    let samples: &[(&str, Format, &[usize], Check)] = &[
        ("plain.txt", Format::Otpauth, all, Check::Full),
        ("aegis_plain.json", Format::Aegis, all, Check::Full),
        ("aegis_encrypted.json", Format::Aegis, all, Check::Full),
        ("andotp_plain.json", Format::AndOtp, all, Check::Full),
        ("andotp_encrypted.bin", Format::AndOtp, all, Check::Full),
        (
            "andotp_encrypted_old.bin",
            Format::AndOtp,
            &[0, 1, 2, 3, 4, 5],
            Check::Params,
        ),
        (
            "2fas_authenticator.json",
            Format::TwoFas,
            &[0, 1, 2, 3, 4, 5],
            Check::Labels,
        ),
        (
            "2fas_authenticator_plain.2fas",
            Format::TwoFas,
            &[0, 2, 3, 5],
            Check::Labels,
        ),
        (
            "2fas_authenticator_encrypted.2fas",
            Format::TwoFas,
            &[0, 2, 3, 5],
            Check::Labels,
        ),
        (
            "2fas_authenticator_plain_v3.2fas",
            Format::TwoFas,
            &[0, 1, 2, 3, 4, 5],
            Check::Full,
        ),
        (
            "2fas_authenticator_encrypted_v3.2fas",
            Format::TwoFas,
            &[0, 1, 2, 3, 4, 5],
            Check::Full,
        ),
        (
            "2fas_authenticator_plain_v4.2fas",
            Format::TwoFas,
            &[0, 3, 4, 5, 6],
            Check::Full,
        ),
        (
            "2fas_authenticator_encrypted_v4.2fas",
            Format::TwoFas,
            &[0, 3, 4, 5, 6],
            Check::Full,
        ),
        (
            "bitwarden.json",
            Format::Bitwarden,
            &[0, 1, 2, 6],
            Check::Params,
        ),
        (
            "bitwarden.csv",
            Format::Bitwarden,
            &[0, 1, 2, 6],
            Check::Params,
        ),
        (
            "ente_auth.txt",
            Format::Ente,
            &[4, 2, 6, 0, 3, 1, 5],
            Check::Full,
        ),
        (
            "freeotp_plus.json",
            Format::FreeOtpPlus,
            &[5, 4, 3, 2, 1, 0],
            Check::Full,
        ),
    ];
    let password = SecretString::from("test".to_string());
    for (file, format, want, check) in samples {
        let input = std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let report = import(*format, &input, Some(&password))
            .unwrap_or_else(|e| panic!("{file}: import failed: {e}"));
        assert!(report.unusable.is_empty(), "{file}: {:?}", report.unusable);
        assert_eq!(report.accounts.len(), want.len(), "{file}: account count");
        for (got, &i) in report.accounts.iter().zip(want.iter()) {
            let (issuer, name, secret, params) = &vectors[i];
            let what = format!("{file}: {issuer} ({name})");
            assert!(
                got.uri.secret.as_bytes() == Secret::from_base32(secret).unwrap().as_bytes(),
                "{what}: secret differs"
            );
            if *check != Check::Params {
                assert_eq!(got.uri.issuer.as_deref(), Some(*issuer), "{what}: issuer");
                assert_eq!(got.uri.account, *name, "{what}: account name");
            }
            if *check != Check::Labels {
                assert_eq!(got.uri.params, *params, "{what}: parameters");
            }
        }
    }
}

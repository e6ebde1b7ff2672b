//! Every reader against fixtures from the generator in `common`: plain and encrypted files,
//! the right and wrong passwords, truncated and altered files, unusable entries, limits.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

/// Changes the first character of a Base64 string (so the decoded bytes differ).
fn alter_first(s: &str) -> String {
    let first = if s.starts_with('A') { 'B' } else { 'A' };
    format!("{first}{}", s.get(1..).unwrap())
}

use crate::common::*;
use mamori_formats::{import, Format, FormatError, ImportReport, MAX_ENTRIES, MAX_INPUT_BYTES};
use mamori_otp::{OtpKind, OtpParams};
use serde_json::{json, Value};

fn ok(format: Format, input: &[u8], password: Option<&str>) -> ImportReport {
    let password = password.map(pw);
    match import(format, input, password.as_ref()) {
        Ok(r) => {
            assert_no_secret_leaks(&r);
            r
        }
        Err(e) => panic!("{format}: {e}"),
    }
}

fn err(format: Format, input: &[u8], password: Option<&str>) -> FormatError {
    let password = password.map(pw);
    match import(format, input, password.as_ref()) {
        Ok(r) => panic!(
            "{format}: expected an error, imported {} accounts",
            r.accounts.len()
        ),
        Err(e) => {
            let msg = e.to_string();
            for a in sample() {
                assert!(!msg.contains(b32(&a).as_str()), "secret in error: {msg}");
            }
            e
        }
    }
}

/// Reasons and notes never quote a secret of the sample.
fn assert_no_secret_leaks(r: &ImportReport) {
    let text = format!("{:?} {:?} {:?}", r.unusable, r.notes, r.accounts);
    for a in sample() {
        assert!(!text.contains(b32(&a).as_str()), "secret leaked: {text}");
    }
}

fn damaged(e: &FormatError) -> bool {
    matches!(e, FormatError::Damaged { .. })
}

fn only(kinds: &[OtpKind]) -> Vec<mamori_formats::Account> {
    sample()
        .into_iter()
        .filter(|a| kinds.contains(&a.uri.params.kind))
        .collect()
}

fn defaults_only() -> Vec<mamori_formats::Account> {
    sample()
        .into_iter()
        .filter(|a| a.uri.params == OtpParams::totp())
        .collect()
}

// ------------------------------------------------------------------------------ names

#[test]
fn format_names_parse_and_unknown_names_are_refused() {
    for f in Format::ALL {
        assert_eq!(f.name().parse::<Format>().unwrap(), f);
    }
    assert_eq!("2FAS".parse::<Format>().unwrap(), Format::TwoFas);
    assert!(matches!(
        "lastpass".parse::<Format>(),
        Err(FormatError::UnknownFormat(..))
    ));
    assert_eq!(
        "html".parse::<mamori_formats::ExportFormat>().unwrap(),
        mamori_formats::ExportFormat::Html
    );
}

// ------------------------------------------------------------------------------ otpauth

#[test]
fn otpauth_reads_lines_skips_comments_and_reports_bad_lines_by_number() {
    let mut text = String::from("# exported by hand\n\n");
    for a in sample() {
        text.push_str(&a.uri.to_uri());
        text.push('\n');
    }
    text.push_str("otpauth://totp/Bad:x?secret=NOT-BASE32!\n");
    text.push_str("otpauth://yandex/Y:y?secret=JBSWY3DP\n");
    text.push_str("otpauth-migration://offline?data=AAAA\n");
    text.push_str("   \n");
    let r = ok(Format::Otpauth, text.as_bytes(), None);
    assert_accounts(&r.accounts, &sample(), URI_ONLY);
    let names: Vec<&str> = r.unusable.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["line 9", "line 10", "line 11"]);
    assert!(r.unusable[0].reason.contains("secret"), "{}", r.unusable[0]);
    assert!(r.unusable[1].reason.contains("yandex"), "{}", r.unusable[1]);
    assert!(
        r.unusable[2].reason.contains("google-migration"),
        "{}",
        r.unusable[2]
    );
}

#[test]
fn otpauth_refuses_binary_input() {
    assert!(damaged(&err(
        Format::Otpauth,
        &[0xff, 0xfe, 0x00, 0x41],
        None
    )));
}

// ------------------------------------------------------------------------------ Aegis

#[test]
fn aegis_plain_content_versions_1_to_3() {
    for version in 1..=3 {
        let file = aegis_plain(&aegis_content(&sample(), version));
        let r = ok(Format::Aegis, &file, None);
        let carries = Carries {
            note: true,
            tags: if version >= 3 { usize::MAX } else { 1 },
            favorite: true,
        };
        assert_accounts(&r.accounts, &sample(), carries);
        assert!(r.unusable.is_empty(), "{:?}", r.unusable);
    }
}

#[test]
fn aegis_encrypted_with_aegis_own_scrypt_parameters() {
    // The real N = 2^15, r = 8, p = 1 that Aegis writes; two password slots and a biometric one.
    let mut rng = rng(1);
    let file = aegis_encrypted(
        &aegis_content(&sample(), 3),
        &["first pass", "second pass"],
        1 << 15,
        8,
        1,
        &mut rng,
    );
    let r = ok(Format::Aegis, &file, Some("second pass"));
    assert_accounts(&r.accounts, &sample(), EVERYTHING);
    assert_eq!(
        err(Format::Aegis, &file, None),
        FormatError::PasswordRequired
    );
}

#[test]
fn aegis_wrong_password_and_damage_import_nothing() {
    let mut rng = rng(2);
    let file = aegis_encrypted(
        &aegis_content(&sample(), 2),
        &["right"],
        1 << 10,
        8,
        1,
        &mut rng,
    );
    assert_eq!(
        ok(Format::Aegis, &file, Some("right")).accounts.len(),
        sample().len()
    );
    assert_eq!(
        err(Format::Aegis, &file, Some("wrong")),
        FormatError::WrongPassword
    );

    // Truncated anywhere: never imports.
    for cut in [1, file.len() / 3, file.len() / 2, file.len() - 3] {
        let e = err(Format::Aegis, &file[..cut], Some("right"));
        assert!(damaged(&e), "cut at {cut}: {e}");
    }
    // The ciphertext altered: the right password opens the slot, the db fails authentication.
    let mut v: Value = serde_json::from_slice(&file).unwrap();
    let db = v["db"].as_str().unwrap().to_string();
    let flipped = alter_first(&db);
    v["db"] = json!(flipped);
    let e = err(
        Format::Aegis,
        &serde_json::to_vec(&v).unwrap(),
        Some("right"),
    );
    assert!(
        matches!(&e, FormatError::Damaged { what } if what.contains("db")),
        "{e}"
    );
    // A damaged slot field names the slot.
    let mut v: Value = serde_json::from_slice(&file).unwrap();
    v["header"]["slots"][1]["key_params"]["nonce"] = json!("zz");
    let e = err(
        Format::Aegis,
        &serde_json::to_vec(&v).unwrap(),
        Some("right"),
    );
    assert!(
        matches!(&e, FormatError::Damaged { what } if what.contains("slots[1]")),
        "{e}"
    );
}

#[test]
fn aegis_only_biometric_slots_is_unsupported_with_advice() {
    let mut rng = rng(3);
    let file = aegis_encrypted(&aegis_content(&sample(), 3), &[], 1 << 10, 8, 1, &mut rng);
    assert!(
        matches!(err(Format::Aegis, &file, Some("x")), FormatError::Unsupported(m) if m.contains("password"))
    );
}

#[test]
fn aegis_kdf_parameters_beyond_limits_are_refused_before_running() {
    let mut rng = rng(4);
    let file = aegis_encrypted(
        &aegis_content(&sample(), 3),
        &["pw"],
        1 << 10,
        8,
        1,
        &mut rng,
    );
    for (n, r, p) in [
        (1u64 << 21, 8, 1),
        (1000, 8, 1),
        (1 << 10, 0, 1),
        (1 << 10, 8, 100),
        (1 << 20, 16, 1),
    ] {
        let mut v: Value = serde_json::from_slice(&file).unwrap();
        v["header"]["slots"][1]["n"] = json!(n);
        v["header"]["slots"][1]["r"] = json!(r);
        v["header"]["slots"][1]["p"] = json!(p);
        let e = err(Format::Aegis, &serde_json::to_vec(&v).unwrap(), Some("pw"));
        assert!(
            matches!(e, FormatError::KdfParameters(_)),
            "N={n} r={r} p={p}: {e}"
        );
    }
}

#[test]
fn aegis_unusable_entries_are_reported_and_the_rest_import() {
    let mut content = aegis_content(&sample(), 3);
    let entries = content["entries"].as_array_mut().unwrap();
    let mut yandex = entries[0].clone();
    yandex["type"] = json!("yandex");
    yandex["issuer"] = json!("Yandex");
    let mut md5 = entries[0].clone();
    md5["info"]["algo"] = json!("MD5");
    md5["issuer"] = json!("Old");
    let mut empty = entries[0].clone();
    empty["info"]["secret"] = json!("");
    empty["issuer"] = json!("Empty");
    let mut digits = entries[0].clone();
    digits["info"]["digits"] = json!(3);
    digits["issuer"] = json!("Short");
    let mut malformed = entries[0].clone();
    malformed["info"] = json!("not an object");
    entries.extend([yandex, md5, empty, digits, malformed]);
    let r = ok(Format::Aegis, &aegis_plain(&content), None);
    assert_accounts(&r.accounts, &sample(), EVERYTHING);
    let got: Vec<(String, String)> = r
        .unusable
        .iter()
        .map(|u| (u.name.clone(), u.reason.clone()))
        .collect();
    assert_eq!(got.len(), 5, "{got:?}");
    assert!(
        got[0].0.starts_with("Yandex") && got[0].1.contains("yandex"),
        "{got:?}"
    );
    assert!(
        got[1].0.starts_with("Old") && got[1].1.contains("MD5"),
        "{got:?}"
    );
    assert!(
        got[2].0.starts_with("Empty") && got[2].1.contains("empty"),
        "{got:?}"
    );
    assert!(
        got[3].0.starts_with("Short") && got[3].1.contains("digits"),
        "{got:?}"
    );
    assert_eq!(got[4].0, format!("entry {}", sample().len() + 5));
}

#[test]
fn aegis_unknown_versions_are_refused() {
    let mut content = aegis_content(&sample(), 3);
    content["version"] = json!(4);
    assert!(matches!(
        err(Format::Aegis, &aegis_plain(&content), None),
        FormatError::UnsupportedVersion { .. }
    ));
    let mut file: Value =
        serde_json::from_slice(&aegis_plain(&aegis_content(&sample(), 3))).unwrap();
    file["version"] = json!(2);
    assert!(matches!(
        err(Format::Aegis, &serde_json::to_vec(&file).unwrap(), None),
        FormatError::UnsupportedVersion { .. }
    ));
}

// ------------------------------------------------------------------------------ 2FAS

#[test]
fn twofas_plain_schemas_1_to_4() {
    let mut rng = rng(5);
    // Schema 1 carries no parameters; 2 and 3 no token type; 4 everything but notes.
    let cases = [
        (1, defaults_only(), 0),
        (2, only(&[OtpKind::Totp]), 1),
        (3, only(&[OtpKind::Totp]), 1),
        (4, sample(), 1),
    ];
    for (schema, accounts, tags) in cases {
        let r = ok(
            Format::TwoFas,
            &twofas(&accounts, schema, None, &mut rng),
            None,
        );
        let carries = Carries {
            note: false,
            tags,
            favorite: false,
        };
        assert_accounts(&r.accounts, &accounts, carries);
    }
}

#[test]
fn twofas_encrypted_right_wrong_and_missing_password() {
    let mut rng = rng(6);
    let file = twofas(&sample(), 4, Some("s3cret"), &mut rng);
    let r = ok(Format::TwoFas, &file, Some("s3cret"));
    assert_accounts(
        &r.accounts,
        &sample(),
        Carries {
            note: false,
            tags: 1,
            favorite: false,
        },
    );
    assert_eq!(
        err(Format::TwoFas, &file, Some("S3cret")),
        FormatError::WrongPassword
    );
    assert_eq!(
        err(Format::TwoFas, &file, None),
        FormatError::PasswordRequired
    );
    // Schema 3 backups were encrypted the same way.
    let v3 = twofas(&only(&[OtpKind::Totp]), 3, Some("pw3"), &mut rng);
    assert_eq!(
        ok(Format::TwoFas, &v3, Some("pw3")).accounts.len(),
        only(&[OtpKind::Totp]).len()
    );
}

#[test]
fn twofas_damaged_files_say_which_part() {
    let mut rng = rng(7);
    let file = twofas(&sample(), 4, Some("pw"), &mut rng);
    let v: Value = serde_json::from_slice(&file).unwrap();
    for cut in [10, file.len() / 2, file.len() - 2] {
        assert!(
            damaged(&err(Format::TwoFas, &file[..cut], Some("pw"))),
            "cut at {cut}"
        );
    }
    // servicesEncrypted with a part missing.
    let mut bad = v.clone();
    let enc = bad["servicesEncrypted"].as_str().unwrap().to_string();
    bad["servicesEncrypted"] = json!(enc.rsplit_once(':').unwrap().0);
    let e = err(
        Format::TwoFas,
        &serde_json::to_vec(&bad).unwrap(),
        Some("pw"),
    );
    assert!(
        matches!(&e, FormatError::Damaged { what } if what.contains("servicesEncrypted")),
        "{e}"
    );
    // The ciphertext altered while the reference proves the password right.
    let mut bad = v.clone();
    let (ct, rest) = enc.split_once(':').unwrap();
    let altered = alter_first(ct);
    bad["servicesEncrypted"] = json!(format!("{altered}:{rest}"));
    let e = err(
        Format::TwoFas,
        &serde_json::to_vec(&bad).unwrap(),
        Some("pw"),
    );
    assert!(
        matches!(&e, FormatError::Damaged { what } if what.contains("servicesEncrypted")),
        "{e}"
    );
    // Without the reference field, a wrong password cannot be told from damage.
    let mut no_ref = v.clone();
    no_ref.as_object_mut().unwrap().remove("reference");
    assert_eq!(
        err(
            Format::TwoFas,
            &serde_json::to_vec(&no_ref).unwrap(),
            Some("nope")
        ),
        FormatError::WrongPasswordOrDamaged
    );
    assert_eq!(
        ok(
            Format::TwoFas,
            &serde_json::to_vec(&no_ref).unwrap(),
            Some("pw")
        )
        .accounts
        .len(),
        6
    );
}

#[test]
fn twofas_unusable_and_unknown_schema() {
    let mut rng = rng(8);
    let mut v: Value = serde_json::from_slice(&twofas(&sample(), 4, None, &mut rng)).unwrap();
    let mut yandex = v["services"][0].clone();
    yandex["otp"]["tokenType"] = json!("YANDEX");
    yandex["name"] = json!("Yandex");
    let mut md5 = v["services"][0].clone();
    md5["otp"]["algorithm"] = json!("MD5");
    md5["name"] = json!("Old");
    v["services"].as_array_mut().unwrap().extend([yandex, md5]);
    let r = ok(Format::TwoFas, &serde_json::to_vec(&v).unwrap(), None);
    assert_eq!(r.accounts.len(), sample().len());
    assert_eq!(r.unusable.len(), 2);
    assert!(
        r.unusable[0].reason.contains("yandex") && r.unusable[1].reason.contains("MD5"),
        "{:?}",
        r.unusable
    );
    v["schemaVersion"] = json!(5);
    assert!(matches!(
        err(Format::TwoFas, &serde_json::to_vec(&v).unwrap(), None),
        FormatError::UnsupportedVersion { .. }
    ));
}

// ------------------------------------------------------------------------------ andOTP

const ANDOTP: Carries = Carries {
    note: false,
    tags: usize::MAX,
    favorite: false,
};

#[test]
fn andotp_plain_new_and_old_encryption() {
    let mut rng = rng(9);
    let plain = andotp_json(&sample());
    assert_accounts(
        &ok(Format::AndOtp, &plain, None).accounts,
        &sample(),
        ANDOTP,
    );
    // andOTP picks 140,000..160,000 iterations: use a real value once.
    let new = andotp_encrypt(&plain, "pässword", 150_000, &mut rng);
    assert_accounts(
        &ok(Format::AndOtp, &new, Some("pässword")).accounts,
        &sample(),
        ANDOTP,
    );
    let old = andotp_encrypt_old(&plain, "pässword", &mut rng);
    assert_accounts(
        &ok(Format::AndOtp, &old, Some("pässword")).accounts,
        &sample(),
        ANDOTP,
    );
    for file in [&new, &old] {
        assert_eq!(
            err(Format::AndOtp, file, Some("password")),
            FormatError::WrongPasswordOrDamaged
        );
        assert_eq!(
            err(Format::AndOtp, file, None),
            FormatError::PasswordRequired
        );
    }
}

#[test]
fn andotp_truncated_and_altered_files_import_nothing() {
    let mut rng = rng(10);
    let file = andotp_encrypt(&andotp_json(&sample()), "pw", 1000, &mut rng);
    assert!(damaged(&err(Format::AndOtp, &file[..20], Some("pw"))));
    for cut in [40, file.len() / 2, file.len() - 1] {
        assert_eq!(
            err(Format::AndOtp, &file[..cut], Some("pw")),
            FormatError::WrongPasswordOrDamaged,
            "cut {cut}"
        );
    }
    let mut altered = file.clone();
    let last = altered.len() - 20;
    altered[last] ^= 0x80;
    assert_eq!(
        err(Format::AndOtp, &altered, Some("pw")),
        FormatError::WrongPasswordOrDamaged
    );
    // A plain file cut short is damaged JSON.
    let plain = andotp_json(&sample());
    assert!(damaged(&err(
        Format::AndOtp,
        &plain[..plain.len() / 2],
        None
    )));
    // Iterations above the limit are never run (the old form is tried instead, and fails).
    let mut huge = file.clone();
    huge[..4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(
        err(Format::AndOtp, &huge, Some("pw")),
        FormatError::WrongPasswordOrDamaged
    );
}

#[test]
fn andotp_unusable_entries() {
    let mut entries: Value = serde_json::from_slice(&andotp_json(&sample())).unwrap();
    let mut md5 = entries[0].clone();
    md5["algorithm"] = json!("MD5");
    let mut motp = entries[0].clone();
    motp["type"] = json!("MOTP");
    let mut bad = entries[0].clone();
    bad["secret"] = json!("1111");
    entries.as_array_mut().unwrap().extend([md5, motp, bad]);
    let r = ok(Format::AndOtp, &serde_json::to_vec(&entries).unwrap(), None);
    assert_accounts(&r.accounts, &sample(), ANDOTP);
    assert_eq!(r.unusable.len(), 3, "{:?}", r.unusable);
    assert!(r.unusable[2].reason.contains("Base32"), "{}", r.unusable[2]);
}

// ------------------------------------------------------------------------------ Bitwarden

const BITWARDEN: Carries = Carries {
    note: true,
    tags: 1,
    favorite: true,
};

#[test]
fn bitwarden_json_and_csv_with_uris_bare_secrets_and_steam() {
    let all = sample();
    // A bare secret or steam:// carries only default TOTP or Steam.
    let bare: Vec<_> = all
        .iter()
        .filter(|a| a.uri.params == OtpParams::totp() || a.uri.params.kind == OtpKind::Steam)
        .cloned()
        .collect();
    for (accounts, style) in [(&all, TotpStyle::Uri), (&bare, TotpStyle::Bare)] {
        let r = ok(Format::Bitwarden, &bitwarden_json(accounts, style), None);
        assert_accounts(&r.accounts, accounts, BITWARDEN);
        assert_eq!(r.notes, ["2 item(s) without a TOTP key were ignored"]);
        let r = ok(Format::Bitwarden, &bitwarden_csv(accounts, style), None);
        assert_accounts(&r.accounts, accounts, BITWARDEN);
        assert_eq!(r.notes, ["1 item(s) without a TOTP key were ignored"]);
    }
}

#[test]
fn bitwarden_uses_item_name_and_username_when_the_uri_lacks_them() {
    let csv = "folder,favorite,type,name,notes,fields,reprompt,login_uri,login_username,login_password,login_totp\n\
               ,,login,GitHub,,,0,,octo@example.com,pw,otpauth://totp/?secret=JBSWY3DPEHPK3PXP\n\
               ,,login,Broken,,,0,,x,pw,otpauth://totp/B:x?secret=JBSWY3DP&digits=99\n";
    let r = ok(Format::Bitwarden, csv.as_bytes(), None);
    assert_eq!(r.accounts.len(), 1);
    assert_eq!(r.accounts[0].uri.issuer.as_deref(), Some("GitHub"));
    assert_eq!(r.accounts[0].uri.account, "octo@example.com");
    assert_eq!(r.unusable.len(), 1);
    assert!(r.unusable[0].reason.contains("digits"), "{}", r.unusable[0]);
}

#[test]
fn bitwarden_encrypted_truncated_and_foreign_files() {
    let enc = br#"{"encrypted": true, "passwordProtected": true, "salt": "x", "data": "y"}"#;
    assert!(matches!(
        err(Format::Bitwarden, enc, None),
        FormatError::Unsupported(_)
    ));
    let json = bitwarden_json(&sample(), TotpStyle::Uri);
    assert!(damaged(&err(
        Format::Bitwarden,
        &json[..json.len() / 2],
        None
    )));
    assert!(damaged(&err(
        Format::Bitwarden,
        b"name,username\nx,y\n",
        None
    )));
}

const BITWARDEN_CSV_HEADER: &str = "folder,favorite,type,name,notes,fields,reprompt,login_uri,\
                                    login_username,login_password,login_totp\n";

/// The `what` of a `Damaged` error, failing the test for any other outcome.
#[track_caller]
fn damaged_what(r: Result<ImportReport, FormatError>) -> String {
    match r {
        Err(FormatError::Damaged { what }) => what,
        Err(other) => panic!("expected Damaged, got {other:?}"),
        Ok(report) => panic!(
            "a damaged CSV was accepted with {} account(s)",
            report.accounts.len()
        ),
    }
}

#[test]
fn bitwarden_csv_cut_inside_quotes_is_refused_not_partly_imported() {
    // Every complete row is usable, so a partial import would look like a success: the cut
    // must refuse the whole file.
    let csv = bitwarden_csv(&sample(), TotpStyle::Uri);
    let mut cut = csv.clone();
    cut.extend_from_slice(b",,login,\"Cut mid-quote");
    let what = damaged_what(import(Format::Bitwarden, &cut, None));
    assert!(what.contains("ends inside a quoted field"), "{what}");

    // An opening quote whose closing one was lost swallows every row after it into one field.
    let first_row_end = csv.iter().position(|&b| b == b'\n').unwrap() + 1;
    let mut swallowed = csv[..first_row_end].to_vec();
    swallowed.extend_from_slice(b",,login,\"Lost quote,");
    swallowed.extend_from_slice(&csv[first_row_end..]);
    assert!(damaged(&err(Format::Bitwarden, &swallowed, None)));

    // Wherever the file is cut, a quote appended there never yields a partial import: inside
    // an unquoted field (here the last row's login_totp) it is a stray quote, at the start of
    // a field it opens a quoted field that never ends.
    for (len, expected) in [
        (csv.len() / 3, "quote inside an unquoted field"),
        (csv.len() / 2, "quote inside an unquoted field"),
        (csv.len(), "ends inside a quoted field"),
    ] {
        let mut cut = csv[..len].to_vec();
        cut.extend_from_slice(b"\"unterminated");
        let what = damaged_what(import(Format::Bitwarden, &cut, None));
        assert!(what.contains(expected), "cut at {len}: {what}");
    }
    let mut closed_early = csv.clone();
    closed_early.extend_from_slice(b",,login,\"Name\" Co,,,0,,x,pw,JBSWY3DP\n");
    let what = damaged_what(import(Format::Bitwarden, &closed_early, None));
    assert!(what.contains("text after the closing quote"), "{what}");
}

#[test]
fn bitwarden_csv_row_with_missing_columns_is_refused() {
    // The last row lost its login_totp column: read leniently it would be an item "without a
    // TOTP key", silently dropped.
    let csv = format!(
        "{BITWARDEN_CSV_HEADER},,login,GitHub,,,0,,octo,pw,JBSWY3DPEHPK3PXP\n,,login,Cut,,"
    );
    let what = damaged_what(import(Format::Bitwarden, csv.as_bytes(), None));
    assert!(
        what.contains("line 3 has 6 fields where the header has 11"),
        "{what}"
    );
}

#[test]
fn bitwarden_csv_doubled_quotes_are_not_mistaken_for_a_cut() {
    let csv = format!(
        "{BITWARDEN_CSV_HEADER},,login,\"Acme \"\"Labs\"\", Inc.\",\"\"\"\",,0,,octo,pw,\
         JBSWY3DPEHPK3PXP\n"
    );
    let r = ok(Format::Bitwarden, csv.as_bytes(), None);
    assert_eq!(r.accounts.len(), 1);
    assert_eq!(
        r.accounts[0].uri.issuer.as_deref(),
        Some("Acme \"Labs\", Inc.")
    );
}

// ------------------------------------------------------------------------------ Ente

#[test]
fn ente_plain_text_ignores_code_display() {
    let r = ok(Format::Ente, ente_plain(&sample()).as_bytes(), None);
    assert_accounts(&r.accounts, &sample(), URI_ONLY);
}

#[test]
fn ente_encrypted_export() {
    let mut rng = rng(11);
    let plain = ente_plain(&sample());
    // libsodium's "interactive" memory level (64 MiB) with 2 passes.
    let file = ente_encrypted(&plain, "ente pw", 64 << 20, 2, &mut rng);
    assert_accounts(
        &ok(Format::Ente, &file, Some("ente pw")).accounts,
        &sample(),
        URI_ONLY,
    );
    assert_eq!(
        err(Format::Ente, &file, Some("ente PW")),
        FormatError::WrongPasswordOrDamaged
    );
    assert_eq!(
        err(Format::Ente, &file, None),
        FormatError::PasswordRequired
    );
}

#[test]
fn ente_damaged_files_and_limits() {
    let mut rng = rng(12);
    let file = ente_encrypted(&ente_plain(&sample()), "pw", 64 << 10, 1, &mut rng);
    for cut in [5, file.len() / 2, file.len() - 2] {
        assert!(
            damaged(&err(Format::Ente, &file[..cut], Some("pw"))),
            "cut {cut}"
        );
    }
    let v: Value = serde_json::from_slice(&file).unwrap();
    let mut short = v.clone();
    short["encryptionNonce"] = json!("AAAA");
    assert!(damaged(&err(
        Format::Ente,
        &serde_json::to_vec(&short).unwrap(),
        Some("pw")
    )));
    let mut data = v.clone();
    let enc = data["encryptedData"].as_str().unwrap().to_string();
    data["encryptedData"] = json!(&enc[..enc.len() - 8]);
    let e = err(
        Format::Ente,
        &serde_json::to_vec(&data).unwrap(),
        Some("pw"),
    );
    assert!(
        damaged(&e) || e == FormatError::WrongPasswordOrDamaged,
        "{e}"
    );
    for (mem, ops) in [(2u64 << 30, 1u64), (1 << 30, 5), (4096, 1), (64 << 10, 0)] {
        let mut big = v.clone();
        big["kdfParams"]["memLimit"] = json!(mem);
        big["kdfParams"]["opsLimit"] = json!(ops);
        let e = err(Format::Ente, &serde_json::to_vec(&big).unwrap(), Some("pw"));
        assert!(
            matches!(e, FormatError::KdfParameters(_)),
            "mem {mem} ops {ops}: {e}"
        );
    }
    let mut version = v.clone();
    version["version"] = json!(2);
    assert!(matches!(
        err(
            Format::Ente,
            &serde_json::to_vec(&version).unwrap(),
            Some("pw")
        ),
        FormatError::UnsupportedVersion { .. }
    ));
}

// ------------------------------------------------------------------------------ FreeOTP+

#[test]
fn freeotp_plus_export_follows_token_order() {
    let r = ok(Format::FreeOtpPlus, &freeotp_plus(&sample()), None);
    let mut want = sample();
    want.reverse();
    assert_accounts(&r.accounts, &want, URI_ONLY);
}

#[test]
fn freeotp_plus_unusable_tokens() {
    let mut v: Value = serde_json::from_slice(&freeotp_plus(&sample())).unwrap();
    let mut out_of_range = v["tokens"][0].clone();
    out_of_range["secret"] = json!([1, 2, 300]);
    let mut empty = v["tokens"][0].clone();
    empty["secret"] = json!([]);
    let mut md5 = v["tokens"][0].clone();
    md5["algo"] = json!("MD5");
    v["tokens"]
        .as_array_mut()
        .unwrap()
        .extend([out_of_range, empty, md5]);
    let r = ok(Format::FreeOtpPlus, &serde_json::to_vec(&v).unwrap(), None);
    assert_eq!(r.accounts.len(), sample().len());
    let reasons: Vec<&str> = r.unusable.iter().map(|u| u.reason.as_str()).collect();
    assert_eq!(reasons.len(), 3);
    assert!(
        reasons[0].contains("-128") && reasons[1].contains("empty") && reasons[2].contains("MD5"),
        "{reasons:?}"
    );
    let f = freeotp_plus(&sample());
    assert!(damaged(&err(Format::FreeOtpPlus, &f[..f.len() - 5], None)));
}

// ------------------------------------------------------------------------------ Google

#[test]
fn google_migration_text_with_unusable_entries_and_missing_batches() {
    use mamori_otp::migration::raw_payload;
    let b64 = |p: Vec<u8>| {
        format!(
            "otpauth-migration://offline?data={}",
            percent_encoding::utf8_percent_encode(
                &data_encoding::BASE64.encode(&p),
                percent_encoding::NON_ALPHANUMERIC
            )
        )
    };
    let batch0 = raw_payload(
        &[
            (
                b"12345678901234567890",
                "ACME Co:alice",
                "ACME Co",
                1,
                1,
                2,
                0,
            ),
            (b"abcdefghij", "legacy", "Old", 4, 1, 2, 0),
            (b"", "empty", "Nothing", 1, 1, 2, 0),
        ],
        3,
        0,
        -1234,
    );
    let batch2 = raw_payload(&[(b"0123456789", "bob", "Bank", 2, 2, 1, 7)], 3, 2, -1234);
    let text = format!(
        "{}\n\n# comment\n{}\n{}\nnot a uri\n",
        b64(batch0.clone()),
        b64(batch2),
        b64(batch0)
    );
    let r = ok(Format::GoogleMigration, text.as_bytes(), None);
    assert_eq!(r.accounts.len(), 2);
    assert_eq!(r.accounts[0].uri.account, "alice");
    assert_eq!(r.accounts[1].uri.params.kind, OtpKind::Hotp);
    assert_eq!(r.accounts[1].uri.params.counter, 7);
    assert_eq!(r.unusable.len(), 3, "{:?}", r.unusable);
    assert!(r.unusable[0].reason.contains("MD5"));
    assert_eq!(r.unusable[2].name, "line 6");
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("batch 2 of 3 of export -1234 is missing")),
        "{:?}",
        r.notes
    );
    assert!(
        r.notes.iter().any(|n| n.contains("more than once")),
        "{:?}",
        r.notes
    );
}

#[test]
fn google_migration_image_without_code_is_damaged() {
    let png = mamori_otp::qr::to_png("hello", 2).unwrap();
    // A valid image whose only code is not a URI: an unusable entry, not an error.
    let r = ok(Format::GoogleMigration, &png, None);
    assert_eq!(r.unusable.len(), 1);
    // A truncated PNG is damaged.
    assert!(damaged(&err(
        Format::GoogleMigration,
        &png[..png.len() / 2],
        None
    )));
}

// ------------------------------------------------------------------------------ limits

#[test]
fn input_size_and_entry_count_limits() {
    let big = vec![b' '; MAX_INPUT_BYTES + 1];
    for f in Format::ALL {
        assert!(
            matches!(err(f, &big, None), FormatError::TooLarge { .. }),
            "{f}"
        );
    }
    let line = "otpauth://totp/A:b?secret=JBSWY3DPEHPK3PXP\n";
    let many = line.repeat(MAX_ENTRIES + 1);
    assert!(matches!(
        err(Format::Otpauth, many.as_bytes(), None),
        FormatError::TooLarge { .. }
    ));
    assert_eq!(
        ok(Format::Otpauth, line.repeat(MAX_ENTRIES).as_bytes(), None)
            .accounts
            .len(),
        MAX_ENTRIES
    );
    let andotp = andotp_json(&vec![sample()[0].clone(); MAX_ENTRIES + 1]);
    assert!(matches!(
        err(Format::AndOtp, &andotp, None),
        FormatError::TooLarge { .. }
    ));
}

#[test]
fn debug_output_redacts_secrets_and_notes() {
    let r = ok(
        Format::Aegis,
        &aegis_plain(&aegis_content(&sample(), 3)),
        None,
    );
    let dbg = format!("{r:?}");
    assert!(!dbg.contains("recovery codes"), "{dbg}");
    for a in sample() {
        assert!(!dbg.contains(b32(&a).as_str()));
    }
}

#[test]
fn bitwarden_organisation_csv_collections_become_tags() {
    let csv = "collections,type,name,notes,fields,reprompt,login_uri,login_username,login_password,login_totp\n\
               \"Social,Marketing\",login,Twitter,,,0,twitter.com,me@example.com,pw,JBSWY3DPEHPK3PXP\n";
    let r = ok(Format::Bitwarden, csv.as_bytes(), None);
    assert_eq!(r.accounts.len(), 1);
    assert_eq!(r.accounts[0].tags, ["Social", "Marketing"]);
    assert_eq!(r.accounts[0].uri.issuer.as_deref(), Some("Twitter"));
    assert_eq!(r.accounts[0].uri.account, "me@example.com");
}

/// Regression: an old-form encrypted file whose random nonce starts with '[' is not JSON.
#[test]
fn andotp_encrypted_file_starting_with_a_bracket_is_decrypted() {
    let plain = andotp_json(&sample());
    let mut seed = 0;
    let file = loop {
        let f = andotp_encrypt_old(&plain, "pw", &mut rng(1000 + seed));
        if f[0] == b'[' && std::str::from_utf8(&f).is_err() {
            break f;
        }
        seed += 1;
    };
    assert_accounts(
        &ok(Format::AndOtp, &file, Some("pw")).accounts,
        &sample(),
        ANDOTP,
    );
}

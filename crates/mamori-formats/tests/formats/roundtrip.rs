//! Export → import round trips for every format this crate writes, the Google QR-code round
//! trip through real PNG (and JPEG) decoding, and the paper-backup page.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use crate::common::*;
use mamori_formats::{
    export_aegis, export_aegis_with, export_google_migration, export_html, export_otpauth, import,
    import_google_migration, is_duplicate, Account, AegisKdf, Format, FormatError,
};
use mamori_otp::{OtpKind, OtpParams};
use serde_json::Value;

fn google_carries(a: &Account) -> bool {
    mamori_otp::migration::unrepresentable(&a.uri).is_none()
}

#[test]
fn otpauth_round_trip() {
    let text = export_otpauth(&sample());
    assert_eq!(text.lines().count(), sample().len());
    let r = import(Format::Otpauth, text.as_bytes(), None).unwrap();
    assert_accounts(&r.accounts, &sample(), URI_ONLY);
    assert!(r.unusable.is_empty());
}

#[test]
fn aegis_plain_round_trip_keeps_everything() {
    let file = export_aegis(&sample(), None, &mut rng(20)).unwrap();
    let v: Value = serde_json::from_slice(&file).unwrap();
    assert_eq!(v["version"], 1);
    assert!(v["header"]["slots"].is_null() && v["header"]["params"].is_null());
    assert_eq!(v["db"]["version"], 3);
    let r = import(Format::Aegis, &file, None).unwrap();
    assert_accounts(&r.accounts, &sample(), EVERYTHING);
}

#[test]
fn aegis_encrypted_round_trip_with_aegis_parameters() {
    let password = pw("correct horse");
    let file = export_aegis(&sample(), Some(&password), &mut rng(21)).unwrap();
    let v: Value = serde_json::from_slice(&file).unwrap();
    let slot = &v["header"]["slots"][0];
    assert_eq!(
        (
            slot["type"].as_u64(),
            slot["n"].as_u64(),
            slot["r"].as_u64(),
            slot["p"].as_u64()
        ),
        (Some(1), Some(32768), Some(8), Some(1))
    );
    assert_eq!(slot["salt"].as_str().unwrap().len(), 64, "256-bit salt");
    assert_eq!(
        slot["key"].as_str().unwrap().len(),
        64,
        "wrapped 256-bit master key"
    );
    assert!(v["db"].is_string());
    // No secret in the clear anywhere in the file.
    let text = String::from_utf8(file.to_vec()).unwrap();
    for a in sample() {
        assert!(!text.contains(b32(&a).as_str()));
    }
    let r = import(Format::Aegis, &file, Some(&password)).unwrap();
    assert_accounts(&r.accounts, &sample(), EVERYTHING);
    assert_eq!(
        import(Format::Aegis, &file, Some(&pw("wrong"))).unwrap_err(),
        FormatError::WrongPassword
    );
}

#[test]
fn aegis_export_is_deterministic_for_a_fixed_rng_and_fresh_otherwise() {
    let kdf = AegisKdf {
        n: 1 << 4,
        r: 1,
        p: 1,
    };
    let password = pw("p");
    let a = export_aegis_with(&sample(), Some(&password), kdf, &mut rng(22)).unwrap();
    let b = export_aegis_with(&sample(), Some(&password), kdf, &mut rng(22)).unwrap();
    let c = export_aegis_with(&sample(), Some(&password), kdf, &mut rng(23)).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c, "salt, nonces and keys come from the RNG");
    let r = import(Format::Aegis, &c, Some(&password)).unwrap();
    assert_accounts(&r.accounts, &sample(), EVERYTHING);
}

#[test]
fn google_migration_text_round_trip_and_what_it_cannot_carry() {
    let export = export_google_migration(&sample(), 4242, 4).unwrap();
    let carried: Vec<Account> = sample().into_iter().filter(google_carries).collect();
    let skipped: Vec<&str> = export.skipped.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(skipped, ["Grüße GmbH (bob)", "carol", "Steam (gamer)"]);
    assert!(export.skipped[2].reason.contains("Steam"));
    let text: String = export
        .uris
        .iter()
        .map(|u| format!("{}\n", u.as_str()))
        .collect();
    let r = import(Format::GoogleMigration, text.as_bytes(), None).unwrap();
    assert_accounts(&r.accounts, &carried, URI_ONLY);
    assert!(r.notes.is_empty(), "{:?}", r.notes);
}

fn many(n: usize) -> Vec<Account> {
    (0..n)
        .map(|i| {
            let params = if i % 5 == 4 {
                OtpParams::hotp(i as u64)
            } else {
                OtpParams::totp()
            };
            account(
                Some(&format!("Service {i}")),
                &format!("user{i}@example.com"),
                &[i as u8 + 1; 20],
                params,
                None,
                &[],
                false,
            )
        })
        .collect()
}

#[test]
fn google_migration_qr_round_trip_through_png_images() {
    // Enough accounts for several batches, each one QR code.
    let accounts = many(23);
    let export = export_google_migration(&accounts, -77, 4).unwrap();
    assert!(export.images.len() >= 3, "{} batches", export.images.len());
    assert_eq!(export.images.len(), export.uris.len());
    let inputs: Vec<&[u8]> = export.images.iter().map(|i| i.as_slice()).collect();
    let r = import_google_migration(&inputs).unwrap();
    assert_accounts(&r.accounts, &accounts, URI_ONLY);
    assert!(r.notes.is_empty(), "{:?}", r.notes);

    // One image left out: its accounts are missing and the report says which batch.
    let partial: Vec<&[u8]> = inputs
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, b)| *b)
        .collect();
    let r = import_google_migration(&partial).unwrap();
    assert!(r.accounts.len() < accounts.len());
    assert_eq!(
        r.notes,
        [format!("batch 2 of {} of export -77 is missing: scan it too, or those accounts are not imported", inputs.len())]
    );
}

#[test]
fn google_migration_several_codes_in_one_image_and_jpeg() {
    use image::{GenericImage, ImageFormat, Rgb, RgbImage};
    let accounts = many(14);
    let export = export_google_migration(&accounts, 9, 4).unwrap();
    assert_eq!(export.images.len(), 2);
    // Paste both codes side by side into one screenshot-like image.
    let a = image::load_from_memory(&export.images[0])
        .unwrap()
        .to_rgb8();
    let b = image::load_from_memory(&export.images[1])
        .unwrap()
        .to_rgb8();
    let mut canvas = RgbImage::from_pixel(
        a.width() + b.width() + 40,
        a.height().max(b.height()) + 20,
        Rgb([255, 255, 255]),
    );
    canvas.copy_from(&a, 10, 10).unwrap();
    canvas.copy_from(&b, a.width() + 30, 10).unwrap();
    let mut png = std::io::Cursor::new(Vec::new());
    canvas.write_to(&mut png, ImageFormat::Png).unwrap();
    let r = import(Format::GoogleMigration, png.get_ref(), None).unwrap();
    let mut got = r.accounts.clone();
    got.sort_by_key(|a| a.uri.issuer.clone());
    let mut want = accounts.clone();
    want.sort_by_key(|a| a.uri.issuer.clone());
    assert_accounts(&got, &want, URI_ONLY);

    // The same codes as two JPEG files.
    let jpegs: Vec<Vec<u8>> = [a, b]
        .iter()
        .map(|img| {
            let mut out = std::io::Cursor::new(Vec::new());
            img.write_to(&mut out, ImageFormat::Jpeg).unwrap();
            out.into_inner()
        })
        .collect();
    let r = import_google_migration(&[&jpegs[0], &jpegs[1]]).unwrap();
    assert_accounts(&r.accounts, &accounts, URI_ONLY);
}

#[test]
fn google_migration_with_nothing_representable_exports_nothing() {
    let steam: Vec<Account> = sample()
        .into_iter()
        .filter(|a| a.uri.params.kind == OtpKind::Steam)
        .collect();
    let export = export_google_migration(&steam, 1, 4).unwrap();
    assert!(export.uris.is_empty() && export.images.is_empty());
    assert_eq!(export.skipped.len(), 1);
}

#[test]
fn html_paper_backup_lists_every_account_without_external_resources() {
    let mut accounts = sample();
    accounts.push(account(
        Some("<script>alert(1)</script>"),
        "x&y",
        b"0123456789",
        OtpParams::totp(),
        Some("a \"quoted\" note"),
        &[],
        false,
    ));
    let page = export_html(&accounts, "mamori backup, 2026-11-28");
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("<title>mamori backup, 2026-11-28</title>"));
    assert_eq!(
        page.matches("<section class=\"account\">").count(),
        accounts.len()
    );
    assert_eq!(page.matches("<svg").count(), accounts.len());
    for a in &sample() {
        let b = b32(a);
        let grouped: Vec<String> = b
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        assert!(
            page.contains(&grouped.join(" ")),
            "secret of {}",
            a.display_name()
        );
    }
    assert!(page.contains("Grüße GmbH (bob)"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!page.contains("<script"), "no script may appear");
    assert!(page.contains("x&amp;y") && page.contains("a &quot;quoted&quot; note"));
    for forbidden in ["src=", "href=", "<link", "url(", "@import"] {
        assert!(
            !page.contains(forbidden),
            "external resource marker {forbidden}"
        );
    }
    assert!(page.contains("default-src 'none'"));
    assert!(page.contains("@media print"));
    assert!(page.contains("Steam Guard") && page.contains("HOTP, SHA1, 6 digits, next counter 42"));
}

#[test]
fn duplicates_are_same_secret_issuer_and_account() {
    let s = sample();
    assert!(is_duplicate(&s[0], &s[0].clone()));
    let mut other_params = s[0].clone();
    other_params.uri.params = OtpParams {
        digits: 8,
        ..OtpParams::totp()
    };
    other_params.note = None;
    assert!(
        is_duplicate(&s[0], &other_params),
        "parameters and notes do not matter"
    );
    let mut renamed = s[0].clone();
    renamed.uri.account = "someone else".into();
    assert!(!is_duplicate(&s[0], &renamed));
    let mut reissued = s[0].clone();
    reissued.uri.issuer = None;
    assert!(!is_duplicate(&s[0], &reissued));
    let mut rekeyed = s[0].clone();
    rekeyed.uri.secret = mamori_otp::Secret::from_bytes(b"another secret......".to_vec()).unwrap();
    assert!(!is_duplicate(&s[0], &rekeyed));
    // Every format yields accounts that are duplicates of the originals.
    let r = import(Format::Otpauth, export_otpauth(&s).as_bytes(), None).unwrap();
    assert!(r.accounts.iter().zip(&s).all(|(a, b)| is_duplicate(a, b)));
}

#[test]
fn split_duplicates_against_the_vault_and_within_the_import() {
    use mamori_formats::split_duplicates;
    let s = sample();
    let existing = vec![s[0].clone(), s[3].clone()];
    let mut incoming = s.clone();
    incoming.push(s[1].clone()); // the same account twice in one import
    let (new, dups) = split_duplicates(incoming, &existing);
    let names = |v: &[Account]| v.iter().map(|a| a.display_name()).collect::<Vec<_>>();
    assert_eq!(
        names(&new),
        names(&[s[1].clone(), s[2].clone(), s[4].clone(), s[5].clone()])
    );
    assert_eq!(
        names(&dups),
        names(&[s[0].clone(), s[3].clone(), s[1].clone()])
    );
}

#[test]
fn html_qr_codes_encode_each_accounts_uri() {
    let accounts = sample();
    let page = export_html(&accounts, "backup");
    for a in &accounts {
        let svg = mamori_otp::qr::to_svg(&a.uri.to_uri()).unwrap();
        let element = &svg[svg.find("<svg").unwrap()..];
        assert!(page.contains(element), "QR code of {}", a.display_name());
    }
    // And the page's order is the accounts' order.
    let positions: Vec<usize> = accounts
        .iter()
        .map(|a| page.find(&format!("Account: {}<", a.uri.account)).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
}

#[test]
fn plaintext_exports_are_flagged() {
    use mamori_formats::ExportFormat;
    for f in ExportFormat::ALL {
        assert!(f.is_plaintext(false), "{f}");
    }
    assert!(!ExportFormat::Aegis.is_plaintext(true));
    assert!(ExportFormat::Html.is_plaintext(true));
}

#[test]
fn otpauth_export_reads_back_as_ente_plain_text() {
    let r = import(Format::Ente, export_otpauth(&sample()).as_bytes(), None).unwrap();
    assert_accounts(&r.accounts, &sample(), URI_ONLY);
}

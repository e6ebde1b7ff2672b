//! `mamori import` / `mamori export` through the real binary: every lossless round trip lands
//! the same accounts in a fresh vault; plaintext exports need --plaintext and are 0600; a wrong
//! password or a damaged file imports nothing.

use std::os::unix::fs::PermissionsExt;

use crate::support::Sandbox;

const ACCOUNTS: [&str; 4] = [
    "otpauth://totp/GitHub:octo@example.com?secret=JBSWY3DPEHPK3PXP&issuer=GitHub",
    "otpauth://totp/Bank:me?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Bank&algorithm=SHA256&digits=8",
    "otpauth://hotp/VPN:ops?secret=MFRGGZDFMZTWQ2LK&issuer=VPN&counter=7",
    "otpauth://totp/Steam:gamer?secret=KRSXG5CTMVRXEZLUKN2XAZLSKNSWG4TFOQ&issuer=Steam&encoder=steam",
];

fn filled() -> Sandbox {
    let s = Sandbox::new();
    s.init();
    for uri in ACCOUNTS {
        s.run(&["add", "--uri", uri]).ok();
    }
    s.run(&[
        "edit",
        "GitHub",
        "--note",
        "work laptop",
        "--tag",
        "dev",
        "--favorite",
    ])
    .ok();
    s
}

/// The accounts of a vault as comparable JSON: everything but ids and times.
fn accounts(s: &Sandbox) -> Vec<serde_json::Value> {
    let out = s.run(&["list", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let mut list: Vec<serde_json::Value> = v["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            let mut e = e.clone();
            for k in ["id", "created", "updated"] {
                e.as_object_mut().expect("object").remove(k);
            }
            e
        })
        .collect();
    list.sort_by_key(|e| e["issuer"].as_str().unwrap_or("").to_string());
    list
}

/// Codes must match too (the secrets themselves are not in `list`): (issuer, account, code) at a
/// fixed time, sorted, ids left out.
fn codes(s: &Sandbox) -> Vec<(String, String, String)> {
    let out = s.run(&["code", "--json", "--at", "1700000000"]).ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let mut list: Vec<(String, String, String)> = v["codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| {
            let f = |k: &str| c[k].as_str().unwrap_or("").to_string();
            (f("issuer"), f("account"), f("code"))
        })
        .collect();
    list.sort();
    list
}

fn strip(mut v: Vec<serde_json::Value>, fields: &[&str]) -> Vec<serde_json::Value> {
    for e in &mut v {
        for f in fields {
            e.as_object_mut().expect("object").remove(*f);
        }
    }
    v
}

#[test]
fn plaintext_exports_need_the_flag_and_are_private() {
    let s = filled();
    let out = s.path("all.txt");
    let o = s
        .run(&[
            "export",
            "--format",
            "otpauth",
            out.to_str().expect("utf-8"),
        ])
        .fails();
    assert!(o.stderr.contains("--plaintext"), "{}", o.stderr);
    assert!(!out.exists());
    let o = s
        .run(&[
            "export",
            "--format",
            "otpauth",
            "--plaintext",
            out.to_str().expect("utf-8"),
        ])
        .ok();
    assert!(o.stderr.contains("plaintext"), "warns: {}", o.stderr);
    assert_eq!(
        std::fs::metadata(&out).expect("meta").permissions().mode() & 0o777,
        0o600
    );
    // Never overwrites.
    let o = s
        .run(&[
            "export",
            "--format",
            "otpauth",
            "--plaintext",
            out.to_str().expect("utf-8"),
        ])
        .fails();
    assert!(o.stderr.contains("already exists"), "{}", o.stderr);
}

#[test]
fn otpauth_round_trip() {
    let a = filled();
    let file = a.path("all.txt");
    a.run(&[
        "export",
        "--format",
        "otpauth",
        "--plaintext",
        file.to_str().expect("utf-8"),
    ])
    .ok();
    let b = Sandbox::new();
    b.init();
    let o = b
        .run(&[
            "import",
            "--format",
            "otpauth",
            file.to_str().expect("utf-8"),
        ])
        .ok();
    assert_eq!(
        o.stdout.lines().last(),
        Some("imported 4, skipped 0 duplicates, 0 unsupported")
    );
    // otpauth URIs carry no notes, tags or favorites (docs/formats.md).
    let lossy = ["note", "tags", "favorite"];
    assert_eq!(strip(accounts(&b), &lossy), strip(accounts(&a), &lossy));
    assert_eq!(codes(&b), codes(&a));
    // Importing again skips every account as a duplicate and changes nothing.
    let o = b
        .run(&[
            "import",
            "--format",
            "otpauth",
            file.to_str().expect("utf-8"),
        ])
        .ok();
    assert_eq!(
        o.stdout.lines().last(),
        Some("imported 0, skipped 4 duplicates, 0 unsupported")
    );
    assert_eq!(accounts(&b).len(), 4);
}

#[test]
fn encrypted_aegis_and_mamori_backups_round_trip_everything() {
    let a = filled();
    let pw = a.path("export-password");
    std::fs::write(&pw, "another secret phrase\n").expect("write");
    for format in ["aegis", "mamori"] {
        let file = a.path(&format!("backup.{format}"));
        let o = a
            .run(&[
                "export",
                "--format",
                format,
                "--output-password-file",
                pw.to_str().expect("utf-8"),
                file.to_str().expect("utf-8"),
            ])
            .ok();
        assert!(
            !o.stderr.contains("plaintext"),
            "{format} is encrypted: {}",
            o.stderr
        );
        let bytes = std::fs::read(&file).expect("read");
        assert!(
            !String::from_utf8_lossy(&bytes).contains("JBSWY3DPEHPK3PXP"),
            "{format} export leaks a secret"
        );

        let b = Sandbox::new();
        b.init();
        // Wrong password: nothing imported, the vault untouched.
        let wrong = b.path("wrong");
        std::fs::write(&wrong, "not it\n").expect("write");
        let before = std::fs::read(&b.vault).expect("vault");
        let o = b
            .run(&[
                "import",
                "--format",
                format,
                "--input-password-file",
                wrong.to_str().expect("utf-8"),
                file.to_str().expect("utf-8"),
            ])
            .fails();
        assert!(
            o.stderr.to_lowercase().contains("password"),
            "{format}: {}",
            o.stderr
        );
        assert_eq!(
            std::fs::read(&b.vault).expect("vault"),
            before,
            "{format}: vault changed"
        );
        // Without a password and no terminal: says how to give one.
        let o = b
            .run(&["import", "--format", format, file.to_str().expect("utf-8")])
            .fails();
        assert!(
            o.stderr.contains("--input-password-file"),
            "{format}: {}",
            o.stderr
        );

        let o = b
            .run(&[
                "import",
                "--format",
                format,
                "--input-password-file",
                pw.to_str().expect("utf-8"),
                file.to_str().expect("utf-8"),
            ])
            .ok();
        assert_eq!(
            o.stdout.lines().last(),
            Some("imported 4, skipped 0 duplicates, 0 unsupported"),
            "{format}"
        );
        assert_eq!(accounts(&b), accounts(&a), "{format}");
        assert_eq!(codes(&b), codes(&a), "{format}");
    }
}

#[test]
fn google_migration_qr_round_trip() {
    let a = filled();
    let prefix = a.path("phone");
    let o = a
        .run(&[
            "export",
            "--format",
            "google-migration",
            "--plaintext",
            prefix.to_str().expect("utf-8"),
        ])
        .ok();
    // Steam cannot be carried by Google Authenticator exports: reported, the rest exported.
    assert!(o.stderr.contains("Steam"), "{}", o.stderr);
    let png = a.path("phone-1.png");
    assert!(png.exists());
    let b = Sandbox::new();
    b.init();
    let o = b
        .run(&[
            "import",
            "--format",
            "google-migration",
            png.to_str().expect("utf-8"),
        ])
        .ok();
    assert_eq!(
        o.stdout.lines().last(),
        Some("imported 3, skipped 0 duplicates, 0 unsupported")
    );
    let lossy = ["note", "tags", "favorite"];
    let want: Vec<_> = strip(accounts(&a), &lossy)
        .into_iter()
        .filter(|e| e["issuer"] != "Steam")
        .collect();
    assert_eq!(strip(accounts(&b), &lossy), want);
}

// Regression (security review #14, item 13): the summary counted every account of the vault,
// also those a Google Authenticator export refuses. The count printed must be the number of
// accounts in the QR codes, read back from the images.
#[test]
fn google_migration_export_counts_the_accounts_in_its_codes() {
    let s = Sandbox::new();
    s.init();
    // 17 accounts the format carries (enough for two codes of at most 10) and 4 it refuses.
    let secret = |i: usize| {
        let letter = |n: usize| char::from(b'A' + u8::try_from(n % 26).expect("letter"));
        format!("JBSWY3DPEHPK3P{}{}", letter(i / 26), letter(i))
    };
    let mut carried = Vec::new();
    let mut lines = Vec::new();
    for i in 0..17 {
        let (kind, extra) = match i % 4 {
            0 => ("totp", "&algorithm=SHA256&digits=8"),
            1 => ("hotp", "&counter=5"),
            2 => ("totp", "&algorithm=SHA512"),
            _ => ("totp", ""),
        };
        lines.push(format!(
            "otpauth://{kind}/Svc{i:02}:user{i}@example.com?secret={}&issuer=Svc{i:02}{extra}",
            secret(i)
        ));
        carried.push(format!("Svc{i:02} (user{i}@example.com)"));
    }
    let refused = [
        ("Steam (gamer)", "otpauth://totp/Steam:gamer?secret=KRSXG5CTMVRXEZLUKN2XAZLSKNSWG4TFOQ&issuer=Steam&encoder=steam"),
        ("Slow (sixty)", "otpauth://totp/Slow:sixty?secret=GEZDGNBVGY3TQOJQ&issuer=Slow&period=60"),
        ("Odd (seven)", "otpauth://totp/Odd:seven?secret=GEZDGNBVGY3TQOJR&issuer=Odd&digits=7"),
        ("Long (ten)", "otpauth://totp/Long:ten?secret=GEZDGNBVGY3TQOJS&issuer=Long&digits=10"),
    ];
    lines.extend(refused.iter().map(|(_, uri)| uri.to_string()));
    let list = s.path("accounts.txt");
    std::fs::write(&list, lines.join("\n")).expect("write");
    let o = s
        .run(&[
            "import",
            "--format",
            "otpauth",
            list.to_str().expect("utf-8"),
        ])
        .ok();
    assert_eq!(
        o.stdout.lines().last(),
        Some("imported 21, skipped 0 duplicates, 0 unsupported")
    );

    let prefix = s.path("phone");
    let o = s
        .run(&[
            "export",
            "--format",
            "google-migration",
            "--plaintext",
            prefix.to_str().expect("utf-8"),
        ])
        .ok();

    // Read every image back: QR codes, then migration payloads.
    let mut in_codes = Vec::new();
    let mut batches = Vec::new();
    for n in 1.. {
        let png = s.path(&format!("phone-{n}.png"));
        if !png.exists() {
            break;
        }
        let texts = mamori_otp::qr::decode(&std::fs::read(&png).expect("read")).expect("a QR code");
        assert_eq!(texts.len(), 1, "one code per image");
        let batch = mamori_otp::migration::decode_uri(&texts[0]).expect("a migration payload");
        assert!(batch.skipped.is_empty(), "{:?}", batch.skipped);
        in_codes.extend(batch.accounts.iter().map(|a| a.display_name()));
        batches.push((batch.batch_index, batch.batch_size));
    }
    let total = i32::try_from(batches.len()).expect("count");
    assert_eq!(batches, (0..total).map(|i| (i, total)).collect::<Vec<_>>());
    assert!(total >= 2, "17 accounts need more than one code");

    // The printed number is the number of accounts in the codes, and the refused are named.
    let summary = o.stdout.lines().last().expect("summary");
    let printed: usize = summary
        .strip_prefix("exported ")
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {summary:?}"));
    assert_eq!(printed, in_codes.len(), "{summary}");
    in_codes.sort();
    assert_eq!(in_codes, carried);
    assert!(
        summary.ends_with("; left out 4 that google-migration cannot carry (each named on stderr)"),
        "{summary}"
    );
    let cannot: Vec<&str> = o
        .stderr
        .lines()
        .filter(|l| l.starts_with("mamori: cannot export "))
        .collect();
    assert_eq!(cannot.len(), refused.len(), "{}", o.stderr);
    for (name, _) in refused {
        assert!(
            cannot
                .iter()
                .any(|l| l.starts_with(&format!("mamori: cannot export {name}: "))),
            "{name} not named: {}",
            o.stderr
        );
    }
}

#[test]
fn dry_run_changes_nothing_and_bad_entries_are_reported() {
    let s = Sandbox::new();
    s.init();
    let file = s.path("list.txt");
    std::fs::write(
        &file,
        format!(
            "# my accounts\n{}\n\notpauth://totp/Broken?secret=11111111&issuer=Broken\n{}\n",
            ACCOUNTS[0], ACCOUNTS[1]
        ),
    )
    .expect("write");
    let before = std::fs::read(&s.vault).expect("vault");
    let o = s
        .run(&[
            "import",
            "--format",
            "otpauth",
            "--dry-run",
            file.to_str().expect("utf-8"),
        ])
        .ok();
    assert!(
        o.stdout.contains("would add GitHub (octo@example.com)"),
        "{}",
        o.stdout
    );
    assert_eq!(
        o.stdout.lines().last(),
        Some("would import 2, skip 0 duplicates, 1 unsupported")
    );
    assert!(
        o.stderr.contains("line 4"),
        "names the bad line: {}",
        o.stderr
    );
    assert_eq!(std::fs::read(&s.vault).expect("vault"), before);
    let o = s
        .run(&[
            "import",
            "--format",
            "otpauth",
            file.to_str().expect("utf-8"),
        ])
        .ok();
    assert_eq!(
        o.stdout.lines().last(),
        Some("imported 2, skipped 0 duplicates, 1 unsupported")
    );
}

#[test]
fn damaged_files_and_unknown_formats() {
    let s = filled();
    let file = s.path("backup.aegis");
    let pw = s.path("pw");
    std::fs::write(&pw, "phrase phrase\n").expect("write");
    s.run(&[
        "export",
        "--format",
        "aegis",
        "--output-password-file",
        pw.to_str().expect("utf-8"),
        file.to_str().expect("utf-8"),
    ])
    .ok();
    let bytes = std::fs::read(&file).expect("read");
    std::fs::write(&file, &bytes[..bytes.len() / 2]).expect("truncate");
    let before = std::fs::read(&s.vault).expect("vault");
    s.run(&[
        "import",
        "--format",
        "aegis",
        "--input-password-file",
        pw.to_str().expect("utf-8"),
        file.to_str().expect("utf-8"),
    ])
    .fails();
    assert_eq!(std::fs::read(&s.vault).expect("vault"), before);
    let o = s
        .run(&[
            "import",
            "--format",
            "lastpass",
            file.to_str().expect("utf-8"),
        ])
        .fails();
    assert!(
        o.stderr.contains("otpauth, google-migration"),
        "lists the formats: {}",
        o.stderr
    );
}

#[test]
fn html_paper_backup() {
    let s = filled();
    let file = s.path("paper.html");
    s.run(&[
        "export",
        "--format",
        "html",
        "--plaintext",
        file.to_str().expect("utf-8"),
    ])
    .ok();
    let html = std::fs::read_to_string(&file).expect("read");
    // The secret is printed in groups of four for typing from paper.
    assert!(
        html.contains("GitHub") && html.contains("JBSW Y3DP EHPK 3PXP") && html.contains("<svg"),
        "{html}"
    );
    assert!(!html.contains("<script"), "no script in the paper backup");
}

const REPORT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../mamori-review/tests/data");

#[test]
fn credential_report_review() {
    let s = Sandbox::new();
    let at = "1795824000"; // 2026-11-28T00:00:00Z
    let o = s.run_bare(&[
        "review",
        "credential-report",
        "--at",
        at,
        &format!("{REPORT_DIR}/mixed.csv"),
    ]);
    assert_eq!(o.code, 1, "a high-severity failure exits 1: {}", o.stderr);
    assert!(
        o.stdout
            .contains("FAIL  [high] The root user has MFA  (CR-ROOT-MFA)"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout
            .contains("- bob (password, last used 2026-08-01, 119 days ago)"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.lines().last().is_some_and(
            |l| l.starts_with("6 users reviewed: 1 passed, 8 failed, 1 cannot be decided")
        ),
        "{}",
        o.stdout
    );
    assert_eq!(o.stderr.trim(), "mamori: a high-severity check failed");

    let o = s.run_bare(&[
        "review",
        "credential-report",
        "--json",
        "--at",
        at,
        &format!("{REPORT_DIR}/clean.csv"),
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("json");
    assert_eq!(v["findings"][1]["id"], "CR-ROOT-MFA");
    assert_eq!(v["findings"][1]["outcome"], "pass");
    assert_eq!(v["findings"][2]["outcome"], "undecidable");

    let bad = s.path("bad.csv");
    std::fs::write(&bad, "user,arn,when\n").expect("write");
    let o = s
        .run_bare(&["review", "credential-report", bad.to_str().expect("utf-8")])
        .fails();
    assert!(o.stderr.contains("line 1, column 3"), "{}", o.stderr);
}

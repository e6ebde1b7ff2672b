//! The vault commands through the real binary: the whole story (init, add three ways, list,
//! code, rename, remove), exact output for scripts, errors, the agent, and concurrent writers.

use crate::support::{read, scrub, Sandbox};

const GH_URI: &str =
    "otpauth://totp/GitHub:alice@example.com?secret=JBSWY3DPEHPK3PXP&issuer=GitHub";
/// RFC 6238 appendix B SHA-1 secret, 8 digits.
const RFC_URI: &str =
    "otpauth://totp/RFC%206238:sha1?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=RFC%206238&digits=8";

fn otp_at(s: &Sandbox, uri: &str, at: &str) -> String {
    s.run(&["otp", "--at", at, uri]).ok().stdout
}

#[test]
fn the_whole_story() {
    let s = Sandbox::new();
    s.init();
    assert_eq!(
        s.run(&["add", "--uri", GH_URI]).ok().stdout,
        "Added GitHub (alice@example.com)\n"
    );

    // A QR image, as a web site shows it.
    let png = mamori_otp::qr::to_png(RFC_URI, 4).expect("png");
    let img = s.path("qr.png");
    std::fs::write(&img, png).expect("write");
    assert_eq!(
        s.run(&["add", "--qr", img.to_str().expect("utf-8")])
            .ok()
            .stdout,
        "Added RFC 6238 (sha1)\n"
    );

    // The setup key typed by hand.
    assert_eq!(
        s.run(&[
            "add",
            "--issuer",
            "Example",
            "--account",
            "bob",
            "--secret",
            "mfrg gzdf mztw q2lk",
            "--digits",
            "7",
            "--period",
            "60",
            "--algorithm",
            "sha256"
        ])
        .ok()
        .stdout,
        "Added Example (bob)\n"
    );

    assert_eq!(
        s.run(&["list"]).ok().stdout,
        "ISSUER    ACCOUNT            TYPE\n\
         Example   bob                totp\n\
         GitHub    alice@example.com  totp\n\
         RFC 6238  sha1               totp\n"
    );

    // Codes at fixed times agree with the stateless `mamori otp` on the same URI.
    for at in ["59", "1111111109", "2000000000"] {
        assert_eq!(
            s.run(&["code", "github", "--at", at]).ok().stdout,
            otp_at(&s, GH_URI, at)
        );
        assert_eq!(
            s.run(&["code", "RFC", "--at", at]).ok().stdout,
            otp_at(&s, RFC_URI, at)
        );
    }
    // RFC 6238 appendix B.
    assert_eq!(
        s.run(&["code", "rfc", "--at", "59"]).ok().stdout,
        "94287082\n"
    );
    let manual =
        "otpauth://totp/Example:bob?secret=MFRGGZDFMZTWQ2LK&algorithm=SHA256&digits=7&period=60";
    assert_eq!(
        s.run(&["code", "bob", "--at", "1234567"]).ok().stdout,
        otp_at(&s, manual, "1234567")
    );

    // All time-based codes at once.
    let all = s.run(&["code", "--at", "59"]).ok().stdout;
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines.len(), 3, "{all}");
    assert!(
        lines[2].starts_with("RFC 6238 (sha1)")
            && lines[2].contains("94287082")
            && lines[2].ends_with(" 1s"),
        "{all}"
    );

    s.run(&["rename", "github", "GitHub:alice@work.example"])
        .ok();
    s.run(&["rename", "example", "Example Corp"]).ok();
    assert_eq!(
        s.run(&["code", "work", "--at", "59"]).ok().stdout,
        otp_at(&s, GH_URI, "59")
    );

    assert_eq!(
        s.run(&["remove", "corp", "--yes"]).ok().stdout,
        "Removed Example Corp (bob)\n"
    );
    let want = format!(
        "{:<8}  {:<18}  TYPE\n{:<8}  {:<18}  totp\n{:<8}  {:<18}  totp\n",
        "ISSUER", "ACCOUNT", "GitHub", "alice@work.example", "RFC 6238", "sha1"
    );
    assert_eq!(s.run(&["list"]).ok().stdout, want);
}

#[test]
fn list_json_is_stable() {
    let s = Sandbox::new();
    s.init();
    s.run(&[
        "add",
        "--uri",
        GH_URI,
        "--tag",
        "work",
        "--note",
        "main",
        "--favorite",
    ])
    .ok();
    s.run(&[
        "add",
        "--type",
        "hotp",
        "--counter",
        "5",
        "--account",
        "token",
        "--secret",
        "GEZDGNBVGY3TQOJQ",
    ])
    .ok();
    let out = s.run(&["list", "--json"]).ok().stdout;
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let times: Vec<u64> = v["entries"]
        .as_array()
        .expect("array")
        .iter()
        .flat_map(|e| {
            [
                e["created"].as_u64().expect("t"),
                e["updated"].as_u64().expect("t"),
            ]
        })
        .collect();
    assert_eq!(
        scrub(&out, &times),
        r#"{
  "version": 1,
  "entries": [
    {
      "id": "ID",
      "issuer": "GitHub",
      "account": "alice@example.com",
      "type": "totp",
      "algorithm": "SHA1",
      "digits": 6,
      "period": 30,
      "counter": null,
      "note": "main",
      "tags": [
        "work"
      ],
      "favorite": true,
      "created": TIME,
      "updated": TIME
    },
    {
      "id": "ID",
      "issuer": "",
      "account": "token",
      "type": "hotp",
      "algorithm": "SHA1",
      "digits": 6,
      "period": null,
      "counter": 5,
      "note": "",
      "tags": [],
      "favorite": false,
      "created": TIME,
      "updated": TIME
    }
  ]
}
"#
    );
    assert!(
        !out.contains("JBSWY3DPEHPK3PXP"),
        "list never shows secrets"
    );
}

#[test]
fn code_json_is_stable_and_hotp_is_saved_first() {
    let s = Sandbox::new();
    s.init();
    s.run(&["add", "--uri", RFC_URI]).ok();
    s.run(&[
        "add",
        "--type",
        "hotp",
        "--issuer",
        "RFC 4226",
        "--account",
        "hotp",
        "--secret",
        "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
    ])
    .ok();
    let out = s.run(&["code", "6238", "--json", "--at", "59"]).ok().stdout;
    assert_eq!(
        scrub(&out, &[]),
        r#"{
  "version": 1,
  "codes": [
    {
      "id": "ID",
      "issuer": "RFC 6238",
      "account": "sha1",
      "type": "totp",
      "code": "94287082",
      "period": 30,
      "valid_from": 30,
      "valid_until": 60,
      "seconds_left": 1,
      "counter": null
    }
  ]
}
"#
    );
    // RFC 4226 appendix D: each call shows the next code and the vault keeps the counter.
    let out = s.run(&["code", "4226", "--json"]).ok().stdout;
    assert!(
        out.contains("\"code\": \"755224\"") && out.contains("\"counter\": 0"),
        "{out}"
    );
    for want in ["287082", "359152", "969429"] {
        assert_eq!(s.run(&["code", "4226"]).ok().stdout, format!("{want}\n"));
    }
    assert!(s.run(&["list"]).ok().stdout.contains("hotp #4"));
    // Without a query, HOTP accounts are left alone (showing them would spend a code).
    let all = s.run(&["code", "--at", "59"]).ok().stdout;
    assert_eq!(all.lines().count(), 1, "{all}");
    let err = s.run(&["code", "4226", "--at", "5"]).fails().stderr;
    assert!(err.contains("HOTP"), "{err}");
}

#[test]
fn queries_that_miss_or_are_ambiguous() {
    let s = Sandbox::new();
    s.init();
    s.run(&["add", "--uri", GH_URI]).ok();
    s.run(&[
        "add",
        "--issuer",
        "GitLab",
        "--account",
        "alice",
        "--secret",
        "MFRGGZDF",
    ])
    .ok();
    let e = s.run(&["code", "gihtub"]).fails().stderr;
    assert_eq!(e, "mamori: no account matches \"gihtub\"; did you mean GitHub (alice@example.com), GitLab (alice)?\n");
    let e = s.run(&["code", "git"]).fails().stderr;
    assert_eq!(
        e,
        "mamori: \"git\" matches 2 accounts: GitHub (alice@example.com), GitLab (alice); be more precise\n"
    );
    let e = s.run(&["remove", "zzzzzzzz", "--yes"]).fails().stderr;
    assert!(e.contains("mamori list"), "{e}");
    // Removing without --yes and without a terminal refuses.
    let e = s.run(&["remove", "gitlab"]).fails().stderr;
    assert!(e.contains("--yes"), "{e}");
    assert_eq!(s.run(&["list"]).ok().stdout.lines().count(), 3);
}

#[test]
fn errors_are_one_line_and_leave_the_file_alone() {
    let s = Sandbox::new();
    let e = s.run(&["list"]).fails().stderr;
    assert!(e.contains("mamori init"), "{e}");
    s.init();
    s.run(&["add", "--uri", GH_URI]).ok();
    let before = read(&s.vault);
    let e = s.run(&["init"]).fails().stderr;
    assert!(e.contains("already exists"), "{e}");

    let wrong = s.path("wrong");
    std::fs::write(&wrong, "nope\n").expect("write");
    let mut c = s.bare(&["add", "--issuer", "X", "--secret", "MFRGGZDF"]);
    c.env("MAMORI_PASSWORD_FILE", &wrong);
    let out: crate::support::Out = crate::support::output_within(&mut c).into();
    assert!(out.fails().stderr.contains("wrong password"));
    assert_eq!(read(&s.vault), before, "a wrong password changes nothing");

    let e = s.run_bare(&["list"]).fails().stderr;
    assert!(e.contains("--password-file"), "{e}");
    let e = s.run(&["add", "--uri", GH_URI]).fails().stderr;
    assert!(e.contains("already in the vault"), "{e}");
    let e = s
        .run(&["add", "--issuer", "X", "--secret", "not base32!"])
        .fails()
        .stderr;
    assert!(e.contains("invalid --secret"), "{e}");
    let e = s
        .run(&[
            "add", "--issuer", "X", "--secret", "MFRGGZDF", "--digits", "12",
        ])
        .fails()
        .stderr;
    assert!(e.contains("digits"), "{e}");
    assert_eq!(read(&s.vault), before, "refused adds change nothing");

    // Damage: one flipped byte, then a truncated file.
    let mut bad = before.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    std::fs::write(&s.vault, &bad).expect("write");
    let e = s.run(&["list"]).fails().stderr;
    assert!(e.contains("tampered") && e.contains(".bak"), "{e}");
    std::fs::write(&s.vault, &before[..100]).expect("write");
    let e = s.run(&["list"]).fails().stderr;
    assert!(e.contains("truncated"), "{e}");
}

#[test]
fn show_qr_round_trips_into_a_phone() {
    let s = Sandbox::new();
    s.init();
    s.run(&["add", "--uri", GH_URI]).ok();
    let png = s.path("out.png");
    s.run(&["show-qr", "github", "--png", png.to_str().expect("utf-8")])
        .ok();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&png).expect("meta").permissions().mode() & 0o777,
        0o600
    );
    let texts = mamori_otp::qr::decode(&read(&png)).expect("decode");
    assert_eq!(texts.len(), 1);
    let uri = mamori_otp::KeyUri::parse(&texts[0]).expect("uri");
    assert_eq!(uri.secret.to_base32().as_str(), "JBSWY3DPEHPK3PXP");
    assert_eq!(
        (uri.issuer.as_deref(), uri.account.as_str()),
        (Some("GitHub"), "alice@example.com")
    );
    let term = s.run(&["show-qr", "github"]).ok();
    assert!(
        term.stdout.contains('▀') || term.stdout.contains('▄'),
        "{}",
        term.stdout
    );
    assert!(term.stderr.contains("contains the secret"));
}

#[test]
fn edit_passwd_completions_copy() {
    let s = Sandbox::new();
    s.init();
    s.run(&["add", "--uri", GH_URI]).ok();
    s.run(&[
        "edit",
        "github",
        "--note",
        "hi",
        "--tag",
        "a",
        "--tag",
        "b",
        "--favorite",
    ])
    .ok();
    let json = s.run(&["list", "--json"]).ok().stdout;
    assert!(
        json.contains("\"note\": \"hi\"") && json.contains("\"favorite\": true"),
        "{json}"
    );
    assert!(s
        .run(&["edit", "github"])
        .fails()
        .stderr
        .contains("nothing to change"));

    let newpw = s.path("new");
    std::fs::write(&newpw, "battery staple\n").expect("write");
    s.run(&[
        "passwd",
        "--new-password-file",
        newpw.to_str().expect("utf-8"),
    ])
    .ok();
    assert!(s.run(&["list"]).fails().stderr.contains("wrong password"));
    let mut c = s.bare(&["code", "github", "--at", "59"]);
    c.env("MAMORI_PASSWORD_FILE", &newpw);
    let out: crate::support::Out = crate::support::output_within(&mut c).into();
    assert_eq!(out.ok().stdout, otp_at(&s, GH_URI, "59"));

    let comp = s.run(&["completions", "bash"]).ok().stdout;
    assert!(
        comp.contains("mamori") && comp.contains("show-qr"),
        "completion script"
    );

    // No display: --copy says so on stderr and still prints the code.
    let mut c = s.bare(&["code", "github", "--at", "59", "--copy"]);
    c.env("MAMORI_PASSWORD_FILE", &newpw);
    let out: crate::support::Out = crate::support::output_within(&mut c).into();
    let out = out.ok();
    assert_eq!(out.stdout, otp_at(&s, GH_URI, "59"));
    assert!(out.stderr.contains("no display"), "{}", out.stderr);
}

#[test]
fn default_init_writes_the_secure_kdf_parameters() {
    let s = Sandbox::new();
    let mut c = s.cmd(&["init"]);
    c.env_remove("MAMORI_TEST_KDF");
    let out: crate::support::Out = crate::support::output_within(&mut c).into();
    out.ok();
    let bytes = read(&s.vault);
    assert_eq!(&bytes[..8], b"MAMORIVF");
    assert_eq!(&bytes[11..15], &65536u32.to_le_bytes(), "m = 64 MiB");
    assert_eq!(&bytes[15..19], &3u32.to_le_bytes(), "t = 3");
    assert_eq!(&bytes[19..23], &1u32.to_le_bytes(), "p = 1");
}

#[test]
fn with_the_unlock_agent() {
    let s = Sandbox::new();
    s.init();
    s.run(&["add", "--uri", GH_URI]).ok();
    assert!(s.run_bare(&["list"]).fails().stderr.contains("no password"));
    let out = s.run(&["unlock", "--timeout", "120s"]).ok();
    assert!(out.stderr.contains("Unlocked"), "{}", out.stderr);
    // Now no password is needed, for reading and for writing.
    assert_eq!(
        s.run_bare(&["code", "github", "--at", "59"]).ok().stdout,
        otp_at(&s, GH_URI, "59")
    );
    s.run_bare(&["add", "--uri", RFC_URI]).ok();
    s.run_bare(&["rename", "rfc", "RFC:sha1"]).ok();
    assert_eq!(
        s.run_bare(&["code", "RFC:sha1", "--at", "59"]).ok().stdout,
        "94287082\n"
    );
    s.run_bare(&["remove", "rfc", "--yes"]).ok();
    assert_eq!(s.run_bare(&["list"]).ok().stdout.lines().count(), 2);
    // passwd still asks for the current password.
    assert!(s
        .run_bare(&["passwd"])
        .fails()
        .stderr
        .contains("no password"));
    // The socket directory is private.
    use std::os::unix::fs::PermissionsExt;
    let dir = s.runtime.join("mamori");
    assert_eq!(
        std::fs::metadata(&dir).expect("meta").permissions().mode() & 0o777,
        0o700
    );
    s.run_bare(&["lock"]).ok();
    assert!(!dir.join("agent.sock").exists());
    assert!(s.run_bare(&["list"]).fails().stderr.contains("no password"));
}

#[test]
fn concurrent_adds_lose_nothing() {
    let s = Sandbox::new();
    s.init();
    const PER: usize = 8;
    std::thread::scope(|scope| {
        for w in 0..2 {
            let s = &s;
            scope.spawn(move || {
                for i in 0..PER {
                    let secret = data_encoding_base32(&[w as u8, i as u8, 7, 7, 7]);
                    s.run(&[
                        "add",
                        "--issuer",
                        &format!("w{w}"),
                        "--account",
                        &format!("n{i}"),
                        "--secret",
                        &secret,
                    ])
                    .ok();
                }
            });
        }
    });
    let out = s.run(&["list", "--json"]).ok().stdout;
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let mut names: Vec<String> = v["entries"]
        .as_array()
        .expect("array")
        .iter()
        .map(|e| {
            format!(
                "{}/{}",
                e["issuer"].as_str().expect("s"),
                e["account"].as_str().expect("s")
            )
        })
        .collect();
    names.sort();
    let mut want: Vec<String> = (0..2)
        .flat_map(|w| (0..PER).map(move |i| format!("w{w}/n{i}")))
        .collect();
    want.sort();
    assert_eq!(names, want);
}

/// Base32 of a few bytes (independent of the code under test).
fn data_encoding_base32(bytes: &[u8]) -> String {
    const A: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut out, mut buf, mut bits) = (String::new(), 0u32, 0u32);
    for &b in bytes {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            out.push(A[((buf >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(A[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

#[test]
fn secrets_and_uris_can_come_from_stdin() {
    use std::io::Write;
    let s = Sandbox::new();
    s.init();
    for (args, input) in [
        (vec!["add", "--uri", "-"], GH_URI),
        (
            vec!["add", "--issuer", "Piped", "--secret", "-"],
            "gezd gnbv gy3t qojq gezd gnbv gy3t qojq",
        ),
    ] {
        let mut c = s.cmd(&args);
        c.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{input}\n").as_bytes())
            .expect("write");
        let out: crate::support::Out = child.wait_with_output().expect("wait").into();
        out.ok();
    }
    assert_eq!(
        s.run(&["code", "piped", "--at", "59"]).ok().stdout,
        "287082\n"
    );
    assert_eq!(
        s.run(&["code", "github", "--at", "59"]).ok().stdout,
        otp_at(&s, GH_URI, "59")
    );
}

#[test]
fn passwd_raises_weak_kdf_parameters_to_the_default() {
    let s = Sandbox::new();
    s.init();
    s.run(&["add", "--uri", GH_URI]).ok();
    assert_eq!(
        &read(&s.vault)[11..15],
        &64u32.to_le_bytes(),
        "test parameters"
    );
    let newpw = s.path("new");
    std::fs::write(&newpw, "another password\n").expect("write");
    let mut c = s.cmd(&[
        "passwd",
        "--new-password-file",
        newpw.to_str().expect("utf-8"),
    ]);
    c.env_remove("MAMORI_TEST_KDF");
    let out: crate::support::Out = crate::support::output_within(&mut c).into();
    out.ok();
    let bytes = read(&s.vault);
    assert_eq!(&bytes[11..15], &65536u32.to_le_bytes());
    assert_eq!(&bytes[15..19], &3u32.to_le_bytes());
    let mut c = s.bare(&["code", "github", "--at", "59"]);
    c.env("MAMORI_PASSWORD_FILE", &newpw);
    let out: crate::support::Out = crate::support::output_within(&mut c).into();
    assert_eq!(out.ok().stdout, otp_at(&s, GH_URI, "59"));
}

/// #21 faults: the disk holding the vault is full. A change is refused with one line saying
/// why, the vault file is byte for byte the old one and opens with the old accounts, no
/// temporary file is left behind, and the same change succeeds once space is freed.
#[test]
fn a_full_disk_leaves_the_vault_as_it_was() {
    let disk = mamori_testkit::disk::SmallDisk::mount(4 * 1024 * 1024);
    let mut s = Sandbox::new();
    s.vault = disk.path().join("vault.mamori");
    s.init();
    s.run(&["add", "--uri", GH_URI]).ok();
    let before = read(&s.vault);
    let files = |dir: &std::path::Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
            .filter(|n| n != "filler")
            .collect();
        names.sort();
        names
    };
    let files_before = files(disk.path());
    let filler = disk.fill();

    let out = s.run(&["add", "--uri", RFC_URI]).fails();
    assert!(
        out.stderr.to_lowercase().contains("space"),
        "the message says the disk is full: {}",
        out.stderr
    );
    assert_eq!(read(&s.vault), before, "the vault file changed");
    let list = s.run(&["list"]).ok().stdout;
    assert!(
        list.contains("GitHub") && !list.contains("Example"),
        "{list}"
    );
    // The vault, its backup and its lock file, as before: no temporary file left behind.
    assert_eq!(files(disk.path()), files_before, "files left behind");

    std::fs::remove_file(&filler).expect("free the space");
    s.run(&["add", "--uri", RFC_URI]).ok();
    assert_ne!(read(&s.vault), before);
}

/// #21 faults: `mamori add` and `mamori passwd` killed (SIGKILL) at 200 points of their run.
/// After every kill the vault opens, with exactly one of the two passwords, and holds either
/// the accounts before the command or those after it: never neither, never a mix.
#[test]
fn a_killed_change_leaves_the_old_vault_or_the_new() {
    let s = Sandbox::new();
    s.init();
    s.run(&["add", "--uri", GH_URI]).ok();
    let passwords = [s.password_file.clone(), s.path("other-password")];
    std::fs::write(&passwords[1], "battery staple\n").expect("write");
    let mut current = 0usize;
    let list_with = |pw: &std::path::Path| -> Option<String> {
        let mut c = s.bare(&["list"]);
        c.env("MAMORI_PASSWORD_FILE", pw);
        let out: crate::support::Out = crate::support::output_within(&mut c).into();
        (out.code == 0).then_some(out.stdout)
    };
    let mut accounts = list_with(&passwords[0]).expect("the vault opens");
    let (mut completed, mut interrupted) = (0, 0);
    for i in 0..200u64 {
        let passwd = i % 3 == 2;
        let mut cmd = if passwd {
            let mut c = s.bare(&[
                "passwd",
                "--new-password-file",
                passwords[1 - current].to_str().expect("utf-8"),
            ]);
            c.env("MAMORI_PASSWORD_FILE", &passwords[current]);
            c
        } else {
            let uri = format!("otpauth://totp/Kill{i}:k?secret=JBSWY3DPEHPK3PXP&issuer=Kill{i}");
            let mut c = s.bare(&["add", "--uri", &uri]);
            c.env("MAMORI_PASSWORD_FILE", &passwords[current]);
            c
        };
        let mut child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn mamori");
        // Spread the kills over the command's run (a few milliseconds with the test KDF).
        std::thread::sleep(std::time::Duration::from_micros((i * 7919) % 12_000));
        let _ = child.kill();
        let status = child.wait().expect("wait");
        if status.success() {
            completed += 1;
        } else {
            interrupted += 1;
        }

        let old = list_with(&passwords[current]);
        let new = list_with(&passwords[1 - current]);
        match (passwd, old, new) {
            (true, Some(l), None) => assert_eq!(l, accounts, "round {i}: passwd changed the list"),
            (true, None, Some(l)) => {
                assert_eq!(l, accounts, "round {i}: passwd changed the list");
                current = 1 - current;
            }
            (false, Some(l), None) => {
                let added = l != accounts;
                if added {
                    assert!(
                        l.contains(&format!("Kill{i}"))
                            && l.lines().count() == accounts.lines().count() + 1,
                        "round {i}: not the old list plus one account:\n{accounts}\n--\n{l}"
                    );
                    accounts = l;
                }
            }
            (_, old, new) => panic!(
                "round {i} ({}): the vault opens with the old password: {}, with the new: {}",
                if passwd { "passwd" } else { "add" },
                old.is_some(),
                new.is_some()
            ),
        }
    }
    let mut left: Vec<String> = std::fs::read_dir(s.dir.path())
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
        .collect();
    left.sort();
    eprintln!(
        "{completed} commands completed, {interrupted} killed; the vault was whole every time; \
         files: {left:?}"
    );
    assert!(
        interrupted > 0,
        "no command was interrupted: the kills came too late"
    );
}

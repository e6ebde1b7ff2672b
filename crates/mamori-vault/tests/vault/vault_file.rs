//! The vault file: round trips, every open error, atomic writes, backups, locks, limits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::os::unix::fs::PermissionsExt;

use crate::common::*;
use mamori_otp::{Generator, OtpParams, Secret};
use mamori_vault::{format, EntryEdit, KdfParams, NewEntry, VaultError, VaultFile};

fn add(vf: &VaultFile, password: &str, e: NewEntry) {
    vf.update(&pw(password), &mut rng(), |v| {
        v.add(e, &mut rng(), 1_700_000_000).map(|_| ())
    })
    .unwrap();
}

#[test]
fn create_add_reopen_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let vf = new_vault(dir.path(), "pw");
    let mut e = entry("GitHub", "alice", "JBSWY3DPEHPK3PXP");
    e.note = "main account".into();
    e.tags = vec!["work".into()];
    e.favorite = true;
    add(&vf, "pw", e);
    add(&vf, "pw", entry("", "bob@example.com", "GEZDGNBVGY3TQOJQ"));
    let opened = vf.open(&pw("pw")).unwrap();
    let v = &opened.vault;
    assert_eq!(v.len(), 2);
    let gh = &v.entries()[0];
    assert_eq!(gh.issuer, "GitHub");
    assert_eq!(gh.account, "alice");
    assert_eq!(gh.secret().to_base32().as_str(), "JBSWY3DPEHPK3PXP");
    assert_eq!(gh.note, "main account");
    assert_eq!(gh.tags, vec!["work".to_string()]);
    assert!(gh.favorite);
    assert_eq!(gh.created, 1_700_000_000);
    assert_eq!(gh.revision, 1);
    assert_eq!(v.entries()[1].display_name(), "bob@example.com");
    assert_eq!(v.revision(), 2);
    // Reopening with the data key alone gives the same vault.
    let again = vf
        .open(&mamori_vault::Unlock::Key(opened.key.clone()))
        .unwrap();
    assert_eq!(again.vault, opened.vault);
}

#[test]
fn files_are_private_and_a_backup_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let vf = new_vault(dir.path(), "pw");
    let mode = std::fs::metadata(vf.path()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let before = std::fs::read(vf.path()).unwrap();
    add(&vf, "pw", entry("A", "a", "JBSWY3DPEHPK3PXP"));
    let bak = std::fs::read(vf.backup_path()).unwrap();
    assert_eq!(bak, before, "FILE.bak holds the previous version");
    assert_eq!(
        std::fs::metadata(vf.backup_path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    // The backup opens and has the old content.
    let old = VaultFile::new(vf.backup_path()).open(&pw("pw")).unwrap();
    assert!(old.vault.is_empty());
    // No temporary files are left behind.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp")), "{names:?}");
}

#[test]
fn create_refuses_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let vf = new_vault(dir.path(), "pw");
    let before = std::fs::read(vf.path()).unwrap();
    let err = vf.create(b"other", FAST, &mut rng()).unwrap_err();
    assert!(matches!(err, VaultError::AlreadyExists(_)), "{err}");
    assert_eq!(std::fs::read(vf.path()).unwrap(), before);
}

#[test]
fn wrong_password_is_its_own_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let vf = new_vault(dir.path(), "right");
    add(&vf, "right", entry("A", "a", "JBSWY3DPEHPK3PXP"));
    let before = std::fs::read(vf.path()).unwrap();
    let bak_before = std::fs::read(vf.backup_path()).unwrap();
    let err = vf.open(&pw("wrong")).unwrap_err();
    assert!(matches!(err, VaultError::WrongPassword(_)), "{err}");
    let err = vf
        .update(&pw("wrong"), &mut rng(), |v| {
            v.add(entry("B", "b", "GEZDGNBV"), &mut rng(), 1)
                .map(|_| ())
        })
        .unwrap_err();
    assert!(matches!(err, VaultError::WrongPassword(_)), "{err}");
    assert_eq!(std::fs::read(vf.path()).unwrap(), before);
    assert_eq!(std::fs::read(vf.backup_path()).unwrap(), bak_before);
    assert!(
        !err.to_string().contains("wrong\""),
        "no password in messages"
    );
}

#[test]
fn every_flipped_byte_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let vf = new_vault(dir.path(), "pw");
    add(&vf, "pw", entry("A", "a", "JBSWY3DPEHPK3PXP"));
    let good = std::fs::read(vf.path()).unwrap();
    let flipped = dir.path().join("flipped.mamori");
    let fvf = VaultFile::new(&flipped);
    for i in 0..good.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = good.clone();
            bad[i] ^= bit;
            std::fs::write(&flipped, &bad).unwrap();
            let err = fvf.open(&pw("pw")).unwrap_err();
            match i {
                0..=7 => assert!(matches!(err, VaultError::NotAVault(_)), "byte {i}: {err}"),
                8..=9 => assert!(
                    matches!(err, VaultError::UnsupportedVersion { .. }),
                    "byte {i}: {err}"
                ),
                _ => assert!(matches!(err, VaultError::Tampered(_)), "byte {i}: {err}"),
            }
        }
    }
}

#[test]
fn truncated_and_extended_files() {
    let dir = tempfile::tempdir().unwrap();
    let vf = new_vault(dir.path(), "pw");
    add(&vf, "pw", entry("A", "a", "JBSWY3DPEHPK3PXP"));
    let good = std::fs::read(vf.path()).unwrap();
    let other = dir.path().join("cut.mamori");
    let ovf = VaultFile::new(&other);
    for len in [
        0usize,
        3,
        8,
        9,
        10,
        100,
        format::HEADER_LEN - 1,
        format::HEADER_LEN,
        good.len() - 1,
    ] {
        std::fs::write(&other, &good[..len]).unwrap();
        let err = ovf.open(&pw("pw")).unwrap_err();
        assert!(matches!(err, VaultError::Truncated(_)), "len {len}: {err}");
    }
    let mut longer = good.clone();
    longer.push(0);
    std::fs::write(&other, &longer).unwrap();
    assert!(matches!(
        ovf.open(&pw("pw")).unwrap_err(),
        VaultError::Tampered(_)
    ));
    std::fs::write(&other, b"hello world, not a vault").unwrap();
    assert!(matches!(
        ovf.open(&pw("pw")).unwrap_err(),
        VaultError::NotAVault(_)
    ));
    assert!(matches!(
        VaultFile::new(dir.path().join("none"))
            .open(&pw("pw"))
            .unwrap_err(),
        VaultError::NotFound(_)
    ));
}

#[test]
fn unknown_version_is_reported_before_anything_else() {
    let dir = tempfile::tempdir().unwrap();
    let vf = new_vault(dir.path(), "pw");
    let mut bytes = std::fs::read(vf.path()).unwrap();
    bytes[8..10].copy_from_slice(&2u16.to_le_bytes());
    bytes.truncate(20);
    std::fs::write(vf.path(), &bytes).unwrap();
    let err = vf.open(&pw("pw")).unwrap_err();
    assert!(
        matches!(
            err,
            VaultError::UnsupportedVersion {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade mamori"));
}

#[test]
fn default_kdf_parameters_are_written_to_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let vf = VaultFile::new(dir.path().join("v"));
    vf.create(b"pw", KdfParams::default(), &mut rng()).unwrap();
    let bytes = std::fs::read(vf.path()).unwrap();
    assert_eq!(&bytes[11..15], &(64u32 * 1024).to_le_bytes(), "m = 64 MiB");
    assert_eq!(&bytes[15..19], &3u32.to_le_bytes(), "t = 3");
    assert_eq!(&bytes[19..23], &1u32.to_le_bytes(), "p = 1");
    assert_eq!(vf.header().unwrap().kdf, KdfParams::default());
}

#[test]
fn kdf_limits_are_enforced() {
    for bad in [
        KdfParams {
            memory_kib: 7,
            iterations: 1,
            parallelism: 1,
        },
        KdfParams {
            memory_kib: 64,
            iterations: 0,
            parallelism: 1,
        },
        KdfParams {
            memory_kib: 64,
            iterations: 65,
            parallelism: 1,
        },
        KdfParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 0,
        },
        KdfParams {
            memory_kib: KdfParams::MAX_MEMORY_KIB + 1,
            iterations: 1,
            parallelism: 1,
        },
    ] {
        assert!(
            matches!(bad.validated(), Err(VaultError::KdfParams(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn password_change_keeps_key_and_entries() {
    let dir = tempfile::tempdir().unwrap();
    let vf = new_vault(dir.path(), "old");
    add(&vf, "old", entry("A", "a", "JBSWY3DPEHPK3PXP"));
    let before = vf.open(&pw("old")).unwrap();
    let raised = KdfParams {
        memory_kib: 128,
        iterations: 2,
        parallelism: 1,
    };
    vf.change_password(&pw("old"), b"new", Some(raised), &mut rng())
        .unwrap();
    assert!(matches!(
        vf.open(&pw("old")).unwrap_err(),
        VaultError::WrongPassword(_)
    ));
    let after = vf.open(&pw("new")).unwrap();
    assert_eq!(after.key, before.key, "the data key is only rewrapped");
    assert_eq!(after.header.vault_id, before.header.vault_id);
    assert_ne!(after.header.salt, before.header.salt);
    assert_eq!(after.header.kdf, raised);
    assert_eq!(after.vault.entries(), before.vault.entries());
}

#[test]
fn failed_change_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let vf = new_vault(dir.path(), "pw");
    add(&vf, "pw", entry("A", "a", "JBSWY3DPEHPK3PXP"));
    let before = std::fs::read(vf.path()).unwrap();
    let err = vf
        .update(&pw("pw"), &mut rng(), |v| {
            v.add(entry("a", "A", "jbswy3dpehpk3pxp"), &mut rng(), 5)
                .map(|_| ())
        })
        .unwrap_err();
    assert!(matches!(err, VaultError::Duplicate(_)), "{err}");
    assert_eq!(std::fs::read(vf.path()).unwrap(), before);
}

#[test]
fn hotp_counter_advances_and_is_saved() {
    let dir = tempfile::tempdir().unwrap();
    let vf = new_vault(dir.path(), "pw");
    // RFC 4226 appendix D secret "12345678901234567890".
    let secret = Secret::from_bytes(b"12345678901234567890".to_vec()).unwrap();
    let e = NewEntry::new("RFC", "4226", secret, OtpParams::hotp(0));
    let id = vf
        .update(&pw("pw"), &mut rng(), |v| Ok(v.add(e, &mut rng(), 1)?.id))
        .unwrap()
        .0;
    let mut codes = Vec::new();
    for _ in 0..3 {
        let (code, _) = vf
            .update(&pw("pw"), &mut rng(), |v| v.next_hotp(id, 2))
            .unwrap();
        codes.push(code.to_string());
    }
    assert_eq!(codes, ["755224", "287082", "359152"]);
    let v = vf.open(&pw("pw")).unwrap().vault;
    let e = v.get(id).unwrap();
    assert_eq!(e.params.counter, 3);
    assert_eq!(e.revision, 4);
    assert!(v.entries()[0].params.kind == mamori_otp::OtpKind::Hotp);
    let g = Generator::new(e.secret(), e.params).unwrap();
    assert_eq!(g.at_counter(3).to_string(), "969429");
}

#[test]
fn query_rules() {
    let mut v = mamori_vault::Vault::new();
    let mut r = rng();
    for (i, a, s) in [
        ("GitHub", "alice", "JBSWY3DPEHPK3PXP"),
        ("GitHub Enterprise", "alice", "GEZDGNBVGY3TQOJQ"),
        ("Google", "alice@gmail.com", "MFRGGZDFMZTWQ2LK"),
        ("", "bob", "ONSWG4TFOQ"),
    ] {
        v.add(entry(i, a, s), &mut r, 1).unwrap();
    }
    assert_eq!(
        v.find("github").unwrap().issuer,
        "GitHub",
        "exact beats substring"
    );
    assert_eq!(v.find("ENTERPRISE").unwrap().issuer, "GitHub Enterprise");
    assert_eq!(v.find("gmail").unwrap().issuer, "Google");
    assert_eq!(v.find("bob").unwrap().account, "bob");
    let id = v.entries()[2].id;
    assert_eq!(v.find(&id.to_string()).unwrap().id, id);
    match v.find("alice").unwrap_err() {
        VaultError::Ambiguous { candidates, .. } => assert_eq!(candidates.len(), 3),
        e => panic!("{e}"),
    }
    match v.find("gihtub").unwrap_err() {
        VaultError::NoMatch { nearest, .. } => {
            assert_eq!(nearest.first().map(String::as_str), Some("GitHub (alice)"))
        }
        e => panic!("{e}"),
    }
    let err = v.find("zzzzzzzzzz").unwrap_err();
    assert!(err.to_string().contains("mamori list"), "{err}");
    assert_eq!(v.filter("").len(), 4);
    assert_eq!(v.filter("GIT").len(), 2);
}

#[test]
fn add_many_deduplicates_and_is_all_or_nothing() {
    let mut v = mamori_vault::Vault::new();
    let mut r = rng();
    v.add(entry("A", "a", "JBSWY3DPEHPK3PXP"), &mut r, 1)
        .unwrap();
    let report = v
        .add_many(
            [
                entry("A", "a", "JBSWY3DPEHPK3PXP"), // already there
                entry("B", "b", "GEZDGNBVGY3TQOJQ"),
                entry("b", "B", "GEZDGNBVGY3TQOJQ"), // repeats the previous input
                entry("A", "a", "GEZDGNBVGY3TQOJQ"), // same names, other secret: kept
            ],
            &mut r,
            2,
        )
        .unwrap();
    assert_eq!(report.added.len(), 2);
    assert_eq!(report.duplicates, ["A (a)", "b (B)"]);
    assert_eq!(v.len(), 3);
    let before = v.clone();
    let err = v
        .add_many(
            [entry("C", "c", "MFRGGZDF"), entry("", "", "MFRGGZDF")],
            &mut r,
            3,
        )
        .unwrap_err();
    assert!(matches!(err, VaultError::InvalidEntry(_)), "{err}");
    assert_eq!(v, before, "a bad batch adds nothing");
}

#[test]
fn edit_and_limits() {
    let mut v = mamori_vault::Vault::new();
    let mut r = rng();
    let id = v
        .add(entry("A", "a", "JBSWY3DPEHPK3PXP"), &mut r, 1)
        .unwrap()
        .id;
    let e = v
        .edit(
            id,
            EntryEdit {
                issuer: Some(" New ".into()),
                note: Some("n".into()),
                tags: Some(vec!["x".into(), "y".into()]),
                favorite: Some(true),
                ..Default::default()
            },
            9,
        )
        .unwrap();
    assert_eq!((e.issuer.as_str(), e.account.as_str()), ("New", "a"));
    assert_eq!((e.updated, e.revision, e.favorite), (9, 2, true));
    let long = "x".repeat(mamori_vault::MAX_FIELD_LEN + 1);
    assert!(v
        .edit(
            id,
            EntryEdit {
                note: Some(long.clone()),
                ..Default::default()
            },
            10
        )
        .is_err());
    assert!(v.add(entry(&long, "a", "MFRGGZDF"), &mut r, 1).is_err());
    let too_many = vec!["t".to_string(); mamori_vault::MAX_TAGS + 1];
    assert!(v
        .edit(
            id,
            EntryEdit {
                tags: Some(too_many),
                ..Default::default()
            },
            10
        )
        .is_err());
    let big = Secret::from_bytes(vec![1; mamori_vault::MAX_SECRET_LEN + 1]).unwrap();
    assert!(v
        .add(NewEntry::new("big", "", big, OtpParams::totp()), &mut r, 1)
        .is_err());
    assert_eq!(v.get(id).unwrap().note, "n", "failed edits change nothing");
}

#[test]
fn debug_output_never_shows_secrets() {
    let mut v = mamori_vault::Vault::new();
    v.add(entry("A", "a", "JBSWY3DPEHPK3PXP"), &mut rng(), 1)
        .unwrap();
    let dbg = format!("{v:?} {:?}", entry("A", "a", "JBSWY3DPEHPK3PXP"));
    assert!(!dbg.contains("JBSWY3DPEHPK3PXP"), "{dbg}");
    assert!(!dbg.contains("Hello"), "{dbg}");
    let key = mamori_vault::DataKey::from_bytes([0x41; 32]);
    assert_eq!(format!("{key:?}"), "DataKey([redacted])");
}

#[test]
fn a_second_writer_waits_then_names_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let vf = new_vault(dir.path(), "pw");
    let held = vf.lock().unwrap();
    let impatient =
        VaultFile::new(vf.path()).with_lock_timeout(std::time::Duration::from_millis(50));
    let err = impatient
        .update(&pw("pw"), &mut rng(), |_| Ok(()))
        .unwrap_err();
    match &err {
        VaultError::Locked { holder, .. } => assert_eq!(*holder, Some(std::process::id())),
        e => panic!("{e}"),
    }
    assert!(err
        .to_string()
        .contains(&format!("pid {}", std::process::id())));
    drop(held);
    impatient.update(&pw("pw"), &mut rng(), |_| Ok(())).unwrap();
}

#[test]
fn a_second_writer_waits_for_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let vf = new_vault(dir.path(), "pw");
    let held = vf.lock().unwrap();
    let waiter = {
        let vf = vf.clone();
        std::thread::spawn(move || {
            vf.update(&pw("pw"), &mut rng(), |v| {
                v.add(entry("Late", "l", "MFRGGZDF"), &mut rng(), 2)
                    .map(|_| ())
            })
        })
    };
    // While the lock is held, the waiter cannot have written.
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(vf.open(&pw("pw")).unwrap().vault.is_empty());
    drop(held);
    waiter.join().unwrap().unwrap();
    assert_eq!(vf.open(&pw("pw")).unwrap().vault.len(), 1);
}

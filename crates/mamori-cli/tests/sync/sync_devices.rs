//! Multi-device sync end to end: real `mamori` processes on separate vaults against a real
//! `mamori-server` on SQLite. Covers propagation (add, rename, delete), convergence of offline
//! edits, HOTP counters, revocation, the lost-device story (passphrase and recovery key), the
//! server database holding no plaintext, and tampering/replay by the server.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashSet;

use crate::sync_common::{now, totp, Device, Server};

const SECRET_A: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const SECRET_HOTP: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const SECRET_C: &str = "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U";

fn add(d: &Device, issuer: &str, account: &str, secret: &str, extra: &[&str]) {
    let mut args = vec![
        "add",
        "--issuer",
        issuer,
        "--account",
        account,
        "--secret",
        secret,
    ];
    args.extend_from_slice(extra);
    d.run(&args).ok();
}

fn sync(d: &Device) -> crate::sync_common::Out {
    d.run(&["sync"]).ok()
}

fn hotp_code(d: &Device) -> String {
    d.run(&["code", "Bank"]).ok().stdout.trim().to_string()
}

#[test]
fn three_devices_stay_in_step_and_the_server_sees_only_ciphertext() {
    let server = Server::start(&[]);
    let mfa = server.root_with_mfa(7);
    let t = now();

    // A has two accounts before sync exists; it sets sync up and gets the recovery key.
    let a = Device::new("laptop-A");
    add(
        &a,
        "GitHub",
        "alice@example.com",
        SECRET_A,
        &["--tag", "work-zq7"],
    );
    add(
        &a,
        "Bank",
        "alice-bank",
        SECRET_HOTP,
        &["--type", "hotp", "--note", "pin-note-x1"],
    );
    let recovery = a.setup(&server, &totp(&mfa[0], t));
    assert_eq!(recovery.len(), 44, "{recovery}");

    // B and C join with the passphrase and receive everything.
    let b = Device::new("desktop-B");
    let c = Device::new("phone-C");
    b.join(
        &server,
        &totp(&mfa[1], t),
        &["--passphrase-file", &b.file("passphrase")],
    )
    .ok();
    c.join(
        &server,
        &totp(&mfa[2], t),
        &["--passphrase-file", &c.file("passphrase")],
    )
    .ok();
    assert_eq!(b.accounts(), a.accounts());
    assert_eq!(c.accounts(), a.accounts());

    // An account added on A (auto-sync pushes it) appears on B and C.
    add(&a, "Cloud", "root-cloud", SECRET_C, &[]);
    sync(&b);
    sync(&c);
    assert!(b.names().contains(&"Cloud:root-cloud".to_string()));
    assert!(c.names().contains(&"Cloud:root-cloud".to_string()));

    // A rename on B and a delete on C propagate to everyone.
    b.run(&["rename", "Cloud", "CloudX:root-cloud"]).ok();
    c.run(&["remove", "GitHub", "--yes"]).ok();
    for d in [&a, &b, &c, &a, &b] {
        sync(d);
    }
    let expected = vec![
        "Bank:alice-bank".to_string(),
        "CloudX:root-cloud".to_string(),
    ];
    assert_eq!(a.names(), expected);
    assert_eq!(b.accounts(), a.accounts());
    assert_eq!(c.accounts(), a.accounts());

    // Concurrent offline edits of one entry: the later one wins everywhere, the other is reported.
    for d in [&a, &b, &c] {
        d.run(&["sync", "auto", "off"]).ok();
    }
    // Stamps have one-second resolution and an edit is stamped at least one second after the
    // version it edits (which may itself be a second ahead): keep the edits two seconds apart.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    a.run(&["edit", "CloudX", "--note", "edited on A"]).ok();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    b.run(&[
        "edit",
        "CloudX",
        "--issuer",
        "CloudB",
        "--note",
        "edited on B",
    ])
    .ok();
    c.run(&["edit", "Bank", "--favorite"]).ok();
    sync(&a);
    let b_out = sync(&b);
    assert!(
        b_out.stderr.contains("changed on two devices"),
        "conflict reported: {}",
        b_out.stderr
    );
    for d in [&c, &a, &b, &c] {
        sync(d);
    }
    assert_eq!(a.accounts(), b.accounts());
    assert_eq!(a.accounts(), c.accounts());
    let cloud = a
        .accounts()
        .into_iter()
        .find(|e| e["account"] == "root-cloud")
        .unwrap();
    assert_eq!(
        cloud["issuer"], "CloudB",
        "B's later edit wins; B reported: {}",
        b_out.stderr
    );
    assert_eq!(cloud["note"], "edited on B");
    assert!(a
        .accounts()
        .iter()
        .any(|e| e["issuer"] == "Bank" && e["favorite"] == true));

    // HOTP: with auto-sync each device takes the others' counters first; offline codes on A
    // are followed by fresh ones elsewhere once A has synced. No code is ever shown twice.
    for d in [&a, &b, &c] {
        d.run(&["sync", "auto", "on"]).ok();
    }
    let mut shown = Vec::new();
    for d in [&a, &b, &c, &b] {
        shown.push(hotp_code(d));
    }
    // A goes offline after its last sync (what it cannot know, no device can).
    sync(&a);
    a.run(&["sync", "auto", "off"]).ok();
    shown.push(hotp_code(&a));
    shown.push(hotp_code(&a));
    sync(&a);
    shown.push(hotp_code(&c));
    shown.push(hotp_code(&b));
    let distinct: HashSet<&String> = shown.iter().collect();
    assert_eq!(distinct.len(), shown.len(), "codes shown: {shown:?}");
    for d in [&a, &b, &c] {
        sync(d);
    }
    let counters: Vec<_> = [&a, &b, &c]
        .iter()
        .map(|d| {
            d.accounts()
                .into_iter()
                .find(|e| e["issuer"] == "Bank")
                .unwrap()["counter"]
                .clone()
        })
        .collect();
    assert_eq!(counters, vec![serde_json::json!(8); 3]);

    // The server database (and its WAL and log) holds no issuer, account name, secret or tag.
    let mut haystack = Vec::new();
    for f in std::fs::read_dir(&server.data_dir).unwrap() {
        let p = f.unwrap().path();
        if p.is_file() {
            haystack.extend(std::fs::read(&p).unwrap());
        }
    }
    assert!(
        server
            .sql("SELECT COUNT(*) FROM sync_items")
            .trim()
            .parse::<i64>()
            .unwrap()
            >= 3
    );
    let mut needles: Vec<Vec<u8>> = [
        "GitHub",
        "alice@example.com",
        "alice-bank",
        "CloudB",
        "root-cloud",
        "work-zq7",
        "pin-note-x1",
        "edited on B",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    for s in [SECRET_A, SECRET_HOTP, SECRET_C] {
        let raw = mamori_otp::Secret::from_base32(s).unwrap();
        needles.push(s.as_bytes().to_vec());
        needles.push(s.to_lowercase().into_bytes());
        needles.push(raw.as_bytes().to_vec());
        let hex: String = raw.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
        needles.push(hex.clone().into_bytes());
        needles.push(hex.to_uppercase().into_bytes());
    }
    for n in &needles {
        assert!(
            !haystack.windows(n.len()).any(|w| w == n.as_slice()),
            "found {:?} in the server's data directory",
            String::from_utf8_lossy(n)
        );
    }

    // Revocation: A revokes C; C can neither pull nor push, and its local change stays.
    a.run(&["sync", "revoke", "phone-C"]).ok();
    let out = c.run(&["sync"]).fails();
    assert!(out.stderr.contains("revoked"), "{}", out.stderr);
    let out = c.run(&[
        "add",
        "--issuer",
        "Offline",
        "--account",
        "c",
        "--secret",
        SECRET_C,
    ]);
    assert_eq!(
        out.code, 0,
        "a local change works without sync: {}",
        out.stderr
    );
    assert!(out.stderr.contains("auto-sync failed"), "{}", out.stderr);
    sync(&b);
    assert!(!b.names().iter().any(|n| n.starts_with("Offline")));
    let devices = b.run(&["sync", "devices"]).ok().stdout;
    assert!(
        devices
            .lines()
            .any(|l| l.contains("phone-C") && l.contains("revoked")),
        "{devices}"
    );

    // Lost device: A is gone. D joins with the passphrase and has every account.
    let before = b.accounts();
    drop(a);
    let d = Device::new("new-D");
    d.join(
        &server,
        &totp(&mfa[3], now()),
        &["--passphrase-file", &d.file("passphrase")],
    )
    .ok();
    assert_eq!(d.accounts(), before);

    // The passphrase is changed (then forgotten): the old one no longer works, the recovery
    // key does.
    std::fs::write(b.sb.path("new-passphrase"), "a completely new passphrase\n").unwrap();
    b.run(&[
        "sync",
        "passphrase",
        "--new-passphrase-file",
        &b.file("new-passphrase"),
    ])
    .ok();
    let e = Device::new("new-E");
    let out = e
        .join(
            &server,
            &totp(&mfa[4], now()),
            &["--passphrase-file", &e.file("passphrase")],
        )
        .fails();
    assert!(
        out.stderr.contains("wrong sync passphrase"),
        "{}",
        out.stderr
    );
    let out = e
        .join(
            &server,
            &totp(&mfa[5], now()),
            &["--recovery-key", &recovery.to_lowercase()],
        )
        .ok();
    assert!(out.stdout.contains("Synced"), "{}", out.stdout);
    assert_eq!(e.accounts(), before);
    // An import is synced like any other change (auto-sync).
    std::fs::write(
        b.sb.path("uris.txt"),
        "otpauth://totp/Imported:bob?secret=MFRGGZDFMZTWQ2LK&issuer=Imported\n",
    )
    .unwrap();
    b.run(&["import", "--format", "otpauth", &b.file("uris.txt")])
        .ok();
    sync(&e);
    assert!(
        e.names().contains(&"Imported:bob".to_string()),
        "{:?}",
        e.names()
    );
    // A typo in the recovery key is caught by its checksum before any network use.
    let mut typo = recovery.clone().into_bytes();
    typo[0] = if typo[0] == b'A' { b'B' } else { b'A' };
    let f = Device::new("new-F");
    let out = f
        .join(
            &server,
            &totp(&mfa[6], now()),
            &["--recovery-key", std::str::from_utf8(&typo).unwrap()],
        )
        .fails();
    assert!(out.stderr.contains("typo"), "{}", out.stderr);
}

#[test]
fn a_modified_or_replayed_item_is_refused_and_nothing_changes_locally() {
    let server = Server::start(&[]);
    let mfa = server.root_with_mfa(2);
    let t = now();
    let a = Device::new("A");
    add(&a, "GitHub", "alice", SECRET_A, &[]);
    a.setup(&server, &totp(&mfa[0], t));
    let b = Device::new("B");
    b.join(
        &server,
        &totp(&mfa[1], t),
        &["--passphrase-file", &b.file("passphrase")],
    )
    .ok();
    let item = server.sql("SELECT id FROM sync_items").trim().to_string();

    // Keep revision 1 of the item; A changes it twice (revisions 2 and 3); B has seen 2.
    let hex_of = |server: &Server| {
        server
            .sql(&format!(
                "SELECT hex(ciphertext) FROM sync_items WHERE id = '{item}'"
            ))
            .trim()
            .to_string()
    };
    let rev1 = hex_of(&server);
    a.run(&["rename", "GitHub", "GitHub2:alice"]).ok();
    sync(&b);
    assert_eq!(b.names(), vec!["GitHub2:alice".to_string()]);
    a.run(&["rename", "GitHub2", "GitHub3:alice"]).ok();
    let rev3 = hex_of(&server);
    let vault_before = std::fs::read(&b.sb.vault).unwrap();
    let serve = |revision: i64, ct: &str| {
        server.sql(&format!(
            "UPDATE sync_accounts SET seq = seq + 1; \
             UPDATE sync_items SET revision = {revision}, ciphertext = x'{ct}', \
             seq = (SELECT seq FROM sync_accounts) WHERE id = '{item}'"
        ));
    };

    // One flipped byte in revision 3: authentication fails, nothing changes locally.
    let mut flipped = rev3.clone();
    let last = flipped.pop().unwrap();
    flipped.push(if last == '0' { '1' } else { '0' });
    serve(3, &flipped);
    let out = b.run(&["sync"]).fails();
    assert!(
        out.stderr.contains("failed authentication"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read(&b.sb.vault).unwrap(), vault_before);

    // The intact revision 3 is accepted (so the refusal above was the flipped byte).
    serve(3, &rev3);
    sync(&b);
    assert_eq!(b.names(), vec!["GitHub3:alice".to_string()]);
    let vault_before = std::fs::read(&b.sb.vault).unwrap();

    // Replay: the server serves revision 1 again as a new change.
    serve(1, &rev1);
    let out = b.run(&["sync"]).fails();
    assert!(out.stderr.contains("replayed"), "{}", out.stderr);
    assert_eq!(std::fs::read(&b.sb.vault).unwrap(), vault_before);

    // The old ciphertext under a new revision number: its associated data no longer matches.
    serve(4, &rev1);
    let out = b.run(&["sync"]).fails();
    assert!(
        out.stderr.contains("failed authentication"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read(&b.sb.vault).unwrap(), vault_before);
    // Reading codes never needs the network.
    assert_eq!(b.run(&["code", "GitHub3"]).ok().stdout.trim().len(), 6);
}

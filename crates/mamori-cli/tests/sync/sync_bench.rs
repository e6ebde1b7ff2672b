//! Sync of 1,000 entries to new devices and of single changes, timed for docs/performance.md
//! ("## Sync"). It runs with every `cargo test` and checks the outcomes (every entry arrives, every
//! change arrives); the timings are printed, never asserted. For the recorded figures, use the
//! release binaries (the harness itself may stay a debug build):
//!
//! ```text
//! cargo build --release -p mamori-cli -p mamori-server
//! MAMORI_SYNC_BENCH_BIN_DIR=$PWD/target/release cargo test -p mamori-cli --test sync sync_bench:: -- --nocapture
//! ```
//!
//! Whole `mamori` processes against a real server on loopback; cheap Argon2id for the vault and
//! the passphrase (`MAMORI_TEST_KDF=fast`, `MAMORI_TEST_SYNC_KDF=fast`), so the figures exclude
//! the key-derivation step, as the brief asks.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use crate::sync_common::{now, totp, Device, Server};
use mamori_otp::{OtpParams, Secret};
use mamori_vault::{KdfParams, NewEntry, Unlock, VaultFile};
use zeroize::Zeroizing;

fn timed(label: &str, f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    let d = t.elapsed();
    println!("{label}: {:.1} ms", d.as_secs_f64() * 1000.0);
    d
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
fn first_sync_of_1000_entries_and_one_incremental_change() {
    const N: usize = 1000;
    let server = Server::start(&[]);
    let mfa = server.root_with_mfa(3);
    let t = now();

    // A: a vault of 1,000 accounts (written through the library, same password as the sandbox).
    let a = Device::new("bench-A");
    std::fs::remove_file(&a.sb.vault).unwrap();
    let vf = VaultFile::new(&a.sb.vault);
    vf.create(
        b"correct horse",
        KdfParams::INSECURE_TEST,
        &mut rand::thread_rng(),
    )
    .unwrap();
    let unlock = Unlock::Password(Zeroizing::new("correct horse".into()));
    vf.update(&unlock, &mut rand::thread_rng(), |v| {
        let items = (0..N).map(|i| {
            let mut e = NewEntry::new(
                format!("Issuer {i}"),
                format!("user{i}@example.com"),
                Secret::generate(),
                OtpParams::totp(),
            );
            e.note = "a note of ordinary length for an account".into();
            e.tags = vec!["work".into()];
            e
        });
        v.add_many(items, &mut rand::thread_rng(), 1_700_000_000)
            .map(|_| ())
    })
    .unwrap();

    timed(
        "setup on A: first upload of 1,000 entries (whole process)",
        || {
            a.setup(&server, &totp(&mfa[0], t));
        },
    );
    a.run(&["sync", "auto", "off"]).ok();

    let b = Device::new("bench-B");
    timed(
        "join on B: sign-in + first sync of 1,000 entries (whole process)",
        || {
            b.join(
                &server,
                &totp(&mfa[1], t),
                &["--passphrase-file", &b.file("passphrase")],
            )
            .ok();
        },
    );
    assert_eq!(b.accounts().len(), N);
    b.run(&["sync", "auto", "off"]).ok();

    // The first sync alone, without the sign-in: C joins, then is reset to "never synced"
    // (entries removed, state forgotten) and runs `mamori sync`, three times.
    let c = Device::new("bench-C");
    c.join(
        &server,
        &totp(&mfa[2], t),
        &["--passphrase-file", &c.file("passphrase")],
    )
    .ok();
    c.run(&["sync", "auto", "off"]).ok();
    let cvf = VaultFile::new(&c.sb.vault);
    let mut firsts = Vec::new();
    for i in 0..3 {
        let (_, opened) = cvf
            .update(&unlock, &mut rand::thread_rng(), |v| {
                let ids: Vec<_> = v.entries().iter().map(|e| e.id).collect();
                for id in ids {
                    v.remove(id)?;
                }
                Ok(())
            })
            .unwrap();
        let mut st = mamori_sync::engine::load_state(&cvf, &opened.key).unwrap();
        st.cursor = 0;
        st.known.clear();
        mamori_sync::engine::save_state(&cvf, &opened.key, &st, &mut rand::thread_rng()).unwrap();
        firsts.push(timed(
            &format!("C: first sync of 1,000 entries, no sign-in (whole process) #{i}"),
            || {
                c.run(&["sync"]).ok();
            },
        ));
        assert_eq!(c.accounts().len(), N);
    }
    println!(
        "median first sync of 1,000 entries: {:.1} ms",
        median(firsts).as_secs_f64() * 1000.0
    );

    if let Ok(out) = std::env::var("MAMORI_BENCH_PERF") {
        // Profile one round with nothing to do (perf record), for finding hot spots.
        let template = b.sb.cmd(&["sync"]);
        let mut cmd = std::process::Command::new("perf");
        cmd.args(["record", "-g", "-o", &out, "--"])
            .arg(template.get_program())
            .args(template.get_args())
            .env_clear();
        for (k, v) in template.get_envs() {
            if let Some(v) = v {
                cmd.env(k, v);
            }
        }
        assert!(cmd.status().unwrap().success());
    }
    let base = median(
        (0..5)
            .map(|i| {
                timed(&format!("B: sync with nothing to do #{i}"), || {
                    b.run(&["sync"]).ok();
                })
            })
            .collect(),
    );
    let mut push = Vec::new();
    let mut pull = Vec::new();
    for i in 0..5 {
        a.run(&["rename", &format!("user{i}@"), &format!("Renamed {i}")])
            .ok();
        push.push(timed(&format!("A: push one change #{i}"), || {
            a.run(&["sync"]).ok();
        }));
        pull.push(timed(&format!("B: pull one change #{i}"), || {
            b.run(&["sync"]).ok();
        }));
        let renamed = format!("Renamed {i}");
        assert!(
            b.accounts().iter().any(|e| e["issuer"] == renamed.as_str()),
            "the rename {i} reached B"
        );
    }
    println!(
        "median: nothing to do {:.1} ms, push one change {:.1} ms, pull one change {:.1} ms",
        base.as_secs_f64() * 1000.0,
        median(push).as_secs_f64() * 1000.0,
        median(pull).as_secs_f64() * 1000.0
    );
}

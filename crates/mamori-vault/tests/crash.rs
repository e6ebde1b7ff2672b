//! Fault test: a writer process is killed (SIGKILL) at random moments, many times; after every
//! kill the vault must open with the old or the new content, never something in between.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "vault/common.rs"]
mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use mamori_vault::VaultFile;
use rand::Rng;

const CHILD_ENV: &str = "MAMORI_CRASH_TEST_VAULT";

/// The writer: appends entries "seq-N" one write at a time until killed. Runs only as the child
/// of `killed_writers_never_corrupt_the_vault` (it is `#[ignore]`d and does nothing without the
/// environment variable).
#[test]
#[ignore]
fn crash_writer_child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let vf = VaultFile::new(path);
    loop {
        vf.update(&pw("pw"), &mut rng(), |v| {
            let n = v.len();
            v.add(
                entry(
                    &format!("seq-{n}"),
                    "crash",
                    &mamori_otp::Secret::generate().to_base32(),
                ),
                &mut rng(),
                n as u64,
            )
            .map(|_| ())
        })
        .unwrap();
    }
}

#[test]
fn killed_writers_never_corrupt_the_vault() {
    let dir = tempfile::tempdir().unwrap();
    let vf = new_vault(dir.path(), "pw");
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::thread_rng();
    let mut last = 0usize;
    let mut grew = 0;
    for round in 0..40 {
        let mut child = Command::new(&exe)
            .args([
                "--ignored",
                "--exact",
                "crash_writer_child",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, vf.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.gen_range(5..80)));
        child.kill().unwrap();
        child.wait().unwrap();
        let opened = vf
            .open(&pw("pw"))
            .unwrap_or_else(|e| panic!("round {round}: the vault does not open: {e}"));
        let names: Vec<String> = opened
            .vault
            .entries()
            .iter()
            .map(|e| e.issuer.clone())
            .collect();
        let want: Vec<String> = (0..names.len()).map(|i| format!("seq-{i}")).collect();
        assert_eq!(names, want, "round {round}: entries are a clean prefix");
        assert!(names.len() >= last, "round {round}: entries were lost");
        if names.len() > last {
            grew += 1;
        }
        last = names.len();
        if vf.backup_path().exists() {
            VaultFile::new(vf.backup_path())
                .open(&pw("pw"))
                .unwrap_or_else(|e| panic!("round {round}: the backup does not open: {e}"));
        }
    }
    // The test only means something if the writer really was interrupted while writing.
    assert!(
        grew >= 10,
        "the writer made progress in only {grew} of 40 rounds"
    );
}

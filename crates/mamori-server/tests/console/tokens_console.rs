//! The console's hardware token step in headless Chromium against the real binary: an
//! administrator imports a CSV of HOTP tokens with the admin command line; root (who must enroll
//! first) picks "Hardware token" in the Assign MFA device wizard, types a wrong serial (the form
//! says so and keeps what was typed), then the right serial and two consecutive codes, and signs
//! in again with the next press; the replayed press is refused. Screenshots land in
//! `target/test-artifacts/console/`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::Command;

use crate::console_common::*;
use mamori_otp::{Algorithm, Generator, OtpKind, OtpParams, Secret};
use rand::RngCore;

fn press(secret: &[u8], counter: u64) -> String {
    let p = OtpParams {
        kind: OtpKind::Hotp,
        algorithm: Algorithm::Sha1,
        digits: 6,
        period: 30,
        counter: 0,
    };
    Generator::new(&Secret::from_bytes(secret.to_vec()).unwrap(), p)
        .unwrap()
        .at_counter(counter)
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_assigns_a_hardware_token_in_the_wizard_and_signs_in_with_it() {
    let srv = Server::start(&[("MAMORI_REQUIRE_MFA", "root")]);
    let mut secret = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let csv = srv.dir.path().join("tokens.csv");
    std::fs::write(
        &csv,
        format!("serial,secret_hex,type,digits,period_or_counter\nGALT0001,{hex},hotp,6,0\n"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mamori-server"))
        .arg("admin")
        .arg("import-tokens")
        .arg(&csv)
        .arg("--data-dir")
        .arg(srv.dir.path())
        .env_remove("MAMORI_CONFIG")
        .env_remove("MAMORI_DATABASE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let link = srv.setup_link();
    with_browser("hardware", &srv, Options::default(), move |b| async move {
        b.set_password_from_link(&link).await;
        b.sign_in_password("root").await;
        assert_eq!(b.path().await, "/");

        // Step 1: the hardware token choice is enabled now.
        b.goto("/security/mfa/new").await;
        let hw = b.el("kind-hardware").await;
        assert!(hw.is_enabled().await.unwrap());
        b.fill("name", "keyfob").await;
        hw.click().await.unwrap();
        b.click("continue").await;
        assert_eq!(b.path().await, "/security/mfa/hardware?name=keyfob");
        assert_eq!(b.value("name").await, "keyfob");
        b.shots("wizard-hardware").await;

        // A serial that is not in the inventory: the form says so and keeps the input.
        b.fill("serial", "GALT9999").await;
        b.fill("code1", &press(&secret, 0)).await;
        b.fill("code2", &press(&secret, 1)).await;
        b.click("assign").await;
        assert!(
            b.text("error").await.contains("No token with this serial"),
            "{}",
            b.text("error").await
        );
        assert_eq!(b.value("serial").await, "GALT9999");

        // The right serial, presses 0 and 1.
        b.fill("serial", "GALT0001").await;
        b.fill("code1", &press(&secret, 0)).await;
        b.fill("code2", &press(&secret, 1)).await;
        b.click("assign").await;
        assert_eq!(b.path().await, "/security?done=mfa_assigned");
        let table = b.text("devices").await;
        assert!(
            table.contains("keyfob") && table.contains("GALT0001"),
            "{table}"
        );

        // Sign in with the next press; the same press again is refused.
        b.sign_out().await;
        b.sign_in_password("root").await;
        assert_eq!(b.path().await, "/sign-in/mfa");
        b.fill("code", &press(&secret, 2)).await;
        b.click("verify").await;
        assert_eq!(b.path().await, "/");
        b.sign_out().await;
        b.sign_in_password("root").await;
        b.fill("code", &press(&secret, 2)).await;
        b.click("verify").await;
        assert_eq!(b.path().await, "/sign-in/mfa");
        assert!(b.exists("error").await);
    })
    .await;
}

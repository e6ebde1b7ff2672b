//! Security keys in the console, in headless Chromium with WebDriver virtual authenticators
//! (W3C WebAuthn Level 2, section 11) against the real binary, for both protocols a key can
//! speak: CTAP2 (resident keys, user verification) and CTAP1/U2F. Root (who must enroll first)
//! picks "Security key" in the Assign MFA device wizard, registers the key, signs out, signs in
//! with the key at the MFA step ("Use security key"), and removes it. Screenshots land in
//! `target/test-artifacts/console/`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod console_common;

use console_common::*;

async fn register_sign_in_remove(protocol: &'static str, shot: &'static str) {
    let srv = Server::start_on_localhost(&[]);
    let link = srv.setup_link();
    with_browser(shot, &srv, Options::default(), move |b| async move {
        b.set_password_from_link(&link).await;
        b.sign_in_password("root").await;
        assert_eq!(b.path().await, "/");
        b.add_virtual_authenticator(protocol).await;

        // Step 1: the security key choice; step 2: the key page keeps the name.
        b.goto("/security/mfa/new").await;
        let key = b.el("kind-key").await;
        assert!(key.is_enabled().await.unwrap());
        b.fill("name", "desk-key").await;
        key.click().await.unwrap();
        b.click("continue").await;
        assert_eq!(b.path().await, "/security/mfa/security-key?name=desk-key");
        assert_eq!(b.value("name").await, "desk-key");
        b.shots("register").await;

        // The browser asks the (virtual) key; the page lands on the device list.
        b.click("register-key").await;
        assert_eq!(b.path().await, "/security?done=mfa_assigned");
        let table = b.text("devices").await;
        assert!(
            table.contains("desk-key") && table.contains("Security key"),
            "{table}"
        );

        // Sign in again with the key at the MFA step.
        b.sign_out().await;
        b.sign_in_password("root").await;
        assert_eq!(b.path().await, "/sign-in/mfa");
        assert!(b.exists("use-key").await);
        b.shots("mfa").await;
        b.click("use-key").await;
        assert_eq!(b.path().await, "/");

        // Remove it: the key just given is the fresh second factor.
        b.goto("/security").await;
        b.click_css("#devices a.danger-link").await;
        assert!(b.path().await.ends_with("/remove"), "{}", b.path().await);
        assert!(
            !b.exists("code").await,
            "no code to type for a key-only account"
        );
        b.click("confirm").await;
        assert_eq!(b.path().await, "/security?done=mfa_removed");
        assert!(b.exists("no-devices").await);

        // Without a key the MFA step is gone: the password alone leads to enrollment.
        b.sign_out().await;
        b.sign_in_password("root").await;
        assert_eq!(b.path().await, "/");
        assert!(!b.exists("use-key").await);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctap2_key_registers_signs_in_and_is_removed() {
    register_sign_in_remove("ctap2", "security-key-ctap2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn u2f_key_registers_signs_in_and_is_removed() {
    register_sign_in_remove("ctap1/u2f", "security-key-u2f").await;
}

//! Security keys in the console, in headless Chromium with WebDriver virtual authenticators
//! (W3C WebAuthn Level 2, section 11) against the real binary, for both protocols a key can
//! speak: CTAP2 (resident keys, user verification) and CTAP1/U2F. Root (who must enroll first)
//! picks "Security key" in the Assign MFA device wizard, registers the key, signs out, signs in
//! with the key at the MFA step ("Use security key"), and removes it (once with a fresh factor,
//! once after confirming with the key because the factor grew stale). Screenshots land in
//! `target/test-artifacts/console/`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::console_common::*;

/// `stale`: before removing, the session's second factor is made 10 minutes old (in the
/// database), so the removal page asks to confirm with the key first.
async fn register_sign_in_remove(protocol: &'static str, shot: &'static str, stale: bool) {
    let srv = Server::start_on_localhost(&[("MAMORI_REQUIRE_MFA", "root")]);
    let link = srv.setup_link();
    let db = format!("sqlite://{}", srv.dir.path().join("mamori.db").display());
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
        assert_eq!(b.path().await, "/security?done=key_added");
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

        // Remove it: the key just given is the fresh second factor; once that is older than 5
        // minutes, the page asks for the key again first.
        if stale {
            let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
            sqlx::query("UPDATE sessions SET second_factor_at = second_factor_at - 600")
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        b.goto("/security").await;
        b.click_css("#devices a.danger-link").await;
        let remove_page = b.path().await;
        assert!(remove_page.ends_with("/remove"), "{remove_page}");
        assert!(
            !b.exists("code").await,
            "no code to type for a key-only account"
        );
        assert_eq!(b.exists("verify-key").await, stale);
        if stale {
            b.shots("confirm").await;
            b.click("verify-key").await;
            assert_eq!(b.path().await, remove_page);
            assert!(!b.exists("verify-key").await);
        }
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
    register_sign_in_remove("ctap2", "security-key-ctap2", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn u2f_key_registers_signs_in_and_is_removed() {
    register_sign_in_remove("ctap1/u2f", "security-key-u2f", false).await;
}

/// An administrator whose only device is a security key deactivates another user's device: with
/// a stale second factor the confirmation page offers the key instead of a code field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_only_administrator_confirms_with_the_key_to_deactivate_a_device() {
    let srv = Server::start_on_localhost(&[("MAMORI_REQUIRE_MFA", "root")]);
    let link = srv.setup_link();
    let db = format!("sqlite://{}", srv.dir.path().join("mamori.db").display());
    let base = srv.url.clone();
    with_browser(
        "security-key-admin",
        &srv,
        Options::default(),
        move |b| async move {
            b.set_password_from_link(&link).await;
            b.sign_in_password("root").await;
            b.add_virtual_authenticator("ctap2").await;
            b.goto("/security/mfa/security-key?name=root-key").await;
            b.click("register-key").await;
            assert_eq!(b.path().await, "/security?done=key_added");

            // alice, with a device added through the API.
            b.goto("/users").await;
            b.fill("name", "alice").await;
            b.click("create-user").await;
            let alice_link = b.text("setup-link").await;
            let token = alice_link.split("token=").nth(1).unwrap().to_string();
            let http = reqwest::Client::new();
            let r = http
                .post(format!("{base}/api/v1/setup"))
                .json(&serde_json::json!({"token": token, "password": PASSWORD}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let v: serde_json::Value = http
                .post(format!("{base}/api/v1/sign-in"))
                .json(&serde_json::json!({"user": "alice", "password": PASSWORD}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let alice = v["token"].as_str().unwrap().to_string();
            let r = http
                .post(format!("{base}/api/v1/mfa-devices/virtual"))
                .bearer_auth(&alice)
                .json(&serde_json::json!({"name": "phone"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);

            // Root's second factor is now 10 minutes old.
            let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
            sqlx::query("UPDATE sessions SET second_factor_at = second_factor_at - 600")
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;

            b.goto("/users/alice").await;
            b.click_css("#devices a.danger-link").await;
            let page = b.path().await;
            assert!(page.ends_with("/deactivate"), "{page}");
            assert!(!b.exists("code").await);
            assert!(b.exists("verify-key").await);
            b.click("verify-key").await;
            assert_eq!(b.path().await, page);
            assert!(!b.exists("verify-key").await);
            b.click("confirm").await;
            assert_eq!(b.path().await, "/users/alice?done=device_deactivated");
        },
    )
    .await;
}

//! The lost-phone story in headless Chromium against the real binary, with alternative factors:
//! hana proves her email address and phone number on the Contact details pages, "loses" her
//! only device, and signs in through Troubleshoot MFA → Sign in using alternative factors: the
//! email code read from the in-test SMTP sink (a guessed one refused first), then the phone code
//! read from the in-test webhook receiver. The recovery session reaches only MFA device
//! management; she removes the old device without a code from it, assigns a new one with two
//! codes, and is then fully signed in. The notices arrive by email, and the audit log (read from
//! the database) has every step. Screenshots land in `target/test-artifacts/console/`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use crate::console_common::*;
use crate::recovery_common::{six_digits, SmtpSink, WebhookReceiver};
use mamori_server::store::AuditFilter;
use serde_json::Value;

const HANA: &str = "hana@example.test";
const PHONE: &str = "+81 80 1234 0000";

/// The latest webhook message for `purpose`, waiting for the `n`-th one (1-based).
async fn phone_code(hook: &WebhookReceiver, purpose: &str, n: usize) -> String {
    for _ in 0..400 {
        let found: Vec<Value> = hook
            .hooks()
            .iter()
            .map(|h| serde_json::from_str::<Value>(&h.body).unwrap())
            .filter(|v| v["purpose"] == purpose && v["to"] == PHONE.replace(' ', ""))
            .collect();
        if let Some(v) = found.get(n - 1) {
            return v["code"].as_str().unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no phone message {n} for {purpose}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_phone_alternative_factors_new_device_old_one_removed() {
    let sink = SmtpSink::start().await;
    let hook = WebhookReceiver::start().await;
    let secret_dir = tempfile::tempdir().unwrap();
    let secret_file = secret_dir.path().join("phone-secret");
    std::fs::write(&secret_file, "a-webhook-secret-of-32-characters").unwrap();
    let mut env = sink.env();
    env.push(("MAMORI_LIMITS_SIGN_IN_BURST".into(), "100".into()));
    env.push(("MAMORI_PHONE_PROVIDER".into(), "webhook".into()));
    // Walks recovery straight through (the waiting period is tested in recovery_wait.rs).
    env.push(("MAMORI_RECOVERY_WAITING_PERIOD_HOURS".into(), "0".into()));
    env.push(("MAMORI_PHONE_URL".into(), hook.url.clone()));
    env.push((
        "MAMORI_PHONE_SECRET_FILE".into(),
        secret_file.display().to_string(),
    ));
    // Password-only accounts sign in fully here (#15 made require_mfa = "all" the default).
    env.push(("MAMORI_REQUIRE_MFA".into(), "root".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let srv = Server::start(&env);
    let link = srv.setup_link();
    let db = format!("sqlite://{}", srv.dir.path().join("mamori.db").display());
    with_browser(
        "recovery-signin",
        &srv,
        Options::default(),
        move |b| async move {
            // Root sets up with a device and creates hana with an email address and a phone.
            b.set_password_from_link(&link).await;
            b.sign_in_password("root").await;
            let root_phone = b.start_enrollment("phone").await;
            b.enter_two_codes_behind(&root_phone).await;
            b.goto("/users").await;
            b.fill("name", "hana").await;
            b.fill("email", HANA).await;
            b.fill("phone", PHONE).await;
            b.click("create-user").await;
            let hana_link = b.text("setup-link").await;
            b.sign_out().await;

            // hana assigns her phone and proves her contact details.
            b.set_password_from_link(&hana_link).await;
            b.sign_in_password("hana").await;
            let old_phone = b.start_enrollment("old-phone").await;
            b.enter_two_codes_behind(&old_phone).await;
            assert_eq!(b.path().await, "/security?done=mfa_assigned");
            b.click("contact-details").await;
            assert_eq!(b.path().await, "/security/contacts");
            assert!(b.text("contact-email").await.contains("Not verified"));
            b.shots("contacts").await;
            b.click("verify-email").await;
            assert_eq!(b.path().await, "/security/contacts/email/confirm");
            b.shots("contact-confirm").await;
            let mail = sink.wait_for(HANA, "Your verification code").await;
            b.fill("code", &six_digits(&mail.body())).await;
            b.click("confirm-code").await;
            assert_eq!(b.path().await, "/security/contacts?done=verified");
            b.click("verify-phone").await;
            let c = phone_code(&hook, "contact_verification", 1).await;
            b.fill("code", &c).await;
            b.click("confirm-code").await;
            assert_eq!(b.path().await, "/security/contacts?done=verified");
            for row in ["contact-email", "contact-phone"] {
                let t = b.text(row).await;
                assert!(t.contains("Verified") && !t.contains("Not verified"), "{t}");
            }
            b.sign_out().await;

            // The phone is lost: password, then Troubleshoot MFA → alternative factors.
            b.sign_in_password("hana").await;
            assert_eq!(b.path().await, "/sign-in/mfa");
            b.click("troubleshoot").await;
            b.click("use-alternative-factors").await;
            assert_eq!(b.path().await, "/sign-in/alternative");
            b.shots("alternative-start").await;
            b.click("send-email-code").await;
            assert_eq!(b.path().await, "/sign-in/alternative/email");
            let mail = sink.wait_for(HANA, "Your sign-in code").await;
            let email_code = six_digits(&mail.body());
            let wrong = if email_code == "000000" {
                "111111"
            } else {
                "000000"
            };
            b.fill("code", wrong).await;
            b.click("alt-submit").await;
            assert!(b.exists("error").await);
            assert_eq!(b.path().await, "/sign-in/alternative/email");
            b.fill("code", &email_code).await;
            b.click("alt-submit").await;
            assert_eq!(b.path().await, "/sign-in/alternative/phone");
            b.shots("alternative-phone").await;
            let c = phone_code(&hook, "recovery_sign_in", 1).await;
            b.fill("code", &c).await;
            b.click("alt-submit").await;
            assert_eq!(b.path().await, "/security/recovery-session");
            assert!(b.exists("recovery-session-notice").await);
            b.shots("recovery-session").await;

            // The recovery session reaches MFA device management only.
            for page in ["/security/recovery-codes", "/security/contacts", "/audit"] {
                b.goto(page).await;
                assert_eq!(b.path().await, page);
                assert!(
                    b.body_text().await.contains("can only manage MFA devices"),
                    "{page}"
                );
            }
            b.goto("/").await;
            assert_eq!(b.path().await, "/security/recovery-session");

            // The old device goes without a code from it.
            b.click_css("#recovery-devices a.danger-link").await;
            assert!(b.path().await.ends_with("/remove"));
            assert!(!b.exists("code").await);
            b.click("confirm").await;
            assert_eq!(b.path().await, "/security/recovery-session");
            assert!(b.exists("no-devices").await);
            sink.wait_for(HANA, "an MFA device was removed").await;

            // A new device with two codes ends the recovery session: fully signed in.
            b.click("assign-mfa").await;
            let new_phone = b.start_enrollment("new-phone").await;
            b.enter_two_codes_behind(&new_phone).await;
            assert_eq!(b.path().await, "/security?done=mfa_assigned");
            b.goto("/security/recovery-codes").await;
            assert!(b.exists("rc-status").await);
            let done = sink
                .wait_for(HANA, "a sign-in with alternative factors was completed")
                .await
                .body();
            assert!(
                done.contains("\"new-phone\"")
                    && done.contains("127.0.0.1")
                    && done.contains("If this was NOT you"),
                "{done}"
            );
            let started = sink
                .wait_for(HANA, "a sign-in with alternative factors was started")
                .await
                .body();
            assert!(!started.contains(&email_code) && !started.contains(&c));
            b.sign_out().await;

            // The audit log has every step.
            let store = mamori_server::store::open(&db).await.unwrap();
            let events = store
                .list_audit(&AuditFilter {
                    account: Some("hana".into()),
                    limit: 1000,
                    ..Default::default()
                })
                .await
                .unwrap();
            let has = |k: &str, r: &str| {
                events
                    .iter()
                    .any(|e| e.event.kind == k && e.event.result == r)
            };
            for (k, r) in [
                ("contact.verify", "success"),
                ("recovery.start", "success"),
                ("recovery.email", "failure"),
                ("recovery.email", "success"),
                ("recovery.phone", "success"),
                ("mfa.delete", "success"),
                ("mfa.enable", "success"),
                ("recovery.complete", "success"),
            ] {
                assert!(has(k, r), "audit lacks {k} {r}");
            }
            store.close().await;
        },
    )
    .await;
}

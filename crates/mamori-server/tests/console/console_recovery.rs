//! The lost-phone story in headless Chromium against the real binary, with a recovery code:
//! alice assigns a device, makes recovery codes (shown once, with a download link), "loses"
//! the phone, signs in through Troubleshoot MFA → Use a recovery code (a guessed and a
//! malformed code refused first), assigns a new device with two codes, removes the old one,
//! and a spent code is refused afterwards. The notification emails arrive at an in-test SMTP
//! sink over a real SMTP conversation, and the audit log (read from the database) has every
//! step. Screenshots land in `target/test-artifacts/console/`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::console_common::*;
use crate::recovery_common::SmtpSink;
use mamori_server::store::AuditFilter;
use thirtyfour::prelude::*;

const ALICE: &str = "alice@example.test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_phone_recovery_code_new_device_old_one_removed() {
    let sink = SmtpSink::start().await;
    let mut env = sink.env();
    env.push(("MAMORI_LIMITS_SIGN_IN_BURST".into(), "100".into()));
    // Password-only accounts sign in fully here (#15 made require_mfa = "all" the default).
    env.push(("MAMORI_REQUIRE_MFA".into(), "root".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let srv = Server::start(&env);
    let link = srv.setup_link();
    let db = format!("sqlite://{}", srv.dir.path().join("mamori.db").display());
    with_browser("recovery", &srv, Options::default(), move |b| async move {
        // Root sets up with a device and creates alice with an email address.
        b.set_password_from_link(&link).await;
        b.sign_in_password("root").await;
        let root_phone = b.start_enrollment("phone").await;
        b.enter_two_codes_behind(&root_phone).await;
        b.goto("/users").await;
        b.fill("name", "alice").await;
        b.fill("email", ALICE).await;
        b.click("create-user").await;
        let alice_link = b.text("setup-link").await;
        b.sign_out().await;

        // alice assigns her phone and makes recovery codes.
        b.set_password_from_link(&alice_link).await;
        b.sign_in_password("alice").await;
        assert_eq!(b.path().await, "/");
        let old_phone = b.start_enrollment("old-phone").await;
        b.enter_two_codes_behind(&old_phone).await;
        assert_eq!(b.path().await, "/security?done=mfa_assigned");
        sink.wait_for(ALICE, "an MFA device was added").await;
        b.click("recovery-codes").await;
        assert_eq!(b.path().await, "/security/recovery-codes");
        assert!(b.text("rc-status").await.contains("no recovery codes"));
        // The session's second factor is fresh (the enrollment): no code is asked for.
        assert!(!b.exists("code").await);
        b.shots("recovery-codes-none").await;
        b.click("generate").await;
        assert_eq!(b.h1().await, "Your new recovery codes");
        let mut codes = Vec::new();
        for c in b.driver.find_all(By::Css("#codes code")).await.unwrap() {
            codes.push(c.text().await.unwrap());
        }
        assert_eq!(codes.len(), 10, "{codes:?}");
        let href = b
            .el("download-codes")
            .await
            .attr("href")
            .await
            .unwrap()
            .unwrap();
        assert!(href.starts_with("data:text/plain;charset=utf-8,"), "{href}");
        for c in &codes {
            assert!(href.contains(c.as_str()), "{href}");
        }
        assert!(b.exists("print-codes").await && b.exists("copy-codes").await);
        b.shots("recovery-codes-new").await;
        let mail = sink.wait_for(ALICE, "new recovery codes were made").await;
        assert!(!mail.data.contains(codes[0].as_str()));
        b.click("done").await;
        assert!(b.text("rc-status").await.contains("10 of 10"));
        b.sign_out().await;

        // The phone is lost: password, then Troubleshoot MFA → Use a recovery code.
        b.sign_in_password("alice").await;
        assert_eq!(b.path().await, "/sign-in/mfa");
        b.click("troubleshoot").await;
        assert_eq!(b.path().await, "/troubleshoot-mfa");
        b.shots("troubleshoot").await;
        b.click("use-recovery-code").await;
        assert_eq!(b.path().await, "/sign-in/recovery-code");
        b.shots("recovery-sign-in").await;
        // A guessed code and a device code are refused; the form stays.
        b.fill("recovery-code", "ABCDE-FGHJK").await;
        b.click("use-code").await;
        assert!(b.exists("error").await);
        assert_eq!(b.path().await, "/sign-in/recovery-code");
        b.fill("recovery-code", "123456").await;
        b.click("use-code").await;
        assert!(b.text("error").await.contains("not a recovery code"));
        // A real one, typed in lower case.
        b.fill("recovery-code", &codes[0].to_lowercase()).await;
        b.click("use-code").await;
        assert_eq!(b.path().await, "/security/recovery-codes");
        assert!(b.text("rc-status").await.contains("9 of 10"));
        let used = sink.wait_for(ALICE, "a recovery code was used").await;
        let body = used.body();
        assert!(
            body.contains("127.0.0.1") && body.contains("If this was NOT you"),
            "{body}"
        );

        // A new device with two codes, then the old one removed with a code from the new one.
        let new_phone = b.start_enrollment("new-phone").await;
        let mut last = b.enter_two_codes_behind(&new_phone).await;
        assert_eq!(b.path().await, "/security?done=mfa_assigned");
        b.click_css("#devices tbody tr:first-child a.danger-link")
            .await;
        assert!(b.path().await.ends_with("/remove"));
        b.fill("code", &next_code(&new_phone, &mut last).await)
            .await;
        b.click("confirm").await;
        assert_eq!(b.path().await, "/security?done=mfa_removed");
        let devices = b.text("devices").await;
        assert!(
            !devices.contains("old-phone") && devices.contains("new-phone"),
            "{devices}"
        );
        sink.wait_for(ALICE, "an MFA device was removed").await;
        b.sign_out().await;

        // The spent code does not work again.
        b.sign_in_password("alice").await;
        b.goto("/sign-in/recovery-code").await;
        b.fill("recovery-code", &codes[0]).await;
        b.click("use-code").await;
        assert!(b.exists("error").await);

        // The audit log has every step.
        let store = mamori_server::store::open(&db).await.unwrap();
        let events = store
            .list_audit(&AuditFilter {
                account: Some("alice".into()),
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
            ("recovery.codes_generate", "success"),
            ("recovery.code_use", "failure"),
            ("recovery.code_use", "success"),
            ("recovery.code_use", "reused"),
            ("mfa.enable", "success"),
            ("mfa.delete", "success"),
        ] {
            assert!(has(k, r), "audit lacks {k} {r}");
        }
        store.close().await;
    })
    .await;
}

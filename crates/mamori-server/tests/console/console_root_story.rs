//! #15 contacts: the seed's lost-phone story for root, in headless Chromium against the real
//! binary. From the setup link printed at first start, root sets its password, enrolls a
//! virtual MFA device with the QR wizard (two consecutive codes computed from the secret read
//! off the page), adds its email address (code from the in-test SMTP sink) and phone number
//! (typed nationally, code from the signed-webhook receiver) on the Contact details page, signs
//! out, "loses" the device, signs in with alternative factors (email code, then a phone call),
//! removes the lost device and enrolls a new one in the recovery session, signs out, and signs
//! in with the new device. Screenshots land in `target/test-artifacts/console/`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use crate::console_common::*;
use crate::recovery_common::{six_digits, SmtpSink, WebhookReceiver};
use serde_json::Value;

const ROOT_EMAIL: &str = "root@example.test";
/// Typed as dialled in Japan; stored and sent as +818012340000.
const PHONE_TYPED: &str = "080-1234-0000";
const PHONE_E164: &str = "+818012340000";

/// The code of the `n`-th webhook message (1-based) for `purpose`.
async fn phone_code(hook: &WebhookReceiver, purpose: &str, n: usize) -> String {
    for _ in 0..400 {
        let found: Vec<Value> = hook
            .hooks()
            .iter()
            .map(|h| serde_json::from_str::<Value>(&h.body).unwrap())
            .filter(|v| v["purpose"] == purpose && v["to"] == PHONE_E164)
            .collect();
        if let Some(v) = found.get(n - 1) {
            return v["code"].as_str().unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no phone message {n} for {purpose}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_adds_contacts_loses_its_device_and_recovers_with_alternative_factors() {
    let sink = SmtpSink::start().await;
    let hook = WebhookReceiver::start().await;
    let secret_dir = tempfile::tempdir().unwrap();
    let secret_file = secret_dir.path().join("phone-secret");
    std::fs::write(&secret_file, "a-webhook-secret-of-32-characters").unwrap();
    let mut env = sink.env();
    env.push(("MAMORI_LIMITS_SIGN_IN_BURST".into(), "100".into()));
    env.push(("MAMORI_REQUIRE_MFA".into(), "root".into()));
    env.push(("MAMORI_RECOVERY_WAITING_PERIOD_HOURS".into(), "0".into()));
    env.push(("MAMORI_PHONE_PROVIDER".into(), "webhook".into()));
    env.push(("MAMORI_PHONE_URL".into(), hook.url.clone()));
    env.push((
        "MAMORI_PHONE_SECRET_FILE".into(),
        secret_file.display().to_string(),
    ));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let srv = Server::start(&env);
    let link = srv.setup_link();
    with_browser(
        "root-story",
        &srv,
        Options::default(),
        move |b| async move {
            // Setup link → password → the QR wizard with two consecutive codes.
            b.set_password_from_link(&link).await;
            b.sign_in_password("root").await;
            let lost = b.start_enrollment("root-phone").await;
            b.enter_two_codes_behind(&lost).await;
            assert_eq!(b.path().await, "/security?done=mfa_assigned");
            // The dashboard asks root for its contact details.
            b.goto("/").await;
            assert!(
                b.body_text()
                    .await
                    .contains("Root has no verified email address and phone number"),
                "{}",
                b.body_text().await
            );

            // Contacts: no "only administrators" text; add email, then phone, each by code.
            b.goto("/security/contacts").await;
            assert!(!b.body_text().await.contains("Only an administrator"));
            b.shots("root-contacts-empty").await;
            b.fill("new-email", ROOT_EMAIL).await;
            b.click("change-email").await;
            assert_eq!(b.path().await, "/security/contacts/email/confirm");
            let mail = sink.wait_for(ROOT_EMAIL, "Your verification code").await;
            b.fill("code", &six_digits(&mail.body())).await;
            b.click("confirm-code").await;
            assert_eq!(b.path().await, "/security/contacts?done=verified");
            b.fill("new-phone", PHONE_TYPED).await;
            b.click("change-phone").await;
            assert_eq!(b.path().await, "/security/contacts/phone/confirm");
            b.fill("code", &phone_code(&hook, "contact_verification", 1).await)
                .await;
            b.click("confirm-code").await;
            assert_eq!(b.path().await, "/security/contacts?done=verified");
            let phone_row = b.text("contact-phone").await;
            assert!(
                phone_row.contains(PHONE_E164) && !phone_row.contains("Not verified"),
                "{phone_row}"
            );
            assert!(b.text("contact-email").await.contains(ROOT_EMAIL));
            b.shots("root-contacts-verified").await;
            b.sign_out().await;

            // The device is lost: password, Troubleshoot MFA, alternative factors.
            b.sign_in_password("root").await;
            assert_eq!(b.path().await, "/sign-in/mfa");
            b.click("troubleshoot").await;
            b.click("use-alternative-factors").await;
            assert_eq!(b.path().await, "/sign-in/alternative");
            b.click("send-email-code").await;
            assert_eq!(b.path().await, "/sign-in/alternative/email");
            let mail = sink.wait_for(ROOT_EMAIL, "Your sign-in code").await;
            b.fill("code", &six_digits(&mail.body())).await;
            b.click("alt-submit").await;
            assert_eq!(b.path().await, "/sign-in/alternative/phone");
            // The seed's own step: "the phone rings and you enter the number shown on
            // screen". Root asks for a call; the webhook carries channel "voice", the code
            // read digit by digit, and only the newest code is accepted.
            let sms = phone_code(&hook, "recovery_sign_in", 1).await;
            b.click("call-me").await;
            assert_eq!(b.path().await, "/sign-in/alternative/phone?sent=voice");
            let page = b.body_text().await;
            assert!(page.contains("We are calling +81"), "{page}");
            let call = phone_code(&hook, "recovery_sign_in", 2).await;
            let last: Value = hook
                .hooks()
                .iter()
                .map(|h| serde_json::from_str::<Value>(&h.body).unwrap())
                .rfind(|v| v["purpose"] == "recovery_sign_in")
                .unwrap();
            assert_eq!(last["channel"], "voice", "{last}");
            assert_ne!(sms, call);
            b.fill("code", &call).await;
            b.click("alt-submit").await;
            assert_eq!(b.path().await, "/security/recovery-session");
            b.shots("root-recovery-session").await;

            // The lost device goes; a new one with two codes ends the recovery session.
            b.click_css("#recovery-devices a.danger-link").await;
            assert!(b.path().await.ends_with("/remove"));
            b.click("confirm").await;
            assert_eq!(b.path().await, "/security/recovery-session");
            assert!(b.exists("no-devices").await);
            b.click("assign-mfa").await;
            let new_device = b.start_enrollment("root-new-phone").await;
            let mut last = b.enter_two_codes_behind(&new_device).await;
            assert_eq!(b.path().await, "/security?done=mfa_assigned");
            b.sign_out().await;

            // Root signs in with the new device; the lost one's codes no longer work.
            b.sign_in_password("root").await;
            assert_eq!(b.path().await, "/sign-in/mfa");
            b.fill("code", &code(&lost, now())).await;
            b.click("verify").await;
            assert_eq!(b.path().await, "/sign-in/mfa");
            b.fill("code", &next_code(&new_device, &mut last).await)
                .await;
            b.click("verify").await;
            assert_eq!(b.path().await, "/");
            assert!(b.body_text().await.contains("Signed in as root."));
        },
    )
    .await;
}

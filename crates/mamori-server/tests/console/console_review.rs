//! The Security review page in headless Chromium: root's findings, the action that fixes each,
//! following a fix, and the same page in Japanese.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::console_common::*;

/// The result cell of one check's row.
async fn outcome(b: &Browser, id: &str) -> String {
    b.el(&format!("check-{id}"))
        .await
        .find(thirtyfour::By::Css("strong.outcome"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_page_shows_findings_and_their_fixes() {
    let srv = Server::start(&[("MAMORI_REQUIRE_MFA", "root")]);
    let link = srv.setup_link();
    with_browser("review", &srv, Options::default(), move |b| async move {
        b.set_password_from_link(&link).await;
        b.sign_in_password("root").await;
        let secret = b.start_enrollment("phone").await;
        b.enter_two_codes_behind(&secret).await;

        b.goto("/review").await;
        assert_eq!(b.h1().await, "Security review");
        assert_eq!(outcome(&b, "DR-ROOT-MFA").await, "Pass");
        // Only an app: the hardware check fails, with its remedy and a link to the fix.
        assert_eq!(outcome(&b, "DR-ROOT-HARDWARE").await, "Fail");
        let row = b.text("check-DR-ROOT-HARDWARE").await;
        assert!(row.contains("Register a security key"), "{row}");
        // Plain HTTP on loopback: a high-severity failure is announced at the top.
        assert_eq!(outcome(&b, "DR-SECURE-TRANSPORT").await, "Fail");
        assert!(b.exists("review-high").await);
        assert!(b.text("review-summary").await.contains("failed"));
        b.shots("review").await;
        b.click_css("#check-DR-ROOT-HARDWARE a").await;
        assert_eq!(b.path().await, "/security");

        // The same page in Japanese.
        b.goto("/review").await;
        b.click("lang-ja").await;
        assert_eq!(b.h1().await, "セキュリティレビュー");
        assert_eq!(outcome(&b, "DR-ROOT-MFA").await, "合格");
        assert_eq!(outcome(&b, "DR-ROOT-HARDWARE").await, "不合格");
        assert!(b
            .text("check-DR-ROOT-HARDWARE")
            .await
            .contains("セキュリティキーを登録"));
        b.shots("review-ja").await;
    })
    .await;
}

// #15 delivery
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_that_does_not_apply_says_why_in_both_languages() {
    // Recovery by alternative factors is off: its delivery check does not apply.
    let srv = Server::start(&[
        ("MAMORI_REQUIRE_MFA", "root"),
        ("MAMORI_RECOVERY_ALTERNATIVE_FACTORS", "off"),
    ]);
    let link = srv.setup_link();
    with_browser("review-na", &srv, Options::default(), move |b| async move {
        b.set_password_from_link(&link).await;
        b.sign_in_password("root").await;
        let secret = b.start_enrollment("phone").await;
        b.enter_two_codes_behind(&secret).await;

        b.goto("/review").await;
        assert_eq!(outcome(&b, "DR-RECOVERY-DELIVERY").await, "Not applicable");
        let row = b.text("check-DR-RECOVERY-DELIVERY").await;
        assert!(
            row.contains("Recovery by alternative factors is off"),
            "the reason, not a remedy: {row}"
        );
        assert!(
            // Recovery delivery, the certificate expiry (no built-in TLS), forward
            // authentication's two checks (no rules) and the OpenID provider's three (no
            // clients).
            b.text("review-summary").await.contains("7 not applicable"),
            "{}",
            b.text("review-summary").await
        );

        b.click("lang-ja").await;
        assert_eq!(outcome(&b, "DR-RECOVERY-DELIVERY").await, "対象外");
        assert!(b
            .text("check-DR-RECOVERY-DELIVERY")
            .await
            .contains("代替要素による回復は無効です"));
        assert!(b.text("review-summary").await.contains("対象外 7 件"));
    })
    .await;
}

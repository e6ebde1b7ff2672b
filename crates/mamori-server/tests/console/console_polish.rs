//! Issue #15's console polish in headless Chromium, as root reading the console in Japanese at
//! 1280 px: the header navigation on one row (element positions, not pixels), the review sorted
//! failures first with no vertically broken cells and no English detail left, the time zone
//! chosen on the preferences page shown on the credentials page, and a sync device revoked from
//! the browser whose token is then refused.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::console_common::*;
use serde_json::Value;

async fn script(b: &Browser, js: &str) -> Value {
    b.driver
        .execute(js, Vec::<Value>::new())
        .await
        .unwrap()
        .json()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn japanese_console_polish() {
    let srv = Server::start(&[("MAMORI_REQUIRE_MFA", "root")]);
    let link = srv.setup_link();
    let base = srv.url.clone();
    let opts = Options {
        accept_language: "ja,en;q=0.5",
        ..Default::default()
    };
    with_browser("polish", &srv, opts, move |b| async move {
        b.resize(DESKTOP).await;
        b.set_password_from_link(&link).await;
        b.sign_in_password("root").await;
        let secret = b.start_enrollment("phone").await;
        b.enter_two_codes_behind(&secret).await;
        // The setup page's language became root's.
        assert_eq!(b.html_lang().await, "ja");

        // Every navigation item on one row, the sign-out on it too.
        b.goto("/review").await;
        let tops = script(
            &b,
            "return Array.from(document.querySelectorAll('header nav li, #sign-out'))\
             .map(e => Math.round(e.getBoundingClientRect().top + e.getBoundingClientRect().height / 2));",
        )
        .await;
        let tops: Vec<i64> = tops
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert!(tops.len() >= 7, "{tops:?}");
        assert!(
            tops.iter().all(|t| (t - tops[0]).abs() <= 4),
            "navigation wraps at 1280 px: {tops:?}"
        );
        b.shot("review-ja-1280").await;

        // Failures first, the most severe first; then the rest.
        let rows = script(
            &b,
            "return Array.from(document.querySelectorAll('#review tbody tr'))\
             .map(r => [r.className, r.querySelector('[class^=severity-]').className]);",
        )
        .await;
        let rank = |outcome: &str, severity: &str| {
            // The page's order (pages_review.rs): fail, undecidable, pass, not applicable.
            let o = match outcome {
                "fail" => 0,
                "undecidable" => 1,
                "not-applicable" => 3,
                _ => 2,
            };
            let s = match severity {
                "severity-high" => 0,
                "severity-medium" => 1,
                _ => 2,
            };
            (o, s)
        };
        let ranks: Vec<(i32, i32)> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| rank(r[0].as_str().unwrap(), r[1].as_str().unwrap()))
            .collect();
        assert!(ranks.len() > 5, "{rows}");
        assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{rows}");
        assert_eq!(ranks[0], (0, 0), "a high failure first: {rows}");
        // "合格" and "重大度" stay on one line: their boxes are one line high.
        let heights = script(
            &b,
            "const one = e => { const r = e.getBoundingClientRect(); const cs = getComputedStyle(e); \
               const inner = r.height - parseFloat(cs.paddingTop) - parseFloat(cs.paddingBottom) \
                 - parseFloat(cs.borderTopWidth) - parseFloat(cs.borderBottomWidth); \
               return inner / parseFloat(cs.fontSize); }; \
             return Array.from(document.querySelectorAll('#review strong.outcome, #review thead th'))\
             .map(one);",
        )
        .await;
        for h in heights.as_array().unwrap() {
            assert!(h.as_f64().unwrap() < 1.9, "a cell breaks: {heights}");
        }
        // No English detail sentence left.
        let text = b.body_text().await;
        for english in [
            "is not https",
            "without Secure",
            "days ago",
            "left)",
            "unverified",
            "the audit log",
        ] {
            assert!(!text.contains(english), "{english:?} in {text}");
        }
        assert!(text.contains("が https ではありません"), "{text}");

        // The time zone, chosen on the preferences page.
        b.goto("/security/preferences").await;
        b.fill("time_zone", "Asia/Tokyo").await;
        b.click("save-preferences").await;
        assert_eq!(b.path().await, "/security?done=preferences");
        assert!(b.text("notice").await.contains("タイムゾーン"));
        let sessions = b.text("sessions").await;
        assert!(sessions.contains("+09:00"), "{sessions}");

        // A sync device registered with root's session, revoked from the browser.
        let session = b
            .driver
            .get_named_cookie("mamori_session")
            .await
            .unwrap()
            .value;
        let client = reqwest::Client::new();
        let v: Value = client
            .post(format!("{base}/api/v1/sync/devices"))
            .bearer_auth(&session)
            .json(&serde_json::json!({"name": "old-laptop"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let device_token = v["token"].as_str().expect("a device token").to_string();
        b.goto("/security").await;
        let sync = b.text("sync-devices").await;
        assert!(sync.contains("old-laptop"), "{sync}");
        b.click_css("#sync-devices a.danger-link").await;
        assert!(b.h1().await.contains("同期デバイス"));
        b.click("confirm").await;
        assert_eq!(b.path().await, "/security?done=sync_revoked");
        assert!(b.text("notice").await.contains("無効"));
        assert!(b.text("sync-devices").await.contains("無効化"));
        b.shot("sync-revoked-ja").await;
        let status = client
            .get(format!("{base}/api/v1/sync/keys"))
            .bearer_auth(&device_token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(status, 401);
    })
    .await;
}

//! The waiting period of alternative-factor recovery in headless Chromium against the real
//! binary (#15 recovery; docs/recovery.md, "Waiting period"), in English and in Japanese:
//! root has two MFA devices and verified contacts; someone with root's password, mailbox and
//! phone walks Troubleshoot MFA → Sign in using alternative factors (the email code read from the
//! in-test SMTP sink, the phone code from the in-test webhook receiver) and gets the waiting
//! page, which says when the recovery becomes available and how it is cancelled, with its title
//! once. The cancel link of the notice email, opened in the browser, shows a confirmation; its
//! button cancels, and the page then says the recovery was cancelled. The link is single use,
//! and the database agrees. Screenshots land in `target/test-artifacts/console/`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::Command;
use std::time::Duration;

use crate::console_common::*;
use crate::recovery_common::{six_digits, Mail, SmtpSink, WebhookReceiver};
use serde_json::Value;

const ROOT_EMAIL: &str = "root@example.test";
const ROOT_PHONE: &str = "+81 80 5678 1234";

/// What each language must show.
struct Texts {
    lang: &'static str,
    accept_language: &'static str,
    wait_title: &'static str,
    /// From the explanation that notices with a cancel link went out.
    cancel_explained: &'static str,
    /// From the advice that a remaining factor is quicker and cancels it.
    have_factor: &'static str,
    notice_subject: &'static str,
    cancel_title: &'static str,
    cancel_button: &'static str,
    cancelled: &'static str,
    invalid: &'static str,
}

const EN: Texts = Texts {
    lang: "en",
    accept_language: "en-US,en",
    wait_title: "Recovery is waiting",
    cancel_explained: "Notices with a cancel link were sent to your email address",
    have_factor: "it cancels this recovery",
    notice_subject: "account recovery started (cancel it if this was not you)",
    cancel_title: "Cancel account recovery",
    cancel_button: "Cancel the recovery",
    cancelled: "The recovery was cancelled. Nobody can complete it.",
    invalid: "This cancel link is not valid any more",
};

const JA: Texts = Texts {
    lang: "ja",
    accept_language: "ja,en;q=0.5",
    wait_title: "回復の待機中",
    cancel_explained: "取り消しリンク付きのお知らせを",
    have_factor: "この回復も取り消されます",
    notice_subject: "アカウントの回復が開始されました",
    cancel_title: "アカウントの回復を取り消す",
    cancel_button: "回復を取り消す",
    cancelled: "回復を取り消しました。もう誰も完了できません。",
    invalid: "この取り消しリンクはもう使えません",
};

/// RFC 2047 encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`) of a header, decoded.
fn decode_header(v: &str) -> String {
    let mut out = String::new();
    let mut prev_encoded = None;
    for word in v.split_whitespace() {
        let parts: Vec<&str> = word.split('?').collect();
        let encoded = parts.len() == 5 && parts[0] == "=" && parts[4] == "=";
        // White space between two encoded words is not part of the text; any other is.
        if prev_encoded.is_some() && !(encoded && prev_encoded == Some(true)) {
            out.push(' ');
        }
        if encoded {
            let bytes = if parts[2].eq_ignore_ascii_case("b") {
                data_encoding::BASE64.decode(parts[3].as_bytes()).unwrap()
            } else {
                crate::recovery_common::decode_qp(&parts[3].replace('_', " ")).into_bytes()
            };
            out.push_str(&String::from_utf8(bytes).unwrap());
        } else {
            out.push_str(word);
        }
        prev_encoded = Some(encoded);
    }
    out
}

/// The body of a mail, decoded from base64 or quoted-printable.
fn decoded_body(m: &Mail) -> String {
    let base64 = m
        .header("Content-Transfer-Encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("base64"));
    if base64 {
        let raw = m.data.split_once("\r\n\r\n").unwrap().1;
        let joined: String = raw.split_whitespace().collect();
        String::from_utf8(data_encoding::BASE64.decode(joined.as_bytes()).unwrap()).unwrap()
    } else {
        m.body()
    }
}

/// The first mail to root whose decoded body contains `marker`: (subject, body).
async fn mail_with(sink: &SmtpSink, marker: &str) -> (String, String) {
    for _ in 0..400 {
        let found = sink
            .mails()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t == ROOT_EMAIL))
            .map(|m| {
                let subject = decode_header(&m.header("Subject").unwrap_or_default());
                (subject, decoded_body(&m))
            })
            .find(|(_, body)| body.contains(marker));
        if let Some(found) = found {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no mail to {ROOT_EMAIL} containing {marker:?}");
}

/// The code of the first webhook message to root's phone for `purpose`.
async fn phone_code(hook: &WebhookReceiver, purpose: &str) -> String {
    for _ in 0..400 {
        let found = hook
            .hooks()
            .iter()
            .map(|h| serde_json::from_str::<Value>(&h.body).unwrap())
            .find(|v| v["purpose"] == purpose && v["to"] == ROOT_PHONE.replace(' ', ""));
        if let Some(v) = found {
            return v["code"].as_str().unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no phone message for {purpose}");
}

async fn recovery_state(db: &str) -> Vec<(String, i64)> {
    let pool = sqlx::SqlitePool::connect(db).await.unwrap();
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, ready_at FROM recovery_pending ORDER BY created_at")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    rows
}

async fn waiting_page_and_cancel_link(name: &'static str, t: &'static Texts) {
    let sink = SmtpSink::start().await;
    let hook = WebhookReceiver::start().await;
    let secret_dir = tempfile::tempdir().unwrap();
    let secret_file = secret_dir.path().join("phone-secret");
    std::fs::write(&secret_file, "a-webhook-secret-of-32-characters").unwrap();
    let mut env = sink.env();
    for (k, v) in [
        ("MAMORI_LIMITS_SIGN_IN_BURST", "100"),
        ("MAMORI_PHONE_PROVIDER", "webhook"),
        ("MAMORI_PHONE_URL", hook.url.as_str()),
        (
            "MAMORI_PHONE_SECRET_FILE",
            &secret_file.display().to_string(),
        ),
        ("MAMORI_RECOVERY_WAITING_PERIOD_HOURS", "24"),
        ("MAMORI_RECOVERY_DEFAULT_LANGUAGE", t.lang),
    ] {
        env.push((k.into(), v.into()));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let srv = Server::start(&env);
    let link = srv.setup_link();
    let data_dir = srv.dir.path().to_path_buf();
    let db = format!("sqlite://{}", data_dir.join("mamori.db").display());
    let opts = Options {
        accept_language: t.accept_language,
        ..Default::default()
    };
    with_browser(name, &srv, opts, move |b| async move {
        // Root: a password, two MFA devices (so the account keeps other factors when one is
        // lost) and verified contacts, set on the server host.
        b.set_password_from_link(&link).await;
        b.sign_in_password("root").await;
        let phone = b.start_enrollment("phone").await;
        b.enter_two_codes_behind(&phone).await;
        let backup = b.start_enrollment("backup").await;
        b.enter_two_codes_behind(&backup).await;
        let out = Command::new(env!("CARGO_BIN_EXE_mamori-server"))
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["admin", "set-contacts", "root", "--email", ROOT_EMAIL])
            .args(["--phone", ROOT_PHONE, "--verified"])
            .env_remove("MAMORI_CONFIG")
            .env_remove("MAMORI_DATABASE")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        b.sign_out().await;

        // Password, then Troubleshoot MFA → Sign in using alternative factors.
        b.sign_in_password("root").await;
        assert_eq!(b.path().await, "/sign-in/mfa");
        assert_eq!(b.html_lang().await, t.lang);
        b.click("troubleshoot").await;
        b.click("use-alternative-factors").await;
        b.click("send-email-code").await;
        assert_eq!(b.path().await, "/sign-in/alternative/email");
        let (_, mail) = mail_with(&sink, "/sign-in/alternative/email").await;
        b.fill("code", &six_digits(&mail)).await;
        b.click("alt-submit").await;
        assert_eq!(b.path().await, "/sign-in/alternative/phone");
        b.fill("code", &phone_code(&hook, "recovery_sign_in").await)
            .await;
        b.click("alt-submit").await;

        // The waiting page: its title once, when the recovery becomes available, and how it
        // is cancelled. No session was granted.
        assert_eq!(b.h1().await, t.wait_title);
        let text = b.body_text().await;
        assert_eq!(text.matches(t.wait_title).count(), 1, "{text}");
        let pending = recovery_state(&db).await;
        assert_eq!(pending.len(), 1, "{pending:?}");
        assert_eq!(pending[0].0, "pending");
        let ready = mamori_server::domain::notify::utc(pending[0].1);
        assert!(text.contains(&ready), "{ready} not in {text}");
        assert!(text.contains(t.cancel_explained), "{text}");
        assert!(text.contains(t.have_factor), "{text}");
        b.shots("waiting").await;
        b.goto("/security").await;
        assert!(b.path().await.starts_with("/sign-in"), "{}", b.path().await);

        // The notice email carries the cancel link (in the server's language).
        let (subject, notice) = mail_with(&sink, "/recovery/cancel?token=").await;
        assert!(subject.contains(t.notice_subject), "{subject}");
        assert!(notice.contains(&ready), "{notice}");
        let url: String = notice
            .split_whitespace()
            .find(|w| w.contains("/recovery/cancel?token="))
            .unwrap()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || ":/?=.-_".contains(*c))
            .collect();
        assert!(url.starts_with(&b.base), "{url} is not on {}", b.base);

        // Opening it only asks; the recovery is still pending.
        b.goto(&url).await;
        assert_eq!(b.h1().await, t.cancel_title);
        let text = b.body_text().await;
        assert_eq!(text.matches(t.cancel_title).count(), 1, "{text}");
        assert!(text.contains("root") && text.contains(&ready), "{text}");
        assert_eq!(b.text("cancel-recovery").await, t.cancel_button);
        b.shots("cancel-confirm").await;
        assert_eq!(recovery_state(&db).await[0].0, "pending");

        // The button cancels it, and the page says so.
        b.click("cancel-recovery").await;
        assert_eq!(b.path().await, "/recovery/cancel");
        let text = b.body_text().await;
        assert!(text.contains(t.cancelled), "{text}");
        assert!(!b.exists("cancel-recovery").await);
        b.shots("cancelled").await;
        assert_eq!(recovery_state(&db).await[0].0, "cancelled");

        // The link is single use.
        b.goto(&url).await;
        assert!(b.body_text().await.contains(t.invalid));
        assert!(!b.exists("cancel-recovery").await);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_page_and_cancel_link_in_english() {
    waiting_page_and_cancel_link("recovery-wait-en", &EN).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_page_and_cancel_link_in_japanese() {
    waiting_page_and_cancel_link("recovery-wait-ja", &JA).await;
}

//! `mamori-server admin test-email` and `admin test-phone` (issue #15, "Delivery is honest and
//! testable"), against the real binary: a message arrives at a real SMTP sink or a real HTTP
//! webhook receiver on loopback and the one-line outcome names the masked recipient and the
//! route; a dead port or a refusing gateway exits 1 with the reason class and nothing secret;
//! an invalid number is refused with one clear line before anything is sent. Neither command
//! needs (or creates) a database.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::process::Command;

use crate::recovery_common::{SmtpSink, WebhookReceiver};
use hmac::{Hmac, Mac};
use serde_json::Value;
use tokio::net::TcpListener;

const SECRET: &str = "a-webhook-secret-of-32-characters";
const SMTP_USER: &str = "relay-user-7f3a";
const SMTP_PASSWORD: &str = "hunter2-relay-password-9c1e";

/// What one run of the binary left behind.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// `mamori-server admin ARGS… --data-dir DIR/data` with exactly `env` from the MAMORI_*
/// variables. Runs on a blocking thread so the test's SMTP sink and webhook receiver keep
/// answering while the binary talks to them.
async fn admin(dir: &Path, env: &[(String, String)], args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mamori-server"));
    cmd.arg("admin")
        .args(args)
        .arg("--data-dir")
        .arg(dir.join("data"));
    for (k, _) in std::env::vars() {
        if k.starts_with("MAMORI_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("run mamori-server");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// The environment of a webhook phone gateway at `url` (secret in a file under `dir`).
fn phone_env(dir: &Path, url: &str) -> Vec<(String, String)> {
    let secret_file = dir.join("phone-secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    vec![
        ("MAMORI_PHONE_PROVIDER".into(), "webhook".into()),
        ("MAMORI_PHONE_URL".into(), url.into()),
        (
            "MAMORI_PHONE_SECRET_FILE".into(),
            secret_file.display().to_string(),
        ),
    ]
}

/// A loopback port nothing listens on (bound, then released).
async fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// The one line a failed command leaves on stderr (logging may add lines of its own; the
/// error is the one from `main`).
fn error_line(run: &Run) -> String {
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("mamori-server: "))
        .collect();
    assert_eq!(lines.len(), 1, "one error line: {}", run.stderr);
    lines[0].to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn test_email_arrives_at_the_smtp_server_and_says_where_it_went() {
    let dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start().await;
    let run = admin(
        dir.path(),
        &sink.env(),
        &["test-email", "taro@example.test"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        format!(
            "sent test email to t•••@example.test via smtp 127.0.0.1:{} (none)\n",
            sink.port
        )
    );
    let mail = sink.wait_for("taro@example.test", "Test message").await;
    assert_eq!(mail.from, "mfa@example.test");
    assert!(mail.body().contains("admin test-email"), "{}", mail.body());
    // Nothing but the mail server was touched: no database, no server key.
    assert!(!dir.path().join("data").exists());

    // The configured mail language is used.
    let mut env = sink.env();
    env.push(("MAMORI_RECOVERY_DEFAULT_LANGUAGE".into(), "ja".into()));
    let run = admin(dir.path(), &env, &["test-email", "hanako@example.test"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    // (The subject is RFC 2047-encoded; the body, base64 or quoted-printable, is decoded.)
    let mail = sink.wait_for("hanako@example.test", "").await;
    let body = if mail
        .header("Content-Transfer-Encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("base64"))
    {
        let raw = mail.data.split_once("\r\n\r\n").unwrap().1;
        let joined: String = raw.split_whitespace().collect();
        String::from_utf8(data_encoding::BASE64.decode(joined.as_bytes()).unwrap()).unwrap()
    } else {
        mail.body()
    };
    assert!(body.contains("対応は不要です"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn test_email_to_a_dead_port_exits_1_with_the_reason_class_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let port = dead_port().await;
    let password_file = dir.path().join("smtp-password");
    std::fs::write(&password_file, format!("{SMTP_PASSWORD}\n")).unwrap();
    let env: Vec<(String, String)> = [
        ("MAMORI_SMTP_HOST", "127.0.0.1".to_string()),
        ("MAMORI_SMTP_PORT", port.to_string()),
        ("MAMORI_SMTP_SECURITY", "none".into()),
        ("MAMORI_SMTP_USERNAME", SMTP_USER.into()),
        (
            "MAMORI_SMTP_PASSWORD_FILE",
            password_file.display().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let run = admin(dir.path(), &env, &["test-email", "taro@example.test"]).await;
    assert_eq!(run.code, 1, "{} {}", run.stdout, run.stderr);
    assert_eq!(run.stdout, "");
    assert_eq!(
        error_line(&run),
        format!(
            "mamori-server: could not send test email to t•••@example.test via smtp \
             127.0.0.1:{port} (none): transport"
        )
    );
    for secret in [SMTP_PASSWORD, SMTP_USER, "taro@"] {
        assert!(
            !run.stderr.contains(secret) && !run.stdout.contains(secret),
            "{secret} leaked: {}",
            run.stderr
        );
    }

    // Not configured at all: says so, exit 1.
    let run = admin(dir.path(), &[], &["test-email", "taro@example.test"]).await;
    assert_eq!(run.code, 1);
    assert_eq!(
        error_line(&run),
        "mamori-server: could not send test email to t•••@example.test: email delivery is not \
         configured (smtp.host): not_configured"
    );

    // Not an address: refused before anything is tried.
    let run = admin(dir.path(), &env, &["test-email", "not-an-address"]).await;
    assert_eq!(run.code, 1);
    assert!(
        error_line(&run).contains("is not an email address"),
        "{}",
        run.stderr
    );
}

/// Checks the webhook's signature as a gateway would.
fn signed(hook: &crate::recovery_common::Hook) -> bool {
    let (Some(ts), Some(sig)) = (&hook.timestamp, &hook.signature) else {
        return false;
    };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{ts}.{}", hook.body).as_bytes());
    let want = format!(
        "sha256={}",
        data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes())
    );
    *sig == want
}

#[tokio::test(flavor = "multi_thread")]
async fn test_phone_posts_the_signed_webhook_by_sms_and_by_voice() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = WebhookReceiver::start().await;
    let env = phone_env(dir.path(), &gateway.url);
    let hostport = gateway
        .url
        .trim_start_matches("http://")
        .trim_end_matches("/sms")
        .to_string();

    // A national number is read in the default region (JP).
    let run = admin(dir.path(), &env, &["test-phone", "090-1234-5678"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        format!("sent test text message to +81 ••• •••• 5678 via webhook {hostport}\n")
    );
    let hook = gateway.wait_for(1).await;
    assert!(signed(&hook), "{hook:?}");
    let body: Value = serde_json::from_str(&hook.body).unwrap();
    assert_eq!(body["version"], 1);
    assert_eq!(body["channel"], "sms");
    assert_eq!(body["to"], "+819012345678");
    assert_eq!(body["purpose"], "delivery_test");
    assert_eq!(body["code"], "");
    assert!(
        body["message"].as_str().unwrap().contains("test message"),
        "{body}"
    );

    // --voice asks the gateway for a call; an international number works in any region.
    let mut env_us = env.clone();
    env_us.push(("MAMORI_PHONE_DEFAULT_REGION".into(), "US".into()));
    let run = admin(
        dir.path(),
        &env_us,
        &["test-phone", "+81 90 1234 5678", "--voice"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        format!("sent test call to +81 ••• •••• 5678 via webhook {hostport}\n")
    );
    let hook = gateway.wait_for(2).await;
    assert!(signed(&hook), "{hook:?}");
    let body: Value = serde_json::from_str(&hook.body).unwrap();
    assert_eq!(body["channel"], "voice");
    assert_eq!(body["to"], "+819012345678");
    assert_ne!(
        body["id"],
        serde_json::from_str::<Value>(&gateway.hooks()[0].body).unwrap()["id"],
        "every message has its own id"
    );
    assert!(!dir.path().join("data").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn test_phone_refuses_invalid_numbers_and_reports_gateway_failures() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = WebhookReceiver::start().await;
    let env = phone_env(dir.path(), &gateway.url);

    // An invalid number: one clear line naming both accepted forms; nothing is sent.
    for bad in ["12", "090-1234", "call-me"] {
        let run = admin(dir.path(), &env, &["test-phone", bad]).await;
        assert_eq!(run.code, 1, "{bad}: {}", run.stdout);
        assert_eq!(run.stdout, "");
        let line = error_line(&run);
        assert!(
            line.contains("is not a valid phone number")
                && line.contains("+81 90 1234 5678")
                && line.contains("090-1234-5678"),
            "{line}"
        );
    }
    // The command has exited: anything it sent has reached the gateway already.
    assert!(gateway.hooks().is_empty(), "{:?}", gateway.hooks());

    // A gateway that answers 500: rejected.
    let app = axum::Router::new().route(
        "/sms",
        axum::routing::post(|| async { axum::http::StatusCode::INTERNAL_SERVER_ERROR }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let failing = format!(
        "http://{}/sms?token=gw-token-5e2d",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let run = admin(
        dir.path(),
        &phone_env(dir.path(), &failing),
        &["test-phone", "090-1234-5678"],
    )
    .await;
    assert_eq!(run.code, 1);
    let line = error_line(&run);
    assert!(
        line.starts_with("mamori-server: could not send test text message to +81 ••• •••• 5678 via webhook 127.0.0.1:")
            && line.ends_with(": rejected"),
        "{line}"
    );
    // Neither the number nor the URL's token nor the secret is printed.
    for secret in ["9012345678", "gw-token-5e2d", SECRET] {
        assert!(!run.stderr.contains(secret), "{secret}: {}", run.stderr);
    }

    // A dead gateway: transport.
    let port = dead_port().await;
    let run = admin(
        dir.path(),
        &phone_env(dir.path(), &format!("http://127.0.0.1:{port}/sms")),
        &["test-phone", "090-1234-5678", "--voice"],
    )
    .await;
    assert_eq!(run.code, 1);
    assert_eq!(
        error_line(&run),
        format!(
            "mamori-server: could not send test call to +81 ••• •••• 5678 via webhook \
             127.0.0.1:{port}: transport"
        )
    );

    // No gateway configured.
    let run = admin(dir.path(), &[], &["test-phone", "090-1234-5678"]).await;
    assert_eq!(run.code, 1);
    assert_eq!(
        error_line(&run),
        "mamori-server: could not send test text message to +81 ••• •••• 5678: phone delivery \
         is not configured (phone.provider): not_configured"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn both_commands_explain_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let run = admin(dir.path(), &[], &["--help"]).await;
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("test-email"), "{}", run.stdout);
    assert!(run.stdout.contains("test-phone"), "{}", run.stdout);
    let run = admin(dir.path(), &[], &["test-phone", "--help"]).await;
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("--voice"), "{}", run.stdout);
    assert!(run.stdout.contains("090-1234-5678"), "{}", run.stdout);
    let run = admin(dir.path(), &[], &["test-email", "--help"]).await;
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("ADDRESS"), "{}", run.stdout);
}

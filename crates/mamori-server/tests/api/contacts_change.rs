//! #15 contacts: changing contact details over the real binary. The new value is pending until
//! the code sent to it (real SMTP conversation, signed webhook) is entered; the old address is
//! told; wrong codes are counted and limited; invalid phone numbers are refused with nothing
//! stored; administrators act only through the factor-change rule and leave values
//! unverified; the admin command line sets root's contacts; the first start names it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::common::*;
use crate::recovery_common::{six_digits, SmtpSink, WebhookReceiver};
use serde_json::{json, Value};

const SECRET: &str = "a-webhook-secret-of-32-characters";

fn has(events: &[Value], kind: &str, result: &str, detail: &str) -> bool {
    events.iter().any(|e| {
        e["kind"] == kind
            && e["result"] == result
            && e["detail"].as_str().unwrap_or("").starts_with(detail)
    })
}

fn wrong(code: &str) -> &'static str {
    if code == "000000" {
        "111111"
    } else {
        "000000"
    }
}

async fn server(dir: &std::path::Path, sink: &SmtpSink, hook: &WebhookReceiver) -> Server {
    let secret_file = dir.join("phone-secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let mut env = sink.env();
    env.push(("MAMORI_PHONE_PROVIDER".into(), "webhook".into()));
    env.push(("MAMORI_PHONE_URL".into(), hook.url.clone()));
    env.push((
        "MAMORI_PHONE_SECRET_FILE".into(),
        secret_file.display().to_string(),
    ));
    env.push(("MAMORI_REQUIRE_MFA".into(), "root".into()));
    env.push(("MAMORI_LOCKOUT_DELAY_BASE_SECS".into(), "0".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Server::start(&dir.join("data"), None, &env)
}

async fn put(srv: &Server, path: &str, token: &str, value: &str) -> (u16, Value) {
    let (s, _, v) = srv
        .call("PUT", path, Some(token), Some(json!({"value": value})))
        .await;
    (s, v)
}

#[tokio::test]
async fn root_changes_its_own_contacts_with_codes_and_the_old_address_is_told() {
    let sink = SmtpSink::start().await;
    let hook = WebhookReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let srv = server(dir.path(), &sink, &hook).await;
    let enroll_only = srv.root_session().await;

    // An enrollment-only session may not plant a recovery route.
    let (s, v) = put(
        &srv,
        "/api/v1/me/contacts/email",
        &enroll_only,
        "r@example.test",
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("mfa_enrollment_required")),
        "{v}"
    );
    let (_, _, root) = srv.enroll(&enroll_only, "root-phone").await;

    // Bad input: one clear error each, nothing stored, nothing sent.
    let (s, v) = put(&srv, "/api/v1/me/contacts/email", &root, "not-an-address").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_input")),
        "{v}"
    );
    for bad in ["12", "090-1234", "+999 1234 5678", "call me"] {
        let (s, v) = put(&srv, "/api/v1/me/contacts/phone", &root, bad).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (400, Some("invalid_phone_number")),
            "{bad}: {v}"
        );
        assert!(
            v["error"]["message"].as_str().unwrap().contains("+81"),
            "{v}"
        );
    }
    let (_, v) = srv.get("/api/v1/me/contacts", Some(&root)).await;
    assert_eq!(v["email"]["value"], Value::Null, "{v}");
    assert_eq!(v["phone"]["value"], Value::Null, "{v}");
    assert!(v["phone"].get("pending").is_none(), "{v}");
    assert!(sink.mails().is_empty() && hook.hooks().is_empty());

    // Email: pending until the code from the new address is entered; wrong codes do nothing.
    let (s, v) = put(
        &srv,
        "/api/v1/me/contacts/email",
        &root,
        "root@example.test",
    )
    .await;
    assert_eq!((s, v["status"].as_str()), (202, Some("code_sent")), "{v}");
    let (_, v) = srv.get("/api/v1/me/contacts", Some(&root)).await;
    assert_eq!(
        v["email"]["value"],
        Value::Null,
        "not replaced before the code: {v}"
    );
    assert_eq!(v["email"]["pending"], "root@example.test", "{v}");
    let code = six_digits(
        &sink
            .wait_for("root@example.test", "Your verification code")
            .await
            .body(),
    );
    let confirm = |c: String| {
        let srv = &srv;
        let root = root.clone();
        async move {
            srv.post(
                "/api/v1/me/contacts/email/confirm",
                Some(&root),
                json!({"code": c}),
            )
            .await
        }
    };
    let (s, v) = confirm(wrong(&code).into()).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (401, Some("invalid_code")),
        "{v}"
    );
    let (_, v) = srv.get("/api/v1/me/contacts", Some(&root)).await;
    assert_eq!(v["email"]["value"], Value::Null, "{v}");
    let (s, v) = confirm(code.clone()).await;
    assert_eq!(s, 204, "{v}");
    let (_, v) = srv.get("/api/v1/me/contacts", Some(&root)).await;
    assert_eq!(v["email"]["value"], "root@example.test", "{v}");
    assert_eq!(v["email"]["verified"], true, "{v}");

    // Phone: typed nationally, stored and sent in E.164.
    let (s, v) = put(&srv, "/api/v1/me/contacts/phone", &root, "090-1234-5678").await;
    assert_eq!(
        (s, v["value"].as_str()),
        (202, Some("+819012345678")),
        "{v}"
    );
    let h = hook.wait_for(1).await;
    let body: Value = serde_json::from_str(&h.body).unwrap();
    assert_eq!(body["to"], "+819012345678", "{body}");
    let code_sent_to_phone = body["code"].as_str().unwrap().to_string();
    let (s, v) = srv
        .post(
            "/api/v1/me/contacts/phone/confirm",
            Some(&root),
            json!({"code": body["code"]}),
        )
        .await;
    assert_eq!(s, 204, "{v}");
    let (_, v) = srv.get("/api/v1/me/contacts", Some(&root)).await;
    assert_eq!(
        (&v["phone"]["value"], &v["phone"]["verified"]),
        (&json!("+819012345678"), &json!(true)),
        "{v}"
    );

    // Replacing the email: the old address is told once the new one is proven.
    let (s, v) = put(&srv, "/api/v1/me/contacts/email", &root, "new@example.test").await;
    assert_eq!(s, 202, "{v}");
    let code = six_digits(
        &sink
            .wait_for("new@example.test", "Your verification code")
            .await
            .body(),
    );
    let (s, v) = confirm(code).await;
    assert_eq!(s, 204, "{v}");
    let notice = sink
        .wait_for("root@example.test", "your email address was changed")
        .await;
    assert!(notice.body().contains("email address"), "{}", notice.body());
    let (_, v) = srv.get("/api/v1/me/contacts", Some(&root)).await;
    assert_eq!(v["email"]["value"], "new@example.test", "{v}");
    assert_eq!(v["email"]["verified"], true, "{v}");

    // Wrong codes are limited: after MAX_ATTEMPTS (5) even the right code is refused, and the
    // pending value never replaces the old one.
    let (s, _) = put(
        &srv,
        "/api/v1/me/contacts/email",
        &root,
        "third@example.test",
    )
    .await;
    assert_eq!(s, 202);
    let code = six_digits(
        &sink
            .wait_for("third@example.test", "Your verification code")
            .await
            .body(),
    );
    for _ in 0..5 {
        let (s, _) = confirm(wrong(&code).into()).await;
        assert_eq!(s, 401);
    }
    let (s, v) = confirm(code).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (401, Some("invalid_code")),
        "{v}"
    );
    let (_, v) = srv.get("/api/v1/me/contacts", Some(&root)).await;
    assert_eq!(v["email"]["value"], "new@example.test", "{v}");

    // Removing the phone: audited, and the removed number hears of it.
    let (s, _, v) = srv
        .call("DELETE", "/api/v1/me/contacts/phone", Some(&root), None)
        .await;
    assert_eq!(s, 204, "{v}");
    let h = hook.wait_for(2).await;
    let body: Value = serde_json::from_str(&h.body).unwrap();
    assert_eq!(
        (body["to"].as_str(), body["purpose"].as_str()),
        (Some("+819012345678"), Some("contact_changed")),
        "{body}"
    );
    assert!(!h.body.contains(SECRET));
    let (_, v) = srv.get("/api/v1/me/contacts", Some(&root)).await;
    assert_eq!(v["phone"]["value"], Value::Null, "{v}");
    let (s, _, _) = srv
        .call("DELETE", "/api/v1/me/contacts/phone", Some(&root), None)
        .await;
    assert_eq!(s, 404, "nothing left to remove");

    let events = srv.audit(&root, "user=root&limit=200").await;
    assert!(
        has(&events, "contact.change", "enrollment_required", ""),
        "{events:?}"
    );
    assert!(
        has(&events, "contact.change", "code_sent", "email"),
        "{events:?}"
    );
    assert!(
        has(&events, "contact.change", "success", "email"),
        "{events:?}"
    );
    assert!(
        has(&events, "contact.change", "success", "phone"),
        "{events:?}"
    );
    assert!(
        has(&events, "contact.verify", "failure", "email"),
        "{events:?}"
    );
    assert!(
        has(&events, "contact.remove", "success", "phone"),
        "{events:?}"
    );
    // Codes never reach the audit log.
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains(&code_sent_to_phone), "{text}");
}

#[tokio::test]
async fn administrators_set_other_accounts_contacts_unverified_and_never_roots() {
    let sink = SmtpSink::start().await;
    let hook = WebhookReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let srv = server(dir.path(), &sink, &hook).await;
    let root = srv.root_session().await;
    let (_, _, root) = srv.enroll(&root, "root-phone").await;

    // Creating a user normalises its phone number and refuses an invalid one untouched.
    let (s, v) = srv
        .post(
            "/api/v1/users",
            Some(&root),
            json!({"user": "carol", "role": "admin", "phone": "12"}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_phone_number")),
        "{v}"
    );
    let (s, v) = srv
        .post(
            "/api/v1/users",
            Some(&root),
            json!({"user": "carol", "role": "admin", "email": "carol@example.test", "phone": "090-1111-2222"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let token = v["setup_link"]
        .as_str()
        .unwrap()
        .split("token=")
        .nth(1)
        .unwrap()
        .to_string();
    srv.post(
        "/api/v1/setup",
        None,
        json!({"token": token, "password": PASSWORD}),
    )
    .await;

    // Root (an administrator with a fresh factor) sets carol's email: stored at once, unverified.
    let (s, v) = put(
        &srv,
        "/api/v1/users/carol/contacts/email",
        &root,
        "c2@example.test",
    )
    .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (200, Some("set_unverified")),
        "{v}"
    );
    sink.wait_for("carol@example.test", "your email address was changed")
        .await;
    let (s, v) = srv.sign_in("carol").await;
    assert_eq!(s, 200, "{v}");
    let carol_pw = v["token"].as_str().unwrap().to_string();
    let (_, v) = srv.get("/api/v1/me/contacts", Some(&carol_pw)).await;
    assert_eq!(
        (
            &v["email"]["value"],
            &v["email"]["verified"],
            &v["phone"]["value"]
        ),
        (
            &json!("c2@example.test"),
            &json!(false),
            &json!("+819011112222")
        ),
        "{v}"
    );
    // An administrator without MFA cannot act for others, and nobody acts for root.
    let (s, v) = put(
        &srv,
        "/api/v1/users/root/contacts/email",
        &carol_pw,
        "x@example.test",
    )
    .await;
    assert_eq!(s, 403, "{v}");
    let (s, _, v) = srv
        .call(
            "DELETE",
            "/api/v1/users/root/contacts/email",
            Some(&carol_pw),
            None,
        )
        .await;
    assert_eq!(s, 403, "{v}");
    let (_, _, carol) = srv.enroll(&carol_pw, "carol-phone").await;
    let (s, v) = put(
        &srv,
        "/api/v1/users/root/contacts/email",
        &carol,
        "x@example.test",
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{v}"
    );
    // Admin removal of carol's phone, audited with the administrator as actor.
    let (s, _, v) = srv
        .call(
            "DELETE",
            "/api/v1/users/carol/contacts/phone",
            Some(&root),
            None,
        )
        .await;
    assert_eq!(s, 204, "{v}");
    let events = srv.audit(&root, "user=carol&limit=200").await;
    assert!(
        events.iter().any(|e| e["kind"] == "contact.remove"
            && e["result"] == "success"
            && e["actor"] == "root"),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e["kind"] == "contact.change"
            && e["result"] == "success"
            && e["actor"] == "root"),
        "{events:?}"
    );
    let events = srv.audit(&root, "user=root&limit=200").await;
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "contact.change" && e["result"] == "refused_root"),
        "{events:?}"
    );
}

fn admin(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mamori-server"))
        .arg("admin")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("MAMORI_CONFIG")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test]
async fn the_first_start_names_set_contacts_and_the_command_sets_roots_contacts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mamori-server"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env_remove("MAMORI_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let done = line.starts_with("listening on");
        lines.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let expected = format!(
        "optional: give root an email address and phone number to recover with if its MFA \
         device is lost: mamori-server --data-dir {} admin set-contacts root --email ADDRESS \
         --phone NUMBER (or, once signed in, in the console under My security credentials)",
        data.display()
    );
    assert!(lines.contains(&expected), "{lines:#?}");

    // The printed command works (with values in place of the placeholders).
    let (ok, _, err) = admin(&data, &["set-contacts", "root", "--phone", "12"]);
    assert!(!ok);
    assert!(
        err.contains("not a valid phone number") && err.trim().lines().count() == 1,
        "{err}"
    );
    let (ok, _, err) = admin(
        &data,
        &["set-contacts", "nobody", "--email", "a@example.test"],
    );
    assert!(!ok && err.contains("not found"), "{err}");
    let (ok, out, err) = admin(&data, &["set-contacts", "root"]);
    assert!(!ok, "{out}");
    assert!(err.contains("--email"), "{err}");
    let (ok, out, err) = admin(
        &data,
        &[
            "set-contacts",
            "root",
            "--email",
            "root@example.test",
            "--phone",
            "+81 90 1234 5678",
            "--verified",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        "contacts of root: email root@example.test, phone +819012345678 (verified)"
    );
    // A bad phone with a good email stores neither.
    let (ok, _, _) = admin(
        &data,
        &[
            "set-contacts",
            "root",
            "--email",
            "other@example.test",
            "--phone",
            "1",
        ],
    );
    assert!(!ok);
    let (ok, out, _) = admin(&data, &["audit", "--kind", "contact."]);
    assert!(ok);
    assert_eq!(out.matches("contact.change").count(), 2, "{out}");
    assert!(out.contains("admin-cli"), "{out}");
    assert!(!out.contains("other@example.test"));
}

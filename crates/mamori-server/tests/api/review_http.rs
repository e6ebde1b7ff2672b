//! The security review over real HTTP and through `mamori-server admin review`, on a deployment
//! that moves from "fresh install" to "root has MFA": the findings follow the state.

use std::path::Path;
use std::process::Command;

use crate::common::{now, Server};
use serde_json::{json, Value};

fn admin_review(dir: &Path, json: bool) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mamori-server"));
    cmd.arg("admin").arg("review");
    if json {
        cmd.arg("--json");
    }
    // The CLI reads the same (default) configuration as the server started below.
    cmd.arg("--data-dir").arg(dir).env_remove("MAMORI_CONFIG");
    let out = cmd.output().expect("run admin review");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).expect("utf-8"),
        String::from_utf8(out.stderr).expect("utf-8"),
    )
}

fn finding<'a>(review: &'a Value, id: &str) -> &'a Value {
    review["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {review}"))
}

#[tokio::test]
async fn review_follows_the_deployment() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Settings the review must flag (the defaults pass since #15).
    let server = Server::start(
        dir.path(),
        None,
        &[
            ("MAMORI_PASSWORD_MIN_LENGTH", "12"),
            ("MAMORI_REQUIRE_MFA", "root"),
        ],
    );
    let token = server.root_session().await;

    // A fresh install: root has no MFA (high), the transport is plain HTTP (high).
    let (code, out, err) = admin_review(dir.path(), false);
    assert_eq!(code, 1, "a high-severity failure exits 1: {err}");
    assert!(
        out.contains("FAIL  [high] The root account has MFA  (DR-ROOT-MFA)"),
        "{out}"
    );
    assert!(
        out.contains("fix: sign in as root and assign an MFA device"),
        "{out}"
    );
    assert!(err.contains("high-severity"), "{err}");

    // Before enrollment the session may only enroll: the review endpoint is not reachable.
    let (s, _) = server.get("/api/v1/review", Some(&token)).await;
    assert_eq!(s, 403);

    let (_, _, full) = server.enroll(&token, "phone").await;
    let (s, review) = server.get("/api/v1/review", Some(&full)).await;
    assert_eq!(s, 200, "{review}");
    assert_eq!(finding(&review, "DR-ROOT-MFA")["outcome"], "pass");
    // Only an app: the hardware check still fails, with the console page that fixes it.
    let hw = finding(&review, "DR-ROOT-HARDWARE");
    assert_eq!(hw["outcome"], "fail");
    assert_eq!(hw["link"], "/security");
    assert_eq!(
        finding(&review, "DR-PASSWORD-LENGTH")["affected"],
        json!(["password.min_length = 12"])
    );
    assert_eq!(
        finding(&review, "DR-REQUIRE-MFA-ALL")["affected"],
        json!(["require_mfa = \"root\""])
    );
    let transport = finding(&review, "DR-SECURE-TRANSPORT");
    assert_eq!(transport["outcome"], "fail");
    assert_eq!(transport["severity"], "high");
    assert_eq!(review["high_severity_failed"], true);
    // One device and no recovery codes: lockout risk.
    assert_eq!(finding(&review, "DR-LOCKOUT-RISK")["outcome"], "fail");
    // Sign-ins are recorded, so root is not "unused".
    assert_eq!(finding(&review, "DR-UNUSED-ACCOUNTS")["outcome"], "pass");
    assert!(review["at"]
        .as_i64()
        .is_some_and(|t| (t - now() as i64).abs() < 60));

    // An application key that has never been used is young: not flagged yet.
    let (s, v) = server
        .post("/api/v1/app-keys", Some(&full), json!({"name": "vpn"}))
        .await;
    assert_eq!(s, 201, "{v}");
    let (_, review) = server.get("/api/v1/review", Some(&full)).await;
    assert_eq!(finding(&review, "DR-UNUSED-APP-KEYS")["outcome"], "pass");

    // A user whose e-mail address was given but never proven with a code.
    let (s, v) = server
        .post(
            "/api/v1/users",
            Some(&full),
            json!({"user": "alice", "email": "alice@example.com"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (_, review) = server.get("/api/v1/review", Some(&full)).await;
    assert_eq!(
        finding(&review, "DR-CONTACTS-UNVERIFIED")["affected"],
        json!(["alice (email unverified)"])
    );

    // The same findings through the admin CLI's JSON.
    let (code, out, _) = admin_review(dir.path(), true);
    assert_eq!(code, 1);
    let cli: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(finding(&cli, "DR-ROOT-MFA")["outcome"], "pass");
    assert_eq!(finding(&cli, "DR-ROOT-HARDWARE")["outcome"], "fail");
}

#[tokio::test]
async fn a_hardened_configuration_passes_the_settings_checks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(
        dir.path(),
        None,
        &[
            ("MAMORI_PASSWORD_MIN_LENGTH", "16"),
            ("MAMORI_REQUIRE_MFA", "all"),
            ("MAMORI_PUBLIC_URL", "https://mfa.example.com"),
            ("MAMORI_PHONE_PROVIDER", "log"),
        ],
    );
    let token = server.root_session().await;
    let (_, _, full) = server.enroll(&token, "phone").await;
    let (s, review) = server.get("/api/v1/review", Some(&full)).await;
    assert_eq!(s, 200, "{review}");
    for id in [
        "DR-PASSWORD-LENGTH",
        "DR-REQUIRE-MFA-ALL",
        "DR-SECURE-TRANSPORT",
        "DR-ROOT-MFA",
        "DR-AUDIT-RETENTION",
    ] {
        assert_eq!(finding(&review, id)["outcome"], "pass", "{id}: {review}");
    }
    // The development phone gateway writes codes into the log: flagged.
    assert_eq!(finding(&review, "DR-PHONE-GATEWAY")["outcome"], "fail");
}

// #15 delivery
#[tokio::test]
async fn recovery_delivery_follows_the_configuration() {
    // The defaults: recovery by alternative factors is on, but neither email nor a phone
    // gateway is configured, so nobody could use it.
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), None, &[]);
    let token = server.root_session().await;
    let (_, _, full) = server.enroll(&token, "phone").await;
    let (s, review) = server.get("/api/v1/review", Some(&full)).await;
    assert_eq!(s, 200, "{review}");
    let f = finding(&review, "DR-RECOVERY-DELIVERY");
    assert_eq!(f["outcome"], "fail", "{f}");
    assert_eq!(f["severity"], "high");
    assert_eq!(
        f["affected"],
        json!([
            "email delivery is not configured (smtp.host)",
            "phone delivery is not configured (phone.provider)"
        ])
    );
    assert!(
        f["remedy"]
            .as_str()
            .is_some_and(|r| r.contains("test-email")),
        "{f}"
    );
    drop(server);

    // That recovery switched off: the check does not apply, in the API and on the command line.
    let dir = tempfile::tempdir().expect("tempdir");
    let off = ("MAMORI_RECOVERY_ALTERNATIVE_FACTORS", "off");
    let server = Server::start(dir.path(), None, &[off]);
    let token = server.root_session().await;
    let (_, _, full) = server.enroll(&token, "phone").await;
    let (_, review) = server.get("/api/v1/review", Some(&full)).await;
    let f = finding(&review, "DR-RECOVERY-DELIVERY");
    assert_eq!(f["outcome"], "not_applicable", "{f}");
    assert_eq!(f["affected"], json!([]));

    let out = Command::new(env!("CARGO_BIN_EXE_mamori-server"))
        .args(["admin", "review", "--data-dir"])
        .arg(dir.path())
        .env_remove("MAMORI_CONFIG")
        .env(off.0, off.1)
        .output()
        .expect("run admin review");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        text.contains(
            "SKIP  [high] Recovery by alternative factors can deliver its email and phone codes  \
             (DR-RECOVERY-DELIVERY)\n        why: recovery.alternative_factors = \"off\""
        ),
        "{text}"
    );
    let summary = text.lines().last().unwrap_or_default();
    // Recovery delivery, the certificate expiry check (no built-in TLS here), forward
    // authentication's two checks (no rules) and the OpenID provider's three (no clients).
    assert!(
        summary.ends_with(", 0 undecidable, 7 not applicable"),
        "{summary}"
    );
}

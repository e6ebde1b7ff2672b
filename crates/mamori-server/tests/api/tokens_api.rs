//! Hardware OTP tokens against a real server, on SQLite and on PostgreSQL: the RFC 6030 figures
//! (pre-shared key, password `qwerty`) and generated CSV files imported through the admin
//! command line and the API; every refused file imports nothing; a user assigns an HOTP token
//! by serial and two consecutive codes and signs in with it (a replayed code refused, resync
//! after many button presses); an administrator assigns a TOTP token for another user, who
//! signs in with it; every step audited.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use mamori_otp::{Algorithm, Generator, OtpKind, OtpParams, Secret};
use rand::RngCore;
use serde_json::{json, Value};

/// RFC 6030 section 6.1's pre-shared key for Figure 6.
const FIGURE6_PSK: &str = "12345678901234567890123456789012";

fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mamori-pskc/tests/data")
        .join(name);
    std::fs::read_to_string(p).unwrap()
}

struct Admin<'a> {
    dir: &'a Path,
    database: Option<&'a str>,
}

impl Admin<'_> {
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mamori-server"));
        cmd.arg("admin").args(args).arg("--data-dir").arg(self.dir);
        if let Some(db) = self.database {
            cmd.arg("--database").arg(db);
        }
        let out = cmd.env_remove("MAMORI_CONFIG").output().unwrap();
        (
            out.status.success(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }

    fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    /// The inventory as JSON lines.
    fn tokens(&self) -> Vec<Value> {
        let (ok, out, err) = self.run(&["list-tokens", "--json"]);
        assert!(ok, "{err}");
        out.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Runs an import that must be refused: exit status, one error line containing `expect`,
    /// and nothing added to the inventory.
    fn refused(&self, args: &[&str], expect: &str) {
        let before = self.tokens().len();
        let (ok, out, err) = self.run(args);
        assert!(!ok, "{args:?} succeeded: {out}");
        // One error line (PostgreSQL may add sqlx's migration notices as log lines).
        let errors: Vec<&str> = err
            .lines()
            .filter(|l| l.starts_with("mamori-server: "))
            .collect();
        assert_eq!(errors.len(), 1, "{args:?}: {err}");
        let line = errors[0];
        assert!(
            line.to_lowercase().contains(&expect.to_lowercase()),
            "{args:?}: {line}"
        );
        assert_eq!(self.tokens().len(), before, "{args:?} imported something");
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hotp(secret: &[u8], digits: u32, counter: u64) -> String {
    let p = OtpParams {
        kind: OtpKind::Hotp,
        algorithm: Algorithm::Sha1,
        digits,
        period: 30,
        counter: 0,
    };
    Generator::new(&Secret::from_bytes(secret.to_vec()).unwrap(), p)
        .unwrap()
        .at_counter(counter)
        .to_string()
}

fn totp(secret: &[u8], algorithm: Algorithm, digits: u32, period: u64, at: u64) -> String {
    let p = OtpParams {
        kind: OtpKind::Totp,
        algorithm,
        digits,
        period,
        counter: 0,
    };
    Generator::new(&Secret::from_bytes(secret.to_vec()).unwrap(), p)
        .unwrap()
        .at_time(at)
        .to_string()
}

fn random_secret(len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

/// A user with a password, signed in (no MFA yet): returns the session token.
async fn new_user(srv: &Server, root: &str, name: &str) -> String {
    srv.new_user(root, json!({"user": name})).await
}

async fn story(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path(), backend.url(), &[]);
    let admin = Admin {
        dir: dir.path(),
        database: backend.url(),
    };
    let restricted = srv.root_session().await;
    let (_, _, root) = srv.enroll(&restricted, "phone").await;

    // --- Refused files: each gives one clear line and imports nothing. ---
    let fig6 = fixture("rfc6030-figure6.xml");
    let fig7 = fixture("rfc6030-figure7.xml");
    let f6 = admin.write("fig6.xml", &fig6);
    let f6s = f6.to_str().unwrap();
    let mut wrong_psk = FIGURE6_PSK.to_string();
    wrong_psk.replace_range(31..32, "3");
    admin.refused(
        &["import-tokens", f6s, "--psk", &wrong_psk],
        "nothing was imported",
    );
    admin.refused(&["import-tokens", f6s], "nothing was imported");
    admin.refused(&["import-tokens", f6s, "--psk", "12zz"], "pre-shared key");
    // A MAC mismatch: one character of the ValueMAC changed.
    let mac_start = fig6.find("<ValueMAC>").unwrap() + "<ValueMAC>".len();
    let mut tampered = fig6.clone();
    let c = if &fig6[mac_start..mac_start + 1] == "A" {
        "B"
    } else {
        "A"
    };
    tampered.replace_range(mac_start..mac_start + 1, c);
    let t = admin.write("tampered.xml", &tampered);
    admin.refused(
        &["import-tokens", t.to_str().unwrap(), "--psk", FIGURE6_PSK],
        "the file was altered",
    );
    let f7 = admin.write("fig7.xml", &fig7);
    let pw = admin.write("pw.txt", "QWERTY\n");
    admin.refused(
        &[
            "import-tokens",
            f7.to_str().unwrap(),
            "--password-file",
            pw.to_str().unwrap(),
        ],
        "nothing was imported",
    );
    let bad = admin.write("bad.xml", "<KeyContainer Version=\"1.0\"><KeyPackage>");
    admin.refused(&["import-tokens", bad.to_str().unwrap()], "xml");
    // Figure 8: asymmetric key transport, an unsupported algorithm.
    let f8 = admin.write("fig8.xml", &fixture("rfc6030-figure8.xml"));
    admin.refused(&["import-tokens", f8.to_str().unwrap()], "unsupported");
    // Figure 10: a duplicate serial inside the file.
    let f10 = admin.write("fig10.xml", &fixture("rfc6030-figure10.xml"));
    admin.refused(&["import-tokens", f10.to_str().unwrap()], "9999999");
    let badcsv = admin.write(
        "bad.csv",
        &format!(
            "GOOD-1,{},hotp,6,0\nBAD-2,not-hex,hotp,6,0\n",
            hex(&random_secret(20))
        ),
    );
    admin.refused(&["import-tokens", badcsv.to_str().unwrap()], "line 2");
    admin.refused(
        &[
            "import-tokens",
            badcsv.to_str().unwrap(),
            "--format",
            "json",
        ],
        "pskc or csv",
    );
    assert!(admin.tokens().is_empty());

    // --- Imports that succeed. ---
    // Figure 7 (PBKDF2, password "qwerty"), through the command line.
    let pw = admin.write("pw.txt", "qwerty\n");
    let (ok, out, err) = admin.run(&[
        "import-tokens",
        f7.to_str().unwrap(),
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("imported 1 tokens (1 HOTP, 0 TOTP)"), "{out}");
    // Figure 6 has the same serial: refused whole.
    admin.refused(&["import-tokens", f6s, "--psk", FIGURE6_PSK], "987654321");
    // Figure 6 with its serial changed (DeviceInfo is not covered by the ValueMAC), through the
    // API with the key typed with colons.
    let fig6b = fig6.replace(
        "<SerialNo>987654321</SerialNo>",
        "<SerialNo>F6-0001</SerialNo>",
    );
    assert_ne!(fig6b, fig6);
    let colon_psk: Vec<String> = (0..16)
        .map(|i| FIGURE6_PSK[2 * i..2 * i + 2].to_string())
        .collect();
    let (s, v) = srv
        .post(
            "/api/v1/tokens/import",
            Some(&root),
            json!({"content": fig6b, "psk": colon_psk.join(":")}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["imported"], 1);
    // The API refuses the same errors with 400 and imports nothing.
    let (s, v) = srv
        .post(
            "/api/v1/tokens/import",
            Some(&root),
            json!({"content": fig7, "password": "wrong"}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nothing was imported"),
        "{v}"
    );
    // A generated CSV: an HOTP token whose counter is at 5, a TOTP token, an 8-digit SHA-256
    // TOTP token with a 60-second period.
    let hotp_secret = random_secret(20);
    let totp_secret = random_secret(20);
    let totp256_secret = random_secret(32);
    let csv = format!(
        "serial,secret_hex,type,digits,period_or_counter,algorithm\n\
         HW-H-0001,{},hotp,6,5\n\
         HW-T-0001,{},totp,6,30\n\
         HW-T-0002,{},totp,8,60,SHA256\n",
        hex(&hotp_secret),
        hex(&totp_secret),
        hex(&totp256_secret)
    );
    let csvf = admin.write("tokens.csv", &csv);
    let (ok, out, err) = admin.run(&["import-tokens", csvf.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("imported 3 tokens (1 HOTP, 2 TOTP)"), "{out}");
    // The same file again: every serial is taken, nothing imported.
    admin.refused(&["import-tokens", csvf.to_str().unwrap()], "HW-H-0001");
    // A file where only one serial is taken imports none of it.
    let mixed = admin.write(
        "mixed.csv",
        &format!(
            "NEW-0001,{},totp,6,30\nHW-T-0002,{},totp,6,30\n",
            hex(&random_secret(20)),
            hex(&random_secret(20))
        ),
    );
    admin.refused(&["import-tokens", mixed.to_str().unwrap()], "HW-T-0002");

    let inventory = admin.tokens();
    let serials: Vec<&str> = inventory
        .iter()
        .map(|t| t["serial"].as_str().unwrap())
        .collect();
    assert_eq!(
        serials,
        [
            "987654321",
            "F6-0001",
            "HW-H-0001",
            "HW-T-0001",
            "HW-T-0002"
        ]
    );
    let h = &inventory[2];
    assert_eq!(
        (h["type"].as_str(), h["counter"].as_i64()),
        (Some("hotp"), Some(5))
    );
    let t2 = &inventory[4];
    assert_eq!(
        (
            t2["digits"].as_i64(),
            t2["period"].as_i64(),
            t2["algorithm"].as_str()
        ),
        (Some(8), Some(60), Some("SHA256"))
    );
    let (ok, table, _) = admin.run(&["list-tokens"]);
    assert!(ok);
    assert!(table.starts_with("SERIAL"), "{table}");
    assert!(
        table.contains("F6-0001") && table.contains("TOTP"),
        "{table}"
    );
    // The API lists the same, pages by serial, and only for administrators.
    let (s, v) = srv
        .get("/api/v1/tokens?after=F6-0001&limit=2", Some(&root))
        .await;
    assert_eq!(s, 200, "{v}");
    let page: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["serial"].as_str().unwrap())
        .collect();
    assert_eq!(page, ["HW-H-0001", "HW-T-0001"]);
    assert!(v[0].get("secret").is_none() && !v.to_string().contains(&hex(&hotp_secret)));

    // --- Alice assigns the HOTP token herself and signs in with it. ---
    let alice = new_user(&srv, &root, "alice").await;
    assert_eq!(srv.get("/api/v1/tokens", Some(&alice)).await.0, 403);
    let assign = |serial: &str, name: &str, c1: String, c2: String| json!({"serial": serial, "name": name, "code1": c1, "code2": c2});
    // Not consecutive (counters 6 and 8).
    let (s, v) = srv
        .post(
            "/api/v1/mfa-devices/hardware",
            Some(&alice),
            assign(
                "HW-H-0001",
                "keyfob",
                hotp(&hotp_secret, 6, 6),
                hotp(&hotp_secret, 6, 8),
            ),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("codes_not_consecutive")),
        "{v}"
    );
    // Unknown serial.
    let (s, _) = srv
        .post(
            "/api/v1/mfa-devices/hardware",
            Some(&alice),
            assign(
                "NO-SUCH",
                "keyfob",
                hotp(&hotp_secret, 6, 6),
                hotp(&hotp_secret, 6, 7),
            ),
        )
        .await;
    assert_eq!(s, 404);
    // Counters 7 and 8: two presses were lost in a drawer; within the look-ahead.
    let (s, v) = srv
        .post(
            "/api/v1/mfa-devices/hardware",
            Some(&alice),
            assign(
                "HW-H-0001",
                "keyfob",
                hotp(&hotp_secret, 6, 7),
                hotp(&hotp_secret, 6, 8),
            ),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["device"]["kind"], "hardware_otp");
    assert_eq!(v["device"]["serial"], "HW-H-0001");
    let alice_device = v["device"]["id"].as_str().unwrap().to_string();
    // Nobody else can take the same token now.
    let bob = new_user(&srv, &root, "bob").await;
    let (s, v) = srv
        .post(
            "/api/v1/mfa-devices/hardware",
            Some(&bob),
            assign(
                "HW-H-0001",
                "mine",
                hotp(&hotp_secret, 6, 9),
                hotp(&hotp_secret, 6, 10),
            ),
        )
        .await;
    assert_eq!(s, 409, "{v}");

    // Sign in with the next press (counter 9); the same code again is refused, and so is the
    // older counter 8.
    let (s, v) = srv
        .sign_in_with_code("alice", &hotp(&hotp_secret, 6, 9))
        .await;
    assert_eq!(s, 200, "{v}");
    let alice = v["token"].as_str().unwrap().to_string();
    let (s, v) = srv
        .sign_in_with_code("alice", &hotp(&hotp_secret, 6, 9))
        .await;
    assert_eq!(s, 401, "replayed HOTP code accepted: {v}");
    let (s, _) = srv
        .sign_in_with_code("alice", &hotp(&hotp_secret, 6, 8))
        .await;
    assert_eq!(s, 401);
    // The validate API uses the same device and the same replay rule.
    let (ok, out, err) = admin.run(&["create-app-key", "vpn"]);
    assert!(ok, "{err}");
    let app_key = out.lines().last().unwrap().trim().to_string();
    let (s, v) = srv
        .post(
            "/api/v1/validate",
            Some(&app_key),
            json!({"user": "alice", "code": hotp(&hotp_secret, 6, 10)}),
        )
        .await;
    assert_eq!((s, v["result"].as_str()), (200, Some("accept")), "{v}");
    let (_, v) = srv
        .post(
            "/api/v1/validate",
            Some(&app_key),
            json!({"user": "alice", "code": hotp(&hotp_secret, 6, 10)}),
        )
        .await;
    assert_eq!(v["result"], "reject", "{v}");

    // The token was pressed 30 times away from the server: beyond the sign-in look-ahead.
    let (s, _) = srv
        .sign_in_with_code("alice", &hotp(&hotp_secret, 6, 41))
        .await;
    assert_eq!(s, 401);
    // Resync with two consecutive codes (within 50 of the last accepted counter).
    let (s, v) = srv
        .post(
            &format!("/api/v1/mfa-devices/{alice_device}/resync"),
            Some(&alice),
            json!({"code1": hotp(&hotp_secret, 6, 42), "code2": hotp(&hotp_secret, 6, 43)}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = srv
        .sign_in_with_code("alice", &hotp(&hotp_secret, 6, 44))
        .await;
    assert_eq!(s, 200, "{v}");

    // --- The administrator assigns a TOTP token for bob; bob signs in with it. ---
    let now = now();
    let (s, v) = srv
        .post(
            "/api/v1/users/bob/hardware-tokens",
            Some(&bob),
            assign(
                "HW-T-0001",
                "desk-token",
                totp(&totp_secret, Algorithm::Sha1, 6, 30, now - 30),
                totp(&totp_secret, Algorithm::Sha1, 6, 30, now),
            ),
        )
        .await;
    assert_eq!(s, 403, "a user may not assign for another: {v}");
    let (s, v) = srv
        .post(
            "/api/v1/users/bob/hardware-tokens",
            Some(&root),
            assign(
                "HW-T-0001",
                "desk-token",
                totp(&totp_secret, Algorithm::Sha1, 6, 30, now - 30),
                totp(&totp_secret, Algorithm::Sha1, 6, 30, now),
            ),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["kind"], "hardware_otp");
    // The next step's code (the current one was used for the assignment).
    let (s, v) = srv
        .sign_in_with_code("bob", &totp(&totp_secret, Algorithm::Sha1, 6, 30, now + 30))
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = srv
        .sign_in_with_code("bob", &totp(&totp_secret, Algorithm::Sha1, 6, 30, now + 30))
        .await;
    assert_eq!(s, 401, "replayed TOTP code accepted");

    // The inventory shows who holds which token; the MFA column counts hardware tokens.
    let inventory = admin.tokens();
    let holder = |serial: &str| {
        inventory.iter().find(|t| t["serial"] == serial).unwrap()["assigned_to"].clone()
    };
    assert_eq!(holder("HW-H-0001"), "alice");
    assert_eq!(holder("HW-T-0001"), "bob");
    assert_eq!(holder("HW-T-0002"), Value::Null);
    let (_, users, _) = admin.run(&["list-users"]);
    assert!(
        users
            .lines()
            .any(|l| l.starts_with("alice") && l.contains("Hardware")),
        "{users}"
    );

    // The OpenAPI document describes the token routes.
    let (s, doc) = srv.get("/api/v1/openapi.json", None).await;
    assert_eq!(s, 200);
    for path in [
        "/api/v1/tokens/import",
        "/api/v1/tokens",
        "/api/v1/mfa-devices/hardware",
        "/api/v1/users/{name}/hardware-tokens",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }

    // --- Audit. ---
    let imports = srv.audit(&root, "kind=token.import").await;
    let ok_imports = imports.iter().filter(|e| e["result"] == "success").count();
    let refused = imports.iter().filter(|e| e["result"] == "failure").count();
    assert_eq!(ok_imports, 3, "{imports:?}");
    assert!(refused >= 12, "{imports:?}");
    assert!(imports.iter().all(|e| {
        let d = e["detail"].as_str().unwrap_or("");
        !d.contains(&hex(&hotp_secret)) && !d.contains("qwerty") && !d.contains(FIGURE6_PSK)
    }));
    let assigns = srv.audit(&root, "kind=token.assign").await;
    let summary: Vec<(String, String, String)> = assigns
        .iter()
        .map(|e| {
            (
                e["account"].as_str().unwrap().to_string(),
                e["actor"].as_str().unwrap().to_string(),
                e["result"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let has = |a: &str, by: &str, r: &str| {
        summary
            .iter()
            .any(|x| x == &(a.to_string(), by.to_string(), r.to_string()))
    };
    assert!(has("alice", "alice", "not_consecutive"), "{summary:?}");
    assert!(has("alice", "alice", "unknown_serial"), "{summary:?}");
    assert!(has("alice", "alice", "success"), "{summary:?}");
    assert!(has("bob", "bob", "conflict"), "{summary:?}");
    assert!(has("bob", "root", "success"), "{summary:?}");
    let signins = srv.audit(&root, "kind=sign_in.mfa&user=alice").await;
    assert!(signins
        .iter()
        .any(|e| e["result"] == "replay" || e["result"] == "failure"));
    assert!(signins
        .iter()
        .any(|e| e["result"] == "success" && e["detail"] == "keyfob"));
}

#[tokio::test]
async fn tokens_on_sqlite() {
    story(Backend::Sqlite).await;
}

#[tokio::test]
async fn tokens_on_postgres() {
    story(Backend::postgres().await).await;
}

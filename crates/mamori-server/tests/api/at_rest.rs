//! Reads the database directly — the SQLite files byte by byte, every PostgreSQL table row by
//! row — and the server log, and finds no secret: no TOTP secret in any form (Base32 either
//! case, hex either case, raw bytes), and not the password, a session token, an application
//! key or a recovery code as given to their owner (they are stored as slow or keyed hashes).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::common::*;
use mamori_otp::Secret;
use serde_json::json;
use sqlx::{Connection, Row};

/// Every representation of a secret that must not appear.
fn forms(secret_b32: &str) -> Vec<Vec<u8>> {
    let s = Secret::from_base32(secret_b32).unwrap();
    let raw = s.as_bytes().to_vec();
    let hex = data_encoding::HEXLOWER.encode(&raw);
    vec![
        secret_b32.as_bytes().to_vec(),
        secret_b32.to_lowercase().into_bytes(),
        secret_b32.trim_end_matches('=').as_bytes().to_vec(),
        hex.clone().into_bytes(),
        hex.to_uppercase().into_bytes(),
        data_encoding::BASE64.encode(&raw).into_bytes(),
        raw,
    ]
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// What a test must not find at rest: OTP secrets (Base32, checked in every encoding) and
/// secrets handed out as text (checked as given, and for codes also without their dashes).
struct Secrets {
    otp: Vec<String>,
    text: Vec<String>,
}

impl Secrets {
    /// Every byte string that must not appear.
    fn forms(&self) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = self.otp.iter().flat_map(|s| forms(s)).collect();
        for t in &self.text {
            out.push(t.as_bytes().to_vec());
            out.push(t.replace('-', "").into_bytes());
        }
        out
    }
}

/// Root enrolls one enabled and one pending device, makes recovery codes and an application
/// key; returns every secret that passed through the API.
async fn make_secrets(srv: &Server) -> Secrets {
    let restricted = srv.root_session().await;
    let (_, enabled, full) = srv.enroll(&restricted, "phone").await;
    let (s, v) = srv
        .post(
            "/api/v1/mfa-devices/virtual",
            Some(&full),
            json!({"name": "pending"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let pending = v["secret_base32"].as_str().unwrap().to_string();
    let (s, v) = srv
        .post("/api/v1/recovery-codes", Some(&full), json!({}))
        .await;
    assert_eq!(s, 201, "{v}");
    let codes: Vec<String> = v["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10, "{v}");
    let (s, v) = srv
        .post(
            "/api/v1/app-keys",
            Some(&full),
            json!({"name": "vpn", "allow_root": false}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let key = v["key"].as_str().unwrap().to_string();
    let mut text = vec![PASSWORD.to_string(), restricted, full, key];
    text.extend(codes);
    Secrets {
        otp: vec![enabled, pending],
        text,
    }
}

#[tokio::test]
async fn no_secret_in_the_sqlite_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = Server::start(dir.path(), None, &[]);
    let secrets = make_secrets(&srv).await;
    // Read while running (WAL file present) and again after shutdown (checkpointed).
    let mut checked = 0;
    for phase in ["running", "stopped"] {
        if phase == "stopped" {
            assert!(srv.stop());
        }
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if !name.starts_with("mamori.db") && name != "server.log" {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            for form in secrets.forms() {
                assert!(
                    !contains(&bytes, &form),
                    "{phase}: a secret form found in {name}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 3, "database files were read");
    // The check itself works: the sealed secrets are there, just not readable.
    let db = std::fs::read(dir.path().join("mamori.db")).unwrap();
    assert!(contains(&db, b"mamori:mfa/root/phone"));
}

#[tokio::test]
async fn no_secret_in_the_postgres_tables() {
    let db = TempDatabase::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path(), Some(&db.url), &[]);
    let secrets = make_secrets(&srv).await;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let tables: Vec<String> = sqlx::query(
        "SELECT table_name::text AS t FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get::<String, _>("t"))
    .collect();
    assert!(tables.contains(&"devices".to_string()), "{tables:?}");
    let mut rows = 0;
    for t in &tables {
        // Each row as text (bytea columns appear as hex), and every bytea column as raw bytes.
        let text: Vec<String> =
            sqlx::query(&format!("SELECT row_to_json(x)::text AS j FROM {t} x"))
                .fetch_all(&mut conn)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<String, _>("j"))
                .collect();
        for row in &text {
            rows += 1;
            for form in secrets.forms() {
                let f = String::from_utf8_lossy(&form).to_string();
                assert!(
                    !contains(row.as_bytes(), &form)
                        && !row.to_lowercase().contains(&f.to_lowercase()),
                    "a secret form found in table {t}"
                );
            }
        }
    }
    let sealed: Vec<Vec<u8>> = sqlx::query("SELECT secret_sealed FROM devices")
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<Vec<u8>, _>("secret_sealed"))
        .collect();
    assert_eq!(sealed.len(), 2);
    for blob in &sealed {
        for form in secrets.forms() {
            assert!(!contains(blob, &form));
        }
    }
    assert!(rows > 10, "rows were read: {rows}");
    conn.close().await.unwrap();
}

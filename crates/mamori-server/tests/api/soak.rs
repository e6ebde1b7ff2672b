//! #21 soak: mixed traffic at a steady moderate rate against one server, watching what must stay
//! flat (open files, memory) and what must stay zero (errors). CI runs a short version
//! (`MAMORI_SOAK_SECS`, default 12 s per backend); the long run is documented in
//! docs/reliability.md and its results are in docs/performance.md:
//!
//! ```sh
//! MAMORI_SOAK_SECS=1800 MAMORI_SOAK_ROUNDS_PER_SEC=10 \
//!     cargo test --release -p mamori-server --test api soak:: -- --nocapture
//! ```
//!
//! `MAMORI_SOAK_ROUNDS_PER_SEC` paces the rounds (about six requests each); unset, rounds run
//! back to back. The administrator acts like a real client: admin actions need a second factor
//! from the last 5 minutes, so when one is refused with `recent_second_factor_required` it
//! verifies a fresh code (`POST /api/v1/session/verify`) and repeats the action once.
//!
//! Alice's authenticator syncs every second round (`/api/v1/sync/*`, docs/sync-protocol.md):
//! one of her vault's items changed and pushed with the revision it replaces, then a pull with
//! the cursor the device holds, which must bring back exactly that change.

use std::time::{Duration, Instant};

use data_encoding::BASE64URL_NOPAD;
use rand::RngCore;
use serde_json::{json, Value};

use crate::common::*;

/// The server's open files, from `/proc`.
fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The server's resident memory in KiB, from `/proc`.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// Items in Alice's synced vault. A change updates its item in place (the server keeps one row
/// per item with its latest revision, not a history), so, as on a real device, the count stays
/// what it is however long the soak runs.
const SYNC_ITEMS: usize = 8;

/// Plaintext length of an item: the 32-byte version header (stamp, device, counter) and an
/// entry's stored JSON (id, issuer, account, a 32-character Base32 secret, parameters, times)
/// come to about 320 bytes.
const SYNC_PLAINTEXT: usize = 320;

/// Length of a key wrap (`mamori_sync::crypto::WRAP_LEN`: a 34-byte header, nonce, the
/// wrapped 32-byte key and its tag).
const SYNC_WRAP_BYTES: usize = 34 + 24 + 32 + 16;

/// Text shaped like a sealed sync item (`mamori_sync::crypto::seal_item`: format version 1, a
/// 24-byte nonce, the ciphertext and a 16-byte tag, Base64url), with random bytes where the
/// ciphertext goes, so that, like real ciphertext, neither database can compress it. The server
/// stores ciphertext it cannot open, so it cannot tell; sealing for real would take
/// mamori-sync, which nothing in mamori-server depends on (docs/ARCHITECTURE.md).
fn sealed_like(plaintext_len: usize) -> String {
    let mut bytes = random_bytes(1 + 24 + plaintext_len + 16);
    bytes[0] = 1;
    BASE64URL_NOPAD.encode(&bytes)
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

/// What is wrong with a pull that should bring back exactly the item just pushed (`id` at
/// `revision` with `ciphertext`) and move the cursor forward; its new cursor if nothing is.
fn check_pull(
    v: &Value,
    cursor: i64,
    id: &str,
    revision: i64,
    ciphertext: &str,
) -> Result<i64, String> {
    let items = v["items"].as_array().ok_or("no items")?;
    let [item] = items.as_slice() else {
        return Err(format!("{} items pulled, not the 1 pushed", items.len()));
    };
    if item["id"] != id
        || item["revision"] != revision
        || item["deleted"] != false
        || item["ciphertext"] != ciphertext
    {
        return Err(format!(
            "pulled {} at revision {}, pushed {id} at revision {revision} (or another ciphertext)",
            item["id"], item["revision"]
        ));
    }
    if v["more"] != false {
        return Err("more items waiting after the only change".into());
    }
    match v["cursor"].as_i64() {
        Some(next) if next > cursor => Ok(next),
        other => Err(format!("the cursor went from {cursor} to {other:?}")),
    }
}

fn p99(samples: &mut [Duration]) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let i = (samples.len() * 99 / 100).min(samples.len() - 1);
    samples.get(i).copied().unwrap_or_default()
}

struct Window {
    at: Duration,
    requests: usize,
    p99: Duration,
    files: usize,
    rss_kib: u64,
}

async fn soak(backend: Backend) {
    let secs: u64 = std::env::var("MAMORI_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    let window = Duration::from_secs((secs / 6).max(2));
    let rate: Option<f64> = std::env::var("MAMORI_SOAK_ROUNDS_PER_SEC")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|r: &f64| *r > 0.0);
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(
        dir.path(),
        backend.url(),
        &[
            ("MAMORI_LIMITS_SIGN_IN_PER_MINUTE", "100000"),
            ("MAMORI_LIMITS_SIGN_IN_BURST", "100000"),
            ("MAMORI_LIMITS_VALIDATE_PER_MINUTE", "100000"),
            ("MAMORI_LIMITS_VALIDATE_BURST", "100000"),
            // One device syncing several times a second, far more often than a real one: its
            // per-device limit (600 a minute) would refuse the unpaced and the paced runs.
            ("MAMORI_SYNC_REQUESTS_PER_MINUTE", "100000"),
            ("MAMORI_SYNC_BURST", "100000"),
        ],
    );
    let root = srv.root_session().await;
    let (_, root_secret, root) = srv.enroll(&root, "root-phone").await;
    // The enrollment used the current step's code; a verification must use a later one.
    let mut root_step = now() / 30;
    let (s, v) = srv
        .post("/api/v1/app-keys", Some(&root), json!({"name": "gateway"}))
        .await;
    assert_eq!(s, 201, "{v}");
    let key = v["key"].as_str().unwrap().to_string();
    let user = srv.new_user(&root, json!({"user": "alice"})).await;
    let (_, secret, alice) = srv.enroll(&user, "phone").await;
    let (s, v) = srv
        .post("/api/v1/recovery-codes", Some(&alice), json!({}))
        .await;
    assert_eq!(s, 201, "{v}");
    // Alice's authenticator joins sync as `mamori sync setup` does: a device registered with her
    // fresh session, the sync key's two wraps uploaded, every item of the vault pushed, and a
    // pull for the cursor the device keeps from then on.
    let (s, v) = srv
        .post(
            "/api/v1/sync/devices",
            Some(&alice),
            json!({"name": "laptop"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let device = v["token"].as_str().unwrap().to_string();
    let (s, _, v) = srv
        .call(
            "PUT",
            "/api/v1/sync/keys",
            Some(&device),
            Some(json!({
                "expected_version": 0,
                "passphrase_wrap": BASE64URL_NOPAD.encode(&random_bytes(SYNC_WRAP_BYTES)),
                "recovery_wrap": BASE64URL_NOPAD.encode(&random_bytes(SYNC_WRAP_BYTES)),
            })),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    // Each item's id and the revision the device last stored.
    let mut items: Vec<(String, i64)> = (0..SYNC_ITEMS)
        .map(|_| (uuid::Uuid::new_v4().to_string(), 0))
        .collect();
    let push: Vec<Value> = items
        .iter()
        .map(|(id, _)| json!({"id": id, "expected_revision": 0, "deleted": false, "ciphertext": sealed_like(SYNC_PLAINTEXT)}))
        .collect();
    let (s, v) = srv
        .post("/api/v1/sync/items", Some(&device), json!({"items": push}))
        .await;
    assert_eq!(s, 200, "{v}");
    for ((_, revision), result) in items.iter_mut().zip(v["results"].as_array().unwrap()) {
        assert_eq!(result["status"], "ok", "{v}");
        *revision = result["revision"].as_i64().unwrap();
    }
    let (s, v) = srv.get("/api/v1/sync/items?since=0", Some(&device)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["items"].as_array().unwrap().len(), SYNC_ITEMS, "{v}");
    let mut cursor = v["cursor"].as_i64().unwrap();

    let pid = srv.pid();
    let start = Instant::now();
    let mut windows = Vec::new();
    let mut errors = Vec::new();
    let mut latencies = Vec::new();
    let mut requests = 0usize;
    let mut next_window = start + window;
    let mut round = 0u64;
    let db_start = database_bytes(&backend, dir.path());
    let mut refreshes = 0u32;
    // Sync rounds, and what was wrong with their answers beyond the status (kept apart from
    // `errors`, which the `timed` closure of each round holds).
    let mut sync_rounds = 0u32;
    let mut sync_faults: Vec<String> = Vec::new();
    while start.elapsed() < Duration::from_secs(secs) {
        if let Some(rate) = rate {
            // Steady pacing: round N starts N/rate seconds in (no catching up in bursts).
            let due = start + Duration::from_secs_f64(round as f64 / rate);
            let now = Instant::now();
            if due > now {
                tokio::time::sleep(due - now).await;
            }
        }
        round += 1;
        // One round of what users and applications do, a request at a time.
        let mut timed = |s: u16, want: &[u16], what: &str, t: Instant| {
            latencies.push(t.elapsed());
            requests += 1;
            if !want.contains(&s) {
                errors.push(format!("{what}: {s}"));
            }
        };
        let t = Instant::now();
        let (s, _) = srv.get("/api/v1/me", Some(&alice)).await;
        timed(s, &[200], "me", t);
        let t = Instant::now();
        let (s, _) = srv.get("/api/v1/mfa-devices", Some(&alice)).await;
        timed(s, &[200], "devices", t);
        let t = Instant::now();
        let (s, _) = srv.get("/api/v1/recovery-codes", Some(&alice)).await;
        timed(s, &[200], "recovery status", t);
        // A validation: the next step's code, accepted once per step, then refused as used
        // (a failure that the acceptance of the next step clears again).
        let c = code(&secret, (now() / 30 + 1) * 30);
        let t = Instant::now();
        let (s, _, _) = srv
            .call(
                "POST",
                "/api/v1/validate",
                Some(&key),
                Some(json!({"user": "alice", "code": c})),
            )
            .await;
        timed(s, &[200], "validate", t);
        // The password step of a sign-in (a challenge; Argon2id, the costly request).
        if round % 4 == 0 {
            let t = Instant::now();
            let (s, _) = srv.sign_in("alice").await;
            timed(s, &[200], "sign-in", t);
        }
        // An enrollment started and abandoned (created, then deleted): two admin actions,
        // each of which may find the administrator's factor older than 5 minutes.
        if round % 8 == 0 {
            let mut id: Option<String> = None;
            for step in 0..2 {
                let (method, path, body, want, what): (_, _, _, &[u16], _) = if step == 0 {
                    (
                        "POST",
                        "/api/v1/mfa-devices/virtual".to_string(),
                        Some(json!({"name": format!("spare{round}")})),
                        &[201],
                        "create device",
                    )
                } else {
                    let Some(id) = &id else { break };
                    (
                        "DELETE",
                        format!("/api/v1/mfa-devices/{id}"),
                        None,
                        &[204, 200],
                        "delete device",
                    )
                };
                let mut t = Instant::now();
                let (mut s, _, mut v) = srv.call(method, &path, Some(&root), body.clone()).await;
                if s == 403 && v["error"]["code"] == "recent_second_factor_required" {
                    // Verify a fresh code, as a client does on this answer, then repeat the
                    // action. (A factor can go stale between the create and the delete.)
                    timed(s, &[403], &format!("{what} (stale factor)"), t);
                    while now() / 30 <= root_step {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    root_step = now() / 30;
                    let tv = Instant::now();
                    let (vs, vv) = srv
                        .post(
                            "/api/v1/session/verify",
                            Some(&root),
                            json!({"code": code(&root_secret, root_step * 30)}),
                        )
                        .await;
                    timed(vs, &[204], "verify", tv);
                    assert_eq!(vs, 204, "{vv}");
                    refreshes += 1;
                    t = Instant::now();
                    (s, _, v) = srv.call(method, &path, Some(&root), body).await;
                }
                timed(s, want, what, t);
                if step == 0 {
                    id = v["id"].as_str().map(str::to_string);
                }
            }
        }
        // The administrator's view: audit log and users.
        if round % 4 == 2 {
            let t = Instant::now();
            let (s, _) = srv.get("/api/v1/audit?limit=50", Some(&root)).await;
            timed(s, &[200], "audit", t);
            let t = Instant::now();
            let (s, _) = srv.get("/api/v1/users", Some(&root)).await;
            timed(s, &[200], "users", t);
        }
        // A console page.
        if round % 4 == 1 {
            let t = Instant::now();
            let (s, _) = console_request(&srv, &srv.url, &alice, "/", None).await;
            timed(s, &[200], "console", t);
        }
        // A sync round of Alice's authenticator: an item changed (an edit, an HOTP counter)
        // and pushed with the revision it replaces, then a pull from the device's cursor, which
        // must bring back just that change (one device, so nothing else changed).
        if round % 2 == 0 {
            sync_rounds += 1;
            let slot = (round / 2) as usize % items.len();
            let (id, revision) = &mut items[slot];
            let ciphertext = sealed_like(SYNC_PLAINTEXT);
            let t = Instant::now();
            let (s, v) = srv
                .post(
                    "/api/v1/sync/items",
                    Some(&device),
                    json!({"items": [{"id": id, "expected_revision": *revision, "deleted": false, "ciphertext": ciphertext}]}),
                )
                .await;
            timed(s, &[200], "sync push", t);
            // A conflict would mean the server lost or reordered a revision of the only
            // device's own items.
            let pushed = match v["results"][0]["revision"].as_i64() {
                Some(r) if s == 200 && v["results"][0]["status"] == "ok" => {
                    *revision = r;
                    true
                }
                _ if s == 200 => {
                    sync_faults.push(format!("round {round}: push not stored: {v}"));
                    false
                }
                _ => false,
            };
            let t = Instant::now();
            let (s, v) = srv
                .get(&format!("/api/v1/sync/items?since={cursor}"), Some(&device))
                .await;
            timed(s, &[200], "sync pull", t);
            if s == 200 && pushed {
                match check_pull(&v, cursor, id, *revision, &ciphertext) {
                    Ok(next) => cursor = next,
                    Err(why) => {
                        sync_faults.push(format!("round {round}: {why}"));
                        // Move on as the device would, so that one fault is reported once and
                        // not again in every later round's pull.
                        cursor = cursor.max(v["cursor"].as_i64().unwrap_or(cursor));
                    }
                }
            }
        }
        if Instant::now() >= next_window {
            windows.push(Window {
                at: start.elapsed(),
                requests,
                p99: p99(&mut latencies),
                files: open_files(pid),
                rss_kib: rss_kib(pid),
            });
            latencies.clear();
            requests = 0;
            next_window += window;
        }
    }
    eprintln!(
        "soak on {}: {secs} s",
        if backend.url().is_some() {
            "postgres"
        } else {
            "sqlite"
        }
    );
    eprintln!("  t (s)  requests  p99 (ms)  open files  RSS (MiB)");
    for w in &windows {
        eprintln!(
            "  {:>5}  {:>8}  {:>8.1}  {:>10}  {:>9.1}",
            w.at.as_secs(),
            w.requests,
            w.p99.as_secs_f64() * 1000.0,
            w.files,
            w.rss_kib as f64 / 1024.0
        );
    }
    let grown = database_bytes(&backend, dir.path()).saturating_sub(db_start);
    let total: usize = windows.iter().map(|w| w.requests).sum();
    eprintln!("  the administrator verified a fresh code {refreshes} times");
    eprintln!("  {sync_rounds} sync rounds (a push and a pull each)");
    eprintln!(
        "  {total} requests; the database grew {} KiB, about {:.0} MiB per day at this rate",
        grown / 1024,
        grown as f64 / secs as f64 * 86_400.0 / (1024.0 * 1024.0)
    );
    assert!(errors.is_empty(), "errors during the soak: {errors:?}");
    assert!(
        sync_faults.is_empty(),
        "sync rounds went wrong: {sync_faults:?}"
    );
    assert!(sync_rounds > 0, "no sync round ran");
    assert!(windows.len() >= 2, "too short to compare windows");
    // What must stay flat: open files (no leaked connection or file) and memory (bounded:
    // caches and pools fill in the first window, then nothing grows without bound).
    let first = &windows[0];
    let last = windows.last().unwrap();
    assert!(
        last.files <= first.files + 16,
        "open files grew from {} to {}",
        first.files,
        last.files
    );
    assert!(
        last.rss_kib <= first.rss_kib * 2 + 64 * 1024,
        "memory grew from {} KiB to {} KiB",
        first.rss_kib,
        last.rss_kib
    );
}

/// The database's size on disk: the SQLite files, or PostgreSQL's `pg_database_size`.
fn database_bytes(backend: &Backend, data_dir: &std::path::Path) -> u64 {
    match backend.url() {
        None => std::fs::read_dir(data_dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().starts_with("mamori.db"))
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0),
        Some(url) => {
            let url = url.split('?').next().unwrap_or(url);
            let out = std::process::Command::new("psql")
                .arg(url)
                .args(["-tA", "-c", "SELECT pg_database_size(current_database())"])
                .output()
                .expect("psql runs");
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .unwrap_or(0)
        }
    }
}

#[tokio::test]
async fn soak_on_sqlite() {
    soak(Backend::Sqlite).await;
}

#[tokio::test]
async fn soak_on_postgres() {
    soak(Backend::postgres().await).await;
}

//! #21 faults: the database goes away under a running server. Every request meanwhile is
//! answered (200, or 503 `unavailable` with `Retry-After`: never a 500, never a hang), and the
//! server serves again by itself once the database is back. docs/reliability.md.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use mamori_testkit::disk::SmallDisk;

use crate::common::{Backend, Server};

/// Ends every connection the server holds to its PostgreSQL database (what a database restart,
/// a failover or an administrator's `pg_terminate_backend` does to it), with the real `psql`.
fn terminate_connections(url: &str) -> usize {
    // psql takes the URL without sqlx's own query options.
    let url = url.split('?').next().unwrap_or(url);
    let out = Command::new("psql")
        .arg(url)
        .args(["-tA", "-c"])
        .arg(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .output()
        .expect("psql runs (postgresql-client)");
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a count")
}

/// A lost connection on PostgreSQL: answered honestly, then recovered without a restart.
#[tokio::test]
async fn lost_database_connections_are_answered_and_recovered() {
    let backend = Backend::postgres().await;
    let url = backend.url().expect("postgres").to_string();
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path(), Some(&url), &[]);
    let root = srv.root_session().await;
    let (_, _, root) = srv.enroll(&root, "root-phone").await;
    let (s, v) = srv.get("/api/v1/me", Some(&root)).await;
    assert_eq!(s, 200, "{v}");

    let killed = terminate_connections(&url);
    assert!(killed > 0, "the server held no connection to terminate");

    // Every answer meanwhile is a success or an honest 503, and the server recovers on its own.
    let start = Instant::now();
    let mut unavailable = 0;
    let mut ok_in_a_row = 0;
    while ok_in_a_row < 20 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the server did not recover within 30 s ({unavailable} answers were 503)"
        );
        let (s, headers, v) = srv.call("GET", "/api/v1/me", Some(&root), None).await;
        match s {
            200 => ok_in_a_row += 1,
            503 => {
                assert_eq!(v["error"]["code"], "unavailable", "{v}");
                let retry = headers
                    .get("retry-after")
                    .and_then(|h| h.to_str().ok())
                    .and_then(|h| h.parse::<u64>().ok());
                assert!(retry.is_some_and(|r| r >= 1), "{headers:?}");
                // The message names no host, database or driver detail.
                let msg = v["error"]["message"].as_str().unwrap_or_default();
                assert!(!msg.contains("postgres") && !msg.contains(&url), "{msg}");
                unavailable += 1;
                ok_in_a_row = 0;
            }
            other => panic!("answered {other} while the database connections were lost: {v}"),
        }
    }
    eprintln!(
        "{killed} connections ended: {unavailable} answers were 503, recovered after {:?}",
        start.elapsed()
    );
    // Writes work again too (a new device, audited).
    let (s, v) = srv
        .post(
            "/api/v1/mfa-devices/virtual",
            Some(&root),
            serde_json::json!({"name": "after-the-outage"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    drop(backend);
}

/// SQLite's disk fills: writes are answered 503 (never 500), reads go on, nothing is corrupted,
/// and writes work again once space is freed, without a restart.
#[tokio::test]
async fn a_full_disk_refuses_writes_and_keeps_reads_and_data() {
    let disk = SmallDisk::mount(16 * 1024 * 1024);
    let db = disk.path().join("mamori.db");
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path(), Some(&format!("sqlite://{}", db.display())), &[]);
    let root = srv.root_session().await;
    let (_, _, root) = srv.enroll(&root, "root-phone").await;
    let (s, v) = srv
        .post(
            "/api/v1/users",
            Some(&root),
            serde_json::json!({"user": "before"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");

    let filler = disk.fill();
    // Write until the database needs space it cannot have (its WAL may still hold some).
    let mut refused = None;
    for i in 0..2000 {
        let (s, headers, v) = srv
            .call(
                "POST",
                "/api/v1/users",
                Some(&root),
                Some(serde_json::json!({"user": format!("u{i}")})),
            )
            .await;
        match s {
            201 => continue,
            503 => {
                assert_eq!(v["error"]["code"], "unavailable", "{v}");
                assert!(headers.get("retry-after").is_some(), "{headers:?}");
                refused = Some(i);
                break;
            }
            other => panic!("write {i} on a full disk answered {other}: {v}"),
        }
    }
    let refused = refused.expect("no write was refused on a full disk");
    // Reads go on.
    let (s, v) = srv.get("/api/v1/users", Some(&root)).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = srv.get("/api/v1/me", Some(&root)).await;
    assert_eq!(s, 200, "{v}");

    // Space comes back: writes work again, without a restart.
    std::fs::remove_file(&filler).unwrap();
    let (s, v) = srv
        .post(
            "/api/v1/users",
            Some(&root),
            serde_json::json!({"user": "after"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = srv.get("/api/v1/users", Some(&root)).await;
    assert_eq!(s, 200, "{v}");
    let names: Vec<&str> = v
        .as_array()
        .map(|a| a.iter().filter_map(|u| u["user"].as_str()).collect())
        .unwrap_or_default();
    assert!(names.contains(&"before") && names.contains(&"after"), "{v}");
    eprintln!("the disk was full after {refused} more users; writes resumed when space came back");

    // Nothing is corrupted: SQLite's own check, with the real sqlite3, on the live file.
    let out = Command::new("sqlite3")
        .arg(&db)
        .arg("PRAGMA integrity_check;")
        .output()
        .expect("sqlite3 runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    drop(srv);
}

/// A PostgreSQL cluster of the test's own (initdb in a scratch directory, run as the
/// `postgres` user on a free port), so that the test can restart it without touching the
/// suite's shared server. Stopped and removed when dropped.
struct OwnPostgres {
    dir: tempfile::TempDir,
    port: u16,
}

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

impl OwnPostgres {
    fn pg_ctl(&self, args: &[&str]) -> bool {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(format!("{PG_BIN}/pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(args)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    fn start(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log");
        assert!(
            self.pg_ctl(&["-o", &opts, "-l", log.to_str().unwrap(), "-w", "start"]),
            "pg_ctl start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    fn create() -> OwnPostgres {
        let dir = tempfile::tempdir().unwrap();
        let chown = Command::new("chown")
            .arg("postgres")
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(chown.success(), "chown to postgres (the tests run as root)");
        let init = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(format!("{PG_BIN}/initdb"))
            .arg("-D")
            .arg(dir.path().join("data"))
            .args(["-A", "trust", "-U", "postgres"])
            .output()
            .expect("initdb runs");
        assert!(
            init.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let pg = OwnPostgres {
            dir,
            port: mamori_testkit::process::free_port(),
        };
        pg.start();
        pg
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
    }
}

/// PostgreSQL stops and starts again: during the outage every request is answered within the
/// request timeout with 503 and `Retry-After` (never 500, never a hang: the pool's acquire
/// timeout is below the request timeout), and service resumes by itself within moments of the
/// database's return, without restarting mamori.
#[tokio::test]
async fn a_database_restart_is_answered_and_recovered() {
    let pg = OwnPostgres::create();
    let dir = tempfile::tempdir().unwrap();
    let srv = Server::start(dir.path(), Some(&pg.url()), &[]);
    let root = srv.root_session().await;
    let (_, _, root) = srv.enroll(&root, "root-phone").await;

    let stop = Instant::now();
    assert!(pg.pg_ctl(&["-m", "fast", "-w", "stop"]), "pg_ctl stop");
    let mut answers = HashMap::new();
    // While the database is down (3 s): answered, honestly, within the request timeout (10 s).
    while stop.elapsed() < Duration::from_secs(3) {
        let t = Instant::now();
        let (s, headers, v) = srv.call("GET", "/api/v1/me", Some(&root), None).await;
        assert!(t.elapsed() < Duration::from_secs(10), "a request hung");
        match s {
            503 => {
                assert_eq!(v["error"]["code"], "unavailable", "{v}");
                assert!(headers.get("retry-after").is_some(), "{headers:?}");
            }
            other => panic!("answered {other} while the database was down: {v}"),
        }
        *answers.entry(s).or_insert(0) += 1;
    }
    pg.start();
    let back = Instant::now();
    let mut ok_in_a_row = 0;
    while ok_in_a_row < 10 {
        assert!(
            back.elapsed() < Duration::from_secs(20),
            "no recovery 20 s after the database returned"
        );
        let (s, _, v) = srv.call("GET", "/api/v1/me", Some(&root), None).await;
        match s {
            200 => ok_in_a_row += 1,
            503 => ok_in_a_row = 0,
            other => panic!("answered {other} after the database returned: {v}"),
        }
    }
    eprintln!(
        "database down 3 s: answers {answers:?}; recovered {:?} after it returned",
        back.elapsed()
    );
}

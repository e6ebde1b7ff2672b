//! The unlock agent's protocol over a real Unix socket.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use mamori_vault::agent::{self, Agent, Client};
use mamori_vault::DataKey;

/// How long any wait in these tests may take before it counts as a hang: far above what a
/// loaded machine needs, far below a CI job's timeout, so a broken agent fails the test.
const LIMIT: Duration = Duration::from_secs(20);

fn start(dir: &std::path::Path, idle: Duration) -> std::thread::JoinHandle<()> {
    let agent = Agent::bind(dir, idle).unwrap();
    std::thread::spawn(move || agent.serve().unwrap())
}

/// Joins the agent's thread, failing the test if it has not stopped within `LIMIT`
/// (`JoinHandle::join` alone would wait forever for an agent that never stops).
#[track_caller]
fn join_within(handle: std::thread::JoinHandle<()>, why: &str) {
    let deadline = Instant::now() + LIMIT;
    while !handle.is_finished() {
        assert!(
            Instant::now() < deadline,
            "the agent did not stop within {LIMIT:?} after {why}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    handle.join().unwrap();
}

#[test]
fn put_get_status_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("agent");
    let handle = start(&dir, Duration::from_secs(60));
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let c = Client::new(&dir);
    let id = [7u8; 16];
    assert!(c.get(&id).unwrap().is_none(), "nothing held yet");
    let key = DataKey::from_bytes([0xab; 32]);
    c.put(&id, &key).unwrap();
    assert_eq!(c.get(&id).unwrap(), Some(key));
    assert!(c.get(&[8u8; 16]).unwrap().is_none(), "keys are per vault");
    let st = c.status().unwrap();
    assert_eq!(
        (st.vaults, st.idle_timeout, st.pid),
        (1, 60, std::process::id())
    );
    assert!(
        st.mlocked,
        "the key page is locked in memory (RLIMIT_MEMLOCK too small?)"
    );
    // A second agent refuses to start on the same socket.
    assert!(Agent::bind(&dir, Duration::from_secs(1)).is_err());
    c.lock().unwrap();
    join_within(handle, "lock");
    assert!(!agent::socket_path(&dir).exists(), "socket removed");
    assert!(c.status().is_err(), "no agent after lock");
}

#[test]
fn forgets_keys_when_idle() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("agent");
    let handle = start(&dir, Duration::from_millis(300));
    let c = Client::new(&dir);
    c.put(&[1u8; 16], &DataKey::from_bytes([1; 32])).unwrap();
    join_within(handle, "its 300 ms idle timeout");
    assert!(!agent::socket_path(&dir).exists(), "socket removed");
    assert!(c.get(&[1u8; 16]).is_err(), "the agent is gone");
}

#[test]
fn refuses_a_directory_open_to_others() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("agent");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = Agent::bind(&dir, Duration::from_secs(1)).err().unwrap();
    assert!(err.to_string().contains("chmod 700"), "{err}");
    assert!(Client::new(&dir).status().is_err());
}

#[test]
fn garbage_requests_get_an_error_and_the_agent_survives() {
    use std::io::{BufRead, BufReader, Write};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("agent");
    let handle = start(&dir, Duration::from_secs(60));
    for req in [
        "hello\n",
        "{\"op\":\"put\",\"vault_id\":\"00\",\"key\":\"zz\"}\n",
        "{\"op\":\"get\"}\n",
    ] {
        let mut s = std::os::unix::net::UnixStream::connect(agent::socket_path(&dir)).unwrap();
        // Without timeouts an agent that never answers would block these calls forever.
        s.set_read_timeout(Some(LIMIT)).unwrap();
        s.set_write_timeout(Some(LIMIT)).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut line = String::new();
        BufReader::new(&s)
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("no answer to {req:?} within {LIMIT:?}: {e}"));
        assert!(line.contains("\"ok\":false"), "{req} -> {line}");
    }
    let c = Client::new(&dir);
    assert_eq!(c.status().unwrap().vaults, 0);
    c.lock().unwrap();
    join_within(handle, "lock");
}

//! #21 faults: a node dies. Two `mamori-server` processes on one PostgreSQL database under
//! validation load; one is killed with SIGKILL mid-run. The other keeps answering every request,
//! no code is accepted twice across the kill, every acceptance a client saw has its audit event,
//! and the killed node, started again, serves. docs/reliability.md.

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::*;

const USERS: usize = 10;
/// Between one user's requests on one node: 10 users on 2 nodes make about 200 requests a
/// second, and a user's failed repeats stay below the lock threshold (100) during the run.
const PACE: Duration = Duration::from_millis(100);
const RUN: Duration = Duration::from_secs(4);

/// One validation: `Some(accepted)` for an answer, `None` when the node could not be reached.
async fn validate(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    user: &str,
    code: &str,
) -> Option<Result<bool, String>> {
    let resp = client
        .post(format!("{url}/api/v1/validate"))
        .bearer_auth(key)
        .json(&json!({"user": user, "code": code}))
        .send()
        .await
        .ok()?;
    let status = resp.status().as_u16();
    let body: serde_json::Value = match resp.json().await {
        Ok(v) => v,
        // The connection broke mid-answer: the node died while answering.
        Err(_) => return None,
    };
    if status != 200 {
        return Some(Err(format!("{status} {body}")));
    }
    Some(Ok(body["result"] == "accept"))
}

#[tokio::test]
async fn a_node_killed_under_load_loses_nothing() {
    let db = TempDatabase::create().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = [
        // The load repeats codes on purpose: failures must not lock or slow the accounts.
        ("MAMORI_LOCKOUT_LOCK_AFTER", "100"),
        ("MAMORI_LOCKOUT_DELAY_BASE_SECS", "0"),
        ("MAMORI_LIMITS_VALIDATE_PER_MINUTE", "1000000"),
        ("MAMORI_LIMITS_VALIDATE_BURST", "1000000"),
    ];
    let mut a = Server::start(dir.path(), Some(&db.url), &env);
    let b = Server::start(dir.path(), Some(&db.url), &env);

    // Node A created root (it started first and printed the setup link); both serve it.
    let root = a.root_session().await;
    let (_, _, root) = b.enroll(&root, "root-phone").await;
    let (s, v) = b
        .post("/api/v1/app-keys", Some(&root), json!({"name": "gateway"}))
        .await;
    assert_eq!(s, 201, "{v}");
    let key = v["key"].as_str().unwrap().to_string();
    let mut users = Vec::new();
    for i in 0..USERS {
        let name = format!("user{i}");
        let t = b.new_user(&root, json!({"user": name})).await;
        let (_, secret, _) = b.enroll(&t, "phone").await;
        users.push((name, secret));
    }

    // Load: every user's current code, over and over, on both nodes; node A dies at 1 s.
    let accepted: Arc<Mutex<HashMap<(String, String), usize>>> = Arc::default();
    let b_errors: Arc<Mutex<Vec<String>>> = Arc::default();
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (name, secret) in users.clone() {
        for url in [a.url.clone(), b.url.clone()] {
            let (name, secret, key, url) = (name.clone(), secret.clone(), key.clone(), url);
            let (accepted, b_errors, b_url) = (accepted.clone(), b_errors.clone(), b.url.clone());
            let client = b.client.clone();
            tasks.spawn(async move {
                while start.elapsed() < RUN {
                    // The next step's code (enrollment used the current one), accepted within the
                    // window once.
                    let c = code(&secret, now() + 30);
                    match validate(&client, &url, &key, &name, &c).await {
                        Some(Ok(true)) => {
                            *accepted
                                .lock()
                                .unwrap()
                                .entry((name.clone(), c))
                                .or_default() += 1
                        }
                        Some(Ok(false)) => tokio::time::sleep(PACE).await,
                        Some(Err(e)) => b_errors.lock().unwrap().push(format!("{url}: {e}")),
                        None if url == b_url => {
                            b_errors.lock().unwrap().push(format!("{url}: unreachable"))
                        }
                        // Node A after its death.
                        None => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
            });
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let killed = Command::new("kill")
        .args(["-KILL", &a.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }

    // Node B answered every request, before and after the kill.
    let errors = b_errors.lock().unwrap().clone();
    assert!(errors.is_empty(), "failed answers: {errors:?}");
    // No code was accepted twice, on either node.
    let accepted = accepted.lock().unwrap().clone();
    let twice: Vec<_> = accepted.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "accepted more than once: {twice:?}");
    assert!(
        accepted.len() >= USERS,
        "every user had a code accepted: {accepted:?}"
    );
    // Every acceptance a client saw has its audit event (a node may also have accepted a code
    // whose answer died with it: then there are more events, never fewer).
    let events = b.audit(&root, "kind=validate&limit=1000").await;
    let successes = events.iter().filter(|e| e["result"] == "success").count();
    assert!(
        successes >= accepted.len(),
        "{successes} audited acceptances for {} seen",
        accepted.len()
    );
    eprintln!(
        "{} acceptances seen, {successes} audited, none twice; node B answered every request",
        accepted.len()
    );

    // The killed node starts again on the same database and key, and serves.
    let _ = a.stop();
    let a = Server::start(dir.path(), Some(&db.url), &env);
    let (s, _) = a.get("/healthz", None).await;
    assert_eq!(s, 200);
    let ((name, _), c) = accepted
        .keys()
        .next()
        .map(|k| (k.clone(), k.1.clone()))
        .unwrap();
    let again = validate(&a.client, &a.url, &key, &name, &c).await;
    assert_eq!(again, Some(Ok(false)), "a used code after the restart");
}

/// #21: a server restarted (SIGTERM, as a service manager does) in the middle of a sign-in:
/// the challenge and the sessions live in the database, so the second step and the signed-in
/// session work on the new process; SQLite and PostgreSQL.
async fn flows_survive_a_restart(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = Server::start(dir.path(), backend.url(), &[]);
    let root = srv.root_session().await;
    let (_, secret, root) = srv.enroll(&root, "root-phone").await;
    let (s, v) = srv.sign_in("root").await;
    assert_eq!(s, 200, "{v}");
    let challenge = v["challenge"].as_str().unwrap().to_string();

    assert!(srv.stop(), "the server did not exit cleanly on SIGTERM");
    let srv = Server::start(dir.path(), backend.url(), &[]);

    let (s, v) = srv.get("/api/v1/me", Some(&root)).await;
    assert_eq!(s, 200, "the session did not survive the restart: {v}");
    let (s, v) = srv
        .post(
            "/api/v1/sign-in/mfa",
            None,
            json!({"challenge": challenge, "code": code(&secret, now() + 30)}),
        )
        .await;
    assert_eq!(s, 200, "the challenge did not survive the restart: {v}");
    assert!(v["token"].is_string(), "{v}");
}

#[tokio::test]
async fn flows_survive_a_restart_on_sqlite() {
    flows_survive_a_restart(Backend::Sqlite).await;
}

#[tokio::test]
async fn flows_survive_a_restart_on_postgres() {
    flows_survive_a_restart(Backend::postgres().await).await;
}

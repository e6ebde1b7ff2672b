//! #21 faults: the server stopped with SIGTERM (as a service manager stops it) while requests
//! are in flight and flows are half done.
//!
//! - Requests in flight when SIGTERM arrives are answered (graceful shutdown), none is cut,
//!   and the process then exits 0.
//! - A sign-in challenge (finished with a device code or a recovery code), an enrollment (a
//!   pending device enabled), a security-key registration and a security-key sign-in, each
//!   begun before the SIGTERM, finish after it: on SQLite on the restarted server (same data
//!   directory), on PostgreSQL on the other node.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::*;
use crate::webauthn_api::{assert_with, attest, finish_sign_in, key_challenge, new_key};

/// The server's open sockets (the listener and the connections it accepted), from `/proc`:
/// not its other files, which the database pool opens as it grows (three per SQLite
/// connection), so a count reached means connections really accepted.
fn open_sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter(|l| l.to_string_lossy().starts_with("socket:"))
                .count()
        })
        .unwrap_or(0)
}

/// A request that reports a cut connection as an error instead of panicking.
async fn send(
    client: reqwest::Client,
    url: String,
    token: Option<String>,
    body: Value,
) -> Result<(u16, Value, Instant), String> {
    let mut req = client.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.map_err(|e| format!("{e:?}"))?;
    let status = resp.status().as_u16();
    let text = resp.text().await.map_err(|e| format!("{e:?}"))?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        Instant::now(),
    ))
}

/// Password sign-ins (Argon2id with 64 MiB: the slow request) and validations sent at once,
/// SIGTERM once the server holds all their connections: every request gets its answer, some
/// of them after the signal, and the server then exits cleanly.
#[tokio::test]
async fn requests_in_flight_when_sigterm_arrives_are_answered() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = Server::start(
        dir.path(),
        None,
        &[
            ("MAMORI_PASSWORD_ARGON2_M_KIB", "65536"),
            ("MAMORI_LIMITS_SIGN_IN_PER_MINUTE", "1000"),
            ("MAMORI_LIMITS_SIGN_IN_BURST", "1000"),
            ("MAMORI_LIMITS_VALIDATE_PER_MINUTE", "1000"),
            ("MAMORI_LIMITS_VALIDATE_BURST", "1000"),
        ],
    );
    let root = srv.root_session().await;
    let (_, _, root) = srv.enroll(&root, "root-phone").await;
    let (s, v) = srv
        .post("/api/v1/app-keys", Some(&root), json!({"name": "gateway"}))
        .await;
    assert_eq!(s, 201, "{v}");
    let key = v["key"].as_str().unwrap().to_string();
    // Application keys validate ordinary users (not root).
    let alice = srv.new_user(&root, json!({"user": "alice"})).await;
    let (_, secret, _) = srv.enroll(&alice, "alice-phone").await;

    const SIGN_INS: usize = 12;
    const VALIDATIONS: usize = 4;
    let pid = srv.pid();
    let before = open_sockets(pid);
    // A fresh client: no pooled connection, so each request opens its own.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..SIGN_INS {
        tasks.push(tokio::spawn(send(
            client.clone(),
            format!("{}/api/v1/sign-in", srv.url),
            None,
            json!({"user": "root", "password": PASSWORD}),
        )));
    }
    // The next step's code: one validation is accepted, the others answered "reject" (used).
    let c = code(&secret, (now() / 30 + 1) * 30);
    for _ in 0..VALIDATIONS {
        tasks.push(tokio::spawn(send(
            client.clone(),
            format!("{}/api/v1/validate", srv.url),
            Some(key.clone()),
            json!({"user": "alice", "code": c}),
        )));
    }
    // Wait until the server has accepted every connection (one socket each), then stop it as
    // a service manager does. (A connection still in the kernel's listen queue when the
    // listener closes is reset: that is not a request in flight, and clients retry it.)
    let deadline = Instant::now() + Duration::from_secs(30);
    while open_sockets(pid) < before + SIGN_INS + VALIDATIONS {
        assert!(
            Instant::now() < deadline,
            "the server did not accept the connections"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let signalled = Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());

    let mut after_signal = 0;
    let mut accepted = 0;
    for (i, task) in tasks.into_iter().enumerate() {
        let (s, v, at) = task.await.unwrap().unwrap_or_else(|e| {
            // The server's log says what it was doing when it closed the connection.
            std::thread::sleep(Duration::from_secs(2));
            let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
            panic!("request {i} was cut by the shutdown: {e}\nserver log:\n{log}")
        });
        if i < SIGN_INS {
            assert_eq!(
                (s, v["status"].as_str()),
                (200, Some("mfa_required")),
                "{v}"
            );
        } else {
            assert_eq!(s, 200, "validation {i}: {v}");
            accepted += usize::from(v["result"] == "accept");
        }
        if at > signalled {
            after_signal += 1;
        }
    }
    assert_eq!(accepted, 1, "one code, one acceptance");
    eprintln!(
        "sigterm: {} requests in flight at SIGTERM, all answered ({after_signal} after the \
         signal)",
        SIGN_INS + VALIDATIONS
    );
    // Shows the test tested something: the sign-ins (about a second of Argon2id on two cores)
    // were still being worked on when the signal came.
    assert!(after_signal > 0, "every request finished before the signal");
    assert!(srv.stop(), "the server did not exit 0 after SIGTERM");
}

/// The flows begun on `first`, then `first` stopped with SIGTERM and the flows finished on
/// `second()` (the same data directory restarted, or another node of the same database).
async fn flows_finish_after_sigterm(backend: Backend, other_node: bool) {
    let mut env = crate::webauthn_api::env();
    env.push(("MAMORI_LIMITS_MAX_DEVICES", "8"));
    let dir = tempfile::tempdir().unwrap();
    let mut first = Server::start(dir.path(), backend.url(), &env);
    // On PostgreSQL the second node runs from the start, as in a real deployment.
    let mut second = other_node.then(|| Server::start(dir.path(), backend.url(), &env));

    let root = first.root_session().await;
    let (_, root_secret, root) = first.enroll(&root, "root-phone").await;
    let (s, v) = first
        .post("/api/v1/recovery-codes", Some(&root), json!({}))
        .await;
    assert_eq!(s, 201, "{v}");
    let recovery_code = v["codes"][0].as_str().unwrap().to_string();
    // A security key registered now, to sign in with across the stop.
    let mut key = new_key();
    let (s, begun) = first
        .post(
            "/api/v1/mfa-devices/security-key/begin",
            Some(&root),
            json!({"name": "key-1"}),
        )
        .await;
    assert_eq!(s, 200, "{begun}");
    let credential = attest(&mut key, &begun);
    let (s, v) = first
        .post(
            "/api/v1/mfa-devices/security-key/finish",
            Some(&root),
            json!({"ceremony": begun["ceremony"], "credential": credential}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let bob = first.new_user(&root, json!({"user": "bob"})).await;

    // Begun before the stop:
    // 1. a sign-in challenge to finish with a device code, 2. one to finish with a recovery
    //    code,
    let (s, v) = first.sign_in("root").await;
    assert_eq!(s, 200, "{v}");
    let challenge_code = v["challenge"].as_str().unwrap().to_string();
    let (s, v) = first.sign_in("root").await;
    assert_eq!(s, 200, "{v}");
    let challenge_recovery = v["challenge"].as_str().unwrap().to_string();
    // 3. bob's enrollment: a device created, not yet enabled,
    let (s, v) = first
        .post(
            "/api/v1/mfa-devices/virtual",
            Some(&bob),
            json!({"name": "bob-phone"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let bob_device = v["id"].as_str().unwrap().to_string();
    let bob_secret = v["secret_base32"].as_str().unwrap().to_string();
    // 4. a second security key's registration ceremony,
    let mut key2 = new_key();
    let (s, reg) = first
        .post(
            "/api/v1/mfa-devices/security-key/begin",
            Some(&root),
            json!({"name": "key-2"}),
        )
        .await;
    assert_eq!(s, 200, "{reg}");
    let reg_credential = attest(&mut key2, &reg);
    // 5. a security-key sign-in ceremony.
    let (key_challenge_id, key_begun) = key_challenge(&first, "root").await;
    let assertion = assert_with(&mut key, &key_begun);

    assert!(first.stop(), "the server did not exit 0 after SIGTERM");
    let second = match second.take() {
        Some(node) => node,
        None => Server::start(dir.path(), backend.url(), &env),
    };

    // Finished after it, each with a real answer.
    let (s, v) = second
        .post(
            "/api/v1/sign-in/mfa",
            None,
            json!({"challenge": challenge_code, "code": code(&root_secret, now() + 30)}),
        )
        .await;
    assert_eq!(s, 200, "the sign-in challenge did not survive: {v}");
    assert!(v["token"].is_string(), "{v}");
    let (s, v) = second
        .post(
            "/api/v1/sign-in/mfa",
            None,
            json!({"challenge": challenge_recovery, "code": recovery_code}),
        )
        .await;
    assert_eq!(s, 200, "the recovery-code sign-in did not survive: {v}");
    let t = now();
    let (s, v) = second
        .post(
            &format!("/api/v1/mfa-devices/{bob_device}/enable"),
            Some(&bob),
            json!({"code1": code(&bob_secret, t - 30), "code2": code(&bob_secret, t)}),
        )
        .await;
    assert_eq!(s, 200, "the enrollment did not survive: {v}");
    let (s, v) = second
        .post(
            "/api/v1/mfa-devices/security-key/finish",
            Some(&root),
            json!({"ceremony": reg["ceremony"], "credential": reg_credential}),
        )
        .await;
    assert_eq!(s, 201, "the key registration did not survive: {v}");
    let (s, v) = finish_sign_in(
        &second,
        &key_challenge_id,
        &key_begun["ceremony"],
        assertion,
    )
    .await;
    assert_eq!(s, 200, "the security-key sign-in did not survive: {v}");

    // Each finished once: the same ceremony again is refused.
    let (s, _) = second
        .post(
            "/api/v1/sign-in/mfa",
            None,
            json!({"challenge": challenge_code, "code": code(&root_secret, now() + 30)}),
        )
        .await;
    assert_eq!(s, 401, "a finished challenge was accepted again");
}

#[tokio::test]
async fn flows_begun_before_sigterm_finish_after_a_restart_on_sqlite() {
    flows_finish_after_sigterm(Backend::Sqlite, false).await;
}

#[tokio::test]
async fn flows_begun_before_sigterm_finish_on_the_other_postgres_node() {
    flows_finish_after_sigterm(Backend::postgres().await, true).await;
}

//! #19 RADIUS: FreeRADIUS's `radclient` (Debian `freeradius-utils`) against the running server
//! on loopback. PAP with the password followed by the code, the Access-Challenge with its
//! State (answered on another node of a PostgreSQL pair), code-only clients counting wrong
//! codes toward the lock exactly as sign-in does, and the packets a server must drop: a wrong
//! shared secret, no Message-Authenticator (BlastRADIUS), an unknown client.

use std::io::Write;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::json;

use super::common::*;

pub const SECRET: &str = "radius-test-shared-secret-0123";

/// A free UDP port on 127.0.0.1 (free when asked; the server binds it right after).
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A configuration file with one RADIUS client (127.0.0.1 unless `address` says otherwise) in
/// `mode`, and `extra` TOML after it.
pub fn radius_config(dir: &Path, port: u16, mode: &str, address: &str, extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let secret = dir.join("radius.secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let path = dir.join("mamori.toml");
    std::fs::write(
        &path,
        format!(
            "[radius]\nlisten = \"127.0.0.1:{port}\"\n\n[[radius.clients]]\nname = \"vpn\"\n\
             address = \"{address}\"\nsecret_file = \"{}\"\nmode = \"{mode}\"\n\n{extra}",
            secret.display()
        ),
    )
    .unwrap();
    path
}

pub struct Reply {
    /// `Access-Accept`, `Access-Reject`, `Access-Challenge`, or "" for no reply.
    pub kind: String,
    pub output: String,
}

impl Reply {
    /// The value radclient printed for `attribute` (`State = 0x…`, `Class = 0x…`, `Reply-Message = "…"`).
    fn attr(&self, attribute: &str) -> Option<String> {
        self.output.lines().find_map(|l| {
            let l = l.trim();
            l.strip_prefix(attribute)
                .and_then(|r| r.trim_start().strip_prefix('='))
                .map(|v| v.trim().trim_matches('"').to_string())
        })
    }
}

/// One Access-Request through radclient; `attributes` as radclient reads them.
pub fn radclient(port: u16, secret: &str, attributes: &str) -> Reply {
    let mut child = Command::new("radclient")
        // -D: the dictionaries of Debian's freeradius-common; -d: no raddb needed.
        .args([
            "-x",
            "-r",
            "1",
            "-t",
            "2",
            "-D",
            "/usr/share/freeradius",
            "-d",
            "/usr/share/freeradius",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .args(["auth", secret])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run radclient (apt install freeradius-utils)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(attributes.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let kind = ["Access-Accept", "Access-Reject", "Access-Challenge"]
        .into_iter()
        .find(|k| output.contains(&format!("Received {k}")))
        .unwrap_or("")
        .to_string();
    Reply { kind, output }
}

pub fn pap(user: &str, password: &str) -> String {
    format!(
        "User-Name = \"{user}\", User-Password = \"{password}\", Message-Authenticator = 0x00\n"
    )
}

/// Root with a device (administrators must have one) and `users` with a device each;
/// returns (root's token, the users' secrets).
async fn accounts(srv: &Server, users: &[&str]) -> (String, Vec<String>) {
    let token = srv.root_session().await;
    let (_, _, root) = srv.enroll(&token, "root-phone").await;
    let mut secrets = Vec::new();
    for u in users {
        let t = srv.new_user(&root, json!({"user": u})).await;
        let (_, secret, _) = srv.enroll(&t, "phone").await;
        secrets.push(secret);
    }
    (root, secrets)
}

#[tokio::test]
async fn pap_with_the_code_after_the_password_accepts_once_and_sends_the_reply_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    let conf = radius_config(
        dir.path(),
        port,
        "password_code",
        "127.0.0.1",
        "[[radius.replies]]\nuser = \"alice\"\nclass = \"vpn-admins\"\nfilter_id = \"full\"\n\
         [[radius.replies]]\ngroup = \"vpn-users\"\nreply_message = \"Welcome, VPN user\"\n",
    );
    let srv = Server::start(
        &dir.path().join("data"),
        None,
        &[("MAMORI_CONFIG", conf.to_str().unwrap())],
    );
    let (root, secrets) = accounts(&srv, &["alice", "bob"]).await;
    let (alice, bob) = (&secrets[0], &secrets[1]);
    // #18's groups: alice is a member of vpn-users, whose reply attributes she gets too.
    let (s, _, v) = srv
        .call(
            "PUT",
            "/api/v1/users/alice/groups/vpn-users",
            Some(&root),
            None,
        )
        .await;
    assert_eq!(s, 201, "{v}");
    // enroll() used the current step; the next one is accepted within the drift window.
    let next = code(alice, now() + 30);

    let r = radclient(port, SECRET, &pap("alice", &format!("{PASSWORD}{next}")));
    assert_eq!(r.kind, "Access-Accept", "{}", r.output);
    assert_eq!(r.attr("Filter-Id").as_deref(), Some("full"), "{}", r.output);
    assert_eq!(
        r.attr("Reply-Message").as_deref(),
        Some("Welcome, VPN user"),
        "{}",
        r.output
    );
    assert!(r.output.contains("Class"), "{}", r.output);
    assert!(
        r.output.contains("Message-Authenticator"),
        "signed answer: {}",
        r.output
    );

    // The same code again: a replay.
    let r = radclient(port, SECRET, &pap("alice", &format!("{PASSWORD}{next}")));
    assert_eq!(r.kind, "Access-Reject", "{}", r.output);
    // A wrong password with a right code, a right password with a wrong code, no code.
    let bob_next = code(bob, now() + 30);
    let r = radclient(
        port,
        SECRET,
        &pap("bob", &format!("wrong-password{bob_next}")),
    );
    assert_eq!(r.kind, "Access-Reject", "{}", r.output);
    let r = radclient(
        port,
        SECRET,
        &pap("bob", &format!("{PASSWORD}{}", wrong_code(bob, now()))),
    );
    assert_eq!(r.kind, "Access-Reject", "{}", r.output);
    assert!(
        r.attr("Reply-Message")
            .unwrap_or_default()
            .contains("Wrong"),
        "{}",
        r.output
    );
    let r = radclient(port, SECRET, &pap("bob", PASSWORD));
    assert_eq!(r.kind, "Access-Reject", "{}", r.output);
    // bob's code was never spent by those: it still works.
    let r = radclient(port, SECRET, &pap("bob", &format!("{PASSWORD}{bob_next}")));
    assert_eq!(r.kind, "Access-Accept", "{}", r.output);

    // Dropped, no answer at all: a wrong shared secret, and no Message-Authenticator.
    let r = radclient(
        port,
        "not-the-shared-secret-at-all",
        &pap("alice", PASSWORD),
    );
    assert_eq!(r.kind, "", "{}", r.output);
    let r = radclient(
        port,
        SECRET,
        &format!("User-Name = \"alice\", User-Password = \"{PASSWORD}\"\n"),
    );
    // (radclient adds a Message-Authenticator only when asked to, as above.)
    assert!(!r.output.contains("Message-Authenticator"), "{}", r.output);
    assert_eq!(
        r.kind, "",
        "answered without a Message-Authenticator: {}",
        r.output
    );

    // Sign-in's own audit events, with the RADIUS client as the user agent.
    let events = srv.audit(&root, "user=alice").await;
    let radius: Vec<_> = events
        .iter()
        .filter(|e| e["user_agent"] == "radius:vpn")
        .collect();
    assert!(
        radius
            .iter()
            .any(|e| e["kind"] == "sign_in.mfa" && e["result"] == "success"),
        "{events:?}"
    );
    assert!(
        radius
            .iter()
            .any(|e| e["kind"] == "sign_in.mfa" && e["result"] != "success"),
        "the replay is audited: {events:?}"
    );
}

#[tokio::test]
async fn a_challenge_started_on_one_node_is_answered_on_the_other() {
    let db = Backend::postgres().await;
    let dir = tempfile::tempdir().unwrap();
    let (port_a, port_b) = (free_udp_port(), free_udp_port());
    let conf_a = radius_config(&dir.path().join("a"), port_a, "challenge", "127.0.0.1", "");
    let conf_b = radius_config(&dir.path().join("b"), port_b, "challenge", "127.0.0.1", "");
    let a = Server::start(
        &dir.path().join("a/data"),
        db.url(),
        &[("MAMORI_CONFIG", conf_a.to_str().unwrap())],
    );
    // The second node shares the first one's server key (as every node of a cluster does).
    std::fs::create_dir_all(dir.path().join("b/data")).unwrap();
    for f in std::fs::read_dir(&a.data_dir).unwrap() {
        let f = f.unwrap();
        if f.file_name().to_string_lossy().contains("key") {
            std::fs::copy(f.path(), dir.path().join("b/data").join(f.file_name())).unwrap();
        }
    }
    let b = Server::start(
        &dir.path().join("b/data"),
        db.url(),
        &[("MAMORI_CONFIG", conf_b.to_str().unwrap())],
    );
    let (_, secrets) = accounts(&a, &["alice", "bob"]).await;

    let r = radclient(port_a, SECRET, &pap("alice", PASSWORD));
    assert_eq!(r.kind, "Access-Challenge", "{}", r.output);
    assert!(
        r.attr("Reply-Message")
            .unwrap_or_default()
            .contains("Verification code"),
        "{}",
        r.output
    );
    let state = r.attr("State").expect("a State");

    // bob cannot use alice's State, even with his own right code.
    let r2 = radclient(
        port_b,
        SECRET,
        &format!(
            "User-Name = \"bob\", User-Password = \"{}\", State = {state}, Message-Authenticator = 0x00\n",
            code(&secrets[1], now() + 30)
        ),
    );
    assert_eq!(r2.kind, "Access-Reject", "{}", r2.output);

    let r = radclient(
        port_b,
        SECRET,
        &format!(
            "User-Name = \"alice\", User-Password = \"{}\", State = {state}, Message-Authenticator = 0x00\n",
            code(&secrets[0], now() + 30)
        ),
    );
    assert_eq!(r.kind, "Access-Accept", "{}", r.output);
    // The State is spent with the sign-in challenge it stands for.
    let r = radclient(
        port_a,
        SECRET,
        &format!(
            "User-Name = \"alice\", User-Password = \"{}\", State = {state}, Message-Authenticator = 0x00\n",
            code(&secrets[0], now() + 30)
        ),
    );
    assert_eq!(r.kind, "Access-Reject", "{}", r.output);
    drop((a, b));
}

#[tokio::test]
async fn code_only_clients_count_wrong_codes_toward_the_lock_like_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    let conf = radius_config(dir.path(), port, "code_only", "127.0.0.1", "");
    let srv = Server::start(
        &dir.path().join("data"),
        None,
        &[
            ("MAMORI_CONFIG", conf.to_str().unwrap()),
            ("MAMORI_LOCKOUT_LOCK_AFTER", "3"),
            ("MAMORI_LOCKOUT_DELAY_AFTER", "10"),
        ],
    );
    let (_, secrets) = accounts(&srv, &["alice"]).await;
    let alice = &secrets[0];
    let r = radclient(port, SECRET, &pap("alice", &code(alice, now() + 30)));
    assert_eq!(r.kind, "Access-Accept", "{}", r.output);
    for _ in 0..3 {
        let r = radclient(port, SECRET, &pap("alice", &wrong_code(alice, now())));
        assert_eq!(r.kind, "Access-Reject", "{}", r.output);
    }
    // Locked: RADIUS says so, and so does the sign-in API with a right code.
    let r = radclient(port, SECRET, &pap("alice", &code(alice, now() + 30)));
    assert_eq!(r.kind, "Access-Reject", "{}", r.output);
    assert!(
        r.attr("Reply-Message")
            .unwrap_or_default()
            .contains("locked"),
        "{}",
        r.output
    );
    let (s, v) = srv.sign_in("alice").await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = srv
        .post(
            "/api/v1/sign-in/mfa",
            None,
            json!({"challenge": v["challenge"], "code": code(alice, now())}),
        )
        .await;
    assert_eq!(v["error"]["code"], "account_locked", "{s} {v}");
    // root answers as an unknown user for a client without allow_root.
    let r = radclient(port, SECRET, &pap("root", "123456"));
    assert_eq!(r.kind, "Access-Reject", "{}", r.output);
}

#[tokio::test]
async fn requests_from_unknown_clients_are_dropped_and_bad_configuration_refuses_start() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    let conf = radius_config(dir.path(), port, "password_code", "10.0.0.0/8", "");
    let srv = Server::start(
        &dir.path().join("data"),
        None,
        &[("MAMORI_CONFIG", conf.to_str().unwrap())],
    );
    let r = radclient(port, SECRET, &pap("root", &format!("{PASSWORD}123456")));
    assert_eq!(r.kind, "", "an unknown client got an answer: {}", r.output);
    let (_, body) = srv.get("/metrics", None).await;
    let text = body.as_str().unwrap_or_default().to_string();
    assert!(
        text.contains("mamori_radius_dropped_total{reason=\"unknown_client\"}"),
        "{text}"
    );
    drop(srv);

    // A short secret refuses start with one line naming the client and the file.
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let conf = radius_config(&bad, free_udp_port(), "password_code", "127.0.0.1", "");
    std::fs::write(bad.join("radius.secret"), "short\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mamori-server"))
        .arg("serve")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(bad.join("data"))
        .env("MAMORI_CONFIG", &conf)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("radius client vpn") && err.contains("16 bytes"),
        "{err}"
    );
}

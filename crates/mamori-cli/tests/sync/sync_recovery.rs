//! The waiting period of alternative-factor recovery seen from the authenticator (#15 recovery;
//! docs/recovery.md, "Waiting period"), end to end with the real `mamori` binary and a real
//! `mamori-server` on SQLite: root, whose authenticator syncs, has someone prove its email
//! address (code read from an in-test SMTP sink) and phone number (code read from the server log
//! of the `log` phone gateway). The server only starts a pending recovery; `mamori sync` warns of
//! it, `mamori sync cancel-recovery` cancels it, and once the waiting period is over the server
//! still refuses to complete it: proving email and phone again only starts a new waiting period,
//! and the mailed cancel link is dead.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::sync_common::{now, totp, Device, Server, SERVER_PASSWORD};
use serde_json::{json, Value};

const EMAIL: &str = "root@example.test";
const PHONE: &str = "+81 90 4321 8765";
const WAIT_SECS: u64 = 6;

/// A plain SMTP server on 127.0.0.1 that keeps every message (the server's `smtp.security =
/// "none"`, meant for exactly this kind of local sink).
#[derive(Clone)]
struct SmtpSink {
    port: u16,
    mails: Arc<Mutex<Vec<String>>>,
}

impl SmtpSink {
    fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let sink = SmtpSink {
            port: listener.local_addr().unwrap().port(),
            mails: Arc::default(),
        };
        let mails = sink.mails.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { break };
                let mails = mails.clone();
                std::thread::spawn(move || session(conn, &mails));
            }
        });
        sink
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("MAMORI_SMTP_HOST".into(), "127.0.0.1".into()),
            ("MAMORI_SMTP_PORT".into(), self.port.to_string()),
            ("MAMORI_SMTP_SECURITY".into(), "none".into()),
            (
                "MAMORI_SMTP_FROM".into(),
                "mamori <mamori@example.test>".into(),
            ),
        ]
    }

    /// The body (quoted-printable decoded) of the `n`-th (1-based) mail whose subject contains
    /// `subject`, waiting for it.
    fn nth(&self, subject: &str, n: usize) -> String {
        for _ in 0..300 {
            let found: Vec<String> = self
                .mails
                .lock()
                .unwrap()
                .iter()
                .filter(|m| {
                    m.lines()
                        .take_while(|l| !l.is_empty())
                        .any(|l| l.starts_with("Subject:") && l.contains(subject))
                })
                .cloned()
                .collect();
            if let Some(m) = found.get(n - 1) {
                let body = m.split_once("\r\n\r\n").map_or("", |(_, b)| b);
                return if m.contains("Content-Transfer-Encoding: quoted-printable") {
                    decode_qp(body)
                } else {
                    body.to_string()
                };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("mail {n} about {subject:?} did not arrive");
    }
}

/// One SMTP conversation: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT.
fn session(conn: TcpStream, mails: &Mutex<Vec<String>>) {
    let mut out = conn.try_clone().unwrap();
    let mut lines = BufReader::new(conn);
    let mut say = |s: &str| out.write_all(format!("{s}\r\n").as_bytes());
    if say("220 sink ESMTP").is_err() {
        return;
    }
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        let answer = match verb.as_str() {
            "EHLO" => "250-sink\r\n250 8BITMIME",
            "DATA" => {
                if say("354 go ahead").is_err() {
                    return;
                }
                let mut data = String::new();
                loop {
                    let mut l = String::new();
                    if lines.read_line(&mut l).unwrap_or(0) == 0 {
                        return;
                    }
                    if l == ".\r\n" {
                        break;
                    }
                    // Dot-stuffing (RFC 5321 section 4.5.2).
                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                }
                mails.lock().unwrap().push(data);
                "250 queued"
            }
            "QUIT" => {
                let _ = say("221 bye");
                return;
            }
            _ => "250 ok",
        };
        if say(answer).is_err() {
            return;
        }
    }
}

/// Quoted-printable decoding (RFC 2045 section 6.7): soft line breaks and `=XX` escapes.
fn decode_qp(s: &str) -> String {
    let s = s.replace("=\r\n", "");
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn six_digits(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_else(|| panic!("no 6-digit code in {text}"))
        .to_string()
}

/// The server's log (its standard error), beside the data directory.
fn server_log(server: &Server) -> PathBuf {
    server.data_dir.parent().unwrap().join("server.log")
}

/// The code of the `n`-th (1-based) phone message for `purpose` written by the `log` phone
/// gateway (colours stripped: the log is text for a terminal).
fn phone_code(server: &Server, purpose: &str, n: usize) -> String {
    let needle = format!("\"{purpose}\"");
    for _ in 0..300 {
        let log = std::fs::read_to_string(server_log(server)).unwrap_or_default();
        let found: Vec<String> = log
            .lines()
            .map(strip_ansi)
            .filter(|l| l.contains("phone gateway `log`") && l.contains(&needle))
            .filter(|l| l.contains(&PHONE.replace(' ', "")))
            .filter_map(|l| l.split("code=").nth(1).map(six_digits))
            .collect();
        if let Some(c) = found.get(n - 1) {
            return c.clone();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no phone code {n} for {purpose} in the server log");
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `mamori-server --data-dir DATA admin ARGS` on the server host (next to `mamori`).
fn admin(data_dir: &Path, args: &[&str]) -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_mamori")).with_file_name("mamori-server");
    let out = Command::new(bin)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("admin")
        .args(args)
        .env_remove("MAMORI_CONFIG")
        .output()
        .expect("run mamori-server admin");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "admin {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Password, then email code, then phone code (the `n`-th of each): the phone step's answer.
fn prove_email_and_phone(server: &Server, sink: &SmtpSink, n: usize) -> (u16, Value) {
    let (s, v) = server.call(
        "POST",
        "/api/v1/sign-in",
        None,
        json!({"user": "root", "password": SERVER_PASSWORD}),
    );
    assert_eq!(
        (s, v["status"].as_str()),
        (200, Some("mfa_required")),
        "{v}"
    );
    let challenge = v["challenge"].as_str().unwrap().to_string();
    let (s, v) = server.call(
        "POST",
        "/api/v1/sign-in/recovery",
        None,
        json!({"challenge": challenge}),
    );
    assert_eq!(s, 202, "{v}");
    let code = six_digits(&sink.nth("Your sign-in code", n));
    let (s, v) = server.call(
        "POST",
        "/api/v1/sign-in/recovery/email",
        None,
        json!({"challenge": challenge, "code": code}),
    );
    assert_eq!(s, 202, "{v}");
    let code = phone_code(server, "recovery_sign_in", n);
    server.call(
        "POST",
        "/api/v1/sign-in/recovery/phone",
        None,
        json!({"challenge": challenge, "code": code}),
    )
}

#[test]
fn sync_warns_of_a_pending_recovery_and_cancel_recovery_stops_it() {
    let sink = SmtpSink::start();
    let mut env = sink.env();
    for (k, v) in [
        ("MAMORI_PHONE_PROVIDER", "log"),
        (
            "MAMORI_RECOVERY_WAITING_PERIOD_SECS",
            &WAIT_SECS.to_string(),
        ),
        ("MAMORI_LIMITS_SIGN_IN_BURST", "100"),
    ] {
        env.push((k.into(), v.to_string()));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = Server::start(&env);
    let mfa = server.root_with_mfa(1);
    let out = admin(
        &server.data_dir,
        &[
            "set-contacts",
            "root",
            "--email",
            EMAIL,
            "--phone",
            PHONE,
            "--verified",
        ],
    );
    assert!(out.contains("(verified)"), "{out}");

    // Root's authenticator syncs (a sync device: another working factor).
    let laptop = Device::new("laptop-R");
    laptop.setup(&server, &totp(&mfa[0], now()));
    let quiet = laptop.run(&["sync"]).ok();
    assert!(!quiet.stderr.contains("WARNING"), "{}", quiet.stderr);

    // Someone with root's password, mailbox and phone proves email and phone: only a pending
    // recovery, no session.
    let (s, v) = prove_email_and_phone(&server, &sink, 1);
    assert_eq!((s, v["status"].as_str()), (202, Some("pending")), "{v}");
    assert!(v.get("token").is_none(), "{v}");
    let ready_at = v["ready_at"].as_u64().unwrap();
    let notice = sink.nth("account recovery started", 1);
    let link = notice
        .split("/recovery/cancel?token=")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect::<String>();
    assert_eq!(link.len(), 43, "{notice}");

    // The authenticator's sync carries the notice, naming the command.
    let warned = laptop.run(&["sync"]).ok();
    assert!(
        warned
            .stderr
            .contains("WARNING: a recovery of your account")
            && warned.stderr.contains("mamori sync cancel-recovery"),
        "{}",
        warned.stderr
    );
    assert!(warned.stdout.contains("Synced:"), "{}", warned.stdout);

    // The command cancels it, once; the warning is gone.
    let help = laptop.run(&["sync", "--help"]).ok();
    assert!(help.stdout.contains("cancel-recovery"), "{}", help.stdout);
    let done = laptop.run(&["sync", "cancel-recovery"]).ok();
    assert_eq!(
        done.stdout.trim(),
        "Cancelled the pending recovery of your account"
    );
    let again = laptop.run(&["sync", "cancel-recovery"]).ok();
    assert_eq!(
        again.stdout.trim(),
        "No recovery of your account is pending"
    );
    let quiet = laptop.run(&["sync"]).ok();
    assert!(!quiet.stderr.contains("WARNING"), "{}", quiet.stderr);
    let audit = server.sql(
        "SELECT result || ' ' || detail FROM audit WHERE kind = 'recovery.cancel' ORDER BY id",
    );
    assert_eq!(audit.trim(), "success sync device laptop-R", "{audit}");

    // After the waiting period the cancelled recovery cannot be completed: proving email and
    // phone again grants nothing and only starts a new waiting period (with new notices).
    while now() <= ready_at {
        std::thread::sleep(Duration::from_millis(200));
    }
    let (s, v) = prove_email_and_phone(&server, &sink, 2);
    assert_eq!((s, v["status"].as_str()), (202, Some("pending")), "{v}");
    assert!(v.get("token").is_none(), "{v}");
    assert!(v["ready_at"].as_u64().unwrap() > ready_at, "{v}");
    sink.nth("account recovery started", 2);
    let states = server.sql("SELECT state FROM recovery_pending ORDER BY created_at, state");
    assert_eq!(
        states.split_whitespace().collect::<Vec<_>>(),
        ["cancelled", "pending"],
        "{states}"
    );
    // The first notice's cancel link is dead (single use, and its recovery is over).
    let dead =
        reqwest::blocking::get(format!("{}/recovery/cancel?token={link}", server.url)).unwrap();
    assert_eq!(dead.status().as_u16(), 404);
    // The sync token is still good: nothing was granted, so nothing was revoked.
    let warned = laptop.run(&["sync"]).ok();
    assert!(
        warned
            .stderr
            .contains("WARNING: a recovery of your account"),
        "{}",
        warned.stderr
    );
}

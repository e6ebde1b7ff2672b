//! An SMTP sink: a small SMTP server speaking enough of RFC 5321 for a client to deliver
//! (greeting, EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) that keeps every message it
//! receives, and a quoted-printable decoder to read the bodies.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// One message as received.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body, dot-unstuffed, with CRLF line ends.
    pub data: String,
}

impl Mail {
    /// A header's value (unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded.split("\r\n").find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    /// The body, decoded when quoted-printable.
    pub fn body(&self) -> String {
        let body = self
            .data
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or("");
        let qp = self
            .header("Content-Transfer-Encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("quoted-printable"));
        if qp {
            decode_qp(body)
        } else {
            body.to_string()
        }
    }
}

/// Quoted-printable decoding (RFC 2045 section 6.7): soft line breaks and `=XX` escapes.
pub fn decode_qp(s: &str) -> String {
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

/// The sink: listening on 127.0.0.1 on a free port, on a thread of its own (a relay keeps
/// answering whatever the test does: [`crate::serve_on_own_thread`]).
#[derive(Clone)]
pub struct SmtpSink {
    pub port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
    /// How long a `MAIL` command waits for its answer, in milliseconds ([`SmtpSink::slow_down`]).
    delay_ms: Arc<AtomicU64>,
    _stop: crate::StopOnDrop,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let mails = Arc::new(Mutex::new(Vec::new()));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let (store, delay) = (mails.clone(), delay_ms.clone());
        let (addr, stop) = crate::serve_on_own_thread("smtp-sink", |listener| async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let (store, delay) = (store.clone(), delay.clone());
                tokio::spawn(async move {
                    let _ = session(sock, store, delay).await;
                });
            }
        });
        SmtpSink {
            port: addr.port(),
            mails,
            delay_ms,
            _stop: stop,
        }
    }

    /// From now on, answers each `MAIL` command `delay` late (zero: at once again), as a
    /// relay far away or under load does: a message is kept only if its sender is still
    /// there to finish the conversation.
    pub fn slow_down(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.delay_ms.store(ms, Ordering::SeqCst);
    }

    /// Server environment that sends through this sink (plain SMTP on loopback).
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("MAMORI_SMTP_HOST".into(), "127.0.0.1".into()),
            ("MAMORI_SMTP_PORT".into(), self.port.to_string()),
            ("MAMORI_SMTP_SECURITY".into(), "none".into()),
            (
                "MAMORI_SMTP_FROM".into(),
                "mamori <mfa@example.test>".into(),
            ),
        ]
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    /// Waits (up to 20 s) for a message to `to` whose subject contains `subject`.
    pub async fn wait_for(&self, to: &str, subject: &str) -> Mail {
        for _ in 0..400 {
            if let Some(m) = self.mails().into_iter().find(|m| {
                m.to.iter().any(|t| t == to)
                    && m.header("Subject").is_some_and(|s| s.contains(subject))
            }) {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let got: Vec<_> = self
            .mails()
            .iter()
            .map(|m| (m.to.clone(), m.header("Subject")))
            .collect();
        panic!("no mail to {to} about {subject:?}; received: {got:?}");
    }
}

fn addr(arg: &str) -> String {
    let a = arg.split_once(':').map(|(_, v)| v).unwrap_or("").trim();
    let a = a.split_whitespace().next().unwrap_or("");
    a.trim_start_matches('<').trim_end_matches('>').to_string()
}

async fn session(
    sock: tokio::net::TcpStream,
    store: Arc<Mutex<Vec<Mail>>>,
    delay_ms: Arc<AtomicU64>,
) -> std::io::Result<()> {
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"220 sink.test ESMTP test sink\r\n").await?;
    let mut from = String::new();
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_string();
        let verb = cmd
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => {
                w.write_all(b"250-sink.test\r\n250-8BITMIME\r\n250 SIZE 1000000\r\n")
                    .await?
            }
            "HELO" => w.write_all(b"250 sink.test\r\n").await?,
            "MAIL" => {
                let delay = delay_ms.load(Ordering::SeqCst);
                if delay > 0 {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                }
                from = addr(&cmd);
                to.clear();
                w.write_all(b"250 OK\r\n").await?
            }
            "RCPT" => {
                to.push(addr(&cmd));
                w.write_all(b"250 OK\r\n").await?
            }
            "DATA" => {
                w.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if r.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    // Dot-unstuffing (RFC 5321 section 4.5.2).
                    let l = line.strip_prefix('.').unwrap_or(&line);
                    data.push_str(l);
                }
                store.lock().unwrap().push(Mail {
                    from: from.clone(),
                    to: std::mem::take(&mut to),
                    data,
                });
                w.write_all(b"250 OK queued\r\n").await?
            }
            "RSET" => {
                to.clear();
                w.write_all(b"250 OK\r\n").await?
            }
            "NOOP" => w.write_all(b"250 OK\r\n").await?,
            "QUIT" => {
                w.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => w.write_all(b"502 not implemented\r\n").await?,
        }
    }
}

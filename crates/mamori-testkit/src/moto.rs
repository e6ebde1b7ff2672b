//! moto, the AWS emulator (PyPI `moto[server]`), as a real server process on a loopback port,
//! and a recording TCP relay in front of it.
//!
//! moto accepts any MFA code (it does not know the seeds it hands out), so a test that wants to
//! know the codes were right reads them from the wire through [`Recorder`] and checks them
//! against the seed itself.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::process::free_port;

/// How long moto may take to start (Python imports every service's models): far above what a
/// loaded machine needs.
const START_LIMIT: Duration = Duration::from_secs(60);

/// A running `moto_server`; killed on drop.
pub struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    /// Starts `python3 -m moto.server` on a free loopback port and waits until it answers.
    /// Its output goes to `log`.
    pub fn start(log: &Path) -> Moto {
        let port = free_port();
        let out = std::fs::File::create(log).expect("moto log");
        let err = out.try_clone().expect("moto log");
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("cannot start moto: python3 -m pip install 'moto[server]' (see README Tests)");
        let mut moto = Moto { child, port };
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Some(status) = moto.child.try_wait().expect("wait for moto") {
                panic!(
                    "moto exited ({status}) before answering: {}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            if moto.answers() {
                return moto;
            }
            assert!(
                Instant::now() < deadline,
                "moto did not answer within {START_LIMIT:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn answers(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let req = format!(
            "GET /moto-api/data.json HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        );
        if s.write_all(req.as_bytes()).is_err() {
            return false;
        }
        let mut head = [0u8; 12];
        s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP relay on a free loopback port to `upstream`, keeping every byte clients send.
pub struct Recorder {
    port: u16,
    sent: Arc<Mutex<Vec<u8>>>,
}

impl Recorder {
    /// Starts relaying to `127.0.0.1:upstream` (threads end with the test process).
    pub fn start(upstream: u16) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind recorder");
        let port = listener.local_addr().expect("addr").port();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let keep = sent.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (c2, s2) = (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                let keep = keep.clone();
                std::thread::spawn(move || pump(client, server, Some(keep)));
                std::thread::spawn(move || pump(s2, c2, None));
            }
        });
        Recorder { port, sent }
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every value of form field `name` in the requests so far (AWS's query protocol sends
    /// `Action=…&Name=value` bodies), percent-decoded, in order.
    pub fn form_values(&self, name: &str) -> Vec<String> {
        let bytes = self.sent.lock().expect("lock").clone();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let prefix = format!("{name}=");
        text.split(['&', '\r', '\n', '?', ' '])
            .filter_map(|field| field.strip_prefix(&prefix))
            .map(percent_decode)
            .collect()
    }

    /// Forgets what was recorded.
    pub fn clear(&self) {
        self.sent.lock().expect("lock").clear();
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, keep: Option<Arc<Mutex<Vec<u8>>>>) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if let Some(k) = &keep {
                    k.lock().expect("lock").extend_from_slice(&buf[..n]);
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Runs the real AWS CLI (`aws`, PyPI `awscli`) against `endpoint` with throwaway credentials
/// and returns its standard output; the test fails if it does.
pub fn aws_cli(endpoint: &str, home: &Path, args: &[&str]) -> String {
    let out = Command::new("aws")
        .args(args)
        .args(["--endpoint-url", endpoint, "--output", "json"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", home.join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            home.join("no-aws-credentials"),
        )
        .stdin(Stdio::null())
        .output()
        .expect("cannot run the AWS CLI: python3 -m pip install awscli (see README Tests)");
    assert!(
        out.status.success(),
        "aws {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// An IAM user with an access key in moto: `(access key id, secret access key)`.
pub fn user_with_key(endpoint: &str, home: &Path, user: &str) -> (String, String) {
    aws_cli(endpoint, home, &["iam", "create-user", "--user-name", user]);
    let key: serde_json::Value = serde_json::from_str(&aws_cli(
        endpoint,
        home,
        &["iam", "create-access-key", "--user-name", user],
    ))
    .expect("create-access-key JSON");
    (
        key["AccessKey"]["AccessKeyId"]
            .as_str()
            .expect("id")
            .to_string(),
        key["AccessKey"]["SecretAccessKey"]
            .as_str()
            .expect("secret")
            .to_string(),
    )
}

/// The Base32 seed moto holds for virtual MFA device `serial`. moto (unlike AWS) lists a
/// device's seed, Base64-encoded, which lets a test check codes against the emulator's own copy.
pub fn virtual_device_seed(endpoint: &str, home: &Path, serial: &str) -> String {
    let list: serde_json::Value = serde_json::from_str(&aws_cli(
        endpoint,
        home,
        &["iam", "list-virtual-mfa-devices"],
    ))
    .expect("list-virtual-mfa-devices JSON");
    let dev = list["VirtualMFADevices"]
        .as_array()
        .expect("devices")
        .iter()
        .find(|d| d["SerialNumber"] == serial)
        .unwrap_or_else(|| panic!("moto has no device {serial}: {list}"));
    let b64 = dev["Base32StringSeed"]
        .as_str()
        .expect("moto lists the seed");
    String::from_utf8(
        data_encoding::BASE64
            .decode(b64.as_bytes())
            .expect("Base64"),
    )
    .expect("text")
}

//! A sandbox for driving the real `mamori` binary: its own vault, password file and agent
//! directory, cheap key derivation, no display, no terminal.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long one run of `mamori` may take before the test fails as hung: far above what a
/// loaded machine needs (the tests use fast key derivation), far below a CI job's timeout.
pub const RUN_LIMIT: Duration = Duration::from_secs(60);

pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub vault: PathBuf,
    pub password_file: PathBuf,
    pub runtime: PathBuf,
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "failed: {}", self.stderr);
        self
    }
    pub fn fails(self) -> Self {
        assert_ne!(self.code, 0, "succeeded: {}", self.stdout);
        assert_eq!(
            self.stderr.lines().count(),
            1,
            "one line: {:?}",
            self.stderr
        );
        self
    }
}

impl From<Output> for Out {
    fn from(o: Output) -> Self {
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8(o.stdout).expect("utf-8"),
            stderr: String::from_utf8(o.stderr).expect("utf-8"),
        }
    }
}

impl Sandbox {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let vault = dir.path().join("vault.mamori");
        let password_file = dir.path().join("password");
        std::fs::write(&password_file, "correct horse\n").expect("write");
        let runtime = dir.path().join("run");
        std::fs::create_dir(&runtime).expect("mkdir");
        Sandbox {
            dir,
            vault,
            password_file,
            runtime,
        }
    }

    /// The command with the sandbox environment, and the password file.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.bare(args);
        c.env("MAMORI_PASSWORD_FILE", &self.password_file);
        c
    }

    /// The command without a password.
    pub fn bare(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mamori"));
        c.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("MAMORI_TEST_KDF", "fast")
            .env("MAMORI_VAULT", &self.vault)
            .env("XDG_RUNTIME_DIR", &self.runtime)
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Out {
        output_within(&mut self.cmd(args)).into()
    }

    pub fn run_bare(&self, args: &[&str]) -> Out {
        output_within(&mut self.bare(args)).into()
    }

    pub fn init(&self) {
        self.run(&["init"]).ok();
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Never leave an agent behind. Not `run_bare`: a panic here while a failed test unwinds
        // would abort the whole test binary.
        let _ = try_output_within(&mut self.bare(&["lock"]));
    }
}

/// Runs `cmd` like `Command::output`, failing the test if it has not exited and closed its
/// output within `RUN_LIMIT` (`output` alone would wait forever for a hung process).
#[track_caller]
pub fn output_within(cmd: &mut Command) -> Output {
    try_output_within(cmd).unwrap_or_else(|e| panic!("{e}"))
}

fn try_output_within(cmd: &mut Command) -> Result<Output, String> {
    let what = format!("{:?}", cmd.get_args().collect::<Vec<_>>());
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run mamori {what}: {e}"))?;
    // Drained on threads so a child filling a pipe cannot block on us while we poll it.
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("mamori {what} did not exit within {RUN_LIMIT:?}"));
            }
            Err(e) => return Err(format!("cannot wait for mamori {what}: {e}")),
        }
    };
    // A process it started (the unlock agent) could hold the pipes open after it exits.
    let left = deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(1);
    let collect = |rx: mpsc::Receiver<Vec<u8>>, name: &str| {
        rx.recv_timeout(left)
            .map_err(|_| format!("mamori {what} exited but its {name} stayed open"))
    };
    Ok(Output {
        status,
        stdout: collect(stdout, "stdout")?,
        stderr: collect(stderr, "stderr")?,
    })
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        let _ = tx.send(bytes);
    });
    rx
}

/// Replaces UUIDs and the given timestamps with placeholders so JSON can be compared exactly.
pub fn scrub(s: &str, times: &[u64]) -> String {
    let mut out = String::new();
    for line in s.lines() {
        let mut l = line.to_string();
        if let Some(start) = l.find("\"id\": \"") {
            let from = start + 7;
            if let Some(len) = l[from..].find('"') {
                l.replace_range(from..from + len, "ID");
            }
        }
        for t in times {
            l = l.replace(&t.to_string(), "TIME");
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

pub fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).expect("read")
}

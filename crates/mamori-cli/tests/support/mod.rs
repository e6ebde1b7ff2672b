//! A sandbox for driving the real `mamori` binary: its own vault, password file and agent
//! directory, cheap key derivation, no display, no terminal.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

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
        self.cmd(args).output().expect("run mamori").into()
    }

    pub fn run_bare(&self, args: &[&str]) -> Out {
        self.bare(args).output().expect("run mamori").into()
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
        // Never leave an agent behind.
        let _ = self.run_bare(&["lock"]);
    }
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

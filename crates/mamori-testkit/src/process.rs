//! A real `mamori-server` process: started with `serve` on a port of its own, watched on its
//! stdout until it says where it listens, stopped with SIGTERM when dropped.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (free when asked; a test binds it soon after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `BIN serve --listen LISTEN --data-dir DIR`, without the caller's `MAMORI_CONFIG` (a
/// developer's config file must not change what a test sees).
pub fn serve_command(binary: &Path, listen: &str, data_dir: &Path) -> Command {
    let mut cmd = Command::new(binary);
    cmd.arg("serve")
        .arg("--listen")
        .arg(listen)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("MAMORI_CONFIG");
    cmd
}

/// The `mamori-server` binary for tests of another crate, which cannot name it with
/// `CARGO_BIN_EXE_*`: the one built next to `own_binary` (that crate's `CARGO_BIN_EXE_*`),
/// built on demand, or the one in `$MAMORI_SYNC_BENCH_BIN_DIR` (benchmarks of release builds).
pub fn server_binary_next_to(own_binary: &Path) -> PathBuf {
    if let Some(dir) = std::env::var_os("MAMORI_SYNC_BENCH_BIN_DIR") {
        return Path::new(&dir).join("mamori-server");
    }
    let bin = own_binary.with_file_name("mamori-server");
    if !bin.exists() {
        // `cargo test -p mamori-cli` builds only that crate's binaries.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "-p", "mamori-server", "--bin", "mamori-server"])
            .status()
            .expect("run cargo build -p mamori-server");
        assert!(st.success(), "cannot build mamori-server");
    }
    bin
}

/// A started server process.
pub struct ServerProcess {
    child: Child,
    /// The address of the `listening on` line (`http://127.0.0.1:PORT`).
    pub listening: String,
    /// The `public URL:` line, if printed before `listening on`.
    pub public_url: Option<String>,
    /// The `setup link:` line (first start only).
    pub setup_link: Option<String>,
}

impl ServerProcess {
    /// Spawns `cmd` with stdout read here and stderr appended to `log`, and waits (60 s) for
    /// its `listening on` line; panics with the log if it never comes.
    pub fn spawn(mut cmd: Command, log: &Path) -> ServerProcess {
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        cmd.stdout(Stdio::piped()).stderr(Stdio::from(log_file));
        let mut child = cmd.spawn().expect("start mamori-server");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Read to the end, not only to `listening on`: a full pipe would block the server.
        std::thread::spawn(move || {
            let mut setup = None;
            let mut public = None;
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(l) = line.strip_prefix("setup link: ") {
                    setup = Some(l.to_string());
                }
                if let Some(u) = line.strip_prefix("public URL: ") {
                    public = Some(u.to_string());
                }
                if let Some(u) = line.strip_prefix("listening on ") {
                    if !sent {
                        let _ = tx.send((u.to_string(), public.clone(), setup.clone()));
                        sent = true;
                    }
                }
            }
        });
        let (listening, public_url, setup_link) = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                let log = std::fs::read_to_string(log).unwrap_or_default();
                panic!("server did not start; log:\n{log}")
            });
        ServerProcess {
            child,
            listening,
            public_url,
            setup_link,
        }
    }

    /// The process id (to look at its open files in `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits (5 s) for the exit, then kills; returns whether it exited
    /// successfully by itself.
    pub fn stop(&mut self) -> bool {
        if let Ok(Some(status)) = self.child.try_wait() {
            return status.success();
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

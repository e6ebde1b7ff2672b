//! A real OpenSSH server (Debian's `openssh-server`) on a loopback port asks for the code with
//! keyboard-interactive authentication through PAM and pam_mamori; the client is paramiko
//! (Debian's `python3-paramiko`), answering the prompt as a person's SSH client would.
//!
//! sshd names its PAM service after the program, so it runs through a symlink named like the
//! test's service file, and reads only the configuration, host key and PID file the test wrote.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mamori_testkit::process::free_port;
use mamori_testkit::{code as totp, now};

use crate::common::*;

struct Sshd {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Sshd {
    fn start(dir: &Path, service: &Service) -> Sshd {
        std::fs::create_dir_all("/run/sshd").unwrap(); // sshd's privilege-separation directory
        let key = dir.join("host_ed25519");
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .expect("run ssh-keygen (apt install openssh-server)");
        assert!(st.success());
        let port = free_port();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\n\
                 UsePAM yes\nKbdInteractiveAuthentication yes\nPasswordAuthentication no\n\
                 PubkeyAuthentication no\nAuthenticationMethods keyboard-interactive\n\
                 PermitRootLogin yes\nStrictModes no\nLogLevel VERBOSE\n",
                key.display(),
                dir.join("sshd.pid").display()
            ),
        )
        .unwrap();
        // The PAM service is sshd's program name: a symlink with the service file's name.
        let program = dir.join(&service.name);
        std::os::unix::fs::symlink("/usr/sbin/sshd", &program).unwrap();
        let log = dir.join("sshd.log");
        let child = Command::new(&program)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start sshd");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not listen: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Sshd { child, port, log }
    }

    /// Signs in as `user` answering every keyboard-interactive prompt with `code`, then runs
    /// `id -un`. Returns (signed in, the prompts seen and the command's output).
    fn sign_in(&self, user: &str, code: &str) -> (bool, String) {
        const CLIENT: &str = r#"
import sys, paramiko
port, user, code = int(sys.argv[1]), sys.argv[2], sys.argv[3]
prompts = []
def answer(title, instructions, asked):
    prompts.extend(p for p, _ in asked)
    return [code for _ in asked]
t = paramiko.Transport(("127.0.0.1", port))
t.connect()
try:
    t.auth_interactive(user, answer)
except paramiko.AuthenticationException:
    print("prompts:", prompts)
    print("refused")
    sys.exit(1)
ch = t.open_session()
ch.exec_command("id -un")
print("prompts:", prompts)
print("ran as:", ch.makefile().read().decode().strip())
sys.exit(ch.recv_exit_status())
"#;
        let out = Command::new("/usr/bin/python3")
            .arg("-c")
            .arg(CLIENT)
            .arg(self.port.to_string())
            .arg(user)
            .arg(code)
            .output()
            .expect("run python3 with paramiko (apt install python3-paramiko)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn ssh_keyboard_interactive_asks_for_the_code_and_accepts_it_once() {
    let f = Fixture::start();
    let alice = f.user_with_device("alice");
    // The local account is root (it exists on every test machine); it is alice at mamori.
    let conf = f.config(&f.server.listening, "map = root alice\n");
    let service = Service::new(&format!(
        "auth required {} config={}\naccount required pam_permit.so\n\
         session required pam_permit.so\n",
        module_path().display(),
        conf.display()
    ));
    let sshd = Sshd::start(f.dir.path(), &service);

    let code = totp(&alice, now());
    let (ok, out) = sshd.sign_in("root", &code);
    let log = || std::fs::read_to_string(&sshd.log).unwrap_or_default();
    assert!(ok, "signed in refused: {out}\nsshd:\n{}", log());
    assert!(out.contains("Verification code"), "the prompt: {out}");
    assert!(out.contains("ran as: root"), "{out}");

    let (ok, out) = sshd.sign_in("root", &code);
    assert!(!ok, "a replayed code let SSH in: {out}");
    assert!(out.contains("refused"), "{out}");
    assert!(!log().contains(&code), "sshd's log never holds the code");
}

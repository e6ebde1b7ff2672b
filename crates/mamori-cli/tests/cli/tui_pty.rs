//! The real binary in a real pseudo-terminal (tmux, 80x24): `mamori tui` shows the right codes,
//! typing filters, `q` quits, it locks when idle; password prompts and confirmations work on a
//! terminal and echo nothing. Needs `tmux` (Debian package `tmux`).

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::Sandbox;

const GH_URI: &str = "otpauth://totp/GitHub:alice?secret=JBSWY3DPEHPK3PXP&issuer=GitHub";
const RFC_URI: &str =
    "otpauth://totp/RFC:sha1?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=RFC&digits=8";

struct Tmux {
    socket: std::path::PathBuf,
    /// The TUI's stderr, then "exit=N" when it ends.
    log: std::path::PathBuf,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux is required for this test: apt-get install tmux")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "t"]).stdout).into_owned()
    }

    /// Waits until the screen satisfies `ok` (the TUI redraws four times a second).
    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn code_at(s: &Sandbox, uri: &str, t: u64) -> String {
    s.run(&["otp", "--at", &t.to_string(), uri])
        .ok()
        .stdout
        .trim()
        .to_string()
}

fn start(s: &Sandbox, extra: &str) -> Tmux {
    s.init();
    s.run(&["add", "--uri", GH_URI]).ok();
    s.run(&["add", "--uri", RFC_URI]).ok();
    start_cmd(s, &format!("tui {extra}"), true)
}

/// Runs `mamori ARGS` in an 80x24 tmux pane; stderr and then "exit=N" go to the log file.
fn start_cmd(s: &Sandbox, args: &str, password_file: bool) -> Tmux {
    let tmux = Tmux {
        socket: s.path("tmux.sock"),
        log: s.path("tui.log"),
    };
    let pw = if password_file {
        format!("MAMORI_PASSWORD_FILE={}", s.password_file.display())
    } else {
        String::new()
    };
    let command = format!(
        "env -i PATH=/usr/bin:/bin TERM=xterm-256color MAMORI_TEST_KDF=fast MAMORI_VAULT={} {pw} XDG_RUNTIME_DIR={} {} {args} 2>{log}; echo exit=$? >>{log}",
        s.vault.display(),
        s.runtime.display(),
        env!("CARGO_BIN_EXE_mamori"),
        log = tmux.log.display(),
    );
    let out = tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "80",
        "-y",
        "24",
        &command,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tmux.cmd(&["set-option", "-t", "t", "remain-on-exit", "on"]);
    tmux
}

/// Waits for the TUI to end; returns what it wrote on stderr. It must exit with status 0.
fn wait_exit(tmux: &Tmux, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = std::fs::read_to_string(&tmux.log).unwrap_or_default();
        if log.contains("exit=") {
            assert!(log.contains("exit=0"), "mamori tui failed {what}: {log}");
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "mamori tui did not exit {what}: {log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn tui_locks_itself_when_idle() {
    let s = Sandbox::new();
    let tmux = start(&s, "--idle 1s");
    let log = wait_exit(&tmux, "after the idle time");
    assert!(log.contains("Locked after being idle"), "{log}");
}

#[test]
fn tui_in_a_pseudo_terminal_shows_live_codes() {
    let s = Sandbox::new();
    let tmux = start(&s, "");

    let screen = tmux.wait_for("the account list", |sc| sc.contains("2 accounts"));
    // The screen must show the codes of the moment it was captured (or the step before it,
    // if the step changed between drawing and capturing).
    let t = now();
    for uri in [GH_URI, RFC_URI] {
        let ok = [t.saturating_sub(30), t, t + 1]
            .iter()
            .any(|&at| screen.contains(&code_at(&s, uri, at)));
        assert!(ok, "no current code for {uri} on screen:\n{screen}");
    }
    assert!(
        screen.contains("GitHub  alice") && screen.contains("q quit"),
        "{screen}"
    );

    // Type to filter.
    tmux.cmd(&["send-keys", "-t", "t", "-l", "rfc"]);
    let filtered = tmux.wait_for("the filter", |sc| sc.contains("filter: rfc_"));
    assert!(
        filtered.contains("1 of 2") && !filtered.contains("GitHub  alice"),
        "{filtered}"
    );

    // Esc clears the filter, q quits and gives the terminal back.
    tmux.cmd(&["send-keys", "-t", "t", "Escape"]);
    tmux.wait_for("the cleared filter", |sc| sc.contains("2 accounts"));
    tmux.cmd(&["send-keys", "-t", "t", "q"]);
    assert_eq!(wait_exit(&tmux, "on q"), "exit=0\n");
}

#[test]
fn passwords_and_confirmations_are_asked_on_the_terminal() {
    let s = Sandbox::new();
    // init asks twice; a mismatch changes nothing.
    let tmux = start_cmd(&s, "init", false);
    tmux.wait_for("the new-password prompt", |sc| sc.contains("New password:"));
    tmux.cmd(&["send-keys", "-t", "t", "-l", "correct horse"]);
    tmux.cmd(&["send-keys", "-t", "t", "Enter"]);
    tmux.wait_for("the repeat prompt", |sc| {
        sc.contains("Repeat the new password:")
    });
    tmux.cmd(&["send-keys", "-t", "t", "-l", "correct horse"]);
    tmux.cmd(&["send-keys", "-t", "t", "Enter"]);
    let log = wait_exit(&tmux, "after init");
    assert!(log.contains("Created an empty vault"), "{log}");
    assert!(
        !tmux.screen().contains("correct horse"),
        "passwords are not echoed"
    );
    drop(tmux);
    s.run(&["add", "--uri", GH_URI]).ok();

    // A command asks for the password (not echoed) and works with it.
    std::fs::remove_file(s.path("tui.log")).expect("rm");
    let tmux = start_cmd(&s, "remove github", false);
    tmux.wait_for("the password prompt", |sc| sc.contains("Password for"));
    tmux.cmd(&["send-keys", "-t", "t", "-l", "correct horse"]);
    tmux.cmd(&["send-keys", "-t", "t", "Enter"]);
    // remove asks for confirmation on stderr; answer yes.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&tmux.log)
        .unwrap_or_default()
        .contains("[y/N]")
    {
        assert!(Instant::now() < deadline, "no confirmation question");
        std::thread::sleep(Duration::from_millis(50));
    }
    tmux.cmd(&["send-keys", "-t", "t", "y", "Enter"]);
    wait_exit(&tmux, "after remove");
    let screen = tmux.screen();
    assert!(screen.contains("Removed GitHub (alice)"), "{screen}");
    assert!(
        !screen.contains("correct horse"),
        "passwords are not echoed"
    );
    drop(tmux);
    assert!(s.run(&["list"]).ok().stderr.contains("No accounts"));
}

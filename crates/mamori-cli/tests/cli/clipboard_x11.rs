//! `--copy` on a real X11 display (Xvfb, Debian package `xvfb`): the code lands on the
//! clipboard, is cleared after the hold time, and is left alone if something else was copied
//! meanwhile.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::Sandbox;

const GH_URI: &str = "otpauth://totp/GitHub:alice?secret=JBSWY3DPEHPK3PXP&issuer=GitHub";

struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    fn start() -> Xvfb {
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-nolisten",
                "tcp",
                "-screen",
                "0",
                "640x480x24",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb is required for this test: apt-get install xvfb");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("display number");
        let display = format!(":{}", line.trim());
        Xvfb { child, display }
    }

    fn clipboard(&self) -> arboard::Clipboard {
        // arboard reads DISPLAY from the process environment, which the other tests in this
        // binary share: they start `mamori` with a cleared environment (`Sandbox`, `env -i`) or
        // for `mamori otp`, which opens no display, so this setting reaches none of them.
        std::env::set_var("DISPLAY", &self.display);
        std::env::remove_var("WAYLAND_DISPLAY");
        arboard::Clipboard::new().expect("clipboard")
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts the hidden holder directly with a short hold time.
fn hold(s: &Sandbox, x: &Xvfb, code: &str, secs: &str) -> Child {
    let mut c = s.bare(&["__clipboard-hold", "--clear-after", secs]);
    c.env("DISPLAY", &x.display)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{code}\n").as_bytes())
        .expect("write");
    let mut out = child.stdout.take().expect("stdout");
    let mut first = [0u8; 3];
    out.read_exact(&mut first).expect("answer");
    assert_eq!(&first, b"ok\n");
    child
}

#[test]
fn copy_then_clear_on_x11() {
    let x = Xvfb::start();
    let s = Sandbox::new();
    s.init();
    s.run(&["add", "--uri", GH_URI]).ok();

    // Through the real command: the code is printed and copied.
    let mut c = s.cmd(&["code", "github", "--at", "59", "--copy"]);
    c.env("DISPLAY", &x.display);
    let out: crate::support::Out = c.output().expect("run").into();
    let out = out.ok();
    assert!(
        out.stderr.contains("copied to the clipboard"),
        "{}",
        out.stderr
    );
    let code = out.stdout.trim().to_string();
    let mut cb = x.clipboard();
    wait_until("the code on the clipboard", || {
        cb.get_text().ok().as_deref() == Some(code.as_str())
    });

    // The holder clears its code when the time is up...
    let mut h = hold(&s, &x, "111111", "1s");
    wait_until("the held code", || {
        cb.get_text().ok().as_deref() == Some("111111")
    });
    assert!(h.wait().expect("wait").success());
    assert_ne!(cb.get_text().ok().as_deref(), Some("111111"), "cleared");

    // ...but leaves alone what the user copied meanwhile.
    let mut h = hold(&s, &x, "222222", "1s");
    wait_until("the held code", || {
        cb.get_text().ok().as_deref() == Some("222222")
    });
    cb.set_text("something else").expect("set");
    assert!(h.wait().expect("wait").success());
    assert_eq!(cb.get_text().ok().as_deref(), Some("something else"));
}

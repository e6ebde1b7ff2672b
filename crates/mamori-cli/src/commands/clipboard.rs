//! `--copy` and the TUI's Enter: the code goes to the clipboard through a small detached helper
//! process (`mamori __clipboard-hold`). On X11 and Wayland the clipboard's content is served by
//! the process that set it, so the helper must outlive the command; it clears the clipboard
//! after 20 seconds if it still holds the code.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use anyhow::Context;
use zeroize::Zeroizing;

use crate::cli::ClipboardHoldArgs;

fn has_display() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// Copies `code`; returns a sentence for the user (success or why not).
pub fn try_copy(code: &str) -> Result<String, String> {
    if !has_display() {
        return Err("no display (DISPLAY and WAYLAND_DISPLAY are unset): the code was not copied to the clipboard".into());
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot copy: {e}"))?;
    let mut child = Command::new(exe)
        .arg("__clipboard-hold")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .current_dir("/")
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot copy: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(format!("{code}\n").as_bytes());
    }
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    match line.trim() {
        "ok" => Ok("copied to the clipboard; cleared in 20 s".into()),
        "" => Err("could not copy to the clipboard".into()),
        err => Err(format!("could not copy to the clipboard: {err}")),
    }
}

/// For `code --copy`: reports on stderr.
pub fn copy(code: &str) {
    match try_copy(code) {
        Ok(msg) => eprintln!("mamori: {msg}"),
        Err(msg) => eprintln!("mamori: {msg}"),
    }
}

/// The helper process: set, report, wait, clear if unchanged.
pub fn hold(args: ClipboardHoldArgs) -> anyhow::Result<()> {
    let mut input = Zeroizing::new(String::new());
    std::io::stdin()
        .take(256)
        .read_to_string(&mut input)
        .context("no code on standard input")?;
    let code = Zeroizing::new(input.trim().to_string());
    let mut clipboard = match arboard::Clipboard::new().and_then(|mut c| {
        c.set_text(code.as_str())?;
        Ok(c)
    }) {
        Ok(c) => c,
        Err(e) => {
            println!("{e}");
            return Ok(());
        }
    };
    println!("ok");
    std::io::stdout().flush().ok();
    std::thread::sleep(args.clear_after);
    if clipboard.get_text().ok().as_deref() == Some(code.as_str()) {
        let _ = clipboard.clear();
    }
    Ok(())
}

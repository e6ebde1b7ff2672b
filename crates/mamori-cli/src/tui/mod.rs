//! `mamori tui`: the state machine ([`App`]) and drawing ([`App::render`]) are plain functions of
//! the entries, the key pressed and the time, so they are tested with ratatui's TestBackend;
//! [`run`] only wires them to the terminal and the vault.

mod app;

pub use app::{Action, App};

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ratatui::crossterm::event::{self, Event, KeyEventKind};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};

use crate::cli::{GlobalArgs, TuiArgs};
use crate::commands::{clipboard, now_unix, session};

/// Puts the terminal back however the loop ends.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = disable_raw_mode();
        let _ = execute!(std::io::stdout(), LeaveAlternateScreen);
    }
}

pub fn run(g: &GlobalArgs, args: TuiArgs) -> anyhow::Result<()> {
    if !std::io::stdout().is_terminal() {
        bail!("mamori tui needs a terminal; use `mamori code` in scripts");
    }
    let vf = session::vault_file(g)?;
    let unlock = session::unlock(g, &vf)?;
    let opened = vf.open(&unlock)?;
    let mut app = App::new(opened.vault.entries().to_vec());

    enable_raw_mode().context("cannot switch the terminal to raw mode")?;
    let _guard = TerminalGuard;
    execute!(std::io::stdout(), EnterAlternateScreen)?;
    let mut terminal =
        ratatui::Terminal::new(ratatui::backend::CrosstermBackend::new(std::io::stdout()))?;
    let mut last_key = Instant::now();
    let outcome = loop {
        let now = now_unix()?;
        terminal.draw(|f| app.render(f, now))?;
        if last_key.elapsed() >= args.idle {
            break "Locked after being idle.";
        }
        if !event::poll(Duration::from_millis(250))? {
            continue;
        }
        let Event::Key(key) = event::read()? else {
            continue;
        };
        if key.kind != KeyEventKind::Press {
            continue;
        }
        last_key = Instant::now();
        match app.on_key(key, now_unix()?) {
            Action::None => {}
            Action::Quit => break "",
            Action::Copy(code) => {
                let msg = match clipboard::try_copy(&code) {
                    Ok(m) | Err(m) => m,
                };
                app.set_status(msg);
            }
            Action::NextHotp(id) => {
                // Saved before shown (RFC 4226 section 7.2), exactly as `mamori code` does.
                let now = now_unix()?;
                match vf.update(&unlock, &mut session::rng(), |v| v.next_hotp(id, now)) {
                    Ok((code, opened)) => {
                        app.set_entries(opened.vault.entries().to_vec());
                        app.show_hotp(id, code.to_string());
                    }
                    Err(e) => app.set_status(e.to_string()),
                }
            }
        }
    };
    drop(terminal);
    drop(_guard);
    if !outcome.is_empty() {
        eprintln!("{outcome}");
    }
    Ok(())
}

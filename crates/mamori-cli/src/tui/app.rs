//! The TUI's state and drawing, independent of the real terminal.

use std::collections::HashMap;

use mamori_otp::{Generator, OtpKind};
use mamori_vault::Entry;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState};
use ratatui::Frame;
use uuid::Uuid;

/// What the loop must do after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing beyond redrawing.
    None,
    /// Leave.
    Quit,
    /// Copy this code to the clipboard.
    Copy(String),
    /// Advance (and save) this HOTP account's counter, then show its code.
    NextHotp(Uuid),
}

/// The TUI's state.
pub struct App {
    entries: Vec<Entry>,
    filter: String,
    filtering: bool,
    selected: usize,
    status: String,
    hotp_codes: HashMap<Uuid, String>,
}

impl App {
    pub fn new(entries: Vec<Entry>) -> Self {
        let mut app = App {
            entries: Vec::new(),
            filter: String::new(),
            filtering: false,
            selected: 0,
            status: String::new(),
            hotp_codes: HashMap::new(),
        };
        app.set_entries(entries);
        app
    }

    /// Replaces the entries (after a save), keeping the order rules: favorites, then by name.
    pub fn set_entries(&mut self, mut entries: Vec<Entry>) {
        entries.sort_by_key(|e| {
            (
                !e.favorite,
                e.issuer.to_lowercase(),
                e.account.to_lowercase(),
            )
        });
        self.entries = entries;
        self.clamp();
    }

    pub fn set_status(&mut self, msg: impl Into<String>) {
        self.status = msg.into();
    }

    /// Shows the code just generated for an HOTP account (already saved).
    pub fn show_hotp(&mut self, id: Uuid, code: String) {
        self.hotp_codes.insert(id, code);
        self.status = "HOTP counter advanced and saved".into();
    }

    /// The entries the filter lets through, in display order.
    pub fn visible(&self) -> Vec<&Entry> {
        let q = self.filter.to_lowercase();
        self.entries
            .iter()
            .filter(|e| {
                q.is_empty()
                    || e.issuer.to_lowercase().contains(&q)
                    || e.account.to_lowercase().contains(&q)
            })
            .collect()
    }

    fn clamp(&mut self) {
        let n = self.visible().len();
        self.selected = self.selected.min(n.saturating_sub(1));
    }

    fn selected_entry(&self) -> Option<&Entry> {
        self.visible().get(self.selected).copied()
    }

    /// Keys: arrows move; Enter copies; Esc clears the filter (or quits); `/` or any other
    /// character starts filtering; outside the filter, `q` quits and `n` advances an HOTP
    /// counter. Ctrl-C always quits. `now` is the time of the key press (for Enter).
    pub fn on_key(&mut self, key: KeyEvent, now: u64) -> Action {
        if key.modifiers.contains(KeyModifiers::CONTROL) {
            return match key.code {
                KeyCode::Char('c') | KeyCode::Char('d') => Action::Quit,
                _ => Action::None,
            };
        }
        match key.code {
            KeyCode::Up => self.selected = self.selected.saturating_sub(1),
            KeyCode::Down => {
                self.selected = self.selected.saturating_add(1);
                self.clamp();
            }
            KeyCode::Enter => {
                return match self.selected_entry() {
                    None => Action::None,
                    Some(e) if e.params.kind == OtpKind::Hotp => match self.hotp_codes.get(&e.id) {
                        Some(code) => Action::Copy(code.clone()),
                        None => {
                            self.status = "press n to generate the next HOTP code".into();
                            Action::None
                        }
                    },
                    Some(e) => match Generator::new(e.secret(), e.params) {
                        Ok(g) => Action::Copy(g.at_time(now).to_string()),
                        Err(err) => {
                            self.status = err.to_string();
                            Action::None
                        }
                    },
                };
            }
            KeyCode::Esc => {
                if self.filtering || !self.filter.is_empty() {
                    self.filter.clear();
                    self.filtering = false;
                    self.clamp();
                } else {
                    return Action::Quit;
                }
            }
            KeyCode::Backspace => {
                self.filter.pop();
                if self.filter.is_empty() {
                    self.filtering = false;
                }
                self.clamp();
            }
            KeyCode::Char(c) if !self.filtering => match c {
                'q' => return Action::Quit,
                'n' => {
                    return match self.selected_entry() {
                        Some(e) if e.params.kind == OtpKind::Hotp => Action::NextHotp(e.id),
                        Some(_) => {
                            self.status =
                                "n advances HOTP counters; this account is time-based".into();
                            Action::None
                        }
                        None => Action::None,
                    };
                }
                '/' => self.filtering = true,
                c => {
                    self.filtering = true;
                    self.filter.push(c);
                    self.selected = 0;
                }
            },
            KeyCode::Char(c) => {
                self.filter.push(c);
                self.selected = 0;
                self.clamp();
            }
            _ => {}
        }
        Action::None
    }

    /// Draws the whole screen for time `now`.
    pub fn render(&self, f: &mut Frame, now: u64) {
        let area = f.area();
        let narrow = area.width < 60;
        let [top, body, help, status] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(1),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .areas(area);

        let visible = self.visible();
        let title = if self.filtering || !self.filter.is_empty() {
            format!(
                "mamori  filter: {}_  ({} of {})",
                self.filter,
                visible.len(),
                self.entries.len()
            )
        } else {
            format!("mamori  {} accounts", self.entries.len())
        };
        f.render_widget(Paragraph::new(Line::from(title).bold()), top);

        let rows: Vec<Row> = visible
            .iter()
            .map(|e| {
                let (code, left) = self.code_cells(e, now, narrow);
                let name = if narrow || e.account.is_empty() || e.issuer.is_empty() {
                    e.display_name()
                } else {
                    format!("{}  {}", e.issuer, e.account)
                };
                let star = if e.favorite { "*" } else { " " };
                Row::new(vec![
                    Cell::from(format!("{star}{name}")),
                    Cell::from(code).bold(),
                    Cell::from(left),
                ])
            })
            .collect();
        let widths = if narrow {
            [
                Constraint::Min(8),
                Constraint::Length(10),
                Constraint::Length(4),
            ]
        } else {
            [
                Constraint::Min(20),
                Constraint::Length(12),
                Constraint::Length(16),
            ]
        };
        let table = Table::new(rows, widths)
            .column_spacing(1)
            .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
        let mut state = TableState::default().with_selected(Some(self.selected));
        if visible.is_empty() {
            let msg = if self.entries.is_empty() {
                "No accounts yet: add one with `mamori add`."
            } else {
                "No account matches the filter (Esc clears it)."
            };
            f.render_widget(Paragraph::new(msg), body);
        } else {
            f.render_stateful_widget(table, body, &mut state);
        }

        let help_text = if narrow {
            "Enter copy n HOTP / find q quit"
        } else {
            "Up/Down select  Enter copy  n next HOTP code  / filter  Esc clear  q quit"
        };
        f.render_widget(Paragraph::new(help_text).dim(), help);
        f.render_widget(Paragraph::new(self.status.as_str()), status);
    }

    /// The code and countdown cells for one entry.
    fn code_cells(&self, e: &Entry, now: u64, narrow: bool) -> (String, String) {
        if e.params.kind == OtpKind::Hotp {
            let code = self
                .hotp_codes
                .get(&e.id)
                .cloned()
                .unwrap_or_else(|| "(n)".into());
            return (
                code,
                if narrow {
                    "#".into()
                } else {
                    format!("#{}", e.params.counter)
                },
            );
        }
        let Ok(g) = Generator::new(e.secret(), e.params) else {
            return ("error".into(), String::new());
        };
        let code = g.at_time(now).to_string();
        let left = g.seconds_left(now);
        if narrow {
            return (code, format!("{left:>2}s"));
        }
        // A bar of 10 cells that empties over the period.
        let period = e.params.period.max(1);
        let filled = usize::try_from(left.saturating_mul(10) / period)
            .unwrap_or(10)
            .min(10);
        (
            code,
            format!(
                "{}{} {left:>2}s",
                "█".repeat(filled),
                "░".repeat(10 - filled)
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mamori_otp::{OtpParams, Secret};
    use mamori_vault::{NewEntry, Vault};
    use ratatui::backend::TestBackend;
    use ratatui::crossterm::event::KeyEvent;
    use ratatui::Terminal;

    fn entries() -> Vec<Entry> {
        let mut v = Vault::new();
        let mut rng = rand::thread_rng();
        let rfc = Secret::from_bytes(b"12345678901234567890".to_vec()).expect("secret");
        let mut eight = OtpParams::totp();
        eight.digits = 8;
        v.add(
            NewEntry::new("RFC 6238", "sha1@example.com", rfc.clone(), eight),
            &mut rng,
            1,
        )
        .expect("add");
        v.add(
            NewEntry::new("GitHub", "alice", rfc.clone(), OtpParams::totp()),
            &mut rng,
            1,
        )
        .expect("add");
        v.add(
            NewEntry::new("RFC 4226", "counter", rfc, OtpParams::hotp(0)),
            &mut rng,
            1,
        )
        .expect("add");
        v.entries().to_vec()
    }

    fn screen(app: &App, w: u16, h: u16, now: u64) -> String {
        let mut t = Terminal::new(TestBackend::new(w, h)).expect("terminal");
        t.draw(|f| app.render(f, now)).expect("draw");
        let buf = t.backend().buffer().clone();
        let mut out = String::new();
        for y in 0..h {
            for x in 0..w {
                out.push_str(buf[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn shows_every_code_with_countdown_on_80x24() {
        let app = App::new(entries());
        let s = screen(&app, 80, 24, 59);
        // RFC 6238 appendix B at T = 59: 94287082 (8 digits), 287082 (6 digits).
        assert!(s.contains("94287082"), "{s}");
        assert!(s.contains("287082"), "{s}");
        assert!(s.contains(" 1s"), "{s}");
        assert!(s.contains("GitHub  alice"), "{s}");
        assert!(
            s.contains("(n)") && s.contains("#0"),
            "HOTP shows no code until n: {s}"
        );
        assert!(s.contains("3 accounts") && s.contains("q quit"), "{s}");
        // T = 1111111111: 14050471 (RFC 6238), 29 s left of 30: nine of ten bar cells.
        let later = screen(&app, 80, 24, 1_111_111_111);
        assert!(
            later.contains("14050471") && later.contains("050471"),
            "{later}"
        );
        assert!(later.contains("█████████░ 29s"), "{later}");
    }

    #[test]
    fn narrow_terminal_still_shows_names_and_codes() {
        let app = App::new(entries());
        let s = screen(&app, 32, 10, 59);
        assert!(s.contains("94287082"), "{s}");
        assert!(s.contains(" 1s"), "{s}");
        assert!(s.contains("GitHub"), "{s}");
        assert!(s.contains("q quit"), "{s}");
        for line in s.lines() {
            assert_eq!(line.chars().count(), 32);
        }
    }

    #[test]
    fn typing_filters_and_keys_act() {
        let mut app = App::new(entries());
        for c in "git".chars() {
            assert_eq!(app.on_key(key(KeyCode::Char(c)), 59), Action::None);
        }
        assert_eq!(app.visible().len(), 1);
        let s = screen(&app, 80, 24, 59);
        assert!(s.contains("filter: git_") && !s.contains("94287082"), "{s}");
        // While filtering, q and n are letters.
        app.on_key(key(KeyCode::Char('q')), 59);
        assert_eq!(app.visible().len(), 0);
        app.on_key(key(KeyCode::Backspace), 59);
        // Enter copies the code of the time of the key press (RFC 6238 appendix B, T = 59).
        assert_eq!(
            app.on_key(key(KeyCode::Enter), 59),
            Action::Copy("287082".into())
        );
        app.on_key(key(KeyCode::Esc), 59);
        assert_eq!(app.visible().len(), 3);
        // Order: by issuer; select the HOTP row and press n.
        let names: Vec<String> = app.visible().iter().map(|e| e.issuer.clone()).collect();
        assert_eq!(names, ["GitHub", "RFC 4226", "RFC 6238"]);
        app.on_key(key(KeyCode::Down), 59);
        let id = app.visible()[1].id;
        assert_eq!(
            app.on_key(key(KeyCode::Char('n')), 59),
            Action::NextHotp(id)
        );
        assert_eq!(
            app.on_key(key(KeyCode::Enter), 59),
            Action::None,
            "no HOTP code yet"
        );
        app.show_hotp(id, "755224".into());
        assert_eq!(
            app.on_key(key(KeyCode::Enter), 59),
            Action::Copy("755224".into())
        );
        assert!(screen(&app, 80, 24, 59).contains("755224"));
        assert_eq!(app.on_key(key(KeyCode::Char('q')), 59), Action::Quit);
        assert_eq!(
            app.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL), 59),
            Action::Quit
        );
    }

    #[test]
    fn empty_vault_says_what_to_do() {
        let app = App::new(Vec::new());
        assert!(screen(&app, 80, 24, 0).contains("mamori add"));
    }
}

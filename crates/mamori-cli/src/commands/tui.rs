//! `mamori tui` (see crate::tui for the state and drawing).
use crate::cli::{GlobalArgs, TuiArgs};

pub fn run(_g: &GlobalArgs, _args: TuiArgs) -> anyhow::Result<()> {
    anyhow::bail!("the TUI is not built yet")
}

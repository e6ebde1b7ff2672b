//! `mamori unlock`, `mamori lock` and the hidden agent process they start and stop.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use mamori_vault::agent::{self, Agent, Client};
use mamori_vault::Unlock;

use super::session;
use crate::cli::{AgentArgs, GlobalArgs, UnlockArgs};

/// How long `unlock` waits for a new agent to say it is ready: binding a socket takes
/// milliseconds, so this only ends a hung start.
const AGENT_START_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

fn start_agent(timeout: std::time::Duration) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the mamori executable")?;
    let mut child = Command::new(exe)
        .args(["__agent", "--timeout", &format!("{}s", timeout.as_secs())])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .current_dir("/")
        // Its own process group: a Ctrl-C in this terminal does not reach it.
        .process_group(0)
        .spawn()
        .context("cannot start the unlock agent")?;
    // Read on a thread so that an agent that neither answers nor exits cannot hang `unlock`.
    let (tx, rx) = std::sync::mpsc::channel();
    if let Some(out) = child.stdout.take() {
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = tx.send(BufReader::new(out).read_line(&mut line).map(|_| line));
        });
    }
    let line = match rx.recv_timeout(AGENT_START_LIMIT) {
        Ok(read) => read.context("the unlock agent did not start")?,
        // The sender is gone only if the agent's stdout could not be taken.
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => String::new(),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            // Not left running half-started: it would hold the socket a retry needs.
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "the unlock agent did not start within {} s",
                AGENT_START_LIMIT.as_secs()
            );
        }
    };
    match line.trim() {
        "ready" => Ok(()),
        "" => bail!("the unlock agent did not start"),
        err => bail!("the unlock agent did not start: {err}"),
    }
}

pub fn unlock(g: &GlobalArgs, args: UnlockArgs) -> anyhow::Result<()> {
    let vf = session::vault_file(g)?;
    let pw = session::password(g, vf.path())?;
    let opened = vf.open(&Unlock::Password(pw))?;
    let client = Client::new(agent::default_dir());
    let started = if client.status().is_err() {
        start_agent(args.timeout)?;
        true
    } else {
        false
    };
    client.put(&opened.header.vault_id, &opened.key)?;
    let st = client.status()?;
    eprintln!(
        "Unlocked {} (agent pid {}; locks after {} s without use{}). `mamori lock` locks now.",
        vf.path().display(),
        st.pid,
        st.idle_timeout,
        if started {
            ""
        } else {
            ", as set when it started"
        }
    );
    Ok(())
}

pub fn lock() -> anyhow::Result<()> {
    let client = Client::new(agent::default_dir());
    if client.socket().exists() && client.lock().is_ok() {
        eprintln!("Locked: the agent forgot its keys and stopped.");
    } else {
        eprintln!("No unlock agent was running.");
    }
    Ok(())
}

pub fn serve(args: AgentArgs) -> anyhow::Result<()> {
    let bound = Agent::bind(&agent::default_dir(), args.timeout);
    let mut out = std::io::stdout();
    match bound {
        Ok(a) => {
            writeln!(out, "ready")?;
            out.flush()?;
            a.serve()?;
            Ok(())
        }
        Err(e) => {
            writeln!(out, "{e}")?;
            Err(e.into())
        }
    }
}

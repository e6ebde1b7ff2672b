//! `mamori sync …`: multi-device, end-to-end-encrypted sync through mamori-server (the rules and
//! the protocol live in the `mamori-sync` crate; docs/sync-protocol.md). Also the auto-sync
//! hook that commands changing the vault call: best effort, never failing the command.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{bail, Context};
use mamori_sync::engine;
use mamori_sync::{JoinSecret, Report, SignInDetails, SyncError};
use mamori_vault::{DataKey, KdfParams, Opened, VaultFile};
use serde::Serialize;
use zeroize::Zeroizing;

use super::session::{self, rng};
use crate::cli::{GlobalArgs, SyncArgs, SyncCommand, SyncJoinArgs, SyncSignInArgs};

/// Argon2id parameters for the sync passphrase: the vault's default, unless the environment
/// asks explicitly for cheap test parameters (`MAMORI_TEST_SYNC_KDF=fast`; tests only).
fn sync_kdf() -> anyhow::Result<KdfParams> {
    match std::env::var("MAMORI_TEST_SYNC_KDF").ok().as_deref() {
        None | Some("") => Ok(KdfParams::default()),
        Some("fast") => {
            eprintln!("mamori: warning: MAMORI_TEST_SYNC_KDF=fast: insecure passphrase key derivation, for tests only");
            Ok(KdfParams::INSECURE_TEST)
        }
        Some(other) => {
            bail!("MAMORI_TEST_SYNC_KDF={other:?} is not understood (only \"fast\"); unset it")
        }
    }
}

/// One line for a sync error, with what to do where that is known.
fn explain(e: SyncError) -> anyhow::Error {
    if e.is_unauthenticated() {
        return anyhow::anyhow!("sync: this device's access was revoked or is unknown to the server ({e}); register it again with `mamori sync join`");
    }
    anyhow::anyhow!("sync failed, nothing was changed locally: {e}")
}

fn prompt_line(text: &str) -> anyhow::Result<Zeroizing<String>> {
    if !std::io::stdin().is_terminal() {
        bail!("{text}: no terminal to ask on; give it as an option (see `mamori sync --help`)");
    }
    eprint!("{text}: ");
    std::io::stderr().flush().ok();
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read from the terminal")?;
    Ok(Zeroizing::new(line.trim().to_string()))
}

fn secret_from(file: Option<&Path>, what: &str) -> anyhow::Result<Zeroizing<String>> {
    if let Some(f) = file {
        return session::read_password_file(f);
    }
    if !std::io::stdin().is_terminal() {
        bail!("no {what}: run in a terminal or give it in a file (see `mamori sync --help`)");
    }
    Ok(Zeroizing::new(
        rpassword::prompt_password(format!("{what}: "))
            .with_context(|| format!("cannot read the {what}"))?,
    ))
}

fn new_passphrase(file: Option<&Path>) -> anyhow::Result<Zeroizing<String>> {
    if let Some(f) = file {
        return session::read_password_file(f);
    }
    let first = secret_from(None, "New sync passphrase (12 characters or more)")?;
    let second = secret_from(None, "Repeat the sync passphrase")?;
    if first != second {
        bail!("the passphrases differ; nothing was changed, try again");
    }
    Ok(first)
}

fn default_device_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(*c))
        .take(64)
        .collect();
    if host.is_empty() {
        "mamori".into()
    } else {
        host
    }
}

fn details(a: &SyncSignInArgs) -> anyhow::Result<SignInDetails> {
    let password = secret_from(a.server_password_file.as_deref(), "Server password")?;
    let code = match &a.code {
        Some(c) => Zeroizing::new(c.trim().to_string()),
        None => prompt_line("MFA code (from another device) or a recovery code")?,
    };
    Ok(SignInDetails {
        server: a.server.clone(),
        user: a.account.clone(),
        password,
        code,
        device_name: a.device_name.clone().unwrap_or_else(default_device_name),
    })
}

fn unlocked(g: &GlobalArgs) -> anyhow::Result<(VaultFile, DataKey)> {
    let vf = session::vault_file(g)?;
    let unlock = session::unlock(g, &vf)?;
    let opened = vf.open(&unlock)?;
    Ok((vf, opened.key))
}

fn print_report(r: &Report) {
    for c in &r.conflicts {
        eprintln!("mamori: sync: {c}");
    }
    // #15 recovery
    if let Some(ready) = r.recovery_pending_until {
        eprintln!(
            "mamori: WARNING: a recovery of your account by email and phone codes is pending \
             (ready at {}). If you did not start it, run `mamori sync cancel-recovery` now.",
            local_time(ready)
        );
    }
    println!(
        "Synced: {} received, {} sent, {} changed locally",
        r.pulled, r.pushed, r.applied
    );
}

pub fn run(g: &GlobalArgs, args: SyncArgs) -> anyhow::Result<()> {
    let now = super::now_unix()?;
    match args.command {
        None | Some(SyncCommand::Now) => {
            let vf = session::vault_file(g)?;
            let opened = vf.open(&session::unlock(g, &vf)?)?;
            let r = engine::sync_opened(&vf, &opened, now, &mut rng()).map_err(explain)?;
            print_report(&r);
        }
        Some(SyncCommand::Setup(a)) => {
            let (vf, key) = unlocked(g)?;
            let d = details(&a.sign_in)?;
            let pass = new_passphrase(a.passphrase_file.as_deref())?;
            let (recovery, r) = engine::setup(&vf, &key, &d, &pass, sync_kdf()?, now, &mut rng())
                .map_err(explain)?;
            if a.no_auto_sync {
                set_auto(&vf, &key, false)?;
            }
            eprintln!("Sync is set up for {} on {}. Your recovery key (shown only now; write it down and keep it apart from this device):", d.user, d.server);
            println!("{}", &*recovery.display());
            eprintln!("With it, a new device can join after the passphrase is forgotten: `mamori sync join --recovery-key KEY`.");
            print_report(&r);
        }
        Some(SyncCommand::Join(a)) => join(g, a, now)?,
        Some(SyncCommand::Status(a)) => status(g, a.json)?,
        Some(SyncCommand::Devices(a)) => devices(g, a.json)?,
        Some(SyncCommand::Revoke(a)) => {
            let (vf, key) = unlocked(g)?;
            let st = engine::load_state(&vf, &key).map_err(explain)?;
            let client = mamori_sync::client::Client::new(&st.server).map_err(explain)?;
            let list = client.devices(&st.token).map_err(explain)?;
            let matches: Vec<_> = list
                .iter()
                .filter(|d| d.revoked_at.is_none() && (d.id == a.device || d.name == a.device))
                .collect();
            let target = match matches.as_slice() {
                [one] => *one,
                [] => bail!("no active sync device is named or has the id {:?}; see `mamori sync devices`", a.device),
                _ => bail!("several devices are named {:?}; give the device id (see `mamori sync devices`)", a.device),
            };
            client.revoke(&st.token, &target.id).map_err(explain)?;
            println!(
                "Revoked {} ({}): it can no longer pull or push",
                target.name, target.id
            );
        }
        Some(SyncCommand::Passphrase(a)) => {
            let (vf, key) = unlocked(g)?;
            let pass = new_passphrase(a.new_passphrase_file.as_deref())?;
            engine::change_passphrase(&vf, &key, &pass, sync_kdf()?, &mut rng())
                .map_err(explain)?;
            println!("Changed the sync passphrase (the sync key was rewrapped; the recovery key still works)");
        }
        // #15 recovery
        Some(SyncCommand::CancelRecovery) => {
            let (vf, key) = unlocked(g)?;
            let st = engine::load_state(&vf, &key).map_err(explain)?;
            let client = mamori_sync::client::Client::new(&st.server).map_err(explain)?;
            match client.cancel_recovery(&st.token) {
                Ok(()) => println!("Cancelled the pending recovery of your account"),
                Err(mamori_sync::SyncError::Server { code, .. }) if code == "not_found" => {
                    println!("No recovery of your account is pending")
                }
                Err(e) => return Err(explain(e)),
            }
        }
        Some(SyncCommand::Auto(a)) => {
            let (vf, key) = unlocked(g)?;
            let on = a.state == crate::cli::OnOff::On;
            set_auto(&vf, &key, on)?;
            println!("Auto-sync is {}", if on { "on" } else { "off" });
        }
    }
    Ok(())
}

fn set_auto(vf: &VaultFile, key: &DataKey, on: bool) -> anyhow::Result<()> {
    let mut st = engine::load_state(vf, key).map_err(explain)?;
    st.auto_sync = on;
    engine::save_state(vf, key, &st, &mut rng()).map_err(explain)?;
    Ok(())
}

fn join(g: &GlobalArgs, a: SyncJoinArgs, now: u64) -> anyhow::Result<()> {
    let (vf, key) = unlocked(g)?;
    let d = details(&a.sign_in)?;
    let secret = if let Some(k) = &a.recovery_key {
        JoinSecret::Recovery(mamori_sync::crypto::RecoveryKey::parse(k).map_err(explain)?)
    } else if let Some(f) = &a.recovery_key_file {
        let text = session::read_password_file(f)?;
        JoinSecret::Recovery(mamori_sync::crypto::RecoveryKey::parse(&text).map_err(explain)?)
    } else {
        JoinSecret::Passphrase(secret_from(
            a.passphrase_file.as_deref(),
            "Sync passphrase",
        )?)
    };
    let r = engine::join(&vf, &key, &d, &secret, now, &mut rng()).map_err(explain)?;
    eprintln!("This device joined sync for {} on {}", d.user, d.server);
    print_report(&r);
    Ok(())
}

#[derive(Serialize)]
struct StatusJson {
    version: u32,
    server: String,
    user: String,
    device_id: String,
    device_name: String,
    auto_sync: bool,
    last_sync: Option<u64>,
    items: usize,
    cursor: i64,
}

fn status(g: &GlobalArgs, json: bool) -> anyhow::Result<()> {
    let (vf, key) = unlocked(g)?;
    let st = engine::load_state(&vf, &key).map_err(explain)?;
    let s = StatusJson {
        version: 1,
        server: st.server.clone(),
        user: st.user.clone(),
        device_id: st.device_id.to_string(),
        device_name: st.device_name.clone(),
        auto_sync: st.auto_sync,
        last_sync: st.last_sync,
        items: st.known.values().filter(|k| !k.deleted).count(),
        cursor: st.cursor,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    println!("Server:     {} (user {})", s.server, s.user);
    println!("Device:     {} ({})", s.device_name, s.device_id);
    println!("Auto-sync:  {}", if s.auto_sync { "on" } else { "off" });
    match s.last_sync {
        Some(t) => println!(
            "Last sync:  {}",
            local_time(i64::try_from(t).unwrap_or(i64::MAX))
        ),
        None => println!("Last sync:  never"),
    }
    println!("Accounts:   {} synced", s.items);
    Ok(())
}

fn devices(g: &GlobalArgs, json: bool) -> anyhow::Result<()> {
    let (vf, key) = unlocked(g)?;
    let st = engine::load_state(&vf, &key).map_err(explain)?;
    let client = mamori_sync::client::Client::new(&st.server).map_err(explain)?;
    let list = client.devices(&st.token).map_err(explain)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"version": 1, "devices": list}))?
        );
        return Ok(());
    }
    for d in list {
        let state = match (d.revoked_at, d.current) {
            (Some(_), _) => "revoked",
            (None, true) => "this device",
            (None, false) => "active",
        };
        println!(
            "{}  {:<24}  created {}  last seen {}  {}",
            d.id,
            d.name,
            local_time(d.created_at),
            d.last_seen_at.map(local_time).unwrap_or_else(|| "-".into()),
            state
        );
    }
    Ok(())
}

/// `2026-11-30 09:53 +09:00`: a Unix time in this machine's time zone (`TZ`, else
/// /etc/localtime, else UTC), with the offset so the line is unambiguous. `--json` keeps Unix
/// seconds for scripts.
pub fn local_time(t: i64) -> String {
    match jiff::Timestamp::from_second(t) {
        Ok(ts) => ts
            .to_zoned(jiff::tz::TimeZone::system())
            .strftime("%Y-%m-%d %H:%M %:z")
            .to_string(),
        Err(_) => t.to_string(),
    }
}

/// After a command changed the vault: one sync round when sync is set up and auto-sync is on.
/// Best effort: a failure is one line on stderr and never fails the command.
pub fn after_change(vf: &VaultFile, opened: &Opened) {
    let st = match engine::load_state(vf, &opened.key) {
        Ok(st) if st.auto_sync => st,
        Ok(_) | Err(SyncError::NotSetUp) => return,
        Err(e) => {
            eprintln!("mamori: auto-sync skipped: {e}");
            return;
        }
    };
    let Ok(now) = super::now_unix() else { return };
    let mut st = st;
    match engine::sync_with_state(vf, opened, &mut st, now, &mut rng()) {
        Ok(r) => {
            for c in &r.conflicts {
                eprintln!("mamori: sync: {c}");
            }
        }
        Err(e) => eprintln!(
            "mamori: auto-sync failed (the change is saved locally; run `mamori sync` later): {}",
            format!("{:#}", explain(e)).replace('\n', " ")
        ),
    }
}

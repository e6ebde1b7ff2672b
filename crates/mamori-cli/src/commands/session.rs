//! Finding the vault and unlocking it: the agent's key if it holds one, else the password
//! (from --password-file / MAMORI_PASSWORD_FILE, or a prompt on the terminal).

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use mamori_vault::{agent, KdfParams, Unlock, VaultFile};
use zeroize::Zeroizing;

use crate::cli::GlobalArgs;

/// `--vault`, else `MAMORI_VAULT` (clap reads both), else the platform data directory.
pub fn vault_path(g: &GlobalArgs) -> anyhow::Result<PathBuf> {
    if let Some(p) = &g.vault {
        return Ok(p.clone());
    }
    let dirs = directories::ProjectDirs::from("", "", "mamori").context(
        "cannot find a data directory (no home directory); give --vault PATH or set MAMORI_VAULT",
    )?;
    Ok(dirs.data_dir().join("vault.mamori"))
}

pub fn vault_file(g: &GlobalArgs) -> anyhow::Result<VaultFile> {
    Ok(VaultFile::new(vault_path(g)?))
}

/// The first line of a password file (without its line ending). Refuses an empty password.
pub fn read_password_file(path: &Path) -> anyhow::Result<Zeroizing<String>> {
    let mut buf = Zeroizing::new(String::new());
    std::fs::File::open(path)
        .and_then(|f| f.take(64 * 1024).read_to_string(&mut buf))
        .with_context(|| format!("cannot read the password file {}", path.display()))?;
    let line = buf.lines().next().unwrap_or("");
    if line.is_empty() {
        bail!("the password file {} is empty", path.display());
    }
    Ok(Zeroizing::new(line.to_string()))
}

fn prompt(text: &str) -> anyhow::Result<Zeroizing<String>> {
    Ok(Zeroizing::new(
        rpassword::prompt_password(text).context("cannot read the password from the terminal")?,
    ))
}

/// The current vault password.
pub fn password(g: &GlobalArgs, vault: &Path) -> anyhow::Result<Zeroizing<String>> {
    if let Some(f) = &g.password_file {
        return read_password_file(f);
    }
    if std::io::stdin().is_terminal() {
        return prompt(&format!("Password for {}: ", vault.display()));
    }
    bail!("no password: run in a terminal, or give --password-file FILE (or set MAMORI_PASSWORD_FILE)")
}

/// A new password for `init` and `passwd`: `--new-password-file`, else (init only) the
/// `--password-file`, else asked twice on the terminal.
pub fn new_password(
    file: Option<&Path>,
    fallback: Option<&Path>,
) -> anyhow::Result<Zeroizing<String>> {
    if let Some(f) = file.or(fallback) {
        return read_password_file(f);
    }
    if !std::io::stdin().is_terminal() {
        bail!("no new password: run in a terminal, or give --new-password-file FILE");
    }
    let first = prompt("New password: ")?;
    if first.is_empty() {
        bail!("the password is empty; choose a password");
    }
    let second = prompt("Repeat the new password: ")?;
    if first != second {
        bail!("the passwords differ; nothing was changed, try again");
    }
    Ok(first)
}

/// Key-derivation parameters for new vaults: the secure default, unless the environment asks
/// explicitly for the cheap test parameters (`MAMORI_TEST_KDF=fast`; tests only).
pub fn kdf_params() -> anyhow::Result<KdfParams> {
    match std::env::var("MAMORI_TEST_KDF").ok().as_deref() {
        None | Some("") => Ok(KdfParams::default()),
        Some("fast") => {
            eprintln!(
                "mamori: warning: MAMORI_TEST_KDF=fast: insecure key derivation, for tests only"
            );
            Ok(KdfParams::INSECURE_TEST)
        }
        Some(other) => {
            bail!("MAMORI_TEST_KDF={other:?} is not understood (only \"fast\"); unset it")
        }
    }
}

/// How to unlock `vf`: the agent's key when it holds one, else the password.
pub fn unlock(g: &GlobalArgs, vf: &VaultFile) -> anyhow::Result<Unlock> {
    let header = vf.header()?;
    let client = agent::Client::new(agent::default_dir());
    if client.socket().exists() {
        if let Ok(Some(key)) = client.get(&header.vault_id) {
            return Ok(Unlock::Key(key));
        }
    }
    Ok(Unlock::Password(password(g, vf.path())?))
}

/// A CSPRNG from the operating system.
pub fn rng() -> rand_core::OsRng {
    rand_core::OsRng
}

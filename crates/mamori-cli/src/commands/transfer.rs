//! `mamori import` and `mamori export`: argument handling, password sources and file writing.
//! Reading and writing the formats is `mamori-formats`'s job; adding to the vault is
//! `mamori-vault`'s.

use std::fs::OpenOptions;
use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use mamori_formats::{Account, ExportFormat, Format, FormatError, ImportReport, SecretString};
use mamori_vault::{Entry, NewEntry, Unlock, VaultFile};
use rand_core::RngCore;
use zeroize::Zeroizing;

use super::session::{self, rng};
use crate::cli::{ExportArgs, GlobalArgs, ImportArgs};

/// Largest file read for an import (the formats crate enforces its own, equal limit too).
const MAX_IMPORT_BYTES: u64 = mamori_formats::MAX_INPUT_BYTES as u64;

fn read_input(path: &Path) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut buf = Zeroizing::new(Vec::new());
    file.take(MAX_IMPORT_BYTES + 1)
        .read_to_end(&mut buf)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if buf.len() as u64 > MAX_IMPORT_BYTES {
        bail!(
            "{} is larger than {MAX_IMPORT_BYTES} bytes; is it really an export?",
            path.display()
        );
    }
    Ok(buf)
}

/// The other file's password: from `file`, else asked on the terminal.
fn other_password(file: Option<&Path>, what: &str) -> anyhow::Result<SecretString> {
    if let Some(f) = file {
        let pw = session::read_password_file(f)?;
        return Ok(SecretString::from(pw.to_string()));
    }
    if std::io::stdin().is_terminal() {
        let pw = Zeroizing::new(
            rpassword::prompt_password(format!("Password for {what}: "))
                .context("cannot read the password from the terminal")?,
        );
        return Ok(SecretString::from(pw.to_string()));
    }
    bail!("{what} is encrypted: give its password with --input-password-file FILE (or run in a terminal)")
}

fn to_new_entry(a: &Account) -> NewEntry {
    let mut e = NewEntry::from_key_uri(&a.uri);
    e.note = a.note.clone().unwrap_or_default();
    e.tags = a.tags.clone();
    e.favorite = a.favorite;
    e
}

fn to_account(e: &Entry) -> Account {
    let mut a = Account::new(e.to_key_uri());
    a.note = (!e.note.is_empty()).then(|| e.note.clone());
    a.tags = e.tags.clone();
    a.favorite = e.favorite;
    a
}

/// Reads a mamori backup (the vault format with its own password).
fn import_mamori(path: &Path, password_file: Option<&Path>) -> anyhow::Result<ImportReport> {
    let backup = VaultFile::new(path);
    backup
        .header()
        .with_context(|| format!("{} is not a readable mamori backup", path.display()))?;
    let pw = match password_file {
        Some(f) => session::read_password_file(f)?,
        None if std::io::stdin().is_terminal() => Zeroizing::new(
            rpassword::prompt_password(format!("Password for {}: ", path.display()))
                .context("cannot read the password from the terminal")?,
        ),
        None => bail!(
            "{} is encrypted: give its password with --input-password-file FILE",
            path.display()
        ),
    };
    let opened = backup.open(&Unlock::Password(pw))?;
    Ok(ImportReport {
        accounts: opened.vault.entries().iter().map(to_account).collect(),
        ..ImportReport::default()
    })
}

fn read_report(args: &ImportArgs) -> anyhow::Result<ImportReport> {
    if args.format.trim().eq_ignore_ascii_case("mamori") {
        let [path] = args.files.as_slice() else {
            bail!("--format mamori imports one backup file at a time");
        };
        return import_mamori(path, args.input_password_file.as_deref());
    }
    let format: Format = args.format.parse()?;
    if format == Format::GoogleMigration {
        let inputs = args
            .files
            .iter()
            .map(|p| read_input(p))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let slices: Vec<&[u8]> = inputs.iter().map(|b| b.as_slice()).collect();
        return Ok(mamori_formats::import_google_migration(&slices)?);
    }
    let [path] = args.files.as_slice() else {
        bail!("--format {format} imports one file at a time (several files only for google-migration)");
    };
    let bytes = read_input(path)?;
    let given = match &args.input_password_file {
        Some(f) => Some(other_password(Some(f), &path.display().to_string())?),
        None => None,
    };
    match mamori_formats::import(format, &bytes, given.as_ref()) {
        Err(FormatError::PasswordRequired) if given.is_none() => {
            let pw = other_password(None, &path.display().to_string())?;
            Ok(mamori_formats::import(format, &bytes, Some(&pw))?)
        }
        other => Ok(other.with_context(|| format!("cannot import {}", path.display()))?),
    }
}

pub fn import(g: &GlobalArgs, args: ImportArgs) -> anyhow::Result<()> {
    let report = read_report(&args)?;
    for note in &report.notes {
        eprintln!("mamori: note: {note}");
    }
    for u in &report.unusable {
        eprintln!("mamori: cannot import {u}");
    }
    let items: Vec<NewEntry> = report.accounts.iter().map(to_new_entry).collect();
    let vf = session::vault_file(g)?;
    let unlock = session::unlock(g, &vf)?;
    let unsupported = report.unusable.len();
    if args.dry_run {
        // Run the same rules on a copy: nothing is written.
        let mut copy = vf.open(&unlock)?.vault;
        let now = super::now_unix()?;
        let added = copy.add_many(items, &mut rng(), now)?;
        for id in &added.added {
            if let Some(e) = copy.get(*id) {
                println!("would add {}", e.display_name());
            }
        }
        println!(
            "would import {}, skip {} duplicate{}, {} unsupported",
            added.added.len(),
            added.duplicates.len(),
            if added.duplicates.len() == 1 { "" } else { "s" },
            unsupported
        );
        return Ok(());
    }
    let now = super::now_unix()?;
    let (added, opened) = vf.update(&unlock, &mut rng(), |v| v.add_many(items, &mut rng(), now))?;
    for id in &added.added {
        if let Some(e) = opened.vault.get(*id) {
            println!("added {}", e.display_name());
        }
    }
    for d in &added.duplicates {
        println!("skipped {d} (already in the vault)");
    }
    println!(
        "imported {}, skipped {} duplicate{}, {} unsupported",
        added.added.len(),
        added.duplicates.len(),
        if added.duplicates.len() == 1 { "" } else { "s" },
        unsupported
    );
    super::sync::after_change(&vf, &opened);
    Ok(())
}

/// Creates `path` for writing with mode 0600, refusing to overwrite anything.
fn create_private(path: &Path) -> anyhow::Result<std::fs::File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                anyhow::anyhow!(
                    "{} already exists; remove it or choose another name",
                    path.display()
                )
            }
            _ => anyhow::anyhow!("cannot create {}: {e}", path.display()),
        })
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut f = create_private(path)?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn new_export_password(file: Option<&Path>) -> anyhow::Result<Zeroizing<String>> {
    session::new_password(file, None).map_err(|e| {
        anyhow::anyhow!(
            "{e:#} (for an export, give the new password with --output-password-file FILE)"
        )
    })
}

/// "OUT.png" or "OUT" -> "OUT-1.png", "OUT-2.png", …
fn numbered(out: &Path, n: usize) -> PathBuf {
    let stem = match out.extension().and_then(|e| e.to_str()) {
        Some(ext) if ext.eq_ignore_ascii_case("png") => out.with_extension(""),
        _ => out.to_path_buf(),
    };
    let mut name = stem.into_os_string();
    name.push(format!("-{n}.png"));
    PathBuf::from(name)
}

fn today() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}",
        now.year(),
        u8::from(now.month()),
        now.day()
    )
}

pub fn export(g: &GlobalArgs, args: ExportArgs) -> anyhow::Result<()> {
    let vf = session::vault_file(g)?;
    let unlock = session::unlock(g, &vf)?;
    let opened = vf.open(&unlock)?;
    let entries: Vec<&Entry> = match &args.only {
        Some(q) => opened.vault.filter(q),
        None => opened.vault.entries().iter().collect(),
    };
    if entries.is_empty() {
        bail!("nothing to export: the vault has no matching accounts");
    }
    let accounts: Vec<Account> = entries.iter().map(|e| to_account(e)).collect();

    if args.format.trim().eq_ignore_ascii_case("mamori") {
        let out = args
            .out
            .as_deref()
            .context("give the backup file to write")?;
        if out.exists() {
            bail!(
                "{} already exists; remove it or choose another name",
                out.display()
            );
        }
        let pw = new_export_password(args.output_password_file.as_deref())?;
        let backup = VaultFile::new(out);
        backup.create(pw.as_bytes(), session::kdf_params()?, &mut rng())?;
        let items: Vec<NewEntry> = accounts.iter().map(to_new_entry).collect();
        let now = super::now_unix()?;
        backup.update(&Unlock::Password(pw), &mut rng(), |v| {
            v.add_many(items, &mut rng(), now)
        })?;
        println!(
            "exported {} accounts to {} (encrypted)",
            accounts.len(),
            out.display()
        );
        return Ok(());
    }

    let format: ExportFormat = args.format.parse()?;
    let encrypted = format == ExportFormat::Aegis && !args.plaintext;
    if format.is_plaintext(encrypted) && !args.plaintext {
        bail!("a {format} export contains every secret in plaintext: add --plaintext if that is what you want");
    }
    let out = args.out.as_deref();
    if let Some(o) = out.filter(|o| o.exists() && format != ExportFormat::GoogleMigration) {
        bail!(
            "{} already exists; remove it or choose another name",
            o.display()
        );
    }
    if format.is_plaintext(encrypted) {
        eprintln!("mamori: warning: this export contains your secrets in plaintext; store it safely and delete it when done");
    }
    if args.terminal && format != ExportFormat::GoogleMigration {
        bail!("--terminal applies to --format google-migration only");
    }
    // Accounts a format cannot carry are named on stderr, one line each, and left out of the count.
    let mut left_out = 0;
    let written = match format {
        ExportFormat::Otpauth => {
            let text = mamori_formats::export_otpauth(&accounts);
            let out = out.context("give the file to write")?;
            write_private(out, text.as_bytes())?;
            out.display().to_string()
        }
        ExportFormat::Html => {
            let page = mamori_formats::export_html(
                &accounts,
                &format!("mamori paper backup, {}", today()),
            );
            let out = out.context("give the file to write")?;
            write_private(out, page.as_bytes())?;
            out.display().to_string()
        }
        ExportFormat::Aegis => {
            let pw = if encrypted {
                let pw = new_export_password(args.output_password_file.as_deref())?;
                Some(SecretString::from(pw.to_string()))
            } else {
                None
            };
            let json = mamori_formats::export_aegis(&accounts, pw.as_ref(), &mut rng())?;
            let out = out.context("give the file to write")?;
            write_private(out, &json)?;
            out.display().to_string()
        }
        ExportFormat::GoogleMigration => {
            let batch_id = (rng().next_u32() & 0x7fff_ffff) as i32;
            let export = mamori_formats::export_google_migration(&accounts, batch_id, 6)?;
            for s in &export.skipped {
                eprintln!("mamori: cannot export {s}");
            }
            left_out = export.skipped.len();
            if export.images.is_empty() {
                bail!("none of these accounts can be carried by a Google Authenticator export");
            }
            let total = export.uris.len();
            if args.terminal {
                let interactive = std::io::stdin().is_terminal();
                for (i, uri) in export.uris.iter().enumerate() {
                    let art = mamori_otp::qr::to_terminal(uri)?;
                    println!("{art}\nQR code {} of {total}: scan it with Google Authenticator (Transfer accounts > Import accounts)", i + 1);
                    if interactive && i + 1 < total {
                        eprint!("Press Enter for the next code… ");
                        let mut line = String::new();
                        std::io::stdin().read_line(&mut line)?;
                    }
                }
                format!("{total} QR code(s) on the terminal")
            } else {
                let out = out.context("give the file name for the PNG images")?;
                let paths: Vec<PathBuf> = (1..=total).map(|n| numbered(out, n)).collect();
                if let Some(p) = paths.iter().find(|p| p.exists()) {
                    bail!(
                        "{} already exists; remove it or choose another name",
                        p.display()
                    );
                }
                for (png, path) in export.images.iter().zip(&paths) {
                    write_private(path, png)?;
                }
                paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        }
    };
    let exported = accounts.len().saturating_sub(left_out);
    if left_out == 0 {
        println!("exported {exported} accounts to {written}");
    } else {
        println!(
            "exported {exported} accounts to {written}; left out {left_out} that {format} cannot carry (each named on stderr)"
        );
    }
    Ok(())
}

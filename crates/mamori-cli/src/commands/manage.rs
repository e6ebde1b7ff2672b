//! Commands that change the vault: init, add, remove, rename, edit, passwd.

use std::io::{IsTerminal, Read, Write};

use anyhow::{bail, Context};
use mamori_otp::{migration, Algorithm, KeyUri, OtpKind, OtpParams, Secret};
use mamori_vault::{EntryEdit, NewEntry, VaultError};
use zeroize::Zeroizing;

use super::session::{self, rng};
use crate::cli::{AddArgs, EditArgs, GlobalArgs, NewPasswordArgs, RemoveArgs, RenameArgs, TypeArg};

pub fn init(g: &GlobalArgs, args: NewPasswordArgs) -> anyhow::Result<()> {
    let vf = session::vault_file(g)?;
    if vf.exists() {
        return Err(VaultError::AlreadyExists(vf.path().to_path_buf()).into());
    }
    let kdf = session::kdf_params()?;
    let pw = session::new_password(
        args.new_password_file.as_deref(),
        g.password_file.as_deref(),
    )?;
    vf.create(pw.as_bytes(), kdf, &mut rng())?;
    eprintln!("Created an empty vault at {}", vf.path().display());
    Ok(())
}

/// Reads "-" from standard input (first line), else returns the value.
fn value_or_stdin(value: &str, what: &str) -> anyhow::Result<Zeroizing<String>> {
    if value != "-" {
        return Ok(Zeroizing::new(value.to_string()));
    }
    let mut buf = Zeroizing::new(String::new());
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut buf)
        .with_context(|| format!("could not read the {what} from standard input"))?;
    let line = buf.lines().next().unwrap_or("").trim().to_string();
    if line.is_empty() {
        bail!("standard input is empty: expected the {what}");
    }
    Ok(Zeroizing::new(line))
}

/// The accounts an image's QR codes carry (otpauth:// and Google's otpauth-migration://).
fn entries_from_qr(path: &std::path::Path) -> anyhow::Result<Vec<NewEntry>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let texts = mamori_otp::qr::decode(&bytes)
        .with_context(|| format!("cannot read a QR code in {}", path.display()))?;
    let mut out = Vec::new();
    for text in texts.iter().map(|t| Zeroizing::new(t.clone())) {
        if text.starts_with("otpauth-migration:") {
            let batch = migration::decode_uri(&text).context("invalid migration QR code")?;
            for s in &batch.skipped {
                eprintln!(
                    "mamori: skipped {} from the migration code: {}",
                    s.name, s.reason
                );
            }
            out.extend(batch.accounts.iter().map(NewEntry::from_key_uri));
        } else {
            let uri = KeyUri::parse(&text).context("the QR code is not an otpauth:// account")?;
            out.push(NewEntry::from_key_uri(&uri));
        }
    }
    if out.is_empty() {
        bail!("no QR code found in {}", path.display());
    }
    Ok(out)
}

fn manual_entry(args: &AddArgs, raw_secret: &str) -> anyhow::Result<NewEntry> {
    let secret_text = value_or_stdin(raw_secret, "secret")?;
    let secret = Secret::from_base32(&secret_text).context("invalid --secret")?;
    let kind = match args.otp_type.unwrap_or(TypeArg::Totp) {
        TypeArg::Totp => OtpKind::Totp,
        TypeArg::Hotp => OtpKind::Hotp,
        TypeArg::Steam => OtpKind::Steam,
    };
    if kind == OtpKind::Steam
        && (args.digits.is_some() || args.period.is_some() || args.algorithm.is_some())
    {
        bail!("Steam codes always use SHA1, 5 characters and 30 seconds: drop --algorithm, --digits and --period");
    }
    if args.counter.is_some() && kind != OtpKind::Hotp {
        bail!("--counter applies to HOTP accounts only; add --type hotp");
    }
    let algorithm = match &args.algorithm {
        Some(a) => a.parse::<Algorithm>().context("invalid --algorithm")?,
        None => Algorithm::Sha1,
    };
    let params = OtpParams {
        kind,
        algorithm,
        digits: args.digits.unwrap_or(6),
        period: args.period.unwrap_or(30),
        counter: args.counter.unwrap_or(0),
    };
    Ok(NewEntry::new(
        args.issuer.clone().unwrap_or_default(),
        args.account.clone().unwrap_or_default(),
        secret,
        params,
    ))
}

pub fn add(g: &GlobalArgs, args: AddArgs) -> anyhow::Result<()> {
    let mut items = if let Some(uri) = &args.uri {
        let text = value_or_stdin(uri, "URI")?;
        vec![NewEntry::from_key_uri(
            &KeyUri::parse(&text).context("invalid --uri")?,
        )]
    } else if let Some(path) = &args.qr {
        entries_from_qr(path)?
    } else if let Some(secret) = &args.secret {
        vec![manual_entry(&args, secret)?]
    } else {
        bail!("give --uri, --qr or --secret");
    };
    for item in &mut items {
        if let Some(n) = &args.note {
            item.note = n.clone();
        }
        item.tags.extend(args.tags.iter().cloned());
        item.favorite |= args.favorite;
    }
    let vf = session::vault_file(g)?;
    let unlock = session::unlock(g, &vf)?;
    let now = super::now_unix()?;
    let single = items.len() == 1;
    let (report, opened) = vf.update(&unlock, &mut rng(), |v| {
        if single {
            // One account: a duplicate is an error, as the user asked for exactly this.
            let mut one = items;
            let item = one
                .pop()
                .ok_or_else(|| VaultError::InvalidEntry("nothing to add".into()))?;
            let id = v.add(item, &mut rng(), now)?.id;
            Ok(mamori_vault::AddReport {
                added: vec![id],
                duplicates: vec![],
            })
        } else {
            v.add_many(items, &mut rng(), now)
        }
    })?;
    for id in &report.added {
        if let Some(e) = opened.vault.get(*id) {
            println!("Added {}", e.display_name());
        }
    }
    for d in &report.duplicates {
        println!("Skipped {d} (already in the vault)");
    }
    super::sync::after_change(&vf, &opened);
    Ok(())
}

fn confirm(question: &str) -> anyhow::Result<bool> {
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the answer")?;
    Ok(matches!(line.trim().to_lowercase().as_str(), "y" | "yes"))
}

pub fn remove(g: &GlobalArgs, args: RemoveArgs) -> anyhow::Result<()> {
    let vf = session::vault_file(g)?;
    let unlock = session::unlock(g, &vf)?;
    let opened = vf.open(&unlock)?;
    let entry = opened.vault.find(&args.query)?;
    let (id, name) = (entry.id, entry.display_name());
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            bail!("not removing {name} without confirmation: add --yes");
        }
        if !confirm(&format!("Remove {name}? Its codes cannot be recovered."))? {
            bail!("not removed");
        }
    }
    let ((), opened) = vf.update(&unlock, &mut rng(), |v| v.remove(id).map(|_| ()))?;
    println!("Removed {name}");
    super::sync::after_change(&vf, &opened);
    Ok(())
}

/// Rename: find the entry now, then change it under the write lock.
fn change(
    g: &GlobalArgs,
    query: &str,
    make: impl FnOnce(&mamori_vault::Entry) -> EntryEdit,
) -> anyhow::Result<String> {
    let vf = session::vault_file(g)?;
    let unlock = session::unlock(g, &vf)?;
    let now = super::now_unix()?;
    let (name, opened) = vf.update(&unlock, &mut rng(), |v| {
        let entry = v.find(query)?;
        let (id, edit) = (entry.id, make(entry));
        Ok(v.edit(id, edit, now)?.display_name())
    })?;
    super::sync::after_change(&vf, &opened);
    Ok(name)
}

pub fn rename(g: &GlobalArgs, args: RenameArgs) -> anyhow::Result<()> {
    let new = args.new.clone();
    let name = change(g, &args.query, |e| match new.split_once(':') {
        Some((issuer, account)) => EntryEdit {
            issuer: Some(issuer.to_string()),
            account: Some(account.to_string()),
            ..Default::default()
        },
        None if e.issuer.is_empty() => EntryEdit {
            account: Some(new.clone()),
            ..Default::default()
        },
        None => EntryEdit {
            issuer: Some(new.clone()),
            ..Default::default()
        },
    })?;
    println!("Renamed to {name}");
    Ok(())
}

pub fn edit(g: &GlobalArgs, args: EditArgs) -> anyhow::Result<()> {
    let edit = EntryEdit {
        issuer: args.issuer,
        account: args.account,
        note: args.note,
        tags: if args.clear_tags {
            Some(Vec::new())
        } else if args.tags.is_empty() {
            None
        } else {
            Some(args.tags)
        },
        favorite: if args.favorite {
            Some(true)
        } else if args.unfavorite {
            Some(false)
        } else {
            None
        },
    };
    if edit == EntryEdit::default() {
        bail!("nothing to change: give --issuer, --account, --note, --tag, --clear-tags, --favorite or --unfavorite");
    }
    let name = change(g, &args.query, |_| edit)?;
    println!("Updated {name}");
    Ok(())
}

pub fn passwd(g: &GlobalArgs, args: NewPasswordArgs) -> anyhow::Result<()> {
    let vf = session::vault_file(g)?;
    // The current password is always asked: the agent's key alone must not allow replacing it.
    let old = session::password(g, vf.path())?;
    // Check the old password before asking for a new one.
    vf.open(&mamori_vault::Unlock::Password(old.clone()))?;
    let new = session::new_password(args.new_password_file.as_deref(), None)?;
    // Keep the header's parameters, but raise weaker ones to today's default.
    let current = vf.header()?.kdf;
    let wanted = session::kdf_params()?;
    let kdf = if std::env::var_os("MAMORI_TEST_KDF").is_some()
        || current.memory_kib < wanted.memory_kib
        || current.iterations < wanted.iterations
    {
        Some(wanted)
    } else {
        None
    };
    vf.change_password(
        &mamori_vault::Unlock::Password(old),
        new.as_bytes(),
        kdf,
        &mut rng(),
    )?;
    eprintln!("Password changed for {}", vf.path().display());
    Ok(())
}

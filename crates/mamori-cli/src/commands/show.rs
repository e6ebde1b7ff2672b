//! Commands that read the vault: list, code, show-qr. The `--json` shapes are a documented,
//! stable contract (docs/cli.md): add fields only, never rename or remove one.

use anyhow::{bail, Context};
use mamori_otp::{Generator, OtpKind};
use mamori_vault::Entry;
use serde::Serialize;

use super::session::{self, rng};
use crate::cli::{CodeArgs, GlobalArgs, ListArgs, ShowQrArgs};

/// Version of the JSON shapes below.
const JSON_VERSION: u32 = 1;

#[derive(Serialize)]
struct ListJson<'a> {
    version: u32,
    entries: Vec<EntryJson<'a>>,
}

#[derive(Serialize)]
struct EntryJson<'a> {
    id: String,
    issuer: &'a str,
    account: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    algorithm: &'static str,
    digits: u32,
    period: Option<u64>,
    counter: Option<u64>,
    note: &'a str,
    tags: &'a [String],
    favorite: bool,
    created: u64,
    updated: u64,
}

impl<'a> From<&'a Entry> for EntryJson<'a> {
    fn from(e: &'a Entry) -> Self {
        let p = e.params;
        EntryJson {
            id: e.id.to_string(),
            issuer: &e.issuer,
            account: &e.account,
            kind: p.kind.as_str(),
            algorithm: p.algorithm.as_str(),
            digits: p.digits,
            period: p.kind.is_time_based().then_some(p.period),
            counter: (p.kind == OtpKind::Hotp).then_some(p.counter),
            note: &e.note,
            tags: &e.tags,
            favorite: e.favorite,
            created: e.created,
            updated: e.updated,
        }
    }
}

#[derive(Serialize)]
struct CodesJson {
    version: u32,
    codes: Vec<CodeJson>,
}

#[derive(Serialize)]
struct CodeJson {
    id: String,
    issuer: String,
    account: String,
    #[serde(rename = "type")]
    kind: &'static str,
    code: String,
    period: Option<u64>,
    valid_from: Option<u64>,
    valid_until: Option<u64>,
    seconds_left: Option<u64>,
    counter: Option<u64>,
}

/// Favorites first, then by name (case-insensitive), the order people scan for.
pub fn sorted<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Vec<&'a Entry> {
    let mut v: Vec<&Entry> = entries.into_iter().collect();
    v.sort_by_key(|e| {
        (
            !e.favorite,
            e.issuer.to_lowercase(),
            e.account.to_lowercase(),
        )
    });
    v
}

pub fn list(g: &GlobalArgs, args: ListArgs) -> anyhow::Result<()> {
    let vf = session::vault_file(g)?;
    let opened = vf.open(&session::unlock(g, &vf)?)?;
    let entries = sorted(opened.vault.filter(args.query.as_deref().unwrap_or("")));
    if args.json {
        let out = ListJson {
            version: JSON_VERSION,
            entries: entries.into_iter().map(EntryJson::from).collect(),
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if entries.is_empty() {
        eprintln!(
            "No accounts{}. Add one with `mamori add`.",
            if args.query.is_some() { " match" } else { "" }
        );
        return Ok(());
    }
    let w_issuer = entries
        .iter()
        .map(|e| e.issuer.chars().count())
        .max()
        .unwrap_or(0)
        .max(6);
    let w_account = entries
        .iter()
        .map(|e| e.account.chars().count())
        .max()
        .unwrap_or(0)
        .max(7);
    println!("{:<w_issuer$}  {:<w_account$}  TYPE", "ISSUER", "ACCOUNT");
    for e in entries {
        let mut kind = e.params.kind.as_str().to_string();
        if e.params.kind == OtpKind::Hotp {
            kind.push_str(&format!(" #{}", e.params.counter));
        }
        let star = if e.favorite { "  *" } else { "" };
        let tags = if e.tags.is_empty() {
            String::new()
        } else {
            format!("  [{}]", e.tags.join(", "))
        };
        println!(
            "{:<w_issuer$}  {:<w_account$}  {kind}{star}{tags}",
            e.issuer, e.account
        );
    }
    Ok(())
}

fn time_code(e: &Entry, at: u64) -> anyhow::Result<CodeJson> {
    let g = Generator::new(e.secret(), e.params)?;
    let step = g.step_at(at);
    let period = e.params.period;
    Ok(CodeJson {
        id: e.id.to_string(),
        issuer: e.issuer.clone(),
        account: e.account.clone(),
        kind: e.params.kind.as_str(),
        code: g.at_time(at).to_string(),
        period: Some(period),
        valid_from: Some(step.saturating_mul(period)),
        valid_until: Some(step.saturating_add(1).saturating_mul(period)),
        seconds_left: Some(g.seconds_left(at)),
        counter: None,
    })
}

pub fn code(g: &GlobalArgs, args: CodeArgs) -> anyhow::Result<()> {
    let at = match args.at {
        Some(t) if t < 0 => bail!("--at {t} is before 1970; give a Unix time in seconds"),
        Some(t) => t.unsigned_abs(),
        None => super::now_unix()?,
    };
    let vf = session::vault_file(g)?;
    let unlock = session::unlock(g, &vf)?;
    let opened = vf.open(&unlock)?;
    let codes = match &args.query {
        Some(q) => {
            let e = opened.vault.find(q)?;
            if e.params.kind == OtpKind::Hotp {
                if args.at.is_some() {
                    bail!(
                        "--at applies to time-based codes; {} is an HOTP account",
                        e.display_name()
                    );
                }
                // RFC 4226 section 7.2: advance and *save* the counter before showing the code,
                // so a crash can never show the same code twice.
                let id = e.id;
                // With auto-sync, take the other devices' counters first (best effort), so a
                // code shown elsewhere is not shown again here.
                super::sync::after_change(&vf, &opened);
                let now = super::now_unix()?;
                let (code, after) = vf.update(&unlock, &mut rng(), |v| v.next_hotp(id, now))?;
                super::sync::after_change(&vf, &after);
                let e = after.vault.get(id).context("the account disappeared")?;
                vec![CodeJson {
                    id: e.id.to_string(),
                    issuer: e.issuer.clone(),
                    account: e.account.clone(),
                    kind: "hotp",
                    code: code.to_string(),
                    period: None,
                    valid_from: None,
                    valid_until: None,
                    seconds_left: None,
                    counter: Some(e.params.counter.saturating_sub(1)),
                }]
            } else {
                vec![time_code(e, at)?]
            }
        }
        None => sorted(opened.vault.entries())
            .into_iter()
            .filter(|e| e.params.kind.is_time_based())
            .map(|e| time_code(e, at))
            .collect::<anyhow::Result<Vec<_>>>()?,
    };
    if args.copy {
        match codes.as_slice() {
            [one] => super::clipboard::copy(&one.code),
            _ => eprintln!("mamori: --copy needs exactly one account; give a QUERY"),
        }
    }
    if args.json {
        let out = CodesJson {
            version: JSON_VERSION,
            codes,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if args.query.is_some() {
        if let Some(c) = codes.first() {
            println!("{}", c.code);
        }
        return Ok(());
    }
    if codes.is_empty() {
        eprintln!("No time-based accounts. Add one with `mamori add`; HOTP codes need `mamori code NAME`.");
    }
    let names: Vec<String> = codes
        .iter()
        .map(|c| match (c.issuer.is_empty(), c.account.is_empty()) {
            (false, false) => format!("{} ({})", c.issuer, c.account),
            (false, true) => c.issuer.clone(),
            _ => c.account.clone(),
        })
        .collect();
    let w = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    for (c, name) in codes.iter().zip(names) {
        println!(
            "{name:<w$}  {:>10}  {:>3}s",
            c.code,
            c.seconds_left.unwrap_or(0)
        );
    }
    Ok(())
}

pub fn show_qr(g: &GlobalArgs, args: ShowQrArgs) -> anyhow::Result<()> {
    let vf = session::vault_file(g)?;
    let opened = vf.open(&session::unlock(g, &vf)?)?;
    let e = opened.vault.find(&args.query)?;
    let uri = e.to_key_uri().to_uri();
    match &args.png {
        Some(path) => {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let png = mamori_otp::qr::to_png(&uri, 8)?;
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(path)
                .and_then(|mut f| f.write_all(&png))
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "Wrote {} ({}). It contains the secret: delete it after scanning.",
                path.display(),
                e.display_name()
            );
        }
        None => {
            print!("{}", mamori_otp::qr::to_terminal(&uri)?);
            eprintln!(
                "{} — this QR code contains the secret; clear the screen after scanning.",
                e.display_name()
            );
        }
    }
    Ok(())
}

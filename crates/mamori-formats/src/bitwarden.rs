//! Bitwarden password-manager exports that carry TOTP keys, after Bitwarden's help page
//! "Condition a Bitwarden .csv or .json" (<https://bitwarden.com/help/condition-bitwarden-import/>):
//!
//! * JSON: `{ "encrypted": false, "folders": [ { "id", "name" } ], "items": [ { "type": 1,
//!   "name", "notes", "favorite", "folderId", "login": { "username", "totp" } } ] }`;
//! * CSV: a header row with (among others) `folder,favorite,type,name,notes,…,login_username,
//!   …,login_totp`; `favorite` is `1` for favourites. Organisation exports have a
//!   `collections` column (comma-separated) instead of `folder`; collections become tags.
//!
//! `totp` may be an `otpauth://` URI, a bare Base32 secret (a default TOTP), or
//! `steam://SECRET`. The item name becomes the issuer and the username the account name when
//! the URI does not say; notes, favourites and folders (as tags) are kept. Items without a TOTP
//! key are ignored. Encrypted exports are refused with advice (they need the Bitwarden account
//! key or a separate password scheme).

use serde::Deserialize;
use serde_json::value::RawValue;
use zeroize::Zeroizing;

use crate::account::{build, clean_note, describe};
use crate::error::json_error;
use crate::{check_count, starts_with_ci, strip_bom, text, Account, FormatError, ImportReport};
use mamori_otp::{KeyUri, OtpParams, Secret, UriError};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

#[derive(Deserialize)]
struct Export<'a> {
    #[serde(default)]
    encrypted: bool,
    #[serde(default)]
    folders: Vec<Folder>,
    #[serde(borrow)]
    items: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
struct Folder {
    id: String,
    name: String,
}

#[derive(Deserialize)]
struct Item {
    #[serde(default)]
    name: String,
    notes: Option<String>,
    #[serde(default)]
    favorite: bool,
    #[serde(rename = "folderId")]
    folder_id: Option<String>,
    login: Option<Login>,
}

#[derive(Deserialize)]
struct Login {
    username: Option<String>,
    totp: Option<Zeroizing<String>>,
}

/// The parts of one item that matter here, from either export form.
struct Fields<'a> {
    place: String,
    name: &'a str,
    username: &'a str,
    totp: &'a str,
    note: Option<&'a str>,
    favorite: bool,
    /// Folder (personal vault) or collections (organisation export, comma-separated).
    folders: Vec<&'a str>,
}

pub(crate) fn import(input: &[u8]) -> Result<ImportReport, FormatError> {
    let trimmed = strip_bom(input);
    if trimmed.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        import_json(trimmed)
    } else {
        import_csv(trimmed)
    }
}

fn import_json(input: &[u8]) -> Result<ImportReport, FormatError> {
    let export: Export<'_> =
        serde_json::from_slice(input).map_err(|e| json_error("the export", &e))?;
    if export.encrypted {
        return Err(FormatError::Unsupported(
            "this Bitwarden export is encrypted: export again from Bitwarden as unencrypted .json or .csv".into(),
        ));
    }
    let items = export
        .items
        .ok_or_else(|| FormatError::damaged("the export has no items list"))?;
    check_count(items.len())?;
    let mut report = ImportReport::default();
    let mut without_totp = 0usize;
    for (i, raw) in items.iter().enumerate() {
        let item: Item = match serde_json::from_str(raw.get()) {
            Ok(it) => it,
            Err(e) => {
                let reason = match json_error("the item", &e) {
                    FormatError::Damaged { what } => what,
                    other => other.to_string(),
                };
                report.push_unusable(format!("item {}", i + 1), reason);
                continue;
            }
        };
        let Some(login) = &item.login else {
            without_totp += 1;
            continue;
        };
        let Some(totp) = login.totp.as_deref().filter(|t| !t.trim().is_empty()) else {
            without_totp += 1;
            continue;
        };
        let folder = item
            .folder_id
            .as_ref()
            .and_then(|id| export.folders.iter().find(|f| &f.id == id))
            .map(|f| f.name.as_str());
        add(
            &mut report,
            Fields {
                place: format!("item {}", i + 1),
                name: &item.name,
                username: login.username.as_deref().unwrap_or(""),
                totp,
                note: item.notes.as_deref(),
                favorite: item.favorite,
                folders: folder.into_iter().collect(),
            },
        );
    }
    note_ignored(&mut report, without_totp);
    Ok(report)
}

fn import_csv(input: &[u8]) -> Result<ImportReport, FormatError> {
    text("the CSV export", input)?;
    if let Some(what) = quoting_error(strip_bom(input)) {
        return Err(FormatError::damaged(what));
    }
    // Not `flexible`: Bitwarden writes every column on every row, so a row with a different
    // number of fields is a damaged or truncated file, not a row to read partly.
    let mut reader = csv::ReaderBuilder::new().from_reader(input);
    let headers = reader
        .headers()
        .map_err(|e| {
            FormatError::damaged(format!(
                "the CSV header row cannot be read: {}",
                csv_where(&e)
            ))
        })?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let totp_col = col("login_totp").ok_or_else(|| {
        FormatError::damaged("the CSV has no login_totp column (is this a Bitwarden export?)")
    })?;
    let (name_col, user_col, notes_col, fav_col, folder_col, collections_col) = (
        col("name"),
        col("login_username"),
        col("notes"),
        col("favorite"),
        col("folder"),
        col("collections"),
    );
    let mut report = ImportReport::default();
    let mut without_totp = 0usize;
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| FormatError::damaged(format!("CSV {}", csv_where(&e))))?;
        check_count(report.accounts.len() + report.unusable.len() + 1)?;
        let get = |c: Option<usize>| c.and_then(|c| record.get(c)).unwrap_or("");
        let totp = Zeroizing::new(get(Some(totp_col)).to_string());
        if totp.trim().is_empty() {
            without_totp += 1;
            continue;
        }
        let note = get(notes_col);
        add(
            &mut report,
            Fields {
                // Row 1 is the header.
                place: format!("row {}", i + 2),
                name: get(name_col),
                username: get(user_col),
                totp: &totp,
                note: Some(note),
                favorite: get(fav_col).trim() == "1",
                folders: std::iter::once(get(folder_col))
                    .chain(get(collections_col).split(','))
                    .collect(),
            },
        );
    }
    note_ignored(&mut report, without_totp);
    Ok(report)
}

fn csv_where(e: &csv::Error) -> String {
    match (e.kind(), e.position()) {
        (
            csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            },
            Some(p),
        ) => format!(
            "line {} has {len} fields where the header has {expected_len} \
             (the file is damaged or cut short)",
            p.line()
        ),
        (_, Some(p)) => format!("is malformed at line {}", p.line()),
        (_, None) => "is malformed".to_string(),
    }
}

/// What is wrong with the quoting of `input`, following RFC 4180 and the csv crate's default
/// dialect (comma, `"` doubled inside quoted fields, `\r` or `\n` ends a record). The csv crate
/// is lenient where a damaged file shows: it ends a quoted field silently at the end of input
/// and keeps stray quotes as text, so a cut file would read as valid but shorter rows.
fn quoting_error(input: &[u8]) -> Option<String> {
    #[derive(Clone, Copy)]
    enum State {
        FieldStart,
        Unquoted,
        Quoted,
        /// A quote inside a quoted field: either the first of a doubled quote or the end.
        QuoteInQuoted,
    }
    let mut state = State::FieldStart;
    let mut line = 1usize;
    for &c in input {
        let separator = matches!(c, b',' | b'\r' | b'\n');
        state = match (state, c) {
            (State::FieldStart, b'"') => State::Quoted,
            (State::Quoted, b'"') => State::QuoteInQuoted,
            (State::Quoted, _) => State::Quoted,
            (State::QuoteInQuoted, b'"') => State::Quoted,
            (_, _) if separator => State::FieldStart,
            (State::Unquoted, b'"') => {
                return Some(format!("line {line} has a quote inside an unquoted field"))
            }
            (State::QuoteInQuoted, _) => {
                return Some(format!(
                    "line {line} has text after the closing quote of a field"
                ))
            }
            (_, _) => State::Unquoted,
        };
        if c == b'\n' {
            line += 1;
        }
    }
    matches!(state, State::Quoted)
        .then(|| "the CSV ends inside a quoted field (the file is cut short)".to_string())
}

fn note_ignored(report: &mut ImportReport, n: usize) {
    if n > 0 {
        report
            .notes
            .push(format!("{n} item(s) without a TOTP key were ignored"));
    }
}

fn add(report: &mut ImportReport, f: Fields<'_>) {
    let label = describe(Some(f.name), f.username, || f.place.clone());
    match parse_totp(f.totp, f.name, f.username) {
        Ok(uri) => report.accounts.push(Account {
            uri,
            note: clean_note(f.note),
            tags: {
                let mut tags: Vec<String> = Vec::new();
                for t in f.folders.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
                    if !tags.iter().any(|x| x == t) {
                        tags.push(t.to_string());
                    }
                }
                tags
            },
            favorite: f.favorite,
        }),
        Err(reason) => report.push_unusable(label, reason),
    }
}

fn parse_totp(value: &str, name: &str, username: &str) -> Result<KeyUri, String> {
    let value = value.trim();
    if starts_with_ci(value, "otpauth://") {
        let mut uri = match KeyUri::parse(value) {
            Err(UriError::MissingLabel) => {
                KeyUri::parse(&with_label(value, name, username)).map_err(|e| e.to_string())?
            }
            other => other.map_err(|e| e.to_string())?,
        };
        if uri.issuer.is_none() && !name.trim().is_empty() && uri.account != name.trim() {
            uri.issuer = Some(name.trim().to_string());
        }
        if uri.account.is_empty() && !username.trim().is_empty() {
            uri.account = username.trim().to_string();
        }
        return Ok(uri);
    }
    let (secret, params) = match value.get(..8) {
        Some(p) if p.eq_ignore_ascii_case("steam://") => {
            (value.get(8..).unwrap_or(""), OtpParams::steam())
        }
        _ => (value, OtpParams::totp()),
    };
    let secret = Secret::from_base32(secret).map_err(|e| e.to_string())?;
    Ok(build(Some(name), username, secret, params))
}

/// Puts "name:username" into a URI whose label is empty (`otpauth://totp/?secret=…`), which
/// Bitwarden accepts because the item itself names the account.
fn with_label(value: &str, name: &str, username: &str) -> Zeroizing<String> {
    let enc = |s: &str| utf8_percent_encode(s.trim(), NON_ALPHANUMERIC).to_string();
    let (scheme_host, query) = value.split_once('?').unwrap_or((value, ""));
    let host_end = scheme_host
        .get("otpauth://".len()..)
        .and_then(|rest| rest.find('/'))
        .map_or(scheme_host.len(), |i| i + "otpauth://".len());
    let head = scheme_host.get(..host_end).unwrap_or(scheme_host);
    Zeroizing::new(format!("{head}/{}:{}?{query}", enc(name), enc(username)))
}

//! Aegis Authenticator vault files, after Aegis's `docs/vault.md`
//! (<https://github.com/beemdevelopment/Aegis/blob/master/docs/vault.md>):
//!
//! ```text
//! { "version": 1,
//!   "header": { "slots": [ … ] | null, "params": { "nonce": hex12, "tag": hex16 } | null },
//!   "db": { content } | "Base64 of AES-256-GCM(master key, content JSON)" }
//! ```
//!
//! A *password slot* (`"type": 1`) stores scrypt's `n`, `r`, `p` and a `salt` (hex); the
//! derived 256-bit key decrypts the slot's `key` (the 32-byte master key, hex) with AES-256-GCM
//! using the slot's `key_params` nonce and tag. The master key then decrypts `db` with the
//! header's `params`. Aegis itself uses N = 2^15, r = 8, p = 1 and a 256-bit salt.
//!
//! The content is `{ "version": 1..3, "entries": [ … ], "groups": [ … ] }`. Each entry has a
//! `type` (`totp`, `hotp`, `steam`; Aegis also knows `yandex` and `motp`, which mamori cannot
//! use), `uuid`, `name`, `issuer`, optional `note` and `favorite`, and `info` with `secret`
//! (Base32), `algo`, `digits`, and `period` or `counter`. Versions 1 and 2 put a group name in
//! `group`; version 3 lists group UUIDs in `groups`, defined at the top as
//! `{ "uuid", "name" }`. Groups become tags.

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use zeroize::Zeroizing;

use crate::account::{build, clean_note, describe, params};
use crate::crypto::{aes_gcm_open, aes_gcm_seal, hex_exact, key32, scrypt_key};
use crate::error::json_error;
use crate::{
    check_count, password_bytes, strip_bom, Account, FormatError, ImportReport, SecretString,
};

/// Highest content version this reader knows.
const MAX_CONTENT_VERSION: u64 = 3;
/// Most password slots tried (each costs one scrypt run).
const MAX_PASSWORD_SLOTS: usize = 8;

#[derive(Deserialize)]
struct VaultFile<'a> {
    version: Option<u64>,
    header: Option<Header<'a>>,
    #[serde(borrow)]
    db: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    slots: Option<Vec<&'a RawValue>>,
    params: Option<Params>,
}

#[derive(Deserialize, Serialize)]
struct Params {
    nonce: String,
    tag: String,
}

#[derive(Deserialize)]
struct Slot {
    #[serde(rename = "type")]
    kind: u32,
    key: Option<String>,
    key_params: Option<Params>,
    n: Option<u64>,
    r: Option<u32>,
    p: Option<u32>,
    salt: Option<String>,
}

#[derive(Deserialize)]
struct Content<'a> {
    version: Option<u64>,
    #[serde(borrow)]
    entries: Vec<&'a RawValue>,
    #[serde(default)]
    groups: Vec<Group>,
}

#[derive(Deserialize, Serialize)]
struct Group {
    uuid: String,
    name: String,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: String,
    issuer: Option<String>,
    note: Option<String>,
    #[serde(default)]
    favorite: bool,
    info: Info,
    group: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
}

#[derive(Deserialize)]
struct Info {
    secret: Zeroizing<String>,
    algo: Option<String>,
    digits: Option<u32>,
    period: Option<u64>,
    counter: Option<u64>,
}

pub(crate) fn import(
    input: &[u8],
    password: Option<&SecretString>,
) -> Result<ImportReport, FormatError> {
    let file: VaultFile<'_> =
        serde_json::from_slice(strip_bom(input)).map_err(|e| json_error("the vault", &e))?;
    match file.version {
        Some(1) => {}
        Some(v) => {
            return Err(FormatError::UnsupportedVersion {
                what: "Aegis vault file",
                version: v.to_string(),
            })
        }
        None => return Err(FormatError::damaged("the vault has no version field")),
    }
    let db = file
        .db
        .ok_or_else(|| FormatError::damaged("the vault has no db field"))?;
    let header = file.header;
    let encrypted_db: Option<String> = if db.get().trim_start().starts_with('"') {
        Some(serde_json::from_str(db.get()).map_err(|e| json_error("db", &e))?)
    } else {
        None
    };
    match encrypted_db {
        None => read_content(db.get().as_bytes()),
        Some(b64) => {
            let password = password.ok_or(FormatError::PasswordRequired)?;
            let header =
                header.ok_or_else(|| FormatError::damaged("the encrypted vault has no header"))?;
            let master = unlock(&header, password)?;
            let params = header
                .params
                .as_ref()
                .ok_or_else(|| FormatError::damaged("header.params is missing"))?;
            let nonce = hex_exact("header.params.nonce", &params.nonce, 12)?;
            let tag = hex_exact("header.params.tag", &params.tag, 16)?;
            let mut sealed = crate::crypto::base64("db", &b64)?;
            sealed.extend_from_slice(&tag);
            let plain = aes_gcm_open(&master, &nonce, &sealed).ok_or_else(|| {
                FormatError::damaged("db fails authentication with the unlocked master key")
            })?;
            read_content(&plain)
        }
    }
}

/// Finds the master key with the first password slot the password opens.
fn unlock(
    header: &Header<'_>,
    password: &SecretString,
) -> Result<Zeroizing<[u8; 32]>, FormatError> {
    let slots = header
        .slots
        .as_ref()
        .ok_or_else(|| FormatError::damaged("header.slots is missing"))?;
    let mut tried = 0;
    for (i, raw) in slots.iter().enumerate() {
        let slot: Slot = serde_json::from_str(raw.get())
            .map_err(|e| json_error(&format!("header.slots[{i}]"), &e))?;
        if slot.kind != 1 {
            continue; // raw (0) and biometric (2) slots need keys we do not have
        }
        tried += 1;
        if tried > MAX_PASSWORD_SLOTS {
            break;
        }
        let part = |f: &str| format!("header.slots[{i}].{f}");
        let missing = |f: &str| FormatError::damaged(format!("{} is missing", part(f)));
        let salt = hex_any(
            &part("salt"),
            slot.salt.as_deref().ok_or_else(|| missing("salt"))?,
        )?;
        let (n, r, p) = (
            slot.n.ok_or_else(|| missing("n"))?,
            slot.r.ok_or_else(|| missing("r"))?,
            slot.p.ok_or_else(|| missing("p"))?,
        );
        let key_params = slot
            .key_params
            .as_ref()
            .ok_or_else(|| missing("key_params"))?;
        let mut wrapped = hex_exact(
            &part("key"),
            slot.key.as_deref().ok_or_else(|| missing("key"))?,
            32,
        )?;
        let nonce = hex_exact(&part("key_params.nonce"), &key_params.nonce, 12)?;
        let tag = hex_exact(&part("key_params.tag"), &key_params.tag, 16)?;
        wrapped.extend_from_slice(&tag);
        let kek = scrypt_key(password_bytes(password), &salt, n, r, p)?;
        if let Some(master) = aes_gcm_open(&kek, &nonce, &wrapped) {
            return key32(&master)
                .ok_or_else(|| FormatError::damaged(format!("{} is not 32 bytes", part("key"))));
        }
    }
    if tried == 0 {
        return Err(FormatError::Unsupported(
            "this Aegis vault has no password slot (only biometric or raw keys): export it from Aegis with a password".into(),
        ));
    }
    Err(FormatError::WrongPassword)
}

fn hex_any(part: &str, text: &str) -> Result<Zeroizing<Vec<u8>>, FormatError> {
    data_encoding::HEXLOWER_PERMISSIVE
        .decode(text.trim().as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| FormatError::damaged(format!("{part} is not valid hexadecimal")))
}

fn read_content(json: &[u8]) -> Result<ImportReport, FormatError> {
    let content: Content<'_> =
        serde_json::from_slice(json).map_err(|e| json_error("the vault content (db)", &e))?;
    match content.version {
        Some(v) if (1..=MAX_CONTENT_VERSION).contains(&v) => {}
        Some(v) => {
            return Err(FormatError::UnsupportedVersion {
                what: "Aegis vault content",
                version: v.to_string(),
            })
        }
        None => return Err(FormatError::damaged("db has no version field")),
    }
    check_count(content.entries.len())?;
    let mut report = ImportReport::default();
    for (i, raw) in content.entries.iter().enumerate() {
        let entry: Entry = match serde_json::from_str(raw.get()) {
            Ok(e) => e,
            Err(e) => {
                let FormatError::Damaged { what } = json_error("the entry", &e) else {
                    continue;
                };
                report.push_unusable(format!("entry {}", i + 1), what);
                continue;
            }
        };
        let name = describe(entry.issuer.as_deref(), &entry.name, || {
            format!("entry {}", i + 1)
        });
        let result = params(
            &entry.kind,
            entry.info.algo.as_deref(),
            entry.info.digits,
            entry.info.period,
            entry.info.counter,
        )
        .and_then(|p| {
            mamori_otp::Secret::from_base32(&entry.info.secret)
                .map(|s| (s, p))
                .map_err(|e| e.to_string())
        });
        match result {
            Ok((secret, p)) => {
                let mut tags: Vec<String> = Vec::new();
                if let Some(g) = entry
                    .group
                    .as_deref()
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                {
                    tags.push(g.to_string());
                }
                for id in &entry.groups {
                    match content.groups.iter().find(|g| &g.uuid == id) {
                        Some(g) if !tags.contains(&g.name) => tags.push(g.name.clone()),
                        Some(_) => {}
                        None => report
                            .notes
                            .push(format!("{name}: refers to an unknown group {id}; ignored")),
                    }
                }
                report.accounts.push(Account {
                    uri: build(entry.issuer.as_deref(), &entry.name, secret, p),
                    note: clean_note(entry.note.as_deref()),
                    tags,
                    favorite: entry.favorite,
                });
            }
            Err(reason) => report.push_unusable(name, reason),
        }
    }
    Ok(report)
}

/// scrypt parameters for an encrypted Aegis export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AegisKdf {
    /// CPU/memory cost, a power of two.
    pub n: u64,
    /// Block size.
    pub r: u32,
    /// Parallelism.
    pub p: u32,
}

impl Default for AegisKdf {
    /// Aegis's own parameters: N = 2^15, r = 8, p = 1 (docs/vault.md, "KDF").
    fn default() -> Self {
        AegisKdf {
            n: 1 << 15,
            r: 8,
            p: 1,
        }
    }
}

#[derive(Serialize)]
struct OutFile<D: Serialize> {
    version: u32,
    header: OutHeader,
    db: D,
}

#[derive(Serialize)]
struct OutHeader {
    slots: Option<Vec<OutSlot>>,
    params: Option<Params>,
}

#[derive(Serialize)]
struct OutSlot {
    #[serde(rename = "type")]
    kind: u32,
    uuid: String,
    key: String,
    key_params: Params,
    n: u64,
    r: u32,
    p: u32,
    salt: String,
    repaired: bool,
    is_backup: bool,
}

#[derive(Serialize)]
struct OutContent<'a> {
    version: u32,
    entries: Vec<OutEntry<'a>>,
    groups: Vec<Group>,
}

#[derive(Serialize)]
struct OutEntry<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    uuid: String,
    name: &'a str,
    issuer: &'a str,
    note: &'a str,
    favorite: bool,
    icon: Option<()>,
    info: OutInfo<'a>,
    groups: Vec<String>,
}

#[derive(Serialize)]
struct OutInfo<'a> {
    secret: &'a str,
    algo: &'static str,
    digits: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    period: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    counter: Option<u64>,
}

fn uuid_v4<R: RngCore + CryptoRng>(rng: &mut R) -> String {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// Writes an Aegis vault (content version 3) that Aegis can import: plain JSON without a
/// password, or encrypted with one password slot using Aegis's own scrypt parameters.
/// Tags become Aegis groups; notes and favourite marks are kept.
pub fn export_aegis<R: RngCore + CryptoRng>(
    accounts: &[Account],
    password: Option<&SecretString>,
    rng: &mut R,
) -> Result<Zeroizing<Vec<u8>>, FormatError> {
    export_aegis_with(accounts, password, AegisKdf::default(), rng)
}

/// [`export_aegis`] with chosen scrypt parameters (within the limits the reader accepts).
pub fn export_aegis_with<R: RngCore + CryptoRng>(
    accounts: &[Account],
    password: Option<&SecretString>,
    kdf: AegisKdf,
    rng: &mut R,
) -> Result<Zeroizing<Vec<u8>>, FormatError> {
    let secrets: Vec<Zeroizing<String>> =
        accounts.iter().map(|a| a.uri.secret.to_base32()).collect();
    let content_value = content(accounts, &secrets, rng);
    let estimate = accounts.len() * 512 + 256;
    let Some(password) = password else {
        let file = OutFile {
            version: 1,
            header: OutHeader {
                slots: None,
                params: None,
            },
            db: &content_value,
        };
        return to_json(&file, estimate);
    };
    let content = to_json(&content_value, estimate)?;

    let mut master = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(master.as_mut());
    let mut db_nonce = [0u8; 12];
    rng.fill_bytes(&mut db_nonce);
    let sealed = aes_gcm_seal(&master, &db_nonce, &content)?;
    let (db_ct, db_tag) = sealed.split_at(sealed.len().saturating_sub(16));

    let mut salt = [0u8; 32];
    rng.fill_bytes(&mut salt);
    let kek = scrypt_key(password_bytes(password), &salt, kdf.n, kdf.r, kdf.p)?;
    let mut key_nonce = [0u8; 12];
    rng.fill_bytes(&mut key_nonce);
    let wrapped = aes_gcm_seal(&kek, &key_nonce, master.as_ref())?;
    let (key_ct, key_tag) = wrapped.split_at(wrapped.len().saturating_sub(16));
    let hex = |b: &[u8]| data_encoding::HEXLOWER.encode(b);
    let file = OutFile {
        version: 1,
        header: OutHeader {
            slots: Some(vec![OutSlot {
                kind: 1,
                uuid: uuid_v4(rng),
                key: hex(key_ct),
                key_params: Params {
                    nonce: hex(&key_nonce),
                    tag: hex(key_tag),
                },
                n: kdf.n,
                r: kdf.r,
                p: kdf.p,
                salt: hex(&salt),
                repaired: true,
                is_backup: false,
            }]),
            params: Some(Params {
                nonce: hex(&db_nonce),
                tag: hex(db_tag),
            }),
        },
        db: data_encoding::BASE64.encode(db_ct),
    };
    to_json(&file, db_ct.len() * 4 / 3 + 1024)
}

fn content<'a, R: RngCore + CryptoRng>(
    accounts: &'a [Account],
    secrets: &'a [Zeroizing<String>],
    rng: &mut R,
) -> OutContent<'a> {
    use mamori_otp::OtpKind;
    let mut groups: Vec<Group> = Vec::new();
    for tag in accounts.iter().flat_map(|a| &a.tags) {
        if !groups.iter().any(|g| &g.name == tag) {
            groups.push(Group {
                uuid: uuid_v4(rng),
                name: tag.clone(),
            });
        }
    }
    let mut entries = Vec::with_capacity(accounts.len());
    for (a, secret) in accounts.iter().zip(secrets) {
        let p = &a.uri.params;
        let (kind, period, counter) = match p.kind {
            OtpKind::Totp => ("totp", Some(p.period), None),
            OtpKind::Hotp => ("hotp", None, Some(p.counter)),
            OtpKind::Steam => ("steam", Some(p.period), None),
        };
        entries.push(OutEntry {
            kind,
            uuid: uuid_v4(rng),
            name: &a.uri.account,
            issuer: a.uri.issuer.as_deref().unwrap_or(""),
            note: a.note.as_deref().unwrap_or(""),
            favorite: a.favorite,
            icon: None,
            info: OutInfo {
                secret,
                algo: p.algorithm.as_str(),
                digits: p.digits,
                period,
                counter,
            },
            groups: a
                .tags
                .iter()
                .filter_map(|t| groups.iter().find(|g| &g.name == t).map(|g| g.uuid.clone()))
                .collect(),
        });
    }
    OutContent {
        version: 3,
        entries,
        groups,
    }
}

/// Serialises into a buffer sized up front (so growth does not leave copies of secrets in
/// freed memory) that is wiped on drop.
fn to_json<T: Serialize>(value: &T, estimate: usize) -> Result<Zeroizing<Vec<u8>>, FormatError> {
    let mut out = Zeroizing::new(Vec::with_capacity(estimate));
    serde_json::to_writer(&mut *out, value)
        .map_err(|e| FormatError::Export(format!("JSON: {e}")))?;
    Ok(out)
}

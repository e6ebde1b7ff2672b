//! Fixture generator: writes every supported format from our own entries and passwords, with
//! the real key-derivation functions and ciphers (parameters lowered only where the format
//! stores them), following the same published descriptions the readers cite.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    dead_code
)]

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use data_encoding::{BASE64, HEXLOWER};
use mamori_formats::secretstream::{State, Tag};
use mamori_formats::{Account, SecretString};
use mamori_otp::{Algorithm, KeyUri, OtpKind, OtpParams, Secret};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

pub fn pw(s: &str) -> SecretString {
    SecretString::from(s.to_string())
}

pub fn account(
    issuer: Option<&str>,
    name: &str,
    secret: &[u8],
    params: OtpParams,
    note: Option<&str>,
    tags: &[&str],
    favorite: bool,
) -> Account {
    Account {
        uri: KeyUri {
            issuer: issuer.map(str::to_string),
            account: name.to_string(),
            secret: Secret::from_bytes(secret.to_vec()).unwrap(),
            params,
        },
        note: note.map(str::to_string),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        favorite,
    }
}

fn p(kind: OtpKind, algorithm: Algorithm, digits: u32, period: u64, counter: u64) -> OtpParams {
    OtpParams {
        kind,
        algorithm,
        digits,
        period,
        counter,
    }
}

/// A varied set: every algorithm, 6–8 digits, unusual periods, HOTP, Steam, Unicode, no issuer,
/// an empty account name, notes, tags and favourites.
pub fn sample() -> Vec<Account> {
    vec![
        account(
            Some("ACME Co"),
            "alice@example.com",
            b"12345678901234567890",
            OtpParams::totp(),
            Some("recovery codes in the safe"),
            &["work", "email"],
            true,
        ),
        account(
            Some("Grüße GmbH"),
            "bob",
            &[0xA5; 32],
            p(OtpKind::Totp, Algorithm::Sha256, 8, 60, 0),
            None,
            &["work"],
            false,
        ),
        account(
            None,
            "carol",
            &[0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A],
            p(OtpKind::Totp, Algorithm::Sha512, 7, 45, 0),
            None,
            &[],
            false,
        ),
        account(
            Some("Bank"),
            "dave",
            b"hotp-secret-bytes!!!",
            p(OtpKind::Hotp, Algorithm::Sha1, 6, 30, 42),
            Some("card reader"),
            &[],
            false,
        ),
        account(
            Some("Steam"),
            "gamer",
            &[0x5A; 20],
            OtpParams::steam(),
            None,
            &["games"],
            true,
        ),
        account(
            Some("Example"),
            "",
            &[0xFF, 0x00, 0x7F, 0x80, 0x42],
            OtpParams::totp(),
            None,
            &[],
            false,
        ),
    ]
}

/// What a format carries besides the key URI.
#[derive(Clone, Copy)]
pub struct Carries {
    pub note: bool,
    /// 0: no tags; 1: the first tag only; usize::MAX: all.
    pub tags: usize,
    pub favorite: bool,
}

pub const URI_ONLY: Carries = Carries {
    note: false,
    tags: 0,
    favorite: false,
};
pub const EVERYTHING: Carries = Carries {
    note: true,
    tags: usize::MAX,
    favorite: true,
};

/// Asserts that `got` holds exactly `want` (in order) as far as the format carries.
pub fn assert_accounts(got: &[Account], want: &[Account], carries: Carries) {
    assert_eq!(
        got.len(),
        want.len(),
        "account count: got {:?}",
        got.iter().map(|a| a.display_name()).collect::<Vec<_>>()
    );
    for (g, w) in got.iter().zip(want) {
        let name = w.display_name();
        assert_eq!(g.uri.issuer, w.uri.issuer, "{name}: issuer");
        assert_eq!(g.uri.account, w.uri.account, "{name}: account");
        assert_eq!(
            g.uri.secret.as_bytes(),
            w.uri.secret.as_bytes(),
            "{name}: secret"
        );
        assert_eq!(g.uri.params, w.uri.params, "{name}: params");
        if carries.note {
            assert_eq!(g.note, w.note, "{name}: note");
        }
        let want_tags: Vec<String> = w.tags.iter().take(carries.tags).cloned().collect();
        assert_eq!(g.tags, want_tags, "{name}: tags");
        if carries.favorite {
            assert_eq!(g.favorite, w.favorite, "{name}: favorite");
        }
    }
}

pub fn b32(a: &Account) -> String {
    a.uri.secret.to_base32().to_string()
}

fn algo(a: &Account) -> &'static str {
    a.uri.params.algorithm.as_str()
}

pub fn gcm_seal(key: &[u8], nonce: &[u8], plain: &[u8]) -> Vec<u8> {
    Aes256Gcm::new_from_slice(key)
        .unwrap()
        .encrypt(Nonce::from_slice(nonce), plain)
        .unwrap()
}

pub fn random<const N: usize>(rng: &mut StdRng) -> [u8; N] {
    let mut b = [0u8; N];
    rng.fill_bytes(&mut b);
    b
}

// ---------------------------------------------------------------- Aegis (docs/vault.md)

/// Aegis content JSON for content `version` 1, 2 (first tag as `group`) or 3 (`groups`).
pub fn aegis_content(accounts: &[Account], version: u32) -> Value {
    let mut groups: Vec<(String, String)> = Vec::new();
    let entries: Vec<Value> = accounts
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let pr = &a.uri.params;
            let (kind, extra) = match pr.kind {
                OtpKind::Totp => ("totp", json!({ "period": pr.period })),
                OtpKind::Hotp => ("hotp", json!({ "counter": pr.counter })),
                OtpKind::Steam => ("steam", json!({ "period": 30 })),
            };
            let mut info = json!({ "secret": b32(a), "algo": algo(a), "digits": pr.digits });
            info.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            let mut e = json!({
                "type": kind,
                "uuid": format!("00000000-0000-4000-8000-{i:012}"),
                "name": a.uri.account,
                "issuer": a.uri.issuer.clone().unwrap_or_default(),
                "note": a.note.clone().unwrap_or_default(),
                "favorite": a.favorite,
                "icon": null,
                "info": info,
            });
            if version >= 3 {
                let ids: Vec<String> = a
                    .tags
                    .iter()
                    .map(|t| match groups.iter().find(|(_, n)| n == t) {
                        Some((id, _)) => id.clone(),
                        None => {
                            let id = format!("10000000-0000-4000-8000-{:012}", groups.len());
                            groups.push((id.clone(), t.clone()));
                            id
                        }
                    })
                    .collect();
                e["groups"] = json!(ids);
            } else {
                e["group"] = json!(a.tags.first());
            }
            e
        })
        .collect();
    let mut content = json!({ "version": version, "entries": entries });
    if version >= 3 {
        content["groups"] = json!(groups
            .iter()
            .map(|(id, n)| json!({ "uuid": id, "name": n }))
            .collect::<Vec<_>>());
    }
    content
}

pub fn aegis_plain(content: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(&json!({
        "version": 1,
        "header": { "slots": null, "params": null },
        "db": content,
    }))
    .unwrap()
}

/// Encrypted Aegis vault: one biometric slot (unusable here) and one password slot per
/// password, scrypt with the given parameters.
pub fn aegis_encrypted(
    content: &Value,
    passwords: &[&str],
    n: u64,
    r: u32,
    pp: u32,
    rng: &mut StdRng,
) -> Vec<u8> {
    let master: [u8; 32] = random(rng);
    let db_nonce: [u8; 12] = random(rng);
    let sealed = gcm_seal(&master, &db_nonce, &serde_json::to_vec(content).unwrap());
    let (ct, tag) = sealed.split_at(sealed.len() - 16);
    let mut slots = vec![json!({
        "type": 2,
        "uuid": "20000000-0000-4000-8000-000000000000",
        "key": HEXLOWER.encode(&random::<32>(rng)),
        "key_params": { "nonce": HEXLOWER.encode(&random::<12>(rng)), "tag": HEXLOWER.encode(&random::<16>(rng)) },
    })];
    for (i, password) in passwords.iter().enumerate() {
        let salt: [u8; 32] = random(rng);
        let mut kek = [0u8; 32];
        let params = scrypt::Params::new(n.trailing_zeros() as u8, r, pp, 32).unwrap();
        scrypt::scrypt(password.as_bytes(), &salt, &params, &mut kek).unwrap();
        let nonce: [u8; 12] = random(rng);
        let wrapped = gcm_seal(&kek, &nonce, &master);
        let (k, t) = wrapped.split_at(32);
        slots.push(json!({
            "type": 1,
            "uuid": format!("30000000-0000-4000-8000-{i:012}"),
            "key": HEXLOWER.encode(k),
            "key_params": { "nonce": HEXLOWER.encode(&nonce), "tag": HEXLOWER.encode(t) },
            "n": n, "r": r, "p": pp,
            "salt": HEXLOWER.encode(&salt),
            "repaired": true,
        }));
    }
    serde_json::to_vec(&json!({
        "version": 1,
        "header": {
            "slots": slots,
            "params": { "nonce": HEXLOWER.encode(&db_nonce), "tag": HEXLOWER.encode(tag) },
        },
        "db": BASE64.encode(ct),
    }))
    .unwrap()
}

// ---------------------------------------------------------------- 2FAS

pub const TWOFAS_REFERENCE: &str = "tRViSsLKzd86Hprh4ceC2OP7xazn4rrt4xhfEUbOjxLX8Rc3mkISXE0lWbmnWfggogbBJhtYgpK6fMl1D6mtsy92R3HkdGfwuXbzLebqVFJsR7IZ2w58t938iymwG4824igYy1wi6n2WDpO1Q1P69zwJGs2F5a1qP4MyIiDSD7NCV2OvidXQCBnDlGfmz0f1BQySRkkt4ryiJeCjD2o4QsveJ9uDBUn8ELyOrESv5R5DMDkD4iAF8TXU7KyoJujd";

/// The services array of a 2FAS backup of `schema` 1..=4 (schema 1 has no `otp` parameters and
/// no token type; groups from schema 2 on, first tag only).
pub fn twofas_services(accounts: &[Account], schema: u32) -> (Value, Value) {
    let mut groups: Vec<(String, String)> = Vec::new();
    let services: Vec<Value> = accounts
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let pr = &a.uri.params;
            let issuer = a.uri.issuer.clone().unwrap_or_default();
            let mut otp = json!({
                "label": format!("{issuer}:{}", a.uri.account),
                "account": a.uri.account,
                "issuer": issuer,
            });
            if schema >= 2 {
                otp["digits"] = json!(pr.digits);
                otp["algorithm"] = json!(algo(a));
                match pr.kind {
                    OtpKind::Hotp => otp["counter"] = json!(pr.counter),
                    _ => otp["period"] = json!(pr.period),
                }
            }
            if schema >= 4 {
                otp["tokenType"] = json!(match pr.kind {
                    OtpKind::Totp => "TOTP",
                    OtpKind::Hotp => "HOTP",
                    OtpKind::Steam => "STEAM",
                });
            }
            let mut s = json!({
                "name": issuer,
                "secret": b32(a),
                "updatedAt": 1_700_000_000_000u64 + i as u64,
                "type": "Unknown",
                "otp": otp,
                "order": { "position": i },
            });
            if schema >= 2 {
                if let Some(t) = a.tags.first() {
                    let id = match groups.iter().find(|(_, n)| n == t) {
                        Some((id, _)) => id.clone(),
                        None => {
                            let id = format!("group-{}", groups.len());
                            groups.push((id.clone(), t.clone()));
                            id
                        }
                    };
                    s["groupId"] = json!(id);
                }
            }
            s
        })
        .collect();
    let groups = json!(groups
        .iter()
        .map(|(id, n)| json!({ "id": id, "name": n, "isExpanded": true }))
        .collect::<Vec<_>>());
    (json!(services), groups)
}

fn twofas_seal(key: &[u8], salt: &[u8], plain: &[u8], rng: &mut StdRng) -> String {
    let iv: [u8; 12] = random(rng);
    let ct = gcm_seal(key, &iv, plain);
    format!(
        "{}:{}:{}",
        BASE64.encode(&ct),
        BASE64.encode(salt),
        BASE64.encode(&iv)
    )
}

/// A `.2fas` file; encrypted when `password` is given (PBKDF2-HMAC-SHA256, 10,000 iterations,
/// 256-byte salt as the apps write, AES-256-GCM, with the `reference` field).
pub fn twofas(
    accounts: &[Account],
    schema: u32,
    password: Option<&str>,
    rng: &mut StdRng,
) -> Vec<u8> {
    let (services, groups) = twofas_services(accounts, schema);
    let mut file = json!({
        "services": services,
        "updatedAt": 1_700_000_000_000u64,
        "schemaVersion": schema,
        "appVersionCode": 5000009,
        "appVersionName": "5.1.0",
        "appOrigin": "android",
    });
    if schema >= 2 {
        file["groups"] = groups;
    }
    if let Some(password) = password {
        let salt: [u8; 256] = {
            let mut s = [0u8; 256];
            rng.fill_bytes(&mut s);
            s
        };
        let mut key = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, 10_000, &mut key);
        file["servicesEncrypted"] = json!(twofas_seal(
            &key,
            &salt,
            &serde_json::to_vec(&file["services"]).unwrap(),
            rng
        ));
        file["reference"] = json!(twofas_seal(&key, &salt, TWOFAS_REFERENCE.as_bytes(), rng));
        file["services"] = json!([]);
    }
    serde_json::to_vec(&file).unwrap()
}

// ---------------------------------------------------------------- andOTP

pub fn andotp_json(accounts: &[Account]) -> Vec<u8> {
    let entries: Vec<Value> = accounts
        .iter()
        .map(|a| {
            let pr = &a.uri.params;
            let mut e = json!({
                "secret": format!("{}======", b32(a)),
                "issuer": a.uri.issuer.clone().unwrap_or_default(),
                "label": a.uri.account,
                "digits": pr.digits,
                "type": match pr.kind { OtpKind::Totp => "TOTP", OtpKind::Hotp => "HOTP", OtpKind::Steam => "STEAM" },
                "algorithm": algo(a),
                "thumbnail": "Default",
                "last_used": 1_608_146_844_162u64,
                "used_frequency": 0,
                "tags": a.tags,
            });
            match pr.kind {
                OtpKind::Hotp => e["counter"] = json!(pr.counter),
                _ => e["period"] = json!(pr.period),
            }
            e
        })
        .collect();
    serde_json::to_vec(&entries).unwrap()
}

/// Current andOTP encryption: iterations (BE u32) ‖ salt(12) ‖ nonce(12) ‖ GCM(ct ‖ tag), key
/// PBKDF2-HMAC-SHA1.
pub fn andotp_encrypt(plain: &[u8], password: &str, iterations: u32, rng: &mut StdRng) -> Vec<u8> {
    let salt: [u8; 12] = random(rng);
    let nonce: [u8; 12] = random(rng);
    let mut key = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password.as_bytes(), &salt, iterations, &mut key);
    let mut out = iterations.to_be_bytes().to_vec();
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&gcm_seal(&key, &nonce, plain));
    out
}

/// Old andOTP encryption: nonce(12) ‖ GCM(ct ‖ tag), key SHA-256(password).
pub fn andotp_encrypt_old(plain: &[u8], password: &str, rng: &mut StdRng) -> Vec<u8> {
    let nonce: [u8; 12] = random(rng);
    let key = Sha256::digest(password.as_bytes());
    let mut out = nonce.to_vec();
    out.extend_from_slice(&gcm_seal(&key, &nonce, plain));
    out
}

// ---------------------------------------------------------------- Bitwarden

/// How a Bitwarden item stores its key.
#[derive(Clone, Copy)]
pub enum TotpStyle {
    /// A full otpauth URI.
    Uri,
    /// The bare Base32 secret (default TOTP only) or steam://SECRET for Steam.
    Bare,
}

fn bitwarden_totp(a: &Account, style: TotpStyle) -> String {
    match (style, a.uri.params.kind) {
        (TotpStyle::Bare, OtpKind::Steam) => format!("steam://{}", b32(a)),
        (TotpStyle::Bare, _) => b32(a),
        (TotpStyle::Uri, _) => a.uri.to_uri().to_string(),
    }
}

fn item_name(a: &Account) -> String {
    a.uri
        .issuer
        .clone()
        .unwrap_or_else(|| a.uri.account.clone())
}

pub fn bitwarden_json(accounts: &[Account], style: TotpStyle) -> Vec<u8> {
    let mut folders: Vec<(String, String)> = Vec::new();
    let mut items: Vec<Value> = accounts
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let folder = a
                .tags
                .first()
                .map(|t| match folders.iter().find(|(_, n)| n == t) {
                    Some((id, _)) => id.clone(),
                    None => {
                        let id = format!("f{}", folders.len());
                        folders.push((id.clone(), t.clone()));
                        id
                    }
                });
            json!({
                "id": format!("item-{i}"), "organizationId": null, "folderId": folder,
                "type": 1, "reprompt": 0, "name": item_name(a), "notes": a.note,
                "favorite": a.favorite,
                "login": { "uris": [{ "match": null, "uri": "https://example.com" }],
                           "username": a.uri.account, "password": "hunter2",
                           "totp": bitwarden_totp(a, style) },
                "collectionIds": null,
            })
        })
        .collect();
    // A login without TOTP and a secure note: both ignored.
    items.push(
        json!({ "id": "x", "type": 1, "name": "no totp", "favorite": false,
                       "login": { "username": "u", "password": "p", "totp": null } }),
    );
    items.push(
        json!({ "id": "y", "type": 2, "name": "a note", "favorite": false, "notes": "text",
                       "secureNote": { "type": 0 } }),
    );
    serde_json::to_vec_pretty(&json!({
        "encrypted": false,
        "folders": folders.iter().map(|(id, n)| json!({ "id": id, "name": n })).collect::<Vec<_>>(),
        "items": items,
    }))
    .unwrap()
}

pub fn bitwarden_csv(accounts: &[Account], style: TotpStyle) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "folder",
        "favorite",
        "type",
        "name",
        "notes",
        "fields",
        "reprompt",
        "login_uri",
        "login_username",
        "login_password",
        "login_totp",
    ])
    .unwrap();
    for a in accounts {
        w.write_record([
            a.tags.first().map(String::as_str).unwrap_or(""),
            if a.favorite { "1" } else { "" },
            "login",
            &item_name(a),
            a.note.as_deref().unwrap_or(""),
            "",
            "0",
            "https://example.com",
            &a.uri.account,
            "hunter2",
            &bitwarden_totp(a, style),
        ])
        .unwrap();
    }
    w.write_record(["", "", "login", "no totp", "", "", "0", "", "u", "p", ""])
        .unwrap();
    w.into_inner().unwrap()
}

// ---------------------------------------------------------------- Ente

/// Ente's plain export: otpauth lines with the extra `codeDisplay` parameter.
pub fn ente_plain(accounts: &[Account]) -> String {
    accounts
        .iter()
        .map(|a| {
            format!(
                "{}&codeDisplay=%7B%22pinned%22%3Afalse%2C%22trashed%22%3Afalse%2C%22tags%22%3A%5B%5D%7D\n",
                a.uri.to_uri().as_str()
            )
        })
        .collect()
}

/// Ente's encrypted export: Argon2id (libsodium crypto_pwhash semantics) and one FINAL message
/// of a secretstream, pushed with our own implementation (itself checked against libsodium
/// vectors in tests/formats/secretstream.rs).
pub fn ente_encrypted(
    plain: &str,
    password: &str,
    mem_limit: u64,
    ops_limit: u32,
    rng: &mut StdRng,
) -> Vec<u8> {
    let salt: [u8; 16] = random(rng);
    let header: [u8; 24] = random(rng);
    let params = argon2::Params::new((mem_limit / 1024) as u32, ops_limit, 1, Some(32)).unwrap();
    let mut key = [0u8; 32];
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(password.as_bytes(), &salt, &mut key)
        .unwrap();
    let sealed = State::new(&key, &header).push(plain.as_bytes(), &[], Tag::Final);
    serde_json::to_vec(&json!({
        "version": 1,
        "kdfParams": { "memLimit": mem_limit, "opsLimit": ops_limit, "salt": BASE64.encode(&salt) },
        "encryptedData": BASE64.encode(&sealed),
        "encryptionNonce": BASE64.encode(&header),
    }))
    .unwrap()
}

// ---------------------------------------------------------------- FreeOTP+

/// FreeOTP+ export: signed-byte secrets, HOTP counter stored one behind, Steam as a 5-digit
/// TOTP token of issuer "Steam".
pub fn freeotp_plus(accounts: &[Account]) -> Vec<u8> {
    let tokens: Vec<Value> = accounts
        .iter()
        .map(|a| {
            let pr = &a.uri.params;
            let issuer = a.uri.issuer.clone().unwrap_or_default();
            json!({
                "algo": algo(a),
                "counter": if pr.kind == OtpKind::Hotp { pr.counter - 1 } else { 0 },
                "digits": pr.digits,
                "issuerExt": issuer,
                "issuerInt": issuer,
                "label": a.uri.account,
                "period": pr.period,
                "secret": a.uri.secret.as_bytes().iter().map(|b| *b as i8).collect::<Vec<_>>(),
                "type": if pr.kind == OtpKind::Hotp { "HOTP" } else { "TOTP" },
            })
        })
        .collect();
    // tokenOrder lists the tokens in reverse file order; the reader must follow it.
    let order: Vec<String> = accounts
        .iter()
        .rev()
        .map(|a| match &a.uri.issuer {
            Some(i) => format!("{i}:{}", a.uri.account),
            None => a.uri.account.clone(),
        })
        .collect();
    serde_json::to_vec(&json!({ "tokenOrder": order, "tokens": tokens })).unwrap()
}

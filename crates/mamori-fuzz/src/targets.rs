//! One function per parser that takes outside bytes, and the seeds each one starts from beyond
//! its corpus directory. A target ignores the parser's `Result`: it only has to return, without
//! panicking, in bounded time.

use std::path::Path;
use std::sync::OnceLock;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use mamori_formats::{Account, AegisKdf, Format, SecretString};
use mamori_otp::KeyUri;
use mamori_pskc::Decryption;
use mamori_sync::crypto::SyncKey;
use mamori_sync::merge::{Stamp, Version};
use mamori_sync::state::{Registered, State};
use mamori_vault::format::{DataKey, Header, KdfParams};
use mamori_vault::{NewEntry, Unlock, Vault, VaultFile};
use rand::rngs::StdRng;
use rand::SeedableRng;
use sha2::{Digest, Sha256};
use uuid::Uuid;
use zeroize::Zeroizing;

/// The password every encrypted seed is made with, and every encrypted target tries.
pub const PASSWORD: &str = "correct horse battery staple";

/// A parser under test.
pub struct Target {
    /// Name on the command line and of the corpus directory.
    pub name: &'static str,
    /// Runs the parser on one input.
    pub run: fn(&[u8]),
    /// Seeds made by code (encrypted files, encodings), added to the corpus directory's files.
    pub seeds: fn() -> Vec<Vec<u8>>,
    /// Whether token-level (line, JSON) mutations make sense.
    pub text: bool,
    /// Relative cost: the short run gives a target `iterations / cost` executions, so slow
    /// targets (key derivation on every input) do not dominate it. andOTP is the extreme: its
    /// files choose their own PBKDF2 count, up to the reader's cap, so a mutated file of the
    /// real app costs up to a second in a debug build.
    pub cost: u32,
}

/// Every target.
pub fn all() -> Vec<Target> {
    vec![
        t("otpauth_uri", otpauth_uri, uri_seeds, true, 1),
        t(
            "google_migration",
            google_migration,
            migration_seeds,
            false,
            1,
        ),
        t("qr_image", qr_image, qr_seeds, false, 20),
        t("pskc_xml", pskc_xml, none, true, 4),
        t("token_csv", token_csv, none, true, 1),
        t("credential_report", credential_report, none, true, 1),
        t(
            "import_otpauth",
            |b| import(Format::Otpauth, b),
            uri_lines,
            true,
            1,
        ),
        t(
            "import_google_migration",
            |b| import(Format::GoogleMigration, b),
            none,
            true,
            1,
        ),
        t(
            "import_aegis",
            |b| import(Format::Aegis, b),
            aegis_seeds,
            true,
            4,
        ),
        t("import_2fas", |b| import(Format::TwoFas, b), none, true, 4),
        t(
            "import_andotp",
            |b| import(Format::AndOtp, b),
            none,
            false,
            100,
        ),
        t(
            "import_bitwarden",
            |b| import(Format::Bitwarden, b),
            none,
            true,
            1,
        ),
        t("import_ente", |b| import(Format::Ente, b), none, true, 4),
        t(
            "import_freeotp_plus",
            |b| import(Format::FreeOtpPlus, b),
            none,
            true,
            1,
        ),
        t("vault_file", vault_file, vault_file_seeds, false, 2),
        t("vault_payload", vault_payload, vault_payload_seeds, true, 1),
        t("sync_item", sync_item, sync_item_seeds, true, 1),
        t("sync_state", sync_state, sync_state_seeds, true, 1),
        t("api_json", api_json, none, true, 1),
        t("radius_packet", radius_packet, radius_seeds, false, 1),
    ]
}

fn t(
    name: &'static str,
    run: fn(&[u8]),
    seeds: fn() -> Vec<Vec<u8>>,
    text: bool,
    cost: u32,
) -> Target {
    Target {
        name,
        run,
        seeds,
        text,
        cost,
    }
}

fn none() -> Vec<Vec<u8>> {
    Vec::new()
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ---- mamori-otp ----

fn otpauth_uri(bytes: &[u8]) {
    if let Ok(uri) = KeyUri::parse(&lossy(bytes)) {
        // What parsed must print and parse again: a second parser pass over our own output.
        let _ = KeyUri::parse(&uri.to_uri());
        let _ = uri.display_name();
        let _ = mamori_otp::migration::unrepresentable(&uri);
    }
}

fn google_migration(bytes: &[u8]) {
    let _ = mamori_otp::migration::decode_payload(bytes);
    let _ = mamori_otp::migration::decode_uri(&lossy(bytes));
}

fn qr_image(bytes: &[u8]) {
    let _ = mamori_otp::qr::decode(bytes);
}

fn sample_uris() -> Vec<KeyUri> {
    [
        "otpauth://totp/Example:alice@example.com?secret=JBSWY3DPEHPK3PXP&issuer=Example",
        "otpauth://hotp/Bank:bob?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&counter=42&digits=8&algorithm=SHA256",
        "otpauth://totp/Steam:carol?secret=JBSWY3DPEHPK3PXP&issuer=Steam&encoder=steam",
    ]
    .iter()
    .filter_map(|u| KeyUri::parse(u).ok())
    .collect()
}

fn uri_seeds() -> Vec<Vec<u8>> {
    sample_uris()
        .iter()
        .map(|u| u.to_uri().as_bytes().to_vec())
        .collect()
}

fn uri_lines() -> Vec<Vec<u8>> {
    vec![uri_seeds().join(&b'\n')]
}

fn migration_seeds() -> Vec<Vec<u8>> {
    let encoded = mamori_otp::migration::encode(&sample_uris(), 1);
    let mut out: Vec<Vec<u8>> = encoded.uris.iter().map(|u| u.as_bytes().to_vec()).collect();
    // Raw protobuf, including an algorithm and type this crate would refuse to write.
    out.push(mamori_otp::migration::raw_payload(
        &[
            (b"12345678901234567890", "alice", "Example", 1, 1, 2, 0),
            (b"secret", "bob", "", 4, 2, 1, 7),
        ],
        1,
        0,
        1,
    ));
    out
}

fn qr_seeds() -> Vec<Vec<u8>> {
    uri_seeds()
        .iter()
        .take(1)
        .filter_map(|u| mamori_otp::qr::to_png(&lossy(u), 2).ok())
        .collect()
}

// ---- mamori-pskc ----

fn pskc_xml(bytes: &[u8]) {
    let _ = mamori_pskc::parse_pskc(bytes, Decryption::None);
    let _ = mamori_pskc::parse_pskc(bytes, Decryption::Password(PASSWORD.as_bytes()));
    let _ = mamori_pskc::parse_pskc(bytes, Decryption::PreSharedKey(&[0x12; 16]));
}

fn token_csv(bytes: &[u8]) {
    let _ = mamori_pskc::parse_csv(bytes);
}

// ---- mamori-review ----

fn credential_report(bytes: &[u8]) {
    if let Ok(report) = mamori_review::credential_report::parse(bytes) {
        // The review reads every parsed field and does date arithmetic on them.
        let now = time::OffsetDateTime::from_unix_timestamp(1_800_000_000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let _ = mamori_review::credential_report::review(&report, now);
    }
}

// ---- mamori-formats ----

fn import(format: Format, bytes: &[u8]) {
    let pw = SecretString::from(PASSWORD.to_string());
    let _ = mamori_formats::import(format, bytes, Some(&pw));
}

/// Aegis files written by the crate's own exporter, plain and encrypted with the cheapest scrypt
/// parameters the reader accepts, so mutations of the envelope reach decryption quickly.
fn aegis_seeds() -> Vec<Vec<u8>> {
    let accounts: Vec<Account> = sample_uris()
        .into_iter()
        .map(|uri| Account {
            uri,
            note: Some("note".into()),
            tags: vec!["work".into()],
            favorite: true,
        })
        .collect();
    let mut rng = StdRng::seed_from_u64(21);
    let pw = SecretString::from(PASSWORD.to_string());
    let fast = AegisKdf {
        n: 1 << 10,
        r: 8,
        p: 1,
    };
    let mut out = Vec::new();
    if let Ok(plain) = mamori_formats::export_aegis(&accounts, None, &mut rng) {
        out.push(plain.to_vec());
    }
    if let Ok(enc) = mamori_formats::export_aegis_with(&accounts, Some(&pw), fast, &mut rng) {
        out.push(enc.to_vec());
    }
    out
}

// ---- mamori-vault ----

/// A vault with two entries made with the test KDF parameters: the file, its data key, and the
/// decrypted payload.
struct VaultFixture {
    file: Vec<u8>,
    key: DataKey,
    payload: Vec<u8>,
}

const HEADER_LEN: usize = mamori_vault::format::HEADER_LEN;
/// Bytes covered by the header checksum (the checksum fills the rest of the header).
const CHECKED_LEN: usize = HEADER_LEN - 32;
/// Offset of the payload nonce and length in the header (docs/vault-format.md).
const PAYLOAD_NONCE_AT: usize = 127;
const PAYLOAD_LEN_AT: usize = 151;

fn vault_fixture() -> Option<&'static VaultFixture> {
    static FIXTURE: OnceLock<Option<VaultFixture>> = OnceLock::new();
    FIXTURE.get_or_init(make_vault_fixture).as_ref()
}

fn make_vault_fixture() -> Option<VaultFixture> {
    let dir = tempfile::tempdir().ok()?;
    let path = dir.path().join("fuzz.mamori");
    let file = VaultFile::new(&path);
    let mut rng = StdRng::seed_from_u64(21);
    let opened = file
        .create(PASSWORD.as_bytes(), KdfParams::INSECURE_TEST, &mut rng)
        .ok()?;
    file.update(&Unlock::Key(opened.key), &mut rng, |v: &mut Vault| {
        for uri in sample_uris() {
            let _ = v.add(
                NewEntry::from_key_uri(&uri),
                &mut StdRng::seed_from_u64(3),
                1_700_000_000,
            );
        }
        Ok(())
    })
    .ok()?;
    let bytes = std::fs::read(&path).ok()?;
    let header = Header::parse(&bytes, &path).ok()?;
    let key = header.unwrap_key(PASSWORD.as_bytes(), &path).ok()?;
    let payload = decrypt_payload(&bytes, &key)?;
    Some(VaultFixture {
        file: bytes,
        key,
        payload,
    })
}

fn decrypt_payload(file: &[u8], key: &DataKey) -> Option<Vec<u8>> {
    let head = file.get(..HEADER_LEN)?;
    let nonce = file.get(PAYLOAD_NONCE_AT..PAYLOAD_NONCE_AT + 24)?;
    let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
    cipher
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: file.get(HEADER_LEN..)?,
                aad: head,
            },
        )
        .ok()
}

/// Rewrites the header checksum so a mutation of the header is judged by the fields it changed,
/// not rejected by the checksum every time.
fn fix_checksum(file: &mut [u8]) {
    if file.len() < HEADER_LEN {
        return;
    }
    let sum = Sha256::digest(&file[..CHECKED_LEN]);
    file[CHECKED_LEN..HEADER_LEN].copy_from_slice(&sum);
}

fn vault_file(bytes: &[u8]) {
    let path = Path::new("fuzz.mamori");
    let mut file = bytes.to_vec();
    // Half the inputs keep the mutated checksum, to fuzz the checksum path too.
    if file.get(HEADER_LEN - 1).is_some_and(|b| b & 1 == 0) {
        fix_checksum(&mut file);
    }
    let Ok(header) = Header::parse(&file, path) else {
        return;
    };
    // Real-cost Argon2 on every input would turn fuzzing into benchmarking: unwrap only with
    // cheap parameters (the seeds' own), which is what a mutation of a seed mostly keeps.
    if header.kdf.memory_kib <= 1024 && header.kdf.iterations <= 4 {
        if let Ok(key) = header.unwrap_key(PASSWORD.as_bytes(), path) {
            let _ = mamori_vault::format::open(&file, &header, &key, path);
        }
    }
    if let Some(fx) = vault_fixture() {
        // With the known data key, mutations of the payload get past decryption only if the
        // tag still matches, so this mostly checks the tamper path; `vault_payload` fuzzes the
        // decrypted side.
        let _ = mamori_vault::format::open(&file, &header, &fx.key, path);
    }
}

fn vault_file_seeds() -> Vec<Vec<u8>> {
    vault_fixture()
        .map(|f| vec![f.file.clone()])
        .unwrap_or_default()
}

/// Encrypts `payload` into a valid vault file with the fixture's key, then opens it: fuzzes
/// the entries' JSON parser and validation behind the encryption.
fn vault_payload(payload: &[u8]) {
    let Some(fx) = vault_fixture() else {
        return;
    };
    let Some(nonce) = fx.file.get(PAYLOAD_NONCE_AT..PAYLOAD_NONCE_AT + 24) else {
        return;
    };
    let Some(head) = fx.file.get(..HEADER_LEN) else {
        return;
    };
    let mut head = head.to_vec();
    let ct_len = payload.len() as u64 + 16;
    head[PAYLOAD_LEN_AT..PAYLOAD_LEN_AT + 8].copy_from_slice(&ct_len.to_le_bytes());
    fix_checksum(&mut head);
    let cipher = XChaCha20Poly1305::new(fx.key.as_bytes().into());
    let Ok(ct) = cipher.encrypt(
        XNonce::from_slice(nonce),
        Payload {
            msg: payload,
            aad: &head,
        },
    ) else {
        return;
    };
    let mut file = head;
    file.extend_from_slice(&ct);
    let path = Path::new("fuzz.mamori");
    if let Ok(header) = Header::parse(&file, path) {
        if let Ok(vault) = mamori_vault::format::open(&file, &header, &fx.key, path) {
            for e in vault.entries() {
                let _ = e.to_key_uri();
                let _ = e.display_name();
            }
        }
    }
}

fn vault_payload_seeds() -> Vec<Vec<u8>> {
    vault_fixture()
        .map(|f| vec![f.payload.clone()])
        .unwrap_or_default()
}

// ---- mamori-sync ----

const ITEM_ID: Uuid = Uuid::from_u128(0x2121_2121);

fn sync_key() -> SyncKey {
    SyncKey::from_bytes([0x21; 32])
}

/// An item's plaintext (after decryption) and, as text, its ciphertext under a known key.
fn sync_item(bytes: &[u8]) {
    let _ = mamori_sync::merge::decode(ITEM_ID, bytes, false);
    let _ = mamori_sync::merge::decode(ITEM_ID, bytes, true);
    let ad = mamori_sync::crypto::item_ad("acct", ITEM_ID, 1, false);
    if let Some(pt) = mamori_sync::crypto::open_item(&sync_key(), &ad, &lossy(bytes)) {
        let _ = mamori_sync::merge::decode(ITEM_ID, &pt, false);
    }
}

fn sync_item_seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut vault = Vault::new();
    let mut rng = StdRng::seed_from_u64(5);
    for uri in sample_uris() {
        let _ = vault.add(NewEntry::from_key_uri(&uri), &mut rng, 1_700_000_000);
    }
    for e in vault.entries() {
        let mut entry = e.clone();
        entry.id = ITEM_ID;
        let v = Version {
            stamp: Stamp {
                time: 1_700_000_000,
                device: Uuid::from_u128(7),
            },
            counter: 3,
            entry: Some(entry),
        };
        if let Ok(pt) = mamori_sync::merge::encode(&v) {
            let ad = mamori_sync::crypto::item_ad("acct", ITEM_ID, 1, false);
            if let Ok(ct) = mamori_sync::crypto::seal_item(&sync_key(), &ad, &pt, &mut rng) {
                out.push(ct.into_bytes());
            }
            out.push(pt.to_vec());
        }
    }
    out
}

/// The sync state file: its JSON as read after decryption, and the whole file as `load` reads
/// it from disk with a known vault key.
fn sync_state(bytes: &[u8]) {
    let _ = serde_json::from_slice::<State>(bytes);
    static DIR: OnceLock<Option<tempfile::TempDir>> = OnceLock::new();
    let Some(dir) = DIR.get_or_init(|| tempfile::tempdir().ok()).as_ref() else {
        return;
    };
    // One file per thread: the runner is single-threaded, but tests may not be.
    let path = dir
        .path()
        .join(format!("{:?}.mamori.sync", std::thread::current().id()));
    if std::fs::write(&path, bytes).is_ok() {
        let _ = mamori_sync::state::load(&path, &[0x21; 32]);
    }
}

fn sync_state_seeds() -> Vec<Vec<u8>> {
    let state = State::new(
        Registered {
            server: "http://127.0.0.1:8080".into(),
            user: "alice".into(),
            account_id: "acct".into(),
            device_id: Uuid::from_u128(5),
            device_name: "laptop".into(),
            token: Zeroizing::new("token".into()),
        },
        &sync_key(),
        1,
    );
    let mut out = Vec::new();
    if let Ok(json) = serde_json::to_vec(&state) {
        out.push(json);
    }
    let dir = tempfile::tempdir().ok();
    if let Some(dir) = dir {
        let path = dir.path().join("v.mamori.sync");
        let mut rng = StdRng::seed_from_u64(9);
        if mamori_sync::state::save(&path, &[0x21; 32], &state, &mut rng).is_ok() {
            if let Ok(b) = std::fs::read(&path) {
                out.push(b);
            }
        }
    }
    out
}

// ---- mamori-api ----

/// Every request body the server deserialises, tried in turn on the same bytes.
fn api_json(bytes: &[u8]) {
    use mamori_api as a;
    macro_rules! each {
        ($($ty:ty),* $(,)?) => { $( let _ = serde_json::from_slice::<$ty>(bytes); )* };
    }
    each!(
        a::SetupRequest,
        a::SignInRequest,
        a::MfaRequest,
        a::VerifyRequest,
        a::ChangePasswordRequest,
        a::CreateVirtualDeviceRequest,
        a::TwoCodesRequest,
        a::RenameDeviceRequest,
        a::CreateUserRequest,
        a::CreateAppKeyRequest,
        a::ValidateRequest,
        a::preferences::PreferencesRequest,
        a::webauthn::RegisterBeginRequest,
        a::webauthn::RegisterFinishRequest,
        a::webauthn::SignInBeginRequest,
        a::webauthn::SignInFinishRequest,
        a::webauthn::VerifyFinishRequest,
        a::sync::RegisterDeviceRequest,
        a::sync::PutSyncKeysRequest,
        a::sync::PushRequest,
        a::recovery::RecoveryStartRequest,
        a::recovery::RecoveryCodeRequest,
        a::recovery::RecoveryResendRequest,
        a::recovery::GenerateRequest,
        a::recovery::ConfirmRequest,
        a::recovery::SetContactRequest,
    );
}

// ---- mamori-radius (#19) ----

const RADIUS_SECRET: &[u8] = b"fuzz-shared-secret-0123";

fn radius_packet(bytes: &[u8]) {
    // The server's path (verified request, then the password revealed), and the parser and
    // password reveal on their own, since a mutation almost never keeps the HMAC right.
    if let Ok(p) = mamori_radius::verify_request(bytes, RADIUS_SECRET) {
        if let Some(pw) = p.get(mamori_radius::attr::USER_PASSWORD) {
            let _ = mamori_radius::reveal_password(pw, RADIUS_SECRET, &p.authenticator);
        }
        let _ = mamori_radius::response(mamori_radius::code::ACCESS_REJECT, &p, &[], RADIUS_SECRET);
    }
    if let Ok(p) = mamori_radius::Packet::parse(bytes) {
        for (_, v) in &p.attributes {
            let _ = mamori_radius::reveal_password(v, RADIUS_SECRET, &p.authenticator);
        }
        let _ = p.encode();
        let _ = mamori_radius::verify_response(bytes, &p.authenticator, RADIUS_SECRET);
    }
}

fn radius_seeds() -> Vec<Vec<u8>> {
    use mamori_radius::{attr, code, hide_password, sign_request, Packet};
    let mut out = Vec::new();
    for (i, (user, pw, state)) in [
        ("alice", "correct horse123456", None),
        ("bob", "123456", Some("challenge-token")),
        ("root", "", None),
    ]
    .into_iter()
    .enumerate()
    {
        let ra = [u8::try_from(i).unwrap_or(0).wrapping_mul(37); 16];
        let mut attributes = vec![(attr::USER_NAME, user.as_bytes().to_vec())];
        if let Ok(h) = hide_password(pw.as_bytes(), RADIUS_SECRET, &ra) {
            attributes.push((attr::USER_PASSWORD, h));
        }
        if let Some(s) = state {
            attributes.push((attr::STATE, s.as_bytes().to_vec()));
        }
        attributes.push((attr::NAS_IDENTIFIER, b"fuzz-nas".to_vec()));
        let p = Packet {
            code: code::ACCESS_REQUEST,
            identifier: u8::try_from(i).unwrap_or(0),
            authenticator: ra,
            attributes,
        };
        if let Ok(bytes) = sign_request(p, RADIUS_SECRET) {
            out.push(bytes);
        }
    }
    out
}

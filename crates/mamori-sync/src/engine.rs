//! One sync round, setup, join and passphrase change, over a vault file and the HTTP client.
//!
//! A round: pull every item changed since the cursor (checking each against what this device
//! has already seen: an older revision is a replay, a different ciphertext under a seen
//! revision or a failed authentication is tampering) → find local changes by comparing the
//! vault with the last synced state → merge per item → push what the server lacks, with the
//! expected revision (a conflict returns the current item, which is merged and pushed again)
//! → write the vault once → save the state. Any error before the vault write leaves the vault
//! and the state untouched.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use data_encoding::HEXLOWER;
use mamori_api::sync as wire;
use mamori_otp::OtpKind;
use mamori_vault::{DataKey, Entry, KdfParams, Opened, Unlock, Vault, VaultFile};
use rand_core::{CryptoRng, RngCore};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::client::{Client, SignIn};
use crate::crypto::{self, RecoveryKey, SyncKey};
use crate::merge::{self, Stamp, Version};
use crate::state::{self, Known, Registered, State};
use crate::SyncError;

/// Items per pull page.
pub const PULL_PAGE: u32 = 500;
/// Most items per push request.
pub const PUSH_BATCH_ITEMS: usize = 500;
/// Most ciphertext bytes per push request (the server accepts 1 MiB bodies on sync routes).
pub const PUSH_BATCH_BYTES: usize = 512 * 1024;
const MAX_PUSH_ROUNDS: usize = 8;

/// What a sync round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Items received that were new to this device.
    pub pulled: usize,
    /// Items pushed.
    pub pushed: usize,
    /// Entries added, changed or removed in the vault.
    pub applied: usize,
    /// Edits made on two devices while offline: the kept one and the discarded one.
    pub conflicts: Vec<String>,
    // #15 recovery
    /// A recovery of the account by email and phone is pending and becomes ready at this time
    /// (Unix seconds): the user is warned, and `mamori sync cancel-recovery` cancels it.
    pub recovery_pending_until: Option<i64>,
}

/// How a new device proves it may hold the sync key.
pub enum JoinSecret {
    /// The sync passphrase.
    Passphrase(Zeroizing<String>),
    /// The recovery key shown at setup.
    Recovery(RecoveryKey),
}

/// Sign-in details for `setup` and `join`.
pub struct SignInDetails {
    /// Server URL.
    pub server: String,
    /// User name.
    pub user: String,
    /// Password.
    pub password: Zeroizing<String>,
    /// Second factor (a code from an authenticator, or a recovery code).
    pub code: Zeroizing<String>,
    /// This device's name.
    pub device_name: String,
}

impl std::fmt::Debug for SignInDetails {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInDetails")
            .field("server", &self.server)
            .field("user", &self.user)
            .field("device_name", &self.device_name)
            .finish_non_exhaustive()
    }
}

/// Signs in with password and second factor and registers this device.
fn register(d: &SignInDetails) -> Result<(Client, wire::RegisterDeviceResponse), SyncError> {
    let client = Client::new(&d.server)?;
    let session = match client.sign_in(&d.user, &d.password)? {
        SignIn::Challenge(ch) => client.sign_in_mfa(&ch, &d.code)?,
        SignIn::Session(s) => {
            client.sign_out(&s);
            return Err(SyncError::InvalidInput(
                "this account has no MFA device: sync needs a sign-in with a second factor; enable an MFA device first".into(),
            ));
        }
    };
    let reg = client.register_device(&session, &d.device_name);
    client.sign_out(&session);
    Ok((client, reg?))
}

fn parse_device(id: &str) -> Result<Uuid, SyncError> {
    Uuid::parse_str(id).map_err(|_| SyncError::Protocol("device id is not a UUID".into()))
}

/// Who the device registered through `client` is, for its fresh state.
fn registered(
    client: &Client,
    reg: &wire::RegisterDeviceResponse,
    d: &SignInDetails,
) -> Result<Registered, SyncError> {
    Ok(Registered {
        server: client.base().to_string(),
        user: reg.user.clone(),
        account_id: reg.account_id.clone(),
        device_id: parse_device(&reg.device_id)?,
        device_name: d.device_name.clone(),
        token: Zeroizing::new(reg.token.clone()),
    })
}

/// `mamori sync setup`: registers this device, creates the sync key, uploads its two wraps,
/// saves the state and pushes the vault. Returns the recovery key (show it once).
pub fn setup<R: RngCore + CryptoRng>(
    vf: &VaultFile,
    vault_key: &DataKey,
    d: &SignInDetails,
    passphrase: &str,
    kdf: KdfParams,
    now: u64,
    rng: &mut R,
) -> Result<(RecoveryKey, Report), SyncError> {
    let path = state::state_path(vf.path());
    if state::load(&path, vault_key.as_bytes())?.is_some() {
        return Err(SyncError::AlreadySetUp(
            "sync is already set up for this vault (see `mamori sync status`)".into(),
        ));
    }
    crypto::check_passphrase(passphrase)?;
    let (client, reg) = register(d)?;
    if client.keys(&reg.token)?.is_some() {
        let _ = client.revoke(&reg.token, &reg.device_id);
        return Err(SyncError::AlreadySetUp(format!(
            "{} already has sync set up on the server: use `mamori sync join` on this device",
            reg.user
        )));
    }
    let key = SyncKey::generate(rng);
    let recovery = RecoveryKey::generate(rng);
    let keys = client.put_keys(
        &reg.token,
        &wire::PutSyncKeysRequest {
            expected_version: 0,
            passphrase_wrap: crypto::wrap_with_passphrase(
                &key,
                passphrase,
                kdf,
                &reg.account_id,
                rng,
            )?,
            recovery_wrap: Some(crypto::wrap_with_recovery(
                &key,
                &recovery,
                &reg.account_id,
                rng,
            )?),
        },
    )?;
    let mut st = State::new(registered(&client, &reg, d)?, &key, keys.version);
    state::save(&path, vault_key.as_bytes(), &st, rng)?;
    let opened = vf.open(&Unlock::Key(vault_key.clone()))?;
    let report = sync_with_state(vf, &opened, &mut st, now, rng)?;
    Ok((recovery, report))
}

/// `mamori sync join`: registers this device, unwraps the sync key with the passphrase or the
/// recovery key, saves the state and syncs (local entries are merged, not lost).
pub fn join<R: RngCore + CryptoRng>(
    vf: &VaultFile,
    vault_key: &DataKey,
    d: &SignInDetails,
    secret: &JoinSecret,
    now: u64,
    rng: &mut R,
) -> Result<Report, SyncError> {
    let path = state::state_path(vf.path());
    if state::load(&path, vault_key.as_bytes())?.is_some() {
        return Err(SyncError::AlreadySetUp(
            "sync is already set up for this vault (see `mamori sync status`)".into(),
        ));
    }
    let (client, reg) = register(d)?;
    let fail = |e: SyncError| {
        // Leave no unusable device registered behind.
        let _ = client.revoke(&reg.token, &reg.device_id);
        e
    };
    let keys = client
        .keys(&reg.token)
        .map_err(&fail)?
        .ok_or_else(|| fail(SyncError::NotSetUp))?;
    let key = match secret {
        JoinSecret::Passphrase(p) => {
            crypto::unwrap_with_passphrase(&keys.passphrase_wrap, p, &reg.account_id)
        }
        JoinSecret::Recovery(r) => {
            crypto::unwrap_with_recovery(&keys.recovery_wrap, r, &reg.account_id)
        }
    }
    .map_err(&fail)?;
    let mut st = State::new(registered(&client, &reg, d)?, &key, keys.version);
    state::save(&path, vault_key.as_bytes(), &st, rng)?;
    let opened = vf.open(&Unlock::Key(vault_key.clone()))?;
    sync_with_state(vf, &opened, &mut st, now, rng)
}

/// Loads the state of a vault (`NotSetUp` if there is none).
pub fn load_state(vf: &VaultFile, vault_key: &DataKey) -> Result<State, SyncError> {
    state::load(&state::state_path(vf.path()), vault_key.as_bytes())?.ok_or(SyncError::NotSetUp)
}

/// Saves the state of a vault.
pub fn save_state<R: RngCore + CryptoRng>(
    vf: &VaultFile,
    vault_key: &DataKey,
    st: &State,
    rng: &mut R,
) -> Result<(), SyncError> {
    state::save(&state::state_path(vf.path()), vault_key.as_bytes(), st, rng)
}

/// `mamori sync`: one round (see the module documentation).
pub fn sync<R: RngCore + CryptoRng>(
    vf: &VaultFile,
    vault_key: &DataKey,
    now: u64,
    rng: &mut R,
) -> Result<Report, SyncError> {
    let opened = vf.open(&Unlock::Key(vault_key.clone()))?;
    sync_opened(vf, &opened, now, rng)
}

/// `mamori sync` with a vault the caller has just opened (saves decrypting it again).
pub fn sync_opened<R: RngCore + CryptoRng>(
    vf: &VaultFile,
    opened: &Opened,
    now: u64,
    rng: &mut R,
) -> Result<Report, SyncError> {
    let mut st = load_state(vf, &opened.key)?;
    sync_with_state(vf, opened, &mut st, now, rng)
}

/// `mamori sync passphrase`: rewraps the sync key under a new passphrase (items unchanged).
pub fn change_passphrase<R: RngCore + CryptoRng>(
    vf: &VaultFile,
    vault_key: &DataKey,
    new_passphrase: &str,
    kdf: KdfParams,
    rng: &mut R,
) -> Result<(), SyncError> {
    crypto::check_passphrase(new_passphrase)?;
    let mut st = load_state(vf, vault_key)?;
    let client = Client::new(&st.server)?;
    let current = client.keys(&st.token)?.ok_or(SyncError::NotSetUp)?;
    let key = st.sync_key()?;
    let keys = client.put_keys(
        &st.token,
        &wire::PutSyncKeysRequest {
            expected_version: current.version,
            passphrase_wrap: crypto::wrap_with_passphrase(
                &key,
                new_passphrase,
                kdf,
                &st.account_id,
                rng,
            )?,
            recovery_wrap: None,
        },
    )?;
    st.keys_version = keys.version;
    save_state(vf, vault_key, &st, rng)
}

/// An item as received and verified.
struct Remote {
    revision: i64,
    digest: String,
    version: Version,
}

fn hex(d: &[u8; 32]) -> String {
    HEXLOWER.encode(d)
}

/// Checks one served item against what this device has seen, then decrypts it. `Ok(None)`: the
/// very revision already known (nothing new).
fn verify_item(
    st: &State,
    key: &SyncKey,
    seen: &BTreeMap<Uuid, Remote>,
    item: &wire::SyncItem,
) -> Result<Option<(Uuid, Remote)>, SyncError> {
    let id = Uuid::parse_str(&item.id)
        .map_err(|_| SyncError::Protocol(format!("item id {:?} is not a UUID", item.id)))?;
    let digest = hex(&crypto::ciphertext_digest(&item.ciphertext));
    let prior = seen
        .get(&id)
        .map(|r| (r.revision, r.digest.clone()))
        .or_else(|| {
            st.known
                .get(&id)
                .map(|k| (k.revision, k.ciphertext.clone()))
        });
    if let Some((rev, dig)) = prior {
        if item.revision < rev {
            return Err(SyncError::Replayed {
                id: id.to_string(),
                seen: rev,
                got: item.revision,
            });
        }
        if item.revision == rev {
            if dig == digest {
                return Ok(None);
            }
            return Err(SyncError::Tampered { id: id.to_string() });
        }
    }
    let ad = crypto::item_ad(&st.account_id, id, item.revision, item.deleted);
    let pt = crypto::open_item(key, &ad, &item.ciphertext)
        .ok_or_else(|| SyncError::Tampered { id: id.to_string() })?;
    let version = merge::decode(id, &pt, item.deleted)
        .map_err(|_| SyncError::Tampered { id: id.to_string() })?;
    Ok(Some((
        id,
        Remote {
            revision: item.revision,
            digest,
            version,
        },
    )))
}

fn counter_of(e: &Entry) -> u64 {
    if e.params.kind == OtpKind::Hotp {
        e.params.counter
    } else {
        0
    }
}

/// The local changes since the last sync, as versions stamped by this device.
fn local_changes(
    vault: &Vault,
    by_id: &HashMap<Uuid, &Entry>,
    st: &State,
    now: u64,
) -> Result<BTreeMap<Uuid, Version>, SyncError> {
    let me = st.device_id;
    let mut out = BTreeMap::new();
    for e in vault.entries() {
        let content = hex(&merge::content_digest(e)?);
        let v = match st.known.get(&e.id) {
            None => Some(Version {
                stamp: Stamp {
                    time: e.updated,
                    device: me,
                },
                counter: counter_of(e),
                entry: Some(e.clone()),
            }),
            Some(k) if k.deleted || k.content != content => Some(Version {
                // Strictly later than the version it edits, whatever the clocks say.
                stamp: Stamp {
                    time: e.updated.max(k.time.saturating_add(1)),
                    device: me,
                },
                counter: counter_of(e),
                entry: Some(e.clone()),
            }),
            Some(k) if counter_of(e) != k.counter => Some(Version {
                stamp: k.stamp(),
                counter: counter_of(e).max(k.counter),
                entry: Some(e.clone()),
            }),
            Some(_) => None,
        };
        if let Some(v) = v {
            out.insert(e.id, v);
        }
    }
    for (id, k) in &st.known {
        if !k.deleted && !by_id.contains_key(id) {
            out.insert(
                *id,
                Version {
                    stamp: Stamp {
                        time: now.max(k.time.saturating_add(1)),
                        device: me,
                    },
                    counter: k.counter,
                    entry: None,
                },
            );
        }
    }
    Ok(out)
}

fn same_version(a: &Version, b: &Version) -> Result<bool, SyncError> {
    Ok(a.stamp == b.stamp
        && a.counter == b.counter
        && match (&a.entry, &b.entry) {
            (None, None) => true,
            (Some(x), Some(y)) => merge::full_digest(x)? == merge::full_digest(y)?,
            _ => false,
        })
}

fn known_of(v: &Version, revision: i64, digest: String) -> Result<Known, SyncError> {
    Ok(Known {
        revision,
        ciphertext: digest,
        time: v.stamp.time,
        device: v.stamp.device,
        counter: v.counter,
        content: match &v.entry {
            Some(e) => hex(&merge::content_digest(e)?),
            None => String::new(),
        },
        deleted: v.entry.is_none(),
    })
}

/// What the server holds after this round, by item: the version, its revision there and the
/// digest of its ciphertext (what [`Known`] remembers).
type Settled = BTreeMap<Uuid, (Version, i64, String)>;

/// What still has to be pushed, by item: the version and the revision it replaces.
type Pending = BTreeMap<Uuid, (Version, i64)>;

/// One round with a loaded state, from the vault as `opened` (read just before; the write at
/// the end refuses if the file changed since). Saves the state on success.
pub fn sync_with_state<R: RngCore + CryptoRng>(
    vf: &VaultFile,
    opened: &Opened,
    st: &mut State,
    now: u64,
    rng: &mut R,
) -> Result<Report, SyncError> {
    let by_id: HashMap<Uuid, &Entry> = opened.vault.entries().iter().map(|e| (e.id, e)).collect();
    let client = Client::new(&st.server)?;
    let key = st.sync_key()?;
    let mut report = Report::default();
    let (remote, cursor) = pull(&client, st, &key, &mut report)?;
    let local = local_changes(&opened.vault, &by_id, st, now)?;
    let (mut settled, to_push) = merge_changes(st, &local, &remote, &mut report)?;
    push(&client, st, &key, to_push, &mut settled, &mut report, rng)?;
    report.applied = apply(vf, opened, &by_id, &settled, rng)?;
    remember(vf, opened, st, settled, cursor, now, rng)?;
    Ok(report)
}

/// Step 1. Pull: every item changed since the state's cursor, verified, and the new cursor.
fn pull(
    client: &Client,
    st: &State,
    key: &SyncKey,
    report: &mut Report,
) -> Result<(BTreeMap<Uuid, Remote>, i64), SyncError> {
    let mut remote: BTreeMap<Uuid, Remote> = BTreeMap::new();
    let mut cursor = st.cursor;
    loop {
        let page = client.pull(&st.token, cursor, PULL_PAGE)?;
        report.recovery_pending_until = page.recovery_pending_until;
        for item in &page.items {
            if let Some((id, r)) = verify_item(st, key, &remote, item)? {
                remote.insert(id, r);
            }
        }
        if page.cursor < cursor {
            return Err(SyncError::Protocol("the pull cursor went backwards".into()));
        }
        cursor = page.cursor;
        if !page.more {
            break;
        }
    }
    report.pulled = remote.len();
    Ok((remote, cursor))
}

/// Step 2. Local changes and merge: what is already settled on the server and what has to be
/// pushed; conflicting changes are reported.
fn merge_changes(
    st: &State,
    local: &BTreeMap<Uuid, Version>,
    remote: &BTreeMap<Uuid, Remote>,
    report: &mut Report,
) -> Result<(Settled, Pending), SyncError> {
    let mut settled = Settled::new();
    let mut to_push = Pending::new();
    let ids: BTreeSet<Uuid> = local.keys().chain(remote.keys()).copied().collect();
    for id in ids {
        let base = st.known.get(&id);
        match (local.get(&id), remote.get(&id)) {
            (Some(l), Some(r)) => {
                let m = merge::merge(l, &r.version)?;
                let base_stamp = base.map(Known::stamp);
                if l.stamp
                    != base_stamp.unwrap_or(Stamp {
                        time: 0,
                        device: Uuid::nil(),
                    })
                    && merge::is_conflict(base_stamp.as_ref(), l, &r.version)
                {
                    report.conflicts.push(conflict_line(&m, l, &r.version));
                }
                if same_version(&m, &r.version)? {
                    settled.insert(id, (m, r.revision, r.digest.clone()));
                } else {
                    to_push.insert(id, (m, r.revision));
                }
            }
            (Some(l), None) => {
                to_push.insert(id, (l.clone(), base.map(|k| k.revision).unwrap_or(0)));
            }
            (None, Some(r)) => {
                settled.insert(id, (r.version.clone(), r.revision, r.digest.clone()));
            }
            (None, None) => {}
        }
    }
    Ok((settled, to_push))
}

/// The report's line for an item changed on two devices: which change was kept (`merged`'s)
/// and which discarded.
fn conflict_line(merged: &Version, local: &Version, remote: &Version) -> String {
    let name = |v: &Version| {
        v.entry
            .as_ref()
            .map(Entry::display_name)
            .unwrap_or_else(|| "(deleted)".into())
    };
    let (kept, lost) = if merged.stamp == local.stamp {
        (local, remote)
    } else {
        (remote, local)
    };
    format!(
        "{} was changed on two devices: kept the later change ({}, made at {}), discarded the other ({}, made at {})",
        name(merged),
        name(kept),
        kept.stamp.time,
        name(lost),
        lost.stamp.time
    )
}

/// Step 3. Push, merging conflicts and pushing again, in batches, at most
/// [`MAX_PUSH_ROUNDS`] times; what the server accepted joins `settled`.
fn push<R: RngCore + CryptoRng>(
    client: &Client,
    st: &State,
    key: &SyncKey,
    mut to_push: Pending,
    settled: &mut Settled,
    report: &mut Report,
    rng: &mut R,
) -> Result<(), SyncError> {
    let mut rounds = 0;
    while !to_push.is_empty() {
        rounds += 1;
        if rounds > MAX_PUSH_ROUNDS {
            return Err(SyncError::TooManyConflicts);
        }
        let (batch, rest) = push_batch(st, key, to_push, rng)?;
        to_push = rest;
        let resp = client.push(&st.token, batch.iter().map(|s| s.item.clone()).collect())?;
        if resp.results.len() != batch.len() {
            return Err(SyncError::Protocol(
                "push answer has the wrong length".into(),
            ));
        }
        for (sealed, result) in batch.into_iter().zip(resp.results) {
            let Sealed {
                id,
                version: v,
                item,
            } = sealed;
            match result {
                wire::PushResult::Ok { revision, .. } => {
                    report.pushed += 1;
                    let digest = hex(&crypto::ciphertext_digest(&item.ciphertext));
                    settled.insert(id, (v, revision, digest));
                }
                wire::PushResult::Conflict { current } => {
                    let seen = BTreeMap::new();
                    let Some((cid, r)) = verify_item(st, key, &seen, &current)? else {
                        return Err(SyncError::Protocol(
                            "a conflict answer repeats a known revision".into(),
                        ));
                    };
                    if cid != id {
                        return Err(SyncError::Protocol("conflict for another item".into()));
                    }
                    let m = merge::merge(&v, &r.version)?;
                    if same_version(&m, &r.version)? {
                        settled.insert(id, (m, r.revision, r.digest));
                    } else {
                        to_push.insert(id, (m, r.revision));
                    }
                }
            }
        }
    }
    Ok(())
}

/// An item sealed for a push request, kept with the version it carries.
struct Sealed {
    id: Uuid,
    version: Version,
    item: wire::PushItem,
}

/// One push request's worth of `to_push` (at most [`PUSH_BATCH_ITEMS`] items, about
/// [`PUSH_BATCH_BYTES`]), sealed, and what is left for the next request.
fn push_batch<R: RngCore + CryptoRng>(
    st: &State,
    key: &SyncKey,
    to_push: Pending,
    rng: &mut R,
) -> Result<(Vec<Sealed>, Pending), SyncError> {
    let mut batch: Vec<Sealed> = Vec::new();
    let mut bytes = 0usize;
    let mut rest = Pending::new();
    for (id, (v, expected)) in to_push {
        if batch.len() >= PUSH_BATCH_ITEMS || bytes >= PUSH_BATCH_BYTES {
            rest.insert(id, (v, expected));
            continue;
        }
        let revision = expected.saturating_add(1);
        let deleted = v.entry.is_none();
        let ad = crypto::item_ad(&st.account_id, id, revision, deleted);
        let ct = crypto::seal_item(key, &ad, &merge::encode(&v)?, rng)?;
        bytes += ct.len();
        batch.push(Sealed {
            id,
            version: v,
            item: wire::PushItem {
                id: id.to_string(),
                expected_revision: expected,
                deleted,
                ciphertext: ct,
            },
        });
    }
    Ok((batch, rest))
}

/// Step 4. Apply to the vault (one atomic write), only if something differs; the number of
/// entries written or removed. `VaultChanged` when the file changed since it was opened.
fn apply<R: RngCore + CryptoRng>(
    vf: &VaultFile,
    opened: &Opened,
    by_id: &HashMap<Uuid, &Entry>,
    settled: &Settled,
    rng: &mut R,
) -> Result<usize, SyncError> {
    let mut changes: Vec<(Uuid, Option<Entry>)> = Vec::new();
    for (id, (v, _, _)) in settled {
        let current = by_id.get(id).copied();
        let differs = match (&v.entry, current) {
            (None, None) => false,
            (None, Some(_)) | (Some(_), None) => true,
            (Some(a), Some(b)) => {
                merge::full_digest(a)? != merge::full_digest(b)? || counter_of(a) != counter_of(b)
            }
        };
        if differs {
            changes.push((*id, v.entry.clone()));
        }
    }
    if changes.is_empty() {
        return Ok(0);
    }
    let unlock = Unlock::Key(opened.key.clone());
    let expected = opened.vault.revision();
    let mut changed_during = false;
    let result = vf.update(&unlock, rng, |vault| {
        if vault.revision() != expected {
            changed_during = true;
            return Err(mamori_vault::VaultError::Limit("vault changed".into()));
        }
        for (id, e) in changes.iter().cloned() {
            match e {
                Some(e) => vault.put_entry(e)?,
                None => {
                    vault.remove_entry(id);
                }
            }
        }
        Ok(changes.len())
    });
    match result {
        Ok((n, _)) => Ok(n),
        Err(_) if changed_during => Err(SyncError::VaultChanged),
        Err(e) => Err(e.into()),
    }
}

/// Step 5. Remember what the server now has, and save the state.
fn remember<R: RngCore + CryptoRng>(
    vf: &VaultFile,
    opened: &Opened,
    st: &mut State,
    settled: Settled,
    cursor: i64,
    now: u64,
    rng: &mut R,
) -> Result<(), SyncError> {
    for (id, (v, revision, digest)) in settled {
        st.known.insert(id, known_of(&v, revision, digest)?);
    }
    st.cursor = cursor;
    st.last_sync = Some(now);
    save_state(vf, &opened.key, st, rng)
}

/// The state file path of a vault (for `status`).
pub fn state_file(vault: &Path) -> std::path::PathBuf {
    state::state_path(vault)
}

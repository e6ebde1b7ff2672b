//! The decrypted vault: a list of entries and the rules for changing it. No I/O here.

use mamori_otp::{Code, Generator, OtpKind};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::entry::{check_fields, EntryV1};
use crate::{Entry, NewEntry, VaultError};

/// Most entries one vault holds (a limit against hand-made or runaway files).
pub const MAX_ENTRIES: usize = 100_000;

/// The decrypted contents of a vault file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vault {
    entries: Vec<Entry>,
    /// Incremented on every save.
    revision: u64,
}

/// What [`Vault::add_many`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddReport {
    /// Ids of the entries added, in input order.
    pub added: Vec<Uuid>,
    /// Display names of inputs skipped because the vault already had them (or they repeated an
    /// earlier input).
    pub duplicates: Vec<String>,
}

/// A change to an entry's labels; `None` leaves a field alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryEdit {
    /// New issuer.
    pub issuer: Option<String>,
    /// New account name.
    pub account: Option<String>,
    /// New note.
    pub note: Option<String>,
    /// Replace the tags with these.
    pub tags: Option<Vec<String>>,
    /// Set or clear the favorite flag.
    pub favorite: Option<bool>,
}

/// Random UUID v4 from the caller's generator (the library never picks its own randomness).
pub fn new_id<R: RngCore + CryptoRng>(rng: &mut R) -> Uuid {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

impl Vault {
    /// An empty vault.
    pub fn new() -> Self {
        Self::default()
    }

    /// All entries, in the order they were added.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the vault has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The save counter.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The entry list, for the sync helpers in `crate::sync`.
    pub(crate) fn entries_mut(&mut self) -> &mut Vec<Entry> {
        &mut self.entries
    }

    pub(crate) fn bump_revision(&mut self) {
        self.revision = self.revision.saturating_add(1);
    }

    /// The entry with this id.
    pub fn get(&self, id: Uuid) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id == id)
    }

    fn get_mut(&mut self, id: Uuid) -> Result<&mut Entry, VaultError> {
        self.entries
            .iter_mut()
            .find(|e| e.id == id)
            .ok_or_else(|| VaultError::NoMatch {
                query: id.to_string(),
                nearest: Vec::new(),
            })
    }

    /// Adds one account. Refuses a duplicate (same secret, issuer and account).
    pub fn add<R: RngCore + CryptoRng>(
        &mut self,
        new: NewEntry,
        rng: &mut R,
        now: u64,
    ) -> Result<&Entry, VaultError> {
        let new = new.validated()?;
        if let Some(existing) = self.entries.iter().find(|e| e.is_duplicate_of(&new)) {
            return Err(VaultError::Duplicate(existing.display_name()));
        }
        if self.entries.len() >= MAX_ENTRIES {
            return Err(VaultError::Limit(format!(
                "a vault holds at most {MAX_ENTRIES} accounts"
            )));
        }
        let id = new_id(rng);
        self.entries.push(Entry::from_new(new, id, now));
        self.entries
            .last()
            .ok_or_else(|| VaultError::InvalidEntry("internal: entry vanished".into()))
    }

    /// Adds many accounts at once (imports): skips duplicates of the vault's entries and of
    /// earlier inputs, and refuses the whole batch if any input is invalid or the batch would
    /// pass [`MAX_ENTRIES`], so a bad import changes nothing.
    pub fn add_many<R: RngCore + CryptoRng>(
        &mut self,
        items: impl IntoIterator<Item = NewEntry>,
        rng: &mut R,
        now: u64,
    ) -> Result<AddReport, VaultError> {
        let mut report = AddReport::default();
        let mut staged: Vec<Entry> = Vec::new();
        for item in items {
            let item = item.validated()?;
            let dup = self
                .entries
                .iter()
                .chain(staged.iter())
                .any(|e| e.is_duplicate_of(&item));
            if dup {
                report
                    .duplicates
                    .push(Entry::from_new(item, Uuid::nil(), now).display_name());
                continue;
            }
            if self.entries.len() + staged.len() >= MAX_ENTRIES {
                return Err(VaultError::Limit(format!(
                    "a vault holds at most {MAX_ENTRIES} accounts"
                )));
            }
            let id = new_id(rng);
            report.added.push(id);
            staged.push(Entry::from_new(item, id, now));
        }
        self.entries.extend(staged);
        Ok(report)
    }

    /// Removes the entry with this id and returns it.
    pub fn remove(&mut self, id: Uuid) -> Result<Entry, VaultError> {
        let pos = self
            .entries
            .iter()
            .position(|e| e.id == id)
            .ok_or_else(|| VaultError::NoMatch {
                query: id.to_string(),
                nearest: Vec::new(),
            })?;
        Ok(self.entries.remove(pos))
    }

    /// Changes an entry's labels.
    pub fn edit(&mut self, id: Uuid, edit: EntryEdit, now: u64) -> Result<&Entry, VaultError> {
        let entry = self.get_mut(id)?;
        let issuer = edit
            .issuer
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| entry.issuer.clone());
        let account = edit
            .account
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| entry.account.clone());
        let note = edit.note.unwrap_or_else(|| entry.note.clone());
        let tags = edit.tags.unwrap_or_else(|| entry.tags.clone());
        if issuer.is_empty() && account.is_empty() {
            return Err(VaultError::InvalidEntry(
                "an entry needs an issuer or an account name".into(),
            ));
        }
        check_fields(&issuer, &account, &note, &tags)?;
        entry.issuer = issuer;
        entry.account = account;
        entry.note = note;
        entry.tags = tags;
        if let Some(f) = edit.favorite {
            entry.favorite = f;
        }
        entry.touch(now);
        Ok(entry)
    }

    /// For an HOTP entry: returns the code for the current counter and advances the stored
    /// counter. The caller must save the vault *before* showing the code (RFC 4226 section 7.2:
    /// the client increments its counter after each generation), so a crash never shows the same
    /// code twice.
    pub fn next_hotp(&mut self, id: Uuid, now: u64) -> Result<Code, VaultError> {
        let entry = self.get_mut(id)?;
        if entry.params.kind != OtpKind::Hotp {
            return Err(VaultError::InvalidEntry(format!(
                "{} is not an HOTP account",
                entry.display_name()
            )));
        }
        let counter = entry.params.counter;
        let next = counter
            .checked_add(1)
            .ok_or(mamori_otp::OtpError::CounterOverflow)?;
        let code = Generator::new(entry.secret(), entry.params)?.at_counter(counter);
        entry.params.counter = next;
        entry.touch(now);
        Ok(code)
    }

    pub(crate) fn to_payload(&self) -> Result<zeroize::Zeroizing<Vec<u8>>, serde_json::Error> {
        let wire = PayloadV1 {
            revision: self.revision,
            entries: self.entries.iter().map(EntryV1::from).collect(),
        };
        // Measure first, then write into a buffer of exactly that size: a growing Vec would
        // leave copies of the plaintext in freed memory that nobody wipes.
        let mut counter = ByteCounter(0);
        serde_json::to_writer(&mut counter, &wire)?;
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(counter.0));
        serde_json::to_writer(&mut *out, &wire)?;
        Ok(out)
    }

    pub(crate) fn from_payload(bytes: &[u8]) -> Result<Self, String> {
        let wire: PayloadV1 = serde_json::from_slice(bytes).map_err(|e| {
            // serde_json's message may quote input; keep only the position.
            format!("malformed JSON at line {} column {}", e.line(), e.column())
        })?;
        if wire.entries.len() > MAX_ENTRIES {
            return Err(format!("more than {MAX_ENTRIES} entries"));
        }
        let entries = wire
            .entries
            .into_iter()
            .map(Entry::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Vault {
            entries,
            revision: wire.revision,
        })
    }
}

/// Counts bytes written and discards them.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The plaintext payload, format version 1 (see docs/vault-format.md).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PayloadV1 {
    revision: u64,
    entries: Vec<EntryV1>,
}

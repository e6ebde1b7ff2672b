//! What the sync client (crate `mamori-sync`) needs from the vault: an entry's stored form as
//! bytes (so a synced item carries exactly what the vault file carries), and putting or removing
//! an entry by id with the identity, times and revision the other device gave it.
//!
//! No crypto, network or merge rules here: those live in `mamori-sync` (docs/sync-protocol.md).

use uuid::Uuid;
use zeroize::Zeroizing;

use crate::entry::EntryV1;
use crate::{Entry, Vault, VaultError, MAX_ENTRIES};

impl Entry {
    /// The entry in the vault's stored form (format version 1 of `docs/vault-format.md`, one
    /// JSON object, secret in Base32). The buffer is wiped when dropped.
    pub fn to_stored_json(&self) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        serde_json::to_vec(&EntryV1::from(self))
            .map(Zeroizing::new)
            .map_err(|e| VaultError::InvalidEntry(format!("cannot encode entry: {e}")))
    }

    /// Parses an entry in the stored form and checks it as the vault file's reader does.
    pub fn from_stored_json(bytes: &[u8]) -> Result<Entry, VaultError> {
        let wire: EntryV1 = serde_json::from_slice(bytes).map_err(|e| {
            // serde_json's message may quote input (a secret); keep only the position.
            VaultError::InvalidEntry(format!(
                "malformed entry at line {} column {}",
                e.line(),
                e.column()
            ))
        })?;
        let entry = Entry::try_from(wire).map_err(VaultError::InvalidEntry)?;
        crate::entry::check_fields(&entry.issuer, &entry.account, &entry.note, &entry.tags)?;
        Ok(entry)
    }

    /// Sets the HOTP counter of the next code (sync merges counters by maximum).
    pub fn set_counter(&mut self, counter: u64) {
        self.params.counter = counter;
    }
}

impl Vault {
    /// Inserts `entry`, or replaces the entry with the same id in place (its position in the
    /// list is kept). Used by sync to apply another device's version unchanged.
    pub fn put_entry(&mut self, entry: Entry) -> Result<(), VaultError> {
        let entries = self.entries_mut();
        if let Some(slot) = entries.iter_mut().find(|e| e.id == entry.id) {
            *slot = entry;
            return Ok(());
        }
        if entries.len() >= MAX_ENTRIES {
            return Err(VaultError::Limit(format!(
                "a vault holds at most {MAX_ENTRIES} accounts"
            )));
        }
        entries.push(entry);
        Ok(())
    }

    /// Removes the entry with this id if there is one; returns whether there was.
    pub fn remove_entry(&mut self, id: Uuid) -> bool {
        let entries = self.entries_mut();
        let before = entries.len();
        entries.retain(|e| e.id != id);
        entries.len() != before
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::NewEntry;
    use mamori_otp::{OtpParams, Secret};

    #[test]
    fn stored_json_round_trip_and_put_replaces_in_place() {
        let mut v = Vault::new();
        let mut rng = rand::thread_rng();
        let a = v
            .add(
                NewEntry::new("A", "a", Secret::generate(), OtpParams::totp()),
                &mut rng,
                10,
            )
            .unwrap()
            .id;
        v.add(
            NewEntry::new("B", "b", Secret::generate(), OtpParams::hotp(3)),
            &mut rng,
            10,
        )
        .unwrap();
        let json = v.get(a).unwrap().to_stored_json().unwrap();
        let mut back = Entry::from_stored_json(&json).unwrap();
        assert_eq!(&back, v.get(a).unwrap());
        back.issuer = "A2".into();
        v.put_entry(back).unwrap();
        assert_eq!(v.entries()[0].issuer, "A2");
        assert_eq!(v.len(), 2);
        assert!(v.remove_entry(a));
        assert!(!v.remove_entry(a));
        assert!(Entry::from_stored_json(b"{\"id\":1}").is_err());
    }
}

//! The merge rules (docs/sync-protocol.md, "Merge rules"). Pure functions: no I/O, no clock.
//!
//! Every item is a [`Version`]: the entry (or a tombstone), the [`Stamp`] of its last content
//! change and its HOTP counter. [`merge`] is a join of a semilattice — commutative,
//! associative and idempotent — so devices that see the same versions in any order, any
//! number of times, end with the same result:
//!
//! - content: the version with the greater stamp wins (time, then device id; then a digest of
//!   the content, so even equal stamps give one answer) — last writer wins, deletions included
//!   (a tombstone is a version without an entry);
//! - HOTP counter: the maximum of both, whichever content wins, so a counter never goes back
//!   and a code already shown is never shown again after the merge.

use std::cmp::Ordering;

use mamori_otp::OtpKind;
use mamori_vault::Entry;
use sha2::{Digest, Sha256};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::SyncError;

/// When and where content was last changed. Ordered by time, then device id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp {
    /// Unix seconds of the change (the editing device's clock).
    pub time: u64,
    /// The editing device.
    pub device: Uuid,
}

/// One version of an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// Last content change.
    pub stamp: Stamp,
    /// Highest HOTP counter seen (0 for other kinds).
    pub counter: u64,
    /// The entry, or `None` for a tombstone.
    pub entry: Option<Entry>,
}

/// SHA-256 of an entry's stored form with the counter set to 0: the tie-breaker of equal stamps
/// (two versions with equal stamps and equal digests are the same version).
pub fn full_digest(entry: &Entry) -> Result<[u8; 32], SyncError> {
    let mut e = entry.clone();
    e.set_counter(0);
    Ok(Sha256::digest(&e.to_stored_json()?[..]).into())
}

/// SHA-256 of what a person changes (labels, secret, parameters except the counter, note,
/// tags, favorite): a local edit is a change of this digest. Times, the entry's own revision
/// and the counter are left out, so advancing an HOTP counter is not an edit.
pub fn content_digest(entry: &Entry) -> Result<[u8; 32], SyncError> {
    let mut e = entry.clone();
    e.set_counter(0);
    e.updated = 0;
    e.revision = 0;
    Ok(Sha256::digest(&e.to_stored_json()?[..]).into())
}

fn order_key(v: &Version) -> Result<(Stamp, [u8; 32]), SyncError> {
    let d = match &v.entry {
        Some(e) => full_digest(e)?,
        None => [0u8; 32],
    };
    Ok((v.stamp, d))
}

/// The merge of two versions of the same item (see the module documentation).
pub fn merge(a: &Version, b: &Version) -> Result<Version, SyncError> {
    let winner = match order_key(a)?.cmp(&order_key(b)?) {
        Ordering::Less => b,
        _ => a,
    };
    let counter = a.counter.max(b.counter);
    let mut out = winner.clone();
    out.counter = counter;
    if let Some(e) = out.entry.as_mut() {
        if e.params.kind == OtpKind::Hotp {
            e.set_counter(counter);
        }
    }
    Ok(out)
}

/// Whether both versions changed content since `base` (a conflict to report: one edit is kept,
/// the other is reported as discarded).
pub fn is_conflict(base: Option<&Stamp>, local: &Version, remote: &Version) -> bool {
    let changed = |v: &Version| base != Some(&v.stamp);
    changed(local) && changed(remote) && local.stamp != remote.stamp
}

/// The plaintext of an item: `time u64 ‖ device [16] ‖ counter u64 ‖ entry JSON` (the entry
/// part empty for a tombstone). Big-endian integers.
pub fn encode(v: &Version) -> Result<Zeroizing<Vec<u8>>, SyncError> {
    let entry = match &v.entry {
        Some(e) => e.to_stored_json()?,
        None => Zeroizing::new(Vec::new()),
    };
    let mut out = Zeroizing::new(Vec::with_capacity(32 + entry.len()));
    out.extend_from_slice(&v.stamp.time.to_be_bytes());
    out.extend_from_slice(v.stamp.device.as_bytes());
    out.extend_from_slice(&v.counter.to_be_bytes());
    out.extend_from_slice(&entry);
    Ok(out)
}

/// Parses [`encode`]'s output; `deleted` is the authenticated flag, and must agree.
pub fn decode(id: Uuid, bytes: &[u8], deleted: bool) -> Result<Version, SyncError> {
    let bad = |why: &str| SyncError::Protocol(format!("item {id}: {why}"));
    let head = bytes.get(..32).ok_or_else(|| bad("too short"))?;
    let mut t = [0u8; 8];
    t.copy_from_slice(head.get(..8).unwrap_or(&[0u8; 8]));
    let mut d = [0u8; 16];
    d.copy_from_slice(head.get(8..24).unwrap_or(&[0u8; 16]));
    let mut c = [0u8; 8];
    c.copy_from_slice(head.get(24..32).unwrap_or(&[0u8; 8]));
    let rest = bytes.get(32..).unwrap_or_default();
    let entry = if deleted {
        if !rest.is_empty() {
            return Err(bad("a tombstone carries an entry"));
        }
        None
    } else {
        let e = Entry::from_stored_json(rest)?;
        if e.id != id {
            return Err(bad("the entry inside has another id"));
        }
        Some(e)
    };
    Ok(Version {
        stamp: Stamp {
            time: u64::from_be_bytes(t),
            device: Uuid::from_bytes(d),
        },
        counter: u64::from_be_bytes(c),
        entry,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;
    use mamori_otp::{OtpParams, Secret};
    use mamori_vault::{NewEntry, Vault};
    use proptest::prelude::*;
    use rand::SeedableRng;

    fn entry(id_seed: u8, issuer: &str, hotp: Option<u64>) -> Entry {
        let mut rng = rand::rngs::StdRng::seed_from_u64(u64::from(id_seed));
        let mut v = Vault::new();
        let params = hotp.map(OtpParams::hotp).unwrap_or_else(OtpParams::totp);
        let secret = Secret::from_bytes(vec![id_seed; 20]).unwrap();
        v.add(NewEntry::new(issuer, "me", secret, params), &mut rng, 100)
            .unwrap()
            .clone()
    }

    fn ver(time: u64, dev: u128, counter: u64, e: Option<Entry>) -> Version {
        let entry = e.map(|mut e| {
            if e.params.kind == OtpKind::Hotp {
                e.set_counter(counter);
            }
            e
        });
        Version {
            stamp: Stamp {
                time,
                device: Uuid::from_u128(dev),
            },
            counter,
            entry,
        }
    }

    #[test]
    fn later_edit_wins_and_ties_break_by_device() {
        let a = ver(10, 1, 0, Some(entry(1, "Old", None)));
        let b = ver(11, 0, 0, Some(entry(1, "New", None)));
        assert_eq!(merge(&a, &b).unwrap().entry.unwrap().issuer, "New");
        assert_eq!(merge(&b, &a).unwrap().entry.unwrap().issuer, "New");
        let c = ver(10, 2, 0, Some(entry(1, "Dev2", None)));
        assert_eq!(merge(&a, &c).unwrap().entry.unwrap().issuer, "Dev2");
    }

    #[test]
    fn tombstone_wins_when_later_and_loses_to_a_later_edit() {
        let e = ver(10, 1, 0, Some(entry(1, "X", None)));
        let del = ver(12, 2, 0, None);
        assert!(merge(&e, &del).unwrap().entry.is_none());
        let edit = ver(13, 1, 0, Some(entry(1, "Y", None)));
        assert_eq!(merge(&del, &edit).unwrap().entry.unwrap().issuer, "Y");
    }

    #[test]
    fn hotp_counter_is_the_maximum_whichever_content_wins() {
        let a = ver(20, 1, 3, Some(entry(1, "Renamed", Some(0))));
        let b = ver(10, 2, 9, Some(entry(1, "Old", Some(0))));
        let m = merge(&a, &b).unwrap();
        let e = m.entry.unwrap();
        assert_eq!(e.issuer, "Renamed");
        assert_eq!(e.params.counter, 9);
        assert_eq!(m.counter, 9);
    }

    #[test]
    fn plaintext_round_trip_and_checks() {
        let v = ver(5, 9, 4, Some(entry(3, "Z", Some(4))));
        let id = v.entry.as_ref().unwrap().id;
        let bytes = encode(&v).unwrap();
        assert_eq!(decode(id, &bytes, false).unwrap(), v);
        assert!(decode(Uuid::from_u128(1), &bytes, false).is_err());
        assert!(decode(id, &bytes, true).is_err());
        let t = ver(6, 9, 4, None);
        assert_eq!(decode(id, &encode(&t).unwrap(), true).unwrap(), t);
        assert!(decode(id, &bytes[..10], false).is_err());
    }

    #[test]
    fn conflicts_are_both_sides_changed() {
        let base = Stamp {
            time: 1,
            device: Uuid::from_u128(1),
        };
        let same = ver(1, 1, 0, None);
        let l = ver(5, 2, 0, None);
        let r = ver(6, 3, 0, None);
        assert!(is_conflict(Some(&base), &l, &r));
        assert!(!is_conflict(Some(&base), &l, &same));
        assert!(!is_conflict(Some(&base), &same, &r));
    }

    fn arb_version() -> impl Strategy<Value = Version> {
        (
            0u64..5,
            0u128..3,
            0u64..6,
            prop_oneof![
                Just(None),
                Just(Some("A")),
                Just(Some("B")),
                Just(Some("C"))
            ],
            any::<bool>(),
        )
            .prop_map(|(t, d, c, name, hotp)| {
                let e = name.map(|n| entry(1, n, hotp.then_some(0)));
                ver(t, d, c, e)
            })
    }

    proptest! {
        // Convergence: folding the same versions in any order (with repeats) gives one result.
        #[test]
        fn merge_converges_in_any_order(
            vs in proptest::collection::vec(arb_version(), 1..6),
            perm_seed in any::<u64>(),
            dup in 0usize..6,
        ) {
            let fold = |xs: &[Version]| -> Version {
                let mut acc = xs[0].clone();
                for x in &xs[1..] { acc = merge(&acc, x).unwrap(); }
                acc
            };
            let first = fold(&vs);
            let mut shuffled = vs.clone();
            let mut rng = rand::rngs::StdRng::seed_from_u64(perm_seed);
            rand::seq::SliceRandom::shuffle(&mut shuffled[..], &mut rng);
            shuffled.push(vs[dup % vs.len()].clone());
            prop_assert_eq!(fold(&shuffled), first.clone());
            // Tree-shaped merges (devices merging with each other first) agree too.
            let mid = vs.len() / 2;
            if mid > 0 {
                let tree = merge(&fold(&vs[..mid]), &fold(&vs[mid..])).unwrap();
                prop_assert_eq!(tree, first.clone());
            }
            // The counter is the maximum of all.
            prop_assert_eq!(first.counter, vs.iter().map(|v| v.counter).max().unwrap());
        }
    }
}

//! Which vault entry holds a device's seed, and how an enrolled device's entry is named.
//!
//! The link between a device and its seed is the device's serial (its ARN) in the entry's
//! note: it syncs with the entry to every device, and a seed added by hand (an older enrolment,
//! a phone export) is linked by adding the serial to its note.

use mamori_otp::{OtpParams, Secret};
use mamori_vault::{Entry, NewEntry};

use crate::AwsError;

/// The issuer of an enrolled device's entry.
pub const ISSUER: &str = "Amazon Web Services";

/// The note of an enrolled device's entry.
pub fn entry_note(serial: &str) -> String {
    format!("IAM virtual MFA device {serial}")
}

/// The account name: `USER@ALIAS`, or `USER@ACCOUNT-ID` without an alias.
pub fn entry_account(user: &str, alias: Option<&str>, account_id: &str) -> String {
    format!("{user}@{}", alias.unwrap_or(account_id))
}

/// The new entry for an enrolled device (TOTP, SHA-1, 6 digits, 30 s: what IAM uses).
pub fn new_entry(serial: &str, account: &str, seed: &Secret) -> NewEntry {
    let mut e = NewEntry::new(ISSUER, account, seed.clone(), OtpParams::totp());
    e.note = entry_note(serial);
    e
}

/// Whether `note` names `serial` (as a whole word: `…:mfa/alice` does not match `…:mfa/alice2`).
pub fn note_names(note: &str, serial: &str) -> bool {
    note.split(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == '(' || c == ')')
        .any(|w| w == serial)
}

/// The entries whose note names `serial`.
pub fn entries_for<'a>(entries: &'a [Entry], serial: &str) -> Vec<&'a Entry> {
    entries
        .iter()
        .filter(|e| note_names(&e.note, serial))
        .collect()
}

/// The one entry holding `serial`'s seed.
pub fn entry_for<'a>(entries: &'a [Entry], serial: &str) -> Result<&'a Entry, AwsError> {
    match entries_for(entries, serial).as_slice() {
        [] => Err(AwsError::NoEntry(serial.to_string())),
        [one] => Ok(one),
        many => Err(AwsError::AmbiguousEntry {
            serial: serial.to_string(),
            count: many.len(),
        }),
    }
}

/// The device a session uses when the profile names none: the one of the user's devices whose
/// seed is in the vault.
pub fn pick_device(
    devices: &[crate::iam::MfaDevice],
    entries: &[Entry],
    profile: &str,
) -> Result<String, AwsError> {
    let held: Vec<&crate::iam::MfaDevice> = devices
        .iter()
        .filter(|d| !entries_for(entries, &d.serial).is_empty())
        .collect();
    match (held.as_slice(), devices) {
        ([one], _) => Ok(one.serial.clone()),
        ([], []) => Err(AwsError::NoMfaSerial(profile.to_string())),
        ([], [only]) => Err(AwsError::NoEntry(only.serial.clone())),
        ([], _) => Err(AwsError::NoMfaSerial(profile.to_string())),
        (many, _) => Err(AwsError::AmbiguousDevice {
            profile: profile.to_string(),
            count: many.len(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_serial_matches_as_a_whole_word() {
        let s = "arn:aws:iam::111122223333:mfa/alice";
        assert!(note_names(&entry_note(s), s));
        assert!(note_names(&format!("phone copy; {s}, laptop"), s));
        assert!(!note_names(
            &entry_note("arn:aws:iam::111122223333:mfa/alice2"),
            s
        ));
        assert!(!note_names("", s));
    }

    #[test]
    fn the_account_is_user_at_alias_or_id() {
        assert_eq!(
            entry_account("alice", Some("acme"), "111122223333"),
            "alice@acme"
        );
        assert_eq!(
            entry_account("alice", None, "111122223333"),
            "alice@111122223333"
        );
    }
}

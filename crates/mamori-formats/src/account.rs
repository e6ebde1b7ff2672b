use std::fmt;

use mamori_otp::{KeyUri, OtpParams, Secret};
use subtle::ConstantTimeEq;

/// One account as carried between apps: the key URI (secret, issuer, account name, OTP
/// parameters) plus what some formats add (a note, tags or groups, a favourite mark).
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    /// Secret, labels and OTP parameters.
    pub uri: KeyUri,
    /// A free-text note (Aegis, Bitwarden); `None` when absent or empty.
    pub note: Option<String>,
    /// Tags, groups or folders, in the order the file lists them.
    pub tags: Vec<String>,
    /// Marked as a favourite (Aegis, Bitwarden).
    pub favorite: bool,
}

impl Account {
    /// An account with no note, no tags and no favourite mark.
    pub fn new(uri: KeyUri) -> Self {
        Account {
            uri,
            note: None,
            tags: Vec::new(),
            favorite: false,
        }
    }

    /// "Issuer (account)", "Issuer" or "account".
    pub fn display_name(&self) -> String {
        self.uri.display_name()
    }
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The KeyUri's Debug already redacts the secret; notes can hold recovery codes, so
        // only their presence is shown.
        f.debug_struct("Account")
            .field("uri", &self.uri)
            .field("note", &self.note.as_ref().map(|_| "[redacted]"))
            .field("tags", &self.tags)
            .field("favorite", &self.favorite)
            .finish()
    }
}

/// Two accounts are duplicates when they have the same secret, the same issuer and the same
/// account name (the secret is compared in constant time). Parameters, notes and tags are
/// not compared: the same key imported twice is the same account.
pub fn is_duplicate(a: &Account, b: &Account) -> bool {
    let same_secret: bool = a
        .uri
        .secret
        .as_bytes()
        .ct_eq(b.uri.secret.as_bytes())
        .into();
    same_secret && a.uri.issuer == b.uri.issuer && a.uri.account == b.uri.account
}

/// Builds an account from parts read out of a file, normalising labels the way
/// [`KeyUri::parse`] does (trimmed; an empty issuer is no issuer) so that every format yields
/// the same account for the same entry. An entry with neither issuer nor name is called
/// "unnamed" rather than dropped: its secret is what matters.
pub(crate) fn build(issuer: Option<&str>, name: &str, secret: Secret, params: OtpParams) -> KeyUri {
    let issuer = issuer
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let mut account = name.trim().to_string();
    if account.is_empty() && issuer.is_none() {
        account = "unnamed".to_string();
    }
    KeyUri {
        issuer,
        account,
        secret,
        params,
    }
}

/// Empty or whitespace-only notes are no note.
pub(crate) fn clean_note(note: Option<&str>) -> Option<String> {
    note.filter(|n| !n.trim().is_empty()).map(str::to_string)
}

/// OTP parameters from the loosely typed fields most formats store. `kind` is matched without
/// regard to case ("totp", "HOTP", "Steam"); missing values take the Key Uri Format defaults.
/// The error is a reason for [`crate::Unusable`].
pub(crate) fn params(
    kind: &str,
    algorithm: Option<&str>,
    digits: Option<u32>,
    period: Option<u64>,
    counter: Option<u64>,
) -> Result<OtpParams, String> {
    use mamori_otp::{Algorithm, OtpKind};
    let kind = match kind.trim().to_ascii_lowercase().as_str() {
        "totp" => OtpKind::Totp,
        "hotp" => OtpKind::Hotp,
        "steam" => OtpKind::Steam,
        other => return Err(format!("unsupported OTP type {other:?}")),
    };
    if kind == OtpKind::Steam {
        return Ok(OtpParams::steam());
    }
    let algorithm = match algorithm.map(str::trim).filter(|a| !a.is_empty()) {
        None => Algorithm::Sha1,
        Some(a) if a.eq_ignore_ascii_case("md5") => {
            return Err("uses MD5, which mamori does not support".into())
        }
        Some(a) => a
            .parse::<Algorithm>()
            .map_err(|_| format!("unsupported algorithm {a:?}"))?,
    };
    // Normalised like KeyUri::parse: a TOTP account has no counter and an HOTP account the
    // default period, so that the same account read from any format compares equal.
    OtpParams {
        kind,
        algorithm,
        digits: digits.unwrap_or(6),
        period: if kind == OtpKind::Totp {
            period.unwrap_or(30)
        } else {
            30
        },
        counter: if kind == OtpKind::Hotp {
            counter.unwrap_or(0)
        } else {
            0
        },
    }
    .validated()
    .map_err(|e| e.to_string())
}

/// "Issuer (name)", "Issuer" or "name" for reports, or `fallback` when both are empty.
pub(crate) fn describe(
    issuer: Option<&str>,
    name: &str,
    fallback: impl FnOnce() -> String,
) -> String {
    let issuer = issuer.map(str::trim).filter(|s| !s.is_empty());
    let name = name.trim();
    match (issuer, name.is_empty()) {
        (Some(i), false) => format!("{i} ({name})"),
        (Some(i), true) => i.to_string(),
        (None, false) => name.to_string(),
        (None, true) => fallback(),
    }
}

/// Splits `incoming` into the accounts to add and the duplicates to skip: an account is a
/// duplicate when [`is_duplicate`] holds against an `existing` account or an earlier incoming
/// one (an export read twice, or the same account in two batches). Order is kept.
pub fn split_duplicates(
    incoming: Vec<Account>,
    existing: &[Account],
) -> (Vec<Account>, Vec<Account>) {
    let mut new: Vec<Account> = Vec::with_capacity(incoming.len());
    let mut duplicates = Vec::new();
    for account in incoming {
        if existing
            .iter()
            .chain(new.iter())
            .any(|e| is_duplicate(e, &account))
        {
            duplicates.push(account);
        } else {
            new.push(account);
        }
    }
    (new, duplicates)
}

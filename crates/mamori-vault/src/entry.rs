//! One account in the vault, and the wire form it takes inside the encrypted payload.

use std::fmt;

use mamori_otp::{Algorithm, KeyUri, OtpKind, OtpParams, Secret};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::VaultError;

/// Longest issuer, account, note or tag accepted, in bytes.
pub const MAX_FIELD_LEN: usize = 1024;
/// Most tags on one entry.
pub const MAX_TAGS: usize = 32;
/// Longest secret accepted, in bytes (HMAC takes any length; nobody needs more).
pub const MAX_SECRET_LEN: usize = 256;

/// One authenticator account. The secret never appears in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    /// Stable identity (random UUID v4), kept across renames and syncs.
    pub id: Uuid,
    /// The service ("GitHub"); may be empty.
    pub issuer: String,
    /// The account at that service ("alice@example.com"); may be empty when the issuer is not.
    pub account: String,
    secret: Secret,
    /// Type, algorithm, digits, period and (HOTP) the counter of the next code.
    pub params: OtpParams,
    /// Free text.
    pub note: String,
    /// Labels for filtering.
    pub tags: Vec<String>,
    /// Shown first.
    pub favorite: bool,
    /// Unix seconds when the entry was added.
    pub created: u64,
    /// Unix seconds of the last change.
    pub updated: u64,
    /// Incremented on every change to this entry (sync merges on it).
    pub revision: u64,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("id", &self.id)
            .field("issuer", &self.issuer)
            .field("account", &self.account)
            .field("secret", &self.secret)
            .field("params", &self.params)
            .field("note", &self.note)
            .field("tags", &self.tags)
            .field("favorite", &self.favorite)
            .field("created", &self.created)
            .field("updated", &self.updated)
            .field("revision", &self.revision)
            .finish()
    }
}

/// What a caller supplies to add an account (from a URI, a QR code, a form or an import).
#[derive(Clone, PartialEq, Eq)]
pub struct NewEntry {
    /// The service; may be empty.
    pub issuer: String,
    /// The account name; may be empty when the issuer is not.
    pub account: String,
    /// The shared secret.
    pub secret: Secret,
    /// Type, algorithm, digits, period, counter.
    pub params: OtpParams,
    /// Free text.
    pub note: String,
    /// Labels.
    pub tags: Vec<String>,
    /// Shown first.
    pub favorite: bool,
}

impl fmt::Debug for NewEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewEntry")
            .field("issuer", &self.issuer)
            .field("account", &self.account)
            .field("secret", &self.secret)
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl NewEntry {
    /// An entry with no note, tags or favorite flag.
    pub fn new(
        issuer: impl Into<String>,
        account: impl Into<String>,
        secret: Secret,
        params: OtpParams,
    ) -> Self {
        NewEntry {
            issuer: issuer.into(),
            account: account.into(),
            secret,
            params,
            note: String::new(),
            tags: Vec::new(),
            favorite: false,
        }
    }

    /// From a parsed `otpauth://` URI.
    pub fn from_key_uri(uri: &KeyUri) -> Self {
        Self::new(
            uri.issuer.clone().unwrap_or_default(),
            uri.account.clone(),
            uri.secret.clone(),
            uri.params,
        )
    }

    /// Checks lengths, names and parameters; returns the entry with normalized parameters.
    pub fn validated(mut self) -> Result<Self, VaultError> {
        self.issuer = self.issuer.trim().to_string();
        self.account = self.account.trim().to_string();
        if self.issuer.is_empty() && self.account.is_empty() {
            return Err(VaultError::InvalidEntry(
                "give an issuer or an account name".into(),
            ));
        }
        self.params = self.params.validated()?;
        if self.secret.len() > MAX_SECRET_LEN {
            return Err(VaultError::InvalidEntry(format!(
                "the secret is longer than {MAX_SECRET_LEN} bytes"
            )));
        }
        check_fields(&self.issuer, &self.account, &self.note, &self.tags)?;
        Ok(self)
    }

    /// Whether `other` is the same account: same secret (compared in constant time), issuer and
    /// account (names compared case-insensitively, as people retype them).
    pub fn same_account(&self, issuer: &str, account: &str, secret: &Secret) -> bool {
        bool::from(self.secret.as_bytes().ct_eq(secret.as_bytes()))
            && self.issuer.to_lowercase() == issuer.to_lowercase()
            && self.account.to_lowercase() == account.to_lowercase()
    }
}

pub(crate) fn check_fields(
    issuer: &str,
    account: &str,
    note: &str,
    tags: &[String],
) -> Result<(), VaultError> {
    for (name, value) in [("issuer", issuer), ("account", account), ("note", note)] {
        if value.len() > MAX_FIELD_LEN {
            return Err(VaultError::InvalidEntry(format!(
                "the {name} is longer than {MAX_FIELD_LEN} bytes"
            )));
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(VaultError::InvalidEntry(format!(
            "more than {MAX_TAGS} tags"
        )));
    }
    if tags.iter().any(|t| t.is_empty() || t.len() > MAX_FIELD_LEN) {
        return Err(VaultError::InvalidEntry(format!(
            "tags must be 1 to {MAX_FIELD_LEN} bytes long"
        )));
    }
    Ok(())
}

impl Entry {
    pub(crate) fn from_new(new: NewEntry, id: Uuid, now: u64) -> Self {
        Entry {
            id,
            issuer: new.issuer,
            account: new.account,
            secret: new.secret,
            params: new.params,
            note: new.note,
            tags: new.tags,
            favorite: new.favorite,
            created: now,
            updated: now,
            revision: 1,
        }
    }

    /// The shared secret.
    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    /// "Issuer (account)", "Issuer" or "account": how the entry is named to a person.
    pub fn display_name(&self) -> String {
        match (self.issuer.is_empty(), self.account.is_empty()) {
            (false, false) => format!("{} ({})", self.issuer, self.account),
            (false, true) => self.issuer.clone(),
            _ => self.account.clone(),
        }
    }

    /// The entry as an `otpauth://` key URI (to show as a QR code or export).
    pub fn to_key_uri(&self) -> KeyUri {
        KeyUri {
            issuer: (!self.issuer.is_empty()).then(|| self.issuer.clone()),
            account: self.account.clone(),
            secret: self.secret.clone(),
            params: self.params,
        }
    }

    /// Whether this entry is the same account as `new` (see [`NewEntry::same_account`]).
    pub fn is_duplicate_of(&self, new: &NewEntry) -> bool {
        new.same_account(&self.issuer, &self.account, &self.secret)
    }

    /// Marks the entry changed at `now`.
    pub(crate) fn touch(&mut self, now: u64) {
        self.updated = now.max(self.updated);
        self.revision = self.revision.saturating_add(1);
    }
}

/// The entry as stored inside the payload (format version 1). Separate from [`Entry`] so the
/// domain type can change while the stored form stays stable.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EntryV1 {
    id: Uuid,
    issuer: String,
    account: String,
    /// RFC 4648 Base32 without padding.
    secret: Zeroizing<String>,
    #[serde(rename = "type")]
    kind: KindV1,
    algorithm: AlgorithmV1,
    digits: u32,
    period: u64,
    counter: u64,
    note: String,
    tags: Vec<String>,
    favorite: bool,
    created: u64,
    updated: u64,
    revision: u64,
}

impl From<&Entry> for EntryV1 {
    fn from(e: &Entry) -> Self {
        EntryV1 {
            id: e.id,
            issuer: e.issuer.clone(),
            account: e.account.clone(),
            secret: e.secret.to_base32(),
            kind: match e.params.kind {
                OtpKind::Totp => KindV1::Totp,
                OtpKind::Hotp => KindV1::Hotp,
                OtpKind::Steam => KindV1::Steam,
            },
            algorithm: match e.params.algorithm {
                Algorithm::Sha1 => AlgorithmV1::Sha1,
                Algorithm::Sha256 => AlgorithmV1::Sha256,
                Algorithm::Sha512 => AlgorithmV1::Sha512,
            },
            digits: e.params.digits,
            period: e.params.period,
            counter: e.params.counter,
            note: e.note.clone(),
            tags: e.tags.clone(),
            favorite: e.favorite,
            created: e.created,
            updated: e.updated,
            revision: e.revision,
        }
    }
}

impl TryFrom<EntryV1> for Entry {
    type Error = String;
    fn try_from(w: EntryV1) -> Result<Self, String> {
        // Stored secrets are strict Base32 (no padding, upper case), decoded without the
        // lenient clean-up that user input needs: opening large vaults stays fast.
        let secret = data_encoding::BASE32_NOPAD
            .decode(w.secret.as_bytes())
            .map_err(|_| format!("entry {}: the secret is not valid Base32", w.id))
            .and_then(|b| Secret::from_bytes(b).map_err(|e| format!("entry {}: {e}", w.id)))?;
        let kind = match w.kind {
            KindV1::Totp => OtpKind::Totp,
            KindV1::Hotp => OtpKind::Hotp,
            KindV1::Steam => OtpKind::Steam,
        };
        let algorithm = match w.algorithm {
            AlgorithmV1::Sha1 => Algorithm::Sha1,
            AlgorithmV1::Sha256 => Algorithm::Sha256,
            AlgorithmV1::Sha512 => Algorithm::Sha512,
        };
        let params = OtpParams {
            kind,
            algorithm,
            digits: w.digits,
            period: w.period,
            counter: w.counter,
        }
        .validated()
        .map_err(|e| format!("entry {}: {e}", w.id))?;
        Ok(Entry {
            id: w.id,
            issuer: w.issuer,
            account: w.account,
            secret,
            params,
            note: w.note,
            tags: w.tags,
            favorite: w.favorite,
            created: w.created,
            updated: w.updated,
            revision: w.revision,
        })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum KindV1 {
    Totp,
    Hotp,
    Steam,
}

#[derive(Serialize, Deserialize)]
enum AlgorithmV1 {
    #[serde(rename = "SHA1")]
    Sha1,
    #[serde(rename = "SHA256")]
    Sha256,
    #[serde(rename = "SHA512")]
    Sha512,
}

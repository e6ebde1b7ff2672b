//! The IAM credential report of the cloud provider in the product story: a CSV file with one row
//! per user and 22 columns (the provider's "Getting credential reports" documentation lists them in
//! this order). The root user's row is named `<root_account>`.
//!
//! Values are booleans (`true`/`false`), ISO 8601 timestamps (`2026-03-01T10:00:00+00:00`), or one
//! of the markers `N/A` (does not apply: no password, key never used), `no_information` (the
//! provider has no record, e.g. a password last used before tracking began) and `not_supported`
//! (the root user's password rotation fields).
//!
//! Parsing is strict: a malformed file is refused with the line and column at fault, because a
//! review built on a misread file is worse than none.

use std::collections::HashSet;
use std::fmt;

use thiserror::Error;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::{Finding, Outcome, Review, Severity};

/// The 22 columns, in order.
pub const COLUMNS: [&str; 22] = [
    "user",
    "arn",
    "user_creation_time",
    "password_enabled",
    "password_last_used",
    "password_last_changed",
    "password_next_rotation",
    "mfa_active",
    "access_key_1_active",
    "access_key_1_last_rotated",
    "access_key_1_last_used_date",
    "access_key_1_last_used_region",
    "access_key_1_last_used_service",
    "access_key_2_active",
    "access_key_2_last_rotated",
    "access_key_2_last_used_date",
    "access_key_2_last_used_region",
    "access_key_2_last_used_service",
    "cert_1_active",
    "cert_1_last_rotated",
    "cert_2_active",
    "cert_2_last_rotated",
];

/// The user name of the root user's row.
pub const ROOT_USER: &str = "<root_account>";

/// Credentials unused for this long or longer should be disabled (CIS AWS Foundations Benchmark
/// 1.12: "Ensure credentials unused for 45 days or greater are disabled").
pub const UNUSED_DAYS: i64 = 45;

/// Access keys should be rotated within this many days (CIS AWS Foundations Benchmark 1.14:
/// "Ensure access keys are rotated every 90 days or less").
pub const KEY_ROTATION_DAYS: i64 = 90;

/// Default for [`Options::root_use_days`]. CIS AWS Foundations Benchmark 1.7 ("Eliminate use of
/// the 'root' user for administrative and daily tasks") names no period: its audit reads the
/// root row's last-use dates and leaves the judgement to the reader. 90 days is one quarter, the
/// period the benchmark uses for access keys (1.14), so a quarterly review sees every use since
/// the previous one; a daily job may pass 1.
pub const ROOT_USE_DAYS: u32 = 90;

/// Largest report accepted (a report of 100,000 users is about 40 MB).
pub const MAX_REPORT_BYTES: usize = 64 * 1024 * 1024;

/// At most this many characters of an offending value are quoted in an error message.
pub const QUOTE_CHARS: usize = 80;

/// A value quoted in an error: its first [`QUOTE_CHARS`] characters and the length of the whole.
///
/// A field of a credential report may be megabytes long; an error names it without repeating it.
/// Displays as `"value"`, or `"first 80 characters"… (N bytes)` when cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quoted {
    start: String,
    bytes: usize,
}

impl Quoted {
    /// Quotes `value`, keeping at most [`QUOTE_CHARS`] characters of it.
    pub fn new(value: &str) -> Self {
        let start = match value.char_indices().nth(QUOTE_CHARS) {
            Some((end, _)) => value.get(..end).unwrap_or_default(),
            None => value,
        };
        Quoted {
            start: start.to_string(),
            bytes: value.len(),
        }
    }

    /// The quoted part (the whole value unless [`Quoted::is_cut`]).
    pub fn as_str(&self) -> &str {
        &self.start
    }

    /// The length of the whole value, in bytes.
    pub fn full_len(&self) -> usize {
        self.bytes
    }

    /// Whether the value was longer than what is quoted.
    pub fn is_cut(&self) -> bool {
        self.start.len() < self.bytes
    }
}

impl fmt::Display for Quoted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.start)?;
        if self.is_cut() {
            write!(f, "… ({} bytes)", self.bytes)?;
        }
        Ok(())
    }
}

/// Why a credential report cannot be read. Lines and columns count from 1.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReportError {
    /// The file has no header line.
    #[error("the file is empty: expected a credential report CSV with a header line")]
    Empty,
    /// The file is larger than [`MAX_REPORT_BYTES`].
    #[error("the file is {0} bytes, more than a credential report can be")]
    TooLarge(usize),
    /// The header does not list the 22 columns in order.
    #[error("line 1, column {column}: expected header {expected:?}, found {found}")]
    Header {
        /// Column number.
        column: usize,
        /// The column name that belongs there.
        expected: &'static str,
        /// What the file has there (empty if the header is too short).
        found: Quoted,
    },
    /// A row has the wrong number of fields.
    #[error("line {line}: expected {expected} fields, found {found}")]
    FieldCount {
        /// Line number.
        line: u64,
        /// The header's field count.
        expected: usize,
        /// This row's field count.
        found: usize,
    },
    /// A field holds a value its column cannot have.
    #[error("line {line}, column {column} ({name}): expected {expected}, found {found}")]
    Value {
        /// Line number.
        line: u64,
        /// Column number.
        column: usize,
        /// Column name.
        name: &'static str,
        /// What the column may hold.
        expected: &'static str,
        /// The value found, cut to [`QUOTE_CHARS`] characters (field values of a credential
        /// report are not secret).
        found: Quoted,
    },
    /// The same user appears twice.
    #[error("line {line}: user {user} appears a second time")]
    DuplicateUser {
        /// Line number of the second row.
        line: u64,
        /// The user name, cut to [`QUOTE_CHARS`] characters.
        user: Quoted,
    },
    /// The CSV itself is broken (unterminated quote, invalid UTF-8).
    #[error("line {line}: {reason}")]
    Syntax {
        /// Line number.
        line: u64,
        /// What is wrong.
        reason: String,
    },
}

/// A timestamp field, or the marker standing in for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// A point in time.
    At(OffsetDateTime),
    /// `N/A`: does not apply (no password, key never used).
    NotApplicable,
    /// `no_information`: the provider has no record.
    NoInformation,
    /// `not_supported`: the field does not exist for this user (root's password rotation).
    NotSupported,
}

impl When {
    fn time(self) -> Option<OffsetDateTime> {
        match self {
            When::At(t) => Some(t),
            _ => None,
        }
    }
}

/// A boolean field that may be `not_supported` (root's `password_enabled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// `true`.
    True,
    /// `false`.
    False,
    /// `not_supported`.
    NotSupported,
}

/// One access key's columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKey {
    /// `access_key_N_active`.
    pub active: bool,
    /// `access_key_N_last_rotated` (creation or last rotation).
    pub last_rotated: When,
    /// `access_key_N_last_used_date`.
    pub last_used: When,
    /// `access_key_N_last_used_region` (`None` for `N/A`).
    pub last_used_region: Option<String>,
    /// `access_key_N_last_used_service` (`None` for `N/A`).
    pub last_used_service: Option<String>,
}

/// One signing certificate's columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// `cert_N_active`.
    pub active: bool,
    /// `cert_N_last_rotated`.
    pub last_rotated: When,
}

/// One user's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// Line number in the file.
    pub line: u64,
    /// `user` (`<root_account>` for root).
    pub user: String,
    /// `arn`.
    pub arn: String,
    /// `user_creation_time`.
    pub created: OffsetDateTime,
    /// `password_enabled`.
    pub password_enabled: Flag,
    /// `password_last_used`.
    pub password_last_used: When,
    /// `password_last_changed`.
    pub password_last_changed: When,
    /// `password_next_rotation`.
    pub password_next_rotation: When,
    /// `mfa_active`.
    pub mfa_active: bool,
    /// `access_key_1_*` and `access_key_2_*`.
    pub access_keys: [AccessKey; 2],
    /// `cert_1_*` and `cert_2_*`.
    pub certificates: [Certificate; 2],
}

impl UserRow {
    /// Whether this is the root user's row.
    pub fn is_root(&self) -> bool {
        self.user == ROOT_USER
    }
}

/// A parsed credential report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialReport {
    /// The rows, in file order.
    pub users: Vec<UserRow>,
}

/// Reads one row's fields with their positions, for error messages.
struct Fields<'a> {
    record: &'a csv::StringRecord,
    line: u64,
}

impl Fields<'_> {
    fn raw(&self, column: usize) -> &str {
        self.record.get(column).map(str::trim).unwrap_or("")
    }

    fn err(&self, column: usize, expected: &'static str) -> ReportError {
        ReportError::Value {
            line: self.line,
            column: column + 1,
            name: COLUMNS.get(column).copied().unwrap_or("?"),
            expected,
            found: Quoted::new(self.raw(column)),
        }
    }

    fn text(&self, column: usize) -> Result<String, ReportError> {
        let v = self.raw(column);
        if v.is_empty() {
            return Err(self.err(column, "a value"));
        }
        Ok(v.to_string())
    }

    fn optional_text(&self, column: usize) -> Result<Option<String>, ReportError> {
        match self.raw(column) {
            "N/A" => Ok(None),
            "" => Err(self.err(column, "a value or N/A")),
            v => Ok(Some(v.to_string())),
        }
    }

    fn boolean(&self, column: usize) -> Result<bool, ReportError> {
        match self.raw(column) {
            "true" | "TRUE" | "True" => Ok(true),
            "false" | "FALSE" | "False" => Ok(false),
            _ => Err(self.err(column, "true or false")),
        }
    }

    fn flag(&self, column: usize) -> Result<Flag, ReportError> {
        match self.raw(column) {
            "not_supported" => Ok(Flag::NotSupported),
            _ => self
                .boolean(column)
                .map(|b| if b { Flag::True } else { Flag::False })
                .map_err(|_| self.err(column, "true, false or not_supported")),
        }
    }

    fn timestamp(&self, column: usize) -> Result<OffsetDateTime, ReportError> {
        OffsetDateTime::parse(self.raw(column), &Rfc3339)
            .map_err(|_| self.err(column, "an ISO 8601 time such as 2026-03-01T10:00:00+00:00"))
    }

    fn when(&self, column: usize) -> Result<When, ReportError> {
        match self.raw(column) {
            "N/A" => Ok(When::NotApplicable),
            "no_information" => Ok(When::NoInformation),
            "not_supported" => Ok(When::NotSupported),
            _ => self.timestamp(column).map(When::At).map_err(|_| {
                self.err(
                    column,
                    "an ISO 8601 time, N/A, no_information or not_supported",
                )
            }),
        }
    }

    fn access_key(&self, first: usize) -> Result<AccessKey, ReportError> {
        Ok(AccessKey {
            active: self.boolean(first)?,
            last_rotated: self.when(first + 1)?,
            last_used: self.when(first + 2)?,
            last_used_region: self.optional_text(first + 3)?,
            last_used_service: self.optional_text(first + 4)?,
        })
    }

    fn certificate(&self, first: usize) -> Result<Certificate, ReportError> {
        Ok(Certificate {
            active: self.boolean(first)?,
            last_rotated: self.when(first + 1)?,
        })
    }
}

fn csv_error(e: &csv::Error) -> ReportError {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    let reason = match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "the file is not valid UTF-8".to_string(),
        _ => format!("not a valid CSV line ({e})"),
    };
    ReportError::Syntax { line, reason }
}

/// Parses a credential report.
pub fn parse(bytes: &[u8]) -> Result<CredentialReport, ReportError> {
    if bytes.len() > MAX_REPORT_BYTES {
        return Err(ReportError::TooLarge(bytes.len()));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ReportError::Empty);
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut records = reader.records();

    let header = match records.next() {
        Some(r) => r.map_err(|e| csv_error(&e))?,
        None => return Err(ReportError::Empty),
    };
    for (i, expected) in COLUMNS.iter().enumerate() {
        let found = header.get(i).map(str::trim).unwrap_or("");
        if !found.eq_ignore_ascii_case(expected) {
            return Err(ReportError::Header {
                column: i + 1,
                expected,
                found: Quoted::new(found),
            });
        }
    }
    // Columns after the 22 known ones are tolerated (a newer report format) and ignored.
    let width = header.len();

    let mut users = Vec::new();
    let mut seen = HashSet::new();
    for record in records {
        let record = record.map_err(|e| csv_error(&e))?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.len() == 1 && record.get(0).map(str::trim) == Some("") {
            continue; // a blank line
        }
        if record.len() != width {
            return Err(ReportError::FieldCount {
                line,
                expected: width,
                found: record.len(),
            });
        }
        let f = Fields {
            record: &record,
            line,
        };
        let user = f.text(0)?;
        if !seen.insert(user.clone()) {
            return Err(ReportError::DuplicateUser {
                line,
                user: Quoted::new(&user),
            });
        }
        let arn = f.text(1)?;
        if !arn.starts_with("arn:") {
            return Err(f.err(1, "an ARN (arn:…)"));
        }
        users.push(UserRow {
            line,
            user,
            arn,
            created: f.timestamp(2)?,
            password_enabled: f.flag(3)?,
            password_last_used: f.when(4)?,
            password_last_changed: f.when(5)?,
            password_next_rotation: f.when(6)?,
            mfa_active: f.boolean(7)?,
            access_keys: [f.access_key(8)?, f.access_key(13)?],
            certificates: [f.certificate(18)?, f.certificate(20)?],
        });
    }
    Ok(CredentialReport { users })
}

struct Days(i64);

impl fmt::Display for Days {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 1 {
            write!(f, "1 day")
        } else {
            write!(f, "{} days", self.0)
        }
    }
}

fn age(now: OffsetDateTime, then: OffsetDateTime) -> i64 {
    (now - then).whole_days()
}

/// "8 days ago", or for a time after `now` (a report newer than `--at`) says so.
fn ago(now: OffsetDateTime, then: OffsetDateTime) -> String {
    if then > now {
        "after the time of the review".to_string()
    } else {
        format!("{} ago", Days(age(now, then)))
    }
}

fn date(t: OffsetDateTime) -> String {
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

/// What a review may be told besides the report and the time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// `CR-ROOT-USE` fails when root's password or an access key was used less than this many
    /// days before the review ([`ROOT_USE_DAYS`] by default).
    pub root_use_days: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            root_use_days: ROOT_USE_DAYS,
        }
    }
}

/// One check: its stable id, its question, how bad a failure is, and where the fix is made.
/// Every finding is made through one of these, so none goes without its link.
pub(crate) struct Check {
    pub(crate) id: &'static str,
    pub(crate) title: &'static str,
    pub(crate) severity: Severity,
    pub(crate) link: &'static str,
}

impl Check {
    /// Passes with nobody affected, fails otherwise.
    pub(crate) fn result(&self, affected: Vec<String>, remedy: &str) -> Finding {
        Finding {
            id: self.id,
            title: self.title,
            severity: self.severity,
            outcome: if affected.is_empty() {
                Outcome::Pass
            } else {
                Outcome::Fail
            },
            affected,
            remedy: remedy.to_string(),
            link: Some(self.link.to_string()),
        }
    }

    /// The report cannot answer this check; `why` says so and what would.
    pub(crate) fn undecidable(&self, why: &str) -> Finding {
        Finding {
            id: self.id,
            title: self.title,
            severity: self.severity,
            outcome: Outcome::Undecidable,
            affected: Vec::new(),
            remedy: why.to_string(),
            link: Some(self.link.to_string()),
        }
    }
}

// The checks, with the section of the CIS Amazon Web Services Foundations Benchmark (v3.0.0
// numbering) each one follows, and the page of the provider's IAM User Guide where the fix is
// made. docs/review.md lists the same ids and links; a test keeps the two equal.

/// CIS 1.4 "Ensure no 'root' user account access key exists".
const ROOT_ACCESS_KEYS: Check = Check {
    id: "CR-ROOT-ACCESS-KEYS",
    title: "The root user has no active access keys",
    severity: Severity::High,
    link: "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_root-user_manage_delete-key.html",
};

/// CIS 1.5 "Ensure MFA is enabled for the 'root' user account".
const ROOT_MFA: Check = Check {
    id: "CR-ROOT-MFA",
    title: "The root user has MFA",
    severity: Severity::High,
    link: "https://docs.aws.amazon.com/IAM/latest/UserGuide/enable-mfa-for-root.html",
};

/// CIS 1.6 "Ensure hardware MFA is enabled for the 'root' user account".
pub(crate) const ROOT_HARDWARE_MFA: Check = Check {
    id: "CR-ROOT-HARDWARE-MFA",
    title: "The root user's MFA is a hardware device",
    severity: Severity::Medium,
    link: "https://docs.aws.amazon.com/IAM/latest/UserGuide/enable-mfa-for-root.html",
};

/// CIS 1.7 "Eliminate use of the 'root' user for administrative and daily tasks".
const ROOT_USE: Check = Check {
    id: "CR-ROOT-USE",
    title: "The root user is not used for everyday tasks",
    severity: Severity::Medium,
    link: "https://docs.aws.amazon.com/IAM/latest/UserGuide/root-user-tasks.html",
};

/// CIS 1.10 "Ensure multi-factor authentication (MFA) is enabled for all IAM users that have a
/// console password".
const USER_MFA: Check = Check {
    id: "CR-USER-MFA",
    title: "Every user with a console password has MFA",
    severity: Severity::High,
    link: "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_mfa_enable.html",
};

/// CIS 1.11 "Do not setup access keys during initial user setup for all IAM users that have a
/// console password".
const SETUP_ACCESS_KEY: Check = Check {
    id: "CR-SETUP-ACCESS-KEY",
    title: "No user with a console password has an active access key that was never used",
    severity: Severity::Medium,
    link: "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_access-keys.html",
};

/// CIS 1.12 "Ensure credentials unused for 45 days or greater are disabled".
const UNUSED_45: Check = Check {
    id: "CR-UNUSED-45",
    title: "Credentials unused for 45 days or more are disabled",
    severity: Severity::Medium,
    link: "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_finding-unused.html",
};

/// CIS 1.13 "Ensure there is only one active access key available for any single IAM user".
const ONE_ACTIVE_KEY: Check = Check {
    id: "CR-ONE-ACTIVE-KEY",
    title: "Each user has at most one active access key",
    severity: Severity::Medium,
    link: "https://docs.aws.amazon.com/IAM/latest/UserGuide/id-credentials-access-keys-update.html",
};

/// CIS 1.14 "Ensure access keys are rotated every 90 days or less".
const KEY_AGE_90: Check = Check {
    id: "CR-KEY-AGE-90",
    title: "Active access keys are rotated within 90 days",
    severity: Severity::Medium,
    link: "https://docs.aws.amazon.com/IAM/latest/UserGuide/id-credentials-access-keys-update.html",
};

/// CIS 1.8 "Ensure IAM password policy requires minimum length of 14 or greater".
const PASSWORD_POLICY: Check = Check {
    id: "CR-PASSWORD-POLICY",
    title: "The password policy requires 14 or more characters",
    severity: Severity::Medium,
    link: "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_passwords_account-policy.html",
};

const NO_ROOT: &str =
    "the report has no <root_account> row, so this cannot be decided; download a complete report";

/// Reviews a credential report as of `now` with the default [`Options`].
pub fn review(report: &CredentialReport, now: OffsetDateTime) -> Review {
    review_with(report, now, &Options::default())
}

/// Reviews a credential report as of `now`.
pub fn review_with(report: &CredentialReport, now: OffsetDateTime, options: &Options) -> Review {
    let root = report.users.iter().find(|u| u.is_root());
    let users: Vec<&UserRow> = report.users.iter().filter(|u| !u.is_root()).collect();
    let mut findings = Vec::new();

    findings.push(match root {
        Some(r) => {
            let keys: Vec<String> = r
                .access_keys
                .iter()
                .enumerate()
                .filter(|(_, k)| k.active)
                .map(|(i, _)| format!("{ROOT_USER} (access key {})", i + 1))
                .collect();
            ROOT_ACCESS_KEYS.result(keys,
                "delete the root user's access keys; use an IAM role or user with least privilege for programmatic access")
        }
        None => ROOT_ACCESS_KEYS.undecidable(NO_ROOT),
    });

    findings.push(match root {
        Some(r) => ROOT_MFA.result(
            if r.mfa_active { vec![] } else { vec![ROOT_USER.to_string()] },
            "sign in as root, open Security credentials and assign an MFA device (a hardware key or token is best)",
        ),
        None => ROOT_MFA.undecidable(NO_ROOT),
    });

    // The report only says "MFA active", not which kind.
    findings.push(match root {
        Some(r) if !r.mfa_active => ROOT_HARDWARE_MFA.result(
            vec![ROOT_USER.to_string()],
            "the root user has no MFA at all; assign a hardware MFA device or security key",
        ),
        Some(_) => ROOT_HARDWARE_MFA.undecidable(
            "a credential report says whether MFA is active, not whether it is a hardware device; list the account's virtual MFA devices (a root virtual device appears there) to decide",
        ),
        None => ROOT_HARDWARE_MFA.undecidable(NO_ROOT),
    });

    findings.push(match root {
        Some(r) => root_use(r, now, options.root_use_days),
        None => ROOT_USE.undecidable(NO_ROOT),
    });

    let no_mfa: Vec<String> = users
        .iter()
        .filter(|u| u.password_enabled == Flag::True && !u.mfa_active)
        .map(|u| u.user.clone())
        .collect();
    findings.push(USER_MFA.result(
        no_mfa,
        "assign an MFA device to each of these users, or remove their console password if they do not sign in",
    ));

    // CIS 1.11's audit from the command line: "For any user having password_enabled set to true
    // AND access_key_last_used_date set to N/A refer to the remediation". The report has no key
    // creation time to compare with the user's (`access_key_N_last_rotated` is "created or last
    // changed"), so a key that a console user holds and never used is the finding, whenever it
    // was made. Inactive keys cannot be used and are left to CR-UNUSED-45's deletion advice.
    let mut setup_keys = Vec::new();
    for u in users.iter().filter(|u| u.password_enabled == Flag::True) {
        for (i, k) in u.access_keys.iter().enumerate() {
            if k.active && k.last_used == When::NotApplicable {
                setup_keys.push(match k.last_rotated.time() {
                    Some(t) => format!(
                        "{} (access key {}, never used, created {})",
                        u.user,
                        i + 1,
                        date(t)
                    ),
                    None => format!("{} (access key {}, never used)", u.user, i + 1),
                });
            }
        }
    }
    findings.push(SETUP_ACCESS_KEY.result(
        setup_keys,
        "delete these keys (deactivate first if unsure); a user who needs programmatic access creates a key when the need arises, as a step apart from setting the user up",
    ));

    // A credential last used exactly 45 days ago is already unused ("45 days or greater").
    let limit = Duration::days(UNUSED_DAYS);
    let mut unused = Vec::new();
    for u in &users {
        if u.password_enabled == Flag::True {
            match u.password_last_used.time() {
                Some(t) if now - t >= limit => unused.push(format!(
                    "{} (password, last used {}, {} ago)",
                    u.user,
                    date(t),
                    Days(age(now, t))
                )),
                Some(_) => {}
                None => {
                    // Never used: judge by when the password was set (or the user created).
                    let since = u.password_last_changed.time().unwrap_or(u.created);
                    if now - since >= limit {
                        unused.push(format!(
                            "{} (password, never used, set {})",
                            u.user,
                            date(since)
                        ));
                    }
                }
            }
        }
        for (i, k) in u.access_keys.iter().enumerate().filter(|(_, k)| k.active) {
            match k.last_used.time() {
                Some(t) if now - t >= limit => unused.push(format!(
                    "{} (access key {}, last used {}, {} ago)",
                    u.user,
                    i + 1,
                    date(t),
                    Days(age(now, t))
                )),
                Some(_) => {}
                None => {
                    let since = k.last_rotated.time().unwrap_or(u.created);
                    if now - since >= limit {
                        unused.push(format!(
                            "{} (access key {}, never used, created {})",
                            u.user,
                            i + 1,
                            date(since)
                        ));
                    }
                }
            }
        }
    }
    findings.push(UNUSED_45.result(
        unused,
        "deactivate these passwords and access keys; delete them if nobody claims them",
    ));

    let two_keys: Vec<String> = report
        .users
        .iter()
        .filter(|u| u.access_keys.iter().all(|k| k.active))
        .map(|u| u.user.clone())
        .collect();
    findings.push(ONE_ACTIVE_KEY.result(
        two_keys,
        "keep one active access key per user: deactivate the older key once the newer one is in use",
    ));

    let rotation = Duration::days(KEY_ROTATION_DAYS);
    let mut old = Vec::new();
    for u in &report.users {
        for (i, k) in u.access_keys.iter().enumerate().filter(|(_, k)| k.active) {
            if let Some(t) = k.last_rotated.time() {
                if now - t > rotation {
                    old.push(format!(
                        "{} (access key {}, created {}, {} old)",
                        u.user,
                        i + 1,
                        date(t),
                        Days(age(now, t))
                    ));
                }
            }
        }
    }
    findings.push(KEY_AGE_90.result(
        old,
        "create a new access key, move its users to it, then deactivate and delete the old key",
    ));

    // What a credential report cannot tell.
    findings.push(PASSWORD_POLICY.undecidable(
        "a credential report does not include the account password policy; read it from the account settings",
    ));

    Review { findings }
}

/// CIS 1.7 on the root row: a use of root's password or of either access key less than `days`
/// days before `now` is a finding. The report's markers mean no use on record: `N/A` (no
/// password; a key never used) and `no_information` (no sign-in since the provider began
/// recording them); neither is a recent use. `not_supported` says nothing about use, so without
/// a recent use elsewhere the check is undecidable.
fn root_use(root: &UserRow, now: OffsetDateTime, days: u32) -> Finding {
    let window = Duration::days(i64::from(days));
    let [key1, key2] = &root.access_keys;
    let credentials = [
        ("password", root.password_last_used),
        ("access key 1", key1.last_used),
        ("access key 2", key2.last_used),
    ];
    let mut recent = Vec::new();
    let mut unknown = Vec::new();
    for (what, last_used) in credentials {
        match last_used {
            When::At(t) if now - t < window => recent.push(format!(
                "{ROOT_USER} ({what}, last used {}, {})",
                date(t),
                ago(now, t)
            )),
            When::At(_) | When::NotApplicable | When::NoInformation => {}
            When::NotSupported => unknown.push(what),
        }
    }
    if recent.is_empty() && !unknown.is_empty() {
        return ROOT_USE.undecidable(&format!(
            "the report gives not_supported as the last use of root's {}, so a recent use cannot be ruled out; download a new report",
            unknown.join(" and ")
        ));
    }
    ROOT_USE.result(
        recent,
        &format!(
            "confirm that each use of root in the last {} was one of the tasks only root can do (see the link); do everyday work as an IAM user or role with least privilege, and if a use is not accounted for, change root's password and delete its access keys",
            Days(i64::from(days))
        ),
    )
}

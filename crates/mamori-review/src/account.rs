//! `mamori review aws`: an account's review from what its API says, not only a downloaded file.
//! The credential report's checks ([`crate::credential_report`]) run unchanged; the account
//! summary (`GetAccountSummary`) and the list of virtual MFA devices (`ListVirtualMFADevices`)
//! add three checks and decide one the report alone cannot (`CR-ROOT-HARDWARE-MFA`).
//!
//! Pure like the rest of the crate: the facts are arguments, fetched by the caller.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use crate::credential_report::{self, Check, CredentialReport, Options, ROOT_HARDWARE_MFA};
use crate::{Finding, Outcome, Review, Severity};

/// A virtual MFA device of the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualDevice {
    /// Its serial (ARN).
    pub serial: String,
    /// The ARN of the user it is assigned to (`arn:aws:iam::ACCOUNT:root` for the root
    /// user), or `None` when nobody has it.
    pub user_arn: Option<String>,
}

/// What the account's API says besides the credential report.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccountFacts {
    /// `GetAccountSummary`'s map (`AccountMFAEnabled`, `AccountAccessKeysPresent`, …).
    pub summary: BTreeMap<String, i32>,
    /// Every virtual MFA device, assigned or not.
    pub virtual_devices: Vec<VirtualDevice>,
}

/// CIS 1.5 from the account summary: `AccountMFAEnabled` is 1.
const ACCOUNT_MFA: Check = Check {
    id: "AWS-ACCOUNT-MFA",
    title: "The account summary says the root user has MFA",
    severity: Severity::High,
    link: "https://docs.aws.amazon.com/IAM/latest/UserGuide/enable-mfa-for-root.html",
};

/// CIS 1.4 from the account summary: `AccountAccessKeysPresent` is 0.
const ACCOUNT_ACCESS_KEYS: Check = Check {
    id: "AWS-ACCOUNT-ACCESS-KEYS",
    title: "The account summary says the root user has no access keys",
    severity: Severity::High,
    link: "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_root-user_manage_delete-key.html",
};

/// Virtual devices assigned to nobody: an abandoned enrolment, whose seed may still sit in an
/// authenticator somewhere.
const UNASSIGNED_MFA: Check = Check {
    id: "AWS-UNASSIGNED-MFA",
    title: "Every virtual MFA device is assigned to a user",
    severity: Severity::Low,
    link: "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_mfa_disable.html",
};

fn is_root(arn: &str) -> bool {
    arn.ends_with(":root")
}

/// Reviews the account: the credential report's checks as of `now`, with `CR-ROOT-HARDWARE-MFA`
/// decided by the virtual devices, then the account-summary and device checks.
pub fn review(
    report: &CredentialReport,
    facts: &AccountFacts,
    now: OffsetDateTime,
    options: &Options,
) -> Review {
    let mut findings: Vec<Finding> = credential_report::review_with(report, now, options)
        .findings
        .into_iter()
        .map(|f| {
            if f.id == ROOT_HARDWARE_MFA.id && f.outcome == Outcome::Undecidable {
                root_hardware(report, facts).unwrap_or(f)
            } else {
                f
            }
        })
        .collect();

    findings.push(flag_check(
        &ACCOUNT_MFA,
        facts.summary.get("AccountMFAEnabled").copied(),
        1,
        "sign in as root, open Security credentials and assign an MFA device (a hardware key or token is best)",
    ));
    findings.push(flag_check(
        &ACCOUNT_ACCESS_KEYS,
        facts.summary.get("AccountAccessKeysPresent").copied(),
        0,
        "delete the root user's access keys; use an IAM role or user with least privilege for programmatic access",
    ));
    let unassigned: Vec<String> = facts
        .virtual_devices
        .iter()
        .filter(|d| d.user_arn.is_none())
        .map(|d| d.serial.clone())
        .collect();
    findings.push(UNASSIGNED_MFA.result(
        unassigned,
        "delete each of these devices (`aws iam delete-virtual-mfa-device --serial-number ARN`) and the authenticator entries that hold their seeds",
    ));
    Review { findings }
}

/// A summary flag that passes at `good`; missing from the summary is undecidable.
fn flag_check(check: &Check, value: Option<i32>, good: i32, remedy: &str) -> Finding {
    match value {
        Some(v) if v == good => check.result(Vec::new(), remedy),
        Some(_) => check.result(vec![credential_report::ROOT_USER.to_string()], remedy),
        None => check.undecidable(
            "the account summary does not have this entry; ask GetAccountSummary with an identity allowed iam:GetAccountSummary",
        ),
    }
}

/// With root's MFA active, a virtual device assigned to root means it is not hardware; none
/// means it is hardware (a security key or token). `None` leaves the report's finding.
fn root_hardware(report: &CredentialReport, facts: &AccountFacts) -> Option<Finding> {
    let root = report.users.iter().find(|u| u.is_root())?;
    if !root.mfa_active {
        return None;
    }
    let virtual_root: Vec<String> = facts
        .virtual_devices
        .iter()
        .filter(|d| d.user_arn.as_deref().is_some_and(is_root))
        .map(|d| format!("{} ({})", credential_report::ROOT_USER, d.serial))
        .collect();
    Some(ROOT_HARDWARE_MFA.result(
        virtual_root,
        "the root user's MFA is a virtual device; assign a hardware MFA device or security key and remove the virtual one",
    ))
}

//! `mamori review aws`'s account review: the report's checks plus the account summary and the
//! virtual devices, on the same fixtures.

use std::collections::BTreeMap;

use mamori_review::account::{review, AccountFacts, VirtualDevice};
use mamori_review::credential_report::{parse, Options};
use mamori_review::{Outcome, Review};
use time::macros::datetime;
use time::OffsetDateTime;

const NOW: OffsetDateTime = datetime!(2026-11-28 00:00:00 UTC);

fn load(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).expect("fixture")
}

fn finding<'a>(r: &'a Review, id: &str) -> &'a mamori_review::Finding {
    r.findings
        .iter()
        .find(|f| f.id == id)
        .unwrap_or_else(|| panic!("no finding {id}"))
}

fn facts(mfa: Option<i32>, keys: Option<i32>, devices: &[(&str, Option<&str>)]) -> AccountFacts {
    let mut summary = BTreeMap::new();
    if let Some(v) = mfa {
        summary.insert("AccountMFAEnabled".to_string(), v);
    }
    if let Some(v) = keys {
        summary.insert("AccountAccessKeysPresent".to_string(), v);
    }
    summary.insert("Users".to_string(), 3);
    AccountFacts {
        summary,
        virtual_devices: devices
            .iter()
            .map(|(s, u)| VirtualDevice {
                serial: s.to_string(),
                user_arn: u.map(String::from),
            })
            .collect(),
    }
}

#[test]
fn the_summary_flags_and_unassigned_devices() {
    let report = parse(&load("clean.csv")).expect("parses");
    let r = review(
        &report,
        &facts(
            Some(1),
            Some(0),
            &[
                (
                    "arn:aws:iam::111122223333:mfa/ops",
                    Some("arn:aws:iam::111122223333:user/ops"),
                ),
                ("arn:aws:iam::111122223333:mfa/left-over", None),
            ],
        ),
        NOW,
        &Options::default(),
    );
    assert_eq!(r.findings.len(), 13, "the report's ten and three more");
    assert_eq!(finding(&r, "AWS-ACCOUNT-MFA").outcome, Outcome::Pass);
    assert_eq!(
        finding(&r, "AWS-ACCOUNT-ACCESS-KEYS").outcome,
        Outcome::Pass
    );
    let u = finding(&r, "AWS-UNASSIGNED-MFA");
    assert_eq!(u.outcome, Outcome::Fail);
    assert_eq!(u.affected, ["arn:aws:iam::111122223333:mfa/left-over"]);
    // Root has MFA and no virtual device: it is hardware, decided now.
    assert_eq!(finding(&r, "CR-ROOT-HARDWARE-MFA").outcome, Outcome::Pass);

    let r = review(
        &report,
        &facts(Some(0), Some(1), &[]),
        NOW,
        &Options::default(),
    );
    assert_eq!(finding(&r, "AWS-ACCOUNT-MFA").outcome, Outcome::Fail);
    assert_eq!(finding(&r, "AWS-ACCOUNT-MFA").affected, ["<root_account>"]);
    assert_eq!(
        finding(&r, "AWS-ACCOUNT-ACCESS-KEYS").outcome,
        Outcome::Fail
    );
    assert_eq!(finding(&r, "AWS-UNASSIGNED-MFA").outcome, Outcome::Pass);
    assert!(r.has_high_failure());
}

#[test]
fn a_virtual_root_device_fails_the_hardware_check() {
    let report = parse(&load("clean.csv")).expect("parses");
    let r = review(
        &report,
        &facts(
            Some(1),
            Some(0),
            &[(
                "arn:aws:iam::111122223333:mfa/root-account-mfa-device",
                Some("arn:aws:iam::111122223333:root"),
            )],
        ),
        NOW,
        &Options::default(),
    );
    let f = finding(&r, "CR-ROOT-HARDWARE-MFA");
    assert_eq!(f.outcome, Outcome::Fail);
    assert_eq!(
        f.affected,
        ["<root_account> (arn:aws:iam::111122223333:mfa/root-account-mfa-device)"]
    );
}

#[test]
fn a_summary_without_the_flags_is_undecidable_not_a_pass() {
    let report = parse(&load("mixed.csv")).expect("parses");
    let r = review(&report, &facts(None, None, &[]), NOW, &Options::default());
    assert_eq!(finding(&r, "AWS-ACCOUNT-MFA").outcome, Outcome::Undecidable);
    assert_eq!(
        finding(&r, "AWS-ACCOUNT-ACCESS-KEYS").outcome,
        Outcome::Undecidable
    );
    // Root without MFA: the report's own failure stands.
    assert_eq!(finding(&r, "CR-ROOT-HARDWARE-MFA").outcome, Outcome::Fail);
}

// The account checks are listed in docs/review.md with their links, like the report's.
#[test]
fn every_account_finding_has_the_documented_link() {
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/review.md"))
            .expect("docs/review.md");
    let report = parse(&load("clean.csv")).expect("parses");
    let r = review(
        &report,
        &facts(Some(1), Some(0), &[]),
        NOW,
        &Options::default(),
    );
    for f in &r.findings {
        let link = f.link.as_deref().expect("link");
        assert!(
            docs.lines()
                .any(|l| l.contains(&format!("`{}`", f.id)) && l.contains(link)),
            "docs/review.md has no line with {} and {link}",
            f.id
        );
    }
}

//! The credential report reader and its checks, on fixtures written from the provider's published
//! column list. "Now" is fixed so that ages are exact.

use mamori_review::credential_report::{
    parse, review, review_with, Options, ReportError, When, COLUMNS,
};
use mamori_review::{Outcome, Review, Severity};
use time::macros::datetime;
use time::OffsetDateTime;

const NOW: OffsetDateTime = datetime!(2026-11-28 00:00:00 UTC);

fn load(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).expect("fixture")
}

fn header() -> String {
    COLUMNS.join(",")
}

fn check(review: &Review, id: &str, outcome: Outcome, affected: &[&str]) {
    let f = review
        .findings
        .iter()
        .find(|f| f.id == id)
        .unwrap_or_else(|| panic!("no finding {id}"));
    assert_eq!(f.outcome, outcome, "{id}: {f:?}");
    assert_eq!(f.affected, affected, "{id}");
    assert!(!f.remedy.is_empty(), "{id} has a remedy");
}

#[test]
fn mixed_report() {
    let report = parse(&load("mixed.csv")).expect("parses");
    assert_eq!(report.users.len(), 6);
    assert_eq!(report.users[4].password_last_used, When::NoInformation);
    assert_eq!(
        report.users[3].access_keys[1].last_used,
        When::NotApplicable
    );
    assert_eq!(
        report.users[3].access_keys[0].last_used_service.as_deref(),
        Some("ec2")
    );
    let r = review(&report, NOW);
    check(
        &r,
        "CR-ROOT-ACCESS-KEYS",
        Outcome::Fail,
        &["<root_account> (access key 1)"],
    );
    check(&r, "CR-ROOT-MFA", Outcome::Fail, &["<root_account>"]);
    check(
        &r,
        "CR-ROOT-HARDWARE-MFA",
        Outcome::Fail,
        &["<root_account>"],
    );
    check(
        &r,
        "CR-ROOT-USE",
        Outcome::Fail,
        &[
            "<root_account> (password, last used 2026-11-20, 7 days ago)",
            "<root_account> (access key 1, last used 2026-11-01, 27 days ago)",
        ],
    );
    check(&r, "CR-USER-MFA", Outcome::Fail, &["bob", "erin"]);
    // carol's never-used key 2 is no CIS 1.11 finding: she has no console password.
    check(&r, "CR-SETUP-ACCESS-KEY", Outcome::Pass, &[]);
    check(
        &r,
        "CR-UNUSED-45",
        Outcome::Fail,
        &[
            "bob (password, last used 2026-08-01, 119 days ago)",
            "carol (access key 2, never used, created 2026-09-01)",
            "dave (password, never used, set 2014-06-01)",
        ],
    );
    check(&r, "CR-ONE-ACTIVE-KEY", Outcome::Fail, &["carol"]);
    check(
        &r,
        "CR-KEY-AGE-90",
        Outcome::Fail,
        &[
            "<root_account> (access key 1, created 2021-03-01, 2098 days old)",
            "carol (access key 1, created 2022-01-01, 1792 days old)",
        ],
    );
    check(&r, "CR-PASSWORD-POLICY", Outcome::Undecidable, &[]);
    assert!(r.has_high_failure());
    assert!(!r.has_high_undecidable());
    assert_eq!(r.counts(), (1, 8, 1, 0));
}

#[test]
fn clean_report_passes_and_says_what_it_cannot_decide() {
    let r = review(&parse(&load("clean.csv")).expect("parses"), NOW);
    for id in [
        "CR-ROOT-ACCESS-KEYS",
        "CR-ROOT-MFA",
        "CR-ROOT-USE",
        "CR-USER-MFA",
        "CR-SETUP-ACCESS-KEY",
        "CR-UNUSED-45",
        "CR-ONE-ACTIVE-KEY",
        "CR-KEY-AGE-90",
    ] {
        check(&r, id, Outcome::Pass, &[]);
    }
    // Root has MFA, but the report cannot say which kind.
    check(&r, "CR-ROOT-HARDWARE-MFA", Outcome::Undecidable, &[]);
    let why = &r
        .findings
        .iter()
        .find(|f| f.id == "CR-ROOT-HARDWARE-MFA")
        .expect("finding")
        .remedy;
    assert!(why.contains("not whether it is a hardware device"), "{why}");
    assert!(!r.has_high_failure());
    assert!(!r.has_high_undecidable());
    assert_eq!(r.counts(), (8, 0, 2, 0));
}

#[test]
fn crlf_bom_and_no_information() {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(load("crlf.csv"));
    let report = parse(&bytes).expect("parses");
    assert_eq!(report.users.len(), 1);
    assert!(report.users[0].is_root());
}

#[test]
fn missing_root_row_is_undecidable_not_passing() {
    let csv = format!(
        "{}\nzed,arn:aws:iam::1:user/zed,2026-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n",
        header()
    );
    let r = review(&parse(csv.as_bytes()).expect("parses"), NOW);
    for id in [
        "CR-ROOT-ACCESS-KEYS",
        "CR-ROOT-MFA",
        "CR-ROOT-HARDWARE-MFA",
        "CR-ROOT-USE",
    ] {
        check(&r, id, Outcome::Undecidable, &[]);
    }
    assert_eq!(
        r.findings
            .iter()
            .find(|f| f.id == "CR-ROOT-MFA")
            .map(|f| f.severity),
        Some(Severity::High)
    );
    // Undecidable high-severity checks are no failure, and no clean bill either.
    assert!(!r.has_high_failure());
    assert!(r.has_high_undecidable());
}

const ROW: &str = "u,arn:aws:iam::1:user/u,2026-01-01T00:00:00+00:00,true,N/A,N/A,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A";

fn replace_field(row: &str, index: usize, value: &str) -> String {
    let mut f: Vec<&str> = row.split(',').collect();
    f[index] = value;
    f.join(",")
}

/// Reviews a file of the header and these rows as of `NOW`.
fn review_rows(rows: &[String]) -> Review {
    let csv = format!("{}\n{}\n", header(), rows.join("\n"));
    review(&parse(csv.as_bytes()).expect("parses"), NOW)
}

/// `ROW` with these fields replaced.
fn row_with(fields: &[(usize, &str)]) -> String {
    fields
        .iter()
        .fold(ROW.to_string(), |row, (i, v)| replace_field(&row, *i, v))
}

// CIS 1.12 "Ensure credentials unused for 45 days or greater are disabled": 45 days is already
// too many. NOW is 2026-11-28T00:00:00Z, so 2026-10-14T00:00:00Z is exactly 45 days before.
#[test]
fn unused_for_45_days_or_more_counts_from_the_45th_day() {
    const EARLY: &str = "2026-10-14T00:00:01+00:00"; // 44 days 23:59:59
    const EXACT: &str = "2026-10-14T00:00:00+00:00"; // 45 days
    const LATE: &str = "2026-10-13T00:00:00+00:00"; // 46 days
    let password_used = |t| row_with(&[(4, t)]);
    let password_never_used = |t| row_with(&[(5, t), (2, t)]);
    let key_used = |t| {
        row_with(&[
            (3, "false"),
            (8, "true"),
            (9, "2026-01-01T00:00:00+00:00"),
            (10, t),
            (11, "us-east-1"),
            (12, "s3"),
        ])
    };
    let key_never_used = |t| row_with(&[(3, "false"), (8, "true"), (9, t)]);
    let cases: [(String, &[&str]); 12] = [
        (password_used(EARLY), &[]),
        (
            password_used(EXACT),
            &["u (password, last used 2026-10-14, 45 days ago)"],
        ),
        (
            password_used(LATE),
            &["u (password, last used 2026-10-13, 46 days ago)"],
        ),
        (password_never_used(EARLY), &[]),
        (
            password_never_used(EXACT),
            &["u (password, never used, set 2026-10-14)"],
        ),
        (
            password_never_used(LATE),
            &["u (password, never used, set 2026-10-13)"],
        ),
        (key_used(EARLY), &[]),
        (
            key_used(EXACT),
            &["u (access key 1, last used 2026-10-14, 45 days ago)"],
        ),
        (
            key_used(LATE),
            &["u (access key 1, last used 2026-10-13, 46 days ago)"],
        ),
        (key_never_used(EARLY), &[]),
        (
            key_never_used(EXACT),
            &["u (access key 1, never used, created 2026-10-14)"],
        ),
        (
            key_never_used(LATE),
            &["u (access key 1, never used, created 2026-10-13)"],
        ),
    ];
    for (row, want) in cases {
        let outcome = if want.is_empty() {
            Outcome::Pass
        } else {
            Outcome::Fail
        };
        check(&review_rows(&[row]), "CR-UNUSED-45", outcome, want);
    }
}

fn check_err(csv: &str, want: &str) {
    match parse(csv.as_bytes()) {
        Ok(r) => panic!("parsed {} rows, expected error {want:?}", r.users.len()),
        Err(e) => assert_eq!(e.to_string(), want),
    }
}

#[test]
fn malformed_files_name_line_and_column() {
    let h = header();
    check_err(
        "",
        "the file is empty: expected a credential report CSV with a header line",
    );
    check_err(
        "\n\n",
        "the file is empty: expected a credential report CSV with a header line",
    );
    check_err(
        &h.replace("mfa_active", "mfa"),
        "line 1, column 8: expected header \"mfa_active\", found \"mfa\"",
    );
    check_err(
        "user,arn\n",
        "line 1, column 3: expected header \"user_creation_time\", found \"\"",
    );
    check_err(
        &format!("{h}\n{}\n", ROW.rsplit_once(',').expect("comma").0),
        "line 2: expected 22 fields, found 21",
    );
    check_err(
        &format!("{h}\n{}\n", replace_field(ROW, 7, "yes")),
        "line 2, column 8 (mfa_active): expected true or false, found \"yes\"",
    );
    check_err(
        &format!("{h}\n{ROW}\n{}\n", replace_field(&ROW.replacen("u,", "v,", 1), 2, "yesterday")),
        "line 3, column 3 (user_creation_time): expected an ISO 8601 time such as 2026-03-01T10:00:00+00:00, found \"yesterday\"",
    );
    check_err(
        &format!("{h}\n{}\n", replace_field(ROW, 4, "never")),
        "line 2, column 5 (password_last_used): expected an ISO 8601 time, N/A, no_information or not_supported, found \"never\"",
    );
    check_err(
        &format!("{h}\n{}\n", replace_field(ROW, 3, "maybe")),
        "line 2, column 4 (password_enabled): expected true, false or not_supported, found \"maybe\"",
    );
    check_err(
        &format!("{h}\n{}\n", replace_field(ROW, 11, "")),
        "line 2, column 12 (access_key_1_last_used_region): expected a value or N/A, found \"\"",
    );
    check_err(
        &format!("{h}\n{}\n", replace_field(ROW, 1, "user/u")),
        "line 2, column 2 (arn): expected an ARN (arn:…), found \"user/u\"",
    );
    check_err(
        &format!("{h}\n{ROW}\n{ROW}\n"),
        "line 3: user \"u\" appears a second time",
    );
    assert!(matches!(
        parse(format!("{h}\n\"{ROW}\n").as_bytes()),
        Err(ReportError::FieldCount { .. }) | Err(ReportError::Syntax { .. })
    ));
    let mut bad_utf8 = format!("{h}\n").into_bytes();
    bad_utf8.extend_from_slice(b"\xff\xfe,arn:x\n");
    assert!(
        matches!(parse(&bad_utf8), Err(ReportError::Syntax { line: 2, .. })),
        "{:?}",
        parse(&bad_utf8)
    );
}

/// A root row with these last-use fields: password, access key 1, access key 2.
fn root_row(password: &str, key1: &str, key2: &str) -> String {
    format!("<root_account>,arn:aws:iam::1:root,2020-01-01T00:00:00+00:00,not_supported,{password},not_supported,not_supported,true,false,N/A,{key1},N/A,N/A,false,N/A,{key2},N/A,N/A,false,N/A,false,N/A")
}

/// Root's last uses (password, access key 1, access key 2), the outcome and what is affected.
type RootUse = ([&'static str; 3], Outcome, &'static [&'static str]);

// CIS 1.7: a use of root less than `root_use_days` (90 by default) before now is a finding. NOW
// is 2026-11-28T00:00:00Z; 2026-08-30T00:00:00Z is exactly 90 days before.
#[test]
fn root_used_recently() {
    let cases: [RootUse; 10] = [
        (
            ["2026-08-30T00:00:01+00:00", "N/A", "N/A"],
            Outcome::Fail,
            &["<root_account> (password, last used 2026-08-30, 89 days ago)"],
        ),
        (
            ["2026-08-30T00:00:00+00:00", "N/A", "N/A"],
            Outcome::Pass,
            &[],
        ),
        (["N/A", "N/A", "N/A"], Outcome::Pass, &[]),
        // no_information: no sign-in on record since the provider began keeping them.
        (["no_information", "N/A", "N/A"], Outcome::Pass, &[]),
        (["not_supported", "N/A", "N/A"], Outcome::Undecidable, &[]),
        (
            ["not_supported", "2026-11-27T12:00:00+00:00", "N/A"],
            Outcome::Fail,
            &["<root_account> (access key 1, last used 2026-11-27, 0 days ago)"],
        ),
        (
            ["N/A", "N/A", "2026-10-01T00:00:00+00:00"],
            Outcome::Fail,
            &["<root_account> (access key 2, last used 2026-10-01, 58 days ago)"],
        ),
        (
            [
                "2026-11-01T00:00:00+00:00",
                "2026-01-01T00:00:00+00:00",
                "N/A",
            ],
            Outcome::Fail,
            &["<root_account> (password, last used 2026-11-01, 27 days ago)"],
        ),
        // A report made after the time given with --at.
        (
            ["2026-12-01T00:00:00+00:00", "N/A", "N/A"],
            Outcome::Fail,
            &["<root_account> (password, last used 2026-12-01, after the time of the review)"],
        ),
        (
            ["2025-01-01T00:00:00+00:00", "no_information", "N/A"],
            Outcome::Pass,
            &[],
        ),
    ];
    for ([password, key1, key2], outcome, want) in cases {
        check(
            &review_rows(&[root_row(password, key1, key2)]),
            "CR-ROOT-USE",
            outcome,
            want,
        );
    }

    // The window is an option: with 1 day, a use exactly one day ago passes.
    let one_day = Options { root_use_days: 1 };
    for (password, outcome) in [
        ("2026-11-27T00:00:00+00:00", Outcome::Pass),
        ("2026-11-27T00:00:01+00:00", Outcome::Fail),
    ] {
        let csv = format!("{}\n{}\n", header(), root_row(password, "N/A", "N/A"));
        let r = review_with(&parse(csv.as_bytes()).expect("parses"), NOW, &one_day);
        let f = r
            .findings
            .iter()
            .find(|f| f.id == "CR-ROOT-USE")
            .expect("finding");
        assert_eq!(f.outcome, outcome, "{password}: {f:?}");
        assert!(f.remedy.contains("in the last 1 day "), "{}", f.remedy);
    }
}

// CIS 1.11, audit from the command line: a user with a console password and an (active) access
// key whose access_key_N_last_used_date is N/A.
#[test]
fn never_used_access_keys_of_console_users() {
    let key1 = |password: &str, active: &str, used: &str| {
        let (region, service) = if used == "N/A" {
            ("N/A", "N/A")
        } else {
            ("us-east-1", "s3")
        };
        row_with(&[
            (3, password),
            (7, "true"),
            (8, active),
            (9, "2026-01-01T00:00:00+00:00"),
            (10, used),
            (11, region),
            (12, service),
        ])
    };
    let cases: [(String, &[&str]); 6] = [
        (
            key1("true", "true", "N/A"),
            &["u (access key 1, never used, created 2026-01-01)"],
        ),
        (key1("true", "false", "N/A"), &[]),
        (key1("false", "true", "N/A"), &[]),
        (key1("true", "true", "2026-11-27T00:00:00+00:00"), &[]),
        // Key 2 never used beside a used key 1, no creation time on record.
        (
            replace_field(
                &replace_field(
                    &key1("true", "true", "2026-11-27T00:00:00+00:00"),
                    13,
                    "true",
                ),
                14,
                "not_supported",
            ),
            &["u (access key 2, never used)"],
        ),
        // The root row's password_enabled is not_supported: not a console user's key.
        (
            replace_field(
                &replace_field(&root_row("N/A", "N/A", "N/A"), 8, "true"),
                9,
                "2026-01-01T00:00:00+00:00",
            ),
            &[],
        ),
    ];
    for (row, want) in cases {
        let outcome = if want.is_empty() {
            Outcome::Pass
        } else {
            Outcome::Fail
        };
        check(&review_rows(&[row]), "CR-SETUP-ACCESS-KEY", outcome, want);
    }
}

// Every check's finding carries its link, and docs/review.md lists each id with the same link.
#[test]
fn every_finding_has_the_documented_link() {
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/review.md"))
            .expect("docs/review.md");
    let reviews = [
        review(&parse(&load("mixed.csv")).expect("parses"), NOW),
        review(&parse(&load("clean.csv")).expect("parses"), NOW),
        review_rows(&[ROW.to_string()]), // no root row: undecidable findings
    ];
    for r in &reviews {
        assert_eq!(r.findings.len(), 10);
        for f in &r.findings {
            let link = f
                .link
                .as_deref()
                .unwrap_or_else(|| panic!("{} has no link", f.id));
            assert!(
                link.starts_with("https://docs.aws.amazon.com/IAM/latest/UserGuide/"),
                "{}: {link}",
                f.id
            );
            assert!(
                docs.lines()
                    .any(|l| l.contains(&format!("`{}`", f.id)) && l.contains(link)),
                "docs/review.md has no line with {} and {link}",
                f.id
            );
        }
    }
}

// An offending value is quoted up to 80 characters, then cut with its length in bytes: a field of
// 20 MiB must not come back whole in an error message.
#[test]
fn errors_quote_at_most_80_characters_of_a_value() {
    let h = header();
    let huge = "y".repeat(20 * 1024 * 1024);
    let y80 = "y".repeat(80);
    check_err(
        &format!("{h}\n{}\n", replace_field(ROW, 7, &huge)),
        &format!("line 2, column 8 (mfa_active): expected true or false, found \"{y80}\"… (20971520 bytes)"),
    );
    // Exactly 80 characters are quoted whole; 81 are cut. Characters, not bytes: é is 2 bytes.
    check_err(
        &format!("{h}\n{}\n", replace_field(ROW, 7, &y80)),
        &format!("line 2, column 8 (mfa_active): expected true or false, found \"{y80}\""),
    );
    check_err(
        &format!("{h}\n{}\n", replace_field(ROW, 7, &"é".repeat(81))),
        &format!(
            "line 2, column 8 (mfa_active): expected true or false, found \"{}\"… (162 bytes)",
            "é".repeat(80)
        ),
    );
    check_err(
        &h.replace("mfa_active", &huge),
        &format!(
            "line 1, column 8: expected header \"mfa_active\", found \"{y80}\"… (20971520 bytes)"
        ),
    );
    let twice = ROW.replacen('u', &huge, 1);
    check_err(
        &format!("{h}\n{twice}\n{twice}\n"),
        &format!("line 3: user \"{y80}\"… (20971520 bytes) appears a second time"),
    );
    match parse(format!("{h}\n{}\n", replace_field(ROW, 7, &huge)).as_bytes()) {
        Err(ReportError::Value { found, .. }) => {
            assert_eq!(found.as_str(), y80);
            assert_eq!(found.full_len(), huge.len());
            assert!(found.is_cut());
        }
        other => panic!("expected a value error, got {other:?}"),
    }
}

#[test]
fn json_shape_is_stable() {
    let r = review(&parse(&load("clean.csv")).expect("parses"), NOW);
    let v = serde_json::to_value(&r).expect("json");
    let first = &v["findings"][0];
    assert_eq!(first["id"], "CR-ROOT-ACCESS-KEYS");
    assert_eq!(first["severity"], "high");
    assert_eq!(first["outcome"], "pass");
    assert!(first["affected"].as_array().is_some_and(|a| a.is_empty()));
    assert_eq!(
        first["link"],
        "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_root-user_manage_delete-key.html"
    );
}

mod properties {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            let _ = super::parse(&bytes);
        }

        #[test]
        fn parser_never_panics_on_mutated_rows(field in 0usize..22, value in "\\PC{0,30}") {
            let row = super::replace_field(super::ROW, field, &value.replace(',', ""));
            let _ = super::parse(format!("{}\n{row}\n", super::header()).as_bytes());
        }
    }
}

//! `mamori review credential-report` through the real binary: the exit statuses of docs/cli.md,
//! every finding's link in the text and the JSON output, the root-use window, and errors that
//! quote at most 80 characters of a value. The checks themselves are tested in mamori-review.

use crate::support::{Out, Sandbox};
use mamori_review::credential_report::COLUMNS;

/// 2026-11-28T00:00:00Z, the "now" of mamori-review's fixtures.
const AT: &str = "1795824000";

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../mamori-review/tests/data");

/// Root with MFA, no access keys, last signed in long before `AT`.
const ROOT: &str = "<root_account>,arn:aws:iam::1:root,2020-01-01T00:00:00+00:00,not_supported,2026-01-01T00:00:00+00:00,not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A";

/// A user with MFA who signed in the day before `AT`.
const OPS: &str = "ops,arn:aws:iam::1:user/ops,2025-01-01T00:00:00+00:00,true,2026-11-27T00:00:00+00:00,2026-10-01T00:00:00+00:00,N/A,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{DATA}/{name}")).expect("fixture")
}

/// A report of the header and these rows.
fn report(rows: &[&str]) -> String {
    format!("{}\n{}\n", COLUMNS.join(","), rows.join("\n"))
}

/// `row` with field `index` replaced.
fn replace_field(row: &str, index: usize, value: &str) -> String {
    let mut f: Vec<&str> = row.split(',').collect();
    f[index] = value;
    f.join(",")
}

/// Reviews `csv` as of `AT` with the extra arguments; the file's path reads FILE in stderr.
fn review(csv: &str, extra: &[&str]) -> Out {
    let s = Sandbox::new();
    let file = s.path("report.csv");
    std::fs::write(&file, csv).expect("write");
    let path = file.to_str().expect("utf-8");
    let mut args = vec!["review", "credential-report", "--at", AT];
    args.extend_from_slice(extra);
    args.push(path);
    let mut o = s.run_bare(&args);
    o.stderr = o.stderr.replace(path, "FILE");
    o
}

/// Reviews `csv` and checks the exit status and, when given, the whole of stderr.
fn check(csv: &str, extra: &[&str], code: i32, stderr: Option<&str>) {
    let o = review(csv, extra);
    assert_eq!(
        o.code, code,
        "{extra:?}\nstdout: {}\nstderr: {}",
        o.stdout, o.stderr
    );
    if let Some(want) = stderr {
        assert_eq!(o.stderr, want, "{extra:?}");
    }
}

const HIGH_FAILED: &str = "mamori: a high-severity check failed\n";

#[test]
fn exit_statuses() {
    let old_password = replace_field(OPS, 4, "2026-01-01T00:00:00+00:00");
    let no_mfa = replace_field(OPS, 7, "false");
    let undecided = "mamori: this report cannot decide the high-severity checks CR-ROOT-ACCESS-KEYS, CR-ROOT-MFA; see each check's reason\n";
    // 0: nothing failed or undecided at high severity.
    check(&fixture("clean.csv"), &[], 0, Some(""));
    check(&report(&[ROOT, OPS]), &["--json"], 0, Some(""));
    // A medium failure (a password unused since January) does not change the status.
    check(&report(&[ROOT, &old_password]), &[], 0, Some(""));
    // 1: a high-severity check failed.
    check(&fixture("mixed.csv"), &[], 1, Some(HIGH_FAILED));
    check(&report(&[ROOT, &no_mfa]), &["--json"], 1, Some(HIGH_FAILED));
    // 4: no root row, so the high-severity root checks are undecidable, in both outputs.
    check(&report(&[OPS]), &[], 4, Some(undecided));
    check(&report(&[OPS]), &["--json"], 4, Some(undecided));
    // A failure outranks an undecidable check.
    check(&report(&[&no_mfa]), &[], 1, Some(HIGH_FAILED));
    // 1: errors.
    check(
        "user,arn,when\n",
        &[],
        1,
        Some("mamori: FILE is not a valid credential report: line 1, column 3: expected header \"user_creation_time\", found \"when\"\n"),
    );
    check(
        &report(&[]),
        &[],
        1,
        Some("mamori: FILE has a header but no users\n"),
    );
    // 2: usage errors, from the argument parser.
    check(&report(&[ROOT, OPS]), &["--root-use-days", "0"], 2, None);
    check(&report(&[ROOT, OPS]), &["--root-use-days", "3651"], 2, None);
}

#[test]
fn every_finding_shows_its_link_in_text_and_json() {
    for csv in [
        fixture("mixed.csv"),
        fixture("clean.csv"),
        report(&[OPS]), // no root row: undecidable findings carry their link too
    ] {
        let o = review(&csv, &["--json"]);
        let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("json");
        let findings = v["findings"].as_array().expect("findings");
        assert_eq!(findings.len(), 10);
        let text = review(&csv, &[]).stdout;
        let lines: Vec<&str> = text.lines().collect();
        for f in findings {
            let id = f["id"].as_str().expect("id");
            let link = f["link"]
                .as_str()
                .unwrap_or_else(|| panic!("{id} has no link"));
            assert!(
                link.starts_with("https://docs.aws.amazon.com/"),
                "{id}: {link}"
            );
            // The finding's lines in the text: its heading, then the indented ones.
            let start = lines
                .iter()
                .position(|l| l.ends_with(&format!("({id})")))
                .unwrap_or_else(|| panic!("no heading for {id}:\n{text}"));
            let block: Vec<&str> = lines[start + 1..]
                .iter()
                .take_while(|l| l.starts_with("        "))
                .copied()
                .collect();
            assert_eq!(
                block.last().copied(),
                Some(format!("        see: {link}").as_str()),
                "{id}:\n{text}"
            );
        }
    }
}

#[test]
fn root_use_days_sets_the_window_of_the_root_use_check() {
    // mixed.csv: root's password was used 7 days 16 hours before AT, its key 1 27 days before.
    let root_use = |extra: &[&str]| {
        let mut args = vec!["--json"];
        args.extend_from_slice(extra);
        let o = review(&fixture("mixed.csv"), &args);
        let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("json");
        let f = v["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .find(|f| f["id"] == "CR-ROOT-USE")
            .expect("CR-ROOT-USE")
            .clone();
        (f["outcome"].clone(), f["affected"].clone())
    };
    assert_eq!(
        root_use(&[]),
        (
            "fail".into(),
            serde_json::json!([
                "<root_account> (password, last used 2026-11-20, 7 days ago)",
                "<root_account> (access key 1, last used 2026-11-01, 27 days ago)"
            ])
        )
    );
    assert_eq!(
        root_use(&["--root-use-days", "8"]),
        (
            "fail".into(),
            serde_json::json!(["<root_account> (password, last used 2026-11-20, 7 days ago)"])
        )
    );
    assert_eq!(
        root_use(&["--root-use-days", "7"]),
        ("pass".into(), serde_json::json!([]))
    );
}

#[test]
fn a_huge_field_is_not_echoed_whole() {
    let huge = "y".repeat(20 * 1024 * 1024);
    let o = review(&report(&[ROOT, &replace_field(OPS, 7, &huge)]), &[]).fails();
    assert_eq!(
        o.stderr,
        format!(
            "mamori: FILE is not a valid credential report: line 3, column 8 (mfa_active): expected true or false, found \"{}\"… (20971520 bytes)\n",
            "y".repeat(80)
        )
    );
}

//! The exact behaviour of `mamori otp`: stdout carries the code and nothing else; errors are one
//! line on stderr with a non-zero exit.

use std::io::Write;
use std::process::{Command, Stdio};

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn otp(args: &[&str], stdin: Option<&str>) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mamori"));
    cmd.arg("otp").args(args);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("wait");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).expect("utf-8"),
        stderr: String::from_utf8(out.stderr).expect("utf-8"),
    }
}

const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

fn check_ok(args: &[&str], stdin: Option<&str>, code: &str) {
    let o = otp(args, stdin);
    assert_eq!(
        (o.code, o.stdout.as_str(), o.stderr.as_str()),
        (0, format!("{code}\n").as_str(), ""),
        "{args:?}"
    );
}

fn check_err(args: &[&str], stdin: Option<&str>, want: &str) {
    let o = otp(args, stdin);
    assert_ne!(o.code, 0, "{args:?} succeeded");
    assert_eq!(o.stdout, "", "{args:?}");
    assert!(
        o.stderr.contains(want),
        "{args:?}: stderr {:?} lacks {want:?}",
        o.stderr
    );
    assert!(
        !o.stderr.contains("JBSWY3DPEHPK3PXP"),
        "secret leaked: {}",
        o.stderr
    );
}

#[test]
fn codes() {
    // RFC 6238 Appendix B (SHA-1, T = 59).
    check_ok(
        &["--secret", RFC_SECRET, "--digits", "8", "--at", "59"],
        None,
        "94287082",
    );
    // RFC 4226 Appendix D, counter 9.
    check_ok(
        &["--secret", RFC_SECRET, "--type", "hotp", "--counter", "9"],
        None,
        "520489",
    );
    check_ok(
        &[
            "--at",
            "59",
            "otpauth://totp/x?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&digits=8",
        ],
        None,
        "94287082",
    );
    check_ok(
        &[
            "--counter",
            "9",
            "otpauth://hotp/x?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&counter=3",
        ],
        None,
        "520489",
    );
    // Steam from Base64 (KeePassXC vector, shared_secret as Steam stores it).
    check_ok(
        &[
            "--secret",
            "9sJB2FDKpws8kgRQSK+jnOBRJmo=",
            "--encoding",
            "base64",
            "--type",
            "steam",
            "--at",
            "1511200518",
        ],
        None,
        "FR8RV",
    );
    // Secrets and URIs from standard input stay out of the process list.
    check_ok(
        &["--secret", "-", "--digits", "8", "--at", "59"],
        Some("gezd gnbv gy3t qojq gezd gnbv gy3t qojq\n"),
        "94287082",
    );
    check_ok(
        &["--at", "59", "-"],
        Some("otpauth://totp/x?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&digits=8\n"),
        "94287082",
    );
}

#[test]
fn errors_are_one_line() {
    check_err(&["--secret", "JBSWY3DPEHPK3PX1"], None, "invalid --secret");
    check_err(
        &["--secret", "JBSWY3DPEHPK3PXP", "--digits", "5"],
        None,
        "digits must be between 6 and 10",
    );
    check_err(
        &["--secret", "JBSWY3DPEHPK3PXP", "--algorithm", "MD5"],
        None,
        "unsupported algorithm",
    );
    check_err(
        &["--secret", "JBSWY3DPEHPK3PXP", "--period", "0"],
        None,
        "period must be at least 1",
    );
    check_err(
        &["--secret", "JBSWY3DPEHPK3PXP", "--counter", "3"],
        None,
        "--counter applies to HOTP",
    );
    check_err(
        &[
            "--secret",
            "JBSWY3DPEHPK3PXP",
            "--type",
            "hotp",
            "--at",
            "5",
        ],
        None,
        "--at applies to time-based",
    );
    check_err(
        &["--secret", "JBSWY3DPEHPK3PXP", "--at", "-5"],
        None,
        "before 1970",
    );
    check_err(
        &["otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&digits=4"],
        None,
        "parameter digits",
    );
    check_err(&["https://example.com"], None, "invalid URI");
    check_err(&["--secret", "-"], Some(""), "standard input is empty");
    check_err(
        &[
            "--secret",
            "JBSWY3DPEHPK3PXP",
            "--type",
            "steam",
            "--digits",
            "6",
        ],
        None,
        "Steam codes always use",
    );
    for args in [
        &["--secret", "JBSWY3DPEHPK3PX1"][..],
        &["--secret", "JBSWY3DPEHPK3PXP", "--digits", "5"][..],
    ] {
        let o = otp(args, None);
        assert_eq!(o.stderr.lines().count(), 1, "{:?}", o.stderr);
        assert!(o.stderr.starts_with("mamori: "), "{:?}", o.stderr);
    }
    // Usage errors come from clap with exit code 2.
    assert_eq!(otp(&[], None).code, 2);
    assert_eq!(
        otp(&["--secret", "A", "otpauth://totp/x?secret=A"], None).code,
        2
    );
}

//! Real-world `otpauth://` shapes: what apps and services actually emit, and the errors for what
//! cannot be used. One `check` helper; each case is a line of data.

use mamori_otp::{Algorithm, KeyUri, OtpKind, UriError};

const S: &str = "JBSWY3DPEHPK3PXP"; // "Hello!\xde\xad\xbe\xef" — the Key-Uri-Format wiki's example secret

/// issuer, account, secret (strict Base32), kind, algorithm, digits, period, counter
type Want<'a> = (
    Option<&'a str>,
    &'a str,
    &'a str,
    OtpKind,
    Algorithm,
    u32,
    u64,
    u64,
);

fn check(uri: &str, want: Want<'_>) {
    let got = KeyUri::parse(uri).unwrap_or_else(|e| panic!("{uri}: {e}"));
    let (issuer, account, secret, kind, algorithm, digits, period, counter) = want;
    assert_eq!(got.issuer.as_deref(), issuer, "issuer of {uri}");
    assert_eq!(got.account, account, "account of {uri}");
    assert_eq!(got.secret.to_base32().as_str(), secret, "secret of {uri}");
    assert_eq!(got.params.kind, kind, "kind of {uri}");
    assert_eq!(got.params.algorithm, algorithm, "algorithm of {uri}");
    assert_eq!(got.params.digits, digits, "digits of {uri}");
    if kind != OtpKind::Hotp {
        assert_eq!(got.params.period, period, "period of {uri}");
    }
    assert_eq!(got.params.counter, counter, "counter of {uri}");
    // Strict output parses back to the same account.
    let again = KeyUri::parse(&got.to_uri()).unwrap_or_else(|e| panic!("re-parse of {uri}: {e}"));
    assert_eq!(again, got, "round trip of {uri}");
}

fn check_err(uri: &str, want: &str) {
    match KeyUri::parse(uri) {
        Ok(k) => panic!("{uri} parsed as {k:?}, expected an error containing {want:?}"),
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains(want),
                "{uri}: error {msg:?} does not contain {want:?}"
            );
            assert!(!msg.contains(S), "{uri}: error {msg:?} leaks the secret");
        }
    }
}

use Algorithm::*;
use OtpKind::*;

#[test]
fn real_world_shapes() {
    let cases: Vec<(&str, Want<'_>)> = vec![
        // 1. The wiki's canonical example.
        (
            "otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example",
            (Some("Example"), "alice@google.com", S, Totp, Sha1, 6, 30, 0),
        ),
        // 2. Issuer only in the label.
        ("otpauth://totp/ACME:john@example.com?secret=JBSWY3DPEHPK3PXP", (Some("ACME"), "john@example.com", S, Totp, Sha1, 6, 30, 0)),
        // 3. Issuer only as a parameter.
        ("otpauth://totp/john@example.com?secret=JBSWY3DPEHPK3PXP&issuer=ACME", (Some("ACME"), "john@example.com", S, Totp, Sha1, 6, 30, 0)),
        // 4. No issuer at all.
        ("otpauth://totp/john@example.com?secret=JBSWY3DPEHPK3PXP", (None, "john@example.com", S, Totp, Sha1, 6, 30, 0)),
        // 5. Percent-encoded spaces and colon in the label (the wiki's "ACME%20Co").
        ("otpauth://totp/ACME%20Co%3Ajohn.doe%40email.com?secret=JBSWY3DPEHPK3PXP&issuer=ACME%20Co&algorithm=SHA1&digits=6&period=30", (Some("ACME Co"), "john.doe@email.com", S, Totp, Sha1, 6, 30, 0)),
        // 6. Space after the colon ("Issuer: account").
        ("otpauth://totp/ACME%20Co:%20john@example.com?secret=JBSWY3DPEHPK3PXP", (Some("ACME Co"), "john@example.com", S, Totp, Sha1, 6, 30, 0)),
        // 7. Lower-case secret.
        ("otpauth://totp/x?secret=jbswy3dpehpk3pxp", (None, "x", S, Totp, Sha1, 6, 30, 0)),
        // 8. Secret with spaces (percent-encoded) as some sites display it.
        ("otpauth://totp/x?secret=JBSW%20Y3DP%20EHPK%203PXP", (None, "x", S, Totp, Sha1, 6, 30, 0)),
        // 9. Secret with padding.
        ("otpauth://totp/x?secret=MZXW6YTBOI======", (None, "x", "MZXW6YTBOI", Totp, Sha1, 6, 30, 0)),
        // 10. Parameter names in upper/mixed case, values in lower case.
        ("otpauth://totp/x?SECRET=JBSWY3DPEHPK3PXP&Algorithm=sha256&Digits=8&PERIOD=60", (None, "x", S, Totp, Sha256, 8, 60, 0)),
        // 11. SHA512 with 8 digits.
        ("otpauth://totp/Bank:me?secret=JBSWY3DPEHPK3PXP&algorithm=SHA512&digits=8", (Some("Bank"), "me", S, Totp, Sha512, 8, 30, 0)),
        // 12. Upper-case scheme and type.
        ("OTPAUTH://TOTP/Up:case?secret=JBSWY3DPEHPK3PXP", (Some("Up"), "case", S, Totp, Sha1, 6, 30, 0)),
        // 13. HOTP with a counter.
        ("otpauth://hotp/Corp:bob?secret=JBSWY3DPEHPK3PXP&counter=42", (Some("Corp"), "bob", S, Hotp, Sha1, 6, 30, 42)),
        // 14. HOTP without a counter starts at 0.
        ("otpauth://hotp/Corp:bob?secret=JBSWY3DPEHPK3PXP", (Some("Corp"), "bob", S, Hotp, Sha1, 6, 30, 0)),
        // 15. HOTP counter at 2^64-1.
        ("otpauth://hotp/c?secret=JBSWY3DPEHPK3PXP&counter=18446744073709551615", (None, "c", S, Hotp, Sha1, 6, 30, u64::MAX)),
        // 16. Steam as a type.
        ("otpauth://steam/Steam:gamer?secret=JBSWY3DPEHPK3PXP&issuer=Steam", (Some("Steam"), "gamer", S, Steam, Sha1, 5, 30, 0)),
        // 17. Steam through encoder=steam (digits and algorithm forced).
        ("otpauth://totp/Steam:gamer?secret=JBSWY3DPEHPK3PXP&issuer=Steam&encoder=steam&digits=5", (Some("Steam"), "gamer", S, Steam, Sha1, 5, 30, 0)),
        // 18. Unknown parameters (image, color, codeDisplay) are ignored.
        ("otpauth://totp/GitHub:octo?secret=JBSWY3DPEHPK3PXP&issuer=GitHub&image=https%3A%2F%2Fx%2Fy.png&color=ff0000&codeDisplay=%7B%7D", (Some("GitHub"), "octo", S, Totp, Sha1, 6, 30, 0)),
        // 19. Issuer parameter differs from the label prefix: the parameter wins.
        ("otpauth://totp/Amazon%20Web%20Services:root@acme?secret=JBSWY3DPEHPK3PXP&issuer=AWS", (Some("AWS"), "root@acme", S, Totp, Sha1, 6, 30, 0)),
        // 20. '+' for a space in the issuer parameter (form encoding).
        ("otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&issuer=ACME+Co", (Some("ACME Co"), "x", S, Totp, Sha1, 6, 30, 0)),
        // 21. Unicode issuer and account (Japanese service), UTF-8 percent-encoded.
        ("otpauth://totp/%E5%AE%88%E3%82%8A:%E5%A4%AA%E9%83%8E?secret=JBSWY3DPEHPK3PXP&issuer=%E5%AE%88%E3%82%8A", (Some("守り"), "太郎", S, Totp, Sha1, 6, 30, 0)),
        // 22. Account containing a colon after the issuer.
        ("otpauth://totp/Host:user:42?secret=JBSWY3DPEHPK3PXP&issuer=Host", (Some("Host"), "user:42", S, Totp, Sha1, 6, 30, 0)),
        // 23. Issuer containing a colon given as the parameter.
        ("otpauth://totp/a%3Ab:me?secret=JBSWY3DPEHPK3PXP&issuer=a%3Ab", (Some("a:b"), "me", S, Totp, Sha1, 6, 30, 0)),
        // 24. Empty account, issuer only (some services do this).
        ("otpauth://totp/Service:?secret=JBSWY3DPEHPK3PXP&issuer=Service", (Some("Service"), "", S, Totp, Sha1, 6, 30, 0)),
        // 25. Duplicate parameters: the first wins.
        ("otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&digits=8&digits=6", (None, "x", S, Totp, Sha1, 8, 30, 0)),
        // 26. A fragment is ignored.
        ("otpauth://totp/x?secret=JBSWY3DPEHPK3PXP#ignored", (None, "x", S, Totp, Sha1, 6, 30, 0)),
        // 27. Leading and trailing whitespace (copied from a web page).
        ("  otpauth://totp/x?secret=JBSWY3DPEHPK3PXP \n", (None, "x", S, Totp, Sha1, 6, 30, 0)),
        // 28. A 10-digit, 15-second token.
        ("otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&digits=10&period=15", (None, "x", S, Totp, Sha1, 10, 15, 0)),
        // 29. Algorithm written "SHA-256".
        ("otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&algorithm=SHA-256", (None, "x", S, Totp, Sha256, 6, 30, 0)),
        // 30. Empty issuer parameter means no issuer; the label prefix is used instead.
        ("otpauth://totp/Lbl:acct?secret=JBSWY3DPEHPK3PXP&issuer=", (Some("Lbl"), "acct", S, Totp, Sha1, 6, 30, 0)),
    ];
    assert!(cases.len() >= 25);
    for (uri, want) in cases {
        check(uri, want);
    }
}

#[test]
fn errors_name_the_part_at_fault() {
    let cases = [
        ("https://example.com/?secret=JBSWY3DPEHPK3PXP", "scheme"),
        ("otpauth-migration://offline?data=AA", "scheme"),
        (
            "otpauth://motp/x?secret=JBSWY3DPEHPK3PXP",
            "unsupported OTP type \"motp\"",
        ),
        ("otpauth://totp/x", "no secret"),
        ("otpauth://totp/x?issuer=A", "no secret"),
        ("otpauth://totp/x?secret=", "parameter secret: is empty"),
        (
            "otpauth://totp/x?secret=JBSW1Y3DP",
            "parameter secret: the secret is not valid Base32: unexpected character '1'",
        ),
        (
            "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&algorithm=MD5",
            "parameter algorithm",
        ),
        (
            "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&digits=4",
            "parameter digits: 4 is not between 6 and 10",
        ),
        (
            "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&digits=eight",
            "parameter digits",
        ),
        (
            "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&period=0",
            "parameter period",
        ),
        (
            "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&period=-30",
            "parameter period",
        ),
        (
            "otpauth://hotp/x?secret=JBSWY3DPEHPK3PXP&counter=-1",
            "parameter counter",
        ),
        (
            "otpauth://hotp/x?secret=JBSWY3DPEHPK3PXP&counter=18446744073709551616",
            "parameter counter",
        ),
        ("otpauth://totp/?secret=JBSWY3DPEHPK3PXP", "no label"),
        ("otpauth://totp/%FF%FE?secret=JBSWY3DPEHPK3PXP", "UTF-8"),
        ("not a uri", "not a valid URI"),
        ("", "not a valid URI"),
    ];
    for (uri, want) in cases {
        check_err(uri, want);
    }
    // The error type itself is precise.
    assert_eq!(
        KeyUri::parse("otpauth://totp/x"),
        Err(UriError::MissingSecret)
    );
}

#[test]
fn strict_output() {
    let k = KeyUri::parse("otpauth://totp/ACME%20Co:john@example.com?secret=jbsw%20y3dp%20ehpk%203pxp&issuer=ACME%20Co")
        .expect("parses");
    assert_eq!(
        k.to_uri().as_str(),
        "otpauth://totp/ACME%20Co:john@example.com?secret=JBSWY3DPEHPK3PXP&issuer=ACME%20Co&algorithm=SHA1&digits=6&period=30"
    );
    let h = KeyUri::parse("otpauth://hotp/x?secret=JBSWY3DPEHPK3PXP&counter=7").expect("parses");
    assert_eq!(
        h.to_uri().as_str(),
        "otpauth://hotp/x?secret=JBSWY3DPEHPK3PXP&algorithm=SHA1&digits=6&counter=7"
    );
    let s = KeyUri::parse("otpauth://steam/Steam:g?secret=JBSWY3DPEHPK3PXP").expect("parses");
    assert_eq!(
        s.to_uri().as_str(),
        "otpauth://totp/Steam:g?secret=JBSWY3DPEHPK3PXP&issuer=Steam&algorithm=SHA1&digits=5&period=30&encoder=steam"
    );
}

#[test]
fn debug_never_shows_the_secret() {
    let k = KeyUri::parse("otpauth://totp/x?secret=JBSWY3DPEHPK3PXP").expect("parses");
    let dbg = format!("{k:?}");
    assert!(!dbg.contains(S) && !dbg.contains("Hello"), "{dbg}");
}

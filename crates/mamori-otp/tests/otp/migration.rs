//! Google Authenticator migration payloads, built here from the protobuf description.

use mamori_otp::migration::{
    self, decode_payload, decode_uri, encode, missing_batches, raw_payload,
};
use mamori_otp::{Algorithm, KeyUri, OtpKind, OtpParams, Secret, UriError};

fn account(issuer: Option<&str>, name: &str, secret: &[u8], params: OtpParams) -> KeyUri {
    KeyUri {
        issuer: issuer.map(str::to_string),
        account: name.to_string(),
        secret: Secret::from_bytes(secret.to_vec()).expect("secret"),
        params,
    }
}

fn uri_of(bytes: &[u8]) -> String {
    let b64 = data_encoding_b64(bytes);
    format!(
        "otpauth-migration://offline?data={}",
        b64.replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D")
    )
}

// A tiny standard Base64 encoder so the test does not reuse the code under test.
fn data_encoding_b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn several_entries_with_a_negative_batch_id() {
    let bytes = raw_payload(
        &[
            (
                b"12345678901234567890",
                "alice@example.com",
                "Example",
                1,
                1,
                2,
                0,
            ),
            (b"abcdefghij", "Corp:bob", "Corp", 2, 2, 1, 7),
            // Unspecified enums mean the defaults: SHA1, 6 digits, TOTP.
            (b"0123456789", "carol", "", 0, 0, 0, 0),
        ],
        1,
        0,
        -1_234_567_890,
    );
    // A negative int32 is a 10-byte varint on the wire: make sure the fixture really has one.
    assert!(bytes
        .windows(10)
        .any(|w| w[..9].iter().all(|b| b & 0x80 != 0) && w[9] == 0x01));
    let batch = decode_uri(&uri_of(&bytes)).expect("decodes");
    assert_eq!(batch.batch_id, -1_234_567_890);
    assert_eq!(batch.batch_size, 1);
    assert!(batch.skipped.is_empty());
    assert_eq!(batch.accounts.len(), 3);

    let a = &batch.accounts[0];
    assert_eq!(
        (a.issuer.as_deref(), a.account.as_str()),
        (Some("Example"), "alice@example.com")
    );
    assert_eq!(a.params, OtpParams::totp());
    assert_eq!(a.secret.as_bytes(), b"12345678901234567890");

    let b = &batch.accounts[1];
    assert_eq!(
        (b.issuer.as_deref(), b.account.as_str()),
        (Some("Corp"), "bob")
    );
    assert_eq!(b.params.kind, OtpKind::Hotp);
    assert_eq!(b.params.algorithm, Algorithm::Sha256);
    assert_eq!((b.params.digits, b.params.counter), (8, 7));

    let c = &batch.accounts[2];
    assert_eq!((c.issuer.as_deref(), c.account.as_str()), (None, "carol"));
    assert_eq!(c.params, OtpParams::totp());
}

#[test]
fn md5_and_unknown_entries_are_reported_alone() {
    let bytes = raw_payload(
        &[
            (b"aaaaaaaaaa", "ok1", "A", 1, 1, 2, 0),
            (b"bbbbbbbbbb", "weak", "B", 4, 1, 2, 0),
            (b"cccccccccc", "odd", "C", 1, 1, 9, 0),
            (b"", "empty", "D", 1, 1, 2, 0),
            (b"dddddddddd", "ok2", "E", 3, 2, 2, 0),
        ],
        1,
        0,
        5,
    );
    let batch = decode_payload(&bytes).expect("decodes");
    let names: Vec<&str> = batch.accounts.iter().map(|a| a.account.as_str()).collect();
    assert_eq!(names, ["ok1", "ok2"]);
    let reasons: Vec<String> = batch.skipped.iter().map(|s| s.to_string()).collect();
    assert_eq!(reasons.len(), 3);
    assert!(
        reasons[0].contains("B (weak)") && reasons[0].contains("MD5"),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("unknown OTP type 9"), "{reasons:?}");
    assert!(reasons[2].contains("empty"), "{reasons:?}");
}

#[test]
fn two_batches_and_missing_batch_detection() {
    let accounts: Vec<KeyUri> = (0..25)
        .map(|i| {
            account(
                Some(&format!("Service number {i}")),
                &format!("user{i}@a-rather-long-domain.example.com"),
                &[i as u8 + 1; 20],
                OtpParams::totp(),
            )
        })
        .collect();
    let encoded = encode(&accounts, -77);
    assert!(encoded.skipped.is_empty());
    assert!(
        encoded.uris.len() >= 2,
        "25 long accounts need several batches"
    );
    let batches: Vec<_> = encoded
        .uris
        .iter()
        .map(|u| {
            assert!(
                u.len() <= migration::MAX_BATCH_URI_LEN,
                "batch too large to scan: {}",
                u.len()
            );
            decode_uri(u).expect("decodes")
        })
        .collect();
    let total = batches.len() as i32;
    for (i, b) in batches.iter().enumerate() {
        assert_eq!(
            (b.batch_index, b.batch_size, b.batch_id),
            (i as i32, total, -77)
        );
    }
    let back: Vec<KeyUri> = batches.iter().flat_map(|b| b.accounts.clone()).collect();
    assert_eq!(back, accounts);
    assert!(missing_batches(&batches).is_empty());
    // Drop the second batch: the gap is named.
    let partial: Vec<_> = batches
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, b)| b.clone())
        .collect();
    assert_eq!(missing_batches(&partial), vec![(-77, total, vec![1])]);
}

#[test]
fn encode_skips_what_the_format_cannot_carry() {
    let mut seven = OtpParams::totp();
    seven.digits = 7;
    let mut sixty = OtpParams::totp();
    sixty.period = 60;
    let accounts = vec![
        account(Some("ok"), "a", b"1111111111", OtpParams::totp()),
        account(Some("steam"), "b", b"2222222222", OtpParams::steam()),
        account(Some("seven"), "c", b"3333333333", seven),
        account(Some("sixty"), "d", b"4444444444", sixty),
        account(Some("hotp"), "e", b"5555555555", OtpParams::hotp(u64::MAX)),
    ];
    let encoded = encode(&accounts, 1);
    let skipped: Vec<usize> = encoded.skipped.iter().map(|(i, _)| *i).collect();
    assert_eq!(skipped, [1, 2, 3, 4]);
    let batch = decode_uri(&encoded.uris[0]).expect("decodes");
    assert_eq!(batch.accounts, accounts[..1]);
}

#[test]
fn damaged_payloads_are_errors() {
    assert_eq!(
        decode_uri("otpauth-migration://offline"),
        Err(UriError::MissingData)
    );
    assert!(matches!(
        decode_uri("otpauth-migration://offline?data=%%%"),
        Err(UriError::MigrationPayload(_))
    ));
    // Truncated protobuf: a length-delimited field that runs past the end.
    assert!(matches!(
        decode_payload(&[0x0a, 0x20, 0x01]),
        Err(UriError::MigrationPayload(_))
    ));
    assert!(matches!(
        decode_uri("otpauth://totp/x?secret=A"),
        Err(UriError::Scheme { .. })
    ));
}

#[test]
fn plus_in_unencoded_base64_survives() {
    // Some apps forget to percent-encode the data; '+' then must stay '+', not become a space.
    let bytes = raw_payload(
        &[(&[0xfb, 0xef, 0xbe, 0xfb, 0xef], "p", "P", 1, 1, 2, 0)],
        1,
        0,
        0,
    );
    let b64 = data_encoding_b64(&bytes);
    let uri = format!("otpauth-migration://offline?data={b64}");
    let batch = decode_uri(&uri).expect("decodes");
    assert_eq!(
        batch.accounts[0].secret.as_bytes(),
        &[0xfb, 0xef, 0xbe, 0xfb, 0xef]
    );
}

/// Found by mamori-fuzz (issue #21): a payload declaring a batch size near `i32::MAX` made
/// `missing_batches` (and the importer's one note per missing batch) run for seconds and could
/// allocate gigabytes. It is refused when decoded, and clamped if built by hand.
#[test]
fn a_huge_batch_size_is_refused_not_enumerated() {
    let secret: &[u8] = b"12345678901234567890";
    let bytes = raw_payload(&[(secret, "alice", "Example", 1, 1, 2, 0)], i32::MAX, 0, 7);
    assert!(matches!(
        decode_payload(&bytes),
        Err(UriError::MigrationPayload(_))
    ));
    let ok = raw_payload(&[(secret, "alice", "Example", 1, 1, 2, 0)], 3, 0, 7);
    let mut batch = decode_payload(&ok).expect("a normal batch decodes");
    batch.batch_size = i32::MAX;
    let missing = missing_batches(&[batch]);
    assert_eq!(missing.len(), 1);
    assert_eq!(
        missing[0].2.len(),
        usize::try_from(migration::MAX_BATCH_SIZE - 1).expect("small")
    );
}

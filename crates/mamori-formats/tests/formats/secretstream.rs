//! libsodium `crypto_secretstream_xchacha20poly1305` against published known answers.
//!
//! Vectors: orion's `src/hazardous/aead/xchacha20poly1305_stream.rs` test module
//! (<https://github.com/orion-rs/orion>), whose values its authors generated with libsodium
//! ("Test values were generated using libsodium"). Key = "123456789abcdefghijklmonpqrstuv\0",
//! header = "abababababababababaabab\0".
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use data_encoding::HEXLOWER;
use mamori_formats::secretstream::{State, Tag, A_BYTES};

fn hex(s: &str) -> Vec<u8> {
    HEXLOWER.decode(s.as_bytes()).unwrap()
}

const KEY: &str = "3132333435363738396162636465666768696a6b6c6d6f6e7071727374757600";
const HEADER: &str = "616261626162616261626162616261626162616162616200";
/// "Default message to test streaming AEAD encryption.\0"
const MSG: &str = "44656661756c74206d65737361676520746f20746573742073747265616d696e67204145414420656e6372797074696f6e2e00";

fn state() -> State {
    let key: [u8; 32] = hex(KEY).try_into().unwrap();
    let header: [u8; 24] = hex(HEADER).try_into().unwrap();
    State::new(&key, &header)
}

/// (plaintext, sealed) for three consecutive MESSAGE pushes on one stream.
const SEQUENCE: [(&str, &str); 3] = [
    (
        "746573743100",
        "fca400c41bc60839d87686689c2d47a1c71c4f9113ef04",
    ),
    (
        "74686973206973206c6f6e676572207465787400",
        "f3347cad852c63f4fa59658e3b31dd34b0d60df756117de878df30867408cfb4f14c1a21cf",
    ),
    ("3100", "edc6f0ac412710a0e611bd365dadf367b935db"),
];
/// After an explicit rekey, the next MESSAGE push of "first text after rekey\0".
const AFTER_REKEY: (&str, &str) = (
    "666972737420746578742061667465722072656b657900",
    "d209250bb6be58af000c7d9a3f68a6ffe70ce939ce635217bcd88cb6caf5fff46859d8a844820c50",
);

#[test]
fn push_matches_libsodium_sequence_and_rekey() {
    let mut s = state();
    for (plain, sealed) in SEQUENCE {
        assert_eq!(
            HEXLOWER.encode(&s.push(&hex(plain), &[], Tag::Message)),
            sealed
        );
    }
    s.rekey();
    assert_eq!(
        HEXLOWER.encode(&s.push(&hex(AFTER_REKEY.0), &[], Tag::Message)),
        AFTER_REKEY.1
    );
}

#[test]
fn pull_matches_libsodium_sequence_and_rekey() {
    let mut s = state();
    for (plain, sealed) in SEQUENCE {
        let (m, tag) = s.pull(&hex(sealed), &[]).unwrap();
        assert_eq!(HEXLOWER.encode(&m), plain);
        assert_eq!(tag, Tag::Message);
    }
    s.rekey();
    let (m, _) = s.pull(&hex(AFTER_REKEY.1), &[]).unwrap();
    assert_eq!(HEXLOWER.encode(&m), AFTER_REKEY.0);
}

#[test]
fn single_final_and_rekey_messages_match_libsodium() {
    // One FINAL message is exactly what Ente's encrypted export contains.
    let final_sealed = "ff9400d10e8264e3e748e715ba121a946e605a2e726ea933107430227730d4cb128915df725e81ffc6164ece09df876be0c0045e640c1ce82c855191b09911d7b44f184f";
    let rekey_sealed = "fe9400d10e8264e3e748e715ba121a946e605a2e726ea933107430227730d4cb128915df725e81ffc6164ece09df876be0c0045ebb1ad888a97934d766b4b1ff4587ac16";
    assert_eq!(
        HEXLOWER.encode(&state().push(&hex(MSG), &[], Tag::Final)),
        final_sealed
    );
    assert_eq!(
        HEXLOWER.encode(&state().push(&hex(MSG), &[], Tag::Rekey)),
        rekey_sealed
    );
    let (m, tag) = state().pull(&hex(final_sealed), &[]).unwrap();
    assert_eq!((HEXLOWER.encode(&m).as_str(), tag), (MSG, Tag::Final));
    let (_, tag) = state().pull(&hex(rekey_sealed), &[]).unwrap();
    assert_eq!(tag, Tag::Rekey);
}

#[test]
fn tampering_wrong_key_order_and_ad_are_refused() {
    let sealed = hex(SEQUENCE[0].1);
    for i in 0..sealed.len() {
        let mut bad = sealed.clone();
        bad[i] ^= 0x01;
        assert!(
            state().pull(&bad, &[]).is_err(),
            "flipped byte {i} accepted"
        );
    }
    for cut in 0..sealed.len() {
        assert!(
            state().pull(&sealed[..cut], &[]).is_err(),
            "truncated to {cut} accepted"
        );
    }
    // Out of order: the second message first.
    assert!(state().pull(&hex(SEQUENCE[1].1), &[]).is_err());
    // Associated data must match.
    assert!(state().pull(&sealed, b"x").is_err());
    let key = [7u8; 32];
    let header: [u8; 24] = hex(HEADER).try_into().unwrap();
    assert!(State::new(&key, &header).pull(&sealed, &[]).is_err());
}

#[test]
fn own_push_round_trips_with_ad_and_empty_messages() {
    let key = [9u8; 32];
    let header = [3u8; 24];
    let mut push = State::new(&key, &header);
    let mut pull = State::new(&key, &header);
    for (i, m) in [&b""[..], b"a", &[0x55; 300][..], b"last"]
        .iter()
        .enumerate()
    {
        let tag = if i == 3 { Tag::Final } else { Tag::Message };
        let c = push.push(m, b"ad", tag);
        assert_eq!(c.len(), m.len() + A_BYTES);
        let (p, t) = pull.pull(&c, b"ad").unwrap();
        assert_eq!((&p[..], t), (*m, tag));
    }
}

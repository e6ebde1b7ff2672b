//! libsodium's `crypto_secretstream_xchacha20poly1305`, written from libsodium's documented
//! construction (<https://doc.libsodium.org/secret-key_cryptography/secretstream>, section
//! "Algorithm details") on RustCrypto's ChaCha20 and Poly1305. Ente's encrypted export is one
//! message of such a stream.
//!
//! * `init`: `k = HChaCha20(key, header[0..16])`; the 12-byte ChaCha20 nonce is a 32-bit
//!   little-endian counter, starting at 1, followed by `inonce = header[16..24]`.
//! * `push(m, ad, tag)`: block 0 of ChaCha20(k, nonce) gives the Poly1305 key; a 64-byte block
//!   whose first byte is `tag` is encrypted with block counter 1, and its first byte is the
//!   output's first byte; `m` is encrypted from block counter 2. The Poly1305 MAC covers
//!   `ad ‖ zeros((16 - len(ad)) mod 16) ‖ block ‖ c ‖ zeros((16 - 64 + len(m)) mod 16) ‖
//!   le64(len(ad)) ‖ le64(64 + len(m))`. Note the second padding: libsodium computes it as
//!   `(0x10 - sizeof block + mlen) & 0xf`, which is `len(m) mod 16` zero bytes, *not* padding
//!   to a multiple of 16; the MAC input is therefore generally not block-aligned, and we
//!   reproduce that exactly (the published vectors in the tests fail otherwise). Output:
//!   `tag' ‖ c ‖ mac`
//!   (17 bytes longer than `m`). Then `inonce ^= mac[0..8]`, the counter is incremented, and on
//!   a `REKEY` tag or a counter wrap the key is renewed.
//! * `rekey`: `k ‖ inonce = ChaCha20(k, nonce) XOR (k ‖ inonce)`, counter reset to 1.

use std::fmt;

use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use chacha20::ChaCha20;
use poly1305::universal_hash::KeyInit;
use poly1305::Poly1305;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// Header length (the stream's public nonce).
pub const HEADER_BYTES: usize = 24;
/// Key length.
pub const KEY_BYTES: usize = 32;
/// Bytes added to each message: one tag byte and a 16-byte MAC.
pub const A_BYTES: usize = 17;

/// The message tag, authenticated with each message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    /// An ordinary message.
    Message,
    /// The end of a set of messages (not the end of the stream).
    Push,
    /// Renew the key after this message.
    Rekey,
    /// The last message of the stream (also renews the key).
    Final,
}

impl Tag {
    fn byte(self) -> u8 {
        match self {
            Tag::Message => 0,
            Tag::Push => 1,
            Tag::Rekey => 2,
            Tag::Final => 3,
        }
    }

    fn from_byte(b: u8) -> Option<Tag> {
        match b {
            0 => Some(Tag::Message),
            1 => Some(Tag::Push),
            2 => Some(Tag::Rekey),
            3 => Some(Tag::Final),
            _ => None,
        }
    }
}

/// A message failed authentication (wrong key, altered or truncated data, or an out-of-order
/// message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forged;

impl fmt::Display for Forged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the message fails authentication")
    }
}

impl std::error::Error for Forged {}

/// The state of one direction of a stream. Key material is wiped on drop.
pub struct State {
    key: [u8; 32],
    counter: u32,
    inonce: [u8; 8],
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("State([redacted])")
    }
}

const PAD_BLOCK: usize = 64;

impl State {
    /// Starts a stream with `key` and `header`. Pushing and pulling start the same way; for
    /// pushing, `header` must be fresh random bytes, sent along with the stream.
    pub fn new(key: &[u8; KEY_BYTES], header: &[u8; HEADER_BYTES]) -> Self {
        let (first, rest) = header.split_at(16);
        let sub = chacha20::hchacha::<chacha20::cipher::consts::U10>(key.into(), first.into());
        let mut state = State {
            key: [0u8; 32],
            counter: 1,
            inonce: [0u8; 8],
        };
        state.key.copy_from_slice(&sub);
        state.inonce.copy_from_slice(rest);
        state
    }

    /// The 12-byte ChaCha20 nonce: counter (little-endian) ‖ inonce.
    fn nonce(&self) -> [u8; 12] {
        let mut n = [0u8; 12];
        let (c, i) = n.split_at_mut(4);
        c.copy_from_slice(&self.counter.to_le_bytes());
        i.copy_from_slice(&self.inonce);
        n
    }

    fn cipher(&self) -> ChaCha20 {
        ChaCha20::new((&self.key).into(), (&self.nonce()).into())
    }

    /// Computes the MAC of one message (see the module notes for the exact input). Block 0 of
    /// the keystream is the Poly1305 key; `cipher` is left at block 1.
    fn mac(cipher: &mut ChaCha20, ad: &[u8], block: &[u8; 64], body: &[u8]) -> [u8; 16] {
        let mut block0 = [0u8; 64];
        cipher.apply_keystream(&mut block0);
        let (mac_key, _) = block0.split_at(32);
        let poly = Poly1305::new(poly1305::Key::from_slice(mac_key));
        block0.zeroize();
        let pad_ad = (16 - ad.len() % 16) % 16;
        // libsodium: (0x10 - sizeof block + mlen) & 0xf, in wrapping size_t arithmetic,
        // which is mlen mod 16 because sizeof block (64) is a multiple of 16.
        let pad_body = body.len() % 16;
        let mut input =
            Vec::with_capacity(ad.len() + pad_ad + PAD_BLOCK + body.len() + pad_body + 16);
        input.extend_from_slice(ad);
        input.resize(ad.len() + pad_ad, 0);
        input.extend_from_slice(block);
        input.extend_from_slice(body);
        input.resize(input.len() + pad_body, 0);
        input.extend_from_slice(&(ad.len() as u64).to_le_bytes());
        input.extend_from_slice(&((PAD_BLOCK + body.len()) as u64).to_le_bytes());
        let tag = poly.compute_unpadded(&input);
        input.zeroize();
        let mut out = [0u8; 16];
        out.copy_from_slice(&tag);
        out
    }

    fn advance(&mut self, mac: &[u8], tag: u8) {
        for (n, m) in self.inonce.iter_mut().zip(mac) {
            *n ^= m;
        }
        self.counter = self.counter.wrapping_add(1);
        if tag & Tag::Rekey.byte() != 0 || self.counter == 0 {
            self.rekey();
        }
    }

    /// Renews the key (libsodium's `crypto_secretstream_xchacha20poly1305_rekey`).
    pub fn rekey(&mut self) {
        let mut buf = [0u8; 40];
        {
            let (k, i) = buf.split_at_mut(32);
            k.copy_from_slice(&self.key);
            i.copy_from_slice(&self.inonce);
        }
        self.cipher().apply_keystream(&mut buf);
        {
            let (k, i) = buf.split_at(32);
            self.key.copy_from_slice(k);
            self.inonce.copy_from_slice(i);
        }
        buf.zeroize();
        self.counter = 1;
    }

    /// Encrypts one message.
    pub fn push(&mut self, message: &[u8], ad: &[u8], tag: Tag) -> Vec<u8> {
        // Block 0 (the MAC key) is taken inside `mac`, which needs the encrypted block and
        // ciphertext; so derive those from a second cipher positioned at block 1.
        let mut keystream = self.cipher();
        keystream.seek(64u64);
        let mut block = [0u8; 64];
        block[0] = tag.byte();
        keystream.apply_keystream(&mut block);
        let mut body = message.to_vec();
        keystream.apply_keystream(&mut body);
        let mac = Self::mac(&mut self.cipher(), ad, &block, &body);
        let mut out = Vec::with_capacity(message.len() + A_BYTES);
        out.push(block[0]);
        block.zeroize();
        out.extend_from_slice(&body);
        out.extend_from_slice(&mac);
        self.advance(&mac, tag.byte());
        out
    }

    /// Decrypts and authenticates one message; returns the plaintext and its tag. On failure
    /// the state is unchanged.
    pub fn pull(&mut self, sealed: &[u8], ad: &[u8]) -> Result<(Zeroizing<Vec<u8>>, Tag), Forged> {
        let Some((&first, rest)) = sealed.split_first() else {
            return Err(Forged);
        };
        let Some(body_len) = rest.len().checked_sub(16) else {
            return Err(Forged);
        };
        let (body, mac_stored) = rest.split_at(body_len);
        let mut keystream = self.cipher();
        keystream.seek(64u64);
        let mut block = [0u8; 64];
        block[0] = first;
        keystream.apply_keystream(&mut block);
        let tag_byte = block[0];
        block[0] = first;
        let mac = Self::mac(&mut self.cipher(), ad, &block, body);
        block.zeroize();
        if !bool::from(mac.ct_eq(mac_stored)) {
            return Err(Forged);
        }
        let tag = Tag::from_byte(tag_byte).ok_or(Forged)?;
        // `keystream` now stands at block 2, where the message starts.
        let mut plain = Zeroizing::new(body.to_vec());
        keystream.apply_keystream(plain.as_mut_slice());
        self.advance(mac_stored, tag_byte);
        Ok((plain, tag))
    }
}

impl Drop for State {
    fn drop(&mut self) {
        self.key.zeroize();
        self.inonce.zeroize();
        self.counter.zeroize();
    }
}

//! RADIUS packets (RFC 2865) as mamori's RADIUS server needs them: an Access-Request parsed and
//! checked, its User-Password revealed, and Access-Accept / Reject / Challenge answers built.
//!
//! The Message-Authenticator (RFC 3579 §3.2, HMAC-MD5 over the packet) is required on every
//! request and put first in every response: without it a man in the middle can forge answers
//! (the BlastRADIUS attack, CVE-2024-3596). Comparisons of authenticators are constant-time.
//! The crate is pure: it reads no clock, no socket and no randomness (the caller passes them).
#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;
use thiserror::Error;
use zeroize::Zeroizing;

/// Smallest and largest packets (RFC 2865 §3).
pub const MIN_LEN: usize = 20;
pub const MAX_LEN: usize = 4096;

/// Packet codes used here (RFC 2865 §3).
pub mod code {
    pub const ACCESS_REQUEST: u8 = 1;
    pub const ACCESS_ACCEPT: u8 = 2;
    pub const ACCESS_REJECT: u8 = 3;
    pub const ACCESS_CHALLENGE: u8 = 11;
}

/// Attribute types used here (RFC 2865 §5, RFC 3579 §3.2).
pub mod attr {
    pub const USER_NAME: u8 = 1;
    pub const USER_PASSWORD: u8 = 2;
    pub const NAS_IP_ADDRESS: u8 = 4;
    pub const FILTER_ID: u8 = 11;
    pub const REPLY_MESSAGE: u8 = 18;
    pub const STATE: u8 = 24;
    pub const CLASS: u8 = 25;
    pub const NAS_IDENTIFIER: u8 = 32;
    pub const MESSAGE_AUTHENTICATOR: u8 = 80;
}

/// Why a packet was dropped. RADIUS answers nothing to these (RFC 2865 §3: silently discard).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PacketError {
    #[error("packet shorter than 20 bytes or longer than 4096")]
    BadLength,
    #[error("the length field does not match the datagram")]
    LengthMismatch,
    #[error("an attribute is shorter than 2 bytes or runs past the packet")]
    BadAttribute,
    #[error("not an Access-Request")]
    NotAccessRequest,
    #[error("no Message-Authenticator")]
    NoMessageAuthenticator,
    #[error("Message-Authenticator present more than once or not 16 bytes")]
    BadMessageAuthenticator,
    #[error("the Message-Authenticator does not match (wrong shared secret or altered packet)")]
    WrongMessageAuthenticator,
    #[error("User-Password is empty, longer than 128 bytes or not a multiple of 16")]
    BadUserPassword,
    #[error("an attribute value is longer than 253 bytes")]
    ValueTooLong,
    #[error("the response would be longer than 4096 bytes")]
    ResponseTooLong,
}

/// A parsed packet: header fields and attributes in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub code: u8,
    pub identifier: u8,
    pub authenticator: [u8; 16],
    pub attributes: Vec<(u8, Vec<u8>)>,
}

impl Packet {
    /// Parses a datagram (no secret needed: the checks that need it are separate).
    pub fn parse(datagram: &[u8]) -> Result<Packet, PacketError> {
        if datagram.len() < MIN_LEN || datagram.len() > MAX_LEN {
            return Err(PacketError::BadLength);
        }
        let (header, rest) = datagram.split_at(4);
        let declared = usize::from(u16::from_be_bytes([
            header.get(2).copied().unwrap_or(0),
            header.get(3).copied().unwrap_or(0),
        ]));
        // RFC 2865 §3: octets beyond Length are padding and ignored; fewer is an error.
        if declared < MIN_LEN || declared > datagram.len() {
            return Err(PacketError::LengthMismatch);
        }
        let (auth, mut attrs) = rest.split_at(16);
        attrs = attrs
            .get(..declared - MIN_LEN)
            .ok_or(PacketError::LengthMismatch)?;
        let mut attributes = Vec::new();
        while !attrs.is_empty() {
            let (t, l) = match attrs {
                [t, l, ..] => (*t, usize::from(*l)),
                _ => return Err(PacketError::BadAttribute),
            };
            if l < 2 {
                return Err(PacketError::BadAttribute);
            }
            let value = attrs.get(2..l).ok_or(PacketError::BadAttribute)?;
            attributes.push((t, value.to_vec()));
            attrs = attrs.get(l..).unwrap_or(&[]);
        }
        let mut authenticator = [0u8; 16];
        authenticator.copy_from_slice(auth);
        Ok(Packet {
            code: header.first().copied().unwrap_or(0),
            identifier: header.get(1).copied().unwrap_or(0),
            authenticator,
            attributes,
        })
    }

    /// The first attribute of type `t`.
    pub fn get(&self, t: u8) -> Option<&[u8]> {
        self.attributes
            .iter()
            .find(|(k, _)| *k == t)
            .map(|(_, v)| v.as_slice())
    }

    /// The packet's bytes (attributes in order); used for requests in tests and the fuzzer.
    pub fn encode(&self) -> Result<Vec<u8>, PacketError> {
        let mut out = vec![self.code, self.identifier, 0, 0];
        out.extend_from_slice(&self.authenticator);
        for (t, v) in &self.attributes {
            if v.len() > 253 {
                return Err(PacketError::ValueTooLong);
            }
            out.push(*t);
            out.push(u8::try_from(v.len() + 2).map_err(|_| PacketError::ValueTooLong)?);
            out.extend_from_slice(v);
        }
        set_length(&mut out)?;
        Ok(out)
    }
}

fn set_length(out: &mut [u8]) -> Result<(), PacketError> {
    if out.len() > MAX_LEN {
        return Err(PacketError::ResponseTooLong);
    }
    let len = u16::try_from(out.len()).map_err(|_| PacketError::ResponseTooLong)?;
    if let Some(l) = out.get_mut(2..4) {
        l.copy_from_slice(&len.to_be_bytes());
    }
    Ok(())
}

fn hmac_md5(secret: &[u8], data: &[u8]) -> [u8; 16] {
    // HMAC accepts keys of any length; new_from_slice cannot fail for it.
    let mut mac = match <Hmac<Md5> as Mac>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return [0u8; 16],
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Checks an Access-Request's Message-Authenticator (RFC 3579 §3.2): exactly one, 16 bytes,
/// equal to HMAC-MD5(secret, the packet with that value zeroed). Required: a request without
/// one is dropped whatever else it carries.
pub fn verify_request(datagram: &[u8], secret: &[u8]) -> Result<Packet, PacketError> {
    let packet = Packet::parse(datagram)?;
    if packet.code != code::ACCESS_REQUEST {
        return Err(PacketError::NotAccessRequest);
    }
    let found: Vec<&[u8]> = packet
        .attributes
        .iter()
        .filter(|(t, _)| *t == attr::MESSAGE_AUTHENTICATOR)
        .map(|(_, v)| v.as_slice())
        .collect();
    let given = match found.as_slice() {
        [] => return Err(PacketError::NoMessageAuthenticator),
        [one] if one.len() == 16 => *one,
        _ => return Err(PacketError::BadMessageAuthenticator),
    };
    // The same packet bytes (as declared by Length) with the value zeroed.
    let declared = usize::from(u16::from_be_bytes([
        datagram.get(2).copied().unwrap_or(0),
        datagram.get(3).copied().unwrap_or(0),
    ]));
    let mut copy = datagram
        .get(..declared)
        .ok_or(PacketError::LengthMismatch)?
        .to_vec();
    let mut at = MIN_LEN;
    while let (Some(&t), Some(&l)) = (copy.get(at), copy.get(at + 1)) {
        let l = usize::from(l);
        if t == attr::MESSAGE_AUTHENTICATOR {
            if let Some(v) = copy.get_mut(at + 2..at + l) {
                v.fill(0);
            }
        }
        at += l.max(2);
    }
    let want = hmac_md5(secret, &copy);
    if bool::from(want.ct_eq(given)) {
        Ok(packet)
    } else {
        Err(PacketError::WrongMessageAuthenticator)
    }
}

/// Reveals a User-Password (RFC 2865 §5.2): p_i = c_i XOR MD5(secret + c_{i-1}), c_0 = the
/// Request Authenticator; trailing NUL padding removed.
pub fn reveal_password(
    hidden: &[u8],
    secret: &[u8],
    request_authenticator: &[u8; 16],
) -> Result<Zeroizing<Vec<u8>>, PacketError> {
    if hidden.is_empty() || hidden.len() > 128 || hidden.len() % 16 != 0 {
        return Err(PacketError::BadUserPassword);
    }
    let mut out = Zeroizing::new(Vec::with_capacity(hidden.len()));
    let mut prev: &[u8] = request_authenticator;
    for chunk in hidden.chunks(16) {
        let mut h = Md5::new();
        h.update(secret);
        h.update(prev);
        let b = h.finalize();
        out.extend(chunk.iter().zip(b.iter()).map(|(c, k)| c ^ k));
        prev = chunk;
    }
    while out.last() == Some(&0) {
        out.pop();
    }
    Ok(out)
}

/// Hides a User-Password (RFC 2865 §5.2), the client's side: for tests and the fuzzer.
pub fn hide_password(
    password: &[u8],
    secret: &[u8],
    request_authenticator: &[u8; 16],
) -> Result<Vec<u8>, PacketError> {
    if password.len() > 128 {
        return Err(PacketError::BadUserPassword);
    }
    let padded_len = password.len().div_ceil(16).max(1) * 16;
    let mut p = Zeroizing::new(password.to_vec());
    p.resize(padded_len, 0);
    let mut out: Vec<u8> = Vec::with_capacity(padded_len);
    let mut prev = request_authenticator.to_vec();
    for chunk in p.chunks(16) {
        let mut h = Md5::new();
        h.update(secret);
        h.update(&prev);
        let b = h.finalize();
        let c: Vec<u8> = chunk.iter().zip(b.iter()).map(|(x, k)| x ^ k).collect();
        out.extend_from_slice(&c);
        prev = c;
    }
    Ok(out)
}

/// Adds a Message-Authenticator to a request built by [`Packet::encode`] (the client's side:
/// tests and the fuzzer). The packet must not carry one yet.
pub fn sign_request(mut packet: Packet, secret: &[u8]) -> Result<Vec<u8>, PacketError> {
    packet
        .attributes
        .insert(0, (attr::MESSAGE_AUTHENTICATOR, vec![0u8; 16]));
    let mut bytes = packet.encode()?;
    let mac = hmac_md5(secret, &bytes);
    if let Some(v) = bytes.get_mut(MIN_LEN + 2..MIN_LEN + 18) {
        v.copy_from_slice(&mac);
    }
    Ok(bytes)
}

/// Builds a response to `request`: Message-Authenticator first (RFC 3579 §3.2, computed with
/// the Request Authenticator in place), then `attributes`, then the Response Authenticator
/// MD5(Code+Identifier+Length+RequestAuth+Attributes+Secret) (RFC 2865 §3).
pub fn response(
    code: u8,
    request: &Packet,
    attributes: &[(u8, Vec<u8>)],
    secret: &[u8],
) -> Result<Vec<u8>, PacketError> {
    let mut all = Vec::with_capacity(attributes.len() + 1);
    all.push((attr::MESSAGE_AUTHENTICATOR, vec![0u8; 16]));
    all.extend(attributes.iter().cloned());
    let mut bytes = Packet {
        code,
        identifier: request.identifier,
        authenticator: request.authenticator,
        attributes: all,
    }
    .encode()?;
    let mac = hmac_md5(secret, &bytes);
    if let Some(v) = bytes.get_mut(MIN_LEN + 2..MIN_LEN + 18) {
        v.copy_from_slice(&mac);
    }
    let mut h = Md5::new();
    h.update(&bytes);
    h.update(secret);
    let auth = h.finalize();
    if let Some(v) = bytes.get_mut(4..20) {
        v.copy_from_slice(&auth);
    }
    Ok(bytes)
}

/// Checks a response's Response Authenticator and Message-Authenticator against the request
/// it answers (the client's side: tests).
pub fn verify_response(
    datagram: &[u8],
    request_authenticator: &[u8; 16],
    secret: &[u8],
) -> Result<Packet, PacketError> {
    let packet = Packet::parse(datagram)?;
    let mut copy = datagram.to_vec();
    if let Some(v) = copy.get_mut(4..20) {
        v.copy_from_slice(request_authenticator);
    }
    let mut h = Md5::new();
    h.update(&copy);
    h.update(secret);
    if !bool::from(h.finalize().as_slice().ct_eq(&packet.authenticator)) {
        return Err(PacketError::WrongMessageAuthenticator);
    }
    let given = packet
        .get(attr::MESSAGE_AUTHENTICATOR)
        .ok_or(PacketError::NoMessageAuthenticator)?;
    let mut zeroed = copy;
    if let Some(v) = zeroed.get_mut(MIN_LEN + 2..MIN_LEN + 18) {
        v.fill(0);
    }
    if !bool::from(hmac_md5(secret, &zeroed).ct_eq(given)) {
        return Err(PacketError::WrongMessageAuthenticator);
    }
    Ok(packet)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // RFC 2865 §7.1 "User Telnet to Specified Host": shared secret "xyzzy5461", user "nemo",
    // password "arctangent".
    const RFC_REQUEST: &str = "01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb 98 f4 22 7a
        01 06 6e 65 6d 6f 02 12 0d be 70 8d 93 d4 13 ce 31 96 e4 3f 78 2a 0a ee
        04 06 c0 a8 01 10 05 06 00 00 00 03";
    const RFC_ACCEPT: &str = "02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf 9b 55 e0 b2
        06 06 00 00 00 01 0f 06 00 00 00 00 0e 06 c0 a8 01 03";

    #[test]
    fn rfc_2865_example_request_parses_and_reveals_its_password() {
        let p = Packet::parse(&hex(RFC_REQUEST)).unwrap();
        assert_eq!(p.code, code::ACCESS_REQUEST);
        assert_eq!(p.get(attr::USER_NAME), Some(&b"nemo"[..]));
        let pw = reveal_password(
            p.get(attr::USER_PASSWORD).unwrap(),
            b"xyzzy5461",
            &p.authenticator,
        )
        .unwrap();
        assert_eq!(pw.as_slice(), b"arctangent");
        let hidden = hide_password(b"arctangent", b"xyzzy5461", &p.authenticator).unwrap();
        assert_eq!(hidden, p.get(attr::USER_PASSWORD).unwrap());
        // It has no Message-Authenticator (1997): mamori drops it.
        assert_eq!(
            verify_request(&hex(RFC_REQUEST), b"xyzzy5461").unwrap_err(),
            PacketError::NoMessageAuthenticator
        );
    }

    #[test]
    fn rfc_2865_example_response_authenticator() {
        // The RFC's Access-Accept has no Message-Authenticator; its Response Authenticator is
        // MD5 over the packet with the Request Authenticator in place, then the secret.
        let req = Packet::parse(&hex(RFC_REQUEST)).unwrap();
        let accept = hex(RFC_ACCEPT);
        let mut copy = accept.clone();
        copy[4..20].copy_from_slice(&req.authenticator);
        let mut h = Md5::new();
        h.update(&copy);
        h.update(b"xyzzy5461");
        assert_eq!(h.finalize().as_slice(), &accept[4..20]);
    }

    #[test]
    fn long_passwords_chain_blocks() {
        let ra = [7u8; 16];
        for len in [0usize, 1, 15, 16, 17, 40, 128] {
            let pw: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let h = hide_password(&pw, b"s3cret", &ra).unwrap();
            assert_eq!(h.len() % 16, 0);
            assert_eq!(
                reveal_password(&h, b"s3cret", &ra).unwrap().as_slice(),
                &pw[..]
            );
        }
        assert!(hide_password(&[b'a'; 129], b"s", &ra).is_err());
        assert_eq!(
            reveal_password(&[0u8; 17], b"s", &ra).unwrap_err(),
            PacketError::BadUserPassword
        );
        assert_eq!(
            reveal_password(&[], b"s", &ra).unwrap_err(),
            PacketError::BadUserPassword
        );
    }

    fn request(secret: &[u8]) -> Vec<u8> {
        let ra = [9u8; 16];
        let p = Packet {
            code: code::ACCESS_REQUEST,
            identifier: 42,
            authenticator: ra,
            attributes: vec![
                (attr::USER_NAME, b"alice".to_vec()),
                (
                    attr::USER_PASSWORD,
                    hide_password(b"pw123456", secret, &ra).unwrap(),
                ),
            ],
        };
        sign_request(p, secret).unwrap()
    }

    #[test]
    fn message_authenticator_is_required_and_checked() {
        let good = request(b"shared");
        let p = verify_request(&good, b"shared").unwrap();
        assert_eq!(p.get(attr::USER_NAME), Some(&b"alice"[..]));
        assert_eq!(
            verify_request(&good, b"other").unwrap_err(),
            PacketError::WrongMessageAuthenticator
        );
        // Any byte changed anywhere is caught.
        for i in [1usize, 5, 22, 30, good.len() - 1] {
            let mut bad = good.clone();
            bad[i] ^= 1;
            assert!(verify_request(&bad, b"shared").is_err(), "byte {i}");
        }
        // Two Message-Authenticators.
        let mut p = Packet::parse(&good).unwrap();
        p.attributes
            .push((attr::MESSAGE_AUTHENTICATOR, vec![0; 16]));
        assert_eq!(
            verify_request(&p.encode().unwrap(), b"shared").unwrap_err(),
            PacketError::BadMessageAuthenticator
        );
    }

    #[test]
    fn responses_carry_both_authenticators() {
        let req = verify_request(&request(b"shared"), b"shared").unwrap();
        let bytes = response(
            code::ACCESS_CHALLENGE,
            &req,
            &[
                (attr::STATE, b"abc".to_vec()),
                (attr::REPLY_MESSAGE, b"Code?".to_vec()),
            ],
            b"shared",
        )
        .unwrap();
        let r = verify_response(&bytes, &req.authenticator, b"shared").unwrap();
        assert_eq!(r.code, code::ACCESS_CHALLENGE);
        assert_eq!(r.identifier, 42);
        assert_eq!(
            r.attributes[0].0,
            attr::MESSAGE_AUTHENTICATOR,
            "first (BlastRADIUS)"
        );
        assert_eq!(r.get(attr::STATE), Some(&b"abc"[..]));
        assert!(verify_response(&bytes, &req.authenticator, b"other").is_err());
        let mut forged = bytes.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert!(verify_response(&forged, &req.authenticator, b"shared").is_err());
    }

    #[test]
    fn malformed_packets_are_refused_without_panic() {
        let good = request(b"s");
        assert_eq!(
            Packet::parse(&good[..19]).unwrap_err(),
            PacketError::BadLength
        );
        assert_eq!(
            Packet::parse(&[0u8; 4097]).unwrap_err(),
            PacketError::BadLength
        );
        let mut long = good.clone();
        long[3] = long[3].wrapping_add(1);
        assert_eq!(
            Packet::parse(&long).unwrap_err(),
            PacketError::LengthMismatch
        );
        let mut zero_attr = good.clone();
        zero_attr[21] = 0;
        assert_eq!(
            Packet::parse(&zero_attr).unwrap_err(),
            PacketError::BadAttribute
        );
        // Padding beyond Length is ignored (RFC 2865 §3).
        let mut padded = good.clone();
        padded.extend_from_slice(&[0xAA; 10]);
        assert_eq!(
            Packet::parse(&padded).unwrap(),
            Packet::parse(&good).unwrap()
        );
        assert!(verify_request(&padded, b"s").is_ok());
        // Every prefix and every single-byte value at every position: errors, never panics.
        for n in 0..good.len() {
            let _ = verify_request(&good[..n], b"s");
        }
        for i in 0..good.len() {
            for v in [0u8, 1, 2, 0x7f, 0xff] {
                let mut m = good.clone();
                m[i] = v;
                let _ = verify_request(&m, b"s");
            }
        }
    }
}

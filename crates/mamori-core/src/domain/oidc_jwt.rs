//! JSON Web Signatures for the OpenID provider (#17): ES256 (ECDSA P-256 with SHA-256, RFC
//! 7518 §3.4) and RS256 (RSASSA-PKCS1-v1_5 with SHA-256, RFC 7518 §3.3, 2048-bit keys) in the
//! JWS Compact Serialization (RFC 7515 §7.1), and the public keys as JWKs (RFC 7517; EC keys
//! RFC 7518 §6.2, RSA keys §6.3) with the RFC 7638 thumbprint as `kid`. Pure: no store, no
//! clock; randomness is an argument.
//!
//! Keys are generated with the `p256` and `rsa` crates; signatures are made and checked with
//! `ring` (already in the build for TLS), whose P-256 and RSA arithmetic is an order of
//! magnitude faster — the token endpoint signs an ID token per redemption (docs/performance.md,
//! "OpenID provider"). A parsed key ([`SigningKeyPair`]) is kept by the service, so a stored key
//! is unsealed and parsed once per node, not per token.

use data_encoding::BASE64URL_NOPAD;
use p256::ecdsa::{SigningKey, VerifyingKey};
use rand::{CryptoRng, RngCore};
use ring::signature as rs;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// ECDSA P-256 with SHA-256: the default.
pub const ES256: &str = "ES256";
/// RSASSA-PKCS1-v1_5 with SHA-256, per client.
pub const RS256: &str = "RS256";
/// The algorithms this provider signs with.
pub const ALGS: [&str; 2] = [ES256, RS256];
/// RSA modulus size (RFC 7518 §3.3: 2048 bits or larger).
const RSA_BITS: usize = 2048;

/// A freshly generated key: the private key (to seal), the public JWK and its kid.
pub struct GeneratedKey {
    /// The private key: the 32-byte P-256 scalar, or the RSA key's PKCS#1 DER.
    pub private: Zeroizing<Vec<u8>>,
    /// The public key as a JWK (JSON text, with `kid`, `alg` and `use`).
    pub public_jwk: String,
    /// RFC 7638 thumbprint.
    pub kid: String,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Generates an ES256 key.
pub fn generate_es256<R: RngCore + CryptoRng>(rng: &mut R) -> GeneratedKey {
    let key = SigningKey::random(rng);
    let private = Zeroizing::new(key.to_bytes().to_vec());
    let (x, y) = coordinates(key.verifying_key());
    // RFC 7638 §3.2: the required members in lexicographic order, no white space.
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    let kid = BASE64URL_NOPAD.encode(&Sha256::digest(canonical.as_bytes()));
    let public_jwk = serde_json::json!({
        "kty": "EC", "crv": "P-256", "x": x, "y": y,
        "kid": kid, "alg": ES256, "use": "sig",
    })
    .to_string();
    GeneratedKey {
        private,
        public_jwk,
        kid,
    }
}

/// Generates a key for `alg` (`ES256` or `RS256`).
pub fn generate<R: RngCore + CryptoRng>(alg: &str, rng: &mut R) -> Result<GeneratedKey> {
    match alg {
        ES256 => Ok(generate_es256(rng)),
        RS256 => generate_rs256(rng),
        other => Err(Error::InvalidInput(format!(
            "signing algorithm {other}: ES256 or RS256"
        ))),
    }
}

/// Generates an RS256 key (2048 bits, e = 65537).
pub fn generate_rs256<R: RngCore + CryptoRng>(rng: &mut R) -> Result<GeneratedKey> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    let key = rsa::RsaPrivateKey::new(rng, RSA_BITS)
        .map_err(|_| Error::Internal("RSA key generation failed".into()))?;
    let der = key
        .to_pkcs1_der()
        .map_err(|_| Error::Internal("RSA key encoding failed".into()))?;
    let n = BASE64URL_NOPAD.encode(&key.n().to_bytes_be());
    let e = BASE64URL_NOPAD.encode(&key.e().to_bytes_be());
    // RFC 7638 §3.2 for RSA: e, kty, n.
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    let kid = BASE64URL_NOPAD.encode(&Sha256::digest(canonical.as_bytes()));
    let public_jwk = serde_json::json!({
        "kty": "RSA", "n": n, "e": e, "kid": kid, "alg": RS256, "use": "sig",
    })
    .to_string();
    Ok(GeneratedKey {
        private: Zeroizing::new(der.as_bytes().to_vec()),
        public_jwk,
        kid,
    })
}

/// A stored private key, parsed for signing: made once per key and kept (see the module).
pub enum SigningKeyPair {
    /// ES256: ECDSA P-256, the signature R || S (RFC 7518 §3.4).
    Es256(rs::EcdsaKeyPair),
    /// RS256: RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3).
    Rs256(rs::RsaKeyPair),
}

impl std::fmt::Debug for SigningKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SigningKeyPair::Es256(_) => "SigningKeyPair::Es256",
            SigningKeyPair::Rs256(_) => "SigningKeyPair::Rs256",
        })
    }
}

impl SigningKeyPair {
    /// Parses the stored private key of `alg`: the 32-byte P-256 scalar, or the RSA key's
    /// PKCS#1 DER.
    pub fn from_stored(alg: &str, private: &[u8]) -> Result<SigningKeyPair> {
        let bad = |what: &str| Error::Internal(format!("a stored signing key is not {what}"));
        match alg {
            ES256 => {
                // ring takes the scalar with its public point, which p256 derives.
                let scalar = SigningKey::from_slice(private).map_err(|_| bad("a P-256 scalar"))?;
                let public = scalar.verifying_key().to_encoded_point(false);
                rs::EcdsaKeyPair::from_private_key_and_public_key(
                    &rs::ECDSA_P256_SHA256_FIXED_SIGNING,
                    private,
                    public.as_bytes(),
                    &ring::rand::SystemRandom::new(),
                )
                .map(SigningKeyPair::Es256)
                .map_err(|_| bad("a P-256 key"))
            }
            RS256 => rs::RsaKeyPair::from_der(private)
                .map(SigningKeyPair::Rs256)
                .map_err(|_| bad("an RSA key")),
            other => Err(Error::Internal(format!("no signer for {other}"))),
        }
    }

    /// The JWS algorithm.
    pub fn alg(&self) -> &'static str {
        match self {
            SigningKeyPair::Es256(_) => ES256,
            SigningKeyPair::Rs256(_) => RS256,
        }
    }

    /// `header.payload.signature` of `claims` under `kid`.
    pub fn sign(&self, kid: &str, claims: &serde_json::Value) -> Result<String> {
        let input = signing_input(self.alg(), kid, claims);
        let rng = ring::rand::SystemRandom::new();
        let failed = || Error::Internal(format!("{} signing failed", self.alg()));
        let sig = match self {
            SigningKeyPair::Es256(k) => k
                .sign(&rng, input.as_bytes())
                .map_err(|_| failed())?
                .as_ref()
                .to_vec(),
            SigningKeyPair::Rs256(k) => {
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(&rs::RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig)
                    .map_err(|_| failed())?;
                sig
            }
        };
        Ok(format!("{input}.{}", BASE64URL_NOPAD.encode(&sig)))
    }
}

/// Signs `claims` with the stored private key of `alg` under `kid` (parsing the key each
/// time: the service keeps a [`SigningKeyPair`] instead).
pub fn sign(alg: &str, private: &[u8], kid: &str, claims: &serde_json::Value) -> Result<String> {
    SigningKeyPair::from_stored(alg, private)?.sign(kid, claims)
}

fn signing_input(alg: &str, kid: &str, claims: &serde_json::Value) -> String {
    let header = serde_json::json!({"alg": alg, "typ": "JWT", "kid": kid});
    format!(
        "{}.{}",
        BASE64URL_NOPAD.encode(header.to_string().as_bytes()),
        BASE64URL_NOPAD.encode(claims.to_string().as_bytes())
    )
}

/// RS256 with a stored PKCS#1 key.
pub fn sign_rs256(private: &[u8], kid: &str, claims: &serde_json::Value) -> Result<String> {
    sign(RS256, private, kid, claims)
}

/// The affine coordinates, Base64url (RFC 7518 §6.2.1.2: 32 bytes each for P-256).
fn coordinates(key: &VerifyingKey) -> (String, String) {
    let point = key.to_encoded_point(false);
    let x = point.x().map(|b| BASE64URL_NOPAD.encode(b));
    let y = point.y().map(|b| BASE64URL_NOPAD.encode(b));
    (x.unwrap_or_default(), y.unwrap_or_default())
}

/// ES256 with a stored P-256 scalar: the signature is R || S, 32 bytes each (RFC 7518 §3.4).
pub fn sign_es256(private: &[u8], kid: &str, claims: &serde_json::Value) -> Result<String> {
    sign(ES256, private, kid, claims)
}

/// Verifies a compact JWS signed by one of `jwks` (public JWK texts) with ES256 or RS256; its
/// claims when the signature holds. The key is found by `kid` and must be of the header's
/// algorithm (its `alg` and `kty`), so one kind of key is never used as another. Checks
/// nothing else (expiry, audience are the caller's).
pub fn verify(jwks: &[String], token: &str) -> Option<serde_json::Value> {
    let mut parts = token.split('.');
    let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: serde_json::Value =
        serde_json::from_slice(&BASE64URL_NOPAD.decode(h.as_bytes()).ok()?).ok()?;
    let alg = header.get("alg")?.as_str()?;
    let kid = header.get("kid")?.as_str()?;
    let jwk: serde_json::Value = jwks
        .iter()
        .filter_map(|j| serde_json::from_str::<serde_json::Value>(j).ok())
        .find(|j| j.get("kid").and_then(|k| k.as_str()) == Some(kid))?;
    if jwk.get("alg")?.as_str()? != alg {
        return None;
    }
    let field = |name: &str| -> Option<Vec<u8>> {
        BASE64URL_NOPAD
            .decode(jwk.get(name)?.as_str()?.as_bytes())
            .ok()
    };
    let input = format!("{h}.{p}");
    let sig = BASE64URL_NOPAD.decode(s.as_bytes()).ok()?;
    match (alg, jwk.get("kty")?.as_str()?) {
        (ES256, "EC") => {
            let (x, y) = (field("x")?, field("y")?);
            if x.len() != 32 || y.len() != 32 {
                return None;
            }
            let mut sec1 = vec![4u8];
            sec1.extend_from_slice(&x);
            sec1.extend_from_slice(&y);
            rs::UnparsedPublicKey::new(&rs::ECDSA_P256_SHA256_FIXED, &sec1)
                .verify(input.as_bytes(), &sig)
                .ok()?;
        }
        (RS256, "RSA") => {
            // ring refuses moduli under 2048 bits (RFC 7518 §3.3).
            rs::RsaPublicKeyComponents {
                n: field("n")?,
                e: field("e")?,
            }
            .verify(&rs::RSA_PKCS1_2048_8192_SHA256, input.as_bytes(), &sig)
            .ok()?;
        }
        _ => return None,
    }
    serde_json::from_slice(&BASE64URL_NOPAD.decode(p.as_bytes()).ok()?).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn sign_then_verify_and_tampering_fails() {
        let k = generate_es256(&mut OsRng);
        let claims = serde_json::json!({"sub": "x", "n": 1});
        let t = sign_es256(&k.private, &k.kid, &claims).unwrap();
        assert_eq!(
            verify(std::slice::from_ref(&k.public_jwk), &t),
            Some(claims)
        );
        // Another payload under the same signature.
        let parts: Vec<&str> = t.split('.').collect();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            BASE64URL_NOPAD.encode(br#"{"sub":"y","n":1}"#),
            parts[2]
        );
        assert_eq!(verify(std::slice::from_ref(&k.public_jwk), &forged), None);
        // Another key with the same kid does not verify it.
        let other = generate_es256(&mut OsRng);
        let swapped = other.public_jwk.replace(&other.kid, &k.kid);
        assert_eq!(verify(&[swapped], &t), None);
        // alg=none is never accepted.
        let none = format!(
            "{}.{}.",
            BASE64URL_NOPAD.encode(br#"{"alg":"none"}"#),
            parts[1]
        );
        assert_eq!(verify(&[k.public_jwk], &none), None);
    }

    #[test]
    fn rs256_signs_and_verifies_and_keys_are_not_confused() {
        let r = generate(RS256, &mut OsRng).unwrap();
        let e = generate(ES256, &mut OsRng).unwrap();
        let claims = serde_json::json!({"sub": "x"});
        let t = sign(RS256, &r.private, &r.kid, &claims).unwrap();
        let both = [r.public_jwk.clone(), e.public_jwk.clone()];
        assert_eq!(verify(&both, &t), Some(claims.clone()));
        let j: serde_json::Value = serde_json::from_str(&r.public_jwk).unwrap();
        assert_eq!(j["kty"], "RSA");
        assert_eq!(j["e"], "AQAB");
        assert_eq!(
            BASE64URL_NOPAD
                .decode(j["n"].as_str().unwrap().as_bytes())
                .unwrap()
                .len(),
            256
        );
        // An RS256 header naming the EC key's kid does not verify.
        let parts: Vec<&str> = t.split('.').collect();
        let header =
            BASE64URL_NOPAD.encode(format!(r#"{{"alg":"RS256","kid":"{}"}}"#, e.kid).as_bytes());
        let swapped = format!("{header}.{}.{}", parts[1], parts[2]);
        assert_eq!(verify(&both, &swapped), None);
        assert!(generate("HS256", &mut OsRng).is_err());
    }

    #[test]
    fn kid_is_the_rfc7638_thumbprint_and_the_jwk_is_p256() {
        let k = generate_es256(&mut OsRng);
        let j: serde_json::Value = serde_json::from_str(&k.public_jwk).unwrap();
        assert_eq!(j["kty"], "EC");
        assert_eq!(j["crv"], "P-256");
        assert_eq!(j["kid"], k.kid.as_str());
        assert_eq!(
            BASE64URL_NOPAD
                .decode(j["x"].as_str().unwrap().as_bytes())
                .unwrap()
                .len(),
            32
        );
        assert_eq!(k.private.len(), 32);
    }
}

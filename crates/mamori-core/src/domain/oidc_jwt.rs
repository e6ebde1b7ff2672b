//! JSON Web Signatures for the OpenID provider (#17): ES256 (ECDSA P-256 with SHA-256, RFC
//! 7518 §3.4) in the JWS Compact Serialization (RFC 7515 §7.1), and the public keys as JWKs
//! (RFC 7517, EC keys RFC 7518 §6.2) with the RFC 7638 thumbprint as `kid`. Pure: no store,
//! no clock; randomness is an argument.

use data_encoding::BASE64URL_NOPAD;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The one algorithm this slice signs with.
pub const ES256: &str = "ES256";

/// A freshly generated key: the private scalar (to seal), the public JWK and its kid.
pub struct GeneratedKey {
    /// The 32-byte private scalar.
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

/// The affine coordinates, Base64url (RFC 7518 §6.2.1.2: 32 bytes each for P-256).
fn coordinates(key: &VerifyingKey) -> (String, String) {
    let point = key.to_encoded_point(false);
    let x = point.x().map(|b| BASE64URL_NOPAD.encode(b));
    let y = point.y().map(|b| BASE64URL_NOPAD.encode(b));
    (x.unwrap_or_default(), y.unwrap_or_default())
}

/// Signs `claims` with the private scalar `private` under `kid`: `header.payload.signature`,
/// the signature being R || S, 32 bytes each (RFC 7518 §3.4).
pub fn sign_es256(private: &[u8], kid: &str, claims: &serde_json::Value) -> Result<String> {
    let key = SigningKey::from_slice(private)
        .map_err(|_| Error::Internal("a stored signing key is not a P-256 scalar".into()))?;
    let header = serde_json::json!({"alg": ES256, "typ": "JWT", "kid": kid});
    let input = format!(
        "{}.{}",
        BASE64URL_NOPAD.encode(header.to_string().as_bytes()),
        BASE64URL_NOPAD.encode(claims.to_string().as_bytes())
    );
    let sig: Signature = key.sign(input.as_bytes());
    Ok(format!(
        "{input}.{}",
        BASE64URL_NOPAD.encode(&sig.to_bytes())
    ))
}

/// Verifies a compact JWS signed by one of `jwks` (public JWK texts) with ES256; its claims
/// when the signature holds. Checks nothing else (expiry, audience are the caller's).
pub fn verify_es256(jwks: &[String], token: &str) -> Option<serde_json::Value> {
    let mut parts = token.split('.');
    let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: serde_json::Value =
        serde_json::from_slice(&BASE64URL_NOPAD.decode(h.as_bytes()).ok()?).ok()?;
    if header.get("alg")?.as_str()? != ES256 {
        return None;
    }
    let kid = header.get("kid")?.as_str()?;
    let jwk: serde_json::Value = jwks
        .iter()
        .filter_map(|j| serde_json::from_str::<serde_json::Value>(j).ok())
        .find(|j| j.get("kid").and_then(|k| k.as_str()) == Some(kid))?;
    let coord = |name: &str| -> Option<Vec<u8>> {
        BASE64URL_NOPAD
            .decode(jwk.get(name)?.as_str()?.as_bytes())
            .ok()
    };
    let (x, y) = (coord("x")?, coord("y")?);
    let mut sec1 = vec![4u8];
    sec1.extend_from_slice(&x);
    sec1.extend_from_slice(&y);
    let key = VerifyingKey::from_sec1_bytes(&sec1).ok()?;
    let sig = Signature::from_slice(&BASE64URL_NOPAD.decode(s.as_bytes()).ok()?).ok()?;
    key.verify(format!("{h}.{p}").as_bytes(), &sig).ok()?;
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
            verify_es256(std::slice::from_ref(&k.public_jwk), &t),
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
        assert_eq!(
            verify_es256(std::slice::from_ref(&k.public_jwk), &forged),
            None
        );
        // Another key with the same kid does not verify it.
        let other = generate_es256(&mut OsRng);
        let swapped = other.public_jwk.replace(&other.kid, &k.kid);
        assert_eq!(verify_es256(&[swapped], &t), None);
        // alg=none is never accepted.
        let none = format!(
            "{}.{}.",
            BASE64URL_NOPAD.encode(br#"{"alg":"none"}"#),
            parts[1]
        );
        assert_eq!(verify_es256(&[k.public_jwk], &none), None);
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

//! The OpenID provider's signatures (#17): signing an ID token (ES256, RS256) as the token
//! endpoint does, and verifying one against a JWKS as a relying party or `id_token_hint` does.
//! Results and the machine are recorded in docs/performance.md ("OpenID provider").

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use mamori_core::domain::oidc_jwt;
use rand::rngs::OsRng;

/// Claims the size of a real ID token (the provider's, with profile and email scopes).
fn claims() -> serde_json::Value {
    serde_json::json!({
        "iss": "https://mfa.example.com",
        "sub": "Vq3p0mXWbqv3Q6lB1o0yQ5D2l3n1c0x9m8k7j6h5g4f",
        "aud": "6f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b",
        "azp": "6f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b",
        "exp": 1_900_000_600, "iat": 1_900_000_000, "auth_time": 1_899_999_900,
        "nonce": "n-0S6_WzA2Mj", "amr": ["pwd", "otp", "mfa"], "acr": "urn:mamori:acr:2fa",
        "preferred_username": "alice", "name": "alice", "locale": "en",
        "email": "alice@example.com", "email_verified": true,
    })
}

fn signatures(c: &mut Criterion) {
    let mut g = c.benchmark_group("id_token");
    g.throughput(Throughput::Elements(1));
    let claims = claims();
    for alg in ["ES256", "RS256"] {
        let key = oidc_jwt::generate(alg, &mut OsRng).expect("key");
        // A JWKS with the other algorithm's key first, as the provider's holds both.
        let other = oidc_jwt::generate(if alg == "ES256" { "RS256" } else { "ES256" }, &mut OsRng)
            .expect("key");
        let jwks = vec![other.public_jwk.clone(), key.public_jwk.clone()];
        // What the token endpoint does: the key parsed once and kept.
        let pair = oidc_jwt::SigningKeyPair::from_stored(alg, &key.private).expect("parse");
        g.bench_function(format!("sign_{alg}"), |b| {
            b.iter(|| pair.sign(&key.kid, black_box(&claims)).expect("sign"))
        });
        // Parsing the stored key each time (what a node does once per key).
        g.bench_function(format!("parse_and_sign_{alg}"), |b| {
            b.iter(|| {
                oidc_jwt::sign(alg, black_box(&key.private), &key.kid, black_box(&claims))
                    .expect("sign")
            })
        });
        let token = oidc_jwt::sign(alg, &key.private, &key.kid, &claims).expect("sign");
        g.bench_function(format!("verify_{alg}"), |b| {
            b.iter(|| oidc_jwt::verify(black_box(&jwks), black_box(&token)).expect("valid"))
        });
    }
    g.finish();
}

criterion_group!(benches, signatures);
criterion_main!(benches);

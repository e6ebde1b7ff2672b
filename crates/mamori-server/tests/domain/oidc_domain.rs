//! The OpenID provider's rules on a fixed clock (#17): what the HTTP tests cannot do without
//! waiting — a code past its 60 seconds — and the ID token's claims as the domain signs them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use mamori_server::config::RequireMfa;
use mamori_server::domain::oidc::{
    AuthorizeParams, AuthorizeStep, ClientCredentials, NewClient, OidcError, RequireFactor,
    TokenParams, CODE_SECS,
};
use mamori_server::domain::oidc_jwt;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

use crate::domain_common::{fixture, T0};

const REDIRECT: &str = "https://rp.example/cb";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

#[tokio::test]
async fn a_code_lives_sixty_seconds_and_the_id_token_says_what_was_used() {
    let f = fixture(RequireMfa::All).await;
    let secret = f.root_with_device().await;
    let token = f.root_signed_in(&secret, T0 + 300).await;
    let created = f
        .svc
        .oidc_create_client(
            NewClient {
                name: "app".into(),
                redirect_uris: vec![REDIRECT.into()],
                post_logout_redirect_uris: vec![],
                public: false,
                trusted: true,
                require: RequireFactor::TwoFactor,
                allowed_users: vec![],
                allowed_groups: vec![],
            },
            "root",
            T0,
            &f.meta,
            &mut OsRng,
        )
        .await
        .unwrap();
    let creds = ClientCredentials {
        client_id: Some(created.client.id.clone()),
        secret: created.secret.clone(),
        basic: true,
    };
    let params = AuthorizeParams::from_query(&format!(
        "response_type=code&scope=openid&client_id={}&redirect_uri={REDIRECT}&nonce=n1\
         &code_challenge={CHALLENGE}&code_challenge_method=S256",
        created.client.id
    ))
    .unwrap();
    let req = f.svc.oidc_check_authorize(&params).await.unwrap();
    let code_at = |t: i64| {
        let req = req.clone();
        let token = token.clone();
        let f = &f;
        async move {
            let auth = f.svc.authenticate(&token, t).await.unwrap();
            let AuthorizeStep::Redirect(to) = f
                .svc
                .oidc_authorize(&req, Some(&auth), t, &f.meta, &mut OsRng)
                .await
                .unwrap()
            else {
                panic!("a trusted client gets a code at once")
            };
            url::Url::parse(&to)
                .unwrap()
                .query_pairs()
                .find(|(k, _)| k == "code")
                .unwrap()
                .1
                .into_owned()
        }
    };
    let redeem = |code: String, t: i64| {
        let creds = creds.clone();
        let f = &f;
        async move {
            let p = TokenParams {
                grant_type: Some("authorization_code".into()),
                code: Some(code),
                redirect_uri: Some(REDIRECT.into()),
                code_verifier: Some(VERIFIER.into()),
                refresh_token: None,
            };
            f.svc.oidc_token(&creds, &p, t, &f.meta, &mut OsRng).await
        }
    };

    // Past its 60 seconds: invalid_grant, however right everything else is.
    let late = code_at(T0 + 310).await;
    let err = redeem(late, T0 + 310 + CODE_SECS).await.unwrap_err();
    assert!(matches!(err, OidcError::InvalidGrant(_)), "{err}");

    // In time: tokens, and an ID token with the session's facts.
    let c = code_at(T0 + 320).await;
    let t = redeem(c, T0 + 320 + CODE_SECS - 1).await.unwrap();
    let jwks = f.svc.oidc_jwks(T0 + 400).await.unwrap();
    let keys: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.to_string())
        .collect();
    let claims = oidc_jwt::verify_es256(&keys, &t.id_token).expect("signed by a JWKS key");
    assert_eq!(claims["iss"], "https://mfa.example");
    assert_eq!(claims["aud"], created.client.id.as_str());
    assert_eq!(claims["nonce"], "n1");
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    assert_eq!(claims["auth_time"], T0 + 300);
    assert_eq!(claims["iat"], T0 + 320 + CODE_SECS - 1);
    assert_eq!(
        claims["sub"],
        f.svc.oidc_subject(
            &f.svc
                .authenticate(&token, T0 + 320)
                .await
                .unwrap()
                .account
                .id
        )
    );

    // The access token expires with its time; userinfo then refuses it.
    assert!(f.svc.oidc_userinfo(&t.access_token, T0 + 400).await.is_ok());
    let expired = f
        .svc
        .oidc_userinfo(&t.access_token, T0 + 320 + CODE_SECS - 1 + 600)
        .await
        .unwrap_err();
    assert!(matches!(expired, OidcError::InvalidToken));

    // A wrong secret is invalid_client, whatever the code.
    let wrong = ClientCredentials {
        secret: Some(Zeroizing::new("nope".into())),
        ..creds.clone()
    };
    let p = TokenParams {
        grant_type: Some("authorization_code".into()),
        code: Some("x".into()),
        ..Default::default()
    };
    let err = f
        .svc
        .oidc_token(&wrong, &p, T0 + 400, &f.meta, &mut OsRng)
        .await
        .unwrap_err();
    assert!(matches!(err, OidcError::InvalidClient));
}

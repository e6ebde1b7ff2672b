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
    TokenParams, CODE_SECS, RETIRED_KEY_SECS,
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
                alg: "ES256".into(),
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
    let claims = oidc_jwt::verify(&keys, &t.id_token).expect("signed by a JWKS key");
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

    // The key schedule (oidc_key_rotation_days, 90 by default): the key made at T0 + 379
    // is kept until 90 days have passed, then replaced; the old public key stays published
    // for RETIRED_KEY_SECS and is then deleted.
    let made = T0 + 320 + CODE_SECS - 1;
    let kids = |jwks: serde_json::Value| -> Vec<String> {
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect()
    };
    let day = 24 * 60 * 60;
    let before = made + 90 * day - 1;
    let n = f
        .svc
        .oidc_key_housekeeping(before, &f.meta, &mut OsRng)
        .await
        .unwrap();
    assert_eq!(n, 0);
    let old = kids(f.svc.oidc_jwks(before).await.unwrap());
    assert_eq!(old.len(), 1);
    let due = made + 90 * day + 1;
    let n = f
        .svc
        .oidc_key_housekeeping(due, &f.meta, &mut OsRng)
        .await
        .unwrap();
    assert_eq!(n, 1);
    // Twice in the same minute (two nodes): replaced once.
    let n = f
        .svc
        .oidc_key_housekeeping(due, &f.meta, &mut OsRng)
        .await
        .unwrap();
    assert_eq!(n, 0);
    let both = kids(f.svc.oidc_jwks(due).await.unwrap());
    assert_eq!(both.len(), 2, "{both:?}");
    assert!(both.contains(&old[0]));
    let gone = due + RETIRED_KEY_SECS;
    f.svc
        .oidc_key_housekeeping(gone, &f.meta, &mut OsRng)
        .await
        .unwrap();
    let now_kids = kids(f.svc.oidc_jwks(gone).await.unwrap());
    assert_eq!(now_kids.len(), 1, "{now_kids:?}");
    assert!(!now_kids.contains(&old[0]));
}

fn new_client(name: &str, uris: Vec<String>, public: bool, groups: &[&str]) -> NewClient {
    NewClient {
        name: name.into(),
        redirect_uris: uris,
        post_logout_redirect_uris: vec![],
        public,
        trusted: true,
        require: RequireFactor::TwoFactor,
        allowed_users: vec![],
        allowed_groups: groups.iter().map(|g| g.to_string()).collect(),
        alg: "ES256".into(),
    }
}

#[tokio::test]
async fn authorization_requests_are_checked_and_every_limit_holds() {
    use mamori_server::domain::oidc::{AuthorizeRefusal, MAX_CLIENTS, MAX_REDIRECT_URIS};
    use mamori_server::Error;
    let f = fixture(RequireMfa::All).await;
    let create = |n: NewClient| {
        let f = &f;
        async move {
            f.svc
                .oidc_create_client(n, "root", T0, &f.meta, &mut OsRng)
                .await
        }
    };

    // Registration: bad input is one clear error and registers nothing.
    let many: Vec<String> = (0..=MAX_REDIRECT_URIS)
        .map(|i| format!("https://rp.example/cb{i}"))
        .collect();
    let err = create(new_client("many", many.clone(), false, &[]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    create(new_client(
        "ten",
        many[..MAX_REDIRECT_URIS].to_vec(),
        false,
        &[],
    ))
    .await
    .unwrap();
    for bad in [
        "http://rp.example/cb",
        "https://rp.example/cb#f",
        "https://*.rp.example/cb",
    ] {
        let err = create(new_client("bad", vec![bad.into()], false, &[]))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{bad}: {err}");
    }
    let mut hs = new_client("hs", vec![REDIRECT.into()], false, &[]);
    hs.alg = "HS256".into();
    let err = create(hs).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    let err = create(new_client("bad name", vec![REDIRECT.into()], false, &[]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    assert_eq!(f.svc.oidc_clients().await.unwrap().len(), 1);

    let c = create(new_client("app", vec![REDIRECT.into()], false, &[]))
        .await
        .unwrap();
    let public = create(new_client("cli", vec![REDIRECT.into()], true, &[]))
        .await
        .unwrap();
    assert!(public.secret.is_none());
    // `q` names everything but the client, redirect URI and state.
    let check = |client_id: &str, q: &str| {
        let q = format!("client_id={client_id}&redirect_uri={REDIRECT}&state=s&{q}");
        let f = &f;
        async move {
            let p = AuthorizeParams::from_query(&q).unwrap();
            f.svc.oidc_check_authorize(&p).await.map(|_| ())
        }
    };
    let told = |r: Result<(), AuthorizeRefusal>| match r {
        Err(AuthorizeRefusal::Redirect(to)) => {
            assert!(to.starts_with(REDIRECT), "{to}");
            let q: Vec<(String, String)> = url::Url::parse(&to)
                .unwrap()
                .query_pairs()
                .into_owned()
                .collect();
            assert!(q.contains(&("state".into(), "s".into())), "{to}");
            assert!(
                q.contains(&("iss".into(), "https://mfa.example".into())),
                "{to}"
            );
            q.into_iter().find(|(k, _)| k == "error").unwrap().1
        }
        other => panic!("expected a redirect with an error, got {other:?}"),
    };
    // Unknown client, unknown or missing redirect URI: an error page, never a redirect.
    let page = |r: Result<(), AuthorizeRefusal>| matches!(r, Err(AuthorizeRefusal::ErrorPage(_)));
    assert!(page(check("nope", "response_type=code&scope=openid").await));
    for q in [
        format!(
            "response_type=code&scope=openid&client_id={}&redirect_uri=https://evil.example/cb",
            c.client.id
        ),
        format!("response_type=code&scope=openid&client_id={}", c.client.id),
    ] {
        let p = AuthorizeParams::from_query(&q).unwrap();
        assert!(
            page(f.svc.oidc_check_authorize(&p).await.map(|_| ())),
            "{q}"
        );
    }
    // A known client and URI: the client is told what is wrong.
    let id = c.client.id.as_str();
    let ok = "response_type=code&scope=openid";
    assert!(check(id, ok).await.is_ok());
    assert_eq!(
        told(check(id, "response_type=token&scope=openid").await),
        "unsupported_response_type"
    );
    assert_eq!(
        told(check(id, "response_type=code&scope=profile").await),
        "invalid_scope"
    );
    assert_eq!(
        told(
            check(
                id,
                &format!("{ok}&code_challenge={CHALLENGE}&code_challenge_method=plain")
            )
            .await
        ),
        "invalid_request"
    );
    assert_eq!(
        told(
            check(
                id,
                &format!("{ok}&code_challenge=short&code_challenge_method=S256")
            )
            .await
        ),
        "invalid_request"
    );
    assert_eq!(
        told(check(id, &format!("{ok}&prompt=none+login")).await),
        "invalid_request"
    );
    assert_eq!(
        told(check(id, &format!("{ok}&max_age=-1")).await),
        "invalid_request"
    );
    assert_eq!(
        told(check(id, &format!("{ok}&response_mode=fragment")).await),
        "invalid_request"
    );
    // state and nonce: 512 characters at most.
    let at_limit = "n".repeat(512);
    assert!(check(id, &format!("{ok}&nonce={at_limit}")).await.is_ok());
    assert_eq!(
        told(check(id, &format!("{ok}&nonce={at_limit}x")).await),
        "invalid_request"
    );
    // A public client must use PKCE.
    let pid = public.client.id.as_str();
    assert_eq!(told(check(pid, ok).await), "invalid_request");
    assert!(check(
        pid,
        &format!("{ok}&code_challenge={CHALLENGE}&code_challenge_method=S256")
    )
    .await
    .is_ok());

    // At most MAX_CLIENTS clients.
    let have = f.svc.oidc_clients().await.unwrap().len();
    for i in have..MAX_CLIENTS {
        create(new_client(
            &format!("c{i}"),
            vec![REDIRECT.into()],
            false,
            &[],
        ))
        .await
        .unwrap();
    }
    let err = create(new_client("one-more", vec![REDIRECT.into()], false, &[]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
}

/// A refresh checks the client's policy again: an account taken out of the client's group
/// gets no new tokens, and the grant ends.
#[tokio::test]
async fn refresh_rechecks_the_clients_policy() {
    let f = fixture(RequireMfa::All).await;
    let secret = f.root_with_device().await;
    let token = f.root_signed_in(&secret, T0 + 300).await;
    f.svc
        .add_group("root", "root", "ops", T0 + 300, &f.meta)
        .await
        .unwrap();
    let c = f
        .svc
        .oidc_create_client(
            new_client("ops-app", vec![REDIRECT.into()], false, &["ops"]),
            "root",
            T0,
            &f.meta,
            &mut OsRng,
        )
        .await
        .unwrap();
    let creds = ClientCredentials {
        client_id: Some(c.client.id.clone()),
        secret: c.secret.clone(),
        basic: false,
    };
    let p = AuthorizeParams::from_query(&format!(
        "response_type=code&scope=openid&client_id={}&redirect_uri={REDIRECT}",
        c.client.id
    ))
    .unwrap();
    let req = f.svc.oidc_check_authorize(&p).await.unwrap();
    let auth = f.svc.authenticate(&token, T0 + 310).await.unwrap();
    let AuthorizeStep::Redirect(to) = f
        .svc
        .oidc_authorize(&req, Some(&auth), T0 + 310, &f.meta, &mut OsRng)
        .await
        .unwrap()
    else {
        panic!("a code")
    };
    let code = url::Url::parse(&to)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let t = f
        .svc
        .oidc_token(
            &creds,
            &TokenParams {
                grant_type: Some("authorization_code".into()),
                code: Some(code),
                redirect_uri: Some(REDIRECT.into()),
                ..Default::default()
            },
            T0 + 311,
            &f.meta,
            &mut OsRng,
        )
        .await
        .unwrap();
    let refresh = |rt: String, at: i64| {
        let creds = creds.clone();
        let f = &f;
        async move {
            f.svc
                .oidc_token(
                    &creds,
                    &TokenParams {
                        grant_type: Some("refresh_token".into()),
                        refresh_token: Some(rt),
                        ..Default::default()
                    },
                    at,
                    &f.meta,
                    &mut OsRng,
                )
                .await
        }
    };
    let t2 = refresh(t.refresh_token.to_string(), T0 + 320)
        .await
        .unwrap();
    f.svc
        .remove_group("root", "root", "ops", T0 + 330, &f.meta)
        .await
        .unwrap();
    let err = refresh(t2.refresh_token.to_string(), T0 + 340)
        .await
        .unwrap_err();
    assert!(matches!(err, OidcError::InvalidGrant(_)), "{err}");
    // The grant is over: its access token too.
    assert!(f
        .svc
        .oidc_userinfo(&t2.access_token, T0 + 341)
        .await
        .is_err());
}

/// max_age (OpenID Connect Core §3.1.2.1): a sign-in older than it needs a fresh one, or with
/// prompt=none, login_required.
#[tokio::test]
async fn max_age_asks_for_a_fresh_sign_in() {
    let f = fixture(RequireMfa::All).await;
    let secret = f.root_with_device().await;
    let token = f.root_signed_in(&secret, T0 + 300).await;
    let c = f
        .svc
        .oidc_create_client(
            new_client("app", vec![REDIRECT.into()], false, &[]),
            "root",
            T0,
            &f.meta,
            &mut OsRng,
        )
        .await
        .unwrap();
    let step = |extra: &str, at: i64| {
        let q = format!(
            "response_type=code&scope=openid&client_id={}&redirect_uri={REDIRECT}{extra}",
            c.client.id
        );
        let token = token.clone();
        let f = &f;
        async move {
            let req = f
                .svc
                .oidc_check_authorize(&AuthorizeParams::from_query(&q).unwrap())
                .await
                .unwrap();
            let auth = f.svc.authenticate(&token, at).await.unwrap();
            f.svc
                .oidc_authorize(&req, Some(&auth), at, &f.meta, &mut OsRng)
                .await
                .unwrap()
        }
    };
    // Signed in at T0 + 300.
    assert!(matches!(
        step("&max_age=60", T0 + 350).await,
        AuthorizeStep::Redirect(to) if to.contains("code=")
    ));
    assert_eq!(
        step("&max_age=60", T0 + 361).await,
        AuthorizeStep::SignIn { fresh: true }
    );
    assert!(matches!(
        step("&max_age=60&prompt=none", T0 + 361).await,
        AuthorizeStep::Redirect(to) if to.contains("error=login_required")
    ));
    assert_eq!(
        step("&prompt=login", T0 + 310).await,
        AuthorizeStep::SignIn { fresh: true }
    );
}

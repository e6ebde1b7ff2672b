//! The web console in headless Chromium against the real `mamori-server` binary: the story end
//! to end (setup link → alert → Assign MFA device with the QR image read off the page → two
//! consecutive codes → sign out → password and code), wrong and replayed codes, an
//! administrator deactivating a user's lost device, and the same sign-in in Japanese.
//! Screenshots of each main page, desktop and phone width, land in
//! `target/test-artifacts/console/`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::console_common::*;
use mamori_otp::Secret;
use thirtyfour::prelude::*;

/// Root chooses a password from the printed link, signs in, and assigns a device through the
/// wizard. Returns the secret and the last used time step.
async fn root_with_device(b: &Browser, link: &str) -> (Secret, u64) {
    b.set_password_from_link(link).await;
    b.sign_in_password("root").await;
    assert_eq!(b.path().await, "/");
    let secret = b.start_enrollment("phone").await;
    let last = b.enter_two_codes_behind(&secret).await;
    assert_eq!(b.path().await, "/security?done=mfa_assigned");
    (secret, last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_setup_alert_assign_mfa_sign_out_sign_in_with_code() {
    let srv = Server::start(&[("MAMORI_REQUIRE_MFA", "root")]);
    let link = srv.setup_link();
    with_browser("story", &srv, Options::default(), move |b| async move {
        // The one-time setup link from the server's output.
        b.goto(&link).await;
        assert_eq!(b.h1().await, "Choose your password");
        assert_eq!(b.text("setup-account").await, "root");
        b.shots("setup").await;
        // (A shorter one the browser itself refuses: the field says minlength 15.)
        b.fill("password", "thisismypassword").await;
        b.fill("confirm", "thisismypassword").await;
        b.click("set-password").await;
        assert!(b
            .text("error")
            .await
            .contains("among the most common breached passwords"));
        // The user name is a labelled, read-only field that shows (#15).
        assert!(b.el("username").await.is_displayed().await.unwrap());
        assert_eq!(b.value("username").await, "root");
        b.fill("password", PASSWORD).await;
        b.fill("confirm", PASSWORD).await;
        b.click("set-password").await;
        // Choosing the password signs root in.
        assert_eq!(b.path().await, "/?done=setup_signed_in");
        assert!(b
            .text("notice")
            .await
            .contains("Your password is set and you are signed in."));
        b.sign_out().await;
        b.shots("sign-in").await;

        // Password only: root has no MFA, so the dashboard shows the alert with its fix.
        b.fill("user", "root").await;
        b.fill("password", PASSWORD).await;
        b.click("sign-in").await;
        assert_eq!(b.path().await, "/");
        assert_eq!(b.h1().await, "Dashboard");
        let alert = b
            .driver
            .find(By::Css("ul.alerts li.banner.danger"))
            .await
            .unwrap();
        let text = alert.text().await.unwrap();
        assert!(text.contains("Your root account has no MFA."), "{text}");
        assert!(text.contains("Assign MFA device"), "{text}");
        assert!(b.exists("enroll-required").await);
        b.shots("dashboard-alert").await;
        // Enrollment comes first: other pages lead back here.
        b.goto("/users").await;
        assert_eq!(b.path().await, "/");

        // The alert's action starts the wizard.
        b.click_css("ul.alerts a.button").await;
        assert_eq!(b.path().await, "/security/mfa/new");
        assert_eq!(b.h1().await, "Assign MFA device");
        let key = b.el("kind-key").await;
        assert!(
            key.is_enabled().await.unwrap(),
            "security keys can be chosen (tests/console/webauthn_console.rs)"
        );
        b.shots("wizard-name").await;
        b.fill("name", "phone").await;
        b.click("continue").await;

        // Step 2: the QR image on the page is the only source of the secret.
        let secret = b.secret_from_qr().await;
        let shown = b.el("secret").await;
        assert!(
            !shown.is_displayed().await.unwrap(),
            "the key is hidden until asked for"
        );
        b.driver
            .find(By::Css("#secret-details summary"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        assert_eq!(
            shown.text().await.unwrap().replace(' ', ""),
            secret.to_base32().as_str()
        );
        assert!(b
            .text("wait-hint")
            .await
            .contains("wait for the code to change before typing the second"));
        let code1 = b.el("code1").await;
        assert_eq!(
            code1.attr("autocomplete").await.unwrap().as_deref(),
            Some("one-time-code")
        );
        assert_eq!(
            code1.attr("inputmode").await.unwrap().as_deref(),
            Some("numeric")
        );
        b.shots("wizard-qr").await;
        let mut last = b.enter_two_codes(&secret).await;
        assert_eq!(b.path().await, "/security?done=mfa_assigned");
        assert!(b
            .text("notice")
            .await
            .contains("The MFA device is assigned"));
        let table = b.text("devices").await;
        assert!(
            table.contains("phone") && table.contains("mamori:mfa/root/phone"),
            "{table}"
        );
        assert!(table.contains("Authenticator app"), "{table}");
        b.shots("security").await;

        // The dashboard now warns about a single device only.
        b.goto("/").await;
        let alerts = b.body_text().await;
        assert!(!alerts.contains("has no MFA"), "{alerts}");
        assert!(alerts.contains("only one MFA device"), "{alerts}");
        b.shots("dashboard").await;

        // Administrator pages: users, application keys (shown once), audit log.
        b.goto("/users").await;
        assert!(b.text("users").await.contains("root"));
        b.shots("users").await;
        b.goto("/app-keys").await;
        b.fill("name", "vpn").await;
        b.click("create-key").await;
        assert!(b.text("app-key").await.starts_with("mamori_ak_"));
        b.shots("app-keys").await;
        b.goto("/app-keys").await;
        assert!(!b.exists("app-key").await, "the key is shown only once");
        b.goto("/audit?kind=mfa.").await;
        let audit = b.text("audit").await;
        assert!(
            audit.contains("mfa.enable") && audit.contains("mfa.create"),
            "{audit}"
        );
        assert!(!audit.contains("sign_in.password"), "{audit}");
        b.shots("audit").await;

        // Sign out, then password and a code.
        b.sign_out().await;
        assert!(b.text("notice").await.contains("signed out"));
        b.sign_in_password("root").await;
        assert_eq!(b.path().await, "/sign-in/mfa");
        let c = b.el("code").await;
        assert_eq!(
            c.attr("autocomplete").await.unwrap().as_deref(),
            Some("one-time-code")
        );
        assert_eq!(
            c.attr("inputmode").await.unwrap().as_deref(),
            Some("numeric")
        );
        b.shots("mfa").await;
        b.click("troubleshoot").await;
        assert_eq!(b.h1().await, "Troubleshoot MFA");
        b.shots("troubleshoot").await;
        b.goto("/sign-in/mfa").await;
        b.fill("code", &next_code(&secret, &mut last).await).await;
        b.click("verify").await;
        assert_eq!(b.path().await, "/");
        assert!(b.body_text().await.contains("Signed in as root."));
        b.goto("/security").await;
        assert!(b.text("sessions").await.contains("This session"));

        // A second device ends the lockout risk, and sign-in then offers a choice of device.
        let backup = b.start_enrollment("backup").await;
        let mut last_backup = b.enter_two_codes_behind(&backup).await;
        assert_eq!(b.path().await, "/security?done=mfa_assigned");
        b.goto("/").await;
        // The only alert left is root's missing contacts (#15): the single-device one is gone.
        let alerts = b.body_text().await;
        assert!(
            !alerts.contains("only one") && alerts.contains("Root has no verified email address"),
            "{alerts}"
        );
        b.sign_out().await;
        b.sign_in_password("root").await;
        let options = b
            .el("device")
            .await
            .find_all(By::Tag("option"))
            .await
            .unwrap();
        let mut names = Vec::new();
        for o in &options {
            names.push(o.text().await.unwrap());
        }
        assert_eq!(names[1..], ["phone", "backup"], "{names:?}");
        options[1].click().await.unwrap();
        b.shots("mfa-device-choice").await;
        b.fill("code", &next_code(&secret, &mut last).await).await;
        b.click("verify").await;
        assert_eq!(b.path().await, "/");

        // Removing a device asks for a fresh code first; a wrong one keeps the form.
        b.goto("/security").await;
        b.click_css("#devices tbody tr:nth-child(2) a.danger-link")
            .await;
        assert!(b.path().await.ends_with("/remove"));
        assert!(b.text("confirm-form").await.contains("Remove backup?"));
        b.shots("remove").await;
        b.fill("code", &wrong_code(&backup)).await;
        b.click("confirm").await;
        assert!(b.path().await.ends_with("/remove"));
        assert!(b.text("error").await.contains("wrong or was already used"));
        b.fill("code", &next_code(&backup, &mut last_backup).await)
            .await;
        b.click("confirm").await;
        assert_eq!(b.path().await, "/security?done=mfa_removed");
        let table = b.text("devices").await;
        assert!(
            table.contains("phone") && !table.contains("backup"),
            "{table}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_keep_the_form_and_a_replayed_code_is_refused() {
    let srv = Server::start(&[("MAMORI_REQUIRE_MFA", "root")]);
    let link = srv.setup_link();
    with_browser("codes", &srv, Options::default(), move |b| async move {
        b.set_password_from_link(&link).await;
        b.sign_in_password("root").await;
        let secret = b.start_enrollment("phone").await;
        let t = now();
        // A wrong second code: the error shows, the page keeps the QR code and the codes.
        let c1 = code(&secret, t - 30);
        b.fill("code1", &c1).await;
        b.fill("code2", &wrong_code(&secret)).await;
        b.click("assign").await;
        assert!(b.path().await.ends_with("/enable"));
        assert!(b.text("error").await.contains("wrong or was already used"));
        assert_eq!(b.value("code1").await, c1);
        assert!(b.exists("qr").await);
        assert_eq!(b.secret_from_qr().await.as_bytes(), secret.as_bytes());
        b.shots("enroll-wrong-code").await;
        // Two valid codes that are not consecutive have their own message.
        b.fill("code1", &code(&secret, t - 90)).await;
        b.fill("code2", &code(&secret, t)).await;
        b.click("assign").await;
        assert!(b.text("error").await.contains("not consecutive"));
        // Leaving and starting the wizard again with the same name continues the unfinished
        // setup (same secret) instead of refusing the name.
        b.goto("/").await;
        let again = b.start_enrollment("phone").await;
        assert_eq!(again.as_bytes(), secret.as_bytes());
        let mut last = b.enter_two_codes_behind(&secret).await;
        assert_eq!(b.path().await, "/security?done=mfa_assigned");
        b.sign_out().await;

        // Sign-in with a wrong code: the error, and the code form is still there.
        b.sign_in_password("root").await;
        b.fill("code", &wrong_code(&secret)).await;
        b.click("verify").await;
        assert_eq!(b.path().await, "/sign-in/mfa");
        assert!(b.text("error").await.contains("wrong or was already used"));
        assert!(b.exists("code").await);
        b.shots("mfa-wrong-code").await;
        let good = next_code(&secret, &mut last).await;
        b.fill("code", &good).await;
        b.click("verify").await;
        assert_eq!(b.path().await, "/");
        b.sign_out().await;

        // The same code again is a replay: refused.
        b.sign_in_password("root").await;
        b.fill("code", &good).await;
        b.click("verify").await;
        assert_eq!(b.path().await, "/sign-in/mfa");
        assert!(b.text("error").await.contains("wrong or was already used"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrator_deactivates_a_lost_device_and_the_user_enrolls_again() {
    // Every account must have MFA: a user without a device may only enroll.
    let srv = Server::start(&[("MAMORI_REQUIRE_MFA", "all")]);
    let link = srv.setup_link();
    with_browser("admin", &srv, Options::default(), move |b| async move {
        let (root_secret, mut root_last) = root_with_device(&b, &link).await;

        // The administrator creates alice; her setup link is shown once.
        b.goto("/users").await;
        b.fill("name", "alice").await;
        b.fill("email", "alice@example.com").await;
        b.click("create-user").await;
        let alice_link = b.text("setup-link").await;
        assert!(alice_link.contains("/setup?token="), "{alice_link}");
        let row = b.text("users").await;
        assert!(row.contains("alice") && row.contains("None"), "{row}");
        b.shots("users-created").await;
        // The administrator's dashboard names alice's missing MFA with a way to her page.
        b.goto("/").await;
        let body = b.body_text().await;
        assert!(body.contains("User alice has no MFA."), "{body}");
        b.click_css("ul.alerts a[href='/users/alice']").await;
        assert_eq!(b.path().await, "/users/alice");
        b.sign_out().await;

        // alice chooses a password and must enroll before anything else.
        b.set_password_from_link(&alice_link).await;
        b.sign_in_password("alice").await;
        assert_eq!(b.path().await, "/");
        assert!(b.exists("enroll-required").await);
        assert!(b.body_text().await.contains("Your account has no MFA."));
        let alice_secret = b.start_enrollment("alice-phone").await;
        b.enter_two_codes_behind(&alice_secret).await;
        assert_eq!(b.path().await, "/security?done=mfa_assigned");
        // Not an administrator: the users page says so, and keeps the navigation.
        b.goto("/users").await;
        assert!(b.text("error").await.contains("You may not open this page"));
        b.shots("forbidden").await;
        b.sign_out().await;

        // The administrator sees alice with one device (lockout risk) and deactivates it.
        b.sign_in_password("root").await;
        b.fill("code", &next_code(&root_secret, &mut root_last).await)
            .await;
        b.click("verify").await;
        assert_eq!(b.path().await, "/");
        b.goto("/users").await;
        let risk = b
            .driver
            .find_all(By::Css("#users .tag.warning"))
            .await
            .unwrap();
        assert_eq!(risk.len(), 2, "root and alice have one device each");
        b.goto("/users/alice").await;
        assert!(b.text("devices").await.contains("alice-phone"));
        b.shots("user-detail").await;
        b.click_css("#devices a.danger-link").await;
        assert!(b.path().await.ends_with("/deactivate"));
        b.shots("deactivate").await;
        b.click("confirm").await;
        assert_eq!(b.path().await, "/users/alice?done=device_deactivated");
        assert!(b.exists("no-devices").await);
        b.goto("/audit?account=alice&kind=mfa.delete").await;
        let audit = b.text("audit").await;
        assert!(
            audit.contains("mfa.delete") && audit.contains("root"),
            "{audit}"
        );
        b.sign_out().await;

        // At her next sign-in alice is asked to enroll again.
        b.sign_in_password("alice").await;
        assert_eq!(b.path().await, "/");
        assert!(b.exists("enroll-required").await);
        let again = b.start_enrollment("new-phone").await;
        b.enter_two_codes(&again).await;
        assert_eq!(b.path().await, "/security?done=mfa_assigned");
    })
    .await;
}

/// The console applies the domain's rule for other people's factors (issue #14 item 5): an
/// administrator without MFA of their own (allowed to sign in by `require_mfa = "root"`)
/// cannot deactivate anyone's device, and no administrator can deactivate root's; each page
/// says why, and the devices stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_cannot_deactivate_root_devices_or_act_without_mfa() {
    let srv = Server::start(&[("MAMORI_REQUIRE_MFA", "root")]);
    let link = srv.setup_link();
    with_browser(
        "admin-rules",
        &srv,
        Options::default(),
        move |b| async move {
            let (root_secret, mut root_last) = root_with_device(&b, &link).await;
            // Root makes two administrators, ada and adam, and a user, bea.
            let mut links = Vec::new();
            for (name, admin) in [("ada", true), ("adam", true), ("bea", false)] {
                b.goto("/users").await;
                b.fill("name", name).await;
                if admin {
                    // A checkbox: no page load.
                    b.el("admin").await.click().await.unwrap();
                }
                b.click("create-user").await;
                links.push(b.text("setup-link").await);
            }
            b.sign_out().await;
            // bea enrolls a device; ada too; adam does not (the policy lets him sign in without).
            let mut secrets = Vec::new();
            for (name, l) in [("bea", &links[2]), ("ada", &links[0])] {
                b.set_password_from_link(l).await;
                b.sign_in_password(name).await;
                let secret = b.start_enrollment(&format!("{name}-phone")).await;
                b.enter_two_codes_behind(&secret).await;
                assert_eq!(b.path().await, "/security?done=mfa_assigned");
                secrets.push(secret);
                b.sign_out().await;
            }
            b.set_password_from_link(&links[1]).await;
            b.sign_in_password("adam").await;
            assert_eq!(b.path().await, "/");

            // adam, without MFA, administers nothing (#15): the dashboard leads him to
            // enrollment, and the user pages explain what to do first.
            assert!(b
                .body_text()
                .await
                .contains("You are an administrator without an MFA device"));
            for page in [
                "/users/bea",
                "/users/root",
                "/users/bea/devices/x/deactivate",
            ] {
                b.goto(page).await;
                let text = b.body_text().await;
                assert!(
                    text.contains("Administrators must assign an MFA device of their own"),
                    "{page}: {text}"
                );
            }
            b.shots("admin-without-mfa").await;
            b.sign_out().await;

            // ada has MFA and a fresh code: bea's device may go, root's may not.
            b.sign_in_password("ada").await;
            let ada = &secrets[1];
            let mut ada_last = 0;
            b.fill("code", &next_code(ada, &mut ada_last).await).await;
            b.click("verify").await;
            assert_eq!(b.path().await, "/");
            b.goto("/users/root").await;
            b.click_css("#devices a.danger-link").await;
            b.click("confirm").await;
            let page = b.text("error").await;
            assert!(page.contains("root's alone"), "{page}");
            b.shots("deactivate-root").await;
            b.goto("/users/root").await;
            assert!(b.text("devices").await.contains("phone"));
            b.goto("/users/bea").await;
            b.click_css("#devices a.danger-link").await;
            b.click("confirm").await;
            assert_eq!(b.path().await, "/users/bea?done=device_deactivated");
            b.sign_out().await;

            // Root's audit shows ada's refusal of root's device; adam's attempts were refused
            // before they reached any device, as an administrator without MFA.
            b.sign_in_password("root").await;
            b.fill("code", &next_code(&root_secret, &mut root_last).await)
                .await;
            b.click("verify").await;
            b.goto("/audit?account=root&kind=mfa.delete").await;
            let audit = b.text("audit").await;
            assert!(audit.contains("refused_root"), "{audit}");
            assert!(audit.contains("ada"), "{audit}");
            b.goto("/audit?account=adam").await;
            let audit = b.text("audit").await;
            assert!(audit.contains("admin.without_mfa"), "{audit}");
        },
    )
    .await;
}

/// Sets root up and enrolls a device over the JSON API; returns the secret, the last used
/// time step and the API session's token (a second session of root).
async fn root_via_api(srv: &Server) -> (Secret, u64, String) {
    let http = reqwest::Client::new();
    let token = srv.setup_link().split("token=").nth(1).unwrap().to_string();
    let r = http
        .post(format!("{}/api/v1/setup", srv.url))
        .json(&serde_json::json!({"token": token, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = http
        .post(format!("{}/api/v1/sign-in", srv.url))
        .json(&serde_json::json!({"user": "root", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session = v["token"].as_str().unwrap().to_string();
    let v: serde_json::Value = http
        .post(format!("{}/api/v1/mfa-devices/virtual", srv.url))
        .bearer_auth(&session)
        .json(&serde_json::json!({"name": "phone"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = Secret::from_base32(v["secret_base32"].as_str().unwrap()).unwrap();
    // Codes of the two steps before the current one (a phone one step behind), so that the
    // current step's code signs in at once.
    let t = step_start_time().await - 30;
    let r = http
        .post(format!(
            "{}/api/v1/mfa-devices/{}/enable",
            srv.url,
            v["id"].as_str().unwrap()
        ))
        .bearer_auth(&session)
        .json(&serde_json::json!({"code1": code(&secret, t - 30), "code2": code(&secret, t)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    (secret, t / 30, v["token"].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_sign_in_in_japanese() {
    let srv = Server::start(&[("MAMORI_REQUIRE_MFA", "root")]);
    let (secret, mut last, api_token) = root_via_api(&srv).await;
    let url = srv.url.clone();
    let opts = Options {
        accept_language: "ja,en;q=0.5",
        ..Default::default()
    };
    with_browser("japanese", &srv, opts, move |b| async move {
        // Accept-Language chooses Japanese.
        b.goto("/sign-in").await;
        assert_eq!(b.html_lang().await, "ja");
        assert_eq!(b.h1().await, "サインイン");
        // The switcher changes the language and is remembered.
        b.click("lang-en").await;
        assert_eq!(b.path().await, "/sign-in");
        assert_eq!(b.html_lang().await, "en");
        assert_eq!(b.h1().await, "Sign in");
        b.goto("/sign-in").await;
        assert_eq!(b.h1().await, "Sign in", "the choice is remembered");
        b.click("lang-ja").await;
        assert_eq!(b.h1().await, "サインイン");
        b.shots("sign-in-ja").await;

        // Wrong password, then the right one and a code, all in Japanese.
        b.fill("user", "root").await;
        b.fill("password", "wrong-password-123").await;
        b.click("sign-in").await;
        assert_eq!(
            b.text("error").await,
            "ユーザー名またはパスワードが正しくありません。"
        );
        b.fill("password", PASSWORD).await;
        b.click("sign-in").await;
        assert_eq!(b.path().await, "/sign-in/mfa");
        assert_eq!(b.h1().await, "多要素認証");
        assert_eq!(b.text("troubleshoot").await, "MFA のトラブルシューティング");
        b.shots("mfa-ja").await;
        b.fill("code", &next_code(&secret, &mut last).await).await;
        b.click("verify").await;
        assert_eq!(b.path().await, "/");
        assert_eq!(b.h1().await, "ダッシュボード");
        let body = b.body_text().await;
        assert!(body.contains("root としてサインインしています。"), "{body}");
        assert!(body.contains("MFA デバイスが 1 台だけです"), "{body}");
        b.shots("dashboard-ja").await;
        b.goto("/security").await;
        assert_eq!(b.h1().await, "セキュリティ認証情報");
        b.shots("security-ja").await;

        // The API session is listed next to this one and can be signed out from here.
        let sessions = b.text("sessions").await;
        assert!(sessions.contains("このセッション"), "{sessions}");
        b.click_css("#sessions button").await;
        assert_eq!(b.path().await, "/security?done=session_revoked");
        assert_eq!(
            b.text("notice").await,
            "そのセッションをサインアウトしました。"
        );
        let left = b
            .driver
            .find_all(By::Css("#sessions button"))
            .await
            .unwrap();
        assert!(left.is_empty(), "only this session is left");
        let r = reqwest::Client::new()
            .get(format!("{url}/api/v1/me"))
            .bearer_auth(&api_token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "the revoked session no longer works");
    })
    .await;
}

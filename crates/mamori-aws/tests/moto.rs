//! mamori-aws against moto, the AWS emulator, started on a loopback port (a real HTTP server
//! speaking the IAM and STS query protocols; the SDK reaches it through AWS_ENDPOINT_URL), with
//! users, keys and a role made by the real AWS CLI.
//!
//! moto accepts any MFA code: it never checks a code against the seed it handed out. So a
//! passing call proves nothing about the codes, and each test also reads what was sent on the
//! wire (a recording relay sits between the SDK and moto) and checks it against codes computed
//! independently from the seed moto itself reports (`ListVirtualMFADevices` returns it in
//! moto), at the time steps the enrolment used.
//!
//! One test function: the SDK reads its configuration from the process environment, which the
//! test sets once; parallel tests in this binary would race on it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use mamori_aws::enroll::{enroll, Steps};
use mamori_aws::{credentials, Aws, AwsError};
use mamori_otp::Secret;
use mamori_testkit::moto::{aws_cli, user_with_key, virtual_device_seed, Moto, Recorder};

/// The enrolment's vault and clock, in memory: the clock is a variable so the test knows the
/// steps (the real wait is the CLI test's).
struct MemSteps {
    now: u64,
    waited_until: Option<u64>,
    stored: Option<(String, Secret)>,
    forgotten: Vec<String>,
    fail_store: bool,
}

impl MemSteps {
    fn at(now: u64) -> Self {
        MemSteps {
            now,
            waited_until: None,
            stored: None,
            forgotten: Vec::new(),
            fail_store: false,
        }
    }
}

impl Steps for MemSteps {
    fn store_seed(&mut self, serial: &str, seed: &Secret) -> Result<(), AwsError> {
        if self.fail_store {
            return Err(AwsError::Vault(
                "the vault cannot be written (injected)".into(),
            ));
        }
        self.stored = Some((serial.to_string(), seed.clone()));
        Ok(())
    }
    fn forget_seed(&mut self, serial: &str) -> Result<(), AwsError> {
        self.forgotten.push(serial.to_string());
        Ok(())
    }
    fn now(&mut self) -> u64 {
        self.now
    }
    fn wait_until(&mut self, at: u64) {
        self.waited_until = Some(at);
        self.now = self.now.max(at);
    }
}

fn device_names(aws: &Aws) -> Vec<String> {
    aws.list_virtual_mfa_devices()
        .unwrap()
        .into_iter()
        .map(|d| d.serial)
        .collect()
}

#[test]
fn enrolment_sessions_rollback_and_account_facts_against_moto() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let moto = Moto::start(&home.join("moto.log"));
    let rec = Recorder::start(moto.port());
    let (key_id, secret) = user_with_key(&moto.endpoint(), home, "alice");
    aws_cli(
        &moto.endpoint(),
        home,
        &[
            "iam",
            "create-role",
            "--role-name",
            "Admin",
            "--assume-role-policy-document",
            "{}",
        ],
    );
    let serial = "arn:aws:iam::123456789012:mfa/alice";
    std::fs::write(
        home.join("config"),
        format!(
            "[profile alice]\nregion = us-east-1\n\n[profile admin]\nrole_arn = arn:aws:iam::123456789012:role/Admin\nsource_profile = alice\nmfa_serial = {serial}\n\n[profile nokeys]\nregion = us-east-1\n"
        ),
    )
    .unwrap();
    std::fs::write(
        home.join("credentials"),
        format!("[alice]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"),
    )
    .unwrap();
    // Edition 2021: set_var is safe; nothing else runs in this binary (one test).
    std::env::set_var("HOME", home);
    std::env::set_var("AWS_CONFIG_FILE", home.join("config"));
    std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", home.join("credentials"));
    std::env::set_var("AWS_ENDPOINT_URL", rec.endpoint());
    for v in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    ] {
        std::env::remove_var(v);
    }

    let aws = Aws::connect(credentials::read(Some("alice")).unwrap()).unwrap();
    assert_eq!(aws.get_user(None).unwrap().name, "alice");

    // Enrolment: the two codes are those of consecutive steps, the second after waiting for it.
    let now = 1_796_000_010;
    let mut steps = MemSteps::at(now);
    let done = enroll(&aws, "alice", "alice", &mut steps).unwrap();
    assert_eq!(done.serial, serial);
    assert_eq!(done.steps, (now / 30, now / 30 + 1));
    assert_eq!(steps.waited_until, Some((now / 30 + 1) * 30));
    let seed = virtual_device_seed(&moto.endpoint(), home, serial);
    let (stored_serial, stored) = steps.stored.take().unwrap();
    assert_eq!(stored_serial, serial);
    assert_eq!(
        stored.to_base32().as_str(),
        seed,
        "the vault gets the seed AWS holds"
    );
    let first = mamori_testkit::code(&seed, (now / 30) * 30);
    let second = mamori_testkit::code(&seed, (now / 30 + 1) * 30);
    assert_ne!(first, second);
    assert_eq!(rec.form_values("AuthenticationCode1"), [first.as_str()]);
    assert_eq!(rec.form_values("AuthenticationCode2"), [second.as_str()]);
    assert_eq!(
        rec.form_values("UserName").last().map(String::as_str),
        Some("alice")
    );

    let devices = aws.list_mfa_devices(None).unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(
        (devices[0].serial.as_str(), devices[0].user.as_str()),
        (serial, "alice")
    );

    // GetSessionToken with the device and a code; what was sent is what we gave.
    rec.clear();
    let code = mamori_testkit::code(&seed, now + 60);
    let creds = aws.get_session_token(serial, &code, 3600).unwrap();
    assert!(!creds.access_key_id.is_empty() && !creds.session_token.is_empty());
    assert!(creds.expiration > 0);
    assert_eq!(rec.form_values("TokenCode"), [code.as_str()]);
    assert_eq!(rec.form_values("SerialNumber"), [serial]);
    assert_eq!(rec.form_values("DurationSeconds"), ["3600"]);

    // AssumeRole with MFA for a role profile, signed with its source profile's keys.
    rec.clear();
    let admin = credentials::read(Some("admin")).unwrap();
    assert_eq!(admin.credentials_profile(), "alice");
    let role = Aws::connect(admin.clone()).unwrap();
    let creds = role
        .assume_role(
            admin.role_arn.as_deref().unwrap(),
            "mamori-test",
            serial,
            &code,
            900,
        )
        .unwrap();
    assert!(!creds.access_key_id.is_empty());
    assert_eq!(rec.form_values("Action"), ["AssumeRole"]);
    assert_eq!(
        rec.form_values("RoleArn"),
        ["arn:aws:iam::123456789012:role/Admin"]
    );
    assert_eq!(rec.form_values("TokenCode"), [code]);

    // A second device of the same name is refused before anything is created.
    let err = enroll(&aws, "alice", "alice", &mut MemSteps::at(now)).unwrap_err();
    assert!(matches!(err, AwsError::DeviceExists(_)), "{err:?}");

    // Failure after creation, before the seed is kept: the device is deleted again.
    let mut failing = MemSteps::at(now);
    failing.fail_store = true;
    let err = enroll(&aws, "alice", "second", &mut failing).unwrap_err();
    assert!(matches!(err, AwsError::RolledBack { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("the vault cannot be written (injected)"),
        "{err}"
    );
    assert!(err.to_string().contains("was removed again"), "{err}");
    assert!(failing.forgotten.is_empty());
    assert_eq!(device_names(&aws), [serial]);

    // Failure at enabling (no such user), after the seed was kept: device and seed go.
    let mut ghost = MemSteps::at(now);
    let err = enroll(&aws, "ghost", "ghost-device", &mut ghost).unwrap_err();
    let AwsError::RolledBack {
        serial: removed,
        cause,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(removed, "arn:aws:iam::123456789012:mfa/ghost-device");
    assert!(
        matches!(**cause, AwsError::Service { ref code, .. } if code == "NoSuchEntity"),
        "{cause:?}"
    );
    assert_eq!(ghost.forgotten, [removed.as_str()]);
    assert_eq!(device_names(&aws), [serial]);

    // The account facts `review aws` reads.
    let report = aws.credential_report().unwrap();
    let parsed = mamori_review::credential_report::parse(&report).unwrap();
    let alice = parsed
        .users
        .iter()
        .find(|u| u.user == "alice")
        .expect("alice in the report");
    assert!(alice.mfa_active);
    let summary = aws.account_summary().unwrap();
    assert_eq!(summary.get("MFADevices"), Some(&1));
    assert!(summary.contains_key("AccountMFAEnabled"));
    let virtual_devices = aws.list_virtual_mfa_devices().unwrap();
    assert_eq!(
        virtual_devices[0].user_arn.as_deref(),
        Some("arn:aws:iam::123456789012:user/alice")
    );

    // The errors people hit.
    let err = Aws::connect(credentials::read(Some("nokeys")).unwrap()).unwrap_err();
    assert!(matches!(err, AwsError::NoCredentials { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("no AWS credentials for profile nokeys"),
        "{err}"
    );
    let err = credentials::read(Some("absent")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "there is no AWS profile \"absent\" in the AWS config or credentials files"
    );
}

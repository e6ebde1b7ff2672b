//! `mamori aws …` and `mamori review aws` end to end: the real binary against moto (the AWS
//! emulator, on a loopback port, reached through AWS_ENDPOINT_URL) and the real AWS CLI reading
//! `credential_process` output.
//!
//! moto accepts any MFA code (it never checks one against the seed it handed out), so a passing
//! call proves nothing about the codes. Every code mamori sends is therefore also read off the
//! wire, through a recording relay between mamori and moto, and compared with codes computed
//! independently (mamori-otp via mamori-testkit) from the seed moto reports for the device.

use std::process::{Command, Stdio};

use mamori_testkit::moto::{aws_cli, user_with_key, virtual_device_seed, Moto, Recorder};

use crate::support::{output_within, Out, Sandbox};

const SERIAL: &str = "arn:aws:iam::123456789012:mfa/alice";

/// A sandbox with a vault, moto with IAM user alice and her access key, and ~/.aws files.
struct World {
    sb: Sandbox,
    moto: Moto,
    rec: Recorder,
}

impl World {
    fn new(extra_config: &str) -> World {
        let sb = Sandbox::new();
        sb.init();
        let moto = Moto::start(&sb.path("moto.log"));
        let rec = Recorder::start(moto.port());
        let (id, secret) = user_with_key(&moto.endpoint(), sb.dir.path(), "alice");
        let aws_dir = sb.path(".aws");
        std::fs::create_dir_all(&aws_dir).unwrap();
        std::fs::write(
            aws_dir.join("config"),
            format!("[profile alice]\nregion = us-east-1\n\n[profile nokeys]\nregion = us-east-1\n\n{extra_config}"),
        )
        .unwrap();
        std::fs::write(
            aws_dir.join("credentials"),
            format!("[alice]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n"),
        )
        .unwrap();
        World { sb, moto, rec }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.sb.cmd(args);
        c.env("AWS_ENDPOINT_URL", self.rec.endpoint());
        c
    }

    fn run(&self, args: &[&str]) -> Out {
        output_within(&mut self.cmd(args)).into()
    }

    fn aws(&self, args: &[&str]) -> String {
        aws_cli(&self.moto.endpoint(), self.sb.dir.path(), args)
    }

    fn moto_seed(&self, serial: &str) -> String {
        virtual_device_seed(&self.moto.endpoint(), self.sb.dir.path(), serial)
    }

    fn enroll(&self) -> (u64, u64) {
        let before = mamori_testkit::now();
        let out = self
            .run(&["aws", "mfa", "enroll", "--profile", "alice"])
            .ok();
        let after = mamori_testkit::now();
        assert_eq!(
            out.stdout,
            format!("Enabled {SERIAL} for IAM user alice.\n")
        );
        assert!(
            out.stderr.contains(
                "Kept the seed in the vault as \"Amazon Web Services:alice@123456789012\"."
            ),
            "{}",
            out.stderr
        );
        (before, after)
    }
}

/// The step (Unix time / 30) in `from..=to` whose code is `code`, if any.
fn step_of(seed: &str, code: &str, from: u64, to: u64) -> Option<u64> {
    (from / 30..=to / 30).find(|s| mamori_testkit::code(seed, s * 30) == code)
}

#[test]
fn enroll_list_session_exec_review_and_the_aws_cli() {
    let bin = env!("CARGO_BIN_EXE_mamori");
    let w = World::new(&format!(
        "[profile mfa]\nregion = us-east-1\ncredential_process = {bin} aws session --profile alice --credential-process\n\n[profile admin]\nrole_arn = arn:aws:iam::123456789012:role/Admin\nsource_profile = alice\nmfa_serial = {SERIAL}\nduration_seconds = 1800\n"
    ));
    w.aws(&[
        "iam",
        "create-role",
        "--role-name",
        "Admin",
        "--assume-role-policy-document",
        "{}",
    ]);
    let (before, after) = w.enroll();

    // The two codes sent are the seed's codes for two consecutive steps within the run.
    let seed = w.moto_seed(SERIAL);
    let c1 = w.rec.form_values("AuthenticationCode1");
    let c2 = w.rec.form_values("AuthenticationCode2");
    assert_eq!((c1.len(), c2.len()), (1, 1));
    let s1 = step_of(&seed, &c1[0], before, after).expect("code 1 is the seed's");
    assert_eq!(
        mamori_testkit::code(&seed, (s1 + 1) * 30),
        c2[0],
        "code 2 is the next step's"
    );
    // And the vault holds that seed: its code at a fixed time is moto's seed's.
    let out = w
        .run(&["code", "Amazon Web Services", "--at", "1796000000"])
        .ok();
    assert_eq!(
        out.stdout.trim(),
        mamori_testkit::code(&seed, 1_796_000_000)
    );

    let out = w.run(&["aws", "mfa", "list", "--profile", "alice"]).ok();
    assert_eq!(
        out.stdout,
        format!("{SERIAL}\talice\tvault: Amazon Web Services (alice@123456789012)\n")
    );

    // credential_process JSON; the device is found without mfa_serial; the code is right.
    w.rec.clear();
    let t0 = mamori_testkit::now();
    let out = w
        .run(&[
            "aws",
            "session",
            "--profile",
            "alice",
            "--credential-process",
        ])
        .ok();
    let t1 = mamori_testkit::now();
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["Version"], 1);
    let key = json["AccessKeyId"].as_str().unwrap().to_string();
    let secret = json["SecretAccessKey"].as_str().unwrap().to_string();
    let token = json["SessionToken"].as_str().unwrap().to_string();
    assert!(json["Expiration"].as_str().unwrap().ends_with('Z'));
    assert_eq!(w.rec.form_values("SerialNumber"), [SERIAL]);
    let sent = w.rec.form_values("TokenCode");
    assert_eq!(sent.len(), 1);
    assert!(
        step_of(&seed, &sent[0], t0, t1 + 3).is_some(),
        "the session code is the seed's"
    );

    // Cached, sealed under the vault key: the second call asks STS nothing.
    w.rec.clear();
    let again = w
        .run(&[
            "aws",
            "session",
            "--profile",
            "alice",
            "--credential-process",
        ])
        .ok();
    assert_eq!(again.stdout, out.stdout);
    assert!(
        w.rec.form_values("Action").is_empty(),
        "{:?}",
        w.rec.form_values("Action")
    );
    let cache = std::fs::read(w.sb.path("vault.mamori.aws")).unwrap();
    let text = String::from_utf8_lossy(&cache);
    assert!(!text.contains(&secret) && !text.contains(&key));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(w.sb.path("vault.mamori.aws"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let out = w
        .run(&["aws", "session", "--profile", "alice", "--export"])
        .ok();
    assert!(
        out.stdout
            .contains(&format!("export AWS_ACCESS_KEY_ID='{key}'\n")),
        "{}",
        out.stdout
    );
    assert!(out
        .stdout
        .contains(&format!("export AWS_SESSION_TOKEN='{token}'\n")));
    let out = w.run(&["aws", "session", "--profile", "alice"]).ok();
    assert!(
        !out.stdout.contains(&secret),
        "the plain mode prints no secret"
    );

    // exec: the credentials in the child's environment, the profile's region, its exit status.
    let out = w
        .run(&[
            "aws",
            "exec",
            "--profile",
            "alice",
            "--",
            "sh",
            "-c",
            "printf '%s %s %s' \"$AWS_ACCESS_KEY_ID\" \"$AWS_SESSION_TOKEN\" \"$AWS_REGION\"",
        ])
        .ok();
    assert_eq!(out.stdout, format!("{key} {token} us-east-1"));
    let out = w.run(&[
        "aws",
        "exec",
        "--profile",
        "alice",
        "--",
        "sh",
        "-c",
        "exit 7",
    ]);
    assert_eq!(out.code, 7);

    // A role profile: AssumeRole with the device, a right code and the profile's duration.
    w.rec.clear();
    let t0 = mamori_testkit::now();
    let out = w
        .run(&[
            "aws",
            "session",
            "--profile",
            "admin",
            "--credential-process",
        ])
        .ok();
    let t1 = mamori_testkit::now();
    assert!(out.stdout.contains("\"Version\": 1"), "{}", out.stdout);
    assert_eq!(w.rec.form_values("Action"), ["AssumeRole"]);
    assert_eq!(
        w.rec.form_values("RoleArn"),
        ["arn:aws:iam::123456789012:role/Admin"]
    );
    assert_eq!(w.rec.form_values("SerialNumber"), [SERIAL]);
    assert_eq!(w.rec.form_values("DurationSeconds"), ["1800"]);
    let sent = w.rec.form_values("TokenCode");
    assert!(step_of(&seed, &sent[0], t0, t1 + 3).is_some());

    // The real AWS CLI runs `mamori aws session --credential-process` itself.
    let aws = Command::new("aws")
        .args([
            "sts",
            "get-caller-identity",
            "--profile",
            "mfa",
            "--endpoint-url",
        ])
        .arg(w.moto.endpoint())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", w.sb.dir.path())
        .env("MAMORI_VAULT", &w.sb.vault)
        .env("MAMORI_PASSWORD_FILE", &w.sb.password_file)
        .env("MAMORI_TEST_KDF", "fast")
        .env("XDG_RUNTIME_DIR", &w.sb.runtime)
        .env("AWS_ENDPOINT_URL", w.rec.endpoint())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        aws.status.success(),
        "aws sts get-caller-identity: {}",
        String::from_utf8_lossy(&aws.stderr)
    );
    let id: serde_json::Value = serde_json::from_slice(&aws.stdout).unwrap();
    assert_eq!(id["Account"], "123456789012");

    // review aws: moto's account has no root MFA, so a high-severity check fails (exit 1).
    let out = w.run(&["review", "aws", "--profile", "alice"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.stderr, "mamori: a high-severity check failed\n");
    assert!(
        out.stdout.contains(
            "FAIL  [high] The account summary says the root user has MFA  (AWS-ACCOUNT-MFA)"
        ),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(
        "PASS  [low] Every virtual MFA device is assigned to a user  (AWS-UNASSIGNED-MFA)"
    ));
    let out = w.run(&["review", "aws", "--profile", "alice", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let ids: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"CR-USER-MFA") && ids.contains(&"AWS-ACCOUNT-ACCESS-KEYS"),
        "{ids:?}"
    );
}

#[test]
fn enroll_removes_the_device_and_the_seed_when_enabling_fails() {
    let w = World::new("");
    // IAM creates a virtual device for nobody in particular; enabling it for a user that does
    // not exist fails after creation, the failure to recover from.
    let out = w.run(&[
        "aws",
        "mfa",
        "enroll",
        "--profile",
        "alice",
        "--user",
        "ghost",
    ]);
    assert_eq!(out.code, 1);
    // Progress lines (the seed kept, the wait) come first; the error is one line, the last.
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("mamori:"))
        .collect();
    assert_eq!(errors.len(), 1, "{}", out.stderr);
    assert_eq!(out.stderr.lines().last(), Some(errors[0]));
    assert!(
        errors[0].starts_with("mamori: AWS EnableMFADevice failed: NoSuchEntity"),
        "{}",
        out.stderr
    );
    assert!(errors[0].ends_with("; the new device arn:aws:iam::123456789012:mfa/ghost was removed again and nothing was kept"), "{}", out.stderr);
    let list: serde_json::Value =
        serde_json::from_str(&w.aws(&["iam", "list-virtual-mfa-devices"])).unwrap();
    assert_eq!(list["VirtualMFADevices"], serde_json::json!([]));
    let out = w.run(&["list"]).ok();
    assert!(
        !out.stdout.contains("Amazon Web Services"),
        "{}",
        out.stdout
    );
}

#[test]
fn the_errors_people_hit_are_one_line() {
    let w = World::new(&format!("[profile pinned]\nmfa_serial = {SERIAL}\n"));
    // `pinned` has alice's keys and names her device, whose seed is in no vault entry.
    let creds = std::fs::read_to_string(w.sb.path(".aws/credentials")).unwrap();
    let both = format!("{creds}\n{}", creds.replace("[alice]", "[pinned]"));
    std::fs::write(w.sb.path(".aws/credentials"), both).unwrap();
    let out = w.run(&["aws", "session", "--profile", "alice"]).fails();
    assert_eq!(out.stderr, "mamori: profile alice has no mfa_serial and its IAM user has no MFA device: run `mamori aws mfa enroll`, or add mfa_serial to the profile\n");
    let out = w.run(&["aws", "session", "--profile", "pinned"]).fails();
    assert!(
        out.stderr.starts_with(&format!(
            "mamori: no vault entry holds the seed of {SERIAL}: "
        )),
        "{}",
        out.stderr
    );
    let out = w.run(&["aws", "session", "--profile", "nokeys"]).fails();
    assert!(
        out.stderr
            .starts_with("mamori: no AWS credentials for profile nokeys: "),
        "{}",
        out.stderr
    );
    let out = w
        .run(&["aws", "session", "--profile", "alice", "--duration", "37h"])
        .fails();
    assert_eq!(
        out.stderr,
        "mamori: --duration 37h is outside what GetSessionToken accepts: 15m to 36h\n"
    );
    let out = w.run(&["aws", "session", "--profile", "absent"]).fails();
    assert_eq!(
        out.stderr,
        "mamori: there is no AWS profile \"absent\" in the AWS config or credentials files\n"
    );
}

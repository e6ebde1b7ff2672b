//! `mamori aws …` and `mamori review aws` (#20): argument handling, the vault, the countdown and
//! printing around `mamori-aws`, which holds the rules (which entry, which device, how long,
//! what is cached).

use std::io::{IsTerminal, Write};
use std::process::Command as Process;

use anyhow::{bail, Context};
use mamori_aws::cache::{self, Cache};
use mamori_aws::credentials::{self, Profile};
use mamori_aws::sts::{parse_duration, SessionCredentials, SessionKind};
use mamori_aws::{enroll, vault as aws_vault, Aws, AwsError};
use mamori_otp::{Generator, Secret};
use mamori_vault::{Opened, Unlock, VaultFile};
use uuid::Uuid;

use super::session::{self, rng};
use super::{now_unix, review};
use crate::cli::{
    AwsCommand, AwsEnrollArgs, AwsExecArgs, AwsListArgs, AwsMfaCommand, AwsSessionArgs, GlobalArgs,
    ReviewAwsArgs,
};

pub fn run(g: &GlobalArgs, cmd: AwsCommand) -> anyhow::Result<()> {
    match cmd {
        AwsCommand::Mfa(AwsMfaCommand::Enroll(args)) => enroll_device(g, args),
        AwsCommand::Mfa(AwsMfaCommand::List(args)) => list(g, args),
        AwsCommand::Session(args) => session_cmd(g, args),
        AwsCommand::Exec(args) => exec(g, args),
    }
}

/// The vault, opened (the agent's key or the password).
fn open_vault(g: &GlobalArgs) -> anyhow::Result<(VaultFile, Unlock, Opened)> {
    let vf = session::vault_file(g)?;
    let unlock = session::unlock(g, &vf)?;
    let opened = vf.open(&unlock)?;
    Ok((vf, unlock, opened))
}

/// The enrolment's vault, clock and countdown.
struct CliSteps<'a> {
    vf: &'a VaultFile,
    unlock: &'a Unlock,
    account: String,
    entry: Option<Uuid>,
}

impl enroll::Steps for CliSteps<'_> {
    fn store_seed(&mut self, serial: &str, seed: &Secret) -> Result<(), AwsError> {
        let new = aws_vault::new_entry(serial, &self.account, seed);
        let now = now_unix().map_err(|e| AwsError::Vault(e.to_string()))?;
        let mut r = rng();
        let (id, _) = self
            .vf
            .update(self.unlock, &mut rng(), |v| {
                v.add(new, &mut r, now).map(|e| e.id)
            })
            .map_err(|e| AwsError::Vault(format!("cannot keep the seed in the vault: {e}")))?;
        self.entry = Some(id);
        eprintln!(
            "Kept the seed in the vault as \"{}:{}\".",
            aws_vault::ISSUER,
            self.account
        );
        Ok(())
    }

    fn forget_seed(&mut self, _serial: &str) -> Result<(), AwsError> {
        let Some(id) = self.entry.take() else {
            return Ok(());
        };
        self.vf
            .update(self.unlock, &mut rng(), |v| v.remove(id).map(|_| ()))
            .map(|_| ())
            .map_err(|e| AwsError::Vault(e.to_string()))
    }

    fn now(&mut self) -> u64 {
        now_unix().unwrap_or(0)
    }

    fn wait_until(&mut self, at: u64) {
        countdown(at, "for the next code");
    }
}

/// Sleeps until Unix time `at`, counting down on a terminal (one line otherwise).
fn countdown(at: u64, what: &str) {
    let mut err = std::io::stderr();
    let tty = err.is_terminal();
    let left = at.saturating_sub(now_unix().unwrap_or(at));
    if !tty && left > 0 {
        let _ = writeln!(err, "Waiting {left} s {what} (codes change every 30 s)…");
    }
    loop {
        let now = now_unix().unwrap_or(at);
        if now >= at {
            break;
        }
        if tty {
            let _ = write!(err, "\rWaiting {what}: {:>2} s ", at - now);
            let _ = err.flush();
        }
        // Wake at the second boundary so the count and the end are on time.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        std::thread::sleep(std::time::Duration::from_nanos(u64::from(
            1_000_000_000 - nanos.min(999_999_999),
        )));
    }
    if tty {
        let _ = writeln!(err, "\rWaiting {what}: done ");
    }
}

fn enroll_device(g: &GlobalArgs, args: AwsEnrollArgs) -> anyhow::Result<()> {
    // The vault first: a wrong password must stop us before anything exists in IAM.
    let (vf, unlock, _) = open_vault(g)?;
    let aws = Aws::connect(credentials::read(args.profile.as_deref())?)?;
    let user = match args.user {
        Some(u) => u,
        None => aws.get_user(None)?.name,
    };
    let (account_id, _) = aws.caller_identity()?;
    let alias = aws.account_alias()?;
    let account = aws_vault::entry_account(&user, alias.as_deref(), &account_id);
    let name = args.name.unwrap_or_else(|| user.clone());
    let mut steps = CliSteps {
        vf: &vf,
        unlock: &unlock,
        account,
        entry: None,
    };
    let done = enroll::enroll(&aws, &user, &name, &mut steps)?;
    println!("Enabled {} for IAM user {}.", done.serial, done.user);
    eprintln!(
        "mamori aws session finds it by itself; or add `mfa_serial = {}` to the profile.",
        done.serial
    );
    Ok(())
}

fn list(g: &GlobalArgs, args: AwsListArgs) -> anyhow::Result<()> {
    let (_, _, opened) = open_vault(g)?;
    let aws = Aws::connect(credentials::read(args.profile.as_deref())?)?;
    let devices = aws.list_mfa_devices(args.user.as_deref())?;
    if devices.is_empty() {
        eprintln!("The IAM user has no MFA device; add one with `mamori aws mfa enroll`.");
        return Ok(());
    }
    for d in &devices {
        let held = aws_vault::entries_for(opened.vault.entries(), &d.serial);
        let entry = match held.as_slice() {
            [] => "not in the vault".to_string(),
            many => many
                .iter()
                .map(|e| format!("vault: {}", e.display_name()))
                .collect::<Vec<_>>()
                .join(", "),
        };
        println!("{}\t{}\t{}", d.serial, d.user, entry);
    }
    Ok(())
}

/// Session credentials for `profile`: from the cache, else from STS with a code from the vault.
fn credentials_for(
    g: &GlobalArgs,
    profile_name: Option<&str>,
    duration: Option<&str>,
) -> anyhow::Result<SessionCredentials> {
    let profile = credentials::read(profile_name)?;
    let kind = if profile.role_arn.is_some() {
        SessionKind::AssumeRole
    } else {
        SessionKind::SessionToken
    };
    let secs = match (duration, profile.duration_seconds) {
        (Some(d), _) => parse_duration(d, kind)?,
        (None, Some(s)) => parse_duration(&s.to_string(), kind)?,
        (None, None) => kind.default_secs(),
    };
    let (vf, _, opened) = open_vault(g)?;
    let cache = Cache::new(vf.path(), opened.key.as_bytes());
    let cache_key = cache::session_key(
        &profile.name,
        profile.mfa_serial.as_deref().unwrap_or("(found)"),
        profile.role_arn.as_deref(),
        secs,
    );
    let now = now_unix()? as i64;
    if let Some(c) = cache.get(&cache_key, now) {
        return Ok(c);
    }
    let creds = fresh(&profile, &opened, secs)?;
    // A cache that cannot be written costs a code next time, not this session.
    if let Err(e) = cache.put(&cache_key, &creds, now, &mut rng()) {
        eprintln!("mamori: warning: {e}");
    }
    Ok(creds)
}

fn fresh(profile: &Profile, opened: &Opened, secs: u32) -> anyhow::Result<SessionCredentials> {
    let aws = Aws::connect(profile.clone())?;
    let serial = match &profile.mfa_serial {
        Some(s) => s.clone(),
        None => aws_vault::pick_device(
            &aws.list_mfa_devices(None)?,
            opened.vault.entries(),
            &profile.name,
        )?,
    };
    let entry = aws_vault::entry_for(opened.vault.entries(), &serial)?;
    let generator = Generator::new(entry.secret(), entry.params)
        .with_context(|| format!("the vault entry {} cannot make codes", entry.display_name()))?;
    // A code with under three seconds left may expire on the way: wait for the next one.
    let mut now = now_unix()?;
    if generator.seconds_left(now) < 3 {
        countdown(now + generator.seconds_left(now), "for a fresh code");
        now = now_unix()?;
    }
    let code = generator.at_time(now);
    let creds = match &profile.role_arn {
        Some(role) => {
            let name = profile
                .role_session_name
                .clone()
                .unwrap_or_else(|| format!("mamori-{now}"));
            aws.assume_role(role, &name, &serial, code.as_str(), secs)?
        }
        None => aws.get_session_token(&serial, code.as_str(), secs)?,
    };
    Ok(creds)
}

fn session_cmd(g: &GlobalArgs, args: AwsSessionArgs) -> anyhow::Result<()> {
    let creds = credentials_for(g, args.profile.as_deref(), args.duration.as_deref())?;
    let mut out = std::io::stdout().lock();
    if args.credential_process {
        writeln!(out, "{}", creds.credential_process_json().as_str())?;
    } else if args.export {
        write!(out, "{}", creds.export_lines().as_str())?;
    } else {
        writeln!(
            out,
            "Session {} valid until {} (use --export, --credential-process or `mamori aws exec`).",
            creds.access_key_id,
            creds.expiration_rfc3339()
        )?;
    }
    Ok(())
}

fn exec(g: &GlobalArgs, args: AwsExecArgs) -> anyhow::Result<()> {
    let creds = credentials_for(g, args.profile.as_deref(), args.duration.as_deref())?;
    let region = credentials::read(args.profile.as_deref())?.region;
    let Some((program, rest)) = args.command.split_first() else {
        bail!("no command to run; give it after --");
    };
    let mut cmd = Process::new(program);
    cmd.args(rest)
        // A profile in the environment would make AWS tools prefer it to these credentials.
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_DEFAULT_PROFILE");
    for (k, v) in creds.env() {
        cmd.env(k, v.as_str());
    }
    // The profile's region goes along, as the profile itself no longer does.
    let has_region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .any(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()));
    if let (Some(r), false) = (region, has_region) {
        cmd.env("AWS_REGION", &r).env("AWS_DEFAULT_REGION", &r);
    }
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {}", program.to_string_lossy()))?;
    drop(creds);
    // The command's own status is ours (128 + N for a signal, as shells report it).
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    std::process::exit(code);
}

pub fn review(args: ReviewAwsArgs) -> anyhow::Result<()> {
    let aws = Aws::connect(credentials::read(args.profile.as_deref())?)?;
    let bytes = aws.credential_report()?;
    let report = mamori_review::credential_report::parse(&bytes)
        .context("AWS's credential report is not valid")?;
    if report.users.is_empty() {
        bail!("AWS's credential report has a header but no users");
    }
    let facts = mamori_review::account::AccountFacts {
        summary: aws.account_summary()?,
        virtual_devices: aws
            .list_virtual_mfa_devices()?
            .into_iter()
            .map(|d| mamori_review::account::VirtualDevice {
                serial: d.serial,
                user_arn: d.user_arn,
            })
            .collect(),
    };
    let options = mamori_review::credential_report::Options {
        root_use_days: args.root_use_days,
    };
    let r =
        mamori_review::account::review(&report, &facts, time::OffsetDateTime::now_utc(), &options);
    review::finish(&r, report.users.len(), args.json)
}

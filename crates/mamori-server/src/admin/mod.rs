//! The admin command line's logic: works on the database and key file directly (no running
//! server needed), acts as `admin-cli` in the audit log, prints to the given writer.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use rand::rngs::OsRng;

mod command;
pub use command::AdminCommand;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::domain::accounts::NewUser;
use crate::domain::appkeys::{AppKeyPermissions, AppKeyRef};
use crate::domain::{Request, RequestMeta, Service};
use crate::error::{Error, Result};
use crate::store::{AuditFilter, DeviceKind, Role};
use crate::web::wire::audit_wire;

const ACTOR: &str = "admin-cli";

fn io(e: std::io::Error) -> Error {
    Error::Internal(format!("cannot write output: {e}"))
}

/// The provider-style MFA column: the kinds of enabled devices, or "Not enabled".
pub fn mfa_column(kinds: &[DeviceKind]) -> String {
    if kinds.is_empty() {
        return "Not enabled".into();
    }
    let label = |k: DeviceKind| match k {
        DeviceKind::Virtual => "Virtual",
        DeviceKind::SecurityKey => "Security key",
        DeviceKind::HardwareOtp => "Hardware",
    };
    let mut parts: Vec<String> = Vec::new();
    for k in [
        DeviceKind::Virtual,
        DeviceKind::SecurityKey,
        DeviceKind::HardwareOtp,
    ] {
        let n = kinds.iter().filter(|x| **x == k).count();
        match n {
            0 => {}
            1 => parts.push(label(k).into()),
            n => parts.push(format!("{} x{n}", label(k))),
        }
    }
    parts.join(", ")
}

fn time_text(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

/// Writes a table: every column but the last padded to its widest cell (in characters), one
/// space between columns, no trailing spaces.
pub fn write_table(out: &mut dyn Write, headers: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let last = cells.len().saturating_sub(1);
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(cell);
            if i < last {
                s.extend(std::iter::repeat_n(
                    ' ',
                    w.saturating_sub(cell.chars().count()),
                ));
            }
        }
        s.trim_end().to_string()
    };
    writeln!(out, "{}", line(headers.to_vec())).map_err(io)?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect())).map_err(io)?;
    }
    Ok(())
}

/// Runs one admin command.
pub async fn run(config: &Config, cmd: AdminCommand, out: &mut dyn Write) -> Result<()> {
    // #15 delivery: these only talk to the mail server or phone gateway, so they work before
    // any database exists (and never create one or the server key).
    match cmd {
        AdminCommand::TestEmail { address } => return test_email(config, &address, out).await,
        AdminCommand::TestPhone { number, voice } => {
            return test_phone(config, &number, voice, out).await
        }
        // Restore works before a service exists on the data directory (opening one would
        // create the database it is about to restore).
        AdminCommand::Restore { file, key, force } => {
            return restore(config, out, file, key, force).await
        }
        _ => {}
    }
    let public_url = config.admin_public_url();
    // #22: the review judges the certificate the server serves, read from where the server
    // reads it (0, a certificate that cannot be read, leaves the check not applicable).
    let expiry = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let mut svc = crate::server::open_service(config, public_url).await?;
    if config.tls.enabled() {
        svc = svc.with_served_certificate(expiry.clone());
    }
    let svc = std::sync::Arc::new(svc);
    if let Some(t) = crate::http::acme::configured_expiry(config, &svc).await {
        expiry.store(t, std::sync::atomic::Ordering::Relaxed);
    }
    let result = run_with(&svc, &SystemClock, cmd, out).await;
    // A command that tells the account (reset-mfa's notice) sends in the background; the
    // process must not exit before it is sent, and `close` waits for it (#21).
    svc.close().await;
    result
}

/// What every command on an open service needs.
struct Cx<'a> {
    svc: &'a Service,
    clock: &'a dyn Clock,
    meta: RequestMeta,
}

impl Cx<'_> {
    /// The domain's view of a step of the command, decided now.
    fn req(&self) -> Request<'_> {
        Request::new(self.clock.now(), &self.meta)
    }
}

/// Runs one admin command on an open service: one function per command below.
pub async fn run_with(
    svc: &Service,
    clock: &dyn Clock,
    cmd: AdminCommand,
    out: &mut dyn Write,
) -> Result<()> {
    let cx = &Cx {
        svc,
        clock,
        meta: RequestMeta::cli(),
    };
    match cmd {
        AdminCommand::CreateUser {
            name,
            role,
            email,
            phone,
        } => create_user(cx, out, name, role, email, phone).await,
        AdminCommand::ListUsers { json } => list_users(cx, out, json).await,
        AdminCommand::ResetMfa { user } => reset_mfa(cx, out, user).await,
        AdminCommand::AddGroup { user, group } => add_group(cx, out, user, group).await,
        AdminCommand::RemoveGroup { user, group } => remove_group(cx, out, user, group).await,
        AdminCommand::ListGroups { user } => list_groups(cx, out, user).await,
        AdminCommand::CreateAppKey {
            name,
            allow_root,
            allow_no_device,
        } => {
            let permissions = AppKeyPermissions {
                allow_root,
                allow_no_device,
            };
            create_app_key(cx, out, name, permissions).await
        }
        AdminCommand::ListAppKeys { json } => list_app_keys(cx, out, json).await,
        AdminCommand::CreateClient {
            name,
            redirect_uris,
            post_logout_redirect_uris,
            public,
            trusted,
            require,
            allow_users,
            allow_groups,
            alg,
        } => {
            let new = crate::domain::oidc::NewClient {
                name,
                redirect_uris,
                post_logout_redirect_uris,
                public,
                trusted,
                require: crate::domain::oidc::RequireFactor::parse(&require)?,
                allowed_users: allow_users,
                allowed_groups: allow_groups,
                alg,
            };
            create_client(cx, out, new).await
        }
        AdminCommand::ListClients { json } => list_clients(cx, out, json).await,
        AdminCommand::RotateClientSecret { name } => rotate_client_secret(cx, out, name).await,
        AdminCommand::DeleteClient { name } => {
            cx.svc
                .oidc_delete_client(&name, ACTOR, cx.clock.now(), &cx.meta)
                .await?;
            writeln!(out, "deleted client {name} with its tokens and consents").map_err(io)?;
            Ok(())
        }
        AdminCommand::RotateOidcKeys => {
            let done = cx
                .svc
                .oidc_rotate_keys(Some(ACTOR), None, cx.clock.now(), &cx.meta, &mut OsRng)
                .await?;
            if done.is_empty() {
                writeln!(
                    out,
                    "no signing key yet: one is made when the first ID token is signed"
                )
                .map_err(io)?;
            }
            for (alg, old, new) in done {
                writeln!(out, "{alg}: {old} replaced by {new}").map_err(io)?;
            }
            Ok(())
        }
        AdminCommand::RevokeAppKey { key } => revoke_app_key(cx, out, key).await,
        AdminCommand::Review { json } => review(cx, out, json).await,
        AdminCommand::Audit {
            follow,
            user,
            kind,
            after,
        } => audit(cx, out, follow, user, kind, after).await,
        AdminCommand::SetContacts {
            user,
            email,
            phone,
            verified,
        } => set_contacts(cx, out, user, email, phone, verified).await,
        AdminCommand::SetupRoot => setup_root(cx, out).await,
        AdminCommand::RecoverRoot => recover_root(cx, out).await,
        AdminCommand::ImportTokens {
            file,
            psk,
            password_file,
            format,
        } => import_tokens(cx, out, file, psk, password_file, format).await,
        AdminCommand::ListTokens { json } => list_tokens(cx, out, json).await,
        AdminCommand::Backup { file, no_key } => backup(cx, out, file, no_key).await,
        // Handled by `run` without opening the database.
        AdminCommand::TestEmail { .. }
        | AdminCommand::TestPhone { .. }
        | AdminCommand::Restore { .. } => Err(Error::Internal(
            "test-email, test-phone and restore do not run on an open service".into(),
        )),
    }
}

/// `admin backup`: the database copy and, unless left out, the key beside it. Both names are
/// checked before anything is written so that a refusal leaves no file behind.
async fn backup(cx: &Cx<'_>, out: &mut dyn Write, file: PathBuf, no_key: bool) -> Result<()> {
    let key = (!no_key).then(|| crate::backup::key_path_for(&file));
    for path in std::iter::once(&file).chain(key.as_ref()) {
        if path.exists() {
            return Err(Error::Conflict(format!(
                "{} already exists: choose a new file name",
                path.display()
            )));
        }
    }
    cx.svc
        .backup(ACTOR, cx.req(), &file, key.as_deref())
        .await?;
    writeln!(out, "database copied to {}", file.display()).map_err(io)?;
    match key {
        Some(k) => writeln!(
            out,
            "server key copied to {} (keep it as safe as server.key: with it the copy's OTP \
             seeds can be read)",
            k.display()
        ),
        None => writeln!(
            out,
            "server key not copied: the copy restores OTP seeds only with this server's \
             server.key"
        ),
    }
    .map_err(io)
}

/// `admin restore`: into the configured SQLite database of this data directory.
async fn restore(
    config: &Config,
    out: &mut dyn Write,
    file: PathBuf,
    key: Option<PathBuf>,
    force: bool,
) -> Result<()> {
    let url = config.database_url();
    let Some(database) = url.strip_prefix("sqlite://") else {
        return Err(Error::InvalidInput(
            "admin restore restores SQLite databases only: restore PostgreSQL with \
             `pg_restore --clean --if-exists --dbname=DATABASE_URL mamori.dump` and put the \
             backup's server key in the data directory (docs/server.md)"
                .into(),
        ));
    };
    let data_dir = config.data_dir();
    let done = crate::backup::restore_sqlite(&crate::backup::RestoreRequest {
        backup: &file,
        key: key.as_deref(),
        data_dir: &data_dir,
        database: std::path::Path::new(database),
        force,
    })
    .await?;
    writeln!(
        out,
        "restored {} into {} (server key checked: {}{})",
        file.display(),
        database,
        done.key_source.display(),
        if done.key_written {
            ", written to the data directory"
        } else {
            ""
        }
    )
    .map_err(io)
}

/// `admin create-user`: the account and its one-time setup link.
async fn create_user(
    cx: &Cx<'_>,
    out: &mut dyn Write,
    name: String,
    role: String,
    email: Option<String>,
    phone: Option<String>,
) -> Result<()> {
    let role = Role::parse(&role)?;
    let (account, link) = cx
        .svc
        .create_user(
            ACTOR,
            NewUser {
                name: &name,
                role,
                email: email.as_deref(),
                phone: phone.as_deref(),
            },
            cx.req(),
            &mut OsRng,
        )
        .await?;
    writeln!(
        out,
        "created user {} ({}); setup link (valid 1 hour): {}",
        account.name,
        account.role.as_str(),
        link.as_str()
    )
    .map_err(io)?;
    Ok(())
}

/// `admin list-users`: a table whose columns fit their widest value, or JSON lines.
async fn list_users(cx: &Cx<'_>, out: &mut dyn Write, json: bool) -> Result<()> {
    let users = cx.svc.list_users().await?;
    // The table is printed once every row is known: its columns are as wide as their
    // widest value ("Virtual x2, Security key, Hardware" included).
    let mut rows: Vec<Vec<String>> = Vec::new();
    for u in users {
        let kinds: Vec<DeviceKind> = cx
            .svc
            .enabled_devices(&u.account)
            .await?
            .iter()
            .map(|d| d.kind)
            .collect();
        let mfa = mfa_column(&kinds);
        let a = &u.account;
        if json {
            let v = serde_json::json!({
                "user": a.name,
                "role": a.role.as_str(),
                "mfa": mfa,
                "mfa_devices": u.enabled_devices,
                "password_enabled": a.password_hash.is_some(),
                "locked": a.locked_at.is_some(),
                "created_at": a.created_at,
            });
            writeln!(out, "{v}").map_err(io)?;
        } else {
            rows.push(vec![
                a.name.clone(),
                a.role.as_str().to_string(),
                mfa,
                if a.password_hash.is_some() {
                    "yes"
                } else {
                    "no"
                }
                .to_string(),
                if a.locked_at.is_some() { "yes" } else { "no" }.to_string(),
                time_text(a.created_at),
            ]);
        }
    }
    if !json {
        write_table(
            out,
            &["USER", "ROLE", "MFA", "PASSWORD", "LOCKED", "CREATED"],
            &rows,
        )?;
    }
    Ok(())
}

/// `admin reset-mfa`.
async fn reset_mfa(cx: &Cx<'_>, out: &mut dyn Write, user: String) -> Result<()> {
    let n = cx
        .svc
        .reset_mfa(ACTOR, &user, cx.clock.now(), &cx.meta)
        .await?;
    writeln!(
        out,
        "removed {n} MFA devices of {user}, unlocked the account and ended its sessions"
    )
    .map_err(io)?;
    Ok(())
}

/// `admin add-group` (#18).
async fn add_group(cx: &Cx<'_>, out: &mut dyn Write, user: String, group: String) -> Result<()> {
    let added = cx
        .svc
        .add_group(ACTOR, &user, &group, cx.clock.now(), &cx.meta)
        .await?;
    let msg = if added {
        format!("{user} is now in group {group}")
    } else {
        format!("{user} was already in group {group}")
    };
    writeln!(out, "{msg}").map_err(io)?;
    Ok(())
}

/// `admin remove-group` (#18).
async fn remove_group(cx: &Cx<'_>, out: &mut dyn Write, user: String, group: String) -> Result<()> {
    cx.svc
        .remove_group(ACTOR, &user, &group, cx.clock.now(), &cx.meta)
        .await?;
    writeln!(out, "{user} is no longer in group {group}").map_err(io)?;
    Ok(())
}

/// `admin list-groups` (#18): one group per line, nothing for none.
async fn list_groups(cx: &Cx<'_>, out: &mut dyn Write, user: String) -> Result<()> {
    let account = cx.svc.account(&user).await?;
    for g in cx.svc.groups_of(&account).await? {
        writeln!(out, "{g}").map_err(io)?;
    }
    Ok(())
}

/// The lines a new secret is printed with (shown once).
fn print_client(out: &mut dyn Write, created: &crate::domain::oidc::ClientCreated) -> Result<()> {
    let c = &created.client;
    writeln!(out, "client {}", c.name).map_err(io)?;
    writeln!(out, "client_id: {}", c.id).map_err(io)?;
    match &created.secret {
        Some(s) => writeln!(
            out,
            "client_secret: {} (shown once; client_secret_basic or client_secret_post)",
            s.as_str()
        )
        .map_err(io)?,
        None => writeln!(out, "public client: no secret; PKCE (S256) is required").map_err(io)?,
    }
    Ok(())
}

/// `admin create-client` (#17).
async fn create_client(
    cx: &Cx<'_>,
    out: &mut dyn Write,
    new: crate::domain::oidc::NewClient,
) -> Result<()> {
    let created = cx
        .svc
        .oidc_create_client(new, ACTOR, cx.clock.now(), &cx.meta, &mut OsRng)
        .await?;
    print_client(out, &created)?;
    writeln!(
        out,
        "issuer (discovery at ISSUER/.well-known/openid-configuration): {}",
        cx.svc.oidc_issuer()
    )
    .map_err(io)?;
    Ok(())
}

/// `admin rotate-client-secret` (#17).
async fn rotate_client_secret(cx: &Cx<'_>, out: &mut dyn Write, name: String) -> Result<()> {
    let created = cx
        .svc
        .oidc_rotate_client_secret(&name, ACTOR, cx.clock.now(), &cx.meta, &mut OsRng)
        .await?;
    print_client(out, &created)
}

/// `admin list-clients` (#17): a table, or one JSON object per line; never a secret.
async fn list_clients(cx: &Cx<'_>, out: &mut dyn Write, json: bool) -> Result<()> {
    for c in cx.svc.oidc_clients().await? {
        if json {
            let v = serde_json::json!({
                "name": c.name,
                "client_id": c.id,
                "public": c.secret_hash.is_none(),
                "trusted": c.trusted,
                "require": c.require_factor,
                "redirect_uris": c.redirect_uris,
                "post_logout_redirect_uris": c.post_logout_redirect_uris,
                "allowed_users": c.allowed_users,
                "allowed_groups": c.allowed_groups,
                "alg": c.alg,
            });
            writeln!(out, "{v}").map_err(io)?;
        } else {
            writeln!(
                out,
                "{}\t{}\t{}\t{}\t{}\t{}",
                c.name,
                c.id,
                if c.secret_hash.is_none() {
                    "public"
                } else {
                    "confidential"
                },
                if c.trusted { "trusted" } else { "consent" },
                c.require_factor,
                c.redirect_uris.join(" ")
            )
            .map_err(io)?;
        }
    }
    Ok(())
}

/// `admin create-app-key`: the key is printed once.
async fn create_app_key(
    cx: &Cx<'_>,
    out: &mut dyn Write,
    name: String,
    permissions: AppKeyPermissions,
) -> Result<()> {
    let (record, key) = cx
        .svc
        .new_app_key(
            ACTOR,
            &name,
            permissions,
            cx.clock.now(),
            &mut OsRng,
            &cx.meta,
        )
        .await?;
    writeln!(
        out,
        "application key for {}{} (id {}; shown once; send as 'Authorization: Bearer \
             KEY'):\n{}",
        record.name,
        match (record.allow_root, record.allow_no_device) {
            (false, false) => "",
            (true, false) => ", allowed to validate root",
            (false, true) => ", allowed to tell accounts without MFA devices",
            (true, true) => ", allowed to validate root and to tell accounts without MFA devices",
        },
        record.id,
        key.as_str()
    )
    .map_err(io)?;
    Ok(())
}

/// `admin list-app-keys`.
async fn list_app_keys(cx: &Cx<'_>, out: &mut dyn Write, json: bool) -> Result<()> {
    if !json {
        writeln!(
            out,
            "{:<36} {:<24} {:<5} {:<9} {:<16} {:<20} REVOKED",
            "ID", "NAME", "ROOT", "NO-DEVICE", "CREATED BY", "CREATED"
        )
        .map_err(io)?;
    }
    for k in cx.svc.list_app_keys().await? {
        if json {
            let v = serde_json::json!({
                "id": k.id,
                "name": k.name,
                "allow_root": k.allow_root,
                "allow_no_device": k.allow_no_device,
                "created_at": k.created_at,
                "created_by": k.created_by,
                "revoked_at": k.revoked_at,
            });
            writeln!(out, "{v}").map_err(io)?;
        } else {
            writeln!(
                out,
                "{:<36} {:<24} {:<5} {:<9} {:<16} {:<20} {}",
                k.id,
                k.name,
                if k.allow_root { "yes" } else { "no" },
                if k.allow_no_device { "yes" } else { "no" },
                k.created_by.as_deref().unwrap_or("-"),
                time_text(k.created_at),
                k.revoked_at.map_or_else(|| "-".to_string(), time_text)
            )
            .map_err(io)?;
        }
    }
    Ok(())
}

/// `admin revoke-app-key`.
async fn revoke_app_key(cx: &Cx<'_>, out: &mut dyn Write, key: String) -> Result<()> {
    let k = cx
        .svc
        .revoke_app_key(ACTOR, AppKeyRef::IdOrName(&key), cx.clock.now(), &cx.meta)
        .await?;
    writeln!(
        out,
        "revoked application key {} ({}); a running server refuses it within {} seconds",
        k.name,
        k.id,
        crate::domain::appkeys::APP_KEY_TTL_SECS
    )
    .map_err(io)?;
    Ok(())
}

/// `admin review`: the deployment's security review; fails on a high-severity failure.
async fn review(cx: &Cx<'_>, out: &mut dyn Write, json: bool) -> Result<()> {
    let now = cx.clock.now();
    let review = cx.svc.security_review(now).await?;
    let wire = crate::web::wire::review_wire(&review, now);
    if json {
        let text = serde_json::to_string_pretty(&wire)
            .map_err(|e| Error::Internal(format!("cannot encode the review: {e}")))?;
        writeln!(out, "{text}").map_err(io)?;
    } else {
        for f in &wire.findings {
            // The deployment's checks are never undecidable, but may not apply (e.g.
            // recovery delivery when that recovery is off): `SKIP`, with the reason.
            let mark = match f.outcome.as_str() {
                "pass" => "PASS",
                "fail" => "FAIL",
                "not_applicable" => "SKIP",
                _ => "N/A ",
            };
            writeln!(out, "{mark}  [{}] {}  ({})", f.severity, f.title, f.id).map_err(io)?;
            for a in &f.affected {
                writeln!(out, "        - {a}").map_err(io)?;
            }
            if f.outcome != "pass" {
                let link = f
                    .link
                    .as_deref()
                    .map(|l| format!(" ({l})"))
                    .unwrap_or_default();
                let label = if f.outcome == "fail" { "fix" } else { "why" };
                writeln!(out, "        {label}: {}{link}", f.remedy).map_err(io)?;
            }
        }
        let (pass, fail, undecided, not_applicable) = review.counts();
        writeln!(
            out,
            "{pass} passed, {fail} failed, {undecided} undecidable, \
                 {not_applicable} not applicable"
        )
        .map_err(io)?;
    }
    if review.has_high_failure() {
        return Err(Error::ReviewFailed);
    }
    Ok(())
}

/// `admin audit`: JSON lines, pages of 1000, `--follow` polls.
async fn audit(
    cx: &Cx<'_>,
    out: &mut dyn Write,
    follow: bool,
    user: Option<String>,
    kind: Option<String>,
    after: Option<i64>,
) -> Result<()> {
    let mut after = after.unwrap_or(0);
    loop {
        let page = cx
            .svc
            .audit_events(&AuditFilter {
                account: user.clone(),
                kind: kind.clone(),
                after: Some(after),
                limit: 1000,
            })
            .await?;
        let full = page.len() == 1000;
        for r in page {
            after = r.id;
            let line = serde_json::to_string(&audit_wire(r))
                .map_err(|e| Error::Internal(e.to_string()))?;
            writeln!(out, "{line}").map_err(io)?;
        }
        out.flush().map_err(io)?;
        if full {
            continue;
        }
        if !follow {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

/// `admin set-contacts` (#15 contacts).
async fn set_contacts(
    cx: &Cx<'_>,
    out: &mut dyn Write,
    user: String,
    email: Option<String>,
    phone: Option<String>,
    verified: bool,
) -> Result<()> {
    let account = cx
        .svc
        .admin_set_contacts(
            ACTOR,
            &user,
            email.as_deref(),
            phone.as_deref(),
            verified,
            cx.req(),
        )
        .await?;
    let state = if verified {
        "verified"
    } else {
        "unverified: the user proves them with a code in the console (My security \
             credentials)"
    };
    writeln!(
        out,
        "contacts of {}: email {}, phone {} ({state})",
        account.name,
        account.email.as_deref().unwrap_or("-"),
        account.phone.as_deref().unwrap_or("-"),
    )
    .map_err(io)?;
    Ok(())
}

/// `admin setup-root`: a new root setup link.
async fn setup_root(cx: &Cx<'_>, out: &mut dyn Write) -> Result<()> {
    let link = cx.svc.root_setup_link(cx.clock.now(), &mut OsRng).await?;
    writeln!(out, "root setup link (valid 1 hour): {}", link.as_str()).map_err(io)?;
    Ok(())
}

/// `admin recover-root`: the last resort for root.
async fn recover_root(cx: &Cx<'_>, out: &mut dyn Write) -> Result<()> {
    let link = cx.svc.recover_root(cx.clock.now(), &mut OsRng).await?;
    writeln!(
        out,
        "WARNING: root's MFA devices and recovery codes were removed and its sessions \
             ended (audited as account.recover_root; root is notified by email).\n\
             root recovery link (valid 1 hour; root must assign an MFA device at the next \
             sign-in): {}",
        link.as_str()
    )
    .map_err(io)?;
    Ok(())
}

/// `admin import-tokens`: a vendor seed file.
async fn import_tokens(
    cx: &Cx<'_>,
    out: &mut dyn Write,
    file: PathBuf,
    psk: Option<String>,
    password_file: Option<PathBuf>,
    format: Option<String>,
) -> Result<()> {
    let (bytes, format, key) =
        crate::seed_file::read_token_file(&file, psk, password_file, format)?;
    let s = cx
        .svc
        .import_tokens(ACTOR, &bytes, format, &key, cx.req(), &mut OsRng)
        .await?;
    writeln!(
        out,
        "imported {} tokens ({} HOTP, {} TOTP) from {}",
        s.imported,
        s.hotp,
        s.totp,
        file.display()
    )
    .map_err(io)?;
    Ok(())
}

/// `admin list-tokens`: pages of 1000 by serial.
async fn list_tokens(cx: &Cx<'_>, out: &mut dyn Write, json: bool) -> Result<()> {
    if !json {
        writeln!(
            out,
            "{:<20} {:<4} {:<6} {:<20} {:<24} ASSIGNED TO",
            "SERIAL", "TYPE", "DIGITS", "MANUFACTURER", "MODEL"
        )
        .map_err(io)?;
    }
    let mut after: Option<String> = None;
    loop {
        let page = cx.svc.list_tokens(after.as_deref(), 1000).await?;
        let full = page.len() == 1000;
        for l in page {
            let t = &l.token;
            if json {
                let v = serde_json::json!({
                    "serial": t.serial,
                    "type": t.otp_type,
                    "algorithm": t.algorithm,
                    "digits": t.digits,
                    "period": (t.otp_type == "totp").then_some(t.period),
                    "counter": (t.otp_type == "hotp").then_some(t.counter),
                    "manufacturer": t.manufacturer,
                    "model": t.model,
                    "imported_at": t.imported_at,
                    "assigned_to": l.assigned_to,
                    "device_name": l.device_name,
                });
                writeln!(out, "{v}").map_err(io)?;
            } else {
                writeln!(
                    out,
                    "{:<20} {:<4} {:<6} {:<20} {:<24} {}",
                    t.serial,
                    t.otp_type.to_uppercase(),
                    t.digits,
                    t.manufacturer.as_deref().unwrap_or("-"),
                    t.model.as_deref().unwrap_or("-"),
                    l.assigned_to.as_deref().unwrap_or("-")
                )
                .map_err(io)?;
            }
            after = Some(t.serial.clone());
        }
        if !full {
            break;
        }
    }
    Ok(())
}

// #15 delivery
/// How long a test send may take in all (connection, TLS, every SMTP step or the webhook's
/// answer): generous, since an operator is waiting for a verdict, not a user for a code.
const TEST_SEND_BOUND: Duration = Duration::from_secs(30);

/// Sends with [`TEST_SEND_BOUND`]; `Err(reason class)` when it did not go out.
async fn send_bounded(
    send: impl std::future::Future<Output = Result<()>>,
) -> std::result::Result<(), &'static str> {
    match tokio::time::timeout(TEST_SEND_BOUND, send).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(crate::domain::delivery::reason_class(&e)),
        Err(_) => Err("timeout"),
    }
}

/// `admin test-email ADDRESS`: one message through the configured SMTP server, one line of
/// outcome. A failure is [`Error::TestDeliveryFailed`] with the reason class only: the
/// transport's error text may echo the SMTP user or a server's reply.
pub async fn test_email(config: &Config, address: &str, out: &mut dyn Write) -> Result<()> {
    use crate::domain::delivery::{email_route, mask_contact, reason_class};
    let address = address.trim();
    crate::domain::accounts::check_contact(Some(address))?;
    let shown = mask_contact(address);
    let Some(route) = email_route(&config.smtp) else {
        return Err(Error::TestDeliveryFailed {
            what: format!("test email to {shown}: email delivery is not configured (smtp.host)"),
            reason: "not_configured",
        });
    };
    let failed = |reason| Error::TestDeliveryFailed {
        what: format!("test email to {shown} via {route}"),
        reason,
    };
    let notifier = crate::delivery::notifier_from_config(&config.smtp)
        .map_err(|e| failed(reason_class(&e)))?;
    let email = crate::domain::delivery::test_email(
        address,
        &config.service_name,
        config.recovery.default_language,
    );
    send_bounded(notifier.send(&email)).await.map_err(failed)?;
    writeln!(out, "sent test email to {shown} via {route}").map_err(io)
}

/// `admin test-phone NUMBER [--voice]`: one text message (or call) through the configured
/// phone gateway, one line of outcome. The number is read like a contact's
/// (`phone.default_region` for numbers without `+`); an invalid one is refused before
/// anything is sent.
pub async fn test_phone(
    config: &Config,
    number: &str,
    voice: bool,
    out: &mut dyn Write,
) -> Result<()> {
    use crate::domain::delivery::{mask_contact, phone_route, reason_class, PhoneChannel};
    use crate::domain::phone;
    let region = phone::parse_region(&config.phone.default_region)?;
    let to = phone::normalize(number, region)?;
    let shown = mask_contact(&to);
    let channel = if voice {
        PhoneChannel::Voice
    } else {
        PhoneChannel::Sms
    };
    let kind = match channel {
        PhoneChannel::Sms => "test text message",
        PhoneChannel::Voice => "test call",
    };
    let Some(route) = phone_route(&config.phone) else {
        return Err(Error::TestDeliveryFailed {
            what: format!("{kind} to {shown}: phone delivery is not configured (phone.provider)"),
            reason: "not_configured",
        });
    };
    let failed = |reason| Error::TestDeliveryFailed {
        what: format!("{kind} to {shown} via {route}"),
        reason,
    };
    let gateway = crate::delivery::phone_gateway_from_config(&config.phone)
        .map_err(|e| failed(reason_class(&e)))?;
    let msg = crate::domain::delivery::test_phone_message(
        crate::domain::new_id(&mut OsRng),
        &to,
        channel,
        &config.service_name,
        SystemClock.now(),
    );
    send_bounded(gateway.send(&msg)).await.map_err(failed)?;
    writeln!(out, "sent {kind} to {shown} via {route}").map_err(io)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn table_columns_stay_aligned_with_long_cells() {
        let rows = vec![
            vec![
                "root".into(),
                "admin".into(),
                "Virtual x2, Security key, Hardware".into(),
                "yes".into(),
            ],
            vec![
                "a-very-long-user-name-of-forty-characters".into(),
                "user".into(),
                "Not enabled".into(),
                "no".into(),
            ],
        ];
        let mut out = Vec::new();
        write_table(&mut out, &["USER", "ROLE", "MFA", "PASSWORD"], &rows).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        // Every column starts at the same offset on every line.
        for (k, col) in ["ROLE", "MFA", "PASSWORD"].iter().enumerate() {
            let at = lines[0].find(col).unwrap();
            for (line, row) in lines[1..].iter().zip(&rows) {
                assert!(line[at..].starts_with(row[k + 1].as_str()), "{text}");
                assert_eq!(&line[at - 1..at], " ", "{text}");
            }
        }
        assert!(text.lines().all(|l| !l.ends_with(' ')), "{text}");
    }

    #[test]
    fn mfa_column_reads_like_the_providers_user_list() {
        assert_eq!(mfa_column(&[]), "Not enabled");
        assert_eq!(mfa_column(&[DeviceKind::Virtual]), "Virtual");
        assert_eq!(
            mfa_column(&[
                DeviceKind::Virtual,
                DeviceKind::HardwareOtp,
                DeviceKind::Virtual
            ]),
            "Virtual x2, Hardware"
        );
    }
}

//! Administration: users (list with MFA column and lockout risk, create, detail with devices,
//! deactivate a lost device), application keys (shown once), and the audit log viewer.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Form;
use rand::rngs::OsRng;
use serde::Deserialize;

use crate::domain::accounts::NewUser;
use crate::domain::appkeys::AppKeyPermissions;
use crate::domain::console_support::{AuditQuery, AUDIT_SCAN_LIMIT};
use crate::store::Role;
use crate::web::AppState;

use super::pages_auth::{notice, Done};
use super::views::{
    render, when_secs, AppKeysView, AuditRow, AuditView, ConfirmView, CreatedUser, DeviceChoice,
    DeviceRow, KeyRow, KindChoice, Page, UserRow, UserView, UsersView,
};
use super::{error_text, is_form_error, see_other, Ctx, Fail, PageResult};

/// The event kinds offered by the audit filter (prefixes end in `.`).
const KINDS: [&str; 9] = [
    "sign_in.",
    "session.",
    "mfa.",
    "account.",
    "app_key.",
    "validate",
    "sign_in.mfa",
    "mfa.enable",
    "mfa.delete",
];

async fn users_view(
    ctx: &Ctx,
    created: Option<CreatedUser>,
    error: Option<String>,
    form: Option<&CreateUserForm>,
) -> Result<UsersView, Fail> {
    ctx.admin().await?;
    let tr = ctx.tr;
    let users = ctx
        .st
        .svc
        .list_users()
        .await?
        .into_iter()
        .map(|u| UserRow {
            role: match u.account.role {
                Role::Admin => tr.t("users.role_admin"),
                Role::User => tr.t("users.role_user"),
            },
            mfa: match u.enabled_devices {
                0 => tr.t("users.mfa_none"),
                n => tr.tf("users.mfa_devices", &[("count", &n.to_string())]),
            },
            no_mfa: u.enabled_devices == 0,
            lockout_risk: u.enabled_devices == 1,
            locked: u.account.locked_at.is_some(),
            password_set: u.account.password_hash.is_some(),
            created: ctx.when(u.account.created_at),
            name: u.account.name,
        })
        .collect();
    Ok(UsersView {
        p: Page::new(ctx, "users.title", "users"),
        users,
        created,
        error,
        form_name: form.map(|f| f.name.clone()).unwrap_or_default(),
        form_email: form.and_then(|f| f.email.clone()).unwrap_or_default(),
        form_phone: form.and_then(|f| f.phone.clone()).unwrap_or_default(),
        form_admin: form.is_some_and(|f| f.admin.is_some()),
    })
}

pub async fn users(ctx: Ctx) -> PageResult {
    let v = users_view(&ctx, None, None, None).await?;
    Ok(render(&v, StatusCode::OK))
}

/// The create-user form.
#[derive(Deserialize)]
pub struct CreateUserForm {
    name: String,
    email: Option<String>,
    phone: Option<String>,
    admin: Option<String>,
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

pub async fn create_user(
    ctx: Ctx,
    State(st): State<AppState>,
    Form(f): Form<CreateUserForm>,
) -> PageResult {
    let auth = ctx.admin().await?;
    let role = if f.admin.is_some() {
        Role::Admin
    } else {
        Role::User
    };
    match st
        .svc
        .create_user(
            &auth.account.name,
            NewUser {
                name: f.name.trim(),
                role,
                email: non_empty(&f.email),
                phone: non_empty(&f.phone),
            },
            ctx.req(),
            &mut OsRng,
        )
        .await
    {
        Ok((account, link)) => {
            let created = CreatedUser {
                name: account.name,
                link: link.to_string(),
            };
            let v = users_view(&ctx, Some(created), None, None).await?;
            Ok(render(&v, StatusCode::CREATED))
        }
        Err(e) if is_form_error(&e) => {
            let v = users_view(&ctx, None, Some(error_text(&ctx.tr, &e)), Some(&f)).await?;
            Ok(render(&v, StatusCode::BAD_REQUEST))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn user(ctx: Ctx, Path(name): Path<String>, Query(q): Query<Done>) -> PageResult {
    let v = user_view(&ctx, &name, q.done.as_deref(), None).await?;
    Ok(render(&v, StatusCode::OK))
}

async fn user_view(
    ctx: &Ctx,
    name: &str,
    done: Option<&str>,
    group_error: Option<String>,
) -> Result<UserView, Fail> {
    let auth = ctx.admin().await?;
    let tr = ctx.tr;
    let account = ctx.st.svc.account(name).await?;
    let devices = ctx.st.svc.list_devices(&account).await?;
    // #18: the account's groups, through the same rule as the API's.
    let groups = ctx
        .st
        .svc
        .user_groups(auth, name, ctx.now, &ctx.meta.meta)
        .await?;
    Ok(UserView {
        p: Page::new(ctx, "user.title", "users"),
        role: match account.role {
            Role::Admin => tr.t("users.role_admin"),
            Role::User => tr.t("users.role_user"),
        },
        email: account.email.clone().unwrap_or_default(),
        phone: account.phone.clone().unwrap_or_default(),
        created: ctx.when(account.created_at),
        locked: account.locked_at.is_some(),
        devices: devices.iter().map(|d| DeviceRow::new(&tr, d)).collect(),
        notice: notice(ctx, done),
        groups,
        group_error,
        name: account.name,
    })
}

/// The form that puts an account in a group (#18).
#[derive(Deserialize)]
pub struct GroupForm {
    group: String,
}

/// POST `/users/{name}/groups`: an administrator puts the account in a group.
pub async fn add_group(
    ctx: Ctx,
    State(st): State<AppState>,
    Path(name): Path<String>,
    Form(f): Form<GroupForm>,
) -> PageResult {
    let auth = ctx.admin().await?;
    match st
        .svc
        .add_user_group(auth, &name, f.group.trim(), ctx.now, &ctx.meta.meta)
        .await
    {
        Ok(_) => Ok(see_other(&format!("/users/{name}?done=group_added"))),
        Err(e) if is_form_error(&e) => {
            let v = user_view(&ctx, &name, None, Some(error_text(&ctx.tr, &e))).await?;
            Ok(render(&v, StatusCode::BAD_REQUEST))
        }
        Err(e) => Err(e.into()),
    }
}

/// POST `/users/{name}/groups/{group}/remove`: an administrator takes the account out of a
/// group.
pub async fn remove_group(
    ctx: Ctx,
    State(st): State<AppState>,
    Path((name, group)): Path<(String, String)>,
) -> PageResult {
    let auth = ctx.admin().await?;
    st.svc
        .remove_user_group(auth, &name, &group, ctx.now, &ctx.meta.meta)
        .await?;
    Ok(see_other(&format!("/users/{name}?done=group_removed")))
}

pub(super) fn recent_factor(a: &crate::domain::signin::Authenticated, now: i64) -> bool {
    a.session
        .second_factor_at
        .is_some_and(|t| now.saturating_sub(t) <= crate::domain::RECENT_FACTOR_SECS)
}

async fn deactivate_view(
    ctx: &Ctx,
    user: &str,
    id: &str,
    error: Option<String>,
) -> Result<ConfirmView, Fail> {
    let auth = ctx.admin().await?;
    let account = ctx.st.svc.account(user).await?;
    let d = ctx
        .st
        .svc
        .list_devices(&account)
        .await?
        .into_iter()
        .find(|d| d.id == id)
        .ok_or(Fail::NotFound)?;
    let own = ctx.st.svc.enabled_devices(&auth.account).await?;
    let stale = !own.is_empty() && !recent_factor(auth, ctx.now);
    // Codes are typed here; an administrator with security keys alone confirms with a key.
    let has_otp = own.iter().any(|d| d.kind.is_otp());
    let needs_code = stale && has_otp;
    Ok(ConfirmView {
        p: Page::new(ctx, "deactivate.title", "users"),
        heading: ctx
            .tr
            .tf("deactivate.heading", &[("name", &d.name), ("user", user)]),
        explanation: ctx.tr.tf("deactivate.explanation", &[("user", user)]),
        action: format!("/users/{user}/devices/{id}/deactivate"),
        button: ctx.tr.t("deactivate.button"),
        back: format!("/users/{user}"),
        needs_code,
        key_verify: stale && !has_otp,
        devices: own
            .iter()
            .filter(|d| d.kind.is_otp())
            .map(|d| DeviceChoice {
                id: d.id.clone(),
                name: d.name.clone(),
            })
            .collect(),
        error,
    })
}

pub async fn deactivate_form(ctx: Ctx, Path((user, id)): Path<(String, String)>) -> PageResult {
    let v = deactivate_view(&ctx, &user, &id, None).await?;
    Ok(render(&v, StatusCode::OK))
}

/// The administrator's own fresh code.
#[derive(Deserialize)]
pub struct CodeForm {
    code: Option<String>,
    device: Option<String>,
}

pub async fn deactivate(
    ctx: Ctx,
    State(st): State<AppState>,
    Path((user, id)): Path<(String, String)>,
    Form(f): Form<CodeForm>,
) -> PageResult {
    let auth = ctx.admin().await?;
    let mut admin = auth.clone();
    let mut result = Ok(());
    // A second factor from the last 5 minutes (the domain's rule) is enough; otherwise the
    // form asked for a fresh code.
    if admin.enabled_devices > 0 && !recent_factor(&admin, ctx.now) {
        let code: String = f
            .code
            .as_deref()
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let device = f.device.as_deref().filter(|s| !s.is_empty());
        result = st
            .svc
            .verify_in_session(&admin, &code, device, ctx.now, &ctx.meta.meta)
            .await;
        admin.session.second_factor_at = Some(ctx.now);
    }
    if result.is_ok() {
        result = st
            .svc
            .delete_device(&admin, Some(&user), &id, ctx.now, &ctx.meta.meta)
            .await
            .map(|_| ());
    }
    match result {
        Ok(()) => Ok(see_other(&format!("/users/{user}?done=device_deactivated"))),
        Err(e) if is_form_error(&e) => {
            let v = deactivate_view(&ctx, &user, &id, Some(error_text(&ctx.tr, &e))).await?;
            Ok(render(&v, StatusCode::BAD_REQUEST))
        }
        Err(e) => Err(e.into()),
    }
}

async fn keys_view(
    ctx: &Ctx,
    created: Option<(String, String)>,
    error: Option<String>,
    notice: Option<String>,
) -> Result<AppKeysView, Fail> {
    let auth = ctx.admin().await?;
    let keys = ctx
        .st
        .svc
        .app_keys(auth, ctx.now, &ctx.meta.meta)
        .await?
        .into_iter()
        .map(|k| KeyRow {
            revoke_label: ctx.tr.tf("keys.revoke_label", &[("name", &k.name)]),
            id: k.id,
            name: k.name,
            created: ctx.when(k.created_at),
            created_by: k.created_by.unwrap_or_default(),
            revoked: k.revoked_at.is_some(),
            allow_root: k.allow_root,
            allow_no_device: k.allow_no_device,
        })
        .collect();
    let (created_name, created_key) = created.unwrap_or_default();
    Ok(AppKeysView {
        p: Page::new(ctx, "keys.title", "keys"),
        keys,
        created_name,
        created_key,
        error,
        notice,
    })
}

pub async fn app_keys(ctx: Ctx, Query(q): Query<Done>) -> PageResult {
    let v = keys_view(&ctx, None, None, notice(&ctx, q.done.as_deref())).await?;
    Ok(render(&v, StatusCode::OK))
}

/// The create-key form.
#[derive(Deserialize)]
pub struct KeyForm {
    name: String,
    allow_root: Option<String>,
    allow_no_device: Option<String>,
}

pub async fn create_app_key(
    ctx: Ctx,
    State(st): State<AppState>,
    Form(f): Form<KeyForm>,
) -> PageResult {
    let auth = ctx.admin().await?;
    match st
        .svc
        .new_app_key(
            &auth.account.name,
            f.name.trim(),
            AppKeyPermissions {
                allow_root: f.allow_root.is_some(),
                allow_no_device: f.allow_no_device.is_some(),
            },
            ctx.now,
            &mut OsRng,
            &ctx.meta.meta,
        )
        .await
    {
        Ok((rec, key)) => {
            let v = keys_view(&ctx, Some((rec.name, key.to_string())), None, None).await?;
            Ok(render(&v, StatusCode::CREATED))
        }
        Err(e) if is_form_error(&e) => {
            let v = keys_view(&ctx, None, Some(error_text(&ctx.tr, &e)), None).await?;
            Ok(render(&v, StatusCode::BAD_REQUEST))
        }
        Err(e) => Err(e.into()),
    }
}

/// The confirmation page of a revocation, asking for the administrator's fresh second factor
/// when the session's is older than 5 minutes.
async fn revoke_key_view(ctx: &Ctx, id: &str, error: Option<String>) -> Result<ConfirmView, Fail> {
    let auth = ctx.admin().await?;
    let key = ctx
        .st
        .svc
        .app_keys(auth, ctx.now, &ctx.meta.meta)
        .await?
        .into_iter()
        .find(|k| k.id == id && k.revoked_at.is_none())
        .ok_or(Fail::NotFound)?;
    let own = ctx.st.svc.enabled_devices(&auth.account).await?;
    let stale = !own.is_empty() && !recent_factor(auth, ctx.now);
    let has_otp = own.iter().any(|d| d.kind.is_otp());
    Ok(ConfirmView {
        p: Page::new(ctx, "keys.revoke_title", "keys"),
        heading: ctx.tr.tf("keys.revoke_heading", &[("name", &key.name)]),
        explanation: ctx.tr.t("keys.revoke_explanation"),
        action: format!("/app-keys/{id}/revoke"),
        button: ctx.tr.t("keys.revoke"),
        back: "/app-keys".into(),
        needs_code: stale && has_otp,
        key_verify: stale && !has_otp,
        devices: own
            .iter()
            .filter(|d| d.kind.is_otp())
            .map(|d| DeviceChoice {
                id: d.id.clone(),
                name: d.name.clone(),
            })
            .collect(),
        error,
    })
}

pub async fn revoke_key_form(ctx: Ctx, Path(id): Path<String>) -> PageResult {
    let v = revoke_key_view(&ctx, &id, None).await?;
    Ok(render(&v, StatusCode::OK))
}

/// The Revoke button of the key list (and the confirmation page's form): revokes at once when
/// the administrator's second factor is fresh (or the account has no MFA); otherwise the
/// confirmation page asks for a code first.
pub async fn revoke_key(
    ctx: Ctx,
    State(st): State<AppState>,
    Path(id): Path<String>,
    Form(f): Form<CodeForm>,
) -> PageResult {
    let auth = ctx.admin().await?;
    let mut admin = auth.clone();
    let mut result = Ok(());
    if admin.enabled_devices > 0 && !recent_factor(&admin, ctx.now) {
        let code: String = f
            .code
            .as_deref()
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if code.is_empty() {
            // From the list's button: ask for the code first.
            let v = revoke_key_view(&ctx, &id, None).await?;
            return Ok(render(&v, StatusCode::OK));
        }
        let device = f.device.as_deref().filter(|s| !s.is_empty());
        result = st
            .svc
            .verify_in_session(&admin, &code, device, ctx.now, &ctx.meta.meta)
            .await;
        admin.session.second_factor_at = Some(ctx.now);
    }
    if result.is_ok() {
        result = st
            .svc
            .admin_revoke_app_key(&admin, &id, ctx.now, &ctx.meta.meta)
            .await
            .map(|_| ());
    }
    match result {
        Ok(()) => Ok(see_other("/app-keys?done=key_revoked")),
        Err(e) if is_form_error(&e) => {
            let v = revoke_key_view(&ctx, &id, Some(error_text(&ctx.tr, &e))).await?;
            Ok(render(&v, StatusCode::BAD_REQUEST))
        }
        Err(e) => Err(e.into()),
    }
}

/// The audit filters.
#[derive(Deserialize, Default)]
pub struct AuditFilters {
    account: Option<String>,
    kind: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// `YYYY-MM-DD` (UTC midnight) or `YYYY-MM-DDTHH:MM` (a `datetime-local` input, UTC).
fn parse_time(s: &str) -> Option<i64> {
    use time::macros::format_description;
    let s = s.trim();
    let dt = if s.len() == 10 {
        time::Date::parse(s, format_description!("[year]-[month]-[day]"))
            .ok()?
            .midnight()
    } else {
        time::PrimitiveDateTime::parse(
            s,
            format_description!("[year]-[month]-[day]T[hour]:[minute]"),
        )
        .ok()?
    };
    Some(dt.assume_utc().unix_timestamp())
}

pub async fn audit(ctx: Ctx, Query(q): Query<AuditFilters>) -> PageResult {
    let auth = ctx.full()?;
    let tr = ctx.tr;
    let admin = auth.is_admin();
    // The same rule as the API's: users (and administrators without MFA) read their own
    // account's events only.
    let account = auth.audit_scope(non_empty(&q.account).map(str::to_string))?;
    let kind = non_empty(&q.kind)
        .filter(|k| KINDS.contains(k))
        .map(str::to_string);
    let from_s = non_empty(&q.from).unwrap_or("").to_string();
    let to_s = non_empty(&q.to).unwrap_or("").to_string();
    let mut error = None;
    let from = if from_s.is_empty() {
        None
    } else {
        let t = parse_time(&from_s);
        if t.is_none() {
            error = Some(tr.t("errors.date"));
        }
        t
    };
    let until = if to_s.is_empty() {
        None
    } else {
        // A date alone includes the whole day.
        let t = parse_time(&to_s).map(|t| if to_s.len() == 10 { t + 86_400 } else { t + 60 });
        if t.is_none() {
            error = Some(tr.t("errors.date"));
        }
        t
    };
    let (events, truncated) = ctx
        .st
        .svc
        .audit_query(&AuditQuery {
            account: account.clone(),
            kind: kind.clone(),
            from,
            until,
            limit: 200,
        })
        .await?;
    let rows: Vec<AuditRow> = events
        .into_iter()
        .map(|r| {
            let e = r.event;
            AuditRow {
                at: when_secs(e.at),
                account: e.account.unwrap_or_default(),
                actor: e.actor.unwrap_or_default(),
                ok: e.result == "success",
                kind: e.kind,
                result: e.result,
                detail: e.detail.unwrap_or_default(),
                addr: e.client_addr.unwrap_or_default(),
            }
        })
        .collect();
    let v = AuditView {
        p: Page::new(&ctx, "audit.title", "audit"),
        count_text: tr.tf("audit.count", &[("count", &rows.len().to_string())]),
        truncated_text: truncated
            .then(|| tr.tf("audit.truncated", &[("max", &AUDIT_SCAN_LIMIT.to_string())])),
        rows,
        admin,
        account: if admin {
            account.unwrap_or_default()
        } else {
            auth.account.name.clone()
        },
        any_kind: kind.is_none(),
        kinds: KINDS
            .iter()
            .map(|k| KindChoice {
                value: k,
                selected: kind.as_deref() == Some(*k),
            })
            .collect(),
        from: from_s,
        to: to_s,
        error,
    };
    Ok(render(&v, StatusCode::OK))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::parse_time;

    #[test]
    fn dates_are_utc() {
        assert_eq!(parse_time("1970-01-02"), Some(86_400));
        assert_eq!(parse_time("1970-01-01T01:01"), Some(3_660));
        assert_eq!(parse_time("yesterday"), None);
    }
}

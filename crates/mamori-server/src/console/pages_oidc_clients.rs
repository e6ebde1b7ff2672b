//! The administrators' page of the OpenID provider's clients (#17, docs/oidc.md): the list,
//! the registration form (the secret is shown once, on the answer to it), and confirmation
//! pages for a new secret and for deletion. Every rule is the domain's
//! (`Service::admin_oidc_*` in `domain/oidc.rs`): the page only reads the form and shows the
//! answer. Registering, a new secret and deletion need a second factor from the last 5
//! minutes: when the administrator's is older, the registration form and both confirmation
//! pages ask for their code ([`factor_ask`]), which is checked before the domain is called
//! ([`with_code`]); an administrator with security keys alone confirms with a key.
//!
//! - `GET|POST /oidc-clients`: the list and the registration form (with a code when needed).
//! - `GET|POST /oidc-clients/{name}/secret`: confirm (with a code when needed), then the new
//!   secret once.
//! - `GET|POST /oidc-clients/{name}/delete`: confirm (with a code when needed), then delete.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Form;
use rand::rngs::OsRng;
use serde::Deserialize;

use crate::domain::oidc::{ClientCreated, NewClient, RequireFactor};
use crate::domain::signin::Authenticated;
use crate::error::Error;
use crate::store::oidc::OidcClientRecord;
use crate::web::AppState;

use super::i18n::Tr;
use super::pages_admin::recent_factor;
use super::pages_auth::{notice, Done};
use super::views::{render, ConfirmView, DeviceChoice, Page};
use super::{error_text, is_form_error, see_other, Ctx, Fail, PageResult};

/// The page's own URL.
const PAGE: &str = "/oidc-clients";

/// One client in the list.
pub struct ClientRow {
    pub name: String,
    pub id: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub public: bool,
    pub trusted: bool,
    /// Translated `require`.
    pub require: String,
    pub alg: String,
    pub allowed_users: String,
    pub allowed_groups: String,
    pub created: String,
    /// "… of NAME": the buttons' accessible names.
    pub rotate_label: String,
    pub delete_label: String,
}

/// What the registration form held, kept when it is refused so nothing has to be typed again.
#[derive(Deserialize, Default)]
pub struct ClientForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    redirect_uris: String,
    #[serde(default)]
    post_logout_redirect_uris: String,
    public: Option<String>,
    trusted: Option<String>,
    #[serde(default)]
    require: String,
    #[serde(default)]
    allowed_users: String,
    #[serde(default)]
    allowed_groups: String,
    #[serde(default)]
    alg: String,
    /// The administrator's own code, asked for when their second factor is stale.
    code: Option<String>,
    device: Option<String>,
}

/// A client and its secret, just registered or rotated (shown once).
pub struct Shown {
    pub name: String,
    pub id: String,
    /// Empty for a public client.
    pub secret: String,
    /// "registered" or "rotated".
    pub rotated: bool,
}

#[derive(Template)]
#[template(path = "oidc_clients.html")]
pub struct ClientsView {
    pub p: Page,
    pub clients: Vec<ClientRow>,
    pub shown: Option<Shown>,
    pub error: Option<String>,
    pub notice: Option<String>,
    pub form_name: String,
    pub form_redirect_uris: String,
    pub form_post_logout: String,
    pub form_public: bool,
    pub form_trusted: bool,
    pub form_require: String,
    pub form_allowed_users: String,
    pub form_allowed_groups: String,
    pub form_alg: String,
    /// The registration form asks for the administrator's code ([`factor_ask`]).
    pub needs_code: bool,
    pub key_verify: bool,
    pub devices: Vec<DeviceChoice>,
}

/// The URIs of a textarea, one a line (blank lines ignored).
fn lines(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Names separated by commas or white space.
fn names(s: &str) -> Vec<String> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect()
}

fn require_text(tr: &Tr, r: &str) -> String {
    match r {
        "one_factor" => tr.t("oidc_clients.require_one_factor"),
        "phishing_resistant" => tr.t("oidc_clients.require_phishing_resistant"),
        _ => tr.t("oidc_clients.require_two_factor"),
    }
}

/// A refused registration's explanation: which field, in the page's language (the domain's
/// messages are English and name the field).
fn client_error_text(tr: &Tr, e: &Error) -> String {
    match e {
        // First: only the URI messages echo input (the URI itself), and they all say "URI".
        Error::InvalidInput(m) if m.contains("URI") => tr.t("oidc_clients.error_uri"),
        Error::InvalidInput(m) if m.contains("allowed") || m.contains("group name") => {
            tr.t("oidc_clients.error_allowed")
        }
        Error::InvalidInput(m) if m.contains("signing algorithm") => tr.t("oidc_clients.error_alg"),
        Error::InvalidInput(m) if m.starts_with("require") => tr.t("oidc_clients.error_require"),
        Error::InvalidInput(m) if m.contains("public client") => tr.t("oidc_clients.error_public"),
        Error::InvalidInput(m) if m.contains("client name") => tr.t("oidc_clients.error_name"),
        Error::Conflict(m) if m.starts_with("at most") => tr.t("oidc_clients.error_limit"),
        Error::Conflict(_) => tr.t("oidc_clients.error_taken"),
        other => error_text(tr, other),
    }
}

/// The list and the registration form, as `admin` sees them (the session of the request, or
/// the same with the second factor a code on this request just proved).
async fn clients_view(
    ctx: &Ctx,
    admin: &Authenticated,
    shown: Option<Shown>,
    error: Option<String>,
    notice: Option<String>,
    form: Option<&ClientForm>,
) -> Result<ClientsView, Fail> {
    let auth = ctx.admin().await?;
    let ask = factor_ask(ctx, admin).await?;
    let tr = ctx.tr;
    let clients = ctx
        .st
        .svc
        .admin_oidc_clients(auth, ctx.now, &ctx.meta.meta)
        .await?
        .into_iter()
        .map(|c: OidcClientRecord| ClientRow {
            rotate_label: tr.tf("oidc_clients.rotate_label", &[("name", &c.name)]),
            delete_label: tr.tf("oidc_clients.delete_label", &[("name", &c.name)]),
            public: c.secret_hash.is_none(),
            require: require_text(&tr, &c.require_factor),
            allowed_users: c.allowed_users.join(", "),
            allowed_groups: c.allowed_groups.join(", "),
            created: ctx.when(c.created_at),
            name: c.name,
            id: c.id,
            redirect_uris: c.redirect_uris,
            post_logout_redirect_uris: c.post_logout_redirect_uris,
            trusted: c.trusted,
            alg: c.alg,
        })
        .collect();
    let f = form.filter(|_| error.is_some());
    Ok(ClientsView {
        p: Page::new(ctx, "oidc_clients.title", "oidc_clients"),
        clients,
        shown,
        error,
        notice,
        form_name: f.map(|f| f.name.clone()).unwrap_or_default(),
        form_redirect_uris: f.map(|f| f.redirect_uris.clone()).unwrap_or_default(),
        form_post_logout: f
            .map(|f| f.post_logout_redirect_uris.clone())
            .unwrap_or_default(),
        form_public: f.is_some_and(|f| f.public.is_some()),
        form_trusted: f.is_some_and(|f| f.trusted.is_some()),
        form_require: f
            .map(|f| f.require.clone())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "two_factor".into()),
        form_allowed_users: f.map(|f| f.allowed_users.clone()).unwrap_or_default(),
        form_allowed_groups: f.map(|f| f.allowed_groups.clone()).unwrap_or_default(),
        form_alg: f
            .map(|f| f.alg.clone())
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| "ES256".into()),
        needs_code: ask.needs_code,
        key_verify: ask.key_verify,
        devices: ask.devices,
    })
}

/// How a form asks for the administrator's own second factor when theirs is older than 5
/// minutes (the domain's rule for registering, a new secret and deletion): a code field, or,
/// for an administrator with security keys alone, "Confirm with security key".
struct FactorAsk {
    needs_code: bool,
    key_verify: bool,
    /// The administrator's code devices (a choice when there are several).
    devices: Vec<DeviceChoice>,
}

async fn factor_ask(ctx: &Ctx, admin: &Authenticated) -> Result<FactorAsk, Fail> {
    let own = ctx.st.svc.enabled_devices(&admin.account).await?;
    let stale = !recent_factor(admin, ctx.now);
    let has_otp = own.iter().any(|d| d.kind.is_otp());
    Ok(FactorAsk {
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
    })
}

/// The administrator for the domain's call: when their second factor is stale and the form
/// carried a code, the code is checked first (a wrong one is the error) and the session
/// records it, so the domain's recent-factor rule then holds. Without a code the domain
/// refuses a stale session (and audits it); an empty code is not checked, so that it does not
/// count as a wrong one.
async fn with_code(
    ctx: &Ctx,
    auth: &Authenticated,
    code: Option<&str>,
    device: Option<&str>,
) -> (Authenticated, crate::error::Result<()>) {
    let mut admin = auth.clone();
    let code: String = code
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if recent_factor(&admin, ctx.now) || code.is_empty() {
        return (admin, Ok(()));
    }
    let device = device.filter(|s| !s.is_empty());
    let result = ctx
        .st
        .svc
        .verify_in_session(&admin, &code, device, ctx.now, &ctx.meta.meta)
        .await;
    if result.is_ok() {
        admin.session.second_factor_at = Some(ctx.now);
    }
    (admin, result)
}

fn shown(c: ClientCreated, rotated: bool) -> Shown {
    Shown {
        name: c.client.name,
        id: c.client.id,
        secret: c.secret.map(|s| s.to_string()).unwrap_or_default(),
        rotated,
    }
}

/// `GET /oidc-clients`.
pub async fn clients(ctx: Ctx, Query(q): Query<Done>) -> PageResult {
    let notice = match q.done.as_deref() {
        Some("client_deleted") => Some(ctx.tr.t("oidc_clients.deleted")),
        other => notice(&ctx, other),
    };
    let auth = ctx.admin().await?;
    let v = clients_view(&ctx, auth, None, None, notice, None).await?;
    Ok(render(&v, StatusCode::OK))
}

/// `POST /oidc-clients`: registers the client and shows its secret once (after checking the
/// administrator's code when the form asked for one).
pub async fn create(ctx: Ctx, State(st): State<AppState>, Form(f): Form<ClientForm>) -> PageResult {
    let auth = ctx.admin().await?;
    let (admin, checked) = with_code(&ctx, auth, f.code.as_deref(), f.device.as_deref()).await;
    let new = RequireFactor::parse(if f.require.is_empty() {
        "two_factor"
    } else {
        f.require.as_str()
    })
    .map(|require| NewClient {
        name: f.name.trim().to_string(),
        redirect_uris: lines(&f.redirect_uris),
        post_logout_redirect_uris: lines(&f.post_logout_redirect_uris),
        public: f.public.is_some(),
        trusted: f.trusted.is_some(),
        require,
        allowed_users: names(&f.allowed_users),
        allowed_groups: names(&f.allowed_groups),
        alg: if f.alg.is_empty() {
            "ES256".into()
        } else {
            f.alg.clone()
        },
    });
    let result = match checked.and(new) {
        Ok(new) => {
            st.svc
                .admin_oidc_create_client(&admin, new, ctx.now, &ctx.meta.meta, &mut OsRng)
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(created) => {
            let created = Some(shown(created, false));
            let v = clients_view(&ctx, &admin, created, None, None, None).await?;
            Ok(render(&v, StatusCode::CREATED))
        }
        Err(e) if is_form_error(&e) => {
            let text = client_error_text(&ctx.tr, &e);
            let v = clients_view(&ctx, &admin, None, Some(text), None, Some(&f)).await?;
            Ok(render(&v, StatusCode::BAD_REQUEST))
        }
        Err(e) => Err(e.into()),
    }
}

/// The client named in the path, or the console's not-found page.
async fn client(ctx: &Ctx, name: &str) -> Result<OidcClientRecord, Fail> {
    let auth = ctx.admin().await?;
    ctx.st
        .svc
        .admin_oidc_clients(auth, ctx.now, &ctx.meta.meta)
        .await?
        .into_iter()
        .find(|c| c.name == name)
        .ok_or(Fail::NotFound)
}

/// What a confirmation page confirms.
#[derive(Clone, Copy)]
enum Confirm {
    /// A new secret (`/secret`).
    Rotate,
    /// Deletion (`/delete`).
    Delete,
}

/// The confirmation page of a new secret or a deletion, asking for the administrator's code
/// when their second factor is older than 5 minutes ([`factor_ask`]).
async fn confirm_view(
    ctx: &Ctx,
    admin: &Authenticated,
    name: &str,
    what: Confirm,
    error: Option<String>,
) -> Result<ConfirmView, Fail> {
    let c = client(ctx, name).await?;
    let ask = factor_ask(ctx, admin).await?;
    let (keys, path) = match what {
        Confirm::Rotate => ("rotate", "secret"),
        Confirm::Delete => ("delete", "delete"),
    };
    let key = |k: &str| format!("oidc_clients.{keys}{k}");
    Ok(ConfirmView {
        p: Page::new(ctx, &key("_title"), "oidc_clients"),
        heading: ctx.tr.tf(&key("_heading"), &[("name", &c.name)]),
        explanation: ctx.tr.t(&key("_explanation")),
        action: format!("{PAGE}/{name}/{path}"),
        button: ctx.tr.t(&key("")),
        back: PAGE.into(),
        needs_code: ask.needs_code,
        key_verify: ask.key_verify,
        devices: ask.devices,
        error,
    })
}

/// `GET /oidc-clients/{name}/secret`: asks before the old secret stops working.
pub async fn rotate_form(ctx: Ctx, Path(name): Path<String>) -> PageResult {
    let auth = ctx.admin().await?;
    let v = confirm_view(&ctx, auth, &name, Confirm::Rotate, None).await?;
    Ok(render(&v, StatusCode::OK))
}

/// The administrator's code of the confirmation page.
#[derive(Deserialize)]
pub struct CodeForm {
    code: Option<String>,
    device: Option<String>,
}

/// `POST /oidc-clients/{name}/secret`: the new secret, shown once, when the administrator's
/// second factor is recent or after checking the code the confirmation page asked for.
pub async fn rotate(
    ctx: Ctx,
    State(st): State<AppState>,
    Path(name): Path<String>,
    Form(f): Form<CodeForm>,
) -> PageResult {
    let auth = ctx.admin().await?;
    let (admin, checked) = with_code(&ctx, auth, f.code.as_deref(), f.device.as_deref()).await;
    let result = match checked {
        Ok(()) => {
            st.svc
                .admin_oidc_rotate_client_secret(&admin, &name, ctx.now, &ctx.meta.meta, &mut OsRng)
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(created) => {
            let created = Some(shown(created, true));
            let v = clients_view(&ctx, &admin, created, None, None, None).await?;
            Ok(render(&v, StatusCode::OK))
        }
        Err(e) if is_form_error(&e) => {
            let text = client_error_text(&ctx.tr, &e);
            let v = confirm_view(&ctx, &admin, &name, Confirm::Rotate, Some(text)).await?;
            Ok(render(&v, StatusCode::BAD_REQUEST))
        }
        Err(e) => Err(e.into()),
    }
}

/// `GET /oidc-clients/{name}/delete`.
pub async fn delete_form(ctx: Ctx, Path(name): Path<String>) -> PageResult {
    let auth = ctx.admin().await?;
    let v = confirm_view(&ctx, auth, &name, Confirm::Delete, None).await?;
    Ok(render(&v, StatusCode::OK))
}

/// `POST /oidc-clients/{name}/delete`: deletes when the administrator's second factor is
/// recent, or after checking the code the confirmation page asked for.
pub async fn delete(
    ctx: Ctx,
    State(st): State<AppState>,
    Path(name): Path<String>,
    Form(f): Form<CodeForm>,
) -> PageResult {
    let auth = ctx.admin().await?;
    let (admin, mut result) = with_code(&ctx, auth, f.code.as_deref(), f.device.as_deref()).await;
    if result.is_ok() {
        result = st
            .svc
            .admin_oidc_delete_client(&admin, &name, ctx.now, &ctx.meta.meta)
            .await;
    }
    match result {
        Ok(()) => Ok(see_other(&format!("{PAGE}?done=client_deleted"))),
        Err(e) if is_form_error(&e) => {
            let text = error_text(&ctx.tr, &e);
            let v = confirm_view(&ctx, &admin, &name, Confirm::Delete, Some(text)).await?;
            Ok(render(&v, StatusCode::BAD_REQUEST))
        }
        Err(e) => Err(e.into()),
    }
}

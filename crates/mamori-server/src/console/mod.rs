//! The web console: server-rendered pages (askama templates under `templates/`, strings from
//! `i18n/*.toml`, one stylesheet under `static/`) served at `/` next to the JSON API.
//!
//! Handlers translate forms into [`Service`](crate::domain::Service) calls exactly like the
//! JSON handlers do; no rule lives here. One middleware wraps every console route and
//! provides what each page needs in one place:
//! - the **CSRF** check: a random 256-bit token kept in an `HttpOnly` cookie (double submit) is
//!   embedded in every form; every `POST` must carry it in the `csrf` field, compared in
//!   constant time, and, when the browser sends `Origin`, come from this server's origin;
//! - the **language** (see [`i18n`]);
//! - the **security headers** (CSP without inline script, frame denial, no referrer to other
//!   sites, nosniff,
//!   `Cache-Control: no-store` so that QR codes and keys are not cached);
//! - the **error pages**: handlers return a [`Fail`], the middleware renders it in the
//!   request's language, saying what happened and what to do, never internals.

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use rand::rngs::OsRng;
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::clock::UnixTime;
use crate::domain::signin::Authenticated;
use crate::error::{Error, FactorRefusal};
use crate::store::SessionState;
use crate::web::{AppState, Meta, SESSION_COOKIE};

pub mod i18n;
// #15 polish
mod pages_admin;
mod pages_auth;
// #18 forward authentication
mod pages_forward;
// #17 the OpenID provider
mod pages_oidc;
// #17 the administrators' page of OpenID clients
mod pages_oidc_clients;
mod pages_polish;
mod pages_recovery;
mod pages_recovery_signin;
// #15 recovery
mod pages_recovery_wait;
mod pages_review;
mod pages_security;
mod pages_tokens;
mod pages_webauthn;
mod views;

use i18n::{Lang, Tr, LANG_COOKIE};

/// Name of the CSRF cookie.
pub const CSRF_COOKIE: &str = "mamori_csrf";
/// Name of the cookie holding a pending sign-in challenge (password given, code awaited).
pub const CHALLENGE_COOKIE: &str = "mamori_challenge";
/// Largest form body the console reads.
const FORM_LIMIT: usize = 16 * 1024;

/// The `Content-Security-Policy` of every console response: nothing inline, nothing foreign.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'";

const STYLESHEET: &str = include_str!("../../static/console.css");

/// Whether cookies get `Secure`: always, except when the public URL is plain HTTP on the loopback
/// interface (a development or test setup, where browsers would drop a `Secure` cookie).
pub fn secure_cookies(public_url: &str) -> bool {
    let Some(rest) = public_url.strip_prefix("http://") else {
        return true;
    };
    let host = rest.split('/').next().unwrap_or("");
    let host = if host.starts_with('[') {
        host.split(']')
            .next()
            .map(|h| format!("{h}]"))
            .unwrap_or_default()
    } else {
        host.split(':').next().unwrap_or("").to_string()
    };
    // `*.localhost` names are loopback too (RFC 6761 §6.3; browsers resolve them so).
    !(matches!(host.as_str(), "localhost" | "127.0.0.1" | "[::1]") || host.ends_with(".localhost"))
}

/// A `Set-Cookie` value: always `Path=/`, `HttpOnly` and `SameSite=Strict`.
pub fn cookie(name: &str, value: &str, max_age: Option<i64>, secure: bool) -> Option<HeaderValue> {
    let age = max_age
        .map(|a| format!("; Max-Age={a}"))
        .unwrap_or_default();
    let sec = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict{age}{sec}"
    ))
    .ok()
}

/// A cookie's value from the request headers.
pub fn read_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// What the middleware learned about a request, for the handlers.
#[derive(Debug, Clone)]
struct ConsoleReq {
    lang: Lang,
    csrf: String,
    secure: bool,
}

/// An error page the middleware renders: status, what happened, what to do (catalog keys or
/// text already translated).
#[derive(Debug, Clone)]
struct ErrorPage {
    status: StatusCode,
    what: ErrText,
    todo: ErrText,
    retry_after: Option<u64>,
}

#[derive(Debug, Clone)]
enum ErrText {
    Key(&'static str),
    Secs(&'static str, u64),
}

/// Why a handler did not produce its page.
#[derive(Debug)]
pub enum Fail {
    /// A domain error (mapped to a status and an explanation).
    Domain(Error),
    /// Go elsewhere (303).
    Redirect(String),
    /// The CSRF check failed.
    Csrf,
    /// No such page.
    NotFound,
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        match e {
            Error::Unauthenticated => Fail::Redirect("/sign-in".into()),
            Error::MfaEnrollmentRequired => Fail::Redirect("/".into()),
            e => Fail::Domain(e),
        }
    }
}

/// Redirects with 303 See Other (the browser follows with GET).
pub fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Where a form that enrolled a factor goes next: the dashboard when the enrollment completed a
/// sign-in (`renewed`: the session was enrollment-only) that is on its way back to an
/// application (forward authentication or an OpenID client), since the dashboard sends it
/// on there; otherwise `done`, the security page with its notice.
pub(crate) fn after_enrollment(headers: &HeaderMap, renewed: bool, done: &str) -> Response {
    let onward = pages_forward::returning(headers) || pages_oidc::returning(headers).is_some();
    see_other(if renewed && onward { "/" } else { done })
}

fn error_page(e: &Error) -> ErrorPage {
    use ErrText::{Key, Secs};
    let (status, what, todo, retry) = match e {
        Error::Forbidden(_) => (
            StatusCode::FORBIDDEN,
            Key("errors.forbidden"),
            Key("errors.forbidden_todo"),
            None,
        ),
        Error::FactorChangeRefused(why) => (
            StatusCode::FORBIDDEN,
            Key(match why {
                FactorRefusal::Root => "errors.root_factors",
                FactorRefusal::AdminWithoutMfa => "errors.admin_needs_mfa",
                _ => "errors.own_account_only",
            }),
            Key(match why {
                FactorRefusal::Root => "errors.root_factors_todo",
                FactorRefusal::AdminWithoutMfa => "errors.admin_needs_mfa_todo",
                _ => "errors.own_account_only_todo",
            }),
            None,
        ),
        Error::NotFound(_) => (
            StatusCode::NOT_FOUND,
            Key("errors.not_found"),
            Key("errors.not_found_todo"),
            None,
        ),
        Error::AdminWithoutMfa => (
            StatusCode::FORBIDDEN,
            Key("account_policy.admin_without_mfa"),
            Key("account_policy.admin_without_mfa_todo"),
            None,
        ),
        Error::InvalidSetupToken => (
            StatusCode::BAD_REQUEST,
            Key("errors.setup_link"),
            Key("errors.setup_link_todo"),
            None,
        ),
        Error::InvalidChallenge => (
            StatusCode::BAD_REQUEST,
            Key("errors.challenge"),
            Key("errors.challenge_todo"),
            None,
        ),
        Error::RecoverySessionRestricted => (
            StatusCode::FORBIDDEN,
            Key("errors.recovery_session"),
            Key("errors.recovery_session_todo"),
            None,
        ),
        Error::InvalidCeremony => (
            StatusCode::BAD_REQUEST,
            Key("security_key.expired"),
            Key("security_key.todo"),
            None,
        ),
        Error::SecurityKeyRejected => (
            StatusCode::BAD_REQUEST,
            Key("security_key.rejected"),
            Key("security_key.todo"),
            None,
        ),
        Error::AccountLocked => (
            StatusCode::LOCKED,
            Key("errors.locked"),
            Key("errors.locked_todo"),
            None,
        ),
        Error::RateLimited { retry_after } => (
            StatusCode::TOO_MANY_REQUESTS,
            Key("errors.rate_limited"),
            Secs("errors.rate_limited_todo", *retry_after),
            Some(*retry_after),
        ),
        Error::InvalidInput(_)
        | Error::InvalidPhoneNumber(_)
        | Error::InvalidCode
        | Error::CodesNotConsecutive
        | Error::WeakPassword(_)
        | Error::Conflict(_)
        | Error::DeviceLimitReached(_)
        | Error::InvalidDeviceState(_)
        | Error::RecentSecondFactorRequired
        | Error::InvalidCredentials => (
            StatusCode::BAD_REQUEST,
            Key("errors.bad_request"),
            Key("errors.bad_request_todo"),
            None,
        ),
        // #21 faults: the database is away for now; the page says when to try again.
        Error::Store(se) if se.is_unavailable() => {
            tracing::warn!(error = %e, "console: database unavailable");
            let secs = crate::web::UNAVAILABLE_RETRY_SECS;
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Key("errors.unavailable"),
                Secs("errors.unavailable_todo", secs),
                Some(secs),
            )
        }
        other => {
            tracing::error!(error = %other, "console: internal error");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Key("errors.internal"),
                Key("errors.internal_todo"),
                None,
            )
        }
    };
    ErrorPage {
        status,
        what,
        todo,
        retry_after: retry,
    }
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        let page = match self {
            Fail::Redirect(to) => return see_other(&to),
            Fail::Domain(e) => error_page(&e),
            Fail::Csrf => ErrorPage {
                status: StatusCode::FORBIDDEN,
                what: ErrText::Key("errors.csrf"),
                todo: ErrText::Key("errors.csrf_todo"),
                retry_after: None,
            },
            Fail::NotFound => ErrorPage {
                status: StatusCode::NOT_FOUND,
                what: ErrText::Key("errors.not_found"),
                todo: ErrText::Key("errors.not_found_todo"),
                retry_after: None,
            },
        };
        let mut r = page.status.into_response();
        r.extensions_mut().insert(page);
        r
    }
}

/// Handler result.
pub type PageResult = Result<Response, Fail>;

/// The one-line explanation of a domain error shown inside a form, in the page's language.
pub fn error_text(tr: &Tr, e: &Error) -> String {
    match e {
        Error::InvalidCredentials => tr.t("errors.invalid_credentials"),
        Error::InvalidCode => tr.t("errors.invalid_code"),
        Error::CodesNotConsecutive => tr.t("errors.not_consecutive"),
        Error::WeakPassword(p) => password_problem_text(tr, *p),
        Error::Conflict(_) => tr.t("errors.conflict"),
        Error::DeviceLimitReached(n) => tr.tf("errors.device_limit", &[("max", &n.to_string())]),
        Error::InvalidDeviceState(_) => tr.t("errors.device_state"),
        Error::RecentSecondFactorRequired => tr.t("errors.recent_factor"),
        Error::AccountLocked => tr.t("errors.locked"),
        Error::RateLimited { retry_after } => tr.tf(
            "errors.rate_limited_todo",
            &[("secs", &retry_after.to_string())],
        ),
        Error::InvalidChallenge => tr.t("errors.challenge"),
        Error::RecoverySessionRestricted => tr.t("errors.recovery_session"),
        Error::InvalidCeremony => tr.t("security_key.expired"),
        Error::SecurityKeyRejected => tr.t("security_key.rejected"),
        Error::InvalidSetupToken => tr.t("errors.setup_link"),
        Error::NotFound(_) => tr.t("errors.not_found"),
        Error::Forbidden(_) => tr.t("errors.forbidden"),
        Error::AdminWithoutMfa => tr.t("account_policy.admin_without_mfa"),
        Error::FactorChangeRefused(FactorRefusal::Root) => tr.t("errors.root_factors"),
        Error::FactorChangeRefused(FactorRefusal::AdminWithoutMfa) => {
            tr.t("errors.admin_needs_mfa")
        }
        Error::FactorChangeRefused(_) => tr.t("errors.own_account_only"),
        // #15 delivery
        Error::DeliveryFailed(_) => tr.t("delivery.failed"),
        // #15 polish (before "code": a typed zone name may contain any word)
        Error::InvalidInput(m) if m.contains("time zone") => tr.t("polish.zone_error"),
        Error::InvalidInput(m) if m.starts_with("language") => tr.t("polish.language_error"),
        Error::InvalidInput(m) if m.contains("code") => tr.t("errors.code_format"),
        Error::InvalidInput(m) if m.contains("email") => tr.t("errors.email"),
        Error::InvalidInput(m) if m.contains("phone") => tr.t("errors.phone"),
        Error::InvalidInput(m) if m.contains("role") => tr.t("errors.role"),
        Error::InvalidInput(_) => tr.t("errors.name"),
        // #15 contacts
        Error::InvalidPhoneNumber(_) => tr.t("contact_change.invalid_phone"),
        // #21 faults: the database is away for now; the message says when to try again.
        Error::Store(se) if se.is_unavailable() => {
            tracing::warn!(error = %se, "console: database unavailable");
            format!(
                "{} {}",
                tr.t("errors.unavailable"),
                tr.tf(
                    "errors.unavailable_todo",
                    &[("secs", &crate::web::UNAVAILABLE_RETRY_SECS.to_string())]
                )
            )
        }
        other => {
            tracing::error!(error = %other, "console: internal error");
            tr.t("errors.internal")
        }
    }
}

/// A refused password's own explanation, in the page's language.
fn password_problem_text(tr: &Tr, p: crate::domain::password::PasswordProblem) -> String {
    use crate::domain::password::PasswordProblem as P;
    match p {
        P::TooShort { min } => tr.tf(
            "account_policy.password_too_short",
            &[("min", &min.to_string())],
        ),
        P::TooLong { max } => tr.tf(
            "account_policy.password_too_long",
            &[("max", &max.to_string())],
        ),
        P::Common => tr.t("account_policy.password_common"),
        P::ContainsUserName => tr.t("account_policy.password_contains_user"),
    }
}

/// Whether a domain error is shown inside the form (the user can fix it there) rather than as
/// an error page.
pub fn is_form_error(e: &Error) -> bool {
    matches!(
        e,
        Error::InvalidCredentials
            | Error::InvalidCode
            | Error::CodesNotConsecutive
            | Error::WeakPassword(_)
            | Error::Conflict(_)
            | Error::DeviceLimitReached(_)
            | Error::InvalidDeviceState(_)
            | Error::RecentSecondFactorRequired
            | Error::InvalidInput(_)
            | Error::RateLimited { .. }
            | Error::InvalidPhoneNumber(_)
    )
}

fn new_csrf_token() -> String {
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    data_encoding::BASE64URL_NOPAD.encode(&b)
}

fn valid_token_shape(t: &str) -> bool {
    t.len() == 43
        && t.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// The value of `name` in an `application/x-www-form-urlencoded` body.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded_pairs(body)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

fn form_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded_pairs(body).unwrap_or_default()
}

fn serde_urlencoded_pairs(body: &[u8]) -> Option<Vec<(String, String)>> {
    let text = std::str::from_utf8(body).ok()?;
    let mut out = Vec::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.push((decode_component(k)?, decode_component(v)?));
    }
    Some(out)
}

fn decode_component(s: &str) -> Option<String> {
    let s = s.replace('+', " ");
    percent_decode(&s)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Whether the `Origin` header (when the browser sends one) names this server.
fn origin_ok(headers: &HeaderMap, public_url: &str) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if origin.trim_end_matches('/') == public_url.trim_end_matches('/') {
        return true;
    }
    // The loopback name the browser used for a loopback public URL (`edge::same_origin`).
    if crate::web::origin::public_origin(public_url)
        .is_some_and(|ours| crate::web::origin::same_origin(origin, &ours))
    {
        return true;
    }
    // Also accept the Host the browser used (a reverse proxy may not match the public URL).
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    host.is_some_and(|h| origin == format!("http://{h}") || origin == format!("https://{h}"))
}

async fn console_layer(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let public_url = st.svc.policy().public_url.clone();
    let secure = secure_cookies(&public_url);
    let headers = req.headers();
    let existing = read_cookie(headers, CSRF_COOKIE).filter(|t| valid_token_shape(t));
    let csrf = existing.clone().unwrap_or_else(new_csrf_token);
    let lang = Lang::negotiate(
        read_cookie(headers, LANG_COOKIE).as_deref(),
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    let session = read_cookie(headers, SESSION_COOKIE).filter(|t| !t.is_empty());
    let cr = ConsoleReq {
        lang,
        csrf: csrf.clone(),
        secure,
    };
    // A recovery session may only manage MFA devices: decided here for every console route,
    // not per handler (docs/recovery.md).
    let scope = match &session {
        Some(t) => match st.svc.session_state(t, st.clock.now()).await {
            Ok(Some(SessionState::Recovery)) => {
                pages_recovery_signin::recovery_scope(req.method(), req.uri().path())
            }
            _ => pages_recovery_signin::Scope::Allow,
        },
        None => pages_recovery_signin::Scope::Allow,
    };
    let mut resp = if crate::web::origin::uri_has_control(req.uri().path(), req.uri().query()) {
        // No name, id or filter contains a control character (and PostgreSQL refuses NUL).
        Fail::Domain(Error::InvalidInput(
            "the address must not contain control characters".into(),
        ))
        .into_response()
    } else if scope == pages_recovery_signin::Scope::Home {
        see_other(pages_recovery_signin::RECOVERY_HOME)
    } else if scope == pages_recovery_signin::Scope::Refuse {
        Fail::Domain(Error::RecoverySessionRestricted).into_response()
    } else if req.method() == Method::POST && req.uri().path() != pages_oidc::AUTHORIZE_POST {
        match check_post(req, existing.as_deref(), &public_url).await {
            Ok(mut req) => {
                req.extensions_mut().insert(cr.clone());
                next.run(req).await
            }
            Err(f) => f.into_response(),
        }
    } else {
        let mut req = req;
        req.extensions_mut().insert(cr.clone());
        next.run(req).await
    };
    if let Some(page) = resp.extensions().get::<ErrorPage>().cloned() {
        let auth = match &session {
            Some(t) => st.svc.authenticate(t, st.clock.now()).await.ok(),
            None => None,
        };
        resp = views::render_error(Tr::new(lang), &csrf, &page, auth.as_ref());
    }
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // `same-origin` rather than `no-referrer`: with `no-referrer` browsers send `Origin: null`
    // on form posts, and the Origin check needs the real origin. Other sites get no referrer.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if existing.is_none() {
        if let Some(c) = cookie(CSRF_COOKIE, &csrf, None, secure) {
            h.append(header::SET_COOKIE, c);
        }
    }
    resp
}

/// Reads the form body of a POST, checks origin and CSRF token, and gives the request back
/// with its body for the handler.
async fn check_post(
    req: Request,
    cookie_token: Option<&str>,
    public_url: &str,
) -> Result<Request, Fail> {
    if !origin_ok(req.headers(), public_url) {
        return Err(Fail::Csrf);
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, FORM_LIMIT)
        .await
        .map_err(|_| Fail::Domain(Error::InvalidInput("form too large".into())))?;
    let sent = form_field(&bytes, "csrf").unwrap_or_default();
    let Some(expected) = cookie_token else {
        return Err(Fail::Csrf);
    };
    if sent.len() != expected.len() || !bool::from(sent.as_bytes().ct_eq(expected.as_bytes())) {
        return Err(Fail::Csrf);
    }
    if form_has_control(&bytes) {
        return Err(Fail::Domain(Error::InvalidInput(
            "form fields must not contain control characters".into(),
        )));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// Whether a decoded field of a form body holds a control character other than tab, CR and
/// LF (which a text area may send): the console's counterpart of the API's JSON check.
fn form_has_control(body: &[u8]) -> bool {
    form_urlencoded_pairs(body)
        .iter()
        .flat_map(|(k, v)| k.chars().chain(v.chars()))
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
}

/// Everything a console handler needs about its request.
pub struct Ctx {
    /// Translator.
    pub tr: Tr,
    /// The CSRF token to embed in forms.
    pub csrf: String,
    /// Whether cookies get `Secure`.
    pub secure: bool,
    /// Client address and user agent.
    pub meta: Meta,
    /// The signed-in session, if any.
    pub auth: Option<Authenticated>,
    /// The time of the request.
    pub now: UnixTime,
    /// Path and query (for the language switcher's way back).
    pub path: String,
    /// The state.
    pub st: AppState,
    /// The time zone times are shown in: the signed-in account's, else UTC (#15 polish).
    pub zone: jiff::tz::TimeZone,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = Fail;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Fail> {
        let cr = parts
            .extensions
            .get::<ConsoleReq>()
            .cloned()
            .ok_or_else(|| Fail::Domain(Error::Internal("console layer missing".into())))?;
        let meta = Meta::from_request_parts(parts, st)
            .await
            .map_err(|e: std::convert::Infallible| -> Fail { match e {} })?;
        let now = st.clock.now();
        let auth = match read_cookie(&parts.headers, SESSION_COOKIE) {
            Some(token) if !token.is_empty() => match st.svc.authenticate(&token, now).await {
                Ok(a) => Some(a),
                Err(Error::Unauthenticated) => None,
                Err(e) => return Err(Fail::Domain(e)),
            },
            _ => None,
        };
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        // #15 polish: once signed in, the console speaks the account's language and shows its
        // time zone; an account that never chose a language takes the one it is using now.
        let (lang, zone) = match &auth {
            Some(a) => account_lang_zone(st, &a.account, cr.lang, now).await?,
            None => (cr.lang, jiff::tz::TimeZone::UTC),
        };
        Ok(Ctx {
            zone,
            tr: Tr::new(lang),
            csrf: cr.csrf,
            secure: cr.secure,
            meta,
            auth,
            now,
            path,
            st: st.clone(),
        })
    }
}

/// The console language and time zone of a signed-in account (#15 polish).
async fn account_lang_zone(
    st: &AppState,
    account: &crate::store::AccountRecord,
    browser: Lang,
    now: crate::clock::UnixTime,
) -> Result<(Lang, jiff::tz::TimeZone), Fail> {
    use crate::domain::preferences as prefs;
    let p = st.svc.preferences(account).await?;
    let lang = if p.language_chosen {
        Lang::parse(prefs::language_code(p.language)).unwrap_or(browser)
    } else {
        let l = prefs::parse_language(browser.code())?;
        st.svc.adopt_language(account, l, now).await?;
        browser
    };
    Ok((lang, prefs::zone_or_utc(&p.time_zone)))
}

impl Ctx {
    /// The domain's view of this request: its time and who is asking.
    pub fn req(&self) -> crate::domain::Request<'_> {
        crate::domain::Request::new(self.now, &self.meta.meta)
    }

    /// `2026-11-28 18:30 +09:00` in the account's time zone.
    pub fn when(&self, t: crate::clock::UnixTime) -> String {
        crate::domain::preferences::format_in(&self.zone, t, false)
    }

    /// With seconds.
    pub fn when_secs(&self, t: crate::clock::UnixTime) -> String {
        crate::domain::preferences::format_in(&self.zone, t, true)
    }

    /// The signed-in session (any state), else a redirect to the sign-in page.
    pub fn signed_in(&self) -> Result<&Authenticated, Fail> {
        self.auth
            .as_ref()
            .ok_or_else(|| Fail::Redirect("/sign-in".into()))
    }

    /// A full session; an enrollment-only session goes back to the dashboard.
    pub fn full(&self) -> Result<&Authenticated, Fail> {
        let a = self.signed_in()?;
        if a.session.state == SessionState::Full {
            Ok(a)
        } else {
            Err(Fail::Redirect("/".into()))
        }
    }

    /// A full session or a recovery session (MFA device management).
    pub fn full_or_recovery(&self) -> Result<&Authenticated, Fail> {
        let a = self.signed_in()?;
        if a.session.state == SessionState::Recovery {
            Ok(a)
        } else {
            self.full()
        }
    }

    /// A full session of an administrator with MFA: the domain's one rule
    /// ([`crate::domain::Service::require_admin`], which audits a refused administrator
    /// without MFA).
    pub async fn admin(&self) -> Result<&Authenticated, Fail> {
        let a = self.full()?;
        let page = self.path.split('?').next().unwrap_or("/");
        self.st
            .svc
            .require_admin(a, &format!("console {page}"), self.now, &self.meta.meta)
            .await?;
        Ok(a)
    }

    /// Sets the session cookie on a response.
    pub fn set_session(&self, resp: &mut Response, token: &str, max_age: i64) {
        if let Some(c) = cookie(SESSION_COOKIE, token, Some(max_age), self.secure) {
            resp.headers_mut().append(header::SET_COOKIE, c);
        }
    }

    /// Sets (or with `None`, clears) a cookie on a response.
    pub fn set_cookie(&self, resp: &mut Response, name: &str, value: Option<&str>, max_age: i64) {
        let (v, age) = match value {
            Some(v) => (v, max_age),
            None => ("", 0),
        };
        if let Some(c) = cookie(name, v, Some(age), self.secure) {
            resp.headers_mut().append(header::SET_COOKIE, c);
        }
    }
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// The application's fallback: unknown paths under `/api/` get the API's JSON 404 (from
/// `api_not_found`), every other unknown path the console's 404 page in the visitor's
/// language with the console's headers.
pub fn fallback<F, Fut>(state: AppState, api_not_found: F) -> Router
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response> + Send + 'static,
{
    let page: Router = Router::new()
        .fallback(|| async { Fail::NotFound })
        .layer(middleware::from_fn_with_state(state.clone(), console_layer))
        .with_state(state);
    let svc = tower::service_fn(move |req: Request| {
        let page = page.clone();
        let api = api_not_found.clone();
        async move {
            if req.uri().path().starts_with("/api/") {
                Ok::<Response, std::convert::Infallible>(api().await)
            } else {
                tower::ServiceExt::oneshot(page, req).await
            }
        }
    });
    Router::new().fallback_service(svc)
}

/// The console's routes, to be merged into the application router.
pub fn router(state: AppState) -> Router<AppState> {
    use pages_admin as a;
    use pages_auth as u;
    use pages_security as s;
    Router::new()
        .route("/", get(u::dashboard))
        .route("/sign-in", get(u::sign_in_form).post(u::sign_in))
        .route("/sign-in/mfa", get(u::mfa_form).post(u::mfa))
        .route("/troubleshoot-mfa", get(u::troubleshoot))
        .route(
            "/sign-in/alternative",
            get(pages_recovery_signin::start_form).post(pages_recovery_signin::start),
        )
        .route(
            "/sign-in/alternative/email",
            get(pages_recovery_signin::email_form).post(pages_recovery_signin::email),
        )
        .route(
            "/sign-in/alternative/phone",
            get(pages_recovery_signin::phone_form).post(pages_recovery_signin::phone),
        )
        // #15 delivery
        .route(
            "/sign-in/alternative/phone/resend",
            post(pages_recovery_signin::phone_resend),
        )
        .route(
            pages_recovery_signin::RECOVERY_HOME,
            get(pages_recovery_signin::session_page),
        )
        .route(
            "/security/contacts",
            get(pages_recovery_signin::contacts_page),
        )
        .route(
            "/security/contacts/{channel}/verify",
            post(pages_recovery_signin::contact_send),
        )
        .route(
            "/security/contacts/{channel}/confirm",
            get(pages_recovery_signin::contact_confirm_form)
                .post(pages_recovery_signin::contact_confirm),
        )
        // #15 contacts
        .route(
            "/security/contacts/{channel}/change",
            post(pages_recovery_signin::contact_change),
        )
        .route(
            "/security/contacts/{channel}/remove",
            post(pages_recovery_signin::contact_remove),
        )
        .route(
            "/sign-in/recovery-code",
            get(pages_recovery::sign_in_form).post(pages_recovery::sign_in),
        )
        .route(
            "/security/recovery-codes",
            get(pages_recovery::codes_page).post(pages_recovery::generate),
        )
        .route("/static/recovery.js", get(pages_recovery::script))
        .route("/static/recovery-print.css", get(pages_recovery::print_css))
        .route("/setup", get(u::setup_form).post(u::setup))
        .route("/sign-out", post(u::sign_out))
        .route("/lang", post(u::switch_language))
        .route("/security", get(s::overview))
        .route("/security/password", post(s::change_password))
        .route(
            "/security/mfa/new",
            get(s::new_device_form).post(s::new_device),
        )
        .route(
            "/security/mfa/hardware",
            get(pages_tokens::form).post(pages_tokens::assign),
        )
        .route(
            "/security/mfa/{id}/enable",
            get(s::enable_form).post(s::enable),
        )
        .route(
            "/security/mfa/{id}/resync",
            get(s::resync_form).post(s::resync),
        )
        .route(
            "/security/mfa/{id}/remove",
            get(s::remove_form).post(s::remove),
        )
        .route("/security/sessions/{id}/revoke", post(s::revoke_session))
        // #17 consents
        .route(
            "/security/oidc-consents/{client_id}/revoke",
            post(s::revoke_connected_app),
        )
        // #15 polish
        .route(
            "/security/preferences",
            get(pages_polish::preferences_form).post(pages_polish::preferences),
        )
        .route(
            "/security/sync-devices/{id}/revoke",
            get(pages_polish::sync_revoke_form).post(pages_polish::sync_revoke),
        )
        .route("/users", get(a::users).post(a::create_user))
        .route("/users/{name}", get(a::user))
        // #18 forward authentication
        .route("/users/{name}/groups", post(a::add_group))
        .route("/users/{name}/groups/{group}/remove", post(a::remove_group))
        .route("/sso", get(pages_forward::sso))
        // #17 the OpenID provider
        .route(
            "/oidc/authorize",
            get(pages_oidc::authorize).post(pages_oidc::authorize_post),
        )
        .route("/oidc/consent", post(pages_oidc::consent))
        .route(
            "/oidc/logout",
            get(pages_oidc::logout_form).post(pages_oidc::logout),
        )
        .route(
            "/users/{name}/devices/{id}/deactivate",
            get(a::deactivate_form).post(a::deactivate),
        )
        .route("/app-keys", get(a::app_keys).post(a::create_app_key))
        .route(
            "/app-keys/{id}/revoke",
            get(a::revoke_key_form).post(a::revoke_key),
        )
        // #17 OpenID clients (administrators)
        .route(
            "/oidc-clients",
            get(pages_oidc_clients::clients).post(pages_oidc_clients::create),
        )
        .route(
            "/oidc-clients/{name}/secret",
            get(pages_oidc_clients::rotate_form).post(pages_oidc_clients::rotate),
        )
        .route(
            "/oidc-clients/{name}/delete",
            get(pages_oidc_clients::delete_form).post(pages_oidc_clients::delete),
        )
        .route("/audit", get(a::audit))
        .route("/review", get(pages_review::review))
        .route("/static/console.css", get(stylesheet))
        .route("/static/webauthn.js", get(pages_webauthn::script))
        .route("/security/mfa/security-key", get(pages_webauthn::form))
        .route(
            "/security/mfa/security-key/begin",
            post(pages_webauthn::register_begin),
        )
        .route(
            "/security/mfa/security-key/finish",
            post(pages_webauthn::register_finish),
        )
        .route(
            "/sign-in/security-key/begin",
            post(pages_webauthn::sign_in_begin),
        )
        .route(
            "/sign-in/security-key/finish",
            post(pages_webauthn::sign_in_finish),
        )
        .route(
            "/security/verify/security-key/begin",
            post(pages_webauthn::verify_begin),
        )
        .route(
            "/security/verify/security-key/finish",
            post(pages_webauthn::verify_finish),
        )
        // #15 recovery
        .route(
            "/recovery/cancel",
            get(pages_recovery_wait::cancel_form).post(pages_recovery_wait::cancel),
        )
        .layer(middleware::from_fn_with_state(state, console_layer))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn secure_except_on_loopback_http() {
        assert!(!secure_cookies("http://127.0.0.1:8080"));
        assert!(!secure_cookies("http://localhost"));
        assert!(!secure_cookies("http://auth.mamori.localhost:8080"));
        assert!(secure_cookies("http://localhost.example.com"));
        assert!(!secure_cookies("http://[::1]:9000/"));
        assert!(secure_cookies("http://mfa.example.com"));
        assert!(secure_cookies("http://127.0.0.1.example.com"));
        assert!(secure_cookies("https://localhost"));
    }

    #[test]
    fn form_fields_are_decoded() {
        let body = b"csrf=a%2Bb&name=my+phone&x";
        assert_eq!(form_field(body, "csrf").as_deref(), Some("a+b"));
        assert_eq!(form_field(body, "name").as_deref(), Some("my phone"));
        assert_eq!(form_field(body, "x").as_deref(), Some(""));
        assert_eq!(form_field(b"csrf=%zz", "csrf"), None);
    }

    #[test]
    fn origin_must_match() {
        let mut h = HeaderMap::new();
        assert!(origin_ok(&h, "http://127.0.0.1:1"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:1"));
        assert!(!origin_ok(&h, "http://127.0.0.1:1"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:1"),
        );
        assert!(origin_ok(&h, "http://127.0.0.1:1"));
    }

    #[test]
    fn control_characters_in_forms() {
        assert!(!form_has_control(b"csrf=x&user=alice&note=a%0D%0Ab%09"));
        assert!(form_has_control(b"csrf=x&user=ro%00ot"));
        assert!(form_has_control(b"csrf=x&name=a%7Fb"));
        assert!(form_has_control(b"csrf=x&name=a%C2%85b"));
        assert!(form_has_control(b"csrf=x&a%01=b"));
    }

    #[test]
    fn token_shape() {
        assert!(valid_token_shape(&new_csrf_token()));
        assert!(!valid_token_shape("short"));
    }
}

//! Forward authentication (issue #18, docs/forward-auth.md): answering a reverse proxy that
//! asks, for each request to a protected application, whether the browser's session may pass.
//!
//! This module holds the rules, as pure functions with no I/O:
//!
//! - [`Rules::compile`] turns `[forward_auth]` into matchers, refusing a mistake with one line
//!   naming the rule (at start: `Config::validate` calls it).
//! - [`Target::parse`] reads the address the proxy is asking about (`X-Original-URL`, or the
//!   `X-Forwarded-*` parts) the way the protected application will see it: scheme and host
//!   lowercased, port dropped, dot segments resolved, percent-encoding decoded.
//! - [`Rules::decide`]: first matching rule wins, no matching rule denies.
//! - [`Rules::safe_return_url`]: whether an address may be returned to after sign-in (no open
//!   redirect).
//!
//! and, on [`Service`], the session check of a forward-auth cookie through the same guard as
//! every other session ([`Service::authenticate_forward`]) and the audit of denials.

use rand::{CryptoRng, RngCore};
use regex::Regex;
use url::Url;
use zeroize::Zeroizing;

use crate::clock::UnixTime;
use crate::config::{AccessPolicy, AccessRuleConfig, ForwardAuthConfig};
use crate::error::{Error, Result};

use super::audit::Event;
pub use super::forward_cache::ForwardSession;
use super::groups::check_group_name;
use super::session::Authenticated;
use super::{new_token, token_hash, RequestMeta, Service};

/// Audit kinds of this module (defined with every other kind in [`super::audit::kind`]).
pub use super::audit::kind::forward_auth as kind;

/// The longest address the proxy may ask about (longer ones are refused, not truncated).
pub const MAX_TARGET_LEN: usize = 4096;

/// How many plain-`http://` hosts the security review is told about (a proxy forwarding
/// arbitrary `Host` headers must not grow the set without bound).
pub const MAX_PLAIN_HTTP_HOSTS: usize = 32;

/// A host pattern: `app.example.com` (that host) or `*.example.com` (any name below
/// `example.com`, not `example.com` itself).
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    /// The suffix with its leading dot: `.example.com`.
    Below(String),
}

impl std::fmt::Display for HostPattern {
    /// The configuration's spelling.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostPattern::Exact(h) => f.write_str(h),
            HostPattern::Below(suffix) => write!(f, "*{suffix}"),
        }
    }
}

impl HostPattern {
    fn parse(s: &str) -> std::result::Result<HostPattern, String> {
        let (wild, name) = match s.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        if !is_host_name(name) {
            return Err(format!(
                "{s:?} is not a host name (lowercase letters, digits, '-' and '.'; \
                 `*.` in front for every name below a domain)"
            ));
        }
        Ok(if wild {
            HostPattern::Below(format!(".{name}"))
        } else {
            HostPattern::Exact(name.to_string())
        })
    }

    fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(h) => h == host,
            HostPattern::Below(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
        }
    }
}

/// A lowercase ASCII DNS name (or IPv4 address): labels of letters, digits and `-`, not
/// starting or ending with `-`; no `xn--` label (an internationalised name is refused rather
/// than compared: look-alike names are how return addresses are forged).
fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && !l.starts_with("xn--")
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

#[derive(Debug, Clone)]
enum PathMatch {
    Any,
    /// `/admin` matches `/admin` and `/admin/…`.
    Prefix(String),
    Regex(Regex),
}

impl PathMatch {
    fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Any => true,
            PathMatch::Prefix(p) => {
                path == p
                    || (path.starts_with(p.as_str())
                        && (p.ends_with('/') || path.as_bytes().get(p.len()) == Some(&b'/')))
            }
            PathMatch::Regex(r) => r.is_match(path),
        }
    }
}

/// One compiled rule.
#[derive(Debug, Clone)]
struct Rule {
    host: HostPattern,
    path: PathMatch,
    /// Upper case; empty: every method.
    methods: Vec<String>,
    policy: AccessPolicy,
    users: Vec<String>,
    groups: Vec<String>,
    max_age: Option<i64>,
}

impl Rule {
    fn matches_request(&self, t: &Target) -> bool {
        self.host.matches(&t.host)
            && self.path.matches(&t.path)
            && (self.methods.is_empty() || self.methods.contains(&t.method))
    }

    fn has_subjects(&self) -> bool {
        !self.users.is_empty() || !self.groups.is_empty()
    }

    fn matches_subject(&self, who: &Subject<'_>) -> bool {
        !self.has_subjects()
            || self.users.iter().any(|u| u == who.user)
            || self.groups.iter().any(|g| who.groups.contains(g))
    }
}

/// The compiled `[forward_auth]` section.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    rules: Vec<Rule>,
    protected: Vec<HostPattern>,
    cookie_domain: Option<String>,
    cache_secs: u32,
}

/// The longest `[forward_auth] cache_secs`: beyond a minute, a sign-out on another node would
/// go unnoticed for too long.
pub const MAX_CACHE_SECS: u32 = 60;

fn compile_rule(r: &AccessRuleConfig) -> std::result::Result<Rule, String> {
    let host = HostPattern::parse(&r.host)?;
    let path = match (&r.path, &r.path_regex) {
        (Some(_), Some(_)) => return Err("give path or path_regex, not both".into()),
        (Some(p), None) => {
            if !p.starts_with('/')
                || p.contains(['?', '#', '%', '\\'])
                || p.contains(char::is_control)
            {
                return Err(format!(
                    "path {p:?} must start with '/' and hold no '?', '#', '%' or '\\'"
                ));
            }
            PathMatch::Prefix(p.clone())
        }
        (None, Some(re)) => PathMatch::Regex(
            regex::RegexBuilder::new(re)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| format!("path_regex {re:?}: {e}"))?,
        ),
        (None, None) => PathMatch::Any,
    };
    let mut methods = Vec::new();
    for m in &r.methods {
        let up = m.to_ascii_uppercase();
        if up.is_empty() || !up.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(format!("method {m:?} is not an HTTP method"));
        }
        methods.push(up);
    }
    for u in &r.users {
        if u.is_empty() || u.len() > 64 || u.contains(char::is_control) {
            return Err(format!("user {u:?} is not a user name"));
        }
    }
    for g in &r.groups {
        check_group_name(g).map_err(|e| format!("group {g:?}: {e}"))?;
    }
    let subjects = !r.users.is_empty() || !r.groups.is_empty();
    if r.policy == AccessPolicy::Bypass && subjects {
        return Err(
            "a bypass rule lets everyone in, signed in or not: it cannot name users or groups"
                .into(),
        );
    }
    let max_age = match r.max_age {
        None => None,
        Some(_)
            if !matches!(
                r.policy,
                AccessPolicy::TwoFactor | AccessPolicy::PhishingResistant
            ) =>
        {
            return Err(format!(
                "max_age applies to two_factor and phishing_resistant rules, not {}",
                r.policy.as_str()
            ));
        }
        Some(s) if s == 0 || s > 86_400 * 30 => {
            return Err("max_age must be between 1 and 2592000 seconds".into());
        }
        Some(s) => Some(i64::try_from(s).map_err(|_| "max_age is too large".to_string())?),
    };
    Ok(Rule {
        host,
        path,
        methods,
        policy: r.policy,
        users: r.users.clone(),
        groups: r.groups.clone(),
        max_age,
    })
}

/// What the proxy asks about: the request to the protected application, normalised the way
/// that application will read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The whole address as given (scheme, host, port, path, query), for the return address.
    pub url: String,
    /// Lowercase host, without the port.
    pub host: String,
    /// Decoded path with dot segments resolved, without the query.
    pub path: String,
    /// Upper-case method.
    pub method: String,
}

impl Target {
    /// Reads an absolute `http(s)://` address and a method. Refuses (one line, no echo of the
    /// value) what no browser sends: other schemes, userinfo, control characters, a path that
    /// decodes to control characters, anything over [`MAX_TARGET_LEN`].
    pub fn parse(url: &str, method: &str) -> Result<Target> {
        let bad = |why: &str| Err(Error::InvalidInput(format!("forward-auth address: {why}")));
        if url.len() > MAX_TARGET_LEN {
            return bad("too long");
        }
        if url.contains(|c: char| c.is_control() || c == ' ' || c == '\\') {
            return bad("control characters, spaces or backslashes");
        }
        let Ok(u) = Url::parse(url) else {
            return bad("not an absolute URL");
        };
        if !matches!(u.scheme(), "http" | "https") {
            return bad("not http or https");
        }
        if !u.username().is_empty() || u.password().is_some() {
            return bad("user information in the address");
        }
        let Some(host) = u.host_str() else {
            return bad("no host");
        };
        let Some(path) = percent_decode(u.path()) else {
            return bad("the path decodes to control characters or invalid UTF-8");
        };
        let method = method.trim().to_ascii_uppercase();
        if method.is_empty() || method.len() > 16 || !method.bytes().all(|b| b.is_ascii_uppercase())
        {
            return bad("not an HTTP method");
        }
        Ok(Target {
            url: u.to_string(),
            host: host.to_string(),
            path,
            method,
        })
    }

    /// Builds the address from the `X-Forwarded-Proto`, `-Host` and `-Uri` parts (Caddy,
    /// Traefik).
    pub fn from_parts(proto: &str, host: &str, uri: &str, method: &str) -> Result<Target> {
        let proto = proto.trim();
        if !matches!(proto, "http" | "https") || host.contains(['/', '@', '\\', '?', '#']) {
            return Err(Error::InvalidInput(
                "forward-auth address: bad X-Forwarded-Proto or X-Forwarded-Host".into(),
            ));
        }
        if !uri.starts_with('/') || uri.starts_with("//") {
            return Err(Error::InvalidInput(
                "forward-auth address: X-Forwarded-Uri must be a path".into(),
            ));
        }
        Target::parse(&format!("{proto}://{}{uri}", host.trim()), method)
    }
}

/// Decodes `%XX` sequences (the path a protected application matches its routes on); `None`
/// for a bad sequence, invalid UTF-8 or a control character, which no rule should be asked
/// to judge. A decoded `..` segment was already resolved by the URL parser (it treats `%2e`
/// as `.`), and a decoded `/` only makes a path longer, never moves it out of a prefix.
fn percent_decode(p: &str) -> Option<String> {
    let b = p.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let s = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(s, 16).ok()?);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    let s = String::from_utf8(out).ok()?;
    (!s.contains(char::is_control)).then_some(s)
}

/// Who is asking: the signed-in account and what its session proved.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// Account name.
    pub user: &'a str,
    /// Its groups.
    pub groups: &'a [String],
    /// The session is full (not enrollment-only or recovery).
    pub full: bool,
    /// When the session's second factor was last given.
    pub second_factor_at: Option<UnixTime>,
    /// The last second factor was a security key or passkey.
    pub phishing_resistant: bool,
}

/// The answer for one request. `rule` is the 1-based position of the deciding rule, `None`
/// for the default deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Let it through.
    Allow {
        /// Deciding rule.
        rule: usize,
    },
    /// Not signed in (or not with a usable session): send the browser to sign in.
    SignIn,
    /// Signed in, but the rule needs a (fresher, or phishing-resistant) second factor: send
    /// the browser to give it.
    StepUp {
        /// Deciding rule.
        rule: usize,
    },
    /// Refused whoever signs in.
    Deny {
        /// Deciding rule.
        rule: Option<usize>,
    },
}

impl Rules {
    /// Checks and compiles `[forward_auth]`. Errors name the rule by position and host:
    /// `forward_auth.rules[2] (host "*.example.com"): …`.
    pub fn compile(c: &ForwardAuthConfig) -> Result<Rules> {
        let mut rules = Vec::with_capacity(c.rules.len());
        for (i, r) in c.rules.iter().enumerate() {
            rules.push(compile_rule(r).map_err(|e| {
                Error::Config(format!(
                    "forward_auth.rules[{}] (host {:?}): {e}",
                    i + 1,
                    r.host
                ))
            })?);
        }
        let mut protected: Vec<HostPattern> = Vec::new();
        for d in &c.protected_domains {
            protected.push(
                HostPattern::parse(d)
                    .map_err(|e| Error::Config(format!("forward_auth.protected_domains: {e}")))?,
            );
        }
        for r in &rules {
            if !protected.contains(&r.host) {
                protected.push(r.host.clone());
            }
        }
        let cookie_domain = match &c.cookie_domain {
            None => None,
            Some(d) => {
                let d = d.strip_prefix('.').unwrap_or(d);
                if !is_host_name(d) || !d.contains('.') {
                    return Err(Error::Config(format!(
                        "forward_auth.cookie_domain {d:?} must be a domain such as example.com"
                    )));
                }
                Some(d.to_string())
            }
        };
        if c.cache_secs > MAX_CACHE_SECS {
            return Err(Error::Config(format!(
                "forward_auth.cache_secs = {} is more than {MAX_CACHE_SECS}",
                c.cache_secs
            )));
        }
        Ok(Rules {
            rules,
            protected,
            cookie_domain,
            cache_secs: c.cache_secs,
        })
    }

    /// How long a check's reading of a session is reused (`[forward_auth] cache_secs`).
    pub fn cache_secs(&self) -> u32 {
        self.cache_secs
    }

    /// Whether any rule is configured (forward auth is off otherwise).
    pub fn enabled(&self) -> bool {
        !self.rules.is_empty()
    }

    /// The parent domain of the single-sign-on cookie, if configured.
    pub fn cookie_domain(&self) -> Option<&str> {
        self.cookie_domain.as_deref()
    }

    /// Positions (1-based) and policies of the rules, for the security review.
    pub fn policies(&self) -> impl Iterator<Item = (usize, AccessPolicy)> + '_ {
        self.rules
            .iter()
            .enumerate()
            .map(|(i, r)| (i + 1, r.policy))
    }

    /// The answer for `target` and the session's account (`None`: not signed in, or a session
    /// that ended). First rule that matches the request (host, path, method) and the account
    /// (users or groups; a rule naming neither is about everyone) decides; none: deny.
    /// Without an account, a rule naming users or groups cannot be judged yet, so reaching
    /// one asks for a sign-in.
    pub fn decide(&self, t: &Target, who: Option<&Subject<'_>>, now: UnixTime) -> Decision {
        for (i, r) in self.rules.iter().enumerate() {
            let rule = i + 1;
            if !r.matches_request(t) {
                continue;
            }
            let Some(who) = who else {
                return match r.policy {
                    AccessPolicy::Bypass => Decision::Allow { rule },
                    AccessPolicy::Deny if !r.has_subjects() => Decision::Deny { rule: Some(rule) },
                    _ => Decision::SignIn,
                };
            };
            if !r.matches_subject(who) {
                continue;
            }
            return match r.policy {
                AccessPolicy::Bypass => Decision::Allow { rule },
                AccessPolicy::Deny => Decision::Deny { rule: Some(rule) },
                _ if !who.full => Decision::SignIn,
                AccessPolicy::OneFactor => Decision::Allow { rule },
                AccessPolicy::TwoFactor | AccessPolicy::PhishingResistant => {
                    let fresh = who.second_factor_at.is_some_and(|at| {
                        r.max_age.is_none_or(|max| now.saturating_sub(at) <= max)
                    });
                    let strong_enough =
                        r.policy == AccessPolicy::TwoFactor || who.phishing_resistant;
                    if fresh && strong_enough {
                        Decision::Allow { rule }
                    } else {
                        Decision::StepUp { rule }
                    }
                }
            };
        }
        Decision::Deny { rule: None }
    }

    /// The address a sign-in may send the browser back to, or `None`. Accepted: `http://` or
    /// `https://` (lowercase), then a lowercase ASCII host that a protected domain covers and
    /// an optional port, then nothing or a path of printable ASCII. Refused, rather than
    /// repaired: `//evil` and `\\evil` (no scheme), userinfo (`https://app@evil`), upper case
    /// in scheme or host, internationalised names (raw or `xn--`), percent-encoding or
    /// backslashes anywhere before the path, spaces and control characters anywhere.
    pub fn safe_return_url(&self, raw: &str) -> Option<String> {
        if raw.len() > MAX_TARGET_LEN
            || !raw.bytes().all(|b| b.is_ascii_graphic())
            || raw.contains('\\')
        {
            return None;
        }
        let rest = raw
            .strip_prefix("https://")
            .or_else(|| raw.strip_prefix("http://"))?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if !tail.is_empty() && !tail.starts_with('/') {
            return None;
        }
        let (host, port) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        if port
            .is_some_and(|p| p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()))
            || !is_host_name(host)
            || !self.protected.iter().any(|p| p.matches(host))
        {
            return None;
        }
        // The URL parser must read the same host: a last guard against a trick the checks
        // above did not foresee.
        let u = Url::parse(raw).ok()?;
        if u.host_str() != Some(host) || !u.username().is_empty() || u.password().is_some() {
            return None;
        }
        Some(raw.to_string())
    }
}

impl Service {
    /// Issues the forward-auth token of a console session (set in the single-sign-on cookie
    /// after sign-in, when the browser came from a protected application). Only a full session
    /// gets one: an enrollment-only or recovery session is not signed in for any application.
    /// The token is good for forward-auth checks only and ends with its session.
    pub async fn issue_forward_token<R: RngCore + CryptoRng + Send>(
        &self,
        auth: &Authenticated,
        host: &str,
        now: UnixTime,
        meta: &RequestMeta,
        rng: &mut R,
    ) -> Result<Zeroizing<String>> {
        auth.require_full()?;
        let (token, hash) = new_token(rng);
        self.store
            .create_forward_token(&hash, &auth.session.id, now)
            .await?;
        self.audit(
            now,
            meta,
            Event::own(kind::SIGN_IN, "success", &auth.account.name).detail(host),
        )
        .await?;
        Ok(token)
    }

    /// The session of a forward-auth token, by the same check as every other session
    /// ([`Service::authenticate`]'s: absolute end, idle time, account), with what the rules
    /// need of it. What a check read is reused for `[forward_auth] cache_secs`
    /// ([`super::forward_cache`]); the session's end and idle time are judged every time.
    pub async fn authenticate_forward(
        &self,
        token: &str,
        now: UnixTime,
    ) -> Result<std::sync::Arc<ForwardSession>> {
        let hash = token_hash(token);
        if let Some(who) = self.forward_cache.get(&hash, now) {
            let s = &who.auth.session;
            // An idle-looking record is read again: its activity may be newer than the
            // remembered copy, and the lookup writes it.
            if s.expires_at > now && s.last_seen_at + super::SESSION_IDLE_SECS > now {
                return Ok(who);
            }
        }
        let session = self
            .store
            .session_by_forward_token(&hash)
            .await?
            .ok_or(Error::Unauthenticated)?;
        let auth = self.authenticate_session(session, now).await?;
        let who = std::sync::Arc::new(self.forward_session_of(auth).await?);
        self.forward_cache.put(hash, who.clone(), now);
        Ok(who)
    }

    /// What the rules need of an authenticated session (the console's own session at `/sso`).
    pub async fn forward_session_of(&self, auth: Authenticated) -> Result<ForwardSession> {
        let groups = self.groups_of(&auth.account).await?;
        let phishing_resistant = self
            .store
            .second_factor_kind(&auth.session.id)
            .await?
            .as_deref()
            == Some(super::factors::SECOND_FACTOR_SECURITY_KEY);
        Ok(ForwardSession {
            auth,
            groups,
            phishing_resistant,
        })
    }

    /// Forgets what forward-auth checks of this node remember about the account's sessions:
    /// called wherever a session ends or the account's groups change, so that this node
    /// answers from the database at once (other nodes within `cache_secs`).
    pub(crate) fn forget_forward_sessions(&self, account_id: &str) {
        self.forward_cache.forget_account(account_id);
    }

    /// The compiled forward-auth rules of this server.
    pub fn forward_rules(&self) -> &Rules {
        &self.policy.forward_auth
    }

    /// Remembers that `host` is protected over plain HTTP (loopback names excepted: a
    /// proxy and its application on one machine for development), for `DR-FWD-HTTPS`.
    fn note_plain_http(&self, host: &str) {
        let loopback = host == "localhost"
            || host.ends_with(".localhost")
            || host
                .trim_matches(['[', ']'])
                .parse::<core::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if loopback {
            return;
        }
        // A poisoned lock only means another thread panicked mid-insert: the set is still a
        // set, and the review is better served by it than by nothing.
        let mut set = self
            .plain_http_hosts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if set.len() < MAX_PLAIN_HTTP_HOSTS && !set.contains(host) {
            set.insert(host.to_string());
        }
    }

    /// The security review's facts about forward authentication (`None`: it is off).
    pub(crate) fn forward_review_facts(
        &self,
    ) -> Option<mamori_review::deployment::ForwardAuthFacts> {
        let rules = &self.policy.forward_auth;
        if !rules.enabled() {
            return None;
        }
        let plain_http_hosts = self
            .plain_http_hosts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .cloned()
            .collect();
        Some(mamori_review::deployment::ForwardAuthFacts {
            one_factor_rules: rules
                .rules
                .iter()
                .enumerate()
                .filter(|(_, r)| r.policy == AccessPolicy::OneFactor)
                .map(|(i, r)| format!("rule {} ({})", i + 1, r.host))
                .collect(),
            plain_http_hosts,
        })
    }

    /// The answer of the forward-auth endpoint for `target` and the session (if any) of the
    /// request's forward-auth cookie, already authenticated by [`Service::authenticate_forward`].
    /// A denial of a signed-in account is audited (`forward_auth.deny`); allowed requests are
    /// not (they are every request of every protected application: the edge counts them).
    pub async fn forward_decide(
        &self,
        target: &Target,
        who: Option<&ForwardSession>,
        now: UnixTime,
        meta: &RequestMeta,
    ) -> Result<Decision> {
        if target.url.starts_with("http://") {
            self.note_plain_http(&target.host);
        }
        let subject = who.map(|w| Subject {
            user: &w.auth.account.name,
            groups: &w.groups,
            full: w.auth.require_full().is_ok(),
            second_factor_at: w.auth.session.second_factor_at,
            phishing_resistant: w.phishing_resistant,
        });
        let d = self
            .policy
            .forward_auth
            .decide(target, subject.as_ref(), now);
        if let (Decision::Deny { rule }, Some(w)) = (d, who) {
            let detail = format!(
                "{} {}{} ({})",
                target.method,
                target.host,
                target.path,
                rule.map_or_else(|| "no rule".to_string(), |r| format!("rule {r}"))
            );
            self.audit(
                now,
                meta,
                Event::own(kind::DENY, "denied", &w.auth.account.name).detail(&detail),
            )
            .await?;
        }
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn rule(host: &str, policy: AccessPolicy) -> AccessRuleConfig {
        AccessRuleConfig {
            host: host.into(),
            path: None,
            path_regex: None,
            methods: vec![],
            policy,
            users: vec![],
            groups: vec![],
            max_age: None,
        }
    }

    fn rules(rs: Vec<AccessRuleConfig>) -> Rules {
        Rules::compile(&ForwardAuthConfig {
            cookie_domain: Some("example.com".into()),
            protected_domains: vec![],
            rules: rs,
            cache_secs: 2,
        })
        .unwrap()
    }

    fn t(url: &str) -> Target {
        Target::parse(url, "GET").unwrap()
    }

    const NOW: UnixTime = 1_800_000_000;

    fn alice(groups: &[String]) -> Subject<'_> {
        Subject {
            user: "alice",
            groups,
            full: true,
            second_factor_at: Some(NOW - 60),
            phishing_resistant: false,
        }
    }

    #[test]
    fn first_match_wins_and_default_denies() {
        use AccessPolicy::*;
        let r = rules(vec![
            AccessRuleConfig {
                path: Some("/public".into()),
                ..rule("app.example.com", Bypass)
            },
            AccessRuleConfig {
                path_regex: Some("^/admin(/|$)".into()),
                groups: vec!["ops".into()],
                ..rule("app.example.com", TwoFactor)
            },
            AccessRuleConfig {
                path_regex: Some("^/admin(/|$)".into()),
                ..rule("app.example.com", Deny)
            },
            AccessRuleConfig {
                methods: vec!["get".into()],
                ..rule("*.example.com", OneFactor)
            },
        ]);
        let none: Vec<String> = vec![];
        let ops = vec!["ops".to_string()];
        let a = alice(&none);
        let o = alice(&ops);
        // Bypass: anyone.
        assert_eq!(
            r.decide(&t("https://app.example.com/public/x"), None, NOW),
            Decision::Allow { rule: 1 }
        );
        // A prefix is a path segment, not a string prefix.
        assert_eq!(
            r.decide(&t("https://app.example.com/publicity"), Some(&a), NOW),
            Decision::Allow { rule: 4 }
        );
        assert_eq!(
            r.decide(&t("https://app.example.com/publicity"), None, NOW),
            Decision::SignIn
        );
        // Dot segments and encodings are resolved before matching.
        assert_eq!(
            r.decide(&t("https://app.example.com/public/../admin"), Some(&a), NOW),
            Decision::Deny { rule: Some(3) }
        );
        assert_eq!(
            r.decide(
                &t("https://app.example.com/public/%2e%2e/admin"),
                Some(&a),
                NOW
            ),
            Decision::Deny { rule: Some(3) }
        );
        assert_eq!(
            r.decide(&t("https://app.example.com/%61dmin"), Some(&a), NOW),
            Decision::Deny { rule: Some(3) }
        );
        // Group rule before the deny.
        assert_eq!(
            r.decide(&t("https://app.example.com/admin"), Some(&o), NOW),
            Decision::Allow { rule: 2 }
        );
        // Not signed in, a rule with subjects first: sign in.
        assert_eq!(
            r.decide(&t("https://app.example.com/admin"), None, NOW),
            Decision::SignIn
        );
        // Methods.
        let post = Target::parse("https://app.example.com/x", "POST").unwrap();
        assert_eq!(
            r.decide(&post, Some(&a), NOW),
            Decision::Deny { rule: None }
        );
        // `*.example.com` is not example.com itself, nor evil-example.com; host case and port
        // do not matter.
        assert_eq!(
            r.decide(&t("https://example.com/x"), Some(&a), NOW),
            Decision::Deny { rule: None }
        );
        assert_eq!(
            r.decide(&t("https://evilexample.com/x"), Some(&a), NOW),
            Decision::Deny { rule: None }
        );
        assert_eq!(
            r.decide(&t("https://WIKI.Example.com:8443/x"), Some(&a), NOW),
            Decision::Allow { rule: 4 }
        );
        // Default deny for anyone, signed in or not.
        assert_eq!(
            r.decide(&t("https://other.org/"), None, NOW),
            Decision::Deny { rule: None }
        );
    }

    #[test]
    fn policies_and_freshness() {
        use AccessPolicy::*;
        let r = rules(vec![
            AccessRuleConfig {
                path: Some("/fresh".into()),
                max_age: Some(300),
                ..rule("app.example.com", TwoFactor)
            },
            AccessRuleConfig {
                path: Some("/key".into()),
                ..rule("app.example.com", PhishingResistant)
            },
            AccessRuleConfig {
                path: Some("/one".into()),
                ..rule("app.example.com", OneFactor)
            },
            rule("app.example.com", TwoFactor),
        ]);
        let none: Vec<String> = vec![];
        let mut s = alice(&none);
        let u = |p: &str| t(&format!("https://app.example.com{p}"));
        assert_eq!(
            r.decide(&u("/fresh"), Some(&s), NOW),
            Decision::Allow { rule: 1 }
        );
        assert_eq!(
            r.decide(&u("/key"), Some(&s), NOW),
            Decision::StepUp { rule: 2 }
        );
        s.phishing_resistant = true;
        assert_eq!(
            r.decide(&u("/key"), Some(&s), NOW),
            Decision::Allow { rule: 2 }
        );
        s.second_factor_at = Some(NOW - 301);
        assert_eq!(
            r.decide(&u("/fresh"), Some(&s), NOW),
            Decision::StepUp { rule: 1 }
        );
        assert_eq!(
            r.decide(&u("/other"), Some(&s), NOW),
            Decision::Allow { rule: 4 }
        );
        // Password only (an account without MFA): one factor passes, two do not.
        s.second_factor_at = None;
        assert_eq!(
            r.decide(&u("/one"), Some(&s), NOW),
            Decision::Allow { rule: 3 }
        );
        assert_eq!(
            r.decide(&u("/other"), Some(&s), NOW),
            Decision::StepUp { rule: 4 }
        );
        // An enrollment-only or recovery session is not signed in for any application.
        s.full = false;
        assert_eq!(r.decide(&u("/one"), Some(&s), NOW), Decision::SignIn);
    }

    #[test]
    fn users_and_groups() {
        use AccessPolicy::*;
        let r = rules(vec![
            AccessRuleConfig {
                users: vec!["bob".into()],
                groups: vec!["dev".into()],
                ..rule("app.example.com", OneFactor)
            },
            AccessRuleConfig {
                users: vec!["alice".into()],
                ..rule("app.example.com", Deny)
            },
        ]);
        let dev = vec!["dev".to_string()];
        let none: Vec<String> = vec![];
        let u = t("https://app.example.com/");
        assert_eq!(
            r.decide(&u, Some(&alice(&dev)), NOW),
            Decision::Allow { rule: 1 }
        );
        assert_eq!(
            r.decide(&u, Some(&alice(&none)), NOW),
            Decision::Deny { rule: Some(2) }
        );
        let bob = Subject {
            user: "bob",
            ..alice(&none)
        };
        assert_eq!(r.decide(&u, Some(&bob), NOW), Decision::Allow { rule: 1 });
        let carol = Subject {
            user: "carol",
            ..alice(&none)
        };
        assert_eq!(
            r.decide(&u, Some(&carol), NOW),
            Decision::Deny { rule: None }
        );
    }

    #[test]
    fn config_mistakes_are_named() {
        use AccessPolicy::*;
        let bad = |r: AccessRuleConfig, want: &str| {
            let e = Rules::compile(&ForwardAuthConfig {
                rules: vec![rule("ok.example.com", Deny), r],
                ..Default::default()
            })
            .unwrap_err()
            .to_string();
            assert!(e.contains("forward_auth.rules[2]"), "{e}");
            assert!(e.contains(want), "{e} lacks {want}");
        };
        bad(rule("App.example.com", Deny), "not a host name");
        bad(rule("*.*.example.com", Deny), "not a host name");
        bad(rule("bücher.example", Deny), "not a host name");
        bad(
            AccessRuleConfig {
                path: Some("admin".into()),
                ..rule("a.example.com", Deny)
            },
            "must start with '/'",
        );
        bad(
            AccessRuleConfig {
                path: Some("/a".into()),
                path_regex: Some("^/a".into()),
                ..rule("a.example.com", Deny)
            },
            "not both",
        );
        bad(
            AccessRuleConfig {
                path_regex: Some("(".into()),
                ..rule("a.example.com", Deny)
            },
            "path_regex",
        );
        bad(
            AccessRuleConfig {
                methods: vec!["GE T".into()],
                ..rule("a.example.com", Deny)
            },
            "method",
        );
        bad(
            AccessRuleConfig {
                groups: vec!["Ops".into()],
                ..rule("a.example.com", OneFactor)
            },
            "group",
        );
        bad(
            AccessRuleConfig {
                users: vec!["bob".into()],
                ..rule("a.example.com", Bypass)
            },
            "bypass",
        );
        bad(
            AccessRuleConfig {
                max_age: Some(60),
                ..rule("a.example.com", OneFactor)
            },
            "max_age",
        );
        bad(
            AccessRuleConfig {
                max_age: Some(0),
                ..rule("a.example.com", TwoFactor)
            },
            "max_age",
        );
        let e = Rules::compile(&ForwardAuthConfig {
            cookie_domain: Some("com".into()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("cookie_domain"), "{e}");
    }

    #[test]
    fn targets() {
        assert_eq!(
            t("HTTPS://App.Example.COM:443/a/./b/../c?x=1").host,
            "app.example.com"
        );
        assert_eq!(t("https://app.example.com/a/./b/../c?x=1").path, "/a/c");
        for bad in [
            "ftp://app.example.com/",
            "https://user@app.example.com/",
            "/relative",
            "https://app.example.com/a b",
            "https://app.example.com/%00",
            "https://app.example.com/%ff",
            "https://app.example.com/\\x",
        ] {
            assert!(Target::parse(bad, "GET").is_err(), "{bad}");
        }
        assert!(Target::parse("https://app.example.com/", "G T").is_err());
        let p = Target::from_parts("https", "app.example.com:8443", "/x?y=1", "get").unwrap();
        assert_eq!(
            (p.host.as_str(), p.path.as_str(), p.method.as_str()),
            ("app.example.com", "/x", "GET")
        );
        assert!(Target::from_parts("https", "evil.com/", "/x", "GET").is_err());
        assert!(Target::from_parts("https", "app.example.com", "//evil.com/x", "GET").is_err());
        assert!(Target::from_parts("javascript", "app.example.com", "/", "GET").is_err());
    }

    #[test]
    fn cache_secs_is_bounded() {
        let c = |secs| ForwardAuthConfig {
            rules: vec![rule("app.example.com", AccessPolicy::TwoFactor)],
            cache_secs: secs,
            ..Default::default()
        };
        assert_eq!(Rules::compile(&c(0)).unwrap().cache_secs(), 0);
        assert_eq!(Rules::compile(&c(60)).unwrap().cache_secs(), 60);
        let e = Rules::compile(&c(61)).unwrap_err().to_string();
        assert!(e.contains("forward_auth.cache_secs = 61"), "{e}");
        assert_eq!(ForwardAuthConfig::default().cache_secs, 2);
    }

    /// The return-address table (issue #18: no open redirect).
    #[test]
    fn return_addresses() {
        let r = Rules::compile(&ForwardAuthConfig {
            cookie_domain: Some("example.com".into()),
            protected_domains: vec!["*.example.com".into()],
            rules: vec![rule("app.other.org", AccessPolicy::OneFactor)],
            ..Default::default()
        })
        .unwrap();
        let table: &[(&str, bool)] = &[
            ("https://app.example.com/", true),
            ("https://app.example.com", true),
            ("https://app.example.com:8443/a/b?c=d&e=%20f#frag", true),
            ("http://wiki.example.com/page", true),
            ("https://app.other.org/x", true),
            // Not protected.
            ("https://evil.com/", false),
            ("https://example.com/", false),
            ("https://sub.app.other.org/", false),
            ("https://evilexample.com/", false),
            ("https://app.example.com.evil.com/", false),
            // No scheme, or not http(s).
            ("//evil.com/", false),
            ("\\\\evil.com\\", false),
            ("/\\evil.com", false),
            ("https:/\\evil.com", false),
            ("javascript:alert(1)", false),
            ("ftp://app.example.com/", false),
            ("/security", false),
            ("", false),
            // Userinfo.
            ("https://app.example.com@evil.com/", false),
            ("https://user:pw@app.example.com/", false),
            // Mixed case.
            ("HTTPS://app.example.com/", false),
            ("https://APP.example.com/", false),
            ("https://app.Example.com/", false),
            // IDN, raw or encoded.
            ("https://аpp.example.com/", false),
            ("https://xn--pp-8cd.example.com/", false),
            // Percent-encoded characters before the path.
            ("https://app.example.com%2f@evil.com/", false),
            ("https://app%2eexample.com/", false),
            ("https://evil.com%23.example.com/", false),
            // Backslashes, spaces, controls, odd ports.
            ("https://app.example.com\\@evil.com/", false),
            ("https://app.example.com/a b", false),
            ("https://app.example.com/\r\nSet-Cookie:x", false),
            ("https://app.example.com:/", false),
            ("https://app.example.com:99999999/", false),
            ("https://app.example.com?x", false),
            ("https://app.example.com./", false),
        ];
        for (raw, ok) in table {
            assert_eq!(r.safe_return_url(raw).is_some(), *ok, "{raw:?}");
        }
    }
}

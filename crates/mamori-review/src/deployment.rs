//! The security review of a mamori deployment: the well-architected checks of the product story,
//! over plain facts (accounts, application keys, settings) that the server gathers from its store
//! and configuration. Pure: the facts and `now` come in, findings go out, so every check is
//! tested on hand-built deployments in each state.

use crate::{Finding, Outcome, Review, Severity};

/// Credentials unused this long should be removed (CIS Foundations: 45 days).
pub const UNUSED_DAYS: i64 = 45;
/// Application keys should be rotated within this many days (CIS: 90 days for access keys).
pub const KEY_ROTATION_DAYS: i64 = 90;
/// The minimum password length: the server's default `password.min_length` and what this
/// review expects, one number for both. NIST SP 800-63B-4 section 3.1.1.2 asks for at least
/// 15 characters when the password is the only authentication factor and 8 when it is used
/// with a second factor; every account starts password-only (its setup link sets the
/// password before any MFA device exists, and `require_mfa` may leave it so), so 15.
pub const MIN_PASSWORD_LENGTH: u32 = 15;
/// `DR-TLS-CERT-EXPIRY` fails when the served certificate expires within this many days
/// (#22): time to notice a renewal that stopped working, as Let's Encrypt's own expiry
/// notices give (they start 20 days ahead; ACME renewal starts at a third of the lifetime
/// left, 30 days for a 90-day certificate).
pub const TLS_EXPIRY_WARN_DAYS: i64 = 14;
/// Recovery codes at or below this count raise the same alert as the console's.
pub const FEW_RECOVERY_CODES: u32 = 2;

const DAY: i64 = 86_400;

/// An MFA device kind as the review needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// An authenticator app (TOTP).
    Virtual,
    /// A FIDO2/U2F security key or passkey.
    SecurityKey,
    /// A vendor's OTP token.
    HardwareToken,
}

/// A contact detail's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contact {
    /// None given.
    Missing,
    /// Given but not proven with a code.
    Unverified,
    /// Proven.
    Verified,
}

/// One account's facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountFacts {
    /// User name.
    pub name: String,
    /// The root account.
    pub is_root: bool,
    /// Whether a password is set (an account still waiting for its setup link has none).
    pub has_password: bool,
    /// Kinds of the enabled MFA devices.
    pub devices: Vec<DeviceKind>,
    /// Unused recovery codes.
    pub recovery_codes: u32,
    /// E-mail address state.
    pub email: Contact,
    /// Phone number state.
    pub phone: Contact,
    /// Unix time of creation.
    pub created_at: i64,
    /// Unix time of the last successful sign-in, if any.
    pub last_sign_in: Option<i64>,
}

/// One application key's facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppKeyFacts {
    /// Application name.
    pub name: String,
    /// Unix time of creation.
    pub created_at: i64,
    /// Unix time of the last validation request made with it, if any.
    pub last_used: Option<i64>,
    /// Revoked keys are not reviewed.
    pub revoked: bool,
}

/// Which accounts must enroll MFA before anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequireMfa {
    /// Only root.
    Root,
    /// Every account.
    All,
    /// None.
    None,
}

/// The deployment's settings that the review judges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsFacts {
    /// `password.min_length`.
    pub password_min_length: u32,
    /// `require_mfa`.
    pub require_mfa: RequireMfa,
    /// The configured public URL.
    pub public_url: String,
    /// Whether session cookies carry `Secure`.
    pub secure_cookies: bool,
    /// The phone gateway provider (`webhook`, `log`), or `None` when none is configured.
    pub phone_gateway: Option<String>,
    /// Whether email delivery (an SMTP server) is configured.
    pub email_delivery: bool,
    /// Whether accounts may recover by alternative factors (an email code, then a phone code;
    /// `recovery.alternative_factors` is not `off`).
    pub alternative_factor_recovery: bool,
    /// How long audit events must be kept, in days.
    pub audit_retention_days: u32,
    /// Unix time the deployment first started (its database was created).
    pub first_start: i64,
    /// Unix time of the oldest audit event still stored, if any.
    pub oldest_audit_event: Option<i64>,
    /// Unix time the certificate the server itself serves expires (`[tls]`, #22); `None`
    /// when TLS is terminated elsewhere (a proxy).
    pub tls_certificate_expiry: Option<i64>,
    /// Forward authentication (#18); `None` when no `[forward_auth]` rule is configured.
    pub forward_auth: Option<ForwardAuthFacts>,
}

/// What the review judges of forward authentication (#18, docs/forward-auth.md).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ForwardAuthFacts {
    /// Rules whose policy is `one_factor`, as `rule N (HOST)`: a password alone opens them for
    /// accounts without a device.
    pub one_factor_rules: Vec<String>,
    /// Hosts of protected applications that proxies have asked about with an `http://`
    /// address (seen by this server since it started): the single-sign-on cookie and everything
    /// the application shows travel unencrypted.
    pub plain_http_hosts: Vec<String>,
}

/// One registered OpenID Connect client as stored (#17, docs/oidc.md). The review reads the
/// stored clients rather than trusting that registration refused bad URIs: rows from older
/// versions or edited in the database directly are judged too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcClientFacts {
    /// The client's name.
    pub name: String,
    /// Registered redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Registered post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// Its `require` is `one_factor`: a password alone signs in to it.
    pub one_factor: bool,
}

/// Everything the review looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentFacts {
    /// Every account, root included.
    pub accounts: Vec<AccountFacts>,
    /// Every application key.
    pub app_keys: Vec<AppKeyFacts>,
    /// The settings.
    pub settings: SettingsFacts,
    /// #17: every registered OpenID Connect client (empty: the provider is unused).
    pub oidc_clients: Vec<OidcClientFacts>,
}

fn check(
    id: &'static str,
    title: &'static str,
    severity: Severity,
    affected: Vec<String>,
    remedy: &str,
    link: &str,
) -> Finding {
    Finding {
        id,
        title,
        severity,
        outcome: if affected.is_empty() {
            Outcome::Pass
        } else {
            Outcome::Fail
        },
        affected,
        remedy: remedy.to_string(),
        link: Some(link.to_string()),
    }
}

/// `DR-RECOVERY-DELIVERY`: both channels of alternative-factor recovery are configured.
fn recovery_delivery(s: &SettingsFacts) -> Finding {
    const ID: &str = "DR-RECOVERY-DELIVERY";
    const TITLE: &str = "Recovery by alternative factors can deliver its email and phone codes";
    const LINK: &str = "/docs/recovery.md";
    if !s.alternative_factor_recovery {
        return Finding {
            id: ID,
            title: TITLE,
            severity: Severity::High,
            outcome: Outcome::NotApplicable,
            affected: vec![],
            remedy: "recovery.alternative_factors = \"off\": no recovery codes are sent by email \
                     or phone"
                .to_string(),
            link: Some(LINK.to_string()),
        };
    }
    let mut missing = Vec::new();
    if !s.email_delivery {
        missing.push("email delivery is not configured (smtp.host)".to_string());
    }
    if s.phone_gateway.is_none() {
        missing.push("phone delivery is not configured (phone.provider)".to_string());
    }
    check(
        ID,
        TITLE,
        Severity::High,
        missing,
        "configure an SMTP server (smtp.host) and a phone gateway (phone.provider = \"webhook\"), \
         check them with `mamori-server admin test-email` and `admin test-phone`, or set \
         recovery.alternative_factors = \"off\"",
        LINK,
    )
}

/// `DR-TLS-CERT-EXPIRY`: the certificate served with built-in TLS has 14 days or more left.
fn tls_expiry(s: &SettingsFacts, now: i64) -> Finding {
    const ID: &str = "DR-TLS-CERT-EXPIRY";
    const TITLE: &str = "The server's TLS certificate is valid for 14 more days or longer";
    const LINK: &str = "/docs/server.md#https";
    const REMEDY: &str = "renew the certificate: with tls.acme, read the server log's `acme:` \
                          lines for why renewal fails; with certificate files, replace them (the \
                          server reloads them by itself)";
    let Some(expiry) = s.tls_certificate_expiry else {
        return Finding {
            id: ID,
            title: TITLE,
            severity: Severity::High,
            outcome: Outcome::NotApplicable,
            affected: vec![],
            remedy: "the server does not serve TLS itself: check the certificate of the proxy \
                     in front of it"
                .to_string(),
            link: Some(LINK.to_string()),
        };
    };
    let left = expiry - now;
    let affected = if left <= 0 {
        vec![format!("the certificate expired {} days ago", days(-left))]
    } else if left < TLS_EXPIRY_WARN_DAYS * DAY {
        vec![format!(
            "the certificate expires in {} days ({} hours)",
            days(left),
            left / 3600
        )]
    } else {
        vec![]
    };
    check(ID, TITLE, Severity::High, affected, REMEDY, LINK)
}

/// `DR-FWD-ONE-FACTOR` and `DR-FWD-HTTPS` (#18): the forward-auth rules ask for a second factor
/// and the protected applications are reached over HTTPS. Not applicable without rules.
fn forward_auth(s: &SettingsFacts) -> [Finding; 2] {
    const LINK: &str = "/docs/forward-auth.md#security-review";
    const ONE_TITLE: &str = "Forward-auth rules ask for a second factor (no one_factor rules)";
    const HTTPS_TITLE: &str = "Applications behind forward authentication are reached over HTTPS";
    let Some(fa) = &s.forward_auth else {
        let na = |id, title, severity| Finding {
            id,
            title,
            severity,
            outcome: Outcome::NotApplicable,
            affected: vec![],
            remedy: "forward authentication is off (no [forward_auth] rules)".to_string(),
            link: Some(LINK.to_string()),
        };
        return [
            na("DR-FWD-ONE-FACTOR", ONE_TITLE, Severity::Medium),
            na("DR-FWD-HTTPS", HTTPS_TITLE, Severity::High),
        ];
    };
    [
        check(
            "DR-FWD-ONE-FACTOR",
            ONE_TITLE,
            Severity::Medium,
            fa.one_factor_rules.clone(),
            "change these rules to policy = \"two_factor\" (or \"phishing_resistant\"), or limit \
             them to the users or groups that must get in with a password alone",
            LINK,
        ),
        check(
            "DR-FWD-HTTPS",
            HTTPS_TITLE,
            Severity::High,
            fa.plain_http_hosts
                .iter()
                .map(|h| format!("http://{h} is protected without HTTPS"))
                .collect(),
            "serve these applications over HTTPS at the proxy (the single-sign-on cookie is \
             then sent with Secure) and redirect http:// to https://",
            LINK,
        ),
    ]
}

/// Percent-decodes `s` once (RFC 3986 §2.1); a `%` not followed by two hex digits stays.
fn percent_decode_once(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |j: usize| b.get(j).and_then(|c| (*c as char).to_digit(16));
        match (b.get(i), hex(i + 1), hex(i + 2)) {
            (Some(b'%'), Some(h), Some(l)) => {
                // Two hex digits: at most 255.
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'%'));
                i += 3;
            }
            (Some(c), _, _) => {
                out.push(*c);
                i += 1;
            }
            (None, _, _) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a registered URI looks like a wildcard (`DR-OIDC-REDIRECT-WILDCARD`,
/// docs/oidc.md): after percent-decoding it up to three times (so `%2A` and `%252A` count as
/// `*`), it contains `*`, or a `{` or `}` (a template placeholder such as `{tenant}`), or its
/// host starts with `.` or has an empty label (`https://.example.com/`, a cookie-style domain
/// pattern). mamori matches redirect URIs exactly, so none of these is a wildcard here; a
/// client registered with one was registered by someone who expected it to be, and the URI
/// it actually allows is not the one they meant.
pub fn wildcard_looking(uri: &str) -> bool {
    let mut u = uri.to_string();
    for _ in 0..3 {
        let next = percent_decode_once(&u);
        if next == u {
            break;
        }
        u = next;
    }
    if u.contains(['*', '{', '}']) {
        return true;
    }
    let host = authority_host(&u).unwrap_or_default();
    !host.is_empty() && !host.starts_with('[') && (host.starts_with('.') || host.contains(".."))
}

/// The host of an absolute URI's authority (`scheme://[userinfo@]host[:port]/…`), lowercase,
/// IPv6 literals with their brackets; `None` without `//`.
fn authority_host(uri: &str) -> Option<String> {
    let rest = uri.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host_port.starts_with('[') {
        host_port
            .find(']')
            .and_then(|end| host_port.get(..=end))
            .unwrap_or(host_port)
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    Some(host.to_ascii_lowercase())
}

/// Whether a registered URI is `http://` to a host other than loopback
/// (`DR-OIDC-HTTP-REDIRECT`): the code (and, at logout, the state) would cross the network
/// unencrypted. Loopback is `localhost`, `127.0.0.0/8` and `[::1]` (RFC 8252 §7.3, §8.3: a
/// native application on the same machine).
pub fn plain_http_not_loopback(uri: &str) -> bool {
    let is_http = uri
        .get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("http://"));
    if !is_http {
        return false;
    }
    let host = authority_host(uri).unwrap_or_default();
    let loopback = host == "localhost"
        || host == "localhost."
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
        || host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .and_then(|h| h.parse::<std::net::Ipv6Addr>().ok())
            .is_some_and(|ip| ip.is_loopback());
    !loopback
}

/// `DR-OIDC-REDIRECT-WILDCARD`, `DR-OIDC-HTTP-REDIRECT` and `DR-OIDC-ONE-FACTOR` (#17): the
/// registered clients' redirect and post-logout URIs are exact, encrypted ones, and each client
/// asks for a second factor. Not applicable without clients.
fn oidc(clients: &[OidcClientFacts]) -> [Finding; 3] {
    const LINK: &str = "/docs/oidc.md#security-review";
    const WILDCARD_TITLE: &str =
        "OpenID clients register exact redirect URIs (nothing that looks like a wildcard)";
    const HTTP_TITLE: &str = "OpenID clients redirect over HTTPS (http:// only to loopback)";
    const ONE_TITLE: &str = "OpenID clients ask for a second factor (no one_factor clients)";
    if clients.is_empty() {
        let na = |id, title, severity| Finding {
            id,
            title,
            severity,
            outcome: Outcome::NotApplicable,
            affected: vec![],
            remedy: "no OpenID Connect client is registered".to_string(),
            link: Some(LINK.to_string()),
        };
        return [
            na("DR-OIDC-REDIRECT-WILDCARD", WILDCARD_TITLE, Severity::High),
            na("DR-OIDC-HTTP-REDIRECT", HTTP_TITLE, Severity::High),
            na("DR-OIDC-ONE-FACTOR", ONE_TITLE, Severity::Medium),
        ];
    }
    let uris = |bad: fn(&str) -> bool| -> Vec<String> {
        clients
            .iter()
            .flat_map(|c| {
                c.redirect_uris
                    .iter()
                    .chain(&c.post_logout_redirect_uris)
                    .filter(|u| bad(u))
                    .map(move |u| format!("client {}: {u}", c.name))
            })
            .collect()
    };
    [
        check(
            "DR-OIDC-REDIRECT-WILDCARD",
            WILDCARD_TITLE,
            Severity::High,
            uris(wildcard_looking),
            "register the exact addresses the application uses (one --redirect-uri per address; \
             mamori compares them character for character) and delete the client or register \
             it again without these",
            LINK,
        ),
        check(
            "DR-OIDC-HTTP-REDIRECT",
            HTTP_TITLE,
            Severity::High,
            uris(plain_http_not_loopback),
            "serve the application over HTTPS and register its https:// addresses (http:// is \
             for applications on the same machine, at 127.0.0.1, [::1] or localhost)",
            LINK,
        ),
        check(
            "DR-OIDC-ONE-FACTOR",
            ONE_TITLE,
            Severity::Medium,
            clients
                .iter()
                .filter(|c| c.one_factor)
                .map(|c| format!("client {}", c.name))
                .collect(),
            "register these clients with --require two_factor (the default) or \
             phishing_resistant, or limit them with --allow-user / --allow-group to the accounts \
             that must get in with a password alone",
            LINK,
        ),
    ]
}

fn days(secs: i64) -> i64 {
    secs / DAY
}

fn is_https(url: &str) -> bool {
    url.get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case("https://"))
}

/// Whether losing one device locks an account out: it has exactly one enabled device and no
/// unused recovery code. The one rule behind both the review's `DR-LOCKOUT-RISK` and the
/// server's `single_mfa_device` alert (issue #15), so they cannot disagree.
pub fn single_device_lockout(enabled_devices: usize, unused_recovery_codes: u32) -> bool {
    enabled_devices == 1 && unused_recovery_codes == 0
}

/// Reviews a deployment as of `now` (Unix seconds).
pub fn review(facts: &DeploymentFacts, now: i64) -> Review {
    let s = &facts.settings;
    let root: Vec<&AccountFacts> = facts.accounts.iter().filter(|a| a.is_root).collect();
    let mut f = Vec::new();

    f.push(check(
        "DR-ROOT-MFA",
        "The root account has MFA",
        Severity::High,
        root.iter()
            .filter(|a| a.devices.is_empty())
            .map(|a| a.name.clone())
            .collect(),
        "sign in as root and assign an MFA device under My security credentials",
        "/security",
    ));
    f.push(check(
        "DR-ROOT-HARDWARE",
        "The root account has a security key or hardware token, not only an app",
        Severity::Medium,
        root.iter()
            .filter(|a| {
                !a.devices
                    .iter()
                    .any(|k| matches!(k, DeviceKind::SecurityKey | DeviceKind::HardwareToken))
            })
            .map(|a| a.name.clone())
            .collect(),
        "register a security key (or assign a hardware OTP token) for root, and keep it somewhere safe",
        "/security",
    ));
    // #15 contacts: without verified contacts root cannot recover with alternative factors
    // (AWS's console asks root for them for this reason).
    f.push(check(
        "DR-ROOT-CONTACTS",
        "The root account has a verified email address and phone number",
        Severity::Medium,
        root.iter()
            .filter(|a| a.email != Contact::Verified || a.phone != Contact::Verified)
            .map(|a| a.name.clone())
            .collect(),
        "add root's email address and phone number in the console (My security credentials, \
         Contact details: each is proven with a code) or on the server host with \
         `mamori-server admin set-contacts root --email ADDRESS --phone NUMBER --verified`",
        "/security/contacts",
    ));
    let users = || facts.accounts.iter();
    f.push(check(
        "DR-USER-MFA",
        "Every account with a password has MFA",
        Severity::High,
        users()
            .filter(|a| a.has_password && a.devices.is_empty())
            .map(|a| a.name.clone())
            .collect(),
        "ask these users to assign an MFA device, or set require_mfa = \"all\" so they must",
        "/users",
    ));
    f.push(check(
        "DR-LOCKOUT-RISK",
        "No account depends on a single device without recovery codes",
        Severity::Medium,
        users()
            .filter(|a| single_device_lockout(a.devices.len(), a.recovery_codes))
            .map(|a| a.name.clone())
            .collect(),
        "add a second device (another phone or a security key) or generate recovery codes",
        "/users",
    ));
    f.push(check(
        "DR-FEW-RECOVERY-CODES",
        "Accounts that use recovery codes have more than two left",
        Severity::Low,
        users()
            .filter(|a| a.recovery_codes > 0 && a.recovery_codes <= FEW_RECOVERY_CODES)
            .map(|a| format!("{} ({} left)", a.name, a.recovery_codes))
            .collect(),
        "generate a new set of recovery codes (the old set stops working)",
        "/security",
    ));
    f.push(check(
        "DR-CONTACTS-UNVERIFIED",
        "Recovery contacts are verified",
        Severity::Low,
        users()
            .filter(|a| a.email == Contact::Unverified || a.phone == Contact::Unverified)
            .map(|a| {
                let what: Vec<&str> = [
                    (a.email == Contact::Unverified).then_some("email"),
                    (a.phone == Contact::Unverified).then_some("phone"),
                ]
                .into_iter()
                .flatten()
                .collect();
                format!("{} ({} unverified)", a.name, what.join(" and "))
            })
            .collect(),
        "verify the e-mail address and phone number (a code is sent to each) so they can be used to recover the account",
        "/security",
    ));
    let limit = UNUSED_DAYS * DAY;
    f.push(check(
        "DR-UNUSED-ACCOUNTS",
        "Accounts unused for 45 days or more are removed",
        Severity::Medium,
        users()
            .filter(|a| a.has_password)
            .filter_map(|a| match a.last_sign_in {
                Some(t) if now - t >= limit => Some(format!(
                    "{} (last sign-in {} days ago)",
                    a.name,
                    days(now - t)
                )),
                None if now - a.created_at >= limit => Some(format!(
                    "{} (never signed in, created {} days ago)",
                    a.name,
                    days(now - a.created_at)
                )),
                _ => None,
            })
            .collect(),
        "ask whether these accounts are still needed; remove the ones nobody claims",
        "/users",
    ));
    let keys = || facts.app_keys.iter().filter(|k| !k.revoked);
    f.push(check(
        "DR-UNUSED-APP-KEYS",
        "Application keys unused for 45 days or more are revoked",
        Severity::Medium,
        keys()
            .filter_map(|k| match k.last_used {
                Some(t) if now - t >= limit => {
                    Some(format!("{} (last used {} days ago)", k.name, days(now - t)))
                }
                None if now - k.created_at >= limit => Some(format!(
                    "{} (never used, created {} days ago)",
                    k.name,
                    days(now - k.created_at)
                )),
                _ => None,
            })
            .collect(),
        "revoke keys no application uses any more",
        "/app-keys",
    ));
    f.push(check(
        "DR-OLD-APP-KEYS",
        "Application keys are rotated within 90 days",
        Severity::Medium,
        keys()
            .filter(|k| now - k.created_at > KEY_ROTATION_DAYS * DAY)
            .map(|k| format!("{} ({} days old)", k.name, days(now - k.created_at)))
            .collect(),
        "create a new key, move the application to it, then revoke the old one",
        "/app-keys",
    ));
    f.push(check(
        "DR-PASSWORD-LENGTH",
        "The password policy requires 15 or more characters (NIST SP 800-63B-4)",
        Severity::Medium,
        if s.password_min_length < MIN_PASSWORD_LENGTH {
            vec![format!("password.min_length = {}", s.password_min_length)]
        } else {
            vec![]
        },
        "set password.min_length = 15 (or more) in the configuration and restart",
        "/docs/server.md#configuration",
    ));
    f.push(check(
        "DR-REQUIRE-MFA-ALL",
        "Every account must enroll MFA (require_mfa = \"all\")",
        Severity::Medium,
        if s.require_mfa == RequireMfa::All {
            vec![]
        } else {
            vec![format!(
                "require_mfa = \"{}\"",
                match s.require_mfa {
                    RequireMfa::Root => "root",
                    RequireMfa::None => "none",
                    RequireMfa::All => "all",
                }
            )]
        },
        "set require_mfa = \"all\" so that every account enrolls MFA right after its password",
        "/docs/server.md#configuration",
    ));
    let mut transport = Vec::new();
    if !is_https(&s.public_url) {
        transport.push(format!("public URL {} is not https", s.public_url));
    }
    if !s.secure_cookies {
        transport.push("session cookies are sent without Secure".to_string());
    }
    f.push(check(
        "DR-SECURE-TRANSPORT",
        "The server is reached over HTTPS with secure cookies",
        Severity::High,
        transport,
        "serve HTTPS itself ([tls] cert_file and key_file, or [tls] acme) or put the server behind a \
         TLS-terminating proxy, and set public_url to its https:// address",
        "/docs/server.md#https",
    ));
    f.push(tls_expiry(s, now));
    f.extend(forward_auth(s));
    f.extend(oidc(&facts.oidc_clients));
    f.push(check(
        "DR-PHONE-GATEWAY",
        "Phone verification codes go to a real gateway, not the log",
        Severity::Medium,
        match s.phone_gateway.as_deref() {
            Some(g) if g.eq_ignore_ascii_case("log") => {
                vec!["phone.provider = \"log\" writes codes into the server log".to_string()]
            }
            _ => vec![],
        },
        "configure the webhook phone gateway of your SMS or voice provider",
        "/docs/recovery.md",
    ));
    // #15 delivery: recovery by alternative factors sends one code by email and one by phone;
    // with either channel missing nobody can use it, and users find out only when they have
    // lost their device. When that recovery is off there is nothing to deliver: not applicable
    // rather than a pass, so the review does not claim delivery works.
    f.push(recovery_delivery(s));
    // Retention: events younger than the retention period (or than the deployment) must all
    // still be there. The oldest stored event must therefore be at least as old as the later
    // of the deployment's first start and the retention horizon, give or take a day.
    let horizon = (now - i64::from(s.audit_retention_days) * DAY).max(s.first_start);
    let retention = match s.oldest_audit_event {
        _ if now - s.first_start < DAY => vec![],
        Some(t) if t <= horizon + DAY => vec![],
        Some(t) => vec![format!(
            "the oldest event is {} days old, but {} days should be kept",
            days(now - t),
            days(now - horizon)
        )],
        None => vec!["the audit log is empty".to_string()],
    };
    f.push(check(
        "DR-AUDIT-RETENTION",
        "The audit log is retained for the configured period",
        Severity::Medium,
        retention,
        "find out what removed audit events, restore them from backups, and keep the database's audit table",
        "/audit",
    ));

    Review { findings: f }
}

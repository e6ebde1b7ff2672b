//! The module's configuration: a root-only file (`/etc/mamori/pam.conf` by default) with the
//! server's address and the application key, plus the arguments on the module's line in the PAM
//! service file. Parsing is pure ([`Config::parse`]); [`Config::load`] adds the file checks.
//!
//! ```text
//! # /etc/mamori/pam.conf (owner root, mode 0600)
//! url = https://mfa.example.com
//! app_key = mamori_ak_...
//! timeout = 5                 # seconds per request, 1-60
//! ca_file = /etc/mamori/ca.pem  # optional, trusted beside the Mozilla roots
//! code_in_password = false    # the code is typed after the password in one field
//! code_digits = 6             # with code_in_password: how many trailing digits are the code
//! map = ops-alice alice       # local user -> mamori user (repeatable)
//! no_device = deny            # users without an MFA device: deny, or allow when the server
//!                             # says so (POST /api/v1/validate/status, a key with
//!                             # allow_no_device)
//! ```

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::error::ConfigError;

/// Where the configuration is read from unless the module line says `config=PATH`.
pub const DEFAULT_PATH: &str = "/etc/mamori/pam.conf";

/// The configuration file is at most this long (it holds a handful of lines).
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// What happens to a user whose account has no MFA device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NoDevice {
    /// Asked for a code like everyone, which the server then refuses (the validate API answers
    /// an account without a device as a wrong code).
    #[default]
    Deny,
    /// Before asking for a code, the server is asked whether the account has no device
    /// (`POST /api/v1/validate/status`); only its `no_device` lets the user in without one.
    Allow,
}

/// Everything the module needs for one authentication.
pub struct Config {
    /// The server's base URL, without a trailing slash.
    pub url: String,
    /// The application key (`mamori_ak_…`); never printed.
    pub app_key: Zeroizing<String>,
    /// The whole request's time limit.
    pub timeout: Duration,
    /// Extra trust anchors (PEM) beside the Mozilla root set.
    pub ca_file: Option<PathBuf>,
    /// The code follows the password in the one field (`PAM_AUTHTOK`).
    pub code_in_password: bool,
    /// With `code_in_password`: the number of trailing digits that are the code.
    pub code_digits: usize,
    /// Local user name -> mamori user name; names not listed are used as they are.
    pub user_map: Vec<(String, String)>,
    /// Users without an MFA device.
    pub no_device: NoDevice,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("url", &self.url)
            .field("app_key", &"[redacted]")
            .field("timeout", &self.timeout)
            .field("ca_file", &self.ca_file)
            .field("code_in_password", &self.code_in_password)
            .field("code_digits", &self.code_digits)
            .field("user_map", &self.user_map)
            .field("no_device", &self.no_device)
            .finish()
    }
}

/// The arguments on the module's line: `config=PATH` and the options that may also be set
/// there (`code_in_password`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Args {
    pub config: Option<PathBuf>,
    pub code_in_password: bool,
}

impl Args {
    pub fn parse<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<Args, ConfigError> {
        let mut out = Args::default();
        for a in args {
            if let Some(p) = a.strip_prefix("config=") {
                out.config = Some(PathBuf::from(p));
            } else if a == "code_in_password" {
                out.code_in_password = true;
            } else {
                return Err(ConfigError::UnknownArgument(a.to_string()));
            }
        }
        Ok(out)
    }

    /// The configuration file this line names.
    pub fn config_path(&self) -> &Path {
        self.config.as_deref().unwrap_or(Path::new(DEFAULT_PATH))
    }
}

impl Config {
    /// Reads `path` after checking that only its owner (root, or the user running the
    /// module) can read or change it: it holds the application key.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let display = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|e| ConfigError::Read(display.clone(), e))?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        if meta.uid() != 0 && meta.uid() != euid {
            return Err(ConfigError::NotOwnedByRoot(display));
        }
        if meta.mode() & 0o077 != 0 {
            return Err(ConfigError::TooOpen(display, meta.mode() & 0o777));
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(ConfigError::TooLarge(display));
        }
        let text = Zeroizing::new(
            std::fs::read_to_string(path).map_err(|e| ConfigError::Read(display.clone(), e))?,
        );
        Config::parse(&text)
    }

    /// Parses the file's text (`key = value` lines, `#` comments).
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let mut url = None;
        let mut app_key = None;
        let mut timeout = Duration::from_secs(5);
        let mut ca_file = None;
        let mut code_in_password = false;
        let mut code_digits = 6;
        let mut user_map = Vec::new();
        let mut no_device = NoDevice::Deny;
        let mut seen: Vec<&str> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = raw.split_once('#').map_or(raw, |(l, _)| l).trim();
            if line.is_empty() {
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or(ConfigError::Syntax(line_no))?;
            if key != "map" {
                if seen.contains(&key) {
                    return Err(ConfigError::Duplicate(line_no, key.to_string()));
                }
                seen.push(key);
            }
            let bad = |why: &str| ConfigError::Value(line_no, key.to_string(), why.to_string());
            match key {
                "url" => url = Some(check_url(value).map_err(|w| bad(&w))?),
                "app_key" => {
                    if !value.starts_with("mamori_ak_") || value.len() > 200 {
                        return Err(bad("an application key starts with mamori_ak_"));
                    }
                    app_key = Some(Zeroizing::new(value.to_string()));
                }
                "timeout" => {
                    let s: u64 = value.parse().map_err(|_| bad("whole seconds, 1 to 60"))?;
                    if !(1..=60).contains(&s) {
                        return Err(bad("whole seconds, 1 to 60"));
                    }
                    timeout = Duration::from_secs(s);
                }
                "ca_file" => ca_file = Some(PathBuf::from(value)),
                "code_in_password" => {
                    code_in_password = parse_bool(value).ok_or(bad("true or false"))?
                }
                "code_digits" => {
                    code_digits = match value {
                        "6" => 6,
                        "8" => 8,
                        _ => return Err(bad("6 or 8")),
                    }
                }
                "map" => {
                    let mut parts = value.split_whitespace();
                    match (parts.next(), parts.next(), parts.next()) {
                        (Some(local), Some(remote), None) => {
                            user_map.push((local.to_string(), remote.to_string()))
                        }
                        _ => return Err(bad("LOCAL-USER MAMORI-USER")),
                    }
                }
                "no_device" => {
                    no_device = match value {
                        "deny" => NoDevice::Deny,
                        "allow" => NoDevice::Allow,
                        _ => return Err(bad("deny or allow")),
                    }
                }
                other => return Err(ConfigError::UnknownKey(line_no, other.to_string())),
            }
        }
        Ok(Config {
            url: url.ok_or(ConfigError::Missing("url"))?,
            app_key: app_key.ok_or(ConfigError::Missing("app_key"))?,
            timeout,
            ca_file,
            code_in_password,
            code_digits,
            user_map,
            no_device,
        })
    }

    /// The mamori user name for a local one.
    pub fn mamori_user<'a>(&'a self, local: &'a str) -> &'a str {
        self.user_map
            .iter()
            .find(|(l, _)| l == local)
            .map_or(local, |(_, r)| r.as_str())
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "true" | "yes" | "1" => Some(true),
        "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

/// `https://HOST[:PORT][/PREFIX]`, or `http://` to a loopback address only: the application key
/// travels in every request and must not cross a network in clear.
fn check_url(v: &str) -> Result<String, String> {
    let rest = if let Some(r) = v.strip_prefix("https://") {
        r
    } else if let Some(r) = v.strip_prefix("http://") {
        let host = r.split(['/', '?', '#']).next().unwrap_or("");
        let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
        let name = if host.starts_with('[') {
            host.split(']')
                .next()
                .map(|h| format!("{h}]"))
                .unwrap_or_default()
        } else {
            host.split(':').next().unwrap_or("").to_string()
        };
        if !matches!(name.as_str(), "127.0.0.1" | "localhost" | "[::1]") {
            return Err(
                "https:// (http:// only to a loopback address: 127.0.0.1, localhost or [::1])"
                    .into(),
            );
        }
        r
    } else {
        return Err("an https:// URL".into());
    };
    if rest.is_empty() || rest.starts_with('/') || v.contains(['?', '#', ' ']) {
        return Err("an https:// URL with a host and no query".into());
    }
    Ok(v.trim_end_matches('/').to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    const KEY: &str = "mamori_ak_0123456789abcdef";

    fn parse(t: &str) -> Result<Config, ConfigError> {
        Config::parse(t)
    }

    #[test]
    fn a_full_file_parses() {
        let c = parse(&format!(
            "# comment\nurl = https://mfa.example.com/\napp_key = {KEY}\ntimeout = 3 # s\n\
             ca_file = /etc/mamori/ca.pem\ncode_in_password = yes\ncode_digits = 8\n\
             map = ops-alice alice\nmap = bob robert\nno_device = allow\n"
        ))
        .unwrap();
        assert_eq!(c.url, "https://mfa.example.com");
        assert_eq!(c.app_key.as_str(), KEY);
        assert_eq!(c.timeout, Duration::from_secs(3));
        assert_eq!(c.ca_file.as_deref(), Some(Path::new("/etc/mamori/ca.pem")));
        assert!(c.code_in_password);
        assert_eq!(c.code_digits, 8);
        assert_eq!(c.mamori_user("ops-alice"), "alice");
        assert_eq!(c.mamori_user("bob"), "robert");
        assert_eq!(c.mamori_user("carol"), "carol");
        assert_eq!(c.no_device, NoDevice::Allow);
        assert!(!format!("{c:?}").contains(KEY), "the key is never printed");
    }

    #[test]
    fn defaults_apply() {
        let c = parse(&format!("url = http://127.0.0.1:8080\napp_key = {KEY}\n")).unwrap();
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert!(!c.code_in_password);
        assert_eq!(c.code_digits, 6);
        assert_eq!(
            c.no_device,
            NoDevice::Deny,
            "today's behaviour unless asked for"
        );
        let c = parse(&format!(
            "url = http://127.0.0.1:8080\napp_key = {KEY}\nno_device = deny\n"
        ))
        .unwrap();
        assert_eq!(c.no_device, NoDevice::Deny);
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let cases: &[(&str, &str)] = &[
            ("app_key = mamori_ak_x\n", "url"),
            ("url = https://a.example\n", "app_key"),
            ("url https://a.example\n", "line 1"),
            ("url = https://a\nurl = https://b\n", "twice"),
            ("colour = blue\n", "unknown setting"),
            ("url = http://mfa.example.com\n", "loopback"),
            ("url = http://127.0.0.1.evil.example\n", "loopback"),
            ("url = http://user@evil.example\n", "loopback"),
            ("url = ftp://a.example\n", "https"),
            ("url = https://\n", "host"),
            ("url = https://a.example/?x=1\n", "host"),
            ("app_key = secret\n", "mamori_ak_"),
            ("timeout = 0\n", "1 to 60"),
            ("timeout = 61\n", "1 to 60"),
            ("timeout = soon\n", "1 to 60"),
            ("code_digits = 7\n", "6 or 8"),
            ("code_in_password = maybe\n", "true or false"),
            ("map = onlyone\n", "LOCAL-USER"),
            ("no_device = yes\n", "deny or allow"),
            ("no_device = Allow\n", "deny or allow"),
            ("no_device =\n", "deny or allow"),
        ];
        for (text, expect) in cases {
            let e = match parse(text) {
                Ok(_) => panic!("{text:?} was accepted"),
                Err(e) => e.to_string(),
            };
            assert!(e.contains(expect), "{text:?}: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
    }

    #[test]
    fn loopback_http_is_allowed() {
        for u in [
            "http://127.0.0.1:1",
            "http://localhost",
            "http://[::1]:8080/mfa",
        ] {
            parse(&format!("url = {u}\napp_key = {KEY}\n")).unwrap();
        }
    }

    #[test]
    fn module_arguments() {
        let a = Args::parse(["config=/tmp/p.conf", "code_in_password"]).unwrap();
        assert_eq!(a.config_path(), Path::new("/tmp/p.conf"));
        assert!(a.code_in_password);
        assert_eq!(
            Args::parse([]).unwrap().config_path(),
            Path::new(DEFAULT_PATH)
        );
        assert!(Args::parse(["debug=yes"])
            .unwrap_err()
            .to_string()
            .contains("debug=yes"));
    }

    #[test]
    fn the_file_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pam.conf");
        std::fs::write(&p, format!("url = https://a.example\napp_key = {KEY}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Config::load(&p).unwrap_err().to_string();
        assert!(e.contains("0644"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        Config::load(&p).unwrap();
        let e = Config::load(&dir.path().join("absent"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("absent"), "{e}");
    }
}

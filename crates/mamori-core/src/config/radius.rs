//! `[radius]`: the RADIUS server (#19, docs/radius.md). Off while `listen` is unset.
//!
//! ```toml
//! [radius]
//! listen = "0.0.0.0:1812"
//!
//! [[radius.clients]]
//! name = "vpn"                  # in audit events as radius:vpn
//! address = "10.0.0.0/24"       # one address or a network
//! secret_file = "/etc/mamori/radius-vpn.secret"   # at least 16 bytes
//! mode = "password_code"        # password_code | challenge | code_only
//!
//! [[radius.replies]]            # attributes sent with an Access-Accept
//! user = "alice"
//! class = "admins"
//! filter_id = "full-access"
//! ```

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use serde::Deserialize;

use crate::error::{Error, Result};

/// How a client gives the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RadiusMode {
    /// PAP: the password followed by the code in User-Password (most VPN clients).
    #[default]
    PasswordCode,
    /// The password first; the server answers Access-Challenge and the code comes in a second
    /// Access-Request with the State (RFC 2865 §4.4).
    Challenge,
    /// Only the code: the client checked the password itself (validate API rules).
    CodeOnly,
}

/// One RADIUS client (a NAS: VPN gateway, access point, switch).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RadiusClient {
    /// Name in audit events and metrics.
    pub name: String,
    /// An address (`10.0.0.5`) or a network (`10.0.0.0/24`, `fd00::/8`).
    pub address: String,
    /// File holding the shared secret (read at start; trailing newline removed).
    pub secret_file: PathBuf,
    /// How the code is given.
    #[serde(default)]
    pub mode: RadiusMode,
    /// With `password_code`: how many trailing digits are the code (6 or 8).
    #[serde(default = "default_digits")]
    pub code_digits: u8,
    /// Whether this client may sign in root (default no: root answers as an unknown user).
    #[serde(default)]
    pub allow_root: bool,
    /// Access-Requests per minute from this client; more are dropped (the NAS retries).
    #[serde(default = "default_per_minute")]
    pub requests_per_minute: u32,
}

fn default_digits() -> u8 {
    6
}

fn default_per_minute() -> u32 {
    6000
}

/// Attributes sent with an Access-Accept to one user or to the members of one group (e.g.
/// `Class` for a VPN's policy). The user's own entries come first, then those of each of its
/// groups in the order of the file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RadiusReply {
    /// The account these are for (exactly one of `user` and `group`).
    pub user: Option<String>,
    /// The group these are for (#18's account groups).
    pub group: Option<String>,
    /// `Class` (25).
    pub class: Option<String>,
    /// `Filter-Id` (11).
    pub filter_id: Option<String>,
    /// `Reply-Message` (18).
    pub reply_message: Option<String>,
}

/// `[radius]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RadiusConfig {
    /// UDP address; unset = no RADIUS server.
    pub listen: Option<SocketAddr>,
    /// Clients allowed to ask; any other source is dropped.
    pub clients: Vec<RadiusClient>,
    /// Reply attributes per user.
    pub replies: Vec<RadiusReply>,
    /// Requests handled at once; more are dropped (the NAS retries).
    pub max_in_flight: usize,
}

impl Default for RadiusConfig {
    fn default() -> Self {
        RadiusConfig {
            listen: None,
            clients: Vec::new(),
            replies: Vec::new(),
            max_in_flight: 256,
        }
    }
}

/// An address or a network a client may send from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNetwork {
    addr: IpAddr,
    prefix: u8,
}

impl FromStr for IpNetwork {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an address or network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
            None => max,
        };
        Ok(IpNetwork { addr, prefix })
    }
}

impl IpNetwork {
    /// Whether `ip` is in this network (an IPv4-mapped IPv6 source counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl RadiusConfig {
    /// Checks names, networks, digits and limits (the secret files are read at start).
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.listen.is_some() && self.clients.is_empty() {
            return bad("radius.listen is set but no [[radius.clients]] is configured".into());
        }
        if self.max_in_flight == 0 {
            return bad("radius.max_in_flight must be at least 1".into());
        }
        let mut names = Vec::new();
        for c in &self.clients {
            if c.name.is_empty()
                || c.name.len() > 64
                || !c
                    .name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
            {
                return bad(format!(
                    "radius client name {:?}: 1-64 letters, digits, '-', '_' or '.'",
                    c.name
                ));
            }
            if names.contains(&&c.name) {
                return bad(format!("radius client name {:?} is used twice", c.name));
            }
            names.push(&c.name);
            if let Err(e) = c.address.parse::<IpNetwork>() {
                return bad(format!("radius client {}: address {e}", c.name));
            }
            if c.code_digits != 6 && c.code_digits != 8 {
                return bad(format!(
                    "radius client {}: code_digits must be 6 or 8",
                    c.name
                ));
            }
            if c.requests_per_minute == 0 {
                return bad(format!(
                    "radius client {}: requests_per_minute must be at least 1",
                    c.name
                ));
            }
        }
        for r in &self.replies {
            if r.user.is_some() == r.group.is_some() {
                return bad("each [[radius.replies]] names exactly one of user and group".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn networks() {
        let n: IpNetwork = "10.1.0.0/16".parse().unwrap();
        assert!(n.contains("10.1.200.3".parse().unwrap()));
        assert!(!n.contains("10.2.0.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one: IpNetwork = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let all: IpNetwork = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("192.0.2.1".parse().unwrap()));
        let v6: IpNetwork = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        for bad in [
            "10.0.0.0/33",
            "fd00::/129",
            "host.example",
            "10.0.0.0/x",
            "",
        ] {
            assert!(bad.parse::<IpNetwork>().is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_names_the_problem() {
        let client = |name: &str, address: &str, digits: u8| RadiusClient {
            name: name.into(),
            address: address.into(),
            secret_file: "/s".into(),
            mode: RadiusMode::PasswordCode,
            code_digits: digits,
            allow_root: false,
            requests_per_minute: 10,
        };
        let with = |clients| RadiusConfig {
            listen: Some("127.0.0.1:1812".parse().unwrap()),
            clients,
            ..RadiusConfig::default()
        };
        assert!(with(vec![client("vpn", "10.0.0.0/8", 6)])
            .validate()
            .is_ok());
        let e = |c: RadiusConfig| c.validate().unwrap_err().to_string();
        assert!(e(with(vec![])).contains("no [[radius.clients]]"));
        assert!(e(with(vec![client("v p n", "10.0.0.1", 6)])).contains("letters"));
        assert!(e(with(vec![client("vpn", "10.0.0.1/40", 6)])).contains("prefix"));
        assert!(e(with(vec![client("vpn", "10.0.0.1", 7)])).contains("6 or 8"));
        assert!(e(with(vec![
            client("a", "10.0.0.1", 6),
            client("a", "10.0.0.2", 6)
        ]))
        .contains("twice"));
        let mut both = with(vec![client("vpn", "10.0.0.1", 6)]);
        both.replies.push(RadiusReply {
            user: Some("a".into()),
            group: Some("g".into()),
            class: None,
            filter_id: None,
            reply_message: None,
        });
        assert!(e(both).contains("exactly one of user and group"));
        let toml = "listen = \"127.0.0.1:1812\"\n[[clients]]\nname = \"vpn\"\naddress = \"127.0.0.1\"\nsecret_file = \"/s\"\nmode = \"challenge\"\n";
        let c: RadiusConfig = toml::from_str(toml).unwrap();
        assert_eq!(c.clients[0].mode, RadiusMode::Challenge);
        assert_eq!(c.clients[0].code_digits, 6);
        assert!(toml::from_str::<RadiusConfig>("[[clients]]\nname = \"a\"\naddress = \"1.2.3.4\"\nsecret_file = \"/s\"\nmode = \"pap\"\n").is_err());
    }
}

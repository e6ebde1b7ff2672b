//! The RADIUS server (#19, docs/radius.md): Access-Requests over UDP from configured clients,
//! answered with the domain's decisions ([`crate::domain::radius`]). This edge decodes and
//! encodes packets ([`mamori_radius`]), knows the clients and their secrets, limits and
//! de-duplicates; it never judges a password or a code.
//!
//! Dropped without an answer (and counted in `mamori_radius_dropped_total{reason}`): packets
//! from unknown sources, malformed ones, ones without a valid Message-Authenticator, a
//! client's requests beyond its rate, requests beyond `max_in_flight`, and requests the
//! server could not decide (a database outage): the NAS then retries or fails over.
//! A retransmission (same source, identifier and Request Authenticator within 30 s) gets the
//! first answer again instead of a second decision (RFC 5080 §2.2.2), so a lost Accept is not
//! turned into a replay Reject.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use mamori_radius::{attr, code, Packet, PacketError};
use rand::rngs::OsRng;
use tokio::net::UdpSocket;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::clock::Clock;
use crate::config::radius::{IpNetwork, RadiusConfig, RadiusMode};
use crate::domain::radius::{RadiusOutcome, RadiusReject};
use crate::domain::{RequestMeta, Service};
use crate::error::{Error, Result};

/// How long an answer is kept for retransmissions of its request.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(30);
/// At most this many remembered requests (the oldest are forgotten first when full).
const DUPLICATE_MAX: usize = 65_536;
/// The prompt of an Access-Challenge.
const CODE_PROMPT: &str = "Verification code: ";

struct Client {
    name: String,
    network: IpNetwork,
    secret: Zeroizing<Vec<u8>>,
    mode: RadiusMode,
    digits: usize,
    allow_root: bool,
    limiter: DefaultDirectRateLimiter,
}

type DuplicateKey = (SocketAddr, u8, [u8; 16]);
/// When a request was first seen, and its answer once decided.
type Remembered = (Instant, Option<Vec<u8>>);

/// A bound RADIUS server, ready to [`RadiusServer::run`].
pub struct RadiusServer {
    socket: UdpSocket,
    clients: Vec<Client>,
    /// Reply attributes by user name and by group name.
    user_replies: HashMap<String, Vec<(u8, Vec<u8>)>>,
    group_replies: HashMap<String, Vec<(u8, Vec<u8>)>>,
    svc: Arc<Service>,
    clock: Arc<dyn Clock>,
    permits: Arc<Semaphore>,
    // None while the first copy is being decided.
    recent: Mutex<HashMap<DuplicateKey, Remembered>>,
}

/// Reads the clients' secrets and binds the socket; `None` when `[radius] listen` is unset.
pub async fn bind(
    cfg: &RadiusConfig,
    svc: Arc<Service>,
    clock: Arc<dyn Clock>,
) -> Result<Option<Arc<RadiusServer>>> {
    let Some(listen) = cfg.listen else {
        return Ok(None);
    };
    let mut clients = Vec::new();
    for c in &cfg.clients {
        let shown = c.secret_file.display();
        let raw = Zeroizing::new(std::fs::read(&c.secret_file).map_err(|e| {
            Error::Config(format!(
                "radius client {}: cannot read {shown}: {e}",
                c.name
            ))
        })?);
        let text: &[u8] = raw.as_slice();
        let end = text
            .iter()
            .rposition(|b| !matches!(b, b'\n' | b'\r'))
            .map_or(0, |i| i + 1);
        let secret = Zeroizing::new(text.get(..end).unwrap_or_default().to_vec());
        // RFC 2865 §3 asks for at least 16 octets; shorter ones are guessable offline from
        // one captured request.
        if secret.len() < 16 {
            return Err(Error::Config(format!(
                "radius client {}: the secret in {shown} is shorter than 16 bytes",
                c.name
            )));
        }
        let per_minute = NonZeroU32::new(c.requests_per_minute).unwrap_or(NonZeroU32::MIN);
        clients.push(Client {
            name: c.name.clone(),
            network: c
                .address
                .parse()
                .map_err(|e| Error::Config(format!("radius client {}: {e}", c.name)))?,
            secret,
            mode: c.mode,
            digits: usize::from(c.code_digits),
            allow_root: c.allow_root,
            limiter: RateLimiter::direct(Quota::per_minute(per_minute)),
        });
    }
    let mut user_replies: HashMap<String, Vec<(u8, Vec<u8>)>> = HashMap::new();
    let mut group_replies: HashMap<String, Vec<(u8, Vec<u8>)>> = HashMap::new();
    for r in &cfg.replies {
        let (map, name) = match (&r.user, &r.group) {
            (Some(u), _) => (&mut user_replies, u),
            (None, Some(g)) => (&mut group_replies, g),
            (None, None) => continue, // refused by the configuration's validation
        };
        let list = map.entry(name.clone()).or_default();
        for (t, v) in [
            (attr::CLASS, &r.class),
            (attr::FILTER_ID, &r.filter_id),
            (attr::REPLY_MESSAGE, &r.reply_message),
        ] {
            if let Some(v) = v {
                if v.is_empty() || v.len() > 253 {
                    return Err(Error::Config(format!(
                        "radius reply for {name}: attribute values are 1 to 253 bytes"
                    )));
                }
                list.push((t, v.as_bytes().to_vec()));
            }
        }
    }
    let socket = UdpSocket::bind(listen)
        .await
        .map_err(|e| Error::Config(format!("cannot listen for RADIUS on {listen}: {e}")))?;
    Ok(Some(Arc::new(RadiusServer {
        socket,
        clients,
        user_replies,
        group_replies,
        svc,
        clock,
        permits: Arc::new(Semaphore::new(cfg.max_in_flight)),
        recent: Mutex::new(HashMap::new()),
    })))
}

fn dropped(reason: &'static str) {
    metrics::counter!("mamori_radius_dropped_total", "reason" => reason).increment(1);
}

fn drop_reason(e: &PacketError) -> &'static str {
    match e {
        PacketError::NoMessageAuthenticator => "no_message_authenticator",
        PacketError::WrongMessageAuthenticator | PacketError::BadMessageAuthenticator => {
            "bad_authenticator"
        }
        PacketError::NotAccessRequest => "not_access_request",
        _ => "malformed",
    }
}

impl RadiusServer {
    /// The bound address (`listen` with port 0 picks one).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.socket
            .local_addr()
            .map_err(|e| Error::Internal(e.to_string()))
    }

    /// Serves until the task is aborted.
    pub async fn run(self: Arc<Self>) {
        // One byte more than the largest packet, to see datagrams that are too long.
        let mut buf = vec![0u8; mamori_radius::MAX_LEN + 1];
        loop {
            let (n, from) = match self.socket.recv_from(&mut buf).await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "radius: receive failed");
                    continue;
                }
            };
            let datagram = buf.get(..n).unwrap_or_default().to_vec();
            self.clone().accept(datagram, from);
        }
    }

    fn accept(self: Arc<Self>, datagram: Vec<u8>, from: SocketAddr) {
        let Some(index) = self
            .clients
            .iter()
            .position(|c| c.network.contains(from.ip()))
        else {
            dropped("unknown_client");
            tracing::debug!(%from, "radius: request from an unknown client dropped");
            return;
        };
        let Some(client) = self.clients.get(index) else {
            return;
        };
        if client.limiter.check().is_err() {
            dropped("rate_limited");
            return;
        }
        let packet = match mamori_radius::verify_request(&datagram, &client.secret) {
            Ok(p) => p,
            Err(e) => {
                dropped(drop_reason(&e));
                tracing::info!(client = %client.name, %from, reason = %e, "radius: request dropped");
                return;
            }
        };
        let key = (from, packet.identifier, packet.authenticator);
        {
            let Ok(mut recent) = self.recent.lock() else {
                return;
            };
            let now = Instant::now();
            match recent.get(&key) {
                Some((at, answer)) if now.duration_since(*at) < DUPLICATE_WINDOW => {
                    dropped("duplicate");
                    if let Some(bytes) = answer.clone() {
                        let me = self.clone();
                        tokio::spawn(async move {
                            let _ = me.socket.send_to(&bytes, from).await;
                        });
                    }
                    return;
                }
                _ => {}
            }
            if recent.len() >= DUPLICATE_MAX {
                recent.retain(|_, (at, _)| now.duration_since(*at) < DUPLICATE_WINDOW);
                if recent.len() >= DUPLICATE_MAX {
                    dropped("busy");
                    return;
                }
            }
            recent.insert(key, (now, None));
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            self.forget(&key);
            dropped("busy");
            return;
        };
        tokio::spawn(async move {
            let _permit = permit;
            let Some(client) = self.clients.get(index) else {
                return;
            };
            match self.decide(client, &packet, from.ip()).await {
                Ok(bytes) => {
                    if let Err(e) = self.socket.send_to(&bytes, from).await {
                        tracing::warn!(error = %e, "radius: send failed");
                    }
                    if let Ok(mut recent) = self.recent.lock() {
                        recent.insert(key, (Instant::now(), Some(bytes)));
                    }
                }
                Err(e) => {
                    // No answer: the NAS retries or asks another server.
                    self.forget(&key);
                    dropped("server_error");
                    tracing::error!(client = %client.name, error = %e, "radius: request not decided");
                }
            }
        });
    }

    fn forget(&self, key: &DuplicateKey) {
        if let Ok(mut recent) = self.recent.lock() {
            recent.remove(key);
        }
    }

    /// The answer to one verified Access-Request.
    async fn decide(&self, client: &Client, packet: &Packet, ip: IpAddr) -> Result<Vec<u8>> {
        let now = self.clock.now();
        let meta = RequestMeta {
            client_addr: Some(ip.to_string()),
            user_agent: None,
        };
        let user = packet
            .get(attr::USER_NAME)
            .and_then(|u| std::str::from_utf8(u).ok())
            .unwrap_or_default()
            .to_string();
        let typed = match packet.get(attr::USER_PASSWORD) {
            Some(hidden) => {
                mamori_radius::reveal_password(hidden, &client.secret, &packet.authenticator)
                    .ok()
                    .and_then(|b| String::from_utf8(b.to_vec()).ok())
                    .map(Zeroizing::new)
            }
            None => None,
        };
        let svc = &self.svc;
        let outcome = match (typed, client.mode) {
            (None, _) => RadiusOutcome::Reject(RadiusReject::Invalid),
            _ if user.is_empty() => RadiusOutcome::Reject(RadiusReject::Invalid),
            (Some(code), RadiusMode::CodeOnly) => {
                svc.radius_code_only(&client.name, client.allow_root, &user, &code, now, &meta)
                    .await?
            }
            (Some(code), RadiusMode::Challenge) if packet.get(attr::STATE).is_some() => {
                let state = packet
                    .get(attr::STATE)
                    .and_then(|s| std::str::from_utf8(s).ok())
                    .unwrap_or_default();
                svc.radius_answer(
                    &client.name,
                    client.allow_root,
                    &user,
                    state,
                    &code,
                    now,
                    &mut OsRng,
                    &meta,
                )
                .await?
            }
            (Some(password), RadiusMode::Challenge) => {
                svc.radius_password(
                    &client.name,
                    client.allow_root,
                    &user,
                    password,
                    None,
                    now,
                    &mut OsRng,
                    &meta,
                )
                .await?
            }
            (Some(typed), RadiusMode::PasswordCode) => match split_code(&typed, client.digits) {
                Some((password, code)) => {
                    svc.radius_password(
                        &client.name,
                        client.allow_root,
                        &user,
                        Zeroizing::new(password.to_string()),
                        Some(code),
                        now,
                        &mut OsRng,
                        &meta,
                    )
                    .await?
                }
                None => RadiusOutcome::Reject(RadiusReject::Invalid),
            },
        };
        let (code, attributes) = match outcome {
            RadiusOutcome::Accept { account, groups } => {
                metrics::counter!("mamori_radius_requests_total", "outcome" => "accept")
                    .increment(1);
                // The user's own attributes, then its groups' (in the groups' sorted order).
                let mut attrs = self.user_replies.get(&account).cloned().unwrap_or_default();
                for g in &groups {
                    if let Some(more) = self.group_replies.get(g) {
                        attrs.extend(more.iter().cloned());
                    }
                }
                (code::ACCESS_ACCEPT, attrs)
            }
            RadiusOutcome::Challenge { state } => {
                metrics::counter!("mamori_radius_requests_total", "outcome" => "challenge")
                    .increment(1);
                (
                    code::ACCESS_CHALLENGE,
                    vec![
                        (attr::STATE, state.as_bytes().to_vec()),
                        (attr::REPLY_MESSAGE, CODE_PROMPT.as_bytes().to_vec()),
                    ],
                )
            }
            RadiusOutcome::Reject(why) => {
                metrics::counter!("mamori_radius_requests_total", "outcome" => "reject")
                    .increment(1);
                (
                    code::ACCESS_REJECT,
                    vec![(attr::REPLY_MESSAGE, reject_message(why).into_bytes())],
                )
            }
        };
        mamori_radius::response(code, packet, &attributes, &client.secret)
            .map_err(|e| Error::Internal(e.to_string()))
    }
}

/// The Reply-Message of an Access-Reject.
fn reject_message(why: RadiusReject) -> String {
    match why {
        RadiusReject::Invalid => "Wrong user name, password or verification code.".into(),
        RadiusReject::NoDevice => "This account has no MFA device: assign one first.".into(),
        RadiusReject::Locked => {
            "The account is locked after too many wrong codes: ask an administrator.".into()
        }
        RadiusReject::Throttled(s) => format!("Too many attempts: try again in {s} seconds."),
    }
}

/// `password + code`, the code being the last `digits` ASCII digits.
fn split_code(typed: &str, digits: usize) -> Option<(&str, &str)> {
    let at = typed.len().checked_sub(digits)?;
    if !typed.is_char_boundary(at) {
        return None;
    }
    let (password, code) = typed.split_at(at);
    (!password.is_empty() && code.bytes().all(|b| b.is_ascii_digit())).then_some((password, code))
}

#[cfg(test)]
mod tests {
    use super::split_code;

    #[test]
    fn the_code_is_the_trailing_digits() {
        assert_eq!(split_code("hunter2123456", 6), Some(("hunter2", "123456")));
        assert_eq!(split_code("pw12345678", 8), Some(("pw", "12345678")));
        assert_eq!(split_code("123456", 6), None, "no password");
        assert_eq!(split_code("hunter2", 6), None);
        assert_eq!(split_code("ab€12345", 6), None);
    }
}

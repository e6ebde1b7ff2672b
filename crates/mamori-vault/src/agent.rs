//! The unlock agent: a per-user background process that holds vaults' data keys in locked,
//! zeroized memory for an idle time, and hands them to the same user's `mamori` commands over a
//! Unix socket. It never writes a key anywhere.
//!
//! ## Protocol (version 1)
//! One request per connection: the client sends one JSON object on one line, the agent answers
//! with one JSON object on one line and closes. Requests are at most 4 KiB.
//!
//! | request | answer |
//! |---|---|
//! | `{"op":"put","vault_id":HEX32,"key":HEX64}` | `{"ok":true}` |
//! | `{"op":"get","vault_id":HEX32}` | `{"ok":true,"key":HEX64}` or `{"ok":false,"error":"locked"}` |
//! | `{"op":"status"}` | `{"ok":true,"pid":N,"vaults":N,"idle_timeout":S,"expires_in":S,"mlocked":B}` |
//! | `{"op":"lock"}` | `{"ok":true}`, then the agent wipes its keys and exits |
//!
//! `put` and `get` restart the idle timer. Any other input gets `{"ok":false,"error":"…"}`.
//!
//! ## Who can talk to it
//! The socket lives in a directory of mode 0700 owned by the user (`$XDG_RUNTIME_DIR/mamori/`, or
//! `/tmp/mamori-UID/`); [`prepare_dir`] refuses a directory owned by anyone else or open to
//! others. The agent also checks each connection's peer user id (SO_PEERCRED) and drops others.

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::{sys, DataKey, VaultError};

/// Idle time after which the agent forgets its keys, unless told otherwise.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(5 * 60);
/// Most vaults one agent holds keys for.
pub const MAX_VAULTS: usize = 16;
const MAX_REQUEST: u64 = 4096;
const IO_TIMEOUT: Duration = Duration::from_secs(2);

fn agent_err(msg: impl Into<String>) -> VaultError {
    VaultError::Agent(msg.into())
}

/// The agent's directory: `$XDG_RUNTIME_DIR/mamori` if set, else `/tmp/mamori-UID`.
pub fn default_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d).join("mamori"),
        None => std::env::temp_dir().join(format!("mamori-{}", sys::getuid())),
    }
}

/// The socket inside `dir`.
pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join("agent.sock")
}

/// Creates `dir` with mode 0700 if missing, and checks that it belongs to this user and is
/// closed to everyone else (another user could otherwise pre-create it and listen in).
pub fn prepare_dir(dir: &Path) -> Result<(), VaultError> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| VaultError::io(dir, e))?;
    }
    check_dir(dir)
}

fn check_dir(dir: &Path) -> Result<(), VaultError> {
    let meta = std::fs::symlink_metadata(dir).map_err(|e| VaultError::io(dir, e))?;
    if !meta.is_dir() {
        return Err(agent_err(format!("{} is not a directory", dir.display())));
    }
    if meta.uid() != sys::getuid() {
        return Err(agent_err(format!(
            "{} belongs to another user; remove it or set XDG_RUNTIME_DIR",
            dir.display()
        )));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(agent_err(format!(
            "{} is open to other users; run `chmod 700 {}`",
            dir.display(),
            dir.display()
        )));
    }
    Ok(())
}

/// The keys, in one heap buffer that is `mlock`ed (kept out of swap) and wiped when dropped.
struct KeyStore {
    keys: Box<[u8; MAX_VAULTS * 32]>,
    ids: Vec<[u8; 16]>,
    mlocked: bool,
}

impl KeyStore {
    fn new() -> Self {
        let keys = Box::new([0u8; MAX_VAULTS * 32]);
        let mlocked = sys::mlock(keys.as_slice());
        KeyStore {
            keys,
            ids: Vec::new(),
            mlocked,
        }
    }

    fn slot(&mut self, i: usize) -> Option<&mut [u8]> {
        self.keys.get_mut(i * 32..(i + 1) * 32)
    }

    fn put(&mut self, id: [u8; 16], key: &DataKey) -> Result<(), String> {
        let i = match self.ids.iter().position(|v| *v == id) {
            Some(i) => i,
            None if self.ids.len() < MAX_VAULTS => {
                self.ids.push(id);
                self.ids.len() - 1
            }
            None => return Err(format!("the agent holds at most {MAX_VAULTS} vaults")),
        };
        let slot = self.slot(i).ok_or("internal: bad slot")?;
        slot.copy_from_slice(key.as_bytes());
        Ok(())
    }

    fn get(&self, id: &[u8; 16]) -> Option<DataKey> {
        let i = self.ids.iter().position(|v| v == id)?;
        let bytes: [u8; 32] = self.keys.get(i * 32..(i + 1) * 32)?.try_into().ok()?;
        Some(DataKey::from_bytes(bytes))
    }

    fn wipe(&mut self) {
        self.keys.zeroize();
        self.ids.clear();
    }
}

impl Drop for KeyStore {
    fn drop(&mut self) {
        self.wipe();
        if self.mlocked {
            sys::munlock(self.keys.as_slice());
        }
    }
}

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
enum Request {
    Put {
        vault_id: String,
        key: Zeroizing<String>,
    },
    Get {
        vault_id: String,
    },
    Status,
    Lock,
}

/// What `status` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The agent's process id.
    pub pid: u32,
    /// How many vaults' keys it holds.
    pub vaults: usize,
    /// The idle time in seconds.
    pub idle_timeout: u64,
    /// Seconds until it forgets the keys if not used.
    pub expires_in: u64,
    /// Whether the key memory is locked against swapping.
    pub mlocked: bool,
}

#[derive(Deserialize)]
struct Answer {
    ok: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    key: Option<Zeroizing<String>>,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

fn parse_id(hex: &str) -> Result<[u8; 16], String> {
    data_encoding::HEXLOWER_PERMISSIVE
        .decode(hex.as_bytes())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| "vault_id must be 32 hex digits".to_string())
}

fn parse_key(hex: &str) -> Result<DataKey, String> {
    let bytes = Zeroizing::new(
        data_encoding::HEXLOWER_PERMISSIVE
            .decode(hex.as_bytes())
            .map_err(|_| "key must be 64 hex digits".to_string())?,
    );
    let arr: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| "key must be 64 hex digits".to_string())?;
    Ok(DataKey::from_bytes(arr))
}

struct State {
    keys: KeyStore,
    last_use: Instant,
}

/// A bound agent, ready to [`serve`](Agent::serve).
pub struct Agent {
    listener: UnixListener,
    path: PathBuf,
    idle: Duration,
}

impl Agent {
    /// Binds the socket in `dir` (prepared with [`prepare_dir`]). Fails if another agent is
    /// already answering there; removes a stale socket left by a dead one.
    pub fn bind(dir: &Path, idle: Duration) -> Result<Agent, VaultError> {
        prepare_dir(dir)?;
        let path = socket_path(dir);
        if path.exists() {
            if UnixStream::connect(&path).is_ok() {
                return Err(agent_err("an agent is already running"));
            }
            std::fs::remove_file(&path).map_err(|e| VaultError::io(&path, e))?;
        }
        let listener = UnixListener::bind(&path).map_err(|e| VaultError::io(&path, e))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| VaultError::io(&path, e))?;
        Ok(Agent {
            listener,
            path,
            idle,
        })
    }

    /// Answers requests until `lock` or until idle for the configured time; then wipes the keys
    /// and removes the socket. Also makes the process undumpable.
    pub fn serve(self) -> Result<(), VaultError> {
        sys::make_undumpable();
        let state = Arc::new(Mutex::new(State {
            keys: KeyStore::new(),
            last_use: Instant::now(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        // The watchdog: when idle too long, raise `stop` and wake the accept() below by
        // connecting once.
        let watchdog = {
            let (state, stop, path, idle) =
                (state.clone(), stop.clone(), self.path.clone(), self.idle);
            std::thread::spawn(move || loop {
                std::thread::sleep(Duration::from_millis(200));
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let expired = state
                    .lock()
                    .map(|s| s.last_use.elapsed() >= idle)
                    .unwrap_or(true);
                if expired {
                    stop.store(true, Ordering::SeqCst);
                    let _ = UnixStream::connect(&path);
                    return;
                }
            })
        };
        for conn in self.listener.incoming() {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let Ok(stream) = conn else { continue };
            if sys::peer_uid(&stream).ok() != Some(sys::getuid()) {
                continue; // another user (or unknown): say nothing
            }
            if handle(stream, &state, self.idle) {
                stop.store(true, Ordering::SeqCst);
                break;
            }
        }
        if let Ok(mut s) = state.lock() {
            s.keys.wipe();
        }
        let _ = std::fs::remove_file(&self.path);
        let _ = watchdog.join();
        Ok(())
    }
}

/// Reads one line (at most [`MAX_REQUEST`] bytes) into memory that is wiped afterwards: lines
/// carry keys, so no library buffer (such as BufReader's) may keep a copy.
fn read_line(mut stream: &UnixStream) -> std::io::Result<Zeroizing<String>> {
    let cap = usize::try_from(MAX_REQUEST).unwrap_or(4096);
    // Reserved once, never grown: growing would leave copies in freed memory.
    let mut line = Zeroizing::new(Vec::with_capacity(cap));
    let mut byte = Zeroizing::new([0u8; 1]);
    // Byte by byte: requests are under 200 bytes, and reading past the newline is impossible.
    while line.len() < cap {
        match stream.read(byte.as_mut_slice())? {
            0 => break,
            _ => {
                let [b] = *byte;
                if b == b'\n' {
                    break;
                }
                line.push(b);
            }
        }
    }
    let text = std::str::from_utf8(&line)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8"))?;
    Ok(Zeroizing::new(text.to_string()))
}

/// Serves one connection; returns true on `lock`.
fn handle(stream: UnixStream, state: &Mutex<State>, idle: Duration) -> bool {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let Ok(line) = read_line(&stream) else {
        return false;
    };
    let mut out = stream;
    let (answer, lock): (Zeroizing<String>, bool) = match serde_json::from_str::<Request>(&line) {
        Err(_) => (error_line("bad request"), false),
        Ok(Request::Lock) => (Zeroizing::new("{\"ok\":true}\n".into()), true),
        Ok(req) => match state.lock() {
            Err(_) => (error_line("internal error"), true),
            Ok(mut s) => (answer(req, &mut s, idle), false),
        },
    };
    let _ = out.write_all(answer.as_bytes());
    lock
}

fn error_line(msg: &str) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "{}\n",
        serde_json::json!({"ok": false, "error": msg})
    ))
}

fn answer(req: Request, s: &mut State, idle: Duration) -> Zeroizing<String> {
    match req {
        Request::Put { vault_id, key } => {
            let r = parse_id(&vault_id).and_then(|id| Ok((id, parse_key(&key)?)));
            match r.and_then(|(id, key)| s.keys.put(id, &key)) {
                Ok(()) => {
                    s.last_use = Instant::now();
                    Zeroizing::new("{\"ok\":true}\n".into())
                }
                Err(e) => error_line(&e),
            }
        }
        Request::Get { vault_id } => match parse_id(&vault_id) {
            Err(e) => error_line(&e),
            Ok(id) => match s.keys.get(&id) {
                None => error_line("locked"),
                Some(key) => {
                    s.last_use = Instant::now();
                    let hex = Zeroizing::new(data_encoding::HEXLOWER.encode(key.as_bytes()));
                    Zeroizing::new(format!("{{\"ok\":true,\"key\":\"{}\"}}\n", hex.as_str()))
                }
            },
        },
        Request::Status => {
            let status = Status {
                pid: std::process::id(),
                vaults: s.keys.ids.len(),
                idle_timeout: idle.as_secs(),
                expires_in: idle.saturating_sub(s.last_use.elapsed()).as_secs(),
                mlocked: s.keys.mlocked,
            };
            let mut v = serde_json::to_value(status).unwrap_or_default();
            if let Some(m) = v.as_object_mut() {
                m.insert("ok".into(), true.into());
            }
            Zeroizing::new(format!("{v}\n"))
        }
        Request::Lock => Zeroizing::new("{\"ok\":true}\n".into()),
    }
}

/// Talks to the agent whose socket is in a directory.
#[derive(Debug, Clone)]
pub struct Client {
    dir: PathBuf,
}

impl Client {
    /// A client for the agent in `dir` (see [`default_dir`]).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Client { dir: dir.into() }
    }

    /// The socket path.
    pub fn socket(&self) -> PathBuf {
        socket_path(&self.dir)
    }

    fn call(&self, request: &str) -> Result<Answer, VaultError> {
        check_dir(&self.dir)?;
        let path = self.socket();
        let mut stream = UnixStream::connect(&path).map_err(|e| VaultError::io(&path, e))?;
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .and_then(|_| stream.set_write_timeout(Some(IO_TIMEOUT)))
            .and_then(|_| stream.write_all(request.as_bytes()))
            .map_err(|e| VaultError::io(&path, e))?;
        let line = read_line(&stream).map_err(|e| VaultError::io(&path, e))?;
        serde_json::from_str(&line).map_err(|_| agent_err("malformed answer"))
    }

    /// Whether an agent answers.
    pub fn status(&self) -> Result<Status, VaultError> {
        let a = self.call("{\"op\":\"status\"}\n")?;
        serde_json::from_value(serde_json::Value::Object(a.rest))
            .map_err(|_| agent_err("malformed status"))
    }

    /// The key for a vault, or `None` if the agent does not hold it. Errors mean no agent.
    pub fn get(&self, vault_id: &[u8; 16]) -> Result<Option<DataKey>, VaultError> {
        let req = format!(
            "{{\"op\":\"get\",\"vault_id\":\"{}\"}}\n",
            data_encoding::HEXLOWER.encode(vault_id)
        );
        let a = self.call(&req)?;
        match (a.ok, a.key) {
            (true, Some(k)) => parse_key(&k).map(Some).map_err(agent_err),
            _ => Ok(None),
        }
    }

    /// Gives the agent a vault's key.
    pub fn put(&self, vault_id: &[u8; 16], key: &DataKey) -> Result<(), VaultError> {
        let hex = Zeroizing::new(data_encoding::HEXLOWER.encode(key.as_bytes()));
        let req = Zeroizing::new(format!(
            "{{\"op\":\"put\",\"vault_id\":\"{}\",\"key\":\"{}\"}}\n",
            data_encoding::HEXLOWER.encode(vault_id),
            hex.as_str()
        ));
        let a = self.call(&req)?;
        if a.ok {
            Ok(())
        } else {
            Err(agent_err(a.error.unwrap_or_else(|| "refused".into())))
        }
    }

    /// Tells the agent to wipe its keys and exit now; returns once its socket is gone (or
    /// after two seconds).
    pub fn lock(&self) -> Result<(), VaultError> {
        self.call("{\"op\":\"lock\"}\n")?;
        let deadline = std::time::Instant::now() + IO_TIMEOUT;
        while self.socket().exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }
}

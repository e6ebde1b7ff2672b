//! What the integration tests of mamori-server and mamori-cli share: a real `mamori-server`
//! process on a free port ([`process`]), an SMTP sink ([`mail`]), a signed-webhook receiver
//! ([`webhook`]), WebDriver/Chromium sessions with virtual authenticators ([`browser`]) and
//! TOTP codes at a given time (this module), a small disk that fills on demand ([`disk`]), and moto, the AWS emulator, with a relay that
//! records what is sent to it ([`moto`]).
//!
//! Test support: a failed expectation panics, which is how a test reports it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod browser;
pub mod disk;
pub mod mail;
pub mod moto;
pub mod process;
pub mod webhook;

use std::future::Future;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use mamori_otp::{Generator, OtpParams, Secret};

/// A strong password the tests use for every server account.
pub const PASSWORD: &str = "lantern-orbit-velvet-42";

/// The current Unix time in seconds.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The TOTP code (SHA-1, 6 digits, 30 s) of a secret at a Unix time.
pub fn totp_at(secret: &Secret, at: u64) -> String {
    Generator::new(secret, OtpParams::totp())
        .unwrap()
        .at_time(at)
        .to_string()
}

/// The TOTP code of a Base32 secret at a Unix time.
pub fn code(secret_base32: &str, at: u64) -> String {
    totp_at(&Secret::from_base32(secret_base32).unwrap(), at)
}

/// A six-digit code that is right for no step within `steps_each_side` steps of `at`: a
/// "wrong code" that is never right by chance.
pub fn wrong_code_near(secret: &Secret, at: u64, steps_each_side: u64) -> String {
    let near: Vec<String> = (0..=2 * steps_each_side)
        .map(|k| totp_at(secret, at + 30 * k - 30 * steps_each_side))
        .collect();
    (0..10)
        .map(|d: u32| d.to_string().repeat(6))
        .find(|c| !near.contains(c))
        .unwrap()
}

/// The 6-digit code in a text (a mail body, a text message).
pub fn six_digits(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_else(|| panic!("no 6-digit code in {text}"))
        .to_string()
}

/// Stops a stand-in started by [`serve_on_own_thread`] when its last clone is dropped.
pub(crate) type StopOnDrop = Arc<tokio::sync::oneshot::Sender<()>>;

/// Binds 127.0.0.1 on a free port and runs `serve` on it on a thread and runtime of its own,
/// until the returned guard's last clone is dropped. The SMTP sink and the webhook receiver
/// stand in for a mail relay and a phone gateway, which keep answering while a test blocks
/// its own thread: [`process::ServerProcess::stop`] waits for the server's exit in a blocking
/// loop, and the server, before it exits, waits for the notices it is still sending. On the
/// test's runtime those notices would wait for the stop, and the stop for them.
pub(crate) fn serve_on_own_thread<F, Fut>(
    name: &str,
    serve: F,
) -> (std::net::SocketAddr, StopOnDrop)
where
    F: FnOnce(tokio::net::TcpListener) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                // Ends when every handle is dropped (the sender with it); dropping the runtime
                // then ends the connections still open.
                tokio::select! {
                    _ = stopped => {}
                    () = serve(listener) => {}
                }
            });
        })
        .unwrap();
    (addr, Arc::new(stop))
}

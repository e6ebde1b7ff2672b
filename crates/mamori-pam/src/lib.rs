//! `pam_mamori`: a PAM module for the `auth` stack that asks for a one-time code and checks it
//! with a mamori server's validate API (docs/pam.md).
//!
//! - [`config`]: the root-only configuration file and the module's arguments.
//! - [`client`]: the validate calls (synchronous HTTPS, Mozilla roots plus a CA file).
//!
//! With `no_device = allow` (off by default) the module first asks the server whether the
//! account has no MFA device (`POST /api/v1/validate/status`, a key with `allow_no_device`):
//! only its `no_device` lets the user in without a code, logged as such; any error fails
//! closed exactly like a validation.
//! - [`pam`]: the Linux-PAM calls behind safe wrappers (all the `unsafe` but the entry points).
//! - [`authenticate`]: the module's logic, one function over a [`Conversation`].
//!
//! It fails closed: every error is a failure. An unreachable server is `PAM_AUTHINFO_UNAVAIL`,
//! so a stack may choose what that means (`[authinfo_unavail=...]`); a refused key, a bad
//! configuration or a rejected code is never. The code, the password and the application key
//! are never logged; outcomes go to syslog (authpriv) with the service and user.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    unsafe_op_in_unsafe_fn
)]

pub mod client;
pub mod config;
pub mod error;
pub mod pam;

use std::ffi::{c_char, c_int, CStr};

use zeroize::Zeroizing;

use client::{Status, Verdict};
use config::{Args, Config, NoDevice};
use error::ClientError;
use pam::{
    Handle, PamHandle, LOG_ERR, LOG_INFO, LOG_NOTICE, PAM_AUTHINFO_UNAVAIL, PAM_AUTH_ERR,
    PAM_SERVICE_ERR, PAM_SUCCESS,
};

/// What the module needs from libpam; [`Handle`] is the real one.
pub trait Conversation {
    fn user(&self) -> Result<String, c_int>;
    fn authtok(&self) -> Option<Zeroizing<String>>;
    fn set_authtok(&self, value: &str) -> Result<(), c_int>;
    fn ask_hidden(&self, prompt: &str) -> Result<Zeroizing<String>, c_int>;
    fn log(&self, priority: c_int, message: &str);
}

impl Conversation for Handle {
    fn user(&self) -> Result<String, c_int> {
        Handle::user(self)
    }
    fn authtok(&self) -> Option<Zeroizing<String>> {
        Handle::authtok(self)
    }
    fn set_authtok(&self, value: &str) -> Result<(), c_int> {
        Handle::set_authtok(self, value)
    }
    fn ask_hidden(&self, prompt: &str) -> Result<Zeroizing<String>, c_int> {
        Handle::ask_hidden(self, prompt)
    }
    fn log(&self, priority: c_int, message: &str) {
        Handle::log(self, priority, message)
    }
}

/// The prompt for the code alone.
pub const CODE_PROMPT: &str = "Verification code: ";
/// The prompt when the code follows the password and no earlier module asked.
pub const PASSWORD_AND_CODE_PROMPT: &str = "Password and verification code: ";

/// A code is at most this long before it is sent (the server decides the rest).
const MAX_CODE_LEN: usize = 64;

/// The module's whole logic for one `pam_authenticate`.
pub fn authenticate(pam: &impl Conversation, args: &[&str]) -> c_int {
    let args = match Args::parse(args.iter().copied()) {
        Ok(a) => a,
        Err(e) => {
            pam.log(LOG_ERR, &format!("configuration: {e}"));
            return PAM_SERVICE_ERR;
        }
    };
    let mut cfg = match Config::load(args.config_path()) {
        Ok(c) => c,
        Err(e) => {
            pam.log(LOG_ERR, &format!("configuration: {e}"));
            return PAM_SERVICE_ERR;
        }
    };
    cfg.code_in_password |= args.code_in_password;
    let local = match pam.user() {
        Ok(u) => u,
        Err(rc) => return rc,
    };
    let user = cfg.mamori_user(&local).to_string();
    let who = if user == local {
        format!("user {local}")
    } else {
        format!("user {local} (mamori user {user})")
    };

    if cfg.no_device == NoDevice::Allow {
        match client::status(&cfg, &user) {
            Ok(Status::NoDevice) => {
                pam.log(
                    LOG_NOTICE,
                    &format!(
                        "{who}: allowed without a second factor: the account has no MFA device \
                         (no_device = allow; {})",
                        cfg.url
                    ),
                );
                return PAM_SUCCESS;
            }
            Ok(Status::CodeRequired) => {}
            Err(e @ ClientError::Unreachable(_)) => {
                pam.log(LOG_ERR, &format!("{who}: device status: {e} ({})", cfg.url));
                return PAM_AUTHINFO_UNAVAIL;
            }
            Err(e) => {
                pam.log(LOG_ERR, &format!("{who}: device status: {e} ({})", cfg.url));
                return PAM_AUTH_ERR;
            }
        }
    }

    let code = if cfg.code_in_password {
        let whole = match pam.authtok() {
            Some(t) => t,
            None => match pam.ask_hidden(PASSWORD_AND_CODE_PROMPT) {
                Ok(t) => t,
                Err(rc) => return rc,
            },
        };
        let Some((password, code)) = split_code(&whole, cfg.code_digits) else {
            pam.log(
                LOG_NOTICE,
                &format!(
                    "{who}: no {}-digit code at the end of the password",
                    cfg.code_digits
                ),
            );
            return PAM_AUTH_ERR;
        };
        if let Err(rc) = pam.set_authtok(password) {
            return rc;
        }
        Zeroizing::new(code.to_string())
    } else {
        match pam.ask_hidden(CODE_PROMPT) {
            Ok(c) => c,
            Err(rc) => return rc,
        }
    };
    let code = code.trim();
    if code.is_empty() || code.len() > MAX_CODE_LEN || !code.bytes().all(|b| b.is_ascii_graphic()) {
        pam.log(LOG_NOTICE, &format!("{who}: no usable code given"));
        return PAM_AUTH_ERR;
    }

    match client::validate(&cfg, &user, code) {
        Ok(Verdict::Accept) => {
            pam.log(LOG_INFO, &format!("{who}: code accepted by {}", cfg.url));
            PAM_SUCCESS
        }
        Ok(Verdict::Reject(reason)) => {
            pam.log(LOG_NOTICE, &format!("{who}: code rejected ({reason})"));
            PAM_AUTH_ERR
        }
        Err(e @ ClientError::Unreachable(_)) => {
            pam.log(LOG_ERR, &format!("{who}: {e} ({})", cfg.url));
            PAM_AUTHINFO_UNAVAIL
        }
        Err(e) => {
            pam.log(LOG_ERR, &format!("{who}: {e} ({})", cfg.url));
            PAM_AUTH_ERR
        }
    }
}

/// Splits `password + code` where the code is the last `digits` ASCII digits.
pub fn split_code(whole: &str, digits: usize) -> Option<(&str, &str)> {
    let at = whole.len().checked_sub(digits)?;
    if !whole.is_char_boundary(at) {
        return None;
    }
    let (password, code) = whole.split_at(at);
    code.bytes()
        .all(|b| b.is_ascii_digit())
        .then_some((password, code))
}

/// Entry point for `auth` lines.
///
/// # Safety
/// Called by libpam with its handle and the module line's arguments.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_authenticate(
    pamh: *mut PamHandle,
    _flags: c_int,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    // SAFETY: libpam's handle, used only during this call.
    let Some(handle) = (unsafe { Handle::new(pamh) }) else {
        return PAM_SERVICE_ERR;
    };
    let mut args = Vec::new();
    if !argv.is_null() {
        for i in 0..usize::try_from(argc).unwrap_or(0) {
            // SAFETY: libpam passes `argc` valid NUL-terminated strings.
            let a = unsafe { *argv.add(i) };
            if a.is_null() {
                continue;
            }
            // SAFETY: see above.
            match unsafe { CStr::from_ptr(a) }.to_str() {
                Ok(s) => args.push(s),
                Err(_) => return PAM_SERVICE_ERR,
            }
        }
    }
    // A panic must not unwind into C (it would abort sshd's session process): fail closed.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        authenticate(&handle, &args)
    }))
    .unwrap_or(PAM_SERVICE_ERR)
}

/// Entry point for `auth` credential setting: nothing to set.
///
/// # Safety
/// Called by libpam; the arguments are not used.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_setcred(
    _pamh: *mut PamHandle,
    _flags: c_int,
    _argc: c_int,
    _argv: *const *const c_char,
) -> c_int {
    PAM_SUCCESS
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::os::unix::fs::PermissionsExt;

    /// A conversation that types `typed` at every prompt and keeps the prompts and log lines.
    struct Fake {
        typed: &'static str,
        prompts: RefCell<Vec<String>>,
        logs: RefCell<Vec<(c_int, String)>>,
    }

    impl Conversation for Fake {
        fn user(&self) -> Result<String, c_int> {
            Ok("bob".into())
        }
        fn authtok(&self) -> Option<Zeroizing<String>> {
            None
        }
        fn set_authtok(&self, _: &str) -> Result<(), c_int> {
            Ok(())
        }
        fn ask_hidden(&self, prompt: &str) -> Result<Zeroizing<String>, c_int> {
            self.prompts.borrow_mut().push(prompt.into());
            Ok(Zeroizing::new(self.typed.into()))
        }
        fn log(&self, priority: c_int, message: &str) {
            self.logs.borrow_mut().push((priority, message.into()));
        }
    }

    /// A server on loopback that answers each request with the next of `answers` (status,
    /// body); returns its URL and, when done, the request lines it saw.
    fn stub(answers: Vec<(u16, &'static str)>) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let t = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for (status, body) in answers {
                let (mut s, _) = l.accept().unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                seen.push(line.trim().to_string());
                let mut len = 0;
                loop {
                    let mut h = String::new();
                    r.read_line(&mut h).unwrap();
                    if h.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                }
                let mut b = vec![0; len];
                r.read_exact(&mut b).unwrap();
                write!(
                    s,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
            }
            seen
        });
        (url, t)
    }

    /// Runs the module with `no_device = allow` against `answers`: (result, fake, requests).
    fn run(answers: Vec<(u16, &'static str)>) -> (c_int, Fake, Vec<String>) {
        let (url, server) = stub(answers);
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("pam.conf");
        std::fs::write(
            &conf,
            format!("url = {url}\napp_key = mamori_ak_test\ntimeout = 5\nno_device = allow\n"),
        )
        .unwrap();
        std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o600)).unwrap();
        let fake = Fake {
            typed: "123456",
            prompts: RefCell::default(),
            logs: RefCell::default(),
        };
        let arg = format!("config={}", conf.display());
        let rc = authenticate(&fake, &[arg.as_str()]);
        (rc, fake, server.join().unwrap())
    }

    #[test]
    fn no_device_lets_in_without_a_prompt_and_says_so() {
        let (rc, fake, seen) = run(vec![(200, r#"{"status":"no_device"}"#)]);
        assert_eq!(rc, PAM_SUCCESS);
        assert!(fake.prompts.borrow().is_empty());
        assert_eq!(seen, ["POST /api/v1/validate/status HTTP/1.1"]);
        let logs = fake.logs.borrow();
        assert_eq!(logs.len(), 1, "{logs:?}");
        assert!(
            logs[0].1.starts_with(
                "user bob: allowed without a second factor: the account has no MFA device"
            ),
            "{logs:?}"
        );
    }

    #[test]
    fn code_required_goes_on_to_the_prompt_and_validation() {
        let (rc, fake, seen) = run(vec![
            (200, r#"{"status":"code_required"}"#),
            (200, r#"{"result":"accept"}"#),
        ]);
        assert_eq!(rc, PAM_SUCCESS);
        assert_eq!(*fake.prompts.borrow(), [CODE_PROMPT]);
        assert_eq!(
            seen,
            [
                "POST /api/v1/validate/status HTTP/1.1",
                "POST /api/v1/validate HTTP/1.1"
            ]
        );
        let logs = fake.logs.borrow();
        assert!(logs.iter().all(|(_, l)| !l.contains("123456")), "{logs:?}");
    }

    #[test]
    fn an_error_asking_fails_closed_before_the_prompt() {
        let forbidden = r#"{"error":{"code":"forbidden","message":"no allow_no_device"}}"#;
        for (answer, logged) in [
            ((403, forbidden), "403 forbidden"),
            ((200, r#"{"status":"maybe"}"#), "not a validate answer"),
            ((200, "{}"), "not a validate answer"),
            ((500, "oops"), "500 error"),
        ] {
            let (rc, fake, _) = run(vec![answer]);
            assert_eq!(rc, PAM_AUTH_ERR, "{answer:?}");
            assert!(fake.prompts.borrow().is_empty(), "{answer:?}");
            let logs = fake.logs.borrow();
            assert!(
                logs.len() == 1 && logs[0].1.contains(logged),
                "{answer:?}: {logs:?}"
            );
        }
    }

    #[test]
    fn the_code_is_split_from_the_end() {
        assert_eq!(split_code("hunter2123456", 6), Some(("hunter2", "123456")));
        assert_eq!(split_code("pw12345678", 8), Some(("pw", "12345678")));
        assert_eq!(split_code("123456", 6), Some(("", "123456")));
        assert_eq!(split_code("hunter2", 6), None);
        assert_eq!(split_code("12345", 6), None);
        assert_eq!(split_code("pässwort12345x", 6), None);
        // A multi-byte character where the cut would fall is refused, not a panic.
        assert_eq!(split_code("ab€12345", 6), None);
    }
}

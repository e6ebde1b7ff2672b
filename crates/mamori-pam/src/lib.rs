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
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::split_code;

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

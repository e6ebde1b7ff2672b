//! The few Linux-PAM calls the module makes (`<security/pam_modules.h>`, `pam_ext.h`), behind
//! safe wrappers. All of the crate's `unsafe` is here and in the two exported entry points.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr;

use zeroize::{Zeroize, Zeroizing};

// Return values and item types from <security/_pam_types.h>.
pub const PAM_SUCCESS: c_int = 0;
pub const PAM_SERVICE_ERR: c_int = 3;
pub const PAM_AUTH_ERR: c_int = 7;
pub const PAM_AUTHINFO_UNAVAIL: c_int = 9;
pub const PAM_USER_UNKNOWN: c_int = 10;
pub const PAM_CONV_ERR: c_int = 19;
const PAM_CONV: c_int = 5;
const PAM_AUTHTOK: c_int = 6;
const PAM_PROMPT_ECHO_OFF: c_int = 1;

// syslog priorities (<syslog.h>); pam_syslog adds LOG_AUTHPRIV and the "pam_mamori(service:auth)"
// prefix itself.
pub const LOG_ERR: c_int = 3;
pub const LOG_NOTICE: c_int = 5;
pub const LOG_INFO: c_int = 6;

/// `pam_handle_t`: opaque.
#[repr(C)]
pub struct PamHandle {
    _private: [u8; 0],
}

#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

#[repr(C)]
struct PamConv {
    conv: Option<
        unsafe extern "C" fn(
            num_msg: c_int,
            msg: *mut *const PamMessage,
            resp: *mut *mut PamResponse,
            appdata_ptr: *mut c_void,
        ) -> c_int,
    >,
    appdata_ptr: *mut c_void,
}

#[link(name = "pam")]
extern "C" {
    fn pam_get_item(pamh: *const PamHandle, item_type: c_int, item: *mut *const c_void) -> c_int;
    fn pam_set_item(pamh: *mut PamHandle, item_type: c_int, item: *const c_void) -> c_int;
    fn pam_get_user(pamh: *mut PamHandle, user: *mut *const c_char, prompt: *const c_char)
        -> c_int;
    fn pam_syslog(pamh: *const PamHandle, priority: c_int, fmt: *const c_char, ...);
}

/// A borrowed PAM handle, valid for one call of the module.
pub struct Handle(*mut PamHandle);

impl Handle {
    /// # Safety
    /// `pamh` is the handle libpam passed to the module's entry point, used only during it.
    pub unsafe fn new(pamh: *mut PamHandle) -> Option<Handle> {
        (!pamh.is_null()).then_some(Handle(pamh))
    }

    /// The user being authenticated (asking for it if the application did not say).
    pub fn user(&self) -> Result<String, c_int> {
        let mut p: *const c_char = ptr::null();
        // SAFETY: a valid handle; libpam owns the returned string for the handle's lifetime.
        let rc = unsafe { pam_get_user(self.0, &mut p, ptr::null()) };
        if rc != PAM_SUCCESS {
            return Err(rc);
        }
        if p.is_null() {
            return Err(PAM_USER_UNKNOWN);
        }
        // SAFETY: non-null, NUL-terminated by libpam.
        let s = unsafe { CStr::from_ptr(p) };
        s.to_str().map(str::to_string).map_err(|_| PAM_USER_UNKNOWN)
    }

    /// `PAM_AUTHTOK` as an earlier module left it, if any.
    pub fn authtok(&self) -> Option<Zeroizing<String>> {
        let mut p: *const c_void = ptr::null();
        // SAFETY: a valid handle; PAM_AUTHTOK is a NUL-terminated string owned by libpam.
        let rc = unsafe { pam_get_item(self.0, PAM_AUTHTOK, &mut p) };
        if rc != PAM_SUCCESS || p.is_null() {
            return None;
        }
        // SAFETY: see above.
        let s = unsafe { CStr::from_ptr(p.cast::<c_char>()) };
        s.to_str().ok().map(|s| Zeroizing::new(s.to_string()))
    }

    /// Replaces `PAM_AUTHTOK` (libpam copies it), so that the modules after this one see the
    /// password without the code.
    pub fn set_authtok(&self, value: &str) -> Result<(), c_int> {
        let c = Zeroizing::new(
            CString::new(value)
                .map_err(|_| PAM_AUTH_ERR)?
                .into_bytes_with_nul(),
        );
        // SAFETY: a valid handle; libpam copies the NUL-terminated string.
        let rc = unsafe { pam_set_item(self.0, PAM_AUTHTOK, c.as_ptr().cast()) };
        if rc == PAM_SUCCESS {
            Ok(())
        } else {
            Err(rc)
        }
    }

    /// Asks the person through the application's conversation function, without echo.
    pub fn ask_hidden(&self, prompt: &str) -> Result<Zeroizing<String>, c_int> {
        let mut item: *const c_void = ptr::null();
        // SAFETY: a valid handle; PAM_CONV points to the application's `struct pam_conv`.
        let rc = unsafe { pam_get_item(self.0, PAM_CONV, &mut item) };
        if rc != PAM_SUCCESS || item.is_null() {
            return Err(PAM_CONV_ERR);
        }
        // SAFETY: PAM_CONV is a `struct pam_conv` that lives as long as the handle.
        let conv = unsafe { &*item.cast::<PamConv>() };
        let Some(f) = conv.conv else {
            return Err(PAM_CONV_ERR);
        };
        let text = CString::new(prompt).map_err(|_| PAM_CONV_ERR)?;
        let msg = PamMessage {
            msg_style: PAM_PROMPT_ECHO_OFF,
            msg: text.as_ptr(),
        };
        let mut msgs = [&msg as *const PamMessage];
        let mut resp: *mut PamResponse = ptr::null_mut();
        // SAFETY: one message; the application allocates `resp` (and its string) with malloc
        // and the module frees them, as the PAM conversation contract says.
        let rc = unsafe { f(1, msgs.as_mut_ptr(), &mut resp, conv.appdata_ptr) };
        if resp.is_null() {
            return Err(if rc == PAM_SUCCESS { PAM_CONV_ERR } else { rc });
        }
        // SAFETY: `resp` points to one `struct pam_response` from the application.
        let answer = unsafe {
            let r = &mut *resp;
            let out = if r.resp.is_null() {
                None
            } else {
                let bytes = CStr::from_ptr(r.resp).to_bytes();
                let s = String::from_utf8(bytes.to_vec()).ok().map(Zeroizing::new);
                // Wipe the application's copy before giving it back to the allocator.
                std::slice::from_raw_parts_mut(r.resp.cast::<u8>(), bytes.len()).zeroize();
                libc::free(r.resp.cast());
                s
            };
            libc::free(resp.cast());
            out
        };
        if rc != PAM_SUCCESS {
            return Err(rc);
        }
        answer.ok_or(PAM_CONV_ERR)
    }

    /// One line to the system log (authpriv). Callers never pass a code, password or key.
    pub fn log(&self, priority: c_int, message: &str) {
        let Ok(m) = CString::new(message.replace('\0', "")) else {
            return;
        };
        // SAFETY: a valid handle; "%s" consumes exactly the one string argument.
        unsafe { pam_syslog(self.0, priority, c"%s".as_ptr(), m.as_ptr()) };
    }
}

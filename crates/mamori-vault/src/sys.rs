//! The few operating-system calls std does not offer. This is the crate's only `unsafe` code;
//! each block says why it is sound.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

/// The real user id of this process.
pub(crate) fn getuid() -> u32 {
    // SAFETY: getuid(2) takes no arguments, touches no memory of ours and cannot fail.
    unsafe { libc::getuid() }
}

/// Keeps `len` bytes at `ptr` out of swap. Returns whether it worked (it fails when
/// RLIMIT_MEMLOCK is too small; the key is then merely unswapped-if-lucky, still zeroized).
pub(crate) fn mlock(buf: &[u8]) -> bool {
    // SAFETY: mlock(2) only changes the paging of the pages spanned by the range; the range is
    // a live borrowed slice, so it is valid for its whole length. No memory is read or written.
    unsafe { libc::mlock(buf.as_ptr().cast(), buf.len()) == 0 }
}

/// Undoes [`mlock`] (called after the buffer was zeroized, before it is freed).
pub(crate) fn munlock(buf: &[u8]) {
    // SAFETY: as for mlock: a valid live range, only its paging attributes change.
    unsafe {
        libc::munlock(buf.as_ptr().cast(), buf.len());
    }
}

/// Stops core dumps of this process and ptrace attachment by other processes of the same
/// (non-root) user, so the agent's key cannot be read out of it that way.
pub(crate) fn make_undumpable() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(PR_SET_DUMPABLE, 0) takes plain integers and changes only a process flag.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

/// The user id of the process at the other end of a Unix socket (SO_PEERCRED).
#[cfg(target_os = "linux")]
pub(crate) fn peer_uid(stream: &UnixStream) -> io::Result<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` is a properly aligned, writable ucred and `len` holds its exact size, as
    // getsockopt(SO_PEERCRED) requires; the kernel writes at most `len` bytes into it. The fd
    // is borrowed from a live UnixStream.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred.uid)
}

/// Elsewhere only the socket directory's permissions protect the agent.
#[cfg(not(target_os = "linux"))]
pub(crate) fn peer_uid(_stream: &UnixStream) -> io::Result<u32> {
    Ok(getuid())
}

/// Whether a process with this id exists (`kill(pid, 0)`: no signal is sent). A process of
/// another user counts as alive (`EPERM`); only `ESRCH` says there is none.
pub(crate) fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        // 0 and negative ids name process groups, not a process.
        return false;
    }
    // SAFETY: kill(2) with signal 0 only checks that the target exists and may be signalled;
    // it takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

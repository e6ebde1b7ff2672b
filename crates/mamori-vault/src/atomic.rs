//! Replacing a file atomically: the one way the vault file and the sync state next to it are
//! written.
//!
//! A temporary file `FILE.tmp.PID` in the same directory is created with the final mode, written
//! and fsynced, then renamed over `FILE`, and the directory is fsynced so the rename itself is on
//! disk. A reader sees the complete old or the complete new content, never a mix, and a crash
//! leaves at worst a stray temporary file, which the next write of the same file removes once
//! the process that made it is gone (the vault also removes its own under its write lock).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::VaultError;

/// Replaces `path` with `bytes` atomically, the new file having permission bits `mode` (e.g.
/// `0o600`; the process umask can only remove bits).
///
/// On error the temporary file is removed and `path` keeps its old content, unless the error
/// is from fsyncing the directory after the rename: then the new content is in place but may
/// not survive a crash, which is reported as an error too, since a caller that goes on (an
/// HOTP code shown, a sync round confirmed) relies on the write being durable.
///
/// Writers of the same `path` must be serialised by the caller (the temporary file's name
/// differs only by process id).
pub fn atomic_write(path: &Path, bytes: &[u8], mode: u32) -> Result<(), VaultError> {
    atomic_write_with(path, bytes, mode, || Ok(()))
}

/// [`atomic_write`] that runs `before_rename` once the new content is durable in the temporary
/// file and before it replaces `path`; an error from it aborts the write, leaving `path` as it
/// was. The vault uses this to point `FILE.bak` at the old file only when a new one is ready.
pub(crate) fn atomic_write_with(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    before_rename: impl FnOnce() -> Result<(), VaultError>,
) -> Result<(), VaultError> {
    remove_dead_temporaries(path);
    let tmp = sibling(path, &format!(".tmp.{}", std::process::id()));
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| VaultError::io(&tmp, e))?;
        f.write_all(bytes).map_err(|e| VaultError::io(&tmp, e))?;
        f.sync_all().map_err(|e| VaultError::io(&tmp, e))?;
        before_rename()?;
        fs::rename(&tmp, path).map_err(|e| VaultError::io(path, e))
    })();
    if written.is_err() {
        // Best effort: the error being returned says more than a failed clean-up would.
        let _ = fs::remove_file(&tmp);
        return written;
    }
    let dir = parent_dir(path);
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| VaultError::io(&dir, e))
}

/// Removes `FILE.tmp.PID` files whose process no longer exists: what a writer killed between
/// creating its temporary file and the rename leaves behind (the sync state has no lock of
/// its own to clean up under, and without this each killed `mamori sync` would leave one
/// more). A temporary file of a live process is left alone: it may be writing right now.
/// Best effort: a failure here never stops the write.
fn remove_dead_temporaries(path: &Path) {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    let prefix = format!("{name}.tmp.");
    let Ok(entries) = fs::read_dir(parent_dir(path)) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(pid) = file.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
            continue;
        };
        // Only the exact `FILE.tmp.<digits>` form: any other file is not ours to delete.
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if pid != std::process::id() && !crate::sys::process_alive(pid) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The directory holding `path` (`.` for a bare file name), whose entry the rename changes.
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `path` with `suffix` appended to its file name, in the same directory (so a rename between
/// the two never crosses a file system).
pub(crate) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_and_replaces_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        atomic_write(&path, b"one", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one");
        assert_eq!(mode_of(&path), 0o600);
        // An existing file readable by others is replaced by a private one, not rewritten
        // in place with its old permissions.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        atomic_write(&path, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporaries"
        );
    }

    #[test]
    fn a_failed_write_keeps_the_old_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        atomic_write(&path, b"old", 0o600).unwrap();
        // A directory where the temporary file must go makes creating it fail, even for root
        // (which permission bits would not stop).
        let tmp = sibling(&path, &format!(".tmp.{}", std::process::id()));
        fs::create_dir(&tmp).unwrap();
        let err = atomic_write(&path, b"new", 0o600).unwrap_err();
        assert!(
            matches!(&err, VaultError::Io { path: p, .. } if *p == tmp),
            "{err}"
        );
        assert_eq!(fs::read(&path).unwrap(), b"old");
        fs::remove_dir(&tmp).unwrap();

        // A failure after the temporary file is complete removes it and keeps the old file.
        let err = atomic_write_with(&path, b"new", 0o600, || {
            Err(VaultError::Agent("refused".into()))
        })
        .unwrap_err();
        assert!(matches!(err, VaultError::Agent(_)), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporaries"
        );
    }

    #[test]
    fn a_parent_that_is_a_file_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        fs::write(&file, b"x").unwrap();
        let err = atomic_write(&file.join("f"), b"new", 0o600).unwrap_err();
        assert!(err.to_string().contains("not-a-dir"), "{err}");
        assert_eq!(fs::read(&file).unwrap(), b"x");
    }

    #[test]
    fn a_dead_writers_temporary_file_is_removed_at_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.sync");
        atomic_write(&path, b"old", 0o600).unwrap();
        // A writer that has exited and been reaped: its id is free (unless the system reused
        // it meanwhile, which the assertion below checks against /proc).
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let dead_tmp = sibling(&path, &format!(".tmp.{dead}"));
        fs::write(&dead_tmp, b"half").unwrap();
        // A live process's temporary file (our parent's: alive while we run), a non-numeric
        // suffix and another file's temporary stay.
        let live = std::os::unix::process::parent_id();
        let live_tmp = sibling(&path, &format!(".tmp.{live}"));
        fs::write(&live_tmp, b"busy").unwrap();
        let other = sibling(&path, ".tmp.notapid");
        fs::write(&other, b"x").unwrap();
        let other_file = dir.path().join("w.sync.tmp.1");
        fs::write(&other_file, b"x").unwrap();

        atomic_write(&path, b"new", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(
            dead_tmp.exists(),
            pid_exists(dead),
            "a dead writer's file is removed (kept only if its id was reused meanwhile)"
        );
        assert!(live_tmp.exists(), "a live process's file is kept");
        assert!(
            other.exists() && other_file.exists(),
            "other files are kept"
        );
    }

    #[test]
    fn process_alive_tells_a_live_process_from_a_reaped_one() {
        assert!(crate::sys::process_alive(std::process::id()));
        assert!(
            crate::sys::process_alive(1),
            "init: alive, even if not ours"
        );
        assert!(!crate::sys::process_alive(0));
        assert!(!crate::sys::process_alive(u32::MAX));
        let mut child = std::process::Command::new("sleep")
            .arg("10")
            .spawn()
            .unwrap();
        let pid = child.id();
        assert!(crate::sys::process_alive(pid));
        child.kill().unwrap();
        child.wait().unwrap();
        // Reaped: the id is free, unless the system reused it within these microseconds, as
        // /proc (an independent view) then shows.
        assert_eq!(crate::sys::process_alive(pid), pid_exists(pid));
    }

    /// Whether `/proc/PID` exists: the kernel's own list, to compare `process_alive` with.
    fn pid_exists(pid: u32) -> bool {
        Path::new(&format!("/proc/{pid}")).exists()
    }

    #[test]
    fn a_bare_file_name_is_in_the_current_directory() {
        assert_eq!(parent_dir(Path::new("vault")), PathBuf::from("."));
        assert_eq!(parent_dir(Path::new("/a/vault")), PathBuf::from("/a"));
    }
}

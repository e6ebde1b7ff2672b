//! Restoring a backup made by `admin backup` (see [`crate::domain::backup`]) into a data
//! directory. This runs before any service exists on that directory, so it works on files:
//! the copy is checked against its server key in a temporary file first and only then moved
//! into place, so a refused restore leaves nothing behind.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{ConnectOptions, Connection};

use crate::error::{Error, Result};
use crate::keys::ServerKey;
use crate::store::sqlite::SqliteStore;
use crate::store::Store;

/// The key file written next to a database backup `FILE`: `FILE.key`.
pub fn key_path_for(backup: &Path) -> PathBuf {
    let mut s = backup.as_os_str().to_os_string();
    s.push(".key");
    PathBuf::from(s)
}

/// Removes a file that may not exist, ignoring errors (clean-up after a failed step, where the
/// step's own error is the one worth reporting).
pub fn remove_quietly(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// `PATH` with `suffix` appended (`mamori.db` → `mamori.db-wal`).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// Removes an SQLite database file with its write-ahead log and shared-memory index.
fn remove_database_files(db: &Path) {
    remove_quietly(db);
    remove_quietly(&with_suffix(db, "-wal"));
    remove_quietly(&with_suffix(db, "-shm"));
}

/// What to restore, and where.
#[derive(Debug)]
pub struct RestoreRequest<'a> {
    /// The database copy made by `admin backup`.
    pub backup: &'a Path,
    /// The key file; `None`: `BACKUP.key` when it exists, else the data directory's key.
    pub key: Option<&'a Path>,
    /// The data directory (its `server.key` is written when missing).
    pub data_dir: &'a Path,
    /// The SQLite database file to create.
    pub database: &'a Path,
    /// Replace an existing database and a different server key.
    pub force: bool,
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    /// The key file the copy was checked with.
    pub key_source: PathBuf,
    /// Whether the data directory's `server.key` was written (else it already was that key).
    pub key_written: bool,
}

/// Whether another connection holds the database open (a running server keeps its WAL
/// connections open): switching the journal mode needs the database to itself, and is
/// refused at once with "busy" otherwise. Best effort: a server whose pools closed every idle
/// connection is not seen.
async fn in_use(db: &Path) -> bool {
    let opts = SqliteConnectOptions::new()
        .filename(db)
        .create_if_missing(false)
        .busy_timeout(Duration::ZERO)
        .journal_mode(SqliteJournalMode::Delete);
    match opts.connect().await {
        Ok(conn) => {
            let _ = conn.close().await;
            false
        }
        Err(e) => e
            .as_database_error()
            .and_then(|d| d.code())
            .and_then(|c| c.parse::<i64>().ok())
            // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with any extended code in the high bits.
            .is_some_and(|c| matches!(c & 0xff, 5 | 6)),
    }
}

/// Restores `r.backup` into the data directory: refuses an existing database (unless
/// `r.force`, and never one a running server visibly holds open), refuses a key that is not
/// the backup's (checked with the database's key check marker), and only then puts the
/// database and, when missing, the key in place.
pub async fn restore_sqlite(r: &RestoreRequest<'_>) -> Result<Restored> {
    if !r.backup.is_file() {
        return Err(Error::InvalidInput(format!(
            "{} is not a file: give the database file written by admin backup",
            r.backup.display()
        )));
    }
    let target_key_path = ServerKey::path_in(r.data_dir);
    let key_source = match r.key {
        Some(k) => k.to_path_buf(),
        None if key_path_for(r.backup).exists() => key_path_for(r.backup),
        None if target_key_path.exists() => target_key_path.clone(),
        None => {
            return Err(Error::Key(format!(
                "no key for this backup: {} does not exist; pass the key file with --key",
                key_path_for(r.backup).display()
            )))
        }
    };
    let key = ServerKey::load(&key_source)?;

    if r.database.exists() {
        if !r.force {
            return Err(Error::Conflict(format!(
                "{} already exists: restore into a data directory without a database, or pass \
                 --force to replace it (stop the server first)",
                r.database.display()
            )));
        }
        if in_use(r.database).await {
            return Err(Error::Conflict(format!(
                "{} is in use (a server is running on it?): stop it before restoring",
                r.database.display()
            )));
        }
    }
    let existing_key = if target_key_path.exists() {
        Some(ServerKey::load(&target_key_path)?)
    } else {
        None
    };
    let key_differs = existing_key.as_ref().is_some_and(|k| !k.same_as(&key));
    if key_differs && !r.force {
        return Err(Error::Conflict(format!(
            "{} is a different server key: restoring would replace it; pass --force if that \
             is intended",
            target_key_path.display()
        )));
    }
    std::fs::create_dir_all(r.data_dir)
        .map_err(|e| Error::InvalidInput(format!("cannot create {}: {e}", r.data_dir.display())))?;

    let staged = with_suffix(r.database, ".restoring");
    // Left over from an interrupted restore: never a live database.
    remove_database_files(&staged);
    if let Err(e) = stage_and_check(r.backup, &staged, &key, &key_source).await {
        remove_database_files(&staged);
        return Err(e);
    }

    let staged_key = with_suffix(&target_key_path, ".restoring");
    let key_written = existing_key.is_none() || key_differs;
    if key_written {
        remove_quietly(&staged_key);
        if let Err(e) = key.write_new(&staged_key) {
            remove_database_files(&staged);
            return Err(e);
        }
    }
    // A forced restore: the old database's log and index must not be applied to the new file.
    remove_quietly(&with_suffix(r.database, "-wal"));
    remove_quietly(&with_suffix(r.database, "-shm"));
    let moved = std::fs::rename(&staged, r.database).and_then(|_| {
        if key_written {
            std::fs::rename(&staged_key, &target_key_path)
        } else {
            Ok(())
        }
    });
    if let Err(e) = moved {
        remove_database_files(&staged);
        remove_quietly(&staged_key);
        return Err(Error::Internal(format!(
            "cannot move the restored database into place: {e}"
        )));
    }
    Ok(Restored {
        key_source,
        key_written,
    })
}

/// Copies the backup to `staged` (mode 0600), opens it (migrating an older backup to this
/// version's schema) and checks `key` against its key check marker.
async fn stage_and_check(
    backup: &Path,
    staged: &Path,
    key: &ServerKey,
    key_source: &Path,
) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::copy(backup, staged).map_err(|e| {
        Error::InvalidInput(format!(
            "cannot copy {} to {}: {e}",
            backup.display(),
            staged.display()
        ))
    })?;
    std::fs::set_permissions(staged, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::Internal(format!("cannot chmod {}: {e}", staged.display())))?;
    let store = SqliteStore::open(staged).await.map_err(|e| {
        Error::InvalidInput(format!(
            "{} is not a mamori database: {e}",
            backup.display()
        ))
    })?;
    let checked = crate::domain::check_key(&store, key).await;
    // Closing checkpoints the write-ahead log into the file before it is moved.
    store.close().await;
    checked.map_err(|e| match e {
        Error::Key(_) => Error::Key(format!(
            "restore refused: {} is not the key {} was made with (its OTP seeds cannot be \
             opened); nothing was restored",
            key_source.display(),
            backup.display()
        )),
        other => Error::InvalidInput(format!(
            "{} is not a mamori backup: {other}",
            backup.display()
        )),
    })
}

//! Online backups: a consistent copy of the database and, beside it, the server key that the
//! copy's OTP seeds are sealed with (a copy without its key cannot give the seeds back). The
//! file work happens in the store and in [`crate::keys`]; this module holds the order of the
//! steps and the audit event. Restoring happens before any service exists, in `crate::backup`.

use std::path::Path;

use super::audit::Event;
use super::{Request, Service};
use crate::error::Result;

pub use super::audit::kind::backup as kind;

impl Service {
    /// Copies the database to `db` (a new file, mode 0600) while the service goes on serving,
    /// then, when `key` is given, the server key to that new file (mode 0600); audited as
    /// `admin.backup`. When the key cannot be written the database copy is removed again, so
    /// that no backup is left that looks complete but cannot restore the seeds.
    pub async fn backup(
        &self,
        actor: &str,
        req: Request<'_>,
        db: &Path,
        key: Option<&Path>,
    ) -> Result<()> {
        self.store.backup_into(db).await?;
        if let Some(key_path) = key {
            if let Err(e) = self.key.write_new(key_path) {
                crate::store::discard_backup(db);
                return Err(e);
            }
        }
        let detail = match key {
            Some(k) => format!("{} with key {}", db.display(), k.display()),
            None => format!("{} without key", db.display()),
        };
        self.audit(
            req.now,
            req.meta,
            Event {
                kind: kind::BACKUP,
                result: "success",
                account: None,
                actor: Some(actor),
                detail: Some(&detail),
            },
        )
        .await?;
        Ok(())
    }
}

//! `pdm backup`: a consistent copy of a live SQLite database.

use super::{Dialect, Store, StoreError};
use std::path::Path;

impl Store {
    /// Write a consistent copy of the database to `dest` with SQLite's
    /// `VACUUM INTO`: it reads one snapshot (WAL readers do not block the
    /// writer, so a running `pdm serve` keeps serving and committing) and
    /// writes a compact, self-contained file. Postgres is refused: its own
    /// tools (`pg_dump`, base backups) do this job.
    pub async fn backup_to(&self, dest: &Path) -> Result<(), StoreError> {
        if self.dialect != Dialect::Sqlite {
            return Err(StoreError::Unsupported(
                "pdm backup copies SQLite databases; back up PostgreSQL with pg_dump or a base backup (pg_basebackup)".into(),
            ));
        }
        let dest = dest
            .to_str()
            .ok_or_else(|| StoreError::Unsupported("the backup path is not UTF-8".into()))?;
        sqlx::query("VACUUM INTO $1")
            .bind(dest)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

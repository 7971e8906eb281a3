//! The change journal: one entry per change to a zone, appended in the
//! same transaction as the change. Its readers: the DNS snapshot (follows it
//! on every replica); later IXFR, NOTIFY and the audit log.

use super::zones::StoredRecord;
use super::{now_ms, Store, StoreError};
use sqlx::{AnyConnection, Row};

/// Appends one entry (inside the caller's transaction).
pub(super) async fn append(
    conn: &mut AnyConnection,
    zone: &str,
    serial: u32,
    op: &str,
    added: &[StoredRecord],
    removed: &[StoredRecord],
    actor: &str,
) -> Result<(), StoreError> {
    let lines = |v: &[StoredRecord]| {
        v.iter()
            .map(StoredRecord::line)
            .collect::<Vec<_>>()
            .join("\n")
    };
    sqlx::query(
        "INSERT INTO zone_journal (zone, serial, op, added, removed, actor, at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(zone)
    .bind(serial as i64)
    .bind(op)
    .bind(lines(added))
    .bind(lines(removed))
    .bind(actor)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A journal entry as the snapshot refresher reads it.
#[derive(Debug, Clone)]
pub struct JournalEntry {
    /// Monotonic id (may have gaps).
    pub id: i64,
    /// Zone name.
    pub zone: String,
}

impl Store {
    /// Journal entries with `id > after`, oldest first, at most `limit`.
    pub async fn journal_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        let rows =
            sqlx::query("SELECT id, zone FROM zone_journal WHERE id > $1 ORDER BY id LIMIT $2")
                .bind(after)
                .bind(limit)
                .fetch_all(self.pool())
                .await?;
        rows.into_iter()
            .map(|r| {
                Ok(JournalEntry {
                    id: r.try_get("id")?,
                    zone: r.try_get("zone")?,
                })
            })
            .collect()
    }

    /// The newest journal id (0 when empty).
    pub async fn journal_head(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0) AS m FROM zone_journal")
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get::<i64, _>("m")?)
    }
}

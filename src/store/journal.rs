//! The change journal: one typed entry per change to a zone, appended in
//! the same transaction as the change. Its readers: the DNS snapshot
//! (follows it on every replica); later IXFR, NOTIFY and the audit log,
//! which need the records each change added and removed.

use super::batch::{Batch, Columns};
use super::zones::StoredRecord;
use super::{now_ms, Store, StoreError};
use sqlx::{AnyConnection, Row};
use std::sync::Arc;
use tokio::sync::broadcast;

/// What a change did to its zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOp {
    /// The zone came into being with `added`.
    Create,
    /// Records were added and removed; the serial grew.
    Update,
    /// The zone went, with `removed`.
    Delete,
}

impl ChangeOp {
    /// Storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeOp::Create => "create",
            ChangeOp::Update => "update",
            ChangeOp::Delete => "delete",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "create" => Ok(ChangeOp::Create),
            "update" => Ok(ChangeOp::Update),
            "delete" => Ok(ChangeOp::Delete),
            other => Err(StoreError::Corrupt(format!("journal op {other:?}"))),
        }
    }
}

/// One change to one zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneChange {
    /// Zone name, lower-case with the trailing dot.
    pub zone: String,
    /// The zone's SOA serial after the change.
    pub serial: u32,
    /// What happened.
    pub op: ChangeOp,
    /// Records the change added.
    pub added: Vec<StoredRecord>,
    /// Records the change removed.
    pub removed: Vec<StoredRecord>,
    /// Who made it (`commit:<pool>`, `byo`, `import`, ...).
    pub actor: String,
}

/// A journaled change with its place in the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    /// Monotonic id (may have gaps: rolled-back transactions).
    pub id: i64,
    /// When it was written, unix milliseconds.
    pub at_ms: i64,
    /// The change.
    pub change: ZoneChange,
}

/// Records as journal text: one master-file line each.
pub(super) fn lines(v: &[StoredRecord]) -> String {
    v.iter()
        .map(StoredRecord::line)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Journal text back to records (the inverse of [`lines`]).
fn parse_lines(text: &str) -> Result<Vec<StoredRecord>, StoreError> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let bad = || StoreError::Corrupt(format!("journal line {l:?}"));
            let mut it = l.splitn(5, ' ');
            let (Some(name), Some(ttl), Some("IN"), Some(rtype), Some(rdata)) =
                (it.next(), it.next(), it.next(), it.next(), it.next())
            else {
                return Err(bad());
            };
            Ok(StoredRecord {
                name: name.to_string(),
                ttl: ttl.parse().map_err(|_| bad())?,
                rtype: rtype.to_string(),
                rdata: rdata.to_string(),
            })
        })
        .collect()
}

/// Appends `change` (inside the caller's transaction).
pub(super) async fn append(
    conn: &mut AnyConnection,
    change: &ZoneChange,
) -> Result<i64, StoreError> {
    let mut batch = Batch::default();
    append_into(&mut batch, change, now_ms());
    appended_id(&batch.run(conn).await?)
}

/// The id [`append_into`]'s statement returned: the one row of `rows`, a
/// batch in which it is the only statement that returns rows.
pub(super) fn appended_id(rows: &[impl Columns]) -> Result<i64, StoreError> {
    match rows {
        [row] => row.int("id"),
        _ => Err(StoreError::Corrupt("journal insert returned no id".into())),
    }
}

/// [`append`] as a statement of `batch`, written at `at` (unix ms); the
/// statement returns the entry's `id`.
pub(super) fn append_into(batch: &mut Batch, change: &ZoneChange, at: i64) {
    batch.push(
        "INSERT INTO zone_journal (zone, serial, op, added, removed, actor, at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        vec![
            change.zone.as_str().into(),
            i64::from(change.serial).into(),
            change.op.as_str().into(),
            lines(&change.added).into(),
            lines(&change.removed).into(),
            change.actor.as_str().into(),
            at.into(),
        ],
    );
}

/// The columns [`entry_of`] reads.
const ENTRY_COLUMNS: &str = "id, zone, serial, op, added, removed, actor, at";

/// A journal row as a typed entry.
fn entry_of(r: &sqlx::any::AnyRow) -> Result<JournalEntry, StoreError> {
    Ok(JournalEntry {
        id: r.try_get("id")?,
        at_ms: r.try_get("at")?,
        change: ZoneChange {
            zone: r.try_get("zone")?,
            serial: u32::try_from(r.try_get::<i64, _>("serial")?)
                .map_err(|_| StoreError::Corrupt("journal serial".into()))?,
            op: ChangeOp::parse(&r.try_get::<String, _>("op")?)?,
            added: parse_lines(&r.try_get::<String, _>("added")?)?,
            removed: parse_lines(&r.try_get::<String, _>("removed")?)?,
            actor: r.try_get("actor")?,
        },
    })
}

impl Store {
    /// Tells this process's journal followers about `entry`, which this
    /// process has just committed: they apply it without reading it back
    /// (a statement, on SQLite a round trip to its thread, per write).
    /// Followers that miss it (lagging, or not yet listening) read it from
    /// the journal as before.
    pub fn committed(&self, entry: JournalEntry) {
        // No follower listening is not an error.
        let _ = self.committed.send(Arc::new(entry));
    }

    /// What [`Store::committed`] announces from now on.
    pub fn committed_here(&self) -> broadcast::Receiver<Arc<JournalEntry>> {
        self.committed.subscribe()
    }

    /// The journal entry `id`, if it exists.
    pub async fn journal_entry(&self, id: i64) -> Result<Option<JournalEntry>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {ENTRY_COLUMNS} FROM zone_journal WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(entry_of).transpose()
    }

    /// Journal entries with `id > after`, oldest first, at most `limit`.
    pub async fn journal_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ENTRY_COLUMNS} FROM zone_journal WHERE id > $1 ORDER BY id LIMIT $2"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(entry_of).collect()
    }

    /// Removes entries that are neither among their zone's newest
    /// `keep_changes` nor written at or after `keep_since_ms`, and are at or
    /// below `served_through` (every live replica serves them), at most
    /// `batch` at a time. Returns how many went.
    pub async fn compact_journal(
        &self,
        keep_changes: u64,
        keep_since_ms: i64,
        served_through: i64,
        batch: i64,
    ) -> Result<u64, StoreError> {
        let keep = i64::try_from(keep_changes).unwrap_or(i64::MAX);
        let r = sqlx::query(
            "DELETE FROM zone_journal WHERE id IN (\
               SELECT id FROM (\
                 SELECT id, at, ROW_NUMBER() OVER (PARTITION BY zone ORDER BY id DESC) AS newer \
                 FROM zone_journal) ranked \
               WHERE newer > $1 AND at < $2 AND id <= $3 ORDER BY id LIMIT $4)",
        )
        .bind(keep)
        .bind(keep_since_ms)
        .bind(served_through)
        .bind(batch)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected())
    }

    /// The newest journal id (0 when empty).
    pub async fn journal_head(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0) AS m FROM zone_journal")
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get::<i64, _>("m")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_text_round_trips_records() {
        let recs = vec![
            StoredRecord {
                name: "a.example.test.".into(),
                rtype: "TXT".into(),
                ttl: 300,
                rdata: "\"two  spaces\" \"and more\"".into(),
            },
            StoredRecord {
                name: "example.test.".into(),
                rtype: "SOA".into(),
                ttl: 3600,
                rdata: "ns1.example.test. hostmaster.example.test. 7 10800 3600 604800 300".into(),
            },
        ];
        assert_eq!(parse_lines(&lines(&recs)).unwrap(), recs);
        assert_eq!(parse_lines("").unwrap(), vec![]);
        assert!(parse_lines("a.example.test. 300 CH TXT x").is_err());
        assert!(parse_lines("a.example.test. x IN TXT y").is_err());
    }

    #[test]
    fn ops_round_trip() {
        for op in [ChangeOp::Create, ChangeOp::Update, ChangeOp::Delete] {
            assert_eq!(ChangeOp::parse(op.as_str()).unwrap(), op);
        }
        assert!(ChangeOp::parse("merge").is_err());
    }
}

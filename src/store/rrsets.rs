//! The SQL of record writes: the neighbourhood a change set needs, the
//! write itself (rows, serial, journal, audit in the caller's transaction),
//! and the audit trail's reads.

use super::journal::{self, ChangeOp, ZoneChange};
use super::zones::{self, StoredRecord, ZoneRow};
use super::{now_ms, Store, StoreError};
use sqlx::{AnyConnection, Row};

/// Locks zone `name` for a write (row lock on Postgres; SQLite has one
/// writer) and reads it; `None` when there is no such zone.
pub async fn lock_zone(
    conn: &mut AnyConnection,
    name: &str,
) -> Result<Option<ZoneRow>, StoreError> {
    sqlx::query("UPDATE zones SET serial = serial WHERE name = $1")
        .bind(name)
        .execute(&mut *conn)
        .await?;
    zones::get_zone(conn, name).await
}

/// `$first, $first+1, …` for an `IN (…)` of `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Bound on the values of one `IN (…)` (SQLite allows 32766 parameters).
const IN_CHUNK: usize = 500;

/// Every record of the zone at any of `owners`.
pub async fn records_at(
    conn: &mut AnyConnection,
    zone_id: i64,
    owners: &[String],
) -> Result<Vec<StoredRecord>, StoreError> {
    let mut out = Vec::new();
    for chunk in owners.chunks(IN_CHUNK) {
        let sql = format!(
            "SELECT name, rtype, ttl, rdata FROM records WHERE zone_id = $1 AND name IN ({}) ORDER BY id",
            placeholders(2, chunk.len())
        );
        let mut q = sqlx::query(&sql).bind(zone_id);
        for o in chunk {
            q = q.bind(o);
        }
        for r in q.fetch_all(&mut *conn).await? {
            out.push(StoredRecord {
                name: r.try_get("name")?,
                rtype: r.try_get("rtype")?,
                ttl: r.try_get::<i64, _>("ttl")?.clamp(0, u32::MAX as i64) as u32,
                rdata: r.try_get("rdata")?,
            });
        }
    }
    Ok(out)
}

/// The `(owner, type)` pairs strictly below `owner` in the zone.
pub async fn rrsets_below(
    conn: &mut AnyConnection,
    zone_id: i64,
    owner: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    let rows = sqlx::query(
        "SELECT DISTINCT name, rtype FROM records WHERE zone_id = $1 AND name LIKE $2 ESCAPE '\\'",
    )
    .bind(zone_id)
    .bind(super::like_below(owner))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("name")?, r.try_get("rtype")?)))
        .collect()
}

/// Which of `names` are zones pdm hosts.
pub async fn hosted_zones(
    conn: &mut AnyConnection,
    names: &[String],
) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for chunk in names.chunks(IN_CHUNK) {
        let sql = format!(
            "SELECT name FROM zones WHERE name IN ({})",
            placeholders(1, chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for n in chunk {
            q = q.bind(n);
        }
        for r in q.fetch_all(&mut *conn).await? {
            out.push(r.try_get("name")?);
        }
    }
    Ok(out)
}

/// How many records the zone holds.
pub async fn record_count(conn: &mut AnyConnection, zone_id: i64) -> Result<usize, StoreError> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM records WHERE zone_id = $1")
        .bind(zone_id)
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.try_get::<i64, _>("n")?.max(0) as usize)
}

/// One RRset a change replaces: every record of `(owner, rtype)` before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RRsetRows {
    /// Owner, lower-case FQDN.
    pub owner: String,
    /// Type mnemonic as stored.
    pub rtype: String,
    /// Its records before (empty: it did not exist).
    pub before: Vec<StoredRecord>,
    /// Its records after (empty: it is gone).
    pub after: Vec<StoredRecord>,
}

/// Who made a change and how, for the journal and the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// `rrset-api`, `pdns-api`, `rfc2136`, `import`.
    pub path: String,
    /// `token:<id>` or `tsig:<name>`.
    pub credential: String,
}

/// Writes the RRsets (inside the caller's transaction, with the zone row
/// locked by [`lock_zone`]): rows, one serial bump, one journal entry, an
/// audit row per RRset. Returns the new serial.
pub async fn write_rrsets(
    conn: &mut AnyConnection,
    zone: &ZoneRow,
    sets: &[RRsetRows],
    author: &Author,
) -> Result<u32, StoreError> {
    for s in sets {
        sqlx::query("DELETE FROM records WHERE zone_id = $1 AND name = $2 AND rtype = $3")
            .bind(zone.id)
            .bind(&s.owner)
            .bind(&s.rtype)
            .execute(&mut *conn)
            .await?;
        for r in &s.after {
            zones::insert_record(conn, zone.id, r).await?;
        }
    }
    let serial = zones::bump_soa(conn, zone).await?;
    let actor = format!("{}:{}", author.path, author.credential);
    journal::append(
        conn,
        &ZoneChange {
            zone: zone.name.clone(),
            serial,
            op: ChangeOp::Update,
            added: sets.iter().flat_map(|s| s.after.iter().cloned()).collect(),
            removed: sets.iter().flat_map(|s| s.before.iter().cloned()).collect(),
            actor,
        },
    )
    .await?;
    let at = now_ms();
    for s in sets {
        sqlx::query(
            "INSERT INTO rrset_audit (zone, owner, rtype, old_rrs, new_rrs, serial, path, credential, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&zone.name)
        .bind(&s.owner)
        .bind(&s.rtype)
        .bind(journal::lines(&s.before))
        .bind(journal::lines(&s.after))
        .bind(serial as i64)
        .bind(&author.path)
        .bind(&author.credential)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(serial)
}

/// One audited RRset change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditRow {
    /// Monotonic id (page with `after`).
    pub id: i64,
    /// Zone.
    pub zone: String,
    /// Owner.
    pub owner: String,
    /// Type.
    #[serde(rename = "type")]
    pub rtype: String,
    /// Master-file lines before.
    pub before: Vec<String>,
    /// Master-file lines after.
    pub after: Vec<String>,
    /// The zone's serial after the change.
    pub serial: u32,
    /// The write path.
    pub path: String,
    /// The credential (`token:<id>`, `tsig:<name>`), never its secret.
    pub credential: String,
    /// Unix milliseconds.
    #[serde(rename = "atMs")]
    pub at_ms: i64,
}

impl Store {
    /// Audited changes, oldest first, after id `after`, optionally of one zone.
    pub async fn rrset_audit(
        &self,
        zone: Option<&str>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let cols = "id, zone, owner, rtype, old_rrs, new_rrs, serial, path, credential, at";
        // One statement for both: `$1 = ''` selects every zone.
        let sql = format!(
            "SELECT {cols} FROM rrset_audit WHERE ($1 = '' OR zone = $1) AND id > $2 ORDER BY id LIMIT $3"
        );
        let q = sqlx::query(&sql).bind(zone.unwrap_or("").to_string());
        let rows = q.bind(after).bind(limit).fetch_all(self.pool()).await?;
        let split = |s: String| -> Vec<String> {
            s.lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect()
        };
        rows.iter()
            .map(|r| {
                Ok(AuditRow {
                    id: r.try_get("id")?,
                    zone: r.try_get("zone")?,
                    owner: r.try_get("owner")?,
                    rtype: r.try_get("rtype")?,
                    before: split(r.try_get("old_rrs")?),
                    after: split(r.try_get("new_rrs")?),
                    serial: r.try_get::<i64, _>("serial")?.clamp(0, u32::MAX as i64) as u32,
                    path: r.try_get("path")?,
                    credential: r.try_get("credential")?,
                    at_ms: r.try_get("at")?,
                })
            })
            .collect()
    }
}

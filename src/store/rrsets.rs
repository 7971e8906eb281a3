//! The SQL of record writes: the neighbourhood a change set needs, the
//! write itself (rows, serial, journal, audit in the caller's transaction),
//! and the audit trail's reads.

use super::journal::{self, ChangeOp, ZoneChange};
use super::zones::{self, StoredRecord, ZoneRow};
use super::{now_ms, Store, StoreError};
use sqlx::{AnyConnection, Row};

/// A credential read from a cache, found again inside the write's
/// transaction: one deleted (or replaced) since it was cached writes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recheck {
    /// An API token: its id and the SHA-256 of its secret (ids can be reused).
    Token {
        /// `api_tokens.id`.
        id: i64,
        /// `api_tokens.token_hash`.
        hash: String,
    },
    /// A TSIG key: its name and sealed secret (a key deleted and made again
    /// under its name has another secret, and maybe another policy).
    Tsig {
        /// `tsig_keys.name`.
        name: String,
        /// `tsig_keys.secret`.
        sealed: String,
    },
}

/// A zone row locked for a write, with what the write checks under the lock.
#[derive(Debug, Clone)]
pub struct Locked {
    /// The zone.
    pub zone: ZoneRow,
    /// How many records it holds (0 for a pool zone, which has no bound).
    pub records: usize,
    /// The [`Recheck`]ed credential is still stored (true without one).
    pub credential_live: bool,
}

/// Locks zone `name` for a write (row lock on Postgres; SQLite has one
/// writer) and reads it, its record count and whether `recheck` still
/// stands, in one statement; `None` when there is no such zone.
pub async fn lock_zone(
    conn: &mut AnyConnection,
    name: &str,
    recheck: Option<&Recheck>,
) -> Result<Option<Locked>, StoreError> {
    // Sub-selects in RETURNING: SQLite >= 3.35 and Postgres both take them.
    let live = match recheck {
        None => "1",
        Some(Recheck::Token { .. }) => {
            "(SELECT COUNT(*) FROM api_tokens WHERE id = $2 AND token_hash = $3)"
        }
        Some(Recheck::Tsig { .. }) => {
            "(SELECT COUNT(*) FROM tsig_keys WHERE name = $2 AND secret = $3)"
        }
    };
    let sql = format!(
        "UPDATE zones SET serial = serial WHERE name = $1 RETURNING id, name, kind, serial, serial_policy, \
         CASE WHEN kind = 'pool' THEN 0 ELSE (SELECT COUNT(*) FROM records WHERE records.zone_id = zones.id) END AS n, \
         {live} AS live"
    );
    let mut q = sqlx::query(&sql).bind(name);
    q = match recheck {
        None => q,
        Some(Recheck::Token { id, hash }) => q.bind(*id).bind(hash),
        Some(Recheck::Tsig { name, sealed }) => q.bind(name).bind(sealed),
    };
    let Some(r) = q.fetch_optional(&mut *conn).await? else {
        return Ok(None);
    };
    Ok(Some(Locked {
        zone: zones::zone_row_of(&r)?,
        records: r.try_get::<i64, _>("n")?.max(0) as usize,
        credential_live: r.try_get::<i64, _>("live")? > 0,
    }))
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
    Ok(records_and_soa(conn, zone_id, owners, None).await?.0)
}

/// [`records_at`], and with `apex` the zone's SOA record too, in the same
/// statement (a write bumps its serial; the SOA is among the records only
/// when `apex` is one of `owners`).
pub async fn records_and_soa(
    conn: &mut AnyConnection,
    zone_id: i64,
    owners: &[String],
    apex: Option<&str>,
) -> Result<(Vec<StoredRecord>, Option<StoredRecord>), StoreError> {
    let mut out = Vec::new();
    let mut soa = None;
    // An empty owner list still reads the SOA (one chunk of nothing).
    let chunks: Vec<&[String]> = if owners.is_empty() {
        vec![&[]]
    } else {
        owners.chunks(IN_CHUNK).collect()
    };
    for (i, chunk) in chunks.into_iter().enumerate() {
        // The apex among the names (its rows other than the SOA are
        // dropped below unless it is an owner asked for). One `name IN (…)`:
        // an `OR (name = apex AND rtype = 'SOA')` makes SQLite scan every
        // row of the zone.
        let apex_extra = match apex {
            Some(a) if i == 0 && !chunk.iter().any(|o| o == a) => Some(a),
            _ => None,
        };
        let n = chunk.len() + usize::from(apex_extra.is_some());
        if n == 0 {
            continue;
        }
        let sql = format!(
            "SELECT name, rtype, ttl, rdata FROM records WHERE zone_id = $1 AND name IN ({}) ORDER BY id",
            placeholders(2, n)
        );
        let mut q = sqlx::query(&sql).bind(zone_id);
        for o in chunk {
            q = q.bind(o);
        }
        if let Some(a) = apex_extra {
            q = q.bind(a);
        }
        for r in q.fetch_all(&mut *conn).await? {
            let rec = StoredRecord {
                name: r.try_get("name")?,
                rtype: r.try_get("rtype")?,
                ttl: r.try_get::<i64, _>("ttl")?.clamp(0, u32::MAX as i64) as u32,
                rdata: r.try_get("rdata")?,
            };
            let is_soa = apex.is_some_and(|a| rec.name == a) && rec.rtype == "SOA";
            if is_soa && soa.is_none() {
                soa = Some(rec.clone());
            }
            // Read for the SOA alone: not part of the neighbourhood.
            if chunk.contains(&rec.name) {
                out.push(rec);
            }
        }
    }
    Ok((out, soa))
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
    Ok(write_rrsets_with(conn, zone, None, sets, author)
        .await?
        .serial)
}

/// What [`write_rrsets_with`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// The zone's new serial.
    pub serial: u32,
    /// The journal entry of the change (DNS serves the change once it
    /// follows the journal this far).
    pub journal_id: i64,
}

/// [`write_rrsets`] with the apex SOA already read in this transaction
/// (`None`: read it here).
pub async fn write_rrsets_with(
    conn: &mut AnyConnection,
    zone: &ZoneRow,
    soa: Option<&StoredRecord>,
    sets: &[RRsetRows],
    author: &Author,
) -> Result<Written, StoreError> {
    for s in sets {
        sqlx::query("DELETE FROM records WHERE zone_id = $1 AND name = $2 AND rtype = $3")
            .bind(zone.id)
            .bind(&s.owner)
            .bind(&s.rtype)
            .execute(&mut *conn)
            .await?;
        zones::insert_records(conn, zone.id, &s.after).await?;
    }
    let serial = match soa {
        Some(soa) => zones::bump_soa_from(conn, zone, Some(soa)).await?,
        None => zones::bump_soa(conn, zone).await?,
    };
    let actor = format!("{}:{}", author.path, author.credential);
    let journal_id = journal::append(
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
    Ok(Written { serial, journal_id })
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

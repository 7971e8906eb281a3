//! The SQL of record writes: the neighbourhood a change set needs, the
//! write itself (rows, serial, journal, audit in the caller's transaction),
//! and the audit trail's reads.

use super::batch::{Arg, Batch, Columns};
use super::journal::{self, ChangeOp, JournalEntry, ZoneChange};
use super::write::WriteTx;
use super::zones::{self, StoredRecord, ZoneRow};
use super::{now_ms, Dialect, Store, StoreError};
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
    /// How many records it holds (kept by triggers, not counted here).
    pub records: usize,
    /// The [`Recheck`]ed credential is still stored (true without one).
    pub credential_live: bool,
}

/// A locked zone and what a write needs of it, read in the same batch.
#[derive(Debug, Clone)]
pub struct Neighbours {
    /// The zone row, locked.
    pub locked: Locked,
    /// Every record of the zone at the owners asked for.
    pub records: Vec<StoredRecord>,
    /// The apex SOA record (a write bumps its serial).
    pub soa: Option<StoredRecord>,
    /// Which of the names asked about are zones pdm hosts.
    pub hosted: Vec<String>,
}

/// Begins `tx`, locks zone `name` for a write (row lock on Postgres; SQLite
/// has one writer) and reads, in one [`Batch`]: its row, its record count
/// and whether `recheck` still stands; its records at `owners` and its apex
/// SOA; which of `maybe_zones` are zones pdm hosts. `None` when there is no
/// such zone.
pub async fn lock_and_read(
    tx: &mut WriteTx,
    name: &str,
    recheck: Option<&Recheck>,
    owners: &[String],
    maybe_zones: &[String],
) -> Result<Option<Neighbours>, StoreError> {
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
    let mut args = vec![Arg::from(name)];
    match recheck {
        None => {}
        Some(Recheck::Token { id, hash }) => args.extend([Arg::from(*id), hash.as_str().into()]),
        Some(Recheck::Tsig { name, sealed }) => {
            args.extend([name.as_str().into(), sealed.as_str().into()])
        }
    }
    let mut batch = Batch::default();
    // Each statement's rows say which they are (`part`): on SQLite the
    // batch's rows come back as one stream.
    let columns = format!(
        "CAST('zone' AS TEXT) AS part, id, name, kind, serial, serial_policy, \
         record_count AS n, {live} AS live"
    );
    // Postgres locks the row by writing it; SQLite's BEGIN IMMEDIATE
    // already holds the database's one write lock, so a read will do.
    let lock = match tx.dialect() {
        Dialect::Postgres => {
            format!("UPDATE zones SET serial = serial WHERE name = $1 RETURNING {columns}")
        }
        Dialect::Sqlite => format!("SELECT {columns} FROM zones WHERE name = $1"),
    };
    batch.push(lock, args);
    // The apex SOA on its own unless the apex is an owner asked for (its
    // other records are not needed; an `OR (name = apex AND rtype = 'SOA')`
    // in the owners' statement makes SQLite scan every row of the zone).
    if !owners.iter().any(|o| o == name) {
        batch.push(
            "SELECT CAST('record' AS TEXT) AS part, name, rtype, ttl, rdata FROM records \
             WHERE zone_id = (SELECT id FROM zones WHERE name = $1) AND name = $1 AND rtype = 'SOA'",
            vec![Arg::from(name)],
        );
    }
    for chunk in owners.chunks(IN_CHUNK) {
        let sql = format!(
            "SELECT CAST('record' AS TEXT) AS part, name, rtype, ttl, rdata FROM records \
             WHERE zone_id = (SELECT id FROM zones WHERE name = $1) AND name IN ({}) ORDER BY id",
            placeholders(2, chunk.len())
        );
        let mut args = vec![Arg::from(name)];
        args.extend(chunk.iter().map(|n| Arg::from(n.as_str())));
        batch.push(sql, args);
    }
    for chunk in maybe_zones.chunks(IN_CHUNK) {
        let sql = format!(
            "SELECT CAST('hosted' AS TEXT) AS part, name FROM zones WHERE name IN ({})",
            placeholders(1, chunk.len())
        );
        batch.push(sql, chunk.iter().map(|n| Arg::from(n.as_str())).collect());
    }
    let mut locked = None;
    let mut records = Vec::new();
    let mut soa = None;
    let mut hosted = Vec::new();
    for r in tx.run(batch).await? {
        match r.text("part")?.as_str() {
            "zone" => {
                locked = Some(Locked {
                    zone: zones::zone_row_of(&r)?,
                    records: r.int("n")?.max(0) as usize,
                    credential_live: r.int("live")? > 0,
                })
            }
            "record" => {
                let rec = zones::record_of(&r)?;
                if rec.name == name && rec.rtype == "SOA" && soa.is_none() {
                    soa = Some(rec.clone());
                }
                // The apex read for its SOA alone is not asked for.
                if owners.contains(&rec.name) {
                    records.push(rec);
                }
            }
            _ => hosted.push(r.text("name")?),
        }
    }
    Ok(locked.map(|locked| Neighbours {
        locked,
        records,
        soa,
        hosted,
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
            out.push(zones::record_of(&r)?);
        }
    }
    Ok(out)
}

/// The `(owner, type)` pairs strictly below `owner` in the zone, read in
/// `tx`.
pub async fn rrsets_below(
    tx: &mut WriteTx,
    zone_id: i64,
    owner: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    let mut batch = Batch::default();
    batch.push(
        "SELECT DISTINCT name, rtype FROM records WHERE zone_id = $1 AND name LIKE $2 ESCAPE '\\'",
        vec![zone_id.into(), super::like_below(owner).into()],
    );
    tx.run(batch)
        .await?
        .iter()
        .map(|r| Ok((r.text("name")?, r.text("rtype")?)))
        .collect()
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

/// What [`write_rrsets_with`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The zone's new serial.
    pub serial: u32,
    /// The journal entry of the change (DNS serves the change once it
    /// follows the journal this far), as written: once committed, the
    /// caller hands it to this process's followers ([`Store::committed`]).
    pub entry: JournalEntry,
}

/// Writes the RRsets and commits `tx` (in which [`lock_and_read`] locked
/// the zone row): rows, one serial bump, one journal entry, an audit row
/// per RRset. `soa` is the zone's apex SOA as [`lock_and_read`] found it
/// (`None`: the zone has none, and only its serial moves). Every statement
/// and the COMMIT go in one [`Batch`]: on SQLite one round trip to its
/// thread rather than seven or more.
pub async fn write_rrsets_with(
    tx: &mut WriteTx,
    zone: &ZoneRow,
    soa: Option<&StoredRecord>,
    sets: &[RRsetRows],
    author: &Author,
) -> Result<Written, StoreError> {
    let mut batch = Batch::default();
    for s in sets {
        let key: Vec<Arg> = vec![
            zone.id.into(),
            s.owner.as_str().into(),
            s.rtype.as_str().into(),
        ];
        // One record for one (the usual REPLACE of a TXT or an address):
        // its row rewritten in place leaves the index untouched, a page
        // fewer in the commit. `before` is every row there, read under
        // the write lock.
        if let ([_], [new]) = (s.before.as_slice(), s.after.as_slice()) {
            let mut args = key;
            args.extend([i64::from(new.ttl).into(), new.rdata.as_str().into()]);
            batch.push(
                "UPDATE records SET ttl = $4, rdata = $5 WHERE zone_id = $1 AND name = $2 AND rtype = $3",
                args,
            );
            continue;
        }
        batch.push(
            "DELETE FROM records WHERE zone_id = $1 AND name = $2 AND rtype = $3",
            key,
        );
        zones::insert_records_into(&mut batch, zone.id, &s.after);
    }
    let serial = zones::bump_soa_into(&mut batch, zone, soa)?;
    let change = ZoneChange {
        zone: zone.name.clone(),
        serial,
        op: ChangeOp::Update,
        added: sets.iter().flat_map(|s| s.after.iter().cloned()).collect(),
        removed: sets.iter().flat_map(|s| s.before.iter().cloned()).collect(),
        actor: format!("{}:{}", author.path, author.credential),
    };
    let at = now_ms();
    journal::append_into(&mut batch, &change, at);
    for s in sets {
        batch.push(
            "INSERT INTO rrset_audit (zone, owner, rtype, old_rrs, new_rrs, serial, path, credential, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            vec![
                zone.name.as_str().into(),
                s.owner.as_str().into(),
                s.rtype.as_str().into(),
                journal::lines(&s.before).into(),
                journal::lines(&s.after).into(),
                i64::from(serial).into(),
                author.path.as_str().into(),
                author.credential.as_str().into(),
                at.into(),
            ],
        );
    }
    // The journal's INSERT is the batch's one statement that returns a row.
    let id = journal::appended_id(&tx.commit_with(batch).await?)?;
    Ok(Written {
        serial,
        entry: JournalEntry {
            id,
            at_ms: at,
            change,
        },
    })
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

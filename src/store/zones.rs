//! Zones and their records; every change also appends to the journal (`journal.rs`).
//!
//! Every change goes through [`ZoneChange`] inside a caller's transaction:
//! it rewrites the rows, bumps the SOA serial, and appends one journal row,
//! so the DNS snapshot (which follows the journal) can never see a change
//! without its serial bump or miss one.

use super::batch::{Arg, Batch, Columns};
use super::journal::{ChangeOp, ZoneChange};
use super::{now_ms, Store, StoreError};
use crate::model::rtype::{parse_type, type_name};
use crate::model::SerialPolicy;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable;
use sqlx::{AnyConnection, Row};

/// Why a zone is in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneKind {
    /// A pool domain's zone, created at start.
    Pool,
    /// A committed allocation's zone.
    Child,
    /// Loaded with `pdm zone import`.
    Imported,
}

impl ZoneKind {
    /// Storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ZoneKind::Pool => "pool",
            ZoneKind::Child => "child",
            ZoneKind::Imported => "imported",
        }
    }
}

/// One record as stored: lower-case owner FQDN, type mnemonic, presentation rdata.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StoredRecord {
    /// Owner, lower-case with trailing dot.
    pub name: String,
    /// Type mnemonic, e.g. `A`.
    pub rtype: String,
    /// TTL in seconds.
    pub ttl: u32,
    /// Presentation-format rdata.
    pub rdata: String,
}

/// One zone as [`Store::load_zones`] reads it.
#[derive(Debug, Clone)]
pub struct BulkZone {
    /// Zone FQDN, lower-case with trailing dot.
    pub name: String,
    /// Denial mode (`nsec3` | `compact`) when the zone is signed.
    pub dnssec: Option<String>,
    /// Its records.
    pub records: Vec<StoredRecord>,
    /// Its keys that are not removed, oldest first.
    pub keys: Vec<super::keys::KeyRow>,
}

impl StoredRecord {
    /// From a hickory record.
    pub fn from_record(r: &Record) -> Self {
        StoredRecord {
            name: r.name.to_lowercase().to_ascii(),
            rtype: type_name(r.record_type()),
            ttl: r.ttl,
            rdata: storage_text(&r.data),
        }
    }

    /// Back to a hickory record.
    pub fn to_record(&self) -> Result<Record, StoreError> {
        let bad = |m: String| {
            StoreError::Corrupt(format!("{} {} {}: {m}", self.name, self.rtype, self.rdata))
        };
        let name = Name::from_ascii(&self.name).map_err(|e| bad(e.to_string()))?;
        let rtype = parse_type(&self.rtype).map_err(bad)?;
        let rdata = match self.rdata.strip_prefix("\\# ") {
            Some(generic) => from_generic(rtype, generic).map_err(bad)?,
            None => match common_rdata(rtype, &self.rdata) {
                Some(rdata) => rdata,
                None => RData::try_from_str(rtype, &self.rdata).map_err(|e| bad(e.to_string()))?,
            },
        };
        let mut record = Record::from_rdata(name, self.ttl, rdata);
        crate::zone::file::split_long_strings(&mut record);
        Ok(record)
    }

    /// Master-file line (for the journal).
    pub fn line(&self) -> String {
        format!(
            "{} {} IN {} {}",
            self.name, self.ttl, self.rtype, self.rdata
        )
    }
}

/// `text` as a lower-cased absolute name when it is one in the plainest
/// spelling (no escapes, nothing the zone-file lexer reads specially);
/// `None` sends it to that lexer.
fn plain_fqdn(text: &str) -> Option<Name> {
    if !text.ends_with('.') || text.contains(['\\', ' ', '(', ')', ';']) {
        return None;
    }
    Name::from_ascii(text).ok().map(|n| n.to_lowercase())
}

/// The rdata of the types every child zone holds (A, AAAA, NS) and of
/// plain TXT (the record APIs' usual write), read directly: hickory's
/// presentation parser runs a zone-file lexer per record, a third of
/// start-up with 100k zones. `None` sends anything else, or anything these
/// forms do not read, to that parser (same result).
fn common_rdata(rtype: RecordType, text: &str) -> Option<RData> {
    use hickory_proto::rr::rdata::{A, AAAA, NS};
    match rtype {
        RecordType::A => text.parse().ok().map(|a| RData::A(A(a))),
        RecordType::AAAA => text.parse().ok().map(|a| RData::AAAA(AAAA(a))),
        RecordType::NS => plain_fqdn(text).map(|n| RData::NS(NS(n))),
        RecordType::TXT => crate::zone::file::plain_txt(text),
        // One per zone: the lexer costs more than the rest of its records.
        RecordType::SOA => {
            use hickory_proto::rr::rdata::SOA;
            let mut f = text.split_ascii_whitespace();
            let (mname, rname) = (plain_fqdn(f.next()?)?, plain_fqdn(f.next()?)?);
            let serial: u32 = f.next()?.parse().ok()?;
            let refresh: i32 = f.next()?.parse().ok()?;
            let retry: i32 = f.next()?.parse().ok()?;
            let expire: i32 = f.next()?.parse().ok()?;
            let minimum: u32 = f.next()?.parse().ok()?;
            if f.next().is_some() {
                return None;
            }
            Some(RData::SOA(SOA::new(
                mname, rname, serial, refresh, retry, expire, minimum,
            )))
        }
        _ => None,
    }
}

/// Whether hickory can read this type back from presentation text; the
/// others (DNSSEC key and denial types, unknown types such as LUA) are
/// stored in RFC 3597 generic form so they round-trip byte-exactly.
fn has_text_parser(rtype: RecordType) -> bool {
    !matches!(
        rtype,
        RecordType::DNSKEY
            | RecordType::CDNSKEY
            | RecordType::KEY
            | RecordType::CDS
            | RecordType::NSEC
            | RecordType::NSEC3
            | RecordType::NSEC3PARAM
            | RecordType::RRSIG
            | RecordType::SIG
            | RecordType::Unknown(_)
    )
}

/// Whether `data` holds a string that is not UTF-8: hickory keeps a
/// string's presentation text as UTF-8, so its text form would hold other
/// bytes. Such strings come from the wire (an RFC 2136 UPDATE).
fn holds_binary_strings(data: &RData) -> bool {
    let binary = |s: &[u8]| std::str::from_utf8(s).is_err();
    match data {
        RData::TXT(t) => t.txt_data.iter().any(|s| binary(s)),
        RData::HINFO(h) => binary(&h.cpu) || binary(&h.os),
        RData::NAPTR(n) => binary(&n.flags) || binary(&n.services) || binary(&n.regexp),
        RData::CAA(c) => binary(&c.value),
        _ => false,
    }
}

/// The storage form of rdata: presentation text, or `\# len hex` (RFC 3597).
pub fn storage_text(data: &RData) -> String {
    if has_text_parser(data.record_type()) && !holds_binary_strings(data) {
        return crate::zone::file::rdata_text(data);
    }
    match data.to_bytes() {
        Ok(wire) => format!("\\# {} {}", wire.len(), hex::encode(&wire)),
        Err(_) => crate::zone::file::rdata_text(data),
    }
}

fn from_generic(rtype: RecordType, text: &str) -> Result<RData, String> {
    use hickory_proto::serialize::binary::{BinDecoder, Restrict};
    let mut parts = text.split_whitespace();
    let len: usize = parts
        .next()
        .and_then(|l| l.parse().ok())
        .ok_or("generic rdata without length")?;
    let wire = hex::decode(parts.collect::<String>()).map_err(|e| e.to_string())?;
    if wire.len() != len {
        return Err(format!(
            "generic rdata length {len} but {} bytes",
            wire.len()
        ));
    }
    let mut d = BinDecoder::new(&wire);
    RData::read(&mut d, rtype, Restrict::new(len as u16)).map_err(|e| e.to_string())
}

/// A zone as listed: name, serial, signed.
#[derive(Debug, Clone)]
pub struct ZoneSummary {
    /// Lower-case FQDN.
    pub name: String,
    /// Current SOA serial.
    pub serial: u32,
    /// Signed (a denial mode is set).
    pub signed: bool,
}

/// A zone row.
#[derive(Debug, Clone)]
pub struct ZoneRow {
    /// Store identity.
    pub id: i64,
    /// Lower-case FQDN.
    pub name: String,
    /// Why it exists.
    pub kind: String,
    /// Current SOA serial.
    pub serial: u32,
    /// How the serial grows.
    pub serial_policy: SerialPolicy,
}

/// The serial after `old` under `policy`, now.
pub fn next_serial(old: u32, policy: SerialPolicy) -> u32 {
    let now = (now_ms() / 1000).clamp(0, u32::MAX as i64) as u32;
    policy.next(old, now)
}

/// Look a zone up by name (lower-case FQDN).
pub async fn get_zone(conn: &mut AnyConnection, name: &str) -> Result<Option<ZoneRow>, StoreError> {
    let row =
        sqlx::query("SELECT id, name, kind, serial, serial_policy FROM zones WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
    row.as_ref().map(zone_row_of).transpose()
}

/// Write-locks zone `name` (a no-op UPDATE: a row lock on Postgres; SQLite
/// serialises writers anyway) and reads its row as of the lock, in one
/// statement; `None` when it is gone.
async fn lock_zone_named(
    conn: &mut AnyConnection,
    name: &str,
) -> Result<Option<ZoneRow>, StoreError> {
    let row = sqlx::query(
        "UPDATE zones SET serial = serial WHERE name = $1 \
         RETURNING id, name, kind, serial, serial_policy",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(zone_row_of).transpose()
}

/// A `zones` row read with the columns `id, name, kind, serial, serial_policy`.
pub(super) fn zone_row_of(r: &impl Columns) -> Result<ZoneRow, StoreError> {
    let policy = r.text("serial_policy")?;
    Ok(ZoneRow {
        id: r.int("id")?,
        name: r.text("name")?,
        kind: r.text("kind")?,
        serial: r.int("serial")? as u32,
        serial_policy: policy.parse().map_err(StoreError::Corrupt)?,
    })
}

/// All records of a zone, in a stable order.
pub async fn zone_records(
    conn: &mut AnyConnection,
    zone_id: i64,
) -> Result<Vec<StoredRecord>, StoreError> {
    let rows =
        sqlx::query("SELECT name, rtype, ttl, rdata FROM records WHERE zone_id = $1 ORDER BY id")
            .bind(zone_id)
            .fetch_all(&mut *conn)
            .await?;
    rows.iter().map(record_of).collect()
}

/// The records at `owner` (one indexed look-up).
pub(super) async fn owner_records(
    conn: &mut AnyConnection,
    zone_id: i64,
    owner: &str,
) -> Result<Vec<StoredRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT name, rtype, ttl, rdata FROM records WHERE zone_id = $1 AND name = $2 ORDER BY id",
    )
    .bind(zone_id)
    .bind(owner)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(record_of).collect()
}

/// The records at `owner`, and the zone's apex SOA, in one statement.
/// (`name IN (…)`, not `name = … OR (name = … AND rtype = 'SOA')`: SQLite
/// answers the OR by scanning every row of the zone, O(pool) per commit.)
async fn owner_records_and_soa(
    conn: &mut AnyConnection,
    zone: &ZoneRow,
    owner: &str,
) -> Result<(Vec<StoredRecord>, Option<StoredRecord>), StoreError> {
    let rows = sqlx::query(
        "SELECT name, rtype, ttl, rdata FROM records WHERE zone_id = $1 \
         AND name IN ($2, $3) ORDER BY id",
    )
    .bind(zone.id)
    .bind(owner)
    .bind(&zone.name)
    .fetch_all(&mut *conn)
    .await?;
    let mut at_owner = Vec::with_capacity(rows.len());
    let mut soa = None;
    for r in &rows {
        let rec = record_of(r)?;
        if rec.name == zone.name && rec.rtype == "SOA" && soa.is_none() {
            soa = Some(rec.clone());
        }
        if rec.name == owner {
            at_owner.push(rec);
        }
    }
    Ok((at_owner, soa))
}

/// A `records` row.
pub(super) fn record_of(r: &impl Columns) -> Result<StoredRecord, StoreError> {
    Ok(StoredRecord {
        name: r.text("name")?,
        rtype: r.text("rtype")?,
        ttl: r.int("ttl")?.clamp(0, i64::from(u32::MAX)) as u32,
        rdata: r.text("rdata")?,
    })
}

/// Whether the zone holds records of `rtype` at `owner` (one indexed look-up).
pub async fn has_rrset(
    conn: &mut AnyConnection,
    zone_id: i64,
    owner: &str,
    rtype: &str,
) -> Result<bool, StoreError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM records WHERE zone_id = $1 AND name = $2 AND rtype = $3",
    )
    .bind(zone_id)
    .bind(owner)
    .bind(rtype)
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}

/// The largest TTL of any record in the zone (0 when it has none).
pub async fn max_ttl(conn: &mut AnyConnection, zone_id: i64) -> Result<u32, StoreError> {
    let row = sqlx::query("SELECT COALESCE(MAX(ttl), 0) AS m FROM records WHERE zone_id = $1")
        .bind(zone_id)
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.try_get::<i64, _>("m")?.clamp(0, u32::MAX as i64) as u32)
}

/// Add `records` to the zone `zone_id`.
pub(super) async fn insert_records(
    conn: &mut AnyConnection,
    zone_id: i64,
    records: &[StoredRecord],
) -> Result<(), StoreError> {
    let mut batch = Batch::default();
    insert_records_into(&mut batch, zone_id, records);
    batch.run(conn).await?;
    Ok(())
}

/// [`insert_records`] as statements of `batch`: one per chunk of records,
/// not one per record (a commit writes ~20).
pub(super) fn insert_records_into(batch: &mut Batch, zone_id: i64, records: &[StoredRecord]) {
    const ROWS: usize = 100;
    for chunk in records.chunks(ROWS) {
        let mut sql =
            String::from("INSERT INTO records (zone_id, name, rtype, ttl, rdata) VALUES ");
        let mut args = Vec::with_capacity(chunk.len() * 5);
        for (i, r) in chunk.iter().enumerate() {
            let b = i * 5;
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5
            ));
            args.extend([
                Arg::from(zone_id),
                r.name.as_str().into(),
                r.rtype.as_str().into(),
                i64::from(r.ttl).into(),
                r.rdata.as_str().into(),
            ]);
        }
        batch.push(sql, args);
    }
}

/// Replace the SOA serial inside `soa` record text; returns the new record.
fn with_serial(soa: &StoredRecord, serial: u32) -> Result<StoredRecord, StoreError> {
    // The stored form pdm writes is `mname rname serial refresh retry
    // expire minimum`: the serial is swapped in place, without a zone-file
    // parse per write. Anything else (or any doubt) takes the parser.
    let fields: Vec<&str> = soa.rdata.split(' ').collect();
    if let [mname, rname, old, rest @ ..] = fields.as_slice() {
        // Numbers as the parser would print them back: no sign, no leading
        // zero, within the range every SOA field holds.
        let number = |f: &str| {
            (f == "0" || (!f.starts_with('0') && !f.is_empty()))
                && f.bytes().all(|b| b.is_ascii_digit())
                && f.parse::<i32>().is_ok()
        };
        // Host names as the parser prints them: lower case, no escapes,
        // labels of 1 to 63 characters.
        let name = |n: &str| {
            n.len() > 1
                && n.len() <= 254
                && n.strip_suffix('.').is_some_and(|body| {
                    body.split('.').all(|l| {
                        (1..=63).contains(&l.len())
                            && l.bytes()
                                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    })
                })
        };
        if rest.len() == 4
            && rest.iter().all(|f| number(f))
            && old.parse::<u32>().is_ok()
            && name(mname)
            && name(rname)
        {
            return Ok(StoredRecord {
                rdata: format!("{mname} {rname} {serial} {}", rest.join(" ")),
                ..soa.clone()
            });
        }
    }
    with_serial_parsed(soa, serial)
}

/// [`with_serial`] through the zone-file parser.
fn with_serial_parsed(soa: &StoredRecord, serial: u32) -> Result<StoredRecord, StoreError> {
    let rec = soa.to_record()?;
    match &rec.data {
        RData::SOA(s) => {
            let mut s = s.clone();
            s.serial = serial;
            Ok(StoredRecord {
                rdata: crate::zone::file::rdata_text(&RData::SOA(s)),
                ..soa.clone()
            })
        }
        _ => Err(StoreError::Corrupt(format!("{} is not an SOA", soa.name))),
    }
}

/// Create a zone with `records` (which must include the apex SOA; its serial
/// is replaced by one that only grows). Fails if the zone exists.
pub async fn create_zone(
    conn: &mut AnyConnection,
    name: &str,
    kind: ZoneKind,
    records: &[StoredRecord],
    actor: &str,
) -> Result<u32, StoreError> {
    create_zone_with(conn, name, kind, SerialPolicy::UnixTime, records, actor).await
}

/// [`create_zone`] with the zone's serial policy. The first serial is the
/// unix time under either policy, so a zone created again starts above the
/// one it replaces.
pub async fn create_zone_with(
    conn: &mut AnyConnection,
    name: &str,
    kind: ZoneKind,
    policy: SerialPolicy,
    records: &[StoredRecord],
    actor: &str,
) -> Result<u32, StoreError> {
    let serial = next_serial(0, SerialPolicy::UnixTime);
    let records = stamp_soa(records, name, serial)?;
    let row = sqlx::query(
        "INSERT INTO zones (name, kind, serial, created_at, serial_policy) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(name)
    .bind(kind.as_str())
    .bind(serial as i64)
    .bind(now_ms())
    .bind(policy.as_str())
    .fetch_one(&mut *conn)
    .await?;
    let id: i64 = row.try_get("id")?;
    insert_records(conn, id, &records).await?;
    super::journal::append(
        conn,
        &ZoneChange {
            zone: name.to_string(),
            serial,
            op: ChangeOp::Create,
            added: records.to_vec(),
            removed: Vec::new(),
            actor: actor.to_string(),
        },
    )
    .await?;
    Ok(serial)
}

fn stamp_soa(
    records: &[StoredRecord],
    zone: &str,
    serial: u32,
) -> Result<Vec<StoredRecord>, StoreError> {
    let mut out = Vec::with_capacity(records.len());
    let mut seen = false;
    for r in records {
        if r.rtype == "SOA" && r.name == zone {
            seen = true;
            out.push(with_serial(r, serial)?);
        } else {
            out.push(r.clone());
        }
    }
    if !seen {
        return Err(StoreError::Corrupt(format!("zone {zone} has no apex SOA")));
    }
    Ok(out)
}

/// Replace all contents of an existing zone (import). Keeps the serial growing.
pub async fn replace_zone(
    conn: &mut AnyConnection,
    zone: &ZoneRow,
    records: &[StoredRecord],
    file_serial: u32,
    actor: &str,
) -> Result<u32, StoreError> {
    let serial = next_serial(zone.serial, zone.serial_policy).max(file_serial);
    let records = stamp_soa(records, &zone.name, serial)?;
    let old = zone_records(conn, zone.id).await?;
    sqlx::query("DELETE FROM records WHERE zone_id = $1")
        .bind(zone.id)
        .execute(&mut *conn)
        .await?;
    insert_records(conn, zone.id, &records).await?;
    set_serial(conn, zone.id, serial).await?;
    super::journal::append(
        conn,
        &ZoneChange {
            zone: zone.name.to_string(),
            serial,
            op: ChangeOp::Update,
            added: records.to_vec(),
            removed: old.to_vec(),
            actor: actor.to_string(),
        },
    )
    .await?;
    Ok(serial)
}

/// Sets the serial policy of pool zone `pool` and of its children.
pub async fn set_serial_policy(
    conn: &mut AnyConnection,
    pool: &str,
    policy: SerialPolicy,
) -> Result<u64, StoreError> {
    let r = sqlx::query(
        "UPDATE zones SET serial_policy = $1 WHERE serial_policy <> $1 \
         AND (name = $2 OR (kind = 'child' AND name LIKE $3 ESCAPE '\\'))",
    )
    .bind(policy.as_str())
    .bind(pool)
    .bind(super::like_below(pool))
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected())
}

async fn set_serial(conn: &mut AnyConnection, zone_id: i64, serial: u32) -> Result<(), StoreError> {
    let mut batch = Batch::default();
    set_serial_into(&mut batch, zone_id, serial);
    batch.run(conn).await?;
    Ok(())
}

/// [`set_serial`] as a statement of `batch`.
fn set_serial_into(batch: &mut Batch, zone_id: i64, serial: u32) {
    batch.push(
        "UPDATE zones SET serial = $1 WHERE id = $2",
        vec![i64::from(serial).into(), zone_id.into()],
    );
}

/// Delete a zone and everything in it. Returns false if it did not exist.
pub async fn delete_zone(
    conn: &mut AnyConnection,
    name: &str,
    actor: &str,
) -> Result<bool, StoreError> {
    let Some(zone) = get_zone(conn, name).await? else {
        return Ok(false);
    };
    let old = zone_records(conn, zone.id).await?;
    sqlx::query("DELETE FROM records WHERE zone_id = $1")
        .bind(zone.id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM zones WHERE id = $1")
        .bind(zone.id)
        .execute(&mut *conn)
        .await?;
    super::journal::append(
        conn,
        &ZoneChange {
            zone: name.to_string(),
            serial: zone.serial,
            op: ChangeOp::Delete,
            added: Vec::new(),
            removed: old.to_vec(),
            actor: actor.to_string(),
        },
    )
    .await?;
    Ok(true)
}

/// Set the RRsets `(owner, type)` listed in `types` at `owner` to exactly
/// `records` (records of other types at the owner are untouched), bump the
/// serial and journal the difference. No-op (no serial bump) when nothing changes.
pub async fn set_rrsets(
    conn: &mut AnyConnection,
    zone: &ZoneRow,
    owner: &str,
    types: &[&str],
    records: &[StoredRecord],
    actor: &str,
) -> Result<bool, StoreError> {
    // Take the zone row's write lock first and re-read the serial, so two
    // concurrent commits into one pool zone cannot both write old+1.
    let zone = &lock_zone_named(conn, &zone.name)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("zone {} vanished", zone.name)))?;
    write_rrsets_locked(conn, zone, owner, types, records, actor).await
}

/// [`set_rrsets`] in the zone named `zone`, locked and read by the same
/// statement (no read of the row first); `None` when there is no such zone.
pub async fn set_rrsets_of(
    conn: &mut AnyConnection,
    zone: &str,
    owner: &str,
    types: &[&str],
    records: &[StoredRecord],
    actor: &str,
) -> Result<Option<bool>, StoreError> {
    let Some(zone) = lock_zone_named(conn, zone).await? else {
        return Ok(None);
    };
    Ok(Some(
        write_rrsets_locked(conn, &zone, owner, types, records, actor).await?,
    ))
}

/// [`set_rrsets`] with the zone row locked and read in this transaction.
async fn write_rrsets_locked(
    conn: &mut AnyConnection,
    zone: &ZoneRow,
    owner: &str,
    types: &[&str],
    records: &[StoredRecord],
    actor: &str,
) -> Result<bool, StoreError> {
    // Only the owner's rows (a pool zone holds one delegation per child, so
    // reading the whole zone here made every commit cost O(pool)), and the
    // apex SOA the serial bump rewrites, in one statement.
    let (at_owner, soa) = owner_records_and_soa(conn, zone, owner).await?;
    let mut removed: Vec<StoredRecord> = at_owner
        .into_iter()
        .filter(|r| types.contains(&r.rtype.as_str()))
        .collect();
    let mut added: Vec<StoredRecord> = records.to_vec();
    removed.sort();
    added.sort();
    if removed == added {
        return Ok(false);
    }
    if !removed.is_empty() {
        // One statement for all the types (a new child's first DNSKEY, CDS,
        // CDNSKEY and NSEC3PARAM, or a delegation's NS and DS, had nothing
        // to delete at all).
        let list: Vec<String> = (0..types.len()).map(|i| format!("${}", i + 3)).collect();
        let sql = format!(
            "DELETE FROM records WHERE zone_id = $1 AND name = $2 AND rtype IN ({})",
            list.join(", ")
        );
        let mut q = sqlx::query(&sql).bind(zone.id).bind(owner);
        for t in types {
            q = q.bind(*t);
        }
        q.execute(&mut *conn).await?;
    }
    insert_records(conn, zone.id, &added).await?;
    let serial = bump_soa_from(conn, zone, soa.as_ref()).await?;
    super::journal::append(
        conn,
        &ZoneChange {
            zone: zone.name.to_string(),
            serial,
            op: ChangeOp::Update,
            added: added.to_vec(),
            removed: removed.to_vec(),
            actor: actor.to_string(),
        },
    )
    .await?;
    Ok(true)
}

/// A new serial for `zone` and nothing else (journaled: the SOA removed and
/// added), for secondaries to take renewed signatures. `None` when the zone
/// does not exist.
pub async fn touch_zone(
    conn: &mut AnyConnection,
    name: &str,
    actor: &str,
) -> Result<Option<u32>, StoreError> {
    let Some(zone) = lock_zone_named(conn, name).await? else {
        return Ok(None);
    };
    let apex = owner_records(conn, zone.id, &zone.name).await?;
    let Some(old) = apex.into_iter().find(|r| r.rtype == "SOA") else {
        return Ok(None);
    };
    let serial = bump_soa_from(conn, &zone, Some(&old)).await?;
    let new = with_serial(&old, serial)?;
    super::journal::append(
        conn,
        &ZoneChange {
            zone: zone.name.to_string(),
            serial,
            op: ChangeOp::Update,
            added: vec![new],
            removed: vec![old],
            actor: actor.to_string(),
        },
    )
    .await?;
    Ok(Some(serial))
}

/// Bumps the zone's serial, in its SOA record (`soa`, the apex SOA read in
/// this transaction) and its row; returns the new serial.
pub(super) async fn bump_soa_from(
    conn: &mut AnyConnection,
    zone: &ZoneRow,
    soa: Option<&StoredRecord>,
) -> Result<u32, StoreError> {
    let mut batch = Batch::default();
    let serial = bump_soa_into(&mut batch, zone, soa)?;
    batch.run(conn).await?;
    Ok(serial)
}

/// [`bump_soa_from`] as statements of `batch`; returns the new serial.
pub(super) fn bump_soa_into(
    batch: &mut Batch,
    zone: &ZoneRow,
    soa: Option<&StoredRecord>,
) -> Result<u32, StoreError> {
    let serial = next_serial(zone.serial, zone.serial_policy);
    if let Some(soa) = soa {
        let new = with_serial(soa, serial)?;
        batch.push(
            "UPDATE records SET rdata = $1 WHERE zone_id = $2 AND name = $3 AND rtype = 'SOA'",
            vec![new.rdata.into(), zone.id.into(), zone.name.as_str().into()],
        );
    }
    set_serial_into(batch, zone.id, serial);
    Ok(serial)
}

impl Store {
    /// The SOA serial of zone `name` (lower-case FQDN), if it exists.
    pub async fn zone_serial(&self, name: &str) -> Result<Option<u32>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        Ok(get_zone(&mut conn, name).await?.map(|z| z.serial))
    }

    /// Names of all zones.
    pub async fn zone_names(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT name FROM zones ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        rows.into_iter().map(|r| Ok(r.try_get("name")?)).collect()
    }

    /// Every zone's name, serial and whether it is signed (its denial mode
    /// is set), by name: one query, for listings (the PowerDNS API's zone list).
    pub async fn zone_summaries(&self) -> Result<Vec<ZoneSummary>, StoreError> {
        let rows = sqlx::query("SELECT name, serial, dnssec FROM zones ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(ZoneSummary {
                    name: r.try_get("name")?,
                    serial: r.try_get::<i64, _>("serial")? as u32,
                    signed: r.try_get::<Option<String>, _>("dnssec")?.is_some(),
                })
            })
            .collect()
    }

    /// The highest zone id (0 without zones): the end of the id ranges
    /// [`Store::load_zones`] reads.
    pub async fn max_zone_id(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0) AS m FROM zones")
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get::<i64, _>("m")?)
    }

    /// Every zone whose id is in `ids`, with its records, denial mode and
    /// live keys: three queries for any number of zones, so start-up reads
    /// 100k zones in bulk instead of with 300k queries. Records come in the
    /// order [`Store::load_zone`] gives within each RRset.
    pub async fn load_zones(
        &self,
        ids: std::ops::RangeInclusive<i64>,
    ) -> Result<Vec<BulkZone>, StoreError> {
        let (from, to) = (*ids.start(), *ids.end());
        // The three reads in one snapshot (see load_zone_whole: a zone
        // signed between them would be read half signed, at the serial the
        // follower then starts from). A SQLite read transaction holds one
        // WAL snapshot; Postgres needs REPEATABLE READ for that. Deferred,
        // not Store::begin: it only reads, and must not hold off another
        // process's writers for a bulk load.
        let mut conn = self.pool().begin().await?;
        if self.dialect() == super::Dialect::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                .execute(&mut *conn)
                .await?;
        }
        let rows = sqlx::query(
            "SELECT id, name, dnssec FROM zones WHERE id BETWEEN $1 AND $2 ORDER BY id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&mut *conn)
        .await?;
        let mut zones = Vec::with_capacity(rows.len());
        let mut index = std::collections::HashMap::with_capacity(rows.len());
        for r in &rows {
            let id: i64 = r.try_get("id")?;
            let name: String = r.try_get("name")?;
            index.insert(id, zones.len());
            zones.push(BulkZone {
                name,
                dnssec: r.try_get("dnssec")?,
                records: Vec::new(),
                keys: Vec::new(),
            });
        }
        let rows = sqlx::query(
            "SELECT zone_id, name, rtype, ttl, rdata FROM records \
             WHERE zone_id BETWEEN $1 AND $2 ORDER BY zone_id, name, rtype, id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&mut *conn)
        .await?;
        for r in &rows {
            let id: i64 = r.try_get("zone_id")?;
            if let Some(z) = index.get(&id).and_then(|&i| zones.get_mut(i)) {
                z.records.push(record_of(r)?);
            }
        }
        let by_name: std::collections::HashMap<String, usize> = zones
            .iter()
            .enumerate()
            .map(|(i, z)| (z.name.clone(), i))
            .collect();
        for key in super::keys::range_keys(&mut conn, from, to).await? {
            if let Some(z) = by_name.get(&key.zone).and_then(|&i| zones.get_mut(i)) {
                z.keys.push(key);
            }
        }
        conn.commit().await?;
        Ok(zones)
    }

    /// One zone as [`Store::load_zones`] reads them (records in id order,
    /// denial mode, live keys when signed), by name: the whole load of a
    /// zone created or repaired while serving. `None` when the zone does
    /// not exist.
    ///
    /// The records and the denial mode come from one statement, so they are
    /// of one version: read apart, a zone being signed meanwhile could be
    /// read with its new DNSKEY and new serial but not yet signed, and the
    /// follower, already at that serial, would never reload it.
    pub async fn load_zone_whole(&self, name: &str) -> Result<Option<BulkZone>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        let rows = sqlx::query(
            "SELECT z.dnssec, r.name, r.rtype, r.ttl, r.rdata FROM zones z \
             LEFT JOIN records r ON r.zone_id = z.id WHERE z.name = $1 ORDER BY r.id",
        )
        .bind(name)
        .fetch_all(&mut *conn)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let dnssec: Option<String> = first.try_get("dnssec")?;
        let mut records = Vec::with_capacity(rows.len());
        for r in &rows {
            // A zone without records is one row of NULLs on the right.
            if r.try_get::<Option<String>, _>("name")?.is_some() {
                records.push(record_of(r)?);
            }
        }
        let keys = match dnssec {
            Some(_) => super::keys::zone_keys(&mut conn, name).await?,
            None => Vec::new(),
        };
        Ok(Some(BulkZone {
            name: name.to_string(),
            dnssec,
            records,
            keys,
        }))
    }

    /// A zone's records, or `None` when the zone does not exist.
    pub async fn load_zone(&self, name: &str) -> Result<Option<Vec<StoredRecord>>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        let Some(z) = get_zone(&mut conn, name).await? else {
            return Ok(None);
        };
        Ok(Some(zone_records(&mut conn, z.id).await?))
    }

    /// Import a master file's records as zone `name` (create or replace).
    pub async fn import_zone(
        &self,
        name: &str,
        records: &[StoredRecord],
        file_serial: u32,
    ) -> Result<u32, StoreError> {
        let mut tx = self.begin().await?;
        let serial = match get_zone(&mut tx, name).await? {
            Some(z) => replace_zone(&mut tx, &z, records, file_serial, "import").await?,
            None => {
                let serial =
                    create_zone(&mut tx, name, ZoneKind::Imported, records, "import").await?;
                if file_serial > serial {
                    let z = get_zone(&mut tx, name)
                        .await?
                        .ok_or_else(|| StoreError::Corrupt(format!("zone {name} vanished")))?;
                    replace_zone(&mut tx, &z, records, file_serial, "import").await?
                } else {
                    serial
                }
            }
        };
        tx.commit().await?;
        Ok(serial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soa_serial_swap_matches_the_parser() {
        let soa = |rdata: &str| StoredRecord {
            name: "acme.pool.test.".into(),
            rtype: "SOA".into(),
            ttl: 3600,
            rdata: rdata.into(),
        };
        for text in [
            "ns1.pool.test. hostmaster.pool.test. 1796443966 10800 3600 604800 3600",
            "ns1.pool.test. hostmaster.pool.test. 0 0 0 0 0",
            "a-b.test. x.test. 4294967295 2147483647 1 2 3",
            // The parser's way: quotes, escapes, leading zeros, big values.
            "ns1.pool.test. host\\.master.pool.test. 5 10800 3600 604800 3600",
            "ns1.pool.test. hostmaster.pool.test. 5 010800 3600 604800 3600",
            "ns1.pool.test. hostmaster.pool.test. 5 10800 3600 604800 4294967295",
        ] {
            let fast = with_serial(&soa(text), 42).unwrap();
            let parsed = with_serial_parsed(&soa(text), 42).unwrap();
            assert_eq!(fast, parsed, "{text}");
        }
    }

    #[test]
    fn common_rdata_reads_what_hickory_reads() {
        let cases = [
            (RecordType::A, "10.0.0.5"),
            (RecordType::AAAA, "2001:db8::1"),
            (RecordType::AAAA, "::ffff:192.0.2.1"),
            (RecordType::NS, "ns1.example.test."),
            (RecordType::NS, "NS1.Example.TEST."),
            (
                RecordType::SOA,
                "ns1.example.test. hostmaster.example.test. 1796453479 10800 3600 604800 300",
            ),
            (RecordType::SOA, "NS1.Example.TEST. Host.Master. 1 2 3 4 5"),
        ];
        for (rtype, text) in cases {
            let fast = common_rdata(rtype, text).unwrap();
            let slow = RData::try_from_str(rtype, text).unwrap();
            assert_eq!(fast, slow, "{rtype} {text}");
            assert_eq!(
                fast.to_bytes().unwrap(),
                slow.to_bytes().unwrap(),
                "{rtype} {text}"
            );
        }
        for (rtype, text) in [
            (RecordType::A, "10.0.0"),
            (RecordType::A, "::1"),
            (RecordType::NS, "relative.name"),
            (RecordType::NS, "a\\.b.test."),
            (RecordType::MX, "10 mx.test."),
            (RecordType::SOA, "ns1.test. hm.test. 1 2 3 4"),
            (RecordType::SOA, "ns1.test. hm.test. 1 2 3 4 5 6"),
            (RecordType::SOA, "ns1 hm.test. 1 2 3 4 5"),
            (RecordType::SOA, "ns1.test. hm.test. 1 1h 3 4 5"),
            (RecordType::SOA, "ns1.test. hm.test. ( 1 2 3 4 5 )"),
        ] {
            assert!(common_rdata(rtype, text).is_none(), "{rtype} {text}");
        }
    }

    #[test]
    fn stored_records_round_trip_txt() {
        for text in [
            r#""v=spf1 ip4:192.0.2.0/24 -all""#,
            r#""first string" "second; semi" """#,
            r#""a \"quoted\" word" "back\\slash""#,
        ] {
            let rdata = RData::try_from_str(RecordType::TXT, text).unwrap();
            let rec = Record::from_rdata(
                Name::from_ascii("t.example.test.").unwrap(),
                300,
                rdata.clone(),
            );
            let stored = StoredRecord::from_record(&rec);
            let back = stored.to_record().unwrap();
            assert_eq!(back.data, rdata, "{text} stored as {}", stored.rdata);
        }
    }

    /// A TXT string stored whole past 255 bytes (before writes split such
    /// strings) loads as strings of 255, which go on the wire.
    #[test]
    fn stored_long_txt_strings_load_servable() {
        let stored = StoredRecord {
            name: "t.example.test.".into(),
            rtype: "TXT".into(),
            ttl: 300,
            rdata: format!("\"{}\"", "k".repeat(600)),
        };
        let rec = stored.to_record().unwrap();
        let RData::TXT(txt) = &rec.data else {
            panic!("{:?}", rec.data)
        };
        let lens: Vec<usize> = txt.txt_data.iter().map(|s| s.len()).collect();
        assert_eq!(lens, [255, 255, 90]);
        assert!(rec.to_bytes().is_ok());
    }

    /// Strings that are not UTF-8 (from an UPDATE) keep their bytes: their
    /// text form would not.
    #[test]
    fn stored_records_keep_binary_strings() {
        // Wire forms, as an UPDATE brings them: a TXT of "ok" and FF 41 C3,
        // a HINFO of "cpu" and FE, a CAA iodef of "x" 80.
        for (rtype, wire) in [
            (RecordType::TXT, "026f6b03ff41c3"),
            (RecordType::HINFO, "0363707501fe"),
            (RecordType::CAA, "0005696f6465667880"),
        ] {
            let rdata = from_generic(rtype, &format!("{} {wire}", wire.len() / 2)).unwrap();
            let rec = Record::from_rdata(
                Name::from_ascii("t.example.test.").unwrap(),
                300,
                rdata.clone(),
            );
            let stored = StoredRecord::from_record(&rec);
            assert!(stored.rdata.starts_with("\\# "), "{}", stored.rdata);
            assert_eq!(
                stored.to_record().unwrap().data,
                rdata,
                "stored as {}",
                stored.rdata
            );
        }
    }

    /// LUA records as a master file writes them survive the store's row form
    /// (moved here from `zone::file` so the zone room does not import the store).
    #[test]
    fn stored_records_round_trip_lua_master_records() {
        let text = r#"$ORIGIN example.com.
$TTL 300
@      IN SOA ns1 hm 1 7200 3600 1209600 60
@      IN NS  ns1
port   60 IN LUA A "ifportup(443, {'192.0.2.1','192.0.2.2'})"
multi  IN LUA TXT ( "'ab"   ; a comment inside
                    "cd'" )
cfg    IN lua LUA "ips={'192.0.2.77'}"
*.w    IN LUA A "createForward()"
"#;
        let (_, records) = crate::zone::file::parse_master(text, None).unwrap();
        assert!(records.iter().any(|r| r.record_type() == crate::zone::LUA));
        for r in &records {
            let row = StoredRecord::from_record(r);
            assert_eq!(&row.to_record().unwrap(), r, "{row:?}");
        }
    }

    /// A LUA template record survives the store's generic row form.
    #[test]
    fn stored_records_round_trip_lua_template() {
        use crate::zone::template::{render, RecordTemplate, TemplateTarget};
        let t =
            TemplateTarget::literal("LUA", r#"A "pickrandom({'192.0.2.1','192.0.2.2'})""#).unwrap();
        let apex = Name::from_ascii("acme.example.test.").unwrap();
        let tpl = vec![RecordTemplate::new("lb", 60, t).unwrap()];
        let recs = render(&tpl, &apex, "192.0.2.1".parse().unwrap(), None).unwrap();
        let stored = StoredRecord::from_record(&recs[0]);
        assert_eq!(stored.rtype, "LUA");
        assert_eq!(stored.to_record().unwrap().data, recs[0].data);
    }
}

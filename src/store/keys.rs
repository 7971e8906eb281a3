//! DNSSEC key rows, per-zone signing settings and rollover state. Private
//! key material arrives here already sealed (`crate::secret`); this module
//! never sees it in the clear.

use super::{now_ms, Store, StoreError};
use sqlx::{AnyConnection, Row};

/// A stored key (private half still sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    /// Store identity.
    pub id: i64,
    /// Zone FQDN, lower-case with trailing dot.
    pub zone: String,
    /// `csk` | `ksk` | `zsk`.
    pub role: String,
    /// IANA algorithm number.
    pub algorithm: u8,
    /// Key tag.
    pub key_tag: u16,
    /// DNSKEY rdata in presentation form.
    pub dnskey: String,
    /// Hex of the sealed PKCS#8.
    pub private_key: String,
    /// `standby` | `published` | `active` | `retired` | `removed`.
    pub state: String,
    /// Whether the parent should hold this key's DS.
    pub in_parent: bool,
    /// Creation time (unix ms).
    pub created_at: i64,
    /// Last state change (unix ms).
    pub changed_at: i64,
}

/// A key to insert.
#[derive(Debug, Clone)]
pub struct NewKey<'a> {
    /// Zone FQDN.
    pub zone: &'a str,
    /// Role mnemonic.
    pub role: &'a str,
    /// Algorithm number.
    pub algorithm: u8,
    /// Key tag.
    pub key_tag: u16,
    /// DNSKEY presentation rdata.
    pub dnskey: &'a str,
    /// Hex of the sealed private key.
    pub private_key: &'a str,
    /// Initial state.
    pub state: &'a str,
    /// Whether the parent should hold its DS.
    pub in_parent: bool,
}

/// Inserts a key; returns its id.
pub async fn insert_key(conn: &mut AnyConnection, k: &NewKey<'_>) -> Result<i64, StoreError> {
    let now = now_ms();
    let row = sqlx::query(
        "INSERT INTO dnssec_keys (zone, role, algorithm, key_tag, dnskey, private_key, state, \
         in_parent, created_at, changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         RETURNING id",
    )
    .bind(k.zone)
    .bind(k.role)
    .bind(k.algorithm as i32)
    .bind(k.key_tag as i32)
    .bind(k.dnskey)
    .bind(k.private_key)
    .bind(k.state)
    .bind(k.in_parent as i32)
    .bind(now)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.try_get("id")?)
}

fn key_row(r: &sqlx::any::AnyRow) -> Result<KeyRow, StoreError> {
    Ok(KeyRow {
        id: r.try_get("id")?,
        zone: r.try_get("zone")?,
        role: r.try_get("role")?,
        algorithm: r.try_get::<i32, _>("algorithm")? as u8,
        key_tag: r.try_get::<i32, _>("key_tag")? as u16,
        dnskey: r.try_get("dnskey")?,
        private_key: r.try_get("private_key")?,
        state: r.try_get("state")?,
        in_parent: r.try_get::<i32, _>("in_parent")? != 0,
        created_at: r.try_get("created_at")?,
        changed_at: r.try_get("changed_at")?,
    })
}

const KEY_COLUMNS: &str = "id, zone, role, algorithm, key_tag, dnskey, private_key, state, \
     in_parent, created_at, changed_at";

/// The zone's keys that are not removed, oldest first.
pub async fn zone_keys(conn: &mut AnyConnection, zone: &str) -> Result<Vec<KeyRow>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {KEY_COLUMNS} FROM dnssec_keys WHERE zone = $1 AND state <> 'removed' ORDER BY id"
    ))
    .bind(zone)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(key_row).collect()
}

/// The keys that are not removed of every zone whose id is in `from..=to`,
/// by zone, oldest first.
pub(super) async fn range_keys(
    conn: &mut AnyConnection,
    from: i64,
    to: i64,
) -> Result<Vec<KeyRow>, StoreError> {
    let columns = KEY_COLUMNS
        .split(", ")
        .map(|c| format!("k.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = sqlx::query(&format!(
        "SELECT {columns} FROM dnssec_keys k JOIN zones z ON z.name = k.zone \
         WHERE z.id BETWEEN $1 AND $2 AND k.state <> 'removed' ORDER BY k.zone, k.id"
    ))
    .bind(from)
    .bind(to)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(key_row).collect()
}

/// Sets a key's state and parent flag.
pub async fn set_key_state(
    conn: &mut AnyConnection,
    id: i64,
    state: &str,
    in_parent: bool,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE dnssec_keys SET state = $1, in_parent = $2, changed_at = $3 WHERE id = $4")
        .bind(state)
        .bind(in_parent as i32)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Destroys every key of a zone (the zone is gone; its private keys must be too).
pub async fn delete_zone_keys(conn: &mut AnyConnection, zone: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM dnssec_keys WHERE zone = $1")
        .bind(zone)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM dnssec_rollovers WHERE zone = $1")
        .bind(zone)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Sets the zone's denial mode (`None` = unsigned).
pub async fn set_zone_dnssec(
    conn: &mut AnyConnection,
    zone: &str,
    mode: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE zones SET dnssec = $1 WHERE name = $2")
        .bind(mode)
        .bind(zone)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The zone's denial mode, `None` when unsigned or absent.
pub async fn zone_dnssec(
    conn: &mut AnyConnection,
    zone: &str,
) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT dnssec FROM zones WHERE name = $1")
        .bind(zone)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match row {
        Some(r) => r.try_get::<Option<String>, _>("dnssec")?,
        None => None,
    })
}

/// A rollover in progress.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RolloverRow {
    /// Zone FQDN.
    pub zone: String,
    /// `zsk` | `ksk` | `csk`.
    pub kind: String,
    /// Current step (0 = just started).
    pub step: i32,
    /// The key being replaced.
    pub old_key: i64,
    /// The key replacing it.
    pub new_key: i64,
    /// When the next step may run (unix ms).
    pub next_at: i64,
    /// When the rollover started (unix ms).
    pub started_at: i64,
    /// Last change (unix ms).
    pub updated_at: i64,
}

fn rollover_row(r: &sqlx::any::AnyRow) -> Result<RolloverRow, StoreError> {
    Ok(RolloverRow {
        zone: r.try_get("zone")?,
        kind: r.try_get("kind")?,
        step: r.try_get::<i32, _>("step")?,
        old_key: r.try_get("old_key")?,
        new_key: r.try_get("new_key")?,
        next_at: r.try_get("next_at")?,
        started_at: r.try_get("started_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// The rollover of a zone, if one is in progress.
pub async fn get_rollover(
    conn: &mut AnyConnection,
    zone: &str,
) -> Result<Option<RolloverRow>, StoreError> {
    let row = sqlx::query(
        "SELECT zone, kind, step, old_key, new_key, next_at, started_at, updated_at \
         FROM dnssec_rollovers WHERE zone = $1",
    )
    .bind(zone)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(rollover_row).transpose()
}

/// Inserts or replaces the rollover row of a zone.
pub async fn put_rollover(conn: &mut AnyConnection, r: &RolloverRow) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM dnssec_rollovers WHERE zone = $1")
        .bind(&r.zone)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO dnssec_rollovers (zone, kind, step, old_key, new_key, next_at, started_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&r.zone)
    .bind(&r.kind)
    .bind(r.step)
    .bind(r.old_key)
    .bind(r.new_key)
    .bind(r.next_at)
    .bind(r.started_at)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Ends a zone's rollover.
pub async fn finish_rollover(conn: &mut AnyConnection, zone: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM dnssec_rollovers WHERE zone = $1")
        .bind(zone)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl Store {
    /// Keys of a zone (not removed), outside any transaction.
    pub async fn zone_keys(&self, zone: &str) -> Result<Vec<KeyRow>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        zone_keys(&mut conn, zone).await
    }

    /// The keys that are not removed of every zone whose id is in `ids`
    /// (see [`Store::max_zone_id`]): one query for any number of zones.
    pub async fn keys_of_zones(
        &self,
        ids: std::ops::RangeInclusive<i64>,
    ) -> Result<Vec<KeyRow>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        range_keys(&mut conn, *ids.start(), *ids.end()).await
    }

    /// Denial mode of a zone, outside any transaction.
    pub async fn zone_dnssec(&self, zone: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        zone_dnssec(&mut conn, zone).await
    }

    /// Rollovers whose next step is due at `now_ms`.
    pub async fn due_rollovers(&self, now_ms: i64) -> Result<Vec<RolloverRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT zone, kind, step, old_key, new_key, next_at, started_at, updated_at \
             FROM dnssec_rollovers WHERE next_at <= $1 ORDER BY next_at",
        )
        .bind(now_ms)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(rollover_row).collect()
    }

    /// The rollover of a zone, outside any transaction.
    pub async fn rollover(&self, zone: &str) -> Result<Option<RolloverRow>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        get_rollover(&mut conn, zone).await
    }
}

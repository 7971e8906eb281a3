//! Allocation rows. History is kept: release and expiry change the state,
//! they never delete.

use super::{Store, StoreError};
use crate::model::{Allocation, AllocationState};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

const COLUMNS: &str =
    "id, pool, subdomain, state, reserved_at, expires_at, token_hash, created_by, \
     sovereign_fqdn, lb_ip, console_lb_ip, committed_at, released_at";

/// An allocation plus the hash of its reservation token.
#[derive(Debug, Clone)]
pub struct AllocationRow {
    /// The allocation.
    pub allocation: Allocation,
    /// SHA-256 hex of the reservation token (kept after commit so a retried
    /// commit can be recognised).
    pub token_hash: Option<String>,
}

fn from_row(r: &AnyRow) -> Result<AllocationRow, StoreError> {
    let state: String = r.try_get("state")?;
    Ok(AllocationRow {
        allocation: Allocation {
            id: r.try_get("id")?,
            pool: r.try_get("pool")?,
            subdomain: r.try_get("subdomain")?,
            state: state.parse().map_err(StoreError::Corrupt)?,
            reserved_at_ms: r.try_get("reserved_at")?,
            expires_at_ms: r.try_get("expires_at")?,
            created_by: r.try_get("created_by")?,
            sovereign_fqdn: r.try_get("sovereign_fqdn")?,
            load_balancer_ip: r.try_get("lb_ip")?,
            console_load_balancer_ip: r.try_get("console_lb_ip")?,
            committed_at_ms: r.try_get("committed_at")?,
            released_at_ms: r.try_get("released_at")?,
        },
        token_hash: r.try_get("token_hash")?,
    })
}

/// The live (reserved or active) allocation of a name, locked for update on Postgres.
pub async fn live(
    conn: &mut AnyConnection,
    for_update: &str,
    pool: &str,
    sub: &str,
) -> Result<Option<AllocationRow>, StoreError> {
    let q = format!(
        "SELECT {COLUMNS} FROM allocations WHERE pool = $1 AND subdomain = $2 \
         AND state IN ('reserved', 'active'){for_update}"
    );
    let row = sqlx::query(&q)
        .bind(pool)
        .bind(sub)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The newest allocation of a name in any state.
pub async fn latest(
    conn: &mut AnyConnection,
    pool: &str,
    sub: &str,
) -> Result<Option<AllocationRow>, StoreError> {
    let q = format!("SELECT {COLUMNS} FROM allocations WHERE pool = $1 AND subdomain = $2 ORDER BY id DESC LIMIT 1");
    let row = sqlx::query(&q)
        .bind(pool)
        .bind(sub)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Mark a reservation of this name expired if its TTL has run out. Part of
/// the reserve transaction, so expiry is decided by `expires_at` at the
/// moment of reserving and no sweeper can race it.
pub async fn expire_name(
    conn: &mut AnyConnection,
    pool: &str,
    sub: &str,
    now: i64,
) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "UPDATE allocations SET state = 'expired' WHERE pool = $1 AND subdomain = $2 \
         AND state = 'reserved' AND expires_at <= $3",
    )
    .bind(pool)
    .bind(sub)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// Insert a reservation unless a live allocation holds the name.
/// Returns `None` on conflict.
pub async fn insert_reservation(
    conn: &mut AnyConnection,
    pool: &str,
    sub: &str,
    created_by: &str,
    token_hash: &str,
    now: i64,
    expires_at: i64,
) -> Result<Option<AllocationRow>, StoreError> {
    let q = format!(
        "INSERT INTO allocations (pool, subdomain, state, reserved_at, expires_at, token_hash, created_by) \
         VALUES ($1, $2, 'reserved', $3, $4, $5, $6) \
         ON CONFLICT (pool, subdomain) WHERE state IN ('reserved', 'active') DO NOTHING \
         RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&q)
        .bind(pool)
        .bind(sub)
        .bind(now)
        .bind(expires_at)
        .bind(token_hash)
        .bind(created_by)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Flip a reservation to active; returns the row as it now is.
pub async fn activate(
    conn: &mut AnyConnection,
    id: i64,
    fqdn: &str,
    lb: &str,
    console_lb: Option<&str>,
    now: i64,
) -> Result<AllocationRow, StoreError> {
    let q = format!(
        "UPDATE allocations SET state = 'active', expires_at = NULL, sovereign_fqdn = $1, lb_ip = $2, \
         console_lb_ip = $3, committed_at = $4 WHERE id = $5 RETURNING {COLUMNS}"
    );
    let row = sqlx::query(&q)
        .bind(fqdn)
        .bind(lb)
        .bind(console_lb)
        .bind(now)
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    from_row(&row)
}

/// Point an active allocation at new load balancers.
pub async fn set_addresses(
    conn: &mut AnyConnection,
    id: i64,
    lb: &str,
    console_lb: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE allocations SET lb_ip = $1, console_lb_ip = $2 WHERE id = $3")
        .bind(lb)
        .bind(console_lb)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Set a live allocation's end state (`released` or `expired`).
pub async fn end(
    conn: &mut AnyConnection,
    id: i64,
    state: AllocationState,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE allocations SET state = $1, released_at = $2 WHERE id = $3")
        .bind(state.as_str())
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl Store {
    /// The live (reserved or active) allocation of `sub` in `pool`.
    pub async fn live_allocation(
        &self,
        pool: &str,
        sub: &str,
    ) -> Result<Option<Allocation>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        Ok(live(&mut conn, "", pool, sub).await?.map(|r| r.allocation))
    }

    /// Live allocations of a pool, ordered by subdomain.
    pub async fn list_live(&self, pool: &str) -> Result<Vec<Allocation>, StoreError> {
        let q = format!(
            "SELECT {COLUMNS} FROM allocations WHERE pool = $1 AND state IN ('reserved', 'active') ORDER BY subdomain"
        );
        let rows = sqlx::query(&q).bind(pool).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| from_row(r).map(|a| a.allocation))
            .collect()
    }

    /// Mark every reservation past its TTL expired. Reservations own no DNS
    /// data, so expiry needs no cleanup and cannot race a fresh reserve.
    pub async fn expire_due(&self, now: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query("UPDATE allocations SET state = 'expired' WHERE state = 'reserved' AND expires_at <= $1")
            .bind(now)
            .execute(self.pool())
            .await?
            .rows_affected())
    }
}

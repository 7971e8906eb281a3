//! Counts for `/metrics`: allocations, operations, replicas, DNSSEC keys
//! and rollovers, read at each scrape (a few GROUP BYs, no row data).

use super::{now_ms, Store, StoreError};
use sqlx::Row;

/// How long a replica may stay silent and still count as live (as the
/// change status counts them).
const LIVE_MS: i64 = 5_000;

/// The counts, as rows of labels and a value.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    /// (pool, state, allocations).
    pub allocations: Vec<(String, String, i64)>,
    /// (kind, state, operations).
    pub operations: Vec<(String, String, i64)>,
    /// The newest journal id.
    pub journal_head: i64,
    /// (replica, applied through, ms since its heartbeat) for live replicas.
    pub replicas: Vec<(String, i64, i64)>,
    /// (role, state, keys).
    pub keys: Vec<(String, String, i64)>,
    /// (kind, step, rollovers).
    pub rollovers: Vec<(String, i64, i64)>,
    /// The earliest `next_at` of a rollover (unix ms).
    pub next_rollover_ms: Option<i64>,
}

impl Store {
    /// Everything `/metrics` reads from the database.
    pub async fn metric_counts(&self) -> Result<Counts, StoreError> {
        let pairs = |sql: &'static str| async move {
            let rows = sqlx::query(sql).fetch_all(self.pool()).await?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.try_get::<String, _>(0)?,
                        r.try_get::<String, _>(1)?,
                        r.try_get::<i64, _>(2)?,
                    ))
                })
                .collect::<Result<Vec<_>, StoreError>>()
        };
        let allocations = pairs(
            "SELECT pool, state, COUNT(*) FROM allocations GROUP BY pool, state ORDER BY pool, state",
        )
        .await?;
        let operations = pairs(
            "SELECT kind, state, COUNT(*) FROM operations GROUP BY kind, state ORDER BY kind, state",
        )
        .await?;
        let keys = pairs(
            "SELECT role, state, COUNT(*) FROM dnssec_keys GROUP BY role, state ORDER BY role, state",
        )
        .await?;
        let now = now_ms();
        let replicas = self
            .live_replicas(now - LIVE_MS)
            .await?
            .into_iter()
            .map(|r| (r.id, r.applied_through, (now - r.heartbeat_at).max(0)))
            .collect();
        let rows = sqlx::query(
            "SELECT kind, CAST(step AS BIGINT), COUNT(*) FROM dnssec_rollovers GROUP BY kind, step ORDER BY kind, step",
        )
        .fetch_all(self.pool())
        .await?;
        let rollovers = rows
            .iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>(0)?,
                    r.try_get::<i64, _>(1)?,
                    r.try_get::<i64, _>(2)?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let next: Option<i64> = sqlx::query("SELECT MIN(next_at) FROM dnssec_rollovers")
            .fetch_one(self.pool())
            .await?
            .try_get(0)?;
        Ok(Counts {
            allocations,
            operations,
            journal_head: self.journal_head().await?,
            replicas,
            keys,
            rollovers,
            next_rollover_ms: next,
        })
    }
}

//! Replicas: every running pdm's heartbeat and how far its DNS serves the
//! change journal.

use super::{now_ms, Store, StoreError};
use sqlx::Row;

/// One replica as last announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaRow {
    /// Its identity (host, boot, pid namespace, pid, start time).
    pub id: String,
    /// Every journal entry up to this id is served by its DNS.
    pub applied_through: i64,
    /// When it started, unix ms.
    pub started_at: i64,
    /// Its last heartbeat, unix ms.
    pub heartbeat_at: i64,
}

impl Store {
    /// Records `id`'s heartbeat and what it serves.
    pub async fn heartbeat(
        &self,
        id: &str,
        applied_through: i64,
        started_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO replicas (id, applied_through, started_at, heartbeat_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET applied_through = excluded.applied_through, heartbeat_at = excluded.heartbeat_at",
        )
        .bind(id)
        .bind(applied_through)
        .bind(started_at)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Replicas heard from since `since_ms`, by id.
    pub async fn live_replicas(&self, since_ms: i64) -> Result<Vec<ReplicaRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, applied_through, started_at, heartbeat_at FROM replicas WHERE heartbeat_at >= $1 ORDER BY id",
        )
        .bind(since_ms)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ReplicaRow {
                    id: r.try_get("id")?,
                    applied_through: r.try_get("applied_through")?,
                    started_at: r.try_get("started_at")?,
                    heartbeat_at: r.try_get("heartbeat_at")?,
                })
            })
            .collect()
    }

    /// Forgets `id` (a clean shutdown), and replicas silent since `before_ms`.
    pub async fn remove_replica(&self, id: &str, before_ms: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM replicas WHERE id = $1 OR heartbeat_at < $2")
            .bind(id)
            .bind(before_ms)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

//! Stored answers for `Idempotency-Key` replays.

use super::{now_ms, Store, StoreError};
use sqlx::Row;

/// A previously given answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    /// Hash of method, path and body of the first request.
    pub request_hash: String,
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: String,
}

/// How long keys are kept.
pub const KEY_TTL_MS: i64 = 24 * 3600 * 1000;

impl Store {
    /// The answer stored for `(token, key)`, if any and not older than a day.
    pub async fn idempotent_answer(
        &self,
        token_id: i64,
        key: &str,
    ) -> Result<Option<StoredAnswer>, StoreError> {
        let row = sqlx::query(
            "SELECT request_hash, status, body FROM idempotency_keys WHERE token_id = $1 AND idem_key = $2 AND created_at > $3",
        )
        .bind(token_id)
        .bind(key)
        .bind(now_ms() - KEY_TTL_MS)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(StoredAnswer {
                request_hash: r.try_get("request_hash")?,
                status: r.try_get::<i64, _>("status")? as u16,
                body: r.try_get("body")?,
            })
        })
        .transpose()
    }

    /// Remember an answer; an existing (live) one wins.
    pub async fn store_answer(
        &self,
        token_id: i64,
        key: &str,
        a: &StoredAnswer,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM idempotency_keys WHERE token_id = $1 AND idem_key = $2 AND created_at <= $3")
            .bind(token_id)
            .bind(key)
            .bind(now_ms() - KEY_TTL_MS)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO idempotency_keys (token_id, idem_key, request_hash, status, body, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (token_id, idem_key) DO NOTHING",
        )
        .bind(token_id)
        .bind(key)
        .bind(&a.request_hash)
        .bind(a.status as i64)
        .bind(&a.body)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

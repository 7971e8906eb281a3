//! TSIG keys: name, algorithm and the sealed secret (the store never sees
//! it in the clear; `transfer.rs` seals and opens it).

use super::{now_ms, Store, StoreError};
use sqlx::Row;

/// One stored TSIG key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsigKeyRow {
    /// Lower case, no trailing dot.
    pub name: String,
    /// `hmac-sha256` or `hmac-sha512`.
    pub algorithm: String,
    /// The sealed secret, hex.
    pub sealed: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// The record policy (JSON, see `policy::PolicySpec`) for RFC 2136
    /// UPDATE, if the key may write records.
    pub policy: Option<String>,
}

impl Store {
    /// Stores a new key; `false` when one with this name exists.
    pub async fn create_tsig_key(
        &self,
        name: &str,
        algorithm: &str,
        sealed: &str,
        policy: Option<&str>,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "INSERT INTO tsig_keys (name, algorithm, secret, created_at, policy) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(algorithm)
        .bind(sealed)
        .bind(now_ms())
        .bind(policy.map(str::to_string))
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Every key, by name.
    pub async fn tsig_keys(&self) -> Result<Vec<TsigKeyRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, algorithm, secret, created_at, policy FROM tsig_keys ORDER BY name",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(key_row).collect()
    }

    /// Key `name`, if stored.
    pub async fn tsig_key(&self, name: &str) -> Result<Option<TsigKeyRow>, StoreError> {
        let row = sqlx::query(
            "SELECT name, algorithm, secret, created_at, policy FROM tsig_keys WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(key_row).transpose()
    }

    /// Removes a key; `false` when there was none.
    pub async fn delete_tsig_key(&self, name: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM tsig_keys WHERE name = $1")
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected() == 1)
    }
}

/// A `tsig_keys` row (name, algorithm, secret, created_at, policy).
fn key_row(r: &sqlx::any::AnyRow) -> Result<TsigKeyRow, StoreError> {
    Ok(TsigKeyRow {
        name: r.try_get("name")?,
        algorithm: r.try_get("algorithm")?,
        sealed: r.try_get("secret")?,
        created_at: r.try_get("created_at")?,
        policy: r.try_get("policy")?,
    })
}

//! API bearer tokens: only a SHA-256 of each token is stored.

use super::{now_ms, sha256_hex, Store, StoreError};
use rand::RngCore;
use sqlx::Row;

/// A token's identity and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// Store identity (keys idempotency records).
    pub id: i64,
    /// Operator-given name.
    pub name: String,
    /// Scopes: `admin`, `pool:*`, `pool:<domain>`.
    pub scopes: Vec<String>,
    /// The record policy as stored (JSON, see `policy::PolicySpec`), if any.
    pub policy: Option<String>,
}

impl TokenInfo {
    /// Whether this token may act on `pool` (lower-case, no trailing dot).
    pub fn covers_pool(&self, pool: &str) -> bool {
        self.scopes
            .iter()
            .any(|s| s == "admin" || s == "pool:*" || s.strip_prefix("pool:") == Some(pool))
    }

    /// Whether this token has the `admin` scope.
    pub fn is_admin(&self) -> bool {
        self.scopes.iter().any(|s| s == "admin")
    }
}

/// Validate a scope string.
pub fn valid_scope(s: &str) -> bool {
    s == "admin"
        || s == "pool:*"
        || s.strip_prefix("pool:")
            .is_some_and(|d| crate::model::DomainName::parse(d).is_ok())
}

impl Store {
    /// Create a token; returns the secret (shown once) and its id.
    pub async fn create_token(
        &self,
        name: &str,
        scopes: &[String],
    ) -> Result<(String, i64), StoreError> {
        self.create_token_with_policy(name, scopes, None).await
    }

    /// Create a token with a record policy (JSON); returns the secret
    /// (shown once) and its id.
    pub async fn create_token_with_policy(
        &self,
        name: &str,
        scopes: &[String],
        policy: Option<&str>,
    ) -> Result<(String, i64), StoreError> {
        let mut bytes = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut bytes);
        let secret = format!("pdm_{}", hex::encode(bytes));
        let scopes: Vec<String> = scopes
            .iter()
            .map(|s| match s.strip_prefix("pool:") {
                Some(d) if d != "*" => {
                    format!("pool:{}", d.trim_end_matches('.').to_ascii_lowercase())
                }
                _ => s.clone(),
            })
            .collect();
        let row = sqlx::query(
            "INSERT INTO api_tokens (name, token_hash, scopes, created_at, policy) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(name)
        .bind(sha256_hex(secret.as_bytes()))
        .bind(scopes.join(" "))
        .bind(now_ms())
        .bind(policy.map(str::to_string))
        .fetch_one(self.pool())
        .await?;
        Ok((secret, row.try_get("id")?))
    }

    /// Remove every token with this name (the demo rotates its token per start).
    pub async fn delete_tokens_named(&self, name: &str) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM api_tokens WHERE name = $1")
            .bind(name)
            .execute(self.pool())
            .await?
            .rows_affected())
    }

    /// Resolve a presented secret.
    ///
    /// The secret itself is never compared: its SHA-256 is looked up
    /// through the index, so timing tells nothing about stored tokens.
    pub async fn token(&self, secret: &str) -> Result<Option<TokenInfo>, StoreError> {
        self.token_by_hash(&sha256_hex(secret.as_bytes())).await
    }

    /// The token whose secret has SHA-256 `hash` (lower-case hex).
    pub async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenInfo>, StoreError> {
        let row = sqlx::query(
            "SELECT id, name, scopes, policy, created_at FROM api_tokens WHERE token_hash = $1",
        )
        .bind(hash)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| token_of(&r).map(|(t, _)| t)).transpose()
    }

    /// Every token (never a secret: only hashes are stored), with its
    /// creation time in unix ms.
    pub async fn tokens(&self) -> Result<Vec<(TokenInfo, i64)>, StoreError> {
        let rows =
            sqlx::query("SELECT id, name, scopes, policy, created_at FROM api_tokens ORDER BY id")
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(token_of).collect()
    }

    /// Removes token `id`; `false` when there was none.
    pub async fn delete_token(&self, id: i64) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM api_tokens WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected() == 1)
    }
}

/// A token row (without its hash) and its creation time.
fn token_of(r: &sqlx::any::AnyRow) -> Result<(TokenInfo, i64), StoreError> {
    let scopes: String = r.try_get("scopes")?;
    Ok((
        TokenInfo {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            scopes: scopes.split_whitespace().map(str::to_string).collect(),
            policy: r.try_get("policy")?,
        },
        r.try_get("created_at")?,
    ))
}

impl Store {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_cover_pools() {
        let t = |s: &[&str]| TokenInfo {
            id: 1,
            name: "t".into(),
            scopes: s.iter().map(|x| x.to_string()).collect(),
            policy: None,
        };
        assert!(t(&["admin"]).covers_pool("example.test"));
        assert!(t(&["pool:*"]).covers_pool("example.test"));
        assert!(t(&["pool:example.test"]).covers_pool("example.test"));
        assert!(!t(&["pool:other.test"]).covers_pool("example.test"));
        assert!(!t(&[]).covers_pool("example.test"));
        assert!(valid_scope("pool:example.test"));
        assert!(!valid_scope("pool:"));
        assert!(!valid_scope("root"));
    }
}

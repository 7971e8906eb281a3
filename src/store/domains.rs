//! Managed byo domains: mode, registrar, sealed credentials, the operation
//! bringing the delegation up, and the last parent check.

use super::{now_ms, Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

/// One byo domain row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainRow {
    /// Lower-case, no trailing dot.
    pub domain: String,
    /// `byo-api` or `byo-manual`.
    pub mode: String,
    /// Registrar name (byo-api).
    pub registrar: Option<String>,
    /// Hex of the sealed credentials JSON (byo-api).
    pub credentials: Option<String>,
    /// The operation bringing the delegation up.
    pub operation_id: Option<i64>,
    /// JSON of the last parent check.
    pub propagation: Option<String>,
    /// Created (unix ms).
    pub created_at: i64,
    /// Last change (unix ms).
    pub updated_at: i64,
    /// When the parent first showed the delegation (unix ms).
    pub activated_at: Option<i64>,
}

fn domain_of(r: &AnyRow) -> Result<DomainRow, StoreError> {
    Ok(DomainRow {
        domain: r.try_get("domain")?,
        mode: r.try_get("mode")?,
        registrar: r.try_get("registrar")?,
        credentials: r.try_get("credentials")?,
        operation_id: r.try_get("operation_id")?,
        propagation: r.try_get("propagation")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        activated_at: r.try_get("activated_at")?,
    })
}

const COLUMNS: &str =
    "domain, mode, registrar, credentials, operation_id, propagation, created_at, \
     updated_at, activated_at";

/// Inserts a domain row.
pub async fn insert_domain(conn: &mut AnyConnection, d: &DomainRow) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO byo_domains (domain, mode, registrar, credentials, operation_id, propagation, \
         created_at, updated_at, activated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&d.domain)
    .bind(&d.mode)
    .bind(d.registrar.as_deref())
    .bind(d.credentials.as_deref())
    .bind(d.operation_id)
    .bind(d.propagation.as_deref())
    .bind(d.created_at)
    .bind(d.updated_at)
    .bind(d.activated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A domain row.
pub async fn get_domain(
    conn: &mut AnyConnection,
    domain: &str,
) -> Result<Option<DomainRow>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM byo_domains WHERE domain = $1"
    ))
    .bind(domain)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(domain_of).transpose()
}

/// Deletes a domain row; false when there was none.
pub async fn delete_domain(conn: &mut AnyConnection, domain: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query("DELETE FROM byo_domains WHERE domain = $1")
        .bind(domain)
        .execute(&mut *conn)
        .await?
        .rows_affected()
        > 0)
}

impl Store {
    /// A byo domain.
    pub async fn byo_domain(&self, domain: &str) -> Result<Option<DomainRow>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        get_domain(&mut conn, domain).await
    }

    /// Every byo domain, by name.
    pub async fn byo_domains(&self) -> Result<Vec<DomainRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM byo_domains ORDER BY domain"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(domain_of).collect()
    }

    /// Stores the last parent check; `activated` stamps the first match.
    pub async fn set_byo_propagation(
        &self,
        domain: &str,
        propagation: &str,
        activated: bool,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let sql = if activated {
            "UPDATE byo_domains SET propagation = $1, updated_at = $2, \
             activated_at = COALESCE(activated_at, $2) WHERE domain = $3"
        } else {
            "UPDATE byo_domains SET propagation = $1, updated_at = $2 WHERE domain = $3"
        };
        sqlx::query(sql)
            .bind(propagation)
            .bind(now)
            .bind(domain)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

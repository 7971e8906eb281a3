//! Persistence (sqlx): SQLite by default, PostgreSQL for replicas.
//!
//! Both backends go through sqlx's `Any` driver with one set of queries
//! (`$n` placeholders, BIGINT unix-millisecond times), so every integration
//! test exercises the same code on both. The zone rows plus the append-only
//! `zone_journal` are the single source of truth for what DNS serves.

pub mod allocations;
pub mod backup;
pub mod domains;
pub mod idempotency;
pub mod journal;
pub mod keys;
pub mod operations;
pub mod replicas;
pub mod rrsets;
pub mod stats;
pub mod tokens;
pub mod tsig;
pub mod zones;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::str::FromStr;
use std::time::Duration;

/// Errors from the store, typed so callers can map them once.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is not sqlite:// or postgres://.
    #[error("unsupported database URL (want sqlite://PATH or postgres://...): {0}")]
    BadUrl(String),
    /// Any driver-level failure.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Stored data that pdm cannot interpret.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The engine cannot do what was asked.
    #[error("{0}")]
    Unsupported(String),
}

/// Which SQL engine is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (embedded, one writer).
    Sqlite,
    /// PostgreSQL (replicas).
    Postgres,
}

/// A handle to the database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
}

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// Connect to `url`. SQLite files are created when missing and put in WAL mode.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let (dialect, url) = if let Some(rest) = url.strip_prefix("sqlite://") {
            let sep = if rest.contains('?') { '&' } else { '?' };
            let url = if rest.contains("mode=") {
                url.to_string()
            } else {
                format!("{url}{sep}mode=rwc")
            };
            (Dialect::Sqlite, url)
        } else if url.starts_with("sqlite:") {
            (Dialect::Sqlite, url.to_string())
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Dialect::Postgres, url.to_string())
        } else {
            return Err(StoreError::BadUrl(redact_url(url)));
        };
        let opts = AnyConnectOptions::from_str(&url)?;
        let pool = match dialect {
            // One connection: SQLite has one writer anyway, and a single
            // connection makes every transaction serialisable without
            // SQLITE_BUSY upgrade failures under concurrent reserves.
            Dialect::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute("PRAGMA journal_mode=WAL").await?;
                            conn.execute("PRAGMA synchronous=NORMAL").await?;
                            conn.execute("PRAGMA busy_timeout=10000").await?;
                            conn.execute("PRAGMA foreign_keys=ON").await?;
                            Ok(())
                        })
                    })
                    .connect_with(opts)
                    .await?
            }
            Dialect::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(opts)
                    .await?
            }
        };
        Ok(Store { pool, dialect })
    }

    /// Apply pending migrations for this dialect.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.dialect {
            Dialect::Sqlite => SQLITE_MIGRATOR.run(&self.pool).await?,
            Dialect::Postgres => POSTGRES_MIGRATOR.run(&self.pool).await?,
        }
        Ok(())
    }

    /// The connection pool.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The SQL engine.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// `FOR UPDATE` where the engine has row locks (SQLite serialises anyway).
    pub fn for_update(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        }
    }

    /// Cheap liveness probe.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// Current time in unix milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A database URL with any password removed, safe to print.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// A `LIKE … ESCAPE '\'` pattern for the names strictly below `name`:
/// LIKE's wildcards are ordinary characters in DNS names (`_acme-challenge`).
fn like_below(name: &str) -> String {
    let escaped = name
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%.{escaped}")
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("sqlite://pdm.db"), "sqlite://pdm.db");
    }
}

//! Persistence (sqlx): SQLite by default, PostgreSQL for replicas.
//!
//! Both backends go through sqlx's `Any` driver with one set of queries
//! (`$n` placeholders, BIGINT unix-millisecond times), so every integration
//! test exercises the same code on both. The zone rows plus the append-only
//! `zone_journal` are the single source of truth for what DNS serves.

pub mod allocations;
pub mod backup;
mod batch;
pub mod checkpoint;
pub mod domains;
pub mod idempotency;
pub mod journal;
pub mod keys;
pub mod operations;
pub mod replicas;
pub mod rrsets;
mod sqlite_writer;
pub mod stats;
pub mod tokens;
pub mod tsig;
pub mod write;
pub mod zones;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Executor, Transaction};
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
    /// A failure on the SQLite writer connection (`sqlite_writer.rs`).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
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

/// Whether `e` (or an error it wraps) is the database being out of reach
/// or out of space: connection lost or refused, the server shutting down
/// or restarting, the pool timing out, a full disk. Such a failure left
/// nothing applied (the transaction never committed) and goes away on its
/// own, so the API answers 503 with `Retry-After`, not 500.
pub fn unavailable(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        let sqlx = e
            .downcast_ref::<sqlx::Error>()
            .or_else(|| match e.downcast_ref() {
                Some(StoreError::Db(inner)) => Some(inner),
                _ => None,
            });
        if sqlx.is_some_and(sqlx_unavailable) {
            return true;
        }
        let lite = e
            .downcast_ref::<rusqlite::Error>()
            .or_else(|| match e.downcast_ref() {
                Some(StoreError::Sqlite(inner)) => Some(inner),
                _ => None,
            });
        if let Some(rusqlite::Error::SqliteFailure(f, _)) = lite {
            if code_unavailable(&f.extended_code.to_string()) {
                return true;
            }
        }
        next = e.source();
    }
    false
}

fn sqlx_unavailable(e: &sqlx::Error) -> bool {
    use sqlx::Error as E;
    match e {
        E::Io(_)
        | E::Tls(_)
        | E::Protocol(_)
        | E::PoolTimedOut
        | E::PoolClosed
        | E::WorkerCrashed => true,
        E::Database(db) => db.code().is_some_and(|c| code_unavailable(&c)),
        _ => false,
    }
}

/// PostgreSQL SQLSTATEs (five characters) of a lost connection (class 08),
/// insufficient resources (53: disk full, out of memory, too many
/// connections) and operator intervention (57P01-57P05: shutdown, crash,
/// cannot connect now); SQLite result codes (numeric, extended codes keep
/// the primary code in the low byte) BUSY, LOCKED, IOERR, FULL, CANTOPEN.
fn code_unavailable(code: &str) -> bool {
    if code.len() == 5 {
        return code.starts_with("08") || code.starts_with("53") || code.starts_with("57P");
    }
    code.parse::<u32>()
        .is_ok_and(|n| matches!(n & 0xff, 5 | 6 | 10 | 13 | 14))
}

/// Which SQL engine is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (embedded, one writer).
    Sqlite,
    /// PostgreSQL (replicas).
    Postgres,
}

impl Dialect {
    /// The statement that begins a transaction that may write (see
    /// [`Store::begin`]).
    fn begin(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        }
    }
}

/// A handle to the database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
    /// SQLite's connection for record writes (`sqlite_writer.rs`); `None`
    /// on Postgres and for a database that is not a file.
    writer: Option<sqlite_writer::Writer>,
    /// Journal entries this process committed, for its own followers.
    committed: tokio::sync::broadcast::Sender<std::sync::Arc<journal::JournalEntry>>,
}

/// Entries [`Store::committed`] keeps for a follower that has not read them
/// yet; one further behind reads the journal instead.
const COMMITTED_BACKLOG: usize = 1024;

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// Connect to `url`. SQLite files are created when missing and put in WAL mode.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, None).await
    }

    /// [`Store::connect`], waiting at most `acquire` for a connection
    /// (default: 30 s on SQLite, whose one connection is a queue; 10 s on
    /// PostgreSQL, so a request during a restart or failover fails soon,
    /// as 503, instead of holding its client).
    pub async fn connect_with(url: &str, acquire: Option<Duration>) -> Result<Self, StoreError> {
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
                    // The connection is a file in this process: it cannot
                    // drop the way a socket does, so sqlx's ping before each
                    // acquire (a round trip to its worker thread, a tenth of
                    // a record write's latency) buys nothing.
                    .test_before_acquire(false)
                    .acquire_timeout(acquire.unwrap_or(Duration::from_secs(30)))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute("PRAGMA journal_mode=WAL").await?;
                            conn.execute("PRAGMA synchronous=NORMAL").await?;
                            conn.execute("PRAGMA busy_timeout=10000").await?;
                            conn.execute("PRAGMA foreign_keys=ON").await?;
                            // `pdm serve` checkpoints from its own connection
                            // (checkpoint.rs); this bound only caps the WAL.
                            conn.execute(
                                format!("PRAGMA wal_autocheckpoint={}", checkpoint::FALLBACK_PAGES)
                                    .as_str(),
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect_with(opts)
                    .await?
            }
            Dialect::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(acquire.unwrap_or(Duration::from_secs(10)))
                    .connect_with(opts)
                    .await?
            }
        };
        let (committed, _) = tokio::sync::broadcast::channel(COMMITTED_BACKLOG);
        // After the pool: its first connection created the file.
        let writer = match dialect {
            Dialect::Sqlite => sqlite_writer::open(&url, checkpoint::FALLBACK_PAGES),
            Dialect::Postgres => None,
        };
        Ok(Store {
            pool,
            dialect,
            writer,
            committed,
        })
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

    /// Begins a transaction on a connection of the pool.
    ///
    /// On SQLite it takes the write lock at BEGIN (`BEGIN IMMEDIATE`). A
    /// deferred transaction that reads and then writes fails at its first
    /// write with SQLITE_BUSY_SNAPSHOT, past any busy timeout, when another
    /// process (`pdm zone import` beside `pdm serve`) committed in between;
    /// an immediate one waits its turn instead. Within one process the pool's
    /// single connection serialises transactions anyway, so the lock costs
    /// nothing there.
    pub async fn begin(&self) -> Result<Transaction<'static, Any>, StoreError> {
        match self.pool.begin_with(self.dialect.begin()).await {
            // sqlx counts the transactions it began on a connection. When
            // SQLite rolls one back by itself (SQLITE_FULL, an I/O error),
            // the ROLLBACK sqlx then sends fails and its count stays up, so
            // it refuses every later BEGIN of ours on that connection (its
            // own BEGIN would quietly turn into a SAVEPOINT). Replace the
            // connection, once: a fresh one counts from zero.
            Err(sqlx::Error::InvalidSavePointStatement) => {
                tracing::warn!(
                    "replacing a database connection that lost count of its transaction"
                );
                self.pool.acquire().await?.close().await?;
                Ok(self.pool.begin_with(self.dialect.begin()).await?)
            }
            begun => Ok(begun?),
        }
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

/// Whether a stored secret hash equals the hash of a presented secret, in
/// time that does not depend on where they differ (no prefix of a stored
/// hash can be learnt by timing the answers).
pub fn hash_matches(stored: Option<&str>, presented: &str) -> bool {
    use subtle::ConstantTimeEq;
    stored.is_some_and(|s| bool::from(s.as_bytes().ct_eq(presented.as_bytes())))
}

/// A migrated SQLite store in a temporary directory (kept alive by the
/// returned guard), for unit tests.
#[cfg(test)]
pub(crate) async fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("pdm.db").display());
    let store = Store::connect(&url).await.expect("connect");
    store.migrate().await.expect("migrate");
    (dir, store)
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

    #[test]
    fn unavailable_databases_are_told_apart() {
        for code in ["08006", "57P01", "57P03", "53100", "13", "5", "266", "3338"] {
            assert!(code_unavailable(code), "{code}");
        }
        for code in ["23505", "40001", "42P01", "19", "2067", "1"] {
            assert!(!code_unavailable(code), "{code}");
        }
        let wrapped = StoreError::Db(sqlx::Error::PoolTimedOut);
        assert!(unavailable(&wrapped));
        assert!(!unavailable(&StoreError::Corrupt("x".into())));
    }

    /// A second process on the same SQLite file (the CLI beside `pdm serve`).
    async fn second_process(dir: &tempfile::TempDir) -> Store {
        let url = format!("sqlite://{}", dir.path().join("pdm.db").display());
        Store::connect(&url).await.expect("connect")
    }

    /// The other process inserts `v` into `t`, and has had time to try.
    async fn their_write(
        other: &Store,
        v: i64,
    ) -> tokio::task::JoinHandle<Result<sqlx::any::AnyQueryResult, sqlx::Error>> {
        let other = other.clone();
        let theirs = tokio::spawn(async move {
            sqlx::query("INSERT INTO t (v) VALUES ($1)")
                .bind(v)
                .execute(other.pool())
                .await
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        theirs
    }

    async fn count(store: &Store) -> i64 {
        use sqlx::Row;
        let row = sqlx::query("SELECT COUNT(*) FROM t")
            .fetch_one(store.pool())
            .await
            .unwrap();
        row.try_get(0).unwrap()
    }

    /// A transaction that reads, then writes after another process has
    /// committed, still commits: the other process waits for it. Begun
    /// deferred, its write fails with SQLITE_BUSY_SNAPSHOT (517), which no
    /// busy timeout waits out.
    #[tokio::test]
    async fn a_write_after_another_process_committed_commits() {
        let (dir, store) = temp_store().await;
        sqlx::query("CREATE TABLE t (v BIGINT NOT NULL)")
            .execute(store.pool())
            .await
            .unwrap();
        let other = second_process(&dir).await;

        // Through Store::begin.
        let mut tx = store.begin().await.unwrap();
        sqlx::query("SELECT COUNT(*) FROM t")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        let theirs = their_write(&other, 2).await;
        sqlx::query("INSERT INTO t (v) VALUES (1)")
            .execute(&mut *tx)
            .await
            .expect("our write after theirs");
        tx.commit().await.unwrap();
        theirs.await.unwrap().expect("theirs waited its turn");
        assert_eq!(count(&store).await, 2);

        // Through WriteTx, whose BEGIN rides in its first batch.
        let mut tx = write::WriteTx::start(&store).await.unwrap();
        let mut read = batch::Batch::default();
        read.push("SELECT COUNT(*) AS n FROM t", Vec::new());
        tx.run(read).await.unwrap();
        let theirs = their_write(&other, 4).await;
        let mut ours = batch::Batch::default();
        ours.push("INSERT INTO t (v) VALUES (3)", Vec::new());
        tx.commit_with(ours).await.expect("our write after theirs");
        drop(tx);
        theirs.await.unwrap().expect("theirs waited its turn");
        assert_eq!(count(&store).await, 4);
    }
}

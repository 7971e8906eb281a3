//! A write transaction whose BEGIN rides in its first [`Batch`] and whose
//! COMMIT rides in its last.
//!
//! On SQLite it runs on the store's writer connection when there is one
//! (`sqlite_writer.rs`: inline, statements kept prepared). Otherwise, on a
//! connection of the pool: there on SQLite every command is a round trip
//! to the connection's worker thread, and sqlx's own transaction spends two
//! of a record write's five on BEGIN and COMMIT alone; on Postgres the
//! statements still run one by one, as before.
//!
//! sqlx's `Transaction` rolls back when dropped; a pool connection cannot
//! run SQL in `drop`, so a transaction left open on one (a request
//! cancelled mid-write, a failed ROLLBACK) closes it instead of returning
//! it to the pool: closing rolls the transaction back, and no later
//! borrower of the connection finds itself inside it. The writer
//! connection is synchronous, so it rolls back in `drop`.

use super::batch::{Batch, Row};
use super::sqlite_writer;
use super::{Dialect, Store, StoreError};
use sqlx::pool::PoolConnection;
use sqlx::Any;

/// The connection a [`WriteTx`] holds.
enum Conn {
    /// One of the pool's.
    Pool(PoolConnection<Any>),
    /// The store's SQLite writer connection, held for the transaction.
    Sqlite(tokio::sync::OwnedMutexGuard<rusqlite::Connection>),
}

/// One write transaction.
pub struct WriteTx {
    conn: Conn,
    dialect: Dialect,
    /// BEGIN may have run and neither COMMIT nor ROLLBACK has.
    open: bool,
}

impl WriteTx {
    /// Takes a connection; nothing is sent until the first batch.
    pub async fn start(store: &Store) -> Result<WriteTx, StoreError> {
        let conn = match &store.writer {
            Some(w) => Conn::Sqlite(w.clone().lock_owned().await),
            None => Conn::Pool(store.pool().acquire().await?),
        };
        Ok(WriteTx {
            conn,
            dialect: store.dialect(),
            open: false,
        })
    }

    /// The engine the transaction runs on.
    pub(super) fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Runs `batch` inside the transaction, beginning it first if this is
    /// its first batch. On an error the transaction is rolled back.
    pub(super) async fn run(&mut self, batch: Batch) -> Result<Vec<Row>, StoreError> {
        self.run_in(batch, false).await
    }

    /// Runs `batch` and commits, in one round trip on SQLite. On an error
    /// the transaction is rolled back.
    pub(super) async fn commit_with(&mut self, batch: Batch) -> Result<Vec<Row>, StoreError> {
        let rows = self.run_in(batch, true).await?;
        self.open = false;
        Ok(rows)
    }

    /// Rolls back what the batches wrote, if they did not commit.
    pub async fn rollback(mut self) {
        self.abort().await;
    }

    async fn run_in(&mut self, mut batch: Batch, commit: bool) -> Result<Vec<Row>, StoreError> {
        if commit {
            batch.push("COMMIT", Vec::new());
        }
        let ran = match &mut self.conn {
            Conn::Sqlite(conn) => {
                if !self.open {
                    sqlite_writer::begin(conn).await?;
                    self.open = true;
                }
                sqlite_writer::run(conn, batch)
                    .map(|rows| rows.into_iter().map(Row::Sqlite).collect())
            }
            Conn::Pool(conn) => {
                if !self.open {
                    batch.prepend(self.dialect.begin());
                    // Before the batch runs: a cancelled run may have begun it.
                    self.open = true;
                }
                batch
                    .run(conn)
                    .await
                    .map(|rows| rows.into_iter().map(Row::Pool).collect())
            }
        };
        match ran {
            Ok(rows) => Ok(rows),
            Err(e) => {
                self.abort().await;
                Err(e)
            }
        }
    }

    /// ROLLBACK if a transaction may be open; a pool connection whose
    /// ROLLBACK fails is closed rather than reused (closing rolls back).
    async fn abort(&mut self) {
        if !self.open {
            return;
        }
        let rolled = match &mut self.conn {
            Conn::Sqlite(conn) => sqlite_writer::rollback(conn),
            Conn::Pool(conn) => sqlx::query("ROLLBACK")
                .execute(&mut **conn)
                .await
                .map(drop)
                .map_err(StoreError::from),
        };
        match rolled {
            Ok(()) => self.open = false,
            Err(e) => tracing::warn!(error = %e, "ROLLBACK failed; closing the connection"),
        }
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        match &mut self.conn {
            Conn::Pool(conn) => conn.close_on_drop(),
            Conn::Sqlite(conn) => {
                if let Err(e) = sqlite_writer::rollback(conn) {
                    tracing::warn!(error = %e, "ROLLBACK of a dropped write failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::batch::Columns;
    use crate::store::{temp_store, Store};
    use sqlx::Row;

    async fn value(pool: &sqlx::AnyPool) -> i64 {
        sqlx::query("SELECT v FROM t")
            .fetch_one(pool)
            .await
            .unwrap()
            .try_get(0)
            .unwrap()
    }

    fn set(v: i64) -> Batch {
        let mut b = Batch::default();
        b.push("UPDATE t SET v = $1", vec![v.into()]);
        b
    }

    /// A store with table `t` holding `v = 1`, and a transaction on it
    /// that has run its first batch (`v = first`).
    async fn begun(first: i64) -> (tempfile::TempDir, Store, WriteTx) {
        let (dir, store) = temp_store().await;
        let pool = store.pool();
        sqlx::query("CREATE TABLE t (v BIGINT NOT NULL CHECK (v >= 0))")
            .execute(pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO t (v) VALUES (1)")
            .execute(pool)
            .await
            .unwrap();
        let mut tx = WriteTx::start(&store).await.unwrap();
        tx.run(set(first)).await.unwrap();
        (dir, store, tx)
    }

    /// Both batches in one transaction: what the first wrote is seen by the
    /// second and kept by the commit.
    #[tokio::test]
    async fn batches_commit_together() {
        let (_dir, store, mut tx) = begun(2).await;
        let pool = store.pool();
        let mut b = Batch::default();
        b.push("UPDATE t SET v = v * 10 RETURNING v", Vec::new());
        let rows = tx.commit_with(b).await.unwrap();
        assert_eq!(rows[0].int("v").unwrap(), 20);
        drop(tx);
        assert_eq!(value(pool).await, 20);
    }

    /// A transaction dropped open (a cancelled request) leaves nothing
    /// behind, and the pool's next borrower is not inside it.
    #[tokio::test]
    async fn dropped_open_rolls_back_and_the_pool_goes_on() {
        let (_dir, store, tx) = begun(5).await;
        let pool = store.pool();
        drop(tx);
        assert_eq!(value(pool).await, 1, "the dropped write is gone");
        let mut tx = WriteTx::start(&store).await.unwrap();
        tx.commit_with(set(7)).await.unwrap();
        drop(tx);
        assert_eq!(
            value(pool).await,
            7,
            "a BEGIN inside a transaction would have failed"
        );
    }

    /// A statement that fails in the committing batch rolls back the
    /// whole transaction, the first batch's writes included.
    #[tokio::test]
    async fn a_failed_commit_batch_keeps_nothing() {
        let (_dir, store, mut tx) = begun(3).await;
        let pool = store.pool();
        assert!(tx.commit_with(set(-1)).await.is_err(), "CHECK refuses -1");
        drop(tx);
        assert_eq!(value(pool).await, 1);
        let mut tx = WriteTx::start(&store).await.unwrap();
        tx.run(set(4)).await.unwrap();
        tx.rollback().await;
        assert_eq!(value(pool).await, 1, "rolled back");
    }
}

//! A write transaction whose BEGIN rides in its first [`Batch`] and whose
//! COMMIT rides in its last. On SQLite every command is a round trip to the
//! connection's worker thread; sqlx's own transaction spends two of a record
//! write's five on BEGIN and COMMIT alone (~7 % of a PATCH's CPU). On
//! Postgres the statements still run one by one, as before.
//!
//! sqlx's `Transaction` rolls back when dropped; this type cannot run SQL in
//! `drop`, so a transaction left open (a request cancelled mid-write, a
//! failed ROLLBACK) closes its connection instead of returning it to the
//! pool: closing rolls the transaction back, and no later borrower of the
//! connection finds itself inside it.

use super::batch::Batch;
use super::{Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection};

/// One write transaction on a connection of the pool.
pub struct WriteTx {
    conn: PoolConnection<Any>,
    /// The engine's BEGIN for a write ([`Store::begin`]).
    begin: &'static str,
    /// BEGIN may have run and neither COMMIT nor ROLLBACK has.
    open: bool,
}

impl WriteTx {
    /// Takes a connection; nothing is sent until the first batch.
    pub async fn start(store: &Store) -> Result<WriteTx, StoreError> {
        Ok(WriteTx {
            conn: store.pool().acquire().await?,
            begin: store.dialect().begin(),
            open: false,
        })
    }

    /// The connection, for statements inside the transaction once
    /// [`WriteTx::run`] has begun it.
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }

    /// Begins the transaction now, for a read before its first batch.
    pub async fn begin(&mut self) -> Result<(), StoreError> {
        if self.open {
            return Ok(());
        }
        self.run(Batch::default()).await.map(drop)
    }

    /// Runs `batch` inside the transaction, beginning it first if this is
    /// its first batch. On an error the transaction is rolled back.
    pub(super) async fn run(&mut self, mut batch: Batch) -> Result<Vec<AnyRow>, StoreError> {
        self.begin_in(&mut batch);
        self.run_or_abort(batch).await
    }

    /// Runs `batch` and commits, in one round trip on SQLite. On an error
    /// the transaction is rolled back.
    pub(super) async fn commit_with(
        &mut self,
        mut batch: Batch,
    ) -> Result<Vec<AnyRow>, StoreError> {
        self.begin_in(&mut batch);
        batch.push("COMMIT", Vec::new());
        let rows = self.run_or_abort(batch).await?;
        self.open = false;
        Ok(rows)
    }

    /// Rolls back what the batches wrote, if they did not commit.
    pub async fn rollback(mut self) {
        self.abort().await;
    }

    /// Puts BEGIN ahead of `batch` if the transaction has not begun.
    fn begin_in(&mut self, batch: &mut Batch) {
        if !self.open {
            batch.prepend(self.begin);
            // Before the batch runs: a cancelled run may have begun it.
            self.open = true;
        }
    }

    async fn run_or_abort(&mut self, batch: Batch) -> Result<Vec<AnyRow>, StoreError> {
        match batch.run(&mut self.conn).await {
            Ok(rows) => Ok(rows),
            Err(e) => {
                self.abort().await;
                Err(e)
            }
        }
    }

    /// ROLLBACK if a transaction may be open; a connection whose ROLLBACK
    /// fails is closed rather than reused (closing rolls back).
    async fn abort(&mut self) {
        if !self.open {
            return;
        }
        match sqlx::query("ROLLBACK").execute(&mut *self.conn).await {
            Ok(_) => self.open = false,
            Err(e) => tracing::warn!(error = %e, "ROLLBACK failed; closing the connection"),
        }
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if self.open {
            self.conn.close_on_drop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        assert_eq!(rows[0].try_get::<i64, _>(0).unwrap(), 20);
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

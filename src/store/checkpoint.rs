//! SQLite's WAL checkpoints, taken off the write path.
//!
//! Left to itself, SQLite checkpoints inside the COMMIT that takes the WAL
//! past `wal_autocheckpoint` pages, and with `synchronous=NORMAL` a
//! checkpoint syncs the WAL and then the database file: one write in every
//! hundred or so waited for two `fsync`s (PATCH p99 9-15 ms against 3-5 ms
//! without, on the development VM). `pdm serve` checkpoints from a
//! connection of its own instead, PASSIVE (it never waits for a reader or
//! the writer, and they never wait for it), a few times a second. The
//! pool's connection still checkpoints on its own past [`FALLBACK_PAGES`],
//! so a stalled checkpointer bounds the WAL rather than letting it grow.

use super::{Dialect, Store, StoreError};
use sqlx::{AnyConnection, Connection, Row};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// WAL pages past which the writing connection checkpoints by itself
/// (SQLite's default is 1,000): reached only when [`Checkpointer`] is not
/// running (CLI commands) or has fallen behind (~40 MB of WAL).
pub(super) const FALLBACK_PAGES: u32 = 10_000;

/// How often [`Checkpointer::run`] checkpoints. A tick with nothing new in
/// the WAL costs a few system calls and no `fsync`.
pub const INTERVAL: Duration = Duration::from_millis(200);

/// What the checkpointer has done, for `/metrics` (cheap to clone; clones
/// share the counts).
#[derive(Debug, Clone, Default)]
pub struct CheckpointStats(Arc<Counters>);

#[derive(Debug, Default)]
struct Counters {
    checkpoints: AtomicU64,
    failures: AtomicU64,
    wal_pages: AtomicU64,
    backfilled: AtomicU64,
}

impl CheckpointStats {
    /// Checkpoints that copied pages into the database file.
    pub fn checkpoints(&self) -> u64 {
        self.0.checkpoints.load(Ordering::Relaxed)
    }

    /// Checkpoints that failed (the error is logged).
    pub fn failures(&self) -> u64 {
        self.0.failures.load(Ordering::Relaxed)
    }

    /// Pages in the WAL at the last checkpoint.
    pub fn wal_pages(&self) -> u64 {
        self.0.wal_pages.load(Ordering::Relaxed)
    }

    /// Of those, pages already in the database file.
    pub fn backfilled(&self) -> u64 {
        self.0.backfilled.load(Ordering::Relaxed)
    }
}

/// One `PRAGMA wal_checkpoint` result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pass {
    /// Pages in the WAL.
    wal_pages: u64,
    /// Pages of it now in the database file.
    backfilled: u64,
}

/// Checkpoints the WAL of a SQLite store from a connection of its own.
#[derive(Debug)]
pub struct Checkpointer {
    conn: AnyConnection,
    stats: CheckpointStats,
    /// `PRAGMA data_version` at the last pass: it moves when another
    /// connection commits, so a pass after a move had pages to copy.
    seen: Option<i64>,
}

impl Store {
    /// A checkpointer for this store: `None` on PostgreSQL, which has no
    /// WAL of pdm's to tend.
    pub async fn checkpointer(&self) -> Result<Option<Checkpointer>, StoreError> {
        if self.dialect != Dialect::Sqlite {
            return Ok(None);
        }
        let conn = AnyConnection::connect_with(&self.pool.connect_options()).await?;
        Ok(Some(Checkpointer {
            conn,
            stats: CheckpointStats::default(),
            seen: None,
        }))
    }
}

impl Checkpointer {
    /// What it has done so far.
    pub fn stats(&self) -> CheckpointStats {
        self.stats.clone()
    }

    /// Checkpoints every `every`, for as long as the process runs.
    pub async fn run(mut self, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tick.tick().await;
            match self.pass().await {
                Ok(_) => failing = false,
                // Logged once per run of failures, not per tick.
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "WAL checkpoint failed; the writer checkpoints past its bound");
                }
                Err(_) => {}
            }
        }
    }

    /// One PASSIVE checkpoint, counted.
    async fn pass(&mut self) -> Result<Pass, StoreError> {
        let done = self.checkpoint().await;
        let counters = &self.stats.0;
        match done {
            Ok((pass, copied)) => {
                counters
                    .backfilled
                    .store(pass.backfilled, Ordering::Relaxed);
                counters.wal_pages.store(pass.wal_pages, Ordering::Relaxed);
                if copied {
                    counters.checkpoints.fetch_add(1, Ordering::Relaxed);
                }
                Ok(pass)
            }
            Err(e) => {
                counters.failures.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// The pass, and whether it had commits to copy.
    async fn checkpoint(&mut self) -> Result<(Pass, bool), StoreError> {
        let version: i64 = sqlx::query("PRAGMA data_version")
            .fetch_one(&mut self.conn)
            .await?
            .try_get(0)?;
        let moved = self.seen.is_none_or(|seen| seen != version);
        let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&mut self.conn)
            .await?;
        // (busy, pages in the WAL, pages checkpointed); -1 when not in WAL mode.
        let pages = |i: usize| -> Result<u64, StoreError> {
            Ok(u64::try_from(row.try_get::<i64, _>(i)?).unwrap_or(0))
        };
        let pass = Pass {
            wal_pages: pages(1)?,
            backfilled: pages(2)?,
        };
        // Not moved on until the pass copied all it had (a busy pass, or
        // one that a reader held short, counts again at the next).
        if pass.backfilled == pass.wal_pages {
            self.seen = Some(version);
        }
        Ok((pass, moved && pass.backfilled > 0))
    }
}

#[cfg(test)]
mod tests {
    use super::super::temp_store;
    use super::*;

    async fn write(store: &Store, n: usize) {
        for i in 0..n {
            sqlx::query("INSERT INTO zone_journal (zone, serial, op, added, removed, actor, at) VALUES ($1, $2, 'update', '', '', 'test', 0)")
                .bind(format!("z{i}.test."))
                .bind(i as i64)
                .execute(store.pool())
                .await
                .expect("insert");
        }
    }

    async fn autocheckpoint(store: &Store) -> i64 {
        sqlx::query("PRAGMA wal_autocheckpoint")
            .fetch_one(store.pool())
            .await
            .expect("pragma")
            .try_get(0)
            .expect("value")
    }

    #[tokio::test]
    async fn the_writer_leaves_checkpoints_to_the_checkpointer() {
        let (_dir, store) = temp_store().await;
        assert_eq!(autocheckpoint(&store).await, i64::from(FALLBACK_PAGES));
        let mut c = store.checkpointer().await.expect("open").expect("sqlite");
        write(&store, 50).await;
        let pass = c.pass().await.expect("checkpoint");
        // Fifty commits, each at least one page, and all of them copied.
        assert!(pass.wal_pages >= 50, "{pass:?}");
        assert_eq!(pass.backfilled, pass.wal_pages, "{pass:?}");
        assert_eq!(c.stats().checkpoints(), 1);
        assert_eq!(c.stats().wal_pages(), pass.wal_pages);
        // Nothing new: nothing copied, nothing counted.
        let again = c.pass().await.expect("checkpoint");
        assert_eq!(again, pass);
        assert_eq!(c.stats().checkpoints(), 1);
        // The next write restarts the WAL from its start; the next pass copies it.
        write(&store, 3).await;
        let restarted = c.pass().await.expect("checkpoint");
        assert!(
            restarted.wal_pages < pass.wal_pages,
            "{restarted:?} after {pass:?}"
        );
        assert_eq!(restarted.backfilled, restarted.wal_pages);
        assert_eq!(c.stats().checkpoints(), 2);
        assert_eq!(c.stats().failures(), 0);
    }

    #[tokio::test]
    async fn without_a_checkpointer_the_wal_stays_unchecked_below_the_bound() {
        let (dir, store) = temp_store().await;
        write(&store, 600).await;
        // The writer did not checkpoint: past SQLite's default bound of
        // 1,000 pages, the WAL still holds every commit's pages.
        let wal = std::fs::metadata(dir.path().join("pdm.db-wal"))
            .expect("wal")
            .len();
        assert!(wal > 1_000 * 4096, "{wal}");
        let mut c = store.checkpointer().await.expect("open").expect("sqlite");
        let pass = c.pass().await.expect("checkpoint");
        assert!(pass.wal_pages > 1_000, "{pass:?}");
        assert_eq!(pass.backfilled, pass.wal_pages, "{pass:?}");
    }
}

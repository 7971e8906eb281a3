//! Durable operations: rows claimed by one worker at a time under a lease,
//! and the history of every attempt.
//!
//! Claiming is one transaction: pick the oldest due row whose lease is free
//! (Postgres: `FOR UPDATE SKIP LOCKED`, so replicas never block on or take
//! the same row; SQLite: one writer, and the guarded UPDATE re-checks the
//! lease), take the lease, mark attempts left `running` by a dead worker as
//! `abandoned`, and open a new attempt row.

use super::{now_ms, Dialect, Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

/// Operation states that are final.
pub const FINAL_STATES: [&str; 2] = ["done", "failed"];

/// Attempts kept per operation (older ones are pruned; counters keep the totals).
const KEEP_ATTEMPTS: i64 = 200;

/// One operation row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationRow {
    /// Store identity.
    pub id: i64,
    /// What it does (`byo-api`, `byo-manual`).
    pub kind: String,
    /// What it acts on (a domain).
    pub subject: String,
    /// The next step to run, or `done` / `failed`.
    pub state: String,
    /// Attempts of the current step.
    pub attempts: i64,
    /// Attempts of all steps.
    pub total_attempts: i64,
    /// When it may run next (unix ms).
    pub next_run_at: i64,
    /// When a still-failing step fails the operation (unix ms).
    pub deadline_at: i64,
    /// The last failure, credential-free.
    pub last_error: Option<String>,
    /// JSON payload.
    pub payload: String,
    /// Worker holding the lease.
    pub lease_owner: Option<String>,
    /// Lease expiry (unix ms).
    pub lease_until: Option<i64>,
    /// Created (unix ms).
    pub created_at: i64,
    /// Last change (unix ms).
    pub updated_at: i64,
}

impl OperationRow {
    /// Whether the operation has finished (done or failed).
    pub fn is_final(&self) -> bool {
        FINAL_STATES.contains(&self.state.as_str())
    }
}

/// One recorded attempt.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AttemptRow {
    /// Store identity.
    pub id: i64,
    /// The step it ran.
    pub step: String,
    /// Attempt number within that step.
    pub attempt: i64,
    /// Which worker ran it.
    pub worker: String,
    /// Started (unix ms).
    pub started_at: i64,
    /// Finished (unix ms), if it did.
    pub finished_at: Option<i64>,
    /// `running`, `advanced`, `waiting`, `retry`, `done`, `failed` or `abandoned`.
    pub outcome: String,
    /// What happened, credential-free.
    pub detail: Option<String>,
}

/// A new operation.
#[derive(Debug, Clone)]
pub struct NewOperation<'a> {
    /// Kind.
    pub kind: &'a str,
    /// Subject.
    pub subject: &'a str,
    /// First step.
    pub state: &'a str,
    /// JSON payload.
    pub payload: &'a str,
    /// When it may first run (unix ms).
    pub next_run_at: i64,
    /// Deadline (unix ms).
    pub deadline_at: i64,
}

/// How an attempt ended, applied by [`Store::finish_attempt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    /// Attempt outcome (`advanced`, `waiting`, `retry`, `done`, `failed`).
    pub outcome: &'static str,
    /// The operation's new state (next step, `done` or `failed`).
    pub state: String,
    /// Attempts of the (new) current step.
    pub attempts: i64,
    /// When to run next (unix ms).
    pub next_run_at: i64,
    /// Error to show (None clears it).
    pub last_error: Option<String>,
    /// Attempt detail for the history.
    pub detail: Option<String>,
}

const COLUMNS: &str =
    "id, kind, subject, state, attempts, total_attempts, next_run_at, deadline_at, \
     last_error, payload, lease_owner, lease_until, created_at, updated_at";

fn operation_of(r: &AnyRow) -> Result<OperationRow, StoreError> {
    Ok(OperationRow {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        subject: r.try_get("subject")?,
        state: r.try_get("state")?,
        attempts: r.try_get("attempts")?,
        total_attempts: r.try_get("total_attempts")?,
        next_run_at: r.try_get("next_run_at")?,
        deadline_at: r.try_get("deadline_at")?,
        last_error: r.try_get("last_error")?,
        payload: r.try_get("payload")?,
        lease_owner: r.try_get("lease_owner")?,
        lease_until: r.try_get("lease_until")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Inserts an operation; returns its id.
pub async fn insert_operation(
    conn: &mut AnyConnection,
    op: &NewOperation<'_>,
) -> Result<i64, StoreError> {
    let now = now_ms();
    let row = sqlx::query(
        "INSERT INTO operations (kind, subject, state, attempts, total_attempts, next_run_at, deadline_at, \
         payload, created_at, updated_at) VALUES ($1, $2, $3, 0, 0, $4, $5, $6, $7, $7) RETURNING id",
    )
    .bind(op.kind)
    .bind(op.subject)
    .bind(op.state)
    .bind(op.next_run_at)
    .bind(op.deadline_at)
    .bind(op.payload)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.try_get("id")?)
}

/// Ends the live operation of `kind` about `subject`, if any, as `done`
/// (superseded): for operations that converge to the stored state, the newer
/// one does everything the older would have. Returns how many it ended.
pub async fn supersede_live(
    conn: &mut AnyConnection,
    kind: &str,
    subject: &str,
) -> Result<u64, StoreError> {
    let r = sqlx::query(
        "UPDATE operations SET state = 'done', last_error = 'superseded by a newer operation', \
         lease_owner = NULL, lease_until = NULL, updated_at = $3 \
         WHERE kind = $1 AND subject = $2 AND state NOT IN ('done', 'failed')",
    )
    .bind(kind)
    .bind(subject)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected())
}

/// Deletes every operation (and its attempts) about `subject`; returns how many.
pub async fn delete_operations_for(
    conn: &mut AnyConnection,
    subject: &str,
) -> Result<u64, StoreError> {
    sqlx::query(
        "DELETE FROM operation_attempts WHERE operation_id IN (SELECT id FROM operations WHERE subject = $1)",
    )
    .bind(subject)
    .execute(&mut *conn)
    .await?;
    Ok(sqlx::query("DELETE FROM operations WHERE subject = $1")
        .bind(subject)
        .execute(&mut *conn)
        .await?
        .rows_affected())
}

/// An operation by id.
pub async fn get_operation(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Option<OperationRow>, StoreError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM operations WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(operation_of).transpose()
}

impl Store {
    fn skip_locked(&self) -> &'static str {
        match self.dialect() {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// Claims the oldest due operation whose lease is free for `worker` until
    /// `now + lease_ms`, and opens an attempt for it. Returns the row (with
    /// the incremented attempt counters) and the attempt id.
    pub async fn claim_operation(
        &self,
        worker: &str,
        lease_ms: i64,
    ) -> Result<Option<(OperationRow, i64)>, StoreError> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        let picked = sqlx::query(&format!(
            "SELECT id FROM operations WHERE state NOT IN ('done', 'failed') AND next_run_at <= $1 \
             AND (lease_until IS NULL OR lease_until < $1) ORDER BY next_run_at, id LIMIT 1{}",
            self.skip_locked()
        ))
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(picked) = picked else {
            return Ok(None);
        };
        let id: i64 = picked.try_get("id")?;
        // The lease condition again: the UPDATE is atomic, so of two claimers
        // that picked the same row (SQLite files shared by processes) one wins.
        let taken = sqlx::query(
            "UPDATE operations SET lease_owner = $1, lease_until = $2, attempts = attempts + 1, \
             total_attempts = total_attempts + 1, updated_at = $3 \
             WHERE id = $4 AND state NOT IN ('done', 'failed') AND (lease_until IS NULL OR lease_until < $3)",
        )
        .bind(worker)
        .bind(now + lease_ms)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if taken == 0 {
            return Ok(None);
        }
        sqlx::query(
            "UPDATE operation_attempts SET outcome = 'abandoned', finished_at = $1, \
             detail = 'the worker stopped mid-step; its lease expired' \
             WHERE operation_id = $2 AND outcome = 'running'",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let op = get_operation(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("operation {id} vanished")))?;
        let attempt = sqlx::query(
            "INSERT INTO operation_attempts (operation_id, step, attempt, worker, started_at, outcome) \
             VALUES ($1, $2, $3, $4, $5, 'running') RETURNING id",
        )
        .bind(id)
        .bind(&op.state)
        .bind(op.attempts)
        .bind(worker)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let attempt_id: i64 = attempt.try_get("id")?;
        tx.commit().await?;
        Ok(Some((op, attempt_id)))
    }

    /// Extends `worker`'s lease on operation `id`; false when it no longer holds it.
    pub async fn renew_lease(
        &self,
        id: i64,
        worker: &str,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        Ok(
            sqlx::query(
                "UPDATE operations SET lease_until = $1 WHERE id = $2 AND lease_owner = $3",
            )
            .bind(now + lease_ms)
            .bind(id)
            .bind(worker)
            .execute(self.pool())
            .await?
            .rows_affected()
                > 0,
        )
    }

    /// `(id, lease owner)` of unfinished operations whose lease is held (not
    /// expired at `now`) by an owner starting with `prefix`.
    pub async fn leases_held(
        &self,
        prefix: &str,
        now: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        // `_` in a host name matches any character: a superset, filtered below.
        let like = format!("{}%", prefix.replace('%', "_"));
        let rows = sqlx::query(
            "SELECT id, lease_owner FROM operations WHERE state NOT IN ('done', 'failed') \
             AND lease_owner LIKE $1 AND lease_until >= $2 ORDER BY id",
        )
        .bind(like)
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let owner: Option<String> = r.try_get("lease_owner")?;
            if let Some(o) = owner.filter(|o| o.starts_with(prefix)) {
                out.push((r.try_get("id")?, o));
            }
        }
        Ok(out)
    }

    /// Frees the lease `owner` holds on operation `id` (its process is gone)
    /// and marks that process's running attempt `abandoned` with `detail`.
    /// False when `owner` no longer holds it.
    pub async fn release_lease(
        &self,
        id: i64,
        owner: &str,
        detail: &str,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        let freed = sqlx::query(
            "UPDATE operations SET lease_owner = NULL, lease_until = NULL, updated_at = $1 \
             WHERE id = $2 AND lease_owner = $3 AND state NOT IN ('done', 'failed')",
        )
        .bind(now)
        .bind(id)
        .bind(owner)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if freed {
            sqlx::query(
                "UPDATE operation_attempts SET outcome = 'abandoned', finished_at = $1, detail = $2 \
                 WHERE operation_id = $3 AND worker = $4 AND outcome = 'running'",
            )
            .bind(now)
            .bind(detail)
            .bind(id)
            .bind(owner)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(freed)
    }

    /// Records how attempt `attempt_id` of operation `id` ended and releases
    /// the lease. Returns false when `worker` had lost the lease (the
    /// operation was deleted or taken over); then only the attempt is recorded.
    pub async fn finish_attempt(
        &self,
        id: i64,
        worker: &str,
        attempt_id: i64,
        f: &Finish,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        let held = sqlx::query(
            "UPDATE operations SET state = $1, attempts = $2, next_run_at = $3, last_error = $4, \
             lease_owner = NULL, lease_until = NULL, updated_at = $5 WHERE id = $6 AND lease_owner = $7",
        )
        .bind(&f.state)
        .bind(f.attempts)
        .bind(f.next_run_at)
        .bind(f.last_error.as_deref())
        .bind(now)
        .bind(id)
        .bind(worker)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        let outcome = if held { f.outcome } else { "lease-lost" };
        sqlx::query(
            "UPDATE operation_attempts SET outcome = $1, finished_at = $2, detail = $3 WHERE id = $4",
        )
        .bind(outcome)
        .bind(now)
        .bind(f.detail.as_deref())
        .bind(attempt_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM operation_attempts WHERE operation_id = $1 AND id < \
             (SELECT COALESCE(MIN(id), 0) FROM (SELECT id FROM operation_attempts WHERE operation_id = $1 \
             ORDER BY id DESC LIMIT $2) AS kept)",
        )
        .bind(id)
        .bind(KEEP_ATTEMPTS)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(held)
    }

    /// An operation by id.
    pub async fn operation(&self, id: i64) -> Result<Option<OperationRow>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        get_operation(&mut conn, id).await
    }

    /// The newest `limit` attempts of operation `id`, newest first.
    pub async fn operation_attempts(
        &self,
        id: i64,
        limit: i64,
    ) -> Result<Vec<AttemptRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, step, attempt, worker, started_at, finished_at, outcome, detail \
             FROM operation_attempts WHERE operation_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AttemptRow {
                    id: r.try_get("id")?,
                    step: r.try_get("step")?,
                    attempt: r.try_get("attempt")?,
                    worker: r.try_get("worker")?,
                    started_at: r.try_get("started_at")?,
                    finished_at: r.try_get("finished_at")?,
                    outcome: r.try_get("outcome")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }
}

/// The newest operation about `subject` of one of `kinds`.
pub async fn latest_operation(
    conn: &mut AnyConnection,
    subject: &str,
    kinds: &[&str],
) -> Result<Option<OperationRow>, StoreError> {
    let mut best: Option<OperationRow> = None;
    for kind in kinds {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM operations WHERE subject = $1 AND kind = $2 ORDER BY id DESC LIMIT 1"
        ))
        .bind(subject)
        .bind(*kind)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(r) = row.as_ref().map(operation_of).transpose()? {
            if best.as_ref().is_none_or(|b| r.id > b.id) {
                best = Some(r);
            }
        }
    }
    Ok(best)
}

impl Store {
    /// Claims operation `id` (whatever its next-run time) for `worker` when
    /// it is not final and its lease is free, and opens an attempt: the
    /// inline first try of an operation the API just created.
    pub async fn claim_operation_id(
        &self,
        id: i64,
        worker: &str,
        lease_ms: i64,
    ) -> Result<Option<(OperationRow, i64)>, StoreError> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        let picked = sqlx::query(&format!(
            "SELECT id FROM operations WHERE id = $1 AND state NOT IN ('done', 'failed') \
             AND (lease_until IS NULL OR lease_until < $2){}",
            self.skip_locked()
        ))
        .bind(id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        if picked.is_none() {
            return Ok(None);
        }
        let taken = sqlx::query(
            "UPDATE operations SET lease_owner = $1, lease_until = $2, attempts = attempts + 1, \
             total_attempts = total_attempts + 1, updated_at = $3 \
             WHERE id = $4 AND state NOT IN ('done', 'failed') AND (lease_until IS NULL OR lease_until < $3)",
        )
        .bind(worker)
        .bind(now + lease_ms)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if taken == 0 {
            return Ok(None);
        }
        let op = get_operation(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("operation {id} vanished")))?;
        let attempt = sqlx::query(
            "INSERT INTO operation_attempts (operation_id, step, attempt, worker, started_at, outcome) \
             VALUES ($1, $2, $3, $4, $5, 'running') RETURNING id",
        )
        .bind(id)
        .bind(&op.state)
        .bind(op.attempts)
        .bind(worker)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let attempt_id: i64 = attempt.try_get("id")?;
        tx.commit().await?;
        Ok(Some((op, attempt_id)))
    }
}

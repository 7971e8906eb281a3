//! The durable operations worker (DESIGN.md §4.4).
//!
//! Anything that talks to the outside (a registrar, a parent zone's servers)
//! is an `operations` row whose `state` names the next step. Every replica
//! runs a [`Worker`]: it claims a due row under a lease (store/operations.rs),
//! keeps the lease alive while the step runs, records the attempt and its
//! outcome, and moves the row on. A worker that dies mid-step leaves its
//! lease to expire; the step then runs again elsewhere, so every step must be
//! idempotent (registrar writes read first and skip when equal).
//!
//! The pure part — turning a step's [`StepOutcome`] into the row's next
//! state, with exponential backoff and a deadline — is [`finish_for`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Semaphore;

use crate::config::OperationsConfig;
use crate::store::now_ms;
use crate::store::operations::{Finish, OperationRow};
use crate::store::Store;

/// Steps of one operation running at once per worker.
const CONCURRENCY: usize = 8;
/// Longest a single step may run before it counts as a transient failure.
const STEP_TIMEOUT: Duration = Duration::from_secs(900);

/// What one run of a step came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// The step is done; go on with `next` right away.
    Advance {
        /// The next step.
        next: &'static str,
        /// What was done.
        detail: String,
    },
    /// Nothing is wrong but the outside is not there yet (the parent does
    /// not show the delegation): check again after `after`.
    Wait {
        /// When to look again.
        after: Duration,
        /// What is awaited.
        detail: String,
    },
    /// A transient failure (rate limit, 5xx, timeout): retry with backoff,
    /// or after `after` when the other side said when.
    Retry {
        /// The wait the other side asked for.
        after: Option<Duration>,
        /// What failed.
        error: String,
    },
    /// The operation finished.
    Done {
        /// What was done.
        detail: String,
    },
    /// A permanent failure: retrying cannot help (bad credentials, ...).
    Fail {
        /// Why.
        error: String,
    },
}

/// Runs the steps of one kind of operation.
#[async_trait]
pub trait StepRunner: Send + Sync {
    /// Runs the step `op.state` of `op` once.
    async fn run_step(&self, op: &OperationRow) -> StepOutcome;
}

/// The delay before retry number `attempt` (1-based): `initial * 2^(attempt-1)`, capped.
pub fn backoff(attempt: i64, initial: Duration, max: Duration) -> Duration {
    let exp = u32::try_from(attempt.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    initial.saturating_mul(1u32 << exp.min(20)).min(max)
}

/// The row update for `outcome` of a run of `op` (whose `attempts` counts
/// this run) at `now_ms`.
pub fn finish_for(
    op: &OperationRow,
    outcome: &StepOutcome,
    now_ms: i64,
    cfg: &OperationsConfig,
) -> Finish {
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let late = |next: i64| next > op.deadline_at;
    let failed = |error: String| Finish {
        outcome: "failed",
        state: "failed".into(),
        attempts: op.attempts,
        next_run_at: now_ms,
        last_error: Some(error.clone()),
        detail: Some(error),
    };
    match outcome {
        StepOutcome::Advance { next, detail } => Finish {
            outcome: "advanced",
            state: (*next).to_string(),
            attempts: 0,
            next_run_at: now_ms,
            last_error: None,
            detail: Some(detail.clone()),
        },
        StepOutcome::Done { detail } => Finish {
            outcome: "done",
            state: "done".into(),
            attempts: op.attempts,
            next_run_at: now_ms,
            last_error: None,
            detail: Some(detail.clone()),
        },
        StepOutcome::Fail { error } => failed(error.clone()),
        StepOutcome::Wait { after, detail } => {
            let next = now_ms.saturating_add(ms(*after));
            if late(next) {
                return failed(format!("deadline passed while waiting: {detail}"));
            }
            Finish {
                outcome: "waiting",
                state: op.state.clone(),
                attempts: op.attempts,
                next_run_at: next,
                last_error: Some(detail.clone()),
                detail: Some(detail.clone()),
            }
        }
        StepOutcome::Retry { after, error } => {
            let wait = after.unwrap_or_else(|| {
                backoff(
                    op.attempts,
                    Duration::from_secs(cfg.backoff_initial_secs),
                    Duration::from_secs(cfg.backoff_max_secs),
                )
            });
            let next = now_ms.saturating_add(ms(wait));
            if late(next) {
                return failed(format!(
                    "deadline passed after {} attempts: {error}",
                    op.attempts
                ));
            }
            Finish {
                outcome: "retry",
                state: op.state.clone(),
                attempts: op.attempts,
                next_run_at: next,
                last_error: Some(error.clone()),
                detail: Some(error.clone()),
            }
        }
    }
}

/// Claims and runs due operations.
#[derive(Clone)]
pub struct Worker {
    store: Store,
    config: OperationsConfig,
    id: String,
    runners: HashMap<String, Arc<dyn StepRunner>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker with a fresh identity (`pdm-<pid>-<random>`).
    pub fn new(store: Store, config: OperationsConfig) -> Self {
        let rnd = uuid::Uuid::new_v4().simple().to_string();
        Self {
            store,
            config,
            id: format!("pdm-{}-{}", std::process::id(), &rnd[..8]),
            runners: HashMap::new(),
        }
    }

    /// Runs operations of `kind` with `runner`.
    pub fn with_runner(mut self, kind: &str, runner: Arc<dyn StepRunner>) -> Self {
        self.runners.insert(kind.to_string(), runner);
        self
    }

    /// This worker's identity (lease owner).
    pub fn id(&self) -> &str {
        &self.id
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.config.lease_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    }

    /// Claims due operations and runs them, forever.
    pub async fn run(self) {
        let tick = Duration::from_millis(self.config.tick_ms);
        let slots = Arc::new(Semaphore::new(CONCURRENCY));
        tracing::info!(worker = %self.id, "operations worker started");
        loop {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            match self.store.claim_operation(&self.id, self.lease_ms()).await {
                Ok(Some((op, attempt_id))) => {
                    let me = self.clone();
                    tokio::spawn(async move {
                        me.execute(op, attempt_id).await;
                        drop(permit);
                    });
                }
                Ok(None) => {
                    drop(permit);
                    tokio::time::sleep(tick).await;
                }
                Err(e) => {
                    drop(permit);
                    tracing::warn!(error = %e, "claiming operations failed");
                    tokio::time::sleep(tick).await;
                }
            }
        }
    }

    /// Runs the claimed `op` once and records the outcome.
    async fn execute(&self, op: OperationRow, attempt_id: i64) {
        let lease_ms = self.lease_ms();
        let beat = Duration::from_millis(u64::try_from(lease_ms / 3).unwrap_or(1000).max(200));
        let (store, id, worker) = (self.store.clone(), op.id, self.id.clone());
        let heartbeat = tokio::spawn(async move {
            loop {
                tokio::time::sleep(beat).await;
                match store.renew_lease(id, &worker, lease_ms).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => tracing::warn!(op = id, error = %e, "lease renewal failed"),
                }
            }
        });
        let outcome = match self.runners.get(&op.kind) {
            Some(r) => match tokio::time::timeout(STEP_TIMEOUT, r.run_step(&op)).await {
                Ok(o) => o,
                Err(_) => StepOutcome::Retry {
                    after: None,
                    error: format!("step {} did not finish within {STEP_TIMEOUT:?}", op.state),
                },
            },
            None => StepOutcome::Fail {
                error: format!("no runner for operations of kind {:?}", op.kind),
            },
        };
        heartbeat.abort();
        let finish = finish_for(&op, &outcome, now_ms(), &self.config);
        tracing::info!(
            op = op.id,
            kind = %op.kind,
            subject = %op.subject,
            step = %op.state,
            attempt = op.attempts,
            outcome = finish.outcome,
            next = %finish.state,
            "operation step"
        );
        match self
            .store
            .finish_attempt(op.id, &self.id, attempt_id, &finish)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(
                    op = op.id,
                    "lease lost before the step finished; result not applied"
                )
            }
            Err(e) => {
                tracing::warn!(op = op.id, error = %e, "recording the step failed; it will run again")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(attempts: i64, deadline_at: i64) -> OperationRow {
        OperationRow {
            id: 1,
            kind: "byo-api".into(),
            subject: "acme.com".into(),
            state: "set-ns".into(),
            attempts,
            total_attempts: attempts,
            next_run_at: 0,
            deadline_at,
            last_error: None,
            payload: "{}".into(),
            lease_owner: Some("w".into()),
            lease_until: Some(0),
            created_at: 0,
            updated_at: 0,
        }
    }

    fn cfg() -> OperationsConfig {
        OperationsConfig {
            backoff_initial_secs: 2,
            backoff_max_secs: 60,
            ..OperationsConfig::default()
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let (i, m) = (Duration::from_secs(2), Duration::from_secs(60));
        assert_eq!(backoff(1, i, m), Duration::from_secs(2));
        assert_eq!(backoff(2, i, m), Duration::from_secs(4));
        assert_eq!(backoff(5, i, m), Duration::from_secs(32));
        assert_eq!(backoff(6, i, m), Duration::from_secs(60));
        assert_eq!(backoff(1000, i, m), Duration::from_secs(60));
    }

    #[test]
    fn retry_backs_off_then_fails_at_deadline() {
        let f = finish_for(
            &op(3, 1_000_000),
            &StepOutcome::Retry {
                after: None,
                error: "HTTP 503".into(),
            },
            0,
            &cfg(),
        );
        assert_eq!(
            (f.outcome, f.state.as_str(), f.next_run_at),
            ("retry", "set-ns", 8_000)
        );
        let f = finish_for(
            &op(3, 5_000),
            &StepOutcome::Retry {
                after: None,
                error: "HTTP 503".into(),
            },
            0,
            &cfg(),
        );
        assert_eq!((f.outcome, f.state.as_str()), ("failed", "failed"));
        assert!(f.last_error.unwrap().contains("HTTP 503"));
    }

    #[test]
    fn retry_after_is_honoured() {
        let f = finish_for(
            &op(1, i64::MAX),
            &StepOutcome::Retry {
                after: Some(Duration::from_secs(30)),
                error: "rate limited".into(),
            },
            100,
            &cfg(),
        );
        assert_eq!(f.next_run_at, 30_100);
    }

    #[test]
    fn advance_resets_attempts_and_clears_error() {
        let f = finish_for(
            &op(4, i64::MAX),
            &StepOutcome::Advance {
                next: "verify-parent",
                detail: "NS set".into(),
            },
            7,
            &cfg(),
        );
        assert_eq!(f.state, "verify-parent");
        assert_eq!((f.attempts, f.next_run_at, f.last_error), (0, 7, None));
    }
}

//! The durable operations worker (docs/architecture.md).
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
//!
//! A lease's owner names the process that holds it ([`Instance`]): its node
//! (host name, kernel boot and PID namespace) and its PID and start time.
//! A worker starting on the same node (a restarted pdm, or a sibling process)
//! takes over at once the leases of processes of that node that no longer
//! exist, instead of waiting for them to expire ([`Worker::reclaim_dead_leases`]).
//! Leases of other nodes, or whose holder cannot be proven gone, expire as
//! before (`lease_secs`, renewed by the holder every third of it).

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
/// How often a running worker looks for leases held by dead processes of its node.
const RECLAIM_EVERY: Duration = Duration::from_secs(15);

/// This process as a lease holder: `pdm/<node>/<pid>/<start>/<nonce>/<role>`.
///
/// `node` is `<hostname>:<boot id prefix>:<PID namespace inode>` (Linux), so a
/// PID read from another holder's owner string means this process table only
/// when the node matches; `start` is the process start time (clock ticks
/// since boot, `/proc/<pid>/stat` field 22), so a reused PID is not mistaken
/// for the holder. Without `/proc` the node is unknown and nothing is reclaimed.
#[derive(Debug, Clone)]
pub struct Instance {
    node: Option<String>,
    pid: u32,
    start: u64,
    nonce: String,
}

/// Whether the holder `owner` (an [`Instance::owner`] string) is a process of
/// `node` that is gone: no such PID, a zombie, or another process with that PID.
/// `None` when it cannot tell (another node, an owner in another format).
fn owner_is_gone(
    node: &str,
    owner: &str,
    proc_stat: impl Fn(u32) -> Option<String>,
) -> Option<bool> {
    let rest = owner.strip_prefix("pdm/")?;
    let mut parts = rest.split('/');
    let (n, pid, start) = (parts.next()?, parts.next()?, parts.next()?);
    if n != node {
        return None;
    }
    let pid: u32 = pid.parse().ok()?;
    let start: u64 = start.parse().ok()?;
    Some(match proc_stat(pid).as_deref().and_then(parse_stat) {
        None => true,
        Some((state, started)) => matches!(state, 'Z' | 'X' | 'x') || started != start,
    })
}

/// `(state, starttime)` from the text of `/proc/<pid>/stat`.
fn parse_stat(stat: &str) -> Option<(char, u64)> {
    // The command name (field 2) is in parentheses and may contain anything.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

fn read_proc_stat(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()
}

impl Instance {
    /// This process (computed once).
    pub fn current() -> &'static Instance {
        static ME: std::sync::OnceLock<Instance> = std::sync::OnceLock::new();
        ME.get_or_init(|| {
            let pid = std::process::id();
            let read = |p: &str| {
                std::fs::read_to_string(p)
                    .ok()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
            };
            let start = read_proc_stat(pid)
                .as_deref()
                .and_then(parse_stat)
                .map(|(_, s)| s);
            let pidns = std::fs::read_link("/proc/self/ns/pid").ok().map(|l| {
                l.to_string_lossy()
                    .chars()
                    .filter(char::is_ascii_digit)
                    .collect::<String>()
            });
            let node = match (
                read("/proc/sys/kernel/hostname"),
                read("/proc/sys/kernel/random/boot_id"),
                pidns,
                start,
            ) {
                (Some(host), Some(boot), Some(ns), Some(_)) if !ns.is_empty() => {
                    let clean = |s: &str| s.replace(['/', ':'], "_");
                    Some(format!(
                        "{}:{}:{ns}",
                        clean(&host),
                        clean(&boot.chars().take(8).collect::<String>())
                    ))
                }
                _ => None,
            };
            let rnd = uuid::Uuid::new_v4().simple().to_string();
            Instance {
                node,
                pid,
                start: start.unwrap_or(0),
                nonce: rnd[..8].to_string(),
            }
        })
    }

    /// The lease owner string for `role` (`worker`, `inline`) of this process.
    pub fn owner(&self, role: &str) -> String {
        format!(
            "pdm/{}/{}/{}/{}/{role}",
            self.node.as_deref().unwrap_or("unknown"),
            self.pid,
            self.start,
            self.nonce
        )
    }

    /// Whether `owner` is a process of this node that no longer exists (so its
    /// leases can be taken over now). False when that cannot be proven.
    pub fn holder_is_gone(&self, owner: &str) -> bool {
        let Some(node) = &self.node else {
            return false;
        };
        owner_is_gone(node, owner, read_proc_stat).unwrap_or(false)
    }

    /// The owner prefix shared by every process of this node, if known.
    pub fn node_prefix(&self) -> Option<String> {
        self.node.as_ref().map(|n| format!("pdm/{n}/"))
    }
}
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
    /// A worker named after this process ([`Instance::owner`] with role `worker`).
    pub fn new(store: Store, config: OperationsConfig) -> Self {
        Self {
            store,
            config,
            id: Instance::current().owner("worker"),
            runners: HashMap::new(),
        }
    }

    /// Takes over the leases held by processes of this node that are gone
    /// (a pdm killed mid-step and now restarted), so their operations run
    /// again now rather than when the lease expires. Returns how many.
    pub async fn reclaim_dead_leases(&self) -> usize {
        let me = Instance::current();
        let Some(prefix) = me.node_prefix() else {
            return 0;
        };
        let held = match self.store.leases_held(&prefix, now_ms()).await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "listing leases failed");
                return 0;
            }
        };
        let mut n = 0;
        for (id, owner) in held {
            if owner == self.id || !me.holder_is_gone(&owner) {
                continue;
            }
            let detail = format!(
                "the process holding the lease ({owner}) is gone; taken over by {}",
                self.id
            );
            match self.store.release_lease(id, &owner, &detail).await {
                Ok(true) => {
                    tracing::info!(op = id, holder = %owner, "took over the lease of a dead process");
                    n += 1;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(op = id, error = %e, "releasing a dead lease failed"),
            }
        }
        n
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
        let mut reclaimed_at: Option<tokio::time::Instant> = None;
        loop {
            if reclaimed_at.is_none_or(|t| t.elapsed() >= RECLAIM_EVERY) {
                self.reclaim_dead_leases().await;
                reclaimed_at = Some(tokio::time::Instant::now());
            }
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

    const STAT: &str =
        "4242 (pdm serve) S 1 4242 4242 0 -1 4194560 9 0 0 0 1 2 0 0 20 0 12 0 777 1 2";

    #[test]
    fn stat_parsing_and_dead_holders() {
        assert_eq!(parse_stat(STAT), Some(('S', 777)));
        assert_eq!(
            parse_stat("7 (a) b) c) Z 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 99"),
            Some(('Z', 99))
        );
        let stat = |s: &'static str| move |_pid: u32| Some(s.to_string());
        let none = |_pid: u32| None;
        let owner = "pdm/h:b:1/4242/777/abcd/worker";
        // Alive: same node, the PID runs and started when the owner did.
        assert_eq!(owner_is_gone("h:b:1", owner, stat(STAT)), Some(false));
        // No such process, a zombie, or a reused PID: gone.
        assert_eq!(owner_is_gone("h:b:1", owner, none), Some(true));
        let zombie = "4242 (pdm) Z 1 4242 4242 0 -1 4194560 9 0 0 0 1 2 0 0 20 0 12 0 777 1";
        assert_eq!(owner_is_gone("h:b:1", owner, stat(zombie)), Some(true));
        let reused = "4242 (bash) S 1 4242 4242 0 -1 4194560 9 0 0 0 1 2 0 0 20 0 12 0 900 1";
        assert_eq!(owner_is_gone("h:b:1", owner, stat(reused)), Some(true));
        // Another node, or an owner in another format: cannot tell.
        assert_eq!(owner_is_gone("h:b:2", owner, none), None);
        assert_eq!(owner_is_gone("h:b:1", "pdm-4242-abcd", none), None);
    }

    #[test]
    fn this_process_is_alive() {
        let me = Instance::current();
        let owner = me.owner("worker");
        assert!(owner.starts_with("pdm/"), "{owner}");
        assert!(!me.holder_is_gone(&owner));
        if let Some(prefix) = me.node_prefix() {
            assert!(owner.starts_with(&prefix));
            // The same node, a PID that cannot exist.
            let dead = format!("{prefix}{}/1/x/worker", u32::MAX);
            assert!(me.holder_is_gone(&dead));
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

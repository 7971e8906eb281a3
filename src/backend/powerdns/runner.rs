//! The operation runner: the durable `pdns-commit` / `pdns-release`
//! operations, recorded in the commit's transaction and run inline for a
//! bounded time, then by the operations worker.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;

use super::client::PdnsError;
use super::converge::ConvergeError;
use super::PowerDnsBackend;
use crate::backend::{BackendError, KIND_PDNS_DOMAIN};
use crate::config::PoolConfig;
use crate::model::DomainName;
use crate::operations::{finish_for, StepOutcome, StepRunner};
use crate::store::now_ms;
use crate::store::operations::{self as ops, NewOperation, OperationRow};

/// The one step of a PowerDNS operation.
const STEP_APPLY: &str = "apply";

#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    pool: String,
    subdomain: String,
}

/// Payload of a `pdns-domain` operation: the customer's domain.
#[derive(Debug, Serialize, Deserialize)]
struct DomainPayload {
    zone: String,
}

fn retry_or_fail(e: &PdnsError) -> StepOutcome {
    match e {
        PdnsError::Unavailable(_) | PdnsError::Unauthorized(_) => StepOutcome::Retry {
            after: None,
            error: e.to_string(),
        },
        _ => StepOutcome::Fail {
            error: e.to_string(),
        },
    }
}

impl PowerDnsBackend {
    /// Records the `kind` operation for `child` in the caller's transaction; returns its id.
    pub(super) async fn insert_op(
        &self,
        tx: &mut AnyConnection,
        kind: &str,
        pool: &PoolConfig,
        child: &DomainName,
    ) -> Result<i64, BackendError> {
        let label = child
            .without_dot()
            .strip_suffix(&format!(".{}", pool.domain.without_dot()))
            .unwrap_or_default()
            .to_string();
        let payload = serde_json::to_string(&Payload {
            pool: pool.domain.without_dot(),
            subdomain: label,
        })?;
        self.insert_with(tx, kind, &child.without_dot(), &payload)
            .await
    }

    /// Records a `pdns-domain` operation for the customer's domain `zone`
    /// in the caller's transaction; returns its id.
    pub(super) async fn insert_domain_op(
        &self,
        tx: &mut AnyConnection,
        zone: &DomainName,
    ) -> Result<i64, BackendError> {
        let domain = zone.without_dot().to_ascii_lowercase();
        let payload = serde_json::to_string(&DomainPayload {
            zone: domain.clone(),
        })?;
        // Its own subject: the byo operation bringing the delegation up holds
        // the domain's name, and only one live operation may hold a subject.
        let subject = format!("powerdns:{domain}");
        ops::supersede_live(tx, KIND_PDNS_DOMAIN, &subject).await?;
        self.insert_with(tx, KIND_PDNS_DOMAIN, &subject, &payload)
            .await
    }

    async fn insert_with(
        &self,
        tx: &mut AnyConnection,
        kind: &str,
        subject: &str,
        payload: &str,
    ) -> Result<i64, BackendError> {
        let now = now_ms();
        let ms = |s: u64| i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX);
        // Not due for the worker while the API tries it inline.
        let inline = i64::try_from(self.pdns.inline_ms).unwrap_or(0);
        Ok(ops::insert_operation(
            tx,
            &NewOperation {
                kind,
                subject,
                state: STEP_APPLY,
                payload,
                next_run_at: now + inline,
                deadline_at: now.saturating_add(ms(self.config.operations.deadline_secs)),
            },
        )
        .await?)
    }

    /// Runs operation `id` inline until it is final or `inline_ms` has passed.
    pub(super) async fn run_inline(&self, id: i64) {
        let deadline = Instant::now() + Duration::from_millis(self.pdns.inline_ms);
        let lease_ms =
            i64::try_from(self.config.operations.lease_secs.saturating_mul(1000)).unwrap_or(60_000);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            let claimed = match self
                .store
                .claim_operation_id(id, &self.worker, lease_ms)
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(op = id, error = %e, "inline claim failed");
                    return;
                }
            };
            let Some((op, attempt)) = claimed else {
                // Final, or another worker holds it: wait for it a little.
                match self.store.operation(id).await {
                    Ok(Some(o)) if !o.is_final() => {
                        tokio::time::sleep(Duration::from_millis(50).min(left)).await;
                        continue;
                    }
                    _ => return,
                }
            };
            let outcome = match tokio::time::timeout(left, self.run_step(&op)).await {
                Ok(o) => o,
                Err(_) => StepOutcome::Retry {
                    after: None,
                    error: "PowerDNS did not answer within the inline budget".into(),
                },
            };
            let finish = finish_for(&op, &outcome, now_ms(), &self.config.operations);
            tracing::info!(op = id, kind = %op.kind, subject = %op.subject, outcome = finish.outcome, "operation step (inline)");
            if let Err(e) = self
                .store
                .finish_attempt(id, &self.worker, attempt, &finish)
                .await
            {
                tracing::warn!(op = id, error = %e, "recording the inline step failed");
            }
            if !matches!(outcome, StepOutcome::Advance { .. }) {
                return;
            }
        }
    }
}

#[async_trait]
impl StepRunner for PowerDnsBackend {
    async fn run_step(&self, op: &OperationRow) -> StepOutcome {
        if op.kind == KIND_PDNS_DOMAIN {
            return self.run_domain_step(op).await;
        }
        let p: Payload = match serde_json::from_str(&op.payload) {
            Ok(p) => p,
            Err(e) => {
                return StepOutcome::Fail {
                    error: format!("bad payload: {e}"),
                }
            }
        };
        let Some(pool) = DomainName::parse(&p.pool)
            .ok()
            .and_then(|d| self.config.pool(&d).cloned())
        else {
            return StepOutcome::Fail {
                error: format!("pool {} is no longer configured", p.pool),
            };
        };
        outcome(self.converge_child(&pool, &p.subdomain, false).await)
    }
}

impl PowerDnsBackend {
    async fn run_domain_step(&self, op: &OperationRow) -> StepOutcome {
        let zone = match serde_json::from_str::<DomainPayload>(&op.payload)
            .map_err(|e| e.to_string())
            .and_then(|p| DomainName::parse(&p.zone).map_err(|e| e.to_string()))
        {
            Ok(z) => z,
            Err(e) => {
                return StepOutcome::Fail {
                    error: format!("bad payload: {e}"),
                }
            }
        };
        outcome(self.converge_domain(&zone, false).await)
    }
}

/// A convergence's result as the operation's step outcome.
fn outcome(r: Result<Vec<super::Change>, ConvergeError>) -> StepOutcome {
    match r {
        Ok(ch) if ch.is_empty() => StepOutcome::Done {
            detail: "PowerDNS already matched".into(),
        },
        Ok(ch) => StepOutcome::Done {
            detail: ch
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        },
        Err(ConvergeError::Pdns(e)) => retry_or_fail(&e),
        Err(ConvergeError::Store(e)) => StepOutcome::Retry {
            after: None,
            error: e.to_string(),
        },
        Err(ConvergeError::Desired(e)) => StepOutcome::Fail { error: e },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdns_errors_map_to_retry_or_fail() {
        let r = retry_or_fail(&PdnsError::Unavailable("connection refused".into()));
        assert!(matches!(r, StepOutcome::Retry { after: None, .. }));
        assert!(matches!(
            retry_or_fail(&PdnsError::Unauthorized(401)),
            StepOutcome::Retry { .. }
        ));
        let f = retry_or_fail(&PdnsError::Rejected {
            op: "patch rrsets".into(),
            status: 422,
            message: "Name is out of zone".into(),
        });
        assert!(matches!(f, StepOutcome::Fail { error } if error.contains("out of zone")));
    }
}

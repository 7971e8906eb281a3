//! `[operations]`: the durable operations worker.

use super::ConfigError;
use serde::Deserialize;

/// The durable operations worker: leases, backoff, deadlines.
#[derive(Debug, Clone)]
pub struct OperationsConfig {
    /// How long a claimed operation is leased to one worker before another may take it over.
    pub lease_secs: u64,
    /// How often the worker looks for due operations, in milliseconds.
    pub tick_ms: u64,
    /// First retry delay after a transient failure, in seconds (doubles per attempt).
    pub backoff_initial_secs: u64,
    /// Longest retry delay, in seconds.
    pub backoff_max_secs: u64,
    /// How long an operation may take in total before it fails, in seconds.
    pub deadline_secs: u64,
}

impl Default for OperationsConfig {
    fn default() -> Self {
        Self {
            lease_secs: 60,
            tick_ms: 1000,
            backoff_initial_secs: 5,
            backoff_max_secs: 600,
            deadline_secs: 7 * 86_400,
        }
    }
}

/// `[operations]` as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOperations {
    lease_secs: Option<u64>,
    tick_ms: Option<u64>,
    backoff_initial_secs: Option<u64>,
    backoff_max_secs: Option<u64>,
    deadline_secs: Option<u64>,
}

/// `[operations]` resolved and checked.
pub(super) fn resolve_operations(raw: RawOperations) -> Result<OperationsConfig, ConfigError> {
    let d = OperationsConfig::default();
    let o = OperationsConfig {
        lease_secs: raw.lease_secs.unwrap_or(d.lease_secs),
        tick_ms: raw.tick_ms.unwrap_or(d.tick_ms),
        backoff_initial_secs: raw.backoff_initial_secs.unwrap_or(d.backoff_initial_secs),
        backoff_max_secs: raw.backoff_max_secs.unwrap_or(d.backoff_max_secs),
        deadline_secs: raw.deadline_secs.unwrap_or(d.deadline_secs),
    };
    if o.lease_secs < 2
        || !(10..=60_000).contains(&o.tick_ms)
        || o.backoff_initial_secs == 0
        || o.backoff_max_secs < o.backoff_initial_secs
        || o.deadline_secs == 0
    {
        return Err(ConfigError::Invalid(
            "operations: lease_secs >= 2, tick_ms 10..=60000, 0 < backoff_initial_secs <= backoff_max_secs, deadline_secs > 0".into(),
        ));
    }
    Ok(o)
}

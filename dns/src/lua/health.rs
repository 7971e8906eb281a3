//! The shared health checker: one registry of check targets per process,
//! read synchronously by LUA evaluations and refreshed by one background
//! task ([`super::health_io`]). This file holds the registry and the pure
//! up/down state machine; all network IO lives in `health_io.rs`.
//!
//! PowerDNS semantics (`IsUpOracle`, pdns/lua-record.cc) kept here:
//! - a target is registered by the first evaluation that asks about it and
//!   is checked in the background every interval, however many records or
//!   queries use it;
//! - until its first check completes a target is **down** (verified on
//!   4.7.3: the first answer applies `backupSelector`); set
//!   [`HealthConfig::assume_up_before_first_check`] to report it up instead;
//! - `minimumFailures` (5.0): a failing target stays up until that many
//!   consecutive failures (PowerDNS exposes "down, but not enough times yet"
//!   as up even right after registration);
//! - targets nobody asked about for `expire_after` are dropped.
//!
//! Distinct check-relevant options are distinct targets; selector options
//! are not part of the key (PowerDNS keys on every option, which only
//! duplicates work).

use rustc_hash::FxHashMap;
use serde::Serialize;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Settings of the background checker.
#[derive(Debug, Clone)]
pub struct HealthConfig {
    /// Default seconds between checks of one target (`lua-health-checks-interval`, 5 s).
    pub interval: Duration,
    /// Drop targets not used for this long (`lua-health-checks-expire-delay`, 3600 s).
    pub expire_after: Duration,
    /// Checks in flight at once.
    pub max_concurrent: usize,
    /// Checks started per second at most (governor quota).
    pub checks_per_second: u32,
    /// Report never-checked targets as up (PowerDNS reports them down).
    pub assume_up_before_first_check: bool,
    /// Most response bytes read from an HTTP check when `byteslimit` is unset.
    pub max_body_bytes: usize,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            interval: Duration::from_secs(5),
            expire_after: Duration::from_secs(3600),
            max_concurrent: 64,
            checks_per_second: 200,
            assume_up_before_first_check: false,
            max_body_bytes: 1 << 20,
        }
    }
}

/// What to probe.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum CheckKind {
    /// TCP connect to an address and port (`ifportup`).
    Tcp(SocketAddr),
    /// HTTP(S) GET of `url`, connecting to `addr` when given (`ifurlup`),
    /// or resolving the URL's host normally (`ifurlextup`).
    Http {
        /// The URL fetched.
        url: String,
        /// The address connected to instead of resolving the host.
        addr: Option<IpAddr>,
    },
}

/// The options that change how a target is checked (part of its identity).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub(super) struct CheckOptions {
    /// Connect / request timeout (`timeout`, seconds, default 2).
    pub(super) timeout_secs: u64,
    /// Local address to bind (`source`).
    pub(super) source: Option<IpAddr>,
    /// Body must contain this (`stringmatch`).
    pub(super) stringmatch: Option<String>,
    /// User-Agent (`useragent`).
    pub(super) useragent: Option<String>,
    /// Stop reading the body after this many bytes (`byteslimit`, 0 = default cap).
    pub(super) byteslimit: usize,
    /// Per-target interval in seconds (`interval`, 5.0; 0 = default).
    pub(super) interval_secs: u64,
    /// Consecutive failures before down (`minimumFailures`, 5.0; ≥ 1).
    pub(super) minimum_failures: u32,
}

impl CheckOptions {
    /// Read the check-relevant keys of a PowerDNS options table.
    pub(super) fn from_opts(opts: &HashMap<String, String>) -> Result<CheckOptions, String> {
        let num = |k: &str, d: u64| -> u64 {
            opts.get(k)
                .map_or(d, |v| u64::try_from(super::addr::atoi(v)).unwrap_or(0))
        };
        let source = match opts.get("source") {
            Some(s) => Some(
                super::addr::parse_combo(s)
                    .ok_or_else(|| format!("invalid source address {s:?}"))?,
            ),
            None => None,
        };
        Ok(CheckOptions {
            timeout_secs: num("timeout", 2),
            source,
            stringmatch: opts.get("stringmatch").cloned(),
            useragent: opts.get("useragent").cloned(),
            byteslimit: num("byteslimit", 0) as usize,
            interval_secs: num("interval", 0),
            minimum_failures: num("minimumFailures", 1).max(1) as u32,
        })
    }
}

/// One health-check target: what to probe and how.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct TargetKey {
    /// What to probe.
    pub(super) kind: CheckKind,
    /// How.
    pub(super) opts: CheckOptions,
}

/// Up/down as the pure state machine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Not checked yet.
    Unknown,
    /// Reachable (or failing fewer than `minimumFailures` times).
    Up,
    /// Unreachable.
    Down,
}

impl Health {
    fn to_u8(self) -> u8 {
        match self {
            Health::Unknown => 0,
            Health::Up => 1,
            Health::Down => 2,
        }
    }
    fn from_u8(v: u8) -> Health {
        match v {
            1 => Health::Up,
            2 => Health::Down,
            _ => Health::Unknown,
        }
    }
}

/// The next state after one check result (`IsUpOracle::setStatus`).
///
/// Success resets the failure count; a failure is `Down` once
/// `consecutive_failures` reaches `minimum_failures`, `Up` before that.
pub(super) fn next_health(
    ok: bool,
    consecutive_failures: u32,
    minimum_failures: u32,
) -> (Health, u32) {
    if ok {
        (Health::Up, 0)
    } else {
        let f = consecutive_failures.saturating_add(1);
        let h = if f < minimum_failures.max(1) {
            Health::Up
        } else {
            Health::Down
        };
        (h, f)
    }
}

/// Details of a target that change on every check.
#[derive(Debug, Clone, Default)]
pub(super) struct Detail {
    pub(super) since: Option<chrono::DateTime<chrono::Utc>>,
    pub(super) last_checked: Option<chrono::DateTime<chrono::Utc>>,
    pub(super) last_error: Option<String>,
    pub(super) latency: Option<Duration>,
    pub(super) failures: u32,
    pub(super) checks: u64,
}

/// Live state of one target.
#[derive(Debug)]
pub(super) struct TargetState {
    pub(super) health: AtomicU8,
    pub(super) in_flight: AtomicBool,
    pub(super) last_access: Mutex<Instant>,
    pub(super) next_due: Mutex<Instant>,
    pub(super) detail: Mutex<Detail>,
    /// An HTTP client pinned to this target, built on first use.
    pub(super) client: std::sync::OnceLock<reqwest::Client>,
}

impl TargetState {
    fn new(now: Instant) -> Self {
        TargetState {
            health: AtomicU8::new(Health::Unknown.to_u8()),
            in_flight: AtomicBool::new(false),
            last_access: Mutex::new(now),
            next_due: Mutex::new(now),
            detail: Mutex::new(Detail::default()),
            client: std::sync::OnceLock::new(),
        }
    }

    pub(super) fn health(&self) -> Health {
        Health::from_u8(self.health.load(Ordering::Acquire))
    }
}

/// Counters for metrics.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) checks: AtomicU64,
    pub(super) failures: AtomicU64,
    pub(super) registered: AtomicU64,
    pub(super) expired: AtomicU64,
    pub(super) transitions: AtomicU64,
}

/// Counter values for metrics export.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct HealthCounters {
    /// Checks completed.
    pub checks_total: u64,
    /// Checks that failed.
    pub check_failures_total: u64,
    /// Targets ever registered.
    pub targets_registered_total: u64,
    /// Targets dropped for disuse.
    pub targets_expired_total: u64,
    /// Up/down transitions.
    pub transitions_total: u64,
    /// Targets currently known.
    pub targets: u64,
    /// Targets currently up.
    pub up: u64,
    /// Targets currently down.
    pub down: u64,
}

/// One target as shown by `GET /api/v1/health-checks`.
#[derive(Debug, Clone, Serialize)]
pub struct TargetStatus {
    /// `tcp` or `http`.
    pub kind: &'static str,
    /// `addr:port` or the URL.
    pub target: String,
    /// The address an HTTP check connects to, if pinned.
    pub address: Option<String>,
    /// `unknown`, `up` or `down`.
    pub status: Health,
    /// When the current status began (RFC 3339).
    pub since: Option<String>,
    /// When the last check finished (RFC 3339).
    pub last_checked: Option<String>,
    /// Why the last check failed.
    pub last_error: Option<String>,
    /// Duration of the last check in milliseconds.
    pub latency_ms: Option<f64>,
    /// Consecutive failures.
    pub consecutive_failures: u32,
    /// Checks run.
    pub checks: u64,
    /// Seconds between checks.
    pub interval_secs: u64,
}

pub(super) struct Inner {
    pub(super) config: HealthConfig,
    /// FxHash: keys come from zone content, hashed on every LUA query.
    pub(super) targets: RwLock<FxHashMap<TargetKey, Arc<TargetState>>>,
    pub(super) wake: tokio::sync::Notify,
    pub(super) counters: Counters,
    pub(super) started: AtomicBool,
}

/// Handle to the process-wide health checker (cheap to clone).
#[derive(Clone)]
pub struct HealthChecker {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for HealthChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthChecker")
            .field("targets", &self.target_count())
            .finish()
    }
}

impl Default for HealthChecker {
    fn default() -> Self {
        HealthChecker::new(HealthConfig::default())
    }
}

impl HealthChecker {
    /// A checker with no targets; call [`HealthChecker::start`] to run checks.
    pub fn new(config: HealthConfig) -> Self {
        HealthChecker {
            inner: Arc::new(Inner {
                config,
                targets: RwLock::new(FxHashMap::default()),
                wake: tokio::sync::Notify::new(),
                counters: Counters::default(),
                started: AtomicBool::new(false),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &HealthConfig {
        &self.inner.config
    }

    /// Whether `key` counts as up now (the selection's reading of
    /// [`HealthChecker::status`]).
    #[cfg(test)]
    pub(super) fn is_up(&self, key: &TargetKey) -> bool {
        match self.status(key) {
            Health::Up => true,
            Health::Down => false,
            Health::Unknown => self.inner.config.assume_up_before_first_check,
        }
    }

    /// Tri-state status of `key` (`Unknown` before its first check);
    /// registers it on first use and wakes the background task so its
    /// first check starts at once.
    ///
    /// Never blocks on IO: this is called from inside Lua evaluations.
    pub(super) fn status(&self, key: &TargetKey) -> Health {
        let now = Instant::now();
        {
            let map = match self.inner.targets.read() {
                Ok(map) => map,
                Err(poisoned) => poisoned.into_inner(),
            };
            if let Some(state) = map.get(key) {
                if let Ok(mut t) = state.last_access.lock() {
                    *t = now;
                }
                return state.health();
            }
        }
        let state = {
            let mut map = match self.inner.targets.write() {
                Ok(m) => m,
                Err(p) => p.into_inner(),
            };
            let s = map
                .entry(key.clone())
                .or_insert_with(|| {
                    self.inner
                        .counters
                        .registered
                        .fetch_add(1, Ordering::Relaxed);
                    Arc::new(TargetState::new(now))
                })
                .clone();
            drop(map);
            self.inner.wake.notify_one();
            s
        };
        if let Ok(mut t) = state.last_access.lock() {
            *t = now;
        }
        state.health()
    }

    /// Current status of every target, sorted by target text.
    pub fn snapshot(&self) -> Vec<TargetStatus> {
        let entries: Vec<(TargetKey, Arc<TargetState>)> = match self.inner.targets.read() {
            Ok(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Err(p) => p
                .into_inner()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        let mut out: Vec<TargetStatus> = entries
            .into_iter()
            .map(|(key, state)| {
                let d = state.detail.lock().map(|d| d.clone()).unwrap_or_default();
                let (kind, target, address) = match &key.kind {
                    CheckKind::Tcp(sa) => ("tcp", sa.to_string(), None),
                    CheckKind::Http { url, addr } => {
                        ("http", url.clone(), addr.map(|a| a.to_string()))
                    }
                };
                TargetStatus {
                    kind,
                    target,
                    address,
                    status: state.health(),
                    since: d.since.map(|t| t.to_rfc3339()),
                    last_checked: d.last_checked.map(|t| t.to_rfc3339()),
                    last_error: d.last_error,
                    latency_ms: d.latency.map(|l| l.as_secs_f64() * 1000.0),
                    consecutive_failures: d.failures,
                    checks: d.checks,
                    interval_secs: self.interval_for(&key.opts).as_secs(),
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.target, &a.address).cmp(&(&b.target, &b.address)));
        out
    }

    /// Counter values for metrics.
    pub fn counters(&self) -> HealthCounters {
        let c = &self.inner.counters;
        let (mut up, mut down, mut targets) = (0, 0, 0);
        if let Ok(m) = self.inner.targets.read() {
            for s in m.values() {
                targets += 1;
                match s.health() {
                    Health::Up => up += 1,
                    Health::Down => down += 1,
                    Health::Unknown => {}
                }
            }
        }
        HealthCounters {
            checks_total: c.checks.load(Ordering::Relaxed),
            check_failures_total: c.failures.load(Ordering::Relaxed),
            targets_registered_total: c.registered.load(Ordering::Relaxed),
            targets_expired_total: c.expired.load(Ordering::Relaxed),
            transitions_total: c.transitions.load(Ordering::Relaxed),
            targets,
            up,
            down,
        }
    }

    /// Number of registered targets.
    pub(super) fn target_count(&self) -> usize {
        self.inner.targets.read().map(|m| m.len()).unwrap_or(0)
    }

    /// The interval that applies to a target.
    pub(super) fn interval_for(&self, opts: &CheckOptions) -> Duration {
        if opts.interval_secs > 0 {
            Duration::from_secs(opts.interval_secs)
        } else {
            self.inner.config.interval
        }
    }

    /// Record one check result (used by the IO loop; pure otherwise).
    pub(super) fn record_result(
        &self,
        key: &TargetKey,
        state: &TargetState,
        result: Result<(), String>,
        took: Duration,
    ) {
        let c = &self.inner.counters;
        c.checks.fetch_add(1, Ordering::Relaxed);
        if result.is_err() {
            c.failures.fetch_add(1, Ordering::Relaxed);
        }
        let Ok(mut d) = state.detail.lock() else {
            return;
        };
        let (health, failures) = next_health(result.is_ok(), d.failures, key.opts.minimum_failures);
        let before = state.health();
        let now = chrono::Utc::now();
        if before != health {
            d.since = Some(now);
            if before != Health::Unknown {
                c.transitions.fetch_add(1, Ordering::Relaxed);
            }
            let target = match &key.kind {
                CheckKind::Tcp(sa) => sa.to_string(),
                CheckKind::Http { url, addr } => format!("{url} via {addr:?}"),
            };
            match &result {
                Ok(()) => tracing::info!(%target, "LUA health check: target UP"),
                Err(e) => tracing::info!(%target, error = %e, "LUA health check: target DOWN"),
            }
        }
        d.failures = failures;
        d.checks += 1;
        d.last_checked = Some(now);
        d.latency = Some(took);
        d.last_error = result.err();
        state.health.store(health.to_u8(), Ordering::Release);
    }

    /// Targets to check now, marked in flight; drops expired ones.
    pub(super) fn take_due(
        &self,
        now: Instant,
    ) -> (Vec<(TargetKey, Arc<TargetState>)>, Option<Instant>) {
        let expire = self.inner.config.expire_after;
        let mut due = Vec::new();
        let mut next: Option<Instant> = None;
        let mut expired = Vec::new();
        {
            let map = match self.inner.targets.read() {
                Ok(m) => m,
                Err(p) => p.into_inner(),
            };
            for (key, state) in map.iter() {
                let last_access = state.last_access.lock().map(|t| *t).unwrap_or(now);
                let checked = state.health() != Health::Unknown;
                if checked && now.saturating_duration_since(last_access) > expire {
                    expired.push(key.clone());
                    continue;
                }
                let Ok(mut nd) = state.next_due.lock() else {
                    continue;
                };
                if *nd <= now && !state.in_flight.swap(true, Ordering::AcqRel) {
                    *nd = now + self.interval_for(&key.opts);
                    due.push((key.clone(), state.clone()));
                }
                next = Some(next.map_or(*nd, |n: Instant| n.min(*nd)));
            }
        }
        if !expired.is_empty() {
            if let Ok(mut map) = self.inner.targets.write() {
                for k in expired {
                    map.remove(&k);
                    self.inner.counters.expired.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        (due, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(port: u16) -> TargetKey {
        TargetKey {
            kind: CheckKind::Tcp(SocketAddr::from(([127, 0, 0, 1], port))),
            opts: CheckOptions {
                timeout_secs: 2,
                minimum_failures: 1,
                ..Default::default()
            },
        }
    }

    #[test]
    fn hysteresis() {
        assert_eq!(next_health(true, 5, 3), (Health::Up, 0));
        assert_eq!(next_health(false, 0, 1), (Health::Down, 1));
        assert_eq!(next_health(false, 0, 3), (Health::Up, 1));
        assert_eq!(next_health(false, 1, 3), (Health::Up, 2));
        assert_eq!(next_health(false, 2, 3), (Health::Down, 3));
        assert_eq!(next_health(false, 0, 0), (Health::Down, 1));
    }

    #[test]
    fn registers_once_and_reports_down_until_checked() {
        let hc = HealthChecker::default();
        let k = tcp(1);
        assert!(!hc.is_up(&k));
        assert!(!hc.is_up(&k));
        assert_eq!(hc.target_count(), 1);
        assert_eq!(hc.counters().targets_registered_total, 1);
        let up = HealthChecker::new(HealthConfig {
            assume_up_before_first_check: true,
            ..Default::default()
        });
        assert!(up.is_up(&k));
    }

    #[test]
    fn results_and_expiry() {
        let hc = HealthChecker::new(HealthConfig {
            expire_after: Duration::from_millis(0),
            ..Default::default()
        });
        let k = tcp(2);
        hc.is_up(&k);
        let now = Instant::now();
        let (due, _) = hc.take_due(now);
        assert_eq!(due.len(), 1);
        // In flight: not handed out twice.
        assert!(hc.take_due(now).0.is_empty());
        let (key, state) = &due[0];
        hc.record_result(key, state, Ok(()), Duration::from_millis(1));
        state.in_flight.store(false, Ordering::Release);
        assert!(hc.is_up(&k));
        let snap = hc.snapshot();
        assert_eq!(snap.len(), 1);
        assert_eq!(snap[0].status, Health::Up);
        assert_eq!(snap[0].target, "127.0.0.1:2");
        hc.record_result(key, state, Err("refused".into()), Duration::from_millis(1));
        assert!(!hc.is_up(&k));
        assert_eq!(hc.counters().transitions_total, 1);
        // Unused past expire_after (0 here): dropped on the next round.
        std::thread::sleep(Duration::from_millis(2));
        hc.take_due(Instant::now());
        assert_eq!(hc.target_count(), 0);
        assert_eq!(hc.counters().targets_expired_total, 1);
    }

    #[test]
    fn options_parse() {
        let mut o = HashMap::new();
        o.insert("timeout".to_string(), "3".to_string());
        o.insert("minimumFailures".to_string(), "0".to_string());
        o.insert("selector".to_string(), "all".to_string());
        let c = CheckOptions::from_opts(&o).unwrap();
        assert_eq!(c.timeout_secs, 3);
        assert_eq!(c.minimum_failures, 1);
        o.insert("source".to_string(), "nope".to_string());
        assert!(CheckOptions::from_opts(&o).is_err());
    }
}

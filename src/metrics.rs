//! `/metrics`: every counter pdm keeps, in the Prometheus text format.
//!
//! Counters that change on requests live here as prometheus-client
//! families (HTTP requests, registrar calls); the DNS server, the caches and
//! the LUA engine keep their own atomics (the data plane cannot depend on
//! this room) and are read at each scrape, as are the figures only the
//! database knows ([`Counts`], gathered by the API handler). Names follow
//! the Prometheus conventions: a `pdm_` prefix, base units, `_total` on
//! counters, no label that grows with tenants.

use crate::lua::LuaObserver;
use crate::server::cache::PacketCache;
use crate::server::metrics::{DnsMetrics, Transport, TransportSnapshot, LATENCY_BUCKETS};
use crate::server::Handler;
use crate::store::checkpoint::CheckpointStats;
use crate::store::stats::Counts;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;

/// The `Content-Type` of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Latency buckets (seconds) of the HTTP API: a `check` is ~0.2 ms, a
/// commit that waits to be served tens of ms, a registrar call seconds.
const HTTP_BUCKETS: [f64; 14] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Labels of an HTTP request: the route template (never the raw path, which
/// names tenants), the method and the status code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    method: String,
    code: String,
}

/// Labels of the latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: String,
}

/// Labels of a registrar call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RegistrarLabels {
    registrar: String,
    operation: String,
    outcome: String,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn http_histogram() -> Histogram {
    Histogram::new(HTTP_BUCKETS)
}

/// Counts registrar calls (cheap to clone; clones count into the same family).
#[derive(Clone, Debug, Default)]
pub struct RegistrarCalls {
    calls: Family<RegistrarLabels, Counter>,
}

impl RegistrarCalls {
    /// Count one call of `operation` at `registrar` that ended as `outcome`
    /// (`ok` or the error's kind).
    pub fn count(&self, registrar: &str, operation: &str, outcome: &str) {
        self.calls
            .get_or_create(&RegistrarLabels {
                registrar: registrar.to_string(),
                operation: operation.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }
}

/// Labels of an RFC 2136 UPDATE answered.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpdateLabels {
    rcode: String,
}

/// Counts RFC 2136 UPDATEs by response code (cheap to clone).
#[derive(Clone, Debug, Default)]
pub struct UpdateCalls {
    calls: Family<UpdateLabels, Counter>,
}

impl UpdateCalls {
    /// Count one UPDATE answered with `rcode` (`NOERROR`, `REFUSED`...).
    pub fn count(&self, rcode: &str) {
        self.calls
            .get_or_create(&UpdateLabels {
                rcode: rcode.to_string(),
            })
            .inc();
    }
}

/// The process's metrics: request families plus handles on the counters
/// other rooms keep.
#[derive(Clone, Debug)]
pub struct Metrics {
    http_requests: Family<HttpLabels, Counter>,
    http_duration: HistogramFamily,
    registrar: RegistrarCalls,
    updates: UpdateCalls,
    dns: Option<DnsHandle>,
    sig_cache: Option<Arc<crate::dnssec::SigCache>>,
    checkpoints: Option<CheckpointStats>,
    lua: Option<LuaObserver>,
}

/// What the DNS server counts: its query counters and its packet cache.
#[derive(Clone, Debug)]
struct DnsHandle {
    queries: Arc<DnsMetrics>,
    cache: Option<Arc<PacketCache>>,
    rrl: Option<Arc<crate::server::rrl::Rrl>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Empty families and no data-plane handles.
    pub fn new() -> Self {
        Metrics {
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(http_histogram),
            registrar: RegistrarCalls::default(),
            updates: UpdateCalls::default(),
            dns: None,
            sig_cache: None,
            checkpoints: None,
            lua: None,
        }
    }

    /// Also read the DNS server's counters and packet cache through `handler`.
    pub fn with_dns(mut self, handler: Handler) -> Self {
        self.dns = Some(DnsHandle {
            queries: handler.metrics().clone(),
            cache: handler.packet_cache().cloned(),
            rrl: handler.rrl().cloned(),
        });
        self
    }

    /// Also read the signature cache.
    pub fn with_sig_cache(mut self, cache: Arc<crate::dnssec::SigCache>) -> Self {
        self.sig_cache = Some(cache);
        self
    }

    /// Also read the SQLite WAL checkpointer.
    pub fn with_checkpoints(mut self, stats: CheckpointStats) -> Self {
        self.checkpoints = Some(stats);
        self
    }

    /// Also read the LUA engines and their health checker.
    pub fn with_lua(mut self, lua: LuaObserver) -> Self {
        self.lua = Some(lua);
        self
    }

    /// The registrar-call counter, for the registrar adapters' wrapper.
    pub fn registrar_calls(&self) -> RegistrarCalls {
        self.registrar.clone()
    }

    /// The RFC 2136 UPDATE counter, for the update handler.
    pub fn update_calls(&self) -> UpdateCalls {
        self.updates.clone()
    }

    /// Count one HTTP request answered with `code` after `took`.
    pub fn http_request(&self, route: &str, method: &str, code: u16, took: Duration) {
        self.http_requests
            .get_or_create(&HttpLabels {
                route: route.to_string(),
                method: method.to_string(),
                code: code.to_string(),
            })
            .inc();
        self.http_duration
            .get_or_create(&RouteLabels {
                route: route.to_string(),
                method: method.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// The whole exposition, with `store` read just before.
    pub fn render(&self, store: Counts) -> Result<String, std::fmt::Error> {
        let mut registry = Registry::default();
        registry.register(
            "pdm_http_requests",
            "HTTP API requests by route template, method and status code.",
            self.http_requests.clone(),
        );
        registry.register(
            "pdm_http_request_duration_seconds",
            "HTTP API request latency, from the first byte read to the answer.",
            self.http_duration.clone(),
        );
        registry.register(
            "pdm_registrar_requests",
            "Calls to registrar APIs by registrar, operation and outcome.",
            self.registrar.calls.clone(),
        );
        registry.register(
            "pdm_dns_updates",
            "RFC 2136 UPDATE requests answered, by response code.",
            self.updates.calls.clone(),
        );
        registry.register_collector(Box::new(Scrape {
            dns: self.dns.clone(),
            sig_cache: self.sig_cache.clone(),
            checkpoints: self.checkpoints.clone(),
            lua: self.lua.clone(),
            store,
        }));
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)?;
        Ok(out)
    }
}

/// The figures read at one scrape.
#[derive(Debug)]
struct Scrape {
    dns: Option<DnsHandle>,
    sig_cache: Option<Arc<crate::dnssec::SigCache>>,
    checkpoints: Option<CheckpointStats>,
    lua: Option<LuaObserver>,
    store: Counts,
}

/// Writes one metric without labels.
fn single(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: &impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    let m = encoder.encode_descriptor(name, help, None, metric.metric_type())?;
    metric.encode(m)
}

/// Writes one metric family from `(labels, value)` rows.
fn family<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    rows: &[(L, i64)],
) -> Result<(), std::fmt::Error> {
    let mut m = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in rows {
        let series = m.encode_family(labels)?;
        match kind {
            MetricType::Counter => {
                ConstCounter::new(u64::try_from(*value).unwrap_or(0)).encode(series)?
            }
            _ => ConstGauge::new(*value).encode(series)?,
        }
    }
    Ok(())
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let e = &mut encoder;
        single(e, "pdm_build_info", "pdm's version (always 1).", &BuildInfo)?;
        if let Some(handler) = &self.dns {
            encode_dns(e, handler)?;
        }
        if let Some(cache) = &self.sig_cache {
            single(
                e,
                "pdm_dnssec_signature_cache_hits",
                "RRSIGs served from the signature cache.",
                &ConstCounter::new(cache.hits()),
            )?;
            single(
                e,
                "pdm_dnssec_signature_cache_misses",
                "RRSIGs computed (not cached yet, or due for renewal).",
                &ConstCounter::new(cache.signatures_computed()),
            )?;
            single(
                e,
                "pdm_dnssec_signature_cache_entries",
                "RRSIGs held in the signature cache.",
                &ConstGauge::new(i64::try_from(cache.len()).unwrap_or(i64::MAX)),
            )?;
        }
        if let Some(lua) = &self.lua {
            encode_lua(e, lua)?;
        }
        if let Some(c) = &self.checkpoints {
            encode_checkpoints(e, c)?;
        }
        encode_store(e, &self.store)
    }
}

fn encode_checkpoints(
    e: &mut DescriptorEncoder,
    c: &CheckpointStats,
) -> Result<(), std::fmt::Error> {
    let gauge = |n: u64| ConstGauge::new(i64::try_from(n).unwrap_or(i64::MAX));
    single(
        e,
        "pdm_store_wal_checkpoints",
        "SQLite WAL checkpoints that copied committed pages into the database file.",
        &ConstCounter::new(c.checkpoints()),
    )?;
    single(
        e,
        "pdm_store_wal_checkpoint_failures",
        "SQLite WAL checkpoints that failed (logged; the writer checkpoints past its bound).",
        &ConstCounter::new(c.failures()),
    )?;
    single(
        e,
        "pdm_store_wal_pages",
        "Pages in the SQLite WAL at the last checkpoint.",
        &gauge(c.wal_pages()),
    )?;
    single(
        e,
        "pdm_store_wal_pages_pending",
        "Of those, pages the last checkpoint could not copy yet (held by a reader).",
        &gauge(c.wal_pages().saturating_sub(c.backfilled())),
    )
}

/// `pdm_build_info{version}`.
#[derive(Debug)]
struct BuildInfo;

impl EncodeMetric for BuildInfo {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder,
    ) -> Result<(), std::fmt::Error> {
        let labels = [("version", env!("CARGO_PKG_VERSION"))];
        ConstGauge::new(1i64).encode(encoder.encode_family(&labels)?)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
}

fn encode_dns(e: &mut DescriptorEncoder, dns: &DnsHandle) -> Result<(), std::fmt::Error> {
    let snap = dns.queries.snapshot();
    let both: [(Transport, &TransportSnapshot); 2] =
        [(Transport::Udp, &snap.udp), (Transport::Tcp, &snap.tcp)];
    let mut m = e.encode_descriptor(
        "pdm_dns_queries",
        "DNS queries answered, by transport, response code and query type.",
        None,
        MetricType::Counter,
    )?;
    for (transport, s) in both {
        for (rcode, qtype, n) in s.queries() {
            let labels = [
                ("transport", transport.as_str()),
                ("rcode", rcode),
                ("qtype", qtype),
            ];
            ConstCounter::new(n).encode(m.encode_family(&labels)?)?;
        }
    }
    let mut m = e.encode_descriptor(
        "pdm_dns_answer_duration_seconds",
        "Time from reading a DNS query to sending its answer.",
        None,
        MetricType::Histogram,
    )?;
    for (transport, s) in both {
        let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(s.buckets.iter().copied())
            .collect();
        let labels = [("transport", transport.as_str())];
        m.encode_family(&labels)?
            .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                s.latency_seconds,
                s.answers(),
                &buckets,
                None,
            )?;
    }
    encode_hostile(e, dns, &snap)?;
    if let Some(cache) = &dns.cache {
        let (entries, capacity) = (cache.len(), cache.capacity());
        single(
            e,
            "pdm_dns_packet_cache_hits",
            "UDP answers served from the packet cache.",
            &ConstCounter::new(snap.udp.cache_hits),
        )?;
        single(
            e,
            "pdm_dns_packet_cache_misses",
            "Cacheable UDP questions not in the packet cache.",
            &ConstCounter::new(snap.udp.cache_misses),
        )?;
        single(
            e,
            "pdm_dns_packet_cache_entries",
            "Encoded answers held by the packet cache.",
            &ConstGauge::new(i64::try_from(entries).unwrap_or(i64::MAX)),
        )?;
        single(
            e,
            "pdm_dns_packet_cache_capacity_entries",
            "The most encoded answers the packet cache holds.",
            &ConstGauge::new(i64::try_from(capacity).unwrap_or(i64::MAX)),
        )?;
    }
    Ok(())
}

/// Rate limiting, cookies and TCP connections (docs/hostile-traffic.md).
fn encode_hostile(
    e: &mut DescriptorEncoder,
    dns: &DnsHandle,
    snap: &crate::server::metrics::DnsSnapshot,
) -> Result<(), std::fmt::Error> {
    use crate::server::metrics::{CookieSeen, RrlAction, TcpClose};
    use crate::server::rrl::ResponseClass;
    if let Some(rrl) = &dns.rrl {
        let mut m = e.encode_descriptor(
            "pdm_dns_rrl_limited",
            "UDP responses held back by response rate limiting, by response class and action (dropped, or slipped as TC=1/BADCOOKIE).",
            None,
            MetricType::Counter,
        )?;
        for class in ResponseClass::ALL {
            for action in RrlAction::ALL {
                let labels = [("class", class.as_str()), ("action", action.as_str())];
                ConstCounter::new(snap.udp.rate_limited(class, action))
                    .encode(m.encode_family(&labels)?)?;
            }
        }
        single(
            e,
            "pdm_dns_rrl_table_bytes",
            "Memory of the rate-limiting table (fixed at start).",
            &ConstGauge::new(i64::try_from(rrl.memory_bytes()).unwrap_or(i64::MAX)),
        )?;
    }
    let mut m = e.encode_descriptor(
        "pdm_dns_cookies",
        "Requests carrying a DNS COOKIE option, by transport and what it presented.",
        None,
        MetricType::Counter,
    )?;
    for (transport, s) in [("udp", &snap.udp), ("tcp", &snap.tcp)] {
        for seen in CookieSeen::ALL {
            let labels = [("transport", transport), ("cookie", seen.as_str())];
            ConstCounter::new(s.cookies(seen)).encode(m.encode_family(&labels)?)?;
        }
    }
    let tcp = &dns.queries.tcp_connections;
    single(
        e,
        "pdm_dns_tcp_connections_open",
        "DNS-over-TCP connections open now.",
        &ConstGauge::new(i64::try_from(tcp.open()).unwrap_or(i64::MAX)),
    )?;
    single(
        e,
        "pdm_dns_tcp_connections_accepted",
        "DNS-over-TCP connections accepted.",
        &ConstCounter::new(tcp.accepted()),
    )?;
    let mut m = e.encode_descriptor(
        "pdm_dns_tcp_connections_closed",
        "DNS-over-TCP connections the server closed or refused, by reason.",
        None,
        MetricType::Counter,
    )?;
    for why in TcpClose::ALL {
        ConstCounter::new(tcp.closed_for(why))
            .encode(m.encode_family(&[("reason", why.as_str())])?)?;
    }
    Ok(())
}

fn encode_lua(e: &mut DescriptorEncoder, lua: &LuaObserver) -> Result<(), std::fmt::Error> {
    let stats = lua.stats();
    let health = lua.health_counters();
    single(
        e,
        "pdm_lua_evaluations",
        "LUA record evaluations.",
        &ConstCounter::new(stats.evaluations),
    )?;
    single(
        e,
        "pdm_lua_errors",
        "LUA record evaluations that failed (answered SERVFAIL or retried off the reactor).",
        &ConstCounter::new(stats.errors),
    )?;
    single(
        e,
        "pdm_lua_timeouts",
        "LUA record evaluations stopped by the instruction, time or memory limit.",
        &ConstCounter::new(stats.limit_errors),
    )?;
    single(
        e,
        "pdm_lua_health_checks",
        "Health checks of LUA record targets completed.",
        &ConstCounter::new(health.checks_total),
    )?;
    single(
        e,
        "pdm_lua_health_check_failures",
        "Health checks of LUA record targets that failed.",
        &ConstCounter::new(health.check_failures_total),
    )?;
    let unknown = health.targets.saturating_sub(health.up + health.down);
    let rows: Vec<([(&str, &str); 1], i64)> = [("up", health.up), ("down", health.down)]
        .into_iter()
        .chain([("unknown", unknown)])
        .map(|(state, n)| ([("state", state)], i64::try_from(n).unwrap_or(i64::MAX)))
        .collect();
    family(
        e,
        "pdm_lua_health_targets",
        "Health-check targets of LUA records by state.",
        MetricType::Gauge,
        &rows,
    )
}

fn encode_store(e: &mut DescriptorEncoder, s: &Counts) -> Result<(), std::fmt::Error> {
    let rows: Vec<_> = s
        .allocations
        .iter()
        .map(|(pool, state, n)| ([("pool", pool.as_str()), ("state", state.as_str())], *n))
        .collect();
    family(
        e,
        "pdm_allocations",
        "Pool allocations by pool and state (released and expired rows are history).",
        MetricType::Gauge,
        &rows,
    )?;
    let rows: Vec<_> = s
        .operations
        .iter()
        .map(|(kind, state, n)| ([("kind", kind.as_str()), ("state", state.as_str())], *n))
        .collect();
    family(
        e,
        "pdm_operations",
        "Durable operations by kind and state (the step to run next, or done/failed).",
        MetricType::Gauge,
        &rows,
    )?;
    single(
        e,
        "pdm_journal_head",
        "The newest change journal entry id.",
        &ConstGauge::new(s.journal_head),
    )?;
    let lag: Vec<_> = s
        .replicas
        .iter()
        .map(|(id, applied, _)| {
            (
                [("replica", id.as_str())],
                s.journal_head.saturating_sub(*applied).max(0),
            )
        })
        .collect();
    family(
        e,
        "pdm_journal_lag_entries",
        "Journal entries a live replica does not serve yet.",
        MetricType::Gauge,
        &lag,
    )?;
    let mut m = e.encode_descriptor(
        "pdm_replica_heartbeat_age_seconds",
        "Time since each live replica's last heartbeat.",
        None,
        MetricType::Gauge,
    )?;
    for (id, _, age_ms) in &s.replicas {
        let labels = [("replica", id.as_str())];
        ConstGauge::new(*age_ms as f64 / 1000.0).encode(m.encode_family(&labels)?)?;
    }
    let rows: Vec<_> = s
        .keys
        .iter()
        .map(|(role, state, n)| ([("role", role.as_str()), ("state", state.as_str())], *n))
        .collect();
    family(
        e,
        "pdm_dnssec_keys",
        "DNSSEC keys over every zone, by role and state.",
        MetricType::Gauge,
        &rows,
    )?;
    let steps: Vec<(String, String, i64)> = s
        .rollovers
        .iter()
        .map(|(kind, step, n)| (kind.clone(), step.to_string(), *n))
        .collect();
    let rows: Vec<_> = steps
        .iter()
        .map(|(kind, step, n)| ([("kind", kind.as_str()), ("step", step.as_str())], *n))
        .collect();
    family(
        e,
        "pdm_dnssec_rollovers",
        "Key rollovers in progress by kind and step.",
        MetricType::Gauge,
        &rows,
    )?;
    if let Some(at) = s.next_rollover_ms {
        single(
            e,
            "pdm_dnssec_next_rollover_step_timestamp_seconds",
            "When the earliest pending rollover step may run (unix time).",
            &ConstGauge::new(at as f64 / 1000.0),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_families_with_bounded_labels() {
        let m = Metrics::new();
        m.http_request(
            "/api/v1/pool/{domain}/check",
            "GET",
            200,
            Duration::from_millis(1),
        );
        m.registrar_calls().count("dynadot", "set_ns", "ok");
        let text = m
            .render(Counts {
                journal_head: 10,
                replicas: vec![("r1".into(), 7, 500)],
                ..Counts::default()
            })
            .expect("renders");
        assert!(text.contains(
            "pdm_http_requests_total{route=\"/api/v1/pool/{domain}/check\",method=\"GET\",code=\"200\"} 1"
        ), "{text}");
        assert!(text.contains("pdm_http_request_duration_seconds_bucket{route=\"/api/v1/pool/{domain}/check\",method=\"GET\",le=\"0.001\"} 1"), "{text}");
        assert!(text.contains(
            "pdm_registrar_requests_total{registrar=\"dynadot\",operation=\"set_ns\",outcome=\"ok\"} 1"
        ), "{text}");
        assert!(
            text.contains("pdm_journal_lag_entries{replica=\"r1\"} 3"),
            "{text}"
        );
        assert!(text.contains("pdm_build_info{version="), "{text}");
    }
}

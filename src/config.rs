//! One typed configuration: a TOML file, overridden by CLI flags / `PDM_*`
//! environment variables. Parsed and validated once at start.

use crate::model::DomainName;
use crate::zone::template::{RecordTemplate, TemplateTarget};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

/// A configuration that cannot be used, with the reason for the operator.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// Path given.
        path: String,
        /// IO error.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown keys.
    #[error("invalid config {path}: {message}")]
    Parse {
        /// Path given.
        path: String,
        /// Parser message.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// A nameserver that serves pdm's zones.
#[derive(Debug, Clone)]
pub struct Nameserver {
    /// Host name, e.g. `ns1.example.test.`.
    pub name: DomainName,
    /// Addresses, used for glue when the name is inside a pool zone.
    pub addresses: Vec<IpAddr>,
}

/// A pool of subdomains that pdm hands out.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// The pool domain, e.g. `example.test.`.
    pub domain: DomainName,
    /// How long a reservation is held.
    pub reservation_ttl_secs: u64,
    /// Whether `check` answers without a token.
    pub public_check: bool,
    /// Records written into each committed child zone.
    pub template: Vec<RecordTemplate>,
    /// How the pool zone and its children are signed (`dnssec_algorithm` /
    /// `dnssec_denial` per pool override the `[dnssec]` defaults).
    pub signing: crate::dnssec::SigningProfile,
    /// The pool's own `dnssec_algorithm`, when set (it then wins over
    /// `[backend] algorithm` for the keys PowerDNS makes too).
    pub dnssec_algorithm: Option<crate::dnssec::KeyAlgorithm>,
    /// The pool's own `dnssec_denial`, when set (with the PowerDNS backend
    /// `nsec3` then wins over `[backend] nsec3`; `compact` is refused there).
    pub dnssec_denial: Option<crate::dnssec::DenialMode>,
}

/// The whole configuration, resolved.
#[derive(Debug, Clone)]
pub struct Config {
    /// HTTP API listen address.
    pub http: SocketAddr,
    /// DNS listen address (UDP and TCP).
    pub dns: SocketAddr,
    /// sqlx database URL.
    pub database: String,
    /// SOA RNAME.
    pub hostmaster: DomainName,
    /// NS of every zone pdm creates.
    pub nameservers: Vec<Nameserver>,
    /// Managed pools.
    pub pools: Vec<PoolConfig>,
    /// DNSSEC signing settings.
    pub dnssec: DnssecConfig,
    /// Whether this is the built-in demo configuration.
    pub demo: bool,
    /// Registrar API endpoints (`[registrars]`).
    pub registrars: RegistrarsConfig,
    /// How delegations are checked at the parent (`[delegation]`).
    pub delegation: DelegationConfig,
    /// The durable operations worker (`[operations]`).
    pub operations: OperationsConfig,
    /// LUA records (`[lua]`).
    pub lua: LuaSettings,
    /// Where zones live: the embedded store or a PowerDNS server (`[backend]`).
    pub backend: BackendConfig,
    /// Encoded UDP answers kept for reuse (`packet_cache`, 0 turns it off).
    pub packet_cache: usize,
}

/// Default size of the packet cache (answers).
pub const DEFAULT_PACKET_CACHE: usize = 100_000;

/// Which zone backend pool commits and releases go through (`[backend] kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendKind {
    /// The store; pdm's own DNS server serves it (default).
    #[default]
    Embedded,
    /// A PowerDNS Authoritative server driven over its HTTP API.
    PowerDns,
}

/// The `[backend]` section.
#[derive(Debug, Clone, Default)]
pub struct BackendConfig {
    /// Which backend.
    pub kind: BackendKind,
    /// PowerDNS settings (present when `kind` is `powerdns`).
    pub powerdns: Option<PowerDnsConfig>,
}

/// An API key that never shows up in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key read from the environment or a file.
    pub fn from_secret(key: String) -> Self {
        ApiKey(key.trim().to_string())
    }

    /// The key, for the `X-API-Key` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// The kind PowerDNS zones are created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PdnsZoneKind {
    /// Replicated by the database (no NOTIFY/AXFR).
    Native,
    /// Primary: secondaries get NOTIFY and transfer the zone.
    Master,
}

impl PdnsZoneKind {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PdnsZoneKind::Native => "Native",
            PdnsZoneKind::Master => "Master",
        }
    }
}

/// How pdm drives PowerDNS (`[backend]` with `kind = "powerdns"`).
#[derive(Debug, Clone)]
pub struct PowerDnsConfig {
    /// Base URL of the webserver, e.g. `http://127.0.0.1:8081`.
    pub url: String,
    /// `X-API-Key` (from `api_key`, `api_key_file` or `PDM_POWERDNS_API_KEY`).
    pub api_key: ApiKey,
    /// Server id in API paths (`localhost`).
    pub server_id: String,
    /// Kind of the zones pdm creates.
    pub zone_kind: PdnsZoneKind,
    /// ALSO-NOTIFY targets set on every zone pdm creates.
    pub also_notify: Vec<String>,
    /// Use NSEC3 (`1 0 0 -`, RFC 9276) rather than NSEC.
    pub nsec3: bool,
    /// Key algorithm of the CSKs pdm has PowerDNS create (PowerDNS spelling,
    /// e.g. `ecdsa256`) for pools without their own `dnssec_algorithm`;
    /// `None`: `[dnssec] algorithm`.
    pub algorithm: Option<String>,
    /// Timeout of one API request, in milliseconds.
    pub timeout_ms: u64,
    /// How long commit/release try their operation inline before answering `pending`.
    pub inline_ms: u64,
    /// Seconds between periodic reconciliations (0: off).
    pub reconcile_interval_secs: u64,
}

/// LUA records: the per-zone switch and the engine's limits (`[lua]`).
#[derive(Debug, Clone)]
pub struct LuaSettings {
    /// Serve LUA records (`lua_records`, default true: on for every zone
    /// that has LUA records).
    pub lua_records: bool,
    /// Per-zone overrides of `lua_records` (`[lua.zones]`, FQDN keys).
    pub zones: std::collections::BTreeMap<String, bool>,
    /// Lua VM instructions one evaluation may run.
    pub max_instructions: u64,
    /// Wall-clock budget of one evaluation, in milliseconds (default 10).
    pub timeout_ms: u64,
    /// Queries evaluating LUA records at once, more wait their turn
    /// (default: the number of CPUs, so runaway records cannot starve the
    /// threads answering static queries of more than that).
    pub concurrency: usize,
    /// Seconds between health checks of one target.
    pub health_interval_secs: u64,
    /// Report never-checked targets as up (PowerDNS reports them down).
    pub assume_up_before_first_check: bool,
    /// MaxMind databases for the geo functions (none: they fail).
    pub geoip_databases: Vec<std::path::PathBuf>,
    /// Evaluate on tokio's blocking pool (default) instead of inline on the
    /// reactor thread (cheaper per query; a runaway record then holds a
    /// reactor thread for up to `timeout_ms`).
    pub offload: bool,
    /// With `offload`: first try each evaluation inline with this budget
    /// (µs; 0 = always offload); only evaluations exceeding it are offloaded.
    pub inline_budget_us: u64,
}

impl Default for LuaSettings {
    fn default() -> Self {
        LuaSettings {
            lua_records: true,
            zones: std::collections::BTreeMap::new(),
            max_instructions: 1_000_000,
            timeout_ms: 10,
            concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            health_interval_secs: 5,
            assume_up_before_first_check: false,
            geoip_databases: Vec::new(),
            offload: true,
            inline_budget_us: 1000,
        }
    }
}

impl LuaSettings {
    /// Whether LUA records of zone `fqdn` are served.
    pub fn enabled_for(&self, fqdn: &str) -> bool {
        let key = fqdn.trim_end_matches('.').to_ascii_lowercase();
        self.zones
            .iter()
            .find(|(z, _)| z.trim_end_matches('.').eq_ignore_ascii_case(&key))
            .map_or(self.lua_records, |(_, on)| *on)
    }
}

/// Registrar API endpoints: the real APIs unless overridden (tests, the offline demo).
#[derive(Debug, Clone, Default)]
pub struct RegistrarsConfig {
    /// Start the five fake registrars on 127.0.0.1 and use them (`--fake-registrars`).
    pub fake: bool,
    /// Per-registrar base URL overrides (`[registrars.<name>] base_url = ...`).
    pub base_urls: std::collections::BTreeMap<pdm_adapters::RegistrarId, String>,
    /// Per-request timeout towards registrars, in seconds.
    pub timeout_secs: u64,
}

/// Where and how the parent of a byo domain is asked about its delegation.
#[derive(Debug, Clone)]
pub struct DelegationConfig {
    /// The parent zone's servers to ask directly (tests, private setups);
    /// empty: found iteratively from `root_hints`.
    pub parent_servers: Vec<SocketAddr>,
    /// Root server addresses the iterative parent lookup starts from.
    pub root_hints: Vec<SocketAddr>,
    /// Timeout of one DNS query, in milliseconds.
    pub query_timeout_ms: u64,
    /// How often a delegation that does not match yet is checked again, in seconds.
    pub poll_interval_secs: u64,
}

/// IPv4 addresses of a.root-servers.net .. m.root-servers.net (IANA root hints).
pub const ROOT_HINTS: [&str; 13] = [
    "198.41.0.4",
    "170.247.170.2",
    "192.33.4.12",
    "199.7.91.13",
    "192.203.230.10",
    "192.5.5.241",
    "192.112.36.4",
    "198.97.190.53",
    "192.36.148.17",
    "192.58.128.30",
    "193.0.14.129",
    "199.7.83.42",
    "202.12.27.33",
];

impl Default for DelegationConfig {
    fn default() -> Self {
        Self {
            parent_servers: Vec::new(),
            root_hints: ROOT_HINTS
                .iter()
                .filter_map(|a| format!("{a}:53").parse().ok())
                .collect(),
            query_timeout_ms: 2000,
            poll_interval_secs: 60,
        }
    }
}

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

/// How pdm signs the zones it creates.
#[derive(Debug, Clone)]
pub struct DnssecConfig {
    /// Whether pool and child zones are signed.
    pub enabled: bool,
    /// Key algorithm for new keys.
    pub algorithm: crate::dnssec::KeyAlgorithm,
    /// KSK + ZSK instead of one CSK.
    pub split_keys: bool,
    /// Denial of existence for new zones.
    pub denial: crate::dnssec::DenialMode,
    /// TTL of DNSKEY/CDS/CDNSKEY/NSEC3PARAM and of the DS pdm writes in parents.
    pub dnskey_ttl: u32,
    /// Extra wait added to every rollover step for secondaries and caches to catch up.
    pub propagation_delay_secs: u32,
    /// File holding the 32-byte key that encrypts private keys at rest,
    /// used when `PDM_SECRET_KEY` is not set.
    pub secret_key_file: Option<std::path::PathBuf>,
}

impl Default for DnssecConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            algorithm: crate::dnssec::KeyAlgorithm::Ecdsap256sha256,
            split_keys: false,
            denial: crate::dnssec::DenialMode::Nsec3,
            dnskey_ttl: 3600,
            propagation_delay_secs: 60,
            secret_key_file: None,
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    http: Option<String>,
    dns: Option<String>,
    database: Option<String>,
    hostmaster: Option<String>,
    #[serde(default)]
    nameservers: Vec<RawNameserver>,
    #[serde(default)]
    pools: Vec<RawPool>,
    dnssec: Option<RawDnssec>,
    registrars: Option<RawRegistrars>,
    delegation: Option<RawDelegation>,
    operations: Option<RawOperations>,
    lua: Option<RawLua>,
    backend: Option<RawBackend>,
    packet_cache: Option<usize>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBackend {
    kind: Option<String>,
    url: Option<String>,
    api_key: Option<String>,
    api_key_file: Option<String>,
    server_id: Option<String>,
    zone_kind: Option<String>,
    #[serde(default)]
    also_notify: Vec<String>,
    nsec3: Option<bool>,
    algorithm: Option<String>,
    timeout_ms: Option<u64>,
    inline_ms: Option<u64>,
    reconcile_interval_secs: Option<u64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLua {
    lua_records: Option<bool>,
    #[serde(default)]
    zones: std::collections::BTreeMap<String, bool>,
    max_instructions: Option<u64>,
    timeout_ms: Option<u64>,
    concurrency: Option<usize>,
    health_interval_secs: Option<u64>,
    assume_up_before_first_check: Option<bool>,
    #[serde(default)]
    geoip_databases: Vec<String>,
    offload: Option<bool>,
    inline_budget_us: Option<u64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRegistrars {
    fake: Option<bool>,
    timeout_secs: Option<u64>,
    cloudflare: Option<RawRegistrar>,
    namecheap: Option<RawRegistrar>,
    godaddy: Option<RawRegistrar>,
    ovh: Option<RawRegistrar>,
    dynadot: Option<RawRegistrar>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRegistrar {
    base_url: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDelegation {
    parent_servers: Option<Vec<String>>,
    root_hints: Option<Vec<String>>,
    query_timeout_ms: Option<u64>,
    poll_interval_secs: Option<u64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawOperations {
    lease_secs: Option<u64>,
    tick_ms: Option<u64>,
    backoff_initial_secs: Option<u64>,
    backoff_max_secs: Option<u64>,
    deadline_secs: Option<u64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDnssec {
    enabled: Option<bool>,
    algorithm: Option<String>,
    split_keys: Option<bool>,
    denial: Option<String>,
    dnskey_ttl: Option<u32>,
    propagation_delay_secs: Option<u32>,
    secret_key_file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNameserver {
    name: String,
    #[serde(default)]
    addresses: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPool {
    domain: String,
    reservation_ttl_secs: Option<u64>,
    public_check: Option<bool>,
    template: Option<Vec<RawTemplateRecord>>,
    dnssec_algorithm: Option<String>,
    dnssec_denial: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplateRecord {
    name: String,
    #[serde(rename = "type")]
    rtype: Option<String>,
    ttl: Option<u32>,
    /// `lb`, `console-lb`, or literal rdata.
    value: Option<String>,
}

/// The demo configuration used when no `--config` is given.
pub const DEMO_CONFIG: &str = include_str!("../zones/demo.toml");

/// Command-line / environment overrides, applied over the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--http` / `PDM_HTTP`.
    pub http: Option<String>,
    /// `--dns` / `PDM_DNS`.
    pub dns: Option<String>,
    /// `--database` / `PDM_DATABASE_URL`.
    pub database: Option<String>,
    /// `--fake-registrars` / `PDM_FAKE_REGISTRARS`.
    pub fake_registrars: bool,
    /// `--packet-cache` / `PDM_PACKET_CACHE`.
    pub packet_cache: Option<usize>,
}

impl Config {
    /// Load `path` (or the demo config when `None`) and apply overrides.
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let (text, label, demo) = match path {
            Some(p) => (
                std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.display().to_string(),
                    source,
                })?,
                p.display().to_string(),
                false,
            ),
            None => (DEMO_CONFIG.to_string(), "<demo>".to_string(), true),
        };
        let raw: RawConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: label,
            message: e.to_string(),
        })?;
        Self::resolve(raw, overrides, demo)
    }

    /// Parse TOML text (used by tests).
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: "<string>".into(),
            message: e.to_string(),
        })?;
        Self::resolve(raw, &Overrides::default(), false)
    }

    fn resolve(raw: RawConfig, o: &Overrides, demo: bool) -> Result<Self, ConfigError> {
        let addr =
            |what: &str, v: Option<&String>, default: &str| -> Result<SocketAddr, ConfigError> {
                let s = v.map(String::as_str).unwrap_or(default);
                s.parse().map_err(|_| {
                    ConfigError::Invalid(format!("{what} address {s:?} is not host:port"))
                })
            };
        let http = addr(
            "http",
            o.http.as_ref().or(raw.http.as_ref()),
            "127.0.0.1:8080",
        )?;
        let dns = addr("dns", o.dns.as_ref().or(raw.dns.as_ref()), "127.0.0.1:5353")?;
        let database = o
            .database
            .clone()
            .or(raw.database)
            .unwrap_or_else(|| "sqlite://pdm.db".to_string());
        let name = |what: &str, s: &str| {
            DomainName::parse(s).map_err(|e| ConfigError::Invalid(format!("{what}: {e}")))
        };
        let hostmaster = name(
            "hostmaster",
            raw.hostmaster
                .as_deref()
                .unwrap_or("hostmaster.pdm.invalid"),
        )?;
        let mut nameservers = Vec::new();
        for ns in raw.nameservers {
            let mut addresses = Vec::new();
            for a in &ns.addresses {
                addresses.push(a.parse().map_err(|_| {
                    ConfigError::Invalid(format!("nameserver {}: bad address {a:?}", ns.name))
                })?);
            }
            nameservers.push(Nameserver {
                name: name("nameserver", &ns.name)?,
                addresses,
            });
        }
        if nameservers.is_empty() {
            return Err(ConfigError::Invalid(
                "at least one [[nameservers]] entry is required".into(),
            ));
        }
        let dnssec = resolve_dnssec(raw.dnssec.unwrap_or_default())?;
        let mut pools: Vec<PoolConfig> = Vec::new();
        for p in raw.pools {
            let domain = name("pool", &p.domain)?;
            if pools.iter().any(|q| q.domain == domain) {
                return Err(ConfigError::Invalid(format!("pool {domain} listed twice")));
            }
            let ttl = p.reservation_ttl_secs.unwrap_or(600);
            if ttl == 0 || ttl > 7 * 86400 {
                return Err(ConfigError::Invalid(format!(
                    "pool {domain}: reservation_ttl_secs must be 1..=604800"
                )));
            }
            let template = match p.template {
                None => RecordTemplate::default_set(),
                Some(list) => list
                    .into_iter()
                    .map(|r| parse_template(&domain, r))
                    .collect::<Result<_, _>>()?,
            };
            let dnssec_algorithm = p
                .dnssec_algorithm
                .as_deref()
                .map(|a| parse_algorithm("pool dnssec_algorithm", a))
                .transpose()?;
            let dnssec_denial = p
                .dnssec_denial
                .as_deref()
                .map(|m| parse_denial("pool dnssec_denial", m))
                .transpose()?;
            pools.push(PoolConfig {
                domain,
                reservation_ttl_secs: ttl,
                public_check: p.public_check.unwrap_or(true),
                template,
                dnssec_algorithm,
                dnssec_denial,
                signing: pool_signing(&dnssec, dnssec_algorithm, dnssec_denial),
            });
        }
        let mut registrars = resolve_registrars(raw.registrars.unwrap_or_default())?;
        registrars.fake |= o.fake_registrars;
        let delegation = resolve_delegation(raw.delegation.unwrap_or_default())?;
        let operations = resolve_operations(raw.operations.unwrap_or_default())?;
        let lua = resolve_lua(raw.lua.unwrap_or_default())?;
        let backend = resolve_backend(
            raw.backend.unwrap_or_default(),
            std::env::var("PDM_POWERDNS_API_KEY").ok(),
        )?;
        if backend.kind == BackendKind::PowerDns {
            check_powerdns_denial(&pools)?;
        }
        Ok(Config {
            http,
            dns,
            database,
            hostmaster,
            nameservers,
            pools,
            dnssec,
            demo,
            registrars,
            delegation,
            operations,
            lua,
            backend,
            packet_cache: o
                .packet_cache
                .or(raw.packet_cache)
                .unwrap_or(DEFAULT_PACKET_CACHE),
        })
    }

    /// The pool with this domain, if managed.
    pub fn pool(&self, domain: &DomainName) -> Option<&PoolConfig> {
        self.pools.iter().find(|p| &p.domain == domain)
    }
}

fn resolve_registrars(raw: RawRegistrars) -> Result<RegistrarsConfig, ConfigError> {
    use pdm_adapters::RegistrarId as R;
    let mut base_urls = std::collections::BTreeMap::new();
    for (id, r) in [
        (R::Cloudflare, raw.cloudflare),
        (R::Namecheap, raw.namecheap),
        (R::Godaddy, raw.godaddy),
        (R::Ovh, raw.ovh),
        (R::Dynadot, raw.dynadot),
    ] {
        if let Some(url) = r.and_then(|r| r.base_url) {
            let url = url.trim().trim_end_matches('/').to_string();
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Invalid(format!(
                    "registrars.{id}.base_url {url:?}: want http:// or https://"
                )));
            }
            base_urls.insert(id, url);
        }
    }
    let timeout_secs = raw.timeout_secs.unwrap_or(30);
    if !(1..=600).contains(&timeout_secs) {
        return Err(ConfigError::Invalid(
            "registrars.timeout_secs must be 1..=600".into(),
        ));
    }
    Ok(RegistrarsConfig {
        fake: raw.fake.unwrap_or(false),
        base_urls,
        timeout_secs,
    })
}

fn resolve_delegation(raw: RawDelegation) -> Result<DelegationConfig, ConfigError> {
    let d = DelegationConfig::default();
    let addrs = |what: &str, list: Vec<String>| -> Result<Vec<SocketAddr>, ConfigError> {
        list.iter()
            .map(|a| {
                a.parse::<SocketAddr>()
                    .or_else(|_| a.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                    .map_err(|_| {
                        ConfigError::Invalid(format!("delegation.{what}: {a:?} is not IP[:port]"))
                    })
            })
            .collect()
    };
    let parent_servers = addrs("parent_servers", raw.parent_servers.unwrap_or_default())?;
    let root_hints = match raw.root_hints {
        Some(list) => addrs("root_hints", list)?,
        None => d.root_hints,
    };
    let query_timeout_ms = raw.query_timeout_ms.unwrap_or(d.query_timeout_ms);
    let poll_interval_secs = raw.poll_interval_secs.unwrap_or(d.poll_interval_secs);
    if !(50..=30_000).contains(&query_timeout_ms) || !(1..=86_400).contains(&poll_interval_secs) {
        return Err(ConfigError::Invalid(
            "delegation: query_timeout_ms must be 50..=30000, poll_interval_secs 1..=86400".into(),
        ));
    }
    Ok(DelegationConfig {
        parent_servers,
        root_hints,
        query_timeout_ms,
        poll_interval_secs,
    })
}

fn resolve_operations(raw: RawOperations) -> Result<OperationsConfig, ConfigError> {
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

fn resolve_backend(raw: RawBackend, env_key: Option<String>) -> Result<BackendConfig, ConfigError> {
    let bad = |m: &str| ConfigError::Invalid(format!("backend: {m}"));
    let kind = match raw.kind.as_deref().map(str::trim) {
        None | Some("embedded") => BackendKind::Embedded,
        Some("powerdns") => BackendKind::PowerDns,
        Some(other) => return Err(bad(&format!("kind {other:?}: want embedded or powerdns"))),
    };
    if kind == BackendKind::Embedded {
        return Ok(BackendConfig {
            kind,
            powerdns: None,
        });
    }
    let url = raw
        .url
        .map(|u| u.trim().trim_end_matches('/').to_string())
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        .ok_or_else(|| bad("url (http:// or https://) is required for kind = \"powerdns\""))?;
    let key = match (
        env_key.filter(|k| !k.trim().is_empty()),
        raw.api_key,
        raw.api_key_file,
    ) {
        (Some(k), _, _) => k,
        (None, Some(k), None) => k,
        (None, None, Some(f)) => {
            std::fs::read_to_string(&f).map_err(|e| bad(&format!("api_key_file {f}: {e}")))?
        }
        (None, Some(_), Some(_)) => return Err(bad("give api_key or api_key_file, not both")),
        (None, None, None) => {
            return Err(bad(
                "api_key, api_key_file or PDM_POWERDNS_API_KEY is required",
            ))
        }
    };
    let key = key.trim().to_string();
    if key.is_empty() {
        return Err(bad("the PowerDNS API key is empty"));
    }
    let zone_kind = match raw
        .zone_kind
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("native") => PdnsZoneKind::Native,
        Some("master") | Some("primary") => PdnsZoneKind::Master,
        Some(other) => return Err(bad(&format!("zone_kind {other:?}: want Native or Master"))),
    };
    let algorithm = raw.algorithm.map(|a| a.to_ascii_lowercase());
    if let Some(algorithm) = algorithm.as_deref().filter(|a| {
        ![
            "ecdsa256",
            "ecdsa384",
            "ed25519",
            "ed448",
            "rsasha256",
            "rsasha512",
        ]
        .contains(a)
    }) {
        return Err(bad(&format!(
            "algorithm {algorithm:?}: want ecdsa256, ecdsa384, ed25519, ed448, rsasha256 or rsasha512"
        )));
    }
    let timeout_ms = raw.timeout_ms.unwrap_or(5000);
    let inline_ms = raw.inline_ms.unwrap_or(3000);
    if !(100..=120_000).contains(&timeout_ms) || inline_ms > 60_000 {
        return Err(bad("timeout_ms must be 100..=120000, inline_ms <= 60000"));
    }
    Ok(BackendConfig {
        kind,
        powerdns: Some(PowerDnsConfig {
            url,
            api_key: ApiKey(key),
            server_id: raw.server_id.unwrap_or_else(|| "localhost".into()),
            zone_kind,
            also_notify: raw.also_notify,
            nsec3: raw.nsec3.unwrap_or(true),
            algorithm,
            timeout_ms,
            inline_ms,
            reconcile_interval_secs: raw.reconcile_interval_secs.unwrap_or(300),
        }),
    })
}

fn resolve_lua(raw: RawLua) -> Result<LuaSettings, ConfigError> {
    let d = LuaSettings::default();
    let l = LuaSettings {
        lua_records: raw.lua_records.unwrap_or(d.lua_records),
        zones: raw.zones,
        max_instructions: raw.max_instructions.unwrap_or(d.max_instructions),
        timeout_ms: raw.timeout_ms.unwrap_or(d.timeout_ms),
        concurrency: raw.concurrency.unwrap_or(d.concurrency),
        health_interval_secs: raw.health_interval_secs.unwrap_or(d.health_interval_secs),
        assume_up_before_first_check: raw
            .assume_up_before_first_check
            .unwrap_or(d.assume_up_before_first_check),
        geoip_databases: raw.geoip_databases.into_iter().map(Into::into).collect(),
        offload: raw.offload.unwrap_or(d.offload),
        inline_budget_us: raw.inline_budget_us.unwrap_or(d.inline_budget_us),
    };
    if l.max_instructions < 1000
        || !(1..=10_000).contains(&l.timeout_ms)
        || !(1..=1024).contains(&l.concurrency)
        || !(1..=86_400).contains(&l.health_interval_secs)
        || l.inline_budget_us > l.timeout_ms.saturating_mul(1000)
    {
        return Err(ConfigError::Invalid(
            "lua: max_instructions >= 1000, timeout_ms 1..=10000, concurrency 1..=1024, health_interval_secs 1..=86400, inline_budget_us <= timeout_ms * 1000".into(),
        ));
    }
    Ok(l)
}

impl DnssecConfig {
    /// The default signing profile for new zones.
    pub fn profile(&self) -> crate::dnssec::SigningProfile {
        crate::dnssec::SigningProfile {
            algorithm: self.algorithm,
            denial: self.denial,
            split_keys: self.split_keys,
        }
    }
}

fn parse_algorithm(what: &str, a: &str) -> Result<crate::dnssec::KeyAlgorithm, ConfigError> {
    crate::dnssec::KeyAlgorithm::parse(a).ok_or_else(|| {
        ConfigError::Invalid(format!(
            "{what} {a:?}: want ecdsap256sha256 (13) or ed25519 (15)"
        ))
    })
}

fn parse_denial(what: &str, m: &str) -> Result<crate::dnssec::DenialMode, ConfigError> {
    crate::dnssec::DenialMode::parse(m)
        .ok_or_else(|| ConfigError::Invalid(format!("{what} {m:?}: want nsec3 or compact")))
}

fn pool_signing(
    d: &DnssecConfig,
    algorithm: Option<crate::dnssec::KeyAlgorithm>,
    denial: Option<crate::dnssec::DenialMode>,
) -> crate::dnssec::SigningProfile {
    let mut p = d.profile();
    if let Some(a) = algorithm {
        p.algorithm = a;
    }
    if let Some(m) = denial {
        p.denial = m;
    }
    p
}

/// PowerDNS (4.7) has no compact denial of existence (RFC 9824): a pool that
/// asks for it is refused rather than served with NSEC3 or NSEC instead.
pub fn check_powerdns_denial(pools: &[PoolConfig]) -> Result<(), ConfigError> {
    let compact: Vec<String> = pools
        .iter()
        .filter(|p| p.dnssec_denial == Some(crate::dnssec::DenialMode::Compact))
        .map(|p| p.domain.to_string())
        .collect();
    if compact.is_empty() {
        return Ok(());
    }
    Err(ConfigError::Invalid(format!(
        "pool {}: dnssec_denial = \"compact\" is not supported with [backend] kind = \"powerdns\" \
         (PowerDNS has no compact denial of existence, RFC 9824); set dnssec_denial = \"nsec3\", \
         or remove dnssec_denial to follow [backend] nsec3 (true: NSEC3, false: NSEC)",
        compact.join(", pool ")
    )))
}

fn resolve_dnssec(raw: RawDnssec) -> Result<DnssecConfig, ConfigError> {
    let d = DnssecConfig::default();
    let algorithm = match raw.algorithm.as_deref() {
        None => d.algorithm,
        Some(a) => crate::dnssec::KeyAlgorithm::parse(a).ok_or_else(|| {
            ConfigError::Invalid(format!(
                "dnssec.algorithm {a:?}: want ecdsap256sha256 (13) or ed25519 (15)"
            ))
        })?,
    };
    let denial = match raw.denial.as_deref() {
        None => d.denial,
        Some(m) => crate::dnssec::DenialMode::parse(m).ok_or_else(|| {
            ConfigError::Invalid(format!("dnssec.denial {m:?}: want nsec3 or compact"))
        })?,
    };
    let dnskey_ttl = raw.dnskey_ttl.unwrap_or(d.dnskey_ttl);
    if !(1..=86_400).contains(&dnskey_ttl) {
        return Err(ConfigError::Invalid(
            "dnssec.dnskey_ttl must be 1..=86400".into(),
        ));
    }
    Ok(DnssecConfig {
        enabled: raw.enabled.unwrap_or(d.enabled),
        algorithm,
        split_keys: raw.split_keys.unwrap_or(d.split_keys),
        denial,
        dnskey_ttl,
        propagation_delay_secs: raw
            .propagation_delay_secs
            .unwrap_or(d.propagation_delay_secs),
        secret_key_file: raw.secret_key_file.map(Into::into),
    })
}

fn parse_template(pool: &DomainName, r: RawTemplateRecord) -> Result<RecordTemplate, ConfigError> {
    let bad = |m: String| ConfigError::Invalid(format!("pool {pool} template: {m}"));
    let target = match r.value.as_deref() {
        None | Some("lb") => TemplateTarget::LoadBalancer,
        Some("console-lb") => TemplateTarget::ConsoleLoadBalancer,
        Some(other) => {
            let rtype = r
                .rtype
                .as_deref()
                .ok_or_else(|| bad(format!("{}: literal value needs a type", r.name)))?;
            TemplateTarget::literal(rtype, other).map_err(bad)?
        }
    };
    RecordTemplate::new(&r.name, r.ttl.unwrap_or(300), target).map_err(bad)
}

#[cfg(test)]
mod backend_config_tests {
    use super::*;

    const BASE: &str = "[[nameservers]]\nname = \"ns1.example.test\"\n";

    #[test]
    fn embedded_by_default_and_powerdns_needs_url_and_key() {
        assert_eq!(
            Config::from_toml(BASE).unwrap().backend.kind,
            BackendKind::Embedded
        );
        let r = resolve_backend(
            RawBackend {
                kind: Some("powerdns".into()),
                url: Some("http://127.0.0.1:8081/".into()),
                ..RawBackend::default()
            },
            None,
        );
        assert!(r.is_err());
        let c = resolve_backend(
            RawBackend {
                kind: Some("powerdns".into()),
                url: Some("http://127.0.0.1:8081/".into()),
                api_key: Some("file-key".into()),
                ..RawBackend::default()
            },
            Some("env-key".into()),
        )
        .unwrap();
        let p = c.powerdns.unwrap();
        assert_eq!(p.url, "http://127.0.0.1:8081");
        assert_eq!(p.api_key.expose(), "env-key");
        assert_eq!(
            (p.server_id.as_str(), p.zone_kind, p.nsec3),
            ("localhost", PdnsZoneKind::Native, true)
        );
        assert!(!format!("{p:?}").contains("env-key"));
    }

    const POWERDNS: &str = "[backend]\nkind = \"powerdns\"\nurl = \"http://127.0.0.1:8081\"\napi_key = \"k\"\nnsec3 = false\n";

    /// PowerDNS has no compact denial (RFC 9824): a pool asking for it is refused at load,
    /// naming the pool and what to use instead; nsec3 pools and pools without the setting load.
    #[test]
    fn pool_compact_denial_is_refused_on_powerdns() {
        let pools = "[[pools]]\ndomain = \"plain.test\"\n\
                     [[pools]]\ndomain = \"black.test\"\ndnssec_denial = \"compact\"\n\
                     [[pools]]\ndomain = \"n3.test\"\ndnssec_denial = \"nsec3\"\n";
        let err = Config::from_toml(&format!("{POWERDNS}{BASE}{pools}"))
            .expect_err("compact on powerdns must be refused")
            .to_string();
        for want in [
            "pool black.test:",
            "dnssec_denial = \"compact\"",
            "powerdns",
            "dnssec_denial = \"nsec3\"",
            "remove dnssec_denial",
            "[backend] nsec3",
        ] {
            assert!(err.contains(want), "{want:?} missing from: {err}");
        }
        assert!(
            !err.contains("plain.test") && !err.contains("n3.test"),
            "names only the compact pool: {err}"
        );

        // The embedded backend signs compact itself.
        let c = Config::from_toml(&format!("{BASE}{pools}")).unwrap();
        assert_eq!(
            c.pools[1].signing.denial,
            crate::dnssec::DenialMode::Compact
        );

        // Without the compact pool: loads, and the explicit setting is kept apart from the
        // [dnssec] default.
        let pools = "[[pools]]\ndomain = \"plain.test\"\n\
                     [[pools]]\ndomain = \"n3.test\"\ndnssec_denial = \"nsec3\"\n";
        let c = Config::from_toml(&format!("{POWERDNS}{BASE}{pools}")).unwrap();
        assert_eq!(c.backend.kind, BackendKind::PowerDns);
        let denial: Vec<_> = c.pools.iter().map(|p| p.dnssec_denial).collect();
        assert_eq!(denial, [None, Some(crate::dnssec::DenialMode::Nsec3)]);
    }
}

#[cfg(test)]
mod lua_config_tests {
    use super::*;

    const BASE: &str =
        "[[nameservers]]\nname = \"ns1.example.test\"\naddresses = [\"127.0.0.1\"]\n";

    #[test]
    fn lua_section_and_per_zone_switch() {
        let c = Config::from_toml(BASE).unwrap();
        assert!(c.lua.lua_records && c.lua.enabled_for("any.test."));
        let text = format!(
            "[lua]\nlua_records = false\ntimeout_ms = 5\nzones = {{ \"On.Example.\" = true }}\n{BASE}"
        );
        let c = Config::from_toml(&text).unwrap();
        assert_eq!(c.lua.timeout_ms, 5);
        assert!(!c.lua.enabled_for("other.test."));
        assert!(c.lua.enabled_for("on.example."));
        assert!(c.lua.enabled_for("on.example"));
        let bad = format!("[lua]\ntimeout_ms = 0\n{BASE}");
        assert!(Config::from_toml(&bad).is_err());
    }

    #[test]
    fn lua_template_record() {
        let text = format!(
            "{BASE}\n[[pools]]\ndomain = \"example.test\"\n[[pools.template]]\nname = \"www\"\ntype = \"LUA\"\nvalue = \"A \\\"pickrandom({{'192.0.2.1','192.0.2.2'}})\\\"\"\n"
        );
        let c = Config::from_toml(&text).unwrap();
        let t = &c.pools[0].template[0];
        assert!(
            matches!(&t.target, TemplateTarget::Literal(r) if r.record_type() == crate::zone::LUA)
        );
    }
}

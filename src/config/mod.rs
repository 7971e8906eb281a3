//! One typed configuration: a TOML file, overridden by CLI flags / `PDM_*`
//! environment variables. Parsed and validated once at start.
//!
//! This file holds `Config`, its top-level keys and the load; each section
//! lives in a file of its own.

mod api;
mod backend;
mod cookies;
mod delegation;
mod dnssec;
mod journal;
mod lua;
mod nameservers;
mod operations;
mod pools;
mod records;
mod registrars;
mod rrl;
mod tcp;
mod transfer;

/// An address prefix (`[api] exempt_sources`, `[transfer]` rules).
pub use crate::server::xfr::acl::Prefix;
pub use api::{ApiConfig, Rate};
pub use backend::{
    check_powerdns_denial, ApiKey, BackendConfig, BackendKind, PdnsZoneKind, PowerDnsConfig,
};
pub use cookies::CookiesConfig;
pub use delegation::DelegationConfig;
pub use dnssec::DnssecConfig;
pub use journal::JournalConfig;
pub use lua::LuaSettings;
pub use nameservers::Nameserver;
pub use operations::OperationsConfig;
pub use pools::PoolConfig;
pub use records::RecordsConfig;
pub use registrars::RegistrarsConfig;
pub use rrl::RrlConfig;
pub use transfer::{key_name as tsig_key_name, AllowRule, NotifyTarget, TransferConfig};

use api::{resolve_api, RawApi};
use backend::{resolve_backend, RawBackend};
use cookies::{resolve_cookies, RawCookies};
use delegation::{resolve_delegation, RawDelegation};
use dnssec::{resolve_dnssec, RawDnssec};
use journal::{resolve_journal, RawJournal};
use lua::{resolve_lua, RawLua};
use nameservers::{resolve_nameservers, RawNameserver};
use operations::{resolve_operations, RawOperations};
use pools::{resolve_pools, RawPool};
use records::{resolve_records, RawRecords};
use registrars::{resolve_registrars, RawRegistrars};
use rrl::{resolve_rrl, RawRrl};
use tcp::{resolve_tcp, RawTcp};
use transfer::{resolve_transfer, RawTransfer};

use crate::model::DomainName;
use serde::Deserialize;
use std::net::SocketAddr;
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

/// The whole configuration, resolved.
#[derive(Debug, Clone)]
pub struct Config {
    /// HTTP API listen address.
    pub http: SocketAddr,
    /// DNS listen address (UDP and TCP).
    pub dns: SocketAddr,
    /// sqlx database URL.
    pub database: String,
    /// How long a request waits for a database connection before it fails
    /// (503) (`database_timeout_secs`; default per engine, see `Store::connect_with`).
    pub database_timeout: Option<std::time::Duration>,
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
    /// The HTTP API's abuse limits (`[api]`).
    pub api: ApiConfig,
    /// Registrar API endpoints (`[registrars]`).
    pub registrars: RegistrarsConfig,
    /// How delegations are checked at the parent (`[delegation]`).
    pub delegation: DelegationConfig,
    /// The durable operations worker (`[operations]`).
    pub operations: OperationsConfig,
    /// Change journal retention (`[journal]`).
    pub journal: JournalConfig,
    /// LUA records (`[lua]`).
    pub lua: LuaSettings,
    /// Where zones live: the embedded store or a PowerDNS server (`[backend]`).
    pub backend: BackendConfig,
    /// Encoded UDP answers kept for reuse (`packet_cache`, 0 turns it off).
    pub packet_cache: usize,
    /// After SIGTERM: how long to keep accepting requests (while `/readyz`
    /// answers 503) so load balancers stop sending before the listener
    /// closes (`shutdown_delay_secs`, default 0).
    pub shutdown_delay: std::time::Duration,
    /// After SIGTERM and the delay: how long requests in flight may take
    /// before the process exits anyway (`shutdown_grace_secs`, default 25,
    /// inside Kubernetes' default 30 s termination grace period).
    pub shutdown_grace: std::time::Duration,
    /// Zone transfers and NOTIFY (`[transfer]`; pools add their own rules).
    pub transfer: TransferConfig,
    /// Response rate limiting of UDP answers (`[rrl]`; `None`: off).
    pub rrl: Option<RrlConfig>,
    /// DNS cookies (`[cookies]`; `None`: off, options ignored).
    pub cookies: Option<CookiesConfig>,
    /// Bounds on DNS-over-TCP clients (`[tcp]`).
    pub tcp: crate::server::TcpLimits,
    /// How long after its reservation an allocation may be force-released
    /// (`force_release_grace_hours`; the Go service's
    /// `POOL_FORCE_RELEASE_GRACE_HOURS`, 720 = 30 days).
    pub force_release_grace_hours: u64,
    /// Bounds on tenant-written records (`[records]`).
    pub records: RecordsConfig,
    /// How serials grow in zones outside a pool, and the pools' default
    /// (`serial_policy`: `unixtime` or `increment`).
    pub serial_policy: crate::model::SerialPolicy,
}

/// Default force-release grace period, as in the Go service.
const DEFAULT_FORCE_RELEASE_GRACE_HOURS: u64 = 720;

/// Default time in-flight requests get after SIGTERM.
const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 25;

/// Default size of the packet cache (answers).
const DEFAULT_PACKET_CACHE: usize = 100_000;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    http: Option<String>,
    dns: Option<String>,
    database: Option<String>,
    database_timeout_secs: Option<u64>,
    hostmaster: Option<String>,
    #[serde(default)]
    nameservers: Vec<RawNameserver>,
    #[serde(default)]
    pools: Vec<RawPool>,
    dnssec: Option<RawDnssec>,
    registrars: Option<RawRegistrars>,
    delegation: Option<RawDelegation>,
    operations: Option<RawOperations>,
    journal: Option<RawJournal>,
    lua: Option<RawLua>,
    backend: Option<RawBackend>,
    packet_cache: Option<usize>,
    force_release_grace_hours: Option<u64>,
    shutdown_delay_secs: Option<u64>,
    shutdown_grace_secs: Option<u64>,
    transfer: Option<RawTransfer>,
    rrl: Option<RawRrl>,
    cookies: Option<RawCookies>,
    tcp: Option<RawTcp>,
    records: Option<RawRecords>,
    serial_policy: Option<String>,
    api: Option<RawApi>,
}

/// A domain name from the file, or what is wrong with it (`what` names the key).
fn domain_name(what: &str, s: &str) -> Result<DomainName, ConfigError> {
    DomainName::parse(s).map_err(|e| ConfigError::Invalid(format!("{what}: {e}")))
}

/// The demo configuration used when no `--config` is given.
const DEMO_CONFIG: &str = include_str!("../../zones/demo.toml");

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
    /// `--shutdown-delay-secs` / `PDM_SHUTDOWN_DELAY_SECS`.
    pub shutdown_delay_secs: Option<u64>,
    /// `--shutdown-grace-secs` / `PDM_SHUTDOWN_GRACE_SECS`.
    pub shutdown_grace_secs: Option<u64>,
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
        let hostmaster = domain_name(
            "hostmaster",
            raw.hostmaster
                .as_deref()
                .unwrap_or("hostmaster.pdm.invalid"),
        )?;
        let nameservers = resolve_nameservers(raw.nameservers)?;
        let dnssec = resolve_dnssec(raw.dnssec.unwrap_or_default())?;
        let records = resolve_records(raw.records.unwrap_or_default())?;
        let serial_policy = match raw.serial_policy.as_deref() {
            Some(s) => s.parse().map_err(ConfigError::Invalid)?,
            None => crate::model::SerialPolicy::default(),
        };
        let pools = resolve_pools(raw.pools, &dnssec, &records, serial_policy)?;
        let mut registrars = resolve_registrars(raw.registrars.unwrap_or_default())?;
        registrars.fake |= o.fake_registrars;
        let delegation = resolve_delegation(raw.delegation.unwrap_or_default())?;
        let operations = resolve_operations(raw.operations.unwrap_or_default())?;
        let journal = resolve_journal(raw.journal.unwrap_or_default())?;
        let lua = resolve_lua(raw.lua.unwrap_or_default())?;
        let backend = resolve_backend(
            raw.backend.unwrap_or_default(),
            std::env::var("PDM_POWERDNS_API_KEY").ok(),
        )?;
        let transfer = resolve_transfer(raw.transfer.unwrap_or_default())?;
        let rrl = resolve_rrl(raw.rrl.unwrap_or_default())?;
        let cookies = resolve_cookies(raw.cookies.unwrap_or_default())?;
        let tcp = resolve_tcp(raw.tcp.unwrap_or_default())?;
        let api = resolve_api(raw.api.unwrap_or_default())?;
        if backend.kind == BackendKind::PowerDns {
            check_powerdns_denial(&pools)?;
        }
        Ok(Config {
            http,
            dns,
            database,
            database_timeout: raw
                .database_timeout_secs
                .map(std::time::Duration::from_secs),
            hostmaster,
            nameservers,
            pools,
            dnssec,
            demo,
            api,
            registrars,
            delegation,
            operations,
            journal,
            lua,
            backend,
            transfer,
            rrl,
            cookies,
            tcp,
            records,
            serial_policy,
            packet_cache: o
                .packet_cache
                .or(raw.packet_cache)
                .unwrap_or(DEFAULT_PACKET_CACHE),
            shutdown_delay: std::time::Duration::from_secs(
                o.shutdown_delay_secs
                    .or(raw.shutdown_delay_secs)
                    .unwrap_or(0),
            ),
            shutdown_grace: std::time::Duration::from_secs(
                o.shutdown_grace_secs
                    .or(raw.shutdown_grace_secs)
                    .unwrap_or(DEFAULT_SHUTDOWN_GRACE_SECS),
            ),
            force_release_grace_hours: raw
                .force_release_grace_hours
                .unwrap_or(DEFAULT_FORCE_RELEASE_GRACE_HOURS),
        })
    }

    /// The pool with this domain, if managed.
    pub fn pool(&self, domain: &DomainName) -> Option<&PoolConfig> {
        self.pools.iter().find(|p| &p.domain == domain)
    }
}

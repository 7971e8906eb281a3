//! One typed configuration: a TOML file, overridden by CLI flags / `PDM_*`
//! environment variables. Parsed and validated once at start.

use crate::model::DomainName;
use crate::pool::template::{RecordTemplate, TemplateTarget};
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
            pools.push(PoolConfig {
                domain,
                reservation_ttl_secs: ttl,
                public_check: p.public_check.unwrap_or(true),
                template,
            });
        }
        let dnssec = resolve_dnssec(raw.dnssec.unwrap_or_default())?;
        Ok(Config {
            http,
            dns,
            database,
            hostmaster,
            nameservers,
            pools,
            dnssec,
            demo,
        })
    }

    /// The pool with this domain, if managed.
    pub fn pool(&self, domain: &DomainName) -> Option<&PoolConfig> {
        self.pools.iter().find(|p| &p.domain == domain)
    }
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
        propagation_delay_secs: raw.propagation_delay_secs.unwrap_or(d.propagation_delay_secs),
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

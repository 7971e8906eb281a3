//! `[delegation]`: how the parent of a byo domain is asked about its delegation.

use super::ConfigError;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};

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
const ROOT_HINTS: [&str; 13] = [
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

/// `[delegation]` as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDelegation {
    parent_servers: Option<Vec<String>>,
    root_hints: Option<Vec<String>>,
    query_timeout_ms: Option<u64>,
    poll_interval_secs: Option<u64>,
}

/// `[delegation]` resolved and checked.
pub(super) fn resolve_delegation(raw: RawDelegation) -> Result<DelegationConfig, ConfigError> {
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

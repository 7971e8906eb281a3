//! `[[nameservers]]`: the NS of every zone pdm creates.

use super::ConfigError;
use crate::model::DomainName;
use serde::Deserialize;
use std::net::IpAddr;

/// A nameserver that serves pdm's zones.
#[derive(Debug, Clone)]
pub struct Nameserver {
    /// Host name, e.g. `ns1.example.test.`.
    pub name: DomainName,
    /// Addresses, used for glue when the name is inside a pool zone.
    pub addresses: Vec<IpAddr>,
}

/// One `[[nameservers]]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNameserver {
    name: String,
    #[serde(default)]
    addresses: Vec<String>,
}

/// The `[[nameservers]]` entries, resolved; at least one is required.
pub(super) fn resolve_nameservers(raw: Vec<RawNameserver>) -> Result<Vec<Nameserver>, ConfigError> {
    let mut nameservers = Vec::new();
    for ns in raw {
        let mut addresses = Vec::new();
        for a in &ns.addresses {
            addresses.push(a.parse().map_err(|_| {
                ConfigError::Invalid(format!("nameserver {}: bad address {a:?}", ns.name))
            })?);
        }
        nameservers.push(Nameserver {
            name: super::domain_name("nameserver", &ns.name)?,
            addresses,
        });
    }
    if nameservers.is_empty() {
        return Err(ConfigError::Invalid(
            "at least one [[nameservers]] entry is required".into(),
        ));
    }
    Ok(nameservers)
}

//! `[[nameservers]]`: the NS of every zone pdm creates.

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNameserver {
    pub(super) name: String,
    #[serde(default)]
    pub(super) addresses: Vec<String>,
}

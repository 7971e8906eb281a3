//! `[[pools]]`: the pools pdm hands subdomains out of, with their record
//! templates and signing overrides.

use super::{ConfigError, DnssecConfig};
use crate::model::DomainName;
use crate::zone::template::{RecordTemplate, TemplateTarget};
use serde::Deserialize;

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPool {
    pub(super) domain: String,
    pub(super) reservation_ttl_secs: Option<u64>,
    pub(super) public_check: Option<bool>,
    pub(super) template: Option<Vec<RawTemplateRecord>>,
    pub(super) dnssec_algorithm: Option<String>,
    pub(super) dnssec_denial: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTemplateRecord {
    name: String,
    #[serde(rename = "type")]
    rtype: Option<String>,
    ttl: Option<u32>,
    /// `lb`, `console-lb`, or literal rdata.
    value: Option<String>,
}

pub(super) fn pool_signing(
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

pub(super) fn parse_template(
    pool: &DomainName,
    r: RawTemplateRecord,
) -> Result<RecordTemplate, ConfigError> {
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

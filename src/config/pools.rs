//! `[[pools]]`: the pools pdm hands subdomains out of, with their record
//! templates and signing overrides.

use super::dnssec::{parse_algorithm, parse_denial};
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
    /// Who may transfer the pool zone and its children (besides `[transfer] allow`).
    pub transfer_allow: Vec<super::AllowRule>,
    /// Secondaries sent NOTIFY for the pool zone and its children.
    pub also_notify: Vec<super::NotifyTarget>,
    /// TTL bounds for records tenants write in the pool's zones (`min_ttl`,
    /// `max_ttl`; default `[records]`'s).
    pub ttl_bounds: (u32, u32),
    /// How the serials of the pool zone and its children grow
    /// (`serial_policy`; default the top-level `serial_policy`).
    pub serial_policy: crate::model::SerialPolicy,
}

/// One `[[pools]]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPool {
    domain: String,
    reservation_ttl_secs: Option<u64>,
    public_check: Option<bool>,
    template: Option<Vec<RawTemplateRecord>>,
    dnssec_algorithm: Option<String>,
    dnssec_denial: Option<String>,
    #[serde(default)]
    transfer_allow: Vec<super::transfer::RawAllow>,
    #[serde(default)]
    also_notify: Vec<super::transfer::RawNotify>,
    min_ttl: Option<u32>,
    max_ttl: Option<u32>,
    serial_policy: Option<String>,
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

/// The `[[pools]]` entries, resolved against the `[dnssec]` defaults.
pub(super) fn resolve_pools(
    raw: Vec<RawPool>,
    dnssec: &DnssecConfig,
    records: &super::RecordsConfig,
    serial_policy: crate::model::SerialPolicy,
) -> Result<Vec<PoolConfig>, ConfigError> {
    let mut pools: Vec<PoolConfig> = Vec::new();
    for p in raw {
        let domain = super::domain_name("pool", &p.domain)?;
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
        let what = format!("pool {domain}");
        let transfer_allow = super::transfer::resolve_allow(&what, p.transfer_allow)?;
        let also_notify = super::transfer::resolve_notify(&what, p.also_notify)?;
        let ttl_bounds = (
            p.min_ttl.unwrap_or(records.min_ttl),
            p.max_ttl.unwrap_or(records.max_ttl),
        );
        super::records::check_ttl_bounds(&what, ttl_bounds.0, ttl_bounds.1)?;
        let serial_policy = match p.serial_policy.as_deref() {
            Some(s) => s
                .parse()
                .map_err(|e| ConfigError::Invalid(format!("{what}: {e}")))?,
            None => serial_policy,
        };
        pools.push(PoolConfig {
            transfer_allow,
            also_notify,
            ttl_bounds,
            serial_policy,
            domain,
            reservation_ttl_secs: ttl,
            public_check: p.public_check.unwrap_or(true),
            template,
            dnssec_algorithm,
            dnssec_denial,
            signing: pool_signing(dnssec, dnssec_algorithm, dnssec_denial),
        });
    }
    Ok(pools)
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const NS: &str = "[[nameservers]]\nname = \"ns1.example.test\"\n";

    fn err(text: &str) -> String {
        Config::from_toml(text)
            .expect_err("must be refused")
            .to_string()
    }

    #[test]
    fn pools_get_defaults_and_are_checked() {
        let c = Config::from_toml(&format!("{NS}[[pools]]\ndomain = \"Example.Test\"\n")).unwrap();
        let p = &c.pools[0];
        assert_eq!(p.domain.fqdn(), "example.test.");
        assert_eq!((p.reservation_ttl_secs, p.public_check), (600, true));
        assert_eq!(p.template.len(), 7, "the Go service's seven names");
        let twice =
            format!("{NS}[[pools]]\ndomain = \"a.test\"\n[[pools]]\ndomain = \"A.test.\"\n");
        assert!(err(&twice).contains("listed twice"));
        let ttl = format!("{NS}[[pools]]\ndomain = \"a.test\"\nreservation_ttl_secs = 0\n");
        assert!(err(&ttl).contains("reservation_ttl_secs"));
        let literal = format!(
            "{NS}[[pools]]\ndomain = \"a.test\"\n[[pools.template]]\nname = \"www\"\nvalue = \"x\"\n"
        );
        assert!(err(&literal).contains("literal value needs a type"));
    }

    #[test]
    fn serial_policy_per_pool_with_a_default() {
        use crate::model::SerialPolicy;
        let c = Config::from_toml(&format!(
            "serial_policy = \"increment\"\n{NS}[[pools]]\ndomain = \"a.test\"\n[[pools]]\ndomain = \"b.test\"\nserial_policy = \"unixtime\"\n"
        ))
        .unwrap();
        assert_eq!(c.serial_policy, SerialPolicy::Increment);
        assert_eq!(c.pools[0].serial_policy, SerialPolicy::Increment);
        assert_eq!(c.pools[1].serial_policy, SerialPolicy::UnixTime);
        let bad = format!("{NS}[[pools]]\ndomain = \"a.test\"\nserial_policy = \"date\"\n");
        assert!(err(&bad).contains("want unixtime or increment"));
    }

    #[test]
    fn at_least_one_nameserver() {
        assert!(err("").contains("at least one [[nameservers]]"));
        assert!(
            err("[[nameservers]]\nname = \"ns1.test\"\naddresses = [\"nope\"]\n")
                .contains("bad address")
        );
    }
}

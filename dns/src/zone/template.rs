//! Record templates: what a committed child zone contains.
//!
//! The default reproduces the Go service's seven names
//! (`@ * console api marketplace gitea harbor`, TTL 300) with the console
//! split: `console`, `api` and `marketplace` follow the console load balancer
//! when one is given.

use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::net::IpAddr;

/// Where a template record points.
#[derive(Debug, Clone, PartialEq)]
pub enum TemplateTarget {
    /// The allocation's `loadBalancerIP` (A or AAAA by its family).
    LoadBalancer,
    /// `consoleLoadBalancerIP`, falling back to the load balancer.
    ConsoleLoadBalancer,
    /// Fixed record data.
    Literal(RData),
}

impl TemplateTarget {
    /// A literal target from presentation-format text; type `LUA` takes
    /// the PowerDNS form `A "code"`.
    pub fn literal(rtype: &str, value: &str) -> Result<Self, String> {
        if rtype.eq_ignore_ascii_case("LUA") {
            let program = crate::lua::LuaRecord::parse(value)
                .map_err(|e| format!("bad LUA value {value:?}: {e}"))?;
            return crate::zone::file::lua_rdata(&program)
                .map(TemplateTarget::Literal)
                .map_err(|e| format!("bad LUA value {value:?}: {e}"));
        }
        let rt: RecordType = rtype
            .to_ascii_uppercase()
            .parse()
            .map_err(|_| format!("unknown record type {rtype:?}"))?;
        RData::try_from_str(rt, value)
            .map(TemplateTarget::Literal)
            .map_err(|e| format!("bad {rtype} value {value:?}: {e}"))
    }
}

/// One template record, relative to the child zone apex.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordTemplate {
    /// `@`, `*`, or a relative name such as `console`.
    name: String,
    /// Record TTL.
    ttl: u32,
    /// Where it points.
    pub target: TemplateTarget,
}

impl RecordTemplate {
    /// Validate the relative name and build a template record.
    pub fn new(name: &str, ttl: u32, target: TemplateTarget) -> Result<Self, String> {
        let name = name.trim().to_ascii_lowercase();
        if name != "@" {
            Name::from_ascii(&name).map_err(|e| format!("bad template name {name:?}: {e}"))?;
            if name.ends_with('.') {
                return Err(format!("template name {name:?} must be relative"));
            }
        }
        Ok(RecordTemplate { name, ttl, target })
    }

    /// The owner relative to the child's apex (`@`, `*`, `console`).
    pub fn relative_name(&self) -> &str {
        &self.name
    }

    /// The types this template record may have (an address target is A or
    /// AAAA, depending on the allocation's address).
    pub fn record_types(&self) -> Vec<RecordType> {
        match &self.target {
            TemplateTarget::LoadBalancer | TemplateTarget::ConsoleLoadBalancer => {
                vec![RecordType::A, RecordType::AAAA]
            }
            TemplateTarget::Literal(r) => vec![r.record_type()],
        }
    }

    /// The Go service's seven names.
    pub fn default_set() -> Vec<RecordTemplate> {
        let r = |n: &str, t| RecordTemplate {
            name: n.to_string(),
            ttl: 300,
            target: t,
        };
        vec![
            r("@", TemplateTarget::LoadBalancer),
            r("*", TemplateTarget::LoadBalancer),
            r("console", TemplateTarget::ConsoleLoadBalancer),
            r("api", TemplateTarget::ConsoleLoadBalancer),
            r("marketplace", TemplateTarget::ConsoleLoadBalancer),
            r("gitea", TemplateTarget::LoadBalancer),
            r("harbor", TemplateTarget::LoadBalancer),
        ]
    }
}

fn ip_rdata(ip: IpAddr) -> RData {
    match ip {
        IpAddr::V4(v4) => RData::A(v4.into()),
        IpAddr::V6(v6) => RData::AAAA(v6.into()),
    }
}

/// Render `templates` for the child zone `apex`.
pub fn render(
    templates: &[RecordTemplate],
    apex: &Name,
    lb: IpAddr,
    console_lb: Option<IpAddr>,
) -> Result<Vec<Record>, String> {
    let mut out = Vec::with_capacity(templates.len());
    for t in templates {
        let owner = if t.name == "@" {
            apex.clone()
        } else {
            Name::from_ascii(&t.name)
                .and_then(|rel| rel.append_domain(apex))
                .map_err(|e| format!("template name {}: {e}", t.name))?
        };
        let rdata = match &t.target {
            TemplateTarget::LoadBalancer => ip_rdata(lb),
            TemplateTarget::ConsoleLoadBalancer => ip_rdata(console_lb.unwrap_or(lb)),
            TemplateTarget::Literal(r) => r.clone(),
        };
        out.push(Record::from_rdata(owner, t.ttl, rdata));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(records: &[Record]) -> Vec<String> {
        records
            .iter()
            .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
            .collect()
    }

    #[test]
    fn default_set_has_seven_names_on_the_lb() {
        let apex = Name::from_ascii("acme.example.test.").unwrap();
        let recs = render(
            &RecordTemplate::default_set(),
            &apex,
            "192.0.2.1".parse().unwrap(),
            None,
        )
        .unwrap();
        assert_eq!(
            names(&recs),
            vec![
                "acme.example.test. A 192.0.2.1",
                "*.acme.example.test. A 192.0.2.1",
                "console.acme.example.test. A 192.0.2.1",
                "api.acme.example.test. A 192.0.2.1",
                "marketplace.acme.example.test. A 192.0.2.1",
                "gitea.acme.example.test. A 192.0.2.1",
                "harbor.acme.example.test. A 192.0.2.1",
            ]
        );
        assert!(recs.iter().all(|r| r.ttl == 300));
    }

    #[test]
    fn console_split_and_ipv6() {
        let apex = Name::from_ascii("acme.example.test.").unwrap();
        let recs = render(
            &RecordTemplate::default_set(),
            &apex,
            "2001:db8::1".parse().unwrap(),
            Some("192.0.2.9".parse().unwrap()),
        )
        .unwrap();
        let n = names(&recs);
        assert_eq!(n[0], "acme.example.test. AAAA 2001:db8::1");
        assert_eq!(n[2], "console.acme.example.test. A 192.0.2.9");
        assert_eq!(n[3], "api.acme.example.test. A 192.0.2.9");
        assert_eq!(n[4], "marketplace.acme.example.test. A 192.0.2.9");
        assert_eq!(n[5], "gitea.acme.example.test. AAAA 2001:db8::1");
    }

    #[test]
    fn literal_targets_parse_or_fail() {
        assert!(TemplateTarget::literal("TXT", "\"hello\"").is_ok());
        assert!(TemplateTarget::literal("MX", "10 mail.example.test.").is_ok());
        assert!(TemplateTarget::literal("A", "not-an-ip").is_err());
        assert!(TemplateTarget::literal("NOPE", "x").is_err());
        assert!(RecordTemplate::new("bad..name", 300, TemplateTarget::LoadBalancer).is_err());
    }

    #[test]
    fn lua_literal_renders_a_lua_record() {
        let t =
            TemplateTarget::literal("lua", r#"A "pickrandom({'192.0.2.1','192.0.2.2'})""#).unwrap();
        assert!(TemplateTarget::literal("LUA", "A").is_err());
        assert!(TemplateTarget::literal("LUA", "NOPE \"x\"").is_err());
        let apex = Name::from_ascii("acme.example.test.").unwrap();
        let tpl = vec![RecordTemplate::new("lb", 60, t).unwrap()];
        let recs = render(&tpl, &apex, "192.0.2.1".parse().unwrap(), None).unwrap();
        assert_eq!(recs[0].record_type(), crate::zone::LUA);
        let mut line = String::new();
        crate::zone::file::write_record(&mut line, &recs[0]);
        assert_eq!(
            line,
            r#"lb.acme.example.test. 60 IN LUA A "pickrandom({'192.0.2.1','192.0.2.2'})""#
        );
    }
}

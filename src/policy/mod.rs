//! Credential policies: which zones, owner names and record types a
//! credential (API token, PowerDNS API key, TSIG key) may read or write,
//! from which addresses, until when. Pure: parsed once at the edge, then
//! evaluated for every RRset a change touches.
//!
//! Rules are ordered most specific first (zone, then owner, then types; on
//! a tie, the order they were written in) and the first rule that matches
//! decides, as deSEC's token policies do. No matching rule means no access.

use crate::model::rtype::{parse_type, type_name};
use hickory_proto::rr::{Name, RecordType};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// Why a policy does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy: {0}")]
pub struct PolicyError(pub String);

/// What a rule grants.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Nothing: a rule that carves an exception out of a broader one.
    None,
    /// Read the RRsets.
    Read,
    /// Read and change them.
    Write,
}

/// Which zones a rule is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneMatch {
    /// Every zone.
    Any,
    /// Exactly this zone (lower-case FQDN with the trailing dot).
    Exact(String),
    /// This zone and every zone below it.
    Subtree(String),
}

impl ZoneMatch {
    fn matches(&self, zone: &str) -> bool {
        match self {
            ZoneMatch::Any => true,
            ZoneMatch::Exact(z) => z == zone,
            ZoneMatch::Subtree(z) => is_at_or_below(zone, z),
        }
    }

    /// More specific first: exact before subtree before any; longer names first.
    fn rank(&self) -> (u8, usize) {
        match self {
            ZoneMatch::Any => (0, 0),
            ZoneMatch::Subtree(z) => (1, label_count(z)),
            ZoneMatch::Exact(z) => (2, label_count(z)),
        }
    }
}

/// An owner-name pattern, relative to the zone written: `@` is the apex, a
/// `*` label stands for any number of labels (none included), so
/// `_acme-challenge.*` matches `_acme-challenge` and `_acme-challenge.www`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerPattern {
    /// Labels, leftmost first, lower case; empty for the apex.
    labels: Vec<String>,
}

impl OwnerPattern {
    /// Parses `@`, `*`, `www`, `_acme-challenge.*` and the like.
    pub fn parse(s: &str) -> Result<Self, PolicyError> {
        let s = s.trim().trim_end_matches('.').to_ascii_lowercase();
        if s == "@" || s.is_empty() {
            return Ok(OwnerPattern { labels: Vec::new() });
        }
        let labels: Vec<String> = s.split('.').map(str::to_string).collect();
        for l in &labels {
            if l.is_empty() || l.len() > 63 {
                return Err(PolicyError(format!(
                    "owner pattern {s:?}: empty or long label"
                )));
            }
            if l != "*" && l.contains('*') {
                return Err(PolicyError(format!(
                    "owner pattern {s:?}: '*' must be a whole label"
                )));
            }
        }
        Ok(OwnerPattern { labels })
    }

    /// Whether `relative` (labels below the apex, leftmost first) matches.
    fn matches(&self, relative: &[&str]) -> bool {
        fn go(p: &[String], n: &[&str]) -> bool {
            match p.split_first() {
                None => n.is_empty(),
                Some((first, rest)) if first == "*" => (0..=n.len()).any(|k| go(rest, &n[k..])),
                Some((first, rest)) => n
                    .split_first()
                    .is_some_and(|(l, nrest)| l.eq_ignore_ascii_case(first) && go(rest, nrest)),
            }
        }
        go(&self.labels, relative)
    }

    /// Literal names before patterns, then more literal labels first.
    fn rank(&self) -> (u8, usize) {
        let literal = self.labels.iter().filter(|l| *l != "*").count();
        if literal == self.labels.len() {
            (2, literal)
        } else {
            (1, literal)
        }
    }
}

impl fmt::Display for OwnerPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.labels.is_empty() {
            f.write_str("@")
        } else {
            f.write_str(&self.labels.join("."))
        }
    }
}

/// One rule of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Which zones.
    pub zone: ZoneMatch,
    /// Which owners in them (`None`: all).
    pub owner: Option<OwnerPattern>,
    /// Which types (`None`: all but LUA, which must be named: it runs code).
    pub types: Option<Vec<RecordType>>,
    /// What it grants.
    pub access: Access,
    /// Whether it may change the records the pool's template wrote.
    pub template: bool,
}

impl Rule {
    fn matches(&self, zone: &str, owner: &str, rtype: RecordType) -> bool {
        if !self.zone.matches(zone) {
            return false;
        }
        if let Some(p) = &self.owner {
            match relative_labels(owner, zone) {
                Some(rel) if p.matches(&rel) => {}
                _ => return false,
            }
        }
        match &self.types {
            Some(ts) => ts.contains(&rtype),
            None => rtype != crate::zone::LUA,
        }
    }

    fn rank(&self) -> ((u8, usize), (u8, usize), u8) {
        (
            self.zone.rank(),
            self.owner.as_ref().map_or((0, 0), OwnerPattern::rank),
            u8::from(self.types.is_some()),
        )
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.zone {
            ZoneMatch::Any => f.write_str("zone *")?,
            ZoneMatch::Exact(z) => write!(f, "zone {z}")?,
            ZoneMatch::Subtree(z) => write!(f, "zone {z} and below")?,
        }
        match &self.owner {
            Some(p) => write!(f, ", owner {p}")?,
            None => f.write_str(", any owner")?,
        }
        match &self.types {
            Some(ts) => {
                let ts: Vec<String> = ts.iter().map(|t| type_name(*t)).collect();
                write!(f, ", types {}", ts.join(" "))?
            }
            None => f.write_str(", any type")?,
        }
        let access = match self.access {
            Access::None => "no access",
            Access::Read => "read",
            Access::Write => "write",
        };
        write!(f, ": {access}")?;
        if self.template {
            f.write_str(" (template records too)")?;
        }
        Ok(())
    }
}

/// A credential's policy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    /// Most specific first (see the module doc).
    rules: Vec<(usize, Rule)>,
    /// Addresses the credential may be used from (empty: any).
    pub sources: Vec<IpNet>,
    /// Unix milliseconds after which the credential is refused.
    pub expires_at_ms: Option<i64>,
}

/// What [`Policy::check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed by the rule with this number (1-based, as written).
    Allowed(usize),
    /// Refused: the reason names the rule, or says none matched.
    Denied(String),
}

impl Policy {
    /// A policy from rules, most specific first.
    pub fn new(rules: Vec<Rule>, sources: Vec<IpNet>, expires_at_ms: Option<i64>) -> Self {
        let mut rules: Vec<(usize, Rule)> = rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| (i + 1, r))
            .collect();
        // Stable: equal ranks keep the order they were written in.
        rules.sort_by_key(|r| std::cmp::Reverse(r.1.rank()));
        Policy {
            rules,
            sources,
            expires_at_ms,
        }
    }

    /// Everything, template records and LUA included (admin tokens).
    pub fn everything() -> Self {
        Policy::new(
            vec![
                Rule {
                    zone: ZoneMatch::Any,
                    owner: None,
                    types: None,
                    access: Access::Write,
                    template: true,
                },
                Rule {
                    zone: ZoneMatch::Any,
                    owner: None,
                    types: Some(vec![crate::zone::LUA]),
                    access: Access::Write,
                    template: true,
                },
            ],
            Vec::new(),
            None,
        )
    }

    /// Whether the policy has no rules at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether `want` on the RRset `(owner, rtype)` of `zone` is allowed
    /// (`template`: the RRset is one the pool's template wrote).
    pub fn check(
        &self,
        zone: &str,
        owner: &str,
        rtype: RecordType,
        want: Access,
        template: bool,
    ) -> Verdict {
        let Some((n, rule)) = self
            .rules
            .iter()
            .find(|(_, r)| r.matches(zone, owner, rtype))
        else {
            return Verdict::Denied(format!(
                "no rule of the credential's policy covers {owner} {}",
                type_name(rtype)
            ));
        };
        if rule.access < want {
            return Verdict::Denied(format!(
                "rule {n} ({rule}) decides {owner} {}",
                type_name(rtype)
            ));
        }
        if template && want == Access::Write && !rule.template {
            return Verdict::Denied(format!(
                "{owner} {} was written by the pool's template; rule {n} ({rule}) does not allow template records",
                type_name(rtype)
            ));
        }
        Verdict::Allowed(*n)
    }

    /// Whether the policy lets the credential read anything in `zone`.
    pub fn reads_zone(&self, zone: &str) -> bool {
        self.rules
            .iter()
            .any(|(_, r)| r.access >= Access::Read && r.zone.matches(zone))
    }

    /// Whether a request from `ip` at `now_ms` may use the credential;
    /// the reason otherwise.
    pub fn admits(&self, ip: Option<IpAddr>, now_ms: i64) -> Result<(), String> {
        if let Some(t) = self.expires_at_ms {
            if now_ms >= t {
                return Err("the credential has expired".into());
            }
        }
        if self.sources.is_empty() {
            return Ok(());
        }
        match ip {
            Some(ip) if self.sources.iter().any(|n| n.contains(&ip)) => Ok(()),
            Some(ip) => Err(format!("the credential may not be used from {ip}")),
            None => Err("the credential is limited to source addresses".into()),
        }
    }

    /// The rules as written (their numbers are their positions here).
    pub fn rules_as_written(&self) -> Vec<Rule> {
        let mut v: Vec<&(usize, Rule)> = self.rules.iter().collect();
        v.sort_by_key(|(n, _)| *n);
        v.into_iter().map(|(_, r)| r.clone()).collect()
    }
}

/// A policy as JSON (the API's body, the CLI's file, the stored column).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// The rules; order matters only between equally specific rules.
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
    /// Source networks (CIDR) the credential may be used from; empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// Expiry, unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
}

/// One rule as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// A zone name, or `*` for every zone.
    pub zone: String,
    /// The zone and every zone below it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub subtree: bool,
    /// Owner pattern relative to the zone (`@`, `www`, `_acme-challenge.*`); absent: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Record types; absent: all but LUA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub types: Option<Vec<String>>,
    /// `none`, `read` or `write`.
    pub access: Access,
    /// Whether the rule also covers the records the pool's template wrote.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub template: bool,
}

impl PolicySpec {
    /// Parses and checks every rule.
    pub fn parse(&self) -> Result<Policy, PolicyError> {
        let mut rules = Vec::with_capacity(self.rules.len());
        for (i, r) in self.rules.iter().enumerate() {
            rules.push(
                r.parse()
                    .map_err(|PolicyError(m)| PolicyError(format!("rule {}: {m}", i + 1)))?,
            );
        }
        let sources = self
            .sources
            .iter()
            .map(|s| {
                IpNet::from_str(s.trim())
                    .or_else(|_| IpAddr::from_str(s.trim()).map(IpNet::from))
                    .map_err(|_| PolicyError(format!("source {s:?} is not an address or CIDR")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Policy::new(
            rules,
            sources,
            self.expires.map(|s| s.saturating_mul(1000)),
        ))
    }
}

impl RuleSpec {
    fn parse(&self) -> Result<Rule, PolicyError> {
        let z = self.zone.trim();
        let zone = if z == "*" {
            if self.subtree {
                return Err(PolicyError("zone \"*\" cannot be a subtree".into()));
            }
            ZoneMatch::Any
        } else {
            let name = Name::from_str(z)
                .map_err(|e| PolicyError(format!("zone {z:?}: {e}")))?
                .to_lowercase();
            let mut fqdn = name.to_ascii();
            if !fqdn.ends_with('.') {
                fqdn.push('.');
            }
            if self.subtree {
                ZoneMatch::Subtree(fqdn)
            } else {
                ZoneMatch::Exact(fqdn)
            }
        };
        let owner = self.owner.as_deref().map(OwnerPattern::parse).transpose()?;
        let types = self
            .types
            .as_ref()
            .map(|ts| {
                ts.iter()
                    .map(|t| parse_type(t).map_err(PolicyError))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        if types.as_ref().is_some_and(Vec::is_empty) {
            return Err(PolicyError(
                "types is empty; leave it out for all types".into(),
            ));
        }
        Ok(Rule {
            zone,
            owner,
            types,
            access: self.access,
            template: self.template,
        })
    }
}

fn label_count(fqdn: &str) -> usize {
    fqdn.trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
        .count()
}

/// Whether `name` is `zone` or below it (both lower-case FQDNs).
pub fn is_at_or_below(name: &str, zone: &str) -> bool {
    zone == "." || name == zone || name.strip_suffix(zone).is_some_and(|p| p.ends_with('.'))
}

/// The labels of `owner` below `zone`, leftmost first; `None` outside it.
fn relative_labels<'a>(owner: &'a str, zone: &str) -> Option<Vec<&'a str>> {
    if owner == zone {
        return Some(Vec::new());
    }
    if !is_at_or_below(owner, zone) {
        return None;
    }
    let rel = &owner[..owner.len() - zone.len()];
    Some(rel.trim_end_matches('.').split('.').collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str) -> Policy {
        serde_json::from_str::<PolicySpec>(json)
            .expect("json")
            .parse()
            .expect("policy")
    }

    #[test]
    fn acme_challenge_only() {
        let p = policy(
            r#"{"rules":[{"zone":"acme.pool.test","owner":"_acme-challenge.*","types":["TXT"],"access":"write"}]}"#,
        );
        let z = "acme.pool.test.";
        let w = |o: &str, t| p.check(z, o, t, Access::Write, false);
        assert_eq!(
            w("_acme-challenge.acme.pool.test.", RecordType::TXT),
            Verdict::Allowed(1)
        );
        assert_eq!(
            w("_acme-challenge.www.acme.pool.test.", RecordType::TXT),
            Verdict::Allowed(1)
        );
        assert!(matches!(
            w("_acme-challenge.acme.pool.test.", RecordType::A),
            Verdict::Denied(_)
        ));
        assert!(matches!(
            w("www.acme.pool.test.", RecordType::TXT),
            Verdict::Denied(_)
        ));
        assert!(matches!(
            w("x._acme-challenge.acme.pool.test.", RecordType::TXT),
            Verdict::Denied(_)
        ));
        assert!(matches!(
            p.check(
                "other.pool.test.",
                "_acme-challenge.other.pool.test.",
                RecordType::TXT,
                Access::Write,
                false
            ),
            Verdict::Denied(_)
        ));
    }

    #[test]
    fn most_specific_rule_wins_whatever_the_order() {
        let p = policy(
            r#"{"rules":[
                {"zone":"pool.test","subtree":true,"access":"write"},
                {"zone":"acme.pool.test","owner":"www","access":"read"},
                {"zone":"acme.pool.test","owner":"www","types":["A"],"access":"none"}
            ]}"#,
        );
        let z = "acme.pool.test.";
        assert!(
            matches!(p.check(z, "www.acme.pool.test.", RecordType::A, Access::Read, false), Verdict::Denied(m) if m.contains("rule 3"))
        );
        assert!(
            matches!(p.check(z, "www.acme.pool.test.", RecordType::TXT, Access::Write, false), Verdict::Denied(m) if m.contains("rule 2"))
        );
        assert_eq!(
            p.check(
                z,
                "www.acme.pool.test.",
                RecordType::TXT,
                Access::Read,
                false
            ),
            Verdict::Allowed(2)
        );
        assert_eq!(
            p.check(
                z,
                "mail.acme.pool.test.",
                RecordType::MX,
                Access::Write,
                false
            ),
            Verdict::Allowed(1)
        );
        assert!(
            matches!(p.check("pool.test.", "x.pool.test.", RecordType::A, Access::Write, true), Verdict::Denied(m) if m.contains("template"))
        );
        assert!(
            matches!(p.check("example.test.", "example.test.", RecordType::A, Access::Read, false), Verdict::Denied(m) if m.contains("no rule"))
        );
    }

    #[test]
    fn lua_must_be_named() {
        let p = policy(r#"{"rules":[{"zone":"*","access":"write"}]}"#);
        assert!(matches!(
            p.check("a.test.", "a.test.", crate::zone::LUA, Access::Write, false),
            Verdict::Denied(_)
        ));
        assert_eq!(
            Policy::everything().check("a.test.", "a.test.", crate::zone::LUA, Access::Write, true),
            Verdict::Allowed(2)
        );
    }

    #[test]
    fn sources_and_expiry() {
        let p = policy(r#"{"rules":[],"sources":["10.0.0.0/8","192.0.2.7"],"expires":100}"#);
        assert!(p.admits(Some("10.1.2.3".parse().unwrap()), 1_000).is_ok());
        assert!(p.admits(Some("192.0.2.7".parse().unwrap()), 1_000).is_ok());
        assert!(p.admits(Some("192.0.2.8".parse().unwrap()), 1_000).is_err());
        assert!(p.admits(None, 1_000).is_err());
        assert!(p
            .admits(Some("10.1.2.3".parse().unwrap()), 100_000)
            .is_err());
    }

    #[test]
    fn bad_specs_are_refused_with_the_rule_number() {
        let bad = |j: &str| {
            serde_json::from_str::<PolicySpec>(j)
                .map_err(|e| e.to_string())
                .and_then(|s| s.parse().map_err(|e| e.to_string()))
                .expect_err(j)
        };
        assert!(bad(r#"{"rules":[{"zone":"a.test","access":"write"},{"zone":"a.test","types":["BOGUS"],"access":"write"}]}"#).contains("rule 2"));
        assert!(
            bad(r#"{"rules":[{"zone":"a.test","owner":"a*b","access":"write"}]}"#)
                .contains("whole label")
        );
        assert!(bad(r#"{"rules":[{"zone":"a.test","access":"all"}]}"#).contains("unknown variant"));
        assert!(bad(r#"{"rules":[],"sources":["nope"]}"#).contains("nope"));
        assert!(
            bad(r#"{"rules":[{"zone":"a.test","types":[],"access":"read"}]}"#).contains("empty")
        );
    }

    #[test]
    fn spec_round_trips() {
        let j = r#"{"rules":[{"zone":"acme.pool.test","owner":"_acme-challenge.*","types":["TXT"],"access":"write"}]}"#;
        let s: PolicySpec = serde_json::from_str(j).unwrap();
        assert_eq!(serde_json::to_string(&s).unwrap(), j);
    }
}

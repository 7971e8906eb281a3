//! Name rules shared by every adapter: NS set normalisation and the PSL split.

use std::collections::BTreeSet;
use std::fmt;

use crate::error::RegistrarError;

/// A normalised nameserver set: lowercase, no trailing dot, deduplicated,
/// sorted, at least two entries (every registry requires two).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NsSet(Vec<String>);

impl NsSet {
    /// Normalises `hosts` and checks there are at least two valid host names.
    pub fn new<I, S>(hosts: I) -> Result<Self, RegistrarError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let set = normalise_ns(hosts);
        for h in &set {
            if !is_host_name(h) {
                return Err(RegistrarError::InvalidInput(format!(
                    "invalid nameserver host {h:?}"
                )));
            }
        }
        if set.len() < 2 {
            return Err(RegistrarError::InvalidInput(format!(
                "at least 2 nameservers are required, got {}",
                set.len()
            )));
        }
        Ok(Self(set))
    }

    /// Normalises what a registrar returned, without the minimum-size rule
    /// (a registry may show fewer than two, e.g. mid-change).
    pub fn observed<I, S>(hosts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self(normalise_ns(hosts))
    }

    /// The hosts, sorted.
    pub fn hosts(&self) -> &[String] {
        &self.0
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for NsSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

/// Lowercases, trims, strips one trailing dot, drops empties, dedupes and sorts.
pub fn normalise_ns<I, S>(hosts: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    hosts
        .into_iter()
        .map(|h| h.as_ref().trim().trim_end_matches('.').to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn is_host_name(h: &str) -> bool {
    h.len() <= 253
        && h.contains('.')
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A registrable domain split at the public suffix: `example.co.uk` →
/// SLD `example`, TLD `co.uk` (what Namecheap and Dynadot want).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RegistrableDomain {
    sld: String,
    tld: String,
}

impl RegistrableDomain {
    /// Parses a domain that must be exactly one label above its public suffix.
    pub fn parse(domain: &str) -> Result<Self, RegistrarError> {
        split_registrable(domain)
    }

    /// The label below the public suffix (`example`).
    pub fn sld(&self) -> &str {
        &self.sld
    }

    /// The public suffix (`co.uk`).
    pub fn tld(&self) -> &str {
        &self.tld
    }

    /// The whole name (`example.co.uk`).
    pub fn name(&self) -> String {
        format!("{}.{}", self.sld, self.tld)
    }
}

impl fmt::Display for RegistrableDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.sld, self.tld)
    }
}

/// Splits `domain` at its public suffix (PSL). Errors when the name is a bare
/// suffix or sits below the registrable domain (registrars hold registrable domains only).
pub fn split_registrable(domain: &str) -> Result<RegistrableDomain, RegistrarError> {
    let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if d.is_empty() || !is_host_name(&d) {
        return Err(RegistrarError::InvalidInput(format!(
            "invalid domain {domain:?}"
        )));
    }
    let suffix = psl::suffix(d.as_bytes())
        .and_then(|s| std::str::from_utf8(s.as_bytes()).ok().map(str::to_owned))
        .ok_or_else(|| RegistrarError::InvalidInput(format!("no public suffix in {d:?}")))?;
    if suffix.len() >= d.len() {
        return Err(RegistrarError::InvalidInput(format!(
            "{d:?} is a public suffix"
        )));
    }
    let sld = &d[..d.len() - suffix.len() - 1];
    if sld.contains('.') {
        return Err(RegistrarError::InvalidInput(format!(
            "{d:?} is not a registrable domain (registrable: {}.{suffix})",
            sld.rsplit('.').next().unwrap_or(sld)
        )));
    }
    Ok(RegistrableDomain {
        sld: sld.to_string(),
        tld: suffix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_both_sides_the_same_way() {
        let a = NsSet::new(["NS2.Example.NET.", "ns1.example.net", "ns1.example.net."]).unwrap();
        let b = NsSet::observed(["ns1.example.net", "ns2.example.net"]);
        assert_eq!(a, b);
        assert_eq!(a.hosts(), ["ns1.example.net", "ns2.example.net"]);
    }

    #[test]
    fn needs_two_valid_hosts() {
        assert!(NsSet::new(["ns1.example.net", "NS1.example.net."]).is_err());
        assert!(NsSet::new(["ns1.example.net", "bad host.example"]).is_err());
        assert!(NsSet::new(["ns1.example.net", ""]).is_err());
    }

    #[test]
    fn psl_split() {
        let d = split_registrable("Example.CO.UK.").unwrap();
        assert_eq!((d.sld(), d.tld()), ("example", "co.uk"));
        let d = split_registrable("omani.works").unwrap();
        assert_eq!((d.sld(), d.tld()), ("omani", "works"));
        assert!(split_registrable("co.uk").is_err());
        assert!(split_registrable("a.b.example.com").is_err());
    }
}

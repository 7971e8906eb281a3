//! Who may transfer which zone: address prefixes and TSIG keys, per zone
//! suffix. Nothing transfers without a matching rule.

use super::tsig::KeySet;
use hickory_proto::rr::Name;
use std::net::IpAddr;

/// An address prefix (`192.0.2.0/24`, `2001:db8::/32`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

impl Prefix {
    /// Parses `addr/len` or a bare address (a host prefix).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a.parse::<IpAddr>().ok()?, Some(l.parse::<u8>().ok()?)),
            None => (s.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = len.unwrap_or(max);
        (len <= max).then_some(Prefix { addr, len })
    }

    /// Whether `ip` is inside the prefix (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                u32::from(net) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// One rule: these zones may be transferred from these addresses, with
/// this key when one is named.
#[derive(Debug, Clone)]
pub struct TransferRule {
    /// Zones covered: each zone at or below one of these names; empty: every zone.
    pub zones: Vec<Name>,
    /// Source prefixes allowed (never empty in a resolved configuration).
    pub from: Vec<Prefix>,
    /// The TSIG key the request must be signed with (`None`: any or none).
    pub key: Option<Name>,
}

impl TransferRule {
    fn covers(&self, zone: &Name) -> bool {
        self.zones.is_empty() || self.zones.iter().any(|z| z.zone_of(zone))
    }

    fn admits(&self, ip: IpAddr, key: Option<&Name>) -> bool {
        let key_ok = match (&self.key, key) {
            (None, _) => true,
            (Some(want), Some(got)) => want == got,
            (Some(_), None) => false,
        };
        key_ok && self.from.iter().any(|p| p.contains(ip))
    }
}

/// The transfer policy a server enforces: the TSIG keys it knows and the
/// rules. Swapped whole when keys or configuration change.
#[derive(Debug, Clone, Default)]
pub struct TransferPolicy {
    /// Keys by name.
    pub keys: KeySet,
    /// Rules; a transfer is allowed when any admits it.
    pub rules: Vec<TransferRule>,
}

impl TransferPolicy {
    /// Whether `zone` may be transferred to `ip` whose request was signed
    /// with `key` (already verified) or not signed.
    pub fn allows(&self, zone: &Name, ip: IpAddr, key: Option<&Name>) -> bool {
        self.rules
            .iter()
            .any(|r| r.covers(zone) && r.admits(ip, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[test]
    fn prefixes_match_what_they_cover() {
        let p = Prefix::parse("192.0.2.0/24").unwrap();
        assert!(p.contains("192.0.2.77".parse().unwrap()));
        assert!(!p.contains("192.0.3.1".parse().unwrap()));
        assert!(p.contains("::ffff:192.0.2.1".parse().unwrap()));
        let host = Prefix::parse("127.0.0.1").unwrap();
        assert!(host.contains("127.0.0.1".parse().unwrap()));
        assert!(!host.contains("127.0.0.2".parse().unwrap()));
        assert!(Prefix::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        let v6 = Prefix::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!v6.contains("192.0.2.1".parse().unwrap()));
        for bad in ["", "1.2.3.4/33", "::/129", "x/8", "10.0.0.0/"] {
            assert!(Prefix::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_rule_needs_zone_address_and_key() {
        let policy = TransferPolicy {
            keys: KeySet::new(),
            rules: vec![TransferRule {
                zones: vec![n("pool.test.")],
                from: vec![Prefix::parse("127.0.0.0/8").unwrap()],
                key: Some(n("xfr.")),
            }],
        };
        let lo = "127.0.0.1".parse().unwrap();
        assert!(policy.allows(&n("pool.test."), lo, Some(&n("XFR."))));
        assert!(policy.allows(&n("acme.pool.test."), lo, Some(&n("xfr."))));
        assert!(!policy.allows(&n("other.test."), lo, Some(&n("xfr."))));
        assert!(!policy.allows(&n("pool.test."), lo, None));
        assert!(!policy.allows(&n("pool.test."), lo, Some(&n("other."))));
        assert!(!policy.allows(
            &n("pool.test."),
            "192.0.2.1".parse().unwrap(),
            Some(&n("xfr."))
        ));
        assert!(!TransferPolicy::default().allows(&n("pool.test."), lo, None));
    }
}

//! Address parsing as PowerDNS's `ComboAddress` / `Netmask` do it. Pure.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// glibc `inet_aton`: 1–4 dot-separated parts, each decimal, octal (`0…`)
/// or hex (`0x…`); the last part fills the remaining bytes (`10.1` is
/// `10.0.0.1`). PowerDNS parses IPv4 `ComboAddress`es with it.
pub(super) fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    if s.is_empty() {
        return None;
    }
    let mut vals = [0u64; 4];
    let mut n = 0;
    // `s.split('.')` by hand: the generic searcher cost more than the parse.
    let mut rest = s;
    loop {
        let (p, more) = match rest.bytes().position(|b| b == b'.') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        if n == vals.len() {
            return None;
        }
        let (digits, radix) = if let Some(h) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X"))
        {
            (h, 16)
        } else if p.len() > 1 && p.starts_with('0') {
            (&p[1..], 8)
        } else {
            (p, 10)
        };
        if p.is_empty() {
            return None;
        }
        let v = if digits.is_empty() {
            // "0x" alone is 0 in glibc.
            0
        } else {
            from_radix(digits, radix)?
        };
        vals[n] = v;
        n += 1;
        match more {
            Some(m) => rest = m,
            None => break,
        }
    }
    let (last, head) = vals[..n].split_last()?;
    let last = *last;
    if head.iter().any(|&v| v > 255) {
        return None;
    }
    let max_last: u64 = match head.len() {
        0 => 0xffff_ffff,
        1 => 0x00ff_ffff,
        2 => 0xffff,
        _ => 0xff,
    };
    if last > max_last {
        return None;
    }
    let mut n: u64 = last;
    for (i, v) in head.iter().enumerate() {
        n |= v << (24 - 8 * i);
    }
    Some(Ipv4Addr::from(n as u32))
}

/// `u64::from_str_radix` (an optional leading `+`, then at least one
/// digit; overflow fails) without its generic overhead.
fn from_radix(s: &str, radix: u32) -> Option<u64> {
    let digits = s.strip_prefix('+').unwrap_or(s);
    if digits.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for c in digits.bytes() {
        let d = char::from(c).to_digit(radix)?;
        v = v.checked_mul(u64::from(radix))?.checked_add(u64::from(d))?;
    }
    Some(v)
}

/// An address as text, as `IpAddr`'s `Display` writes it (IPv4 without
/// going through the formatter, which cost more than the LUA function
/// producing the address).
pub(super) fn ip_text(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let mut s = String::with_capacity(15);
            for (i, o) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    s.push('.');
                }
                if o >= 100 {
                    s.push(char::from(b'0' + o / 100));
                }
                if o >= 10 {
                    s.push(char::from(b'0' + o / 10 % 10));
                }
                s.push(char::from(b'0' + o % 10));
            }
            s
        }
        IpAddr::V6(v6) => v6.to_string(),
    }
}

/// `ComboAddress(str)` without a port: IPv4 via `inet_aton`, else IPv6.
///
/// Like PowerDNS, `a.b.c.d:port` (one colon, decimal port ≤ 65535) is an
/// IPv4 address with a port, so `1:2` reads as `0.0.0.1`.
pub(super) fn parse_combo(s: &str) -> Option<IpAddr> {
    let Some(pos) = s.find(':') else {
        return inet_aton(s).map(IpAddr::V4);
    };
    let port = &s[pos + 1..];
    if !port.is_empty()
        && port.bytes().all(|c| c.is_ascii_digit())
        && port.parse::<u32>().is_ok_and(|p| p <= 65535)
    {
        if let Some(v4) = inet_aton(&s[..pos]) {
            return Some(IpAddr::V4(v4));
        }
    }
    let s = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(s);
    s.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

/// An address prefix (`Netmask`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Netmask {
    /// The network address, host bits cleared.
    pub(super) network: IpAddr,
    /// Prefix length.
    pub(super) bits: u8,
}

impl Netmask {
    /// Parse `addr[/bits]`; a bare address is a host route.
    pub(super) fn parse(s: &str) -> Option<Netmask> {
        let (a, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b.trim().parse::<u8>().ok()?)),
            None => (s, None),
        };
        let addr = parse_combo(a.trim())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        if bits > max {
            return None;
        }
        Some(Netmask::new(addr, bits))
    }

    /// The prefix of `addr` with `bits` bits.
    pub(super) fn new(addr: IpAddr, bits: u8) -> Netmask {
        Netmask {
            network: truncate(&addr, bits),
            bits,
        }
    }

    /// Whether `addr` is inside (same family only, as PowerDNS).
    pub(super) fn matches(&self, addr: &IpAddr) -> bool {
        self.network.is_ipv4() == addr.is_ipv4() && truncate(addr, self.bits) == self.network
    }
}

impl std::fmt::Display for Netmask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.bits)
    }
}

/// `addr` with all but the first `bits` bits cleared.
pub(super) fn truncate(addr: &IpAddr, bits: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let b = u32::from(bits.min(32));
            let mask = if b == 0 { 0 } else { u32::MAX << (32 - b) };
            IpAddr::V4(Ipv4Addr::from(u32::from(*v4) & mask))
        }
        IpAddr::V6(v6) => {
            let b = u32::from(bits.min(128));
            let mask = if b == 0 { 0 } else { u128::MAX << (128 - b) };
            IpAddr::V6(Ipv6Addr::from(u128::from(*v6) & mask))
        }
    }
}

/// A set of netmasks (`NetmaskGroup`); `!` negates a mask as in PowerDNS.
#[derive(Debug, Clone, Default)]
pub(super) struct NetmaskGroup {
    masks: Vec<(Netmask, bool)>,
}

impl NetmaskGroup {
    /// Add one mask (`"192.0.2.0/24"` or `"!192.0.2.1"`).
    pub(super) fn add(&mut self, s: &str) -> Option<()> {
        let (neg, body) = match s.strip_prefix('!') {
            Some(b) => (true, b),
            None => (false, s),
        };
        let nm = Netmask::parse(body)?;
        self.masks.push((nm, neg));
        Some(())
    }

    /// Longest matching mask decides; no match is false.
    pub(super) fn matches(&self, addr: &IpAddr) -> bool {
        self.masks
            .iter()
            .filter(|(m, _)| m.matches(addr))
            .max_by_key(|(m, _)| m.bits)
            .is_some_and(|(_, neg)| !neg)
    }

    /// Number of masks.
    pub(super) fn len(&self) -> usize {
        self.masks.len()
    }

    /// Whether no mask was added.
    pub(super) fn is_empty(&self) -> bool {
        self.masks.is_empty()
    }

    /// Masks as text, comma separated (`NetmaskGroup::toString`).
    pub(super) fn to_text(&self) -> String {
        self.masks
            .iter()
            .map(|(m, n)| if *n { format!("!{m}") } else { m.to_string() })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// C `atoi`: optional whitespace and sign, then leading digits; else 0.
pub(super) fn atoi(s: &str) -> i64 {
    let t = s.trim_start();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut v: i64 = 0;
    for c in digits.bytes().take_while(u8::is_ascii_digit) {
        v = v.saturating_mul(10).saturating_add(i64::from(c - b'0'));
    }
    if neg {
        -v
    } else {
        v
    }
}

/// C++ `std::stol`: like `atoi` but fails when no digits were read.
pub(super) fn stol(s: &str) -> Option<i64> {
    let t = s.trim_start();
    let body = t.strip_prefix(['-', '+']).unwrap_or(t);
    if !body.bytes().next().is_some_and(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(atoi(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inet_aton_forms() {
        assert_eq!(inet_aton("192.0.2.1"), Some(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(inet_aton("10.1"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(inet_aton("0x7f.1"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(inet_aton("010.0.0.1"), Some(Ipv4Addr::new(8, 0, 0, 1)));
        assert_eq!(inet_aton("256.0.0.1"), None);
        assert_eq!(inet_aton("a.b.c.d"), None);
        assert_eq!(inet_aton("1.2.3.4.5"), None);
        assert_eq!(inet_aton(""), None);
        assert_eq!(inet_aton("+1.2.0+3.4"), Some(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(inet_aton("1.+0x2.3.4"), None);
        assert_eq!(inet_aton("1.+.3.4"), None);
        assert_eq!(inet_aton("1.0x.3.4"), Some(Ipv4Addr::new(1, 0, 3, 4)));
        assert_eq!(inet_aton("99999999999999999999"), None);
        assert_eq!(
            inet_aton("4294967295"),
            Some(Ipv4Addr::new(255, 255, 255, 255))
        );
        assert_eq!(inet_aton("08.1.1.1"), None);
        assert_eq!(inet_aton("1..1"), None);
    }

    #[test]
    fn ip_text_is_display() {
        for a in [
            0u32,
            1,
            9,
            10,
            99,
            100,
            255,
            0x0a00_0001,
            0xc000_020a,
            u32::MAX,
        ] {
            for shift in [0, 8, 16, 24] {
                let ip = IpAddr::V4(Ipv4Addr::from(a.rotate_left(shift)));
                assert_eq!(ip_text(&ip), ip.to_string());
            }
        }
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(ip_text(&v6), v6.to_string());
    }

    #[test]
    fn netmasks() {
        let nm = Netmask::parse("192.0.2.77/24").unwrap();
        assert_eq!(nm.to_string(), "192.0.2.0/24");
        assert!(nm.matches(&"192.0.2.1".parse().unwrap()));
        assert!(!nm.matches(&"192.0.3.1".parse().unwrap()));
        assert!(!nm.matches(&"::1".parse().unwrap()));
        assert!(Netmask::parse("0.0.0.0/0")
            .unwrap()
            .matches(&"8.8.8.8".parse().unwrap()));
        assert!(Netmask::parse("1.2.3.4/33").is_none());
        let mut g = NetmaskGroup::default();
        g.add("10.0.0.0/8").unwrap();
        g.add("!10.1.0.0/16").unwrap();
        assert!(g.matches(&"10.2.0.1".parse().unwrap()));
        assert!(!g.matches(&"10.1.0.1".parse().unwrap()));
        assert!(!g.matches(&"11.0.0.1".parse().unwrap()));
    }

    #[test]
    fn c_number_parsing() {
        assert_eq!(atoi("15"), 15);
        assert_eq!(atoi(" 7x"), 7);
        assert_eq!(atoi("abc"), 0);
        assert_eq!(atoi("-3"), -3);
        assert_eq!(stol("1x"), Some(1));
        assert_eq!(stol("x1"), None);
    }
}

//! The pure halves of PowerDNS's LUA functions: pickers, selectors, the
//! `create*` synthesizers, and typing of returned strings into rdata.
//! No IO and no Lua here, so each rule is tested on its own.

use super::addr::{atoi, ip_text, parse_combo, stol};
use super::hash::address_hash;
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinDecoder, BinEncodable, Restrict};
use rand::seq::SliceRandom;
use rand::Rng;
use std::net::IpAddr;

/// A function was called with arguments PowerDNS rejects (→ SERVFAIL).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(super) struct SynthError(pub(super) String);

fn err<T>(msg: impl Into<String>) -> Result<T, SynthError> {
    Err(SynthError(msg.into()))
}

/// `pickrandom`: one uniformly random item; empty list is an error.
pub(super) fn pick_random<T: Clone, R: Rng + ?Sized>(
    items: &[T],
    rng: &mut R,
) -> Result<T, SynthError> {
    match items.choose(rng) {
        Some(v) => Ok(v.clone()),
        None => err("The items list cannot be empty"),
    }
}

/// `pickhashed`: `items[addressOnlyHash(bestwho) % len]`.
pub(super) fn pick_hashed<T: Clone>(bestwho: &IpAddr, items: &[T]) -> Result<T, SynthError> {
    if items.is_empty() {
        return err("The items list cannot be empty");
    }
    let idx = address_hash(bestwho) as usize % items.len();
    Ok(items[idx].clone())
}

/// Running sums of the weights (C++ `int` arithmetic in PowerDNS).
fn cumulative<T>(items: &[(i64, T)]) -> Result<(Vec<i64>, i64), SynthError> {
    if items.is_empty() {
        return err("The items list cannot be empty");
    }
    let mut sum: i64 = 0;
    let mut cum = Vec::with_capacity(items.len());
    for (w, _) in items {
        sum = sum.wrapping_add(*w);
        cum.push(sum);
    }
    if sum <= 0 {
        // 4.7 divides by zero here (crash); later versions throw. Negative
        // sums are undefined in every version, so refuse them too.
        return err("The sum of items cannot be zero");
    }
    Ok((cum, sum))
}

/// `std::upper_bound`: the first item whose running sum exceeds `r`.
fn upper_bound<T: Clone>(items: &[(i64, T)], cum: &[i64], r: i64) -> Result<T, SynthError> {
    let idx = cum.partition_point(|&c| c <= r);
    match items.get(idx) {
        Some((_, v)) => Ok(v.clone()),
        None => err("weighted pick out of range"),
    }
}

/// `pickwrandom`: weighted random over `(weight, value)` in map order.
pub(super) fn pick_weighted_random<T: Clone, R: Rng + ?Sized>(
    items: &[(i64, T)],
    rng: &mut R,
) -> Result<T, SynthError> {
    let (cum, sum) = cumulative(items)?;
    let r = rng.gen_range(0..sum);
    upper_bound(items, &cum, r)
}

/// `pickwhashed`: weighted pick by `addressOnlyHash(bestwho) % sum`.
///
/// `items` must already be in PowerDNS's iteration order
/// ([`super::hash::unordered_map_order`]).
pub(super) fn pick_weighted_hashed<T: Clone>(
    bestwho: &IpAddr,
    items: &[(i64, T)],
) -> Result<T, SynthError> {
    let (cum, sum) = cumulative(items)?;
    // uint32_t % int: the int converts to unsigned.
    let r = i64::from(address_hash(bestwho) % (sum as u32).max(1));
    upper_bound(items, &cum, r)
}

/// `picknamehashed` (4.9+): weighted pick by `DNSName::hash(qname) % sum`.
pub(super) fn pick_weighted_name_hashed<T: Clone>(
    qname: &Name,
    items: &[(i64, T)],
) -> Result<T, SynthError> {
    let (cum, sum) = cumulative(items)?;
    let r = (u64::from(super::hash::name_hash(qname)) % sum as u64) as i64;
    upper_bound(items, &cum, r)
}

/// `pickrandomsample`: `n` distinct items in random order; `n ≤ 0` → none.
pub(super) fn pick_random_sample<T: Clone, R: Rng + ?Sized>(
    n: i64,
    items: &[T],
    rng: &mut R,
) -> Result<Vec<T>, SynthError> {
    if items.is_empty() {
        return err("The items list cannot be empty");
    }
    let count = n.clamp(0, items.len() as i64) as usize;
    let mut v = items.to_vec();
    v.shuffle(rng);
    v.truncate(count);
    Ok(v)
}

/// Selector for the `if*up` functions (`useSelector`): `all`, `random`,
/// `hashed`, `pickclosest`; anything else warns and acts as `random`.
pub(super) fn use_selector<R: Rng + ?Sized>(
    selector: &str,
    bestwho: &IpAddr,
    candidates: &[IpAddr],
    rng: &mut R,
    closest: &dyn Fn(&[IpAddr]) -> Result<IpAddr, SynthError>,
) -> Result<Vec<IpAddr>, SynthError> {
    Ok(match selector {
        "all" => candidates.to_vec(),
        "random" => vec![pick_random(candidates, rng)?],
        "hashed" => vec![pick_hashed(bestwho, candidates)?],
        "pickclosest" => vec![closest(candidates)?],
        other => {
            tracing::warn!(
                selector = other,
                "LUA record called with unknown selector; using random"
            );
            vec![pick_random(candidates, rng)?]
        }
    })
}

/// `pickclosest` given a lat/lon lookup: smallest squared degree distance
/// (longitude difference folded as PowerDNS does), ties broken by `tie`.
pub(super) fn pick_closest(
    who: (f64, f64),
    candidates: &[(IpAddr, (f64, f64))],
    tie: &mut dyn FnMut(usize) -> usize,
) -> Result<IpAddr, SynthError> {
    if candidates.is_empty() {
        return err("The IP list cannot be empty");
    }
    let dist = |(lat, lon): (f64, f64)| {
        let latdiff = who.0 - lat;
        let mut londiff = who.1 - lon;
        if londiff > 180.0 {
            londiff = 360.0 - londiff;
        }
        latdiff * latdiff + londiff * londiff
    };
    let best = candidates
        .iter()
        .map(|(_, ll)| dist(*ll))
        .fold(f64::INFINITY, f64::min);
    let ties: Vec<IpAddr> = candidates
        .iter()
        .filter(|(_, ll)| dist(*ll) == best)
        .map(|(a, _)| *a)
        .collect();
    let i = tie(ties.len()).min(ties.len() - 1);
    Ok(ties[i])
}

/// Raw labels of `qname` below `zone` (`qname.makeRelative(zone).getRawLabels()`).
pub(super) fn relative_labels(qname: &Name, zone: &Name) -> Vec<String> {
    let q: Vec<String> = raw_labels(qname);
    let z = zone.num_labels() as usize;
    let keep = if zone.zone_of(qname) {
        q.len().saturating_sub(z)
    } else {
        q.len()
    };
    q.into_iter().take(keep).collect()
}

/// All raw labels of a name, as text.
pub(super) fn raw_labels(name: &Name) -> Vec<String> {
    name.iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect()
}

/// `%02x` hex pairs as C `sscanf("%02x%02x%02x%02x")` reads them.
fn scan_hex4(s: &str) -> Option<[u32; 4]> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = [0u32; 4];
    for slot in &mut out {
        let mut v = 0u32;
        let mut n = 0;
        while n < 2 {
            match b.get(i).and_then(|c| char::from(*c).to_digit(16)) {
                Some(d) => {
                    v = v * 16 + d;
                    i += 1;
                    n += 1;
                }
                None => break,
            }
        }
        if n == 0 {
            return None;
        }
        *slot = v;
    }
    Some(out)
}

/// `createForward()` as PowerDNS 4.x: labels relative to the *zone*
/// (5.0 made them relative to the wildcard's base, commit 3a9f092).
///
/// `a.b.c.d.<rest>` → `a.b.c.d`; `<prefix>-a-b-c-d` → `a.b.c.d`; a
/// 10-character label `xxHHHHHHHH` → hex (4.7 ignores exactly two leading
/// characters); anything else → `0.0.0.0`. A non-numeric octet in the
/// dashed form throws in C++ (`std::stol`), which PowerDNS does not catch:
/// that is an error (SERVFAIL) here too.
pub(super) fn create_forward(qname: &Name, zone: &Name) -> Result<String, SynthError> {
    const ZERO: &str = "0.0.0.0";
    // The labels of `relative_labels`, borrowed: no per-label strings.
    let total = qname.iter().len();
    let keep = if zone.zone_of(qname) {
        total.saturating_sub(zone.num_labels() as usize)
    } else {
        total
    };
    if keep >= 4 {
        let mut joined = String::with_capacity(32);
        for (i, label) in qname.iter().take(4).enumerate() {
            if i > 0 {
                joined.push('.');
            }
            joined.push_str(&String::from_utf8_lossy(label));
        }
        return Ok(parse_combo(&joined).map_or_else(|| ZERO.to_string(), |a| ip_text(&a)));
    }
    if let Some(first) = qname.iter().take(keep).next() {
        let input = String::from_utf8_lossy(first);
        let parts = || input.split('-').filter(|p| !p.is_empty());
        let count = parts().count();
        if count >= 4 {
            let mut ret = String::with_capacity(input.len());
            for octet in parts().skip(count - 4) {
                let Some(v) = stol(octet) else {
                    return err(format!("stol: invalid octet {octet:?}"));
                };
                if !(0..=255).contains(&v) {
                    return Ok(ZERO.to_string());
                }
                if !ret.is_empty() {
                    ret.push('.');
                }
                ret.push_str(octet);
            }
            return Ok(ret);
        }
        if input.len() == 10 {
            if let Some(p) = input.get(2..).and_then(scan_hex4) {
                return Ok(format!("{}.{}.{}.{}", p[0], p[1], p[2], p[3]));
            }
        }
    }
    Ok(ZERO.to_string())
}

/// `createForward6()` as PowerDNS 4.x: exactly 8 labels relative to the
/// zone (joined with `:`) or one label with dashes; otherwise `::`.
pub(super) fn create_forward6(qname: &Name, zone: &Name) -> String {
    const ZERO: &str = "::";
    let parts = relative_labels(qname, zone);
    let text = if parts.len() == 8 {
        parts.join(":")
    } else if parts.len() == 1 && parts[0].contains('-') {
        parts[0].replace('-', ":")
    } else {
        return ZERO.to_string();
    };
    parse_combo(&text).map_or_else(|| ZERO.to_string(), |a| a.to_string())
}

/// The subset of `boost::format` LUA records use: `%N%` positional,
/// `%N$s` positional, `%s`/`%d`/... sequential, `%%`. Missing arguments
/// are empty (PowerDNS disables boost's too-few/too-many errors); any
/// other directive is a format error.
pub(super) fn boost_format(fmt: &str, args: &[String]) -> Result<String, SynthError> {
    let b = fmt.as_bytes();
    let mut out = String::with_capacity(fmt.len() + 32);
    let mut i = 0;
    let mut seq = 0usize;
    let arg = |n: usize| args.get(n).map(String::as_str).unwrap_or("");
    while i < b.len() {
        if b[i] != b'%' {
            let start = i;
            while i < b.len() && b[i] != b'%' {
                i += 1;
            }
            out.push_str(&fmt[start..i]);
            continue;
        }
        i += 1;
        match b.get(i) {
            Some(b'%') => {
                out.push('%');
                i += 1;
            }
            Some(c) if c.is_ascii_digit() => {
                let start = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                let n: usize = fmt[start..i]
                    .parse()
                    .map_err(|_| SynthError("bad format".into()))?;
                match b.get(i) {
                    Some(b'%') if n >= 1 => {
                        out.push_str(arg(n - 1));
                        i += 1;
                    }
                    Some(b'$')
                        if n >= 1 && b.get(i + 1).is_some_and(|c| c.is_ascii_alphabetic()) =>
                    {
                        out.push_str(arg(n - 1));
                        i += 2;
                    }
                    _ => return err("bad format string"),
                }
            }
            Some(c) if b"sdiuxXoc".contains(c) => {
                out.push_str(arg(seq));
                seq += 1;
                i += 1;
            }
            _ => return err("bad format string"),
        }
    }
    Ok(out)
}

/// `createReverse(format, exceptions)` as PowerDNS 4.x.
///
/// `%1%`..`%4%` are the address octets in address order, `%5%` is
/// `a-b-c-d`, `%6%` 8 hex digits. Fewer than four labels → `unknown`; a
/// bad format → `error`. An exception map compares as addresses; a label
/// or key that is not an address throws in PowerDNS (→ error here too).
pub(super) fn create_reverse(
    qname: &Name,
    format: &str,
    exceptions: &[(String, String)],
) -> Result<String, SynthError> {
    let labels = raw_labels(qname);
    if labels.len() < 4 {
        return Ok("unknown".into());
    }
    if !exceptions.is_empty() {
        let req_text = format!("{}.{}.{}.{}", labels[3], labels[2], labels[1], labels[0]);
        let Some(req) = parse_combo(&req_text) else {
            return err(format!(
                "Unable to convert presentation address '{req_text}'"
            ));
        };
        for (k, v) in exceptions {
            let Some(a) = parse_combo(k) else {
                return err(format!("Unable to convert presentation address '{k}'"));
            };
            if a == req {
                return Ok(v.clone());
            }
        }
    }
    let dashed = format!("{}-{}-{}-{}", labels[3], labels[2], labels[1], labels[0]);
    let hex: String = (0..4)
        .rev()
        .map(|i| format!("{:02x}", atoi(&labels[i]) as i32 as u32))
        .collect();
    let args = vec![
        labels[3].clone(),
        labels[2].clone(),
        labels[1].clone(),
        labels[0].clone(),
        dashed,
        hex,
    ];
    Ok(boost_format(format, &args).unwrap_or_else(|_| "error".into()))
}

/// `createReverse6(format, exceptions)` as PowerDNS 4.7: `%1%`..`%32%`
/// nibbles from the most significant, `%33%` the compressed address with
/// `:` → `-` (4.7 does not pad a leading/trailing `-`; that fix, issue
/// 7524, came later), `%34%`..`%41%` the eight 4-nibble groups.
pub(super) fn create_reverse6(
    qname: &Name,
    format: &str,
    exceptions: &[(String, String)],
) -> String {
    let labels = raw_labels(qname);
    if labels.len() < 32 {
        return "unknown".into();
    }
    let first = |i: usize| labels[i].chars().next().unwrap_or('0');
    let mut together = String::with_capacity(39);
    let mut quads = Vec::with_capacity(8);
    for chunk in 0..8 {
        if chunk != 0 {
            together.push(':');
        }
        let mut q = String::with_capacity(4);
        for quartet in 0..4 {
            let c = first(31 - chunk * 4 - quartet);
            q.push(c);
            together.push(c);
        }
        quads.push(q);
    }
    let Some(ip6) = parse_combo(&together) else {
        return "unknown".into();
    };
    for (k, v) in exceptions {
        if parse_combo(k) == Some(ip6) {
            return v.clone();
        }
    }
    let dashed = ip6.to_string().replace(':', "-");
    let mut args: Vec<String> = (0..32).rev().map(|i| labels[i].clone()).collect();
    args.push(dashed);
    args.extend(quads);
    boost_format(format, &args).unwrap_or_else(|_| "unknown".into())
}

/// Lua 5.1 / LuaJIT number-to-string (`%.14g`), which PowerDNS 4.x's
/// LuaJIT build applies when numbers are read as strings.
pub(super) fn lua51_number(f: f64) -> String {
    format_g(f, 14)
}

/// C `printf("%.{prec}g")` (also C++ ostream's default with precision 6).
pub(super) fn format_g(f: f64, prec: usize) -> String {
    let prec = prec.max(1);
    if f.is_nan() {
        return if f.is_sign_negative() {
            "-nan".into()
        } else {
            "nan".into()
        };
    }
    if f.is_infinite() {
        return if f < 0.0 { "-inf".into() } else { "inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let sci = format!("{f:.*e}", prec - 1);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= prec as i32 {
        let mant = trim_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{f:.decimals$}")).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Parse one returned string as rdata of `rtype` the way PowerDNS's
/// `DNSRecordContent::make` reads zone-file content: names are absolute,
/// TXT content is wrapped in quotes (escapes apply, long text is split
/// into 255-byte strings).
pub(super) fn rdata_from_text(rtype: RecordType, content: &str) -> Result<RData, SynthError> {
    // The common results, without the zone-file lexer and the round trip.
    match rtype {
        RecordType::A => {
            if let Ok(a) = content.parse::<std::net::Ipv4Addr>() {
                return Ok(RData::A(a.into()));
            }
        }
        RecordType::AAAA => {
            if let Ok(a) = content.parse::<std::net::Ipv6Addr>() {
                return Ok(RData::AAAA(a.into()));
            }
        }
        _ => {}
    }
    let parsed = if rtype == RecordType::TXT {
        let bytes = super::record::unescape(content).map_err(|e| SynthError(e.to_string()))?;
        let chunks: Vec<&[u8]> = if bytes.is_empty() {
            vec![&[][..]]
        } else {
            bytes.chunks(255).collect()
        };
        RData::TXT(hickory_proto::rr::rdata::TXT::from_bytes(chunks))
    } else {
        RData::try_from_str(rtype, content)
            .map_err(|e| SynthError(format!("cannot parse {content:?} as {rtype}: {e}")))?
    };
    // A wire round trip makes every name absolute (the parser leaves
    // `www.example` relative) and proves the rdata encodes.
    let wire = parsed
        .to_bytes()
        .map_err(|e| SynthError(format!("cannot encode {content:?} as {rtype}: {e}")))?;
    let len = u16::try_from(wire.len()).map_err(|_| SynthError("rdata too long".into()))?;
    let mut dec = BinDecoder::new(&wire);
    RData::read(&mut dec, rtype, Restrict::new(len))
        .map_err(|e| SynthError(format!("cannot decode {content:?} as {rtype}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[test]
    fn create_forward_forms() {
        let z = n("example.test.");
        assert_eq!(
            create_forward(&n("1.2.3.4.static.example.test."), &z).unwrap(),
            "1.2.3.4"
        );
        assert_eq!(
            create_forward(&n("ip-10-0-0-1.static.example.test."), &z).unwrap(),
            "10.0.0.1"
        );
        assert_eq!(
            create_forward(&n("ip0a0b0c0d.example.test."), &z).unwrap(),
            "10.11.12.13"
        );
        // 4.7 only accepts exactly two prefix characters before the hex.
        assert_eq!(
            create_forward(&n("ipv0a0b0c0d.example.test."), &z).unwrap(),
            "0.0.0.0"
        );
        assert_eq!(
            create_forward(&n("a.b.c.d.example.test."), &z).unwrap(),
            "0.0.0.0"
        );
        assert_eq!(
            create_forward(&n("1-2-3-999.example.test."), &z).unwrap(),
            "0.0.0.0"
        );
        assert_eq!(create_forward(&n("example.test."), &z).unwrap(), "0.0.0.0");
        assert!(create_forward(&n("ip-a-b-c-d.example.test."), &z).is_err());
    }

    #[test]
    fn create_forward6_forms() {
        let z = n("example.test.");
        assert_eq!(
            create_forward6(&n("2001-db8--1.example.test."), &z),
            "2001:db8::1"
        );
        assert_eq!(
            create_forward6(&n("2001.db8.0.0.0.0.0.1.example.test."), &z),
            "2001:db8::1"
        );
        // Verified on 4.7.3: two labels relative to the zone give "::".
        assert_eq!(
            create_forward6(&n("2001-db8--1.static6.example.test."), &z),
            "::"
        );
    }

    #[test]
    fn create_reverse_forms() {
        let q = n("5.2.0.192.in-addr.arpa.");
        // Verified on 4.7.3.
        assert_eq!(
            create_reverse(&q, "%5%.static.example.test", &[]).unwrap(),
            "192-0-2-5.static.example.test"
        );
        assert_eq!(
            create_reverse(&q, "ip-%1%-%2%-%3%-%4%", &[]).unwrap(),
            "ip-192-0-2-5"
        );
        assert_eq!(create_reverse(&q, "%6%.hex", &[]).unwrap(), "c0000205.hex");
        let exc = vec![("192.0.2.5".to_string(), "special.example.".to_string())];
        assert_eq!(create_reverse(&q, "%5%", &exc).unwrap(), "special.example.");
        assert_eq!(
            create_reverse(&n("192.in-addr.arpa."), "%5%", &[]).unwrap(),
            "unknown"
        );
        assert_eq!(create_reverse(&q, "%q", &[]).unwrap(), "error");
    }

    #[test]
    fn create_reverse6_forms() {
        // 2001:db8::1
        let nibbles = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.";
        let q = n(nibbles);
        assert_eq!(
            create_reverse6(&q, "%33%.example.", &[]),
            "2001-db8--1.example."
        );
        assert_eq!(
            create_reverse6(&q, "%1%%2%%3%%4%-%34%-%41%", &[]),
            "2001-2001-0001"
        );
        assert_eq!(create_reverse6(&n("1.ip6.arpa."), "%33%", &[]), "unknown");
    }

    #[test]
    fn hashed_pickers_are_deterministic() {
        let who: IpAddr = "192.0.2.10".parse().unwrap();
        let items: Vec<String> = (1..=5).map(|i| format!("198.51.100.{i}")).collect();
        let a = pick_hashed(&who, &items).unwrap();
        assert_eq!(a, pick_hashed(&who, &items).unwrap());
        assert_eq!(a, items[address_hash(&who) as usize % 5]);
        let w = vec![(1, "a"), (0, "b"), (3, "c")];
        let r = address_hash(&who) % 4;
        let expect = if r < 1 { "a" } else { "c" };
        assert_eq!(pick_weighted_hashed(&who, &w).unwrap(), expect);
        assert!(pick_weighted_hashed(&who, &[(0, "a")]).is_err());
        assert!(pick_hashed::<String>(&who, &[]).is_err());
    }

    #[test]
    fn random_pickers_distribute() {
        let mut rng = StdRng::seed_from_u64(7);
        let items = ["a", "b", "c", "d"];
        let mut counts = [0u32; 4];
        for _ in 0..8000 {
            let v = pick_random(&items, &mut rng).unwrap();
            counts[items.iter().position(|x| *x == v).unwrap()] += 1;
        }
        assert!(
            counts.iter().all(|&c| (1700..2300).contains(&c)),
            "{counts:?}"
        );
        let w = [(1, "x"), (3, "y")];
        let ys = (0..8000)
            .filter(|_| pick_weighted_random(&w, &mut rng).unwrap() == "y")
            .count();
        assert!((5600..6400).contains(&ys), "{ys}");
        let s = pick_random_sample(2, &items, &mut rng).unwrap();
        assert_eq!(s.len(), 2);
        assert_ne!(s[0], s[1]);
        assert!(pick_random_sample(0, &items, &mut rng).unwrap().is_empty());
        assert_eq!(pick_random_sample(9, &items, &mut rng).unwrap().len(), 4);
    }

    #[test]
    fn closest_with_ties() {
        let c = vec![
            ("192.0.2.1".parse().unwrap(), (52.0, 5.0)),
            ("192.0.2.2".parse().unwrap(), (40.0, -74.0)),
        ];
        let mut tie = |_: usize| 0;
        assert_eq!(
            pick_closest((51.0, 4.0), &c, &mut tie).unwrap().to_string(),
            "192.0.2.1"
        );
        assert_eq!(
            pick_closest((41.0, -70.0), &c, &mut tie)
                .unwrap()
                .to_string(),
            "192.0.2.2"
        );
    }

    #[test]
    fn formats() {
        let a = vec!["x".to_string(), "y".to_string()];
        assert_eq!(boost_format("%2%-%1%-%%-%3%", &a).unwrap(), "y-x-%-");
        assert_eq!(boost_format("%s.%s", &a).unwrap(), "x.y");
        assert!(boost_format("%q", &a).is_err());
        assert_eq!(lua51_number(42.0), "42");
        assert_eq!(lua51_number(1.5), "1.5");
        assert_eq!(lua51_number(1e20), "1e+20");
        assert_eq!(lua51_number(0.1), "0.1");
    }

    #[test]
    fn typing_results() {
        assert_eq!(
            rdata_from_text(RecordType::A, "192.0.2.1")
                .unwrap()
                .to_string(),
            "192.0.2.1"
        );
        assert!(rdata_from_text(RecordType::A, "not-an-ip").is_err());
        assert!(rdata_from_text(RecordType::AAAA, "192.0.2.1").is_err());
        assert!(rdata_from_text(RecordType::A, "").is_err());
        let c = rdata_from_text(RecordType::CNAME, "www.example.com").unwrap();
        assert_eq!(c.to_string(), "www.example.com.");
        let mx = rdata_from_text(RecordType::MX, "10 mx.example.com").unwrap();
        assert_eq!(mx.to_string(), "10 mx.example.com.");
        let txt = rdata_from_text(RecordType::TXT, &"a".repeat(300)).unwrap();
        match txt {
            RData::TXT(t) => assert_eq!(
                t.txt_data.iter().map(|s| s.len()).collect::<Vec<_>>(),
                vec![255, 45]
            ),
            other => panic!("{other:?}"),
        }
        let srv = rdata_from_text(RecordType::SRV, "0 5 443 t.example").unwrap();
        assert_eq!(srv.to_string(), "0 5 443 t.example.");
    }
}

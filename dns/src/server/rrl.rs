//! Response rate limiting (RRL) for UDP, in the manner of Knot's `mod-rrl`
//! and NSD's `rrl.c`: a fixed-size table of buckets, each counting the
//! responses of one (source prefix, response class) in the current second.
//!
//! Spoofed-source floods use an authoritative server to reflect and amplify
//! traffic at a victim; the victim's prefix is the source of the queries.
//! Past `rate` responses of a class in a second, responses to that prefix
//! are dropped, except every `slip`-th, which is a bare TC=1 reply: a real
//! client behind that prefix retries over TCP (which a spoofer cannot), and
//! the victim receives a small fraction of small packets.
//!
//! Memory is the table and nothing else: `table_size` buckets of 8 bytes,
//! whatever the number of sources (a million buckets is 8 MiB). A bucket is
//! one `AtomicU64` (tag, second, count, slip counter) updated by
//! compare-and-swap, so the UDP loops share the table without locks. Two
//! keys landing in one bucket are told apart by a 20-bit tag; the newcomer
//! takes the bucket over and both start counting afresh. Collisions thus
//! only ever let responses through (fail open, as Knot), never limit a
//! source for another's traffic. Buckets are placed by keyed SipHash so a
//! flood cannot aim collisions at a chosen prefix.

use std::hash::Hasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// The classes of responses counted apart (BIND's and Knot's split).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseClass {
    /// NOERROR with records in the answer section.
    Answer,
    /// NXDOMAIN (what random-subdomain floods produce).
    Nxdomain,
    /// NOERROR with an empty answer section: NODATA and referrals.
    Nodata,
    /// Every other rcode (REFUSED, SERVFAIL, FORMERR, NOTIMP, …).
    Error,
}

impl ResponseClass {
    /// Every class, in the order of their slots.
    pub const ALL: [ResponseClass; 4] = [
        ResponseClass::Answer,
        ResponseClass::Nxdomain,
        ResponseClass::Nodata,
        ResponseClass::Error,
    ];

    /// The metrics label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseClass::Answer => "answer",
            ResponseClass::Nxdomain => "nxdomain",
            ResponseClass::Nodata => "nodata",
            ResponseClass::Error => "error",
        }
    }

    /// The slot of this class in per-class arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The class of an encoded response, read from its header (rcode and
    /// answer count), so packet-cache hits and planned answers are judged
    /// alike.
    pub fn of_message(msg: &[u8]) -> ResponseClass {
        let rcode = msg.get(3).map_or(0xF, |b| b & 0x0F);
        let answers = match (msg.get(6), msg.get(7)) {
            (Some(&hi), Some(&lo)) => u16::from_be_bytes([hi, lo]),
            _ => 0,
        };
        match (rcode, answers) {
            (0, 0) => ResponseClass::Nodata,
            (0, _) => ResponseClass::Answer,
            (3, _) => ResponseClass::Nxdomain,
            _ => ResponseClass::Error,
        }
    }
}

/// What to do with a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it.
    Pass,
    /// Over the rate: send nothing.
    Drop,
    /// Over the rate, but this one slips: send a TC=1 reply instead.
    Slip,
}

/// Rate limiting settings (plain data; the control plane fills it from
/// `[rrl]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrlSettings {
    /// Responses per second per prefix, per class (index:
    /// [`ResponseClass::index`]); 0 leaves the class unlimited.
    pub rates: [u32; 4],
    /// Every `slip`-th limited response is a TC=1 reply (0: drop all;
    /// 1: truncate all).
    pub slip: u32,
    /// IPv4 prefix length sources are grouped by.
    pub ipv4_prefix: u8,
    /// IPv6 prefix length sources are grouped by.
    pub ipv6_prefix: u8,
    /// Buckets in the table (rounded up to a power of two).
    pub table_size: usize,
    /// Sources never limited (by default loopback, which no one off this
    /// host can spoof, and which local health checks and benchmarks use).
    pub exempt: Vec<ipnet::IpNet>,
    /// At most one log line per this interval summarises what was held
    /// back (never a line per response).
    pub log_interval: std::time::Duration,
}

/// Sources exempt by default: the loopback networks.
pub fn loopback() -> Vec<ipnet::IpNet> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect()
}

impl Default for RrlSettings {
    fn default() -> Self {
        RrlSettings {
            rates: [200; 4],
            slip: 2,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            table_size: 1 << 20,
            exempt: loopback(),
            log_interval: std::time::Duration::from_secs(10),
        }
    }
}

/// Bits of a bucket word: tag (20) | second (16) | count (20) | slip (8).
const TAG_BITS: u32 = 20;
const SECOND_BITS: u32 = 16;
const COUNT_BITS: u32 = 20;
const SLIP_BITS: u32 = 8;
const COUNT_MAX: u64 = (1 << COUNT_BITS) - 1;

/// One bucket, unpacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bucket {
    tag: u64,
    second: u64,
    count: u64,
    slip: u64,
}

impl Bucket {
    fn unpack(w: u64) -> Bucket {
        Bucket {
            tag: w >> (SECOND_BITS + COUNT_BITS + SLIP_BITS),
            second: (w >> (COUNT_BITS + SLIP_BITS)) & ((1 << SECOND_BITS) - 1),
            count: (w >> SLIP_BITS) & COUNT_MAX,
            slip: w & ((1 << SLIP_BITS) - 1),
        }
    }

    fn pack(self) -> u64 {
        (self.tag << (SECOND_BITS + COUNT_BITS + SLIP_BITS))
            | (self.second << (COUNT_BITS + SLIP_BITS))
            | (self.count << SLIP_BITS)
            | self.slip
    }
}

/// The rate limiter shared by every UDP loop.
#[derive(Debug)]
pub struct Rrl {
    settings: RrlSettings,
    table: Box<[AtomicU64]>,
    mask: usize,
    keys: (u64, u64),
}

impl Rrl {
    /// A limiter with an empty table of `settings.table_size` buckets.
    pub fn new(settings: RrlSettings) -> Rrl {
        let size = settings.table_size.clamp(1, 1 << 30).next_power_of_two();
        Rrl {
            table: (0..size).map(|_| AtomicU64::new(0)).collect(),
            mask: size - 1,
            keys: (rand::random(), rand::random()),
            settings: RrlSettings {
                slip: settings.slip.min((1 << SLIP_BITS) - 1),
                ..settings
            },
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &RrlSettings {
        &self.settings
    }

    /// Bytes held by the table (all the memory the limiter ever uses).
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.table)
    }

    /// Buckets in the table.
    pub fn buckets(&self) -> usize {
        self.table.len()
    }

    /// Count one response of `class` to `src` at `now` (seconds on any
    /// steady clock) and say whether it may go.
    pub fn check(&self, src: IpAddr, class: ResponseClass, now: u64) -> Verdict {
        let rate = u64::from(self.settings.rates[class.index()]);
        if rate == 0 {
            return Verdict::Pass;
        }
        let src = src.to_canonical();
        if self.settings.exempt.iter().any(|net| net.contains(&src)) {
            return Verdict::Pass;
        }
        let hash = self.hash(src, class);
        let tag = hash >> (64 - TAG_BITS);
        let second = now & ((1 << SECOND_BITS) - 1);
        let Some(slot) = self.table.get(hash as usize & self.mask) else {
            return Verdict::Pass;
        };
        let mut old = slot.load(Ordering::Relaxed);
        loop {
            let b = Bucket::unpack(old);
            let mut next = if b.tag == tag && b.second == second {
                Bucket {
                    count: (b.count + 1).min(COUNT_MAX),
                    ..b
                }
            } else {
                // A new second, or another key took the bucket: start over.
                Bucket {
                    tag,
                    second,
                    count: 1,
                    slip: 0,
                }
            };
            let verdict = if next.count <= rate {
                Verdict::Pass
            } else {
                let slip = u64::from(self.settings.slip);
                next.slip = if slip == 0 { 0 } else { (b.slip + 1) % slip };
                if slip > 0 && next.slip == 0 {
                    Verdict::Slip
                } else {
                    Verdict::Drop
                }
            };
            match slot.compare_exchange_weak(old, next.pack(), Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return verdict,
                Err(current) => old = current,
            }
        }
    }

    /// The bucket hash of (prefix of `src`, `class`).
    fn hash(&self, src: IpAddr, class: ResponseClass) -> u64 {
        let mut h = siphasher::sip::SipHasher13::new_with_keys(self.keys.0, self.keys.1);
        match src.to_canonical() {
            IpAddr::V4(v4) => {
                let bits = u32::from(v4) & mask32(self.settings.ipv4_prefix);
                h.write_u8(4);
                h.write_u32(bits);
            }
            IpAddr::V6(v6) => {
                let bits = u128::from(v6) & mask128(self.settings.ipv6_prefix);
                h.write_u8(6);
                h.write_u128(bits);
            }
        }
        h.write_u8(class as u8);
        h.finish()
    }
}

/// The netmask of an IPv4 prefix length.
fn mask32(len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0)
}

/// The netmask of an IPv6 prefix length.
fn mask128(len: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(len.min(128)))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(rate: u32, slip: u32) -> Rrl {
        Rrl::new(RrlSettings {
            rates: [rate; 4],
            slip,
            table_size: 1024,
            ..RrlSettings::default()
        })
    }

    #[test]
    fn loopback_is_exempt_by_default() {
        let rrl = small(1, 0);
        for _ in 0..10 {
            assert_eq!(
                rrl.check(ip("127.0.0.9"), ResponseClass::Answer, 1),
                Verdict::Pass
            );
            assert_eq!(
                rrl.check(ip("::ffff:127.0.0.9"), ResponseClass::Answer, 1),
                Verdict::Pass
            );
        }
        let strict = Rrl::new(RrlSettings {
            exempt: Vec::new(),
            ..rrl.settings().clone()
        });
        strict.check(ip("127.0.0.9"), ResponseClass::Answer, 1);
        assert_eq!(
            strict.check(ip("127.0.0.9"), ResponseClass::Answer, 1),
            Verdict::Drop
        );
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn limits_per_second_and_slips_every_nth() {
        let rrl = small(5, 2);
        let verdicts: Vec<_> = (0..15)
            .map(|_| rrl.check(ip("192.0.2.1"), ResponseClass::Nxdomain, 100))
            .collect();
        assert_eq!(verdicts.iter().filter(|v| **v == Verdict::Pass).count(), 5);
        assert_eq!(verdicts.iter().filter(|v| **v == Verdict::Slip).count(), 5);
        assert_eq!(verdicts.iter().filter(|v| **v == Verdict::Drop).count(), 5);
        // The next second starts afresh.
        assert_eq!(
            rrl.check(ip("192.0.2.1"), ResponseClass::Nxdomain, 101),
            Verdict::Pass
        );
    }

    #[test]
    fn prefixes_and_classes_count_apart() {
        let rrl = small(1, 0);
        assert_eq!(
            rrl.check(ip("192.0.2.1"), ResponseClass::Answer, 7),
            Verdict::Pass
        );
        // Same /24: limited; slip 0 drops everything.
        assert_eq!(
            rrl.check(ip("192.0.2.200"), ResponseClass::Answer, 7),
            Verdict::Drop
        );
        assert_eq!(
            rrl.check(ip("192.0.2.1"), ResponseClass::Nxdomain, 7),
            Verdict::Pass
        );
        assert_eq!(
            rrl.check(ip("192.0.3.1"), ResponseClass::Answer, 7),
            Verdict::Pass
        );
        // IPv6 by /56.
        assert_eq!(
            rrl.check(ip("2001:db8:0:100::1"), ResponseClass::Answer, 7),
            Verdict::Pass
        );
        assert_eq!(
            rrl.check(ip("2001:db8:0:1ff::2"), ResponseClass::Answer, 7),
            Verdict::Drop
        );
        assert_eq!(
            rrl.check(ip("2001:db8:0:200::1"), ResponseClass::Answer, 7),
            Verdict::Pass
        );
    }

    #[test]
    fn a_zero_rate_leaves_a_class_alone_and_slip_one_truncates_all() {
        let rrl = Rrl::new(RrlSettings {
            rates: [0, 1, 1, 1],
            slip: 1,
            table_size: 64,
            ..RrlSettings::default()
        });
        for _ in 0..100 {
            assert_eq!(
                rrl.check(ip("192.0.2.1"), ResponseClass::Answer, 1),
                Verdict::Pass
            );
        }
        rrl.check(ip("192.0.2.1"), ResponseClass::Error, 1);
        for _ in 0..10 {
            assert_eq!(
                rrl.check(ip("192.0.2.1"), ResponseClass::Error, 1),
                Verdict::Slip
            );
        }
    }

    #[test]
    fn classes_from_the_header() {
        let msg = |rcode: u8, an: u8| [0, 0, 0x84, rcode, 0, 1, 0, an, 0, 0, 0, 0];
        assert_eq!(ResponseClass::of_message(&msg(0, 1)), ResponseClass::Answer);
        assert_eq!(ResponseClass::of_message(&msg(0, 0)), ResponseClass::Nodata);
        assert_eq!(
            ResponseClass::of_message(&msg(3, 0)),
            ResponseClass::Nxdomain
        );
        assert_eq!(ResponseClass::of_message(&msg(5, 0)), ResponseClass::Error);
        assert_eq!(ResponseClass::of_message(&[1]), ResponseClass::Error);
    }

    /// The memory figure the docs quote: a table of 2^20 buckets is 8 MiB
    /// and stays so after a million distinct /24s, and a flooding prefix is
    /// still limited among them.
    #[test]
    fn a_million_prefixes_fit_in_the_fixed_table() {
        let rrl = Rrl::new(RrlSettings {
            rates: [10; 4],
            slip: 0,
            ..RrlSettings::default()
        });
        assert_eq!(rrl.memory_bytes(), 8 << 20);
        let victim = ip("198.51.100.1");
        let mut passed = 0;
        for i in 0u32..1_000_000 {
            // Distinct /24s: the low byte is masked away, so step by 256.
            let src = IpAddr::V4(std::net::Ipv4Addr::from(0x0A00_0000 + (i << 8)));
            rrl.check(src, ResponseClass::Nxdomain, 5);
            if i % 1000 == 0 && rrl.check(victim, ResponseClass::Nxdomain, 5) == Verdict::Pass {
                passed += 1;
            }
        }
        assert_eq!(rrl.memory_bytes(), 8 << 20, "no growth");
        // 1,000 queries from the victim: 10 pass, plus 10 more after each
        // collision reset its bucket (1,000 other keys between two checks
        // in 2^20 buckets: about one reset in the whole run is expected;
        // nine would be a one-in-a-million run).
        assert!((10..100).contains(&passed), "{passed} passed");
    }
}

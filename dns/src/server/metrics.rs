//! Query counters of the DNS server, cheap enough for the hot path.
//!
//! Every UDP receive loop owns a cache-line-aligned shard and is its only
//! writer, so counting is a relaxed load and store on a line no other core
//! touches (no lock-prefixed instruction, no allocation, no contention).
//! TCP requests and offloaded LUA answers run on tasks of their own and
//! share one shard per transport with `fetch_add`. A scrape sums the shards
//! ([`DnsMetrics::snapshot`]); the control plane renders them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The response codes counted by name; anything else counts as `other`.
const RCODES: [&str; RCODE_SLOTS] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
    "NXRRSET", "NOTAUTH", "NOTZONE", "BADVERS", "other",
];
const RCODE_SLOTS: usize = 13;

/// The query types counted by name (label value, type code); anything else
/// counts as `other`. A fixed list keeps the label set bounded whatever
/// clients send.
const QTYPES: [(&str, u16); QTYPE_SLOTS - 1] = [
    ("A", 1),
    ("NS", 2),
    ("CNAME", 5),
    ("SOA", 6),
    ("PTR", 12),
    ("MX", 15),
    ("TXT", 16),
    ("AAAA", 28),
    ("SRV", 33),
    ("NAPTR", 35),
    ("DS", 43),
    ("RRSIG", 46),
    ("NSEC", 47),
    ("DNSKEY", 48),
    ("NSEC3PARAM", 51),
    ("CDS", 59),
    ("CDNSKEY", 60),
    ("SVCB", 64),
    ("HTTPS", 65),
    ("IXFR", 251),
    ("AXFR", 252),
    ("ANY", 255),
    ("CAA", 257),
];
const QTYPE_SLOTS: usize = 24;

/// Upper bounds (seconds) of the answer-latency histogram buckets; the
/// last, implicit bucket is `+Inf`. From a packet-cache hit (~µs) to a LUA
/// evaluation at its time limit.
pub const LATENCY_BUCKETS: [f64; BUCKETS] = [
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 1.0,
];
const BUCKETS: usize = 14;
/// The same bounds in nanoseconds, for the hot path.
const BUCKET_NANOS: [u64; BUCKETS] = [
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    1_000_000_000,
];

/// The transports counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// DNS over UDP.
    Udp,
    /// DNS over TCP.
    Tcp,
}

impl Transport {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// One writer's counters, alone on its cache lines.
#[repr(align(128))]
struct Shard {
    queries: [AtomicU64; RCODE_SLOTS * QTYPE_SLOTS],
    buckets: [AtomicU64; BUCKETS + 1],
    latency_nanos: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    /// Rate-limited responses by class × action (see [`RrlAction`]).
    rrl: [AtomicU64; RRL_SLOTS],
    /// Requests by what their COOKIE option presented (see [`CookieSeen`]).
    cookies: [AtomicU64; COOKIE_SLOTS],
}

/// Rate-limit counters: 4 response classes × 2 actions.
const RRL_SLOTS: usize = 8;
/// Cookie counters: one per [`CookieSeen`].
const COOKIE_SLOTS: usize = 4;

/// What rate limiting did with a response over the rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RrlAction {
    /// Nothing was sent.
    Dropped,
    /// A TC=1 (or BADCOOKIE) reply was sent instead.
    Slipped,
}

impl RrlAction {
    /// Both actions, in slot order.
    pub const ALL: [RrlAction; 2] = [RrlAction::Dropped, RrlAction::Slipped];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RrlAction::Dropped => "dropped",
            RrlAction::Slipped => "slipped",
        }
    }
}

/// What a request's COOKIE option presented, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieSeen {
    /// A client cookie alone, or with a server cookie that did not verify.
    ClientOnly,
    /// A valid server cookie (exempt from rate limiting).
    Valid,
    /// A malformed option (answered FORMERR).
    Malformed,
    /// A rate-limited request answered BADCOOKIE with a fresh cookie.
    BadCookie,
}

impl CookieSeen {
    /// Every kind, in slot order.
    pub const ALL: [CookieSeen; COOKIE_SLOTS] = [
        CookieSeen::ClientOnly,
        CookieSeen::Valid,
        CookieSeen::Malformed,
        CookieSeen::BadCookie,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            CookieSeen::ClientOnly => "client_only",
            CookieSeen::Valid => "valid",
            CookieSeen::Malformed => "malformed",
            CookieSeen::BadCookie => "badcookie_sent",
        }
    }
}

/// Why a TCP connection was closed by the server (or never served).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpClose {
    /// No query within the idle timeout.
    Idle,
    /// No first byte within the first-byte timeout (slowloris).
    FirstByte,
    /// Closed, idle, to make room for a new connection (oldest first).
    Evicted,
    /// Refused at accept: at a limit and nothing idle to close.
    Refused,
}

impl TcpClose {
    /// Every reason, in slot order.
    pub const ALL: [TcpClose; 4] = [
        TcpClose::Idle,
        TcpClose::FirstByte,
        TcpClose::Evicted,
        TcpClose::Refused,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            TcpClose::Idle => "idle_timeout",
            TcpClose::FirstByte => "first_byte_timeout",
            TcpClose::Evicted => "evicted",
            TcpClose::Refused => "refused",
        }
    }
}

/// TCP connection counters (accepts are rare next to UDP answers: shared
/// atomics).
#[derive(Debug, Default)]
pub struct TcpCounters {
    open: AtomicU64,
    accepted: AtomicU64,
    closed: [AtomicU64; 4],
}

impl TcpCounters {
    /// A connection was accepted and is now open.
    pub(super) fn opened(&self) {
        self.open.fetch_add(1, Ordering::Relaxed);
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// An open connection ended (for any reason).
    pub(super) fn ended(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Count a close by the server for `why`.
    pub(super) fn closed(&self, why: TcpClose) {
        if let Some(c) = self.closed.get(why as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Connections the server closed (or refused) for `why`.
    pub fn closed_for(&self, why: TcpClose) -> u64 {
        self.closed
            .get(why as usize)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

impl Shard {
    fn new() -> Self {
        Shard {
            queries: std::array::from_fn(|_| AtomicU64::new(0)),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            latency_nanos: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            cache_misses: AtomicU64::new(0),
            rrl: std::array::from_fn(|_| AtomicU64::new(0)),
            cookies: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// Adds `n` to `counter`: a plain load and store where this thread is the
/// shard's only writer, an atomic add where tasks share it.
#[inline]
fn add(counter: &AtomicU64, n: u64, exclusive: bool) {
    if exclusive {
        counter.store(
            counter.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    } else {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// The DNS server's counters (shared by every transport; clone the `Arc`).
pub struct DnsMetrics {
    /// One per UDP receive loop (a loop past the end uses `udp_shared`).
    udp_loops: Box<[Shard]>,
    udp_shared: Shard,
    tcp: Shard,
    /// TCP connections.
    pub tcp_connections: TcpCounters,
}

impl std::fmt::Debug for DnsMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsMetrics")
            .field("udp_loops", &self.udp_loops.len())
            .finish()
    }
}

impl Default for DnsMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Where a counted answer comes from.
#[derive(Clone, Copy)]
pub(super) struct Writer<'a> {
    shard: &'a Shard,
    exclusive: bool,
}

impl DnsMetrics {
    /// Counters with a private shard for each of as many UDP loops as the
    /// machine has cores (the runtime's default worker count).
    pub fn new() -> Self {
        let loops = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(64);
        DnsMetrics {
            udp_loops: (0..loops).map(|_| Shard::new()).collect(),
            udp_shared: Shard::new(),
            tcp: Shard::new(),
            tcp_connections: TcpCounters::default(),
        }
    }

    /// The writer for UDP receive loop `index`: its own shard while there
    /// is one (the loop must be its only writer), else the shared one.
    pub(super) fn udp_loop(&self, index: usize) -> Writer<'_> {
        match self.udp_loops.get(index) {
            Some(shard) => Writer {
                shard,
                exclusive: true,
            },
            None => self.shared(Transport::Udp),
        }
    }

    /// The writer shared by every task answering over `transport`.
    pub(super) fn shared(&self, transport: Transport) -> Writer<'_> {
        Writer {
            shard: match transport {
                Transport::Udp => &self.udp_shared,
                Transport::Tcp => &self.tcp,
            },
            exclusive: false,
        }
    }

    /// The counters summed over the shards, per transport.
    pub fn snapshot(&self) -> DnsSnapshot {
        let sum = |shards: &mut dyn Iterator<Item = &Shard>| {
            let mut out = TransportSnapshot::default();
            for s in shards {
                for (o, q) in out.queries.iter_mut().zip(&s.queries) {
                    *o += q.load(Ordering::Relaxed);
                }
                for (o, b) in out.buckets.iter_mut().zip(&s.buckets) {
                    *o += b.load(Ordering::Relaxed);
                }
                out.latency_seconds += s.latency_nanos.load(Ordering::Relaxed) as f64 / 1e9;
                out.cache_hits += s.cache_hits.load(Ordering::Relaxed);
                out.cache_misses += s.cache_misses.load(Ordering::Relaxed);
                for (o, c) in out.rrl.iter_mut().zip(&s.rrl) {
                    *o += c.load(Ordering::Relaxed);
                }
                for (o, c) in out.cookies.iter_mut().zip(&s.cookies) {
                    *o += c.load(Ordering::Relaxed);
                }
            }
            out
        };
        DnsSnapshot {
            udp: sum(&mut self.udp_loops.iter().chain([&self.udp_shared])),
            tcp: sum(&mut std::iter::once(&self.tcp)),
        }
    }
}

impl Writer<'_> {
    /// Count one answer: its rcode (the 12-bit extended code), qtype and
    /// how long it took.
    #[inline]
    pub(super) fn answered(&self, rcode: u16, qtype: Option<u16>, took: Duration) {
        let slot = rcode_slot(rcode) * QTYPE_SLOTS + qtype_slot(qtype);
        if let Some(c) = self.shard.queries.get(slot) {
            add(c, 1, self.exclusive);
        }
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BUCKET_NANOS
            .iter()
            .position(|&b| nanos <= b)
            .unwrap_or(BUCKETS);
        if let Some(c) = self.shard.buckets.get(bucket) {
            add(c, 1, self.exclusive);
        }
        add(&self.shard.latency_nanos, nanos, self.exclusive);
    }

    /// Count a packet-cache lookup.
    #[inline]
    pub(super) fn cache_lookup(&self, hit: bool) {
        let c = if hit {
            &self.shard.cache_hits
        } else {
            &self.shard.cache_misses
        };
        add(c, 1, self.exclusive);
    }

    /// Count a rate-limited response of `class`.
    #[inline]
    pub(super) fn rate_limited(&self, class: super::rrl::ResponseClass, action: RrlAction) {
        if let Some(c) = self.shard.rrl.get(class.index() * 2 + action as usize) {
            add(c, 1, self.exclusive);
        }
    }

    /// Count a request's COOKIE option.
    #[inline]
    pub(super) fn cookie(&self, seen: CookieSeen) {
        if let Some(c) = self.shard.cookies.get(seen as usize) {
            add(c, 1, self.exclusive);
        }
    }

    /// Count the COOKIE option a request presented, when it had one that
    /// was checked (a malformed one is counted where it is answered).
    #[inline]
    pub(super) fn presented(&self, presented: super::cookie::Presented) {
        use super::cookie::Presented;
        match presented {
            Presented::Valid(_) => self.cookie(CookieSeen::Valid),
            Presented::ClientOnly(_) => self.cookie(CookieSeen::ClientOnly),
            Presented::Absent | Presented::Malformed => {}
        }
    }
}

fn rcode_slot(rcode: u16) -> usize {
    match rcode {
        0..=10 => usize::from(rcode),
        16 => 11,
        _ => 12,
    }
}

/// The slot of a qtype: its index in [`QTYPES`] (a `match`, which the
/// compiler turns into a table lookup; the test keeps it in line with the list).
fn qtype_slot(qtype: Option<u16>) -> usize {
    match qtype {
        Some(1) => 0,
        Some(2) => 1,
        Some(5) => 2,
        Some(6) => 3,
        Some(12) => 4,
        Some(15) => 5,
        Some(16) => 6,
        Some(28) => 7,
        Some(33) => 8,
        Some(35) => 9,
        Some(43) => 10,
        Some(46) => 11,
        Some(47) => 12,
        Some(48) => 13,
        Some(51) => 14,
        Some(59) => 15,
        Some(60) => 16,
        Some(64) => 17,
        Some(65) => 18,
        Some(251) => 19,
        Some(252) => 20,
        Some(255) => 21,
        Some(257) => 22,
        _ => QTYPE_SLOTS - 1,
    }
}

/// The qtype of the first question of a DNS message, read from its bytes
/// without decoding the message (names in questions are not compressed).
pub(super) fn qtype_of(message: &[u8]) -> Option<u16> {
    let qdcount = u16::from_be_bytes([*message.get(4)?, *message.get(5)?]);
    if qdcount == 0 {
        return None;
    }
    let mut i = 12;
    loop {
        let len = usize::from(*message.get(i)?);
        if len == 0 {
            break;
        }
        if len & 0xC0 != 0 {
            return None;
        }
        i += 1 + len;
    }
    Some(u16::from_be_bytes([
        *message.get(i + 1)?,
        *message.get(i + 2)?,
    ]))
}

/// The rcode in an encoded message's header (the low 4 bits; an extended
/// rcode would need the OPT record, which only a cached BADVERS has).
pub(super) fn header_rcode(message: &[u8]) -> u16 {
    message.get(3).map_or(0, |b| u16::from(b & 0x0F))
}

/// One transport's counters at a scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct TransportSnapshot {
    /// Answers by rcode slot × qtype slot (see [`TransportSnapshot::queries`]).
    queries: [u64; RCODE_SLOTS * QTYPE_SLOTS],
    /// Answers per latency bucket (not cumulative; the last is `+Inf`).
    pub buckets: [u64; BUCKETS + 1],
    /// Total answer latency.
    pub latency_seconds: f64,
    /// Packet-cache hits.
    pub cache_hits: u64,
    /// Packet-cache misses (cacheable questions answered by planning).
    pub cache_misses: u64,
    rrl: [u64; RRL_SLOTS],
    cookies: [u64; COOKIE_SLOTS],
}

impl Default for TransportSnapshot {
    fn default() -> Self {
        TransportSnapshot {
            queries: [0; RCODE_SLOTS * QTYPE_SLOTS],
            buckets: [0; BUCKETS + 1],
            latency_seconds: 0.0,
            cache_hits: 0,
            cache_misses: 0,
            rrl: [0; RRL_SLOTS],
            cookies: [0; COOKIE_SLOTS],
        }
    }
}

impl TransportSnapshot {
    /// Every non-zero (rcode, qtype, answers) triple.
    pub fn queries(&self) -> impl Iterator<Item = (&'static str, &'static str, u64)> + '_ {
        self.queries
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(i, &n)| {
                let qtype = QTYPES
                    .get(i % QTYPE_SLOTS)
                    .map_or("other", |&(name, _)| name);
                (RCODES[i / QTYPE_SLOTS], qtype, n)
            })
    }

    /// Responses rate limiting held back, of `class`, by `action`.
    pub fn rate_limited(&self, class: super::rrl::ResponseClass, action: RrlAction) -> u64 {
        self.rrl
            .get(class.index() * 2 + action as usize)
            .copied()
            .unwrap_or(0)
    }

    /// Requests whose COOKIE option presented `seen`.
    pub fn cookies(&self, seen: CookieSeen) -> u64 {
        self.cookies.get(seen as usize).copied().unwrap_or(0)
    }

    /// Answers counted.
    pub fn answers(&self) -> u64 {
        self.buckets.iter().sum()
    }
}

/// Both transports' counters at a scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DnsSnapshot {
    /// Over UDP.
    pub udp: TransportSnapshot,
    /// Over TCP.
    pub tcp: TransportSnapshot,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_slot_and_bucket() {
        let m = DnsMetrics::new();
        m.udp_loop(0)
            .answered(0, Some(1), Duration::from_micros(10));
        m.udp_loop(0)
            .answered(3, Some(28), Duration::from_millis(3));
        m.udp_loop(1000)
            .answered(16, Some(999), Duration::from_secs(5));
        m.shared(Transport::Tcp)
            .answered(5, None, Duration::from_micros(60));
        m.udp_loop(0).cache_lookup(true);
        m.udp_loop(0).cache_lookup(false);
        let s = m.snapshot();
        let udp: Vec<_> = s.udp.queries().collect();
        assert_eq!(
            udp,
            vec![
                ("NOERROR", "A", 1),
                ("NXDOMAIN", "AAAA", 1),
                ("BADVERS", "other", 1)
            ]
        );
        assert_eq!(s.udp.buckets[0], 1);
        assert_eq!(s.udp.buckets[7], 1, "3 ms is in the 5 ms bucket");
        assert_eq!(s.udp.buckets[BUCKETS], 1, "5 s is past every bound");
        assert_eq!(s.udp.answers(), 3);
        assert!((s.udp.latency_seconds - 5.00301).abs() < 1e-9);
        assert_eq!((s.udp.cache_hits, s.udp.cache_misses), (1, 1));
        let tcp: Vec<_> = s.tcp.queries().collect();
        assert_eq!(tcp, vec![("REFUSED", "other", 1)]);
        assert_eq!(s.tcp.buckets[2], 1);
    }

    #[test]
    fn qtype_slots_follow_the_list() {
        for (i, &(_, code)) in QTYPES.iter().enumerate() {
            assert_eq!(qtype_slot(Some(code)), i, "{code}");
        }
        assert_eq!(qtype_slot(Some(999)), QTYPE_SLOTS - 1);
        assert_eq!(qtype_slot(None), QTYPE_SLOTS - 1);
    }

    #[test]
    fn reads_the_qtype_from_the_wire() {
        // id, flags, qd=1, an/ns/ar=0, "www.example." AAAA IN
        let mut q = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x03www\x07example\x00\x00\x1c\x00\x01");
        assert_eq!(qtype_of(&q), Some(28));
        assert_eq!(qtype_of(&q[..q.len() - 3]), None, "cut short");
        assert_eq!(qtype_of(&q[..5]), None);
        let mut none = q.clone();
        none[5] = 0;
        assert_eq!(qtype_of(&none), None, "no question");
        let mut compressed = q[..12].to_vec();
        compressed.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1]);
        assert_eq!(qtype_of(&compressed), None);
        assert_eq!(header_rcode(&[0, 1, 0x81, 0x83]), 3);
    }
}

//! Encoded answers, reused for identical questions (PowerDNS calls it
//! the packet cache).
//!
//! An authoritative answer is a pure function of the zone table and a few
//! request fields: the question bytes (name as spelled, so 0x20 case is
//! preserved for free), opcode, and EDNS presence, version, DO bit and UDP
//! size limit. The message id and the RD/CD bits are copied from each query
//! into the cached bytes. What is *not* cached: answers from zones with LUA
//! records (dynamic by design), queries carrying EDNS Client Subnet (the
//! answer echoes it), SERVFAIL and REFUSED, and an NXDOMAIN the first time
//! its question is seen (see [`Doorkeeper`]). TCP answers are cached apart
//! from UDP ones (never truncated).
//!
//! Cached bytes never hold a COOKIE option: the server cookie is made per
//! client and appended after the cached answer is copied out (the key notes
//! whether room was kept for it).
//!
//! Entries belong to one zone table snapshot: the first query after the
//! table is swapped starts a fresh generation, so an answer is never served
//! from zones that changed since. Entries also age out after
//! [`MAX_AGE`], well inside the signature renewal margin, so a cached
//! RRSIG is always one the signer would still hand out.

use super::query::Query;
use super::respond::{size_limit, Plan, MAX_UDP_PAYLOAD};
use super::ZoneSet;
use arc_swap::ArcSwap;
use hickory_proto::op::ResponseCode;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long an encoded answer may be reused.
pub const MAX_AGE: Duration = Duration::from_secs(600);

/// Everything an answer depends on besides the zone table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    question: Box<[u8]>,
    opcode: u8,
    edns: Option<EdnsKey>,
    /// TCP answers are never truncated; UDP ones may be.
    tcp: bool,
}

/// `None` without EDNS; else (version, DO, UDP size limit, whether a cookie
/// is to be appended: the planner kept room for it, which can change what
/// fits).
type EdnsKey = (u8, bool, u16, bool);

/// A [`Key`] borrowed from a query read in place: a lookup allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyRef<'a> {
    question: &'a [u8],
    opcode: u8,
    edns: Option<EdnsKey>,
    tcp: bool,
}

impl std::hash::Hash for Key {
    // The same hash as the borrowed form, so either finds the entry.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_ref().hash(state);
    }
}

impl quick_cache::Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        *self == key.as_ref()
    }
}

impl Key {
    /// The key of `request`, or `None` when its answer must not be cached
    /// (Client Subnet present).
    pub fn of(request: &Request) -> Option<Key> {
        let protocol = request.protocol();
        let edns = match request.edns.as_ref() {
            Some(e) => {
                if super::dynamic::client_subnet(Some(e)).is_some() {
                    return None;
                }
                Some((
                    e.version(),
                    e.flags().dnssec_ok,
                    size_limit(Some(e), protocol),
                    super::cookie::wants_cookie(Some(e)),
                ))
            }
            None => None,
        };
        Some(Key {
            question: request.queries.as_bytes().into(),
            opcode: u8::from(request.metadata.op_code),
            edns,
            tcp: protocol == Protocol::Tcp,
        })
    }

    fn as_ref(&self) -> KeyRef<'_> {
        KeyRef {
            question: &self.question,
            opcode: self.opcode,
            edns: self.edns,
            tcp: self.tcp,
        }
    }
}

impl<'a> KeyRef<'a> {
    /// The key of a query read in place (which never carries Client
    /// Subnet: [`Query::parse`] leaves such queries to the general path).
    /// `protocol`: what it came over.
    pub fn of(query: &Query<'a>, protocol: Protocol) -> KeyRef<'a> {
        let tcp = protocol == Protocol::Tcp;
        KeyRef {
            question: query.question,
            opcode: 0,
            edns: query.edns.map(|e| {
                (
                    e.version,
                    e.dnssec_ok,
                    if tcp {
                        u16::MAX
                    } else {
                        e.payload.clamp(512, MAX_UDP_PAYLOAD)
                    },
                    super::cookie::wants_cookie_data(e.cookie),
                )
            }),
            tcp,
        }
    }

    /// The owned key.
    pub fn to_owned(self) -> Key {
        Key {
            question: self.question.into(),
            opcode: self.opcode,
            edns: self.edns,
            tcp: self.tcp,
        }
    }
}

/// What an answer copies from each query into cached bytes: the id and the
/// RD and CD bits (RFC 1035 §4.1.1: RD is copied into the response; RFC
/// 4035 §3.1.6: so is CD).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Echo {
    id: u16,
    rd: bool,
    cd: bool,
}

impl Echo {
    /// The fields of a decoded request.
    pub fn of(request: &Request) -> Echo {
        let m = &request.metadata;
        Echo {
            id: m.id,
            rd: m.recursion_desired,
            cd: m.checking_disabled,
        }
    }

    /// The fields of a query read in place.
    pub fn of_query(query: &Query<'_>) -> Echo {
        Echo {
            id: query.id,
            rd: query.rd,
            cd: query.cd,
        }
    }
}

struct Entry {
    bytes: Box<[u8]>,
    /// TSC-based: reading it costs a few instructions, not a vDSO call.
    born: quanta::Instant,
}

/// Slots of the [`Doorkeeper`]: questions remembered at once.
const DOORKEEPER_SLOTS: usize = 1 << 14;

/// Which NXDOMAIN questions were seen lately (TinyLFU's doorkeeper, one
/// hash per slot): an NXDOMAIN answer is cached only when its question comes
/// a second time while still remembered. A random-name flood never repeats
/// a name, so it costs one hash and one store per query instead of an
/// allocation and an insert that evicts useful answers (caching every
/// NXDOMAIN made such a stream dearer, measured); a name that is asked
/// again and again (a typo, a resolver retrying, a benchmark's fixed mix)
/// is answered from the cache like any other.
struct Doorkeeper {
    slots: Box<[AtomicU64]>,
}

impl Doorkeeper {
    fn new() -> Self {
        Doorkeeper {
            slots: (0..DOORKEEPER_SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Whether `key` was seen since its slot last changed; remembers it.
    fn seen_again(&self, key: KeyRef<'_>) -> bool {
        use std::hash::BuildHasher;
        // 0 marks an empty slot; a key hashing to 0 is just never remembered.
        let hash = rustc_hash::FxBuildHasher.hash_one(key);
        let slot = (hash as usize) % self.slots.len();
        self.slots[slot].swap(hash, Ordering::Relaxed) == hash && hash != 0
    }
}

/// The answers cached for one zone table snapshot.
struct Generation {
    zones: Arc<ZoneSet>,
    answers: quick_cache::sync::Cache<Key, Arc<Entry>>,
}

/// The cache shared by all UDP loops.
pub struct PacketCache {
    capacity: usize,
    current: ArcSwap<Generation>,
    hits: AtomicU64,
    doorkeeper: Doorkeeper,
}

impl std::fmt::Debug for PacketCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketCache")
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl PacketCache {
    /// A cache of at most `capacity` answers.
    pub fn new(capacity: usize) -> Self {
        PacketCache {
            capacity,
            current: ArcSwap::from_pointee(Generation {
                zones: Arc::new(ZoneSet::new()),
                answers: quick_cache::sync::Cache::new(capacity.max(1)),
            }),
            hits: AtomicU64::new(0),
            doorkeeper: Doorkeeper::new(),
        }
    }

    /// Answers served from the cache so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Answers held by the current generation.
    pub fn len(&self) -> usize {
        self.current.load().answers.len()
    }

    /// Whether the current generation holds no answer.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most answers held at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The generation for `zones`, started afresh when the table changed.
    fn generation(&self, zones: &Arc<ZoneSet>) -> arc_swap::Guard<Arc<Generation>> {
        // A guard, not a clone: no reference count moves on a lookup.
        let current = self.current.load();
        if Arc::ptr_eq(&current.zones, zones) {
            return current;
        }
        self.current.store(Arc::new(Generation {
            zones: zones.clone(),
            answers: quick_cache::sync::Cache::new(self.capacity.max(1)),
        }));
        self.current.load()
    }

    /// Write the answer cached under `key` into `out`, with the query's
    /// id and RD/CD bits (`echo`). `false` on a miss.
    pub fn answer<K>(&self, zones: &Arc<ZoneSet>, key: &K, echo: Echo, out: &mut Vec<u8>) -> bool
    where
        K: std::hash::Hash + quick_cache::Equivalent<Key> + ?Sized,
    {
        let generation = self.generation(zones);
        let Some(entry) = generation.answers.get(key) else {
            return false;
        };
        if entry.born.elapsed() > MAX_AGE || entry.bytes.len() < 4 {
            generation.answers.remove(key);
            return false;
        }
        out.clear();
        out.extend_from_slice(&entry.bytes);
        patch_header(out, echo);
        self.hits.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Remember the encoded answer `bytes` planned as `plan`.
    pub fn insert(&self, zones: &Arc<ZoneSet>, key: Key, plan: &Plan, bytes: &[u8]) {
        // LUA answers are dynamic by design; SERVFAIL is not an answer;
        // REFUSED is what queries for zones not served here get.
        let rcode = plan.metadata.response_code;
        if plan.dynamic
            || plan.lua_limited
            || matches!(rcode, ResponseCode::ServFail | ResponseCode::Refused)
            || (rcode == ResponseCode::NXDomain && !self.doorkeeper.seen_again(key.as_ref()))
        {
            return;
        }
        self.generation(zones).answers.insert(
            key,
            Arc::new(Entry {
                bytes: bytes.into(),
                born: quanta::Instant::now(),
            }),
        );
    }
}

/// Copy `echo` into the header of an encoded answer.
fn patch_header(out: &mut [u8], echo: Echo) {
    if let [id0, id1, flags0, flags1, ..] = out {
        [*id0, *id1] = echo.id.to_be_bytes();
        *flags0 = (*flags0 & !0x01) | u8::from(echo.rd);
        *flags1 = (*flags1 & !0x10) | (u8::from(echo.cd) << 4);
    }
}

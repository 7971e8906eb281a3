//! One zone's contents as an immutable name tree.
//!
//! A zone is built once from its records and then moved forward by diffs
//! ([`Zone::apply`]); either way everything a lookup needs is precomputed
//! here: empty non-terminals exist as nodes (NXDOMAIN vs NODATA
//! is one map probe), delegation points and occluded names are flagged, the
//! negative-caching SOA is ready, and additional-section records for NS, MX
//! and SRV RRsets are attached to those RRsets.

use super::intern::{self, SharedRData};
use super::key::{self, Keyed};
use super::rdataset::RDataSet;
use crate::lua::{LuaRecord, LUA_TYPE_CODE};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable;
use imbl::{OrdMap, OrdSet};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The PowerDNS LUA record type (65402) as a hickory record type.
pub const LUA: RecordType = RecordType::Unknown(LUA_TYPE_CODE);

/// Why a set of records cannot form a zone.
#[derive(Debug, thiserror::Error)]
pub enum ZoneError {
    /// No SOA at the apex.
    #[error("zone {0} has no SOA record at its apex")]
    MissingSoa(String),
    /// A record whose owner is outside the zone.
    #[error("record {0} is outside zone {1}")]
    OutOfZone(String, String),
    /// More than one SOA record at the apex.
    #[error("zone {0} has more than one SOA record")]
    MultipleSoa(String),
    /// An SOA record below the apex.
    #[error("SOA record at {0} is not at the apex of zone {1}")]
    SoaNotAtApex(String, String),
    /// A CNAME next to other data, or more than one CNAME at a name (RFC 1034 §3.6.2).
    #[error("CNAME at {0} coexists with other data")]
    CnameConflict(String),
    /// A record class other than IN.
    #[error("record {0} has class {1}; only IN is served")]
    BadClass(String, String),
    /// A meta type (OPT, ANY, AXFR, ...) that cannot be stored in a zone.
    #[error("record {0} has type {1}, which cannot appear in a zone")]
    BadType(String, String),
    /// A LUA record whose rdata cannot be read.
    #[error("LUA record at {0} is malformed: {1}")]
    BadLua(String, String),
}

/// How a zone treats special record types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZoneOptions {
    /// Serve LUA records as the records their programs synthesize (else
    /// they are kept for export but never answered).
    pub lua_records: bool,
}

impl Default for ZoneOptions {
    fn default() -> Self {
        ZoneOptions { lua_records: true }
    }
}

/// Records synthesized at query time: the LUA records of one node that
/// answer for one type. The server evaluates them; lookups only route.
#[derive(Debug, Clone)]
pub struct DynamicRRset {
    /// The type the programs answer for (`LUA` for `include` snippets).
    pub rtype: RecordType,
    /// TTL of the synthesized records (the LUA RRset's TTL).
    pub ttl: u32,
    /// The LUA programs, in canonical (wire) order.
    pub programs: Vec<Arc<LuaRecord>>,
}

/// One RRset of a node: type, one (normalised) TTL and the record data.
/// The owner is the node's name and is not stored with each record: a
/// pool of 100k children holds ~15 RRs per child, and a hickory `Record`
/// (280 bytes, most of it the owner `Name` and the widest `RData`) per RR
/// was the largest part of its memory. Equal data (a pool's delegations
/// all name the same servers; its children share a template) is one
/// allocation, in this zone and across zones (see `intern`).
#[derive(Debug, Clone)]
pub struct RRset {
    /// The record type.
    pub rtype: RecordType,
    /// The RRset's TTL (RFC 2181 §5.2: the lowest TTL given).
    ttl: u32,
    /// The record data, in canonical (wire) order; shared between equal RRsets.
    rdata: SharedRData,
    /// Precomputed additional-section records (A/AAAA of in-zone targets
    /// of NS, MX, SRV); shared between RRsets that name the same targets
    /// (a pool's delegations all name the pool's own nameservers).
    /// (One pointer wide: a zone holds one per RRset, nearly all `None`.)
    additional: Option<SharedRecords>,
    /// Each record's TTL as given, parallel to `rdata`, or empty when
    /// every record was given the RRset's TTL (nearly always). After a
    /// removal [`Zone::apply`] recomputes the RRset TTL from these.
    given_ttls: GivenTtls,
}

/// TTLs as given, one per record; one pointer wide and no allocation
/// while empty (a pool holds some 15 RRsets per child, nearly all empty).
#[derive(Debug, Clone, Default)]
struct GivenTtls(Option<Box<Box<[u32]>>>);

impl GivenTtls {
    fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    fn as_slice(&self) -> &[u32] {
        self.0.as_deref().map_or(&[], |b| &**b)
    }
}

impl From<Vec<u32>> for GivenTtls {
    fn from(ttls: Vec<u32>) -> Self {
        GivenTtls((!ttls.is_empty()).then(|| Box::new(ttls.into_boxed_slice())))
    }
}

/// Records shared between RRsets (additional sections).
type SharedRecords = Arc<Vec<Record>>;

impl RRset {
    /// Precomputed additional-section records (A/AAAA of in-zone targets of NS, MX, SRV).
    pub fn additional(&self) -> &[Record] {
        self.additional.as_deref().map_or(&[], Vec::as_slice)
    }

    /// The RRset's TTL.
    pub fn ttl(&self) -> u32 {
        self.ttl
    }

    /// The record data, in canonical order (decoded here when the zone
    /// keeps it in wire form: see `rdataset`).
    pub fn rdata(&self) -> Cow<'_, [RData]> {
        self.rdata.get()
    }

    /// How many records the RRset holds.
    pub fn len(&self) -> usize {
        self.rdata.len()
    }

    /// Whether the RRset holds no record (never true in a built zone).
    pub fn is_empty(&self) -> bool {
        self.rdata.is_empty()
    }

    /// The records, owned by `owner`.
    pub fn records(&self, owner: &Name) -> Vec<Record> {
        let mut out = Vec::with_capacity(self.rdata.len());
        self.push_records(owner, &mut out);
        out
    }

    /// Append the records, owned by `owner`, to `out`.
    pub fn push_records(&self, owner: &Name, out: &mut Vec<Record>) {
        let record = |d| Record::from_rdata(owner.clone(), self.ttl, d);
        match self.rdata.get() {
            Cow::Borrowed(data) => out.extend(data.iter().cloned().map(record)),
            Cow::Owned(data) => out.extend(data.into_iter().map(record)),
        }
    }

    /// The TTLs as given, one per record.
    fn given_ttls(&self) -> Vec<u32> {
        if self.given_ttls.is_empty() {
            vec![self.ttl; self.rdata.len()]
        } else {
            self.given_ttls.as_slice().to_vec()
        }
    }

    /// Note the TTL given to a record about to be appended; kept
    /// implicitly while every record has the RRset's TTL.
    fn push_given(&mut self, ttl: u32) {
        if self.given_ttls.is_empty() && ttl == self.ttl {
            return;
        }
        let mut given = self.given_ttls();
        given.push(ttl);
        self.given_ttls = given.into();
    }

    /// Forget the TTL given to record `i`, about to be removed.
    fn remove_given(&mut self, i: usize) {
        if !self.given_ttls.is_empty() {
            let mut given = self.given_ttls.as_slice().to_vec();
            given.remove(i);
            self.given_ttls = given.into();
        }
    }
}

/// RRsets are equal when their type, TTL and data are (the additional
/// section and the TTLs as given are derived).
impl PartialEq for RRset {
    fn eq(&self, other: &Self) -> bool {
        self.rtype == other.rtype
            && self.ttl == other.ttl
            && (Arc::ptr_eq(&self.rdata, &other.rdata) || self.rdata == other.rdata)
    }
}

impl Eq for RRset {}

/// A name in the tree: its RRsets (sorted by type code) and precomputed flags.
#[derive(Debug, Clone, Default)]
pub struct Node {
    /// RRsets sorted by numeric type; empty for an empty non-terminal.
    /// (Boxed slices, not vectors: a node per name, 100k names a pool.)
    pub rrsets: Box<[RRset]>,
    /// A delegation point: has NS and is not the apex.
    pub cut: bool,
    /// Strictly below a delegation point (glue or occluded data).
    pub occluded: bool,
    /// LUA programs by the type they synthesize (empty unless LUA records
    /// are enabled for the zone).
    pub dynamic: Box<[DynamicRRset]>,
}

/// Nodes are equal when their RRsets and flags are (the dynamic RRsets
/// follow from the LUA RRset). `Eq` lets `Arc<Node>` compare shared nodes
/// by pointer first, which is what keeps [`Zone::changes_since`] cheap.
impl PartialEq for Node {
    fn eq(&self, other: &Self) -> bool {
        self.cut == other.cut && self.occluded == other.occluded && self.rrsets == other.rrsets
    }
}

impl Eq for Node {}

impl Node {
    /// The RRset of this type, if any.
    pub fn rrset(&self, rtype: RecordType) -> Option<&RRset> {
        self.rrsets.iter().find(|s| s.rtype == rtype)
    }

    /// Whether this is an empty non-terminal (exists only because of descendants).
    #[cfg(test)]
    fn is_empty_non_terminal(&self) -> bool {
        self.rrsets.is_empty()
    }

    /// The dynamic (LUA) RRset answering for this type, if any.
    pub fn dynamic(&self, rtype: RecordType) -> Option<&DynamicRRset> {
        self.dynamic.iter().find(|d| d.rtype == rtype)
    }

    /// The types a query can get data for here, as a denial bitmap shows
    /// them: static types without `LUA` plus the types LUA programs
    /// synthesize; a delegation point shows only NS and DS. Sorted by code.
    pub fn served_types(&self) -> Vec<RecordType> {
        let mut types: Vec<RecordType> = self
            .rrsets
            .iter()
            .map(|s| s.rtype)
            .chain(self.dynamic.iter().map(|d| d.rtype))
            .filter(|t| *t != LUA)
            .filter(|t| !self.cut || matches!(t, RecordType::NS | RecordType::DS))
            .collect();
        types.sort_by_key(|t| u16::from(*t));
        types.dedup();
        types
    }
}

/// One zone's contents.
///
/// The name tree is a persistent B-tree (`imbl::OrdMap`, nodes behind
/// `Arc`): [`Zone::apply`] makes the next version of a zone from a diff,
/// sharing every untouched part with this one.
/// (Small fields: a pool of 100k children holds a `Zone` per child.)
#[derive(Debug)]
pub struct Zone {
    origin: Name,
    /// A name has at most 127 labels.
    origin_labels: u8,
    options: ZoneOptions,
    /// Keyed canonically (see [`super::key`]): lookups compare bytes.
    nodes: OrdMap<Keyed, Arc<Node>>,
    /// (target key, owner key) for every NS, MX and SRV target: whose
    /// additional section to redo when a target's addresses change.
    /// `None` while empty: a pool's children name servers outside them.
    referrers: Option<Box<OrdSet<Referral>>>,
    /// The apex node, shared with `nodes`: the SOA is read from it without
    /// a look-up (every negative answer carries it) and without a copy of
    /// its 280-byte record per zone.
    apex: Arc<Node>,
    /// Where the SOA RRset is in `apex.rrsets` (it holds exactly one
    /// record; a node holds at most one RRset per 16-bit type).
    soa_at: u16,
    /// TTL of the SOA in negative answers: min(SOA TTL, MINIMUM), RFC 2308 §3.
    negative_ttl: u32,
    serial: u32,
    /// Wildcard owners.
    wildcards: u32,
    /// Delegation points.
    cuts: u32,
    /// Nodes with dynamic (LUA) RRsets.
    dynamic: u32,
}

/// (target key, owner key): the owner has an NS, MX or SRV record naming the target.
/// `Arc` keys: the set is persistent and path copies clone its entries.
type Referral = (Arc<[u8]>, Arc<[u8]>);

/// The additional sections of one node's RRsets, by type.
type NodeAdditionals = Vec<(RecordType, Vec<Record>)>;

/// The last few distinct additional sections made or seen by one
/// [`Zone::redo_additionals`], so equal sections share one allocation.
#[derive(Default)]
struct SharedAdditionals(Vec<SharedRecords>);

impl SharedAdditionals {
    /// How many distinct sections to remember: a pool's delegations name
    /// one or two server sets; a linear scan stays cheap.
    const KEEP: usize = 8;

    /// Remember `section` for later equal ones.
    fn offer(&mut self, section: Option<&SharedRecords>) {
        if let Some(a) = section {
            if !self.0.iter().any(|b| Arc::ptr_eq(a, b)) {
                self.keep(a.clone());
            }
        }
    }

    /// Whether a section equal to `extra` is remembered.
    fn has(&self, extra: &[Record]) -> bool {
        self.0.iter().any(|a| **a == *extra)
    }

    /// `extra` as a shared section (`None` when empty).
    fn get(&mut self, extra: Vec<Record>) -> Option<SharedRecords> {
        if extra.is_empty() {
            return None;
        }
        if let Some(a) = self.0.iter().find(|a| ***a == *extra) {
            return Some(a.clone());
        }
        let a: SharedRecords = Arc::new(extra);
        self.keep(a.clone());
        Some(a)
    }

    fn keep(&mut self, a: SharedRecords) {
        if self.0.len() == Self::KEEP {
            self.0.remove(0);
        }
        self.0.push(a);
    }
}

/// The last few distinct nodes one build made, so that equal nodes are
/// one allocation: a child zone's template names (`api`, `console`,
/// `gitea`...) usually hold the same address, and a node does not know its
/// own name. Copy-on-write keeps them apart when one changes.
#[derive(Default)]
struct SharedNodes(Vec<Arc<Node>>);

impl SharedNodes {
    /// How many distinct nodes to remember (a linear scan; template names
    /// come in runs of equal nodes).
    const KEEP: usize = 8;

    /// `node`, or a remembered node equal to it.
    fn get(&mut self, node: Node) -> Arc<Node> {
        // LUA programs and TTLs as given are left out of node equality.
        let shareable =
            node.dynamic.is_empty() && node.rrsets.iter().all(|s| s.given_ttls.is_empty());
        if !shareable {
            return Arc::new(node);
        }
        if let Some(known) = self.0.iter().find(|n| ***n == node) {
            return Arc::clone(known);
        }
        let made = Arc::new(node);
        if self.0.len() == Self::KEEP {
            self.0.remove(0);
        }
        self.0.push(Arc::clone(&made));
        made
    }
}

/// What [`Zone::apply`] changed: the names whose node appeared, went, or
/// changed (RRsets or flags; additional sections aside).
#[derive(Debug, Default, Clone)]
pub struct ZoneDelta {
    /// The names, in canonical order.
    pub names: Vec<Name>,
    /// Whether the apex DNSKEY, CDS, CDNSKEY or NSEC3PARAM RRsets changed.
    pub keys_changed: bool,
}

/// Group a node's LUA RRset into dynamic RRsets by the type they answer for.
fn dynamic_sets(name: &Name, lua: Option<&RRset>) -> Result<Vec<DynamicRRset>, ZoneError> {
    let Some(set) = lua else {
        return Ok(Vec::new());
    };
    let mut out: Vec<DynamicRRset> = Vec::new();
    for data in set.rdata().iter() {
        let wire = data
            .to_bytes()
            .map_err(|e| ZoneError::BadLua(name.to_string(), e.to_string()))?;
        let program = LuaRecord::from_wire(&wire)
            .map_err(|e| ZoneError::BadLua(name.to_string(), e.to_string()))?;
        match out.iter_mut().find(|d| d.rtype == program.rtype) {
            Some(d) => d.programs.push(Arc::new(program)),
            None => out.push(DynamicRRset {
                rtype: program.rtype,
                ttl: set.ttl,
                programs: vec![Arc::new(program)],
            }),
        }
    }
    out.sort_by_key(|d| u16::from(d.rtype));
    Ok(out)
}

/// Number of labels, counting a leading `*` (hickory's `num_labels` skips it).
pub(crate) fn label_count(name: &Name) -> usize {
    name.iter().count()
}

/// Check one record against the zone's rules; its lower-cased owner.
fn check_record(origin: &Name, rec: &Record) -> Result<Name, ZoneError> {
    let mut owner = rec.name.to_lowercase();
    owner.set_fqdn(true);
    if !origin.zone_of(&owner) {
        return Err(ZoneError::OutOfZone(
            rec.name.to_string(),
            origin.to_string(),
        ));
    }
    if rec.dns_class != DNSClass::IN {
        return Err(ZoneError::BadClass(
            rec.name.to_string(),
            rec.dns_class.to_string(),
        ));
    }
    let rtype = rec.record_type();
    if matches!(
        rtype,
        RecordType::OPT
            | RecordType::ANY
            | RecordType::AXFR
            | RecordType::IXFR
            | RecordType::TSIG
            | RecordType::ZERO
    ) || matches!(rec.data, RData::Update0(_))
    {
        return Err(ZoneError::BadType(rec.name.to_string(), rtype.to_string()));
    }
    if rtype == RecordType::SOA && owner != *origin {
        return Err(ZoneError::SoaNotAtApex(
            owner.to_string(),
            origin.to_string(),
        ));
    }
    Ok(owner)
}

/// Add `rec` to `node` (its owner is the node's); a duplicate rdata is ignored.
fn add_to_node(node: &mut Node, rec: Record) {
    let rtype = rec.record_type();
    let Record { ttl, data, .. } = rec;
    match node.rrsets.iter_mut().find(|s| s.rtype == rtype) {
        Some(set) => {
            if !set.rdata.contains(&data) {
                set.push_given(ttl);
                Arc::make_mut(&mut set.rdata).make_decoded().push(data);
            }
        }
        None => {
            let mut sets = std::mem::take(&mut node.rrsets).into_vec();
            sets.push(RRset {
                rtype,
                ttl,
                rdata: Arc::new(RDataSet::Decoded(vec![data])),
                given_ttls: GivenTtls::default(),
                additional: None,
            });
            node.rrsets = sets.into();
        }
    }
}

/// Sort a node's RRsets, give each one TTL, check the CNAME rule and set
/// the cut flag and the dynamic RRsets (occlusion is decided by the caller).
/// An RRset whose data `before` (the node as it was, already normalised)
/// shares is left as it is: a change rewrites only the sets it touched
/// (their data was copied on write), and re-sorting the rest would decode
/// every untouched key set at the apex for each serial bump.
fn normalise_node(
    name: &Name,
    node: &mut Node,
    origin: &Name,
    options: ZoneOptions,
    before: Option<&Node>,
) -> Result<(), ZoneError> {
    node.rrsets.sort_by_key(|s| u16::from(s.rtype));
    for set in node.rrsets.iter_mut() {
        let untouched = before
            .and_then(|b| b.rrsets.iter().find(|old| old.rtype == set.rtype))
            .is_some_and(|old| Arc::ptr_eq(&old.rdata, &set.rdata) && old.ttl == set.ttl);
        if untouched {
            continue;
        }
        // RFC 2181 §5.2: one TTL per RRset; use the lowest.
        let ttl = set
            .given_ttls
            .as_slice()
            .iter()
            .copied()
            .min()
            .unwrap_or(set.ttl);
        set.ttl = ttl;
        // Most RRsets (a pool's NS and DS) hold one record: no sort.
        if set.rdata.len() > 1 {
            // Deterministic order for export and answers.
            let given = set.given_ttls();
            let rdata = Arc::make_mut(&mut set.rdata).make_decoded();
            let mut pairs: Vec<(RData, u32)> = rdata.drain(..).zip(given).collect();
            pairs.sort_by_cached_key(|(d, _)| d.to_bytes().unwrap_or_default());
            let (sorted, given): (Vec<RData>, Vec<u32>) = pairs.into_iter().unzip();
            *rdata = sorted;
            set.given_ttls = given.into();
        }
        // Memory: a pool holds one RRset per child and more per child zone,
        // and equal data (in this zone or another) is one allocation.
        if let RDataSet::Decoded(data) = &*set.rdata {
            if data.capacity() != data.len() {
                Arc::make_mut(&mut set.rdata).make_decoded().shrink_to_fit();
            }
        }
        intern::share(set.rtype, &mut set.rdata);
        if set.rdata.compacts(set.rtype) {
            Arc::make_mut(&mut set.rdata).compact(set.rtype);
        }
        if set.given_ttls.as_slice().iter().all(|&t| t == ttl) {
            set.given_ttls = GivenTtls::default();
        }
    }
    if let Some(cname) = node.rrset(RecordType::CNAME) {
        let other = node.rrsets.iter().any(|s| {
            !matches!(
                s.rtype,
                RecordType::CNAME | RecordType::RRSIG | RecordType::NSEC
            )
        });
        if other || cname.len() > 1 {
            return Err(ZoneError::CnameConflict(name.to_string()));
        }
    }
    node.cut = name != origin && node.rrset(RecordType::NS).is_some();
    node.dynamic = if options.lua_records {
        dynamic_sets(name, node.rrset(LUA))?.into()
    } else {
        Box::default()
    };
    Ok(())
}

/// The canonical keys of the NS, MX and SRV targets of `node` inside the
/// zone `origin` (only those get additional records; a pool zone's
/// delegations point outside it and need no index entries).
fn targets_of(origin: &Name, node: &Node) -> Vec<Arc<[u8]>> {
    let mut out: Vec<Arc<[u8]>> = Vec::new();
    for set in &node.rrsets {
        // Before `rdata()`, which decodes a set kept in wire form.
        if !matches!(set.rtype, RecordType::NS | RecordType::MX | RecordType::SRV) {
            continue;
        }
        for data in set.rdata().iter() {
            let target = match data {
                RData::NS(ns) => &ns.0,
                RData::MX(mx) => &mx.exchange,
                RData::SRV(srv) => &srv.target,
                _ => continue,
            };
            if !origin.zone_of(target) {
                continue;
            }
            out.push(key::of(target).into());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Whether `key` names one of the apex key RRsets' types.
fn is_key_type(rtype: RecordType) -> bool {
    matches!(
        rtype,
        RecordType::DNSKEY | RecordType::CDS | RecordType::CDNSKEY | RecordType::NSEC3PARAM
    )
}

impl Zone {
    /// Build a zone from its records (must include the apex SOA), with LUA
    /// records enabled.
    pub fn new(origin: Name, records: Vec<Record>) -> Result<Self, ZoneError> {
        Self::with_options(origin, records, ZoneOptions::default())
    }

    /// Build a zone from its records with explicit options.
    pub fn with_options(
        origin: Name,
        records: Vec<Record>,
        options: ZoneOptions,
    ) -> Result<Self, ZoneError> {
        let mut origin = origin.to_lowercase();
        origin.set_fqdn(true);
        let origin_labels = label_count(&origin);
        let origin_key = key::of(&origin);
        // Keyed by canonical key bytes: a pool zone holds a name per child,
        // and byte comparison is far cheaper than comparing `Name`s.
        let mut nodes: BTreeMap<Box<[u8]>, (Name, Node)> = BTreeMap::new();
        nodes.insert(
            origin_key.clone().into_boxed_slice(),
            (origin.clone(), Node::default()),
        );
        let mut soa: Option<Record> = None;

        for mut rec in records {
            let owner = check_record(&origin, &rec)?;
            if rec.record_type() == RecordType::SOA {
                if soa.as_ref().is_some_and(|s| s.data != rec.data) {
                    return Err(ZoneError::MultipleSoa(origin.to_string()));
                }
                rec.name = owner.clone();
                soa = Some(rec.clone());
            }
            rec.name = owner.clone();
            let k = key::of(&owner);
            if let Some((_, node)) = nodes.get_mut(k.as_slice()) {
                add_to_node(node, rec);
                continue;
            }
            // Empty non-terminals: every ancestor up to the apex exists
            // (the parent's key is a prefix of the child's).
            let parent_missing = key::parent_end(&k)
                .is_some_and(|end| end > origin_key.len() && !nodes.contains_key(&k[..end]));
            if parent_missing {
                let mut anc = owner.base_name();
                while label_count(&anc) > origin_labels {
                    let ak = key::of(&anc);
                    if nodes.contains_key(ak.as_slice()) {
                        break;
                    }
                    let next = anc.base_name();
                    nodes.insert(ak.into_boxed_slice(), (anc, Node::default()));
                    anc = next;
                }
            }
            let mut node = Node::default();
            add_to_node(&mut node, rec);
            nodes.insert(k.into_boxed_slice(), (owner, node));
        }

        for (name, node) in nodes.values_mut() {
            normalise_node(name, node, &origin, options, None)?;
        }

        // Occlusion: a node with a cut strictly above it. In canonical order
        // a subtree is contiguous right after its root (its key extends the
        // root's), so one pass tracking the current topmost cut suffices
        // (pool zones hold many cuts).
        let mut current_cut: Option<&[u8]> = None;
        for (k, (_, node)) in nodes.iter_mut() {
            if let Some(cut) = current_cut {
                if k.starts_with(cut) {
                    node.occluded = true;
                    // Never evaluated: the child zone's servers answer here.
                    node.dynamic = Box::default();
                    continue;
                }
            }
            current_cut = None;
            if node.cut {
                current_cut = Some(k);
            }
        }

        let mut zone = Zone {
            origin,
            // A name has at most 127 labels.
            origin_labels: u8::try_from(origin_labels).unwrap_or(u8::MAX),
            options,
            nodes: OrdMap::new(),
            referrers: None,
            apex: Arc::new(Node::default()),
            soa_at: 0,
            negative_ttl: 0,
            serial: 0,
            wildcards: 0,
            cuts: 0,
            dynamic: 0,
        };
        let mut referrers = Vec::new();
        let mut tree = Vec::with_capacity(nodes.len());
        let mut shared = SharedNodes::default();
        for (k, (name, node)) in nodes {
            zone.count(&name, &node, 1);
            let targets = targets_of(&zone.origin, &node);
            if !targets.is_empty() {
                let owner: Arc<[u8]> = Arc::from(&*k);
                for t in targets {
                    referrers.push((t, owner.clone()));
                }
            }
            tree.push((Keyed::from_key(&k), shared.get(node)));
        }
        zone.nodes = tree.into_iter().collect();
        zone.referrers = (!referrers.is_empty()).then(|| Box::new(referrers.into_iter().collect()));
        zone.attach_additionals();
        zone.take_apex()?;
        Ok(zone)
    }

    /// Takes the apex node from the tree once it is final (additional
    /// sections included); serial and negative TTL follow its SOA.
    /// Fails unless the apex holds exactly one SOA.
    fn take_apex(&mut self) -> Result<(), ZoneError> {
        let apex = self
            .nodes
            .get(key::of(&self.origin).as_slice())
            .cloned()
            .ok_or_else(|| ZoneError::MissingSoa(self.origin.to_string()))?;
        let at = apex
            .rrsets
            .iter()
            .position(|s| s.rtype == RecordType::SOA)
            .ok_or_else(|| ZoneError::MissingSoa(self.origin.to_string()))?;
        let set = &apex.rrsets[at];
        let rdata = set.rdata();
        let soa = match &*rdata {
            [one] => one,
            [] => return Err(ZoneError::MissingSoa(self.origin.to_string())),
            _ => return Err(ZoneError::MultipleSoa(self.origin.to_string())),
        };
        let (serial, minimum) = match soa {
            RData::SOA(s) => (s.serial, s.minimum),
            _ => (0, 0),
        };
        self.negative_ttl = set.ttl.min(minimum);
        self.serial = serial;
        // A node holds one RRset per type: at most 2^16 of them.
        self.soa_at = u16::try_from(at).unwrap_or(u16::MAX);
        self.apex = apex;
        Ok(())
    }

    /// Add (`sign` 1) or remove (`sign` -1) what `node` adds to the counters.
    fn count(&mut self, name: &Name, node: &Node, sign: i32) {
        let step = |c: &mut u32, on: bool| {
            if on {
                *c = c.saturating_add_signed(sign);
            }
        };
        step(&mut self.wildcards, name.is_wildcard());
        step(&mut self.cuts, node.cut);
        step(&mut self.dynamic, !node.dynamic.is_empty());
    }

    /// The next version of this zone: these records removed, then these
    /// added (owners, class and types checked as [`Zone::with_options`]
    /// does). Shares every untouched node with `self`; costs O(log n) per
    /// changed name plus, when a delegation appears or goes, the names
    /// below it. The result equals a zone built from scratch from the
    /// resulting record set.
    pub fn apply(&self, removed: &[Record], added: &[Record]) -> Result<Zone, ZoneError> {
        self.apply_tracked(removed, added).map(|(z, _)| z)
    }

    /// [`Zone::apply`], also saying which names changed (for the signer).
    pub fn apply_tracked(
        &self,
        removed: &[Record],
        added: &[Record],
    ) -> Result<(Zone, ZoneDelta), ZoneError> {
        let origin = &self.origin;
        let mut nodes = self.nodes.clone();
        let mut keys_changed = false;
        // Names whose RRsets changed, by key.
        let mut touched: BTreeMap<Box<[u8]>, Name> = BTreeMap::new();

        for rec in removed {
            let owner = check_record(origin, rec)?;
            let rtype = rec.record_type();
            keys_changed |= is_key_type(rtype);
            let k = key::of(&owner);
            let Some(node) = nodes.get_mut(k.as_slice()) else {
                continue;
            };
            let node = Arc::make_mut(node);
            let Some(pos) = node.rrsets.iter().position(|s| s.rtype == rtype) else {
                continue;
            };
            let set = &mut node.rrsets[pos];
            let Some((i, rest)) = set.rdata.without(&rec.data) else {
                continue;
            };
            set.rdata = Arc::new(RDataSet::Decoded(rest));
            set.remove_given(i);
            if set.rdata.is_empty() {
                let mut sets = std::mem::take(&mut node.rrsets).into_vec();
                sets.remove(pos);
                node.rrsets = sets.into();
            }
            touched.insert(k.into_boxed_slice(), owner);
        }

        for rec in added {
            let owner = check_record(origin, rec)?;
            let rtype = rec.record_type();
            keys_changed |= is_key_type(rtype);
            let mut rec = rec.clone();
            rec.name = owner.clone();
            let mut anc = owner.base_name();
            while label_count(&anc) > self.origin_labels() {
                let k = key::of(&anc);
                if nodes.contains_key(k.as_slice()) {
                    break;
                }
                nodes.insert(Keyed::new(&anc), Arc::new(Node::default()));
                touched.insert(k.into_boxed_slice(), anc.clone());
                anc = anc.base_name();
            }
            let k = key::of(&owner);
            match nodes.get_mut(k.as_slice()) {
                Some(node) => add_to_node(Arc::make_mut(node), rec),
                None => {
                    let mut node = Node::default();
                    add_to_node(&mut node, rec);
                    nodes.insert(Keyed::new(&owner), Arc::new(node));
                }
            }
            touched.insert(k.into_boxed_slice(), owner);
        }

        // Empty names with nothing below them go, and so may their parents.
        let mut gone: BTreeSet<Box<[u8]>> = BTreeSet::new();
        let candidates: Vec<(Box<[u8]>, Name)> = touched
            .iter()
            .map(|(k, n)| (k.clone(), n.clone()))
            .collect();
        for (k, name) in candidates {
            let (mut k, mut name) = (k, name);
            loop {
                if name == *origin {
                    break;
                }
                let empty = nodes.get(&*k).is_some_and(|n| n.rrsets.is_empty());
                let has_children = nodes
                    .range::<_, [u8]>((std::ops::Bound::Excluded(&*k), std::ops::Bound::Unbounded))
                    .next()
                    .is_some_and(|(next, _)| next.key().starts_with(&k));
                if !empty || has_children {
                    break;
                }
                nodes.remove(&*k);
                touched.remove(&k);
                gone.insert(k);
                name = name.base_name();
                k = key::of(&name).into_boxed_slice();
            }
        }

        // Redo flags in canonical order (parents first); a name whose cut
        // flag changed drags its whole subtree in (occlusion).
        let mut pending: BTreeMap<Box<[u8]>, Name> = touched.clone();
        let mut changed: BTreeSet<Box<[u8]>> = gone.clone();
        while let Some((k, name)) = pending.pop_first() {
            let Some(node) = nodes.get(&*k) else {
                continue;
            };
            let mut next = (**node).clone();
            let was_cut = next.cut;
            let was_occluded = next.occluded;
            if touched.contains_key(&k) {
                let before = self.nodes.get(&*k).map(|n| &**n);
                normalise_node(&name, &mut next, origin, self.options, before)?;
            } else if self.options.lua_records {
                next.dynamic = dynamic_sets(&name, next.rrset(LUA))?.into();
            }
            next.occluded = self.has_cut_above(&nodes, &k);
            if next.occluded {
                next.dynamic = Box::default();
            }
            if next.cut != was_cut || next.occluded != was_occluded {
                for (below, _) in nodes
                    .range::<_, [u8]>((std::ops::Bound::Excluded(&*k), std::ops::Bound::Unbounded))
                {
                    if !below.key().starts_with(&k) {
                        break;
                    }
                    pending
                        .entry(below.key().into())
                        .or_insert_with(|| below.name());
                }
            }
            nodes.insert(Keyed::new(&name), Arc::new(next));
            changed.insert(k);
        }

        let mut zone = Zone {
            origin: origin.clone(),
            origin_labels: self.origin_labels,
            options: self.options,
            nodes,
            referrers: self.referrers.clone(),
            apex: Arc::clone(&self.apex),
            soa_at: self.soa_at,
            negative_ttl: self.negative_ttl,
            serial: self.serial,
            wildcards: self.wildcards,
            cuts: self.cuts,
            dynamic: self.dynamic,
        };

        // Counters and the referrer index, then the additional sections of
        // the changed names and of every name pointing at one.
        let mut names = Vec::with_capacity(changed.len());
        for k in &changed {
            let old = self.nodes.get_key_value(&**k);
            let shared: Arc<[u8]> = Arc::from(&**k);
            if let Some((kd, n)) = old {
                zone.count(&kd.name(), n, -1);
                for t in targets_of(origin, n) {
                    if let Some(set) = zone.referrers.as_mut() {
                        set.remove(&(t, shared.clone()));
                    }
                }
            }
            if let Some((kd, n)) = zone
                .nodes
                .get_key_value(&**k)
                .map(|(a, b)| (a.clone(), Arc::clone(b)))
            {
                zone.count(&kd.name(), &n, 1);
                for t in targets_of(origin, &n) {
                    zone.referrers
                        .get_or_insert_with(Box::default)
                        .insert((t, shared.clone()));
                }
                names.push(kd.name());
            } else if let Some((kd, _)) = old {
                names.push(kd.name());
            }
        }
        let mut redo: BTreeSet<Arc<[u8]>> = BTreeSet::new();
        for k in &changed {
            let k: Arc<[u8]> = Arc::from(&**k);
            if zone.nodes.contains_key(&*k) {
                redo.insert(k.clone());
            }
            let from: Referral = (k.clone(), Arc::from(&[][..]));
            for (t, owner) in zone
                .referrers
                .iter()
                .flat_map(|set| set.range(from.clone()..))
            {
                if *t != k {
                    break;
                }
                redo.insert(owner.clone());
            }
        }
        zone.redo_additionals(redo.iter().map(|k| &**k));
        // The apex keeps exactly one SOA (checked here, for the version made).
        zone.take_apex()?;
        Ok((
            zone,
            ZoneDelta {
                names,
                keys_changed,
            },
        ))
    }

    /// Whether a delegation point lies strictly between the apex and the
    /// name keyed `k` in `nodes`.
    fn has_cut_above(&self, nodes: &OrdMap<Keyed, Arc<Node>>, k: &[u8]) -> bool {
        key::prefixes(k)
            .skip(self.origin_labels() + 1)
            .filter(|&end| end < k.len())
            .any(|end| {
                k.get(..end)
                    .and_then(|p| nodes.get(p))
                    .is_some_and(|n| n.cut)
            })
    }

    /// Precompute the additional section for NS/MX/SRV RRsets: A/AAAA of
    /// targets inside this zone (see [`Zone::additional_for`]).
    fn attach_additionals(&mut self) {
        let keys: Vec<Arc<[u8]>> = self
            .referrers
            .iter()
            .flat_map(|set| set.iter())
            .map(|(_, owner)| owner.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        self.redo_additionals(keys.iter().map(|k| &**k));
    }

    /// Recompute the additional sections of the nodes keyed `keys`.
    fn redo_additionals<'k>(&mut self, keys: impl Iterator<Item = &'k [u8]>) {
        let mut plan: Vec<(Box<[u8]>, NodeAdditionals)> = Vec::new();
        let mut shared = SharedAdditionals::default();
        for k in keys {
            let Some(node) = self.nodes.get(k) else {
                continue;
            };
            let extras: NodeAdditionals = node
                .rrsets
                .iter()
                .map(|set| {
                    (
                        set.rtype,
                        self.additional_for(set.rtype, set.rdata().iter()),
                    )
                })
                .collect();
            let same = node
                .rrsets
                .iter()
                .zip(&extras)
                .all(|(s, (_, e))| s.additional() == e.as_slice());
            let known = extras.iter().all(|(_, e)| e.is_empty() || shared.has(e));
            if !same && !known {
                // A new delegation names the same servers as its
                // neighbour: share that neighbour's records. (At start-up
                // the previous node's sections are already remembered.)
                if let Some((_, before)) = self
                    .nodes
                    .range::<_, [u8]>((std::ops::Bound::Unbounded, std::ops::Bound::Excluded(k)))
                    .next_back()
                {
                    for set in &before.rrsets {
                        shared.offer(set.additional.as_ref());
                    }
                }
            }
            if !same {
                plan.push((k.into(), extras));
            }
        }
        for (k, extras) in plan {
            if let Some(node) = self.nodes.get_mut(&*k) {
                let node = Arc::make_mut(node);
                for (set, (_, extra)) in node.rrsets.iter_mut().zip(extras) {
                    set.additional = shared.get(extra);
                }
            }
        }
    }

    /// The additional-section records for an RRset of `rtype` with these
    /// rdata: the static A/AAAA of each NS, MX or SRV target inside this
    /// zone, once per target. NS targets may be glue (occluded); MX/SRV
    /// targets must be authoritative data. Other types get none. Used for
    /// static RRsets when the zone is built and for records LUA programs
    /// synthesize at query time (PowerDNS adds the same for both).
    pub(super) fn additional_for<'r>(
        &self,
        rtype: RecordType,
        rdata: impl IntoIterator<Item = &'r RData>,
    ) -> Vec<Record> {
        let glue_ok = rtype == RecordType::NS;
        let mut extra: Vec<Record> = Vec::new();
        let mut seen: Vec<&Name> = Vec::new();
        for data in rdata {
            let target = match data {
                RData::NS(ns) if rtype == RecordType::NS => &ns.0,
                RData::MX(mx) if rtype == RecordType::MX => &mx.exchange,
                RData::SRV(srv) if rtype == RecordType::SRV => &srv.target,
                _ => continue,
            };
            if seen.contains(&target) || !self.origin.zone_of(target) {
                continue;
            }
            seen.push(target);
            let Some((tname, tnode)) = self.node_entry(target) else {
                continue;
            };
            if tnode.occluded && !glue_ok {
                continue;
            }
            for t in [RecordType::A, RecordType::AAAA] {
                if let Some(s) = tnode.rrset(t) {
                    s.push_records(&tname, &mut extra);
                }
            }
        }
        extra
    }

    /// The apex name.
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// The options the zone was built with.
    pub fn options(&self) -> ZoneOptions {
        self.options
    }

    /// SOA serial.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// The apex SOA RRset (`take_apex` found exactly one record in it;
    /// the apex is immutable).
    fn soa_set(&self) -> &RRset {
        &self.apex.rrsets[usize::from(self.soa_at)]
    }

    /// The apex SOA record.
    /// (Made per call rather than kept: one Record per zone is 280 bytes.)
    pub fn soa(&self) -> Record {
        let set = self.soa_set();
        Record::from_rdata(self.origin.clone(), set.ttl, set.rdata()[0].clone())
    }

    /// The SOA record for negative answers (TTL = min(SOA TTL, MINIMUM), RFC 2308 §3).
    pub fn negative_soa(&self) -> Record {
        let mut soa = self.soa();
        soa.ttl = self.negative_ttl;
        soa
    }

    /// The TTL of the SOA in negative answers.
    pub fn negative_ttl(&self) -> u32 {
        self.negative_ttl
    }

    /// All records, SOA first then canonical order.
    pub fn records(&self) -> Vec<Record> {
        let mut out = vec![self.soa()];
        for (k, node) in self.nodes.iter() {
            let name = k.name();
            for set in &node.rrsets {
                if set.rtype != RecordType::SOA {
                    set.push_records(&name, &mut out);
                }
            }
        }
        out
    }

    /// Number of names in the tree, including empty non-terminals.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The node at exactly this name (case-insensitive), if it exists.
    pub fn node(&self, name: &Name) -> Option<&Node> {
        self.nodes.get(key::of(name).as_slice()).map(|n| &**n)
    }

    /// The node and its name as the tree has it (lower-case).
    pub(crate) fn node_entry(&self, name: &Name) -> Option<(Name, &Node)> {
        self.nodes
            .get_key_value(key::of(name).as_slice())
            .map(|(k, n)| (k.name(), &**n))
    }

    /// The node whose canonical key is `key` (see [`super::key`]).
    pub(crate) fn node_by_key(&self, key: &[u8]) -> Option<&Node> {
        self.nodes.get(key).map(|n| &**n)
    }

    /// The names whose node differs between `older` and this zone (a
    /// node that appeared, went, or changed RRsets or flags), in canonical
    /// order, each with its node in `older` and here. Versions made from
    /// one another by [`Zone::apply`] share every untouched subtree, which
    /// the walk skips: O(changes × log n), not O(n).
    pub fn changes_since<'a>(
        &'a self,
        older: &'a Zone,
    ) -> Vec<(Name, Option<&'a Node>, Option<&'a Node>)> {
        use imbl::ordmap::DiffItem;
        older
            .nodes
            .diff(&self.nodes)
            .map(|d| match d {
                DiffItem::Add(k, n) => (k.name(), None, Some(&**n)),
                DiffItem::Remove(k, n) => (k.name(), Some(&**n), None),
                DiffItem::Update { old, new } => (new.0.name(), Some(&**old.1), Some(&**new.1)),
            })
            .collect()
    }

    /// Iterate all names and nodes in canonical order (for signers/exporters).
    pub fn nodes(&self) -> impl Iterator<Item = (Name, &Node)> {
        self.nodes.iter().map(|(k, n)| (k.name(), &**n))
    }

    /// Number of labels of the origin (counting every label).
    pub(crate) fn origin_labels(&self) -> usize {
        usize::from(self.origin_labels)
    }

    /// Whether any wildcard owner exists (skips the wildcard probe otherwise).
    pub(crate) fn has_wildcards(&self) -> bool {
        self.wildcards > 0
    }

    /// Whether any delegation exists.
    pub(crate) fn has_cuts(&self) -> bool {
        self.cuts > 0
    }

    /// Whether any name has LUA programs to evaluate (the server then
    /// answers this zone off the reactor thread).
    pub fn has_dynamic(&self) -> bool {
        self.dynamic > 0
    }

    /// Every LUA program that answers queries, with its owner (for priming
    /// health checks at load). `include` snippets (type `LUA`) are left out.
    pub fn lua_programs(&self) -> impl Iterator<Item = (Name, &Arc<LuaRecord>)> {
        self.nodes
            .iter()
            .filter(|(_, node)| node.dynamic.iter().any(|d| d.rtype != LUA))
            .flat_map(|(k, node)| {
                let name = k.name();
                node.dynamic
                    .iter()
                    .filter(|d| d.rtype != LUA)
                    .flat_map(|d| d.programs.iter())
                    .map(move |p| (name.clone(), p))
            })
    }

    /// The `include` snippets (LUA records of type `LUA`) at `name`.
    pub fn lua_includes(&self, name: &Name) -> Vec<LuaRecord> {
        self.node(name)
            .and_then(|n| n.dynamic(LUA))
            .map(|d| d.programs.iter().map(|p| (**p).clone()).collect())
            .unwrap_or_default()
    }

    /// The topmost delegation point on the path from the apex to `name`
    /// (inclusive). Callers know one exists from the node flags.
    pub(crate) fn topmost_cut(&self, name: &Name) -> Option<(Name, &Node)> {
        let key = key::of(name);
        let found = key::prefixes(&key)
            .skip(self.origin_labels() + 1)
            .find_map(|end| {
                let k = key.get(..end)?;
                let node = self.node_by_key(k)?;
                node.cut.then(|| (key::name_of(k), node))
            });
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::file::parse_master;
    use std::str::FromStr;

    fn name(s: &str) -> Name {
        Name::from_str(s).unwrap()
    }

    fn build(text: &str) -> Result<Zone, ZoneError> {
        let (origin, records) = parse_master(text, None).unwrap();
        Zone::new(origin, records)
    }

    const BASE: &str = "$ORIGIN example.com.\n$TTL 3600\n@ IN SOA ns1 hm 42 7200 3600 1209600 300\n@ IN NS ns1\nns1 IN A 192.0.2.1\n";

    #[test]
    fn the_soa_is_kept_as_wire_and_served_the_same() {
        let z = build(BASE).unwrap();
        let wire = |z: &Zone| {
            matches!(
                *set_at(z, "example.com.", RecordType::SOA).rdata,
                RDataSet::Wire { .. }
            )
        };
        assert!(wire(&z));
        assert!(!matches!(
            *set_at(&z, "ns1.example.com.", RecordType::A).rdata,
            RDataSet::Wire { .. }
        ));
        assert_eq!(
            z.soa().to_string(),
            "example.com. 3600 IN SOA ns1.example.com. hm.example.com. 42 7200 3600 1209600 300"
        );
        assert_eq!(z.negative_soa().ttl, 300);
        // A change at the apex keeps it so; a new serial too.
        let (_, more) = parse_master(
            "$ORIGIN example.com.\n@ 3600 IN SOA ns1 hm 43 7200 3600 1209600 300\n@ 60 IN A 192.0.2.9\n",
            None,
        )
        .unwrap();
        let z2 = z.apply(&[z.soa()], &more).unwrap();
        assert!(wire(&z2));
        assert_eq!(z2.serial(), 43);
        assert_eq!(z.serial(), 42);
        assert_eq!(z2.records().len(), z.records().len() + 1);
    }

    #[test]
    fn builds_and_reports_serial() {
        let z = build(BASE).unwrap();
        assert_eq!(z.serial(), 42);
        assert_eq!(z.origin(), &name("example.com."));
        assert_eq!(z.negative_soa().ttl, 300);
    }

    #[test]
    fn missing_soa_rejected() {
        let (_, records) = parse_master(BASE, None).unwrap();
        let records: Vec<_> = records
            .into_iter()
            .filter(|r| r.record_type() != RecordType::SOA)
            .collect();
        assert!(matches!(
            Zone::new(name("example.com."), records),
            Err(ZoneError::MissingSoa(_))
        ));
    }

    #[test]
    fn out_of_zone_rejected() {
        let text = format!("{BASE}www.example.net. IN A 192.0.2.2\n");
        assert!(matches!(build(&text), Err(ZoneError::OutOfZone(..))));
    }

    #[test]
    fn soa_below_apex_rejected() {
        let text = format!("{BASE}sub IN SOA ns1 hm 1 2 3 4 5\n");
        assert!(matches!(build(&text), Err(ZoneError::SoaNotAtApex(..))));
    }

    #[test]
    fn cname_with_other_data_rejected() {
        let text = format!("{BASE}www IN CNAME ns1\nwww IN A 192.0.2.9\n");
        assert!(matches!(build(&text), Err(ZoneError::CnameConflict(_))));
    }

    #[test]
    fn empty_non_terminals_inserted() {
        let text = format!("{BASE}a.b.c IN A 192.0.2.3\n");
        let z = build(&text).unwrap();
        assert!(z
            .node(&name("c.example.com."))
            .unwrap()
            .is_empty_non_terminal());
        assert!(z
            .node(&name("B.c.example.com."))
            .unwrap()
            .is_empty_non_terminal());
        assert!(!z
            .node(&name("a.b.c.example.com."))
            .unwrap()
            .is_empty_non_terminal());
    }

    #[test]
    fn cuts_and_occlusion_flagged() {
        let text = format!("{BASE}sub IN NS ns.sub\nns.sub IN A 192.0.2.5\n");
        let z = build(&text).unwrap();
        assert!(z.node(&name("sub.example.com.")).unwrap().cut);
        assert!(z.node(&name("ns.sub.example.com.")).unwrap().occluded);
        assert!(!z.node(&name("example.com.")).unwrap().cut);
        let sub = z.node(&name("sub.example.com.")).unwrap();
        assert_eq!(sub.rrset(RecordType::NS).unwrap().additional().len(), 1);
    }

    /// The `rtype` RRset at `n` in `z` (tests only: panics when absent).
    fn set_at<'z>(z: &'z Zone, n: &str, rtype: RecordType) -> &'z RRset {
        z.node(&name(n)).unwrap().rrset(rtype).unwrap()
    }

    #[test]
    fn nodes_and_rrsets_stay_small() {
        // A pool of 100k children holds ~8 nodes and ~15 RRsets per child.
        assert!(
            std::mem::size_of::<RRset>() <= 32,
            "{}",
            std::mem::size_of::<RRset>()
        );
        assert!(
            std::mem::size_of::<Node>() <= 40,
            "{}",
            std::mem::size_of::<Node>()
        );
        // One per child zone too (with its 16-byte `Arc` header, 160 bytes
        // is an allocator size class).
        assert!(
            std::mem::size_of::<Zone>() <= 144,
            "{}",
            std::mem::size_of::<Zone>()
        );
        // Keys sit inline in the tree's 16-slot nodes: one pointer each.
        assert_eq!(std::mem::size_of::<Keyed>(), 8);
        let k = Keyed::new(&name("www.Example.com."));
        assert_eq!(k.key(), key::of(&name("www.example.com.")).as_slice());
        assert_eq!(k.clone().name(), name("www.example.com."));
    }

    #[test]
    fn equal_data_is_shared_and_a_change_to_one_owner_leaves_the_others() {
        // A child zone's template: every host at one address.
        let text = format!(
            "{BASE}a IN A 192.0.2.9\nb IN A 192.0.2.9\nc 60 IN A 192.0.2.9\nd IN A 192.0.2.8\n"
        );
        let z = build(&text).unwrap();
        let at = |z: &Zone, n: &str| set_at(z, n, RecordType::A).rdata().as_ptr();
        assert_eq!(at(&z, "a.example.com."), at(&z, "b.example.com."));
        // The TTL is the RRset's own: shared data, different TTLs.
        assert_eq!(at(&z, "a.example.com."), at(&z, "c.example.com."));
        assert_eq!(set_at(&z, "c.example.com.", RecordType::A).ttl(), 60);
        assert_eq!(set_at(&z, "a.example.com.", RecordType::A).ttl(), 3600);
        assert_ne!(at(&z, "a.example.com."), at(&z, "d.example.com."));
        // Equal nodes are one node; a TTL of its own makes another.
        let node = |z: &Zone, n: &str| z.node(&name(n)).unwrap() as *const Node;
        assert_eq!(node(&z, "a.example.com."), node(&z, "b.example.com."));
        assert_ne!(node(&z, "a.example.com."), node(&z, "c.example.com."));
        // Another zone from the same template: the same data.
        let other = build(&text.replace("example.com.", "example.net.")).unwrap();
        assert_eq!(at(&z, "a.example.com."), at(&other, "b.example.net."));

        let (_, more) =
            parse_master("$ORIGIN example.com.\nb 3600 IN A 192.0.2.10\n", None).unwrap();
        let z2 = z.apply(&[], &more).unwrap();
        assert_eq!(set_at(&z2, "b.example.com.", RecordType::A).len(), 2);
        for n in ["a.example.com.", "c.example.com."] {
            assert_eq!(
                set_at(&z2, n, RecordType::A).rdata(),
                set_at(&z, n, RecordType::A).rdata()
            );
            assert_eq!(set_at(&z2, n, RecordType::A).len(), 1);
        }
        let a = z2.node(&name("a.example.com.")).unwrap();
        let recs = a
            .rrset(RecordType::A)
            .unwrap()
            .records(&name("a.example.com."));
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].name, name("a.example.com."));
        assert_eq!(recs[0].ttl, 3600);
        // The version it was made from still serves one record at b.
        assert_eq!(set_at(&z, "b.example.com.", RecordType::A).len(), 1);
        assert_eq!(node(&z, "a.example.com."), node(&z, "b.example.com."));
        assert_ne!(node(&z2, "a.example.com."), node(&z2, "b.example.com."));
        // Removing b's new record again leaves it equal to a, and served so.
        let z3 = z2.apply(&more, &[]).unwrap();
        assert_eq!(
            z3.node(&name("b.example.com.")),
            z3.node(&name("a.example.com."))
        );
        assert_eq!(z3.records().len(), z.records().len());
    }

    #[test]
    fn delegations_naming_the_same_servers_share_one_additional_section() {
        // A pool: every child names the pool's own servers (memory per child).
        let text = format!(
            "{BASE}ns2 IN A 192.0.2.2\nc1 IN NS ns1\nc1 IN NS ns2\nc2 IN NS ns1\nc2 IN NS ns2\n"
        );
        let z = build(&text).unwrap();
        let section = |z: &Zone, n: &str| set_at(z, n, RecordType::NS).additional.clone().unwrap();
        let (a, b) = (
            section(&z, "c1.example.com."),
            section(&z, "c2.example.com."),
        );
        assert_eq!(a.len(), 2);
        assert!(Arc::ptr_eq(&a, &b));
        // A delegation added later shares its neighbour's section too.
        let (_, added) = parse_master(
            "$ORIGIN example.com.\nc3 3600 IN NS ns1\nc3 3600 IN NS ns2\n",
            None,
        )
        .unwrap();
        let z2 = z.apply(&[], &added).unwrap();
        assert!(Arc::ptr_eq(&a, &section(&z2, "c3.example.com.")));
        // Different servers, different section.
        let (_, other) = parse_master("$ORIGIN example.com.\nc4 3600 IN NS ns1\n", None).unwrap();
        let z3 = z2.apply(&[], &other).unwrap();
        assert_eq!(section(&z3, "c4.example.com.").len(), 1);
    }

    #[test]
    fn ttls_as_given_survive_compaction() {
        // Equal TTLs are kept implicitly; a removal still recomputes the
        // RRset TTL from what each remaining record was given.
        let text = format!("{BASE}w 60 IN A 192.0.2.7\nw 300 IN A 192.0.2.8\nv IN A 192.0.2.9\nv IN A 192.0.2.10\n");
        let z = build(&text).unwrap();
        let ttl = |z: &Zone, n: &str| set_at(z, n, RecordType::A).ttl();
        assert_eq!(ttl(&z, "w.example.com."), 60);
        assert!(set_at(&z, "v.example.com.", RecordType::A)
            .given_ttls
            .is_empty());
        let low =
            set_at(&z, "w.example.com.", RecordType::A).records(&name("w.example.com."))[0].clone();
        let z2 = z.apply(&[low], &[]).unwrap();
        assert_eq!(ttl(&z2, "w.example.com."), 300);
        let (_, more) = parse_master("$ORIGIN example.com.\nv 30 IN A 192.0.2.11\n", None).unwrap();
        let z3 = z2.apply(&[], &more).unwrap();
        assert_eq!(ttl(&z3, "v.example.com."), 30);
        let gone = set_at(&z3, "v.example.com.", RecordType::A)
            .records(&name("v.example.com."))
            .iter()
            .find(|r| r.data.to_string() == "192.0.2.11")
            .unwrap()
            .clone();
        let z4 = z3.apply(&[gone], &[]).unwrap();
        assert_eq!(ttl(&z4, "v.example.com."), 3600);
    }

    #[test]
    fn nested_cuts_and_siblings() {
        let text = format!(
            "{BASE}a IN NS ns1\nx.a IN NS ns1\ny.x.a IN A 192.0.2.1\nab IN A 192.0.2.2\nb.a IN A 192.0.2.3\n"
        );
        let z = build(&text).unwrap();
        let flag = |s: &str| {
            let n = z.node(&name(s)).unwrap();
            (n.cut, n.occluded)
        };
        assert_eq!(flag("a.example.com."), (true, false));
        assert_eq!(flag("x.a.example.com."), (true, true));
        assert_eq!(flag("y.x.a.example.com."), (false, true));
        assert_eq!(flag("b.a.example.com."), (false, true));
        assert_eq!(flag("ab.example.com."), (false, false));
        assert_eq!(
            z.topmost_cut(&name("y.x.a.example.com.")).unwrap().0,
            name("a.example.com.")
        );
    }

    #[test]
    fn records_soa_first_canonical_order_and_rrset_ttl() {
        let text = format!("{BASE}b IN A 192.0.2.3\na 60 IN A 192.0.2.4\na 30 IN A 192.0.2.5\n");
        let z = build(&text).unwrap();
        let recs = z.records();
        assert_eq!(recs[0].record_type(), RecordType::SOA);
        let names: Vec<String> = recs.iter().map(|r| r.name.to_string()).collect();
        let a = names.iter().position(|n| n == "a.example.com.").unwrap();
        let b = names.iter().position(|n| n == "b.example.com.").unwrap();
        assert!(a < b);
        assert!(recs
            .iter()
            .filter(|r| r.name == name("a.example.com."))
            .all(|r| r.ttl == 30));
    }

    #[test]
    fn export_round_trips_through_parser() {
        let text = format!("{BASE}b IN TXT \"x y\" \"z\"\nmx IN MX 10 ns1\n");
        let z = build(&text).unwrap();
        let out = crate::zone::file::write_master(z.origin(), &z.records());
        let z2 = build(&out).unwrap();
        assert_eq!(z.records(), z2.records());
    }
}

#[cfg(test)]
pub(crate) mod apply_tests {
    use super::*;
    use crate::zone::file::parse_master;

    /// Panics unless `a` and `b` hold the same tree, flags and additionals.
    pub(crate) fn assert_same(a: &Zone, b: &Zone) {
        assert_eq!(a.records(), b.records());
        assert_eq!(a.serial(), b.serial());
        assert_eq!(a.negative_soa(), b.negative_soa());
        assert_eq!(
            (a.has_wildcards(), a.has_cuts(), a.has_dynamic()),
            (b.has_wildcards(), b.has_cuts(), b.has_dynamic())
        );
        let flat = |z: &Zone| -> Vec<String> {
            z.nodes()
                .map(|(n, node)| {
                    let sets: Vec<String> = node
                        .rrsets
                        .iter()
                        .map(|s| {
                            format!(
                                "{}:{}:{:?}:{:?}",
                                s.rtype,
                                s.ttl(),
                                s.rdata(),
                                s.additional()
                            )
                        })
                        .collect();
                    let dynamic: Vec<String> = node
                        .dynamic
                        .iter()
                        .map(|d| format!("{}/{}/{}", d.rtype, d.ttl, d.programs.len()))
                        .collect();
                    format!(
                        "{n} cut={} occ={} {sets:?} {dynamic:?}",
                        node.cut, node.occluded
                    )
                })
                .collect()
        };
        assert_eq!(flat(a), flat(b));
    }

    fn recs(origin: &str, text: &str) -> Vec<Record> {
        parse_master(&format!("$ORIGIN {origin}\n$TTL 3600\n{text}"), None)
            .unwrap()
            .1
    }

    const BASE: &str = "@ SOA ns1 hm 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n\
        mx MX 10 mail\nmail A 192.0.2.9\nsub NS ns.sub\nns.sub A 192.0.2.5\n*.w TXT wild\n";

    /// Apply `del` then `add` to BASE and compare with a fresh build.
    fn check(del: &str, add: &str) -> Zone {
        let o = "example.com.";
        let origin = Name::from_ascii(o).unwrap();
        let old = Zone::new(origin.clone(), recs(o, BASE)).unwrap();
        let (del, add) = (recs(o, del), recs(o, add));
        let new = old.apply(&del, &add).unwrap();
        let mut want: Vec<Record> = old
            .records()
            .into_iter()
            .filter(|r| {
                !del.iter()
                    .any(|d| d.name.to_lowercase() == r.name && d.data == r.data)
            })
            .collect();
        want.extend(add);
        let fresh = Zone::new(origin, want).unwrap();
        assert_same(&new, &fresh);
        // The old version is untouched.
        assert_same(
            &old,
            &Zone::new(Name::from_ascii(o).unwrap(), recs(o, BASE)).unwrap(),
        );
        new
    }

    #[test]
    fn adds_names_with_empty_non_terminals() {
        let z = check("", "a.b.c A 192.0.2.3\n");
        assert!(z
            .node(&Name::from_ascii("b.c.example.com.").unwrap())
            .is_some());
    }

    #[test]
    fn removing_the_last_record_removes_empty_non_terminals() {
        let z = check("*.w TXT wild\n", "");
        assert!(z
            .node(&Name::from_ascii("w.example.com.").unwrap())
            .is_none());
        assert!(!z.has_wildcards());
    }

    #[test]
    fn new_delegation_occludes_below_and_removal_uncovers() {
        check("", "mail NS ns1\n");
        check("sub NS ns.sub\n", "");
        let z = check(
            "",
            "x.y.sub2 A 192.0.2.7\nsub2 NS ns.sub2\nns.sub2 A 192.0.2.8\n",
        );
        assert!(
            z.node(&Name::from_ascii("x.y.sub2.example.com.").unwrap())
                .unwrap()
                .occluded
        );
    }

    #[test]
    fn address_changes_reach_additional_sections() {
        check("mail A 192.0.2.9\n", "mail A 192.0.2.10\n");
        check("ns.sub A 192.0.2.5\n", "ns.sub AAAA 2001:db8::5\n");
        check("", "mx2 MX 5 mail\nsrv SRV 1 1 1 ns1\n");
    }

    #[test]
    fn soa_replacement_and_ttls() {
        let z = check(
            "@ SOA ns1 hm 1 7200 3600 1209600 300\n",
            "@ SOA ns1 hm 2 7200 3600 1209600 300\nt 60 TXT a\nt 30 TXT b\n",
        );
        assert_eq!(z.serial(), 2);
        // The SOA is read from the apex node the tree holds, of this version.
        let apex = z.node(z.origin()).unwrap();
        assert_eq!(
            z.soa(),
            apex.rrset(RecordType::SOA).unwrap().records(z.origin())[0]
        );
        assert!(matches!(&z.soa().data, RData::SOA(s) if s.serial == 2));
        let z = check(
            "@ SOA ns1 hm 1 7200 3600 1209600 300\n",
            "@ SOA ns1 hm 3 7200 3600 1209600 120\n@ NS ns2\nns2 A 192.0.2.77\n",
        );
        assert_eq!((z.serial(), z.negative_ttl()), (3, 120));
        let apex = z.node(z.origin()).unwrap();
        assert_eq!(
            z.soa(),
            apex.rrset(RecordType::SOA).unwrap().records(z.origin())[0]
        );
        assert_eq!(z.negative_soa().ttl, 120);
        assert!(check("", "t 60 TXT a\n")
            .records()
            .iter()
            .any(|r| r.ttl == 60));
    }

    #[test]
    fn removal_restores_the_rrset_ttl() {
        let o = "example.com.";
        let origin = Name::from_ascii(o).unwrap();
        let old = Zone::new(origin, recs(o, &format!("{BASE}t 60 TXT a\nt 30 TXT b\n"))).unwrap();
        let new = old.apply(&recs(o, "t 30 TXT b\n"), &[]).unwrap();
        let t = new
            .node(&Name::from_ascii("t.example.com.").unwrap())
            .unwrap();
        assert_eq!(t.rrsets[0].ttl(), 60);
    }

    #[test]
    fn conflicts_and_a_lost_soa_are_errors() {
        let o = "example.com.";
        let old = Zone::new(Name::from_ascii(o).unwrap(), recs(o, BASE)).unwrap();
        assert!(matches!(
            old.apply(&[], &recs(o, "mail CNAME ns1\n")),
            Err(ZoneError::CnameConflict(_))
        ));
        assert!(matches!(
            old.apply(&recs(o, "@ SOA ns1 hm 1 7200 3600 1209600 300\n"), &[]),
            Err(ZoneError::MissingSoa(_))
        ));
        assert!(matches!(
            old.apply(&[], &recs("example.net.", "x A 192.0.2.1\n")),
            Err(ZoneError::OutOfZone(..))
        ));
    }
}

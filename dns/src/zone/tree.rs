//! One zone's contents as an immutable name tree.
//!
//! Zones are rebuilt whole on every change, so everything a lookup needs is
//! precomputed here: empty non-terminals exist as nodes (NXDOMAIN vs NODATA
//! is one map probe), delegation points and occluded names are flagged, the
//! negative-caching SOA is ready, and additional-section records for NS, MX
//! and SRV RRsets are attached to those RRsets.

use super::key::{self, Keyed};
use crate::lua::{LuaRecord, LUA_TYPE_CODE};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable;
use std::collections::BTreeMap;
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

/// One RRset of a node: records share owner, type and (normalised) TTL.
#[derive(Debug, Clone)]
pub struct RRset {
    /// The record type.
    pub rtype: RecordType,
    /// The records; owner names are the lower-cased node name.
    pub records: Vec<Record>,
    /// Precomputed additional-section records (A/AAAA of in-zone targets of NS, MX, SRV).
    pub additional: Vec<Record>,
}

/// A name in the tree: its RRsets (sorted by type code) and precomputed flags.
#[derive(Debug, Clone, Default)]
pub struct Node {
    /// RRsets sorted by numeric type; empty for an empty non-terminal.
    pub rrsets: Vec<RRset>,
    /// A delegation point: has NS and is not the apex.
    pub cut: bool,
    /// Strictly below a delegation point (glue or occluded data).
    pub occluded: bool,
    /// LUA programs by the type they synthesize (empty unless LUA records
    /// are enabled for the zone).
    pub dynamic: Vec<DynamicRRset>,
}

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
#[derive(Debug)]
pub struct Zone {
    origin: Name,
    origin_labels: usize,
    /// Keyed canonically (see [`super::key`]): lookups compare bytes.
    nodes: BTreeMap<Keyed, Node>,
    soa: Record,
    negative_soa: Record,
    serial: u32,
    has_wildcards: bool,
    has_cuts: bool,
    /// Whether any node has dynamic (LUA) RRsets.
    has_dynamic: bool,
}

/// Group a node's LUA RRset into dynamic RRsets by the type they answer for.
fn dynamic_sets(name: &Name, lua: Option<&RRset>) -> Result<Vec<DynamicRRset>, ZoneError> {
    let Some(set) = lua else {
        return Ok(Vec::new());
    };
    let mut out: Vec<DynamicRRset> = Vec::new();
    for r in &set.records {
        let wire = r
            .data
            .to_bytes()
            .map_err(|e| ZoneError::BadLua(name.to_string(), e.to_string()))?;
        let program = LuaRecord::from_wire(&wire)
            .map_err(|e| ZoneError::BadLua(name.to_string(), e.to_string()))?;
        match out.iter_mut().find(|d| d.rtype == program.rtype) {
            Some(d) => d.programs.push(Arc::new(program)),
            None => out.push(DynamicRRset {
                rtype: program.rtype,
                ttl: r.ttl,
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
        let mut nodes: BTreeMap<Name, Node> = BTreeMap::new();
        nodes.insert(origin.clone(), Node::default());
        let mut soa: Option<Record> = None;

        for mut rec in records {
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
            if rtype == RecordType::SOA {
                if owner != origin {
                    return Err(ZoneError::SoaNotAtApex(
                        owner.to_string(),
                        origin.to_string(),
                    ));
                }
                if soa.as_ref().is_some_and(|s| s.data != rec.data) {
                    return Err(ZoneError::MultipleSoa(origin.to_string()));
                }
            }
            rec.name = owner.clone();
            if rtype == RecordType::SOA {
                soa = Some(rec.clone());
            }

            // Empty non-terminals: every ancestor up to the apex exists.
            let mut anc = owner.base_name();
            while label_count(&anc) > origin_labels && !nodes.contains_key(&anc) {
                nodes.insert(anc.clone(), Node::default());
                anc = anc.base_name();
            }

            let node = nodes.entry(owner).or_default();
            match node.rrsets.iter_mut().find(|s| s.rtype == rtype) {
                Some(set) => {
                    if !set.records.iter().any(|r| r.data == rec.data) {
                        set.records.push(rec);
                    }
                }
                None => node.rrsets.push(RRset {
                    rtype,
                    records: vec![rec],
                    additional: Vec::new(),
                }),
            }
        }

        let soa = soa.ok_or_else(|| ZoneError::MissingSoa(origin.to_string()))?;
        let (serial, minimum) = match &soa.data {
            RData::SOA(s) => (s.serial, s.minimum),
            _ => (0, 0),
        };
        let mut negative_soa = soa.clone();
        negative_soa.ttl = soa.ttl.min(minimum);

        // Normalise RRsets and validate per-node rules; flag cuts.
        let mut has_wildcards = false;
        for (name, node) in nodes.iter_mut() {
            node.rrsets.sort_by_key(|s| u16::from(s.rtype));
            for set in node.rrsets.iter_mut() {
                // RFC 2181 §5.2: one TTL per RRset; use the lowest.
                let ttl = set.records.iter().map(|r| r.ttl).min().unwrap_or(0);
                for r in set.records.iter_mut() {
                    r.ttl = ttl;
                }
                // Deterministic order for export and answers.
                set.records
                    .sort_by_cached_key(|r| r.data.to_bytes().unwrap_or_default());
            }
            let has_cname = node.rrset(RecordType::CNAME).is_some();
            if has_cname {
                let cname_count = node.rrset(RecordType::CNAME).map_or(0, |s| s.records.len());
                let other = node.rrsets.iter().any(|s| {
                    !matches!(
                        s.rtype,
                        RecordType::CNAME | RecordType::RRSIG | RecordType::NSEC
                    )
                });
                if other || cname_count > 1 {
                    return Err(ZoneError::CnameConflict(name.to_string()));
                }
            }
            node.cut = *name != origin && node.rrset(RecordType::NS).is_some();
            if name.is_wildcard() {
                has_wildcards = true;
            }
            if options.lua_records {
                node.dynamic = dynamic_sets(name, node.rrset(LUA))?;
            }
        }

        // Occlusion: a node with a cut strictly above it. In canonical order
        // a subtree is contiguous right after its root, so one pass tracking
        // the current topmost cut suffices (pool zones hold many cuts).
        let mut has_cuts = false;
        let mut current_cut: Option<Name> = None;
        for (name, node) in nodes.iter_mut() {
            if let Some(cut) = &current_cut {
                if cut.zone_of(name) {
                    node.occluded = true;
                    // Never evaluated: the child zone's servers answer here.
                    node.dynamic.clear();
                    continue;
                }
            }
            current_cut = None;
            if node.cut {
                has_cuts = true;
                current_cut = Some(name.clone());
            }
        }

        let nodes = nodes
            .into_iter()
            .map(|(name, node)| (Keyed::new(name), node))
            .collect();
        let mut zone = Zone {
            origin,
            origin_labels,
            nodes,
            soa,
            negative_soa,
            serial,
            has_wildcards,
            has_cuts,
            has_dynamic: false,
        };
        zone.has_dynamic = zone.nodes.values().any(|n| !n.dynamic.is_empty());
        zone.attach_additionals();
        Ok(zone)
    }

    /// Precompute the additional section for NS/MX/SRV RRsets: A/AAAA of
    /// targets inside this zone (see [`Zone::additional_for`]).
    fn attach_additionals(&mut self) {
        let mut plan: Vec<(Name, RecordType, Vec<Record>)> = Vec::new();
        for (name, node) in self.nodes() {
            for set in &node.rrsets {
                let extra = self.additional_for(set.rtype, set.records.iter().map(|r| &r.data));
                if !extra.is_empty() {
                    plan.push((name.clone(), set.rtype, extra));
                }
            }
        }
        for (name, rtype, extra) in plan {
            if let Some(node) = self.nodes.get_mut(key::of(&name).as_slice()) {
                if let Some(set) = node.rrsets.iter_mut().find(|s| s.rtype == rtype) {
                    set.additional = extra;
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
            let Some(tnode) = self.node(target) else {
                continue;
            };
            if tnode.occluded && !glue_ok {
                continue;
            }
            for t in [RecordType::A, RecordType::AAAA] {
                if let Some(s) = tnode.rrset(t) {
                    extra.extend(s.records.iter().cloned());
                }
            }
        }
        extra
    }

    /// The apex name.
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// SOA serial.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// The apex SOA record.
    pub fn soa(&self) -> &Record {
        &self.soa
    }

    /// The SOA record for negative answers (TTL = min(SOA TTL, MINIMUM), RFC 2308 §3).
    pub fn negative_soa(&self) -> &Record {
        &self.negative_soa
    }

    /// All records, SOA first then canonical order.
    pub fn records(&self) -> Vec<Record> {
        let mut out = vec![self.soa.clone()];
        for node in self.nodes.values() {
            for set in &node.rrsets {
                if set.rtype != RecordType::SOA {
                    out.extend(set.records.iter().cloned());
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
        self.nodes.get(key::of(name).as_slice())
    }

    /// The node and its stored (lower-case) name.
    pub(crate) fn node_entry(&self, name: &Name) -> Option<(&Name, &Node)> {
        self.node_by_key(&key::of(name))
    }

    /// The node whose canonical key is `key` (see [`super::key`]).
    pub(crate) fn node_by_key(&self, key: &[u8]) -> Option<(&Name, &Node)> {
        self.nodes.get_key_value(key).map(|(k, n)| (k.name(), n))
    }

    /// Iterate all names and nodes in canonical order (for signers/exporters).
    pub fn nodes(&self) -> impl Iterator<Item = (&Name, &Node)> {
        self.nodes.iter().map(|(k, n)| (k.name(), n))
    }

    /// Number of labels of the origin (counting every label).
    pub(crate) fn origin_labels(&self) -> usize {
        self.origin_labels
    }

    /// Whether any wildcard owner exists (skips the wildcard probe otherwise).
    pub(crate) fn has_wildcards(&self) -> bool {
        self.has_wildcards
    }

    /// Whether any delegation exists.
    pub(crate) fn has_cuts(&self) -> bool {
        self.has_cuts
    }

    /// Whether any name has LUA programs to evaluate (the server then
    /// answers this zone off the reactor thread).
    pub fn has_dynamic(&self) -> bool {
        self.has_dynamic
    }

    /// Every LUA program that answers queries, with its owner (for priming
    /// health checks at load). `include` snippets (type `LUA`) are left out.
    pub fn lua_programs(&self) -> impl Iterator<Item = (&Name, &Arc<LuaRecord>)> {
        self.nodes().flat_map(|(name, node)| {
            node.dynamic
                .iter()
                .filter(|d| d.rtype != LUA)
                .flat_map(move |d| d.programs.iter().map(move |p| (name, p)))
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
    pub(crate) fn topmost_cut(&self, name: &Name) -> Option<(&Name, &Node)> {
        let key = key::of(name);
        let found = key::prefixes(&key)
            .skip(self.origin_labels + 1)
            .filter_map(|end| key.get(..end).and_then(|k| self.node_by_key(k)))
            .find(|(_, node)| node.cut);
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
        assert_eq!(sub.rrset(RecordType::NS).unwrap().additional.len(), 1);
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
            &name("a.example.com.")
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

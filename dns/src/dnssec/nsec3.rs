//! NSEC3 (RFC 5155) with RFC 9276 parameters: SHA-1, zero extra iterations,
//! empty salt, no opt-out. The chain is computed from the zone's name tree
//! when the zone snapshot is built; proofs are binary searches over it.

use hickory_proto::dnssec::rdata::{DNSSECRData, NSEC3};
use hickory_proto::dnssec::Nsec3HashAlgorithm;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::sign::{KeptSet, SignError, SignedCell};
use super::ZoneSigner;
use crate::zone::{Node, Zone};
use imbl::OrdMap;
use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

/// One name of the chain: its hash and the types that exist there.
#[derive(Debug)]
pub(super) struct Entry {
    hash: [u8; 20],
    types: Vec<RecordType>,
    /// The NSEC3 RR itself with its RRSIGs, made at its first proof and
    /// then copied into every answer that needs it (re-made when the keys
    /// change or the RRSIGs near expiry). Not at build: a signed record is
    /// ~0.6 KiB, and of 100k child zones most never deny a name. An entry
    /// is shared between chain versions only while its next hash, TTL and
    /// parameters are the same in them (see [`Nsec3Chain::apply`]), so the
    /// cell is valid wherever it is seen.
    signed: SignedCell,
}

impl Entry {
    /// The owner hash.
    pub(super) fn hash(&self) -> &[u8; 20] {
        &self.hash
    }
}

/// The NSEC3 chain of one zone.
///
/// A persistent B-tree keyed by owner hash: look-ups and neighbours are
/// O(log n) without allocation, and [`Nsec3Chain::apply`] inserts and
/// removes names in O(log n) while sharing the rest with the previous chain.
/// (A persistent vector did the same on paper, but its middle inserts and
/// removes cost ~0.5M instructions each in a pool of 100k delegations.)
#[derive(Debug, Clone)]
pub(super) struct Nsec3Chain {
    /// The zone's origin, under which the NSEC3 owners are.
    origin: Name,
    entries: OrdMap<[u8; 20], Arc<Entry>>,
    ttl: u32,
    iterations: u16,
    salt: Vec<u8>,
    /// What proofs at the apex need: the closest encloser of most NXDOMAIN
    /// answers is the apex, and its two hashes and look-ups would
    /// otherwise be made again for each of them.
    apex: OnceLock<Option<Box<ApexProofs>>>,
}

/// The entries of H(origin) and H(*.origin) in one chain version (made by
/// [`Nsec3Chain::apex`]).
#[derive(Debug, Clone)]
struct ApexProofs {
    /// The apex's entry.
    matching: Option<Arc<Entry>>,
    /// The entry of `*.origin`, when that wildcard exists.
    wildcard_matching: Option<Arc<Entry>>,
    /// The entry covering H(*.origin), when the wildcard does not exist.
    wildcard_covering: Option<Arc<Entry>>,
}

/// The RFC 5155 hash of `name` (lower-cased wire form, iterated). Straight
/// on ring: every NXDOMAIN proof hashes two or three names, and hickory's
/// generic path (owned lower-case copy, encoder) cost four times the digest.
pub(super) fn hash_name(name: &Name, salt: &[u8], iterations: u16) -> Option<[u8; 20]> {
    hash_labels(name.iter(), salt, iterations)
}

/// [`hash_name`] of the name made of `labels` (leftmost first, root
/// implied): next closer names and wildcards are hashed from the labels
/// of the names they derive from, without building them. The wire form is
/// assembled on the stack: no allocation per proof.
fn hash_labels<'a>(
    labels: impl Iterator<Item = &'a [u8]>,
    salt: &[u8],
    iterations: u16,
) -> Option<[u8; 20]> {
    use ring::digest::{digest, Context, SHA1_FOR_LEGACY_USE_ONLY as SHA1};
    // A name is at most 255 octets, an NSEC3 salt at most 255.
    let mut wire = [0u8; 510];
    let mut n = 0;
    for label in labels {
        let len = u8::try_from(label.len()).ok().filter(|l| *l <= 63)?;
        let dst = wire.get_mut(n..n + 1 + label.len())?;
        dst[0] = len;
        for (d, s) in dst[1..].iter_mut().zip(label) {
            *d = s.to_ascii_lowercase();
        }
        n += 1 + label.len();
    }
    // The root label, then the salt.
    if n >= 255 {
        return None;
    }
    n += 1;
    wire.get_mut(n..n + salt.len())?.copy_from_slice(salt);
    n += salt.len();
    let mut d = digest(&SHA1, wire.get(..n)?);
    for _ in 0..iterations {
        let mut ctx = Context::new(&SHA1);
        ctx.update(d.as_ref());
        ctx.update(salt);
        d = ctx.finish();
    }
    d.as_ref().try_into().ok()
}

/// base32hex (no padding, lowercase) of a hash, as used in NSEC3 owner names.
pub(super) fn base32hex(hash: &[u8]) -> String {
    data_encoding::BASE32HEX_NOPAD
        .encode(hash)
        .to_ascii_lowercase()
}

/// The owner name of the NSEC3 RR for `hash`: its base32hex under the
/// origin. Made when a record is, not kept per entry (80 bytes each, and a
/// name build per entry at load).
fn owner_of(hash: &[u8; 20], origin: &Name) -> Name {
    origin
        .prepend_label(base32hex(hash).as_str())
        .unwrap_or_else(|_| origin.clone())
}

/// The NSEC3 RR of `e` pointing at `next` with the bitmap `types`.
fn nsec3_record(
    e: &Entry,
    origin: &Name,
    next: &[u8; 20],
    ttl: u32,
    iterations: u16,
    salt: &[u8],
    types: impl IntoIterator<Item = RecordType>,
) -> Record {
    Record::from_rdata(
        owner_of(&e.hash, origin),
        ttl,
        RData::DNSSEC(DNSSECRData::NSEC3(NSEC3::new(
            Nsec3HashAlgorithm::SHA1,
            false,
            iterations,
            salt.to_vec(),
            next.to_vec(),
            types,
        ))),
    )
}

/// The chain entry of `name`, unless it is occluded (or unhashable).
///
/// A name with any authoritative RRset also lists RRSIG; a delegation
/// lists NS (and DS + RRSIG when it has a DS).
fn entry_for(name: &Name, node: &Node, salt: &[u8], iterations: u16) -> Option<Entry> {
    if node.occluded {
        return None;
    }
    let hash = hash_name(name, salt, iterations)?;
    // LUA records show as the types they synthesize, never as LUA.
    let mut types: Vec<RecordType> = node.served_types();
    let signed = !types.is_empty() && (!node.cut || types.contains(&RecordType::DS));
    if signed {
        types.push(RecordType::RRSIG);
    }
    Some(Entry {
        hash,
        types,
        signed: SignedCell::default(),
    })
}

impl Nsec3Chain {
    /// Builds the chain for `zone` with RFC 9276 parameters. `ttl` is the
    /// NSEC3 TTL: min(SOA TTL, SOA MINIMUM) per RFC 9077.
    ///
    /// Every non-occluded name is in the chain, empty non-terminals included
    /// (empty bitmap). A name with any authoritative RRset also lists RRSIG;
    /// a delegation lists NS (and DS + RRSIG when it has a DS).
    pub fn build(zone: &Zone, ttl: u32) -> Self {
        Self::build_with(zone, ttl, 0, Vec::new())
    }

    /// Builds with explicit parameters (tests use RFC 5155 Appendix A's).
    pub(super) fn build_with(zone: &Zone, ttl: u32, iterations: u16, salt: Vec<u8>) -> Self {
        let origin = zone.origin();
        let mut entries = OrdMap::new();
        for (name, node) in zone.nodes() {
            if let Some(e) = entry_for(&name, node, &salt, iterations) {
                entries.insert(e.hash, Arc::new(e));
            }
        }
        Self {
            origin: origin.clone(),
            entries,
            ttl,
            iterations,
            salt,
            apex: OnceLock::new(),
        }
    }

    /// The apex memo of this chain version, made at its first proof at the
    /// apex (not at build: of 100k child zones most never deny a name).
    fn apex(&self) -> Option<&ApexProofs> {
        self.apex
            .get_or_init(|| {
                let wildcard = std::iter::once(&b"*"[..]).chain(self.origin.iter());
                let hash = hash_name(&self.origin, &self.salt, self.iterations)?;
                let wildcard_hash = hash_labels(wildcard, &self.salt, self.iterations)?;
                Some(Box::new(ApexProofs {
                    matching: self.matching_hash(&hash).cloned(),
                    wildcard_matching: self.matching_hash(&wildcard_hash).cloned(),
                    wildcard_covering: self.covering_hash(&wildcard_hash).cloned(),
                }))
            })
            .as_deref()
    }

    /// A chain for `zone` built whole with this chain's parameters and `ttl`.
    pub(super) fn rebuilt(&self, zone: &Zone, ttl: u32) -> Self {
        Self::build_with(zone, ttl, self.iterations, self.salt.clone())
    }

    /// The entry at `hash` as a new entry without its NSEC3 RR (its next
    /// hash may have changed; the previous chain keeps the old entry and
    /// record).
    fn unseal(&mut self, hash: &[u8; 20]) {
        let Some(e) = self.entries.get(hash) else {
            return;
        };
        let fresh = Entry {
            hash: e.hash,
            types: e.types.clone(),
            signed: SignedCell::default(),
        };
        self.entries.insert(*hash, Arc::new(fresh));
    }

    /// The entry before `hash` in hash order (not `hash` itself), wrapping
    /// from the first to the last: the one whose interval covers `hash`.
    fn before(&self, hash: &[u8; 20]) -> Option<&Arc<Entry>> {
        self.entries
            .range(..*hash)
            .next_back()
            .or_else(|| self.entries.get_max().map(|(k, v)| (k, v)))
            .map(|(_, e)| e)
    }

    /// The entry after `hash` in hash order, wrapping from the last to the
    /// first: the next hashed owner of `hash`'s NSEC3.
    fn after(&self, hash: &[u8; 20]) -> Option<&Arc<Entry>> {
        use std::ops::Bound::{Excluded, Unbounded};
        self.entries
            .range((Excluded(*hash), Unbounded))
            .next()
            .or_else(|| self.entries.get_min().map(|(k, v)| (k, v)))
            .map(|(_, e)| e)
    }

    /// The chain of `zone`, the next version of the zone this chain was
    /// built for, where only the nodes at `names` changed (appeared, went,
    /// or changed types or flags): those names' entries come, go or get a
    /// new bitmap, and their predecessors a new next-hash.
    pub(super) fn apply(&self, zone: &Zone, names: &[Name]) -> Self {
        let mut chain = self.clone();
        // The apex memo holds entries of this version: the next one makes
        // its own.
        chain.apex = OnceLock::new();
        let mut touched: BTreeSet<[u8; 20]> = BTreeSet::new();
        for name in names {
            let Some(hash) = hash_name(name, &self.salt, self.iterations) else {
                continue;
            };
            let want = zone
                .node(name)
                .and_then(|node| entry_for(name, node, &self.salt, self.iterations));
            match (chain.entries.get(&hash), want) {
                (Some(_), None) => {
                    chain.entries.remove(&hash);
                }
                (Some(old), Some(e)) => {
                    if old.types == e.types {
                        continue;
                    }
                    chain.entries.insert(hash, Arc::new(e));
                }
                (None, None) => continue,
                (None, Some(e)) => {
                    chain.entries.insert(hash, Arc::new(e));
                }
            }
            touched.insert(hash);
        }
        if chain.entries.is_empty() {
            return chain;
        }
        let mut reseal: BTreeSet<[u8; 20]> = BTreeSet::new();
        for hash in &touched {
            if chain.entries.contains_key(hash) {
                reseal.insert(*hash);
            }
            if let Some(prev) = chain.before(hash) {
                reseal.insert(prev.hash);
            }
        }
        for hash in &reseal {
            chain.unseal(hash);
        }
        chain
    }

    /// Number of NSEC3 records.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }

    /// The NSEC3 RR of `e`, without keeping it when it was not built yet:
    /// a transfer reads every record once, and keeping them all would undo
    /// the lazy build (half a KiB per name).
    fn record_unkept(&self, e: &Entry) -> Record {
        match e.signed.first() {
            Some(r) => r,
            None => self.record_with(e, e.types.iter().copied()),
        }
    }

    /// Every NSEC3 RR in hash order, without keeping the ones not built
    /// yet (transfers and signed export).
    pub(super) fn records_unkept(&self) -> impl Iterator<Item = Record> + '_ {
        self.entries.values().map(|e| self.record_unkept(e))
    }

    /// The NSEC3 RR of `e`, an entry of this chain.
    #[cfg(test)]
    fn record(&self, e: &Entry) -> Record {
        self.record_unkept(e)
    }

    /// Appends the NSEC3 RR of `e` (an entry of this chain) and its RRSIGs
    /// to `out`: signed as answers sign it at the first proof that needs
    /// it, then kept with the entry and copied.
    pub(super) fn push_signed(
        &self,
        e: &Entry,
        signer: &ZoneSigner,
        now: u32,
        out: &mut Vec<Record>,
    ) -> Result<(), SignError> {
        e.signed.extend_into(
            out,
            signer.key_id(),
            &signer.policy,
            now,
            |_| true,
            || self.signed_set(e, signer, now),
        )
    }

    /// The kept NSEC3 RR of `e` with its RRSIGs, as
    /// [`Nsec3Chain::push_signed`] would copy them.
    pub(super) fn kept_signed(
        &self,
        e: &Entry,
        signer: &ZoneSigner,
        now: u32,
    ) -> Result<Option<KeptSet>, SignError> {
        e.signed.kept(
            signer.key_id(),
            &signer.policy,
            now,
            |_| true,
            || self.signed_set(e, signer, now),
        )
    }

    /// The NSEC3 RR of `e`, signed: the record, then its RRSIGs.
    fn signed_set(
        &self,
        e: &Entry,
        signer: &ZoneSigner,
        now: u32,
    ) -> Result<Vec<Record>, SignError> {
        let record = self.record_with(e, e.types.iter().copied());
        let rrsigs =
            super::answer::sign_group(signer, &record.name, std::slice::from_ref(&record), now)?;
        let mut set = Vec::with_capacity(1 + rrsigs.len());
        set.push(record);
        set.extend(rrsigs);
        Ok(set)
    }

    /// The NSEC3 RR of `e` with the bitmap `types`.
    fn record_with(&self, e: &Entry, types: impl IntoIterator<Item = RecordType>) -> Record {
        let next = self.after(&e.hash).map_or(e.hash, |n| n.hash);
        nsec3_record(
            e,
            &self.origin,
            &next,
            self.ttl,
            self.iterations,
            &self.salt,
            types,
        )
    }

    /// The owner name of the NSEC3 RR that `name` hashes to (whether or
    /// not the name is in the chain).
    pub(super) fn owner_for(&self, name: &Name) -> Option<Name> {
        let h = hash_name(name, &self.salt, self.iterations)?;
        Some(owner_of(&h, &self.origin))
    }

    /// The NSEC3 RRs a change at `name` touches: the name's own (when it
    /// is in the chain) and the one before its hash, whose next hash
    /// points at it or across where it was.
    pub(super) fn around(&self, name: &Name) -> Vec<Record> {
        let Some(h) = hash_name(name, &self.salt, self.iterations) else {
            return Vec::new();
        };
        let mut v = Vec::with_capacity(2);
        let own = self.entries.get(&h);
        if let Some(e) = own {
            v.push(self.record_unkept(e));
        }
        if let Some(before) = self.before(&h) {
            if own.is_none_or(|e| e.hash != before.hash) {
                v.push(self.record_unkept(before));
            }
        }
        v
    }

    /// The chain's TTL and parameters: views made under other ones are
    /// rebuilt, not followed.
    pub(super) fn params(&self) -> (u32, u16, &[u8]) {
        (self.ttl, self.iterations, &self.salt)
    }

    /// Whether `name` is this chain's origin (cheap when it is not: a
    /// label count first).
    fn is_origin(&self, name: &Name) -> bool {
        super::same_name(name, &self.origin)
    }

    /// The apex memo when `name` is the origin.
    fn at_apex(&self, name: &Name) -> Option<&ApexProofs> {
        if !self.is_origin(name) {
            return None;
        }
        self.apex()
    }

    /// H(name) (the callers use the apex memo first).
    fn hash(&self, name: &Name) -> Option<[u8; 20]> {
        hash_name(name, &self.salt, self.iterations)
    }

    /// H(*.ce).
    fn wildcard_hash(&self, ce: &Name) -> Option<[u8; 20]> {
        hash_labels(
            std::iter::once(&b"*"[..]).chain(ce.iter()),
            &self.salt,
            self.iterations,
        )
    }

    /// The entry whose owner hash is `h`, if any.
    fn matching_hash(&self, h: &[u8; 20]) -> Option<&Arc<Entry>> {
        self.entries.get(h)
    }

    /// The entry whose interval (owner hash, next hash) covers `h`; `None`
    /// when `h` is itself in the chain (then it is not covered).
    fn covering_hash(&self, h: &[u8; 20]) -> Option<&Arc<Entry>> {
        // One walk: the last entry at or before h is h itself (then it is
        // not covered) or the one that covers it; before the first entry,
        // the last one wraps around to cover it.
        match self.entries.range(..=*h).next_back() {
            Some((k, _)) if k == h => None,
            Some((_, e)) => Some(e),
            None => self.entries.get_max().map(|(_, e)| e),
        }
    }

    /// The entry whose owner hash equals H(name), if `name` is in the chain.
    pub(super) fn matching_entry(&self, name: &Name) -> Option<&Arc<Entry>> {
        match self.at_apex(name) {
            Some(apex) => apex.matching.as_ref(),
            None => self.matching_hash(&self.hash(name)?),
        }
    }

    /// The entry that covers H(name) (`None` when `name` is in the chain).
    #[cfg(test)]
    pub(super) fn covering_entry(&self, name: &Name) -> Option<&Arc<Entry>> {
        self.covering_hash(&self.hash(name)?)
    }

    /// The entry that covers the hash of the next closer name of `name`
    /// under its closest encloser `ce` (RFC 5155 §7.2.1): the name one
    /// label below `ce` on the way to `name`, hashed from `name`'s labels.
    pub(super) fn covering_next_closer(&self, name: &Name, ce: &Name) -> Option<&Arc<Entry>> {
        let want = (ce.num_labels() as usize + 1).min(name.num_labels() as usize);
        let skip = (name.num_labels() as usize).saturating_sub(want);
        let h = hash_labels(name.iter().skip(skip), &self.salt, self.iterations)?;
        self.covering_hash(&h)
    }

    /// The entry whose owner hash equals H(*.ce), if that wildcard exists.
    pub(super) fn matching_wildcard(&self, ce: &Name) -> Option<&Arc<Entry>> {
        match self.at_apex(ce) {
            Some(apex) => apex.wildcard_matching.as_ref(),
            None => self.matching_hash(&self.wildcard_hash(ce)?),
        }
    }

    /// The entry that covers H(*.ce) (`None` when the wildcard exists).
    pub(super) fn covering_wildcard(&self, ce: &Name) -> Option<&Arc<Entry>> {
        match self.at_apex(ce) {
            Some(apex) => apex.wildcard_covering.as_ref(),
            None => self.covering_hash(&self.wildcard_hash(ce)?),
        }
    }

    /// The NSEC3 whose owner hash equals H(name), if `name` is in the chain.
    #[cfg(test)]
    pub(super) fn matching(&self, name: &Name) -> Option<Record> {
        self.matching_entry(name).map(|e| self.record(e))
    }

    /// The NSEC3 whose interval (owner hash, next hash) covers H(name).
    /// `None` when H(name) is itself in the chain (then it is not covered).
    #[cfg(test)]
    pub(super) fn covering(&self, name: &Name) -> Option<Record> {
        self.covering_entry(name).map(|e| self.record(e))
    }

    /// The NSEC3 of `name` with a bitmap that omits `rtype` (and RRSIG
    /// too when no other type is left), with the hash of its entry; `None`
    /// when `name` is not in the chain or does not list `rtype`.
    ///
    /// For a LUA RRset that synthesized nothing for this answer: the chain
    /// lists the type (the name can have such data), but this NODATA must
    /// deny it. Only the bitmap changes (owner, next hash and parameters
    /// stay), so the record still matches or covers what it did. It is a
    /// per-answer record: signed online like any RRset (its signature
    /// cached by content), never with the kept signature of the entry's
    /// unmodified record.
    pub(super) fn denied(&self, name: &Name, rtype: RecordType) -> Option<([u8; 20], Record)> {
        let entry = self.matching_entry(name)?;
        if !entry.types.contains(&rtype) {
            return None;
        }
        let mut types: Vec<RecordType> = entry
            .types
            .iter()
            .copied()
            .filter(|t| *t != rtype)
            .collect();
        if types == [RecordType::RRSIG] {
            types.clear();
        }
        Some((entry.hash, self.record_with(entry, types.iter().copied())))
    }

    /// Rewrites the NSEC3 of `name` among `proofs` (if there) as
    /// [`Nsec3Chain::denied`] makes it.
    #[cfg(test)]
    pub(super) fn deny_type(&self, proofs: &mut [Record], name: &Name, rtype: RecordType) {
        let Some((hash, denied)) = self.denied(name, rtype) else {
            return;
        };
        let owner = owner_of(&hash, &self.origin);
        for r in proofs.iter_mut().filter(|r| r.name == owner) {
            *r = denied.clone();
        }
    }

    /// Every NSEC3 record, in hash order (tests compare chains with it).
    #[cfg(test)]
    fn records(&self) -> Vec<Record> {
        self.entries.values().map(|e| self.record(e)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::file::parse_master;

    /// RFC 5155 Appendix A: salt aabbccdd, 12 iterations.
    #[test]
    fn hashes_match_rfc5155_appendix_a() {
        let salt = hex::decode("aabbccdd").unwrap();
        let cases = [
            ("example.", "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom"),
            ("a.example.", "35mthgpgcu1qg68fab165klnsnk3dpvl"),
            ("ai.example.", "gjeqe526plbf1g8mklp59enfd789njgi"),
            ("ns1.example.", "2t7b4g4vsa5smi47k61mv5bv1a22bojr"),
            ("ns2.example.", "q04jkcevqvmu85r014c7dkba38o0ji5r"),
            ("w.example.", "k8udemvp1j2f7eg6jebps17vp3n8i58h"),
            ("*.w.example.", "r53bq7cc2uvmubfu5ocmm6pers9tk9en"),
            ("x.w.example.", "b4um86eghhds6nea196smvmlo4ors995"),
            ("y.w.example.", "ji6neoaepv8b5o6k4ev33abha8ht9fgc"),
            ("x.y.w.example.", "2vptu5timamqttgl4luu9kg21e0aor3s"),
            ("xx.example.", "t644ebqk9bibcna874givr6joj62mlhv"),
        ];
        for (name, want) in cases {
            let h = hash_name(&Name::from_ascii(name).unwrap(), &salt, 12).unwrap();
            assert_eq!(base32hex(&h), want, "{name}");
        }
        let upper = hash_name(&Name::from_ascii("X.W.Example.").unwrap(), &salt, 12).unwrap();
        assert_eq!(base32hex(&upper), "b4um86eghhds6nea196smvmlo4ors995");
    }

    fn zone(text: &str) -> Zone {
        let (origin, records) = parse_master(text, None).unwrap();
        Zone::new(origin, records).unwrap()
    }

    const Z: &str = "$ORIGIN example.\n$TTL 3600\n\
        @ SOA ns1 hostmaster 1 3600 600 86400 300\n@ NS ns1\nns1 A 192.0.2.1\n\
        a.b.c A 192.0.2.2\n*.w A 192.0.2.3\nsub NS ns.sub\nns.sub A 192.0.2.4\nsecure NS ns1\nsecure DS 1 13 2 2bb183af5f22588179a53b0a98631fad1a292118a7d2d2a6b7d6a2c7d0b3e8f1\n";

    #[test]
    fn chain_covers_and_matches() {
        let z = zone(Z);
        let c = Nsec3Chain::build(&z, 300);
        // apex, ns1, a.b.c, b.c (ENT), c (ENT), *.w, w (ENT), sub, secure
        assert_eq!(c.len(), 9);
        let n = |s: &str| Name::from_ascii(s).unwrap();
        let types = |r: Record| match r.data {
            RData::DNSSEC(DNSSECRData::NSEC3(n3)) => n3.type_bit_maps().collect::<Vec<_>>(),
            _ => panic!(),
        };
        assert!(types(c.matching(&n("b.c.example.")).unwrap()).is_empty());
        assert_eq!(
            types(c.matching(&n("sub.example.")).unwrap()),
            vec![RecordType::NS]
        );
        assert_eq!(
            types(c.matching(&n("secure.example.")).unwrap()),
            vec![RecordType::NS, RecordType::DS, RecordType::RRSIG]
        );
        assert!(
            c.matching(&n("ns.sub.example.")).is_none(),
            "glue is not in the chain"
        );
        assert!(c.matching(&n("nope.example.")).is_none());
        let cov = c.covering(&n("nope.example.")).unwrap();
        let h = hash_name(&n("nope.example."), &[], 0).unwrap();
        let owner_hash = data_encoding::BASE32HEX_NOPAD
            .decode(
                cov.name
                    .iter()
                    .next()
                    .unwrap()
                    .to_ascii_uppercase()
                    .as_slice(),
            )
            .unwrap();
        let next = match &cov.data {
            RData::DNSSEC(DNSSECRData::NSEC3(n3)) => n3.next_hashed_owner_name().to_vec(),
            _ => panic!(),
        };
        let covered = if owner_hash < next {
            owner_hash.as_slice() < h.as_slice() && h.as_slice() < next.as_slice()
        } else {
            h.as_slice() > owner_hash.as_slice() || h.as_slice() < next.as_slice()
        };
        assert!(covered);
        assert!(c.covering(&n("ns1.example.")).is_none());
    }

    #[test]
    fn deny_type_rewrites_only_that_names_bitmap() {
        let z = zone(Z);
        let c = Nsec3Chain::build(&z, 300);
        let n = |s: &str| Name::from_ascii(s).unwrap();
        let nsec3 = |r: &Record| match &r.data {
            RData::DNSSEC(DNSSECRData::NSEC3(n3)) => n3.clone(),
            _ => panic!("{r:?}"),
        };
        let apex = c.matching(&n("example.")).unwrap();
        let ns1 = c.matching(&n("ns1.example.")).unwrap();
        let mut proofs = vec![apex.clone(), ns1.clone()];
        c.deny_type(&mut proofs, &n("ns1.example."), RecordType::A);
        assert_eq!(proofs[0], apex, "other names untouched");
        let (before, after) = (nsec3(&ns1), nsec3(&proofs[1]));
        assert_eq!(proofs[1].name, ns1.name);
        assert_eq!(
            after.next_hashed_owner_name(),
            before.next_hashed_owner_name()
        );
        // ns1 had only A: nothing is left, RRSIG goes too.
        assert_eq!(after.type_bit_maps().count(), 0);
        // With other types left, only the denied one goes.
        let mut proofs = vec![apex.clone()];
        c.deny_type(&mut proofs, &n("example."), RecordType::NS);
        let types: Vec<_> = nsec3(&proofs[0]).type_bit_maps().collect();
        assert!(!types.contains(&RecordType::NS), "{types:?}");
        assert!(types.contains(&RecordType::SOA) && types.contains(&RecordType::RRSIG));
        // A type the name does not have, or a name not in the chain: no change.
        let mut proofs = vec![apex.clone()];
        c.deny_type(&mut proofs, &n("example."), RecordType::TXT);
        c.deny_type(&mut proofs, &n("nope.example."), RecordType::A);
        assert_eq!(proofs, vec![apex]);
    }

    #[test]
    fn applied_chain_equals_a_rebuilt_one() {
        let z = zone(Z);
        let c = Nsec3Chain::build(&z, 300);
        let (_, del) = parse_master(
            "$ORIGIN example.\n$TTL 3600\na.b.c A 192.0.2.2\nsub NS ns.sub\n",
            None,
        )
        .unwrap();
        let (_, add) = parse_master(
            "$ORIGIN example.\n$TTL 3600\nx.y A 192.0.2.7\nsecure TXT hi\n",
            None,
        )
        .unwrap();
        let (z2, delta) = z.apply_tracked(&del, &add).unwrap();
        let applied = c.apply(&z2, &delta.names);
        let fresh = Nsec3Chain::build(&z2, 300);
        assert_eq!(applied.records(), fresh.records());
        assert_ne!(applied.records(), c.records());
        // The old chain still describes the old zone.
        assert_eq!(c.records(), Nsec3Chain::build(&z, 300).records());
        // The apex memo follows the entries: the same proofs as the
        // rebuilt chain's, for the apex and its wildcard.
        let apex = Name::from_ascii("example.").unwrap();
        let record = |c: &Nsec3Chain, e: Option<&Arc<Entry>>| e.map(|e| c.record(e));
        for (a, f) in [
            (applied.matching_entry(&apex), fresh.matching_entry(&apex)),
            (
                applied.covering_wildcard(&apex),
                fresh.covering_wildcard(&apex),
            ),
            (
                applied.matching_wildcard(&apex),
                fresh.matching_wildcard(&apex),
            ),
        ] {
            assert_eq!(record(&applied, a), record(&fresh, f));
        }
        assert!(applied.matching_entry(&apex).is_some());
        assert!(applied.covering_wildcard(&apex).is_some());
    }
}

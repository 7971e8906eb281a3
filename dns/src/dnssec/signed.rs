//! The signed zone as transferred: every RRSIG and NSEC3 record a
//! secondary was sent, kept per zone version so that IXFR can remove
//! exactly what the secondary holds. Signatures are made online and may be
//! renewed or evicted from the cache at any time (and ECDSA signatures
//! differ at every signing), so what was sent cannot be made again later:
//! it is kept here, in persistent maps that share everything unchanged
//! between versions.

use super::export::{sign_set, ExportError};
use super::ZoneSigner;
use crate::zone::{key, Node, Zone};
use hickory_proto::rr::{Name, Record, RecordType};
use imbl::OrdMap;
use std::sync::Arc;

/// Records under one key of a view.
type Set = Arc<Vec<Record>>;

/// The RRSIGs and NSEC3 records of one zone version, as transferred.
#[derive(Debug, Clone)]
pub struct SignedView {
    /// RRSIGs by (owner key, covered type).
    sigs: OrdMap<(Box<[u8]>, u16), Set>,
    /// Each NSEC3 record with its RRSIGs, by owner key.
    nsec3: OrdMap<Box<[u8]>, Set>,
    /// (key tag, algorithm) of every signing key: another key set means
    /// every signature changes (rebuild, not follow).
    keys: Vec<(u16, u8)>,
    /// NSEC3 TTL, iterations and salt the chain was made with.
    params: (u32, u16, Vec<u8>),
}

fn authoritative(node: &Node, rtype: RecordType) -> bool {
    !node.occluded && (!node.cut || rtype == RecordType::DS)
}

fn key_set(signer: &ZoneSigner) -> Vec<(u16, u8)> {
    let mut v: Vec<(u16, u8)> = [RecordType::SOA, RecordType::DNSKEY]
        .iter()
        .flat_map(|t| signer.keys_for(*t))
        .map(|k| (k.tag(), k.algorithm().number()))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

impl SignedView {
    /// Sign all of `zone` (O(zone); signatures come from the cache when
    /// they are there).
    pub fn build(zone: &Zone, signer: &ZoneSigner, now: u32) -> Result<Self, ExportError> {
        let chain = signer
            .nsec3()
            .ok_or_else(|| ExportError::Compact(zone.origin().to_ascii()))?;
        let (ttl, iterations, salt) = chain.params();
        let mut view = SignedView {
            sigs: OrdMap::new(),
            nsec3: OrdMap::new(),
            keys: key_set(signer),
            params: (ttl, iterations, salt.to_vec()),
        };
        for (name, node) in zone.nodes() {
            view.sign_node(name, node, signer, now)?;
        }
        for r in chain.records_unkept() {
            view.put_nsec3(r, signer, now)?;
        }
        Ok(view)
    }

    /// The view of `zone`, made from `older_zone` (whose view this is)
    /// by re-signing only the names that changed and the NSEC3 records
    /// around them. Rebuilt whole when the keys or the NSEC3 parameters
    /// changed.
    pub fn follow(
        &self,
        older_zone: &Zone,
        zone: &Zone,
        signer: &ZoneSigner,
        now: u32,
    ) -> Result<Self, ExportError> {
        let chain = signer
            .nsec3()
            .ok_or_else(|| ExportError::Compact(zone.origin().to_ascii()))?;
        let (ttl, iterations, salt) = chain.params();
        if key_set(signer) != self.keys
            || (ttl, iterations, salt) != (self.params.0, self.params.1, &self.params.2[..])
        {
            return Self::build(zone, signer, now);
        }
        let mut view = self.clone();
        for (name, _, node) in zone.changes_since(older_zone) {
            let owner = key::of(name).into_boxed_slice();
            let stale: Vec<(Box<[u8]>, u16)> = view
                .sigs
                .range((owner.clone(), 0)..=(owner.clone(), u16::MAX))
                .map(|(k, _)| k.clone())
                .collect();
            for k in stale {
                view.sigs.remove(&k);
            }
            if let Some(node) = node {
                view.sign_node(name, node, signer, now)?;
            }
            if let Some(nsec3_owner) = chain.owner_for(name) {
                view.nsec3.remove(key::of(&nsec3_owner).as_slice());
            }
            for r in chain.around(name) {
                view.put_nsec3(r, signer, now)?;
            }
        }
        Ok(view)
    }

    fn sign_node(
        &mut self,
        name: &Name,
        node: &Node,
        signer: &ZoneSigner,
        now: u32,
    ) -> Result<(), ExportError> {
        let owner = key::of(name).into_boxed_slice();
        for set in &node.rrsets {
            if authoritative(node, set.rtype) {
                let sigs = sign_set(signer, &set.records, now)?;
                self.sigs
                    .insert((owner.clone(), u16::from(set.rtype)), Arc::new(sigs));
            }
        }
        Ok(())
    }

    fn put_nsec3(&mut self, r: Record, signer: &ZoneSigner, now: u32) -> Result<(), ExportError> {
        let owner = key::of(&r.name).into_boxed_slice();
        if let Some(old) = self.nsec3.get(&owner) {
            // Unchanged: keep the signature the secondaries have.
            if old.first() == Some(&r) {
                return Ok(());
            }
        }
        let mut set = vec![r];
        set.extend(sign_set(signer, &set, now)?);
        self.nsec3.insert(owner, Arc::new(set));
        Ok(())
    }

    /// The RRSIGs covering `rtype` at `name`.
    pub fn sigs(&self, name: &Name, rtype: RecordType) -> &[Record] {
        let k = (key::of(name).into_boxed_slice(), u16::from(rtype));
        self.sigs.get(&k).map_or(&[], |s| s.as_slice())
    }

    /// Every NSEC3 record, each followed by its RRSIGs.
    pub fn nsec3(&self) -> impl Iterator<Item = &Record> {
        self.nsec3.values().flat_map(|s| s.iter())
    }

    /// What changed from `older` to this view: (records gone, records new).
    pub fn changes_since(&self, older: &SignedView) -> (Vec<Record>, Vec<Record>) {
        use imbl::ordmap::DiffItem;
        let (mut gone, mut new) = (Vec::new(), Vec::new());
        let mut set_diff = |a: Option<&Set>, b: Option<&Set>| {
            let a: &[Record] = a.map_or(&[], |s| s.as_slice());
            let b: &[Record] = b.map_or(&[], |s| s.as_slice());
            gone.extend(a.iter().filter(|r| !b.contains(r)).cloned());
            new.extend(b.iter().filter(|r| !a.contains(r)).cloned());
        };
        for d in older.sigs.diff(&self.sigs) {
            match d {
                DiffItem::Add(_, s) => set_diff(None, Some(s)),
                DiffItem::Remove(_, s) => set_diff(Some(s), None),
                DiffItem::Update { old, new } => set_diff(Some(old.1), Some(new.1)),
            }
        }
        for d in older.nsec3.diff(&self.nsec3) {
            match d {
                DiffItem::Add(_, s) => set_diff(None, Some(s)),
                DiffItem::Remove(_, s) => set_diff(Some(s), None),
                DiffItem::Update { old, new } => set_diff(Some(old.1), Some(new.1)),
            }
        }
        (gone, new)
    }
}

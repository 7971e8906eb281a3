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
use imbl::{OrdMap, OrdSet};
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
    /// (earliest expiration, owner key, covered type) of every entry: what
    /// is due for renewal first. NSEC3 entries are listed with type NSEC3.
    expiring: OrdSet<(u32, Box<[u8]>, u16)>,
}

/// The earliest expiration among the RRSIGs of `set`.
fn earliest(set: &[Record]) -> Option<u32> {
    set.iter()
        .filter_map(|r| match &r.data {
            hickory_proto::rr::RData::DNSSEC(hickory_proto::dnssec::rdata::DNSSECRData::RRSIG(
                sig,
            )) => Some(sig.input().sig_expiration.get()),
            _ => None,
        })
        .min()
}

const NSEC3: u16 = 50;

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
            .nsec3(zone)
            .ok_or_else(|| ExportError::Compact(zone.origin().to_ascii()))?;
        let (ttl, iterations, salt) = chain.params();
        let mut view = SignedView {
            sigs: OrdMap::new(),
            nsec3: OrdMap::new(),
            keys: key_set(signer),
            params: (ttl, iterations, salt.to_vec()),
            expiring: OrdSet::new(),
        };
        for (name, node) in zone.nodes() {
            view.sign_node(&name, node, signer, now)?;
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
            .nsec3(zone)
            .ok_or_else(|| ExportError::Compact(zone.origin().to_ascii()))?;
        let (ttl, iterations, salt) = chain.params();
        if key_set(signer) != self.keys
            || (ttl, iterations, salt) != (self.params.0, self.params.1, &self.params.2[..])
        {
            return Self::build(zone, signer, now);
        }
        let mut view = self.clone();
        for (name, _, node) in zone.changes_since(older_zone) {
            let owner = key::of(&name).into_boxed_slice();
            let stale: Vec<(Box<[u8]>, u16)> = view
                .sigs
                .range((owner.clone(), 0)..=(owner.clone(), u16::MAX))
                .map(|(k, _)| k.clone())
                .collect();
            for k in stale {
                view.set_sigs(k, None);
            }
            if let Some(node) = node {
                view.sign_node(&name, node, signer, now)?;
            }
            if let Some(nsec3_owner) = chain.owner_for(&name) {
                view.set_nsec3(key::of(&nsec3_owner).into_boxed_slice(), None);
            }
            for r in chain.around(&name) {
                view.put_nsec3(r, signer, now)?;
            }
        }
        view.renew(zone, signer, now)?;
        Ok(view)
    }

    /// Re-sign every entry whose signatures expire within the refresh
    /// margin: secondaries get them with this version.
    fn renew(&mut self, zone: &Zone, signer: &ZoneSigner, now: u32) -> Result<(), ExportError> {
        let horizon = now.saturating_add(signer.policy.refresh_margin());
        let due: Vec<(u32, Box<[u8]>, u16)> = self
            .expiring
            .iter()
            .take_while(|(exp, _, _)| *exp <= horizon)
            .cloned()
            .collect();
        for (_, owner, rtype) in due {
            if rtype == NSEC3 {
                let record = self.nsec3.get(&owner).and_then(|s| s.first().cloned());
                self.set_nsec3(owner, None);
                if let Some(r) = record {
                    self.put_nsec3(r, signer, now)?;
                }
                continue;
            }
            let set = zone.node_by_key(&owner).and_then(|n| {
                n.rrsets
                    .iter()
                    .find(|s| u16::from(s.rtype) == rtype)
                    .map(|s| s.records(&key::name_of(&owner)))
            });
            match set {
                Some(records) => {
                    let sigs = sign_set(signer, &records, now)?;
                    self.set_sigs((owner, rtype), Some(Arc::new(sigs)));
                }
                None => self.set_sigs((owner, rtype), None),
            }
        }
        Ok(())
    }

    /// Replace (or with `None` remove) the RRSIGs under `k`, keeping the
    /// expiration index in step.
    fn set_sigs(&mut self, k: (Box<[u8]>, u16), set: Option<Set>) {
        if let Some(old) = self.sigs.get(&k) {
            if let Some(exp) = earliest(old) {
                self.expiring.remove(&(exp, k.0.clone(), k.1));
            }
        }
        match set {
            Some(set) => {
                if let Some(exp) = earliest(&set) {
                    self.expiring.insert((exp, k.0.clone(), k.1));
                }
                self.sigs.insert(k, set);
            }
            None => {
                self.sigs.remove(&k);
            }
        }
    }

    /// [`SignedView::set_sigs`] for the NSEC3 record (and RRSIGs) at `owner`.
    fn set_nsec3(&mut self, owner: Box<[u8]>, set: Option<Set>) {
        if let Some(old) = self.nsec3.get(&owner) {
            if let Some(exp) = earliest(old) {
                self.expiring.remove(&(exp, owner.clone(), NSEC3));
            }
        }
        match set {
            Some(set) => {
                if let Some(exp) = earliest(&set) {
                    self.expiring.insert((exp, owner.clone(), NSEC3));
                }
                self.nsec3.insert(owner, set);
            }
            None => {
                self.nsec3.remove(&owner);
            }
        }
    }

    /// When the first signature of this view expires (unix seconds).
    pub fn earliest_expiration(&self) -> Option<u32> {
        self.expiring.get_min().map(|(exp, _, _)| *exp)
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
                let sigs = sign_set(signer, &set.records(name), now)?;
                self.set_sigs((owner.clone(), u16::from(set.rtype)), Some(Arc::new(sigs)));
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
        self.set_nsec3(owner, Some(Arc::new(set)));
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

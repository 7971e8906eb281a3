//! The table of zones the server answers for, swapped atomically.

use crate::dnssec::ZoneSigner;
use crate::zone::{key, Zone};
use arc_swap::ArcSwap;
use hickory_proto::rr::Name;
use std::sync::Arc;

/// The zone table shared between the snapshot refresher and the server.
pub type SharedZones = Arc<ArcSwap<ZoneSet>>;

/// A zone as it is served: its data and, when it is served signed, the
/// signer built from that same data. The zone tree stays pure data; the pair
/// is what the planner reads (by reference: no refcount traffic per query).
#[derive(Debug, Clone)]
pub struct ServedZone {
    zone: Arc<Zone>,
    signer: Option<Arc<ZoneSigner>>,
}

impl ServedZone {
    /// A zone served unsigned.
    pub fn unsigned(zone: Arc<Zone>) -> Self {
        ServedZone { zone, signer: None }
    }

    /// A zone served signed by `signer`, which was built from `zone`.
    pub fn signed(zone: Arc<Zone>, signer: Arc<ZoneSigner>) -> Self {
        debug_assert_eq!(zone.origin(), signer.origin());
        ServedZone {
            zone,
            signer: Some(signer),
        }
    }

    /// The zone data.
    pub fn zone(&self) -> &Arc<Zone> {
        &self.zone
    }

    /// The signer, when the zone is served signed.
    pub fn signer(&self) -> Option<&ZoneSigner> {
        self.signer.as_deref()
    }
}

impl From<Arc<Zone>> for ServedZone {
    fn from(zone: Arc<Zone>) -> Self {
        ServedZone::unsigned(zone)
    }
}

/// All zones, keyed by the canonical key of their origin (see [`key`]):
/// finding the zone of a query name is one key encoding and a hash probe
/// per label.
///
/// The table is a persistent hash trie (`imbl::HashMap`): cloning it is
/// O(1) and the next version after one insert or removal shares all but
/// O(log n) nodes with this one, so a change to one of 100k zones does not
/// copy the table.
#[derive(Debug, Default, Clone)]
pub struct ZoneSet {
    // FxHash: keys are our own zone origins, probed with prefixes of the
    // query name; SipHash's flooding resistance buys nothing here and cost
    // a tenth of a query. `Arc` keys: path copying clones entries.
    zones: imbl::GenericHashMap<
        Arc<[u8]>,
        ServedZone,
        rustc_hash::FxBuildHasher,
        imbl::shared_ptr::DefaultSharedPtr,
    >,
}

impl ZoneSet {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add or replace the zone at its origin.
    pub fn insert(&mut self, zone: ServedZone) {
        self.zones.insert(key::of(zone.zone.origin()).into(), zone);
    }

    /// Remove the zone with this origin.
    pub fn remove(&mut self, origin: &Name) -> Option<ServedZone> {
        self.zones.remove(key::of(origin).as_slice())
    }

    /// The zone with exactly this origin.
    pub fn get(&self, origin: &Name) -> Option<&ServedZone> {
        self.zones.get(key::of(origin).as_slice())
    }

    /// The key the table holds for the zone at `origin` (to key other
    /// per-zone tables without another copy of it).
    pub fn key_of(&self, origin: &Name) -> Option<Arc<[u8]>> {
        self.zones
            .get_key_value(key::of(origin).as_slice())
            .map(|(k, _)| Arc::clone(k))
    }

    /// The closest enclosing zone of `qname` (longest suffix match).
    pub fn find(&self, qname: &Name) -> Option<&ServedZone> {
        self.find_key(&key::of(qname))
    }

    /// [`ZoneSet::find`] by the query name's canonical key.
    pub fn find_key(&self, key: &[u8]) -> Option<&ServedZone> {
        // Longest suffix first: the deepest ancestor we serve wins.
        let mut ends = [0usize; 128];
        let mut n = 0;
        for end in key::prefixes(key) {
            if let Some(slot) = ends.get_mut(n) {
                *slot = end;
                n += 1;
            }
        }
        ends[..n]
            .iter()
            .rev()
            .find_map(|&end| key.get(..end).and_then(|k| self.zones.get(k)))
    }

    /// Number of zones.
    pub fn len(&self) -> usize {
        self.zones.len()
    }

    /// Whether there are no zones.
    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }

    /// Iterate over all zones (no particular order).
    pub fn iter(&self) -> impl Iterator<Item = &ServedZone> {
        self.zones.values()
    }
}

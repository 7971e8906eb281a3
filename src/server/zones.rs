//! The table of zones the server answers for, swapped atomically.

use crate::zone::{key, Zone};
use arc_swap::ArcSwap;
use hickory_proto::rr::Name;
use std::sync::Arc;

/// The zone table shared between the snapshot refresher and the server.
pub type SharedZones = Arc<ArcSwap<ZoneSet>>;

/// All zones, keyed by the canonical key of their origin (see [`key`]):
/// finding the zone of a query name is one key encoding and a hash probe
/// per label. Cloning is cheap per zone (`Arc`).
#[derive(Debug, Default, Clone)]
pub struct ZoneSet {
    // FxHash: keys are our own zone origins, probed with prefixes of the
    // query name; SipHash's flooding resistance buys nothing here and cost
    // a tenth of a query.
    zones: rustc_hash::FxHashMap<Box<[u8]>, Arc<Zone>>,
}

impl ZoneSet {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add or replace the zone at its origin.
    pub fn insert(&mut self, zone: Arc<Zone>) {
        self.zones
            .insert(key::of(zone.origin()).into_boxed_slice(), zone);
    }

    /// Remove the zone with this origin.
    pub fn remove(&mut self, origin: &Name) -> Option<Arc<Zone>> {
        self.zones.remove(key::of(origin).as_slice())
    }

    /// The zone with exactly this origin.
    pub fn get(&self, origin: &Name) -> Option<&Arc<Zone>> {
        self.zones.get(key::of(origin).as_slice())
    }

    /// The closest enclosing zone of `qname` (longest suffix match).
    pub fn find(&self, qname: &Name) -> Option<&Arc<Zone>> {
        let key = key::of(qname);
        // Longest suffix first: the deepest ancestor we serve wins.
        let mut ends = [0usize; 128];
        let mut n = 0;
        for end in key::prefixes(&key) {
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
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Zone>> {
        self.zones.values()
    }
}

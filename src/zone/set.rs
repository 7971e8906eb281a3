//! The table of zones the server answers for, swapped atomically.

use super::Zone;
use arc_swap::ArcSwap;
use hickory_proto::rr::Name;
use std::collections::HashMap;
use std::sync::Arc;

/// The zone table shared between the snapshot refresher and the server.
pub type SharedZones = Arc<ArcSwap<ZoneSet>>;

/// All zones, keyed by lower-case origin. Cloning is cheap per zone (`Arc`).
#[derive(Debug, Default, Clone)]
pub struct ZoneSet {
    zones: HashMap<Name, Arc<Zone>>,
}

impl ZoneSet {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add or replace the zone at its origin.
    pub fn insert(&mut self, zone: Arc<Zone>) {
        self.zones.insert(zone.origin().to_lowercase(), zone);
    }

    /// Remove the zone with this origin.
    pub fn remove(&mut self, origin: &Name) -> Option<Arc<Zone>> {
        self.zones.remove(&origin.to_lowercase())
    }

    /// The zone with exactly this origin.
    pub fn get(&self, origin: &Name) -> Option<&Arc<Zone>> {
        self.zones.get(&origin.to_lowercase())
    }

    /// The closest enclosing zone of `qname` (longest suffix match).
    pub fn find(&self, qname: &Name) -> Option<&Arc<Zone>> {
        let mut name = qname.to_lowercase();
        name.set_fqdn(true);
        loop {
            if let Some(z) = self.zones.get(&name) {
                return Some(z);
            }
            if name.is_root() {
                return None;
            }
            name = name.base_name();
        }
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

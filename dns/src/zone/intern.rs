//! Record data shared between RRsets, across every zone of the process.
//!
//! A pool's children are built from one template: each names the same
//! nameservers and NSEC3 parameters, and often points its hosts at one
//! address. Equal data is kept once, whichever zone or version holds it.
//! The table only remembers data some RRset still uses: entries no zone
//! holds any more are dropped whenever the table has doubled since it was
//! last swept, so it never holds more than twice what is in use.

use super::rdataset::RDataSet;
use hickory_proto::rr::RecordType;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// An RRset's record data, as RRsets share it.
pub(super) type SharedRData = Arc<RDataSet>;

/// Sweep no earlier than at this many entries.
const MIN_SWEEP: usize = 1024;

struct Table {
    set: HashSet<SharedRData>,
    sweep_at: usize,
}

fn table() -> &'static Mutex<Table> {
    static TABLE: OnceLock<Mutex<Table>> = OnceLock::new();
    TABLE.get_or_init(|| Mutex::new(Table::new()))
}

/// Whether data of `rtype` can be equal in two places. Serials, keys and
/// digests are one zone's own: remembering them would only cost memory.
fn shareable(rtype: RecordType) -> bool {
    !(super::rdataset::zone_own(rtype)
        || matches!(
            rtype,
            RecordType::RRSIG | RecordType::NSEC | RecordType::NSEC3
        ))
}

/// Replace `data` by the equal data already in use elsewhere, or remember
/// it for the next equal RRset.
pub(super) fn share(rtype: RecordType, data: &mut SharedRData) {
    if !shareable(rtype) {
        return;
    }
    // A panic elsewhere while the lock was held leaves a consistent set
    // (every operation on it is a single call).
    table()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .share(data);
}

impl Table {
    fn new() -> Self {
        Table {
            set: HashSet::new(),
            sweep_at: MIN_SWEEP,
        }
    }

    fn share(&mut self, data: &mut SharedRData) {
        if let Some(known) = self.set.get(data) {
            if !Arc::ptr_eq(known, data) {
                *data = Arc::clone(known);
            }
            return;
        }
        self.set.insert(Arc::clone(data));
        if self.set.len() >= self.sweep_at {
            // Only the table holds these (its lock keeps anyone from
            // taking one meanwhile).
            self.set.retain(|d| Arc::strong_count(d) > 1);
            self.sweep_at = (self.set.len() * 2).max(MIN_SWEEP);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::RData;

    #[test]
    fn equal_data_is_shared_and_what_nobody_holds_is_swept() {
        let a1 = || Arc::new(RDataSet::Decoded(vec![RData::A(A::new(198, 51, 100, 1))]));
        let (mut a, mut b): (SharedRData, SharedRData) = (a1(), a1());
        share(RecordType::A, &mut a);
        share(RecordType::A, &mut b);
        assert!(Arc::ptr_eq(&a, &b));
        // Zone-own types are left alone.
        let (mut c, mut d): (SharedRData, SharedRData) = (a1(), a1());
        share(RecordType::DS, &mut c);
        share(RecordType::DS, &mut d);
        assert!(!Arc::ptr_eq(&c, &d));

        // Data dropped by every holder goes at the next sweep: the table
        // stays within twice what is in use.
        let mut t = Table::new();
        let mut kept: SharedRData = a1();
        t.share(&mut kept);
        for i in 0..(10 * MIN_SWEEP as u32) {
            let mut x: SharedRData = Arc::new(RDataSet::Decoded(vec![RData::A(A::from(
                std::net::Ipv4Addr::from(0x0a00_0000 + i),
            ))]));
            t.share(&mut x);
            assert!(t.set.len() < 2 * MIN_SWEEP, "{} entries", t.set.len());
        }
        assert!(t.set.contains(&kept), "data still in use stays");
        let mut again: SharedRData = a1();
        t.share(&mut again);
        assert!(Arc::ptr_eq(&again, &kept));
    }
}

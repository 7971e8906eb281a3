//! Keeps the DNS server's in-memory zone table in step with the store by
//! following the change journal. Works across replicas: every `pdm serve`
//! on the same database follows the same journal.

use crate::store::{Store, StoreError};
use crate::zone::{SharedZones, Zone, ZoneSet};
use hickory_proto::rr::Name;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the journal is polled. Commit-to-answer latency is at most this
/// plus one zone load.
pub const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// A journal id gap (a transaction that took an id but has not committed yet,
/// or rolled back) is waited for this long before it is skipped.
const GAP_PATIENCE: Duration = Duration::from_secs(10);

/// Build a zone from its stored rows. Bad rows are logged and skipped so one
/// corrupt record cannot take a whole zone (or the server) down.
pub async fn load_zone(store: &Store, name: &str) -> Result<Option<Zone>, StoreError> {
    let Some(rows) = store.load_zone(name).await? else {
        return Ok(None);
    };
    let origin = Name::from_ascii(name).map_err(|e| StoreError::Corrupt(format!("zone name {name}: {e}")))?;
    let mut records = Vec::with_capacity(rows.len());
    for r in &rows {
        match r.to_record() {
            Ok(rec) => records.push(rec),
            Err(e) => tracing::error!(zone = name, error = %e, "skipping unreadable record"),
        }
    }
    match Zone::new(origin, records) {
        Ok(z) => Ok(Some(z)),
        Err(e) => {
            tracing::error!(zone = name, error = %e, "zone not served");
            Ok(None)
        }
    }
}

/// Follows the journal and swaps new zone tables in.
pub struct Refresher {
    store: Store,
    zones: SharedZones,
    /// Every id ≤ watermark has been applied.
    watermark: i64,
    /// Ids above the watermark already applied, waiting for the gap below to close.
    seen: BTreeSet<i64>,
    /// When each missing id was first noticed.
    gaps: HashMap<i64, Instant>,
}

impl Refresher {
    /// Load every zone and position at the journal head.
    pub async fn start(store: Store, zones: SharedZones) -> Result<Self, StoreError> {
        let head = store.journal_head().await?;
        let mut set = ZoneSet::new();
        for name in store.zone_names().await? {
            if let Some(z) = load_zone(&store, &name).await? {
                set.insert(Arc::new(z));
            }
        }
        tracing::info!(zones = set.len(), "zones loaded");
        zones.store(Arc::new(set));
        Ok(Refresher {
            store,
            zones,
            watermark: head,
            seen: BTreeSet::new(),
            gaps: HashMap::new(),
        })
    }

    /// Apply journal entries written since the last call. Returns how many zones changed.
    pub async fn poll(&mut self) -> Result<usize, StoreError> {
        let entries = self.store.journal_after(self.watermark, 10_000).await?;
        let mut changed: BTreeSet<String> = BTreeSet::new();
        for e in &entries {
            if self.seen.insert(e.id) {
                changed.insert(e.zone.clone());
            }
        }
        if !changed.is_empty() {
            let mut set = (**self.zones.load()).clone();
            for name in &changed {
                let origin = match Name::from_ascii(name) {
                    Ok(n) => n,
                    Err(_) => continue,
                };
                match load_zone(&self.store, name).await? {
                    Some(z) => set.insert(Arc::new(z)),
                    None => {
                        set.remove(&origin);
                    }
                }
            }
            self.zones.store(Arc::new(set));
        }
        self.advance();
        Ok(changed.len())
    }

    /// Move the watermark over contiguous ids; skip gaps that stay open too long.
    fn advance(&mut self) {
        let now = Instant::now();
        while let Some(&next) = self.seen.iter().next() {
            if next == self.watermark + 1 {
                self.seen.remove(&next);
                self.watermark = next;
                continue;
            }
            let missing = self.watermark + 1;
            let first = *self.gaps.entry(missing).or_insert(now);
            if now.duration_since(first) > GAP_PATIENCE {
                self.gaps.remove(&missing);
                self.watermark = missing;
                continue;
            }
            break;
        }
        let wm = self.watermark;
        self.gaps.retain(|id, _| *id > wm);
    }

    /// Poll forever.
    pub async fn run(mut self) {
        loop {
            if let Err(e) = self.poll().await {
                tracing::warn!(error = %e, "journal poll failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

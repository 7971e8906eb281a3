//! Keeps the DNS server's in-memory zone table in step with the store by
//! following the change journal. Works across replicas: every `pdm serve`
//! on the same database follows the same journal.

use crate::config::LuaSettings;
use crate::keyring::Keyring;
use crate::lua::LuaEngine;
use crate::server::{ServedZone, SharedZones, ZoneSet};
use crate::store::journal::{ChangeOp, JournalEntry, ZoneChange};
use crate::store::keys::KeyRow;
use crate::store::zones::StoredRecord;
use crate::store::{Store, StoreError};
use crate::zone::{Zone, ZoneOptions};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch, Notify};

/// How often the journal is polled. Commit-to-answer latency is at most this
/// plus one zone load.
pub const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// How often a replica announces what it serves.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);

/// A replica silent this long is taken for dead: the change status no
/// longer waits for it.
pub const REPLICA_TIMEOUT: Duration = Duration::from_secs(5);

/// A journal id gap (a transaction that took an id but has not committed yet,
/// or rolled back) is waited for this long before it is skipped.
const GAP_PATIENCE: Duration = Duration::from_secs(10);

/// Why a zone could not be loaded for serving.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The zone is signed but its keys cannot be used (wrong secret key...).
    #[error(transparent)]
    Keys(#[from] crate::keyring::KeyringError),
}

/// Build a zone from its stored rows and, when it is signed, its signer.
/// Bad rows are logged and skipped so one corrupt record cannot take a whole
/// zone (or the server) down; unusable keys are an error (serving a signed
/// zone unsigned would make it bogus).
pub async fn load_zone(
    store: &Store,
    keyring: Option<&Keyring>,
    name: &str,
) -> Result<Option<ServedZone>, LoadError> {
    load_zone_with(store, keyring, name, ZoneOptions::default()).await
}

/// [`load_zone`] with explicit zone options (the LUA switch).
pub async fn load_zone_with(
    store: &Store,
    keyring: Option<&Keyring>,
    name: &str,
    options: ZoneOptions,
) -> Result<Option<ServedZone>, LoadError> {
    let Some(z) = store.load_zone_whole(name).await? else {
        return Ok(None);
    };
    build_zone(
        keyring,
        name,
        &z.records,
        z.dnssec.as_deref(),
        &z.keys,
        options,
    )
}

/// A zone as served, built from what the store holds for it: the one path
/// of every whole load, single (the repair path) or in bulk (start-up).
fn build_zone(
    keyring: Option<&Keyring>,
    name: &str,
    rows: &[StoredRecord],
    mode: Option<&str>,
    keys: &[KeyRow],
    options: ZoneOptions,
) -> Result<Option<ServedZone>, LoadError> {
    let origin = Name::from_ascii(name)
        .map_err(|e| StoreError::Corrupt(format!("zone name {name}: {e}")))?;
    let mut records = Vec::with_capacity(rows.len());
    for r in rows {
        match r.to_record() {
            Ok(rec) => records.push(rec),
            Err(e) => tracing::error!(zone = name, error = %e, "skipping unreadable record"),
        }
    }
    let zone = match Zone::with_options(origin, records, options) {
        Ok(z) => z,
        Err(e) => {
            tracing::error!(zone = name, error = %e, "zone not served");
            return Ok(None);
        }
    };
    if let (Some(keyring), Some(_)) = (keyring, mode) {
        if let Some(signer) = keyring.signer_for(&zone, mode, keys)? {
            return Ok(Some(ServedZone::signed(Arc::new(zone), Arc::new(signer))));
        }
    }
    Ok(Some(ServedZone::unsigned(Arc::new(zone))))
}

/// Zones read per bulk query at start-up (by id range).
const BULK_ZONES: i64 = 2_000;

/// Every zone in the store, read in bulk (three queries per
/// [`BULK_ZONES`]) and built on the blocking pool while the next batch is
/// read, so the database and both halves of the work overlap.
async fn load_all(
    store: &Store,
    keyring: Option<&Arc<Keyring>>,
    lua: &LuaHooks,
    batch: i64,
) -> Result<ZoneSet, LoadError> {
    type Built = Result<Vec<ServedZone>, LoadError>;
    let last = store.max_zone_id().await?;
    let mut set = ZoneSet::new();
    let mut building: Option<tokio::task::JoinHandle<Built>> = None;
    let add = |set: &mut ZoneSet, built: Vec<ServedZone>| {
        for z in built {
            lua.prime(z.zone());
            set.insert(z);
        }
    };
    let mut from = 1;
    while from <= last {
        let zones = store.load_zones(from..=from + batch - 1).await?;
        from += batch;
        let keyring = keyring.cloned();
        let settings = lua.settings.clone();
        let next = tokio::task::spawn_blocking(move || -> Built {
            let mut out = Vec::with_capacity(zones.len());
            for z in &zones {
                let options = ZoneOptions {
                    lua_records: settings.enabled_for(&z.name),
                };
                let mode = z.dnssec.as_deref();
                if let Some(served) = build_zone(
                    keyring.as_deref(),
                    &z.name,
                    &z.records,
                    mode,
                    &z.keys,
                    options,
                )? {
                    out.push(served);
                }
            }
            Ok(out)
        });
        if let Some(previous) = building.replace(next) {
            add(&mut set, joined(previous).await?);
        }
    }
    if let Some(previous) = building {
        add(&mut set, joined(previous).await?);
    }
    Ok(set)
}

/// The result of a build task; a panicked task is a corrupt-store error
/// rather than a second panic.
async fn joined(
    task: tokio::task::JoinHandle<Result<Vec<ServedZone>, LoadError>>,
) -> Result<Vec<ServedZone>, LoadError> {
    task.await
        .map_err(|e| StoreError::Corrupt(format!("zone build task failed: {e}")))?
}

/// The next version of `current` after `change`, made from the change's
/// diff (see [`Zone::apply_tracked`]) instead of a reload: O(diff) instead
/// of O(zone). `None` when the diff cannot be applied that way (records
/// that do not read, a removed record the zone lacks, key RRsets in the
/// diff, a diff as big as the zone, a signer that must be rebuilt): then
/// the caller loads the zone whole.
fn apply_change(current: &ServedZone, change: &ZoneChange) -> Option<ServedZone> {
    let zone = current.zone();
    if change.removed.len() + change.added.len() > zone.node_count() {
        return None;
    }
    let read = |rows: &[StoredRecord]| -> Option<Vec<Record>> {
        rows.iter().map(|r| r.to_record().ok()).collect()
    };
    let mut removed = read(&change.removed)?;
    let mut added = read(&change.added)?;
    // The diff must start from this version: everything it removes is here.
    let present = |r: &Record| {
        zone.node(&r.name)
            .and_then(|n| n.rrset(r.record_type()))
            .is_some_and(|s| s.rdata().contains(&r.data))
    };
    if !removed.iter().all(present) {
        return None;
    }
    // A commit rewrites the SOA serial in place without journaling it.
    let soa_in_diff = added.iter().any(|r| r.record_type() == RecordType::SOA);
    if !soa_in_diff {
        let old = zone.soa();
        let mut new = old.clone();
        if let RData::SOA(s) = &mut new.data {
            s.serial = change.serial;
        }
        removed.push(old);
        added.push(new);
    }
    let (next, delta) = match zone.apply_tracked(&removed, &added) {
        Ok(applied) => applied,
        Err(e) => {
            tracing::debug!(zone = %zone.origin(), error = %e, "diff not applicable; reloading");
            return None;
        }
    };
    if delta.keys_changed || next.serial() != change.serial {
        return None;
    }
    let next = Arc::new(next);
    match current.signer() {
        None => Some(ServedZone::unsigned(next)),
        Some(signer) => {
            let signer = signer.apply(&next, &delta)?;
            Some(ServedZone::signed(next, Arc::new(signer)))
        }
    }
}

/// Which journal ids have been applied. Postgres sequence values can commit
/// out of order, so "the highest id seen" is not enough: the watermark only
/// moves over contiguous ids, and a gap is given up on after `GAP_PATIENCE`.
#[derive(Debug, Default)]
struct Watermark {
    /// Every id ≤ this has been applied (or given up on).
    low: i64,
    /// Ids above `low` already applied.
    seen: BTreeSet<i64>,
    /// When each missing id was first noticed.
    gaps: HashMap<i64, Instant>,
}

impl Watermark {
    /// Record `id`; true when it was not applied before.
    fn see(&mut self, id: i64) -> bool {
        id > self.low && self.seen.insert(id)
    }

    /// The first id from `from` on that has not been applied.
    fn next_unseen(&self, from: i64) -> i64 {
        let mut next = from;
        while self.seen.contains(&next) {
            next += 1;
        }
        next
    }

    /// Move `low` over contiguous ids; skip gaps open longer than the patience.
    fn advance(&mut self, now: Instant) {
        while let Some(&next) = self.seen.iter().next() {
            if next == self.low + 1 {
                self.seen.remove(&next);
                self.low = next;
                continue;
            }
            let missing = self.low + 1;
            let first = *self.gaps.entry(missing).or_insert(now);
            if now.duration_since(first) > GAP_PATIENCE {
                self.gaps.remove(&missing);
                self.low = missing;
                continue;
            }
            break;
        }
        let low = self.low;
        self.gaps.retain(|id, _| *id > low);
    }
}

/// Which journal entries the zone table serves, as published after each poll.
#[derive(Debug, Clone, Default)]
struct Applied {
    /// Every entry ≤ this is served (or was given up on as a gap).
    low: i64,
    /// Entries above `low` served already.
    seen: Arc<BTreeSet<i64>>,
}

impl Applied {
    fn covers(&self, id: i64) -> bool {
        id <= self.low || self.seen.contains(&id)
    }
}

/// What this node serves, for the writers: a cheap handle that waits until
/// the zone table this node answers from has applied a change. Every write
/// that answers 2xx waits on it first, so the node that took a write already
/// serves it ("read your writes").
#[derive(Debug, Clone)]
pub struct Served {
    store: Store,
    applied: watch::Receiver<Applied>,
    nudge: Arc<Notify>,
    /// The highest journal id a writer has waited for.
    wanted: Arc<AtomicI64>,
}

impl Served {
    /// Waits until this node serves every change committed before the call;
    /// `false` when `timeout` passed first.
    /// Returns the newest journal id at the call (the change a write made,
    /// or a later one) and whether it is served.
    pub async fn caught_up(&self, timeout: Duration) -> Result<(i64, bool), StoreError> {
        let head = self.store.journal_head().await?;
        Ok((head, self.serves(head, timeout).await))
    }

    /// Every journal entry up to this id is served here.
    pub fn applied_through(&self) -> i64 {
        self.applied.borrow().low
    }

    /// Announces this replica (`id`) and what it serves every
    /// [`HEARTBEAT_INTERVAL`] until `stop` fires, then removes its row (and
    /// rows of replicas long dead).
    pub async fn announce(self, id: String, stop: Arc<Notify>) {
        let started = crate::store::now_ms();
        let mut tick = tokio::time::interval(HEARTBEAT_INTERVAL);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.notified() => break,
            }
            if let Err(e) = self
                .store
                .heartbeat(&id, self.applied_through(), started)
                .await
            {
                tracing::warn!(error = %e, "replica heartbeat failed");
            }
        }
        let long_dead = crate::store::now_ms() - 60 * 60 * 1000;
        if let Err(e) = self.store.remove_replica(&id, long_dead).await {
            tracing::warn!(error = %e, "could not remove this replica's row");
        }
    }

    /// Removes journal entries past `policy` every `compact_interval_secs`,
    /// never one that a live replica does not serve yet (a replica behind
    /// would otherwise miss a change). Every replica may run it: deleting
    /// is idempotent.
    pub async fn compact_journal(self, policy: crate::config::JournalConfig) {
        if policy.compact_interval_secs == 0 {
            return;
        }
        let mut tick = tokio::time::interval(Duration::from_secs(policy.compact_interval_secs));
        tick.tick().await;
        loop {
            tick.tick().await;
            let now = crate::store::now_ms();
            let live = match self
                .store
                .live_replicas(now - REPLICA_TIMEOUT.as_millis() as i64)
                .await
            {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "journal compaction: cannot read the replicas");
                    continue;
                }
            };
            let Some(served_through) = live.iter().map(|r| r.applied_through).min() else {
                continue;
            };
            let keep_since = now
                - i64::try_from(policy.keep_days.saturating_mul(86_400_000))
                    .unwrap_or(i64::MAX / 2);
            let mut removed = 0;
            loop {
                match self
                    .store
                    .compact_journal(policy.keep_changes, keep_since, served_through, 10_000)
                    .await
                {
                    Ok(0) => break,
                    Ok(n) => removed += n,
                    Err(e) => {
                        tracing::warn!(error = %e, "journal compaction failed; retrying later");
                        break;
                    }
                }
            }
            if removed > 0 {
                tracing::info!(removed, served_through, "journal compacted");
            }
        }
    }

    /// Waits until journal entry `id` is served (at most `timeout`);
    /// `false` when `timeout` passed first.
    pub async fn serves(&self, id: i64, timeout: Duration) -> bool {
        if self.applied.borrow().covers(id) {
            return true;
        }
        // Poll now instead of at the next tick, and read the journal unless
        // the entries handed over in-process reach this far.
        self.wanted.fetch_max(id, Ordering::Relaxed);
        self.nudge.notify_one();
        let mut rx = self.applied.clone();
        let served = tokio::time::timeout(timeout, async {
            rx.wait_for(|a| a.covers(id)).await.is_ok()
        })
        .await;
        served.unwrap_or(false)
    }
}

/// How the refresher treats LUA records: which zones serve them, and the
/// engine whose health checks are primed when a zone is (re)loaded.
#[derive(Debug, Clone, Default)]
pub struct LuaHooks {
    /// The per-zone switch.
    pub settings: LuaSettings,
    /// The engine to prime (none: no priming).
    pub engine: Option<LuaEngine>,
}

impl LuaHooks {
    fn options(&self, zone: &str) -> ZoneOptions {
        ZoneOptions {
            lua_records: self.settings.enabled_for(zone),
        }
    }

    /// Evaluate every LUA program of `zone` once, off the async threads, so
    /// its health checks are registered (and started) at load.
    fn prime(&self, zone: &Arc<Zone>) {
        let Some(engine) = self.engine.clone() else {
            return;
        };
        if !zone.has_dynamic() {
            return;
        }
        let zone = Arc::clone(zone);
        tokio::task::spawn_blocking(move || {
            let (ok, failed) = prime_zone(&engine, &zone);
            tracing::debug!(zone = %zone.origin(), ok, failed, "LUA records primed");
        });
    }
}

/// Prime every LUA program of `zone` (see [`LuaEngine::prime`]); returns
/// how many succeeded and failed. Failures are logged, never fatal.
pub fn prime_zone(engine: &LuaEngine, zone: &Arc<Zone>) -> (usize, usize) {
    let owner = Arc::clone(zone);
    let include = move |n: &Name| owner.lua_includes(n);
    let (mut ok, mut failed) = (0, 0);
    for (name, program) in zone.lua_programs() {
        match engine.prime(program, &name, zone.origin(), Some(&include)) {
            Ok(()) => ok += 1,
            Err(e) => {
                failed += 1;
                tracing::debug!(record = %name, error = %e, "priming LUA record failed");
            }
        }
    }
    (ok, failed)
}

/// Follows the journal and swaps new zone tables in.
pub struct Refresher {
    store: Store,
    keyring: Option<Arc<Keyring>>,
    zones: SharedZones,
    mark: Watermark,
    lua: LuaHooks,
    /// Published after each poll for [`Served`] handles.
    applied: watch::Sender<Applied>,
    /// Rung by a writer that waits: poll now.
    nudge: Arc<Notify>,
    /// Per zone served, the serial of the last journal entry followed: a
    /// table version with that serial is exactly the state the next
    /// entry's diff starts from. Keyed by the zone table's own keys (one
    /// allocation per zone, not two: 100k zones).
    followed: HashMap<Arc<[u8]>, u32>,
    /// Zones loaded whole since start (after the initial load).
    full_loads: u64,
    /// Told the name of every zone that changed, after the swap (NOTIFY,
    /// the catalog).
    changes: Vec<tokio::sync::mpsc::UnboundedSender<String>>,
    /// Entries this process committed, handed over without a read.
    local: broadcast::Receiver<Arc<JournalEntry>>,
    /// When the journal was last read: it is read at least every
    /// `read_every` (other replicas, and writes that hand nothing over).
    last_read: Instant,
    /// [`POLL_INTERVAL`], but for tests.
    read_every: Duration,
    /// Polls that read the journal (the others had entries handed over).
    journal_reads: u64,
    /// See [`Served::wanted`].
    wanted: Arc<AtomicI64>,
}

impl Refresher {
    /// Load every zone and position at the journal head.
    /// Fails when a signed zone's keys cannot be opened, naming the zone.
    pub async fn start(
        store: Store,
        keyring: Option<Arc<Keyring>>,
        zones: SharedZones,
    ) -> Result<Self, LoadError> {
        Self::start_with(store, keyring, zones, LuaHooks::default()).await
    }

    /// [`Refresher::start`] with LUA settings and the engine to prime.
    pub async fn start_with(
        store: Store,
        keyring: Option<Arc<Keyring>>,
        zones: SharedZones,
        lua: LuaHooks,
    ) -> Result<Self, LoadError> {
        // Listening before the head is read: an entry committed after it is
        // either handed over or read, never missed.
        let local = store.committed_here();
        let head = store.journal_head().await?;
        let started = Instant::now();
        let set = load_all(&store, keyring.as_ref(), &lua, BULK_ZONES).await?;
        tracing::info!(
            zones = set.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "zones loaded"
        );
        // Each zone was read whole in one statement, SOA included, so the
        // version served is exactly the state at its serial: the journal's
        // next entry for it applies as a diff. (Without this, the first
        // change after a start reloaded the zone: 3.5 s for a pool of 100k.)
        let followed = set
            .iter()
            .filter_map(|z| Some((set.key_of(z.zone().origin())?, z.zone().serial())))
            .collect();
        zones.store(Arc::new(set));
        Ok(Refresher {
            store,
            keyring,
            zones,
            mark: Watermark {
                low: head,
                ..Watermark::default()
            },
            lua,
            applied: watch::Sender::new(Applied {
                low: head,
                seen: Arc::default(),
            }),
            nudge: Arc::new(Notify::new()),
            followed,
            full_loads: 0,
            changes: Vec::new(),
            local,
            last_read: Instant::now(),
            read_every: POLL_INTERVAL,
            journal_reads: 0,
            wanted: Arc::default(),
        })
    }

    /// The entries committed in this process since the last poll, when
    /// they alone bring the table up to date: they follow on from the
    /// watermark without a gap and reach every id a writer waits for, and
    /// the journal was read within `read_every`. `None`: read the journal
    /// (which holds them too).
    fn handed_over(&mut self) -> Option<Vec<Arc<JournalEntry>>> {
        let mut got = Vec::new();
        let mut missed = false;
        loop {
            match self.local.try_recv() {
                Ok(e) => got.push(e),
                Err(broadcast::error::TryRecvError::Lagged(_)) => missed = true,
                Err(_) => break,
            }
        }
        if missed || got.is_empty() || self.last_read.elapsed() >= self.read_every {
            return None;
        }
        got.retain(|e| e.id > self.mark.low && !self.mark.seen.contains(&e.id));
        got.sort_by_key(|e| e.id);
        let mut next = self.mark.low + 1;
        for e in &got {
            if e.id != self.mark.next_unseen(next) {
                return None;
            }
            next = e.id + 1;
        }
        (self.wanted.load(Ordering::Relaxed) < self.mark.next_unseen(next)).then_some(got)
    }

    /// Apply journal entries written since the last call. Returns how many zones changed.
    pub async fn poll(&mut self) -> Result<usize, StoreError> {
        let handed = self.handed_over();
        let read;
        let entries: Vec<&JournalEntry> = match &handed {
            Some(handed) => handed.iter().map(|e| &**e).collect(),
            None => {
                read = self.store.journal_after(self.mark.low, 10_000).await?;
                self.last_read = Instant::now();
                self.journal_reads += 1;
                read.iter().collect()
            }
        };
        let mut changed: BTreeMap<String, Vec<&ZoneChange>> = BTreeMap::new();
        for e in entries {
            if self.mark.see(e.id) {
                changed
                    .entry(e.change.zone.clone())
                    .or_default()
                    .push(&e.change);
            }
        }
        if !changed.is_empty() {
            let mut set = (**self.zones.load()).clone();
            for (name, changes) in &changed {
                let origin = match Name::from_ascii(name) {
                    Ok(n) => n,
                    Err(_) => continue,
                };
                if let Some(z) = self.follow(&set, name, &origin, changes) {
                    self.lua.prime(z.zone());
                    set.insert(z);
                } else {
                    let options = self.lua.options(name);
                    self.full_loads += 1;
                    match load_zone_with(&self.store, self.keyring.as_deref(), name, options).await
                    {
                        Ok(Some(z)) => {
                            self.lua.prime(z.zone());
                            set.insert(z);
                        }
                        Ok(None) => {
                            set.remove(&origin);
                        }
                        Err(LoadError::Store(e)) => return Err(e),
                        // Keep serving the previous version rather than an
                        // unsigned (bogus) one.
                        Err(LoadError::Keys(e)) => {
                            tracing::error!(zone = %name, error = %e, "zone keys unusable; keeping previous version");
                        }
                    }
                }
                // A zone no longer served is no longer followed (a pool's
                // released children would otherwise stay here for good).
                match (set.key_of(&origin), changes.last()) {
                    (Some(key), Some(last)) => {
                        self.followed.insert(key, last.serial);
                    }
                    _ => {
                        self.followed
                            .remove(crate::zone::key::of(&origin).as_slice());
                    }
                }
            }
            self.zones.store(Arc::new(set));
            for tx in &self.changes {
                for name in changed.keys() {
                    let _ = tx.send(name.clone());
                }
            }
        }
        self.mark.advance(Instant::now());
        self.applied.send_replace(Applied {
            low: self.mark.low,
            seen: Arc::new(self.mark.seen.clone()),
        });
        Ok(changed.len())
    }

    /// The zone `name` moved forward by `changes` (its new journal entries,
    /// in order) from the version in `set`, diff by diff; `None` when
    /// anything does not line up and the zone must be loaded whole (the
    /// repair path): no version in the table, a Create or Delete, a LUA
    /// switch that changed, an entry whose predecessor is not the version
    /// served (a gap), or a diff [`apply_change`] refuses.
    ///
    /// Entries of one zone are journaled in serial order (a commit holds
    /// the zone row's lock while it journals), so the entry that follows
    /// the one last followed starts from the version with that serial. An
    /// entry at or below the served serial is in it already (a whole load
    /// read it before the journal showed it).
    fn follow(
        &self,
        set: &ZoneSet,
        name: &str,
        origin: &Name,
        changes: &[&ZoneChange],
    ) -> Option<ServedZone> {
        let mut served = set.get(origin)?.clone();
        if served.zone().options() != self.lua.options(name) {
            return None;
        }
        let mut previous = self
            .followed
            .get(crate::zone::key::of(origin).as_slice())
            .copied();
        for change in changes {
            if change.op != ChangeOp::Update {
                return None;
            }
            let serial = served.zone().serial();
            if change.serial > serial {
                if previous != Some(serial) {
                    return None;
                }
                served = apply_change(&served, change)?;
            }
            previous = Some(change.serial);
        }
        Some(served)
    }

    /// Also send the name of each zone that changed to `tx`, once the
    /// table that serves the change is in place (the NOTIFY sender and the
    /// catalog follow it).
    pub fn on_change(&mut self, tx: tokio::sync::mpsc::UnboundedSender<String>) {
        self.changes.push(tx);
    }

    /// How many times a zone was loaded whole to follow the journal (the
    /// rest were applied as diffs).
    pub fn full_loads(&self) -> u64 {
        self.full_loads
    }

    /// How many polls read the journal (the others applied entries this
    /// process handed over).
    pub fn journal_reads(&self) -> u64 {
        self.journal_reads
    }

    /// A handle for writers to wait until this node serves their change.
    pub fn served(&self) -> Served {
        Served {
            store: self.store.clone(),
            applied: self.applied.subscribe(),
            nudge: Arc::clone(&self.nudge),
            wanted: Arc::clone(&self.wanted),
        }
    }

    /// Poll forever.
    pub async fn run(mut self) {
        loop {
            if let Err(e) = self.poll().await {
                tracing::warn!(error = %e, "journal poll failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let nudge = Arc::clone(&self.nudge);
            tokio::select! {
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
                _ = nudge.notified() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::temp_store;

    #[test]
    fn watermark_waits_for_gaps_then_skips_them() {
        let t0 = Instant::now();
        let mut m = Watermark::default();
        assert!(m.see(1));
        assert!(m.see(3));
        m.advance(t0);
        assert_eq!(m.low, 1, "2 is missing: stay at 1");
        assert!(!m.see(3), "3 already applied");
        m.advance(t0 + Duration::from_secs(1));
        assert_eq!(m.low, 1);
        assert!(m.see(2), "late commit of 2 is applied");
        m.advance(t0 + Duration::from_secs(2));
        assert_eq!(m.low, 3);

        assert!(m.see(5));
        m.advance(t0 + Duration::from_secs(3));
        assert_eq!(m.low, 3);
        m.advance(t0 + Duration::from_secs(3) + GAP_PATIENCE + Duration::from_secs(1));
        assert_eq!(m.low, 5, "a gap that never fills is skipped");
        assert!(
            !m.see(4),
            "ids at or below the watermark are not re-applied"
        );
    }

    /// Start-up reads zones in id-range batches; what it builds equals a
    /// zone-by-zone load, across batch edges and id gaps (deleted zones).
    #[tokio::test]
    async fn bulk_load_equals_zone_by_zone_load() {
        use crate::zone::file::parse_master;
        let (_dir, store) = temp_store().await;
        let mut names = Vec::new();
        for i in 0..11 {
            let name = format!("z{i}.test.");
            let text = format!(
                "$ORIGIN {name}\n$TTL 300\n@ SOA ns1 hm 1 7200 3600 1209600 300\n@ NS ns1\n\
                 @ NS ns2\nns1 A 192.0.2.1\nwww A 192.0.2.{i}\nwww A 192.0.2.200\n\
                 www TXT \"z{i}\"\n* MX 10 mail\nmail AAAA 2001:db8::{i}\n"
            );
            let (_, recs) = parse_master(&text, None).unwrap();
            let rows: Vec<StoredRecord> = recs.iter().map(StoredRecord::from_record).collect();
            store.import_zone(&name, &rows, 0).await.unwrap();
            names.push(name);
        }
        for gone in ["z3.test.", "z4.test."] {
            let mut conn = store.pool().acquire().await.unwrap();
            crate::store::zones::delete_zone(&mut conn, gone, "test")
                .await
                .unwrap();
            names.retain(|n| n != gone);
        }
        for batch in [1, 3, 100] {
            let set = load_all(&store, None, &LuaHooks::default(), batch)
                .await
                .unwrap();
            assert_eq!(set.len(), names.len(), "batch {batch}");
            for name in &names {
                let origin = Name::from_ascii(name).unwrap();
                let bulk = set.get(&origin).unwrap().zone().records();
                let one = load_zone(&store, None, name)
                    .await
                    .unwrap()
                    .unwrap()
                    .zone()
                    .records();
                assert_eq!(bulk, one, "{name}, batch {batch}");
            }
        }
    }

    /// A pool zone followed through commits: each served version equals a
    /// whole load, and none is loaded whole (the start's load is followed).
    #[tokio::test]
    async fn commits_are_applied_as_diffs_equal_to_whole_loads() {
        use crate::store::zones::{get_zone, set_rrsets};
        use crate::zone::file::parse_master;
        let (_dir, store) = temp_store().await;
        let rows = |text: &str| -> Vec<StoredRecord> {
            let text = format!("$ORIGIN pool.test.\n$TTL 300\n{text}");
            let (_, recs) = parse_master(&text, None).unwrap();
            recs.iter().map(StoredRecord::from_record).collect()
        };
        store
            .import_zone(
                "pool.test.",
                &rows("@ SOA ns1 hm 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n"),
                0,
            )
            .await
            .unwrap();
        let zones: SharedZones = Default::default();
        let mut refresher = Refresher::start(store.clone(), None, zones.clone())
            .await
            .unwrap();
        let origin = Name::from_ascii("pool.test.").unwrap();
        for i in 0..30 {
            let mut conn = store.pool().acquire().await.unwrap();
            let zone = get_zone(&mut conn, "pool.test.").await.unwrap().unwrap();
            let (owner, set) = if i % 5 == 4 {
                // Take an earlier delegation away again.
                (format!("c{}.pool.test.", i - 2), Vec::new())
            } else {
                let owner = format!("c{i}.pool.test.");
                let text = format!("c{i} NS ns.c{i}\nc{i} DS 1{i} 13 2 2bb183af5f22588179a53b0a98631fad1a292118a7d2d2a6b7d6a2c7d0b3e8f1\n");
                (owner, rows(&text))
            };
            set_rrsets(&mut conn, &zone, &owner, &["NS", "DS"], &set, "test")
                .await
                .unwrap();
            drop(conn);
            refresher.poll().await.unwrap();
            let served = zones.load().get(&origin).unwrap().zone().records();
            let whole = load_zone(&store, None, "pool.test.")
                .await
                .unwrap()
                .unwrap()
                .zone()
                .records();
            assert_eq!(served, whole, "after change {i}");
        }
        assert_eq!(refresher.full_loads(), 0);
    }

    /// An entry this process commits and hands over is applied without
    /// reading the journal; one that does not follow on from what is served
    /// (an entry before it was not handed over: another replica's) sends
    /// the follower to the journal, which has both; so does a writer
    /// waiting for an entry beyond those handed over.
    #[tokio::test]
    async fn entries_committed_here_are_applied_without_a_read() {
        use crate::store::rrsets::{lock_and_read, write_rrsets_with, Author, RRsetRows};
        use crate::zone::file::parse_master;
        let (_dir, store) = temp_store().await;
        let text = "$ORIGIN pool.test.\n$TTL 300\n@ SOA ns1 hm 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n";
        let (_, recs) = parse_master(text, None).unwrap();
        let rows: Vec<StoredRecord> = recs.iter().map(StoredRecord::from_record).collect();
        store.import_zone("pool.test.", &rows, 0).await.unwrap();
        let zones: SharedZones = Default::default();
        let mut refresher = Refresher::start(store.clone(), None, zones.clone())
            .await
            .unwrap();
        // Deterministic: the journal is not read for want of a recent read.
        refresher.read_every = Duration::from_secs(3600);
        let write = |i: u32| {
            let store = store.clone();
            async move {
                let mut tx = crate::store::write::WriteTx::start(&store).await.unwrap();
                let found = lock_and_read(&mut tx, "pool.test.", None, &[], &[])
                    .await
                    .unwrap()
                    .unwrap();
                let owner = format!("h{i}.pool.test.");
                let set = RRsetRows {
                    owner: owner.clone(),
                    rtype: "TXT".into(),
                    before: Vec::new(),
                    after: vec![StoredRecord {
                        name: owner,
                        rtype: "TXT".into(),
                        ttl: 300,
                        rdata: format!("\"v{i}\""),
                    }],
                };
                let author = Author {
                    path: "test".into(),
                    credential: "test".into(),
                };
                let zone = found.locked.zone;
                let written =
                    write_rrsets_with(&mut tx, &zone, found.soa.as_ref(), &[set], &author)
                        .await
                        .unwrap();
                written.entry
            }
        };
        let origin = Name::from_ascii("pool.test.").unwrap();
        let serves = |i: u32| {
            let name = Name::from_ascii(format!("h{i}.pool.test.")).unwrap();
            zones
                .load()
                .get(&origin)
                .unwrap()
                .zone()
                .node(&name)
                .is_some()
        };
        let served = refresher.served();
        let reads = refresher.journal_reads();

        let first = write(1).await;
        let id = first.id;
        store.committed(first);
        refresher.poll().await.unwrap();
        assert!(serves(1));
        assert!(served.applied.borrow().covers(id));
        assert_eq!(refresher.journal_reads(), reads, "handed over, not read");

        // Entry 2 is not handed over: 3 does not follow on.
        let _second = write(2).await;
        let third = write(3).await;
        store.committed(third);
        refresher.poll().await.unwrap();
        assert!(serves(2) && serves(3), "both read from the journal");
        assert_eq!(refresher.journal_reads(), reads + 1);

        // Nothing handed over: the journal is read (the periodic poll).
        refresher.poll().await.unwrap();
        assert_eq!(refresher.journal_reads(), reads + 2);

        // A writer waits for an entry beyond the one handed over.
        let fourth = write(4).await;
        let fifth = write(5).await;
        served.wanted.fetch_max(fifth.id, Ordering::Relaxed);
        store.committed(fourth);
        refresher.poll().await.unwrap();
        assert!(serves(4) && serves(5));
        assert_eq!(refresher.journal_reads(), reads + 3);
        assert_eq!(refresher.full_loads(), 0, "every entry applied as a diff");
    }

    /// Every zone served is followed, keyed by the zone table's own key;
    /// a zone deleted is followed no more (released children would pile up).
    #[tokio::test]
    async fn followed_zones_are_the_served_ones() {
        use crate::store::zones::delete_zone;
        use crate::zone::file::parse_master;
        let (_dir, store) = temp_store().await;
        let import = |name: &'static str| {
            let store = store.clone();
            async move {
                let text = format!("$ORIGIN {name}\n$TTL 300\n@ SOA ns1 hm 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n");
                let (_, recs) = parse_master(&text, None).unwrap();
                let rows: Vec<StoredRecord> = recs.iter().map(StoredRecord::from_record).collect();
                store.import_zone(name, &rows, 0).await.unwrap();
            }
        };
        import("a.test.").await;
        import("b.test.").await;
        let zones: SharedZones = Default::default();
        let mut refresher = Refresher::start(store.clone(), None, zones.clone())
            .await
            .unwrap();
        let followed = |r: &Refresher| {
            let set = zones.load();
            for key in r.followed.keys() {
                let origin = crate::zone::key::name_of(key);
                let own = set.key_of(&origin).expect("a followed zone is served");
                assert!(Arc::ptr_eq(key, &own), "{origin}: the table's own key");
            }
            r.followed.len()
        };
        assert_eq!(followed(&refresher), 2);
        let mut conn = store.pool().acquire().await.unwrap();
        assert!(delete_zone(&mut conn, "b.test.", "test").await.unwrap());
        drop(conn);
        refresher.poll().await.unwrap();
        assert!(zones
            .load()
            .get(&Name::from_ascii("b.test.").unwrap())
            .is_none());
        assert_eq!(followed(&refresher), 1);
        import("c.test.").await;
        refresher.poll().await.unwrap();
        assert_eq!(followed(&refresher), 2);
    }
}

//! pdm as a primary for standard secondaries, on the control-plane side:
//! TSIG keys (created once, stored sealed like DNSSEC keys, opened into
//! the server's policy), the transfer ACL built from `[transfer]` and the
//! pools, and NOTIFY to each configured secondary on every serial change,
//! retried with backoff until acknowledged. The wire work (AXFR, TSIG,
//! NOTIFY messages) is the data plane's (`server::xfr`).

use crate::config::{Config, NotifyTarget};
use crate::secret::{SecretBox, SecretError};
use crate::server::xfr::acl::{TransferPolicy, TransferRule};
use crate::server::xfr::tsig::{Algorithm, KeySet, TsigKey};
use crate::server::xfr::{notify, TransferEvent, Transfers};
use crate::server::SharedZones;
use crate::store::{Store, StoreError};
use hickory_proto::rr::Name;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why a TSIG key could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Sealing or opening a secret failed.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// No secret key is configured to seal TSIG secrets with.
    #[error("TSIG secrets are sealed with the secret key: set PDM_SECRET_KEY or [dnssec] secret_key_file")]
    NoSecretKey,
    /// The name is not a domain name.
    #[error("{0:?} is not a key name")]
    BadName(String),
    /// Unknown algorithm.
    #[error("algorithm {0:?}: want hmac-sha256 or hmac-sha512")]
    BadAlgorithm(String),
    /// A key with this name exists.
    #[error("a TSIG key named {0} exists")]
    Exists(String),
    /// A stored key does not open (wrong secret key, or corrupted).
    #[error("TSIG key {0}: {1}")]
    Unusable(String, String),
}

/// What a sealed TSIG secret is bound to.
fn sealed_context(name: &str) -> String {
    format!("tsig:{name}")
}

/// A TSIG key as listed (never the secret).
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyInfo {
    /// Name, lower case without the trailing dot.
    pub name: String,
    /// `hmac-sha256` or `hmac-sha512`.
    pub algorithm: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Its record policy for RFC 2136 UPDATE (JSON), if it may write records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<serde_json::Value>,
}

/// Creates key `name`: a random secret as long as the algorithm's MAC,
/// stored sealed, with its record policy (checked JSON) if it may write
/// records. Returns the secret (base64), which is shown once.
pub async fn create_key(
    store: &Store,
    secret: Option<&SecretBox>,
    name: &str,
    algorithm: &str,
    policy: Option<&str>,
) -> Result<String, TransferError> {
    let secret = secret.ok_or(TransferError::NoSecretKey)?;
    let name = crate::config::tsig_key_name(name);
    if name.is_empty() || Name::from_ascii(&name).is_err() || name.contains(' ') {
        return Err(TransferError::BadName(name));
    }
    let alg =
        Algorithm::parse(algorithm).ok_or_else(|| TransferError::BadAlgorithm(algorithm.into()))?;
    let mut bytes = vec![0u8; alg.mac_len()];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| SecretError::Rng)?;
    let sealed = secret.seal(&sealed_context(&name), &bytes)?;
    if !store
        .create_tsig_key(&name, alg.as_str(), &hex::encode(sealed), policy)
        .await?
    {
        return Err(TransferError::Exists(name));
    }
    Ok(data_encoding::BASE64.encode(&bytes))
}

/// Every key (name, algorithm, age), never a secret.
pub async fn list_keys(store: &Store) -> Result<Vec<KeyInfo>, TransferError> {
    Ok(store
        .tsig_keys()
        .await?
        .into_iter()
        .map(|r| KeyInfo {
            name: r.name,
            algorithm: r.algorithm,
            created_at: r.created_at,
            policy: r.policy.and_then(|p| serde_json::from_str(&p).ok()),
        })
        .collect())
}

/// Every key opened, for the server. A key that does not open is left
/// out and logged (never its secret), so one bad row cannot stop transfers
/// with the others.
pub async fn open_keys(store: &Store, secret: Option<&SecretBox>) -> Result<KeySet, TransferError> {
    let rows = store.tsig_keys().await?;
    let mut keys = KeySet::new();
    if rows.is_empty() {
        return Ok(keys);
    }
    let secret = secret.ok_or(TransferError::NoSecretKey)?;
    for r in rows {
        let opened = (|| {
            let alg = Algorithm::parse(&r.algorithm)
                .ok_or_else(|| format!("algorithm {:?}", r.algorithm))?;
            let name = Name::from_ascii(&r.name).map_err(|e| e.to_string())?;
            let sealed =
                hex::decode(&r.sealed).map_err(|_| "sealed secret is not hex".to_string())?;
            let bytes = secret
                .open(&sealed_context(&r.name), &sealed)
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(TsigKey::new(&name, alg, &bytes))
        })();
        match opened {
            Ok(k) => keys.insert(k),
            Err(e) => tracing::error!(key = %r.name, error = %e, "TSIG key unusable"),
        }
    }
    Ok(keys)
}

/// The rules of `config`: `[transfer] allow` for every zone, each pool's
/// `transfer_allow` for the pool zone and the zones below it.
pub fn rules(config: &Config) -> Vec<TransferRule> {
    let rule = |zones: Vec<Name>, a: &crate::config::AllowRule| TransferRule {
        zones,
        from: a.from.clone(),
        key: a
            .key
            .as_deref()
            .and_then(|k| Name::from_ascii(format!("{k}.")).ok()),
    };
    let mut out: Vec<TransferRule> = config
        .transfer
        .allow
        .iter()
        .map(|a| rule(Vec::new(), a))
        .collect();
    for p in &config.pools {
        let Ok(zone) = Name::from_ascii(p.domain.fqdn()) else {
            continue;
        };
        out.extend(p.transfer_allow.iter().map(|a| rule(vec![zone.clone()], a)));
    }
    out
}

/// Keeps the server's transfer policy current: the configured rules with
/// the keys in the store, re-read every `every` (keys made with
/// `pdm tsig create` while serving are picked up).
pub async fn keep_policy(
    store: Store,
    secret: Option<Arc<SecretBox>>,
    config: Arc<Config>,
    transfers: Arc<Transfers>,
    every: Duration,
) {
    let mut seen: Option<Vec<(String, String, String)>> = None;
    loop {
        match store.tsig_keys().await {
            Ok(rows) => {
                let now: Vec<_> = rows
                    .into_iter()
                    .map(|r| (r.name, r.algorithm, r.sealed))
                    .collect();
                if seen.as_ref() != Some(&now) {
                    match open_keys(&store, secret.as_deref()).await {
                        Ok(keys) => {
                            tracing::info!(keys = keys.len(), "transfer policy loaded");
                            transfers.set_policy(TransferPolicy {
                                keys,
                                rules: rules(&config),
                            });
                            seen = Some(now);
                        }
                        Err(e) => tracing::error!(error = %e, "cannot open the TSIG keys"),
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the TSIG keys"),
        }
        tokio::time::sleep(every).await;
    }
}

/// The secondaries `zone` (with trailing dot) is NOTIFYed to: `[transfer]
/// also_notify` plus those of the pool it is, or is below.
pub fn notify_targets(config: &Config, zone: &str) -> Vec<NotifyTarget> {
    let zone = zone.trim_end_matches('.').to_ascii_lowercase();
    let mut out = config.transfer.also_notify.clone();
    for p in &config.pools {
        let pool = p.domain.fqdn().trim_end_matches('.').to_ascii_lowercase();
        if zone == pool || zone.ends_with(&format!(".{pool}")) {
            for t in &p.also_notify {
                if !out.contains(t) {
                    out.push(t.clone());
                }
            }
        }
    }
    out
}

/// Where NOTIFY stands for one zone at one secondary (the API shows it).
#[derive(Debug, Clone, serde::Serialize)]
pub struct NotifyStatus {
    /// Zone, with the trailing dot.
    pub zone: String,
    /// The secondary.
    pub target: SocketAddr,
    /// The serial last announced.
    pub serial: u32,
    /// The newest serial the secondary acknowledged a NOTIFY for.
    pub acked_serial: Option<u32>,
    /// Attempts for the current serial.
    pub attempts: u32,
    /// Unix ms of the last NOTIFY sent.
    pub last_sent_ms: Option<i64>,
    /// Unix ms of the last acknowledgement.
    pub last_ack_ms: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// What the API shows about transfers: NOTIFY per zone and secondary, and
/// the transfers served.
#[derive(Debug, Clone)]
pub struct TransferStatus {
    transfers: Arc<Transfers>,
    notify: Arc<Mutex<BTreeMap<(String, SocketAddr), NotifyStatus>>>,
}

impl TransferStatus {
    /// A status over `transfers` (NOTIFY filled in by [`Notifier`]).
    pub fn new(transfers: Arc<Transfers>) -> Self {
        TransferStatus {
            transfers,
            notify: Arc::default(),
        }
    }

    /// The most recent transfers, oldest first.
    pub fn transfers(&self) -> Vec<TransferEvent> {
        self.transfers.events()
    }

    /// NOTIFY state per zone and secondary.
    pub fn notify(&self) -> Vec<NotifyStatus> {
        match self.notify.lock() {
            Ok(m) => m.values().cloned().collect(),
            Err(p) => p.into_inner().values().cloned().collect(),
        }
    }

    fn update(&self, zone: &str, target: SocketAddr, f: impl FnOnce(&mut NotifyStatus)) {
        let mut map = match self.notify.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let s = map
            .entry((zone.to_string(), target))
            .or_insert_with(|| NotifyStatus {
                zone: zone.to_string(),
                target,
                serial: 0,
                acked_serial: None,
                attempts: 0,
                last_sent_ms: None,
                last_ack_ms: None,
                last_error: None,
            });
        f(s);
    }
}

/// A NOTIFY owed to one secondary for one zone.
#[derive(Debug)]
struct Pending {
    zone: String,
    target: NotifyTarget,
    attempts: u32,
    next_at: Instant,
    in_flight: bool,
}

/// NOTIFYs waiting for their answer at once, at most.
const MAX_IN_FLIGHT: usize = 256;

/// Sends NOTIFY for every changed zone to its secondaries until each
/// acknowledges the zone's current serial, backing off between attempts.
pub struct Notifier {
    config: Arc<Config>,
    zones: SharedZones,
    transfers: Arc<Transfers>,
    status: TransferStatus,
}

impl Notifier {
    /// A notifier reading zones from `zones` and keys from `transfers`' policy.
    pub fn new(config: Arc<Config>, zones: SharedZones, status: TransferStatus) -> Self {
        Notifier {
            config,
            zones,
            transfers: status.transfers.clone(),
            status,
        }
    }

    fn backoff(&self, attempts: u32) -> Duration {
        let t = &self.config.transfer;
        let initial = Duration::from_millis(t.notify_retry_initial_ms);
        let max = Duration::from_secs(t.notify_retry_max_secs);
        initial
            .saturating_mul(1u32 << attempts.saturating_sub(1).min(16))
            .min(max)
    }

    /// Follow zone changes (names from the refresher) until the channel closes.
    pub async fn run(self, mut changes: tokio::sync::mpsc::UnboundedReceiver<String>) {
        type Done = (String, SocketAddr, u32, Result<(), String>);
        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<Done>();
        let mut pending: HashMap<(String, SocketAddr), Pending> = HashMap::new();
        let timeout = Duration::from_millis(self.config.transfer.notify_timeout_ms);
        loop {
            let full = pending.values().filter(|p| p.in_flight).count() >= MAX_IN_FLIGHT;
            // When full, only an answer (done_rx) frees room: no timer.
            let next = pending
                .values()
                .filter(|p| !p.in_flight && !full)
                .map(|p| p.next_at)
                .min()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                zone = changes.recv() => {
                    let Some(zone) = zone else { return };
                    for target in notify_targets(&self.config, &zone) {
                        let p = pending.entry((zone.clone(), target.address)).or_insert_with(|| Pending {
                            zone: zone.clone(),
                            target: target.clone(),
                            attempts: 0,
                            next_at: Instant::now(),
                            in_flight: false,
                        });
                        // A new serial: announce it now, whatever the backoff.
                        p.attempts = 0;
                        p.next_at = Instant::now();
                    }
                }
                Some((zone, addr, serial, result)) = done_rx.recv() => {
                    let now_ms = crate::store::now_ms();
                    let current = self.serial_of(&zone);
                    let key = (zone.clone(), addr);
                    match result {
                        Ok(()) => {
                            self.status.update(&zone, addr, |s| {
                                s.acked_serial = Some(serial);
                                s.last_ack_ms = Some(now_ms);
                                s.last_error = None;
                            });
                            if current.is_none_or(|c| c == serial) {
                                pending.remove(&key);
                            } else if let Some(p) = pending.get_mut(&key) {
                                p.in_flight = false;
                                p.next_at = Instant::now();
                            }
                        }
                        Err(e) => {
                            tracing::info!(zone = %zone, target = %addr, error = %e, "NOTIFY not acknowledged; will retry");
                            self.status.update(&zone, addr, |s| s.last_error = Some(e));
                            if let Some(p) = pending.get_mut(&key) {
                                p.in_flight = false;
                                p.next_at = Instant::now() + self.backoff(p.attempts);
                            }
                        }
                    }
                }
                _ = tokio::time::sleep_until(next.into()) => {}
            }
            let now = Instant::now();
            // At most this many NOTIFYs in flight (a secondary down during a
            // burst of commits must not cost a socket per zone at once).
            let room =
                MAX_IN_FLIGHT.saturating_sub(pending.values().filter(|p| p.in_flight).count());
            let due: Vec<(String, SocketAddr)> = pending
                .iter()
                .filter(|(_, p)| !p.in_flight && p.next_at <= now)
                .map(|(k, _)| k.clone())
                .take(room)
                .collect();
            for k in due {
                let zones = self.zones.load();
                let served = Name::from_ascii(&k.0)
                    .ok()
                    .and_then(|n| zones.get(&n).cloned());
                let Some(served) = served else {
                    // Released or deleted: nothing to announce.
                    pending.remove(&k);
                    continue;
                };
                let Some(p) = pending.get_mut(&k) else {
                    continue;
                };
                p.in_flight = true;
                p.attempts += 1;
                let serial = served.zone().serial();
                let attempts = p.attempts;
                self.status.update(&p.zone, k.1, |s| {
                    s.serial = serial;
                    s.attempts = attempts;
                    s.last_sent_ms = Some(crate::store::now_ms());
                });
                let key = match p.target.key.as_deref() {
                    None => None,
                    Some(name) => {
                        let found = Name::from_ascii(name)
                            .ok()
                            .and_then(|n| self.transfers.policy().keys.get(&n).cloned());
                        match found {
                            Some(k) => Some(k),
                            None => {
                                let _ = done_tx.send((
                                    p.zone.clone(),
                                    k.1,
                                    serial,
                                    Err(format!("TSIG key {name} is not in the store")),
                                ));
                                continue;
                            }
                        }
                    }
                };
                let (tx, zone, addr) = (done_tx.clone(), p.zone.clone(), k.1);
                tokio::spawn(async move {
                    let origin = served.zone().origin().clone();
                    let soa = served.zone().soa();
                    let r =
                        notify::notify(addr, &origin, Some(&soa), key.as_deref(), timeout).await;
                    let _ = tx.send((zone, addr, serial, r.map_err(|e| e.to_string())));
                });
            }
        }
    }

    fn serial_of(&self, zone: &str) -> Option<u32> {
        let n = Name::from_ascii(zone).ok()?;
        self.zones.load().get(&n).map(|z| z.zone().serial())
    }
}

/// Announces every served zone that has secondaries once, at
/// `[transfer] startup_notify_rate` zones a second, through the notifier's
/// channel: a secondary that missed changes while this node was down asks
/// for them now instead of at its next SOA refresh.
pub async fn notify_at_start(
    config: Arc<Config>,
    zones: SharedZones,
    to: tokio::sync::mpsc::UnboundedSender<String>,
) {
    let rate = config.transfer.startup_notify_rate;
    if rate == 0 {
        return;
    }
    let names: Vec<String> = zones
        .load()
        .iter()
        .map(|z| z.zone().origin().to_ascii())
        .filter(|n| !notify_targets(&config, n).is_empty())
        .collect();
    if names.is_empty() {
        return;
    }
    tracing::info!(
        zones = names.len(),
        rate,
        "announcing every zone to its secondaries (start-up NOTIFY)"
    );
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    for n in names {
        tick.tick().await;
        if to.send(n).is_err() {
            return;
        }
    }
}

/// The member label of `zone` in the catalog: stable, from the name alone
/// (RFC 9432 §4.1 leaves its form to the producer), so every replica
/// writes the same one.
pub fn member_id(zone: &str) -> String {
    let name = zone.trim_end_matches('.').to_ascii_lowercase();
    crate::store::sha256_hex(name.as_bytes())[..16].to_string()
}

/// The `group` property of `zone` (RFC 9432 §4.4.2): the pool it is or is
/// below (without the trailing dot), else `byo`.
pub fn group_of(config: &Config, zone: &str) -> String {
    let zone = zone.trim_end_matches('.').to_ascii_lowercase();
    config
        .pools
        .iter()
        .map(|p| p.domain.fqdn().trim_end_matches('.').to_ascii_lowercase())
        .find(|pool| zone == *pool || zone.ends_with(&format!(".{pool}")))
        .unwrap_or_else(|| "byo".to_string())
}

/// Keeps the catalog zone (`[transfer] catalog`) listing every zone this
/// node serves, version 2, each member with its `group`: created at start,
/// brought in line with the served zones once, then changed member by
/// member as zones come and go (names from the refresher). Writes go
/// through the store like every zone change (journaled, serial bumped,
/// NOTIFY follows); each is a no-op when the row is already right, so every
/// replica may run it.
pub struct Catalog {
    config: Arc<Config>,
    store: Store,
    zones: SharedZones,
    name: String,
}

impl Catalog {
    /// The catalog of `config`, when one is configured.
    pub fn new(config: Arc<Config>, store: Store, zones: SharedZones) -> Option<Self> {
        let name = config.transfer.catalog.clone()?;
        Some(Catalog {
            config,
            store,
            zones,
            name,
        })
    }

    /// The catalog zone's name (with the trailing dot).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Create the catalog zone when it does not exist.
    pub async fn ensure(&self) -> Result<(), StoreError> {
        use crate::store::zones::{self, StoredRecord, ZoneKind};
        let mut tx = self.store.begin().await?;
        if zones::get_zone(&mut tx, &self.name).await?.is_none() {
            let rec = |rtype: &str, rdata: &str, name: &str| StoredRecord {
                name: name.to_string(),
                ttl: 0,
                rtype: rtype.to_string(),
                rdata: rdata.to_string(),
            };
            let records = vec![
                // RFC 9432 §4: an SOA and NS are required; their values are
                // not used. Expire is long so a consumer keeps its members.
                rec(
                    "SOA",
                    "invalid. invalid. 1 3600 600 2147483646 0",
                    &self.name,
                ),
                rec("NS", "invalid.", &self.name),
                rec("TXT", "\"2\"", &format!("version.{}", self.name)),
            ];
            // Kind `imported`: the zones table admits pool, child and imported only.
            zones::create_zone(&mut tx, &self.name, ZoneKind::Imported, &records, "catalog")
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Make the member records of `zone` match whether it is served:
    /// `<id>.zones.<catalog> PTR <zone>` and `group.<id>...` TXT, or none.
    async fn sync_member(&self, zone: &str, served: bool) -> Result<bool, StoreError> {
        use crate::store::zones::{self, StoredRecord};
        if zone == self.name {
            return Ok(false);
        }
        let id = member_id(zone);
        let owner = format!("{id}.zones.{}", self.name);
        let group_owner = format!("group.{owner}");
        let (ptr, txt) = if served {
            (
                vec![StoredRecord {
                    name: owner.clone(),
                    ttl: 0,
                    rtype: "PTR".into(),
                    rdata: zone.to_string(),
                }],
                vec![StoredRecord {
                    name: group_owner.clone(),
                    ttl: 0,
                    rtype: "TXT".into(),
                    rdata: format!("\"{}\"", group_of(&self.config, zone)),
                }],
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let mut tx = self.store.begin().await?;
        let Some(catalog) = zones::get_zone(&mut tx, &self.name).await? else {
            return Ok(false);
        };
        let a = zones::set_rrsets(&mut tx, &catalog, &owner, &["PTR"], &ptr, "catalog").await?;
        let catalog = zones::get_zone(&mut tx, &self.name)
            .await?
            .unwrap_or(catalog);
        let b =
            zones::set_rrsets(&mut tx, &catalog, &group_owner, &["TXT"], &txt, "catalog").await?;
        tx.commit().await?;
        Ok(a || b)
    }

    /// Whether the served catalog lists `zone` as it should (`served`).
    fn listed_right(&self, zone: &str, served: bool) -> bool {
        let table = self.zones.load();
        let Some(catalog) = Name::from_ascii(&self.name)
            .ok()
            .and_then(|n| table.get(&n))
        else {
            return false;
        };
        let owner = format!("{}.zones.{}", member_id(zone), self.name);
        let listed = Name::from_ascii(&owner)
            .ok()
            .and_then(|o| {
                catalog
                    .zone()
                    .node(&o)
                    .map(|n| n.rrset(hickory_proto::rr::RecordType::PTR).is_some())
            })
            .unwrap_or(false);
        listed == served
    }

    /// Bring the catalog in line with every served zone (start-up), then
    /// follow zone changes until the channel closes.
    pub async fn run(self, mut changes: tokio::sync::mpsc::UnboundedReceiver<String>) {
        if let Err(e) = self.ensure().await {
            tracing::error!(error = %e, "cannot create the catalog zone");
        }
        // Compare against the catalog as served (one write per wrong
        // member, not one per zone): wait until it is loaded.
        let catalog = Name::from_ascii(&self.name).ok();
        for _ in 0..200 {
            if catalog
                .as_ref()
                .is_some_and(|c| self.zones.load().get(c).is_some())
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let all: Vec<String> = self
            .zones
            .load()
            .iter()
            .map(|z| z.zone().origin().to_ascii())
            .collect();
        for zone in all {
            self.follow(&zone).await;
        }
        // Members of zones no longer served (released while down).
        self.prune().await;
        while let Some(zone) = changes.recv().await {
            self.follow(&zone).await;
        }
    }

    async fn follow(&self, zone: &str) {
        let zone = zone.to_ascii_lowercase();
        let served = Name::from_ascii(&zone)
            .ok()
            .is_some_and(|n| self.zones.load().get(&n).is_some());
        if zone == self.name || self.listed_right(&zone, served) {
            return;
        }
        match self.sync_member(&zone, served).await {
            Ok(true) => {
                tracing::info!(zone = %zone, listed = served, catalog = %self.name, "catalog updated")
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(zone = %zone, error = %e, "catalog update failed"),
        }
    }

    /// Remove members whose zone is not served.
    async fn prune(&self) {
        let table = self.zones.load();
        let Some(catalog) = Name::from_ascii(&self.name)
            .ok()
            .and_then(|n| table.get(&n))
        else {
            return;
        };
        let stale: Vec<String> = catalog
            .zone()
            .nodes()
            .filter_map(|(_, node)| node.rrset(hickory_proto::rr::RecordType::PTR))
            .flat_map(|set| set.rdata().into_owned())
            .filter_map(|d| match d {
                hickory_proto::rr::RData::PTR(p) => Some(p.0.to_ascii()),
                _ => None,
            })
            .filter(|z| {
                Name::from_ascii(z)
                    .ok()
                    .is_none_or(|n| table.get(&n).is_none())
            })
            .collect();
        drop(table);
        for z in stale {
            if let Err(e) = self.sync_member(&z, false).await {
                tracing::warn!(zone = %z, error = %e, "catalog prune failed");
            }
        }
    }
}

/// Keeps the signatures secondaries serve from expiring: every
/// `[transfer] resign_check_secs`, a zone whose last transferred version
/// holds a signature inside the refresh margin gets a new serial (only the
/// SOA changes; journaled, so every replica serves it and NOTIFY follows).
/// The next transfer's version re-signs what is due, so the secondary gets
/// fresh RRSIGs by IXFR. A zone with a newer, untransferred version is left
/// alone: its transfer renews them anyway.
pub async fn keep_signatures_fresh(
    store: Store,
    config: Arc<Config>,
    zones: SharedZones,
    transfers: Arc<Transfers>,
) {
    let margin = config.dnssec.signature_refresh_secs;
    let every = Duration::from_secs(config.transfer.resign_check_secs);
    loop {
        tokio::time::sleep(every).await;
        let now = crate::server::xfr::tsig::unix_now().min(u64::from(u32::MAX)) as u32;
        // Released zones' transfer history goes (it is kept in memory).
        let table = zones.load_full();
        transfers.retain_zones(|z| table.get(z).is_some());
        drop(table);
        for (zone, sent_serial) in transfers.expiring(now.saturating_add(margin)) {
            let served = zones.load().get(&zone).map(|z| z.zone().serial());
            if served != Some(sent_serial) {
                continue;
            }
            let name = zone.to_ascii();
            let bumped = async {
                let mut tx = store.begin().await?;
                let serial = crate::store::zones::touch_zone(&mut tx, &name, "resign").await?;
                tx.commit().await?;
                Ok::<_, StoreError>(serial)
            };
            match bumped.await {
                Ok(Some(serial)) => {
                    tracing::info!(zone = %name, serial, "signatures due on secondaries: serial bumped")
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(zone = %name, error = %e, "cannot bump the serial for re-signing")
                }
            }
        }
    }
}

/// What one configured secondary serves of a zone, asked directly.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SecondarySerial {
    /// The secondary (an `also_notify` target).
    pub address: SocketAddr,
    /// Its SOA serial for the zone (`None`: it does not serve the zone).
    pub serial: Option<u32>,
    /// Why it could not be asked (timeout, TSIG, ...).
    pub error: Option<String>,
}

/// How long a secondary's SOA answer is waited for by the change status.
const SOA_PROBE_TIMEOUT: Duration = Duration::from_millis(700);

impl TransferStatus {
    /// The SOA serial each configured secondary of `zone` serves, asked
    /// over UDP at once (signed with the target's key when it names one).
    pub async fn secondaries(&self, config: &Config, zone: &str) -> Vec<SecondarySerial> {
        let Ok(origin) = Name::from_ascii(zone) else {
            return Vec::new();
        };
        let mut tasks = tokio::task::JoinSet::new();
        for (i, target) in notify_targets(config, zone).into_iter().enumerate() {
            let key = match target.key.as_deref() {
                None => None,
                Some(k) => match Name::from_ascii(k)
                    .ok()
                    .and_then(|n| self.transfers.policy().keys.get(&n).cloned())
                {
                    Some(k) => Some(k),
                    None => {
                        let error = Some(format!("TSIG key {k} is not in the store"));
                        tasks.spawn(async move {
                            (
                                i,
                                SecondarySerial {
                                    address: target.address,
                                    serial: None,
                                    error,
                                },
                            )
                        });
                        continue;
                    }
                },
            };
            let origin = origin.clone();
            tasks.spawn(async move {
                let r =
                    notify::soa_serial(target.address, &origin, key.as_deref(), SOA_PROBE_TIMEOUT)
                        .await;
                let (serial, error) = match r {
                    Ok(s) => (s, None),
                    Err(e) => (None, Some(e.to_string())),
                };
                (
                    i,
                    SecondarySerial {
                        address: target.address,
                        serial,
                        error,
                    },
                )
            });
        }
        let mut out: Vec<(usize, SecondarySerial)> = Vec::new();
        while let Some(r) = tasks.join_next().await {
            if let Ok(x) = r {
                out.push(x);
            }
        }
        out.sort_by_key(|(i, _)| *i);
        out.into_iter().map(|(_, s)| s).collect()
    }
}

/// Whether serial `have` is `want` or newer (RFC 1982 arithmetic).
pub fn serial_reached(have: u32, want: u32) -> bool {
    !crate::server::xfr::serial_lt(have, want)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[[nameservers]]
name = "ns1.example.test"
[[pools]]
domain = "example.test"
transfer_allow = [{ from = ["198.51.100.0/24"], key = "pool-xfr" }]
also_notify = [{ address = "198.51.100.7:53", key = "pool-xfr" }]
[[pools]]
domain = "other.test"
[transfer]
allow = [{ from = ["192.0.2.53"] }]
also_notify = [{ address = "192.0.2.53:53" }]
"#;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[test]
    fn pool_rules_cover_the_pool_and_its_children_global_ones_everything() {
        let config = Config::from_toml(CONFIG).unwrap();
        let policy = TransferPolicy {
            keys: KeySet::new(),
            rules: rules(&config),
        };
        let pool_secondary = "198.51.100.9".parse().unwrap();
        let key = name("pool-xfr.");
        assert!(policy.allows(&name("acme.example.test."), pool_secondary, Some(&key)));
        assert!(policy.allows(&name("example.test."), pool_secondary, Some(&key)));
        assert!(!policy.allows(&name("acme.other.test."), pool_secondary, Some(&key)));
        assert!(!policy.allows(&name("example.test."), pool_secondary, None));
        let global = "192.0.2.53".parse().unwrap();
        assert!(policy.allows(&name("byo.example.org."), global, None));
        assert!(policy.allows(&name("acme.other.test."), global, None));
    }

    #[test]
    fn notify_targets_and_catalog_groups_follow_the_pools() {
        let config = Config::from_toml(CONFIG).unwrap();
        let addrs = |z: &str| -> Vec<String> {
            notify_targets(&config, z)
                .iter()
                .map(|t| t.address.to_string())
                .collect()
        };
        assert_eq!(
            addrs("acme.example.test."),
            ["192.0.2.53:53", "198.51.100.7:53"]
        );
        assert_eq!(addrs("example.test."), ["192.0.2.53:53", "198.51.100.7:53"]);
        assert_eq!(addrs("acme.other.test."), ["192.0.2.53:53"]);
        assert_eq!(addrs("notexample.test."), ["192.0.2.53:53"]);
        assert_eq!(group_of(&config, "acme.example.test."), "example.test");
        assert_eq!(group_of(&config, "other.test."), "other.test");
        assert_eq!(group_of(&config, "shop.example.org."), "byo");
        assert_eq!(
            member_id("Acme.Example.Test."),
            member_id("acme.example.test")
        );
        assert_eq!(member_id("acme.example.test").len(), 16);
    }

    #[test]
    fn serials_compare_in_rfc1982_arithmetic() {
        assert!(serial_reached(5, 5));
        assert!(serial_reached(6, 5));
        assert!(!serial_reached(4, 5));
        assert!(serial_reached(1, u32::MAX), "wrapped past the top");
    }
}

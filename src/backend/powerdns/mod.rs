//! The PowerDNS backend: pdm's store holds the allocations (the desired
//! state); PowerDNS holds and serves the zones, their keys and the
//! delegations. With this backend pdm's own DNS server does not serve pool
//! or child zones (the store has no copy of them): PowerDNS is the authority.
//!
//! Every write goes through one idempotent function, [`PowerDnsBackend::converge_child`]:
//! it reads the allocation from the store and makes PowerDNS match it
//! (active → child zone with SOA/NS/template records, secured, NSEC3, and
//! NS+DS in the pool zone in one PATCH; otherwise → delegation removed, child
//! zone deleted). The `pdns-commit` / `pdns-release` operations run it, so
//! their order does not matter and a retry after any crash is safe;
//! `pdm reconcile` runs it for every allocation and stale delegation.

pub mod client;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hickory_proto::rr::Record;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::AnyConnection;

use self::client::{canonical, PdnsClient, PdnsError, RRset};
use super::{
    apex_hickory, glue_hickory, BackendError, ChildZone, OperationView, ZoneBackend,
    KIND_PDNS_COMMIT, KIND_PDNS_RELEASE,
};
use crate::config::{Config, PoolConfig, PowerDnsConfig};
use crate::model::{AllocationState, DomainName};
use crate::operations::{finish_for, StepOutcome, StepRunner};
use crate::store::allocations as rows;
use crate::store::operations::{self as ops, NewOperation, OperationRow};
use crate::store::{now_ms, Store};
use crate::zone::template;

/// The one step of a PowerDNS operation.
pub const STEP_APPLY: &str = "apply";
/// NSEC3 parameters pdm sets (RFC 9276: SHA-1, no opt-out, 0 iterations, no salt).
pub const NSEC3PARAM: &str = "1 0 0 -";
/// Types PowerDNS manages itself; never compared or pruned.
const MANAGED_TYPES: [&str; 4] = ["SOA", "DNSKEY", "NSEC3PARAM", "CDS"];

/// One change made to PowerDNS (or, in a dry run, that would be made).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The zone changed.
    pub zone: String,
    /// What: `create-zone`, `replace`, `delete`, `add-key`, `set-nsec3`, `delegate`, `undelegate`, `delete-zone`.
    pub action: &'static str,
    /// Details (names, types, contents).
    pub detail: String,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.action, self.zone, self.detail)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    pool: String,
    subdomain: String,
}

/// PowerDNS as the zone backend.
#[derive(Clone)]
pub struct PowerDnsBackend {
    store: Store,
    config: Arc<Config>,
    pdns: PowerDnsConfig,
    client: PdnsClient,
    worker: String,
}

impl std::fmt::Debug for PowerDnsBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PowerDnsBackend")
            .field("url", &self.pdns.url)
            .finish_non_exhaustive()
    }
}

/// RRsets from records: grouped by owner and type, the first TTL of each.
pub fn to_rrsets(records: &[Record]) -> Vec<RRset> {
    let mut sets: BTreeMap<(String, String), RRset> = BTreeMap::new();
    for r in records {
        let name = canonical(&r.name.to_ascii());
        let rtype = crate::store::zones::StoredRecord::from_record(r).rtype;
        let content = crate::zone::file::rdata_text(&r.data);
        sets.entry((name.clone(), rtype.clone()))
            .or_insert_with(|| RRset::replace(&name, &rtype, r.ttl, Vec::new()))
            .records
            .push(client::PdnsRecord {
                content,
                disabled: false,
            });
    }
    sets.into_values().collect()
}

fn norm_content(rtype: &str, c: &str) -> String {
    let c = c.split_whitespace().collect::<Vec<_>>().join(" ");
    if rtype == "LUA" || rtype == "TXT" {
        c
    } else {
        c.to_ascii_lowercase()
    }
}

fn contents(r: &RRset) -> BTreeSet<String> {
    r.records
        .iter()
        .filter(|x| !x.disabled)
        .map(|x| norm_content(&r.rtype, &x.content))
        .collect()
}

/// The PATCH that makes `actual` look like `desired`: REPLACE of every
/// desired RRset that is missing or differs (contents or TTL), and with
/// `prune` a DELETE of every other RRset (SOA and DNSSEC types excepted).
pub fn diff_rrsets(desired: &[RRset], actual: &[RRset], prune: bool) -> Vec<RRset> {
    let key = |r: &RRset| (canonical(&r.name), r.rtype.to_ascii_uppercase());
    let have: BTreeMap<_, &RRset> = actual.iter().map(|r| (key(r), r)).collect();
    let mut out = Vec::new();
    for d in desired {
        if MANAGED_TYPES.contains(&d.rtype.as_str()) {
            continue;
        }
        match have.get(&key(d)) {
            Some(a) if contents(a) == contents(d) && a.ttl == d.ttl => {}
            _ => out.push(d.clone()),
        }
    }
    if prune {
        let want: BTreeSet<_> = desired.iter().map(key).collect();
        for a in actual {
            if !MANAGED_TYPES.contains(&a.rtype.as_str()) && !want.contains(&key(a)) {
                out.push(RRset::delete(&a.name, &a.rtype));
            }
        }
    }
    out
}

/// The SHA-256 DS texts of the active key-signing keys in `keys`.
pub fn ds_of(keys: &[client::Cryptokey]) -> Vec<String> {
    let mut out: Vec<String> = keys
        .iter()
        .filter(|k| k.active && (k.keytype == "ksk" || k.keytype == "csk"))
        .flat_map(|k| k.ds.iter())
        .filter(|d| d.split_whitespace().nth(2) == Some("2"))
        .map(|d| d.to_ascii_lowercase())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// PowerDNS's name of a key algorithm pdm knows (its number otherwise,
/// which PowerDNS accepts too).
fn pdns_algorithm(a: crate::dnssec::KeyAlgorithm) -> String {
    match a.number() {
        8 => "rsasha256".into(),
        10 => "rsasha512".into(),
        13 => "ecdsa256".into(),
        14 => "ecdsa384".into(),
        15 => "ed25519".into(),
        16 => "ed448".into(),
        n => n.to_string(),
    }
}

fn describe(r: &RRset) -> String {
    let c: Vec<&str> = r.records.iter().map(|x| x.content.as_str()).collect();
    if r.changetype.as_deref() == Some("DELETE") {
        format!("{} {}", r.name, r.rtype)
    } else {
        format!("{} {} {}", r.name, r.rtype, c.join(" | "))
    }
}

fn retry_or_fail(e: &PdnsError) -> StepOutcome {
    match e {
        PdnsError::Unavailable(_) | PdnsError::Unauthorized(_) => StepOutcome::Retry {
            after: None,
            error: e.to_string(),
        },
        _ => StepOutcome::Fail {
            error: e.to_string(),
        },
    }
}

/// What can go wrong converging: PowerDNS, the store, or the desired state.
#[derive(Debug, thiserror::Error)]
pub enum ConvergeError {
    /// PowerDNS failed.
    #[error(transparent)]
    Pdns(#[from] PdnsError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The desired state cannot be built (bad template, bad stored IP).
    #[error("{0}")]
    Desired(String),
}

impl From<sqlx::Error> for ConvergeError {
    fn from(e: sqlx::Error) -> Self {
        ConvergeError::Store(crate::store::StoreError::Db(e))
    }
}

impl PowerDnsBackend {
    /// A backend for `config.backend.powerdns`.
    pub fn new(store: Store, config: Arc<Config>) -> Result<Self, BackendError> {
        let pdns = config.backend.powerdns.clone().ok_or_else(|| {
            crate::config::ConfigError::Invalid("[backend] powerdns settings missing".into())
        })?;
        crate::config::check_powerdns_denial(&config.pools)?;
        let client = PdnsClient::new(&pdns)?;
        Ok(PowerDnsBackend {
            store,
            config,
            pdns,
            client,
            worker: crate::operations::Instance::current().owner("inline"),
        })
    }

    /// Seconds between periodic reconciliations (0: off).
    pub fn interval_secs(&self) -> u64 {
        self.pdns.reconcile_interval_secs
    }

    /// The API client.
    pub fn client(&self) -> &PdnsClient {
        &self.client
    }

    fn signed(&self) -> bool {
        self.config.dnssec.enabled
    }

    /// The child zone's desired RRsets: SOA, NS and the pool's template.
    pub fn child_rrsets(
        &self,
        pool: &PoolConfig,
        child: &DomainName,
        lb: IpAddr,
        console: Option<IpAddr>,
    ) -> Result<Vec<RRset>, String> {
        let mut records = apex_hickory(&self.config, child);
        records.extend(template::render(&pool.template, child.name(), lb, console)?);
        Ok(to_rrsets(&records))
    }

    fn pool_rrsets(&self, pool: &PoolConfig) -> Vec<RRset> {
        let mut records = apex_hickory(&self.config, &pool.domain);
        records.extend(glue_hickory(&self.config, pool));
        to_rrsets(&records)
    }

    async fn ensure_zone(
        &self,
        zone: &str,
        desired: &[RRset],
        prune: bool,
        dry: bool,
        ch: &mut Vec<Change>,
    ) -> Result<bool, PdnsError> {
        let zone = canonical(zone);
        let actual = match self.client.zone(&zone).await? {
            Some(z) => z.rrsets,
            None => {
                ch.push(Change {
                    zone: zone.clone(),
                    action: "create-zone",
                    detail: format!("{} {} RRsets", self.pdns.zone_kind.as_str(), desired.len()),
                });
                if dry {
                    return Ok(false);
                }
                if self
                    .client
                    .create_zone(&zone, self.pdns.zone_kind.as_str(), desired)
                    .await?
                {
                    if !self.pdns.also_notify.is_empty() {
                        self.client
                            .set_metadata(&zone, "ALSO-NOTIFY", &self.pdns.also_notify)
                            .await?;
                    }
                    return Ok(true);
                }
                // 409: created meanwhile; compare with what is there.
                self.client
                    .zone(&zone)
                    .await?
                    .map(|z| z.rrsets)
                    .unwrap_or_default()
            }
        };
        let patch = diff_rrsets(desired, &actual, prune);
        for p in &patch {
            ch.push(Change {
                zone: zone.clone(),
                action: if p.changetype.as_deref() == Some("DELETE") {
                    "delete"
                } else {
                    "replace"
                },
                detail: describe(p),
            });
        }
        if !dry {
            self.client.patch(&zone, &patch).await?;
        }
        Ok(true)
    }

    /// The algorithm of the CSK PowerDNS makes for `pool`'s zones (PowerDNS
    /// spelling): the pool's `dnssec_algorithm`, else `[backend] algorithm`,
    /// else `[dnssec] algorithm`.
    pub fn algorithm_for(&self, pool: &PoolConfig) -> String {
        match (pool.dnssec_algorithm, &self.pdns.algorithm) {
            (Some(a), _) => pdns_algorithm(a),
            (None, Some(b)) => b.clone(),
            (None, None) => pdns_algorithm(self.config.dnssec.algorithm),
        }
    }

    /// Whether `pool`'s zones get NSEC3 ([`NSEC3PARAM`]): the pool's
    /// `dnssec_denial = "nsec3"`, else `[backend] nsec3`. (A pool's
    /// `dnssec_denial = "compact"` is refused at config load: PowerDNS has no
    /// compact denial.)
    pub fn nsec3_for(&self, pool: &PoolConfig) -> bool {
        match pool.dnssec_denial {
            Some(crate::dnssec::DenialMode::Nsec3) => true,
            Some(crate::dnssec::DenialMode::Compact) | None => self.pdns.nsec3,
        }
    }

    /// Keys and, with `nsec3`, NSEC3 on `zone` (a new CSK of `algorithm`);
    /// returns its DS texts (empty in a dry run that would add keys).
    async fn ensure_secured(
        &self,
        zone: &str,
        algorithm: &str,
        nsec3: bool,
        dry: bool,
        ch: &mut Vec<Change>,
    ) -> Result<Vec<String>, PdnsError> {
        let zone = canonical(zone);
        let mut keys = self.client.cryptokeys(&zone).await?;
        let mut changed = false;
        if !keys.iter().any(|k| k.active) {
            ch.push(Change {
                zone: zone.clone(),
                action: "add-key",
                detail: format!("csk {algorithm}"),
            });
            if dry {
                return Ok(Vec::new());
            }
            self.client.add_csk(&zone, algorithm).await?;
            changed = true;
        }
        if nsec3 {
            let current = self
                .client
                .zone(&zone)
                .await?
                .map(|z| z.nsec3param)
                .unwrap_or_default();
            if current.trim() != NSEC3PARAM {
                ch.push(Change {
                    zone: zone.clone(),
                    action: "set-nsec3",
                    detail: NSEC3PARAM.into(),
                });
                if !dry {
                    self.client
                        .put_zone(&zone, &json!({ "nsec3param": NSEC3PARAM }))
                        .await?;
                    changed = true;
                }
            }
        }
        if changed {
            self.client.rectify(&zone).await?;
            keys = self.client.cryptokeys(&zone).await?;
        }
        Ok(ds_of(&keys))
    }

    /// The pool zone exists with its SOA, NS, glue, keys and (per
    /// [`PowerDnsBackend::nsec3_for`]) NSEC3.
    pub async fn ensure_pool_zone(
        &self,
        pool: &PoolConfig,
        dry: bool,
        ch: &mut Vec<Change>,
    ) -> Result<(), PdnsError> {
        let exists = self
            .ensure_zone(&pool.domain.fqdn(), &self.pool_rrsets(pool), false, dry, ch)
            .await?;
        if self.signed() && exists {
            self.ensure_secured(
                &pool.domain.fqdn(),
                &self.algorithm_for(pool),
                self.nsec3_for(pool),
                dry,
                ch,
            )
            .await?;
        }
        Ok(())
    }

    /// NS+DS of `child` in the pool zone: `Some(ds)` → present (one PATCH,
    /// REPLACE), `None` → absent.
    async fn ensure_delegation(
        &self,
        pool: &PoolConfig,
        child: &DomainName,
        ds: Option<Vec<String>>,
        dry: bool,
        ch: &mut Vec<Change>,
    ) -> Result<(), PdnsError> {
        let pool_zone = pool.domain.fqdn();
        let name = child.fqdn();
        let actual = match self.client.rrsets_at(&pool_zone, &name).await? {
            Some(a) => a,
            None => {
                self.ensure_pool_zone(pool, dry, ch).await?;
                if dry {
                    Vec::new()
                } else {
                    self.client
                        .rrsets_at(&pool_zone, &name)
                        .await?
                        .unwrap_or_default()
                }
            }
        };
        let actual: Vec<RRset> = actual
            .into_iter()
            .filter(|r| {
                canonical(&r.name) == canonical(&name) && (r.rtype == "NS" || r.rtype == "DS")
            })
            .collect();
        let patch = match &ds {
            Some(ds) => {
                let ns: Vec<String> = self
                    .config
                    .nameservers
                    .iter()
                    .map(|n| n.name.fqdn())
                    .collect();
                let mut desired = vec![RRset::replace(&name, "NS", super::NS_TTL, ns)];
                if !ds.is_empty() {
                    desired.push(RRset::replace(
                        &name,
                        "DS",
                        self.config.dnssec.dnskey_ttl,
                        ds.clone(),
                    ));
                }
                let mut p = diff_rrsets(&desired, &actual, true);
                if !p.is_empty() {
                    // NS and DS change together: one PATCH with both.
                    p = desired;
                    if ds.is_empty() {
                        p.push(RRset::delete(&name, "DS"));
                    }
                }
                p
            }
            None if actual.is_empty() => Vec::new(),
            None => vec![RRset::delete(&name, "NS"), RRset::delete(&name, "DS")],
        };
        if patch.is_empty() {
            return Ok(());
        }
        ch.push(Change {
            zone: pool_zone.clone(),
            action: if ds.is_some() {
                "delegate"
            } else {
                "undelegate"
            },
            detail: patch.iter().map(describe).collect::<Vec<_>>().join("; "),
        });
        if !dry {
            self.client.patch(&pool_zone, &patch).await?;
        }
        Ok(())
    }

    /// Makes PowerDNS match the store for `sub` in `pool`; returns the changes.
    pub async fn converge_child(
        &self,
        pool: &PoolConfig,
        sub: &str,
        dry: bool,
    ) -> Result<Vec<Change>, ConvergeError> {
        let child = pool
            .domain
            .child(sub)
            .map_err(|e| ConvergeError::Desired(e.to_string()))?;
        let mut conn = self.store.pool().acquire().await?;
        let row = rows::live(&mut conn, "", &pool.domain.without_dot(), sub).await?;
        drop(conn);
        let mut ch = Vec::new();
        match row
            .map(|r| r.allocation)
            .filter(|a| a.state == AllocationState::Active)
        {
            Some(a) => {
                let ip = |s: Option<&str>| -> Result<Option<IpAddr>, ConvergeError> {
                    s.filter(|s| !s.is_empty())
                        .map(|s| {
                            s.parse()
                                .map_err(|_| ConvergeError::Desired(format!("stored IP {s:?}")))
                        })
                        .transpose()
                };
                let lb = ip(a.load_balancer_ip.as_deref())?.ok_or_else(|| {
                    ConvergeError::Desired(format!("{} has no load balancer", child))
                })?;
                let console = ip(a.console_load_balancer_ip.as_deref())?;
                let desired = self
                    .child_rrsets(pool, &child, lb, console)
                    .map_err(ConvergeError::Desired)?;
                let exists = self
                    .ensure_zone(&child.fqdn(), &desired, true, dry, &mut ch)
                    .await?;
                if !exists {
                    // Dry run of a missing zone: keys and DS cannot be known yet.
                    ch.push(Change {
                        zone: pool.domain.fqdn(),
                        action: "delegate",
                        detail: format!("{} NS (+DS)", child.fqdn()),
                    });
                    return Ok(ch);
                }
                let ds = if self.signed() {
                    self.ensure_secured(
                        &child.fqdn(),
                        &self.algorithm_for(pool),
                        self.nsec3_for(pool),
                        dry,
                        &mut ch,
                    )
                    .await?
                } else {
                    Vec::new()
                };
                self.ensure_delegation(pool, &child, Some(ds), dry, &mut ch)
                    .await?;
            }
            None => {
                self.ensure_delegation(pool, &child, None, dry, &mut ch)
                    .await?;
                if self.client.zone(&child.fqdn()).await?.is_some() {
                    ch.push(Change {
                        zone: child.fqdn(),
                        action: "delete-zone",
                        detail: "no active allocation".into(),
                    });
                    if !dry {
                        self.client.delete_zone(&child.fqdn()).await?;
                    }
                }
            }
        }
        Ok(ch)
    }

    /// Compares every pool zone, active allocation and delegation with what
    /// PowerDNS serves and fixes the differences (none with `dry`).
    pub async fn reconcile(&self, dry: bool) -> Result<Vec<Change>, ConvergeError> {
        let mut all = Vec::new();
        let zones: Vec<String> = self
            .client
            .list_zones()
            .await?
            .into_iter()
            .map(|z| canonical(&z.name))
            .collect();
        for pool in &self.config.pools {
            self.ensure_pool_zone(pool, dry, &mut all).await?;
            let mut subs: BTreeSet<String> = self
                .store
                .list_live(&pool.domain.without_dot())
                .await?
                .into_iter()
                .filter(|a| a.state == AllocationState::Active)
                .map(|a| a.subdomain)
                .collect();
            // Stale: child zones and delegations with no active allocation.
            let suffix = format!(".{}", pool.domain.fqdn());
            let label_of = |n: &str| {
                n.strip_suffix(&suffix)
                    .filter(|l| !l.is_empty() && !l.contains('.'))
                    .map(str::to_string)
            };
            subs.extend(zones.iter().filter_map(|z| label_of(z)));
            if let Some(z) = self.client.zone(&pool.domain.fqdn()).await? {
                subs.extend(
                    z.rrsets
                        .iter()
                        .filter(|r| r.rtype == "NS" || r.rtype == "DS")
                        .filter_map(|r| label_of(&canonical(&r.name))),
                );
            }
            for sub in subs {
                all.extend(self.converge_child(pool, &sub, dry).await?);
            }
        }
        Ok(all)
    }

    async fn insert_op(
        &self,
        tx: &mut AnyConnection,
        kind: &str,
        pool: &PoolConfig,
        child: &DomainName,
    ) -> Result<i64, BackendError> {
        let label = child
            .without_dot()
            .strip_suffix(&format!(".{}", pool.domain.without_dot()))
            .unwrap_or_default()
            .to_string();
        let payload = serde_json::to_string(&Payload {
            pool: pool.domain.without_dot(),
            subdomain: label,
        })?;
        let now = now_ms();
        let ms = |s: u64| i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX);
        // Not due for the worker while the API tries it inline.
        let inline = i64::try_from(self.pdns.inline_ms).unwrap_or(0);
        Ok(ops::insert_operation(
            tx,
            &NewOperation {
                kind,
                subject: &child.without_dot(),
                state: STEP_APPLY,
                payload: &payload,
                next_run_at: now + inline,
                deadline_at: now.saturating_add(ms(self.config.operations.deadline_secs)),
            },
        )
        .await?)
    }
}

impl PowerDnsBackend {
    /// A template with LUA records needs `enable-lua-records` on the server:
    /// fail at start with a clear error rather than at the first commit.
    /// An unreachable server is not an error here (operations retry later).
    async fn check_lua_support(&self) -> Result<(), BackendError> {
        let lua_pools: Vec<String> = self
            .config
            .pools
            .iter()
            .filter(|p| {
                p.template.iter().any(|t| {
                    matches!(&t.target, crate::zone::template::TemplateTarget::Literal(d)
                        if u16::from(d.record_type()) == crate::lua::LUA_TYPE_CODE)
                })
            })
            .map(|p| p.domain.without_dot())
            .collect();
        if lua_pools.is_empty() {
            return Ok(());
        }
        match self.client.config_setting("enable-lua-records").await {
            Ok(Some(v)) if matches!(v.as_str(), "no" | "false" | "0" | "") => {
                Err(BackendError::Template(format!(
                    "the record templates of pool(s) {} contain LUA records, but the PowerDNS \
                     server has enable-lua-records={v}; set enable-lua-records=yes (or shared) \
                     in pdns.conf",
                    lua_pools.join(", ")
                )))
            }
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read PowerDNS settings to check LUA support");
                Ok(())
            }
        }
    }
}

#[async_trait]
impl ZoneBackend for PowerDnsBackend {
    fn name(&self) -> &'static str {
        "powerdns"
    }

    async fn ensure_pool_zones(&self) -> Result<(), BackendError> {
        self.check_lua_support().await?;
        for pool in &self.config.pools {
            let mut ch = Vec::new();
            match self.ensure_pool_zone(pool, false, &mut ch).await {
                Ok(()) => {
                    for c in ch {
                        tracing::info!(change = %c, "powerdns pool zone");
                    }
                }
                // Not fatal: operations and the periodic reconcile create it later.
                Err(e) => {
                    tracing::warn!(pool = %pool.domain, error = %e, "cannot ensure the pool zone in PowerDNS yet")
                }
            }
        }
        Ok(())
    }

    async fn commit_child(
        &self,
        tx: &mut AnyConnection,
        c: &ChildZone<'_>,
        _actor: &str,
    ) -> Result<Option<i64>, BackendError> {
        // Fail now on a template that cannot render, not later in the worker.
        self.child_rrsets(c.pool, c.child, c.lb, c.console)
            .map_err(BackendError::Template)?;
        Ok(Some(
            self.insert_op(tx, KIND_PDNS_COMMIT, c.pool, c.child)
                .await?,
        ))
    }

    async fn release_child(
        &self,
        tx: &mut AnyConnection,
        pool: &PoolConfig,
        child: &DomainName,
        _actor: &str,
    ) -> Result<Option<i64>, BackendError> {
        Ok(Some(
            self.insert_op(tx, KIND_PDNS_RELEASE, pool, child).await?,
        ))
    }

    async fn settle(&self, id: i64) {
        let deadline = Instant::now() + Duration::from_millis(self.pdns.inline_ms);
        let lease_ms =
            i64::try_from(self.config.operations.lease_secs.saturating_mul(1000)).unwrap_or(60_000);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            let claimed = match self
                .store
                .claim_operation_id(id, &self.worker, lease_ms)
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(op = id, error = %e, "inline claim failed");
                    return;
                }
            };
            let Some((op, attempt)) = claimed else {
                // Final, or another worker holds it: wait for it a little.
                match self.store.operation(id).await {
                    Ok(Some(o)) if !o.is_final() => {
                        tokio::time::sleep(Duration::from_millis(50).min(left)).await;
                        continue;
                    }
                    _ => return,
                }
            };
            let outcome = match tokio::time::timeout(left, self.run_step(&op)).await {
                Ok(o) => o,
                Err(_) => StepOutcome::Retry {
                    after: None,
                    error: "PowerDNS did not answer within the inline budget".into(),
                },
            };
            let finish = finish_for(&op, &outcome, now_ms(), &self.config.operations);
            tracing::info!(op = id, kind = %op.kind, subject = %op.subject, outcome = finish.outcome, "operation step (inline)");
            if let Err(e) = self
                .store
                .finish_attempt(id, &self.worker, attempt, &finish)
                .await
            {
                tracing::warn!(op = id, error = %e, "recording the inline step failed");
            }
            if !matches!(outcome, StepOutcome::Advance { .. }) {
                return;
            }
        }
    }

    async fn operation_for(
        &self,
        child: &DomainName,
    ) -> Result<Option<OperationView>, BackendError> {
        let mut conn = self.store.pool().acquire().await?;
        let op = ops::latest_operation(
            &mut conn,
            &child.without_dot(),
            &[KIND_PDNS_COMMIT, KIND_PDNS_RELEASE],
        )
        .await?;
        Ok(op.as_ref().map(OperationView::from))
    }
}

#[async_trait]
impl StepRunner for PowerDnsBackend {
    async fn run_step(&self, op: &OperationRow) -> StepOutcome {
        let p: Payload = match serde_json::from_str(&op.payload) {
            Ok(p) => p,
            Err(e) => {
                return StepOutcome::Fail {
                    error: format!("bad payload: {e}"),
                }
            }
        };
        let Some(pool) = DomainName::parse(&p.pool)
            .ok()
            .and_then(|d| self.config.pool(&d).cloned())
        else {
            return StepOutcome::Fail {
                error: format!("pool {} is no longer configured", p.pool),
            };
        };
        match self.converge_child(&pool, &p.subdomain, false).await {
            Ok(ch) if ch.is_empty() => StepOutcome::Done {
                detail: "PowerDNS already matched".into(),
            },
            Ok(ch) => StepOutcome::Done {
                detail: ch
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            },
            Err(ConvergeError::Pdns(e)) => retry_or_fail(&e),
            Err(ConvergeError::Store(e)) => StepOutcome::Retry {
                after: None,
                error: e.to_string(),
            },
            Err(ConvergeError::Desired(e)) => StepOutcome::Fail { error: e },
        }
    }
}

/// `pdm import --from-powerdns URL`: adopts every zone `label.pool.` on that
/// server (for each configured pool) that has no live allocation as an
/// active allocation, taking the load balancer from the apex (else `*`) A/AAAA
/// and the console load balancer from `console` when it differs. Returns
/// `label.pool (lb[, console])` per adopted zone. Records are not changed:
/// run `pdm reconcile --dry-run` next to see what the templates would change.
pub async fn import_from(
    config: &Config,
    store: &Store,
    url: &str,
    dry: bool,
) -> Result<Vec<String>, Box<dyn std::error::Error + Send + Sync>> {
    let mut pcfg = match &config.backend.powerdns {
        Some(p) => p.clone(),
        None => {
            let key = std::env::var("PDM_POWERDNS_API_KEY")
                .map_err(|_| "set PDM_POWERDNS_API_KEY or configure [backend] for the API key")?;
            let raw = format!(
                "[backend]\nkind = \"powerdns\"\nurl = \"{}\"\napi_key = \"x\"\n[[nameservers]]\nname = \"ns.invalid\"\n",
                url.replace('"', "")
            );
            let mut c = Config::from_toml(&raw)?
                .backend
                .powerdns
                .ok_or("internal: no powerdns config")?;
            c.api_key = crate::config::ApiKey::from_secret(key);
            c
        }
    };
    pcfg.url = url.trim().trim_end_matches('/').to_string();
    let client = PdnsClient::new(&pcfg)?;
    let zones = client.list_zones().await?;
    let mut out = Vec::new();
    for pool in &config.pools {
        let suffix = format!(".{}", pool.domain.fqdn());
        let pool_name = pool.domain.without_dot();
        for z in &zones {
            let name = canonical(&z.name);
            let Some(label) = name
                .strip_suffix(&suffix)
                .filter(|l| !l.is_empty() && !l.contains('.'))
            else {
                continue;
            };
            let mut tx = store.pool().begin().await?;
            if rows::live(&mut tx, "", &pool_name, label).await?.is_some() {
                continue;
            }
            let Some(detail) = client.zone(&name).await? else {
                continue;
            };
            let addr = |owner: &str| {
                detail
                    .rrsets
                    .iter()
                    .filter(|r| {
                        canonical(&r.name) == owner && (r.rtype == "A" || r.rtype == "AAAA")
                    })
                    .flat_map(|r| r.records.iter())
                    .find_map(|x| x.content.parse::<IpAddr>().ok())
            };
            let Some(lb) = addr(&name).or_else(|| addr(&format!("*.{name}"))) else {
                eprintln!("skip {name}: no apex or wildcard A/AAAA to take the load balancer from");
                continue;
            };
            let console = addr(&format!("console.{name}")).filter(|c| *c != lb);
            let fqdn = name.trim_end_matches('.').to_string();
            out.push(match console {
                Some(c) => format!("{fqdn} ({lb}, console {c})"),
                None => format!("{fqdn} ({lb})"),
            });
            if dry {
                continue;
            }
            let now = now_ms();
            let token = crate::store::sha256_hex(uuid::Uuid::new_v4().to_string().as_bytes());
            let Some(row) = rows::insert_reservation(
                &mut tx,
                &pool_name,
                label,
                "import",
                &token,
                now,
                now + 60_000,
            )
            .await?
            else {
                continue;
            };
            rows::activate(
                &mut tx,
                row.allocation.id,
                &fqdn,
                &lb.to_string(),
                console.map(|c| c.to_string()).as_deref(),
                now,
            )
            .await?;
            tx.commit().await?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rr(name: &str, t: &str, ttl: u32, c: &[&str]) -> RRset {
        RRset::replace(name, t, ttl, c.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn diff_replaces_changed_and_prunes_extra() {
        let desired = vec![
            rr("a.test.", "SOA", 3600, &["x"]),
            rr("a.test.", "NS", 3600, &["ns1.test.", "ns2.test."]),
            rr("www.a.test.", "A", 300, &["192.0.2.1"]),
        ];
        let mut actual = vec![
            rr("a.test.", "SOA", 3600, &["y"]),
            rr("a.test.", "NS", 3600, &["NS2.test.", "ns1.test."]),
            rr("www.a.test.", "A", 300, &["192.0.2.9"]),
            rr("junk.a.test.", "TXT", 300, &["\"x\""]),
        ];
        for r in &mut actual {
            r.changetype = None;
        }
        let p = diff_rrsets(&desired, &actual, true);
        let got: Vec<String> = p
            .iter()
            .map(|r| format!("{:?} {} {}", r.changetype, r.name, r.rtype))
            .collect();
        assert_eq!(
            got,
            vec![
                "Some(\"REPLACE\") www.a.test. A",
                "Some(\"DELETE\") junk.a.test. TXT"
            ]
        );
        assert!(diff_rrsets(&desired[1..2], &actual[1..2], false).is_empty());
    }

    #[test]
    fn ds_of_takes_active_ksk_sha256() {
        let k = |active, kt: &str| client::Cryptokey {
            id: 1,
            active,
            keytype: kt.into(),
            ds: vec!["1 13 1 AA".into(), "1 13 2 BB".into(), "1 13 4 CC".into()],
        };
        assert_eq!(ds_of(&[k(true, "csk")]), vec!["1 13 2 bb".to_string()]);
        assert!(ds_of(&[k(false, "csk"), k(true, "zsk")]).is_empty());
    }

    #[test]
    fn pdns_errors_map_to_retry_or_fail() {
        let r = retry_or_fail(&PdnsError::Unavailable("connection refused".into()));
        assert!(matches!(r, StepOutcome::Retry { after: None, .. }));
        assert!(matches!(
            retry_or_fail(&PdnsError::Unauthorized(401)),
            StepOutcome::Retry { .. }
        ));
        let f = retry_or_fail(&PdnsError::Rejected {
            op: "patch rrsets".into(),
            status: 422,
            message: "Name is out of zone".into(),
        });
        assert!(matches!(f, StepOutcome::Fail { error } if error.contains("out of zone")));
    }
}

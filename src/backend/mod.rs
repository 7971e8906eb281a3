//! Zone backends (docs/architecture.md): where the zones pool commits create live.
//!
//! - [`EmbeddedBackend`] (default): the store, inside the commit's own SQL
//!   transaction; pdm's DNS server serves it.
//! - [`powerdns::PowerDnsBackend`]: a PowerDNS Authoritative server driven
//!   over its HTTP API. The commit's transaction records the allocation and
//!   a durable `pdns-commit` / `pdns-release` operation; the operation makes
//!   PowerDNS match the store (idempotently, with backoff), first inline for
//!   a bounded time, then in the operations worker.

mod apex;
pub mod powerdns;

use apex::{apex_hickory, apex_records, glue, glue_hickory, ns_records};

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use hickory_proto::dnssec::rdata::DNSKEY;
use serde::Serialize;
use sqlx::AnyConnection;

use crate::config::{Config, PoolConfig};
use crate::dnssec::SigningProfile;
use crate::keyring::{FreshKeys, Keyring};
use crate::model::DomainName;
use crate::store::operations::OperationRow;
use crate::store::zones::{self, StoredRecord, ZoneKind};
use crate::store::{keys, Store, StoreError};
use crate::zone::template;

/// What a zone backend fails with. Every variant is credential-free: PowerDNS
/// errors carry the upstream status and message, never the API key.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The store failed (or holds something pdm cannot interpret).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// DNSSEC keys could not be created or published.
    #[error(transparent)]
    Dnssec(#[from] crate::keyring::KeyringError),
    /// A record template could not be rendered, or the server cannot serve it.
    #[error("record template: {0}")]
    Template(String),
    /// The PowerDNS API failed: unreachable, timed out, refused the key, or
    /// rejected the request (with its status and message).
    #[error(transparent)]
    PowerDns(#[from] powerdns::client::PdnsError),
    /// The backend's settings cannot be used.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// An operation's payload could not be encoded.
    #[error("operation payload: {0}")]
    Payload(#[from] serde_json::Error),
    /// This backend cannot do what was asked.
    #[error("{0}")]
    Unsupported(String),
}

impl From<sqlx::Error> for BackendError {
    fn from(e: sqlx::Error) -> Self {
        BackendError::Store(StoreError::Db(e))
    }
}

/// Operation kind: make PowerDNS serve a committed child and its delegation.
pub const KIND_PDNS_COMMIT: &str = "pdns-commit";
/// Operation kind: remove a released child and its delegation from PowerDNS.
pub const KIND_PDNS_RELEASE: &str = "pdns-release";
/// Operation kind: make PowerDNS serve (or drop) a customer's own domain.
pub const KIND_PDNS_DOMAIN: &str = "pdns-domain";

/// A child zone being committed.
#[derive(Debug, Clone)]
pub struct ChildZone<'a> {
    /// Its pool.
    pub pool: &'a PoolConfig,
    /// `sub.pool.`.
    pub child: &'a DomainName,
    /// The allocation's load balancer.
    pub lb: IpAddr,
    /// The console load balancer, if any.
    pub console: Option<IpAddr>,
}

/// A standalone zone as created: whether it is signed, and the operation
/// that carries the creation out (PowerDNS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DomainZone {
    /// DNSSEC is on for it.
    pub signed: bool,
    /// The durable operation, when the backend uses one.
    pub operation: Option<i64>,
}

/// How a backend operation stands, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperationView {
    /// Operation id (`GET /api/v1/operations/{id}`).
    pub id: i64,
    /// `pdns-commit` or `pdns-release`.
    pub kind: String,
    /// `pending`, `done` or `failed`.
    pub status: &'static str,
    /// Attempts of the current step.
    pub attempts: i64,
    /// The last failure, credential-free.
    #[serde(rename = "lastError")]
    pub last_error: Option<String>,
}

impl From<&OperationRow> for OperationView {
    fn from(o: &OperationRow) -> Self {
        OperationView {
            id: o.id,
            kind: o.kind.clone(),
            status: match o.state.as_str() {
                "done" => "done",
                "failed" => "failed",
                _ => "pending",
            },
            attempts: o.total_attempts,
            last_error: o.last_error.clone(),
        }
    }
}

/// Where commit, release and pool-zone bootstrap write zones.
#[async_trait]
pub trait ZoneBackend: Send + Sync + std::fmt::Debug {
    /// `embedded` or `powerdns`.
    fn name(&self) -> &'static str;

    /// Creates each pool zone if missing and keeps its apex NS, glue and keys in line.
    async fn ensure_pool_zones(&self) -> Result<(), BackendError>;

    /// Inside the commit's transaction (the allocation is already active):
    /// create the child or record the operation that will. Returns the operation id.
    async fn commit_child(
        &self,
        tx: &mut AnyConnection,
        c: &ChildZone<'_>,
        actor: &str,
    ) -> Result<Option<i64>, BackendError>;

    /// Inside the release's transaction: remove the child and its delegation,
    /// or record the operation that will. Returns the operation id.
    async fn release_child(
        &self,
        tx: &mut AnyConnection,
        pool: &PoolConfig,
        child: &DomainName,
        actor: &str,
    ) -> Result<Option<i64>, BackendError>;

    /// Inside the caller's transaction: point a live child's template
    /// records at new load balancers (`was` → `now`), keeping its keys, DS and
    /// delegation. Returns the operation id.
    async fn update_child(
        &self,
        _tx: &mut AnyConnection,
        _was: &ChildZone<'_>,
        _now: &ChildZone<'_>,
        _actor: &str,
    ) -> Result<Option<i64>, BackendError> {
        Err(BackendError::Unsupported(format!(
            "the {} backend cannot change a live child's load balancer; release and commit again",
            self.name()
        )))
    }

    /// Inside the caller's transaction: create a standalone zone (a
    /// customer's own domain) with pdm's SOA and NS, signed when DNSSEC is
    /// on, or record the operation that will.
    async fn create_domain_zone(
        &self,
        tx: &mut AnyConnection,
        zone: &DomainName,
        actor: &str,
    ) -> Result<DomainZone, BackendError>;

    /// Inside the caller's transaction: remove a standalone zone and its
    /// keys, or record the operation that will. Returns the operation id.
    async fn delete_domain_zone(
        &self,
        tx: &mut AnyConnection,
        zone: &DomainName,
        actor: &str,
    ) -> Result<Option<i64>, BackendError>;

    /// The keys of `zone` that its parent must point at (DS / DNSKEY for the
    /// registrar and the propagation check): KSKs and CSKs in service.
    async fn parent_dnskeys(&self, zone: &DomainName) -> Result<Vec<DNSKEY>, BackendError>;

    /// After the transaction committed: run operation `id` inline for a
    /// bounded time, so the common case answers `done`.
    async fn settle(&self, _id: i64) {}

    /// The newest backend operation about `child`, if the backend uses them.
    async fn operation_for(
        &self,
        _child: &DomainName,
    ) -> Result<Option<OperationView>, BackendError> {
        Ok(None)
    }
}

/// The store backend: zones, keys and delegations change in the caller's transaction.
#[derive(Debug, Clone)]
pub struct EmbeddedBackend {
    store: Store,
    config: Arc<Config>,
    keyring: Option<Arc<Keyring>>,
}

impl EmbeddedBackend {
    /// A backend over `store`.
    pub fn new(store: Store, config: Arc<Config>, keyring: Option<Arc<Keyring>>) -> Self {
        EmbeddedBackend {
            store,
            config,
            keyring,
        }
    }

    async fn set_delegation(
        &self,
        conn: &mut AnyConnection,
        pool: &PoolConfig,
        child: &DomainName,
        ds: Option<Vec<StoredRecord>>,
        actor: &str,
    ) -> Result<(), BackendError> {
        // NS and DS change together, in one RRset write (one serial bump).
        let records = match ds {
            Some(ds) => {
                let mut r = ns_records(&self.config, child);
                r.extend(ds);
                r
            }
            None => Vec::new(),
        };
        let pool_zone = pool.domain.fqdn();
        match zones::set_rrsets_of(
            conn,
            &pool_zone,
            &child.fqdn(),
            &["NS", "DS"],
            &records,
            actor,
        )
        .await?
        {
            Some(_) => Ok(()),
            None => Err(BackendError::Store(StoreError::Corrupt(format!(
                "pool zone {} is missing",
                pool.domain
            )))),
        }
    }

    /// With DNSSEC on: keys for the zone `fqdn` about to be created, their
    /// apex records added to `records` (see [`Keyring::fresh_keys`]).
    fn fresh_keys(
        &self,
        fqdn: &str,
        profile: SigningProfile,
        records: &mut Vec<StoredRecord>,
    ) -> Result<Option<(&Keyring, FreshKeys)>, BackendError> {
        let Some(k) = self.keyring.as_deref() else {
            return Ok(None);
        };
        let fresh = k.fresh_keys(fqdn, profile)?;
        records.extend(k.fresh_key_records(&fresh)?);
        Ok(Some((k, fresh)))
    }

    /// Signs a pool zone that is not signed yet (first start, or DNSSEC just
    /// enabled) and republishes its key records otherwise.
    async fn ensure_signed(
        &self,
        conn: &mut AnyConnection,
        zone: &str,
        pool: &PoolConfig,
    ) -> Result<(), BackendError> {
        let Some(k) = &self.keyring else {
            return Ok(());
        };
        if keys::zone_dnssec(conn, zone).await?.is_none() {
            if !keys::zone_keys(conn, zone).await?.is_empty() {
                keys::delete_zone_keys(conn, zone).await?;
            }
            k.secure_zone(conn, zone, pool.signing, "startup").await?;
        } else {
            k.publish(conn, zone, "startup").await?;
        }
        Ok(())
    }
}

#[async_trait]
impl ZoneBackend for EmbeddedBackend {
    fn name(&self) -> &'static str {
        "embedded"
    }

    async fn ensure_pool_zones(&self) -> Result<(), BackendError> {
        for pool in &self.config.pools {
            let mut tx = self.store.begin().await?;
            let fqdn = pool.domain.fqdn();
            let zone = match zones::get_zone(&mut tx, &fqdn).await? {
                Some(z) => z,
                None => {
                    let mut records = apex_records(&self.config, &pool.domain);
                    records.extend(glue(&self.config, pool));
                    zones::create_zone_with(
                        &mut tx,
                        &fqdn,
                        ZoneKind::Pool,
                        pool.serial_policy,
                        &records,
                        "startup",
                    )
                    .await?;
                    self.ensure_signed(&mut tx, &fqdn, pool).await?;
                    tx.commit().await?;
                    continue;
                }
            };
            // The pool's policy may have changed since its zones were made.
            zones::set_serial_policy(&mut tx, &fqdn, pool.serial_policy).await?;
            zones::set_rrsets(
                &mut tx,
                &zone,
                &fqdn,
                &["NS"],
                &ns_records(&self.config, &pool.domain),
                "startup",
            )
            .await?;
            for ns in &self.config.nameservers {
                if pool.domain.name().zone_of(ns.name.name()) {
                    let zone = zones::get_zone(&mut tx, &fqdn)
                        .await?
                        .ok_or_else(|| StoreError::Corrupt(format!("zone {fqdn} vanished")))?;
                    let glue: Vec<StoredRecord> = glue(&self.config, pool)
                        .into_iter()
                        .filter(|r| r.name == ns.name.fqdn())
                        .collect();
                    zones::set_rrsets(
                        &mut tx,
                        &zone,
                        &ns.name.fqdn(),
                        &["A", "AAAA"],
                        &glue,
                        "startup",
                    )
                    .await?;
                }
            }
            self.ensure_signed(&mut tx, &fqdn, pool).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    async fn commit_child(
        &self,
        tx: &mut AnyConnection,
        c: &ChildZone<'_>,
        actor: &str,
    ) -> Result<Option<i64>, BackendError> {
        let child = c.child;
        let mut records = apex_records(&self.config, child);
        records.extend(
            template::render(&c.pool.template, child.name(), c.lb, c.console)
                .map_err(BackendError::Template)?
                .iter()
                .map(StoredRecord::from_record),
        );
        // Keys, DNSKEY and the parent's DS appear in the same transaction as
        // the zone: there is never a signed child without its DS, or a DS
        // without its child. The zone is created with its key records, one
        // journal entry (publishing them after made a second entry, and ~10
        // more statements per commit).
        let fresh = self.fresh_keys(&child.fqdn(), c.pool.signing, &mut records)?;
        // A zone left by an imported file or an earlier bug must not block a
        // legitimate commit: the allocation owns the name now.
        zones::delete_zone(tx, &child.fqdn(), actor).await?;
        keys::delete_zone_keys(tx, &child.fqdn()).await?;
        zones::create_zone_with(
            tx,
            &child.fqdn(),
            ZoneKind::Child,
            c.pool.serial_policy,
            &records,
            actor,
        )
        .await?;
        let ds = match &fresh {
            Some((k, fresh)) => k.store_fresh_keys(tx, fresh).await?,
            None => Vec::new(),
        };
        self.set_delegation(tx, c.pool, child, Some(ds), actor)
            .await?;
        Ok(None)
    }

    async fn update_child(
        &self,
        tx: &mut AnyConnection,
        was: &ChildZone<'_>,
        now: &ChildZone<'_>,
        actor: &str,
    ) -> Result<Option<i64>, BackendError> {
        let fqdn = now.child.fqdn();
        let render = |c: &ChildZone<'_>| {
            template::render(&c.pool.template, c.child.name(), c.lb, c.console)
                .map(|rs| rs.iter().map(StoredRecord::from_record).collect::<Vec<_>>())
                .map_err(BackendError::Template)
        };
        let (old, new) = (render(was)?, render(now)?);
        let Some(zone) = zones::get_zone(tx, &fqdn).await? else {
            return Err(BackendError::Store(StoreError::Corrupt(format!(
                "the live child {fqdn} has no zone"
            ))));
        };
        // Per owner, the RRsets the template writes with either address set:
        // an A that becomes an AAAA must go, not stay beside it.
        let mut owners: Vec<&str> = old.iter().chain(&new).map(|r| r.name.as_str()).collect();
        owners.sort_unstable();
        owners.dedup();
        for owner in owners {
            let mut types: Vec<&str> = old
                .iter()
                .chain(&new)
                .filter(|r| r.name == owner)
                .map(|r| r.rtype.as_str())
                .collect();
            types.sort_unstable();
            types.dedup();
            let records: Vec<StoredRecord> =
                new.iter().filter(|r| r.name == owner).cloned().collect();
            zones::set_rrsets(tx, &zone, owner, &types, &records, actor).await?;
        }
        Ok(None)
    }

    async fn release_child(
        &self,
        tx: &mut AnyConnection,
        pool: &PoolConfig,
        child: &DomainName,
        actor: &str,
    ) -> Result<Option<i64>, BackendError> {
        zones::delete_zone(tx, &child.fqdn(), actor).await?;
        keys::delete_zone_keys(tx, &child.fqdn()).await?;
        self.set_delegation(tx, pool, child, None, actor).await?;
        Ok(None)
    }

    async fn create_domain_zone(
        &self,
        tx: &mut AnyConnection,
        zone: &DomainName,
        actor: &str,
    ) -> Result<DomainZone, BackendError> {
        let fqdn = zone.fqdn().to_ascii_lowercase();
        let mut records = apex_records(&self.config, zone);
        // Created with its key records: one journal entry (see commit_child).
        let profile = self.keyring.as_ref().map(|k| k.config().profile());
        let fresh = match profile {
            Some(p) => self.fresh_keys(&fqdn, p, &mut records)?,
            None => None,
        };
        // Kind `imported`: the zones table's kinds predate byo; the
        // byo_domains row is what marks the zone as a managed customer domain.
        zones::create_zone_with(
            tx,
            &fqdn,
            ZoneKind::Imported,
            self.config.serial_policy,
            &records,
            actor,
        )
        .await?;
        let signed = match &fresh {
            Some((k, fresh)) => !k.store_fresh_keys(tx, fresh).await?.is_empty(),
            None => false,
        };
        Ok(DomainZone {
            signed,
            operation: None,
        })
    }

    async fn delete_domain_zone(
        &self,
        tx: &mut AnyConnection,
        zone: &DomainName,
        actor: &str,
    ) -> Result<Option<i64>, BackendError> {
        let fqdn = zone.fqdn().to_ascii_lowercase();
        zones::delete_zone(tx, &fqdn, actor).await?;
        keys::delete_zone_keys(tx, &fqdn).await?;
        Ok(None)
    }

    async fn parent_dnskeys(&self, zone: &DomainName) -> Result<Vec<DNSKEY>, BackendError> {
        let fqdn = zone.fqdn().to_ascii_lowercase();
        Ok(self
            .store
            .zone_keys(&fqdn)
            .await?
            .iter()
            .filter(|r| r.in_parent && r.role != "zsk" && r.state != "removed")
            .filter_map(|r| crate::keyring::parse_dnskey(&r.dnskey))
            .collect())
    }
}

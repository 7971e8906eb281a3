//! The PowerDNS backend: pdm's store holds the allocations (the desired
//! state); PowerDNS holds and serves the zones, their keys and the
//! delegations. With this backend pdm's own DNS server does not serve pool
//! or child zones (the store has no copy of them): PowerDNS is the authority.
//!
//! Every write goes through one idempotent function, `converge_child` (converge.rs):
//! it reads the allocation from the store and makes PowerDNS match it
//! (active → child zone with SOA/NS/template records, secured, NSEC3, and
//! NS+DS in the pool zone in one PATCH; otherwise → delegation removed, child
//! zone deleted). The `pdns-commit` / `pdns-release` operations run it, so
//! their order does not matter and a retry after any crash is safe;
//! `pdm reconcile` runs it for every allocation and stale delegation.
//!
//! By job: `diff.rs` (pure: desired vs actual RRsets), `converge.rs`
//! (applies a diff through `client.rs`), `runner.rs` (the durable
//! operations) and `import.rs` (`pdm import --from-powerdns`).

pub mod client;
mod converge;
mod diff;
mod import;
mod runner;

pub use converge::ConvergeError;
pub use diff::Change;

use diff::to_rrsets;
pub use import::import_from;

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use hickory_proto::dnssec::rdata::DNSKEY;
use sqlx::AnyConnection;

use self::client::{PdnsClient, RRset};
use super::{
    apex_hickory, glue_hickory, BackendError, ChildZone, DomainZone, OperationView, ZoneBackend,
    KIND_PDNS_COMMIT, KIND_PDNS_RELEASE,
};
use crate::config::{Config, PoolConfig, PowerDnsConfig};
use crate::model::DomainName;
use crate::store::operations as ops;
use crate::store::Store;
use crate::zone::template;

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

/// PowerDNS's name of a key algorithm pdm knows (its number otherwise,
/// which PowerDNS accepts too).
pub(super) fn pdns_algorithm(a: crate::dnssec::KeyAlgorithm) -> String {
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

    /// The backend when `[backend] kind = "powerdns"`, `None` otherwise.
    pub fn from_config(store: &Store, config: &Arc<Config>) -> Result<Option<Self>, BackendError> {
        if config.backend.kind != crate::config::BackendKind::PowerDns {
            return Ok(None);
        }
        Self::new(store.clone(), config.clone()).map(Some)
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
    fn child_rrsets(
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

    /// The algorithm of the CSK PowerDNS makes for `pool`'s zones (PowerDNS
    /// spelling): the pool's `dnssec_algorithm`, else `[backend] algorithm`,
    /// else `[dnssec] algorithm`.
    fn algorithm_for(&self, pool: &PoolConfig) -> String {
        match (pool.dnssec_algorithm, &self.pdns.algorithm) {
            (Some(a), _) => pdns_algorithm(a),
            (None, Some(b)) => b.clone(),
            (None, None) => pdns_algorithm(self.config.dnssec.algorithm),
        }
    }

    /// Whether `pool`'s zones get NSEC3 ([`diff::NSEC3PARAM`]): the pool's
    /// `dnssec_denial = "nsec3"`, else `[backend] nsec3`. (A pool's
    /// `dnssec_denial = "compact"` is refused at config load: PowerDNS has no
    /// compact denial.)
    fn nsec3_for(&self, pool: &PoolConfig) -> bool {
        match pool.dnssec_denial {
            Some(crate::dnssec::DenialMode::Nsec3) => true,
            Some(crate::dnssec::DenialMode::Compact) | None => self.pdns.nsec3,
        }
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

    async fn create_domain_zone(
        &self,
        tx: &mut AnyConnection,
        zone: &DomainName,
        _actor: &str,
    ) -> Result<DomainZone, BackendError> {
        Ok(DomainZone {
            signed: self.signed(),
            operation: Some(self.insert_domain_op(tx, zone).await?),
        })
    }

    async fn delete_domain_zone(
        &self,
        tx: &mut AnyConnection,
        zone: &DomainName,
        _actor: &str,
    ) -> Result<Option<i64>, BackendError> {
        Ok(Some(self.insert_domain_op(tx, zone).await?))
    }

    async fn parent_dnskeys(&self, zone: &DomainName) -> Result<Vec<DNSKEY>, BackendError> {
        // Not created yet (the operation is pending): no keys to point at.
        if self.client.zone(&zone.fqdn()).await?.is_none() {
            return Ok(Vec::new());
        }
        let keys = self.client.cryptokeys(&zone.fqdn()).await?;
        Ok(diff::parent_keys_of(&keys))
    }

    async fn settle(&self, id: i64) {
        self.run_inline(id).await
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

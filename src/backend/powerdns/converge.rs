//! Convergence: makes PowerDNS match the store for one child, a pool zone, or
//! everything (`pdm reconcile`), applying the diffs of diff.rs through the client.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde_json::json;

use super::client::{canonical, PdnsError, RRset};
use super::diff::to_rrsets;
use super::diff::{
    children_in_powerdns, delegation_patch, describe, diff_rrsets, ds_of, zone_changes, Change,
    Delegation, NSEC3PARAM,
};
use super::PowerDnsBackend;
use crate::backend::apex::apex_hickory;
use crate::config::PoolConfig;
use crate::model::{AllocationState, DomainName};
use crate::store::allocations as rows;

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
        ch.extend(zone_changes(&zone, &patch));
        if !dry {
            self.client.patch(&zone, &patch).await?;
        }
        Ok(true)
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
    pub(super) async fn ensure_pool_zone(
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
        let desired = ds.as_ref().map(|ds| Delegation {
            ns: self
                .config
                .nameservers
                .iter()
                .map(|n| n.name.fqdn())
                .collect(),
            ds: ds.clone(),
            ds_ttl: self.config.dnssec.dnskey_ttl,
        });
        let patch = delegation_patch(&name, desired.as_ref(), &actual);
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
    pub(super) async fn converge_child(
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

    /// Makes PowerDNS match the store for a customer's own domain `zone`:
    /// served (SOA, NS, keys, NSEC3 per `[backend]`) while its byo row exists,
    /// deleted otherwise. Other RRsets in the zone are left alone: the
    /// customer's records may live there.
    pub(super) async fn converge_domain(
        &self,
        zone: &DomainName,
        dry: bool,
    ) -> Result<Vec<Change>, ConvergeError> {
        let domain = zone.without_dot().to_ascii_lowercase();
        let fqdn = zone.fqdn().to_ascii_lowercase();
        let mut ch = Vec::new();
        if self.store.byo_domain(&domain).await?.is_some() {
            let desired = to_rrsets(&apex_hickory(&self.config, zone));
            let exists = self
                .ensure_zone(&fqdn, &desired, false, dry, &mut ch)
                .await?;
            if exists && self.signed() {
                let algorithm = match &self.pdns.algorithm {
                    Some(a) => a.clone(),
                    None => super::pdns_algorithm(self.config.dnssec.algorithm),
                };
                self.ensure_secured(&fqdn, &algorithm, self.pdns.nsec3, dry, &mut ch)
                    .await?;
            }
        } else if self.client.zone(&fqdn).await?.is_some() {
            ch.push(Change {
                zone: fqdn.clone(),
                action: "delete-zone",
                detail: "no longer a managed domain".into(),
            });
            if !dry {
                self.client.delete_zone(&fqdn).await?;
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
            let pool_rrsets = self
                .client
                .zone(&pool.domain.fqdn())
                .await?
                .map(|z| z.rrsets)
                .unwrap_or_default();
            subs.extend(children_in_powerdns(
                &pool.domain.fqdn(),
                &zones,
                &pool_rrsets,
            ));
            for sub in subs {
                all.extend(self.converge_child(pool, &sub, dry).await?);
            }
        }
        for row in self.store.byo_domains().await? {
            if let Ok(zone) = DomainName::parse(&row.domain) {
                all.extend(self.converge_domain(&zone, dry).await?);
            }
        }
        Ok(all)
    }
}

impl PowerDnsBackend {
    /// Periodic `reconcile` (every `reconcile_interval_secs`; 0: off), for
    /// `pdm serve`: drift is fixed and logged.
    pub async fn run_reconcile(self) {
        let secs = self.interval_secs();
        if secs == 0 {
            return;
        }
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
            match self.reconcile(false).await {
                Ok(changes) => {
                    for c in changes {
                        tracing::warn!(change = %c, "reconcile fixed a drift in PowerDNS");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "reconcile with PowerDNS failed"),
            }
        }
    }
}

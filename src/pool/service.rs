//! The pool allocation service: check, reserve, commit, release.
//!
//! Commit and release change the allocation row and, through the zone
//! backend (src/backend/), the child zone and the delegation in the pool
//! zone in ONE transaction: the embedded backend writes them there, the
//! PowerDNS backend records the durable operation that will. DNS never shows
//! half of a commit and a release never leaves a zone or delegation behind.

use super::reserved::is_reserved;
use crate::backend::{BackendError, ChildZone, EmbeddedBackend, OperationView, ZoneBackend};
use crate::config::{Config, PoolConfig};
use crate::keyring::Keyring;
use crate::model::{Allocation, AllocationState, DomainName, Label, LabelError};
use crate::store::allocations as rows;
use crate::store::{hash_matches, now_ms, sha256_hex, Store, StoreError};
use std::net::IpAddr;
use std::sync::Arc;

/// Everything that can go wrong in a pool operation, one variant per API code.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The pool domain is not managed here.
    #[error("pool domain {0} is not managed by this pdm")]
    UnsupportedPool(String),
    /// The subdomain label is invalid.
    #[error("{0}")]
    InvalidFormat(#[from] LabelError),
    /// The label is on the reserved list.
    #[error("subdomain {0:?} is reserved")]
    ReservedName(String),
    /// Already reserved or active.
    #[error("this subdomain is already reserved or active")]
    Conflict,
    /// No live allocation for the name.
    #[error("no reservation or active allocation for {0}")]
    NotFound(String),
    /// The reservation token does not match.
    #[error("reservation token does not match")]
    TokenMismatch,
    /// The reservation's TTL ran out before commit.
    #[error("the reservation expired at {0}; reserve again")]
    Expired(String),
    /// `loadBalancerIP` absent.
    #[error("loadBalancerIP is required")]
    MissingLbIp,
    /// `loadBalancerIP` not an IP address.
    #[error("loadBalancerIP {0:?} is not an IPv4 or IPv6 address")]
    InvalidLbIp(String),
    /// `consoleLoadBalancerIP` not an IP address.
    #[error("consoleLoadBalancerIP {0:?} is not an IPv4 or IPv6 address")]
    InvalidConsoleLbIp(String),
    /// `sovereignFQDN` is not `sub.pool`.
    #[error("sovereignFQDN {given:?} must equal {expected:?}")]
    FqdnMismatch {
        /// What the caller sent.
        given: String,
        /// `sub.pool`.
        expected: String,
    },
    /// The child's name could not be built (a config error surfaced late).
    #[error("record template: {0}")]
    Template(String),
    /// The zone backend failed (store, keys, template or PowerDNS) outside a
    /// durable operation.
    #[error("zone backend: {0}")]
    Backend(#[from] BackendError),
    /// Persistence failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The name is held by another owner (`createdBy`).
    #[error("{0}")]
    OwnedByAnother(String),
}

impl From<sqlx::Error> for PoolError {
    fn from(e: sqlx::Error) -> Self {
        PoolError::Store(StoreError::Db(e))
    }
}

/// Outcome of `check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// Free: the FQDN it would get.
    Available(String),
    /// Not free, with a reason code and a human detail.
    Unavailable(&'static str, String),
}

/// Input of `commit`.
#[derive(Debug, Clone, Default)]
pub struct CommitRequest {
    /// The label.
    pub subdomain: String,
    /// Token from `reserve`.
    pub token: String,
    /// Optional; must equal `sub.pool` when given.
    pub sovereign_fqdn: Option<String>,
    /// Main load balancer.
    pub lb_ip: Option<String>,
    /// Console load balancer.
    pub console_lb_ip: Option<String>,
}

/// Input of [`PoolService::ensure_active`], the create-or-get by name.
#[derive(Debug, Clone, Default)]
pub struct EnsureRequest {
    /// Main load balancer.
    pub lb_ip: Option<String>,
    /// Console load balancer.
    pub console_lb_ip: Option<String>,
    /// The owner: another owner's allocation is never adopted.
    pub created_by: String,
    /// A reservation to consume (the signup wizard's hold), if any.
    pub token: Option<String>,
}

/// How many times a create-or-get looks again after losing a race for the
/// name or finding the owner's own hold in progress.
const ENSURE_TRIES: usize = 40;
/// How long to wait before looking again at the owner's hold in progress.
const ENSURE_WAIT: std::time::Duration = std::time::Duration::from_millis(50);
/// A hold of the owner's younger than this is a create-or-get still running
/// (wait for it); an older one was left by a call that died (take it over).
const ABANDONED_AFTER_MS: i64 = 30_000;

/// The allocation service.
#[derive(Debug, Clone)]
pub struct PoolService {
    store: Store,
    config: Arc<Config>,
    /// Where child zones and delegations are written.
    backend: Arc<dyn ZoneBackend>,
}

/// How often expired reservations are marked as such.
const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl PoolService {
    /// A service over `store` for the pools in `config`, with the embedded backend.
    pub fn new(store: Store, config: Arc<Config>, keyring: Option<Arc<Keyring>>) -> Self {
        let backend = Arc::new(EmbeddedBackend::new(
            store.clone(),
            config.clone(),
            keyring.clone(),
        ));
        Self::with_backend(store, config, backend)
    }

    /// A service writing zones through `backend`.
    pub fn with_backend(store: Store, config: Arc<Config>, backend: Arc<dyn ZoneBackend>) -> Self {
        PoolService {
            store,
            config,
            backend,
        }
    }

    /// Marks due reservations expired, forever (for `pdm serve`). Cosmetic:
    /// reserve and commit decide expiry from `expires_at` themselves.
    pub async fn sweep_expired(self) {
        loop {
            tokio::time::sleep(SWEEP_INTERVAL).await;
            match self.store.expire_due(now_ms()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(expired = n, "reservations expired"),
                Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
            }
        }
    }

    /// The zone backend.
    pub fn backend(&self) -> &Arc<dyn ZoneBackend> {
        &self.backend
    }

    /// The newest backend operation about `sub.pool` (None with the embedded backend).
    pub async fn operation(
        &self,
        pool: &str,
        sub: &str,
    ) -> Result<Option<OperationView>, PoolError> {
        let pool = self.pool(pool)?;
        let Ok(child) = pool.domain.child(sub) else {
            return Ok(None);
        };
        Ok(self.backend.operation_for(&child).await?)
    }

    /// Resolve a pool domain from user input.
    pub fn pool(&self, domain: &str) -> Result<&PoolConfig, PoolError> {
        let name = DomainName::parse(domain)
            .map_err(|_| PoolError::UnsupportedPool(domain.to_string()))?;
        self.config
            .pool(&name)
            .ok_or_else(|| PoolError::UnsupportedPool(name.without_dot()))
    }

    /// Is `sub` free in `pool`? Reads only; never consults DNS.
    pub async fn check(&self, pool: &str, sub: &str) -> Result<Availability, PoolError> {
        let label = match Label::parse(sub) {
            Ok(l) => l,
            Err(e) => return Ok(Availability::Unavailable("invalid-format", e.to_string())),
        };
        let pool = match self.pool(pool) {
            Ok(p) => p,
            Err(e) => return Ok(Availability::Unavailable("unsupported-pool", e.to_string())),
        };
        if is_reserved(label.as_str()) {
            return Ok(Availability::Unavailable(
                "reserved",
                format!("{label} is a reserved name"),
            ));
        }
        let pool_name = pool.domain.without_dot();
        let mut conn = self.store.pool().acquire().await?;
        let row = rows::live(&mut conn, "", &pool_name, label.as_str()).await?;
        let fqdn = format!("{label}.{pool_name}");
        Ok(match row.map(|r| r.allocation) {
            None => Availability::Available(fqdn),
            Some(a)
                if a.state == AllocationState::Reserved
                    && a.expires_at_ms.is_some_and(|e| e <= now_ms()) =>
            {
                Availability::Available(fqdn)
            }
            Some(a) if a.state == AllocationState::Reserved => Availability::Unavailable(
                "reserved-state",
                "reserved by another deployment in progress — try again in a few minutes".into(),
            ),
            Some(_) => {
                Availability::Unavailable("active-state", format!("{fqdn} is already in use"))
            }
        })
    }

    /// Hold `sub` for the pool's reservation TTL. Returns the allocation and
    /// the reservation token (shown once; only its hash is stored).
    pub async fn reserve(
        &self,
        pool: &str,
        sub: &str,
        created_by: &str,
    ) -> Result<(Allocation, String), PoolError> {
        let pool = self.pool(pool)?;
        let label = Label::parse(sub)?;
        if is_reserved(label.as_str()) {
            return Err(PoolError::ReservedName(label.to_string()));
        }
        let token = uuid::Uuid::new_v4().to_string();
        let now = now_ms();
        let expires = now + (pool.reservation_ttl_secs as i64) * 1000;
        let pool_name = pool.domain.without_dot();
        let mut tx = self.store.begin().await?;
        rows::expire_name(&mut tx, &pool_name, label.as_str(), now).await?;
        let row = rows::insert_reservation(
            &mut tx,
            &pool_name,
            label.as_str(),
            created_by,
            &sha256_hex(token.as_bytes()),
            now,
            expires,
        )
        .await?;
        tx.commit().await?;
        match row {
            Some(r) => Ok((r.allocation, token)),
            None => Err(PoolError::Conflict),
        }
    }

    /// Turn a reservation into a live, delegated child zone.
    pub async fn commit(&self, pool: &str, req: &CommitRequest) -> Result<Allocation, PoolError> {
        let pool = self.pool(pool)?.clone();
        let label = Label::parse(&req.subdomain)?;
        let pool_name = pool.domain.without_dot();
        let child = pool
            .domain
            .child(label.as_str())
            .map_err(|e| PoolError::Template(e.to_string()))?;
        let expected_fqdn = child.without_dot();
        if let Some(given) = req
            .sovereign_fqdn
            .as_deref()
            .filter(|s| !s.trim().is_empty())
        {
            let g = given.trim().trim_end_matches('.').to_ascii_lowercase();
            if g != expected_fqdn {
                return Err(PoolError::FqdnMismatch {
                    given: given.to_string(),
                    expected: expected_fqdn,
                });
            }
        }
        let (lb, console) = parse_addresses(req.lb_ip.as_deref(), req.console_lb_ip.as_deref())?;
        let token_hash = sha256_hex(req.token.trim().as_bytes());
        let now = now_ms();

        let mut tx = self.store.begin().await?;
        let Some(row) =
            rows::live(&mut tx, self.store.for_update(), &pool_name, label.as_str()).await?
        else {
            // No live row: tell an expired reservation apart from nothing at all.
            return match rows::latest(&mut tx, &pool_name, label.as_str()).await? {
                Some(r) if r.allocation.state == AllocationState::Expired => Err(
                    PoolError::Expired(rfc3339(r.allocation.expires_at_ms.unwrap_or(now))),
                ),
                _ => Err(PoolError::NotFound(expected_fqdn)),
            };
        };
        let a = row.allocation;
        if a.state == AllocationState::Active {
            // A retried commit: same token → same answer; the zone exists already.
            return if hash_matches(row.token_hash.as_deref(), &token_hash) {
                Ok(a)
            } else {
                Err(PoolError::TokenMismatch)
            };
        }
        if let Some(exp) = a.expires_at_ms.filter(|e| *e <= now) {
            rows::end(&mut tx, a.id, AllocationState::Expired, now).await?;
            tx.commit().await?;
            return Err(PoolError::Expired(rfc3339(exp)));
        }
        if !hash_matches(row.token_hash.as_deref(), &token_hash) {
            return Err(PoolError::TokenMismatch);
        }

        let lb_s = lb.to_string();
        let console_s = console.map(|c| c.to_string());
        let active = rows::activate(
            &mut tx,
            a.id,
            &expected_fqdn,
            &lb_s,
            console_s.as_deref(),
            now,
        )
        .await?;

        let actor = format!("commit {expected_fqdn}");
        let op = self
            .backend
            .commit_child(
                &mut tx,
                &ChildZone {
                    pool: &pool,
                    child: &child,
                    lb,
                    console,
                },
                &actor,
            )
            .await?;
        tx.commit().await?;
        if let Some(id) = op {
            self.backend.settle(id).await;
        }
        Ok(active.allocation)
    }

    /// Make `sub` an active allocation of `req.created_by` pointing at
    /// `req`'s load balancers, whatever state it is in (create-or-get by
    /// name, for clients that retry everything, e.g. Crossplane's
    /// provider-http). Returns the allocation and whether it was created.
    /// - free (or an expired hold): reserve and commit in one call;
    /// - active and the caller's: the same allocation, its records moved to
    ///   the new load balancers when they differ;
    /// - held by the caller without a token: a concurrent call's hold is
    ///   waited for; one older than [`ABANDONED_AFTER_MS`] (a call that died
    ///   between its reserve and its commit) is released and taken again;
    /// - held with `req.token`: that reservation is committed;
    /// - anyone else's: [`PoolError::OwnedByAnother`], never adopted.
    pub async fn ensure_active(
        &self,
        pool: &str,
        sub: &str,
        req: &EnsureRequest,
    ) -> Result<(Allocation, bool), PoolError> {
        let pool_name = self.pool(pool)?.domain.without_dot();
        let label = Label::parse(sub)?;
        let (lb, console) = parse_addresses(req.lb_ip.as_deref(), req.console_lb_ip.as_deref())?;
        let commit = |token: String| CommitRequest {
            subdomain: label.to_string(),
            token,
            sovereign_fqdn: None,
            lb_ip: req.lb_ip.clone(),
            console_lb_ip: req.console_lb_ip.clone(),
        };
        for _ in 0..ENSURE_TRIES {
            let live = self
                .store
                .live_allocation(&pool_name, label.as_str())
                .await?
                .filter(|a| {
                    a.state == AllocationState::Active
                        || a.expires_at_ms.is_none_or(|e| e > now_ms())
                });
            let Some(a) = live else {
                let (_, token) = match self
                    .reserve(&pool_name, label.as_str(), &req.created_by)
                    .await
                {
                    Err(PoolError::Conflict) => continue,
                    other => other?,
                };
                return Ok((self.commit(&pool_name, &commit(token)).await?, true));
            };
            if a.state == AllocationState::Reserved {
                if let Some(token) = &req.token {
                    return Ok((self.commit(&pool_name, &commit(token.clone())).await?, true));
                }
            }
            if a.created_by != req.created_by {
                return Err(PoolError::OwnedByAnother(format!(
                    "{}.{} is {} by {:?}",
                    a.subdomain, a.pool, a.state, a.created_by
                )));
            }
            if a.state == AllocationState::Reserved {
                if now_ms() - a.reserved_at_ms < ABANDONED_AFTER_MS {
                    tokio::time::sleep(ENSURE_WAIT).await;
                    continue;
                }
                match self.release(&pool_name, label.as_str()).await {
                    Ok(_) | Err(PoolError::NotFound(_)) => continue,
                    Err(e) => return Err(e),
                }
            }
            let same = a.load_balancer_ip == Some(lb.to_string())
                && a.console_load_balancer_ip == console.map(|c| c.to_string());
            if same {
                return Ok((a, false));
            }
            return Ok((self.move_addresses(&a, lb, console).await?, false));
        }
        Err(PoolError::Conflict)
    }

    /// Point the active allocation `a` and its child zone's template records
    /// at new load balancers (keys, DS and delegation stay).
    async fn move_addresses(
        &self,
        a: &Allocation,
        lb: IpAddr,
        console: Option<IpAddr>,
    ) -> Result<Allocation, PoolError> {
        let pool = self.pool(&a.pool)?.clone();
        let child = pool
            .domain
            .child(&a.subdomain)
            .map_err(|e| PoolError::Template(e.to_string()))?;
        let was_lb: IpAddr = a
            .load_balancer_ip
            .as_deref()
            .unwrap_or_default()
            .parse()
            .map_err(|_| PoolError::InvalidLbIp(a.load_balancer_ip.clone().unwrap_or_default()))?;
        let was_console: Option<IpAddr> = a
            .console_load_balancer_ip
            .as_deref()
            .and_then(|c| c.parse().ok());
        let mut tx = self.store.begin().await?;
        let row = rows::live(&mut tx, self.store.for_update(), &a.pool, &a.subdomain).await?;
        if row.as_ref().map(|r| r.allocation.id) != Some(a.id) {
            // Released or replaced meanwhile: the caller's retry decides again.
            return Err(PoolError::Conflict);
        }
        let console_s = console.map(|c| c.to_string());
        rows::set_addresses(&mut tx, a.id, &lb.to_string(), console_s.as_deref()).await?;
        let actor = format!("update {}", child.without_dot());
        let zone = |lb, console| ChildZone {
            pool: &pool,
            child: &child,
            lb,
            console,
        };
        let op = self
            .backend
            .update_child(
                &mut tx,
                &zone(was_lb, was_console),
                &zone(lb, console),
                &actor,
            )
            .await?;
        tx.commit().await?;
        if let Some(id) = op {
            self.backend.settle(id).await;
        }
        let mut conn = self.store.pool().acquire().await?;
        let row = rows::latest(&mut conn, &a.pool, &a.subdomain)
            .await?
            .ok_or_else(|| PoolError::NotFound(child.without_dot()))?;
        Ok(row.allocation)
    }

    /// Free `sub`: the allocation becomes history, and the child zone and the
    /// delegation disappear in the same transaction.
    pub async fn release(&self, pool: &str, sub: &str) -> Result<Allocation, PoolError> {
        let pool = self.pool(pool)?.clone();
        let label = Label::parse(sub)?;
        let pool_name = pool.domain.without_dot();
        let child = pool
            .domain
            .child(label.as_str())
            .map_err(|e| PoolError::Template(e.to_string()))?;
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        let Some(row) =
            rows::live(&mut tx, self.store.for_update(), &pool_name, label.as_str()).await?
        else {
            return Err(PoolError::NotFound(child.without_dot()));
        };
        let actor = format!("release {}", child.without_dot());
        rows::end(&mut tx, row.allocation.id, AllocationState::Released, now).await?;
        let op = self
            .backend
            .release_child(&mut tx, &pool, &child, &actor)
            .await?;
        tx.commit().await?;
        if let Some(id) = op {
            self.backend.settle(id).await;
        }
        let mut a = row.allocation;
        a.state = AllocationState::Released;
        a.released_at_ms = Some(now);
        a.expires_at_ms = None;
        Ok(a)
    }

    /// Create each pool zone if missing and keep its apex NS and in-zone glue
    /// in line with the configuration (through the backend).
    pub async fn ensure_pool_zones(&self) -> Result<(), PoolError> {
        Ok(self.backend.ensure_pool_zones().await?)
    }
}

/// The load balancer (required) and console load balancer (optional) of a
/// commit, parsed.
fn parse_addresses(
    lb: Option<&str>,
    console: Option<&str>,
) -> Result<(IpAddr, Option<IpAddr>), PoolError> {
    let lb_text = lb.map(str::trim).unwrap_or("");
    if lb_text.is_empty() {
        return Err(PoolError::MissingLbIp);
    }
    let lb = lb_text
        .parse()
        .map_err(|_| PoolError::InvalidLbIp(lb_text.to_string()))?;
    let console = match console.map(str::trim) {
        None | Some("") => None,
        Some(c) => Some(
            c.parse()
                .map_err(|_| PoolError::InvalidConsoleLbIp(c.to_string()))?,
        ),
    };
    Ok((lb, console))
}

/// RFC 3339 UTC text for a unix-millisecond time, as the Go service formats it.
pub fn format_time(ms: i64) -> String {
    rfc3339(ms)
}

//! Managed byo ("bring your own") domains: pdm serves the customer's zone
//! (SOA/NS from the configured nameservers, signed like every other zone)
//! and brings the delegation up through a durable operation:
//!
//! - `byo-api`:    validate → set-ns → set-ds (where the registrar has a DS
//!   API and the zone is signed) → verify-parent → done
//! - `byo-manual`: verify-parent → done (the customer sets NS/DS by hand;
//!   the status shows what to set)
//!
//! Credentials are stored sealed with the secret key, bound to the domain and
//! registrar, opened only to build an adapter, and never logged or echoed.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hickory_proto::dnssec::rdata::DNSKEY;
use hickory_proto::dnssec::{DigestType, PublicKey, Verifier};
use hickory_proto::rr::Name;
use pdm_adapters::{
    Credentials, DnskeyData, DsData, NsSet, RegistrableDomain, RegistrarError, RegistrarId,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::probe::Prober;
use super::propagation::{compare, ds_text, Expected};
use super::registry::Registrars;
use crate::backend::ZoneBackend;
use crate::config::Config;
use crate::model::DomainName;
use crate::operations::{StepOutcome, StepRunner};
use crate::pool::service::format_time;
use crate::secret::{SecretBox, SecretError};
use crate::store::domains::{self, DomainRow};
use crate::store::operations::{self as ops, AttemptRow, NewOperation, OperationRow};
use crate::store::zones;
use crate::store::{now_ms, Store, StoreError};

/// Operation kind of a byo-api domain.
pub const KIND_API: &str = "byo-api";
/// Operation kind of a byo-manual domain.
pub const KIND_MANUAL: &str = "byo-manual";
/// Step: check the credentials and that the domain is in the account.
pub const STEP_VALIDATE: &str = "validate";
/// Step: set the registry NS to pdm's nameservers.
pub const STEP_SET_NS: &str = "set-ns";
/// Step: set the registry DS to the zone's keys.
pub const STEP_SET_DS: &str = "set-ds";
/// Step: wait until the parent's servers show the NS (and DS).
pub const STEP_VERIFY: &str = "verify-parent";

/// How the delegation is brought up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// pdm changes NS (and DS) at the registrar with the customer's credentials.
    Api,
    /// The customer changes them; pdm watches the parent.
    Manual,
}

impl Mode {
    /// Parses `byo-api` / `byo-manual`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            KIND_API => Some(Mode::Api),
            KIND_MANUAL => Some(Mode::Manual),
            _ => None,
        }
    }

    /// The API and storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Api => KIND_API,
            Mode::Manual => KIND_MANUAL,
        }
    }
}

/// Input of [`ByoService::create`].
#[derive(Debug, Clone)]
pub struct CreateRequest {
    /// The customer's domain.
    pub domain: String,
    /// byo-api or byo-manual.
    pub mode: Mode,
    /// The registrar (byo-api).
    pub registrar: Option<RegistrarId>,
    /// The credentials (byo-api).
    pub credentials: Option<Credentials>,
}

/// What can go wrong managing a byo domain; one variant per API code.
#[derive(Debug, thiserror::Error)]
pub enum ByoError {
    /// Not a usable domain name.
    #[error("{0}")]
    InvalidDomain(String),
    /// byo-api without a registrar.
    #[error("byo-api needs \"registrar\" (one of cloudflare, dynadot, godaddy, namecheap, ovh)")]
    MissingRegistrar,
    /// byo-api without credentials.
    #[error("byo-api needs \"credentials\": the registrar token string or its JSON form")]
    MissingCredentials,
    /// Credentials of the wrong shape (the message never contains them).
    #[error("{0}")]
    InvalidCredentials(String),
    /// Credentials given for byo-manual.
    #[error("byo-manual takes no credentials; use byo-api to let pdm change the registrar")]
    UnexpectedCredentials,
    /// The registrar has no API to change a domain's NS.
    #[error("{0}")]
    CannotSetNs(String),
    /// The domain is, or is inside, a pool pdm manages.
    #[error("{0} is a pool domain (or inside one) managed by this pdm")]
    PoolDomain(String),
    /// Already a byo domain.
    #[error("{0} is already managed; DELETE it first to start over")]
    Exists(String),
    /// A zone of that name exists (imported or a pool child).
    #[error("a zone {0} already exists in pdm")]
    ZoneExists(String),
    /// Not a byo domain.
    #[error("no byo domain {0}")]
    NotFound(String),
    /// byo-api needs the secret key to store credentials.
    #[error("no secret key is configured to seal registrar credentials: set PDM_SECRET_KEY or dnssec.secret_key_file")]
    NoSecretKey,
    /// Sealing failed.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// Persistence failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The zone backend could not create or remove the zone.
    #[error(transparent)]
    Backend(#[from] crate::backend::BackendError),
}

impl From<sqlx::Error> for ByoError {
    fn from(e: sqlx::Error) -> Self {
        ByoError::Store(StoreError::Db(e))
    }
}

/// What the operation carries besides its state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    /// Set DS at the registrar (signed zone, registrar with a DS API).
    set_ds: bool,
    /// The parent must show our DS before the domain is active.
    ds_required: bool,
}

/// The operation part of a domain's status.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationStatus {
    /// Operation id.
    pub id: i64,
    /// `byo-api` / `byo-manual`.
    pub kind: String,
    /// The step it is at (`done` / `failed` at the end).
    pub step: String,
    /// Attempts of that step.
    pub attempts: i64,
    /// Attempts of all steps.
    pub total_attempts: i64,
    /// Why the last attempt did not finish the step.
    pub last_error: Option<String>,
    /// When it runs next (RFC 3339), while not finished.
    pub next_run_at: Option<String>,
    /// When a still-failing step fails the operation.
    pub deadline: String,
    /// Last change.
    pub updated_at: String,
    /// Newest attempts first.
    pub history: Vec<AttemptView>,
}

/// One attempt, for the status.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView {
    /// Step.
    pub step: String,
    /// Attempt number within the step.
    pub attempt: i64,
    /// Outcome.
    pub outcome: String,
    /// Detail.
    pub detail: Option<String>,
    /// Started.
    pub started_at: String,
    /// Finished.
    pub finished_at: Option<String>,
}

impl From<&AttemptRow> for AttemptView {
    fn from(a: &AttemptRow) -> Self {
        Self {
            step: a.step.clone(),
            attempt: a.attempt,
            outcome: a.outcome.clone(),
            detail: a.detail.clone(),
            started_at: format_time(a.started_at),
            finished_at: a.finished_at.map(format_time),
        }
    }
}

/// A byo domain as `GET /api/v1/domains/{domain}` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DomainStatus {
    /// The domain.
    pub domain: String,
    /// `byo-api` / `byo-manual`.
    pub mode: String,
    /// Registrar (byo-api).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registrar: Option<String>,
    /// `pending`, `delegating`, `waiting-for-parent`, `active` or `failed`.
    pub state: &'static str,
    /// The NS the parent must show.
    pub nameservers: Vec<String>,
    /// The DS the parent must show (SHA-256), as RRs.
    pub ds: Vec<String>,
    /// Whether the domain is active only once the parent shows the DS.
    pub ds_required: bool,
    /// What the customer (or operator) should do now.
    pub next: String,
    /// The operation bringing the delegation up.
    pub operation: Option<OperationStatus>,
    /// The last check at the parent, per server.
    pub propagation: Option<serde_json::Value>,
    /// Created.
    pub created_at: String,
    /// When the parent first showed the delegation.
    pub activated_at: Option<String>,
}

/// The domain state shown for an operation at `step`.
pub fn domain_state(mode: Mode, step: Option<&str>) -> &'static str {
    match step {
        Some("done") => "active",
        Some("failed") | None => "failed",
        Some(STEP_VALIDATE) => "pending",
        Some(STEP_SET_NS) | Some(STEP_SET_DS) => "delegating",
        Some(_) if mode == Mode::Api => "waiting-for-parent",
        Some(_) => "pending",
    }
}

fn credentials_context(domain: &str, registrar: &str) -> String {
    format!("pdm registrar credentials\0{domain}\0{registrar}")
}

/// The key material of a zone the parent must point at.
#[derive(Debug, Clone, Default)]
struct ParentKeys {
    /// SHA-256 DS of each key in the parent (what registrars get).
    ds: Vec<DsData>,
    /// Every DS the parent may show (SHA-256 and SHA-384).
    acceptable: Vec<DsData>,
    /// The same keys as DNSKEY data (registrars that want keys: OVH).
    dnskeys: Vec<DnskeyData>,
}

fn ds_data(owner: &Name, k: &DNSKEY, d: DigestType) -> Option<DsData> {
    let ds = crate::dnssec::keys::ds_for(owner, k, d).ok()?;
    Some(DsData {
        key_tag: ds.key_tag(),
        algorithm: u8::from(ds.algorithm()),
        digest_type: u8::from(ds.digest_type()),
        digest: hex::encode(ds.digest()),
    })
}

/// Registrar failures as step outcomes: transient ones retry (after the
/// wait the registrar asked for), the rest fail the operation.
fn registrar_outcome(e: &RegistrarError) -> StepOutcome {
    match e {
        RegistrarError::RateLimited { retry_after, .. } => StepOutcome::Retry {
            after: *retry_after,
            error: format!("{}: {e}", e.code()),
        },
        RegistrarError::Unavailable { .. } => StepOutcome::Retry {
            after: None,
            error: format!("{}: {e}", e.code()),
        },
        _ => StepOutcome::Fail {
            error: format!("{}: {e}", e.code()),
        },
    }
}

/// Creates, reports on, deletes byo domains, and runs their operations.
#[derive(Debug, Clone)]
pub struct ByoService {
    store: Store,
    config: Arc<Config>,
    /// Where the domain's zone lives: pdm's store or PowerDNS.
    backend: Arc<dyn ZoneBackend>,
    secret: Option<Arc<SecretBox>>,
    registrars: Registrars,
    prober: Prober,
}

impl ByoService {
    /// A service over `store`; `secret` seals credentials (byo-api needs it).
    pub fn new(
        store: Store,
        config: Arc<Config>,
        backend: Arc<dyn ZoneBackend>,
        secret: Option<Arc<SecretBox>>,
        registrars: Registrars,
    ) -> Self {
        let prober = Prober::from_config(&config.delegation);
        Self {
            store,
            config,
            backend,
            secret,
            registrars,
            prober,
        }
    }

    /// The registrar endpoints.
    pub fn registrars(&self) -> &Registrars {
        &self.registrars
    }

    /// The NS every byo zone is delegated to: the configured nameservers.
    pub fn expected_ns(&self) -> Vec<String> {
        self.config
            .nameservers
            .iter()
            .map(|n| n.name.without_dot().to_ascii_lowercase())
            .collect()
    }

    /// Starts managing `req.domain`: zone (signed when DNSSEC is on), sealed
    /// credentials and the operation, in one transaction.
    pub async fn create(&self, req: CreateRequest) -> Result<DomainStatus, ByoError> {
        let name = DomainName::parse(&req.domain)
            .map_err(|e| ByoError::InvalidDomain(format!("domain {:?}: {e}", req.domain)))?;
        let domain = name.without_dot().to_ascii_lowercase();
        let fqdn = name.fqdn().to_ascii_lowercase();
        if self
            .config
            .pools
            .iter()
            .any(|p| p.domain.name().zone_of(name.name()) || name.name().zone_of(p.domain.name()))
        {
            return Err(ByoError::PoolDomain(domain));
        }
        let (registrar, sealed, can_set_ds) = match req.mode {
            Mode::Manual => {
                if req.credentials.is_some() {
                    return Err(ByoError::UnexpectedCredentials);
                }
                (req.registrar, None, false)
            }
            Mode::Api => {
                let reg = req.registrar.ok_or(ByoError::MissingRegistrar)?;
                RegistrableDomain::parse(&domain).map_err(|e| {
                    ByoError::InvalidDomain(format!(
                        "byo-api changes the NS of a registered domain: {e}"
                    ))
                })?;
                let creds = req.credentials.ok_or(ByoError::MissingCredentials)?;
                if creds.registrar() != reg {
                    return Err(ByoError::InvalidCredentials(format!(
                        "the credentials are for {}, not {reg}",
                        creds.registrar()
                    )));
                }
                let adapter = self
                    .registrars
                    .adapter(&creds)
                    .map_err(|e| ByoError::InvalidCredentials(e.to_string()))?;
                let caps = adapter.capabilities();
                if !caps.set_ns {
                    return Err(ByoError::CannotSetNs(cannot_set_ns_detail(reg)));
                }
                let secret = self.secret.as_ref().ok_or(ByoError::NoSecretKey)?;
                let plain = serde_json::to_vec(&creds).map_err(|_| {
                    ByoError::InvalidCredentials("credentials do not serialise".into())
                })?;
                let sealed = secret.seal(&credentials_context(&domain, reg.as_str()), &plain)?;
                (Some(reg), Some(hex::encode(sealed)), caps.set_ds)
            }
        };
        let actor = format!("byo {domain}");
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        if domains::get_domain(&mut tx, &domain).await?.is_some() {
            return Err(ByoError::Exists(domain));
        }
        if zones::get_zone(&mut tx, &fqdn).await?.is_some() {
            return Err(ByoError::ZoneExists(domain));
        }
        let zone = self
            .backend
            .create_domain_zone(&mut tx, &name, &actor)
            .await?;
        let signed = zone.signed;
        let payload = Payload {
            set_ds: signed && can_set_ds,
            ds_required: signed && (req.mode == Mode::Manual || can_set_ds),
        };
        let payload_text =
            serde_json::to_string(&payload).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let deadline = now.saturating_add(
            i64::try_from(self.config.operations.deadline_secs.saturating_mul(1000))
                .unwrap_or(i64::MAX / 2),
        );
        let op_id = ops::insert_operation(
            &mut tx,
            &NewOperation {
                kind: req.mode.as_str(),
                subject: &domain,
                state: match req.mode {
                    Mode::Api => STEP_VALIDATE,
                    Mode::Manual => STEP_VERIFY,
                },
                payload: &payload_text,
                next_run_at: now,
                deadline_at: deadline,
            },
        )
        .await?;
        domains::insert_domain(
            &mut tx,
            &DomainRow {
                domain: domain.clone(),
                mode: req.mode.as_str().into(),
                registrar: registrar.map(|r| r.as_str().to_string()),
                credentials: sealed,
                operation_id: Some(op_id),
                propagation: None,
                created_at: now,
                updated_at: now,
                activated_at: None,
            },
        )
        .await?;
        tx.commit().await?;
        if let Some(op) = zone.operation {
            self.backend.settle(op).await;
        }
        tracing::info!(domain = %domain, mode = req.mode.as_str(), registrar = ?registrar.map(|r| r.as_str()), "byo domain created");
        self.status(&domain).await
    }

    /// Stops managing `domain`: its zone, keys, credentials and operation go.
    pub async fn delete(&self, domain: &str) -> Result<String, ByoError> {
        let name = DomainName::parse(domain)
            .map_err(|e| ByoError::InvalidDomain(format!("domain {domain:?}: {e}")))?;
        let domain = name.without_dot().to_ascii_lowercase();
        let actor = format!("byo delete {domain}");
        let mut tx = self.store.begin().await?;
        if !domains::delete_domain(&mut tx, &domain).await? {
            return Err(ByoError::NotFound(domain));
        }
        ops::delete_operations_for(&mut tx, &domain).await?;
        let op = self
            .backend
            .delete_domain_zone(&mut tx, &name, &actor)
            .await?;
        tx.commit().await?;
        if let Some(op) = op {
            self.backend.settle(op).await;
        }
        tracing::info!(domain = %domain, "byo domain deleted");
        Ok(domain)
    }

    /// Every byo domain's status.
    pub async fn list(&self) -> Result<Vec<DomainStatus>, ByoError> {
        let mut out = Vec::new();
        for row in self.store.byo_domains().await? {
            out.push(self.status_of(row).await?);
        }
        Ok(out)
    }

    /// `domain`'s status.
    pub async fn status(&self, domain: &str) -> Result<DomainStatus, ByoError> {
        let name = DomainName::parse(domain)
            .map_err(|e| ByoError::InvalidDomain(format!("domain {domain:?}: {e}")))?;
        let domain = name.without_dot().to_ascii_lowercase();
        let row = self
            .store
            .byo_domain(&domain)
            .await?
            .ok_or(ByoError::NotFound(domain))?;
        self.status_of(row).await
    }

    async fn status_of(&self, row: DomainRow) -> Result<DomainStatus, ByoError> {
        let mode = Mode::parse(&row.mode).unwrap_or(Mode::Manual);
        let op = match row.operation_id {
            Some(id) => self.store.operation(id).await?,
            None => None,
        };
        // A step stores its parent check before it moves the operation on:
        // read the row again after the operation so a finished operation
        // never shows an older check.
        let row = self.store.byo_domain(&row.domain).await?.unwrap_or(row);
        let payload: Payload = op
            .as_ref()
            .and_then(|o| serde_json::from_str(&o.payload).ok())
            .unwrap_or_default();
        let keys = self.parent_keys(&row.domain).await?;
        let ttl = self.config.dnssec.dnskey_ttl;
        let ds: Vec<String> = keys
            .ds
            .iter()
            .map(|d| format!("{}. {ttl} IN DS {}", row.domain, ds_text(d)))
            .collect();
        let state = domain_state(mode, op.as_ref().map(|o| o.state.as_str()));
        let nameservers = self.expected_ns();
        let next = match (state, mode) {
            ("active", _) => "nothing: the parent shows the delegation".to_string(),
            ("failed", _) => {
                "see operation.lastError; DELETE the domain and create it again to retry".into()
            }
            (_, Mode::Manual) => format!(
                "at your registrar, set the nameservers to {}{}; pdm checks the parent every {} s",
                nameservers.join(", "),
                if ds.is_empty() {
                    String::new()
                } else {
                    format!(" and the DS record to {}", ds.join(" / "))
                },
                self.config.delegation.poll_interval_secs
            ),
            (_, Mode::Api) => "nothing: pdm is changing the delegation at the registrar".into(),
        };
        let operation = match &op {
            Some(o) => Some(self.operation_status(o).await?),
            None => None,
        };
        Ok(DomainStatus {
            domain: row.domain.clone(),
            mode: row.mode.clone(),
            registrar: row.registrar.clone(),
            state,
            nameservers,
            ds,
            ds_required: payload.ds_required,
            next,
            operation,
            propagation: row
                .propagation
                .as_deref()
                .and_then(|p| serde_json::from_str(p).ok()),
            created_at: format_time(row.created_at),
            activated_at: row.activated_at.map(format_time),
        })
    }

    async fn operation_status(&self, o: &OperationRow) -> Result<OperationStatus, ByoError> {
        let history = self.store.operation_attempts(o.id, 10).await?;
        Ok(OperationStatus {
            id: o.id,
            kind: o.kind.clone(),
            step: o.state.clone(),
            attempts: o.attempts,
            total_attempts: o.total_attempts,
            last_error: o.last_error.clone(),
            next_run_at: (!o.is_final()).then(|| format_time(o.next_run_at)),
            deadline: format_time(o.deadline_at),
            updated_at: format_time(o.updated_at),
            history: history.iter().map(AttemptView::from).collect(),
        })
    }

    async fn parent_keys(&self, domain: &str) -> Result<ParentKeys, ByoError> {
        let fqdn = format!("{domain}.");
        let (Ok(origin), Ok(zone)) = (Name::from_ascii(&fqdn), DomainName::parse(domain)) else {
            return Ok(ParentKeys::default());
        };
        let mut out = ParentKeys::default();
        for k in self.backend.parent_dnskeys(&zone).await? {
            if let Some(d) = ds_data(&origin, &k, DigestType::SHA256) {
                out.ds.push(d.clone());
                out.acceptable.push(d);
            }
            if let Some(d) = ds_data(&origin, &k, DigestType::SHA384) {
                out.acceptable.push(d);
            }
            let Ok(key_tag) = k.calculate_key_tag() else {
                continue;
            };
            out.dnskeys.push(DnskeyData {
                flags: k.flags(),
                protocol: 3,
                algorithm: u8::from(k.algorithm()),
                public_key: data_encoding::BASE64.encode(k.public_key().public_bytes()),
                key_tag,
            });
        }
        Ok(out)
    }

    fn open_credentials(&self, row: &DomainRow) -> Result<Credentials, String> {
        let (Some(reg), Some(sealed)) = (&row.registrar, &row.credentials) else {
            return Err("no stored credentials".into());
        };
        let secret = self
            .secret
            .as_ref()
            .ok_or("no secret key configured to open the stored credentials")?;
        let bytes = hex::decode(sealed).map_err(|_| "stored credentials are corrupt")?;
        let plain = secret
            .open(&credentials_context(&row.domain, reg), &bytes)
            .map_err(|_| "stored credentials cannot be opened (wrong PDM_SECRET_KEY?)")?;
        serde_json::from_slice(&plain).map_err(|_| "stored credentials are corrupt".to_string())
    }

    async fn step_registrar(&self, step: &str, row: &DomainRow, payload: &Payload) -> StepOutcome {
        let creds = match self.open_credentials(row) {
            Ok(c) => c,
            Err(error) => return StepOutcome::Fail { error },
        };
        let registrar = creds.registrar();
        let adapter = match self.registrars.adapter(&creds) {
            Ok(a) => a,
            Err(e) => return registrar_outcome(&e),
        };
        let domain = match RegistrableDomain::parse(&row.domain) {
            Ok(d) => d,
            Err(e) => {
                return StepOutcome::Fail {
                    error: e.to_string(),
                }
            }
        };
        let result: Result<StepOutcome, RegistrarError> = async {
            match step {
                STEP_VALIDATE => {
                    super::registry::validate_domain(adapter.as_ref(), &domain).await?;
                    Ok(StepOutcome::Advance {
                        next: STEP_SET_NS,
                        detail: format!(
                            "{registrar} accepted the credentials; {} is in the account",
                            row.domain
                        ),
                    })
                }
                STEP_SET_NS => {
                    let ns = NsSet::new(self.expected_ns())?;
                    let change = adapter.set_ns(&domain, &ns).await?;
                    Ok(StepOutcome::Advance {
                        next: if payload.set_ds {
                            STEP_SET_DS
                        } else {
                            STEP_VERIFY
                        },
                        detail: format!("NS {ns} at {registrar}: {change:?}"),
                    })
                }
                _ => {
                    let keys = self.parent_keys(&row.domain).await.map_err(|e| {
                        RegistrarError::unavailable(
                            registrar,
                            format!("reading the zone's keys: {e}"),
                        )
                    })?;
                    let change = adapter.set_ds(&domain, &keys.ds, &keys.dnskeys).await?;
                    Ok(StepOutcome::Advance {
                        next: STEP_VERIFY,
                        detail: format!("{} DS at {registrar}: {change:?}", keys.ds.len()),
                    })
                }
            }
        }
        .await;
        let outcome = match result {
            Ok(o) => o,
            Err(e) => registrar_outcome(&e),
        };
        let code = match &result_code(&outcome) {
            Some(c) => c.clone(),
            None => "ok".into(),
        };
        // The registrar's own reason (never a credential) goes to the log
        // with the outcome, so an operator sees why a step failed.
        let reason = match &outcome {
            StepOutcome::Retry { error, .. } | StepOutcome::Fail { error } => error.as_str(),
            _ => "",
        };
        tracing::info!(registrar = %registrar, domain = %row.domain, step, outcome = %code, reason, "registrar step");
        outcome
    }

    async fn step_verify(&self, row: &DomainRow, payload: &Payload) -> StepOutcome {
        let poll = Duration::from_secs(self.config.delegation.poll_interval_secs);
        let keys = match self.parent_keys(&row.domain).await {
            Ok(k) => k,
            Err(e) => {
                return StepOutcome::Retry {
                    after: None,
                    error: e.to_string(),
                }
            }
        };
        let expected = Expected::new(&self.expected_ns(), &keys.acceptable, payload.ds_required);
        let Ok(child) = Name::from_ascii(format!("{}.", row.domain)) else {
            return StepOutcome::Fail {
                error: format!("{} is not a DNS name", row.domain),
            };
        };
        let checked_at = format_time(now_ms());
        let (converged, summary, stored) = match self.prober.observe(&child).await {
            Ok(obs) => {
                let report = compare(&expected, &obs);
                let mut v = serde_json::to_value(&report).unwrap_or_default();
                v["checkedAt"] = json!(checked_at);
                (report.converged, report.summary, v)
            }
            Err(e) => {
                let summary = format!("cannot find the parent's servers: {e}");
                (
                    false,
                    summary.clone(),
                    json!({"converged": false, "servers": [], "summary": summary, "checkedAt": checked_at}),
                )
            }
        };
        if let Err(e) = self
            .store
            .set_byo_propagation(&row.domain, &stored.to_string(), converged)
            .await
        {
            return StepOutcome::Retry {
                after: None,
                error: e.to_string(),
            };
        }
        tracing::info!(domain = %row.domain, converged, "parent check");
        if converged {
            StepOutcome::Done { detail: summary }
        } else {
            StepOutcome::Wait {
                after: poll,
                detail: summary,
            }
        }
    }
}

fn result_code(o: &StepOutcome) -> Option<String> {
    match o {
        StepOutcome::Retry { error, .. } | StepOutcome::Fail { error } => {
            Some(error.split(':').next().unwrap_or("error").to_string())
        }
        _ => None,
    }
}

/// Why a registrar cannot take an NS change through its API.
pub fn cannot_set_ns_detail(r: RegistrarId) -> String {
    match r {
        RegistrarId::Cloudflare => "Cloudflare cannot delegate a domain away: Cloudflare Registrar \
             only accepts Cloudflare's own nameservers (the zone's name_servers are read-only through \
             the API). Use byo-manual after transferring the domain to another registrar, or delegate \
             a subdomain of a Cloudflare-hosted zone with NS records in that zone."
            .into(),
        other => format!("{other} has no API to change a domain's nameservers"),
    }
}

#[async_trait]
impl StepRunner for ByoService {
    async fn run_step(&self, op: &OperationRow) -> StepOutcome {
        let row = match self.store.byo_domain(&op.subject).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                return StepOutcome::Fail {
                    error: format!("byo domain {} no longer exists", op.subject),
                }
            }
            Err(e) => {
                return StepOutcome::Retry {
                    after: None,
                    error: e.to_string(),
                }
            }
        };
        let payload: Payload = serde_json::from_str(&op.payload).unwrap_or_default();
        match op.state.as_str() {
            STEP_VALIDATE | STEP_SET_NS | STEP_SET_DS => {
                self.step_registrar(&op.state, &row, &payload).await
            }
            STEP_VERIFY => self.step_verify(&row, &payload).await,
            other => StepOutcome::Fail {
                error: format!("unknown step {other:?}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_follow_steps() {
        assert_eq!(domain_state(Mode::Api, Some(STEP_VALIDATE)), "pending");
        assert_eq!(domain_state(Mode::Api, Some(STEP_SET_NS)), "delegating");
        assert_eq!(domain_state(Mode::Api, Some(STEP_SET_DS)), "delegating");
        assert_eq!(
            domain_state(Mode::Api, Some(STEP_VERIFY)),
            "waiting-for-parent"
        );
        assert_eq!(domain_state(Mode::Manual, Some(STEP_VERIFY)), "pending");
        assert_eq!(domain_state(Mode::Manual, Some("done")), "active");
        assert_eq!(domain_state(Mode::Api, Some("failed")), "failed");
    }

    #[test]
    fn transient_registrar_errors_retry() {
        let r = RegistrarId::Dynadot;
        let rl = RegistrarError::RateLimited {
            registrar: r,
            retry_after: Some(Duration::from_secs(7)),
        };
        assert!(
            matches!(registrar_outcome(&rl), StepOutcome::Retry { after: Some(d), .. } if d.as_secs() == 7)
        );
        assert!(matches!(
            registrar_outcome(&RegistrarError::unavailable(r, "503")),
            StepOutcome::Retry { after: None, .. }
        ));
        assert!(matches!(
            registrar_outcome(&RegistrarError::InvalidCredentials { registrar: r }),
            StepOutcome::Fail { .. }
        ));
    }
}

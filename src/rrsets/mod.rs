//! Record writes into served zones: the one path behind the RRset API, the
//! PowerDNS-compatible API and RFC 2136 UPDATE. A change set is planned
//! (`plan.rs`, pure: zone rules and the writer's policy) on what the store
//! holds under the zone row's lock, then written in the same transaction:
//! rows, one serial bump, one journal entry (which the DNS snapshot
//! follows, so it is signed and served), an audit row per RRset.

pub mod credentials;
mod plan;
pub mod rdata;

pub use plan::{managed_type, writable, Limits, RRsetData, RRsetWrite};

use crate::config::{BackendKind, Config};
use crate::model::rtype::{parse_type, type_name};
use crate::policy::{is_at_or_below, Access, Policy, Verdict};
use crate::store::rrsets::{self as rows, Author, RRsetRows, Recheck};
use crate::store::write::WriteTx;
use crate::store::zones::StoredRecord;
use crate::store::{Store, StoreError};
use hickory_proto::rr::{Name, RecordType};
use plan::{ancestors_below, Neighbourhood};
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::sync::Arc;

/// Which rule a change set breaks (the API's error code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// A name outside the zone.
    OutsideZone,
    /// A name inside another zone pdm hosts (a pool's child).
    InsideChildZone,
    /// SOA, apex NS, DNSSEC types: pdm writes them.
    Managed,
    /// Not a type records can have.
    InvalidType,
    /// Record data that does not parse.
    InvalidRdata,
    /// A TTL outside the bounds.
    TtlOutOfRange,
    /// CNAME next to other data, at the apex, or more than one.
    CnameConflict,
    /// Data below a delegation or a DNAME, a DS without NS.
    DelegationRule,
    /// An RRset or zone beyond its size bound.
    TooLarge,
    /// A malformed name.
    InvalidName,
}

impl Invalid {
    /// The API's error code.
    pub fn code(self) -> &'static str {
        match self {
            Invalid::OutsideZone => "outside-zone",
            Invalid::InsideChildZone => "inside-child-zone",
            Invalid::Managed => "managed-rrset",
            Invalid::InvalidType => "invalid-type",
            Invalid::InvalidRdata => "invalid-rdata",
            Invalid::TtlOutOfRange => "ttl-out-of-range",
            Invalid::CnameConflict => "cname-conflict",
            Invalid::DelegationRule => "delegation-rule",
            Invalid::TooLarge => "too-large",
            Invalid::InvalidName => "invalid-name",
        }
    }
}

/// Which RFC 2136 prerequisite failed (its rcode follows from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrereqFailure {
    /// A name that must be in use is not (NXDOMAIN).
    NameNotInUse,
    /// A name that must not be in use is (YXDOMAIN).
    NameInUse,
    /// An RRset that must exist does not, or differs (NXRRSET).
    RRsetMissing,
    /// An RRset that must not exist does (YXRRSET).
    RRsetExists,
}

/// Why a record read or write fails. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// No such zone.
    #[error("zone {0} is not served here")]
    ZoneNotFound(String),
    /// The change breaks a zone rule; `rrset` names the offending RRset.
    #[error("{rrset}: {detail}")]
    Invalid {
        /// Which rule.
        kind: Invalid,
        /// `owner TYPE`.
        rrset: String,
        /// What is wrong.
        detail: String,
    },
    /// The credential's policy refuses the change (the reason names the rule).
    #[error("{0}")]
    Denied(String),
    /// An RRset that `create` must not find.
    #[error("{0} exists")]
    Exists(String),
    /// An RFC 2136 prerequisite does not hold.
    #[error("prerequisite failed: {detail}")]
    Prerequisite {
        /// Which kind.
        failure: PrereqFailure,
        /// The prerequisite.
        detail: String,
    },
    /// This deployment cannot write records (the PowerDNS backend).
    #[error("{0}")]
    Unsupported(String),
    /// The (cached) credential was deleted or replaced since it was read.
    #[error("credential {0} no longer exists")]
    CredentialGone(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for RecordError {
    fn from(e: sqlx::Error) -> Self {
        RecordError::Store(StoreError::Db(e))
    }
}

impl RecordError {
    /// An [`RecordError::Invalid`].
    pub fn invalid(kind: Invalid, rrset: String, detail: String) -> Self {
        RecordError::Invalid {
            kind,
            rrset,
            detail,
        }
    }
}

/// One edit of a change set. Owners are lower-case FQDNs with the dot;
/// rdata is canonical (see [`rdata::canonical`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// The RRset becomes exactly this (no rdata: it goes).
    Replace {
        /// Owner.
        owner: String,
        /// Type.
        rtype: RecordType,
        /// TTL.
        ttl: u32,
        /// Records.
        rdata: Vec<String>,
    },
    /// These records join the RRset (which takes the TTL).
    Extend {
        /// Owner.
        owner: String,
        /// Type.
        rtype: RecordType,
        /// TTL.
        ttl: u32,
        /// Records.
        rdata: Vec<String>,
    },
    /// These records leave the RRset.
    Prune {
        /// Owner.
        owner: String,
        /// Type.
        rtype: RecordType,
        /// Records.
        rdata: Vec<String>,
    },
    /// Every RRset at the owner that is not pdm's goes (RFC 2136 "delete
    /// all RRsets from a name").
    DeleteName {
        /// Owner.
        owner: String,
    },
}

impl Edit {
    /// The owner it edits.
    pub fn owner(&self) -> &str {
        match self {
            Edit::Replace { owner, .. }
            | Edit::Extend { owner, .. }
            | Edit::Prune { owner, .. }
            | Edit::DeleteName { owner } => owner,
        }
    }

    /// `owner TYPE` for error messages.
    pub fn describe(&self) -> String {
        match self {
            Edit::Replace { owner, rtype, .. }
            | Edit::Extend { owner, rtype, .. }
            | Edit::Prune { owner, rtype, .. } => format!("{owner} {}", type_name(*rtype)),
            Edit::DeleteName { owner } => format!("{owner} (all types)"),
        }
    }

    fn adds(&self, t: RecordType) -> bool {
        match self {
            Edit::Replace { rtype, rdata, .. } | Edit::Extend { rtype, rdata, .. } => {
                *rtype == t && !rdata.is_empty()
            }
            _ => false,
        }
    }
}

/// An RFC 2136 prerequisite (§2.4), checked under the same lock as the edits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prereq {
    /// The RRset exists (any value).
    RRsetExists {
        /// Owner.
        owner: String,
        /// Type.
        rtype: RecordType,
    },
    /// The RRset exists with exactly these records.
    RRsetEquals {
        /// Owner.
        owner: String,
        /// Type.
        rtype: RecordType,
        /// Canonical rdata.
        rdata: Vec<String>,
    },
    /// The RRset does not exist.
    RRsetAbsent {
        /// Owner.
        owner: String,
        /// Type.
        rtype: RecordType,
    },
    /// The name owns at least one record.
    NameInUse {
        /// Owner.
        owner: String,
    },
    /// The name owns no record.
    NameNotInUse {
        /// Owner.
        owner: String,
    },
}

impl Prereq {
    fn owner(&self) -> &str {
        match self {
            Prereq::RRsetExists { owner, .. }
            | Prereq::RRsetEquals { owner, .. }
            | Prereq::RRsetAbsent { owner, .. }
            | Prereq::NameInUse { owner }
            | Prereq::NameNotInUse { owner } => owner,
        }
    }
}

/// Through which door a change came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WritePath {
    /// pdm's RRset API.
    RrsetApi,
    /// The PowerDNS-compatible API.
    PdnsApi,
    /// RFC 2136 UPDATE.
    Rfc2136,
    /// A zone-file import through the API.
    Import,
}

impl WritePath {
    /// Spelling in the journal and the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            WritePath::RrsetApi => "rrset-api",
            WritePath::PdnsApi => "pdns-api",
            WritePath::Rfc2136 => "rfc2136",
            WritePath::Import => "import",
        }
    }
}

/// Who writes: the credential (never its secret), its policy, the path.
#[derive(Debug, Clone)]
pub struct Writer {
    /// `token:<id>` or `tsig:<name>`.
    pub credential: String,
    /// What it may do.
    pub policy: Arc<Policy>,
    /// Through which door.
    pub path: WritePath,
    /// Set when the credential came from the cache: the write finds it
    /// again in its transaction, or writes nothing.
    pub recheck: Option<Recheck>,
}

/// An RRset as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RRsetView {
    /// Owner, lower-case FQDN.
    pub owner: String,
    /// Type.
    pub rtype: RecordType,
    /// TTL (of the first record, as served).
    pub ttl: u32,
    /// Canonical rdata.
    pub rdata: Vec<String>,
    /// pdm writes it (SOA, apex NS, DNSSEC).
    pub managed: bool,
    /// The pool's template wrote it.
    pub template: bool,
}

/// A change set that went through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The zone's serial now (unchanged when nothing changed).
    pub serial: u32,
    /// The RRsets that changed.
    pub changed: Vec<RRsetWrite>,
    /// The journal entry of the change (none when nothing changed).
    pub journal_id: Option<i64>,
}

/// Reads and writes records of the zones pdm serves.
#[derive(Clone)]
pub struct RecordService {
    store: Store,
    config: Arc<Config>,
    credentials: Arc<credentials::CredentialCache>,
}

/// A zone name as given (`acme.pool.test`, `acme.pool.test.`, any case) as
/// stored: lower-case FQDN with the dot.
pub fn zone_fqdn(zone: &str) -> Result<String, RecordError> {
    owner_fqdn(zone)
}

/// An owner name as given, lower-case FQDN with the dot.
pub fn owner_fqdn(name: &str) -> Result<String, RecordError> {
    let bad = |d: String| RecordError::invalid(Invalid::InvalidName, name.to_string(), d);
    let n = name.trim();
    if n.is_empty() {
        return Err(bad("empty name".into()));
    }
    let parsed = Name::from_str(n).map_err(|e| bad(e.to_string()))?;
    let mut s = parsed.to_lowercase().to_ascii();
    if !s.ends_with('.') {
        s.push('.');
    }
    Ok(s)
}

impl RecordService {
    /// A service over `store`, with `config`'s bounds and pools.
    pub fn new(store: Store, config: Arc<Config>) -> Self {
        RecordService {
            store,
            config,
            credentials: Arc::default(),
        }
    }

    /// Credentials verified before, with their parsed policies.
    pub fn credentials(&self) -> &credentials::CredentialCache {
        &self.credentials
    }

    fn writes_here(&self) -> Result<(), RecordError> {
        if self.config.backend.kind == BackendKind::PowerDns {
            return Err(RecordError::Unsupported(
                "with the PowerDNS backend, records are written through PowerDNS's own API".into(),
            ));
        }
        Ok(())
    }

    /// The pool whose child `zone` is, if it is one.
    fn pool_of(&self, zone: &str) -> Option<&crate::config::PoolConfig> {
        self.config.pools.iter().find(|p| {
            zone.strip_suffix(p.domain.fqdn().as_str())
                .and_then(|l| l.strip_suffix('.'))
                .is_some_and(|l| !l.is_empty() && !l.contains('.'))
        })
    }

    fn pool_named(&self, zone: &str) -> Option<&crate::config::PoolConfig> {
        self.config.pools.iter().find(|p| p.domain.fqdn() == zone)
    }

    /// The RRsets of `zone` (a child) its pool's template wrote, protected,
    /// among those at `owners` (`None`: at every owner).
    fn template_of(
        &self,
        zone: &str,
        kind: &str,
        owners: Option<&[String]>,
    ) -> BTreeSet<(String, RecordType)> {
        let mut out = BTreeSet::new();
        if kind != "child" {
            return out;
        }
        let Some(p) = self.pool_of(zone) else {
            return out;
        };
        // An owner as the template names it: `@`, or relative to the apex.
        fn relative<'a>(owner: &'a str, zone: &str) -> Option<&'a str> {
            if owner == zone {
                return Some("@");
            }
            owner.strip_suffix(zone).and_then(|r| r.strip_suffix('.'))
        }
        for t in &p.template {
            let owner = match owners {
                None => match t.relative_name() {
                    "@" => zone.to_string(),
                    rel => format!("{rel}.{zone}"),
                },
                Some(owners) => {
                    match owners
                        .iter()
                        .find(|o| relative(o, zone) == Some(t.relative_name()))
                    {
                        Some(o) => o.clone(),
                        None => continue,
                    }
                }
            };
            for rtype in t.record_types() {
                out.insert((owner.clone(), rtype));
            }
        }
        out
    }

    fn limits(&self, zone: &str, kind: &str) -> Limits {
        let r = &self.config.records;
        let (min_ttl, max_ttl) = self
            .pool_of(zone)
            .or_else(|| self.pool_named(zone))
            .map_or((r.min_ttl, r.max_ttl), |p| p.ttl_bounds);
        Limits {
            min_ttl,
            max_ttl,
            max_rrset_records: r.max_rrset_records,
            max_zone_records: (kind != "pool").then_some(r.max_zone_records),
        }
    }

    /// The RRsets of `zone` the writer may read, optionally only at `owner`
    /// and of `rtype`.
    pub async fn rrsets(
        &self,
        zone: &str,
        who: &Writer,
        owner: Option<&str>,
        rtype: Option<RecordType>,
    ) -> Result<Vec<RRsetView>, RecordError> {
        let owners = owner.map(|o| vec![o.to_string()]);
        let mut v = self.read(zone, who, owners.as_deref()).await?;
        v.retain(|r| rtype.is_none_or(|t| t == r.rtype));
        Ok(v)
    }

    /// The RRsets the writer may read at any of `owners` (one indexed
    /// look-up, not the whole zone: a pool zone holds every child's
    /// delegation).
    pub async fn rrsets_at(
        &self,
        zone: &str,
        who: &Writer,
        owners: &[String],
    ) -> Result<Vec<RRsetView>, RecordError> {
        self.read(zone, who, Some(owners)).await
    }

    async fn read(
        &self,
        zone: &str,
        who: &Writer,
        owners: Option<&[String]>,
    ) -> Result<Vec<RRsetView>, RecordError> {
        let zone = zone_fqdn(zone)?;
        let mut conn = self.store.pool().acquire().await?;
        let row = crate::store::zones::get_zone(&mut conn, &zone)
            .await?
            .ok_or_else(|| RecordError::ZoneNotFound(zone.clone()))?;
        if !who.policy.reads_zone(&zone) {
            return Err(RecordError::Denied(format!(
                "no rule of the credential's policy lets it read zone {zone}"
            )));
        }
        let records = match owners {
            Some(o) => rows::records_at(&mut conn, row.id, o).await?,
            None => crate::store::zones::zone_records(&mut conn, row.id).await?,
        };
        let template = self.template_of(&zone, &row.kind, None);
        let mut out: Vec<RRsetView> = group(&records)?
            .into_iter()
            .filter(|((o, t), _)| {
                matches!(
                    who.policy.check(&zone, o, *t, Access::Read, false),
                    Verdict::Allowed(_)
                )
            })
            .map(|((o, t), d)| RRsetView {
                managed: plan::writable(&zone, &o, t).is_err(),
                template: template.contains(&(o.clone(), t)),
                owner: o,
                rtype: t,
                ttl: d.ttl,
                rdata: d.rdata,
            })
            .collect();
        out.sort_by(|a, b| (&a.owner, u16::from(a.rtype)).cmp(&(&b.owner, u16::from(b.rtype))));
        Ok(out)
    }

    /// Applies `edits` to `zone` as `who`, all or nothing, once `prereqs`
    /// hold. Returns the new serial and what changed (nothing: no bump).
    pub async fn apply(
        &self,
        zone: &str,
        edits: &[Edit],
        prereqs: &[Prereq],
        who: &Writer,
    ) -> Result<Applied, RecordError> {
        self.writes_here()?;
        let zone = zone_fqdn(zone)?;
        let mut tx = WriteTx::start(&self.store).await?;
        let outcome = self.apply_in(&mut tx, &zone, edits, prereqs, who).await;
        // What did not commit (a refused or empty change) is rolled back
        // here, once (dropped open, the transaction closes its connection).
        tx.rollback().await;
        let applied = outcome?;
        if applied.journal_id.is_some() {
            tracing::info!(
                zone = %zone,
                serial = applied.serial,
                rrsets = applied.changed.len(),
                path = who.path.as_str(),
                credential = %who.credential,
                "records changed"
            );
        }
        Ok(applied)
    }

    /// [`RecordService::apply`]'s transaction: reads under the zone's lock,
    /// plans, and writes and commits when something changes (otherwise `tx`
    /// is left for the caller to roll back).
    async fn apply_in(
        &self,
        tx: &mut WriteTx,
        zone: &str,
        edits: &[Edit],
        prereqs: &[Prereq],
        who: &Writer,
    ) -> Result<Applied, RecordError> {
        let zone = zone.to_string();
        let mut names: BTreeSet<String> = BTreeSet::new();
        let mut below_zone: BTreeSet<String> = BTreeSet::new();
        for owner in edits
            .iter()
            .map(Edit::owner)
            .chain(prereqs.iter().map(Prereq::owner))
        {
            names.insert(owner.to_string());
            if owner != zone && is_at_or_below(owner, &zone) {
                below_zone.insert(owner.to_string());
            }
            for a in ancestors_below(owner, &zone) {
                names.insert(a.to_string());
                below_zone.insert(a.to_string());
            }
        }
        let names: Vec<String> = names.into_iter().collect();
        let below_zone: Vec<String> = below_zone.into_iter().collect();
        // The apex SOA comes along: a write bumps the serial.
        let rows::Neighbours {
            locked,
            records,
            soa,
            hosted,
        } = rows::lock_and_read(tx, &zone, who.recheck.as_ref(), &names, &below_zone)
            .await?
            .ok_or_else(|| RecordError::ZoneNotFound(zone.clone()))?;
        if !locked.credential_live {
            if let Some(r) = &who.recheck {
                self.credentials.forget(r);
            }
            return Err(RecordError::CredentialGone(who.credential.clone()));
        }
        let row = locked.zone;
        let sets = group(&records)?;
        check_prereqs(prereqs, &sets)?;
        let hosted: BTreeSet<String> = hosted.into_iter().collect();
        let mut below = BTreeMap::new();
        for e in edits {
            let o = e.owner();
            if o != zone
                && (e.adds(RecordType::NS) || e.adds(RecordType::DNAME))
                && !below.contains_key(o)
            {
                let found = rows::rrsets_below(tx, row.id, o).await?;
                let keys = found
                    .into_iter()
                    .filter_map(|(n, t)| parse_type(&t).ok().map(|t| (n, t)))
                    .collect();
                below.insert(o.to_string(), keys);
            }
        }
        let limits = self.limits(&zone, &row.kind);
        let zone_records = match limits.max_zone_records {
            Some(_) => locked.records,
            None => 0,
        };
        let hood = Neighbourhood {
            zone: zone.clone(),
            sets,
            below,
            hosted,
            template: self.template_of(&zone, &row.kind, Some(&names)),
            zone_records,
        };
        let changed = plan::plan(&hood, edits, &who.policy, &limits)?;
        if changed.is_empty() {
            return Ok(Applied {
                serial: row.serial,
                changed,
                journal_id: None,
            });
        }
        let sets: Vec<RRsetRows> = changed.iter().map(|w| stored(w, &records)).collect();
        let author = Author {
            path: who.path.as_str().to_string(),
            credential: who.credential.clone(),
        };
        let written = rows::write_rrsets_with(tx, &row, soa.as_ref(), &sets, &author).await?;
        let serial = written.serial;
        let journal_id = written.entry.id;
        self.store.committed(written.entry);
        Ok(Applied {
            serial,
            changed,
            journal_id: Some(journal_id),
        })
    }
}

/// Records grouped into RRsets (TTL of the first record of each).
fn group(
    records: &[StoredRecord],
) -> Result<BTreeMap<(String, RecordType), RRsetData>, RecordError> {
    let mut out: BTreeMap<(String, RecordType), RRsetData> = BTreeMap::new();
    for r in records {
        let t = parse_type(&r.rtype).map_err(|e| {
            RecordError::Store(StoreError::Corrupt(format!("{} {}: {e}", r.name, r.rtype)))
        })?;
        let d = out.entry((r.name.clone(), t)).or_insert_with(|| RRsetData {
            ttl: r.ttl,
            rdata: Vec::new(),
        });
        if !d.rdata.contains(&r.rdata) {
            d.rdata.push(r.rdata.clone());
        }
    }
    Ok(out)
}

/// A planned RRset change as the rows it removes and writes (the rows
/// removed are the stored ones, byte for byte, so the journal's removal
/// matches what the snapshot holds).
fn stored(w: &RRsetWrite, records: &[StoredRecord]) -> RRsetRows {
    let rtype = type_name(w.rtype);
    let before = records
        .iter()
        .filter(|r| r.name == w.owner && parse_type(&r.rtype).ok() == Some(w.rtype))
        .cloned()
        .collect();
    let after = w
        .after
        .iter()
        .flat_map(|d| {
            d.rdata.iter().map(|r| StoredRecord {
                name: w.owner.clone(),
                rtype: rtype.clone(),
                ttl: d.ttl,
                rdata: r.clone(),
            })
        })
        .collect();
    RRsetRows {
        owner: w.owner.clone(),
        rtype,
        before,
        after,
    }
}

fn check_prereqs(
    prereqs: &[Prereq],
    sets: &BTreeMap<(String, RecordType), RRsetData>,
) -> Result<(), RecordError> {
    let name_used = |o: &str| sets.keys().any(|(n, _)| n == o);
    for p in prereqs {
        let fail = |failure, detail: String| Err(RecordError::Prerequisite { failure, detail });
        match p {
            Prereq::RRsetExists { owner, rtype } => {
                if !sets.contains_key(&(owner.clone(), *rtype)) {
                    return fail(
                        PrereqFailure::RRsetMissing,
                        format!("{owner} {} does not exist", type_name(*rtype)),
                    );
                }
            }
            Prereq::RRsetEquals {
                owner,
                rtype,
                rdata,
            } => {
                let want: BTreeSet<&String> = rdata.iter().collect();
                let have: Option<BTreeSet<&String>> = sets
                    .get(&(owner.clone(), *rtype))
                    .map(|d| d.rdata.iter().collect());
                if have.as_ref() != Some(&want) {
                    return fail(
                        PrereqFailure::RRsetMissing,
                        format!("{owner} {} differs", type_name(*rtype)),
                    );
                }
            }
            Prereq::RRsetAbsent { owner, rtype } => {
                if sets.contains_key(&(owner.clone(), *rtype)) {
                    return fail(
                        PrereqFailure::RRsetExists,
                        format!("{owner} {} exists", type_name(*rtype)),
                    );
                }
            }
            Prereq::NameInUse { owner } => {
                if !name_used(owner) {
                    return fail(
                        PrereqFailure::NameNotInUse,
                        format!("{owner} owns no record"),
                    );
                }
            }
            Prereq::NameNotInUse { owner } => {
                if name_used(owner) {
                    return fail(PrereqFailure::NameInUse, format!("{owner} owns records"));
                }
            }
        }
    }
    Ok(())
}

//! RFC 2136 UPDATE on the control plane: the data plane hands over a
//! TSIG-verified request for a zone it serves (`server::update`); here the
//! prerequisite and update sections become [`Prereq`]s and [`Edit`]s (pure,
//! [`parse`]), the key's record policy is looked up, the change set goes
//! through the one record-write path ([`RecordService::apply`]: zone rules,
//! policy, journal, audit, all or nothing), and the answer waits until this
//! node serves the change (read your writes).
//!
//! pdm's own records are handled as RFC 2136 §3.4.2 says where it has a
//! word and as the RRset API does otherwise: every SOA in the update
//! section is ignored (pdm owns the SOA and its serial), deletions of the
//! apex NS RRset or of apex NS records are ignored, anything else at the
//! apex NS or of a DNSSEC type is REFUSED.

use crate::metrics::UpdateCalls;
use crate::policy::{is_at_or_below, PolicySpec};
use crate::rrsets::credentials::CachedKey;
use crate::rrsets::{Edit, Invalid, Prereq, PrereqFailure, RecordError, RecordService};
use crate::rrsets::{WritePath, Writer};
use crate::server::update::{Rejected, UpdateHandler, UpdateRequest};
use crate::snapshot::Served;
use crate::store::zones::storage_text;
use crate::store::Store;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How long an UPDATE waits for its change to be served before answering
/// anyway (the log says so), as the HTTP API does.
const SERVED_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an UPDATE's sections are refused before the zone is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// FORMERR or NOTZONE.
    pub rcode: ResponseCode,
    /// What is wrong, for the log.
    pub detail: String,
}

impl Malformed {
    fn formerr(detail: String) -> Self {
        Malformed {
            rcode: ResponseCode::FormErr,
            detail,
        }
    }
}

/// An UPDATE's sections as the record-write path takes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Prerequisites, in order (RRset-equals ones grouped per RRset).
    pub prereqs: Vec<Prereq>,
    /// Edits, in order.
    pub edits: Vec<Edit>,
    /// Update RRs ignored as RFC 2136 §3.4.2 says (`owner TYPE` each).
    pub ignored: Vec<String>,
}

/// A name as the store writes owners: lower-case FQDN with the dot.
fn owner_of(name: &Name) -> String {
    let mut s = name.to_lowercase().to_ascii();
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

/// Types that are never data: RFC 2136 §3.4.1.3 lists ANY, AXFR, MAILA
/// and MAILB; OPT and the q/meta range 128-255 (TKEY, TSIG, IXFR...) are
/// not data either (RFC 6895 §3.1).
fn meta(t: RecordType) -> bool {
    matches!(u16::from(t), 41 | 128..=255)
}

/// Parses the prerequisite (§2.4, §3.2) and update (§2.5, §3.4.1 prescan)
/// sections of an UPDATE to `zone` (lower-case FQDN). Pure.
pub fn parse(zone: &str, prereqs: &[Record], updates: &[Record]) -> Result<Parsed, Malformed> {
    let mut out = Parsed::default();
    let in_zone = |r: &Record| -> Result<String, Malformed> {
        let owner = owner_of(&r.name);
        if is_at_or_below(&owner, zone) {
            Ok(owner)
        } else {
            Err(Malformed {
                rcode: ResponseCode::NotZone,
                detail: format!("{owner} is not in zone {zone}"),
            })
        }
    };
    // RRset-equals prerequisites are one per RRset, built from all its RRs
    // (§3.2.3); keep the position of the first.
    let mut equals: BTreeMap<(String, RecordType), usize> = BTreeMap::new();
    for r in prereqs {
        let owner = in_zone(r)?;
        let rtype = r.record_type();
        let empty = matches!(r.data, RData::Update0(_));
        let what = || format!("prerequisite {owner} {rtype}");
        if r.ttl != 0 {
            return Err(Malformed::formerr(format!("{}: TTL must be 0", what())));
        }
        let p = match (r.dns_class, empty) {
            (DNSClass::ANY, true) if rtype == RecordType::ANY => Prereq::NameInUse {
                owner: owner.clone(),
            },
            (DNSClass::ANY, true) => Prereq::RRsetExists {
                owner: owner.clone(),
                rtype,
            },
            (DNSClass::NONE, true) if rtype == RecordType::ANY => Prereq::NameNotInUse {
                owner: owner.clone(),
            },
            (DNSClass::NONE, true) => Prereq::RRsetAbsent {
                owner: owner.clone(),
                rtype,
            },
            (DNSClass::IN, false) if !meta(rtype) => {
                let text = storage_text(&r.data);
                match equals.get(&(owner.clone(), rtype)) {
                    Some(&i) => {
                        if let Some(Prereq::RRsetEquals { rdata, .. }) = out.prereqs.get_mut(i) {
                            if !rdata.contains(&text) {
                                rdata.push(text);
                            }
                        }
                        continue;
                    }
                    None => {
                        equals.insert((owner.clone(), rtype), out.prereqs.len());
                        Prereq::RRsetEquals {
                            owner: owner.clone(),
                            rtype,
                            rdata: vec![text],
                        }
                    }
                }
            }
            _ => {
                return Err(Malformed::formerr(format!(
                    "{}: class {} with {} data is no prerequisite",
                    what(),
                    r.dns_class,
                    if empty { "no" } else { "some" }
                )))
            }
        };
        out.prereqs.push(p);
    }
    for r in updates {
        let owner = in_zone(r)?;
        let rtype = r.record_type();
        let empty = matches!(r.data, RData::Update0(_));
        let what = format!("{owner} {rtype}");
        let apex_ns = owner == zone && rtype == RecordType::NS;
        let edit = match r.dns_class {
            DNSClass::IN => {
                if meta(rtype) || empty {
                    return Err(Malformed::formerr(format!(
                        "update adds {what} without data or of a meta type"
                    )));
                }
                if rtype == RecordType::SOA {
                    // §3.4.2.2 lets an SOA replace the zone's when its serial
                    // is newer; pdm owns the SOA and the serial.
                    out.ignored.push(what);
                    continue;
                }
                Edit::Extend {
                    owner,
                    rtype,
                    ttl: r.ttl,
                    rdata: vec![storage_text(&r.data)],
                }
            }
            DNSClass::ANY => {
                if r.ttl != 0 || !empty || matches!(rtype, RecordType::AXFR | RecordType::IXFR) {
                    return Err(Malformed::formerr(format!(
                        "update deletes {what} with a TTL, data or a meta type"
                    )));
                }
                if rtype == RecordType::ANY {
                    // SOA, apex NS and DNSSEC records stay (§3.4.2.3).
                    Edit::DeleteName { owner }
                } else if rtype == RecordType::SOA || apex_ns {
                    // §3.4.2.3: the SOA and the apex NS RRset are not deleted.
                    out.ignored.push(what);
                    continue;
                } else {
                    Edit::Replace {
                        owner,
                        rtype,
                        ttl: 0,
                        rdata: Vec::new(),
                    }
                }
            }
            DNSClass::NONE => {
                if r.ttl != 0 || empty || meta(rtype) {
                    return Err(Malformed::formerr(format!(
                        "update deletes an RR of {what} with a TTL, no data or a meta type"
                    )));
                }
                if rtype == RecordType::SOA || apex_ns {
                    // §3.4.2.4: SOA RRs are never deleted; the apex NS
                    // RRset is pdm's, so it is treated as the last one.
                    out.ignored.push(what);
                    continue;
                }
                Edit::Prune {
                    owner,
                    rtype,
                    rdata: vec![storage_text(&r.data)],
                }
            }
            c => {
                return Err(Malformed::formerr(format!(
                    "update {what}: class {c} is not the zone's, ANY or NONE"
                )))
            }
        };
        // Several RRs added to one RRset in a row are one edit.
        if let (
            Edit::Extend {
                owner,
                rtype,
                ttl,
                rdata,
            },
            Some(Edit::Extend {
                owner: o,
                rtype: t,
                ttl: last_ttl,
                rdata: last,
            }),
        ) = (&edit, out.edits.last_mut())
        {
            if o == owner && t == rtype {
                *last_ttl = *ttl;
                for d in rdata {
                    if !last.contains(d) {
                        last.push(d.clone());
                    }
                }
                continue;
            }
        }
        out.edits.push(edit);
    }
    Ok(out)
}

/// The rcode a failed change set earns.
pub fn rcode_of(e: &RecordError) -> ResponseCode {
    match e {
        RecordError::Prerequisite { failure, .. } => match failure {
            PrereqFailure::NameNotInUse => ResponseCode::NXDomain,
            PrereqFailure::NameInUse => ResponseCode::YXDomain,
            PrereqFailure::RRsetMissing => ResponseCode::NXRRSet,
            PrereqFailure::RRsetExists => ResponseCode::YXRRSet,
        },
        RecordError::Invalid { kind, .. } => match kind {
            Invalid::OutsideZone | Invalid::InsideChildZone => ResponseCode::NotZone,
            Invalid::InvalidRdata | Invalid::InvalidName | Invalid::InvalidType => {
                ResponseCode::FormErr
            }
            // SOA/NS/DNSSEC, CNAME and delegation rules, TTL and size bounds:
            // the server will not make this change.
            _ => ResponseCode::Refused,
        },
        RecordError::Denied(_) | RecordError::Exists(_) | RecordError::CredentialGone(_) => {
            ResponseCode::Refused
        }
        RecordError::ZoneNotFound(_) => ResponseCode::NotAuth,
        RecordError::Unsupported(_) => ResponseCode::NotImp,
        RecordError::Store(_) => ResponseCode::ServFail,
    }
}

/// An rcode's mnemonic (log and metrics).
pub fn rcode_name(r: ResponseCode) -> &'static str {
    match r {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::YXDomain => "YXDOMAIN",
        ResponseCode::YXRRSet => "YXRRSET",
        ResponseCode::NXRRSet => "NXRRSET",
        ResponseCode::NotAuth => "NOTAUTH",
        ResponseCode::NotZone => "NOTZONE",
        _ => "OTHER",
    }
}

/// The control plane's [`UpdateHandler`]: keys' policies from the store,
/// writes through [`RecordService`], answers once served here.
#[derive(Clone)]
pub struct Updates {
    records: RecordService,
    store: Store,
    served: Option<Served>,
    counts: UpdateCalls,
}

/// A cached key that the store must confirm before the answer.
struct Stale;

/// Why an UPDATE was not applied, before the record path decides.
enum Refusal {
    /// The key has no record policy, or it does not parse.
    NoPolicy(String),
    /// The policy does not admit this source or time.
    NotAdmitted(String),
    /// The store could not be read.
    Store(String),
}

impl Updates {
    /// Apply through `records`, read keys from `store`, wait on `served`
    /// (none: answer at once), count into `counts`.
    pub fn new(
        records: RecordService,
        store: Store,
        served: Option<Served>,
        counts: UpdateCalls,
    ) -> Self {
        Updates {
            records,
            store,
            served,
            counts,
        }
    }

    /// The writer a key stands for: its stored policy, if it admits `remote`
    /// now. With `cached`, a policy read before may stand in for the store
    /// (the write re-finds the key in its transaction: [`Writer::recheck`]).
    async fn writer(&self, key: &str, remote: SocketAddr, cached: bool) -> Result<Writer, Refusal> {
        let hit = if cached {
            self.records.credentials().key(key)
        } else {
            None
        };
        let recheck = hit.as_ref().map(|k| k.recheck());
        let entry = match hit {
            Some(k) => k,
            None => self.read_key(key).await?,
        };
        entry
            .policy
            .admits(Some(remote.ip()), crate::store::now_ms())
            .map_err(Refusal::NotAdmitted)?;
        Ok(Writer {
            credential: format!("tsig:{key}"),
            policy: Arc::clone(&entry.policy),
            path: WritePath::Rfc2136,
            recheck,
        })
    }

    /// Key `key`'s policy from the store, cached for the next UPDATE.
    async fn read_key(&self, key: &str) -> Result<Arc<CachedKey>, Refusal> {
        let row = self
            .store
            .tsig_key(key)
            .await
            .map_err(|e| Refusal::Store(e.to_string()))?;
        let (sealed, text) = row
            .and_then(|r| r.policy.map(|p| (r.sealed, p)))
            .ok_or_else(|| Refusal::NoPolicy(format!("TSIG key {key} has no record policy")))?;
        let policy = serde_json::from_str::<PolicySpec>(&text)
            .map_err(|e| e.to_string())
            .and_then(|s| s.parse().map_err(|e| e.to_string()))
            .map_err(|e| Refusal::NoPolicy(format!("TSIG key {key}: stored policy: {e}")))?;
        Ok(self.records.credentials().keep_key(CachedKey {
            name: key.to_string(),
            sealed,
            policy: Arc::new(policy),
        }))
    }

    /// Apply one UPDATE; the rcode and what to log.
    async fn run(&self, req: &UpdateRequest, key: &str, zone: &str) -> (ResponseCode, String) {
        match self.run_once(req, key, zone, true).await {
            // The cached key was deleted or made again since, or the
            // message failed before the write could re-find it: answer
            // from the store, as without a cache.
            Err(Stale) => self
                .run_once(req, key, zone, false)
                .await
                .unwrap_or_else(|Stale| {
                    (
                        ResponseCode::Refused,
                        format!("TSIG key {key} has no record policy"),
                    )
                }),
            Ok(answer) => answer,
        }
    }

    /// [`Updates::run`] with the cached key (`cached`) or the stored one.
    async fn run_once(
        &self,
        req: &UpdateRequest,
        key: &str,
        zone: &str,
        cached: bool,
    ) -> Result<(ResponseCode, String), Stale> {
        let writer = match self.writer(key, req.remote, cached).await {
            Ok(w) => w,
            Err(Refusal::NoPolicy(m)) | Err(Refusal::NotAdmitted(m)) => {
                return Ok((ResponseCode::Refused, m))
            }
            Err(Refusal::Store(m)) => return Ok((ResponseCode::ServFail, m)),
        };
        let unconfirmed = writer.recheck.is_some();
        let parsed = match parse(zone, &req.prerequisites, &req.updates) {
            Ok(p) => p,
            Err(_) if unconfirmed => return Err(Stale),
            Err(m) => return Ok((m.rcode, m.detail)),
        };
        let ignored = if parsed.ignored.is_empty() {
            String::new()
        } else {
            format!("; ignored: {}", parsed.ignored.join(", "))
        };
        match self
            .records
            .apply(zone, &parsed.edits, &parsed.prereqs, &writer)
            .await
        {
            Ok(applied) => {
                if let Some(change) = applied.journal_id {
                    self.wait_served(change).await;
                }
                Ok((
                    ResponseCode::NoError,
                    format!(
                        "{} RRsets changed, serial {}{ignored}",
                        applied.changed.len(),
                        applied.serial
                    ),
                ))
            }
            Err(RecordError::CredentialGone(_)) if unconfirmed => Err(Stale),
            // No such zone: the lock was never taken, the key never re-found.
            Err(RecordError::ZoneNotFound(_)) if unconfirmed => Err(Stale),
            Err(e) => Ok((rcode_of(&e), e.to_string())),
        }
    }

    /// Waits until this node serves journal entry `change` (the UPDATE's).
    async fn wait_served(&self, change: i64) {
        let Some(served) = &self.served else {
            return;
        };
        if !served.serves(change, SERVED_TIMEOUT).await {
            tracing::warn!(
                timeout_ms = SERVED_TIMEOUT.as_millis() as u64,
                "an UPDATE answered before this node served it (snapshot behind)"
            );
        }
    }
}

#[async_trait::async_trait]
impl UpdateHandler for Updates {
    async fn update(&self, req: UpdateRequest) -> ResponseCode {
        // Keys are stored without the trailing dot.
        let key = owner_of(&req.key).trim_end_matches('.').to_string();
        let zone = owner_of(&req.zone);
        let (rcode, detail) = self.run(&req, &key, &zone).await;
        self.counts.count(rcode_name(rcode));
        tracing::info!(
            zone = %zone,
            key = %key,
            remote = %req.remote,
            prerequisites = req.prerequisites.len(),
            updates = req.updates.len(),
            rcode = rcode_name(rcode),
            detail = %detail,
            "rfc2136 update"
        );
        rcode
    }

    fn rejected(&self, remote: SocketAddr, key: Option<&Name>, why: Rejected, rcode: ResponseCode) {
        self.counts.count(rcode_name(rcode));
        // Anyone can send these: debug, so the log is not theirs to fill.
        tracing::debug!(
            remote = %remote,
            key = ?key.map(|k| k.to_ascii()),
            why = why.as_str(),
            rcode = rcode_name(rcode),
            "rfc2136 update rejected"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, CNAME, TXT};
    use std::str::FromStr;

    const ZONE: &str = "acme.pool.test.";

    fn name(s: &str) -> Name {
        Name::from_str(s).unwrap()
    }

    fn rr(owner: &str, class: DNSClass, ttl: u32, data: RData) -> Record {
        let mut r = Record::from_rdata(name(owner), ttl, data);
        r.dns_class = class;
        r
    }

    fn empty(owner: &str, class: DNSClass, t: RecordType) -> Record {
        rr(owner, class, 0, RData::Update0(t))
    }

    fn txt(s: &str) -> RData {
        RData::TXT(TXT::new(vec![s.to_string()]))
    }

    #[test]
    fn every_prerequisite_kind() {
        let p = parse(
            ZONE,
            &[
                empty("A.acme.pool.test.", DNSClass::ANY, RecordType::ANY),
                empty("b.acme.pool.test.", DNSClass::ANY, RecordType::TXT),
                empty("c.acme.pool.test.", DNSClass::NONE, RecordType::ANY),
                empty("d.acme.pool.test.", DNSClass::NONE, RecordType::A),
                rr("e.acme.pool.test.", DNSClass::IN, 0, txt("x")),
                rr("f.acme.pool.test.", DNSClass::IN, 0, txt("z")),
                rr("e.acme.pool.test.", DNSClass::IN, 0, txt("y")),
            ],
            &[],
        )
        .unwrap();
        let o = |s: &str| format!("{s}.acme.pool.test.");
        assert_eq!(
            p.prereqs,
            vec![
                Prereq::NameInUse { owner: o("a") },
                Prereq::RRsetExists {
                    owner: o("b"),
                    rtype: RecordType::TXT
                },
                Prereq::NameNotInUse { owner: o("c") },
                Prereq::RRsetAbsent {
                    owner: o("d"),
                    rtype: RecordType::A
                },
                Prereq::RRsetEquals {
                    owner: o("e"),
                    rtype: RecordType::TXT,
                    rdata: vec!["\"x\"".into(), "\"y\"".into()]
                },
                Prereq::RRsetEquals {
                    owner: o("f"),
                    rtype: RecordType::TXT,
                    rdata: vec!["\"z\"".into()]
                },
            ]
        );
    }

    #[test]
    fn malformed_prerequisites_are_formerr_and_foreign_names_notzone() {
        let bad = [
            // A TTL.
            rr(
                "a.acme.pool.test.",
                DNSClass::ANY,
                5,
                RData::Update0(RecordType::A),
            ),
            // Data with class ANY / NONE.
            rr("a.acme.pool.test.", DNSClass::ANY, 0, txt("x")),
            rr("a.acme.pool.test.", DNSClass::NONE, 0, txt("x")),
            // Class CH.
            empty("a.acme.pool.test.", DNSClass::CH, RecordType::A),
            // The zone's class without data.
            empty("a.acme.pool.test.", DNSClass::IN, RecordType::A),
        ];
        for r in bad {
            let e = parse(ZONE, std::slice::from_ref(&r), &[]).unwrap_err();
            assert_eq!(e.rcode, ResponseCode::FormErr, "{r:?}");
        }
        let e = parse(
            ZONE,
            &[empty("x.other.test.", DNSClass::ANY, RecordType::ANY)],
            &[],
        )
        .unwrap_err();
        assert_eq!(e.rcode, ResponseCode::NotZone);
    }

    #[test]
    fn update_section_to_edits() {
        let a = |ip: [u8; 4]| RData::A(A::new(ip[0], ip[1], ip[2], ip[3]));
        let p = parse(
            ZONE,
            &[],
            &[
                rr("w.acme.pool.test.", DNSClass::IN, 300, a([192, 0, 2, 1])),
                rr("w.acme.pool.test.", DNSClass::IN, 600, a([192, 0, 2, 2])),
                empty("x.acme.pool.test.", DNSClass::ANY, RecordType::TXT),
                rr("y.acme.pool.test.", DNSClass::NONE, 0, txt("t")),
                empty("z.acme.pool.test.", DNSClass::ANY, RecordType::ANY),
            ],
        )
        .unwrap();
        let o = |s: &str| format!("{s}.acme.pool.test.");
        assert_eq!(
            p.edits,
            vec![
                Edit::Extend {
                    owner: o("w"),
                    rtype: RecordType::A,
                    ttl: 600,
                    rdata: vec!["192.0.2.1".into(), "192.0.2.2".into()]
                },
                Edit::Replace {
                    owner: o("x"),
                    rtype: RecordType::TXT,
                    ttl: 0,
                    rdata: vec![]
                },
                Edit::Prune {
                    owner: o("y"),
                    rtype: RecordType::TXT,
                    rdata: vec!["\"t\"".into()]
                },
                Edit::DeleteName { owner: o("z") },
            ]
        );
        assert!(p.ignored.is_empty());
    }

    #[test]
    fn soa_and_apex_ns_deletions_are_ignored_other_pdm_types_go_to_the_write_path() {
        use hickory_proto::rr::rdata::{NS, SOA};
        let soa = RData::SOA(SOA::new(
            name("ns1.pool.test."),
            name("hostmaster.pool.test."),
            99,
            1,
            1,
            1,
            1,
        ));
        let p = parse(
            ZONE,
            &[],
            &[
                rr(ZONE, DNSClass::IN, 300, soa.clone()),
                empty(ZONE, DNSClass::ANY, RecordType::SOA),
                rr(ZONE, DNSClass::NONE, 0, soa),
                empty(ZONE, DNSClass::ANY, RecordType::NS),
                rr(
                    ZONE,
                    DNSClass::NONE,
                    0,
                    RData::NS(NS(name("ns1.pool.test."))),
                ),
                // Adding an apex NS is not ignored: the write path refuses it.
                rr(
                    ZONE,
                    DNSClass::IN,
                    300,
                    RData::NS(NS(name("ns9.pool.test."))),
                ),
            ],
        )
        .unwrap();
        assert_eq!(p.ignored.len(), 5, "{:?}", p.ignored);
        assert_eq!(p.edits.len(), 1);
        let refused = RecordError::invalid(Invalid::Managed, "x".into(), "y".into());
        assert_eq!(rcode_of(&refused), ResponseCode::Refused);
        let cname = RecordError::invalid(Invalid::CnameConflict, "x".into(), "y".into());
        assert_eq!(rcode_of(&cname), ResponseCode::Refused);
    }

    #[test]
    fn malformed_updates_are_formerr() {
        let bad = [
            // Add without data, or of a meta type.
            empty("a.acme.pool.test.", DNSClass::IN, RecordType::A),
            // Delete RRset with a TTL or data.
            rr(
                "a.acme.pool.test.",
                DNSClass::ANY,
                3,
                RData::Update0(RecordType::A),
            ),
            rr("a.acme.pool.test.", DNSClass::ANY, 0, txt("x")),
            empty("a.acme.pool.test.", DNSClass::ANY, RecordType::AXFR),
            // Delete RR without data, with a TTL, of type ANY.
            empty("a.acme.pool.test.", DNSClass::NONE, RecordType::A),
            rr("a.acme.pool.test.", DNSClass::NONE, 7, txt("x")),
            empty("a.acme.pool.test.", DNSClass::NONE, RecordType::ANY),
            // Another class.
            rr("a.acme.pool.test.", DNSClass::CH, 0, txt("x")),
        ];
        for r in bad {
            let e = parse(ZONE, &[], std::slice::from_ref(&r)).unwrap_err();
            assert_eq!(e.rcode, ResponseCode::FormErr, "{r:?}");
        }
        let e = parse(
            ZONE,
            &[],
            &[rr(
                "www.example.test.",
                DNSClass::IN,
                60,
                RData::CNAME(CNAME(name("x.test."))),
            )],
        )
        .unwrap_err();
        assert_eq!(e.rcode, ResponseCode::NotZone);
    }

    #[test]
    fn every_record_error_has_its_rcode() {
        let p = |f| RecordError::Prerequisite {
            failure: f,
            detail: String::new(),
        };
        assert_eq!(
            rcode_of(&p(PrereqFailure::NameNotInUse)),
            ResponseCode::NXDomain
        );
        assert_eq!(
            rcode_of(&p(PrereqFailure::NameInUse)),
            ResponseCode::YXDomain
        );
        assert_eq!(
            rcode_of(&p(PrereqFailure::RRsetMissing)),
            ResponseCode::NXRRSet
        );
        assert_eq!(
            rcode_of(&p(PrereqFailure::RRsetExists)),
            ResponseCode::YXRRSet
        );
        assert_eq!(
            rcode_of(&RecordError::Denied("no".into())),
            ResponseCode::Refused
        );
        assert_eq!(
            rcode_of(&RecordError::ZoneNotFound("z".into())),
            ResponseCode::NotAuth
        );
    }
}

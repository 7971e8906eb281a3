//! What a set of edits does to a zone, and whether it may: pure. The
//! service reads the part of the zone the edits can affect (a
//! [`Neighbourhood`]), [`plan`] applies the edits to it, checks the zone
//! rules and the writer's policy on the result, and returns the RRsets that
//! change, each with its before and after. Nothing is written unless the
//! whole plan passes: a change set is all or nothing.

use super::{Edit, Invalid, RecordError};
use crate::model::rtype::type_name;
use crate::policy::{is_at_or_below, Access, Policy, Verdict};
use hickory_proto::rr::RecordType;
use std::collections::{BTreeMap, BTreeSet};

/// An RRset's TTL and rdata (presentation text as stored, no duplicates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RRsetData {
    /// TTL in seconds.
    pub ttl: u32,
    /// Canonical presentation rdata, in the order written.
    pub rdata: Vec<String>,
}

/// `(owner, type)`: owner lower-case FQDN with the dot.
pub type RRsetKey = (String, RecordType);

/// Bounds on what tenants write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Smallest TTL accepted.
    pub min_ttl: u32,
    /// Largest TTL accepted.
    pub max_ttl: u32,
    /// Most records in one RRset.
    pub max_rrset_records: usize,
    /// Most records in the zone (`None`: no bound, pool zones).
    pub max_zone_records: Option<usize>,
}

/// The part of a zone that edits at some owners can affect.
#[derive(Debug, Clone, Default)]
pub struct Neighbourhood {
    /// The zone, lower-case FQDN with the dot.
    pub zone: String,
    /// Every RRset at the edited owners and at their ancestors in the zone.
    pub sets: BTreeMap<RRsetKey, RRsetData>,
    /// For owners that may become a delegation or a DNAME: the RRsets
    /// strictly below them.
    pub below: BTreeMap<String, Vec<RRsetKey>>,
    /// Names of other zones pdm hosts at or above an edited owner (a pool
    /// zone's children): their data is theirs.
    pub hosted: BTreeSet<String>,
    /// The RRsets the pool's template wrote (protected unless a rule allows).
    pub template: BTreeSet<RRsetKey>,
    /// Records in the zone now.
    pub zone_records: usize,
}

/// One RRset that a plan changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RRsetWrite {
    /// Owner, lower-case FQDN.
    pub owner: String,
    /// Type.
    pub rtype: RecordType,
    /// Before the change (`None`: did not exist).
    pub before: Option<RRsetData>,
    /// After the change (`None`: deleted).
    pub after: Option<RRsetData>,
}

/// Types that are pdm's: written by the keyring and the apex builder.
pub fn managed_type(t: RecordType) -> bool {
    matches!(
        t,
        RecordType::SOA
            | RecordType::DNSKEY
            | RecordType::RRSIG
            | RecordType::NSEC
            | RecordType::NSEC3
            | RecordType::NSEC3PARAM
            | RecordType::CDS
            | RecordType::CDNSKEY
            | RecordType::KEY
            | RecordType::SIG
    )
}

/// Types that are not data at all (questions, transaction records).
fn meta_type(t: RecordType) -> bool {
    matches!(
        t,
        RecordType::ANY
            | RecordType::AXFR
            | RecordType::IXFR
            | RecordType::OPT
            | RecordType::TSIG
            | RecordType::NULL
    ) || matches!(u16::from(t), 128..=255)
}

/// What is `rtype` at `owner` of `zone`: `Err` names why no one may write it.
pub fn writable(zone: &str, owner: &str, rtype: RecordType) -> Result<(), (Invalid, String)> {
    let what = || format!("{owner} {}", type_name(rtype));
    if meta_type(rtype) {
        return Err((
            Invalid::InvalidType,
            format!("{} is not a data type", what()),
        ));
    }
    if managed_type(rtype) {
        return Err((
            Invalid::Managed,
            format!("{}: pdm writes {} records itself", what(), type_name(rtype)),
        ));
    }
    if owner == zone && matches!(rtype, RecordType::NS | RecordType::DS) {
        return Err((
            Invalid::Managed,
            format!(
                "{}: the apex {} is pdm's (delegation and DNSSEC)",
                what(),
                type_name(rtype)
            ),
        ));
    }
    Ok(())
}

/// Applies `edits` to `n`, checks the result, and returns what changes.
pub fn plan(
    n: &Neighbourhood,
    edits: &[Edit],
    policy: &Policy,
    limits: &Limits,
) -> Result<Vec<RRsetWrite>, RecordError> {
    let zone = n.zone.as_str();
    let mut sets = n.sets.clone();
    let mut touched: BTreeSet<RRsetKey> = BTreeSet::new();
    for e in edits {
        let owner = e.owner();
        if !is_at_or_below(owner, zone) {
            return Err(RecordError::invalid(
                Invalid::OutsideZone,
                e.describe(),
                format!("{owner} is not in zone {zone}"),
            ));
        }
        if let Some(h) = n.hosted.iter().find(|h| is_at_or_below(owner, h)) {
            return Err(RecordError::invalid(
                Invalid::InsideChildZone,
                e.describe(),
                format!("{owner} is in zone {h}, which pdm serves as a zone of its own"),
            ));
        }
        match e {
            Edit::DeleteName { owner } => {
                let keys: Vec<RRsetKey> = sets
                    .range((owner.clone(), RecordType::from(0))..)
                    .take_while(|((o, _), _)| o == owner)
                    .map(|(k, _)| k.clone())
                    .filter(|(o, t)| writable(zone, o, *t).is_ok())
                    .collect();
                for k in keys {
                    sets.remove(&k);
                    touched.insert(k);
                }
            }
            Edit::Replace {
                owner,
                rtype,
                ttl,
                rdata,
            }
            | Edit::Extend {
                owner,
                rtype,
                ttl,
                rdata,
            } => {
                check_writable(zone, owner, *rtype, e)?;
                if !rdata.is_empty() {
                    check_ttl(*ttl, limits, e)?;
                }
                let key = (owner.clone(), *rtype);
                let mut new: Vec<String> = match e {
                    Edit::Extend { .. } => {
                        sets.get(&key).map(|d| d.rdata.clone()).unwrap_or_default()
                    }
                    _ => Vec::new(),
                };
                for r in rdata {
                    if !new.contains(r) {
                        new.push(r.clone());
                    }
                }
                if new.is_empty() {
                    sets.remove(&key);
                } else {
                    sets.insert(
                        key.clone(),
                        RRsetData {
                            ttl: *ttl,
                            rdata: new,
                        },
                    );
                }
                touched.insert(key);
            }
            Edit::Prune {
                owner,
                rtype,
                rdata,
            } => {
                check_writable(zone, owner, *rtype, e)?;
                let key = (owner.clone(), *rtype);
                if let Some(d) = sets.get_mut(&key) {
                    d.rdata.retain(|r| !rdata.contains(r));
                    if d.rdata.is_empty() {
                        sets.remove(&key);
                    }
                }
                touched.insert(key);
            }
        }
    }

    let writes: Vec<RRsetWrite> = touched
        .iter()
        .filter_map(|k| {
            let before = n.sets.get(k);
            let after = sets.get(k);
            (before != after).then(|| RRsetWrite {
                owner: k.0.clone(),
                rtype: k.1,
                before: before.cloned(),
                after: after.cloned(),
            })
        })
        .collect();

    for w in &writes {
        let template = n.template.contains(&(w.owner.clone(), w.rtype));
        if let Verdict::Denied(why) = policy.check(zone, &w.owner, w.rtype, Access::Write, template)
        {
            return Err(RecordError::Denied(why));
        }
        if let Some(after) = &w.after {
            if after.rdata.len() > limits.max_rrset_records {
                return Err(RecordError::invalid(
                    Invalid::TooLarge,
                    describe(&w.owner, w.rtype),
                    format!(
                        "{} records; at most {} per RRset",
                        after.rdata.len(),
                        limits.max_rrset_records
                    ),
                ));
            }
        }
    }
    let owners: BTreeSet<&str> = writes.iter().map(|w| w.owner.as_str()).collect();
    for owner in owners {
        check_owner(n, &sets, owner)?;
    }
    if let Some(max) = limits.max_zone_records {
        let delta: isize = writes
            .iter()
            .map(|w| {
                w.after.as_ref().map_or(0, |d| d.rdata.len()) as isize
                    - w.before.as_ref().map_or(0, |d| d.rdata.len()) as isize
            })
            .sum();
        let after = (n.zone_records as isize + delta).max(0) as usize;
        if delta > 0 && after > max {
            return Err(RecordError::invalid(
                Invalid::TooLarge,
                zone.to_string(),
                format!("the zone would hold {after} records; at most {max}"),
            ));
        }
    }
    Ok(writes)
}

fn describe(owner: &str, rtype: RecordType) -> String {
    format!("{owner} {}", type_name(rtype))
}

fn check_writable(zone: &str, owner: &str, rtype: RecordType, e: &Edit) -> Result<(), RecordError> {
    writable(zone, owner, rtype)
        .map_err(|(kind, detail)| RecordError::invalid(kind, e.describe(), detail))
}

fn check_ttl(ttl: u32, limits: &Limits, e: &Edit) -> Result<(), RecordError> {
    if ttl < limits.min_ttl || ttl > limits.max_ttl {
        return Err(RecordError::invalid(
            Invalid::TtlOutOfRange,
            e.describe(),
            format!(
                "TTL {ttl} is outside {}..={}",
                limits.min_ttl, limits.max_ttl
            ),
        ));
    }
    Ok(())
}

/// The zone rules at one owner, on the state after the edits.
fn check_owner(
    n: &Neighbourhood,
    sets: &BTreeMap<RRsetKey, RRsetData>,
    owner: &str,
) -> Result<(), RecordError> {
    let zone = n.zone.as_str();
    let at: Vec<(RecordType, &RRsetData)> = sets
        .range((owner.to_string(), RecordType::from(0))..)
        .take_while(|((o, _), _)| o == owner)
        .map(|((_, t), d)| (*t, d))
        .collect();
    let has = |t: RecordType| at.iter().any(|(x, _)| *x == t);
    let conflict = |kind, detail: String, t: RecordType| {
        Err(RecordError::invalid(kind, describe(owner, t), detail))
    };
    if has(RecordType::CNAME) {
        if owner == zone {
            return conflict(
                Invalid::CnameConflict,
                "a CNAME cannot be at the zone apex".into(),
                RecordType::CNAME,
            );
        }
        if let Some((other, _)) = at.iter().find(|(t, _)| *t != RecordType::CNAME) {
            return conflict(
                Invalid::CnameConflict,
                format!(
                    "a CNAME cannot share its owner with other data ({})",
                    type_name(*other)
                ),
                RecordType::CNAME,
            );
        }
    }
    for single in [RecordType::CNAME, RecordType::DNAME] {
        if let Some((_, d)) = at.iter().find(|(t, _)| *t == single) {
            if d.rdata.len() > 1 {
                return conflict(
                    Invalid::CnameConflict,
                    format!("a {} RRset holds exactly one record", type_name(single)),
                    single,
                );
            }
        }
    }
    let delegation = owner != zone && has(RecordType::NS);
    if has(RecordType::DS) && !delegation {
        return conflict(
            Invalid::DelegationRule,
            "a DS needs an NS RRset at the same owner (a delegation)".into(),
            RecordType::DS,
        );
    }
    if delegation {
        if let Some((t, _)) = at.iter().find(|(t, _)| {
            !matches!(
                *t,
                RecordType::NS | RecordType::DS | RecordType::A | RecordType::AAAA
            )
        }) {
            return conflict(
                Invalid::DelegationRule,
                format!("{owner} is a delegation (NS): only NS, DS and glue may be there"),
                *t,
            );
        }
    }
    // Below a delegation only glue; below a DNAME nothing (RFC 6672 §2.3).
    if !at.is_empty() {
        let mut anc = parent(owner);
        while let Some(a) = anc.filter(|a| *a != zone && is_at_or_below(a, zone)) {
            let ns = sets.contains_key(&(a.to_string(), RecordType::NS));
            let dname = sets.contains_key(&(a.to_string(), RecordType::DNAME));
            if dname {
                return conflict(
                    Invalid::DelegationRule,
                    format!("{a} has a DNAME: no data may be below it"),
                    at[0].0,
                );
            }
            if ns {
                if let Some((t, _)) = at
                    .iter()
                    .find(|(t, _)| !matches!(*t, RecordType::A | RecordType::AAAA))
                {
                    return conflict(
                        Invalid::DelegationRule,
                        format!("{a} is a delegation: only glue (A, AAAA) may be below it"),
                        *t,
                    );
                }
            }
            anc = parent(a);
        }
    }
    // A new delegation or DNAME must not hide data below it.
    let below = |pred: &dyn Fn(RecordType) -> bool| -> Option<RRsetKey> {
        let stored = n.below.get(owner).into_iter().flatten().cloned();
        let edited = sets
            .keys()
            .filter(|(o, _)| o != owner && is_at_or_below(o, owner))
            .cloned();
        stored
            .chain(edited)
            .find(|k| pred(k.1) && (sets.contains_key(k) || !n.sets.contains_key(k)))
    };
    if has(RecordType::DNAME) {
        if let Some((o, t)) = below(&|_| true) {
            return conflict(
                Invalid::DelegationRule,
                format!(
                    "{o} {} is below: a DNAME owner has no descendants",
                    type_name(t)
                ),
                RecordType::DNAME,
            );
        }
    }
    if delegation {
        if let Some((o, t)) = below(&|t| !matches!(t, RecordType::A | RecordType::AAAA)) {
            return conflict(
                Invalid::DelegationRule,
                format!(
                    "{o} {} is below: a delegation may have only glue below it",
                    type_name(t)
                ),
                RecordType::NS,
            );
        }
    }
    Ok(())
}

/// The parent of a lower-case FQDN (`None` for the root).
fn parent(name: &str) -> Option<&str> {
    if name == "." {
        return None;
    }
    name.split_once('.')
        .map(|(_, p)| if p.is_empty() { "." } else { p })
}

/// Every ancestor of `owner` strictly below `zone`, nearest first.
pub fn ancestors_below<'a>(owner: &'a str, zone: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut cur = parent(owner);
    while let Some(a) = cur {
        if a == zone || !is_at_or_below(a, zone) {
            break;
        }
        out.push(a);
        cur = parent(a);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const Z: &str = "acme.pool.test.";

    fn limits() -> Limits {
        Limits {
            min_ttl: 30,
            max_ttl: 86400,
            max_rrset_records: 10,
            max_zone_records: Some(50),
        }
    }

    fn hood(sets: &[(&str, RecordType, &[&str])]) -> Neighbourhood {
        Neighbourhood {
            zone: Z.into(),
            sets: sets
                .iter()
                .map(|(o, t, r)| {
                    (
                        (o.to_string(), *t),
                        RRsetData {
                            ttl: 300,
                            rdata: r.iter().map(|s| s.to_string()).collect(),
                        },
                    )
                })
                .collect(),
            zone_records: sets.len(),
            ..Default::default()
        }
    }

    fn replace(owner: &str, rtype: RecordType, rdata: &[&str]) -> Edit {
        Edit::Replace {
            owner: owner.into(),
            rtype,
            ttl: 300,
            rdata: rdata.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn kind(r: Result<Vec<RRsetWrite>, RecordError>) -> Invalid {
        match r {
            Err(RecordError::Invalid { kind, .. }) => kind,
            other => panic!("expected an invalid change, got {other:?}"),
        }
    }

    #[test]
    fn replace_extend_prune_and_delete() {
        let n = hood(&[("www.acme.pool.test.", RecordType::A, &["192.0.2.1"])]);
        let all = Policy::everything();
        let w = plan(
            &n,
            &[Edit::Extend {
                owner: "www.acme.pool.test.".into(),
                rtype: RecordType::A,
                ttl: 300,
                rdata: vec!["192.0.2.2".into(), "192.0.2.1".into()],
            }],
            &all,
            &limits(),
        )
        .unwrap();
        assert_eq!(w.len(), 1);
        assert_eq!(
            w[0].after.as_ref().unwrap().rdata,
            vec!["192.0.2.1", "192.0.2.2"]
        );
        let w = plan(
            &n,
            &[Edit::Prune {
                owner: "www.acme.pool.test.".into(),
                rtype: RecordType::A,
                rdata: vec!["192.0.2.1".into()],
            }],
            &all,
            &limits(),
        )
        .unwrap();
        assert_eq!(w[0].after, None);
        // The same content is no change at all.
        assert!(plan(
            &n,
            &[replace(
                "www.acme.pool.test.",
                RecordType::A,
                &["192.0.2.1"]
            )],
            &all,
            &limits()
        )
        .unwrap()
        .is_empty());
        let w = plan(
            &n,
            &[Edit::DeleteName {
                owner: "www.acme.pool.test.".into(),
            }],
            &all,
            &limits(),
        )
        .unwrap();
        assert_eq!(w[0].before.as_ref().unwrap().rdata, vec!["192.0.2.1"]);
    }

    #[test]
    fn cname_is_exclusive_and_single() {
        let n = hood(&[("www.acme.pool.test.", RecordType::A, &["192.0.2.1"])]);
        let all = Policy::everything();
        assert_eq!(
            kind(plan(
                &n,
                &[replace(
                    "www.acme.pool.test.",
                    RecordType::CNAME,
                    &["x.test."]
                )],
                &all,
                &limits()
            )),
            Invalid::CnameConflict
        );
        // Replacing the A by a CNAME in one change set is fine.
        assert!(plan(
            &n,
            &[
                replace("www.acme.pool.test.", RecordType::A, &[]),
                replace("www.acme.pool.test.", RecordType::CNAME, &["x.test."])
            ],
            &all,
            &limits()
        )
        .is_ok());
        assert_eq!(
            kind(plan(
                &n,
                &[replace(
                    "c.acme.pool.test.",
                    RecordType::CNAME,
                    &["x.test.", "y.test."]
                )],
                &all,
                &limits()
            )),
            Invalid::CnameConflict
        );
        assert_eq!(
            kind(plan(
                &n,
                &[replace(Z, RecordType::CNAME, &["x.test."])],
                &all,
                &limits()
            )),
            Invalid::CnameConflict
        );
    }

    #[test]
    fn managed_outside_and_ttl() {
        let n = hood(&[]);
        let all = Policy::everything();
        assert_eq!(
            kind(plan(
                &n,
                &[replace(Z, RecordType::SOA, &["a. b. 1 2 3 4 5"])],
                &all,
                &limits()
            )),
            Invalid::Managed
        );
        assert_eq!(
            kind(plan(
                &n,
                &[replace(Z, RecordType::NS, &["ns.test."])],
                &all,
                &limits()
            )),
            Invalid::Managed
        );
        assert_eq!(
            kind(plan(
                &n,
                &[replace("x.acme.pool.test.", RecordType::RRSIG, &["x"])],
                &all,
                &limits()
            )),
            Invalid::Managed
        );
        assert_eq!(
            kind(plan(
                &n,
                &[replace("www.other.test.", RecordType::A, &["192.0.2.1"])],
                &all,
                &limits()
            )),
            Invalid::OutsideZone
        );
        let e = Edit::Replace {
            owner: "a.acme.pool.test.".into(),
            rtype: RecordType::A,
            ttl: 5,
            rdata: vec!["192.0.2.1".into()],
        };
        assert_eq!(
            kind(plan(&n, &[e], &all, &limits())),
            Invalid::TtlOutOfRange
        );
        let mut n2 = hood(&[]);
        n2.hosted.insert("sub.acme.pool.test.".into());
        assert_eq!(
            kind(plan(
                &n2,
                &[replace(
                    "www.sub.acme.pool.test.",
                    RecordType::A,
                    &["192.0.2.1"]
                )],
                &all,
                &limits()
            )),
            Invalid::InsideChildZone
        );
    }

    #[test]
    fn delegation_and_dname_rules() {
        let all = Policy::everything();
        let n = hood(&[("d.acme.pool.test.", RecordType::NS, &["ns.elsewhere.test."])]);
        assert_eq!(
            kind(plan(
                &n,
                &[replace("x.d.acme.pool.test.", RecordType::TXT, &["\"t\""])],
                &all,
                &limits()
            )),
            Invalid::DelegationRule
        );
        assert!(plan(
            &n,
            &[replace(
                "ns.d.acme.pool.test.",
                RecordType::A,
                &["192.0.2.9"]
            )],
            &all,
            &limits()
        )
        .is_ok());
        assert!(plan(
            &n,
            &[replace("d.acme.pool.test.", RecordType::DS, &["1 13 2 aa"])],
            &all,
            &limits()
        )
        .is_ok());
        assert_eq!(
            kind(plan(
                &n,
                &[replace(
                    "d.acme.pool.test.",
                    RecordType::MX,
                    &["10 mx.test."]
                )],
                &all,
                &limits()
            )),
            Invalid::DelegationRule
        );
        assert_eq!(
            kind(plan(
                &hood(&[]),
                &[replace("e.acme.pool.test.", RecordType::DS, &["1 13 2 aa"])],
                &all,
                &limits()
            )),
            Invalid::DelegationRule
        );
        let mut n = hood(&[]);
        n.below.insert(
            "e.acme.pool.test.".into(),
            vec![("www.e.acme.pool.test.".into(), RecordType::TXT)],
        );
        assert_eq!(
            kind(plan(
                &n,
                &[replace(
                    "e.acme.pool.test.",
                    RecordType::NS,
                    &["ns.x.test."]
                )],
                &all,
                &limits()
            )),
            Invalid::DelegationRule
        );
        assert_eq!(
            kind(plan(
                &n,
                &[replace(
                    "e.acme.pool.test.",
                    RecordType::DNAME,
                    &["x.test."]
                )],
                &all,
                &limits()
            )),
            Invalid::DelegationRule
        );
    }

    #[test]
    fn policy_and_template_decide_the_whole_change() {
        let mut n = hood(&[(Z, RecordType::A, &["192.0.2.1"])]);
        n.template.insert((Z.into(), RecordType::A));
        let p: Policy = serde_json::from_str::<crate::policy::PolicySpec>(
            r#"{"rules":[{"zone":"acme.pool.test","access":"write"}]}"#,
        )
        .unwrap()
        .parse()
        .unwrap();
        let ok = replace(
            "_acme-challenge.acme.pool.test.",
            RecordType::TXT,
            &["\"x\""],
        );
        assert!(plan(&n, std::slice::from_ref(&ok), &p, &limits()).is_ok());
        let r = plan(
            &n,
            &[ok, replace(Z, RecordType::A, &["192.0.2.2"])],
            &p,
            &limits(),
        );
        assert!(matches!(r, Err(RecordError::Denied(m)) if m.contains("template")));
    }

    #[test]
    fn sizes_are_bounded() {
        let all = Policy::everything();
        let many: Vec<String> = (0..11).map(|i| format!("192.0.2.{i}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(
            kind(plan(
                &hood(&[]),
                &[replace("a.acme.pool.test.", RecordType::A, &refs)],
                &all,
                &limits()
            )),
            Invalid::TooLarge
        );
        let mut n = hood(&[]);
        n.zone_records = 50;
        assert_eq!(
            kind(plan(
                &n,
                &[replace("a.acme.pool.test.", RecordType::A, &["192.0.2.1"])],
                &all,
                &limits()
            )),
            Invalid::TooLarge
        );
    }
}

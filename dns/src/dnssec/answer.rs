//! Turning an unsigned [`Answer`] into a DNSSEC answer for a DO=1 query:
//! denial proofs chosen from the answer's [`AnswerKind`], then RRSIGs for
//! every authoritative RRset (RFC 4035 §3.1): none for referral NS or glue.

use std::borrow::Cow;
use std::sync::Arc;

use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::compact;
use super::nsec3::Entry;
use super::sign::{rrsig_record, sign_records, SignError};
use super::{same_name, Denial, ZoneSigner};
use crate::zone::{Answer, AnswerKind, Zone};

/// Adds proofs and signatures to `answer` (from `zone`, for `qname`), at `now`.
///
/// NSEC3 proofs and the negative SOA come with their RRSIGs, signed once
/// and kept (with the chain entry, with the signer): a random-name
/// NXDOMAIN is a hash, a look-up and a copy. Everything else is signed
/// through the signature cache.
pub fn secure(
    answer: &mut Answer,
    zone: &Zone,
    signer: &ZoneSigner,
    qname: &Name,
    now: u32,
) -> Result<(), SignError> {
    // Taken out for the duration, so the names in it can be borrowed
    // while the sections change (no copy of them per answer).
    let kind = std::mem::take(&mut answer.kind);
    let result = secure_kind(answer, &kind, zone, signer, qname, now);
    answer.kind = kind;
    result
}

fn secure_kind(
    answer: &mut Answer,
    kind: &AnswerKind,
    zone: &Zone,
    signer: &ZoneSigner,
    qname: &Name,
    now: u32,
) -> Result<(), SignError> {
    // Names whose RRsets were synthesized from a wildcard, with its closest encloser.
    let mut synthesized: Vec<(Name, Name)> = Vec::new();
    let (end, final_name): (&AnswerKind, Cow<'_, Name>) = match kind {
        AnswerKind::CnameChain { links, end } => {
            for (link, ce) in links {
                if let Some(ce) = ce {
                    synthesized.push((link.clone(), ce.clone()));
                }
            }
            let last = answer
                .answers
                .iter()
                .rev()
                .find_map(|r| match &r.data {
                    RData::CNAME(t) => Some(t.0.clone()),
                    _ => None,
                })
                .map_or(Cow::Borrowed(qname), Cow::Owned);
            (&**end, last)
        }
        k => (k, Cow::Borrowed(qname)),
    };
    if let AnswerKind::Wildcard { closest_encloser } = end {
        synthesized.push((final_name.clone().into_owned(), closest_encloser.clone()));
    }

    let referral = matches!(end, AnswerKind::Referral { .. });
    let proofs = proofs(answer, zone, signer, end, &final_name, &synthesized, now)?;
    if signer.mode() == super::DenialMode::Compact && answer.rcode == ResponseCode::NXDomain {
        // RFC 9824 §3: NXDOMAIN becomes NOERROR with an NXNAME NSEC.
        answer.rcode = ResponseCode::NoError;
    }

    let answers = std::mem::take(&mut answer.answers);
    answer.answers = sign_section(answers, signer, &synthesized, false, now)?;
    // The negative SOA and the proofs come signed: they go around
    // `sign_section`, in the places it would have put them.
    let mut authority = std::mem::take(&mut answer.authority);
    let soa_at = authority
        .iter()
        .position(|r| r.record_type() == RecordType::SOA);
    let mut out = match soa_at {
        Some(i) => {
            let mut rest = authority.split_off(i);
            let soa = rest.remove(0);
            let mut out = sign_section(authority, signer, &[], referral, now)?;
            signed_negative_soa(&mut out, &soa, signer, now)?;
            out.extend(sign_section(rest, signer, &[], referral, now)?);
            out
        }
        None => sign_section(authority, signer, &[], referral, now)?,
    };
    out.extend(proofs);
    answer.authority = out;
    if !referral {
        let additional = std::mem::take(&mut answer.additional);
        answer.additional = sign_section(additional, signer, &[], false, now)?;
    }
    Ok(())
}

/// Appends the negative answer's `soa` with its RRSIGs to `out`: the
/// signer's kept SOA + RRSIGs (made at the first such answer of this zone
/// version, renewed like any kept set) when it is this SOA; otherwise
/// `soa` signed afresh (and then kept).
fn signed_negative_soa(
    out: &mut Vec<Record>,
    soa: &Record,
    signer: &ZoneSigner,
    now: u32,
) -> Result<(), SignError> {
    signer.negative_soa.extend_into(
        out,
        signer.key_id(),
        &signer.policy,
        now,
        |kept| kept.first().is_some_and(|k| same_soa(k, soa)),
        || {
            let rrsigs = sign_group(signer, &soa.name, std::slice::from_ref(soa), now)?;
            let mut set = Vec::with_capacity(1 + rrsigs.len());
            set.push(soa.clone());
            set.extend(rrsigs);
            Ok(set)
        },
    )
}

/// Whether the kept SOA `a` is the answer's SOA `b`, in O(1): every
/// number and the shape of every name. The signer is built from the zone
/// version it serves (see `ServedZone::signed`), whose SOA the answer
/// carries; this guards against a SOA from another version (a commit
/// always changes the serial), without comparing names label by label at
/// every answer.
fn same_soa(a: &Record, b: &Record) -> bool {
    let (RData::SOA(x), RData::SOA(y)) = (&a.data, &b.data) else {
        return false;
    };
    let shape = |n: &Name| (n.num_labels(), n.len(), n.is_fqdn());
    a.ttl == b.ttl
        && a.dns_class == b.dns_class
        && (x.serial, x.refresh, x.retry, x.expire, x.minimum)
            == (y.serial, y.refresh, y.retry, y.expire, y.minimum)
        && shape(&a.name) == shape(&b.name)
        && shape(&x.mname) == shape(&y.mname)
        && shape(&x.rname) == shape(&y.rname)
}

/// The name one label below `ce` on the way to `name` (RFC 5155 §1.3).
#[cfg(test)]
fn next_closer(name: &Name, ce: &Name) -> Name {
    let want = (ce.num_labels() as usize + 1).min(name.num_labels() as usize);
    name.trim_to(want)
}

fn wildcard_of(ce: &Name) -> Option<Name> {
    ce.prepend_label("*").ok()
}

/// The denial records the answer needs, each followed by its RRSIGs (kept
/// with the chain for NSEC3; through the signature cache for compact
/// denial and for a per-answer NSEC3 bitmap).
fn proofs(
    answer: &Answer,
    zone: &Zone,
    signer: &ZoneSigner,
    end: &AnswerKind,
    final_name: &Name,
    synthesized: &[(Name, Name)],
    now: u32,
) -> Result<Vec<Record>, SignError> {
    let ttl = signer.negative_ttl;
    match &signer.denial {
        Denial::Nsec3(chain) => {
            // The chain entries, one copy of each, in the order proofs
            // list them.
            let mut picked: Vec<&Arc<Entry>> = Vec::with_capacity(3);
            let mut pick = |e| pick_once(&mut picked, e);
            // Wildcard expansions anywhere in the chain: the next closer name
            // must be shown not to exist (RFC 5155 §7.2.6).
            for (owner, ce) in synthesized {
                pick(chain.covering_next_closer(owner, ce));
            }
            match end {
                AnswerKind::NoData { wildcard: None } => {
                    pick(chain.matching_entry(final_name));
                }
                AnswerKind::NoData { wildcard: Some(ce) } => {
                    pick(chain.matching_entry(ce));
                    pick(chain.covering_next_closer(final_name, ce));
                    pick(chain.matching_wildcard(ce));
                }
                AnswerKind::NxDomain {
                    closest_encloser: ce,
                } => {
                    pick(chain.matching_entry(ce));
                    pick(chain.covering_next_closer(final_name, ce));
                    pick(chain.covering_wildcard(ce));
                }
                AnswerKind::Referral { cut } if !has_ds(answer) => {
                    pick(chain.matching_entry(cut));
                }
                _ => {}
            }
            // A LUA RRset that synthesized nothing: the chain's record for
            // the name answered at (the wildcard for a wildcard NODATA)
            // lists its type; this answer's copy must not, and goes
            // unsigned to `sign_section` (never with the kept RRSIGs of
            // the chain's record).
            let denied = match (answer.empty_dynamic, end) {
                (Some(rtype), AnswerKind::NoData { wildcard: None }) => {
                    chain.denied(final_name, rtype)
                }
                (Some(rtype), AnswerKind::NoData { wildcard: Some(ce) }) => {
                    wildcard_of(ce).and_then(|w| chain.denied(&w, rtype))
                }
                _ => None,
            };
            let mut out = Vec::with_capacity(picked.len() * 2);
            for e in picked {
                match &denied {
                    Some((hash, record)) if hash == e.hash() => {
                        out.push(record.clone());
                        out.extend(sign_group(
                            signer,
                            &record.name,
                            std::slice::from_ref(record),
                            now,
                        )?);
                    }
                    _ => chain.push_signed(e, signer, now, &mut out)?,
                }
            }
            Ok(out)
        }
        Denial::Compact => {
            let record = match end {
                AnswerKind::NoData { wildcard } => {
                    let types = match wildcard {
                        Some(ce) => wildcard_of(ce).and_then(|w| node_types(zone, &w)),
                        None => node_types(zone, final_name),
                    };
                    // A LUA RRset that synthesized nothing is denied for this answer.
                    let mut types = types.unwrap_or_default();
                    types.retain(|t| Some(*t) != answer.empty_dynamic);
                    Some(compact::nodata(final_name, ttl, types))
                }
                AnswerKind::NxDomain { .. } => Some(compact::nxname(final_name, ttl)),
                AnswerKind::Referral { cut } if !has_ds(answer) => {
                    Some(compact::nodata(cut, ttl, [RecordType::NS]))
                }
                _ => None,
            };
            // Per query (the owner is the query name): signed through the
            // signature cache.
            let mut out = Vec::with_capacity(2);
            if let Some(record) = record {
                let rrsigs = sign_group(signer, &record.name, std::slice::from_ref(&record), now)?;
                out.push(record);
                out.extend(rrsigs);
            }
            Ok(out)
        }
    }
}

/// Adds `e` to `picked` unless it is there already.
fn pick_once<'c>(picked: &mut Vec<&'c Arc<Entry>>, e: Option<&'c Arc<Entry>>) {
    if let Some(e) = e {
        if !picked.iter().any(|p| Arc::ptr_eq(p, e)) {
            picked.push(e);
        }
    }
}

fn has_ds(answer: &Answer) -> bool {
    answer
        .authority
        .iter()
        .any(|r| r.record_type() == RecordType::DS)
}

/// The types a denial bitmap shows at `name` (delegations show only NS/DS;
/// LUA records as their synthesized types).
fn node_types(zone: &Zone, name: &Name) -> Option<Vec<RecordType>> {
    // LUA records show as the types they synthesize, never as LUA.
    zone.node(name).map(|node| node.served_types())
}

/// Returns `records` with an RRSIG set after each RRset that must be
/// signed, unless it carries them already (kept signed sets: the RRSIGs by
/// this signer's keys follow it). Moves the records: no copy of a section.
fn sign_section(
    records: Vec<Record>,
    signer: &ZoneSigner,
    synthesized: &[(Name, Name)],
    referral: bool,
    now: u32,
) -> Result<Vec<Record>, SignError> {
    if records.is_empty() {
        return Ok(records);
    }
    let mut out = Vec::with_capacity(records.len() * 2);
    let mut records = records.into_iter().peekable();
    while let Some(first) = records.next() {
        let start = out.len();
        let rtype = first.record_type();
        out.push(first);
        // `start` indexes the record just pushed: the group's first.
        while let Some(r) =
            records.next_if(|r| r.record_type() == rtype && same_name(&r.name, &out[start].name))
        {
            out.push(r);
        }
        if rtype == RecordType::RRSIG || (referral && rtype == RecordType::NS) {
            continue;
        }
        let mut presigned = false;
        while let Some(sig) =
            records.next_if(|r| signs(r, rtype, signer) && same_name(&r.name, &out[start].name))
        {
            out.push(sig);
            presigned = true;
        }
        if presigned {
            continue;
        }
        let group = &out[start..];
        let name = &out[start].name;
        // In NSEC3 mode a wildcard expansion is signed as the wildcard (the
        // RRSIG labels field tells the validator); with compact denial the
        // expansion is signed as itself, which needs no proof.
        let wildcard = match synthesized.iter().find(|(n, _)| n == name) {
            Some((_, ce)) if signer.mode() == super::DenialMode::Nsec3 => wildcard_of(ce),
            _ => None,
        };
        let rrsigs = sign_group(signer, wildcard.as_ref().unwrap_or(name), group, now)?;
        out.extend(rrsigs);
    }
    Ok(out)
}

/// Whether `r` is an RRSIG over `rtype` by one of the keys that sign it
/// here: a kept signed set's own signature.
fn signs(r: &Record, rtype: RecordType, signer: &ZoneSigner) -> bool {
    match &r.data {
        RData::DNSSEC(DNSSECRData::RRSIG(sig)) => {
            let input = sig.input();
            input.type_covered == rtype
                && signer
                    .keys_for(rtype)
                    .iter()
                    .any(|k| k.tag() == input.key_tag)
        }
        _ => false,
    }
}

/// The RRSIGs of `group` (one RRset) signed as `owner` (the wildcard for
/// an expansion) with every key that signs its type, through the
/// signature cache; each owned by the RRset's own name, as answers carry
/// them.
pub(super) fn sign_group(
    signer: &ZoneSigner,
    owner: &Name,
    group: &[Record],
    now: u32,
) -> Result<Vec<Record>, SignError> {
    let Some(first) = group.first() else {
        return Ok(Vec::new());
    };
    let rtype = first.record_type();
    let ttl = first.ttl;
    let keys = signer.keys_for(rtype);
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let rrsig = sign_records(signer.sign_context(), key, owner, rtype, ttl, group, now)?;
        out.push(rrsig_record(&first.name, ttl, rrsig));
    }
    Ok(out)
}

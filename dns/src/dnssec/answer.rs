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
use super::sign::{rrsig_record, sign_records, KeptSet, SignError};
use super::{same_name, ZoneSigner};
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

/// The signed sets of a signed NXDOMAIN, kept, in the order the authority
/// section lists them: the negative SOA, then the NSEC3 records of the
/// closest encloser, the next closer name and the wildcard (each once).
#[derive(Debug, Clone)]
pub struct KeptDenial {
    sets: [Option<KeptSet>; 4],
}

impl KeptDenial {
    /// The sets, in order.
    pub fn sets(&self) -> impl Iterator<Item = &KeptSet> {
        self.sets.iter().flatten()
    }
}

/// What [`secure`] would add to `answer`, an NXDOMAIN at `qname` whose
/// closest encloser is the apex, as kept signed sets rather than copied
/// records: an answer carrying them is the same answer. `Ok(None)` for
/// every other answer (then [`secure`] it): other denials, compact denial,
/// LUA zones, answers with records already in them, and sets not kept.
pub fn kept_denial(
    answer: &Answer,
    zone: &Zone,
    signer: &ZoneSigner,
    qname: &Name,
    now: u32,
) -> Result<Option<KeptDenial>, SignError> {
    let AnswerKind::NxDomain {
        closest_encloser: ce,
    } = &answer.kind
    else {
        return Ok(None);
    };
    let [soa] = answer.authority.as_slice() else {
        return Ok(None);
    };
    if answer.rcode != ResponseCode::NXDomain
        || !answer.answers.is_empty()
        || !answer.additional.is_empty()
        || answer.empty_dynamic.is_some()
        || zone.has_dynamic()
        || signer.mode() != super::DenialMode::Nsec3
        || soa.record_type() != RecordType::SOA
        || !same_name(ce, zone.origin())
    {
        return Ok(None);
    }
    let Some(chain) = signer.nsec3(zone) else {
        return Ok(None);
    };
    let mut sets: [Option<KeptSet>; 4] = Default::default();
    let Some(negative) = kept_negative_soa(soa, signer, now)? else {
        return Ok(None);
    };
    sets[0] = Some(negative);
    // As `proofs` picks them, each entry once (on the stack: no
    // allocation per answer).
    let mut picked: [Option<&Arc<Entry>>; 3] = [None; 3];
    let mut n = 0;
    let wanted = [
        chain.matching_entry(ce),
        chain.covering_next_closer(qname, ce),
        chain.covering_wildcard(ce),
    ];
    for e in wanted.into_iter().flatten() {
        if !picked[..n].iter().flatten().any(|p| Arc::ptr_eq(p, e)) {
            picked[n] = Some(e);
            n += 1;
        }
    }
    for (slot, e) in sets[1..].iter_mut().zip(picked.into_iter().flatten()) {
        let Some(set) = chain.kept_signed(e, signer, now)? else {
            return Ok(None);
        };
        *slot = Some(set);
    }
    Ok(Some(KeptDenial { sets }))
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
    let denial = Denied {
        end,
        final_name: &final_name,
        synthesized: &synthesized,
        empty_dynamic: answer.empty_dynamic,
        has_ds: has_ds(answer),
    };
    if signer.mode() == super::DenialMode::Compact && answer.rcode == ResponseCode::NXDomain {
        // RFC 9824 §3: NXDOMAIN becomes NOERROR with an NXNAME NSEC.
        answer.rcode = ResponseCode::NoError;
    }

    let answers = std::mem::take(&mut answer.answers);
    answer.answers = sign_section(answers, signer, &synthesized, false, now)?;
    // The negative SOA and the proofs come signed: they go around
    // `sign_section`, in the places it would have put them.
    let authority = std::mem::take(&mut answer.authority);
    let soa_at = authority
        .iter()
        .position(|r| r.record_type() == RecordType::SOA);
    let mut out = Vec::with_capacity(authority.len() * 2 + 6);
    let mut records = authority.into_iter();
    if let Some(i) = soa_at {
        sign_into(
            records.by_ref().take(i),
            &mut out,
            signer,
            &[],
            referral,
            now,
        )?;
        if let Some(soa) = records.next() {
            signed_negative_soa(&mut out, &soa, signer, now)?;
        }
    }
    sign_into(records, &mut out, signer, &[], referral, now)?;
    proofs(&denial, zone, signer, now, &mut out)?;
    answer.authority = out;
    if !referral {
        let additional = std::mem::take(&mut answer.additional);
        answer.additional = sign_section(additional, signer, &[], false, now)?;
    }
    Ok(())
}

/// What the denial proofs of an answer depend on.
struct Denied<'a> {
    /// How the answer ended (after any CNAME chain).
    end: &'a AnswerKind,
    /// The name it ended at.
    final_name: &'a Name,
    /// Wildcard expansions on the way, with their closest enclosers.
    synthesized: &'a [(Name, Name)],
    /// A LUA type that synthesized nothing for this NODATA.
    empty_dynamic: Option<RecordType>,
    /// Whether the referral carries a DS.
    has_ds: bool,
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
        || negative_soa_set(soa, signer, now),
    )
}

/// [`signed_negative_soa`]'s set, kept.
fn kept_negative_soa(
    soa: &Record,
    signer: &ZoneSigner,
    now: u32,
) -> Result<Option<KeptSet>, SignError> {
    signer.negative_soa.kept(
        signer.key_id(),
        &signer.policy,
        now,
        |kept| kept.first().is_some_and(|k| same_soa(k, soa)),
        || negative_soa_set(soa, signer, now),
    )
}

/// The negative SOA, signed: the record, then its RRSIGs.
fn negative_soa_set(soa: &Record, signer: &ZoneSigner, now: u32) -> Result<Vec<Record>, SignError> {
    let rrsigs = sign_group(signer, &soa.name, std::slice::from_ref(soa), now)?;
    let mut set = Vec::with_capacity(1 + rrsigs.len());
    set.push(soa.clone());
    set.extend(rrsigs);
    Ok(set)
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

/// Appends the denial records the answer needs to `out`, each followed by
/// its RRSIGs (kept with the chain for NSEC3; through the signature cache
/// for compact denial and for a per-answer NSEC3 bitmap).
fn proofs(
    denial: &Denied<'_>,
    zone: &Zone,
    signer: &ZoneSigner,
    now: u32,
    out: &mut Vec<Record>,
) -> Result<(), SignError> {
    let &Denied {
        end,
        final_name,
        synthesized,
        empty_dynamic,
        has_ds,
    } = denial;
    let ttl = signer.negative_ttl;
    match signer.nsec3(zone) {
        Some(chain) => {
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
                AnswerKind::Referral { cut } if !has_ds => {
                    pick(chain.matching_entry(cut));
                }
                _ => {}
            }
            // A LUA RRset that synthesized nothing: the chain's record for
            // the name answered at (the wildcard for a wildcard NODATA)
            // lists its type; this answer's copy must not, and goes
            // unsigned to `sign_section` (never with the kept RRSIGs of
            // the chain's record).
            let denied = match (empty_dynamic, end) {
                (Some(rtype), AnswerKind::NoData { wildcard: None }) => {
                    chain.denied(final_name, rtype)
                }
                (Some(rtype), AnswerKind::NoData { wildcard: Some(ce) }) => {
                    wildcard_of(ce).and_then(|w| chain.denied(&w, rtype))
                }
                _ => None,
            };
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
                    _ => chain.push_signed(e, signer, now, out)?,
                }
            }
            Ok(())
        }
        None => {
            let record = match end {
                AnswerKind::NoData { wildcard } => {
                    let types = match wildcard {
                        Some(ce) => wildcard_of(ce).and_then(|w| node_types(zone, &w)),
                        None => node_types(zone, final_name),
                    };
                    // A LUA RRset that synthesized nothing is denied for this answer.
                    let mut types = types.unwrap_or_default();
                    types.retain(|t| Some(*t) != empty_dynamic);
                    Some(compact::nodata(final_name, ttl, types))
                }
                AnswerKind::NxDomain { .. } => Some(compact::nxname(final_name, ttl)),
                AnswerKind::Referral { cut } if !has_ds => {
                    Some(compact::nodata(cut, ttl, [RecordType::NS]))
                }
                _ => None,
            };
            // Per query (the owner is the query name): signed through the
            // signature cache.
            if let Some(record) = record {
                let rrsigs = sign_group(signer, &record.name, std::slice::from_ref(&record), now)?;
                out.push(record);
                out.extend(rrsigs);
            }
            Ok(())
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
    sign_into(records, &mut out, signer, synthesized, referral, now)?;
    Ok(out)
}

/// [`sign_section`] appending to `out`.
fn sign_into(
    records: impl IntoIterator<Item = Record>,
    out: &mut Vec<Record>,
    signer: &ZoneSigner,
    synthesized: &[(Name, Name)],
    referral: bool,
    now: u32,
) -> Result<(), SignError> {
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
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dnssec::keys::{generate, KeyAlgorithm, KeyRole, ZoneKey};
    use crate::dnssec::{DenialMode, SigCache, SigningPolicy};
    use crate::zone::file::parse_master;
    use crate::zone::lookup;
    use hickory_proto::dnssec::rdata::RRSIG;
    use hickory_proto::dnssec::{PublicKey, TBS};
    use hickory_proto::rr::DNSClass;
    use hickory_proto::serialize::binary::BinEncodable;

    /// The answer path before signed proofs were kept (proofs built and
    /// every RRset signed through the signature cache per answer),
    /// verbatim: what kept proofs must reproduce byte for byte.
    mod reference {
        use super::super::{has_ds, next_closer, node_types, wildcard_of};
        use crate::dnssec::compact;
        use crate::dnssec::sign::{rrsig_record, sign_records, SignError};
        use crate::dnssec::ZoneSigner;
        use crate::zone::{Answer, AnswerKind, Zone};
        use hickory_proto::op::ResponseCode;
        use hickory_proto::rr::{Name, RData, Record, RecordType};

        /// Adds proofs and signatures to `answer` (from `zone`, for `qname`), at `now`.
        pub(super) fn secure(
            answer: &mut Answer,
            zone: &Zone,
            signer: &ZoneSigner,
            qname: &Name,
            now: u32,
        ) -> Result<(), SignError> {
            // Names whose RRsets were synthesized from a wildcard, with its closest encloser.
            let mut synthesized: Vec<(Name, Name)> = Vec::new();
            let (end, final_name) = match &answer.kind {
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
                        .unwrap_or_else(|| qname.clone());
                    ((**end).clone(), last)
                }
                k => (k.clone(), qname.clone()),
            };
            if let AnswerKind::Wildcard { closest_encloser } = &end {
                synthesized.push((final_name.clone(), closest_encloser.clone()));
            }

            let referral = matches!(end, AnswerKind::Referral { .. });
            let proofs = proofs(answer, zone, signer, &end, &final_name, &synthesized);
            if signer.mode() == crate::dnssec::DenialMode::Compact
                && answer.rcode == ResponseCode::NXDomain
            {
                // RFC 9824 §3: NXDOMAIN becomes NOERROR with an NXNAME NSEC.
                answer.rcode = ResponseCode::NoError;
            }
            answer.authority.extend(proofs);

            answer.answers = sign_section(&answer.answers, signer, &synthesized, false, now)?;
            answer.authority = sign_section(&answer.authority, signer, &[], referral, now)?;
            if !referral {
                answer.additional = sign_section(&answer.additional, signer, &[], false, now)?;
            }
            Ok(())
        }

        /// The denial records the answer needs.
        fn proofs(
            answer: &Answer,
            zone: &Zone,
            signer: &ZoneSigner,
            end: &AnswerKind,
            final_name: &Name,
            synthesized: &[(Name, Name)],
        ) -> Vec<Record> {
            let mut out: Vec<Record> = Vec::new();
            let ttl = signer.negative_ttl;
            match signer.nsec3(zone) {
                Some(chain) => {
                    // Wildcard expansions anywhere in the chain: the next closer name
                    // must be shown not to exist (RFC 5155 §7.2.6).
                    for (owner, ce) in synthesized {
                        out.extend(chain.covering(&next_closer(owner, ce)));
                    }
                    match end {
                        AnswerKind::NoData { wildcard: None } => {
                            out.extend(chain.matching(final_name));
                        }
                        AnswerKind::NoData { wildcard: Some(ce) } => {
                            out.extend(chain.matching(ce));
                            out.extend(chain.covering(&next_closer(final_name, ce)));
                            if let Some(w) = wildcard_of(ce) {
                                out.extend(chain.matching(&w));
                            }
                        }
                        AnswerKind::NxDomain {
                            closest_encloser: ce,
                        } => {
                            out.extend(chain.matching(ce));
                            out.extend(chain.covering(&next_closer(final_name, ce)));
                            if let Some(w) = wildcard_of(ce) {
                                out.extend(chain.covering(&w));
                            }
                        }
                        AnswerKind::Referral { cut } if !has_ds(answer) => {
                            out.extend(chain.matching(cut));
                        }
                        _ => {}
                    }
                }
                None => match end {
                    AnswerKind::NoData { wildcard } => {
                        let types = match wildcard {
                            Some(ce) => wildcard_of(ce).and_then(|w| node_types(zone, &w)),
                            None => node_types(zone, final_name),
                        };
                        // A LUA RRset that synthesized nothing is denied for this answer.
                        let mut types = types.unwrap_or_default();
                        types.retain(|t| Some(*t) != answer.empty_dynamic);
                        out.push(compact::nodata(final_name, ttl, types));
                    }
                    AnswerKind::NxDomain { .. } => out.push(compact::nxname(final_name, ttl)),
                    AnswerKind::Referral { cut } if !has_ds(answer) => {
                        out.push(compact::nodata(cut, ttl, [RecordType::NS]));
                    }
                    _ => {}
                },
            }
            // One copy of each proof record.
            let mut seen: Vec<Name> = Vec::new();
            out.retain(|r| {
                if seen.contains(&r.name) {
                    false
                } else {
                    seen.push(r.name.clone());
                    true
                }
            });
            // A LUA RRset that synthesized nothing: the chain's record for the name
            // answered at (the wildcard for a wildcard NODATA) lists its type; this
            // answer's copy must not.
            if let (Some(chain), Some(rtype)) = (signer.nsec3(zone), answer.empty_dynamic) {
                let denied = match end {
                    AnswerKind::NoData { wildcard: None } => Some(final_name.clone()),
                    AnswerKind::NoData { wildcard: Some(ce) } => wildcard_of(ce),
                    _ => None,
                };
                if let Some(name) = denied {
                    chain.deny_type(&mut out, &name, rtype);
                }
            }
            out
        }

        /// Returns `records` with an RRSIG set after each RRset that must be signed.
        fn sign_section(
            records: &[Record],
            signer: &ZoneSigner,
            synthesized: &[(Name, Name)],
            referral: bool,
            now: u32,
        ) -> Result<Vec<Record>, SignError> {
            let mut out = Vec::with_capacity(records.len() * 2);
            let mut i = 0;
            while i < records.len() {
                let first = &records[i];
                let rtype = first.record_type();
                let mut j = i + 1;
                while j < records.len()
                    && records[j].record_type() == rtype
                    && records[j].name == first.name
                {
                    j += 1;
                }
                let group = &records[i..j];
                out.extend_from_slice(group);
                i = j;
                if rtype == RecordType::RRSIG || (referral && rtype == RecordType::NS) {
                    continue;
                }
                // In NSEC3 mode a wildcard expansion is signed as the wildcard (the
                // RRSIG labels field tells the validator); with compact denial the
                // expansion is signed as itself, which needs no proof.
                let owner = match synthesized.iter().find(|(n, _)| n == &first.name) {
                    Some((_, ce)) if signer.mode() == crate::dnssec::DenialMode::Nsec3 => {
                        wildcard_of(ce).unwrap_or_else(|| first.name.clone())
                    }
                    _ => first.name.clone(),
                };
                let ttl = first.ttl;
                for key in signer.keys_for(rtype) {
                    let rrsig =
                        sign_records(signer.sign_context(), key, &owner, rtype, ttl, group, now)?;
                    out.push(rrsig_record(&first.name, ttl, rrsig));
                }
            }
            Ok(out)
        }
    }

    const ZONE: &str = "$ORIGIN example.\n$TTL 3600\n\
        @ SOA ns1 hostmaster 1 3600 600 86400 300\n@ NS ns1\nns1 A 192.0.2.1\n\
        www A 192.0.2.2\na.b.c A 192.0.2.3\n*.w A 192.0.2.4\nsub NS ns.sub\n\
        ns.sub A 192.0.2.5\nsecure NS ns1\nsecure DS 1 13 2 2bb183af5f22588179a53b0a98631fad1a292118a7d2d2a6b7d6a2c7d0b3e8f1\n\
        alias CNAME nothere\nwalias CNAME x.w\n";

    fn zone(text: &str) -> Zone {
        let (origin, records) = parse_master(text, None).unwrap();
        Zone::new(origin, records).unwrap()
    }

    fn key(alg: KeyAlgorithm) -> Arc<ZoneKey> {
        Arc::new(ZoneKey::from_pkcs8(alg, KeyRole::Csk, &generate(alg).unwrap()).unwrap())
    }

    fn signer(zone: &Zone, key: &Arc<ZoneKey>, mode: DenialMode) -> ZoneSigner {
        ZoneSigner::new(
            zone,
            vec![key.clone()],
            vec![key.clone()],
            mode,
            Arc::new(SigCache::new(1000)),
            SigningPolicy::default(),
        )
    }

    /// Every question kind that carries proofs (and some that do not).
    fn questions() -> Vec<(Name, RecordType)> {
        let mut q: Vec<(String, RecordType)> = (0..24)
            .map(|i| (format!("nope{i}.example."), RecordType::A))
            .collect();
        q.extend(
            [
                ("x.y.a.b.c.example.", RecordType::A),
                ("q.c.example.", RecordType::AAAA),
                ("NoPe.Example.", RecordType::A),
                ("www.example.", RecordType::TXT),
                ("c.example.", RecordType::A),
                ("example.", RecordType::TXT),
                ("x.w.example.", RecordType::A),
                ("x.w.example.", RecordType::TXT),
                ("foo.sub.example.", RecordType::A),
                ("foo.secure.example.", RecordType::A),
                ("www.example.", RecordType::A),
                ("alias.example.", RecordType::A),
                ("walias.example.", RecordType::A),
            ]
            .map(|(n, t)| (n.to_string(), t)),
        );
        q.into_iter()
            .map(|(n, t)| (Name::from_ascii(n).unwrap(), t))
            .collect()
    }

    fn wire(records: &[Record]) -> Vec<Vec<u8>> {
        records.iter().map(|r| r.to_bytes().unwrap()).collect()
    }

    fn secured(zone: &Zone, signer: &ZoneSigner, q: &(Name, RecordType), now: u32) -> Answer {
        let mut a = lookup(zone, &q.0, q.1);
        secure(&mut a, zone, signer, &q.0, now).unwrap();
        a
    }

    fn referenced(zone: &Zone, signer: &ZoneSigner, q: &(Name, RecordType), now: u32) -> Answer {
        let mut a = lookup(zone, &q.0, q.1);
        reference::secure(&mut a, zone, signer, &q.0, now).unwrap();
        a
    }

    fn assert_same(a: &Answer, b: &Answer, what: &str) {
        assert_eq!(a.rcode, b.rcode, "{what}");
        assert_eq!(wire(&a.answers), wire(&b.answers), "{what}: answers");
        assert_eq!(wire(&a.authority), wire(&b.authority), "{what}: authority");
        assert_eq!(
            wire(&a.additional),
            wire(&b.additional),
            "{what}: additional"
        );
    }

    /// Kept proofs and SOA are byte for byte what the per-answer path
    /// builds and signs afresh (Ed25519 signatures are deterministic, so a
    /// signer with its own empty cache makes the same bytes), at their
    /// first use and when copied later; in both denial modes.
    #[test]
    fn kept_proofs_equal_freshly_built_and_signed_ones() {
        let z = zone(ZONE);
        let k = key(KeyAlgorithm::Ed25519);
        let now = 1_800_000_000;
        for mode in [DenialMode::Nsec3, DenialMode::Compact] {
            let kept = signer(&z, &k, mode);
            for round in 0..2 {
                for q in questions() {
                    let fresh = signer(&z, &k, mode);
                    let want = referenced(&z, &fresh, &q, now + round);
                    let got = secured(&z, &kept, &q, now + round);
                    assert_same(&got, &want, &format!("{mode:?} round {round} {q:?}"));
                }
            }
            let nx = secured(&z, &kept, &questions()[0], now);
            let types: Vec<_> = nx.authority.iter().map(|r| r.record_type()).collect();
            match mode {
                DenialMode::Nsec3 => {
                    assert_eq!(nx.rcode, ResponseCode::NXDomain);
                    assert_eq!(types[..2], [RecordType::SOA, RecordType::RRSIG]);
                    assert!(types.contains(&RecordType::NSEC3), "{types:?}");
                }
                DenialMode::Compact => {
                    assert_eq!(nx.rcode, ResponseCode::NoError, "RFC 9824");
                    assert_eq!(
                        types,
                        [
                            RecordType::SOA,
                            RecordType::RRSIG,
                            RecordType::NSEC,
                            RecordType::RRSIG
                        ]
                    );
                }
            }
        }
    }

    /// A small zone's NSEC3 chain is made at its first use, from the zone
    /// version its signer belongs to. A signer made by `apply` from one
    /// whose chain was never made answers as a fresh signer of the new
    /// version does, and so does one that followed a made chain; a large
    /// zone's chain comes with its signer.
    #[test]
    fn small_chains_are_made_at_first_use_and_follow_changes() {
        let z = zone(ZONE);
        let k = key(KeyAlgorithm::Ed25519);
        let now = 1_800_000_000;
        let cold = signer(&z, &k, DenialMode::Nsec3);
        assert!(
            !cold.chain_made(),
            "a small zone's chain waits for its first use"
        );
        let warm = signer(&z, &k, DenialMode::Nsec3);
        secured(&z, &warm, &questions()[0], now);
        assert!(warm.chain_made(), "a denial makes the chain");

        let added = parse_master(
            "$ORIGIN example.\n$TTL 300\nnew.deep A 192.0.2.9\nnope3 TXT \"now here\"\n",
            Some(z.origin()),
        )
        .unwrap()
        .1;
        let www = Name::from_ascii("www.example.").unwrap();
        let removed: Vec<Record> = z.node(&www).unwrap().rrsets[0].records(&www);
        let (z2, delta) = z.apply_tracked(&removed, &added).unwrap();
        let from_cold = cold.apply(&z2, &delta).unwrap();
        let from_warm = warm.apply(&z2, &delta).unwrap();
        assert!(!from_cold.chain_made() && from_warm.chain_made());
        for q in questions().into_iter().chain(
            [
                ("www.example.", RecordType::A),
                ("nope3.example.", RecordType::A),
                ("deep.example.", RecordType::A),
            ]
            .map(|(n, t)| (Name::from_ascii(n).unwrap(), t)),
        ) {
            let want = referenced(&z2, &signer(&z2, &k, DenialMode::Nsec3), &q, now);
            assert_same(
                &secured(&z2, &from_cold, &q, now),
                &want,
                &format!("unmade {q:?}"),
            );
            assert_same(
                &secured(&z2, &from_warm, &q, now),
                &want,
                &format!("followed {q:?}"),
            );
        }

        let mut big = String::from(ZONE);
        for i in 0..=super::super::LAZY_CHAIN_NAMES {
            big.push_str(&format!("host{i} A 192.0.2.7\n"));
        }
        assert!(signer(&zone(&big), &k, DenialMode::Nsec3).chain_made());
    }

    fn rrsig(r: &Record) -> &RRSIG {
        match &r.data {
            RData::DNSSEC(DNSSECRData::RRSIG(s)) => s,
            _ => panic!("not an RRSIG: {r:?}"),
        }
    }

    /// Checks every RRSIG in `records` over the RRset before it with `key`.
    fn verify_all(records: &[Record], key: &ZoneKey) -> usize {
        let mut n = 0;
        for (i, r) in records.iter().enumerate() {
            if r.record_type() != RecordType::RRSIG {
                continue;
            }
            let sig = rrsig(r);
            let set: Vec<Record> = records[..i]
                .iter()
                .filter(|x| x.name == r.name && x.record_type() == sig.input().type_covered)
                .map(|x| Record::from_rdata(x.name.to_lowercase(), x.ttl, x.data.clone()))
                .collect();
            assert!(!set.is_empty(), "RRSIG without its RRset: {r:?}");
            assert_eq!(sig.input().key_tag, key.tag());
            let tbs = TBS::from_input(
                &r.name.to_lowercase(),
                DNSClass::IN,
                sig.input(),
                set.iter(),
            )
            .unwrap();
            key.dnskey()
                .public_key()
                .verify(tbs.as_ref(), sig.sig())
                .unwrap_or_else(|e| panic!("{r:?} does not verify: {e}"));
            n += 1;
        }
        n
    }

    fn expirations(records: &[Record]) -> Vec<u32> {
        records
            .iter()
            .filter(|r| r.record_type() == RecordType::RRSIG)
            .map(|r| rrsig(r).input().sig_expiration.get())
            .collect()
    }

    /// Copies cost no signature-cache probe; near expiry the kept sets
    /// are signed again, and so they are after a key change, both for a
    /// new signer (a rollover) and for a chain whose entries another key
    /// set signed.
    #[test]
    fn kept_proofs_are_resigned_near_expiry_and_after_a_key_change() {
        let z = zone(ZONE);
        let k1 = key(KeyAlgorithm::Ecdsap256sha256);
        let s1 = signer(&z, &k1, DenialMode::Nsec3);
        let policy = SigningPolicy::default();
        let q = questions();
        let now = 1_800_000_000;
        let first: Vec<Answer> = q.iter().map(|q| secured(&z, &s1, q, now)).collect();
        for a in &first {
            verify_all(&a.authority, &k1);
        }
        // Copies: the same (ECDSA) signatures, and the signature cache is
        // not even asked for NXDOMAIN answers.
        let nx = &q[0];
        let (computed, hits) = (s1.cache().signatures_computed(), s1.cache().hits());
        let again = secured(&z, &s1, nx, now + 600);
        assert_eq!(wire(&again.authority), wire(&first[0].authority));
        assert_eq!(s1.cache().signatures_computed(), computed);
        assert_eq!(s1.cache().hits(), hits, "a copy, not a cache probe");
        // Within the refresh margin: signed again, valid later.
        let later = now + policy.validity - policy.refresh_margin() + 3_600;
        let renewed = secured(&z, &s1, nx, later);
        assert!(verify_all(&renewed.authority, &k1) >= 2);
        let (old, new) = (
            expirations(&first[0].authority),
            expirations(&renewed.authority),
        );
        assert!(
            new.iter().zip(&old).all(|(n, o)| n > o),
            "{old:?} -> {new:?}"
        );
        assert!(s1.cache().signatures_computed() > computed);
        // And kept again from then on.
        let computed = s1.cache().signatures_computed();
        let kept = secured(&z, &s1, nx, later + 60);
        assert_eq!(wire(&kept.authority), wire(&renewed.authority));
        assert_eq!(s1.cache().signatures_computed(), computed);

        // A rollover: the new signer signs with the new key.
        let k2 = key(KeyAlgorithm::Ecdsap256sha256);
        let s2 = signer(&z, &k2, DenialMode::Nsec3);
        for q in &q {
            verify_all(&secured(&z, &s2, q, now).authority, &k2);
        }
        // The same chain entries under another key set: the sets kept for
        // k1 are not served, whichever signer asks first.
        let s3 = s1.rekeyed(vec![k2.clone()], vec![k2.clone()]);
        for q in &q {
            verify_all(&secured(&z, &s3, q, now).authority, &k2);
            verify_all(&secured(&z, &s1, q, now).authority, &k1);
        }
    }

    /// A LUA RRset that synthesized nothing: the NSEC3 of that name goes
    /// out with a bitmap without its type, signed over that bitmap, not
    /// with the kept signature of the chain's record; and the kept set is
    /// left as it was.
    #[test]
    fn a_rewritten_bitmap_is_signed_for_itself() {
        let z = zone(ZONE);
        let k = key(KeyAlgorithm::Ecdsap256sha256);
        let s = signer(&z, &k, DenialMode::Nsec3);
        let now = 1_800_000_000;
        let q = (Name::from_ascii("www.example.").unwrap(), RecordType::TXT);
        let plain = secured(&z, &s, &q, now);
        let bitmap = |a: &Answer| -> Vec<RecordType> {
            a.authority
                .iter()
                .find_map(|r| match &r.data {
                    RData::DNSSEC(DNSSECRData::NSEC3(n)) => Some(n.type_bit_maps().collect()),
                    _ => None,
                })
                .unwrap()
        };
        assert!(bitmap(&plain).contains(&RecordType::A));
        let mut a = lookup(&z, &q.0, q.1);
        a.empty_dynamic = Some(RecordType::A);
        secure(&mut a, &z, &s, &q.0, now).unwrap();
        assert!(!bitmap(&a).contains(&RecordType::A), "{:?}", bitmap(&a));
        assert_eq!(verify_all(&a.authority, &k), 2);
        assert_ne!(wire(&a.authority), wire(&plain.authority));
        // The same answer the reference path gives (with its cache, whose
        // signatures of the SOA and rewritten NSEC3 are the ones made here).
        let mut r = lookup(&z, &q.0, q.1);
        r.empty_dynamic = Some(RecordType::A);
        reference::secure(&mut r, &z, &s, &q.0, now).unwrap();
        assert_eq!(wire(&r.authority), wire(&a.authority));
        // The chain's kept set still has the full bitmap.
        assert_eq!(
            wire(&secured(&z, &s, &q, now).authority),
            wire(&plain.authority)
        );
    }

    /// `sign_section` does not sign again an RRset that carries its RRSIGs.
    #[test]
    fn sign_section_keeps_presigned_sets() {
        let z = zone(ZONE);
        let k = key(KeyAlgorithm::Ecdsap256sha256);
        let s = signer(&z, &k, DenialMode::Nsec3);
        let now = 1_800_000_000;
        let nx = secured(&z, &s, &questions()[0], now);
        let computed = s.cache().signatures_computed();
        let again = sign_section(nx.authority.clone(), &s, &[], false, now).unwrap();
        assert_eq!(wire(&again), wire(&nx.authority));
        assert_eq!(s.cache().signatures_computed(), computed);
        // Without its RRSIGs the SOA is signed (and the rest kept).
        let mut bare = nx.authority.clone();
        bare.remove(1);
        let signed = sign_section(bare, &s, &[], false, now).unwrap();
        assert_eq!(signed.len(), nx.authority.len());
        verify_all(&signed, &k);
    }
}

//! Turning an unsigned [`Answer`] into a DNSSEC answer for a DO=1 query:
//! denial proofs chosen from the answer's [`AnswerKind`], then RRSIGs for
//! every authoritative RRset (RFC 4035 §3.1): none for referral NS or glue.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::compact;
use super::sign::{rrsig_record, sign_records, SignError};
use super::{Denial, ZoneSigner};
use crate::zone::{Answer, AnswerKind, Zone};

/// Adds proofs and signatures to `answer` (from `zone`, for `qname`), at `now`.
pub fn secure(
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
    if signer.mode() == super::DenialMode::Compact && answer.rcode == ResponseCode::NXDomain {
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

/// The name one label below `ce` on the way to `name` (RFC 5155 §1.3).
fn next_closer(name: &Name, ce: &Name) -> Name {
    let want = (ce.num_labels() as usize + 1).min(name.num_labels() as usize);
    name.trim_to(want)
}

fn wildcard_of(ce: &Name) -> Option<Name> {
    ce.prepend_label("*").ok()
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
    match &signer.denial {
        Denial::Nsec3(chain) => {
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
        Denial::Compact => match end {
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
    if let (Denial::Nsec3(chain), Some(rtype)) = (&signer.denial, answer.empty_dynamic) {
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
            Some((_, ce)) if signer.mode() == super::DenialMode::Nsec3 => {
                wildcard_of(ce).unwrap_or_else(|| first.name.clone())
            }
            _ => first.name.clone(),
        };
        let ttl = first.ttl;
        for key in signer.keys_for(rtype) {
            let rrsig = sign_records(signer.sign_context(), key, &owner, rtype, ttl, group, now)?;
            out.push(rrsig_record(&first.name, ttl, rrsig));
        }
    }
    Ok(out)
}

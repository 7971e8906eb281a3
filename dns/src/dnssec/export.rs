//! The whole zone signed, for `pdm zone export --signed`: every
//! authoritative RRset with its RRSIGs, plus the NSEC3 chain and its RRSIGs,
//! in the form zone verifiers (ldns-verify-zone, dnssec-verify, kzonecheck) read.

use hickory_proto::rr::{RData, Record, RecordType};

use super::sign::{rrsig_record, sign_rrset, SignError};
use super::ZoneSigner;
use crate::zone::Zone;

/// Why a zone cannot be exported signed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Signing failed.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// Compact denial has no static chain to export.
    #[error("zone {0} uses compact denial, which synthesizes NSEC per query; signed export needs NSEC3 mode")]
    Compact(String),
}

/// All records of `zone` with RRSIGs and the NSEC3 chain, at time `now`.
pub fn signed_records(
    zone: &Zone,
    signer: &ZoneSigner,
    now: u32,
) -> Result<Vec<Record>, ExportError> {
    let mut out = Vec::new();
    for_each_signed(zone, signer, now, |set| {
        out.extend(set);
        true
    })?;
    Ok(out)
}

/// The RRSIGs of one RRset (`records`, one owner and type) at time `now`.
pub fn sign_set(
    signer: &ZoneSigner,
    records: &[Record],
    now: u32,
) -> Result<Vec<Record>, SignError> {
    let Some(first) = records.first() else {
        return Ok(Vec::new());
    };
    let rtype = first.record_type();
    let rdata: Vec<RData> = records.iter().map(|r| r.data.clone()).collect();
    let mut out = Vec::with_capacity(signer.keys_for(rtype).len());
    for key in signer.keys_for(rtype) {
        let rrsig = sign_rrset(
            signer.sign_context(),
            key,
            &first.name,
            rtype,
            first.ttl,
            &rdata,
            now,
        )?;
        out.push(rrsig_record(&first.name, first.ttl, rrsig));
    }
    Ok(out)
}

/// Every RRset of `zone` followed by its RRSIGs, then each NSEC3 record
/// with its RRSIG, handed to `each` one RRset at a time in canonical order
/// (a zone transfer streams them; nothing holds the whole signed zone).
/// Stops early when `each` returns false.
pub fn for_each_signed(
    zone: &Zone,
    signer: &ZoneSigner,
    now: u32,
    mut each: impl FnMut(Vec<Record>) -> bool,
) -> Result<(), ExportError> {
    let Some(chain) = signer.nsec3(zone) else {
        return Err(ExportError::Compact(zone.origin().to_ascii()));
    };
    for (name, node) in zone.nodes() {
        for set in &node.rrsets {
            let mut out = set.records(&name);
            // Delegation NS and glue are not authoritative: unsigned.
            let authoritative = !node.occluded && (!node.cut || set.rtype == RecordType::DS);
            if authoritative {
                let sigs = sign_set(signer, &out, now)?;
                out.extend(sigs);
            }
            if !each(out) {
                return Ok(());
            }
        }
    }
    for r in chain.records_unkept() {
        let mut out = sign_set(signer, std::slice::from_ref(&r), now)?;
        out.insert(0, r);
        if !each(out) {
            return Ok(());
        }
    }
    Ok(())
}

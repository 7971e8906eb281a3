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
    let Some(chain) = signer.nsec3() else {
        return Err(ExportError::Compact(zone.origin().to_ascii()));
    };
    let mut out = Vec::new();
    let sign = |out: &mut Vec<Record>, records: &[Record]| -> Result<(), SignError> {
        let Some(first) = records.first() else {
            return Ok(());
        };
        let rtype = first.record_type();
        let rdata: Vec<RData> = records.iter().map(|r| r.data.clone()).collect();
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
        Ok(())
    };
    for (_, node) in zone.nodes() {
        for set in &node.rrsets {
            out.extend(set.records.iter().cloned());
            // Delegation NS and glue are not authoritative: unsigned.
            let authoritative = !node.occluded && (!node.cut || set.rtype == RecordType::DS);
            if authoritative {
                sign(&mut out, &set.records)?;
            }
        }
    }
    for r in chain.records() {
        out.push(r.clone());
        sign(&mut out, std::slice::from_ref(&r))?;
    }
    Ok(out)
}

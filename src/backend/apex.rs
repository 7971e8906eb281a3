//! The records pdm writes at the apex of every zone it creates (SOA and NS
//! from `[[nameservers]]` and `hostmaster`), at each delegation (NS) and as
//! in-zone glue: the one place these are built, for both backends and for
//! pool, child and byo zones alike.

use std::net::IpAddr;

use hickory_proto::rr::rdata::{NS, SOA};
use hickory_proto::rr::{RData, Record};

use crate::config::{Config, PoolConfig};
use crate::model::DomainName;
use crate::store::zones::StoredRecord;

/// TTL of NS records (apex and delegation) and of the SOA.
pub(super) const NS_TTL: u32 = 3600;

/// SOA and NS of a zone pdm creates (the SOA serial is stamped by the store).
pub(super) fn apex_records(config: &Config, apex: &DomainName) -> Vec<StoredRecord> {
    apex_hickory(config, apex)
        .iter()
        .map(StoredRecord::from_record)
        .collect()
}

/// SOA and NS of a zone pdm creates, as records.
pub(super) fn apex_hickory(config: &Config, apex: &DomainName) -> Vec<Record> {
    let mname = config
        .nameservers
        .first()
        .map(|n| n.name.name().clone())
        .unwrap_or_else(|| apex.name().clone());
    let soa = SOA::new(
        mname,
        config.hostmaster.name().clone(),
        1,
        10800,
        3600,
        604800,
        300,
    );
    let mut out = vec![Record::from_rdata(
        apex.name().clone(),
        NS_TTL,
        RData::SOA(soa),
    )];
    out.extend(ns_hickory(config, apex));
    out
}

pub(super) fn ns_hickory(config: &Config, owner: &DomainName) -> Vec<Record> {
    config
        .nameservers
        .iter()
        .map(|ns| {
            Record::from_rdata(
                owner.name().clone(),
                NS_TTL,
                RData::NS(NS(ns.name.name().clone())),
            )
        })
        .collect()
}

/// The NS records of a zone or delegation at `owner`.
pub(super) fn ns_records(config: &Config, owner: &DomainName) -> Vec<StoredRecord> {
    ns_hickory(config, owner)
        .iter()
        .map(StoredRecord::from_record)
        .collect()
}

/// In-zone glue of `pool`'s nameservers.
pub(super) fn glue_hickory(config: &Config, pool: &PoolConfig) -> Vec<Record> {
    let mut out = Vec::new();
    for ns in &config.nameservers {
        if !pool.domain.name().zone_of(ns.name.name()) {
            continue;
        }
        for ip in &ns.addresses {
            let rdata = match ip {
                IpAddr::V4(v4) => RData::A((*v4).into()),
                IpAddr::V6(v6) => RData::AAAA((*v6).into()),
            };
            out.push(Record::from_rdata(ns.name.name().clone(), NS_TTL, rdata));
        }
    }
    out
}

pub(super) fn glue(config: &Config, pool: &PoolConfig) -> Vec<StoredRecord> {
    glue_hickory(config, pool)
        .iter()
        .map(StoredRecord::from_record)
        .collect()
}

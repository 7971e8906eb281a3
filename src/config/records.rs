//! `[records]`: bounds on the records tenants write through the RRset API,
//! the PowerDNS API and RFC 2136 UPDATE. Pools may narrow the TTL bounds.

use super::ConfigError;
use serde::Deserialize;

/// Bounds on tenant-written records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordsConfig {
    /// Smallest TTL accepted (seconds).
    pub min_ttl: u32,
    /// Largest TTL accepted (seconds).
    pub max_ttl: u32,
    /// Most records in one RRset.
    pub max_rrset_records: usize,
    /// Most records in one zone a tenant writes into (pool zones excepted:
    /// they grow with the pool).
    pub max_zone_records: usize,
}

impl Default for RecordsConfig {
    fn default() -> Self {
        Self {
            min_ttl: 30,
            max_ttl: 604_800,
            max_rrset_records: 256,
            max_zone_records: 10_000,
        }
    }
}

/// `[records]` as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRecords {
    min_ttl: Option<u32>,
    max_ttl: Option<u32>,
    max_rrset_records: Option<usize>,
    max_zone_records: Option<usize>,
}

/// `[records]` resolved and checked.
pub(super) fn resolve_records(raw: RawRecords) -> Result<RecordsConfig, ConfigError> {
    let d = RecordsConfig::default();
    let r = RecordsConfig {
        min_ttl: raw.min_ttl.unwrap_or(d.min_ttl),
        max_ttl: raw.max_ttl.unwrap_or(d.max_ttl),
        max_rrset_records: raw.max_rrset_records.unwrap_or(d.max_rrset_records),
        max_zone_records: raw.max_zone_records.unwrap_or(d.max_zone_records),
    };
    check_ttl_bounds("records", r.min_ttl, r.max_ttl)?;
    if r.max_rrset_records == 0 || r.max_zone_records == 0 {
        return Err(ConfigError::Invalid(
            "records.max_rrset_records and records.max_zone_records must be at least 1".into(),
        ));
    }
    Ok(r)
}

/// TTLs are 31-bit (RFC 2181 §8) and the bounds must leave a range.
pub(super) fn check_ttl_bounds(what: &str, min: u32, max: u32) -> Result<(), ConfigError> {
    if min > max || max > i32::MAX as u32 {
        return Err(ConfigError::Invalid(format!(
            "{what}: min_ttl {min} / max_ttl {max}: need min_ttl <= max_ttl <= 2147483647"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        assert_eq!(
            resolve_records(RawRecords::default()).unwrap(),
            RecordsConfig::default()
        );
        let raw = RawRecords {
            min_ttl: Some(600),
            max_ttl: Some(60),
            ..RawRecords::default()
        };
        assert!(resolve_records(raw).is_err());
        let raw = RawRecords {
            max_zone_records: Some(0),
            ..RawRecords::default()
        };
        assert!(resolve_records(raw).is_err());
    }
}

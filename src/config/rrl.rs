//! `[rrl]`: response rate limiting of UDP answers per source prefix.

use super::ConfigError;
use crate::server::rrl::RrlSettings;
use serde::Deserialize;

/// `[rrl]` resolved: `None` in [`super::Config::rrl`] when turned off.
pub type RrlConfig = RrlSettings;

/// `[rrl]` as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRrl {
    enabled: Option<bool>,
    responses_per_second: Option<u32>,
    nxdomains_per_second: Option<u32>,
    nodata_per_second: Option<u32>,
    errors_per_second: Option<u32>,
    slip: Option<u32>,
    ipv4_prefix_length: Option<u8>,
    ipv6_prefix_length: Option<u8>,
    table_size: Option<usize>,
    exempt: Option<Vec<String>>,
    log_interval_secs: Option<u64>,
}

/// The largest table accepted (2^26 buckets: 512 MiB).
const MAX_TABLE: usize = 1 << 26;

/// `[rrl]` resolved and checked: `None` when `enabled = false`. Every
/// class's rate defaults to `responses_per_second` (as in BIND).
pub(super) fn resolve_rrl(raw: RawRrl) -> Result<Option<RrlConfig>, ConfigError> {
    if !raw.enabled.unwrap_or(true) {
        return Ok(None);
    }
    let d = RrlSettings::default();
    let base = raw.responses_per_second.unwrap_or(d.rates[0]);
    let exempt = match raw.exempt {
        None => d.exempt,
        Some(list) => list
            .iter()
            .map(|s| {
                s.parse::<ipnet::IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        ConfigError::Invalid(format!(
                            "rrl.exempt: {s:?} is not an address or prefix"
                        ))
                    })
            })
            .collect::<Result<_, _>>()?,
    };
    let r = RrlSettings {
        rates: [
            base,
            raw.nxdomains_per_second.unwrap_or(base),
            raw.nodata_per_second.unwrap_or(base),
            raw.errors_per_second.unwrap_or(base),
        ],
        slip: raw.slip.unwrap_or(d.slip),
        ipv4_prefix: raw.ipv4_prefix_length.unwrap_or(d.ipv4_prefix),
        ipv6_prefix: raw.ipv6_prefix_length.unwrap_or(d.ipv6_prefix),
        table_size: raw.table_size.unwrap_or(d.table_size),
        exempt,
        log_interval: raw
            .log_interval_secs
            .map_or(d.log_interval, std::time::Duration::from_secs),
    };
    if r.log_interval.is_zero() {
        return Err(ConfigError::Invalid(
            "rrl.log_interval_secs must be at least 1".into(),
        ));
    }
    if r.ipv4_prefix > 32 || r.ipv6_prefix > 128 {
        return Err(ConfigError::Invalid(
            "rrl: ipv4_prefix_length is at most 32, ipv6_prefix_length at most 128".into(),
        ));
    }
    if r.slip > 255 {
        return Err(ConfigError::Invalid("rrl.slip is at most 255".into()));
    }
    if r.table_size == 0 || r.table_size > MAX_TABLE {
        return Err(ConfigError::Invalid(format!(
            "rrl.table_size must be between 1 and {MAX_TABLE}"
        )));
    }
    Ok(Some(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_rates_and_off_switch() {
        let r = resolve_rrl(RawRrl::default()).unwrap().unwrap();
        assert_eq!(r, RrlSettings::default());
        let raw: RawRrl = toml::from_str(
            "responses_per_second = 50\nnxdomains_per_second = 5\nslip = 3\nexempt = [\"10.0.0.0/8\", \"192.0.2.1\"]",
        )
        .unwrap();
        let r = resolve_rrl(raw).unwrap().unwrap();
        assert_eq!(r.rates, [50, 5, 50, 50]);
        assert_eq!(r.slip, 3);
        assert_eq!(r.exempt.len(), 2);
        let off: RawRrl = toml::from_str("enabled = false").unwrap();
        assert!(resolve_rrl(off).unwrap().is_none());
        for bad in [
            "ipv4_prefix_length = 33",
            "table_size = 0",
            "exempt = [\"x\"]",
            "slip = 256",
            "log_interval_secs = 0",
        ] {
            let raw: RawRrl = toml::from_str(bad).unwrap();
            assert!(resolve_rrl(raw).is_err(), "{bad}");
        }
    }
}

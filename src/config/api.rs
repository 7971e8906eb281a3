//! `[api]`: abuse limits of the HTTP API: request rates per source address
//! and per bearer token, and the time one request may take.

use super::ConfigError;
use crate::server::xfr::acl::Prefix;
use serde::Deserialize;
use std::time::Duration;

/// A request rate: a sustained rate and the burst allowed on top of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests per second, sustained (0: no limit).
    pub per_second: u32,
    /// Requests accepted at once after a quiet spell.
    pub burst: u32,
}

/// The API's abuse limits. Every endpoint counts, `check` included (names
/// can be enumerated through it); a caller over a limit gets 429 with
/// `Retry-After`. Sources in `exempt` (by default loopback: the operator,
/// a sidecar, the benches) are limited by neither rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// Per client address (the TCP peer; IPv6 by /64, as one host holds one).
    pub per_source: Rate,
    /// Per bearer token presented (valid or not).
    pub per_token: Rate,
    /// Sources no rate applies to.
    pub exempt: Vec<Prefix>,
    /// How long one request may take before it is answered 503 (0: no limit).
    pub request_timeout: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            per_source: Rate {
                per_second: 50,
                burst: 100,
            },
            per_token: Rate {
                per_second: 500,
                burst: 1000,
            },
            exempt: ["127.0.0.0/8", "::1"]
                .iter()
                .filter_map(|p| Prefix::parse(p))
                .collect(),
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// `[api]` as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApi {
    rate_per_source: Option<u32>,
    burst_per_source: Option<u32>,
    rate_per_token: Option<u32>,
    burst_per_token: Option<u32>,
    exempt_sources: Option<Vec<String>>,
    request_timeout_secs: Option<u64>,
}

/// `[api]` resolved and checked.
pub(super) fn resolve_api(raw: RawApi) -> Result<ApiConfig, ConfigError> {
    let d = ApiConfig::default();
    let rate = |what: &str, rate: Option<u32>, burst: Option<u32>, default: Rate| {
        let per_second = rate.unwrap_or(default.per_second);
        // A burst defaults to twice the rate given, and is at least the rate.
        let burst = burst.unwrap_or(if rate.is_some() {
            per_second.saturating_mul(2)
        } else {
            default.burst
        });
        if per_second > 0 && burst < per_second {
            return Err(ConfigError::Invalid(format!(
                "api.burst_per_{what} ({burst}) must be at least api.rate_per_{what} ({per_second})"
            )));
        }
        Ok(Rate { per_second, burst })
    };
    let exempt = match raw.exempt_sources {
        None => d.exempt,
        Some(list) => list
            .iter()
            .map(|p| {
                Prefix::parse(p).ok_or_else(|| {
                    ConfigError::Invalid(format!("api.exempt_sources: {p:?} is not a prefix"))
                })
            })
            .collect::<Result<_, _>>()?,
    };
    Ok(ApiConfig {
        per_source: rate(
            "source",
            raw.rate_per_source,
            raw.burst_per_source,
            d.per_source,
        )?,
        per_token: rate(
            "token",
            raw.rate_per_token,
            raw.burst_per_token,
            d.per_token,
        )?,
        exempt,
        request_timeout: raw
            .request_timeout_secs
            .map_or(d.request_timeout, Duration::from_secs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_overrides_and_bounds() {
        assert_eq!(
            resolve_api(RawApi::default()).unwrap(),
            ApiConfig::default()
        );
        let c = resolve_api(RawApi {
            rate_per_source: Some(5),
            exempt_sources: Some(vec![]),
            request_timeout_secs: Some(0),
            ..RawApi::default()
        })
        .unwrap();
        assert_eq!(
            c.per_source,
            Rate {
                per_second: 5,
                burst: 10
            }
        );
        assert!(c.exempt.is_empty());
        assert_eq!(c.request_timeout, Duration::ZERO);
        let bad = RawApi {
            rate_per_token: Some(10),
            burst_per_token: Some(2),
            ..RawApi::default()
        };
        assert!(resolve_api(bad).is_err());
        let bad = RawApi {
            exempt_sources: Some(vec!["nope".into()]),
            ..RawApi::default()
        };
        assert!(resolve_api(bad).is_err());
    }
}

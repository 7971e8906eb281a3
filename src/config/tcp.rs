//! `[tcp]`: bounds on DNS-over-TCP clients.

use super::ConfigError;
use crate::server::TcpLimits;
use serde::Deserialize;
use std::time::Duration;

/// `[tcp]` as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTcp {
    max_connections: Option<usize>,
    max_connections_per_source: Option<usize>,
    idle_timeout_ms: Option<u64>,
    first_byte_timeout_ms: Option<u64>,
}

/// `[tcp]` resolved and checked.
pub(super) fn resolve_tcp(raw: RawTcp) -> Result<TcpLimits, ConfigError> {
    let d = TcpLimits::default();
    let t = TcpLimits {
        max_connections: raw.max_connections.unwrap_or(d.max_connections),
        max_per_source: raw.max_connections_per_source.unwrap_or(d.max_per_source),
        idle_timeout: raw
            .idle_timeout_ms
            .map_or(d.idle_timeout, Duration::from_millis),
        first_byte_timeout: raw
            .first_byte_timeout_ms
            .map_or(d.first_byte_timeout, Duration::from_millis),
    };
    if t.max_connections == 0 || t.max_per_source == 0 {
        return Err(ConfigError::Invalid(
            "tcp.max_connections and tcp.max_connections_per_source must be at least 1".into(),
        ));
    }
    if t.idle_timeout.is_zero() || t.first_byte_timeout.is_zero() {
        return Err(ConfigError::Invalid(
            "tcp.idle_timeout_ms and tcp.first_byte_timeout_ms must be above 0".into(),
        ));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        assert_eq!(
            resolve_tcp(RawTcp::default()).unwrap(),
            TcpLimits::default()
        );
        let raw: RawTcp = toml::from_str("max_connections = 5\nidle_timeout_ms = 500").unwrap();
        let t = resolve_tcp(raw).unwrap();
        assert_eq!(t.max_connections, 5);
        assert_eq!(t.idle_timeout, Duration::from_millis(500));
        for bad in ["max_connections = 0", "idle_timeout_ms = 0"] {
            let raw: RawTcp = toml::from_str(bad).unwrap();
            assert!(resolve_tcp(raw).is_err(), "{bad}");
        }
    }
}

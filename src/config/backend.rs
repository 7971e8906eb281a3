//! `[backend]`: the zone backend (embedded or PowerDNS) and its settings.

use super::{ConfigError, PoolConfig};
use serde::Deserialize;

/// Which zone backend pool commits and releases go through (`[backend] kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendKind {
    /// The store; pdm's own DNS server serves it (default).
    #[default]
    Embedded,
    /// A PowerDNS Authoritative server driven over its HTTP API.
    PowerDns,
}

/// The `[backend]` section.
#[derive(Debug, Clone, Default)]
pub struct BackendConfig {
    /// Which backend.
    pub kind: BackendKind,
    /// PowerDNS settings (present when `kind` is `powerdns`).
    pub powerdns: Option<PowerDnsConfig>,
}

/// An API key that never shows up in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key read from the environment or a file.
    pub fn from_secret(key: String) -> Self {
        ApiKey(key.trim().to_string())
    }

    /// The key, for the `X-API-Key` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// The kind PowerDNS zones are created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PdnsZoneKind {
    /// Replicated by the database (no NOTIFY/AXFR).
    Native,
    /// Primary: secondaries get NOTIFY and transfer the zone.
    Master,
}

impl PdnsZoneKind {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PdnsZoneKind::Native => "Native",
            PdnsZoneKind::Master => "Master",
        }
    }
}

/// How pdm drives PowerDNS (`[backend]` with `kind = "powerdns"`).
#[derive(Debug, Clone)]
pub struct PowerDnsConfig {
    /// Base URL of the webserver, e.g. `http://127.0.0.1:8081`.
    pub url: String,
    /// `X-API-Key` (from `api_key`, `api_key_file` or `PDM_POWERDNS_API_KEY`).
    pub api_key: ApiKey,
    /// Server id in API paths (`localhost`).
    pub server_id: String,
    /// Kind of the zones pdm creates.
    pub zone_kind: PdnsZoneKind,
    /// ALSO-NOTIFY targets set on every zone pdm creates.
    pub also_notify: Vec<String>,
    /// Use NSEC3 (`1 0 0 -`, RFC 9276) rather than NSEC.
    pub nsec3: bool,
    /// Key algorithm of the CSKs pdm has PowerDNS create (PowerDNS spelling,
    /// e.g. `ecdsa256`) for pools without their own `dnssec_algorithm`;
    /// `None`: `[dnssec] algorithm`.
    pub algorithm: Option<String>,
    /// Timeout of one API request, in milliseconds.
    pub timeout_ms: u64,
    /// How long commit/release try their operation inline before answering `pending`.
    pub inline_ms: u64,
    /// Seconds between periodic reconciliations (0: off).
    pub reconcile_interval_secs: u64,
}

/// `[backend]` as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBackend {
    kind: Option<String>,
    url: Option<String>,
    api_key: Option<String>,
    api_key_file: Option<String>,
    server_id: Option<String>,
    zone_kind: Option<String>,
    #[serde(default)]
    also_notify: Vec<String>,
    nsec3: Option<bool>,
    algorithm: Option<String>,
    timeout_ms: Option<u64>,
    inline_ms: Option<u64>,
    reconcile_interval_secs: Option<u64>,
}

/// `[backend]` resolved and checked; `env_key` is `PDM_POWERDNS_API_KEY`, which wins over the file.
pub(super) fn resolve_backend(
    raw: RawBackend,
    env_key: Option<String>,
) -> Result<BackendConfig, ConfigError> {
    let bad = |m: &str| ConfigError::Invalid(format!("backend: {m}"));
    let kind = match raw.kind.as_deref().map(str::trim) {
        None | Some("embedded") => BackendKind::Embedded,
        Some("powerdns") => BackendKind::PowerDns,
        Some(other) => return Err(bad(&format!("kind {other:?}: want embedded or powerdns"))),
    };
    if kind == BackendKind::Embedded {
        return Ok(BackendConfig {
            kind,
            powerdns: None,
        });
    }
    let url = raw
        .url
        .map(|u| u.trim().trim_end_matches('/').to_string())
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        .ok_or_else(|| bad("url (http:// or https://) is required for kind = \"powerdns\""))?;
    let key = match (
        env_key.filter(|k| !k.trim().is_empty()),
        raw.api_key,
        raw.api_key_file,
    ) {
        (Some(k), _, _) => k,
        (None, Some(k), None) => k,
        (None, None, Some(f)) => {
            std::fs::read_to_string(&f).map_err(|e| bad(&format!("api_key_file {f}: {e}")))?
        }
        (None, Some(_), Some(_)) => return Err(bad("give api_key or api_key_file, not both")),
        (None, None, None) => {
            return Err(bad(
                "api_key, api_key_file or PDM_POWERDNS_API_KEY is required",
            ))
        }
    };
    let key = key.trim().to_string();
    if key.is_empty() {
        return Err(bad("the PowerDNS API key is empty"));
    }
    let zone_kind = match raw
        .zone_kind
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("native") => PdnsZoneKind::Native,
        Some("master") | Some("primary") => PdnsZoneKind::Master,
        Some(other) => return Err(bad(&format!("zone_kind {other:?}: want Native or Master"))),
    };
    let algorithm = raw.algorithm.map(|a| a.to_ascii_lowercase());
    if let Some(algorithm) = algorithm.as_deref().filter(|a| {
        ![
            "ecdsa256",
            "ecdsa384",
            "ed25519",
            "ed448",
            "rsasha256",
            "rsasha512",
        ]
        .contains(a)
    }) {
        return Err(bad(&format!(
            "algorithm {algorithm:?}: want ecdsa256, ecdsa384, ed25519, ed448, rsasha256 or rsasha512"
        )));
    }
    let timeout_ms = raw.timeout_ms.unwrap_or(5000);
    let inline_ms = raw.inline_ms.unwrap_or(3000);
    if !(100..=120_000).contains(&timeout_ms) || inline_ms > 60_000 {
        return Err(bad("timeout_ms must be 100..=120000, inline_ms <= 60000"));
    }
    Ok(BackendConfig {
        kind,
        powerdns: Some(PowerDnsConfig {
            url,
            api_key: ApiKey(key),
            server_id: raw.server_id.unwrap_or_else(|| "localhost".into()),
            zone_kind,
            also_notify: raw.also_notify,
            nsec3: raw.nsec3.unwrap_or(true),
            algorithm,
            timeout_ms,
            inline_ms,
            reconcile_interval_secs: raw.reconcile_interval_secs.unwrap_or(300),
        }),
    })
}

/// PowerDNS (4.7) has no compact denial of existence (RFC 9824): a pool that
/// asks for it is refused rather than served with NSEC3 or NSEC instead.
pub fn check_powerdns_denial(pools: &[PoolConfig]) -> Result<(), ConfigError> {
    let compact: Vec<String> = pools
        .iter()
        .filter(|p| p.dnssec_denial == Some(crate::dnssec::DenialMode::Compact))
        .map(|p| p.domain.to_string())
        .collect();
    if compact.is_empty() {
        return Ok(());
    }
    Err(ConfigError::Invalid(format!(
        "pool {}: dnssec_denial = \"compact\" is not supported with [backend] kind = \"powerdns\" \
         (PowerDNS has no compact denial of existence, RFC 9824); set dnssec_denial = \"nsec3\", \
         or remove dnssec_denial to follow [backend] nsec3 (true: NSEC3, false: NSEC)",
        compact.join(", pool ")
    )))
}

#[cfg(test)]
mod backend_config_tests {
    use super::*;
    use crate::config::Config;

    const BASE: &str = "[[nameservers]]\nname = \"ns1.example.test\"\n";

    #[test]
    fn embedded_by_default_and_powerdns_needs_url_and_key() {
        assert_eq!(
            Config::from_toml(BASE).unwrap().backend.kind,
            BackendKind::Embedded
        );
        let r = resolve_backend(
            RawBackend {
                kind: Some("powerdns".into()),
                url: Some("http://127.0.0.1:8081/".into()),
                ..RawBackend::default()
            },
            None,
        );
        assert!(r.is_err());
        let c = resolve_backend(
            RawBackend {
                kind: Some("powerdns".into()),
                url: Some("http://127.0.0.1:8081/".into()),
                api_key: Some("file-key".into()),
                ..RawBackend::default()
            },
            Some("env-key".into()),
        )
        .unwrap();
        let p = c.powerdns.unwrap();
        assert_eq!(p.url, "http://127.0.0.1:8081");
        assert_eq!(p.api_key.expose(), "env-key");
        assert_eq!(
            (p.server_id.as_str(), p.zone_kind, p.nsec3),
            ("localhost", PdnsZoneKind::Native, true)
        );
        assert!(!format!("{p:?}").contains("env-key"));
    }

    const POWERDNS: &str = "[backend]\nkind = \"powerdns\"\nurl = \"http://127.0.0.1:8081\"\napi_key = \"k\"\nnsec3 = false\n";

    /// PowerDNS has no compact denial (RFC 9824): a pool asking for it is refused at load,
    /// naming the pool and what to use instead; nsec3 pools and pools without the setting load.
    #[test]
    fn pool_compact_denial_is_refused_on_powerdns() {
        let pools = "[[pools]]\ndomain = \"plain.test\"\n\
                     [[pools]]\ndomain = \"black.test\"\ndnssec_denial = \"compact\"\n\
                     [[pools]]\ndomain = \"n3.test\"\ndnssec_denial = \"nsec3\"\n";
        let err = Config::from_toml(&format!("{POWERDNS}{BASE}{pools}"))
            .expect_err("compact on powerdns must be refused")
            .to_string();
        for want in [
            "pool black.test:",
            "dnssec_denial = \"compact\"",
            "powerdns",
            "dnssec_denial = \"nsec3\"",
            "remove dnssec_denial",
            "[backend] nsec3",
        ] {
            assert!(err.contains(want), "{want:?} missing from: {err}");
        }
        assert!(
            !err.contains("plain.test") && !err.contains("n3.test"),
            "names only the compact pool: {err}"
        );

        // The embedded backend signs compact itself.
        let c = Config::from_toml(&format!("{BASE}{pools}")).unwrap();
        assert_eq!(
            c.pools[1].signing.denial,
            crate::dnssec::DenialMode::Compact
        );

        // Without the compact pool: loads, and the explicit setting is kept apart from the
        // [dnssec] default.
        let pools = "[[pools]]\ndomain = \"plain.test\"\n\
                     [[pools]]\ndomain = \"n3.test\"\ndnssec_denial = \"nsec3\"\n";
        let c = Config::from_toml(&format!("{POWERDNS}{BASE}{pools}")).unwrap();
        assert_eq!(c.backend.kind, BackendKind::PowerDns);
        let denial: Vec<_> = c.pools.iter().map(|p| p.dnssec_denial).collect();
        assert_eq!(denial, [None, Some(crate::dnssec::DenialMode::Nsec3)]);
    }
}

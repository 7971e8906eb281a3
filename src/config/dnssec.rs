//! `[dnssec]`: how pdm signs the zones it creates.

use super::ConfigError;
use serde::Deserialize;

/// How pdm signs the zones it creates.
#[derive(Debug, Clone)]
pub struct DnssecConfig {
    /// Whether pool and child zones are signed.
    pub enabled: bool,
    /// Key algorithm for new keys.
    pub algorithm: crate::dnssec::KeyAlgorithm,
    /// KSK + ZSK instead of one CSK.
    pub split_keys: bool,
    /// Denial of existence for new zones.
    pub denial: crate::dnssec::DenialMode,
    /// TTL of DNSKEY/CDS/CDNSKEY/NSEC3PARAM and of the DS pdm writes in parents.
    pub dnskey_ttl: u32,
    /// Extra wait added to every rollover step for secondaries and caches to catch up.
    pub propagation_delay_secs: u32,
    /// File holding the 32-byte key that encrypts private keys at rest,
    /// used when `PDM_SECRET_KEY` is not set.
    pub secret_key_file: Option<std::path::PathBuf>,
    /// Signatures kept in the process-wide signature cache (each ~0.9 KiB).
    pub signature_cache: usize,
    /// RRSIG validity, seconds from inception to expiration.
    pub signature_validity_secs: u32,
    /// Signatures are renewed when less than this remains: in answers at
    /// once, on secondaries by a serial bump and NOTIFY.
    pub signature_refresh_secs: u32,
}

/// Default bound of the signature cache: ~230 MiB at ~0.9 KiB a signature
/// (measured: `dns/tests/child_zone_cost.rs`), the hot RRsets of a 100k pool.
pub const DEFAULT_SIGNATURE_CACHE: usize = 262_144;

impl Default for DnssecConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            algorithm: crate::dnssec::KeyAlgorithm::Ecdsap256sha256,
            split_keys: false,
            denial: crate::dnssec::DenialMode::Nsec3,
            dnskey_ttl: 3600,
            propagation_delay_secs: 60,
            secret_key_file: None,
            signature_cache: DEFAULT_SIGNATURE_CACHE,
            signature_validity_secs: 14 * 86_400,
            signature_refresh_secs: 14 * 86_400 / 4,
        }
    }
}

/// `[dnssec]` as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDnssec {
    enabled: Option<bool>,
    algorithm: Option<String>,
    split_keys: Option<bool>,
    denial: Option<String>,
    dnskey_ttl: Option<u32>,
    propagation_delay_secs: Option<u32>,
    secret_key_file: Option<String>,
    signature_cache: Option<usize>,
    signature_validity_secs: Option<u32>,
    signature_refresh_secs: Option<u32>,
}

impl DnssecConfig {
    /// The signature validity policy.
    pub fn signing_policy(&self) -> crate::dnssec::SigningPolicy {
        crate::dnssec::SigningPolicy::new(self.signature_validity_secs, self.signature_refresh_secs)
    }

    /// The default signing profile for new zones.
    pub fn profile(&self) -> crate::dnssec::SigningProfile {
        crate::dnssec::SigningProfile {
            algorithm: self.algorithm,
            denial: self.denial,
            split_keys: self.split_keys,
        }
    }
}

/// A key algorithm from the file (`what` names the key).
pub(super) fn parse_algorithm(
    what: &str,
    a: &str,
) -> Result<crate::dnssec::KeyAlgorithm, ConfigError> {
    crate::dnssec::KeyAlgorithm::parse(a).ok_or_else(|| {
        ConfigError::Invalid(format!(
            "{what} {a:?}: want ecdsap256sha256 (13) or ed25519 (15)"
        ))
    })
}

/// A denial mode from the file (`what` names the key).
pub(super) fn parse_denial(what: &str, m: &str) -> Result<crate::dnssec::DenialMode, ConfigError> {
    crate::dnssec::DenialMode::parse(m)
        .ok_or_else(|| ConfigError::Invalid(format!("{what} {m:?}: want nsec3 or compact")))
}

/// `[dnssec]` resolved and checked.
pub(super) fn resolve_dnssec(raw: RawDnssec) -> Result<DnssecConfig, ConfigError> {
    let d = DnssecConfig::default();
    let algorithm = match raw.algorithm.as_deref() {
        None => d.algorithm,
        Some(a) => crate::dnssec::KeyAlgorithm::parse(a).ok_or_else(|| {
            ConfigError::Invalid(format!(
                "dnssec.algorithm {a:?}: want ecdsap256sha256 (13) or ed25519 (15)"
            ))
        })?,
    };
    let denial = match raw.denial.as_deref() {
        None => d.denial,
        Some(m) => crate::dnssec::DenialMode::parse(m).ok_or_else(|| {
            ConfigError::Invalid(format!("dnssec.denial {m:?}: want nsec3 or compact"))
        })?,
    };
    let dnskey_ttl = raw.dnskey_ttl.unwrap_or(d.dnskey_ttl);
    if !(1..=86_400).contains(&dnskey_ttl) {
        return Err(ConfigError::Invalid(
            "dnssec.dnskey_ttl must be 1..=86400".into(),
        ));
    }
    let validity = raw
        .signature_validity_secs
        .unwrap_or(d.signature_validity_secs);
    let refresh = raw.signature_refresh_secs.unwrap_or(validity / 4);
    if validity < 60 || refresh == 0 || refresh > validity / 2 {
        return Err(ConfigError::Invalid(
            "dnssec: signature_validity_secs must be at least 60 and signature_refresh_secs between 1 and half of it"
                .into(),
        ));
    }
    Ok(DnssecConfig {
        signature_validity_secs: validity,
        signature_refresh_secs: refresh,
        enabled: raw.enabled.unwrap_or(d.enabled),
        algorithm,
        split_keys: raw.split_keys.unwrap_or(d.split_keys),
        denial,
        dnskey_ttl,
        propagation_delay_secs: raw
            .propagation_delay_secs
            .unwrap_or(d.propagation_delay_secs),
        secret_key_file: raw.secret_key_file.map(Into::into),
        signature_cache: raw.signature_cache.unwrap_or(d.signature_cache),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_cache_bound_is_configurable() {
        let d = resolve_dnssec(RawDnssec::default()).unwrap();
        assert_eq!(d.signature_cache, DEFAULT_SIGNATURE_CACHE);
        let raw: RawDnssec = toml::from_str("signature_cache = 5000").unwrap();
        assert_eq!(resolve_dnssec(raw).unwrap().signature_cache, 5000);
    }
}

//! `[registrars]`: registrar API endpoints and timeouts.

use super::ConfigError;
use serde::Deserialize;

/// Registrar API endpoints: the real APIs unless overridden (tests, the offline demo).
#[derive(Debug, Clone, Default)]
pub struct RegistrarsConfig {
    /// Start the five fake registrars on 127.0.0.1 and use them (`--fake-registrars`).
    pub fake: bool,
    /// Per-registrar base URL overrides (`[registrars.<name>] base_url = ...`).
    pub base_urls: std::collections::BTreeMap<pdm_adapters::RegistrarId, String>,
    /// Per-request timeout towards registrars, in seconds.
    pub timeout_secs: u64,
}

/// `[registrars]` as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRegistrars {
    fake: Option<bool>,
    timeout_secs: Option<u64>,
    cloudflare: Option<RawRegistrar>,
    namecheap: Option<RawRegistrar>,
    godaddy: Option<RawRegistrar>,
    ovh: Option<RawRegistrar>,
    dynadot: Option<RawRegistrar>,
}

/// `[registrars.<name>]` as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRegistrar {
    base_url: Option<String>,
}

/// `[registrars]` resolved and checked.
pub(super) fn resolve_registrars(raw: RawRegistrars) -> Result<RegistrarsConfig, ConfigError> {
    use pdm_adapters::RegistrarId as R;
    let mut base_urls = std::collections::BTreeMap::new();
    for (id, r) in [
        (R::Cloudflare, raw.cloudflare),
        (R::Namecheap, raw.namecheap),
        (R::Godaddy, raw.godaddy),
        (R::Ovh, raw.ovh),
        (R::Dynadot, raw.dynadot),
    ] {
        if let Some(url) = r.and_then(|r| r.base_url) {
            let url = url.trim().trim_end_matches('/').to_string();
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Invalid(format!(
                    "registrars.{id}.base_url {url:?}: want http:// or https://"
                )));
            }
            base_urls.insert(id, url);
        }
    }
    let timeout_secs = raw.timeout_secs.unwrap_or(30);
    if !(1..=600).contains(&timeout_secs) {
        return Err(ConfigError::Invalid(
            "registrars.timeout_secs must be 1..=600".into(),
        ));
    }
    Ok(RegistrarsConfig {
        fake: raw.fake.unwrap_or(false),
        base_urls,
        timeout_secs,
    })
}

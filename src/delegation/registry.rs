//! Which registrar API each adapter talks to, and building an adapter for a
//! set of credentials. Base URLs default to the real APIs; `[registrars]`
//! overrides them (tests, private proxies) and `--fake-registrars` points
//! them at the local fakes.

use std::collections::BTreeMap;
use std::time::Duration;

use pdm_adapters::cloudflare::Cloudflare;
use pdm_adapters::dynadot::Dynadot;
use pdm_adapters::godaddy::GoDaddy;
use pdm_adapters::http::HttpConfig;
use pdm_adapters::namecheap::Namecheap;
use pdm_adapters::ovh::Ovh;
use pdm_adapters::{Credentials, Registrar, RegistrarError, RegistrarId};

use crate::config::RegistrarsConfig;

/// The production base URL of each registrar's API.
pub fn default_base_url(id: RegistrarId) -> &'static str {
    match id {
        RegistrarId::Cloudflare => pdm_adapters::cloudflare::DEFAULT_BASE_URL,
        RegistrarId::Namecheap => pdm_adapters::namecheap::DEFAULT_BASE_URL,
        RegistrarId::Godaddy => pdm_adapters::godaddy::DEFAULT_BASE_URL,
        RegistrarId::Ovh => pdm_adapters::ovh::EU_BASE,
        RegistrarId::Dynadot => pdm_adapters::dynadot::BASE,
    }
}

/// Builds registrar adapters against the configured endpoints.
#[derive(Debug, Clone)]
pub struct Registrars {
    base_urls: BTreeMap<RegistrarId, String>,
    timeout: Duration,
    calls: Option<crate::metrics::RegistrarCalls>,
}

impl Registrars {
    /// From the `[registrars]` section.
    pub fn from_config(c: &RegistrarsConfig) -> Self {
        Self {
            base_urls: c.base_urls.clone(),
            timeout: Duration::from_secs(c.timeout_secs.max(1)),
            calls: None,
        }
    }

    /// Count every adapter's calls into `calls`.
    pub fn with_metrics(mut self, calls: crate::metrics::RegistrarCalls) -> Self {
        self.calls = Some(calls);
        self
    }

    /// Sends `id`'s calls to `url` instead.
    pub fn set_base_url(&mut self, id: RegistrarId, url: impl Into<String>) {
        self.base_urls.insert(id, url.into());
    }

    /// The base URL `id`'s adapter uses.
    pub fn base_url(&self, id: RegistrarId) -> String {
        self.base_urls
            .get(&id)
            .cloned()
            .unwrap_or_else(|| default_base_url(id).to_string())
    }

    /// An adapter for `creds` (the registrar is the credentials').
    pub fn adapter(&self, creds: &Credentials) -> Result<Box<dyn Registrar>, RegistrarError> {
        let id = creds.registrar();
        let config = HttpConfig::new(id, self.base_url(id)).with_timeout(self.timeout);
        let adapter: Box<dyn Registrar> = match id {
            RegistrarId::Cloudflare => Box::new(Cloudflare::with_config(creds.clone(), config)?),
            RegistrarId::Namecheap => Box::new(Namecheap::with_config(creds.clone(), config)?),
            RegistrarId::Godaddy => Box::new(GoDaddy::with_config(creds.clone(), config)?),
            RegistrarId::Ovh => Box::new(Ovh::new(creds, &config)?),
            RegistrarId::Dynadot => Box::new(Dynadot::new(creds, &config)?),
        };
        Ok(match &self.calls {
            Some(calls) => Box::new(super::metered::Metered {
                inner: adapter,
                calls: calls.clone(),
            }),
            None => adapter,
        })
    }
}

/// The registrar names, sorted (the Go service's `supported` list).
pub fn supported() -> Vec<&'static str> {
    RegistrarId::ALL.iter().map(|r| r.as_str()).collect()
}

/// `validate` with the domain; a `domain_in_account: Some(false)` from any
/// adapter is turned into [`RegistrarError::DomainNotInAccount`] too, so a
/// lenient adapter cannot make a foreign domain look validated.
pub async fn validate_domain(
    adapter: &dyn Registrar,
    domain: &pdm_adapters::RegistrableDomain,
) -> Result<pdm_adapters::Validation, RegistrarError> {
    let v = adapter.validate(Some(domain)).await?;
    if v.domain_in_account == Some(false) {
        return Err(RegistrarError::DomainNotInAccount {
            registrar: adapter.id(),
            domain: domain.name(),
        });
    }
    Ok(v)
}

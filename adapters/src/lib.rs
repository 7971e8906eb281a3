//! Registrar adapters: one async [`Registrar`] trait, five implementations
//! (Cloudflare, Namecheap, GoDaddy, OVH, Dynadot), and — behind the `fake`
//! feature — local fake servers that enforce what the real APIs enforce.
//!
//! Wire facts come from each registrar's public API documentation; each
//! adapter module says which API version and endpoints it follows.

pub mod cloudflare;
pub mod credentials;
pub mod dynadot;
pub mod error;
#[cfg(feature = "fake")]
pub mod fake;
pub mod godaddy;
pub mod http;
pub mod namecheap;
pub mod names;
pub mod ovh;
pub mod types;
pub(crate) mod xml;

pub use credentials::{Credentials, Secret};
pub use error::{RegistrarError, Result};
pub use names::{normalise_ns, split_registrable, NsSet, RegistrableDomain};
pub use types::{
    Capabilities, Change, DnskeyData, DsData, Glue, HostRecord, HostRecordType, RegistrarId,
    UnknownHostRecordType, Validation,
};

use async_trait::async_trait;

/// What every registrar adapter can be asked to do.
///
/// Adapters hold their credentials (typed per registrar) and a base URL; they
/// never log or echo the credentials. Operations a registrar has no API for
/// answer [`RegistrarError::Unsupported`] and are absent from
/// [`Registrar::capabilities`].
#[async_trait]
pub trait Registrar: Send + Sync {
    /// Which registrar this is.
    fn id(&self) -> RegistrarId;

    /// What this adapter can do (callers check before asking).
    fn capabilities(&self) -> Capabilities;

    /// Checks that the credentials authenticate and, when `domain` is given,
    /// that the domain is in the account; reports what the API reveals about scope.
    /// A domain outside the account is [`RegistrarError::DomainNotInAccount`]
    /// (then `domain_in_account` is `Some(true)` on success).
    async fn validate(&self, domain: Option<&RegistrableDomain>) -> Result<Validation>;

    /// Every domain in the account (all pages), lowercase, no trailing dot.
    async fn list_domains(&self) -> Result<Vec<String>>;

    /// The delegation NS set the registry has for `domain`, normalised.
    async fn get_ns(&self, domain: &RegistrableDomain) -> Result<NsSet>;

    /// Replaces the delegation NS set; reads first and skips the write when the
    /// normalised sets already match ([`Change::Unchanged`]). Waits for async work.
    async fn set_ns(&self, domain: &RegistrableDomain, ns: &NsSet) -> Result<Change>;

    /// The DS records the registry publishes for `domain`.
    async fn get_ds(&self, _domain: &RegistrableDomain) -> Result<Vec<DsData>> {
        Err(RegistrarError::unsupported(self.id(), "reading DS records"))
    }

    /// Replaces the DS set (adapters whose API wants DNSKEY data use `dnskeys`).
    /// An empty `ds` removes DNSSEC delegation. Skips the write when equal.
    async fn set_ds(
        &self,
        _domain: &RegistrableDomain,
        _ds: &[DsData],
        _dnskeys: &[DnskeyData],
    ) -> Result<Change> {
        Err(RegistrarError::unsupported(self.id(), "setting DS records"))
    }

    /// The glue (host object) addresses for `host` under `domain`; empty when none.
    async fn get_glue(&self, _domain: &RegistrableDomain, _host: &str) -> Result<Glue> {
        Err(RegistrarError::unsupported(
            self.id(),
            "reading glue records",
        ))
    }

    /// Creates or updates the glue for `host`; skips the write when equal.
    async fn set_glue(&self, _domain: &RegistrableDomain, _glue: &Glue) -> Result<Change> {
        Err(RegistrarError::unsupported(
            self.id(),
            "setting glue records",
        ))
    }

    /// Replaces every record on the registrar's own nameservers for `domain`
    /// with `records` (a full replace, the Go service's set-dns contract);
    /// skips the write when the registrar already has exactly these.
    async fn set_host_records(
        &self,
        _domain: &RegistrableDomain,
        _records: &[HostRecord],
    ) -> Result<Change> {
        Err(RegistrarError::unsupported(
            self.id(),
            "setting DNS records on the registrar's nameservers",
        ))
    }

    /// The records on the registrar's own nameservers for `domain`.
    async fn get_host_records(&self, _domain: &RegistrableDomain) -> Result<Vec<HostRecord>> {
        Err(RegistrarError::unsupported(
            self.id(),
            "setting DNS records on the registrar's nameservers",
        ))
    }

    /// Delegates `child` (a name below a zone the account hosts) to `ns`, with
    /// `ds` when given, by writing NS (+DS) records in the registrar's DNS.
    /// Offered where the NS of the domain itself cannot be changed (Cloudflare).
    async fn delegate_subdomain(
        &self,
        _child: &str,
        _ns: &NsSet,
        _ds: &[DsData],
    ) -> Result<Change> {
        Err(RegistrarError::unsupported(
            self.id(),
            "delegating a subdomain",
        ))
    }
}

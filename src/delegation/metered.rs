//! A registrar adapter that counts its calls (`pdm_registrar_requests_total`)
//! by registrar, operation and outcome (`ok` or the error's code); every
//! call goes through to the adapter it wraps unchanged.

use crate::metrics::RegistrarCalls;
use async_trait::async_trait;
use pdm_adapters::{
    Capabilities, Change, DnskeyData, DsData, Glue, HostRecord, NsSet, RegistrableDomain,
    Registrar, RegistrarId, Result, Validation,
};

/// `inner`, counted into `calls`.
pub(super) struct Metered {
    pub(super) inner: Box<dyn Registrar>,
    pub(super) calls: RegistrarCalls,
}

impl Metered {
    fn count<T>(&self, operation: &str, r: Result<T>) -> Result<T> {
        let outcome = match &r {
            Ok(_) => "ok",
            Err(e) => e.code(),
        };
        self.calls
            .count(self.inner.id().as_str(), operation, outcome);
        r
    }
}

#[async_trait]
impl Registrar for Metered {
    fn id(&self) -> RegistrarId {
        self.inner.id()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn validate(&self, domain: Option<&RegistrableDomain>) -> Result<Validation> {
        let r = self.inner.validate(domain).await;
        self.count("validate", r)
    }

    async fn list_domains(&self) -> Result<Vec<String>> {
        let r = self.inner.list_domains().await;
        self.count("list_domains", r)
    }

    async fn get_ns(&self, domain: &RegistrableDomain) -> Result<NsSet> {
        let r = self.inner.get_ns(domain).await;
        self.count("get_ns", r)
    }

    async fn set_ns(&self, domain: &RegistrableDomain, ns: &NsSet) -> Result<Change> {
        let r = self.inner.set_ns(domain, ns).await;
        self.count("set_ns", r)
    }

    async fn get_ds(&self, domain: &RegistrableDomain) -> Result<Vec<DsData>> {
        let r = self.inner.get_ds(domain).await;
        self.count("get_ds", r)
    }

    async fn set_ds(
        &self,
        domain: &RegistrableDomain,
        ds: &[DsData],
        dnskeys: &[DnskeyData],
    ) -> Result<Change> {
        let r = self.inner.set_ds(domain, ds, dnskeys).await;
        self.count("set_ds", r)
    }

    async fn get_glue(&self, domain: &RegistrableDomain, host: &str) -> Result<Glue> {
        let r = self.inner.get_glue(domain, host).await;
        self.count("get_glue", r)
    }

    async fn set_glue(&self, domain: &RegistrableDomain, glue: &Glue) -> Result<Change> {
        let r = self.inner.set_glue(domain, glue).await;
        self.count("set_glue", r)
    }

    async fn set_host_records(
        &self,
        domain: &RegistrableDomain,
        records: &[HostRecord],
    ) -> Result<Change> {
        let r = self.inner.set_host_records(domain, records).await;
        self.count("set_host_records", r)
    }

    async fn get_host_records(&self, domain: &RegistrableDomain) -> Result<Vec<HostRecord>> {
        let r = self.inner.get_host_records(domain).await;
        self.count("get_host_records", r)
    }

    async fn delegate_subdomain(&self, child: &str, ns: &NsSet, ds: &[DsData]) -> Result<Change> {
        let r = self.inner.delegate_subdomain(child, ns, ds).await;
        self.count("delegate_subdomain", r)
    }
}

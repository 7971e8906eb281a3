//! Namecheap (XML API), following registrars.md §2.
//!
//! Every call is a `POST` of an `application/x-www-form-urlencoded` body with
//! the global parameters `ApiUser`, `ApiKey`, `UserName`, `ClientIp` and
//! `Command` (the body, not the query string, so the key never sits in a URL).
//! Answers are HTTP 200 XML with `Status="OK"|"ERROR"`; rate limiting is
//! HTTP 405. Namecheap has no DS API; glue is host objects, IPv4 only.
//! Records on Namecheap's own DNS (set-dns) go through `domains.dns.setHosts`
//! (a full replace) and `domains.dns.getHosts`; both answer 2030288 while the
//! domain uses other nameservers.

use std::net::{IpAddr, Ipv4Addr};

use async_trait::async_trait;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};

use crate::credentials::{Credentials, Secret};
use crate::error::{RegistrarError, Result};
use crate::http::{credential_identity, retry_after, HttpClient, HttpConfig, Safety};
use crate::names::{NsSet, RegistrableDomain};
use crate::types::{
    Capabilities, Change, Glue, HostRecord, HostRecordType, RegistrarId, Validation,
};
use crate::{xml, Registrar};

/// Production endpoint.
pub const DEFAULT_BASE_URL: &str = "https://api.namecheap.com/xml.response";
/// Sandbox endpoint (separate account and key).
pub const SANDBOX_BASE_URL: &str = "https://api.sandbox.namecheap.com/xml.response";
/// `Nameservers` for `dns.setCustom` is limited to 1200 characters.
const MAX_NAMESERVERS_LEN: usize = 1200;

const ID: RegistrarId = RegistrarId::Namecheap;

/// The Namecheap adapter.
#[derive(Debug)]
pub struct Namecheap {
    http: HttpClient,
    api_user: String,
    api_key: Secret,
    user_name: String,
    client_ip: Ipv4Addr,
    page_size: u32,
}

/// Namecheap signals rate limiting with HTTP 405 (no `Retry-After` is known to
/// be sent; honour one if it ever appears).
fn namecheap_rate_limit(
    status: StatusCode,
    headers: &HeaderMap,
    _body: &[u8],
) -> Option<Option<std::time::Duration>> {
    (status == StatusCode::METHOD_NOT_ALLOWED || status == StatusCode::TOO_MANY_REQUESTS)
        .then(|| retry_after(headers))
}

impl Namecheap {
    /// An adapter for the production API.
    pub fn new(creds: Credentials) -> Result<Self> {
        Self::with_config(creds, HttpConfig::new(ID, DEFAULT_BASE_URL))
    }

    /// An adapter with an explicit config; `base_url` is the full
    /// `…/xml.response` endpoint.
    pub fn with_config(creds: Credentials, config: HttpConfig) -> Result<Self> {
        let identity = credential_identity(&creds);
        let Credentials::Namecheap {
            api_user,
            api_key,
            user_name,
            client_ip,
        } = creds
        else {
            return Err(RegistrarError::InvalidInput(
                "not Namecheap credentials".into(),
            ));
        };
        // Namecheap rejects IPv6 ClientIp (1011105); fail before sending anything.
        let client_ip: Ipv4Addr = client_ip.trim().parse().map_err(|_| {
            RegistrarError::InvalidInput(
                "Namecheap ClientIp must be the whitelisted IPv4 address".into(),
            )
        })?;
        let http = HttpClient::new(ID, &config, &identity)?
            .with_rate_limit_detector(namecheap_rate_limit)
            .with_secrets([api_key.clone()]);
        Ok(Self {
            http,
            api_user,
            api_key,
            user_name,
            client_ip,
            page_size: 100,
        })
    }

    /// Page size for `domains.getList` (Namecheap allows 10..=100).
    pub fn with_page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size.clamp(10, 100);
        self
    }

    /// Runs `command` with `params` and returns the body of an `OK` response;
    /// `domain` names the domain for DomainNotInAccount errors.
    async fn call(
        &self,
        command: &str,
        params: &[(&str, String)],
        safety: Safety,
        domain: Option<&str>,
    ) -> Result<String> {
        let mut form: Vec<(&str, String)> = vec![
            ("ApiUser", self.api_user.clone()),
            ("ApiKey", self.api_key.expose().to_string()),
            ("UserName", self.user_name.clone()),
            ("ClientIp", self.client_ip.to_string()),
            ("Command", command.to_string()),
        ];
        form.extend(params.iter().cloned());
        tracing::debug!(registrar = %ID, command, "namecheap command");
        let resp = self
            .http
            .send(self.http.request(Method::POST, "").form(&form), safety)
            .await?;
        if resp.status != StatusCode::OK {
            return Err(self
                .http
                .unavailable(format!("unexpected HTTP {} for {command}", resp.status)));
        }
        let body = resp.text();
        let doc = xml::parse(&body).map_err(|e| self.http.unavailable(e))?;
        let root = doc.root_element();
        if root.tag_name().name() != "ApiResponse" {
            return Err(self.http.unavailable("response is not an ApiResponse"));
        }
        if root
            .attribute("Status")
            .is_some_and(|s| s.eq_ignore_ascii_case("OK"))
        {
            return Ok(body.clone());
        }
        let (number, message) = xml::first(root, "Error")
            .map(|e| {
                (
                    e.attribute("Number").unwrap_or_default().to_string(),
                    xml::text(e),
                )
            })
            .unwrap_or_default();
        Err(self.classify(&number, &message, domain))
    }

    /// Maps a Namecheap error number to a typed error (codes from registrars.md §2).
    fn classify(&self, number: &str, message: &str, domain: Option<&str>) -> RegistrarError {
        let msg = self.http.scrub(message);
        match number {
            // Bad ApiUser / ApiKey / UserName, or API access not enabled for the key.
            "1011102" | "1010101" | "1010102" | "1011100" | "1011101" => {
                RegistrarError::InvalidCredentials { registrar: ID }
            }
            "1011150" => RegistrarError::IpNotWhitelisted {
                registrar: ID,
                detail: msg,
            },
            "1011105" => RegistrarError::IpNotWhitelisted {
                registrar: ID,
                detail: format!("{msg} (ClientIp must be the whitelisted IPv4)"),
            },
            // Credentials are fine but the account may not use this API [U: code meaning].
            "4011103" => RegistrarError::AccountNotEligible {
                registrar: ID,
                detail: format!(
                    "{msg}; API access needs an account balance of $50+, 20+ domains, \
                     or $50+ spent in the last 2 years"
                ),
            },
            "2019166" | "2016166" => RegistrarError::DomainNotInAccount {
                registrar: ID,
                domain: domain.unwrap_or_default().to_string(),
            },
            // The SDK treats these as transient.
            "3050900" | "5019169" | "5050169" | "5050900" | "4022337" => self.http.unavailable(msg),
            _ if msg.to_ascii_lowercase().contains("too many requests") => {
                RegistrarError::RateLimited {
                    registrar: ID,
                    retry_after: None,
                }
            }
            _ => self.http.rejected(if number.is_empty() {
                msg
            } else {
                format!("[{number}] {msg}")
            }),
        }
    }

    fn domain_params(domain: &RegistrableDomain) -> Vec<(&'static str, String)> {
        vec![
            ("SLD", domain.sld().to_string()),
            ("TLD", domain.tld().to_string()),
        ]
    }

    /// Checks that `host` is a name under `domain` (Namecheap only creates
    /// host objects inside the domain) and returns it normalised.
    fn own_host(domain: &RegistrableDomain, host: &str) -> Result<String> {
        let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
        if !host.ends_with(&format!(".{}", domain.name())) {
            return Err(RegistrarError::InvalidInput(format!(
                "glue host {host:?} must be under {domain}"
            )));
        }
        Ok(host)
    }

    fn ok_flag(&self, body: &str, element: &str, attr: &str) -> Result<()> {
        let doc = xml::parse(body).map_err(|e| self.http.unavailable(e))?;
        let ok = xml::first(doc.root_element(), element)
            .and_then(|n| n.attribute(attr))
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if ok {
            Ok(())
        } else {
            Err(self
                .http
                .rejected(format!("{element} did not report {attr}=true")))
        }
    }
}

#[async_trait]
impl Registrar for Namecheap {
    fn id(&self) -> RegistrarId {
        ID
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            validate: true,
            list: true,
            get_ns: true,
            set_ns: true,
            get_ds: false,
            set_ds: false,
            glue: true,
            delegate_subdomain: false,
            host_records: true,
        }
    }

    async fn validate(&self, domain: Option<&RegistrableDomain>) -> Result<Validation> {
        // Any cheap read proves the key, the whitelist and eligibility at once.
        self.call(
            "namecheap.domains.getList",
            &[("Page", "1".into()), ("PageSize", "10".into())],
            Safety::Idempotent,
            None,
        )
        .await?;
        let mut v = Validation {
            account: Some(self.user_name.clone()),
            // Namecheap keys have no scopes: whoever holds one can do everything.
            scope: vec!["full account access (Namecheap API keys are not scoped)".into()],
            domain_in_account: None,
        };
        if let Some(d) = domain {
            self.get_ns(d).await?;
            v.domain_in_account = Some(true);
        }
        Ok(v)
    }

    async fn list_domains(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut page: u32 = 1;
        loop {
            let body = self
                .call(
                    "namecheap.domains.getList",
                    &[
                        ("Page", page.to_string()),
                        ("PageSize", self.page_size.to_string()),
                    ],
                    Safety::Idempotent,
                    None,
                )
                .await?;
            let doc = xml::parse(&body).map_err(|e| self.http.unavailable(e))?;
            let root = doc.root_element();
            let names: Vec<String> = xml::all(root, "Domain")
                .into_iter()
                .filter_map(|d| d.attribute("Name"))
                .map(|n| n.trim().trim_end_matches('.').to_ascii_lowercase())
                .collect();
            let total: usize = xml::first(root, "TotalItems")
                .map(xml::text)
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            let got = names.len();
            out.extend(names);
            // Stop at TotalItems (what dnscontrol does) or on an empty page, whichever first.
            if got == 0 || out.len() >= total {
                break;
            }
            page += 1;
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn get_ns(&self, domain: &RegistrableDomain) -> Result<NsSet> {
        let name = domain.name();
        let body = self
            .call(
                "namecheap.domains.dns.getList",
                &Self::domain_params(domain),
                Safety::Idempotent,
                Some(&name),
            )
            .await?;
        let doc = xml::parse(&body).map_err(|e| self.http.unavailable(e))?;
        let result = xml::first(doc.root_element(), "DomainDNSGetListResult").ok_or_else(|| {
            self.http
                .unavailable("no DomainDNSGetListResult in response")
        })?;
        Ok(NsSet::observed(
            xml::all(result, "Nameserver").into_iter().map(xml::text),
        ))
    }

    async fn set_ns(&self, domain: &RegistrableDomain, ns: &NsSet) -> Result<Change> {
        if ns.hosts().len() < 2 {
            return Err(RegistrarError::InvalidInput(
                "at least 2 nameservers are required".into(),
            ));
        }
        let joined = ns.hosts().join(",");
        if joined.len() > MAX_NAMESERVERS_LEN {
            return Err(RegistrarError::InvalidInput(format!(
                "Namecheap takes at most {MAX_NAMESERVERS_LEN} characters of nameservers"
            )));
        }
        // Read before write: an identical set is not rewritten.
        if &self.get_ns(domain).await? == ns {
            return Ok(Change::Unchanged);
        }
        let name = domain.name();
        let mut params = Self::domain_params(domain);
        params.push(("Nameservers", joined));
        let body = self
            .call(
                "namecheap.domains.dns.setCustom",
                &params,
                Safety::Write,
                Some(&name),
            )
            .await?;
        self.ok_flag(&body, "DomainDNSSetCustomResult", "Updated")?;
        tracing::info!(registrar = %ID, domain = %name, ns = %ns, "nameservers replaced");
        Ok(Change::Applied)
    }

    async fn get_host_records(&self, domain: &RegistrableDomain) -> Result<Vec<HostRecord>> {
        let name = domain.name();
        let body = self
            .call(
                "namecheap.domains.dns.getHosts",
                &Self::domain_params(domain),
                Safety::Idempotent,
                Some(&name),
            )
            .await?;
        let doc = xml::parse(&body).map_err(|e| self.http.unavailable(e))?;
        let result =
            xml::first(doc.root_element(), "DomainDNSGetHostsResult").ok_or_else(|| {
                self.http
                    .unavailable("no DomainDNSGetHostsResult in response")
            })?;
        let mut out = Vec::new();
        for h in xml::all(result, "host") {
            let attr = |k: &str| h.attribute(k).unwrap_or_default().trim();
            // URL redirects, CAA and the like are outside what set-dns manages.
            let Ok(rtype) = attr("Type").parse::<HostRecordType>() else {
                tracing::debug!(registrar = %ID, domain = %name, rtype = attr("Type"), "host record type skipped");
                continue;
            };
            let ttl = attr("TTL").parse().map_err(|_| {
                self.http
                    .unavailable(format!("host record TTL {:?} is not a number", attr("TTL")))
            })?;
            let priority = match rtype {
                HostRecordType::Mx => Some(attr("MXPref").parse().map_err(|_| {
                    self.http
                        .unavailable(format!("MXPref {:?} is not a number", attr("MXPref")))
                })?),
                _ => None,
            };
            out.push(
                HostRecord {
                    subhost: attr("Name").to_string(),
                    rtype,
                    value: attr("Address").to_string(),
                    ttl,
                    priority,
                }
                .normalised(),
            );
        }
        out.sort();
        Ok(out)
    }

    async fn set_host_records(
        &self,
        domain: &RegistrableDomain,
        records: &[HostRecord],
    ) -> Result<Change> {
        if records.is_empty() {
            return Err(RegistrarError::InvalidInput(
                "at least one record is required (setHosts replaces every record)".into(),
            ));
        }
        let want = HostRecord::normalised_set(records);
        if self.get_host_records(domain).await? == want {
            return Ok(Change::Unchanged);
        }
        let name = domain.name();
        // 1-indexed HostName/RecordType/Address/TTL (+ MXPref) per record;
        // MX records only take effect with EmailType=MX.
        let mut indexed: Vec<(String, String)> = Vec::with_capacity(want.len() * 5);
        for (i, r) in want.iter().enumerate() {
            let n = i + 1;
            let host = if r.subhost.is_empty() {
                "@"
            } else {
                r.subhost.as_str()
            };
            indexed.push((format!("HostName{n}"), host.to_string()));
            indexed.push((format!("RecordType{n}"), r.rtype.to_string()));
            indexed.push((format!("Address{n}"), r.value.clone()));
            indexed.push((format!("TTL{n}"), r.ttl.to_string()));
            if let Some(p) = r.priority {
                indexed.push((format!("MXPref{n}"), p.to_string()));
            }
        }
        let mut params: Vec<(&str, String)> = Self::domain_params(domain);
        params.extend(indexed.iter().map(|(k, v)| (k.as_str(), v.clone())));
        if want.iter().any(|r| r.rtype == HostRecordType::Mx) {
            params.push(("EmailType", "MX".to_string()));
        }
        let body = self
            .call(
                "namecheap.domains.dns.setHosts",
                &params,
                Safety::Write,
                Some(&name),
            )
            .await?;
        self.ok_flag(&body, "DomainDNSSetHostsResult", "IsSuccess")?;
        tracing::info!(registrar = %ID, domain = %name, records = want.len(), "host records replaced");
        Ok(Change::Applied)
    }

    async fn get_glue(&self, domain: &RegistrableDomain, host: &str) -> Result<Glue> {
        let host = Self::own_host(domain, host)?;
        let name = domain.name();
        let mut params = Self::domain_params(domain);
        params.push(("Nameserver", host.clone()));
        match self
            .call(
                "namecheap.domains.ns.getInfo",
                &params,
                Safety::Idempotent,
                Some(&name),
            )
            .await
        {
            Ok(body) => {
                let doc = xml::parse(&body).map_err(|e| self.http.unavailable(e))?;
                let ip = xml::first(doc.root_element(), "DomainNSInfoResult")
                    .and_then(|n| n.attribute("IP"))
                    .and_then(|ip| ip.trim().parse::<IpAddr>().ok());
                Ok(Glue {
                    host,
                    addresses: ip.into_iter().collect(),
                })
            }
            // A host that was never created is "no glue", not a failure.
            Err(RegistrarError::Rejected { message, .. })
                if message.to_ascii_lowercase().contains("does not exist")
                    || message.to_ascii_lowercase().contains("not found") =>
            {
                Ok(Glue {
                    host,
                    addresses: Vec::new(),
                })
            }
            Err(e) => Err(e),
        }
    }

    async fn set_glue(&self, domain: &RegistrableDomain, glue: &Glue) -> Result<Change> {
        let host = Self::own_host(domain, &glue.host)?;
        let mut v4 = Vec::new();
        for a in &glue.addresses {
            match a {
                IpAddr::V4(ip) => v4.push(*ip),
                IpAddr::V6(_) => {
                    return Err(RegistrarError::Unsupported {
                        registrar: ID,
                        what: "IPv6 glue (Namecheap host objects are IPv4 only)".into(),
                    })
                }
            }
        }
        v4.sort();
        v4.dedup();
        // A Namecheap host object has exactly one IPv4 address.
        if v4.len() > 1 {
            return Err(RegistrarError::InvalidInput(
                "Namecheap host objects take exactly one IPv4 address".into(),
            ));
        }
        let current = self.get_glue(domain, &host).await?;
        let current_v4: Vec<Ipv4Addr> = current
            .addresses
            .iter()
            .filter_map(|a| match a {
                IpAddr::V4(ip) => Some(*ip),
                IpAddr::V6(_) => None,
            })
            .collect();
        if current_v4 == v4 {
            return Ok(Change::Unchanged);
        }
        let name = domain.name();
        let mut params = Self::domain_params(domain);
        params.push(("Nameserver", host.clone()));
        match (current_v4.first(), v4.as_slice()) {
            (_, []) => {
                let body = self
                    .call(
                        "namecheap.domains.ns.delete",
                        &params,
                        Safety::Write,
                        Some(&name),
                    )
                    .await?;
                self.ok_flag(&body, "DomainNSDeleteResult", "IsSuccess")?;
            }
            (None, [ip]) => {
                params.push(("IP", ip.to_string()));
                let body = self
                    .call(
                        "namecheap.domains.ns.create",
                        &params,
                        Safety::Write,
                        Some(&name),
                    )
                    .await?;
                self.ok_flag(&body, "DomainNSCreateResult", "IsSuccess")?;
            }
            (Some(old), [ip]) => {
                params.push(("OldIP", old.to_string()));
                params.push(("IP", ip.to_string()));
                let body = self
                    .call(
                        "namecheap.domains.ns.update",
                        &params,
                        Safety::Write,
                        Some(&name),
                    )
                    .await?;
                self.ok_flag(&body, "DomainNSUpdateResult", "IsSuccess")?;
            }
            (_, _) => {
                return Err(RegistrarError::InvalidInput(
                    "Namecheap host objects take exactly one IPv4 address".into(),
                ))
            }
        }
        tracing::info!(registrar = %ID, domain = %name, host = %host, "glue updated");
        Ok(Change::Applied)
    }
}

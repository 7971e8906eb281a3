//! GoDaddy Domains API v1/v2, following registrars.md §3.
//!
//! Auth is `Authorization: sso-key {key}:{secret}`. v1 covers validate, list
//! (marker paging), NS read and NS replace (`PATCH`, synchronous). With a
//! customer id, v2 adds asynchronous NS replace (`PUT …/nameServers` → 202 +
//! action), DS (`PATCH`/`DELETE …/dnssecRecords`) and glue (`…/hosts/{host}`);
//! each write is followed by polling its action to completion within a
//! deadline. 403 `ACCESS_DENIED` means the account is not eligible for the API
//! (since 2024-04), not a bad key.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::{Deserialize, Serialize};

use crate::credentials::{Credentials, Secret};
use crate::error::{RegistrarError, Result};
use crate::http::{credential_identity, retry_after, HttpClient, HttpConfig, HttpResponse, Safety};
use crate::names::{NsSet, RegistrableDomain};
use crate::types::{Capabilities, Change, DsData, Glue, RegistrarId, Validation};
use crate::Registrar;

/// Production base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.godaddy.com";
/// OTE (test environment) base URL; OTE keys do not work on production.
pub const OTE_BASE_URL: &str = "https://api.ote-godaddy.com";

const ID: RegistrarId = RegistrarId::Godaddy;

/// How v2 actions are polled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollConfig {
    /// Pause between polls.
    pub interval: Duration,
    /// Give up (as `Unavailable`) when the action is not done by then.
    pub deadline: Duration,
}

impl Default for PollConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(3),
            deadline: Duration::from_secs(600),
        }
    }
}

/// The GoDaddy adapter.
#[derive(Debug)]
pub struct GoDaddy {
    http: HttpClient,
    auth: Secret,
    customer_id: Option<String>,
    page_size: u32,
    poll: PollConfig,
}

/// GoDaddy's error body (`Error` / `ErrorLimit` in the v1 OpenAPI).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    fields: Vec<ApiErrorField>,
    #[serde(default)]
    retry_after_sec: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiErrorField {
    #[serde(default)]
    path: String,
    #[serde(default)]
    message: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DomainSummary {
    domain: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DomainDetail {
    #[serde(default)]
    name_servers: Vec<String>,
    #[serde(default)]
    dnssec_records: Vec<DnssecRecord>,
}

/// `DomainDnssec` (v2).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DnssecRecord {
    algorithm: String,
    key_tag: u32,
    digest_type: String,
    digest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    flags: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Action {
    #[serde(default)]
    status: String,
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    reason: Option<ApiError>,
}

/// Host object body for `PUT …/hosts/{hostname}` [U: body shape unverified, registrars.md §3(e)].
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HostBody {
    #[serde(default)]
    ipv4_addresses: Vec<String>,
    #[serde(default)]
    ipv6_addresses: Vec<String>,
}

const ALGORITHMS: [(u8, &str); 12] = [
    (1, "RSAMD5"),
    (3, "DSA"),
    (5, "RSASHA1"),
    (6, "DSA_NSEC3_SHA1"),
    (7, "RSASHA1_NSEC3_SHA1"),
    (8, "RSASHA256"),
    (10, "RSASHA512"),
    (12, "ECC_GOST"),
    (13, "ECDSAP256SHA256"),
    (14, "ECDSAP384SHA384"),
    (15, "ED25519"),
    (16, "ED448"),
];
const DIGESTS: [(u8, &str); 4] = [(1, "SHA1"), (2, "SHA256"), (3, "GOST"), (4, "SHA384")];

fn to_wire(ds: &DsData) -> Result<DnssecRecord> {
    let algorithm = ALGORITHMS
        .iter()
        .find(|(n, _)| *n == ds.algorithm)
        .map(|(_, s)| *s)
        .ok_or_else(|| {
            RegistrarError::InvalidInput(format!(
                "GoDaddy does not take DNSSEC algorithm {}",
                ds.algorithm
            ))
        })?;
    let digest_type = DIGESTS
        .iter()
        .find(|(n, _)| *n == ds.digest_type)
        .map(|(_, s)| *s)
        .ok_or_else(|| {
            RegistrarError::InvalidInput(format!(
                "GoDaddy does not take digest type {}",
                ds.digest_type
            ))
        })?;
    Ok(DnssecRecord {
        algorithm: algorithm.into(),
        key_tag: u32::from(ds.key_tag),
        digest_type: digest_type.into(),
        digest: ds.digest.to_ascii_uppercase(),
        flags: Some("KSK".into()),
    })
}

fn from_wire(r: &DnssecRecord) -> Option<DsData> {
    let algorithm = ALGORITHMS
        .iter()
        .find(|(_, s)| s.eq_ignore_ascii_case(&r.algorithm))?
        .0;
    let digest_type = DIGESTS
        .iter()
        .find(|(_, s)| s.eq_ignore_ascii_case(&r.digest_type))?
        .0;
    Some(DsData {
        key_tag: u16::try_from(r.key_tag).ok()?,
        algorithm,
        digest_type,
        digest: r.digest.to_ascii_lowercase(),
    })
}

/// GoDaddy's 429 carries `retryAfterSec` in the body (required by the spec);
/// the `Retry-After` header is sometimes missing (external-dns#4864), so the
/// body wins and the header is the fallback.
fn godaddy_rate_limit(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Option<Duration>> {
    if status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let from_body = serde_json::from_slice::<ApiError>(body)
        .ok()
        .and_then(|e| e.retry_after_sec);
    Some(
        from_body
            .map(Duration::from_secs)
            .or_else(|| retry_after(headers)),
    )
}

fn request_id() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    // A failed RNG only weakens stale-action detection; fall back to the clock.
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b = n.to_le_bytes();
    }
    format!("pdm-{}", hex::encode(b))
}

impl GoDaddy {
    /// An adapter for the production API.
    pub fn new(creds: Credentials) -> Result<Self> {
        Self::with_config(creds, HttpConfig::new(ID, DEFAULT_BASE_URL))
    }

    /// An adapter with an explicit config.
    pub fn with_config(creds: Credentials, config: HttpConfig) -> Result<Self> {
        let identity = credential_identity(&creds);
        let Credentials::Godaddy {
            key,
            secret,
            customer_id,
        } = creds
        else {
            return Err(RegistrarError::InvalidInput(
                "not GoDaddy credentials".into(),
            ));
        };
        let auth = Secret::new(format!("sso-key {key}:{}", secret.expose()));
        let http = HttpClient::new(ID, &config, &identity)?
            .with_rate_limit_detector(godaddy_rate_limit)
            .with_secrets([secret, auth.clone()]);
        let customer_id = customer_id
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty());
        Ok(Self {
            http,
            auth,
            customer_id,
            page_size: 1000,
            poll: PollConfig::default(),
        })
    }

    /// Page size for `GET /v1/domains` (1..=1000).
    pub fn with_page_size(mut self, page_size: u32) -> Self {
        self.page_size = page_size.clamp(1, 1000);
        self
    }

    /// How v2 actions are polled.
    pub fn with_poll(mut self, poll: PollConfig) -> Self {
        self.poll = poll;
        self
    }

    fn req(&self, method: Method, path: &str) -> Result<RequestBuilder> {
        let mut value = HeaderValue::from_str(self.auth.expose()).map_err(|_| {
            RegistrarError::InvalidInput("GoDaddy key/secret contain invalid characters".into())
        })?;
        // Keeps the header out of hyper's/reqwest's Debug output.
        value.set_sensitive(true);
        Ok(self
            .http
            .request(method, path)
            .header(AUTHORIZATION, value)
            .header(ACCEPT, "application/json"))
    }

    fn cid(&self, what: &str) -> Result<&str> {
        self.customer_id.as_deref().ok_or_else(|| {
            RegistrarError::unsupported(
                ID,
                format!("{what} needs the v2 API: configure the GoDaddy customer id"),
            )
        })
    }

    fn v2_domain(cid: &str, domain: &RegistrableDomain) -> String {
        format!("/v2/customers/{cid}/domains/{}", domain.name())
    }

    /// Classifies a non-success response (429 and 5xx were handled by the client).
    fn error(&self, resp: &HttpResponse, domain: Option<&str>) -> RegistrarError {
        let e: ApiError = serde_json::from_slice(&resp.body).unwrap_or_default();
        let mut message = if e.message.is_empty() {
            format!("HTTP {}", resp.status)
        } else {
            e.message.clone()
        };
        if !e.code.is_empty() {
            message = format!("{}: {message}", e.code);
        }
        for f in &e.fields {
            message.push_str(&format!(" ({}: {})", f.path, f.message));
        }
        match resp.status {
            StatusCode::UNAUTHORIZED => RegistrarError::InvalidCredentials { registrar: ID },
            // Valid key, but the account may not use the API (< 10 domains, no Domain Club).
            StatusCode::FORBIDDEN if e.code == "ACCESS_DENIED" => {
                RegistrarError::AccountNotEligible {
                    registrar: ID,
                    detail: self.http.scrub(&message),
                }
            }
            StatusCode::NOT_FOUND if domain.is_some() => RegistrarError::DomainNotInAccount {
                registrar: ID,
                domain: domain.unwrap_or_default().to_string(),
            },
            _ => self.http.rejected(message),
        }
    }

    async fn get(&self, path: &str, domain: Option<&str>) -> Result<HttpResponse> {
        let resp = self
            .http
            .send(self.req(Method::GET, path)?, Safety::Idempotent)
            .await?;
        if resp.status.is_success() {
            Ok(resp)
        } else {
            Err(self.error(&resp, domain))
        }
    }

    /// Sends a v2 write expected to answer 202, then polls `action` to completion.
    async fn v2_write(
        &self,
        method: Method,
        path: &str,
        body: &impl Serialize,
        domain: &RegistrableDomain,
        action: &str,
    ) -> Result<()> {
        let cid = self.cid(action)?;
        let rid = request_id();
        let req = self
            .req(method, path)?
            .header("X-Request-Id", rid.as_str())
            .json(body);
        let resp = self.http.send(req, Safety::Write).await?;
        if !resp.status.is_success() {
            return Err(self.error(&resp, Some(&domain.name())));
        }
        self.poll_action(cid, domain, action, &rid).await
    }

    /// Polls `GET …/actions/{type}` until SUCCESS, failure or the deadline.
    async fn poll_action(
        &self,
        cid: &str,
        domain: &RegistrableDomain,
        action: &str,
        rid: &str,
    ) -> Result<()> {
        let path = format!("{}/actions/{action}", Self::v2_domain(cid, domain));
        let started = Instant::now();
        loop {
            let resp = self
                .http
                .send(self.req(Method::GET, &path)?, Safety::Idempotent)
                .await?;
            let done = match resp.status {
                // The action can be invisible right after the write (alikor keeps polling).
                StatusCode::NOT_FOUND => false,
                s if s.is_success() => {
                    let a: Action = self.http.json(&resp)?;
                    // An action from an earlier request of the same type is not ours.
                    let ours = a.request_id.as_deref().is_none_or(|r| r == rid);
                    match (ours, a.status.as_str()) {
                        (false, _) => false,
                        (true, "SUCCESS") => true,
                        (true, "FAILED" | "CANCELLED") => {
                            let why = a.reason.map(|r| format!("{}: {}", r.code, r.message)).unwrap_or_default();
                            return Err(self.http.rejected(format!("{action} {}: {why}", a.status)));
                        }
                        (true, "AWAITING") => {
                            return Err(self.http.rejected(format!(
                                "{action} is awaiting the account holder (confirm it in the GoDaddy UI)"
                            )))
                        }
                        _ => false,
                    }
                }
                _ => return Err(self.error(&resp, Some(&domain.name()))),
            };
            if done {
                tracing::info!(registrar = %ID, domain = %domain, action, "action completed");
                return Ok(());
            }
            if started.elapsed() + self.poll.interval > self.poll.deadline {
                return Err(self.http.unavailable(format!(
                    "{action} for {domain} not complete after {:?}",
                    self.poll.deadline
                )));
            }
            tokio::time::sleep(self.poll.interval).await;
        }
    }

    fn own_host(domain: &RegistrableDomain, host: &str) -> Result<String> {
        let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
        if !host.ends_with(&format!(".{}", domain.name())) {
            return Err(RegistrarError::InvalidInput(format!(
                "glue host {host:?} must be under {domain}"
            )));
        }
        Ok(host)
    }
}

#[async_trait]
impl Registrar for GoDaddy {
    fn id(&self) -> RegistrarId {
        ID
    }

    fn capabilities(&self) -> Capabilities {
        let v2 = self.customer_id.is_some();
        Capabilities {
            validate: true,
            list: true,
            get_ns: true,
            set_ns: true,
            get_ds: v2,
            set_ds: v2,
            glue: v2,
            delegate_subdomain: false,
            host_records: false,
        }
    }

    async fn validate(&self, domain: Option<&RegistrableDomain>) -> Result<Validation> {
        self.get("/v1/domains?limit=1", None).await?;
        let mut v = Validation {
            account: self.customer_id.clone(),
            // GoDaddy keys have no scopes; a key can do whatever its shopper can.
            scope: vec!["domains v1 (GoDaddy API keys are not scoped)".into()],
            domain_in_account: None,
        };
        if let Some(d) = domain {
            let name = d.name();
            self.get(&format!("/v1/domains/{name}"), Some(&name))
                .await?;
            if let Some(cid) = &self.customer_id {
                self.get(&Self::v2_domain(cid, d), Some(&name)).await?;
                v.scope.push(format!("domains v2 for customer {cid}"));
            }
            v.domain_in_account = Some(true);
        }
        Ok(v)
    }

    async fn list_domains(&self) -> Result<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let mut path = format!("/v1/domains?limit={}", self.page_size);
            if let Some(m) = &marker {
                path.push_str(&format!("&marker={m}"));
            }
            let resp = self.get(&path, None).await?;
            let page: Vec<DomainSummary> = self.http.json(&resp)?;
            let n = page.len();
            let last = page.last().map(|d| d.domain.clone());
            out.extend(
                page.into_iter()
                    .map(|d| d.domain.trim_end_matches('.').to_ascii_lowercase()),
            );
            // A short page is the last one; a repeated marker would loop forever.
            if n < self.page_size as usize || last.is_none() || last == marker {
                break;
            }
            marker = last;
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn get_ns(&self, domain: &RegistrableDomain) -> Result<NsSet> {
        let name = domain.name();
        let resp = self
            .get(&format!("/v1/domains/{name}"), Some(&name))
            .await?;
        let d: DomainDetail = self.http.json(&resp)?;
        Ok(NsSet::observed(d.name_servers))
    }

    async fn set_ns(&self, domain: &RegistrableDomain, ns: &NsSet) -> Result<Change> {
        if ns.hosts().len() < 2 {
            return Err(RegistrarError::InvalidInput(
                "at least 2 nameservers are required".into(),
            ));
        }
        if &self.get_ns(domain).await? == ns {
            return Ok(Change::Unchanged);
        }
        let name = domain.name();
        let body = serde_json::json!({ "nameServers": ns.hosts() });
        match &self.customer_id {
            Some(cid) => {
                let path = format!("{}/nameServers", Self::v2_domain(cid, domain));
                self.v2_write(
                    Method::PUT,
                    &path,
                    &body,
                    domain,
                    "DOMAIN_UPDATE_NAME_SERVERS",
                )
                .await?;
            }
            None => {
                let req = self
                    .req(Method::PATCH, &format!("/v1/domains/{name}"))?
                    .json(&body);
                let resp = self.http.send(req, Safety::Write).await?;
                if !resp.status.is_success() {
                    return Err(self.error(&resp, Some(&name)));
                }
            }
        }
        tracing::info!(registrar = %ID, domain = %name, ns = %ns, "nameservers replaced");
        Ok(Change::Applied)
    }

    async fn get_ds(&self, domain: &RegistrableDomain) -> Result<Vec<DsData>> {
        let cid = self.cid("reading DS records")?;
        let name = domain.name();
        let resp = self
            .get(
                &format!("{}?includes=dnssecRecords", Self::v2_domain(cid, domain)),
                Some(&name),
            )
            .await?;
        let d: DomainDetail = self.http.json(&resp)?;
        let mut out: Vec<DsData> = d.dnssec_records.iter().filter_map(from_wire).collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn set_ds(
        &self,
        domain: &RegistrableDomain,
        ds: &[DsData],
        _dnskeys: &[crate::types::DnskeyData],
    ) -> Result<Change> {
        let cid = self.cid("setting DS records")?;
        let mut want: Vec<DsData> = ds.iter().map(DsData::normalised).collect();
        want.sort();
        want.dedup();
        // Convert first so an unsupported algorithm fails before anything is written.
        for d in &want {
            to_wire(d)?;
        }
        let have = self.get_ds(domain).await?;
        let remove: Vec<DnssecRecord> = have
            .iter()
            .filter(|d| !want.contains(d))
            .map(to_wire)
            .collect::<Result<_>>()?;
        let add: Vec<DnssecRecord> = want
            .iter()
            .filter(|d| !have.contains(d))
            .map(to_wire)
            .collect::<Result<_>>()?;
        if remove.is_empty() && add.is_empty() {
            return Ok(Change::Unchanged);
        }
        let path = format!("{}/dnssecRecords", Self::v2_domain(cid, domain));
        if !remove.is_empty() {
            self.v2_write(Method::DELETE, &path, &remove, domain, "DNSSEC_DELETE")
                .await?;
        }
        if !add.is_empty() {
            self.v2_write(Method::PATCH, &path, &add, domain, "DNSSEC_CREATE")
                .await?;
        }
        tracing::info!(registrar = %ID, domain = %domain, added = add.len(), removed = remove.len(), "DS updated");
        Ok(Change::Applied)
    }

    async fn get_glue(&self, domain: &RegistrableDomain, host: &str) -> Result<Glue> {
        let cid = self.cid("reading glue records")?;
        let host = Self::own_host(domain, host)?;
        let name = domain.name();
        let path = format!("{}/hosts/{host}", Self::v2_domain(cid, domain));
        let resp = self
            .http
            .send(self.req(Method::GET, &path)?, Safety::Idempotent)
            .await?;
        if resp.status == StatusCode::NOT_FOUND {
            // Either the host or the domain is missing; only the latter is an error.
            self.get(&Self::v2_domain(cid, domain), Some(&name)).await?;
            return Ok(Glue {
                host,
                addresses: Vec::new(),
            });
        }
        if !resp.status.is_success() {
            return Err(self.error(&resp, Some(&name)));
        }
        let body: HostBody = self.http.json(&resp)?;
        let mut addresses: Vec<IpAddr> = body
            .ipv4_addresses
            .iter()
            .chain(&body.ipv6_addresses)
            .filter_map(|a| a.parse().ok())
            .collect();
        addresses.sort();
        addresses.dedup();
        Ok(Glue { host, addresses })
    }

    async fn set_glue(&self, domain: &RegistrableDomain, glue: &Glue) -> Result<Change> {
        let cid = self.cid("setting glue records")?;
        let host = Self::own_host(domain, &glue.host)?;
        let mut want = glue.addresses.clone();
        want.sort();
        want.dedup();
        if self.get_glue(domain, &host).await?.addresses == want {
            return Ok(Change::Unchanged);
        }
        let path = format!("{}/hosts/{host}", Self::v2_domain(cid, domain));
        if want.is_empty() {
            self.v2_write(
                Method::DELETE,
                &path,
                &serde_json::json!({}),
                domain,
                "HOST_DELETE",
            )
            .await?;
        } else {
            let body = HostBody {
                ipv4_addresses: want
                    .iter()
                    .filter(|a| a.is_ipv4())
                    .map(IpAddr::to_string)
                    .collect(),
                ipv6_addresses: want
                    .iter()
                    .filter(|a| a.is_ipv6())
                    .map(IpAddr::to_string)
                    .collect(),
            };
            self.v2_write(Method::PUT, &path, &body, domain, "HOST_CREATE")
                .await?;
        }
        tracing::info!(registrar = %ID, domain = %domain, host = %host, "glue updated");
        Ok(Change::Applied)
    }
}

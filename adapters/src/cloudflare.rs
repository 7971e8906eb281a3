//! Cloudflare API v4, following registrars.md §1.
//!
//! Cloudflare Registrar forbids non-Cloudflare nameservers, so [`Registrar::set_ns`]
//! answers `Unsupported`. What Cloudflare can do is host the customer's zone:
//! [`Registrar::delegate_subdomain`] writes NS (+DS) records for a child name
//! in the zone that is its longest suffix, reading first and changing only
//! what differs. Auth is `Authorization: Bearer <token>` (user or account
//! token); every answer is the `{success, errors, result, result_info}` envelope.

use async_trait::async_trait;
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::credentials::{Credentials, Secret};
use crate::error::{RegistrarError, Result};
use crate::http::{credential_identity, HttpClient, HttpConfig, HttpResponse, Safety};
use crate::names::{normalise_ns, NsSet, RegistrableDomain};
use crate::types::{Capabilities, Change, DsData, RegistrarId, Validation};
use crate::Registrar;

/// Production base URL (there is no sandbox).
pub const DEFAULT_BASE_URL: &str = "https://api.cloudflare.com/client/v4";
/// TTL for delegation records we write.
const DELEGATION_TTL: u32 = 3600;

const ID: RegistrarId = RegistrarId::Cloudflare;

/// The Cloudflare adapter.
#[derive(Debug)]
pub struct Cloudflare {
    http: HttpClient,
    token: Secret,
    account_id: Option<String>,
    per_page: u32,
}

#[derive(Debug, Deserialize)]
struct Envelope<T> {
    #[serde(default)]
    success: bool,
    #[serde(default)]
    errors: Vec<CfError>,
    result: Option<T>,
    #[serde(default)]
    result_info: Option<ResultInfo>,
}

#[derive(Debug, Default, Deserialize)]
struct CfError {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
    #[serde(default)]
    error_chain: Vec<CfError>,
}

#[derive(Debug, Deserialize)]
struct ResultInfo {
    #[serde(default)]
    page: u32,
    #[serde(default)]
    total_pages: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct TokenStatus {
    #[serde(default)]
    status: String,
    #[serde(default)]
    expires_on: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Account {
    id: String,
}

#[derive(Debug, Deserialize)]
struct RegistrarDomain {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name_servers: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Zone {
    id: String,
    name: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    name_servers: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct DnsRecord {
    id: String,
    #[serde(default)]
    content: String,
    #[serde(default)]
    data: Option<Value>,
}

impl Cloudflare {
    /// An adapter for the production API.
    pub fn new(creds: Credentials) -> Result<Self> {
        Self::with_config(creds, HttpConfig::new(ID, DEFAULT_BASE_URL))
    }

    /// An adapter with an explicit config.
    pub fn with_config(creds: Credentials, config: HttpConfig) -> Result<Self> {
        let identity = credential_identity(&creds);
        let Credentials::Cloudflare {
            api_token,
            account_id,
        } = creds
        else {
            return Err(RegistrarError::InvalidInput(
                "not Cloudflare credentials".into(),
            ));
        };
        let http = HttpClient::new(ID, &config, &identity)?.with_secrets([api_token.clone()]);
        let account_id = account_id
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty());
        Ok(Self {
            http,
            token: api_token,
            account_id,
            per_page: 50,
        })
    }

    /// Page size for list calls (Cloudflare allows 5..=50 for zones).
    pub fn with_per_page(mut self, per_page: u32) -> Self {
        self.per_page = per_page.clamp(5, 50);
        self
    }

    fn req(&self, method: Method, path: &str) -> Result<RequestBuilder> {
        let mut value =
            HeaderValue::from_str(&format!("Bearer {}", self.token.expose())).map_err(|_| {
                RegistrarError::InvalidInput("Cloudflare token contains invalid characters".into())
            })?;
        value.set_sensitive(true);
        Ok(self.http.request(method, path).header(AUTHORIZATION, value))
    }

    /// Classifies a failed envelope (429 and 5xx were handled by the client).
    fn error(&self, resp: &HttpResponse, domain: Option<&str>) -> RegistrarError {
        let env: Envelope<Value> = serde_json::from_slice(&resp.body).unwrap_or(Envelope {
            success: false,
            errors: Vec::new(),
            result: None,
            result_info: None,
        });
        let first = env.errors.first();
        let codes: Vec<i64> = env
            .errors
            .iter()
            .flat_map(|e| std::iter::once(e.code).chain(e.error_chain.iter().map(|c| c.code)))
            .collect();
        let message = first
            .map(|e| format!("{} ({})", e.message, e.code))
            .unwrap_or_else(|| format!("HTTP {}", resp.status));
        // 1000 invalid token, 6003/6111 malformed auth header, 1001 missing header.
        let auth = codes
            .iter()
            .any(|c| matches!(c, 1000 | 1001 | 6003 | 6111 | 6103));
        match resp.status {
            StatusCode::UNAUTHORIZED => RegistrarError::InvalidCredentials { registrar: ID },
            StatusCode::BAD_REQUEST if auth => RegistrarError::InvalidCredentials { registrar: ID },
            StatusCode::NOT_FOUND if domain.is_some() => RegistrarError::DomainNotInAccount {
                registrar: ID,
                domain: domain.unwrap_or_default().to_string(),
            },
            StatusCode::FORBIDDEN => self
                .http
                .rejected(format!("token lacks permission: {message}")),
            _ => self.http.rejected(message),
        }
    }

    /// Sends and unwraps the envelope; a non-2xx or `success:false` is an error.
    async fn call<T: DeserializeOwned>(
        &self,
        req: RequestBuilder,
        safety: Safety,
        domain: Option<&str>,
    ) -> Result<(Option<T>, Option<ResultInfo>)> {
        let resp = self.http.send(req, safety).await?;
        if !resp.status.is_success() {
            return Err(self.error(&resp, domain));
        }
        let env: Envelope<T> = self.http.json(&resp)?;
        if !env.success {
            return Err(self.error(&resp, domain));
        }
        Ok((env.result, env.result_info))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str, domain: Option<&str>) -> Result<T> {
        let (result, _) = self
            .call::<T>(self.req(Method::GET, path)?, Safety::Idempotent, domain)
            .await?;
        result.ok_or_else(|| self.http.unavailable("envelope without result"))
    }

    /// Every page of a list endpoint; `path` may already carry a query.
    async fn get_all<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut out = Vec::new();
        let mut page: u32 = 1;
        loop {
            let url = format!("{path}{sep}page={page}&per_page={}", self.per_page);
            let (items, info) = self
                .call::<Vec<T>>(self.req(Method::GET, &url)?, Safety::Idempotent, None)
                .await?;
            let items = items.unwrap_or_default();
            let got = items.len();
            out.extend(items);
            let total_pages = info.as_ref().and_then(|i| i.total_pages).unwrap_or(1);
            let current = info
                .as_ref()
                .map(|i| i.page)
                .filter(|p| *p > 0)
                .unwrap_or(page);
            if got == 0 || current >= total_pages {
                break;
            }
            page = current + 1;
        }
        Ok(out)
    }

    /// The account to use: the configured one, or the first the token sees.
    async fn account(&self) -> Result<Option<String>> {
        if let Some(a) = &self.account_id {
            return Ok(Some(a.clone()));
        }
        let accounts: Vec<Account> = self.get_all("/accounts").await?;
        Ok(accounts.into_iter().next().map(|a| a.id))
    }

    /// The zone named exactly `name`, if the token sees it.
    async fn zone(&self, name: &str) -> Result<Option<Zone>> {
        let mut path = format!("/zones?name={name}");
        if let Some(a) = &self.account_id {
            path.push_str(&format!("&account.id={a}"));
        }
        let zones: Vec<Zone> = self.get_all(&path).await?;
        Ok(zones
            .into_iter()
            .find(|z| z.name.eq_ignore_ascii_case(name)))
    }

    /// The registrar record for `domain`, or `None` when Cloudflare does not
    /// register it (404) or the token cannot read the registrar (403).
    async fn registrar_domain(
        &self,
        account: &str,
        domain: &str,
    ) -> Result<Option<RegistrarDomain>> {
        let path = format!("/accounts/{account}/registrar/domains/{domain}");
        let resp = self
            .http
            .send(self.req(Method::GET, &path)?, Safety::Idempotent)
            .await?;
        if matches!(resp.status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN) {
            return Ok(None);
        }
        if !resp.status.is_success() {
            return Err(self.error(&resp, Some(domain)));
        }
        let env: Envelope<RegistrarDomain> = self.http.json(&resp)?;
        Ok(env.result)
    }

    async fn records(&self, zone: &str, kind: &str, name: &str) -> Result<Vec<DnsRecord>> {
        self.get_all(&format!(
            "/zones/{zone}/dns_records?type={kind}&name={name}"
        ))
        .await
    }

    async fn create_record(&self, zone: &str, body: Value) -> Result<()> {
        let req = self
            .req(Method::POST, &format!("/zones/{zone}/dns_records"))?
            .json(&body);
        self.call::<Value>(req, Safety::Write, None)
            .await
            .map(|_| ())
    }

    async fn delete_record(&self, zone: &str, id: &str) -> Result<()> {
        let req = self.req(Method::DELETE, &format!("/zones/{zone}/dns_records/{id}"))?;
        self.call::<Value>(req, Safety::Write, None)
            .await
            .map(|_| ())
    }
}

/// Reads a DS record from its `data` object or, failing that, its content
/// (`<key tag> <algorithm> <digest type> <digest>`).
fn ds_of(r: &DnsRecord) -> Option<DsData> {
    if let Some(d) = &r.data {
        let n = |k: &str| d.get(k).and_then(Value::as_u64);
        return Some(DsData {
            key_tag: u16::try_from(n("key_tag")?).ok()?,
            algorithm: u8::try_from(n("algorithm")?).ok()?,
            digest_type: u8::try_from(n("digest_type")?).ok()?,
            digest: d.get("digest")?.as_str()?.to_ascii_lowercase(),
        });
    }
    let mut it = r.content.split_whitespace();
    Some(DsData {
        key_tag: it.next()?.parse().ok()?,
        algorithm: it.next()?.parse().ok()?,
        digest_type: it.next()?.parse().ok()?,
        digest: it.collect::<String>().to_ascii_lowercase(),
    })
}

#[async_trait]
impl Registrar for Cloudflare {
    fn id(&self) -> RegistrarId {
        ID
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            validate: true,
            list: true,
            get_ns: true,
            set_ns: false,
            get_ds: false,
            set_ds: false,
            glue: false,
            delegate_subdomain: true,
            host_records: false,
        }
    }

    async fn validate(&self, domain: Option<&RegistrableDomain>) -> Result<Validation> {
        // User tokens verify on /user; account tokens (cfat_…) get 403 there and
        // verify on /accounts/{id}/tokens/verify.
        let user = self
            .http
            .send(
                self.req(Method::GET, "/user/tokens/verify")?,
                Safety::Idempotent,
            )
            .await?;
        let (status, kind): (TokenStatus, &str) = if user.status.is_success() {
            let env: Envelope<TokenStatus> = self.http.json(&user)?;
            (
                env.result
                    .ok_or_else(|| self.http.unavailable("verify without result"))?,
                "user token",
            )
        } else if user.status == StatusCode::FORBIDDEN && self.account_id.is_some() {
            let a = self.account_id.clone().unwrap_or_default();
            (
                self.get(&format!("/accounts/{a}/tokens/verify"), None)
                    .await?,
                "account token",
            )
        } else {
            return Err(self.error(&user, None));
        };
        if status.status != "active" {
            // A disabled or expired token authenticates nothing.
            return Err(RegistrarError::InvalidCredentials { registrar: ID });
        }
        let mut scope = vec![format!("{kind}: active")];
        if let Some(exp) = &status.expires_on {
            scope.push(format!("expires {exp}"));
        }
        let account = self.account().await?;
        // Probe what the token may read: verify does not list permissions.
        if let Some(a) = &account {
            let probe = format!("/accounts/{a}/registrar/domains?page=1&per_page=5");
            let resp = self
                .http
                .send(self.req(Method::GET, &probe)?, Safety::Idempotent)
                .await?;
            match resp.status {
                s if s.is_success() => scope.push("registrar: read".into()),
                StatusCode::FORBIDDEN => scope.push("registrar: no access".into()),
                _ => return Err(self.error(&resp, None)),
            }
        } else {
            scope.push("no account visible to this token".into());
        }
        let zones: Vec<Zone> = self
            .call::<Vec<Zone>>(
                self.req(Method::GET, "/zones?page=1&per_page=5")?,
                Safety::Idempotent,
                None,
            )
            .await?
            .0
            .unwrap_or_default();
        scope.push(if zones.is_empty() {
            "zones: none visible".into()
        } else {
            "zones: read".into()
        });
        let mut v = Validation {
            account,
            scope,
            domain_in_account: None,
        };
        if let Some(d) = domain {
            let name = d.name();
            let registered = match &v.account {
                Some(a) => self.registrar_domain(a, &name).await?.is_some(),
                None => false,
            };
            if !registered && self.zone(&name).await?.is_none() {
                return Err(RegistrarError::DomainNotInAccount {
                    registrar: ID,
                    domain: name,
                });
            }
            v.domain_in_account = Some(true);
        }
        Ok(v)
    }

    /// Domains registered at Cloudflare Registrar plus the zones the token sees
    /// (zones are where [`Registrar::delegate_subdomain`] works).
    async fn list_domains(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        if let Some(a) = self.account().await? {
            match self
                .get_all::<RegistrarDomain>(&format!("/accounts/{a}/registrar/domains"))
                .await
            {
                Ok(ds) => out.extend(ds.into_iter().filter_map(|d| d.name.or(d.id))),
                // Without Registrar read permission the zones still count.
                Err(RegistrarError::Rejected { message, .. })
                    if message.starts_with("token lacks permission") => {}
                Err(e) => return Err(e),
            }
        }
        let mut path = "/zones".to_string();
        if let Some(a) = &self.account_id {
            path.push_str(&format!("?account.id={a}"));
        }
        out.extend(
            self.get_all::<Zone>(&path)
                .await?
                .into_iter()
                .map(|z| z.name),
        );
        let mut out: Vec<String> = out
            .into_iter()
            .map(|n| n.trim().trim_end_matches('.').to_ascii_lowercase())
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn get_ns(&self, domain: &RegistrableDomain) -> Result<NsSet> {
        let name = domain.name();
        if let Some(a) = self.account().await? {
            if let Some(d) = self.registrar_domain(&a, &name).await? {
                return Ok(NsSet::observed(d.name_servers));
            }
        }
        // Registered elsewhere: an active zone means the registry delegates to
        // the nameservers Cloudflare assigned (that is what "active" checks).
        match self.zone(&name).await? {
            Some(z) if z.status == "active" => Ok(NsSet::observed(z.name_servers)),
            _ => Err(RegistrarError::DomainNotInAccount {
                registrar: ID,
                domain: name,
            }),
        }
    }

    async fn set_ns(&self, _domain: &RegistrableDomain, _ns: &NsSet) -> Result<Change> {
        Err(RegistrarError::unsupported(
            ID,
            "changing nameservers: Cloudflare Registrar requires Cloudflare as the authoritative DNS \
             and forbids non-Cloudflare nameservers; delegate a subdomain inside the Cloudflare zone instead",
        ))
    }

    async fn delegate_subdomain(&self, child: &str, ns: &NsSet, ds: &[DsData]) -> Result<Change> {
        let child = child.trim().trim_end_matches('.').to_ascii_lowercase();
        if ns.hosts().len() < 2 {
            return Err(RegistrarError::InvalidInput(
                "at least 2 nameservers are required".into(),
            ));
        }
        // Longest suffix first: the zone closest to the child is the one that must hold the cut.
        let labels: Vec<&str> = child.split('.').collect();
        let mut found = None;
        for i in 1..labels.len().saturating_sub(1) {
            let candidate = labels[i..].join(".");
            if let Some(z) = self.zone(&candidate).await? {
                found = Some(z);
                break;
            }
        }
        let Some(zone) = found else {
            if self.zone(&child).await?.is_some() {
                return Err(RegistrarError::InvalidInput(format!(
                    "{child} is a zone apex; its delegation is set at the registrar, not in the zone"
                )));
            }
            return Err(RegistrarError::DomainNotInAccount {
                registrar: ID,
                domain: child,
            });
        };
        let mut changed = false;

        let have_ns = self.records(&zone.id, "NS", &child).await?;
        let want_ns = ns.hosts();
        let mut seen: Vec<String> = Vec::new();
        let mut stale_ns = Vec::new();
        for r in &have_ns {
            let host = normalise_ns([r.content.as_str()]).pop().unwrap_or_default();
            if want_ns.contains(&host) && !seen.contains(&host) {
                seen.push(host);
            } else {
                stale_ns.push(r.id.clone());
            }
        }
        // Add before removing so the child never loses its delegation mid-change.
        for host in want_ns.iter().filter(|h| !seen.contains(h)) {
            let body =
                json!({ "type": "NS", "name": child, "content": host, "ttl": DELEGATION_TTL });
            self.create_record(&zone.id, body).await?;
            changed = true;
        }

        let have_ds = self.records(&zone.id, "DS", &child).await?;
        let mut want_ds: Vec<DsData> = ds.iter().map(DsData::normalised).collect();
        want_ds.sort();
        want_ds.dedup();
        let mut kept: Vec<DsData> = Vec::new();
        let mut stale_ds = Vec::new();
        for r in &have_ds {
            match ds_of(r) {
                Some(d) if want_ds.contains(&d) && !kept.contains(&d) => kept.push(d),
                _ => stale_ds.push(r.id.clone()),
            }
        }
        for d in want_ds.iter().filter(|d| !kept.contains(d)) {
            let body = json!({
                "type": "DS", "name": child, "ttl": DELEGATION_TTL,
                "data": { "key_tag": d.key_tag, "algorithm": d.algorithm,
                          "digest_type": d.digest_type, "digest": d.digest.to_ascii_uppercase() }
            });
            self.create_record(&zone.id, body).await?;
            changed = true;
        }
        for id in stale_ds.iter().chain(&stale_ns) {
            self.delete_record(&zone.id, id).await?;
            changed = true;
        }
        if changed {
            tracing::info!(registrar = %ID, zone = %zone.name, child = %child, ns = %ns, ds = want_ds.len(), "subdomain delegated");
            Ok(Change::Applied)
        } else {
            Ok(Change::Unchanged)
        }
    }
}

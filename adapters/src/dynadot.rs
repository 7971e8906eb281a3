//! Dynadot adapter over the RESTful API (registrars.md §5.2).
//!
//! Why REST and not api3: api3 carries the API key in the query string (so it
//! ends up in every proxy and access log on the way) and is GET-only, while
//! REST sends the key as a bearer token and signs each request with the API
//! secret (`X-Signature`), which is also what Dynadot's newer endpoints demand.
//! The signature follows lego/certimate (the implementations run against
//! production in 2025-26): base64(HMAC-SHA256(secret, key ⏎ pathAndQuery ⏎
//! requestId ⏎ body)) over the full `/restful/v2/...` path; [`string_to_sign`]
//! is the one place to change should Dynadot settle on another variant.
//! Credentials without a secret are refused up front with a clear message
//! instead of failing on the first call.
//!
//! Dynadot has no async tasks: a 200 means applied. The Regular tier allows one
//! request at a time (60/min), so requests through one adapter are serialised;
//! `system_busy` and HTTP 429 answers become [`RegistrarError::RateLimited`].
//!
//! Records on Dynadot's own DNS (set-dns) use `POST /domains/{d}/records`
//! without `add_dns_to_current_setting` (a full replace): apex records in
//! `dns_main_list`, the others in `sub_list`, MX priority in `record_value2`,
//! and one `ttl` for the whole domain. The Go service used api3 `set_dns2`
//! with parameter names Dynadot does not document (`sub_record{i}` as the
//! label, per-record TTLs; openova-pdm.md §4.6); this adapter does not.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::credentials::{Credentials, Secret};
use crate::error::{RegistrarError, Result};
use crate::http::{credential_identity, HttpClient, HttpConfig, HttpResponse, Safety};
use crate::names::{NsSet, RegistrableDomain};
use crate::types::{
    Capabilities, Change, DnskeyData, DsData, Glue, HostRecord, HostRecordType, RegistrarId,
    Validation,
};
use crate::Registrar;

/// The production REST base (v2, the version the signature scheme belongs to).
pub const BASE: &str = "https://api.dynadot.com/restful/v2";
/// The sandbox REST base.
pub const SANDBOX_BASE: &str = "https://api-sandbox.dynadot.com/restful/v2";

const ID: RegistrarId = RegistrarId::Dynadot;

/// Dynadot takes `ns0`..`ns12`: at most 13 nameservers.
pub const MAX_NS: usize = 13;

/// Apex records Dynadot takes per domain (`dns_main_list`, "max 20").
pub const MAX_MAIN_RECORDS: usize = 20;
/// Sub-host records Dynadot takes per domain (`sub_list`, "max 100").
pub const MAX_SUB_RECORDS: usize = 100;
/// The TTL Dynadot applies when none is given.
pub const DEFAULT_TTL: u32 = 86400;

/// Domains asked for per page when listing.
pub const PAGE_SIZE: usize = 100;

/// The string Dynadot's `X-Signature` is computed over (lego `signer.go`):
/// `apiKey \n pathAndQuery \n requestId \n body`, with empty strings for an
/// absent request id or body.
pub fn string_to_sign(
    api_key: &str,
    path_and_query: &str,
    request_id: &str,
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        api_key.len() + path_and_query.len() + request_id.len() + body.len() + 3,
    );
    out.extend_from_slice(api_key.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(path_and_query.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(request_id.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

/// base64(HMAC-SHA256(`api_secret`, [`string_to_sign`])).
pub fn signature(
    api_key: &str,
    api_secret: &str,
    path_and_query: &str,
    request_id: &str,
    body: &[u8],
) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, api_secret.as_bytes());
    let tag = ring::hmac::sign(
        &key,
        &string_to_sign(api_key, path_and_query, request_id, body),
    );
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

/// The rate-limit answers Dynadot gives: HTTP 429 (concurrency limit), or a
/// `system_busy` status in an otherwise normal envelope.
pub fn detect_rate_limit(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Option<std::time::Duration>> {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Some(crate::http::retry_after(headers));
    }
    // A cheap byte scan first: only parse bodies that could be a busy answer.
    if body
        .windows(11)
        .any(|w| w.eq_ignore_ascii_case(b"system_busy"))
    {
        return Some(crate::http::retry_after(headers));
    }
    None
}

/// The `code` of an envelope: an int in some answers, a string in others.
fn code_of(v: &Value) -> Option<i64> {
    let c = v
        .get("code")
        .or_else(|| v.get("status").and_then(|s| s.get("code")))?;
    c.as_i64()
        .or_else(|| c.as_str().and_then(|s| s.trim().parse().ok()))
}

/// The most specific human message in an error envelope.
fn description_of(v: &Value) -> String {
    let pick = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    pick(v.get("error").and_then(|e| e.get("description")))
        .or_else(|| pick(v.get("error")))
        .or_else(|| pick(v.get("message")))
        .or_else(|| pick(v.get("status").and_then(|s| s.get("message"))))
        .unwrap_or_else(|| "no message".to_string())
        .chars()
        .take(300)
        .collect()
}

/// Maps a non-success answer to a [`RegistrarError`]; `domain` is the domain
/// the call was about (so "not found" means "not in this account").
pub fn classify_error(status: StatusCode, body: &[u8], domain: Option<&str>) -> RegistrarError {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = code_of(&v).unwrap_or(i64::from(status.as_u16()));
    let desc = description_of(&v);
    let lower = desc.to_ascii_lowercase();
    if status == StatusCode::TOO_MANY_REQUESTS || code == 429 || lower.contains("system_busy") {
        return RegistrarError::RateLimited {
            registrar: ID,
            retry_after: None,
        };
    }
    if status.is_server_error() || code >= 500 {
        return RegistrarError::unavailable(ID, format!("HTTP {status}: {desc}"));
    }
    let not_in_account = [
        "not found",
        "could not find",
        "not in your account",
        "not own",
        "no such domain",
    ]
    .iter()
    .any(|p| lower.contains(p));
    if let (Some(d), true) = (domain, not_in_account || code == 404) {
        return RegistrarError::DomainNotInAccount {
            registrar: ID,
            domain: d.to_string(),
        };
    }
    if lower.contains("whitelist")
        || lower.contains("allowlist")
        || lower.contains("ip address is not allowed")
    {
        return RegistrarError::IpNotWhitelisted {
            registrar: ID,
            detail: desc,
        };
    }
    if code == 401
        || [
            "invalid key",
            "invalid api key",
            "invalid token",
            "invalid x-signature",
            "invalid signature",
            "unauthorized",
        ]
        .iter()
        .any(|p| lower.contains(p))
    {
        return RegistrarError::InvalidCredentials { registrar: ID };
    }
    if lower.contains("api access") || lower.contains("not eligible") {
        return RegistrarError::AccountNotEligible {
            registrar: ID,
            detail: desc,
        };
    }
    RegistrarError::Rejected {
        registrar: ID,
        message: desc,
    }
}

/// DNSSEC algorithm number → Dynadot's enum name.
pub fn algorithm_name(n: u8) -> Option<&'static str> {
    Some(match n {
        5 => "rsa_sha1",
        7 => "rsa_sha1_nsec3",
        8 => "rsa_sha256",
        10 => "rsa_sha512",
        13 => "ecdsa_p256_sha256",
        14 => "ecdsa_p384_sha384",
        15 => "ed25519",
        16 => "ed448",
        _ => return None,
    })
}

/// Digest type number → Dynadot's enum name.
pub fn digest_type_name(n: u8) -> Option<&'static str> {
    Some(match n {
        1 => "sha1",
        2 => "sha256",
        3 => "gost",
        4 => "sha384",
        _ => return None,
    })
}

/// Reads an algorithm or digest type as Dynadot shows it: a number, an enum
/// name (`ecdsa_p256_sha256`), or a display string (`"RSA/MD5 (1)"`, `"SHA-1 (1)"`).
fn number_of(v: &Value, by_name: fn(u8) -> Option<&'static str>) -> Option<u8> {
    if let Some(n) = v.as_u64() {
        return u8::try_from(n).ok();
    }
    let s = v.as_str()?.trim();
    if let Ok(n) = s.parse() {
        return Some(n);
    }
    // "Name (13)": the number in parentheses is authoritative.
    if let (Some(open), Some(close)) = (s.rfind('('), s.rfind(')')) {
        if let Ok(n) = s[open + 1..close].trim().parse() {
            return Some(n);
        }
    }
    (0..=255u8).find(|&n| by_name(n).is_some_and(|name| name.eq_ignore_ascii_case(s)))
}

/// The Dynadot adapter (REST).
#[derive(Debug)]
pub struct Dynadot {
    api_key: Secret,
    api_secret: Secret,
    http: HttpClient,
    /// The path prefix of the base URL (`/restful/v2`), part of what is signed.
    base_path: String,
    /// One request in flight at a time (Regular tier: "1 thread").
    gate: Arc<tokio::sync::Semaphore>,
}

impl Dynadot {
    /// An adapter for `credentials` (must be [`Credentials::Dynadot`] with a
    /// secret); the config's base URL is e.g. [`BASE`] or a fake's `/restful/v2` URL.
    pub fn new(credentials: &Credentials, config: &HttpConfig) -> Result<Self> {
        let Credentials::Dynadot {
            api_key,
            api_secret,
        } = credentials
        else {
            return Err(RegistrarError::InvalidInput(
                "Dynadot needs Dynadot credentials".into(),
            ));
        };
        let Some(api_secret) = api_secret.clone() else {
            return Err(RegistrarError::InvalidInput(
                "Dynadot needs key:secret (the REST API signs every request with the API secret; \
                 both are under Tools → API in the Dynadot account)"
                    .into(),
            ));
        };
        let http = HttpClient::new(ID, config, &credential_identity(credentials))?
            .with_rate_limit_detector(detect_rate_limit)
            .with_secrets([api_key.clone(), api_secret.clone()]);
        let base_path = match config.base_url.split_once("://") {
            Some((_, rest)) => rest
                .find('/')
                .map(|i| rest[i..].to_string())
                .unwrap_or_default(),
            None => String::new(),
        };
        Ok(Self {
            api_key: api_key.clone(),
            api_secret,
            http,
            base_path,
            gate: Arc::new(tokio::sync::Semaphore::new(1)),
        })
    }

    /// Allows `n` concurrent requests (Bulk tier: 5, Super Bulk: 25).
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.gate = Arc::new(tokio::sync::Semaphore::new(n.max(1)));
        self
    }

    /// The HTTP client (its limiter is what tests inspect).
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// Sends one signed request; returns the raw answer for the caller to judge.
    async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
    ) -> Result<HttpResponse> {
        let body = body.unwrap_or_default();
        let request_id = request_id()?;
        let signed_path = format!("{}{}", self.base_path, path_and_query);
        let sig = signature(
            self.api_key.expose(),
            self.api_secret.expose(),
            &signed_path,
            &request_id,
            &body,
        );
        let mut rb = self
            .http
            .request(method.clone(), path_and_query)
            .bearer_auth(self.api_key.expose())
            .header("Accept", "application/json")
            .header("X-Request-Id", &request_id)
            .header("X-Signature", sig);
        if !body.is_empty() {
            // The signed bytes, sent as they are (never re-serialised).
            rb = rb.header("Content-Type", "application/json").body(body);
        }
        let safety = if method == Method::GET {
            Safety::Idempotent
        } else {
            Safety::Write
        };
        let _permit = self
            .gate
            .acquire()
            .await
            .map_err(|_| self.http.unavailable("request gate closed"))?;
        self.http.send(rb, safety).await
    }

    /// Sends and unwraps the `{code,message,data}` envelope; `data` (or null).
    async fn call(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
        domain: Option<&str>,
    ) -> Result<Value> {
        let bytes = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| RegistrarError::InvalidInput(format!("cannot encode request: {e}")))?;
        let resp = self.send(method, path_and_query, bytes).await?;
        // Dynadot's descriptions are passed on verbatim; never with our secrets.
        envelope(&resp, domain).map_err(|e| self.http.scrub_error(e))
    }

    /// Adds each NS host outside `domain` to the account as an external name
    /// server: Dynadot refuses a nameserver PUT naming hosts the account does
    /// not know ("Name server(s) … must be added to your account first";
    /// registrars.md §5.2 `POST /nameservers/{ns}/add_external`, body `{}`).
    /// Hosts inside `domain` are glue hosts: they are registered with their
    /// addresses through [`Registrar::set_glue`], not added here.
    async fn add_external_hosts(&self, domain: &RegistrableDomain, ns: &NsSet) -> Result<()> {
        let suffix = format!(".{}", domain.name());
        let empty = serde_json::json!({});
        for host in ns.hosts().iter().filter(|h| !h.ends_with(&suffix)) {
            match self
                .call(
                    Method::POST,
                    &format!("/nameservers/{host}/add_external"),
                    Some(&empty),
                    None,
                )
                .await
            {
                Ok(_) => {
                    tracing::info!(registrar = %ID, host = %host, "name server added to the account")
                }
                Err(e) if already_there(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn glue_lookup(&self, host: &str) -> Result<Option<Vec<IpAddr>>> {
        let resp = self
            .send(Method::GET, &format!("/nameservers/{host}"), None)
            .await?;
        let v: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
        let code = code_of(&v).unwrap_or(i64::from(resp.status.as_u16()));
        if resp.status == StatusCode::NOT_FOUND || code == 404 {
            return Ok(None);
        }
        let data = envelope(&resp, None).map_err(|e| self.http.scrub_error(e))?;
        let ips = data
            .get("ip_list")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        Ok(Some(sorted_ips(&ips)?))
    }
}

/// Whether a refusal to add a name server only says it is there already
/// (dnscontrol ignores errors containing "already exists"; registrars.md §6).
fn already_there(e: &RegistrarError) -> bool {
    e.upstream_message().is_some_and(|m| {
        let m = m.to_ascii_lowercase();
        m.contains("already exists") || m.contains("already added")
    })
}

/// Unwraps a REST envelope: success is a 2xx with `code` 200 (or 0, or absent).
fn envelope(resp: &HttpResponse, domain: Option<&str>) -> Result<Value> {
    let v: Value = serde_json::from_slice(&resp.body).map_err(|e| {
        RegistrarError::unavailable(
            ID,
            format!("unparseable response (HTTP {}): {e}", resp.status),
        )
    })?;
    let code = code_of(&v);
    if resp.status.is_success() && matches!(code, None | Some(0) | Some(200)) {
        return Ok(v.get("data").cloned().unwrap_or(Value::Null));
    }
    Err(classify_error(resp.status, &resp.body, domain))
}

/// A random UUIDv4-shaped request id (it is part of the signed string).
fn request_id() -> Result<String> {
    use ring::rand::SecureRandom as _;
    let mut b = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| RegistrarError::unavailable(ID, "no randomness for a request id"))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

fn sorted_ips(ips: &[String]) -> Result<Vec<IpAddr>> {
    let mut out = ips
        .iter()
        .map(|s| {
            s.trim().parse::<IpAddr>().map_err(|_| {
                RegistrarError::unavailable(ID, format!("glue address {s:?} is not an IP"))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}

fn glue_host(domain: &RegistrableDomain, host: &str) -> Result<String> {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    if !host.ends_with(&format!(".{}", domain.name())) {
        return Err(RegistrarError::InvalidInput(format!(
            "glue host {host:?} is not under {domain} (glue is registered for in-domain hosts)"
        )));
    }
    Ok(host)
}

/// One DS record as `GET …/dnssec` shows it, normalised to numbers.
fn ds_of(v: &Value) -> Option<DsData> {
    let key_tag = v
        .get("key_tag")
        .and_then(|t| t.as_u64().or_else(|| t.as_str()?.trim().parse().ok()))?;
    Some(DsData {
        key_tag: u16::try_from(key_tag).ok()?,
        algorithm: number_of(v.get("algorithm")?, algorithm_name)?,
        digest_type: number_of(v.get("digest_type")?, digest_type_name)?,
        digest: v.get("digest")?.as_str()?.trim().to_ascii_lowercase(),
    })
}

#[derive(Serialize)]
struct DnssecBody<'a> {
    key_tag: u16,
    digest_type: &'a str,
    digest: &'a str,
    algorithm: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    flags: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    public_key: Option<&'a str>,
}

/// An apex record as `POST …/records` takes it.
#[derive(Serialize)]
struct MainRecord<'a> {
    record_type: &'a str,
    record_value1: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    record_value2: Option<String>,
}

/// A sub-host record as `POST …/records` takes it.
#[derive(Serialize)]
struct SubRecord<'a> {
    sub_host: &'a str,
    record_type: &'a str,
    record_value1: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    record_value2: Option<String>,
}

/// `POST …/records`; `add_dns_to_current_setting` is left out (false: replace).
#[derive(Serialize)]
struct SetRecords<'a> {
    dns_main_list: Vec<MainRecord<'a>>,
    sub_list: Vec<SubRecord<'a>>,
    ttl: u32,
}

/// A number Dynadot sends as a number or as a string.
fn lenient_u64(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

/// The records in a `GET …/records` answer. The documented answer is a
/// `name_server_settings` object; its record fields are those of Dynadot's
/// name-server settings elsewhere in the API (`dns_main_list`,
/// `dns_sub_list`, one `ttl`) [U: shown with records in no doc example].
/// Types outside [`HostRecordType`] (forward, stealth, ...) are skipped.
fn host_records_of(data: &Value) -> Vec<HostRecord> {
    let settings = data
        .get("name_server_settings")
        .or_else(|| data.get("glueInfo"))
        .unwrap_or(data);
    let ttl = settings
        .get("ttl")
        .and_then(lenient_u64)
        .and_then(|t| u32::try_from(t).ok())
        .unwrap_or(DEFAULT_TTL);
    let list = |k: &str| {
        settings
            .get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let record = |v: &Value, subhost: &str| -> Option<HostRecord> {
        let rtype: HostRecordType = v.get("record_type")?.as_str()?.parse().ok()?;
        let value = v.get("record_value1")?.as_str()?.to_string();
        let priority = match rtype {
            HostRecordType::Mx => Some(
                v.get("record_value2")
                    .and_then(lenient_u64)
                    .and_then(|p| u16::try_from(p).ok())
                    .unwrap_or(0),
            ),
            _ => None,
        };
        Some(
            HostRecord {
                subhost: subhost.to_string(),
                rtype,
                value,
                ttl,
                priority,
            }
            .normalised(),
        )
    };
    let mut out: Vec<HostRecord> = list("dns_main_list")
        .iter()
        .filter_map(|v| record(v, ""))
        .collect();
    out.extend(list("dns_sub_list").iter().filter_map(|v| {
        let sub = v.get("sub_host")?.as_str()?;
        record(v, sub)
    }));
    out.sort();
    out
}

#[derive(Deserialize)]
struct NameServerEntry {
    host: String,
}

#[async_trait]
impl Registrar for Dynadot {
    fn id(&self) -> RegistrarId {
        ID
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            validate: true,
            list: true,
            get_ns: true,
            set_ns: true,
            get_ds: true,
            set_ds: true,
            glue: true,
            delegate_subdomain: false,
            host_records: true,
        }
    }

    async fn validate(&self, domain: Option<&RegistrableDomain>) -> Result<Validation> {
        let data = self.call(Method::GET, "/accounts/info", None, None).await?;
        let info = data.get("account_info").unwrap_or(&data);
        let account = ["username", "user_name", "customer_id", "account_id"]
            .iter()
            .find_map(|k| info.get(*k))
            .and_then(|v| {
                v.as_str()
                    .map(str::to_string)
                    .or_else(|| v.as_u64().map(|n| n.to_string()))
            });
        let domain_in_account = match domain {
            None => None,
            Some(d) => {
                let name = d.name();
                // Not in the account → DomainNotInAccount (the trait's contract).
                self.call(Method::GET, &format!("/domains/{name}"), None, Some(&name))
                    .await?;
                Some(true)
            }
        };
        // Dynadot keys carry no scopes: a key can do everything the account can.
        Ok(Validation {
            account,
            scope: Vec::new(),
            domain_in_account,
        })
    }

    async fn list_domains(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        // Bounded so a server that ignores page_index cannot loop us forever.
        for page in 0..10_000usize {
            let data = self
                .call(
                    Method::GET,
                    &format!("/domains?count_per_page={PAGE_SIZE}&page_index={page}"),
                    None,
                    None,
                )
                .await?;
            let items = data
                .get("domain_info")
                .or_else(|| data.get("domainInfo"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let n = items.len();
            out.extend(items.iter().filter_map(|d| {
                d.get("domain_name")
                    .or_else(|| d.get("domainName"))
                    .and_then(Value::as_str)
                    .map(|s| s.trim().trim_end_matches('.').to_ascii_lowercase())
            }));
            if n < PAGE_SIZE {
                break;
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn get_ns(&self, domain: &RegistrableDomain) -> Result<NsSet> {
        let d = domain.name();
        let data = self
            .call(
                Method::GET,
                &format!("/domains/{d}/nameservers"),
                None,
                Some(&d),
            )
            .await?;
        let list: Vec<NameServerEntry> =
            serde_json::from_value(data.get("name_servers").cloned().unwrap_or(Value::Null))
                .unwrap_or_default();
        Ok(NsSet::observed(list.into_iter().map(|e| e.host)))
    }

    async fn set_ns(&self, domain: &RegistrableDomain, ns: &NsSet) -> Result<Change> {
        if ns.hosts().len() < 2 || ns.hosts().len() > MAX_NS {
            return Err(RegistrarError::InvalidInput(format!(
                "Dynadot takes 2 to {MAX_NS} nameservers, got {}",
                ns.hosts().len()
            )));
        }
        let d = domain.name();
        if &self.get_ns(domain).await? == ns {
            return Ok(Change::Unchanged);
        }
        self.add_external_hosts(domain, ns).await?;
        let body = serde_json::json!({ "nameserver_list": ns.hosts() });
        self.call(
            Method::PUT,
            &format!("/domains/{d}/nameservers"),
            Some(&body),
            Some(&d),
        )
        .await?;
        Ok(Change::Applied)
    }

    async fn get_ds(&self, domain: &RegistrableDomain) -> Result<Vec<DsData>> {
        let d = domain.name();
        let data = self
            .call(Method::GET, &format!("/domains/{d}/dnssec"), None, Some(&d))
            .await?;
        let list = data
            .get("dnssec_info_list")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut out = list
            .iter()
            .map(|v| {
                ds_of(v).ok_or_else(|| {
                    self.http
                        .unavailable("a DNSSEC entry has an unexpected shape")
                })
            })
            .collect::<Result<Vec<_>>>()?;
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn set_ds(
        &self,
        domain: &RegistrableDomain,
        ds: &[DsData],
        dnskeys: &[DnskeyData],
    ) -> Result<Change> {
        let d = domain.name();
        let mut want: Vec<DsData> = ds.iter().map(DsData::normalised).collect();
        want.sort();
        want.dedup();
        if want.len() > 1 {
            // `PUT …/dnssec` takes one record and replaces what is there.
            return Err(RegistrarError::unsupported(
                ID,
                format!(
                    "more than one DS record per domain ({} asked); Dynadot's API sets one",
                    want.len()
                ),
            ));
        }
        let have = self.get_ds(domain).await?;
        if have == want {
            return Ok(Change::Unchanged);
        }
        let Some(rec) = want.first() else {
            self.call(
                Method::DELETE,
                &format!("/domains/{d}/dnssec"),
                None,
                Some(&d),
            )
            .await?;
            return Ok(Change::Applied);
        };
        let algorithm = algorithm_name(rec.algorithm).ok_or_else(|| {
            RegistrarError::InvalidInput(format!(
                "Dynadot does not take DNSSEC algorithm {}",
                rec.algorithm
            ))
        })?;
        let digest_type = digest_type_name(rec.digest_type).ok_or_else(|| {
            RegistrarError::InvalidInput(format!(
                "Dynadot does not take digest type {}",
                rec.digest_type
            ))
        })?;
        let key = dnskeys
            .iter()
            .find(|k| k.key_tag == rec.key_tag && k.algorithm == rec.algorithm);
        let body = DnssecBody {
            key_tag: rec.key_tag,
            digest_type,
            digest: &rec.digest,
            algorithm,
            flags: key.map(|k| if k.flags & 1 == 1 { "ksk" } else { "zsk" }),
            public_key: key.map(|k| k.public_key.as_str()),
        };
        let body = serde_json::to_value(&body)
            .map_err(|e| RegistrarError::InvalidInput(format!("cannot encode request: {e}")))?;
        self.call(
            Method::PUT,
            &format!("/domains/{d}/dnssec"),
            Some(&body),
            Some(&d),
        )
        .await?;
        Ok(Change::Applied)
    }

    async fn get_host_records(&self, domain: &RegistrableDomain) -> Result<Vec<HostRecord>> {
        let d = domain.name();
        let data = self
            .call(
                Method::GET,
                &format!("/domains/{d}/records"),
                None,
                Some(&d),
            )
            .await?;
        Ok(host_records_of(&data))
    }

    async fn set_host_records(
        &self,
        domain: &RegistrableDomain,
        records: &[HostRecord],
    ) -> Result<Change> {
        let want = HostRecord::normalised_set(records);
        let Some(ttl) = want.first().map(|r| r.ttl) else {
            return Err(RegistrarError::InvalidInput(
                "at least one record is required (Dynadot replaces every record)".into(),
            ));
        };
        // One TTL per domain: refusing beats silently changing the caller's TTLs.
        if let Some(other) = want.iter().find(|r| r.ttl != ttl) {
            return Err(RegistrarError::InvalidInput(format!(
                "Dynadot sets one TTL for all records of a domain; got {ttl} and {}",
                other.ttl
            )));
        }
        let (main, sub): (Vec<&HostRecord>, Vec<&HostRecord>) =
            want.iter().partition(|r| r.subhost.is_empty());
        if main.len() > MAX_MAIN_RECORDS || sub.len() > MAX_SUB_RECORDS {
            return Err(RegistrarError::InvalidInput(format!(
                "Dynadot takes at most {MAX_MAIN_RECORDS} apex and {MAX_SUB_RECORDS} sub-host \
                 records; got {} and {}",
                main.len(),
                sub.len()
            )));
        }
        if self.get_host_records(domain).await? == want {
            return Ok(Change::Unchanged);
        }
        let body = SetRecords {
            dns_main_list: main
                .iter()
                .map(|r| MainRecord {
                    record_type: r.rtype.as_str(),
                    record_value1: &r.value,
                    record_value2: r.priority.map(|p| p.to_string()),
                })
                .collect(),
            sub_list: sub
                .iter()
                .map(|r| SubRecord {
                    sub_host: &r.subhost,
                    record_type: r.rtype.as_str(),
                    record_value1: &r.value,
                    record_value2: r.priority.map(|p| p.to_string()),
                })
                .collect(),
            ttl,
        };
        let body = serde_json::to_value(&body)
            .map_err(|e| RegistrarError::InvalidInput(format!("cannot encode request: {e}")))?;
        let d = domain.name();
        self.call(
            Method::POST,
            &format!("/domains/{d}/records"),
            Some(&body),
            Some(&d),
        )
        .await?;
        tracing::info!(registrar = %ID, domain = %d, records = want.len(), "host records replaced");
        Ok(Change::Applied)
    }

    async fn get_glue(&self, domain: &RegistrableDomain, host: &str) -> Result<Glue> {
        let host = glue_host(domain, host)?;
        let addresses = self.glue_lookup(&host).await?.unwrap_or_default();
        Ok(Glue { host, addresses })
    }

    async fn set_glue(&self, domain: &RegistrableDomain, glue: &Glue) -> Result<Change> {
        let host = glue_host(domain, &glue.host)?;
        let mut want = glue.addresses.clone();
        want.sort();
        want.dedup();
        let have = self.glue_lookup(&host).await?;
        if have.as_deref().unwrap_or_default() == want.as_slice() {
            return Ok(Change::Unchanged);
        }
        let ips: Vec<String> = want.iter().map(IpAddr::to_string).collect();
        match (have, ips.first()) {
            (Some(_), None) => {
                self.call(Method::DELETE, &format!("/nameservers/{host}"), None, None)
                    .await?;
            }
            (None, None) => {}
            (None, Some(first)) => {
                let body =
                    serde_json::json!({ "name_server": { "server_name": host, "ip": first } });
                self.call(Method::POST, "/nameservers/register", Some(&body), None)
                    .await?;
                if ips.len() > 1 {
                    let body = serde_json::json!({ "ip_list": ips });
                    self.call(
                        Method::PUT,
                        &format!("/nameservers/{host}/set_ip"),
                        Some(&body),
                        None,
                    )
                    .await?;
                }
            }
            (Some(_), Some(_)) => {
                let body = serde_json::json!({ "ip_list": ips });
                self.call(
                    Method::PUT,
                    &format!("/nameservers/{host}/set_ip"),
                    Some(&body),
                    None,
                )
                .await?;
            }
        }
        Ok(Change::Applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RID: &str = "8e5bc897-75c8-4a9c-9362-5671405c7761";
    const PATH: &str = "/restful/v2/domains/example.com/records";

    #[test]
    fn lego_signature_vectors() {
        assert_eq!(
            signature("key", "secret", PATH, RID, br#"{"sub_list":[]}"#),
            "1v6pCnviEO/dqOIRV2wSc+YRJHt92L+P2xqkyuTVQyk="
        );
        assert_eq!(
            signature("key", "secret", PATH, "", b""),
            "bmpyYo9wpBlZBrcjmZOGrHdp1nQcsesmr8fxibvpefA="
        );
        assert_eq!(
            signature("key", "other-secret", PATH, RID, br#"{"sub_list":[]}"#),
            "ro+dZ59kmfLkWb1CWDsp/rVUeXSScDDr01J7Yg8Bj/E="
        );
        let body = concat!(
            r#"{"sub_list":[{"record_type":"TXT","record_value1":"ADw2sEd82DUgXcQ9hNBZThJs7zVJkR5v9JeSbAb9mZY","sub_host":"_acme-challenge"}],"ttl":120,"add_dns_to_current_setting":true}"#,
            "\n"
        );
        assert_eq!(
            signature("key", "secret", PATH, "", body.as_bytes()),
            "StGY3XMuHaR4iZ1vcddPkasNsVuPyoxdG44w29/iYSM="
        );
    }

    #[test]
    fn derived_nameserver_vector() {
        assert_eq!(
            signature(
                "key",
                "secret",
                "/restful/v2/domains/example.com/nameservers",
                "",
                br#"{"nameserver_list":["ns1.example.net","ns2.example.net"]}"#
            ),
            "R11IV0culwlkQdcUyzq6TdXL5sqluWhMd9NOx3iTPhE="
        );
        // serde_json writes exactly those bytes for the body this adapter sends.
        let body = serde_json::json!({ "nameserver_list": ["ns1.example.net", "ns2.example.net"] });
        assert_eq!(
            serde_json::to_vec(&body).unwrap(),
            br#"{"nameserver_list":["ns1.example.net","ns2.example.net"]}"#
        );
    }

    #[test]
    fn envelopes_and_errors() {
        let c = |s: u16, b: &str| {
            classify_error(
                StatusCode::from_u16(s).unwrap(),
                b.as_bytes(),
                Some("example.com"),
            )
        };
        assert!(matches!(
            c(403, r#"{"code":403,"message":"Forbidden","error":{"description":"The domain doesn't have main dns."}}"#),
            RegistrarError::Rejected { message, .. } if message == "The domain doesn't have main dns."
        ));
        assert!(matches!(
            c(
                429,
                r#"{"status":{"code":429,"message":"Too Many Requests"},"error":{"description":"You have reached the maximum allowed requests within the concurrent limit of your account. Please try again later."}}"#
            ),
            RegistrarError::RateLimited { .. }
        ));
        assert!(matches!(
            c(
                200,
                r#"{"code":"401","message":"Unauthorized","error":{"description":"Invalid API key"}}"#
            ),
            RegistrarError::InvalidCredentials { .. }
        ));
        assert!(matches!(
            c(
                404,
                r#"{"code":404,"message":"Not Found","error":{"description":"domain not found"}}"#
            ),
            RegistrarError::DomainNotInAccount { .. }
        ));
        assert!(matches!(
            c(200, r#"{"code":"-1","message":"system_busy"}"#),
            RegistrarError::RateLimited { .. }
        ));
        assert!(matches!(
            c(502, "<html>"),
            RegistrarError::Unavailable { .. }
        ));
        assert!(detect_rate_limit(
            StatusCode::OK,
            &HeaderMap::new(),
            br#"{"Status":"system_busy"}"#
        )
        .is_some());
        assert!(detect_rate_limit(StatusCode::OK, &HeaderMap::new(), br#"{"code":200}"#).is_none());
    }

    #[test]
    fn dnssec_display_forms_normalise() {
        let v = serde_json::json!({"key_tag":"2371","algorithm":"RSA/MD5 (1)","digest_type":"SHA-1 (1)","digest":"ABCD"});
        assert_eq!(
            ds_of(&v),
            Some(DsData {
                key_tag: 2371,
                algorithm: 1,
                digest_type: 1,
                digest: "abcd".into()
            })
        );
        let v = serde_json::json!({"key_tag":2371,"algorithm":"ecdsa_p256_sha256","digest_type":"sha256","digest":"ab"});
        assert_eq!(
            ds_of(&v),
            Some(DsData {
                key_tag: 2371,
                algorithm: 13,
                digest_type: 2,
                digest: "ab".into()
            })
        );
        let v = serde_json::json!({"key_tag":1,"algorithm":13,"digest_type":2,"digest":"ab"});
        assert_eq!(ds_of(&v).map(|d| d.algorithm), Some(13));
    }

    #[test]
    fn request_ids_look_like_uuids() {
        let id = request_id().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
    }
}

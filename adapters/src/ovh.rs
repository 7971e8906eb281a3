//! OVHcloud API 1.0 adapter (registrars.md §4).
//!
//! Every call is signed: `$1$` + hex(SHA-1(AS+CK+METHOD+URL+BODY+TIMESTAMP)) over
//! the exact URL (scheme, host, query) and the exact body bytes sent. The
//! timestamp is the local clock corrected by the skew measured once against
//! `GET /auth/time`; the skew is measured again only after OVH says the query
//! was out of time. NS, DS and glue writes return a domain task, which this
//! adapter polls to `done` (or `error` → [`RegistrarError::Rejected`] with the
//! task's comment) within [`TaskPolling::deadline`].

use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine as _;
use reqwest::header::HeaderValue;
use reqwest::{Method, RequestBuilder};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::credentials::{Credentials, Secret};
use crate::error::{RegistrarError, Result};
use crate::http::{credential_identity, describe, HttpClient, HttpConfig, Safety};
use crate::names::{NsSet, RegistrableDomain};
use crate::types::{Capabilities, Change, DnskeyData, DsData, Glue, RegistrarId, Validation};
use crate::Registrar;

/// The ovh-eu endpoint.
pub const EU_BASE: &str = "https://eu.api.ovh.com/1.0";
/// The ovh-ca endpoint.
pub const CA_BASE: &str = "https://ca.api.ovh.com/1.0";
/// The ovh-us endpoint.
pub const US_BASE: &str = "https://api.us.ovhcloud.com/1.0";

const ID: RegistrarId = RegistrarId::Ovh;

/// How far OVH lets the request timestamp drift from its clock before it
/// answers "Query out of time" (the window fakes and peers use).
pub const MAX_SKEW_SECS: i64 = 180;

/// `$1$` + hex SHA-1 over `AS+CK+METHOD+URL+BODY+TIMESTAMP` (go-ovh `NewRequest`).
///
/// `url` is the full URL sent (scheme, host, path, query); `body` the exact bytes
/// sent (empty when there is none).
pub fn signature(
    app_secret: &str,
    consumer_key: &str,
    method: &str,
    url: &str,
    body: &[u8],
    timestamp: i64,
) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    for part in [
        app_secret.as_bytes(),
        consumer_key.as_bytes(),
        method.as_bytes(),
        url.as_bytes(),
    ] {
        ctx.update(part);
        ctx.update(b"+");
    }
    ctx.update(body);
    ctx.update(b"+");
    ctx.update(timestamp.to_string().as_bytes());
    format!("$1${}", hex::encode(ctx.finish()))
}

/// Whether an access rule (`method`, `path` glob where `*` matches anything,
/// `/` included) covers a call, as OVH evaluates consumer-key rules.
pub fn rule_covers(rule_method: &str, rule_path: &str, method: &str, path: &str) -> bool {
    (rule_method == "*" || rule_method.eq_ignore_ascii_case(method)) && glob(rule_path, path)
}

/// `*`-only glob match, iterative (no recursion blow-up on long paths).
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// How domain tasks are polled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskPolling {
    /// Delay between two polls of a task.
    pub interval: Duration,
    /// Give up (→ [`RegistrarError::Unavailable`]) when the task is not done by then.
    pub deadline: Duration,
}

impl Default for TaskPolling {
    /// terraform-provider-ovh's `waitDomainTask`: 5 s between polls, 10 min in all.
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            deadline: Duration::from_secs(600),
        }
    }
}

/// What a task's `status` means for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    /// `todo` / `doing` (or a status we do not know yet): poll again.
    Pending,
    /// `done`.
    Done,
    /// `error` / `cancelled`, with the registrar's comment.
    Failed(String),
}

/// One `domain.Task` as OVH returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// Task id.
    pub id: u64,
    /// `DomainDnsUpdate`, `DomainDsUpdate`, `DomainHostCreate`, ...
    #[serde(default)]
    pub function: String,
    /// `todo|doing|done|error|cancelled`.
    pub status: String,
    /// Why the task failed, when it did.
    #[serde(default)]
    pub comment: Option<String>,
}

impl Task {
    /// Classifies the status.
    pub fn state(&self) -> TaskState {
        match self.status.as_str() {
            "done" => TaskState::Done,
            "error" | "cancelled" => TaskState::Failed(
                self.comment
                    .clone()
                    .filter(|c| !c.trim().is_empty())
                    .unwrap_or_else(|| {
                        format!("task {} ({}) {}", self.id, self.function, self.status)
                    }),
            ),
            _ => TaskState::Pending,
        }
    }
}

/// OVH's error bodies: the old `errorCode` shape and the newer `class` shape.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody {
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default)]
    class: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// Maps an OVH error response to a [`RegistrarError`]. `domain` is the domain
/// the call was about (a 404 on it means it is not in the account).
pub fn classify_error(
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
    domain: Option<&str>,
) -> RegistrarError {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    // OVH messages are fixed phrases; cap them anyway so a surprising body cannot flood logs.
    let message: String = parsed
        .message
        .clone()
        .unwrap_or_else(|| format!("HTTP {status}"))
        .chars()
        .take(300)
        .collect();
    let code = parsed.error_code.as_deref().unwrap_or("");
    let class = parsed.class.as_deref().unwrap_or("");
    let lower = message.to_ascii_lowercase();

    if status == 429 {
        return RegistrarError::RateLimited {
            registrar: ID,
            retry_after,
        };
    }
    if status >= 500 {
        return RegistrarError::unavailable(ID, format!("HTTP {status}: {message}"));
    }
    if lower.contains("out of time") || code == "QUERY_TIME_OUT" {
        return RegistrarError::unavailable(
            ID,
            format!("request timestamp outside OVH's window ({message}); clock skew re-measured"),
        );
    }
    match code {
        "INVALID_CREDENTIAL" | "NOT_CREDENTIAL" | "INVALID_KEY" | "INVALID_SIGNATURE" => {
            return RegistrarError::InvalidCredentials { registrar: ID };
        }
        "NOT_GRANTED_CALL" | "FORBIDDEN" => {
            return RegistrarError::AccountNotEligible {
                registrar: ID,
                detail: format!(
                    "{message} (the consumer key's access rules do not cover this call)"
                ),
            };
        }
        _ => {}
    }
    match (status, class) {
        (401, _) | (_, "Client::Unauthorized") => {
            RegistrarError::InvalidCredentials { registrar: ID }
        }
        (_, "Client::BadRequest") | (400, _) if lower.contains("invalid signature") => {
            RegistrarError::InvalidCredentials { registrar: ID }
        }
        (403, _) | (_, "Client::Forbidden") => {
            if lower.contains("credential") || lower.contains("application") {
                RegistrarError::InvalidCredentials { registrar: ID }
            } else {
                RegistrarError::AccountNotEligible {
                    registrar: ID,
                    detail: message,
                }
            }
        }
        (404, _) | (_, "Client::NotFound") => match domain {
            Some(d) => RegistrarError::DomainNotInAccount {
                registrar: ID,
                domain: d.to_string(),
            },
            None => RegistrarError::Rejected {
                registrar: ID,
                message,
            },
        },
        (460, _) => RegistrarError::Rejected {
            registrar: ID,
            message: format!("service expired: {message}"),
        },
        _ => RegistrarError::Rejected {
            registrar: ID,
            message,
        },
    }
}

/// `GET /auth/currentCredential`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CurrentCredential {
    #[serde(default)]
    credential_id: Option<u64>,
    #[serde(default)]
    application_id: Option<u64>,
    #[serde(default)]
    status: String,
    #[serde(default)]
    rules: Vec<Rule>,
}

#[derive(Debug, Clone, Deserialize)]
struct Rule {
    method: String,
    path: String,
}

/// `GET /domain/{d}`, the fields we use.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DomainInfo {
    #[serde(default)]
    name_server_type: String,
}

/// `GET /domain/{d}/nameServer/{id}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NameServer {
    host: String,
    #[serde(default)]
    to_delete: bool,
}

/// `GET /domain/{d}/dsRecord/{id}`: DNSKEY material, as OVH stores it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DsRecord {
    algorithm: u8,
    flags: u16,
    public_key: String,
    tag: u16,
    #[serde(default)]
    status: String,
}

/// One key in `POST /domain/{d}/dsRecord`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
struct DsKey {
    algorithm: u8,
    flags: u16,
    public_key: String,
    tag: u16,
}

/// `GET /domain/{d}/glueRecord/{host}`.
#[derive(Debug, Clone, Deserialize)]
struct GlueRecord {
    #[serde(default)]
    ips: Vec<String>,
}

/// Computes the DS digest (SHA-256, digest type 2) of a DNSKEY owned by `owner`
/// (RFC 4034 §5.1.4): SHA-256(owner wire form ‖ flags ‖ protocol ‖ algorithm ‖ key).
pub fn ds_from_dnskey(owner: &str, key: &DnskeyData) -> Result<DsData> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(key.public_key.split_whitespace().collect::<String>())
        .map_err(|_| RegistrarError::InvalidInput("DNSKEY public key is not base64".into()))?;
    let mut wire = Vec::with_capacity(owner.len() + 2 + 4 + raw.len());
    for label in owner
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        wire.push(label.len() as u8);
        wire.extend(label.to_ascii_lowercase().bytes());
    }
    wire.push(0);
    wire.extend(key.flags.to_be_bytes());
    wire.push(key.protocol);
    wire.push(key.algorithm);
    wire.extend(&raw);
    let digest = ring::digest::digest(&ring::digest::SHA256, &wire);
    Ok(DsData {
        key_tag: key.key_tag,
        algorithm: key.algorithm,
        digest_type: 2,
        digest: hex::encode(digest.as_ref()),
    })
}

/// The OVH adapter: one account (AK/AS/CK) against one endpoint.
#[derive(Debug)]
pub struct Ovh {
    app_key: String,
    app_secret: Secret,
    consumer_key: Secret,
    http: HttpClient,
    /// Server minus local clock, in seconds; measured on first use.
    skew: tokio::sync::Mutex<Option<i64>>,
    polling: TaskPolling,
}

impl Ovh {
    /// An adapter for `credentials` (must be [`Credentials::Ovh`]); the config's
    /// base URL is e.g. [`EU_BASE`], or a fake's URL ending in `/1.0`.
    pub fn new(credentials: &Credentials, config: &HttpConfig) -> Result<Self> {
        let Credentials::Ovh {
            application_key,
            application_secret,
            consumer_key,
        } = credentials
        else {
            return Err(RegistrarError::InvalidInput(
                "OVH needs OVH credentials".into(),
            ));
        };
        let http = HttpClient::new(ID, config, &credential_identity(credentials))?
            .with_secrets([application_secret.clone(), consumer_key.clone()]);
        Ok(Self {
            app_key: application_key.clone(),
            app_secret: application_secret.clone(),
            consumer_key: consumer_key.clone(),
            http,
            skew: tokio::sync::Mutex::new(None),
            polling: TaskPolling::default(),
        })
    }

    /// Replaces how tasks are polled (tests use milliseconds).
    pub fn with_task_polling(mut self, polling: TaskPolling) -> Self {
        self.polling = polling;
        self
    }

    /// The HTTP client (its limiter is what tests inspect).
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// The skew-corrected timestamp, measuring the skew on first use.
    async fn timestamp(&self) -> Result<i64> {
        let mut skew = self.skew.lock().await;
        let delta = match *skew {
            Some(d) => d,
            None => {
                // Unauthenticated; answered with a bare integer such as `1457018875`.
                let resp = self
                    .http
                    .send(
                        self.http.request(Method::GET, "/auth/time"),
                        Safety::Idempotent,
                    )
                    .await?;
                if !resp.status.is_success() {
                    return Err(classify_error(resp.status.as_u16(), &resp.body, None, None));
                }
                let server: i64 = std::str::from_utf8(&resp.body)
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .ok_or_else(|| {
                        self.http
                            .unavailable("/auth/time did not return an integer")
                    })?;
                let d = server - unix_now();
                *skew = Some(d);
                d
            }
        };
        Ok(unix_now() + delta)
    }

    /// Sends one signed call and returns the body of a 2xx answer.
    ///
    /// `domain` names the domain the path is about (so a 404 means "not in this
    /// account"). GETs are retried on transient failures; writes are not, since a
    /// repeated POST can queue a second task (registrars.md §4 Rate limits).
    async fn call_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        domain: Option<&str>,
    ) -> Result<Vec<u8>> {
        let safety = if method == Method::GET {
            Safety::Idempotent
        } else {
            Safety::Write
        };
        let body = body.unwrap_or_default();
        let mut skew_retry = true;
        loop {
            let ts = self.timestamp().await?;
            let mut rb = self
                .http
                .request(method.clone(), path)
                .header("X-Ovh-Application", &self.app_key)
                .header("X-Ovh-Consumer", self.consumer_key.expose())
                .header("X-Ovh-Timestamp", ts.to_string())
                .header("Accept", "application/json");
            if !body.is_empty() {
                rb = rb
                    .header("Content-Type", "application/json")
                    .body(body.clone());
            }
            // Sign the URL exactly as reqwest will put it on the wire.
            let (client, request) = rb.build_split();
            let mut request = request
                .map_err(|e| RegistrarError::InvalidInput(self.http.scrub(&describe(&e))))?;
            let sig = signature(
                self.app_secret.expose(),
                self.consumer_key.expose(),
                method.as_str(),
                request.url().as_str(),
                &body,
                ts,
            );
            let value = HeaderValue::from_str(&sig)
                .map_err(|_| RegistrarError::InvalidInput("unencodable signature".into()))?;
            request.headers_mut().insert("X-Ovh-Signature", value);
            let resp = self
                .http
                .send(RequestBuilder::from_parts(client, request), safety)
                .await?;
            if resp.status.is_success() {
                return Ok(resp.body);
            }
            let err = self.http.scrub_error(classify_error(
                resp.status.as_u16(),
                &resp.body,
                crate::http::retry_after(&resp.headers),
                domain,
            ));
            if matches!(&err, RegistrarError::Unavailable { detail, .. } if detail.contains("clock skew"))
            {
                // Our clock (or OVH's) moved since the skew was measured: measure again
                // and retry once; OVH refused the request before acting on it.
                *self.skew.lock().await = None;
                if skew_retry {
                    skew_retry = false;
                    continue;
                }
            }
            return Err(err);
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str, domain: Option<&str>) -> Result<T> {
        let body = self.call_raw(Method::GET, path, None, domain).await?;
        parse(&body)
    }

    async fn send_json<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
        domain: Option<&str>,
    ) -> Result<T> {
        // Serialise once; these bytes are both signed and sent.
        let bytes = serde_json::to_vec(body)
            .map_err(|e| RegistrarError::InvalidInput(format!("cannot encode request: {e}")))?;
        let body = self.call_raw(method, path, Some(bytes), domain).await?;
        parse(&body)
    }

    /// Polls `task` until it is done, failed, or the deadline passes.
    async fn wait_task(&self, domain: &str, mut task: Task) -> Result<()> {
        let start = Instant::now();
        loop {
            match task.state() {
                TaskState::Done => return Ok(()),
                // OVH's own reason (the task's comment), scrubbed like every message.
                TaskState::Failed(comment) => return Err(self.http.rejected(comment)),
                TaskState::Pending => {}
            }
            if start.elapsed() >= self.polling.deadline {
                return Err(RegistrarError::unavailable(
                    ID,
                    format!(
                        "task {} ({}) still {} after {:?}; it may still complete",
                        task.id, task.function, task.status, self.polling.deadline
                    ),
                ));
            }
            tokio::time::sleep(self.polling.interval).await;
            task = self
                .get(&format!("/domain/{domain}/task/{}", task.id), Some(domain))
                .await?;
        }
    }

    async fn current_keys(&self, d: &str) -> Result<Vec<DsRecord>> {
        let ids: Vec<u64> = self.get(&format!("/domain/{d}/dsRecord"), Some(d)).await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let rec: DsRecord = self
                .get(&format!("/domain/{d}/dsRecord/{id}"), Some(d))
                .await?;
            // Keys on their way out are not part of the set the registry will publish.
            if !matches!(rec.status.as_str(), "removed" | "retired" | "revoked") {
                out.push(rec);
            }
        }
        Ok(out)
    }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    // OVH answers `null` for writes without a result; callers asking for `()` get it.
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"null".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| RegistrarError::unavailable(ID, format!("unexpected response shape: {e}")))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn sorted_ips(ips: &[String]) -> Result<Vec<IpAddr>> {
    let mut out = ips
        .iter()
        .map(|s| {
            s.parse::<IpAddr>().map_err(|_| {
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
            "glue host {host:?} is not under {domain} (OVH holds glue for in-domain hosts only)"
        )));
    }
    Ok(host)
}

#[async_trait]
impl Registrar for Ovh {
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
            host_records: false,
        }
    }

    async fn validate(&self, domain: Option<&RegistrableDomain>) -> Result<Validation> {
        let cred: CurrentCredential = self.get("/auth/currentCredential", None).await?;
        if cred.status != "validated" {
            // pendingValidation: the user never opened the validation URL; expired/refused: dead.
            return Err(RegistrarError::InvalidCredentials { registrar: ID });
        }
        let account = match (cred.application_id, cred.credential_id) {
            (Some(a), Some(c)) => Some(format!("application {a}, credential {c}")),
            (None, Some(c)) => Some(format!("credential {c}")),
            _ => None,
        };
        let scope = cred
            .rules
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        let domain_in_account = match domain {
            None => None,
            Some(d) => {
                let name = d.name();
                // Not in the account → DomainNotInAccount (the trait's contract).
                self.get::<DomainInfo>(&format!("/domain/{name}"), Some(&name))
                    .await?;
                Some(true)
            }
        };
        Ok(Validation {
            account,
            scope,
            domain_in_account,
        })
    }

    async fn list_domains(&self) -> Result<Vec<String>> {
        // OVH returns the whole list in one answer (no paging on /domain).
        let names: Vec<String> = self.get("/domain", None).await?;
        let mut out: Vec<String> = names
            .into_iter()
            .map(|n| n.trim().trim_end_matches('.').to_ascii_lowercase())
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn get_ns(&self, domain: &RegistrableDomain) -> Result<NsSet> {
        let d = domain.name();
        let ids: Vec<u64> = self
            .get(&format!("/domain/{d}/nameServer"), Some(&d))
            .await?;
        let mut hosts = Vec::with_capacity(ids.len());
        for id in ids {
            let ns: NameServer = self
                .get(&format!("/domain/{d}/nameServer/{id}"), Some(&d))
                .await?;
            // Pending removals (an update task in flight) are not the set we asked for.
            if !ns.to_delete {
                hosts.push(ns.host);
            }
        }
        Ok(NsSet::observed(hosts))
    }

    async fn set_ns(&self, domain: &RegistrableDomain, ns: &NsSet) -> Result<Change> {
        if ns.hosts().len() < 2 || ns.hosts().len() > 8 {
            return Err(RegistrarError::InvalidInput(format!(
                "OVH takes 2 to 8 nameservers, got {}",
                ns.hosts().len()
            )));
        }
        let d = domain.name();
        if &self.get_ns(domain).await? == ns {
            return Ok(Change::Unchanged);
        }
        let info: DomainInfo = self.get(&format!("/domain/{d}"), Some(&d)).await?;
        if info.name_server_type != "external" {
            // In `hosted` mode OVH will not take custom NS (dnscontrol does this first too).
            #[derive(Serialize)]
            #[serde(rename_all = "camelCase")]
            struct TypeBody<'a> {
                name_server_type: &'a str,
            }
            let _: serde_json::Value = self
                .send_json(
                    Method::PUT,
                    &format!("/domain/{d}"),
                    &TypeBody {
                        name_server_type: "external",
                    },
                    Some(&d),
                )
                .await?;
        }
        #[derive(Serialize)]
        struct Host<'a> {
            host: &'a str,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct UpdateBody<'a> {
            name_servers: Vec<Host<'a>>,
        }
        let body = UpdateBody {
            name_servers: ns.hosts().iter().map(|h| Host { host: h }).collect(),
        };
        let task: Task = self
            .send_json(
                Method::POST,
                &format!("/domain/{d}/nameServers/update"),
                &body,
                Some(&d),
            )
            .await?;
        self.wait_task(&d, task).await?;
        Ok(Change::Applied)
    }

    async fn get_ds(&self, domain: &RegistrableDomain) -> Result<Vec<DsData>> {
        let d = domain.name();
        let keys = self.current_keys(&d).await?;
        let mut out = keys
            .iter()
            .map(|k| {
                ds_from_dnskey(
                    &d,
                    &DnskeyData {
                        flags: k.flags,
                        protocol: 3,
                        algorithm: k.algorithm,
                        public_key: k.public_key.clone(),
                        key_tag: k.tag,
                    },
                )
            })
            .collect::<Result<Vec<_>>>()?;
        out.sort();
        Ok(out)
    }

    async fn set_ds(
        &self,
        domain: &RegistrableDomain,
        ds: &[DsData],
        dnskeys: &[DnskeyData],
    ) -> Result<Change> {
        let d = domain.name();
        // OVH takes DNSKEY material, not digests: send the keys whose DS the caller wants.
        let mut desired: Vec<DsKey> = Vec::new();
        for want in ds {
            let key = dnskeys
                .iter()
                .find(|k| {
                    k.key_tag == want.key_tag
                        && k.algorithm == want.algorithm
                        && ds_from_dnskey(&d, k).is_ok_and(|got| {
                            want.digest_type != 2 || got.normalised() == want.normalised()
                        })
                })
                .ok_or_else(|| {
                    RegistrarError::InvalidInput(format!(
                        "OVH needs the DNSKEY for DS key tag {} (algorithm {}); none given matches",
                        want.key_tag, want.algorithm
                    ))
                })?;
            let k = DsKey {
                algorithm: key.algorithm,
                flags: key.flags,
                public_key: key.public_key.split_whitespace().collect(),
                tag: key.key_tag,
            };
            if !desired.contains(&k) {
                desired.push(k);
            }
        }
        if desired.len() > 4 {
            return Err(RegistrarError::InvalidInput(format!(
                "OVH takes at most 4 DNSSEC keys, got {}",
                desired.len()
            )));
        }
        desired.sort();
        let mut current: Vec<DsKey> = self
            .current_keys(&d)
            .await?
            .into_iter()
            .map(|r| DsKey {
                algorithm: r.algorithm,
                flags: r.flags,
                public_key: r.public_key.split_whitespace().collect(),
                tag: r.tag,
            })
            .collect();
        current.sort();
        current.dedup();
        if current == desired {
            return Ok(Change::Unchanged);
        }
        #[derive(Serialize)]
        struct KeysBody<'a> {
            keys: &'a [DsKey],
        }
        // The POST replaces the whole set; `{"keys":[]}` removes DNSSEC delegation.
        let task: Task = self
            .send_json(
                Method::POST,
                &format!("/domain/{d}/dsRecord"),
                &KeysBody { keys: &desired },
                Some(&d),
            )
            .await?;
        self.wait_task(&d, task).await?;
        Ok(Change::Applied)
    }

    async fn get_glue(&self, domain: &RegistrableDomain, host: &str) -> Result<Glue> {
        let d = domain.name();
        let host = glue_host(domain, host)?;
        // List first: a 404 on the list means the domain, a missing entry means no glue.
        let hosts: Vec<String> = self
            .get(&format!("/domain/{d}/glueRecord"), Some(&d))
            .await?;
        if !hosts
            .iter()
            .any(|h| h.trim_end_matches('.').eq_ignore_ascii_case(&host))
        {
            return Ok(Glue {
                host,
                addresses: Vec::new(),
            });
        }
        let rec: GlueRecord = self
            .get(&format!("/domain/{d}/glueRecord/{host}"), Some(&d))
            .await?;
        Ok(Glue {
            addresses: sorted_ips(&rec.ips)?,
            host,
        })
    }

    async fn set_glue(&self, domain: &RegistrableDomain, glue: &Glue) -> Result<Change> {
        let d = domain.name();
        let host = glue_host(domain, &glue.host)?;
        let mut want = glue.addresses.clone();
        want.sort();
        want.dedup();
        let have = self.get_glue(domain, &host).await?;
        if have.addresses == want {
            return Ok(Change::Unchanged);
        }
        let ips: Vec<String> = want.iter().map(IpAddr::to_string).collect();
        let task: Task = if want.is_empty() {
            self.call_raw(
                Method::DELETE,
                &format!("/domain/{d}/glueRecord/{host}"),
                None,
                Some(&d),
            )
            .await
            .and_then(|b| parse(&b))?
        } else if have.addresses.is_empty() {
            #[derive(Serialize)]
            struct Create<'a> {
                host: &'a str,
                ips: &'a [String],
            }
            self.send_json(
                Method::POST,
                &format!("/domain/{d}/glueRecord"),
                &Create {
                    host: &host,
                    ips: &ips,
                },
                Some(&d),
            )
            .await?
        } else {
            #[derive(Serialize)]
            struct Update<'a> {
                ips: &'a [String],
            }
            self.send_json(
                Method::POST,
                &format!("/domain/{d}/glueRecord/{host}/update"),
                &Update { ips: &ips },
                Some(&d),
            )
            .await?
        };
        self.wait_task(&d, task).await?;
        Ok(Change::Applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AS: &str = "9ufkBmLaTQ9nz5yMUlg79taH0GNnzDjk";
    const CK: &str = "5mBuy6SUQcRw2ZUxg0cG68BoDKpED4KY";
    const T: i64 = 1457018875;

    #[test]
    fn go_ovh_signature_vectors() {
        let body = br#"{"a":"b","c":"d"}"#;
        let auth = "https://eu.api.ovh.com/1.0/auth";
        assert_eq!(
            signature(AS, CK, "GET", auth, b"", T),
            "$1$e9556054b6309771395efa467c22e627407461ad"
        );
        assert_eq!(
            signature(AS, CK, "POST", auth, body, T),
            "$1$ec2fb5c7a81f64723c77d2e5b609ae6f58a84fc1"
        );
        assert_eq!(
            signature(AS, CK, "PUT", auth, body, T),
            "$1$8a75a9e7c8e7296c9dbeda6a2a735eb6bd58ec4b"
        );
        assert_eq!(
            signature(AS, CK, "DELETE", auth, b"", T),
            "$1$a1eecd00b3b02b6cf5708b84b9ff42059a950d85"
        );
        assert_eq!(
            signature(AS, CK, "GET", "https://eu.api.ovh.com/1.0/call", b"", T),
            "$1$7f2db49253edfc41891023fcd1a54cf61db05fbb"
        );
        assert_eq!(
            signature(AS, CK, "GET", "https://eu.api.ovh.com/v1/call", b"", T),
            "$1$e6e7906d385eb28adcbfbe6b66c1528a42d741ad"
        );
    }

    #[test]
    fn derived_domain_signature_vectors() {
        assert_eq!(
            signature(
                AS,
                CK,
                "GET",
                "https://eu.api.ovh.com/1.0/domain/example.com/nameServer",
                b"",
                T
            ),
            "$1$9e5707d4698549a12a8b4d0c7df0b8a1cb74de95"
        );
        let body = br#"{"nameServers":[{"host":"ns1.example.net"},{"host":"ns2.example.net"}]}"#;
        assert_eq!(
            signature(
                AS,
                CK,
                "POST",
                "https://eu.api.ovh.com/1.0/domain/example.com/nameServers/update",
                body,
                T
            ),
            "$1$09d1f3990536d0c3bb0248fb152454f8202e2de0"
        );
    }

    #[test]
    fn rule_globs() {
        assert!(rule_covers(
            "GET",
            "/domain/*",
            "GET",
            "/domain/example.com/nameServer/1"
        ));
        assert!(rule_covers("GET", "/domain", "GET", "/domain"));
        assert!(!rule_covers("GET", "/domain", "GET", "/domain/example.com"));
        assert!(!rule_covers(
            "GET",
            "/domain/*",
            "POST",
            "/domain/example.com/nameServers/update"
        ));
        assert!(rule_covers(
            "POST",
            "/domain/*/nameServers/update",
            "POST",
            "/domain/a.com/nameServers/update"
        ));
        assert!(rule_covers(
            "*",
            "/*",
            "DELETE",
            "/domain/a.com/glueRecord/ns1.a.com"
        ));
    }

    #[test]
    fn task_states() {
        let t = |s: &str, c: Option<&str>| Task {
            id: 7,
            function: "DomainDnsUpdate".into(),
            status: s.into(),
            comment: c.map(str::to_string),
        };
        assert_eq!(t("todo", None).state(), TaskState::Pending);
        assert_eq!(t("doing", None).state(), TaskState::Pending);
        assert_eq!(t("done", None).state(), TaskState::Done);
        assert_eq!(
            t("error", Some("invalid DNS")).state(),
            TaskState::Failed("invalid DNS".into())
        );
        assert!(
            matches!(t("cancelled", None).state(), TaskState::Failed(m) if m.contains("cancelled"))
        );
    }

    #[test]
    fn error_shapes() {
        let e = |s, b: &str| classify_error(s, b.as_bytes(), None, Some("example.com"));
        assert!(matches!(
            e(
                403,
                r#"{"errorCode":"NOT_GRANTED_CALL","httpCode":"403 Forbidden","message":"This call has not been granted"}"#
            ),
            RegistrarError::AccountNotEligible { .. }
        ));
        assert!(matches!(
            e(
                403,
                r#"{"errorCode":"INVALID_CREDENTIAL","httpCode":"403 Forbidden","message":"This credential is not valid"}"#
            ),
            RegistrarError::InvalidCredentials { .. }
        ));
        assert!(matches!(
            e(
                400,
                r#"{"errorCode":"INVALID_SIGNATURE","httpCode":"400 Bad Request","message":"Invalid signature"}"#
            ),
            RegistrarError::InvalidCredentials { .. }
        ));
        assert!(matches!(
            e(
                400,
                r#"{"class":"Client::BadRequest","message":"Invalid signature"}"#
            ),
            RegistrarError::InvalidCredentials { .. }
        ));
        assert!(matches!(
            e(
                404,
                r#"{"class":"Client::NotFound","message":"This service does not exist"}"#
            ),
            RegistrarError::DomainNotInAccount { .. }
        ));
        assert!(matches!(
            e(
                500,
                r#"{"class":"Server::InternalServerError","message":"Internal server error"}"#
            ),
            RegistrarError::Unavailable { .. }
        ));
        assert!(matches!(
            e(
                400,
                r#"{"errorCode":"QUERY_TIME_OUT","httpCode":"400 Bad Request","message":"Query out of time"}"#
            ),
            RegistrarError::Unavailable { .. }
        ));
        assert!(matches!(
            classify_error(429, b"", Some(Duration::from_secs(3)), None),
            RegistrarError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(3)
        ));
        assert!(matches!(
            e(400, r#"{"class":"Client::BadRequest","message":"Invalid host"}"#),
            RegistrarError::Rejected { message, .. } if message == "Invalid host"
        ));
    }

    #[test]
    fn ds_digest_matches_rfc4034_example() {
        // RFC 4034 §5.4's key (its DS there is SHA-1 2BB183AF...; the same wire
        // form under SHA-256, computed independently with Python's hashlib):
        let key = DnskeyData {
            flags: 256,
            protocol: 3,
            algorithm: 5,
            public_key: "AQOeiiR0GOMYkDshWoSKz9XzfwJr1AYtsmx3TGkJaNXVbfi/2pHm822aJ5iI9BMzNXxeYCmZDRD99WYwYqUSdjMmmAphXdvxegXd/M5+X7OrzKBaMbCVdFLUUh6DhweJBjEVv5f2wwjM9XzcnOf+EPbtG9DMBmADjFDc2w/rljwvFw==".into(),
            key_tag: 60485,
        };
        let ds = ds_from_dnskey("dskey.example.com.", &key).unwrap();
        assert_eq!(ds.key_tag, 60485);
        assert_eq!(ds.digest_type, 2);
        assert_eq!(
            ds.digest,
            "d4b7d520e7bb5f0f67674a0cceb1e3e0614b93c4f9e99b8383f6a1e4469da50a"
        );
    }
}

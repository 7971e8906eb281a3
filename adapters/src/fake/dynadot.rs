//! Fake Dynadot RESTful API (registrars.md §5.2, §8): `Authorization: Bearer`
//! plus an `X-Signature` checked with the lego scheme over the exact path,
//! request id and body received; the `{code,message,data}` envelope; exact
//! parameter names (`nameserver_list`, enum DNSSEC values); paging; a
//! concurrency limit (one request in flight per account on the Regular tier)
//! answered with Dynadot's 429 body; injectable `system_busy` answers; the
//! account's name-server list: a nameserver PUT naming a host the account
//! does not know (neither added as external nor registered with glue) is
//! refused with Dynadot's "must be added to your account first"; DNS records
//! (`POST …/records`: `dns_main_list` ≤ 20, `sub_list` ≤ 100, one `ttl`,
//! replace unless `add_dns_to_current_setting`; `GET …/records` shows them).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{bearer, FakeCommon, FakeServer, Gate};
use crate::dynadot::{algorithm_name, digest_type_name, signature, MAX_NS};

/// The path prefix the fake serves.
pub const PREFIX: &str = "/restful/v2";

/// A running fake Dynadot endpoint; stops when dropped.
#[derive(Debug)]
pub struct DynadotFake {
    server: FakeServer,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    common: FakeCommon,
    inner: Mutex<Inner>,
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
}

#[derive(Debug, Default)]
struct Inner {
    api_key: String,
    api_secret: String,
    username: String,
    max_concurrency: usize,
    /// How long each request is held, so overlapping clients are visible.
    latency: Duration,
    busy_next: u32,
    /// The 5xx status the next authenticated write answers with, if set.
    fail_next_write: Option<u16>,
    /// The description the next authenticated domain write is refused with (403).
    refuse_next_write: Option<String>,
    domains: BTreeMap<String, Domain>,
    /// Registered name servers (host objects) with their IPs; account-wide.
    hosts: BTreeMap<String, Vec<String>>,
    /// External name servers added to the account (`add_external`).
    external: BTreeSet<String>,
}

/// One DS record as the fake stores it (numbers; shown as display strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ds {
    /// Key tag.
    pub key_tag: u16,
    /// Algorithm number.
    pub algorithm: u8,
    /// Digest type number.
    pub digest_type: u8,
    /// Digest hex.
    pub digest: String,
}

/// One DNS record on Dynadot's DNS, as the fake stores it (Dynadot's words).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    /// `sub_host`; `None` for an apex (`dns_main_list`) record.
    pub sub_host: Option<String>,
    /// `record_type`, lower case as Dynadot lists the values.
    pub record_type: String,
    /// `record_value1`.
    pub value1: String,
    /// `record_value2` (the MX distance).
    pub value2: Option<String>,
}

/// A domain's records on Dynadot's DNS and their one TTL.
#[derive(Debug, Clone, Default)]
struct DnsSettings {
    records: Vec<DnsRecord>,
    ttl: u32,
}

#[derive(Debug, Clone, Default)]
struct Domain {
    ns: Vec<String>,
    ds: Option<Ds>,
    dns: Option<DnsSettings>,
}

/// `record_type` values Dynadot documents for DNS records.
const RECORD_TYPES: [&str; 12] = [
    "a", "cname", "forward", "aaaa", "txt", "stealth", "mx", "email", "caa", "aname", "srv", "ns",
];

impl DynadotFake {
    /// Starts a fake for one account (`api_key`, `api_secret`), one request at a time.
    pub async fn start(api_key: &str, api_secret: &str) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        {
            let mut s = lock(&shared);
            s.api_key = api_key.into();
            s.api_secret = api_secret.into();
            s.username = "fake-user".into();
            s.max_concurrency = 1;
        }
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let server = FakeServer::start(router).await?;
        Ok(Self { server, shared })
    }

    /// The API base adapters are configured with: `http://127.0.0.1:<port>/restful/v2`.
    pub fn base_url(&self) -> String {
        format!("{}{PREFIX}", self.server.base_url())
    }

    /// Counters, request budget and failure injection.
    pub fn common(&self) -> &FakeCommon {
        &self.shared.common
    }

    /// Adds a domain with these NS (which the account therefore knows).
    pub fn add_domain(&self, name: &str, ns: &[&str]) {
        let mut s = lock(&self.shared);
        s.external.extend(ns.iter().map(|h| h.to_ascii_lowercase()));
        s.domains.insert(
            name.into(),
            Domain {
                ns: ns.iter().map(|s| s.to_string()).collect(),
                ds: None,
                dns: None,
            },
        );
    }

    /// Allows `n` requests in flight at once (the account tier).
    pub fn set_max_concurrency(&self, n: usize) {
        lock(&self.shared).max_concurrency = n.max(1);
    }

    /// Holds each request this long before answering.
    pub fn set_latency(&self, d: Duration) {
        lock(&self.shared).latency = d;
    }

    /// Answers the next `n` authenticated requests with `system_busy`.
    pub fn busy_next(&self, n: u32) {
        lock(&self.shared).busy_next = n;
    }

    /// The next authenticated write (PUT/POST/DELETE) to a domain answers `status`.
    pub fn fail_next_write(&self, status: u16) {
        lock(&self.shared).fail_next_write = Some(status);
    }

    /// The next authenticated write to a domain is refused: HTTP 403 in
    /// Dynadot's error envelope with `description` (e.g. a locked domain).
    pub fn refuse_next_write(&self, description: &str) {
        lock(&self.shared).refuse_next_write = Some(description.into());
    }

    /// The domain's NS, as stored.
    pub fn ns(&self, domain: &str) -> Vec<String> {
        lock(&self.shared)
            .domains
            .get(domain)
            .map(|d| d.ns.clone())
            .unwrap_or_default()
    }

    /// The domain's DS record.
    pub fn ds(&self, domain: &str) -> Option<Ds> {
        lock(&self.shared)
            .domains
            .get(domain)
            .and_then(|d| d.ds.clone())
    }

    /// Adds `host` to the account's external name servers (as if added
    /// earlier in Dynadot's UI or by an earlier run).
    pub fn add_external_host(&self, host: &str) {
        lock(&self.shared)
            .external
            .insert(host.to_ascii_lowercase());
    }

    /// The account's external name servers.
    pub fn external_hosts(&self) -> Vec<String> {
        lock(&self.shared).external.iter().cloned().collect()
    }

    /// The domain's records on Dynadot's DNS and their TTL (None: never set).
    pub fn dns(&self, domain: &str) -> Option<(Vec<DnsRecord>, u32)> {
        lock(&self.shared)
            .domains
            .get(domain)
            .and_then(|d| d.dns.as_ref())
            .map(|s| (s.records.clone(), s.ttl))
    }

    /// A registered name server's IPs.
    pub fn host_ips(&self, host: &str) -> Option<Vec<String>> {
        lock(&self.shared).hosts.get(host).cloned()
    }

    /// The most requests that were in flight at once.
    pub fn peak_in_flight(&self) -> usize {
        self.shared.peak_in_flight.load(Ordering::SeqCst)
    }
}

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Inner> {
    s.inner.lock().unwrap_or_else(|p| p.into_inner())
}

fn reply(status: StatusCode, v: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn err(status: u16, message: &str, description: &str) -> Response {
    let st = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    reply(
        st,
        json!({"code": status, "message": message, "error": {"description": description}}),
    )
}

fn success(data: Option<Value>) -> Response {
    // The docs show `code` as a string; lego's fixtures as an int. Serve the docs' form.
    let mut v = json!({"code": "200", "message": "Success"});
    if let Some(d) = data {
        v["data"] = d;
    }
    reply(StatusCode::OK, v)
}

fn too_many() -> Response {
    reply(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"status": {"code": 429, "message": "Too Many Requests"}, "error": {"description": "You have reached the maximum allowed requests within the concurrent limit of your account. Please try again later."}}),
    )
}

/// Decrements the in-flight count when a request ends, however it ends.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    match shared.common.admit(&format!("{method} {path}")) {
        Gate::Pass => {}
        Gate::RateLimited { retry_after } => {
            let mut r = too_many();
            if let Ok(v) = retry_after.as_secs().to_string().parse() {
                r.headers_mut().insert("retry-after", v);
            }
            return r;
        }
        Gate::ServerError(code) => return err(code, "Internal Server Error", "internal error"),
    }
    let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let _guard = InFlight(&shared.in_flight);
    shared.peak_in_flight.fetch_max(now, Ordering::SeqCst);
    let (max, latency) = {
        let s = lock(&shared);
        (s.max_concurrency, s.latency)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if now > max {
        return too_many();
    }

    let Some(rel) = path.strip_prefix(PREFIX).map(str::to_string) else {
        return err(404, "Not Found", "unknown endpoint");
    };
    let mut s = lock(&shared);
    let Some(key) = bearer(&headers) else {
        return err(401, "Unauthorized", "Missing API key");
    };
    if key != s.api_key {
        return err(401, "Unauthorized", "Invalid API key");
    }
    let Some(sig) = headers.get("x-signature").and_then(|v| v.to_str().ok()) else {
        return err(400, "Bad Request", "X-Signature header not entered");
    };
    let rid = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or(&path);
    if sig != signature(&s.api_key, &s.api_secret, path_and_query, rid, &body) {
        return err(401, "Unauthorized", "Invalid X-Signature");
    }
    if s.busy_next > 0 {
        s.busy_next -= 1;
        return reply(
            StatusCode::OK,
            json!({"code": "-1", "message": "system_busy", "error": {"description": "system_busy"}}),
        );
    }
    if method != Method::GET && rel.starts_with("/domains/") {
        if let Some(code) = s.fail_next_write.take() {
            return err(code, "Internal Server Error", "internal error");
        }
        if let Some(description) = s.refuse_next_write.take() {
            return err(403, "Forbidden", &description);
        }
    }
    let json_body: Option<Value> = if body.is_empty() {
        None
    } else {
        if !headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("application/json"))
        {
            return err(400, "Bad Request", "Content-Type must be application/json");
        }
        match serde_json::from_slice(&body) {
            Ok(v) => Some(v),
            Err(_) => return err(400, "Bad Request", "Invalid JSON body"),
        }
    };
    let query: BTreeMap<String, String> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    route(&mut s, &shared.common, &method, &rel, &query, json_body)
}

fn domain_json(name: &str, d: &Domain) -> Value {
    json!({
        "domain_name": name,
        "expiration": 1_900_000_000_000u64,
        "registration": 1_600_000_000_000u64,
        "locked": "yes",
        "status": "active",
        "name_servers": d.ns,
    })
}

fn route(
    s: &mut Inner,
    common: &FakeCommon,
    method: &Method,
    rel: &str,
    query: &BTreeMap<String, String>,
    body: Option<Value>,
) -> Response {
    let segs: Vec<&str> = rel.trim_start_matches('/').split('/').collect();
    let bad = |m: &str| err(400, "Bad Request", m);
    let no_domain = || err(404, "Not Found", "domain not found in your account");
    let parent_of = |s: &Inner, host: &str| {
        s.domains
            .keys()
            .find(|d| host.ends_with(&format!(".{d}")))
            .cloned()
    };
    match (method.as_str(), segs.as_slice()) {
        ("GET", ["accounts", "info"]) => success(Some(
            json!({"account_info": {"username": s.username, "customer_id": 123456}}),
        )),
        ("GET", ["domains"]) => {
            let per_page: usize = match query.get("count_per_page").map(|v| v.parse()) {
                None => 100,
                Some(Ok(n)) if (1..=100).contains(&n) => n,
                _ => return bad("count_per_page must be 1..100"),
            };
            let page: usize = match query.get("page_index").map(|v| v.parse()) {
                None => 0,
                Some(Ok(n)) => n,
                _ => return bad("page_index must be a number"),
            };
            let items: Vec<Value> = s
                .domains
                .iter()
                .skip(page * per_page)
                .take(per_page)
                .map(|(n, d)| domain_json(n, d))
                .collect();
            success(Some(json!({"domain_info": items})))
        }
        ("GET", ["domains", d]) => match s.domains.get(*d) {
            Some(dom) => success(Some(json!({"domain_info": [domain_json(d, dom)]}))),
            None => no_domain(),
        },
        ("GET", ["domains", d, "nameservers"]) => match s.domains.get(*d) {
            Some(dom) => {
                let list: Vec<Value> = dom
                    .ns
                    .iter()
                    .map(|h| json!({"host": h, "ns_name": h}))
                    .collect();
                success(Some(json!({"name_servers": list})))
            }
            None => no_domain(),
        },
        ("PUT", ["domains", d, "nameservers"]) => {
            if !s.domains.contains_key(*d) {
                return no_domain();
            }
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Put {
                nameserver_list: Vec<String>,
            }
            let Some(Ok(p)) = body.map(serde_json::from_value::<Put>) else {
                return bad("nameserver_list is required");
            };
            if p.nameserver_list.len() < 2 || p.nameserver_list.len() > MAX_NS {
                return bad("between 2 and 13 name servers are required");
            }
            if let Some(h) = p.nameserver_list.iter().find(|h| !super::valid_host(h)) {
                return bad(&format!("invalid name server {h}"));
            }
            let unknown: Vec<&str> = p
                .nameserver_list
                .iter()
                .filter(|h| {
                    let h = h.to_ascii_lowercase();
                    !s.external.contains(&h) && !s.hosts.contains_key(&h)
                })
                .map(String::as_str)
                .collect();
            if !unknown.is_empty() {
                return bad(&format!(
                    "Name server(s) {} must be added to your account first",
                    unknown.join(", ")
                ));
            }
            common.counters.record_write(d);
            if let Some(dom) = s.domains.get_mut(*d) {
                dom.ns = p.nameserver_list;
            }
            success(None)
        }
        ("GET", ["domains", d, "dnssec"]) => match s.domains.get(*d) {
            Some(dom) => {
                // The display form from one of the doc examples ("Name (n)").
                let list: Vec<Value> = dom
                    .ds
                    .iter()
                    .map(|r| {
                        json!({
                            "key_tag": r.key_tag,
                            "algorithm": format!("{} ({})", algorithm_name(r.algorithm).unwrap_or("unknown"), r.algorithm),
                            "digest_type": format!("{} ({})", digest_type_name(r.digest_type).unwrap_or("unknown").to_uppercase(), r.digest_type),
                            "digest": r.digest.to_uppercase(),
                        })
                    })
                    .collect();
                success(Some(json!({"dnssec_info_list": list})))
            }
            None => no_domain(),
        },
        ("PUT", ["domains", d, "dnssec"]) => {
            if !s.domains.contains_key(*d) {
                return no_domain();
            }
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            #[allow(dead_code)] // flags/public_key are accepted and checked for shape only.
            struct Put {
                key_tag: u16,
                digest_type: String,
                digest: String,
                algorithm: String,
                #[serde(default)]
                flags: Option<String>,
                #[serde(default)]
                public_key: Option<String>,
            }
            let Some(Ok(p)) = body.map(serde_json::from_value::<Put>) else {
                return bad("key_tag, digest_type, digest and algorithm are required");
            };
            let Some(algorithm) =
                (0..=255u8).find(|&n| algorithm_name(n) == Some(p.algorithm.as_str()))
            else {
                return bad(&format!("invalid algorithm {}", p.algorithm));
            };
            let Some(digest_type) =
                (0..=255u8).find(|&n| digest_type_name(n) == Some(p.digest_type.as_str()))
            else {
                return bad(&format!("invalid digest_type {}", p.digest_type));
            };
            if p.flags.as_deref().is_some_and(|f| f != "ksk" && f != "zsk") {
                return bad("flags must be ksk or zsk");
            }
            if p.digest.is_empty() || !p.digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                return bad("invalid digest");
            }
            common.counters.record_write(d);
            if let Some(dom) = s.domains.get_mut(*d) {
                dom.ds = Some(Ds {
                    key_tag: p.key_tag,
                    algorithm,
                    digest_type,
                    digest: p.digest.to_ascii_lowercase(),
                });
            }
            success(None)
        }
        ("DELETE", ["domains", d, "dnssec"]) => {
            let Some(dom) = s.domains.get_mut(*d) else {
                return no_domain();
            };
            dom.ds = None;
            common.counters.record_write(d);
            success(None)
        }
        ("GET", ["domains", d, "records"]) => match s.domains.get(*d) {
            Some(dom) => success(Some(json!({"name_server_settings": records_json(dom)}))),
            None => no_domain(),
        },
        ("POST", ["domains", d, "records"]) => {
            if !s.domains.contains_key(*d) {
                return no_domain();
            }
            let settings = match records_from(body) {
                Ok(v) => v,
                Err(m) => return bad(&m),
            };
            common.counters.record_write(d);
            if let Some(dom) = s.domains.get_mut(*d) {
                match (settings, dom.dns.take()) {
                    ((new, true), Some(mut cur)) => {
                        cur.records.extend(new.records);
                        cur.ttl = new.ttl;
                        dom.dns = Some(cur);
                    }
                    ((new, _), _) => dom.dns = Some(new),
                }
            }
            success(None)
        }
        ("GET", ["nameservers", host]) => match s.hosts.get(*host) {
            Some(ips) => success(Some(json!({"server_name": host, "ip_list": ips}))),
            None => err(404, "Not Found", "name server not found"),
        },
        ("POST", ["nameservers", "register"]) => {
            #[derive(Deserialize)]
            struct Ns {
                server_name: String,
                ip: String,
            }
            #[derive(Deserialize)]
            struct Reg {
                name_server: Ns,
            }
            let Some(Ok(r)) = body.map(serde_json::from_value::<Reg>) else {
                return bad("name_server.server_name and name_server.ip are required");
            };
            let Some(parent) = parent_of(s, &r.name_server.server_name) else {
                return err(
                    403,
                    "Forbidden",
                    "the name server must be under a domain in your account",
                );
            };
            if r.name_server.ip.parse::<std::net::IpAddr>().is_err() {
                return bad("invalid ip");
            }
            if s.hosts.contains_key(&r.name_server.server_name) {
                return bad("name server already exists");
            }
            common.counters.record_write(&parent);
            s.hosts
                .insert(r.name_server.server_name, vec![r.name_server.ip]);
            success(None)
        }
        ("POST", ["nameservers", host, "add_external"]) => {
            // The documented request body is `{}`; anything else is a client bug.
            if body
                .as_ref()
                .is_some_and(|b| b.as_object().is_none_or(|o| !o.is_empty()))
            {
                return bad("the request body must be {}");
            }
            let host = host.to_ascii_lowercase();
            if !super::valid_host(&host) {
                return bad(&format!("invalid name server {host}"));
            }
            // [U] exact text; registrars.md §6: the error contains "already exists".
            if s.external.contains(&host) || s.hosts.contains_key(&host) {
                return bad(&format!("Name server {host} already exists"));
            }
            s.external.insert(host);
            success(None)
        }
        ("PUT", ["nameservers", host, "set_ip"]) => {
            #[derive(Deserialize)]
            struct SetIp {
                ip_list: Vec<String>,
            }
            if !s.hosts.contains_key(*host) {
                return err(404, "Not Found", "name server not found");
            }
            let Some(Ok(p)) = body.map(serde_json::from_value::<SetIp>) else {
                return bad("ip_list is required");
            };
            if p.ip_list.is_empty()
                || p.ip_list
                    .iter()
                    .any(|ip| ip.parse::<std::net::IpAddr>().is_err())
            {
                return bad("invalid ip_list");
            }
            if let Some(parent) = parent_of(s, host) {
                common.counters.record_write(&parent);
            }
            s.hosts.insert(host.to_string(), p.ip_list);
            success(None)
        }
        ("DELETE", ["nameservers", host]) => {
            if s.hosts.remove(*host).is_none() {
                return err(404, "Not Found", "name server not found");
            }
            if let Some(parent) = parent_of(s, host) {
                common.counters.record_write(&parent);
            }
            success(None)
        }
        _ => err(404, "Not Found", "unknown endpoint"),
    }
}

/// `name_server_settings` as `GET …/records` shows it: the documented
/// parking answer until records are set, then Dynadot DNS with the lists.
fn records_json(d: &Domain) -> Value {
    let Some(dns) = &d.dns else {
        return json!({"type": "Dynadot Parking", "with_ads": "Yes"});
    };
    let entry = |r: &DnsRecord| {
        let mut v = json!({"record_type": r.record_type, "record_value1": r.value1});
        if let Some(sub) = &r.sub_host {
            v["sub_host"] = json!(sub);
        }
        if let Some(v2) = &r.value2 {
            v["record_value2"] = json!(v2);
        }
        v
    };
    json!({
        "type": "Dynadot DNS",
        "dns_main_list": dns.records.iter().filter(|r| r.sub_host.is_none()).map(entry).collect::<Vec<_>>(),
        "dns_sub_list": dns.records.iter().filter(|r| r.sub_host.is_some()).map(entry).collect::<Vec<_>>(),
        "ttl": dns.ttl.to_string(),
    })
}

/// Checks a `POST …/records` body; the settings and whether to add to the current ones.
fn records_from(body: Option<Value>) -> Result<(DnsSettings, bool), String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Main {
        record_type: String,
        record_value1: String,
        #[serde(default)]
        record_value2: Option<String>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sub {
        sub_host: String,
        record_type: String,
        record_value1: String,
        #[serde(default)]
        record_value2: Option<String>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Set {
        #[serde(default)]
        dns_main_list: Vec<Main>,
        #[serde(default)]
        sub_list: Vec<Sub>,
        #[serde(default)]
        ttl: Option<u32>,
        #[serde(default)]
        add_dns_to_current_setting: bool,
    }
    let set: Set = body
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| format!("invalid request body: {e}"))?
        .ok_or("a request body is required")?;
    if set.dns_main_list.len() > 20 {
        return Err("dns_main_list takes at most 20 records".into());
    }
    if set.sub_list.len() > 100 {
        return Err("sub_list takes at most 100 records".into());
    }
    let check = |sub: Option<String>, t: String, v1: String, v2: Option<String>| {
        let t = t.to_ascii_lowercase();
        if !RECORD_TYPES.contains(&t.as_str()) {
            return Err(format!("invalid record_type {t}"));
        }
        if v1.trim().is_empty() {
            return Err("record_value1 is required".to_string());
        }
        let ok = match t.as_str() {
            "a" => v1.parse::<std::net::Ipv4Addr>().is_ok(),
            "aaaa" => v1.parse::<std::net::Ipv6Addr>().is_ok(),
            // [U] the MX distance is required in record_value2.
            "mx" => v2.as_deref().is_some_and(|d| d.parse::<u16>().is_ok()),
            _ => true,
        };
        if !ok {
            return Err(format!("invalid {t} record {v1}"));
        }
        if sub.as_deref().is_some_and(|s| s.trim().is_empty()) {
            return Err("sub_host is required".to_string());
        }
        Ok(DnsRecord {
            sub_host: sub,
            record_type: t,
            value1: v1,
            value2: v2,
        })
    };
    let mut records = Vec::new();
    for m in set.dns_main_list {
        records.push(check(
            None,
            m.record_type,
            m.record_value1,
            m.record_value2,
        )?);
    }
    for r in set.sub_list {
        records.push(check(
            Some(r.sub_host),
            r.record_type,
            r.record_value1,
            r.record_value2,
        )?);
    }
    let ttl = set.ttl.unwrap_or(crate::dynadot::DEFAULT_TTL);
    Ok((DnsSettings { records, ttl }, set.add_dns_to_current_setting))
}

//! Fake Cloudflare API v4 (registrars.md §1, §8).
//!
//! Enforces: `Authorization: Bearer <token>` (missing or malformed → 400
//! 6003/6111; unknown → 401 1000 "Invalid API Token"); account tokens get 403
//! on `/user/tokens/verify` and verify on `/accounts/{id}/tokens/verify`;
//! token status (active/disabled/expired) and per-token permissions (registrar
//! read → else 403 10000, zone read → else an empty list, DNS edit → else 403
//! 10000); the `{success, errors, messages, result, result_info}` envelope on
//! every answer; `page`/`per_page` paging (zones and registrar domains 5..=50,
//! DNS records 5..=5000); registrar PUT rejects `name_servers`; DNS records
//! must sit inside their zone, NS content must be a host name, DS needs a valid
//! `data` object and an NS delegation at the same name, identical records are
//! refused (81058); 429 with `Retry-After` past the request budget.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{bearer, valid_host, FakeCommon, FakeServer, Gate};

/// What a fake API token may do.
#[derive(Debug, Clone)]
pub struct FakeToken {
    /// `active`, `disabled` or `expired`.
    pub status: String,
    /// `Some(account)` for an account-owned token, `None` for a user token.
    pub account: Option<String>,
    /// Registrar read permission.
    pub registrar_read: bool,
    /// Zone read permission.
    pub zone_read: bool,
    /// DNS edit permission.
    pub dns_edit: bool,
}

impl FakeToken {
    /// An active user token with every permission.
    pub fn full() -> Self {
        Self {
            status: "active".into(),
            account: None,
            registrar_read: true,
            zone_read: true,
            dns_edit: true,
        }
    }
}

#[derive(Debug, Clone)]
struct Record {
    id: String,
    kind: String,
    name: String,
    content: String,
    ttl: u64,
    data: Option<Value>,
}

#[derive(Debug, Clone)]
struct Zone {
    id: String,
    name: String,
    account: String,
    status: String,
    name_servers: Vec<String>,
    records: Vec<Record>,
}

#[derive(Debug)]
struct State_ {
    tokens: HashMap<String, FakeToken>,
    accounts: Vec<String>,
    registrar: BTreeMap<String, (String, Vec<String>)>,
    zones: BTreeMap<String, Zone>,
    next_id: u64,
}

/// The fake Cloudflare account(s) and server state.
#[derive(Debug)]
pub struct FakeCloudflare {
    common: FakeCommon,
    state: Mutex<State_>,
}

fn envelope(result: Value, info: Option<Value>) -> Response {
    let mut v = json!({ "success": true, "errors": [], "messages": [], "result": result });
    if let Some(i) = info {
        v["result_info"] = i;
    }
    Json(v).into_response()
}

fn fail(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        Json(
            json!({ "success": false, "errors": [{ "code": code, "message": message }],
                          "messages": [], "result": null }),
        ),
    )
        .into_response()
}

fn hex_id(n: u64) -> String {
    format!("{n:032x}")
}

impl FakeCloudflare {
    /// A fake with one account, `account_id`, and no tokens.
    pub fn new(account_id: &str) -> Arc<Self> {
        Arc::new(Self {
            common: FakeCommon::default(),
            state: Mutex::new(State_ {
                tokens: HashMap::new(),
                accounts: vec![account_id.to_string()],
                registrar: BTreeMap::new(),
                zones: BTreeMap::new(),
                next_id: 1,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State_> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counters, budget and failure injection.
    pub fn common(&self) -> &FakeCommon {
        &self.common
    }

    /// Adds (or replaces) a token.
    pub fn add_token(&self, token: &str, t: FakeToken) {
        self.lock().tokens.insert(token.to_string(), t);
    }

    /// Registers `domain` at Cloudflare Registrar in the first account.
    pub fn add_registrar_domain(&self, domain: &str, ns: &[&str]) {
        let mut st = self.lock();
        let account = st.accounts.first().cloned().unwrap_or_default();
        st.registrar.insert(
            domain.to_string(),
            (account, ns.iter().map(|s| s.to_string()).collect()),
        );
    }

    /// Adds an active zone `name` in the first account; returns its id.
    pub fn add_zone(&self, name: &str) -> String {
        let mut st = self.lock();
        st.next_id += 1;
        let id = hex_id(st.next_id);
        let account = st.accounts.first().cloned().unwrap_or_default();
        st.zones.insert(
            id.clone(),
            Zone {
                id: id.clone(),
                name: name.to_string(),
                account,
                status: "active".into(),
                name_servers: vec![
                    "ada.ns.cloudflare.com".into(),
                    "bob.ns.cloudflare.com".into(),
                ],
                records: Vec::new(),
            },
        );
        id
    }

    /// The (type, content) of the records at `name`, sorted.
    pub fn records_at(&self, name: &str) -> Vec<(String, String)> {
        let st = self.lock();
        let mut out: Vec<(String, String)> = st
            .zones
            .values()
            .flat_map(|z| z.records.iter())
            .filter(|r| r.name == name)
            .map(|r| (r.kind.clone(), r.content.clone()))
            .collect();
        out.sort();
        out
    }

    /// The names of the zones holding records at `name`.
    pub fn zones_holding(&self, name: &str) -> Vec<String> {
        let st = self.lock();
        st.zones
            .values()
            .filter(|z| z.records.iter().any(|r| r.name == name))
            .map(|z| z.name.clone())
            .collect()
    }

    /// The axum router.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/user/tokens/verify", get(user_verify))
            .route("/accounts", get(accounts))
            .route("/accounts/{account}/tokens/verify", get(account_verify))
            .route("/accounts/{account}/registrar/domains", get(registrar_list))
            .route(
                "/accounts/{account}/registrar/domains/{domain}",
                get(registrar_domain).put(registrar_domain),
            )
            .route("/zones", get(zones))
            .route("/zones/{zone}/dnssec", get(dnssec))
            .route("/zones/{zone}/dns_records", get(records).post(records))
            .route("/zones/{zone}/dns_records/{id}", delete(record_delete))
            .with_state(self.clone())
    }

    /// Starts the fake on loopback.
    pub async fn start(self: &Arc<Self>) -> std::io::Result<FakeServer> {
        FakeServer::start(self.router()).await
    }

    /// Rate limit, 5xx injection and bearer auth; returns the token's rights.
    fn gate(&self, headers: &HeaderMap, route: &str) -> Result<FakeToken, Response> {
        match self.common.admit(route) {
            Gate::Pass => {}
            Gate::RateLimited { retry_after } => {
                let mut r = fail(
                    StatusCode::TOO_MANY_REQUESTS,
                    971,
                    "Please wait and consider throttling your request speed",
                );
                r.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    retry_after.as_secs().max(1).into(),
                );
                return Err(r);
            }
            Gate::ServerError(code) => {
                return Err(fail(
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    10001,
                    "Internal server error",
                ))
            }
        }
        let Some(token) = bearer(headers) else {
            let body = json!({ "success": false, "messages": [], "result": null, "errors": [{
                "code": 6003, "message": "Invalid request headers",
                "error_chain": [{ "code": 6111, "message": "Invalid format for Authorization header" }] }] });
            return Err((StatusCode::BAD_REQUEST, Json(body)).into_response());
        };
        match self.lock().tokens.get(token) {
            Some(t) => Ok(t.clone()),
            None => Err(fail(StatusCode::UNAUTHORIZED, 1000, "Invalid API Token")),
        }
    }
}

/// Only active tokens may call anything but verify.
fn usable(t: &FakeToken) -> Result<(), Response> {
    if t.status == "active" {
        Ok(())
    } else {
        Err(fail(StatusCode::UNAUTHORIZED, 1000, "Invalid API Token"))
    }
}

fn sees_account(t: &FakeToken, account: &str) -> bool {
    t.account.as_deref().is_none_or(|a| a == account)
}

/// Applies `page`/`per_page` (`max` is the endpoint's limit).
fn paginate(
    items: Vec<Value>,
    q: &HashMap<String, String>,
    default: usize,
    max: usize,
) -> Response {
    let page = match q.get("page").map(|p| p.parse::<usize>()) {
        None => 1,
        Some(Ok(p)) if p >= 1 => p,
        Some(_) => return fail(StatusCode::BAD_REQUEST, 1002, "Invalid page"),
    };
    let per_page = match q.get("per_page").map(|p| p.parse::<usize>()) {
        None => default,
        Some(Ok(p)) if (5..=max).contains(&p) => p,
        Some(_) => {
            return fail(
                StatusCode::BAD_REQUEST,
                1004,
                &format!("per_page must be between 5 and {max}"),
            )
        }
    };
    let total = items.len();
    let total_pages = total.div_ceil(per_page).max(1);
    let slice: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let info = json!({ "page": page, "per_page": per_page, "count": slice.len(),
                       "total_count": total, "total_pages": total_pages });
    envelope(Value::Array(slice), Some(info))
}

fn verify_result(t: &FakeToken) -> Response {
    let mut v = json!({ "id": "6247ac8d9c10ba11154a2b82d35953b7", "status": t.status });
    if t.status == "expired" {
        v["expires_on"] = json!("2020-01-01T00:00:00Z");
    }
    Json(json!({ "success": true, "errors": [], "result": v,
                 "messages": [{ "code": 10000, "message": "This API Token is valid and active", "type": null }] }))
    .into_response()
}

async fn user_verify(State(fake): State<Arc<FakeCloudflare>>, headers: HeaderMap) -> Response {
    let t = match fake.gate(&headers, "GET /user/tokens/verify") {
        Ok(t) => t,
        Err(r) => return r,
    };
    if t.account.is_some() {
        return fail(
            StatusCode::FORBIDDEN,
            9109,
            "Valid user-level authentication not found",
        );
    }
    verify_result(&t)
}

async fn account_verify(
    State(fake): State<Arc<FakeCloudflare>>,
    headers: HeaderMap,
    Path(account): Path<String>,
) -> Response {
    let t = match fake.gate(&headers, "GET /accounts/{id}/tokens/verify") {
        Ok(t) => t,
        Err(r) => return r,
    };
    if t.account.as_deref() != Some(account.as_str()) {
        return fail(StatusCode::UNAUTHORIZED, 1000, "Invalid API Token");
    }
    verify_result(&t)
}

async fn accounts(
    State(fake): State<Arc<FakeCloudflare>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let t = match fake
        .gate(&headers, "GET /accounts")
        .and_then(|t| usable(&t).map(|_| t))
    {
        Ok(t) => t,
        Err(r) => return r,
    };
    let items: Vec<Value> = fake
        .lock()
        .accounts
        .iter()
        .filter(|a| sees_account(&t, a))
        .map(|a| json!({ "id": a, "name": format!("Account {a}") }))
        .collect();
    paginate(items, &q, 20, 50)
}

fn registrar_allowed(t: &FakeToken, account: &str) -> Result<(), Response> {
    usable(t)?;
    if !t.registrar_read || !sees_account(t, account) {
        return Err(fail(StatusCode::FORBIDDEN, 10000, "Authentication error"));
    }
    Ok(())
}

async fn registrar_list(
    State(fake): State<Arc<FakeCloudflare>>,
    headers: HeaderMap,
    Path(account): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let t = match fake.gate(&headers, "GET /accounts/{id}/registrar/domains") {
        Ok(t) => t,
        Err(r) => return r,
    };
    if let Err(r) = registrar_allowed(&t, &account) {
        return r;
    }
    let items: Vec<Value> = fake
        .lock()
        .registrar
        .iter()
        .filter(|(_, (a, _))| *a == account)
        .map(|(name, (_, ns))| json!({ "id": name, "name": name, "name_servers": ns, "locked": true,
                                       "current_registrar": "Cloudflare", "cloudflare_registration": true }))
        .collect();
    paginate(items, &q, 20, 50)
}

async fn registrar_domain(
    State(fake): State<Arc<FakeCloudflare>>,
    method: Method,
    headers: HeaderMap,
    Path((account, domain)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let t = match fake.gate(
        &headers,
        &format!("{method} /accounts/{{id}}/registrar/domains/{{domain}}"),
    ) {
        Ok(t) => t,
        Err(r) => return r,
    };
    if let Err(r) = registrar_allowed(&t, &account) {
        return r;
    }
    let st = fake.lock();
    let Some((_, ns)) = st.registrar.get(&domain).filter(|(a, _)| *a == account) else {
        return fail(
            StatusCode::NOT_FOUND,
            1049,
            "Domain not found in this account",
        );
    };
    if method == Method::PUT {
        // Only auto_renew, locked and privacy may change; NS are Cloudflare's by policy.
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let Some(obj) = v.as_object() else {
            return fail(StatusCode::BAD_REQUEST, 1001, "Invalid request body");
        };
        if let Some(k) = obj
            .keys()
            .find(|k| !matches!(k.as_str(), "auto_renew" | "locked" | "privacy"))
        {
            return fail(
                StatusCode::BAD_REQUEST,
                1001,
                &format!("{k} cannot be updated: domains using Cloudflare Registrar must use Cloudflare nameservers"),
            );
        }
        fake.common.counters.record_write(&domain);
    }
    envelope(
        json!({ "id": domain, "name": domain, "name_servers": ns, "locked": true }),
        None,
    )
}

async fn zones(
    State(fake): State<Arc<FakeCloudflare>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let t = match fake
        .gate(&headers, "GET /zones")
        .and_then(|t| usable(&t).map(|_| t))
    {
        Ok(t) => t,
        Err(r) => return r,
    };
    let items: Vec<Value> = if t.zone_read {
        fake.lock()
            .zones
            .values()
            .filter(|z| sees_account(&t, &z.account))
            .filter(|z| q.get("name").is_none_or(|n| *n == z.name))
            .filter(|z| q.get("account.id").is_none_or(|a| *a == z.account))
            .map(|z| {
                json!({ "id": z.id, "name": z.name, "status": z.status, "type": "full",
                             "name_servers": z.name_servers, "account": { "id": z.account } })
            })
            .collect()
    } else {
        Vec::new()
    };
    paginate(items, &q, 20, 50)
}

fn zone_for(st: &State_, t: &FakeToken, zone: &str) -> Result<Zone, Response> {
    match st.zones.get(zone) {
        Some(z) if t.zone_read && sees_account(t, &z.account) => Ok(z.clone()),
        _ => Err(fail(
            StatusCode::NOT_FOUND,
            7003,
            "Could not route to /zones, perhaps your object identifier is invalid?",
        )),
    }
}

async fn dnssec(
    State(fake): State<Arc<FakeCloudflare>>,
    headers: HeaderMap,
    Path(zone): Path<String>,
) -> Response {
    let t = match fake
        .gate(&headers, "GET /zones/{id}/dnssec")
        .and_then(|t| usable(&t).map(|_| t))
    {
        Ok(t) => t,
        Err(r) => return r,
    };
    match zone_for(&fake.lock(), &t, &zone) {
        Ok(_) => envelope(json!({ "status": "disabled" }), None),
        Err(r) => r,
    }
}

fn record_json(r: &Record) -> Value {
    let mut v = json!({ "id": r.id, "type": r.kind, "name": r.name, "content": r.content, "ttl": r.ttl,
                        "proxied": false });
    if let Some(d) = &r.data {
        v["data"] = d.clone();
    }
    v
}

async fn records(
    State(fake): State<Arc<FakeCloudflare>>,
    method: Method,
    headers: HeaderMap,
    Path(zone): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let t = match fake
        .gate(&headers, &format!("{method} /zones/{{id}}/dns_records"))
        .and_then(|t| usable(&t).map(|_| t))
    {
        Ok(t) => t,
        Err(r) => return r,
    };
    let mut st = fake.lock();
    let z = match zone_for(&st, &t, &zone) {
        Ok(z) => z,
        Err(r) => return r,
    };
    if method == Method::GET {
        let items: Vec<Value> = z
            .records
            .iter()
            .filter(|r| q.get("type").is_none_or(|k| *k == r.kind))
            .filter(|r| q.get("name").is_none_or(|n| *n == r.name))
            .map(record_json)
            .collect();
        return paginate(items, &q, 100, 5000);
    }
    if !t.dns_edit {
        return fail(StatusCode::FORBIDDEN, 10000, "Authentication error");
    }
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return fail(StatusCode::BAD_REQUEST, 9207, "Request body is invalid."),
    };
    let s = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    };
    let (kind, name) = (
        v.get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        s("name"),
    );
    if name != z.name && !name.ends_with(&format!(".{}", z.name)) {
        return fail(
            StatusCode::BAD_REQUEST,
            9005,
            "Record name is not within the zone",
        );
    }
    let (content, data) = match kind.as_str() {
        "NS" => {
            let c = s("content").trim_end_matches('.').to_string();
            if !valid_host(&c) {
                return fail(
                    StatusCode::BAD_REQUEST,
                    9005,
                    "Content for NS record is invalid. Must be a valid hostname.",
                );
            }
            (c, None)
        }
        "DS" => {
            let Some(d) = v.get("data") else {
                return fail(StatusCode::BAD_REQUEST, 9101, "DS record requires data");
            };
            let n = |k: &str| d.get(k).and_then(Value::as_u64);
            let digest = d.get("digest").and_then(Value::as_str).unwrap_or("");
            let ok = n("key_tag").is_some_and(|k| k < 65536)
                && n("algorithm").is_some_and(|a| a < 256)
                && n("digest_type").is_some_and(|a| (1..=4).contains(&a))
                && !digest.is_empty()
                && digest.bytes().all(|b| b.is_ascii_hexdigit());
            if !ok {
                return fail(StatusCode::BAD_REQUEST, 9101, "DS record data is invalid");
            }
            // [U] A DS only makes sense at a delegation point.
            if !z.records.iter().any(|r| r.kind == "NS" && r.name == name) {
                return fail(
                    StatusCode::BAD_REQUEST,
                    9101,
                    "DS records must be at a delegation point (add NS first)",
                );
            }
            let c = format!(
                "{} {} {} {}",
                n("key_tag").unwrap_or(0),
                n("algorithm").unwrap_or(0),
                n("digest_type").unwrap_or(0),
                digest.to_ascii_uppercase()
            );
            (c, Some(d.clone()))
        }
        "A" | "AAAA" | "CNAME" | "TXT" => (
            v.get("content")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            None,
        ),
        _ => return fail(StatusCode::BAD_REQUEST, 9004, "Invalid record type"),
    };
    if z.records
        .iter()
        .any(|r| r.kind == kind && r.name == name && r.content == content)
    {
        return fail(
            StatusCode::BAD_REQUEST,
            81058,
            "An identical record already exists.",
        );
    }
    st.next_id += 1;
    let rec = Record {
        id: hex_id(st.next_id),
        kind,
        name: name.clone(),
        content,
        ttl: v.get("ttl").and_then(Value::as_u64).unwrap_or(1),
        data,
    };
    let out = record_json(&rec);
    if let Some(zm) = st.zones.get_mut(&zone) {
        zm.records.push(rec);
    }
    fake.common.counters.record_write(&name);
    envelope(out, None)
}

async fn record_delete(
    State(fake): State<Arc<FakeCloudflare>>,
    headers: HeaderMap,
    Path((zone, id)): Path<(String, String)>,
) -> Response {
    let t = match fake
        .gate(&headers, "DELETE /zones/{id}/dns_records/{id}")
        .and_then(|t| usable(&t).map(|_| t))
    {
        Ok(t) => t,
        Err(r) => return r,
    };
    let mut st = fake.lock();
    if let Err(r) = zone_for(&st, &t, &zone) {
        return r;
    }
    if !t.dns_edit {
        return fail(StatusCode::FORBIDDEN, 10000, "Authentication error");
    }
    let Some(zm) = st.zones.get_mut(&zone) else {
        return fail(StatusCode::NOT_FOUND, 7003, "Could not route to /zones");
    };
    let Some(pos) = zm.records.iter().position(|r| r.id == id) else {
        return fail(StatusCode::NOT_FOUND, 81044, "Record does not exist.");
    };
    let rec = zm.records.remove(pos);
    fake.common.counters.record_write(&rec.name);
    envelope(json!({ "id": id }), None)
}

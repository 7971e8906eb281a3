//! Fake GoDaddy Domains API v1/v2 (registrars.md §3, §8).
//!
//! Enforces: `Authorization: sso-key {key}:{secret}` (else 401
//! UNABLE_TO_AUTHENTICATE); a switch for 403 ACCESS_DENIED (account not
//! eligible); v1 list with `limit` 1..=1000 and `marker`; v1 PATCH answering
//! 200 with an empty body, 422 below 2 NS or on invalid host names (trailing
//! dots included), 409 for protected domains; v2 paths only for the account's
//! customer id; v2 PUT nameServers, PATCH/DELETE dnssecRecords and PUT/DELETE
//! hosts answering 202 and starting an action that is PENDING for N polls
//! (optionally 404 on the first poll) and then SUCCESS (or FAILED by switch),
//! applied to the state only on success; DNSSEC enum names and key tags
//! validated; 429 `{"code":"TOO_MANY_REQUESTS","retryAfterSec":N}` past the
//! budget, with or without `Retry-After`. Every error uses
//! `{"code","message","fields"}`.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{valid_host, FakeCommon, FakeServer, Gate};

const ALGORITHMS: [&str; 12] = [
    "RSAMD5",
    "DSA",
    "RSASHA1",
    "DSA_NSEC3_SHA1",
    "RSASHA1_NSEC3_SHA1",
    "RSASHA256",
    "RSASHA512",
    "ECC_GOST",
    "ECDSAP256SHA256",
    "ECDSAP384SHA384",
    "ED25519",
    "ED448",
];
const DIGEST_TYPES: [&str; 4] = ["SHA1", "SHA256", "GOST", "SHA384"];

/// A DS record as the fake stores it: (keyTag, algorithm, digestType, DIGEST).
type Ds = (u64, String, String, String);

#[derive(Debug, Clone)]
struct Domain {
    id: u64,
    ns: Vec<String>,
    ds: Vec<Ds>,
    hosts: BTreeMap<String, (Vec<Ipv4Addr>, Vec<Ipv6Addr>)>,
    protected: bool,
}

#[derive(Debug, Clone)]
enum Apply {
    Ns(Vec<String>),
    DsAdd(Vec<Ds>),
    DsDel(Vec<Ds>),
    HostPut(String, Vec<Ipv4Addr>, Vec<Ipv6Addr>),
    HostDel(String),
}

#[derive(Debug, Clone)]
struct Action {
    status: &'static str,
    polls_left: u32,
    hide_next: bool,
    request_id: Option<String>,
    apply: Option<Apply>,
}

#[derive(Debug)]
struct State_ {
    key: String,
    secret: String,
    customer_id: String,
    access_denied: bool,
    retry_after_header: bool,
    polls_to_complete: u32,
    first_poll_404: bool,
    fail_actions: bool,
    next_id: u64,
    domains: BTreeMap<String, Domain>,
    actions: HashMap<(String, String), Action>,
}

/// The fake GoDaddy account and server state.
#[derive(Debug)]
pub struct FakeGoDaddy {
    common: FakeCommon,
    state: Mutex<State_>,
}

impl FakeGoDaddy {
    /// A fake account with API `key`/`secret` and v2 `customer_id`. Actions
    /// complete after 2 polls, the first of which answers 404.
    pub fn new(key: &str, secret: &str, customer_id: &str) -> Arc<Self> {
        Arc::new(Self {
            common: FakeCommon::default(),
            state: Mutex::new(State_ {
                key: key.into(),
                secret: secret.into(),
                customer_id: customer_id.into(),
                access_denied: false,
                retry_after_header: true,
                polls_to_complete: 2,
                first_poll_404: true,
                fail_actions: false,
                next_id: 1000,
                domains: BTreeMap::new(),
                actions: HashMap::new(),
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

    /// Adds `domain` with nameservers `ns`.
    pub fn add_domain(&self, domain: &str, ns: &[&str]) {
        let mut st = self.lock();
        st.next_id += 1;
        let id = st.next_id;
        st.domains.insert(
            domain.to_ascii_lowercase(),
            Domain {
                id,
                ns: ns.iter().map(|s| s.to_string()).collect(),
                ds: Vec::new(),
                hosts: BTreeMap::new(),
                protected: false,
            },
        );
    }

    /// Marks `domain` as protected: NS changes answer 409.
    pub fn set_protected(&self, domain: &str, protected: bool) {
        if let Some(d) = self.lock().domains.get_mut(domain) {
            d.protected = protected;
        }
    }

    /// Answers every call with 403 ACCESS_DENIED (account below the API threshold).
    pub fn set_access_denied(&self, on: bool) {
        self.lock().access_denied = on;
    }

    /// Whether 429 answers carry a `Retry-After` header (the body always has `retryAfterSec`).
    pub fn set_retry_after_header(&self, on: bool) {
        self.lock().retry_after_header = on;
    }

    /// Actions need `polls` PENDING polls before completing; `first_404` hides
    /// a new action from its first poll.
    pub fn set_action_timing(&self, polls: u32, first_404: bool) {
        let mut st = self.lock();
        st.polls_to_complete = polls;
        st.first_poll_404 = first_404;
    }

    /// New actions end FAILED instead of SUCCESS.
    pub fn set_fail_actions(&self, on: bool) {
        self.lock().fail_actions = on;
    }

    /// The NS the fake registry has for `domain`.
    pub fn ns(&self, domain: &str) -> Vec<String> {
        self.lock()
            .domains
            .get(domain)
            .map(|d| d.ns.clone())
            .unwrap_or_default()
    }

    /// The DS records of `domain` as (keyTag, algorithm, digestType, digest).
    pub fn ds(&self, domain: &str) -> Vec<(u64, String, String, String)> {
        self.lock()
            .domains
            .get(domain)
            .map(|d| d.ds.clone())
            .unwrap_or_default()
    }

    /// The IPv4 glue of `host` under `domain`.
    pub fn glue_v4(&self, domain: &str, host: &str) -> Vec<Ipv4Addr> {
        self.lock()
            .domains
            .get(domain)
            .and_then(|d| d.hosts.get(host).map(|h| h.0.clone()))
            .unwrap_or_default()
    }

    /// The axum router.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/v1/domains", get(v1_list))
            .route("/v1/domains/{domain}", get(v1_domain).patch(v1_domain))
            .route("/v2/customers/{cid}/domains/{domain}", get(v2_domain))
            .route(
                "/v2/customers/{cid}/domains/{domain}/nameServers",
                axum::routing::put(v2_ns),
            )
            .route(
                "/v2/customers/{cid}/domains/{domain}/dnssecRecords",
                axum::routing::patch(v2_dnssec).delete(v2_dnssec),
            )
            .route(
                "/v2/customers/{cid}/domains/{domain}/hosts/{host}",
                get(v2_host).put(v2_host).delete(v2_host),
            )
            .route(
                "/v2/customers/{cid}/domains/{domain}/actions/{kind}",
                get(v2_action),
            )
            .with_state(self.clone())
    }

    /// Starts the fake on loopback.
    pub async fn start(self: &Arc<Self>) -> std::io::Result<FakeServer> {
        FakeServer::start(self.router()).await
    }

    /// Rate limit, 5xx injection and auth, in that order; `Err` is the response to send.
    fn gate(&self, headers: &HeaderMap, route: &str) -> Result<(), Response> {
        match self.common.admit(route) {
            Gate::Pass => {}
            Gate::RateLimited { retry_after } => {
                let secs = retry_after.as_secs().max(1);
                let body = Json(json!({
                    "code": "TOO_MANY_REQUESTS",
                    "message": "Too many requests received within interval",
                    "retryAfterSec": secs,
                    "fields": []
                }));
                let mut resp = (StatusCode::TOO_MANY_REQUESTS, body).into_response();
                if self.lock().retry_after_header {
                    resp.headers_mut()
                        .insert(axum::http::header::RETRY_AFTER, secs.into());
                }
                return Err(resp);
            }
            Gate::ServerError(code) => {
                return Err(err(
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    "INTERNAL_SERVER_ERROR",
                    "Internal server error",
                ))
            }
        }
        let st = self.lock();
        let want = format!("sso-key {}:{}", st.key, st.secret);
        let got = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if got != Some(want.as_str()) {
            return Err(err(
                StatusCode::UNAUTHORIZED,
                "UNABLE_TO_AUTHENTICATE",
                "Unauthorized : Could not authenticate API key/secret",
            ));
        }
        if st.access_denied {
            return Err(err(
                StatusCode::FORBIDDEN,
                "ACCESS_DENIED",
                "Authenticated user is not allowed access",
            ));
        }
        Ok(())
    }

    /// Checks the customer id and the domain; `Err` is the response to send.
    fn v2_check(st: &State_, cid: &str, domain: &str) -> Result<(), Response> {
        if cid != st.customer_id {
            return Err(err(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                "Specified Customer not owned by authenticated Shopper",
            ));
        }
        if !st.domains.contains_key(domain) {
            return Err(err(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "The given domain was not found",
            ));
        }
        Ok(())
    }

    /// Starts `kind` for `domain`; 409 when one of that kind is still pending.
    fn start_action(
        &self,
        st: &mut State_,
        domain: &str,
        kind: &str,
        headers: &HeaderMap,
        apply: Apply,
    ) -> Response {
        let key = (domain.to_string(), kind.to_string());
        if st.actions.get(&key).is_some_and(|a| a.status == "PENDING") {
            return err(
                StatusCode::CONFLICT,
                "ACTION_IN_PROGRESS",
                "An action of this type is already in progress",
            );
        }
        let request_id = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        st.actions.insert(
            key,
            Action {
                status: "PENDING",
                polls_left: st.polls_to_complete,
                hide_next: st.first_poll_404,
                request_id,
                apply: Some(apply),
            },
        );
        self.common.counters.record_write(domain);
        StatusCode::ACCEPTED.into_response()
    }
}

fn err(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({ "code": code, "message": message, "fields": [] })),
    )
        .into_response()
}

fn field_err(status: StatusCode, code: &str, message: &str, path: &str) -> Response {
    (
        status,
        Json(json!({ "code": code, "message": message,
                     "fields": [{ "code": code, "message": message, "path": path }] })),
    )
        .into_response()
}

/// Parses a JSON request body; GoDaddy wants `Content-Type: application/json`.
fn parse_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, Response> {
    let json_ct = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json_ct {
        return Err(err(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "Content-Type must be application/json",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        err(
            StatusCode::BAD_REQUEST,
            "INVALID_BODY",
            &format!("Request body doesn't fulfill schema: {e}"),
        )
    })
}

/// Validates `nameServers` as GoDaddy does (422s from registrars.md §3(c)).
fn check_ns(body: &Value) -> Result<Vec<String>, Response> {
    let Some(list) = body.get("nameServers").and_then(Value::as_array) else {
        return Err(field_err(
            StatusCode::UNPROCESSABLE_ENTITY,
            "MISSING_NAME_SERVER",
            "At least two NS records must be specified in the request body",
            "nameServers",
        ));
    };
    let hosts: Vec<String> = list
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_ascii_lowercase)
        .collect();
    if hosts.len() != list.len() || hosts.len() < 2 {
        return Err(field_err(
            StatusCode::UNPROCESSABLE_ENTITY,
            "MISSING_NAME_SERVER",
            "At least two apex (aka @) `nameServers` must be specified<br>Failed to update nameservers",
            "nameServers",
        ));
    }
    if let Some(bad) = hosts.iter().find(|h| !valid_host(h)) {
        return Err(field_err(
            StatusCode::UNPROCESSABLE_ENTITY,
            "FAILED_NAME_SERVER_VALIDATION",
            &format!("Failed to update nameservers (records [INVALID_FIELD]: Nameservers [{bad}])"),
            "nameServers",
        ));
    }
    Ok(hosts)
}

fn check_ds(body: &Value) -> Result<Vec<Ds>, Response> {
    let Some(list) = body.as_array().filter(|l| !l.is_empty()) else {
        return Err(err(
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_BODY",
            "A non-empty array of DomainDnssec is required",
        ));
    };
    let mut out = Vec::new();
    for (i, r) in list.iter().enumerate() {
        let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let (alg, dt, digest) = (s("algorithm"), s("digestType"), s("digest"));
        let key_tag = r.get("keyTag").and_then(Value::as_u64);
        let bad = |what: &str| {
            field_err(
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_FIELD",
                &format!("{what} is invalid"),
                &format!("[{i}].{what}"),
            )
        };
        if !ALGORITHMS.contains(&alg.as_str()) {
            return Err(bad("algorithm"));
        }
        if !DIGEST_TYPES.contains(&dt.as_str()) {
            return Err(bad("digestType"));
        }
        let Some(key_tag) = key_tag.filter(|k| *k < 65536) else {
            return Err(bad("keyTag"));
        };
        if digest.is_empty() || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("digest"));
        }
        if let Some(f) = r.get("flags") {
            if !matches!(f.as_str(), Some("ZSK" | "KSK")) {
                return Err(bad("flags"));
            }
        }
        out.push((key_tag, alg, dt, digest.to_ascii_uppercase()));
    }
    Ok(out)
}

fn ds_json(ds: &[Ds]) -> Value {
    Value::Array(
        ds.iter()
            .map(|(k, a, t, d)| json!({ "keyTag": k, "algorithm": a, "digestType": t, "digest": d, "flags": "KSK" }))
            .collect(),
    )
}

async fn v1_list(
    State(fake): State<Arc<FakeGoDaddy>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = fake.gate(&headers, "GET /v1/domains") {
        return r;
    }
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => 1000,
        Some(Ok(n)) if (1..=1000).contains(&n) => n,
        Some(_) => {
            return field_err(
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_QUERY",
                "limit must be between 1 and 1000",
                "limit",
            )
        }
    };
    let with_ns = q
        .get("includes")
        .is_some_and(|i| i.split(',').any(|x| x == "nameServers"));
    let statuses: Option<Vec<String>> = q
        .get("statuses")
        .map(|s| s.split(',').map(str::to_string).collect());
    if statuses
        .as_ref()
        .is_some_and(|s| !s.iter().any(|x| x == "ACTIVE"))
    {
        return Json(json!([])).into_response();
    }
    let marker = q.get("marker").cloned().unwrap_or_default();
    let st = fake.lock();
    let page: Vec<Value> = st
        .domains
        .iter()
        .filter(|(name, _)| marker.is_empty() || name.as_str() > marker.as_str())
        .take(limit)
        .map(|(name, d)| {
            let mut v = json!({ "domain": name, "domainId": d.id, "status": "ACTIVE", "renewAuto": true,
                                "locked": true, "privacy": false, "expires": "2030-01-01T00:00:00.000Z" });
            if with_ns {
                v["nameServers"] = json!(d.ns);
            }
            v
        })
        .collect();
    Json(Value::Array(page)).into_response()
}

async fn v1_domain(
    State(fake): State<Arc<FakeGoDaddy>>,
    method: Method,
    headers: HeaderMap,
    Path(domain): Path<String>,
    body: Bytes,
) -> Response {
    let domain = domain.to_ascii_lowercase();
    if let Err(r) = fake.gate(&headers, &format!("{method} /v1/domains/{{domain}}")) {
        return r;
    }
    let mut st = fake.lock();
    let Some(d) = st.domains.get_mut(&domain) else {
        return err(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The given domain was not found",
        );
    };
    if method == Method::GET {
        return Json(
            json!({ "domain": domain, "domainId": d.id, "status": "ACTIVE", "nameServers": d.ns,
                            "locked": true, "renewAuto": true }),
        )
        .into_response();
    }
    let body = match parse_body(&headers, &body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let hosts = match check_ns(&body) {
        Ok(h) => h,
        Err(r) => return r,
    };
    if d.protected {
        return err(
            StatusCode::CONFLICT,
            "DOMAIN_NOT_ELIGIBLE",
            "The given domain is not eligible to have its nameservers changed",
        );
    }
    d.ns = hosts;
    fake.common.counters.record_write(&domain);
    // v1 PATCH answers 200 with an empty body.
    StatusCode::OK.into_response()
}

async fn v2_domain(
    State(fake): State<Arc<FakeGoDaddy>>,
    headers: HeaderMap,
    Path((cid, domain)): Path<(String, String)>,
) -> Response {
    if let Err(r) = fake.gate(&headers, "GET /v2/customers/{cid}/domains/{domain}") {
        return r;
    }
    let st = fake.lock();
    if let Err(r) = FakeGoDaddy::v2_check(&st, &cid, &domain) {
        return r;
    }
    let Some(d) = st.domains.get(&domain) else {
        return err(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The given domain was not found",
        );
    };
    Json(json!({ "domain": domain, "domainId": d.id, "status": "ACTIVE", "nameServers": d.ns,
                 "dnssecRecords": ds_json(&d.ds), "hostnames": d.hosts.keys().collect::<Vec<_>>() }))
    .into_response()
}

async fn v2_ns(
    State(fake): State<Arc<FakeGoDaddy>>,
    headers: HeaderMap,
    Path((cid, domain)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Err(r) = fake.gate(
        &headers,
        "PUT /v2/customers/{cid}/domains/{domain}/nameServers",
    ) {
        return r;
    }
    let mut st = fake.lock();
    if let Err(r) = FakeGoDaddy::v2_check(&st, &cid, &domain) {
        return r;
    }
    let body = match parse_body(&headers, &body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let hosts = match check_ns(&body) {
        Ok(h) => h,
        Err(r) => return r,
    };
    if st.domains.get(&domain).is_some_and(|d| d.protected) {
        return err(
            StatusCode::CONFLICT,
            "DOMAIN_NOT_ELIGIBLE",
            "The given domain is not eligible to have its nameservers changed",
        );
    }
    fake.start_action(
        &mut st,
        &domain,
        "DOMAIN_UPDATE_NAME_SERVERS",
        &headers,
        Apply::Ns(hosts),
    )
}

async fn v2_dnssec(
    State(fake): State<Arc<FakeGoDaddy>>,
    method: Method,
    headers: HeaderMap,
    Path((cid, domain)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Err(r) = fake.gate(
        &headers,
        &format!("{method} /v2/customers/{{cid}}/domains/{{domain}}/dnssecRecords"),
    ) {
        return r;
    }
    let mut st = fake.lock();
    if let Err(r) = FakeGoDaddy::v2_check(&st, &cid, &domain) {
        return r;
    }
    let records = match parse_body(&headers, &body).and_then(|v| check_ds(&v)) {
        Ok(r) => r,
        Err(r) => return r,
    };
    if method == Method::DELETE {
        let have = st
            .domains
            .get(&domain)
            .map(|d| d.ds.clone())
            .unwrap_or_default();
        if let Some(i) = records.iter().position(|r| !have.contains(r)) {
            return field_err(
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_FIELD",
                "DNSSEC record not found",
                &format!("[{i}]"),
            );
        }
        fake.start_action(
            &mut st,
            &domain,
            "DNSSEC_DELETE",
            &headers,
            Apply::DsDel(records),
        )
    } else {
        fake.start_action(
            &mut st,
            &domain,
            "DNSSEC_CREATE",
            &headers,
            Apply::DsAdd(records),
        )
    }
}

async fn v2_host(
    State(fake): State<Arc<FakeGoDaddy>>,
    method: Method,
    headers: HeaderMap,
    Path((cid, domain, host)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    if let Err(r) = fake.gate(
        &headers,
        &format!("{method} /v2/customers/{{cid}}/domains/{{domain}}/hosts/{{host}}"),
    ) {
        return r;
    }
    let mut st = fake.lock();
    if let Err(r) = FakeGoDaddy::v2_check(&st, &cid, &domain) {
        return r;
    }
    let host = host.to_ascii_lowercase();
    if !host.ends_with(&format!(".{domain}")) || !valid_host(&host) {
        return field_err(
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_FIELD",
            "hostname must be subordinate to the domain",
            "hostname",
        );
    }
    let existing = st
        .domains
        .get(&domain)
        .and_then(|d| d.hosts.get(&host).cloned());
    match method {
        Method::GET => match existing {
            Some((v4, v6)) => {
                Json(json!({ "hostname": host, "ipv4Addresses": v4, "ipv6Addresses": v6 }))
                    .into_response()
            }
            None => err(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "The given hostname was not found",
            ),
        },
        Method::DELETE => {
            if existing.is_none() {
                return err(
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND",
                    "The given hostname was not found",
                );
            }
            fake.start_action(
                &mut st,
                &domain,
                "HOST_DELETE",
                &headers,
                Apply::HostDel(host),
            )
        }
        _ => {
            let body = match parse_body(&headers, &body) {
                Ok(v) => v,
                Err(r) => return r,
            };
            let list = |k: &str| -> Vec<String> {
                body.get(k)
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let v4: Result<Vec<Ipv4Addr>, _> =
                list("ipv4Addresses").iter().map(|a| a.parse()).collect();
            let v6: Result<Vec<Ipv6Addr>, _> =
                list("ipv6Addresses").iter().map(|a| a.parse()).collect();
            match (v4, v6) {
                (Ok(v4), Ok(v6)) if !(v4.is_empty() && v6.is_empty()) => fake.start_action(
                    &mut st,
                    &domain,
                    "HOST_CREATE",
                    &headers,
                    Apply::HostPut(host, v4, v6),
                ),
                _ => field_err(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "INVALID_FIELD",
                    "at least one valid IP address is required",
                    "ipv4Addresses",
                ),
            }
        }
    }
}

async fn v2_action(
    State(fake): State<Arc<FakeGoDaddy>>,
    headers: HeaderMap,
    Path((cid, domain, kind)): Path<(String, String, String)>,
) -> Response {
    if let Err(r) = fake.gate(
        &headers,
        "GET /v2/customers/{cid}/domains/{domain}/actions/{type}",
    ) {
        return r;
    }
    let mut guard = fake.lock();
    let st = &mut *guard;
    if let Err(r) = FakeGoDaddy::v2_check(st, &cid, &domain) {
        return r;
    }
    let fail = st.fail_actions;
    let Some(a) = st.actions.get_mut(&(domain.clone(), kind.clone())) else {
        return err(StatusCode::NOT_FOUND, "NOT_FOUND", "Action not found");
    };
    if a.hide_next {
        a.hide_next = false;
        return err(StatusCode::NOT_FOUND, "NOT_FOUND", "Action not found");
    }
    if a.status == "PENDING" {
        if a.polls_left > 0 {
            a.polls_left -= 1;
        } else if fail {
            a.status = "FAILED";
            a.apply = None;
        } else {
            a.status = "SUCCESS";
            if let (Some(apply), Some(d)) = (a.apply.take(), st.domains.get_mut(&domain)) {
                match apply {
                    Apply::Ns(ns) => d.ns = ns,
                    Apply::DsAdd(add) => {
                        for r in add {
                            if !d.ds.contains(&r) {
                                d.ds.push(r);
                            }
                        }
                    }
                    Apply::DsDel(del) => d.ds.retain(|r| !del.contains(r)),
                    Apply::HostPut(h, v4, v6) => {
                        d.hosts.insert(h, (v4, v6));
                    }
                    Apply::HostDel(h) => {
                        d.hosts.remove(&h);
                    }
                }
            }
        }
    }
    let mut v = json!({ "type": kind, "origination": "USER", "status": a.status,
                        "createdAt": "2026-01-01T00:00:00.000Z" });
    if let Some(r) = &a.request_id {
        v["requestId"] = json!(r);
    }
    if a.status == "FAILED" {
        v["reason"] = json!({ "code": "REGISTRY_ERROR", "message": "The registry rejected the change", "fields": [] });
    }
    Json(v).into_response()
}

//! Fake OVH API 1.0 (registrars.md §4, §8): signed requests checked over the
//! full URL the fake is reachable at, a ±180 s timestamp window against its own
//! clock, consumer-key rules enforced as method + path globs, domains whose NS,
//! DS keys and glue change only through tasks that go todo → doing → done (or
//! error, with a comment) as they are polled, and OVH's error shapes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{FakeCommon, FakeServer, Gate};
use crate::ovh::{rule_covers, signature, MAX_SKEW_SECS};

/// A running fake OVH endpoint; stops when dropped.
#[derive(Debug)]
pub struct OvhFake {
    server: FakeServer,
    shared: Arc<Shared>,
}

/// State shared with the handler.
#[derive(Debug, Default)]
struct Shared {
    common: FakeCommon,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    app_key: String,
    app_secret: String,
    consumer_key: String,
    credential_status: String,
    rules: Vec<(String, String)>,
    /// `scheme://host[:port]` clients are told to use; signatures are checked against it.
    public_origin: String,
    /// The fake's clock minus the real clock (a server whose clock differs from ours).
    clock_offset: i64,
    /// What `/auth/time` adds to the fake's clock (a lying time endpoint: bad skew).
    time_lie: i64,
    /// Polls of a task before it reaches its final state.
    task_polls: u32,
    /// The 5xx status the next write (POST/PUT/DELETE) answers with, if set.
    fail_next_write: Option<u16>,
    /// The comment the next task fails with, if set.
    fail_next_task: Option<String>,
    domains: BTreeMap<String, Domain>,
    tasks: BTreeMap<u64, Task>,
    next_id: u64,
}

#[derive(Debug, Clone, Default)]
struct Domain {
    ns_type: String,
    ns: Vec<NsEntry>,
    keys: Vec<Key>,
    glue: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone)]
struct NsEntry {
    id: u64,
    host: String,
    ip: Option<String>,
    to_delete: bool,
    /// Added by a task that has not finished yet.
    pending: bool,
}

/// A DNSSEC key as `/domain/{d}/dsRecord/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// Record id.
    pub id: u64,
    /// DNSSEC algorithm.
    pub algorithm: u8,
    /// DNSKEY flags.
    pub flags: u16,
    /// DNSKEY public key, base64.
    pub public_key: String,
    /// Key tag.
    pub tag: u16,
}

#[derive(Debug, Clone)]
enum Effect {
    Ns,
    Ds(Vec<Key>),
    GlueSet(String, Vec<String>),
    GlueDelete(String),
}

#[derive(Debug, Clone)]
struct Task {
    id: u64,
    domain: String,
    function: &'static str,
    status: &'static str,
    polls: u32,
    fail: Option<String>,
    comment: Option<String>,
    effect: Effect,
}

impl Inner {
    fn now(&self) -> i64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        real + self.clock_offset
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn task(&mut self, domain: &str, function: &'static str, effect: Effect) -> Value {
        let id = self.id();
        let fail = self.fail_next_task.take();
        let t = Task {
            id,
            domain: domain.to_string(),
            function,
            status: "todo",
            polls: 0,
            fail,
            comment: None,
            effect,
        };
        let v = task_json(&t);
        self.tasks.insert(id, t);
        v
    }

    /// One poll of a task: todo → doing → … → done/error after `task_polls` polls.
    fn poll(&mut self, domain: &str, id: u64) -> Option<Value> {
        let polls_needed = self.task_polls.max(1);
        let t = self.tasks.get_mut(&id).filter(|t| t.domain == domain)?;
        if matches!(t.status, "todo" | "doing") {
            t.polls += 1;
            if t.polls >= polls_needed {
                let t = t.clone();
                let ok = t.fail.is_none();
                self.finish(&t, ok);
                let t = self.tasks.get_mut(&id)?;
                if ok {
                    t.status = "done";
                } else {
                    t.status = "error";
                    t.comment = t.fail.clone();
                }
            } else {
                t.status = "doing";
            }
        }
        self.tasks.get(&id).map(task_json)
    }

    /// Applies (or, on failure, reverts) a task's effect.
    fn finish(&mut self, t: &Task, ok: bool) {
        let Some(d) = self.domains.get_mut(&t.domain) else {
            return;
        };
        match (&t.effect, ok) {
            (Effect::Ns, true) => {
                d.ns.retain(|n| !n.to_delete);
                d.ns.iter_mut().for_each(|n| n.pending = false);
            }
            (Effect::Ns, false) => {
                d.ns.retain(|n| !n.pending);
                d.ns.iter_mut().for_each(|n| n.to_delete = false);
            }
            (Effect::Ds(keys), true) => d.keys = keys.clone(),
            (Effect::GlueSet(h, ips), true) => {
                d.glue.insert(h.clone(), ips.clone());
            }
            (Effect::GlueDelete(h), true) => {
                d.glue.remove(h);
            }
            (_, false) => {}
        }
    }

    fn pending_tasks(&self) -> usize {
        self.tasks
            .values()
            .filter(|t| matches!(t.status, "todo" | "doing"))
            .count()
    }
}

fn task_json(t: &Task) -> Value {
    json!({
        "id": t.id,
        "function": t.function,
        "status": t.status,
        "comment": t.comment,
        "creationDate": "2026-01-01T00:00:00+00:00",
        "todoDate": "2026-01-01T00:00:00+00:00",
        "lastUpdate": "2026-01-01T00:00:00+00:00",
        "doneDate": if t.status == "done" { Value::from("2026-01-01T00:00:00+00:00") } else { Value::Null },
        "canAccelerate": false,
        "canCancel": false,
        "canRelaunch": false,
    })
}

impl OvhFake {
    /// Starts a fake for one application (AK/AS) and one validated consumer
    /// key whose rules grant everything under `/domain`.
    pub async fn start(
        app_key: &str,
        app_secret: &str,
        consumer_key: &str,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        {
            let mut s = lock(&shared);
            s.app_key = app_key.into();
            s.app_secret = app_secret.into();
            s.consumer_key = consumer_key.into();
            s.credential_status = "validated".into();
            s.rules = ["GET", "PUT", "POST", "DELETE"]
                .iter()
                .flat_map(|m| {
                    [
                        (m.to_string(), "/domain".to_string()),
                        (m.to_string(), "/domain/*".to_string()),
                    ]
                })
                .collect();
            s.task_polls = 2;
        }
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let server = FakeServer::start(router).await?;
        lock(&shared).public_origin = server.base_url().to_string();
        Ok(Self { server, shared })
    }

    /// The API base adapters are configured with: `http://127.0.0.1:<port>/1.0`.
    pub fn base_url(&self) -> String {
        format!("{}/1.0", self.server.base_url())
    }

    /// Counters, request budget and failure injection.
    pub fn common(&self) -> &FakeCommon {
        &self.shared.common
    }

    /// The origin (`scheme://host[:port]`) signatures are verified against, as
    /// if the fake sat behind that public name.
    pub fn set_public_origin(&self, origin: &str) {
        lock(&self.shared).public_origin = origin.trim_end_matches('/').to_string();
    }

    /// Adds a registrar domain in `hosted` mode with these NS.
    pub fn add_domain(&self, name: &str, ns: &[&str]) {
        let mut s = lock(&self.shared);
        let mut entries = Vec::new();
        for h in ns {
            let id = s.id();
            entries.push(NsEntry {
                id,
                host: h.to_string(),
                ip: None,
                to_delete: false,
                pending: false,
            });
        }
        s.domains.insert(
            name.to_string(),
            Domain {
                ns_type: "hosted".into(),
                ns: entries,
                ..Domain::default()
            },
        );
    }

    /// Replaces the consumer key's access rules (method, path glob).
    pub fn set_rules(&self, rules: &[(&str, &str)]) {
        lock(&self.shared).rules = rules
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
    }

    /// Sets the credential status (`validated`, `pendingValidation`, `expired`, `refused`).
    pub fn set_credential_status(&self, status: &str) {
        lock(&self.shared).credential_status = status.into();
    }

    /// Makes the fake's clock run `secs` ahead of the real one (told honestly by `/auth/time`).
    pub fn set_clock_offset(&self, secs: i64) {
        lock(&self.shared).clock_offset = secs;
    }

    /// Makes `/auth/time` lie by `secs` (what a client then signs is out of time).
    pub fn set_time_lie(&self, secs: i64) {
        lock(&self.shared).time_lie = secs;
    }

    /// How many polls a task takes to finish (at least 1).
    pub fn set_task_polls(&self, n: u32) {
        lock(&self.shared).task_polls = n;
    }

    /// The next task created ends in `error` with `comment` (and its change is undone).
    pub fn fail_next_task(&self, comment: &str) {
        lock(&self.shared).fail_next_task = Some(comment.into());
    }

    /// The next write (POST/PUT/DELETE) that passes authentication answers
    /// `status` (OVH's transient 500 on `nameServers/update`, php-ovh#123).
    pub fn fail_next_write(&self, status: u16) {
        lock(&self.shared).fail_next_write = Some(status);
    }

    /// Sets `hosted` or `external` directly (as the customer would in the UI).
    pub fn set_ns_type(&self, domain: &str, t: &str) {
        if let Some(d) = lock(&self.shared).domains.get_mut(domain) {
            d.ns_type = t.to_string();
        }
    }

    /// The domain's NS entries as (host, toDelete), in id order.
    pub fn ns(&self, domain: &str) -> Vec<(String, bool)> {
        lock(&self.shared)
            .domains
            .get(domain)
            .map(|d| d.ns.iter().map(|n| (n.host.clone(), n.to_delete)).collect())
            .unwrap_or_default()
    }

    /// `hosted` or `external`.
    pub fn ns_type(&self, domain: &str) -> Option<String> {
        lock(&self.shared)
            .domains
            .get(domain)
            .map(|d| d.ns_type.clone())
    }

    /// The domain's DNSSEC keys.
    pub fn keys(&self, domain: &str) -> Vec<Key> {
        lock(&self.shared)
            .domains
            .get(domain)
            .map(|d| d.keys.clone())
            .unwrap_or_default()
    }

    /// The glue IPs of `host` under `domain`.
    pub fn glue(&self, domain: &str, host: &str) -> Option<Vec<String>> {
        lock(&self.shared)
            .domains
            .get(domain)
            .and_then(|d| d.glue.get(host).cloned())
    }

    /// Tasks created so far.
    pub fn tasks_created(&self) -> usize {
        lock(&self.shared).tasks.len()
    }

    /// Tasks not finished yet.
    pub fn tasks_pending(&self) -> usize {
        lock(&self.shared).pending_tasks()
    }
}

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Inner> {
    s.inner.lock().unwrap_or_else(|p| p.into_inner())
}

/// The old error shape (`errorCode`, `httpCode`, `message`).
fn coded(status: u16, code: &str, message: &str) -> Response {
    let st = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let http_code = format!("{} {}", st.as_u16(), st.canonical_reason().unwrap_or(""));
    reply(
        st,
        json!({ "errorCode": code, "httpCode": http_code, "message": message }),
    )
}

/// The newer error shape (`class`, `message`).
fn classed(status: u16, class: &str, message: &str) -> Response {
    let st = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    reply(st, json!({ "class": class, "message": message }))
}

fn reply(status: StatusCode, v: Value) -> Response {
    (
        status,
        [
            ("content-type", "application/json; charset=utf-8"),
            ("x-ovh-queryid", "EU.fake-1"),
        ],
        v.to_string(),
    )
        .into_response()
}

fn ok(v: Value) -> Response {
    reply(StatusCode::OK, v)
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn valid_ip(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok()
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
            let mut r = classed(429, "Client::TooManyRequests", "Too many requests");
            if let Ok(v) = retry_after.as_secs().to_string().parse() {
                r.headers_mut().insert("retry-after", v);
            }
            return r;
        }
        Gate::ServerError(code) => {
            return classed(code, "Server::InternalServerError", "Internal server error")
        }
    }
    let Some(rel) = path.strip_prefix("/1.0") else {
        return classed(404, "Client::NotFound", "Got an invalid (or empty) URL");
    };
    let rel = rel.to_string();
    let mut s = lock(&shared);

    if rel == "/auth/time" && method == Method::GET {
        // A bare integer, not JSON-quoted.
        let t = s.now() + s.time_lie;
        return (
            StatusCode::OK,
            [("content-type", "application/json; charset=utf-8")],
            t.to_string(),
        )
            .into_response();
    }

    // Authentication, in the order OVH reports problems.
    let Some(ak) = header(&headers, "x-ovh-application") else {
        return coded(400, "MISSING_HEADER", "Missing X-Ovh-Application header");
    };
    if ak != s.app_key {
        return coded(403, "INVALID_KEY", "Invalid application key");
    }
    let Some(ck) = header(&headers, "x-ovh-consumer") else {
        return coded(400, "MISSING_HEADER", "Missing X-Ovh-Consumer header");
    };
    if ck != s.consumer_key {
        return coded(403, "INVALID_CREDENTIAL", "This credential does not exist");
    }
    if s.credential_status != "validated" {
        return coded(403, "INVALID_CREDENTIAL", "This credential is not valid");
    }
    let Some(ts) = header(&headers, "x-ovh-timestamp").and_then(|t| t.parse::<i64>().ok()) else {
        return coded(400, "MISSING_HEADER", "Missing X-Ovh-Timestamp header");
    };
    if (ts - s.now()).abs() > MAX_SKEW_SECS {
        return coded(400, "QUERY_TIME_OUT", "Query out of time");
    }
    let Some(sig) = header(&headers, "x-ovh-signature") else {
        return coded(400, "MISSING_HEADER", "Missing X-Ovh-Signature header");
    };
    // The URL the client must have signed: the public origin plus path and query as received.
    let full_url = format!(
        "{}{}",
        s.public_origin,
        uri.path_and_query().map(|p| p.as_str()).unwrap_or(&path)
    );
    let want = signature(
        &s.app_secret,
        &s.consumer_key,
        method.as_str(),
        &full_url,
        &body,
        ts,
    );
    if sig != want {
        return coded(400, "INVALID_SIGNATURE", "Invalid signature");
    }

    if rel == "/auth/currentCredential" && method == Method::GET {
        let rules: Vec<Value> = s
            .rules
            .iter()
            .map(|(m, p)| json!({"method": m, "path": p}))
            .collect();
        return ok(json!({
            "credentialId": 424242,
            "applicationId": 4242,
            "creation": "2026-01-01T00:00:00+00:00",
            "expiration": null,
            "lastUse": "2026-01-01T00:00:00+00:00",
            "ovhSupport": false,
            "allowedIPs": null,
            "status": s.credential_status,
            "rules": rules,
        }));
    }
    if !s
        .rules
        .iter()
        .any(|(m, p)| rule_covers(m, p, method.as_str(), &rel))
    {
        return coded(403, "NOT_GRANTED_CALL", "This call has not been granted");
    }

    if method != Method::GET {
        if let Some(code) = s.fail_next_write.take() {
            return classed(code, "Server::InternalServerError", "Internal server error");
        }
    }

    let json_body: Option<Value> = if body.is_empty() {
        None
    } else {
        if !header(&headers, "content-type").is_some_and(|c| c.starts_with("application/json")) {
            return classed(
                400,
                "Client::BadRequest",
                "Content-Type must be application/json",
            );
        }
        match serde_json::from_slice(&body) {
            Ok(v) => Some(v),
            Err(_) => return classed(400, "Client::BadRequest", "Invalid JSON received"),
        }
    };

    route(&mut s, &shared.common, &method, &rel, json_body)
}

fn route(
    s: &mut Inner,
    common: &FakeCommon,
    method: &Method,
    rel: &str,
    body: Option<Value>,
) -> Response {
    let segs: Vec<&str> = rel.trim_start_matches('/').split('/').collect();
    let not_found = || classed(404, "Client::NotFound", "This service does not exist");
    if segs.first() != Some(&"domain") {
        return classed(404, "Client::NotFound", "Got an invalid (or empty) URL");
    }
    if segs.len() == 1 {
        return if method == Method::GET {
            ok(json!(s.domains.keys().collect::<Vec<_>>()))
        } else {
            classed(405, "Client::MethodNotAllowed", "Method not allowed")
        };
    }
    let d = segs[1].to_string();
    if !s.domains.contains_key(&d) {
        return not_found();
    }
    let bad = |m: &str| classed(400, "Client::BadRequest", m);
    match (method.as_str(), &segs[2..]) {
        ("GET", []) => {
            let dom = &s.domains[&d];
            ok(json!({
                "domain": d,
                "nameServerType": dom.ns_type,
                "transferLockStatus": "locked",
                "dnssecSupported": true,
                "glueRecordIpv6Supported": true,
                "glueRecordMultiIpSupported": true,
                "offer": "gold",
                "owoSupported": true,
                "lastUpdate": "2026-01-01T00:00:00+00:00",
                "whoisOwner": "1234567",
                "parentService": null,
            }))
        }
        ("PUT", []) => {
            #[derive(Deserialize)]
            #[serde(rename_all = "camelCase")]
            struct Put {
                name_server_type: Option<String>,
            }
            let Some(Ok(p)) = body.map(serde_json::from_value::<Put>) else {
                return bad("Invalid body");
            };
            match p.name_server_type.as_deref() {
                Some(t @ ("hosted" | "external")) => {
                    if let Some(dom) = s.domains.get_mut(&d) {
                        dom.ns_type = t.to_string();
                    }
                    common.counters.record_write(&d);
                    ok(Value::Null)
                }
                Some(other) => bad(&format!("Invalid value for nameServerType: {other}")),
                None => ok(Value::Null),
            }
        }
        ("GET", ["nameServer"]) => ok(json!(s.domains[&d]
            .ns
            .iter()
            .map(|n| n.id)
            .collect::<Vec<_>>())),
        ("GET", ["nameServer", id]) => {
            let Some(n) = id
                .parse::<u64>()
                .ok()
                .and_then(|id| s.domains[&d].ns.iter().find(|n| n.id == id))
            else {
                return classed(404, "Client::NotFound", "This nameserver does not exist");
            };
            ok(
                json!({"id": n.id, "host": n.host, "ip": n.ip, "isUsed": !n.pending, "toDelete": n.to_delete}),
            )
        }
        ("POST", ["nameServers", "update"]) => {
            #[derive(Deserialize)]
            struct Ns {
                host: String,
                #[serde(default)]
                ip: Option<String>,
            }
            #[derive(Deserialize)]
            #[serde(rename_all = "camelCase")]
            struct Update {
                name_servers: Vec<Ns>,
            }
            let Some(Ok(u)) = body.map(serde_json::from_value::<Update>) else {
                return bad("Invalid body: nameServers is required");
            };
            if s.domains[&d].ns_type != "external" {
                // [U] the exact OVH wording; what matters is that hosted mode refuses.
                return classed(
                    403,
                    "Client::Forbidden",
                    "Name servers can only be updated when nameServerType is external",
                );
            }
            if !(2..=8).contains(&u.name_servers.len()) {
                return bad("Between 2 and 8 name servers are required");
            }
            for n in &u.name_servers {
                if !super::valid_host(&n.host) {
                    return bad(&format!("Invalid host {}", n.host));
                }
                if n.ip.as_deref().is_some_and(|ip| !valid_ip(ip)) {
                    return bad("Invalid ip");
                }
            }
            if s.tasks.values().any(|t| {
                t.domain == d
                    && t.function == "DomainDnsUpdate"
                    && matches!(t.status, "todo" | "doing")
            }) {
                return classed(
                    409,
                    "Client::Conflict",
                    "A DNS update task is already in progress",
                );
            }
            let mut added = Vec::new();
            for n in &u.name_servers {
                if !s.domains[&d]
                    .ns
                    .iter()
                    .any(|e| e.host == n.host && !e.to_delete)
                {
                    let id = s.id();
                    added.push(NsEntry {
                        id,
                        host: n.host.clone(),
                        ip: n.ip.clone(),
                        to_delete: false,
                        pending: true,
                    });
                }
            }
            if let Some(dom) = s.domains.get_mut(&d) {
                for e in dom.ns.iter_mut() {
                    if !u.name_servers.iter().any(|n| n.host == e.host) {
                        e.to_delete = true;
                    }
                }
                dom.ns.extend(added);
            }
            common.counters.record_write(&d);
            ok(s.task(&d, "DomainDnsUpdate", Effect::Ns))
        }
        ("GET", ["task", id]) => match id.parse::<u64>().ok().and_then(|id| s.poll(&d, id)) {
            Some(t) => ok(t),
            None => classed(404, "Client::NotFound", "This task does not exist"),
        },
        ("GET", ["dsRecord"]) => ok(json!(s.domains[&d]
            .keys
            .iter()
            .map(|k| k.id)
            .collect::<Vec<_>>())),
        ("GET", ["dsRecord", id]) => {
            let Some(k) = id
                .parse::<u64>()
                .ok()
                .and_then(|id| s.domains[&d].keys.iter().find(|k| k.id == id))
            else {
                return classed(404, "Client::NotFound", "This DS record does not exist");
            };
            ok(
                json!({"id": k.id, "algorithm": k.algorithm, "flags": k.flags, "publicKey": k.public_key, "tag": k.tag, "status": "active"}),
            )
        }
        ("POST", ["dsRecord"]) => {
            #[derive(Deserialize)]
            #[serde(rename_all = "camelCase", deny_unknown_fields)]
            struct K {
                algorithm: u8,
                flags: u16,
                public_key: String,
                tag: u16,
            }
            #[derive(Deserialize)]
            struct Keys {
                keys: Vec<K>,
            }
            let Some(Ok(ks)) = body.map(serde_json::from_value::<Keys>) else {
                return bad(
                    "Invalid body: keys[] with algorithm, flags, publicKey, tag is required",
                );
            };
            if ks.keys.len() > 4 {
                return bad("At most 4 keys");
            }
            let mut keys = Vec::new();
            for k in ks.keys {
                if ![5, 7, 8, 10, 13, 14, 15].contains(&k.algorithm) {
                    return bad(&format!("Invalid algorithm {}", k.algorithm));
                }
                if k.flags != 256 && k.flags != 257 {
                    return bad(&format!("Invalid flags {}", k.flags));
                }
                let decoded = base64::engine::general_purpose::STANDARD.decode(&k.public_key);
                if k.public_key.is_empty() || decoded.is_err() {
                    return bad("Invalid publicKey");
                }
                let id = s.id();
                keys.push(Key {
                    id,
                    algorithm: k.algorithm,
                    flags: k.flags,
                    public_key: k.public_key,
                    tag: k.tag,
                });
            }
            common.counters.record_write(&d);
            ok(s.task(&d, "DomainDsUpdate", Effect::Ds(keys)))
        }
        ("GET", ["glueRecord"]) => ok(json!(s.domains[&d].glue.keys().collect::<Vec<_>>())),
        ("GET", ["glueRecord", host]) => match s.domains[&d].glue.get(*host) {
            Some(ips) => ok(json!({"host": host, "ips": ips})),
            None => classed(404, "Client::NotFound", "This glue record does not exist"),
        },
        ("POST", ["glueRecord"]) => {
            #[derive(Deserialize)]
            struct Create {
                host: String,
                ips: Vec<String>,
            }
            let Some(Ok(c)) = body.map(serde_json::from_value::<Create>) else {
                return bad("Invalid body: host and ips are required");
            };
            if !c.host.ends_with(&format!(".{d}")) || !super::valid_host(&c.host) {
                return bad(&format!("Invalid host {} for domain {d}", c.host));
            }
            if c.ips.is_empty() || !c.ips.iter().all(|ip| valid_ip(ip)) {
                return bad("Invalid ips");
            }
            if s.domains[&d].glue.contains_key(&c.host) {
                return classed(409, "Client::Conflict", "This glue record already exists");
            }
            common.counters.record_write(&d);
            ok(s.task(&d, "DomainHostCreate", Effect::GlueSet(c.host, c.ips)))
        }
        ("POST", ["glueRecord", host, "update"]) => {
            #[derive(Deserialize)]
            struct Update {
                ips: Vec<String>,
            }
            if !s.domains[&d].glue.contains_key(*host) {
                return classed(404, "Client::NotFound", "This glue record does not exist");
            }
            let Some(Ok(u)) = body.map(serde_json::from_value::<Update>) else {
                return bad("Invalid body: ips is required");
            };
            if u.ips.is_empty() || !u.ips.iter().all(|ip| valid_ip(ip)) {
                return bad("Invalid ips");
            }
            common.counters.record_write(&d);
            ok(s.task(
                &d,
                "DomainHostUpdate",
                Effect::GlueSet(host.to_string(), u.ips),
            ))
        }
        ("DELETE", ["glueRecord", host]) => {
            if !s.domains[&d].glue.contains_key(*host) {
                return classed(404, "Client::NotFound", "This glue record does not exist");
            }
            common.counters.record_write(&d);
            ok(s.task(&d, "DomainHostDelete", Effect::GlueDelete(host.to_string())))
        }
        _ => classed(404, "Client::NotFound", "Got an invalid (or empty) URL"),
    }
}

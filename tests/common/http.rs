//! HTTP against a [`PdmServer`]: requests, [`Resp`], [`Body`], pool API shortcuts, and
//! assertions on API answers.

use serde_json::{json, Value};

use super::{tail, PdmServer};

/// HTTP answer: status, parsed JSON body (a JSON string with the raw text if not JSON), raw text.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub content_type: Option<String>,
    /// The `pdm-change-id` header of a write (the change to follow).
    pub change_id: Option<i64>,
}

impl Resp {
    /// `(status, body)`, like the short helpers.
    pub fn into_pair(self) -> (u16, Value) {
        (self.status, self.body)
    }
}

/// Request body kinds for [`PdmServer::request`].
pub enum Body<'a> {
    None,
    Json(&'a Value),
    /// Raw bytes sent with `Content-Type: application/json`.
    Raw(&'a [u8]),
}

impl PdmServer {
    // ----- HTTP -----

    /// General request. `headers` are extra (name, value) pairs.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Body<'_>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let url = format!("{}{}", self.http_base(), path);
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut rb = self.client.request(m, &url);
        if let Some(t) = token {
            rb = rb.header("Authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        rb = match body {
            Body::None => rb,
            Body::Json(v) => rb
                .header("Content-Type", "application/json")
                .body(serde_json::to_vec(v).unwrap()),
            Body::Raw(b) => rb
                .header("Content-Type", "application/json")
                .body(b.to_vec()),
        };
        let r = rb.send().unwrap_or_else(|e| {
            panic!(
                "{method} {path}: {e}\n--- server log ---\n{}",
                tail(&self.log(), 4000)
            )
        });
        let status = r.status().as_u16();
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.to_string());
        let change_id = r
            .headers()
            .get("pdm-change-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.parse().ok());
        let text = r.text().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
        Resp {
            status,
            body,
            text,
            content_type,
            change_id,
        }
    }

    /// Reserve and commit `sub` in example.test; the commit's body and the
    /// change it names (`pdm-change-id`).
    pub fn commit_change(&self, sub: &str, ip: &str) -> (Value, i64) {
        let token = self.reserve_ok("example.test", sub);
        let r = self.request(
            "POST",
            "/api/v1/pool/example.test/commit",
            Some(&self.admin_token()),
            Body::Json(&serde_json::json!({"subdomain": sub, "reservationToken": token, "loadBalancerIP": ip})),
            &[],
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let id = r
            .change_id
            .expect("a write names its change (pdm-change-id)");
        (r.body, id)
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let r = self.request("GET", path, token, Body::None, &[]);
        (r.status, r.body)
    }

    pub fn post(&self, path: &str, token: Option<&str>, json: &Value) -> (u16, Value) {
        let r = self.request("POST", path, token, Body::Json(json), &[]);
        (r.status, r.body)
    }

    /// POST with extra headers (e.g. `Idempotency-Key`).
    pub fn post_h(
        &self,
        path: &str,
        token: Option<&str>,
        json: &Value,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let r = self.request("POST", path, token, Body::Json(json), headers);
        (r.status, r.body)
    }

    /// POST raw bytes as `application/json` (for malformed or oversized bodies).
    pub fn post_raw(&self, path: &str, token: Option<&str>, raw: &[u8]) -> (u16, Value) {
        let r = self.request("POST", path, token, Body::Raw(raw), &[]);
        (r.status, r.body)
    }

    /// DELETE with an optional JSON body.
    pub fn delete(&self, path: &str, token: Option<&str>, json: Option<&Value>) -> (u16, Value) {
        let body = match json {
            Some(v) => Body::Json(v),
            None => Body::None,
        };
        let r = self.request("DELETE", path, token, body, &[]);
        (r.status, r.body)
    }

    // ----- pool API shortcuts (admin token) -----

    pub fn reserve(&self, pool: &str, sub: &str) -> (u16, Value) {
        let t = self.admin_token();
        self.post(
            &format!("/api/v1/pool/{pool}/reserve"),
            Some(&t),
            &json!({ "subdomain": sub }),
        )
    }

    /// Reserve and assert 201; returns the reservation token.
    pub fn reserve_ok(&self, pool: &str, sub: &str) -> String {
        let (st, b) = self.reserve(pool, sub);
        assert_eq!(st, 201, "reserve {sub}.{pool}: {b}");
        b["reservationToken"]
            .as_str()
            .unwrap_or_else(|| panic!("no reservationToken in {b}"))
            .to_string()
    }

    pub fn commit(
        &self,
        pool: &str,
        sub: &str,
        token: &str,
        lb: &str,
        console: Option<&str>,
    ) -> (u16, Value) {
        let t = self.admin_token();
        let mut body = json!({
            "subdomain": sub,
            "reservationToken": token,
            "sovereignFQDN": format!("{sub}.{pool}"),
            "loadBalancerIP": lb,
        });
        if let Some(c) = console {
            body["consoleLoadBalancerIP"] = json!(c);
        }
        self.post(&format!("/api/v1/pool/{pool}/commit"), Some(&t), &body)
    }

    /// Reserve + commit, asserting success; returns the commit body.
    pub fn allocate(&self, pool: &str, sub: &str, lb: &str, console: Option<&str>) -> Value {
        let tok = self.reserve_ok(pool, sub);
        let (st, b) = self.commit(pool, sub, &tok, lb, console);
        assert_eq!(st, 200, "commit {sub}.{pool}: {b}");
        b
    }

    pub fn release(&self, pool: &str, sub: &str) -> (u16, Value) {
        let t = self.admin_token();
        self.delete(
            &format!("/api/v1/pool/{pool}/release"),
            Some(&t),
            Some(&json!({ "subdomain": sub })),
        )
    }

    pub fn check(&self, pool: &str, sub: &str) -> (u16, Value) {
        let t = self.admin_token();
        self.get(&format!("/api/v1/pool/{pool}/check?sub={sub}"), Some(&t))
    }
}

/// Assert an error body `{"error": code, "detail": string}`.
#[track_caller]
pub fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(
        status, want_status,
        "want {want_status} {want_code}, got {status}: {body}"
    );
    assert_eq!(
        body["error"].as_str(),
        Some(want_code),
        "want error code {want_code:?}, got {status}: {body}"
    );
    assert!(
        body.get("detail").map(|d| d.is_string()).unwrap_or(false),
        "error body must have a string detail: {body}"
    );
}

/// Assert `v` is an RFC 3339 timestamp in UTC; returns it.
#[track_caller]
pub fn assert_rfc3339_utc(v: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("timestamp must be a string: {v}"));
    let t = chrono::DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("not RFC 3339: {s}: {e}"));
    assert_eq!(
        t.offset().local_minus_utc(),
        0,
        "timestamp must be UTC: {s}"
    );
    t
}

/// Whether `key` occurs anywhere (any depth) in `v`.
pub fn contains_key_deep(v: &Value, key: &str) -> bool {
    match v {
        Value::Object(m) => m.iter().any(|(k, x)| k == key || contains_key_deep(x, key)),
        Value::Array(a) => a.iter().any(|x| contains_key_deep(x, key)),
        _ => false,
    }
}

//! The Go service's endpoints beyond the pool API that its callers still use
//! (docs/contract.md): the legacy `POST /api/v1/zones`,
//! `POST /api/v1/force-release` and `POST /api/v1/registrar/{r}/set-dns`.
//! Run against the real binary on SQLite and Postgres (and, where the zone
//! lands in the backend, on PowerDNS), like the pool API.

#[macro_use]
mod common;
use common::*;
use hickory_proto::rr::RecordType;
use std::time::Duration;

macro_rules! srv {
    ($b:expr, $cfg:expr) => {
        match PdmServer::start($b, $cfg) {
            Some(s) => s,
            None => return,
        }
    };
}

/// Every byo domain pdm manages, by name.
fn domain_names(srv: &PdmServer, admin: &str) -> Vec<String> {
    let (st, b) = srv.get("/api/v1/domains", Some(admin));
    assert_eq!(st, 200, "{b}");
    b["domains"]
        .as_array()
        .expect("domains array")
        .iter()
        .map(|d| d["domain"].as_str().unwrap_or_default().to_string())
        .collect()
}

// ------------------------------------------------------------------------------------------
// POST /api/v1/zones
// ------------------------------------------------------------------------------------------

fn legacy_zone_create(b: Backend) {
    let srv = srv!(b, Config::default_test());
    let admin = srv.admin_token();
    let pool_tok = srv.token_with_scope("pool:example.test");
    let body = json!({"name": "customer.example.org", "kind": "Native"});

    let (st, r) = srv.post("/api/v1/zones", None, &body);
    assert_error(st, &r, 401, "unauthorized");
    let (st, r) = srv.post("/api/v1/zones", Some(&pool_tok), &body);
    assert_error(st, &r, 403, "forbidden");

    let (st, r) = srv.post_raw("/api/v1/zones", Some(&admin), b"{nope");
    assert_error(st, &r, 400, "invalid-body");
    let (st, r) = srv.post("/api/v1/zones", Some(&admin), &json!({"kind": "Native"}));
    assert_error(st, &r, 422, "missing-name");
    let (st, r) = srv.post(
        "/api/v1/zones",
        Some(&admin),
        &json!({"name": "customer.example.org", "kind": "Slave"}),
    );
    assert_error(st, &r, 422, "unsupported-kind");
    let (st, r) = srv.post("/api/v1/zones", Some(&admin), &json!({"name": "bad..name"}));
    assert_error(st, &r, 422, "invalid-domain");
    let (st, r) = srv.post(
        "/api/v1/zones",
        Some(&admin),
        &json!({"name": "example.test"}),
    );
    assert_error(st, &r, 409, "pool-domain");
    // None of the refused requests left anything behind.
    assert!(domain_names(&srv, &admin).is_empty());
    assert_eq!(
        srv.dig("customer.example.org.", RecordType::SOA).rcode,
        "REFUSED"
    );

    let (st, r) = srv.post("/api/v1/zones", Some(&admin), &body);
    assert_eq!(st, 201, "{r}");
    assert_eq!(r["name"], "customer.example.org.", "{r}");
    assert_eq!(r["id"], "customer.example.org.", "{r}");
    assert_eq!(r["kind"], "Native", "{r}");
    assert_eq!(r["mode"], "byo-manual", "{r}");
    assert_eq!(
        r["nameservers"],
        json!(["ns1.example.test", "ns2.example.test"]),
        "{r}"
    );
    // Served: the zone answers with its SOA, authoritatively. (Within the
    // snapshot's refresh; read-your-writes at return is the incremental
    // data plane's work.)
    wait_for(Duration::from_secs(3), || {
        srv.dig("customer.example.org.", RecordType::SOA).rcode == "NOERROR"
    });
    let d = srv.dig("customer.example.org.", RecordType::SOA);
    assert_eq!(d.rcode, "NOERROR", "{d:?}");
    assert!(d.aa, "{d:?}");
    assert_eq!(d.answer_data(RecordType::SOA).len(), 1, "{d:?}");

    // A retry answers 200 with the same zone; nothing is created twice.
    let (st, again) = srv.post("/api/v1/zones", Some(&admin), &body);
    assert_eq!(st, 200, "{again}");
    assert_eq!(again["name"], r["name"]);
    assert_eq!(again["nameservers"], r["nameservers"]);
    assert_eq!(domain_names(&srv, &admin), vec!["customer.example.org"]);
}

// ------------------------------------------------------------------------------------------
// POST /api/v1/force-release
// ------------------------------------------------------------------------------------------

const FR: &str = "/api/v1/force-release";

fn force(srv: &PdmServer, token: Option<&str>, confirm: bool, body: &Value) -> (u16, Value) {
    let headers: Vec<(&str, &str)> = if confirm {
        vec![("X-Force-Release-Confirm", "yes")]
    } else {
        vec![]
    };
    srv.post_h(FR, token, body, &headers)
}

/// The checks in the Go service's order, the grace period, and the fixed DNS
/// gate: a delegation to servers other than pdm's blocks; pdm answering for
/// the child itself does not.
fn force_release_gates(b: Backend) {
    // The pool's parent-side view: a second pdm serving example.test whose
    // delegation of acme.example.test the test rewrites.
    let Some(parent) = common::registrars::Parent::start(
        b,
        "example.test",
        "acme.example.test",
        &["ns1.sovereign-dns.net", "ns2.sovereign-dns.net"],
    ) else {
        return;
    };
    let cfg = Config::default_test().extra(&format!(
        "force_release_grace_hours = 0\n[delegation]\nparent_servers = [\"{}\"]\nquery_timeout_ms = 1000\n",
        parent.srv.zone_dns_addr()
    ));
    let srv = srv!(b, cfg);
    let admin = srv.admin_token();
    srv.allocate("example.test", "acme", "192.0.2.10", None);
    let ok_body = json!({"sovereignFQDN": "acme.example.test", "reason": "tenant deleted", "graceConfirmed": true});

    let (st, r) = force(&srv, None, true, &ok_body);
    assert_error(st, &r, 401, "unauthorized");
    let pool_tok = srv.token_with_scope("pool:example.test");
    let (st, r) = force(&srv, Some(&pool_tok), true, &ok_body);
    assert_error(st, &r, 403, "forbidden");
    let (st, r) = force(&srv, Some(&admin), false, &ok_body);
    assert_error(st, &r, 401, "missing-confirm-header");
    let r = srv.request(
        "POST",
        FR,
        Some(&admin),
        Body::Raw(b"{nope"),
        &[("X-Force-Release-Confirm", "yes")],
    );
    assert_error(r.status, &r.body, 400, "invalid-json");
    for (body, code) in [
        (
            json!({"sovereignFQDN": "acme.example.test", "graceConfirmed": true}),
            "missing-reason",
        ),
        (
            json!({"sovereignFQDN": "acme.example.test", "reason": "x"}),
            "grace-not-confirmed",
        ),
        (
            json!({"sovereignFQDN": "acme", "reason": "x", "graceConfirmed": true}),
            "invalid-fqdn",
        ),
        (
            json!({"sovereignFQDN": "a.unmanaged.test", "reason": "x", "graceConfirmed": true}),
            "unsupported-pool",
        ),
    ] {
        let (st, r) = force(&srv, Some(&admin), true, &body);
        assert_error(st, &r, 422, code);
    }
    let (st, r) = force(
        &srv,
        Some(&admin),
        true,
        &json!({"sovereignFQDN": "nobody.example.test", "reason": "x", "graceConfirmed": true}),
    );
    assert_error(st, &r, 404, "not-found");

    // Delegated to the Sovereign's own servers at the parent: still live.
    let (st, r) = force(&srv, Some(&admin), true, &ok_body);
    assert_error(st, &r, 412, "fqdn-still-resolves");
    assert!(
        r["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("sovereign-dns.net"),
        "{r}"
    );
    let (_, list) = srv.get("/api/v1/pool/example.test/list", Some(&admin));
    assert_eq!(list["allocations"][0]["state"], "active", "{list}");

    // Delegated to pdm only: pdm serving the child itself does not block.
    parent.delegate(
        "acme.example.test",
        &["ns1.example.test", "ns2.example.test"],
        &[],
    );
    assert_eq!(
        srv.dig("acme.example.test.", RecordType::A).rcode,
        "NOERROR"
    );
    let (st, r) = force(&srv, Some(&admin), true, &ok_body);
    assert_eq!(st, 200, "{r}\n{}", tail(&srv.log(), 2000));
    assert_eq!(r["sovereignFQDN"], "acme.example.test");
    assert_eq!(r["freed"]["state"], "released");
    assert_eq!(r["audit"]["reason"], "tenant deleted");
    assert_eq!(r["audit"]["graceHours"], 0);
    assert!(r["releasedAt"].is_string(), "{r}");
    assert!(
        srv.log().contains("tenant deleted"),
        "no audit line in the log"
    );
    wait_for(Duration::from_secs(3), || {
        srv.dig("acme.example.test.", RecordType::A).rcode != "NOERROR"
    });
    assert_ne!(
        srv.dig("acme.example.test.", RecordType::A).rcode,
        "NOERROR"
    );
    // A retry finds nothing to release.
    let (st, r) = force(&srv, Some(&admin), true, &ok_body);
    assert_error(st, &r, 404, "not-found");

    // No delegation at all at the parent: releasable too.
    srv.allocate("example.test", "beta", "192.0.2.11", None);
    let (st, r) = force(
        &srv,
        Some(&admin),
        true,
        &json!({"sovereignFQDN": "beta.example.test", "reason": "gone", "graceConfirmed": true}),
    );
    assert_eq!(st, 200, "{r}");
}

/// With the default grace (720 h), a fresh allocation cannot be force-released.
fn force_release_waits_for_the_grace_period(b: Backend) {
    let srv = srv!(b, Config::default_test());
    let admin = srv.admin_token();
    srv.allocate("example.test", "acme", "192.0.2.10", None);
    let (st, r) = force(
        &srv,
        Some(&admin),
        true,
        &json!({"sovereignFQDN": "acme.example.test", "reason": "x", "graceConfirmed": true}),
    );
    assert_error(st, &r, 412, "grace-not-elapsed");
    assert!(
        r["detail"].as_str().unwrap_or_default().contains("720 h"),
        "{r}"
    );
    let (_, list) = srv.get("/api/v1/pool/example.test/list", Some(&admin));
    assert_eq!(list["allocations"][0]["state"], "active", "{list}");
}

backend_tests!(
    legacy_zone_create,
    force_release_gates,
    force_release_waits_for_the_grace_period
);

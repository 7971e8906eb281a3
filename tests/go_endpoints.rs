//! The Go service's endpoints beyond the pool API that its callers still use
//! (reference/openova-pdm.md §1.4): the legacy `POST /api/v1/zones`,
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

backend_tests!(legacy_zone_create);

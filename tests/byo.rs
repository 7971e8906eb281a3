//! byo domains: the Go-compatible registrar endpoints against the fake
//! registrars, managed byo-api / byo-manual domains going active when a
//! "parent" pdm shows the delegation, crash recovery of the durable
//! operation, and credentials never leaking.

#[macro_use]
mod common;

use std::time::Duration;

use common::registrars::*;
use common::*;

const CHILD: &str = "acme.co.uk";
const PARENT: &str = "co.uk";
const OLD_NS: [&str; 2] = ["ns1.old-registrar.net", "ns2.old-registrar.net"];
const OUR_NS: [&str; 2] = ["ns1.example.test", "ns2.example.test"];

fn child_config(
    fakes: &Fakes,
    parent: Option<std::net::SocketAddr>,
    extra: &str,
) -> common::Config {
    common::Config::default_test()
        .extra(&fakes.toml())
        .extra(&fast_ops_toml(parent))
        .extra(extra)
}

/// Polls `GET /api/v1/domains/{d}` until `pred` holds; returns the last body.
fn wait_domain(
    srv: &PdmServer,
    d: &str,
    timeout: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let tok = srv.admin_token();
    let mut last = Value::Null;
    let ok = wait_for(timeout, || {
        let (st, b) = srv.get(&format!("/api/v1/domains/{d}"), Some(&tok));
        assert_eq!(st, 200, "{b}");
        last = b;
        pred(&last)
    });
    assert!(
        ok,
        "domain {d} never reached the expected state; last: {last:#}\n{}",
        tail(&srv.log(), 4000)
    );
    last
}

fn state(b: &Value) -> &str {
    b["state"].as_str().unwrap_or("")
}

// ---------------------------------------------------------------------------------------------
// Go-compatible endpoints
// ---------------------------------------------------------------------------------------------

#[test]
fn registrar_endpoints_map_every_status() {
    let fakes = Fakes::start(&["example.com"]);
    let srv = PdmServer::start(Backend::Sqlite, child_config(&fakes, None, "")).unwrap();
    let tok = srv.admin_token();
    let v = |r: &str, body: Value| {
        srv.post(
            &format!("/api/v1/registrar/{r}/validate"),
            Some(&tok),
            &body,
        )
    };
    let set = |r: &str, body: Value| {
        srv.post(&format!("/api/v1/registrar/{r}/set-ns"), Some(&tok), &body)
    };
    let dyn_tok = dynadot_token();

    // Auth first: every write needs a token.
    let (st, b) = srv.post("/api/v1/registrar/dynadot/validate", None, &json!({}));
    assert_error(st, &b, 401, "unauthorized");

    // Unknown registrar: 404 with the supported list.
    let (st, b) = v("Enom", json!({"domain": "example.com", "token": "x"}));
    assert_error(st, &b, 404, "unsupported-registrar");
    assert_eq!(
        b["supported"],
        json!(["cloudflare", "dynadot", "godaddy", "namecheap", "ovh"])
    );

    // Body shape.
    let (st, b) = srv.post_raw(
        "/api/v1/registrar/dynadot/validate",
        Some(&tok),
        b"{not json",
    );
    assert_error(st, &b, 400, "invalid-body");
    assert_eq!(b["registrar"], "dynadot");
    let (st, b) = v("dynadot", json!({"token": dyn_tok}));
    assert_error(st, &b, 422, "missing-domain");
    let (st, b) = v("dynadot", json!({"domain": "example.com"}));
    assert_error(st, &b, 422, "missing-token");
    assert_eq!(
        (b["registrar"].as_str(), b["domain"].as_str()),
        (Some("dynadot"), Some("example.com"))
    );
    let (st, b) = set(
        "dynadot",
        json!({"domain": "example.com", "token": dyn_tok, "nameservers": [" ", ""]}),
    );
    assert_error(st, &b, 422, "missing-nameservers");

    // 200 validate.
    let (st, b) = v(
        "dynadot",
        json!({"domain": "Example.COM", "token": dyn_tok}),
    );
    assert_eq!(st, 200, "{b}");
    assert_eq!(
        b,
        json!({"valid": true, "registrar": "dynadot", "domain": "example.com"})
    );

    // 401 invalid-token: wrong secret, and a token of the wrong shape.
    let (st, b) = v(
        "dynadot",
        json!({"domain": "example.com", "token": format!("{DYN_KEY}:wrong")}),
    );
    assert_error(st, &b, 401, "invalid-token");
    assert_eq!(
        (b["registrar"].as_str(), b["domain"].as_str()),
        (Some("dynadot"), Some("example.com"))
    );
    let (st, b) = v(
        "godaddy",
        json!({"domain": "example.com", "token": "no-colon-here"}),
    );
    assert_error(st, &b, 401, "invalid-token");

    // 403 domain-not-in-account.
    let (st, b) = v(
        "dynadot",
        json!({"domain": "someone-else.com", "token": dyn_tok}),
    );
    assert_error(st, &b, 403, "domain-not-in-account");
    assert_eq!(b["domain"], "someone-else.com");

    // 403 account-not-eligible (GoDaddy ACCESS_DENIED for small accounts).
    fakes.godaddy.set_access_denied(true);
    let (st, b) = v(
        "godaddy",
        json!({"domain": "example.com", "token": format!("{GD_KEY}:{GD_SECRET}")}),
    );
    assert_error(st, &b, 403, "account-not-eligible");
    fakes.godaddy.set_access_denied(false);
    let (st, b) = v(
        "godaddy",
        json!({"domain": "example.com", "token": format!("{GD_KEY}:{GD_SECRET}")}),
    );
    assert_eq!(st, 200, "{b}");

    // 403 ip-not-whitelisted (Namecheap checks the connection's address).
    let nc_tok = format!("{NC_USER}:{NC_KEY}:127.0.0.1");
    let (st, b) = v(
        "namecheap",
        json!({"domain": "example.com", "token": nc_tok}),
    );
    assert_eq!(st, 200, "{b}");
    fakes
        .namecheap
        .set_whitelist(vec!["198.51.100.1".parse().unwrap()]);
    let (st, b) = v(
        "namecheap",
        json!({"domain": "example.com", "token": nc_tok}),
    );
    assert_error(st, &b, 403, "ip-not-whitelisted");
    fakes
        .namecheap
        .set_whitelist(vec!["127.0.0.1".parse().unwrap()]);

    // 429 rate-limited: a Retry-After longer than pdm sleeps through.
    fakes
        .dynadot
        .common()
        .rate_limit_next(3, Duration::from_secs(120));
    let (st, b) = v(
        "dynadot",
        json!({"domain": "example.com", "token": dyn_tok}),
    );
    assert_error(st, &b, 429, "rate-limited");
    fakes.dynadot.common().rate_limit_next(0, Duration::ZERO);

    // 502 api-unavailable: 5xx past the adapter's retries.
    fakes.dynadot.common().fail_next(10, 503);
    let (st, b) = v(
        "dynadot",
        json!({"domain": "example.com", "token": dyn_tok}),
    );
    assert_error(st, &b, 502, "api-unavailable");
    fakes.dynadot.common().fail_next(0, 503);

    // 501: Cloudflare cannot delegate a registered domain away, and says why.
    let (st, b) = set(
        "cloudflare",
        json!({"domain": "example.com", "token": CF_TOKEN, "nameservers": OUR_NS}),
    );
    assert_error(st, &b, 501, "set-ns-not-supported");
    assert!(
        b["detail"]
            .as_str()
            .unwrap()
            .contains("Cloudflare Registrar"),
        "{b}"
    );
    assert_eq!(fakes.cloudflare.common().counters.total_writes(), 0);

    // 422 invalid-nameservers (registries need two).
    let (st, b) = set(
        "dynadot",
        json!({"domain": "example.com", "token": dyn_tok, "nameservers": ["ns1.example.test"]}),
    );
    assert_error(st, &b, 422, "invalid-nameservers");

    // 200 set-ns: normalised, applied, read back, with the propagation hint.
    let (st, b) = set(
        "dynadot",
        json!({"domain": "example.com", "token": dyn_tok, "nameservers": ["NS2.example.test.", "ns1.example.test", "ns1.example.test"]}),
    );
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["success"], true);
    assert_eq!(b["nameservers"], json!(OUR_NS));
    assert_eq!(b["propagation"], "30-60 minutes typical");
    assert_eq!(b["changed"], true);
    assert_eq!(fakes.dynadot.ns("example.com"), OUR_NS);
    // Same again: read before write, nothing written.
    let writes = fakes.dynadot.common().counters.writes("example.com");
    let (st, b) = set(
        "dynadot",
        json!({"domain": "example.com", "token": dyn_tok, "nameservers": OUR_NS}),
    );
    assert_eq!((st, &b["changed"]), (200, &json!(false)), "{b}");
    assert_eq!(
        fakes.dynadot.common().counters.writes("example.com"),
        writes
    );

    // GoDaddy set-ns works too.
    let (st, b) = set(
        "godaddy",
        json!({"domain": "example.com", "token": format!("{GD_KEY}:{GD_SECRET}"), "nameservers": OUR_NS}),
    );
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["propagation"], "1-4 hours typical, up to 48 hours");

    // Nothing above echoed or logged a credential.
    let log = srv.log();
    for secret in [DYN_KEY, DYN_SECRET, GD_SECRET, NC_KEY, CF_TOKEN] {
        assert!(!log.contains(secret), "{secret} in the server log");
    }
}

/// A registrar's refusal reaches the caller (502 with the registrar's own
/// words) and the log; Dynadot NS flips register the hosts first, on a fresh
/// account and on one that has them already.
#[test]
fn registrar_refusals_keep_their_reason() {
    let fakes = Fakes::start(&["example.com", "second.com"]);
    let srv = PdmServer::start(Backend::Sqlite, child_config(&fakes, None, "")).unwrap();
    let tok = srv.admin_token();
    let set = |r: &str, body: Value| {
        srv.post(&format!("/api/v1/registrar/{r}/set-ns"), Some(&tok), &body)
    };
    let gd_tok = format!("{GD_KEY}:{GD_SECRET}");

    fakes.godaddy.set_protected("example.com", true);
    let (st, b) = set(
        "godaddy",
        json!({"domain": "example.com", "token": gd_tok, "nameservers": OUR_NS}),
    );
    assert_error(st, &b, 502, "registrar-error");
    let detail = b["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("not eligible to have its nameservers changed"),
        "{b}"
    );
    assert_eq!(b["registrar"], "godaddy");
    assert_eq!(b["domain"], "example.com");
    let log = srv.log();
    assert!(
        log.contains("not eligible to have its nameservers changed"),
        "the reason is not in the log:\n{}",
        tail(&log, 2000)
    );
    assert!(!log.contains(GD_SECRET) && !detail.contains(GD_SECRET));
    assert_eq!(fakes.godaddy.ns("example.com"), OLD_NS);

    // Dynadot refuses with its own message: the same path.
    fakes
        .dynadot
        .refuse_next_write("Domain is locked by the registry");
    let (st, b) = set(
        "dynadot",
        json!({"domain": "example.com", "token": dynadot_token(), "nameservers": OUR_NS}),
    );
    assert_error(st, &b, 502, "registrar-error");
    assert!(
        b["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("locked by the registry"),
        "{b}"
    );

    // Dynadot on an account that already holds the hosts: still a flip.
    for h in OUR_NS {
        fakes.dynadot.add_external_host(h);
    }
    let (st, b) = set(
        "dynadot",
        json!({"domain": "second.com", "token": dynadot_token(), "nameservers": OUR_NS}),
    );
    assert_eq!(st, 200, "{b}");
    assert_eq!(fakes.dynadot.ns("second.com"), OUR_NS);
}

/// `POST /api/v1/registrar/{r}/set-dns`: full replace on the registrar's own
/// nameservers with a read-back (Dynadot, Namecheap), 501 elsewhere, and
/// every malformed record refused before anything is sent.
#[test]
fn set_dns_replaces_records_at_the_registrar() {
    let fakes = Fakes::start(&["example.com"]);
    let srv = PdmServer::start(Backend::Sqlite, child_config(&fakes, None, "")).unwrap();
    let tok = srv.admin_token();
    let set = |r: &str, body: Value| {
        srv.post(&format!("/api/v1/registrar/{r}/set-dns"), Some(&tok), &body)
    };
    let nc_tok = format!("{NC_USER}:{NC_KEY}:127.0.0.1");
    let records = json!([
        {"subhost": "", "type": "A", "value": "192.0.2.10", "ttl": 600},
        {"subhost": "www", "type": "cname", "value": "example.com.", "ttl": 600},
        {"subhost": "", "type": "MX", "value": "mail.example.com", "ttl": 600, "priority": 10},
        {"subhost": "", "type": "TXT", "value": "v=spf1 -all", "ttl": 600},
    ]);

    let (st, b) = srv.post("/api/v1/registrar/namecheap/set-dns", None, &json!({}));
    assert_error(st, &b, 401, "unauthorized");

    // Validation: each a 422 invalid-records naming the record; nothing is sent.
    let before = fakes.namecheap.host_records("example.com");
    for (bad, why) in [
        (json!([]), "at least one"),
        (json!([{"type": "SRV", "value": "x"}]), "records[0]: type"),
        (json!([{"type": "A", "value": ""}]), "value is required"),
        (
            json!([{"type": "A", "value": "1.2.3.4", "ttl": -1}]),
            "ttl -1",
        ),
        (
            json!([{"type": "A", "value": "1.2.3.4"}, {"type": "MX", "value": "mx.example.com", "priority": -5}]),
            "records[1]: priority -5",
        ),
        (json!([{"type": "A", "value": "not-an-ip"}]), "IPv4"),
        (json!([{"type": "AAAA", "value": "192.0.2.1"}]), "IPv6"),
    ] {
        let (st, b) = set(
            "namecheap",
            json!({"domain": "example.com", "token": nc_tok, "records": bad}),
        );
        assert_error(st, &b, 422, "invalid-records");
        assert!(
            b["detail"].as_str().unwrap_or_default().contains(why),
            "{why}: {b}"
        );
        assert_eq!(b["registrar"], "namecheap");
    }
    assert_eq!(fakes.namecheap.host_records("example.com"), before);

    // 501 for registrars without such an API.
    let (st, b) = set(
        "godaddy",
        json!({"domain": "example.com", "token": format!("{GD_KEY}:{GD_SECRET}"), "records": records}),
    );
    assert_error(st, &b, 501, "set-dns-not-supported");
    assert_eq!(b["registrar"], "godaddy");

    // Namecheap: applied, read back; the parking records are gone (full replace).
    let (st, b) = set(
        "namecheap",
        json!({"domain": "example.com", "token": nc_tok, "records": records}),
    );
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["success"], true);
    assert_eq!(b["propagation"], "1-2 hours typical, up to 48 hours");
    let got = b["records"].as_array().expect("records").clone();
    assert_eq!(got.len(), 4, "{b}");
    assert!(got
        .iter()
        .any(|r| r["type"] == "MX" && r["priority"] == 10 && r["value"] == "mail.example.com"));
    assert!(got
        .iter()
        .any(|r| r["subhost"] == "www" && r["type"] == "CNAME"));
    let stored = fakes.namecheap.host_records("example.com");
    assert_eq!(stored.len(), 4, "{stored:?}");
    assert!(stored
        .iter()
        .any(|r| r.rtype == "A" && r.address == "192.0.2.10" && r.name == "@"));

    // Dynadot: the same records land, read back the same way.
    let (st, b) = set(
        "dynadot",
        json!({"domain": "example.com", "token": dynadot_token(), "records": records}),
    );
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["records"].as_array().map(Vec::len), Some(4), "{b}");
    let (dns, ttl) = fakes.dynadot.dns("example.com").expect("dynadot records");
    assert_eq!((dns.len(), ttl), (4, 600), "{dns:?}");
    assert!(dns
        .iter()
        .any(|r| r.sub_host.as_deref() == Some("www") && r.value1.contains("example.com")));

    let log = srv.log();
    for secret in [DYN_KEY, DYN_SECRET, NC_KEY] {
        assert!(!log.contains(secret), "{secret} in the server log");
    }
}

// ---------------------------------------------------------------------------------------------
// Managed byo domains
// ---------------------------------------------------------------------------------------------

fn byo_api_end_to_end(b: Backend) {
    let Some(parent) = Parent::start(b, PARENT, CHILD, &OLD_NS) else {
        return;
    };
    let fakes = Fakes::start(&[CHILD]);
    let srv = start_or_skip!(b, child_config(&fakes, Some(parent.srv.dns_addr), ""));
    let tok = srv.admin_token();

    let (st, body) = srv.post(
        "/api/v1/domains",
        Some(&tok),
        &json!({"domain": CHILD, "mode": "byo-api", "registrar": "dynadot", "credentials": dynadot_token()}),
    );
    assert_eq!(st, 202, "{body}");
    assert_eq!(body["nameservers"], json!(OUR_NS));
    assert_eq!(body["dsRequired"], true, "{body}");
    assert_eq!(body["ds"].as_array().map(Vec::len), Some(1), "{body}");
    assert!(
        ["pending", "delegating", "waiting-for-parent"].contains(&state(&body)),
        "{body}"
    );

    // The zone is served (signed) right away.
    assert!(
        wait_for(Duration::from_secs(5), || {
            let soa = srv.dig(CHILD, hickory_proto::rr::RecordType::SOA);
            soa.rcode == "NOERROR" && soa.aa
        }),
        "{CHILD} SOA not served"
    );
    let dnskey = srv.dig(CHILD, hickory_proto::rr::RecordType::DNSKEY);
    assert_eq!(
        dnskey
            .answer_data(hickory_proto::rr::RecordType::DNSKEY)
            .len(),
        1,
        "{dnskey}"
    );

    // pdm flips NS and sets DS at the fake registrar, then waits for the parent.
    let st_body = wait_domain(&srv, CHILD, Duration::from_secs(30), |b| {
        state(b) == "waiting-for-parent"
    });
    assert_eq!(fakes.dynadot.ns(CHILD), OUR_NS);
    let ds = fakes.dynadot.ds(CHILD).expect("DS set at the registrar");
    let ds_text = format!(
        "{} {} {} {}",
        ds.key_tag, ds.algorithm, ds.digest_type, ds.digest
    );
    assert!(
        st_body["ds"][0]
            .as_str()
            .unwrap()
            .to_lowercase()
            .ends_with(&ds_text.to_lowercase()),
        "registrar DS {ds_text} vs status {st_body}"
    );
    // The parent still shows the old delegation: the checker says so per server.
    let st_body = wait_domain(&srv, CHILD, Duration::from_secs(10), |b| {
        !b["propagation"].is_null()
    });
    let server = &st_body["propagation"]["servers"][0];
    assert_eq!(
        server["server"],
        parent.srv.dns_addr.to_string(),
        "{st_body}"
    );
    assert_eq!(server["ns"], json!(OLD_NS), "{st_body}");
    assert_eq!(server["nsMatch"], false);
    assert_eq!(server["dsStatus"], "absent");
    assert_eq!(state(&st_body), "waiting-for-parent");

    // The registry publishes what the registrar now holds.
    let ns_now = fakes.dynadot.ns(CHILD);
    let ns_refs: Vec<&str> = ns_now.iter().map(String::as_str).collect();
    parent.delegate(CHILD, &ns_refs, &[ds_text]);
    let done = wait_domain(&srv, CHILD, Duration::from_secs(30), |b| {
        state(b) == "active"
    });
    let server = &done["propagation"]["servers"][0];
    assert_eq!(
        (server["nsMatch"].as_bool(), server["dsStatus"].as_str()),
        (Some(true), Some("match")),
        "{done}"
    );
    assert_eq!(done["propagation"]["converged"], true);
    assert!(done["activatedAt"].is_string());
    let op = &done["operation"];
    assert_eq!(op["step"], "done");
    assert!(op["nextRunAt"].is_null());
    let steps: Vec<&str> = op["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["step"].as_str())
        .collect();
    for s in ["validate", "set-ns", "set-ds", "verify-parent"] {
        assert!(steps.contains(&s), "history lacks {s}: {op}");
    }
    // One NS write and one DS write, no more.
    assert_eq!(fakes.dynadot.common().counters.writes(CHILD), 2);
}

fn byo_manual_pending_then_active(b: Backend) {
    let Some(parent) = Parent::start(b, PARENT, CHILD, &OLD_NS) else {
        return;
    };
    let fakes = Fakes::start(&[]);
    let srv = start_or_skip!(b, child_config(&fakes, Some(parent.srv.dns_addr), ""));
    let tok = srv.admin_token();
    let (st, body) = srv.post(
        "/api/v1/domains",
        Some(&tok),
        &json!({"domain": CHILD, "mode": "byo-manual"}),
    );
    assert_eq!(st, 202, "{body}");
    assert_eq!(state(&body), "pending");
    assert!(
        body["next"].as_str().unwrap().contains("ns1.example.test"),
        "{body}"
    );
    let ds_line = body["ds"][0].as_str().unwrap().to_string();
    let ds_rdata = ds_line.split(" IN DS ").nth(1).unwrap().to_string();

    // Still the old delegation at the parent: pending, with the mismatch shown.
    let st_body = wait_domain(&srv, CHILD, Duration::from_secs(10), |b| {
        !b["propagation"].is_null() && b["operation"]["lastError"].is_string()
    });
    assert_eq!(state(&st_body), "pending");
    assert_eq!(st_body["propagation"]["converged"], false);
    assert!(
        st_body["operation"]["lastError"]
            .as_str()
            .unwrap()
            .contains("old-registrar"),
        "{st_body}"
    );

    // NS alone is not enough when the zone is signed: the DS must follow.
    parent.delegate(CHILD, &OUR_NS, &[]);
    let st_body = wait_domain(&srv, CHILD, Duration::from_secs(10), |b| {
        b["propagation"]["servers"][0]["nsMatch"] == true
    });
    assert_eq!(state(&st_body), "pending");
    assert_eq!(st_body["propagation"]["servers"][0]["dsStatus"], "absent");

    // The customer adds the DS: active.
    std::thread::sleep(Duration::from_millis(500));
    parent.delegate(CHILD, &OUR_NS, &[ds_rdata]);
    let done = wait_domain(&srv, CHILD, Duration::from_secs(20), |b| {
        state(b) == "active"
    });
    assert_eq!(done["propagation"]["servers"][0]["dsStatus"], "match");

    // Listing shows it; creating it again conflicts.
    let (st, list) = srv.get("/api/v1/domains", Some(&tok));
    assert_eq!(st, 200);
    assert_eq!(list["domains"][0]["domain"], CHILD);
    let (st, b2) = srv.post(
        "/api/v1/domains",
        Some(&tok),
        &json!({"domain": CHILD, "mode": "byo-manual"}),
    );
    assert_error(st, &b2, 409, "domain-exists");

    // DELETE removes zone, keys and operation.
    let (st, del) = srv.delete(&format!("/api/v1/domains/{CHILD}"), Some(&tok), None);
    assert_eq!(st, 200, "{del}");
    let (st, b3) = srv.get(&format!("/api/v1/domains/{CHILD}"), Some(&tok));
    assert_error(st, &b3, 404, "not-found");
    assert!(wait_for(Duration::from_secs(5), || srv
        .dig(CHILD, hickory_proto::rr::RecordType::SOA)
        .rcode
        == "REFUSED"));
    let (st, b4) = srv.get(&format!("/api/v1/zones/{CHILD}/dnssec"), Some(&tok));
    assert_eq!(st, 404, "{b4}");
}

fn byo_requests_are_checked(b: Backend) {
    let fakes = Fakes::start(&["example.com"]);
    let srv = start_or_skip!(b, child_config(&fakes, None, ""));
    let tok = srv.admin_token();
    let post = |v: Value| srv.post("/api/v1/domains", Some(&tok), &v);
    let pool_tok = srv.token_with_scope("pool:example.test");
    let (st, e) = srv.post(
        "/api/v1/domains",
        Some(&pool_tok),
        &json!({"domain": "x.com", "mode": "byo-manual"}),
    );
    assert_error(st, &e, 403, "forbidden");
    let (st, e) = post(json!({"mode": "byo-manual"}));
    assert_error(st, &e, 422, "missing-domain");
    let (st, e) = post(json!({"domain": "x.com", "mode": "auto"}));
    assert_error(st, &e, 422, "invalid-mode");
    let (st, e) = post(json!({"domain": "x.com", "mode": "byo-api"}));
    assert_error(st, &e, 422, "missing-registrar");
    let (st, e) = post(json!({"domain": "x.com", "mode": "byo-api", "registrar": "dynadot"}));
    assert_error(st, &e, 422, "missing-credentials");
    let (st, e) = post(
        json!({"domain": "x.com", "mode": "byo-api", "registrar": "dynadot", "credentials": {"api_key": 5}}),
    );
    assert_error(st, &e, 422, "invalid-credentials");
    let (st, e) = post(
        json!({"domain": "x.com", "mode": "byo-api", "registrar": "cloudflare", "credentials": CF_TOKEN}),
    );
    assert_error(st, &e, 422, "set-ns-not-supported");
    let (st, e) = post(json!({"domain": "shop.example.test", "mode": "byo-manual"}));
    assert_error(st, &e, 409, "pool-domain");
    let (st, e) = post(
        json!({"domain": "a.b.example.com", "mode": "byo-api", "registrar": "dynadot", "credentials": dynadot_token()}),
    );
    assert_error(st, &e, 422, "invalid-domain");
    // The structured form is accepted too, and a failing validation fails the operation.
    let (st, body) = post(json!({
        "domain": "example.com", "mode": "byo-api", "registrar": "dynadot",
        "credentials": {"api_key": DYN_KEY, "api_secret": "WRONG-secret-xyz"}
    }));
    assert_eq!(st, 202, "{body}");
    let failed = wait_domain(&srv, "example.com", Duration::from_secs(20), |b| {
        state(b) == "failed"
    });
    assert!(
        failed["operation"]["lastError"]
            .as_str()
            .unwrap()
            .starts_with("invalid-token"),
        "{failed}"
    );
    assert_eq!(fakes.dynadot.common().counters.total_writes(), 0);
}

// ---------------------------------------------------------------------------------------------
// Crash safety: kill -9 mid-flip, restart, the NS is written once
// ---------------------------------------------------------------------------------------------

fn crash_mid_flip_writes_once(b: Backend) {
    let fakes = Fakes::start(&[CHILD]);
    // Unsigned zone: the only registrar write is the NS flip.
    let mut srv = start_or_skip!(
        b,
        child_config(
            &fakes,
            Some("127.0.0.1:9".parse().unwrap()),
            "[dnssec]\nenabled = false\n"
        )
    );
    let tok = srv.admin_token();
    fakes.dynadot.set_latency(Duration::from_millis(1500));
    let (st, body) = srv.post(
        "/api/v1/domains",
        Some(&tok),
        &json!({"domain": CHILD, "mode": "byo-api", "registrar": "dynadot", "credentials": dynadot_token()}),
    );
    assert_eq!(st, 202, "{body}");
    let put = format!("PUT /restful/v2/domains/{CHILD}/nameservers");
    assert!(
        wait_for(Duration::from_secs(30), || fakes
            .dynadot
            .common()
            .counters
            .requests(&put)
            >= 1),
        "the flip never reached the registrar: {:?}",
        fakes.dynadot.common().counters.all_requests()
    );
    srv.kill9();
    fakes.dynadot.set_latency(Duration::ZERO);
    srv.restart();
    let after = wait_domain(&srv, CHILD, Duration::from_secs(30), |b| {
        state(b) == "waiting-for-parent"
    });
    assert_eq!(fakes.dynadot.ns(CHILD), OUR_NS);
    assert_eq!(fakes.dynadot.common().counters.writes(CHILD), 1, "{after}");
    let history = after["operation"]["history"].as_array().unwrap();
    assert!(
        history
            .iter()
            .any(|a| a["step"] == "set-ns" && a["outcome"] == "abandoned"),
        "the killed attempt is recorded as abandoned: {history:#?}"
    );
    assert!(history
        .iter()
        .any(|a| a["step"] == "set-ns" && a["outcome"] == "advanced"));
}

fn transient_5xx_is_retried(b: Backend) {
    let fakes = Fakes::start(&[CHILD]);
    let srv = start_or_skip!(
        b,
        child_config(
            &fakes,
            Some("127.0.0.1:9".parse().unwrap()),
            "[dnssec]\nenabled = false\n"
        )
    );
    let tok = srv.admin_token();
    fakes.dynadot.fail_next_write(503);
    let (st, body) = srv.post(
        "/api/v1/domains",
        Some(&tok),
        &json!({"domain": CHILD, "mode": "byo-api", "registrar": "dynadot", "credentials": dynadot_token()}),
    );
    assert_eq!(st, 202, "{body}");
    let after = wait_domain(&srv, CHILD, Duration::from_secs(30), |b| {
        state(b) == "waiting-for-parent"
    });
    assert_eq!(fakes.dynadot.common().counters.writes(CHILD), 1);
    let history = after["operation"]["history"].as_array().unwrap();
    assert!(
        history.iter().any(|a| a["step"] == "set-ns"
            && a["outcome"] == "retry"
            && a["detail"]
                .as_str()
                .unwrap_or("")
                .starts_with("api-unavailable")),
        "{history:#?}"
    );
}

fn replicas_never_run_one_operation_twice(b: Backend) {
    let names: Vec<String> = (0..4).map(|i| format!("shop{i}.co.uk")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let fakes = Fakes::start(&refs);
    fakes.dynadot.set_max_concurrency(64);
    fakes.dynadot.set_latency(Duration::from_millis(300));
    // The parent is checked once a minute, so the history keeps every step.
    let cfg = common::Config::default_test()
        .extra(&fakes.toml())
        .extra(&fast_ops_toml_polling(
            Some("127.0.0.1:9".parse().unwrap()),
            60,
        ))
        .extra("[dnssec]\nenabled = false\n");
    let a = start_or_skip!(b, cfg);
    let r = a.replica();
    let tok = a.admin_token();
    for n in &names {
        let req = json!({"domain": n, "mode": "byo-api", "registrar": "dynadot", "credentials": dynadot_token()});
        // Two processes share one SQLite file: on a loaded machine one may
        // wait out the busy timeout and answer 503 ("nothing was changed,
        // retry later"), which a client retries.
        let mut tries = 0;
        let (st, body) = loop {
            let (st, body) = a.post("/api/v1/domains", Some(&tok), &req);
            tries += 1;
            if st != 503 || tries == 5 {
                break (st, body);
            }
            std::thread::sleep(Duration::from_secs(1));
        };
        assert_eq!(st, 202, "{body}");
    }
    for n in &names {
        let st = wait_domain(&r, n, Duration::from_secs(60), |b| {
            state(b) == "waiting-for-parent"
        });
        assert_eq!(fakes.dynadot.common().counters.writes(n), 1, "{n}: {st}");
        let history = st["operation"]["history"].as_array().unwrap();
        for step in ["validate", "set-ns"] {
            let runs = history.iter().filter(|h| h["step"] == step).count();
            assert_eq!(runs, 1, "{n}: {step} ran {runs} times: {history:#?}");
        }
    }
    let workers: std::collections::BTreeSet<String> = [&a, &r]
        .iter()
        .flat_map(|s| {
            let log = s.log();
            log.lines()
                .filter(|l| l.contains("operations worker started"))
                .map(|l| l.rsplit('=').next().unwrap_or("").to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(workers.len(), 2, "two workers: {workers:?}");
}

backend_tests!(
    replicas_never_run_one_operation_twice,
    byo_api_end_to_end,
    byo_manual_pending_then_active,
    byo_requests_are_checked,
    crash_mid_flip_writes_once,
    transient_5xx_is_retried,
);

// ---------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------

#[test]
fn credentials_never_leak() {
    let Some(parent) = Parent::start(Backend::Sqlite, PARENT, CHILD, &OLD_NS) else {
        return;
    };
    let fakes = Fakes::start(&[CHILD, "example.com"]);
    let srv = PdmServer::start(
        Backend::Sqlite,
        child_config(&fakes, Some(parent.srv.dns_addr), ""),
    )
    .unwrap();
    let tok = srv.admin_token();
    let mut seen = String::new();
    let mut call = |method: &str, path: &str, body: Option<Value>| {
        let r = match &body {
            Some(v) => srv.request(method, path, Some(&tok), Body::Json(v), &[]),
            None => srv.request(method, path, Some(&tok), Body::None, &[]),
        };
        seen.push_str(&r.text);
        seen.push('\n');
        r
    };
    let t = dynadot_token();
    assert_eq!(
        call(
            "POST",
            "/api/v1/registrar/dynadot/validate",
            Some(json!({"domain": CHILD, "token": t}))
        )
        .status,
        200
    );
    call(
        "POST",
        "/api/v1/registrar/dynadot/validate",
        Some(json!({"domain": CHILD, "token": format!("{DYN_KEY}:bad")})),
    );
    call(
        "POST",
        "/api/v1/registrar/dynadot/set-ns",
        Some(json!({"domain": "example.com", "token": t, "nameservers": OUR_NS})),
    );
    let r = call(
        "POST",
        "/api/v1/domains",
        Some(json!({"domain": CHILD, "mode": "byo-api", "registrar": "dynadot", "credentials": t})),
    );
    assert_eq!(r.status, 202, "{}", r.text);
    wait_domain(&srv, CHILD, Duration::from_secs(30), |b| {
        state(b) == "waiting-for-parent"
    });
    let ns_now = fakes.dynadot.ns(CHILD);
    let ns_refs: Vec<&str> = ns_now.iter().map(String::as_str).collect();
    let ds = fakes.dynadot.ds(CHILD).unwrap();
    parent.delegate(
        CHILD,
        &ns_refs,
        &[format!(
            "{} {} {} {}",
            ds.key_tag, ds.algorithm, ds.digest_type, ds.digest
        )],
    );
    wait_domain(&srv, CHILD, Duration::from_secs(30), |b| {
        state(b) == "active"
    });
    call("GET", &format!("/api/v1/domains/{CHILD}"), None);
    call("GET", "/api/v1/domains", None);

    let db = srv.db_url().trim_start_matches("sqlite://").to_string();
    let mut stored = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        if let Ok(bytes) = std::fs::read(format!("{db}{suffix}")) {
            stored.extend(bytes);
        }
    }
    assert!(stored.len() > 10_000, "database files not found at {db}");
    let log = srv.log();
    for secret in [DYN_KEY, DYN_SECRET, t.as_str()] {
        assert!(!seen.contains(secret), "{secret} in an HTTP response");
        assert!(!log.contains(secret), "{secret} in the server log");
        let needle = secret.as_bytes();
        assert!(
            !stored.windows(needle.len()).any(|w| w == needle),
            "{secret} in the database file in plain text"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// --fake-registrars
// ---------------------------------------------------------------------------------------------

#[cfg(feature = "fake-registrars")]
#[test]
fn fake_registrars_flag_serves_demo_accounts() {
    let srv = PdmServer::start(
        Backend::Sqlite,
        common::Config::default_test().extra("[registrars]\nfake = true\n"),
    )
    .unwrap();
    let tok = srv.admin_token();
    let (st, b) = srv.post(
        "/api/v1/registrar/dynadot/validate",
        Some(&tok),
        &json!({"domain": "acme-dynadot.com", "token": "fake-dynadot-key:fake-dynadot-secret"}),
    );
    assert_eq!(st, 200, "{b}");
    assert!(srv.log().contains("Try byo-api offline"), "{}", srv.log());
}

/// A production build (no `fake-registrars`) has no `--fake-registrars` flag
/// and refuses `[registrars] fake = true` with a clear reason.
#[cfg(not(feature = "fake-registrars"))]
#[test]
fn fake_registrars_need_the_feature() {
    use std::process::Command;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("pdm.toml");
    std::fs::write(
        &cfg,
        common::Config::default_test()
            .extra("[registrars]\nfake = true\n")
            .to_toml(),
    )
    .unwrap();
    let out = Command::new(common::PDM)
        .arg("serve")
        .arg("--config")
        .arg(&cfg)
        .arg("--database")
        .arg(format!("sqlite://{}", dir.path().join("pdm.db").display()))
        .args(["--http", "127.0.0.1:0", "--dns", "127.0.0.1:0"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("built without fake-registrars"), "{err}");
    let out = Command::new(common::PDM)
        .args(["serve", "--fake-registrars"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("--fake-registrars"), "{err}");
}

//! pdm's RRset API end to end, on SQLite and Postgres: every write is
//! served (and signed) when it answers, bulk changes are all or nothing,
//! bad input names the offending RRset and changes nothing, credentials are
//! held to their policies, and every change is audited.

#[macro_use]
mod common;
use common::validators::{delv, ds_lines, have_tools};
use common::*;
use hickory_proto::rr::RecordType;
use serde_json::{json, Value};

const ZONE: &str = "acme.example.test";

fn rrsets(z: &str) -> String {
    format!("/api/v1/zones/{z}/rrsets")
}

/// The zone's serial and its export: what must not move after a refusal.
fn state(srv: &PdmServer) -> (String, String) {
    let r = srv.request(
        "GET",
        &format!("/api/v1/zones/{ZONE}/export"),
        Some(&srv.admin_token()),
        Body::None,
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let soa = srv
        .dig(&format!("{ZONE}."), RecordType::SOA)
        .answer_data(RecordType::SOA);
    (soa.join(" "), r.text)
}

fn write(srv: &PdmServer, method: &str, path: &str, token: &str, body: &Value) -> Resp {
    srv.request(method, path, Some(token), Body::Json(body), &[])
}

/// Imports the master file `file` into [`ZONE`] (`replace`: deleting what it lacks).
fn import(srv: &PdmServer, token: &str, replace: bool, file: &[u8]) -> Resp {
    let query = if replace { "?replace=true" } else { "" };
    let path = format!("/api/v1/zones/{ZONE}/import{query}");
    srv.request("POST", &path, Some(token), Body::Raw(file), &[])
}

fn crud_is_served_on_return(b: Backend) {
    let Some(srv) = PdmServer::start(b, Config::default_test()) else {
        return;
    };
    srv.allocate("example.test", "acme", "192.0.2.10", None);
    let admin = srv.admin_token();
    let addr = srv.zone_dns_addr();

    // Create: served at once, over UDP and TCP.
    let r = write(
        &srv,
        "POST",
        &rrsets(ZONE),
        &admin,
        &json!([
            {"subname": "mail", "type": "A", "ttl": 300, "records": ["192.0.2.25"]},
            {"subname": "", "type": "MX", "ttl": 300, "records": ["10 mail.acme.example.test."]},
            {"subname": "_acme-challenge", "type": "TXT", "ttl": 60, "records": ["\"token-1\""]},
        ]),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body.as_array().map(Vec::len), Some(3), "{}", r.body);
    assert_eq!(
        dig_at(addr, "mail.acme.example.test.", RecordType::A)
            .unwrap()
            .answer_data(RecordType::A),
        ["192.0.2.25"]
    );
    assert_eq!(
        dig_tcp_at(addr, "acme.example.test.", RecordType::MX)
            .unwrap()
            .answer_data(RecordType::MX),
        ["10 mail.acme.example.test."]
    );
    assert_eq!(
        dig_at(addr, "_acme-challenge.acme.example.test.", RecordType::TXT)
            .unwrap()
            .answer_data(RecordType::TXT),
        ["token-1"]
    );

    // Create again: 409 names the RRset.
    let r = write(
        &srv,
        "POST",
        &rrsets(ZONE),
        &admin,
        &json!({"subname": "mail", "type": "A", "ttl": 300, "records": ["192.0.2.26"]}),
    );
    assert_error(r.status, &r.body, 409, "rrset-exists");
    assert!(r.text.contains("mail.acme.example.test."), "{}", r.text);

    // Replace one, then patch only its TTL.
    let one = format!("{}/mail/A", rrsets(ZONE));
    let r = write(
        &srv,
        "PUT",
        &one,
        &admin,
        &json!({"ttl": 120, "records": ["192.0.2.27", "192.0.2.28"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let mut got = dig_at(addr, "mail.acme.example.test.", RecordType::A)
        .unwrap()
        .answer_data(RecordType::A);
    got.sort();
    assert_eq!(got, ["192.0.2.27", "192.0.2.28"]);
    // Its change id is its own change: this zone, at the serial served now.
    let id = r.change_id.expect("a write names its change");
    let (st, change) = srv.get(&format!("/api/v1/changes/{id}"), Some(&admin));
    assert_eq!(st, 200, "{change}");
    assert_eq!(change["zone"], "acme.example.test.", "{change}");
    assert_eq!(
        change["serial"].as_u64(),
        Some(u64::from(served_serial(&srv, ZONE))),
        "{change}"
    );
    let r = write(&srv, "PATCH", &one, &admin, &json!({"ttl": 90}));
    assert_eq!(
        (
            r.status,
            r.body["ttl"].as_u64(),
            r.body["records"].as_array().map(Vec::len)
        ),
        (200, Some(90), Some(2)),
        "{}",
        r.text
    );
    let (st, v) = srv.get(&one, Some(&admin));
    assert_eq!((st, v["ttl"].as_u64()), (200, Some(90)), "{v}");

    // The template's records are listed and flagged.
    let (st, v) = srv.get(&format!("{}?subname=www", rrsets(ZONE)), Some(&admin));
    assert_eq!(st, 200, "{v}");
    let (st, all) = srv.get(&rrsets(ZONE), Some(&admin));
    assert_eq!(st, 200);
    let apex_a = all
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["subname"] == "" && r["type"] == "A")
        .expect("template apex A");
    assert_eq!(
        (apex_a["template"].as_bool(), apex_a["managed"].as_bool()),
        (Some(true), Some(false)),
        "{apex_a}"
    );
    let soa = all
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "SOA")
        .expect("SOA listed");
    assert_eq!(soa["managed"].as_bool(), Some(true));
    let _ = v;

    // Bulk PATCH, all or nothing: a bad second RRset keeps the first out.
    let before = state(&srv);
    let r = write(
        &srv,
        "PATCH",
        &rrsets(ZONE),
        &admin,
        &json!([
            {"subname": "ok", "type": "A", "ttl": 300, "records": ["192.0.2.40"]},
            {"subname": "bad", "type": "A", "ttl": 300, "records": ["192.0.2.999"]},
        ]),
    );
    assert_error(r.status, &r.body, 422, "invalid-rdata");
    assert_eq!(r.body["rrset"], "bad.acme.example.test. A", "{}", r.body);
    assert_eq!(
        state(&srv),
        before,
        "a refused bulk change changed the zone"
    );
    // (The template's wildcard answers for names that have no A of their own.)
    assert_eq!(
        dig_at(addr, "ok.acme.example.test.", RecordType::A)
            .unwrap()
            .answer_data(RecordType::A),
        ["192.0.2.10"]
    );

    // Delete: gone from DNS at once; deleting again is still 204.
    let r = srv.request("DELETE", &one, Some(&admin), Body::None, &[]);
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(
        dig_at(addr, "mail.acme.example.test.", RecordType::A)
            .unwrap()
            .answer_data(RecordType::A),
        ["192.0.2.10"]
    );
    assert_eq!(
        srv.request("DELETE", &one, Some(&admin), Body::None, &[])
            .status,
        204
    );

    // Signed on return: delv validates a new TXT, and the denial of a deleted one.
    if have_tools(&["delv"]) {
        let ds = ds_lines(&srv, "example.test");
        delv(
            addr,
            &ds,
            "example.test",
            "_acme-challenge.acme.example.test",
            "TXT",
        )
        .assert_secure_positive();
        let r = write(
            &srv,
            "POST",
            &rrsets(ZONE),
            &admin,
            &json!({"subname": "gone", "type": "TXT", "ttl": 60, "records": ["\"x\""]}),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        delv(addr, &ds, "example.test", "gone.acme.example.test", "TXT").assert_secure_positive();
        let r = srv.request(
            "DELETE",
            &format!("{}/gone/TXT", rrsets(ZONE)),
            Some(&admin),
            Body::None,
            &[],
        );
        assert_eq!(r.status, 204);
        delv(addr, &ds, "example.test", "gone.acme.example.test", "TXT").assert_secure_negative();
    }
}

fn bad_input_changes_nothing(b: Backend) {
    let Some(srv) = PdmServer::start(b, Config::default_test()) else {
        return;
    };
    srv.allocate("example.test", "acme", "192.0.2.10", None);
    let admin = srv.admin_token();
    let r = write(
        &srv,
        "POST",
        &rrsets(ZONE),
        &admin,
        &json!({"subname": "www2", "type": "A", "ttl": 300, "records": ["192.0.2.1"]}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let before = state(&srv);
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"subname": "x", "type": "A", "ttl": 300, "records": ["not-an-address"]}),
            "invalid-rdata",
        ),
        (
            json!({"subname": "x", "type": "CNAME", "ttl": 300, "records": ["relative"]}),
            "invalid-rdata",
        ),
        (
            json!({"subname": "x", "type": "A", "ttl": 300, "records": ["192.0.2.1 192.0.2.2"]}),
            "invalid-rdata",
        ),
        (
            json!({"subname": "www2", "type": "CNAME", "ttl": 300, "records": ["elsewhere.test."]}),
            "cname-conflict",
        ),
        (
            json!({"subname": "", "type": "CNAME", "ttl": 300, "records": ["elsewhere.test."]}),
            "cname-conflict",
        ),
        (
            json!({"subname": "", "type": "SOA", "ttl": 300, "records": ["a.test. b.test. 1 2 3 4 5"]}),
            "managed-rrset",
        ),
        (
            json!({"subname": "", "type": "NS", "ttl": 300, "records": ["ns.elsewhere.test."]}),
            "managed-rrset",
        ),
        (
            json!({"subname": "", "type": "DNSKEY", "ttl": 300, "records": ["257 3 13 AAAA"]}),
            "managed-rrset",
        ),
        (
            json!({"subname": "x", "type": "A", "ttl": 5, "records": ["192.0.2.1"]}),
            "ttl-out-of-range",
        ),
        (
            json!({"subname": "x", "type": "BOGUS", "ttl": 300, "records": ["1"]}),
            "invalid-type",
        ),
        (
            json!({"subname": "x.", "type": "A", "ttl": 300, "records": ["192.0.2.1"]}),
            "invalid-name",
        ),
        (
            json!({"subname": "d", "type": "DS", "ttl": 300, "records": [format!("1 13 2 {}", "ab".repeat(32))]}),
            "delegation-rule",
        ),
        // A SHA-256 digest one hex digit short (hickory alone would keep 31 bytes).
        (
            json!({"subname": "d", "type": "DS", "ttl": 300, "records": [format!("1 13 2 {}", &"ab".repeat(32)[1..])]}),
            "invalid-rdata",
        ),
    ];
    for (body, code) in &cases {
        let r = write(&srv, "POST", &rrsets(ZONE), &admin, body);
        assert_error(r.status, &r.body, 422, code);
        assert!(
            r.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{}",
            r.body
        );
    }
    // Not this zone, and not a zone at all.
    let r = write(
        &srv,
        "POST",
        &rrsets("nope.example.test"),
        &admin,
        &json!({"subname": "x", "type": "A", "ttl": 300, "records": ["192.0.2.1"]}),
    );
    assert_error(r.status, &r.body, 404, "zone-not-found");
    // The pool zone cannot write into its child.
    let r = write(
        &srv,
        "POST",
        &rrsets("example.test"),
        &admin,
        &json!({"subname": "www.acme", "type": "A", "ttl": 300, "records": ["192.0.2.1"]}),
    );
    assert_error(r.status, &r.body, 422, "inside-child-zone");
    // Malformed JSON and oversized bodies.
    let r = srv.request(
        "POST",
        &rrsets(ZONE),
        Some(&admin),
        Body::Raw(b"{not json"),
        &[],
    );
    assert_error(r.status, &r.body, 400, "invalid-body");
    let huge =
        json!({"subname": "big", "type": "TXT", "ttl": 300, "records": ["\"x\"".repeat(30_000)]});
    let r = write(&srv, "POST", &rrsets(ZONE), &admin, &huge);
    assert_error(r.status, &r.body, 413, "payload-too-large");
    assert_eq!(state(&srv), before, "a refused write changed the zone");
}

fn policies_hold_credentials_to_their_rules(b: Backend) {
    let Some(srv) = PdmServer::start(b, Config::default_test()) else {
        return;
    };
    srv.allocate("example.test", "acme", "192.0.2.10", None);
    srv.allocate("example.test", "other", "192.0.2.11", None);
    let admin = srv.admin_token();
    let create = |policy: Value| -> String {
        let r = write(
            &srv,
            "POST",
            "/api/v1/tokens",
            &admin,
            &json!({"name": "acme-dns01", "policy": policy}),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        r.body["token"]
            .as_str()
            .expect("secret shown once")
            .to_string()
    };
    let acme = create(
        json!({"rules": [{"zone": ZONE, "owner": "_acme-challenge.*", "types": ["TXT"], "access": "write"}]}),
    );
    let txt =
        json!({"subname": "_acme-challenge", "type": "TXT", "ttl": 60, "records": ["\"ok\""]});
    let r = write(&srv, "POST", &rrsets(ZONE), &acme, &txt);
    assert_eq!(r.status, 201, "{}", r.text);
    let r = write(
        &srv,
        "PUT",
        &format!("{}/_acme-challenge.www/TXT", rrsets(ZONE)),
        &acme,
        &json!({"ttl": 60, "records": ["\"www\""]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let before = state(&srv);
    // The same credential cannot write an A, nor a TXT elsewhere, nor into another zone.
    for (zone, body) in [
        (
            ZONE,
            json!({"subname": "_acme-challenge", "type": "A", "ttl": 60, "records": ["192.0.2.1"]}),
        ),
        (
            ZONE,
            json!({"subname": "www3", "type": "TXT", "ttl": 60, "records": ["\"no\""]}),
        ),
        ("other.example.test", txt.clone()),
    ] {
        let r = write(&srv, "POST", &rrsets(zone), &acme, &body);
        assert_error(r.status, &r.body, 403, "policy-denied");
    }
    // A mixed bulk change is refused as a whole, and the error says why.
    let r = write(
        &srv,
        "PATCH",
        &rrsets(ZONE),
        &acme,
        &json!([txt, {"subname": "x", "type": "A", "ttl": 60, "records": ["192.0.2.1"]}]),
    );
    assert_error(r.status, &r.body, 403, "policy-denied");
    assert!(r.text.contains("no rule"), "{}", r.text);
    assert_eq!(state(&srv), before);
    // It reads only what it may write.
    let (st, v) = srv.get(&rrsets(ZONE), Some(&acme));
    assert_eq!(st, 200, "{v}");
    let types: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert!(
        !types.is_empty() && types.iter().all(|t| *t == "TXT"),
        "{v}"
    );

    // Template records need a rule that allows them.
    let tenant = create(json!({"rules": [{"zone": ZONE, "access": "write"}]}));
    let r = write(
        &srv,
        "PUT",
        &format!("{}/@/A", rrsets(ZONE)),
        &tenant,
        &json!({"ttl": 300, "records": ["192.0.2.99"]}),
    );
    assert_error(r.status, &r.body, 403, "policy-denied");
    assert!(r.text.contains("template"), "{}", r.text);
    // Below the apex too (the template names it relative to the apex).
    let r = write(
        &srv,
        "PUT",
        &format!("{}/console/A", rrsets(ZONE)),
        &tenant,
        &json!({"ttl": 300, "records": ["192.0.2.98"]}),
    );
    assert_error(r.status, &r.body, 403, "policy-denied");
    assert!(r.text.contains("template"), "{}", r.text);
    let owner = create(json!({"rules": [{"zone": ZONE, "access": "write", "template": true}]}));
    let r = write(
        &srv,
        "PUT",
        &format!("{}/@/A", rrsets(ZONE)),
        &owner,
        &json!({"ttl": 300, "records": ["192.0.2.99"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        srv.dig(&format!("{ZONE}."), RecordType::A)
            .answer_data(RecordType::A),
        ["192.0.2.99"]
    );

    // Source networks and expiry.
    let far =
        create(json!({"rules": [{"zone": ZONE, "access": "write"}], "sources": ["10.0.0.0/8"]}));
    let r = write(&srv, "POST", &rrsets(ZONE), &far, &txt);
    assert_error(r.status, &r.body, 401, "unauthorized");
    let gone = create(json!({"rules": [{"zone": ZONE, "access": "write"}], "expires": 1}));
    let r = write(&srv, "POST", &rrsets(ZONE), &gone, &txt);
    assert_error(r.status, &r.body, 401, "unauthorized");
    // A bad policy is refused with the rule's number; the token list never shows a secret.
    let r = write(
        &srv,
        "POST",
        "/api/v1/tokens",
        &admin,
        &json!({"name": "x", "policy": {"rules": [{"zone": "*", "access": "write"}, {"zone": "a.test", "types": ["NOPE"], "access": "read"}]}}),
    );
    assert_error(r.status, &r.body, 422, "invalid-policy");
    assert!(r.text.contains("rule 2"), "{}", r.text);
    let (st, list) = srv.get("/api/v1/tokens", Some(&admin));
    assert_eq!(st, 200);
    assert!(
        !list.to_string().contains(&acme),
        "a token secret in the list"
    );
    // Non-admins cannot mint tokens.
    let r = write(&srv, "POST", "/api/v1/tokens", &acme, &json!({"name": "y"}));
    assert_error(r.status, &r.body, 403, "forbidden");
}

fn import_export_and_audit(b: Backend) {
    let Some(srv) = PdmServer::start(b, Config::default_test()) else {
        return;
    };
    srv.allocate("example.test", "acme", "192.0.2.10", None);
    let admin = srv.admin_token();
    let file = "$ORIGIN acme.example.test.\n$TTL 300\n@ IN SOA ns. host. 1 2 3 4 5\n@ IN NS ns.elsewhere.test.\nimported IN A 192.0.2.50\nimported IN AAAA 2001:db8::50\nalias IN CNAME imported\n@ IN CAA 0 issue \"letsencrypt.org\"\n";
    let r = import(&srv, &admin, false, file.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.body["changed"].as_u64(), r.body["skipped"].as_u64()),
        (Some(4), Some(2)),
        "{}",
        r.body
    );
    assert_eq!(
        srv.dig("alias.acme.example.test.", RecordType::CNAME)
            .answer_data(RecordType::CNAME),
        ["imported.acme.example.test."]
    );
    let (_, export) = state(&srv);
    assert!(
        export.contains("imported.acme.example.test. 300 IN AAAA 2001:db8::50"),
        "{export}"
    );
    // Importing the export again changes nothing (and bumps nothing).
    let serial = state(&srv).0;
    let r = import(&srv, &admin, false, export.as_bytes());
    assert_eq!(
        (r.status, r.body["changed"].as_u64()),
        (200, Some(0)),
        "{}",
        r.text
    );
    assert_eq!(state(&srv).0, serial);
    // A broken file is refused whole.
    let r = import(&srv, &admin, false, b"x IN A 1.2.3\n");
    assert_error(r.status, &r.body, 422, "invalid-zone-file");

    // Audit: who, what, when, which path.
    let (st, audit) = srv.get(&format!("/api/v1/audit?zone={ZONE}"), Some(&admin));
    assert_eq!(st, 200, "{audit}");
    let rows = audit.as_array().unwrap();
    assert_eq!(rows.len(), 4, "{audit}");
    let aaaa = rows
        .iter()
        .find(|r| r["type"] == "AAAA")
        .expect("AAAA audited");
    assert_eq!(aaaa["path"], "import");
    assert!(
        aaaa["credential"].as_str().unwrap().starts_with("token:"),
        "{aaaa}"
    );
    assert_eq!(aaaa["before"], json!([]));
    assert_eq!(
        aaaa["after"],
        json!(["imported.acme.example.test. 300 IN AAAA 2001:db8::50"])
    );
    assert!(aaaa["atMs"].as_i64().unwrap() > 0);
    let r = srv.request(
        "DELETE",
        &format!("{}/imported/AAAA", rrsets(ZONE)),
        Some(&admin),
        Body::None,
        &[],
    );
    assert_eq!(r.status, 204);
    let (_, audit) = srv.get(
        &format!("/api/v1/audit?zone={ZONE}&after={}", aaaa["id"]),
        Some(&admin),
    );
    let last = audit.as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["path"].as_str(), last["after"].clone()),
        (Some("rrset-api"), json!([])),
        "{last}"
    );
    let tok = srv.token_with_scope("pool:example.test");
    let (st, _) = srv.get("/api/v1/audit", Some(&tok));
    assert_eq!(st, 403);
}

/// The SOA serial of `zone` as served.
fn served_serial(srv: &PdmServer, zone: &str) -> u32 {
    let soa = srv.dig(zone, RecordType::SOA).answer_data(RecordType::SOA);
    soa.first()
        .and_then(|s| s.split_whitespace().nth(2))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no SOA serial for {zone}: {soa:?}"))
}

fn serial_policy_per_pool(b: Backend) {
    let config = Config::default_test().extra("serial_policy = \"increment\"\n");
    let Some(mut srv) = PdmServer::start(b, config) else {
        return;
    };
    srv.allocate("example.test", "acme", "192.0.2.10", None);
    let admin = srv.admin_token();
    let zone = format!("{ZONE}.");
    let first = served_serial(&srv, &zone);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    assert!(
        first.abs_diff(now) < 600,
        "a new zone starts at the unix time: {first} vs {now}"
    );
    for i in 1..=3u32 {
        let r = write(
            &srv,
            "PUT",
            &format!("{}/step/TXT", rrsets(ZONE)),
            &admin,
            &json!({"ttl": 60, "records": [format!("\"{i}\"")]}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            served_serial(&srv, &zone),
            first + i,
            "increment: one step per change"
        );
        assert_eq!(r.status, 200);
    }
    // Across a restart too.
    srv.restart();
    let r = write(
        &srv,
        "PUT",
        &format!("{}/step/TXT", rrsets(ZONE)),
        &admin,
        &json!({"ttl": 60, "records": ["\"4\""]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(served_serial(&srv, &zone), first + 4);
}

/// Every zone's `record_count` (kept by triggers; the write path reads it
/// for `max_zone_records` rather than counting the zone's rows) against
/// its rows: (zone, count kept, rows).
fn record_counts(url: &str) -> Vec<(String, i64, i64)> {
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut conn = sqlx::AnyConnection::connect(url).await.expect("connect");
        let rows = sqlx::query(
            "SELECT name, record_count, (SELECT COUNT(*) FROM records WHERE records.zone_id = zones.id) AS n \
             FROM zones ORDER BY name",
        )
        .fetch_all(&mut conn)
        .await
        .expect("counts");
        let _ = conn.close().await;
        rows.iter()
            .map(|r| (r.get("name"), r.get("record_count"), r.get("n")))
            .collect()
    })
}

/// Asserts each zone's kept count equals its rows; returns `zone`'s count.
fn counted(srv: &PdmServer, zone: &str, step: &str) -> i64 {
    let counts = record_counts(srv.db_url());
    for (name, kept, rows) in &counts {
        assert_eq!(kept, rows, "{step}: {name} keeps {kept}, holds {rows}");
    }
    counts
        .iter()
        .find(|(name, _, _)| name == zone)
        .map_or(0, |(_, kept, _)| *kept)
}

fn record_counts_follow_every_write(b: Backend) {
    let config = Config::default_test().extra("[records]\nmax_zone_records = 40\n");
    let Some(srv) = PdmServer::start(b, config) else {
        return;
    };
    let zone = format!("{ZONE}.");
    let admin = srv.admin_token();
    srv.allocate("example.test", "acme", "192.0.2.10", None);
    let template = counted(&srv, &zone, "commit");
    assert!(template > 3, "{template}");
    let sets: Vec<Value> = (0..5)
        .map(|i| json!({"subname": format!("h{i}"), "type": "A", "ttl": 300, "records": ["192.0.2.1", "192.0.2.2"]}))
        .collect();
    let r = write(&srv, "POST", &rrsets(ZONE), &admin, &json!(sets));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(counted(&srv, &zone, "post"), template + 10);
    // Replaced: one record fewer; deleted: two fewer.
    let r = write(
        &srv,
        "PUT",
        &rrsets(ZONE),
        &admin,
        &json!([
            {"subname": "h0", "type": "A", "ttl": 300, "records": ["192.0.2.9"]},
            {"subname": "h1", "type": "A", "ttl": 300, "records": []},
        ]),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let n = counted(&srv, &zone, "put");
    assert_eq!(n, template + 7);
    // One record for one (rewritten in place): the count holds, the old
    // record and TTL are gone from the store and from DNS.
    let r = write(
        &srv,
        "PUT",
        &format!("{}/h0/A", rrsets(ZONE)),
        &admin,
        &json!({"ttl": 60, "records": ["192.0.2.8"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(counted(&srv, &zone, "one for one"), n);
    let (_, exported) = state(&srv);
    let h0: Vec<&str> = exported.lines().filter(|l| l.starts_with("h0.")).collect();
    assert_eq!(h0, [format!("h0.{zone} 60 IN A 192.0.2.8")], "{exported}");
    let got = srv.dig(&format!("h0.{zone}"), RecordType::A);
    assert_eq!(got.answer_data(RecordType::A), ["192.0.2.8"]);
    assert!(
        got.answer_rrs.iter().all(|a| a.ttl == 60),
        "{:?}",
        got.answers
    );
    // The bound holds at exactly 40: filling up to it passes, one more does not.
    let room = 40 - n;
    let fill: Vec<String> = (0..room).map(|i| format!("198.51.100.{}", i + 1)).collect();
    let r = write(
        &srv,
        "POST",
        &rrsets(ZONE),
        &admin,
        &json!([{"subname": "full", "type": "A", "ttl": 300, "records": fill}]),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(counted(&srv, &zone, "filled"), 40);
    let before = state(&srv);
    let r = write(
        &srv,
        "POST",
        &rrsets(ZONE),
        &admin,
        &json!([{"subname": "over", "type": "A", "ttl": 300, "records": ["203.0.113.1"]}]),
    );
    assert_error(r.status, &r.body, 422, "too-large");
    assert_eq!(state(&srv), before, "a refused write changes nothing");
    assert_eq!(counted(&srv, &zone, "refused"), 40);
    // An import that replaces: what the file lacks goes.
    let file = "$ORIGIN acme.example.test.\n$TTL 300\nonly IN A 192.0.2.50\n";
    let r = import(&srv, &admin, true, file.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text);
    let imported = counted(&srv, &zone, "import");
    assert!(imported < 40, "{imported} after replacing");
    // Released: the zone and its records go (cascade), the pool's delegation too.
    let (st, body) = srv.release("example.test", "acme");
    assert_eq!(st, 200, "{body}");
    assert_eq!(counted(&srv, &zone, "release"), 0);
    srv.allocate("example.test", "beta", "192.0.2.11", None);
    assert_eq!(
        counted(&srv, "beta.example.test.", "second commit"),
        template
    );
}

backend_tests!(
    record_counts_follow_every_write,
    serial_policy_per_pool,
    crud_is_served_on_return,
    bad_input_changes_nothing,
    policies_hold_credentials_to_their_rules,
    import_export_and_audit,
);
